#!/usr/bin/env bash
# The real-time figures (classification off the critical path, HD paths, roofline, INT8) on a quiet machine,
# written to benchmarks/results/*.json for the README. About 12 minutes on 2 cores; run nothing else meanwhile.
#
#   tools/measure_realtime.sh            # from the repository root, with artcam installed (train extra for the
#                                        # classifier's held-out split), data in $ARTCAM_DATA or ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
ARTCAM=${ARTCAM:-artcam}
DATA=${ARTCAM_DATA:-../shared/data}
OUT=benchmarks/results
mkdir -p "$OUT" runs
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

# 1. HD detail: half size + resize / + guided upsampling and the thinner stylizer_hd against full-resolution
#    nano, the stylize paths' speed and the model-only ratio against multistyle26 at 1280x720 and 1920x1080;
#    the side-by-side picture.
"$PY" -m artcam.benchmarks.hd_detail --also stylizer_hd --imgsz 720x1280,1080x1920 --runs 15 \
    --json "$OUT/hd_detail.json" --picture docs/hd_720p_side_by_side.jpg

# 2. The roofline line: achieved GFLOP/s beside the measured matmul peak, per model and precision.
"$ARTCAM" bench stylizer_nano classifier_lite0 --precision fp32,int8 --imgsz 480x640 --json \
    > "$OUT/roofline_bench.json"

# 3. INT8 with the exact graph rewrites (conv outputs padded to 16, zero Pads folded into Convs).
"$ARTCAM" export runtime/models/stylizer_nano.onnx --int8 --int8-fp32-stem --data "$DATA/photos" \
    -o runs/nano_int8.onnx
cp runs/nano_int8.onnx.report.json "$OUT/nano_int8.json"
"$PY" -m artcam.benchmarks.int8_speed runtime/models/stylizer_nano.onnx runs/nano_int8.onnx --imgsz 480x640 \
    --runs 30 --json "$OUT/nano_int8_speed.json"
"$PY" -m artcam.benchmarks.int8_speed runtime/models/stylizer_nano.onnx runs/nano_int8.onnx --imgsz 480x640 \
    --runs 30 --threads 1 --json "$OUT/nano_int8_speed_1t.json"
"$ARTCAM" export runtime/models/stylizer_hd.onnx --int8 --int8-fp32-stem --data "$DATA/photos" \
    -o runs/hd_int8.onnx
cp runs/hd_int8.onnx.report.json "$OUT/hd_int8.json"
"$PY" -m artcam.benchmarks.int8_speed runtime/models/stylizer_hd.onnx runs/hd_int8.onnx --imgsz 720x1280 \
    --runs 20 --threads 1 --json "$OUT/hd_int8_speed_1t.json"
"$PY" -m artcam.training.make_classifier heldout --out runs/style/heldout
"$ARTCAM" export runtime/models/classifier_lite0.onnx --int8 --int8-full-range --data runs/style/heldout \
    --calib-count 64 --verify-count 2036 -o runs/classifier_int8.onnx
cp runs/classifier_int8.onnx.report.json "$OUT/classifier_int8.json"
"$PY" -m artcam.benchmarks.int8_speed runtime/models/classifier_lite0.onnx runs/classifier_int8.onnx --runs 60 \
    --threads 1 --json "$OUT/classifier_int8_speed.json"

# 4. Both models at camera rate (artcam demo as shipped, and variants), HD live paths at 720p and 1080p
#    (stylizer_hd with --workers and --precision auto among them), 720p with the INT8 stylizer made above.
"$PY" -m artcam.benchmarks.realtime --int8-stylizer runs/nano_int8.onnx --json "$OUT/realtime.json"
"$PY" -m artcam.benchmarks.realtime --only live_720p_hd_openvino,live_1080p_hd_openvino,live_720p_full_openvino \
    --json "$OUT/realtime_openvino.json"   # needs pip install -e ".[openvino]"

# 5. Where the INT8 models' time goes (what stays FP32 and its share), beside FP32.
"$PY" -m artcam.benchmarks.op_profile runtime/models/stylizer_nano.onnx runs/nano_int8.onnx --size 480x640 \
    --json "$OUT/nano_int8_profile.json"
"$PY" -m artcam.benchmarks.op_profile runtime/models/stylizer_hd.onnx runs/hd_int8.onnx --size 720x1280 \
    --threads 1 --json "$OUT/hd_int8_profile.json"
"$PY" -m artcam.benchmarks.op_profile runtime/models/classifier_lite0.onnx runs/classifier_int8.onnx \
    --json "$OUT/classifier_int8_profile.json"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
echo "wrote $OUT/{realtime,hd_detail,roofline_bench,nano_int8,nano_int8_speed,nano_int8_speed_1t,hd_int8,hd_int8_speed_1t,classifier_int8,classifier_int8_speed,*_profile}.json"

#!/usr/bin/env bash
# One prepared GPU check for a GPU box without network (PyTorch + CUDA, maybe no TensorRT, no package registry).
#
#   bash tools/gpu_check.sh                 # on the GPU machine, from the repo root
#   ARTCAM_GPU_CHECK_CPU=1 bash tools/gpu_check.sh   # quick dry run on CPU (tiny sizes)
#
# Makes artcam importable (editable install without deps, else a namespace shim on PYTHONPATH),
# runs the @pytest.mark.gpu tests, then benchmarks, and writes ONE JSON report to
# $OUT/gpu_report.json (./gpu_report.json without $OUT) and prints it. Budget: < 4 minutes.
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$REPO}"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/artcam-gpu-check.XXXXXX)"
PY="${PYTHON:-python3}"
cd "$REPO" || exit 1
T0=$(date +%s)

# 1. importable artcam -----------------------------------------------------------------------------
. "$REPO/tools/gpu_env.sh"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # for `tests.*` imports

# 2. GPU tests (skip themselves without CUDA/TensorRT) -----------------------------------------------
TESTS_RC="not run"
if "$PY" -c "import pytest" 2>/dev/null; then
  timeout 60 "$PY" -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors \
    tests/runtime/test_trt_gpu.py >"$WORK/pytest.log" 2>&1
  TESTS_RC=$?
else
  echo "pytest is not installed" >"$WORK/pytest.log"
fi

# 3. benchmarks --------------------------------------------------------------------------------------
INSTALL="$INSTALL" TESTS_RC="$TESTS_RC" PYTEST_LOG="$WORK/pytest.log" REPORT="$OUT/gpu_report.json" \
  T0="$T0" timeout 120 "$PY" - <<'PYEOF'
import json, os, platform, statistics, sys, time, traceback

cpu_mode = os.environ.get("ARTCAM_GPU_CHECK_CPU") == "1"
report = {"install": os.environ["INSTALL"], "python": platform.python_version(), "cpu_dry_run": cpu_mode,
          "tests": {"rc": os.environ["TESTS_RC"], "tail": open(os.environ["PYTEST_LOG"]).read()[-1500:]},
          "modules": {}, "torch_latency": [], "ort": {}, "errors": []}
for mod in ("torch", "onnx", "onnxruntime", "tensorrt", "cuda", "cv2", "numpy", "pytest"):
    try:
        m = __import__(mod)
        report["modules"][mod] = getattr(m, "__version__", "present")
    except Exception as e:
        report["modules"][mod] = f"missing ({type(e).__name__})"

def save():
    report["seconds"] = round(time.time() - int(os.environ["T0"]), 1)
    with open(os.environ["REPORT"] + ".partial", "w") as f:
        json.dump(report, f, indent=2)
    os.replace(os.environ["REPORT"] + ".partial", os.environ["REPORT"])

try:
    import torch
    dev = torch.device("cpu" if cpu_mode or not torch.cuda.is_available() else "cuda")
    if dev.type == "cpu":
        torch.set_num_threads(1)  # OpenMP barriers on a busy 2-core box cost seconds per call
    report["device"] = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    if dev.type == "cuda":
        report["cuda"] = {"torch_cuda": torch.version.cuda, "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
                          "cudnn": torch.backends.cudnn.version()}
        torch.backends.cudnn.benchmark = True
    from artcam.training.stylizer_nets import available_sizes, build_stylizer, config_for
    sizes = ["nano"] if cpu_mode else [s for s in ("nano", "small", "base") if s in available_sizes()]
    resolutions = [(64, 96)] if cpu_mode else [(480, 640), (720, 1280)]
    runs, warm = (3, 1) if cpu_mode else (50, 30)  # 10 warm-up runs left the first case slow (H100, 2026-11-27)
    n_styles = 8

    def timed(fn):
        times = []
        for i in range(warm + runs):
            if dev.type == "cuda":
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record(); fn(); b.record(); torch.cuda.synchronize()
                dt = a.elapsed_time(b)
            else:
                t = time.perf_counter(); fn(); dt = (time.perf_counter() - t) * 1e3
            if i >= warm:
                times.append(dt)
        return statistics.median(times), min(times)

    for size in sizes:
        torch.manual_seed(0)
        net32 = build_stylizer(config_for(size, n_styles)).eval().to(dev)
        params = sum(p.numel() for p in net32.parameters())
        for h, w in resolutions:
            mult = net32.cfg.stride
            h, w = -(-h // mult) * mult, -(-w // mult) * mult
            x = torch.rand(1, 3, h, w, device=dev)
            s = torch.eye(n_styles, device=dev)[:1]
            with torch.no_grad():
                ref = net32(x, s)
                med32, best32 = timed(lambda: net32(x, s))
                row = {"size": size, "params": params, "hw": [h, w], "fp32_median_ms": round(med32, 3),
                       "fp32_min_ms": round(best32, 3)}
                if dev.type == "cuda":
                    with torch.autocast("cuda", dtype=torch.float16):
                        med16, best16 = timed(lambda: net32(x, s))
                        out16 = net32(x, s).float()
                    mse = torch.mean((out16 - ref) ** 2).item()
                    row.update({"fp16_autocast_median_ms": round(med16, 3), "fp16_autocast_min_ms": round(best16, 3),
                                "fp16_vs_fp32_psnr_db": round(10 * __import__("math").log10(1 / max(mse, 1e-20)), 2),
                                "fps_fp32": round(1e3 / med32, 1), "fps_fp16": round(1e3 / med16, 1)})
            report["torch_latency"].append(row)
            save()
except Exception:
    report["errors"].append("torch benchmark: " + traceback.format_exc()[-1500:])

try:  # ONNX Runtime CUDA, only if onnxruntime-gpu is importable and really gets the GPU
    import io
    import numpy as np
    import onnxruntime as ort
    import torch
    from artcam.training.stylizer_nets import build_stylizer, config_for
    avail = ort.get_available_providers()
    report["ort"]["available_providers"] = avail
    net = build_stylizer(config_for("nano", 8)).eval()
    buf = io.BytesIO()
    h, w = (64, 96) if cpu_mode else (480, 640)
    torch.onnx.export(net, (torch.rand(1, 3, h, w), torch.eye(8)[:1]), buf, input_names=["image", "style"],
                      output_names=["stylized"], opset_version=17, dynamo=False)
    want = ["CPUExecutionProvider"] if cpu_mode else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    sess = ort.InferenceSession(buf.getvalue(), providers=[p for p in want if p in avail])
    report["ort"]["providers_used"] = sess.get_providers()
    feed = {"image": np.random.rand(1, 3, h, w).astype(np.float32), "style": np.eye(8, dtype=np.float32)[:1]}
    for _ in range(3 if cpu_mode else 10):
        sess.run(None, feed)
    ts = []
    for _ in range(3 if cpu_mode else 50):
        t = time.perf_counter(); sess.run(None, feed); ts.append((time.perf_counter() - t) * 1e3)
    report["ort"]["nano_hw"] = [h, w]
    report["ort"]["nano_median_ms_incl_copies"] = round(statistics.median(ts), 3)
except Exception as e:
    report["ort"]["error"] = f"{type(e).__name__}: {str(e)[:300]}"

save()
print(json.dumps(report, indent=2))
PYEOF
RC=$?
if [ $RC -ne 0 ] && [ ! -f "$OUT/gpu_report.json" ]; then
  echo "{\"error\": \"benchmark step failed with rc $RC\", \"install\": \"$INSTALL\", \"tests_rc\": \"$TESTS_RC\"}" \
    >"$OUT/gpu_report.json"
  cat "$OUT/gpu_report.json"
fi
rm -rf "$WORK"
echo "gpu_check: done in $(( $(date +%s) - T0 )) s; report $OUT/gpu_report.json"

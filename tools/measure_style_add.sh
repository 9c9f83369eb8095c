#!/usr/bin/env bash
# The style-add card's numbers: the paintings learned by tools/style_add_paintings.sh gathered into one user model,
# then its Gram style error on held-out Kodak photos, the sheet beside the peer's arbitrary model, model-only speed
# against multistyle26 (alternating), and the wall time of one default `artcam style add`. Run it on a quiet machine.
#   ARTCAM_MODELS=runs/models_exp3 bash tools/measure_style_add.sh candy mosaic la_muse feathers rain_princess contrast_of_forms
set -euo pipefail
DATA=${ARTCAM_DATA:-../shared/data}
R=benchmarks/results
models=()
for p in "$@"; do models+=("$ARTCAM_MODELS/exp_$p.onnx"); done
python tools/combine_styles.py "${models[@]}" -o "$ARTCAM_MODELS/my_styles.onnx"
idx=$(python - "$@" <<'PY'
import sys
print(",".join(str(8 + i) for i in range(len(sys.argv) - 1)))
PY
)
python -m artcam.benchmarks.style_error --model my_styles --photos "$DATA/photos/kodak" --peer \
    --json $R/style_add_error.json
python -m artcam.benchmarks.contact_sheet --model my_styles --styles "$idx" --public --peer-paintings \
    -o docs/style_add_sheet.jpg --tile-size 144x192 --json $R/style_add_sheet.json
python -m artcam.benchmarks.stylizer_speed --model my_styles --runs 40 --json $R/style_add_speed.json
python -m artcam.benchmarks.style_add_time "$DATA/styles/$1.jpg" --json $R/style_add_time.json

#!/usr/bin/env bash
# Learn each painting below as a new style of stylizer_nano, two runs side by side (one thread each), a fixed
# number of steps so that the result does not depend on how busy the machine is. Each run writes its own user
# model (exp_NAME.onnx) under $ARTCAM_MODELS; tools/combine_styles.py then gathers them into one model.
#   ARTCAM_MODELS=runs/models_exp3 bash tools/style_add_paintings.sh candy mosaic ...
set -euo pipefail
DATA=${ARTCAM_DATA:-../shared/data}
STEPS=${STEPS:-300}
PHOTOS="$DATA/photos/bsds500 $DATA/photos/set14 $DATA/photos/style_transfer_content"   # kodak held out
run() {
  OMP_NUM_THREADS=1 artcam style add "$DATA/styles/$1.jpg" --into "exp_$1" --steps "$STEPS" --minutes 0 \
    --photos $PHOTOS > "${ARTCAM_MODELS}/exp_$1.log" 2>&1
}
while [ $# -gt 0 ]; do
  run "$1" & a=$!
  if [ $# -gt 1 ]; then run "$2" & b=$!; wait $b; shift; fi
  wait $a; shift
done

# Sourced by the scripts run on a GPU box without network (tools/gpu_stylizer.sh, tools/gpu_check.sh):
# makes `artcam` importable there without a package registry. Needs REPO, WORK (a scratch folder) and PY;
# sets INSTALL to what it did. ARTCAM_FORCE_SHIM=1 skips the first two ways (to test the third).
INSTALL="none"
if [ "${ARTCAM_FORCE_SHIM:-0}" != 1 ] && "$PY" -c "import artcam.runtime, artcam.training, artcam.export" 2>/dev/null; then
  INSTALL="already importable"
elif [ "${ARTCAM_FORCE_SHIM:-0}" != 1 ] && timeout 40 "$PY" -m pip install --no-deps --no-build-isolation -e "$REPO" \
     >"$WORK/pip.log" 2>&1 && "$PY" -c "import artcam.runtime" 2>/dev/null; then
  INSTALL="pip install --no-deps --no-build-isolation -e ."
else
  # artcam.* are namespace packages mapped to top-level folders: link them under a shim folder.
  mkdir -p "$WORK/shim/artcam"
  for pair in runtime:runtime export:export training:training benchmarks:benchmarks; do
    ln -s "$REPO/${pair#*:}" "$WORK/shim/artcam/${pair%%:*}"
  done
  export PYTHONPATH="$WORK/shim:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  INSTALL="namespace shim on PYTHONPATH (pip install failed: $(tail -n 1 "$WORK/pip.log" 2>/dev/null | cut -c1-160))"
fi

#!/usr/bin/env bash
# Train the stylizer's teacher, then its real-time student, on a GPU box without network, in one call.
#
#   here:   python tools/gpu_pack.py --out runs/gpu_pack --init runs/dvgg/last.pt
#   there:  bash tools/gpu_stylizer.sh runs/gpu_pack          (copy runs/gpu_pack there; results in $OUT)
#
# The shipped recipes (training/recipes/stylizer_teacher.toml, stylizer_nano.toml) run unchanged except for
# what a GPU changes: minutes, batch size. Each run stops on its own clock and checkpoints as it goes, so the
# results are written before the machine's time runs out; the student starts from init_student.pt and
# distils from the teacher just trained (or from teacher.pt in the pack, and then the teacher is skipped).
#
# Environment: TEACHER_MIN (default 4), STUDENT_MIN (3), BATCH (16), PYTHON, OUT (default ./gpu_out),
# EXTRA (more recipe overrides for both runs, e.g. for a dry run on CPU: "train.steps=2 data.image_size=32").
# Writes $OUT/teacher/, $OUT/student/ (last.pt, the ONNX file, samples), $OUT/*.log and $OUT/summary.json.
set -u
PACK="$(cd "${1:?usage: gpu_stylizer.sh PACK_DIR}" && pwd)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$REPO/gpu_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/artcam-gpu-stylizer.XXXXXX)"
PY="${PYTHON:-python3}"
cd "$REPO" || exit 1
T0=$(date +%s)
. "$REPO/tools/gpu_env.sh"
export ARTCAM_VGG19_WEIGHTS="$PACK/vgg19.bin"
read -r -a extra <<<"${EXTRA:-}"
common=(data.root="$PACK" train.batch_size="${BATCH:-16}" "${extra[@]}")

teacher_rc="skipped (teacher.pt in the pack)"
teacher="$PACK/teacher.pt"
if [ ! -f "$teacher" ]; then
  "$PY" -m artcam.training.stylize --recipe stylizer_teacher --out "$OUT/teacher" "${common[@]}" \
    train.minutes="${TEACHER_MIN:-4}" >"$OUT/teacher.log" 2>&1
  teacher_rc=$?
  teacher="$OUT/teacher/last.pt"
fi
init=()
[ -f "$PACK/init_student.pt" ] && init=(--init "$PACK/init_student.pt")
student_rc="not run (no teacher checkpoint)"
if [ -f "$teacher" ]; then
  "$PY" -m artcam.training.stylize --recipe stylizer_nano --out "$OUT/student" "${init[@]}" "${common[@]}" \
    loss.distill.teacher="$teacher" train.minutes="${STUDENT_MIN:-3}" >"$OUT/student.log" 2>&1
  student_rc=$?
fi

INSTALL="$INSTALL" TEACHER_RC="$teacher_rc" STUDENT_RC="$student_rc" T0="$T0" OUT="$OUT" "$PY" - <<'PYEOF'
import json, os, time
out = os.environ["OUT"]
doc = {"install": os.environ["INSTALL"], "seconds": round(time.time() - int(os.environ["T0"])),
       "teacher_rc": os.environ["TEACHER_RC"], "student_rc": os.environ["STUDENT_RC"]}
try:
    import torch
    doc["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    for run in ("teacher", "student"):
        p = os.path.join(out, run, "last.pt")
        if os.path.isfile(p):
            ck = torch.load(p, map_location="cpu", weights_only=False)
            doc[run] = {"step": ck["step"], "onnx": sorted(f for f in os.listdir(os.path.join(out, run)) if f.endswith(".onnx"))}
except Exception as e:  # the summary must still be written
    doc["error"] = f"{type(e).__name__}: {e}"
for run in ("teacher", "student"):
    log = os.path.join(out, f"{run}.log")
    if os.path.isfile(log):
        doc[f"{run}_log_tail"] = open(log).read()[-600:]
with open(os.path.join(out, "summary.json.partial"), "w") as f:
    json.dump(doc, f, indent=1)
os.replace(os.path.join(out, "summary.json.partial"), os.path.join(out, "summary.json"))
print(json.dumps(doc, indent=1))
PYEOF
rm -rf "$WORK"
[ "$student_rc" = 0 ]  # the exit status: a student was trained and exported

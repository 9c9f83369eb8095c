"""One-off: the loss terms (content, Gram) of a teacher's output vs the photo-start pixel optimum under the same loss.
Usage (from the repo root): python tools/experiments/teacher_vs_optimum.py [TEACHER.pt]"""
import sys
from pathlib import Path

import torch

from artcam.training.common import load_checkpoint
from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network, total_variation
from artcam.training.stylize import KIND, load_rgb01, model_from_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/, for distill_gap
from distill_gap import photos  # noqa: E402

torch.set_num_threads(2)
STY = ["the_scream", "starry_night"]; root = Path("../shared/data/styles")
x = photos((192, 256))[[0, 3]]
d = DEFAULT_LAYERS["vgg19"]; net = build_loss_network("vgg19")
grams = StyleGrams(net, list(d.style), [load_rgb01(root / f"{s}.jpg", 384) for s in STY])
cref = net.features(x, list(d.content)); cscale = {k: v.pow(2).mean() for k, v in cref.items()}
ck = load_checkpoint(sys.argv[1] if len(sys.argv) > 1 else "runs/stylizer_teacher/last.pt", KIND); m = model_from_checkpoint(ck).eval()
names = [Path(p).stem for p in ck["config"]["style_files"]]
def terms(y, sv):
    f = net.features(y, d.taps())
    c = torch.stack([((f[k] - cref[k]) ** 2).flatten(1).mean(1) / cscale[k] for k in d.content]).sum(0)
    s = grams.error(f, sv, d.style)
    return c, s
for si, st in enumerate(STY):
    sv = torch.eye(len(STY))[si].expand(len(x), len(STY))
    with torch.no_grad():
        t = m(x, torch.eye(8)[names.index(st)].expand(len(x), 8)).clamp(0, 1)
        ct, stt = terms(t, sv)
    y = x.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([y], max_iter=60, history_size=20, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad(); c, s = terms(y, sv); loss = c.mean() + s.mean() + total_variation(y); loss.backward(); return loss
    opt.step(closure)
    with torch.no_grad():
        co, so = terms(y.clamp(0, 1), sv)
    for i in range(len(x)):
        print(f"{st} photo{i}: teacher content {float(ct[i]):.3f} gram {float(stt[i]):.3f} | optimum content {float(co[i]):.3f} gram {float(so[i]):.3f}", flush=True)

"""One-off: the loss's pixel optimum (L-BFGS on the pixels from the photo) under EfficientNet-Lite0 and VGG-19,
beside the teacher and the peer's arbitrary model, at 256x192. Usage (from the repo root, data beside it):
python tools/experiments/pixel_optimum.py OUT.jpg STYLE,STYLE PHOTO_IDX,.. vgg19:1[:STYLE_LONG] ck=TEACHER.pt peer
T=threads; INIT=noise starts from uniform noise instead of the photo."""
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network, total_variation
from artcam.training.stylize import load_rgb01

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/, for distill_gap
from distill_gap import photos  # noqa: E402

torch.set_num_threads(int(os.environ.get("T", "2")))
STY = sys.argv[2].split(",")
PH = [int(i) for i in sys.argv[3].split(",")]
specs = sys.argv[4:]
root = Path("../shared/data/styles")
x = photos((192, 256))[PH]
cols = {}
def optimum(netname, sw, style_long=384, iters=60):
    d = DEFAULT_LAYERS[netname]; net = build_loss_network(netname)
    grams = StyleGrams(net, list(d.style), [load_rgb01(root / f"{s}.jpg", style_long) for s in STY])
    cref = net.features(x, list(d.content))
    cscale = {k: v.pow(2).mean() for k, v in cref.items()}
    outs = []
    for si in range(len(STY)):
        sv = torch.eye(len(STY))[si].expand(len(x), len(STY))
        y = (torch.rand_like(x) if os.environ.get("INIT") == "noise" else x.clone()).requires_grad_(True)
        opt = torch.optim.LBFGS([y], max_iter=iters, history_size=20, line_search_fn="strong_wolfe")
        def closure():
            opt.zero_grad()
            f = net.features(y, d.taps())
            c = sum(((f[k] - cref[k]) ** 2).mean() / cscale[k] for k in d.content)
            s = grams.error(f, sv, d.style).mean()
            loss = c + sw * s + 1.0 * total_variation(y)
            loss.backward(); return loss
        t = time.time(); opt.step(closure)
        with torch.no_grad():
            f = net.features(y, d.taps()); s = grams.error(f, sv, d.style).mean()
        print(netname, sw, STY[si], f"gram err {float(s):.3f} {time.time()-t:.0f}s", flush=True)
        outs.append(y.detach().clamp(0, 1))
    return outs
for spec in specs:
    if spec == "peer":
        from artcam.benchmarks.contact_sheet import PeerPaintings
        pp = PeerPaintings([root / f"{s}.jpg" for s in STY])
        res = []
        for si in range(len(STY)):
            ys = [torch.from_numpy(cv2.resize(pp(x[i].permute(1, 2, 0).numpy(), si), (256, 192), interpolation=cv2.INTER_AREA)).permute(2, 0, 1) for i in range(len(x))]
            res.append(torch.stack(ys))
        cols[spec] = res
    elif spec.startswith("ck="):
        from artcam.training.common import load_checkpoint
        from artcam.training.stylize import KIND, model_from_checkpoint
        ck = load_checkpoint(spec[3:], KIND); m = model_from_checkpoint(ck).eval()
        names = [Path(p).stem for p in ck["config"]["style_files"]]
        with torch.no_grad():
            cols[Path(spec[3:]).parent.name] = [m(x, torch.eye(8)[names.index(s)].expand(len(x), 8)) for s in STY]
    else:
        n, sw = spec.split(":")[:2]
        sl = int(spec.split(":")[2]) if spec.count(":") > 1 else 384
        cols[spec] = optimum(n, float(sw), sl)
rows = []
for i in range(len(x)):
    row = [x[i]]
    for si in range(len(STY)):
        for k in cols:
            row.append(cols[k][si][i])
    rows.append(torch.cat(row, 2))
img = (torch.cat(rows, 1).permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
cv2.imwrite(sys.argv[1].replace(".jpg", ".png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
print("columns per style:", list(cols))

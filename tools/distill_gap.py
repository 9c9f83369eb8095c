"""How far a student stylizer is from its teacher, next to yardsticks that say what the distance means.

    python tools/distill_gap.py NAME=CHECKPOINT... [--teacher runs/stylizer_teacher/last.pt]

On scikit-image's four public photos (never used in training) at 320x240, for every style: the
distillation error (feature MSE at the loss network's distill taps, VGG-19 relu1_1..4_1 by default or
EfficientNet-Lite0 stem/blocks 0/2/4, each divided by the teacher's feature energy, as the ``distill``
term) and the colour error (L1 of 4x4 block means), for each checkpoint and for degraded copies of the
teacher's own picture: blurred 2x and 4x (what a student without fine detail scores) and 50% desaturated
(what a pale one scores). Run it to find which gap a design change must close before spending an hour
of training on it.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.cli import ArgParser
from artcam.training.common import TrainingError, load_checkpoint
from artcam.training.perceptual import build_loss_network
from artcam.training.stylize import KIND, model_from_checkpoint

# The distill term's taps per loss network (the shipped recipes' ``loss.distill.layers``).
TAPS = {"efficientnet_lite0": ("stem", "block0", "block2", "block4"),
        "vgg19": ("relu1_1", "relu2_1", "relu3_1", "relu4_1")}


def photos(size: tuple[int, int] = (240, 320)) -> torch.Tensor:
    try:
        from skimage import data as skd
    except ImportError as e:
        raise TrainingError("distill_gap needs scikit-image's sample photos", "pip install 'artcam[demo]'") from e
    out = []
    for f in (skd.astronaut, skd.coffee, skd.chelsea, skd.rocket):
        a = torch.from_numpy(np.ascontiguousarray(f())).permute(2, 0, 1).float()[None] / 255
        out.append(F.interpolate(a, size=size, mode="area"))
    return torch.cat(out)


def _blur(t: torch.Tensor, s: int) -> torch.Tensor:
    low = F.interpolate(t, scale_factor=1 / s, mode="area")
    return F.interpolate(low, size=t.shape[-2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def gaps(teacher, students: dict, x: torch.Tensor, lossnet, taps: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{row: [error per tap..., colour L1]}``, each the mean over styles and photos."""
    rows: dict[str, list] = {}
    n_styles = teacher.cfg.num_styles
    for si in range(n_styles):
        st = F.one_hot(torch.full((x.shape[0],), si), n_styles).float()
        t = teacher(x, st)
        ft = lossnet.features(t, list(taps))
        cands = {"photo": x, "teacher blurred 2x": _blur(t, 2), "teacher blurred 4x": _blur(t, 4),
                 "teacher 50% desaturated": t.mean(1, keepdim=True) * 0.5 + t * 0.5}
        cands.update({k: m(x, st) for k, m in students.items()})
        for k, c in cands.items():
            fc = lossnet.features(c, list(taps))
            e = [float(F.mse_loss(fc[tp], ft[tp]) / ft[tp].pow(2).mean()) for tp in taps]
            e.append(float((F.avg_pool2d(c, 4) - F.avg_pool2d(t, 4)).abs().mean()))
            rows.setdefault(k, []).append(e)
    return {k: np.mean(v, 0) for k, v in rows.items()}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python tools/distill_gap.py", description=__doc__.split("\n\n")[0])
    p.add_argument("students", nargs="+", help="NAME=CHECKPOINT of each student")
    p.add_argument("--teacher", default="runs/stylizer_teacher/last.pt")
    p.add_argument("--net", default="vgg19", choices=sorted(TAPS), help="loss network whose taps measure the gap")
    a = p.parse_args(argv)
    torch.set_num_threads(1)

    def load(path: str):
        return model_from_checkpoint(load_checkpoint(path, KIND)).eval()

    teacher = load(a.teacher)
    students = {}
    for s in a.students:
        name, sep, path = s.partition("=")
        if not sep:
            p.error(f"{s!r} is not NAME=CHECKPOINT")
        students[name] = load(path)
    taps = TAPS[a.net]
    table = gaps(teacher, students, photos(), build_loss_network(a.net), taps)
    print(f"{'picture':24s} " + " ".join(f"{t:>7s}" for t in taps) + "  feature sum  colour L1")
    for k, m in table.items():
        print(f"{k:24s} " + " ".join(f"{e:7.3f}" for e in m[:-1]) + f"  {m[:-1].sum():11.3f}  {m[-1]:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

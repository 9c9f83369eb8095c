"""Where `artcam style add` sits between a trivial start and the best its loss allows (docs/models/style_add.md).

Two experiments, each a number and a picture:

  pixels       the pixel optimum of the style-add loss for one photo: Adam on the picture itself, started
               from the photo. What the loss wants, with no network in the way. Run at half the user's
               size (the 640x480 frame and the 384-px painting both halved) to fit a CPU.
  all-weights  `style add` with every convolution free as well as the new row (a separate single-painting
               net, so not a product: the shipped styles would change). Whether the row is the limit.

    python tools/style_add_ceiling.py pixels ../shared/data/styles/candy.jpg ../shared/data/photos/kodak/kodim13.jpg \
        --keep-scene 1 -o runs/ceiling_candy.png
    ARTCAM_MODELS=runs/ceiling python tools/style_add_ceiling.py all-weights ../shared/data/styles/candy.jpg \
        --steps 300 --photos ../shared/data/photos/bsds500 ../shared/data/photos/set14
    # then: python -m artcam.benchmarks.style_error --model runs/ceiling/all_weights.onnx --styles candy ...
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import torch

import artcam.training.style_add as sa
from artcam.benchmarks.contact_sheet import fit
from artcam.runtime.fileio import read_image
from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network
from artcam.training.style_terms import Style, Views, build_terms, weighted_sum


def pixel_optimum(painting: str, photo: str, keep_scene: float, steps: int, out: str) -> float:
    net = build_loss_network("vgg19")
    d = DEFAULT_LAYERS["vgg19"]
    terms = build_terms(sa.loss_recipe(keep_scene), {"content": d.content, "style": d.style})
    grams = StyleGrams(net, list(d.style), [sa.painting_tensor(sa.read_painting(painting), sa.STYLE_SIZE // 2)])
    for t in terms:
        if isinstance(t, Style):
            t.grams = grams
    taps = sorted({k for t in terms for k in t.taps})
    content_taps = sorted({k for t in terms for k in t.content_taps})
    rgb = cv2.cvtColor(fit(read_image(photo), (320, 240)), cv2.COLOR_BGR2RGB)
    x0 = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
    one = torch.ones(1, 1)
    with torch.no_grad():
        content = net.features(x0, content_taps)
    y = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.02)

    def gram_error() -> float:
        with torch.no_grad():
            return float(grams.error(net.features(y.clamp(0, 1), list(d.style)), one, d.style)[0])

    print(f"start (the photo): Gram error {gram_error():.3f}", file=sys.stderr)
    t0 = time.perf_counter()
    for i in range(steps):
        v = Views(y.clamp(0, 1), x0, one)
        v.features, v.content_features = net.features(v.output, taps), content
        loss, _ = weighted_sum(terms, v)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % 50 == 0:
            print(f"step {i + 1}: loss {float(loss):.4f}, Gram error {gram_error():.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    err = gram_error()
    img = (y.detach().clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"pixel optimum: Gram error {err:.3f}; wrote {out}", file=sys.stderr)
    return err


def all_weights(painting: str, steps: int, photos: list[str], conv_lr: float, keep_scene: float) -> None:
    """`style add` with the convolutions unfrozen (a smaller learning rate) beside the new row."""
    rows_only = sa.freeze_all_but_new_rows

    def everything(net, first_new):
        rows = rows_only(net, first_new)
        ids = {id(p) for p in rows}
        convs = [p.requires_grad_(True) for p in net.parameters() if id(p) not in ids]
        return [{"params": rows}, {"params": convs, "lr": conv_lr}]

    sa.freeze_all_but_new_rows = everything
    sa.add_style(painting, into="all_weights", steps=steps, minutes=0, photos=photos, keep_scene=keep_scene)


def main() -> int:
    from artcam.runtime.cli import ArgParser

    p = ArgParser(prog="tools/style_add_ceiling.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("pixels")
    a.add_argument("painting")
    a.add_argument("photo")
    a.add_argument("--keep-scene", type=float, default=1.0)
    a.add_argument("--steps", type=int, default=300)
    a.add_argument("-o", "--out", required=True)
    b = sub.add_parser("all-weights")
    b.add_argument("painting")
    b.add_argument("--steps", type=int, default=300)
    b.add_argument("--photos", nargs="+", required=True)
    b.add_argument("--conv-lr", type=float, default=1e-3)
    b.add_argument("--keep-scene", type=float, default=1.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.what == "pixels":
        pixel_optimum(args.painting, args.photo, args.keep_scene, args.steps, args.out)
    else:
        all_weights(args.painting, args.steps, args.photos, args.conv_lr, args.keep_scene)
    return 0


if __name__ == "__main__":
    sys.exit(main())

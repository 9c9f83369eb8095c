"""``artcam style add PAINTING``: teach a shipped stylizer one more painting, in minutes on a CPU.

Why this works (Dumoulin et al. 2017): in a conditional-instance-norm stylizer every style is only a row
of per-channel scales and shifts; the convolutions are shared. So a new painting needs one new row, a
few thousand numbers, learned against the painting's VGG-19 Gram statistics with every convolution
frozen. The other styles' rows are never touched, so the model keeps painting them exactly as before,
and the new row blends with them like any other.

The run is time-budgeted (``--minutes``), saves a resumable state as it goes and on Ctrl-C, and publishes
the user model (the base model's styles plus the new one) only when it is whole, under
``$ARTCAM_MODELS`` (``artcam models`` lists it; ``--model NAME`` uses it everywhere).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from artcam.runtime.errors import InputError, Interrupted
from artcam.runtime.fileio import IMAGE_EXTENSIONS, data_root, to_bgr8
from artcam.runtime.zoo import DEFAULT_STYLIZER, list_models, resolve, user_dir
from artcam.training import common
from artcam.training.common import TrainingError
from artcam.training.perceptual import DEFAULT_LAYERS, StyleGrams, build_loss_network
from artcam.training.style_terms import Style, Views, build_terms, weighted_sum
from artcam.training.stylize import ContentCrops, export_checkpoint, infinite
from artcam.training.stylizer_file import load_stylizer
from artcam.training.stylizer_nets import (
    CondInstanceNorm,
    StylizerConfig,
    StylizerNet,
)

KIND = "style_add"
DEFAULT_INTO = "my_styles"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_PAINTING_BYTES = 64 * 2**20  # a painting file larger than this is refused before decoding
MIN_PAINTING_SIDE = 64  # Gram statistics down to VGG-19's relu5_1 (1/16) need at least this

# The loss, as the shipped teacher's recipe (training/recipes/stylizer_teacher.toml): VGG-19 content at
# relu4_2, Gram style at relu1_1..relu5_1 (each normalised by the painting's Gram mean square), L1 TV.
SHIPPED_CONTENT_WEIGHT = 1.5e-6
# An added style keeps a tenth of that content weight by default: with the shipped balance a new row keeps
# the photo's colours and outlines and paints a generic stroke; at a tenth it takes the painting's palette
# and breaks the scene into patches (candy on held-out photos: Gram error 1.27 -> 1.05, docs/models/style_add.md).
KEEP_SCENE = 0.1


def loss_recipe(keep_scene: float = KEEP_SCENE) -> dict[str, dict[str, float]]:
    """The loss terms; ``keep_scene`` scales the content weight against the shipped styles' balance (1.0)."""
    return {"content": {"weight": SHIPPED_CONTENT_WEIGHT * keep_scene}, "style": {"weight": 1.0},
            "tv": {"weight": 1.0}}
STYLE_SIZE = 384  # longer side of the painting when its Grams are taken (as the shipped styles)
CROP = 160  # training crop, as the shipped styles
BATCH = 4
LR = 5e-3
SAVE_EVERY_S = 30.0


# --- the painting -----------------------------------------------------------------------------------


def read_painting(path: str | os.PathLike) -> np.ndarray:
    """The painting as BGR uint8: greyscale, 16-bit and palette files converted, transparency laid on
    white (a transparent background is paper, not black), a too-small or unreadable file refused."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"painting not found: {p}", "pass the path of a JPEG, PNG or WebP file")
    size = p.stat().st_size
    if size > MAX_PAINTING_BYTES:
        raise InputError(f"painting {p} is {size / 2**20:.0f} MiB, over the {MAX_PAINTING_BYTES // 2**20} MiB limit",
                         "save a smaller copy (a longer side of 1000-2000 px is plenty)")
    data = np.fromfile(str(p), dtype=np.uint8)
    flags = cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(data, flags) if data.size else None
    except cv2.error:  # over OpenCV's own pixel limit
        img = None
        for reduced in (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_COLOR_8):
            try:
                img = cv2.imdecode(data, reduced)
                break
            except cv2.error:
                continue
    if img is None:
        raise InputError(f"cannot read painting {p}: not a readable image file", "pass a JPEG, PNG or WebP file")
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
        rgb = to_bgr8(np.ascontiguousarray(img[..., :3])).astype(np.float32)
        img = (rgb * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    bgr = to_bgr8(img)
    h, w = bgr.shape[:2]
    if min(h, w) < MIN_PAINTING_SIDE:
        raise InputError(f"painting {p} is {w}x{h} px, too small to learn a style from",
                         f"use a picture at least {MIN_PAINTING_SIDE} px on its shorter side")
    return bgr


def painting_tensor(bgr: np.ndarray, long_side: int = STYLE_SIZE) -> torch.Tensor:
    """(1, 3, h, w) RGB in [0, 1], the longer side ``long_side``."""
    h, w = bgr.shape[:2]
    s = long_side / max(h, w)
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)


def style_name(text: str) -> str:
    """A style name from a file stem or the user's ``--name``: lower case, digits, ``_`` and ``-``."""
    name = re.sub(r"[^a-z0-9_-]+", "_", text.strip().lower()).strip("_-")[:40]
    if not NAME_RE.match(name):
        raise InputError(f"{text!r} cannot be a style name", "pass --name with letters, digits, _ or -")
    return name


def grow(net: StylizerNet, rows: int = 1) -> StylizerNet:
    """A copy of ``net`` with ``rows`` more styles, each new row started at the mean of the old ones
    (an average style: a neutral start that every existing row is close to)."""
    cfg = StylizerConfig.from_dict(dict(net.cfg.to_dict(), num_styles=net.cfg.num_styles + rows))
    big = StylizerNet(cfg)
    state = net.state_dict()
    grown = {}
    for k, v in big.state_dict().items():
        old = state[k]
        if old.shape != v.shape:  # a conditional-norm table (styles, channels)
            old = torch.cat([old, old.mean(0, keepdim=True).expand(rows, -1)])
        grown[k] = old
    big.load_state_dict(grown)
    return big


def freeze_all_but_new_rows(net: StylizerNet, first_new: int) -> list[torch.nn.Parameter]:
    """Only rows ``first_new:`` of the conditional-norm tables learn; a gradient mask keeps the other
    rows bit-exact (Adam moves nothing whose gradient was always zero)."""
    params = []
    for p in net.parameters():
        p.requires_grad_(False)
    for m in net.modules():
        if isinstance(m, CondInstanceNorm):
            for p in (m.gamma, m.beta):
                p.requires_grad_(True)
                mask = torch.zeros_like(p)
                mask[first_new:] = 1
                p.register_hook(lambda g, mask=mask: g * mask)
                params.append(p)
    if not params:
        raise InputError("this stylizer has no per-style normalisation to learn a style into",
                         f"add styles to {DEFAULT_STYLIZER}")
    return params


def rows_of(net: StylizerNet, first_new: int) -> dict[str, torch.Tensor]:
    return {k: v[first_new:].clone() for k, v in net.state_dict().items() if k.endswith((".gamma", ".beta"))}


@torch.no_grad()
def choose_start(net: StylizerNet, first_new: int, score) -> str:
    """Start the new row from whichever existing row (or their mean) ``score()`` rates lowest: the
    shipped style nearest to the painting under the training loss, so the run starts part of the way."""
    tables = [v for k, v in net.state_dict().items() if k.endswith((".gamma", ".beta"))]  # share the params' storage
    mean = [t[first_new].clone() for t in tables]
    best, best_loss = -1, score()
    for r in range(first_new):
        for t in tables:
            t[first_new] = t[r]
        loss = score()
        if loss < best_loss:
            best, best_loss = r, loss
    for t, m in zip(tables, mean):
        t[first_new] = t[best] if best >= 0 else m
    return "mean" if best < 0 else str(best)


# --- photos --------------------------------------------------------------------------------------------


def default_photos() -> list[Path]:
    """``$ARTCAM_DATA/photos`` when there, else scikit-image's sample photos written to a cache folder."""
    folder = data_root() / "photos"
    if folder.is_dir():
        photos = common.list_images(folder)
        if photos:
            return photos
    from artcam.runtime.sources import sample_photos

    frames = sample_photos()
    if not frames:
        raise TrainingError("no photos to learn from", "pass --photos DIR (a folder of ordinary photos), or "
                            "pip install 'artcam[demo]' for scikit-image's sample photos")
    cache = user_dir() / ".cache" / "sample_photos"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, bgr in enumerate(frames):
        p = cache / f"sample_{i:02d}.png"
        if not p.is_file():
            cv2.imwrite(str(p), bgr)
        out.append(p)
    return out


def photos_in(folders: list[str]) -> list[Path]:
    out: list[Path] = []
    for f in folders:
        p = Path(f)
        out += common.list_images(p) if p.is_dir() else ([p] if p.suffix.lower() in IMAGE_EXTENSIONS else [])
    if not out:
        raise TrainingError(f"no photos found in {', '.join(folders)}", "pass folders of JPEG/PNG photos")
    return out


# --- the run -------------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _check_writable(folder: Path) -> None:
    """Fail before minutes of training, not after: the user folder must take a new file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"x" * 65536)
        probe.unlink()
    except OSError as e:
        raise InputError(f"cannot write to the models folder {folder}: {e.strerror or e}",
                         "free space or fix its permissions, or set ARTCAM_MODELS to a writable folder") from e


class Eta:
    """A one-line progress report with the time left, every few seconds (in place on a terminal)."""

    def __init__(self, label: str, every_s: float = 5.0):
        self.label, self.every = label, every_s
        self.tty = sys.stderr.isatty()
        self.last, self.last_step = -1e9, -1

    def show(self, frac: float, left: float, step: int, loss: float, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < self.every:
            return
        if final and step == self.last_step and not self.tty:  # that line is printed already
            return
        self.last, self.last_step = now, step
        frac = min(1.0, frac)
        bar = "#" * int(frac * 20)
        text = (f"{self.label} [{bar:<20}] {frac * 100:3.0f}%  step {step}  style loss {loss:.3f}  "
                f"{int(left // 60)}:{int(left % 60):02d} left")
        print(("\r" + text) if self.tty else text, end="\n" if (final or not self.tty) else "", file=sys.stderr,
              flush=True)


def add_style(painting: str, *, name: str = "", into: str = DEFAULT_INTO, base: str = "", minutes: float = 5.0,
              steps: int = 0, photos: list[str] | None = None, resume: bool = False, seed: int = 0,
              loss_net: str = "vgg19", crop: int = CROP, lr: float = LR, start: str = "nearest",
              keep_scene: float = KEEP_SCENE, device: str = "cpu", argv: list[str] | None = None) -> Path:
    """Learn ``painting`` as a new style and publish ``$ARTCAM_MODELS/INTO.onnx``; returns that path."""
    if minutes <= 0 and steps <= 0:
        raise InputError("--minutes must be > 0", "e.g. --minutes 8")
    bgr = read_painting(painting)
    name = style_name(name or Path(painting).stem)
    into = style_name(into)
    folder = user_dir()
    target = folder / f"{into}.onnx"
    if any(e.origin == "shipped" and e.name == into for e in list_models(load_meta=False)):
        raise InputError(f"{into!r} is a shipped model's name", "pick another --into name for your model")
    # Append to the user's model when it exists, else start from the base (the shipped stylizer).
    if base and target.is_file():
        raise InputError(f"user model {into!r} exists already", "drop --base to add to it, or pick another --into")
    base_path = resolve(base) if base else target if target.is_file() else resolve(DEFAULT_STYLIZER)
    net, meta = load_stylizer(base_path)
    styles = list(meta.styles)
    if name in styles:
        raise InputError(f"{base_path.stem} already has a style named {name!r}",
                         "pick another --name, or remove that style first (`artcam style remove`)")
    _check_writable(folder)
    photo_paths = photos_in(photos) if photos else default_photos()

    painting_bytes = cv2.imencode(".png", bgr)[1].tobytes()
    run_id = _sha(painting_bytes + base_path.read_bytes() + f"{name}|{into}|{loss_net}|{crop}|{keep_scene:g}".encode())
    state_path = folder / ".style_add" / f"{into}-{name}.pt"
    state = None
    if resume:
        if not state_path.is_file():
            raise InputError(f"nothing to resume for style {name!r} in {into!r}", "start without --resume")
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("run") != run_id:
            raise InputError(f"the saved run for {name!r} was made from another painting or base model",
                             "start again without --resume (the old state is replaced)")
    elif state_path.is_file():
        print(f"style add: an earlier stopped run of {name!r} is discarded (--resume continues one)", file=sys.stderr)

    common.seed_everything(seed)
    dev = torch.device(device)
    first_new = len(styles)
    big = grow(net).to(dev)
    params = freeze_all_but_new_rows(big, first_new)
    opt = torch.optim.Adam(params, lr=lr)
    step, used = 0, 0.0
    if state is not None:
        sd = big.state_dict()
        for k, v in state["rows"].items():
            sd[k][first_new:] = v
        big.load_state_dict(sd)
        opt.load_state_dict(state["optimizer"])
        step, used = int(state["step"]), float(state["seconds"])
        common.set_rng_state(state["rng"])
        print(f"style add: resumed {name!r} at step {step} ({used / 60:.1f} of {minutes:g} min)", file=sys.stderr)

    lossnet = build_loss_network(loss_net, dev)
    d = DEFAULT_LAYERS[loss_net]
    terms = build_terms(loss_recipe(keep_scene), {"content": d.content, "style": d.style})
    style_vec = torch.zeros(1, first_new + 1, device=dev)
    style_vec[0, first_new] = 1
    for t in terms:
        if isinstance(t, Style):
            # A one-painting Gram table indexed by the last style only: other rows never enter the loss.
            g = StyleGrams(lossnet, list(t.taps), [painting_tensor(bgr).to(dev)])
            t.grams = g
    taps = sorted({k for t in terms for k in t.taps})
    content_taps = sorted({k for t in terms for k in t.content_taps})
    crops = ContentCrops(photo_paths, crop, margin=0)  # the photo scale the shipped styles were trained at
    sampler = torch.utils.data.RandomSampler(crops, replacement=True, num_samples=10**9)
    batches = infinite(torch.utils.data.DataLoader(crops, batch_size=BATCH, sampler=sampler, drop_last=True))
    amp = dev.type == "cpu" or (dev.type == "cuda" and torch.cuda.is_bf16_supported())

    def loss_of(x: torch.Tensor, style: torch.Tensor):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            v = Views(big(x, style), x, style[:, first_new:])  # the Gram table has one style: weight 1
            v.features = lossnet.features(v.output, taps)
            with torch.no_grad():
                if content_taps:
                    v.content_features = lossnet.features(x, content_taps)
            return weighted_sum(terms, v)

    started = "resumed"
    if state is None and start == "nearest":
        probe = torch.cat([next(batches) for _ in range(2)]).to(dev)
        started = choose_start(big, first_new, lambda: float(loss_of(probe, style_vec.expand(len(probe), -1))[0]))
        started = "mean" if started == "mean" else f"{styles[int(started)]}'s row"
        print(f"style add: starting from {started}", file=sys.stderr)

    def save() -> Path:
        common.save_checkpoint(state_path, {"kind": KIND, "run": run_id, "rows": rows_of(big, first_new),
                                            "optimizer": opt.state_dict(), "step": step, "seconds": used,
                                            "rng": common.rng_state()})
        return state_path

    budget = minutes * 60 if minutes > 0 else float("inf")
    eta = Eta(f"style add {name}")

    def progress() -> tuple[float, float]:
        """(fraction done, seconds left) by whichever limit comes first."""
        by_steps = step / steps if steps > 0 else 0.0
        by_time = used / budget if budget != float("inf") else 0.0
        rate = used / max(step, 1)
        left = min(budget - used, (steps - step) * rate if steps > 0 else float("inf"))
        return max(by_steps, by_time), max(0.0, left)

    last_save, loss_value = time.perf_counter(), float("nan")
    big.train()
    one = torch.ones(BATCH, 1, device=dev) * style_vec
    state_path.parent.mkdir(parents=True, exist_ok=True)
    resume_hint = f"artcam style add {painting} --name {name} --into {into} --resume"
    try:
        with common.StopBetweenSteps() as stop:
            while used < budget and (steps <= 0 or step < steps):
                t0 = time.perf_counter()
                x = next(batches).to(dev)
                for g in opt.param_groups:  # flat, then a linear decay over the last 30%
                    g["lr"] = lr * min(1.0, max(0.1, (1.0 - progress()[0]) / 0.3))
                loss, values = loss_of(x, one)
                common.check_finite(loss.detach(), step + 1, state_path if state_path.is_file() else None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                used += time.perf_counter() - t0
                loss_value = float(values["style"].detach()) if "style" in values else float(loss.detach())
                eta.show(*progress(), step, loss_value)
                if time.perf_counter() - last_save > SAVE_EVERY_S:
                    save()
                    last_save = time.perf_counter()
                stop.check(step, save)
    except Interrupted as e:
        raise Interrupted(f"stopped after step {step}, nothing published; continue with: {resume_hint}",
                          terminated=e.terminated) from None
    eta.show(*progress(), step, loss_value, final=True)
    save()  # a failed publish below can still be retried with --resume

    prov = {
        "command": "artcam " + " ".join(argv or ["style", "add", str(painting)]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "net": {k: v for k, v in big.cfg.to_dict().items() if k != "num_styles"},
        "base": {"name": meta.name, "styles": styles, "content_hash": meta.content_hash},
        "added": dict(meta.provenance.get("added", {}), **{name: {
            "painting": Path(painting).name, "painting_sha256": _sha(painting_bytes), "steps": step,
            "seconds": round(used, 1), "photos": len(photo_paths), "loss_net": loss_net, "keep_scene": keep_scene}}),
    }
    if meta.provenance.get("base"):
        prov["base"] = meta.provenance["base"]
    ckpt = {"config": {"net": big.cfg.to_dict(), "styles": styles + [name], "name": into},
            "model": big.state_dict(), "provenance": prov, "step": step}
    try:
        report = export_checkpoint(ckpt, target)
    except OSError as e:
        raise InputError(f"cannot write {target}: {e.strerror or e}",
                         f"free space or fix permissions, then: artcam style add {painting} --name {name} --resume"
                         ) from e
    if not report.passed:  # export_model refuses to write a failing export; this is a second guard
        raise TrainingError(f"the exported model differs from the trained one: {report.lines()}")
    state_path.unlink(missing_ok=True)
    print(f"style add: {name!r} learned in {used / 60:.1f} min ({step} steps); wrote {target} "
          f"({len(styles) + 1} styles)\n  try: artcam live --source 0 --style {name}", file=sys.stderr)
    return target


# --- the command -----------------------------------------------------------------------------------------


def remove_style(name: str, into: str = DEFAULT_INTO) -> Path:
    """Rewrite the user model without style ``name`` (its rows dropped), atomically."""
    target = user_dir() / f"{style_name(into)}.onnx"
    if not target.is_file():
        raise InputError(f"no user model {into!r} in {user_dir()}", "see `artcam models`")
    net, meta = load_stylizer(target)
    styles = list(meta.styles)
    if name not in styles:
        raise InputError(f"{into!r} has no style {name!r}", f"its styles: {', '.join(styles)}")
    if len(styles) == 1:
        raise InputError(f"{name!r} is the last style of {into!r}", f"delete the file instead: {target}")
    keep = [i for i, s in enumerate(styles) if s != name]
    cfg = StylizerConfig.from_dict(dict(net.cfg.to_dict(), num_styles=len(keep)))
    small = StylizerNet(cfg)
    small.load_state_dict({k: (v[keep] if k.endswith((".gamma", ".beta")) else v) for k, v in net.state_dict().items()})
    prov = dict(meta.provenance)
    prov["added"] = {k: v for k, v in prov.get("added", {}).items() if k != name}
    export_checkpoint({"config": {"net": cfg.to_dict(), "styles": [styles[i] for i in keep], "name": meta.name},
                       "model": small.state_dict(), "provenance": prov, "step": 0}, target)
    return target


def main(argv: list[str] | None = None) -> int:
    from artcam.runtime.cli import ArgParser

    argv = list(sys.argv[1:] if argv is None else argv)
    p = ArgParser(prog="artcam style", description="Add your own painting to the stylizer, or remove one.")
    sub = p.add_subparsers(dest="action", required=True, metavar="add|remove")
    a = sub.add_parser("add", help="learn a painting as a new style (minutes on a CPU)",
                       description=__doc__.split("\n\n")[0])
    a.add_argument("painting", help="the painting: JPEG, PNG or WebP")
    a.add_argument("--name", default="", help="style name (default: the file name)")
    a.add_argument("--into", default=DEFAULT_INTO,
                   help=f"user model to add it to, created from --base when absent (default {DEFAULT_INTO})")
    a.add_argument("--base", default="", help=f"start from this stylizer (default: --into if it exists, else "
                                              f"{DEFAULT_STYLIZER})")
    a.add_argument("--minutes", type=float, default=5.0,
                   help="time budget (default 5; the style loss flattens after about 200 steps)")
    a.add_argument("--steps", type=int, default=0, help="stop after this many steps (default: the time budget)")
    a.add_argument("--photos", nargs="*", default=None,
                   help="folders of photos to learn on (default $ARTCAM_DATA/photos, else scikit-image's samples)")
    a.add_argument("--resume", action="store_true", help="continue a run stopped by Ctrl-C")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--loss-net", default="vgg19", choices=["vgg19", "random"],
                   help="loss network (random: a fixed random net, for tests only)")
    a.add_argument("--crop", type=int, default=CROP, help=f"training crop in px (default {CROP})")
    a.add_argument("--lr", type=float, default=LR, help=f"learning rate (default {LR:g})")
    a.add_argument("--start", default="nearest", choices=["nearest", "mean"],
                   help="start the new style from the nearest existing style (default) or their mean")
    a.add_argument("--keep-scene", type=float, default=KEEP_SCENE,
                   help=f"how much of the photo's scene the style keeps, against the shipped styles' balance (1.0); "
                        f"lower is bolder (default {KEEP_SCENE:g})")
    r = sub.add_parser("remove", help="remove a style from a user model")
    r.add_argument("name")
    r.add_argument("--from", dest="into", default=DEFAULT_INTO, help=f"user model (default {DEFAULT_INTO})")
    args = p.parse_args(argv)
    if args.action == "remove":
        print(f"removed {args.name!r}; wrote {remove_style(args.name, args.into)}", file=sys.stderr)
        return 0
    if args.minutes < 0 or args.steps < 0 or args.crop < 32:
        raise InputError("--minutes and --steps must be >= 0, --crop >= 32")
    if not 0 < args.keep_scene <= 100:
        raise InputError(f"--keep-scene {args.keep_scene:g} is out of range", "pass a number in (0, 100], e.g. 0.1")
    add_style(args.painting, name=args.name, into=args.into, base=args.base, minutes=args.minutes,
              steps=args.steps, photos=args.photos, resume=args.resume, seed=args.seed, loss_net=args.loss_net,
              crop=args.crop, lr=args.lr, start=args.start, keep_scene=args.keep_scene, argv=["style", *argv])
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

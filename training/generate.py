"""``artcam train generate``: a GAN that paints new artworks from a folder of paintings.

DCGAN-family nets (training/gan_nets.py) with the stabilisers that matter on a few thousand images:
spectral norm in D, hinge loss, an EMA of G's weights, DiffAugment on real and fake images, and
optional class conditioning on sub-folder names (projection discriminator). Images are decoded,
letterbox-trimmed, centre-cropped and resized once, then kept in memory as uint8.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import InputError
from artcam.runtime.fileio import atomic_write_text, read_image, write_image
from artcam.training import common
from artcam.training.common import TrainingError
from artcam.training.diffaug import diff_augment, parse_policy
from artcam.training.gan_nets import (
    GanConfig,
    Generator,
    build,
    copy_for_ema,
    count_params,
    ema_update,
    recalibrate_bn,
)

KIND = "generate"
# Fewer paintings than this and D memorises the set within a few hundred steps even with DiffAugment
# (its paper reports usable results from 100 images); the Frechet and nearest-neighbour checks also
# need a few dozen images to mean anything. Conditional runs need MIN_PER_CLASS in every class.
MIN_IMAGES = 64
MIN_PER_CLASS = 8


# --- data --------------------------------------------------------------------------------------


def trim_letterbox(img: np.ndarray, dark: int = 12, min_keep: float = 0.5) -> np.ndarray:
    """Cut uniform black bars (letterbox padding) off the edges of a BGR image.

    A row/column counts as padding when almost all its pixels are near black; the trim is skipped
    when it would keep less than ``min_keep`` of a side (a genuinely dark painting).
    """
    grey = img.max(axis=2)
    rows = (grey > dark).mean(axis=1) > 0.02
    cols = (grey > dark).mean(axis=0) > 0.02
    h, w = grey.shape
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    if len(ys) == 0 or len(xs) == 0:
        return img
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    if (y1 - y0) < min_keep * h or (x1 - x0) < min_keep * w:
        return img
    return img[y0:y1, x0:x1]


def square_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, then resize (area filter when shrinking) to ``size`` x ``size``."""
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = img[y : y + s, x : x + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def find_paintings(data: str | Path, conditional: bool) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """Image paths, class index per image, class names (sub-folders; () when unconditional)."""
    data = Path(data)
    paths = common.list_images(data)
    if not conditional:
        if len(paths) < MIN_IMAGES:
            raise TrainingError(
                f"{data} holds {len(paths)} images; a GAN needs at least {MIN_IMAGES}",
                f"add paintings (a few hundred or more train well); {MIN_IMAGES} is the floor below which "
                "D memorises the set",
            )
        return paths, np.zeros(len(paths), np.int64), ()
    classes = tuple(sorted({p.relative_to(data).parts[0] for p in paths if len(p.relative_to(data).parts) > 1}))
    loose = [p for p in paths if len(p.relative_to(data).parts) == 1]
    if not classes:
        raise TrainingError(f"--conditional needs one sub-folder per class in {data}, found none",
                            "arrange paintings as DATA/<style>/*.jpg or drop --conditional")
    if loose:
        raise TrainingError(f"{len(loose)} images lie directly in {data}, outside any class folder (e.g. {loose[0].name})",
                            "move them into a class sub-folder or drop --conditional")
    labels = np.array([classes.index(p.relative_to(data).parts[0]) for p in paths], np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    if len(paths) < MIN_IMAGES or counts.min() < MIN_PER_CLASS:
        few = ", ".join(f"{c}={n}" for c, n in zip(classes, counts) if n < MIN_PER_CLASS) or "none"
        raise TrainingError(
            f"{data} holds {len(paths)} images in {len(classes)} classes (under {MIN_PER_CLASS}: {few}); a "
            f"conditional GAN needs at least {MIN_IMAGES} images and {MIN_PER_CLASS} per class",
            "add paintings or drop --conditional",
        )
    return paths, labels, classes


def load_paintings(paths: Sequence[Path], size: int, log=print) -> tuple[np.ndarray, list[Path]]:
    """Decode every image once -> ((N, size, size, 3) RGB uint8, unreadable paths); greyscale and odd sizes converted."""
    out = np.empty((len(paths), size, size, 3), np.uint8)
    bad = []
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        try:
            img = read_image(p)
        except InputError:
            bad.append(p)
            continue
        out[i - len(bad)] = square_resize(trim_letterbox(img), size)[:, :, ::-1]
    if bad:
        log(f"skipped {len(bad)} unreadable images (e.g. {bad[0]})")
    log(f"decoded {len(paths) - len(bad)} paintings at {size}px in {time.perf_counter() - t0:.1f}s")
    return out[: len(paths) - len(bad)], bad


def to_tensor(batch_u8: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float in [-1, 1]."""
    x = torch.from_numpy(batch_u8).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0).contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) RGB uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def grid(images_rgb: np.ndarray, ncols: int, pad: int = 2) -> np.ndarray:
    from artcam.runtime.latent_walk import make_grid

    return make_grid(images_rgb, ncols, pad=pad)


# --- sampling ----------------------------------------------------------------------------------


def fixed_inputs(cfg: GanConfig, n: int, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Seeded latents (and cycling classes when conditional) for comparable sample grids."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.latent, generator=g)
    if not cfg.conditional:
        return z, None
    y = F.one_hot(torch.arange(n) % len(cfg.classes), len(cfg.classes)).float()
    return z, y


@torch.no_grad()
def sample(g: Generator, n: int, seed: int, device: torch.device, batch: int = 100,
           labels: np.ndarray | None = None) -> torch.Tensor:
    """n images (CPU float [-1, 1]) from G in eval mode; classes uniform unless ``labels`` given."""
    g.eval()
    gen = torch.Generator().manual_seed(seed)
    ncls = len(g.cfg.classes)
    outs = []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        z = torch.randn(m, g.cfg.latent, generator=gen)
        y = None
        if ncls:
            idx = torch.from_numpy(labels[i : i + m]) if labels is not None else torch.randint(ncls, (m,), generator=gen)
            y = F.one_hot(idx, ncls).float().to(device)
        outs.append(g(z.to(device), y).float().cpu())
    return torch.cat(outs)


# --- checkpoints and export --------------------------------------------------------------------


def generator_from_checkpoint(ckpt: dict) -> Generator:
    cfg = GanConfig.from_dict(ckpt["config"])
    g = Generator(cfg)
    g.load_state_dict(ckpt["model"])
    return g.eval()


SLIM_KEYS = ("kind", "arch", "config", "step", "name", "model", "fd_history", "best_fd", "provenance")


def slim_checkpoint(checkpoint: dict) -> dict:
    """Only what export and evaluation need (EMA G weights, config, history): about a third of
    the size, and it cannot be resumed from."""
    return {k: checkpoint[k] for k in SLIM_KEYS if k in checkpoint}


def export_spec(checkpoint: dict) -> dict:
    """The EMA generator (BatchNorm recalibrated when saved) as an export bundle for export_model."""
    from artcam.runtime.modelfile import ClassInput, ImageOutput, LatentInput, ModelMeta

    g = generator_from_checkpoint(checkpoint).cpu()
    cfg = g.cfg
    z, y = fixed_inputs(cfg, 2, seed=7)
    inputs = {"z": z}
    axes = {"z": {0: "N"}, "image": {0: "N"}}
    if cfg.conditional:
        inputs["class"] = y
        axes["class"] = {0: "N"}
    desc = (f"DCGAN-family generator ({count_params(g) / 1e6:.2f}M params), {cfg.size}px RGB in [-1, 1] from a "
            f"{cfg.latent}-d standard normal latent" + (f", conditional on {len(cfg.classes)} styles" if cfg.conditional else ""))
    prov = dict(checkpoint.get("provenance", {}))
    prov.update({"step": checkpoint.get("step"), "arch": cfg.arch})
    if checkpoint.get("fd_history"):
        prov["fd_history"] = checkpoint["fd_history"]
    meta = ModelMeta(
        task="generate",
        name=checkpoint.get("name", f"generator_art{cfg.size}"),
        latent=LatentInput("z", cfg.latent),
        classes=ClassInput("class", tuple(cfg.classes)) if cfg.conditional else None,
        output=ImageOutput("image", range=(-1.0, 1.0)),
        description=desc,
        provenance=prov,
    )
    return {"model": g, "meta": meta, "example_inputs": inputs, "output_names": ["image"], "dynamic_axes": axes}


def export_checkpoint(checkpoint: dict, path: str | Path, atol: float = 1e-4):
    """Write the ONNX generator with metadata; parity checked on a few batches of latents."""
    from artcam.export.onnx_export import export_model

    spec = export_spec(checkpoint)
    cfg = spec["model"].cfg
    feeds = []
    for n, seed in ((1, 11), (4, 12)):
        z, y = fixed_inputs(cfg, n, seed)
        f = {"z": z.numpy()}
        if y is not None:
            f["class"] = y.numpy()
        feeds.append(f)
    return export_model(spec["model"], spec["example_inputs"], spec["output_names"], spec["meta"], path,
                        dynamic_axes=spec["dynamic_axes"], verify_inputs=feeds, atol=atol)


# --- training ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = ArgParser(prog="artcam train generate", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of paintings (sub-folders = classes with --conditional)")
    p.add_argument("--size", type=int, default=64, choices=(64, 128))
    p.add_argument("--conditional", action="store_true", help="condition G and D on the sub-folder names")
    p.add_argument("--steps", type=int, default=5000, help="total G steps (a resumed run continues to this)")
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=2e-4)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--g-base", type=int, default=64, help="G channels at full resolution (x2 per halving, cap x8)")
    p.add_argument("--d-base", type=int, default=64)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of G's weights (warmed up over early steps)")
    p.add_argument("--diffaug", default="color,translation,cutout", help="DiffAugment policy, or 'none'")
    p.add_argument("--out", default="runs/generate")
    p.add_argument("--name", default="", help="model name in the exported metadata (default generator_art<size>)")
    p.add_argument("--resume", default=None, help="checkpoint to continue from (e.g. OUT/last.pt)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="mixed precision: bf16 autocast (fp16 + grad scaling on GPUs without bf16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=int, default=250)
    p.add_argument("--eval-every", type=int, default=500, help="Frechet distance every N steps (0 = only at the ends)")
    p.add_argument("--eval-samples", type=int, default=1000, help="generated images per Frechet evaluation")
    p.add_argument("--eval-real", type=int, default=2000, help="real images for the Frechet reference (0 = all)")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--no-eval", action="store_true", help="skip Frechet evaluation (tests, quick runs)")
    p.add_argument("--no-export", action="store_true", help="do not write OUT/generator.onnx at the end")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop training after this much wall time (then evaluate, save and export as at --steps)")
    a = p.parse_args(list(argv))
    for name in ("steps", "batch_size", "latent", "g_base", "d_base", "sample_every", "ckpt_every"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not 0.0 <= a.ema < 1.0:
        p.error("--ema must be in [0, 1)")
    try:
        a.diffaug = parse_policy(a.diffaug)
    except ValueError as e:
        p.error(str(e))
    return a


class Trainer:
    def __init__(self, args: argparse.Namespace, argv: Sequence[str]):
        self.args = args
        self.device = common.pick_device(args.device)
        self.rank, self.world, self.device = common.setup_distributed(self.device)
        self.main = self.rank == 0
        self.out = Path(args.out)
        self.log = (lambda m: print(f"[generate] {m}", file=sys.stderr, flush=True)) if self.main else (lambda m: None)
        if args.threads:
            torch.set_num_threads(args.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        common.seed_everything(args.seed + self.rank)

        resume = common.load_checkpoint(args.resume, KIND) if args.resume else None
        paths, labels, classes = find_paintings(args.data, args.conditional)
        if resume is not None:
            cfg = GanConfig.from_dict(resume["config"])
            if cfg.size != args.size or cfg.conditional != args.conditional or (cfg.conditional and cfg.classes != classes):
                raise TrainingError(f"{args.resume} was trained as {cfg.arch} on classes {list(cfg.classes)}; "
                                    f"this run asks for size {args.size}, conditional={args.conditional}, classes {list(classes)}",
                                    "use the same --size/--conditional/--data, or start without --resume")
        else:
            cfg = GanConfig(size=args.size, latent=args.latent, g_base=args.g_base, d_base=args.d_base, classes=classes)
        self.cfg = cfg
        self.images, bad = load_paintings(paths, cfg.size, self.log)
        keep = np.array([p not in set(bad) for p in paths]) if bad else np.ones(len(paths), bool)
        self.labels = labels[keep]
        if len(self.images) < MIN_IMAGES:
            raise TrainingError(f"only {len(self.images)} of {len(paths)} images in {args.data} are readable; "
                                f"a GAN needs at least {MIN_IMAGES}", "add or fix the images")

        self.g, self.d = build(cfg)
        self.g.to(self.device)
        self.d.to(self.device)
        self.g_ema = copy_for_ema(self.g)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=args.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=args.lr_d, betas=(0.5, 0.999))
        # bf16 where the hardware has it (no overflow, no loss scaling); fp16 + GradScaler on older GPUs
        fp16 = self.device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.amp_dtype = torch.float16 if fp16 else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=args.amp and fp16)
        self.step = 0
        self.fd_history: list[list[float]] = []
        self.best_fd = math.inf
        self.provenance = common.provenance(["generate", *argv], str(args.data), images=len(self.images),
                                            classes=list(classes))
        self.order = np.random.default_rng(args.seed + 1000 * self.rank).permutation(len(self.images))
        self.cursor = 0
        if resume is not None:
            self.g.load_state_dict(resume["g"])
            self.d.load_state_dict(resume["d"])
            self.g_ema.load_state_dict(resume["model"])
            self.opt_g.load_state_dict(resume["opt_g"])
            self.opt_d.load_state_dict(resume["opt_d"])
            if resume.get("scaler"):
                self.scaler.load_state_dict(resume["scaler"])
            self.step = int(resume["step"])
            self.fd_history = [list(x) for x in resume.get("fd_history", [])]
            self.best_fd = float(resume.get("best_fd", math.inf))
            self.provenance = resume.get("provenance", self.provenance)
            if resume.get("rng"):
                common.set_rng_state(resume["rng"])
            self.order, self.cursor = np.asarray(resume["order"]), int(resume["cursor"])
            self.log(f"resumed from {args.resume} at step {self.step}")
        self.g_train, self.d_train = self.g, self.d
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DDP(self.g, device_ids=ids)
            self.d_train = DDP(self.d, device_ids=ids)
        self.log(f"{cfg.arch}: G {count_params(self.g) / 1e6:.2f}M D {count_params(self.d) / 1e6:.2f}M params, "
                 f"{len(self.images)} paintings, {len(classes) or 'no'} classes, device {self.device}"
                 f"{' x' + str(self.world) if self.world > 1 else ''}, diffaug {','.join(args.diffaug) or 'none'}")
        self.frechet = None  # built lazily (needs the EfficientNet weights)
        self._recalibrated_at = -1

    # -- data --
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = self.args.batch_size
        if self.cursor + n > len(self.order):
            self.order = np.random.permutation(len(self.images))
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + n] if n <= len(self.order) else np.random.randint(0, len(self.images), n)
        self.cursor += n
        u8 = self.images[idx]
        flip = np.random.rand(len(idx)) < 0.5
        u8 = np.where(flip[:, None, None, None], u8[:, :, ::-1], u8)
        x = to_tensor(np.ascontiguousarray(u8), self.device)
        y = None
        if self.cfg.conditional:
            y = F.one_hot(torch.from_numpy(self.labels[idx]), len(self.cfg.classes)).float().to(self.device)
        return x, y

    def random_classes(self, n: int) -> torch.Tensor | None:
        if not self.cfg.conditional:
            return None
        # draw fake classes with the data's class frequencies
        idx = torch.from_numpy(self.labels[np.random.randint(0, len(self.labels), n)])
        return F.one_hot(idx, len(self.cfg.classes)).float().to(self.device)

    # -- one step --
    def train_step(self) -> dict[str, float]:
        a, dev = self.args, self.device
        pol = a.diffaug
        real, y_real = self.next_batch()
        n = real.shape[0]
        z = torch.randn(n, self.cfg.latent, device=dev)
        y_fake = self.random_classes(n)
        amp = dict(device_type=dev.type, dtype=self.amp_dtype, enabled=a.amp)

        # D: hinge loss on augmented real and fake in one pass (one SN power iteration per step)
        for p in self.d.parameters():
            p.requires_grad_(True)
        with torch.autocast(**amp):
            fake = self.g_train(z, y_fake)
            both = diff_augment(torch.cat([real, fake.detach()]), pol)
            yb = torch.cat([y_real, y_fake]) if y_real is not None else None
            out = self.d_train(both, yb).float()
            d_real, d_fake = out[:n], out[n:]
            loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)

        # G: non-saturating hinge generator loss through the same augmentation
        for p in self.d.parameters():
            p.requires_grad_(False)
        with torch.autocast(**amp):
            loss_g = -self.d(diff_augment(fake, pol), y_fake).float().mean()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.step += 1
        decay = min(a.ema, (1.0 + self.step) / (10.0 + self.step))
        ema_update(self.g_ema, self.g, decay)
        common.check_finite(loss_d.detach() + loss_g.detach(), self.step, self.out / "last.pt")
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}

    # -- outputs --
    def ema_for_inference(self) -> Generator:
        """EMA G with BatchNorm statistics re-estimated for its weights (once per step)."""
        if self._recalibrated_at != self.step:
            recalibrate_bn(self.g_ema, batches=4, batch_size=min(64, 2 * self.args.batch_size), seed=0)
            self._recalibrated_at = self.step
        return self.g_ema.eval()

    def save(self, path: Path) -> None:
        self.ema_for_inference()
        state = {
            "kind": KIND, "arch": self.cfg.arch, "config": self.cfg.to_dict(), "step": self.step,
            "name": self.args.name or f"generator_art{self.cfg.size}",
            "model": self.g_ema.state_dict(), "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "optimizer": {"g": "opt_g", "d": "opt_d"}, "scaler": self.scaler.state_dict(),
            "rng": common.rng_state(), "order": self.order, "cursor": self.cursor,
            "fd_history": self.fd_history, "best_fd": self.best_fd, "provenance": self.provenance,
            "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self.args).items()},
        }
        common.save_checkpoint(path, state)

    def write_samples(self) -> Path:
        g = self.ema_for_inference()
        z, y = fixed_inputs(self.cfg, 64)
        with torch.no_grad():
            imgs = to_uint8(g(z.to(self.device), None if y is None else y.to(self.device)))
        path = self.out / "samples" / f"step{self.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, grid(imgs, 8 if not self.cfg.conditional else len(self.cfg.classes))[:, :, ::-1])
        return path

    def evaluate(self) -> float:
        from artcam.training import frechet

        if self.frechet is None:
            self.frechet = frechet.PaintingFrechet(self.images, device=self.device, max_real=self.args.eval_real,
                                                   cache=self.out / f"real_features_{self.cfg.size}.npz")
        g = self.ema_for_inference()
        t0 = time.perf_counter()
        fd = self.frechet.distance(g, self.args.eval_samples, seed=4321)
        self.fd_history = [h for h in self.fd_history if h[0] != self.step] + [[self.step, fd]]
        self.log(f"step {self.step}: FD(EfficientNet-Lite0) = {fd:.2f} ({self.args.eval_samples} samples, "
                 f"{time.perf_counter() - t0:.0f}s)")
        atomic_write_text(self.out / "fd_history.json", json.dumps(self.fd_history, indent=1))
        frechet.plot_fd(self.fd_history, self.out / "fd_vs_step.png",
                        title=f"{self.cfg.arch}: Frechet distance (EfficientNet-Lite0 features, not Inception FID)")
        if fd < self.best_fd:
            self.best_fd = fd
            self.save(self.out / "best.pt")
        return fd

    def _out_of_time(self, deadline: float) -> bool:
        """Every rank must stop at the same step: rank 0 decides and broadcasts under DDP."""
        if not math.isfinite(deadline):
            return False
        stop = torch.tensor([float(time.monotonic() > deadline)], device=self.device)
        if self.world > 1:
            import torch.distributed as dist

            dist.broadcast(stop, 0)
        return bool(stop.item())

    def run(self) -> int:
        a = self.args
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.step == 0:
                self.write_samples()
                if not a.no_eval:
                    self.evaluate()  # the untrained generator: the baseline the trained one must beat
        prog = common.Progress(a.steps, desc="generate", every=50, enabled=self.main)
        deadline = time.monotonic() + a.max_minutes * 60 if a.max_minutes > 0 else math.inf
        while self.step < a.steps:
            if self._out_of_time(deadline):
                self.log(f"--max-minutes {a.max_minutes} reached at step {self.step}")
                break
            m = self.train_step()
            prog.update(self.step, a.batch_size * self.world, **m)
            if not self.main:
                continue
            if self.step % a.sample_every == 0:
                self.write_samples()
            if not a.no_eval and a.eval_every and self.step % a.eval_every == 0:
                self.evaluate()
            if self.step % a.ckpt_every == 0:
                self.save(self.out / "last.pt")
        prog.close()
        if self.main:
            if not a.no_eval and (not self.fd_history or self.fd_history[-1][0] != self.step):
                self.evaluate()
            self.write_samples()
            self.save(self.out / "last.pt")
            self.log(f"checkpoint {self.out / 'last.pt'} at step {self.step}")
            if not a.no_export:
                ckpt = common.load_checkpoint(self.out / "last.pt", KIND)
                rep = export_checkpoint(ckpt, self.out / "generator.onnx")
                self.log(f"exported {self.out / 'generator.onnx'}\n" + "\n".join(rep.lines()))
        common.cleanup_distributed()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    return Trainer(args, argv).run()


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

"""``artcam train generate``: a GAN that paints new artworks from a folder of paintings.

DCGAN-family nets (training/gan_nets.py) with the stabilisers that matter on a few thousand images:
spectral norm in D, hinge loss, an EMA of G's weights, DiffAugment on real and fake images, and
optional class conditioning on sub-folder names (projection discriminator). Images are decoded,
letterbox-trimmed, centre-cropped and resized once, then kept in memory as uint8.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.errors import InputError
from artcam.runtime.fileio import atomic_write_text, data_root, read_image, write_image
from artcam.training import common
from artcam.training.common import TrainingError
from artcam.training.diffaug import diff_augment, parse_policy
from artcam.training.gan_nets import (
    GanConfig,
    GeneratorNet,
    build,
    copy_for_ema,
    count_params,
    ema_update,
    recalibrate_bn,
)
from artcam.training.skeleton import TRAIN_KEYS, Run, Task, main_for

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
def sample(g: GeneratorNet, n: int, seed: int, device: torch.device, batch: int = 100,
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


def generator_from_checkpoint(ckpt: dict) -> GeneratorNet:
    cfg = GanConfig.from_dict(ckpt["config"])
    g = GeneratorNet(cfg)
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


SCHEMA: dict = {
    "name": "",  # model name in the exported metadata (default generator_art<size>)
    "net": {"size": 64, "conditional": False, "latent": 128,
            "g_base": 64, "d_base": 64},  # channels at full resolution (x2 per halving, cap x8)
    "data": {"root": "", "folder": ""},  # paintings: root/folder (sub-folders = classes when conditional)
    "train": {
        **TRAIN_KEYS, "steps": 5000, "batch_size": 32, "lr_g": 2e-4, "lr_d": 2e-4,
        "ema": 0.999,  # EMA decay of G's weights (warmed up over early steps)
        "diffaug": "color,translation,cutout",  # DiffAugment policy, or "none"
        "threads": 0,  # torch CPU threads (0: torch's default)
        "sample_every": 250, "ckpt_every": 200, "log_every": 50,
    },
    "eval": {"enabled": True, "every": 500,  # Frechet distance every N steps (0: only at the ends)
             "samples": 1000, "real": 2000},  # generated / real images per evaluation (0 real: all)
}

LEGACY_FLAGS = {
    "--size": "net.size", "--conditional": "net.conditional=true", "--latent": "net.latent",
    "--g-base": "net.g_base", "--d-base": "net.d_base", "--name": "name", "--steps": "train.steps",
    "--batch-size": "train.batch_size", "--lr-g": "train.lr_g", "--lr-d": "train.lr_d", "--ema": "train.ema",
    "--diffaug": "train.diffaug", "--device": "train.device", "--amp": "train.amp=true", "--seed": "train.seed",
    "--sample-every": "train.sample_every", "--ckpt-every": "train.ckpt_every", "--threads": "train.threads",
    "--max-minutes": "train.minutes", "--eval-every": "eval.every", "--eval-samples": "eval.samples",
    "--eval-real": "eval.real", "--no-eval": "eval.enabled=false",
}


def check_recipe(r: dict) -> None:
    net, tr = r["net"], r["train"]
    for key, v in (("net.latent", net["latent"]), ("net.g_base", net["g_base"]), ("net.d_base", net["d_base"]),
                   ("train.steps", tr["steps"]), ("train.batch_size", tr["batch_size"]),
                   ("train.sample_every", tr["sample_every"])):
        if v < 1:
            raise TrainingError(f"{key} must be positive, not {v}")
    if net["size"] not in (64, 128):
        raise TrainingError(f"net.size {net['size']} is not a generator size", "use 64 or 128")
    if not 0.0 <= tr["ema"] < 1.0:
        raise TrainingError(f"train.ema {tr['ema']} is not in [0, 1)")
    try:
        parse_policy(tr["diffaug"])
    except ValueError as e:
        raise TrainingError(str(e)) from e


class GenerateTask(Task):
    kind = KIND
    schema = SCHEMA
    description = "Train a GAN that paints new artworks from a folder of paintings (recipe + key=value overrides)."
    legacy_flags = LEGACY_FLAGS
    onnx_name = "generator.onnx"

    def build(self, run: Run) -> None:
        r, tr = self.recipe, self.recipe["train"]
        check_recipe(r)
        self.diffaug = parse_policy(tr["diffaug"])
        self.images_per_step = tr["batch_size"]
        if tr["threads"]:
            torch.set_num_threads(tr["threads"])
        root = r["data"]["root"] or str(data_root())
        self.data = Path(root) / r["data"]["folder"] if r["data"]["folder"] else Path(root)
        net, resume = r["net"], run.resume
        paths, labels, classes = find_paintings(self.data, net["conditional"])
        if resume is not None:
            cfg = GanConfig.from_dict(resume["config"])
            if cfg.size != net["size"] or cfg.conditional != net["conditional"] or (cfg.conditional and cfg.classes != classes):
                raise TrainingError(f"{run.args.resume} was trained as {cfg.arch} on classes {list(cfg.classes)}; this "
                                    f"run asks for size {net['size']}, conditional={net['conditional']}, classes "
                                    f"{list(classes)}", "use the same net.size/net.conditional/data, or start afresh")
        else:
            cfg = GanConfig(size=net["size"], latent=net["latent"], g_base=net["g_base"], d_base=net["d_base"],
                            classes=classes)
        self.cfg = cfg
        self.name = r["name"] or f"generator_art{cfg.size}"
        if not run.args.out:
            run.out = Path(f"runs/{self.name}")
        self.images, bad = load_paintings(paths, cfg.size, run.log)
        keep = np.array([p not in set(bad) for p in paths]) if bad else np.ones(len(paths), bool)
        self.labels = labels[keep]
        if len(self.images) < MIN_IMAGES:
            raise TrainingError(f"only {len(self.images)} of {len(paths)} images in {self.data} are readable; "
                                f"a GAN needs at least {MIN_IMAGES}", "add or fix the images")
        self.g, self.d = build(cfg)
        self.g.to(run.device)
        self.d.to(run.device)
        if run.init is not None:
            if GanConfig.from_dict(run.init["config"]) != cfg:
                raise TrainingError(f"--init {run.args.init} holds another net", "init from the same recipe's run")
            self.g.load_state_dict(run.init["g"])
            self.d.load_state_dict(run.init["d"])
        self.g_ema = copy_for_ema(self.g)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=tr["lr_g"], betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=tr["lr_d"], betas=(0.5, 0.999))
        self.fd_history: list[list[float]] = []
        self.best_fd = math.inf
        self.order = np.random.default_rng(tr["seed"] + 1000 * run.rank).permutation(len(self.images))
        self.cursor = 0
        self.g_train, self.d_train = run.wrap(self.g), run.wrap(self.d)
        run.log(f"[generate] {cfg.arch}: G {count_params(self.g) / 1e6:.2f}M D {count_params(self.d) / 1e6:.2f}M "
                f"params, {len(self.images)} paintings, {len(classes) or 'no'} classes, device {run.device}"
                f"{' x' + str(run.world) if run.world > 1 else ''}, diffaug {','.join(self.diffaug) or 'none'}")
        self.frechet = None  # built lazily (needs the EfficientNet weights)
        self._recalibrated_at = -1
        self.run = run

    def total_steps(self) -> int:
        return self.recipe["train"]["steps"]

    def data_description(self) -> str:
        return str(self.data)

    def provenance_extra(self) -> dict:
        return {"images": len(self.images), "classes": list(self.cfg.classes)}

    def load_state(self, ckpt: dict) -> None:
        self.g.load_state_dict(ckpt["g"])
        self.d.load_state_dict(ckpt["d"])
        self.g_ema.load_state_dict(ckpt["model"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.fd_history = [list(x) for x in ckpt.get("fd_history", [])]
        self.best_fd = float(ckpt.get("best_fd", math.inf))
        self.order, self.cursor = np.asarray(ckpt["order"]), int(ckpt["cursor"])

    # -- data --
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = self.recipe["train"]["batch_size"]
        if self.cursor + n > len(self.order):
            self.order = np.random.permutation(len(self.images))
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + n] if n <= len(self.order) else np.random.randint(0, len(self.images), n)
        self.cursor += n
        u8 = self.images[idx]
        flip = np.random.rand(len(idx)) < 0.5
        u8 = np.where(flip[:, None, None, None], u8[:, :, ::-1], u8)
        x = to_tensor(np.ascontiguousarray(u8), self.run.device)
        y = None
        if self.cfg.conditional:
            y = F.one_hot(torch.from_numpy(self.labels[idx]), len(self.cfg.classes)).float().to(self.run.device)
        return x, y

    def random_classes(self, n: int) -> torch.Tensor | None:
        if not self.cfg.conditional:
            return None
        # draw fake classes with the data's class frequencies
        idx = torch.from_numpy(self.labels[np.random.randint(0, len(self.labels), n)])
        return F.one_hot(idx, len(self.cfg.classes)).float().to(self.run.device)

    # -- one step --
    def step(self, run: Run) -> dict[str, float]:
        pol = self.diffaug
        real, y_real = self.next_batch()
        n = real.shape[0]
        z = torch.randn(n, self.cfg.latent, device=run.device)
        y_fake = self.random_classes(n)

        # D: hinge loss on augmented real and fake in one pass (one SN power iteration per step)
        for p in self.d.parameters():
            p.requires_grad_(True)
        with run.autocast():
            fake = self.g_train(z, y_fake)
            both = diff_augment(torch.cat([real, fake.detach()]), pol)
            yb = torch.cat([y_real, y_fake]) if y_real is not None else None
            out = self.d_train(both, yb).float()
            d_real, d_fake = out[:n], out[n:]
            loss_d = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        run.optimize(loss_d, self.opt_d)

        # G: non-saturating hinge generator loss through the same augmentation
        for p in self.d.parameters():
            p.requires_grad_(False)
        with run.autocast():
            loss_g = -self.d(diff_augment(fake, pol), y_fake).float().mean()
        run.optimize(loss_g, self.opt_g)
        decay = min(self.recipe["train"]["ema"], (2.0 + run.step) / (11.0 + run.step))
        ema_update(self.g_ema, self.g, decay)
        run.check_finite(loss_d.detach() + loss_g.detach())
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}

    def begin(self, run: Run) -> None:
        if run.main and run.step == 0:
            self.write_samples()
            if self.recipe["eval"]["enabled"]:
                self.evaluate()  # the untrained generator: the baseline the trained one must beat

    def after_step(self, run: Run) -> None:
        if not run.main:
            return
        ev = self.recipe["eval"]
        if run.step % self.recipe["train"]["sample_every"] == 0:
            self.write_samples()
        if ev["enabled"] and ev["every"] and run.step % ev["every"] == 0:
            self.evaluate()

    def finish(self, run: Run) -> None:
        if run.main:
            if self.recipe["eval"]["enabled"] and (not self.fd_history or self.fd_history[-1][0] != run.step):
                self.evaluate()
            self.write_samples()

    # -- outputs --
    def ema_for_inference(self) -> GeneratorNet:
        """EMA G with BatchNorm statistics re-estimated for its weights (once per step)."""
        if self._recalibrated_at != self.run.step:
            recalibrate_bn(self.g_ema, batches=4, batch_size=min(64, 2 * self.recipe["train"]["batch_size"]), seed=0)
            self._recalibrated_at = self.run.step
        return self.g_ema.eval()

    def state(self) -> dict:
        self.ema_for_inference()
        return {
            "arch": self.cfg.arch, "config": self.cfg.to_dict(), "name": self.name,
            "model": self.g_ema.state_dict(), "g": self.g.state_dict(), "d": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "optimizer": {"g": "opt_g", "d": "opt_d"}, "order": self.order, "cursor": self.cursor,
            "fd_history": self.fd_history, "best_fd": self.best_fd,
        }

    def write_samples(self) -> Path:
        g = self.ema_for_inference()
        z, y = fixed_inputs(self.cfg, 64)
        with torch.no_grad():
            imgs = to_uint8(g(z.to(self.run.device), None if y is None else y.to(self.run.device)))
        path = self.run.out / "samples" / f"step{self.run.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, grid(imgs, 8 if not self.cfg.conditional else len(self.cfg.classes))[:, :, ::-1])
        return path

    def evaluate(self) -> float:
        from artcam.training import frechet

        run, ev = self.run, self.recipe["eval"]
        if self.frechet is None:
            self.frechet = frechet.PaintingFrechet(self.images, device=run.device, max_real=ev["real"],
                                                   cache=run.out / f"real_features_{self.cfg.size}.npz")
        g = self.ema_for_inference()
        t0 = time.perf_counter()
        fd = self.frechet.distance(g, ev["samples"], seed=4321)
        self.fd_history = [h for h in self.fd_history if h[0] != run.step] + [[run.step, fd]]
        run.log(f"[generate] step {run.step}: FD(EfficientNet-Lite0) = {fd:.2f} ({ev['samples']} samples, "
                f"{time.perf_counter() - t0:.0f}s)")
        atomic_write_text(run.out / "fd_history.json", json.dumps(self.fd_history, indent=1))
        frechet.plot_fd(self.fd_history, run.out / "fd_vs_step.png",
                        title=f"{self.cfg.arch}: Frechet distance (EfficientNet-Lite0 features, not Inception FID)")
        if fd < self.best_fd:
            self.best_fd = fd
            run.save(run.out / "best.pt")
        return fd

    def export_checkpoint(self, ckpt: dict, path: Path):
        return export_checkpoint(ckpt, path)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(GenerateTask, None if argv is None else list(argv),
                    "artcam train generate --recipe generator_art64 train.steps=2000")


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

"""``artcam train stylize --recipe FILE [key=value ...]``: train a fast multi-style stylizer.

The recipe (``training/recipes/*.toml``, see ``recipe``) names the net, the paintings, the photos, the
schedule and the loss terms (``style_terms``); the run itself (flags, resume, checkpoints, export) is the
shared skeleton's (``skeleton``). Two shipped recipes make the shipped model: ``stylizer_teacher`` (a
Johnson-sized net on the plain content + style + TV loss: the quality ceiling) and ``stylizer_nano`` (the
real-time net, distilled from that teacher's pictures in feature space, plus the style and stability terms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import data_root, read_image, write_image
from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, StyleInput
from artcam.training import common
from artcam.training.common import TrainingError, list_images
from artcam.training.perceptual import DEFAULT_LAYERS, LOSS_NETS, StyleGrams, build_loss_network
from artcam.training.skeleton import TRAIN_KEYS, Run, Task, main_for
from artcam.training.style_terms import Distill, Style, Views, build_terms, weighted_sum
from artcam.training.stylizer_nets import StylizerConfig, StylizerNet, build_stylizer, config_for

KIND = "stylize"
MARGIN = 8  # extra pixels around each crop, room for the stability term's shifts


# --- data ------------------------------------------------------------------------------------------


def load_rgb01(path: Path, long_side: int | None = None) -> torch.Tensor:
    """(1, 3, h, w) float RGB in [0, 1]; TrainingError when unreadable."""
    try:
        bgr = read_image(path)
    except ArtcamError as e:
        raise TrainingError(f"cannot read style image {path}: {e.message}", "pass a readable JPEG/PNG file") from e
    if long_side:
        h, w = bgr.shape[:2]
        s = long_side / max(h, w)
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)


class ContentCrops(torch.utils.data.Dataset):
    """Random crops (size + 2*margin) of photos with scale jitter, flips and mild colour jitter."""

    def __init__(self, paths: list[Path], size: int, scale: tuple[float, float] = (1.0, 1.6), margin: int = MARGIN):
        self.paths, self.size, self.scale, self.margin = paths, size, scale, margin

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        # Seeded from torch's RNG: the run's seed makes runs repeatable, and DataLoader workers get
        # distinct torch seeds, so they never repeat each other.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        full = self.size + 2 * self.margin
        try:
            bgr = read_image(self.paths[i])
        except ArtcamError:
            bgr = np.full((full, full, 3), 127, np.uint8)  # one bad photo must not stop a long run
        h, w = bgr.shape[:2]
        short = full * rng.uniform(*self.scale)
        s = max(short / min(h, w), full / min(h, w))
        bgr = cv2.resize(bgr, (max(full, round(w * s)), max(full, round(h * s))), interpolation=cv2.INTER_AREA)
        h, w = bgr.shape[:2]
        y, x = rng.integers(0, h - full + 1), rng.integers(0, w - full + 1)
        crop = bgr[y:y + full, x:x + full, ::-1].astype(np.float32) / 255
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        gain, bias = rng.uniform(0.9, 1.1), rng.uniform(-0.05, 0.05)
        crop = np.clip(crop * gain + bias, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)


def infinite(loader):
    while True:
        yield from loader


# --- the stability term's second view ------------------------------------------------------------------


def perturb(big: torch.Tensor, size: int, gen: torch.Generator | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """From (N,3,size+2m,size+2m) crops (m >= MARGIN): the centre view and a shifted, noisy, relit view."""
    m = (big.shape[-1] - size) // 2
    dy, dx = (int(v) for v in torch.randint(-MARGIN // 2, MARGIN // 2 + 1, (2,), generator=gen))
    x = big[..., m:m + size, m:m + size]
    y = big[..., m + dy:m + dy + size, m + dx:m + dx + size]
    n = big.shape[0]
    sigma = torch.rand(n, 1, 1, 1, generator=gen).to(big) * 0.03
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen).to(big) - 0.5) * 0.1
    noise = torch.randn(y.shape, generator=gen).to(big) if gen is not None else torch.randn_like(y)
    y = (y * gain + noise * sigma).clamp(0, 1)
    return x, y, (dy, dx)


# --- export ---------------------------------------------------------------------------------------


def model_from_checkpoint(ckpt: dict[str, Any]) -> StylizerNet:
    net = build_stylizer(ckpt["config"]["net"])
    net.load_state_dict(ckpt["model"])
    return net.eval()


def export_spec(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What ``artcam export`` (and our own export) needs to write an ONNX stylizer with metadata."""
    net = model_from_checkpoint(checkpoint).cpu()
    cfg = net.cfg
    styles = tuple(checkpoint["config"]["styles"])
    size = 4 * cfg.stride * 2
    prov = dict(checkpoint.get("provenance", {}))
    prov["step"] = checkpoint.get("step")
    meta = ModelMeta(
        task="stylize",
        name=checkpoint["config"].get("name") or f"stylizer_{cfg.size}",
        image=ImageInput(name="image", multiple=cfg.stride, min_size=cfg.min_size, max_size=4096),
        style=StyleInput(name="style", styles=styles),
        output=ImageOutput(name="stylized"),
        description=(f"Fast multi-style transfer ({cfg.size}, {len(styles)} styles: {', '.join(styles)}); "
                     "style input weights select or blend styles"),
        provenance=prov,
    )
    return {
        "model": net,
        "meta": meta,
        "example_inputs": {"image": torch.rand(1, 3, size, size), "style": torch.eye(len(styles))[:1]},
        "output_names": ["stylized"],
        "dynamic_axes": {"image": {0: "n", 2: "h", 3: "w"}, "style": {0: "n"}, "stylized": {0: "n", 2: "h", 3: "w"}},
    }


def export_checkpoint(ckpt: dict[str, Any], path: str | Path, atol: float = 1e-4):
    """Export with a parity check on a second, non-square size and a blended style."""
    from artcam.export.onnx_export import export_model

    spec = export_spec(ckpt)
    net, s = spec["model"], spec["model"].cfg.stride
    n_styles = len(spec["meta"].styles)
    g = torch.Generator().manual_seed(0)
    blend = torch.rand(2, n_styles, generator=g)
    verify = [
        {k: v.numpy() for k, v in spec["example_inputs"].items()},
        {"image": torch.rand(2, 3, 6 * s, 10 * s, generator=g).numpy(), "style": (blend / blend.sum(1, keepdim=True)).numpy()},
    ]
    return export_model(net, spec["example_inputs"], spec["output_names"], spec["meta"], path,
                        dynamic_axes=spec["dynamic_axes"], verify_inputs=verify, atol=atol)


# --- training -------------------------------------------------------------------------------------

# Public-domain paintings (artist died before 1955) that a shipped style may come from.
PAINTINGS = {
    "starry_night": ("The Starry Night", "Vincent van Gogh", "1889"),
    "great_wave": ("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831"),
    "the_scream": ("The Scream", "Edvard Munch", "1893"),
    "composition_vii": ("Composition VII", "Wassily Kandinsky", "1913"),
    "mondrian": ("a grid composition", "Piet Mondrian", "1920s"),
    "shipwreck_of_the_minotaur": ("The Shipwreck of the Minotaur", "J. M. W. Turner", "c. 1810"),
    "udnie": ("Udnie", "Francis Picabia", "1913"),
    "woman_with_hat_matisse": ("Woman with a Hat", "Henri Matisse", "1905"),
}

# Every key a recipe may set, with its default. Paths in [data] are relative to data.root
# (empty: --data, else $ARTCAM_DATA, else ../shared/data beside the checkout).
SCHEMA: dict[str, Any] = {
    "name": "",  # model name in the metadata (default stylizer_<size>)
    # options: StylizerConfig fields that override the size's; init_from: a stylizer (.onnx or checkpoint) of the
    # same paintings whose layers of the same name and shape start this net (a thinner net from a shipped one)
    "net": {"size": "nano", "options": {}, "init_from": ""},
    "data": {
        "root": "",
        "styles": [],  # painting files (relative to root) or names in root/styles
        "content": "photos",  # folder of photos, searched recursively
        "exclude": [],  # sub-folders of content kept out of training (held out for judging)
        "style_size": 384,  # longer side of each painting when its Grams are taken
        "image_size": 160,  # training crop (a multiple of the net's stride)
    },
    "train": {
        **TRAIN_KEYS,
        "steps": 100000,  # stop here or at train.minutes, whichever comes first
        "batch_size": 4, "lr": 1e-3, "workers": -1, "ckpt_every": 100, "sample_every": 500,
    },
    "loss": {"net": "vgg19"},  # plus one [loss.TERM] table per term (style_terms.TERMS)
}


def style_files(data: dict) -> list[Path]:
    root = Path(data["root"])
    out = []
    for s in data["styles"]:
        p = root / s if Path(s).suffix else root / "styles" / f"{s}.jpg"
        out.append(p)
    if not out:
        raise TrainingError("the recipe names no painting", "set data.styles = [\"starry_night\", ...]")
    return out


def content_photos(data: dict) -> list[Path]:
    folder = Path(data["root"]) / data["content"]
    photos = list_images(folder)
    skip = [folder / e for e in data["exclude"]]
    photos = [p for p in photos if not any(p.is_relative_to(e) for e in skip)]
    if not photos:
        raise TrainingError(f"no images found in {folder}", "point data.content at a folder of JPEG/PNG photos")
    return photos


@torch.no_grad()
def write_sample_grid(path: Path, net: StylizerNet, photos: torch.Tensor, styles: torch.Tensor) -> None:
    """Rows: photos; columns: the photo, then each style."""
    was = net.training
    net.eval()
    rows = []
    for img in photos:
        row = [img] + [net(img[None], s[None])[0].float() for s in styles]
        rows.append(torch.cat(row, dim=2))
    net.train(was)
    grid = torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    write_image(path, cv2.cvtColor((grid * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR), quality=90)


def load_stylizer_weights(path: str, styles: list[str], what: str) -> StylizerNet:
    """A trained stylizer holding ``styles`` in that order: a training checkpoint or an artcam ONNX file."""
    if Path(path).suffix.lower() == ".onnx":
        from artcam.training.stylizer_file import load_stylizer

        try:
            net, meta = load_stylizer(Path(path))
        except ArtcamError as e:
            raise TrainingError(f"{what} {path}: {e.message}", "pass an artcam stylizer .onnx or a checkpoint") from e
        held = list(meta.styles)
    else:
        ck = common.load_checkpoint(path, KIND)
        net, held = model_from_checkpoint(ck), ck["config"]["styles"]
    if held != styles:
        raise TrainingError(f"{what} {path} holds styles {held}, not {styles}",
                            "use a stylizer trained on the same paintings in the same order")
    return net


def load_teacher(path: str, styles: list[str], device) -> StylizerNet:
    if not path:
        raise TrainingError("loss term distill needs a teacher", "set loss.distill.teacher = \"runs/teacher/last.pt\"")
    net = load_stylizer_weights(path, styles, "the teacher").to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class StylizeTask(Task):
    kind = KIND
    schema = SCHEMA
    description = "Train a fast multi-style stylizer from a recipe (net, paintings, photos, schedule, loss terms)."
    images_per_step = 0

    def build(self, run: Run) -> None:
        r = self.recipe
        data, tr, lc = r["data"], r["train"], dict(r["loss"])
        data["root"] = data["root"] or str(data_root())
        self.images_per_step = tr["batch_size"]
        loss_net_name = lc.pop("net")
        if loss_net_name not in LOSS_NETS:
            raise TrainingError(f"unknown loss network {loss_net_name!r}", f"choose from {', '.join(LOSS_NETS)}")
        d = DEFAULT_LAYERS[loss_net_name]
        self.terms = terms = build_terms(lc, {"content": d.content, "style": d.style})
        self.paths = paths = style_files(data)
        self.names = names = [p.stem for p in paths]
        resume, init = run.resume, run.init
        if resume is not None and resume["config"]["styles"] != names:
            raise TrainingError(f"the checkpoint holds styles {resume['config']['styles']}, not {names}",
                                "resume with the same data.styles")
        try:
            cfg = config_for(r["net"]["size"], len(names), **r["net"]["options"])
        except (TypeError, ValueError) as e:
            raise TrainingError(f"bad net in the recipe: {e}", "see training/stylizer_nets.py for sizes and options") from e
        self.net = net = build_stylizer(resume["config"]["net"] if resume else cfg)
        if init is not None:
            same_net = StylizerConfig.from_dict(init["config"]["net"]) == StylizerConfig.from_dict(net.cfg.to_dict())
            if init["config"]["styles"] != names or not same_net:
                raise TrainingError(f"--init {run.args.init} holds another net or other styles",
                                    "init from the same recipe's run")
            net.load_state_dict(init["model"])
        elif r["net"]["init_from"] and resume is None:
            from artcam.training.stylizer_file import copy_matching

            src = load_stylizer_weights(r["net"]["init_from"], names, "net.init_from")
            copied = copy_matching(net, src.state_dict())
            if not copied:
                raise TrainingError(f"net.init_from {r['net']['init_from']} shares no layer with this net",
                                    "start from a stylizer whose layer names and shapes overlap")
            run.log(f"net.init_from: {len(copied)} of {len(net.state_dict())} tensors from {r['net']['init_from']}")
        self.size = size = data["image_size"]
        if size % net.stride or size < net.cfg.min_size:
            raise TrainingError(f"data.image_size {size} is not a multiple of the net's stride {net.stride}"
                                f" (minimum {net.cfg.min_size})",
                                f"use e.g. {max(net.cfg.min_size, size // net.stride * net.stride)}")
        device = run.device
        paintings = [load_rgb01(p, data["style_size"]).to(device) for p in paths]
        self.photos = photos = content_photos(data)
        self.lossnet = build_loss_network(loss_net_name, device)
        self.teacher = None
        for t in terms:
            if isinstance(t, Style):
                try:
                    t.grams = StyleGrams(self.lossnet, list(t.taps), paintings)
                except ValueError as e:
                    raise TrainingError(f"bad style layers for {loss_net_name}: {e}", "fix loss.style.layers") from e
            if isinstance(t, Distill):
                self.teacher = load_teacher(t.opts["teacher"], names, device)
        self.taps = sorted({k for t in terms for k in t.taps})
        self.content_taps = sorted({k for t in terms for k in t.content_taps})
        self.needs = set().union(*(t.needs for t in terms))
        net.to(device)
        self.opt = torch.optim.Adam(net.parameters(), lr=tr["lr"])
        self.ddp_net = run.wrap(net)
        workers = tr["workers"] if tr["workers"] >= 0 else (8 if device.type == "cuda" else 0)
        crops = ContentCrops(photos, size)
        sampler = torch.utils.data.RandomSampler(crops, replacement=True, num_samples=10**9)
        loader = torch.utils.data.DataLoader(crops, batch_size=tr["batch_size"], sampler=sampler, num_workers=workers,
                                             pin_memory=device.type == "cuda", drop_last=True,
                                             persistent_workers=workers > 0, worker_init_fn=common.quiet_worker)
        self.batches = infinite(loader)
        self.name = r["name"] or f"stylizer_{net.cfg.size}"
        self.onnx_name = f"{self.name}.onnx"
        if not run.args.out:
            run.out = Path(f"runs/{self.name}")
        self.run_config = {"net": net.cfg.to_dict(), "styles": names, "style_files": [str(p) for p in paths],
                           "name": self.name, "recipe": r}
        self.sample_x = torch.cat([F.interpolate(load_rgb01(p), size=(size, size), mode="area")
                                   for p in photos[:3]]).to(device)
        self.sample_s = torch.eye(len(names), device=device)
        net.train()

    def total_steps(self) -> int:
        return self.recipe["train"]["steps"]

    def data_description(self) -> str:
        data = self.recipe["data"]
        return (f"content: {Path(data['root']) / data['content']} ({len(self.photos)} photos); "
                f"styles: {', '.join(str(p) for p in self.paths)}")

    def provenance_extra(self) -> dict[str, Any]:
        names = self.names
        extra: dict[str, Any] = {"styles": names}
        if all(n in PAINTINGS for n in names):
            extra["paintings"] = {n: f"{PAINTINGS[n][0]} — {PAINTINGS[n][1]} ({PAINTINGS[n][2]}), public domain"
                                  for n in names}
        if self.teacher is not None:
            extra["teacher"] = {"checkpoint": str(next(t for t in self.terms if isinstance(t, Distill)).opts["teacher"])}
        if self.recipe["net"]["init_from"]:
            extra["net_init_from"] = str(self.recipe["net"]["init_from"])
        return extra

    def step(self, run: Run) -> dict[str, float]:
        tr = self.recipe["train"]
        big = next(self.batches).to(run.device, non_blocking=True)
        n, n_styles = big.shape[0], len(self.names)
        x, y, shift = perturb(big, self.size)
        style = F.one_hot(torch.randint(0, n_styles, (n,), device=run.device), n_styles).float()
        lr = tr["lr"] * min(1.0, max(0.05, (1.0 - run.done_fraction(tr["steps"])) / 0.25))  # flat, then linear decay
        for g in self.opt.param_groups:
            g["lr"] = lr
        with run.autocast():
            if "moved" in self.needs:
                both = self.ddp_net(torch.cat([x, y]), torch.cat([style, style]))
                v = Views(both[:n], x, style, moved_output=both[n:], shift=shift)
            else:
                v = Views(self.ddp_net(x, style), x, style)
            v.features = self.lossnet.features(v.output, self.taps)
            with torch.no_grad():
                if self.content_taps:
                    v.content_features = self.lossnet.features(x, self.content_taps)
                if self.teacher is not None:
                    v.teacher_output = self.teacher(x, style)
                    v.teacher_features = self.lossnet.features(v.teacher_output, self.taps)
            loss, values = weighted_sum(self.terms, v)
        run.check_finite(loss)
        run.optimize(loss, self.opt)
        return {"loss": float(loss.detach()), **{k: float(t.detach()) for k, t in values.items()}}

    def after_step(self, run: Run) -> None:
        every = self.recipe["train"]["sample_every"]
        if run.main and every and run.step % every == 0:
            self.write_samples(run)

    def finish(self, run: Run) -> None:
        every = self.recipe["train"]["sample_every"]
        if run.main and every and run.step % every:
            self.write_samples(run)

    def write_samples(self, run: Run) -> None:
        write_sample_grid(run.out / "samples" / f"step_{run.step:06d}.jpg", self.net, self.sample_x, self.sample_s)

    def state(self) -> dict[str, Any]:
        return {"arch": self.net.cfg.size, "model": self.net.state_dict(), "config": self.run_config,
                "optimizer": self.opt.state_dict()}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])

    def export_checkpoint(self, ckpt: dict[str, Any], path: Path):
        return export_checkpoint(ckpt, path)


def main(argv: list[str] | None = None) -> int:
    return main_for(StylizeTask, argv, "artcam train stylize --recipe stylizer_nano train.minutes=30")


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

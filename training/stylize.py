"""``artcam train stylize --recipe FILE [key=value ...]``: train a fast multi-style stylizer.

The recipe (``training/recipes/*.toml``, see ``recipe``) names the net, the paintings, the photos, the
schedule and the loss terms (``style_terms``); flags only say where the data is, where to write and
where to resume.
Two shipped recipes make the shipped model: ``stylizer_teacher`` (a Johnson-sized net on the plain
content + style + TV loss: the quality ceiling) and ``stylizer_nano`` (the real-time net, distilled from
that teacher's pictures in feature space, plus the style and stability terms).
Checkpoints are atomic and resumable (the step counter, optimizer and RNG continue); a NaN loss stops
the run and keeps the last good checkpoint; the run ends by exporting an ONNX stylizer with metadata.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import data_root, read_image, write_image
from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, StyleInput
from artcam.training import common
from artcam.training.common import Progress, TrainingError, list_images, provenance
from artcam.training.perceptual import DEFAULT_LAYERS, LOSS_NETS, StyleGrams, build_loss_network
from artcam.training.recipe import load_recipe
from artcam.training.style_terms import Distill, Style, Views, build_terms, weighted_sum
from artcam.training.stylizer_nets import Stylizer, StylizerConfig, build_stylizer, config_for

KIND = "stylize"
CKPT_NAME = "last.pt"
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
        # Seeded from torch's RNG: seed_everything makes runs repeatable, and DataLoader workers get
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


def model_from_checkpoint(ckpt: dict[str, Any]) -> Stylizer:
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
    "net": {"size": "nano", "options": {}},  # options: StylizerConfig fields that override the size's
    "data": {
        "root": "",
        "styles": [],  # painting files (relative to root) or names in root/styles
        "content": "photos",  # folder of photos, searched recursively
        "exclude": [],  # sub-folders of content kept out of training (held out for judging)
        "style_size": 384,  # longer side of each painting when its Grams are taken
        "image_size": 160,  # training crop (a multiple of the net's stride)
    },
    "train": {
        "steps": 100000, "minutes": 0.0,  # stop at whichever comes first (0 minutes: no time limit)
        "batch_size": 4, "lr": 1e-3, "seed": 0, "amp": False, "device": "auto", "workers": -1,
        "ckpt_every": 100, "sample_every": 500, "log_every": 20,
    },
    "loss": {"net": "efficientnet_lite0"},  # plus one [loss.TERM] table per term (style_terms.TERMS)
}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = ArgParser(prog="artcam train stylize", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", required=True, help="recipe .toml file, or a shipped recipe's name (stylizer_nano)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. train.minutes=30")
    p.add_argument("--data", default="", help="data root the recipe's paths are relative to (same as data.root=DIR; "
                                                "default: $ARTCAM_DATA, else ../shared/data)")
    p.add_argument("--out", default="", help="folder for checkpoints, samples and the ONNX export (default runs/NAME)")
    p.add_argument("--resume", default="", help="checkpoint to continue from (step, optimizer and RNG continue)")
    p.add_argument("--init", default="", help="start from this checkpoint's weights (same net and styles), fresh steps")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
    args = p.parse_intermixed_args(argv)  # overrides may come before or after the flags
    return args, args.overrides


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
def write_sample_grid(path: Path, net: Stylizer, photos: torch.Tensor, styles: torch.Tensor) -> None:
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


def load_teacher(path: str, styles: list[str], device) -> Stylizer:
    if not path:
        raise TrainingError("loss term distill needs a teacher", "set loss.distill.teacher = \"runs/teacher/last.pt\"")
    ck = common.load_checkpoint(path, KIND)
    if ck["config"]["styles"] != styles:
        raise TrainingError(f"the teacher {path} holds styles {ck['config']['styles']}, not {styles}",
                            "distil from a teacher trained on the same paintings in the same order")
    net = model_from_checkpoint(ck).to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def train(args: argparse.Namespace, overrides: list[str], argv: list[str]) -> Path:
    r = load_recipe(args.recipe, SCHEMA, overrides)
    data, tr, lc = r["data"], r["train"], dict(r["loss"])
    data["root"] = getattr(args, "data", "") or data["root"] or str(data_root())
    device = common.pick_device(tr["device"])
    rank, world, device = common.setup_distributed(device)
    common.seed_everything(tr["seed"] + rank)
    main = rank == 0
    loss_net_name = lc.pop("net")
    if loss_net_name not in LOSS_NETS:
        raise TrainingError(f"unknown loss network {loss_net_name!r}", f"choose from {', '.join(LOSS_NETS)}")
    d = DEFAULT_LAYERS[loss_net_name]
    terms = build_terms(lc, {"content": d.content, "style": d.style})

    paths = style_files(data)
    names = [p.stem for p in paths]
    resume = common.load_checkpoint(args.resume, KIND) if args.resume else None
    if resume is not None and resume["config"]["styles"] != names:
        raise TrainingError(f"the checkpoint holds styles {resume['config']['styles']}, not {names}",
                            "resume with the same data.styles")
    try:
        cfg = config_for(r["net"]["size"], len(names), **r["net"]["options"])
    except (TypeError, ValueError) as e:
        raise TrainingError(f"bad net in the recipe: {e}", "see training/stylizer_nets.py for sizes and options") from e
    net = build_stylizer(resume["config"]["net"] if resume else cfg)
    init_prov: dict[str, Any] = {}
    if args.init and resume is None:
        init = common.load_checkpoint(args.init, KIND)
        same_net = StylizerConfig.from_dict(init["config"]["net"]) == StylizerConfig.from_dict(net.cfg.to_dict())
        if init["config"]["styles"] != names or not same_net:
            raise TrainingError(f"--init {args.init} holds another net or other styles", "init from the same recipe's run")
        net.load_state_dict(init["model"])
        init_prov = dict(init.get("provenance", {}), step=init.get("step"))
    size = data["image_size"]
    if size % net.stride or size < net.cfg.min_size:
        raise TrainingError(f"data.image_size {size} is not a multiple of the net's stride {net.stride}"
                            f" (minimum {net.cfg.min_size})", f"use e.g. {max(net.cfg.min_size, size // net.stride * net.stride)}")
    paintings = [load_rgb01(p, data["style_size"]).to(device) for p in paths]
    photos = content_photos(data)

    lossnet = build_loss_network(loss_net_name, device)
    teacher = None
    for t in terms:
        if isinstance(t, Style):
            try:
                t.grams = StyleGrams(lossnet, list(t.taps), paintings)
            except ValueError as e:
                raise TrainingError(f"bad style layers for {loss_net_name}: {e}", "fix loss.style.layers") from e
        if isinstance(t, Distill):
            teacher = load_teacher(t.opts["teacher"], names, device)
    taps = sorted({k for t in terms for k in t.taps})
    content_taps = sorted({k for t in terms for k in t.content_taps})
    needs = set().union(*(t.needs for t in terms))

    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"])
    step = 0
    if resume is not None:
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        step = int(resume["step"])
        if resume.get("rng") and world == 1:
            common.set_rng_state(resume["rng"])
        if main:
            print(f"resumed {args.resume} at step {step}", file=sys.stderr)
    ddp_net = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    amp = None
    if tr["amp"]:
        amp = torch.bfloat16 if (device.type == "cpu" or torch.cuda.is_bf16_supported()) else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    workers = tr["workers"] if tr["workers"] >= 0 else (8 if device.type == "cuda" else 0)
    crops = ContentCrops(photos, size)
    sampler = torch.utils.data.RandomSampler(crops, replacement=True, num_samples=10**9)
    loader = torch.utils.data.DataLoader(crops, batch_size=tr["batch_size"], sampler=sampler, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0, worker_init_fn=common.quiet_worker)
    batches = infinite(loader)

    name = r["name"] or f"stylizer_{net.cfg.size}"
    out = Path(args.out or f"runs/{name}")
    ckpt_path = out / CKPT_NAME
    run_config = {"net": net.cfg.to_dict(), "styles": names, "style_files": [str(p) for p in paths], "name": name,
                  "recipe": r}
    prov = provenance(argv, data=f"content: {Path(data['root']) / data['content']} ({len(photos)} photos); "
                                 f"styles: {', '.join(str(p) for p in paths)}", styles=names)
    if all(n in PAINTINGS for n in names):
        prov["paintings"] = {n: f"{PAINTINGS[n][0]} — {PAINTINGS[n][1]} ({PAINTINGS[n][2]}), public domain" for n in names}
    if teacher is not None:
        prov["teacher"] = {"checkpoint": str(next(t for t in terms if isinstance(t, Distill)).opts["teacher"])}
    if init_prov:
        prov["init_from"] = init_prov
    if resume is not None:
        for k in ("init_from", "first_command"):
            if resume.get("provenance", {}).get(k):
                prov[k] = resume["provenance"][k]
        prov.setdefault("first_command", resume.get("provenance", {}).get("command"))

    def snapshot() -> dict[str, Any]:
        return {"kind": KIND, "arch": net.cfg.size, "model": net.state_dict(), "config": run_config, "step": step,
                "optimizer": opt.state_dict(), "rng": common.rng_state(), "provenance": prov}

    sample_x = torch.cat([F.interpolate(load_rgb01(p), size=(size, size), mode="area") for p in photos[:3]]).to(device)
    sample_s = torch.eye(len(names), device=device)
    last_good: Path | None = ckpt_path if ckpt_path.is_file() else None
    progress = Progress(tr["steps"], desc="stylize", every=tr["log_every"], enabled=main)
    net.train()
    t_start, budget, start_step = time.perf_counter(), tr["minutes"] * 60, step

    def done_fraction() -> float:
        f = step / tr["steps"]
        if budget > 0:
            f = max(f, (time.perf_counter() - t_start) / budget)
            if world > 1:  # every rank must stop at the same step
                import torch.distributed as dist

                t = torch.tensor([f], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                f = float(t)
        return f

    saved_step = -1

    def save_now() -> Path:
        """For a stop between steps: the checkpoint of this step, written unless it already was."""
        if main and saved_step != step:
            common.save_checkpoint(ckpt_path, snapshot())
        return ckpt_path

    n_styles = len(names)
    with common.StopBetweenSteps(enabled=world == 1) as stop:
        while step < tr["steps"] and done_fraction() < 1.0:
            big = next(batches).to(device, non_blocking=True)
            n = big.shape[0]
            x, y, shift = perturb(big, size)
            style = F.one_hot(torch.randint(0, n_styles, (n,), device=device), n_styles).float()
            lr = tr["lr"] * min(1.0, max(0.05, (1.0 - done_fraction()) / 0.25))  # flat, then a linear decay
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                if "moved" in needs:
                    both = ddp_net(torch.cat([x, y]), torch.cat([style, style]))
                    v = Views(both[:n], x, style, moved_output=both[n:], shift=shift)
                else:
                    v = Views(ddp_net(x, style), x, style)
                v.features = lossnet.features(v.output, taps)
                with torch.no_grad():
                    if content_taps:
                        v.content_features = lossnet.features(x, content_taps)
                    if teacher is not None:
                        v.teacher_output = teacher(x, style)
                        v.teacher_features = lossnet.features(v.teacher_output, taps)
                loss, values = weighted_sum(terms, v)
            common.check_finite(loss.detach(), step + 1, last_good)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            progress.update(step, n * world, loss=float(loss.detach()), **{k: float(t.detach()) for k, t in values.items()})
            final = step == tr["steps"] or done_fraction() >= 1.0
            if main and (step % tr["ckpt_every"] == 0 or final):
                common.save_checkpoint(ckpt_path, snapshot())
                last_good, saved_step = ckpt_path, step
            if main and tr["sample_every"] and (step % tr["sample_every"] == 0 or final):
                write_sample_grid(out / "samples" / f"step_{step:06d}.jpg", net, sample_x, sample_s)
            stop.check(step, save_now)
    progress.close()
    if main and step == start_step and not ckpt_path.is_file():
        common.save_checkpoint(ckpt_path, snapshot())
    if main and not args.no_export:
        onnx_path = out / f"{name}.onnx"
        report = export_checkpoint(torch.load(ckpt_path, map_location="cpu", weights_only=False), onnx_path)
        print("\n".join(report.lines()), file=sys.stderr)
        print(f"wrote {onnx_path}", file=sys.stderr)
    common.cleanup_distributed()
    return ckpt_path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, overrides = parse_args(argv)
    train(args, overrides, ["stylize", *argv])
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

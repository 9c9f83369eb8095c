"""``artcam train stylize``: train one fast multi-style stylizer on a folder of photos.

Losses: perceptual content + Gram style (normalised per style and tap) + total variation, a temporal
stability term (the output should barely change when the input moves by noise, a few pixels or a
lighting change: no optical flow needed at run time), and an optional PatchGAN term.
Checkpoints are atomic and resumable; the run ends by exporting an ONNX stylizer with metadata.
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
from torch import nn

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import read_image, write_image
from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, StyleInput
from artcam.training.common import (
    Progress,
    TrainingError,
    check_finite,
    cleanup_distributed,
    list_images,
    load_checkpoint,
    pick_device,
    provenance,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    setup_distributed,
)
from artcam.training.patchgan import ADV_LOSSES, PatchDiscriminator, d_loss, g_loss, style_patches
from artcam.training.perceptual import (
    DEFAULT_LAYERS,
    LOSS_NETS,
    LayerWeights,
    PerceptualLoss,
    build_loss_network,
)
from artcam.training.stylizer_nets import Stylizer, available_sizes, build_stylizer, config_for

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


# --- stability term ---------------------------------------------------------------------------------


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


def stability_loss(out_x: torch.Tensor, out_y: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Mean squared change of the output where the two views overlap (view y = view x moved by shift)."""
    dy, dx = shift
    h, w = out_x.shape[-2:]
    a = out_x[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
    b = out_y[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return F.mse_loss(a.float(), b.float())


def context_margin(size: int) -> int:
    """Context around each crop for the context term: the frames nets painted reached about 1/8 inward."""
    return -(-max(MARGIN, size // 8) // 8) * 8  # a multiple of 8 keeps size + 2m a multiple of the stride


def context_loss(out_x: torch.Tensor, out_big: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between a crop's output and the same pixels stylized with context around.

    A fully convolutional net should not care where the image ends; one that paints a frame (it can
    tell the border from its padding) does, and this is where it pays for it.
    """
    m = (out_big.shape[-1] - out_x.shape[-1]) // 2
    inner = out_big[..., m:m + out_x.shape[-2], m:m + out_x.shape[-1]]
    return F.mse_loss(out_x.float(), inner.float())


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="artcam train stylize", description=__doc__.splitlines()[0])
    p.add_argument("--style", required=True, help="style image path(s), comma-separated; one style each")
    p.add_argument("--style-names", default="", help="comma-separated names (default: the file stems)")
    p.add_argument("--content", required=True, help="folder of photos (searched recursively)")
    p.add_argument("--size", default="nano", choices=available_sizes())
    p.add_argument("--pad", default="", choices=["", "zeros", "reflect"],
                   help="padding of the net's convs (default: the size's; reflect avoids border frames)")
    p.add_argument("--blocks", type=int, default=0, help="residual blocks at the lowest resolution (default: the size's)")
    p.add_argument("--detail", type=int, default=-1,
                   help="channels of the half-resolution detail branch (0: none; default: the size's)")
    p.add_argument("--out-kernel", type=int, default=0, help="kernel of the output conv (default: the size's)")
    p.add_argument("--up-full", action="store_true", help="full (not depthwise) convs after each upsampling")
    p.add_argument("--image-size", type=int, default=256, help="training crop size (multiple of the net stride)")
    p.add_argument("--style-size", type=int, default=384, help="longer side of each style image for its Grams")
    p.add_argument("--steps", type=int, default=4000, help="total optimisation steps (a resumed run stops here too)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=100.0)
    p.add_argument("--tv-weight", type=float, default=10.0)
    p.add_argument("--stability-weight", type=float, default=2000.0)
    p.add_argument("--colour-weight", type=float, default=0.0,
                   help="pull each output's RGB mean and contrast toward its painting's")
    p.add_argument("--context-weight", type=float, default=0.0,
                   help="penalise outputs that change when the image extends further (frames at the border)")
    p.add_argument("--lattice-weight", type=float, default=0.0,
                   help="penalise output power on the 4- and 8-px block grid beyond the photo's (30000 for versions 6 and 7)")
    p.add_argument("--palette-weight", type=float, default=0.0,
                   help="pull each output's whole colour distribution toward its painting's (sliced Wasserstein)")
    p.add_argument("--chroma-weight", type=float, default=0.0,
                   help="penalise outputs whose colours lose the photo's colour regions (two-tone by luminance)")
    p.add_argument("--flat-weight", type=float, default=0.0,
                   help="penalise output texture where the photo is flat (edge-aware total variation)")
    p.add_argument("--flat-sigma", type=float, default=0.0,
                   help="judge flatness on the photo blurred by this many pixels: texture counts as flat (0: as is)")
    p.add_argument("--snap-weight", type=float, default=0.0,
                   help="pull each pixel toward the nearest of its painting's main colours (flat, poster-like areas)")
    p.add_argument("--snap-inks", type=int, default=8, help="how many main colours per painting the snap term offers")
    p.add_argument("--outline-weight", type=float, default=0.0,
                   help="pull the photo's lines (XDoG) toward the painting's darkest ink: outlined, poster-like areas")
    p.add_argument("--poster-weight", type=float, default=0.0,
                   help="pull the blurred output toward the photo posterized in the painting's inks by luminance rank")
    p.add_argument("--freeze-norm", action="store_true",
                   help="BatchNorm uses its running statistics in training too (train what is exported)")
    p.add_argument("--adv-weight", type=float, default=0.0)
    p.add_argument("--adv-loss", default="hinge", choices=ADV_LOSSES)
    p.add_argument("--loss-net", default="efficientnet_lite0", choices=LOSS_NETS,
                   help="frozen feature network for the perceptual losses ('random' is for tests)")
    p.add_argument("--content-layers", default="", help="override, e.g. 'block2:1'")
    p.add_argument("--style-layers", default="", help="override, e.g. 'stem:1,block0:1,block2:1'")
    p.add_argument("--out", default="runs/stylize", help="folder for checkpoints, samples and the ONNX export")
    p.add_argument("--name", default="", help="model name in the metadata (default stylizer_<size>)")
    p.add_argument("--resume", default="", help="checkpoint to continue from (the step counter continues)")
    p.add_argument("--init", default="",
                   help="start from this checkpoint's weights (same styles and size) with fresh steps and optimizer:"
                        " fine-tuning with other loss weights or padding; with --blocks/--detail it grows that"
                        " net (the new parts start as the identity)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true", help="mixed precision (bf16 where supported, else fp16)")
    p.add_argument("--workers", type=int, default=-1, help="data loader workers (default: 0 on CPU, 8 on GPU)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="also stop (checkpoint, export) after this much wall time; the lr decay follows it")
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export at the end")
    return p.parse_args(argv)


def _layers(spec: str, default: dict[str, float]) -> dict[str, float]:
    if not spec:
        return dict(default)
    out = {}
    for item in spec.split(","):
        name, _, w = item.partition(":")
        out[name.strip()] = float(w) if w else 1.0
    return out


def _make_samples(net, photos: list[Path], n_styles: int, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    imgs = []
    for p in photos[:3]:
        try:
            img = load_rgb01(p)
        except TrainingError:
            continue
        img = F.interpolate(img, size=(size, size), mode="area")
        imgs.append(img)
    x = torch.cat(imgs).to(device)
    eye = torch.eye(n_styles, device=device)
    return x, eye


def train_mode(net: nn.Module, freeze_norm: bool) -> None:
    """Training mode; with ``freeze_norm`` the BatchNorm layers use (and keep) their running statistics.

    Trained on batch statistics of 4 crops, the net learned to lean on them (a per-batch colour
    normalisation) and the exported net, which uses running statistics, painted differently: version 6's
    palette distance (``style_eval``'s crops in batches of 4) was 2.6/1000 in training mode, 17/1000 as shipped.
    Frozen, training optimises the function that is exported.
    """
    net.train()
    if freeze_norm:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


@torch.no_grad()
def write_sample_grid(path: Path, net, photos: torch.Tensor, styles: torch.Tensor) -> None:
    """Rows: photos; columns: the photo, then each style."""
    was = {m: m.training for m in net.modules()}  # per module: frozen norms stay frozen
    net.eval()
    rows = []
    for img in photos:
        row = [img]
        for s in styles:
            row.append(net(img[None], s[None])[0].float())
        rows.append(torch.cat(row, dim=2))
    for m, mode in was.items():
        m.training = mode
    grid = torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    write_image(path, cv2.cvtColor((grid * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR), quality=90)


def train(args: argparse.Namespace, argv: list[str]) -> Path:
    device = pick_device(args.device)
    rank, world, device = setup_distributed(device)
    seed_everything(args.seed + rank)
    main = rank == 0
    out = Path(args.out)
    ckpt_path = out / CKPT_NAME

    # Styles
    style_paths = [Path(s) for s in args.style.split(",") if s.strip()]
    if not style_paths:
        raise TrainingError("no style image given", "pass --style PAINTING.jpg[,OTHER.jpg...]")
    names = [n.strip() for n in args.style_names.split(",") if n.strip()] or [p.stem for p in style_paths]
    if len(names) != len(style_paths):
        raise TrainingError(f"{len(names)} style names for {len(style_paths)} style images", "give one name per image")
    resume = load_checkpoint(args.resume, KIND) if args.resume else None
    if resume is not None:
        if resume["config"]["styles"] != names:
            raise TrainingError(f"the checkpoint holds styles {resume['config']['styles']}, not {names}",
                                "resume with the same --style list (or --style-names)")
        if resume["arch"] != args.size:
            raise TrainingError(f"the checkpoint is a {resume['arch']} stylizer, not {args.size}",
                                f"pass --size {resume['arch']}")
    overrides: dict[str, Any] = {"pad": args.pad} if args.pad else {}
    if args.blocks:
        overrides["blocks"] = args.blocks
    if args.detail >= 0:
        overrides["detail"] = args.detail
    if args.out_kernel:
        overrides["out_kernel"] = args.out_kernel
    if args.up_full:
        overrides["up_depthwise"] = False
    cfg = config_for(args.size, len(names), **overrides) if resume is None else None
    net = build_stylizer(resume["config"]["net"] if resume else cfg)
    init_prov: dict[str, Any] = {}
    if args.init and resume is None:
        init = load_checkpoint(args.init, KIND, args.size)
        init_prov = dict(init.get("provenance", {}), step=init.get("step"))
        if init["config"]["styles"] != names:
            raise TrainingError(f"--init checkpoint holds styles {init['config']['styles']}, not {names}",
                                "use the same --style list (or --style-names)")
        try:
            new = net.load_grown(init["model"])
        except (RuntimeError, ValueError) as e:
            raise TrainingError(f"--init {args.init} does not fit the {args.size} net: {e}") from e
        if new:
            init_prov["grown"] = sorted({".".join(k.split(".")[:2]) for k in new})
    stride = net.stride
    if args.image_size % stride or args.image_size < net.cfg.min_size:
        raise TrainingError(f"--image-size {args.image_size} is not a multiple of the {args.size} net's stride {stride}"
                            f" (minimum {net.cfg.min_size})", f"use e.g. {max(net.cfg.min_size, args.image_size // stride * stride)}")
    if args.style_size < stride:
        raise TrainingError(f"--style-size {args.style_size} is smaller than the network stride {stride}",
                            "use a style size of at least the training image size")
    style_imgs = []
    for p in style_paths:
        img = load_rgb01(p, args.style_size)
        if min(img.shape[-2:]) < stride:
            raise TrainingError(f"style image {p} is {img.shape[-1]}x{img.shape[-2]} at --style-size {args.style_size}:"
                                f" smaller than the network stride {stride}", "use a larger style image or --style-size")
        style_imgs.append(img.to(device))

    photos = list_images(args.content)
    if not photos:
        raise TrainingError(f"no images found in {args.content}", "point --content at a folder of JPEG/PNG photos")

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    net.to(device)
    lossnet = build_loss_network(args.loss_net, device)
    d = DEFAULT_LAYERS[args.loss_net]
    layers = LayerWeights(content=_layers(args.content_layers, d.content), style=_layers(args.style_layers, d.style))
    try:
        perceptual = PerceptualLoss(lossnet, layers, style_imgs, inks=args.snap_inks, flat_sigma=args.flat_sigma)
    except (KeyError, ValueError) as e:
        raise TrainingError(f"bad loss layers for {args.loss_net}: {e}", "check --content-layers/--style-layers") from e
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    disc = d_opt = None
    if args.adv_weight > 0:
        disc = PatchDiscriminator(len(names)).to(device)
        d_opt = torch.optim.Adam(disc.parameters(), lr=args.lr * 0.5, betas=(0.5, 0.999))

    step = 0
    if resume is not None:
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        if disc is not None and resume.get("disc"):
            disc.load_state_dict(resume["disc"])
            d_opt.load_state_dict(resume["disc_optimizer"])
        step = int(resume["step"])
        if resume.get("rng") and world == 1:
            set_rng_state(resume["rng"])
        if main:
            print(f"resumed {args.resume} at step {step}", file=sys.stderr)

    ddp_net = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = None
    if args.amp:
        amp_dtype = torch.bfloat16 if (device.type == "cpu" or torch.cuda.is_bf16_supported()) else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    workers = args.workers if args.workers >= 0 else (8 if device.type == "cuda" else 0)
    margin = context_margin(args.image_size) if args.context_weight > 0 else MARGIN
    data = ContentCrops(photos, args.image_size, margin=margin)
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=10**9)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, sampler=sampler, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    batches = infinite(loader)

    run_config = {
        "net": net.cfg.to_dict(), "styles": names, "style_files": [str(p) for p in style_paths],
        "name": args.name or (resume["config"].get("name") if resume else "") or f"stylizer_{net.cfg.size}",
        "train": {k: v for k, v in vars(args).items() if k not in ("resume",)},
        "layers": {"content": layers.content, "style": layers.style},
    }
    prov = provenance(argv, data=f"content: {args.content}; styles: {', '.join(str(p) for p in style_paths)}",
                      styles=names)
    if init_prov:
        prov["init_from"] = init_prov
    if resume is not None and resume.get("provenance", {}).get("init_from"):
        prov["init_from"] = resume["provenance"]["init_from"]
    if resume is not None and resume.get("provenance", {}).get("command"):
        prov["first_command"] = resume["provenance"].get("first_command", resume["provenance"]["command"])

    def snapshot() -> dict[str, Any]:
        return {
            "kind": KIND, "arch": net.cfg.size, "model": net.state_dict(), "config": run_config, "step": step,
            "optimizer": opt.state_dict(), "rng": rng_state(), "provenance": prov,
            "disc": disc.state_dict() if disc is not None else None,
            "disc_optimizer": d_opt.state_dict() if d_opt is not None else None,
        }

    sample_x, sample_s = _make_samples(net, photos, len(names), args.image_size, device)
    last_good: Path | None = ckpt_path if ckpt_path.is_file() else None
    progress = Progress(args.steps, desc="stylize", every=args.log_every, enabled=main)
    train_mode(net, args.freeze_norm)
    n_styles = len(names)
    t_start = time.perf_counter()
    budget = args.max_minutes * 60
    start_step = step

    def done_fraction() -> float:
        f = step / args.steps
        if budget > 0:
            f = max(f, (time.perf_counter() - t_start) / budget)
            if world > 1:  # every rank must stop at the same step
                import torch.distributed as dist

                t = torch.tensor([f], device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                f = float(t)
        return f

    weights = {"content": args.content_weight, "style": args.style_weight, "tv": args.tv_weight,
               "stability": args.stability_weight, "colour": args.colour_weight, "context": args.context_weight,
               "lattice": args.lattice_weight, "palette": args.palette_weight,
               "chroma": args.chroma_weight, "flat": args.flat_weight, "snap": args.snap_weight,
               "outline": args.outline_weight, "poster": args.poster_weight}
    while step < args.steps and done_fraction() < 1.0:
        big = next(batches).to(device, non_blocking=True)
        n = big.shape[0]
        x, y, shift = perturb(big, args.image_size)
        idx = torch.randint(0, n_styles, (n,), device=device)
        style = F.one_hot(idx, n_styles).float()
        lr = args.lr * min(1.0, max(0.05, (1.0 - done_fraction()) / 0.25))  # flat, then linear decay
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            both = ddp_net(torch.cat([x, y]), torch.cat([style, style]))
            out_x, out_y = both[:n], both[n:]
            terms = perceptual(out_x, x, style)
            terms["stability"] = stability_loss(out_x, out_y, shift)
            if args.context_weight > 0:
                terms["context"] = context_loss(out_x, ddp_net(big, style))
            loss = sum(weights[k] * v for k, v in terms.items())
            if disc is not None:
                terms["adv"] = g_loss(args.adv_loss, disc(out_x, style))
                loss = loss + args.adv_weight * terms["adv"]
        check_finite(loss.detach(), step + 1, last_good)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if disc is not None:
            real = style_patches(style_imgs, idx.cpu(), args.image_size).to(device)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                dl = d_loss(args.adv_loss, disc(real, style), disc(out_x.detach(), style))
            d_opt.zero_grad(set_to_none=True)
            dl.backward()
            d_opt.step()
            terms["disc"] = dl.detach()
        step += 1
        progress.update(step, n * world, loss=float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()})
        final = step == args.steps or done_fraction() >= 1.0
        if main and (step % args.ckpt_every == 0 or final):
            save_checkpoint(ckpt_path, snapshot())
            last_good = ckpt_path
        if main and args.sample_every and (step % args.sample_every == 0 or final):
            write_sample_grid(out / "samples" / f"step_{step:06d}.jpg", net, sample_x, sample_s)
    progress.close()
    if main and step == start_step and not ckpt_path.is_file():
        save_checkpoint(ckpt_path, snapshot())
    if main and not args.no_export:
        onnx_path = out / f"{run_config['name']}.onnx"
        report = export_checkpoint(torch.load(ckpt_path, map_location="cpu", weights_only=False), onnx_path)
        print("\n".join(report.lines()), file=sys.stderr)
        print(f"wrote {onnx_path}", file=sys.stderr)
    cleanup_distributed()
    return ckpt_path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    train(args, ["stylize", *argv])
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

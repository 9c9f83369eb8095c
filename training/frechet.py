"""Frechet distance and a memorisation check for generated paintings, on EfficientNet-Lite0 features.

This is NOT the FID of GAN papers: those use Inception-v3 pool features at 299 px. Here features
are the 1280-d pooled features of the offline ImageNet EfficientNet-Lite0 (training/efficientnet_lite.py)
at 224 px, with real and generated images both at the training resolution, upsampled the same way.
Numbers are comparable between runs of this code (same sample counts), not with published FIDs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from artcam.runtime.cli import ArgParser

FEATURE_SIZE = 224


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^1/2), with the trace of the root computed from the
    eigenvalues of C1^1/2 C2 C1^1/2 (symmetric PSD, so no complex parts from round-off)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    w, v = np.linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ cov2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_root = np.sqrt(np.clip(ev, 0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * tr_root)
    return max(d, 0.0)


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def fd_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*stats(a), *stats(b))


def nearest_neighbour_check(samples: np.ndarray, train: np.ndarray, chunk: int = 512) -> dict[str, float]:
    """Does G replay training images? Compare each sample's distance to its nearest training image
    with the nearest-neighbour distances among the training images themselves (leave-one-out).

    A generator that copies would put samples much closer to the training set than training images
    are to each other (ratio << 1, many samples under the 5th percentile of train-train distances).
    """
    s = np.asarray(samples, np.float32)
    t = np.asarray(train, np.float32)

    def nn_dist(q: np.ndarray, ref: np.ndarray, exclude_self: bool) -> np.ndarray:
        out = np.empty(len(q), np.float32)
        rn = (ref**2).sum(1)
        for i in range(0, len(q), chunk):
            qq = q[i : i + chunk]
            d2 = (qq**2).sum(1)[:, None] + rn[None, :] - 2 * qq @ ref.T
            if exclude_self:
                d2[np.arange(len(qq)), np.arange(i, i + len(qq))] = np.inf
            out[i : i + chunk] = np.sqrt(np.clip(d2.min(1), 0, None))
        return out

    ds = nn_dist(s, t, False)
    dt = nn_dist(t, t, True)
    p5 = float(np.percentile(dt, 5))
    return {
        "sample_to_train_median": float(np.median(ds)),
        "train_to_train_median": float(np.median(dt)),
        "ratio_of_medians": float(np.median(ds) / max(np.median(dt), 1e-12)),
        "train_nn_p5": p5,
        "frac_samples_below_train_p5": float(np.mean(ds < p5)),
        "min_sample_to_train": float(ds.min()),
        "samples": int(len(s)),
        "train": int(len(t)),
    }


class FeatureNet:
    """EfficientNet-Lite0 pooled features of images in [-1, 1] (N, 3, h, w), resized to 224 px."""

    def __init__(self, device: torch.device | str = "cpu", batch: int = 64):
        from artcam.training.efficientnet_lite import efficientnet_lite0

        self.device = torch.device(device)
        self.net = efficientnet_lite0(pretrained=True).to(self.device).eval()
        self.batch = batch

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch):
            x = images[i : i + self.batch].to(self.device).float()
            x = ((x.clamp(-1, 1) + 1) / 2)
            x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", align_corners=False)
            out.append(self.net.forward_features(x).float().cpu().numpy())
        return np.concatenate(out)

    def from_uint8(self, images_rgb: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) RGB uint8 -> features, in batches (no full float copy of the set)."""
        out = []
        for i in range(0, len(images_rgb), self.batch):
            x = torch.from_numpy(np.ascontiguousarray(images_rgb[i : i + self.batch])).permute(0, 3, 1, 2).float()
            out.append(self(x / 127.5 - 1))
        return np.concatenate(out)


class PaintingFrechet:
    """Frechet distance of a generator against a fixed set of real paintings (features cached)."""

    def __init__(self, real_rgb: np.ndarray, device="cpu", max_real: int = 0, cache: str | Path | None = None,
                 seed: int = 0):
        self.net = FeatureNet(device)
        idx = np.arange(len(real_rgb))
        if max_real and max_real < len(real_rgb):
            idx = np.sort(np.random.default_rng(seed).choice(len(real_rgb), max_real, replace=False))
        self.real_index = idx
        feats = None
        cache = Path(cache) if cache else None
        if cache is not None and cache.is_file():
            with np.load(cache) as z:
                if np.array_equal(z["index"], idx) and z["n_total"] == len(real_rgb):
                    feats = z["features"]
        if feats is None:
            feats = self.net.from_uint8(real_rgb[idx])
            if cache is not None:
                from artcam.runtime.fileio import atomic_path

                with atomic_path(cache) as tmp:
                    np.savez(tmp, features=feats, index=idx, n_total=len(real_rgb))
        self.real_features = feats
        self.real_stats = stats(feats)

    def generated_features(self, g, n: int, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
        from artcam.training.generate import sample

        dev = next(g.parameters()).device
        return self.net(sample(g, n, seed, dev, labels=labels))

    def distance(self, g, n: int, seed: int = 0) -> float:
        return frechet_distance(*stats(self.generated_features(g, n, seed)), *self.real_stats)


def plot_fd(history: Sequence[Sequence[float]], path: str | Path, title: str = "") -> Path | None:
    """FD against training step as a PNG (matplotlib imported here so the trainer runs without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from artcam.runtime.fileio import atomic_path

    h = np.asarray(history, np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(h[:, 0], h[:, 1], "o-")
    if len(h):
        ax.axhline(h[0, 1], color="grey", ls="--", lw=0.8, label=f"step {int(h[0, 0])}: {h[0, 1]:.1f}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("Frechet distance (EfficientNet-Lite0)")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return Path(path)


def evaluate_checkpoint(ckpt_path: str | Path, data: str | Path, samples: int = 2000, device: str = "auto",
                        seed: int = 0, untrained_seed: int = 0, cache: str | Path | None = None) -> dict:
    """FD of a trained generator and of an untrained one of the same config (the baseline), plus the
    nearest-neighbour memorisation check, against the paintings in ``data`` (all of them)."""
    from artcam.training import common
    from artcam.training.gan_nets import GeneratorNet, recalibrate_bn
    from artcam.training.generate import KIND, find_paintings, generator_from_checkpoint, load_paintings

    dev = common.pick_device(device)
    ckpt = common.load_checkpoint(ckpt_path, KIND)
    g = generator_from_checkpoint(ckpt).to(dev)
    cfg = g.cfg
    paths, labels, classes = find_paintings(data, cfg.conditional)
    if cfg.conditional and tuple(classes) != tuple(cfg.classes):
        raise common.TrainingError(f"{data} has classes {list(classes)}, the generator was trained on {list(cfg.classes)}")
    real, _ = load_paintings(paths, cfg.size, log=lambda m: None)
    pf = PaintingFrechet(real, device=dev, cache=cache)
    torch.manual_seed(untrained_seed)
    untrained = recalibrate_bn(GeneratorNet(cfg).to(dev), batches=4, batch_size=64)
    fake = pf.generated_features(g, samples, seed)
    base = pf.generated_features(untrained, samples, seed)
    out = {
        "checkpoint": str(ckpt_path), "step": ckpt.get("step"), "arch": cfg.arch, "samples": samples,
        "real": int(len(real)), "feature_net": "EfficientNet-Lite0 ImageNet, pooled 1280-d, 224 px (not Inception FID)",
        "fd_trained": frechet_distance(*stats(fake), *pf.real_stats),
        "fd_untrained": frechet_distance(*stats(base), *pf.real_stats),
        "nearest_neighbour": nearest_neighbour_check(fake, pf.real_features),
    }
    # two disjoint halves of the real set: the FD floor for this sample size
    half = len(real) // 2
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(real))
    n = min(samples, half)
    out["fd_real_vs_real"] = fd_from_features(pf.real_features[perm[:n]], pf.real_features[perm[half:half + n]])
    out["fd_real_vs_real_samples"] = n
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m artcam.training.frechet CKPT --data DIR``: print the evaluation as JSON."""
    import json
    import sys

    p = ArgParser(prog="python -m artcam.training.frechet", description=main.__doc__)
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="npz file caching the real paintings' features")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("-o", "--output", default=None, help="also write the JSON here")
    a = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    if a.threads:
        torch.set_num_threads(a.threads)
    res = evaluate_checkpoint(a.checkpoint, a.data, a.samples, a.device, a.seed, cache=a.cache)
    text = json.dumps(res, indent=1)
    print(text)
    if a.output:
        from artcam.runtime.fileio import atomic_write_text

        atomic_write_text(a.output, text + "\n")
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

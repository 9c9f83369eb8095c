"""GAN trainer: nets, DiffAugment, data checks, training/resume, export parity, Frechet maths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from artcam.runtime.errors import InputError  # noqa: E402
from artcam.training import frechet  # noqa: E402
from artcam.training.common import TrainingError, load_checkpoint  # noqa: E402
from artcam.training.diffaug import diff_augment, parse_policy  # noqa: E402
from artcam.training.gan_nets import GanConfig, build, recalibrate_bn  # noqa: E402
from artcam.training.generate import (  # noqa: E402
    MIN_IMAGES,
    export_checkpoint,
    export_spec,
    find_paintings,
    generator_from_checkpoint,
    load_paintings,
    main,
    trim_letterbox,
)

TINY = ["net.g_base=8", "net.d_base=8", "net.latent=16", "train.batch_size=8"]


def write_paintings(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """Blobby colour 'paintings' of mixed sizes; every 4th greyscale, every 5th letterboxed."""
    rng = np.random.default_rng(seed)
    for c, n in per_class.items():
        d = root / c if c else root
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = (int(v) for v in rng.integers(24, 96, 2))
            small = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
            if i % 5 == 0:
                img = cv2.copyMakeBorder(img, h // 5, h // 5, 0, 0, cv2.BORDER_CONSTANT, value=0)
            if i % 4 == 0:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            cv2.imwrite(str(d / f"{i:03d}.{'png' if i % 2 else 'jpg'}"), img)
    return root


@pytest.fixture(scope="module")
def painting_dir(tmp_path_factory) -> Path:
    return write_paintings(tmp_path_factory.mktemp("art"), {"alpha": 36, "beta": 36})


# --- nets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("classes", [(), ("a", "b", "c")])
def test_nets_build_and_shapes(size, classes):
    cfg = GanConfig(size=size, latent=16, g_base=8, d_base=8, classes=classes)
    g, d = build(cfg)
    z = torch.randn(3, 16)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 3).float() if classes else None
    x = g(z, y)
    assert x.shape == (3, 3, size, size)
    assert x.abs().max() <= 1.0
    assert d(x, y).shape == (3,)
    assert ("cond" in cfg.arch) == bool(classes)
    assert GanConfig.from_dict(cfg.to_dict()) == cfg
    if classes:
        with pytest.raises(ValueError):
            g(z)


def test_unknown_size_rejected():
    with pytest.raises(ValueError):
        GanConfig(size=96)


def test_discriminator_is_spectrally_normalised():
    _, d = build(GanConfig(size=64, g_base=8, d_base=8))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "weight_orig") for m in convs)


def test_recalibrated_bn_gives_eval_mode_batch_independent_output():
    g, _ = build(GanConfig(size=64, latent=16, g_base=8, d_base=8))
    recalibrate_bn(g, batches=2, batch_size=16)
    assert not g.training
    z = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.allclose(g(z)[:1], g(z[:1]), atol=1e-5)


# --- DiffAugment -----------------------------------------------------------------------------


def test_diffaug_shapes_gradients_and_policy_parsing():
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert parse_policy("none") == () and parse_policy("") == ()
    with pytest.raises(ValueError):
        parse_policy("color,rotate")


def test_cutout_and_translation_zero_fill():
    x = torch.ones(64, 3, 32, 32)
    cut = diff_augment(x, ("cutout",))
    frac = (cut == 0).float().mean().item()
    assert 0.1 < frac < 0.3  # a half-side square is a quarter of the image, less where clipped
    moved = diff_augment(x, ("translation",))
    assert (moved == 0).any() and (moved == 1).float().mean() > 0.7


# --- data ------------------------------------------------------------------------------------


def test_trim_letterbox_cuts_black_bars_but_keeps_dark_paintings():
    img = np.full((60, 40, 3), 180, np.uint8)
    boxed = cv2.copyMakeBorder(img, 10, 10, 0, 0, cv2.BORDER_CONSTANT, value=0)
    assert trim_letterbox(boxed).shape == (60, 40, 3)
    dark = np.zeros((50, 50, 3), np.uint8)
    dark[20:25, 20:25] = 200  # a small bright detail in a night scene: trimming would keep < half
    assert trim_letterbox(dark).shape == dark.shape


def test_paintings_decoded_once_to_rgb_squares(painting_dir, tmp_path):
    paths, labels, classes = find_paintings(painting_dir, conditional=True)
    assert classes == ("alpha", "beta") and np.bincount(labels).tolist() == [36, 36]
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    imgs, bad = load_paintings([*paths, tmp_path / "broken.jpg"], 64, log=lambda m: None)
    assert imgs.shape == (72, 64, 64, 3) and imgs.dtype == np.uint8 and bad == [tmp_path / "broken.jpg"]
    grey = imgs[0]  # file 000 was written greyscale: all three channels equal after conversion
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    assert not np.array_equal(imgs[1][..., 0], imgs[1][..., 1])


def test_too_few_images_is_a_clear_error(tmp_path):
    write_paintings(tmp_path / "few", {"": 10})
    with pytest.raises(TrainingError, match=f"at least {MIN_IMAGES}"):
        find_paintings(tmp_path / "few", conditional=False)
    with pytest.raises(TrainingError, match=f"at least {MIN_IMAGES}"):
        main(["--data", str(tmp_path / "few"), "--out", str(tmp_path / "o"), "eval.enabled=false", *TINY])


def test_conditional_needs_class_folders_and_enough_per_class(tmp_path):
    write_paintings(tmp_path / "lopsided", {"big": 70, "tiny": 3})
    with pytest.raises(TrainingError, match="tiny=3"):
        find_paintings(tmp_path / "lopsided", conditional=True)
    write_paintings(tmp_path / "flat", {"": 70})
    with pytest.raises(TrainingError, match="sub-folder"):
        find_paintings(tmp_path / "flat", conditional=True)


def test_bad_recipe_values_are_clear_errors_exit_2(tmp_path, painting_dir):
    for bad in (["train.diffaug=rotate"], ["train.seed=abc"], ["train.ema=1.5"], ["net.size=96"],
                ["--diffaug", "rotate"]):  # the last: an old flag, still read
        with pytest.raises(TrainingError) as e:
            main(["--data", str(painting_dir), "--out", str(tmp_path), *bad])
        assert e.value.exit_code == 2
    with pytest.raises(SystemExit) as e:
        main(["--data", str(painting_dir), "--bogus"])
    assert e.value.code == 2


# --- training, resume, export ----------------------------------------------------------------


def _weights(path: Path) -> dict:
    return load_checkpoint(path, "generate")["g"]


def test_train_resume_matches_uninterrupted_run(tmp_path, painting_dir):
    common = ["--data", str(painting_dir), "net.conditional=true", "eval.enabled=false", "--no-export",
              "train.ckpt_every=2", "train.sample_every=3", *TINY]
    assert main([*common, "train.steps=6", "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "train.steps=4", "--out", str(tmp_path / "split")]) == 0
    assert load_checkpoint(tmp_path / "split" / "last.pt", "generate")["step"] == 4
    assert main([*common, "train.steps=6", "--out", str(tmp_path / "split"),
                 "--resume", str(tmp_path / "split" / "last.pt")]) == 0
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "split" / "last.pt")
    assert load_checkpoint(tmp_path / "split" / "last.pt", "generate")["step"] == 6
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert (tmp_path / "straight" / "samples" / "step000003.png").is_file()


def test_resume_refuses_other_kind_and_other_shape(tmp_path, painting_dir):
    bogus = tmp_path / "c.pt"
    torch.save({"kind": "classify", "arch": "x"}, bogus)
    with pytest.raises(TrainingError, match="classify"):
        main(["--data", str(painting_dir), "--out", str(tmp_path / "o"), "--resume", str(bogus), *TINY])
    out = tmp_path / "u"
    main(["--data", str(painting_dir), "--out", str(out), "train.steps=1", "eval.enabled=false", "--no-export", *TINY])
    with pytest.raises(TrainingError, match="conditional"):
        main(["--data", str(painting_dir), "net.conditional=true", "--out", str(out), "train.steps=2",
              "--resume", str(out / "last.pt"), *TINY])


@pytest.mark.slow  # loads the pretrained EfficientNet-Lite0 and runs it at 224 px: ~30 s on a quiet machine
def test_training_with_eval_amp_and_export(tmp_path, painting_dir):
    """Two steps with Frechet evaluation (untrained baseline + end), bf16 autocast on CPU, ONNX export."""
    out = tmp_path / "run"
    rc = main(["--data", str(painting_dir), "--out", str(out), "train.steps=2", "train.amp=true", "--eval-every", "0",
               "eval.samples=8", "eval.real=16", *TINY])
    assert rc == 0
    hist = json.loads((out / "fd_history.json").read_text())
    assert [h[0] for h in hist] == [0, 2] and all(np.isfinite(h[1]) and h[1] > 0 for h in hist)
    assert (out / "fd_vs_step.png").is_file() and (out / "best.pt").is_file()
    assert (out / "generator.onnx").is_file()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, painting_dir) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    main(["--data", str(painting_dir), "net.conditional=true", "--out", str(out), "train.steps=2", "eval.enabled=false",
          "--no-export", *TINY])
    return out / "last.pt"


def test_export_spec_contract(tiny_checkpoint):
    spec = export_spec(load_checkpoint(tiny_checkpoint, "generate"))
    assert set(spec) >= {"model", "meta", "example_inputs", "output_names", "dynamic_axes"}
    meta = spec["meta"]
    assert meta.task == "generate" and meta.latent.size == 16 and meta.latent.name == "z"
    assert meta.classes.labels == ("alpha", "beta") and meta.output.range == (-1.0, 1.0)
    assert set(spec["example_inputs"]) == {"z", "class"} and spec["output_names"] == ["image"]


def test_export_parity_and_runtime_shape_errors(tmp_path, tiny_checkpoint):
    from artcam.runtime.loading import load_model

    ckpt = load_checkpoint(tiny_checkpoint, "generate")
    path = tmp_path / "gen.onnx"
    report = export_checkpoint(ckpt, path)
    assert report.passed
    g = generator_from_checkpoint(ckpt)
    m = load_model(path, task="generate", device="cpu")
    try:
        assert m.meta.latent.size == 16 and m.meta.classes.labels == ("alpha", "beta")
        z = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
        y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 1]]
        got = m.runner.infer({"z": z, "class": y})["image"]
        with torch.no_grad():
            ref = g(torch.from_numpy(z), torch.from_numpy(y)).numpy()
        assert got.shape == (5, 3, 64, 64)
        np.testing.assert_allclose(got, ref, atol=1e-4)
        with pytest.raises(InputError):
            m.runner.infer({"z": np.zeros((1, 17), np.float32), "class": y[:1]})
        with pytest.raises(InputError):
            m.runner.infer({"z": z[:1]})  # the class input is missing
    finally:
        m.close()


# --- Frechet distance and memorisation check -------------------------------------------------


def test_frechet_distance_identical_is_zero_and_shift_is_squared_norm():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 16)) @ rng.standard_normal((16, 16))
    assert frechet.fd_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.full(16, 0.5)
    assert frechet.fd_from_features(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    b = rng.standard_normal((400, 16)) * 2
    assert frechet.fd_from_features(a, b) == pytest.approx(frechet.fd_from_features(b, a), rel=1e-6)
    assert frechet.fd_from_features(a, b) > 1.0


def test_frechet_distance_of_known_gaussians():
    # N(0, I) vs N(0, 4I) in d dims: tr(I + 4I - 2*2I) = d
    d = 8
    assert frechet.frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(d)


def test_nearest_neighbour_check_flags_copies():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((300, 32)).astype(np.float32)
    copies = frechet.nearest_neighbour_check(train[:50] + 1e-4, train)
    fresh = frechet.nearest_neighbour_check(rng.standard_normal((50, 32)), train)
    assert copies["ratio_of_medians"] < 0.01 and copies["frac_samples_below_train_p5"] == 1.0
    assert 0.7 < fresh["ratio_of_medians"] < 1.5 and fresh["frac_samples_below_train_p5"] < 0.3


@pytest.mark.slow  # two processes joined by gloo: about 10 s
def test_ddp_two_processes_on_cpu(tmp_path, painting_dir, torchrun):
    out = tmp_path / "ddp"
    r = torchrun("-m", "artcam.training.generate", "--data", str(painting_dir), "net.conditional=true", "--steps", "2",
                 "eval.enabled=false", "--no-export", "train.threads=1", "--out", str(out), *TINY)
    assert "device cpu x2" in r.stderr
    assert load_checkpoint(out / "last.pt", "generate")["step"] == 2

"""`artcam train classify`: data handling, resume exactness, errors, DDP and export, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from artcam.training import classify, datasets, make_classifier
from artcam.training.common import TrainingError, load_checkpoint
from artcam.training.efficientnet_lite import efficientnet_lite0

CLASSES = ("dots", "stripes", "plain")


def _painting(kind: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """Tiny BGR images whose class is a texture: separable even by a small net in a few steps."""
    img = np.full((size, size + 8, 3), rng.integers(60, 200, 3), np.uint8)
    if kind == "dots":
        for _ in range(12):
            cv2.circle(img, tuple(int(v) for v in rng.integers(0, size, 2)), 2, (255, 255, 255), -1)
    elif kind == "stripes":
        img[:, ::4] = 0
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes x 8 images, one greyscale PNG and one corrupt JPEG."""
    root = tmp_path_factory.mktemp("art")
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / c).mkdir()
        for i in range(8):
            cv2.imwrite(str(root / c / f"{i}.jpg"), _painting(c, rng))
    cv2.imwrite(str(root / "plain" / "grey.png"), cv2.cvtColor(_painting("plain", rng), cv2.COLOR_BGR2GRAY))
    (root / "dots" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def _train(tmp: Path, *extra: str, data: str | None = None, out: str = "run") -> Path:
    argv = ["--data", data, "--out", str(tmp / out), "train.device=cpu", "--quiet", *extra]
    assert classify.main(argv) == 0
    return tmp / out


def test_folder_loading_skips_unreadable_and_converts_grey(folder):
    data = datasets.load_folder(folder, 32, 0.25, seed=0)
    assert data.classes == tuple(sorted(CLASSES))
    assert len(data.skipped) == 1 and "broken.jpg" in data.skipped[0]
    assert len(data.train) + len(data.val) == 25  # 8 dots (+1 corrupt) + 8 stripes + 9 plain (1 grey)
    assert data.train.images.shape[1:] == (37, 37, 3) and data.train.images.dtype == np.uint8
    for c in range(3):  # stratified: every class on both sides
        assert (data.val.labels == c).sum() == 2
    again = datasets.load_folder(folder, 32, 0.25, seed=0)
    np.testing.assert_array_equal(again.val.images, data.val.images)


def test_empty_class_and_single_class_are_errors(tmp_path, folder):
    for c in ("a", "b"):
        (tmp_path / "one" / c).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "one" / "a" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TrainingError, match="without images.*b"):
        datasets.load_folder(tmp_path / "one", 32, 0.2, 0)
    (tmp_path / "single" / "only").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "single" / "only" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TrainingError, match="at least 2"):
        datasets.load_folder(tmp_path / "single", 32, 0.2, 0)


def test_two_folders_join_and_keep_each_split(tmp_path, folder):
    """art + art_extra: one dataset; adding a folder never moves the first folder's images across the split;
    class sets must agree (both differences named); unreadable files are skipped and counted."""
    import shutil

    extra = tmp_path / "extra"
    shutil.copytree(folder, extra)
    one = datasets.load_folder(folder, 32, 0.25, seed=0)
    both = datasets.load_folders([folder, extra], 32, 0.25, seed=0)
    assert both.classes == one.classes and both.source == f"{folder},{extra}"
    assert len(both.train) == 2 * len(one.train) and len(both.val) == 2 * len(one.val)
    np.testing.assert_array_equal(both.val.images[: len(one.val)], one.val.images)
    assert len(both.skipped) == 2  # the corrupt file in each folder, counted, not fatal
    assert datasets.load_data(f"{folder},{extra}", 32, 0.25, 0).val.images.shape == both.val.images.shape
    files, labels, classes = make_classifier.val_files([folder, extra], 0.25, 0)
    assert classes == both.classes and len(files) == len(labels)
    shutil.rmtree(extra / "dots")
    (extra / "waves").mkdir()
    cv2.imwrite(str(extra / "waves" / "w.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(TrainingError, match=r"different classes: only in the first \['dots'\], only in the second \['waves'\]"):
        datasets.load_folders([folder, extra], 32, 0.25, 0)
    with pytest.raises(TrainingError, match="not found"):
        datasets.load_folders([folder, tmp_path / "nope"], 32, 0.25, 0)


def test_train_val_subfolders(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("val", 2)):
        for c in CLASSES[:2]:
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(tmp_path / split / c / f"{i}.png"), _painting(c, rng))
    data = datasets.load_folder(tmp_path, 32, 0.5, 0)
    assert (len(data.train), len(data.val)) == (8, 4)


def test_augmentation_is_a_function_of_its_seed():
    img = np.random.default_rng(0).integers(0, 255, (37, 37, 3), dtype=np.uint8)
    a = datasets.train_view(img, 32, (0, 1, 2), 0.35)
    np.testing.assert_array_equal(a, datasets.train_view(img, 32, (0, 1, 2), 0.35))
    assert a.shape == (32, 32, 3)
    assert datasets.eval_view(img, 32, 0.875).shape == (32, 32, 3)


@pytest.fixture(scope="module")
def cifar_npz(tmp_path_factory) -> Path:
    """CIFAR-format npz: class = dominant colour channel pattern, learnable in a few steps."""
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 3
        x = rng.integers(0, 80, (n, 32, 32, 3)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, :, :, c] += 150
        return x, y.astype(np.uint8)

    xt, yt = make(48)
    xv, yv = make(24)
    p = tmp_path_factory.mktemp("cifar") / "mini.npz"
    np.savez(p, x_train=xt, y_train=yt, x_test=xv, y_test=yv, classes=np.array(["r", "g", "b"]))
    return p


def test_cifar_python_batches(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 5)):
        d = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (tmp_path / name).write_bytes(pickle.dumps(d))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in "abcdefghij"]}))
    data = datasets.load_data(f"cifar10:{tmp_path}", 32, 0.15, 0)
    assert (len(data.train), len(data.val), data.val_name) == (10, 5, "test")
    assert data.classes == tuple("abcdefghij") and data.train.images.shape == (10, 32, 32, 3)
    raw = pickle.loads((tmp_path / "data_batch_1").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(data.train.images[0, 0, 0], raw[[0, 1024, 2048]])  # R, G, B planes
    with pytest.raises(TrainingError, match="not found"):
        datasets.load_data(f"cifar10:{tmp_path / 'nope'}", 32, 0.15, 0)


def test_seed_cnn_on_cifar_npz_learns_and_exports(tmp_path, cifar_npz):
    out = _train(tmp_path, "model.arch=seed_cnn", "train.epochs=3", "train.batch_size=8", "train.lr=3e-3",
                 data=f"cifar10:{cifar_npz}")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and len(metrics["history"]) == 3
    assert metrics["best"]["val_acc"] >= 0.9  # colour classes are trivial
    assert (out / "confusion.png").stat().st_size > 1000
    onnx_path = out / "seed_cnn_cifar10.onnx"
    from artcam.runtime.modelfile import read_model_file

    _, meta = read_model_file(onnx_path)
    assert meta.task == "classify" and meta.heads[0].labels == ("r", "g", "b")
    assert meta.image.fixed_size == (32, 32) and meta.image.resize == "stretch"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, "classify")["model"]


@pytest.mark.parametrize("mix", [[], ["train.mixup=0.4", "train.cutmix=1.0"]], ids=["plain", "mixed"])
def test_resume_is_exact(tmp_path, cifar_npz, mix):
    common = ["model.arch=seed_cnn", "train.epochs=2", "train.batch_size=8", "train.seed=3", *mix]
    full = _train(tmp_path, *common, data=f"cifar10:{cifar_npz}", out="full")
    part = _train(tmp_path, *common, "train.max_steps=4", data=f"cifar10:{cifar_npz}", out="part")
    assert load_checkpoint(part / "last.pt", "classify")["step"] == 4  # stopped mid-epoch (6 steps/epoch)
    _train(tmp_path, *common, "--resume", str(part / "last.pt"), data=f"cifar10:{cifar_npz}", out="part")
    a, b = _weights(full / "last.pt"), _weights(part / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
    assert load_checkpoint(part / "last.pt", "classify")["step"] == 12


def test_killed_mid_epoch_resumes_from_the_periodic_checkpoint(tmp_path, cifar_npz, monkeypatch):
    """--ckpt-every-steps writes last.pt mid-epoch; a run killed later resumes there and ends as an unkilled one."""
    common = ["model.arch=seed_cnn", "train.epochs=2", "train.batch_size=8", "train.seed=3", "train.ckpt_every=2"]
    full = _train(tmp_path, *common, data=f"cifar10:{cifar_npz}", out="full")
    real = classify.mix_batch

    def killed_at_step_5(x, y, mixup, cutmix, key):
        if key[1] == 5:
            raise KeyboardInterrupt
        return real(x, y, mixup, cutmix, key)

    monkeypatch.setattr(classify, "mix_batch", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, *common, data=f"cifar10:{cifar_npz}", out="part")
    assert load_checkpoint(tmp_path / "part" / "last.pt", "classify")["step"] == 4  # mid-epoch (6 steps/epoch)
    monkeypatch.setattr(classify, "mix_batch", real)
    _train(tmp_path, *common, "--resume", str(tmp_path / "part" / "last.pt"), data=f"cifar10:{cifar_npz}", out="part")
    a, b = _weights(full / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_ctrl_c_mid_epoch_finishes_the_step_and_saves_it(tmp_path, cifar_npz, monkeypatch):
    """A real SIGINT to this process during step 5: the step completes, last.pt holds step 5, Interrupted says how
    to resume; the handler is gone afterwards (the default one raises KeyboardInterrupt again)."""
    import os
    import signal

    from artcam.runtime.errors import Interrupted

    real = classify.mix_batch

    def ctrl_c_at_step_5(x, y, mixup, cutmix, key):
        if key[1] == 4:  # the fifth step (0-based key)
            os.kill(os.getpid(), signal.SIGINT)
        return real(x, y, mixup, cutmix, key)

    monkeypatch.setattr(classify, "mix_batch", ctrl_c_at_step_5)
    with pytest.raises(Interrupted, match=r"stopped after step 5; resume with --resume .*last\.pt"):
        _train(tmp_path, "model.arch=seed_cnn", "train.epochs=2", "train.batch_size=8", "train.seed=3",
               data=f"cifar10:{cifar_npz}", out="part")
    assert load_checkpoint(tmp_path / "part" / "last.pt", "classify")["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_mix_batch_mixup_and_cutmix():
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 16, 20).contiguous()
    y = torch.arange(4)
    assert classify.mix_batch(x, y, 0.0, 0.0, (0, 0))[3] == 1.0  # off
    seen = set()
    for step in range(40):
        xm, ya, yb, lam = classify.mix_batch(x, y, 0.4, 1.0, (0, step, 0))
        assert torch.equal(ya, y) and sorted(yb.tolist()) == [0, 1, 2, 3] and 0.0 <= lam <= 1.0
        # each image is made of itself and its partner, in the proportion lam says
        own = x[:, :, 0, 0][:, 0]
        other = own[yb]
        if torch.allclose(xm, lam * x + (1 - lam) * x[yb]):
            seen.add("mixup")
        else:
            from_own = (xm[:, 0] == own.view(4, 1, 1)).float().mean((1, 2))
            from_other = (xm[:, 0] == other.view(4, 1, 1)).float().mean((1, 2))
            same = own == other  # an image paired with itself
            assert torch.allclose(from_own[~same], torch.full_like(from_own[~same], lam), atol=1e-6)
            assert torch.allclose(from_other[~same], torch.full_like(from_other[~same], 1 - lam), atol=1e-6)
            seen.add("cutmix")
        again = classify.mix_batch(x, y, 0.4, 1.0, (0, step, 0))
        assert torch.equal(again[0], xm) and again[3] == lam  # a function of the seed
    assert seen == {"mixup", "cutmix"}


def test_negative_mix_alpha_is_refused(tmp_path, cifar_npz):
    with pytest.raises(TrainingError, match="mixup"):
        _train(tmp_path, "model.arch=seed_cnn", "train.epochs=1", "train.batch_size=8", "train.mixup=-1",
               data=f"cifar10:{cifar_npz}")


def test_resume_with_other_arch_is_refused(tmp_path, cifar_npz):
    out = _train(tmp_path, "model.arch=seed_cnn", "train.epochs=1", "train.batch_size=8", "train.max_steps=1",
                 data=f"cifar10:{cifar_npz}")
    with pytest.raises(TrainingError, match="seed_cnn"):
        classify.main(["--data", f"cifar10:{cifar_npz}", "model.arch=efficientnet_lite0", "model.img_size=32",
                       "--resume", str(out / "last.pt"), "--out", str(tmp_path / "x"), "train.device=cpu", "--quiet"])


def test_nan_loss_stops_and_keeps_last_good(tmp_path, cifar_npz):
    with pytest.raises(TrainingError, match="loss became"):
        _train(tmp_path, "model.arch=seed_cnn", "train.epochs=1", "train.batch_size=8", "train.lr=1e30",
               "train.label_smoothing=0", data=f"cifar10:{cifar_npz}")


def test_efficientnet_two_heads_on_folder_export_parity(tmp_path, folder):
    """Fine-tune the last block at 32 px with distillation; the export keeps both heads within 1e-4."""
    out = _train(tmp_path, "model.arch=efficientnet_lite0", "model.head=gram", "model.img_size=32", "train.epochs=1",
                 "train.batch_size=6", "train.train_blocks=1", "data.val_split=0.25", data=str(folder))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["skipped"]) == 1
    assert 0.0 <= metrics["history"][0]["objects_agreement"] <= 1.0
    ckpt = load_checkpoint(out / "best.pt", "classify", "efficientnet_lite0")
    pretrained = efficientnet_lite0(pretrained=True).state_dict()
    torch.testing.assert_close(ckpt["model"]["backbone._fc.weight"], pretrained["_fc.weight"])  # objects frozen
    torch.testing.assert_close(ckpt["model"]["backbone._blocks.3._project_conv.weight"],
                               pretrained["_blocks.3._project_conv.weight"])  # frozen block
    spec = classify.export_spec(ckpt)
    assert spec["output_names"] == ["objects", "style"]
    from artcam.export.onnx_export import export_model
    from artcam.runtime.modelfile import read_model_file

    feeds = [{"image": np.random.default_rng(i).random((2, 3, 32, 32), dtype=np.float32)} for i in range(2)]
    report = export_model(spec["model"], spec["example_inputs"], spec["output_names"], spec["meta"],
                          tmp_path / "two.onnx", dynamic_axes=spec["dynamic_axes"], verify_inputs=feeds)
    assert report.passed and report.outputs["style"]["max_abs"] <= 1e-4
    _, meta = read_model_file(tmp_path / "two.onnx")
    assert [h.head for h in meta.heads] == ["objects", "style"]
    assert len(meta.heads[0].labels) == 1000 and meta.heads[1].labels == tuple(sorted(CLASSES))
    assert meta.image.resize == "center_crop" and meta.image.fixed_size == (32, 32)



def test_features_and_fit_on_a_fine_tuned_backbone(tmp_path, folder):
    """`make_classifier features --backbone CKPT` reads the fine-tuned backbone, and `fit` ships that backbone."""

    out = _train(tmp_path, "model.arch=efficientnet_lite0", "model.head=pooled", "model.img_size=32", "train.epochs=1",
                 "train.batch_size=6", "train.train_blocks=1", "data.val_split=0.25", "train.lr=3e-2",
                 "train.backbone_lr_scale=1", "--no-export", data=str(folder))
    tuned = load_checkpoint(out / "best.pt", "classify", "efficientnet_lite0")["model"]
    key = "backbone._blocks.15._project_conv.weight"
    assert not torch.equal(tuned[key], efficientnet_lite0(pretrained=True).state_dict()[key[9:]])
    images = datasets.load_folder(folder, 224, 0.25, 0).val.images[:3]
    frozen = make_classifier.compute_features(images, 0.875, False, log=lambda *a: None)
    adapted = make_classifier.compute_features(images, 0.875, False, log=lambda *a: None, backbone=out / "best.pt")
    assert not np.allclose(frozen["pooled"], adapted["pooled"], atol=1e-4)
    np.testing.assert_allclose(frozen["gram"][:, :50].astype(np.float32),  # block 4 lies before the tuned block
                               adapted["gram"][:, :50].astype(np.float32), atol=1e-2)

    npz, head = tmp_path / "f.npz", tmp_path / "head.pt"
    make_classifier.main(["features", "--data", str(folder), "--backbone", str(out / "best.pt"), "--out", str(npz)])
    make_classifier.main(["fit", str(npz), "--head", "stats", "--l2", "1e-3", "--iters", "20", "--out", str(head)])
    ck = load_checkpoint(head, "classify", "efficientnet_lite0")
    torch.testing.assert_close(ck["model"][key], tuned[key])
    assert ck["provenance"]["backbone_from"]["checkpoint"] == str(out / "best.pt")
    assert "--backbone" in ck["provenance"]["command"]
    with pytest.raises(TrainingError):
        make_classifier.compute_features(images, 0.875, False, backbone=tmp_path / "missing.pt")


def test_init_from_a_fitted_head_then_fine_tune(tmp_path, folder):
    """Linear probe, then fine-tune from it: the head starts where the probe ended; a mismatch is refused."""
    common = ["model.arch=efficientnet_lite0", "model.head=stats", "model.img_size=32", "train.batch_size=6",
              "data.val_split=0.25"]
    probe = _train(tmp_path, *common, "train.epochs=1", "train.freeze_backbone=true", data=str(folder), out="probe")
    first = load_checkpoint(probe / "last.pt", "classify", "efficientnet_lite0")
    ft = _train(tmp_path, *common, "train.epochs=1", "train.train_blocks=1", "--init", str(probe / "last.pt"),
                "train.max_steps=1", "train.lr=0", "--no-export", data=str(folder), out="ft")  # lr 0: weights as loaded
    start = load_checkpoint(ft / "last.pt", "classify", "efficientnet_lite0")
    torch.testing.assert_close(start["model"]["fc.weight"], first["model"]["fc.weight"])
    # the fitted head's standardisation is kept, not re-estimated from fine-tuning batches
    torch.testing.assert_close(start["model"]["norm.running_var"], first["model"]["norm.running_var"])
    assert start["step"] == 1 and start["provenance"]["init_from"]["command"].startswith("artcam train classify")
    with pytest.raises(TrainingError, match="head"):
        _train(tmp_path, *[a.replace("model.head=stats", "model.head=gram") for a in common], "--init", str(probe / "last.pt"),
               data=str(folder), out="bad")

@pytest.mark.slow
def test_ddp_two_processes_gloo(tmp_path, cifar_npz, torchrun):
    torchrun("-m", "artcam.runtime.cli", "train", "classify", "--data", f"cifar10:{cifar_npz}", "model.arch=seed_cnn",
             "train.epochs=1", "train.batch_size=8", "train.device=cpu", "--out", str(tmp_path / "ddp"), "--quiet",
             "--no-export", timeout=240)
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt", "classify", "seed_cnn")
    assert ckpt["step"] == 6 and len(ckpt["history"]) == 1


def test_shipped_classifier_objects_head_is_intact():
    """The shipped two-head model still says "Egyptian cat" / "espresso" through its objects head."""
    from skimage import data

    from artcam.runtime.loading import load_model

    m = load_model("classifier_lite0", task="classify", device="cpu")
    try:
        heads = {h.name: h for h in m.meta.heads}
        assert len(heads["objects"].labels) == 1000
        assert m.meta.image.fixed_size == (224, 224) and m.meta.image.range == (0.0, 1.0)
        for img, cls in ((data.chelsea(), 285), (data.coffee(), 967)):
            x = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            out = m.runner.infer({"image": np.ascontiguousarray(x.transpose(2, 0, 1)[None])})
            assert int(np.argmax(out["objects"])) == cls
        if "style" in heads:
            assert len(heads["style"].labels) == 7
    finally:
        m.close()


def test_heldout_links_exactly_the_trainers_val_split(tmp_path, folder):
    import shutil


    clean = tmp_path / "clean"  # every file readable: then the listing's split is the trainer's split
    shutil.copytree(folder, clean, ignore=shutil.ignore_patterns("broken.jpg"))
    make_classifier.main(["heldout", "--data", str(clean), "--out", str(tmp_path / "held")])
    files, labels, classes = make_classifier.val_files(clean)
    assert sorted(p.relative_to(tmp_path / "held") for p in (tmp_path / "held").rglob("*.*")) == sorted(
        Path(classes[y]) / f.name for f, y in zip(files, labels))
    data = datasets.load_folder(clean, 32, 0.15, make_classifier.FEATURE_SEED)
    mine = datasets._decode(files, list(labels), datasets.cache_size(32), [])
    np.testing.assert_array_equal(mine.images, data.val.images)
    np.testing.assert_array_equal(mine.labels, data.val.labels)


@pytest.mark.data
@pytest.mark.slow
def test_shipped_style_head_on_held_out_paintings(shared_data):
    """The shipped classifier end to end (runtime preprocessing, ONNX Runtime) on 50 held-out paintings
    per style from art/ + art_extra/ (never fitted on): 64.0% on all 2,100 when shipped (an SE of about
    2.6 points at 350 images, so the bound leaves room for sampling, not for a broken head)."""
    from artcam.runtime.fileio import read_image
    from artcam.runtime.loading import load_model
    from artcam.runtime.processing import ImagePreprocessor

    if not (shared_data / "art_extra").is_dir():
        pytest.skip("art_extra/ not in the shared data")
    files, labels, classes = make_classifier.val_files([shared_data / "art", shared_data / "art_extra"])
    pick = np.concatenate([np.flatnonzero(labels == c)[::6][:50] for c in range(len(classes))])
    m = load_model("classifier_lite0", task="classify", device="cpu")
    head = next(h for h in m.meta.heads if h.name == "style")
    assert tuple(head.labels) == classes
    pre = ImagePreprocessor(m.meta.image)
    hits = sum(int(np.argmax(m.runner.infer({m.meta.image.name: pre(read_image(files[i]))})["style"])) == labels[i]
               for i in pick)
    m.close()
    assert len(pick) == 350 and hits / len(pick) >= 0.58

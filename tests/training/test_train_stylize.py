"""The stylize trainer on tiny data it writes itself: recipes, resume, distillation, export, bad input, interrupts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from artcam.runtime.modelfile import read_model_file
from artcam.training import stylize
from artcam.training.common import TrainingError, load_checkpoint
from artcam.training.style_terms import TERMS, build_terms

BASE = """
name = "tiny"
[net]
size = "nano"
[data]
styles = ["stripes.png", "dots.png"]
content = "photos"
image_size = 32
style_size = 64
[train]
steps = 2
batch_size = 2
log_every = 1
sample_every = 0
ckpt_every = 1
[loss]
net = "random"
"""
PLAIN_LOSS = """
[loss.content]
weight = 1.0
[loss.style]
weight = 10.0
[loss.tv]
weight = 1.0
[loss.stability]
weight = 100.0
"""
RECIPE = BASE + PLAIN_LOSS


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stylize_data")
    content = root / "photos"
    (content / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        img = np.full((60 + 8 * i, 72, 3), 40 * i, np.uint8)
        cv2.circle(img, (30, 30), 10 + i, (255, 200, 30 * i), -1)
        img = cv2.add(img, rng.integers(0, 30, img.shape, dtype=np.uint8))
        cv2.imwrite(str((content / "sub" if i % 2 else content) / f"p{i}.jpg"), img)
    stripes = np.zeros((64, 80, 3), np.uint8)
    stripes[:, ::8] = (20, 180, 250)
    stripes[::6] = (200, 40, 40)
    cv2.imwrite(str(root / "stripes.png"), stripes)
    dots = np.full((48, 48, 3), 230, np.uint8)
    dots[::5, ::5] = (10, 10, 10)
    cv2.imwrite(str(root / "dots.png"), dots)
    (root / "broken.jpg").write_bytes(b"not an image")
    (root / "empty").mkdir()
    return {"root": root, "content": content, "stripes": root / "stripes.png", "dots": root / "dots.png",
            "broken": root / "broken.jpg", "empty": root / "empty"}


def _recipe(data, tmp_path, text: str = RECIPE) -> Path:
    p = tmp_path / "recipe.toml"
    p.write_text(text)
    return p


def _run(data, tmp_path, *extra, recipe: Path | None = None, out: Path | None = None) -> Path:
    out = out or tmp_path / "run"
    argv = ["--recipe", str(recipe or _recipe(data, tmp_path)), "--out", str(out), f"data.root={data['root']!s}", *extra]
    assert stylize.main(argv) == 0
    return out


def test_train_resume_and_export(data, tmp_path):
    out = _run(data, tmp_path, "--no-export")
    ck = load_checkpoint(out / "last.pt", "stylize", "nano")
    assert ck["step"] == 2 and ck["config"]["styles"] == ["stripes", "dots"]
    assert ck["config"]["recipe"]["loss"]["style"]["weight"] == 10.0  # the whole recipe travels with the model
    before = {k: v.clone() for k, v in ck["model"].items()}

    _run(data, tmp_path, "--resume", str(out / "last.pt"), "train.steps=4", "loss.style.weight=20")
    ck = load_checkpoint(out / "last.pt", "stylize", "nano")
    assert ck["step"] == 4  # continued from 2, not restarted
    assert any(not torch.equal(before[k], v) for k, v in ck["model"].items())

    _, meta = read_model_file(out / "tiny.onnx")
    assert meta.task == "stylize" and meta.styles == ("stripes", "dots")
    assert meta.image.multiple == 8 and meta.provenance["step"] == 4
    spec = stylize.export_spec(ck)
    assert spec["output_names"] == ["stylized"] and spec["example_inputs"]["style"].shape == (1, 2)


def test_shipped_recipes_load_and_name_public_domain_paintings():
    from artcam.training.recipe import load_recipe
    from artcam.training.skeleton import recipes_for

    names = recipes_for(stylize.SCHEMA)
    assert names == ["stylizer_hd", "stylizer_nano", "stylizer_teacher"]
    for n in names:
        r = load_recipe(n, stylize.SCHEMA)
        assert len(r["data"]["styles"]) == 8 and all(s in stylize.PAINTINGS for s in r["data"]["styles"])
        terms = build_terms({k: v for k, v in r["loss"].items() if k != "net"})
        assert {t.name for t in terms} <= set(TERMS)
    nano = load_recipe("stylizer_nano", stylize.SCHEMA)
    assert nano["loss"]["distill"]["teacher"] and nano["net"]["size"] == "nano"
    hd = load_recipe("stylizer_hd", stylize.SCHEMA)  # distilled from, and started from, the shipped nano file
    assert hd["net"]["size"] == "hd" and hd["loss"]["distill"]["teacher"] == hd["net"]["init_from"]
    assert Path(hd["net"]["init_from"]).name == "stylizer_nano.onnx" and "kodak" in hd["data"]["exclude"]


@pytest.mark.parametrize("override, match, hint", [
    ("train.epochs=3", "unknown recipe key 'train.epochs'", "steps"),
    ("loss.snap.weight=5", "unknown loss term 'snap'", "content, style, tv, stability, distill"),
    ("loss.style.colour=1", "unknown option", "weight, layers"),
    ("train.lr=fast", "recipe key 'train.lr'", "float"),
    ("loss.tv.weight=-1", "weight -1", "finite number"),
    ("minutes", "not key=value", "train.minutes=30"),
])
def test_recipe_mistakes_name_the_key_and_list_the_known_ones(data, tmp_path, override, match, hint):
    with pytest.raises(TrainingError, match=match) as e:
        _run(data, tmp_path, "--no-export", override)
    assert hint in (e.value.hint or "")


@pytest.mark.parametrize("case, match", [
    ("broken_style", "cannot read style image"),
    ("empty_content", "no images found"),
    ("bad_size", "not a multiple"),
    ("no_recipe", "recipe .* not found"),
    ("bad_toml", "cannot read recipe"),
])
def test_bad_input_is_a_clear_training_error(data, tmp_path, case, match):
    extra, recipe = [], None
    if case == "broken_style":
        extra = ['data.styles=["broken.jpg"]']
    elif case == "empty_content":
        extra = ["data.content=empty"]
    elif case == "bad_size":
        extra = ["data.image_size=36"]
    elif case == "no_recipe":
        recipe = tmp_path / "nope.toml"
    elif case == "bad_toml":
        recipe = _recipe(data, tmp_path, RECIPE + "\n[train\n")
    with pytest.raises(TrainingError, match=match):
        _run(data, tmp_path, "--no-export", *extra, recipe=recipe)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path, monkeypatch):
    from artcam.training import style_terms

    calls = {"n": 0}
    real = style_terms.Stability.__call__

    def poisoned(self, v):
        calls["n"] += 1
        value = real(self, v)
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setattr(style_terms.Stability, "__call__", poisoned)
    with pytest.raises(TrainingError, match="step 3.*last good checkpoint"):
        _run(data, tmp_path, "train.steps=5")
    assert load_checkpoint(tmp_path / "run" / "last.pt", "stylize")["step"] == 2


def test_distillation_pulls_the_student_toward_the_teacher(data, tmp_path):
    teacher = _run(data, tmp_path, "--no-export", "net.size=teacher", "train.steps=1", out=tmp_path / "teacher")
    distil = BASE + f"""[loss.distill]
weight = 1.0
teacher = "{teacher / 'last.pt'}"
layers = {{ c1 = 1.0, c2 = 1.0 }}"""
    out = _run(data, tmp_path, "train.steps=30", "train.lr=0.01", "--no-export", recipe=_recipe(data, tmp_path, distil))
    log = load_checkpoint(out / "last.pt", "stylize")
    assert log["provenance"]["teacher"]["checkpoint"].endswith("last.pt")
    # the student's distillation error on fresh crops fell below that of a fresh net
    from artcam.training.perceptual import build_loss_network
    from artcam.training.style_terms import Distill, Views

    lossnet, t = build_loss_network("random"), stylize.load_teacher(str(teacher / "last.pt"), ["stripes", "dots"], "cpu")
    term = Distill(1.0, layers={"c1": 1.0, "c2": 1.0})
    x, st = torch.rand(4, 3, 32, 32), torch.eye(2)[[0, 1, 0, 1]]
    errors = []
    for net in (stylize.build_stylizer(log["config"]["net"]).eval(), stylize.model_from_checkpoint(log)):
        with torch.no_grad():
            o = net(x, st)
            v = Views(o, x, st, features=lossnet.features(o, ["c1", "c2"]),
                      teacher_features=lossnet.features(t(x, st), ["c1", "c2"]))
            errors.append(float(term(v)))
    assert errors[1] < errors[0]
    with pytest.raises(TrainingError, match="holds styles"):
        stylize.load_teacher(str(teacher / "last.pt"), ["dots", "stripes"], "cpu")


def test_a_thinner_net_distils_from_and_starts_from_an_exported_stylizer(data, tmp_path):
    """The shipped models come as ONNX files: a recipe may name one as the teacher and as net.init_from."""
    nano = _run(data, tmp_path, "train.steps=1", out=tmp_path / "nano") / "tiny.onnx"
    recipe = BASE.replace('size = "nano"', f'size = "hd"\ninit_from = "{nano}"') + f"""[loss.distill]
weight = 1.0
teacher = "{nano}"
layers = {{ c1 = 1.0, c2 = 1.0 }}"""
    out = _run(data, tmp_path, "train.steps=1", "train.lr=0", "--no-export", recipe=_recipe(data, tmp_path, recipe))
    ck = load_checkpoint(out / "last.pt", "stylize")
    assert ck["config"]["net"]["size"] == "hd" and ck["provenance"]["net_init_from"] == str(nano)
    from artcam.training.stylizer_file import load_stylizer

    src, _ = load_stylizer(nano)
    assert torch.equal(ck["model"]["blocks.0.dw.norm.gamma"], src.state_dict()["blocks.0.dw.norm.gamma"])
    assert stylize.load_teacher(str(nano), ["stripes", "dots"], "cpu").cfg.size == "nano"
    with pytest.raises(TrainingError, match="holds styles"):
        stylize.load_teacher(str(nano), ["dots", "stripes"], "cpu")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(TrainingError, match="the teacher"):
        stylize.load_teacher(str(bad), ["stripes", "dots"], "cpu")
    swapped = BASE.replace('size = "nano"', f'size = "hd"\ninit_from = "{nano}"').replace(
        '["stripes.png", "dots.png"]', '["dots.png", "stripes.png"]') + PLAIN_LOSS
    with pytest.raises(TrainingError, match="net.init_from .* holds styles"):
        _run(data, tmp_path, "train.steps=1", "--no-export", out=tmp_path / "swapped", recipe=_recipe(data, tmp_path, swapped))


def test_distill_without_a_teacher_is_a_clear_error(data, tmp_path):
    with pytest.raises(TrainingError, match="needs a teacher"):
        _run(data, tmp_path, "--no-export", "loss.distill.weight=1")


def _start_training(data, tmp_path, out):
    """A long tiny run in a child process, returned once its first checkpoint exists."""
    import os
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "artcam.runtime.cli", "train", "stylize", "--recipe", str(_recipe(data, tmp_path)),
           "--out", str(out), f"data.root={data['root']}", "train.steps=100000", "--no-export"]
    # PYTHONFAULTHANDLER: if the child ever hangs, SIGABRT (below) prints where every thread is
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"})
    deadline = time.time() + 120
    while not (out / "last.pt").is_file() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert (out / "last.pt").is_file(), p.stderr.read() if p.poll() is not None else "no checkpoint in 120 s"
    time.sleep(0.5)
    return p


def _finish(p) -> str:
    import signal
    import subprocess

    try:
        return p.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGABRT)
        pytest.fail("no exit 60 s after the signal; the child's threads:\n" + p.communicate()[1][-6000:])


@pytest.mark.reliability
@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_mid_training_stops_after_the_step_with_its_checkpoint(data, tmp_path, sig, code):
    """Ctrl-C / SIGTERM: the step in flight finishes, its checkpoint is written whole, the exit says how to resume."""
    import os
    import re
    import signal

    out = tmp_path / "run"
    p = _start_training(data, tmp_path, out)
    p.send_signal(getattr(signal, sig))
    err = _finish(p)
    assert p.returncode == code, err[-2000:]
    assert "Traceback" not in err
    m = re.search(r"stopped after step (\d+); resume with --resume (\S+)", err)
    assert m, err[-2000:]
    assert m.group(2) == str(out / "last.pt")
    assert load_checkpoint(out / "last.pt", "stylize")["step"] == int(m.group(1))  # no step lost
    assert not [f for f in os.listdir(out) if "partial" in f]


@pytest.mark.reliability
def test_a_second_ctrl_c_stops_at_once(data, tmp_path):
    import os
    import signal

    out = tmp_path / "run"
    p = _start_training(data, tmp_path, out)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    err = _finish(p)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert load_checkpoint(out / "last.pt", "stylize")["step"] >= 1  # the last atomic save, whole
    assert not [f for f in os.listdir(out) if "partial" in f]


@pytest.mark.reliability
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_a_random_point_of_training_then_resume(data, tmp_path, seed):
    """kill -9 mid-run (possibly mid-save): last.pt is the previous whole checkpoint, and --resume goes on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    recipe = _recipe(data, tmp_path)
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "train", "stylize", "--recipe", str(recipe), "--out", str(out),
           f"data.root={data['root']}", "train.steps=100000", "--no-export"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (out / "last.pt").is_file() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(float(np.random.default_rng(seed).uniform(0.0, 1.0)))
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    step = load_checkpoint(out / "last.pt", "stylize")["step"]
    assert step >= 1
    _run(data, tmp_path, "--no-export", "--resume", str(out / "last.pt"), f"train.steps={step + 2}", recipe=recipe)
    assert load_checkpoint(out / "last.pt", "stylize")["step"] == step + 2
    assert not [f for f in os.listdir(out) if "partial" in f]  # a save cut by the kill was swept

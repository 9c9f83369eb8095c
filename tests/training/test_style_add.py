"""`artcam style add`: a new painting learned into a copy of a stylizer, the old styles untouched.

Real processes, real files and real ONNX Runtime sessions; a tiny nano-shaped stylizer and a random loss
network keep each run to seconds. One slow test adds a style to the shipped model and exports it to FP16
and INT8 through their parity gates.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from artcam.training.style_add import read_painting, style_name  # noqa: E402
from artcam.training.stylize import export_checkpoint  # noqa: E402
from artcam.training.stylizer_nets import StylizerNet, config_for  # noqa: E402

TINY = dict(down=((8, 3, 2), (8, 3, 2), (16, 3, 2)), blocks=1, up=((8, 3), (8, 3)))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A tiny two-style base model, a painting and a folder of photos, all made here."""
    d = tmp_path_factory.mktemp("style_add")
    torch.manual_seed(0)
    cfg = config_for("nano", 2, **TINY)
    net = StylizerNet(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(".gamma"):
                p.add_(torch.randn_like(p) * 0.3)
            if name.endswith(".beta"):
                p.add_(torch.randn_like(p) * 0.3)
    net_cfg = {k: v for k, v in cfg.to_dict().items() if k != "num_styles"}
    base = d / "tiny_base.onnx"
    export_checkpoint({"config": {"net": cfg.to_dict(), "styles": ["warm", "cool"], "name": "tiny_base"},
                       "model": net.state_dict(), "provenance": {"net": net_cfg}, "step": 0}, base)
    rng = np.random.default_rng(0)
    photos = d / "photos"
    photos.mkdir()
    for i in range(10):
        img = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(photos / f"p{i}.png"), img)
    painting = d / "stripes.png"
    stripes = np.zeros((128, 128, 3), np.uint8)
    stripes[:, ::8] = (40, 200, 250)
    cv2.imwrite(str(painting), stripes)
    return {"base": base, "photos": photos, "painting": painting, "dir": d}


def artcam(args, models: Path, check: bool = True, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    env = dict(os.environ, ARTCAM_MODELS=str(models), PYTHONFAULTHANDLER="1")
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def quick(media, *extra) -> list:
    return ["style", "add", media["painting"], "--base", media["base"], "--photos", media["photos"],
            "--loss-net", "random", "--crop", 32, "--minutes", 0, *extra]


def run_ort(path: Path, image: np.ndarray, style: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"image": image, "style": style})[0]


def test_add_keeps_old_styles_bit_exact_and_learns_the_new_one(media, tmp_path):
    models = tmp_path / "models"
    p = artcam(quick(media, "--steps", 6, "--name", "stripes"), models)
    out = models / "my_styles.onnx"
    assert out.is_file() and "wrote" in p.stderr and "step" in p.stderr
    assert not list(models.glob("*.tmp*")) and not list((models / ".style_add").glob("*.pt"))

    from artcam.runtime.modelfile import read_model_file

    _, meta = read_model_file(out)
    assert meta.styles == ("warm", "cool", "stripes")
    assert meta.provenance["added"]["stripes"]["steps"] == 6
    assert meta.provenance["added"]["stripes"]["keep_scene"] == 0.1  # the default balance, recorded
    x = np.random.default_rng(1).random((1, 3, 64, 96), dtype=np.float32)
    for i in range(2):  # the base's styles give the same pictures as before
        old = run_ort(media["base"], x, np.eye(2, dtype=np.float32)[i:i + 1])
        new = run_ort(out, x, np.eye(3, dtype=np.float32)[i:i + 1])
        np.testing.assert_allclose(new, old, atol=1e-6)
    mean = run_ort(media["base"], x, np.full((1, 2), 0.5, np.float32))  # where the new row started
    learned = run_ort(out, x, np.eye(3, dtype=np.float32)[2:3])
    assert np.abs(learned - mean).mean() > 1e-4  # the new row moved


def test_second_add_appends_and_remove_drops(media, tmp_path):
    models = tmp_path / "models"
    artcam(quick(media, "--steps", 2, "--name", "one"), models)
    p = artcam(["style", "add", media["painting"], "--name", "two", "--photos", media["photos"], "--loss-net", "random",
                "--crop", 32, "--minutes", 0, "--steps", 2], models)  # no --base: adds to my_styles
    from artcam.runtime.modelfile import read_model_file

    _, meta = read_model_file(models / "my_styles.onnx")
    assert meta.styles == ("warm", "cool", "one", "two"), p.stderr
    artcam(["style", "remove", "one"], models)
    _, meta = read_model_file(models / "my_styles.onnx")
    assert meta.styles == ("warm", "cool", "two") and set(meta.provenance["added"]) == {"two"}


def test_user_model_runs_without_torch(media, tmp_path):
    models = tmp_path / "models"
    artcam(quick(media, "--steps", 2, "--name", "stripes"), models)
    block = tmp_path / "notorch"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\nclass _B:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, _B())\n")
    code = ("import sys, numpy as np\nfrom artcam.runtime import Stylizer, load_model\n"
            "s = Stylizer(load_model('my_styles', task='stylize'), style='stripes:0.5,warm:0.5')\n"
            "out = s.stylize(np.full((60, 80, 3), 128, np.uint8))\n"
            "assert out.shape == (60, 80, 3) and 'torch' not in sys.modules\nprint('ok')\n")
    env = dict(os.environ, ARTCAM_MODELS=str(models),
               PYTHONPATH=str(block) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr
    no_train = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "style", "add", str(media["painting"])],
                              capture_output=True, text=True, env=env, timeout=120)
    assert no_train.returncode == 2 and "pip install 'artcam[train]'" in no_train.stderr, no_train.stderr
    assert len(no_train.stderr.strip().splitlines()) == 1
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 90, np.uint8))
    picked = artcam(["stylize", img, "--style", "stripes:0.5,warm:0.5", "-o", tmp_path / "out.png"], models)
    assert (tmp_path / "out.png").is_file(), picked.stderr  # the style's user model, picked by the style's name
    from artcam.runtime.zoo import SHIPPED_DIR

    hint = artcam(["stylize", img, "--style", "stripes", "--style-model", SHIPPED_DIR / "stylizer_nano.onnx", "-o",
                   tmp_path / "o2.png"], models, check=False)  # a model named outright is not swapped
    assert hint.returncode == 2 and "'stripes' is in the model my_styles" in hint.stderr, hint.stderr
    listing = artcam(["models"], models).stdout
    assert re.search(r"my_styles\s+user\s+stylize\s+styles: warm, cool, stripes", listing)


def test_keep_scene_is_recorded_and_bad_values_are_refused(media, tmp_path):
    """The balance a style was learned with travels in the model file; out-of-range values are exit 2."""
    from artcam.runtime.modelfile import read_model_file

    models = tmp_path / "ok"
    artcam(quick(media, "--steps", 1, "--name", "stripes", "--keep-scene", "0.5"), models)
    assert read_model_file(models / "my_styles.onnx")[1].provenance["added"]["stripes"]["keep_scene"] == 0.5
    for bad in ("0", "-1", "nan", "1000"):
        p = artcam(quick(media, "--steps", 1, "--keep-scene", bad), tmp_path / "bad", check=False)
        assert p.returncode == 2 and "--keep-scene" in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert not (tmp_path / "bad" / "my_styles.onnx").exists()


@pytest.mark.reliability
@pytest.mark.parametrize("case", ["garbage", "tiny", "missing", "huge_file"])
def test_bad_paintings_are_one_line_exit_2(media, tmp_path, case):
    bad = tmp_path / "bad.png"
    if case == "garbage":
        bad.write_bytes(b"not an image at all" * 10)
    elif case == "tiny":
        cv2.imwrite(str(bad), np.zeros((1, 1, 3), np.uint8))
    elif case == "huge_file":
        with open(bad, "wb") as f:
            f.truncate(65 * 2**20)  # over the file-size limit: refused before decoding
    else:
        bad = tmp_path / "nowhere.png"
    args = quick(media, "--steps", 2)
    args[2] = bad
    p = artcam(args, tmp_path / "models", check=False)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "models" / "my_styles.onnx").exists()


@pytest.mark.parametrize("kind", ["grey", "16bit", "alpha", "big"])
def test_unusual_paintings_are_read(tmp_path, kind):
    p = tmp_path / f"{kind}.png"
    if kind == "grey":
        cv2.imwrite(str(p), np.full((80, 90), 77, np.uint8))
    elif kind == "16bit":
        cv2.imwrite(str(p), np.full((80, 90, 3), 40000, np.uint16))
    elif kind == "alpha":
        img = np.zeros((80, 90, 4), np.uint8)  # fully transparent black: paper, i.e. white
        cv2.imwrite(str(p), img)
    else:
        cv2.imwrite(str(p), np.full((5000, 6000, 3), 200, np.uint8))
    bgr = read_painting(p)
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    expect = {"grey": 77, "16bit": 40000 >> 8, "alpha": 255, "big": 200}[kind]
    assert abs(float(bgr.mean()) - expect) < 1.0


@pytest.mark.reliability
def test_name_clashes_and_unwritable_folder(media, tmp_path):
    models = tmp_path / "models"
    shipped = artcam(["style", "add", media["painting"], "--name", "starry_night", "--photos", media["photos"],
                      "--loss-net", "random", "--crop", 32, "--steps", 1, "--minutes", 0], models, check=False)
    assert shipped.returncode == 2 and "already has a style named 'starry_night'" in shipped.stderr
    into_shipped = artcam(quick(media, "--steps", 1, "--into", "stylizer_nano"), models, check=False)
    assert into_shipped.returncode == 2 and "shipped model" in into_shipped.stderr
    models.mkdir()
    (models / "notastylizer.onnx").write_bytes(b"junk")
    other = artcam(["style", "add", media["painting"], "--into", "notastylizer", "--photos", media["photos"],
                    "--loss-net", "random", "--crop", 32, "--steps", 1, "--minutes", 0], models, check=False)
    assert other.returncode == 2 and "Traceback" not in other.stderr, other.stderr
    assert (models / "notastylizer.onnx").read_bytes() == b"junk"
    blocked = tmp_path / "file_not_folder"
    blocked.write_text("x")
    p = artcam(quick(media, "--steps", 1), blocked / "models", check=False)
    assert p.returncode == 2 and "cannot write to the models folder" in p.stderr, p.stderr
    assert style_name("Starry Night (copy).JPG".rsplit(".", 1)[0]) == "starry_night_copy"


@pytest.mark.reliability
def test_a_full_disk_is_one_line_before_training(media, tmp_path):
    """A file-size limit (what a nearly full disk does to a write) fails the folder check at once: exit 2,
    nothing written, no minutes of training lost."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))

    models = tmp_path / "models"
    env = dict(os.environ, ARTCAM_MODELS=str(models))
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *map(str, quick(media, "--steps", 50))],
                       capture_output=True, text=True, env=env, timeout=300, preexec_fn=limit)
    assert p.returncode == 2 and "cannot write to the models folder" in p.stderr, p.stderr
    assert "step" not in p.stderr and not list(models.glob("*.onnx"))


@pytest.mark.reliability
def test_ctrl_c_leaves_a_resumable_state_and_publishes_nothing(media, tmp_path):
    models = tmp_path / "models"
    env = dict(os.environ, ARTCAM_MODELS=str(models), PYTHONFAULTHANDLER="1")
    args = quick(media, "--steps", 100000, "--name", "stripes")
    proc = subprocess.Popen([sys.executable, "-m", "artcam.runtime.cli", *map(str, args)], stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = ""
        while "step" not in line:  # the first progress line comes after the first step
            line = proc.stderr.readline()
            assert line, "the run ended before its first step"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    m = re.search(r"stopped after step (\d+)", err)
    assert m and "--resume" in err and "Traceback" not in err, err
    assert not (models / "my_styles.onnx").exists()
    state = models / ".style_add" / "my_styles-stripes.pt"
    assert state.is_file()
    done = int(m.group(1))
    p = artcam(quick(media, "--steps", done + 2, "--name", "stripes", "--resume"), models)
    assert f"resumed 'stripes' at step {done}" in p.stderr
    from artcam.runtime.modelfile import read_model_file

    _, meta = read_model_file(models / "my_styles.onnx")
    assert meta.provenance["added"]["stripes"]["steps"] == done + 2 and not state.exists()
    again = artcam(quick(media, "--steps", 1, "--into", "fresh", "--resume"), models, check=False)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


@pytest.mark.slow
def test_added_style_on_the_shipped_model_passes_fp16_and_int8_gates(media, tmp_path):
    """The real stylizer_nano plus one style (a few steps, random loss net: the gates test the file, not the
    look), exported to FP16 and INT8; each export checks its own parity gate and refuses to write on failure."""
    import json

    models = tmp_path / "models"
    artcam(["style", "add", media["painting"], "--name", "stripes", "--photos", media["photos"], "--loss-net",
            "random", "--crop", 64, "--steps", 3, "--minutes", 0], models)
    src = models / "my_styles.onnx"
    half = tmp_path / "half.onnx"
    artcam(["export", src, "--half", "-o", half], models)
    assert half.is_file()
    from artcam.runtime.sources import sample_photos

    real = tmp_path / "real"  # calibration wants real pictures: crops of scikit-image's photos
    real.mkdir()
    shots = sample_photos()
    if not shots:
        pytest.skip("scikit-image (the demo extra) is not installed: no real photos to calibrate INT8 on")
    for i in range(12):
        img = shots[i % len(shots)]
        h, w = img.shape[:2]
        y, x = (i * 37) % (h // 3), (i * 53) % (w // 3)
        cv2.imwrite(str(real / f"c{i:02d}.jpg"), cv2.resize(img[y:y + h * 2 // 3, x:x + w * 2 // 3], (160, 120)))
    int8 = tmp_path / "int8.onnx"
    artcam(["export", src, "--int8", "--data", real, "--calib-count", 8, "--verify-count", 4,
            "-o", int8], models)
    rep = json.loads(Path(str(int8) + ".report.json").read_text())["int8"]
    assert int8.is_file() and rep["comparison"]["passed"], rep

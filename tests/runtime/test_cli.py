"""The CLI through subprocesses, including the runtime with torch made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.fileio import write_image
from artcam.runtime.zoo import SHIPPED_DIR


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    tm.stylizer(d / "tiny_style.onnx", styles=("warm", "cool"))
    tm.classifier(d / "tiny_cls.onnx")
    tm.generator(d / "tiny_gen.onnx", latent=8, size=16)
    tm.classifier(d / "foreign.onnx", meta=False)
    return d


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory):
    """A sitecustomize that makes `import torch` fail, as on a machine without PyTorch."""
    d = tmp_path_factory.mktemp("notorch")
    (d / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked for this test')\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    return d


def run(args, zoo=None, no_torch=None, cwd=None, check=True):
    env = dict(os.environ)
    if zoo is not None:
        env["ARTCAM_MODELS"] = str(zoo)
    if no_torch is not None:
        env["PYTHONPATH"] = str(no_torch) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *args], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def test_help_and_unknown_command():
    assert "commands:" in run(["--help"]).stdout
    p = run(["paint"], check=False)
    assert p.returncode == 2 and "unknown command 'paint'" in p.stderr


def test_info_json():
    info = json.loads(run(["info", "--json"]).stdout)
    assert "CPUExecutionProvider" in info["execution_providers"] and info["onnxruntime"]


def test_models_json(zoo):
    listed = {m["name"]: m for m in json.loads(run(["models", "--json"], zoo).stdout)}
    assert listed["tiny_style"]["task"] == "stylize" and listed["tiny_style"]["styles"] == ["warm", "cool"]
    assert listed["tiny_cls"]["labels"]["objects"] == ["cat", "dog", "car"]
    assert listed["tiny_gen"]["latent_size"] == 8
    assert "task" not in listed["foreign"]
    assert "tiny_style" in run(["models"], zoo).stdout


def test_classify_json_and_errors(zoo, tmp_path):
    img = tmp_path / "a.png"
    write_image(img, np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8))
    out = json.loads(run(["classify", str(img), "--model", "tiny_cls", "--json", "--top-k", "2"], zoo).stdout)
    assert [h["head"] for h in out["heads"]] == ["objects", "style"] and len(out["heads"][0]["top"]) == 2
    p = run(["classify", str(img), "--model", "tiny_style"], zoo, check=False)
    assert p.returncode == 2 and "is a stylize model" in p.stderr
    p = run(["classify", str(img), "--model", "foreign"], zoo, check=False)
    assert p.returncode == 2 and "--task" in p.stderr
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\ncar\n")
    p = run(["classify", str(img), "--model", "foreign", "--task", "classify", "--labels", str(labels),
             "--input-size", "32"], zoo)
    assert "[objects]" in p.stdout or "cat" in p.stdout
    p = run(["classify", str(img), "--model", "nosuchmodel"], zoo, check=False)
    assert p.returncode == 2 and "no model named 'nosuchmodel'" in p.stderr and p.stderr.count("\n") == 1
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"garbage" * 10)
    p = run(["classify", str(img), "--model", str(corrupt)], zoo, check=False)
    assert p.returncode == 2 and "not a valid ONNX model" in p.stderr


def test_stylize_folder_keeps_names_and_counts_unreadable(zoo, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("x.png", "y.jpg"):
        write_image(src / name, np.full((40, 52, 3), 120, np.uint8))
    (src / "bad.png").write_bytes(b"nope")
    out = tmp_path / "out"
    p = run(["stylize", str(src), "--style-model", "tiny_style", "--style", "cool", "-o", str(out), "--json"], zoo)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert stats["frames"] == 2 and stats["skipped"] == 1
    assert sorted(x.name for x in out.iterdir()) == ["x.jpg", "y.jpg"]
    p = run(["stylize", str(src / "x.png"), "--style-model", "tiny_style", "-o", str(tmp_path / "one.png")], zoo)
    assert p.stdout.strip() == f"wrote {tmp_path / 'one.png'}" and "FPS" not in p.stderr  # one picture: no speed
    assert "fell back" not in p.stderr  # the default device on a machine without a GPU is not news
    p = run(["stylize", str(src / "x.png"), "--style-model", "tiny_style", "--style", "sepia", "-o",
             str(tmp_path / "o.png")], zoo, check=False)
    assert p.returncode == 2 and "unknown style 'sepia'" in p.stderr
    p = run(["stylize", str(src / "x.png"), "--style-model", "tiny_style", "-o", str(tmp_path / "o.xyz")], zoo,
            check=False)
    assert p.returncode == 2 and "unknown output type" in p.stderr


def test_live_without_camera_or_display(zoo, tmp_path):
    p = run(["live", "--source", "7", "--style-model", "tiny_style"], zoo, check=False)
    assert p.returncode == 2 and "camera 7" in p.stderr
    p = run(["live", "--source", "sample", "--source-size", "48x64", "--style-model", "tiny_style",
             "--classify", "tiny_cls", "--frames", "10", "--json"], zoo)
    assert "no window" in p.stderr  # one clear line, then headless
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] == 10


def test_generate_grid_and_bad_seed(zoo, tmp_path):
    out = tmp_path / "grid.png"
    run(["generate", "--model", "tiny_gen", "-n", "4", "--seed", "3", "-o", str(out), "--scale", "1"], zoo)
    assert cv2.imread(str(out)).shape == (2 * 16 + 12, 2 * 16 + 12, 3)
    p = run(["generate", "--model", "tiny_gen", "--seed", "abc"], zoo, check=False)
    assert p.returncode == 2 and "not a whole number" in p.stderr


def test_latent_walk(zoo, tmp_path):
    out = tmp_path / "walk.avi"
    p = run(["live", "--source", "latent-walk", "--model", "tiny_gen", "--frames", "12", "--source-size", "64x64",
             "-o", str(out), "--json"], zoo)
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] == 12
    frames = []
    cap = cv2.VideoCapture(str(out))
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f.astype(float))
    assert len(frames) == 12 and frames[0].shape == (64, 64, 3)
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert max(steps) < 40 and np.mean(steps) > 0  # it moves, smoothly
    p = run(["live", "--source", "latent-walk", "--model", "tiny_gen", "--class", "x", "-o", "null"], zoo, check=False)
    assert p.returncode == 2 and "unknown class" in p.stderr


def test_runtime_never_imports_torch(no_torch, zoo, tmp_path):
    code = "import artcam.runtime.commands, artcam.runtime.cli, sys; assert 'torch' not in sys.modules; print('ok')"
    env = dict(os.environ, PYTHONPATH=str(no_torch))
    p = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert p.returncode != 0  # the block works
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "ok"
    out = tmp_path / "demo.avi"
    p = run(["demo", "--style-model", "tiny_style", "--classify", "tiny_cls", "--frames", "30",
             "--source-size", "48x64", "-o", str(out), "--json"], zoo, no_torch)
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] == 30 and out.is_file()
    p = run(["train", "classify"], zoo, no_torch, check=False)
    assert p.returncode == 2 and "needs" in p.stderr and "torch" in p.stderr


def test_public_api_names_without_torch(no_torch):
    """``from artcam.runtime import ...`` gives the same objects as their modules, loads none of them before
    use, and needs no torch."""
    code = (
        "import sys, artcam.runtime as rt\n"
        "assert 'artcam.runtime.tasks' not in sys.modules  # nothing loaded before use\n"
        "from artcam.runtime import load_model, Stylizer, Classifier, Generator, open_source, open_sink, Pipeline\n"
        "from artcam.runtime import tasks, loading, sources, sinks, pipeline\n"
        "assert (Stylizer, Classifier, Generator) == (tasks.Stylizer, tasks.Classifier, tasks.Generator)\n"
        "assert (load_model, open_source, open_sink, Pipeline) == "
        "(loading.load_model, sources.open_source, sinks.open_sink, pipeline.Pipeline)\n"
        "assert sorted(rt.__all__) == sorted(['load_model', 'Stylizer', 'Classifier', 'Generator', 'open_source', "
        "'open_sink', 'Pipeline'])\n"
        "try:\n    rt.no_such_name\nexcept AttributeError as e:\n    assert 'no_such_name' in str(e)\n"
        "else:\n    raise SystemExit('unknown name did not raise')\n"
        "assert 'torch' not in sys.modules\nprint('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(no_torch))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.stdout.strip() == "ok", p.stderr[-2000:]


@pytest.mark.slow
def test_demo_with_shipped_models(tmp_path, no_torch):
    """The README's main job: 300 frames at 640x480 with the shipped models, torch absent."""
    needed = ["stylizer_nano.onnx", "classifier_lite0.onnx"]
    if not all((SHIPPED_DIR / n).is_file() for n in needed):
        pytest.skip(f"shipped models {needed} not present in {SHIPPED_DIR}")
    out = tmp_path / "demo.mp4"
    p = run(["demo", "-o", str(out), "--json"], no_torch=no_torch, cwd=tmp_path)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert stats["frames"] == 300 and stats["latency_ms"]["e2e"]["p50"] > 0
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 300
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)


@pytest.mark.data
def test_real_video_and_paintings_with_shipped_models(shared_data, tmp_path):
    """The shipped stylizer on a real clip (every frame kept, size kept) and the classifier on real paintings."""
    if not (SHIPPED_DIR / "stylizer_nano.onnx").is_file() or not (SHIPPED_DIR / "classifier_lite0.onnx").is_file():
        pytest.skip(f"shipped models not present in {SHIPPED_DIR}")
    clip = shared_data / "video" / "fox.mp4"
    src = cv2.VideoCapture(str(clip))
    size = (int(src.get(cv2.CAP_PROP_FRAME_WIDTH)), int(src.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = tmp_path / "fox_styled.avi"
    p = run(["stylize", str(clip), "--style", "great_wave", "--size", "320", "--frames", "20", "-o", str(out), "--json"])
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] == 20
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == size
    p = run(["classify", str(shared_data / "art" / "baroque" / "*.jpg"), "--frames", "3", "--json", "--top-k", "1"])
    rows = [json.loads(line) for line in p.stdout.strip().splitlines()]
    assert len(rows) == 3
    for row in rows:
        heads = {h["head"]: h["top"] for h in row["heads"]}
        assert set(heads) == {"objects", "style"} and heads["style"][0]["label"] in (
            "art_nouveau_modern", "baroque", "expressionism", "impressionism", "post_impressionism", "romanticism",
            "symbolism")


def test_data_root_is_artcam_data_else_shared_data_beside_the_checkout(monkeypatch, tmp_path):
    from artcam.runtime.fileio import data_root

    monkeypatch.delenv("ARTCAM_DATA", raising=False)
    assert data_root("art") == Path(__file__).resolve().parents[2].parent / "shared" / "data" / "art"
    monkeypatch.setenv("ARTCAM_DATA", str(tmp_path))
    assert data_root() == tmp_path and data_root("photos", "a.jpg") == tmp_path / "photos" / "a.jpg"

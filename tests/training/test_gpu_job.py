"""The GPU stylizer job (tools/): the pack (small, whole or absent) and the job script, dry-run on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from artcam.runtime.modelfile import read_model_file
from artcam.training.common import TrainingError
from artcam.training.perceptual import VGG19_ENV, vgg19_weights_file
from artcam.training.recipe import load_recipe
from artcam.training.stylize import SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))  # scripts, not installed
import gpu_pack  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Photos (one large, one broken) and the shipped recipes' paintings under their names, all tiny."""
    root = tmp_path_factory.mktemp("gpu_pack_data")
    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    for i, (h, w) in enumerate([(600, 400), (90, 120), (120, 90), (100, 100)]):
        cv2.imwrite(str(root / "photos" / f"p{i}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    (root / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "styles").mkdir()
    for name in load_recipe("stylizer_nano", SCHEMA)["data"]["styles"]:
        cv2.imwrite(str(root / "styles" / f"{name}.jpg"), rng.integers(0, 255, (700, 500, 3), dtype=np.uint8))
    return root


def test_pack_holds_small_copies_and_is_published_whole(root, tmp_path):
    out = tmp_path / "pack"
    assert gpu_pack.main(["--out", str(out), "--data", str(root), "--short-side", "64"]) == 0
    doc = json.loads((out / "manifest.json").read_text())
    assert (doc["photos"], doc["photos_skipped"]) == (4, 1)
    shapes = [cv2.imread(str(p)).shape[:2] for p in sorted((out / "photos").glob("*.webp"))]
    assert sorted(min(s) for s in shapes) == [64, 64, 64, 64]  # each cut to the short side asked for
    longs = {max(cv2.imread(str(p)).shape[:2]) for p in (out / "styles").glob("*.jpg")}
    assert longs == {512} and len(list((out / "styles").glob("*.jpg"))) == 8
    assert (out / "vgg19.bin").read_bytes()[:64] == vgg19_weights_file().read_bytes()[:64]
    assert doc["bytes"] == sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "manifest.json")

    with pytest.raises(TrainingError, match="already exists"):
        gpu_pack.main(["--out", str(out), "--data", str(root)])
    with pytest.raises(TrainingError, match="over --budget-mb"):
        gpu_pack.main(["--out", str(tmp_path / "big"), "--data", str(root), "--budget-mb", "1"])
    assert sorted(os.listdir(tmp_path)) == ["pack"]  # the refused pack left nothing behind


def test_vgg19_weights_can_come_from_a_plain_file(monkeypatch, tmp_path):
    monkeypatch.setenv(VGG19_ENV, str(tmp_path / "missing.bin"))
    with pytest.raises(TrainingError, match=VGG19_ENV):
        vgg19_weights_file()
    (tmp_path / "vgg.bin").write_bytes(b"x")
    monkeypatch.setenv(VGG19_ENV, str(tmp_path / "vgg.bin"))
    assert vgg19_weights_file() == tmp_path / "vgg.bin"


@pytest.mark.slow
def test_the_job_trains_teacher_then_student_from_the_pack(root, tmp_path):
    """The script the GPU machine runs, on CPU with two steps per run: both models trained, exported, summarised."""
    pack = tmp_path / "pack"
    gpu_pack.main(["--out", str(pack), "--data", str(root), "--short-side", "64"])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "BATCH": "2", "OMP_NUM_THREADS": "1",
           "EXTRA": "train.steps=2 data.image_size=32 data.style_size=64 train.sample_every=0"}
    p = subprocess.run(["bash", str(REPO / "tools" / "gpu_stylizer.sh"), str(pack)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert (doc["teacher_rc"], doc["student_rc"]) == ("0", "0")
    assert doc["teacher"]["step"] == doc["student"]["step"] == 2
    _, meta = read_model_file(out / "student" / "stylizer_nano.onnx")
    assert meta.name == "stylizer_nano" and len(meta.styles) == 8

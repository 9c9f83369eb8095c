"""Guided upsampling: a half-size stylization brought back with the frame's full-resolution detail."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.export.parity import psnr
from artcam.runtime.errors import InputError
from artcam.runtime.guided import guided_upsample
from artcam.runtime.loading import load_model
from artcam.runtime.tasks import Stylizer


def _detailed_frame(h=240, w=320) -> np.ndarray:
    """Grey text, thin lines and a step edge: detail a half-size pass loses."""
    f = np.full((h, w, 3), 60, np.uint8)
    f[:, w // 2:] = 190
    for x in range(10, w, 7):
        cv2.line(f, (x, 0), (x, h // 3), (235, 235, 235), 1)
    cv2.putText(f, "artcam 1280x720", (8, h - 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return f


@pytest.fixture
def identity(tmp_path):
    """A real ONNX Runtime stylizer whose output is its input: what an upsampler adds or loses shows."""
    return load_model(tm.stylizer(tmp_path / "id.onnx", identity=True), device="cpu")


def test_guided_gives_back_full_resolution_detail(identity):
    frame = _detailed_frame()
    plain = Stylizer(identity, size=160).stylize(frame)
    guided = Stylizer(identity, size=160, upsample="guided").stylize(frame)
    assert guided.shape == plain.shape == frame.shape
    p_plain, p_guided = psnr(frame / 255.0, plain / 255.0, 1.0), psnr(frame / 255.0, guided / 255.0, 1.0)
    assert p_guided > p_plain + 6, (p_plain, p_guided)  # the lines and letters come back


def test_no_halo_at_a_step_edge():
    h, w = 64, 128
    frame = np.full((h, w, 3), 40, np.uint8)
    frame[:, w // 2 + 1:] = 220  # an edge that falls between two half-size pixels
    low_in = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    stylized = 255 - low_in  # a style that inverts: a gain of -1
    out = guided_upsample(stylized, low_in, frame)
    assert out.min() >= int(stylized.min()) - 2 and out.max() <= int(stylized.max()) + 2  # no over/undershoot
    assert abs(int(out[0, 0, 0]) - 215) <= 2 and abs(int(out[0, -1, 0]) - 35) <= 2
    row = out[h // 2, :, 0].astype(int)
    plain = cv2.resize(stylized, (w, h), interpolation=cv2.INTER_CUBIC)[h // 2, :, 0].astype(int)
    between = lambda r: int(((r > 50) & (r < 200)).sum())  # noqa: E731 - pixels inside the edge's ramp
    assert between(row) <= 1 < between(plain)  # as sharp as the full-resolution edge, unlike a plain resize


def test_flat_style_adds_no_photo_texture():
    """Where the style ignores the photo (here: one flat colour), nothing of the photo leaks in."""
    frame = _detailed_frame()
    low_in = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)
    flat = np.full_like(low_in, (30, 120, 200))
    out = guided_upsample(flat, low_in, frame)
    assert np.abs(out.astype(int) - np.array([30, 120, 200])).max() <= 1


def test_unknown_upsampling_is_refused(identity):
    with pytest.raises(InputError, match="unknown upsampling"):
        Stylizer(identity, size=160, upsample="lanczos")


def test_cli_upsample_option(tmp_path):
    import os
    import subprocess
    import sys

    from artcam.runtime.fileio import read_image, write_image

    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(src, _detailed_frame())
    model = tm.stylizer(tmp_path / "s.onnx")
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "stylize", str(src), "--style-model", str(model),
           "--size", "160", "--device", "cpu", "-o", str(out)]
    r = subprocess.run([*cmd, "--upsample", "guided"], capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 0, r.stderr
    assert read_image(out).shape == (240, 320, 3)
    bad = subprocess.run([*cmd, "--upsample", "sharp"], capture_output=True, text=True, timeout=120, env=os.environ)
    assert bad.returncode == 2 and "--upsample" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

"""--backend openvino: the same models, the same pictures as ONNX Runtime, through the runtime's one Runner
interface; real OpenVINO compiles (skipped with the reason where OpenVINO is not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.errors import ArtcamError
from artcam.runtime.loading import load_model
from artcam.runtime.sources import SampleSource
from artcam.runtime.tasks import Classifier, Stylizer
from artcam.runtime.zoo import SHIPPED_DIR

pytest.importorskip("openvino", reason="OpenVINO not installed (pip install openvino; make test installs it)")


def test_stylizer_matches_onnx_runtime_and_compiles_once_per_frame_size(tmp_path):
    path = tm.stylizer(tmp_path / "s.onnx")
    ov = load_model(path, task="stylize", backend="openvino", threads=1)
    ort = load_model(path, task="stylize", device="cpu")
    try:
        assert ov.runner.name == "openvino" and ov.runner.device == "cpu"
        assert [s.name for s in ov.runner.input_specs] == [s.name for s in ort.runner.input_specs]
        a, b = Stylizer(ov, style="cool"), Stylizer(ort, style="cool")
        rng = np.random.default_rng(0)
        for h, w in ((48, 64), (32, 40), (48, 64)):
            frame = rng.integers(0, 255, (h, w, 3), np.uint8)
            x, y = a.stylize(frame), b.stylize(frame)
            assert x.shape == frame.shape and np.abs(x.astype(int) - y.astype(int)).max() <= 1
        assert len(ov.runner._compiled) == 2  # two frame sizes, each compiled once
    finally:
        ov.close()
        ort.close()


def test_classifier_top_k_matches_onnx_runtime(tmp_path):
    path = tm.classifier(tmp_path / "c.onnx")
    frame = np.random.default_rng(1).integers(0, 255, (60, 80, 3), np.uint8)
    got = []
    for kw in ({"backend": "openvino"}, {"device": "cpu"}):
        lm = load_model(path, task="classify", **kw)
        try:
            got.append(Classifier(lm, top_k=2).classify(frame))
        finally:
            lm.close()
    for a, b in zip(*got):  # the same heads and ranking; probabilities to within float rounding
        assert (a.head, list(a.labels)) == (b.head, list(b.labels))
        assert np.allclose(a.probs, b.probs, atol=1e-3)


def test_a_corrupt_model_is_a_clear_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model at all")
    with pytest.raises(ArtcamError):
        load_model(bad, backend="openvino")


def test_live_cli_runs_on_openvino_and_says_so_in_its_summary(tmp_path):
    path = tm.stylizer(tmp_path / "s.onnx")
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size",
                        "64x96", "--style-model", str(path), "--backend", "openvino", "-o", "null", "--frames", "8",
                        "--json"], capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["frames"] == 8


def test_shipped_hd_stylizer_paints_the_same_picture_on_openvino():
    path = SHIPPED_DIR / "stylizer_hd.onnx"
    if not path.is_file():
        pytest.skip(f"stylizer_hd not present in {SHIPPED_DIR}")
    frame = SampleSource(size=(144, 256), live=False).frame_at(0).copy()
    pics = []
    for kw in ({"backend": "openvino"}, {"device": "cpu"}):
        lm = load_model(path, task="stylize", **kw)
        try:
            pics.append(Stylizer(lm, style="great_wave").stylize(frame))
        finally:
            lm.close()
    assert cv2.PSNR(pics[0], pics[1]) >= 40.0

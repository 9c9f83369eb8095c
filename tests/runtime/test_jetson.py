"""The Jetson path that can be checked off a Jetson: csi:// parsing, the GStreamer pipeline it builds, the
one-line refusal without GStreamer, and `artcam info` naming what is missing with the fix.
(What needs a board, the camera opening for real, is in docs/device.md as commands for its owner.)"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from artcam.runtime.errors import SourceError
from artcam.runtime.jetson import csi_pipeline, cv2_has_gstreamer, cv2_origin, parse_csi


def test_parse_csi():
    assert parse_csi("csi://0") == (0, 1280, 720, 30.0)
    assert parse_csi("csi://1?1920x1080@60") == (1, 1920, 1080, 60.0)
    assert parse_csi("csi://0?640x480") == (0, 640, 480, 30.0)
    assert parse_csi("csi://0", size=(480, 640), fps=15) == (0, 640, 480, 15.0)  # --source-size HxW, --source-fps
    assert parse_csi("csi://0?1280x720@21", size=(480, 640), fps=15) == (0, 1280, 720, 21.0)  # the spec wins
    for bad in ("csi://", "csi://a", "csi://0?1280", "csi://0?1280x720@", "csi://0?8x8@30", "csi://0?1280x720@0",
                "csi://0/x"):
        with pytest.raises(SourceError):
            parse_csi(bad)


def test_csi_pipeline_string():
    assert csi_pipeline(0, 1280, 720, 30.0) == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1,format=NV12 ! "
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1")
    assert "framerate=30000/1001," in csi_pipeline(1, 1920, 1080, 29.97)
    assert "sensor-id=1 " in csi_pipeline(1, 1920, 1080, 29.97)


def _artcam(*args):
    return subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_csi_without_gstreamer_is_one_line_naming_the_fix():
    p = _artcam("live", "--source", "csi://0", "-o", "null", "--frames", "1")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    if cv2_has_gstreamer():  # an OpenCV with GStreamer but no Jetson camera stack: cannot open, also one line
        assert "cannot open CSI camera 0" in p.stderr
    else:
        assert "needs OpenCV with GStreamer" in p.stderr and "pip uninstall -y opencv-python-headless" in p.stderr
        assert "nvidia-opencv" in p.stderr
    p = _artcam("live", "--source", "csi://zero", "-o", "null")
    assert p.returncode == 2 and "csi://N?WIDTHxHEIGHT@FPS" in p.stderr


def test_info_names_what_is_missing_and_the_fix():
    info = json.loads(_artcam("info", "--json").stdout)
    assert info["opencv_path"] == cv2.__file__
    checks = {c["name"]: c for c in info["checks"]}
    assert set(checks) == {"gstreamer", "cuda_ep", "tensorrt_ep", "tensorrt"}
    assert checks["gstreamer"]["ok"] == cv2_has_gstreamer() == info["gstreamer"]
    assert cv2_origin(cv2.__file__) in checks["gstreamer"]["detail"]
    for c in checks.values():
        assert bool(c["fix"]) != c["ok"]  # a fix exactly for what is missing
    text = _artcam("info").stdout
    for c in checks.values():
        assert (f"fix: {c['fix']}" in text) != c["ok"]


def test_cv2_origin_matches_the_installer():
    from importlib.metadata import packages_distributions

    owners = packages_distributions().get("cv2", [])
    origin = cv2_origin(cv2.__file__)
    assert origin == (f"pip: {owners[0]}" if owners else "system")

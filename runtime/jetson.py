"""The Jetson path: the CSI camera through GStreamer, and what a board is missing for it, with the fix.

A Jetson's CSI camera (``csi://N``) is read by NVIDIA's ``nvarguscamerasrc`` GStreamer element, so
it needs an OpenCV built with GStreamer: JetPack's, not pip's ``opencv-python-headless`` (which has
no GStreamer and, installed as a dependency, shadows JetPack's). ONNX Runtime with CUDA/TensorRT and
TensorRT itself come from NVIDIA's builds for JetPack, not from PyPI. :func:`board_checks` says which
of these the running Python has, and the command that fixes each one (``artcam info``);
docs/device.md has the install route that keeps the system OpenCV.
"""

from __future__ import annotations

import glob
import os
import platform
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from .errors import SourceError

CSI_DEFAULT = (1280, 720, 30.0)  # W, H, FPS: a mode every common Jetson CSI sensor (IMX219, IMX477) has
_CSI = re.compile(r"csi://(\d+)(?:\?(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?$")
DOCS = "docs/device.md"


def parse_csi(spec: str, size: tuple[int, int] | None = None, fps: float | None = None) -> tuple[int, int, int, float]:
    """``csi://N[?WxH[@FPS]]`` -> (sensor id, width, height, fps). ``size`` (H, W) and ``fps`` (from
    --source-size / --source-fps) apply when the spec has none."""
    m = _CSI.match(spec.strip())
    if not m:
        raise SourceError(f"cannot parse {spec!r}", "use csi://N or csi://N?WIDTHxHEIGHT@FPS, e.g. csi://0?1280x720@30")
    sensor = int(m.group(1))
    if m.group(2):
        w, h = int(m.group(2)), int(m.group(3))
    elif size:
        h, w = size
    else:
        w, h = CSI_DEFAULT[:2]
    rate = float(m.group(4)) if m.group(4) else (fps or CSI_DEFAULT[2])
    if not (16 <= w <= 8192 and 16 <= h <= 8192) or not 0 < rate <= 1000:
        raise SourceError(f"{spec}: {w}x{h}@{rate:g} is not a camera mode", "e.g. csi://0?1920x1080@30")
    return sensor, w, h, rate


def csi_pipeline(sensor: int, width: int, height: int, fps: float) -> str:
    """The GStreamer pipeline OpenCV opens for a CSI camera: Argus capture into NVMM memory, the
    hardware converter to BGRx, ``videoconvert`` to the BGR OpenCV wants, and an appsink that keeps
    only the newest frame (``drop=1 max-buffers=1``: a live camera, never a growing queue)."""
    r = round(fps)
    if abs(fps - r) < 1e-6:
        rate = Fraction(r)
    elif abs(fps - r * 1000 / 1001) < 0.01:  # the NTSC rates: 29.97 is 30000/1001
        rate = Fraction(r * 1000, 1001)
    else:
        rate = Fraction(fps).limit_denominator(1000)
    return (f"nvarguscamerasrc sensor-id={sensor} ! "
            f"video/x-raw(memory:NVMM),width={width},height={height},framerate={rate.numerator}/{rate.denominator},"
            "format=NV12 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=1 max-buffers=1")


def cv2_has_gstreamer(cv2=None) -> bool:
    if cv2 is None:
        import cv2
    return "GStreamer: YES" in " ".join(cv2.getBuildInformation().split())


def csi_target(spec: str, size: tuple[int, int] | None = None, fps: float | None = None) -> tuple[str, str]:
    """``csi://N[?WxH@FPS]`` -> (the GStreamer pipeline OpenCV opens, a description); a
    :class:`SourceError` naming the fix when this OpenCV has no GStreamer (``sources.open_source``)."""
    import cv2

    sensor, w, h, rate = parse_csi(spec, size, fps)
    if not cv2_has_gstreamer(cv2):
        raise SourceError(f"{spec} needs OpenCV with GStreamer; the one imported ({cv2.__file__}) has none",
                          f"on a Jetson: pip uninstall -y opencv-python-headless opencv-python, then use JetPack's "
                          f"OpenCV (sudo apt install nvidia-opencv, a venv with --system-site-packages; {DOCS})")
    return csi_pipeline(sensor, w, h, rate), f"CSI camera {sensor} ({w}x{h}@{rate:g})"


# --- what the board has ---------------------------------------------------------------------------


def jetson_model() -> str | None:
    """'NVIDIA Jetson Orin Nano ...' (the device tree), 'Jetson (L4T R36.3)' or None off a Jetson."""
    try:
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode(errors="replace")
        if "jetson" in model.lower() or "tegra" in model.lower():
            return model
    except OSError:
        pass
    try:
        m = re.search(r"R(\d+).*REVISION: ([\d.]+)", Path("/etc/nv_tegra_release").read_text())
        return f"Jetson (L4T R{m.group(1)}.{m.group(2)})" if m else "Jetson"
    except OSError:
        return None


def cv2_origin(cv2_file: str) -> str:
    """Which installed distribution the imported cv2 belongs to: 'pip: opencv-python-headless', or
    'system' for one installed outside pip (JetPack's, Debian's python3-opencv)."""
    from importlib.metadata import PackageNotFoundError, distribution

    real = os.path.realpath(cv2_file)
    for name in ("opencv-python-headless", "opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"):
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for f in dist.files or ():
            if str(f).replace("\\", "/").startswith("cv2/") and os.path.realpath(dist.locate_file(f)) == real:
                return f"pip: {name}"
    return "system"


def system_cv2() -> list[str]:
    """OpenCV installed for the system Python (JetPack, apt), whether or not this Python sees it."""
    return sorted(glob.glob("/usr/lib/python3*/dist-packages/cv2*") + glob.glob("/usr/local/lib/python3*/dist-packages/cv2*"))


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def board_checks() -> list[Check]:
    """GStreamer in OpenCV, the CUDA and TensorRT execution providers, TensorRT: each with its fix."""
    import cv2
    import onnxruntime as ort

    jetson = jetson_model()
    origin = cv2_origin(cv2.__file__)
    gst = cv2_has_gstreamer(cv2)
    providers = ort.get_available_providers()
    checks = []
    system = ("JetPack's OpenCV (sudo apt install nvidia-opencv" if jetson else
              "the distribution's OpenCV, built with GStreamer (sudo apt install python3-opencv")
    fix = (f"pip uninstall -y {origin[5:]} and use {system}; a venv with --system-site-packages; {DOCS})"
           if origin.startswith("pip") else f"install {system})")
    shadow = f"; the system's {system_cv2()[0]} is shadowed" if origin.startswith("pip") and system_cv2() else ""
    checks.append(Check("gstreamer", gst, f"cv2 {cv2.__version__} ({origin}, {cv2.__file__}){shadow}",
                        "" if gst else fix))
    jp_ort = ("install NVIDIA's onnxruntime-gpu wheel for your JetPack (Jetson AI Lab's pip index or the Jetson Zoo; "
              f"{DOCS}) after pip uninstall -y onnxruntime")
    checks.append(Check("cuda_ep", "CUDAExecutionProvider" in providers, ", ".join(providers),
                        "" if "CUDAExecutionProvider" in providers else
                        jp_ort if jetson else "pip uninstall -y onnxruntime && pip install onnxruntime-gpu (needs CUDA 12)"))
    checks.append(Check("tensorrt_ep", "TensorrtExecutionProvider" in providers, ", ".join(providers),
                        "" if "TensorrtExecutionProvider" in providers else
                        jp_ort if jetson else "pip install 'artcam[gpu]' (onnxruntime-gpu with TensorRT 10 libraries)"))
    try:
        import tensorrt

        trt = f"tensorrt {tensorrt.__version__}"
    except ImportError:
        trt = ""
    checks.append(Check("tensorrt", bool(trt), trt or "python module tensorrt not importable",
                        "" if trt else "JetPack ships it: sudo apt install python3-libnvinfer, and a venv with "
                        "--system-site-packages" if jetson else "pip install 'artcam[gpu]'"))
    return checks


def board_info() -> dict:
    """What ``artcam info`` adds: the board, which cv2 is imported, and each check with its fix."""
    checks = board_checks()
    return {"board": jetson_model() or platform.machine(), "checks": [asdict(c) for c in checks]}

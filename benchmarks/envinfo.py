"""The machine a number was measured on, recorded beside every benchmark result.

Nothing here imports torch or TensorRT: versions come from package metadata, GPUs from nvidia-smi.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# Distribution names whose versions matter for a latency number.
LIBRARIES = (
    "artcam", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "opencv-python-headless", "opencv-python",
    "torch", "onnx2torch", "tensorrt", "matplotlib",
)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS",
              "OPENBLAS_CORETYPE", "CUDA_VISIBLE_DEVICES")


def library_versions(names=LIBRARIES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_info() -> dict:
    """Model name, logical CPUs, CPUs this process may use, physical cores when /proc says."""
    model = ""
    cores: set[tuple[str, str]] = set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    phys = core = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name" and not model:
            model = val
        elif key == "physical id":
            phys = val
        elif key == "core id":
            core = val
            cores.add((phys, core))
    if not model:
        model = platform.processor() or platform.machine()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    info = {"model": model, "logical_cpus": os.cpu_count() or 0, "usable_cpus": usable,
            "physical_cores": len(cores) or None, "arch": platform.machine()}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine inflates latency
    except (AttributeError, OSError):
        pass
    return info


def gpu_info(timeout: float = 5.0) -> list[dict]:
    """One entry per NVIDIA GPU from nvidia-smi; empty when there is none or no driver."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        r = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if r.returncode != 0:
        return []
    gpus = []
    for line in r.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            g = {"name": parts[0], "driver": parts[1]}
            if len(parts) > 2:
                g["memory_mib"] = parts[2]
            if len(parts) > 3:
                g["max_sm_clock_mhz"] = parts[3]
            gpus.append(g)
    return gpus


def ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def thread_settings(threads: int = 0) -> dict:
    d = {k: os.environ[k] for k in THREAD_ENV if k in os.environ}
    d["requested_threads"] = threads or "default (all cores)"
    try:
        import cv2

        d["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        pass
    torch = sys.modules.get("torch")  # report torch's setting only if something already imported it
    if torch is not None:
        d["torch_threads"] = torch.get_num_threads()
    return d


def environment(threads: int = 0) -> dict:
    """Everything recorded once per benchmark run."""
    return {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "libraries": library_versions(),
        "ort_providers": ort_providers(),
        "threads": thread_settings(threads),
    }


def model_hash(path: str | os.PathLike, meta=None) -> str:
    """The artcam content hash when the file carries metadata, else sha256 of the file."""
    if meta is not None and getattr(meta, "content_hash", ""):
        return meta.content_hash
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256-file:" + h.hexdigest()


def one_line(env: dict) -> str:
    """A short description for report headers."""
    cpu = env.get("cpu", {})
    s = f"{cpu.get('model', '?')} ({cpu.get('usable_cpus', '?')} usable CPUs)"
    if env.get("gpus"):
        g = env["gpus"][0]
        s += f", {g['name']} (driver {g['driver']})"
    libs = env.get("libraries", {})
    ort = libs.get("onnxruntime-gpu") or libs.get("onnxruntime")
    if ort:
        s += f", onnxruntime {ort}"
    if "torch" in libs:
        s += f", torch {libs['torch']}"
    return s

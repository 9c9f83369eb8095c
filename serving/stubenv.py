"""The environment of the Python backend stub that pytriton's bundled ``tritonserver`` starts.

Two traps, both met in practice:

* **libpython.** The stub (``triton_python_backend_stub``) links ``libpython3.X.so``; the dynamic
  loader may pick the system's copy (``/lib/x86_64-linux-gnu``) while ``sys.path`` points at the
  interpreter's own standard library, and the model fails to load with e.g. ``'_thread.RLock' object
  has no attribute '_recursion_count'``. Fix: put ``sysconfig.get_config_var("LIBDIR")`` first on
  ``LD_LIBRARY_PATH`` of the server process (:func:`server_env`).
* **numpy 2.** The stub is built against the numpy 1.x C API (pytriton 0.7.0 pins ``numpy<2``); under
  numpy 2 every input tensor reaches the model as zeros with the wrong size, without an error. artcam
  itself needs numpy 2 (OpenCV 5), so the stub gets a small environment of its own (:func:`stub_env`):
  a venv holding only ``numpy<2``, whose ``.pth`` file adds this environment's site-packages (pytriton,
  pyzmq) behind it. The server process and artcam keep numpy 2; tensors cross between them through
  shared memory with a plain header, so the two numpy versions never meet.

``python -m artcam.serving.stubenv`` builds the stub environment ahead of time (CI does, so tests
never reach a package index) and prints its path.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from artcam.runtime.errors import ArtcamError

STUB_NUMPY = "numpy>=1.24,<2"


def _log(msg: str) -> None:
    print(f"artcam serve: {msg}", file=sys.stderr, flush=True)


def numpy_major() -> int:
    import numpy

    return int(numpy.__version__.split(".")[0])


def stub_env_dir() -> Path:
    """``$ARTCAM_SERVE_STUB_ENV``, else a folder under ``~/.cache/artcam`` keyed by this environment."""
    env = os.environ.get("ARTCAM_SERVE_STUB_ENV")
    if env:
        return Path(env)
    key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:10]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "artcam" / f"triton-stub-py{sys.version_info.major}{sys.version_info.minor}-{key}"


def _site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def stub_env(log=_log) -> Path:
    """The prefix of a Python environment the stub can run in: this one under numpy 1.x, else the
    numpy<2 stub environment (built on first use: a venv and one pip install, a few seconds)."""
    if numpy_major() < 2:
        return Path(sys.exec_prefix)
    root = stub_env_dir()
    site = _site_packages(root)
    marker = root / ".artcam-stub-ready"
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    pth = "\n".join(ours) + "\n"
    if marker.is_file() and (site / "artcam_parent_env.pth").is_file() \
            and (site / "artcam_parent_env.pth").read_text() == pth:
        return root
    log(f"numpy {__import__('numpy').__version__} here; building the Python backend stub's numpy<2 "
        f"environment in {root} (once)")
    venv.EnvBuilder(with_pip=False, clear=True, symlinks=True).create(root)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(site), STUB_NUMPY]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        tail = " ".join((p.stderr or p.stdout).split())[-300:]
        raise ArtcamError(f"could not build the stub environment in {root}: {tail}",
                          f"install {STUB_NUMPY!r} there by hand, or point ARTCAM_SERVE_STUB_ENV at a venv "
                          f"that has it")
    (site / "artcam_parent_env.pth").write_text(pth)  # pytriton, pyzmq, ... from this environment
    marker.write_text(STUB_NUMPY + "\n")
    return root


def server_env_patch(log=_log) -> dict[str, str]:
    """Environment variables for the ``tritonserver`` process: LIBDIR first on LD_LIBRARY_PATH."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    cur = os.environ.get("LD_LIBRARY_PATH", "")
    parts = [p for p in cur.split(":") if p]
    if not libdir or (parts and parts[0] == libdir):
        return {}
    log(f"LD_LIBRARY_PATH for the server starts with this Python's LIBDIR {libdir} "
        "(else the Python backend stub may load another libpython)")
    return {"LD_LIBRARY_PATH": ":".join([libdir] + [p for p in parts if p != libdir])}


def apply(log=_log) -> Path:
    """Prepare this process to start pytriton: LD_LIBRARY_PATH and the stub environment.

    pytriton starts ``tritonserver`` with a copy of ``os.environ`` and runs the stub in
    ``get_triton_python_backend_python_env()`` (its ``bin`` goes first on PATH), so both are set here.
    """
    os.environ.update(server_env_patch(log))
    root = stub_env(log)
    import pytriton.server.triton_server as ts

    ts.get_triton_python_backend_python_env = lambda: root
    return root


if __name__ == "__main__":
    print(stub_env())

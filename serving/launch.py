"""``artcam serve`` as a child process on free loopback ports: for tests and the load benchmark.

``with ServerProcess(["stylizer_nano"], "--max-queue-size", "8") as srv: srv.grpc_url`` starts the
real CLI, waits until every model is ready (bounded), and stops it on exit (SIGTERM, then SIGKILL).
The server also gets ``--duration-s``, so it stops by itself even if this process dies.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _mapped_shm() -> set[str]:
    """Files under /dev/shm that some process maps (from /proc/*/maps)."""
    out: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            for line in maps.read_text(errors="replace").splitlines():
                i = line.find("/dev/shm/")
                if i >= 0:
                    out.add(line[i:].split(" (deleted)")[0].strip())
        except OSError:
            continue
    return out


class ServerProcess:
    def __init__(self, models: list[str], *extra: str, start_timeout_s: float = 180.0, duration_s: float = 900.0,
                 env: dict | None = None, nice: int = 0):
        self.models, self.extra = list(models), list(extra)
        self.start_timeout_s, self.duration_s = start_timeout_s, duration_s
        self.env = dict(os.environ if env is None else env)
        self.nice = nice
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.tmp: Path | None = None
        self._psm_before: set[str] = set()
        self._t_start = 0.0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.is_file() else ""

    def _ready(self, name: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/models/{name}/ready", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def start(self) -> "ServerProcess":
        self.tmp = Path(tempfile.mkdtemp(prefix="artcam-serve-child-"))
        self.env["TMPDIR"] = str(self.tmp)  # the server's workspace and log: gone with close(), even after kill()
        self.log_path = self.tmp / "serve.log"
        self._t_start = time.time()
        self._psm_before = {f.name for f in Path("/dev/shm").glob("psm_*")} if Path("/dev/shm").is_dir() else set()
        cmd = [sys.executable, "-m", "artcam.runtime.cli", "serve", *self.models,
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port), "--duration-s", str(self.duration_s), *self.extra]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        names = ["artcam_meta"]  # bound last: ready means all are
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artcam serve exited {self.proc.returncode} before it was ready:\n{self.log()[-3000:]}")
            if all(self._ready(n) for n in names):
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"artcam serve was not ready within {self.start_timeout_s:.0f} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """Gone at once, like a crashed or unplugged server (its whole process group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            time.sleep(0.5)  # the group's last processes
            self._cleanup_after_kill()

    def _cleanup_after_kill(self) -> None:
        """What a killed server leaves: its temp folder (workspace, log, via TMPDIR) and its shared
        memory: Triton's ``pytrtion<pid>-*`` regions and the ``psm_*`` segments that appeared while it
        ran and that no live process maps any more."""
        shm = Path("/dev/shm")
        if not shm.is_dir() or self.proc is None:
            return
        for f in shm.glob(f"pytrtion{self.proc.pid}-*"):
            f.unlink(missing_ok=True)
        # the Python backend copies each model into /tmp/folderXXXXXX (hard-coded /tmp, not TMPDIR)
        names = {f'name: "{Path(m).stem if m.endswith(".onnx") else m}"' for m in [*self.models, "artcam_meta"]}
        for d in Path("/tmp").glob("folder??????"):
            try:
                cfg = d / "config.pbtxt"
                if d.stat().st_mtime >= self._t_start and cfg.is_file() and (d / "1" / "model.py").is_file() \
                        and cfg.read_text(errors="replace").split("\n", 1)[0] in names:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue
        new = [f for f in shm.glob("psm_*") if f.name not in self._psm_before]
        if new:
            mapped = _mapped_shm()
            for f in new:
                if str(f) not in mapped:
                    f.unlink(missing_ok=True)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # the server's own children (tritonserver, stubs) go with its process group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def load_repository_with_bundled_server(repo: str | os.PathLike, timeout_s: float = 90.0) -> tuple[bool, str]:
    """Try to load a Triton model repository (``artcam export --format triton``) in pytriton's bundled
    ``tritonserver``: (loaded, the server's error lines). The bundle ships only the Python backend, so
    an ``onnxruntime_onnx`` or ``tensorrt_plan`` model fails with "unable to find backend library"."""
    import sysconfig

    from pytriton.utils.distribution import get_libs_path, get_root_module_path

    root = get_root_module_path() / "tritonserver"
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (sysconfig.get_config_var("LIBDIR"), str(get_libs_path()),
                                                   env.get("LD_LIBRARY_PATH", "")) if p)
    http, grpc, metrics = free_ports(3)
    cmd = [str(root / "bin" / "tritonserver"), "--model-repository", str(repo),
           "--backend-directory", str(root / "backends"), "--http-address", "127.0.0.1", "--http-port", str(http),
           "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc), "--metrics-port", str(metrics),
           "--exit-on-error", "true", "--exit-timeout-secs", "2"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         start_new_session=True)
    deadline = time.monotonic() + timeout_s
    loaded = False
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2) as r:
                loaded = r.status == 200
        except Exception:
            pass
        if loaded:
            break
        time.sleep(0.5)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    errors = [ln for ln in out.splitlines() if "failed to load" in ln or ln.startswith("error:")]
    return loaded, "\n".join(errors)

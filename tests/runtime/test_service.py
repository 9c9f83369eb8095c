"""`artcam service`: the unit systemd verifies, the root-only token, and the watchdog protocol end to end.

The end-to-end test runs the unit's own ExecStart command as a process with the environment systemd
would give it (NOTIFY_SOCKET on a real AF_UNIX datagram socket this test listens on, WATCHDOG_USEC, the
token as a credential) and a real MJPEG-over-HTTP camera that the test can freeze: READY comes at the
first frame, WATCHDOG pings follow, and they stop once the camera stops sending.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tiny_models as tm
from loopback_camera import LoopbackCamera
from viewer_harness import wait_for

from artcam.runtime import sdnotify
from artcam.runtime.service import exec_start, quote_arg

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def artcam(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *args], capture_output=True, text=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr}")
    return p


def verify(unit_text: str, folder) -> None:
    if SYSTEMD_ANALYZE is None:
        if os.environ.get("CI"):  # .ci/run installs systemd: a skip there would hide a broken install
            pytest.fail("systemd-analyze is missing in CI")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    path = folder / "artcam.service"
    path.write_text(unit_text)
    p = subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)
    # verify exits 0 even for unknown keys or bad values: any message about our file is a failure
    problems = [ln for ln in (p.stderr + p.stdout).splitlines() if "artcam.service" in ln]
    assert p.returncode == 0 and not problems, p.stderr + p.stdout


@pytest.mark.parametrize("args", [
    ["--source", "0", "--viewer", "http://0.0.0.0:8080", "--style", "mosaic", "--", "--classify"],
    ["--source", "/dev/video2", "--viewer", "http://127.0.0.1:8090"],
    ["--source", "csi://0?1280x720@30", "--viewer", "http://[::]:80", "--user", "root"],
    ["--source", "rtsp://cam.local/live?x=1%20&y=$HOME", "--viewer", "http://127.0.0.1:8080"],
])
def test_generated_unit_passes_systemd_analyze_verify(tmp_path, args):
    unit = artcam("service", "install", "--print", *args).stdout
    verify(unit, tmp_path)
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "Restart=on-failure" in unit
    assert "ProtectSystem=strict" in unit and "DevicePolicy=closed" in unit
    assert ("User=root" in unit) == ("--user" in args) and ("DynamicUser=yes" in unit) != ("--user" in args)
    cmd = exec_start(unit)
    assert cmd[cmd.index("--source") + 1] == args[1]  # %, $ and ? survive systemd's escaping
    assert "--token" not in cmd and "--token-file" not in cmd
    if args[1] == "0":
        assert "DeviceAllow=/dev/video0 rw" in unit and "LoadCredential=token:/etc/artcam/token" in unit
        assert cmd[-1] == "--classify"
    if "127.0.0.1" in args[3]:
        assert "LoadCredential" not in unit  # a loopback viewer needs no token
    if args[3].endswith(":80"):
        assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit


def test_quoting_round_trips():
    for arg in ("plain", "with space", 'a"quote', "back\\slash", "50%", "$HOME", "semi;colon"):
        assert exec_start("ExecStart=" + quote_arg(arg)) == [arg]


def test_install_writes_the_unit_and_a_root_only_token(tmp_path):
    units, token = tmp_path / "units", tmp_path / "etc" / "token"
    units.mkdir()
    p = artcam("service", "install", "--unit-dir", str(units), "--token-file", str(token), "--no-start",
               "--source", "0", "--viewer", "http://0.0.0.0:8080")
    unit = (units / "artcam.service").read_text()
    secret = token.read_text().strip()
    assert len(secret) >= 20 and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert secret not in unit and secret not in p.stderr and f"LoadCredential=token:{token}" in unit
    before = token.read_text()
    artcam("service", "install", "--unit-dir", str(units), "--token-file", str(token), "--no-start")
    assert token.read_text() == before  # an existing token is kept
    bad = artcam("service", "install", "--viewer", "ftp://x", "--print", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    for passed in (["--token", "x"], ["--reconnect", "stall=2"]):  # options of install, not of the pass-through
        bad = artcam("service", "install", "--print", "--", *passed, check=False)
        assert bad.returncode == 2 and "cannot be passed" in bad.stderr
    artcam("service", "uninstall", "--unit-dir", str(units), "--no-stop")
    assert not (units / "artcam.service").exists() and token.exists()


def test_notifier_speaks_to_a_path_socket(tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "notify"))
    server.settimeout(5)
    try:
        n = sdnotify.Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"})
        assert n.watchdog_s == 0.1
        assert n.send("READY=1") and server.recv(256) == b"READY=1"
        assert n.watchdog() and not n.watchdog()  # at most one ping per half interval
        assert server.recv(256) == b"WATCHDOG=1"
        assert sdnotify.Notifier.from_env({}) is None
        assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None
    finally:
        server.close()
    assert not sdnotify.Notifier(str(tmp_path / "gone")).send("READY=1")  # never raises


class NotifyListener:
    """systemd's side of sd_notify: an abstract AF_UNIX datagram socket, every message timestamped."""

    def __init__(self):
        self.name = f"@artcam-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(sdnotify.socket_address(self.name))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue
            except OSError:
                return

    def times(self, message: str) -> list[float]:
        return [t for t, m in list(self.messages) if m == message]

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.slow
def test_exec_start_notifies_ready_then_watchdog_and_goes_quiet_when_the_camera_stalls(tmp_path):
    style = tm.stylizer(tmp_path / "tiny_style.onnx")
    camera, listener = LoopbackCamera(), NotifyListener()
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "token").write_text("service-secret\n")
    unit = artcam("service", "install", "--print", "--source", camera.url, "--viewer", "http://127.0.0.1:0",
                  "--style-model", str(style), "--reconnect", "stall=1", "--token-file", "/etc/artcam/token",
                  "--user", "root",  # pytest's tmp folder is private: a dynamic user could not read the model
                  "--", "--device", "cpu", "--threads", "1", "--source-size", "48x64").stdout
    cmd = exec_start(unit)
    assert cmd[0] == sys.executable and "service-secret" not in unit
    assert cmd[cmd.index("--reconnect") + 1] == "stall=1,attempts=5,backoff=0.5,max-backoff=8"
    env = {**os.environ, "NOTIFY_SOCKET": listener.name, "WATCHDOG_USEC": "1000000",  # ping every 0.5 s
           "CREDENTIALS_DIRECTORY": str(creds), "OMP_NUM_THREADS": "1"}
    env.pop("ARTCAM_TOKEN", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        ready = wait_for(lambda: listener.times("READY=1"), 90, "READY=1")[0]
        wait_for(lambda: len([t for t in listener.times("WATCHDOG=1") if t > ready]) >= 3, 20, "3 watchdog pings")
        m = wait_for(lambda: next((re.search(r"web viewer (http://127\.0\.0\.1:\d+/) \(token required\)", ln)
                                   for ln in lines if "web viewer" in ln), None), 10, "the viewer's address")
        url = m.group(1)
        assert urllib.request.urlopen(url + "healthz", timeout=5).read() == b"ok"
        with pytest.raises(urllib.error.HTTPError) as e:  # the credential became the viewer's token
            urllib.request.urlopen(url + "api/state", timeout=5)
        assert e.value.code == 401
        req = urllib.request.Request(url + "api/state", headers={"Authorization": "Bearer service-secret"})
        assert urllib.request.urlopen(req, timeout=5).status == 200

        camera.flowing.clear()  # the camera freezes: the connection stays open, no frame comes
        frozen = time.monotonic()
        wait_for(lambda: any("stalled" in m for _, m in listener.messages), 10, "STATUS=... stalled")
        quiet_from = time.monotonic()
        time.sleep(3.0)  # six ping intervals
        late = [t for t in listener.times("WATCHDOG=1") if t > quiet_from]
        assert not late, f"{len(late)} pings after the stall"
        assert quiet_from - frozen < 4.0  # stall=1 + the last frames in flight + one check
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "healthz", timeout=5)
        assert e.value.code == 503 and e.value.read() == b"stalled"
        assert proc.poll() is None  # the process itself lives on: systemd's watchdog is what restarts it
    finally:
        camera.close()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        listener.close()
    assert rc == 143, "".join(lines)
    assert listener.times("STOPPING=1")


def test_status_reads_the_units_viewer_and_asks_healthz(tmp_path):
    """`artcam service status` finds the viewer address in the unit and reports its /healthz (systemd's own
    view is whatever `systemctl` says here; without a running systemd the exit is 1)."""
    from artcam.runtime.viewer import ViewerSink

    sink = ViewerSink("127.0.0.1", 0)
    try:
        artcam("service", "install", "--unit-dir", str(tmp_path), "--no-start", "--source", "sample",
               "--viewer", f"http://127.0.0.1:{sink.port}")
        p = artcam("service", "status", "--unit-dir", str(tmp_path), check=False)
        assert "health: starting" in p.stdout and p.returncode == 1
        sink.write(np.zeros((8, 8, 3), np.uint8), {})
        p = artcam("service", "status", "--unit-dir", str(tmp_path), check=False)
        assert "health: ok" in p.stdout and p.stdout.startswith("artcam: ")
    finally:
        sink.close()
    p = artcam("service", "status", "--unit-dir", str(tmp_path / "none"), check=False)
    assert p.returncode == 2 and "no unit" in p.stderr


def test_a_dynamic_user_cannot_reach_a_private_folder(tmp_path):
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    model = private / "style.onnx"
    model.write_bytes(b"x")
    p = artcam("service", "install", "--print", "--style", str(model), check=False)
    assert p.returncode == 2 and "cannot enter" in p.stderr and "--user" in p.stderr
    unit = artcam("service", "install", "--print", "--style", str(model), "--user", "root").stdout
    assert "User=root" in unit and exec_start(unit)[exec_start(unit).index("--style") + 1] == str(model)

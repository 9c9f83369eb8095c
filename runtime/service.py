"""``artcam service``: run ``artcam live`` at boot under systemd, restarted when it fails or stalls.

The unit it writes (``unit_text``) is hardened and needs nothing but systemd:

* ``Type=notify`` + ``WatchdogSec=``: the runtime says ``READY=1`` at its first frame and feeds the
  watchdog while frames flow or a lost camera is being reopened (``health.py``, ``sdnotify.py``); a
  stalled stream or a hung model stops the pings, so systemd kills the process, and a source given up
  under the reconnect policy (``--reconnect``, ``reconnect.py``) exits 2; either way ``Restart=on-failure``
  starts it again, with a backoff (``RestartSec=``; growing steps where systemd has ``RestartSteps=``,
  version 254 and later);
* the viewer token never appears on a command line or in the unit: it lives in a root-only file
  (``/etc/artcam/token``, mode 0600) that systemd hands the service as a credential
  (``LoadCredential=``), read by ``access.token_from``;
* a dynamic user (or a dedicated one, ``--user``) in the ``video`` group, ``ProtectSystem=strict``,
  no capabilities, and ``DevicePolicy=closed`` with the camera (and the GPU nodes present when
  installed) as the only devices it may open; logs go to the journal (``journalctl -u artcam``).
"""

from __future__ import annotations

import argparse
import glob
import grp
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .access import CREDENTIAL_NAME, is_loopback
from .cli import ArgParser
from .errors import InputError
from .fileio import atomic_path
from .reconnect import DEFAULT_POLICY, parse_policy

UNIT_DIR = "/etc/systemd/system"
TOKEN_FILE = "/etc/artcam/token"
WATCHDOG_MIN_S = 20  # systemd's kill delay after the last ping; the stall itself is --reconnect stall=S
START_TIMEOUT_S = 300  # model loading, a TensorRT engine build on a small board: minutes, not seconds
GPU_NODES = ("/dev/nvidia*", "/dev/nvhost-*", "/dev/nvmap", "/dev/nvgpu/igpu0/*", "/dev/dri/renderD*")


def systemd_version() -> int | None:
    try:
        out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"systemd (\d+)", out)
    return int(m.group(1)) if m else None


def quote_arg(arg: str) -> str:
    """One argument as an ``ExecStart=`` line takes it: ``%`` and ``$`` escaped (systemd expands
    them), quoted when it has blanks, quotes or backslashes."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def camera_devices(source: str) -> list[str]:
    """The device nodes a source needs: ``0`` -> /dev/video0, ``/dev/videoN`` itself, else none."""
    if source.isdigit():
        return [f"/dev/video{int(source)}"]
    if source.startswith("/dev/video"):
        return [source]
    return []


def gpu_devices() -> list[str]:
    """NVIDIA (desktop and Jetson) and DRI render nodes present now: CUDA, TensorRT and the Jetson
    camera stack open them; without them ONNX Runtime would quietly fall back to the CPU."""
    return sorted({p for pattern in GPU_NODES for p in glob.glob(pattern) if not os.path.isdir(p)})


def existing_groups(names=("video", "render")) -> list[str]:
    out = []
    for name in names:
        try:
            grp.getgrnam(name)
            out.append(name)
        except KeyError:
            pass
    return out


def unreadable_by_others(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that a user other than its owner cannot enter (a home
    folder with mode 0750 or 0700, say): a dynamic user could not run a Python installed there."""
    for parent in [*reversed(path.parents), path]:
        try:
            mode = parent.stat().st_mode
        except OSError:
            return parent
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return parent
    return None


def live_argv(a: argparse.Namespace) -> list[str]:
    """The ``artcam live`` command the service runs (no token: it comes as a credential)."""
    argv = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", a.source, "-o", a.viewer,
            "--reconnect", a.reconnect.as_option()]
    if a.style is not None:
        argv += ["--style", a.style]
    if a.style_model is not None:
        argv += ["--style-model", a.style_model]
    return argv + list(a.live_args)


def unit_text(a: argparse.Namespace, *, version: int | None, devices: list[str], groups: list[str],
              token_file: str | None) -> str:
    """The unit file for these arguments (see the module docstring for what each part is for)."""
    cmd = " ".join(quote_arg(x) for x in live_argv(a))
    watchdog = max(WATCHDOG_MIN_S, int(3 * a.reconnect.stall_s + 0.999))
    port = int(a.viewer.rsplit(":", 1)[1].strip("/"))
    csi = a.source.startswith("csi://")
    lines = [
        f"# written by `artcam service install`; change it by running that again ({a.name}.service)",
        "[Unit]",
        f"Description=artcam live: {a.source.replace('%', '%%')} -> web viewer {a.viewer}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={cmd}",
        "Restart=on-failure",
        "RestartSec=2s",
        *(["RestartSteps=6", "RestartMaxDelaySec=2min"] if version and version >= 254 else []),
        f"WatchdogSec={watchdog}s",
        f"TimeoutStartSec={START_TIMEOUT_S}s",
        "TimeoutStopSec=20s",
        "SuccessExitStatus=130 143",
        "Environment=PYTHONUNBUFFERED=1",
        f"Environment=HOME=/var/lib/{a.name}",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={a.name}",
    ]
    if token_file:
        lines.append(f"LoadCredential={CREDENTIAL_NAME}:{token_file}")
    lines += ([f"User={a.user}"] if a.user else ["DynamicUser=yes"])
    if groups:
        lines.append(f"SupplementaryGroups={' '.join(groups)}")
    lines += [
        f"StateDirectory={a.name}",
        "WorkingDirectory=%S/" + a.name,
        "UMask=0077",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        # the Jetson camera daemon (nvargus-daemon) talks through a socket in the real /tmp
        *([] if csi else ["PrivateTmp=yes"]),
        "NoNewPrivileges=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ]
    if port < 1024:
        lines += ["AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE"]
    else:
        lines.append("CapabilityBoundingSet=")
    lines.append("DevicePolicy=closed")
    lines += [f"DeviceAllow={d} rw" for d in devices]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _viewer_address(spec: str) -> str:
    from .viewer import parse_http_spec

    if not spec.startswith("http://"):
        raise InputError(f"--viewer {spec!r} is not an http:// address", "use http://HOST:PORT, e.g. http://0.0.0.0:8080")
    host, port = parse_http_spec(spec)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _write_token(path: Path) -> bool:
    """Create ``path`` (mode 0600, in a 0700 folder) with a fresh token; False when it exists."""
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as e:
        raise InputError(f"cannot create the token file {path}: {e.strerror}", "run it as root (sudo)") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(16) + "\n")
    return True


def _systemctl(*args: str) -> None:
    print("+ systemctl " + " ".join(args), file=sys.stderr)
    try:
        p = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise InputError(f"cannot run systemctl: {e.strerror}", "is this a systemd machine?") from None
    if p.returncode != 0:
        why = " ".join((p.stderr or p.stdout).split())[:300]
        raise InputError(f"systemctl {' '.join(args)} failed: {why}", f"see journalctl -u {args[-1]}")


def _parser() -> ArgParser:
    p = ArgParser(prog="artcam service", description="Run `artcam live` at boot as a hardened systemd service "
                  "that restarts on failures and stalls; see docs/device.md.")
    sub = p.add_subparsers(dest="action", required=True, parser_class=ArgParser)
    inst = sub.add_parser("install", help="write the unit (and a token file), enable and start it")
    inst.add_argument("--source", default="0", help="camera index, /dev/videoN, csi://N, a URL... (default: 0)")
    inst.add_argument("--style", default=None, help="style name or index, or a stylizer model path")
    inst.add_argument("--style-model", default=None, help="stylizer model (default: the shipped one)")
    inst.add_argument("--viewer", default="http://127.0.0.1:8080",
                      help="web viewer address (default: http://127.0.0.1:8080; http://0.0.0.0:8080 for the LAN, "
                           "which requires the token)")
    inst.add_argument("--reconnect", type=parse_policy, default=DEFAULT_POLICY, metavar="stall=S,attempts=N,backoff=B",
                      help="`artcam live --reconnect`: no frame for S seconds stops the watchdog pings (a camera "
                           "is reopened meanwhile, N times, then the service restarts) (default: "
                           f"{DEFAULT_POLICY.as_option()})")
    inst.add_argument("--user", help="run as this existing user instead of a dynamic one (needed when Python "
                                     "is installed where other users cannot read, e.g. a 0750 home)")
    inst.add_argument("--token-file", default=None,
                      help=f"the root-only token file (default: {TOKEN_FILE}, created when the viewer is not on "
                           "loopback)")
    inst.add_argument("--name", default="artcam", help="unit name (default: artcam)")
    inst.add_argument("--unit-dir", default=UNIT_DIR, help=f"where the unit goes (default: {UNIT_DIR})")
    inst.add_argument("--print", action="store_true", help="print the unit and change nothing")
    inst.add_argument("--no-start", action="store_true", help="write the files only; no systemctl")
    inst.add_argument("live_args", nargs=argparse.REMAINDER,
                      help="after --: more `artcam live` options, e.g. -- --classify --device cuda")
    for name, what in (("uninstall", "stop, disable and remove the unit (the token file stays)"),
                       ("status", "systemd's view of the service and its /healthz")):
        q = sub.add_parser(name, help=what)
        q.add_argument("--name", default="artcam")
        q.add_argument("--unit-dir", default=UNIT_DIR)
        if name == "uninstall":
            q.add_argument("--no-stop", action="store_true", help="remove the file only; no systemctl")
    return p


def main(argv: list[str]) -> int:
    a = _parser().parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", a.name):
        raise InputError(f"--name {a.name!r} is not a unit name", "use letters, digits, '-', '_' or '.'")
    return {"install": install, "uninstall": uninstall, "status": status}[a.action](a)


def install(a: argparse.Namespace) -> int:
    a.viewer = _viewer_address(a.viewer)
    if a.live_args and a.live_args[0] == "--":
        a.live_args = a.live_args[1:]
    for bad in ("--token", "--token-file", "--source", "-o", "--output", "--reconnect"):
        if bad in a.live_args:
            raise InputError(f"{bad} cannot be passed through to the service",
                             "the token comes from --token-file; source, output and --reconnect are options of "
                             "install")
    host = a.viewer[len("http://"):].rsplit(":", 1)[0].strip("[]")
    token_file = a.token_file or (None if is_loopback(host) else TOKEN_FILE)
    if token_file:
        token_file = str(Path(token_file).absolute())
    # model files and a file source by absolute path: the service has a working folder of its own
    a.style, a.style_model, a.source = (str(Path(x).absolute()) if x and Path(x).exists() and not x.isdigit()
                                        and not x.startswith("/dev/") else x
                                        for x in (a.style, a.style_model, a.source))
    if not a.user:
        files = [x for x in (a.style, a.style_model, a.source) if x and x.startswith("/") and Path(x).exists()]
        for path in (Path(sys.executable), Path(__file__), *map(Path, files)):
            blocked = unreadable_by_others(path)
            if blocked is not None:
                who = os.environ.get("SUDO_USER") or "YOUR_USER"
                raise InputError(f"{path} is under {blocked}, which a dynamic service user cannot enter",
                                 f"add --user {who}, or put it where other users can read, e.g. under /opt")
    devices = camera_devices(a.source) + gpu_devices()
    text = unit_text(a, version=systemd_version(), devices=devices, groups=existing_groups(),
                     token_file=token_file)
    if a.print:
        sys.stdout.write(text)
        return 0
    unit = Path(a.unit_dir) / f"{a.name}.service"
    if token_file and _write_token(Path(token_file)):
        print(f"artcam: wrote a new token to {token_file} (mode 0600, root only); "
              f"open the viewer with ?token=<its content>", file=sys.stderr)
    with atomic_path(unit) as tmp:
        tmp.write_text(text)
    print(f"artcam: wrote {unit}", file=sys.stderr)
    if a.no_start:
        print(f"artcam: to start it: systemctl daemon-reload && systemctl enable --now {a.name}", file=sys.stderr)
        return 0
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", a.name)
    print(f"artcam: {a.name} is running; logs: journalctl -u {a.name} -f; health: {a.viewer}/healthz",
          file=sys.stderr)
    return 0


def uninstall(a: argparse.Namespace) -> int:
    unit = Path(a.unit_dir) / f"{a.name}.service"
    if not unit.exists():
        raise InputError(f"no unit {unit}", "nothing to uninstall (see --name and --unit-dir)")
    if not a.no_stop:
        _systemctl("disable", "--now", a.name)
    try:
        unit.unlink()
    except OSError as e:
        raise InputError(f"cannot remove {unit}: {e.strerror}", "run it as root (sudo)") from None
    if not a.no_stop:
        _systemctl("daemon-reload")
    print(f"artcam: removed {unit}; the token file (if any) stays: {TOKEN_FILE}", file=sys.stderr)
    return 0


def exec_start(unit: str) -> list[str]:
    """The ``ExecStart=`` command of a unit written by :func:`unit_text`, as an argument list."""
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            return [x.replace("%%", "%").replace("$$", "$") for x in shlex.split(line[len("ExecStart="):])]
    raise InputError("the unit has no ExecStart= line")


def status(a: argparse.Namespace) -> int:
    """``systemctl status`` and the viewer's /healthz; exit 0 only when both say it runs and is healthy."""
    unit = Path(a.unit_dir) / f"{a.name}.service"
    if not unit.exists():
        raise InputError(f"no unit {unit}", "install it with `artcam service install`")
    try:
        p = subprocess.run(["systemctl", "show", a.name, "-p", "ActiveState,SubState,NRestarts,StatusText"],
                           capture_output=True, text=True, timeout=30)
        active = p.stdout.strip().replace("\n", "  ") if p.returncode == 0 else f"systemctl: {p.stderr.strip()}"
    except OSError as e:
        active = f"systemctl: {e.strerror}"
    print(f"{a.name}: {active}")
    argv = exec_start(unit.read_text())
    viewer = argv[argv.index("-o") + 1] if "-o" in argv else ""
    host, port = viewer[len("http://"):].rsplit(":", 1) if viewer.startswith("http://") else ("", "")
    if not port:
        print("health: no web viewer in this unit")
        return 0 if "ActiveState=active" in active else 1
    if host in ("0.0.0.0", "[::]", ""):
        host = "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as r:
            word = r.read().decode()
    except urllib.error.HTTPError as e:
        word = e.read().decode(errors="replace")
    except OSError as e:
        word = f"no answer ({getattr(e, 'reason', e)})"
    print(f"health: {word}")
    return 0 if word == "ok" and "ActiveState=active" in active else 1

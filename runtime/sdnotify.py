"""systemd's readiness and watchdog protocol (``sd_notify``), spoken directly over ``$NOTIFY_SOCKET``.

The protocol is one datagram of ``KEY=VALUE`` lines on an ``AF_UNIX`` socket whose path systemd puts
in ``$NOTIFY_SOCKET`` (a leading ``@`` means Linux's abstract namespace); a unit with ``Type=notify``
waits for ``READY=1``, and one with ``WatchdogSec=`` kills the service when ``WATCHDOG=1`` stops
coming for that long (``$WATCHDOG_USEC``, addressed to ``$WATCHDOG_PID`` when set). That is all
``sd_notify(3)`` does, so no library (python-systemd, sdnotify) is needed.
"""

from __future__ import annotations

import os
import socket
import time


def socket_address(value: str) -> str:
    """``$NOTIFY_SOCKET`` as ``socket.connect`` takes it (``@name`` -> abstract ``\\0name``)."""
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval_s(env=None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` (systemd's advice: ping at twice the rate it checks), or None when
    there is no watchdog for this process."""
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid.isdigit() and int(pid) != os.getpid():  # the watchdog is meant for another process
        return None
    return int(usec) / 2e6


class Notifier:
    """Send notifications to systemd; sends never raise (a supervisor gone is not the run's failure)."""

    def __init__(self, address: str, watchdog_s: float | None = None):
        self.address = address
        self.watchdog_s = watchdog_s
        self._last_ping = float("-inf")
        self.errors = 0

    @classmethod
    def from_env(cls, env=None) -> Notifier | None:
        env = os.environ if env is None else env
        value = env.get("NOTIFY_SOCKET", "")
        if not value or value[0] not in "/@":
            return None
        return cls(socket_address(value), watchdog_interval_s(env))

    def send(self, message: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall(message.encode("utf-8"))
            return True
        except OSError:
            self.errors += 1
            return False

    def watchdog(self) -> bool:
        """``WATCHDOG=1`` when half the watchdog interval has passed since the last one."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic()
        if now - self._last_ping < self.watchdog_s:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

"""CPU clock and temperature around a benchmark: a number from a throttling board is not a speed.

Small boards (a Jetson, a Raspberry Pi, a fanless PC) lower their CPU clock when they get hot, and a
latency measured then says more about the heat sink than about the model. :class:`ClockWatch` reads
what Linux exposes under ``/sys`` before the run, every half second during it and after it:

* ``cpu_mhz``: the current clock of each core (``cpufreq/scaling_cur_freq``), as fastest and mean;
* ``cap_mhz``: the highest clock the kernel allows now (``cpufreq/scaling_max_freq``, the policy max):
  thermal throttling lowers it, so a drop here is the clearest sign;
* ``temp_c``: every thermal zone (``thermal/thermal_zone*/temp``) by its type.

What is not exposed (a VM, a container without ``/sys`` access) is ``null``, never an error. The
warning (``dropped``) fires when the cap went down during the run, or when the fastest core ran more
than 10% slower after the run than before it. An on-demand governor idles the clock between runs, so
``cpu_mhz`` alone is a weak signal; the cap is not affected by that.
"""

from __future__ import annotations

import glob
import os
import threading
from typing import Any

DROP = 0.9  # after < 90% of before is a drop


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _khz_to_mhz(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"fastest": round(max(values) / 1000, 1), "mean": round(sum(values) / len(values) / 1000, 1)}


def read(root: str = "/sys") -> dict[str, Any]:
    """One reading: ``{"cpu_mhz": {"fastest", "mean"} | None, "cap_mhz": float | None, "temp_c": {...} | None}``."""
    cpus = sorted(glob.glob(os.path.join(root, "devices/system/cpu/cpu[0-9]*/cpufreq")))
    cur = [v for v in (_read_int(os.path.join(c, "scaling_cur_freq")) for c in cpus) if v]
    caps = [v for v in (_read_int(os.path.join(c, "scaling_max_freq")) for c in cpus) if v]
    temps: dict[str, float] = {}
    for zone in sorted(glob.glob(os.path.join(root, "class/thermal/thermal_zone*"))):
        milli = _read_int(os.path.join(zone, "temp"))
        if milli is None:
            continue
        try:
            with open(os.path.join(zone, "type")) as f:
                name = f.read().strip() or os.path.basename(zone)
        except OSError:
            name = os.path.basename(zone)
        if name in temps:
            name = f"{name}.{os.path.basename(zone)}"
        temps[name] = round(milli / 1000, 1)
    return {"cpu_mhz": _khz_to_mhz(cur), "cap_mhz": round(max(caps) / 1000, 1) if caps else None,
            "temp_c": temps or None}


class ClockWatch:
    """``with ClockWatch() as w: run()`` then ``w.result()`` (stored in the report as ``clock``)."""

    def __init__(self, root: str = "/sys", every_s: float = 0.5):
        self.root, self.every_s = root, every_s
        self.before: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        self._min_cap: float | None = None
        self._max_temp: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        r = read(self.root)
        if r["cap_mhz"] is not None:
            self._min_cap = r["cap_mhz"] if self._min_cap is None else min(self._min_cap, r["cap_mhz"])
        if r["temp_c"]:
            hottest = max(r["temp_c"].values())
            self._max_temp = hottest if self._max_temp is None else max(self._max_temp, hottest)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def __enter__(self) -> ClockWatch:
        self.before = read(self.root)
        self._sample()
        self._thread = threading.Thread(target=self._run, name="artcam-clock", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.after = read(self.root)
        self._sample()

    def result(self) -> dict[str, Any]:
        b, a = self.before or {}, self.after or {}
        reasons = []
        cap0 = b.get("cap_mhz")
        if cap0 is not None and self._min_cap is not None and self._min_cap < cap0:
            reasons.append(f"the allowed clock fell from {cap0:g} to {self._min_cap:g} MHz (thermal or power limit)")
        f0, f1 = (b.get("cpu_mhz") or {}).get("fastest"), (a.get("cpu_mhz") or {}).get("fastest")
        if f0 and f1 and f1 < DROP * f0:
            reasons.append(f"the fastest core ran at {f1:g} MHz after the run, {f0:g} MHz before")
        return {"before": b, "after": a, "during": {"min_cap_mhz": self._min_cap, "max_temp_c": self._max_temp},
                "dropped": bool(reasons), "why": "; ".join(reasons) or None}

    def warning(self) -> str | None:
        """One line for stderr when the clock dropped, else None."""
        r = self.result()
        if not r["dropped"]:
            return None
        hot = f" (hottest {r['during']['max_temp_c']:g} °C)" if r["during"]["max_temp_c"] is not None else ""
        return f"bench: warning: the CPU clock dropped during the run: {r['why']}{hot}; these numbers are throttled"

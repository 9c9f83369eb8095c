"""CPU clock and temperature around a benchmark, read from a /sys tree (real files laid out as Linux does),
and stored in both benchmarks' JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import tiny_models as tm

from artcam.benchmarks.clock import ClockWatch, read


def fake_sys(root, cur_khz=(1500000, 1800000), cap_khz=1800000, temps=(("cpu-thermal", 48500), ("gpu-thermal", 45000))):
    for i, cur in enumerate(cur_khz):
        d = root / f"devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        (d / "scaling_cur_freq").write_text(f"{cur}\n")
        (d / "scaling_max_freq").write_text(f"{cap_khz}\n")
    for i, (name, milli) in enumerate(temps):
        z = root / f"class/thermal/thermal_zone{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "type").write_text(name + "\n")
        (z / "temp").write_text(f"{milli}\n")


def test_read_what_sys_exposes(tmp_path):
    fake_sys(tmp_path)
    assert read(str(tmp_path)) == {"cpu_mhz": {"fastest": 1800.0, "mean": 1650.0}, "cap_mhz": 1800.0,
                                   "temp_c": {"cpu-thermal": 48.5, "gpu-thermal": 45.0}}
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert read(str(empty)) == {"cpu_mhz": None, "cap_mhz": None, "temp_c": None}  # a VM: null, no error


def test_a_throttled_run_warns(tmp_path):
    fake_sys(tmp_path)
    with ClockWatch(str(tmp_path), every_s=0.05) as w:
        fake_sys(tmp_path, cur_khz=(1200000, 1200000), cap_khz=1200000, temps=(("cpu-thermal", 83000),
                                                                               ("gpu-thermal", 70000)))
        time.sleep(0.2)
    r = w.result()
    assert r["dropped"] and r["during"] == {"min_cap_mhz": 1200.0, "max_temp_c": 83.0}
    assert "1800 to 1200 MHz" in r["why"] and "1200 MHz after the run, 1800 MHz before" in r["why"]
    assert r["before"]["cpu_mhz"]["fastest"] == 1800.0 and r["after"]["cpu_mhz"]["fastest"] == 1200.0
    assert w.warning().startswith("bench: warning: the CPU clock dropped") and "83 °C" in w.warning()


def test_a_steady_run_does_not_warn(tmp_path):
    fake_sys(tmp_path)
    with ClockWatch(str(tmp_path), every_s=0.05) as w:
        fake_sys(tmp_path, cur_khz=(1700000, 1750000))  # within 10%, same cap
    assert not w.result()["dropped"] and w.warning() is None
    with ClockWatch(str(tmp_path / "absent")) as w:
        pass
    assert w.result()["before"] == {"cpu_mhz": None, "cap_mhz": None, "temp_c": None} and w.warning() is None


def test_both_benchmarks_store_the_clock(tmp_path):
    sty = tm.stylizer(tmp_path / "sty.onnx")
    for args in (["bench", str(sty), "--imgsz", "32", "--iterations", "3", "--warmup-s", "0", "--json"],
                 ["bench", "pipeline", "--style", str(sty), "--source-size", "48x64", "--scenario", "single",
                  "--duration-s", "0.3", "--json"]):
        p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *args], capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        clock = json.loads(p.stdout)["clock"]
        assert set(clock) == {"before", "after", "during", "dropped", "why"}
        assert set(clock["before"]) == {"cpu_mhz", "cap_mhz", "temp_c"} and clock["dropped"] in (True, False)

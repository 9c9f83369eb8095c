"""benchmarks.realtime: the user's commands as scenarios, their JSON summaries, the bars."""

from __future__ import annotations

import os
import subprocess
import sys

from artcam.benchmarks import realtime


def test_scenarios_are_the_users_commands(tmp_path):
    sc = realtime.scenarios(30, tmp_path / "d.mp4")
    assert sc["demo"][:3] == ["demo", "--frames", "30"] and "--json" in sc["demo"]
    assert sc["live_720p_guided"][-4:] == ["--size", "640", "--upsample", "guided"]
    assert sc["live_720p_hd"][-2:] == ["--style-model", "stylizer_hd"] and "720x1280" in sc["live_720p_hd"]
    from artcam.runtime.backends.openvino import openvino_available

    assert ("live_720p_hd_openvino" in sc) == openvino_available()
    if openvino_available():
        assert sc["live_720p_hd_openvino"][-2:] == ["--backend", "openvino"]


def test_checks_apply_the_bars():
    def summary(fps, p99):
        return {"summary": {"fps": fps, "latency_ms": {"e2e": {"p99": p99}}}}

    res = {"demo": summary(29.5, 80.0), "live_720p_resize": summary(30.2, 60.0), "live_720p_guided": summary(24.0, 90),
           "live_720p_full": summary(29.95, 70.0)}
    res["live_720p_full"]["summary"]["fps_steady"] = 29.95  # a paced 30 FPS source after its first frame
    assert realtime.checks(res) == {"demo_fps_ge_29": True, "demo_p99_lt_100ms": True, "live_720p_full_at_30fps": True,
                                    "live_720p_resize_at_30fps": True, "live_720p_guided_at_30fps": False}
    assert realtime.checks({"demo": summary(28.0, 120.0)}) == {"demo_fps_ge_29": False, "demo_p99_lt_100ms": False}


def test_runs_a_real_command_and_refuses_unknown_scenarios(tmp_path):
    r = realtime.run(["live", "--source", "sample", "--source-size", "64x64", "--classify-every", "0"], timeout=60)
    assert r["rc"] == 2 and "--classify-every" in r["error"] and "summary" not in r
    bad = subprocess.run([sys.executable, "-m", "artcam.benchmarks.realtime", "--only", "warp"], capture_output=True,
                         text=True, timeout=60, env=os.environ)
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr

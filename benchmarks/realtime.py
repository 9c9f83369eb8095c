"""Real time on this machine: the user's own commands, run as a user runs them, with their JSON summaries.

Scenarios (each a subprocess of ``artcam``, one after another, 300 output frames each):
- ``demo``: ``artcam demo`` as shipped (480x640 sample camera paced at 30 FPS; the stylizer in INT8 where its
  start-up probe measures that faster; classify on its own thread as often as the stylizer's idle time allows;
  HUD, MP4); ``demo_fp32``: ``--precision fp32``; ``demo_classify_every_1``: the classifier offered every
  frame; ``demo_stylize_only``: ``--classify none``.
- ``live_720p_full``, ``live_720p_resize``, ``live_720p_guided``: ``artcam live --source sample
  --source-size 720x1280 -o null`` at full resolution, with ``--size 640``, and ``--size 640 --upsample
  guided``; ``live_1080p_guided``: 1080x1920 with ``--size 960 --upsample guided``; ``live_720p_full_fp32``:
  full resolution with ``--precision fp32``; ``live_720p_hd``, ``live_1080p_hd``: the thinner ``stylizer_hd`` at
  full resolution (``--style-model stylizer_hd``; ``--workers`` and ``--precision`` as shipped, auto);
  ``live_720p_hd_openvino``, ``live_1080p_hd_openvino``, ``live_720p_full_openvino``: the same on ``--backend
  openvino`` (only where OpenVINO is installed: ``pip install openvino``).
- With ``--int8-stylizer MODEL`` (an ``artcam export --int8`` of the stylizer): ``live_720p_int8_full`` and
  ``live_720p_int8_guided_960`` (``--size 960 --upsample guided``, 79% of full resolution's fine detail).

The bars (``checks``): the demo at >= 29 FPS with end-to-end p99 < 100 ms; 720p at >= 30 FPS.

``--workers 1,2`` passes ``--workers`` to every scenario, and with several counts runs each scenario once per
count back to back (``NAME_workers1``, ``NAME_workers2``: alternating, so other load hits them alike).

    python -m artcam.benchmarks.realtime --json benchmarks/results/realtime.json
    python -m artcam.benchmarks.realtime --only live_720p_full,demo --workers 1,2 \
        --json benchmarks/results/realtime_workers.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from artcam.benchmarks.result_file import write_result
from artcam.runtime.backends.openvino import openvino_available
from artcam.runtime.cli import ArgParser

DEMO_FPS, DEMO_P99_MS, HD_FPS = 29.0, 100.0, 30.0
# A source paced at 30 FPS never gives more than 30, and frames / wall time counts start-up: the HD bar is
# the steady rate after the first frame within this much of the camera's.
CAMERA_RATE_SLACK = 0.1


def scenarios(frames: int, video: Path, int8_stylizer: str = "") -> dict[str, list[str]]:
    demo = ["demo", "--frames", str(frames), "-o", str(video), "--json"]
    live = ["live", "--source", "sample", "--style", "0", "-o", "null", "--frames", str(frames), "--json"]
    hd = [*live, "--source-size", "720x1280"]
    int8 = {} if not int8_stylizer else {
        "live_720p_int8_full": [*hd, "--style-model", int8_stylizer],
        "live_720p_int8_guided_960": [*hd, "--style-model", int8_stylizer, "--size", "960", "--upsample", "guided"],
    }
    openvino = {} if not openvino_available() else {  # --backend openvino where it is installed
        "live_720p_hd_openvino": [*hd, "--style-model", "stylizer_hd", "--backend", "openvino"],
        "live_1080p_hd_openvino": [*live, "--source-size", "1080x1920", "--style-model", "stylizer_hd",
                                   "--backend", "openvino"],
        "live_720p_full_openvino": [*hd, "--backend", "openvino"],
    }
    return {
        "demo": demo,
        "demo_fp32": [*demo, "--precision", "fp32"],
        "demo_classify_every_1": [*demo, "--classify-every", "1"],
        "demo_stylize_only": [*demo, "--classify", "none"],
        "live_720p_full": [*live, "--source-size", "720x1280"],
        "live_720p_full_fp32": [*live, "--source-size", "720x1280", "--precision", "fp32"],
        "live_720p_resize": [*live, "--source-size", "720x1280", "--size", "640"],
        "live_720p_guided": [*live, "--source-size", "720x1280", "--size", "640", "--upsample", "guided"],
        "live_1080p_guided": [*live, "--source-size", "1080x1920", "--size", "960", "--upsample", "guided"],
        "live_720p_hd": [*hd, "--style-model", "stylizer_hd"],
        "live_1080p_hd": [*live, "--source-size", "1080x1920", "--style-model", "stylizer_hd"],
        **int8,
        **openvino,
    }


def with_workers(todo: dict[str, list[str]], counts: list[str]) -> dict[str, list[str]]:
    """Each scenario with ``--workers N`` for each count (named ``NAME_workersN`` when there are several)."""
    if not counts:
        return todo
    if len(counts) == 1:
        return {name: [*args, "--workers", counts[0]] for name, args in todo.items()}
    return {f"{name}_workers{n}": [*args, "--workers", n] for name, args in todo.items() for n in counts}


def run(argv: list[str], timeout: float) -> dict:
    """One ``artcam`` command; its JSON summary (the last stdout line) plus the exit code."""
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *argv], capture_output=True, text=True,
                       timeout=timeout)
    out = {"argv": ["artcam", *argv], "rc": r.returncode}
    lines = [x for x in r.stdout.strip().splitlines() if x.startswith("{")]
    if r.returncode == 0 and lines:
        out["summary"] = json.loads(lines[-1])
    else:
        out["error"] = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
    return out


def checks(res: dict) -> dict:
    def s(name):
        return res.get(name, {}).get("summary")

    c = {}
    hd = ("live_720p_full", "live_720p_full_fp32", "live_720p_resize", "live_720p_guided", "live_720p_int8_full",
          "live_720p_int8_guided_960", "live_720p_hd", "live_720p_hd_openvino", "live_720p_full_openvino")
    for name in res:  # a scenario run with several --workers counts is NAME_workersN
        base = name.split("_workers")[0]
        if base == "demo" and s(name):
            c[f"{name}_fps_ge_29"] = s(name)["fps"] >= DEMO_FPS
            c[f"{name}_p99_lt_100ms"] = s(name)["latency_ms"]["e2e"]["p99"] < DEMO_P99_MS
        if base in hd and s(name):
            c[f"{name}_at_30fps"] = s(name).get("fps_steady", s(name)["fps"]) >= HD_FPS - CAMERA_RATE_SLACK
    return c


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.realtime", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300, help="output frames per scenario (default 300)")
    p.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    p.add_argument("--int8-stylizer", default="", metavar="MODEL", help="also the 720p scenarios with this INT8 stylizer")
    p.add_argument("--workers", default="", metavar="N[,N...]",
                   help="pass --workers N to every scenario; several counts: each scenario once per count, in turn")
    p.add_argument("--json", default="", help="write the summaries and checks here")
    a = p.parse_args(argv)
    res = {}
    with tempfile.TemporaryDirectory(prefix="artcam_realtime_") as tmp:
        todo = scenarios(a.frames, Path(tmp) / "demo.mp4", a.int8_stylizer)
        if a.only:
            unknown = sorted(set(a.only.split(",")) - set(todo))
            if unknown:
                print(f"unknown scenario(s) {', '.join(unknown)}; have: {', '.join(todo)}", file=sys.stderr)
                return 2
            todo = {k: v for k, v in todo.items() if k in a.only.split(",")}
        todo = with_workers(todo, [n.strip() for n in a.workers.split(",") if n.strip()])
        for name, args in todo.items():
            res[name] = r = run(args, timeout=60 + a.frames)
            if "summary" in r:
                sm = r["summary"]
                e2e = sm["latency_ms"]["e2e"]
                print(f"{name:24s} {sm['fps']:5.1f} FPS ({sm.get('fps_steady', 0):4.1f} after the first frame)  "
                      f"dropped {sm['dropped']:4d} of {sm['captured']:4d}  "
                      f"e2e p50 {e2e['p50']:6.1f}  p99 {e2e['p99']:6.1f} ms", flush=True)
            else:
                print(f"{name:24s} failed (exit {r['rc']}): {r['error']}", flush=True)
    ok = checks(res)
    for k, v in ok.items():
        print(f"{k}: {'yes' if v else 'NO'}")
    write_result(a.json, {"frames": a.frames, "scenarios": res, "checks": ok}, p.prog, argv)
    return 0 if all("summary" in r for r in res.values()) else 1


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

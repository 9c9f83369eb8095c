"""Soak: run the real ``artcam live`` on the built-in ``sample`` source for many frames and watch its memory.

The command runs as a subprocess exactly as a user starts it (stylize + classify, null output, JSON summary);
its resident memory (VmRSS) is sampled every half second. Reported: RSS after warm-up (the first
``--warmup-s`` seconds) and at the end, the growth between them, and the run's own FPS and latency
percentiles. A pipeline that keeps per-frame records grows about 0.4 KB a frame; a flat one does not.

    python -m artcam.benchmarks.soak --frames 10000 [--json soak.json]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from artcam.runtime.cli import ArgParser
from artcam.runtime.fileio import atomic_write_text


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def soak(frames: int, warmup_s: float = 10.0, extra: list[str] = ()) -> dict:
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--classify", "-o", "null",
           "--frames", str(frames), "--json", *extra]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    while p.poll() is None:
        r = rss_kb(p.pid)
        if r is not None:
            samples.append((time.perf_counter() - t0, r))
        time.sleep(0.5)
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"artcam live failed ({p.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}")
    summary = json.loads(out.strip().splitlines()[-1])
    after = [r for t, r in samples if t >= warmup_s]
    if len(after) < 2:
        raise SystemExit(f"the run lasted under {warmup_s} s after warm-up; use more --frames")
    start, end = after[0], after[-1]
    return {"frames": frames, "warmup_s": warmup_s, "rss_start_mb": start / 1024, "rss_end_mb": end / 1024,
            "rss_growth_mb": (end - start) / 1024, "rss_max_mb": max(after) / 1024,
            "wall_s": time.perf_counter() - t0, "summary": summary, **rss_curve(samples, warmup_s)}


def rss_curve(samples: list[tuple[float, int]], warmup_s: float, points: int = 12) -> dict:
    """The RSS after warm-up at ``points`` evenly spaced moments ([seconds, MB]) and the least-squares slope
    in MB per minute: a leak is a steady slope, allocator noise is not."""
    import numpy as np

    after = [(t, kb / 1024) for t, kb in samples if t >= warmup_s]
    idx = sorted({round(i * (len(after) - 1) / (points - 1)) for i in range(points)})
    t = np.array([a[0] for a in after])
    mb = np.array([a[1] for a in after])
    slope = float(np.polyfit(t, mb, 1)[0]) * 60 if len(after) > 2 else 0.0
    return {"rss_curve_mb": [[round(after[i][0], 1), round(after[i][1], 2)] for i in idx],
            "rss_slope_mb_per_min": round(slope, 4)}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.soak", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--warmup-s", type=float, default=10.0)
    p.add_argument("--json", default="", help="also write the result here")
    args, extra = p.parse_known_args(argv)
    res = soak(args.frames, args.warmup_s, extra)
    s = res["summary"]
    print(f"artcam live, sample source, {args.frames} frames in {res['wall_s']:.0f} s: RSS {res['rss_start_mb']:.1f} MB "
          f"after warm-up -> {res['rss_end_mb']:.1f} MB at the end (growth {res['rss_growth_mb']:+.2f} MB, "
          f"max {res['rss_max_mb']:.1f} MB)")
    print("RSS after warm-up [s, MB]: " + " ".join(f"{t:g}:{mb:.1f}" for t, mb in res["rss_curve_mb"])
          + f"; slope {res['rss_slope_mb_per_min']:+.3f} MB/min")
    print("pipeline summary: " + json.dumps({k: s[k] for k in list(s)[:8]}))
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

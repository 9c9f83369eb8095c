"""Can a latent walk keep up with a live display on a CPU? Per-frame latency of generator models.

    python -m artcam.benchmarks.latent_walk_speed [--model generator_art64] [--frames 300] [--threads 2]

Each frame is what ``artcam live --source latent-walk`` does: next latent from LatentWalk (slerp),
one ONNX Runtime call with batch 1, conversion of the (-1, 1) output to a BGR uint8 frame. Besides
the given model(s), untrained 128-px generators of the same family (G base 32 and 64) are exported
to a temporary folder, since the speed of a net does not depend on its weights. Models are run in
turns (round-robin, one frame each) so load from other processes hits all of them alike; medians.
"CPU ms" is this process's CPU time per frame: on a machine shared with other jobs, wall time
also counts the waits for a core, CPU time is what the frame costs.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from artcam.benchmarks.result_file import write_result
from artcam.runtime.cli import ArgParser


def export_untrained(size: int, g_base: int, classes: int, folder: Path) -> Path:
    """An untrained generator of the shipped family, exported with metadata (needs torch)."""
    import torch

    from artcam.training.gan_nets import GanConfig, GeneratorNet, recalibrate_bn
    from artcam.training.generate import export_checkpoint

    torch.manual_seed(0)
    cfg = GanConfig(size=size, g_base=g_base, d_base=g_base, classes=tuple(f"c{i}" for i in range(classes)))
    g = recalibrate_bn(GeneratorNet(cfg), batches=2, batch_size=16)
    path = folder / f"untrained_{cfg.arch}.onnx"
    export_checkpoint({"kind": "generate", "config": cfg.to_dict(), "model": g.state_dict(), "step": 0,
                       "name": path.stem}, path)
    return path


class WalkCase:
    def __init__(self, label: str, path: Path, threads: int, seed: int = 0):
        from artcam.runtime.latent_walk import LatentWalk
        from artcam.runtime.loading import load_model
        from artcam.runtime.processing import ImagePostprocessor

        self.label, self.path = label, path
        self.m = load_model(path, task="generate", device="cpu", threads=threads)
        self.threads = threads
        meta = self.m.meta
        self.size = int(self.m.runner.output_specs[0].shape[-1]) if isinstance(
            self.m.runner.output_specs[0].shape[-1], int) else None
        ncls = len(meta.classes.labels) if meta.classes else 0
        self.walk = LatentWalk(meta.latent.size, seed=seed, steps_per_segment=90, n_classes=ncls)
        self.z_name = meta.latent.name
        self.c_name = meta.classes.name if meta.classes else None
        self.post = ImagePostprocessor(meta.output)
        self.out_name = meta.output.name
        self.infer_ms: list[float] = []
        self.frame_ms: list[float] = []
        self.cpu_ms: list[float] = []  # CPU time of this process per frame (all its threads)

    def frame(self) -> np.ndarray:
        t0, c0 = time.perf_counter(), time.process_time()
        z, y = self.walk.step()
        feeds = {self.z_name: z[None]}
        if self.c_name:
            feeds[self.c_name] = y[None]
        out = self.m.runner.infer(feeds)[self.out_name]
        self.infer_ms.append(self.m.runner.last_latency_ms)
        bgr = self.post(out)
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)
        self.cpu_ms.append((time.process_time() - c0) * 1e3)
        return bgr

    def summary(self) -> dict:
        f = np.asarray(self.frame_ms)
        i = np.asarray(self.infer_ms)
        return {"model": self.label, "path": str(self.path), "threads": self.threads, "frames": len(f),
                "output": list(self.m.runner.output_specs[0].shape),
                "infer_ms_median": float(np.median(i)), "infer_ms_p90": float(np.percentile(i, 90)),
                "frame_ms_median": float(np.median(f)), "frame_ms_p90": float(np.percentile(f, 90)),
                "fps_median": float(1e3 / np.median(f)), "fps_p10": float(1e3 / np.percentile(f, 90)),
                "cpu_ms_median": float(np.median(self.cpu_ms))}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.latent_walk_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=None,
                   help="generator name or path (repeatable; default: the shipped generator_art64 if present)")
    p.add_argument("--no-untrained", action="store_true", help="skip the untrained 128-px family members")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", default="0",
                   help="ONNX Runtime intra-op threads, comma-separated to compare (0 = its default: all cores)")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)

    from artcam.benchmarks.envinfo import environment, one_line
    from artcam.runtime.zoo import DEFAULT_GENERATOR, list_models

    try:
        threads = [int(t) for t in str(a.threads).split(",") if t.strip()]
    except ValueError:
        p.error(f"--threads {a.threads!r}: give integers, e.g. 1,2")
    specs = a.model or [e.name for e in list_models(load_meta=False) if e.name == DEFAULT_GENERATOR]
    cases: list[WalkCase] = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [(str(s), s) for s in specs]
        if not a.no_untrained:
            for gb in (32, 64):
                models.append((f"untrained 128px G base {gb}", export_untrained(128, gb, 7, Path(tmp))))
        for label, path in models:
            for th in threads:
                cases.append(WalkCase(f"{label} [threads {th or 'all'}]", path, th))
        for c in cases:
            for _ in range(a.warmup):
                c.frame()
        for _ in range(a.frames):
            for c in cases:
                c.frame()
        results = [c.summary() for c in cases]
        for c in cases:
            c.m.close()
    env = environment(threads[0])
    env["load_average"] = list(__import__("os").getloadavg())
    print(one_line(env) + f"; load average {env['load_average'][0]:.1f}")
    print(f"{'model':<52} {'out':>12} {'infer ms':>9} {'frame ms':>9} {'p90 ms':>7} {'FPS':>6} {'CPU ms':>7}")
    for r in results:
        shape = "x".join(str(v) for v in r["output"][1:])
        print(f"{r['model'][:52]:<52} {shape:>12} {r['infer_ms_median']:>9.2f} {r['frame_ms_median']:>9.2f} "
              f"{r['frame_ms_p90']:>7.2f} {r['fps_median']:>6.1f} {r['cpu_ms_median']:>7.2f}")
    write_result(a.json, {"results": json.loads(json.dumps(results, default=str))}, p.prog, argv)  # paths as text
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

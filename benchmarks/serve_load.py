"""Load test of `artcam serve` on loopback: concurrent clients, dynamic batching on and off, overload.

For each batching mode a real server (``artcam serve``, Triton via pytriton) is started as a child
process with the stylizer and the classifier. Then for each model and each client count, that many
threads (one tritonclient gRPC client each, one request in flight each) send 640x480 BGR frames for
``--duration-s`` after ``--warmup-s``. Reported: throughput (answered frames per second), per-request
latency p50/p90/p99 (client side: encode, round trip, decode), the server's own share of it, and the
mean batch Triton formed (from its Prometheus counters: requests / model executions).

Then past the queue limit: a server with ``--max-queue-size Q`` gets ``--overload-clients`` clients on
the stylizer; rejections ("Exceeds maximum queue size") are counted, and the server must still answer
afterwards.

    python -m artcam.benchmarks.serve_load --out benchmarks/results/serve_load_cpu
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from artcam.benchmarks.stats import summarize
from artcam.runtime.cli import ArgParser
from artcam.runtime.sizes import SPELLING, size_arg

PCTS = (50.0, 90.0, 99.0)


def _frames(size: tuple[int, int], n: int = 8) -> list[np.ndarray]:
    from artcam.runtime.sources import SampleSource

    src = SampleSource(size=size, live=False)
    return [src.frame_at(i * 37).copy() for i in range(n)]


def _client(url_port: int):
    import tritonclient.grpc as tg

    return tg, tg.InferenceServerClient(f"127.0.0.1:{url_port}")


def _request(tg, client, model: str, frame: np.ndarray, outputs: list[str]):
    x = tg.InferInput("image", [1, *frame.shape], "UINT8")
    x.set_data_from_numpy(frame[None])
    res = client.infer(model, [x], outputs=[tg.InferRequestedOutput(o) for o in outputs], client_timeout=60)
    for o in outputs:
        res.as_numpy(o)
    return float(res.as_numpy("server_ms").reshape(-1)[0])


def _outputs(task: str) -> list[str]:
    return ["image", "server_ms"] if task == "stylize" else ["objects_labels", "objects_probs", "server_ms"]


def triton_counts(metrics_port: int, model: str) -> dict[str, float]:
    """Triton's Prometheus counters for ``model``: requests answered and model executions (batches)."""
    import urllib.request

    out = {"nv_inference_request_success": 0.0, "nv_inference_exec_count": 0.0}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        for k in out:
            if line.startswith(k + "{") and f'model="{model}"' in line:
                out[k] += float(line.rsplit(" ", 1)[1])
    return out


def run_cell(grpc_port: int, model: str, task: str, clients: int, frames, warmup_s: float, duration_s: float) -> dict:
    """``clients`` closed-loop clients for warmup + duration; stats over the measured window only."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    srv: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup_s, t_start + warmup_s + duration_s
    outs = _outputs(task)
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        tg, c = _client(grpc_port)
        barrier.wait()
        k = i
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            try:
                s = _request(tg, c, model, frames[k % len(frames)], outs)
                t1 = time.perf_counter()
                if t0 >= t_measure and t1 <= t_end:
                    lat[i].append((t1 - t0) * 1e3)
                    srv[i].append(s)
            except Exception as e:
                errors[i].append(" ".join(str(e).split())[:200])
            k += 1
        c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(warmup_s + duration_s + 120)
    all_lat = [v for x in lat for v in x]
    all_srv = [v for x in srv for v in x]
    errs = [e for x in errors for e in x]
    s = summarize(all_lat, PCTS)
    return {"model": model, "task": task, "clients": clients, "duration_s": duration_s, "answered": len(all_lat),
            "throughput_fps": len(all_lat) / duration_s, "latency_ms": s,
            "server_ms": summarize(all_srv, PCTS), "errors": len(errs), "error_examples": sorted(set(errs))[:3]}


def overload(models: list[str], max_queue: int, clients: int, duration_s: float, frames, nice: int) -> dict:
    """Past the queue limit: rejections are counted, and the server still answers afterwards."""
    from artcam.serving.launch import ServerProcess

    model = models[0]
    with ServerProcess([model], "--max-queue-size", str(max_queue), nice=nice) as srv:
        ok = [0] * clients
        rejected = [0] * clients
        other: list[str] = []
        t_end = time.perf_counter() + duration_s
        barrier = threading.Barrier(clients)

        def worker(i: int) -> None:
            tg, c = _client(srv.grpc_port)
            barrier.wait()
            while time.perf_counter() < t_end:
                try:
                    _request(tg, c, model, frames[i % len(frames)], ["image", "server_ms"])
                    ok[i] += 1
                except Exception as e:
                    msg = str(e)
                    if "queue size" in msg.lower():
                        rejected[i] += 1
                        time.sleep(0.005)  # a rejected client retries at once, as a camera would
                    else:
                        other.append(" ".join(msg.split())[:200])
            c.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(duration_s + 120)
        tg, c = _client(srv.grpc_port)
        alive = srv.proc.poll() is None and c.is_server_live() and c.is_model_ready(model)
        after_ms = _request(tg, c, model, frames[0], ["image", "server_ms"]) if alive else None
        c.close()
    return {"model": model, "max_queue_size": max_queue, "clients": clients, "duration_s": duration_s,
            "answered": sum(ok), "rejected": sum(rejected), "other_errors": len(other),
            "other_error_examples": sorted(set(other))[:3], "server_alive_after": bool(alive),
            "request_after_ok": after_ms is not None}


def markdown(res: dict) -> str:
    lines = [f"# artcam serve load test ({res['when']})", "",
             f"{res['env_line']}", "",
             f"Frames {res['size'][1]}x{res['size'][0]} BGR uint8 over gRPC on loopback; closed-loop clients "
             f"(one request in flight each); {res['warmup_s']:g} s warm-up, {res['duration_s']:g} s measured per "
             f"cell; server: `artcam serve {' '.join(res['models'])} --max-batch {res['max_batch']}` "
             f"(+ `--no-dynamic-batching` for 'off').", "",
             "| model | batching | clients | frames/s | p50 ms | p90 ms | p99 ms | server p50 ms | mean batch | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in res["cells"]:
        s, sv = c["latency_ms"] or {}, c["server_ms"] or {}

        def f(d, k):
            return f"{d[k]:.1f}" if d and k in d else "n/a"

        lines.append(f"| {c['model']} | {c['batching']} | {c['clients']} | {c['throughput_fps']:.2f} | "
                     f"{f(s, 'p50')} | {f(s, 'p90')} | {f(s, 'p99')} | {f(sv, 'p50')} | "
                     f"{'n/a' if c.get('mean_batch') is None else format(c['mean_batch'], '.2f')} | {c['errors']} |")
    lines.append("")
    for m in res["models"]:
        g = {(c["batching"], c["clients"]): c["throughput_fps"] for c in res["cells"] if c["model"] == m}
        top = max(res["clients"])
        if ("on", 1) in g and ("on", top) in g:
            lines.append(f"- {m}: dynamic batching on, {top} clients vs 1: {g[('on', top)] / max(g[('on', 1)], 1e-9):.2f}x "
                         f"throughput" + (f"; on vs off at {top} clients: {g[('on', top)] / max(g[('off', top)], 1e-9):.2f}x"
                                          if ("off", top) in g else ""))
    o = res.get("overload")
    if o:
        lines += ["", f"Past the queue limit: `--max-queue-size {o['max_queue_size']}`, {o['clients']} clients on "
                  f"{o['model']} for {o['duration_s']:g} s: {o['answered']} answered, {o['rejected']} rejected at once "
                  f"(\"Exceeds maximum queue size\"), {o['other_errors']} other errors; server alive afterwards: "
                  f"{'yes' if o['server_alive_after'] else 'NO'}, next request answered: "
                  f"{'yes' if o['request_after_ok'] else 'NO'}."]
    lines += ["", f"Command: `{res['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import sys

    p = ArgParser(prog="python -m artcam.benchmarks.serve_load", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["stylizer_nano", "classifier_lite0"])
    p.add_argument("--clients", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    p.add_argument("--batching", default="on,off", help="on, off or both (default on,off)")
    p.add_argument("--size", type=size_arg, default=(480, 640), metavar="HxW", help=f"frame size, {SPELLING}")
    p.add_argument("--duration-s", type=float, default=20.0, help="measured seconds per cell (default 20)")
    p.add_argument("--warmup-s", type=float, default=3.0)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=0, help="server ONNX Runtime threads (0 = its default)")
    p.add_argument("--overload-clients", type=int, default=24, help="clients for the queue-limit test (0 = skip)")
    p.add_argument("--overload-queue", type=int, default=2, help="--max-queue-size for the queue-limit test")
    p.add_argument("--overload-s", type=float, default=10.0)
    p.add_argument("--nice", type=int, default=0, help="run the server under nice -n N")
    p.add_argument("--out", default="", help="write OUT.json and OUT.md")
    a = p.parse_args(argv)
    try:
        import tritonclient.grpc  # noqa: F401

        from artcam.serving.launch import ServerProcess
    except ImportError as e:
        raise SystemExit(f"serve_load needs the serve extra ({e}); pip install 'artcam[serve]'") from None
    from artcam.benchmarks.envinfo import environment, one_line
    from artcam.runtime.loading import load_model

    h, w = a.size
    clients = [int(c) for c in a.clients.split(",") if c.strip()]
    modes = [m.strip() for m in a.batching.split(",") if m.strip()]
    tasks = {}
    for m in a.models:
        lm = load_model(m, device="cpu")
        tasks[m] = lm.meta.task
        lm.close()
    frames = _frames((h, w))
    env = environment(a.threads)
    res = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "env": env, "env_line": one_line(env),
           "size": [h, w], "models": a.models, "clients": clients, "duration_s": a.duration_s,
           "warmup_s": a.warmup_s, "max_batch": a.max_batch, "cells": [],
           "command": "python -m artcam.benchmarks.serve_load " + " ".join(argv if argv is not None else sys.argv[1:])}
    for mode in modes:
        extra = ["--max-batch", str(a.max_batch), "--threads", str(a.threads)]
        if mode == "off":
            extra.append("--no-dynamic-batching")
        with ServerProcess(a.models, *extra, nice=a.nice) as srv:
            for m in a.models:
                for n in clients:
                    before = triton_counts(srv.metrics_port, m)
                    cell = run_cell(srv.grpc_port, m, tasks[m], n, frames, a.warmup_s, a.duration_s)
                    after = triton_counts(srv.metrics_port, m)
                    reqs = after["nv_inference_request_success"] - before["nv_inference_request_success"]
                    execs = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
                    cell["mean_batch"] = reqs / execs if execs else None  # warm-up included
                    cell["batching"] = mode
                    s = cell["latency_ms"] or {}
                    print(f"{m:18s} batching {mode:3s} clients {n:3d}: {cell['throughput_fps']:7.2f} frames/s  "
                          f"p50 {s.get('p50', float('nan')):7.1f}  p90 {s.get('p90', float('nan')):7.1f}  "
                          f"p99 {s.get('p99', float('nan')):7.1f} ms  mean batch {cell['mean_batch'] or 0:.2f}  "
                          f"errors {cell['errors']}", flush=True)
                    res["cells"].append(cell)
    if a.overload_clients:
        res["overload"] = overload(a.models, a.overload_queue, a.overload_clients, a.overload_s, frames, a.nice)
        o = res["overload"]
        print(f"overload: {o['answered']} answered, {o['rejected']} rejected, {o['other_errors']} other errors, "
              f"server alive after: {o['server_alive_after']}", flush=True)
    md = markdown(res)
    print(md)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(res, indent=2))
        out.with_suffix(".md").write_text(md)
        print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

"""Would frame-level parallelism help? Model-only throughput of one ONNX Runtime session with 2 intra-op threads
against two 1-thread sessions taking alternate frames (ORT releases the GIL), spinning off, 3 alternating rounds.

    python tools/frame_parallel_probe.py runtime/models/stylizer_nano.onnx,runtime/models/stylizer_nano_int8.onnx \
        --size 720x1280
"""

from __future__ import annotations

import threading
import time

import numpy as np

from artcam.runtime.backends.onnxrt import make_session

FRAMES = 24


def session(path: str, threads: int):
    return make_session(path, threads=threads)  # spinning off, one inter-op thread


def feeds(s, h: int, w: int) -> dict[str, np.ndarray]:
    style = next(i for i in s.get_inputs() if i.name == "style")
    return {"image": np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32),
            "style": np.eye(int(style.shape[1]), dtype=np.float32)[:1]}


def one_session(path: str, h: int, w: int) -> float:
    s = session(path, 2)
    x = feeds(s, h, w)
    s.run(None, x)
    t = time.perf_counter()
    for _ in range(FRAMES):
        s.run(None, x)
    return FRAMES / (time.perf_counter() - t)


def two_sessions(path: str, h: int, w: int) -> float:
    ss = [session(path, 1) for _ in range(2)]
    x = feeds(ss[0], h, w)
    for s in ss:
        s.run(None, x)

    def work(s) -> None:
        for _ in range(FRAMES // 2):
            s.run(None, x)

    threads = [threading.Thread(target=work, args=(s,)) for s in ss]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return FRAMES / (time.perf_counter() - t)


def main() -> None:
    from artcam.runtime.cli import ArgParser

    p = ArgParser(prog="tools/frame_parallel_probe.py", description=__doc__.splitlines()[0])
    p.add_argument("models", help="comma-separated ONNX stylizers")
    p.add_argument("--size", default="720x1280", help="HxW")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    fps: dict[tuple[str, str], list[float]] = {}
    for _ in range(3):
        for path in a.models.split(","):
            for name, f in (("one session, 2 threads", one_session), ("two 1-thread sessions", two_sessions)):
                fps.setdefault((path, name), []).append(f(path, h, w))
    for (path, name), v in fps.items():
        print(f"{path}  {name:24s} {np.median(v):6.2f} FPS (rounds: {', '.join(f'{x:.1f}' for x in v)})")


if __name__ == "__main__":
    main()

"""Would frame-level parallelism help? Model-only throughput of one ONNX Runtime session with 2 intra-op threads
against two 1-thread sessions taking alternate frames (ORT releases the GIL), spinning off, 3 alternating rounds
(``benchmarks.alternate``).

    python tools/frame_parallel_probe.py runtime/models/stylizer_nano.onnx,runtime/models/stylizer_nano_int8.onnx \
        --size 720x1280
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from artcam.benchmarks.alternate import alternate
from artcam.runtime.backends.onnxrt import make_session

FRAMES = 24  # frames per timed round


def feeds(s, h: int, w: int) -> dict[str, np.ndarray]:
    style = next(i for i in s.get_inputs() if i.name == "style")
    return {"image": np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32),
            "style": np.eye(int(style.shape[1]), dtype=np.float32)[:1]}


def rounds(path: str, h: int, w: int) -> dict[str, Callable[[], None]]:
    """One round of FRAMES frames each way; the sessions are made once (spinning off, one inter-op thread)."""
    pair = make_session(path, threads=2)
    singles = [make_session(path, threads=1) for _ in range(2)]
    x = feeds(pair, h, w)

    def one_session() -> None:
        for _ in range(FRAMES):
            pair.run(None, x)

    def alternate_frames(s) -> None:
        for _ in range(FRAMES // 2):
            s.run(None, x)

    def two_sessions() -> None:
        threads = [threading.Thread(target=alternate_frames, args=(s,)) for s in singles]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    return {"one session, 2 threads": one_session, "two 1-thread sessions": two_sessions}


def main() -> None:
    from artcam.runtime.cli import ArgParser

    p = ArgParser(prog="tools/frame_parallel_probe.py", description=__doc__.splitlines()[0])
    p.add_argument("models", help="comma-separated ONNX stylizers")
    p.add_argument("--size", default="720x1280", help="HxW")
    a = p.parse_args()
    h, w = (int(v) for v in a.size.lower().split("x"))
    for path in a.models.split(","):
        timed = alternate(rounds(path, h, w), runs=3, warmup=1)
        for name, secs in timed.wall.items():
            fps = [FRAMES / t for t in secs]
            print(f"{path}  {name:24s} {np.median(fps):6.2f} FPS (rounds: {', '.join(f'{v:.1f}' for v in fps)})")


if __name__ == "__main__":
    main()

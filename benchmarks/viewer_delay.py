"""How much delay the web viewer's MJPEG stream adds to the pipeline's own latency.

    python -m artcam.benchmarks.viewer_delay [--frames 300] [--fps 30]

Writes 640x480 frames into a real ViewerSink on loopback at camera pace, each frame a grey level that
names it; a real HTTP client reads the stream and decodes each JPEG. Reports the time from ``write()``
to the client holding the whole JPEG, and how many frames behind the newest each received frame was
(the design promises at most the frame being sent).
"""

import threading
import time
import urllib.request

import cv2
import numpy as np

from artcam.runtime.viewer import ViewerSink


def main(argv=None) -> int:
    from artcam.runtime.cli import ArgParser

    p = ArgParser(prog="python -m artcam.benchmarks.viewer_delay", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps", type=float, default=30.0)
    a = p.parse_args(argv)
    sink = ViewerSink("127.0.0.1", 0)
    written: dict[int, list[tuple[float, int]]] = {}  # grey level -> (write time, frame index)
    got: list[tuple[float, int]] = []  # (time the client held the whole JPEG, grey level)
    stop = threading.Event()

    def client() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{sink.port}/stream.mjpg", timeout=10) as r:
            while not stop.is_set():
                line = r.readline()
                if line.lower().startswith(b"content-length:"):
                    r.readline()
                    data = r.read(int(line.split(b":")[1]))
                    t = time.perf_counter()
                    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
                    got.append((t, int(round(float(img[200:280, 280:360].mean()) / 5))))

    threading.Thread(target=client, daemon=True).start()
    frame = np.zeros((480, 640, 3), np.uint8)
    for i in range(a.frames):
        level = i % 50
        frame[:] = level * 5
        t = time.perf_counter()
        sink.write(frame, {"fps": a.fps, "latency_ms": 0.0})
        written.setdefault(level, []).append((t, i))
        time.sleep(max(0.0, 1 / a.fps - (time.perf_counter() - t)))
    time.sleep(0.3)
    stop.set()
    sink.close()
    every = sorted(x for v in written.values() for x in v)
    delays, behind = [], []
    for t, level in got:
        before = [(tw, i) for tw, i in written.get(level, []) if tw <= t]
        if not before:
            continue
        tw, i = max(before)
        delays.append((t - tw) * 1e3)
        behind.append(max(j for tt, j in every if tt <= t) - i)
    d = np.array(delays)
    counts = {int(k): int(n) for k, n in zip(*np.unique(behind, return_counts=True))}
    print(f"{len(got)} frames received of {a.frames} written at {a.fps:g} FPS (640x480); delay write() -> client ms: "
          f"p50 {np.percentile(d, 50):.1f} p90 {np.percentile(d, 90):.1f} p99 {np.percentile(d, 99):.1f} "
          f"max {d.max():.1f}; frames behind the newest at receipt: {counts}")
    return 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

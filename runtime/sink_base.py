"""What every sink shares: the ``Sink`` interface, the events ``write`` may return, the HUD overlay.

A module of its own so that sinks (``sinks``, the web viewer in ``viewer``) build on it without importing
each other; ``sinks.open_sink`` is the one place that picks a sink.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .reconnect import status_line

# events a sink can return from write(): the pipeline acts on them
NEXT_STYLE, PREV_STYLE, SNAPSHOT, PAUSE, QUIT = "next", "prev", "snapshot", "pause", "quit"


class Sink:
    description = "sink"
    shows_status = False  # watched by people: the pipeline repeats the last frame with the source's state

    def write(self, frame: np.ndarray, info: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """The run finished: publish what was written."""

    def abort(self) -> None:
        """The run was interrupted or failed: publish nothing (the previous output stays as it was)."""
        self.close()


def draw_hud(frame: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Overlay FPS, latency, style and top-k labels (in place, returns the frame)."""
    lines = []
    if info.get("fps"):
        lines.append(f"{info['fps']:.1f} FPS  latency {info.get('latency_ms', 0):.0f} ms")
    if info.get("style"):
        lines.append(f"style: {info['style']}")
    for pred in info.get("predictions", []):
        top = ", ".join(f"{lab} {p:.0%}" for lab, p in zip(pred.labels, pred.probs))
        lines.append(f"{pred.head}: {top}")
    if info.get("predictions") and info.get("predictions_age_ms") is not None:
        lines.append(f"classified {info['predictions_age_ms']:.0f} ms ago")
    if info.get("paused"):
        lines.append("paused (space)")
    if info.get("source_state", "ok") != "ok":  # a camera or stream that stopped giving frames
        lines.append(status_line(info))
    if not lines:
        return frame
    scale = max(0.4, min(frame.shape[1] / 1000, 1.0))
    lh = int(22 * scale / 0.6)
    box_h = lh * len(lines) + 8
    roi = frame[:box_h, : min(frame.shape[1], int(560 * scale / 0.6))]
    cv2.convertScaleAbs(roi, dst=roi, alpha=0.45)
    for i, text in enumerate(lines):
        cv2.putText(frame, text, (6, lh * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame

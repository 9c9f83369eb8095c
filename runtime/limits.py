"""How big a user may ask for: every user-sized option is checked here before anything is allocated.

A number on the command line (``stylize --size``, ``generate -n`` / ``--scale``, ``--source-size``,
``--threads``) can ask for more memory than the device has; it is refused with exit 2 naming the
allowed range, computed from the model's own limits and a memory budget:

* the budget is ``ARTCAM_MEMORY_MB`` megabytes (default 2048): what one run may plan to hold;
* stylizing costs about ``STYLIZE_BYTES_PER_PIXEL`` bytes per working pixel (peak RSS of
  ``artcam stylize --size`` with the shipped stylizer grows by ~131 B per pixel between 1024 and
  2048), so the longest side it may work at is ``sqrt(budget / that)`` for a square frame, and never
  more than the model's ``max_size``;
* a generated grid holds each image (upscaled) about three times over (the images, the grid, the
  encoded file) in uint8 BGR.
"""

from __future__ import annotations

import math
import os

from .errors import InputError

MEMORY_ENV = "ARTCAM_MEMORY_MB"
DEFAULT_MEMORY_MB = 2048
STYLIZE_BYTES_PER_PIXEL = 132
FRAME_BYTES_PER_PIXEL = 3 * 8  # uint8 BGR, a few frames in flight (capture, queues, HUD, encoders)
GRID_COPIES = 3
MAX_GENERATE_N = 1024  # images in one `artcam generate`
MAX_IMAGE_SIDE = 16384  # px, any one image artcam writes (the largest JPEG is 65535)
MAX_THREADS = 256
GENERATE_BATCH = 64  # latents per inference call: the generator's activations stay bounded whatever -n is


def memory_budget() -> int:
    """The budget in bytes (``ARTCAM_MEMORY_MB``; a bad value is exit 2, not a silent default)."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if not raw:
        return DEFAULT_MEMORY_MB << 20
    try:
        mb = int(raw)
    except ValueError:
        mb = 0
    if mb < 64:
        raise InputError(f"{MEMORY_ENV}={raw!r} is not a whole number of megabytes >= 64")
    return mb << 20


def _over(what: str, value: int, low: int, high: int, why: str) -> InputError:
    return InputError(f"{what} {value} is outside the allowed range {low}..{high} ({why})",
                      f"give {what} in {low}..{high}" + (f", or raise {MEMORY_ENV}" if "budget" in why else ""))


def stylize_side_limit(model_max: int) -> tuple[int, str]:
    """The longest side (px) a stylizer may work at, and which limit sets it."""
    by_budget = int(math.sqrt(memory_budget() / STYLIZE_BYTES_PER_PIXEL)) // 32 * 32
    if model_max <= by_budget:
        return model_max, "this model's largest input"
    return by_budget, f"a {memory_budget() >> 20} MB memory budget at ~{STYLIZE_BYTES_PER_PIXEL} bytes per pixel"


def check_stylize_size(size: int | None, model_min: int, model_max: int) -> None:
    """``--size`` inside the model's range and the memory budget."""
    if size is None:
        return
    high, why = stylize_side_limit(model_max)
    if not model_min <= size <= high:
        raise _over("--size", size, model_min, high, why if size > high else "this model's smallest input")


def check_stylize_frame(h: int, w: int) -> None:
    """A frame (after ``--size``) the stylizer would work on must fit the budget; checked before any
    resize or tensor is allocated."""
    need = h * w * STYLIZE_BYTES_PER_PIXEL
    if need > memory_budget():
        high, _ = stylize_side_limit(1 << 30)
        raise InputError(f"a {w}x{h} frame needs ~{need >> 20} MB to stylize, over the {memory_budget() >> 20} MB "
                         f"memory budget", f"pass --size N (N <= {high}) or raise {MEMORY_ENV}")


def check_frame_size(size: tuple[int, int] | None, what: str = "--source-size") -> None:
    """A frame size a source will produce (camera request, ``sample``)."""
    if size is None:
        return
    h, w = size
    high = int(math.sqrt(memory_budget() / FRAME_BYTES_PER_PIXEL))
    if h * w * FRAME_BYTES_PER_PIXEL > memory_budget():
        raise InputError(f"{what} {h}x{w} is over the {memory_budget() >> 20} MB memory budget "
                         f"(at most {high}x{high} pixels' worth)", f"use a smaller {what} or raise {MEMORY_ENV}")


def check_generate(n: int, image_side: int, scale: int) -> None:
    """``generate -n`` and ``--scale`` for a generator whose images are ``image_side`` px square."""
    if not 1 <= n <= MAX_GENERATE_N:
        raise _over("-n", n, 1, MAX_GENERATE_N, "images per run")
    max_scale = max(1, MAX_IMAGE_SIDE // image_side)
    if not 1 <= scale <= max_scale:
        raise _over("--scale", scale, 1, max_scale, f"a {image_side} px image is at most {MAX_IMAGE_SIDE} px upscaled")
    side = image_side * scale
    budget = memory_budget()
    need = n * GRID_COPIES * 3 * side * side
    if need > budget:
        max_n = budget // (GRID_COPIES * 3 * side * side)
        max_scale = int(math.sqrt(budget / (GRID_COPIES * 3 * n))) // image_side
        options = [f"-n 1..{max_n} at --scale {scale}"] if max_n >= 1 else []
        options += [f"--scale 1..{max_scale} at -n {n}"] if max_scale >= 1 else []
        raise InputError(f"-n {n} at --scale {scale} is outside the allowed range: {n} images of {side} px need "
                         f"~{need >> 20} MB, over the {budget >> 20} MB memory budget",
                         f"use {' or '.join(options) or 'a smaller -n and --scale'}, or raise {MEMORY_ENV}")


def check_threads(threads: int) -> None:
    if threads > MAX_THREADS:
        raise _over("--threads", threads, 0, MAX_THREADS, "threads per inference session")

"""Which precision of a stylizer runs faster here: a short probe at start-up, for ``live`` and ``demo``.

A shipped stylizer may have an INT8 twin beside it (``stylizer_nano_int8.onnx``, made by ``artcam export
--int8``). Whether INT8 is faster depends on the CPU (fast int8 dot products such as VNNI make it so;
elsewhere it can be slower than FP32), so ``--precision auto`` times both before the first frame, alternating,
on the run's frame size (``--source-size``, else 480x640), and keeps the faster. Its answer and timings go into the run's
summary. INT8 stays close to FP32 (the export checks PSNR against it) but is not bit-identical, so file
commands (``stylize``) keep FP32 and its output reproducible.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError
from .tasks import Stylizer

PRECISIONS = ("auto", "fp32", "int8")
INT8_SUFFIX = "_int8"
PROBE_RUNS = 4  # timed runs of each, alternating, after one untimed run of each


def int8_twin(model: Path) -> Path | None:
    """The INT8 export shipped beside ``model`` (``NAME_int8.onnx``), if there is one."""
    if model.stem.endswith(INT8_SUFFIX):
        return None
    p = model.with_name(f"{model.stem}{INT8_SUFFIX}{model.suffix}")
    return p if p.is_file() else None


def probe(stylizers: dict[str, Stylizer], shape: tuple[int, int], runs: int = PROBE_RUNS) -> dict[str, float]:
    """Median ms of ``stylize`` for each, on a mid-grey frame of ``shape``, alternating so that other load on
    the machine hits both alike."""
    frame = np.full((*shape, 3), 128, np.uint8)
    times: dict[str, list[float]] = {k: [] for k in stylizers}
    for i in range(runs + 1):
        for k, s in stylizers.items():
            t = time.perf_counter()
            s.stylize(frame)
            if i:  # the first run of each pays one-time costs
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def choose(precision: str, fp32: Stylizer, make_twin: Callable[[Path], Stylizer], shape: tuple[int, int],
           ) -> tuple[Stylizer, dict]:
    """The stylizer to run for ``--precision`` and, for the summary, its model file (and the probe's
    timings when one decided).

    ``fp32``: the stylizer as loaded; ``make_twin(path)`` loads its INT8 twin the same way. ``auto``
    probes only a twin that runs on the CPU like ``fp32`` does (a GPU provider has its own precisions);
    the stylizer not kept is closed.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    path = Path(fp32.model.path)
    twin = int8_twin(path)
    if precision == "fp32" or (precision == "auto" and (twin is None or getattr(fp32.runner, "device", "") != "cpu")):
        return fp32, {"model": path.name}
    if twin is None:
        raise InputError(f"--precision int8: {path.name} has no INT8 version beside it",
                         f"make one with `artcam export {path} --int8 -o {path.with_name(path.stem + INT8_SUFFIX)}.onnx`")
    int8 = make_twin(twin)
    if precision == "int8":
        fp32.close()
        return int8, {"model": twin.name}
    ms = probe({"fp32": fp32, "int8": int8}, shape)
    keep, drop = (int8, fp32) if ms["int8"] < ms["fp32"] else (fp32, int8)
    drop.close()
    return keep, {"model": Path(keep.model.path).name, "probe_ms": {k: round(v, 2) for k, v in ms.items()}}

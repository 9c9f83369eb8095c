"""The runner interface every backend implements (after Polygraphy's runners).

``activate()`` loads and allocates, ``infer()`` maps input names to arrays, ``deactivate()`` frees.
Public methods check state and inputs; backends override only the ``*_impl`` methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints for fixed dims, str or None for dynamic ones
    dtype: np.dtype

    def accepts(self, arr: np.ndarray) -> str | None:
        """Why ``arr`` does not fit this spec, or None when it does."""
        if arr.dtype != self.dtype:
            return f"input {self.name!r} wants dtype {self.dtype}, got {arr.dtype}"
        if len(arr.shape) != len(self.shape):
            return f"input {self.name!r} wants {len(self.shape)} dims {self.shape}, got shape {arr.shape}"
        for want, got in zip(self.shape, arr.shape):
            if isinstance(want, int) and want >= 0 and want != got:
                return f"input {self.name!r} wants shape {self.shape}, got {arr.shape}"
        return None


class Runner:
    """Base runner: lifecycle, input checks and timing shared by all backends."""

    name = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self.last_latency_ms = float("nan")
        self.device = "unknown"

    # -- lifecycle ------------------------------------------------------------------------------
    def activate(self) -> "Runner":
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> "Runner":
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # -- metadata -------------------------------------------------------------------------------
    @property
    def input_specs(self) -> list[TensorSpec]:
        self._check_active()
        return self.input_specs_impl()

    @property
    def output_specs(self) -> list[TensorSpec]:
        self._check_active()
        return self.output_specs_impl()

    # -- inference ------------------------------------------------------------------------------
    def infer(self, feeds: Mapping[str, np.ndarray] | np.ndarray, check: bool = True) -> dict[str, np.ndarray]:
        """Run once. ``feeds`` maps input names to arrays (a bare array for single-input models).

        Returns output name -> array. Backends may reuse output buffers between calls: copy what
        you keep past the next call.
        """
        self._check_active()
        specs = self.input_specs_impl()
        if isinstance(feeds, np.ndarray):
            if len(specs) != 1:
                raise InputError(f"model has {len(specs)} inputs {[s.name for s in specs]}; pass a dict")
            feeds = {specs[0].name: feeds}
        if check:
            names = {s.name for s in specs}
            missing = names - set(feeds)
            if missing:
                raise InputError(f"missing model inputs {sorted(missing)}; the model takes {sorted(names)}")
            extra = set(feeds) - names
            if extra:
                raise InputError(f"unknown model inputs {sorted(extra)}; the model takes {sorted(names)}")
            for s in specs:
                why = s.accepts(feeds[s.name])
                if why:
                    raise InputError(why)
        t0 = time.perf_counter()
        out = self.infer_impl(feeds)
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        return out

    def warmup(self, feeds: Mapping[str, np.ndarray] | np.ndarray, iterations: int = 2) -> None:
        """Run a few times so one-time costs (allocation, kernel selection) are paid before timing."""
        for _ in range(iterations):
            self.infer(feeds)

    def _check_active(self) -> None:
        if not self.is_active:
            raise RuntimeError(f"{self.name} runner is not active; call activate() or use it as a context manager")

    # -- for backends ---------------------------------------------------------------------------
    def activate_impl(self) -> None:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        raise NotImplementedError

    def input_specs_impl(self) -> list[TensorSpec]:
        raise NotImplementedError

    def output_specs_impl(self) -> list[TensorSpec]:
        raise NotImplementedError

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

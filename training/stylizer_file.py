"""A stylizer's PyTorch net from an artcam ONNX file, and warm starts from another net.

An exported stylizer keeps every parameter as an ONNX initializer under its PyTorch name, so the file
alone rebuilds the net: ``artcam style add`` grows a shipped model this way, and a recipe can distil
from a shipped model (``loss.distill.teacher``) or start a smaller net from its matching layers
(``net.init_from``) when the PyTorch checkpoint that made it is not at hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from artcam.runtime.errors import InputError
from artcam.runtime.modelfile import read_model_file
from artcam.runtime.zoo import DEFAULT_STYLIZER
from artcam.training.stylizer_nets import StylizerConfig, StylizerNet, available_sizes, config_for


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:  # corrupt or truncated protobuf
        raise InputError(f"cannot read model {path}: {e}", "pass a stylizer made by artcam") from e
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def load_stylizer(path: Path) -> tuple[StylizerNet, Any]:
    """The PyTorch net of an artcam ONNX stylizer, weights read by name from its initializers.

    The net's layout comes from the file's provenance (``net``, written by ``artcam style add``) or, for
    the shipped files, from the registered size whose parameters match the file's names and shapes."""
    path = Path(path)
    _, meta = read_model_file(path)
    if meta is None or meta.task != "stylize" or not meta.styles:
        raise InputError(f"{path} is not an artcam multi-style stylizer", f"add styles to {DEFAULT_STYLIZER} "
                         "or to a model made by `artcam style add`")
    weights = _initializers(path)
    n = len(meta.styles)
    candidates = []
    if isinstance(meta.provenance.get("net"), dict):
        candidates.append(StylizerConfig.from_dict(dict(meta.provenance["net"], num_styles=n)))
    candidates += [config_for(size, n) for size in available_sizes()]
    for cfg in candidates:
        net = StylizerNet(cfg)
        state = net.state_dict()
        if set(state) == set(weights) and all(tuple(state[k].shape) == weights[k].shape for k in state):
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            return net.eval(), meta
    raise InputError(f"{path}: its layers match no stylizer layout this version knows",
                     f"add styles to {DEFAULT_STYLIZER} or to a model made by `artcam style add`")


def copy_matching(dst: torch.nn.Module, src: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``src`` whose name and shape ``dst`` shares; return the names copied.

    A smaller net registered beside a larger one keeps the larger one's names for the layers they share
    (its low-resolution core, the style rows), so those start where the larger net ended and only the
    layers that differ start from scratch."""
    state = dst.state_dict()
    same = [k for k, v in src.items() if k in state and tuple(state[k].shape) == tuple(v.shape)]
    dst.load_state_dict({**state, **{k: src[k].detach().clone() for k in same}})
    return same

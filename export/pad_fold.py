"""Fold explicit zero ``Pad`` nodes into the convolution they feed, before INT8 quantisation.

Exporters of TensorFlow-style "same" padding (EfficientNet-Lite's stride-2 convolutions) write a
``Pad`` in front of a ``Conv``. In FP32, ONNX Runtime fuses the pair; in a Q/DQ graph it cannot (the
``Pad`` sits between a DequantizeLinear and a QuantizeLinear), so every such ``Pad`` runs in FP32 with a
dequantise before and a quantise after. Measured on ``classifier_lite0`` (5 such pairs, 2-core AVX-512
VNNI CPU): Pad, QuantizeLinear and DequantizeLinear were 30% of the INT8 model's kernel time. Folding
the pads into the ``Conv``'s own ``pads`` attribute is exact (zero padding either way) and lets
``QLinearConv`` pad with the activation's zero point itself.
"""

from __future__ import annotations

import numpy as np


def fold_pads_into_convs(model) -> list[str]:
    """Fold, in place, every constant-mode zero ``Pad`` of ``model`` (an ``onnx.ModelProto``) whose
    pads are an initializer, touch only spatial axes, and whose only reader is a ``Conv`` with
    explicit pads. Returns the names of the folded ``Pad`` nodes."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    readers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    folded, drop = [], set()
    for p in g.node:
        if p.op_type != "Pad" or len(p.input) < 2 or p.input[1] not in inits or p.output[0] in outputs:
            continue
        mode = next((a.s.decode() for a in p.attribute if a.name == "mode"), "constant")
        if mode != "constant" or (len(p.input) > 3 and p.input[3]):
            continue  # other modes, or pads on chosen axes only
        if len(p.input) > 2 and p.input[2]:
            if p.input[2] not in inits or np.any(numpy_helper.to_array(inits[p.input[2]]) != 0):
                continue
        pads = numpy_helper.to_array(inits[p.input[1]]).astype(np.int64).reshape(-1)
        rank = len(pads) // 2
        if rank < 3 or np.any(pads[:2] != 0) or np.any(pads[rank:rank + 2] != 0) or np.any(pads < 0):
            continue
        convs = readers.get(p.output[0], [])
        if len(convs) != 1 or convs[0].op_type != "Conv":
            continue
        conv = convs[0]
        auto = next((a.s.decode() for a in conv.attribute if a.name == "auto_pad"), "NOTSET")
        if auto != "NOTSET" or conv.input[0] != p.output[0]:
            continue
        spatial = rank - 2
        old = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0] * (2 * spatial))
        new = [int(old[k] + pads[2 + k]) for k in range(spatial)] + \
              [int(old[spatial + k] + pads[rank + 2 + k]) for k in range(spatial)]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend(kept + [helper.make_attribute("pads", new)])
        conv.input[0] = p.input[0]
        drop.add(id(p))
        folded.append(p.name or p.output[0])
    if drop:
        kept_nodes = [n for n in g.node if id(n) not in drop]
        del g.node[:]
        g.node.extend(kept_nodes)
    return folded

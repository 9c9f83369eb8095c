"""Gather the styles added to copies of one stylizer (each by its own `artcam style add --into exp_NAME`, run
side by side) into one model: the shared weights must be identical, the added rows are concatenated.

    python tools/combine_styles.py runs/models_exp/exp_*.onnx -o runs/models_exp/added.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from artcam.runtime.cli import ArgParser, run_script
from artcam.training.style_add import grow
from artcam.training.stylize import export_checkpoint
from artcam.training.stylizer_file import load_stylizer


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python tools/combine_styles.py", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="user models made from the same base")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    nets = [load_stylizer(Path(m)) for m in a.models]
    first, meta0 = nets[0]
    base_styles = list(meta0.provenance["base"]["styles"])
    n = len(base_styles)
    added, rows, prov = [], [], {}
    for (net, meta), path in zip(nets, a.models):
        if list(meta.styles[:n]) != base_styles:
            p.error(f"{path} is not made from the same base")
        for k, v in net.state_dict().items():
            ref = first.state_dict()[k]
            same = torch.equal(v[:n], ref[:n]) if k.endswith((".gamma", ".beta")) else torch.equal(v, ref)
            if not same:
                p.error(f"{path}: {k} differs from {a.models[0]}'s")
        added += list(meta.styles[n:])
        rows.append({k: v[n:] for k, v in net.state_dict().items() if k.endswith((".gamma", ".beta"))})
        prov.update(meta.provenance.get("added", {}))
    big = grow(first, len(added) - (first.cfg.num_styles - n))
    state = big.state_dict()
    for k in state:
        if k.endswith((".gamma", ".beta")):
            state[k] = torch.cat([first.state_dict()[k][:n], *[r[k] for r in rows]])
    big.load_state_dict(state)
    out_prov = dict(meta0.provenance, added=prov, command="python tools/combine_styles.py " + " ".join(argv or sys.argv[1:]))
    export_checkpoint({"config": {"net": big.cfg.to_dict(), "styles": base_styles + added, "name": Path(a.output).stem},
                       "model": big.state_dict(), "provenance": out_prov, "step": 0}, a.output)
    print(f"wrote {a.output}: {', '.join(base_styles + added)}")
    return 0


if __name__ == "__main__":
    run_script(main)

"""The package's layers point one way: runtime <- export <- training, with benchmarks and serving on top.

Like the no-torch test in test_cli.py this guards a property of the whole package, here by reading the
source: every ``import`` / ``from ... import`` (at module level or inside functions), relative ones
resolved, and ``importlib.import_module("...")`` with a literal name. A lower layer importing a higher
one fails with the module and line. The same walk checks that there is one of each: one ONNX Runtime
session factory and one argument parser class; and that no two modules import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> layer; a module may import its own layer and the ones below it
LAYERS = {"runtime": 0, "export": 1, "training": 2, "benchmarks": 3, "serving": 3, "tools": 3}
PACKAGES = [d for d in LAYERS if (ROOT / d).is_dir()]


def modules() -> list[tuple[Path, str]]:
    """(file, dotted module name) for every .py file of the package folders."""
    out = []
    for top in PACKAGES:
        for f in sorted((ROOT / top).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((f, "artcam." + ".".join(parts)))
    return out


def imported_names(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of everything ``path`` imports, wherever the import sits."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            if not node.module:  # from . import sinks: the names are modules too
                found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            callee = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if callee in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "artcam" and parts[1] in LAYERS else None


def test_the_walk_sees_every_kind_of_import(tmp_path):
    f = tmp_path / "runtime" / "backends" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("import artcam.export.cli\nfrom ..errors import E\nfrom . import base\n"
                 "def g():\n    from artcam.training import common\n    importlib.import_module('artcam.benchmarks.cli')\n")
    names = [n for _, n in imported_names(f, "artcam.runtime.backends.x")]
    assert names == ["artcam.export.cli", "artcam.runtime.errors", "artcam.runtime.backends",
                     "artcam.runtime.backends.base", "artcam.training", "artcam.benchmarks.cli"]


def test_no_layer_imports_a_higher_one():
    assert PACKAGES[:3] == ["runtime", "export", "training"]
    bad = []
    for path, module in modules():
        own = layer_of(module)
        for line, name in imported_names(path, module):
            other = layer_of(name)
            if other is not None and LAYERS[other] > LAYERS[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {name} ({other} is above {own})")
    assert not bad, "imports against the layers (runtime <- export <- training <- benchmarks, serving):\n" \
        + "\n".join(bad)


def test_no_import_cycles():
    """Not even through imports inside functions (cli <-> pipeline_bench was one): each module's
    dependencies form a tree a reader can follow downwards."""
    mods = {m: p for p, m in modules()}
    deps: dict[str, set[str]] = {}
    for m, p in mods.items():
        deps[m] = set()
        for _, n in imported_names(p, m):
            while n and n not in mods:  # artcam.runtime.errors.ArtcamError -> artcam.runtime.errors
                n = n.rpartition(".")[0]
            if n and n != m and not mods[n].name == "__init__.py":
                deps[m].add(n)
    cycles, done = [], set()

    def visit(m, stack):
        if m in stack:
            cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in done:
            return
        for d in sorted(deps[m]):
            visit(d, stack + [m])
        done.add(m)

    for m in sorted(mods):
        visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _calls(attr: str) -> list[str]:
    """file:line of every call of ``<anything>.attr(...)`` or ``attr(...)`` in the package."""
    hits = []
    for path, _ in modules():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Attribute) and f.attr == attr) or (isinstance(f, ast.Name) and f.id == attr):
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


@pytest.mark.parametrize("call,home", [
    ("InferenceSession", "runtime/backends/onnxrt.py"),  # make_session / SessionFromOnnx
    ("SessionOptions", "runtime/backends/onnxrt.py"),  # session_options: spinning off everywhere
    ("ArgumentParser", "runtime/cli.py"),  # ArgParser: one line and exit 2 on bad arguments
])
def test_one_of_each(call, home):
    stray = [h for h in _calls(call) if not h.startswith(home + ":")]
    assert not stray, f"{call} is made outside {home} (use the helper there): {', '.join(stray)}"


def test_one_session_factory_turns_spinning_off(tmp_path):
    import tiny_models as tm

    from artcam.runtime.backends.onnxrt import make_session, session_options

    so = session_options(threads=2, opt_level="disable")
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    sess = make_session(tm.stylizer(tmp_path / "s.onnx"))
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"

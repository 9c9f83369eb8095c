"""The README's numbers, rendered from result files so that none is typed by hand.

The README (and docs/benchmarks.md, which lists the commands behind them) holds generated blocks, each between
two comment lines:

    <!-- numbers: stylizer_nano -->
    ...rendered from the card of that name in benchmarks/results/readme_cards.toml...
    <!-- /numbers -->

A card is a list of line templates. ``{FILE:KEY.SUB:FORMAT}`` is the value at ``KEY.SUB`` (list items by index)
in ``benchmarks/results/FILE.json``, formatted with ``FORMAT`` (a Python format spec, optional);
``{FILE:command}`` is the command line recorded in that file, the one that re-measures it
(``{FILE:command:sh}``: wrapped over lines for a shell block). Result files come
from the benchmark commands' ``--json`` (``result_file.write_result``) or the export's ``.report.json``.

    python -m artcam.benchmarks.readme_numbers            # rewrite the README's blocks from the files
    python -m artcam.benchmarks.readme_numbers --check    # exit 1 when the README and the files disagree
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from artcam.runtime.cli import ArgParser
from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIELD = re.compile(r"\{([\w.-]+):([\w.-]+)(?::([^{}]*))?\}")
BLOCK = re.compile(r"(<!-- numbers: ([\w.-]+) -->\n)(.*?)(<!-- /numbers -->)", re.S)


def lookup(doc: Any, key: str, where: str) -> Any:
    """``a.b.0`` in nested dicts and lists; a dict key may itself hold dots (``fox.mp4.ours.mean``)."""
    cur, parts = doc, key.split(".")
    while parts:
        for n in range(len(parts), 0, -1):  # the longest dotted name that is a key at this level
            part = ".".join(parts[:n])
            if isinstance(cur, dict) and part in cur:
                cur, parts = cur[part], parts[n:]
                break
            if n == 1 and isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur, parts = cur[int(part)], parts[1:]
                break
        else:
            raise ArtcamError(f"{where}: no {key!r} in the result file (stops at {parts[0]!r})",
                              "re-run the command that writes it, or fix the card's template")
    return cur


def recorded_command(doc: dict, where: str) -> str:
    """The command line a result file records: ``command`` (a string or, from `artcam bench`, a list) or
    ``argv`` (export reports)."""
    cmd = doc.get("command", doc.get("argv"))
    if isinstance(cmd, str):
        return cmd
    if isinstance(cmd, list):
        return " ".join(shlex.quote(str(a)) for a in cmd)
    raise ArtcamError(f"{where} records no command", "write result files with the benchmarks' --json")


def shell_wrap(cmd: str, width: int = 116) -> str:
    """A long command over several lines joined by `` \\``, each at most ``width`` characters where it can."""
    lines, cur = [], ""
    for word in map(shlex.quote, shlex.split(cmd)):
        if cur and len(cur) + 1 + len(word) > width - 2:
            lines.append(cur + " \\")
            cur = "    " + word
        else:
            cur = f"{cur} {word}" if cur else word
    return "\n".join([*lines, cur])


def render_line(template: str, results: Path, cache: dict[str, dict]) -> str:
    def value(m: re.Match) -> str:
        name, key, spec = m.group(1), m.group(2), m.group(3)
        if name not in cache:
            path = results / f"{name}.json"
            try:
                cache[name] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError as e:
                raise ArtcamError(f"result file {path} is missing", "run the command the card names") from e
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ArtcamError(f"result file {path} is not valid JSON ({e})", "re-run its command") from e
        where = f"{name}.json"
        if key == "command":
            cmd = recorded_command(cache[name], where)
            return shell_wrap(cmd) if spec == "sh" else cmd
        v = lookup(cache[name], key, where)
        try:
            return format(v, spec or "")
        except (TypeError, ValueError) as e:
            raise ArtcamError(f"{where}: {key}={v!r} does not take the format {spec!r}", "fix the card") from e

    return FIELD.sub(value, template)


def load_cards(path: Path) -> dict[str, list[str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ArtcamError(f"cannot read the cards {path}: {e}", "fix the TOML") from e
    return {name: list(card["lines"]) for name, card in data.items()}


def render(readme: str, cards: dict[str, list[str]], results: Path) -> str:
    """The README with every generated block re-rendered from the result files."""
    cache: dict[str, dict] = {}

    def block(m: re.Match) -> str:
        name = m.group(2)
        if name not in cards:
            raise ArtcamError(f"the README names a numbers block {name!r} that has no card",
                              f"cards: {', '.join(cards) or '(none)'}")
        body = "".join(render_line(t, results, cache) + "\n" for t in cards[name])
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(block, readme)


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="python -m artcam.benchmarks.readme_numbers", description=__doc__.splitlines()[0])
    p.add_argument("--readme", nargs="+", default=[str(REPO / "README.md"), str(REPO / "docs" / "benchmarks.md")],
                   help="the documents whose numbers blocks are rendered (default: README.md, docs/benchmarks.md)")
    p.add_argument("--results", default=str(RESULTS), help="folder of result files and readme_cards.toml")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a document is stale")
    args = p.parse_args(argv)
    results = Path(args.results)
    cards = load_cards(results / "readme_cards.toml")
    stale = 0
    for doc in map(Path, args.readme):
        text = doc.read_text(encoding="utf-8")
        new = render(text, cards, results)
        if args.check:
            if new != text:
                print(f"{doc} differs from the result files: run python -m artcam.benchmarks.readme_numbers",
                      file=sys.stderr)
                stale += 1
            else:
                print(f"{doc}: {len(BLOCK.findall(text))} numbers block(s) match the result files")
            continue
        if new != text:
            atomic_write_text(doc, new)
        print(f"{doc}: {len(BLOCK.findall(new))} numbers block(s) rendered")
    return 1 if stale else 0


if __name__ == "__main__":
    from artcam.runtime.cli import run_script

    run_script(main)

"""README numbers come from result files: rendering, the errors a stale or broken card gives, and the repo's README."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artcam.benchmarks import readme_numbers as rn
from artcam.benchmarks.result_file import command_line, write_result
from artcam.runtime.errors import ArtcamError

README = """# demo
<!-- numbers: card -->
stale text
<!-- /numbers -->
tail
"""


def _setup(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    results = tmp_path / "results"
    write_result(results / "speed.json", {"ours": {"median_ms": 31.84}, "size": [640, 480], "fox.mp4": {"mean": 3.351}},
                 "python -m artcam.benchmarks.stylizer_speed", ["--runs", "40", "--json", "a b.json"])
    (results / "readme_cards.toml").write_text("[card]\nlines = [" + ", ".join(json.dumps(x) for x in lines) + "]\n")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    return readme, results


def test_a_block_is_rendered_from_the_result_file_and_checked(tmp_path):
    readme, results = _setup(tmp_path, ["- **{speed:ours.median_ms:.1f} ms** at {speed:size.0}x{speed:size.1}",
                                        "  fox {speed:fox.mp4.mean:.2f} (`{speed:command}`)"])
    argv = ["--readme", str(readme), "--results", str(results)]
    assert rn.main([*argv, "--check"]) == 1  # the README still holds the hand-typed text
    assert rn.main(argv) == 0
    assert readme.read_text() == ("# demo\n<!-- numbers: card -->\n- **31.8 ms** at 640x480\n"
                                  "  fox 3.35 (`python -m artcam.benchmarks.stylizer_speed --runs 40 --json 'a b.json'`)\n"
                                  "<!-- /numbers -->\ntail\n")
    assert rn.main([*argv, "--check"]) == 0
    doc = json.loads((results / "speed.json").read_text())
    assert doc["environment"]["cpu"]["model"] and doc["environment"]["time_utc"]


@pytest.mark.parametrize("template, match", [
    ("{speed:ours.mean_ms}", "no 'ours.mean_ms'"),
    ("{speed:size.5}", "stops at '5'"),
    ("{missing:x}", "missing.json is missing"),
    ("{speed:ours:.1f}", "does not take the format"),
])
def test_a_broken_card_names_the_file_and_key(tmp_path, template, match):
    readme, results = _setup(tmp_path, [template])
    with pytest.raises(ArtcamError, match=match):
        rn.render(readme.read_text(), rn.load_cards(results / "readme_cards.toml"), results)


def test_a_block_without_a_card_is_an_error(tmp_path):
    readme, results = _setup(tmp_path, ["x"])
    with pytest.raises(ArtcamError, match="no card"):
        rn.render(README.replace("numbers: card", "numbers: other"), rn.load_cards(results / "readme_cards.toml"),
                  results)


def test_command_line_quotes_what_a_shell_needs_and_wraps_for_a_shell_block():
    cmd = command_line("prog", ["--size", "640x480", "a b", "x;y"])
    assert cmd == "prog --size 640x480 'a b' 'x;y'"
    assert rn.shell_wrap(cmd, width=20) == "prog --size \\\n    640x480 'a b' \\\n    'x;y'"
    long = command_line("python -m artcam.benchmarks.contact_sheet", ["--extra", "teacher=" + "t" * 60] * 3)
    assert all(len(line) <= 100 for line in rn.shell_wrap(long).splitlines())


def test_the_readme_numbers_match_the_committed_result_files():
    """Every generated block of README.md is what benchmarks/results/ says (re-render after re-measuring)."""
    assert "<!-- numbers: stylizer_nano -->" in (rn.REPO / "README.md").read_text()
    assert rn.main(["--check"]) == 0

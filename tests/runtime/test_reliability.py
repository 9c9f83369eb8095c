"""Issue 35, runtime side: the exit-code contract (0 / 1 / 2 / 130), outputs published only when
complete, stale partial files cleaned, validation at the edge, and flat memory in long runs.

The CLI runs as real subprocesses on real files (a tiny ONNX stylizer, generated videos and images).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime import cli
from artcam.runtime import sinks as S
from artcam.runtime.errors import InputError, Interrupted, SinkError
from artcam.runtime.fileio import (
    atomic_path,
    partial_prefix,
    remove_own_partials,
    sweep_stale_partials,
    write_image,
)
from artcam.runtime.pipeline import Pipeline, Reservoir
from artcam.runtime.sinks import NullSink
from artcam.runtime.sources import Source, open_source

pytestmark = pytest.mark.reliability

TINY = "tiny_style"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    tm.stylizer(d / f"{TINY}.onnx", styles=("warm", "cool"))
    return d


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A long-ish video (for interrupts), a short one, one cut in half, an image and bad images."""
    d = tmp_path_factory.mktemp("media")

    def video(path, n):
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
        for i in range(n):
            w.write(np.full((48, 64, 3), (i * 3) % 250, np.uint8))
        w.release()
        return path

    video(d / "long.avi", 600)
    video(d / "short.avi", 40)
    data = (d / "short.avi").read_bytes()
    (d / "cut.avi").write_bytes(data[: len(data) // 2])
    write_image(d / "ok.png", np.full((48, 64, 3), 120, np.uint8))
    rng = np.random.default_rng(0)
    ok, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    (d / "truncated.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 3])
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("this is not a picture\n")
    return d


def _env(zoo):
    env = dict(os.environ)
    env["ARTCAM_MODELS"] = str(zoo)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("DISPLAY", None)
    env.pop("ARTCAM_DEBUG", None)
    return env


def record(args, proc=None, hang: bool = False):
    """Add one CLI run to the session's reliability table (conftest.RELIABILITY_PROBES)."""
    import conftest

    folders = {Path(a).parent for a in map(str, args) if "/" in a and Path(a).parent.is_dir()
               and not str(Path(a).parent).startswith(("/proc", "/sys"))}
    err = proc.stderr or "" if proc is not None else ""
    lines = [x for x in err.splitlines() if x.startswith("artcam") and "error" in x]
    rc = None if proc is None else proc.returncode
    conftest.RELIABILITY_PROBES.append({
        "args": [str(a) for a in args], "rc": rc, "traceback": "Traceback" in err, "hang": hang,
        "clear_error": rc == 2 and "Traceback" not in err and len(lines) == 1,
        "partials": sum(len(_partials(f)) for f in folders)})
    return proc


def artcam(args, zoo, timeout=120, cwd=None):
    cmd = [sys.executable, "-m", "artcam.runtime.cli", *map(str, args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(zoo), timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        record(args, hang=True)
        raise
    return record(args, p)


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def _one_line_error(p, code=2, *needles):
    assert p.returncode == code, f"exit {p.returncode}\n{p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    errors = [x for x in p.stderr.splitlines() if x.startswith("artcam") and "error" in x]
    assert len(errors) == 1, p.stderr
    for n in needles:
        assert n in errors[0], errors[0]


# --- 1. the exit-code contract and outputs published only when complete --------------------------


def _start_and_wait_for_partial(args, zoo, out_dir: Path, timeout=60.0):
    proc = subprocess.Popen([sys.executable, "-m", "artcam.runtime.cli", *map(str, args)], env=_env(zoo),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not _partials(out_dir):
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            out, err = proc.communicate()
            proc.kill()
            pytest.fail(f"no partial file appeared (exit {proc.returncode}):\n{err}")
        time.sleep(0.01)
    time.sleep(0.2)  # well inside the run: a few dozen of the 600 frames are written
    proc.artcam_args = args
    return proc


def _wait(proc) -> tuple[str, str]:
    """Collect an interrupted run's output and add it to the reliability table."""
    out, err = proc.communicate(timeout=60)
    record(proc.artcam_args, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return out, err


def test_sigint_on_video_stylize_exits_130_and_publishes_nothing(zoo, media, tmp_path):
    out = tmp_path / "styled.avi"
    out.write_bytes(b"the previous, complete output")
    # --size 1024 makes each frame slow enough (tens of ms) to interrupt mid-run
    proc = _start_and_wait_for_partial(["stylize", media / "long.avi", "--style-model", TINY, "--size", "1024",
                                        "-o", out], zoo, tmp_path)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = _wait(proc)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "not written" in stderr and "Traceback" not in stderr
    assert out.read_bytes() == b"the previous, complete output"  # untouched
    assert _partials(tmp_path) == []  # the temporary file is gone
    assert stdout == ""  # no summary that a script could take for a finished run

    out.unlink()  # and with nothing there before: still nothing under the final name
    proc = _start_and_wait_for_partial(["stylize", media / "long.avi", "--style-model", TINY, "--size", "1024",
                                        "-o", out], zoo, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = _wait(proc)
    assert proc.returncode == 143, stderr
    assert not out.exists() and _partials(tmp_path) == []


def test_sigkill_leaves_a_partial_that_the_next_run_removes(zoo, media, tmp_path):
    out = tmp_path / "styled.avi"
    proc = _start_and_wait_for_partial(["stylize", media / "long.avi", "--style-model", TINY, "--size", "1024",
                                        "-o", out], zoo, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    left = _partials(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".artcam-{proc.pid}@") and not out.exists()
    p = artcam(["stylize", media / "short.avi", "--style-model", TINY, "-o", out], zoo)
    assert p.returncode == 0, p.stderr
    assert "removed 1 stale partial file" in p.stderr and left[0] in p.stderr
    assert _partials(tmp_path) == [] and out.stat().st_size > 0
    assert len([f for f, _ in open_source(str(out))]) == 40


def test_stale_sweep_keeps_files_of_live_processes(tmp_path, capsys):
    mine = tmp_path / f"{partial_prefix('x')}abc.partial.mp4"
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    dead = tmp_path / partial_prefix("y").replace(f"-{os.getpid()}@", f"-{dead_pid}@")
    dead = dead.with_name(dead.name + "abc.partial.png")
    elsewhere = tmp_path / f".artcam-{dead_pid}@someotherhost-z.abc.partial.png"  # a shared file system
    other = tmp_path / ".y.abc.partial.png"  # not ours (no artcam prefix): left alone
    for f in (mine, dead, elsewhere, other):
        f.write_bytes(b"x")
    removed = sweep_stale_partials(tmp_path)
    assert removed == [dead] and not dead.exists()
    assert mine.exists() and other.exists() and elsewhere.exists()
    assert "removed 1 stale partial file" in capsys.readouterr().err
    assert sweep_stale_partials(tmp_path) == []  # once per folder and process


def test_interrupt_handler_removes_this_process_partials_only(tmp_path):
    """A Ctrl-C landing between mkstemp and atomic_path's guard would leave a temporary file; the CLI's
    interrupt handler removes this process's ones in every folder it wrote to, and nobody else's."""
    write_image(tmp_path / "done.png", np.zeros((4, 4, 3), np.uint8))  # registers the folder
    mine = tmp_path / f"{partial_prefix('frame')}abc.partial.png"
    theirs = tmp_path / f".artcam-{os.getpid() + 1}@someotherhost-frame.abc.partial.png"
    for f in (mine, theirs):
        f.write_bytes(b"x")
    assert remove_own_partials() == [mine]
    assert not mine.exists() and theirs.exists() and (tmp_path / "done.png").exists()


def test_atomic_path_on_error_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            assert tmp.name.startswith(partial_prefix("model")) and tmp.suffix == ".onnx"
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and _partials(tmp_path) == []


class _FailingSource(Source):
    description = "fails"

    def __init__(self, after):
        super().__init__()
        self.after = after

    def __iter__(self):
        for i in range(self.after):
            yield np.full((16, 16, 3), i, np.uint8), time.perf_counter()
        raise RuntimeError("camera unplugged")


def test_sink_abort_and_failed_runs_publish_nothing(tmp_path):
    out = tmp_path / "v.avi"
    sink = S.open_sink(str(out))
    for _ in range(3):
        sink.write(np.zeros((16, 16, 3), np.uint8), {})
    sink.abort()
    assert not out.exists() and _partials(tmp_path) == []
    img = tmp_path / "one.png"
    one = S.open_sink(str(img))
    one.write(np.zeros((16, 16, 3), np.uint8), {})
    one.abort()
    assert not img.exists()


def test_guarded_exit_codes(capsys):
    assert cli.guarded(lambda: 0) == 0
    assert cli.guarded(lambda: (_ for _ in ()).throw(InputError("bad thing", "do this"))) == 2
    assert capsys.readouterr().err == "artcam: error: bad thing (do this)\n"
    assert cli.guarded(lambda: (_ for _ in ()).throw(Interrupted("after 3 frames; x.mp4 was not written"))) == 130
    assert capsys.readouterr().err == "artcam: interrupted; after 3 frames; x.mp4 was not written\n"

    def bug():
        return {}["missing"]

    assert cli.guarded(bug, debug=False) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err and "Traceback" not in err
    assert cli.guarded(bug, debug=True) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error: KeyError" in err.splitlines()[-1]


def test_debug_flag_is_taken_out_of_the_arguments(monkeypatch):
    monkeypatch.delenv("ARTCAM_DEBUG", raising=False)
    argv = ["stylize", "x.png", "--debug", "-o", "y.png", "--", "--debug"]
    assert cli._pop_debug(argv) is True and argv == ["stylize", "x.png", "-o", "y.png", "--", "--debug"]
    assert cli._pop_debug(["info"]) is False
    monkeypatch.setenv("ARTCAM_DEBUG", "1")
    assert cli._pop_debug(["info"]) is True


def test_internal_error_is_one_line_and_debug_shows_the_traceback(zoo, tmp_path):
    # a bug inside a command (stood in for by a patched verb): exit 1 with one line, not a traceback
    code = ("import sys; from artcam.runtime import cli, commands\n"
            "def boom(argv): raise ZeroDivisionError('division by zero')\n"
            "commands.info_main = boom\n"
            "sys.exit(cli.main(sys.argv[1:]))\n")
    run = lambda *a: subprocess.run([sys.executable, "-c", code, *a], capture_output=True, text=True,  # noqa: E731
                                    env=_env(zoo), timeout=60)
    p = run("info")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "artcam: internal error: ZeroDivisionError: division by zero " \
                               "(run again with --debug for the traceback)"
    p = run("info", "--debug")
    assert p.returncode == 1 and "Traceback" in p.stderr and "ZeroDivisionError" in p.stderr


# --- 2. validation at the edge -------------------------------------------------------------------


@pytest.mark.parametrize("style", ["warm:nan", "warm:inf", "cool:-0.5,warm:1", "warm:0,cool:0", "warm:1e6",
                                   "warm:6,cool:6"])
def test_bad_style_weights_exit_2_naming_the_option(zoo, media, tmp_path, style):
    out = tmp_path / "o.png"
    p = artcam(["stylize", media / "ok.png", "--style-model", TINY, "--style", style, "-o", out], zoo)
    _one_line_error(p, 2, "--style")
    assert not out.exists()


def test_good_style_mix_still_works(zoo, media, tmp_path):
    out = tmp_path / "o.png"
    p = artcam(["stylize", media / "ok.png", "--style-model", TINY, "--style", "warm:0.7,cool:0.3", "-o", out], zoo)
    assert p.returncode == 0, p.stderr
    assert out.exists()


@pytest.mark.parametrize("args,option", [
    (["--size", "0"], "--size"), (["--size", "-5"], "--size"), (["--strength", "nan"], "--strength"),
    (["--strength", "1.5"], "--strength"), (["--frames", "0"], "--frames"), (["--duration-s", "inf"], "--duration-s"),
    (["--threads", "-1"], "--threads"), (["--std", "0.2,0,0.2"], "--std"), (["--mean", "nan,0,0"], "--mean"),
])
def test_bad_numeric_options_exit_2(zoo, media, tmp_path, args, option):
    p = artcam(["stylize", media / "ok.png", "--style-model", TINY, "-o", tmp_path / "o.png", *args], zoo)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"argument {option}" in p.stderr and p.stderr.count("\n") == 1, p.stderr


@pytest.mark.parametrize("args,needle", [
    (["classify", "ok.png", "--top-k", "0"], "argument --top-k"),
    (["generate", "-n", "0"], "argument -n"),
    (["generate", "--scale", "0"], "argument --scale"),
    (["demo", "--frames", "0"], "argument --frames"),
    (["live", "--frames", "-3"], "argument --frames"),
    (["live", "--source-fps", "nan"], "argument --source-fps"),
    (["live", "--classify-every", "0"], "argument --classify-every"),
    (["live", "--source-size", "0x10"], "argument --source-size"),
    (["export", "nonexistent.pt", "-o", "x.onnx"], "source not found"),
    (["bench", "--bogus"], "unrecognized arguments"),
])
def test_every_command_answers_bad_input_with_exit_2(zoo, media, args, needle):
    p = artcam(args, zoo, cwd=media)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert needle in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr


@pytest.mark.parametrize("target", ["/proc/artcam_out.png", "/proc/artcam_out.avi", "/proc/self/o.png",
                                    "/sys/artcam_out.png", "/proc/artcam_dir/"])
def test_unwritable_output_is_one_line(zoo, media, target):
    p = artcam(["stylize", media / "ok.png", "--style-model", TINY, "-o", target], zoo)
    _one_line_error(p, 2)


@pytest.mark.parametrize("name", ["empty.jpg", "text.jpg", "truncated.jpg"])
def test_one_unreadable_image_exits_2(zoo, media, tmp_path, name):
    out = tmp_path / "o.png"
    p = artcam(["stylize", media / name, "--style-model", TINY, "-o", out], zoo)
    _one_line_error(p, 2, "no readable frames")
    assert "nan" not in p.stdout and not out.exists()


def test_folder_with_unreadable_images_counts_them(zoo, media, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("ok.png", "empty.jpg", "text.jpg", "truncated.jpg"):
        (src / name).write_bytes((media / name).read_bytes())
    p = artcam(["stylize", src, "--style-model", TINY, "-o", tmp_path / "out", "--json"], zoo)
    assert p.returncode == 0, p.stderr
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert stats["frames"] == 1 and stats["skipped"] == 3
    assert "skipped 3 unreadable image(s)" in p.stderr
    p = artcam(["stylize", src, "--style-model", TINY, "-o", tmp_path / "out2"], zoo)
    assert "unreadable 3" in p.stdout  # the text summary too


def test_truncated_video_says_so_in_one_line(zoo, media, tmp_path):
    out = tmp_path / "o.avi"
    p = artcam(["stylize", media / "cut.avi", "--style-model", TINY, "-o", out], zoo)
    assert p.returncode == 0, p.stderr
    lines = [x for x in p.stderr.splitlines() if "declared frames" in x]
    assert len(lines) == 1 and "of its 40 declared frames" in lines[0] and "truncated" in lines[0]
    assert out.exists()
    p = artcam(["stylize", media / "short.avi", "--style-model", TINY, "-o", out], zoo)
    assert p.returncode == 0 and "declared frames" not in p.stderr


# --- 3. bounded memory in long runs ----------------------------------------------------------------


class _Fast(Source):
    description = "fast"

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.frame = np.zeros((2, 2, 3), np.uint8)

    def __iter__(self):
        for _ in range(self.n):
            yield self.frame, time.perf_counter()


def _ident(frame):
    return frame, {}


def test_reservoir_is_exact_then_fixed_size():
    r = Reservoir(size=100, seed=1)
    for v in range(100):
        r.add(float(v))
    assert sorted(r.values()) == list(range(100)) and r.mean == 49.5
    for v in range(100, 100_000):
        r.add(float(v))
    assert len(r.values()) == 100 and r.n == 100_000 and r.min == 0 and r.max == 99_999
    assert 35_000 < np.median(r.values()) < 65_000  # a uniform sample of the whole run


def test_pipeline_memory_is_flat_in_long_runs():
    """The statistics of a 12,000-frame run take no more memory than those of a 2,000-frame run
    (per-frame records cost about 0.4 KB each before: 4 MB for the difference)."""

    def retained(n):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        stats = Pipeline(_Fast(n), _ident, NullSink(), live=False).run()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert stats.frames == n
        return stats, after - before

    short, small = retained(2_000)
    long, big = retained(12_000)
    assert len(long.records) <= 512 and all(len(r) <= 8192 for r in long.stages.values())
    assert big - small < 300_000, (small, big)
    d = long.to_dict()
    assert d["frames"] == 12_000 and set(d["latency_ms"]) == {"queue", "pre", "infer", "post", "output", "e2e"}
    assert all(np.isfinite(v["p99"]) for v in d["latency_ms"].values())


def test_live_sample_summary_numbers_still_reported(zoo, tmp_path):
    p = artcam(["live", "--source", "sample", "--source-size", "48x64", "--style-model", TINY, "--frames", "15",
                "-o", "null", "--json"], zoo)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert d["frames"] == 15 and d["latency_ms"]["e2e"]["p50"] > 0 and d["fps"] > 0


def test_live_to_file_interrupted_keeps_an_open_ended_recording(zoo, tmp_path):
    """Ctrl-C is how a camera recording ends: the file is kept (exit 130 says how it ended); a run with
    --frames that is cut short is incomplete and publishes nothing."""
    out = tmp_path / "rec.avi"
    proc = _start_and_wait_for_partial(["live", "--source", "sample", "--source-size", "48x64", "--style-model",
                                        TINY, "-o", out, "--json"], zoo, tmp_path)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = _wait(proc)
    assert proc.returncode == 130 and "holds them" in stderr, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["stopped_by"] == "interrupted"
    assert out.exists() and _partials(tmp_path) == []
    out.unlink()
    proc = _start_and_wait_for_partial(["live", "--source", "sample", "--source-size", "48x64", "--style-model",
                                        TINY, "-o", out, "--frames", "100000"], zoo, tmp_path)
    proc.send_signal(signal.SIGINT)
    _, stderr = _wait(proc)
    assert proc.returncode == 130 and "not written" in stderr, stderr
    assert not out.exists() and _partials(tmp_path) == []


def test_unexpected_pipeline_failure_publishes_nothing(tmp_path):
    out = tmp_path / "v.avi"
    sink = S.open_sink(str(out))
    stats = None
    with pytest.raises(RuntimeError, match="unplugged"):
        try:
            stats = Pipeline(_FailingSource(5), _ident, sink, live=False).run()
        finally:
            S.finish(sink, complete=stats is not None)
    assert not out.exists() and _partials(tmp_path) == []


def test_sink_error_type_for_unwritable_atomic_write():
    with pytest.raises(SinkError):
        write_image("/proc/artcam_x.png", np.zeros((4, 4, 3), np.uint8))


def test_int8_scratch_lives_in_one_artcam_folder_and_killed_runs_are_swept(tmp_path, monkeypatch, capsys):
    """INT8 export's scratch (and ONNX Runtime's temp files) go under <tmp>/artcam/int8-<pid>@<host>-*; a folder
    whose process is gone is removed by the next run, a live one is left alone."""
    import tempfile as tf

    from artcam.runtime import fileio

    monkeypatch.setattr(tf, "tempdir", str(tmp_path))
    root = fileio.work_root()
    assert root == tmp_path / "artcam"
    root.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / f"int8-{dead.pid}@{fileio._HOST}-abc"
    (stale / "ort.quant.x").mkdir(parents=True)
    live = root / f"int8-{os.getpid()}@{fileio._HOST}-def"
    live.mkdir()
    with fileio.work_dir("int8") as scratch:
        assert scratch.parent == root and scratch.name.startswith(f"int8-{os.getpid()}@")
        inner = Path(tf.mkdtemp())  # what onnxruntime.quantization does for its calibration files
        assert inner.parent == scratch
    assert not scratch.exists() and not stale.exists() and live.exists()
    assert tf.tempdir == str(tmp_path)
    assert "removed 1 scratch folder" in capsys.readouterr().err


def test_ctrl_c_during_int8_export_exits_130_and_leaves_nothing(tmp_path):
    """SIGINT while INT8 calibration runs: exit 130, no model under the final name, no scratch left behind."""
    pytest.importorskip("onnx", reason="INT8 export needs the export extra")
    shipped = Path(__file__).resolve().parents[2] / "runtime" / "models" / "stylizer_nano.onnx"
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        cv2.imwrite(str(data / f"{i}.jpg"), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    out = tmp_path / "q.onnx"
    env = {**os.environ, "TMPDIR": str(scratch_root), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "artcam.runtime.cli", "export", str(shipped), "--int8", "--data",
                          str(data), "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    work = scratch_root / "artcam"
    while time.time() < deadline and p.poll() is None and not (work.is_dir() and any(work.iterdir())):
        time.sleep(0.1)
    assert p.poll() is None, f"export ended before calibration could be interrupted: {p.stderr.read()[-1000:]}"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*partial*"))
    assert not any(work.iterdir())  # the scratch folder went with the run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigint_at_a_random_point_of_a_folder_run_leaves_only_whole_files(zoo, tmp_path, seed):
    """Stylizing a folder, interrupted at a random moment: every file in the output folder is a whole,
    readable image (each is published atomically), none is a partial, and the exit code says how it ended."""
    rng = np.random.default_rng(seed)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(200):
        cv2.imwrite(str(src / f"{i:03d}.jpg"), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    args = ["stylize", src, "--style-model", TINY, "--size", "1024", "-o", out]
    proc = subprocess.Popen([sys.executable, "-m", "artcam.runtime.cli", *map(str, args)], env=_env(zoo),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.artcam_args = args
    t0 = time.monotonic()
    while not (out.exists() and any(out.iterdir())) and proc.poll() is None and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    time.sleep(float(rng.uniform(0.0, 0.5)))  # somewhere inside the run
    proc.send_signal(signal.SIGINT)
    _, err = _wait(proc)
    assert proc.returncode == 130 and "Traceback" not in err, err
    written = sorted(out.iterdir()) if out.exists() else []
    assert _partials(out) == [] if out.exists() else True
    for f in written:
        assert cv2.imread(str(f)) is not None, f"{f.name} is not a whole image"
    assert 0 < len(written) < 200  # it was stopped mid-folder

"""Issue 46, the CLI side: failed writes never published, user-sized options bounded before allocation,
one exit code per mistake, the input never overwritten by accident, stalled network sources.

Real subprocesses on real files. A full disk is a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored
so a write fails with EFBIG as it fails with ENOSPC on a full disk) set in the child only.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_models as tm
from loopback_camera import LoopbackCamera
from test_reliability import TINY, _env, _one_line_error, _partials, artcam, record

from artcam.runtime.fileio import write_image

pytestmark = pytest.mark.reliability

GEN = "tiny_gen"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    tm.stylizer(d / f"{TINY}.onnx", styles=("warm", "cool"))
    tm.generator(d / f"{GEN}.onnx", latent=8, size=16)
    return d


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Inputs that do not compress: a video, an image and a folder of images (outputs of tens of KB)."""
    d = tmp_path_factory.mktemp("noisy")
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(d / "noise.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for _ in range(60):
        w.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    w.release()
    write_image(d / "noise.png", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    (d / "folder").mkdir()
    for i in range(5):
        write_image(d / "folder" / f"{i}.png", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    return d


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def artcam_limited(args, zoo, limit: int, timeout=120):
    """``artcam ARGS`` with every file it writes capped at ``limit`` bytes (a disk that fills up)."""
    cmd = [sys.executable, "-m", "artcam.runtime.cli", *map(str, args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(zoo), timeout=timeout,
                           preexec_fn=_file_size_limit(limit))
    except subprocess.TimeoutExpired:
        record(args, hang=True)
        raise
    return record(args, p)


# --- 1. a failed write is never published as success ---------------------------------------------


@pytest.mark.parametrize("ext", [".avi", ".mp4", ".mkv"])
def test_video_written_to_a_full_disk_exits_2_and_publishes_nothing(zoo, noisy, tmp_path, ext):
    out = tmp_path / f"styled{ext}"
    p = artcam_limited(["stylize", noisy / "noise.avi", "--style-model", TINY, "-o", out], zoo, limit=60_000)
    _one_line_error(p, 2, f"cannot write video {out}")
    assert "Failed to write frame" not in p.stderr  # one line, not a warning per frame
    assert not out.exists() and _partials(tmp_path) == []
    # the previous file stays as it was
    out.write_bytes(b"previous")
    p = artcam_limited(["stylize", noisy / "noise.avi", "--style-model", TINY, "-o", out], zoo, limit=60_000)
    assert p.returncode == 2 and out.read_bytes() == b"previous"
    # and with room, the same run publishes a video with every frame
    p = artcam(["stylize", noisy / "noise.avi", "--style-model", TINY, "-o", out], zoo)
    assert p.returncode == 0, p.stderr
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60


def test_live_recording_to_a_full_disk_exits_2(zoo, tmp_path):
    out = tmp_path / "rec.avi"
    p = artcam_limited(["live", "--source", "sample", "--source-size", "120x160", "--style-model", TINY,
                        "--frames", "60", "-o", out], zoo, limit=30_000)
    _one_line_error(p, 2, "cannot write video")
    assert not out.exists() and _partials(tmp_path) == []


def test_image_and_folder_on_a_full_disk_exit_2(zoo, noisy, tmp_path):
    out = tmp_path / "one.png"
    p = artcam_limited(["stylize", noisy / "noise.png", "--style-model", TINY, "-o", out], zoo, limit=4_000)
    _one_line_error(p, 2, f"cannot write {out}")
    assert not out.exists() and _partials(tmp_path) == []
    folder = tmp_path / "out"
    p = artcam_limited(["stylize", noisy / "folder", "--style-model", TINY, "-o", folder], zoo, limit=4_000)
    _one_line_error(p, 2, "cannot write")
    assert list(folder.iterdir()) == []  # no image half-written under its final name
    grid = tmp_path / "grid.png"
    p = artcam_limited(["generate", "--model", GEN, "-n", "16", "--scale", "4", "-o", grid], zoo, limit=2_000)
    _one_line_error(p, 2, f"cannot write {grid}")
    assert not grid.exists() and _partials(tmp_path) == []


# --- 3. the same mistake gets the same code ------------------------------------------------------


@pytest.mark.parametrize("command", [["generate", "--model", GEN], ["stylize", "{img}", "--style-model", TINY]])
@pytest.mark.parametrize("name", ["grid.xyz", "grid.mp3", "grid.JPG2"])
def test_unknown_output_extension_is_exit_2_for_every_command(zoo, noisy, tmp_path, command, name):
    out = tmp_path / name
    args = [str(noisy / "noise.png") if c == "{img}" else c for c in command]
    p = artcam([*args, "-o", out], zoo)
    _one_line_error(p, 2, "unknown output type")
    assert not out.exists() and _partials(tmp_path) == []


def test_generate_grid_as_a_video_name_is_refused_before_the_model_loads(zoo, tmp_path):
    p = artcam(["generate", "--model", "no_such_model", "-o", tmp_path / "grid.mp4"], zoo)
    _one_line_error(p, 2, "unknown output type '.mp4'")  # the output is checked first


# --- 4. the output never overwrites the input by accident -------------------------------------------


def _same_or_linked(kind, src: Path, tmp_path: Path) -> str:
    if kind == "same":
        return str(src)
    if kind == "relative":
        return str(Path("..") / src.parent.name / src.name)
    link = tmp_path / f"link{src.suffix}"
    if kind == "symlink":
        link.symlink_to(src)
    else:
        link.hardlink_to(src)
    return str(link)


@pytest.mark.parametrize("kind", ["same", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("name", ["noise.png", "noise.avi"])
def test_output_equal_to_input_is_refused(zoo, noisy, tmp_path, kind, name):
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_bytes((noisy / name).read_bytes())
    before = src.read_bytes()
    out = _same_or_linked(kind, src, tmp_path)
    cwd = tmp_path / "in"
    p = record(["stylize", src, "-o", out], subprocess.run(
        [sys.executable, "-m", "artcam.runtime.cli", "stylize", str(src), "--style-model", TINY, "-o", out],
        capture_output=True, text=True, env=_env(zoo), timeout=120, cwd=cwd))
    _one_line_error(p, 2, "would be overwritten", "--overwrite-input")
    assert src.read_bytes() == before and _partials(src.parent) == []


def test_live_and_demo_refuse_their_input_video_too(zoo, noisy, tmp_path):
    src = tmp_path / "clip.avi"
    src.write_bytes((noisy / "noise.avi").read_bytes())
    before = src.read_bytes()
    p = artcam(["live", "--source", src, "--style-model", TINY, "-o", src], zoo)
    _one_line_error(p, 2, "would be overwritten")
    p = artcam(["demo", "--source", src, "--style-model", TINY, "--classify", "none", "-o", src], zoo)
    _one_line_error(p, 2, "would be overwritten")
    assert src.read_bytes() == before


def test_folder_output_equal_to_the_input_folder_is_refused(zoo, noisy, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for f in (noisy / "folder").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    p = artcam(["stylize", folder, "--style-model", TINY, "-o", folder], zoo)
    _one_line_error(p, 2, "would be overwritten")
    p = artcam(["stylize", f"{folder}/*.png", "--style-model", TINY, "-o", folder], zoo)
    _one_line_error(p, 2, "would be overwritten")
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before


@pytest.mark.parametrize("name", ["noise.png", "noise.avi"])
def test_overwrite_input_flag_replaces_it_with_a_complete_output(zoo, noisy, tmp_path, name):
    src = tmp_path / name
    src.write_bytes((noisy / name).read_bytes())
    before = src.read_bytes()
    p = artcam(["stylize", src, "--style-model", TINY, "-o", src, "--overwrite-input"], zoo)
    assert p.returncode == 0, p.stderr
    assert src.read_bytes() != before and _partials(tmp_path) == []
    frames = [f for f, _ in __import__("artcam.runtime.sources", fromlist=["open_source"]).open_source(str(src))]
    assert len(frames) == (60 if name.endswith(".avi") else 1)


# --- 2. user-sized options are bounded before anything is allocated --------------------------------


def _timed(args, zoo, env_extra=None, timeout=60):
    env = {**_env(zoo), **(env_extra or {})}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=timeout)
    record(args, p)
    return p, time.monotonic() - t0


def test_stylize_size_past_the_model_or_the_budget_is_exit_2_naming_the_range(zoo, noisy, tmp_path):
    out = tmp_path / "o.png"
    p, took = _timed(["stylize", noisy / "noise.png", "--style-model", TINY, "--size", "100000", "-o", out], zoo)
    _one_line_error(p, 2, "--size 100000 is outside the allowed range 8..2048")
    assert took < 30 and not out.exists()  # refused before resizing, not after gigabytes
    # a smaller budget lowers the largest size: sqrt(256 MB / 132 B) = 1426 -> 1408
    p, _ = _timed(["stylize", noisy / "noise.png", "--style-model", TINY, "--size", "2048", "-o", out], zoo,
                  {"ARTCAM_MEMORY_MB": "256"})
    _one_line_error(p, 2, "allowed range 8..1408", "memory budget", "ARTCAM_MEMORY_MB")
    p, _ = _timed(["stylize", noisy / "noise.png", "--style-model", TINY, "--size", "1408", "-o", out], zoo,
                  {"ARTCAM_MEMORY_MB": "256"})
    assert p.returncode == 0, p.stderr
    p, _ = _timed(["stylize", noisy / "noise.png", "--style-model", TINY, "--size", "4", "-o", out], zoo)
    _one_line_error(p, 2, "--size 4 is outside the allowed range 8..")
    p, _ = _timed(["stylize", noisy / "noise.png", "--style-model", TINY, "-o", out], zoo, {"ARTCAM_MEMORY_MB": "lots"})
    _one_line_error(p, 2, "ARTCAM_MEMORY_MB")


def test_a_frame_over_the_budget_is_refused_with_a_size_hint(zoo, tmp_path):
    big = tmp_path / "big.png"
    write_image(big, np.zeros((1500, 2000, 3), np.uint8))  # 3 Mpx: ~390 MB to stylize
    p, _ = _timed(["stylize", big, "--style-model", TINY, "-o", tmp_path / "o.png"], zoo, {"ARTCAM_MEMORY_MB": "256"})
    _one_line_error(p, 2, "2000x1500 frame needs", "--size N")
    p, _ = _timed(["stylize", big, "--style-model", TINY, "--size", "640", "-o", tmp_path / "o.png"], zoo,
                  {"ARTCAM_MEMORY_MB": "256"})
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("args,needle", [
    (["-n", "100000"], "-n 100000 is outside the allowed range 1..1024"),
    (["--scale", "500"], "--scale 1..241 at -n 16"),  # 16 images of 8000 px would need 8.6 GB
    (["--scale", "5000"], "--scale 5000 is outside the allowed range 1..1024"),
    (["-n", "1024", "--scale", "64"], "-n 1..227 at --scale 64"),
])
def test_generate_count_and_scale_are_bounded(zoo, tmp_path, args, needle):
    out = tmp_path / "grid.png"
    p, took = _timed(["generate", "--model", GEN, *args, "-o", out], zoo)
    _one_line_error(p, 2, needle)
    assert took < 30 and not out.exists()


def test_generate_at_the_largest_count_works_in_bounded_batches(zoo, tmp_path):
    out = tmp_path / "grid.png"
    p, _ = _timed(["generate", "--model", GEN, "-n", "1024", "--scale", "1", "-o", out], zoo)
    assert p.returncode == 0, p.stderr
    assert cv2.imread(str(out)).shape[0] == 32 * 16 + 33 * 4  # 32 x 32 images of 16 px, 4 px apart


@pytest.mark.parametrize("command", [["live", "-o", "null", "--frames", "1"], ["demo", "--frames", "1"]])
def test_source_size_and_threads_are_bounded(zoo, tmp_path, command):
    p, _ = _timed([*command, "--source", "sample", "--source-size", "16384x16384", "--style-model", TINY], zoo)
    _one_line_error(p, 2, "--source-size 16384x16384 is over the 2048 MB memory budget")
    p, _ = _timed([*command, "--source", "sample", "--threads", "100000", "--style-model", TINY], zoo)
    _one_line_error(p, 2, "--threads 100000 is outside the allowed range 0..256")


# --- 9. a network source that stops sending ---------------------------------------------------------


def test_a_stream_that_stops_sending_gives_up_within_the_stated_time(zoo):
    stream = LoopbackCamera(fps=30, freeze_after=15)
    try:
        p, took = _timed(["live", "--source", stream.url, "--style-model", TINY, "-o", "null", "--json",
                          "--reconnect", "stall=1,attempts=2,backoff=0.2"], zoo, timeout=60)
    finally:
        stream.close()
    _one_line_error(p, 2, "no frames for", "2 reopen attempts failed", "--reconnect")
    assert took < 20, took  # 1 s stall + 2 x (wait + 1 s open): seconds, not FFmpeg's 30 s per try
    assert p.stderr.count("reopening the stream") == 2
    assert stream.connections == 3  # the first, then one per attempt


def test_a_stream_that_comes_back_is_picked_up_and_counted(zoo):
    stream = LoopbackCamera(fps=30, freeze_after=15, thaw_on_reconnect=True)
    try:
        p, _ = _timed(["live", "--source", stream.url, "--style-model", TINY, "-o", "null", "--json",
                       "--frames", "40", "--reconnect", "stall=1,attempts=3,backoff=0.2"], zoo, timeout=60)
    finally:
        stream.close()
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert d["frames"] == 40 and d["stalls"] == 1 and d["reconnects"] == 1
    assert d["source_state"] == "ok" and d["stalled_since"] is None


def test_the_viewer_shows_the_stall_while_it_lasts(zoo):
    """While the source is silent the viewer's /api/state says so (and a /healthz can read the same
    fields from the pipeline's stats): source_state and stalled_since."""
    import urllib.request

    stream = LoopbackCamera(fps=30, freeze_after=15)
    args = ["live", "--source", stream.url, "--style-model", TINY, "-o", "http://127.0.0.1:0",
            "--reconnect", "stall=1,attempts=3,backoff=1"]
    proc = subprocess.Popen([sys.executable, "-m", "artcam.runtime.cli", *args], env=_env(zoo),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    try:
        line = ""
        t0 = time.monotonic()
        while "web viewer" not in line and time.monotonic() - t0 < 60:
            line = proc.stderr.readline()
        port = int(line.split("web viewer http://127.0.0.1:")[1].split("/")[0])
        stalled_since = None
        while proc.poll() is None and time.monotonic() - t0 < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=2) as r:
                    src = json.loads(r.read())["source"]
            except OSError:
                break
            seen.add(src["source_state"])
            if src["source_state"] != "ok":
                stalled_since = src["stalled_since"]
            time.sleep(0.2)
        out, err = proc.communicate(timeout=60)
    finally:
        stream.close()
        if proc.poll() is None:
            proc.kill()
    record(args, subprocess.CompletedProcess(args, proc.returncode, out, err))
    assert proc.returncode == 2 and "3 reopen attempts failed" in err, err
    assert "reconnecting" in seen, seen  # "missing" and "stalled" last less than a poll at stall=1
    assert stalled_since is not None and abs(stalled_since - time.time()) < 60


@pytest.mark.parametrize("value", ["stall=0", "attempts=-1", "backoff=nan", "stall", "speed=3"])
def test_bad_reconnect_policy_is_exit_2(zoo, value):
    p, _ = _timed(["live", "--source", "sample", "--reconnect", value, "--style-model", TINY, "-o", "null"], zoo)
    assert p.returncode == 2 and "argument --reconnect" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_source_health_states_and_hud_words():
    from artcam.runtime.reconnect import SourceHealth, parse_policy

    h = SourceHealth("camera")
    assert h.as_dict()["source_state"] == "ok" and h.status_line() == ""
    h.last_frame -= 2.0  # two seconds without a frame, before the stall timeout
    d = h.as_dict()
    assert d["source_state"] == "missing" and d["stalled_since"] is not None
    assert h.status_line(d) == "no frames from the camera for 2 s"
    h.stalled()
    h.reconnecting(2, 5)
    assert h.status_line() == "no frames from the camera for 2 s: reopening (2/5)"
    h.frame()
    assert h.as_dict() == {"source_state": "ok", "stalled_since": None, "no_frames_s": 0.0, "stalls": 1,
                           "reconnects": 1}
    pol = parse_policy("stall=2,attempts=3,backoff=1")
    assert [pol.delay(k) for k in (1, 2, 3)] == [1, 2, 4] and pol.worst_case_s() == 2 + 7 + 12

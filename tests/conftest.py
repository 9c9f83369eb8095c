"""Shared fixtures: the real data beside the checkout, and temporary media."""

from __future__ import annotations

from pathlib import Path

import pytest

from artcam.runtime.fileio import data_root

SHARED_DATA = data_root()  # $ARTCAM_DATA, else ../shared/data beside the checkout

# Every CLI run of the reliability tests (tests/runtime/test_reliability.py records them), summed up in one table
# at the end of the session: what was tried and how it ended.
RELIABILITY_PROBES: list[dict] = []


def pytest_terminal_summary(terminalreporter):
    if not RELIABILITY_PROBES:
        return
    p = RELIABILITY_PROBES
    rows = [
        ("CLI runs tried (bad inputs, interrupts, good runs)", len(p)),
        ("ended with a clear one-line error (exit 2)", sum(r["clear_error"] for r in p)),
        ("interrupted (exit 130 / 143)", sum(r["rc"] in (130, 143) for r in p)),
        ("finished (exit 0)", sum(r["rc"] == 0 for r in p)),
        ("tracebacks", sum(r["traceback"] for r in p)),
        ("hangs (no exit within the time limit)", sum(r["hang"] for r in p)),
        ("partial files left beside outputs", sum(r["partials"] for r in p)),
    ]
    terminalreporter.write_sep("-", "reliability probes")
    for name, n in rows:
        terminalreporter.write_line(f"{name:<52s} {n:5d}")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (or $ARTCAM_DATA), or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data beside the checkout in CI; "
                    "or set ARTCAM_DATA)")
    return SHARED_DATA


@pytest.fixture
def torchrun():
    """Run ``python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS`` on CPU (gloo over
    loopback) and require a clean exit; a failure shows what the ranks printed, which comes before
    the launcher's own traceback and is what says why."""
    import os
    import subprocess
    import sys

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        err = r.stderr if len(r.stderr) < 6000 else r.stderr[:4000] + "\n[...]\n" + r.stderr[-2000:]
        assert r.returncode == 0, f"torchrun exited {r.returncode}:\n{err}"
        return r

    return run

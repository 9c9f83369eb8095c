"""Shared fixtures: the real data beside the checkout, and temporary media."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout, or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (present beside the checkout in CI)")
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

"""Optimizer states keep the parameters' sharding: under a mesh with explicit axes (8
simulated CPU devices, in a subprocess since the device count is fixed when JAX starts),
``init``'s state and ``update``'s state have equal types, so a ``lax.scan`` carries them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "state_sharding_types.py"


@pytest.fixture(scope="module")
def results() -> dict[str, str]:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_catalogue_optimizer_keeps_the_sharding(results):
    broken = {k: v for k, v in results.items() if v != "ok"}
    assert not broken, broken
    assert len(results) >= 40

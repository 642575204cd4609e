"""fit over a jax.sharding mesh of 8 simulated CPU devices (in a subprocess: the device count
is fixed when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "sharded_fit.py"


@pytest.fixture(scope="module")
def sharded_runs():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["replicated", "zero1", "fsdp"])
def test_losses_equal_the_one_device_run(sharded_runs, mode):
    assert sharded_runs["devices"] == 8
    # Same maths; the batch mean and the gradient all-reduce sum in another order: 1e-6.
    np.testing.assert_allclose(sharded_runs[mode]["losses"], sharded_runs["single"], rtol=2e-6)
    assert sharded_runs[mode]["max_param_diff"] < 1e-6


def test_zero1_shards_the_state_and_replicates_the_params(sharded_runs):
    run = sharded_runs["zero1"]
    assert run["mu_w1_shard_shape"] == [1, 64]  # (8, 64) split over 8 devices
    assert run["params_w1_shard_shape"] == [8, 64]
    # Every moment is split 8 ways except Adam's scalar count and the (1,) bias, replicated.
    assert run["state_bytes_per_device"] * 8 < run["state_bytes_total"] * 1.02
    assert sharded_runs["replicated"]["state_bytes_per_device"] == run["state_bytes_total"]


def test_fsdp_shards_params_too(sharded_runs):
    assert sharded_runs["fsdp"]["params_w1_shard_shape"] == [1, 64]


def test_a_data_axis_that_does_not_divide_the_batch_is_an_error(sharded_runs):
    assert "does not divide the batch of 12 examples" in sharded_runs["indivisible_error"]

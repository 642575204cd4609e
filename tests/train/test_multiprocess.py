"""fit across two processes (jax.distributed on 127.0.0.1, gloo CPU collectives) gives the
losses of one process on the same 8 devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).parents[1] / "scripts" / "multiprocess_fit.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _losses(output: str) -> list[float]:
    return json.loads(output.strip().splitlines()[-1])["losses"]


def test_two_processes_equal_one():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = str(_free_port())
    workers = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), str(i), "2", port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    reference = subprocess.run(
        [sys.executable, str(SCRIPT), "-1", "1", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        outputs.append(out)
    report = json.loads(outputs[0].strip().splitlines()[-1])
    assert report["processes"] == 2 and report["devices"] == 8
    # Same program on the same 8 devices; the cross-process all-reduce may sum in another
    # order: float32 rounding.
    np.testing.assert_allclose(report["losses"], _losses(reference.stdout), rtol=2e-6)

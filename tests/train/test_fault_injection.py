"""Fault injection into fit's checkpoints: a training run killed with SIGKILL while it writes a
checkpoint, a disk that fills up during a write, truncated or corrupted checkpoints, and pickle
payloads planted where a checkpoint is expected. After each, ``fit(..., resume=True)``
continues from the last intact checkpoint and ends bit-identical to a run never interrupted,
or stops with an error that names the directory or file.

tests/train/test_checkpoint.py does the same for bare ``checkpoint.save``/``restore``;
tests/train/test_resume.py covers a clean interruption between chunks and one corrupted final
checkpoint, which are not repeated here.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import pickle
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_checkpoint import write_arrays_then_fail, write_half_a_manifest

import optim
from optim.train import _checkpoint as checkpoint
from optim.train._checkpoint import CorruptCheckpointError

SCRIPT = Path(__file__).parents[1] / "scripts" / "fit_with_checkpoints.py"
ROOT = SCRIPT.parents[2]  # the child processes import this checkout's optim
TIMEOUT_S = 240  # per child process; a healthy one takes about 10 s on a loaded 2-core machine


def assert_bitwise_equal(got: Any, want: Any, what: str) -> None:
    """Same tree structure, and per leaf the same dtype, shape and bytes."""
    got_leaves, got_def = jax.tree_util.tree_flatten_with_path(got)
    want_leaves, want_def = jax.tree_util.tree_flatten_with_path(want)
    assert got_def == want_def, what
    for (path, a), (_, b) in zip(got_leaves, want_leaves, strict=True):
        name = f"{what}{jax.tree_util.keystr(path)}"
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.tobytes() == b.tobytes(), f"{name}: equal values, different bytes"


# --- SIGKILL during a checkpoint write, in a child process ---------------------------------


@dataclasses.dataclass
class Kill:
    """One SIGKILL of the training script, and what it left behind."""

    aimed_at: int  # the step whose checkpoint write had started when the delay began
    delay_s: float  # how long after that write started (as first seen) the kill was sent
    write_s: float  # how long this run's earlier writes took, for scale
    landed: str  # where the run was, judged from the files left behind
    debris: Path | None  # the .tmp- folder of the interrupted write, if one was in progress
    latest_complete: int  # the latest complete checkpoint afterwards

    def __str__(self) -> str:
        return (
            f"{self.delay_s * 1e3:.0f} ms after the write of step {self.aimed_at} started "
            f"(writes took {self.write_s * 1e3:.0f} ms): {self.landed}; latest complete "
            f"checkpoint: step {self.latest_complete}"
        )


def phase_of(folder: Path) -> str:
    """How far the save writing ``folder`` (``.tmp-step_<N>-<hex>``) got, from its files.

    ``checkpoint.save`` writes the arrays with orbax (into ``arrays.orbax-checkpoint-tmp*``,
    renamed to ``arrays``), then ``checkpoint.json``, fsyncs and checksums every file, writes
    ``manifest.json`` and renames the folder to ``step_<N>``.
    """
    names = set(os.listdir(folder))
    if "manifest.json" in names:
        return "manifest written, before the rename"
    if "checkpoint.json" in names:
        return "fsync and sha256 of the files, before the manifest"
    if "arrays" in names:
        return "arrays written, before checkpoint.json"
    if any(name.startswith("arrays") for name in names):
        return "orbax writing the arrays"
    return "folder created, nothing written yet"


def launch(
    directory: Path, output: Path, log: Path, *, resume: bool, steps: int, every: int
) -> subprocess.Popen:
    """Start the training script (CPU) with its stderr in ``log``."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": pythonpath}
    command = [
        sys.executable,
        str(SCRIPT),
        str(directory),
        str(output),
        "--steps",
        str(steps),
        "--checkpoint-every",
        str(every),
        *(["--resume"] if resume else []),
    ]
    with open(log, "wb") as stderr:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def finish(process: subprocess.Popen, log: Path) -> None:
    """Wait for a run that must complete, and fail with its stderr if it does not."""
    try:
        process.wait(timeout=TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()[-4000:]


def temporary_folders(directory: Path) -> set[str]:
    """Names of the .tmp-step_ folders (saves in progress or interrupted) in ``directory``."""
    try:
        return {name for name in os.listdir(directory) if name.startswith(".tmp-step_")}
    except FileNotFoundError:
        return set()


def poll(condition: Callable[[], Any], process: subprocess.Popen, log: Path, what: str) -> Any:
    """Poll ``condition`` every millisecond until it returns something truthy."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (found := condition()):
        assert process.poll() is None, (
            f"the run exited ({process.returncode}) before {what}:\n{log.read_text()[-4000:]}"
        )
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT_S} s"
        time.sleep(0.001)
    return found


def kill_during_a_write(
    process: subprocess.Popen,
    directory: Path,
    log: Path,
    rng: random.Random,
    max_delay_fraction: float,
) -> Kill:
    """Let one or two checkpoint writes of the run complete (timing them), then SIGKILL it a
    random fraction (up to ``max_delay_fraction``) of that time after the next write starts."""
    seen = temporary_folders(directory)  # debris of an earlier kill: not a write of this run
    durations = []

    def new_write() -> set[str]:  # a write started since
        return temporary_folders(directory) - seen

    def renamed() -> bool:  # every write seen has ended (renamed, or debris deleted)
        return not seen & temporary_folders(directory)

    for _ in range(rng.choice([1, 2])):
        folder = poll(new_write, process, log, "a write")
        seen |= folder
        started = time.monotonic()
        poll(renamed, process, log, "a rename")
        durations.append(time.monotonic() - started)
    (name,) = poll(new_write, process, log, "a write")
    started = time.monotonic()
    write_s = statistics.median(durations)
    delay = rng.uniform(0.0, max_delay_fraction * write_s)
    time.sleep(max(0.0, started + delay - time.monotonic()))
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL, log.read_text()[-4000:]
    debris = [directory / left for left in temporary_folders(directory)]
    assert len(debris) <= 1, debris  # each save deletes the debris of earlier ones first
    if debris:
        landed = f"in the write of step {step_of(debris[0].name)}: {phase_of(debris[0])}"
    else:
        landed = "between writes (training, or just after a rename)"
    return Kill(
        aimed_at=step_of(name),
        delay_s=delay,
        write_s=write_s,
        landed=landed,
        debris=debris[0] if debris else None,
        latest_complete=checkpoint.latest_step(directory),
    )


def step_of(temporary_folder: str) -> int:
    return int(re.fullmatch(r"\.tmp-step_(\d+)-[0-9a-f]+", temporary_folder)[1])


def read_result(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as arrays:
        return dict(arrays)


def kill_and_resume(
    tmp_path: Path, *, kills: int, steps: int, every: int, max_delay_fraction: float
) -> list[Kill]:
    """Kill the training script ``kills`` times during checkpoint writes, resuming it after
    each, let the last resumed run finish, and check it against an uninterrupted run (started
    first, in parallel)."""
    rng = random.Random()
    reference_out, reference_log = tmp_path / "reference.npz", tmp_path / "reference.log"
    reference = launch(
        tmp_path / "reference", reference_out, reference_log, resume=False, steps=steps, every=every
    )
    directory, output = tmp_path / "killed", tmp_path / "killed.npz"
    record = []
    try:
        for i in range(kills + 1):
            log = tmp_path / f"run_{i}.log"
            process = launch(directory, output, log, resume=i > 0, steps=steps, every=every)
            if i == kills:
                finish(process, log)
            else:
                try:
                    kill = kill_during_a_write(process, directory, log, rng, max_delay_fraction)
                finally:
                    process.kill()
                    process.wait()
                record.append(kill)
                print(f"kill {i + 1}: {kill}")
                assert not output.exists() and kill.latest_complete < steps, kill  # mid-run
            if i > 0 and record[i - 1].debris is not None:  # resumed past an interrupted save
                assert f"ignoring partial checkpoint {record[i - 1].debris}" in log.read_text()
        finish(reference, reference_log)
    finally:
        reference.kill()
        reference.wait()

    assert checkpoint.all_steps(directory) == list(range(every, steps + 1, every))
    assert not temporary_folders(directory), "debris of the interrupted saves was left"
    resumed, uninterrupted = read_result(output), read_result(reference_out)
    assert resumed.keys() == uninterrupted.keys()
    assert any(key.startswith("opt_state") for key in resumed) and "losses" in resumed
    for key in uninterrupted:
        assert_bitwise_equal(resumed[key], uninterrupted[key], key)
    return record


def test_sigkill_during_checkpoint_writes_then_resume_is_bit_identical(tmp_path):
    """Three kills in a row, each a random moment into a checkpoint write of the run resumed
    from the previous kill's leftovers."""
    kills = kill_and_resume(tmp_path, kills=3, steps=24, every=2, max_delay_fraction=0.6)
    # Delays stay well below the time a write takes, so a kill landing after the rename is
    # rare (a write faster than usual, or a late poll on a loaded machine); at least one must
    # have hit a write in progress.
    assert any(kill.debris is not None for kill in kills), kills


@pytest.mark.slow
def test_many_sigkills_at_random_moments_then_resume_is_bit_identical(tmp_path):
    """Ten kills, up to 1.5 write-times after a write starts: spread over the phases of a
    write and the training between writes."""
    kills = kill_and_resume(tmp_path, kills=10, steps=72, every=2, max_delay_fraction=1.5)
    assert any(kill.debris is not None for kill in kills), kills


# --- in-process runs: disk full, corruption, planted payloads ------------------------------


def mse(params: dict, batch: tuple) -> jax.Array:
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def regression_data() -> tuple[jax.Array, jax.Array]:
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.uniform(kx, (40, 3))
    return x, x @ jnp.array([1.0, -2.0, 0.5]) + 0.1 * jax.random.normal(kn, (40,))


STEPS, EVERY = 20, 5


def run(directory: Path, data: Any = None, **kwargs: Any) -> optim.FitResult:
    """Adam on minibatches, 20 steps, a checkpoint every 5 in ``directory``."""
    return optim.fit(
        mse,
        {"w": jnp.zeros(3), "b": jnp.zeros(())},
        optim.adam(0.05),
        regression_data() if data is None else data,
        steps=STEPS,
        batch_size=8,
        key=jax.random.PRNGKey(3),
        checkpoint_dir=directory,
        checkpoint_every=EVERY,
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[optim.FitResult, Path]:
    """The result of a run never interrupted, and its checkpoints (steps 5, 10, 15, 20)."""
    directory = tmp_path_factory.mktemp("uninterrupted")
    return run(directory), directory


@pytest.fixture
def checkpoints(uninterrupted, tmp_path) -> Path:
    """A copy of the uninterrupted run's checkpoints, to damage."""
    return Path(shutil.copytree(uninterrupted[1], tmp_path / "checkpoints"))


def resume_strictly(directory: Path, data: Any = None) -> optim.FitResult:
    """Resume with every warning an error: the checkpoints must be intact."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return run(directory, data, resume=True)


def assert_same_run(result: optim.FitResult, reference: optim.FitResult) -> None:
    assert_bitwise_equal(result.params, reference.params, "params")
    assert_bitwise_equal(result.opt_state, reference.opt_state, "opt_state")
    assert_bitwise_equal(result.losses, reference.losses, "losses")


def largest_array_file(folder: Path) -> Path:
    return max((p for p in (folder / "arrays").rglob("*") if p.is_file()), key=os.path.getsize)


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def message_and_notes(error: BaseException) -> str:
    return "\n".join([str(error), *getattr(error, "__notes__", [])])


def test_resume_with_numpy_data(checkpoints, uninterrupted):
    """A run that died after step 15 (its step 20 never written), resumed with its data as
    NumPy arrays, as most scripts hold it: continues from step 15 to the same result."""
    shutil.rmtree(checkpoints / "step_20")
    numpy_data = jax.tree.map(np.asarray, regression_data())
    assert_same_run(resume_strictly(checkpoints, data=numpy_data), uninterrupted[0])


_fail_after_writing_the_arrays = functools.partial(write_arrays_then_fail, only=".tmp-step_10-")
_fail_half_way_through_the_manifest = functools.partial(write_half_a_manifest, only=".tmp-step_10-")


@pytest.mark.parametrize(
    ("writer", "failing"),
    [
        ("_write_arrays", _fail_after_writing_the_arrays),
        ("_write_file", _fail_half_way_through_the_manifest),
    ],
    ids=["after-the-arrays", "in-the-manifest"],
)
def test_disk_full_during_fits_checkpoint_write(
    tmp_path, monkeypatch, uninterrupted, writer, failing
):
    """The second checkpoint (step 10) hits a full disk: fit stops with an error naming the
    checkpoint directory, step 5 stays intact with no debris, and resuming from it (disk space
    back) reproduces the uninterrupted run."""
    directory = tmp_path / "checkpoints"
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint, writer, failing(getattr(checkpoint, writer)))
        with pytest.raises(OSError) as error:
            run(directory)
    assert error.value.errno == errno.ENOSPC
    assert str(directory) in message_and_notes(error.value)
    assert os.listdir(directory) == ["step_5"]
    assert_same_run(resume_strictly(directory), uninterrupted[0])


def test_the_two_newest_checkpoints_corrupted_falls_back_two(checkpoints, uninterrupted):
    """Step 20's manifest and step 15's largest array file truncated: resume warns naming
    both files, continues from step 10, writes steps 15 and 20 again (intact: a second resume
    warns about nothing) and reproduces the uninterrupted run."""
    damaged = [
        truncate(checkpoints / "step_20" / "manifest.json"),
        truncate(largest_array_file(checkpoints / "step_15")),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(checkpoints, resume=True)
    messages = "\n".join(str(w.message) for w in caught)
    for path in damaged:
        assert str(path) in messages, messages
    assert_same_run(result, uninterrupted[0])
    assert_same_run(resume_strictly(checkpoints), uninterrupted[0])


def test_every_checkpoint_corrupted_is_an_error_naming_the_files(checkpoints):
    """Nothing to fall back to: resume raises naming each damaged file, rather than training
    from scratch over the damaged checkpoints; the damaged files are left as they were."""
    damaged = [truncate(largest_array_file(folder)) for folder in sorted(checkpoints.iterdir())]
    before = sorted(p.relative_to(checkpoints) for p in checkpoints.rglob("*"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per skipped checkpoint, besides the error
        with pytest.raises(CorruptCheckpointError) as error:
            run(checkpoints, resume=True)
    for path in damaged:
        assert str(path) in str(error.value), error.value
    assert sorted(p.relative_to(checkpoints) for p in checkpoints.rglob("*")) == before


class OpenOnUnpickle:
    """Unpickling this creates ``marker``: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (str(self.marker), "w")


def plant_in_array_file(folder: Path, payload: bytes) -> Path:
    """Swap the payload in for the largest array file (the manifest no longer matches)."""
    path = largest_array_file(folder)
    path.write_bytes(payload)
    return path


def plant_forged_checkpoint(folder: Path, payload: bytes) -> Path:
    """Replace the checkpoint by a crafted one: a pickle as checkpoint.json, as orbax's
    metadata and data files and as a checkpoint.pkl, all listed with valid sha256s in a
    forged manifest (so it passes as complete and unaltered)."""
    shutil.rmtree(folder)
    (folder / "arrays").mkdir(parents=True)
    for name in ["checkpoint.json", "checkpoint.pkl", "arrays/_METADATA", "arrays/d"]:
        (folder / name).write_bytes(payload)
    checkpoint._seal(folder)
    return folder / "checkpoint.json"


def plant_step_file(folder: Path, payload: bytes) -> Path:
    """A pickle file named like the checkpoint folder, in its place."""
    shutil.rmtree(folder)
    folder.write_bytes(payload)
    return folder


@pytest.mark.parametrize(
    "plant",
    [plant_in_array_file, plant_forged_checkpoint, plant_step_file],
    ids=lambda f: f.__name__[6:],
)
def test_a_planted_pickle_payload_is_never_executed(
    checkpoints, uninterrupted, tmp_path, monkeypatch, plant
):
    """A pickle payload in or instead of the latest checkpoint (step 20): resume never
    unpickles anything, skips it with a warning naming the planted file and recomputes
    from step 15 to the uninterrupted run's result."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(OpenOnUnpickle(marker))
    pickle.loads(payload).close()  # the payload is live ...
    assert marker.exists()
    marker.unlink()  # ... so the marker's absence below means it was never unpickled
    planted = plant(checkpoints / "step_20", payload)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fit(resume=True) unpickled or called np.load")

    with monkeypatch.context() as patch:
        for module, name in [
            (pickle, "load"),
            (pickle, "loads"),
            (pickle, "Unpickler"),
            (np, "load"),
        ]:
            patch.setattr(module, name, forbidden)
        with pytest.warns(UserWarning, match=re.escape(str(planted))):
            result = run(checkpoints, resume=True)
    assert not marker.exists()
    assert_same_run(result, uninterrupted[0])

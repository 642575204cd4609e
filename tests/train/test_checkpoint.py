"""optim.checkpoint (optim/train/_checkpoint.py): exact round trips, structure checks, and
surviving crashes and tampering."""

from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import random
import re
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optim.train import _checkpoint as checkpoint
from optim.train._checkpoint import CorruptCheckpointError


def assert_bitwise_equal(restored: Any, original: Any) -> None:
    """Same tree types, leaf types, dtypes, shapes and bytes (NaN payloads included)."""
    restored_leaves, restored_def = jax.tree.flatten(restored)
    original_leaves, original_def = jax.tree.flatten(original)
    assert restored_def == original_def
    for got, want in zip(restored_leaves, original_leaves, strict=True):
        assert type(got) is type(want)
        if isinstance(want, jax.Array | np.ndarray | np.generic):
            assert got.dtype == want.dtype and got.shape == want.shape
            if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
                got, want = jax.random.key_data(got), jax.random.key_data(want)
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
        else:
            assert got is want or got == want


@jax.jit
def adamw_params_and_state() -> tuple[dict, Any]:
    """Float32 and bf16 params and an adamw state after one step (jitted: one compile)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = {
        "w": jax.random.normal(k1, (4, 3)),
        "b": jax.random.normal(k2, (3,)).astype(jnp.bfloat16),
        "frozen": None,
    }
    tx = optax.adamw(1e-3)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    _, state = tx.update(grads, tx.init(params), params)
    return params, state


def optax_like_state() -> dict:
    """An adamw state (NamedTuples, int32 count) over float32 and bf16 params, with extras."""
    params, state = adamw_params_and_state()
    return {
        "params": params,
        "opt_state": state,
        "step": 7,
        "history": np.array([1.5, np.nan, -0.0], np.float32),
        "empty": jnp.zeros((0, 2)),
    }


def zeros_like(leaf: Any) -> Any:
    """A template leaf: the type, dtype and shape of ``leaf`` with other values."""
    if isinstance(leaf, jax.Array):
        return jnp.zeros_like(leaf)
    return np.zeros_like(leaf) if isinstance(leaf, np.ndarray) else type(leaf)(0)


def save_steps(directory: Path, steps: list[int], **kwargs: Any) -> dict[int, dict]:
    """Save a distinct small tree for each step; return them by step."""
    trees = {s: {"w": jnp.full((64,), s, jnp.float32), "n": jnp.int32(s)} for s in steps}
    for s, tree in trees.items():
        checkpoint.save(directory, s, tree, **kwargs)
    return trees


def largest_array_file(folder: Path) -> Path:
    return max((p for p in (folder / "arrays").rglob("*") if p.is_file()), key=os.path.getsize)


def test_round_trip_of_an_optax_state_is_bitwise_exact(tmp_path):
    tree = optax_like_state()
    path = checkpoint.save(tmp_path, 3, tree, metadata={"lr": 1e-3, "fingerprint": "abc"})
    assert path == tmp_path / "step_3"
    template = jax.tree.map(zeros_like, tree)
    step, restored, metadata = checkpoint.restore(tmp_path, template)
    assert (step, metadata) == (3, {"lr": 1e-3, "fingerprint": "abc"})
    assert_bitwise_equal(restored, tree)
    assert type(restored["opt_state"][0]) is optax.ScaleByAdamState
    assert restored["opt_state"][0].count.dtype == jnp.int32


def test_restore_into_an_abstract_template(tmp_path):
    tree = optax_like_state()
    checkpoint.save(tmp_path, 0, tree)
    template = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x, tree
    )
    _, restored, metadata = checkpoint.restore(tmp_path, template, step=0)
    assert metadata == {}
    assert_bitwise_equal(restored, tree)


def test_round_trip_of_typed_and_raw_prng_keys(tmp_path):
    tree = {
        "typed": jax.random.key(0),
        "typed_rbg": jax.random.split(jax.random.key(1, impl="rbg"), 3),
        "raw": jax.random.PRNGKey(2),
        "no_keys": jax.random.split(jax.random.key(3), 0),
    }
    checkpoint.save(tmp_path, 1, tree)
    template = {
        "typed": jax.random.key(9),
        "typed_rbg": jax.random.split(jax.random.key(9, impl="rbg"), 3),
        "raw": jax.random.PRNGKey(9),
        "no_keys": jax.random.split(jax.random.key(9), 0),
    }
    _, restored, _ = checkpoint.restore(tmp_path, template)
    assert_bitwise_equal(restored, tree)
    assert jax.random.key_impl(restored["typed_rbg"]) == jax.random.key_impl(tree["typed_rbg"])
    assert restored["raw"].dtype == jnp.uint32
    assert jnp.array_equal(jax.random.normal(restored["typed"]), jax.random.normal(tree["typed"]))


@dataclasses.dataclass
class Linear:
    """An equinox-style module: array fields, an optional bias, a function leaf, a static flag."""

    weight: jax.Array
    bias: jax.Array | None
    activation: Callable[[jax.Array], jax.Array]
    use_bias: bool = True


jax.tree_util.register_dataclass(
    Linear, data_fields=["weight", "bias", "activation"], meta_fields=["use_bias"]
)


def test_round_trip_of_a_dataclass_module_with_non_array_leaves(tmp_path):
    model = [
        Linear(jnp.ones((3, 4), jnp.bfloat16), jnp.arange(4.0), jax.nn.relu),
        Linear(jnp.full((4, 1), 2.0), None, jax.nn.tanh, use_bias=False),
    ]
    checkpoint.save(tmp_path, 5, model)
    template = [
        Linear(jnp.zeros((3, 4), jnp.bfloat16), jnp.zeros(4), jax.nn.relu),
        Linear(jnp.zeros((4, 1)), None, jax.nn.tanh, use_bias=False),
    ]
    _, restored, _ = checkpoint.restore(tmp_path, template)
    assert_bitwise_equal(restored, model)
    assert restored[1].activation is jax.nn.tanh


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: {**t, "w": jnp.zeros((4, 4))},
            r"\['w'\]: checkpoint has float32\[4,3\], "
            r"template has float32\[4,4\]",
        ),
        (lambda t: {**t, "w": t["w"].astype(jnp.bfloat16)}, r"template has bfloat16\[4,3\]"),
        (lambda t: {**t, "extra": jnp.zeros(2)}, r"\['extra'\]: checkpoint has no leaf"),
        (lambda t: {**t, "b": None}, r"\['b'\]: checkpoint has float32\[3\], template has None"),
        (lambda t: {**t, "key": jnp.zeros(2, jnp.uint32)}, r"template has uint32\[2\]"),
    ],
    ids=["shape", "dtype", "extra-leaf", "missing-leaf", "typed-vs-raw-key"],
)
def test_a_different_structure_is_rejected_naming_the_leaf(tmp_path, change, message):
    tree = {"w": jnp.ones((4, 3)), "b": jnp.ones(3), "key": jax.random.key(0)}
    checkpoint.save(tmp_path, 1, tree)
    with pytest.raises(ValueError, match="different model structure") as error:
        checkpoint.restore(tmp_path, change(tree))
    assert re.search(message, str(error.value))
    assert not isinstance(error.value, CorruptCheckpointError)


def test_missing_directory_or_no_checkpoint(tmp_path):
    missing = tmp_path / "nowhere"
    assert checkpoint.all_steps(missing) == [] and checkpoint.latest_step(missing) is None
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        checkpoint.restore(missing, {})
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        checkpoint.restore(tmp_path, {})
    save_steps(tmp_path, [1])
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint for step 2.*\[1\]"):
        checkpoint.restore(tmp_path, {}, step=2)


def test_a_relative_directory_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trees = save_steps(Path("runs/a"), [4])  # orbax itself insists on absolute paths
    assert checkpoint.all_steps("runs/a") == [4]
    assert_bitwise_equal(checkpoint.restore("runs/a", trees[4])[1], trees[4])


@pytest.mark.parametrize("how", ["temporary-folder-left-behind", "manifest-removed"])
def test_a_partial_checkpoint_is_ignored_with_a_warning(tmp_path, how):
    trees = save_steps(tmp_path, [1, 2])
    if how == "temporary-folder-left-behind":  # a save of step 3 killed before its rename
        partial = tmp_path / ".tmp-step_3-0123abcd"
        (partial / "arrays").mkdir(parents=True)
        (partial / "arrays" / "_METADATA").write_text("{")
        expected = 2
    else:
        partial = tmp_path / "step_2"
        (partial / "manifest.json").unlink()
        expected = 1
    assert checkpoint.latest_step(tmp_path) == expected
    with pytest.warns(UserWarning, match=re.escape(str(partial))):
        step, restored, _ = checkpoint.restore(tmp_path, trees[1])
    assert step == expected
    assert_bitwise_equal(restored, trees[expected])
    with pytest.warns(UserWarning, match=re.escape(str(partial))):  # an explicit step, too
        checkpoint.restore(tmp_path, trees[1], step=1)

    new = {"w": jnp.full((64,), -3.0), "n": jnp.int32(-3)}
    checkpoint.save(tmp_path, 3 if expected == 2 else 2, new)  # cleans up / replaces the partial
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_bitwise_equal(checkpoint.restore(tmp_path, new)[1], new)


@pytest.mark.parametrize(
    ("target", "damage"),
    [("array", "flip"), ("array", "truncate"), ("info", "flip"), ("manifest", "truncate")],
)
def test_a_corrupted_file_is_detected_and_named(tmp_path, target, damage):
    trees = save_steps(tmp_path, [1, 2])
    folder = tmp_path / "step_2"
    path = {
        "array": largest_array_file(folder),
        "info": folder / "checkpoint.json",
        "manifest": folder / "manifest.json",
    }[target]
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(bytes(data[: len(data) // 2]))

    with pytest.raises(CorruptCheckpointError, match=re.escape(str(path))):
        checkpoint.restore(tmp_path, trees[2], step=2)
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        step, restored, _ = checkpoint.restore(tmp_path, trees[2])
    assert step == 1
    assert_bitwise_equal(restored, trees[1])


def test_every_checkpoint_corrupted_raises(tmp_path):
    trees = save_steps(tmp_path, [1])
    (tmp_path / "step_1" / "stray.bin").write_bytes(b"x")
    with pytest.warns(UserWarning), pytest.raises(CorruptCheckpointError, match=r"stray\.bin"):
        checkpoint.restore(tmp_path, trees[1])


def write_arrays_then_fail(write: Callable, only: str = "") -> Callable:
    """A disk that fills up once the arrays of a checkpoint (of a temporary directory whose
    name starts with ``only``) are written."""

    def failing(path: Path, arrays: dict) -> None:
        write(path, arrays)
        if path.parent.name.startswith(only):
            raise OSError(errno.ENOSPC, "No space left on device")

    return failing


def write_half_a_manifest(write: Callable, only: str = "") -> Callable:
    """A disk that fills up half-way through the manifest (of a temporary directory whose name
    starts with ``only``)."""

    def failing(path: Path, data: bytes) -> None:
        if path.name != "manifest.json" or not path.parent.name.startswith(only):
            return write(path, data)
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return failing


@pytest.mark.parametrize(
    ("writer", "failing"),
    [("_write_arrays", write_arrays_then_fail), ("_write_file", write_half_a_manifest)],
    ids=["after-the-arrays", "in-the-manifest"],
)
def test_disk_full_during_a_save_leaves_the_previous_checkpoint_intact(
    tmp_path, monkeypatch, writer, failing
):
    trees = save_steps(tmp_path, [1])
    monkeypatch.setattr(checkpoint, writer, failing(getattr(checkpoint, writer)))
    with pytest.raises(OSError) as error:
        checkpoint.save(tmp_path, 2, trees[1], max_to_keep=1)
    assert error.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["step_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step, restored, _ = checkpoint.restore(tmp_path, trees[1])
    assert step == 1
    assert_bitwise_equal(restored, trees[1])


def test_max_to_keep_prunes_the_oldest_complete_checkpoints(tmp_path):
    save_steps(tmp_path, [1, 2, 3, 4, 5], max_to_keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_4", "step_5"]
    save_steps(tmp_path, [3], max_to_keep=2)  # the checkpoint just written is never pruned
    assert checkpoint.all_steps(tmp_path) == [3, 5]


def test_existing_step_is_never_overwritten(tmp_path):
    trees = save_steps(tmp_path, [1])
    with pytest.raises(FileExistsError, match="step_1"):
        checkpoint.save(tmp_path, 1, {"w": jnp.zeros(64), "n": jnp.int32(0)})
    assert_bitwise_equal(checkpoint.restore(tmp_path, trees[1])[1], trees[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"step": -1}, ValueError, "step must be a non-negative int"),
        ({"step": True}, ValueError, "step must be a non-negative int"),
        ({"max_to_keep": 0}, ValueError, "max_to_keep must be None or a positive int"),
        ({"metadata": {"lr": np.float32(0.1)}}, TypeError, "metadata must be JSON-serialisable"),
        ({"metadata": [1]}, TypeError, "metadata must be a dict"),
        (
            {"tree": {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}},
            TypeError,
            "not a concrete array",
        ),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path, kwargs, error, message):
    arguments = {"directory": tmp_path / "ckpt", "step": 1, "tree": {"w": jnp.ones(2)}, **kwargs}
    with pytest.raises(error, match=message):
        checkpoint.save(**arguments)
    assert not (tmp_path / "ckpt").exists()


class Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("where", ["array-file", "forged-arrays", "forged-info", "step-folder"])
def test_a_pickle_payload_is_never_executed(tmp_path, where):
    directory, marker = tmp_path / "ckpt", tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    pickle.loads(payload).close()  # the payload is live ...
    assert marker.exists()
    marker.unlink()  # ... so the marker's absence below means it was never unpickled

    trees = save_steps(directory, [1, 2])
    folder = directory / "step_2"
    if where == "array-file":  # swapped in, manifest untouched
        largest_array_file(folder).write_bytes(payload)
    elif where == "forged-arrays":  # every orbax file replaced, manifest forged to match
        for path in (folder / "arrays").rglob("*"):
            if path.is_file():
                path.write_bytes(payload)
        checkpoint._seal(folder)
    elif where == "forged-info":
        (folder / "checkpoint.json").write_bytes(payload)
        checkpoint._seal(folder)
    else:  # a pickle file where a checkpoint folder is expected
        directory.joinpath("step_3").write_bytes(payload)
        with pytest.raises(FileNotFoundError, match="no complete checkpoint for step 3"):
            checkpoint.restore(directory, trees[2], step=3)

    if where != "step-folder":
        with pytest.raises(CorruptCheckpointError, match=re.escape(str(folder))):
            checkpoint.restore(directory, trees[2], step=2)
    with pytest.warns(UserWarning, match="step_3" if where == "step-folder" else "step_2"):
        step, restored, _ = checkpoint.restore(directory, trees[2])
    expected = 2 if where == "step-folder" else 1
    assert step == expected
    assert_bitwise_equal(restored, trees[expected])
    assert not marker.exists()


def test_restore_never_unpickles(tmp_path, monkeypatch):
    tree = optax_like_state()
    checkpoint.save(tmp_path, 1, tree)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("restore unpickled or called np.load")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (np, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    assert_bitwise_equal(checkpoint.restore(tmp_path, tree)[1], tree)


SAVE_LOOP = textwrap.dedent(
    """
    import itertools, sys
    import numpy as np
    from optim import checkpoint

    base = np.random.default_rng(0).standard_normal(1 << 22, dtype=np.float32)  # 16 MiB
    for step in itertools.count(1):
        tree = {"w": base + np.float32(step), "count": np.int32(step)}
        checkpoint.save(sys.argv[1], step, tree, max_to_keep=2)
    """
)


def test_sigkill_during_a_save_loop_leaves_a_complete_checkpoint(tmp_path):
    directory, log = tmp_path / "ckpt", tmp_path / "stderr.txt"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    root = Path(checkpoint.__file__).resolve().parents[2]  # the child imports this optim
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(directory)], cwd=root, env=env, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 120
        while checkpoint.latest_step(directory) is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the save loop never completed a checkpoint"
            time.sleep(0.005)
        delay = random.uniform(0.0, 0.5)
        time.sleep(delay)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -9, log.read_text()

    base = np.random.default_rng(0).standard_normal(1 << 22, dtype=np.float32)
    template = {"w": base, "count": np.int32(0)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step, restored, _ = checkpoint.restore(directory, template)
    assert all("partial checkpoint" in str(w.message) for w in caught), caught
    assert_bitwise_equal(restored, {"w": base + np.float32(step), "count": np.int32(step)})

    checkpoint.save(directory, step + 100, template)  # the next save clears the debris
    assert not any(p.name.startswith(".tmp-") for p in directory.iterdir()), delay

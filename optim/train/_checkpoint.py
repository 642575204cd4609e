"""Checkpoints of pytrees on disk: atomic, checksummed, restored into the template's exact types.

The functions::

    path = save(directory, step, tree, metadata={"lr": 1e-3}, max_to_keep=3)
    step, tree, metadata = restore(directory, template)      # latest complete checkpoint
    step, tree, metadata = restore(directory, template, step=100)
    latest_step(directory), all_steps(directory)               # complete checkpoints only
    restored = restore_latest(directory, lambda step: template_at_step)  # or None

``tree`` is any pytree (dicts, lists, tuples, NamedTuples, dataclass pytrees such as optim's
optimizers and equinox modules) whose leaves are JAX or NumPy arrays, NumPy or Python scalars,
PRNG keys (raw ``uint32`` or typed ``jax.random.key``) or ``None``. Leaves of any other kind
(functions, strings: the non-array leaves of an equinox module) are not written; ``restore`` takes
them from the template. The arrays are written by orbax-checkpoint (tensorstore, zarr and JSON;
nothing is pickled, and nothing here unpickles or calls ``np.load``); ``metadata`` is stored as
JSON next to them.

Layout of ``directory``::

    step_<N>/                       one checkpoint; complete when manifest.json is inside
        arrays/                     orbax-checkpoint's files for the non-empty array leaves
        checkpoint.json             format, step, leaf paths/kinds/dtypes/shapes, metadata
        manifest.json               size and sha256 of every other file, written last
    .tmp-step_<N>-<random>/         a save in progress, or one that was interrupted

**Completeness.** A checkpoint is complete exactly when ``step_<N>/manifest.json`` exists. ``save``
writes everything into a hidden ``.tmp-step_<N>-<random>`` folder, fsyncs every file and folder
in it, writes and fsyncs the manifest, and only then renames the folder to ``step_<N>`` (atomic on
POSIX filesystems) and fsyncs ``directory``. A save killed at any moment therefore leaves the
earlier checkpoints untouched and at most a ``.tmp-`` folder (ignored by ``restore``, with a
warning, and deleted by the next ``save``). Nothing is overwritten: saving a step that already has
a complete checkpoint raises ``FileExistsError``, and ``max_to_keep`` deletes old checkpoints only
after the new one is complete (each is first renamed to a ``.tmp-`` name, so a half-deleted one
never looks complete). One process writes to a directory at a time.

**Corruption.** ``restore`` checks that the files of a checkpoint are exactly those in its
manifest, with the recorded sizes and sha256 digests, before it reads anything else. A mismatch
raises :class:`CorruptCheckpointError` naming the file; without an explicit ``step``, ``restore``
instead warns (naming the file) and falls back to the previous complete checkpoint.

Example::

    >>> import tempfile, jax.numpy as jnp
    >>> from optim import checkpoint
    >>> d = tempfile.mkdtemp()
    >>> path = checkpoint.save(d, 10, {"w": jnp.ones(3)}, metadata={"lr": 0.1})
    >>> checkpoint.restore(d, {"w": jnp.zeros(3)})
    (10, {'w': Array([1., 1., 1.], dtype=float32)}, {'lr': 0.1})
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from optim._keywords import suggest_keywords
from optim._tree import PyTree, keystr
from optim._warnings import warn_user

__all__ = [
    "CorruptCheckpointError",
    "Restored",
    "all_steps",
    "latest_step",
    "restore",
    "restore_latest",
    "save",
]

_FORMAT = "optim.checkpoint/1"
_ARRAYS = "arrays"
_INFO = "checkpoint.json"
_MANIFEST = "manifest.json"
_TMP = ".tmp-"
_STEP_DIR = re.compile(r"step_(0|[1-9][0-9]*)")
_TMP_DIR = re.compile(r"\.tmp-step_(0|[1-9][0-9]*)-[0-9a-f]+")
_ARRAY_TYPES = (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)
_SCALAR_TYPES = (bool, int, float, complex)


class CorruptCheckpointError(ValueError):
    """A checkpoint's files do not match its manifest, or cannot be decoded."""


@suggest_keywords
def save(
    directory: str | os.PathLike[str],
    step: int,
    tree: PyTree,
    *,
    metadata: dict[str, Any] | None = None,
    max_to_keep: int | None = None,
) -> Path:
    """Write a complete checkpoint of ``tree`` for ``step``; return its folder.

    Args:
      directory: where checkpoints live; created if missing.
      step: a non-negative int, unique within ``directory``.
      tree: the pytree to save (see the module docstring for the leaves it may hold).
      metadata: a JSON-serialisable dict, returned as it is by ``restore``.
      max_to_keep: after the new checkpoint is complete, delete the oldest complete ones so that
        it and the ``max_to_keep - 1`` highest-numbered others remain. ``None`` keeps all.

    Raises:
      FileExistsError: ``directory`` already holds a complete checkpoint for ``step``.
      TypeError: ``metadata`` is not JSON-serialisable, or a leaf of ``tree`` is not concrete.
      ValueError: ``step`` or ``max_to_keep`` is out of range.
      OSError: writing failed (disk full, ...); earlier checkpoints are intact and the partial
        one is removed.

    Returns:
      The checkpoint's folder, ``directory / f"step_{step}"`` as an absolute
      :class:`pathlib.Path`.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from optim import checkpoint
      >>> tmp = tempfile.TemporaryDirectory()
      >>> path = checkpoint.save(tmp.name, 10, {"w": jnp.ones(3)}, metadata={"lr": 0.1})
      >>> path.name, checkpoint.all_steps(tmp.name)
      ('step_10', [10])
      >>> tmp.cleanup()
    """
    step = _check_step(step)
    if max_to_keep is not None and (
        isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1
    ):
        raise ValueError(f"max_to_keep must be None or a positive int, got {max_to_keep!r}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"metadata must be JSON-serialisable (convert arrays with .tolist()): {e}"
        ) from None
    records, arrays = _encode(tree)
    info = {"format": _FORMAT, "step": step, "leaves": records, "metadata": metadata or {}}

    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step}"
    if (final / _MANIFEST).is_file():
        raise FileExistsError(f"{final} already holds a complete checkpoint for step {step}")
    for entry in directory.iterdir():  # leftovers of interrupted saves and deletions
        if entry.name.startswith(_TMP):
            _remove(entry)
    tmp = directory / f"{_TMP}step_{step}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        if arrays:
            _write_arrays(tmp / _ARRAYS, arrays)
        _write_file(tmp / _INFO, json.dumps(info, indent=1).encode())
        _seal(tmp)
        if final.exists() or final.is_symlink():  # an incomplete step_<N> left by hand
            _discard(final)
        os.rename(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(directory)
    if max_to_keep is not None:
        older = sorted(s for s in _scan(directory)[0] if s != step)
        for old in older[: max(0, len(older) - (max_to_keep - 1))]:
            _discard(directory / f"step_{old}")
    return final


@suggest_keywords
def restore(
    directory: str | os.PathLike[str], template: PyTree, step: int | None = None
) -> tuple[int, PyTree, dict[str, Any]]:
    """Read a checkpoint back into the tree types, dtypes and shapes of ``template``.

    Args:
      directory: the folder given to ``save``.
      template: a pytree like the saved one (its values are not used). Leaves that are JAX
        arrays or ``jax.ShapeDtypeStruct`` come back as JAX arrays with the same sharding;
        NumPy arrays and scalars, Python scalars and typed PRNG keys come back as such;
        non-array leaves and ``None`` are taken from the template.
      step: the step to restore; ``None`` for the latest complete checkpoint.

    Returns:
      ``(step, tree, metadata)``.

    Raises:
      FileNotFoundError: ``directory`` is missing, or holds no complete checkpoint (for ``step``).
      ValueError: the checkpoint's leaf paths, kinds, dtypes or shapes differ from the template's
        (a checkpoint from a different model structure); the message names the first leaves
        that differ.
      CorruptCheckpointError: a file of the checkpoint is missing, truncated or altered (the
        message names it). Without ``step``, a corrupted checkpoint is skipped with a warning
        in favour of the previous complete one; this is raised only when none is intact.

    Warns:
      UserWarning: naming each partial (interrupted) checkpoint newer than the restored one,
        and each corrupted checkpoint skipped. When the template depends on the step, use
        ``restore_latest``, which falls back the same way.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from optim import checkpoint
      >>> tmp = tempfile.TemporaryDirectory()
      >>> _ = checkpoint.save(tmp.name, 10, {"w": jnp.ones(3)}, metadata={"lr": 0.1})
      >>> step, tree, metadata = checkpoint.restore(tmp.name, {"w": jnp.zeros(3)})
      >>> step, tree["w"], metadata
      (10, Array([1., 1., 1.], dtype=float32), {'lr': 0.1})
      >>> tmp.cleanup()
    """
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    complete, partial = _scan(directory)
    if step is not None:
        step = _check_step(step)
        if step not in complete:
            raise FileNotFoundError(
                f"{directory} holds no complete checkpoint for step {step}; complete steps: "
                f"{sorted(complete)}"
            )
    elif not complete:
        raise FileNotFoundError(
            f"{directory} holds no complete checkpoint"
            + "".join(f"; {path} is partial (an interrupted save)" for _, path in partial)
        )
    if step is None:
        step, tree, metadata, _ = restore_latest(directory, lambda _: template)
        return step, tree, metadata
    tree, metadata = _load(complete[step], step, template)
    _warn_partial(partial, step, stacklevel=2)
    return step, tree, metadata


def _warn_partial(partial: list[tuple[int, Path]], step: int, stacklevel: int) -> None:
    for partial_step, path in sorted(partial):
        if partial_step > step:
            warn_user(
                f"ignoring partial checkpoint {path} (an interrupted save); restoring step {step}",
                stacklevel=stacklevel,
            )


class Restored(NamedTuple):
    """What ``restore_latest`` read: the step, tree and metadata of the newest intact
    checkpoint, and the newer steps it skipped as corrupted.

    Attributes:
      step: the step of the checkpoint read, an int.
      tree: the pytree read, in the structure and types of the template.
      metadata: the dict given to ``save`` as ``metadata`` (``{}`` if none was).
      corrupted: the steps of newer checkpoints skipped as corrupted, newest first (``()``
        when none was).
    """

    step: int
    tree: PyTree
    metadata: dict[str, Any]
    corrupted: tuple[int, ...]


@suggest_keywords
def restore_latest(
    directory: str | os.PathLike[str],
    template_at: Callable[[int], PyTree],
    *,
    stacklevel: int = 2,
) -> Restored | None:
    """The newest intact checkpoint in ``directory``, read into ``template_at(step)``.

    A corrupted checkpoint is skipped with a warning naming its file, in favour of the one
    before it; partial (interrupted) checkpoints newer than the one read are named in a
    warning too.

    Args:
      directory: the folder given to ``save``; it need not exist.
      template_at: a function ``step -> template``, the pytree to read the checkpoint of that
        step into (as ``template`` of :func:`restore`), for templates that depend on the step.
      stacklevel: where the warnings point, counted as :func:`warnings.warn`'s
        ``stacklevel`` from the first calling frame outside ``optim`` (2, the default: that
        frame, the line that called into the library; 3: the one above it).

    Returns:
      A :class:`Restored` ``(step, tree, metadata, corrupted)``, or None when ``directory``
      holds no complete checkpoint (or does not exist).

    Raises:
      CorruptCheckpointError: every complete checkpoint is corrupted.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from optim import checkpoint
      >>> tmp = tempfile.TemporaryDirectory()
      >>> print(checkpoint.restore_latest(tmp.name, lambda step: {"w": jnp.zeros(2)}))
      None
      >>> _ = checkpoint.save(tmp.name, 3, {"w": jnp.ones(2)})
      >>> restored = checkpoint.restore_latest(tmp.name, lambda step: {"w": jnp.zeros(2)})
      >>> restored.step, restored.tree["w"], restored.corrupted
      (3, Array([1., 1.], dtype=float32), ())
      >>> tmp.cleanup()
    """
    directory = Path(directory).absolute()
    if not directory.is_dir():
        return None
    complete, partial = _scan(directory)
    errors, corrupted = [], []
    for step in sorted(complete, reverse=True):
        try:
            tree, metadata = _load(complete[step], step, template_at(step))
        except CorruptCheckpointError as e:
            warn_user(f"skipping a corrupted checkpoint: {e}", stacklevel=stacklevel)
            errors.append(str(e))
            corrupted.append(step)
            continue
        _warn_partial(partial, step, stacklevel)
        return Restored(step, tree, metadata, tuple(corrupted))
    if errors:
        raise CorruptCheckpointError(
            f"every checkpoint in {directory} is corrupted (move them away to start afresh): "
            + "; ".join(errors)
        )
    return None


@suggest_keywords
def all_steps(directory: str | os.PathLike[str]) -> list[int]:
    """The steps of the complete checkpoints in ``directory``, ascending (``[]`` if missing).

    Completeness is the presence of the manifest; checksums are verified by ``restore``.

    Args:
      directory: the folder given to ``save``; it need not exist.

    Returns:
      A list of ints, ascending; ``[]`` when ``directory`` is missing or holds no complete
      checkpoint.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from optim import checkpoint
      >>> tmp = tempfile.TemporaryDirectory()
      >>> for step in (5, 1):
      ...     _ = checkpoint.save(tmp.name, step, {"w": jnp.ones(2)})
      >>> checkpoint.all_steps(tmp.name)
      [1, 5]
      >>> tmp.cleanup()
    """
    directory = Path(directory)
    return sorted(_scan(directory)[0]) if directory.is_dir() else []


@suggest_keywords
def latest_step(directory: str | os.PathLike[str]) -> int | None:
    """The highest step with a complete checkpoint in ``directory``, or ``None``.

    Args:
      directory: the folder given to ``save``; it need not exist.

    Returns:
      An int, or None when ``directory`` is missing or holds no complete checkpoint.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> from optim import checkpoint
      >>> tmp = tempfile.TemporaryDirectory()
      >>> print(checkpoint.latest_step(tmp.name))
      None
      >>> _ = checkpoint.save(tmp.name, 7, {"w": jnp.ones(2)})
      >>> checkpoint.latest_step(tmp.name)
      7
      >>> tmp.cleanup()
    """
    steps = all_steps(directory)
    return steps[-1] if steps else None


def _check_step(step: Any) -> int:
    try:
        value = operator.index(step)
    except TypeError:
        value = -1
    if isinstance(step, bool) or value < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return value


def _scan(directory: Path) -> tuple[dict[int, Path], list[tuple[int, Path]]]:
    """Complete checkpoints ``{step: folder}`` and partial ones ``[(step, path)]``."""
    complete, partial = {}, []
    for entry in directory.iterdir():
        if match := _STEP_DIR.fullmatch(entry.name):
            if (entry / _MANIFEST).is_file():
                complete[int(match[1])] = entry
            else:
                partial.append((int(match[1]), entry))
        elif match := _TMP_DIR.fullmatch(entry.name):
            partial.append((int(match[1]), entry))
    return complete, partial


def _spec(path: Any, leaf: Any) -> dict[str, Any]:
    """What identifies a leaf's place in the structure: its path, kind, dtype and shape."""
    if isinstance(leaf, _ARRAY_TYPES):
        key = jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
        kind, dtype, shape = "key" if key else "array", str(leaf.dtype), list(leaf.shape)
    elif isinstance(leaf, _SCALAR_TYPES):
        kind, dtype, shape = "array", str(np.asarray(leaf).dtype), []
    else:
        kind, dtype, shape = ("none" if leaf is None else "other"), "", []
    return {"path": keystr(path), "kind": kind, "dtype": dtype, "shape": shape}


def _identity(record: dict[str, Any]) -> tuple[Any, ...]:
    return record["path"], record["kind"], record["dtype"], tuple(record["shape"])


def _describe(record: dict[str, Any] | None) -> str:
    if record is None:
        return "no leaf"
    if record["kind"] == "none":
        return "None"
    if record["kind"] == "other":
        return "a non-array leaf"
    return f"{record['dtype']}[{','.join(map(str, record['shape']))}]"


def _flatten(tree: PyTree) -> tuple[list[tuple[Any, Any]], Any]:
    return jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)


def _encode(tree: PyTree) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The leaf records for checkpoint.json and the non-empty arrays for orbax."""
    records, arrays = [], {}
    for i, (path, leaf) in enumerate(_flatten(tree)[0]):
        if isinstance(leaf, jax.core.Tracer):
            raise TypeError(
                f"tree{keystr(path)} is a traced value (save was called inside jit, vmap or "
                "grad); a checkpoint holds concrete arrays: call save outside the transformation"
            )
        record = _spec(path, leaf)
        if record["kind"] == "key":
            data = np.asarray(jax.random.key_data(leaf))
            record.update(
                impl=str(jax.random.key_impl(leaf)),
                data_dtype=str(data.dtype),
                data_shape=list(data.shape),
            )
        elif record["kind"] == "array":
            data = np.asarray(leaf)
            if str(data.dtype) != record["dtype"]:
                raise TypeError(f"tree{record['path']} is not a concrete array: {leaf!r}")
        else:
            data = None
        if data is not None and data.size:  # orbax refuses empty arrays, which hold no bytes
            arrays[f"leaf_{i}"] = data
        records.append(record)
    return records, arrays


def _layout(record: dict[str, Any]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the array stored for a leaf (a key's raw data for typed keys)."""
    if record["kind"] == "key":
        return tuple(record["data_shape"]), np.dtype(record["data_dtype"])
    return tuple(record["shape"]), np.dtype(record["dtype"])


def _decode(record: dict[str, Any], data: np.ndarray, like: Any) -> Any:
    """The stored ``data`` as a leaf of the template's type (``like``)."""
    if record["kind"] == "key":
        keys = jax.random.wrap_key_data(data, impl=record["impl"])
        return jax.device_put(keys, getattr(like, "sharding", None))
    if isinstance(like, (jax.Array, jax.ShapeDtypeStruct)):
        return jax.device_put(data, like.sharding)
    if isinstance(like, np.ndarray):
        return data
    return data[()] if isinstance(like, np.generic) else data.item()


def _load(folder: Path, step: int, template: PyTree) -> tuple[PyTree, dict[str, Any]]:
    """Verify one complete checkpoint and read it into the template's structure."""
    _verify(folder)
    try:
        info = json.loads((folder / _INFO).read_bytes())
        if info["format"] != _FORMAT or info["step"] != step:
            raise ValueError(f"format {info['format']!r} and step {info['step']!r}")
        records, metadata = list(info["leaves"]), dict(info["metadata"])
        saved = [_identity(r) for r in records]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptCheckpointError(f"{folder / _INFO} is malformed: {e!r}") from e

    pairs, treedef = _flatten(template)
    wanted = [_spec(path, leaf) for path, leaf in pairs]
    if saved != [_identity(r) for r in wanted]:
        raise ValueError(_mismatch(folder, records, wanted))

    needed = {i for i, r in enumerate(records) if r["kind"] in ("array", "key")}
    stored = {i for i in needed if math.prod(_layout(records[i])[0])}
    arrays = _read_arrays(folder / _ARRAYS) if stored else {}
    leaves = []
    for i, (record, (_, like)) in enumerate(zip(records, pairs, strict=True)):
        if i not in needed:
            leaves.append(like)
            continue
        shape, dtype = _layout(record)
        data = np.asarray(arrays.get(f"leaf_{i}")) if i in stored else np.zeros(shape, dtype)
        if data.shape != shape or data.dtype != dtype:
            raise CorruptCheckpointError(
                f"{folder / _ARRAYS} holds {data.dtype}{list(data.shape)} for "
                f"{record['path']}, checkpoint.json says {dtype}{list(shape)}"
            )
        leaves.append(_decode(record, data, like))
    return jax.tree_util.tree_unflatten(treedef, leaves), metadata


def _mismatch(folder: Path, saved: list[dict], wanted: list[dict]) -> str:
    by_path = [{r["path"]: r for r in records} for records in (saved, wanted)]
    differences = [
        f"{path}: checkpoint has {_describe(by_path[0].get(path))}, "
        f"template has {_describe(by_path[1].get(path))}"
        for path in dict.fromkeys([*by_path[0], *by_path[1]])
        if by_path[0].get(path) is None
        or by_path[1].get(path) is None
        or _identity(by_path[0][path]) != _identity(by_path[1][path])
    ] or ["the same leaves in a different order"]
    more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
    return (
        f"checkpoint {folder} does not match the template's structure (a checkpoint from a "
        f"different model structure?): {'; '.join(differences[:3])}{more}"
    )


def _files(root: Path) -> set[str]:
    """Paths of all files under ``root``, relative and '/'-separated, manifest excluded."""
    found = set()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            found.add((Path(dirpath) / name).relative_to(root).as_posix())
    return found - {_MANIFEST}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _seal(folder: Path) -> None:
    """fsync every file and folder under ``folder``, then write the manifest, fsynced."""
    files = {}
    for rel in sorted(_files(folder)):
        path = folder / rel
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    for dirpath, _, _ in os.walk(folder):
        _fsync_dir(Path(dirpath))
    manifest = {"format": _FORMAT, "files": files}
    _write_file(folder / _MANIFEST, json.dumps(manifest, indent=1).encode())
    _fsync_dir(folder)


def _verify(folder: Path) -> None:
    """Raise CorruptCheckpointError unless the files match the manifest exactly."""
    manifest_path = folder / _MANIFEST
    try:
        manifest = json.loads(manifest_path.read_bytes())
        if manifest["format"] != _FORMAT:
            raise ValueError(f"unknown format {manifest['format']!r}")
        expected = {
            str(k): (int(v["size"]), str(v["sha256"])) for k, v in manifest["files"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptCheckpointError(f"{manifest_path} is unreadable: {e!r}") from e
    found = _files(folder)
    if missing := sorted(expected.keys() - found):
        raise CorruptCheckpointError(
            f"{folder / missing[0]} is listed in {manifest_path} but missing"
        )
    if extra := sorted(found - expected.keys()):
        raise CorruptCheckpointError(f"{folder / extra[0]} is not listed in {manifest_path}")
    for rel in sorted(found):
        path, (size, sha256) = folder / rel, expected[rel]
        if path.stat().st_size != size:
            raise CorruptCheckpointError(
                f"{path} is truncated or corrupted: {path.stat().st_size} bytes, the manifest "
                f"records {size}"
            )
        if _sha256(path) != sha256:
            raise CorruptCheckpointError(
                f"{path} is corrupted: its sha256 differs from the manifest"
            )


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # orbax (and tensorstore under it) take ~0.4 s to import: only a save or restore pays that.
    import orbax.checkpoint as ocp

    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
        checkpointer.save(path, args=ocp.args.StandardSave(arrays))


def _read_arrays(path: Path) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    try:
        with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as checkpointer:
            return dict(checkpointer.restore(path))
    except Exception as e:  # whatever orbax/tensorstore raise on undecodable files
        raise CorruptCheckpointError(f"cannot decode the arrays in {path}: {e!r}") from e


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(directory: str | os.PathLike[str], step: int) -> None:
    """Delete the checkpoint of ``step`` (complete, partial or corrupted), atomically: it
    is no longer a checkpoint before any of its files goes."""
    _discard(Path(directory).absolute() / f"step_{_check_step(step)}")


def _discard(path: Path) -> None:
    """Rename ``path`` to a .tmp- name (atomically no longer a checkpoint), then delete it."""
    trash = path.with_name(f"{_TMP}discard-{uuid.uuid4().hex}")
    os.rename(path, trash)
    _remove(trash)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

"""What the example programs need besides their own code: offline data and a loss record.

The programs in this folder are public optax, flax and equinox training programs. Their
originals download MNIST (tensorflow_datasets, Hugging Face ``datasets``, torchvision); here
they train on scikit-learn's 8x8 handwritten digits, made to look like MNIST, so that they run
offline in seconds. ``record`` writes the losses a program reports, so that a test can run the
program with optax and with optim and compare the two.
"""

from __future__ import annotations

import json
import os

import numpy as np

# Where ``record`` writes the losses, as JSON: {name: [float, ...], ...}. Unset: print only.
LOSSES_ENV = "EXAMPLE_LOSSES_JSON"
# scikit-learn's digits: 1797 images; the first TRAIN_SIZE are the training split.
TRAIN_SIZE = 1500

_recorded: dict[str, list[float]] = {}


def record(name: str, values) -> None:
    """Record a series of losses under ``name``, print it, and write all series so far."""
    values = [float(v) for v in np.ravel(np.asarray(values, dtype=np.float64))]
    _recorded[name] = values
    print(f"{name}: {len(values)} values, first {values[0]:.6g}, last {values[-1]:.6g}")
    path = os.environ.get(LOSSES_ENV)
    if path:
        with open(path, "w") as f:
            json.dump(_recorded, f)


def mnist_like_digits() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """scikit-learn's digits as MNIST: (train, test) dicts of uint8 ``image`` (N, 28, 28, 1) in
    [0, 255] and int64 ``label`` (N,), the fields tensorflow_datasets' "mnist" has.

    Each 8x8 image (values 0..16) is scaled to 0..255, upsampled 3x to 24x24 by repeating
    pixels and padded with a 2-pixel black border to 28x28, so that the models written for
    MNIST's shape run unchanged.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.kron(images, np.ones((1, 3, 3), np.uint8))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None]
    labels = digits.target.astype(np.int64)
    train = {"image": images[:TRAIN_SIZE], "label": labels[:TRAIN_SIZE]}
    test = {"image": images[TRAIN_SIZE:], "label": labels[TRAIN_SIZE:]}
    return train, test


def batched(source, batch_size, *, shuffle_seed=None, map_fn=None, limit=None):
    """The batches of a grain ``MapDataset.source(source).shuffle(seed).map(fn).batch(size,
    drop_remainder=True)`` pipeline, as a list (re-iterable, with a length, as grain's is).

    ``limit`` keeps only the first examples (after shuffling), to make a run short.
    """
    n = len(source["label"])
    order = np.arange(n)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(n)
    if limit is not None:
        order = order[:limit]
    batches = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        examples = [{key: value[i] for key, value in source.items()} for i in index]
        if map_fn is not None:
            examples = [map_fn(x) for x in examples]
        batches.append(_stack(examples))
    return batches


def _stack(examples):
    first = examples[0]
    if isinstance(first, dict):
        return {key: np.stack([x[key] for x in examples]) for key in first}
    return tuple(np.stack(column) for column in zip(*examples, strict=True))


class _Tensor(np.ndarray):
    """A NumPy array with torch's ``.numpy()``, as a torch DataLoader's batches have."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


class TorchLikeLoader:
    """A ``torch.utils.data.DataLoader(dataset, batch_size, shuffle=...)`` over (x, y) arrays:
    a new order each pass when shuffling (from a seeded generator), a last partial batch, and
    batches with ``.numpy()``."""

    def __init__(self, x, y, batch_size, shuffle, seed=0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index].view(_Tensor), self.y[index].view(_Tensor)

"""Text for language models with no download: tokenizers, a corpus, next-token windows.

A typical pipeline::

    text = text_lib.stdlib_corpus(max_bytes=1_000_000)          # Python source, offline
    tokens = text_lib.ByteTokenizer().encode(text)              # int32, one id per UTF-8 byte
    train, val = text_lib.train_validation_split(tokens, 0.1)   # contiguous, before windowing
    data = text_lib.windows(train, context_length=128)          # (inputs, targets) pairs
    optim.fit(models.lm_loss, model, optim.adamw(3e-4), data, steps=1000, batch_size=32, key=key)

Tokenizers work on the host (numpy); ``windows`` returns JAX arrays ready for ``optim.fit``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sysconfig
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from models.linear import check_positive_int

__all__ = [
    "ByteTokenizer",
    "CharTokenizer",
    "Windows",
    "stdlib_corpus",
    "train_validation_split",
    "unigram_entropy",
    "windows",
]

# Left out of the corpus: third-party packages (they change with every `pip install`) and the
# test suites (Linux distributions often ship them separately), so that the corpus depends on
# the interpreter's version only.
_EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test"})


def _token_ids(tokens: ArrayLike, vocab_size: int) -> np.ndarray:
    """``tokens`` as a numpy integer array, checked to lie in ``[0, vocab_size)``."""
    ids = np.asarray(tokens)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"`tokens` must hold integer token ids, got dtype {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"`tokens` must lie in [0, vocab_size={vocab_size}), got values in "
            f"[{ids.min()}, {ids.max()}]."
        )
    return ids


@dataclasses.dataclass(frozen=True)
class ByteTokenizer:
    """One token per byte of the UTF-8 encoding: any string, 256 ids, no vocabulary to build.

    ``decode`` replaces byte sequences that are not valid UTF-8 (which a sampled sequence can
    contain) with U+FFFD rather than failing.

    Attributes:
      vocab_size: 256, one id per byte value (not an argument).

    Examples:
      >>> from models import text
      >>> tokenizer = text.ByteTokenizer()
      >>> ids = tokenizer.encode("hé")
      >>> ids.tolist(), tokenizer.decode(ids)
      ([104, 195, 169], 'hé')
    """

    vocab_size: int = dataclasses.field(default=256, init=False)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of shape ``(len(text.encode("utf-8")),)``, each in ``[0, 256)``."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str, got {type(text).__name__}.")
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, tokens: ArrayLike) -> str:
        """The string whose UTF-8 bytes are ``tokens`` (a 1-D array of ids in ``[0, 256)``)."""
        ids = _token_ids(tokens, self.vocab_size)
        return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


@dataclasses.dataclass(frozen=True)
class CharTokenizer:
    """One token per character, over the characters of a corpus (sorted by code point).

    Build it with ``CharTokenizer.from_text(corpus)``; token ``i`` is ``chars[i]``. A smaller
    vocabulary than bytes for ASCII-heavy text, and one token per non-ASCII character.

    Attributes:
      chars: the vocabulary, distinct characters sorted by code point; ``vocab_size`` is
        ``len(chars)``.

    Examples:
      >>> from models import text
      >>> tokenizer = text.CharTokenizer.from_text("hello")
      >>> tokenizer.chars, tokenizer.encode("hole").tolist()
      ('ehlo', [1, 3, 2, 0])
    """

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is the distinct characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str, got {type(text).__name__}.")
        if not text:
            raise ValueError("`text` is empty: there are no characters to build a vocabulary.")
        return cls(chars="".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def _code_points(self) -> np.ndarray:
        return np.array([ord(c) for c in self.chars], dtype=np.uint32)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of shape ``(len(text),)``; ``ValueError`` for characters not in ``chars``."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str, got {type(text).__name__}.")
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        vocab = self._code_points()
        ids = np.minimum(np.searchsorted(vocab, points), len(vocab) - 1)
        unknown = vocab[ids] != points
        if unknown.any():
            missing = "".join(sorted({chr(p) for p in points[unknown]}))
            raise ValueError(
                f"`text` has characters outside this tokenizer's vocabulary: {missing!r}; build "
                "the tokenizer from text that contains them, or use ByteTokenizer."
            )
        return ids.astype(np.int32)

    def decode(self, tokens: ArrayLike) -> str:
        """The string of ``chars[i]`` for each id ``i`` in ``tokens`` (1-D)."""
        ids = _token_ids(tokens, self.vocab_size)
        return self._code_points()[ids].astype("<u4").tobytes().decode("utf-32-le")


def stdlib_corpus(max_bytes: int | None = 1_000_000, seed: int = 0) -> str:
    """Python source code from the running interpreter's standard library, read from disk.

    The ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` (without ``site-packages``,
    ``dist-packages`` and the ``test``/``tests``/``idle_test`` directories, and without files
    that are not valid UTF-8) are listed in sorted order, shuffled with ``seed``, and
    concatenated, each preceded by a ``# file: <relative path>`` line. Nothing is downloaded;
    the same interpreter version and ``seed`` give the same text.

    Args:
      max_bytes: keep at most this many bytes of UTF-8 (cut at a character boundary), an int
        >= 1; ``None`` for the whole library (tens of megabytes).
      seed: the file order; a different seed gives a different mix of modules in the first
        ``max_bytes``.

    Returns:
      The text, a ``str`` of at most ``max_bytes`` UTF-8 bytes.

    Raises:
      RuntimeError: the standard library directory holds no ``.py`` file.

    Examples:
      >>> from models import text
      >>> corpus = text.stdlib_corpus(max_bytes=1000)
      >>> corpus.startswith("# file: "), len(corpus.encode("utf-8")) <= 1000
      (True, True)
    """
    if max_bytes is not None:
        check_positive_int("max_bytes", max_bytes)
    root = sysconfig.get_paths()["stdlib"]
    paths = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _EXCLUDED_DIRS]
        paths.extend(os.path.join(directory, f) for f in files if f.endswith(".py"))
    if not paths:
        raise RuntimeError(
            f"No .py files found under the standard library directory {root!r} (an embedded or "
            "zipped standard library?); build a corpus from your own text instead."
        )
    paths.sort()
    order = np.random.default_rng(seed).permutation(len(paths))
    parts, size = [], 0
    for i in order:
        with open(paths[i], "rb") as f:
            source = f.read()
        try:
            source.decode("utf-8")
        except UnicodeDecodeError:
            continue
        relative = os.path.relpath(paths[i], root).replace(os.sep, "/")
        part = f"# file: {relative}\n".encode() + source + b"\n"
        parts.append(part)
        size += len(part)
        if max_bytes is not None and size >= max_bytes:
            break
    data = b"".join(parts)[:max_bytes]
    # A cut inside a multi-byte character leaves an incomplete tail, which is dropped.
    return data.decode("utf-8", errors="ignore")


class Windows(NamedTuple):
    """Next-token prediction pairs: ``targets[i, t]`` is the token after ``inputs[i, t]``.

    Both are int32 of shape ``(num_windows, context_length)``; a pytree with a shared leading
    axis, as ``optim.fit`` wants ``data`` and ``lm_loss`` wants a batch.

    Attributes:
      inputs: int32 ``(num_windows, context_length)``, the tokens the model reads.
      targets: int32 ``(num_windows, context_length)``, the tokens it should predict:
        ``inputs`` shifted by one.
    """

    inputs: jax.Array
    targets: jax.Array


def windows(tokens: ArrayLike, context_length: int, *, stride: int | None = None) -> Windows:
    """Cut a token stream into ``(inputs, targets)`` windows for next-token prediction.

    Window ``i`` starts at ``i * stride``: ``inputs[i] = tokens[s : s + context_length]`` and
    ``targets[i] = tokens[s + 1 : s + context_length + 1]``. The default stride is
    ``context_length`` (non-overlapping inputs: every token is predicted once); a smaller
    stride gives overlapping windows. The tail that does not fill a window is dropped.

    Args:
      tokens: a 1-D integer array of token ids, at least ``context_length + 1`` of them.
      context_length: tokens per window, an int >= 1.
      stride: offset between consecutive windows, an int >= 1; default ``context_length``.

    Returns:
      A :class:`Windows` ``(inputs, targets)``, each int32 of shape
      ``(num_windows, context_length)``.

    Examples:
      >>> import numpy as np
      >>> from models import text
      >>> data = text.windows(np.arange(7), context_length=3)
      >>> data.inputs.tolist(), data.targets.tolist()
      ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    check_positive_int("context_length", context_length)
    stride = context_length if stride is None else stride
    check_positive_int("stride", stride)
    ids = np.asarray(tokens)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"`tokens` must be a 1-D integer array, got shape {ids.shape} and dtype {ids.dtype}."
        )
    if ids.shape[0] < context_length + 1:
        raise ValueError(
            f"`tokens` has {ids.shape[0]} tokens; one window of context_length={context_length} "
            f"needs {context_length + 1} (inputs plus the next token)."
        )
    starts = np.arange(0, ids.shape[0] - context_length, stride)
    chunks = ids[starts[:, None] + np.arange(context_length + 1)]
    return Windows(
        inputs=jnp.asarray(chunks[:, :-1], jnp.int32),
        targets=jnp.asarray(chunks[:, 1:], jnp.int32),
    )


def train_validation_split(
    tokens: ArrayLike, validation_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Split a token stream into a leading training part and a trailing validation part.

    The split is contiguous and happens before windowing, so no window holds tokens of both
    parts. ``validation_fraction`` of the tokens (rounded down, at least one) go to validation.

    Args:
      tokens: a 1-D array of token ids.
      validation_fraction: the fraction of the tokens held out, in (0, 1).

    Returns:
      ``(train, validation)``, two 1-D numpy arrays: the leading and the trailing part.

    Examples:
      >>> import numpy as np
      >>> from models import text
      >>> train, validation = text.train_validation_split(np.arange(10), 0.2)
      >>> train.tolist(), validation.tolist()
      ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    ids = np.asarray(tokens)
    if ids.ndim != 1:
        raise ValueError(f"`tokens` must be 1-D, got shape {ids.shape}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"`validation_fraction` must be in (0, 1), got {validation_fraction!r}.")
    num_val = max(1, math.floor(ids.shape[0] * validation_fraction))
    if num_val >= ids.shape[0]:
        raise ValueError(f"`tokens` has {ids.shape[0]} tokens: too few to split.")
    return ids[:-num_val], ids[-num_val:]


def unigram_entropy(tokens: ArrayLike) -> float:
    """Entropy in nats of the token frequencies, ``-sum_v p_v log p_v``.

    The cross-entropy of the best model that ignores context: a language model that has
    learned anything from context has a lower loss on the same tokens.

    Args:
      tokens: a non-empty array of non-negative integer token ids, any shape.

    Returns:
      The entropy in nats, a Python ``float``.

    Examples:
      >>> import numpy as np
      >>> from models import text
      >>> round(text.unigram_entropy(np.array([0, 1, 0, 1])), 4)  # log(2)
      0.6931
    """
    ids = np.asarray(tokens)
    if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0:
        raise ValueError("`tokens` must be a non-empty array of non-negative integer ids.")
    counts = np.bincount(ids.ravel())
    p = counts[counts > 0] / ids.size
    return float(-np.sum(p * np.log(p)))

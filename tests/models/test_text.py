"""models.text: tokenizers, the standard-library corpus, windows, the split, unigram entropy."""

import math
import pathlib
import socket
import sysconfig

import numpy as np
import pytest

from models import text

SAMPLE = "def f(x):\n    return 'héllo wörld' + \"✓ 日本語 🙂\"\n"


def test_byte_tokenizer_round_trip():
    tok = text.ByteTokenizer()
    ids = tok.encode(SAMPLE)
    assert tok.vocab_size == 256 and ids.dtype == np.int32 and ids.ndim == 1
    # One id per UTF-8 byte: é and ö take 2, ✓ and each CJK character 3, the emoji 4.
    assert len(ids) == len(SAMPLE.encode("utf-8")) == len(SAMPLE) + 2 * 1 + 4 * 2 + 3
    assert ids.min() >= 0 and ids.max() < 256
    assert tok.decode(ids) == SAMPLE
    assert tok.decode(list(ids)) == SAMPLE and tok.encode("").size == 0
    # A cut inside a multi-byte character (as a sampled sequence may have) decodes with
    # U+FFFD instead of raising.
    assert tok.decode(tok.encode("é")[:1]) == "\ufffd"


def test_char_tokenizer_round_trip():
    tok = text.CharTokenizer.from_text(SAMPLE)
    assert tok.chars == "".join(sorted(set(SAMPLE))) and tok.vocab_size == len(set(SAMPLE))
    ids = tok.encode(SAMPLE)
    assert ids.dtype == np.int32 and ids.shape == (len(SAMPLE),)
    assert tok.decode(ids) == SAMPLE
    assert tok.encode("🙂")[0] == tok.vocab_size - 1  # the highest code point sorts last
    assert tok.decode(np.array([], np.int32)) == ""


def test_tokenizer_bad_input():
    byte, char = text.ByteTokenizer(), text.CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"outside this tokenizer's vocabulary: 'dz'"):
        char.encode("abzdd")
    with pytest.raises(ValueError, match="empty"):
        text.CharTokenizer.from_text("")
    with pytest.raises(TypeError, match="must be a str"):
        byte.encode(b"bytes")
    with pytest.raises(ValueError, match=r"\[0, vocab_size=256\)"):
        byte.decode([65, 256])
    with pytest.raises(ValueError, match=r"\[0, vocab_size=3\)"):
        char.decode([-1])
    with pytest.raises(TypeError, match="integer token ids"):
        char.decode([0.0])


def test_stdlib_corpus_is_deterministic_python_source(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("stdlib_corpus tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    corpus = text.stdlib_corpus(max_bytes=20_000)
    assert corpus == text.stdlib_corpus(max_bytes=20_000)
    assert 19_990 < len(corpus.encode("utf-8")) <= 20_000
    assert corpus.startswith("# file: ") and "def " in corpus and "import " in corpus
    # Every file named in the corpus is a standard-library module, none a test or a package
    # installed into site-packages.
    names = [line[len("# file: ") :] for line in corpus.splitlines() if line.startswith("# file: ")]
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    for name in names:
        assert name.endswith(".py") and not name.startswith(("site-packages/", "test/"))
        assert (root / name).is_file()
    # A longer corpus with the same seed extends the shorter one; another seed mixes others.
    assert text.stdlib_corpus(max_bytes=40_000).startswith(corpus)
    assert text.stdlib_corpus(max_bytes=20_000, seed=1) != corpus


def test_stdlib_corpus_cuts_at_a_character_boundary():
    full = text.stdlib_corpus(max_bytes=2_000_000)
    data = full.encode("utf-8")
    first_multibyte = next(i for i, b in enumerate(data) if b >= 0x80)
    cut = text.stdlib_corpus(max_bytes=first_multibyte + 1)  # inside that character
    assert cut == data[:first_multibyte].decode("utf-8")
    with pytest.raises(ValueError, match="`max_bytes` must be a positive int"):
        text.stdlib_corpus(max_bytes=0)


def test_windows():
    tokens = np.arange(20, dtype=np.int32)
    inputs, targets = text.windows(tokens, 4)
    assert inputs.shape == targets.shape == (4, 4) and inputs.dtype == np.int32
    np.testing.assert_array_equal(inputs[1], [4, 5, 6, 7])
    np.testing.assert_array_equal(targets[1], [5, 6, 7, 8])
    # Non-overlapping inputs; the last window needs one more token for its target, so 20
    # tokens make 4 windows of 4 (the 5th would need token 20).
    np.testing.assert_array_equal(np.ravel(inputs), np.arange(16))
    strided = text.windows(tokens, 4, stride=2)
    assert strided.inputs.shape == (8, 4)
    np.testing.assert_array_equal(strided.inputs[:, 0], np.arange(0, 16, 2))
    np.testing.assert_array_equal(strided.targets[-1], [15, 16, 17, 18])
    assert text.windows(tokens, 19).inputs.shape == (1, 19)
    with pytest.raises(ValueError, match="needs 21"):
        text.windows(tokens, 20)
    with pytest.raises(ValueError, match="1-D integer"):
        text.windows(tokens.reshape(4, 5), 2)
    with pytest.raises(ValueError, match="`stride` must be a positive int"):
        text.windows(tokens, 4, stride=0)


def test_train_validation_split():
    tokens = np.arange(105)
    train, val = text.train_validation_split(tokens, 0.1)
    np.testing.assert_array_equal(np.concatenate([train, val]), tokens)
    assert len(val) == 10
    assert len(text.train_validation_split(tokens[:5], 0.1)[1]) == 1  # at least one token
    with pytest.raises(ValueError, match="validation_fraction"):
        text.train_validation_split(tokens, 1.0)
    with pytest.raises(ValueError, match="too few"):
        text.train_validation_split(tokens[:1], 0.5)


def test_unigram_entropy():
    assert text.unigram_entropy(np.zeros(10, np.int32)) == 0.0
    assert math.isclose(text.unigram_entropy(np.arange(256)), math.log(256))
    assert math.isclose(text.unigram_entropy([0, 0, 1, 1]), math.log(2))
    with pytest.raises(ValueError, match="non-empty"):
        text.unigram_entropy([])

"""models.Transformer: shapes, init, causality, scan vs unrolled, mixed precision, training."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from models import text
from models.transformer import Transformer, generate, lm_loss, perplexity
from optim._pytree import replace

# Compiling dominates the runtime on CPU, so every forward pass below has the shape (2, 16),
# one jitted init builds the two models the tests use, results are read with numpy (not eager
# jnp ops, which compile one by one) and other configurations are checked with jax.eval_shape.
CONFIG = dict(vocab_size=256, context_length=16, d_model=32, num_heads=4, num_layers=2)
KEY = jax.random.PRNGKey(0)
APPLY = jax.jit(lambda model, tokens, dtype: model(tokens, compute_dtype=dtype), static_argnums=2)
LOSS = jax.jit(lm_loss)
TOKENS = np.random.default_rng(0).integers(0, 256, size=(2, 16)).astype(np.int32)


@jax.jit
def _init_both(key):
    """The default model and, from the same key, an unrolled one with an untied lm_head."""
    return (
        Transformer.init(key, **CONFIG),
        Transformer.init(key, **CONFIG, scan_layers=False, tie_embeddings=False),
    )


@pytest.fixture(scope="module")
def both():
    return _init_both(KEY)


@pytest.fixture(scope="module")
def model(both):
    return both[0]


@pytest.fixture(scope="module")
def trained(model):
    """The model after 50 AdamW steps on 45 kB of standard-library source, as bytes.

    Returns the float32 and the bfloat16-compute runs and the training tokens.
    """
    train, _ = text.train_validation_split(
        text.ByteTokenizer().encode(text.stdlib_corpus(max_bytes=50_000)), 0.1
    )
    data = text.windows(train, CONFIG["context_length"])

    def run(compute_dtype):
        loss_fn = functools.partial(lm_loss, compute_dtype=compute_dtype)
        return optim.fit(loss_fn, model, optim.adamw(3e-3), data, steps=50, batch_size=32, key=KEY)

    return run(None), run(jnp.bfloat16), train


def _shapes(tree):
    return [(leaf.shape, jnp.dtype(leaf.dtype)) for leaf in jax.tree.leaves(tree)]


def test_logits_shape_dtype_and_leaves(model):
    logits = APPLY(model, TOKENS, None)
    assert logits.shape == (2, 16, 256) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    assert (model.vocab_size, model.context_length, model.d_model) == (256, 16, 32)
    assert model.num_layers == 2 and model.scan_layers and model.tie_embeddings
    # One set of leaves for all layers: the blocks' weights carry a leading layer axis.
    assert model.blocks.attn.qkv.w.shape == (2, 32, 96)
    assert model.blocks.mlp.fc.w.shape == (2, 32, 128)
    assert model.lm_head is None and len(jax.tree.leaves(model)) == 2 + 12 + 2
    # Per-layer: 2 LayerNorms (2 * 64), qkv (32 * 96 + 96), proj (32 * 32 + 32),
    # fc (32 * 128 + 128), proj (128 * 32 + 32); plus wte, wpe and ln_f.
    per_layer = 2 * 64 + 32 * 96 + 96 + 32 * 32 + 32 + 32 * 128 + 128 + 128 * 32 + 32
    assert sum(leaf.size for leaf in jax.tree.leaves(model)) == (
        2 * per_layer + 256 * 32 + 16 * 32 + 64
    )


def test_other_configurations_by_shape():
    def init(**kwargs):
        return jax.eval_shape(functools.partial(Transformer.init, **{**CONFIG, **kwargs}), KEY)

    unrolled = init(scan_layers=False)
    assert isinstance(unrolled.blocks, tuple) and len(unrolled.blocks) == 2
    assert unrolled.blocks[1].attn.qkv.w.shape == (32, 96)
    untied = init(tie_embeddings=False, d_ff=48)
    assert untied.lm_head.shape == (32, 256) and untied.blocks.mlp.fc.w.shape == (2, 32, 48)
    half = init(param_dtype=jnp.bfloat16)
    assert {dtype for _, dtype in _shapes(half)} == {jnp.dtype(jnp.bfloat16)}
    # Calls on shapes alone: any leading axes, shorter sequences; logits are float32 whatever
    # the parameter dtype.
    for m in (unrolled, untied, half):
        out = jax.eval_shape(lambda m: m(jnp.zeros((3, 2, 5), jnp.int32)), m)
        assert out.shape == (3, 2, 5, 256) and out.dtype == jnp.float32


def test_init_follows_gpt2(model):
    """N(0, 0.02^2) weights, residual projections scaled by 1/sqrt(2 num_layers), zero biases."""
    residual_std = 0.02 / math.sqrt(2 * CONFIG["num_layers"])
    for weight, std in [
        (model.wte, 0.02),
        (model.blocks.attn.qkv.w, 0.02),
        (model.blocks.mlp.fc.w, 0.02),
        (model.blocks.attn.proj.w, residual_std),
        (model.blocks.mlp.proj.w, residual_std),
    ]:
        # >= 2048 draws each: the sample std is within 5% with overwhelming probability.
        weight = np.asarray(weight)
        np.testing.assert_allclose(np.std(weight), std, rtol=0.05)
        assert abs(np.mean(weight)) < 0.1 * std
    for bias in (model.blocks.attn.qkv.b, model.blocks.mlp.proj.b, model.ln_f.bias):
        assert not np.any(np.asarray(bias))
    assert np.all(np.asarray(model.blocks.ln_1.scale) == 1.0)


def test_causality(model):
    """Changing token t changes the logits at positions >= t only."""
    t = 9
    tokens = np.stack([TOKENS[0], TOKENS[0]])
    tokens[1, t] = (tokens[0, t] + 1) % 256
    logits = APPLY(model, tokens, None)
    np.testing.assert_array_equal(logits[0, :t], logits[1, :t])
    assert np.all(np.max(np.abs(logits[0, t:] - logits[1, t:]), axis=-1) > 1e-4)


def test_scan_unrolled_tied_and_untied_agree(both):
    """The same weights give the same logits stacked or unrolled, tied or untied."""
    model, direct = both
    unrolled = model.with_scan_layers(False)
    assert not unrolled.scan_layers and unrolled.num_layers == 2
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(unrolled))
    restacked = unrolled.with_scan_layers(True)
    assert jax.tree.structure(restacked) == jax.tree.structure(model)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, restacked, model)))
    # init(scan_layers=False) gives the unrolled weights of init(scan_layers=True).
    assert not direct.scan_layers and not direct.tie_embeddings
    assert direct.lm_head.shape == (32, 256)
    converted = replace(unrolled, lm_head=direct.lm_head)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, direct, converted)))
    # An untied head equal to wte.T computes what the tied one does; unrolling reorders XLA's
    # fusions, so the logits agree to float32 rounding. One compiled call checks both paths.
    untied = replace(unrolled, lm_head=model.wte.T)
    np.testing.assert_allclose(
        APPLY(untied, TOKENS, None), APPLY(model, TOKENS, None), rtol=1e-5, atol=1e-6
    )


def test_bfloat16_compute(model, trained):
    """bf16 matmuls: logits within 1% (of their largest magnitude) of float32 compute."""
    # The matmuls really are bfloat16, and everything returned is float32.
    jaxpr = str(jax.make_jaxpr(lambda m: m(TOKENS, compute_dtype=jnp.bfloat16))(model))
    assert "dot_general" in jaxpr and "bf16" in jaxpr
    loss_fn = functools.partial(lm_loss, compute_dtype=jnp.bfloat16)
    grads = jax.eval_shape(jax.grad(loss_fn), model, (TOKENS, TOKENS))
    assert {dtype for _, dtype in _shapes(grads)} == {jnp.dtype(jnp.float32)}
    # bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); the roundings of a few
    # matmuls per layer add up to 0.24% of the logits' scale here (measured at init and after
    # training alike), so 1% leaves room for other backends and seeds.
    for params in (model, trained[0].params):
        full = APPLY(params, TOKENS, None)
        half = APPLY(params, TOKENS, jnp.bfloat16)
        assert half.dtype == jnp.float32
        full, half = np.asarray(full), np.asarray(half)
        assert np.max(np.abs(half - full)) <= 0.01 * np.max(np.abs(full))


def test_fit_learns_beyond_unigram_statistics(trained):
    """50 AdamW steps push the training loss below the unigram entropy of the bytes.

    A model that only learned byte frequencies cannot do better than the unigram entropy
    (3.09 nats here); the tiny transformer reaches ~2.8 by using context. The bfloat16-compute
    run follows the float32 one to within 0.02 nats at every step (measured: 0.003).
    """
    full, half, train = trained
    entropy = text.unigram_entropy(train)
    assert full.losses.shape == (50,)
    full_losses, half_losses = np.asarray(full.losses), np.asarray(half.losses)
    np.testing.assert_allclose(full_losses[0], math.log(256), atol=0.15)  # near uniform at init
    assert np.mean(full_losses[-10:]) < entropy - 0.1
    assert np.max(np.abs(half_losses - full_losses)) < 0.02
    assert {dtype for _, dtype in _shapes(half.params)} == {jnp.dtype(jnp.float32)}


def test_lm_loss_and_perplexity(model):
    inputs, targets = TOKENS, np.roll(TOKENS, -1, axis=1)
    logits = APPLY(model, inputs, None)
    expected = -np.mean(np.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1))
    loss = LOSS(model, (inputs, targets))
    assert loss.dtype == jnp.float32 and loss.shape == ()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Zero embeddings give zero (tied) logits: a uniform prediction, perplexity = vocab_size.
    uniform = replace(model, wte=jnp.zeros_like(model.wte))
    loss = LOSS(uniform, (inputs, targets))
    np.testing.assert_allclose(loss, math.log(256), rtol=1e-6)
    np.testing.assert_allclose(perplexity(loss), 256.0, rtol=1e-5)
    assert perplexity(0.0) == 1.0


def test_bad_input(model):
    with pytest.raises(ValueError, match=r"sequence length 17 .* context_length 16"):
        model(np.zeros((2, 17), np.int32))
    with pytest.raises(TypeError, match="integer token ids"):
        model(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[0, vocab_size=256\), got values in \[256, 256\]"):
        model(np.full((2, 4), 256, np.int32))
    with pytest.raises(TypeError, match="compute_dtype"):
        model(TOKENS, compute_dtype=jnp.int8)
    with pytest.raises(ValueError, match=r"`d_model` \(30\) must be a multiple of `num_heads`"):
        Transformer.init(KEY, **{**CONFIG, "d_model": 30})
    with pytest.raises(ValueError, match="`num_layers` must be a positive int"):
        Transformer.init(KEY, **{**CONFIG, "num_layers": 0})
    with pytest.raises(TypeError, match="param_dtype"):
        Transformer.init(KEY, **CONFIG, param_dtype=jnp.int32)


def test_generate(model):
    prompt = TOKENS[0, :3]
    greedy = generate(model, KEY, prompt, 20, temperature=0.0)
    assert greedy.shape == (23,) and greedy.dtype == jnp.int32
    np.testing.assert_array_equal(greedy[:3], prompt)
    # Within the context every new token is the argmax after its prefix (one causal pass
    # checks them all); beyond it, the argmax over the latest 16 tokens.
    greedy = np.asarray(greedy)
    logits = np.asarray(APPLY(model, np.stack([greedy[:16], greedy[6:22]]), None))
    np.testing.assert_array_equal(np.argmax(logits[0, 2:], -1), greedy[3:17])
    assert np.argmax(logits[1, -1]) == greedy[22]
    sampled = np.asarray(generate(model, KEY, prompt, 20))
    np.testing.assert_array_equal(sampled[:3], prompt)
    assert sampled.shape == (23,) and sampled.min() >= 0 and sampled.max() < 256
    with pytest.raises(ValueError, match="temperature"):
        generate(model, KEY, prompt, 5, temperature=-1.0)

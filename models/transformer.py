"""A decoder-only transformer language model (GPT-2 style), its loss and a sampler.

The model reads top to bottom as in Radford et al. (2019), "Language Models are Unsupervised
Multitask Learners", and Karpathy's nanoGPT::

    x = wte[tokens] + wpe[positions]                 # token and learned position embeddings
    for each block:                                  # pre-norm residual blocks
        x = x + attn(ln_1(x))                        # causal multi-head self-attention
        x = x + mlp(ln_2(x))                         # Linear -> GELU -> Linear
    logits = ln_f(x) @ wte.T                         # (or an untied `lm_head`)

Norms are LayerNorm with a scale and a bias (GPT-2's choice, eps 1e-5); the GELU is the tanh
approximation GPT-2 used; every ``Linear`` has a bias; there is no dropout.

Layers are stacked (``scan_layers=True``): one ``Block`` whose leaves carry a leading
``num_layers`` axis, run by ``lax.scan``, so the program is compiled once whatever the depth.
With ``scan_layers=False`` ``blocks`` is a tuple of ``Block`` pytrees run by a Python loop.
``Transformer.with_scan_layers`` converts between the two; the logits are the same.

Mixed precision: ``model(tokens, compute_dtype=jnp.bfloat16)`` keeps the stored (master)
weights as they are and casts each matmul's weights and inputs to bfloat16. The residual stream,
LayerNorms, attention softmax and the logits stay float32 (attention scores and logits are
accumulated in float32), so only the matmuls and the MLP's GELU run in bfloat16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from models.linear import Linear, check_positive_int
from models.losses import softmax_cross_entropy_with_integer_labels
from optim._pytree import pytree_dataclass, replace, static

__all__ = ["Transformer", "generate", "lm_loss", "perplexity"]

INIT_STD = 0.02  # GPT-2's standard deviation for every weight matrix and embedding
LAYER_NORM_EPS = 1e-5


def _floating_dtype(dtype: DTypeLike, name: str) -> jnp.dtype:
    try:
        canonical = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"`{name}` must be a dtype, got {dtype!r}.") from None
    if not jnp.issubdtype(canonical, jnp.floating):
        raise TypeError(f"`{name}` must be a floating-point dtype, got {canonical}.")
    return canonical


def _dense(layer: Linear, x: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """``x @ w + b`` with ``x``, ``w`` and ``b`` cast to the compute ``dtype``."""
    return x.astype(dtype) @ layer.w.astype(dtype) + layer.b.astype(dtype)


@pytree_dataclass
class LayerNorm:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis, in float32.

    Ba et al. (2016), "Layer Normalization". Whatever the dtype of ``x`` and of the parameters,
    the statistics and the output are float32.
    """

    scale: jax.Array
    bias: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        normed = (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS)
        return normed * self.scale.astype(jnp.float32) + self.bias.astype(jnp.float32)


@pytree_dataclass
class CausalSelfAttention:
    """Multi-head self-attention where position ``t`` attends to positions ``<= t`` only.

    Vaswani et al. (2017), "Attention Is All You Need":
    ``softmax(q k^T / sqrt(head_dim) + causal_mask) v`` per head, heads concatenated and
    projected. ``qkv`` maps ``d_model`` to the concatenated queries, keys and values.
    """

    qkv: Linear
    proj: Linear
    num_heads: int = static()

    def __call__(self, x: jax.Array, dtype: jnp.dtype) -> jax.Array:
        batch, seq, d_model = x.shape
        head_dim = d_model // self.num_heads
        q, k, v = jnp.split(_dense(self.qkv, x, dtype), 3, axis=-1)
        q, k, v = (t.reshape(batch, seq, self.num_heads, head_dim) for t in (q, k, v))
        # Scores and softmax in float32 even under bfloat16 compute: the softmax of
        # bfloat16 scores loses the small differences between positions.
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
        scores = scores / math.sqrt(head_dim)
        causal = jnp.tril(jnp.ones((seq, seq), dtype=bool))
        scores = jnp.where(causal, scores, -jnp.inf)  # the diagonal keeps every row finite
        weights = jax.nn.softmax(scores, axis=-1).astype(dtype)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, seq, d_model)
        return _dense(self.proj, out, dtype)


@pytree_dataclass
class FeedForward:
    """The position-wise MLP ``proj(gelu(fc(x)))``, ``d_model -> d_ff -> d_model``."""

    fc: Linear
    proj: Linear

    def __call__(self, x: jax.Array, dtype: jnp.dtype) -> jax.Array:
        return _dense(self.proj, jax.nn.gelu(_dense(self.fc, x, dtype), approximate=True), dtype)


@pytree_dataclass
class Block:
    """A pre-norm residual block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.

    The residual stream ``x`` is float32; each branch's output is cast back to it.
    """

    ln_1: LayerNorm
    attn: CausalSelfAttention
    ln_2: LayerNorm
    mlp: FeedForward

    def __call__(self, x: jax.Array, dtype: jnp.dtype) -> jax.Array:
        x = x + self.attn(self.ln_1(x), dtype).astype(jnp.float32)
        return x + self.mlp(self.ln_2(x), dtype).astype(jnp.float32)


def _init_blocks(key: jax.Array, num_layers: int, d_model: int, num_heads: int, d_ff: int) -> Block:
    """``num_layers`` blocks stacked along a leading axis, GPT-2's initialisation, float32.

    Weight matrices ``N(0, 0.02^2)``; the two residual projections (``attn.proj`` and
    ``mlp.proj``) ``N(0, (0.02 / sqrt(2 num_layers))^2)`` so the residual stream's variance
    does not grow with depth (2 residual additions per block); biases 0; LayerNorm scales 1.
    """
    keys = jax.random.split(key, 4)
    residual_std = INIT_STD / math.sqrt(2 * num_layers)

    def linear(k: jax.Array, n_in: int, n_out: int, std: float) -> Linear:
        w = std * jax.random.normal(k, (num_layers, n_in, n_out), jnp.float32)
        return Linear(w=w, b=jnp.zeros((num_layers, n_out), jnp.float32))

    def layer_norm() -> LayerNorm:
        return LayerNorm(
            scale=jnp.ones((num_layers, d_model), jnp.float32),
            bias=jnp.zeros((num_layers, d_model), jnp.float32),
        )

    return Block(
        ln_1=layer_norm(),
        attn=CausalSelfAttention(
            qkv=linear(keys[0], d_model, 3 * d_model, INIT_STD),
            proj=linear(keys[1], d_model, d_model, residual_std),
            num_heads=num_heads,
        ),
        ln_2=layer_norm(),
        mlp=FeedForward(
            fc=linear(keys[2], d_model, d_ff, INIT_STD),
            proj=linear(keys[3], d_ff, d_model, residual_std),
        ),
    )


@pytree_dataclass
class Transformer:
    """A decoder-only transformer language model (see the module docstring).

    Attributes:
      wte: token embeddings, ``(vocab_size, d_model)``; also the output projection when tied.
      wpe: learned position embeddings, ``(context_length, d_model)``.
      blocks: one ``Block`` with leaves stacked along a leading ``num_layers`` axis
        (``scan_layers``), or a tuple of ``num_layers`` ``Block`` pytrees.
      ln_f: the final LayerNorm.
      lm_head: the untied output projection ``(d_model, vocab_size)``, or ``None`` when the
        output reuses ``wte`` (``tie_embeddings``).

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> model = models.Transformer.init(jax.random.key(0), vocab_size=16, context_length=8,
      ...                                 d_model=8, num_heads=2, num_layers=1)
      >>> model(jnp.zeros((2, 5), jnp.int32)).shape  # (batch, seq, vocab_size) logits
      (2, 5, 16)
    """

    wte: jax.Array
    wpe: jax.Array
    blocks: Block | tuple[Block, ...]
    ln_f: LayerNorm
    lm_head: jax.Array | None

    @classmethod
    def init(
        cls,
        key: jax.Array,
        *,
        vocab_size: int,
        context_length: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        d_ff: int | None = None,
        tie_embeddings: bool = True,
        scan_layers: bool = True,
        param_dtype: DTypeLike = jnp.float32,
    ) -> Transformer:
        """A GPT-2-initialised model (as nanoGPT does it).

        Every weight matrix and both embeddings are drawn from ``N(0, 0.02^2)``, the residual
        projections from ``N(0, (0.02 / sqrt(2 num_layers))^2)``; biases are 0 and LayerNorm
        scales 1. Values are drawn in float32 and then cast to ``param_dtype``, and the blocks
        are drawn stacked, so the same ``key`` gives the same weights (up to rounding) for
        every ``param_dtype`` and either ``scan_layers``.

        Args:
            key: a PRNG key.
            vocab_size: number of token ids; inputs must lie in ``[0, vocab_size)``.
            context_length: the longest sequence the model accepts (rows of ``wpe``).
            d_model: width of the residual stream; a multiple of ``num_heads``.
            num_heads: attention heads per block, each of width ``d_model // num_heads``.
            num_layers: number of blocks.
            d_ff: hidden width of the MLP; default ``4 * d_model``.
            tie_embeddings: reuse ``wte`` as the output projection (GPT-2) rather than keep a
                separate ``lm_head``.
            scan_layers: stack the blocks' weights and run them with ``lax.scan`` (compile
                time independent of depth), or keep a tuple of blocks run one after another.
            param_dtype: dtype of every stored parameter.

        Example: ``Transformer.init(jax.random.PRNGKey(0), vocab_size=256, context_length=128,
        d_model=128, num_heads=4, num_layers=4)``.
        """
        d_ff = 4 * d_model if d_ff is None else d_ff
        for name, value in [
            ("vocab_size", vocab_size),
            ("context_length", context_length),
            ("d_model", d_model),
            ("num_heads", num_heads),
            ("num_layers", num_layers),
            ("d_ff", d_ff),
        ]:
            check_positive_int(name, value)
        if d_model % num_heads:
            raise ValueError(
                f"`d_model` ({d_model}) must be a multiple of `num_heads` ({num_heads}): each "
                "head gets d_model // num_heads dimensions."
            )
        param_dtype = _floating_dtype(param_dtype, "param_dtype")
        wte_key, wpe_key, head_key, blocks_key = jax.random.split(key, 4)
        model = cls(
            wte=INIT_STD * jax.random.normal(wte_key, (vocab_size, d_model), jnp.float32),
            wpe=INIT_STD * jax.random.normal(wpe_key, (context_length, d_model), jnp.float32),
            blocks=_init_blocks(blocks_key, num_layers, d_model, num_heads, d_ff),
            ln_f=LayerNorm(
                scale=jnp.ones((d_model,), jnp.float32), bias=jnp.zeros((d_model,), jnp.float32)
            ),
            lm_head=None
            if tie_embeddings
            else INIT_STD * jax.random.normal(head_key, (d_model, vocab_size), jnp.float32),
        )
        model = jax.tree.map(lambda leaf: leaf.astype(param_dtype), model)
        return model if scan_layers else model.with_scan_layers(False)

    @property
    def vocab_size(self) -> int:
        return self.wte.shape[0]

    @property
    def context_length(self) -> int:
        return self.wpe.shape[0]

    @property
    def d_model(self) -> int:
        return self.wte.shape[1]

    @property
    def scan_layers(self) -> bool:
        """Whether the blocks are stacked and run by ``lax.scan``."""
        return not isinstance(self.blocks, tuple)

    @property
    def num_layers(self) -> int:
        if self.scan_layers:
            return self.blocks.ln_1.scale.shape[0]
        return len(self.blocks)

    @property
    def tie_embeddings(self) -> bool:
        return self.lm_head is None

    def with_scan_layers(self, scan_layers: bool) -> Transformer:
        """The same weights with the blocks stacked (``True``) or as a tuple (``False``)."""
        if scan_layers == self.scan_layers:
            return self
        if scan_layers:
            blocks = jax.tree.map(lambda *layers: jnp.stack(layers), *self.blocks)
        else:
            blocks = tuple(
                jax.tree.map(lambda leaf, i=i: leaf[i], self.blocks) for i in range(self.num_layers)
            )
        return replace(self, blocks=blocks)

    def __call__(self, tokens: ArrayLike, *, compute_dtype: DTypeLike | None = None) -> jax.Array:
        """Next-token logits, float32 of shape ``tokens.shape + (vocab_size,)``.

        Args:
            tokens: integer token ids of shape ``(..., seq)`` (typically ``(batch, seq)``) with
                ``seq <= context_length``. ``logits[..., t, :]`` depends on ``tokens[..., :t+1]``
                only.
            compute_dtype: dtype of the matmuls (weights and activations are cast to it);
                ``None`` uses the parameters' dtype. Norms, softmax, the residual stream and
                the logits are float32 in every case (see the module docstring).
        """
        tokens = self._check_tokens(tokens)
        dtype = (
            self.wte.dtype
            if compute_dtype is None
            else _floating_dtype(compute_dtype, "compute_dtype")
        )
        *lead, seq = tokens.shape
        tokens = tokens.reshape(-1, seq)

        x = self.wte[tokens].astype(jnp.float32) + self.wpe[:seq].astype(jnp.float32)
        if self.scan_layers:
            x, _ = jax.lax.scan(lambda h, block: (block(h, dtype), None), x, self.blocks)
        else:
            for block in self.blocks:
                x = block(x, dtype)
        x = self.ln_f(x).astype(dtype)
        if self.tie_embeddings:
            logits = jnp.einsum(
                "btd,vd->btv", x, self.wte.astype(dtype), preferred_element_type=jnp.float32
            )
        else:
            logits = jnp.einsum(
                "btd,dv->btv", x, self.lm_head.astype(dtype), preferred_element_type=jnp.float32
            )
        return logits.reshape(*lead, seq, self.vocab_size)

    def _check_tokens(self, tokens: ArrayLike) -> jax.Array:
        tokens = jnp.asarray(tokens)
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise TypeError(f"`tokens` must hold integer token ids, got dtype {tokens.dtype}.")
        if tokens.ndim == 0:
            raise ValueError("`tokens` must have shape (..., seq), got a scalar.")
        seq = tokens.shape[-1]
        if seq > self.context_length:
            raise ValueError(
                f"The sequence length {seq} (tokens.shape[-1] of {tokens.shape}) exceeds the "
                f"model's context_length {self.context_length}; cut the input into windows of "
                f"at most {self.context_length} tokens (models.text.windows)."
            )
        # Out-of-range ids would be silently clamped by the embedding lookup; they can only be
        # checked for concrete inputs, not under jit.
        if not isinstance(tokens, jax.core.Tracer) and tokens.size:
            low, high = int(tokens.min()), int(tokens.max())
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"`tokens` must lie in [0, vocab_size={self.vocab_size}), got values in "
                    f"[{low}, {high}]."
                )
        return tokens


def lm_loss(
    model: Transformer, batch: Sequence[Any], *, compute_dtype: DTypeLike | None = None
) -> jax.Array:
    """Mean next-token cross-entropy (nats per token), float32.

    It has the ``loss_fn(params, batch)`` signature of ``optim.fit``; for mixed precision pass
    ``functools.partial(lm_loss, compute_dtype=jnp.bfloat16)``.

    Args:
      model: the language model (a :class:`Transformer`).
      batch: ``(inputs, targets)``, integer arrays of shape ``(batch, seq)`` such as
        ``models.text.windows`` returns, where ``targets[:, t]`` is the token that follows
        ``inputs[:, t]``.
      compute_dtype: dtype of the matmuls, as for ``Transformer.__call__``; ``None`` uses the
        parameters' dtype.

    Returns:
      A float32 scalar: the cross-entropy averaged over every position of the batch.

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> model = models.Transformer.init(jax.random.key(0), vocab_size=16, context_length=8,
      ...                                 d_model=8, num_heads=2, num_layers=1)
      >>> tokens = jnp.arange(8)[None]
      >>> loss = models.lm_loss(model, (tokens[:, :-1], tokens[:, 1:]))
      >>> round(float(loss), 2)  # about log(16) = 2.77 at initialisation
      2.77
    """
    inputs, targets = batch
    logits = model(inputs, compute_dtype=compute_dtype)
    return jnp.mean(softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(targets)))


def perplexity(loss: ArrayLike) -> jax.Array:
    """``exp(loss)`` for a mean cross-entropy in nats: the effective number of equally likely
    next tokens (``vocab_size`` for a model that predicts uniformly).

    Args:
      loss: a mean cross-entropy in nats (such as :func:`lm_loss` returns), any shape.

    Returns:
      ``exp(loss)``, float32, of ``loss``'s shape.

    Examples:
      >>> import jax.numpy as jnp, models
      >>> round(float(models.perplexity(jnp.log(16.0))), 2)
      16.0
    """
    return jnp.exp(jnp.asarray(loss, jnp.float32))


def generate(
    model: Transformer,
    key: jax.Array,
    prompt: ArrayLike,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    compute_dtype: DTypeLike | None = None,
) -> jax.Array:
    """``prompt`` followed by ``max_new_tokens`` tokens sampled one at a time.

    Each new token is drawn from ``softmax(logits / temperature)`` at the last position of
    the latest ``context_length`` tokens (``temperature=0`` takes the argmax). There is no
    key-value cache: every token costs a full forward pass over the window, which is fine for
    the small models this package trains. Jittable with ``max_new_tokens`` and ``temperature``
    static, e.g. ``jax.jit(generate, static_argnums=3, static_argnames="temperature")``.

    Args:
      model: the language model (a :class:`Transformer`).
      key: PRNG key for sampling (unused when ``temperature=0``).
      prompt: integer token ids of shape ``(prompt_len,)``, ``prompt_len >= 1``, each in
        ``[0, vocab_size)``.
      max_new_tokens: number of tokens to append, an int >= 1.
      temperature: ``> 0`` to sample, ``0`` for greedy decoding.
      compute_dtype: dtype of the matmuls, as for ``Transformer.__call__``; ``None`` uses the
        parameters' dtype.

    Returns:
      int32 of shape ``(prompt_len + max_new_tokens,)``: the prompt, then the new tokens.

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> model = models.Transformer.init(jax.random.key(0), vocab_size=16, context_length=8,
      ...                                 d_model=8, num_heads=2, num_layers=1)
      >>> tokens = models.generate(model, jax.random.key(1), jnp.array([1, 2, 3]), 5)
      >>> tokens.shape, tokens.dtype, tokens[:3].tolist()
      ((8,), dtype('int32'), [1, 2, 3])
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 1 or prompt.shape[0] == 0:
        raise ValueError(
            f"`prompt` must have shape (prompt_len,) with prompt_len >= 1, got {prompt.shape}."
        )
    check_positive_int("max_new_tokens", max_new_tokens)
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0, got {temperature!r}.")
    model._check_tokens(prompt[-model.context_length :])
    prompt_len, window = prompt.shape[0], model.context_length
    total = prompt_len + max_new_tokens
    # Right-pad to at least one window so every slice below has the static length `window`;
    # causality makes the padding invisible to the position that is read.
    buffer = jnp.zeros((max(total, window),), jnp.int32).at[:prompt_len].set(prompt)

    def step(t: jax.Array, buffer: jax.Array) -> jax.Array:
        start = jnp.maximum(t - window, 0)
        context = jax.lax.dynamic_slice(buffer, (start,), (window,))
        logits = model(context, compute_dtype=compute_dtype)[t - 1 - start]
        if temperature == 0:
            token = jnp.argmax(logits)
        else:
            token = jax.random.categorical(jax.random.fold_in(key, t), logits / temperature)
        return buffer.at[t].set(token.astype(jnp.int32))

    return jax.lax.fori_loop(prompt_len, total, step, buffer)[:total]

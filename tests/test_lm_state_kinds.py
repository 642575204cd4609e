"""AdamW with its moments kept in float32, bfloat16 and 8 bits, on the transformer language model.

The claim checked: with 8-bit block-wise moments (``optim.with_state_dtype(optim.adamw(...),
"int8")``) the final validation loss of the byte-level transformer is within 1% of
float32 AdamW's after the same steps. Notebook 05 trains the same model (its full run is
``FULL`` below, its quick run ``TINY``) and explains the table.

How the comparison is made, and why (all numbers measured on ``FULL`` while writing this file):

* Same initial weights, same batches in the same order: ``fit`` draws step ``t``'s batch with
  ``fold_in(key, t)``, and both runs of a pair get the same ``key``. Float32 runs with five
  batch orders end between 1.711 and 1.801 nats, 5% apart.
* A loss that has settled: 1000 steps, the learning rate warmed up and then decayed to 0 by a
  cosine (2.3 passes over the training windows).
* Even then a single pair resolves differences of about 1% only: training amplifies a
  rounding difference in the first steps into another trajectory. The float32 run with its
  peak learning rate larger by one part in a million ends 0.50% below it; single pairs of
  bfloat16 or 8-bit against float32 are up to 2.0% apart. The figure is therefore checked on
  the mean over the five batch orders ``BATCH_SEEDS`` of each pair's relative difference
  (standard error about 0.4%).
* The learning rate: peak 4.5e-3. Float32 ended at 1.791, 1.739, 1.730 and 2.088 (unstable)
  with peaks of 3e-3, 4.5e-3, 6e-3 and 1e-2 (first batch order).

Why the storage shows at all: each step decodes the stored moments, runs AdamW in float32 and
rounds the new moments to the nearest stored value. With ``b2 = 0.999`` a step moves ``v`` by
0.1% of ``g^2 - v``, less than half the gap between stored values (bfloat16: 0.2-0.4% of the
value; 8-bit: at least 0.35% of the block's largest value), so such changes are rounded away.
Against a float32 copy of the moments fed the same gradients, after 500 steps: bfloat16, which
rounds each number on its own, kept ``v`` 2-19% too high on the weight matrices (its decay is
lost, large gradients still push it up), steps ``m / sqrt(v)`` 1-6% smaller; 8-bit, whose
block scale (the block's largest magnitude, exact in float32) carries the decay of the whole
block while the small increases of the other elements are lost, kept the median ``v`` of the
attention and MLP output matrices and the query-key-value matrix 22-38% too low, steps 24-30%
larger. Larger steps help while the loss still falls steeply with the learning rate: at a
peak of 3e-3, 8-bit ended 1.32% below float32 (0.47% with another batch order, 1.18% with
``block_size=256``); ``min_size`` only decides whether the biases and LayerNorms (1.6% of the
parameters) are coded too.

Measured with ``FULL`` and ``BATCH_SEEDS``, final validation loss relative to float32:
8-bit +0.35%, -1.37%, +0.79%, -0.14%, -0.48% (mean -0.17%), 2.098 bytes per parameter;
bfloat16 +0.66%, +0.35%, +2.01%, +0.23%, -0.26% (mean +0.60%), 4.000 bytes per parameter;
Adafactor (first order, no first moment, factored second moment) +7.07%, 0.145 bytes per
parameter. (Over the first three orders alone bfloat16's mean was +1.01%.)
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import optim
from models import text
from models.transformer import Transformer, lm_loss


@dataclasses.dataclass(frozen=True)
class LMRun:
    """A byte-level language model on standard-library source and how it is trained."""

    corpus_bytes: int
    context_length: int
    d_model: int
    num_heads: int
    num_layers: int
    steps: int
    batch_size: int
    eval_every: int
    peak_learning_rate: float = 4.5e-3
    weight_decay: float = 0.1


# Notebook 05's full run and its quick run (OPTIM_QUICK=1).
FULL = LMRun(
    corpus_bytes=1_000_000,
    context_length=64,
    d_model=64,
    num_heads=4,
    num_layers=4,
    steps=1000,
    batch_size=32,
    eval_every=100,
)
TINY = LMRun(
    corpus_bytes=200_000,
    context_length=32,
    d_model=32,
    num_heads=2,
    num_layers=2,
    steps=40,
    batch_size=16,
    eval_every=20,
)


def _decayed(model):
    """Weight decay on the weight matrices and the embeddings, not on biases and LayerNorms."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jax.tree_util.keystr(path).endswith((".w", ".wte", ".wpe")), model
    )


def _optimizer(run: LMRun, kind: str):
    """AdamW with its state stored as ``kind``, or Adafactor; notebook 05's settings."""

    def schedule(peak):
        return optim.warmup_cosine_decay_schedule(0.0, peak, run.steps // 20, run.steps)

    if kind == "adafactor":
        # Factored second moment, no first moment; the same schedule and decoupled decay as
        # AdamW (Adafactor's weight_decay_rate is not multiplied by the learning rate).
        return optim.adafactor(
            schedule(run.peak_learning_rate),
            min_dim_size_to_factor=32,
            multiply_by_parameter_scale=False,
            weight_decay_rate=schedule(run.weight_decay * run.peak_learning_rate),
            weight_decay_mask=_decayed,
        )
    adamw = optim.adamw(
        schedule(run.peak_learning_rate), weight_decay=run.weight_decay, mask=_decayed
    )
    return optim.with_state_dtype(adamw, kind)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one run leaves to compare."""

    valid_loss: float  # on the whole validation split, after the last step
    bytes_per_parameter: float  # optimizer state


def train_state_kinds(
    run: LMRun, kinds: tuple[str, ...], init_seed: int = 0, batch_seed: int = 1
) -> dict[str, Outcome]:
    """Train ``run``'s model once per kind of state, all from the same initial weights and on
    the same batches in the same order."""
    tokens = text.ByteTokenizer().encode(text.stdlib_corpus(max_bytes=run.corpus_bytes))
    train, valid = text.train_validation_split(tokens, 0.1)
    train, valid = text.windows(train, run.context_length), text.windows(valid, run.context_length)
    model = Transformer.init(
        jax.random.PRNGKey(init_seed),
        vocab_size=256,
        context_length=run.context_length,
        d_model=run.d_model,
        num_heads=run.num_heads,
        num_layers=run.num_layers,
    )
    outcomes = {}
    for kind in kinds:
        result = optim.fit(
            lm_loss,
            model,
            _optimizer(run, kind),
            train,
            steps=run.steps,
            batch_size=run.batch_size,
            key=jax.random.PRNGKey(batch_seed),
            eval_data=valid,
            eval_every=run.eval_every,
            progress=False,
        )
        outcomes[kind] = Outcome(
            float(result.eval_metrics["loss"][-1]),
            optim.bytes_per_parameter(result.opt_state, model),
        )
    return outcomes


def _relative_to_float32(outcomes: dict[str, Outcome]) -> dict[str, float]:
    reference = outcomes["float32"].valid_loss
    return {kind: (o.valid_loss - reference) / reference for kind, o in outcomes.items()}


def _check_bytes_per_parameter(outcomes: dict[str, Outcome], int8_bound: float) -> None:
    """The states really are float32, bfloat16 and 8-bit (a count adds 4 bytes in all)."""
    np.testing.assert_allclose(outcomes["float32"].bytes_per_parameter, 8.0, atol=1e-3)
    np.testing.assert_allclose(outcomes["bfloat16"].bytes_per_parameter, 4.0, atol=1e-3)
    assert 2.0 < outcomes["int8"].bytes_per_parameter < int8_bound


# TINY's 40 steps, measured over four initialisations and batch orders: bfloat16 within 0.004%
# of float32, 8-bit 0.08% to 0.36% below it (the lag of the stored second moment described
# above makes the 8-bit steps larger, which helps while the loss falls steeply). Over so few
# steps rounding differences have not yet grown into different trajectories, so the bounds
# can be tight: about 8x and 2x the largest measured.
TINY_BOUNDS = {"bfloat16": 3e-4, "int8": 7.5e-3}


def test_state_kinds_stay_close_early_in_training():
    """TINY (notebook 05's quick run): 40 steps take the validation loss from 5.48 to 3.11
    nats; the runs with bfloat16 and 8-bit state end next to the float32 one."""
    outcomes = train_state_kinds(TINY, ("float32", "bfloat16", "int8"))
    # 2.69 bytes per parameter: the leaves under min_size=4096 (biases, LayerNorms, and in this
    # tiny model the position embedding and the attention output projection) keep float32 state.
    _check_bytes_per_parameter(outcomes, int8_bound=2.75)
    relative = _relative_to_float32(outcomes)
    for kind, bound in TINY_BOUNDS.items():
        assert abs(relative[kind]) <= bound, (kind, relative)


# Five batch orders: the mean over them of each pair's relative difference has 1/sqrt(5) of a
# single pair's scatter (about 0.8%).
BATCH_SEEDS = (1, 2, 3, 4, 5)


@pytest.mark.slow
def test_int8_and_bfloat16_within_one_percent_of_float32(record_property):
    """The documented figure on FULL (notebook 05's full run): for bfloat16 and 8-bit AdamW, the
    relative difference of the final validation loss to float32's, averaged over BATCH_SEEDS
    (each pair with the same initial weights and the same batches), is within 1%. No single
    pair may be more than 3% apart (the largest measured: 2.01%). Adafactor (first batch order)
    is reported, not asserted."""
    relative = {"bfloat16": [], "int8": []}
    for seed in BATCH_SEEDS:
        kinds = ("float32", "bfloat16", "int8") + (("adafactor",) if seed == BATCH_SEEDS[0] else ())
        outcomes = train_state_kinds(FULL, kinds, batch_seed=seed)
        _check_bytes_per_parameter(outcomes, int8_bound=2.2)
        pair = _relative_to_float32(outcomes)
        for kind, outcome in outcomes.items():
            record_property(
                f"seed{seed}_{kind}", (outcome.valid_loss, pair[kind], outcome.bytes_per_parameter)
            )
            print(
                f"batch seed {seed}: {kind:10s} valid loss {outcome.valid_loss:.4f} "
                f"({pair[kind]:+.2%}), {outcome.bytes_per_parameter:.3f} bytes/parameter"
            )
        for kind in relative:
            relative[kind].append(pair[kind])
    for kind, values in relative.items():
        print(f"{kind}: mean relative difference {np.mean(values):+.2%}")
        assert abs(np.mean(values)) <= 0.01, (kind, values)
        assert max(abs(v) for v in values) <= 0.03, (kind, values)

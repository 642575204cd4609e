"""Training: ``fit``, the traceable step and loop it is built on, checkpoints and sweeps.

One concern a module:

* ``_fit``: ``fit`` (plan, run chunks, collect) and ``sample_batch``;
* ``_options``: fit's options grouped in records that check themselves (``EarlyStopping``);
* ``_run``: the planned run: the compiled program, the chunks, the host's work between them;
* ``_step``: the traceable core: ``train_step``, ``train_loop`` and fit's compiled chunk;
* ``_batches``: which examples each step trains on;
* ``_flat``: parameters raveled into one buffer per dtype;
* ``_sharding``: data-parallel and sharded layouts on a mesh;
* ``_history``, ``_progress``, ``_result``: what the host keeps, shows and returns;
* ``_checkpoint``: the checkpoint store on disk (public as ``optim.checkpoint``);
* ``_resume``: what fit saves in a checkpoint and how it resumes from one;
* ``_sweep``: grid sweeps as one vmapped program, and hypergradient descent.
"""

from optim.train._fit import fit, sample_batch
from optim.train._options import EarlyStopping, num_examples
from optim.train._result import FitPath, FitResult
from optim.train._step import StepRecord, train_loop, train_step
from optim.train._sweep import HypergradientResult, SweepResult, hypergradient_descent, sweep

__all__ = [
    "EarlyStopping",
    "FitPath",
    "FitResult",
    "HypergradientResult",
    "StepRecord",
    "SweepResult",
    "fit",
    "hypergradient_descent",
    "num_examples",
    "sample_batch",
    "sweep",
    "train_loop",
    "train_step",
]

#!/usr/bin/env bash
# The optimizer-step table on one large GPU: 6 to 7 minutes on an H200 (fit.tree at 1,600
# leaves alone compiles for 110 s):
#
#   1. Adam on 1e9 parameters in one leaf, optax and optim: bytes moved per step (28 per
#      parameter) / step time / the HBM peak, i.e. the fraction of the bandwidth reached
#      (expected: at least 80%), for the standalone step and inside a lax.scan. The measured
#      copy bandwidth is printed beside it.
#   2. Adam on 8,192,000 float32 parameters in 1 and in 1,600 leaves: the standalone donated
#      step, optax against optim.flatten, and optim.fit's step with flatten=True and False
#      (fit.flat, fit.tree: the same per-leaf loss, so their difference is the optimizer's),
#      with compile times and kernel counts. On a GPU every kernel is a launch, and a
#      standalone call also pays the host's handling of every argument array.
#
# Usage: benchmarks/gpu.sh [--peak BYTES_PER_S] [--params N] [--big-params N] [--leaves LIST]
#                          [--repeats N] [--out DIR]
#   --peak        HBM peak in bytes/s (default 4.8e12, an H200's)
#   --params      parameters of table 1 (default 8.192e6)
#   --big-params  parameters of table 2 (default 1e9)
#   --leaves      leaf counts of table 1 (default 1,1600)
#   --repeats     timed samples per variant (default 20)
#   --out         where the JSON goes (default benchmarks/results): gpu_step.json, gpu_hbm.json
#   -- ARGS       passed on to both runs of optimizer_step.py (e.g. -- --copy-bytes 1e9)
# PYTHON (default: python) is the interpreter. Without a GPU it runs on the CPU (with a note):
# tests/test_benchmarks_smoke.py runs it so, at a tiny size.
set -euo pipefail
cd "$(dirname "$0")/.."

peak=4.8e12 params=8.192e6 big=1e9 leaves=1,1600 repeats=20 out=benchmarks/results
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    --peak) peak=$2 ;;
    --params) params=$2 ;;
    --big-params) big=$2 ;;
    --leaves) leaves=$2 ;;
    --repeats) repeats=$2 ;;
    --out) out=$2 ;;
    *) echo "gpu.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
python=${PYTHON:-python}

# Each table's first line names the device JAX ran on.
if command -v nvidia-smi > /dev/null && nvidia-smi > /dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv || true
else
  echo "note: no GPU found (nvidia-smi); running on JAX's default device instead"
fi
mkdir -p "$out"
start=$SECONDS

# The bandwidth figure first: it compiles in seconds. Each script writes its JSON after every
# (optimizer, leaves) cell, so a run cut short keeps what it measured.
echo "== 1. Adam, $big parameters in one leaf: fraction of the HBM peak ($peak bytes/s) =="
"$python" benchmarks/optimizer_step.py --optimizers adam --params "$big" --leaves 1 \
  --variants optax,optim --repeats "$repeats" --peak-bandwidth "$peak" \
  --output "$out/gpu_hbm.json" ${extra[@]+"${extra[@]}"}

echo
echo "== 2. Adam, $params parameters in $leaves leaves: ours against optax =="
"$python" benchmarks/optimizer_step.py --optimizers adam --fit-optimizers adam \
  --params "$params" --leaves "$leaves" --variants optax,optim.flatten,fit.flat,fit.tree --no-scan \
  --repeats "$repeats" --peak-bandwidth "$peak" --output "$out/gpu_step.json" \
  ${extra[@]+"${extra[@]}"}

echo
echo "gpu.sh done in $((SECONDS - start)) s"

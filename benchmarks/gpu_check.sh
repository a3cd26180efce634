#!/usr/bin/env bash
# The device check behind benchmarks/RESULTS.md's GPU rows, run from the repo root on a
# machine with an NVIDIA GPU and JAX (pysindy and its needs carried as wheels in .whl/).
set -uo pipefail
OUT=${OUT:-/tmp/dynafit_gpu}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import jax, equinox, diffrax, pysindy; print('jax', jax.__version__, jax.devices())"
timeout "${BENCH_S:-200}" python3 benchmarks/train_throughput.py --seeds "${SEEDS:-1,8,64,256,1024}" \
  --steps "${STEPS:-1000}" --no-torch --json "$OUT/train_gpu.json"
timeout "${SURV_S:-330}" python3 benchmarks/gpu_survival.py --seeds "${SURV_SEEDS:-0-255}" \
  --steps "${SURV_STEPS:-30000}" --json "$OUT/survival_gpu.json" --npz "$OUT/survival_gpu.npz"
# float64 vs float32 (full) vs TF32 on the same seeds, survivors side by side
timeout "${PREC_S:-400}" python3 benchmarks/precision_survivors.py --out "$OUT/precision" \
  --seeds "${PREC_SEEDS:-0-1}" --steps "${PREC_STEPS:-30000}" --csv "$OUT/precision_gpu.csv"

#!/usr/bin/env bash
# build-activations.sh - build the HUSAI activation set from a seed, with no downloads.
#
#   bash studies/husai/build-activations.sh [--ci] [--out DIR] [--seed N] [--record | --record-only | --export-mlp]
#
# Trains the one-layer modular-addition transformer of studies/tools/modular_arith.py
# until its test accuracy reaches 99% (checked every 100 steps; a step cap stops a run that
# does not grok, and the script then fails), and writes into DIR:
#   model.pt                 the trained state_dict
#   acts.npy / acts.json     resid_post at "=" for all p^2 pairs (what the HUSAI studies read)
#   ood-heldout.npy          the pairs the transformer did not train on
#   ood-train.npy            the pairs it trained on
#   ood-shift.npy            inputs [a, b, (a + 7b) mod p]: an operand token where "=" belongs
#   results.json             train/test accuracy, steps (the results format of `ledger record`)
#   random-acts.npy          the same architecture and seed, untrained (--random-weights)
#   random-results.json      its accuracies
# Sizes: default p=113, d_model=128, 4 heads, d_mlp=512, 80% training pairs, AdamW lr 3e-3,
# weight decay 1, cap 6000 steps (DIR defaults to data/husai/p113). Nanda et al.'s 30% of the
# pairs at lr 1e-3 needs on the order of 10^4 full-batch steps to grok, hours on 2 cores; with
# 80% the held-out 20% (2,554 pairs) still tests generalisation and the OOD gate. --ci: p=23, d_model=32,
# d_mlp=64, 80% training pairs, lr 3e-3, cap 3000 steps (DIR defaults to data/husai/ci), seconds.
# Deterministic: the same seed gives the same bytes on the CPU (one torch thread).
# --record: record the outputs in the ledger of the current repository (`ledger record`;
# $LEDGER or build/ledger), as studies husai-transformer and husai-random-transformer (params p, d_model tell the size).
# --record-only: record outputs that an earlier run of this script left in DIR, without training.
# --export-mlp: train nothing; load DIR/model.pt (modular_arith.py --load-model) and write
# mlp.npy / mlp.json (the MLP's input at "=", all p^2 pairs) and mlp-target.npy / mlp-target.json
# (its output, the transcoder target of studies/husai/arms/). It first re-exports resid_post and
# fails unless it equals DIR/acts.npy (the same bytes, or within 1e-4 of its largest magnitude
# under other BLAS kernels): the model is the one the activations came from.
# On Intel CPUs with AVX-512, OPENBLAS_CORETYPE is set as `ledger` sets it (engine/blas_lazy.c):
# OpenBLAS 0.3.21 misdetects them and PyTorch's GEMMs then run 2.3x slower.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ci=0 out="" seed=0 record=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1 ;;
    --out) out="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --record) record=1 ;;
    --record-only) record=2 ;;
    --export-mlp) record=3 ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-activations.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "${PYTHON3:-}" ]; then
  PYTHON3=python3
  [ -x /usr/bin/python3 ] && PYTHON3=/usr/bin/python3     # Debian's python3-torch lives there
fi
if ! "$PYTHON3" -c 'import torch, numpy' 2>/dev/null; then
  echo "build-activations.sh: $PYTHON3 cannot import torch and numpy (Debian: apt-get install python3-torch)" >&2
  exit 2
fi
if [ "$ci" = 1 ]; then
  size=(--p 23 --d-model 32 --n-heads 4 --d-mlp 64 --train-frac 0.8 --lr 3e-3 --steps 3000)
  out=${out:-$root/data/husai/ci}
else
  size=(--p 113 --d-model 128 --n-heads 4 --d-mlp 512 --train-frac 0.8 --lr 3e-3 --steps 6000)
  out=${out:-$root/data/husai/p113}
fi
mkdir -p "$out"
ma="$root/studies/tools/modular_arith.py"
common=("${size[@]}" --weight-decay 1.0 --seed "$seed" --hook resid_post --threads 1)
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q GenuineIntel /proc/cpuinfo 2>/dev/null &&
   grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo; then
  if grep -qw avx512_bf16 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Cooperlake
  else export OPENBLAS_CORETYPE=SkylakeX; fi
fi
if [ "$record" = 3 ]; then
  [ -f "$out/model.pt" ] && [ -f "$out/acts.npy" ] ||
    { echo "build-activations.sh: --export-mlp needs $out/model.pt and $out/acts.npy (run without it first)" >&2; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PYTHON3" "$ma" "${common[@]}" --load-model "$out/model.pt" --out "$tmp/post" >/dev/null
  # the same bytes when the BLAS kernels are the same; another GEMM kernel moves the last bits
  # (about 1e-6 relative), another model moves them by orders of magnitude more
  if ! cmp -s "$tmp/post.npy" "$out/acts.npy" &&
     ! "$PYTHON3" -c 'import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
sys.exit(0 if a.shape == b.shape and np.abs(a - b).max() <= 1e-4 * max(1e-30, np.abs(b).max()) else 1)' \
       "$tmp/post.npy" "$out/acts.npy"; then
    echo "build-activations.sh: $out/model.pt does not reproduce $out/acts.npy (another model, size or seed?)" >&2
    exit 1
  fi
  mlp=("${common[@]/resid_post/mlp_in}")
  "$PYTHON3" "$ma" "${mlp[@]}" --target-hook mlp_out --load-model "$out/model.pt" --out "$out/mlp" >/dev/null
  echo "build-activations.sh: wrote $out/mlp.npy and $out/mlp-target.npy from $out/model.pt"
  exit 0
fi
if [ "$record" != 2 ]; then
  "$PYTHON3" "$ma" "${common[@]}" --stop-test-acc 0.99 --eval-every 50 --out "$out/acts" \
    --ood-out "$out/ood" --save-model "$out/model.pt" --results "$out/results.json" >/dev/null
  "$PYTHON3" "$ma" "${common[@]}" --random-weights --out "$out/random-acts" \
    --save-model "$out/random-model.pt" --results "$out/random-results.json" >/dev/null
fi
if [ "$record" != 0 ]; then
  ledger=${LEDGER:-$root/build/ledger}
  digest=$(sha256sum "$out/acts.npy" | cut -d' ' -f1)
  rdigest=$(sha256sum "$out/random-acts.npy" | cut -d' ' -f1)
  ( cd "$out" &&
    "$ledger" record --study "husai-transformer" --results results.json --data-digest "$digest" \
      model.pt acts.npy acts.json ood-heldout.npy ood-train.npy ood-shift.npy results.json &&
    "$ledger" record --study "husai-random-transformer" --results random-results.json \
      --data-digest "$rdigest" random-model.pt random-acts.npy random-acts.json random-results.json )
fi
echo "build-activations.sh: wrote $out"

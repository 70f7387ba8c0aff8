#!/usr/bin/env bash
# bigdata-rss.sh - peak resident memory of a short `ledger run` on a large activation file.
#
#   bash bench/bigdata-rss.sh [ROWS] [D]        (default 250000 x 4096 float32: 4.1 GB)
#
# Writes ROWS x D float32 standard-normal rows as a .npy in a temp folder (NumPy, chunk by
# chunk), runs a one-seed TopK study on it (d_sae 256, k 32, 4 steps of batch 256, 1% held out,
# no random control) under /usr/bin/time -v, prints the file size, the wall time and the
# maximum resident set size, and deletes the folder. $LEDGER (default build/ledger),
# $PYTHON3 (default /usr/bin/python3, which needs numpy).
set -euo pipefail
rows=${1:-250000} d=${2:-4096}
root=$(cd "$(dirname "$0")/.." && pwd)
LEDGER=${LEDGER:-$root/build/ledger}
PYTHON3=${PYTHON3:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ledger-bigdata.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$PYTHON3" - "$tmp/acts.npy" "$rows" "$d" <<'PY'
import sys
import numpy as np
path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = np.lib.format.open_memmap(path, mode="w+", dtype="<f4", shape=(n, d))
rng = np.random.default_rng(0)
for i in range(0, n, 8192):
    m = min(8192, n - i)
    a[i:i + m] = rng.standard_normal((m, d), dtype=np.float32)
a.flush()
del a
PY
cat >"$tmp/study.json" <<JSON
{"format": 1, "name": "bigdata-rss",
 "data": {"source": "file", "path": "acts.npy", "eval_fraction": 0.01},
 "sae": {"arch": "topk", "d_sae": 256, "k": 32},
 "train": {"steps": 4, "batch": 256, "warmup_steps": 1},
 "seeds": [1], "controls": {"random_init": false}, "metrics": {"hungarian": false}}
JSON
cd "$tmp"
size=$(stat -c %s acts.npy)
echo "file: ${rows} x ${d} float32, ${size} bytes ($((size / 1048576)) MiB)"
# each binary in a fresh ledger on the same file ($LEDGER_BASELINE: also an older binary)
for bin in ${LEDGER_BASELINE:-} "$LEDGER"; do
  rm -rf repo && mkdir repo && cp study.json repo/ && ln -s ../acts.npy repo/acts.npy
  ( cd repo && git init -q . && "$bin" init >/dev/null ) || exit 1
  ( cd repo && exec /usr/bin/time -v "$bin" run -q study.json >run.out 2>time.txt ) &
  tpid=$!
  # peak anonymous memory (heap: copies) and file-backed pages (the mapping), sampled every 0.1 s
  anon=0 file=0
  while kill -0 "$tpid" 2>/dev/null; do
    lpid=$(pgrep -P "$tpid" | head -1 || true)
    if [ -n "$lpid" ] && [ -r "/proc/$lpid/status" ]; then
      read -r a f < <(awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {print a+0, f+0}' "/proc/$lpid/status" 2>/dev/null || echo "0 0")
      [ "${a:-0}" -gt "$anon" ] && anon=$a
      [ "${f:-0}" -gt "$file" ] && file=$f
    fi
    sleep 0.1
  done
  wait "$tpid" || { cat repo/time.txt; exit 1; }
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' repo/time.txt)
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' repo/time.txt)
  res=$(cd repo && "$bin" show --json @1 | "$PYTHON3" -c 'import json,sys; print([o["sha256"] for o in json.load(sys.stdin)["outputs"] if o["name"]=="results.json"][0][:16])')
  echo "$bin run: results.json sha256 ${res}..., wall ${wall}, maximum resident set size ${rss} KiB ($((rss / 1024)) MiB)," \
       "peak RSS / file size $(awk -v r="$rss" -v s="$size" 'BEGIN {printf "%.3f", r * 1024 / s}');" \
       "sampled peaks: RssAnon ${anon} KiB, RssFile ${file} KiB"
done

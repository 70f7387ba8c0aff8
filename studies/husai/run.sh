#!/usr/bin/env bash
# run.sh - the whole HUSAI path on real activations, in the ledger of the current repository:
#   transformer -> activations -> ledger record -> ledger run (6 studies) -> ledger check -> report
#
#   bash studies/husai/run.sh [--ci] [--skip-build]
#
# Full size (default): build-activations.sh writes data/husai/p113 (p=113, d_model=128,
# trained until test accuracy >= 99%), then the studies of studies/husai/*.json run as they
# are (`nice -n 19 ledger run`), and the report goes to out/husai/report.md.
# --ci: the same path at CI size in seconds: data in out/husai-ci/data (p=23, d_model=32),
# specs resized by make-ci-specs.py into out/husai-ci/studies (same study names), report
# out/husai-ci/report.md.
# --skip-build: reuse the activations already in the data folder (and their records).
# Claims: claims/husai/husai.claims (full size) or claims/husai/husai-ci.claims (--ci: the
# evidence differs between the sizes); template: templates/husai.md. Exit status: that of
# `ledger check` (0 when every claim is ok), or of the first step that failed.
# $LEDGER (default build/ledger) and $PYTHON3 as in build-activations.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ci=0 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) ci=1 ;;
    --skip-build) build=0 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
LEDGER=${LEDGER:-$root/build/ledger}
export LEDGER
py=${PYTHON3:-python3}
if [ "$ci" = 1 ]; then
  out="$root/out/husai-ci"; data="$out/data"; specs="$out/studies"; claims="$root/claims/husai/husai-ci.claims"
  [ "$build" = 1 ] && bash "$here/build-activations.sh" --ci --out "$data" --record
  "$py" "$here/make-ci-specs.py" "$data" "$specs"
else
  out="$root/out/husai"; data="$root/data/husai/p113"; specs="$here"; claims="$root/claims/husai/husai.claims"
  [ "$build" = 1 ] && nice -n 19 bash "$here/build-activations.sh" --out "$data" --record
fi
mkdir -p "$out"
for s in trained-vs-random random-model ood-heldout k-sweep dsae-sweep adaptive-l0; do
  nice -n 19 "$LEDGER" run "$specs/$s.json"
done
rc=0
"$LEDGER" check "$claims" || rc=$?
"$LEDGER" report "$root/templates/husai.md" -o "$out/report.md" --claims "$claims" \
  --name "husai$([ "$ci" = 1 ] && echo -ci)" --allow-failing
exit "$rc"

#!/usr/bin/env bash
# demo.sh - the main job, end to end on a fresh Debian machine:
#   install dependencies (apt), build, then in this repository:
#   ledger init -> ledger run studies/small-topk.json -> ledger check -> ledger verify
#   -> ledger report templates/small-topk.md -o out/small-topk-report.md
# About a minute of training on 2 CPU cores (CUDA is used instead when a GPU is present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target ledger
LEDGER="$PWD/$BUILD/ledger"
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-ledger} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-ledger@localhost}
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-ledger} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-ledger@localhost}

step() { printf '\n== %s\n' "$*"; }
step "ledger init (branch refs/heads/ledger + .ledger/ in this repository)"
"$LEDGER" init
step "ledger run studies/small-topk.json"
"$LEDGER" run studies/small-topk.json
step "ledger check claims/small-topk.claims"
"$LEDGER" check claims/small-topk.claims
step "ledger verify (integrity of every stored byte + every claim)"
"$LEDGER" verify
step "ledger report templates/small-topk.md -o out/small-topk-report.md"
mkdir -p out
"$LEDGER" report templates/small-topk.md -o out/small-topk-report.md
step "done: the report is out/small-topk-report.md (plots beside it); 'ledger log' lists the runs"

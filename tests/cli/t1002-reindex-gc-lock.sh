#!/usr/bin/env bash
# t1002: reindex after deleting the index gives identical query results;
# gc --dry-run lists and gc removes only unreferenced objects and temp files;
# the writer lock makes a second writer wait, then fail with exit 3;
# concurrent records all land in one consecutive chain.
. "$(dirname "$0")/lib-cli.sh"

IN=$TMP/in; mkdir -p "$IN"
mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || bad "init"
for i in 1 2 3 4; do
  "$PYTHON3" - "$i" > "$IN/r$i.json" <<'PY'
import json, sys
i = int(sys.argv[1])
conds = []
for k in (4, 32):
    conds.append({"id": "topk_k%d" % k, "params": {"arch": "topk", "k": k, "lr": 1e-3 * i, "tag": "t%d" % i},
                  "cells": [{"seed": s, "status": "ok", "metrics": {"fvu": 0.1 * s + 0.01 * k + i / 7.0, "l0": k + s / 3.0}} for s in range(1, 4)],
                  "pairs": [{"seed_a": a, "seed_b": b, "metrics": {"mmcs": 0.3 + a / 11.0 + b / 13.0, "mcc": None}} for a in range(1, 4) for b in range(a + 1, 4)],
                  "seeds": [{"seed": s, "metrics": {"mmcs_mean": 1 / (s + k + i)}} for s in range(1, 4)]})
print(json.dumps({"conditions": conds}))
PY
  echo "out $i" > "$IN/o$i.txt"
  "$LEDGER" record --study "study$((i % 2))" --results "$IN/r$i.json" "$IN/o$i.txt" >/dev/null || bad "record $i"
done
dump() { local t; for t in runs conditions params cells samples artifacts meta; do
  "$LEDGER" query "SELECT * FROM $t" >"$IN/q.txt" || return 1; sort "$IN/q.txt"; done; }
dump > "$IN/before.txt" && ok "dump before" || bad "dump before"
[ "$(grep -c . "$IN/before.txt")" -gt 100 ] && ok "dump has rows" || bad "dump too small"
rm .ledger/index.sqlite*
expect_code 2 "query without an index exits 2" "$LEDGER" query "SELECT 1"
grep_err "ledger reindex" "says to reindex"
expect_ok "reindex" "$LEDGER" reindex
grep_out "reindexed 4 runs" "reindex reports"
dump > "$IN/after.txt" && ok "dump after" || bad "dump after"
cmp -s "$IN/before.txt" "$IN/after.txt" && ok "reindex gives identical query results" || { bad "query results differ"; diff "$IN/before.txt" "$IN/after.txt" | head; }
expect_ok "verify after reindex" "$LEDGER" verify

# gc: one garbage object, one stale temp file
garbage=$(printf 'garbage' | sha256sum | cut -c1-64)
mkdir -p ".ledger/store/objects/${garbage:0:2}" && printf 'garbage' > ".ledger/store/objects/${garbage:0:2}/${garbage:2}"
echo partial > .ledger/store/tmp/obj-1-abcdef
expect_ok "gc --dry-run" "$LEDGER" gc --dry-run --min-age 0
grep_out "would remove .*${garbage:2}" "dry run lists the garbage object"
grep_out "would remove .*obj-1-abcdef" "dry run lists the temp file"
grep_out "would remove 1 temp file and 1 object" "dry run summary"
[ -e ".ledger/store/objects/${garbage:0:2}/${garbage:2}" ] && ok "dry run removed nothing" || bad "dry run removed"
expect_ok "gc with default min-age keeps young files" "$LEDGER" gc
grep_out "removed 0 temp files and 0 objects" "young files kept"
expect_ok "gc" "$LEDGER" gc --min-age 0
[ ! -e ".ledger/store/objects/${garbage:0:2}/${garbage:2}" ] && [ ! -e .ledger/store/tmp/obj-1-abcdef ] && ok "garbage removed" || bad "garbage left"
expect_ok "verify --require-artifacts after gc" "$LEDGER" verify --require-artifacts

# lock: a held lock makes a writer wait, then fail with exit 3
flock .ledger/lock sleep 4 &
holder=$!
sleep 0.5
echo x > "$IN/x.txt"
tip=$(git rev-parse ledger)
expect_code 3 "record times out on a held lock" "$LEDGER" record --lock-timeout 1 --study s "$IN/x.txt"
grep_err "waiting for the ledger lock" "says what it waits for"
grep_err "timed out after 1 s" "then fails"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "nothing recorded" || bad "recorded despite the lock"
wait "$holder"

# concurrent writers all land
pids=""
for i in 1 2 3 4 5 6; do
  echo "c $i" > "$IN/c$i.txt"
  "$LEDGER" record --study conc "$IN/c$i.txt" >/dev/null 2>"$IN/c$i.err" & pids="$pids $!"
done
fails=0; for p in $pids; do wait "$p" || fails=$((fails+1)); done
[ "$fails" = 0 ] && ok "6 concurrent records succeed" || { bad "$fails concurrent records failed"; cat "$IN"/c*.err; }
expect_ok "log" "$LEDGER" log
[ "$(cut -f1 "$TMP/.out" | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 9 10 " ] && ok "seq consecutive" || bad "seq: $(cut -f1 "$TMP/.out" | tr '\n' ' ')"
expect_ok "verify after concurrent records" "$LEDGER" verify
finish

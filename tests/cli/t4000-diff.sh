#!/usr/bin/env bash
# t4000: ledger diff RUN_A RUN_B: spec differences key by key (dotted paths),
# recorded-field differences (digests), per-condition metric means and deltas
# matched by condition id, conditions in one run only; text and --json.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
spec() { # spec STEPS GRID
cat > studies/d.json <<JSON
{"format": 1, "name": "difftest",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 600, "active_mean": 2, "seed": 4}},
 "sae": {"arch": "topk", "d_sae": 16},
 "train": {"steps": $1, "batch": 32, "lr": 0.004},
 "grid": {"k": $2}, "seeds": [1, 2, 3]}
JSON
}
spec 20 "[2, 4]"
expect_ok "run a" "$LEDGER" run -q --backend cpu studies/d.json
spec 30 "[4, 8]"
expect_ok "run b" "$LEDGER" run -q --backend cpu studies/d.json

expect_ok "diff text" "$LEDGER" diff @1 @2
grep_out '~ train\.steps: 20 -> 30' "spec key changed, dotted path, old -> new"
grep_out '~ grid\.k\[0\]: 2 -> 4' "array elements by index"
grep_out '~ spec_digest: ' "spec digest differs"
grep_out 'only in a: k=2' "condition only in a"
grep_out 'only in b: k=8' "condition only in b"
grep_out '^  k=4$' "shared condition listed"
grep_out 'pair +mmcs ' "pair metrics"
grep_out 'seed +mmcs_mean ' "seed metrics"
if grep -q 'data_digest' "$TMP/.out"; then bad "same data reported as differing"; else ok "same data digest not listed"; fi

expect_ok "diff --json" "$LEDGER" diff --json @1 @2
"$PYTHON3" - "$TMP/.out" <<'PY' && ok "json: deltas are b - a of the means in the manifests" || bad "json deltas"
import json, sys
d = json.load(open(sys.argv[1]))
spec = {c["path"]: c for c in d["spec"]}
assert spec["train.steps"]["a"] == 20 and spec["train.steps"]["b"] == 30 and spec["train.steps"]["change"] == "changed"
assert d["only_in_a"] == ["k=2", "k=2,control=random"] and d["only_in_b"] == ["k=8", "k=8,control=random"], (d["only_in_a"], d["only_in_b"])
assert [c["id"] for c in d["conditions"]] == ["k=4", "k=4,control=random"], [c["id"] for c in d["conditions"]]
assert any(f["field"] == "spec_digest" for f in d["fields"])
PY
# recompute the k=4 pair mmcs means from the two manifests
"$LEDGER" show --json @1 > a.json && "$LEDGER" show --json @2 > b.json
"$PYTHON3" - "$TMP/.out" a.json b.json <<'PY' && ok "k=4 pair mmcs mean and delta recomputed" || bad "k=4 mean mismatch"
import json, sys
d = json.load(open(sys.argv[1]))
def mean(path, unit, metric):
    m = json.load(open(path))
    c = [c for c in m["results"]["conditions"] if c["id"] == "k=4"][0]
    v = [u["metrics"][metric] for u in c[unit] if u["metrics"].get(metric) is not None]
    return sum(v) / len(v), len(v)
row = [r for r in d["conditions"][0]["metrics"] if r["unit"] == "pair" and r["metric"] == "mmcs"][0]
ma, na = mean(sys.argv[2], "pairs", "mmcs"); mb, nb = mean(sys.argv[3], "pairs", "mmcs")
assert abs(row["a_mean"] - ma) < 1e-12 and abs(row["b_mean"] - mb) < 1e-12, row
assert abs(row["delta"] - (mb - ma)) < 1e-12 and row["a_n"] == na == 3 and row["b_n"] == nb == 3, row
PY
expect_ok "a run against itself" "$LEDGER" diff --json @2 @2
"$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["fields"] == [] and d["spec"] == [] and d["only_in_a"] == [] and d["only_in_b"] == []
assert all(r["delta"] == 0 for c in d["conditions"] for r in c["metrics"] if r["delta"] is not None)' "$TMP/.out" &&
    ok "no differences with itself" || bad "self diff not empty"
# a key added, an array shortened
sed -i 's/"lr": 0.004}/"lr": 0.004, "warmup_steps": 5}/; s/"k": \[4, 8\]/"k": [4]/' studies/d.json
expect_ok "run c" "$LEDGER" run -q --backend cpu studies/d.json
expect_ok "diff b c" "$LEDGER" diff @2 @3
grep_out '^  \+ train\.warmup_steps: 5$' "added key with +"
grep_out '^  - grid\.k\[1\]: 8$' "removed array element with -"
expect_code 2 "unknown run" "$LEDGER" diff @1 @9
one_line_err "one-line error"
expect_code 2 "one run only" "$LEDGER" diff @1
expect_ok "diff --help" "$LEDGER" diff --help
grep_out "usage: ledger diff" "help"
finish

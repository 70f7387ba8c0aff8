#!/usr/bin/env bash
# t2021: evidence that CI can see. Outputs larger than small_output_max live
# only in the store, so a fresh clone lacks them. Claims read the results from
# the manifest, so in the clone `ledger init` + `ledger verify` and `ledger
# check` pass; `verify --require-artifacts` stays strict; a report directive
# that really reads an artifact (maxcos histogram) is MISSING naming it and
# saying `ledger pull DIR`, and renders after the pull.
. "$(dirname "$0")/lib-cli.sh"

mkdir a && cd a && git init -q . && "$LEDGER" init --small-output-max 256 >/dev/null || { bad "init"; finish; }
mkdir -p studies claims templates
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 2}, "train": {"steps": 120, "batch": 64, "lr": 0.005}, "seeds": [1, 2, 3]}
JSON
cat > claims/tiny.claims <<'CLAIMS'
claim trained-beats-random
  says "trained SAEs agree across seeds more than random-init ones"
  study tiny
  sample trained = pair.mmcs where control=trained
  sample random = pair.mmcs where control=random
  require mean(trained) - mean(random) > 0
end
CLAIMS
cat > templates/t.md <<'MD'
{{claim trained-beats-random}}

Mean MMCS: {{value tiny pair.mmcs where control=trained | mean}}

{{plot tiny maxcos-hist | file=hist.svg}}
MD
expect_ok "run" "$LEDGER" run -q studies/tiny.json
expect_ok "store-only outputs exist" "$LEDGER" query "SELECT count(*) FROM artifacts WHERE NOT in_tree AND name LIKE 'cells/%'"
grep_out "^[1-9]" "the weights are store-only"
git add studies claims templates && git commit -qm work && ok "commit work" || bad "commit"
expect_ok "push the store to a directory remote" "$LEDGER" push "$TMP/remote"

cd "$TMP" && git clone -q a b 2>/dev/null && cd b && git fetch -q origin ledger:ledger 2>/dev/null
expect_ok "ledger init in the fresh clone" "$LEDGER" init
expect_ok "verify passes in the fresh clone (CI)" "$LEDGER" verify --junit junit.xml
grep_out "missing from the local store" "store-only artifacts are warnings"
grep_err "1 claims: ok" "the claim counted and ok"
expect_ok "check passes in the fresh clone" "$LEDGER" check
grep_out "^PASS +trained-beats-random" "PASS"
expect_code 1 "verify --require-artifacts stays strict" "$LEDGER" verify --require-artifacts
expect_code 1 "a report reading a store-only artifact is MISSING" "$LEDGER" report templates/t.md -o out/r.md --no-record
grep_err "hist.svg.*MISSING.*maxcos.npy.*ledger pull DIR" "names the artifact and says ledger pull DIR"
expect_ok "pull the store" "$LEDGER" pull "$TMP/remote"
expect_ok "the report renders after the pull" "$LEDGER" report templates/t.md -o out/r.md --no-record
grep -q "hist.svg" out/r.md && ok "report has the plot" || bad "no plot"
expect_ok "verify --require-artifacts after the pull" "$LEDGER" verify --require-artifacts
finish

#!/usr/bin/env bash
# t7906 (red team): forged numbers under the name of a study that `ledger run`
# produces, recorded as kind "record" (no plain git needed: `ledger record
# --study tiny --results forged.json`). The latest ok run of a study is its
# evidence, so a FAILing claim PASSed, and neither `verify --recompute` nor
# the replay loop (kind run only) re-derives a record run: verify passed.
# Now a record run never stands in for a study with a run of kind run/import:
# the claim is MISSING with the reason, and verify fails.
. "$(dirname "$0")/lib-cli.sh"
mkdir -p studies claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 60, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2]}, "seeds": [1, 2]}
JSON
cat > claims/t.claims <<'C'
claims-language 1
claim high
  says "trained MMCS above 0.9 (false on this study)"
  study tiny
  sample t = pair.mmcs where control=trained k=2
  require mean(t) > 0.9
  expect pass
end
C
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" run -q --backend cpu studies/tiny.json >/dev/null &&
  ok "ledger run of a tiny study" || bad "run"
expect_code 1 "the claim FAILs on the real run" "$LEDGER" check
grep_out "^FAIL +high" "FAIL"
git show "ledger:$(git ls-tree --name-only ledger runs/ | tail -1)/manifest.json" | "$PYTHON3" -c '
import json, sys; r = json.load(sys.stdin)["results"]
for c in r["conditions"]:
    for p in c.get("pairs", []): p["metrics"]["mmcs"] = 0.95
json.dump(r, open(sys.argv[1], "w"))' "$TMP/forged.json" && ok "forged results: every pair mmcs 0.95" || bad "forge"
expect_ok "ledger record --study tiny --results forged.json is accepted" "$LEDGER" record --study tiny --results "$TMP/forged.json"
forged=$(awk '{print $4}' "$TMP/.out")
expect_code 1 "check: the claim does not PASS on the record run" "$LEDGER" check
grep_out "^MISSING +high" "MISSING"
grep_out "latest ok run $forged of study tiny is of kind record .* cannot stand in for it" "says why, naming the run"
expect_code 1 "verify --recompute fails" "$LEDGER" verify --recompute
grep_out "error: claim: high: .*MISSING" "names the claim"
# a study only ever recorded is still evidence (protected by signatures, not re-derivation)
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.9}}]}]}' > "$TMP/r.json"
printf 'claims-language 1\nclaim rec\n  says "x"\n  study recorded-only\n  sample a = cell.fvu\n  require mean(a) > 0.4\n  expect pass\nend\n' > "$TMP/rec.claims"
"$LEDGER" record --study recorded-only --results "$TMP/r.json" >/dev/null &&
  expect_ok "control: a study only recorded still PASSes" "$LEDGER" check "$TMP/rec.claims"
finish

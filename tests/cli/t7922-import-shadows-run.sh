#!/usr/bin/env bash
# t7922 (red team 2): `ledger import --study tiny` of two near-copies of one
# SAE (one decoder value scaled by 1.001, so import's same-SAE refusal does not
# fire) under the name of a study that `ledger run` produces. Import recomputes
# its pairs from the weights it stores, so `verify --recompute` agreed, but
# nothing ties those weights to the study: the latest ok run was the import,
# its mmcs 1.0, and a FAILing claim PASSed (no plain git needed). Now an import
# never stands in for a study with an ok run of kind run: MISSING, naming both.
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
  says "MMCS above 0.9 (false on this study)"
  study tiny
  sample t = pair.mmcs
  require mean(t) > 0.9
  expect pass
end
C
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" run -q --backend cpu studies/tiny.json >/dev/null &&
  ok "ledger run of a tiny study" || bad "run"
expect_code 1 "the claim FAILs on the real run" "$LEDGER" check
grep_out "^FAIL +high" "FAIL"
run1=$(git ls-tree --name-only ledger runs/ | head -1 | sed 's,runs/1-,,')
"$LEDGER" export "$run1" -o ex >/dev/null 2>&1 && mkdir dup && cp -r ex/k-2/seed-1 dup/a && cp -r ex/k-2/seed-1 dup/b &&
  "$PYTHON3" - <<'PY' && ok "two near-copies of seed 1's SAE" || bad "near-copies"
import json, struct
p = "dup/b/sae_weights.safetensors"; b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); o = 8 + n + h["W_dec"]["data_offsets"][0]
b[o:o + 4] = struct.pack("<f", struct.unpack("<f", b[o:o + 4])[0] * 1.001); open(p, "wb").write(b)
PY
expect_ok "ledger import --study tiny records them (mmcs ~1)" "$LEDGER" import --study tiny --condition k=2 dup/a dup/b
imp=$(git ls-tree --name-only ledger runs/ | tail -1 | sed 's,runs/[0-9]*-,,')
expect_code 1 "check: the import does not stand in for the run" "$LEDGER" check
grep_out "^MISSING +high" "MISSING"
grep_out "latest ok run $imp[0-9a-f]* of study tiny is of kind import .* cannot stand in for it" "says why, naming the import"
expect_code 1 "verify --recompute fails" "$LEDGER" verify --recompute
grep_out "error: claim: high: .*MISSING" "names the claim"
# an import under its own study name is still evidence
printf 'claims-language 1\nclaim imp\n  says "x"\n  study tiny-imported\n  sample a = pair.mmcs\n  require mean(a) > 0.9\n  expect pass\nend\n' > "$TMP/imp.claims"
"$LEDGER" import --study tiny-imported dup/a dup/b >/dev/null &&
  expect_ok "control: an import under its own study name PASSes" "$LEDGER" check "$TMP/imp.claims"
finish

#!/usr/bin/env bash
# t7921 (red team 2): one study name, two study files. The reviewed
# studies/tiny.json has a run whose claim FAILs. The attacker moves it aside,
# runs a second file declaring the same name with an easier spec (5 steps
# instead of 60), and puts the reviewed file back (no plain git needed: `ledger
# run` only checks the name against files that exist at run time). Before: the
# claim PASSed on the easy run, FRESH, while the reviewed file, unchanged, said
# 60 steps. Now the study name is ambiguous at evidence time: STALE naming both
# files, and verify fails.
. "$(dirname "$0")/lib-cli.sh"
mkdir -p studies/extra claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 60, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2]}, "seeds": [1, 2]}
JSON
cat > claims/t.claims <<'C'
claims-language 1
claim low
  says "trained MMCS below 0.6 (false after 60 steps)"
  study tiny
  sample t = pair.mmcs where control=trained k=2
  require mean(t) < 0.6
  expect pass
end
C
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" run -q --backend cpu studies/tiny.json >/dev/null &&
  ok "ledger run of the reviewed study (60 steps)" || bad "run"
expect_code 1 "the claim FAILs on it" "$LEDGER" check
grep_out "^FAIL +low" "FAIL"
sed 's/"steps": 60/"steps": 5/' studies/tiny.json > studies/extra/tiny-easy.json
expect_code 2 "control: ledger run refuses a second file declaring the name" "$LEDGER" run -q --backend cpu studies/extra/tiny-easy.json
mv studies/tiny.json "$TMP/aside.json" &&
  "$LEDGER" run -q --backend cpu studies/extra/tiny-easy.json >/dev/null &&
  mv "$TMP/aside.json" studies/tiny.json && ok "the easy file run while the reviewed one was moved aside" || bad "easy run"
expect_code 1 "check: the easy run is not evidence for study tiny" "$LEDGER" check
grep_out "^STALE +low" "STALE"
grep_out "declared by both studies/extra/tiny-easy.json .* and studies/tiny.json" "names both files"
expect_code 1 "verify fails" "$LEDGER" verify
rm studies/extra/tiny-easy.json
expect_code 1 "control: with the easy file gone its run is STALE (it no longer exists), not evidence" "$LEDGER" check
grep_out "^STALE +low" "STALE"
finish

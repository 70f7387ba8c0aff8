#!/usr/bin/env bash
# t7920 (red team 2): a run's extra.spec_canonical_sha256 (the spec meaning
# staleness compares) rewritten to the meaning of today's study file, while the
# run still embeds, and its results follow from, the old spec. Every hash
# recomputed with plain git (lib-rewrite.py). Before: the claim read the old
# evidence as FRESH and PASSed (replay and recompute agree with the old spec,
# so nothing else noticed). Now the recorded meaning must be the embedded
# spec's: the claim is STALE naming the run, and verify fails.
. "$(dirname "$0")/lib-cli.sh"
mkdir -p studies claims
spec() { cat > studies/tiny.json <<JSON
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": $1, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2]}, "seeds": [1, 2]}
JSON
}
spec 60
cat > claims/t.claims <<'C'
claims-language 1
claim pos
  says "trained MMCS above 0"
  study tiny
  sample t = pair.mmcs where control=trained k=2
  require mean(t) > 0
  expect pass
end
C
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" run -q --backend cpu studies/tiny.json >/dev/null &&
  ok "ledger run of a tiny study (steps 60)" || bad "run"
expect_ok "the claim PASSes on the fresh run" "$LEDGER" check
spec 61
expect_code 1 "after the study changes (steps 61) the claim is STALE" "$LEDGER" check
grep_out "^STALE +pos" "STALE"
# the attacker: the meaning of today's file, written into the old run's extra
new=$("$PYTHON3" -c '
import json, hashlib, sys
s = json.load(open("studies/tiny.json")); s.pop("description", None)
print(hashlib.sha256(json.dumps(s, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest())')
old=$(git show "ledger:$(git ls-tree --name-only ledger runs/ | tail -1)/manifest.json" | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["extra"]["spec_canonical_sha256"])')
[ "$new" != "$old" ] && ok "the new meaning differs from the recorded one" || bad "meaning unchanged ($new)"
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 1 "m['extra']['spec_canonical_sha256'] = '$new'" >/dev/null &&
  "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1 && ok "run 1 rewritten with plain git" || bad "rewrite"
expect_code 1 "check: the rewritten run is not FRESH evidence for the new spec" "$LEDGER" check
grep_out "^STALE +pos" "STALE"
grep_out "spec meaning .* embeds" "says the recorded meaning is not the embedded spec's"
expect_code 1 "verify fails" "$LEDGER" verify
# the same meaning, and the embedded spec dropped (only `ledger run` writes the meaning, always with the spec)
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 1 "del m['spec']" >/dev/null &&
  "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1 && ok "run 1 rewritten again: no embedded spec" || bad "rewrite 2"
expect_code 1 "check: still not FRESH" "$LEDGER" check
grep_out "^STALE +pos" "STALE"
grep_out "embeds no spec" "says the run embeds no spec"
finish

#!/usr/bin/env bash
# t2022: staleness by meaning. The spec digest staleness compares is taken over
# the canonical JSON of the spec without "description": re-indenting the study
# file or editing its description keeps claims PASS; renaming or moving the
# file is followed (the study is found by name and digest); a real change is
# STALE naming the file. A claim pinned to a run (`run PREFIX`) is judged on
# that run's own record: PASS after a spec edit, and the output says pinned.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny", "description": "first words",
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
expect_ok "run" "$LEDGER" run -q studies/tiny.json
run1=$(awk '{print $2}' "$TMP/.out")
expect_ok "the manifest records the spec's meaning" "$LEDGER" show --json "$run1"
"$PYTHON3" - "$TMP/.out" studies/tiny.json <<'PY' && ok "extra.spec_canonical_sha256 = sha256(canonical spec without description)" || bad "spec_canonical_sha256"
import hashlib, json, sys
m = json.load(open(sys.argv[1]))
spec = json.load(open(sys.argv[2]))
spec.pop("description")
def canon(v):
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)) and float(v).is_integer() and abs(v) < 2**53:
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=False)
want = hashlib.sha256(canon(spec).encode()).hexdigest()
assert m["extra"]["spec_canonical_sha256"] == want, (m["extra"], want)
PY
expect_ok "PASS" "$LEDGER" check
grep_out "^PASS +trained-beats-random" "PASS"

"$PYTHON3" -c 'import json; s=json.load(open("studies/tiny.json")); open("studies/tiny.json","w").write(json.dumps(s, indent=4, sort_keys=True) + "\n")'
expect_ok "re-indented study: still PASS" "$LEDGER" check
grep_out "^PASS +trained-beats-random" "PASS after re-indenting"
sed -i 's/first words/other words entirely/' studies/tiny.json
grep -q "other words" studies/tiny.json && ok "description edited" || bad "sed"
expect_ok "edited description: still PASS" "$LEDGER" check
sed -i 's/"lr": 0.005/"lr": 5e-3/' studies/tiny.json
expect_ok "a number written another way: still PASS" "$LEDGER" check

git mv -f studies/tiny.json studies/renamed.json 2>/dev/null || mv studies/tiny.json studies/renamed.json
expect_ok "renamed study file: found by name and digest, PASS" "$LEDGER" check
grep_out "^PASS +trained-beats-random" "PASS after the rename"
mkdir -p exp/deeper && mv studies/renamed.json exp/deeper/tiny-v1.json
expect_ok "moved to another folder: still PASS" "$LEDGER" check
sed -i 's/"steps": 120/"steps": 121/' exp/deeper/tiny-v1.json
expect_code 1 "a change of meaning in the moved file: STALE" "$LEDGER" check
grep_out "^STALE +trained-beats-random" "STALE"
grep_out "exp/deeper/tiny-v1.json" "names where the study is now"
mv exp/deeper/tiny-v1.json studies/tiny.json
expect_code 1 "changed study at its recorded path: STALE" "$LEDGER" check
grep_out "studies/tiny.json changed since run" "says the file changed"
rm studies/tiny.json
expect_code 1 "a study nowhere: STALE" "$LEDGER" check
grep_out "no longer exists" "says so"

# a claim pinned to the run: judged on its own record, says pinned
cat > claims/pinned.claims <<CLAIMS
claim pinned-trained-beats-random
  says "on run ${run1:0:6}, trained SAEs agree more than random-init ones"
  study tiny
  run ${run1:0:6}
  sample trained = pair.mmcs where control=trained
  sample random = pair.mmcs where control=random
  require mean(trained) - mean(random) > 0
end
CLAIMS
expect_ok "pinned claim: PASS although the study file is gone" "$LEDGER" check claims/pinned.claims
grep_out "^PASS +pinned-trained-beats-random.*pinned to run ${run1:0:6}" "PASS and says pinned"
expect_ok "pinned claim --json" "$LEDGER" check --json claims/pinned.claims
"$PYTHON3" -c 'import json,sys; c=json.load(open(sys.argv[1]))["files"][0]["claims"][0]; assert c["verdict"]=="PASS" and c["pinned_run"]==sys.argv[2], c' "$TMP/.out" "${run1:0:6}" \
  && ok "JSON: pinned_run" || bad "JSON pinned_run: $(head -c 300 "$TMP/.out")"
finish

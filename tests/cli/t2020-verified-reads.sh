#!/usr/bin/env bash
# t2020: check and report never believe the SQLite index. A falsified sample
# value (UPDATE samples ...) that would turn a FAIL into a PASS is an error
# naming the run (exit 1, "run 'ledger verify'"), never a verdict, in check,
# check --require-signed and report (nothing written, no report recorded). A
# deleted or altered runs row cannot promote an older run or a failed run:
# the run list comes from the ledger branch (tiny study runs, and recorded
# runs with chosen values so that the wrong run would change the verdict).
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims templates
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 2}, "train": {"steps": 120, "batch": 64, "lr": 0.005}, "seeds": [1, 2, 3]}
JSON
cat > claims/tiny.claims <<'CLAIMS'
claim ev-perfect
  says "every trained SAE explains 99.99% of the variance (false)"
  study tiny
  sample ev = cell.explained_variance where control=trained
  require min(ev) > 0.9999
end
CLAIMS
cat > templates/t.md <<'MD'
Claim: {{claim ev-perfect}}
MD
idx() { "$PYTHON3" -c 'import sqlite3,sys; c=sqlite3.connect(".ledger/index.sqlite"); c.execute(sys.argv[1]); c.commit()' "$1"; }

expect_ok "run" "$LEDGER" run -q studies/tiny.json
run1=$(awk '{print $2}' "$TMP/.out")
expect_code 1 "the honest verdict is FAIL" "$LEDGER" check
grep_out "^FAIL +ev-perfect" "FAIL"

# falsify the index: every explained variance becomes 1.0
idx "UPDATE samples SET value=1.0 WHERE metric='explained_variance'"
expect_ok "the index now says 1.0" "$LEDGER" query "SELECT min(value) FROM samples WHERE metric='explained_variance'"
grep_out "^1(\.0)?$" "falsified"
expect_code 1 "check: a falsified index value is an error, exit 1" "$LEDGER" check
grep_err "run 1-${run1}.*index.*samples.*ledger verify" "names the run, the table and the advice"
if grep -qE "PASS|FAIL" "$TMP/.out"; then bad "no verdict printed ($(head -1 "$TMP/.out"))"; else ok "no verdict printed"; fi
expect_code 1 "check --json: same" "$LEDGER" check --json
if grep -q '"PASS"' "$TMP/.out"; then bad "JSON says PASS"; else ok "no PASS in JSON"; fi
expect_code 1 "check --require-signed: same" "$LEDGER" check --require-signed
grep_err "run 1-${run1}" "names the run"
n_before=$(git rev-list --count ledger)
expect_code 1 "report: a falsified index value is an error" "$LEDGER" report templates/t.md -o out/r.md --allow-failing
grep_err "run 1-${run1}.*ledger verify" "names the run"
[ ! -e out/r.md ] && ok "no report written" || bad "report written from falsified values"
[ "$(git rev-list --count ledger)" = "$n_before" ] && ok "no report run recorded" || bad "a report run was recorded"
expect_code 1 "verify names the index row too" "$LEDGER" verify
grep_out "index: table samples" "verify: index row"
expect_ok "reindex repairs" "$LEDGER" reindex
expect_code 1 "FAIL again after reindex" "$LEDGER" check
grep_out "^FAIL +ev-perfect" "FAIL"

# a params row altered so that a filter selects other conditions
idx "UPDATE params SET value='trained' WHERE key='control' AND value='random'"
expect_code 1 "check: an altered params row is an error" "$LEDGER" check
grep_err "run 1-${run1}.*table params" "names the run and table"
"$LEDGER" reindex >/dev/null

# run twice more; the newest run's runs row deleted: never silently the older one
expect_ok "run 2" "$LEDGER" run -q studies/tiny.json
run2=$(awk '{print $2}' "$TMP/.out")
idx "DELETE FROM runs WHERE run_id LIKE '${run2}%'"
expect_code 1 "check: a deleted runs row of the evidence run is an error" "$LEDGER" check
grep_err "run 2-${run2}.*table runs" "names the newest run"
if grep -q "$run1" "$TMP/.out" "$TMP/.err"; then bad "the older run was used"; else ok "the older run is not used"; fi
"$LEDGER" reindex >/dev/null
# the older run made to look newest: the ledger's order wins, the verdict names run 2
idx "UPDATE runs SET seq=99 WHERE run_id LIKE '${run1}%'"
expect_code 1 "check with run 1's seq raised in the index" "$LEDGER" check
grep_out "^FAIL +ev-perfect.*run ${run2}" "still judged on run 2"
"$LEDGER" reindex >/dev/null

# recorded evidence: an older ok run that passes, a newer ok run that fails, a newest failed run that passes
mk() { "$PYTHON3" -c 'import json,sys; v=float(sys.argv[2]); json.dump({"conditions":[{"id":"c","params":{"k":1},"cells":[{"seed":s,"metrics":{"v":v}} for s in (1,2,3)]}]}, open(sys.argv[1],"w"))' "$1" "$2"; }
mk good.json 0.9 && mk bad.json 0.1
expect_ok "record the older, passing run" "$LEDGER" record --study rec --results good.json good.json
expect_ok "record the newer, failing run" "$LEDGER" record --study rec --results bad.json bad.json
newer=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["study"]=="rec"]; print(r[-1]["run_id"])' 2>/dev/null)
expect_ok "record a failed run that would pass" "$LEDGER" record --study rec --status failed --results good.json good.json
cat > rec.claims <<'CLAIMS'
claim rec-high
  says "every v above 0.5"
  study rec
  sample x = cell.v
  require min(x) > 0.5
end
CLAIMS
expect_code 1 "honest verdict: FAIL on the newer ok run" "$LEDGER" check rec.claims
grep_out "^FAIL +rec-high" "FAIL"
idx "UPDATE runs SET status='ok' WHERE study='rec' AND status='failed'"
expect_code 1 "a failed run marked ok in the index does not count" "$LEDGER" check rec.claims
grep_out "^FAIL +rec-high" "still FAIL, judged on the newer ok run"
if grep -q "^PASS" "$TMP/.out"; then bad "the failed run counted"; else ok "never PASS"; fi
"$LEDGER" reindex >/dev/null
idx "DELETE FROM runs WHERE run_id='${newer}'"
expect_code 1 "the newer run's runs row deleted: an error, not the older run's PASS" "$LEDGER" check rec.claims
grep_err "run [0-9]+-${newer:0:12}.*table runs.*ledger verify" "names the newer run"
if grep -q "^PASS" "$TMP/.out"; then bad "the older run counted"; else ok "never PASS"; fi
"$LEDGER" reindex >/dev/null
idx "UPDATE runs SET study='other' WHERE run_id='${newer}'"
expect_code 1 "the newer run's study renamed in the index: an error" "$LEDGER" check rec.claims
if grep -q "^PASS" "$TMP/.out"; then bad "the older run counted"; else ok "never PASS"; fi
"$LEDGER" reindex >/dev/null
expect_code 1 "verify after reindex (the FAIL claim)" "$LEDGER" verify
grep_out "ev-perfect.*FAIL" "only the honest FAIL"

# the evidence run's manifest rewritten in git under its old directory name: an error, no verdict
dir=$(git ls-tree --name-only ledger runs/ | grep -- "-${run2:0:12}$")
git show "ledger:$dir/manifest.json" | "$PYTHON3" -c '
import json, sys
m = json.load(sys.stdin)
for c in m["results"]["conditions"]:
    for x in c.get("cells", []):
        if "explained_variance" in x["metrics"]: x["metrics"]["explained_variance"] = 1.0
sys.stdout.write(json.dumps(m, sort_keys=True, separators=(",", ":")))' > forged.json
blob=$(git hash-object -w forged.json)
# the tip commit replaced by one whose tree holds the forged bytes (git plumbing only)
tip=$(git rev-parse ledger)
GIT_INDEX_FILE="$TMP/gi" git read-tree "$tip" && GIT_INDEX_FILE="$TMP/gi" git update-index --cacheinfo "100644,$blob,$dir/manifest.json" \
  && tree=$(GIT_INDEX_FILE="$TMP/gi" git write-tree) && nc=$(git commit-tree "$tree" -p "$tip^" -m forged) \
  && git update-ref refs/heads/ledger "$nc"
git ls-tree -r ledger "$dir/manifest.json" | grep -q "$blob" && ok "manifest of run 2 rewritten in history" || bad "rewrite failed"
expect_code 1 "check: a manifest that does not hash to its directory's id is an error" "$LEDGER" check claims/tiny.claims
# the index tip (no silent repair) or the manifest hash check stops it first: either names the run
grep_err "($dir: manifest.json hashes to .*ledger verify|not in the ledger at that seq with that id: ${dir#runs/})" "names the run directory"
if grep -qE "^(PASS|FAIL)" "$TMP/.out"; then bad "a verdict was printed"; else ok "no verdict"; fi
finish

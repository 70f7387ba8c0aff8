#!/usr/bin/env bash
# t7903 (red team): text that poses as a report, and a signed run replayed.
#  - `ledger record --kind report out.md` recorded any Markdown ("claim X: PASS")
#    as a report run; verify re-renders only report runs that name their
#    template, so it passed and `ledger log` listed it as a report. Now record
#    refuses the kind (exit 2, nothing recorded) and verify names a report run
#    without its template, also when planted with plain git.
#  - an old signed run appended again (same manifest and signature, new chain
#    entry): verify names the duplicate (regression; check refuses too).
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
export LEDGER_KEY_DIR=$TMP/keys
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" key generate --name ci > "$IN/keys" 2>/dev/null &&
  for v in 0.9 0.1; do
    echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":1,\"metrics\":{\"fvu\":$v}}]}]}" > "$IN/r.json"
    "$LEDGER" record --sign ci --study st --results "$IN/r.json" "$IN/keys" >/dev/null || break
  done && ok "2 signed runs" || bad "setup"
tip=$(git rev-parse ledger)
printf '# Report\n\nClaim fvu-high: PASS (mean fvu 0.9)\n' > "$IN/out.md"
expect_code 2 "record --kind report is refused" "$LEDGER" record --kind report --study st "$IN/out.md"
grep_err "reports are written by 'ledger report" "says where reports come from"
one_line_err "one line"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "nothing recorded" || bad "the ledger moved"
# the same by plain git: a record run re-labelled as a report, ids and chain recomputed
"$LEDGER" record --study st "$IN/out.md" >/dev/null && "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 3 'm["kind"] = "report"' >/dev/null &&
  "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1 && ok "a run re-labelled kind report by rewriting history" || bad "rewrite"
expect_ok "integrity alone cannot tell" "$LEDGER" verify --no-claims
expect_code 1 "verify fails" "$LEDGER" verify
grep_out "error: report: run 3-[0-9a-f]{12}: a report run without the template it was rendered from" "names the run"
# control: a report that ledger report wrote verifies
git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
echo "# report" > "$IN/rep.md" && expect_ok "ledger report records a report run" "$LEDGER" report "$IN/rep.md" -o "$IN/rep-out.md"
expect_ok "control: verify passes with it" "$LEDGER" verify
# replay: signed run 1 appended again as run 4 with a valid chain entry
git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
"$PYTHON3" - <<'PY' && ok "signed run 1 replayed as run 3 (valid chain entry, same signature)" || bad "replay"
import hashlib, json, os, subprocess, tempfile
def git(*a, inp=None, env=None): return subprocess.run(["git", *a], input=inp, capture_output=True, check=True, env=env).stdout
runs = sorted(git("ls-tree", "--name-only", "ledger", "runs/").decode().split(), key=lambda d: int(d[5:].split("-")[0]))
last = git("cat-file", "blob", "ledger:%s/chain.json" % runs[-1])
rid = json.loads(git("cat-file", "blob", "ledger:%s/chain.json" % runs[0]))["run"]
chain = json.dumps({"format": 2, "prev": hashlib.sha256(last).hexdigest(), "run": rid, "seq": len(runs) + 1},
                   sort_keys=True, separators=(",", ":")).encode()
env = dict(os.environ, GIT_INDEX_FILE=os.path.join(tempfile.mkdtemp(), "i"))
new = "runs/%d-%s" % (len(runs) + 1, rid[:12])
git("read-tree", "ledger", env=env); git("read-tree", "--prefix=%s/" % new, "ledger:" + runs[0], env=env)
cb = git("hash-object", "-w", "--stdin", inp=chain).decode().strip()
git("update-index", "--add", "--cacheinfo", "100644,%s,%s/chain.json" % (cb, new), env=env)
c = git("commit-tree", git("write-tree", env=env).decode().strip(), "-p", "ledger", "-m", "ledger: run %d %s" % (len(runs) + 1, rid))
git("update-ref", "refs/heads/ledger", c.decode().strip())
PY
expect_code 1 "verify --require-signed fails" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/keys"
grep_out "error: chain: 3-[0-9a-f]{12}: run id [0-9a-f]{12} is also run 1: the same run recorded twice" "names the replayed run"
must_fail "check refuses to answer from it" "$LEDGER" check
finish

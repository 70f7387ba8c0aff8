#!/usr/bin/env bash
# t1107: a format-1 ledger (seq/prev inside manifests) is refused clearly by
# every command (exit 2, "format 1 ledger"), also when a clone's init finds a
# format-1 origin/ledger; `ledger init --migrate` rewrites it in format 2
# (new ids, signatures dropped, old branch kept) and refuses a damaged chain.
. "$(dirname "$0")/lib-cli.sh"
mk_format1() { # mk_format1 DIR [BREAK]: a format-1 ledger with 2 runs (run 2 with a signature.json); BREAK: run 2's prev wrong
  mkdir "$1" && cd "$1" && git init -q . && mkdir -p .ledger/store &&
  printf '{\n  "format": 1,\n  "small_output_max": 1048576\n}\n' > .ledger/ledger.json &&
  "$PYTHON3" - "${2:-}" <<'PY'
import hashlib, json, subprocess, sys
def git(*a, inp=None):
    return subprocess.run(["git", *a], input=inp, capture_output=True, check=True).stdout.decode().strip()
def canon(o): return json.dumps(o, sort_keys=True, separators=(",", ":")).encode()
fmt = git("hash-object", "-w", "--stdin", inp=b"ledger-format 1\n")
tree = git("mktree", inp=("100644 blob %s\tFORMAT\n" % fmt).encode())
parent = git("commit-tree", tree, "-m", "ledger: init")
prev, entries = None, ["100644 blob %s\tFORMAT" % fmt]
runs = []
for k in (1, 2):
    data = b"output %d\n" % k
    m = {"format": 1, "kind": "record", "study": "s", "status": "ok", "created": "2026-11-01T00:00:0%dZ" % k,
         "ledger_version": "0.1", "engine_version": "0.1", "seq": k,
         "prev": ("0" * 64 if (k == 2 and sys.argv[1]) else prev),
         "results": {"conditions": [{"id": "c", "cells": [{"seed": k, "metrics": {"fvu": 0.1 * k}}]}]},
         "outputs": [{"name": "x.txt", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                      "media_type": "text/plain", "in_tree": True}]}
    raw = canon(m); rid = hashlib.sha256(raw).hexdigest()
    mb = git("hash-object", "-w", "--stdin", inp=raw); fb = git("hash-object", "-w", "--stdin", inp=data)
    files = git("mktree", inp=("100644 blob %s\tx.txt\n" % fb).encode())
    lines = ["100644 blob %s\tmanifest.json" % mb, "040000 tree %s\tfiles" % files]
    if k == 2:
        sb = git("hash-object", "-w", "--stdin", inp=b'{"format":1}')
        lines.append("100644 blob %s\tsignature.json" % sb)
    runs.append("040000 tree %s\t%d-%s" % (git("mktree", inp=("\n".join(lines) + "\n").encode()), k, rid[:12]))
    runs_tree = git("mktree", inp=("\n".join(runs) + "\n").encode())
    tree = git("mktree", inp=("\n".join(entries + ["040000 tree %s\truns" % runs_tree]) + "\n").encode())
    parent = git("commit-tree", tree, "-p", parent, "-m", "ledger: run %d %s" % (k, rid))
    prev = rid
    print(rid)
git("update-ref", "refs/heads/ledger", parent)
PY
}
mk_format1 "$TMP/f1" > "$TMP/old-ids" && ok "a format-1 ledger with 2 runs" || bad "setup"
tip=$(git rev-parse ledger)
echo x > x.txt
for cmd in "log" "verify" "record --study s x.txt" "reindex" "init"; do
  expect_code 2 "ledger $cmd refuses" "$LEDGER" $cmd
  grep_err "format 1 ledger: .*format 2 only.*init --migrate" "ledger $cmd says format 1 and what to do"
done
[ "$(git rev-parse ledger)" = "$tip" ] && ok "branch unchanged" || bad "branch changed"

# a clone whose origin/ledger is format 1 (ledger.json is new, the branch is not)
git init -q --bare "$TMP/o.git" && git push -q "$TMP/o.git" ledger 2>/dev/null && git clone -q "$TMP/o.git" "$TMP/c" 2>/dev/null && cd "$TMP/c"
expect_code 2 "init in a clone of a format-1 ledger refuses" "$LEDGER" init
grep_err "format 1 ledger: origin/ledger" "names origin/ledger"

# migration
cd "$TMP/f1"
expect_ok "init --migrate" "$LEDGER" init --migrate
old1=$(sed -n 1p "$TMP/old-ids")
grep_out "^run 1: ${old1:0:12} -> [0-9a-f]{12}$" "prints old -> new ids"
grep_out "migrated 2 run\(s\) to format 2; 1 format-1 signature\(s\) dropped" "says signatures were dropped"
[ "$(git rev-parse refs/ledger-format1/ledger)" = "$tip" ] && ok "old branch kept" || bad "no backup ref"
expect_ok "the migrated ledger verifies" "$LEDGER" verify --no-claims
[ "$(git ls-tree -r --name-only ledger | grep -c signature.json)" = 0 ] && ok "no signature carried over" || bad "signature kept"
git cat-file blob "ledger:$(git ls-tree --name-only ledger runs/ | head -1)/manifest.json" | grep -q "\"nonce\":\"${old1:0:32}\"" \
  && ok "nonce records the format-1 id" || bad "nonce"
expect_ok "log works" "$LEDGER" log
expect_ok "a second --migrate does nothing" "$LEDGER" init --migrate
grep_out "format 2 already" "says so"
expect_ok "record works after migration" "$LEDGER" record --study s "$TMP/f1/x.txt"
mk_format1 "$TMP/broken" yes >/dev/null && btip=$(git rev-parse ledger)
expect_code 2 "a damaged format-1 chain is not migrated" "$LEDGER" init --migrate
grep_err "prev does not name run 1" "names the damage"
[ "$(git rev-parse ledger)" = "$btip" ] && ok "and left unchanged" || bad "changed"
finish

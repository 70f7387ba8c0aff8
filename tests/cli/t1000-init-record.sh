#!/usr/bin/env bash
# t1000: init, record, log, show, query; the user's work tree, index and HEAD
# stay untouched; git fsck is clean after many records; bad input.
. "$(dirname "$0")/lib-cli.sh"

# bad input before any ledger exists
mkdir -p notrepo && cd notrepo
expect_code 2 "log outside a git repository exits 2" "$LEDGER" log
grep_err "not a git repository" "names the problem"
one_line_err "one-line error"
cd "$TMP"
expect_code 2 "unknown command exits 2" "$LEDGER" frobnicate
expect_code 2 "unknown option exits 2" "$LEDGER" log --frob

# a user repository with a commit, a staged change and an untracked file
mkdir repo && cd repo && git init -q . && echo hello > README && git add README && git commit -qm first
echo staged > staged.txt && git add staged.txt && echo untracked > untracked.txt
before_status=$(git status --porcelain) before_head=$(git rev-parse HEAD) before_index=$(sha1sum .git/index)
before_branch=$(git symbolic-ref HEAD)

expect_code 2 "log before init exits 2" "$LEDGER" log
grep_err "ledger init" "says to run init"
expect_ok "init" "$LEDGER" init
grep_out "initialised ledger" "init reports"
expect_ok "init again is idempotent" "$LEDGER" init
grep_out "already initialised" "second init says so"
[ "$(git rev-list --count ledger)" = 1 ] && ok "ledger branch has the root commit" || bad "ledger branch root"
grep -qx '/.ledger/' .git/info/exclude && ok ".ledger/ excluded" || bad ".ledger/ not in info/exclude"

IN=$TMP/in; mkdir -p "$IN"
cat > "$IN/res.json" <<'JSON'
{"conditions":[{"id":"topk_k4","params":{"arch":"topk","k":4,"control":"trained"},
 "cells":[{"seed":1,"status":"ok","metrics":{"fvu":0.1,"l0":4.0}},{"seed":2,"status":"ok","metrics":{"fvu":0.125,"l0":4.5}}],
 "pairs":[{"seed_a":1,"seed_b":2,"metrics":{"mmcs":0.3,"mcc":0.29,"shared_frac":0.1}}],
 "seeds":[{"seed":1,"metrics":{"mmcs_mean":0.3}}]}]}
JSON
echo '{"w": [1,2,3]}' > "$IN/small.json"
head -c 3000 /dev/zero | tr '\0' 'x' > "$IN/big.txt"
expect_ok "init with a small threshold" "$LEDGER" init --small-output-max 1000
expect_ok "record" "$LEDGER" record --study demo --results "$IN/res.json" "$IN/small.json" "$IN/big.txt" out/copy.json="$IN/small.json"
grep_out "^recorded run 1 [0-9a-f]{12} \(3 outputs\)" "record prints seq and id"
id1=$(awk '{print $4}' "$TMP/.out")
expect_ok "log" "$LEDGER" log
grep_out "^1	$id1	record	demo	ok	" "log line for run 1"
expect_ok "show" "$LEDGER" show "$id1"
grep_out "fvu +n=2 +mean=0.1125" "show summarises metrics"
grep_out "big.txt +3000 .* store$" "large output only in the store"
grep_out "small.json .* tree\+store$" "small output in the tree"
expect_ok "show --json" "$LEDGER" show --json "${id1:0:6}"
"$PYTHON3" -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["format"]==2 and "seq" not in m and "prev" not in m and len(m["nonce"])==32 and [o["name"] for o in m["outputs"]]==["big.txt","out/copy.json","small.json"]' "$TMP/.out" \
  && ok "manifest fields" || bad "manifest fields"
full=$(git cat-file blob "ledger:runs/1-$id1/manifest.json" | sha256sum | cut -c1-64)
[ "${full:0:12}" = "$id1" ] && ok "run id = sha256 of manifest bytes" || bad "run id mismatch ($full vs $id1)"
git cat-file -e "ledger:runs/1-$id1/files/out/copy.json" && ok "subdir output in tree" || bad "subdir output missing"
git cat-file -e "ledger:runs/1-$id1/files/big.txt" 2>/dev/null && bad "big output in tree" || ok "big output not in tree"
expect_ok "query" "$LEDGER" query "SELECT unit, seed, seed_b, metric, value FROM samples WHERE metric IN ('fvu','mmcs') ORDER BY unit, seed"
cat > "$IN/want.txt" <<'TXT'
unit	seed	seed_b	metric	value
cell	1		fvu	0.1
cell	2		fvu	0.125
pair	1	2	mmcs	0.3
TXT
diff -u "$IN/want.txt" "$TMP/.out" >/dev/null && ok "query output" || { bad "query output"; diff -u "$IN/want.txt" "$TMP/.out"; }
expect_ok "query params" "$LEDGER" query "SELECT key, value FROM params ORDER BY key"
grep_out "^k	4$" "numeric param as text"
expect_code 2 "query refuses writes" "$LEDGER" query "DELETE FROM runs"
expect_code 2 "query: bad SQL exits 2" "$LEDGER" query "SELEC nonsense"
one_line_err "bad SQL: one-line error"

# bad input leaves the ledger unchanged
tip=$(git rev-parse ledger)
expect_code 2 "record a missing file exits 2" "$LEDGER" record --study demo "$IN/nope.bin"
one_line_err "missing file: one-line error"
echo '{"conditions": [ {"id": 1} ]' > "$IN/badres.json"
expect_code 2 "malformed results exits 2" "$LEDGER" record --study demo --results "$IN/badres.json" "$IN/small.json"
grep_err "badres.json" "names the results file"
echo '{"conditions": [ {"id": "a", "cells": [{"seed": 1, "metrics": {"fvu": "x"}}]} ]}' > "$IN/badres2.json"
expect_code 2 "results with a bad metric exits 2" "$LEDGER" record --study demo --results "$IN/badres2.json"
grep_err "conditions\[0\]\.cells\[0\]\.metrics\.fvu" "names the place"
expect_code 2 "output name with .. exits 2" "$LEDGER" record --study demo ../x="$IN/small.json"
expect_code 2 "record without --study exits 2" "$LEDGER" record "$IN/small.json"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "ledger unchanged after bad input" || bad "ledger changed by bad input"
mv .ledger/store/tmp .ledger/store/tmp.saved && echo notadir > .ledger/store/tmp
expect_code 3 "unwritable store exits 3" "$LEDGER" record --study demo untracked.txt
one_line_err "unwritable store: one-line error"
rm .ledger/store/tmp && mv .ledger/store/tmp.saved .ledger/store/tmp
[ "$(git rev-parse ledger)" = "$tip" ] && ok "ledger unchanged after I/O error" || bad "ledger changed by I/O error"

# many records: fsck clean, chain verified, seq consecutive
for i in $(seq 2 25); do
  echo "run $i" > "$IN/f$i.txt"
  "$LEDGER" record --study "s$((i % 3))" "$IN/f$i.txt" >/dev/null 2>&1 || bad "record $i"
done
[ "$(git rev-list --count ledger)" = 26 ] && ok "25 runs, 26 commits" || bad "commit count $(git rev-list --count ledger)"
git fsck --strict --no-progress >"$IN/fsck.out" 2>&1 && ! grep -qE "error|warning|dangling commit" "$IN/fsck.out" && ok "git fsck clean" \
  || { bad "git fsck"; cat "$IN/fsck.out"; }
expect_ok "verify after many records" "$LEDGER" verify
expect_ok "log --study --json" "$LEDGER" log --study s1 --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [x["seq"] for x in r]==list(range(4,26,3)), r' "$TMP/.out" \
  && ok "log filters by study" || bad "log --study"

# a run can be named by its sequence number
expect_ok "show @1" "$LEDGER" show --json @1
[ "$(git cat-file blob "ledger:runs/1-$id1/chain.json")" = "{\"format\":2,\"prev\":null,\"run\":\"$(git cat-file blob "ledger:runs/1-$id1/manifest.json" | sha256sum | cut -c1-64)\",\"seq\":1}" ] \
  && ok "chain.json of run 1" || bad "chain.json of run 1"
"$PYTHON3" -c 'import json,sys,hashlib; assert hashlib.sha256(open(sys.argv[1],"rb").read().rstrip(b"\n")).hexdigest().startswith(sys.argv[2])' "$TMP/.out" "$id1" && ok "@1 is run 1" || bad "@1"
expect_ok "show 4" "$LEDGER" show --json 4
id4=$(git ls-tree --name-only ledger runs/ | sed -n 's|^runs/4-||p')
"$PYTHON3" -c 'import json,sys,hashlib; assert hashlib.sha256(open(sys.argv[1],"rb").read().rstrip(b"\n")).hexdigest().startswith(sys.argv[2])' "$TMP/.out" "$id4" && ok "4 is run 4" || bad "show 4"
expect_code 2 "show @999 (no such run)" "$LEDGER" show @999
expect_code 2 "show @x is malformed" "$LEDGER" show @x

# the user's side is untouched
[ "$(git status --porcelain)" = "$before_status" ] && ok "work tree status unchanged" || { bad "status changed"; git status --porcelain; }
[ "$(git rev-parse HEAD)" = "$before_head" ] && ok "HEAD unchanged" || bad "HEAD moved"
[ "$(git symbolic-ref HEAD)" = "$before_branch" ] && ok "still on the user's branch" || bad "branch switched"
[ "$(sha1sum .git/index)" = "$before_index" ] && ok "git index unchanged" || bad "git index changed"
[ "$(cat staged.txt)" = staged ] && ok "staged file intact" || bad "staged file changed"

# ledger init creates a repository when there is none
mkdir "$TMP/fresh" && cd "$TMP/fresh"
expect_ok "init outside a repository" "$LEDGER" init
grep_out "new git repository" "says it created one"
[ -d .git ] && git rev-parse -q --verify refs/heads/ledger >/dev/null && ok "repo and branch created" || bad "fresh init"
finish

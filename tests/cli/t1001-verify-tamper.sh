#!/usr/bin/env bash
# t1001: ledger verify detects a flipped object byte, an edited manifest (in a
# new commit and by rewriting history), a dropped middle commit and a changed
# index row, each with exit 1 and a line naming it; --json; missing objects.
. "$(dirname "$0")/lib-cli.sh"

IN=$TMP/in; mkdir -p "$IN"
setup() { # setup DIR: a ledger with 3 runs; ids in id1 id2 id3
  rm -rf "$TMP/$1" && mkdir "$TMP/$1" && cd "$TMP/$1" && git init -q . && "$LEDGER" init --small-output-max 100 >/dev/null || return 1
  local i
  for i in 1 2 3; do
    head -c 500 /dev/zero | tr '\0' "$i" > "$IN/big$i.bin"
    echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$IN/r$i.json"
    echo "small $i" > "$IN/small$i.txt"
    "$LEDGER" record --study st --results "$IN/r$i.json" "$IN/big$i.bin" "$IN/small$i.txt" >"$IN/rec.out" || return 1
    eval "id$i=\$(awk '{print \$4}' \"\$IN/rec.out\")"
  done
}
# new_tree BASE-TREEISH CMD...: runs git index commands on a temp index holding BASE, prints the new tree
new_tree() { local base=$1; shift; rm -f "$IN/idx"
  GIT_INDEX_FILE="$IN/idx" git read-tree "$base" && GIT_INDEX_FILE="$IN/idx" "$@" >/dev/null && GIT_INDEX_FILE="$IN/idx" git write-tree; }

setup clean || bad "setup"
expect_ok "clean ledger verifies" "$LEDGER" verify
expect_ok "verify --json" "$LEDGER" verify --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] is True and r["stats"]["runs"]==3 and r["problems"]==[], r' "$TMP/.out" \
  && ok "verify --json fields" || bad "verify --json fields"

# 1. flip one byte of a store object
obj=$(printf '%s' "$(sha256sum "$IN/big2.bin" | cut -c1-64)")
path=.ledger/store/objects/${obj:0:2}/${obj:2}
[ "$(stat -c %a "$path")" = 444 ] && ok "objects are read-only" || bad "object mode $(stat -c %a "$path")"
chmod u+w "$path" && "$PYTHON3" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[10]^=1; open(p,"wb").write(b)' "$path"
expect_code 1 "flipped object byte: exit 1" "$LEDGER" verify
grep_out "^error: object: run 2-${id2}: big2.bin: object $obj: content hashes to" "names the object and run"
expect_code 1 "verify --json reports it" "$LEDGER" verify --json
grep_out '"ok":[[:space:]]*false' "json ok false"

# 2. missing object: a warning, an error with --require-artifacts
setup missing || bad "setup"
obj=$(sha256sum "$IN/big1.bin" | cut -c1-64)
rm -f ".ledger/store/objects/${obj:0:2}/${obj:2}"
expect_ok "missing object alone passes" "$LEDGER" verify
grep_out "^warning: object: run 1-${id1}: big1.bin \($obj\): missing from the local store" "reported as missing"
expect_code 1 "missing object fails with --require-artifacts" "$LEDGER" verify --require-artifacts
grep_out "^error: object: .*missing" "as an error"

# 3. edit a manifest in a new commit (git plumbing)
setup edit || bad "setup"
m=runs/2-$id2/manifest.json
git cat-file blob "ledger:$m" | sed 's/"fvu":0.2/"fvu":0.9/' > "$IN/m.json"
grep -q '"fvu":0.9' "$IN/m.json" && ok "manifest edited" || bad "sed did not edit"
blob=$(git hash-object -w "$IN/m.json")
tree=$(new_tree ledger git update-index --cacheinfo "100644,$blob,$m")
c=$(git commit-tree "$tree" -p ledger -m "ledger: run 4 fake") && git update-ref refs/heads/ledger "$c"
expect_code 1 "edited manifest in a new commit: exit 1" "$LEDGER" verify
grep_out "^error: chain: commit ${c:0:12}: changes runs/2-$id2 recorded earlier" "names the commit and run"

# 4. edit a manifest by rewriting the commit that added it (and those after it)
setup rewrite || bad "setup"
git cat-file blob "ledger:$m" >/dev/null 2>&1 || true
m=runs/2-$id2/manifest.json
git cat-file blob "ledger:$m" | sed 's/"fvu":0.2/"fvu":0.9/' > "$IN/m.json"
blob=$(git hash-object -w "$IN/m.json")
parent=$(git rev-parse ledger~2)
for rev in ledger~1 ledger; do
  tree=$(new_tree "$rev" git update-index --cacheinfo "100644,$blob,$m")
  parent=$(git commit-tree "$tree" -p "$parent" -m "rewritten")
done
git update-ref refs/heads/ledger "$parent"
expect_code 1 "manifest rewritten in history: exit 1" "$LEDGER" verify
grep_out "^error: manifest: run 2-$id2: manifest.json hashes to [0-9a-f]{12}, not to the run id $id2" "names the modified manifest"
grep_out "^error: chain: run 2-$id2: chain.json names run ${id2}, but manifest.json hashes to [0-9a-f]{12}" "the chain entry no longer names the manifest"

# 5. drop a middle commit by rewriting the branch
setup drop || bad "setup"
tree=$(new_tree ledger git rm -r -q --cached "runs/2-$id2")
c=$(git commit-tree "$tree" -p ledger~2 -m "ledger: run 3") && git update-ref refs/heads/ledger "$c"
[ "$(git rev-list --count ledger)" = 3 ] && ok "branch rewritten without run 2" || bad "rewrite failed"
"$LEDGER" reindex >/dev/null 2>&1 # even a consistent index does not hide it
expect_code 1 "dropped middle commit: exit 1" "$LEDGER" verify
grep_out "^error: chain: run 3-$id3: is commit 2 of the chain but named seq 3" "names the gap"
grep_out "^error: chain: run 3-$id3: prev is [0-9a-f]{12}, but the previous entry is [0-9a-f]{12}" "names the broken link"

# 6. change an index row
setup index || bad "setup"
"$PYTHON3" -c 'import sqlite3,sys; c=sqlite3.connect(".ledger/index.sqlite"); c.execute("UPDATE samples SET value=0.5 WHERE seed=2"); c.commit()'
expect_code 1 "changed index row: exit 1" "$LEDGER" verify
grep_out "^error: index: table samples, run ${id2}: row in the index, not in the ledger: .*0\.5" "names the table, run and row"
grep_out "^error: index: table samples, run ${id2}: row in the ledger, missing from the index" "and the expected row"
"$PYTHON3" -c 'import sqlite3,sys; c=sqlite3.connect(".ledger/index.sqlite"); c.execute("DELETE FROM artifacts WHERE name=\"small3.txt\""); c.commit()'
expect_code 1 "deleted index row: exit 1" "$LEDGER" verify
grep_out "^error: index: table artifacts, run ${id3}: row in the ledger, missing from the index" "names the deleted row"
expect_ok "reindex repairs the index" "$LEDGER" reindex
expect_ok "verify passes after reindex" "$LEDGER" verify
rm .ledger/index.sqlite
expect_code 1 "deleted index: exit 1" "$LEDGER" verify
grep_out "^error: index: .ledger/index.sqlite: missing" "names the missing index"
finish

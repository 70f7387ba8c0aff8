#!/usr/bin/env bash
# t7400: the tamper matrix, beyond t1001 (which covers: object byte flipped,
# object missing, manifest edited in a new commit and by rewriting history,
# middle commit dropped, index row changed/deleted, index missing). Here:
#   store object  : replaced by another object's bytes, truncated
#   manifest      : deleted (new commit / rewritten history), bytes re-encoded
#   commit        : two commits reordered, a merge commit, one commit adding
#                   two runs, the newest commit dropped (seen by the index tip),
#                   commit message / author rewritten (NOT evidence, but the
#                   index tip is off the branch: verify names the rewrite until
#                   'reindex --accept-rewrite'; the log is unchanged)
#   in-tree file  : byte flipped (new commit / rewritten history), deleted,
#                   an unlisted file added
#   index row     : inserted, meta tip changed to a foreign commit
#   report run    : the rendered report of a `ledger report` run modified
# Each tamper: `ledger verify` exits 1 and a line names the thing.
. "$(dirname "$0")/lib-cli.sh"

IN=$TMP/in; mkdir -p "$IN"
setup() { # setup DIR: a ledger with 3 runs (ids id1..id3), small outputs in the tree
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
new_tree() { local base=$1; shift; rm -f "$IN/idx"
  GIT_INDEX_FILE="$IN/idx" git read-tree "$base" && GIT_INDEX_FILE="$IN/idx" "$@" >/dev/null && GIT_INDEX_FILE="$IN/idx" git write-tree; }
# rewrite_from K CMD...: rewrite commits ledger~K..ledger applying CMD (git index commands) to each tree
rewrite_from() { local k=$1; shift; local parent rev tree
  parent=$(git rev-parse "ledger~$((k + 1))")
  for ((j = k; j >= 0; j--)); do
    rev=$(git rev-parse "ledger~$j")
    tree=$(new_tree "$rev" "$@") || return 1
    parent=$(git commit-tree "$tree" -p "$parent" -m "$(git log -1 --format=%B "$rev")") || return 1
  done
  git update-ref refs/heads/ledger "$parent"; }
obj_path() { local h; h=$(sha256sum "$1" | cut -c1-64); echo ".ledger/store/objects/${h:0:2}/${h:2}"; }
flip() { chmod u+w "$1" 2>/dev/null; "$PYTHON3" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$1"; }
detects() { # detects DESC PATTERN: verify exits 1 and prints a line matching PATTERN
  expect_code 1 "$1: verify exits 1" "$LEDGER" verify --no-claims
  grep_out "$2" "$1: named"
}

# ---- store objects ----
setup obj-swap || bad setup
p2=$(obj_path "$IN/big2.bin"); p3=$(obj_path "$IN/big3.bin")
chmod u+w "$p2" && cp "$p3" "$p2"
detects "object replaced by another object's bytes" "^error: object: run 2-$id2: big2.bin: object [0-9a-f]{64}: content hashes to $(sha256sum "$IN/big3.bin" | cut -c1-64)"
setup obj-trunc || bad setup
p1=$(obj_path "$IN/big1.bin"); chmod u+w "$p1" && truncate -s 100 "$p1"
detects "object truncated" "^error: object: run 1-$id1: big1.bin: .*modified"

# ---- manifests ----
setup man-del-new || bad setup
tree=$(new_tree ledger git rm -q --cached "runs/2-$id2/manifest.json")
c=$(git commit-tree "$tree" -p ledger -m "ledger: run 4") && git update-ref refs/heads/ledger "$c"
detects "manifest deleted in a new commit" "^error: chain: commit ${c:0:12}: changes runs/2-$id2 recorded earlier"
setup man-del-hist || bad setup
rewrite_from 1 git rm -q --cached "runs/2-$id2/manifest.json"
detects "manifest deleted from history" "^error: manifest: run 2-$id2: manifest.json is missing"
setup man-reencode || bad setup
m=runs/1-$id1/manifest.json
git cat-file blob "ledger:$m" | "$PYTHON3" -c 'import json,sys; sys.stdout.write(json.dumps(json.load(sys.stdin), indent=1))' > "$IN/m.json"
blob=$(git hash-object -w "$IN/m.json")
rewrite_from 2 git update-index --cacheinfo "100644,$blob,$m"
detects "manifest re-encoded (same JSON, other bytes)" "^error: manifest: run 1-$id1: manifest.json hashes to [0-9a-f]{12}, not to the run id"

# ---- commits ----
setup reorder || bad setup
t13=$(new_tree ledger~2 git read-tree --prefix="runs/3-$id3/" "ledger:runs/3-$id3")
c3=$(git commit-tree "$t13" -p ledger~2 -m "ledger: run 3") && c2=$(git commit-tree "ledger^{tree}" -p "$c3" -m "ledger: run 2") && git update-ref refs/heads/ledger "$c2"
[ "$(git ls-tree --name-only ledger runs/ | wc -l)" = 3 ] && ok "reordered: same final tree, 3 runs" || bad "reorder setup"
detects "two commits reordered" "^error: chain: run 3-$id3: is commit 2 of the chain but named seq 3"
grep_out "^error: chain: run 2-$id2: is commit 3 of the chain but named seq 2" "reordered: names the other run too"
setup merge || bad setup
side=$(git commit-tree "$(git rev-parse ledger~1^{tree})" -p ledger~1 -m side)
c=$(git commit-tree "ledger^{tree}" -p ledger~1 -p "$side" -m "ledger: run 3") && git update-ref refs/heads/ledger "$c"
detects "merge commit in the chain" "^error: chain: commit ${c:0:12}: has 2 parents, expected 1"
setup two-in-one || bad setup
c=$(git commit-tree "ledger^{tree}" -p ledger~2 -m "ledger: runs 2 and 3") && git update-ref refs/heads/ledger "$c"
detects "one commit adding two runs" "^error: chain: commit ${c:0:12}: adds 2 runs, expected exactly 1"
setup drop-tip || bad setup
git update-ref refs/heads/ledger "$(git rev-parse ledger~1)"
detects "newest commit dropped" "^error: index: rewrite: .*not on refs/heads/ledger.*runs in the index, not in the ledger at that seq with that id: 3-${id3:0:12}"
setup message || bad setup
"$LEDGER" log > "$IN/log.before"
rewrite_from 2 true
GIT_AUTHOR_NAME=mallory GIT_AUTHOR_EMAIL=m@example.com git commit-tree "ledger^{tree}" -p ledger~1 -m "edited message" > "$IN/c" && git update-ref refs/heads/ledger "$(cat "$IN/c")"
"$LEDGER" reindex >/dev/null 2>&1
expect_code 1 "commit message and author rewritten: the local index tip names the rewrite" "$LEDGER" verify --no-claims
grep_out "^error: index: rewrite: .*no indexed run differs: commits rewritten" "no run differs, commits rewritten"
expect_code 1 "reindex refuses it without --accept-rewrite" "$LEDGER" reindex
expect_ok "reindex --accept-rewrite" "$LEDGER" reindex --accept-rewrite
expect_ok "then verify passes: message and author are not evidence (by design)" "$LEDGER" verify --no-claims
"$LEDGER" log > "$IN/log.after"
cmp -s "$IN/log.before" "$IN/log.after" && ok "the evidence (log) is unchanged by it" || bad "log changed"

# ---- in-tree files ----
setup file-new || bad setup
f=runs/2-$id2/files/small2.txt
echo "small X" > "$IN/s.txt"; blob=$(git hash-object -w "$IN/s.txt")
tree=$(new_tree ledger git update-index --cacheinfo "100644,$blob,$f")
c=$(git commit-tree "$tree" -p ledger -m "ledger: run 4") && git update-ref refs/heads/ledger "$c"
detects "in-tree file changed in a new commit" "^error: chain: commit ${c:0:12}: changes runs/2-$id2 recorded earlier"
setup file-hist || bad setup
f=runs/2-$id2/files/small2.txt; blob=$(git hash-object -w "$IN/s.txt")
rewrite_from 1 git update-index --cacheinfo "100644,$blob,$f"
detects "in-tree file changed in history" "^error: file: run 2-$id2: files/small2.txt: content hashes to [0-9a-f]{12}, manifest says"
setup file-del || bad setup
f=runs/2-$id2/files/small2.txt
rewrite_from 1 git rm -q --cached "$f"
detects "in-tree file deleted" "^error: file: run 2-$id2: files/small2.txt: listed in_tree but absent"
setup file-extra || bad setup
blob=$(git hash-object -w "$IN/s.txt")
rewrite_from 1 git update-index --add --cacheinfo "100644,$blob,runs/2-$id2/files/extra.txt"
"$LEDGER" reindex >/dev/null 2>&1 # not just the index: the tree itself
detects "unlisted file added to a run" "^error: file: run 2-$id2: files/extra.txt: not listed in the manifest"
setup dir-extra || bad setup
blob=$(git hash-object -w "$IN/s.txt")
rewrite_from 0 git update-index --add --cacheinfo "100644,$blob,runs/3-$id3/notes/x.txt"
"$LEDGER" reindex >/dev/null 2>&1
detects "unlisted folder added to a run" "^error: file: run 3-$id3: notes/: not listed in the manifest"

# ---- index rows ----
setup idx-insert || bad setup
"$PYTHON3" -c 'import sqlite3; c=sqlite3.connect(".ledger/index.sqlite"); c.execute("INSERT INTO samples SELECT run_id, condition, unit, seed, seed_b, metric, 0.99 FROM samples LIMIT 1"); c.commit()'
detects "index row inserted" "^error: index: table samples, run ${id1}: row in the index, not in the ledger: .*0\.99"

# ---- report run ----
setup report || bad setup
mkdir -p templates && printf '# Report\n\nPlain text, no directives.\n' > templates/r.md
if "$LEDGER" report templates/r.md -o "$IN/out.md" --claims /dev/null >/dev/null 2>&1 || "$LEDGER" report templates/r.md -o "$IN/out.md" >/dev/null 2>"$IN/rep.err"; then
  rep=$(git ls-tree --name-only ledger runs/ | sort -t/ -k2 -n | tail -1)
  "$LEDGER" verify --no-claims >/dev/null 2>&1 && ok "report run verifies" || bad "report run does not verify"
  rf=$(git ls-tree -r --name-only ledger "$rep/files/" | grep 'out\.md$' | head -1)
  if [ -n "$rf" ]; then
    git cat-file blob "ledger:$rf" | sed 's/Plain/Forged/' > "$IN/forged.md"; blob=$(git hash-object -w "$IN/forged.md")
    rewrite_from 0 git update-index --cacheinfo "100644,$blob,$rf"
    detects "report run: rendered report modified" "^error: file: run ${rep#runs/}: files/out\.md: content hashes to"
  else
    bad "report run has no in-tree out.md"
  fi
else
  bad "'ledger report' did not render a plain template: $(head -1 "$IN/rep.err" 2>/dev/null)"
fi
# ---- an extra file in the root commit (rewritten history from the root) ----------------
mkdir "$TMP/rootx" && cd "$TMP/rootx" && git init -q . && "$LEDGER" init >/dev/null || bad "root ledger"
fmt=$(git rev-parse ledger:FORMAT) && extra=$(echo planted | git hash-object -w --stdin) &&
tree=$(printf '100644 blob %s\tFORMAT\n100644 blob %s\textra.txt\n' "$fmt" "$extra" | git mktree) &&
root=$(git commit-tree "$tree" -m "ledger: init") && git update-ref refs/heads/ledger "$root" && ok "root rewritten with an extra file" || bad "root rewrite"
expect_code 1 "verify flags the planted root file" "$LEDGER" verify --no-claims
grep_out "root commit's tree holds 2 entries, expected FORMAT alone" "names the root commit"
finish

#!/usr/bin/env bash
# t7010: paths from inputs never escape the store or the ledger tree.
# Output names with "..", absolute names, ".git", backslashes and control
# bytes are refused (exit 2, ledger unchanged); a manifest committed by
# someone else with an escaping name is reported by verify and refused by
# export (nothing written outside -o); symbolic links planted inside the store
# (as an object, as a fan-out directory, as tmp/) are never followed: verify
# names them as tampering, and writes neither read nor write through them.
. "$(dirname "$0")/lib-cli.sh"

nruns() { git rev-list --count refs/heads/ledger; }
mkdir repo && cd repo && git init -q . || { bad "git init"; finish; }
expect_ok "init (outputs in the store only)" "$LEDGER" init --small-output-max 0
echo hello > a.txt
before=$(nruns)
for name in ".." "../x" "a/../../x" "/etc/passwd" "./a" "a//b" ".git/config" "x/.GIT/y" 'back\slash' "$(printf 'tab\tname')"; do
  expect_code 2 "output name '$name' refused" "$LEDGER" record --study s "$name=a.txt"
done
grep_err "output name" "the error names the output name"
one_line_err "one line"
[ "$(nruns)" = "$before" ] && ok "ledger unchanged" || bad "a commit was made"
[ ! -e ../x ] && [ ! -e x ] && ok "nothing written outside" || bad "a file escaped"

# ---- a manifest with an escaping name, committed by plumbing --------------------
expect_ok "a normal run" "$LEDGER" record --study s a.txt
id=$(git ls-tree --name-only refs/heads/ledger runs/ | tail -1)
git show "refs/heads/ledger:$id/manifest.json" > m.json
"$PYTHON3" - m.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["outputs"][0]["name"] = "cells/../seed-1.safetensors"   # export would write DIR/../seed-1/
open(sys.argv[1], "w").write(json.dumps(m, sort_keys=True, separators=(",", ":")))
PY
sha=$(sha256sum m.json | cut -c1-64)
blob=$(git hash-object -w m.json)
prev=$(git show "refs/heads/ledger:$id/chain.json" | sha256sum | cut -c1-64)
chainblob=$(printf '{"format":2,"prev":"%s","run":"%s","seq":2}' "$prev" "$sha" | git hash-object -w --stdin)
GIT_INDEX_FILE="$TMP/i" git read-tree refs/heads/ledger &&
GIT_INDEX_FILE="$TMP/i" git update-index --add --cacheinfo "100644,$blob,runs/2-${sha:0:12}/manifest.json" &&
GIT_INDEX_FILE="$TMP/i" git update-index --add --cacheinfo "100644,$chainblob,runs/2-${sha:0:12}/chain.json" &&
tree=$(GIT_INDEX_FILE="$TMP/i" git write-tree) && commit=$(git commit-tree "$tree" -p refs/heads/ledger -m evil) &&
git update-ref refs/heads/ledger "$commit" && ok "escaping manifest committed" || bad "plumbing"
expect_code 1 "verify reports the manifest" "$LEDGER" verify --no-index --no-claims
grep_out "manifest: run 2-${sha:0:12}: .*outputs\[0\]\.name" "names the run and the bad output name"
mkdir -p out
must_fail "export of that run is refused" "$LEDGER" export "${sha:0:12}" -o out/x
[ ! -e out/seed-1 ] && [ ! -e seed-1 ] && ok "export wrote nothing outside -o" || bad "export escaped"
git update-ref refs/heads/ledger "$commit^" && ok "evil commit dropped"

# ---- links inside the store ------------------------------------------------------
obj_of() { "$PYTHON3" -c 'import hashlib,sys; h=hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest(); print(".ledger/store/objects/%s/%s" % (h[:2], h[2:]))' "$1"; }
obj=$(obj_of a.txt)
[ -f "$obj" ] && ok "a.txt is a store object" || bad "no object $obj"
expect_ok "verify before" "$LEDGER" verify --no-claims
# the object replaced by a link to an outside file with the SAME bytes: following it would pass
cp a.txt "$TMP/outside-copy"
chmod u+w "$obj" "$(dirname "$obj")" && rm -f "$obj" && ln -s "$TMP/outside-copy" "$obj"
expect_code 1 "an object that is a symbolic link fails verify" "$LEDGER" verify --no-claims
grep_out "object: .*symbolic link" "names it as a link"
expect_ok "recording the same bytes again" "$LEDGER" record --study s2 a.txt
[ -f "$obj" ] && [ ! -L "$obj" ] && ok "the link was replaced by the real object" || bad "link still there"
[ "$(cat "$TMP/outside-copy")" = hello ] && ok "the link's target is untouched" || bad "target modified"
expect_ok "verify passes again" "$LEDGER" verify --no-claims

# a fan-out directory replaced by a link to an outside directory
fan=$(dirname "$obj")
mkdir "$TMP/outside-dir" && cp -p "$obj" "$TMP/outside-dir/" && chmod -R u+w "$fan" && rm -rf "$fan" &&
  ln -s "$TMP/outside-dir" "$fan" && ok "fan-out directory replaced by a link"
expect_code 1 "verify refuses to read through it" "$LEDGER" verify --no-claims
grep_out "object: .*symbolic link" "names it"
# find bytes whose digest falls in that fan-out directory, then record them
prefix=$(basename "$fan")
"$PYTHON3" - "$prefix" <<'PY'
import hashlib, sys
i = 0
while True:
    b = ("payload %d\n" % i).encode()
    if hashlib.sha256(b).hexdigest().startswith(sys.argv[1]):
        open("same-fan.txt", "wb").write(b); break
    i += 1
PY
before=$(nruns)
expect_code 3 "a write into a linked fan-out directory fails" "$LEDGER" record --study s3 same-fan.txt
grep_err "does not write through links" "says why"
[ "$(ls "$TMP/outside-dir" | wc -l)" = 1 ] && ok "nothing written outside the store" || bad "wrote through the link"
[ "$(nruns)" = "$before" ] && ok "ledger unchanged" || bad "a commit was made"
rm "$fan" && mkdir "$fan" && cp -p "$TMP/outside-dir/"* "$fan/" && ok "fan-out restored"

# tmp/ replaced by a link
mv .ledger/store/tmp .ledger/store/tmp.real && mkdir "$TMP/outside-tmp" && ln -s "$TMP/outside-tmp" .ledger/store/tmp
echo other > b.txt
expect_code 3 "a store whose tmp/ is a link refuses to write" "$LEDGER" record --study s4 b.txt
grep_err "tmp: a symbolic link" "names tmp/"
[ -L .ledger/store/tmp ] && ok "the failed write left the link in place (removed nothing)" || bad "tmp link removed"
[ -z "$(ls "$TMP/outside-tmp")" ] && ok "nothing written outside" || bad "wrote through tmp link"
rm .ledger/store/tmp && mv .ledger/store/tmp.real .ledger/store/tmp
expect_ok "verify passes after the repairs" "$LEDGER" verify --no-claims
finish

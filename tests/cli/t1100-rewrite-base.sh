#!/usr/bin/env bash
# t1100: a consistent rewrite (a metric changed, manifest, ids, chain entries
# and commits recomputed by a script with git plumbing) passes plain verify on
# a fresh clone + init, but `verify --base origin/ledger` names the run.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q --bare origin.git
mkdir a && cd a && git init -q . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null || bad "init"
for i in 1 2 3; do
  echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$IN/r$i.json"
  echo "out $i" > "$IN/o$i.txt"
  "$LEDGER" record --study st --results "$IN/r$i.json" "$IN/o$i.txt" > "$IN/rec$i" || bad "record $i"
done
id2=$(awk '{print $4}' "$IN/rec2")
git push -q origin ledger 2>/dev/null && ok "ledger pushed to the protected remote" || bad "push"
git fetch -q origin && expect_ok "verify --base origin/ledger on the same ledger" "$LEDGER" verify --no-claims --base origin/ledger
grep_err "extends --base origin/ledger: 3 base run\(s\), 0 new" "says how many runs are new"

# the attacker rewrites history consistently and publishes it as the PR's ledger
git clone -q ../origin.git ../evil 2>/dev/null && cd ../evil && git fetch -q origin ledger:ledger &&
  "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 'm["results"]["conditions"][0]["cells"][0]["metrics"]["fvu"] = 0.9' > "$IN/new-ids" &&
  ok "rewrite with recomputed ids and chain" || bad "rewrite"
newid2=$(awk '$1==2{print $2}' "$IN/new-ids")
[ -n "$newid2" ] && [ "${newid2:0:12}" != "$id2" ] && ok "run 2 has a new id" || bad "new id"

# CI: a fresh clone of the protected remote, the PR's ledger as refs/heads/ledger
git clone -q ../origin.git ../ci 2>/dev/null && cd ../ci &&
  git fetch -q origin +refs/heads/ledger:refs/remotes/origin/ledger && git fetch -q ../evil +ledger:ledger &&
  "$LEDGER" init >/dev/null && ok "fresh clone + init on the rewritten ledger" || bad "ci setup"
expect_ok "plain verify cannot see a consistent rewrite (documented)" "$LEDGER" verify --no-claims
grep_err "without --base REF, a rewrite .* cannot be detected" "and says so"
"$LEDGER" show --json @2 > "$IN/show2" && grep -q '"fvu":0.9' "$IN/show2" && ok "the forged value is in the ledger" || bad "forged value"
expect_code 1 "verify --base origin/ledger catches the rewrite" "$LEDGER" verify --no-claims --base origin/ledger
grep_out "^error: base: run 2-$id2: seq 2 is run $id2 in the base origin/ledger but run ${newid2:0:12} here" "names the rewritten run"
grep_out "^error: base: run 3-.*: chain.json differs from the base origin/ledger" "and the re-chained run after it"
grep_out "^error: base: origin/ledger: its commit [0-9a-f]{12} is not a first-parent ancestor" "and the broken ancestry"
expect_code 1 "--json too" "$LEDGER" verify --no-claims --json --base origin/ledger
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] is False and r["base_checked"] and any(p["area"]=="base" for p in r["problems"]), r' "$TMP/.out" \
  && ok "json names base problems" || bad "json"
expect_code 2 "--base of an unknown ref: exit 2" "$LEDGER" verify --no-claims --base no/such
one_line_err "one line"

# an honest PR appends: verify --base passes and counts the new run
cd ../a && echo new > "$IN/o4.txt" && "$LEDGER" record --study st "$IN/o4.txt" >/dev/null
expect_ok "an appended run extends the base" "$LEDGER" verify --no-claims --base origin/ledger
grep_err "3 base run\(s\), 1 new" "1 new run"

# a PR that appends a copy of a base run (same id, new place) to count its evidence twice
d1=$(git ls-tree --name-only ledger runs/ | grep '^runs/1-'); id1=${d1#runs/1-}
full1=$(git cat-file blob "ledger:$d1/manifest.json" | sha256sum | cut -c1-64)
d4=$(git ls-tree --name-only ledger runs/ | grep '^runs/4-')
prev=$(git cat-file blob "ledger:$d4/chain.json" | sha256sum | cut -c1-64)
cb=$(printf '{"format":2,"prev":"%s","run":"%s","seq":5}' "$prev" "$full1" | git hash-object -w --stdin)
rm -f "$IN/idx" && GIT_INDEX_FILE="$IN/idx" git read-tree ledger && GIT_INDEX_FILE="$IN/idx" git read-tree --prefix="runs/5-$id1/" "ledger:$d1" &&
  GIT_INDEX_FILE="$IN/idx" git update-index --cacheinfo "100644,$cb,runs/5-$id1/chain.json" &&
  c=$(git commit-tree "$(GIT_INDEX_FILE="$IN/idx" git write-tree)" -p ledger -m "ledger: run 5") && git update-ref refs/heads/ledger "$c" &&
  ok "run 1 appended again as run 5" || bad "plumbing"
expect_code 1 "a duplicated run id is an error" "$LEDGER" verify --no-claims --no-index --base origin/ledger
grep_out "^error: chain: 5-$id1: run id $id1 is also run 1: the same run recorded twice" "names it"
finish

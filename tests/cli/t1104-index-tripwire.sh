#!/usr/bin/env bash
# t1104: the index remembers the tip it was built from. After the branch is
# rewritten under it (fetched, or rewritten locally), record, reindex, query
# and verify name the rewritten runs and repair nothing until
# `reindex --accept-rewrite`.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q . && "$LEDGER" init >/dev/null || bad "init"
for i in 1 2 3; do
  echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$IN/r$i.json"
  "$LEDGER" record --study st --results "$IN/r$i.json" > "$IN/rec$i" || bad "record $i"
done
id2=$(awk '{print $4}' "$IN/rec2"); id3=$(awk '{print $4}' "$IN/rec3")
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 'm["results"]["conditions"][0]["cells"][0]["metrics"]["fvu"] = 0.9' >/dev/null \
  && ok "branch rewritten consistently" || bad "rewrite"
tip=$(git rev-parse ledger)
expect_code 1 "record refuses" "$LEDGER" record --study st --results "$IN/r1.json"
grep_err "not on refs/heads/ledger: the branch was rewritten .*not in the ledger at that seq with that id: 2-$id2\)" "names the rewritten run (run 3 keeps its id)"
grep_err "reindex --accept-rewrite" "says how to accept"
one_line_err "in one line"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "the ledger is unchanged" || bad "record committed"
expect_code 1 "reindex refuses without --accept-rewrite" "$LEDGER" reindex
grep_err "2-$id2\)" "reindex names them too"
expect_code 1 "query refuses" "$LEDGER" query "SELECT count(*) FROM runs"
expect_code 1 "verify names it" "$LEDGER" verify --no-claims
grep_out "^error: index: rewrite: .*2-$id2\)" "verify names the runs"
expect_code 1 "still refused the second time (nothing was erased)" "$LEDGER" record --study st --results "$IN/r1.json"
git init -q --bare "$TMP/r.git"
expect_code 1 "sync refuses too (its own rebuild would erase the tripwire)" "$LEDGER" sync "$TMP/r.git"
expect_ok "reindex --accept-rewrite" "$LEDGER" reindex --accept-rewrite
grep_err "accepting a rewritten branch: .*2-$id2$" "and says what it accepted"
expect_ok "then record works" "$LEDGER" record --study st --results "$IN/r1.json"
expect_ok "and verify passes" "$LEDGER" verify --no-claims
finish

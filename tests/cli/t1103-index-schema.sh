#!/usr/bin/env bash
# t1103: a trigger, view, index or table planted in .ledger/index.sqlite is an
# integrity failure naming it; readers (query, check) and writers refuse an
# index holding a trigger or view; reindex rebuilds a clean one.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q . && "$LEDGER" init >/dev/null || bad "init"
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.1}}]}]}' > "$IN/r.json"
echo x > "$IN/x.txt"
"$LEDGER" record --study st --results "$IN/r.json" "$IN/x.txt" >/dev/null || bad "record"
plant() { "$PYTHON3" -c 'import sqlite3,sys; c=sqlite3.connect(".ledger/index.sqlite"); c.executescript(sys.argv[1]); c.commit()' "$1"; }

plant "CREATE TRIGGER forge AFTER INSERT ON samples BEGIN UPDATE samples SET value=0.99 WHERE rowid=new.rowid; END;"
expect_code 1 "a planted trigger: verify exit 1" "$LEDGER" verify --no-claims
grep_out "^error: index: schema, trigger forge: not created by ledger" "names the trigger"
expect_code 1 "query refuses the doctored index" "$LEDGER" query "SELECT count(*) FROM runs"
grep_err "trigger 'forge', which ledger never creates" "says why"
expect_code 1 "record refuses it (the trigger would rewrite its rows)" "$LEDGER" record --study st --results "$IN/r.json" "$IN/x.txt"
expect_ok "reindex rebuilds a clean index" "$LEDGER" reindex
expect_ok "then verify passes" "$LEDGER" verify --no-claims

plant "CREATE VIEW good AS SELECT run_id, 0.01 AS value FROM runs;"
expect_code 1 "a planted view: verify exit 1" "$LEDGER" verify --no-claims
grep_out "^error: index: schema, view good: not created by ledger" "names the view"
"$LEDGER" reindex >/dev/null 2>&1
plant "CREATE INDEX extra ON runs(kind); CREATE TABLE notes(x);"
expect_code 1 "a planted index and table: verify exit 1" "$LEDGER" verify --no-claims
grep_out "^error: index: schema, index extra: not created by ledger" "names the index"
grep_out "^error: index: schema, table notes: not created by ledger" "names the table"
finish

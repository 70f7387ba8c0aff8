#!/usr/bin/env bash
# t7110: a SIGKILL at each named point of a write (LEDGER_FAULT_KILL_AT,
# base/fault.h: test-only) leaves a ledger that verifies: before the
# commit nothing is visible; after the commit (index not yet updated) the run
# is there and readers catch the index up by themselves (no 'ledger reindex'
# needed); an interrupted reindex leaves the old index; gc --min-age 0 then
# removes every leftover and verify --require-artifacts passes.
. "$(dirname "$0")/lib-cli.sh"
require_test_hooks

IN=$TMP/in; mkdir -p "$IN"
head -c 2000000 /dev/urandom > "$IN/big.bin"
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.25}}]}]}' > "$IN/r.json"
idx_tip() { "$PYTHON3" -c 'import sqlite3; print(sqlite3.connect(".ledger/index.sqlite").execute("SELECT value FROM meta WHERE key=\"tip\"").fetchone()[0])'; }
leftovers() { { find .ledger/store/tmp .ledger/tmp -mindepth 1 -maxdepth 1 2>/dev/null; ls -d .ledger/*.tmp.* 2>/dev/null; } | wc -l; }
setup() {
  rm -rf "$TMP/$1" && mkdir "$TMP/$1" && cd "$TMP/$1" && git init -q . && "$LEDGER" init >/dev/null &&
    echo "first" > "$IN/first.txt" && "$LEDGER" record --study s "$IN/first.txt" >/dev/null
}

for point in store:tmp-written record:stored record:committed record:indexing; do
  setup "p-${point%%:*}-${point##*:}" || { bad "setup $point"; continue; }
  tip=$(git rev-parse ledger)
  echo "x $point" > "$IN/x.txt"
  LEDGER_FAULT_KILL_AT=$point "$LEDGER" record --study s --results "$IN/r.json" "$IN/big.bin" "$IN/x.txt" >"$IN/o" 2>"$IN/e"
  rc=$?
  [ "$rc" -eq 137 ] && ok "$point: killed" || bad "$point: exit $rc, expected 137 (SIGKILL)"
  case $point in
  record:committed|record:indexing)
    [ "$(git rev-parse ledger~1)" = "$tip" ] && ok "$point: the commit landed" || bad "$point: branch did not move by one"
    [ "$(idx_tip)" = "$tip" ] && ok "$point: the index still names the parent (the crash window)" || bad "$point: index tip $(idx_tip)"
    expect_ok "$point: query catches the index up" "$LEDGER" query "SELECT count(*) FROM runs"
    grep_out "^2$" "$point: both runs visible"
    [ "$(idx_tip)" = "$(git rev-parse ledger)" ] && ok "$point: index tip = branch tip" || bad "$point: index not caught up" ;;
  *)
    [ "$(git rev-parse ledger)" = "$tip" ] && ok "$point: branch unchanged" || bad "$point: branch moved"
    expect_ok "$point: log" "$LEDGER" log
    [ "$(wc -l < "$TMP/.out")" = 1 ] && ok "$point: no partial run visible" || bad "$point: log shows $(wc -l < "$TMP/.out") runs" ;;
  esac
  expect_ok "$point: verify" "$LEDGER" verify --no-claims
  expect_ok "$point: gc --min-age 0" "$LEDGER" gc --min-age 0
  [ "$(leftovers)" = 0 ] && ok "$point: no leftovers after gc" || bad "$point: leftovers remain"
  expect_ok "$point: verify --require-artifacts after gc" "$LEDGER" verify --require-artifacts --no-claims
done

# verify itself catches a lagging index up, with a warning (not an error)
setup verify-catchup || bad "setup"
echo y > "$IN/y.txt"
LEDGER_FAULT_KILL_AT=record:committed "$LEDGER" record --study s "$IN/y.txt" >/dev/null 2>&1
expect_ok "verify after a kill past the commit" "$LEDGER" verify --no-claims
grep_out "^warning: index: .*1 commit\(s\) behind the ledger branch .*rebuilt" "verify says it caught the index up"
expect_ok "verify again: nothing to repair" "$LEDGER" verify --no-claims
[ ! -s "$TMP/.out" ] && ok "no warning the second time" || bad "still warns: $(cat "$TMP/.out")"

# the next writer repairs it too (record's own index path)
setup record-catchup || bad "setup"
LEDGER_FAULT_KILL_AT=record:indexing "$LEDGER" record --study s "$IN/y.txt" >/dev/null 2>&1
expect_ok "record after a kill in the index transaction" "$LEDGER" record --study s "$IN/x.txt"
grep_out "^recorded run 3 " "it is run 3"
[ "$(idx_tip)" = "$(git rev-parse ledger)" ] && ok "index caught up by the writer" || bad "index tip behind"
expect_ok "verify" "$LEDGER" verify --no-claims
[ ! -s "$TMP/.out" ] && ok "nothing to report" || bad "verify printed: $(cat "$TMP/.out")"

# an index whose tip is not on the branch is not 'repaired' silently: verify names it
setup foreign-tip || bad "setup"
"$PYTHON3" -c 'import sqlite3; c=sqlite3.connect(".ledger/index.sqlite"); c.execute("UPDATE meta SET value=\"0123456789abcdef0123456789abcdef01234567\" WHERE key=\"tip\""); c.commit()'
expect_code 1 "index tip not on the branch: verify exit 1" "$LEDGER" verify --no-claims
grep_out "^error: index: rewrite: .*built from ledger commit 0123456789ab, which is not on refs/heads/ledger" "names the foreign tip"

# an interrupted reindex leaves the old index and a temp file for gc
setup reindex || bad "setup"
LEDGER_FAULT_KILL_AT=reindex:built "$LEDGER" reindex >/dev/null 2>&1
rc=$?; [ "$rc" -eq 137 ] && ok "reindex killed before its rename" || bad "reindex exit $rc"
ls .ledger/index.sqlite.tmp.* >/dev/null 2>&1 && ok "it left its temp index" || bad "no temp index left"
expect_ok "verify with the old index" "$LEDGER" verify --no-claims
expect_ok "gc --dry-run lists the temp index" "$LEDGER" gc --dry-run --min-age 0
grep_out "would remove .*index\.sqlite\.tmp\." "listed"
expect_ok "gc removes it" "$LEDGER" gc --min-age 0
[ "$(leftovers)" = 0 ] && ok "no leftovers" || bad "leftovers remain"

# a staging folder of a live `ledger run` is kept even with --min-age 0; a dead one goes
setup staging || bad "setup"
mkdir -p ".ledger/tmp/run-$$-AbCdEf" ".ledger/tmp/run-999999999-XyZwVu" && echo w > ".ledger/tmp/run-$$-AbCdEf/w.npy" && echo w > ".ledger/tmp/run-999999999-XyZwVu/w.npy"
expect_ok "gc --min-age 0 with a live and a dead staging folder" "$LEDGER" gc --min-age 0
[ -d ".ledger/tmp/run-$$-AbCdEf" ] && ok "live writer's staging folder kept" || bad "live staging folder removed"
[ ! -e ".ledger/tmp/run-999999999-XyZwVu" ] && ok "dead writer's staging folder removed" || bad "dead staging folder kept"
expect_ok "default min-age keeps young leftovers" "$LEDGER" gc
grep_out "removed 0 temp files" "young leftovers kept"
finish

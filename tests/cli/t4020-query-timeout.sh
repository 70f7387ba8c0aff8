#!/usr/bin/env bash
# t4020: `ledger query` runs under a time limit: an infinite recursive CTE is
# stopped with exit 2 and a one-line message within the limit (not killed by
# us), whether it returns rows (buffered TSV/JSON, streamed CSV) or not.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
echo x > f.txt && "$LEDGER" record --study s f.txt >/dev/null || { bad "record"; finish; }
INF="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c)"

# timed QUERY-ARGS...: runs the query under an outer 60 s guard; sets rc and secs
timed() { local t0 t1; t0=$(date +%s.%N); timeout 60 "$LEDGER" query "$@" >"$TMP/.out" 2>"$TMP/.err"; rc=$?; t1=$(date +%s.%N)
    secs=$("$PYTHON3" -c "print(round($t1 - $t0, 2))"); }
for fmt in "" --json --csv --jsonl; do
    timed $fmt --timeout 1 "$INF SELECT count(*) FROM c"
    [ "$rc" -eq 2 ] && ok "no rows, ${fmt:-tsv}: exit 2 (${secs}s)" || bad "no rows, ${fmt:-tsv}: exit $rc after ${secs}s"
    "$PYTHON3" -c "import sys; sys.exit(0 if $secs < 10 else 1)" && ok "stopped near the 1 s limit" || bad "took ${secs}s"
    grep_err "stopped after 1 s \(--timeout 1\)" "says the limit stopped it"
    one_line_err "one line"
    timed $fmt --timeout 1 "$INF SELECT x FROM c"
    [ "$rc" -eq 2 ] && ok "endless rows, ${fmt:-tsv}: exit 2 (${secs}s)" || bad "endless rows, ${fmt:-tsv}: exit $rc after ${secs}s"
done
expect_ok "a normal query is unaffected" "$LEDGER" query --timeout 5 "SELECT count(*) AS n FROM runs"
grep_out "^1$" "one run"
expect_code 2 "--timeout 0 refused" "$LEDGER" query --timeout 0 "SELECT 1"
expect_code 2 "--timeout junk refused" "$LEDGER" query --timeout abc "SELECT 1"
expect_ok "help names the default" "$LEDGER" query --help
grep_out "timeout SECONDS .*default 30" "default 30 s in --help"
finish

#!/usr/bin/env bash
# t7924: a FIFO that nobody writes to, planted where ledger reads a claims file
# or a template, must not hang the reader (lg_file_read opens with O_NONBLOCK:
# such a FIFO reads as empty); a pipe with a writer (<(cmd)) still reads whole;
# a claims file with no claims is checked (exit 0), not a crash.
. "$(dirname "$0")/lib-cli.sh"
expect_ok "init" "$LEDGER" init
mkdir -p claims
mkfifo claims/f.claims || { echo "skipped: mkfifo failed"; exit 77; }
timeout 20 "$LEDGER" check claims/f.claims >"$TMP/.out" 2>"$TMP/.err"
rc=$?
[ $rc -ne 124 ] && ok "check of a FIFO claims file returns (exit $rc)" || bad "check hung on a FIFO claims file"
timeout 20 "$LEDGER" verify --no-objects >"$TMP/.out" 2>"$TMP/.err"
rc=$?
[ $rc -ne 124 ] && ok "verify with a FIFO in claims/ returns (exit $rc)" || bad "verify hung on claims/f.claims"
rm -f claims/f.claims
mkfifo t.md
timeout 20 "$LEDGER" report --no-record t.md -o out/r.md >"$TMP/.out" 2>"$TMP/.err"
rc=$?
[ $rc -ne 124 ] && ok "report of a FIFO template returns (exit $rc)" || bad "report hung on a FIFO template"
rm -f t.md
# a claims file with no claims (it crashed 'check': fputs of a NULL rendering)
printf 'claims-language 1\n' >empty.claims
expect_ok "check of a claims file with no claims" "$LEDGER" check empty.claims
: >zero.claims
expect_ok "check of an empty claims file" "$LEDGER" check zero.claims
# a pipe with a writer is read as usual
expect_ok "a claims file through a pipe with a writer" "$LEDGER" check <(cat empty.claims)
finish

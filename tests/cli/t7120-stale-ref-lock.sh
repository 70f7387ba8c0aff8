#!/usr/bin/env bash
# t7120: a writer killed inside git's ref update leaves refs/heads/ledger.lock;
# the next writer (holding the ledger lock, so no other ledger writer is
# alive) waits briefly, removes it as stale, says so, and lands its run.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
echo a > a.txt
expect_ok "first record" "$LEDGER" record --study s a.txt
: > .git/refs/heads/ledger.lock
echo b > b.txt
expect_ok "record with a stale ref lock present" "$LEDGER" record --study s b.txt
grep_err "removed .*refs/heads/ledger.lock, left by an interrupted writer" "says it removed the stale lock"
[ ! -e .git/refs/heads/ledger.lock ] && ok "the stale lock is gone" || bad "lock still there"
[ "$(git rev-list --count ledger)" = 3 ] && ok "both runs landed" || bad "runs missing"
expect_ok "verify" "$LEDGER" verify
finish

#!/usr/bin/env bash
# t7907 (red team): the shared ledger is force-pushed without the newest run
# (whose 2 MB output lives only in the store: not in git), and a clone fetches
# it with plain git (git fetch origin +ledger:ledger). `ledger gc` then counted
# the dropped run's object as unreferenced and deleted its only copy (exit 0):
# a finished run lost. Now gc takes the index tripwire first: exit 1 naming the
# dropped run, nothing removed; only an explicit `reindex --accept-rewrite`
# lets gc treat the object as garbage.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q --bare origin.git
mkdir a && cd a && git init -q . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null &&
  head -c 2000000 /dev/urandom > "$IN/big1.bin" && head -c 2000000 /dev/urandom > "$IN/big2.bin" &&
  "$LEDGER" record --study st "$IN/big1.bin" >/dev/null && "$LEDGER" record --study st "$IN/big2.bin" >/dev/null &&
  git push -q origin ledger && ok "a: 2 runs with store-only outputs, pushed" || bad "setup"
nobj() { find .ledger/store/objects -type f | wc -l; }
[ "$(nobj)" -eq 2 ] && ok "2 objects in a's store" || bad "objects: $(nobj)"
# someone force-pushes the remote without run 2
git push -q -f origin ledger~1:refs/heads/ledger && ok "remote force-pushed without run 2" || bad "force-push"
git fetch -q origin +refs/heads/ledger:refs/heads/ledger && ok "a fetches it with plain git" || bad "fetch"
expect_code 1 "gc refuses" "$LEDGER" gc --min-age 0
grep_err "branch was rewritten .*2-[0-9a-f]{12}" "names the dropped run"
[ "$(nobj)" -eq 2 ] && ok "the dropped run's object is still there" || bad "object deleted: $(nobj) left"
expect_code 1 "gc --dry-run refuses too" "$LEDGER" gc --dry-run --min-age 0
# only an explicit acceptance of the new history makes it garbage
expect_ok "reindex --accept-rewrite" "$LEDGER" reindex --accept-rewrite
expect_ok "then gc removes it" "$LEDGER" gc --min-age 0
[ "$(nobj)" -eq 1 ] && ok "1 object left" || bad "objects: $(nobj)"
expect_ok "control: verify passes" "$LEDGER" verify --no-claims
finish

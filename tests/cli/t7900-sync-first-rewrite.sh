#!/usr/bin/env bash
# t7900 (red team): a clone that got the ledger with git (clone + init) and has
# never run `ledger sync` must still refuse a remote that was rewritten after
# it fetched: the anchor is its remote-tracking ref origin/ledger. Before the
# fix, sync exited 0, put the forged run 2 at seq 2 and re-appended the clone's
# own run 2 at the end: the clone's history was silently replaced (and pushed).
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
rec() { echo "$1" > "$IN/$1.txt"; "$LEDGER" record --study st "$IN/$1.txt" | awk '{print $4}'; }
git init -q --bare origin.git
mkdir a && cd a && git init -q . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null &&
  rec a1 >/dev/null && rec a2 >/dev/null && rec a3 >/dev/null && "$LEDGER" sync >/dev/null 2>&1 &&
  ok "a publishes 3 runs" || bad "setup a"
cd .. && git clone -q origin.git c 2>/dev/null && cd c && "$LEDGER" init >/dev/null && c1=$(rec c1) &&
  ok "c: git clone + ledger init + one local run (never synced)" || bad "setup c"
ctip=$(git rev-parse ledger); otip=$(git -C ../origin.git rev-parse ledger)
cd .. && git clone -q origin.git evil 2>/dev/null && cd evil && git fetch -q origin ledger:ledger &&
  "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 'm["study"] = "forged"' >/dev/null &&
  git push -q -f origin ledger 2>/dev/null && ok "remote rewritten (run 2 forged, chain recomputed, force-pushed)" ||
  bad "rewrite"
etip=$(git -C ../origin.git rev-parse ledger)
cd ../c
expect_code 1 "c: first sync refuses the rewritten remote" "$LEDGER" sync
grep_err "was rewritten since this clone last fetched it \(origin/ledger\) .*run 2-" "names the anchor and run 2"
[ "$(grep -vc "^ledger sync: \(fetching\|pushing\|rebuilding\)" "$TMP/.err")" -eq 1 ] && ok "one error line (besides progress)" || bad "error lines: $(cat "$TMP/.err")"
[ "$(git rev-parse ledger)" = "$ctip" ] && ok "c's ledger unchanged" || bad "c's ledger moved"
[ "$(git -C ../origin.git rev-parse ledger)" = "$etip" ] && ok "nothing pushed" || bad "c pushed"
expect_ok "c: verify still passes on its own ledger" "$LEDGER" verify --no-claims
# the fetch moved c's origin/ledger to the forged tip (libgit2 does that): a second sync must refuse too
expect_code 1 "c: a second sync refuses it again" "$LEDGER" sync
grep_err "was rewritten since .*run 2-" "names run 2 again"
[ "$(git rev-parse ledger)" = "$ctip" ] && ok "c's ledger still unchanged" || bad "c's ledger moved on the second sync"
# control: the same clone layout against an honest remote that only moved forward syncs fine
cd .. && git clone -q a/.git d 2>/dev/null && cd d && git remote set-url origin ../origin.git 2>/dev/null
cd ../a && git push -q -f ../origin.git "$otip:refs/heads/ledger" 2>/dev/null && rec a4 >/dev/null &&
  "$LEDGER" sync >/dev/null 2>&1 && ok "remote restored and moved forward by a" || bad "restore"
cd ../c && expect_ok "c: first sync against a remote that extends origin/ledger" "$LEDGER" sync
git ls-tree --name-only ledger runs/ | grep -q -- "-${c1:0:12}\$" && [ "$(git ls-tree --name-only ledger runs/ | wc -l)" -eq 5 ] &&
  ok "c's run re-chained after the remote's 4" || bad "c after honest sync: $(git ls-tree --name-only ledger runs/ | tr '\n' ' ')"
finish

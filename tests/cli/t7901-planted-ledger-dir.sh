#!/usr/bin/env bash
# t7901 (red team): a commit carries .ledger/ (git add -f: the exclude is
# local), with an index whose rows are forged and whose tip names the real
# ledger branch. Before the fix, a fresh CI clone's `ledger init` said
# "already initialised", kept the planted index, and `ledger query` showed the
# forged value. Now init refuses (exit 2, one line naming the tracked path,
# no store created); every command that opens the ledger (verify, query, log:
# the fast path declines) refuses it in a clone that pulled it.
. "$(dirname "$0")/lib-cli.sh"
git init -q --bare origin.git
mkdir w && cd w && git init -q -b main . && git remote add origin ../origin.git && echo hi > README &&
  git add README && git commit -qm init && git push -q origin main && "$LEDGER" init >/dev/null &&
  for i in 1 2; do
    echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$TMP/r$i.json"
    "$LEDGER" record --study st --results "$TMP/r$i.json" README >/dev/null || break
  done && git push -q origin ledger && ok "a ledger with 2 runs (fvu 0.1, 0.2) on origin" || bad "setup"
cd .. && git clone -q -b main origin.git dev 2>/dev/null && cd dev && git fetch -q origin ledger:ledger &&
  "$LEDGER" init >/dev/null && ok "dev: a clone initialised before the attack" || bad "dev"
# the attack: forge the index, commit it into main
cd ../w && "$PYTHON3" - <<'PY' && git add -f .ledger/index.sqlite .ledger/ledger.json && git commit -qm "docs" &&
import sqlite3; c = sqlite3.connect(".ledger/index.sqlite"); c.execute("UPDATE samples SET value = 0.9 WHERE seed = 2"); c.commit()
PY
  git push -q origin main && ok "attacker commits a forged .ledger/index.sqlite into main" || bad "attack"
ci() { cd "$TMP" && rm -rf ci && git clone -q -b main origin.git ci 2>/dev/null && cd ci &&
  git fetch -q origin +refs/heads/ledger:refs/remotes/origin/ledger && git branch -qf ledger origin/ledger; }
ci && [ -f .ledger/index.sqlite ] && ok "CI checkout: .ledger/index.sqlite came with the commit" || bad "ci clone"
expect_code 2 "CI: ledger init refuses the planted .ledger/" "$LEDGER" init
grep_err "\.ledger/index\.sqlite: tracked by git" "names the tracked path"
one_line_err "one line"
[ ! -e .ledger/store ] && ok "nothing created (no store)" || bad "init created .ledger/store"
expect_code 2 "CI: query refuses too (the fast path declines, the full path names it)" env LEDGER_FAST_READ=trace "$LEDGER" query "SELECT value FROM samples"
if grep -q 0.9 "$TMP/.out"; then bad "query showed the forged value"; else ok "the forged value is not shown"; fi
grep_err "read path: full .*may track \.ledger" "the fast path declined because of the tracked .ledger"
grep_err "\.ledger/index\.sqlite: tracked by git" "the full path names the tracked path"
expect_code 2 "CI: log refuses too" "$LEDGER" log
# a developer who pulls it: their own .ledger/ is overwritten by the checkout; verify names the cause
cd "$TMP/dev" && git pull -q --ff-only origin main 2>/dev/null && ok "dev pulls main" || bad "pull"
expect_code 2 "dev: verify fails" "$LEDGER" verify --no-claims
grep_err "\.ledger/index\.sqlite: tracked by git" "verify names the tracked .ledger/"
expect_code 2 "dev: query refuses the checked-out index" "$LEDGER" query "SELECT value FROM samples"
if grep -q 0.9 "$TMP/.out"; then bad "dev: query showed the forged value"; else ok "dev: the forged value is not shown"; fi
# variant: .ledger committed as a symbolic link to a folder of the attacker's
ci && git rm -q -r --cached .ledger && rm -rf .ledger && mkdir -p evil && ln -s evil .ledger && git add .ledger &&
  git commit -qm link && ok "variant: .ledger tracked as a link" || bad "link variant"
expect_code 2 "init refuses a tracked .ledger link" "$LEDGER" init
grep_err "/\.ledger: tracked by git" "names .ledger"
[ -z "$(ls evil)" ] && ok "nothing written through the link" || bad "wrote into evil/"
# control: without the planted files, init and verify pass
git rm -q --cached .ledger && rm .ledger && git commit -qm clean && expect_ok "control: init after 'git rm -r --cached .ledger'" "$LEDGER" init
expect_ok "control: verify passes" "$LEDGER" verify --no-claims
finish

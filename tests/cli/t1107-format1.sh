#!/usr/bin/env bash
# t1107: a format-1 ledger (seq/prev inside manifests) is refused clearly by
# every command (exit 2, "format 1 ledger"), also when a clone's init finds a
# format-1 origin/ledger; nothing is changed.
. "$(dirname "$0")/lib-cli.sh"
git init -q . && mkdir -p .ledger/store &&
  printf '{\n  "format": 1,\n  "small_output_max": 1048576\n}\n' > .ledger/ledger.json &&
  blob=$(printf 'ledger-format 1\n' | git hash-object -w --stdin) &&
  tree=$(printf '100644 blob %s\tFORMAT\n' "$blob" | git mktree) &&
  git update-ref refs/heads/ledger "$(git commit-tree "$tree" -m 'ledger: init')" && ok "a format-1 ledger" || bad "setup"
tip=$(git rev-parse ledger)
echo x > x.txt
for cmd in "log" "verify" "record --study s x.txt" "reindex" "init"; do
  expect_code 2 "ledger $cmd refuses" "$LEDGER" $cmd
  grep_err "format 1 ledger: .*format 2 only.*no migration" "ledger $cmd says format 1 and what to do"
done
[ "$(git rev-parse ledger)" = "$tip" ] && ok "branch unchanged" || bad "branch changed"
# a clone whose origin/ledger is format 1 (ledger.json is new, the branch is not)
git init -q --bare o.git && git push -q o.git ledger 2>/dev/null && git clone -q o.git c 2>/dev/null && cd c
expect_code 2 "init in a clone of a format-1 ledger refuses" "$LEDGER" init
grep_err "format 1 ledger: origin/ledger" "names origin/ledger"
finish

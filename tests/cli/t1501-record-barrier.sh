#!/usr/bin/env bash
# t1501: `record` writes its git objects without per-object fsyncs and makes them durable with ONE
# syncfs(2) barrier before the commit object and the ref are written (ledger/git_batch.c); and it
# finds the next seq from the names of runs/ (ledger_history.c: lgl_last_run_of_tree), where tree
# order ("1-", "10-", "11-", "2-" ...) is not seq order.
. "$(dirname "$0")/lib-cli.sh"
git init -q . && "$LEDGER" init >/dev/null || bad "init"
for i in $(seq 1 11); do
  echo "out $i" > "f$i.txt"
  "$LEDGER" record --study s "f$i.txt" >/dev/null || bad "record $i"
done
[ "$(git ls-tree --name-only ledger runs/ | sed 's|runs/||; s|-.*||' | tr '\n' ' ')" = "1 10 11 2 3 4 5 6 7 8 9 " ] \
  && ok "runs/ sorts by name, not by seq" || bad "tree order: $(git ls-tree --name-only ledger runs/ | tr '\n' ' ')"
echo "out 12" > f12.txt
expect_ok "record a 12th run" "$LEDGER" record --study s f12.txt
grep_out "^recorded run 12 " "it is seq 12 (the largest name-seq + 1)"
"$LEDGER" log --json | "$PYTHON3" -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if [x["seq"] for x in r] == list(range(1, 13)) else 1)' && ok "log: seq 1..12" || bad "log seqs"
expect_ok "verify passes (chain links, prev digests)" "$LEDGER" verify --no-claims

# The barrier: every git object of the run is linked/renamed into .git/objects before ONE syncfs,
# and the ref moves only after it (strace shows the order of the calls).
if command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null; then
  echo "out 13" > f13.txt
  strace -f -o "$TMP/st" -e trace=syncfs,fsync,rename,renameat,renameat2,link,linkat "$LEDGER" record --study s f13.txt >/dev/null 2>&1 \
    || bad "record under strace"
  n_sync=$(grep -c 'syncfs(' "$TMP/st")
  l_sync=$(grep -n 'syncfs(' "$TMP/st" | head -1 | cut -d: -f1)
  l_ref=$(grep -nE 'rename(at2?)?\(.*refs/heads/ledger\.lock", .*refs/heads/ledger"' "$TMP/st" | grep -v ' = -1' | head -1 | cut -d: -f1)
  n_before=$(head -n "${l_sync:-0}" "$TMP/st" | grep -cE 'link(at)?\(.*\.git/objects/tmp_object' )
  n_after=$(tail -n +"${l_sync:-1}" "$TMP/st" | grep -cE 'link(at)?\(.*\.git/objects/tmp_object' )
  [ "$n_sync" = 1 ] && ok "one syncfs" || bad "syncfs calls: $n_sync"
  [ -n "$l_ref" ] && [ -n "$l_sync" ] && [ "$l_sync" -lt "$l_ref" ] && ok "the ref moves after the barrier" \
    || bad "order: syncfs at line ${l_sync:-none}, ref at ${l_ref:-none}"
  [ "$n_before" -ge 4 ] && [ "$n_after" = 1 ] && ok "$n_before objects before the barrier, only the commit after it" \
    || bad "objects before/after the barrier: $n_before / $n_after"
  n_fsync=$(grep -cE '^[0-9]+ +f(data)?sync\(' "$TMP/st")
  [ "$n_fsync" -le 12 ] && ok "$n_fsync fsync/fdatasync calls (<= 12; with per-object fsyncs: 23)" || bad "$n_fsync fsync calls"
else
  skip "no usable strace: the order of syncfs and the ref update is not checked"
fi
expect_ok "verify passes" "$LEDGER" verify --no-claims
finish

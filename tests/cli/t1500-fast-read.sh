#!/usr/bin/env bash
# t1500: `log` and `query` read a CURRENT index without libgit2 (ledger/index_current.c).
# Each step runs the command twice, with the fast path allowed (LEDGER_FAST_READ=trace, which
# also says on stderr which path ran) and forbidden (LEDGER_FAST_READ=0, the full libgit2 path),
# and wants the same stdout and exit code; and it checks WHICH path ran: the fast one only when the
# index tip is the branch tip read from a plain loose ref / packed-refs, the full one (with its
# catch-up and rewrite tripwire) in every other state: index behind, tip off the branch, tip
# falsified, symbolic ref, duplicated or peeled packed-refs lines, include/worktree/extensions in
# the config, a linked worktree, GIT_DIR set.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q repo && cd repo && "$LEDGER" init >/dev/null || bad "init"
for i in 1 2 3 4 5 6 7 8 9 10 11; do
  echo "{\"conditions\":[{\"id\":\"c\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$IN/r$i.json"
  "$LEDGER" record --study "st$((i % 2))" --results "$IN/r$i.json" > "$IN/rec$i" || bad "record $i"
done

# both PATH DESC CMD...: fast-allowed and fast-forbidden runs agree (stdout, exit code), and the
# fast-allowed run took PATH ("index" or "full").
both() { local want=$1 d=$2 rca rcb; shift 2
  LEDGER_FAST_READ=trace "$@" >"$TMP/.a" 2>"$TMP/.ea"; rca=$?
  LEDGER_FAST_READ=0 "$@" >"$TMP/.b" 2>"$TMP/.eb"; rcb=$?
  if [ "$rca" != "$rcb" ] || ! cmp -s "$TMP/.a" "$TMP/.b"; then
    bad "$d: the fast and full paths differ (exit $rca vs $rcb)"; diff "$TMP/.a" "$TMP/.b" | head -5; cat "$TMP/.ea"
  elif ! grep -q "read path: $want" "$TMP/.ea"; then
    bad "$d: wanted the $want path"; cat "$TMP/.ea"
  else ok "$d (exit $rca, $want path, same output)"; fi
  cp "$TMP/.a" "$TMP/.out"; grep -v "read path:" "$TMP/.ea" > "$TMP/.err"; return 0; }

both index "log" "$LEDGER" log
[ "$(wc -l < "$TMP/.out")" = 11 ] && head -1 "$TMP/.out" | grep -q "^1	" && sed -n 11p "$TMP/.out" | grep -q "^11	" \
  && ok "log: 11 runs, seq order (1 .. 11, not 1, 10, 11, 2)" || bad "log order"; 
both index "log --json" "$LEDGER" log --json
both index "log --study st1 --kind record" "$LEDGER" log --study st1 --kind record
both index "log --study none (empty)" "$LEDGER" log --study none --json
both index "query" "$LEDGER" query "SELECT seq, run_id, study FROM runs ORDER BY seq"
both index "query --csv" "$LEDGER" query --csv "SELECT * FROM samples ORDER BY seed"
both index "query --jsonl" "$LEDGER" query --jsonl "SELECT * FROM runs"
both index "query: a write is refused the same way" "$LEDGER" query "DELETE FROM runs"
[ -s "$TMP/.err" ] && ok "  with a message" || bad "no message"
mkdir -p sub/dir && cd sub/dir && both index "from a subdirectory" "$LEDGER" log; cd "$TMP/repo"

# Not initialising libgit2 is the point: its init loads the TLS CA bundle (mbedTLS builds).
if command -v strace >/dev/null 2>&1 && strace -f -o "$TMP/st.full" -e trace=open,openat env LEDGER_FAST_READ=0 "$LEDGER" log >/dev/null 2>&1; then
  strace -f -o "$TMP/st.fast" -e trace=open,openat "$LEDGER" log >/dev/null 2>&1
  if grep -q '\.git/config' "$TMP/st.full"; then
    ! grep -q '\.git/HEAD\|ssl/certs\|\.gitconfig' "$TMP/st.fast" && grep -q index.sqlite "$TMP/st.fast" \
      && ok "fast path: no libgit2 repository open, no CA bundle (strace)" || bad "the fast path opened libgit2 files: $(grep -c . "$TMP/st.fast")"
  else skip "strace sees no .git/config open on the full path"; fi
else skip "no usable strace"; fi

# ---- states that must take the full path ------------------------------------------------------
cp .ledger/index.sqlite "$IN/index.old"
"$LEDGER" record --study st1 --results "$IN/r1.json" >/dev/null || bad "record 12"
cp .ledger/index.sqlite "$IN/index.cur"
cp "$IN/index.old" .ledger/index.sqlite && rm -f .ledger/index.sqlite-wal .ledger/index.sqlite-shm
LEDGER_FAST_READ=trace "$LEDGER" query "SELECT count(*) FROM runs" >"$TMP/.out" 2>"$TMP/.err"
grep -q "read path: full (the index tip is not the branch tip)" "$TMP/.err" && grep -qx 12 "$TMP/.out" \
  && ok "index one commit behind: full path, caught up (12 runs)" || { bad "behind index"; cat "$TMP/.out" "$TMP/.err"; }
both index "after the catch-up: fast again" "$LEDGER" query "SELECT count(*) FROM runs"

# a tip falsified to a commit that is not on the branch: the tripwire, exactly as before
"$PYTHON3" - .ledger/index.sqlite <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE meta SET value=? WHERE key='tip'", ("1" * 40,)); db.commit()
EOF
both full "falsified tip: query" "$LEDGER" query "SELECT count(*) FROM runs"
grep -q "^ledger query: .*not on refs/heads/ledger: the branch was rewritten" "$TMP/.err" && ok "  refused with the tripwire message" || bad "no tripwire"
both full "falsified tip: log reads the branch" "$LEDGER" log
cp "$IN/index.cur" .ledger/index.sqlite && rm -f .ledger/index.sqlite-wal .ledger/index.sqlite-shm

# the branch rewritten consistently (lib-rewrite.py recomputes every id): tip off the branch
git branch -f saved ledger
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 3 'm["results"]["conditions"][0]["cells"][0]["metrics"]["fvu"] = 0.99' >/dev/null \
  && ok "branch rewritten" || bad "rewrite"
both full "rewritten branch: query" "$LEDGER" query "SELECT value FROM samples WHERE seed = 3"
grep -q "the branch was rewritten" "$TMP/.err" && ok "  names the rewrite" || bad "rewrite not named"
both full "rewritten branch: log" "$LEDGER" log
git update-ref refs/heads/ledger saved && ok "branch restored"
both index "restored: fast again" "$LEDGER" log

# packed refs: the loose file goes, packed-refs holds the value
git pack-refs --all && [ ! -e .git/refs/heads/ledger ] && ok "refs packed" || bad "pack-refs"
both index "packed-refs: fast" "$LEDGER" log --json
cp .git/packed-refs "$IN/packed"
line=$(grep ' refs/heads/ledger$' .git/packed-refs)
printf '%s\n' "$line" >> .git/packed-refs
both full "packed-refs naming the ref twice: declined" "$LEDGER" log
cp "$IN/packed" .git/packed-refs
awk -v l="$line" '{print} $0==l {print "^0123456789012345678901234567890123456789"}' "$IN/packed" > .git/packed-refs
both full "packed-refs with a peeled line under the ref: declined" "$LEDGER" query "SELECT count(*) FROM runs"
cp "$IN/packed" .git/packed-refs
sed 's/^\([0-9a-f]*\) refs\/heads\/ledger$/\1 refs\/heads\/ledger\r/' "$IN/packed" > .git/packed-refs
both full "packed-refs with CRLF: declined" "$LEDGER" log
cp "$IN/packed" .git/packed-refs

# a loose ref file in a form git does not write, a symbolic ref
git rev-parse saved > .git/refs/heads/ledger && [ "$(git rev-parse ledger)" = "$(git rev-parse saved)" ] || bad "loose ref back"
both index "loose again: fast" "$LEDGER" log
printf '%s\r\n' "$(git rev-parse saved)" > .git/refs/heads/ledger
both full "loose ref with CRLF: declined" "$LEDGER" log
printf '%s\n' "$(git rev-parse saved)" > .git/refs/heads/ledger
git update-ref refs/heads/other "$(git rev-parse saved)" && git symbolic-ref refs/heads/ledger refs/heads/other \
  && both full "symbolic ref: declined" "$LEDGER" query "SELECT count(*) FROM runs"
git symbolic-ref --delete refs/heads/ledger 2>/dev/null || rm -f .git/refs/heads/ledger
git update-ref refs/heads/ledger "$(git rev-parse saved)"
both index "plain again: fast" "$LEDGER" log

# repository configs the narrow reader does not follow
cp .git/config "$IN/config"
git config include.path "$IN/none" && both full "config with include: declined" "$LEDGER" log
cp "$IN/config" .git/config
git config core.worktree "$TMP/repo" && both full "config with core.worktree: declined" "$LEDGER" log
cp "$IN/config" .git/config
git config extensions.noop true && both full "config with extensions: declined" "$LEDGER" log
cp "$IN/config" .git/config
GIT_DIR=.git both full "GIT_DIR set: declined" "$LEDGER" log
git worktree add -q "$TMP/wt" saved 2>/dev/null && cd "$TMP/wt" && both full "linked worktree: declined" "$LEDGER" log; cd "$TMP/repo"
both index "plain config: fast" "$LEDGER" log

# a runs row ledger never writes (NULL manifest_sha256) under an unchanged tip: log reads the branch
"$PYTHON3" - .ledger/index.sqlite <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE runs SET manifest_sha256=NULL WHERE seq=2"); db.commit()
EOF
LEDGER_FAST_READ=trace "$LEDGER" log >"$TMP/.out" 2>"$TMP/.err"; rc=$?
[ $rc = 0 ] && grep -q "read path: full (a runs row ledger does not write)" "$TMP/.err" && [ "$(wc -l < "$TMP/.out")" = 12 ] \
  && ok "odd runs row: log falls back to the branch, 12 runs" || { bad "odd row"; cat "$TMP/.err"; }
expect_code 1 "and verify names the edited row" "$LEDGER" verify --no-claims
finish

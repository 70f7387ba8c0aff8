#!/usr/bin/env bash
# t7300: concurrent writers on one ledger. 8 `ledger record` started while
# another process holds the writer lock: each says what it waits for (the
# lock file and the holder's pid), then all 8 land exactly once when it is
# released. Then 3 rounds of 8 free-running writers (records and two `ledger
# run` at once): every one lands, seq 1..N, a linear prev chain, the index
# agrees, verify ok. With a short --lock-timeout the loser fails with exit 3
# and a one-line message naming the lock and holder, leaving nothing behind.
. "$(dirname "$0")/lib-cli.sh"

IN=$TMP/in; mkdir -p "$IN"
mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies && cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 60, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2]}, "seeds": [1, 2]}
JSON
head -c 2000000 /dev/urandom > "$IN/large.bin"
# hold_lock SECONDS: hold .ledger/lock like a ledger writer (pid in the file); prints the holder's pid
hold_lock() {
  "$PYTHON3" -c '
import fcntl, os, sys, time
f = open(".ledger/lock", "a+"); fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(0); f.write("%d\n" % os.getpid()); f.flush()
open(sys.argv[2], "w").write("held\n")
time.sleep(float(sys.argv[1]))' "$1" "$IN/held" &
  HOLDER=$!
  while [ ! -e "$IN/held" ]; do sleep 0.05; done; rm -f "$IN/held"
}
check_ledger() { # check_ledger DESC N: N runs, seq 1..N, linear chain, index agrees, verify ok
  "$PYTHON3" - "$2" <<'PY' && ok "$1: $2 runs, seq 1..N, linear prev chain" || bad "$1: chain"
import hashlib, json, subprocess, sys
names = subprocess.run(["git", "ls-tree", "--name-only", "ledger", "runs/"], capture_output=True, text=True).stdout.split()
runs = sorted(names, key=lambda d: int(d.split("/")[1].split("-")[0]))
assert len(runs) == int(sys.argv[1]), (len(runs), sys.argv[1])
prev = None
for k, d in enumerate(runs, 1):
    raw = subprocess.run(["git", "cat-file", "blob", "ledger:%s/manifest.json" % d], capture_output=True).stdout
    ch = subprocess.run(["git", "cat-file", "blob", "ledger:%s/chain.json" % d], capture_output=True).stdout
    c = json.loads(ch)
    assert c["seq"] == k and c["prev"] == prev and c["run"] == hashlib.sha256(raw).hexdigest(), (d, c, prev)
    prev = hashlib.sha256(ch).hexdigest()
assert int(subprocess.run(["git", "rev-list", "--count", "--first-parent", "ledger"], capture_output=True, text=True).stdout) == len(runs) + 1
PY
  [ "$("$LEDGER" query "SELECT count(*) FROM runs" | tail -1)" = "$2" ] && ok "$1: index has $2 runs" || bad "$1: index count"
  "$LEDGER" verify --no-claims >/dev/null 2>"$IN/v.err" && ok "$1: verify ok" || { bad "$1: verify"; cat "$IN/v.err"; }
}

# 1. 8 writers wait for a held lock, say so, then all land
hold_lock 2
pids=""
for i in 1 2 3 4 5 6 7 8; do
  echo "w $i" > "$IN/w$i.txt"
  "$LEDGER" record --study conc "$IN/w$i.txt" "$IN/large.bin" >"$IN/w$i.out" 2>"$IN/w$i.err" & pids="$pids $!"
done
fails=0; for p in $pids; do wait "$p" || fails=$((fails+1)); done
wait "$HOLDER"
[ "$fails" = 0 ] && ok "8 waiting writers all succeed" || { bad "$fails writers failed"; cat "$IN"/w*.err; }
waited=$(grep -l "waiting for the ledger lock .*/\.ledger/lock (held by pid $HOLDER), up to 30 s" "$IN"/w*.err | wc -l)
[ "$waited" = 8 ] && ok "each says it waits for .ledger/lock held by pid $HOLDER" || { bad "$waited of 8 said what they wait for"; cat "$IN/w1.err"; }
cat "$IN"/w*.out | awk '{print $4}' | sort -u > "$IN/ids"
[ "$(wc -l < "$IN/ids")" = 8 ] && ok "8 distinct run ids reported" || bad "ids: $(wc -l < "$IN/ids")"
"$LEDGER" log > "$IN/log"
all=1; while read -r id; do [ "$(grep -c "	$id	" "$IN/log")" = 1 ] || all=0; done < "$IN/ids"
[ "$all" = 1 ] && ok "each reported run is in the log exactly once" || bad "a reported run is missing or doubled"
check_ledger "after 8 waiting writers" 8

# 2. free-running writers: 3 rounds of 6 records + 2 `ledger run` at once
n=8
for round in 1 2 3; do
  pids=""
  for i in 1 2 3 4 5 6; do
    echo "r$round $i" > "$IN/f$i.txt"
    "$LEDGER" record --study conc "$IN/f$i.txt" >/dev/null 2>"$IN/f$i.err" & pids="$pids $!"
  done
  for i in 1 2; do "$LEDGER" run -q --backend cpu studies/tiny.json >"$IN/run$i.out" 2>"$IN/run$i.err" & pids="$pids $!"; done
  fails=0; for p in $pids; do wait "$p" || fails=$((fails+1)); done
  n=$((n + 8))
  [ "$fails" = 0 ] && ok "round $round: 8 concurrent writers (2 of them ledger run) succeed" || { bad "round $round: $fails failed"; cat "$IN"/f*.err "$IN"/run*.err; }
done
grep -h "recorded: study tiny" "$IN"/run*.out >/dev/null && ok "ledger run reports its run" || bad "ledger run output"
check_ledger "after 3 rounds" "$n"

# 3. a short --lock-timeout: the loser fails with exit 3, one line, nothing left behind
tip=$(git rev-parse ledger)
hold_lock 4
expect_code 3 "ledger run with --lock-timeout 1 loses: exit 3" "$LEDGER" run -q --backend cpu --lock-timeout 1 studies/tiny.json
grep_err "waiting for the ledger lock .*\.ledger/lock \(held by pid $HOLDER\), up to 1 s" "says what it waits for"
grep_err "^ledger run: .*\.ledger/lock: timed out after 1 s waiting for the ledger lock \(held by pid $HOLDER\) \(its finished seed groups are kept in .*/\.ledger/resume/[0-9a-f]{64}: 'ledger run --resume studies/tiny.json' continues\)$" \
    "then fails naming lock and holder, and where the trained groups are kept"
[ "$(grep -vc "^ledger run: waiting for" "$TMP/.err")" = 1 ] && ok "the failure is one line" || { bad "failure lines"; cat "$TMP/.err"; }
expect_code 3 "ledger record with --lock-timeout 1 loses: exit 3" "$LEDGER" record --lock-timeout 1 --study s "$IN/w1.txt"
grep_err "timed out after 1 s waiting for the ledger lock \(held by pid $HOLDER\)" "record names the holder"
wait "$HOLDER"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "losers recorded nothing" || bad "branch moved"
[ -z "$(ls -A .ledger/tmp 2>/dev/null)" ] && ok "the losing run removed its staging folder" || bad "staging left: $(ls .ledger/tmp)"
expect_ok "the losing run resumes without training again" "$LEDGER" run -q --json --backend cpu --resume studies/tiny.json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["resumed"] and d["seed_groups_trained"] == 0 and d["seed_groups_resumed"] > 0, d' \
    "$TMP/.out" && ok "every seed group taken from the kept folder" || { bad "resume after lock timeout"; cat "$TMP/.out"; }
n=$((n + 1))
check_ledger "after the losers" "$n"
echo "# figures: 8 writers behind a held lock, 3 rounds x 8 concurrent writers (6 record + 2 run), $n runs"
finish

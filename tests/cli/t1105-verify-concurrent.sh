#!/usr/bin/env bash
# t1105: verify checks one snapshot (tip pinned, index read in one transaction
# taken under the writer lock): 50 verifies while 8 writers keep recording
# small files report no false tampering.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q . && "$LEDGER" init >/dev/null || bad "init"
NVER=${LEDGER_T1105_VERIFIES:-50}
writer() { local w=$1 i=0
  while [ ! -e "$IN/stop" ]; do
    i=$((i+1)); echo "{\"conditions\":[{\"id\":\"w$w\",\"cells\":[{\"seed\":$i,\"metrics\":{\"fvu\":0.$i}}]}]}" > "$IN/r$w.json"
    echo "w$w $i" > "$IN/f$w.txt"
    "$LEDGER" record --lock-timeout 60 --study "w$w" --results "$IN/r$w.json" "$IN/f$w.txt" >/dev/null 2>>"$IN/werr$w" || echo fail >> "$IN/wfail"
    sleep 0.5
  done; }
for w in 1 2 3 4 5 6 7 8; do writer $w & done
start=$(date +%s); false_fail=0; runs_seen=""
for v in $(seq 1 "$NVER"); do
  if ! timeout 120 "$LEDGER" verify --no-claims > "$IN/v.out" 2> "$IN/v.err"; then
    false_fail=$((false_fail+1)); echo "# verify $v failed:"; head -5 "$IN/v.out" "$IN/v.err"
  fi
  runs_seen="$runs_seen $(sed -n 's/.*verify: \([0-9]*\) runs.*/\1/p' "$IN/v.err")"
done
touch "$IN/stop"; wait
elapsed=$(( $(date +%s) - start ))
n=$(git ls-tree --name-only ledger runs/ | wc -l)
echo "# $NVER verifies in ${elapsed}s during 8 writers; runs seen by verify:$runs_seen; $n runs at the end"
[ "$false_fail" -eq 0 ] && ok "0 false failures in $NVER verifies" || bad "$false_fail of $NVER verifies failed"
first=$(echo $runs_seen | awk '{print $1}'); last=$(echo $runs_seen | awk '{print $NF}')
[ "$last" -gt "$first" ] && ok "writers landed runs while verify ran ($first -> $last)" || bad "no writes overlapped ($first -> $last)"
[ ! -e "$IN/wfail" ] && ok "every writer's record succeeded" || bad "$(wc -l < "$IN/wfail") records failed: $(cat "$IN"/werr* | head -3)"
expect_ok "final verify" "$LEDGER" verify --no-claims
finish

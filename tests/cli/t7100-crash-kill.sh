#!/usr/bin/env bash
# t7100: SIGKILL `ledger record` (several files, two of them large) and
# `ledger run` (a tiny study) at random points (tests/tools/crash_harness.c),
# verify after every kill, then: every run a command reported is present
# exactly once, seq 1..N with a linear chain, log/index/branch agree,
# `ledger gc --dry-run --min-age 0` lists the leftovers and removes nothing,
# `ledger gc --min-age 0` removes them (temp files, staging folders,
# unreferenced objects), and verify --require-artifacts still passes.
# Bounded: LEDGER_CRASH_ITERS (default 60) iterations or LEDGER_CRASH_SECONDS
# (default 25) s; the longer mode is LEDGER_CRASH_ITERS=2000 LEDGER_CRASH_SECONDS=900.
# The kill delays come from LEDGER_CRASH_SEED (default 46340, fixed, so a run is
# reproducible up to timing); LEDGER_CRASH_SEED=random draws one from the clock.
. "$(dirname "$0")/lib-cli.sh"

HARNESS=${LEDGER_BUILD:-}/crash_harness
[ -x "$HARNESS" ] || { echo "skip: $HARNESS not built (cmake --build ... --target crash_harness)"; exit 77; }
ITERS=${LEDGER_CRASH_ITERS:-60}
SECS=${LEDGER_CRASH_SECONDS:-25}
SEED=${LEDGER_CRASH_SEED:-46340}
[ "$SEED" = random ] && SEED=$(( $(date +%s) % 100000 + 1 ))
echo "# seed $SEED (rerun with LEDGER_CRASH_SEED=$SEED)"

IN=$TMP/in; mkdir -p "$IN"
mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 120, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2, 4]}, "seeds": [1, 2]}
JSON
head -c 12000000 /dev/urandom > "$IN/large1.bin"   # larger than small_output_max: store only
head -c 3000000 /dev/urandom > "$IN/large2.bin"
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.25}}]}]}' > "$IN/r.json"
for i in 1 2 3 4; do echo "small $i" > "$IN/small$i.txt"; done

"$HARNESS" "$LEDGER" "$ITERS" "$SECS" "$SEED" "$IN/iters.tsv" studies/tiny.json \
  "$IN/large1.bin" "$IN/large2.bin" "$IN/small1.txt" "$IN/small2.txt" "$IN/small3.txt" "$IN/small4.txt" >"$IN/h.summary" 2>"$IN/h.err"
rc=$?
cat "$IN/h.summary" "$IN/h.err"
[ "$rc" -eq 0 ] && ok "verify passed after every kill" || bad "harness failed (exit $rc)"
killed=$(awk -F'\t' '$4=="killed"' "$IN/iters.tsv" | wc -l)
[ "$killed" -ge 10 ] && ok "$killed processes killed mid-flight" || bad "only $killed kills landed"

# every run a command reported is present exactly once
"$LEDGER" log --json > "$IN/log.json" || bad "log"
awk -F'\t' '$6!="-"{print $6}' "$IN/iters.tsv" > "$IN/reported"
"$PYTHON3" - "$IN/log.json" "$IN/reported" <<'PY' && ok "every reported run present exactly once, seq 1..N, linear prev chain" || bad "reported runs vs log"
import json, sys
log = json.load(open(sys.argv[1]))
ids = [r["run_id"] for r in log]
assert [r["seq"] for r in log] == list(range(1, len(log) + 1)), "seq not 1..N"
rep = [l.strip() for l in open(sys.argv[2]) if l.strip()]
assert rep, "nothing reported"
for p in rep:
    hits = [i for i in ids if i.startswith(p)]
    assert len(hits) == 1, (p, len(hits))
print("# %d runs in the ledger, %d reported by their command" % (len(ids), len(rep)))
PY
n_log=$(grep -c '"seq"' "$IN/log.json")
n_branch=$(( $(git rev-list --count ledger) - 1 ))
n_index=$("$LEDGER" query "SELECT count(*) FROM runs" | tail -1)
[ "$n_log" = "$n_branch" ] && [ "$n_log" = "$n_index" ] && ok "log, branch and index agree ($n_log runs)" \
  || bad "log $n_log, branch $n_branch, index $n_index"
"$PYTHON3" - <<'PY' && ok "prev chain linear in the chain entries" || bad "prev chain"
import json, subprocess
out = subprocess.run(["git", "ls-tree", "--name-only", "ledger", "runs/"], capture_output=True, text=True).stdout.split()
runs = sorted(out, key=lambda d: int(d.split("/")[1].split("-")[0]))
prev = None
import hashlib
for k, d in enumerate(runs, 1):
    raw = subprocess.run(["git", "cat-file", "blob", "ledger:%s/manifest.json" % d], capture_output=True).stdout
    ch = subprocess.run(["git", "cat-file", "blob", "ledger:%s/chain.json" % d], capture_output=True).stdout
    c = json.loads(ch)
    assert c["seq"] == k and c["prev"] == prev and c["run"] == hashlib.sha256(raw).hexdigest(), (d, c, prev)
    prev = hashlib.sha256(ch).hexdigest()
PY

# gc: dry run lists and removes nothing; real gc removes every leftover
leftovers() { { find .ledger/store/tmp .ledger/tmp -mindepth 1 -maxdepth 1 2>/dev/null; ls -d .ledger/*.tmp.* 2>/dev/null; } | wc -l; }
before=$(leftovers)
objs_before=$(find .ledger/store/objects -type f | wc -l)
echo "# leftovers before gc: $before temp files/folders, $objs_before objects"
[ "$before" -gt 0 ] && ok "the kills left temp files or staging folders for gc ($before)" \
  || bad "no leftovers before gc: the kills did not reach a write (the gc checks below would prove nothing)"
expect_ok "gc --dry-run --min-age 0" "$LEDGER" gc --dry-run --min-age 0
cp "$TMP/.out" "$IN/gc-dry.out"
[ "$(leftovers)" = "$before" ] && [ "$(find .ledger/store/objects -type f | wc -l)" = "$objs_before" ] \
  && ok "dry run removed nothing" || bad "dry run removed something"
expect_ok "gc --min-age 0" "$LEDGER" gc --min-age 0
tail -1 "$TMP/.out"
[ "$(leftovers)" = 0 ] && ok "no temp files or staging folders left" || { bad "leftovers remain"; leftovers; }
n_dry=$(grep -c '^would remove /' "$IN/gc-dry.out")
n_gc=$(grep -c '^removing /' "$TMP/.out")
[ "$n_dry" -gt 0 ] && [ "$n_dry" = "$n_gc" ] && \
  cmp -s <(sed -n 's#^would remove /#/#p' "$IN/gc-dry.out" | sort) <(sed -n 's#^removing /#/#p' "$TMP/.out" | sort) \
  && ok "gc removed what the dry run listed ($n_gc paths)" || bad "dry run listed $n_dry paths, gc removed $n_gc (or other ones)"
"$LEDGER" query "SELECT DISTINCT sha256 FROM artifacts" | tail -n +2 | sort > "$IN/referenced"
find .ledger/store/objects -type f | awk -F/ '{print $(NF-1) $NF}' | sort > "$IN/stored"
cmp -s "$IN/referenced" "$IN/stored" && ok "store holds exactly the referenced objects ($(wc -l < "$IN/stored"))" \
  || { bad "store vs references"; diff "$IN/referenced" "$IN/stored" | head -5; }
expect_ok "verify --require-artifacts after gc" "$LEDGER" verify --require-artifacts --no-claims
finish

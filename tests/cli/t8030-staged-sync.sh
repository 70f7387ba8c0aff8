#!/usr/bin/env bash
# t8030: shards on machines with their own disks. Each shard stages on its
# "local disk" (--stage-dir), `ledger push --staged STUDY DIR` copies its
# complete groups to a shared directory remote (weight files re-hashed
# against their markers, the marker last), `ledger pull --staged` brings them
# into the gathering repository, and the gathered run has the digests of a
# one-process run. A group whose file changed on the remote is not pulled.
. "$(dirname "$0")/lib-cli.sh"

cat > "$TMP/s.json" <<'JSON'
{"format": 1, "name": "spread",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 24, "n_samples": 2000, "active_mean": 2, "seed": 4}},
 "sae": {"arch": "topk", "d_sae": 24},
 "train": {"steps": 100, "batch": 32, "lr": 0.004},
 "grid": {"k": [1, 2, 3, 4, 6, 8]}, "seeds": [1, 2, 3]}
JSON
outputs() { "$LEDGER" show --json "$1" | "$PYTHON3" -c '
import json, sys
for o in json.load(sys.stdin)["outputs"]: print(o["name"], o["sha256"])'; }

mkdir ref && cd ref && git init -q . && "$LEDGER" init >/dev/null && cp "$TMP/s.json" . || { bad "init ref"; finish; }
expect_ok "one-process run" "$LEDGER" run -q --backend cpu s.json
outputs @1 > "$TMP/ref.txt"
cd "$TMP"
mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null && cp "$TMP/s.json" . || { bad "init repo"; finish; }

expect_ok "shard 1/2 on node 1's disk" "$LEDGER" run -q --backend cpu --stage-dir "$TMP/node1" --shard 1/2 s.json
expect_ok "shard 2/2 on node 2's disk" "$LEDGER" run -q --backend cpu --stage-dir "$TMP/node2" --shard 2/2 s.json
expect_ok "push --dry-run" "$LEDGER" push --staged s.json --backend cpu --stage-dir "$TMP/node1" -n "$TMP/shared"
grep_out "3 staged seed groups of spread would be copied" "dry-run counts"
[ ! -e "$TMP/shared" ] && ok "dry-run wrote nothing" || bad "dry-run wrote"
expect_ok "node 1 pushes" "$LEDGER" push --staged s.json --backend cpu --stage-dir "$TMP/node1" "$TMP/shared"
grep_out "3 staged seed groups of spread copied, 0 already there" "3 groups pushed"
expect_ok "node 1 pushes again" "$LEDGER" push --staged s.json --backend cpu --stage-dir "$TMP/node1" --json "$TMP/shared"
grep_out '"groups_copied":[[:space:]]*0' "nothing copied twice"
grep_out '"groups_present":[[:space:]]*3' "3 already there"
expect_ok "node 2 pushes" "$LEDGER" push --staged s.json --backend cpu --stage-dir "$TMP/node2" "$TMP/shared"
grep_out "3 staged seed groups of spread copied" "node 2's 3 groups pushed"
ls "$TMP"/shared/shards/*/.resume/*/group-*.json >/dev/null 2>&1 && ok "remote holds markers" || bad "no markers remote"

# a weight file changed on the remote: that group is not pulled
w=$(ls "$TMP"/shared/shards/*/cells/k-4/seed-3.safetensors)
cp "$w" "$TMP/w.keep"
printf 'X' | dd of="$w" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_ok "pull with one changed remote file" "$LEDGER" pull --staged s.json --backend cpu "$TMP/shared"
grep_out "5 staged seed groups of spread copied" "5 intact groups pulled"
expect_code 1 "gather lacks the changed group" "$LEDGER" gather --backend cpu s.json
grep_err "1 of 6 seed groups are not staged.*group 4 \(condition k=4, seeds 1..3\)" "names it"
cp "$TMP/w.keep" "$w"
expect_ok "pull again" "$LEDGER" pull --staged s.json --backend cpu "$TMP/shared"
grep_out "1 staged seed group of spread copied, 5 already there" "the restored group pulled"
expect_ok "gather" "$LEDGER" gather --backend cpu s.json
outputs @1 > "$TMP/spread.txt"
if diff "$TMP/ref.txt" "$TMP/spread.txt" >/dev/null; then ok "all $(wc -l < "$TMP/ref.txt") digests equal the one-process run's"
else bad "digests differ"; diff "$TMP/ref.txt" "$TMP/spread.txt" | head; fi
# groups of another plan (another spec with the same conditions, seeds and
# data: byte-identical weights) are not taken: markers carry their plan digest
sed 's/"spread"/"spread-copy"/' s.json > s2.json
expect_ok "stage the other study" "$LEDGER" run -q --backend cpu --stage-dir "$TMP/other" --shard 1/1 s2.json
expect_ok "status --json" "$LEDGER" status --backend cpu --json s.json
mine=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["staging"])' "$TMP/.out")
mkdir -p "$mine" && cp -r "$TMP"/other/*/cells "$TMP"/other/*/.resume "$mine"/ && ok "copied its groups into this plan's folder" ||
    bad "copy"
expect_code 1 "gather refuses groups of another plan" "$LEDGER" gather --backend cpu s.json
grep_err "6 of 6 seed groups are not staged" "none of them counts"
[ "$("$LEDGER" log | wc -l)" -eq 1 ] && ok "ledger unchanged" || bad "a run was recorded"
expect_code 2 "pull --staged from a missing remote" "$LEDGER" pull --staged s.json --backend cpu "$TMP/nowhere"
finish

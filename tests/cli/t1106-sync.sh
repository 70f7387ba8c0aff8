#!/usr/bin/env bash
# t1106: two clones record runs in turn and `ledger sync` through one bare
# remote: both end with the same ledger holding every run once (same ids and
# signatures), and it verifies with --base at the remote's old tip.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
export LEDGER_KEY_DIR=$TMP/keys
"$LEDGER" key generate --name ci > "$IN/keys" || bad "key"
git init -q --bare origin.git
rec() { echo "$1" > "$IN/$1.txt"; "$LEDGER" record --study st --sign ci "$IN/$1.txt" | awk '{print $4}'; }
mkdir a && cd a && git init -q . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null || bad "init a"
a1=$(rec a1)
expect_ok "a: first sync publishes to an empty remote" "$LEDGER" sync
grep_out "1 run\(s\) in the shared ledger" "one run shared"
cd .. && git clone -q origin.git b 2>/dev/null && cd b && "$LEDGER" init >/dev/null && ok "b: clone + init" || bad "clone b"
base1=$(git -C ../origin.git rev-parse ledger)
b1=$(rec b1); b2=$(rec b2)
cd ../a && a2=$(rec a2) && expect_ok "a: sync (remote unchanged): fast-forward" "$LEDGER" sync
cd ../b && base2=$(git -C ../origin.git rev-parse ledger)
expect_ok "b: sync after a moved the remote: re-chains b's 2 runs" "$LEDGER" sync --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["rechained"]==2 and r["remote_runs"]==2 and r["runs"]==4 and r["pushed"], r' "$TMP/.out" \
  && ok "json: 2 re-chained after the remote's 2" || bad "sync json"
cd ../a && a3=$(rec a3) && expect_ok "a: sync receives b's runs and sends a3" "$LEDGER" sync
cd ../b && expect_ok "b: sync receives a3" "$LEDGER" sync
ta=$(git -C ../a rev-parse ledger); tb=$(git rev-parse ledger); to=$(git -C ../origin.git rev-parse ledger)
[ "$ta" = "$tb" ] && [ "$tb" = "$to" ] && ok "both clones and the remote have the same tip" || bad "tips differ: $ta $tb $to"
ids=$(git ls-tree --name-only ledger runs/ | sed 's|runs/[0-9]*-||' | sort | tr '\n' ' ')
want=$(printf '%s\n' "$a1" "$a2" "$a3" "$b1" "$b2" | sort | tr '\n' ' ')
[ "$ids" = "$want" ] && ok "every run once, with its id kept (5 runs)" || bad "runs: $ids / $want"
expect_ok "b: verify --require-signed (signatures survived re-chaining)" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/keys"
git fetch -q origin && expect_ok "verify --base at the remote's old tip" "$LEDGER" verify --no-claims --base "$base2"
expect_ok "and at the first tip" "$LEDGER" verify --no-claims --base "$base1"
cd ../a && expect_ok "a verifies too" "$LEDGER" verify --no-claims
expect_ok "a: sync with nothing new" "$LEDGER" sync --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["pushed"] is False and r["rechained"]==0 and r["runs"]==5, r' "$TMP/.out" \
  && ok "nothing pushed, nothing duplicated" || bad "idempotent"
expect_code 2 "sync with an unknown remote: exit 2" "$LEDGER" sync no-such-remote-xyz

# large outputs live only in the store: --store carries them (and is remembered)
head -c 3000000 /dev/urandom > "$IN/big.bin"
big=$("$LEDGER" record --study st "$IN/big.bin" | awk '{print $4}')
expect_ok "a: sync --store DIR" "$LEDGER" sync --store "$TMP/shared-store" --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["objects_copied"]>=1 and r["objects_corrupt"]==0, r' "$TMP/.out" \
  && ok "objects copied to the store remote" || bad "store copy"
cd ../b && expect_ok "b: plain sync receives the run" "$LEDGER" sync
expect_code 1 "b: but not its store-only object (verify --require-artifacts)" "$LEDGER" verify --no-claims --require-artifacts
grep_out "big.bin .*missing from the local store" "names the missing object"
expect_ok "b: sync --store receives the run and its object" "$LEDGER" sync --store "$TMP/shared-store"
expect_ok "b: verify --require-artifacts" "$LEDGER" verify --no-claims --require-artifacts

# someone rewrites the shared remote (run 2 changed, chain recomputed, force-pushed):
# a clone that synced before refuses to build on it, naming the run
git clone -q ../origin.git ../evil 2>/dev/null && cd ../evil && git fetch -q origin ledger:ledger &&
  "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 'm["study"] = "forged"' >/dev/null &&
  git push -q -f ../origin.git ledger 2>/dev/null && ok "remote rewritten and force-pushed" || bad "rewrite remote"
cd ../a && atip=$(git rev-parse ledger)
expect_code 1 "a: sync refuses a rewritten remote" "$LEDGER" sync
grep_err "was rewritten since this clone last synced with it .*run 2-" "names the rewritten run"
[ "$(git rev-parse ledger)" = "$atip" ] && ok "a's ledger unchanged" || bad "a changed"
finish

#!/usr/bin/env bash
# t5020: ledger push / pull of store objects through a directory remote, with the
# ledger branch carried by git; a corrupt remote object is refused.
. "$(dirname "$0")/lib-cli.sh"

mkdir a && cd a && git init -q . && "$LEDGER" init --small-output-max 10 >/dev/null || { bad "init"; finish; }
head -c 5000 /dev/urandom > big.bin && echo small > small.txt
expect_ok "record" "$LEDGER" record --study s big.bin small.txt
expect_ok "push --dry-run" "$LEDGER" push --dry-run "$TMP/remote"
grep_out "2 objects would be copied" "dry run counts"
[ ! -d "$TMP/remote/objects" ] && ok "dry run writes nothing" || bad "dry run wrote"
expect_ok "push" "$LEDGER" push "$TMP/remote"
grep_out "2 objects copied \(5006 bytes\), 0 already there" "push copies both"
expect_ok "push again" "$LEDGER" push --json "$TMP/remote"
grep_out '"copied": 0, "present": 2' "second push copies nothing"

cd "$TMP" && git clone -q a b 2>/dev/null && cd b && git fetch -q origin ledger:ledger 2>/dev/null
expect_ok "init in the clone" "$LEDGER" init
expect_code 1 "verify --require-artifacts before pull" "$LEDGER" verify --require-artifacts --no-claims
expect_ok "pull" "$LEDGER" pull "$TMP/remote"
expect_ok "verify --require-artifacts after pull" "$LEDGER" verify --require-artifacts --no-claims

# a corrupt object in the remote is refused
sha=$(sha256sum "$TMP/a/big.bin" | cut -c1-64)
obj="$TMP/remote/objects/${sha:0:2}/${sha:2}"
chmod u+w "$obj" && printf 'X' | dd of="$obj" bs=1 seek=10 conv=notrunc 2>/dev/null
# (c has a's ledger branch: pull copies only objects that a run of the local ledger names)
mkdir "$TMP/c" && cd "$TMP/c" && git init -q . && git fetch -q "$TMP/a" ledger:ledger && "$LEDGER" init >/dev/null
expect_code 1 "pull of a corrupt object exits 1" "$LEDGER" pull "$TMP/remote"
grep_err "corrupt" "says so"
[ ! -e ".ledger/store/objects/${sha:0:2}/${sha:2}" ] && ok "corrupt object not stored" || bad "corrupt object stored"
expect_code 2 "pull from a missing remote" "$LEDGER" pull "$TMP/nowhere"
finish

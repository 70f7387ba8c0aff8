#!/usr/bin/env bash
# t1101: a pull request that adds its own key to ledger-trusted-keys and signs
# runs with it does not pass `verify --require-signed`: the trust root comes
# from outside the work tree (--keys-ref of the protected main, --trusted-keys,
# $LEDGER_TRUSTED_KEYS, or by default the base's remote HEAD).
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
export LEDGER_KEY_DIR=$TMP/keys
git init -q --bare origin.git
mkdir a && cd a && git init -q -b main . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null || bad "init"
"$LEDGER" key generate --name ci > "$IN/ci.pub" && "$LEDGER" key trust "$(cat "$IN/ci.pub")" >/dev/null &&
  git add ledger-trusted-keys && git commit -qm "trust ci" && ok "main trusts key ci" || bad "keys"
echo one > "$IN/o1.txt" && "$LEDGER" record --study st --sign ci "$IN/o1.txt" >/dev/null || bad "record"
git push -q origin main ledger 2>/dev/null && git fetch -q origin && ok "pushed main and ledger" || bad "push"
expect_ok "signed by ci, root from origin/main" "$LEDGER" verify --no-claims --require-signed --keys-ref origin/main

# the PR: a new key, trusted in the same change, signing a new run
git checkout -q -b pr && "$LEDGER" key generate --name mallory > "$IN/m.pub" &&
  "$LEDGER" key trust "$(cat "$IN/m.pub")" >/dev/null && git commit -qam "trust mallory" || bad "pr"
echo two > "$IN/o2.txt" && "$LEDGER" record --study st --sign mallory "$IN/o2.txt" > "$IN/rec2" || bad "record 2"
id2=$(awk '{print $4}' "$IN/rec2")
expect_code 2 "--require-signed without a trust root: exit 2" "$LEDGER" verify --no-claims --require-signed
grep_err "needs a trust root from outside the change" "says how to give one"
one_line_err "in one line"
expect_code 1 "root from origin/main: the PR's key is not trusted" "$LEDGER" verify --no-claims --require-signed --keys-ref origin/main
grep_out "^error: signature: run 2-$id2: .*not in the trust root" "names the run"
grep_out "^warning: trust: ledger-trusted-keys: key added in the work tree, not in the trust root origin/main:ledger-trusted-keys: not honoured: ed25519 .* mallory" "reports the added key as not honoured"
expect_code 1 "default root with --base origin/ledger is origin/HEAD or origin/main" "$LEDGER" verify --no-claims --require-signed --base origin/ledger
grep_out "^error: signature: run 2-$id2: .*not in the trust root" "names the run again"
git show origin/main:ledger-trusted-keys > "$IN/ci-keys"
LEDGER_TRUSTED_KEYS=$IN/ci-keys expect_code 1 "LEDGER_TRUSTED_KEYS names a file CI controls" "$LEDGER" verify --no-claims --require-signed
expect_code 1 "--trusted-keys FILE" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/ci-keys"
expect_code 2 "--trusted-keys of a missing file: exit 2" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/nope"
cat "$IN/ci-keys" "$IN/m.pub" > "$IN/both"
expect_ok "a root that does trust mallory accepts the run" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/both"
finish

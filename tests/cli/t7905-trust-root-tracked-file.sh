#!/usr/bin/env bash
# t7905 (red team): a CI job that names the repository's own
# ledger-trusted-keys as its trust root (--trusted-keys ledger-trusted-keys or
# LEDGER_TRUSTED_KEYS=ledger-trusted-keys: the form the signing docs' examples
# use locally) trusted whatever key the pull request committed to that file.
# Now a trust-root file that the repository tracks is refused (exit 2, one line):
# the change under verification can edit it.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
export LEDGER_KEY_DIR=$TMP/keys
git init -q -b main . && "$LEDGER" init >/dev/null &&
  "$LEDGER" key generate --name ci > "$IN/ci.pub" && "$LEDGER" key trust "$(cat "$IN/ci.pub")" >/dev/null &&
  git add ledger-trusted-keys && git commit -qm "trust ci" && git branch protected && ok "main trusts key ci" || bad "keys"
# the pull request: mallory's key committed to the file, a run signed with it
git checkout -q -b pr && "$LEDGER" key generate --name mallory > "$IN/m.pub" &&
  "$LEDGER" key trust "$(cat "$IN/m.pub")" >/dev/null && git commit -qam "trust mallory" &&
  echo two > "$IN/o2.txt" && "$LEDGER" record --study st --sign mallory "$IN/o2.txt" >/dev/null &&
  ok "PR: mallory trusted in the committed file, a run signed by mallory" || bad "pr"
git show protected:ledger-trusted-keys > "$IN/ci-keys"
expect_code 2 "--trusted-keys ledger-trusted-keys (tracked): refused" "$LEDGER" verify --no-claims --require-signed --trusted-keys ledger-trusted-keys
grep_err "ledger-trusted-keys: a file this repository tracks" "says why"
one_line_err "one line"
expect_code 2 "by absolute path: refused" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$TMP/ledger-trusted-keys"
ln -s "$TMP/ledger-trusted-keys" "$IN/link-keys"
expect_code 2 "through a link from outside: refused" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/link-keys"
LEDGER_TRUSTED_KEYS=ledger-trusted-keys expect_code 2 "LEDGER_TRUSTED_KEYS=ledger-trusted-keys: refused" "$LEDGER" verify --no-claims --require-signed
grep_err "LEDGER_TRUSTED_KEYS ledger-trusted-keys: a file this repository tracks" "names the variable"
printf 'claims-language 1\nclaim c\n  says "x"\n  study st\n  sample a = cell.fvu\n  require mean(a) > 0\n  expect pass\nend\n' > "$IN/x.claims"
expect_code 2 "check --require-signed refuses it too" "$LEDGER" check --require-signed --trusted-keys ledger-trusted-keys "$IN/x.claims"
grep_err "ledger-trusted-keys: a file this repository tracks" "check says why"
expect_code 1 "control: check with a root CI controls evaluates (MISSING: mallory is not trusted)" "$LEDGER" check --require-signed --trusted-keys "$IN/ci-keys" "$IN/x.claims"
# controls: a root from outside the change
expect_code 1 "a copy CI controls: mallory's run is not trusted" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/ci-keys"
grep_out "^error: signature: run 1-[0-9a-f]{12}: .*not in the trust root" "names the run"
expect_code 1 "--keys-ref protected: same" "$LEDGER" verify --no-claims --require-signed --keys-ref protected
cp ledger-trusted-keys "$IN/pr-keys"
expect_ok "a file outside the repository is taken as given (it trusts mallory)" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/pr-keys"
finish

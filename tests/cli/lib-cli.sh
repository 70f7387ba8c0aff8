# lib-cli.sh - helpers for the CLI end-to-end tests (git's t/test-lib.sh, small).
# Each test script: `. "$(dirname "$0")/lib-cli.sh"`, then steps chained with &&
# or checked by the helpers; `finish` at the end sets the exit code.
set -u
: "${LEDGER:?LEDGER must point at the ledger binary}"
: "${LEDGER_SRC:?LEDGER_SRC must point at the source tree}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ledger-$TEST_NAME.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 3
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export HOME="$TMP" GIT_CONFIG_NOSYSTEM=1
FAILED=0
STEP=0

ok()   { STEP=$((STEP+1)); echo "ok $STEP - $*"; }
bad()  { STEP=$((STEP+1)); FAILED=$((FAILED+1)); echo "not ok $STEP - $*"; }
# expect_ok DESC CMD...: the command must exit 0
expect_ok() { local d=$1; shift; if "$@" >"$TMP/.out" 2>"$TMP/.err"; then ok "$d"; else bad "$d (exit $?)"; cat "$TMP/.err"; fi; }
# expect_code N DESC CMD...: the command must exit with status N
expect_code() { local n=$1 d=$2; shift 2; "$@" >"$TMP/.out" 2>"$TMP/.err"; local rc=$?
  if [ "$rc" -eq "$n" ]; then ok "$d"; else bad "$d (exit $rc, wanted $n)"; cat "$TMP/.err"; fi; }
# must_fail DESC CMD...: the command must exit non-zero (1, 2 or 3), not crash
must_fail() { local d=$1; shift; "$@" >"$TMP/.out" 2>"$TMP/.err"; local rc=$?
  if [ "$rc" -ge 1 ] && [ "$rc" -le 3 ]; then ok "$d"; else bad "$d (exit $rc)"; cat "$TMP/.err"; fi; }
# grep_out / grep_err PATTERN DESC: last command's stdout/stderr matches
grep_out() { if grep -qE -- "$1" "$TMP/.out"; then ok "$2"; else bad "$2 (stdout lacks /$1/)"; head -20 "$TMP/.out"; fi; }
grep_err() { if grep -qE -- "$1" "$TMP/.err"; then ok "$2"; else bad "$2 (stderr lacks /$1/)"; head -20 "$TMP/.err"; fi; }
one_line_err() { local n; n=$(wc -l <"$TMP/.err"); if [ "$n" -eq 1 ]; then ok "$1"; else bad "$1 (stderr has $n lines)"; cat "$TMP/.err"; fi; }
finish() { echo "$STEP passed-or-failed steps, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

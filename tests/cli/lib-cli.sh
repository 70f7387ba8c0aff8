# lib-cli.sh - helpers for the CLI end-to-end tests (git's t/test-lib.sh, small).
# Each test script: `. "$(dirname "$0")/lib-cli.sh"`, then steps chained with &&
# or checked by the helpers; `finish` at the end sets the exit code: 1 if a
# step failed or no step ran, 77 (ctest: skipped) if every step was skipped,
# else 0. tests/README.md describes the helpers and the conventions.
# LEDGER_TEST_KEEP=1 keeps the work folder of a failed test (LEDGER_TEST_KEEP=all:
# of every test) and prints its path.
set -u
: "${LEDGER:?LEDGER must point at the ledger binary}"
: "${LEDGER_SRC:?LEDGER_SRC must point at the source tree}"
PYTHON3=${PYTHON3:-/usr/bin/python3}
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ledger-$TEST_NAME.XXXXXX")
# cleanup: remove the work folder, or keep it (LEDGER_TEST_KEEP) and say where.
# A script that sets its own EXIT trap calls cleanup from it.
cleanup() { local rc=${1:-0}
  if [ "${LEDGER_TEST_KEEP:-0}" = all ] || { [ "${LEDGER_TEST_KEEP:-0}" = 1 ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
    echo "# kept the work folder: $TMP" >&2
  else
    rm -rf "$TMP"
  fi; }
trap 'cleanup $?' EXIT
cd "$TMP" || exit 3
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export HOME="$TMP" GIT_CONFIG_NOSYSTEM=1
FAILED=0
STEP=0
SKIPPED=0

ok()   { STEP=$((STEP+1)); echo "ok $STEP - $*"; }
bad()  { STEP=$((STEP+1)); FAILED=$((FAILED+1)); echo "not ok $STEP - $*"; }
# skip DESC: a step that could not run here (missing tool or privilege); counted
# as skipped, never as passed
skip() { STEP=$((STEP+1)); SKIPPED=$((SKIPPED+1)); echo "ok $STEP # skip $*"; }
# skip_all REASON: the whole test cannot run here: exit 77 (ctest: skipped)
skip_all() { echo "skip: $*"; exit 77; }
# have_test_hooks: the binary was built with LEDGER_TEST_HOOKS (the fault hooks
# LEDGER_FAULT_KILL_AT / LEDGER_FAULT_WRITE_AFTER_BYTES). ctest sets
# LEDGER_TEST_HOOKS; run by hand, the build's CMakeCache.txt says.
have_test_hooks() {
  case ${LEDGER_TEST_HOOKS:-} in
    1) return 0 ;; 0) return 1 ;;
  esac
  [ -n "${LEDGER_BUILD:-}" ] && [ -f "$LEDGER_BUILD/CMakeCache.txt" ] || return 0
  grep -q '^LEDGER_TEST_HOOKS:BOOL=ON' "$LEDGER_BUILD/CMakeCache.txt"; }
# require_test_hooks: skip the whole test (exit 77) in a build without the hooks
require_test_hooks() { have_test_hooks || skip_all "the ledger binary was built without LEDGER_TEST_HOOKS (test-only fault hooks)"; }
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
finish() { echo "$STEP steps, $FAILED failed, $SKIPPED skipped"
  if [ "$FAILED" -ne 0 ]; then exit 1; fi
  if [ "$STEP" -eq 0 ]; then echo "not ok - the test ran no step" >&2; exit 1; fi
  if [ "$SKIPPED" -eq "$STEP" ]; then echo "skip: every step was skipped"; exit 77; fi
  exit 0; }

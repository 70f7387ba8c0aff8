#!/usr/bin/env bash
# t4500: the command table (ledger/main.c) and its option parser: every
# command answers --help from its table; the commands that write (needs
# CLI_NEEDS_WRITE_LOCK) and only they take --lock-timeout, and a wait for the
# lock is reported once as "ledger CMD: ..."; bad options are refused before
# the ledger is opened; `key` picks its subcommands from a table, each with
# its own --help (repeatable options: tests/unit/test_opts.c).
. "$(dirname "$0")/lib-cli.sh"
export LEDGER_KEY_DIR="$TMP/keys"

writers="run gather record report export import reindex gc sync"
readers="init status submit log show diff check verify replay query table push pull key"

# ---- --help on every command, --lock-timeout only where the command writes ----------
expect_ok "global help" "$LEDGER" --help
listed=$(awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}' "$TMP/.out" | sort | tr '\n' ' ')
want=$(echo $writers $readers | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$listed" = "$want" ] && ok "the table lists exactly these commands" || bad "commands listed: '$listed', expected '$want'"
for c in $writers $readers; do
    "$LEDGER" "$c" --help >"$TMP/.out" 2>"$TMP/.err"; rc=$?
    if [ $rc -ne 0 ] || ! grep -q "^usage: ledger $c" "$TMP/.out"; then bad "$c --help (exit $rc)"; continue; fi
    case " $writers " in
    *" $c "*) grep -q -- "--lock-timeout SECONDS .*(default 30)" "$TMP/.out" && ok "$c --help lists --lock-timeout" ||
        bad "$c --help lacks --lock-timeout" ;;
    *) grep -q -- "--lock-timeout" "$TMP/.out" && bad "$c --help lists --lock-timeout (it does not write)" ||
        ok "$c --help: no --lock-timeout" ;;
    esac
done
expect_code 2 "a reader refuses --lock-timeout" "$LEDGER" log --lock-timeout 5
grep_err "^ledger log: unknown option '--lock-timeout'" "named as an unknown option"
expect_code 2 "--lock-timeout takes an integer" "$LEDGER" gc --lock-timeout=soon
grep_err "^ledger gc: --lock-timeout: 'soon' is not an integer" "says so"

# ---- input checked before the ledger is opened (outside any ledger here) -------------
mkdir outside && cd outside
expect_code 2 "bad option outside a ledger: usage error, not 'no ledger'" "$LEDGER" record --nosuch
grep_err "^ledger record: unknown option '--nosuch'" "the option is named"
expect_code 2 "missing --study outside a ledger" "$LEDGER" record x.txt
grep_err "^ledger record: --study NAME is required" "the required option is named"
expect_code 2 "export without -o outside a ledger" "$LEDGER" export abc
grep_err "^ledger export: -o DIR is required" "the required option is named"
cd ..

# ---- key: a subcommand table, --help per subcommand --------------------------------
for sub in generate list trust; do
    expect_ok "key $sub --help" "$LEDGER" key "$sub" --help
    grep_out "^usage: ledger key $sub" "key $sub prints its own usage"
done
grep -q -- "--trusted" "$TMP/.out" && bad "trust's help lists list's --trusted" || ok "trust's help has only its options"
expect_ok "ledger help key" "$LEDGER" help key
grep_out "^usage: ledger key \[--json\] generate" "the command's help lists the subcommands"
expect_code 2 "unknown subcommand" "$LEDGER" key nosuch
grep_err "^ledger key: usage: " "usage on stderr"
expect_code 2 "no subcommand" "$LEDGER" key
expect_code 2 "list takes no argument" "$LEDGER" key list extra
expect_code 2 "an option of another subcommand is refused" "$LEDGER" key generate --trusted
expect_ok "key --json generate --name a (--json before the subcommand)" "$LEDGER" key --json generate --name a
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["name"] == "a"' "$TMP/.out" &&
    ok "one JSON object" || bad "key --json generate output"
expect_ok "key list --json (--json after the subcommand)" "$LEDGER" key list --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [k["name"] for k in d] == ["a"]' "$TMP/.out" &&
    ok "a JSON array of the local keys" || bad "key list --json output"

# ---- one lock-notify, in the command's name ----------------------------------------
mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
echo x > x.txt
expect_ok "record" "$LEDGER" record --study s x.txt
flock .ledger/lock sleep 4 &
holder=$!
sleep 0.5
tip=$(git rev-parse ledger)
expect_code 3 "gc times out on a held lock" "$LEDGER" gc --lock-timeout 1
grep_err "^ledger gc: .*waiting for the ledger lock" "the wait is reported as 'ledger gc: ...'"
n=$(grep -c "^ledger gc: waiting for the ledger lock" "$TMP/.err"); [ "$n" -eq 1 ] && ok "reported once" || bad "reported $n times"
expect_code 3 "record times out too" "$LEDGER" record --lock-timeout=1 --study s x.txt
grep_err "^ledger record: .*waiting for the ledger lock" "in record's name"
wait $holder
[ "$(git rev-parse ledger)" = "$tip" ] && ok "nothing recorded while locked" || bad "the ledger moved"

finish

#!/usr/bin/env bash
# t4010: tidy results. `ledger query --csv/--jsonl` (header row, RFC 4180
# quoting, read back by Python's csv module), `ledger table RUN` (one row per
# cell / pair / seed, params and metrics as columns, numeric order k=4 before
# k=16) in TSV, CSV and JSON, and the snippets of ledger/USAGE.md that load the CSV
# (pandas when installed, else the csv-module version beside it).
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
cat > studies/t.json <<'JSON'
{"format": 1, "name": "tidy",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 600, "active_mean": 2, "seed": 4}},
 "sae": {"arch": "topk", "d_sae": 16},
 "train": {"steps": 20, "batch": 32, "lr": 0.004},
 "grid": {"k": [16, 4, 2]}, "seeds": [1, 2, 3]}
JSON
expect_ok "run" "$LEDGER" run -q --backend cpu studies/t.json

# ---- query --csv / --jsonl ---------------------------------------------------
expect_ok "query --csv" "$LEDGER" query --csv "SELECT 'a,b' AS x, 1.5 AS y, NULL AS z, 'say \"hi\"' AS w, 'l1
l2' AS v, 7 AS n"
"$PYTHON3" -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows == [["x", "y", "z", "w", "v", "n"], ["a,b", "1.5", "", "say \"hi\"", "l1\nl2", "7"]], rows' "$TMP/.out" &&
    ok "csv quoting reads back exactly" || { bad "csv quoting"; cat "$TMP/.out"; }
expect_ok "query --jsonl" "$LEDGER" query --jsonl "SELECT condition, seed, value FROM samples WHERE metric='fvu' AND unit='cell' ORDER BY condition, seed"
"$PYTHON3" -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines]
assert len(rows) == 18 and set(rows[0]) == {"condition", "seed", "value"}, rows[:2]
assert all(isinstance(r["value"], float) and isinstance(r["seed"], int) for r in rows)' "$TMP/.out" &&
    ok "jsonl: one object per line, typed values" || bad "jsonl"
expect_code 2 "--csv and --json together" "$LEDGER" query --csv --json "SELECT 1"
expect_code 2 "--csv still refuses writes" "$LEDGER" query --csv "DELETE FROM runs"
grep_err "read-only" "says read-only"

# ---- table -----------------------------------------------------------------------
expect_ok "table (cells, tsv)" "$LEDGER" table @1
head -1 "$TMP/.out" | grep -q "^condition	seed	status	.*	k	.*	fvu" && ok "header: condition, seed, status, params, metrics" ||
    { bad "table header"; head -1 "$TMP/.out"; }
[ "$(($(wc -l < "$TMP/.out") - 1))" -eq 18 ] && ok "18 cell rows" || bad "cell rows: $(wc -l < "$TMP/.out")"
expect_ok "table --csv" "$LEDGER" table --csv @1
cp "$TMP/.out" cells.csv
"$PYTHON3" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
trained = [(int(r["k"]), int(r["seed"])) for r in rows if r["control"] == "trained"]
assert trained == sorted(trained) and [k for k, _ in trained][::3] == [2, 4, 16], trained
assert all(r["final_loss"] for r in rows if r["control"] == "trained")
assert all(r["final_loss"] == "" for r in rows if r["control"] == "random")' cells.csv &&
    ok "rows in numeric order (k=2, 4, 16), then seed; missing metric empty" || bad "table order"
expect_ok "table --unit pair --csv" "$LEDGER" table --unit pair --csv @1
cp "$TMP/.out" pairs.csv
head -1 pairs.csv | grep -q "^condition,seed_a,seed_b," && grep -q ",mmcs," pairs.csv && ok "pair columns" || bad "pair columns"
[ "$(($(wc -l < pairs.csv) - 1))" -eq 18 ] && ok "18 pair rows (6 conditions x 3 pairs)" || bad "pair rows"
expect_ok "table --unit seed --json" "$LEDGER" table --unit seed --json @1
"$PYTHON3" -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 18 and all("mmcs_mean" in r and "seed" in r and "k" in r for r in rows)
assert isinstance(rows[0]["k"], int)' "$TMP/.out" && ok "seed rows as JSON with typed params" || bad "table --json"
# the table agrees with the index
"$LEDGER" query --csv "SELECT avg(value) AS m FROM samples WHERE unit='pair' AND metric='mmcs' AND condition='k=4'" > q.csv
"$PYTHON3" -c '
import csv, sys
q = float(list(csv.DictReader(open(sys.argv[1])))[0]["m"])
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["condition"] == "k=4"]
t = sum(float(r["mmcs"]) for r in rows) / len(rows)
assert abs(q - t) < 1e-12, (q, t)' q.csv pairs.csv && ok "table and query agree on k=4 mean mmcs" || bad "table vs query"
expect_code 2 "bad --unit" "$LEDGER" table --unit layer @1
one_line_err "one-line error"
expect_code 2 "unknown run" "$LEDGER" table @7

# ---- the snippets of ledger/USAGE.md ---------------------------------------------------
# the indented block that starts with "import pandas as pd" (and the csv-module
# block that starts with "import csv"), run on pairs.csv
snippet() { awk -v start="$1" 'index($0, "    " start) == 1 {on=1} on && /^$/ {exit} on {print substr($0, 5)}' "$LEDGER_SRC/ledger/USAGE.md"; }
snippet "import pandas as pd" > pandas_snippet.py
snippet "import csv, statistics" > csv_snippet.py
[ -s pandas_snippet.py ] && [ -s csv_snippet.py ] && ok "ledger/USAGE.md has both snippets" || bad "ledger/USAGE.md snippets missing"
if "$PYTHON3" -c "import pandas" 2>/dev/null; then
    expect_ok "pandas snippet runs" "$PYTHON3" pandas_snippet.py
    grep_out "trained" "pandas snippet prints the conditions"
else
    ok "pandas not installed: the csv-module snippet stands in"
fi
expect_ok "csv-module snippet runs" "$PYTHON3" csv_snippet.py
grep_out "trained 4 " "csv snippet prints trained k=4"
finish

#!/usr/bin/env bash
# t6010: parameter values are shown as a reader wrote them. A grid value such
# as 0.3 is stored in the index as %.17g text (0.29999999999999999, which
# filters match on); tables, plot ticks and legends show the shortest text
# that reads back to the same double (0.3), and filters still select by it. A string parameter that reads as a number ("007") and positional numbers (100000, not 1e+05) stay as written.
. "$(dirname "$0")/lib-cli.sh"
cat >results.json <<'JSON'
{"format": 1, "study": "w", "conditions": [
 {"id": "weight=0.3", "params": {"weight": 0.3, "lr": 0.003, "steps": 100000, "tag": "007"},
  "cells": [{"seed": 1, "metrics": {"ev": 0.5}}, {"seed": 2, "metrics": {"ev": 0.7}}]},
 {"id": "weight=1", "params": {"weight": 1, "lr": 0.003, "steps": 100000, "tag": "007"},
  "cells": [{"seed": 1, "metrics": {"ev": 0.25}}, {"seed": 2, "metrics": {"ev": 0.75}}]}]}
JSON
echo '{"name": "w"}' >w.json
cat >t.md <<'EOF2'
# W

{{table w cell.ev by weight, lr | mean n | %.2f}}

{{table w cell.ev where weight=0.3 by lr | mean | %.2f}}

{{table w cell.ev by steps | n}}

{{table w cell.ev by tag | n}}

{{plot w mmcs-vs-param weight | file=w.svg metric=cell.ev series=lr}}

{{plot w scatter cell.ev cell.ev | file=sc.svg series=weight}}
EOF2
expect_ok "init" "$LEDGER" init
expect_ok "record" "$LEDGER" record --study w --results results.json --spec w.json results.json=results.json
expect_ok "report renders" "$LEDGER" report --no-record t.md -o out/r.md
grep -q '^| 0.3 | 0.003 | 0.60 | 2 |$' out/r.md && ok "table shows 0.3 and 0.003" || bad "table: $(grep '^|' out/r.md | head -4)"
grep -q '^| 1 | 0.003 | 0.50 | 2 |$' out/r.md && ok "integers stay integers" || bad "table: $(grep '^|' out/r.md | head -4)"
grep -q '^| 100000 | 4 |$' out/r.md && ok "100000 stays positional (not 1e+05)" || bad "steps table: $(grep '^| 1[0e]' out/r.md | tr '\n' ' ')"
grep -q '^| 007 | 4 |$' out/r.md && ok "a string parameter \"007\" is shown as written" || bad "tag table: $(grep '^| 0*7 ' out/r.md)"
grep -q '0.29999999999999999\|0.0030000000000000001' out/r.md && bad "long form shown" || ok "no %.17g text in the report"
grep -q '^| 0.003 | 0.60 |$' out/r.md && ok "a filter on 0.3 still selects" || bad "filtered table: $(grep '^|' out/r.md)"
svg=out/w.svg
[ -n "$svg" ] && grep -q '>0.3<' "$svg" && ! grep -q '0.29999999999999999' "$svg" && ok "plot tick shows 0.3" || bad "plot: $svg"
[ -s out/sc.svg ] && grep -q '>0.3<' out/sc.svg && ! grep -q '0.29999999999999999' out/sc.svg &&
    ok "scatter legend shows 0.3" || bad "scatter: $(grep -o '>[0-9.]*<' out/sc.svg | tr '\n' ' ')"
finish

#!/usr/bin/env bash
# t2023: claims over a grid. `by k` (or `for each k`) expands a claim into one
# verdict per value of k, all reported in text, --json, --junit and report;
# with `correct holm` the expansion's p-values are Holm-corrected together. A
# filter value or a study name that matches nothing lists the valid ones.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims templates
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 120, "batch": 64, "lr": 0.005},
 "grid": {"k": [2, 4, 8]}, "seeds": [1, 2, 3]}
JSON
cat > claims/grid.claims <<'CLAIMS'
claim beats-random
  says "trained SAEs agree across seeds more than random-init ones, at every k"
  study tiny
  by k
  sample trained = pair.mmcs where control=trained
  sample random = pair.mmcs where control=random
  require mean(trained) - mean(random) > 0
  require welch(trained, random, alternative=greater).p < 0.05
  correct holm
end
claim ev-each
  says "explained variance above 0 for each k"
  study tiny
  for each k
  sample ev = cell.explained_variance where control=trained
  require min(ev) > 0
end
CLAIMS
expect_ok "run" "$LEDGER" run -q studies/tiny.json
expect_ok "check" "$LEDGER" check --junit junit.xml
for k in 2 4 8; do grep_out "^PASS +beats-random\[k=$k\]" "one verdict for k=$k"; done
for k in 2 4 8; do grep_out "^PASS +ev-each\[k=$k\]" "for each: k=$k"; done
[ "$(grep -c '^PASS' "$TMP/.out")" = 6 ] && ok "6 verdicts in all" || bad "verdict count $(grep -c '^PASS' "$TMP/.out")"
"$PYTHON3" -c 'import xml.etree.ElementTree as E,sys; n=[t.get("name") for t in E.parse(sys.argv[1]).getroot().iter("testcase")]; assert n==["beats-random[k=2]","beats-random[k=4]","beats-random[k=8]","ev-each[k=2]","ev-each[k=4]","ev-each[k=8]"], n' junit.xml \
  && ok "JUnit: one testcase per value" || bad "JUnit testcases"
expect_ok "check --json" "$LEDGER" check --json
"$PYTHON3" - "$TMP/.out" <<'PY' && ok "JSON: one claim per value, Holm over the expansion" || bad "JSON/Holm: $(head -c 400 "$TMP/.out")"
import json, sys
r = json.load(open(sys.argv[1]))
cl = r["files"][0]["claims"]
br = [c for c in cl if c["id"].startswith("beats-random[")]
assert [c["by"] for c in br] == [{"key": "k", "value": v} for v in ("2", "4", "8")], [c["by"] for c in br]
# Holm over the three welch p-values (the only corrected family members)
ps = [c["requirements"][1]["terms"][0]["p"] for c in br]
adj = [c["requirements"][1]["terms"][0]["p_holm"] for c in br]
m = len(ps)
order = sorted(range(m), key=lambda i: ps[i])
want, run = [0.0] * m, 0.0
for rank, i in enumerate(order):
    run = max(run, min(1.0, (m - rank) * ps[i]))
    want[i] = run
assert all(abs(a - w) <= 1e-12 * max(1, w) for a, w in zip(adj, want)), (ps, adj, want)
assert all(c["requirements"][1]["holm"] for c in br)
PY
cat > templates/t.md <<'MD'
{{claim beats-random}}
MD
expect_ok "report renders every value" "$LEDGER" report templates/t.md -o out/r.md --no-record
for k in 2 4 8; do grep -q "beats-random\[k=$k\]" out/r.md && ok "report: k=$k" || bad "report lacks k=$k"; done

# filters on the grid key limit the expansion
cat > k4up.claims <<'CLAIMS'
claim k4up
  says "from k=4 up"
  study tiny
  by k
  sample t = pair.mmcs where control=trained k>=4
  sample r = pair.mmcs where control=random k>=4
  require mean(t) - mean(r) > 0
end
CLAIMS
expect_ok "by k with k>=4 on every sample" "$LEDGER" check k4up.claims
[ "$(grep -oE '^PASS +k4up\[k=[0-9]+\]' "$TMP/.out" | awk '{print $2}' | tr '\n' ' ')" = "k4up[k=4] k4up[k=8] " ] \
  && ok "expands to k=4 and k=8 only" || bad "expansion: $(grep -E '^[A-Z]+ ' "$TMP/.out")"

# a filter value that matches nothing lists the valid ones
cat > claims/bad.claims <<'CLAIMS'
claim no-k7
  says "k=7 was never run"
  study tiny
  sample x = pair.mmcs where control=trained k=7
  require mean(x) > 0
end
claim no-key
  says "no such parameter"
  study tiny
  sample x = pair.mmcs where width=7
  require mean(x) > 0
end
claim no-study
  says "a study name with a typo"
  study tinny
  sample x = pair.mmcs
  require mean(x) > 0
end
claim by-no-key
  says "by a parameter the grid lacks"
  study tiny
  by width
  sample x = pair.mmcs
  require mean(x) > 0
end
CLAIMS
expect_code 1 "check the bad claims" "$LEDGER" check claims/bad.claims
grep_out "k=7 matches nothing \(valid values of k: 2, 4, 8\)" "lists the valid values of k"
grep_out "no condition has a parameter 'width' \(parameters: .*control.*k" "lists the parameters"
grep_out "no ok run of study tinny.*studies with ok runs: tiny" "lists the studies"
grep_out "^MISSING +by-no-key.*" "by a missing parameter: MISSING"
grep_out "by width: .*parameter 'width'" "names the grid parameter"
finish

#!/usr/bin/env bash
# t7908 (red team): an import run rewritten with plain git (ids and chain
# recomputed) to carry numbers its SAEs do not give: a cell metric import never
# computes (fvu 0.001 on every cell) or a second condition with forged pairs.
# `verify --recompute` compared only the pairs of the first condition, so both
# passed and claims read the forged values. Now the cells must hold exactly each
# SAE's shape, and an import has one condition.
. "$(dirname "$0")/lib-cli.sh"
cat >study.json <<'JSON'
{"format": 1, "name": "tiny-import",
 "data": {"source": "synthetic",
          "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 7}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 4},
 "train": {"steps": 50, "batch": 64},
 "seeds": [1, 2, 3],
 "controls": {"random_init": false}}
JSON
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" run -q study.json >/dev/null &&
  run=$(git ls-tree --name-only ledger runs/ | tail -1 | cut -d- -f2) && "$LEDGER" export "$run" -o sae >/dev/null &&
  "$LEDGER" import --study imp sae/default/seed-1 sae/default/seed-2 sae/default/seed-3 >/dev/null &&
  git branch orig ledger && ok "run, export, import (run 3)" || bad "setup"
expect_ok "control: verify --recompute passes on the honest import" "$LEDGER" verify --recompute --no-claims
forge() { git update-ref refs/heads/ledger orig && "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 3 "$1" >/dev/null &&
  "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1; }
forge 'for c in m["results"]["conditions"]:
    for cell in c["cells"]: cell["metrics"]["fvu"] = 0.001' && ok "every import cell gets fvu 0.001" || bad "forge cells"
expect_code 1 "verify --recompute fails" "$LEDGER" verify --recompute --no-claims
grep_out "error: recompute: run 3-[0-9a-f]{12}: import cell of seed 1: fvu: recorded, but the engine computes no such metric" "names the forged cell metric"
forge 'import copy
c2 = copy.deepcopy(m["results"]["conditions"][0]); c2["id"] = "imported-2"
for p in c2["pairs"]: p["metrics"]["mmcs"] = 0.99
m["results"]["conditions"].append(c2)' && ok "a second condition with forged pairs" || bad "forge condition"
expect_code 1 "verify --recompute fails" "$LEDGER" verify --recompute --no-claims
grep_out "import: 2 conditions recorded, an import has one" "names it"
forge 'm["results"]["conditions"][0]["cells"].pop()' && ok "a cell dropped" || bad "forge drop"
expect_code 1 "verify --recompute fails" "$LEDGER" verify --recompute --no-claims
grep_out "import: 2 cells recorded, it imported 3 SAEs" "names it"
finish

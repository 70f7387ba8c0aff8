#!/bin/bash
# t5101-ood-spec.sh - data.ood in a study spec: every SAE (trained and random-init) gets ood_*
# metrics over every row of the OOD file; the run records the OOD file's digest; bad OOD
# inputs (unknown key, missing path, another d, a NaN, a missing file) exit 2 with a one-line
# error naming the spec or file and record nothing. No PyTorch needed (NumPy writes the files).
. "$(dirname "$0")/lib-cli.sh"

"$PYTHON3" -c 'import numpy' 2>/dev/null || { echo "skipped: numpy missing"; exit 77; }
"$PYTHON3" - <<'PY'
import numpy as np
r = np.random.default_rng(3)
np.save("acts.npy", r.standard_normal((600, 8)).astype("<f4"))
np.save("ood.npy", (2.0 * r.standard_normal((300, 8)) + 1.0).astype("<f4"))
np.save("ood4.npy", r.standard_normal((50, 4)).astype("<f4"))
bad = r.standard_normal((50, 8)).astype("<f4"); bad[7, 3] = np.nan
np.save("oodnan.npy", bad)
PY
spec() { # spec FILE OOD_JSON [NAME]
  cat >"$1" <<JSON
{"format": 1, "name": "${3:-ood-spec}",
 "data": {"source": "file", "path": "acts.npy", "eval_fraction": 0.1, "ood": $2},
 "sae": {"arch": "topk", "d_sae": 16, "k": 2}, "train": {"steps": 30, "batch": 32},
 "seeds": [1, 2], "controls": {"random_init": true}, "metrics": {"hungarian": false}}
JSON
}
expect_ok "init" "$LEDGER" init
spec good.json '{"path": "ood.npy"}'
expect_ok "dry run names the OOD file" "$LEDGER" run --dry-run good.json
grep_out 'ood: file .*ood.npy' "plan shows the OOD file"
expect_ok "run with data.ood" "$LEDGER" run -q --json good.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN" >run.json
"$PYTHON3" - <<'PY' && ok "ood_* metrics on every cell (trained and random), digest recorded" || bad "ood metrics"
import hashlib, json
m = json.load(open("run.json"))["results"]
assert m["data"]["ood"]["sha256"] == hashlib.sha256(open("ood.npy", "rb").read()).hexdigest()
assert m["data"]["ood"]["n"] == 300
cells = [c for cond in m["conditions"] for c in cond["cells"]]
assert len(cells) == 4
for c in cells:
    x = c["metrics"]
    for k in ("ood_fvu", "ood_explained_variance", "ood_mse", "ood_l0", "ood_dead_frac", "ood_dense_frac"):
        assert k in x, k
    assert abs(x["ood_fvu"] + x["ood_explained_variance"] - 1) < 1e-9
    assert 0 <= x["ood_l0"] <= 2 and 0 <= x["ood_dead_frac"] <= 1
PY
cat >ood.claims <<'EOF'
claim ood-ev
  says "OOD explained variance is recorded"
  study ood-spec
  sample o = cell.ood_explained_variance where control=trained
  require n(o) >= 2
end
EOF
expect_ok "a claim on an ood_* metric" "$LEDGER" check ood.claims
"$PYTHON3" -c 'import numpy as np; a=np.load("ood.npy"); a[0,0]+=1; np.save("ood.npy", a)'
expect_code 1 "OOD file changed: STALE" "$LEDGER" check ood.claims
grep_out 'STALE +ood-ev' "the claim is STALE"
grep_out 'OOD data file .*ood.npy changed since run' "naming the OOD file"

# a run recorded elsewhere whose spec reads an OOD file but whose results carry no digest of it
cat >rec.json <<'EOF'
{"conditions": [{"id": "default", "params": {"control": "trained"},
  "cells": [{"seed": 1, "metrics": {"ood_explained_variance": 0.5}}, {"seed": 2, "metrics": {"ood_explained_variance": 0.6}}]}]}
EOF
expect_ok "record a run with the spec but no OOD digest" "$LEDGER" record --kind run --study ood-spec --spec good.json --results rec.json
expect_code 1 "its claims are not trusted" "$LEDGER" check ood.claims
grep_out 'STALE +ood-ev' "STALE"
grep_out 'recorded no digest of it' "because the run recorded no OOD digest"

runs_before=$("$LEDGER" log | wc -l)
bad_case() { # DESC OOD_JSON PATTERN
  spec bad.json "$2" ood-bad # another name: one study, one name
  expect_code 2 "$1: exit 2" "$LEDGER" run -q bad.json
  grep_err "$3" "$1: the error names it"
  one_line_err "$1: one line"
}
bad_case "unknown key" '{"path": "ood.npy", "tensr": "x"}' 'bad.json: data.ood.tensr: unknown key'
bad_case "no path" '{"tensor": "acts"}' 'bad.json: data.ood.path'
bad_case "not an object" '"ood.npy"' 'bad.json: data.ood'
bad_case "another d" '{"path": "ood4.npy"}' 'data.ood: .*ood4.npy has d=4, the data has d=8'
bad_case "a NaN" '{"path": "oodnan.npy"}' 'oodnan.npy: row 7, column 3: NaN'
bad_case "missing file" '{"path": "nosuch.npy"}' 'nosuch.npy'
[ "$("$LEDGER" log | wc -l)" = "$runs_before" ] && ok "nothing recorded by the bad specs" || bad "ledger changed"
finish

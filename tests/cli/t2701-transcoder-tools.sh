#!/bin/bash
# t2701-transcoder-tools.sh - the activation tools write a transcoder's two tensors:
# modular_arith.py --hook mlp_in --target-hook mlp_out dumps the MLP's input and output for the
# same rows (their sum is resid_post, checked against a --hook resid_post dump of the same model),
# with OOD targets and a study spec holding data.target and a grid over sae.transcoder, which
# `ledger run` then executes; extract_activations.py --target-hook captures a second submodule in
# the same forward pass. Without --target-hook the outputs are as before (no -target files).
# Needs PyTorch and NumPy in PYTHON3 (skipped otherwise).
. "$(dirname "$0")/lib-cli.sh"

"$PYTHON3" -c 'import torch, numpy' 2>/dev/null || skip_all "PyTorch or NumPy missing"
MA="$LEDGER_SRC/studies/tools/modular_arith.py"
EX="$LEDGER_SRC/studies/tools/extract_activations.py"
common="--p 7 --d-model 8 --n-heads 2 --d-mlp 16 --steps 20 --seed 3"
expect_ok "modular_arith.py --hook mlp_in --target-hook mlp_out" \
  "$PYTHON3" "$MA" $common --hook mlp_in --target-hook mlp_out --out data/mlp --study study.json --ood-out data/ood
expect_ok "modular_arith.py --hook resid_post (same model)" "$PYTHON3" "$MA" $common --out data/post
expect_ok "without --target-hook" "$PYTHON3" "$MA" $common --hook mlp_in --out data/plain
"$PYTHON3" - <<'PY' && ok "MLP input + MLP output = resid_post, row for row; OOD targets; metadata" || bad "tensors"
import json, os
import numpy as np
x, y, post = np.load("data/mlp.npy"), np.load("data/mlp-target.npy"), np.load("data/post.npy")
assert x.shape == y.shape == post.shape == (49, 8), (x.shape, y.shape)
assert np.abs(x + y - post).max() < 1e-5
assert np.abs(y).max() > 0 and np.abs(x - y).max() > 1e-3
for n in ("heldout", "train", "shift"):
    a, t = np.load(f"data/ood-{n}.npy"), np.load(f"data/ood-{n}-target.npy")
    assert a.shape == t.shape
m = json.load(open("data/mlp-target.json"))
assert m["hook_name"] == "blocks.0.hook_mlp_out" and m["input_hook_name"] == "blocks.0.hook_mlp_in"
assert not os.path.exists("data/plain-target.npy")
assert np.array_equal(np.load("data/plain.npy"), x)
s = json.load(open("study.json"))
assert s["data"]["target"] == {"path": "data/mlp-target.npy"} and s["grid"] == {"transcoder": [False, True]}, s
PY
"$PYTHON3" - <<'PY'
import json
s = json.load(open("study.json"))
s["train"]["steps"] = 40
json.dump(s, open("study.json", "w"))
PY
expect_ok "init" "$LEDGER" init
expect_ok "ledger run on the generated transcoder study" "$LEDGER" run -q --json study.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN" >run.json
"$PYTHON3" - <<'PY' && ok "both arms ran on the MLP tensors" || bad "run"
import hashlib, json
m = json.load(open("run.json"))["results"]
assert m["data"]["target"]["sha256"] == hashlib.sha256(open("data/mlp-target.npy", "rb").read()).hexdigest()
ids = sorted(c["id"] for c in m["conditions"])
assert ids == ["transcoder=false", "transcoder=false,control=random", "transcoder=true",
               "transcoder=true,control=random"], ids
PY

# extract_activations.py on a small module: input of a Linear+ReLU "MLP" and its output
cat >tinymlp.py <<'PY'
import torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.ln = torch.nn.Identity()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 6))
    def forward(self, x):
        h = self.ln(x)
        return x + self.mlp(h)
def make():
    return M()
PY
"$PYTHON3" -c 'import numpy as np; np.save("inputs.npy", np.random.default_rng(1).standard_normal((40, 6)).astype("<f4"))'
expect_ok "extract_activations.py --hook ln --target-hook mlp" \
  "$PYTHON3" "$EX" --factory tinymlp:make --inputs inputs.npy --hook ln --target-hook mlp --out ex/acts --format npy --study ex-study.json
must_fail "an unknown --target-hook" \
  "$PYTHON3" "$EX" --factory tinymlp:make --inputs inputs.npy --hook ln --target-hook nope --out ex/bad --format npy
grep_err 'target-hook nope: the model has no such submodule' "names the option"
"$PYTHON3" - <<'PY' && ok "extract_activations.py wrote input and target of the same rows" || bad "extract"
import json, sys
import numpy as np, torch
sys.path.insert(0, ".")
import tinymlp
x, y = np.load("ex/acts.npy"), np.load("ex/acts-target.npy")
m = tinymlp.make().eval()
with torch.no_grad():
    want = m.mlp(torch.from_numpy(np.load("inputs.npy"))).numpy()
assert np.abs(y - want).max() < 1e-6 and np.abs(x - np.load("inputs.npy")).max() == 0
s = json.load(open("ex-study.json"))
assert s["data"]["target"]["path"] == "ex/acts-target.npy" and s["grid"] == {"transcoder": [False, True]}
PY
finish

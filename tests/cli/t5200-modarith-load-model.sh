#!/bin/bash
# t5200-modarith-load-model.sh - activations exported from a saved model without training it:
# modular_arith.py --load-model reproduces, byte for byte, what the training run dumped (resid_post),
# writes other hooks of the same model (mlp_in + mlp_out = resid_post, row for row) and names the
# loaded file's SHA-256; bad inputs (missing file, not a state_dict, other sizes, --random-weights or
# --save-model beside it) exit 2 with one line naming the file or the options.
# build-activations.sh --export-mlp writes mlp.npy / mlp-target.npy from DIR/model.pt and refuses a
# model that does not reproduce DIR/acts.npy (exit 1) or a DIR without one (exit 2); the training run
# here does not set OPENBLAS_CORETYPE as build-activations.sh does, so on CPUs where that changes the
# GEMM kernel the check passes on the tolerance, not on equal bytes.
# Needs PyTorch and NumPy in PYTHON3 (skipped otherwise).
. "$(dirname "$0")/lib-cli.sh"

"$PYTHON3" -c 'import torch, numpy' 2>/dev/null || skip_all "PyTorch or NumPy missing"
MA="$LEDGER_SRC/studies/tools/modular_arith.py"
BA="$LEDGER_SRC/studies/husai/build-activations.sh"
common="--p 7 --d-model 8 --n-heads 2 --d-mlp 16 --seed 3"
expect_ok "train, save the model, dump resid_post" \
  "$PYTHON3" "$MA" $common --steps 30 --out trained --save-model m.pt --results trained-results.json
expect_ok "--load-model: resid_post of the saved model" \
  "$PYTHON3" "$MA" $common --load-model m.pt --out loaded --results loaded-results.json
grep_err "0 steps" "nothing trained"
cmp -s trained.npy loaded.npy && ok "the exported activations equal the training run's, byte for byte" ||
  bad "exported activations differ"
expect_ok "--load-model --hook mlp_in --target-hook mlp_out" \
  "$PYTHON3" "$MA" $common --load-model m.pt --hook mlp_in --target-hook mlp_out --out mlp
"$PYTHON3" - <<'PY' && ok "mlp_in + mlp_out = resid_post; metadata names the loaded model; accuracies kept" || bad "export"
import hashlib, json
import numpy as np
x, y, post = np.load("mlp.npy"), np.load("mlp-target.npy"), np.load("trained.npy")
assert x.shape == y.shape == post.shape == (49, 8)
assert np.abs(x + y - post).max() < 1e-5 and np.abs(y).max() > 0
h = hashlib.sha256(open("m.pt", "rb").read()).hexdigest()
for f in ("mlp.json", "mlp-target.json", "loaded.json"):
    m = json.load(open(f))
    assert m["loaded_model_sha256"] == h and m["steps_trained"] is None, (f, m)
t, l = json.load(open("trained.json")), json.load(open("loaded.json"))
assert "loaded_model_sha256" not in t and t["steps_trained"] == 30
assert l["test_accuracy"] == t["test_accuracy"] and l["train_accuracy"] == t["train_accuracy"]
r = json.load(open("loaded-results.json"))["conditions"][0]["params"]
assert r["loaded_model_sha256"] == h
PY

# bad inputs: exit 2, one line naming the file or the options
expect_code 2 "missing model file" "$PYTHON3" "$MA" $common --load-model nope.pt --out x
grep_err "nope.pt" "names the missing file"
one_line_err "one line"
echo "not a model" >junk.pt
expect_code 2 "a file that is not a saved model" "$PYTHON3" "$MA" $common --load-model junk.pt --out x
grep_err "junk.pt" "names the file"
one_line_err "one line"
expect_code 2 "a model of other sizes" "$PYTHON3" "$MA" --p 7 --d-model 8 --n-heads 2 --d-mlp 32 --seed 3 \
  --load-model m.pt --out x
grep_err "m.pt: 'block.mlp_in.weight' has shape \(16, 8\).*\(32, 8\)" "names the tensor and both shapes"
one_line_err "one line"
"$PYTHON3" -c 'import torch; torch.save([1, 2], "list.pt")'
expect_code 2 "a saved object that is not a state_dict" "$PYTHON3" "$MA" $common --load-model list.pt --out x
grep_err "list.pt: not a state_dict" "says why"
"$PYTHON3" - <<'PY'
import os, torch
class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))
torch.save({"embed.weight": Boom()}, "evil.pt")
PY
expect_code 2 "a pickle that would run code" "$PYTHON3" "$MA" $common --load-model evil.pt --out x
[ ! -e pwned ] && ok "its code did not run (weights_only load)" || bad "the pickle's code ran"
grep_err "evil.pt: cannot read it" "names the file"
expect_code 2 "--load-model with --random-weights" "$PYTHON3" "$MA" $common --load-model m.pt --random-weights --out x
grep_err "exclude each other" "says the options exclude each other"
expect_code 2 "--load-model with --save-model" "$PYTHON3" "$MA" $common --load-model m.pt --save-model y.pt --out x
[ ! -e y.pt ] && [ ! -e x.npy ] && ok "nothing written by the refused runs" || bad "a refused run wrote files"
expect_code 1 "--load-model with --stop-test-acc the model does not reach" \
  "$PYTHON3" "$MA" $common --load-model m.pt --stop-test-acc 1.01 --out x
grep_err "m.pt: test accuracy" "names the model"

# build-activations.sh --export-mlp on a folder with a model of the CI size (trained briefly here)
ci="--p 23 --d-model 32 --n-heads 4 --d-mlp 64 --train-frac 0.8 --lr 3e-3 --weight-decay 1.0 --seed 0 --threads 1"
mkdir -p d
expect_ok "a CI-size model and its resid_post" "$PYTHON3" "$MA" $ci --steps 20 --out d/acts --save-model d/model.pt
cp d/acts.npy acts-orig.npy
expect_ok "build-activations.sh --ci --export-mlp" bash "$BA" --ci --out "$TMP/d" --export-mlp
"$PYTHON3" - <<'PY' && ok "mlp.npy + mlp-target.npy = acts.npy; hooks named" || bad "--export-mlp outputs"
import json
import numpy as np
x, y, post = np.load("d/mlp.npy"), np.load("d/mlp-target.npy"), np.load("d/acts.npy")
assert x.shape == y.shape == post.shape == (529, 32)
assert np.abs(x + y - post).max() < 1e-5
assert json.load(open("d/mlp.json"))["hook_name"] == "blocks.0.hook_mlp_in"
assert json.load(open("d/mlp-target.json"))["hook_name"] == "blocks.0.hook_mlp_out"
PY
cmp -s d/acts.npy acts-orig.npy && ok "acts.npy untouched" || bad "acts.npy changed"
rm d/mlp.npy d/mlp-target.npy
expect_ok "another model of the same size (seed 1)" "$PYTHON3" "$MA" ${ci/--seed 0/--seed 1} --steps 20 --out other \
  --save-model d/model.pt
expect_code 1 "--export-mlp refuses a model that does not reproduce acts.npy" bash "$BA" --ci --out "$TMP/d" --export-mlp
grep_err "does not reproduce" "says so"
[ ! -e d/mlp.npy ] && ok "no MLP tensors written from the wrong model" || bad "wrote MLP tensors"
mkdir -p empty
expect_code 2 "--export-mlp without a model" bash "$BA" --ci --out "$TMP/empty" --export-mlp
grep_err "needs .*model.pt" "names the missing model"
finish

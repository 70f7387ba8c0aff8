"""test_hier_numpy.py - HierarchicalTopK's per-budget metrics against an independent NumPy reader.

A tiny synthetic study (d=16, 32 features, d_sae 32, ks [2, 4, 8], 80 steps, seeds 1 and 2)
is run and exported with `ledger export --format saelens`. With NumPy only (the SAELens
reader and forward pass of test_saelens_export.py):

  1. each exported cfg.json is a "topk" SAE with k = 8, metadata.ledger_architecture
     "hierarchical_topk" and metadata.ledger_ks [2, 4, 8];
  2. the held-out rows are regenerated (tests/tools/tensor_tool) and, for every cell and
     every budget K, the forward pass with cfg["k"] = K gives the FVU (variance around the
     mean), MSE, L0 and dead fraction that the ledger recorded as fvu_kK, mse_kK, l0_kK and
     dead_frac_kK; at K = 8 they are also the cell's unsuffixed metrics;
  3. the budgets are nested: for every held-out row, the latents active at K are a subset of
     those active at the next budget.
Exit 0 on success, 1 on a mismatch, 77 (skip) when the ledger binary is not given.
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_saelens_export import forward, read_safetensors, sh  # noqa: E402

LEDGER = os.environ.get("LEDGER")
BUILD = os.environ.get("LEDGER_BUILD")
KS = [2, 4, 8]
STUDY = {
    "format": 1,
    "name": "hier-py",
    "data": {"source": "synthetic",
             "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 9}},
    "sae": {"arch": "hierarchical_topk", "d_sae": 32, "ks": KS},
    "train": {"steps": 80, "batch": 64, "lr": 0.005},
    "seeds": [1, 2],
    "controls": {"random_init": False},
}
FAILURES = []


def check(cond, what):
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        FAILURES.append(what)


def main():
    if not LEDGER or not os.path.exists(LEDGER):
        print("skip: LEDGER is not set")
        return 77
    tool = os.path.join(BUILD or "", "tensor_tool")
    if not os.path.exists(tool):
        print(f"not ok - {tool} is missing (build the tensor_tool target)")
        return 1
    tmp = tempfile.mkdtemp(prefix="ledger-hier-")
    env_keep = dict(os.environ)
    os.environ.update({"HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
                       "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.com"})
    try:
        json.dump(STUDY, open(os.path.join(tmp, "study.json"), "w"))
        sh(LEDGER, "init", cwd=tmp)
        run_id = json.loads(sh(LEDGER, "run", "-q", "--backend", "cpu", "--json", "study.json", cwd=tmp))["run_id"]
        manifest = json.loads(sh(LEDGER, "show", "--json", run_id, cwd=tmp))
        sh(LEDGER, "export", run_id, "--format", "saelens", "-o", "exp", cwd=tmp)

        syn = STUDY["data"]["synthetic"]
        out = sh(tool, "synth", str(syn["d"]), str(syn["n_features"]), str(syn["n_samples"]),
                 str(syn["active_mean"]), "0", str(syn["seed"]), "data.npy", cwd=tmp)
        check(out.split()[-1] == manifest["data_digest"], "regenerated data has the run's data digest")
        X = np.load(os.path.join(tmp, "data.npy")).astype(np.float64)
        rows = [int(v) for v in sh(tool, "split", str(syn["n_samples"]), "0.1", "0", cwd=tmp).split()]
        Xe = X[rows]
        var = ((Xe - Xe.mean(axis=0)) ** 2).sum()

        cond = manifest["results"]["conditions"][0]
        n_cmp = 0
        for cell in cond["cells"]:
            seed, m = cell["seed"], cell["metrics"]
            d = os.path.join(tmp, "exp", "default", f"seed-{seed}")
            cfg = json.load(open(os.path.join(d, "cfg.json")))
            w, _, _ = read_safetensors(os.path.join(d, "sae_weights.safetensors"))
            md = cfg["metadata"]
            check(cfg["architecture"] == "topk" and cfg["k"] == 8 and md["ledger_architecture"] == "hierarchical_topk"
                  and md["ledger_ks"] == KS, f"seed {seed}: cfg.json is topk k=8 with ledger_ks {KS}")
            prev = None
            for k in KS:
                xhat, acts = forward(w, dict(cfg, k=k), Xe)
                err = ((Xe - xhat) ** 2).sum(axis=1)
                fvu, mse = err.sum() / var, err.mean()
                l0 = (acts != 0).sum(axis=1).mean()
                dead = float((acts != 0).sum(axis=0).__eq__(0).mean())
                check(abs(fvu - m[f"fvu_k{k}"]) <= 1e-4 * m[f"fvu_k{k}"],
                      f"seed {seed} k={k}: NumPy FVU {fvu:.7f} = ledger fvu_k{k} {m[f'fvu_k{k}']:.7f}")
                check(abs(mse - m[f"mse_k{k}"]) <= 1e-4 * m[f"mse_k{k}"], f"seed {seed} k={k}: MSE")
                check(abs(l0 - m[f"l0_k{k}"]) <= 1e-9, f"seed {seed} k={k}: L0 {l0:.4f} = {m[f'l0_k{k}']:.4f}")
                check(abs(dead - m[f"dead_frac_k{k}"]) <= 1e-12, f"seed {seed} k={k}: dead fraction {dead}")
                check(abs(m[f"explained_variance_k{k}"] - (1 - m[f"fvu_k{k}"])) <= 1e-12, f"seed {seed} k={k}: EV = 1 - FVU")
                n_cmp += 1
                if prev is not None:
                    check(bool(np.all((prev != 0) <= (acts != 0))), f"seed {seed}: budget {k} contains the smaller one")
                prev = acts
            for n in ("fvu", "mse", "l0", "dead_frac", "explained_variance", "dense_frac"):
                check(m[n] == m[n + "_k8"], f"seed {seed}: {n} = {n}_k8")
        check(n_cmp == 6, f"{n_cmp} (cell, budget) pairs compared")
    finally:
        os.environ.clear()
        os.environ.update(env_keep)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

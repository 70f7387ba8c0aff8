"""test_saelens_export.py - the SAELens export read back by an independent reader.

A tiny synthetic study (d=16, 32 features, d_sae 32, 50 steps, seeds 1 and 2, TopK and
BatchTopK) is run and exported with `ledger export --format saelens`. Then, with NumPy only
(safetensors is parsed by hand with struct + json: the package is not installed here):

  1. every SAE folder has cfg.json with the SAELens keys and a sae_weights.safetensors whose
     tensors have SAELens's names, dtype F32 and shapes (threshold only for the JumpReLU
     export of BatchTopK), unit-norm decoder rows;
  2. the study's data is regenerated (tests/tools/tensor_tool synth; its digest must equal
     the run's data digest) and its held-out rows selected (tensor_tool split); the SAE
     forward pass is computed with NumPy from the loaded weights (SAELens semantics:
     pre = (x - b_dec) W_enc + b_enc; TopK keeps the k largest ReLU'd, JumpReLU keeps
     pre > threshold) and the FVU (variance around the per-dimension mean), MSE and L0
     must match what the ledger recorded for each cell;
  3. MMCS (|cos|) and Hungarian-matched MCC between the seeds, recomputed with NumPy and
     scipy.optimize.linear_sum_assignment, match the run's pair metrics;
  4. `ledger import` of the export records pairs equal to the original run's.
Exit 0 on success, 1 on a mismatch, 77 (skip) when the ledger binary is not given.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

LEDGER = os.environ.get("LEDGER")
BUILD = os.environ.get("LEDGER_BUILD")

STUDY = {
    "format": 1,
    "name": "saelens-py",
    "data": {"source": "synthetic",
             "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 7}},
    "sae": {"d_sae": 32, "k": 4},
    "grid": {"arch": ["topk", "batchtopk"]},
    "train": {"steps": 50, "batch": 64},
    "seeds": [1, 2],
    "controls": {"random_init": False},
}
FAILURES = []


def check(cond, what):
    if cond:
        print("ok -", what)
    else:
        print("not ok -", what)
        FAILURES.append(what)


def sh(*args, cwd):
    r = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def read_safetensors(path):
    """name -> float64 array, plus the metadata; F32/F16/F64 only (what we need)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = head.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
    out, dts = {}, {}
    for name, t in head.items():
        a, b = t["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        out[name] = np.frombuffer(buf, dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        dts[name] = t["dtype"]
    assert 8 + n + max(t["data_offsets"][1] for t in head.values()) == len(raw), "trailing bytes"
    return out, dts, meta


def forward(w, cfg, x):
    """xhat, acts for rows x [n, d_in] with SAELens semantics, in float64."""
    W_enc, b_enc = w["W_enc"].astype(np.float64), w["b_enc"].astype(np.float64)
    W_dec, b_dec = w["W_dec"].astype(np.float64), w["b_dec"].astype(np.float64)
    sae_in = x - b_dec if cfg["apply_b_dec_to_input"] else x
    pre = sae_in @ W_enc + b_enc                                   # [n, d_sae]
    if cfg["architecture"] == "topk":
        k = cfg["k"]
        idx = np.argsort(-pre, axis=1, kind="stable")[:, :k]       # ties: lower index first
        acts = np.zeros_like(pre)
        rows = np.arange(pre.shape[0])[:, None]
        acts[rows, idx] = np.maximum(pre[rows, idx], 0.0)
    elif cfg["architecture"] == "jumprelu":
        thr = w["threshold"].astype(np.float64)
        acts = np.where(pre > thr, pre, 0.0)
    elif cfg["architecture"] == "standard":
        acts = np.maximum(pre, 0.0)
    else:
        raise ValueError(cfg["architecture"])
    return acts @ W_dec + b_dec, acts                              # [n, d_in], [n, d_sae]


def unit_rows(W):
    W = W.astype(np.float64)
    return W / np.linalg.norm(W, axis=1, keepdims=True)


def mmcs_abs(A, B):
    S = np.abs(unit_rows(A) @ unit_rows(B).T)
    return (S.max(axis=1).mean() + S.max(axis=0).mean()) / 2, S


def main():
    if not LEDGER or not os.path.exists(LEDGER):
        print("skip: LEDGER is not set")
        return 77
    tool = os.path.join(BUILD or "", "tensor_tool")
    if not os.path.exists(tool):
        print(f"not ok - {tool} is missing (build the tensor_tool target)")
        return 1
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        # SciPy is a declared test dependency (tests/install-deps.sh): its absence
        # fails the test rather than dropping the MCC reference silently
        linear_sum_assignment = None
        check(False, "SciPy is installed (the matched-MCC reference needs scipy.optimize.linear_sum_assignment)")

    tmp = tempfile.mkdtemp(prefix="ledger-saelens-")
    env_keep = dict(os.environ)
    os.environ.update({"HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
                       "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.com"})
    try:
        json.dump(STUDY, open(os.path.join(tmp, "study.json"), "w"))
        sh(LEDGER, "init", cwd=tmp)
        run_id = json.loads(sh(LEDGER, "run", "-q", "--json", "study.json", cwd=tmp))["run_id"]
        manifest = json.loads(sh(LEDGER, "show", "--json", run_id, cwd=tmp))
        exp = json.loads(sh(LEDGER, "export", run_id, "--format", "saelens", "-o", "exp", "--json", cwd=tmp))
        check(exp["source_run"] == run_id and len(exp["saes"]) == 4, "export of 4 SAEs recorded")

        # the data and the held-out rows, regenerated independently of the run
        syn = STUDY["data"]["synthetic"]
        out = sh(tool, "synth", str(syn["d"]), str(syn["n_features"]), str(syn["n_samples"]),
                 str(syn["active_mean"]), "0", str(syn["seed"]), "data.npy", cwd=tmp)
        digest = out.split()[-1]
        check(digest == manifest["data_digest"], "regenerated data has the run's data digest")
        X = np.load(os.path.join(tmp, "data.npy")).astype(np.float64)          # [2000, 16]
        eval_rows = [int(v) for v in sh(tool, "split", str(syn["n_samples"]), "0.1", "0", cwd=tmp).split()]
        Xe = X[eval_rows]                                                        # [n_eval, 16]
        check(len(eval_rows) == manifest["results"]["data"]["n_eval"], "held-out row count matches")

        conds = {c["id"]: c for c in manifest["results"]["conditions"]}
        loaded = {}
        for cond_id, cond in conds.items():
            fid = cond_id.replace("=", "-").replace(",", "_")
            for cell in cond["cells"]:
                seed = cell["seed"]
                d = os.path.join(tmp, "exp", fid, f"seed-{seed}")
                cfg = json.load(open(os.path.join(d, "cfg.json")))
                w, dts, _ = read_safetensors(os.path.join(d, "sae_weights.safetensors"))
                arch = cond["params"]["arch"]
                want_arch = "topk" if arch == "topk" else "jumprelu"
                check(cfg["architecture"] == want_arch and cfg["d_in"] == 16 and cfg["d_sae"] == 32 and
                      cfg["dtype"] == "float32" and cfg["apply_b_dec_to_input"] is True and
                      cfg["normalize_activations"] == "none" and cfg["metadata"]["seed"] == seed and
                      cfg["metadata"]["ledger_architecture"] == arch and cfg["metadata"]["ledger_k"] == 4,
                      f"{cond_id} seed {seed}: cfg.json")
                names = {"W_enc", "b_enc", "W_dec", "b_dec"} | ({"threshold"} if want_arch == "jumprelu" else set())
                check(set(w) == names and all(v == "F32" for v in dts.values()), f"{cond_id} seed {seed}: tensor names, F32")
                check(w["W_enc"].shape == (16, 32) and w["b_enc"].shape == (32,) and w["W_dec"].shape == (32, 16) and
                      w["b_dec"].shape == (16,) and ("threshold" not in w or w["threshold"].shape == (32,)),
                      f"{cond_id} seed {seed}: SAELens shapes")
                check(all(np.isfinite(v).all() for v in w.values()), f"{cond_id} seed {seed}: finite")
                norms = np.linalg.norm(w["W_dec"].astype(np.float64), axis=1)
                check(np.abs(norms - 1).max() < 1e-5, f"{cond_id} seed {seed}: unit-norm decoder rows")
                if "threshold" in w:
                    check(np.all(w["threshold"] == w["threshold"][0]) and w["threshold"][0] >= 0,
                          f"{cond_id} seed {seed}: BatchTopK threshold is one non-negative scalar")
                # reconstruction from the loaded weights vs the ledger's own metrics
                xhat, acts = forward(w, cfg, Xe)
                err = ((Xe - xhat) ** 2).sum(axis=1)
                fvu = err.sum() / ((Xe - Xe.mean(axis=0)) ** 2).sum()
                mse = err.mean()
                l0 = (acts != 0).sum(axis=1).mean()
                m = cell["metrics"]
                tol = 1e-4 if want_arch == "topk" else 2e-3  # JumpReLU: entries at the threshold may flip
                check(abs(fvu - m["fvu"]) <= tol * max(m["fvu"], 1e-12),
                      f"{cond_id} seed {seed}: NumPy FVU {fvu:.7f} = ledger FVU {m['fvu']:.7f}")
                check(abs(mse - m["mse"]) <= tol * max(m["mse"], 1e-12),
                      f"{cond_id} seed {seed}: NumPy MSE {mse:.7f} = ledger MSE {m['mse']:.7f}")
                check(abs(l0 - m["l0"]) <= (1e-9 if want_arch == "topk" else 0.05),
                      f"{cond_id} seed {seed}: NumPy L0 {l0:.4f} = ledger L0 {m['l0']:.4f}")
                check(fvu < 1.0, f"{cond_id} seed {seed}: trained SAE explains variance (FVU {fvu:.3f} < 1)")
                loaded[(cond_id, seed)] = w

        # cross-seed consistency from the exported decoders vs the run's pair metrics
        n_mcc = 0
        for cond_id, cond in conds.items():
            for p in cond["pairs"]:
                A, B = loaded[(cond_id, p["seed_a"])]["W_dec"], loaded[(cond_id, p["seed_b"])]["W_dec"]
                mm, S = mmcs_abs(A, B)
                check(abs(mm - p["metrics"]["mmcs"]) < 1e-6,
                      f"{cond_id} {p['seed_a']}/{p['seed_b']}: NumPy MMCS {mm:.8f} = ledger {p['metrics']['mmcs']:.8f}")
                check("mcc" in p["metrics"], f"{cond_id} {p['seed_a']}/{p['seed_b']}: the run's pair has an MCC")
                if linear_sum_assignment is not None and "mcc" in p["metrics"]:
                    r, c = linear_sum_assignment(-S)
                    mcc = S[r, c].mean()
                    n_mcc += 1
                    check(abs(mcc - p["metrics"]["mcc"]) < 1e-6,
                          f"{cond_id} {p['seed_a']}/{p['seed_b']}: SciPy matched MCC {mcc:.8f} = ledger {p['metrics']['mcc']:.8f}")
        check(n_mcc > 0, f"{n_mcc} pairs compared against SciPy's matched MCC")

        # import the export back: same pairs as the original run
        for cond_id, cond in conds.items():
            fid = cond_id.replace("=", "-").replace(",", "_")
            dirs = [os.path.join("exp", fid, f"seed-{c['seed']}") for c in cond["cells"]]
            imp = json.loads(sh(LEDGER, "import", "--study", "reimport", "--condition", cond_id, "--json", *dirs, cwd=tmp))
            # the manifest (canonical JSON, exact doubles), not the --json summary: cJSON_Print
            # rounds to 15 digits whenever that parses back within DBL_EPSILON
            imp_m = json.loads(sh(LEDGER, "show", "--json", imp["run_id"], cwd=tmp))
            check(imp_m["kind"] == "import" and imp_m["results"]["conditions"][0]["id"] == cond_id,
                  f"{cond_id}: import recorded with its condition")
            got = {(p["seed_a"], p["seed_b"]): p["metrics"] for p in imp_m["results"]["conditions"][0]["pairs"]}
            want = {(p["seed_a"], p["seed_b"]): p["metrics"] for p in cond["pairs"]}
            check(got == want, f"{cond_id}: imported pairs equal the run's pairs")
        v = subprocess.run([LEDGER, "verify"], cwd=tmp, capture_output=True, text=True)
        check(v.returncode == 0, f"ledger verify passes after export and import (exit {v.returncode}: {v.stderr.strip()[-300:]})")
    finally:
        os.environ.clear()
        os.environ.update(env_keep)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

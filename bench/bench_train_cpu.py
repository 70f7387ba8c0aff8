#!/usr/bin/env python3
"""CPU training throughput: the engine against two PyTorch references, interleaved.

PyTorch references of engine/train.c's TopK SAE step (same model and update,
train.h): pre = (x - b_dec) W_enc + b_enc, per-row top-k (ReLU'd), loss = mean
over the batch of the squared error summed over d_in; remove the gradient
component parallel to each decoder row, clip the global gradient norm to 1,
Adam (lr 3e-4, warmup 100 steps), renormalise decoder rows. AuxK is off in all
of them (no latent is dead within a few steps). Two decoders:
  torch-dense : acts = zeros.scatter(idx, relu(val)); xhat = acts @ W_dec + b_dec
  torch-sparse: xhat = F.embedding_bag(idx, W_dec, per_sample_weights=relu(val),
                mode="sum") + b_dec   (as sparsify does)
The engine is build/bench_train_cpu (same shapes, its default training path),
run as a subprocess between the PyTorch runs, in the same environment.

Kernel: the engine's OpenBLAS loader picks OPENBLAS_CORETYPE on Intel CPUs
that OpenBLAS 0.3.21 does not know (engine/blas_lazy.c; its device string
names the kernel); PyTorch loads OpenBLAS itself and would use Prescott there,
so set OPENBLAS_CORETYPE to that kernel for a same-kernel comparison.
Each (config, threads) pair runs in a child process whose environment sets
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to the thread count
(torch.set_num_threads too); inside it, `--reps` repetitions of the three
variants run in rotating order, so load changes hit them alike. Reported:
median samples/s of each, the median over repetitions of engine / (the faster
PyTorch variant of that repetition), and the engine's speedup from 1 to 2
threads (ratio of its medians).

usage: /usr/bin/python3 bench/bench_train_cpu.py [--engine build/bench_train_cpu]
           [--configs small,large] [--threads 1,2] [--reps 3] [--steps-small 10]
           [--steps-large 3] [--engine-dense] [--json]
configs: small = TopK d=128 m=1024 k=32 B=4096; large = d=768 m=16384 k=64 B=1024;
or d:m:k:B. --engine-dense adds the engine's dense reference path
(LEDGER_CPU_SPARSE=0) as a fourth variant (not part of the ratio).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

CONFIGS = {"small": (128, 1024, 32, 4096), "large": (768, 16384, 64, 1024)}
WARM = 2


def torch_variant(sparse, steps, d, m, k, batch, data):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    W_dec = torch.randn(m, d)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_dec = W_dec.requires_grad_()
    W_enc = W_dec.detach().t().clone().requires_grad_()
    b_enc = torch.zeros(m, requires_grad=True)
    b_dec = torch.zeros(d, requires_grad=True)
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=3e-4, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    t0 = None
    for s in range(WARM + steps):
        if s == WARM:
            t0 = time.perf_counter()
        x = data[s % data.shape[0]]
        pre = (x - b_dec) @ W_enc + b_enc
        val, idx = pre.topk(k, dim=1)
        val = torch.relu(val)
        if sparse:
            xhat = F.embedding_bag(idx, W_dec, per_sample_weights=val, mode="sum") + b_dec
        else:
            acts = torch.zeros_like(pre).scatter(1, idx, val)
            xhat = acts @ W_dec + b_dec
        loss = (xhat - x).pow(2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            g = W_dec.grad
            g -= (g * W_dec).sum(dim=1, keepdim=True) * W_dec
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=1, keepdim=True)
    dt = time.perf_counter() - t0
    return steps * batch / dt, float(loss.item())


def engine_variant(path, dense, steps, d, m, k, batch):
    env = dict(os.environ)
    if dense:
        env["LEDGER_CPU_SPARSE"] = "0"
    out = subprocess.run([path, str(steps), str(d), str(m), str(k), str(batch)], env=env,
                         check=True, capture_output=True, text=True).stdout
    sps = re.search(r"([0-9.]+) samples/s", out)
    mse = re.search(r"final mse ([0-9.eE+-]+)", out)
    dev = re.search(r" on (cpu: .*)$", out.strip())
    if not sps:
        raise RuntimeError("engine output not understood: " + out)
    return float(sps.group(1)), float(mse.group(1)) if mse else float("nan"), dev.group(1) if dev else ""


def child(a):
    import torch
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    d, m, k, batch = a.shape
    torch.manual_seed(1)
    data = torch.randn(4, batch, d)
    variants = ["torch-dense", "torch-sparse", "engine"] + (["engine-dense"] if a.engine_dense else [])
    for rep in range(a.reps):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for v in order:
            dev = ""
            if v.startswith("torch"):
                sps, mse = torch_variant(v == "torch-sparse", a.steps, d, m, k, batch, data)
                dev = "torch %s, %d threads" % (torch.__version__, torch.get_num_threads())
            else:
                sps, mse, dev = engine_variant(a.engine, v == "engine-dense", a.steps, d, m, k, batch)
            print(json.dumps({"config": a.config, "shape": [d, m, k, batch], "threads": threads,
                              "rep": rep, "variant": v, "samples_per_s": sps, "final_mse": mse,
                              "steps": a.steps, "device": dev}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--engine", default="build/bench_train_cpu")
    p.add_argument("--configs", default="small,large")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps-small", type=int, default=10)
    p.add_argument("--steps-large", type=int, default=3)
    p.add_argument("--engine-dense", action="store_true")
    p.add_argument("--json", action="store_true", help="print every measurement as a JSON line")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        a.shape = [int(v) for v in a.shape.split(",")]
        child(a)
        return
    if not os.access(a.engine, os.X_OK):
        sys.exit("bench_train_cpu.py: engine benchmark %s not found (build it: cmake --build build "
                 "--target bench_train_cpu)" % a.engine)
    rows = []
    for cname in a.configs.split(","):
        shape = CONFIGS.get(cname) or tuple(int(v) for v in cname.split(":"))
        steps = a.steps_large if cname == "large" else a.steps_small
        for t in [int(v) for v in a.threads.split(",")]:
            env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                       MKL_NUM_THREADS=str(t))
            cmd = [sys.executable, __file__, "--child", "--engine", a.engine, "--config", cname,
                   "--shape", ",".join(map(str, shape)), "--steps", str(steps), "--reps", str(a.reps)]
            if a.engine_dense:
                cmd.append("--engine-dense")
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                rows.append(json.loads(line))
                if a.json:
                    print(line)
    try:
        load = open("/proc/loadavg").read().split()[:3]
    except OSError:
        load = ["?"] * 3
    print("load average at the end: %s" % " ".join(load))
    print("%-6s %3s %12s %12s %12s %13s %9s" % ("config", "thr", "torch-dense", "torch-sparse",
                                                "engine", "engine-dense", "ratio"))
    med = {}
    for cname in a.configs.split(","):
        for t in [int(v) for v in a.threads.split(",")]:
            rs = [r for r in rows if r["config"] == cname and r["threads"] == t]
            by = {}
            for r in rs:
                by.setdefault(r["variant"], []).append(r["samples_per_s"])
            ratios = []
            for rep in range(a.reps):
                x = {r["variant"]: r["samples_per_s"] for r in rs if r["rep"] == rep}
                ratios.append(x["engine"] / max(x["torch-dense"], x["torch-sparse"]))
            m = {v: statistics.median(s) for v, s in by.items()}
            med[(cname, t)] = m
            print("%-6s %3d %12.1f %12.1f %12.1f %13s %8.2fx  (per rep: %s)" % (
                cname, t, m["torch-dense"], m["torch-sparse"], m["engine"],
                "%.1f" % m["engine-dense"] if "engine-dense" in m else "-",
                statistics.median(ratios), " ".join("%.2f" % r for r in ratios)))
    for cname in a.configs.split(","):
        if (cname, 1) in med and (cname, 2) in med:
            print("%s: engine 1 -> 2 threads speedup %.2fx (torch-dense %.2fx, torch-sparse %.2fx)" % (
                cname, med[(cname, 2)]["engine"] / med[(cname, 1)]["engine"],
                med[(cname, 2)]["torch-dense"] / med[(cname, 1)]["torch-dense"],
                med[(cname, 2)]["torch-sparse"] / med[(cname, 1)]["torch-sparse"]))
    print("ratio = median over repetitions of engine / the faster PyTorch variant of the repetition")


if __name__ == "__main__":
    main()

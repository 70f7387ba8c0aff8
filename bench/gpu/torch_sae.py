#!/usr/bin/env python3
"""torch_sae.py - PyTorch (eager, float32, TF32 off) reference implementations
for the GPU benchmarks of issue 4, printing one JSON object per measurement
like bench_gpu_train does.

  torch_sae.py train --d 128 --m 1024 --k 32 --batch 4096 --steps 50 --warmup 5
                     [--seeds 1] [--data X.npy]
      The same TopK SAE and update as engine/train.h: pre = (x - b_dec) W_enc
      + b_enc; top-k per row, ReLU'd; xhat = acts W_dec + b_dec; loss = mean
      over the batch of the squared error summed over d (+ AuxK when latents
      are dead, dead_after = 1e7 samples as in our defaults); W_dec gradient
      made orthogonal to its rows; global grad-norm clip 1.0; Adam (0.9,
      0.999, 1e-8) with lr 3e-4, 10 warmup steps, linear decay over the last
      20% of steps; W_dec rows renormalised after each step. Batches are read
      from the host array each step (as our trainer uploads them).
      --decode sparse: the decoder is sparsify's F.embedding_bag(idx, W_dec,
      per_sample_weights=vals, mode="sum") gather-sum instead of a dense GEMM.
  torch_sae.py gemm --n 8192 --reps 10     torch.mm TFLOP/s
  torch_sae.py mmcs --data-a A.npy --data-b B.npy   (or --m M --d D, random)
      MMCS by blocks of rows: normalise, A_blk @ B^T, row max, running
      column max; timed from host arrays (copies included), as ours.
  torch_sae.py gen --out X.npy --rows N --d D [--seed S]   float32 N(0,1) data
"""
import argparse
import json
import sys
import time

import numpy as np


DEV = "cuda"


def need_torch():
    try:
        import torch
    except ImportError:
        print("skipped: no PyTorch")
        sys.exit(77)
    if DEV == "cuda" and not torch.cuda.is_available():
        print("skipped: no GPU")
        sys.exit(77)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def device_name(torch):
    if DEV != "cuda":
        return DEV
    p = torch.cuda.get_device_properties(0)
    return "%s (torch %s, CUDA %s)" % (p.name, torch.__version__, torch.version.cuda)


def sync(torch):
    if DEV == "cuda":
        torch.cuda.synchronize()


def lr_at(t, steps, lr=3e-4, warmup=10, decay_frac=0.2):
    f = min(1.0, (t + 1) / warmup) if warmup > 0 else 1.0
    s0 = steps - int(decay_frac * steps)
    if t >= s0:
        f *= (steps - t) / (steps - s0)
    return lr * f


def topk_acts(torch, pre, k):
    vals, idx = pre.topk(k, dim=1)
    return torch.zeros_like(pre).scatter_(1, idx, vals.clamp_min(0))


def train_one(torch, args, data_host, seed):
    dev = DEV
    g = torch.Generator(device=dev).manual_seed(seed)
    d, m, k, B = args.d, args.m, args.k, args.batch
    W_dec = torch.randn(m, d, device=dev, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_dec.requires_grad_(True)
    W_enc = W_dec.detach().t().clone().requires_grad_(True)
    b_enc = torch.zeros(m, device=dev, requires_grad=True)
    b_dec = torch.zeros(d, device=dev, requires_grad=True)
    params = [W_enc, b_enc, W_dec, b_dec]
    total = args.warmup + args.steps
    opt = torch.optim.Adam(params, lr=3e-4, betas=(0.9, 0.999), eps=1e-8)
    since = torch.zeros(m, device=dev)
    dead_after, aux_k, aux_coeff = 1e7, d // 2, 1.0 / 32.0
    nb = data_host.shape[0] // B
    t0 = None
    loss = None
    for t in range(total):
        if t == args.warmup:
            sync(torch)
            t0 = time.perf_counter()
        x = torch.from_numpy(data_host[(t % nb) * B:(t % nb + 1) * B]).to(dev)
        pre = (x - b_dec) @ W_enc + b_enc
        if args.decode == "sparse":
            # sparsify's decoder: a gather-sum of the k active rows of W_dec
            vals, idx = pre.topk(k, dim=1)
            vals = vals.clamp_min(0)
            xhat = torch.nn.functional.embedding_bag(idx, W_dec, per_sample_weights=vals,
                                                     mode="sum") + b_dec
            acts = torch.zeros_like(pre).scatter_(1, idx, vals.detach())
        else:
            acts = topk_acts(torch, pre, k)
            xhat = acts @ W_dec + b_dec
        e = xhat - x
        loss = e.pow(2).sum(1).mean()
        # no latent can be dead before t * B samples reach dead_after: skip the
        # host sync of counting them until then (exact, not an approximation)
        n_dead = 0
        if t * B >= dead_after:
            dead = (since * B >= dead_after) & (since >= 1)
            n_dead = int(dead.sum().item())
        if n_dead > 0:  # AuxK (inactive with the default dead_after in short runs)
            ka = min(aux_k, n_dead)
            aux_acts = topk_acts(torch, pre.masked_fill(~dead, float("-inf")), ka)
            err = (x - xhat).detach()
            ehat = aux_acts @ W_dec
            denom = (err - err.mean(0)).pow(2).sum()
            loss = loss + aux_coeff * (ehat - err).pow(2).sum() / denom
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            gW = W_dec.grad
            gW -= (gW * W_dec).sum(1, keepdim=True) / (W_dec * W_dec).sum(1, keepdim=True) * W_dec
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            for group in opt.param_groups:
                group["lr"] = lr_at(t, total)
            opt.step()
            W_dec /= W_dec.norm(dim=1, keepdim=True)
            fired = (acts != 0).any(0)
            since = torch.where(fired, torch.zeros_like(since), since + 1)
    final = loss.item()
    sync(torch)
    dt = time.perf_counter() - t0
    return dt, final


def cmd_train(args):
    torch = need_torch()
    if args.data:
        data = np.load(args.data, mmap_mode="r")
        data = np.ascontiguousarray(data, dtype=np.float32)
    else:
        data = np.random.default_rng(7).standard_normal((4 * args.batch, args.d), dtype=np.float32)
    t_all = time.perf_counter()
    sps = []
    for seed in range(1, args.seeds + 1):
        dt, final = train_one(torch, args, data, seed)
        sps.append(args.steps * args.batch / dt)
        print(json.dumps({"bench": "train", "backend": "torch", "device": device_name(torch),
                          "arch": "topk", "decode": args.decode, "d": args.d, "m": args.m, "k": args.k,
                          "batch": args.batch, "seed": seed, "steps": args.steps,
                          "seconds": dt, "samples_per_s": sps[-1],
                          "ms_per_step": 1e3 * dt / args.steps, "final_loss": final}), flush=True)
    if args.seeds > 1:
        print(json.dumps({"bench": "train_seeds_sequential", "backend": "torch",
                          "decode": args.decode,
                          "seeds": args.seeds, "steps_per_seed": args.steps,
                          "warmup_per_seed": args.warmup,
                          "total_seconds": time.perf_counter() - t_all,
                          "mean_samples_per_s": sum(sps) / len(sps)}), flush=True)


def cmd_gemm(args):
    torch = need_torch()
    n = args.n
    a = torch.full((n, n), 0.5, device=DEV)
    b = torch.full((n, n), 0.25, device=DEV)
    torch.mm(a, b)
    sync(torch)
    t0 = time.perf_counter()
    for _ in range(args.reps):
        c = torch.mm(a, b)
    sync(torch)
    dt = time.perf_counter() - t0
    del c
    print(json.dumps({"bench": "sgemm_peak", "backend": "torch", "n": n, "reps": args.reps,
                      "seconds": dt, "tflops": 2.0 * n ** 3 * args.reps / dt / 1e12}))


def mmcs_torch(torch, A_host, B_host, tile=64 << 20):
    A = torch.from_numpy(A_host).to(DEV)
    B = torch.from_numpy(B_host).to(DEV)
    A = (A.double() / A.double().norm(dim=1, keepdim=True)).float()
    B = (B.double() / B.double().norm(dim=1, keepdim=True)).float()
    m1, m2 = A.shape[0], B.shape[0]
    R = max(1, min(m1, tile // m2))
    rowmax = torch.empty(m1, device=DEV)
    colmax = torch.full((m2,), float("-inf"), device=DEV)
    for i0 in range(0, m1, R):
        S = A[i0:i0 + R] @ B.t()
        rowmax[i0:i0 + R] = S.max(1).values
        colmax = torch.maximum(colmax, S.max(0).values)
    ab = rowmax.double().mean().item()
    ba = colmax.double().mean().item()
    return ab, ba


def cmd_mmcs(args):
    torch = need_torch()
    if args.data_a and args.data_b:
        A = np.ascontiguousarray(np.load(args.data_a), dtype=np.float32)
        B = np.ascontiguousarray(np.load(args.data_b), dtype=np.float32)
    else:
        r = np.random.default_rng(3)
        A = r.standard_normal((args.m, args.d), dtype=np.float32)
        B = r.standard_normal((args.m, args.d), dtype=np.float32)
    mmcs_torch(torch, A[:256], B[:256])  # warm-up
    sync(torch)
    t0 = time.perf_counter()
    ab, ba = mmcs_torch(torch, A, B)
    sync(torch)
    dt = time.perf_counter() - t0
    print(json.dumps({"bench": "mmcs", "backend": "torch", "m1": A.shape[0], "m2": B.shape[0],
                      "d": A.shape[1], "seconds": dt, "mmcs": (ab + ba) / 2, "mmcs_ab": ab,
                      "mmcs_ba": ba}))


def cmd_gen(args):
    x = np.random.default_rng(args.seed).standard_normal((args.rows, args.d), dtype=np.float32)
    np.save(args.out, x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "gemm", "mmcs", "gen"])
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--m", type=int, default=1024)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--decode", choices=["dense", "sparse"], default="dense")
    p.add_argument("--data")
    p.add_argument("--data-a")
    p.add_argument("--data-b")
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--rows", type=int, default=16384)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--device", default="cuda")  # "cpu": smoke test of the script only
    args = p.parse_args()
    global DEV
    DEV = args.device
    {"train": cmd_train, "gemm": cmd_gemm, "mmcs": cmd_mmcs, "gen": cmd_gen}[args.mode](args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch CPU reference of engine/train.c's TopK SAE step, for throughput.

Same model and update as the engine (train.h): pre = (x - b_dec) W_enc + b_enc,
per-row top-k (ReLU'd), xhat = acts W_dec + b_dec, loss = mean over the batch
of the squared error summed over d_in; remove the gradient component parallel
to each decoder row, clip the global gradient norm to 1, Adam (lr 3e-4,
warmup 100 steps), renormalise decoder rows. AuxK is off in both (no latent is
dead within a few steps). Dense decoder GEMM, as in the engine.

usage: /usr/bin/python3 bench/bench_train_cpu.py [steps d_in d_sae k batch]
Threads: torch uses torch.get_num_threads() (set OMP_NUM_THREADS to match
the engine's OpenBLAS thread count).
"""
import sys
import time

import torch


def main():
    a = [int(v) for v in sys.argv[1:]]
    steps, d, m, k, batch = (a + [10, 128, 1024, 32, 4096][len(a):])[:5]
    torch.manual_seed(0)
    warm, n_batches = 2, 4
    data = torch.randn(n_batches, batch, d)
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
    for s in range(warm + steps):
        if s == warm:
            t0 = time.perf_counter()
        x = data[s % n_batches]
        pre = (x - b_dec) @ W_enc + b_enc
        val, idx = pre.topk(k, dim=1)
        acts = torch.zeros_like(pre).scatter(1, idx, torch.relu(val))
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
    print("torch %s cpu topk d_in=%d d_sae=%d k=%d batch=%d steps=%d: %.1f samples/s "
          "(%.1f ms/step, final mse %.4f, %d threads)"
          % (torch.__version__, d, m, k, batch, steps, steps * batch / dt, 1e3 * dt / steps,
             loss.item(), torch.get_num_threads()))


if __name__ == "__main__":
    main()

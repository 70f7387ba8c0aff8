#!/usr/bin/env python3
"""compare.py BENCH.jsonl [DEVICE-LINE] - summarise the JSON lines written by
bench_gpu_train (ours) and torch_sae.py (PyTorch) into the Markdown table
that goes into bench/RESULTS.md: samples/s and the ratio ours/PyTorch for
(a) the small TopK SAE and (b) the large one (ours on the dense and on the
sparse training path, the ratio taken with our faster one, each named; the
dense one with its fraction of the measured SGEMM peak), (c) MMCS times and values, (d) 5 seeds sequential and batched.
Lines that are not JSON (e.g. "skipped: ...") are ignored."""
import json
import sys
import time


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def pick(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def train_flops(d, m, batch):
    # six dense GEMMs of B x d x m per step (encoder, decoder, and their grads)
    return 6 * 2.0 * batch * d * m


def main():
    rows = load(sys.argv[1])
    device = sys.argv[2] if len(sys.argv) > 2 else "?"
    out = ["### GPU benchmarks (%s, %s)" % (time.strftime("%Y-%m-%d"), device), "",
           "| benchmark | ours | PyTorch eager | ratio ours/PyTorch | target |",
           "| --- | --- | --- | --- | --- |"]
    peak = pick(rows, bench="sgemm_peak", backend="cuda")
    peak_tf = peak[0]["tflops"] if peak else float("nan")
    for label, d, m, k, target in (("(a) TopK d=128 m=1024 k=32 B=4096", 128, 1024, 32, ">= 5x"),
                                   ("(b) TopK d=2304 m=65536 k=64 B=4096", 2304, 65536, 64, "-")):
        # ours: the dense and the sparse training path (bench_gpu_train --sparse 0|1; a
        # line without "decode" is from before the sparse path: dense); the ratio is
        # taken with OUR faster variant, named in the cell
        ours = {}
        for dec in ("dense", "sparse"):
            o = [r for r in pick(rows, bench="train", backend="cuda", d=d, m=m, k=k)
                 if r["seed"] == 1 and r.get("decode", "dense") == dec]
            if o:
                ours[dec] = (mean([r["samples_per_s"] for r in o]), o[0])
        so, mine = float("nan"), "-"
        for dec, (sps, _) in ours.items():
            if not sps <= so:
                so, mine = sps, dec
        # against the FASTER PyTorch variant (dense or sparse decode)
        st, which = float("nan"), "-"
        for dec in ("dense", "sparse"):
            t = [r for r in pick(rows, bench="train", backend="torch", d=d, m=m, k=k)
                 if r["seed"] == 1 and r.get("decode", "dense") == dec]
            if t and not mean([r["samples_per_s"] for r in t]) <= st:
                st, which = mean([r["samples_per_s"] for r in t]), dec
        parts = []
        for dec in ("dense", "sparse"):
            if dec not in ours:
                continue
            sps, r0 = ours[dec]
            extra = ""
            if dec == "dense" and d == 2304:  # six dense GEMMs: the fraction of the SGEMM peak
                tf = train_flops(d, m, r0["batch"]) / (r0["ms_per_step"] / 1e3) / 1e12
                extra = ", %.1f TFLOP/s = %.0f%% of measured SGEMM peak %.1f TFLOP/s" % (
                    tf, 100 * tf / peak_tf, peak_tf)
            parts.append("%s decode %.0f samples/s (%.1f ms/step%s)%s" % (
                dec, sps, r0["ms_per_step"], extra, ", the faster" if dec == mine and len(ours) > 1 else ""))
        cell = "; ".join(parts) if parts else "-"
        out.append("| %s | %s | %.0f samples/s (%s decode, the faster) | %.2fx (ours %s / torch %s) | %s |" % (
            label, cell, st, which, so / st if st else float("nan"), mine, which, target))
    mo = pick(rows, bench="mmcs", backend="cuda")
    mt = pick(rows, bench="mmcs", backend="torch")
    if mo or mt:
        so = mo[0]["seconds"] if mo else float("nan")
        st = mt[0]["seconds"] if mt else float("nan")
        vals = "MMCS ours %.9f, torch %.9f" % (mo[0]["mmcs"] if mo else float("nan"),
                                               mt[0]["mmcs"] if mt else float("nan"))
        out.append("| (c) MMCS m=%s d=%s (%s) | %.3f s | %.3f s | %.2fx faster | - |" % (
            (mo or mt)[0]["m1"], (mo or mt)[0]["d"], vals, so, st, st / so))
    so = pick(rows, bench="train_seeds_sequential", backend="cuda")
    stt = pick(rows, bench="train_seeds_sequential", backend="torch")
    sb = pick(rows, bench="train_seeds_batched", backend="cuda")
    if so:
        out.append("| (d) 5 seeds sequential, TopK d=128 m=1024 (ours: %s path) | %.3f s total | %s | %s | - |" % (
                       so[0].get("decode", "dense"), so[0]["total_seconds"],
                       "%.3f s total" % stt[0]["total_seconds"] if stt else "-",
                       "%.2fx" % (stt[0]["total_seconds"] / so[0]["total_seconds"]) if stt else "-"))
    if sb:
        b = sb[0]
        out.append("| (d') 5 seeds batched (one multi-seed trainer), same model | %.3f s total "
                   "(%.2fx our sequential; max final-loss diff %.3g) | %s | %s | batched >= 3x "
                   "sequential |" % (
                       b["total_seconds"], b["speedup_vs_sequential"],
                       b["max_final_loss_diff_vs_sequential"],
                       "%.3f s total (torch sequential)" % stt[0]["total_seconds"] if stt else "-",
                       "%.2fx" % (stt[0]["total_seconds"] / b["total_seconds"]) if stt else "-"))
    cpu = pick(rows, bench="train", backend="cpu")
    if cpu:
        out.append("")
        out.append("CPU backend, same model as (a): %.0f samples/s." % cpu[0]["samples_per_s"])
    if peak:
        tp = pick(rows, bench="sgemm_peak", backend="torch")
        out.append("Measured SGEMM peak (n=%d, FP32, no TF32): ours (cuBLAS) %.1f TFLOP/s%s." % (
            peak[0]["n"], peak_tf, ", torch.mm %.1f TFLOP/s" % tp[0]["tflops"] if tp else ""))
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""bench_metrics.py - cross-seed metrics on the CPU against NumPy / SciPy, interleaved.

  bench_metrics.py [--build DIR] [--reps N] mmcs M1 M2 D [--exact-too]
  bench_metrics.py [--build DIR] [--reps N] lsa N

mmcs: two random Gaussian dictionaries (seeded; B shares a noisy copy of a quarter of A's rows)
      are written to a temp dir; build/bench_metrics times lg_dict_similarity (MMCS only, method
      auto: the GEMM path at these sizes) and this script times the NumPy float64 reference
      (rows normalised in float64, S = A_tile @ B.T on 512-row tiles, row and column maxima).
      Repetitions alternate C, NumPy, C, NumPy... The values must agree to 1e-12.
      --exact-too also times the exact (pre-GEMM, one-thread) path once.
lsa:  an N x N matrix of uniform [0,1) costs; lg_hungarian_solve_max against
      scipy.optimize.linear_sum_assignment(maximize=True); totals must agree to 1e-9 relative.

Prints JSON lines: each timing, then a summary with the median seconds and the ratio
ours / reference (below 1 = ours faster). Exit 1 if the values disagree.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def c_run(tool, args):
    p = subprocess.run([tool] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("bench_metrics: %s failed (%d): %s" % (tool, p.returncode, p.stderr.strip()))
    return json.loads(p.stdout)


def numpy_mmcs(A, B, tile=512):
    An = A.astype(np.float64)
    An /= np.linalg.norm(An, axis=1, keepdims=True)
    Bn = B.astype(np.float64)
    Bn /= np.linalg.norm(Bn, axis=1, keepdims=True)
    rowmax = np.empty(An.shape[0])
    colmax = np.full(Bn.shape[0], -np.inf)
    for i in range(0, An.shape[0], tile):
        S = An[i:i + tile] @ Bn.T
        rowmax[i:i + tile] = S.max(axis=1)
        np.maximum(colmax, S.max(axis=0), out=colmax)
    return rowmax.mean(), colmax.mean()


def main():
    args = sys.argv[1:]
    build, reps, exact_too = "build", 3, False
    while args and args[0].startswith("--"):
        if args[0] == "--build":
            build = args[1]; args = args[2:]
        elif args[0] == "--reps":
            reps = int(args[1]); args = args[2:]
        else:
            sys.exit(__doc__)
    if "--exact-too" in args:
        exact_too = True
        args.remove("--exact-too")
    tool = os.path.join(build, "bench_metrics")
    rng = np.random.default_rng(12)
    ours, ref, ok = [], [], True
    with tempfile.TemporaryDirectory() as tmp:
        if args[:1] == ["mmcs"] and len(args) == 4:
            m1, m2, d = map(int, args[1:])
            A = rng.standard_normal((m1, d), dtype=np.float32)
            B = rng.standard_normal((m2, d), dtype=np.float32)
            q = min(m1, m2) // 4
            B[:q] = A[:q] + np.float32(0.3) * rng.standard_normal((q, d), dtype=np.float32)
            pa, pb = os.path.join(tmp, "A.f32"), os.path.join(tmp, "B.f32")
            A.tofile(pa)
            B.tofile(pb)
            for _ in range(reps):
                r = c_run(tool, ["mmcs", m1, m2, d, pa, pb])
                print(json.dumps(r), flush=True)
                ours.append(r["seconds"])
                t0 = time.perf_counter()
                ab, ba = numpy_mmcs(A, B)
                ref.append(time.perf_counter() - t0)
                print(json.dumps({"bench": "mmcs_numpy", "seconds": round(ref[-1], 4),
                                  "mmcs_ab": ab, "mmcs_ba": ba}), flush=True)
                if abs(r["mmcs_ab"] - ab) > 1e-12 or abs(r["mmcs_ba"] - ba) > 1e-12:
                    ok = False
                    print("MISMATCH: ours %r %r numpy %r %r" % (r["mmcs_ab"], r["mmcs_ba"], ab, ba))
            summary = {"bench": "mmcs_summary", "m1": m1, "m2": m2, "d": d}
            if exact_too:
                r = c_run(tool, ["mmcs", "--exact", m1, m2, d, pa, pb])
                print(json.dumps(r), flush=True)
                summary["exact_seconds"] = r["seconds"]
                ok = bool(ok and abs(r["mmcs_ab"] - ab) <= 1e-12 and abs(r["mmcs_ba"] - ba) <= 1e-12)
        elif args[:1] == ["lsa"] and len(args) == 2:
            from scipy import optimize
            n = int(args[1])
            ours_cpu, ref_cpu = [], []
            C = rng.random((n, n))
            pc = os.path.join(tmp, "C.f64")
            C.tofile(pc)
            for _ in range(reps):
                r = c_run(tool, ["lsa", n, pc])
                print(json.dumps(r), flush=True)
                ours.append(r["seconds"])
                ours_cpu.append(r["cpu_seconds"])
                c0, t0 = time.process_time(), time.perf_counter()
                ri, ci = optimize.linear_sum_assignment(C, maximize=True)
                ref.append(time.perf_counter() - t0)
                ref_cpu.append(time.process_time() - c0)
                total = C[ri, ci].sum()
                print(json.dumps({"bench": "lsa_scipy", "seconds": round(ref[-1], 4),
                                  "cpu_seconds": round(ref_cpu[-1], 4), "total": total}), flush=True)
                if abs(r["total"] - total) > 1e-9 * abs(total):
                    ok = False
                    print("MISMATCH: ours %r scipy %r" % (r["total"], total))
            summary = {"bench": "lsa_summary", "n": n,
                       "ours_cpu_median_s": round(statistics.median(ours_cpu), 4),
                       "ref_cpu_median_s": round(statistics.median(ref_cpu), 4),
                       "cpu_ratio_ours_to_ref": round(statistics.median(ours_cpu) / statistics.median(ref_cpu), 3)}
        else:
            sys.exit(__doc__)
    summary.update({"reps": reps, "ours_median_s": round(statistics.median(ours), 4),
                    "ref_median_s": round(statistics.median(ref), 4),
                    "ratio_ours_to_ref": round(statistics.median(ours) / statistics.median(ref), 3),
                    "values_agree": ok, "load": os.getloadavg()[0]})
    print(json.dumps(summary), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

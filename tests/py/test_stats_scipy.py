"""test_stats_scipy.py - gates/stats.c against scipy.stats (Debian python3-scipy).

Generates random samples (numpy, fixed seed), sends them to the stats_tool helper
($LEDGER_BUILD/stats_tool, one request per line) and compares every result:

* deterministic statistics (descriptive, t CDF/quantile, normal CDF/quantile,
  incomplete beta, Welch, paired t, Mann-Whitney asymptotic and exact,
  exact permutation test, t CI, effect sizes, Holm) must agree to
  |ours - ref| <= 1e-6 + 1e-6 |ref| (and tail p-values to 1e-6 relative);
* bootstrap intervals: (1) given OUR bootstrap distribution, the percentile and
  BCa endpoints must equal scipy's formulas applied to it (deterministic, 1e-9);
  (2) our interval and scipy.stats.bootstrap's (independent draws, B = 10000)
  must agree within 0.3 bootstrap standard errors, about 5 Monte Carlo sigmas
  of a 2.5 % percentile endpoint at B = 10000;
* Monte Carlo permutation p-values: within 5 sigma of scipy's (both noisy).

Exit 0 when everything agrees, 1 on any mismatch, 77 (skip) without scipy.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    from scipy import special, stats
except ImportError:  # pragma: no cover
    print("skip: numpy/scipy not available")
    sys.exit(77)

BUILD = os.environ.get("LEDGER_BUILD", "build")
TOOL = os.path.join(BUILD, "stats_tool")
if not os.path.exists(TOOL):
    print(f"FAIL: {TOOL} not built")
    sys.exit(1)

rng = np.random.default_rng(20251127)
requests = []   # (line, checker)
failures = []


def fmt(xs):
    return " ".join(repr(float(v)) for v in xs)


def close(a, b, atol=1e-6, rtol=1e-6):
    if np.isnan(b):
        return np.isnan(a)
    return abs(a - b) <= atol + rtol * abs(b)


def expect(name, got, ref, atol=1e-6, rtol=1e-6):
    if not close(got, ref, atol, rtol):
        failures.append(f"{name}: got {got!r}, scipy {ref!r}")


def add(line, checker):
    requests.append((line, checker))


def diffmean(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


ALTS = ["two-sided", "greater", "less"]

# ---- distributions --------------------------------------------------------------
for _ in range(60):
    a, b = rng.uniform(0.05, 60, 2)
    x = rng.uniform(0, 1)
    ref = special.betainc(a, b, x)
    add(f"betainc {a!r} {b!r} {x!r}", lambda r, a=a, b=b, x=x, ref=ref: expect(f"betainc({a},{b},{x})", r[0], ref))
for df in [0.5, 1, 2.3, 3, 5, 9.7, 17.8, 30, 100, 1234.5, 1e6]:
    for t in [-40, -7.5, -2.1, -0.3, 0, 0.01, 1, 1.96, 3.3, 8, 25, 300]:
        cdf, sf = stats.t.cdf(t, df), stats.t.sf(t, df)
        def chk(r, t=t, df=df, cdf=cdf, sf=sf):
            expect(f"t.cdf({t},{df})", r[0], cdf)
            expect(f"t.sf({t},{df})", r[1], sf)
            # tails keep relative precision (p-values like 1e-12 matter for Holm)
            expect(f"t.sf({t},{df}) rel", r[1], sf, atol=1e-300, rtol=1e-6)
        add(f"tcdf {t!r} {df!r}", chk)
    for p in [1e-10, 1e-4, 0.001, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999999]:
        q = stats.t.ppf(p, df)
        add(f"tq {p!r} {df!r}", lambda r, p=p, df=df, q=q: expect(f"t.ppf({p},{df})", r[0], q))
for z in [-38, -10, -3.1, -1, 0, 0.5, 1.644, 2.5, 6, 9]:
    add(f"ncdf {z!r}", lambda r, z=z: (expect(f"norm.cdf({z})", r[0], stats.norm.cdf(z)),
                                         expect(f"norm.cdf({z}) rel", r[0], stats.norm.cdf(z), 1e-300, 1e-6),
                                         expect(f"norm.sf({z})", r[1], stats.norm.sf(z), 1e-300, 1e-6)))
for p in [1e-300, 1e-15, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.9999]:
    add(f"nq {p!r}", lambda r, p=p: expect(f"norm.ppf({p})", r[0], stats.norm.ppf(p)))


# ---- samples ------------------------------------------------------------------
def sample(n, kind):
    if kind == 0:
        return rng.normal(rng.uniform(-2, 2), rng.uniform(0.1, 3), n)
    if kind == 1:
        return rng.exponential(rng.uniform(0.5, 2), n)
    return np.round(rng.normal(0, 1, n), 1)  # ties


for _ in range(40):
    x = sample(int(rng.integers(2, 50)), int(rng.integers(0, 3)))
    lvl = float(rng.choice([0.8, 0.9, 0.95, 0.99]))
    def chk_desc(r, x=x):
        expect("mean", r[0], np.mean(x))
        expect("sd", r[1], np.std(x, ddof=1))
        expect("se", r[2], stats.sem(x))
        expect("min", r[3], np.min(x))
        expect("max", r[4], np.max(x))
        expect("median", r[5], np.median(x))
    add(f"desc ; {fmt(x)}", chk_desc)
    lo, hi = stats.t.interval(lvl, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    add(f"tci {lvl} ; {fmt(x)}", lambda r, lo=lo, hi=hi: (expect("tci.lo", r[1], lo), expect("tci.hi", r[2], hi)))

for _ in range(45):
    na, nb = (int(v) for v in rng.integers(2, 40, 2))
    kind = int(rng.integers(0, 3))
    a, b = sample(na, kind), sample(nb, kind) + rng.uniform(-1, 1)
    alt = ALTS[_ % 3]
    w = stats.ttest_ind(a, b, equal_var=False, alternative=alt)
    add(f"welch {alt} ; {fmt(a)} ; {fmt(b)}",
        lambda r, w=w, alt=alt: (expect(f"welch.t {alt}", r[0], w.statistic), expect(f"welch.p {alt}", r[2], w.pvalue),
                                 expect(f"welch.p {alt} rel", r[2], w.pvalue, 1e-300, 1e-6)))
    bb = a + rng.normal(rng.uniform(-0.5, 0.5), 0.7, na)
    pt = stats.ttest_rel(a, bb, alternative=alt)
    add(f"paired {alt} ; {fmt(a)} ; {fmt(bb)}",
        lambda r, pt=pt, alt=alt, df=len(a) - 1: (expect(f"paired.t {alt}", r[0], pt.statistic),
                                                  expect(f"paired.p {alt}", r[2], pt.pvalue),
                                                  expect(f"paired.df {alt}", r[1], df)))
    d = np.mean(a) - np.mean(b)
    sp = np.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    add(f"effect ; {fmt(a)} ; {fmt(b)}", lambda r, d=d, sp=sp: (expect("mean_diff", r[0], d), expect("cohen_d", r[1], d / sp)))
    # Mann-Whitney: asymptotic (ties when kind == 2) and auto
    for method in ["asymptotic", "auto"]:
        m = stats.mannwhitneyu(a, b, alternative=alt, method=method)
        add(f"mwu {alt} {method} ; {fmt(a)} ; {fmt(b)}",
            lambda r, m=m, alt=alt, method=method: (expect(f"mwu.U {alt} {method}", r[0], m.statistic),
                                                    expect(f"mwu.p {alt} {method}", r[1], m.pvalue)))

for _ in range(30):  # exact Mann-Whitney, no ties
    na, nb = (int(v) for v in rng.integers(1, 13, 2))
    a, b = rng.normal(0.7, 1, na), rng.normal(0, 1, nb)
    alt = ALTS[_ % 3]
    m = stats.mannwhitneyu(a, b, alternative=alt, method="exact")
    add(f"mwu {alt} exact ; {fmt(a)} ; {fmt(b)}",
        lambda r, m=m, alt=alt: (expect(f"mwu exact U {alt}", r[0], m.statistic), expect(f"mwu exact p {alt}", r[1], m.pvalue),
                                 expect("mwu exact flag", r[2], 1)))
add("mwu greater exact ; 1 2 2 3 ; 0 1", lambda r: None if r == "error" else failures.append("exact MWU with ties must be an error"))

for _ in range(12):  # permutation: exact enumeration (C(n, k) <= resamples)
    na, nb = (int(v) for v in rng.integers(2, 7, 2))
    a, b = rng.normal(0.8, 1, na), rng.normal(0, 1, nb)
    alt = ALTS[_ % 3]
    res = stats.permutation_test((a, b), diffmean, vectorized=True, n_resamples=10000, alternative=alt)
    add(f"perm {alt} 10000 1 ; {fmt(a)} ; {fmt(b)}",
        lambda r, res=res, alt=alt: (expect(f"perm.stat {alt}", r[0], res.statistic),
                                     expect(f"perm.p exact {alt}", r[1], res.pvalue), expect("perm exact flag", r[2], 1)))
for _ in range(6):  # permutation: Monte Carlo
    na, nb = (int(v) for v in rng.integers(12, 30, 2))
    a, b = rng.normal(0.4, 1, na), rng.normal(0, 1, nb)
    alt = ALTS[_ % 3]
    B = 5000
    res = stats.permutation_test((a, b), diffmean, vectorized=True, n_resamples=B, alternative=alt, random_state=7)
    def chk_perm(r, res=res, alt=alt, B=B):
        p = res.pvalue
        tol = 5 * np.sqrt(2 * max(p * (1 - p), 1 / B) / B) * (2 if alt == "two-sided" else 1) + 2 / B
        if abs(r[1] - p) > tol:
            failures.append(f"perm MC {alt}: got {r[1]}, scipy {p}, tol {tol}")
        expect("perm MC flag", r[2], 0)
    add(f"perm {alt} {B} 3 ; {fmt(a)} ; {fmt(b)}", chk_perm)

for _ in range(10):  # Holm
    m = int(rng.integers(1, 12))
    p = rng.uniform(0, 0.2, m) ** 2
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    add(f"holm ; {fmt(p)}", lambda r, adj=adj: [expect("holm", r[i], adj[i]) for i in range(len(adj))])


# ---- bootstrap --------------------------------------------------------------------
def percentile_of_score(reps, theta):
    return (np.sum(reps < theta) + np.sum(reps <= theta)) / (2 * len(reps))


def bca_endpoints(samples, reps, level):
    """scipy's BCa formulas (scipy/stats/_resampling.py, _bca_interval), written out."""
    alpha = (1 - level) / 2
    theta = samples[0].mean() - (samples[1].mean() if len(samples) > 1 else 0)
    z0 = special.ndtri(percentile_of_score(reps, theta))
    nums, dens = 0.0, 0.0
    for j, s in enumerate(samples):
        n = len(s)
        loo = (s.sum() - s) / (n - 1)
        ji = (loo if j == 0 else -loo)
        u = (n - 1) * (ji.mean() - ji)
        nums += (u ** 3).sum() / n ** 3
        dens += (u ** 2).sum() / n ** 2
    a_hat = nums / (6 * dens ** 1.5)
    za = special.ndtri(alpha)
    a1 = special.ndtr(z0 + (z0 + za) / (1 - a_hat * (z0 + za)))
    a2 = special.ndtr(z0 + (z0 - za) / (1 - a_hat * (z0 - za)))
    return np.percentile(reps, 100 * a1), np.percentile(reps, 100 * a2)


for case in range(8):
    two = case % 2 == 1
    method = "bca" if case % 4 >= 2 else "percentile"
    a = rng.exponential(1.0, int(rng.integers(8, 30)))
    b = rng.exponential(0.7, int(rng.integers(8, 30))) if two else None
    level = 0.95 if case < 6 else 0.9
    samples = (a, b) if two else (a,)
    line = f"bootreps {method} {level} 10000 {case + 1} ; {fmt(a)}" + (f" ; {fmt(b)}" if two else "")
    stat = diffmean if two else (lambda x, axis=-1: np.mean(x, axis=axis))
    ref = stats.bootstrap(samples, stat, vectorized=True, n_resamples=10000, confidence_level=level,
                          method="BCa" if method == "bca" else "percentile", random_state=case + 100)
    def chk_boot(r, samples=samples, method=method, level=level, ref=ref, two=two):
        est, lo, hi, reps = r[0], r[1], r[2], np.array(r[3:])
        if len(reps) != 10000:
            failures.append(f"bootstrap: {len(reps)} replicates, wanted 10000")
            return
        theta = samples[0].mean() - (samples[1].mean() if two else 0)
        expect("boot est", est, theta)
        # (1) deterministic: scipy's formulas on our replicates
        if method == "percentile":
            rlo, rhi = np.percentile(reps, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
        else:
            rlo, rhi = bca_endpoints(samples, reps, level)
        expect(f"boot {method} lo (formula)", lo, rlo, 1e-9, 1e-9)
        expect(f"boot {method} hi (formula)", hi, rhi, 1e-9, 1e-9)
        # (2) Monte Carlo agreement with scipy.stats.bootstrap's own draws
        tol = (0.3 if method == "bca" else 0.25) * ref.standard_error
        for name, ours, theirs in [("lo", lo, ref.confidence_interval.low), ("hi", hi, ref.confidence_interval.high)]:
            if abs(ours - theirs) > tol:
                failures.append(f"boot {method} {name} (two={two}): got {ours}, scipy {theirs}, tol {tol}")
        # the replicates are a resampling distribution: their sd is the bootstrap SE
        if abs(np.std(reps, ddof=1) - ref.standard_error) > 0.05 * ref.standard_error:
            failures.append(f"boot SE: {np.std(reps, ddof=1)} vs scipy {ref.standard_error}")
    add(line, chk_boot)

# ---- run ----------------------------------------------------------------------------
inp = "\n".join(line for line, _ in requests) + "\n"
proc = subprocess.run([TOOL], input=inp, capture_output=True, text=True, timeout=120)
if proc.returncode != 0:
    print(f"FAIL: stats_tool exited {proc.returncode}: {proc.stderr}")
    sys.exit(1)
out = proc.stdout.splitlines()
if len(out) != len(requests):
    print(f"FAIL: {len(out)} answers for {len(requests)} requests")
    sys.exit(1)
for (line, checker), ans in zip(requests, out):
    if ans.startswith("error"):
        if line.startswith("mwu greater exact ; 1 2 2 3"):
            checker("error")
        else:
            failures.append(f"{line[:60]}...: {ans}")
        continue
    checker([float(v) for v in ans.split()])

for f in failures[:40]:
    print("FAIL", f)
print(f"{len(requests)} requests, {len(failures)} mismatches")
sys.exit(1 if failures else 0)

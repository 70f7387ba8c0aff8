#!/usr/bin/env python3
"""study_check.py GPU1.json GPU2.json CPU.json - study-level checks of issue 4
on the `ledger show RUN --json` manifests of one study run three times:
  determinism: the two GPU runs have identical output digests (every artifact:
               weights, maxcos arrays, results.json);
  parity:      every numeric metric of the GPU run is within
               |gpu - cpu| <= 0.02 + 0.05 |cpu| of the CPU run's (trained
               SAEs drift apart over thousands of steps in the last bits of
               the GEMMs, so metrics agree statistically, not bitwise;
               random-init controls agree to ~1e-6).
Prints one line per check and the worst differences; exit 1 on a failure."""
import json
import sys


def leaves(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(v, path + "/" + k)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, "%s[%d]" % (path, i))
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, float(x)


def main():
    g1, g2, c = (json.load(open(p)) for p in sys.argv[1:4])
    ok = True
    d1 = {o["name"]: o["sha256"] for o in g1["outputs"]}
    d2 = {o["name"]: o["sha256"] for o in g2["outputs"]}
    same = d1 == d2
    print("determinism: %d outputs, two GPU runs %s" % (len(d1), "IDENTICAL" if same else "DIFFER"))
    if not same:
        ok = False
        for k in sorted(set(d1) | set(d2)):
            if d1.get(k) != d2.get(k):
                print("  differs: %s" % k)
    lg = dict(leaves(g1["results"]))
    lc = dict(leaves(c["results"]))
    bad, worst = [], []
    for k, vc in lc.items():
        if k not in lg or "/params/" in k or k.endswith("/seed") or "seed_" in k:
            continue
        vg = lg[k]
        diff = abs(vg - vc)
        worst.append((diff, k, vg, vc))
        if not diff <= 0.02 + 0.05 * abs(vc):
            bad.append((diff, k, vg, vc))
    worst.sort(reverse=True)
    print("parity: %d metrics compared, %d outside 0.02 + 0.05|cpu|" % (len(worst), len(bad)))
    for diff, k, vg, vc in worst[:8]:
        print("  %-70s gpu %.6g cpu %.6g |diff| %.3g" % (k, vg, vc, diff))
    if bad:
        ok = False
    print("backends: gpu %s / cpu %s" % (g1.get("device"), c.get("device")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

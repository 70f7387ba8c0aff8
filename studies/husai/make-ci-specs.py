#!/usr/bin/env python3
"""make-ci-specs.py - the HUSAI studies of studies/husai/ resized for the CI activations.

    python3 studies/husai/make-ci-specs.py DATA_DIR OUT_DIR

Reads every studies/husai/*.json and writes OUT_DIR/<same file name> with the same study
name, seeds, controls and metrics, and these changes only (the CI transformer has
d_model=32, a quarter of 128, and p=23: 529 rows):
  data paths      ../../data/husai/p113/X  ->  DATA_DIR/X (absolute)
  d_sae, k        divided by 4 (k at least 1), in "sae" and in "grid"
  train.steps     150; train.warmup_steps 10; train.batch min(batch, 128)
(The claims filter conditions so that both sizes match: `by k`, `by d_sae`, `k<=4`.)
So the CI path runs the very study specs, claims and template of the full size, at a size
that trains in seconds. Needs only the Python standard library.
"""
import glob
import json
import os
import sys


def quarter(v, key):
    return max(1, v // 4) if key in ("d_sae", "k") else v


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    data_dir, out_dir = os.path.abspath(argv[1]), argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(here, "*.json"))):
        with open(path) as f:
            spec = json.load(f)
        d = spec["data"]
        d["path"] = os.path.join(data_dir, os.path.basename(d["path"]))
        if "ood" in d:
            d["ood"]["path"] = os.path.join(data_dir, os.path.basename(d["ood"]["path"]))
        for key in ("d_sae", "k"):
            if key in spec.get("sae", {}):
                spec["sae"][key] = quarter(spec["sae"][key], key)
            if key in spec.get("grid", {}):
                spec["grid"][key] = [quarter(v, key) for v in spec["grid"][key]]
        t = spec.setdefault("train", {})
        t["steps"], t["warmup_steps"] = 150, 10
        t["batch"] = min(t.get("batch", 128), 128)
        spec["description"] = "CI size (make-ci-specs.py): " + spec.get("description", "")
        with open(os.path.join(out_dir, os.path.basename(path)), "w") as f:
            json.dump(spec, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

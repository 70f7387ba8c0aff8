#!/usr/bin/env python3
"""test_tensor_formats.py - our .npy/.safetensors readers and writers against
NumPy (the reference) and against safetensors files written by hand here with
struct + json (the safetensors package is not installed), driven through
tests/tools/tensor_tool.c.

Checks: NumPy-written .npy (v1/v2/v3; f4/f2/f8; 1-D/2-D; all 65536 float16
bit patterns) read with identical values; Python-written safetensors (F32,
F16, BF16, F64, metadata, any key order) read with identical values; files we
write read back by NumPy / parsed here and checked against the format rules;
dataset digests equal sha256 of the file; the synthetic digest equals the
sha256 of the documented canonical text; mean and geometric median against
NumPy/SciPy; bad inputs exit 2 with one stderr line naming the file.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("LEDGER_BUILD", "")
TOOL = os.path.join(BUILD, "tensor_tool")
FAILED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILED.append(what)


def run(*args):
    p = subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def dump(path, name=None):
    """Values of a tensor as float32, plus dtype name and metadata."""
    rc, out, err = run("dump", path, *([name] if name else []))
    if rc != 0:
        raise RuntimeError("dump %s failed (%d): %s" % (path, rc, err))
    meta, dtype, shape, rows = {}, None, None, []
    for line in out.splitlines():
        if line.startswith("meta "):
            _, k, v = line.split(" ", 2)
            meta[k] = v
        elif line.startswith("dtype "):
            dtype = line.split()[1]
        elif line.startswith("shape"):
            shape = tuple(int(s) for s in line.split()[1:])
        else:
            rows.append([float(v) for v in line.split()])
    vals = np.array(rows, dtype=np.float64).astype(np.float32).reshape(shape)
    return dtype, vals, meta


def same_f32(a, b):
    """Bitwise equality of float32 arrays, NaNs equal to NaNs."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(a.view(np.uint32)[~nan], b.view(np.uint32)[~nan]))


def write_st(path, tensors, metadata=None, order=None, pad=True):
    """Hand-written safetensors: tensors = {name: (dtype, shape, raw bytes)}."""
    header, blobs, off = {}, [], 0
    names = order or list(tensors)
    for name in names:
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header = dict([("__metadata__", metadata)] + list(header.items())[::-1])
    h = json.dumps(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def parse_st(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return n, data[8:8 + n], data[8 + n:]


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def main():
    if not os.path.exists(TOOL):
        print("tensor_tool not built at %s" % TOOL)
        return 1
    rng = np.random.default_rng(20240611)
    tmp = tempfile.mkdtemp(prefix="lg-tensor-")
    P = lambda name: os.path.join(tmp, name)

    # ---- NumPy-written .npy read by us -------------------------------------------------
    a32 = rng.standard_normal((17, 5)).astype(np.float32)
    a32[0, 0] = np.float32(1e-42)  # a float32 subnormal survives
    np.save(P("a32.npy"), a32)
    dt, got, _ = dump(P("a32.npy"))
    check(dt == "F32" and same_f32(got, a32), "numpy f32 2-D .npy read exactly")

    a16 = (rng.standard_normal((9, 4)) * 100).astype(np.float16)
    np.save(P("a16.npy"), a16)
    dt, got, _ = dump(P("a16.npy"))
    check(dt == "F16" and same_f32(got, a16.astype(np.float32)), "numpy f16 .npy read exactly")

    a64 = rng.standard_normal((3, 7))
    np.save(P("a64.npy"), a64)
    dt, got, _ = dump(P("a64.npy"))
    check(dt == "F64" and same_f32(got, a64.astype(np.float32)), "numpy f64 .npy read (rounded to f32 like NumPy)")

    v = rng.standard_normal(11).astype(np.float32)
    np.save(P("v.npy"), v)
    dt, got, _ = dump(P("v.npy"))
    check(same_f32(got.reshape(-1), v), "numpy 1-D .npy read exactly")

    for ver in [(2, 0), (3, 0)]:
        with open(P("v%d.npy" % ver[0]), "wb") as f:
            np.lib.format.write_array(f, a32, version=ver)
        dt, got, _ = dump(P("v%d.npy" % ver[0]))
        check(same_f32(got, a32), "numpy .npy version %d.0 read exactly" % ver[0])

    # every float16 bit pattern, NumPy's conversion as the reference
    allh = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    np.save(P("allh.npy"), allh)
    dt, got, _ = dump(P("allh.npy"))
    check(same_f32(got, allh.astype(np.float32)), "all 65536 float16 patterns convert like NumPy")

    # ---- hand-written safetensors read by us -------------------------------------------
    w = rng.standard_normal((6, 3)).astype(np.float32)
    h = (rng.standard_normal((4, 2)) * 10).astype(np.float16)
    bbits = (rng.standard_normal((5, 4)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    bbits[0, 0] = 0x0001  # a bf16 subnormal
    d = rng.standard_normal((2, 2))
    tensors = {
        "w_dec": ("F32", w.shape, w.tobytes()),
        "half": ("F16", h.shape, h.tobytes()),
        "bf": ("BF16", bbits.shape, bbits.tobytes()),
        "dbl": ("F64", d.shape, d.tobytes()),
    }
    write_st(P("py.safetensors"), tensors, metadata={"format": "pt", "k": "4"}, order=["half", "w_dec", "dbl", "bf"])
    dt, got, meta = dump(P("py.safetensors"), "w_dec")
    check(dt == "F32" and same_f32(got, w), "python safetensors F32 read exactly")
    check(meta == {"format": "pt", "k": "4"}, "python safetensors metadata read")
    dt, got, _ = dump(P("py.safetensors"), "half")
    check(dt == "F16" and same_f32(got, h.astype(np.float32)), "python safetensors F16 read exactly")
    dt, got, _ = dump(P("py.safetensors"), "bf")
    check(dt == "BF16" and same_f32(got, bf16_to_f32(bbits)), "python safetensors BF16 read exactly")
    dt, got, _ = dump(P("py.safetensors"), "dbl")
    check(dt == "F64" and same_f32(got, d.astype(np.float32)), "python safetensors F64 read")
    write_st(P("nopad.safetensors"), {"x": tensors["w_dec"]}, pad=False)
    dt, got, _ = dump(P("nopad.safetensors"), "x")
    check(same_f32(got, w), "unpadded header accepted")
    # the dataset view of a bf16 tensor
    write_st(P("act.safetensors"), {"acts": tensors["bf"]})
    rc, out, err = run("check", P("act.safetensors"))
    check(rc == 0 and "rows 5\ndim 4\ndtype BF16" in out, "bf16 safetensors opens as a [5, 4] dataset")

    # ---- files we write, read by NumPy / checked against the format --------------------
    rc, _, err = run("npy2st", P("a32.npy"), P("ours.safetensors"), "acts")
    check(rc == 0, "npy2st runs")
    n, hdr, data = parse_st(P("ours.safetensors"))
    j = json.loads(hdr)
    check(n % 8 == 0 and hdr.rstrip(b" ").endswith(b"}"), "our header is padded with spaces to a multiple of 8")
    check(j["acts"] == {"dtype": "F32", "shape": [17, 5], "data_offsets": [0, 17 * 5 * 4]}, "our header entry")
    check(j["__metadata__"]["format"] == "pt", "our metadata")
    check(same_f32(np.frombuffer(data, dtype="<f4").reshape(17, 5), a32), "our safetensors data bytes")
    rc, _, err = run("st2npy", P("py.safetensors"), "half", P("half.npy"))
    check(rc == 0 and same_f32(np.load(P("half.npy")), h.astype(np.float32)), "our .npy read by NumPy (from F16)")
    rc, _, err = run("st2npy", P("py.safetensors"), "bf", P("bf.npy"))
    got = np.load(P("bf.npy"), mmap_mode="r")
    check(rc == 0 and got.dtype == np.float32 and same_f32(got, bf16_to_f32(bbits)), "our .npy mmap-loaded by NumPy")
    # several tensors: sorted by name, contiguous
    from_multi = P("multi.safetensors")
    write_st(from_multi, tensors, order=["w_dec", "half", "dbl", "bf"])
    for name in ["w_dec", "bf"]:
        run("st2npy", from_multi, name, P(name + ".npy"))
    rc, _, _ = run("npy2st", P("v.npy"), P("vec.safetensors"), "vec")
    n, hdr, data = parse_st(P("vec.safetensors"))
    check(rc == 0 and json.loads(hdr)["vec"]["shape"] == [11], "1-D tensor written with shape [11]")

    # ---- digests --------------------------------------------------------------------------
    for f in ["a32.npy", "a16.npy", "py.safetensors"]:
        rc, out, err = run("check", P(f), *(["w_dec"] if f.endswith("safetensors") else []))
        want = hashlib.sha256(open(P(f), "rb").read()).hexdigest()
        check(rc == 0 and ("digest " + want) in out, "digest of %s is sha256 of its bytes" % f)

    rc1, out1, _ = run("synth", 8, 32, 300, 3, 1.0, 42, P("s1.npy"), 0.05)
    rc2, out2, _ = run("synth", 8, 32, 300, 3, 1.0, 42, P("s2.npy"), 0.05)
    rc3, out3, _ = run("synth", 8, 32, 300, 3, 1.0, 43, P("s3.npy"), 0.05)
    check(rc1 == rc2 == rc3 == 0, "synth runs")
    b1, b2, b3 = (open(P(f), "rb").read() for f in ["s1.npy", "s2.npy", "s3.npy"])
    check(b1 == b2 and b1 != b3, "synthetic data: same seed identical bytes, other seed different")
    canon = ("ledger-synth-v1\nd=8\nn_features=32\nn_samples=300\nactive_mean=3\nzipf_exponent=1\n"
             "magnitude_mean=1\nmagnitude_std=0.25\nnoise_std=0.050000000000000003\nseed=42\n")
    check(out1.strip() == "digest " + hashlib.sha256(canon.encode()).hexdigest(),
          "synthetic digest is sha256 of the canonical config text")
    truth = np.load(P("s1.npy.truth.npy"))
    check(truth.shape == (32, 8) and np.allclose(np.linalg.norm(truth, axis=1), 1, atol=1e-6),
          "synthetic truth has unit rows (NumPy)")
    x = np.load(P("s1.npy"))
    check(x.shape == (300, 8) and np.isfinite(x).all(), "synthetic data loads in NumPy")

    # ---- mean and geometric median vs NumPy / SciPy --------------------------------------
    pts = rng.standard_normal((200, 3)).astype(np.float32)
    pts[:20] += 25.0  # a cluster of outliers pulls the mean, not the median
    np.save(P("pts.npy"), pts)
    rc, out, err = run("stats", P("pts.npy"))
    lines = dict((l.split()[0], np.array([float(t) for t in l.split()[1:]])) for l in out.splitlines())
    check(rc == 0 and np.allclose(lines["mean"], pts.astype(np.float64).mean(axis=0), rtol=0, atol=1e-12),
          "dataset mean equals NumPy's (float64)")
    try:
        from scipy.optimize import minimize
        f = lambda y: np.linalg.norm(pts.astype(np.float64) - y, axis=1).sum()
        ref = minimize(f, np.median(pts, axis=0), method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).x
        check(np.allclose(lines["median"], ref, atol=1e-4) and f(lines["median"]) <= f(ref) + 1e-6,
              "geometric median equals SciPy's minimiser of the sum of distances")
    except ImportError:
        # SciPy is a declared test dependency (tests/install-deps.sh): fail, do not drop the check
        check(False, "SciPy is installed (the geometric-median reference needs scipy.optimize.minimize)")

    # ---- bad inputs: exit 2, one line naming the file ---------------------------------
    def expect_bad(path, what, want, name=None):
        rc, out, err = run("check", path, *([name] if name else []))
        lines = err.strip().splitlines()
        ok = rc == 2 and len(lines) == 1 and os.path.basename(path) in lines[0] and want in lines[0]
        check(ok, "bad input: %s (exit %d: %s)" % (what, rc, err.strip()))

    raw = open(P("a32.npy"), "rb").read()
    open(P("trunc.npy"), "wb").write(raw[:-3])
    expect_bad(P("trunc.npy"), "truncated .npy", "truncated")
    open(P("magic.npy"), "wb").write(b"\x93NUMPX" + raw[6:])
    expect_bad(P("magic.npy"), "bad magic", "not a .npy file (bad magic)")
    open(P("junk.bin"), "wb").write(b"hello, world, not a tensor")
    expect_bad(P("junk.bin"), "unknown format", "neither a .npy nor a .safetensors file")
    np.save(P("int.npy"), np.zeros((2, 2), dtype=np.int32))
    expect_bad(P("int.npy"), "wrong .npy dtype", "'<i4' not supported")
    np.save(P("big.npy"), np.zeros((2, 2), dtype=">f4"))
    expect_bad(P("big.npy"), "big-endian .npy", "'>f4' not supported")
    np.save(P("fort.npy"), np.asfortranarray(np.zeros((2, 3), dtype=np.float32)))
    expect_bad(P("fort.npy"), "fortran order", "fortran_order")
    nan = a32.copy()
    nan[4, 3] = np.nan
    np.save(P("nan.npy"), nan)
    expect_bad(P("nan.npy"), "NaN inside .npy", "row 4, column 3: NaN")
    inf16 = a16.copy()
    inf16[8, 1] = np.inf
    np.save(P("inf16.npy"), inf16)
    expect_bad(P("inf16.npy"), "Inf inside f16 .npy", "row 8, column 1: infinite")
    write_st(P("over.safetensors"), {"a": ("F32", [2], b"\0" * 8)})
    n, hdr, data = parse_st(P("over.safetensors"))
    hj = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    h2 = json.dumps(hj).encode()
    open(P("over.safetensors"), "wb").write(struct.pack("<Q", len(h2)) + h2 + b"\0" * 8)
    expect_bad(P("over.safetensors"), "overlapping offsets", "overlap", "a")
    write_st(P("u8.safetensors"), {"a": ("U8", [4], b"\0" * 4)})
    expect_bad(P("u8.safetensors"), "unsupported safetensors dtype", "unsupported dtype 'U8'")
    write_st(P("tr.safetensors"), {"a": tensors["w_dec"]})
    raw = open(P("tr.safetensors"), "rb").read()
    open(P("tr.safetensors"), "wb").write(raw[:-1])
    expect_bad(P("tr.safetensors"), "truncated safetensors", "truncated")
    open(P("hdr.safetensors"), "wb").write(struct.pack("<Q", 1 << 40) + b"{}")
    expect_bad(P("hdr.safetensors"), "header too large", "exceeds the limit")
    bad_nan = np.array([[1.0, np.nan]], dtype=np.float32)
    write_st(P("nan.safetensors"), {"a": ("F32", bad_nan.shape, bad_nan.tobytes())})
    expect_bad(P("nan.safetensors"), "NaN inside safetensors", "row 0, column 1: NaN")

    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

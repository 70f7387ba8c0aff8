#!/usr/bin/env python3
"""extract_activations.py - dump a PyTorch model's activations for `ledger run`.

Optional tooling (not a build dependency): it needs PyTorch and NumPy and exits 2 with a
clear message when either is missing.

It runs a model over an input tensor, records the output of one submodule (a forward
hook on `model.get_submodule(HOOK)`), flattens it to rows [N, d] and writes

  OUT.npy or OUT.safetensors   the activations (float32, float16 or bfloat16; the
                               safetensors file holds one tensor named "acts" and a
                               __metadata__ of strings: model, hook_name, ...)
  OUT.json                     metadata: the model, hook, shapes, dtype, the file's
                               SHA-256 (what `ledger run` records as the data digest) and
                               a ready "data" section for a study spec
  --study SPEC.json            optionally, a whole study spec around that data section

Models are given either as a TorchScript file (`--model m.pt`, torch.jit.load) or as a
Python factory (`--factory package.module:function`, called with no arguments, returning an
nn.Module with its weights loaded). Inputs come from a .npy file (`--inputs x.npy`, token
ids or float features; batched along the first axis).

Example:
  python3 studies/tools/extract_activations.py --factory mypkg.models:load_model \\
      --inputs tokens.npy --hook blocks.0.hook_resid_post --out acts/layer0 \\
      --format safetensors --dtype float32 --study studies/my-study.json
  ledger run studies/my-study.json
"""
import argparse
import hashlib
import importlib
import json
import os
import struct
import sys


def need(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.stderr.write(f"{os.path.basename(sys.argv[0])}: this optional tool needs {module}, which is not "
                         f"installed (Debian: apt install python3-{'torch' if module == 'torch' else module}; "
                         f"or pip install {module})\n")
        sys.exit(2)


ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def tensor_bytes(t, dtype):
    """Little-endian bytes of a torch tensor in the requested dtype (bfloat16 via its bits)."""
    torch = need("torch")
    t = t.detach().to("cpu").contiguous()
    if dtype == "bfloat16":
        # reinterpret the bfloat16 bits as int16 so NumPy can serialise them
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    np_dtype = {"float32": "<f4", "float16": "<f2"}[dtype]
    return t.to(torch.float32).numpy().astype(np_dtype).tobytes()


def write_safetensors(path, name, data, shape, dtype, metadata):
    """A minimal safetensors writer: u64 header length, JSON header, data (one tensor)."""
    head = {"__metadata__": {k: str(v) for k, v in metadata.items()},
            name: {"dtype": ST_DTYPES[dtype], "shape": list(shape), "data_offsets": [0, len(data)]}}
    h = json.dumps(head, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)  # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_npy(path, data, shape, dtype):
    """.npy v1.0 (bfloat16 has no NumPy dtype: use safetensors for it)."""
    if dtype == "bfloat16":
        raise SystemExit("bfloat16 needs --format safetensors (.npy has no bfloat16)")
    descr = {"float32": "<f4", "float16": "<f2"}[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def save_activations(acts, out, fmt, dtype, metadata, study_path=None, study_name=None, seeds=(1, 2, 3)):
    """acts: torch tensor [N, d]. Writes OUT.<fmt> + OUT.json (+ a study spec); returns the metadata dict."""
    torch = need("torch")
    if acts.dim() != 2 or acts.shape[0] < 2 or acts.shape[1] < 1:
        raise SystemExit(f"activations must be [N >= 2, d >= 1], got {list(acts.shape)}")
    if not bool(torch.isfinite(acts).all()):
        raise SystemExit("activations contain NaN or Inf: refusing to write them (ledger would reject them)")
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    path = f"{out}.{ 'npy' if fmt == 'npy' else 'safetensors'}"
    data = tensor_bytes(acts, dtype)
    if fmt == "npy":
        write_npy(path, data, acts.shape, dtype)
    else:
        write_safetensors(path, "acts", data, acts.shape, dtype, metadata)
    meta = dict(metadata)
    meta.update({"format": 1, "file": os.path.basename(path),
                 "n_rows": int(acts.shape[0]), "d": int(acts.shape[1]), "dtype": dtype, "sha256": sha256_file(path),
                 "mean_norm": float(acts.float().norm(dim=1).mean())})
    data_section = {"source": "file", "path": None, "eval_fraction": 0.1}
    if fmt == "safetensors":
        meta["tensor"] = data_section["tensor"] = "acts"
    if study_path:
        data_section["path"] = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(study_path)))
    else:
        data_section["path"] = os.path.abspath(path)
    meta["study_data"] = data_section
    with open(f"{out}.json", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    if study_path:
        d = int(acts.shape[1])
        spec = {"format": 1, "name": study_name or os.path.splitext(os.path.basename(study_path))[0],
                "description": f"SAEs on {meta.get('model', 'a model')} {meta.get('hook_name', '')} activations "
                               f"({meta['n_rows']} rows, d={d}); data sha256 {meta['sha256']}",
                "data": data_section,
                "sae": {"arch": "topk", "d_sae": 4 * d, "k": max(1, min(32, d // 4))},
                "train": {"steps": 2000, "batch": min(1024, max(1, int(0.9 * meta['n_rows']) // 2))},
                "seeds": list(seeds), "controls": {"random_init": True}}
        with open(study_path, "w") as f:
            json.dump(spec, f, indent=2)
            f.write("\n")
    return meta


def add_target_to_study(study_path, tmeta):
    """Adds data.target (the file save_activations wrote for tmeta) to the spec at study_path and a
    grid over sae.transcoder, so the study trains an SAE arm and a transcoder arm at equal compute
    (engine/transcoder.h). Does nothing without a study."""
    if not study_path:
        return
    with open(study_path) as f:
        spec = json.load(f)
    tpath = tmeta["study_data"]["path"]  # absolute: save_activations wrote it without a study
    target = {"path": os.path.relpath(tpath, os.path.dirname(os.path.abspath(study_path)))}
    if "tensor" in tmeta["study_data"]:
        target["tensor"] = tmeta["study_data"]["tensor"]
    spec["data"]["target"] = target
    spec["grid"] = {"transcoder": [False, True]}
    spec["description"] += f"; transcoder target {tmeta.get('hook_name', '')} sha256 {tmeta['sha256']}"
    with open(study_path + ".tmp", "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    os.replace(study_path + ".tmp", study_path)


def load_model(args):
    torch = need("torch")
    if args.model:
        return torch.jit.load(args.model, map_location="cpu")
    mod, _, fn = args.factory.partition(":")
    if not fn:
        raise SystemExit("--factory must be package.module:function")
    sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(mod), fn)()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="TorchScript file (torch.jit.load)")
    src.add_argument("--factory", help="package.module:function returning the nn.Module")
    p.add_argument("--inputs", required=True, help=".npy of inputs (token ids or features), batched on axis 0")
    p.add_argument("--hook", required=True, help="submodule name, e.g. blocks.0.hook_resid_post or layers.3.mlp")
    p.add_argument("--target-hook", help="also capture this submodule's output for the same rows into "
                                         "OUT-target.<format>: a transcoder's target (e.g. --hook blocks.0.ln2 "
                                         "--target-hook blocks.0.mlp); with --study the spec gets data.target "
                                         "and a grid over sae.transcoder")
    p.add_argument("--position", type=int, default=None, help="keep one sequence position (e.g. -1); default all")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--out", required=True, help="output path without extension")
    p.add_argument("--format", choices=["npy", "safetensors"], default="safetensors")
    p.add_argument("--dtype", choices=sorted(ST_DTYPES), default="float32")
    p.add_argument("--study", help="also write a study spec around the activations")
    p.add_argument("--study-name")
    args = p.parse_args(argv)
    torch = need("torch")
    np = need("numpy")

    model = load_model(args).eval()
    mods = []
    for opt, name in (("--hook", args.hook), ("--target-hook", args.target_hook)):
        if name is None:
            continue
        try:
            mods.append(model.get_submodule(name))
        except AttributeError:
            raise SystemExit(f"{opt} {name}: the model has no such submodule")
    inputs = torch.from_numpy(np.load(args.inputs))
    captured = [[] for _ in mods]

    def make_hook(dst):
        def hook(_module, _inp, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if args.position is not None:
                if out.dim() < 3:
                    raise SystemExit("--position needs a [batch, seq, d] activation")
                out = out[:, args.position]
            dst.append(out.detach().reshape(-1, out.shape[-1]).float().cpu())
        return hook

    handles = [m.register_forward_hook(make_hook(dst)) for m, dst in zip(mods, captured)]
    with torch.no_grad():
        for i in range(0, inputs.shape[0], args.batch):
            model(inputs[i:i + args.batch])
    for h in handles:
        h.remove()
    acts = torch.cat(captured[0], dim=0)
    meta = {"model": args.model or args.factory, "hook_name": args.hook, "inputs": os.path.basename(args.inputs),
            "inputs_sha256": sha256_file(args.inputs), "torch_version": torch.__version__,
            "position": "all" if args.position is None else args.position}
    meta = save_activations(acts, args.out, args.format, args.dtype, meta, args.study, args.study_name)
    if args.target_hook:
        tacts = torch.cat(captured[1], dim=0)
        if tacts.shape[0] != acts.shape[0]:
            raise SystemExit(f"--target-hook {args.target_hook}: {tacts.shape[0]} rows, --hook gave {acts.shape[0]}")
        tmeta = dict(meta, hook_name=args.target_hook, input_hook_name=args.hook)
        for k in ("study_data", "file", "sha256", "n_rows", "d", "mean_norm", "tensor"):
            tmeta.pop(k, None)
        tmeta = save_activations(tacts, args.out + "-target", args.format, args.dtype, tmeta)
        add_target_to_study(args.study, tmeta)
    print(json.dumps({k: meta[k] for k in ("file", "n_rows", "d", "dtype", "sha256")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

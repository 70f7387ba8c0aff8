#!/usr/bin/env python3
"""modular_arith.py - train the small modular-arithmetic transformer and dump its activations.

The HUSAI seed-consistency study trained its SAEs on the activations of a one-layer
transformer that learned (a + b) mod p (the grokking setting of Nanda et al. 2023). This
script reproduces that setting without downloads: it trains the transformer from a seed,
then dumps the residual stream (or the MLP hidden layer) at the "=" position for all p^2
inputs, with the metadata and a study spec for `ledger run`.

Model (defaults follow the grokking setup): tokens [a, b, =] with a, b in [0, p) and "="
the token p; learned token and position embeddings (d_model), one pre-LN-free block of
multi-head attention (n_heads) and a ReLU MLP (d_mlp), an unembedding to p logits read
at the last position. Trained full-batch with AdamW (lr 1e-3, weight decay 1.0, betas
0.9/0.98) on a random train_frac of the p^2 pairs; test accuracy is reported.

Optional tooling: needs PyTorch (exits 2 with a clear message when it is missing).
Deterministic for a given seed on the CPU (torch.use_deterministic_algorithms).

Example (the HUSAI size: p=113, d_model=128; a few minutes on a GPU, longer on a CPU):
  python3 studies/tools/modular_arith.py --out data/modarith --study studies/husai-modarith.json
  ledger run studies/husai-modarith.json
Tiny smoke run:
  python3 studies/tools/modular_arith.py --p 13 --d-model 32 --steps 50 --out /tmp/ma
Other hooks of a trained model, without training it again (--load-model; the sizes and --seed it
was trained with):
  python3 studies/tools/modular_arith.py --train-frac 0.8 --load-model data/husai/p113/model.pt \
      --hook mlp_in --target-hook mlp_out --out data/husai/p113/mlp
Transcoder data (engine/transcoder.h): the MLP's input and its output for the same rows,
OUT.npy and OUT-target.npy, and a study comparing an SAE arm with a transcoder arm:
  python3 studies/tools/modular_arith.py --hook mlp_in --target-hook mlp_out --out data/ma-mlp \
      --study studies/modarith-transcoder.json
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract_activations import add_target_to_study, need, save_activations  # noqa: E402


def build_model(torch, p, d_model, n_heads, d_mlp):
    nn = torch.nn
    d_head = d_model // n_heads

    class Block(nn.Module):
        """Multi-head attention read at the "=" position, then a ReLU MLP, no LayerNorm.

        Every input row is [embed[tok] + pos[j] for j, tok in enumerate(tokens)], so the query,
        key and value of a row are rows of the projections of one small table: the embedding of
        every token at every position, [3 * (p + 1), d_model]. The block projects that table
        once per forward pass and gathers each sample's rows from it: the same function as
        projecting each sample's three rows, for a few percent of the work (the MLP's GEMMs
        remain). Only the "=" position feeds the logits, so only its query, residual and MLP are
        computed."""

        def __init__(self):
            super().__init__()
            self.q = nn.Linear(d_model, d_model)
            self.k = nn.Linear(d_model, d_model)
            self.v = nn.Linear(d_model, d_model)
            self.o = nn.Linear(d_model, d_model)
            self.mlp_in = nn.Linear(d_model, d_mlp)
            self.mlp_out = nn.Linear(d_mlp, d_model)
            self.hook_resid_mid = nn.Identity()
            self.hook_mlp_post = nn.Identity()
            self.hook_resid_post = nn.Identity()

        def forward(self, table, rows):                                # table [T, d_model]; rows [B, 3] into it
            B = rows.shape[0]
            last = rows[:, -1]                                         # the "=" position's table row [B]
            gather = torch.nn.functional.embedding                     # rows of a table; a plain backward
            q = gather(last, self.q(table)).view(B, n_heads, d_head)   # [B, H, dh]
            k = gather(rows, self.k(table)).view(B, 3, n_heads, d_head)  # [B, 3, H, dh]
            v = gather(rows, self.v(table)).view(B, 3, n_heads, d_head)  # [B, 3, H, dh]
            # three keys per query: elementwise products, not a batch of tiny GEMMs
            w = torch.softmax((q.unsqueeze(1) * k).sum(-1) / d_head ** 0.5, dim=1)  # [B, 3, H]
            a = (w.unsqueeze(-1) * v).sum(1).reshape(B, 1, d_model)   # [B, 1, d_model]
            r = self.hook_resid_mid(gather(last, table).unsqueeze(1) + self.o(a))  # [B, 1, d_model]
            h = self.hook_mlp_post(torch.relu(self.mlp_in(r)))         # [B, 1, d_mlp]
            return self.hook_resid_post(r + self.mlp_out(h))           # [B, 1, d_model]

    class ModAdd(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(p + 1, d_model)
            self.pos = nn.Parameter(torch.randn(3, d_model) / d_model ** 0.5)
            self.block = Block()
            self.unembed = nn.Linear(d_model, p, bias=False)

        def forward(self, tokens):                                     # tokens [B, 3]
            table = (self.pos[:, None, :] + self.embed.weight[None, :, :]).reshape(3 * (p + 1), d_model)
            rows = tokens + torch.arange(3) * (p + 1)                  # row of (position j, token) in the table
            return self.unembed(self.block(table, rows)[:, -1])        # logits [B, p]

    return ModAdd()


def load_state(torch, model, path):
    """Load a --save-model state_dict into the freshly built model; returns the file's SHA-256.
    A missing file, another format or other sizes exit 2 with one line naming the file."""
    import hashlib
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        # weights_only: a state_dict is tensors in dicts; refuse pickled code (PyTorch >= 1.13). An
        # older torch.load would run whatever code the pickle carries: refused, not loaded unsafely.
        import inspect
        if "weights_only" not in inspect.signature(torch.load).parameters:
            sys.stderr.write(f"modular_arith.py: --load-model {path}: this PyTorch ({torch.__version__}) has no "
                             f"torch.load(weights_only=True), which --load-model needs (PyTorch >= 1.13)\n")
            sys.exit(2)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # OSError, unpickling errors: one line, the file named
        sys.stderr.write(f"modular_arith.py: --load-model {path}: cannot read it: {str(e).splitlines()[0]}\n")
        sys.exit(2)
    if not isinstance(state, dict):
        sys.stderr.write(f"modular_arith.py: --load-model {path}: not a state_dict (a --save-model file)\n")
        sys.exit(2)
    want = model.state_dict()
    for name, t in want.items():
        got = state.get(name)
        if got is None or not hasattr(got, "shape"):
            sys.stderr.write(f"modular_arith.py: --load-model {path}: no tensor '{name}' (not a model of this script)\n")
            sys.exit(2)
        if tuple(got.shape) != tuple(t.shape):
            sys.stderr.write(f"modular_arith.py: --load-model {path}: '{name}' has shape {tuple(got.shape)}, the model "
                             f"of these sizes (--p --d-model --n-heads --d-mlp) needs {tuple(t.shape)}\n")
            sys.exit(2)
    extra = sorted(set(state) - set(want))
    if extra:
        sys.stderr.write(f"modular_arith.py: --load-model {path}: unexpected tensor '{extra[0]}' (not a model of this script)\n")
        sys.exit(2)
    model.load_state_dict(state)
    return digest


HOOKS = ["resid_post", "resid_mid", "mlp_post", "mlp_in", "mlp_out"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=int, default=113, help="modulus (prime)")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-mlp", type=int, default=512)
    ap.add_argument("--train-frac", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=10000,
                    help="full-batch training steps: the cap when --stop-test-acc is given")
    ap.add_argument("--stop-test-acc", type=float, default=None,
                    help="stop as soon as test accuracy >= this (checked every --eval-every steps), e.g. 0.99")
    ap.add_argument("--eval-every", type=int, default=100, help="steps between test-accuracy checks")
    ap.add_argument("--random-weights", action="store_true",
                    help="do not train: dump the activations of the randomly initialised model (same seed)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: the bytes do not depend on the machine's core count)")
    ap.add_argument("--ood-out", help="also write PREFIX-heldout.npy (the pairs the transformer did not train on), "
                                      "PREFIX-train.npy (the pairs it trained on) and PREFIX-shift.npy (inputs "
                                      "[a, b, c]: an operand token where '=' belongs, never seen in training)")
    ap.add_argument("--results", help="also write the training results (accuracies, steps) as JSON here")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hook", choices=HOOKS, default="resid_post",
                    help="activation to dump, at the '=' position (mlp_in: the MLP's input, which is resid_mid "
                         "in this LayerNorm-free block; mlp_out: the MLP's output before it joins the residual)")
    ap.add_argument("--target-hook", choices=HOOKS, default=None,
                    help="also dump this activation of the same rows to OUT-target.<format>, a transcoder's target "
                         "(data.target); with --study the spec compares an SAE arm and a transcoder arm")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--format", choices=["npy", "safetensors"], default="npy")
    ap.add_argument("--study", help="also write a study spec around the activations")
    ap.add_argument("--save-model", help="also save the trained state_dict (torch.save)")
    ap.add_argument("--load-model", metavar="MODEL_PT",
                    help="do not train: load this state_dict (a --save-model file of the same sizes and --seed, "
                         "which fixes the train/test split) and dump its activations, e.g. other hooks of an "
                         "existing model")
    args = ap.parse_args(argv)
    if args.d_model % args.n_heads:
        raise SystemExit("--d-model must be a multiple of --n-heads")
    if args.load_model and args.random_weights:
        ap.error("--load-model and --random-weights exclude each other")
    if args.load_model and args.save_model:
        ap.error("--load-model and --save-model exclude each other (the loaded file is the model)")
    torch = need("torch")

    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, args.threads))
    torch.use_deterministic_algorithms(True)
    p = args.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    tokens = torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p)], dim=1)  # [p^2, 3]
    labels = (tokens[:, 0] + tokens[:, 1]) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(args.seed))
    n_train = max(1, int(args.train_frac * p * p))
    tr, te = perm[:n_train], perm[n_train:]

    model = build_model(torch, p, args.d_model, args.n_heads, args.d_mlp)
    loaded_sha256 = None
    if args.load_model:
        loaded_sha256 = load_state(torch, model, args.load_model)

    def accuracy(idx):
        if len(idx) == 0:
            return float("nan")
        with torch.no_grad():
            return (model(tokens[idx]).argmax(-1) == labels[idx]).float().mean().item()

    t0 = time.monotonic()
    steps_done = 0
    stopped_early = False
    if not args.random_weights and not args.load_model:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98))
        for step in range(args.steps):
            loss = torch.nn.functional.cross_entropy(model(tokens[tr]), labels[tr])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps_done = step + 1
            check = args.stop_test_acc is not None and steps_done % max(1, args.eval_every) == 0
            report = steps_done % max(1, args.steps // 10) == 0 or steps_done == args.steps
            if check or report:
                acc = accuracy(te)
                if report or check:
                    sys.stderr.write(f"step {steps_done}/{args.steps} train loss {loss.item():.4f} test acc {acc:.4f} "
                                     f"({time.monotonic() - t0:.0f} s)\n")
                if check and acc >= args.stop_test_acc:
                    stopped_early = True
                    break
    train_seconds = time.monotonic() - t0
    with torch.no_grad():
        train_loss = torch.nn.functional.cross_entropy(model(tokens[tr]), labels[tr]).item()
    train_acc, test_acc = accuracy(tr), accuracy(te)
    if args.stop_test_acc is not None and not args.random_weights and not test_acc >= args.stop_test_acc:
        if args.load_model:
            sys.stderr.write(f"modular_arith.py: {args.load_model}: test accuracy {test_acc:.4f} < --stop-test-acc "
                             f"{args.stop_test_acc} (not grokked, or another --seed than the one it trained with)\n")
        else:
            sys.stderr.write(f"modular_arith.py: test accuracy {test_acc:.4f} < --stop-test-acc "
                             f"{args.stop_test_acc} after the cap of {args.steps} steps (not grokked); raise --steps\n")
        return 1

    model.eval()  # the same (fast-path) numerics as extract_activations.py on the saved model
    hook_mods = {"resid_post": model.block.hook_resid_post, "resid_mid": model.block.hook_resid_mid,
                 "mlp_post": model.block.hook_mlp_post, "mlp_in": model.block.hook_resid_mid,
                 "mlp_out": model.block.mlp_out}

    def dump(inp, hook=args.hook):                                     # activations at the last position [N, d]
        captured = []
        handle = hook_mods[hook].register_forward_hook(
            lambda _m, _i, out: captured.append(out[:, -1].detach().clone()))
        with torch.no_grad():
            model(inp)
        handle.remove()
        return captured[0]

    acts = dump(tokens)                                                # all p^2 inputs, in (a, b) order
    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
    meta = {"model": "modular-addition-transformer", "hook_name": f"blocks.0.hook_{args.hook}", "position": "=",
            "p": p, "d_model": args.d_model, "n_heads": args.n_heads, "d_mlp": args.d_mlp,
            "train_frac": args.train_frac, "steps": args.steps, "lr": args.lr, "weight_decay": args.weight_decay,
            "seed": args.seed, "train_loss": round(train_loss, 6), "train_accuracy": round(train_acc, 6),
            "test_accuracy": round(test_acc, 6), "steps_trained": steps_done, "stop_test_acc": args.stop_test_acc,
            "stopped_early": stopped_early, "random_weights": bool(args.random_weights),
            "rows": "all p^2 pairs (a, b), a-major", "torch_version": torch.__version__}
    if args.load_model:  # nothing trained here: name the model the activations come from
        meta.update({"loaded_model": os.path.basename(args.load_model), "loaded_model_sha256": loaded_sha256,
                     "steps": None, "steps_trained": None, "lr": None, "stopped_early": None})
    meta = save_activations(acts, args.out, args.format, "float32", meta, args.study,
                            study_name=os.path.splitext(os.path.basename(args.study))[0] if args.study else None,
                            seeds=(42, 123, 456, 789, 1011))
    if args.target_hook:
        tmeta = dict(meta)
        for k in ("study_data", "file", "sha256", "n_rows", "d", "mean_norm", "tensor"):
            tmeta.pop(k, None)
        tmeta.update({"hook_name": f"blocks.0.hook_{args.target_hook}", "input_hook_name": meta["hook_name"]})
        tmeta = save_activations(dump(tokens, args.target_hook), args.out + "-target", args.format, "float32", tmeta)
        add_target_to_study(args.study, tmeta)
    if args.ood_out:
        # rows the SAE's data does not single out: the transformer's own split, and a shifted input format
        shift = tokens.clone()                                         # an operand token where "=" belongs
        shift[:, 2] = (tokens[:, 0] + 7 * tokens[:, 1]) % p
        for name, rows in (("heldout", dump(tokens[te.sort().values])), ("train", dump(tokens[tr.sort().values])),
                           ("shift", dump(shift))):
            m = dict(meta)
            m.pop("study_data", None)
            m["rows"] = {"heldout": "the pairs (a, b) the transformer did not train on, a-major",
                         "train": "the pairs (a, b) the transformer trained on, a-major",
                         "shift": "inputs [a, b, (a + 7 b) mod p]: an operand token in place of '='"}[name]
            save_activations(rows, f"{args.ood_out}-{name}", "npy", "float32", m)
            if args.target_hook:  # the OOD rows' targets, for data.ood.target
                save_activations(dump(tokens[te.sort().values] if name == "heldout" else
                                      tokens[tr.sort().values] if name == "train" else shift, args.target_hook),
                                 f"{args.ood_out}-{name}-target", "npy", "float32",
                                 dict(m, hook_name=f"blocks.0.hook_{args.target_hook}"))
    # in the results format of `ledger record --results`: one condition, one cell (the seed), its metrics
    results = {"conditions": [{
        "id": "model=" + ("random" if args.random_weights else "trained"),
        "params": {"model": "random" if args.random_weights else "trained", "p": p, "d_model": args.d_model,
                   "n_heads": args.n_heads, "d_mlp": args.d_mlp, "train_frac": args.train_frac, "lr": args.lr,
                   "weight_decay": args.weight_decay, "step_cap": args.steps,
                   "stop_test_acc": -1 if args.stop_test_acc is None else args.stop_test_acc,
                   "hook": args.hook, "activations_sha256": meta["sha256"],
                   **({"loaded_model_sha256": loaded_sha256} if loaded_sha256 else {})},
        "cells": [{"seed": args.seed, "status": "ok", "metrics": {
            "train_accuracy": train_acc, "test_accuracy": test_acc, "train_loss": train_loss,
            "steps_trained": steps_done, "stopped_early": 1 if stopped_early else 0,
            "n_train_pairs": int(len(tr)), "n_test_pairs": int(len(te))}}]}]}
    if args.results:
        with open(args.results + ".tmp", "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(args.results + ".tmp", args.results)
    sys.stderr.write(f"modular_arith.py: {steps_done} steps in {train_seconds:.1f} s, train acc {train_acc:.4f}, "
                     f"test acc {test_acc:.4f}\n")
    print(json.dumps({k: meta[k] for k in ("file", "n_rows", "d", "sha256", "test_accuracy")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

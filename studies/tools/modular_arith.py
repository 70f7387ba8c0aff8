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
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract_activations import need, save_activations  # noqa: E402


def build_model(torch, p, d_model, n_heads, d_mlp):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
            self.mlp_in = nn.Linear(d_model, d_mlp)
            self.mlp_out = nn.Linear(d_mlp, d_model)
            self.hook_resid_mid = nn.Identity()
            self.hook_mlp_post = nn.Identity()
            self.hook_resid_post = nn.Identity()

        def forward(self, x):                                          # x [B, 3, d_model]
            a, _ = self.attn(x, x, x, need_weights=False)
            x = self.hook_resid_mid(x + a)
            h = self.hook_mlp_post(torch.relu(self.mlp_in(x)))         # [B, 3, d_mlp]
            return self.hook_resid_post(x + self.mlp_out(h))

    class ModAdd(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(p + 1, d_model)
            self.pos = nn.Parameter(torch.randn(3, d_model) / d_model ** 0.5)
            self.block = Block()
            self.unembed = nn.Linear(d_model, p, bias=False)

        def forward(self, tokens):                                     # tokens [B, 3]
            x = self.embed(tokens) + self.pos
            return self.unembed(self.block(x)[:, -1])                  # logits [B, p]

    return ModAdd()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p", type=int, default=113, help="modulus (prime)")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-mlp", type=int, default=512)
    ap.add_argument("--train-frac", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=10000, help="full-batch training steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hook", choices=["resid_post", "resid_mid", "mlp_post"], default="resid_post",
                    help="activation to dump, at the '=' position")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--format", choices=["npy", "safetensors"], default="npy")
    ap.add_argument("--study", help="also write a study spec around the activations")
    ap.add_argument("--save-model", help="also save the trained state_dict (torch.save)")
    args = ap.parse_args(argv)
    if args.d_model % args.n_heads:
        raise SystemExit("--d-model must be a multiple of --n-heads")
    torch = need("torch")

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    p = args.p
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    tokens = torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p)], dim=1)  # [p^2, 3]
    labels = (tokens[:, 0] + tokens[:, 1]) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(args.seed))
    n_train = max(1, int(args.train_frac * p * p))
    tr, te = perm[:n_train], perm[n_train:]

    model = build_model(torch, p, args.d_model, args.n_heads, args.d_mlp)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98))
    for step in range(args.steps):
        loss = torch.nn.functional.cross_entropy(model(tokens[tr]), labels[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % max(1, args.steps // 10) == 0 or step + 1 == args.steps:
            with torch.no_grad():
                acc = (model(tokens[te]).argmax(-1) == labels[te]).float().mean().item() if len(te) else float("nan")
            sys.stderr.write(f"step {step + 1}/{args.steps} train loss {loss.item():.4f} test acc {acc:.3f}\n")
    with torch.no_grad():
        train_loss = torch.nn.functional.cross_entropy(model(tokens[tr]), labels[tr]).item()
        test_acc = (model(tokens[te]).argmax(-1) == labels[te]).float().mean().item() if len(te) else float("nan")

    model.eval()  # the same (fast-path) numerics as extract_activations.py on the saved model
    captured = []
    hook_mod = {"resid_post": model.block.hook_resid_post, "resid_mid": model.block.hook_resid_mid,
                "mlp_post": model.block.hook_mlp_post}[args.hook]
    handle = hook_mod.register_forward_hook(lambda _m, _i, out: captured.append(out[:, -1].detach().clone()))
    with torch.no_grad():
        model(tokens)                                                  # all p^2 inputs, in (a, b) order
    handle.remove()
    acts = captured[0]                                                 # [p^2, d]
    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
    meta = {"model": "modular-addition-transformer", "hook_name": f"blocks.0.hook_{args.hook}", "position": "=",
            "p": p, "d_model": args.d_model, "n_heads": args.n_heads, "d_mlp": args.d_mlp,
            "train_frac": args.train_frac, "steps": args.steps, "lr": args.lr, "weight_decay": args.weight_decay,
            "seed": args.seed, "train_loss": round(train_loss, 6), "test_accuracy": round(test_acc, 6),
            "rows": "all p^2 pairs (a, b), a-major", "torch_version": torch.__version__}
    meta = save_activations(acts, args.out, args.format, "float32", meta, args.study,
                            study_name=os.path.splitext(os.path.basename(args.study))[0] if args.study else None,
                            seeds=(42, 123, 456, 789, 1011))
    print(json.dumps({k: meta[k] for k in ("file", "n_rows", "d", "sha256", "test_accuracy")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

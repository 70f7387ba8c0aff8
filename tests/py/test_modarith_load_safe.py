#!/usr/bin/env python3
"""test_modarith_load_safe.py - modular_arith.py --load-model never unpickles
without weights_only: load_state against stand-in torch modules (no PyTorch
needed). A torch.load without the weights_only parameter (PyTorch < 1.13, which
would run a pickle's code) is refused with exit 2 and one stderr line naming
the file, and torch.load is not called; a torch.load that has it is called
with weights_only=True.
"""
import io
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("LEDGER_SRC", os.path.join(HERE, "..", "..")), "studies", "tools"))
import modular_arith  # noqa: E402

FAILED = []


def check(cond, what):
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        FAILED.append(what)


class Model:
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        self.loaded = state


def run_load(torch, path):
    err, old = io.StringIO(), sys.stderr
    sys.stderr = err
    try:
        modular_arith.load_state(torch, Model(), path)
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        sys.stderr = old
    return code, err.getvalue()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.pt")
        open(path, "wb").write(b"not read by the stand-ins")
        calls = []

        class OldTorch:  # torch.load(f, map_location=None, pickle_module=...): no weights_only
            __version__ = "1.12.0"

            @staticmethod
            def load(f, map_location=None, pickle_module=None):
                calls.append(("old", f))
                return {}

        code, err = run_load(OldTorch, path)
        check(code == 2, "old torch.load: exit 2 (got %r)" % (code,))
        check(not calls, "old torch.load: never called (it would run the pickle's code)")
        check(err.count("\n") == 1 and path in err and "weights_only" in err, "one line naming the file: %r" % err)

        class NewTorch:
            __version__ = "2.3.0"

            @staticmethod
            def load(f, map_location=None, pickle_module=None, weights_only=False):
                calls.append(("new", weights_only))
                return {}

        code, err = run_load(NewTorch, path)
        check(code == 0 and not err, "new torch.load: loads (exit %r, stderr %r)" % (code, err))
        check(calls == [("new", True)], "called once with weights_only=True: %r" % calls)
    print("%d failed" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

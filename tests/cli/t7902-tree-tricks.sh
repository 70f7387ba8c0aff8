#!/usr/bin/env bash
# t7902 (red team): hand-written tree objects (git hash-object -t tree
# --literally) in the ledger branch. Path lookups (libgit2, `git show
# rev:path`) never see an entry named "files/x" or the second of two entries
# with one name, so verify read the honest bytes and passed, while `git
# archive` / a checkout of the branch wrote the forged ones. Now every tree of
# the tip must be what git would write (ledger/verify_canon.c).
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
git init -q . && "$LEDGER" init --small-output-max 100 >/dev/null && for i in 1 2; do
  echo "small $i" > "$IN/s$i.txt"; "$LEDGER" record --study st "$IN/s$i.txt" >/dev/null || break; done &&
  git branch orig ledger && ok "a ledger with 2 runs" || bad "setup"
run2=$(git ls-tree --name-only ledger runs/ | sed -n 2p)
# craft MODE: rewrite the newest commit with run 2's directory rebuilt by the Python snippet
craft() { git update-ref refs/heads/ledger orig && "$PYTHON3" - "$run2" "$1" <<'PY' && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
import subprocess, sys
def git(*a, inp=None): return subprocess.run(["git", *a], input=inp, capture_output=True, check=True).stdout
def ents(t):
    r = []
    for l in git("ls-tree", t).decode().splitlines():
        meta, name = l.split("\t", 1); mode, _, sha = meta.split(); r.append([mode.lstrip("0"), name, sha])
    return r
def mktree(es): return git("hash-object", "-t", "tree", "--literally", "-w", "--stdin",
                           inp=b"".join(m.encode() + b" " + n.encode() + b"\0" + bytes.fromhex(s) for m, n, s in es)).decode().strip()
def blob(b): return git("hash-object", "-w", "--stdin", inp=b).decode().strip()
run, how = sys.argv[1], sys.argv[2]
r = ents("ledger:" + run)
name = git("ls-tree", "--name-only", "ledger:%s/files" % run).decode().split()[0]
if how == "slash":   r.append(["100644", "files/" + name, blob(b"forged\n")])     # after files/: a checkout writes it last
elif how == "dup":   r.append(["100644", "manifest.json", blob(b'{"forged":1}')])
elif how == "order": r.reverse()
elif how == "mode":  r = [["0" + m if m == "100644" else m, n, s] for m, n, s in r]
elif how == "none":  pass
t = mktree(r)
runs = [["40000", n, t] if n == run.split("/")[1] else [m, n, s] for m, n, s in ents("ledger:runs")]
root = mktree([["40000", "runs", mktree(runs)] if n == "runs" else [m, n, s] for m, n, s in ents("ledger")])
git("update-ref", "refs/heads/ledger", git("commit-tree", root, "-p", "ledger~1", "-m", "x").decode().strip())
PY
}
craft none && expect_ok "control: the same rewrite without a trick verifies" "$LEDGER" verify --no-claims
craft slash && ok "run 2 gets an entry named files/<name> with forged bytes" || bad "craft slash"
name=$(git ls-tree --name-only "ledger:$run2/files")
git archive ledger "$run2" | tar -xO "$run2/files/$name" 2>/dev/null | grep -q forged &&
  ok "the attack is real: git archive of the branch writes the forged bytes" || bad "git archive did not show the forged bytes"
[ "$(git show "ledger:$run2/files/$name")" = "small 2" ] && ok "while path lookups read the honest bytes" || bad "lookup"
expect_code 1 "verify fails" "$LEDGER" verify --no-claims
grep_out "error: tree: $run2: not a tree git would write \(a name with a slash: 'files/$name'\)" "names the run directory and the entry"
craft dup && expect_code 1 "two manifest.json entries: verify fails" "$LEDGER" verify --no-claims
grep_out "error: tree: $run2: .*a name twice: 'manifest.json'" "names the duplicated entry"
craft order && expect_code 1 "entries out of git's order: verify fails" "$LEDGER" verify --no-claims
grep_out "error: tree: $run2: .*out of order" "says out of order"
craft mode && expect_code 1 "zero-padded modes: verify fails" "$LEDGER" verify --no-claims
grep_out "error: tree: $run2: .*modes not as git writes them" "says modes"
# the run directory renamed " 2-<id12>" / "+2-<id12>": strtol read both as seq 2
for pre in ' ' '+'; do
  git update-ref refs/heads/ledger orig && "$PYTHON3" - "$run2" "$pre" <<'PY' && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
import subprocess, sys
def git(*a, inp=None): return subprocess.run(["git", *a], input=inp, capture_output=True, check=True).stdout
def mktree(es): return git("mktree", inp="".join("%s %s %s\t%s\n" % (m, "tree" if m == "040000" else "blob", s, n) for m, n, s in es).encode()).decode().strip()
def ents(t): return [[l.split()[0], l.split("\t", 1)[1], l.split()[2]] for l in git("ls-tree", t).decode().splitlines()]
run, pre = sys.argv[1].split("/")[1], sys.argv[2]
runs = [[m, pre + n if n == run else n, s] for m, n, s in ents("ledger:runs")]
root = mktree([["040000", "runs", mktree(runs)] if n == "runs" else [m, n, s] for m, n, s in ents("ledger")])
git("update-ref", "refs/heads/ledger", git("commit-tree", root, "-p", "ledger~1", "-m", "x").decode().strip())
PY
  expect_code 1 "run directory renamed '${pre}${run2#runs/}': verify fails" "$LEDGER" verify --no-claims
  grep_out "is not a run directory name" "names the directory"
done
git update-ref refs/heads/ledger orig && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
expect_ok "control: the original ledger verifies" "$LEDGER" verify --no-claims
finish

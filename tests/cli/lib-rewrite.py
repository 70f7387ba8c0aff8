#!/usr/bin/env python3
"""lib-rewrite.py SEQ EDIT: rewrite refs/heads/ledger of the repository in the
current directory the way an attacker with push access would: apply EDIT (a
Python statement over the parsed manifest `m`) to run SEQ's manifest, then
recompute everything a plain hash chain would need (canonical manifest bytes,
run id, run directory name, every chain.json after it, every commit) with git
plumbing only, and move the branch. The edited run's signature.json is dropped
(it no longer verifies). Prints the new ids, one "SEQ ID" per line."""
import hashlib, json, os, subprocess, sys, tempfile

def git(*args, env=None):
    return subprocess.run(["git", *args], capture_output=True, check=True, env=env).stdout

def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

target, edit = int(sys.argv[1]), sys.argv[2]
commits = git("rev-list", "--first-parent", "--reverse", "refs/heads/ledger").decode().split()
names = git("ls-tree", "--name-only", "refs/heads/ledger", "runs/").decode().split()
runs = sorted(names, key=lambda d: int(d.split("/")[1].split("-")[0]))
parent, prev = commits[0], None
idx = os.path.join(tempfile.mkdtemp(), "index")
env = dict(os.environ, GIT_INDEX_FILE=idx)
for k, d in enumerate(runs, 1):
    raw = git("cat-file", "blob", "refs/heads/ledger:%s/manifest.json" % d)
    if k == target:
        m = json.loads(raw)
        exec(edit)
        raw = canon(m)
    rid = hashlib.sha256(raw).hexdigest()
    chain = canon({"format": 2, "prev": prev, "run": rid, "seq": k})
    new = "runs/%d-%s" % (k, rid[:12])
    runtree = git("rev-parse", "refs/heads/ledger:%s" % d).decode().strip()
    git("read-tree", parent, env=env)
    git("read-tree", "--prefix=%s/" % new, runtree, env=env)
    mb = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=raw, capture_output=True, check=True).stdout.decode().strip()
    cb = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=chain, capture_output=True, check=True).stdout.decode().strip()
    git("update-index", "--add", "--cacheinfo", "100644,%s,%s/manifest.json" % (mb, new), env=env)
    git("update-index", "--add", "--cacheinfo", "100644,%s,%s/chain.json" % (cb, new), env=env)
    if k == target:
        subprocess.run(["git", "update-index", "--force-remove", "%s/signature.json" % new], env=env, capture_output=True)
    tree = git("write-tree", env=env).decode().strip()
    parent = git("commit-tree", tree, "-p", parent, "-m", "ledger: run %d %s" % (k, rid)).decode().strip()
    prev = hashlib.sha256(chain).hexdigest()
    print(k, rid)
git("update-ref", "refs/heads/ledger", parent)

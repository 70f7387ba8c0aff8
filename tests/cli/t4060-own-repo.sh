#!/usr/bin/env bash
# t4060-own-repo.sh - README "Use ledger in your own repository", followed step
# by step with the INSTALLED binary (cmake --install of this build into a temp
# prefix) in a fresh repository outside the source tree: init, the README's
# study spec (its JSON taken from the README, sizes shrunk to seconds), the
# README's claims file taken verbatim, run --dry-run, run, check (one verdict
# per k), sync to a bare remote, and the CI step in a fresh clone:
# init + verify --base origin/ledger --junit.
. "$(dirname "$0")/lib-cli.sh"
BUILD_DIR=$(dirname "$LEDGER")
README="$LEDGER_SRC/README.md"
[ -f "$BUILD_DIR/cmake_install.cmake" ] || skip_all "no cmake_install.cmake beside $LEDGER (not a CMake build folder)"

# ---- install
expect_ok "cmake --install into a temp prefix" cmake --install "$BUILD_DIR" --prefix "$TMP/prefix"
L="$TMP/prefix/bin/ledger"
[ -x "$L" ] && ok "bin/ledger installed" || bad "no bin/ledger under the prefix"
expect_ok "the installed binary runs" "$L" --version

# ---- the README's snippets: the study spec and the claims file
"$PYTHON3" - "$README" <<'PY' || exit 1
import json, re, sys
text = open(sys.argv[1]).read()
sec = text[text.index("## Use ledger in your own repository"):]
sec = sec[:sec.index("\n## ", 10)]
spec_txt = re.search(r"\n( +)(\{\"format\": 1, \"name\": \"mine\".*?\})\n\n", sec, re.S).group(2)
spec = json.loads(re.sub(r"\n\s+", " ", spec_txt))
open("readme-spec.json", "w").write(json.dumps(spec))
claims = re.search(r"\n( +)(claim trained-beats-random\n.*?\n +end)\n", sec, re.S)
ind = len(claims.group(1))
lines = claims.group(2).split("\n")
open("readme.claims", "w").write("\n".join([lines[0]] + [l[ind:] for l in lines[1:]]) + "\n")
PY
[ -s readme-spec.json ] && [ -s readme.claims ] && ok "spec and claims taken from the README" || bad "README snippets not found"

mkdir -p own/studies own/claims own/data && cd own || exit 1
git init -q . && git commit -q --allow-empty -m "my project"
# activations with a ground-truth sparse dictionary (so that trained SAEs agree)
"$PYTHON3" - <<'PY' || exit 1
import numpy as np
r = np.random.default_rng(3)
n, d, f = 6000, 16, 48
D = r.standard_normal((f, d)); D /= np.linalg.norm(D, axis=1, keepdims=True)
A = np.zeros((n, f))
for i in range(n):
    idx = r.choice(f, 3, replace=False); A[i, idx] = np.abs(r.normal(1, 0.3, 3))
np.save("data/acts.npy", (A @ D + 0.01 * r.standard_normal((n, d))).astype("<f4"))
PY
# the README's spec, with its data path and keys kept; sizes shrunk for a test
"$PYTHON3" - <<'PY' || exit 1
import json
s = json.load(open("../readme-spec.json"))
assert s["data"]["path"] == "../data/acts.npy", s["data"]
s["sae"]["d_sae"] = 48; s["train"]["steps"] = 400; s["train"]["batch"] = 256; s["grid"]["k"] = [2, 3]
json.dump(s, open("studies/mine.json", "w"), indent=1)
PY
cp ../readme.claims claims/mine.claims

# ---- steps 1-4
expect_ok "1. ledger init" "$L" init
[ -d .ledger ] && grep -q '^/\?\.ledger' .git/info/exclude && ok ".ledger/ listed in .git/info/exclude" || bad ".ledger/ not excluded"
[ -z "$(git status --porcelain --untracked-files=all | grep -v '^?? \(studies\|claims\|data\)/')" ] && ok "work tree untouched by init" || bad "init touched the work tree"
expect_ok "2. run --dry-run checks the spec" "$L" run --dry-run studies/mine.json
grep_out "k=2" "the plan names the conditions"
expect_ok "4. ledger run" "$L" run -q studies/mine.json
expect_ok "4. ledger check: the README's claim holds on structured data" "$L" check
n=$(grep -cE '^PASS +trained-beats-random\[k=' "$TMP/.out")
[ "$n" -eq 2 ] && ok "one verdict per value of k" || { bad "expected 2 by-k verdicts, got $n"; cat "$TMP/.out"; }

# ---- step 5: publish with sync; step 6: the CI step in a fresh clone
git init -q --bare "$TMP/remote.git" && git -C "$TMP/remote.git" symbolic-ref HEAD refs/heads/main && git remote add origin "$TMP/remote.git" && git push -q origin HEAD:refs/heads/main \
  && ok "a bare remote" || bad "remote setup"
git add studies claims && git commit -q -m "study and claims" && git push -q origin HEAD:refs/heads/main
expect_ok "5. ledger sync publishes the runs" "$L" sync
expect_ok "5. ledger push DIR shares the store objects" "$L" push "$TMP/store"
cd "$TMP" && git clone -q "$TMP/remote.git" ci && cd ci || exit 1
git fetch -q origin ledger:ledger && ok "CI: the PR's ledger as ledger, the protected one as origin/ledger" || bad "fetch"
cp -r ../own/data . && ok "the data file beside the clone (the spec names it)" || bad "copy data"

expect_ok "6. CI: ledger init" "$L" init
expect_ok "6. CI: ledger verify --base origin/ledger --junit" "$L" verify --base origin/ledger --junit ledger-junit.xml
cat "$TMP/.err" >>"$TMP/.out"
grep_out "extends --base origin/ledger" "verify says the ledger extends the protected one"
grep -q '<testsuite' ledger-junit.xml && ok "JUnit written" || bad "no JUnit"
finish

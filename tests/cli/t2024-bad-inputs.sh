#!/usr/bin/env bash
# t2024: bad inputs to check and export exit 2 with one clear line and change
# nothing: a directory given as a claims file; export -o naming an existing
# regular file; export through a symbolic link planted under -o; export into
# the repository's .git/ or .ledger/.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 2}, "train": {"steps": 60, "batch": 64, "lr": 0.005}, "seeds": [1, 2]}
JSON
cat > claims/tiny.claims <<'CLAIMS'
claim n
  says "two seeds"
  study tiny
  sample x = cell.fvu where control=trained
  require n(x) >= 2
end
CLAIMS
expect_ok "run" "$LEDGER" run -q studies/tiny.json
run=$(awk '{print $2}' "$TMP/.out")

expect_code 2 "check DIR exits 2" "$LEDGER" check claims
grep_err "claims: is a directory, not a claims file" "says it is a directory"
one_line_err "one line"
echo '{{claim n}}' > t.md
expect_code 2 "report --claims DIR exits 2" "$LEDGER" report --no-record --claims claims t.md -o r.md
grep_err "is a directory" "says it is a directory"

n_before=$(git rev-list --count ledger)
echo keep > file.txt
expect_code 2 "export -o FILE exits 2" "$LEDGER" export "$run" -o file.txt
grep_err "file.txt: exists and is not a directory" "says why"
one_line_err "one line"
[ "$(cat file.txt)" = keep ] && ok "the file is unchanged" || bad "file changed"

# find the folder names an export uses, in a scratch place
expect_ok "a normal export (to learn the folder names)" "$LEDGER" export "$run" -o scratch
fid=$(ls scratch | head -1)
[ -n "$fid" ] && ok "folder $fid" || bad "no folder"
n_before=$(git rev-list --count ledger)
mkdir -p out "$TMP/elsewhere"
ln -s "$TMP/elsewhere" "out/$fid"
expect_code 2 "export through a symlinked subfolder of -o exits 2" "$LEDGER" export "$run" -o out
grep_err "out/$fid: is a symbolic link" "names the link"
[ -z "$(ls -A "$TMP/elsewhere")" ] && ok "nothing written through the link" || bad "written through the link: $(ls -R "$TMP/elsewhere")"
rm "out/$fid" && mkdir "out/$fid" && ln -s "$TMP/elsewhere" "out/$fid/seed-1"
expect_code 2 "a symlinked seed folder exits 2" "$LEDGER" export "$run" -o out --force
[ -z "$(ls -A "$TMP/elsewhere")" ] && ok "nothing written through it" || bad "written through the seed link"
rm -rf out

expect_code 2 "export into .git/ exits 2" "$LEDGER" export "$run" -o .git/sae
grep_err "\.git" "names .git"
[ ! -e .git/sae ] && ok "nothing in .git" || bad "wrote into .git"
expect_code 2 "export into .ledger/ exits 2" "$LEDGER" export "$run" -o .ledger/x/y
[ ! -e .ledger/x ] && ok "nothing in .ledger" || bad "wrote into .ledger"
ln -s .git gitlink
expect_code 2 "export into .git through a link exits 2" "$LEDGER" export "$run" -o gitlink/sae
[ ! -e .git/sae ] && ok "nothing in .git" || bad "wrote into .git through a link"
[ "$(git rev-list --count ledger)" = "$n_before" ] && ok "no export run recorded by the refusals" || bad "ledger changed"
expect_ok "verify" "$LEDGER" verify
finish

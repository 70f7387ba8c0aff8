#!/usr/bin/env bash
# t3120: bad inputs that used to get through. A FIFO given to record or import is
# refused at once (exit 2, before the writer lock: a second writer is not
# blocked); importing the same SAE twice is refused naming both; a duplicate key,
# a \u0000 or trailing bytes in a study spec or a results file are refused before
# any training, naming the file and the key or place; record/import --study names
# are checked like a spec's; storing the bytes of a corrupt store object again
# repairs it (record, or pull from a good remote). Every refusal leaves the ledger unchanged.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
unchanged() { [ "$(git rev-parse ledger)" = "$TIP" ] && ok "$1: ledger unchanged" || bad "$1: ledger changed"; }
TIP=$(git rev-parse ledger)

# ---- FIFOs ----------------------------------------------------------------------------
mkfifo pipe
echo '{"conditions": []}' > ok.json
echo data > a.txt
for args in "pipe" "a.txt --results pipe" "a.txt --spec pipe" "name=pipe"; do
  expect_code 2 "record $args: FIFO refused" timeout 20 "$LEDGER" record --study s $args
  grep_err "pipe: a FIFO, not a regular file" "record $args: says it is a FIFO"
done
unchanged "FIFO"
# while a FIFO is refused, the lock is not held: a writer waiting with --lock-timeout 1 lands
( timeout 20 "$LEDGER" record --study s pipe >/dev/null 2>&1 ) &
expect_ok "another writer is not blocked" timeout 20 "$LEDGER" record --lock-timeout 1 --study s a.txt
wait
TIP=$(git rev-parse ledger)

cat > study.json <<'JSON'
{"format": 1, "name": "tiny-import",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 7}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 4}, "train": {"steps": 30, "batch": 64}, "seeds": [1, 2],
 "controls": {"random_init": false}}
JSON
expect_ok "run a tiny study" "$LEDGER" run -q --json study.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
expect_ok "export it" "$LEDGER" export "$RUN" -o sae
TIP=$(git rev-parse ledger)
mkdir fifo-sae && cp sae/default/seed-1/sae_weights.safetensors fifo-sae/ && mkfifo fifo-sae/cfg.json
expect_code 2 "import: FIFO cfg.json refused" timeout 20 "$LEDGER" import --study imp fifo-sae
grep_err "fifo-sae/cfg.json: a FIFO, not a regular file" "import names the FIFO"

# ---- the same SAE twice ----------------------------------------------------------------
expect_code 2 "import: the same folder twice" "$LEDGER" import --study imp sae/default/seed-1 sae/default/seed-2 sae/default/seed-1
grep_err "sae/default/seed-1 and sae/default/seed-1 are the same SAE \(the same folder\): their pair would record mmcs = 1" "names both"
one_line_err "one line"
expect_code 2 "import: the same folder by two paths" "$LEDGER" import --study imp sae/default/seed-1 ./sae/default/../default/seed-1
grep_err "are the same SAE \(the same folder\)" "resolved paths compared"
cp -r sae/default/seed-2 copy2
"$PYTHON3" -c 'import json; c=json.load(open("copy2/cfg.json")); c["metadata"]["seed"]=77; json.dump(c, open("copy2/cfg.json","w"))'
expect_code 2 "import: a byte-identical copy" "$LEDGER" import --study imp sae/default/seed-2 copy2
grep_err "sae/default/seed-2 and copy2 are the same SAE \(byte-identical sae_weights.safetensors\)" "names both"
unchanged "duplicate SAEs"
expect_ok "two distinct SAEs still import" "$LEDGER" import --study imp sae/default/seed-1 sae/default/seed-2
TIP=$(git rev-parse ledger)

# ---- strict JSON: specs ---------------------------------------------------------------
spec() { # FILE BODY-AFTER-NAME
  printf '{"format": 1, "name": "tiny", %s "sae": {"d_sae": 8, "k": 2}, "train": {"steps": 5, "batch": 8}, "seeds": [1]}%s' "$2" "${3:-}" > "$1"
}
DATA='"data": {"source": "synthetic", "synthetic": {"d": 4, "n_features": 8, "n_samples": 200, "seed": 1}},'
spec dup-top.json "\"name\": \"other\", $DATA"
expect_code 2 "spec: duplicate top-level key" "$LEDGER" run -q dup-top.json
grep_err "^ledger run: dup-top.json: \(root\): duplicate key \"name\"$" "names the file and key"
spec dup-nested.json '"data": {"source": "synthetic", "synthetic": {"d": 4, "n_features": 8, "seed": 1, "seed": 2}},'
expect_code 2 "spec: duplicate nested key" "$LEDGER" run -q dup-nested.json
grep_err "dup-nested.json: data.synthetic: duplicate key \"seed\"" "names the path"
spec nul.json "\"description\": \"a\\u0000b\", $DATA"
expect_code 2 "spec: \\u0000 in a string" "$LEDGER" run -q nul.json
grep_err "nul.json:1:[0-9]+: \\\\u0000 in a string" "names file, line, column"
spec trailing.json "$DATA" ' {"extra": 1}'
expect_code 2 "spec: trailing bytes" "$LEDGER" run -q trailing.json
grep_err "trailing.json:1:[0-9]+: unexpected bytes after the JSON document" "names the place"
expect_code 2 "dry run refuses too" "$LEDGER" run --dry-run trailing.json
spec good.json "$DATA"
expect_ok "the same spec without the defect runs" "$LEDGER" run -q --dry-run good.json
unchanged "bad specs"

# ---- strict JSON: record --results / --spec -------------------------------------------
echo '{"conditions": [{"id": "c", "cells": [{"seed": 1, "metrics": {"fvu": 0.5, "fvu": 0.1}}]}]}' > dup.json
expect_code 2 "results: duplicate metric" "$LEDGER" record --study s --results dup.json a.txt
grep_err "dup.json: conditions\[0\].cells\[0\].metrics: duplicate key \"fvu\"" "names the path and key"
printf '{"conditions": [{"id": "c\\u0000hidden"}]}' > nul-r.json
expect_code 2 "results: \\u0000" "$LEDGER" record --study s --results nul-r.json a.txt
grep_err "nul-r.json:1:[0-9]+: \\\\u0000 in a string" "named"
printf '{"conditions": []}\n{"conditions": [{"id": "x"}]}\n' > two.json
expect_code 2 "results: a second document" "$LEDGER" record --study s --results two.json a.txt
grep_err "two.json:2:1: unexpected bytes after the JSON document" "named"
expect_code 2 "record --spec with trailing bytes" "$LEDGER" record --study s --spec trailing.json a.txt
unchanged "bad results"

# ---- study names -------------------------------------------------------------------------
for name in "has space" "../up" "" "a/b" "$(printf 'x%.0s' $(seq 101))"; do
  expect_code 2 "record --study '${name:0:12}' refused" "$LEDGER" record --study "$name" a.txt
done
expect_code 2 "import --study with a space refused" "$LEDGER" import --study "a b" sae/default/seed-1
grep_err "use 1-100 characters of \[A-Za-z0-9._-\]" "says what a name is"
expect_ok "record --study ok.name-1_x" "$LEDGER" record --study ok.name-1_x a.txt
TIP=$(git rev-parse ledger)

# ---- a corrupt store object is repaired by storing its bytes again --------------------
head -c 3000 /dev/urandom > blob.bin
expect_ok "record blob" "$LEDGER" record --study s blob.bin
h=$(sha256sum blob.bin | cut -c1-64)
o=".ledger/store/objects/${h:0:2}/${h:2}"
flip() { chmod u+w "$1" && "$PYTHON3" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[int(sys.argv[2])]^=1; open(p,"wb").write(b)' "$1" "$2"; }
flip "$o" 10
expect_code 1 "verify sees the corrupt object" "$LEDGER" verify --no-claims
expect_ok "record the same bytes again" "$LEDGER" record --study s blob.bin
[ "$(sha256sum "$o" | cut -c1-64)" = "$h" ] && ok "object repaired" || bad "corrupt object kept"
[ "$(stat -c %a "$o")" = 444 ] && ok "read-only again" || bad "mode $(stat -c %a "$o")"
expect_ok "verify passes" "$LEDGER" verify --no-claims
# ... and by a pull from a remote holding a good copy
expect_ok "push to a directory remote" "$LEDGER" push ../remote
flip "$o" 20
expect_code 1 "verify sees the corrupt object again" "$LEDGER" verify --no-claims
expect_ok "pull" "$LEDGER" pull ../remote
[ "$(sha256sum "$o" | cut -c1-64)" = "$h" ] && ok "pull repaired the local object" || bad "pull kept the corrupt object"
expect_ok "verify passes after pull" "$LEDGER" verify --no-claims
finish

#!/usr/bin/env bash
# t4040: one study, one name. A second study file that declares a name an
# earlier run recorded from another (still existing, still same-named) file is
# refused at `ledger run` and `ledger record --spec` time, naming both files,
# exit 2, ledger unchanged; renaming the study, or removing the old file,
# resolves it; re-running the same file is fine, and so is a copy of the
# same study (equal JSON) in another place.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies other
spec() { # spec FILE NAME [SEEDS]
cat > "$1" <<JSON
{"format": 1, "name": "$2",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 400, "active_mean": 2, "seed": 4}},
 "sae": {"arch": "topk", "d_sae": 16, "k": 2}, "train": {"steps": 5, "batch": 32}, "seeds": ${3:-[1, 2]}}
JSON
}
spec studies/a.json shared
spec other/b.json shared "[1, 2, 3]"
expect_ok "first file" "$LEDGER" run -q --backend cpu studies/a.json
expect_ok "same file again" "$LEDGER" run -q --backend cpu studies/a.json
before=$(git rev-parse ledger)
expect_code 2 "second file, same name: refused" "$LEDGER" run -q --backend cpu other/b.json
grep_err "study name 'shared' is declared by both other/b.json and studies/a.json" "names both files"
grep_err "another \"name\"" "says the way out"
one_line_err "one line"
[ "$(git rev-parse ledger)" = "$before" ] && ok "ledger unchanged" || bad "ledger changed"
[ -z "$(ls .ledger/tmp 2>/dev/null)" ] && ok "no staging left" || bad "staging left"
( cd other && "$LEDGER" run -q --backend cpu b.json >/dev/null 2>"$TMP/.err" ); rc=$?
[ "$rc" -eq 2 ] && ok "refused from a subdirectory too" || bad "from other/: exit $rc"
echo '{"conditions": []}' > results.json
expect_code 2 "record --spec with the other file: refused" "$LEDGER" record --study shared --spec other/b.json --results results.json
grep_err "declared by both" "record names both"
expect_ok "record --spec with the first file" "$LEDGER" record --study shared --spec studies/a.json --results results.json
cp studies/a.json other/copy.json
expect_ok "an identical copy of the study is the same study" "$LEDGER" run -q --backend cpu other/copy.json
rm other/copy.json
spec other/b.json separate "[1, 2, 3]"
expect_ok "renamed study runs" "$LEDGER" run -q --backend cpu other/b.json
spec other/c.json shared "[1, 2, 3]"
rm studies/a.json
expect_ok "old file removed: the new file may take the name" "$LEDGER" run -q --backend cpu other/c.json
spec studies/a.json shared
expect_code 2 "the old file back with the same name: refused" "$LEDGER" run -q --backend cpu studies/a.json
grep_err "studies/a.json and other/c.json" "names both (new file first)"
finish

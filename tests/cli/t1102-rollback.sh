#!/usr/bin/env bash
# t1102: dropping the newest signed runs (git update-ref refs/heads/ledger
# ledger~2) is caught by `verify --base` and by `verify --at-least SEQ:ID`.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN"
export LEDGER_KEY_DIR=$TMP/keys
git init -q --bare origin.git
mkdir a && cd a && git init -q . && git remote add origin ../origin.git && "$LEDGER" init >/dev/null || bad "init"
"$LEDGER" key generate --name ci > "$IN/keys" || bad "key"
for i in 1 2 3 4; do
  echo "out $i" > "$IN/o$i.txt"
  "$LEDGER" record --study st --sign ci "$IN/o$i.txt" > "$IN/rec$i" || bad "record $i"
done
id2=$(awk '{print $4}' "$IN/rec2"); id3=$(awk '{print $4}' "$IN/rec3"); id4=$(awk '{print $4}' "$IN/rec4")
full4=$(git ls-tree --name-only ledger runs/ | sed -n 's|^runs/4-||p')
git push -q origin ledger 2>/dev/null && git fetch -q origin && ok "4 signed runs pushed" || bad "push"
expect_ok "--at-least 4:ID on the full ledger" "$LEDGER" verify --no-claims --at-least "4:$id4"

# the rollback, seen by a fresh clone (CI)
git clone -q ../origin.git ../ci 2>/dev/null && cd ../ci && git fetch -q origin +refs/heads/ledger:refs/remotes/origin/ledger &&
  git update-ref refs/heads/ledger "$(git rev-parse origin/ledger~2)" && "$LEDGER" init >/dev/null && ok "rolled back by 2 runs" || bad "rollback"
expect_ok "plain verify cannot see it" "$LEDGER" verify --no-claims
expect_ok "nor --require-signed: the remaining runs are signed" "$LEDGER" verify --no-claims --require-signed --trusted-keys "$IN/keys"
expect_code 1 "verify --base origin/ledger catches it" "$LEDGER" verify --no-claims --base origin/ledger
grep_out "^error: base: run 3-$id3: run 3 \($id3\) of the base origin/ledger is missing here: dropped" "names run 3"
grep_out "^error: base: run 4-$id4: run 4 \($id4\) of the base origin/ledger is missing here: dropped" "names run 4"
expect_code 1 "verify --at-least 4:ID catches it" "$LEDGER" verify --no-claims --at-least "4:$id4"
grep_out "^error: rollback: 4:$id4: the ledger holds 2 run\(s\) and no run 4" "names the missing run"
expect_ok "--at-least 2:ID still holds" "$LEDGER" verify --no-claims --at-least "2:$id2"
expect_code 1 "--at-least with the wrong id at that seq" "$LEDGER" verify --no-claims --at-least "2:$id3"
grep_out "^error: rollback: .*run 2 here is $id2, not $id3" "names the replaced run"
expect_code 2 "--at-least with a short id: exit 2" "$LEDGER" verify --no-claims --at-least "2:abcd"
expect_code 2 "--at-least without a seq: exit 2" "$LEDGER" verify --no-claims --at-least "$full4"
finish

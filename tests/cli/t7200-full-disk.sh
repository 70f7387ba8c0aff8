#!/usr/bin/env bash
# t7200: a full disk or an unwritable store in the middle of a write: a clear
# one-line error naming the file, exit 3, and the ledger unchanged (branch
# tip, index rows, verify ok, no temp files left). Three ways:
#  1. LEDGER_FAULT_WRITE_AFTER_BYTES (base/fault.h, test-only): store
#     and atomic-file writes fail with ENOSPC after N bytes, at several N;
#  2. a real 6 MiB tmpfs (git's and SQLite's own writes fill it too);
#  3. the store bind-mounted read-only (EROFS).
# 1 needs a build with LEDGER_TEST_HOOKS, 2 and 3 need mount (root); without
# them they are skipped (counted as skipped steps; all skipped: exit 77).
. "$(dirname "$0")/lib-cli.sh"

IN=$TMP/in; mkdir -p "$IN"
head -c 3000000 /dev/urandom > "$IN/big.bin"
head -c 200000 /dev/urandom > "$IN/mid.bin"
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.25}}]}]}' > "$IN/r.json"
leftovers() { { find .ledger/store/tmp .ledger/tmp -mindepth 1 -maxdepth 1 2>/dev/null; ls -d .ledger/*.tmp.* 2>/dev/null; } | wc -l; }
snapshot() { git rev-parse ledger && "$LEDGER" query "SELECT * FROM runs ORDER BY seq" && "$LEDGER" query "SELECT * FROM artifacts ORDER BY run_id, name"; }
# unchanged DESC: branch, index and verify as in $IN/snap
unchanged() {
  snapshot > "$IN/snap2" 2>&1 && cmp -s "$IN/snap" "$IN/snap2" && ok "$1: branch tip and index unchanged" || { bad "$1: ledger changed"; diff "$IN/snap" "$IN/snap2" | head -5; }
  [ "$(leftovers)" = 0 ] && ok "$1: no temp files left" || { bad "$1: temp files left"; leftovers; }
  "$LEDGER" verify --no-claims >/dev/null 2>&1 && ok "$1: verify ok" || bad "$1: verify fails"
}

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
echo one > "$IN/one.txt"
"$LEDGER" record --study s "$IN/one.txt" >/dev/null || bad "first record"
snapshot > "$IN/snap"

# 1. injected ENOSPC at several points of a record (store object, then later objects)
have_test_hooks || skip "injected ENOSPC: built without LEDGER_TEST_HOOKS"
have_test_hooks && for n in 0 1 65536 2999999 3100000; do
  expect_code 3 "ENOSPC after $n bytes: record exits 3" env LEDGER_FAULT_WRITE_AFTER_BYTES=$n "$LEDGER" record --study s "$IN/big.bin" "$IN/mid.bin"
  one_line_err "ENOSPC after $n bytes: one-line error"
  grep_err "^ledger record: .*/\.ledger/store/tmp/obj-[0-9]+-.*: write: No space left on device" "ENOSPC after $n bytes: names the file and the cause"
  unchanged "ENOSPC after $n bytes"
done
# ... and in `ledger run`, while the engine writes its outputs
mkdir -p studies && cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 40, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2]}, "seeds": [1, 2]}
JSON
if have_test_hooks; then
  expect_code 3 "ENOSPC in ledger run: exit 3" env LEDGER_FAULT_WRITE_AFTER_BYTES=5000 "$LEDGER" run -q --backend cpu studies/tiny.json
  one_line_err "ledger run: one-line error"
  grep_err "^ledger run: .*: write: No space left on device" "ledger run: names the file"
  unchanged "ENOSPC in ledger run"
  expect_ok "without the fault the same run lands" "$LEDGER" run -q --backend cpu studies/tiny.json
  expect_ok "verify" "$LEDGER" verify --no-claims
fi

# 2. a real full disk: a 6 MiB tmpfs holding the whole repository
MNT=$TMP/mnt; mkdir -p "$MNT"
trap 'rc=$?; umount "$MNT/repo/.ledger/store" 2>/dev/null; umount "$MNT" 2>/dev/null; cleanup $rc' EXIT
if mount -t tmpfs -o size=6m tmpfs "$MNT" 2>/dev/null; then
  cd "$MNT" && mkdir repo && cd repo && git init -q . && "$LEDGER" init --small-output-max 8000000 >/dev/null || bad "tmpfs: init"
  "$LEDGER" record --study s "$IN/one.txt" >/dev/null || bad "tmpfs: first record"
  snapshot > "$IN/snap"
  head -c 7000000 /dev/urandom > "$IN/huge.bin"
  expect_code 3 "tmpfs: a record bigger than the disk exits 3" "$LEDGER" record --study s "$IN/huge.bin"
  one_line_err "tmpfs: one-line error"
  grep_err "No space left on device" "tmpfs: says the disk is full"
  unchanged "tmpfs, store full"
  # 3.3 MB fits in the store, but not again as a git blob (in-tree output)
  head -c 3300000 /dev/urandom > "$IN/fits.bin"
  expect_code 3 "tmpfs: git's blob write fails: exit 3" "$LEDGER" record --study s "$IN/fits.bin"
  one_line_err "tmpfs: git failure is one line"
  grep_err "^ledger record: .*(git|space)" "tmpfs: names git / the disk"
  "$LEDGER" gc --min-age 0 >/dev/null 2>&1   # the stored object is garbage now
  unchanged "tmpfs, git full"
  expect_ok "tmpfs: a small record still works" "$LEDGER" record --study s "$IN/one.txt"
  snapshot > "$IN/snap"
  # 3. the store read-only (EROFS)
  if mount --bind .ledger/store .ledger/store 2>/dev/null && mount -o remount,ro,bind .ledger/store 2>/dev/null; then
    expect_code 3 "read-only store: exit 3" "$LEDGER" record --study s "$IN/mid.bin"
    one_line_err "read-only store: one-line error"
    grep_err "^ledger record: .*store.*Read-only file system" "read-only store: names the store and the cause"
    unchanged "read-only store"
    umount .ledger/store
  else
    skip "read-only store: bind mount not permitted"
  fi
  cd "$TMP" && umount "$MNT" || bad "umount"
else
  skip "real full disk: mount -t tmpfs not permitted (not root?)"
fi
finish

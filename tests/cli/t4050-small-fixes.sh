#!/usr/bin/env bash
# t4050: the small fixes for the researcher's day, one check each:
# `ledger help run`; --json on init and key; push -n --json prints only JSON;
# URL-like remotes refused (no folder "s3:"); pull copies only referenced
# objects; log --kind; gc -n reports the real bytes; SAELens 6 cfg fields;
# the manifest's code_dirty / code_diff_sha256.
. "$(dirname "$0")/lib-cli.sh"
export LEDGER_KEY_DIR="$TMP/keys"

# ---- help ---------------------------------------------------------------------------
expect_ok "ledger help run" "$LEDGER" help run
grep_out "^usage: ledger run" "prints run's usage"
grep_out "--backend" "with run's options"
if grep -q "^commands:" "$TMP/.out"; then bad "printed the global help"; else ok "not the global help"; fi
expect_ok "ledger help" "$LEDGER" help
grep_out "^commands:" "plain help is the global help"
expect_code 2 "ledger help nosuch" "$LEDGER" help nosuch

# ---- init --json -----------------------------------------------------------------------
mkdir repo && cd repo && git init -q .
expect_ok "init --json" "$LEDGER" init --json
"$PYTHON3" -c '
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["created_branch"] is True and d["already"] is False and d["branch"] == "refs/heads/ledger"
assert os.path.samefile(d["root"], ".") and d["ledger_dir"].endswith("/.ledger")' "$TMP/.out" && ok "init --json object" || bad "init --json"
expect_ok "init --json again" "$LEDGER" init --json
"$PYTHON3" -c 'import json,sys; assert json.load(open(sys.argv[1]))["already"] is True' "$TMP/.out" && ok "already: true" || bad "already"

# ---- key --json ----------------------------------------------------------------------------
expect_ok "key --json generate" "$LEDGER" key --json generate --name alice
"$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == "alice" and d["line"].startswith("ed25519 ") and d["line"].endswith(" alice") and d["path"].endswith("alice.pem")' \
    "$TMP/.out" && ok "generate: {name, line, path}" || { bad "key generate --json"; cat "$TMP/.out"; }
line=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["line"])' "$TMP/.out")
expect_ok "key list --json" "$LEDGER" key list --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [k["name"] for k in d] == ["alice"] and d[0]["line"] == sys.argv[2]' \
    "$TMP/.out" "$line" && ok "list: [{name, line, path}]" || bad "key list --json"
expect_ok "key trust --json" "$LEDGER" key trust --json "$line"
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d == [{"name": "alice", "line": sys.argv[2], "added": True}], d' \
    "$TMP/.out" "$line" && ok "trust: [{name, line, added}]" || bad "key trust --json"
expect_ok "key trust --json again" "$LEDGER" key trust --json "$line"
"$PYTHON3" -c 'import json,sys; assert json.load(open(sys.argv[1]))[0]["added"] is False' "$TMP/.out" && ok "added: false the second time" || bad "re-trust"
expect_ok "key list --trusted --json" "$LEDGER" key list --trusted --json
"$PYTHON3" -c 'import json,sys; assert json.load(open(sys.argv[1]))[0]["name"] == "alice"' "$TMP/.out" && ok "trusted list as JSON" || bad "trusted list"

# ---- push / pull ------------------------------------------------------------------------------
head -c 3000 /dev/urandom > big.bin
expect_ok "record" "$LEDGER" record --study s big.bin
expect_ok "push -n --json" "$LEDGER" push -n --json "$TMP/remote"
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["copied"] == 1 and d["bytes"] == 3000, d' "$TMP/.out" &&
    ok "push -n --json: stdout is one JSON object" || { bad "push -n --json output"; cat "$TMP/.out"; }
for url in s3://bucket/x gs:bucket host:store user@host:/srv/x https://example.com/store; do
    expect_code 2 "push $url refused" "$LEDGER" push "$url"
    expect_code 2 "pull $url refused" "$LEDGER" pull "$url"
done
grep_err "looks like a URL" "says why"
[ -z "$(ls -d s3: gs:bucket host:store user@host:* https: 2>/dev/null)" ] && ok "no folder named like the URL" || bad "a folder was created: $(ls)"
expect_ok "push to ./a:b (a local folder with a colon)" "$LEDGER" push ./a:b
[ -d "./a:b/objects" ] && ok "./a:b pushed" || bad "./a:b"
expect_ok "push" "$LEDGER" push "$TMP/remote"
# another ledger pushes its own object to the same remote
mkdir "$TMP/other" && ( cd "$TMP/other" && git init -q . && "$LEDGER" init >/dev/null && head -c 2000 /dev/urandom > o.bin &&
    "$LEDGER" record --study o o.bin >/dev/null && "$LEDGER" push "$TMP/remote" >/dev/null ) || bad "other ledger"
osha=$(sha256sum "$TMP/other/o.bin" | cut -c1-64)
mkdir "$TMP/clone" && cd "$TMP/clone" && git init -q . && git fetch -q "$TMP/repo" ledger:ledger && "$LEDGER" init >/dev/null
expect_ok "pull into a clone" "$LEDGER" pull --json "$TMP/remote"
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["copied"] == 1 and d["skipped"] == 1, d' "$TMP/.out" &&
    ok "pull copied the referenced object, skipped the other ledger's" || { bad "pull counts"; cat "$TMP/.out"; }
[ ! -e ".ledger/store/objects/${osha:0:2}/${osha:2}" ] && ok "unreferenced object not in the store" || bad "unreferenced object pulled"
expect_ok "verify --require-artifacts" "$LEDGER" verify --require-artifacts --no-claims
cd "$TMP/repo"

# ---- log --kind ---------------------------------------------------------------------------------
echo '{"conditions": []}' > r.json
echo "# report" > rep.md
expect_ok "record a report-kind run" "$LEDGER" report rep.md -o rep-out.md
expect_ok "log --kind report" "$LEDGER" log --kind report
[ "$(wc -l < "$TMP/.out")" -eq 1 ] && grep -q "	report	" "$TMP/.out" && ok "only the report run" || { bad "log --kind"; cat "$TMP/.out"; }
expect_ok "log --kind record --json" "$LEDGER" log --kind record --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["kind"] for r in d] == ["record"], d' "$TMP/.out" &&
    ok "log --kind --json" || bad "log --kind --json"

# ---- gc -n bytes ------------------------------------------------------------------------------------
mkdir -p .ledger/tmp/run-999999-abcdef/cells
head -c 532480 /dev/zero > .ledger/tmp/run-999999-abcdef/cells/w.safetensors
head -c 100 /dev/zero > .ledger/tmp/run-999999-abcdef/results.json
touch -d "3 hours ago" .ledger/tmp/run-999999-abcdef .ledger/tmp/run-999999-abcdef/cells/w.safetensors
expect_ok "gc -n --json" "$LEDGER" gc -n --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tmp_files"] == 1 and d["bytes"] == 532580, d' "$TMP/.out" &&
    ok "gc -n counts the staging folder's 532580 bytes" || { bad "gc -n bytes"; cat "$TMP/.out"; }
expect_ok "gc -n" "$LEDGER" gc -n
grep_out "\(532580 bytes\)" "text says the bytes"
expect_ok "gc" "$LEDGER" gc --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bytes"] == 532580, d' "$TMP/.out" && ok "gc frees what -n said" || bad "gc bytes"
[ ! -e .ledger/tmp/run-999999-abcdef ] && ok "staging folder removed" || bad "staging left"

# ---- code_dirty ---------------------------------------------------------------------------------------
# dirty: code_dirty and code_diff_sha256 of the last run
dirty() { "$LEDGER" show --json "@$("$LEDGER" log | wc -l)" | "$PYTHON3" -c 'import json,sys; m=json.load(sys.stdin); print(m["code_dirty"], m["code_diff_sha256"])'; }
echo v1 > code.py && git add code.py && git commit -qm code
expect_ok "record, clean tree" "$LEDGER" record --study s big.bin
[ "$(dirty)" = "False None" ] && ok "clean: code_dirty false, no diff digest" || bad "clean: $(dirty)"
echo v2 >> code.py
expect_ok "record, modified tracked file" "$LEDGER" record --study s big.bin
d5=$(dirty); case "$d5" in "True "????????????????????????????????????????????????????????????????) ok "dirty: flag and a digest";; *) bad "dirty: $d5";; esac
expect_ok "record, same change" "$LEDGER" record --study s big.bin
[ "$(dirty)" = "$d5" ] && ok "same change, same digest" || bad "digest unstable"
echo v3 >> code.py && git add code.py
expect_ok "record, staged change" "$LEDGER" record --study s big.bin
d7=$(dirty); [ "${d7%% *}" = True ] && [ "$d7" != "$d5" ] && ok "another (staged) change, another digest" || bad "staged: $d7"
echo untracked > new.txt && git checkout -q code.py && git reset -q && git checkout -q code.py
expect_ok "record, only untracked files" "$LEDGER" record --study s big.bin
[ "$(dirty)" = "False None" ] && ok "untracked files do not count (git diff HEAD)" || bad "untracked: $(dirty)"
expect_ok "diff shows the dirty flag" "$LEDGER" diff @3 @4
grep_out "~ code_dirty: false -> true" "diff lists code_dirty"

# ---- SAELens 6 cfg.json ------------------------------------------------------------------------------
mkdir -p studies && cat > studies/e.json <<'JSON'
{"format": 1, "name": "exp",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 400, "active_mean": 2, "seed": 4}},
 "sae": {"arch": "topk", "d_sae": 16, "k": 2}, "train": {"steps": 5, "batch": 32}, "seeds": [1]}
JSON
expect_ok "tiny run" "$LEDGER" run -q --backend cpu studies/e.json
expect_ok "export with model and hook names" "$LEDGER" export "@$("$LEDGER" log | wc -l)" -o exp --model-name gpt2 --hook-name blocks.0.hook_resid_post
"$PYTHON3" - exp/default/seed-1/cfg.json <<'PY' && ok "cfg.json: hook_name, model_name at top level; metadata.sae_lens_version 6" || bad "cfg.json fields"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["hook_name"] == "blocks.0.hook_resid_post" and c["model_name"] == "gpt2", c
assert c["metadata"]["hook_name"] == c["hook_name"] and c["metadata"]["model_name"] == "gpt2"
v = c["metadata"]["sae_lens_version"]
assert int(v.split(".")[0]) >= 6, v
PY
expect_ok "verify" "$LEDGER" verify --no-claims
finish

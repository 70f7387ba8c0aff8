/*
 * ledger_migrate.c - rewriting a format-1 ledger in format 2
 * (`ledger init --migrate`).
 *
 * Format 1 kept a run's place (seq, prev) inside its manifest, so a run's id
 * covered its place. Format 2 moves the place to chain.json. Migration
 * therefore changes every run id: each manifest loses "seq" and "prev",
 * gains "format": 2 and a "nonce" = the first 32 hex digits of its format-1
 * id (unique, and a record of where it came from), and is written canonical
 * again. Everything else of a run directory (files/) is kept byte for byte.
 * Format-1 signatures signed the old ids, so they cannot carry over: they are
 * dropped and counted, and the runs must be signed again to pass
 * --require-signed.
 *
 * Nothing is lost: the old branch stays at refs/ledger-format1/ledger. The
 * new branch replaces refs/heads/ledger under the writer lock, ledger.json
 * is rewritten, and the index is rebuilt. A format-1 ledger's chain is
 * checked while reading (seq 1..n, prev = previous id) so that a damaged
 * ledger is refused rather than laundered into a clean-looking format 2.
 */
#include "ledger/ledger_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/manifest.h"

#define BACKUP_REF "refs/ledger-format1/ledger"

/* The format-1 manifest of run ri, converted: *out (cJSON_Delete). */
static int convert(lg_ledger *lg, const lg_run_info *ri, long k, const char *prev_id, cJSON **out)
{
    lg_buf raw = LG_BUF_INIT;
    cJSON *m = NULL, *v;
    char nonce[LG_NONCE_HEX + 1];
    int err;
    *out = NULL;
    if ((err = lg_ledger_read_blob(lg, &ri->manifest, LG_MANIFEST_MAX, &raw)) < 0)
        goto out;
    if (!(m = cJSON_ParseWithLength(raw.ptr, raw.len)) || !cJSON_IsObject(m)) {
        err = lg_error_set(LG_EINPUT, "%s: manifest.json is not a JSON object", ri->dir);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(m, "format");
    if (!cJSON_IsNumber(v) || v->valuedouble != 1) {
        err = lg_error_set(LG_EINPUT, "%s: not a format 1 manifest", ri->dir);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(m, "seq");
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)k || ri->seq != k) {
        err = lg_error_set(LG_EINPUT, "%s: seq is not %ld: the format 1 chain is damaged (run 'ledger verify' with the "
                                      "version that wrote it); not migrated",
                           ri->dir, k);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(m, "prev");
    if (k == 1 ? !cJSON_IsNull(v) : !(cJSON_IsString(v) && strcmp(v->valuestring, prev_id) == 0)) {
        err = lg_error_set(LG_EINPUT, "%s: prev does not name run %ld: the format 1 chain is damaged; not migrated",
                           ri->dir, k - 1);
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m, "seq");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "prev");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "nonce");
    snprintf(nonce, sizeof nonce, "%.32s", ri->run_id);
    if (!cJSON_ReplaceItemInObjectCaseSensitive(m, "format", cJSON_CreateNumber(LG_MANIFEST_FORMAT)) ||
        !cJSON_AddStringToObject(m, "nonce", nonce)) {
        err = lg_error_set(LG_ENOMEM, "out of memory converting %s", ri->dir);
        goto out;
    }
    if ((err = lg_manifest_check(m, ri->dir)) < 0)
        goto out;
    *out = m;
    m = NULL;
out:
    cJSON_Delete(m);
    lg_buf_release(&raw);
    return err;
}

/* Root commit of the new branch: a tree holding FORMAT (format 2). */
static int new_root(lg_ledger *lg, git_signature *sig, git_oid *out)
{
    git_oid blob, tree_oid;
    git_treebuilder *tb = NULL;
    git_tree *tree = NULL;
    int err = 0;
    if (git_blob_create_from_buffer(&blob, lg->repo, LG_FORMAT_TEXT, strlen(LG_FORMAT_TEXT)) < 0 ||
        git_treebuilder_new(&tb, lg->repo, NULL) < 0 ||
        git_treebuilder_insert(NULL, tb, "FORMAT", &blob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_write(&tree_oid, tb) < 0 || git_tree_lookup(&tree, lg->repo, &tree_oid) < 0 ||
        git_commit_create(out, lg->repo, NULL, sig, sig, NULL, "ledger: init (migrated to format 2)\n", tree, 0,
                          NULL) < 0)
        err = lgl_git_fail("creating the format 2 root");
    git_tree_free(tree);
    git_treebuilder_free(tb);
    return err;
}

/* Appends run k (converted manifest m, old run directory ri) after *parent. */
static int append(lg_ledger *lg, git_signature *sig, const lg_run_info *ri, long k, const cJSON *m, char prev[65],
                  git_oid *parent, char new_id[65])
{
    git_tree *rt = NULL;
    git_treebuilder *tb = NULL;
    git_oid mblob, cblob, run_tree;
    lg_buf canon = LG_BUF_INIT, chain = LG_BUF_INIT, msg = LG_BUF_INIT;
    int err;

    if ((err = lg_json_canonical(m, &canon)) < 0 || (err = lg_sha256_buf(canon.ptr, canon.len, new_id)) < 0 ||
        (err = lg_chain_json_make(k, new_id, prev[0] ? prev : NULL, &chain)) < 0)
        goto out;
    if (git_blob_create_from_buffer(&mblob, lg->repo, canon.ptr, canon.len) < 0 ||
        git_blob_create_from_buffer(&cblob, lg->repo, chain.ptr, chain.len) < 0 ||
        git_tree_lookup(&rt, lg->repo, &ri->tree) < 0 || git_treebuilder_new(&tb, lg->repo, rt) < 0 ||
        git_treebuilder_insert(NULL, tb, "manifest.json", &mblob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_insert(NULL, tb, LG_CHAIN_FILE, &cblob, GIT_FILEMODE_BLOB) < 0) {
        err = lgl_git_fail("building a migrated run directory");
        goto out;
    }
    if (git_treebuilder_get(tb, "signature.json"))
        git_treebuilder_remove(tb, "signature.json"); /* signed the format-1 id: cannot carry over */
    if (git_treebuilder_write(&run_tree, tb) < 0) {
        err = lgl_git_fail("writing a migrated run directory");
        goto out;
    }
    if ((err = lg_buf_printf(&msg, "ledger: run %ld %s\n\nmigrated from format 1 run %s\n", k, new_id, ri->run_id)) < 0 ||
        (err = lg_ledger_append_run_dir(lg, parent, k, new_id, &run_tree, sig, msg.ptr, "committing a migrated run")) < 0)
        goto out;
    err = lg_sha256_buf(chain.ptr, chain.len, prev);
out:
    git_tree_free(rt);
    git_treebuilder_free(tb);
    lg_buf_release(&canon);
    lg_buf_release(&chain);
    lg_buf_release(&msg);
    return err;
}

static int rewrite_config(lg_ledger *lg)
{
    char *path = lgl_path2(lg->dir, "ledger.json");
    lg_buf text = LG_BUF_INIT;
    cJSON *j = NULL;
    const cJSON *v;
    double small = LG_SMALL_OUTPUT_MAX_DEFAULT;
    int err;
    if (!path)
        return LG_ENOMEM;
    if ((err = lg_file_read(path, 1 << 20, &text)) >= 0 && (j = cJSON_Parse(text.ptr)) &&
        cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "small_output_max")) && v->valuedouble >= 0 &&
        v->valuedouble == floor(v->valuedouble))
        small = v->valuedouble;
    lg_error_clear();
    lg_buf_clear(&text);
    if ((err = lg_buf_printf(&text, "{\n  \"format\": %d,\n  \"small_output_max\": %.0f\n}\n", LG_LEDGER_FORMAT,
                             small)) >= 0)
        err = lg_file_write_atomic(path, text.ptr, text.len);
    cJSON_Delete(j);
    lg_buf_release(&text);
    lg_free(path);
    return err;
}

int lg_ledger_migrate(const char *dir, lg_migrate_fn fn, void *ctx, lg_migrate_result *res)
{
    git_repository *repo = NULL;
    git_reference *ref = NULL, *made = NULL;
    git_signature *sig = NULL;
    lg_ledger *lg = NULL;
    lg_run_info *runs = NULL;
    cJSON *m = NULL;
    git_oid old_tip, parent;
    size_t n = 0, i;
    char old_prev[65] = "", prev[65] = "", new_id[65];
    int err = 0, locked = 0;

    memset(res, 0, sizeof(*res));
    git_libgit2_init();
    if (git_repository_open_ext(&repo, dir, 0, NULL) < 0 || git_repository_is_bare(repo)) {
        err = lg_error_set(LG_EINPUT, "%s: not a git repository with a work tree", dir);
        goto out;
    }
    if ((err = lgl_new(repo, &lg)) < 0)
        goto out;
    repo = NULL;
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if (git_reference_lookup(&ref, lg->repo, LG_LEDGER_REF) < 0 || !git_reference_target(ref)) {
        err = lg_error_set(LG_EINPUT, "%s: no branch %s to migrate", lg->root, LG_LEDGER_REF);
        goto out;
    }
    git_oid_cpy(&old_tip, git_reference_target(ref));
    if (lg_ledger_check_format_at(lg->repo, &old_tip, LG_LEDGER_REF) == 0) {
        res->already = 1; /* format 2 already: nothing to do */
        goto out;
    }
    if (!strstr(lg_error_msg(), "format 1 ledger")) {
        err = lg_error_code();
        goto out;
    }
    lg_error_clear();
    if ((err = lg_ledger_runs_at(lg, &old_tip, &runs, &n)) < 0 || (err = lgl_make_signature(lg->repo, &sig)) < 0 ||
        (err = new_root(lg, sig, &parent)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        git_tree *t = NULL;
        git_tree_entry *e = NULL;
        if ((err = convert(lg, &runs[i], (long)i + 1, old_prev, &m)) < 0)
            goto out;
        if (git_tree_lookup(&t, lg->repo, &runs[i].tree) == 0 && git_tree_entry_bypath(&e, t, "signature.json") == 0)
            res->signatures_dropped++;
        git_tree_entry_free(e);
        git_tree_free(t);
        if ((err = append(lg, sig, &runs[i], (long)i + 1, m, prev, &parent, new_id)) < 0)
            goto out;
        if (fn)
            fn(ctx, (long)i + 1, runs[i].run_id, new_id);
        memcpy(old_prev, runs[i].run_id, 65);
        cJSON_Delete(m);
        m = NULL;
        res->runs++;
    }
    if (git_reference_create(&made, lg->repo, BACKUP_REF, &old_tip, 1, "ledger migrate: the format 1 branch") < 0) {
        err = lgl_git_fail("keeping the format 1 branch at " BACKUP_REF);
        goto out;
    }
    git_reference_free(made);
    made = NULL;
    if (git_reference_create(&made, lg->repo, LG_LEDGER_REF, &parent, 1, "ledger migrate: format 2") < 0) {
        err = lgl_git_fail("moving " LG_LEDGER_REF);
        goto out;
    }
    if ((err = lg_mkdir_p(lg->dir, 0755)) < 0 || (err = rewrite_config(lg)) < 0)
        goto out;
    err = lg_ledger_reindex(lg);
out:
    if (locked)
        lg_ledger_unlock(lg);
    cJSON_Delete(m);
    lg_free(runs);
    git_signature_free(sig);
    git_reference_free(made);
    git_reference_free(ref);
    lg_ledger_free(lg);
    git_repository_free(repo);
    return err;
}

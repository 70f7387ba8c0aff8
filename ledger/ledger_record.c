/*
 * ledger_record.c - recording a run.
 *
 * Order under the writer lock: refuse a rewritten index (recover.c: no silent
 * repair), store every output (tmp, fsync, rename: a failure leaves the
 * branch untouched), build the canonical manifest (its SHA-256 is the run
 * id) and chain.json (seq and the previous entry's digest), commit the run
 * directory with git_commit_create(update_ref), which refuses to move the ref
 * if its tip is not our parent, then update the index in one transaction.
 * The run's git objects reach the disk through one barrier (git_batch.c)
 * before the commit and the ref are written, each with its own fsync.
 *
 * Invariants kept:
 *   - commit k adds exactly runs/<k>-<id12>/ and changes nothing else;
 *   - manifest.json there is canonical JSON (no seq/prev, a random nonce),
 *     and id = SHA-256(manifest bytes);
 *   - chain.json = {"format":2,"prev":<entry digest of run k-1|null>,
 *     "run":<id>,"seq":k};
 *   - every output is in the store; small ones also under files/.
 * verify.c checks each of these; the index is rebuilt from them.
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/sha256.h"
#include "engine/engine.h"
#include "ledger/gitstate.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/recover.h"
#include "ledger/sign.h"
#include "ledger_version.h"

typedef struct {
    const lg_run_file *f;
    char sha[65];
    uint64_t size;
    int in_tree;
    git_oid blob;
} out_file;

static int cmp_out_file(const void *a, const void *b)
{
    return strcmp(((const out_file *)a)->f->name, ((const out_file *)b)->f->name);
}

static int check_input(const lg_run_input *in)
{
    static const char *const kinds[] = {"run", "record", "report", "import", "export"};
    size_t i;
    int ok = 0;
    if (!in->kind)
        return lg_error_set(LG_EINPUT, "record: kind is required");
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        ok |= strcmp(in->kind, kinds[i]) == 0;
    if (!ok)
        return lg_error_set(LG_EINPUT, "record: kind '%s' is not one of run, record, report, import, export", in->kind);
    if (!in->study || !*in->study)
        return lg_error_set(LG_EINPUT, "record: a study name is required");
    for (i = 0; in->study[i]; i++)
        if ((unsigned char)in->study[i] < 0x20)
            return lg_error_set(LG_EINPUT, "record: study name has a control character");
    if (!in->status || (strcmp(in->status, "ok") != 0 && strcmp(in->status, "failed") != 0))
        return lg_error_set(LG_EINPUT, "record: status must be \"ok\" or \"failed\"");
    if (in->spec_digest && !lg_sha256_hex_valid(in->spec_digest))
        return lg_error_set(LG_EINPUT, "record: spec digest '%s' is not a SHA-256 digest", in->spec_digest);
    if (in->data_digest && !lg_sha256_hex_valid(in->data_digest))
        return lg_error_set(LG_EINPUT, "record: data digest '%s' is not a SHA-256 digest", in->data_digest);
    if (in->results)
        return lg_results_check(in->results, "results");
    return 0;
}

static cJSON *str_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static int add_item(cJSON *obj, const char *key, cJSON *v)
{
    if (!v || !cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return lg_error_set(LG_ENOMEM, "out of memory building the manifest");
    }
    return 0;
}

static int add_copy(cJSON *obj, const char *key, const cJSON *v)
{
    return add_item(obj, key, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

/* 128 random bits: two runs with the same content recorded in the same
 * second are still two runs with two ids (format 2 ids cover no seq/prev). */
static int make_nonce(char out[LG_NONCE_HEX + 1])
{
    unsigned char b[LG_NONCE_HEX / 2];
    size_t i;
    ssize_t got = getrandom(b, sizeof b, 0);
    if (got != (ssize_t)sizeof b)
        return lg_error_set(LG_EIO, "getrandom: %s", got < 0 ? strerror(errno) : "short read");
    for (i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

static int build_manifest(lg_ledger *lg, const lg_run_input *in, const out_file *files, cJSON **out)
{
    cJSON *m = cJSON_CreateObject(), *outs = NULL;
    git_oid head;
    char head_hex[GIT_OID_HEXSZ + 1] = "", host[256] = "", created[32], nonce[LG_NONCE_HEX + 1], diff_hex[65] = "";
    size_t i;
    int err = 0, dirty = -1;

    *out = NULL;
    if (!m)
        return lg_error_set(LG_ENOMEM, "out of memory building the manifest");
    if (git_reference_name_to_id(&head, lg->repo, "HEAD") == 0)
        git_oid_tostr(head_hex, sizeof head_hex, &head);
    if (gethostname(host, sizeof host - 1) < 0)
        host[0] = '\0';
    lg_utc_iso8601(created, sizeof created);
    if ((err = make_nonce(nonce)) < 0)
        goto out;
    /* beside HEAD: does the work tree differ from it, and by what (gitstate.h) */
    if ((err = lg_git_worktree_state(lg->repo, &dirty, diff_hex)) < 0)
        goto out;
    if ((err = add_item(m, "format", cJSON_CreateNumber(LG_MANIFEST_FORMAT))) < 0 ||
        (err = add_item(m, "kind", cJSON_CreateString(in->kind))) < 0 ||
        (err = add_item(m, "study", cJSON_CreateString(in->study))) < 0 ||
        (err = add_item(m, "study_path", str_or_null(in->study_path))) < 0 ||
        (err = add_item(m, "spec_digest", str_or_null(in->spec_digest))) < 0 ||
        (err = add_item(m, "data_digest", str_or_null(in->data_digest))) < 0 ||
        (err = add_item(m, "engine_version", cJSON_CreateString(lg_engine_version()))) < 0 ||
        (err = add_item(m, "ledger_version", cJSON_CreateString(LEDGER_VERSION))) < 0 ||
        (err = add_item(m, "code_commit", str_or_null(head_hex[0] ? head_hex : NULL))) < 0 ||
        (err = add_item(m, "code_dirty", dirty < 0 ? cJSON_CreateNull() : cJSON_CreateBool(dirty))) < 0 ||
        (err = add_item(m, "code_diff_sha256", str_or_null(diff_hex[0] ? diff_hex : NULL))) < 0 ||
        (err = add_item(m, "backend", str_or_null(in->backend))) < 0 ||
        (err = add_item(m, "device", str_or_null(in->device))) < 0 ||
        (err = add_item(m, "host", str_or_null(host[0] ? host : NULL))) < 0 ||
        (err = add_item(m, "created", cJSON_CreateString(created))) < 0 ||
        (err = add_item(m, "nonce", cJSON_CreateString(nonce))) < 0 ||
        (err = add_item(m, "status", cJSON_CreateString(in->status))) < 0 ||
        (err = add_copy(m, "spec", in->spec)) < 0 || (err = add_copy(m, "results", in->results)) < 0 ||
        (err = add_copy(m, "extra", in->extra)) < 0)
        goto out;
    if ((err = add_item(m, "outputs", outs = cJSON_CreateArray())) < 0)
        goto out;
    for (i = 0; i < in->nfiles; i++) {
        cJSON *o = cJSON_CreateObject();
        if ((err = add_item(outs, "", o)) < 0) /* key ignored for arrays */
            goto out;
        if ((err = add_item(o, "name", cJSON_CreateString(files[i].f->name))) < 0 ||
            (err = add_item(o, "sha256", cJSON_CreateString(files[i].sha))) < 0 ||
            (err = add_item(o, "size", cJSON_CreateNumber((double)files[i].size))) < 0 ||
            (err = add_item(o, "media_type", cJSON_CreateString(files[i].f->media_type ? files[i].f->media_type
                                                                                          : "application/octet-stream"))) < 0 ||
            (err = add_item(o, "in_tree", cJSON_CreateBool(files[i].in_tree))) < 0)
            goto out;
    }
    *out = m;
    m = NULL;
out:
    cJSON_Delete(m);
    return err;
}

int lg_ledger_record(lg_ledger *lg, const lg_run_input *in, char run_id_out[65])
{
    out_file *files = NULL;
    lg_run_info last;
    int have_last = 0, batching = 0;
    size_t i, nupd = 0;
    git_commit *tip = NULL;
    git_tree *tip_t = NULL, *new_t = NULL;
    git_tree_update *upd = NULL;
    git_signature *sig = NULL;
    git_oid tree_oid, commit_oid, manifest_blob;
    lg_buf canon = LG_BUF_INIT, msg = LG_BUF_INIT, paths = LG_BUF_INIT;
    char **upd_paths = NULL;
    cJSON *m = NULL;
    char run_id[65], old_tip[GIT_OID_HEXSZ + 1], idx_tip[65], new_tip[GIT_OID_HEXSZ + 1];
    const char *prev = NULL;
    lg_chain_link prev_link;
    lg_buf chain = LG_BUF_INIT;
    git_oid chain_blob;
    long seq = 1;
    int err, locked = 0;
    sqlite3 *db;

    run_id_out[0] = '\0';
    if ((err = check_input(in)) < 0)
        goto out;
    if (in->nfiles && !(files = lg_calloc(in->nfiles, sizeof(*files)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < in->nfiles; i++) {
        files[i].f = &in->files[i];
        if ((err = lg_manifest_check_name(in->files[i].name)) < 0)
            goto out;
        if (!lg_path_exists(in->files[i].path)) {
            err = lg_error_set(LG_ENOTFOUND, "%s: no such file", in->files[i].path);
            goto out;
        }
    }
    if (in->nfiles)
        qsort(files, in->nfiles, sizeof(*files), cmp_out_file);
    for (i = 1; i < in->nfiles; i++) {
        const char *a = files[i - 1].f->name, *b = files[i].f->name;
        size_t la = strlen(a);
        if (strcmp(a, b) == 0) {
            err = lg_error_set(LG_EINPUT, "output name '%s' is given twice", a);
            goto out;
        }
        if (strncmp(a, b, la) == 0 && b[la] == '/') {
            err = lg_error_set(LG_EINPUT, "output name '%s' is both a file and the directory of '%s'", a, b);
            goto out;
        }
    }
    /* Names like "a" and "a.b/c" sort apart from "a/..." only by byte order;
     * a full pairwise check catches "x" vs "x/y" when something sorts between. */
    for (i = 0; i < in->nfiles; i++) {
        size_t j, la = strlen(files[i].f->name);
        for (j = i + 1; j < in->nfiles; j++)
            if (strncmp(files[i].f->name, files[j].f->name, la) == 0 && files[j].f->name[la] == '/') {
                err = lg_error_set(LG_EINPUT, "output name '%s' is both a file and a directory", files[i].f->name);
                goto out;
            }
    }

    /* No silent repair: an index left behind by a crash is caught up, but one
     * whose tip is off the branch (a rewrite) stops the record (recover.h). */
    if ((err = lg_ledger_lock_caught_up(lg)) < 0)
        goto out;
    locked = 1;

    /* The run's git objects are made durable by one barrier before the
     * commit (git_batch.c), not by two fsyncs each. */
    lgl_objects_batch_begin(lg);
    batching = 1;
    /* Store every output first: a failure here leaves the branch untouched. */
    for (i = 0; i < in->nfiles; i++) {
        if ((err = lg_store_put_file(lg->store, files[i].f->path, files[i].sha, &files[i].size, NULL)) < 0)
            goto out;
        files[i].in_tree = files[i].size <= lg->small_max;
        if (files[i].in_tree) {
            lg_buf objpath = LG_BUF_INIT;
            int rc = lg_store_path(lg->store, files[i].sha, &objpath);
            if (rc >= 0 && git_blob_create_from_disk(&files[i].blob, lg->repo, objpath.ptr) < 0)
                rc = lgl_git_fail(objpath.ptr);
            lg_buf_release(&objpath);
            if ((err = rc) < 0)
                goto out;
        }
    }

    lg_fault_point("record:stored");
    /* Only the last run matters here (seq + 1, its chain entry's digest): the
     * names of runs/ give it without reading every manifest. */
    if ((err = lgl_tip_tree(lg, &tip, &tip_t)) < 0 || (err = lgl_last_run_of_tree(lg, tip_t, &last, &have_last)) < 0)
        goto out;
    git_oid_tostr(old_tip, sizeof old_tip, git_commit_id(tip));
    if (have_last) {
        seq = last.seq + 1;
        if ((err = lg_ledger_chain_link(lg, &last, &prev_link)) < 0)
            goto out;
        prev = prev_link.digest;
    }
    if ((err = build_manifest(lg, in, files, &m)) < 0 || (err = lg_json_canonical(m, &canon)) < 0 ||
        (err = lg_sha256_buf(canon.ptr, canon.len, run_id)) < 0)
        goto out;
    if (canon.len > LG_MANIFEST_MAX) {
        err = lg_error_set(LG_EINPUT, "record: the manifest would be %zu bytes (limit %u)", canon.len, LG_MANIFEST_MAX);
        goto out;
    }
    if (git_blob_create_from_buffer(&manifest_blob, lg->repo, canon.ptr, canon.len) < 0) {
        err = lgl_git_fail("writing the manifest blob");
        goto out;
    }
    if ((err = lg_chain_json_make(seq, run_id, prev, &chain)) < 0)
        goto out;
    if (git_blob_create_from_buffer(&chain_blob, lg->repo, chain.ptr, chain.len) < 0) {
        err = lgl_git_fail("writing the chain entry blob");
        goto out;
    }

    /* Tree: base tree + runs/<seq>-<id12>/{manifest.json, chain.json, files/...}. */
    if (!(upd = lg_calloc(in->nfiles + 3, sizeof(*upd))) || !(upd_paths = lg_calloc(in->nfiles + 3, sizeof(char *)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i <= in->nfiles + 1; i++) {
        lg_buf_clear(&paths);
        if (i == in->nfiles)
            err = lg_buf_printf(&paths, "runs/%ld-%.12s/manifest.json", seq, run_id);
        else if (i == in->nfiles + 1)
            err = lg_buf_printf(&paths, "runs/%ld-%.12s/" LG_CHAIN_FILE, seq, run_id);
        else if (files[i].in_tree)
            err = lg_buf_printf(&paths, "runs/%ld-%.12s/files/%s", seq, run_id, files[i].f->name);
        else
            continue;
        if (err < 0 || !(upd_paths[nupd] = lg_strdup(paths.ptr))) {
            err = err < 0 ? err : LG_ENOMEM;
            goto out;
        }
        upd[nupd].action = GIT_TREE_UPDATE_UPSERT;
        git_oid_cpy(&upd[nupd].id, i == in->nfiles ? &manifest_blob : i > in->nfiles ? &chain_blob : &files[i].blob);
        upd[nupd].filemode = GIT_FILEMODE_BLOB;
        upd[nupd].path = upd_paths[nupd];
        nupd++;
    }
    if (in->sign_key_path) { /* signature over the run id, in the same commit (ledger/sign.h) */
        lg_buf_clear(&paths);
        if ((err = lg_sign_run_blob(lg->repo, in->sign_key_path, run_id, &upd[nupd].id)) < 0 ||
            (err = lg_buf_printf(&paths, "runs/%ld-%.12s/" LG_SIGN_FILE, seq, run_id)) < 0)
            goto out;
        if (!(upd_paths[nupd] = lg_strdup(paths.ptr))) {
            err = LG_ENOMEM;
            goto out;
        }
        upd[nupd].action = GIT_TREE_UPDATE_UPSERT;
        upd[nupd].filemode = GIT_FILEMODE_BLOB;
        upd[nupd].path = upd_paths[nupd];
        nupd++;
    }
    if (git_tree_create_updated(&tree_oid, lg->repo, tip_t, nupd, upd) < 0 ||
        git_tree_lookup(&new_t, lg->repo, &tree_oid) < 0) {
        err = lgl_git_fail("building the run's tree");
        goto out;
    }
    if ((err = lgl_make_signature(lg->repo, &sig)) < 0)
        goto out;
    if ((err = lg_buf_printf(&msg, "ledger: run %ld %s\n\nkind: %s\nstudy: %s\nstatus: %s\n", seq, run_id, in->kind,
                             in->study, in->status)) < 0)
        goto out;
    if ((err = lgl_objects_batch_commit(lg)) < 0)
        goto out;
    batching = 0;
    if ((err = lgl_clear_stale_ref_lock(lg)) < 0)
        goto out;
    if (git_commit_create(&commit_oid, lg->repo, LG_LEDGER_REF, sig, sig, NULL, msg.ptr, new_t, 1,
                          (const git_commit **)&tip) < 0) {
        err = lgl_git_fail("committing the run to " LG_LEDGER_REF);
        goto out;
    }
    memcpy(run_id_out, run_id, 65);
    git_oid_tostr(new_tip, sizeof new_tip, &commit_oid);
    lg_fault_point("record:committed");

    /* Index: incremental when it reflects the parent, else a full rebuild. */
    if (!(db = lg_ledger_db(lg)) || lg_index_get_tip(db, idx_tip) < 0 || strcmp(idx_tip, old_tip) != 0) {
        err = lg_ledger_reindex(lg);
    } else {
        char sha_hex[65];
        if ((err = lg_sha256_buf(canon.ptr, canon.len, sha_hex)) < 0 ||
            (err = lg_index_exec(db, "BEGIN IMMEDIATE", "starting a transaction")) < 0)
            goto idx_out;
        if ((err = lg_index_add_run(db, m, seq, run_id, sha_hex, new_tip)) < 0 || (err = lg_index_set_tip(db, new_tip)) < 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto idx_out;
        }
        lg_fault_point("record:indexing");
        if ((err = lg_index_exec(db, "COMMIT", "committing")) < 0)
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* do not leave the handle inside a transaction */
    }
idx_out:
    if (err < 0)
        lg_error_wrap("run %.12s recorded, but the index was not updated (run 'ledger reindex')", run_id);
out:
    if (batching)
        lgl_objects_batch_end(lg);
    if (locked)
        lg_ledger_unlock(lg);
    if (upd_paths)
        for (i = 0; i < nupd; i++)
            lg_free(upd_paths[i]);
    lg_free(upd_paths);
    lg_free(upd);
    lg_free(files);
    cJSON_Delete(m);
    git_signature_free(sig);
    git_tree_free(new_t);
    git_tree_free(tip_t);
    git_commit_free(tip);
    lg_buf_release(&canon);
    lg_buf_release(&chain);
    lg_buf_release(&msg);
    lg_buf_release(&paths);
    return err;
}

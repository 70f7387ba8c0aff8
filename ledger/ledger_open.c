/*
 * ledger_open.c - making a repository a ledger (init), opening one
 * (discovery), its config, and the index handle for readers.
 *
 * Why git objects and not files: the ledger travels with the repository
 * (push/fetch the branch) and git gives us content-addressed trees for free.
 * We never check the branch out: init creates the root commit from the object
 * database and never touches the user's HEAD, git index or work tree.
 *
 * Every command opens through lg_ledger_open, which refuses, with exit 2, a
 * ledger of another format (ledger.json and the branch's FORMAT, see
 * ledger_core.c), so no command ever reads a format-1 ledger as format 2.
 * lg_ledger_db hands readers the index only after recover.c has caught it up
 * (an interrupted record) or refused it (a rewritten branch).
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/index.h"
#include "ledger/recover.h"
#include "ledger/worktree_guard.h"

static int write_config(const char *dir, uint64_t small_max)
{
    char *path = lgl_path2(dir, "ledger.json");
    lg_buf text = LG_BUF_INIT;
    int err;
    if (!path)
        return LG_ENOMEM;
    err = lg_buf_printf(&text, "{\n  \"format\": %d,\n  \"small_output_max\": %llu\n}\n", LG_LEDGER_FORMAT,
                        (unsigned long long)small_max);
    if (err >= 0)
        err = lg_file_write_atomic(path, text.ptr, text.len);
    lg_buf_release(&text);
    lg_free(path);
    return err;
}

static int read_config(const char *dir, uint64_t *small_max)
{
    char *path = lgl_path2(dir, "ledger.json");
    lg_buf text = LG_BUF_INIT;
    cJSON *j = NULL;
    const cJSON *v;
    int err;
    if (!path)
        return LG_ENOMEM;
    if ((err = lg_file_read(path, 1 << 20, &text)) < 0)
        goto out;
    if (!(j = cJSON_Parse(text.ptr))) {
        err = lg_error_set(LG_EINPUT, "%s: not valid JSON", path);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (cJSON_IsNumber(v) && v->valuedouble == 1) {
        err = lg_error_set(LG_EINPUT, "format 1 ledger: %s says format 1; " LG_FORMAT1_ADVICE, path);
        goto out;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != LG_LEDGER_FORMAT) {
        err = lg_error_set(LG_EINPUT, "%s: format: expected %d", path, LG_LEDGER_FORMAT);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "small_output_max");
    if (!v)
        *small_max = LG_SMALL_OUTPUT_MAX_DEFAULT;
    else if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble)) {
        err = lg_error_set(LG_EINPUT, "%s: small_output_max: not a byte count", path);
        goto out;
    } else
        *small_max = (uint64_t)v->valuedouble;
out:
    cJSON_Delete(j);
    lg_buf_release(&text);
    lg_free(path);
    return err;
}

int lgl_read_config(const char *dir, uint64_t *small_max) { return read_config(dir, small_max); }

/* Adds ".ledger/" to <gitdir>/info/exclude unless a line says so already. */
static int add_exclude(git_repository *repo)
{
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT, info = LG_BUF_INIT;
    const char *line = "/" LG_LEDGER_DIR "/";
    const char *s;
    int err;

    if ((err = lg_path_join(&info, git_repository_commondir(repo), "info")) < 0 ||
        (err = lg_mkdir_p(info.ptr, 0755)) < 0 || (err = lg_path_join(&path, info.ptr, "exclude")) < 0)
        goto out;
    err = lg_file_read(path.ptr, 1 << 20, &text);
    if (err == LG_ENOTFOUND)
        err = lg_buf_grow(&text, 0);
    if (err < 0)
        goto out;
    for (s = text.ptr; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == strlen(line) && strncmp(s, line, n) == 0) || (n == strlen(line) - 1 && strncmp(s, line + 1, n) == 0))
            goto out; /* present */
        s += n + (e ? 1 : 0);
    }
    if (text.len && text.ptr[text.len - 1] != '\n' && (err = lg_buf_puts(&text, "\n")) < 0)
        goto out;
    if ((err = lg_buf_printf(&text, "%s\n", line)) < 0)
        goto out;
    err = lg_file_write_atomic(path.ptr, text.ptr, text.len);
out:
    lg_buf_release(&path);
    lg_buf_release(&text);
    lg_buf_release(&info);
    return err;
}

/* Creates the root commit of the ledger branch: a tree holding FORMAT. */
static int create_root(git_repository *repo)
{
    static const char format_text[] = LG_FORMAT_TEXT;
    git_oid blob, tree_oid, commit;
    git_treebuilder *tb = NULL;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    int err = 0;

    if (git_blob_create_from_buffer(&blob, repo, format_text, sizeof(format_text) - 1) < 0 ||
        git_treebuilder_new(&tb, repo, NULL) < 0 || git_treebuilder_insert(NULL, tb, "FORMAT", &blob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_write(&tree_oid, tb) < 0 || git_tree_lookup(&tree, repo, &tree_oid) < 0) {
        err = lgl_git_fail("creating the ledger root tree");
        goto out;
    }
    if ((err = lgl_make_signature(repo, &sig)) < 0)
        goto out;
    if (git_commit_create(&commit, repo, LG_LEDGER_REF, sig, sig, NULL, "ledger: init\n", tree, 0, NULL) < 0)
        err = lgl_git_fail("creating the ledger branch");
out:
    git_signature_free(sig);
    git_tree_free(tree);
    git_treebuilder_free(tb);
    return err;
}

/* libgit2 does not fsync by default: without this, a power loss right after a
 * record could leave refs/heads/ledger pointing at loose objects (or a ref
 * file) that never reached the disk, losing a "finished" run or leaving the
 * branch unreadable (DESIGN.md section 5, Atomicity). The option is global
 * and sticky; setting it on every open is harmless. */
static void libgit2_up(void)
{
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
}

static int open_repo(const char *start_dir, git_repository **out)
{
    int rc = git_repository_open_ext(out, start_dir, 0, NULL);
    if (rc == GIT_ENOTFOUND) {
        char *abs = realpath(start_dir, NULL); /* name the place, not "." */
        rc = lg_error_set(LG_EINPUT, "%s: not a git repository (or any parent); run 'ledger init' to make one",
                          abs ? abs : start_dir);
        free(abs);
        return rc;
    }
    if (rc < 0)
        return lgl_git_fail(start_dir);
    if (git_repository_is_bare(*out)) {
        git_repository_free(*out);
        *out = NULL;
        return lg_error_set(LG_EINPUT, "%s: a bare repository cannot hold a ledger (it needs a work tree)", start_dir);
    }
    return 0;
}

int lg_ledger_open(const char *start_dir, lg_ledger **out)
{
    git_repository *repo = NULL;
    lg_ledger *lg = NULL;
    git_reference *ref = NULL;
    char *cfg = NULL, *storedir = NULL;
    int err;

    *out = NULL;
    libgit2_up();
    if ((err = open_repo(start_dir, &repo)) < 0 || (err = lg_ledger_dir_untracked(repo)) < 0)
        goto out;
    if ((err = lgl_new(repo, &lg)) < 0)
        goto out;
    repo = NULL;
    if (!(cfg = lgl_path2(lg->dir, "ledger.json")) || !(storedir = lgl_path2(lg->dir, "store"))) {
        err = LG_ENOMEM;
        goto out;
    }
    if (!lg_path_exists(cfg)) {
        err = lg_error_set(LG_EINPUT, "%s: not a ledger (no %s/ledger.json); run 'ledger init'", lg->root,
                           LG_LEDGER_DIR);
        goto out;
    }
    if ((err = read_config(lg->dir, &lg->small_max)) < 0)
        goto out;
    if (git_reference_lookup(&ref, lg->repo, LG_LEDGER_REF) < 0) {
        err = lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
        goto out;
    }
    if (git_reference_target(ref) &&
        (err = lg_ledger_check_format_at(lg->repo, git_reference_target(ref), LG_LEDGER_REF)) < 0)
        goto out;
    if ((err = lg_store_open(storedir, 0, &lg->store)) < 0) {
        lg_error_wrap("%s", lg->dir);
        goto out;
    }
    *out = lg;
    lg = NULL;
out:
    git_reference_free(ref);
    lg_free(cfg);
    lg_free(storedir);
    lg_ledger_free(lg);
    git_repository_free(repo);
    return err;
}

sqlite3 *lg_ledger_db(lg_ledger *lg)
{
    if (lg->db)
        return lg->db;
    if (!lg_path_exists(lg->index_path)) {
        lg_error_set(LG_EINPUT, "%s: the index is missing; run 'ledger reindex'", lg->index_path);
        return NULL;
    }
    /* Readers catch up an index left behind by an interrupted record (recover.h);
     * a writer holding the lock handles it in lg_ledger_record. */
    if (lg->lock_depth == 0 && lg_ledger_index_catch_up(lg, NULL) < 0)
        return NULL;
    if (lg_index_open(lg->index_path, 0, &lg->db) < 0)
        return NULL;
    return lg->db;
}

int lg_ledger_init(const char *dir, const lg_init_opts *opts, lg_init_result *res)
{
    git_repository *repo = NULL;
    git_reference *ref = NULL, *remote = NULL, *made = NULL;
    lg_ledger *lg = NULL;
    lg_store *st = NULL;
    char *cfg = NULL, *storedir = NULL;
    lg_init_result r = {0, 0, 0};
    int rc, err, locked = 0;

    libgit2_up();
    rc = git_repository_open_ext(&repo, dir, 0, NULL);
    if (rc == GIT_ENOTFOUND) {
        if (git_repository_init(&repo, dir, 0) < 0) {
            err = lgl_git_fail(dir);
            goto out;
        }
        r.created_repo = 1;
    } else if (rc < 0) {
        err = lgl_git_fail(dir);
        goto out;
    }
    if (git_repository_is_bare(repo)) {
        err = lg_error_set(LG_EINPUT, "%s: a bare repository cannot hold a ledger (it needs a work tree)", dir);
        goto out;
    }
    if ((err = lg_ledger_dir_untracked(repo)) < 0) /* a planted .ledger/ is never kept */
        goto out;
    if ((err = lgl_new(repo, &lg)) < 0)
        goto out;
    repo = NULL;
    if ((err = lg_mkdir_p(lg->dir, 0755)) < 0)
        goto out;
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if (!(cfg = lgl_path2(lg->dir, "ledger.json")) || !(storedir = lgl_path2(lg->dir, "store"))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_store_open(storedir, 1, &st)) < 0)
        goto out;
    if (lg_path_exists(cfg)) {
        r.already = 1;
        if ((err = read_config(lg->dir, &lg->small_max)) < 0)
            goto out;
        if (opts && opts->small_output_max_set && opts->small_output_max != lg->small_max &&
            (err = write_config(lg->dir, opts->small_output_max)) < 0)
            goto out;
    } else if ((err = write_config(lg->dir, opts && opts->small_output_max_set ? opts->small_output_max
                                                                                 : LG_SMALL_OUTPUT_MAX_DEFAULT)) < 0) {
        goto out;
    }
    if ((err = add_exclude(lg->repo)) < 0)
        goto out;
    if (git_reference_lookup(&ref, lg->repo, LG_LEDGER_REF) == 0) {
        if (git_reference_target(ref) &&
            (err = lg_ledger_check_format_at(lg->repo, git_reference_target(ref), LG_LEDGER_REF)) < 0)
            goto out;
    } else {
        r.already = 0;
        r.created_branch = 1;
        if (git_reference_lookup(&remote, lg->repo, "refs/remotes/origin/ledger") == 0 && git_reference_target(remote)) {
            if ((err = lg_ledger_check_format_at(lg->repo, git_reference_target(remote), "origin/ledger")) < 0)
                goto out;
            if (git_reference_create(&made, lg->repo, LG_LEDGER_REF, git_reference_target(remote), 0,
                                     "ledger init: from origin/ledger") < 0) {
                err = lgl_git_fail("creating " LG_LEDGER_REF);
                goto out;
            }
        } else if ((err = create_root(lg->repo)) < 0) {
            goto out;
        }
    }
    lg_store_free(lg->store);
    lg->store = st;
    st = NULL;
    if (!lg_path_exists(lg->index_path)) {
        r.already = 0;
        if ((err = lg_ledger_reindex(lg)) < 0)
            goto out;
    }
    if (res)
        *res = r;
out:
    if (locked)
        lg_ledger_unlock(lg);
    git_reference_free(ref);
    git_reference_free(remote);
    git_reference_free(made);
    lg_store_free(st);
    lg_free(cfg);
    lg_free(storedir);
    lg_ledger_free(lg);
    if (repo) {
        git_repository_free(repo);
    }
    return err;
}

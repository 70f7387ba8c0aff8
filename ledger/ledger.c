/*
 * ledger.c - the git-backed ledger (see ledger.h for the layout).
 *
 * Why git objects and not files: the ledger travels with the repository
 * (push/fetch the branch) and git gives us content-addressed trees and an
 * append-only looking history for free. We never check the branch out: every
 * commit is built from the object database (blobs, git_tree_create_updated)
 * and landed with git_commit_create(update_ref=LG_LEDGER_REF), which also
 * refuses to move the ref if its tip is not our parent (a lost race).
 *
 * Invariants kept by lg_ledger_record under the writer lock:
 *   - commit k adds exactly runs/<k>-<id12>/ and changes nothing else;
 *   - manifest.json there is canonical JSON with seq = k and prev = the id
 *     of run k-1 (null for k = 1), and id = SHA-256(manifest bytes);
 *   - every output is in the store; small ones also under files/.
 * verify.c checks each of these; the SQLite index is rebuilt from them.
 */
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifacts/fault.h"
#include "artifacts/sha256.h"
#include "engine/engine.h"
#include "ledger/gitstate.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/recover.h"
#include "ledger/sign.h"
#include "ledger_version.h"

struct lg_ledger {
    git_repository *repo;
    char *root;
    char *dir;
    char *index_path;
    lg_store *store;
    sqlite3 *db;
    uint64_t small_max;
    int lock_fd;
    int lock_depth;
    double lock_timeout;
    lg_lock_notify_fn notify;
    void *notify_ctx;
};

static int git_fail(const char *what)
{
    const git_error *e = git_error_last();
    return lg_error_set(LG_EIO, "git: %s: %s", what, e && e->message ? e->message : "failed");
}

/* ---- small path helpers -------------------------------------------------- */

static char *path2(const char *a, const char *b)
{
    lg_buf p = LG_BUF_INIT;
    if (lg_path_join(&p, a, b) < 0) {
        lg_buf_release(&p);
        return NULL;
    }
    return lg_buf_detach(&p);
}

static char *workdir_of(git_repository *repo)
{
    const char *wd = git_repository_workdir(repo);
    size_t n;
    if (!wd)
        return NULL;
    n = strlen(wd);
    while (n > 1 && wd[n - 1] == '/')
        n--;
    return lg_strndup(wd, n);
}

int lg_ledger_parse_dirname(const char *name, long *seq, char id12[13])
{
    const char *dash = strchr(name, '-');
    char *end;
    long s;
    if (!dash || dash == name || strlen(dash + 1) != 12)
        return lg_error_set(LG_EINPUT, "'%s' is not a run directory name (<seq>-<id12>)", name);
    s = strtol(name, &end, 10);
    if (end != dash || s < 1 || name[0] == '0' || !lg_sha256_prefix_valid(dash + 1))
        return lg_error_set(LG_EINPUT, "'%s' is not a run directory name (<seq>-<id12>)", name);
    *seq = s;
    memcpy(id12, dash + 1, 13);
    return 0;
}

/* ---- config ----------------------------------------------------------------- */

static int write_config(const char *dir, uint64_t small_max)
{
    char *path = path2(dir, "ledger.json");
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
    char *path = path2(dir, "ledger.json");
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

static int make_signature(git_repository *repo, git_signature **out)
{
    if (git_signature_default(out, repo) == 0)
        return 0;
    if (git_signature_now(out, "ledger", "ledger@localhost") == 0)
        return 0;
    return git_fail("creating a signature");
}

/* Creates the root commit of the ledger branch: a tree holding FORMAT. */
static int create_root(git_repository *repo)
{
    static const char format_text[] = "ledger-format 1\n";
    git_oid blob, tree_oid, commit;
    git_treebuilder *tb = NULL;
    git_tree *tree = NULL;
    git_signature *sig = NULL;
    int err = 0;

    if (git_blob_create_from_buffer(&blob, repo, format_text, sizeof(format_text) - 1) < 0 ||
        git_treebuilder_new(&tb, repo, NULL) < 0 || git_treebuilder_insert(NULL, tb, "FORMAT", &blob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_write(&tree_oid, tb) < 0 || git_tree_lookup(&tree, repo, &tree_oid) < 0) {
        err = git_fail("creating the ledger root tree");
        goto out;
    }
    if ((err = make_signature(repo, &sig)) < 0)
        goto out;
    if (git_commit_create(&commit, repo, LG_LEDGER_REF, sig, sig, NULL, "ledger: init\n", tree, 0, NULL) < 0)
        err = git_fail("creating the ledger branch");
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

/* ---- open / free ------------------------------------------------------------ */

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
        return git_fail(start_dir);
    if (git_repository_is_bare(*out)) {
        git_repository_free(*out);
        *out = NULL;
        return lg_error_set(LG_EINPUT, "%s: a bare repository cannot hold a ledger (it needs a work tree)", start_dir);
    }
    return 0;
}

static int ledger_new(git_repository *repo, lg_ledger **out)
{
    lg_ledger *lg = lg_calloc(1, sizeof(*lg));
    if (!lg)
        return LG_ENOMEM;
    lg->repo = repo;
    lg->lock_fd = -1;
    lg->lock_timeout = 30;
    if (!(lg->root = workdir_of(repo)) || !(lg->dir = path2(lg->root, LG_LEDGER_DIR)) ||
        !(lg->index_path = path2(lg->dir, "index.sqlite"))) {
        lg->repo = NULL;
        lg_ledger_free(lg);
        return LG_ENOMEM;
    }
    *out = lg;
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
    if ((err = open_repo(start_dir, &repo)) < 0)
        goto out;
    if ((err = ledger_new(repo, &lg)) < 0)
        goto out;
    repo = NULL;
    if (!(cfg = path2(lg->dir, "ledger.json")) || !(storedir = path2(lg->dir, "store"))) {
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

void lg_ledger_free(lg_ledger *lg)
{
    if (!lg)
        return;
    while (lg->lock_depth > 0)
        lg_ledger_unlock(lg);
    if (lg->db)
        sqlite3_close(lg->db);
    lg_store_free(lg->store);
    git_repository_free(lg->repo); /* libgit2 stays initialised: init is refcounted and cheap to keep */
    lg_free(lg->root);
    lg_free(lg->dir);
    lg_free(lg->index_path);
    lg_free(lg);
}

const char *lg_ledger_root(lg_ledger *lg) { return lg->root; }
const char *lg_ledger_dir(lg_ledger *lg) { return lg->dir; }
const char *lg_ledger_index_path(lg_ledger *lg) { return lg->index_path; }
git_repository *lg_ledger_repo(lg_ledger *lg) { return lg->repo; }
lg_store *lg_ledger_store(lg_ledger *lg) { return lg->store; }
uint64_t lg_ledger_small_output_max(lg_ledger *lg) { return lg->small_max; }

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

/* ---- lock ------------------------------------------------------------------- */

void lg_ledger_set_lock_wait(lg_ledger *lg, double timeout_s, lg_lock_notify_fn notify, void *ctx)
{
    lg->lock_timeout = timeout_s;
    lg->notify = notify;
    lg->notify_ctx = ctx;
}

int lg_ledger_lock(lg_ledger *lg)
{
    char *path = NULL, holder[32] = "", msg[512];
    double start = lg_now_seconds();
    int fd = -1, err = 0, told = 0;

    if (lg->lock_depth > 0) {
        lg->lock_depth++;
        return 0;
    }
    if (!(path = path2(lg->dir, "lock")))
        return LG_ENOMEM;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = lg_error_set(LG_EIO, "%s: cannot open the ledger lock: %s", path, strerror(errno));
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            err = lg_error_set(LG_EIO, "%s: flock: %s", path, strerror(errno));
            goto out;
        }
        n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (!told && lg->notify) {
            snprintf(msg, sizeof msg, "waiting for the ledger lock %s (held by pid %s), up to %g s", path,
                     *holder ? holder : "?", lg->lock_timeout);
            lg->notify(lg->notify_ctx, msg);
            told = 1;
        }
        if (lg_now_seconds() - start >= lg->lock_timeout) {
            err = lg_error_set(LG_ELOCKED, "%s: timed out after %g s waiting for the ledger lock (held by pid %s)",
                               path, lg->lock_timeout, *holder ? holder : "?");
            goto out;
        }
        usleep(50 * 1000);
    }
    {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
            /* the pid is informative only */
        }
    }
    lg->lock_fd = fd;
    lg->lock_depth = 1;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    lg_free(path);
    return err;
}

void lg_ledger_unlock(lg_ledger *lg)
{
    if (lg->lock_depth <= 0)
        return;
    if (--lg->lock_depth > 0)
        return;
    if (ftruncate(lg->lock_fd, 0) < 0) {
        /* informative only */
    }
    flock(lg->lock_fd, LOCK_UN);
    close(lg->lock_fd);
    lg->lock_fd = -1;
}

/* A refs/heads/ledger.lock left behind by a writer killed inside git's ref
 * update would make every later commit fail. The caller holds the ledger
 * lock, so no other ledger writer is alive; a git command updating the
 * branch (a fetch into it) holds that file for milliseconds. So: wait up to
 * 2 s for it to go, then remove it as stale and say so. */
static int clear_stale_ref_lock(lg_ledger *lg)
{
    lg_buf p = LG_BUF_INIT;
    int i, err;
    if ((err = lg_buf_printf(&p, "%s%s.lock", git_repository_commondir(lg->repo), LG_LEDGER_REF)) < 0)
        goto out;
    for (i = 0; i < 40 && lg_path_exists(p.ptr); i++)
        usleep(50 * 1000);
    if (lg_path_exists(p.ptr)) {
        if (unlink(p.ptr) < 0 && errno != ENOENT) {
            err = lg_error_set(LG_EIO, "%s: cannot remove a stale ref lock: %s", p.ptr, strerror(errno));
            goto out;
        }
        if (lg->notify) {
            char msg[1200];
            snprintf(msg, sizeof msg, "removed %s, left by an interrupted writer", p.ptr);
            lg->notify(lg->notify_ctx, msg);
        }
    }
out:
    lg_buf_release(&p);
    return err;
}

/* ---- init ------------------------------------------------------------------- */

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
            err = git_fail(dir);
            goto out;
        }
        r.created_repo = 1;
    } else if (rc < 0) {
        err = git_fail(dir);
        goto out;
    }
    if (git_repository_is_bare(repo)) {
        err = lg_error_set(LG_EINPUT, "%s: a bare repository cannot hold a ledger (it needs a work tree)", dir);
        goto out;
    }
    if ((err = ledger_new(repo, &lg)) < 0)
        goto out;
    repo = NULL;
    if ((err = lg_mkdir_p(lg->dir, 0755)) < 0)
        goto out;
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if (!(cfg = path2(lg->dir, "ledger.json")) || !(storedir = path2(lg->dir, "store"))) {
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
    if (git_reference_lookup(&ref, lg->repo, LG_LEDGER_REF) < 0) {
        r.already = 0;
        r.created_branch = 1;
        if (git_reference_lookup(&remote, lg->repo, "refs/remotes/origin/ledger") == 0 && git_reference_target(remote)) {
            if (git_reference_create(&made, lg->repo, LG_LEDGER_REF, git_reference_target(remote), 0,
                                     "ledger init: from origin/ledger") < 0) {
                err = git_fail("creating " LG_LEDGER_REF);
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

/* ---- reading the branch ---------------------------------------------------- */

int lg_ledger_tip(lg_ledger *lg, char hex_out[GIT_OID_HEXSZ + 1])
{
    git_oid oid;
    hex_out[0] = '\0';
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return 0;
    git_oid_tostr(hex_out, GIT_OID_HEXSZ + 1, &oid);
    return 0;
}

int lg_ledger_read_blob(lg_ledger *lg, const git_oid *oid, size_t max, lg_buf *out)
{
    git_blob *b = NULL;
    int err;
    char hex[GIT_OID_HEXSZ + 1];
    if (git_blob_lookup(&b, lg->repo, oid) < 0) {
        git_oid_tostr(hex, sizeof hex, oid);
        return git_fail(hex);
    }
    if (max && (size_t)git_blob_rawsize(b) > max) {
        git_oid_tostr(hex, sizeof hex, oid);
        err = lg_error_set(LG_EINPUT, "blob %s: larger than %zu bytes", hex, max);
    } else {
        err = lg_buf_put(out, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
    }
    git_blob_free(b);
    return err;
}

static int cmp_run_info(const void *a, const void *b)
{
    long x = ((const lg_run_info *)a)->seq, y = ((const lg_run_info *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Lists runs/ of a tree into *out (sorted by seq). */
static int runs_of_tree(lg_ledger *lg, git_tree *root, lg_run_info **out, size_t *n)
{
    git_tree_entry *runs_e = NULL;
    git_tree *runs = NULL;
    lg_run_info *v = NULL;
    lg_buf raw = LG_BUF_INIT;
    size_t i, cnt, k = 0;
    int err = 0;

    *out = NULL;
    *n = 0;
    if (git_tree_entry_bypath(&runs_e, root, "runs") < 0)
        return 0; /* no runs yet */
    if (git_tree_entry_type(runs_e) != GIT_OBJECT_TREE || git_tree_lookup(&runs, lg->repo, git_tree_entry_id(runs_e)) < 0) {
        err = lg_error_set(LG_EINPUT, "ledger: runs is not a tree");
        goto out;
    }
    cnt = git_tree_entrycount(runs);
    if (!(v = lg_calloc(cnt ? cnt : 1, sizeof(*v)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < cnt; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(runs, i);
        git_tree *rt = NULL;
        git_tree_entry *me = NULL;
        char id12[13];
        long seq;
        if (git_tree_entry_type(e) != GIT_OBJECT_TREE || lg_ledger_parse_dirname(git_tree_entry_name(e), &seq, id12) < 0)
            continue; /* verify reports strays */
        if (git_tree_lookup(&rt, lg->repo, git_tree_entry_id(e)) < 0 ||
            git_tree_entry_bypath(&me, rt, "manifest.json") < 0) {
            git_tree_free(rt);
            continue;
        }
        v[k].seq = seq;
        snprintf(v[k].dir, sizeof v[k].dir, "runs/%s", git_tree_entry_name(e));
        git_oid_cpy(&v[k].manifest, git_tree_entry_id(me));
        git_oid_cpy(&v[k].tree, git_tree_entry_id(e));
        git_tree_entry_free(me);
        git_tree_free(rt);
        lg_buf_clear(&raw);
        if ((err = lg_ledger_read_blob(lg, &v[k].manifest, LG_MANIFEST_MAX, &raw)) < 0 ||
            (err = lg_sha256_buf(raw.ptr, raw.len, v[k].run_id)) < 0)
            goto out;
        k++;
    }
    qsort(v, k, sizeof(*v), cmp_run_info);
    *out = v;
    *n = k;
    v = NULL;
out:
    lg_free(v);
    lg_buf_release(&raw);
    git_tree_free(runs);
    git_tree_entry_free(runs_e);
    return err;
}

static int tip_tree(lg_ledger *lg, git_commit **commit_out, git_tree **tree_out)
{
    git_oid oid;
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
    if (git_commit_lookup(commit_out, lg->repo, &oid) < 0)
        return git_fail("reading the ledger tip");
    if (git_commit_tree(tree_out, *commit_out) < 0) {
        git_commit_free(*commit_out);
        *commit_out = NULL;
        return git_fail("reading the ledger tip tree");
    }
    return 0;
}

int lg_ledger_runs(lg_ledger *lg, lg_run_info **out, size_t *n)
{
    git_commit *c = NULL;
    git_tree *t = NULL;
    int err = tip_tree(lg, &c, &t);
    *out = NULL;
    *n = 0;
    if (err >= 0)
        err = runs_of_tree(lg, t, out, n);
    git_tree_free(t);
    git_commit_free(c);
    return err;
}

int lg_ledger_find_run(lg_ledger *lg, const char *ref, lg_run_info *out)
{
    lg_run_info *v = NULL;
    size_t n = 0, i, hits = 0, len = strlen(ref);
    long seq = -1;
    int err;
    /* "@N", or N with fewer than 4 digits (shorter than any accepted id prefix): the run with seq N */
    if ((ref[0] == '@' && len > 1 && strspn(ref + 1, "0123456789") == len - 1 && len < 12) ||
        (len > 0 && len < 4 && strspn(ref, "0123456789") == len))
        seq = strtol(ref[0] == '@' ? ref + 1 : ref, NULL, 10);
    else if (!lg_sha256_prefix_valid(ref) || len < 4)
        return lg_error_set(LG_EINPUT,
                            "'%s': a run is named by its id, a prefix of at least 4 lowercase hex digits, or @SEQ", ref);
    if ((err = lg_ledger_runs(lg, &v, &n)) < 0)
        return err;
    for (i = 0; i < n; i++)
        if (seq >= 0 ? v[i].seq == seq : strncmp(v[i].run_id, ref, len) == 0) {
            if (hits++ == 0)
                *out = v[i];
        }
    lg_free(v);
    if (hits == 0)
        return lg_error_set(LG_ENOTFOUND, "run '%s': no such run in the ledger", ref);
    if (hits > 1)
        return lg_error_set(LG_EINPUT, "run '%s': ambiguous prefix (%zu runs match)", ref, hits);
    return 0;
}

static int parse_manifest(const lg_buf *raw, const char *where, cJSON **out)
{
    cJSON *m = cJSON_ParseWithLength(raw->ptr, raw->len);
    int err;
    *out = NULL;
    if (!m)
        return lg_error_set(LG_EINPUT, "%s: manifest.json is not valid JSON", where);
    if ((err = lg_manifest_check(m, where)) < 0) {
        cJSON_Delete(m);
        return err;
    }
    *out = m;
    return 0;
}

int lg_ledger_load_manifest(lg_ledger *lg, const char *ref, cJSON **out, lg_run_info *info, lg_buf *raw)
{
    lg_run_info ri;
    lg_buf local = LG_BUF_INIT;
    lg_buf *b = raw ? raw : &local;
    int err;
    *out = NULL;
    if ((err = lg_ledger_find_run(lg, ref, &ri)) < 0)
        goto out;
    if ((err = lg_ledger_read_blob(lg, &ri.manifest, LG_MANIFEST_MAX, b)) < 0 ||
        (err = parse_manifest(b, ri.dir, out)) < 0)
        goto out;
    if (info)
        *info = ri;
out:
    lg_buf_release(&local);
    return err;
}

int lg_ledger_foreach_run(lg_ledger *lg, lg_run_fn fn, void *ctx)
{
    lg_run_info *v = NULL;
    lg_buf raw = LG_BUF_INIT;
    cJSON *m = NULL;
    size_t n = 0, i;
    int err;
    if ((err = lg_ledger_runs(lg, &v, &n)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        lg_buf_clear(&raw);
        if ((err = lg_ledger_read_blob(lg, &v[i].manifest, LG_MANIFEST_MAX, &raw)) < 0 ||
            (err = parse_manifest(&raw, v[i].dir, &m)) < 0)
            goto out;
        err = fn(ctx, &v[i], m);
        cJSON_Delete(m);
        m = NULL;
        if (err != 0)
            goto out;
    }
out:
    cJSON_Delete(m);
    lg_buf_release(&raw);
    lg_free(v);
    return err;
}

/* ---- chain -------------------------------------------------------------------- */

static int subtree(git_repository *repo, git_tree *root, const char *name, git_tree **out)
{
    const git_tree_entry *e = root ? git_tree_entry_byname(root, name) : NULL;
    *out = NULL;
    if (!e || git_tree_entry_type(e) != GIT_OBJECT_TREE)
        return 0;
    return git_tree_lookup(out, repo, git_tree_entry_id(e)) < 0 ? git_fail("reading a tree") : 0;
}

/* Fills the n_added/n_removed/n_modified fields of e comparing two trees. */
static int diff_trees(git_repository *repo, git_tree *parent, git_tree *child, lg_chain_entry *e)
{
    git_tree *pr = NULL, *cr = NULL;
    size_t i;
    int err;
    /* top level, except runs/ */
    for (i = 0; child && i < git_tree_entrycount(child); i++) {
        const git_tree_entry *x = git_tree_entry_byindex(child, i), *y;
        if (strcmp(git_tree_entry_name(x), "runs") == 0)
            continue;
        y = parent ? git_tree_entry_byname(parent, git_tree_entry_name(x)) : NULL;
        if (parent && (!y || !git_oid_equal(git_tree_entry_id(x), git_tree_entry_id(y)))) {
            if (!e->n_modified++ && !e->changed[0])
                snprintf(e->changed, sizeof e->changed, "%s", git_tree_entry_name(x));
        }
    }
    for (i = 0; parent && i < git_tree_entrycount(parent); i++) {
        const git_tree_entry *x = git_tree_entry_byindex(parent, i);
        if (strcmp(git_tree_entry_name(x), "runs") == 0)
            continue;
        if (!git_tree_entry_byname(child, git_tree_entry_name(x))) {
            if (!e->n_removed++ && !e->changed[0])
                snprintf(e->changed, sizeof e->changed, "%s", git_tree_entry_name(x));
        }
    }
    if ((err = subtree(repo, parent, "runs", &pr)) < 0 || (err = subtree(repo, child, "runs", &cr)) < 0)
        goto out;
    for (i = 0; cr && i < git_tree_entrycount(cr); i++) {
        const git_tree_entry *x = git_tree_entry_byindex(cr, i);
        const git_tree_entry *y = pr ? git_tree_entry_byname(pr, git_tree_entry_name(x)) : NULL;
        if (!y) {
            if (!e->n_added++)
                snprintf(e->added, sizeof e->added, "runs/%s", git_tree_entry_name(x));
        } else if (!git_oid_equal(git_tree_entry_id(x), git_tree_entry_id(y))) {
            if (!e->n_modified++ && !e->changed[0])
                snprintf(e->changed, sizeof e->changed, "runs/%s", git_tree_entry_name(x));
        }
    }
    for (i = 0; pr && i < git_tree_entrycount(pr); i++) {
        const git_tree_entry *x = git_tree_entry_byindex(pr, i);
        if (!cr || !git_tree_entry_byname(cr, git_tree_entry_name(x))) {
            if (!e->n_removed++ && !e->changed[0])
                snprintf(e->changed, sizeof e->changed, "runs/%s", git_tree_entry_name(x));
        }
    }
out:
    git_tree_free(pr);
    git_tree_free(cr);
    return err;
}

int lg_ledger_chain(lg_ledger *lg, lg_chain_entry **out, size_t *n)
{
    lg_chain_entry *v = NULL;
    size_t cnt = 0, cap = 0, i;
    git_commit *c = NULL, *p = NULL;
    git_tree *ct = NULL, *pt = NULL;
    git_oid oid;
    int err = 0;

    *out = NULL;
    *n = 0;
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
    if (git_commit_lookup(&c, lg->repo, &oid) < 0)
        return git_fail("reading the ledger tip");
    for (;;) {
        if (cnt == cap) {
            lg_chain_entry *nv;
            cap = cap ? cap * 2 : 64;
            if (!(nv = lg_realloc(v, cap * sizeof(*v)))) {
                err = LG_ENOMEM;
                goto out;
            }
            v = nv;
        }
        memset(&v[cnt], 0, sizeof(v[cnt]));
        git_oid_cpy(&v[cnt].commit, git_commit_id(c));
        v[cnt].nparents = git_commit_parentcount(c);
        if (git_commit_tree(&ct, c) < 0) {
            err = git_fail("reading a ledger tree");
            goto out;
        }
        if (v[cnt].nparents > 0) {
            if (git_commit_parent(&p, c, 0) < 0 || git_commit_tree(&pt, p) < 0) {
                err = git_fail("reading a ledger commit's parent");
                goto out;
            }
        }
        if ((err = diff_trees(lg->repo, pt, ct, &v[cnt])) < 0)
            goto out;
        cnt++;
        git_tree_free(ct);
        git_tree_free(pt);
        ct = pt = NULL;
        git_commit_free(c);
        c = p;
        p = NULL;
        if (!c)
            break;
    }
    for (i = 0; i < cnt / 2; i++) { /* oldest first */
        lg_chain_entry t = v[i];
        v[i] = v[cnt - 1 - i];
        v[cnt - 1 - i] = t;
    }
    *out = v;
    *n = cnt;
    v = NULL;
out:
    lg_free(v);
    git_tree_free(ct);
    git_tree_free(pt);
    git_commit_free(c);
    git_commit_free(p);
    return err;
}

/* ---- index build ------------------------------------------------------------------ */

int lg_ledger_build_index(lg_ledger *lg, sqlite3 *db)
{
    lg_chain_entry *chain = NULL;
    lg_run_info *runs = NULL;
    lg_buf raw = LG_BUF_INIT, canon = LG_BUF_INIT;
    cJSON *m = NULL;
    size_t nchain = 0, nruns = 0, i, j;
    char tip[GIT_OID_HEXSZ + 1];
    int err, in_tx = 0;

    if ((err = lg_ledger_chain(lg, &chain, &nchain)) < 0 || (err = lg_ledger_runs(lg, &runs, &nruns)) < 0)
        goto out;
    if ((err = lg_index_exec(db, "BEGIN", "starting a transaction")) < 0)
        goto out;
    in_tx = 1;
    for (i = 0; i < nruns; i++) {
        char commit_hex[GIT_OID_HEXSZ + 1] = "", run_id[65];
        lg_buf_clear(&raw);
        lg_buf_clear(&canon);
        if ((err = lg_ledger_read_blob(lg, &runs[i].manifest, LG_MANIFEST_MAX, &raw)) < 0 ||
            (err = parse_manifest(&raw, runs[i].dir, &m)) < 0 || (err = lg_json_canonical(m, &canon)) < 0 ||
            (err = lg_sha256_buf(canon.ptr, canon.len, run_id)) < 0)
            goto out;
        for (j = 0; j < nchain; j++)
            if (strcmp(chain[j].added, runs[i].dir) == 0) {
                git_oid_tostr(commit_hex, sizeof commit_hex, &chain[j].commit);
                break;
            }
        if ((err = lg_index_add_run(db, m, run_id, runs[i].run_id, commit_hex[0] ? commit_hex : NULL)) < 0) {
            lg_error_wrap("%s", runs[i].dir);
            goto out;
        }
        cJSON_Delete(m);
        m = NULL;
    }
    if ((err = lg_ledger_tip(lg, tip)) < 0 || (err = lg_index_set_tip(db, tip)) < 0)
        goto out;
    err = lg_index_exec(db, "COMMIT", "committing");
    in_tx = 0;
out:
    if (in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    cJSON_Delete(m);
    lg_buf_release(&raw);
    lg_buf_release(&canon);
    lg_free(chain);
    lg_free(runs);
    return err;
}

static void unlink_quiet(const char *base, const char *suffix)
{
    lg_buf p = LG_BUF_INIT;
    if (lg_buf_printf(&p, "%s%s", base, suffix) >= 0)
        unlink(p.ptr);
    lg_buf_release(&p);
}

int lg_ledger_reindex(lg_ledger *lg)
{
    lg_buf tmp = LG_BUF_INIT;
    sqlite3 *db = NULL;
    int err, locked = 0;

    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if ((err = lg_buf_printf(&tmp, "%s.tmp.%ld", lg->index_path, (long)getpid())) < 0)
        goto out;
    unlink(tmp.ptr);
    unlink_quiet(tmp.ptr, "-wal");
    unlink_quiet(tmp.ptr, "-shm");
    if ((err = lg_index_open(tmp.ptr, 0, &db)) < 0 || (err = lg_ledger_build_index(lg, db)) < 0)
        goto out;
    /* Leave a self-contained file (no -wal) so that the rename carries it all. */
    if ((err = lg_index_exec(db, "PRAGMA journal_mode=DELETE", "finishing the new index")) < 0)
        goto out;
    sqlite3_close(db);
    db = NULL;
    lg_fault_point("reindex:built");
    if (lg->db) {
        sqlite3_close(lg->db);
        lg->db = NULL;
    }
    unlink_quiet(lg->index_path, "-wal");
    unlink_quiet(lg->index_path, "-shm");
    if (rename(tmp.ptr, lg->index_path) < 0) {
        err = lg_error_set(LG_EIO, "%s: rename: %s", lg->index_path, strerror(errno));
        goto out;
    }
    err = lg_fsync_dir(lg->dir);
out:
    if (db)
        sqlite3_close(db);
    if (err < 0 && tmp.ptr) {
        unlink(tmp.ptr);
        unlink_quiet(tmp.ptr, "-wal");
        unlink_quiet(tmp.ptr, "-shm");
    }
    if (locked)
        lg_ledger_unlock(lg);
    lg_buf_release(&tmp);
    return err;
}

/* ---- record ---------------------------------------------------------------------- */

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

static int build_manifest(lg_ledger *lg, const lg_run_input *in, long seq, const char *prev, const out_file *files,
                          cJSON **out)
{
    cJSON *m = cJSON_CreateObject(), *outs = NULL;
    git_oid head;
    char head_hex[GIT_OID_HEXSZ + 1] = "", host[256] = "", created[32], diff_hex[65] = "";
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
        (err = add_item(m, "seq", cJSON_CreateNumber((double)seq))) < 0 ||
        (err = add_item(m, "prev", str_or_null(prev))) < 0 ||
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
    lg_run_info *runs = NULL;
    size_t nruns = 0, i, nupd = 0;
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

    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;

    /* Store every output first: a failure here leaves the branch untouched. */
    for (i = 0; i < in->nfiles; i++) {
        if ((err = lg_store_put_file(lg->store, files[i].f->path, files[i].sha, &files[i].size, NULL)) < 0)
            goto out;
        files[i].in_tree = files[i].size <= lg->small_max;
        if (files[i].in_tree) {
            lg_buf objpath = LG_BUF_INIT;
            int rc = lg_store_path(lg->store, files[i].sha, &objpath);
            if (rc >= 0 && git_blob_create_from_disk(&files[i].blob, lg->repo, objpath.ptr) < 0)
                rc = git_fail(objpath.ptr);
            lg_buf_release(&objpath);
            if ((err = rc) < 0)
                goto out;
        }
    }

    lg_fault_point("record:stored");
    if ((err = tip_tree(lg, &tip, &tip_t)) < 0 || (err = runs_of_tree(lg, tip_t, &runs, &nruns)) < 0)
        goto out;
    git_oid_tostr(old_tip, sizeof old_tip, git_commit_id(tip));
    if (nruns) {
        seq = runs[nruns - 1].seq + 1;
        prev = runs[nruns - 1].run_id;
    }
    if ((err = build_manifest(lg, in, seq, prev, files, &m)) < 0 || (err = lg_json_canonical(m, &canon)) < 0 ||
        (err = lg_sha256_buf(canon.ptr, canon.len, run_id)) < 0)
        goto out;
    if (canon.len > LG_MANIFEST_MAX) {
        err = lg_error_set(LG_EINPUT, "record: the manifest would be %zu bytes (limit %u)", canon.len, LG_MANIFEST_MAX);
        goto out;
    }
    if (git_blob_create_from_buffer(&manifest_blob, lg->repo, canon.ptr, canon.len) < 0) {
        err = git_fail("writing the manifest blob");
        goto out;
    }

    /* Tree: base tree + runs/<seq>-<id12>/{manifest.json, files/...}. */
    if (!(upd = lg_calloc(in->nfiles + 2, sizeof(*upd))) || !(upd_paths = lg_calloc(in->nfiles + 2, sizeof(char *)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i <= in->nfiles; i++) {
        lg_buf_clear(&paths);
        if (i == in->nfiles)
            err = lg_buf_printf(&paths, "runs/%ld-%.12s/manifest.json", seq, run_id);
        else if (files[i].in_tree)
            err = lg_buf_printf(&paths, "runs/%ld-%.12s/files/%s", seq, run_id, files[i].f->name);
        else
            continue;
        if (err < 0 || !(upd_paths[nupd] = lg_strdup(paths.ptr))) {
            err = err < 0 ? err : LG_ENOMEM;
            goto out;
        }
        upd[nupd].action = GIT_TREE_UPDATE_UPSERT;
        git_oid_cpy(&upd[nupd].id, i == in->nfiles ? &manifest_blob : &files[i].blob);
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
        err = git_fail("building the run's tree");
        goto out;
    }
    if ((err = make_signature(lg->repo, &sig)) < 0)
        goto out;
    if ((err = lg_buf_printf(&msg, "ledger: run %ld %s\n\nkind: %s\nstudy: %s\nstatus: %s\n", seq, run_id, in->kind,
                             in->study, in->status)) < 0)
        goto out;
    if ((err = clear_stale_ref_lock(lg)) < 0)
        goto out;
    if (git_commit_create(&commit_oid, lg->repo, LG_LEDGER_REF, sig, sig, NULL, msg.ptr, new_t, 1,
                          (const git_commit **)&tip) < 0) {
        err = git_fail("committing the run to " LG_LEDGER_REF);
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
        if ((err = lg_index_add_run(db, m, run_id, sha_hex, new_tip)) < 0 || (err = lg_index_set_tip(db, new_tip)) < 0) {
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
    if (locked)
        lg_ledger_unlock(lg);
    if (upd_paths)
        for (i = 0; i < nupd; i++)
            lg_free(upd_paths[i]);
    lg_free(upd_paths);
    lg_free(upd);
    lg_free(files);
    lg_free(runs);
    cJSON_Delete(m);
    git_signature_free(sig);
    git_tree_free(new_t);
    git_tree_free(tip_t);
    git_commit_free(tip);
    lg_buf_release(&canon);
    lg_buf_release(&msg);
    lg_buf_release(&paths);
    return err;
}

/* ---- artifacts and gc ---------------------------------------------------------------- */

typedef struct {
    lg_ledger *lg;
    const char *want;
    git_oid blob;
    int found;
} find_ctx;

static int find_in_tree(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    find_ctx *c = vctx;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const char *sha = lg_json_str(o, "sha256"), *name = lg_json_str(o, "name");
        git_tree *t = NULL;
        git_tree_entry *e = NULL;
        lg_buf p = LG_BUF_INIT;
        if (strcmp(sha, c->want) != 0 || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree")))
            continue;
        if (lg_buf_printf(&p, "files/%s", name) >= 0 && git_tree_lookup(&t, c->lg->repo, &ri->tree) == 0 &&
            git_tree_entry_bypath(&e, t, p.ptr) == 0) {
            git_oid_cpy(&c->blob, git_tree_entry_id(e));
            c->found = 1;
        }
        git_tree_entry_free(e);
        git_tree_free(t);
        lg_buf_release(&p);
        if (c->found)
            return 1;
    }
    return 0;
}

int lg_ledger_artifact_path(lg_ledger *lg, const char *hex, lg_buf *out)
{
    find_ctx c = {lg, hex, {{0}}, 0};
    lg_buf bytes = LG_BUF_INIT;
    char got[65];
    int err = lg_store_exists(lg->store, hex);
    if (err < 0)
        return err;
    if (err == 1)
        return lg_store_path(lg->store, hex, out);
    if ((err = lg_ledger_foreach_run(lg, find_in_tree, &c)) < 0)
        return err;
    if (!c.found)
        return lg_error_set(LG_ENOTFOUND, "artifact %s: not in the local store nor in the ledger tree", hex);
    if ((err = lg_ledger_read_blob(lg, &c.blob, 0, &bytes)) < 0 ||
        (err = lg_store_put_buf(lg->store, bytes.ptr, bytes.len, got, NULL)) < 0)
        goto out;
    if (strcmp(got, hex) != 0) {
        err = lg_error_set(LG_ECHECK, "artifact %s: the ledger tree copy hashes to %s (modified)", hex, got);
        goto out;
    }
    err = lg_store_path(lg->store, hex, out);
out:
    lg_buf_release(&bytes);
    return err;
}

typedef struct {
    char **v;
    size_t n, cap;
} strset;

static int collect_refs(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    strset *s = vctx;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            char **nv = lg_realloc(s->v, cap * sizeof(char *));
            if (!nv)
                return LG_ENOMEM;
            s->v = nv;
            s->cap = cap;
        }
        if (!(s->v[s->n] = lg_strdup(lg_json_str(o, "sha256"))))
            return LG_ENOMEM;
        s->n++;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    lg_ledger *lg;
    strset *refs;
    int dry_run;
    double min_age;
    void (*fn)(void *, const char *);
    void *ctx;
    lg_gc_stats *stats;
} gc_ctx;

static int gc_object(void *vctx, const char *hex, uint64_t size)
{
    gc_ctx *g = vctx;
    const char *key = hex;
    lg_buf p = LG_BUF_INIT;
    struct stat sb;
    int err = 0;
    if (g->refs->n && bsearch(&key, g->refs->v, g->refs->n, sizeof(char *), cmp_str))
        return 0;
    if ((err = lg_store_path(g->lg->store, hex, &p)) < 0)
        goto out;
    if (stat(p.ptr, &sb) < 0 || difftime(time(NULL), sb.st_mtime) < g->min_age)
        goto out;
    if (g->fn)
        g->fn(g->ctx, p.ptr);
    if (!g->dry_run && (err = lg_store_remove(g->lg->store, hex)) < 0)
        goto out;
    g->stats->objects++;
    g->stats->bytes += size;
out:
    lg_buf_release(&p);
    return err;
}

int lg_ledger_gc(lg_ledger *lg, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *what), void *ctx,
                 lg_gc_stats *stats)
{
    strset refs = {NULL, 0, 0};
    gc_ctx g = {lg, &refs, dry_run, min_age_s, fn, ctx, stats};
    size_t i;
    int err, locked = 0;

    memset(stats, 0, sizeof(*stats));
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if ((err = lg_store_gc_tmp(lg->store, dry_run, min_age_s, fn, ctx, &stats->tmp_files)) < 0)
        goto out;
    {
        size_t more = 0; /* staging folders and <file>.tmp.<pid> of interrupted writers */
        if ((err = lg_ledger_gc_leftovers(lg, dry_run, min_age_s, fn, ctx, &more)) < 0)
            goto out;
        stats->tmp_files += more;
    }
    if ((err = lg_ledger_foreach_run(lg, collect_refs, &refs)) < 0)
        goto out;
    if (refs.n)
        qsort(refs.v, refs.n, sizeof(char *), cmp_str);
    err = lg_store_foreach(lg->store, gc_object, &g);
out:
    if (locked)
        lg_ledger_unlock(lg);
    for (i = 0; i < refs.n; i++)
        lg_free(refs.v[i]);
    lg_free(refs.v);
    return err;
}

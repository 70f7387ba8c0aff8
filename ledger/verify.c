/*
 * verify.c - integrity verification (see verify.h).
 *
 * Walk: the ledger branch by first parents from the root. The root must add
 * no runs; commit k must add exactly one run directory runs/<k>-<id12> and
 * change nothing else (so the tip's runs are exactly the runs verified when
 * they were added). For each added run: manifest bytes hash to an id whose
 * first 12 digits name the directory, the bytes are canonical JSON, the
 * manifest is well formed, seq = k, prev = id of run k-1, in-tree files
 * hash to their digests, store objects re-hash. Then the index is rebuilt in
 * memory from the ledger and compared table by table with the file.
 */
#include "ledger/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/recover.h"
#include "ledger/verify_base.h"
#include "ledger/verify_canon.h"
#include "ledger/verify_tree.h"
#include "ledger/sign.h"

/* ---- checks ------------------------------------------------------------------ */

typedef struct {
    lg_ledger *lg;
    const lg_verify_opts *opts;
    lg_problems *ps;
    lg_verify_stats *st;
    char **checked; /* store objects already re-hashed (sorted insert) */
    size_t nchecked, capchecked;
} vctx;

static int already_checked(vctx *c, const char *hex, int *was)
{
    size_t lo = 0, hi = c->nchecked;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(c->checked[mid], hex);
        if (r == 0) {
            *was = 1;
            return 0;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *was = 0;
    if (lg_grow(&c->checked, &c->capchecked, c->nchecked + 1, sizeof *c->checked, 64) < 0)
        return LG_ENOMEM;
    memmove(c->checked + lo + 1, c->checked + lo, (c->nchecked - lo) * sizeof(char *));
    if (!(c->checked[lo] = lg_strdup(hex)))
        return LG_ENOMEM;
    c->nchecked++;
    return 0;
}

static int check_outputs(vctx *c, const char *subject, const cJSON *m, const git_oid *run_tree)
{
    git_repository *repo = lg_ledger_repo(c->lg);
    git_tree *rt = NULL;
    const cJSON *o;
    lg_buf bytes = LG_BUF_INIT, p = LG_BUF_INIT;
    int err = 0;

    if (git_tree_lookup(&rt, repo, run_tree) < 0)
        return lg_problems_add(c->ps, LG_PROBLEM_ERROR, "file", subject, "run directory tree unreadable");
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const char *name = lg_json_str(o, "name"), *sha = lg_json_str(o, "sha256");
        double size = cJSON_GetObjectItemCaseSensitive(o, "size")->valuedouble;
        int in_tree = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree")), was, rc;
        if (in_tree) {
            git_tree_entry *e = NULL;
            char got[65];
            lg_buf_clear(&p);
            lg_buf_clear(&bytes);
            if ((err = lg_buf_printf(&p, "files/%s", name)) < 0)
                goto out;
            c->st->files_checked++;
            if (git_tree_entry_bypath(&e, rt, p.ptr) < 0 || git_tree_entry_type(e) != GIT_OBJECT_BLOB) {
                err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "file", subject, "%s: listed in_tree but absent", p.ptr);
            } else if ((err = lg_ledger_read_blob(c->lg, git_tree_entry_id(e), 0, &bytes)) >= 0 &&
                       (err = lg_sha256_buf(bytes.ptr, bytes.len, got)) >= 0) {
                if (strcmp(got, sha) != 0)
                    err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "file", subject,
                                          "%s: content hashes to %.12s, manifest says %.12s (modified)", p.ptr, got, sha);
                else if ((double)bytes.len != size)
                    err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "file", subject, "%s: %zu bytes, manifest says %.0f",
                                          p.ptr, bytes.len, size);
            }
            git_tree_entry_free(e);
            if (err < 0)
                goto out;
        }
        if (c->opts->skip_objects)
            continue;
        if ((err = already_checked(c, sha, &was)) < 0)
            goto out;
        if (was)
            continue;
        rc = lg_store_verify(lg_ledger_store(c->lg), sha);
        c->st->objects_checked++;
        if (rc == LG_ENOTFOUND) {
            c->st->objects_missing++;
            /* An in-tree output can be restored from git; only others are missing. */
            if (!in_tree)
                err = lg_problems_add(c->ps, c->opts->require_artifacts ? LG_PROBLEM_ERROR : LG_PROBLEM_WARNING,
                                      "object", subject, "%s (%s): missing from the local store", name, sha);
        } else if (rc == LG_ECHECK) {
            err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "object", subject, "%s: %s", name, lg_error_msg());
        } else if (rc < 0) {
            err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "object", subject, "%s: %s", name, lg_error_msg());
        }
        if (err < 0)
            goto out;
    }
out:
    git_tree_free(rt);
    lg_buf_release(&bytes);
    lg_buf_release(&p);
    return err;
}

/* chain.json of the run added by commit k: seq = k, run = the manifest's id,
 * prev = the entry digest of run k-1 (prev_id; "" for k = 1 or when that run
 * was unreadable). prev_id becomes this entry's digest ("" when unreadable). */
static int check_link(vctx *c, size_t k, long dir_seq, const char *id, const git_oid *run_tree, const char *subject,
                      char prev_id[65])
{
    lg_run_info ri;
    lg_chain_link link;
    int err = 0;
    memset(&ri, 0, sizeof ri);
    ri.seq = dir_seq;
    snprintf(ri.dir, sizeof ri.dir, "runs/%.80s", subject + 4); /* "run K-id12" */
    git_oid_cpy(&ri.tree, run_tree);
    if (lg_ledger_chain_link(c->lg, &ri, &link) < 0) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject, "%s", lg_error_msg());
        prev_id[0] = '\0';
        return err;
    }
    if ((size_t)link.seq != k)
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject,
                              LG_CHAIN_FILE " says seq %ld, but the run is commit %zu of the chain (a run was removed "
                              "or reordered)",
                              link.seq, k);
    if (err >= 0 && strcmp(link.run_id, id) != 0)
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject,
                              LG_CHAIN_FILE " names run %.12s, but manifest.json hashes to %.12s", link.run_id, id);
    if (err >= 0 && (k == 1 ? link.prev[0] != '\0' : strcmp(link.prev, prev_id) != 0))
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject,
                              "prev is %.12s, but the previous entry is %.12s (chain broken: a run was removed, "
                              "reordered or changed)",
                              link.prev[0] ? link.prev : "null", k == 1 ? "null" : prev_id[0] ? prev_id : "unreadable");
    memcpy(prev_id, link.digest, 65);
    return err;
}

/* Checks the run added by chain entry k; prev_id is updated to its entry digest. */
static int check_run(vctx *c, size_t k, const lg_chain_entry *ce, char prev_id[65])
{
    git_repository *repo = lg_ledger_repo(c->lg);
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    git_tree_entry *rte = NULL, *me = NULL;
    git_tree *rt = NULL;
    lg_buf raw = LG_BUF_INIT, canon = LG_BUF_INIT;
    cJSON *m = NULL;
    char id[65], id12[13], subject[128];
    long seq = 0;
    int err = 0;

    snprintf(subject, sizeof subject, "run %s", ce->added + 5); /* skip "runs/" */
    if (lg_ledger_parse_dirname(ce->added + 5, &seq, id12) < 0) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject, "%s", lg_error_msg());
        prev_id[0] = '\0';
        goto out;
    }
    if (git_commit_lookup(&commit, repo, &ce->commit) < 0 || git_commit_tree(&tree, commit) < 0 ||
        git_tree_entry_bypath(&rte, tree, ce->added) < 0 || git_tree_lookup(&rt, repo, git_tree_entry_id(rte)) < 0 ||
        git_tree_entry_bypath(&me, rt, "manifest.json") < 0) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "manifest", subject, "manifest.json is missing");
        prev_id[0] = '\0';
        goto out;
    }
    if ((err = lg_ledger_read_blob(c->lg, git_tree_entry_id(me), LG_MANIFEST_MAX, &raw)) < 0 ||
        (err = lg_sha256_buf(raw.ptr, raw.len, id)) < 0)
        goto out;
    if ((err = check_link(c, k, seq, id, git_tree_entry_id(rte), subject, prev_id)) < 0)
        goto out;
    if (strncmp(id, id12, 12) != 0)
        if ((err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "manifest", subject,
                                   "manifest.json hashes to %.12s, not to the run id %s (manifest modified)", id, id12)) < 0)
            goto out;
    if ((size_t)seq != k)
        if ((err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", subject,
                                   "is commit %zu of the chain but named seq %ld (a run was removed or reordered)", k,
                                   seq)) < 0)
            goto out;
    if (!(m = cJSON_ParseWithLength(raw.ptr, raw.len))) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "manifest", subject, "manifest.json is not valid JSON");
        goto out;
    }
    if (lg_manifest_check(m, "manifest.json") < 0) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "manifest", subject, "%s", lg_error_msg());
        goto out;
    }
    if (lg_json_canonical(m, &canon) < 0 || canon.len != raw.len || memcmp(canon.ptr, raw.ptr, raw.len) != 0)
        if ((err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "manifest", subject,
                                   "manifest.json is not in canonical form (modified)")) < 0)
            goto out;
    err = check_outputs(c, subject, m, git_tree_entry_id(rte));
    if (err >= 0) /* and nothing else in the run directory */
        err = lg_verify_run_tree(c->lg, git_tree_entry_id(rte), m, subject, c->ps);
out:
    cJSON_Delete(m);
    git_tree_entry_free(me);
    git_tree_entry_free(rte);
    git_tree_free(rt);
    git_tree_free(tree);
    git_commit_free(commit);
    lg_buf_release(&raw);
    lg_buf_release(&canon);
    return err;
}

typedef struct {
    lg_problems *ps;
    int err;
} diff_ctx;

static void on_diff(void *ctxp, const char *table, const char *run_id, const char *kind, const char *row)
{
    diff_ctx *d = ctxp;
    char subject[128];
    if (*run_id)
        snprintf(subject, sizeof subject, "table %s, run %.12s", table, run_id);
    else
        snprintf(subject, sizeof subject, "table %s", table);
    if (d->err >= 0)
        d->err = lg_problems_add(d->ps, LG_PROBLEM_ERROR, "index", subject, "%s: %.200s",
                                 strcmp(kind, "missing") == 0 ? "row in the ledger, missing from the index"
                                                              : "row in the index, not in the ledger",
                                 row);
}

static void on_schema(void *ctxp, const char *type, const char *name, const char *what)
{
    diff_ctx *d = ctxp;
    char subject[160];
    snprintf(subject, sizeof subject, "schema, %s %s", type, name);
    if (d->err >= 0)
        d->err = lg_problems_add(d->ps, LG_PROBLEM_ERROR, "index", subject, "%s", what);
}

/* The index half of verify's snapshot. Under the writer lock (writers move
 * the ref and update the index under it): pin the branch tip, catch up an
 * index left behind by a crash, refuse a rewritten one, compare the schema,
 * and open a read transaction on the index file. After the lock is released
 * the comparison runs against that snapshot and the pinned tip, so writers
 * landing meanwhile cannot make rows look "in the index, not in the ledger". */
typedef struct {
    sqlite3 *db;   /* :memory: expected rows; the index attached as "actual" */
    int usable;    /* the snapshot is open and worth comparing */
} snapshot;

static int snapshot_open(vctx *c, git_oid *tip, snapshot *snap)
{
    lg_index_state st;
    diff_ctx d = {c->ps, 0};
    size_t behind = 0;
    int err = 0, locked = 0, n;
    const char *path = lg_ledger_index_path(c->lg);

    memset(snap, 0, sizeof(*snap));
    memset(&st, 0, sizeof st);
    if ((err = lg_ledger_lock(c->lg)) < 0)
        return err;
    locked = 1;
    if (git_reference_name_to_id(tip, lg_ledger_repo(c->lg), LG_LEDGER_REF) < 0) {
        err = lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg_ledger_root(c->lg), LG_LEDGER_REF);
        goto out;
    }
    if (c->opts->skip_index)
        goto out;
    if (!lg_path_exists(path)) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", ".ledger/index.sqlite", "missing (run 'ledger reindex')");
        goto out;
    }
    if ((err = lg_index_open(":memory:", 0, &snap->db)) < 0 || (err = lg_index_attach(snap->db, path, "actual")) < 0)
        goto out;
    /* the schema first: a planted trigger or view is named, and nothing else opens the file */
    if ((n = lg_index_check_schema(snap->db, "actual", on_schema, &d)) < 0) {
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", ".ledger/index.sqlite", "unreadable: %s", lg_error_msg());
        goto out;
    }
    if ((err = d.err) < 0 || n > 0)
        goto out;
    if ((err = lg_ledger_index_state(c->lg, &st)) < 0)
        goto out;
    if (st.state == LG_INDEX_REWRITTEN) {
        lg_index_state_error(c->lg, &st);
        err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", "rewrite", "%s", lg_error_msg());
        goto out;
    }
    if (st.state == LG_INDEX_BEHIND) {
        /* an interrupted record (recover.h): rebuilt, a warning; we hold the lock, so nothing moves */
        sqlite3_exec(snap->db, "DETACH DATABASE actual", NULL, NULL, NULL);
        if ((err = lg_ledger_index_catch_up(c->lg, &behind)) < 0) {
            err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", ".ledger/index.sqlite", "%s", lg_error_msg());
            goto out;
        }
        if ((err = lg_problems_add(c->ps, LG_PROBLEM_WARNING, "index", ".ledger/index.sqlite",
                                   "was %zu commit(s) behind the ledger branch (an interrupted write); rebuilt",
                                   behind)) < 0 ||
            (err = lg_index_attach(snap->db, path, "actual")) < 0)
            goto out;
    }
    /* the read transaction starts with the first read of the attached file */
    if ((err = lg_index_exec(snap->db, "BEGIN; SELECT count(*) FROM actual.meta", "starting a read transaction")) < 0)
        goto out;
    snap->usable = 1;
out:
    lg_index_state_release(&st);
    if (locked)
        lg_ledger_unlock(c->lg);
    return err;
}

static void snapshot_close(snapshot *snap)
{
    if (!snap->db)
        return;
    if (!sqlite3_get_autocommit(snap->db))
        sqlite3_exec(snap->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_exec(snap->db, "DETACH DATABASE actual", NULL, NULL, NULL);
    sqlite3_close(snap->db);
    snap->db = NULL;
}

static int check_index(vctx *c, const git_oid *tip, snapshot *snap, int ledger_ok)
{
    diff_ctx d = {c->ps, 0};
    int err, n;
    if (!snap->usable)
        return 0;
    if ((err = lg_ledger_build_index_at(c->lg, tip, snap->db)) < 0) {
        return ledger_ok ? lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", "", "not compared: %s", lg_error_msg())
                         : lg_problems_add(c->ps, LG_PROBLEM_WARNING, "index", "",
                                           "not compared: the ledger itself is damaged");
    }
    n = lg_index_diff_attached(snap->db, "actual", on_diff, &d);
    if (n < 0)
        return lg_problems_add(c->ps, LG_PROBLEM_ERROR, "index", ".ledger/index.sqlite", "unreadable: %s",
                               lg_error_msg());
    c->st->index_rows_differing = (size_t)n;
    return d.err;
}

/* Run ids must be unique: two directories holding the same manifest would
 * count the same evidence twice. Sorted copy, then neighbours: O(n log n). */
static int cmp_run_id(const void *a, const void *b)
{
    int r = strcmp(((const lg_run_info *)a)->run_id, ((const lg_run_info *)b)->run_id);
    return r ? r : (((const lg_run_info *)a)->seq > ((const lg_run_info *)b)->seq) - (((const lg_run_info *)a)->seq < ((const lg_run_info *)b)->seq);
}

static int check_unique_ids(vctx *c, const git_oid *tip)
{
    lg_run_info *runs = NULL;
    size_t n = 0, i;
    int err;
    if ((err = lg_ledger_runs_at(c->lg, tip, &runs, &n)) < 0)
        return lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", LG_LEDGER_REF, "%s", lg_error_msg());
    if (n > 1)
        qsort(runs, n, sizeof(*runs), cmp_run_id);
    for (i = 1; i < n && err >= 0; i++)
        if (strcmp(runs[i - 1].run_id, runs[i].run_id) == 0)
            err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "chain", runs[i].dir + 5,
                                  "run id %.12s is also run %ld: the same run recorded twice", runs[i].run_id,
                                  runs[i - 1].seq);
    lg_free(runs);
    return err;
}

int lg_verify_integrity(lg_ledger *lg, const lg_verify_opts *opts, lg_problems *ps, lg_verify_stats *stats)
{
    static const lg_verify_opts defaults = {0};
    lg_chain_entry *chain = NULL;
    lg_verify_stats local;
    lg_keyring trusted = LG_KEYRING_INIT;
    lg_buf source = LG_BUF_INIT;
    snapshot snap;
    git_oid tip;
    vctx c;
    size_t n = 0, k, before = lg_problems_failed(ps);
    char prev_id[65] = "", hex[GIT_OID_HEXSZ + 1], subject[64];
    int err = 0, have_root = 0;

    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    memset(&c, 0, sizeof c);
    memset(&snap, 0, sizeof snap);
    c.lg = lg;
    c.opts = opts ? opts : &defaults;
    c.ps = ps;
    c.st = stats;
    /* The trust root comes from outside the work tree (sign.h); without one,
     * --require-signed is a usage error before anything is checked. */
    if (c.opts->require_signed || lg_ledger_trust(lg)->keys_file || lg_ledger_trust(lg)->keys_ref) {
        if ((err = lg_trust_root_load(lg, &trusted, &source)) < 0)
            goto out;
        have_root = 1;
        if ((err = lg_buf_puts(&source, "")) < 0 || (err = lg_trust_root_report_worktree(lg, &trusted, source.ptr, ps)) < 0)
            goto out;
    }
    if ((err = snapshot_open(&c, &tip, &snap)) < 0)
        goto out;
    if ((err = lg_ledger_chain_at(lg, &tip, &chain, &n)) < 0) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", LG_LEDGER_REF, "%s", lg_error_msg());
        goto out;
    }
    stats->commits = n;
    for (k = 0; k < n; k++) {
        const lg_chain_entry *ce = &chain[k];
        git_oid_tostr(hex, sizeof hex, &ce->commit);
        snprintf(subject, sizeof subject, "commit %.12s", hex);
        if (k == 0) {
            if (ce->n_added)
                err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject,
                                      "the root commit holds runs (%s): history rewritten", ce->added);
            if (err >= 0 && ce->nparents)
                err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject, "root commit has parents");
            if (err >= 0) {
                /* the root holds FORMAT and nothing else: anything more would ride along unverified */
                git_commit *rc = NULL;
                git_tree *rt = NULL;
                if (git_commit_lookup(&rc, lg_ledger_repo(lg), &ce->commit) < 0 || git_commit_tree(&rt, rc) < 0)
                    err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject, "root commit unreadable");
                else if (git_tree_entrycount(rt) != 1 ||
                         strcmp(git_tree_entry_name(git_tree_entry_byindex(rt, 0)), "FORMAT") != 0)
                    err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject,
                                          "the root commit's tree holds %zu entries, expected FORMAT alone",
                                          git_tree_entrycount(rt));
                git_tree_free(rt);
                git_commit_free(rc);
            }
            if (err < 0)
                goto out;
            continue;
        }
        if (ce->nparents != 1 &&
            (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject, "has %u parents, expected 1",
                                   ce->nparents)) < 0)
            goto out;
        if ((ce->n_removed || ce->n_modified) &&
            (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject,
                                   "changes %s recorded earlier (%zu modified, %zu removed): entries are append-only",
                                   ce->changed, ce->n_modified, ce->n_removed)) < 0)
            goto out;
        if (ce->n_added != 1) {
            if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "chain", subject, "adds %zu runs, expected exactly 1",
                                       ce->n_added)) < 0)
                goto out;
            if (!ce->n_added)
                continue;
        }
        stats->runs++;
        if ((err = check_run(&c, k, ce, prev_id)) < 0)
            goto out;
    }
    if ((err = check_unique_ids(&c, &tip)) < 0 || (err = lg_verify_canonical_trees(lg, &tip, ps)) < 0)
        goto out;
    if (c.opts->base_ref && (err = lg_verify_base(lg, &tip, c.opts->base_ref, ps, stats)) < 0)
        goto out;
    if (c.opts->at_least && (err = lg_verify_at_least(lg, &tip, c.opts->at_least, ps)) < 0)
        goto out;
    if ((err = check_index(&c, &tip, &snap, lg_problems_failed(ps) == before)) < 0)
        goto out;
    snapshot_close(&snap);
    /* signatures of the tip's runs: present ones always, absent ones under require_signed (sign.h) */
    if ((err = lg_sign_verify_runs(lg, have_root ? &trusted : NULL, c.opts->require_signed, ps, NULL)) < 0)
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "signature", "", "not checked: %s", lg_error_msg());
out:
    snapshot_close(&snap);
    for (k = 0; k < c.nchecked; k++)
        lg_free(c.checked[k]);
    lg_free(c.checked);
    lg_free(chain);
    lg_keyring_release(&trusted);
    lg_buf_release(&source);
    return err;
}

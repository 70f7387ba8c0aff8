/*
 * ledger_gc.c - finding an artifact's bytes, and garbage collection.
 *
 * An output lives in the store (content-addressed, ab/cdef...); small ones
 * also in the run's files/ in git, so a clone can restore them into its
 * store on demand (re-hashed on the way). gc removes what no run of the
 * branch references, but only when older than --min-age: a run still in
 * progress has stored objects that its commit does not reference yet.
 */
#include "ledger/ledger_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ledger/recover.h"

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
        if (lg_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v, 256) < 0)
            return LG_ENOMEM;
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
    /* the index tripwire first: on a branch rewritten under this clone (a
     * fetched force-push dropping runs), "unreferenced" would include the
     * dropped runs' objects, often their only copy (t7907) */
    if ((err = lg_ledger_lock_caught_up(lg)) < 0)
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

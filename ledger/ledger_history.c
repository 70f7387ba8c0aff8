/*
 * ledger_history.c - reading the branch: runs of a tree, manifests, chain
 * entries (chain.json) and the first-parent walk of commits.
 *
 * Reading never trusts a run directory's name beyond parsing it: a run's id
 * is recomputed as the SHA-256 of its manifest bytes on every read
 * (lgl_runs_of_tree), and a manifest is parsed and checked
 * (lg_manifest_check) before anyone gets it. A run's place comes from its
 * directory name (seq) and its chain.json (lg_ledger_chain_link); verify.c
 * checks that both agree with the commit order.
 *
 * The *_at variants read a pinned commit instead of the ref, so that verify,
 * verify --base and sync each look at one snapshot while writers move on.
 */
#include "ledger/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/manifest.h"

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
        return lgl_git_fail(hex);
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

/* The runs/ tree of a ledger tree: 1 with *runs_e and *runs set (the
 * caller frees both), 0 when there is none yet, < 0 when runs is not a tree. */
static int runs_tree(lg_ledger *lg, git_tree *root, git_tree_entry **runs_e, git_tree **runs)
{
    if (git_tree_entry_bypath(runs_e, root, "runs") < 0)
        return 0;
    if (git_tree_entry_type(*runs_e) != GIT_OBJECT_TREE || git_tree_lookup(runs, lg->repo, git_tree_entry_id(*runs_e)) < 0)
        return lg_error_set(LG_EINPUT, "ledger: runs is not a tree");
    return 1;
}

/* ri = the run of directory entry e (runs/<seq>-<id12>) with manifest entry
 * me; its id is the SHA-256 of the manifest's bytes (read through raw). */
static int run_info_fill(lg_ledger *lg, lg_run_info *ri, long seq, const git_tree_entry *e, const git_tree_entry *me,
                         lg_buf *raw)
{
    int err;
    ri->seq = seq;
    snprintf(ri->dir, sizeof ri->dir, "runs/%s", git_tree_entry_name(e));
    git_oid_cpy(&ri->manifest, git_tree_entry_id(me));
    git_oid_cpy(&ri->tree, git_tree_entry_id(e));
    lg_buf_clear(raw);
    if ((err = lg_ledger_read_blob(lg, &ri->manifest, LG_MANIFEST_MAX, raw)) < 0 ||
        (err = lg_sha256_buf(raw->ptr, raw->len, ri->run_id)) < 0)
        return err;
    return 0;
}

/* Lists runs/ of a tree into *out (sorted by seq). */
int lgl_runs_of_tree(lg_ledger *lg, git_tree *root, lg_run_info **out, size_t *n)
{
    git_tree_entry *runs_e = NULL;
    git_tree *runs = NULL;
    lg_run_info *v = NULL;
    lg_buf raw = LG_BUF_INIT;
    size_t i, cnt, k = 0;
    int err = 0;

    *out = NULL;
    *n = 0;
    if ((err = runs_tree(lg, root, &runs_e, &runs)) <= 0)
        goto out; /* 0: no runs yet */
    err = 0;
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
        err = run_info_fill(lg, &v[k], seq, e, me, &raw);
        git_tree_entry_free(me);
        git_tree_free(rt);
        if (err < 0)
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

int lgl_last_run_of_tree(lg_ledger *lg, git_tree *root, lg_run_info *out, int *found)
{
    git_tree_entry *runs_e = NULL, *me = NULL;
    git_tree *runs = NULL, *rt = NULL;
    const git_tree_entry *best = NULL;
    lg_run_info *all = NULL;
    lg_buf raw = LG_BUF_INIT;
    size_t i, cnt, n = 0;
    long best_seq = 0;
    int err = 0, tie = 0;

    *found = 0;
    memset(out, 0, sizeof(*out));
    if ((err = runs_tree(lg, root, &runs_e, &runs)) <= 0)
        goto out; /* 0: no runs yet */
    err = 0;
    /* The largest seq among the names alone (tree entries sort by name, not
     * by seq, so every name is parsed; no object is read). */
    cnt = git_tree_entrycount(runs);
    for (i = 0; i < cnt; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(runs, i);
        char id12[13];
        long seq;
        if (lg_ledger_parse_dirname(git_tree_entry_name(e), &seq, id12) < 0)
            continue;
        if (!best || seq > best_seq) {
            best = e;
            best_seq = seq;
            tie = 0;
        } else if (seq == best_seq) {
            tie = 1;
        }
    }
    lg_error_clear(); /* the names that did not parse are strays, not errors */
    if (!best)
        goto out;
    /* Anything lgl_runs_of_tree would judge differently (two directories with
     * that seq, a stray that is not a run directory): let it decide. */
    if (tie || git_tree_entry_type(best) != GIT_OBJECT_TREE || git_tree_lookup(&rt, lg->repo, git_tree_entry_id(best)) < 0 ||
        git_tree_entry_bypath(&me, rt, "manifest.json") < 0) {
        lg_error_clear();
        if ((err = lgl_runs_of_tree(lg, root, &all, &n)) < 0 || n == 0)
            goto out;
        *out = all[n - 1];
        *found = 1;
        goto out;
    }
    if ((err = run_info_fill(lg, out, best_seq, best, me, &raw)) < 0)
        goto out;
    *found = 1;
out:
    lg_free(all);
    lg_buf_release(&raw);
    git_tree_entry_free(me);
    git_tree_free(rt);
    git_tree_free(runs);
    git_tree_entry_free(runs_e);
    return err;
}

int lg_ledger_append_run_dir(lg_ledger *lg, git_oid *parent, long seq, const char *run_id, const git_oid *run_tree,
                             git_signature *sig, const char *msg, const char *what)
{
    git_commit *pc = NULL;
    git_tree *pt = NULL, *nt = NULL;
    git_signature *own = NULL;
    git_tree_update upd;
    git_oid tree_oid, commit;
    lg_buf path = LG_BUF_INIT;
    int err;

    if ((err = lg_buf_printf(&path, "runs/%ld-%.12s", seq, run_id)) < 0 ||
        (!sig && (err = lgl_make_signature(lg->repo, &own)) < 0))
        goto out;
    memset(&upd, 0, sizeof upd);
    upd.action = GIT_TREE_UPDATE_UPSERT;
    git_oid_cpy(&upd.id, run_tree);
    upd.filemode = GIT_FILEMODE_TREE;
    upd.path = path.ptr;
    if (git_commit_lookup(&pc, lg->repo, parent) < 0 || git_commit_tree(&pt, pc) < 0 ||
        git_tree_create_updated(&tree_oid, lg->repo, pt, 1, &upd) < 0 || git_tree_lookup(&nt, lg->repo, &tree_oid) < 0 ||
        git_commit_create(&commit, lg->repo, NULL, sig ? sig : own, sig ? sig : own, NULL, msg, nt, 1,
                          (const git_commit **)&pc) < 0) {
        err = lgl_git_fail(what);
        goto out;
    }
    git_oid_cpy(parent, &commit);
    err = 0;
out:
    git_signature_free(own);
    git_tree_free(nt);
    git_tree_free(pt);
    git_commit_free(pc);
    lg_buf_release(&path);
    return err;
}

int lgl_tip_tree(lg_ledger *lg, git_commit **commit_out, git_tree **tree_out)
{
    git_oid oid;
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
    if (git_commit_lookup(commit_out, lg->repo, &oid) < 0)
        return lgl_git_fail("reading the ledger tip");
    if (git_commit_tree(tree_out, *commit_out) < 0) {
        git_commit_free(*commit_out);
        *commit_out = NULL;
        return lgl_git_fail("reading the ledger tip tree");
    }
    return 0;
}

int lg_ledger_runs_at(lg_ledger *lg, const git_oid *commit, lg_run_info **out, size_t *n)
{
    git_commit *c = NULL;
    git_tree *t = NULL;
    int err = 0;
    *out = NULL;
    *n = 0;
    if (git_commit_lookup(&c, lg->repo, commit) < 0 || git_commit_tree(&t, c) < 0)
        err = lgl_git_fail("reading a ledger commit");
    else
        err = lgl_runs_of_tree(lg, t, out, n);
    git_tree_free(t);
    git_commit_free(c);
    return err;
}

int lg_ledger_runs(lg_ledger *lg, lg_run_info **out, size_t *n)
{
    git_commit *c = NULL;
    git_tree *t = NULL;
    int err = lgl_tip_tree(lg, &c, &t);
    *out = NULL;
    *n = 0;
    if (err >= 0)
        err = lgl_runs_of_tree(lg, t, out, n);
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

int lg_ledger_chain_link(lg_ledger *lg, const lg_run_info *ri, lg_chain_link *out)
{
    git_tree *t = NULL;
    git_tree_entry *e = NULL;
    lg_buf raw = LG_BUF_INIT;
    int err;
    memset(out, 0, sizeof(*out));
    if (git_tree_lookup(&t, lg->repo, &ri->tree) < 0) {
        err = lgl_git_fail(ri->dir);
        goto out;
    }
    if (git_tree_entry_bypath(&e, t, LG_CHAIN_FILE) < 0 || git_tree_entry_type(e) != GIT_OBJECT_BLOB) {
        err = lg_error_set(LG_ECHECK, "%s: " LG_CHAIN_FILE " is missing", ri->dir);
        goto out;
    }
    if ((err = lg_ledger_read_blob(lg, git_tree_entry_id(e), 4096, &raw)) < 0)
        goto out;
    if ((err = lg_chain_json_parse(raw.ptr, raw.len, ri->dir, out)) == LG_EINPUT)
        err = LG_ECHECK; /* malformed evidence, not bad user input */
out:
    lg_buf_release(&raw);
    git_tree_entry_free(e);
    git_tree_free(t);
    return err;
}

int lgl_parse_manifest(const lg_buf *raw, const char *where, cJSON **out)
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
        (err = lgl_parse_manifest(b, ri.dir, out)) < 0)
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
            (err = lgl_parse_manifest(&raw, v[i].dir, &m)) < 0)
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
    return git_tree_lookup(out, repo, git_tree_entry_id(e)) < 0 ? lgl_git_fail("reading a tree") : 0;
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
    git_oid oid;
    *out = NULL;
    *n = 0;
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
    return lg_ledger_chain_at(lg, &oid, out, n);
}

int lg_ledger_chain_at(lg_ledger *lg, const git_oid *tip, lg_chain_entry **out, size_t *n)
{
    lg_chain_entry *v = NULL;
    size_t cnt = 0, cap = 0, i;
    git_commit *c = NULL, *p = NULL;
    git_tree *ct = NULL, *pt = NULL;
    int err = 0;

    *out = NULL;
    *n = 0;
    if (git_commit_lookup(&c, lg->repo, tip) < 0)
        return lgl_git_fail("reading the ledger tip");
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
            err = lgl_git_fail("reading a ledger tree");
            goto out;
        }
        if (v[cnt].nparents > 0) {
            if (git_commit_parent(&p, c, 0) < 0 || git_commit_tree(&pt, p) < 0) {
                err = lgl_git_fail("reading a ledger commit's parent");
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

/*
 * verify_base.c - append-only against a base, and rollback (verify_base.h).
 *
 * Why: the hash chain alone is recomputable by whoever can push the branch:
 * change a metric, recompute the manifest, its id, every chain.json after it,
 * and the ledger verifies. What such a person cannot change is a copy of the
 * ledger someone else holds: the protected remote branch CI fetched
 * (--base), or a run id a reviewer wrote down (--at-least). In the manner of
 * Certificate Transparency's consistency proof, the ledger under review must
 * contain the base unchanged as its prefix.
 *
 * Content, not only ancestry: git ancestry (SHA-1 commits) is checked, and
 * every base run is compared by its SHA-256 id and the bytes of its
 * manifest.json and chain.json, and its run directory's tree.
 */
#include "ledger/verify_base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/verify.h"

/* Reads runs/<dir>/<name> of a run into out; 0, or 1 when absent. */
static int read_run_file(lg_ledger *lg, const lg_run_info *ri, const char *name, lg_buf *out)
{
    git_tree *t = NULL;
    git_tree_entry *e = NULL;
    int err = 1;
    lg_buf_clear(out);
    if (git_tree_lookup(&t, lg_ledger_repo(lg), &ri->tree) == 0 && git_tree_entry_bypath(&e, t, name) == 0 &&
        git_tree_entry_type(e) == GIT_OBJECT_BLOB)
        err = lg_ledger_read_blob(lg, git_tree_entry_id(e), 0, out);
    git_tree_entry_free(e);
    git_tree_free(t);
    return err;
}

static const lg_run_info *at_seq(const lg_run_info *v, size_t n, long seq)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (v[i].seq == seq)
            return &v[i];
    return NULL;
}

int lg_first_parent_ancestor(git_repository *repo, const git_oid *tip, const git_oid *anc)
{
    git_commit *c = NULL, *p = NULL;
    int found = 0;
    if (git_commit_lookup(&c, repo, tip) < 0)
        return 0;
    while (c && !found) {
        found = git_oid_equal(git_commit_id(c), anc);
        p = NULL;
        if (!found && git_commit_parentcount(c) > 0 && git_commit_parent(&p, c, 0) < 0)
            p = NULL;
        git_commit_free(c);
        c = found ? NULL : p;
    }
    git_commit_free(c);
    return found;
}

int lg_verify_base(lg_ledger *lg, const git_oid *tip, const char *base_ref, lg_problems *ps, lg_verify_stats *stats)
{
    git_repository *repo = lg_ledger_repo(lg);
    git_object *obj = NULL, *peeled = NULL;
    lg_run_info *base = NULL, *cur = NULL;
    lg_buf a = LG_BUF_INIT, b = LG_BUF_INIT, where = LG_BUF_INIT;
    size_t nb = 0, nc = 0, i, bad = 0;
    char subject[160], bhex[GIT_OID_HEXSZ + 1];
    git_oid boid;
    int err = 0;

    if (git_revparse_single(&obj, repo, base_ref) < 0 || git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
        err = lg_error_set(LG_EINPUT, "--base %s: not a commit of this repository (fetch it first: git fetch origin "
                                      "+refs/heads/ledger:refs/remotes/origin/ledger)",
                           base_ref);
        goto out;
    }
    git_oid_cpy(&boid, git_object_id(peeled));
    git_oid_tostr(bhex, sizeof bhex, &boid);
    if ((err = lg_buf_printf(&where, "--base %s", base_ref)) < 0 ||
        (err = lg_ledger_check_format_at(repo, &boid, where.ptr)) < 0)
        goto out;
    if ((err = lg_ledger_runs_at(lg, &boid, &base, &nb)) < 0 || (err = lg_ledger_runs_at(lg, tip, &cur, &nc)) < 0)
        goto out;
    stats->base_checked = 1;
    stats->base_runs = nb;
    for (i = 0; i < nb && err >= 0; i++) {
        const lg_run_info *r = &base[i];
        const lg_run_info *t = at_seq(cur, nc, r->seq);
        snprintf(subject, sizeof subject, "run %s", r->dir + 5);
        if (!t) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", subject,
                                  "run %ld (%.12s) of the base %s is missing here: dropped (a rollback or rewrite)",
                                  r->seq, r->run_id, base_ref);
            bad++;
            continue;
        }
        if (strcmp(t->run_id, r->run_id) != 0) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", subject,
                                  "seq %ld is run %.12s in the base %s but run %.12s here: rewritten, replaced or "
                                  "reordered",
                                  r->seq, r->run_id, base_ref, t->run_id);
            bad++;
            continue;
        }
        /* same id = same manifest SHA-256; compare the bytes and the chain entry anyway */
        if ((err = read_run_file(lg, r, "manifest.json", &a)) < 0 || (err = read_run_file(lg, t, "manifest.json", &b)) < 0)
            goto out;
        if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len) != 0) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", subject, "manifest.json differs from the base %s",
                                  base_ref);
            bad++;
            continue;
        }
        if ((err = read_run_file(lg, r, LG_CHAIN_FILE, &a)) < 0 || (err = read_run_file(lg, t, LG_CHAIN_FILE, &b)) < 0)
            goto out;
        if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len) != 0) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", subject,
                                  LG_CHAIN_FILE " differs from the base %s: the run was moved in the chain", base_ref);
            bad++;
            continue;
        }
        if (strcmp(r->dir, t->dir) != 0 || !git_oid_equal(&r->tree, &t->tree)) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", subject,
                                  "the run directory differs from the base %s (files or signature changed)", base_ref);
            bad++;
        }
    }
    if (err < 0)
        goto out;
    if (!lg_first_parent_ancestor(repo, tip, &boid)) {
        if ((err = lg_problems_add(ps, LG_PROBLEM_ERROR, "base", base_ref,
                                   "its commit %.12s is not a first-parent ancestor of " LG_LEDGER_REF
                                   ": the history was rewritten%s",
                                   bhex, bad ? "" : " (every base run is still present, but not in the base's commits)")) < 0)
            goto out;
        bad++;
    }
    stats->new_runs = !bad && nc >= nb ? nc - nb : 0;
out:
    lg_buf_release(&a);
    lg_buf_release(&b);
    lg_buf_release(&where);
    lg_free(base);
    lg_free(cur);
    git_object_free(peeled);
    git_object_free(obj);
    return err;
}

int lg_verify_at_least(lg_ledger *lg, const git_oid *tip, const char *spec, lg_problems *ps)
{
    const char *colon = strchr(spec, ':');
    lg_run_info *cur = NULL;
    const lg_run_info *t;
    size_t nc = 0, idlen;
    char *end;
    long seq;
    int err;

    seq = colon ? strtol(spec, &end, 10) : 0;
    idlen = colon ? strlen(colon + 1) : 0;
    if (!colon || end != colon || seq < 1 || spec[0] == '0' || idlen < 12 || idlen > 64 ||
        !lg_sha256_prefix_valid(colon + 1))
        return lg_error_set(LG_EINPUT, "--at-least '%s': expected SEQ:ID (ID a run id or a prefix of at least 12 "
                                       "lowercase hex digits)",
                            spec);
    if ((err = lg_ledger_runs_at(lg, tip, &cur, &nc)) < 0)
        return err;
    t = at_seq(cur, nc, seq);
    if (!t)
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "rollback", spec,
                              "the ledger holds %zu run(s) and no run %ld: runs were dropped (rolled back)", nc, seq);
    else if (strncmp(t->run_id, colon + 1, idlen) != 0)
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "rollback", spec,
                              "run %ld here is %.12s, not %.12s: the run was replaced (rollback or rewrite)", seq,
                              t->run_id, colon + 1);
    lg_free(cur);
    return err;
}

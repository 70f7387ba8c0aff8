/*
 * sync.c - merge a clone's runs into a shared ledger (see sync.h).
 *
 * Why re-chain instead of a git merge: the ledger is a linear first-parent
 * chain and verify refuses merge commits. Two clones that each appended runs
 * to the same remote tip hold two different run k. The runs themselves do not
 * conflict: a run is its manifest (id = SHA-256 of it), and in format 2 its
 * place (seq, prev) lives only in chain.json. So the runs the remote lacks are
 * appended after the remote's runs with new chain entries, keeping their ids
 * and signatures, and the remote only ever moves forward (a fast-forward
 * push), so `verify --base` at the remote's old tip holds for everyone.
 *
 * The local branch is then replaced by the synced one. That is a rewrite of
 * the local branch, done here on purpose and under the lock, and the index is
 * rebuilt from the new tip (the tripwire of recover.h must not fire on it).
 */
#include "ledger/sync.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/manifest.h"
#include "ledger/recover.h"
#include "ledger/verify.h"
#include "ledger/verify_base.h"

#define SYNC_REF "refs/ledger-sync/fetched" /* scratch: what the last fetch got */
#define OUT_REF "refs/ledger-sync/outgoing" /* scratch: what we push */
/* refs/ledger-sync/seen/<sha256(remote)[:16]>: the remote's tip after the last
 * completed sync with it; the next sync refuses a remote that no longer
 * extends it (the remote was rewritten), in the manner of verify --base. */

static int git_fail(const char *what)
{
    const git_error *e = git_error_last();
    return lg_error_set(LG_EIO, "%s: %s", what, e && e->message ? e->message : "failed");
}

static void say(void (*notify)(void *, const char *), void *ctx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!notify)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    notify(ctx, msg);
}

static int open_remote(git_repository *repo, const char *name, git_remote **out)
{
    if (git_remote_lookup(out, repo, name) == 0)
        return 0;
    if (!strstr(name, "://") && !strchr(name, ':') && !lg_path_exists(name))
        return lg_error_set(LG_EINPUT, "'%s' is neither a configured remote, a URL nor an existing path", name);
    if (git_remote_create_anonymous(out, repo, name) == 0)
        return 0;
    return lg_error_set(LG_EINPUT, "'%s' is neither a configured remote nor a repository URL or path", name);
}

/* Fetches the remote's ledger into SYNC_REF; *have = 0 when it has none. */
static int fetch_remote(git_repository *repo, git_remote *remote, const char *name, git_oid *tip, int *have)
{
    char *spec = "+refs/heads/ledger:" SYNC_REF;
    git_strarray specs = {&spec, 1};
    git_fetch_options fo;
    git_reference *r = NULL;
    *have = 0;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    /* stale value from an earlier sync must not pass for the remote's tip */
    if (git_reference_lookup(&r, repo, SYNC_REF) == 0) {
        git_reference_delete(r);
        git_reference_free(r);
        r = NULL;
    }
    if (git_remote_fetch(remote, &specs, &fo, "ledger sync") < 0)
        return git_fail(name);
    if (git_reference_name_to_id(tip, repo, SYNC_REF) == 0)
        *have = 1;
    return 0;
}

static int seen_ref_name(const char *remote, lg_buf *out)
{
    char h[65];
    int err = lg_sha256_buf(remote, strlen(remote), h);
    if (err >= 0)
        err = lg_buf_printf(out, "refs/ledger-sync/seen/%.16s", h);
    return err;
}

/* The remote's new tip must extend what this clone saw of it last time. */
static int check_remote_extends(lg_ledger *lg, const char *name, const git_oid *seen, const char *since,
                                const git_oid *rtip)
{
    lg_problems ps = LG_PROBLEMS_INIT;
    lg_verify_stats st;
    lg_buf lines = LG_BUF_INIT;
    char hex[GIT_OID_HEXSZ + 1];
    size_t i;
    int err;
    memset(&st, 0, sizeof st);
    git_oid_tostr(hex, sizeof hex, seen);
    if ((err = lg_verify_base(lg, rtip, hex, &ps, &st)) < 0)
        goto out;
    if (lg_problems_failed(&ps)) {
        for (i = 0; i < ps.n && lines.len < 600; i++)
            if (ps.v[i].severity == LG_PROBLEM_ERROR)
                lg_buf_printf(&lines, "%s%s: %s", lines.len ? "; " : "", ps.v[i].subject, ps.v[i].message);
        err = lg_error_set(LG_ECHECK,
                           "%s was rewritten since %s (at %.12s): %s; nothing was changed here", name, since,
                           hex, lines.ptr ? lines.ptr : "");
    }
out:
    lg_buf_release(&lines);
    lg_problems_release(&ps);
    return err;
}

/* The anchor of a clone that never synced with a configured remote: its
 * remote-tracking ref refs/remotes/<remote>/ledger as it was before this sync
 * fetched (git clone / git fetch left it there, and 'ledger init' built the
 * local branch from it). Without it, a remote rewritten before this clone's
 * first sync passed: the clone's own copies of the rewritten runs were
 * re-appended after the forged ones and its history silently replaced
 * (tests/cli/t7900-sync-first-rewrite.sh). 1 with *out, 0 when none. */
static int tracking_anchor(git_repository *repo, git_remote *remote, git_oid *out, lg_buf *desc)
{
    const char *rn = git_remote_name(remote); /* NULL for a path or URL */
    lg_buf ref = LG_BUF_INIT;
    int have = 0;
    if (rn && lg_buf_printf(&ref, "refs/remotes/%s/ledger", rn) >= 0 &&
        git_reference_name_to_id(out, repo, ref.ptr) == 0)
        have = lg_buf_printf(desc, "this clone last fetched it (%s)", ref.ptr + 13) >= 0;
    lg_buf_release(&ref);
    return have;
}

/* Appends run `ri` (of the local ledger) after commit *parent as run `seq`
 * with prev = prev_digest; *parent and prev_digest move on. */
static int append_run(lg_ledger *lg, const lg_run_info *ri, long seq, git_oid *parent, char prev_digest[65])
{
    git_repository *repo = lg_ledger_repo(lg);
    git_tree *rt = NULL;
    git_treebuilder *tb = NULL;
    git_oid chain_blob, run_tree;
    lg_buf chain = LG_BUF_INIT, msg = LG_BUF_INIT;
    int err = 0;

    if ((err = lg_chain_json_make(seq, ri->run_id, prev_digest[0] ? prev_digest : NULL, &chain)) < 0)
        goto out;
    if (git_blob_create_from_buffer(&chain_blob, repo, chain.ptr, chain.len) < 0 ||
        git_tree_lookup(&rt, repo, &ri->tree) < 0 || git_treebuilder_new(&tb, repo, rt) < 0 ||
        git_treebuilder_insert(NULL, tb, LG_CHAIN_FILE, &chain_blob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_write(&run_tree, tb) < 0) {
        err = git_fail("building a re-chained run directory");
        goto out;
    }
    if ((err = lg_buf_printf(&msg, "ledger: run %ld %s\n\nsynced (re-chained from a clone)\n", seq, ri->run_id)) < 0 ||
        (err = lg_ledger_append_run_dir(lg, parent, seq, ri->run_id, &run_tree, NULL, msg.ptr,
                                        "committing a synced run")) < 0)
        goto out;
    err = lg_sha256_buf(chain.ptr, chain.len, prev_digest);
out:
    git_treebuilder_free(tb);
    git_tree_free(rt);
    lg_buf_release(&chain);
    lg_buf_release(&msg);
    return err;
}

typedef struct {
    int rejected;
    char why[256];
} push_ctx;

static int on_push_update(const char *refname, const char *status, void *data)
{
    push_ctx *p = data;
    if (status) {
        p->rejected = 1;
        snprintf(p->why, sizeof p->why, "%s: %s", refname, status);
    }
    return 0;
}

/* 0 pushed, 1 lost a race (non-fast-forward), < 0 error. */
static int push_tip(git_repository *repo, git_remote *remote, const char *name, const git_oid *tip)
{
    char *spec = OUT_REF ":refs/heads/ledger";
    git_strarray specs = {&spec, 1};
    git_push_options po;
    push_ctx pc = {0, ""};
    git_reference *r = NULL;
    const git_error *e;
    int rc;
    git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
    /* push what OUT_REF names: point it at the tip to publish */
    if (git_reference_create(&r, repo, OUT_REF, tip, 1, "ledger sync: to push") < 0)
        return git_fail("preparing the push");
    git_reference_free(r);
    po.callbacks.push_update_reference = on_push_update;
    po.callbacks.payload = &pc;
    rc = git_remote_push(remote, &specs, &po);
    if (rc < 0) {
        e = git_error_last();
        if (e && e->message && (strstr(e->message, "fast-forward") || strstr(e->message, "fastforward")))
            return 1;
        return git_fail(name);
    }
    if (pc.rejected)
        return strstr(pc.why, "fast") || strstr(pc.why, "fetch first") ? 1
                                                                         : lg_error_set(LG_EIO, "%s: push rejected: %s", name, pc.why);
    return 0;
}

int lg_ledger_sync(lg_ledger *lg, const char *name, void (*notify)(void *ctx, const char *msg), void *ctx,
                   lg_sync_result *res)
{
    git_repository *repo = lg_ledger_repo(lg);
    git_remote *remote = NULL;
    git_reference *made = NULL;
    lg_run_info *lr = NULL, *rr = NULL;
    size_t nl = 0, nr = 0, i, j;
    git_oid ltip, rtip, newtip, seen;
    lg_buf seen_ref = LG_BUF_INIT, since = LG_BUF_INIT;
    int err = 0, locked = 0, have, tries, have_seen;

    memset(res, 0, sizeof(*res));
    if ((err = open_remote(repo, name, &remote)) < 0)
        goto out;
    /* sync rebuilds the index at the end: first make sure that erases no
     * tripwire (an index whose tip a rewrite took off the branch, recover.h) */
    if ((err = lg_ledger_lock_caught_up(lg)) < 0)
        goto out;
    locked = 1;
    if ((err = seen_ref_name(name, &seen_ref)) < 0)
        goto out;
    have_seen = git_reference_name_to_id(&seen, repo, seen_ref.ptr) == 0;
    if (have_seen)
        err = lg_buf_printf(&since, "this clone last synced with it");
    else if ((have_seen = tracking_anchor(repo, remote, &seen, &since))) {
        /* kept as the seen ref before the fetch below: libgit2's fetch moves
         * the remote-tracking ref too, even to a tip this sync then refuses,
         * and the next sync must refuse it again */
        git_reference *sr = NULL;
        if (git_reference_create(&sr, repo, seen_ref.ptr, &seen, 1, "ledger sync: seen (remote-tracking)") < 0)
            err = git_fail("recording the remote tip");
        git_reference_free(sr);
    }
    if (err < 0)
        goto out;
    for (tries = 1; tries <= LG_SYNC_TRIES; tries++) {
        lg_chain_link last;
        char prev[65] = "";
        res->tries = tries;
        res->rechained = res->already = res->fetched = 0;
        lg_free(lr);
        lg_free(rr);
        lr = rr = NULL;
        say(notify, ctx, "fetching %s from %s", LG_LEDGER_REF, name);
        if ((err = fetch_remote(repo, remote, name, &rtip, &have)) < 0)
            goto out;
        if (git_reference_name_to_id(&ltip, repo, LG_LEDGER_REF) < 0) {
            err = lg_error_set(LG_EINPUT, "no branch %s; run 'ledger init'", LG_LEDGER_REF);
            goto out;
        }
        if ((err = lg_ledger_runs_at(lg, &ltip, &lr, &nl)) < 0)
            goto out;
        if (!have) { /* an empty remote: publish ours as it is */
            res->old_remote_tip[0] = '\0';
            git_oid_cpy(&newtip, &ltip);
            res->rechained = 0;
            res->total = nl;
        } else {
            git_oid_tostr(res->old_remote_tip, sizeof res->old_remote_tip, &rtip);
            if ((err = lg_ledger_check_format_at(repo, &rtip, name)) < 0)
                goto out;
            if (have_seen && (err = check_remote_extends(lg, name, &seen, since.ptr, &rtip)) < 0)
                goto out;
            if ((err = lg_ledger_runs_at(lg, &rtip, &rr, &nr)) < 0)
                goto out;
            res->remote_runs = nr;
            if (lg_first_parent_ancestor(repo, &ltip, &rtip)) {
                git_oid_cpy(&newtip, &ltip); /* ours extends theirs: a plain fast-forward */
                res->rechained = nl - nr;
            } else {
                git_oid_cpy(&newtip, &rtip);
                if (nr && lg_ledger_chain_link(lg, &rr[nr - 1], &last) < 0)
                    goto out_err;
                if (nr)
                    memcpy(prev, last.digest, 65);
                for (i = 0; i < nl; i++) {
                    int on_remote = 0;
                    for (j = 0; j < nr && !on_remote; j++)
                        on_remote = strcmp(lr[i].run_id, rr[j].run_id) == 0;
                    if (on_remote) {
                        res->already++;
                        continue;
                    }
                    if ((err = append_run(lg, &lr[i], (long)(nr + res->rechained + 1), &newtip, prev)) < 0)
                        goto out;
                    res->rechained++;
                }
                res->fetched = nr - res->already;
            }
            res->total = nr + res->rechained;
        }
        if (have && git_oid_equal(&newtip, &rtip)) {
            res->pushed = 0;
        } else {
            say(notify, ctx, "pushing %zu run(s) to %s", res->rechained, name);
            if ((err = push_tip(repo, remote, name, &newtip)) < 0)
                goto out;
            if (err == 1) {
                say(notify, ctx, "%s moved meanwhile (another clone synced); fetching again", name);
                err = 0;
                continue;
            }
            res->pushed = 1;
        }
        break;
    }
    if (tries > LG_SYNC_TRIES) {
        err = lg_error_set(LG_ELOCKED, "%s kept moving: gave up after %d tries; run 'ledger sync' again", name,
                           LG_SYNC_TRIES);
        goto out;
    }
    if (have || res->pushed) { /* the remote's tip now: the anchor of the next sync */
        git_reference *sr = NULL;
        if (git_reference_create(&sr, repo, seen_ref.ptr, res->pushed ? &newtip : &rtip, 1, "ledger sync: seen") < 0) {
            err = git_fail("recording the remote tip");
            goto out;
        }
        git_reference_free(sr);
    }
    if (!git_oid_equal(&newtip, &ltip)) {
        if (git_reference_create(&made, repo, LG_LEDGER_REF, &newtip, 1, "ledger sync") < 0) {
            err = git_fail("moving " LG_LEDGER_REF);
            goto out;
        }
        say(notify, ctx, "rebuilding the index");
        if ((err = lg_ledger_reindex(lg)) < 0)
            goto out;
    }
    git_oid_tostr(res->tip, sizeof res->tip, &newtip);
    goto out;
out_err:
    err = lg_error_code() ? lg_error_code() : LG_EIO;
out:
    if (locked)
        lg_ledger_unlock(lg);
    git_reference_free(made);
    git_remote_free(remote);
    lg_buf_release(&seen_ref);
    lg_buf_release(&since);
    lg_free(lr);
    lg_free(rr);
    return err;
}

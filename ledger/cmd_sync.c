/*
 * cmd_sync.c - 'ledger sync [REMOTE]' (share the ledger branch through a git
 * remote, ledger/sync.h) and 'ledger push DIR' / 'ledger pull DIR': copy store objects
 * to or from a directory remote (a store laid out like .ledger/store:
 * DIR/objects/ab/cdef...). The ledger branch itself travels with git (git
 * push/fetch of refs/heads/ledger); these two commands carry the large
 * outputs that live only in the store.
 *
 * Every copied object is re-hashed while it is written (lg_store_put_file
 * hashes what it copies), and an object whose bytes do not hash to its name
 * is refused and reported: a corrupt remote cannot plant a wrong object, and
 * a corrupt local object is not spread. Objects already at the destination
 * are re-hashed too: a corrupt copy there is replaced by the good one.
 *
 * pull copies only the objects that a run of the local ledger branch names
 * (fetch the branch first): a shared remote may hold other ledgers' objects,
 * which have no business in this store. DIR must be a local directory: a
 * URL-like argument (s3://bucket/x, host:path) is refused rather than taken
 * as a folder name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/sync.h"
#include "ledger/manifest.h"
#include "ledger/shard.h"

typedef struct {
    char **v;
    size_t n, cap;
} hexset;

static int cmp_hex(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int collect_outputs(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    hexset *s = vctx;
    const cJSON *o;
    (void)ri;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const char *h = lg_json_str(o, "sha256");
        if (!h)
            continue;
        if (lg_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v, 256) < 0)
            return LG_ENOMEM;
        if (!(s->v[s->n] = lg_strdup(h)))
            return LG_ENOMEM;
        s->n++;
    }
    return 0;
}

/* 1 when arg looks like a URL or an scp-style remote ("s3://b/x", "host:dir", "gs:b") */
static int looks_remote(const char *arg)
{
    const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');
    if (strstr(arg, "://"))
        return 1;
    return colon && colon != arg && (!slash || colon < slash);
}

typedef struct {
    lg_store *from, *to;
    int dry_run, quiet, json;
    const hexset *only; /* pull: the objects the local ledger references */
    size_t copied, present, bad, skipped;
    uint64_t bytes;
    lg_buf path;
} sync_ctx;

static int sync_one(void *vctx, const char *hex, uint64_t size)
{
    sync_ctx *s = vctx;
    char got[65];
    int err, added = 0;
    const char *key = hex;
    if (s->only && !(s->only->n && bsearch(&key, s->only->v, s->only->n, sizeof(char *), cmp_hex))) {
        s->skipped++;
        return 0;
    }
    /* present and intact: nothing to do; a corrupt destination copy is replaced (the store
     * repairs an object when its bytes are stored again), so `ledger pull` mends local bit rot */
    if (s->to && lg_store_verify(s->to, hex) == 0) {
        s->present++;
        return 0;
    }
    lg_error_clear();
    if (s->dry_run) {
        if (!s->json)
            printf("would copy %s (%llu bytes)\n", hex, (unsigned long long)size);
        s->copied++;
        s->bytes += size;
        return 0;
    }
    if ((err = lg_store_path(s->from, hex, &s->path)) < 0)
        return err;
    if ((err = lg_store_put_file(s->to, s->path.ptr, got, NULL, &added)) < 0)
        return err;
    if (strcmp(got, hex) != 0) {
        /* the source object is corrupt: drop what we just stored under its real digest */
        if (added)
            lg_store_remove(s->to, got);
        fprintf(stderr, "ledger: object %s is corrupt (its bytes hash to %s): not copied\n", hex, got);
        s->bad++;
        return 0;
    }
    s->copied++;
    s->bytes += size;
    return 0;
}

static int copy_cmd(lg_cli *cli, int argc, char **argv, int push)
{
    int dry_run = 0, json = 0;
    const char *staged = NULL, *backend_name = "auto", *stage_dir = NULL;
    const lg_opt opts[] = {
        {"staged", 0, LG_OPT_STRING, &staged, "STUDY",
         "copy the seed groups staged by 'ledger run --shard' for STUDY (to/from DIR/shards/), not store objects"},
        {"backend", 'b', LG_OPT_STRING, &backend_name, "NAME", "with --staged: the shards' backend (default auto)"},
        {"stage-dir", 0, LG_OPT_STRING, &stage_dir, "DIR", "with --staged: the local staging root (default .ledger/shards)"},
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "list what would be copied"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print only {copied, present, corrupt, skipped, bytes} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec_push = {"push", "ledger push [options] DIR",
                                   "Copies the store objects that DIR lacks into DIR (a directory remote laid out like\n"
                                   ".ledger/store, created if needed). The ledger branch travels with git:\n"
                                   "git push REMOTE ledger. Every object is re-hashed as it is copied.",
                                   opts, 1, 1, 0};
    const lg_cmd_spec spec_pull = {"pull", "ledger pull [options] DIR",
                                   "Copies the store objects that this ledger lacks from DIR (a directory remote written by\n"
                                   "'ledger push'). Fetch the branch first: git fetch REMOTE ledger:ledger. Every object is\n"
                                   "re-hashed as it is copied; corrupt ones are refused. Only objects that a run of this\n"
                                   "ledger names are copied (the others are counted as skipped).",
                                   opts, 1, 1, 0};
    const char *name = push ? "push" : "pull";
    lg_ledger *lg = NULL;
    lg_store *remote = NULL;
    sync_ctx s;
    hexset refs = {NULL, 0, 0};
    size_t i;
    char **args;
    int nargs, rc, err;

    memset(&s, 0, sizeof s);
    lg_buf_init(&s.path, 0);
    if ((rc = cli_parse(cli, push ? &spec_push : &spec_pull, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    if (looks_remote(args[0])) {
        fprintf(stderr,
                "ledger %s: '%s' looks like a URL or a remote host; %s takes a local directory only (mount the "
                "remote, or sync the directory with your own tool; write ./%s for a local folder of that name)\n",
                name, args[0], name, args[0]);
        return 2;
    }
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if (staged) {
        rc = shard_cmd_sync(lg, push, staged, backend_name, stage_dir, args[0], dry_run, json);
        return rc;
    }
    if (!push && !lg_is_dir(args[0])) {
        err = lg_error_set(LG_ENOTFOUND, "%s: no such directory remote", args[0]);
        goto out;
    }
    /* a dry-run push to a remote that does not exist yet: everything would be copied */
    if (!(push && dry_run && !lg_is_dir(args[0])) && (err = lg_store_open(args[0], push && !dry_run, &remote)) < 0)
        goto out;
    s.dry_run = dry_run;
    s.json = json;
    if (!push) {
        if ((err = lg_ledger_foreach_run(lg, collect_outputs, &refs)) < 0)
            goto out;
        if (refs.n)
            qsort(refs.v, refs.n, sizeof(char *), cmp_hex);
        s.only = &refs;
    }
    s.from = push ? lg_ledger_store(lg) : remote;
    s.to = push ? remote : lg_ledger_store(lg);
    if (!push && (err = lg_ledger_lock(lg)) < 0)
        goto out;
    err = lg_store_foreach(s.from, sync_one, &s);
    if (!push)
        lg_ledger_unlock(lg);
    if (err < 0)
        goto out;
    if (json)
        printf("{\"copied\": %zu, \"present\": %zu, \"corrupt\": %zu, \"skipped\": %zu, \"bytes\": %llu}\n", s.copied,
               s.present, s.bad, s.skipped, (unsigned long long)s.bytes);
    else if (push)
        printf("%s %s: %zu objects %scopied (%llu bytes), %zu already there, %zu corrupt\n", name, args[0], s.copied,
               dry_run ? "would be " : "", (unsigned long long)s.bytes, s.present, s.bad);
    else
        printf("%s %s: %zu objects %scopied (%llu bytes), %zu already there, %zu corrupt, %zu not referenced by this "
               "ledger (skipped)\n",
               name, args[0], s.copied, dry_run ? "would be " : "", (unsigned long long)s.bytes, s.present, s.bad,
               s.skipped);
    err = s.bad ? LG_ECHECK : 0;
out:
    rc = err == LG_ECHECK ? 1 : (err < 0 ? cli_fail(name, err) : 0);
    lg_buf_release(&s.path);
    for (i = 0; i < refs.n; i++)
        lg_free(refs.v[i]);
    lg_free(refs.v);
    lg_store_free(remote);
    return rc;
}

int cmd_push(lg_cli *cli, int argc, char **argv) { return copy_cmd(cli, argc, argv, 1); }
int cmd_pull(lg_cli *cli, int argc, char **argv) { return copy_cmd(cli, argc, argv, 0); }

/* ---- ledger sync ------------------------------------------------------------ */

static void sync_notify(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "ledger sync: %s\n", msg);
}

/* .ledger/sync.json {"format":1,"store":DIR}: the store remote remembered by --store. */
static int store_setting(lg_ledger *lg, const char *set, lg_buf *out)
{
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT;
    cJSON *j = NULL, *v;
    int err;
    lg_buf_clear(out);
    if ((err = lg_path_join(&path, lg_ledger_dir(lg), "sync.json")) < 0)
        goto out;
    if (set) {
        char *s = NULL;
        if (!(j = cJSON_CreateObject()) || !cJSON_AddNumberToObject(j, "format", 1) ||
            !cJSON_AddStringToObject(j, "store", set) || !(s = cJSON_Print(j))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        err = lg_file_write_atomic(path.ptr, s, strlen(s));
        cJSON_free(s);
        if (err >= 0)
            err = lg_buf_puts(out, set);
        goto out;
    }
    if ((err = lg_file_read_optional(path.ptr, 1 << 16, &text)) <= 0) /* absent: no store remembered */
        goto out;
    if (!(j = cJSON_Parse(text.ptr)) || !cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(j, "store"))) {
        err = lg_error_set(LG_EINPUT, "%s: not {\"format\":1,\"store\":DIR}", path.ptr);
        goto out;
    }
    err = lg_buf_puts(out, v->valuestring);
out:
    cJSON_Delete(j);
    lg_buf_release(&path);
    lg_buf_release(&text);
    return err;
}

int cmd_sync_ledger(lg_cli *cli, int argc, char **argv)
{
    int json = 0;
    const char *store_arg = NULL;
    const lg_opt opts[] = {
        {"store", 0, LG_OPT_STRING, &store_arg, "DIR",
         "also copy store objects both ways with this directory remote (remembered in .ledger/sync.json)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the result as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "sync", "ledger sync [options] [REMOTE]",
        "Share this ledger with REMOTE (default origin; a configured remote, path or URL): fetch its " LG_LEDGER_REF
        ", append the local runs it lacks (by run id) after its runs with new chain entries (same ids, same "
        "signatures), push that as a fast-forward (retrying a lost race), move the local branch to it and rebuild the "
        "index. Runs already on the remote are not duplicated. Progress goes to stderr.",
        opts, 0, 1, 0};
    lg_ledger *lg = NULL;
    lg_sync_result r;
    lg_buf store = LG_BUF_INIT;
    lg_store *remote_store = NULL;
    sync_ctx s;
    char **args;
    int nargs, rc, err;
    const char *name;

    memset(&s, 0, sizeof s);
    lg_buf_init(&s.path, 0);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    name = nargs ? args[0] : "origin";
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if ((err = store_setting(lg, store_arg, &store)) < 0)
        goto out;
    if ((err = lg_ledger_sync(lg, name, sync_notify, NULL, &r)) < 0)
        goto out;
    if (store.len) { /* objects both ways: theirs may hold the big outputs of runs we just received */
        if ((err = lg_store_open(store.ptr, 1, &remote_store)) < 0)
            goto out;
        s.from = lg_ledger_store(lg);
        s.to = remote_store;
        if ((err = lg_store_foreach(s.from, sync_one, &s)) < 0)
            goto out;
        s.from = remote_store;
        s.to = lg_ledger_store(lg);
        if ((err = lg_store_foreach(s.from, sync_one, &s)) < 0)
            goto out;
    }
    if (json)
        printf("{\"remote\": \"%s\", \"old_remote_tip\": %s%s%s, \"tip\": \"%s\", \"remote_runs\": %zu, "
               "\"rechained\": %zu, \"already\": %zu, \"fetched\": %zu, \"runs\": %zu, \"pushed\": %s, \"tries\": %d, "
               "\"objects_copied\": %zu, \"objects_corrupt\": %zu}\n",
               name, r.old_remote_tip[0] ? "\"" : "", r.old_remote_tip[0] ? r.old_remote_tip : "null",
               r.old_remote_tip[0] ? "\"" : "", r.tip, r.remote_runs, r.rechained, r.already, r.fetched, r.total,
               r.pushed ? "true" : "false", r.tries, s.copied, s.bad);
    else
        printf("synced with %s: %zu run(s) in the shared ledger, %zu sent (re-chained after the remote's %zu), %zu "
               "received, %zu already there%s\n",
               name, r.total, r.rechained, r.remote_runs, r.fetched, r.already, r.pushed ? "" : "; nothing to push");
    if (s.bad) {
        rc = 1; /* each corrupt object was named on stderr */
        goto done;
    }
out:
    rc = err < 0 ? cli_fail("sync", err) : 0;
done:
    lg_buf_release(&s.path);
    lg_buf_release(&store);
    lg_store_free(remote_store);
    return rc;
}

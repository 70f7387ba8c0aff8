/*
 * cmd_sync.c - 'ledger push DIR' and 'ledger pull DIR': copy store objects
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
 */
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"

typedef struct {
    lg_store *from, *to;
    int dry_run, quiet;
    size_t copied, present, bad;
    uint64_t bytes;
    lg_buf path;
} sync_ctx;

static int sync_one(void *vctx, const char *hex, uint64_t size)
{
    sync_ctx *s = vctx;
    char got[65];
    int err, added = 0;
    /* present and intact: nothing to do; a corrupt destination copy is replaced (the store
     * repairs an object when its bytes are stored again), so `ledger pull` mends local bit rot */
    if (s->to && lg_store_verify(s->to, hex) == 0) {
        s->present++;
        return 0;
    }
    lg_error_clear();
    if (s->dry_run) {
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

static int cmd_sync(int argc, char **argv, int push)
{
    int dry_run = 0, json = 0;
    const lg_opt opts[] = {
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "list what would be copied"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {copied, present, corrupt, bytes} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec_push = {"push", "ledger push [options] DIR",
                                   "Copies the store objects that DIR lacks into DIR (a directory remote laid out like\n"
                                   ".ledger/store, created if needed). The ledger branch travels with git:\n"
                                   "git push REMOTE ledger. Every object is re-hashed as it is copied.",
                                   opts, 1, 1};
    const lg_cmd_spec spec_pull = {"pull", "ledger pull [options] DIR",
                                   "Copies the store objects that this ledger lacks from DIR (a directory remote written by\n"
                                   "'ledger push'). Fetch the branch first: git fetch REMOTE ledger:ledger. Every object is\n"
                                   "re-hashed as it is copied; corrupt ones are refused.",
                                   opts, 1, 1};
    const char *name = push ? "push" : "pull";
    lg_ledger *lg = NULL;
    lg_store *remote = NULL;
    sync_ctx s;
    char **args;
    int nargs, rc, err;

    memset(&s, 0, sizeof s);
    lg_buf_init(&s.path, 0);
    if ((rc = lg_opts_parse(push ? &spec_push : &spec_pull, argc, argv, &nargs, &args)) != 0)
        return rc == 1 ? 0 : 2;
    if ((err = lg_ledger_open(".", &lg)) < 0)
        goto out;
    if (!push && !lg_is_dir(args[0])) {
        err = lg_error_set(LG_ENOTFOUND, "%s: no such directory remote", args[0]);
        goto out;
    }
    /* a dry-run push to a remote that does not exist yet: everything would be copied */
    if (!(push && dry_run && !lg_is_dir(args[0])) && (err = lg_store_open(args[0], push && !dry_run, &remote)) < 0)
        goto out;
    s.dry_run = dry_run;
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
        printf("{\"copied\": %zu, \"present\": %zu, \"corrupt\": %zu, \"bytes\": %llu}\n", s.copied, s.present, s.bad,
               (unsigned long long)s.bytes);
    else
        printf("%s %s: %zu objects %scopied (%llu bytes), %zu already there, %zu corrupt\n", name, args[0], s.copied,
               dry_run ? "would be " : "", (unsigned long long)s.bytes, s.present, s.bad);
    err = s.bad ? LG_ECHECK : 0;
out:
    rc = err == LG_ECHECK ? 1 : (err < 0 ? cli_fail(name, err) : 0);
    lg_buf_release(&s.path);
    lg_store_free(remote);
    lg_ledger_free(lg);
    return rc;
}

int cmd_push(int argc, char **argv) { return cmd_sync(argc, argv, 1); }
int cmd_pull(int argc, char **argv) { return cmd_sync(argc, argv, 0); }

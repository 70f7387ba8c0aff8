/*
 * cmd_gc.c - 'ledger gc': remove leftover temp files and store objects that
 * no run references. Only files older than --min-age are touched, so that
 * the objects of a run still in progress (stored before its commit) survive.
 *
 * The byte count is measured here, on every path the collector names before
 * it removes it (a file, or a whole staging folder), so temp files and
 * leftover folders count as well as store objects, and --dry-run reports
 * what a real run would free.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"

typedef struct {
    int dry_run, json;
    uint64_t bytes;
} gc_out;

static uint64_t tree_bytes; /* nftw has no context pointer */

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        tree_bytes += (uint64_t)st->st_size;
    return 0;
}

static void show(void *ctx, const char *what)
{
    gc_out *o = ctx;
    struct stat sb;
    if (lstat(what, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            tree_bytes = 0;
            nftw(what, add_size, 16, FTW_PHYS);
            o->bytes += tree_bytes;
        } else
            o->bytes += (uint64_t)sb.st_size;
    }
    if (!o->json)
        printf("%s %s\n", o->dry_run ? "would remove" : "removing", what);
}

int cmd_gc(lg_cli *cli, int argc, char **argv)
{
    int dry_run = 0, json = 0;
    double min_age = 3600;
    const lg_opt opts[] = {
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "list what would be removed, remove nothing"},
        {"min-age", 0, LG_OPT_DOUBLE, &min_age, "SECONDS", "only remove files older than this (default 3600)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {dry_run, tmp_files, objects, bytes} as JSON"},
        LG_OPT_TABLE_END};
    gc_out o = {0, 0, 0};
    const lg_cmd_spec spec = {"gc", "ledger gc [--dry-run] [options]",
                              "Remove temp files left by interrupted writes and store objects referenced by no run "
                              "of the ledger branch.",
                              opts, 0, 0, 0};
    lg_ledger *lg = NULL;
    lg_gc_stats st;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (min_age < 0) {
        fprintf(stderr, "ledger gc: --min-age must be >= 0\n");
        return 2;
    }
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    o.dry_run = dry_run;
    o.json = json;
    if ((err = lg_ledger_gc(lg, dry_run, min_age, show, &o, &st)) < 0)
        goto out;
    if (json)
        printf("{\"dry_run\": %s, \"tmp_files\": %zu, \"objects\": %zu, \"bytes\": %llu}\n", dry_run ? "true" : "false",
               st.tmp_files, st.objects, (unsigned long long)o.bytes);
    else
        printf("%s %zu temp file%s and %zu object%s (%llu bytes)\n", dry_run ? "would remove" : "removed", st.tmp_files,
           st.tmp_files == 1 ? "" : "s", st.objects, st.objects == 1 ? "" : "s", (unsigned long long)o.bytes);
out:
    return err < 0 ? cli_fail("gc", err) : 0;
}

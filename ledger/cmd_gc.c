/*
 * cmd_gc.c - 'ledger gc': remove leftover temp files and store objects that
 * no run references. Only files older than --min-age are touched, so that
 * the objects of a run still in progress (stored before its commit) survive.
 *
 * Folders of stopped runs (.ledger/resume/<spec digest>/, kept by 'ledger
 * run' for 'run --resume') are the user's unfinished work, not garbage: gc
 * lists them with their size and removes them only with --resume (older
 * than --min-age, like everything else).
 *
 * The byte count is measured here, on every path the collector names before
 * it removes it (a file, or a whole staging folder), so temp files and
 * leftover folders count as well as store objects, and --dry-run reports
 * what a real run would free.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

static uint64_t folder_bytes(const char *dir)
{
    tree_bytes = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return tree_bytes;
}

static void show(void *ctx, const char *what)
{
    gc_out *o = ctx;
    struct stat sb;
    if (lstat(what, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            o->bytes += folder_bytes(what);
        else
            o->bytes += (uint64_t)sb.st_size;
    }
    if (!o->json)
        printf("%s %s\n", o->dry_run ? "would remove" : "removing", what);
}

/* The stopped runs under <ledger dir>/resume: each is listed (kept), or with
 * remove set and older than min_age, removed (or would be, dry_run). */
static int gc_resume(lg_ledger *lg, int remove, int dry_run, double min_age, gc_out *o, size_t *kept,
                     uint64_t *kept_bytes, size_t *removed)
{
    lg_buf dir = LG_BUF_INIT, sub = LG_BUF_INIT;
    DIR *d;
    struct dirent *e;
    int err = 0;
    *kept = *removed = 0;
    *kept_bytes = 0;
    if ((err = lg_buf_printf(&dir, "%s/resume", lg_ledger_dir(lg))) < 0)
        goto out;
    if (!(d = opendir(dir.ptr)))
        goto out; /* no stopped run was ever kept */
    while ((e = readdir(d))) {
        struct stat sb;
        if (e->d_name[0] == '.')
            continue;
        lg_buf_clear(&sub);
        if ((err = lg_buf_printf(&sub, "%s/%s", dir.ptr, e->d_name)) < 0)
            break;
        if (lstat(sub.ptr, &sb) < 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (remove && difftime(time(NULL), sb.st_mtime) >= min_age) {
            show(o, sub.ptr);
            if (!dry_run) {
                lg_path_remove_tree(sub.ptr);
                if (lstat(sub.ptr, &sb) == 0) { /* never count (or say) removed what is still there */
                    err = lg_error_set(LG_EIO, "%s: cannot remove the stopped run's folder", sub.ptr);
                    break;
                }
            }
            (*removed)++;
        } else {
            uint64_t b = folder_bytes(sub.ptr);
            if (!o->json)
                printf("keeping stopped run %s (%llu bytes)\n", sub.ptr, (unsigned long long)b);
            (*kept)++;
            *kept_bytes += b;
        }
    }
    closedir(d);
out:
    lg_buf_release(&dir);
    lg_buf_release(&sub);
    return err;
}

int cmd_gc(lg_cli *cli, int argc, char **argv)
{
    int dry_run = 0, json = 0, resume = 0;
    double min_age = 3600;
    size_t kept = 0, removed = 0;
    uint64_t kept_bytes = 0;
    const lg_opt opts[] = {
        {"dry-run", 'n', LG_OPT_FLAG, &dry_run, NULL, "list what would be removed, remove nothing"},
        {"min-age", 0, LG_OPT_DOUBLE, &min_age, "SECONDS", "only remove files older than this (default 3600)"},
        {"resume", 0, LG_OPT_FLAG, &resume, NULL,
         "also remove the folders of stopped runs (.ledger/resume/, what 'ledger run --resume' continues)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL,
         "print {dry_run, tmp_files, objects, resume_removed, resume_kept, resume_kept_bytes, bytes} as JSON"},
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
    if ((err = gc_resume(lg, resume, dry_run, min_age, &o, &kept, &kept_bytes, &removed)) < 0)
        goto out;
    if (json) {
        printf("{\"dry_run\": %s, \"tmp_files\": %zu, \"objects\": %zu, \"resume_removed\": %zu, "
               "\"resume_kept\": %zu, \"resume_kept_bytes\": %llu, \"bytes\": %llu}\n",
               dry_run ? "true" : "false", st.tmp_files, st.objects, removed, kept,
               (unsigned long long)kept_bytes, (unsigned long long)o.bytes);
    } else {
        printf("%s %zu temp file%s and %zu object%s", dry_run ? "would remove" : "removed", st.tmp_files,
               st.tmp_files == 1 ? "" : "s", st.objects, st.objects == 1 ? "" : "s");
        if (resume)
            printf(" and %zu stopped run%s", removed, removed == 1 ? "" : "s");
        printf(" (%llu bytes)\n", (unsigned long long)o.bytes);
        if (kept)
            printf("kept %zu stopped run%s (%llu bytes): 'ledger run --resume STUDY.json' continues one, "
                   "'ledger gc --resume' removes them\n",
                   kept, kept == 1 ? "" : "s", (unsigned long long)kept_bytes);
    }
out:
    return err < 0 ? cli_fail("gc", err) : 0;
}

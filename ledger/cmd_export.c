/*
 * cmd_export.c - 'ledger export RUN --format saelens -o DIR': the trained
 * SAEs of a run as SAELens folders (DIR/<cond>/seed-<s>/cfg.json +
 * sae_weights.safetensors, ledger/saelens.h), the hand-off to SAELens and
 * SAEBench.
 *
 * Every selected source object is re-hashed and parsed before the first
 * file is written (a corrupted store exports nothing: exit 1), and every
 * destination is checked before that too (an existing export is kept unless
 * --force). The
 * export is then recorded as a run of kind "export" whose outputs are the
 * exported files and whose "extra.export" names the source run and each
 * source artifact's digest, so a SAELens folder found later can be traced
 * back to the evidence it came from (cfg.json's metadata says the same).
 *
 * --cell is repeatable; opts.c keeps only the last value of an option, so
 * the values are collected from argv before the table parse.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "engine/run.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/saelens.h"
#include "ledger/saelens_transcoder.h"

typedef struct {
    const char *name;   /* output name in the source run */
    const char *sha256; /* its digest */
    char fid[160];      /* file-safe condition id */
    long long seed;
    int selected;
} cell_ref;

/* "cells/<fid>/seed-<s>.safetensors" -> fid, seed; 0 when the name has this form. */
static int parse_cell_name(const char *name, char *fid, size_t n, long long *seed)
{
    const char *p, *slash, *suffix = ".safetensors";
    char num[32];
    size_t len, sl = strlen(suffix);
    long v;
    if (strncmp(name, "cells/", 6) != 0)
        return -1;
    p = name + 6;
    if (!(slash = strchr(p, '/')) || slash == p || (size_t)(slash - p) >= n || strchr(slash + 1, '/'))
        return -1;
    if (strncmp(slash + 1, "seed-", 5) != 0)
        return -1;
    len = strlen(slash + 6);
    if (len <= sl || strcmp(slash + 6 + len - sl, suffix) != 0 || len - sl >= sizeof num)
        return -1;
    memcpy(num, slash + 6, len - sl);
    num[len - sl] = '\0';
    if (lg_parse_long(num, &v) < 0 || v < 0)
        return -1;
    memcpy(fid, p, (size_t)(slash - p));
    fid[slash - p] = '\0';
    *seed = v;
    return 0;
}

/* Does the --cell value "COND[/SEED]" select c? COND is the condition id or its file-safe form. */
static int cell_matches(const char *sel, const cell_ref *c)
{
    char cond[160], fid[160];
    const char *slash = strrchr(sel, '/');
    size_t n = slash ? (size_t)(slash - sel) : strlen(sel);
    long seed;
    if (n >= sizeof cond)
        return 0;
    memcpy(cond, sel, n);
    cond[n] = '\0';
    lg_condition_file_id(cond, fid, sizeof fid);
    if (strcmp(cond, c->fid) != 0 && strcmp(fid, c->fid) != 0)
        return 0;
    if (!slash)
        return 1;
    if (lg_parse_long(slash + 1, &seed) < 0)
        return 0;
    return seed == c->seed;
}

/* Re-hashes the stored object before it is exported. */
static int verify_source(const char *path, const char *want, const char *name)
{
    char got[65];
    int err;
    if ((err = lg_sha256_file(path, got, NULL)) < 0)
        return lg_error_wrap("%s", name);
    if (strcmp(got, want) != 0)
        return lg_error_set(LG_ECHECK, "%s: stored object %.12s does not match its digest (its bytes hash to %.12s); "
                                       "nothing exported (run 'ledger verify')",
                            name, want, got);
    return 0;
}

/* Where -o really points: realpath of its nearest existing ancestor plus the
 * part still to be created. */
static int resolve_dest(const char *outdir, lg_buf *out)
{
    char *copy = lg_strdup(outdir), real[PATH_MAX];
    size_t len;
    struct stat sb;
    int err = 0;
    if (!copy)
        return LG_ENOMEM;
    len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    for (;;) {
        char *slash;
        if (lstat(copy, &sb) == 0) {
            if (!realpath(copy, real))
                err = lg_error_set(LG_EINPUT, "-o %s: cannot resolve %s: %s", outdir, copy, strerror(errno));
            else {
                lg_buf_clear(out);
                err = lg_buf_printf(out, "%s%s", real, outdir + strlen(copy)); /* copy is a prefix of outdir */
            }
            break;
        }
        if (!(slash = strrchr(copy, '/'))) { /* relative, nothing of it exists yet */
            if (!realpath(".", real))
                err = lg_error_set(LG_EINPUT, "-o %s: cannot resolve the current folder", outdir);
            else {
                lg_buf_clear(out);
                err = lg_buf_printf(out, "%s/%s", real, outdir);
            }
            break;
        }
        if (slash == copy) { /* "/x": the root exists */
            lg_buf_clear(out);
            err = lg_buf_puts(out, outdir);
            break;
        }
        *slash = '\0';
    }
    lg_free(copy);
    return err;
}

/* Refuses destinations inside the repository's .git/ or .ledger/ (or any
 * .git folder), and an -o that exists but is not a directory. */
static int check_dest_root(lg_ledger *lg, const char *outdir)
{
    lg_buf res = LG_BUF_INIT;
    char root[PATH_MAX];
    struct stat sb;
    const char *p;
    int err;
    if (lstat(outdir, &sb) == 0 && !S_ISDIR(sb.st_mode) && !(S_ISLNK(sb.st_mode) && lg_is_dir(outdir)))
        return lg_error_set(LG_EINPUT, "-o %s: exists and is not a directory", outdir);
    if ((err = resolve_dest(outdir, &res)) < 0)
        goto out;
    if (!realpath(lg_ledger_root(lg), root))
        snprintf(root, sizeof root, "%s", lg_ledger_root(lg));
    for (p = res.ptr; p && *p; p = strchr(p + 1, '/')) {
        const char *comp = *p == '/' ? p + 1 : p;
        size_t n = strcspn(comp, "/");
        if ((n == 4 && !strncmp(comp, ".git", 4)) || (n == 7 && !strncmp(comp, ".ledger", 7) &&
                                                      !strncmp(res.ptr, root, strlen(root)) &&
                                                      comp == res.ptr + strlen(root) + 1)) {
            err = lg_error_set(LG_EINPUT, "-o %s: resolves into %.*s (%s): export never writes into a .git or .ledger "
                                          "folder",
                               outdir, (int)(comp - res.ptr + n), res.ptr, res.ptr);
            goto out;
        }
    }
out:
    lg_buf_release(&res);
    return err;
}

/* A folder export would create or enter under -o: it must be a real directory
 * (never a symbolic link, which could send the files anywhere) or absent. */
static int check_dest_dir(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    if (S_ISLNK(sb.st_mode))
        return lg_error_set(LG_EINPUT, "%s: is a symbolic link; export never writes through links", path);
    if (!S_ISDIR(sb.st_mode))
        return lg_error_set(LG_EINPUT, "%s: exists and is not a directory", path);
    return 0;
}

int cmd_export(lg_cli *cli, int argc, char **argv)
{
    const char *format = "saelens", *outdir = NULL, *model_name = NULL, *hook_name = NULL;
    int json = 0, force = 0;
    lg_opt_list sels = LG_OPT_LIST_INIT; /* --cell, in order */
    const char *hook_name_out = NULL;
    const lg_opt opts[] = {
        {"cell", 'c', LG_OPT_LIST, &sels, "COND[/SEED]",
         "export only this cell (condition id or its folder name; repeatable)"},
        {"format", 'f', LG_OPT_STRING, &format, "FORMAT", "saelens (the only format, default)"},
        {"output", 'o', LG_OPT_STRING, &outdir, "DIR", "destination folder (required)"},
        {"model-name", 0, LG_OPT_STRING, &model_name, "NAME", "metadata.model_name in cfg.json"},
        {"hook-name", 0, LG_OPT_STRING, &hook_name, "NAME", "metadata.hook_name in cfg.json"},
        {"hook-name-out", 0, LG_OPT_STRING, &hook_name_out, "NAME", "transcoders: hook_name_out (the target's hook) in cfg.json"},
        {"force", 0, LG_OPT_FLAG, &force, NULL, "overwrite an existing export in DIR"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the export run and its folders as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "export", "ledger export RUN [--cell COND/SEED ...] --format saelens -o DIR",
        "Writes the trained SAEs of RUN as SAELens folders DIR/<cond>/seed-<s>/ (cfg.json +\n"
        "sae_weights.safetensors) after re-checking each source object's digest, and records the\n"
        "export as a run of kind \"export\" (its outputs are the exported files).",
        opts, 1, 1, 0};
    int nargs, rc, err = 0, i;
    char **args;
    lg_ledger *lg = NULL;
    cJSON *m = NULL, *extra = NULL, *saes_json = NULL;
    lg_run_info info;
    cell_ref *cells = NULL;
    size_t ncells = 0, nsel_cells = 0, k, nfiles = 0;
    lg_run_file *files = NULL;
    char **paths = NULL, **names = NULL;
    lg_buf dir = LG_BUF_INIT, src = LG_BUF_INIT, tmp = LG_BUF_INIT;
    char run_id[65] = "";
    const cJSON *outs, *o;
    const char *src_run, *study, *data_digest, *status;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN) {
        lg_opt_list_release(&sels);
        return rc;
    }
    if (strcmp(format, "saelens") != 0) {
        fprintf(stderr, "ledger export: --format: '%s' is not supported (saelens)\n", format);
        lg_opt_list_release(&sels);
        return 2;
    }
    if (!outdir || !*outdir) {
        fprintf(stderr, "ledger export: -o DIR is required\n");
        lg_opt_list_release(&sels);
        return 2;
    }
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if ((err = lg_ledger_load_manifest(lg, args[0], &m, &info, NULL)) < 0)
        goto out;
    src_run = info.run_id;
    study = lg_json_str(m, "study");
    status = lg_json_str(m, "status");
    data_digest = lg_json_str(m, "data_digest");
    if (!status || strcmp(status, "ok") != 0) {
        err = lg_error_set(LG_EINPUT, "run %.12s has status '%s': a failed run is not exported", src_run,
                           status ? status : "?");
        goto out;
    }

    /* the run's SAE weights, selected by --cell */
    outs = cJSON_GetObjectItemCaseSensitive(m, "outputs");
    if (!(cells = lg_calloc((size_t)cJSON_GetArraySize(outs) + 1, sizeof(*cells)))) {
        err = LG_ENOMEM;
        goto out;
    }
    cJSON_ArrayForEach(o, outs)
    {
        const char *name = lg_json_str(o, "name"), *sha = lg_json_str(o, "sha256");
        cell_ref *c = &cells[ncells];
        if (!name || !sha || parse_cell_name(name, c->fid, sizeof c->fid, &c->seed) < 0)
            continue;
        c->name = name;
        c->sha256 = sha;
        c->selected = sels.n == 0;
        ncells++;
    }
    for (i = 0; i < sels.n; i++) {
        int hit = 0;
        for (k = 0; k < ncells; k++)
            if (cell_matches(sels.v[i], &cells[k]))
                hit = cells[k].selected = 1;
        if (!hit) {
            err = lg_error_set(LG_EINPUT, "--cell %s: run %.12s has no such trained cell", sels.v[i], src_run);
            goto out;
        }
    }
    for (k = 0; k < ncells; k++)
        nsel_cells += cells[k].selected;
    if (nsel_cells == 0) {
        err = lg_error_set(LG_EINPUT, "run %.12s has no SAE weights to export (cells/<cond>/seed-<s>.safetensors)",
                           src_run);
        goto out;
    }

    /* destinations: refuse to overwrite, to write through a link, or into .git/.ledger,
     * before anything is written */
    if ((err = check_dest_root(lg, outdir)) < 0)
        goto out;
    for (k = 0; k < ncells; k++) {
        const char *fn[2] = {LG_SAELENS_CFG, LG_SAELENS_WEIGHTS};
        int j;
        if (!cells[k].selected)
            continue;
        lg_buf_clear(&tmp);
        if ((err = lg_buf_printf(&tmp, "%s/%s", outdir, cells[k].fid)) < 0 || (err = check_dest_dir(tmp.ptr)) < 0)
            goto out;
        if ((err = lg_buf_printf(&tmp, "/seed-%lld", cells[k].seed)) < 0 || (err = check_dest_dir(tmp.ptr)) < 0)
            goto out;
        for (j = 0; j < 2; j++) {
            struct stat sb;
            lg_buf_clear(&tmp);
            if ((err = lg_buf_printf(&tmp, "%s/%s/seed-%lld/%s", outdir, cells[k].fid, cells[k].seed, fn[j])) < 0)
                goto out;
            if (lstat(tmp.ptr, &sb) == 0 && (S_ISLNK(sb.st_mode) || !S_ISREG(sb.st_mode))) {
                err = lg_error_set(LG_EINPUT, "%s: is not a regular file (a link or a folder); export never writes "
                                              "through links",
                                   tmp.ptr);
                goto out;
            }
            if (!force && lg_path_exists(tmp.ptr)) {
                err = lg_error_set(LG_EINPUT, "%s: exists already (use --force to overwrite)", tmp.ptr);
                goto out;
            }
        }
    }

    /* sources: every selected object re-hashed and parsed before the first file is
     * written, so that a corrupted second cell cannot leave the first one exported */
    for (k = 0; k < ncells; k++) {
        lg_cell_sae cell;
        if (!cells[k].selected)
            continue;
        if ((err = lg_ledger_artifact_path(lg, cells[k].sha256, &src)) < 0) {
            lg_error_wrap("%s", cells[k].name);
            goto out;
        }
        if ((err = verify_source(src.ptr, cells[k].sha256, cells[k].name)) < 0)
            goto out;
        if ((err = lg_cell_sae_read(src.ptr, cells[k].name, &cell)) < 0) {
            if (err == LG_EINPUT)
                err = LG_ECHECK; /* a stored object that passed its digest but is not a cell: a broken run */
            goto out;
        }
        err = cell.transcoder ? lg_saelens_transcoder_check(cell.cfg.arch, cells[k].name) : 0;
        if (cell.cfg.arch == LG_ARCH_ROUTESAE) { /* before anything is written */
            err = lg_error_set(LG_EINPUT, "%s: %s", cells[k].name, LG_SAELENS_ROUTESAE_REFUSAL);
            lg_cell_sae_release(&cell);
            goto out;
        }
        lg_cell_sae_release(&cell);
        if (err < 0)
            goto out;
    }

    if (!(files = lg_calloc(2 * nsel_cells, sizeof(*files))) || !(paths = lg_calloc(2 * nsel_cells, sizeof(char *))) ||
        !(names = lg_calloc(2 * nsel_cells, sizeof(char *))) || !(extra = cJSON_CreateObject())) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    {
        cJSON *ex = cJSON_AddObjectToObject(extra, "export");
        if (!ex || !cJSON_AddStringToObject(ex, "format", "saelens") || !cJSON_AddStringToObject(ex, "source_run", src_run) ||
            !cJSON_AddNumberToObject(ex, "source_seq", (double)info.seq) ||
            !(saes_json = cJSON_AddArrayToObject(ex, "saes"))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (k = 0; k < ncells; k++) {
        lg_cell_sae cell;
        cJSON *meta = NULL, *sj;
        const char *fn[2] = {LG_SAELENS_CFG, LG_SAELENS_WEIGHTS};
        int j;
        if (!cells[k].selected)
            continue;
        if ((err = lg_ledger_artifact_path(lg, cells[k].sha256, &src)) < 0) {
            lg_error_wrap("%s", cells[k].name);
            goto out;
        }
        if ((err = lg_cell_sae_read(src.ptr, cells[k].name, &cell)) < 0) { /* checked above */
            if (err == LG_EINPUT)
                err = LG_ECHECK;
            goto out;
        }
        lg_buf_clear(&dir);
        if ((err = lg_buf_printf(&dir, "%s/%s/seed-%lld", outdir, cells[k].fid, cells[k].seed)) < 0 ||
            (err = lg_mkdir_p(dir.ptr, 0755)) < 0) {
            lg_cell_sae_release(&cell);
            goto out;
        }
        meta = cJSON_CreateObject();
        if (!meta || !cJSON_AddStringToObject(meta, "ledger_source_run", src_run) ||
            !cJSON_AddNumberToObject(meta, "ledger_source_seq", (double)info.seq) ||
            !cJSON_AddStringToObject(meta, "study", cell.study[0] ? cell.study : (study ? study : "")) ||
            !cJSON_AddStringToObject(meta, "condition", cell.condition[0] ? cell.condition : cells[k].fid) ||
            !cJSON_AddNumberToObject(meta, "seed", (double)cells[k].seed) ||
            !cJSON_AddStringToObject(meta, "source_artifact", cells[k].name) ||
            !cJSON_AddStringToObject(meta, "source_sha256", cells[k].sha256) ||
            (data_digest && !cJSON_AddStringToObject(meta, "data_sha256", data_digest)) ||
            (cell.engine_version[0] && !cJSON_AddStringToObject(meta, "engine_version", cell.engine_version)) ||
            (model_name && !cJSON_AddStringToObject(meta, "model_name", model_name)) ||
            (hook_name && !cJSON_AddStringToObject(meta, "hook_name", hook_name)) ||
            (hook_name_out && cell.transcoder && !cJSON_AddStringToObject(meta, "hook_name_out", hook_name_out))) {
            cJSON_Delete(meta);
            lg_cell_sae_release(&cell);
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        err = cell.transcoder ? lg_saelens_write_transcoder(dir.ptr, &cell.cfg, &cell.w, meta)
                              : lg_saelens_write(dir.ptr, &cell.cfg, &cell.w, meta);
        cJSON_Delete(meta);
        sj = cJSON_CreateObject();
        if (err >= 0 && (!sj || !cJSON_AddItemToArray(saes_json, sj) ||
                         !cJSON_AddStringToObject(sj, "condition", cell.condition[0] ? cell.condition : cells[k].fid) ||
                         !cJSON_AddNumberToObject(sj, "seed", (double)cells[k].seed) ||
                         !cJSON_AddStringToObject(sj, "architecture", cell.transcoder ? lg_saelens_transcoder_arch(cell.cfg.arch)
                                                                                     : lg_saelens_arch_name(cell.cfg.arch, NULL)) ||
                         !cJSON_AddStringToObject(sj, "source", cells[k].name) ||
                         !cJSON_AddStringToObject(sj, "source_sha256", cells[k].sha256)))
            err = lg_error_set(LG_ENOMEM, "out of memory");
        lg_cell_sae_release(&cell);
        if (err < 0)
            goto out;
        for (j = 0; j < 2; j++) {
            lg_buf_clear(&tmp);
            if ((err = lg_buf_printf(&tmp, "%s/seed-%lld/%s", cells[k].fid, cells[k].seed, fn[j])) < 0 ||
                !(names[nfiles] = lg_strdup(tmp.ptr)) || (err = lg_path_join(&tmp, dir.ptr, fn[j])) < 0 ||
                !(paths[nfiles] = lg_strdup(tmp.ptr))) {
                err = err < 0 ? err : LG_ENOMEM;
                goto out;
            }
            files[nfiles].name = names[nfiles];
            files[nfiles].path = paths[nfiles];
            files[nfiles].media_type = j == 0 ? "application/json" : "application/vnd.safetensors";
            nfiles++;
        }
    }

    {
        lg_run_input in;
        memset(&in, 0, sizeof in);
        in.kind = "export";
        in.study = study;
        in.data_digest = data_digest;
        in.extra = extra;
        in.files = files;
        in.nfiles = nfiles;
        in.status = "ok";
        if ((err = lg_ledger_record(lg, &in, run_id)) < 0)
            goto out;
    }
    if (json) {
        cJSON *r = cJSON_CreateObject(), *list = NULL;
        int built = r && cJSON_AddStringToObject(r, "run_id", run_id) && cJSON_AddStringToObject(r, "kind", "export") &&
                    cJSON_AddStringToObject(r, "source_run", src_run) &&
                    cJSON_AddStringToObject(r, "format", "saelens") && cJSON_AddStringToObject(r, "output", outdir) &&
                    (list = cJSON_AddArrayToObject(r, "saes"));
        for (k = 0; built && k + 1 < nfiles; k += 2) {
            char d[512];
            const char *slash = strrchr(names[k], '/');
            snprintf(d, sizeof d, "%s/%.*s", outdir, (int)(slash - names[k]), names[k]);
            cJSON_AddItemToArray(list, cJSON_CreateString(d));
        }
        err = cli_print_json(r, built);
    } else
        printf("export %.12s recorded: %zu SAE%s of run %.12s in SAELens format under %s\n", run_id, nsel_cells,
               nsel_cells == 1 ? "" : "s", src_run, outdir);
out:
    for (k = 0; k < nfiles; k++) {
        lg_free(paths[k]);
        lg_free(names[k]);
    }
    if (err < 0 && paths && names && nfiles < 2 * nsel_cells) { /* partly built name list: free the stray one */
        lg_free(names[nfiles]);
        lg_free(paths[nfiles]);
    }
    lg_free(paths);
    lg_free(names);
    lg_free(files);
    lg_free(cells);
    lg_opt_list_release(&sels);
    lg_buf_release(&dir);
    lg_buf_release(&src);
    lg_buf_release(&tmp);
    cJSON_Delete(extra);
    cJSON_Delete(m);
    return err < 0 ? cli_fail("export", err) : 0;
}

/*
 * cmd_table.c - 'ledger table RUN': the run's results as one tidy table, one
 * row per cell (default), pair or seed.
 *
 * Columns: condition, the condition's parameters (union over conditions, in
 * order of first appearance), seed (pairs: seed_a and seed_b; cells also
 * status), then every metric of that unit (union, in order of first
 * appearance). Rows are sorted by the parameter columns in column order,
 * numbers (and numeric strings) by value so that k=4 comes before k=16, then
 * by seed. A parameter that shares its name with a fixed or metric column is
 * written as "param.<name>". Values: numbers in the shortest form that reads
 * back exactly, absent/null empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/tabular.h"

typedef struct {
    const cJSON *cond; /* the condition object */
    const cJSON *unit; /* the cell / pair / seed object */
} row;

typedef struct {
    const char **names;
    size_t n, cap;
} names;

static int names_add(names *s, const char *name)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return 0;
    if (lg_grow(&s->names, &s->cap, s->n + 1, sizeof *s->names, 16) < 0)
        return LG_ENOMEM;
    s->names[s->n++] = name;
    return 0;
}

static int names_has(const names *s, const char *name)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

/* for qsort: the parameter columns are a file-level pointer (qsort has no context) */
static const names *sort_params;

static const cJSON *param(const row *r, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->cond, "params"), name);
}

static int row_cmp(const void *va, const void *vb)
{
    const row *a = va, *b = vb;
    const char *keys[] = {"seed", "seed_a", "seed_b"};
    size_t i;
    int c;
    for (i = 0; i < sort_params->n; i++)
        if ((c = lg_value_cmp(param(a, sort_params->names[i]), param(b, sort_params->names[i]))) != 0)
            return c;
    if ((c = strcmp(lg_json_str(a->cond, "id") ? lg_json_str(a->cond, "id") : "",
                    lg_json_str(b->cond, "id") ? lg_json_str(b->cond, "id") : "")) != 0)
        return c;
    for (i = 0; i < 3; i++)
        if ((c = lg_value_cmp(cJSON_GetObjectItemCaseSensitive(a->unit, keys[i]),
                              cJSON_GetObjectItemCaseSensitive(b->unit, keys[i]))) != 0)
            return c;
    return 0;
}

int cmd_table(lg_cli *cli, int argc, char **argv)
{
    const char *unit = "cell";
    int csv = 0, json = 0;
    const lg_opt opts[] = {
        {"unit", 'u', LG_OPT_STRING, &unit, "UNIT", "cell (default), pair or seed: what one row is"},
        {"csv", 0, LG_OPT_FLAG, &csv, NULL, "CSV with a header row (RFC 4180 quoting)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "a JSON array of row objects (missing values null)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"table", "ledger table [--unit cell|pair|seed] [--csv|--json] RUN",
                              "Print a run's results as one table: a row per cell (condition x seed), per seed pair or\n"
                              "per seed; columns condition, the condition's parameters, the seed(s), and the metrics.\n"
                              "Rows sort by the parameters (numbers by value: k=4 before k=16), then seed. Default\n"
                              "output is tab-separated with a header line.",
                              opts, 1, 1, 0};
    const char *arr_key, *fixed[4];
    size_t nfixed = 0, nrows = 0, i, j, cap = 0;
    lg_ledger *lg = NULL;
    cJSON *m = NULL, *out_json = NULL;
    const cJSON *c, *u, *x;
    names params = {0}, metrics = {0};
    row *rows = NULL;
    char **args, buf[4096];
    int nargs, rc, err = 0;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (csv && json) {
        fprintf(stderr, "ledger table: --csv and --json exclude each other\n");
        return 2;
    }
    fixed[nfixed++] = "condition";
    if (strcmp(unit, "cell") == 0) {
        arr_key = "cells";
        fixed[nfixed++] = "seed";
        fixed[nfixed++] = "status";
    } else if (strcmp(unit, "pair") == 0) {
        arr_key = "pairs";
        fixed[nfixed++] = "seed_a";
        fixed[nfixed++] = "seed_b";
    } else if (strcmp(unit, "seed") == 0) {
        arr_key = "seeds";
        fixed[nfixed++] = "seed";
    } else {
        fprintf(stderr, "ledger table: --unit: '%s' is not cell, pair or seed\n", unit);
        return 2;
    }
    if ((err = cli_ledger(cli, &lg)) < 0 || (err = lg_ledger_load_manifest(lg, args[0], &m, NULL, NULL)) < 0)
        goto out;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions")) {
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(c, "params"))
            if ((err = names_add(&params, x->string)) < 0)
                goto out;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(c, arr_key)) {
            if (nrows == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                row *p = lg_realloc(rows, ncap * sizeof(*p));
                if (!p) {
                    err = LG_ENOMEM;
                    goto out;
                }
                rows = p;
                cap = ncap;
            }
            rows[nrows].cond = c;
            rows[nrows++].unit = u;
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(u, "metrics"))
                if ((err = names_add(&metrics, x->string)) < 0)
                    goto out;
        }
    }
    sort_params = &params;
    if (nrows > 1)
        qsort(rows, nrows, sizeof(*rows), row_cmp);

    if (json && !(out_json = cJSON_CreateArray())) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    /* header */
    if (!json) {
        const char *sep = csv ? "," : "\t";
        for (i = 0; i < nfixed; i++)
            printf("%s%s", i ? sep : "", fixed[i]);
        for (i = 0; i < params.n; i++) {
            int clash = names_has(&metrics, params.names[i]);
            for (j = 0; j < nfixed; j++)
                clash |= strcmp(fixed[j], params.names[i]) == 0;
            printf("%s", sep);
            snprintf(buf, sizeof buf, "%s%s", clash ? "param." : "", params.names[i]);
            if (csv)
                lg_csv_field(stdout, buf);
            else
                fputs(buf, stdout);
        }
        for (i = 0; i < metrics.n; i++) {
            printf("%s", sep);
            if (csv)
                lg_csv_field(stdout, metrics.names[i]);
            else
                fputs(metrics.names[i], stdout);
        }
        putchar('\n');
    }
    for (i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        const cJSON *cells[512];
        const char *colname[512];
        size_t ncol = 0, k;
        cJSON *o = NULL;
        if (nfixed + params.n + metrics.n > 512) {
            err = lg_error_set(LG_EINPUT, "table: more than 512 columns");
            goto out;
        }
        colname[ncol] = "condition";
        cells[ncol++] = cJSON_GetObjectItemCaseSensitive(r->cond, "id");
        for (j = 1; j < nfixed; j++) {
            colname[ncol] = fixed[j];
            cells[ncol++] = cJSON_GetObjectItemCaseSensitive(r->unit, fixed[j]);
        }
        for (j = 0; j < params.n; j++) {
            colname[ncol] = params.names[j];
            cells[ncol++] = param(r, params.names[j]);
        }
        for (j = 0; j < metrics.n; j++) {
            colname[ncol] = metrics.names[j];
            cells[ncol++] = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r->unit, "metrics"),
                                                             metrics.names[j]);
        }
        if (json) {
            if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(out_json, o)) {
                cJSON_Delete(o);
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            for (k = 0; k < ncol; k++) {
                char key[300];
                int clash = 0;
                if (k >= nfixed && k < nfixed + params.n) {
                    clash = names_has(&metrics, colname[k]);
                    for (j = 0; j < nfixed; j++)
                        clash |= strcmp(fixed[j], colname[k]) == 0;
                }
                snprintf(key, sizeof key, "%s%s", clash ? "param." : "", colname[k]);
                if (!cJSON_AddItemToObject(o, key, cells[k] ? cJSON_Duplicate(cells[k], 1) : cJSON_CreateNull())) {
                    err = lg_error_set(LG_ENOMEM, "out of memory");
                    goto out;
                }
            }
            continue;
        }
        for (k = 0; k < ncol; k++) {
            if (k)
                putchar(csv ? ',' : '\t');
            lg_json_cell(cells[k], buf, sizeof buf);
            if (csv)
                lg_csv_field(stdout, buf);
            else {
                char *p;
                for (p = buf; *p; p++)
                    if (*p == '\t' || *p == '\n' || *p == '\r')
                        *p = ' ';
                fputs(buf, stdout);
            }
        }
        putchar('\n');
    }
    if (json) {
        char *text = cJSON_Print(out_json);
        if (!text) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", text);
        cJSON_free(text);
    }
out:
    cJSON_Delete(out_json);
    lg_free(rows);
    lg_free((void *)params.names);
    lg_free((void *)metrics.names);
    cJSON_Delete(m);
    return err < 0 ? cli_fail("table", err) : 0;
}

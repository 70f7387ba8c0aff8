/*
 * cmd_diff.c - 'ledger diff RUN_A RUN_B': what differs between two runs.
 *
 * Manifests are one long canonical line, so a textual diff of them says
 * little. This compares them field by field instead:
 *   - the identity fields (study, digests, engine, backend, code, ...);
 *   - the embedded study specs, flattened to dotted paths (arrays as
 *     path[i]) and compared key by key; values print as canonical JSON;
 *   - the results: conditions matched by id, and for each unit (cell, pair,
 *     seed) and metric the mean over that unit in A and in B and B - A.
 *     Conditions present in only one run are listed.
 * Read-only; the exit code is 0 whether or not the runs differ.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"

static const char *const id_fields[] = {"kind",          "study",          "study_path", "status",  "spec_digest",
                                        "data_digest",   "engine_version", "ledger_version", "backend", "device",
                                        "host",          "code_commit",    "code_dirty", "code_diff_sha256"};

static const char *const units[][2] = {{"cells", "cell"}, {"pairs", "pair"}, {"seeds", "seed"}};

/* canonical JSON of v into a new string (lg_free), or NULL */
static char *canon(const cJSON *v)
{
    lg_buf b = LG_BUF_INIT;
    if (!v || lg_json_canonical(v, &b) < 0) {
        lg_buf_release(&b);
        return NULL;
    }
    return lg_buf_detach(&b);
}

/* ---- flattening a spec to (path, value) leaves ---------------------------------- */

typedef struct {
    char **path;
    const cJSON **val;
    size_t n, cap;
} leaves;

static int leaves_add(leaves *l, const char *path, const cJSON *v)
{
    if (l->n == l->cap) {
        size_t cap = lg_grow_cap(l->cap, l->n + 1, 64);
        if (lg_resize(&l->path, cap, sizeof *l->path) < 0 || lg_resize(&l->val, cap, sizeof *l->val) < 0)
            return LG_ENOMEM;
        l->cap = cap;
    }
    if (!(l->path[l->n] = lg_strdup(path)))
        return LG_ENOMEM;
    l->val[l->n++] = v;
    return 0;
}

static int flatten(leaves *l, const cJSON *v, lg_buf *path)
{
    size_t keep = path->len;
    const cJSON *c;
    int i = 0, err = 0;
    if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child) {
        cJSON_ArrayForEach(c, v) {
            if (cJSON_IsObject(v))
                err = lg_buf_printf(path, "%s%s", keep ? "." : "", c->string);
            else
                err = lg_buf_printf(path, "[%d]", i);
            if (err < 0 || (err = flatten(l, c, path)) < 0)
                return err;
            path->len = keep;
            path->ptr[keep] = '\0';
            i++;
        }
        return 0;
    }
    return leaves_add(l, keep ? path->ptr : "(spec)", v);
}

static void leaves_release(leaves *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        lg_free(l->path[i]);
    lg_free(l->path);
    lg_free((void *)l->val);
}

static const cJSON *leaves_find(const leaves *l, const char *path)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->path[i], path) == 0)
            return l->val[i];
    return NULL;
}

/* ---- metric means --------------------------------------------------------------- */

typedef struct {
    int n;
    double mean;
} mstat;

static mstat metric_mean(const cJSON *arr, const char *metric)
{
    const cJSON *u;
    mstat s = {0, NAN};
    double sum = 0;
    cJSON_ArrayForEach(u, arr) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(u, "metrics"), metric);
        if (cJSON_IsNumber(v)) {
            s.n++;
            sum += v->valuedouble;
        }
    }
    if (s.n)
        s.mean = sum / s.n;
    return s;
}

static const cJSON *find_cond(const cJSON *conds, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, conds) {
        const char *cid = lg_json_str(c, "id");
        if (cid && strcmp(cid, id) == 0)
            return c;
    }
    return NULL;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* Appends {unit, metric, a_n, a_mean, b_n, b_mean, delta} for every metric of
 * condition ca / cb (union of names, in order of first appearance in a then b). */
static int cond_metrics(const cJSON *ca, const cJSON *cb, cJSON *out)
{
    const char *names[256];
    size_t k, nn, i;
    for (k = 0; k < 3; k++) {
        const cJSON *aa = cJSON_GetObjectItemCaseSensitive(ca, units[k][0]);
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cb, units[k][0]);
        const cJSON *runs[2] = {aa, ab}, *u, *m;
        int r;
        nn = 0;
        for (r = 0; r < 2; r++)
            cJSON_ArrayForEach(u, runs[r]) {
                cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(u, "metrics")) {
                    for (i = 0; i < nn && strcmp(names[i], m->string) != 0; i++)
                        ;
                    if (i == nn && nn < sizeof(names) / sizeof(names[0]))
                        names[nn++] = m->string;
                }
            }
        for (i = 0; i < nn; i++) {
            mstat sa = metric_mean(aa, names[i]), sb = metric_mean(ab, names[i]);
            cJSON *o;
            if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(out, o) ||
                !cJSON_AddStringToObject(o, "unit", units[k][1]) || !cJSON_AddStringToObject(o, "metric", names[i]) ||
                !cJSON_AddNumberToObject(o, "a_n", sa.n) || !cJSON_AddItemToObject(o, "a_mean", num_or_null(sa.mean)) ||
                !cJSON_AddNumberToObject(o, "b_n", sb.n) || !cJSON_AddItemToObject(o, "b_mean", num_or_null(sb.mean)) ||
                !cJSON_AddItemToObject(o, "delta", num_or_null(sb.mean - sa.mean)))
                return lg_error_set(LG_ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* ---- the whole diff as JSON ----------------------------------------------------- */

static cJSON *run_ref(const lg_run_info *ri, const cJSON *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "run_id", ri->run_id) || !cJSON_AddNumberToObject(o, "seq", (double)ri->seq) ||
        !cJSON_AddStringToObject(o, "study", lg_json_str(m, "study") ? lg_json_str(m, "study") : "") ||
        !cJSON_AddStringToObject(o, "created", lg_json_str(m, "created") ? lg_json_str(m, "created") : "")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int add_change(cJSON *arr, const char *keyname, const char *key, const cJSON *a, const cJSON *b)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o) || !cJSON_AddStringToObject(o, keyname, key) ||
        !cJSON_AddStringToObject(o, "change", !a ? "added" : !b ? "removed" : "changed") ||
        !cJSON_AddItemToObject(o, "a", a ? cJSON_Duplicate(a, 1) : cJSON_CreateNull()) ||
        !cJSON_AddItemToObject(o, "b", b ? cJSON_Duplicate(b, 1) : cJSON_CreateNull()))
        return lg_error_set(LG_ENOMEM, "out of memory");
    return 0;
}

static int same_json(const cJSON *a, const cJSON *b)
{
    char *ca, *cb;
    int same;
    if (!a || !b)
        return !a && !b;
    ca = canon(a);
    cb = canon(b);
    same = ca && cb && strcmp(ca, cb) == 0;
    lg_free(ca);
    lg_free(cb);
    return same;
}

static int build_diff(const lg_run_info *ia, const cJSON *ma, const lg_run_info *ib, const cJSON *mb, cJSON **out)
{
    cJSON *d = cJSON_CreateObject(), *fields, *spec, *conds, *only_a, *only_b;
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ma, "results"), "conditions");
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mb, "results"), "conditions");
    const cJSON *c;
    leaves la = {0}, lb = {0};
    lg_buf path = LG_BUF_INIT;
    size_t i;
    int err = 0;

    *out = NULL;
    if (!d || !cJSON_AddItemToObject(d, "a", run_ref(ia, ma)) || !cJSON_AddItemToObject(d, "b", run_ref(ib, mb)) ||
        !(fields = cJSON_AddArrayToObject(d, "fields")) || !(spec = cJSON_AddArrayToObject(d, "spec")) ||
        !(conds = cJSON_AddArrayToObject(d, "conditions")) || !(only_a = cJSON_AddArrayToObject(d, "only_in_a")) ||
        !(only_b = cJSON_AddArrayToObject(d, "only_in_b"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < sizeof(id_fields) / sizeof(id_fields[0]); i++) {
        const cJSON *va = cJSON_GetObjectItemCaseSensitive(ma, id_fields[i]);
        const cJSON *vb = cJSON_GetObjectItemCaseSensitive(mb, id_fields[i]);
        if (!same_json(va, vb) && (err = add_change(fields, "field", id_fields[i], va, vb)) < 0)
            goto out;
    }
    if ((err = lg_buf_puts(&path, "")) < 0 || (err = flatten(&la, cJSON_GetObjectItemCaseSensitive(ma, "spec"), &path)) < 0)
        goto out;
    lg_buf_clear(&path);
    if ((err = lg_buf_puts(&path, "")) < 0 || (err = flatten(&lb, cJSON_GetObjectItemCaseSensitive(mb, "spec"), &path)) < 0)
        goto out;
    for (i = 0; i < la.n; i++) {
        const cJSON *vb = leaves_find(&lb, la.path[i]);
        if (!same_json(la.val[i], vb) && (err = add_change(spec, "path", la.path[i], la.val[i], vb)) < 0)
            goto out;
    }
    for (i = 0; i < lb.n; i++)
        if (!leaves_find(&la, lb.path[i]) && (err = add_change(spec, "path", lb.path[i], NULL, lb.val[i])) < 0)
            goto out;
    cJSON_ArrayForEach(c, ca) {
        const char *id = lg_json_str(c, "id");
        const cJSON *other = id ? find_cond(cb, id) : NULL;
        cJSON *o, *metrics;
        if (!id)
            continue;
        if (!other) {
            if (!cJSON_AddItemToArray(only_a, cJSON_CreateString(id))) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            continue;
        }
        if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(conds, o) || !cJSON_AddStringToObject(o, "id", id) ||
            !(metrics = cJSON_AddArrayToObject(o, "metrics"))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        if ((err = cond_metrics(c, other, metrics)) < 0)
            goto out;
    }
    cJSON_ArrayForEach(c, cb) {
        const char *id = lg_json_str(c, "id");
        if (id && !find_cond(ca, id) && !cJSON_AddItemToArray(only_b, cJSON_CreateString(id))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
    *out = d;
    d = NULL;
out:
    leaves_release(&la);
    leaves_release(&lb);
    lg_buf_release(&path);
    cJSON_Delete(d);
    return err;
}

/* ---- printing ------------------------------------------------------------------- */

static void print_val(const cJSON *v)
{
    char *s = v ? canon(v) : NULL;
    fputs(s ? s : "(absent)", stdout);
    lg_free(s);
}

static void print_changes(const cJSON *arr, const char *keyname)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        const char *ch = lg_json_str(o, "change");
        printf("  %c %s: ", ch[0] == 'a' ? '+' : ch[0] == 'r' ? '-' : '~', lg_json_str(o, keyname));
        if (ch[0] == 'c') {
            print_val(cJSON_GetObjectItemCaseSensitive(o, "a"));
            fputs(" -> ", stdout);
            print_val(cJSON_GetObjectItemCaseSensitive(o, "b"));
        } else
            print_val(cJSON_GetObjectItemCaseSensitive(o, ch[0] == 'a' ? "b" : "a"));
        putchar('\n');
    }
}

static void print_num(const cJSON *v, int sign)
{
    if (cJSON_IsNumber(v))
        printf(sign ? " %+12.6g" : " %12.6g", v->valuedouble);
    else
        printf(" %12s", "-");
}

static void print_text(const cJSON *d)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "a"), *b = cJSON_GetObjectItemCaseSensitive(d, "b");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(d, "fields"), *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(d, "conditions"), *c, *m;
    const cJSON *only_a = cJSON_GetObjectItemCaseSensitive(d, "only_in_a");
    const cJSON *only_b = cJSON_GetObjectItemCaseSensitive(d, "only_in_b");
    printf("a: run %.12s (@%.0f, %s, %s)\n", lg_json_str(a, "run_id"),
           cJSON_GetObjectItemCaseSensitive(a, "seq")->valuedouble, lg_json_str(a, "study"), lg_json_str(a, "created"));
    printf("b: run %.12s (@%.0f, %s, %s)\n", lg_json_str(b, "run_id"),
           cJSON_GetObjectItemCaseSensitive(b, "seq")->valuedouble, lg_json_str(b, "study"), lg_json_str(b, "created"));
    printf("\nrecorded fields (%d differ):\n", cJSON_GetArraySize(fields));
    print_changes(fields, "field");
    printf("\nspec (%d key%s differ):\n", cJSON_GetArraySize(spec), cJSON_GetArraySize(spec) == 1 ? "" : "s");
    print_changes(spec, "path");
    printf("\nmetrics (mean per unit; delta = b - a):\n");
    cJSON_ArrayForEach(c, conds) {
        printf("  %s\n", lg_json_str(c, "id"));
        printf("    %-5s %-20s %12s %12s %13s %9s\n", "unit", "metric", "a", "b", "delta", "n a/b");
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "metrics")) {
            printf("    %-5s %-20s", lg_json_str(m, "unit"), lg_json_str(m, "metric"));
            print_num(cJSON_GetObjectItemCaseSensitive(m, "a_mean"), 0);
            print_num(cJSON_GetObjectItemCaseSensitive(m, "b_mean"), 0);
            print_num(cJSON_GetObjectItemCaseSensitive(m, "delta"), 1);
            printf(" %4.0f/%-4.0f\n", cJSON_GetObjectItemCaseSensitive(m, "a_n")->valuedouble,
                   cJSON_GetObjectItemCaseSensitive(m, "b_n")->valuedouble);
        }
    }
    if (!cJSON_GetArraySize(conds))
        printf("  (no condition in both runs)\n");
    cJSON_ArrayForEach(c, only_a)
        printf("  only in a: %s\n", c->valuestring);
    cJSON_ArrayForEach(c, only_b)
        printf("  only in b: %s\n", c->valuestring);
}

int cmd_diff(lg_cli *cli, int argc, char **argv)
{
    int json = 0;
    const lg_opt opts[] = {{"json", 0, LG_OPT_FLAG, &json, NULL,
                            "print {a, b, fields, spec, conditions, only_in_a, only_in_b} as JSON"},
                           LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"diff", "ledger diff [--json] RUN_A RUN_B",
                              "Compare two runs (ids, unique prefixes or @SEQ): the recorded fields that differ\n"
                              "(digests of spec, data and code, engine, backend, ...), the embedded study specs key by\n"
                              "key (dotted paths, arrays as [i]), and per condition (matched by id) the mean of every\n"
                              "metric over cells, pairs and seeds in each run with the delta b - a. Conditions in only\n"
                              "one run are listed. Exit 0 whether or not they differ.",
                              opts, 2, 2, 0};
    lg_ledger *lg = NULL;
    lg_run_info ia, ib;
    cJSON *ma = NULL, *mb = NULL, *d = NULL;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if ((err = cli_ledger(cli, &lg)) < 0 || (err = lg_ledger_load_manifest(lg, args[0], &ma, &ia, NULL)) < 0 ||
        (err = lg_ledger_load_manifest(lg, args[1], &mb, &ib, NULL)) < 0 || (err = build_diff(&ia, ma, &ib, mb, &d)) < 0)
        goto out;
    if (json) {
        char *text = cJSON_Print(d);
        if (!text) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", text);
        cJSON_free(text);
    } else
        print_text(d);
out:
    cJSON_Delete(d);
    cJSON_Delete(ma);
    cJSON_Delete(mb);
    return err < 0 ? cli_fail("diff", err) : 0;
}

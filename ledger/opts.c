/*
 * opts.c - option parsing for the CLI (see opts.h). Accepts --name, --name=value,
 * --name value, -x, -x value and "--" to end options. The return value is the
 * exit code (or LG_OPTS_RUN): no command translates it.
 */
#include "ledger/opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

void lg_opts_help(const lg_cmd_spec *spec, FILE *out)
{
    const lg_opt *o;
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", spec->usage, spec->summary);
    for (o = spec->opts; o && o->kind != LG_OPT_END; o++) {
        char left[96];
        int n = 0;
        if (o->short_name)
            n = snprintf(left, sizeof(left), "-%c, ", o->short_name);
        else
            n = snprintf(left, sizeof(left), "    ");
        snprintf(left + n, sizeof(left) - n, "--%s%s%s", o->name, o->kind == LG_OPT_FLAG ? "" : " ",
                 o->kind == LG_OPT_FLAG ? "" : (o->argname ? o->argname : "VALUE"));
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

static const lg_opt *find_long(const lg_opt *opts, const char *name, size_t len)
{
    for (; opts && opts->kind != LG_OPT_END; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

static const lg_opt *find_short(const lg_opt *opts, char c)
{
    for (; opts && opts->kind != LG_OPT_END; opts++)
        if (opts->short_name == c)
            return opts;
    return NULL;
}

static int set_value(const lg_cmd_spec *spec, const lg_opt *o, const char *val)
{
    switch (o->kind) {
    case LG_OPT_FLAG:
        *(int *)o->value = 1;
        return 0;
    case LG_OPT_STRING:
        *(const char **)o->value = val;
        return 0;
    case LG_OPT_LIST: {
        lg_opt_list *l = o->value;
        const char **v = lg_realloc(l->v, ((size_t)l->n + 1) * sizeof(*v));
        if (!v) {
            fprintf(stderr, "ledger %s: out of memory\n", spec->name);
            return 3;
        }
        l->v = v;
        l->v[l->n++] = val;
        return 0;
    }
    case LG_OPT_INT: {
        long v;
        if (lg_parse_long(val, &v) < 0) {
            fprintf(stderr, "ledger %s: --%s: '%s' is not an integer\n", spec->name, o->name, val);
            return 2;
        }
        *(int *)o->value = (int)v;
        return 0;
    }
    case LG_OPT_DOUBLE: {
        double v;
        if (lg_parse_double(val, &v) < 0) {
            fprintf(stderr, "ledger %s: --%s: '%s' is not a number\n", spec->name, o->name, val);
            return 2;
        }
        *(double *)o->value = v;
        return 0;
    }
    default:
        return 2;
    }
}

void lg_opt_list_release(lg_opt_list *l)
{
    if (!l)
        return;
    lg_free(l->v);
    l->v = NULL;
    l->n = 0;
}

int lg_opts_parse(const lg_cmd_spec *spec, int argc, char **argv, int *nargs, char ***args)
{
    int i, npos = 0, only_pos = 0, rc;
    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        const lg_opt *o = NULL;
        const char *val = NULL;
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            argv[1 + npos++] = a;
            if (spec->stop_at_arg)
                only_pos = 1;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            lg_opts_help(spec, stdout);
            return 0;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            o = find_long(spec->opts, a + 2, len);
            if (eq)
                val = eq + 1;
        } else if (a[2] == '\0') {
            o = find_short(spec->opts, a[1]);
        }
        if (!o) {
            fprintf(stderr, "ledger %s: unknown option '%s' (see 'ledger %s --help')\n", spec->name, a, spec->name);
            return 2;
        }
        if (o->kind == LG_OPT_FLAG) {
            if (val) {
                fprintf(stderr, "ledger %s: --%s takes no value\n", spec->name, o->name);
                return 2;
            }
        } else if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ledger %s: --%s needs a value\n", spec->name, o->name);
                return 2;
            }
            val = argv[++i];
        }
        if ((rc = set_value(spec, o, val)) != 0)
            return rc;
    }
    if (npos < spec->min_args || (spec->max_args >= 0 && npos > spec->max_args)) {
        fprintf(stderr, "ledger %s: expected %s%d argument%s, got %d\nusage: %s\n", spec->name,
                spec->max_args < 0 ? "at least " : (spec->min_args == spec->max_args ? "" : "at most "),
                spec->max_args < 0 || spec->min_args == spec->max_args ? spec->min_args : spec->max_args,
                (spec->max_args < 0 ? spec->min_args : spec->max_args) == 1 ? "" : "s", npos, spec->usage);
        return 2;
    }
    *nargs = npos;
    *args = argv + 1;
    return LG_OPTS_RUN;
}

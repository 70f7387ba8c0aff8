/*
 * problems.c - the list of problems (see problems.h): append, count,
 * format as lines or JSON, release.
 */
#include "ledger/problems.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int lg_problems_add(lg_problems *ps, lg_problem_severity sev, const char *area, const char *subject, const char *fmt,
                    ...)
{
    lg_problem *p;
    va_list ap;
    char *msg;
    if (lg_grow(&ps->v, &ps->cap, ps->n + 1, sizeof *ps->v, 16) < 0)
        return LG_ENOMEM;
    va_start(ap, fmt);
    msg = lg_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!msg)
        return LG_ENOMEM;
    p = &ps->v[ps->n];
    p->severity = sev;
    p->area = lg_strdup(area);
    p->subject = lg_strdup(subject ? subject : "");
    p->message = msg;
    if (!p->area || !p->subject || !p->message) {
        lg_free(p->area);
        lg_free(p->subject);
        lg_free(p->message);
        return LG_ENOMEM;
    }
    ps->n++;
    return 0;
}

void lg_problems_release(lg_problems *ps)
{
    size_t i;
    if (!ps)
        return;
    for (i = 0; i < ps->n; i++) {
        lg_free(ps->v[i].area);
        lg_free(ps->v[i].subject);
        lg_free(ps->v[i].message);
    }
    lg_free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

size_t lg_problems_failed(const lg_problems *ps)
{
    size_t i, k = 0;
    for (i = 0; i < ps->n; i++)
        k += ps->v[i].severity == LG_PROBLEM_ERROR;
    return k;
}

int lg_problems_format(const lg_problems *ps, lg_buf *out)
{
    size_t i;
    int err = 0;
    for (i = 0; i < ps->n && err >= 0; i++)
        err = lg_buf_printf(out, "%s: %s: %s%s%s\n", ps->v[i].severity == LG_PROBLEM_ERROR ? "error" : "warning",
                            ps->v[i].area, ps->v[i].subject, *ps->v[i].subject ? ": " : "", ps->v[i].message);
    return err;
}

cJSON *lg_problems_to_json(const lg_problems *ps)
{
    cJSON *arr = cJSON_CreateArray();
    size_t i;
    for (i = 0; arr && i < ps->n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o) ||
            !cJSON_AddStringToObject(o, "severity", ps->v[i].severity == LG_PROBLEM_ERROR ? "error" : "warning") ||
            !cJSON_AddStringToObject(o, "area", ps->v[i].area) ||
            !cJSON_AddStringToObject(o, "subject", ps->v[i].subject) ||
            !cJSON_AddStringToObject(o, "message", ps->v[i].message)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

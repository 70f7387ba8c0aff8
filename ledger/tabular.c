/*
 * tabular.c - CSV quoting, number formatting and value order for tidy output
 * (see tabular.h).
 */
#include "ledger/tabular.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ledger/manifest.h"

void lg_csv_field(FILE *out, const char *s)
{
    size_t n;
    if (!s)
        return;
    n = strlen(s);
    if (strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '\t' || s[n - 1] == '\t'))) {
        putc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                putc('"', out);
            putc(*s, out);
        }
        putc('"', out);
    } else
        fputs(s, out);
}

const char *lg_fmt_num(double v, char *buf, size_t n)
{
    int p;
    for (p = 15; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

const char *lg_json_cell(const cJSON *v, char *buf, size_t n)
{
    if (!v || cJSON_IsNull(v))
        snprintf(buf, n, "%s", "");
    else if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        lg_fmt_num(v->valuedouble, buf, n);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else {
        lg_buf b = LG_BUF_INIT;
        if (lg_json_canonical(v, &b) == 0 && b.ptr)
            snprintf(buf, n, "%s", b.ptr);
        else
            snprintf(buf, n, "%s", "");
        lg_buf_release(&b);
    }
    return buf;
}

/* 1 and the value when s is a whole finite number */
static int as_number(const cJSON *v, double *out)
{
    char *end;
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v) && v->valuestring[0]) {
        *out = strtod(v->valuestring, &end);
        return *end == '\0';
    }
    return 0;
}

int lg_value_cmp(const cJSON *a, const cJSON *b)
{
    double x, y;
    int na, nb;
    char ba[256], bb[256];
    if (!a || cJSON_IsNull(a) || !b || cJSON_IsNull(b))
        return (a && !cJSON_IsNull(a)) - (b && !cJSON_IsNull(b));
    na = as_number(a, &x);
    nb = as_number(b, &y);
    if (na && nb)
        return x < y ? -1 : x > y ? 1 : 0;
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(lg_json_cell(a, ba, sizeof ba), lg_json_cell(b, bb, sizeof bb));
}

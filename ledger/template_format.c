/*
 * template_format.c - the number formats of report templates (template.h):
 * the check a directive's format must pass (one %f/%e/%g conversion with
 * at most two-digit width and precision, printable ASCII, under 40 bytes, so
 * it can never read a second argument or write past its buffer), and the
 * formatting of a value with a checked format ("n/a" for NaN). The directive
 * parser (template_directive.c) checks; the renderer (report.c) formats.
 */
#include "ledger/template.h"

#include <stdio.h>
#include <string.h>

int lg_template_format_ok(const char *fmt)
{
    int conv = 0;
    size_t i, n = strlen(fmt);
    if (n == 0 || n >= 40)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)fmt[i];
        if (c < 0x20 || c > 0x7e)
            return 0;
        if (c != '%')
            continue;
        if (fmt[i + 1] == '%') {
            i++;
            continue;
        }
        if (conv)
            return 0;
        i++;
        while (fmt[i] && strchr("-+ 0#", fmt[i]))
            i++;
        if (fmt[i] >= '0' && fmt[i] <= '9') {
            i++;
            if (fmt[i] >= '0' && fmt[i] <= '9')
                i++;
        }
        if (fmt[i] == '.') {
            i++;
            if (!(fmt[i] >= '0' && fmt[i] <= '9'))
                return 0;
            i++;
            if (fmt[i] >= '0' && fmt[i] <= '9')
                i++;
        }
        if (!fmt[i] || !strchr("fFeEgG", fmt[i]))
            return 0;
        conv = 1;
    }
    return conv;
}

void lg_template_format(char *buf, size_t n, const char *fmt, double v)
{
    if (v != v) {
        snprintf(buf, n, "n/a");
        return;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, n, fmt, v); /* fmt checked by lg_template_format_ok */
#pragma GCC diagnostic pop
}

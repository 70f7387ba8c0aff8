/*
 * tabular.h - tidy output shared by 'ledger query' and 'ledger table': CSV
 * fields quoted as RFC 4180 says, numbers in the shortest form that reads
 * back exactly, and a natural order for parameter values (4 before 16).
 */
#ifndef LG_TABULAR_H
#define LG_TABULAR_H

#include <stdio.h>

#include <cjson/cJSON.h>

/* Writes s as one CSV field: quoted (with "" for ") when it holds a comma,
 * a quote, CR, LF or leading/trailing space; as is otherwise. NULL = empty. */
void lg_csv_field(FILE *out, const char *s);
/* The shortest of %.15g/%.16g/%.17g that reads back as v, into buf. */
const char *lg_fmt_num(double v, char *buf, size_t n);
/* A cell of a table as text into buf: strings as is, numbers lg_fmt_num,
 * booleans true/false, null/absent "", others canonical JSON (truncated to n). */
const char *lg_json_cell(const cJSON *v, char *buf, size_t n);
/* Order of two parameter values: absent first, then numbers numerically,
 * then strings (numeric-looking ones by value, others with strcmp). */
int lg_value_cmp(const cJSON *a, const cJSON *b);

#endif

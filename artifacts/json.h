/*
 * json.h - the one strict JSON reader for untrusted input (study specs,
 * results files given to `ledger record`, SAELens cfg.json).
 *
 * cJSON alone is lenient in three ways that let a document mean something
 * other than what a reader sees: it ignores bytes after the first document
 * ("{...} garbage"), it decodes \u0000 into a NUL that silently cuts a
 * string or key short, and it keeps duplicate keys (lookups return the
 * first, while another tool may take the last). lg_json_parse refuses all
 * three, and raw control bytes inside strings (invalid JSON).
 */
#ifndef LG_JSON_H
#define LG_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parses text[0..len) as exactly one JSON document. On success *out is the
 * tree (cJSON_Delete). Errors are LG_EINPUT with a message naming `label`
 * (a file name) and the place: "LABEL:LINE:COL: malformed JSON",
 * "LABEL:LINE:COL: unexpected bytes after the JSON document",
 * "LABEL:LINE:COL: \u0000 in a string", "LABEL:LINE:COL: control character
 * in a string", "LABEL: PATH: duplicate key \"K\"" (PATH like data.synthetic,
 * "(root)" for the top level); LG_ENOMEM. */
int lg_json_parse(const char *label, const char *text, size_t len, cJSON **out);

#endif

/* test_json.c - the strict JSON reader (artifacts/json.h): trailing bytes,
 * \u0000 and raw control bytes in strings, duplicate keys at any depth are
 * refused with a message naming the file and the place; valid documents
 * (escapes included) parse as cJSON parses them. */
#include "base/base.h"
#include "artifacts/json.h"
#include "tests/unit/check.h"

static void expect_bad(const char *text, const char *want)
{
    cJSON *j = (cJSON *)1;
    int rc = lg_json_parse("f.json", text, strlen(text), &j);
    CHECK_MSG(rc == LG_EINPUT, "%s: rc %d", text, rc);
    CHECK(j == NULL);
    CHECK_MSG(strstr(lg_error_msg(), want) != NULL, "%s: message '%s' lacks '%s'", text, lg_error_msg(), want);
}

static void test_refused(void)
{
    expect_bad("{\"a\": 1} x", "f.json:1:10: unexpected bytes after the JSON document");
    expect_bad("{\"a\": 1}\n{\"a\": 2}", "f.json:2:1: unexpected bytes after the JSON document");
    expect_bad("{\"a\": \"x\\u0000y\"}", "f.json:1:9: \\u0000 in a string");
    expect_bad("{\"a\\u0000b\": 1}", "\\u0000 in a string");
    expect_bad("{\"a\": \"x\ty\"}", "control character in a string");
    expect_bad("{\"a\": 1, \"a\": 2}", "f.json: (root): duplicate key \"a\"");
    expect_bad("{\"data\": {\"synthetic\": {\"d\": 1, \"seed\": 2, \"d\": 3}}}", "f.json: data.synthetic: duplicate key \"d\"");
    expect_bad("{\"x\": [{}, {\"k\": 1, \"k\": 1}]}", "f.json: x[1]: duplicate key \"k\"");
    expect_bad("{\"a\": ", "f.json:1:6: malformed JSON");
    expect_bad("", "malformed JSON");
    {
        const char nul[] = "{\"a\": 1}\0{}"; /* a NUL byte after the document */
        cJSON *j = NULL;
        CHECK(lg_json_parse("f.json", nul, sizeof nul - 1, &j) == LG_EINPUT && j == NULL);
    }
}

static void test_accepted(void)
{
    cJSON *j = NULL;
    const char *t = " {\"a\": \"x\\\\u0000\", \"b\": [1, {\"a\": 2}], \"c\": \"\\u00e9\\n\"} \n\t";
    CHECK_OK(lg_json_parse("f.json", t, strlen(t), &j));
    CHECK(j && strcmp(cJSON_GetObjectItem(j, "a")->valuestring, "x\\u0000") == 0); /* an escaped backslash */
    CHECK(j && strcmp(cJSON_GetObjectItem(j, "c")->valuestring, "\xc3\xa9\n") == 0);
    cJSON_Delete(j);
}

CHECK_MAIN(T(test_refused), T(test_accepted))

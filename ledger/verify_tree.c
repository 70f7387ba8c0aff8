/*
 * verify_tree.c - a run directory holds exactly what its manifest lists.
 *
 * check_outputs (verify.c) checks that every in-tree output is present and
 * hashes to its digest; this is the converse: every entry of
 * runs/<seq>-<id12>/ is manifest.json, chain.json (checked by verify.c), signature.json (checked by sign.c)
 * or files/<name> of an output listed with in_tree = true, as a plain blob. Without it, a file slipped into a run
 * directory by rewriting history would pass once the index is rebuilt.
 */
#include "ledger/verify_tree.h"

#include <string.h>

#include "ledger/manifest.h"

typedef struct {
    const cJSON *m;
    lg_problems *ps;
    const char *subject;
    int err;
} walk_ctx;

static int listed_in_tree(const cJSON *m, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree")))
            return 1;
    }
    return 0;
}

static int on_entry(const char *root, const git_tree_entry *e, void *vctx)
{
    walk_ctx *c = vctx;
    const char *name = git_tree_entry_name(e);
    git_filemode_t mode = git_tree_entry_filemode(e);
    lg_buf path = LG_BUF_INIT;
    int bad = 0;

    if (c->err < 0)
        return -1;
    if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
        /* only files/ and the folders of output names below it */
        if (!*root ? strcmp(name, "files") != 0 : strncmp(root, "files/", 6) != 0)
            bad = 1;
    } else if ((c->err = lg_buf_printf(&path, "%s%s", root, name)) >= 0) {
        if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
            bad = 2;
        else if (strcmp(path.ptr, "manifest.json") != 0 && strcmp(path.ptr, "signature.json") != 0 &&
                 strcmp(path.ptr, LG_CHAIN_FILE) != 0 &&
                 !(strncmp(path.ptr, "files/", 6) == 0 && listed_in_tree(c->m, path.ptr + 6)))
            bad = 1;
    }
    if (bad && c->err >= 0) {
        if (!path.ptr)
            c->err = lg_buf_printf(&path, "%s%s/", root, name);
        if (c->err >= 0)
            c->err = lg_problems_add(c->ps, LG_PROBLEM_ERROR, "file", c->subject, "%s: %s", path.ptr,
                                     bad == 2 ? "not a plain file (link or submodule)" : "not listed in the manifest");
    }
    lg_buf_release(&path);
    if (c->err < 0)
        return -1;
    return bad == 1 && git_tree_entry_type(e) == GIT_OBJECT_TREE ? 1 : 0; /* reported: skip its contents */
}

int lg_verify_run_tree(lg_ledger *lg, const git_oid *run_tree, const cJSON *manifest, const char *subject,
                       lg_problems *ps)
{
    git_tree *t = NULL;
    walk_ctx c = {manifest, ps, subject, 0};
    if (git_tree_lookup(&t, lg_ledger_repo(lg), run_tree) < 0)
        return lg_problems_add(ps, LG_PROBLEM_ERROR, "file", subject, "run directory tree unreadable");
    if (git_tree_walk(t, GIT_TREEWALK_PRE, on_entry, &c) < 0 && c.err >= 0)
        c.err = lg_problems_add(ps, LG_PROBLEM_ERROR, "file", subject, "run directory tree unreadable");
    git_tree_free(t);
    return c.err;
}

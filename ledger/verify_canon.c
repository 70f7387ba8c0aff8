/*
 * verify_canon.c - the ledger's trees are what git would write (verify_canon.h).
 *
 * Each tree is re-serialised from its parsed entries in git's canonical form
 * and hashed with git_odb_hash (no object is written); any difference (an
 * invalid or duplicated name, an unsorted tree, a zero-padded or odd mode)
 * makes the id differ. Names are also checked one by one so the message says
 * what is wrong.
 */
#include "ledger/verify_canon.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CANON_MAX_DEPTH 16 /* runs/<dir>/files/<name...>: names have <= 255 bytes, so few levels */

typedef struct {
    const char *name;
    size_t len;
    unsigned mode;
    const git_oid *id;
} ent;

/* git's tree order: names compared as if a tree's name ended with '/' */
static int ent_cmp(const void *va, const void *vb)
{
    const ent *a = va, *b = vb;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->name, b->name, n);
    unsigned char ca, cb;
    if (r)
        return r;
    ca = a->len > n ? (unsigned char)a->name[n] : a->mode == GIT_FILEMODE_TREE ? '/' : 0;
    cb = b->len > n ? (unsigned char)b->name[n] : b->mode == GIT_FILEMODE_TREE ? '/' : 0;
    return (int)ca - (int)cb;
}

static const char *bad_name(const char *s)
{
    if (!*s)
        return "an empty name";
    if (strchr(s, '/'))
        return "a name with a slash";
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return "a '.' or '..' entry";
    if (strcasecmp(s, ".git") == 0)
        return "a .git entry";
    return NULL;
}

static int check_tree(git_repository *repo, const git_oid *id, const char *path, int depth, lg_problems *ps)
{
    git_tree *t = NULL;
    ent *v = NULL;
    lg_buf ser = LG_BUF_INIT, sub = LG_BUF_INIT;
    size_t n, i;
    git_oid h;
    const char *why = NULL, *what = NULL;
    int err = 0;

    if (git_tree_lookup(&t, repo, id) < 0)
        return lg_problems_add(ps, LG_PROBLEM_ERROR, "tree", path, "unreadable tree");
    n = git_tree_entrycount(t);
    if (depth > CANON_MAX_DEPTH) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "tree", path, "nested deeper than %d folders", CANON_MAX_DEPTH);
        goto out;
    }
    if (n && !(v = lg_malloc(n * sizeof *v))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(t, i);
        v[i].name = git_tree_entry_name(e);
        v[i].len = strlen(v[i].name);
        v[i].mode = (unsigned)git_tree_entry_filemode(e);
        v[i].id = git_tree_entry_id(e);
        if (!why && (why = bad_name(v[i].name)))
            what = v[i].name;
    }
    if (n)
        qsort(v, n, sizeof *v, ent_cmp);
    for (i = 1; i < n && !why; i++)
        if (v[i].len == v[i - 1].len && memcmp(v[i].name, v[i - 1].name, v[i].len) == 0)
            why = "a name twice", what = v[i].name;
    for (i = 0; i < n && err >= 0; i++)
        if ((err = lg_buf_printf(&ser, "%o %s", v[i].mode, v[i].name)) >= 0 && (err = lg_buf_put(&ser, "", 1)) >= 0)
            err = lg_buf_put(&ser, v[i].id->id, GIT_OID_RAWSZ);
    if (err < 0)
        goto out;
    if (!why && (git_odb_hash(&h, ser.ptr ? ser.ptr : "", ser.len, GIT_OBJECT_TREE) < 0 || !git_oid_equal(&h, id)))
        why = "entries out of order or modes not as git writes them";
    if (why) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "tree", *path ? path : "/",
                              "not a tree git would write (%s%s%s%s): readers and a checkout could see different "
                              "bytes",
                              why, what ? ": '" : "", what ? what : "", what ? "'" : "");
        goto out; /* its entries' names are not trustworthy paths: not descended */
    }
    for (i = 0; i < n && err >= 0; i++) {
        if (v[i].mode != GIT_FILEMODE_TREE)
            continue;
        lg_buf_clear(&sub);
        if ((err = lg_buf_printf(&sub, "%s%s%s", path, *path ? "/" : "", v[i].name)) >= 0)
            err = check_tree(repo, v[i].id, sub.ptr, depth + 1, ps);
    }
out:
    lg_buf_release(&ser);
    lg_buf_release(&sub);
    lg_free(v);
    git_tree_free(t);
    return err;
}

int lg_verify_canonical_trees(lg_ledger *lg, const git_oid *commit, lg_problems *ps)
{
    git_commit *c = NULL;
    int err;
    if (git_commit_lookup(&c, lg_ledger_repo(lg), commit) < 0)
        return lg_problems_add(ps, LG_PROBLEM_ERROR, "tree", LG_LEDGER_REF, "tip commit unreadable");
    err = check_tree(lg_ledger_repo(lg), git_commit_tree_id(c), "", 0, ps);
    git_commit_free(c);
    return err;
}

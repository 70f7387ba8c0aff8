/*
 * sign_trust.c - trusted keys (see sign.h): the keyring of a
 * ledger-trusted-keys file (one "ed25519 <base64> NAME" line per key, '#'
 * comments), appending a key to it, and the trust root that verify uses.
 *
 * The trust root comes from outside the change being verified (sign.h
 * lists the four sources: --trusted-keys FILE, --keys-ref REV,
 * $LEDGER_TRUSTED_KEYS, or the base's remote HEAD/main/master), never from
 * the work tree's file, so a pull request cannot trust its own key by
 * editing the file it brings; keys the work tree's file adds or removes
 * are only reported (lg_trust_root_report_worktree).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "ledger/manifest.h"
#include "ledger/sign.h"
#include "ledger/worktree_guard.h"

/* ---- trusted keys -------------------------------------------------------------- */

void lg_keyring_release(lg_keyring *kr)
{
    size_t i;
    if (!kr)
        return;
    for (i = 0; i < kr->n; i++)
        lg_free(kr->names[i]);
    lg_free(kr->names);
    lg_free(kr->keys);
    kr->keys = NULL;
    kr->names = NULL;
    kr->n = 0;
}

/* Calls fn for every key line of text (comments and blanks skipped). */
static int each_key_line(const char *path, const char *text, int (*fn)(void *, const lg_pubkey *, char *), void *ctx)
{
    const char *s = text;
    int lineno = 0, err = 0;
    while (s && *s && err >= 0) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char *line = lg_strndup(s, n), *name = NULL, *p, where[512];
        lg_pubkey k;
        lineno++;
        s += n + (e ? 1 : 0);
        if (!line)
            return LG_ENOMEM;
        for (p = line; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p && *p != '#' && *p != '\r') {
            snprintf(where, sizeof where, "%s:%d", path, lineno);
            if ((err = lg_key_parse_line(p, where, &k, &name)) >= 0)
                err = fn(ctx, &k, name); /* takes name */
        }
        lg_free(line);
    }
    return err;
}

static int ring_add(void *ctx, const lg_pubkey *k, char *name)
{
    lg_keyring *kr = ctx;
    lg_pubkey *nk;
    char **nn;
    if (lg_keyring_find(kr, k) >= 0) {
        lg_free(name);
        return 0;
    }
    if (!(nk = lg_realloc(kr->keys, (kr->n + 1) * sizeof(*nk)))) {
        lg_free(name);
        return LG_ENOMEM;
    }
    kr->keys = nk;
    if (!(nn = lg_realloc(kr->names, (kr->n + 1) * sizeof(*nn)))) {
        lg_free(name);
        return LG_ENOMEM;
    }
    kr->names = nn;
    kr->keys[kr->n] = *k;
    kr->names[kr->n] = name;
    kr->n++;
    return 0;
}

int lg_keyring_load(const char *path, lg_keyring *kr)
{
    lg_buf text = LG_BUF_INIT;
    int err;
    lg_keyring_release(kr);
    if ((err = lg_file_read_optional(path, LG_TRUSTED_KEYS_MAX, &text)) <= 0) /* absent: no keys */
        goto out;
    if (memchr(text.ptr, '\0', text.len)) {
        err = lg_error_set(LG_EINPUT, "%s: contains a NUL byte", path);
        goto out;
    }
    if ((err = each_key_line(path, text.ptr, ring_add, kr)) < 0)
        lg_keyring_release(kr);
out:
    lg_buf_release(&text);
    return err;
}

int lg_keyring_load_repo(lg_ledger *lg, lg_keyring *kr)
{
    lg_buf p = LG_BUF_INIT;
    int err = lg_path_join(&p, lg_ledger_root(lg), LG_TRUSTED_KEYS_FILE);
    if (err >= 0)
        err = lg_keyring_load(p.ptr, kr);
    lg_buf_release(&p);
    return err;
}

int lg_keyring_parse(const char *where, const char *text, size_t len, lg_keyring *kr)
{
    char *copy = NULL;
    int err;
    lg_keyring_release(kr);
    if (len > LG_TRUSTED_KEYS_MAX)
        return lg_error_set(LG_EINPUT, "%s: larger than %u bytes", where, LG_TRUSTED_KEYS_MAX);
    if (memchr(text, '\0', len))
        return lg_error_set(LG_EINPUT, "%s: contains a NUL byte", where);
    if (!(copy = lg_strndup(text, len)))
        return LG_ENOMEM;
    if ((err = each_key_line(where, copy, ring_add, kr)) < 0)
        lg_keyring_release(kr);
    lg_free(copy);
    return err;
}

/* ---- the trust root ----------------------------------------------------------- */

/* ledger-trusted-keys of REV's tree into kr. */
static int keyring_from_rev(lg_ledger *lg, const char *rev, lg_keyring *kr)
{
    git_repository *repo = lg_ledger_repo(lg);
    git_object *obj = NULL, *peeled = NULL;
    git_tree_entry *e = NULL;
    git_blob *b = NULL;
    lg_buf where = LG_BUF_INIT;
    int err = 0;
    if (git_revparse_single(&obj, repo, rev) < 0 || git_object_peel(&peeled, obj, GIT_OBJECT_TREE) < 0) {
        err = lg_error_set(LG_EINPUT, "--keys-ref %s: not a revision of this repository (fetch it first)", rev);
        goto out;
    }
    if (git_tree_entry_bypath(&e, (git_tree *)peeled, LG_TRUSTED_KEYS_FILE) < 0 ||
        git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_blob_lookup(&b, repo, git_tree_entry_id(e)) < 0) {
        err = lg_error_set(LG_EINPUT, "%s: no file %s in that revision's tree", rev, LG_TRUSTED_KEYS_FILE);
        goto out;
    }
    if ((err = lg_buf_printf(&where, "%s:%s", rev, LG_TRUSTED_KEYS_FILE)) < 0)
        goto out;
    err = lg_keyring_parse(where.ptr, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b), kr);
out:
    lg_buf_release(&where);
    git_blob_free(b);
    git_tree_entry_free(e);
    git_object_free(peeled);
    git_object_free(obj);
    return err;
}

int lg_trust_default_keys_ref(lg_ledger *lg, const char *base_ref, lg_buf *out)
{
    static const char *const heads[] = {"HEAD", "main", "master"};
    git_repository *repo = lg_ledger_repo(lg);
    git_reference *ref = NULL, *head = NULL;
    const char *full, *slash;
    size_t i;
    int err = LG_ENOTFOUND;
    lg_buf_clear(out);
    if (!base_ref || git_reference_dwim(&ref, repo, base_ref) < 0)
        goto out;
    full = git_reference_name(ref);
    if (strncmp(full, "refs/remotes/", 13) != 0 || !(slash = strchr(full + 13, '/')))
        goto out;
    for (i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        lg_buf_clear(out);
        if ((err = lg_buf_printf(out, "%.*s/%s", (int)(slash - full), full, heads[i])) < 0)
            goto out;
        if (git_reference_lookup(&head, repo, out->ptr) == 0) {
            git_reference_free(head);
            err = 0;
            goto out;
        }
        err = LG_ENOTFOUND;
    }
out:
    if (err == LG_ENOTFOUND)
        lg_buf_clear(out);
    git_reference_free(ref);
    return err;
}

int lg_trust_root_load(lg_ledger *lg, lg_keyring *kr, lg_buf *source)
{
    const lg_trust_opts *t = lg_ledger_trust(lg);
    const char *env = getenv("LEDGER_TRUSTED_KEYS");
    lg_buf local = LG_BUF_INIT, defref = LG_BUF_INIT;
    lg_buf *src = source ? source : &local;
    int err;

    lg_keyring_release(kr);
    lg_buf_clear(src);
    if (t->keys_file || (!t->keys_ref && env && *env)) {
        const char *path = t->keys_file ? t->keys_file : env;
        if (!lg_path_exists(path)) {
            err = lg_error_set(LG_EINPUT, "%s: no such trusted-keys file (%s)", path,
                               t->keys_file ? "--trusted-keys" : "$LEDGER_TRUSTED_KEYS");
            goto out;
        }
        if (lg_path_tracked(lg_ledger_repo(lg), path)) { /* the change under review could have edited it */
            err = lg_error_set(LG_EINPUT,
                               "%s %s: a file this repository tracks, so the change under verification can edit it: "
                               "the trust root must come from outside it (--keys-ref origin/main, or a file CI "
                               "controls)",
                               t->keys_file ? "--trusted-keys" : "$LEDGER_TRUSTED_KEYS", path);
            goto out;
        }
        if ((err = lg_keyring_load(path, kr)) < 0)
            goto out;
        err = lg_buf_printf(src, "%s %s", t->keys_file ? "--trusted-keys" : "LEDGER_TRUSTED_KEYS=", path);
        goto out;
    }
    if (t->keys_ref) {
        if ((err = keyring_from_rev(lg, t->keys_ref, kr)) < 0)
            goto out;
        err = lg_buf_printf(src, "%s:%s", t->keys_ref, LG_TRUSTED_KEYS_FILE);
        goto out;
    }
    if (t->base_ref && lg_trust_default_keys_ref(lg, t->base_ref, &defref) == 0) {
        lg_error_clear();
        if ((err = keyring_from_rev(lg, defref.ptr, kr)) < 0)
            goto out;
        err = lg_buf_printf(src, "%s:%s (default for --base %s)", defref.ptr, LG_TRUSTED_KEYS_FILE, t->base_ref);
        goto out;
    }
    err = lg_error_set(LG_EINPUT,
                       "--require-signed needs a trust root from outside the change under verification: give "
                       "--trusted-keys FILE, --keys-ref REV (e.g. origin/main, whose %s is protected) or "
                       "$LEDGER_TRUSTED_KEYS; the work tree's %s is never trusted",
                       LG_TRUSTED_KEYS_FILE, LG_TRUSTED_KEYS_FILE);
out:
    if (err < 0)
        lg_keyring_release(kr);
    lg_buf_release(&local);
    lg_buf_release(&defref);
    return err;
}

int lg_trust_root_report_worktree(lg_ledger *lg, const lg_keyring *root, const char *source, lg_problems *ps)
{
    lg_keyring wt = LG_KEYRING_INIT;
    lg_buf line = LG_BUF_INIT;
    size_t i;
    int err;
    if ((err = lg_keyring_load_repo(lg, &wt)) < 0) {
        err = lg_problems_add(ps, LG_PROBLEM_WARNING, "trust", LG_TRUSTED_KEYS_FILE,
                              "the work tree's file is unreadable (%s); it is not used either way", lg_error_msg());
        goto out;
    }
    for (i = 0; i < wt.n && err >= 0; i++)
        if (lg_keyring_find(root, &wt.keys[i]) < 0) {
            lg_buf_clear(&line);
            if ((err = lg_key_format_line(&wt.keys[i], wt.names[i], &line)) >= 0)
                err = lg_problems_add(ps, LG_PROBLEM_WARNING, "trust", LG_TRUSTED_KEYS_FILE,
                                      "key added in the work tree, not in the trust root %s: not honoured: %s", source,
                                      line.ptr);
        }
    for (i = 0; i < root->n && err >= 0; i++)
        if (lg_keyring_find(&wt, &root->keys[i]) < 0) {
            lg_buf_clear(&line);
            if ((err = lg_key_format_line(&root->keys[i], root->names[i], &line)) >= 0)
                err = lg_problems_add(ps, LG_PROBLEM_WARNING, "trust", LG_TRUSTED_KEYS_FILE,
                                      "key removed in the work tree but still in the trust root %s: removal not "
                                      "honoured: %s",
                                      source, line.ptr);
        }
out:
    lg_buf_release(&line);
    lg_keyring_release(&wt);
    return err;
}

int lg_keyring_trust(const char *path, const lg_pubkey *k, const char *name, int *added)
{
    lg_keyring kr = LG_KEYRING_INIT;
    lg_buf text = LG_BUF_INIT;
    int err;
    *added = 0;
    if ((err = lg_keyring_load(path, &kr)) < 0) /* refuses to append to a malformed file */
        goto out;
    if (lg_keyring_find(&kr, k) >= 0)
        goto out;
    if ((err = lg_file_read_optional(path, LG_TRUSTED_KEYS_MAX, &text)) == 0)
        err = lg_buf_puts(&text, "# ledger-trusted-keys: public keys whose signatures 'ledger verify --require-signed'\n"
                                 "# accepts, one per line: ed25519 <base64 key> NAME. Commit this file.\n");
    if (err < 0)
        goto out;
    if (text.len && text.ptr[text.len - 1] != '\n' && (err = lg_buf_puts(&text, "\n")) < 0)
        goto out;
    if ((err = lg_key_format_line(k, name, &text)) < 0 || (err = lg_buf_puts(&text, "\n")) < 0 ||
        (err = lg_file_write_atomic(path, text.ptr, text.len)) < 0)
        goto out;
    *added = 1;
out:
    lg_keyring_release(&kr);
    lg_buf_release(&text);
    return err;
}

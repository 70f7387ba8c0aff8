/*
 * index_current.c - open the index without libgit2 when it is provably
 * current (see index_current.h for why and for the trust argument).
 *
 * Design: every step either confirms the plain, common layout or declines.
 * Declining costs only the time we meant to save (the caller takes the full
 * libgit2 path, which behaves exactly as before), so the readers here are
 * deliberately narrow:
 *   - discovery: from realpath(start_dir) upward, the first directory with a
 *     `.git` DIRECTORY holding HEAD, objects/ and refs/ and no `commondir`
 *     (so no linked worktree); a `.git` file or symlink, a directory that is
 *     itself a git directory (bare, or inside .git), a filesystem boundary,
 *     GIT_DIR / GIT_WORK_TREE / GIT_COMMON_DIR set: decline;
 *   - ownership: the work tree and the git directory owned by our euid (what
 *     libgit2 1.5's safe.directory check accepts without configuration);
 *   - <gitdir>/config: any mention of worktree, include, extensions (ref
 *     storage, object format), a repositoryformatversion other than 0, or a
 *     `bare` other than `bare = false`: decline (these could move the work
 *     tree or change where refs live);
 *   - the ref: the loose file exactly "<40 lowercase hex>\n"; only when it
 *     does not exist, packed-refs holding the name exactly once, as
 *     "<hex> <name>" with no "^" peeled line after it; anything else
 *     (symbolic ref, symlink, directory, CR, duplicates, > 8 MiB): decline;
 *   - <gitdir>/index (version 2 or 3, <= 32 MiB) holds no ".ledger/" or
 *     ".ledger\0": a commit that carries .ledger/ (worktree_guard.h) would
 *     check out an index that passes for current;
 *   - .ledger/ledger.json read by the same function lg_ledger_open uses;
 *   - the index opened read-only by lg_index_open (schema version, planted
 *     trigger/view check), its meta 'tip' 40 lowercase hex and equal to the
 *     ref's value.
 * Only then is the index handed out. No write, no lock, no repair, no print.
 *
 * Not repeated here: lg_ledger_open's check of the branch's FORMAT file at
 * the tip. A tip equal to the index's was written into the index by ledger
 * itself (record, reindex, sync), each of which had opened the ledger through
 * lg_ledger_open and so had checked that commit's FORMAT (record and sync
 * made the commit themselves). Nor the store directory: these readers never
 * touch it.
 */
#include "ledger/index_current.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger/index.h"
#include "ledger/ledger_int.h"

#define PACKED_REFS_MAX ((size_t)8 << 20)
#define GIT_CONFIG_MAX ((size_t)1 << 20)
#define GIT_INDEX_MAX ((uint64_t)32 << 20)
#define DIRLEN (sizeof LG_LEDGER_DIR - 1)

static int is_lower_hex40(const char *s, size_t n)
{
    size_t i;
    if (n != 40)
        return 0;
    for (i = 0; i < 40; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int stat_is(const char *dir, const char *name, mode_t type)
{
    char p[PATH_MAX];
    struct stat st;
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p || stat(p, &st) < 0)
        return 0;
    return (st.st_mode & S_IFMT) == type;
}

/* What libgit2 accepts as a git directory: HEAD, objects/, refs/. */
static int looks_like_gitdir(const char *dir)
{
    return stat_is(dir, "HEAD", S_IFREG) && stat_is(dir, "objects", S_IFDIR) && stat_is(dir, "refs", S_IFDIR);
}

/* Fills root (the work tree) and gitdir (root/.git); 1 found, 0 declined. */
static int discover(const char *start_dir, char root[PATH_MAX], char gitdir[PATH_MAX], const char **why)
{
    char cur[PATH_MAX];
    struct stat st;
    dev_t dev;
    if (!realpath(start_dir, cur) || stat(cur, &st) < 0)
        return *why = "cannot resolve the start directory", 0;
    dev = st.st_dev;
    for (;;) {
        char *slash;
        if (looks_like_gitdir(cur))
            return *why = "inside a git directory (or a bare repository)", 0;
        if (snprintf(gitdir, PATH_MAX, "%s%s.git", cur, strcmp(cur, "/") == 0 ? "" : "/") >= PATH_MAX)
            return *why = "path too long", 0;
        if (lstat(gitdir, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return *why = ".git is not a directory (a worktree, a submodule or a symlink)", 0;
            if (!looks_like_gitdir(gitdir) || stat_is(gitdir, "commondir", S_IFREG) ||
                lstat(gitdir, &st) < 0 || !S_ISDIR(st.st_mode))
                return *why = ".git is not a plain git directory", 0;
            snprintf(root, PATH_MAX, "%s", cur);
            return 1;
        }
        if (errno != ENOENT)
            return *why = "cannot stat .git", 0;
        if (strcmp(cur, "/") == 0)
            return *why = "no git repository found", 0;
        slash = strrchr(cur, '/');
        if (slash == cur)
            cur[1] = '\0';
        else
            *slash = '\0';
        if (stat(cur, &st) < 0 || st.st_dev != dev)
            return *why = "reached a filesystem boundary", 0;
    }
}

/* 1 when the repository config is one whose work tree and ref storage are the
 * plain ones (see the file comment). */
static int config_is_plain(const char *gitdir, const char **why)
{
    lg_buf text = LG_BUF_INIT;
    char path[PATH_MAX];
    const char *s;
    int ok = 1;
    if (snprintf(path, sizeof path, "%s/config", gitdir) >= (int)sizeof path ||
        lg_file_read(path, GIT_CONFIG_MAX, &text) < 0 || strlen(text.ptr) != text.len) {
        lg_buf_release(&text);
        return *why = "cannot read the repository config", 0;
    }
    for (s = text.ptr; ok && *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s), i, k = 0;
        char line[256];
        /* the line without whitespace, lowercased; a long line is only judged on its start, so it declines below */
        for (i = 0; i < n && k + 1 < sizeof line; i++)
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
                line[k++] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
        line[k] = '\0';
        if (i < n)
            ok = 0, *why = "a long line in the repository config";
        else if (strstr(line, "worktree") || strstr(line, "include") || strstr(line, "extensions") ||
                 strstr(line, "objectformat") || strstr(line, "refstorage"))
            ok = 0, *why = "the repository config names a worktree, an include or extensions";
        else if (strstr(line, "bare") && strcmp(line, "bare=false") != 0)
            ok = 0, *why = "the repository config sets bare";
        else if (strstr(line, "repositoryformatversion") && strcmp(line, "repositoryformatversion=0") != 0)
            ok = 0, *why = "repositoryformatversion is not 0";
        s += n + (e ? 1 : 0);
    }
    lg_buf_release(&text);
    return ok;
}

/* The packed-refs file: 1 with hex_out, 0 declined. */
static int packed_ref(const char *gitdir, const char *refname, char hex_out[41], const char **why)
{
    lg_buf text = LG_BUF_INIT;
    char path[PATH_MAX];
    const char *s;
    size_t rn = strlen(refname);
    int found = 0, ok = 1, after_ours = 0;
    if (snprintf(path, sizeof path, "%s/packed-refs", gitdir) >= (int)sizeof path)
        return *why = "path too long", 0;
    if (lg_file_read(path, PACKED_REFS_MAX, &text) < 0 || strlen(text.ptr) != text.len) {
        lg_buf_release(&text);
        return *why = "the ref is neither a loose file nor in a readable packed-refs", 0;
    }
    for (s = text.ptr; ok && *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!e)
            ok = 0, *why = "packed-refs does not end with a newline";
        else if (s[0] == '#')
            after_ours = 0; /* the header ("# pack-refs with: ...") */
        else if (s[0] == '^') {
            if (after_ours)
                ok = 0, *why = "the ref is packed with a peeled value (it names a tag object)";
        } else if (n < 42 || !is_lower_hex40(s, 40) || s[40] != ' ' || memchr(s, '\r', n)) {
            ok = 0, *why = "packed-refs holds a line git does not write";
        } else {
            after_ours = n - 41 == rn && memcmp(s + 41, refname, rn) == 0;
            if (after_ours) {
                if (found++)
                    ok = 0, *why = "packed-refs names the ref twice";
                memcpy(hex_out, s, 40);
                hex_out[40] = '\0';
            }
        }
        s += n + (e ? 1 : 0);
    }
    lg_buf_release(&text);
    if (ok && !found)
        ok = 0, *why = "no such ref";
    return ok;
}

/* The git index (.git/index) tracks nothing named .ledger: 1, else 0 with
 * *why. A commit can carry .ledger/ (worktree_guard.h): its checked-out index
 * would otherwise pass for current here. Version 2/3 entries hold each path in
 * full, so a byte search finds ".ledger/" or ".ledger\0" (a hit anywhere, even
 * in a deeper path or an extension, only declines); version 4 compresses
 * paths: decline. No git index at all: nothing is tracked. */
static int git_index_clean(const char *gitdir, const char **why)
{
    char path[PATH_MAX];
    unsigned char *b = NULL;
    size_t n = 0, i;
    FILE *f;
    struct stat st;
    int ok = 0;
    if (snprintf(path, sizeof path, "%s/index", gitdir) >= (int)sizeof path)
        return *why = "path too long", 0;
    if (!(f = fopen(path, "rb")))
        return errno == ENOENT ? 1 : (*why = "cannot read the git index", 0);
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > GIT_INDEX_MAX ||
        !(b = lg_malloc((size_t)st.st_size + 1)) || (n = fread(b, 1, (size_t)st.st_size, f)) != (size_t)st.st_size)
        *why = "the git index is not a readable file of at most 32 MiB";
    else if (n < 12 || memcmp(b, "DIRC", 4) != 0 || b[4] || b[5] || b[6] || (b[7] != 2 && b[7] != 3))
        *why = "the git index is not version 2 or 3";
    else {
        ok = 1;
        for (i = 0; ok && i + DIRLEN + 1 <= n; i++)
            if (b[i] == '.' && memcmp(b + i, LG_LEDGER_DIR, DIRLEN) == 0 &&
                (b[i + DIRLEN] == '/' || b[i + DIRLEN] == '\0'))
                ok = 0, *why = "the git index may track " LG_LEDGER_DIR " (the full path checks)";
    }
    lg_free(b);
    fclose(f);
    return ok;
}

int lg_ref_read_plain(const char *gitdir, const char *refname, char hex_out[41], const char **why_not)
{
    char path[PATH_MAX], buf[64];
    const char *dummy;
    const char **why = why_not ? why_not : &dummy;
    struct stat st;
    ssize_t n;
    int fd;
    hex_out[0] = '\0';
    if (snprintf(path, sizeof path, "%s/%s", gitdir, refname) >= (int)sizeof path)
        return *why = "path too long", 0;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return packed_ref(gitdir, refname, hex_out, why);
        return *why = "cannot stat the loose ref", 0;
    }
    if (!S_ISREG(st.st_mode))
        return *why = "the loose ref is not a regular file", 0;
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return *why = "cannot open the loose ref", 0;
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != 41 || buf[40] != '\n' || !is_lower_hex40(buf, 40))
        return *why = "the loose ref is not \"<40 hex>\\n\" (symbolic, SHA-256 or odd)", 0;
    memcpy(hex_out, buf, 40);
    hex_out[40] = '\0';
    return 1;
}

int lg_index_open_current(const char *start_dir, sqlite3 **out, const char **why_not)
{
    char root[PATH_MAX], gitdir[PATH_MAX], ledger_dir[PATH_MAX], index_path[PATH_MAX], ref_hex[41], tip[65];
    const char *dummy, *env = getenv("LEDGER_FAST_READ");
    const char **why = why_not ? why_not : &dummy;
    sqlite3 *db = NULL;
    struct stat st;
    uint64_t small_max;
    int ok = 0;

    *out = NULL;
    *why = NULL;
    if (env && strcmp(env, "0") == 0)
        return *why = "disabled (LEDGER_FAST_READ=0)", 0;
    if (getenv("GIT_DIR") || getenv("GIT_WORK_TREE") || getenv("GIT_COMMON_DIR"))
        return *why = "GIT_DIR, GIT_WORK_TREE or GIT_COMMON_DIR is set", 0;
    if (!discover(start_dir, root, gitdir, why))
        goto out;
    if (stat(root, &st) < 0 || st.st_uid != geteuid() || stat(gitdir, &st) < 0 || st.st_uid != geteuid()) {
        *why = "the repository is not owned by this user";
        goto out;
    }
    if (!config_is_plain(gitdir, why) || !git_index_clean(gitdir, why))
        goto out;
    if (snprintf(ledger_dir, sizeof ledger_dir, "%s/%s", root, LG_LEDGER_DIR) >= (int)sizeof ledger_dir ||
        snprintf(index_path, sizeof index_path, "%s/index.sqlite", ledger_dir) >= (int)sizeof index_path) {
        *why = "path too long";
        goto out;
    }
    if (lgl_read_config(ledger_dir, &small_max) < 0) {
        *why = "no readable format-2 .ledger/ledger.json";
        goto out;
    }
    if (stat(index_path, &st) < 0 || !S_ISREG(st.st_mode)) {
        *why = "no index file";
        goto out;
    }
    if (lg_index_open(index_path, 1, &db) < 0 || lg_index_get_tip(db, tip) < 0) {
        *why = "the index does not open cleanly";
        goto out;
    }
    if (!is_lower_hex40(tip, strlen(tip))) {
        *why = "the index has no tip";
        goto out;
    }
    if (!lg_ref_read_plain(gitdir, LG_LEDGER_REF, ref_hex, why))
        goto out;
    if (strcmp(ref_hex, tip) != 0) {
        *why = "the index tip is not the branch tip";
        goto out;
    }
    *out = db;
    db = NULL;
    ok = 1;
out:
    sqlite3_close(db);
    lg_error_clear();
    return ok;
}

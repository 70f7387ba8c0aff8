/*
 * evidence_fresh.c - is a run's evidence still fresh? (see evidence.h:
 * FRESH / STALE / MISSING). Staleness is by meaning, not by bytes: a study
 * file is compared with the run through its canonical spec digest
 * (lg_spec_canonical_digest: key order and formatting do not count), its
 * data through the data file's digest, and a study file that moved is
 * searched for (bounded: SEARCH_MAX_FILES, _DEPTH, _BYTES) by that digest.
 * Signatures are checked here too when the context requires them.
 *
 * The answer for a run is computed once per context and kept in
 * run_ent.fact ([0] for latest-run claims, [1] for pinned claims).
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/sign.h"
#include "ledger/evidence_int.h"

/* ---- staleness by meaning ---------------------------------------------------------- */

int lg_spec_canonical_digest(const cJSON *spec, char hex_out[65])
{
    cJSON *dup;
    lg_buf b = LG_BUF_INIT;
    int err;
    if (!cJSON_IsObject(spec))
        return lg_error_set(LG_EINPUT, "a study spec is a JSON object");
    if (!(dup = cJSON_Duplicate(spec, 1)))
        return LG_ENOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(dup, "description");
    if ((err = lg_json_canonical(dup, &b)) == 0)
        err = lg_sha256_buf(b.ptr ? b.ptr : "", b.len, hex_out);
    cJSON_Delete(dup);
    lg_buf_release(&b);
    return err;
}

/* Reads a study file: 1 with *name and hex filled (canonical digest), 0 when it
 * is not a JSON object (or too big), < 0 on I/O error. *name freed with lg_free. */
static int study_file_digest(const char *path, char **name, char hex[65])
{
    lg_buf b = LG_BUF_INIT;
    cJSON *j = NULL;
    int err;
    *name = NULL;
    if ((err = lg_file_read(path, SPEC_FILE_MAX, &b)) < 0) {
        lg_buf_release(&b);
        if (err == LG_EINPUT || err == LG_ENOTFOUND) {
            lg_error_clear();
            return 0;
        }
        return err;
    }
    j = cJSON_ParseWithLength(b.ptr ? b.ptr : "", b.len);
    lg_buf_release(&b);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return 0;
    }
    if ((err = lg_spec_canonical_digest(j, hex)) < 0) {
        cJSON_Delete(j);
        if (err == LG_EINPUT) { /* NaN, duplicate keys: not a spec we could have run */
            lg_error_clear();
            return 0;
        }
        return err;
    }
    if (lg_json_str(j, "name") && !(*name = lg_strdup(lg_json_str(j, "name"))))
        err = LG_ENOMEM;
    cJSON_Delete(j);
    return err < 0 ? err : 1;
}

typedef struct {
    const char *study;
    const char *want;  /* canonical digest recorded for the run */
    lg_buf same;       /* a file of the study with the recorded meaning */
    lg_buf other;      /* a file of the study whose meaning changed */
    size_t visited;
    uint64_t bytes;    /* read so far (SEARCH_MAX_BYTES) */
} search_ctx;

/* Looks for *.json files declaring the study (by "name") under dir. */
static int search_dir(search_ctx *s, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    lg_buf p = LG_BUF_INIT;
    int err = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)) && err == 0 && !s->same.len && s->visited < SEARCH_MAX_FILES) {
        struct stat sb;
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.')
            continue; /* ., .., .git, .ledger and hidden files */
        if ((err = lg_path_join(&p, dir, de->d_name)) < 0)
            break;
        if (lstat(p.ptr, &sb) != 0)
            continue;
        s->visited++;
        if (S_ISDIR(sb.st_mode)) {
            if (depth < SEARCH_MAX_DEPTH)
                err = search_dir(s, p.ptr, depth + 1);
        } else if (S_ISREG(sb.st_mode) && len > 5 && !strcmp(de->d_name + len - 5, ".json") &&
                   (uint64_t)sb.st_size <= SPEC_FILE_MAX && s->bytes + (uint64_t)sb.st_size <= SEARCH_MAX_BYTES) {
            char *name = NULL, hex[65];
            int rc;
            s->bytes += (uint64_t)sb.st_size;
            rc = study_file_digest(p.ptr, &name, hex);
            if (rc < 0)
                err = rc;
            else if (rc == 1 && name && !strcmp(name, s->study)) {
                lg_buf *dst = !strcmp(hex, s->want) ? &s->same : &s->other;
                if (!dst->len) {
                    lg_buf_clear(dst);
                    err = lg_buf_puts(dst, p.ptr);
                }
            }
            lg_free(name);
        }
    }
    closedir(d);
    lg_buf_release(&p);
    return err;
}

/* The trusted keys for --require-signed: the one place they are loaded. */
int ev_trust_keys(lg_evidence_ctx *ev, const lg_keyring **out)
{
    int err;
    if (!ev->keys_loaded) {
        if ((err = lg_trust_root_load(ev->lg, &ev->keys, NULL)) < 0)
            return err;
        ev->keys_loaded = 1;
    }
    *out = &ev->keys;
    return 0;
}

static int fact_set(run_fact *f, lg_evidence status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fact_set(run_fact *f, lg_evidence status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f->reason = lg_strdup_vprintf(fmt, ap);
    va_end(ap);
    f->status = status;
    return f->reason ? 0 : LG_ENOMEM;
}

static int str_same(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static const char *rel(lg_evidence_ctx *ev, const char *p)
{
    const char *root = lg_ledger_root(ev->lg);
    size_t n = strlen(root);
    return !strncmp(p, root, n) && p[n] == '/' ? p + n + 1 : p;
}

/* The canonical spec digest the run recorded: extra.spec_canonical_sha256
 * (runs since it was added), else computed from the spec the manifest embeds;
 * 0 when the run embeds no spec (record runs: raw bytes are compared then). */
static int recorded_meaning(const cJSON *m, char hex[65])
{
    const char *rec = lg_json_str(cJSON_GetObjectItemCaseSensitive(m, "extra"), "spec_canonical_sha256");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(m, "spec");
    int err;
    if (rec && strlen(rec) == 64) {
        snprintf(hex, 65, "%s", rec);
        return 1;
    }
    if (!cJSON_IsObject(spec))
        return 0;
    if ((err = lg_spec_canonical_digest(spec, hex)) < 0)
        return err;
    return 1;
}

/* The study file: still the recorded meaning (found by path, or by study name
 * and digest when it moved)? On FRESH, study_path_now = the file found. */
static int check_study_file(lg_evidence_ctx *ev, const run_ent *e, run_fact *f, lg_buf *study_now)
{
    const cJSON *m = e->m;
    const char *sp = lg_json_str(m, "study_path"), *sd = lg_json_str(m, "spec_digest"), *study = lg_json_str(m, "study");
    char want[65], hex[65];
    lg_buf path = LG_BUF_INIT;
    search_ctx s;
    char *name = NULL;
    int have, rc, err = 0;

    memset(&s, 0, sizeof s);
    lg_buf_clear(study_now);
    if (!sp || !sd)
        return 0;
    if (sp[0] == '/')
        err = lg_buf_puts(&path, sp);
    else
        err = lg_path_join(&path, lg_ledger_root(ev->lg), sp);
    if (err < 0)
        goto out;
    if (lg_path_exists(path.ptr) && lg_path_check_regular(path.ptr) < 0) { /* a FIFO or /dev/zero: never read (t7904) */
        lg_error_clear();
        err = fact_set(f, LG_EVIDENCE_STALE, "study file %s is not a regular file (run %.12s)", sp, e->info.run_id);
        goto out;
    }
    if ((have = recorded_meaning(m, want)) < 0) {
        err = have;
        goto out;
    }
    /* the recorded meaning must be the embedded spec's: a rewritten extra would
     * make old evidence fresh for a spec it never ran (red team 2, t7920) */
    if (have && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "spec"))) { /* only `ledger run` writes it, with the spec */
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "run %.12s records spec meaning sha256 %.12s but embeds no spec (a rewritten manifest): not "
                       "evidence",
                       e->info.run_id, want);
        goto out;
    }
    if (have) {
        if ((err = lg_spec_canonical_digest(cJSON_GetObjectItemCaseSensitive(m, "spec"), hex)) < 0)
            goto out;
        if (strcmp(hex, want) != 0) {
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "run %.12s records spec meaning sha256 %.12s but embeds a spec whose meaning is %.12s "
                           "(a rewritten manifest): not evidence",
                           e->info.run_id, want, hex);
            goto out;
        }
    }
    if (!have) { /* no embedded spec: the file's bytes are the spec */
        if (!lg_path_exists(path.ptr)) {
            err = fact_set(f, LG_EVIDENCE_STALE, "study file %s no longer exists (run %.12s)", sp, e->info.run_id);
            goto out;
        }
        if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (strcmp(hex, sd) != 0)
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "study file %s changed since run %.12s (spec sha256 %.12s, now %.12s): re-run it", sp,
                           e->info.run_id, sd, hex);
        else
            err = lg_buf_puts(study_now, path.ptr);
        goto out;
    }
    /* the recorded path first */
    if ((rc = study_file_digest(path.ptr, &name, hex)) < 0) {
        err = rc;
        goto out;
    }
    if (rc == 1 && name && study && !strcmp(name, study)) {
        if (strcmp(hex, want) == 0)
            err = lg_buf_puts(study_now, path.ptr);
        else
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "study file %s changed since run %.12s (spec meaning sha256 %.12s, now %.12s; the "
                           "description and formatting do not count): re-run it",
                           sp, e->info.run_id, want, hex);
        goto out;
    }
    /* moved or renamed: find the study by name and meaning */
    if (!study) {
        err = fact_set(f, LG_EVIDENCE_STALE, "study file %s no longer exists (run %.12s)", sp, e->info.run_id);
        goto out;
    }
    s.study = study;
    s.want = want;
    {
        const char *slash = strrchr(path.ptr, '/'), *root = lg_ledger_root(ev->lg);
        size_t rl = strlen(root);
        lg_buf dir = LG_BUF_INIT;
        /* the old folder and its children, only inside the repository (a manifest's study_path
         * is not trusted to send us scanning elsewhere) */
        if ((err = lg_buf_printf(&dir, "%.*s", slash ? (int)(slash - path.ptr) : 1, slash ? path.ptr : ".")) == 0 &&
            !strncmp(dir.ptr, root, rl) && dir.ptr[rl] == '/' && !strstr(dir.ptr + rl, "/../") &&
            !strstr(dir.ptr + rl, "/.."))
            err = search_dir(&s, dir.ptr, SEARCH_MAX_DEPTH - 1);
        lg_buf_release(&dir);
        if (err == 0 && !s.same.len && (err = lg_path_join(&dir, lg_ledger_root(ev->lg), "studies")) == 0)
            err = search_dir(&s, dir.ptr, 1);
        if (err == 0 && !s.same.len) /* anywhere in the repository, SEARCH_MAX_DEPTH folders deep */
            err = search_dir(&s, lg_ledger_root(ev->lg), 0);
        lg_buf_release(&dir);
        if (err < 0)
            goto out;
    }
    if (s.same.len)
        err = lg_buf_puts(study_now, s.same.ptr);
    else if (s.other.len)
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study %s (recorded as %s, now in %s) changed since run %.12s (spec meaning sha256 %.12s): re-run it",
                       study, sp, rel(ev, s.other.ptr), e->info.run_id, want);
    else if (lg_path_exists(path.ptr))
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study file %s changed since run %.12s (it no longer declares study '%s' as a JSON spec, and no "
                       "other study file with the recorded spec was found): re-run it",
                       sp, e->info.run_id, study);
    else
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study file %s no longer exists and no study file named '%s' with the recorded spec was found "
                       "(run %.12s)",
                       sp, study, e->info.run_id);
out:
    lg_free(name);
    lg_buf_release(&path);
    lg_buf_release(&s.same);
    lg_buf_release(&s.other);
    return err;
}

/* One study, one name, as `ledger run` enforces it (cli_check_study_name), but
 * at evidence time: when another run of the study was recorded from another
 * file that still exists and still declares the study with another meaning,
 * the study name is ambiguous and e is STALE. Without this, a run recorded
 * from a second file declaring the name (the reviewed file moved aside for
 * the run, then put back) was FRESH evidence for claims about the study
 * while the reviewed file said something else (red team 2, t7921). */
static int check_study_unique(lg_evidence_ctx *ev, const run_ent *e, run_fact *f)
{
    const char *sp = lg_json_str(e->m, "study_path"), *study = lg_json_str(e->m, "study");
    char want[65], hex[65];
    lg_buf path = LG_BUF_INIT;
    int have = 0, err = 0;
    size_t i;
    if (!sp || !study || (have = recorded_meaning(e->m, want)) <= 0)
        return have < 0 ? have : 0;
    for (i = 0; i < ev->nruns && err == 0 && f->status == LG_EVIDENCE_FRESH; i++) {
        run_ent *o = &ev->runs[i];
        const char *osp;
        char *name = NULL;
        int rc;
        if (o == e)
            continue;
        if ((err = ev_load_run(ev, o)) < 0)
            break;
        osp = lg_json_str(o->m, "study_path");
        if (!osp || !strcmp(osp, sp) || !str_same(lg_json_str(o->m, "study"), study))
            continue;
        if ((err = osp[0] == '/' ? lg_buf_puts(&path, osp) : lg_path_join(&path, lg_ledger_root(ev->lg), osp)) < 0)
            break;
        if (!lg_path_exists(path.ptr) || lg_path_check_regular(path.ptr) < 0) {
            lg_error_clear();
            lg_buf_clear(&path);
            continue;
        }
        if ((rc = study_file_digest(path.ptr, &name, hex)) < 0)
            err = rc;
        else if (rc == 1 && name && !strcmp(name, study) && strcmp(hex, want) != 0)
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "study name '%s' is declared by both %s (run %.12s) and %s (run %.12s) with different "
                           "specs: one study, one name",
                           study, sp, e->info.run_id, osp, o->info.run_id);
        lg_free(name);
        lg_buf_clear(&path);
    }
    lg_buf_release(&path);
    return err;
}

/* A path from a run's spec, resolved like engine/study.c does: relative to the
 * study file's folder (where it is now), an absolute one as it is. 1. */
static int resolve_beside(const char *study_file, const char *p, lg_buf *out)
{
    const char *slash = strrchr(study_file, '/');
    lg_buf_clear(out);
    if (p[0] == '/')
        return lg_buf_puts(out, p) < 0 ? LG_ENOMEM : 1;
    return lg_buf_printf(out, "%.*s%s%s", slash ? (int)(slash - study_file) : 0, study_file, slash ? "/" : "", p) < 0
               ? LG_ENOMEM
               : 1;
}

/* The input files whose digests a run recorded, in the order they are checked:
 * the data file (file sources only; the manifest's data_digest), the OOD file
 * (data.ood.path, any source; results.data.ood.sha256), and the transcoder
 * target files data.target.path (results.data.target.sha256) and
 * data.ood.target.path (results.data.ood.target_sha256; engine/transcoder.h). */
enum { IN_DATA, IN_OOD, IN_TARGET, IN_OOD_TARGET, IN_N };

/* Input file `which` of run e: 1 with its resolved path in out, *kind naming it
 * for a reason and *want the digest the run recorded (NULL: none recorded); 0
 * when the run read no such file; <0 on error. */
static int spec_input(const run_ent *e, const char *study_file, int which, lg_buf *out, const char **kind,
                      const char **want)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "spec"), "data");
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "results"), "data");
    const cJSON *ood = cJSON_GetObjectItemCaseSensitive(data, "ood"), *path = NULL;
    const char *src = lg_json_str(data, "source");
    switch (which) {
    case IN_DATA:
        *kind = "data file";
        *want = lg_json_str(e->m, "data_digest");
        if (!*want || !src || strcmp(src, "file") != 0)
            return 0;
        path = cJSON_GetObjectItemCaseSensitive(data, "path");
        break;
    case IN_OOD:
        *kind = "OOD data file";
        *want = lg_json_str(cJSON_GetObjectItemCaseSensitive(rd, "ood"), "sha256");
        path = cJSON_GetObjectItemCaseSensitive(ood, "path");
        break;
    case IN_TARGET:
        *kind = "target file";
        *want = lg_json_str(cJSON_GetObjectItemCaseSensitive(rd, "target"), "sha256");
        path = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(data, "target"), "path");
        break;
    default:
        *kind = "target file";
        *want = lg_json_str(cJSON_GetObjectItemCaseSensitive(rd, "ood"), "target_sha256");
        path = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ood, "target"), "path");
        break;
    }
    if (!cJSON_IsString(path) || !study_file[0])
        return 0;
    return resolve_beside(study_file, path->valuestring, out);
}

/* Whether an input file a run read is still the one it recorded: 0 with f left
 * FRESH when it is, 0 with f set STALE when it is gone, changed, or the run
 * recorded no digest of it (want NULL: it cannot vouch for the file); <0 on error. */
static int file_still_matches(const run_ent *e, run_fact *f, const char *kind, const char *path, const char *want)
{
    char hex[65];
    int err;
    if (!want)
        return fact_set(f, LG_EVIDENCE_STALE, "run %.12s read %s %s but recorded no digest of it", e->info.run_id,
                        kind, path);
    if (!lg_path_exists(path))
        return fact_set(f, LG_EVIDENCE_STALE, "%s %s no longer exists (run %.12s)", kind, path, e->info.run_id);
    if ((err = lg_sha256_file(path, hex, NULL)) < 0)
        return err;
    if (strcmp(hex, want) != 0)
        return fact_set(f, LG_EVIDENCE_STALE, "%s %s changed since run %.12s: re-run the study", kind, path,
                        e->info.run_id);
    return 0;
}

static int check_run(lg_evidence_ctx *ev, run_ent *e, int pinned, run_fact *f)
{
    lg_buf path = LG_BUF_INIT, study_now = LG_BUF_INIT;
    int err = 0, rc;

    f->status = LG_EVIDENCE_FRESH;
    /* --require-signed: a trusted signature and a chain link, before anything else (sign.h) */
    if (ev->require_signed) {
        const lg_keyring *kr;
        if ((err = ev_trust_keys(ev, &kr)) < 0)
            goto out;
        if ((rc = lg_sign_evidence_check(ev->lg, e->info.run_id, kr, &path)) < 0) {
            err = rc;
            goto out;
        }
        if (rc == 0) {
            err = fact_set(f, LG_EVIDENCE_MISSING, "%s (--require-signed)", path.ptr);
            goto out;
        }
        lg_buf_clear(&path);
    }
    /* A claim pinned to a run is judged on that run's own record: later edits
     * of the study or data files are not its business. */
    if (pinned)
        goto out;
    if ((err = check_study_file(ev, e, f, &study_now)) < 0 || f->status != LG_EVIDENCE_FRESH)
        goto out;
    if ((err = check_study_unique(ev, e, f)) < 0 || f->status != LG_EVIDENCE_FRESH)
        goto out;
    /* the input files: gone, changed, or read without a recorded digest make it STALE */
    for (int which = 0; which < IN_N; which++) {
        const char *kind, *want;
        if ((rc = spec_input(e, study_now.ptr ? study_now.ptr : "", which, &path, &kind, &want)) == 0)
            continue;
        if (rc < 0) {
            err = rc;
            goto out;
        }
        if ((err = file_still_matches(e, f, kind, path.ptr, want)) < 0 || f->status != LG_EVIDENCE_FRESH)
            goto out;
    }
    /* No artifact-presence check: claims read the manifest's results, never a
     * store object, so outputs kept only in the store (absent on a fresh clone)
     * do not make claims MISSING. Directives that read an artifact check it. */
out:
    lg_buf_release(&path);
    lg_buf_release(&study_now);
    return err;
}

int ev_run_fact_get(lg_evidence_ctx *ev, run_ent *e, int pinned, const run_fact **out)
{
    run_fact *f = &e->fact[pinned ? 1 : 0];
    int err;
    if (!f->done) {
        if ((err = check_run(ev, e, pinned, f)) < 0) {
            lg_free(f->reason);
            f->reason = NULL;
            f->status = LG_EVIDENCE_FRESH;
            return err;
        }
        f->done = 1;
    }
    *out = f;
    return 0;
}

/*
 * ledger.h - the git-backed ledger: init, open (discovery), lock, record a
 * run, list runs, load manifests, reindex.
 *
 * Layout (ledger/FORMAT.md), format 2:
 *   refs/heads/ledger   one commit per run, first-parent chain from a root
 *                       commit "ledger: init" whose tree holds only FORMAT
 *                       ("ledger-format 2"). Commit k (k >= 1) adds
 *                       runs/<k>-<id12>/{manifest.json, chain.json,
 *                       signature.json?} and files/<name> for outputs of at
 *                       most small_output_max bytes; it changes nothing else.
 *   .ledger/            at the work tree root, listed in .git/info/exclude:
 *     ledger.json       {"format": 2, "small_output_max": 1048576}
 *     store/            content-addressed objects (artifacts/store.h)
 *     index.sqlite      derived SQLite index (ledger/index.h)
 *     lock              writer lock (flock), holds the owner's pid
 * The branch is written only through the object database and
 * git_commit_create(update_ref): the user's HEAD, index and work tree are
 * never touched. A run's id is the SHA-256 of its canonical manifest bytes
 * (ledger/manifest.h): what the run is. Where it sits is chain.json
 * (lg_chain_link): its seq and the SHA-256 of the previous run's chain.json,
 * a hash chain independent of git's SHA-1 that sync can rebuild without
 * changing ids or signatures.
 *
 * The implementation is split by concern (ledger_int.h lists the files).
 */
#ifndef LG_LEDGER_H
#define LG_LEDGER_H

#include <cjson/cJSON.h>
#include <git2.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "artifacts/store.h"
#include "ledger/manifest.h"

#define LG_LEDGER_REF "refs/heads/ledger"
#define LG_LEDGER_DIR ".ledger"
#define LG_LEDGER_FORMAT 2
#define LG_FORMAT_TEXT "ledger-format 2\n" /* the FORMAT file of the root commit */
#define LG_FORMAT1_ADVICE                                                                                            \
    "this version reads ledger format 2 only (seq/prev moved from the manifest to chain.json); run "                \
    "'ledger init --migrate' to rewrite it (run ids change; format 1 signatures cannot carry over)"
#define LG_SMALL_OUTPUT_MAX_DEFAULT (1024u * 1024u)

typedef struct lg_ledger lg_ledger;

typedef struct {
    const char *name;       /* output name: relative path, subdirs allowed (lg_manifest_check_name) */
    const char *path;       /* file to store */
    const char *media_type; /* e.g. "application/json", or NULL (-> application/octet-stream) */
} lg_run_file;

typedef struct {
    const char *kind;        /* "run", "record", "report", "import", "export" */
    const char *study;       /* study name (required) */
    const char *study_path;  /* study file path relative to repo root, or NULL */
    const char *spec_digest; /* sha256 hex of the study file bytes, or NULL */
    const char *data_digest; /* sha256 hex identifying the input data, or NULL */
    const char *backend;     /* "cpu", "cuda", or NULL */
    const char *device;      /* human description, or NULL */
    const cJSON *spec;       /* parsed study spec to embed, or NULL */
    const cJSON *results;    /* evidence in the results format (manifest.h), or NULL */
    const cJSON *extra;      /* any other object to embed under "extra", or NULL */
    const lg_run_file *files;
    size_t nfiles;
    const char *status;      /* "ok" or "failed" (failed runs never count as evidence) */
    const char *sign_key_path; /* Ed25519 private key (PEM) to sign the run with, or NULL (ledger/sign.h):
                                  adds runs/<seq>-<id12>/signature.json to the same commit */
} lg_run_input;

typedef struct {
    int small_output_max_set; /* use small_output_max below instead of the default */
    uint64_t small_output_max;
} lg_init_opts;

typedef struct {
    int created_repo;   /* a git repository was created */
    int created_branch; /* refs/heads/ledger was created (or copied from origin/ledger) */
    int already;        /* the ledger existed already (init is idempotent) */
} lg_init_result;

/* Makes the git repository containing `dir` a ledger (creates a repository
 * at `dir` when there is none). Idempotent: re-running it recreates missing
 * parts (store, config, index) of an existing ledger, e.g. after a clone.
 * LG_EINPUT for a bare repository. *res may be NULL. */
int lg_ledger_init(const char *dir, const lg_init_opts *opts, lg_init_result *res);

/* Rewrites a format-1 ledger branch in format 2 (ledger_migrate.c): every
 * run id changes (fn, may be NULL, gets seq, old id, new id for each run);
 * format-1 signatures are dropped (counted); the old branch is kept at
 * refs/ledger-format1/ledger; ledger.json and the index are rewritten.
 * res->already = 1 (nothing done) for a format-2 ledger. LG_EINPUT for a
 * damaged format-1 chain (nothing changed). */
typedef struct {
    size_t runs, signatures_dropped;
    int already;
} lg_migrate_result;
typedef void (*lg_migrate_fn)(void *ctx, long seq, const char *old_id, const char *new_id);
int lg_ledger_migrate(const char *dir, lg_migrate_fn fn, void *ctx, lg_migrate_result *res);

/* Discovers the repository from start_dir upwards and opens its ledger.
 * LG_EINPUT when there is no git repository or no ledger ("run 'ledger
 * init'"). Free with lg_ledger_free. */
int lg_ledger_open(const char *start_dir, lg_ledger **out);
void lg_ledger_free(lg_ledger *lg);

const char *lg_ledger_root(lg_ledger *lg);       /* repo work dir, no trailing '/' */
const char *lg_ledger_dir(lg_ledger *lg);        /* <root>/.ledger */
const char *lg_ledger_index_path(lg_ledger *lg); /* <root>/.ledger/index.sqlite */
git_repository *lg_ledger_repo(lg_ledger *lg);   /* owned by lg */
lg_store *lg_ledger_store(lg_ledger *lg);        /* owned by lg */
uint64_t lg_ledger_small_output_max(lg_ledger *lg);

/* Where `--require-signed` takes its trusted keys from (ledger/sign.h,
 * lg_trust_root_load): never from the work tree under verification. All
 * NULL = only $LEDGER_TRUSTED_KEYS. The strings are not copied. */
typedef struct {
    const char *keys_file; /* --trusted-keys FILE */
    const char *keys_ref;  /* --keys-ref REV: ledger-trusted-keys of REV's git tree */
    const char *base_ref;  /* --base REF: gives a default keys ref (sign.h) */
} lg_trust_opts;
void lg_ledger_set_trust(lg_ledger *lg, const lg_trust_opts *t);
const lg_trust_opts *lg_ledger_trust(lg_ledger *lg); /* never NULL */

/* The index, read-write, opened on first use (owned by lg; do not close).
 * NULL with the last error set when the file is missing ("run 'ledger
 * reindex'") or unreadable. For read queries by other ledger/ code. */
sqlite3 *lg_ledger_db(lg_ledger *lg);

/* Writer lock. lg_ledger_record/reindex/gc take it themselves; a caller may
 * hold it around several steps (it nests). Waits up to `timeout_s` (set with
 * lg_ledger_set_lock_wait; default 30), calling `notify` once with a message
 * naming the lock and its holder; then LG_ELOCKED. */
typedef void (*lg_lock_notify_fn)(void *ctx, const char *msg);
void lg_ledger_set_lock_wait(lg_ledger *lg, double timeout_s, lg_lock_notify_fn notify, void *ctx);
int lg_ledger_lock(lg_ledger *lg);
void lg_ledger_unlock(lg_ledger *lg);

/* Records a run: stores every file, commits the manifest (and small files)
 * on the ledger branch, updates the index. run_id_out gets the 64-hex id.
 * Input errors (LG_EINPUT, LG_ENOTFOUND for a missing file) leave the ledger
 * unchanged (the store may keep objects, which gc removes). If the commit
 * landed but the index update failed, run_id_out is set and the error says
 * to run 'ledger reindex'. */
int lg_ledger_record(lg_ledger *lg, const lg_run_input *in, char run_id_out[65]);

/* One run as found in the tip tree of the ledger branch. */
typedef struct {
    long seq;
    char run_id[65];   /* SHA-256 of manifest.json's bytes */
    char dir[96];      /* "runs/<seq>-<id12>" */
    git_oid manifest;  /* blob */
    git_oid tree;      /* the run directory */
} lg_run_info;

/* All runs of the tip, sorted by seq. *out freed with lg_free. */
int lg_ledger_runs(lg_ledger *lg, lg_run_info **out, size_t *n);
/* The same for the tree of any ledger commit (verify --base, sync). */
int lg_ledger_runs_at(lg_ledger *lg, const git_oid *commit, lg_run_info **out, size_t *n);
/* Commits run directory tree run_tree as runs/<seq>-<run_id[:12]> on top of
 * commit *parent (its tree with that one entry put in), message msg, author
 * and committer sig (NULL: the repository's default, else "ledger"); *parent
 * becomes the new commit. No ref moves: history rewrites (sync's re-chaining,
 * migrate) build a chain of these and then move the branch. LG_EIO naming
 * `what` on a git failure. */
int lg_ledger_append_run_dir(lg_ledger *lg, git_oid *parent, long seq, const char *run_id, const git_oid *run_tree,
                             git_signature *sig, const char *msg, const char *what);
/* Resolves a run id, a unique prefix (>= 4 hex digits), or a sequence number
 * ("@N", or N with fewer than 4 digits) to a run. LG_ENOTFOUND
 * when none matches, LG_EINPUT when ambiguous or malformed. */
int lg_ledger_find_run(lg_ledger *lg, const char *ref, lg_run_info *out);
/* Reads and checks runs/<seq>-<id12>/chain.json of a run (manifest.h):
 * LG_ECHECK (message naming the run) when it is missing or malformed. */
int lg_ledger_chain_link(lg_ledger *lg, const lg_run_info *ri, lg_chain_link *out);
/* LG_EINPUT unless the tree of `commit` holds FORMAT "ledger-format 2"
 * ("format 1 ledger: ..." for a format-1 ledger). `where` names it. */
int lg_ledger_check_format_at(git_repository *repo, const git_oid *commit, const char *where);
/* Loads and parses a run's manifest (ref as in lg_ledger_find_run).
 * *out freed with cJSON_Delete; info (may be NULL) filled. raw (may be NULL)
 * receives the manifest bytes. */
int lg_ledger_load_manifest(lg_ledger *lg, const char *ref, cJSON **out, lg_run_info *info, lg_buf *raw);
/* Calls fn for every run, oldest first, with its parsed manifest; a non-zero
 * return stops the walk and is returned. */
typedef int (*lg_run_fn)(void *ctx, const lg_run_info *info, const cJSON *manifest);
int lg_ledger_foreach_run(lg_ledger *lg, lg_run_fn fn, void *ctx);

/* out = local path of the artifact with this digest. If the store lacks it
 * but a run holds it in the ledger tree (a small output), it is restored
 * into the store first. LG_ENOTFOUND when it is nowhere, LG_EINPUT for a
 * malformed digest. */
int lg_ledger_artifact_path(lg_ledger *lg, const char *sha256_hex, lg_buf *out);

/* Rebuilds .ledger/index.sqlite from the ledger branch alone (into a temp
 * file, then rename). Takes the lock. */
int lg_ledger_reindex(lg_ledger *lg);
/* Fills an open, empty index (e.g. ":memory:") from the ledger: used by
 * reindex and by verify's cross-check. */
int lg_ledger_build_index(lg_ledger *lg, sqlite3 *db);
/* The same from a pinned tip. Inside a transaction already open on db it
 * adds no BEGIN/COMMIT of its own (verify builds inside its snapshot). */
int lg_ledger_build_index_at(lg_ledger *lg, const git_oid *tip, sqlite3 *db);

/* The ledger chain, oldest first (entry 0 = root commit). */
typedef struct {
    git_oid commit;
    unsigned nparents;
    size_t n_added, n_removed, n_modified; /* run dirs vs the first parent (other top-level changes count as modified) */
    char added[96];   /* first added entry under runs/ ("" if none) */
    char changed[96]; /* first removed or modified entry ("" if none) */
} lg_chain_entry;
/* Walks refs/heads/ledger by first parents. *out freed with lg_free. */
int lg_ledger_chain(lg_ledger *lg, lg_chain_entry **out, size_t *n);
/* The same from a pinned tip commit (verify checks one snapshot). */
int lg_ledger_chain_at(lg_ledger *lg, const git_oid *tip, lg_chain_entry **out, size_t *n);
/* Hex of the ledger branch tip ("" when the branch is missing). */
int lg_ledger_tip(lg_ledger *lg, char hex_out[GIT_OID_HEXSZ + 1]);

/* Reads a blob into out (appended; at most max bytes, 0 = no cap). */
int lg_ledger_read_blob(lg_ledger *lg, const git_oid *oid, size_t max, lg_buf *out);
/* Parses "<seq>-<id12>" (a run directory name); 0 or LG_EINPUT. */
int lg_ledger_parse_dirname(const char *name, long *seq, char id12[13]);

/* Garbage collection: removes temp files and objects that no run of the
 * ledger references, both older than min_age_s (an object written by a run
 * still in progress is young). With dry_run nothing is removed. fn (may be
 * NULL) is called with what is (or would be) removed. */
typedef struct {
    size_t tmp_files, objects;
    uint64_t bytes;
} lg_gc_stats;
int lg_ledger_gc(lg_ledger *lg, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *what), void *ctx,
                 lg_gc_stats *stats);

#endif

/*
 * index.h - the SQLite index of the ledger (.ledger/index.sqlite).
 *
 * Derived data: every row comes from a manifest on the ledger branch, and
 * `ledger reindex` rebuilds the file from git alone. Journal mode WAL; the
 * schema version is PRAGMA user_version (LG_INDEX_SCHEMA). Schema (v1):
 *
 *   meta(key TEXT PRIMARY KEY, value TEXT)   -- 'tip' = ledger commit indexed last
 *   runs(run_id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind, study, study_path,
 *        spec_digest, data_digest, engine_version, ledger_version, code_commit,
 *        backend, device, host, status, created, commit_oid, manifest_sha256)
 *   conditions(run_id, condition, params_json)    -- params as canonical JSON
 *   params(run_id, condition, key, value)         -- value TEXT: strings as is,
 *        numbers "%.17g", booleans true/false, others canonical JSON, null NULL
 *   cells(run_id, condition, seed, status)
 *   samples(run_id, condition, unit, seed, seed_b, metric, value)
 *        -- unit in ('cell','pair','seed'); seed_b only for pairs (seed = seed_a);
 *        -- value REAL, NULL when the metric is null
 *   artifacts(run_id, name, sha256, size, media_type, in_tree)
 *
 * Only ledger/ code touches this (DESIGN.md section 2).
 */
#ifndef LG_INDEX_H
#define LG_INDEX_H

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "base/base.h"

#define LG_INDEX_SCHEMA 1

/* Opens (read-write, creating the schema when the file is new) or opens
 * read-only (SQLITE_OPEN_READONLY + PRAGMA query_only). A schema version
 * other than LG_INDEX_SCHEMA is LG_EINPUT ("run 'ledger reindex'").
 * A file holding a trigger or a view (ledger creates neither) is LG_ECHECK:
 * no reader runs on a doctored schema (verify names every difference with
 * lg_index_check_schema). Close *out with sqlite3_close. path may be
 * ":memory:" (read-write). */
int lg_index_open(const char *path, int readonly, sqlite3 **out);
/* Creates the tables in an empty database and sets user_version. */
int lg_index_create_schema(sqlite3 *db);

/* Inserts the rows of one run (no transaction of its own). `manifest` must
 * have passed lg_manifest_check; seq is the run's place (its chain.json).
 * commit_oid may be NULL. */
int lg_index_add_run(sqlite3 *db, const cJSON *manifest, long seq, const char *run_id, const char *manifest_sha256,
                     const char *commit_oid);

/* meta 'tip': the ledger commit the index reflects (hex), "" when unset. */
int lg_index_set_tip(sqlite3 *db, const char *tip_hex);
int lg_index_get_tip(sqlite3 *db, char tip_out[65]);

/* Runs a statement with no result rows; message names `what` on error. */
int lg_index_exec(sqlite3 *db, const char *sql, const char *what);

/* Compares every table of the database file at `actual_path` with the
 * `expected` connection (built from the ledger). For each differing row,
 * fn(ctx, table, run_id, "missing"|"unexpected", row_text) is called:
 * "missing" = in the ledger but not in the index, "unexpected" = in the index
 * but not in the ledger (a changed row gives one of each). Row multiplicity
 * counts. Returns the number of differences (>= 0) or an error. */
typedef void (*lg_index_diff_fn)(void *ctx, const char *table, const char *run_id, const char *kind,
                                 const char *row);
int lg_index_diff(sqlite3 *expected, const char *actual_path, lg_index_diff_fn fn, void *ctx);

/* Attaches the index file at path read-only to db as `schema`. */
int lg_index_attach(sqlite3 *db, const char *path, const char *schema);
/* lg_index_diff against an index already attached as `schema` (inside the
 * caller's read transaction: verify compares one snapshot). */
int lg_index_diff_attached(sqlite3 *expected, const char *schema, lg_index_diff_fn fn, void *ctx);

/* Compares `schema`.sqlite_master of db with the schema ledger creates: fn is
 * called for every table, index, view or trigger that ledger does not create,
 * whose definition differs, or that is missing. Returns the count or < 0. */
typedef void (*lg_index_schema_fn)(void *ctx, const char *type, const char *name, const char *what);
int lg_index_check_schema(sqlite3 *db, const char *schema, lg_index_schema_fn fn, void *ctx);

/* Prints (to a buffer) the result of a read-only query: a header line of
 * column names then one line per row, tab-separated (NULL as empty), or with
 * `json` an array of objects. LG_EINPUT for SQL errors and for statements
 * that are not read-only. */
int lg_index_query(sqlite3 *db, const char *sql, int json, lg_buf *out);

/* A params value as the params table stores it as text: a string as is, a
 * number as %.17g, true/false, anything else as canonical JSON. Evidence and
 * reports compare index rows with manifests through this same function. */
int lg_index_param_text(const cJSON *v, lg_buf *out);

#endif

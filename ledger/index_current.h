/*
 * index_current.h - the read-only fast path of `ledger log` and `ledger query`:
 * open the SQLite index WITHOUT initialising libgit2, when the index is
 * provably current (its meta 'tip' equals the tip of refs/heads/ledger, read
 * by our own small reader of git's loose ref / packed-refs files).
 *
 * Why: git_libgit2_init parses the system CA bundle (Debian's libgit2 is built
 * with mbedTLS) and opening a repository reads its config files; together
 * they were about 40% of a `log`/`query` start (bench/RESULTS.md). A command
 * that only reads the index needs neither once the tripwire has matched.
 *
 * Trust: exactly the full path's. The full path (lg_ledger_open +
 * lg_ledger_index_catch_up) trusts the index when its tip equals the branch
 * tip; the fast path trusts it under the same equality and nothing else.
 * Every other state (no index, a tip behind or off the branch, a symbolic or
 * odd ref, a worktree, a repository config that could move the work tree or
 * change the ref storage, a repository owned by someone else, any parse
 * surprise) makes it decline, and the caller takes the full path, which
 * behaves exactly as before (catch-up, the rewrite tripwire, its errors).
 * The fast path never prints, never writes, never repairs.
 */
#ifndef LG_INDEX_CURRENT_H
#define LG_INDEX_CURRENT_H

#include <sqlite3.h>

/* Looks for the repository from start_dir upward (as libgit2 does, without
 * crossing a filesystem) and, when every check passes, sets *out to the index
 * opened read-only (lg_index_open(..., 1, ...): schema version and the
 * trigger/view check included) and returns 1; close it with sqlite3_close.
 * Otherwise returns 0 with *out NULL and *why_not (may be NULL) set to a
 * static phrase saying why it declined: the caller then takes the full path.
 * Leaves no error set either way. The environment variable
 * LEDGER_FAST_READ=0 makes it always decline ("disabled"). */
int lg_index_open_current(const char *start_dir, sqlite3 **out, const char **why_not);

/* Our reader of a ref's value, exposed for the unit test: the 40 lowercase hex
 * digits of `refname` in git directory `gitdir` (loose file first, then
 * packed-refs), into hex_out. Returns 1 when found in the plain forms git
 * writes ("<40 hex>\n" loose; "<40 hex> <name>\n" once in packed-refs, not
 * followed by a peeled "^" line), 0 on anything else (missing, symbolic,
 * malformed, duplicated, too large) with *why_not set. */
int lg_ref_read_plain(const char *gitdir, const char *refname, char hex_out[41], const char **why_not);

#endif

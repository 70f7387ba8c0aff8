/*
 * verify_canon.h - every tree of the ledger tip is in git's canonical form.
 *
 * Why: a tree object written by hand (git hash-object -t tree --literally)
 * can hold an entry whose name contains a slash ("files/x" next to a real
 * files/ folder), ".." or ".git", two entries of the same name, or entries out
 * of order. Path lookups (libgit2's and git's `rev:path`) walk components and
 * never see such an entry, so verify and every reader read the honest bytes,
 * while `git checkout` / `git archive` of the branch write the hidden entry
 * over them: a reviewer reading the checked-out ledger sees bytes that were
 * never verified (tests/cli/t7902-tree-tricks.sh). A tree must hash to what
 * git itself would write for its entries.
 */
#ifndef LG_VERIFY_CANON_H
#define LG_VERIFY_CANON_H

#include <git2.h>

#include "ledger/ledger.h"
#include "ledger/verify.h"

/* Checks the tree of the commit `commit` and every tree below it: entry names are single
 * path components (not empty, ".", "..", ".git" in any case, no '/'), no name
 * twice, and the tree's id equals the hash of its canonical serialisation
 * (git's order, modes without leading zeros). Appends one error (area
 * "tree", subject = the tree's path) per bad tree; nothing is written.
 * Returns 0, or a negative code on an internal error. */
int lg_verify_canonical_trees(lg_ledger *lg, const git_oid *commit, lg_problems *ps);

#endif

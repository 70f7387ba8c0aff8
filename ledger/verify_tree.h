/*
 * verify_tree.h - checks that a run directory of the ledger tree holds
 * nothing but manifest.json, signature.json and files/<name> of its
 * in-tree outputs.
 */
#ifndef LG_VERIFY_TREE_H
#define LG_VERIFY_TREE_H

#include <cjson/cJSON.h>
#include <git2.h>

#include "ledger/ledger.h"
#include "ledger/problems.h"

/* Appends one problem (area "file", the given subject) per entry of the run
 * tree that the manifest does not list (or that is a link / submodule).
 * `manifest` must have passed lg_manifest_check. Returns 0, or LG_ENOMEM. */
int lg_verify_run_tree(lg_ledger *lg, const git_oid *run_tree, const cJSON *manifest, const char *subject,
                       lg_problems *ps);

#endif

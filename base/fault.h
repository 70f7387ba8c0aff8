/*
 * fault.h - test-only fault injection driven by environment variables.
 *
 * Reliability tests (tests/cli/t71*-t72*, tests/unit/test_fault*.c) use these
 * to reach failure windows that a random kill or a real full disk hits only
 * rarely. They are read once per process; with neither variable set every
 * hook is a plain pass-through (one branch). Never set them outside tests.
 *
 *   LEDGER_FAULT_KILL_AT=NAME[,NAME...]
 *       lg_fault_point(NAME) raises SIGKILL (the process dies as if killed
 *       from outside, no cleanup). Points: see lg_fault_point callers
 *       ("store:tmp-written", "record:stored", "record:committed",
 *       "record:indexing", "reindex:built").
 *   LEDGER_FAULT_WRITE_AFTER_BYTES=N
 *       lg_fault_write() lets the first N bytes (per process) through and
 *       then fails every write with ENOSPC, like a full disk. It wraps the
 *       writes of the artifact store and of lg_file_write_atomic (git and
 *       SQLite write on their own: use a small tmpfs for those).
 *
 * The hooks exist only in a build with LEDGER_TEST_HOOKS defined (CMake option
 * LEDGER_TEST_HOOKS: ON in tests/run.sh and in Debug/RelWithDebInfo builds,
 * OFF in a Release build). Without it, lg_fault_point is an empty inline
 * function, lg_fault_write is write(2), the environment is never read, and
 * LG_FAULT_HOOKS is 0 so tests can skip what needs the hooks.
 */
#ifndef LG_FAULT_H
#define LG_FAULT_H

#include <stddef.h>
#include <sys/types.h>

#ifdef LEDGER_TEST_HOOKS
#define LG_FAULT_HOOKS 1

/* Dies with SIGKILL when `name` is listed in LEDGER_FAULT_KILL_AT. */
void lg_fault_point(const char *name);
/* write(2), short or failing with ENOSPC once the LEDGER_FAULT_WRITE_AFTER_BYTES budget is spent. */
ssize_t lg_fault_write(int fd, const void *buf, size_t n);
/* For unit tests: set the write budget directly (-1 = unlimited) and re-read nothing from the environment. */
void lg_fault_set_write_budget(long long bytes);

#else
#include <unistd.h>
#define LG_FAULT_HOOKS 0

static inline void lg_fault_point(const char *name) { (void)name; }
static inline ssize_t lg_fault_write(int fd, const void *buf, size_t n) { return write(fd, buf, n); }
static inline void lg_fault_set_write_budget(long long bytes) { (void)bytes; }
#endif

#endif

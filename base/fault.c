/*
 * fault.c - test-only fault injection (see fault.h).
 *
 * The environment is read once (lazily, on the first hook call) into two
 * statics. The write budget is a plain counter: fault tests drive one
 * writer thread; the ledger writes its store objects and atomic files from
 * the thread that records. Without the variables the hooks cost one branch.
 */
#include "base/fault.h"

#ifdef LEDGER_TEST_HOOKS

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fault_loaded;
static const char *kill_at;       /* LEDGER_FAULT_KILL_AT or NULL */
static long long write_budget = -1; /* bytes still allowed; -1 = unlimited */

static void fault_load(void)
{
    const char *w;
    if (fault_loaded)
        return;
    fault_loaded = 1;
    kill_at = getenv("LEDGER_FAULT_KILL_AT");
    if (kill_at && !*kill_at)
        kill_at = NULL;
    w = getenv("LEDGER_FAULT_WRITE_AFTER_BYTES");
    if (w && *w) {
        char *end;
        long long v = strtoll(w, &end, 10);
        if (*end == '\0' && v >= 0)
            write_budget = v;
    }
}

void lg_fault_point(const char *name)
{
    const char *s;
    size_t n = strlen(name);
    fault_load();
    if (!kill_at)
        return;
    for (s = kill_at; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && strncmp(s, name, n) == 0) {
            raise(SIGKILL);
            pause(); /* not reached */
        }
        s += len + (e ? 1 : 0);
    }
}

ssize_t lg_fault_write(int fd, const void *buf, size_t n)
{
    ssize_t w;
    fault_load();
    if (write_budget < 0)
        return write(fd, buf, n);
    if (write_budget == 0 && n > 0) {
        errno = ENOSPC;
        return -1;
    }
    if ((long long)n > write_budget)
        n = (size_t)write_budget; /* a short write, as a filling disk gives */
    w = write(fd, buf, n);
    if (w > 0)
        write_budget -= w;
    return w;
}

void lg_fault_set_write_budget(long long bytes)
{
    fault_load();
    write_budget = bytes < 0 ? -1 : bytes;
}
#else
/* Built without LEDGER_TEST_HOOKS: the hooks are inline pass-throughs in fault.h. */
typedef int lg_fault_hooks_compiled_out;
#endif

#!/usr/bin/env python3
"""bench_cli.py - start time and peak RSS of ledger commands against `git --version`.

Each command is spawned REPS times, the commands interleaved (a, b, c, a, b, c, ...) so that
load changes on a shared machine hit all of them alike. Wall time is measured around
posix_spawn + wait4 (the same harness overhead for every command); peak RSS is the child's
ru_maxrss from wait4 (what /usr/bin/time -v reports as "Maximum resident set size").
Prints one JSON line per command: median and min wall ms, median max-RSS MB, and the ratio of
the median time to git --version's.

usage: bench_cli.py [--reps N] [--cwd DIR] LEDGER [LEDGER2 ...]
  commands per binary: --version, and with --cwd (a ledger repository) also log and
  query 'select 1'. Several binaries (e.g. before/after builds) are interleaved too.
"""
import json
import os
import statistics
import sys
import time


def run_once(argv, cwd):
    devnull = os.open(os.devnull, os.O_WRONLY)
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, dict(os.environ),
                          file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                        (os.POSIX_SPAWN_DUP2, devnull, 2)]) if cwd is None else None
    if pid is None:
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(cwd)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    os.close(devnull)
    return dt, ru.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def main():
    args = sys.argv[1:]
    reps, cwd = 30, None
    while args and args[0].startswith("--"):
        if args[0] == "--reps":
            reps = int(args[1]); args = args[2:]
        elif args[0] == "--cwd":
            cwd = args[1]; args = args[2:]
        else:
            sys.exit("bench_cli.py: unknown option " + args[0])
    if not args:
        sys.exit(__doc__)
    cmds = [["git", "--version"]]
    for ledger in map(os.path.abspath, args):
        cmds.append([ledger, "--version"])
        if cwd:
            cmds += [[ledger, "log"], [ledger, "query", "select 1"]]
    times = {i: [] for i in range(len(cmds))}
    rss = {i: [] for i in range(len(cmds))}
    for i, c in enumerate(cmds):  # warm the page cache, check exit codes
        _, _, rc = run_once(c, cwd)
        if rc != 0:
            sys.exit("bench_cli.py: %s exited %d" % (" ".join(c), rc))
    for _ in range(reps):
        for i, c in enumerate(cmds):
            dt, mb, _ = run_once(c, cwd)
            times[i].append(dt * 1000.0)
            rss[i].append(mb)
    git_med = statistics.median(times[0])
    for i, c in enumerate(cmds):
        med = statistics.median(times[i])
        print(json.dumps({"bench": "cli_start", "binary": c[0], "cmd": " ".join(
                              os.path.basename(c[0]) if j == 0 else c[j] for j in range(len(c))),
                          "reps": reps, "median_ms": round(med, 2), "min_ms": round(min(times[i]), 2),
                          "max_rss_mb": round(statistics.median(rss[i]), 1),
                          "ratio_to_git": round(med / git_med, 2)}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""bench_record.py - latency of `ledger record` of one small file.

  bench_record.py [--reps N] LEDGER [LEDGER2 ...]

For each binary: a fresh git repository + `ledger init` in a temp dir (on the same filesystem
as $TMPDIR), then N records of a new 3-byte file each (`ledger record -s bench fK.txt`), the
binaries interleaved run by run. Wall time is measured around spawn + wait (the whole command:
store the file with fsyncs, commit the manifest, update the index). Prints one JSON line per
binary: median, min and max ms, and the median of the children's user+sys CPU ms.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    args = sys.argv[1:]
    reps = 15
    if args[:1] == ["--reps"]:
        reps = int(args[1]); args = args[2:]
    if not args:
        sys.exit(__doc__)
    bins = [os.path.abspath(a) for a in args]
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for i, b in enumerate(bins):
            d = os.path.join(tmp, "r%d" % i)
            os.mkdir(d)
            subprocess.run(["git", "init", "-q", d], check=True)
            subprocess.run([b, "init"], cwd=d, check=True, env=env, stdout=subprocess.DEVNULL)
            dirs.append(d)
        wall = [[] for _ in bins]
        cpu = [[] for _ in bins]
        for k in range(reps + 1):
            for i, b in enumerate(bins):
                name = "f%d.txt" % k
                with open(os.path.join(dirs[i], name), "w") as f:
                    f.write("%d\n" % k)
                t0 = time.perf_counter()
                p = subprocess.Popen([b, "record", "-s", "bench", name], cwd=dirs[i], env=env,
                                     stdout=subprocess.DEVNULL)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                dt = time.perf_counter() - t0
                if p.returncode != 0:
                    sys.exit("bench_record: %s record exited %d" % (b, p.returncode))
                if k == 0:
                    continue  # the first record of a repository creates its folders
                wall[i].append(dt * 1000.0)
                cpu[i].append((ru.ru_utime + ru.ru_stime) * 1000.0)
        for i, b in enumerate(bins):
            print(json.dumps({"bench": "record", "binary": b, "reps": reps,
                              "median_ms": round(statistics.median(wall[i]), 1),
                              "min_ms": round(min(wall[i]), 1), "max_ms": round(max(wall[i]), 1),
                              "cpu_median_ms": round(statistics.median(cpu[i]), 1),
                              "load": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()

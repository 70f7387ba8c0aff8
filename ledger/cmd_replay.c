/*
 * cmd_replay.c - 'ledger replay RUN': re-execute a recorded run from its
 * embedded spec and recorded data, and compare every artifact digest and
 * metric bit for bit (ledger/replay.h). Nothing is recorded. Exit 0 when
 * everything matches, 1 naming every mismatch, 2 for a run that cannot be
 * replayed (kind, status, backend, missing or changed data file).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/replay.h"

typedef struct {
    int tty, quiet;
    double last;
} replay_progress;

static void show_progress(void *ctx, const lg_run_progress *p)
{
    replay_progress *rp = ctx;
    if (rp->quiet)
        return;
    if (!rp->tty) { /* not a terminal: one line per finished cell */
        if (isnan(p->loss))
            fprintf(stderr, "ledger replay: [%d/%d cells] %s seed %llu done\n", p->cells_done, p->cells_total,
                    p->condition, (unsigned long long)p->seed);
        return;
    }
    if (p->elapsed - rp->last < 0.2 && p->step != p->steps)
        return;
    rp->last = p->elapsed;
    if (isnan(p->loss))
        fprintf(stderr, "\r\033[K[%d/%d cells] %s seed %llu done  %.0fs", p->cells_done, p->cells_total, p->condition,
                (unsigned long long)p->seed, p->elapsed);
    else
        fprintf(stderr, "\r\033[K[%d/%d cells] %s seed %llu step %ld/%ld  %.0fs", p->cells_done, p->cells_total,
                p->condition, (unsigned long long)p->seed, p->step, p->steps, p->elapsed);
}

int cmd_replay(lg_cli *cli, int argc, char **argv)
{
    const char *backend = NULL, *seed_text = "0";
    int cells = 0, json = 0, quiet = 0, force = 0;
    const lg_opt opts[] = {
        {"cells", 'n', LG_OPT_INT, &cells, "N", "replay a deterministic sample of N cells (default: every cell)"},
        {"seed", 0, LG_OPT_STRING, &seed_text, "S", "sample seed: another S picks another sample (default 0)"},
        {"backend", 'b', LG_OPT_STRING, &backend, "NAME", "cpu or cuda (default: the backend the run was recorded on)"},
        {"force-backend", 0, LG_OPT_FLAG, &force, NULL,
         "replay on --backend even when the run was recorded on another (digests are then not comparable)"},
        {"quiet", 'q', LG_OPT_FLAG, &quiet, NULL, "no progress on stderr"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {ok, run_id, cells, mismatches, ...} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "replay", "ledger replay [options] RUN",
        "Re-executes a recorded run (kind \"run\") from the study spec embedded in its manifest and its\n"
        "recorded data (synthetic data is regenerated; a data file must exist and hash to the recorded\n"
        "data digest), on the backend it was recorded on, and compares bit for bit: the data digest,\n"
        "every artifact digest the replay produces, every metric of every replayed cell, and the pair\n"
        "and per-seed metrics of conditions whose seeds are all replayed. Nothing is recorded in the\n"
        "ledger. Exit 0 when everything matches, 1 naming every mismatch, 2 when the run cannot be\n"
        "replayed.\n\n"
        "--cells N replays N cells chosen deterministically from the run id and S: every cell\n"
        "(condition C, seed s) gets the key SHA-256(\"ledger-replay-v1\\n\" RUN_ID \"\\n\" S \"\\n\" C\n"
        "\"\\n\" s \"\\n\"); trained cells are taken in increasing key order (as hex), then random-init\n"
        "control cells, until N are chosen. On the CPU each replayed cell trains only its own seed,\n"
        "which gives the same bytes as the seed-batched run; on cuda a sampled cell brings every seed\n"
        "of its condition (batched as in the run).",
        opts, 1, 1, 0};
    lg_replay_opts ro;
    lg_replay_result res;
    lg_problems ps = LG_PROBLEMS_INIT;
    lg_ledger *lg = NULL;
    replay_progress rp = {cli_progress_enabled(), 0, -1};
    char **args;
    int nargs, rc, err = 0;
    long sv;
    size_t i, failed;

    memset(&res, 0, sizeof res);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (cells < 0) {
        fprintf(stderr, "ledger replay: --cells: must be >= 1 (or 0 for every cell)\n");
        return 2;
    }
    if (lg_parse_long(seed_text, &sv) < 0 || sv < 0) {
        fprintf(stderr, "ledger replay: --seed: '%s' is not a non-negative integer\n", seed_text);
        return 2;
    }
    if (backend && strcmp(backend, "cpu") != 0 && strcmp(backend, "cuda") != 0) {
        fprintf(stderr, "ledger replay: --backend: '%s' is not cpu or cuda\n", backend);
        return 2;
    }
    rp.quiet = quiet;
    memset(&ro, 0, sizeof ro);
    ro.n_cells = cells;
    ro.sample_seed = (uint64_t)sv;
    ro.backend = backend;
    ro.force_backend = force;
    ro.progress = show_progress;
    ro.progress_ctx = &rp;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if (!quiet)
        fprintf(stderr, "ledger replay: run %s: replaying%s (nothing is recorded)\n", args[0],
                cells ? " a sample of cells" : " every cell");
    err = lg_replay_run(lg, args[0], &ro, &res, &ps);
    if (rp.tty && !quiet)
        fprintf(stderr, "\r\033[K");
    if (err < 0)
        goto out;
    failed = lg_problems_failed(&ps);
    if (strcmp(res.backend, res.recorded_backend) != 0)
        fprintf(stderr, "ledger replay: note: replayed on %s, recorded on %s: digests are only comparable on the same "
                        "backend, so mismatches here are expected\n", res.backend, res.recorded_backend);
    if (json) {
        cJSON *o = cJSON_CreateObject(), *mm;
        char *text = NULL;
        if (!o || !cJSON_AddBoolToObject(o, "ok", failed == 0) || !cJSON_AddStringToObject(o, "run_id", res.run_id) ||
            !cJSON_AddStringToObject(o, "backend", res.backend) ||
            !cJSON_AddStringToObject(o, "recorded_backend", res.recorded_backend) ||
            !cJSON_AddNumberToObject(o, "cells_total", res.cells_total) ||
            !cJSON_AddNumberToObject(o, "cells_replayed", res.cells_replayed) ||
            !cJSON_AddNumberToObject(o, "conditions_full", res.conditions_full) ||
            !cJSON_AddNumberToObject(o, "artifacts_compared", (double)res.artifacts_compared) ||
            !cJSON_AddNumberToObject(o, "values_compared", (double)res.values_compared) ||
            !cJSON_AddItemToObject(o, "cells", cJSON_Duplicate(res.cells, 1)) ||
            !(mm = lg_problems_to_json(&ps)) || !cJSON_AddItemToObject(o, "mismatches", mm) || !(text = cJSON_Print(o))) {
            cJSON_Delete(o);
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
    } else {
        for (i = 0; i < ps.n; i++)
            printf("mismatch: %s: %s: %s\n", ps.v[i].area, ps.v[i].subject, ps.v[i].message);
        printf("replay of run %.12s on %s: %d of %d cells, %zu artifacts and %zu metric values compared: %s\n",
               res.run_id, res.backend, res.cells_replayed, res.cells_total, res.artifacts_compared,
               res.values_compared, failed ? "MISMATCH" : "all match");
    }
    err = failed ? LG_ECHECK : 0;
out:
    lg_replay_result_release(&res);
    lg_problems_release(&ps);
    if (err == LG_ECHECK)
        return 1;
    return err < 0 ? cli_fail("replay", err) : 0;
}

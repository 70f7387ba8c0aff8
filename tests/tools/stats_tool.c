/*
 * stats_tool.c - line-oriented driver of gates/stats.h for the SciPy
 * comparison (tests/py/test_stats_scipy.py).
 *
 * Reads one request per line from stdin and writes one line per request to
 * stdout: the results as %.17g numbers separated by spaces, or "error <msg>".
 * A request is "CMD ARGS... [; SAMPLE_A [; SAMPLE_B]]", values space-separated:
 *   desc ; x                          -> mean sd se min max median
 *   tci LEVEL ; x                     -> est lo hi
 *   betainc A B X                     -> I_x(a, b)
 *   tcdf T DF                         -> cdf sf
 *   tq P DF                           -> quantile
 *   ncdf Z                            -> cdf sf
 *   nq P                              -> quantile
 *   welch ALT ; a ; b                 -> t df p est
 *   paired ALT ; a ; b                -> t df p est
 *   mwu ALT METHOD ; a ; b            -> U1 p exact
 *   perm ALT RESAMPLES SEED ; a ; b   -> stat p exact
 *   boot METHOD LEVEL RESAMPLES SEED ; a [; b]      -> est lo hi
 *   bootreps METHOD LEVEL RESAMPLES SEED ; a [; b]  -> est lo hi rep_1 ... rep_B
 *   effect ; a ; b                    -> mean_diff cohen_d
 *   holm ; p...                       -> adjusted p...
 * ALT: two-sided | greater | less; METHOD (mwu): auto | exact | asymptotic;
 * METHOD (boot): percentile | bca.
 * Exit: 0 (per-line errors are reported in-line), 2 on a malformed line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "gates/stats.h"

#define MAXV 100000

static double va[MAXV], vb[MAXV], args[16];
static char *words[16];

static size_t parse_values(char *s, double *out)
{
    size_t n = 0;
    char *tok, *save = NULL;
    for (tok = strtok_r(s, " \t", &save); tok && n < MAXV; tok = strtok_r(NULL, " \t", &save))
        out[n++] = strtod(tok, NULL);
    return n;
}

static lg_alternative alt_of(const char *s)
{
    return !strcmp(s, "greater") ? LG_ALT_GREATER : !strcmp(s, "less") ? LG_ALT_LESS : LG_ALT_TWO_SIDED;
}

static void print_vals(const double *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        printf(i ? " %.17g" : "%.17g", v[i]);
    putchar('\n');
}

int main(void)
{
    static char line[4 << 20];
    while (fgets(line, sizeof(line), stdin)) {
        char *parts[3] = {NULL, NULL, NULL}, *p = line, *save = NULL, *tok;
        size_t na = 0, nb = 0, nw = 0, k;
        int err = 0;
        double r[8];
        const char *cmd;
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        for (k = 0; k < 3 && p; k++) {
            parts[k] = p;
            p = strchr(p, ';');
            if (p)
                *p++ = '\0';
        }
        for (tok = strtok_r(parts[0], " \t", &save); tok && nw < 16; tok = strtok_r(NULL, " \t", &save)) {
            words[nw] = tok;
            args[nw] = strtod(tok, NULL);
            nw++;
        }
        if (nw == 0) {
            fprintf(stderr, "stats_tool: empty command\n");
            return 2;
        }
        if (parts[1])
            na = parse_values(parts[1], va);
        if (parts[2])
            nb = parse_values(parts[2], vb);
        cmd = words[0];
        lg_error_clear();
        if (!strcmp(cmd, "desc")) {
            r[0] = lg_stats_mean(va, na);
            r[1] = lg_stats_sd(va, na);
            r[2] = lg_stats_se(va, na);
            r[3] = lg_stats_min(va, na);
            r[4] = lg_stats_max(va, na);
            r[5] = lg_stats_median(va, na);
            print_vals(r, 6);
        } else if (!strcmp(cmd, "tci")) {
            lg_interval ci;
            if (!(err = lg_stats_t_ci(va, na, args[1], &ci))) {
                r[0] = ci.est, r[1] = ci.lo, r[2] = ci.hi;
                print_vals(r, 3);
            }
        } else if (!strcmp(cmd, "betainc")) {
            r[0] = lg_stats_betainc(args[1], args[2], args[3]);
            print_vals(r, 1);
        } else if (!strcmp(cmd, "tcdf")) {
            r[0] = lg_stats_t_cdf(args[1], args[2]);
            r[1] = lg_stats_t_sf(args[1], args[2]);
            print_vals(r, 2);
        } else if (!strcmp(cmd, "tq")) {
            r[0] = lg_stats_t_quantile(args[1], args[2]);
            print_vals(r, 1);
        } else if (!strcmp(cmd, "ncdf")) {
            r[0] = lg_stats_norm_cdf(args[1]);
            r[1] = lg_stats_norm_sf(args[1]);
            print_vals(r, 2);
        } else if (!strcmp(cmd, "nq")) {
            r[0] = lg_stats_norm_quantile(args[1]);
            print_vals(r, 1);
        } else if (!strcmp(cmd, "welch") || !strcmp(cmd, "paired")) {
            lg_test_result t;
            if (cmd[0] == 'w')
                err = lg_stats_welch(va, na, vb, nb, alt_of(words[1]), &t);
            else if (na != nb)
                err = lg_error_set(LG_EINPUT, "unequal lengths");
            else
                err = lg_stats_paired_t(va, vb, na, alt_of(words[1]), &t);
            if (!err) {
                r[0] = t.stat, r[1] = t.df, r[2] = t.p, r[3] = t.est;
                print_vals(r, 4);
            }
        } else if (!strcmp(cmd, "mwu")) {
            lg_test_result t;
            lg_mwu_method m = !strcmp(words[2], "exact") ? LG_MWU_EXACT
                            : !strcmp(words[2], "asymptotic") ? LG_MWU_ASYMPTOTIC : LG_MWU_AUTO;
            if (!(err = lg_stats_mannwhitney(va, na, vb, nb, alt_of(words[1]), m, &t))) {
                r[0] = t.stat, r[1] = t.p, r[2] = t.exact;
                print_vals(r, 3);
            }
        } else if (!strcmp(cmd, "perm")) {
            lg_test_result t;
            if (!(err = lg_stats_permutation(va, na, vb, nb, alt_of(words[1]), (long)args[2],
                                             (uint64_t)args[3], &t))) {
                r[0] = t.stat, r[1] = t.p, r[2] = t.exact;
                print_vals(r, 3);
            }
        } else if (!strcmp(cmd, "boot") || !strcmp(cmd, "bootreps")) {
            lg_interval ci;
            double *reps = NULL;
            lg_boot_method m = !strcmp(words[1], "bca") ? LG_BOOT_BCA : LG_BOOT_PERCENTILE;
            long B = (long)args[3];
            if (!(err = lg_stats_bootstrap_reps(va, na, nb ? vb : NULL, nb, args[2], B,
                                                (uint64_t)args[4], m, &ci,
                                                cmd[4] ? &reps : NULL))) {
                r[0] = ci.est, r[1] = ci.lo, r[2] = ci.hi;
                if (reps) {
                    printf("%.17g %.17g %.17g ", r[0], r[1], r[2]);
                    print_vals(reps, (size_t)B);
                } else {
                    print_vals(r, 3);
                }
            }
            lg_free(reps);
        } else if (!strcmp(cmd, "effect")) {
            r[0] = lg_stats_mean_diff(va, na, vb, nb);
            r[1] = lg_stats_cohen_d(va, na, vb, nb);
            print_vals(r, 2);
        } else if (!strcmp(cmd, "holm")) {
            static double adj[MAXV];
            if (!(err = lg_stats_holm(va, na, adj)))
                print_vals(adj, na);
        } else {
            fprintf(stderr, "stats_tool: unknown command '%s'\n", cmd);
            return 2;
        }
        if (err)
            printf("error %s\n", lg_error_msg());
    }
    return fflush(stdout) == 0 ? 0 : 3;
}

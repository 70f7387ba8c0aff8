/*
 * consistency_obj.c - the consistency objective v2 (formulas in
 * consistency_obj.h).
 *
 * Why on the host: the term touches only the decoders (S x m x d floats, a
 * few MB at most for the studies it serves) and needs the Hungarian solver,
 * which is a host algorithm. One download of the decoders and one
 * read-add-write of their gradients per step is cheap beside the step's
 * GEMMs, and host code in float64, single-threaded in a fixed order, is
 * deterministic at any thread count without further care.
 *
 * Invariants: between two matchings the assignments are fixed, and in
 * consensus mode C is too, so the loss is a smooth function of the decoders
 * (away from cos = 0) whose gradient the finite differences of
 * tests/unit/test_consistency_obj.c check. `last_match` is the step number
 * of the last matching, so a gradient computation followed by the step at
 * the same step number matches once.
 */
#include "engine/consistency_obj.h"

#include <math.h>
#include <string.h>

#include "base/base.h"
#include "engine/hungarian.h"

struct lg_cobj {
    lg_cobj_config cfg;
    int S, m, d;
    int matched;   /* a matching exists */
    long last_match;
    int *assign;   /* pairwise: [S, S, m] row of s -> row of r; consensus: [S, m] C row -> row of s */
    double *C;     /* consensus [m, d] */
    double *unit;  /* scratch [2, m, d] normalised rows */
    double *cost;  /* scratch [m, m] */
    /* trainer hook scratch */
    float *hW;     /* [S, m, d] */
    float *hg;     /* [m, d] */
    double *hloss; /* [S] */
    double *hgrad; /* [S, m, d] */
    unsigned char *hact; /* [S] */
};

const char *lg_cobj_mode_name(int mode) { return mode == LG_COBJ_PAIRWISE ? "pairwise" : "consensus"; }

int lg_cobj_mode_parse(const char *s, int *out)
{
    if (s && strcmp(s, "consensus") == 0)
        *out = LG_COBJ_CONSENSUS;
    else if (s && strcmp(s, "pairwise") == 0)
        *out = LG_COBJ_PAIRWISE;
    else
        return lg_error_set(LG_EINPUT, "consistency mode \"%s\": must be \"consensus\" or \"pairwise\"", s ? s : "");
    return 0;
}

void lg_cobj_free(lg_cobj *o)
{
    if (!o)
        return;
    lg_free(o->assign);
    lg_free(o->C);
    lg_free(o->unit);
    lg_free(o->cost);
    lg_free(o->hW);
    lg_free(o->hg);
    lg_free(o->hloss);
    lg_free(o->hgrad);
    lg_free(o->hact);
    lg_free(o);
}

int lg_cobj_new(const lg_cobj_config *cfg, int S, int m, int d, lg_cobj **out)
{
    lg_cobj *o = NULL;
    size_t n_assign, md;
    *out = NULL;
    if (S < 2)
        return lg_error_set(LG_EINPUT, "train.consistency: needs at least 2 seeds trained together (got %d)", S);
    if (!(cfg->weight >= 0) || !isfinite(cfg->weight))
        return lg_error_set(LG_EINPUT, "train.consistency.weight: must be a finite number >= 0");
    if (cfg->every < 1)
        return lg_error_set(LG_EINPUT, "train.consistency.every: must be >= 1 (got %d)", cfg->every);
    if (cfg->mode != LG_COBJ_CONSENSUS && cfg->mode != LG_COBJ_PAIRWISE)
        return lg_error_set(LG_EINPUT, "train.consistency.mode: unknown mode %d", cfg->mode);
    if (m < 1 || d < 1 || m > LG_HUNGARIAN_MAX_N)
        return lg_error_set(LG_EINPUT, "train.consistency: d_sae %d outside [1, %d] (the Hungarian matching's limit)",
                            m, LG_HUNGARIAN_MAX_N);
    n_assign = cfg->mode == LG_COBJ_PAIRWISE ? (size_t)S * S * m : (size_t)S * m;
    if (n_assign > ((size_t)1 << 28))
        return lg_error_set(LG_EINPUT, "train.consistency: %d seeds x d_sae %d is too many assignments", S, m);
    md = (size_t)m * d;
    if (!(o = lg_calloc(1, sizeof(*o))))
        return LG_ENOMEM;
    o->cfg = *cfg;
    o->S = S;
    o->m = m;
    o->d = d;
    o->last_match = -1;
    if (!(o->assign = lg_malloc(n_assign * sizeof(int))) || !(o->unit = lg_malloc(2 * md * sizeof(double))) ||
        !(o->cost = lg_malloc((size_t)m * m * sizeof(double))) ||
        (cfg->mode == LG_COBJ_CONSENSUS && !(o->C = lg_calloc(md, sizeof(double))))) {
        lg_cobj_free(o);
        return LG_ENOMEM;
    }
    *out = o;
    return 0;
}

/* dst [m, d] = rows of src normalised (a zero row stays zero). */
static void normalise_rows(const float *src, int m, int d, double *dst)
{
    int i, k;
    for (i = 0; i < m; i++) {
        const float *a = src + (size_t)i * d;
        double *o = dst + (size_t)i * d, ss = 0;
        for (k = 0; k < d; k++)
            ss += (double)a[k] * a[k];
        ss = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (k = 0; k < d; k++)
            o[k] = a[k] * ss;
    }
}

/* cost [m, m] = |A_i . B_j| for unit rows A, B [m, d]. */
static void abs_cos_matrix(const double *A, const double *B, int m, int d, double *cost)
{
    int i, j, k;
    for (i = 0; i < m; i++)
        for (j = 0; j < m; j++) {
            const double *a = A + (size_t)i * d, *b = B + (size_t)j * d;
            double s = 0;
            for (k = 0; k < d; k++)
                s += a[k] * b[k];
            cost[(size_t)i * m + j] = fabs(s);
        }
}

static int is_on(const unsigned char *active, int s) { return !active || active[s]; }

int lg_cobj_match(lg_cobj *o, const float *W, const unsigned char *active)
{
    const int S = o->S, m = o->m, d = o->d;
    const size_t md = (size_t)m * d;
    double *U = o->unit, *V = o->unit + md;
    int s, r, i, j, k, err, first = -1;

    for (s = 0; s < S && first < 0; s++)
        if (is_on(active, s))
            first = s;
    if (first < 0)
        return lg_error_set(LG_EINPUT, "consistency: no active seed to match");
    if (o->cfg.mode == LG_COBJ_PAIRWISE) {
        for (s = 0; s < S; s++) {
            if (!is_on(active, s))
                continue;
            normalise_rows(W + s * md, m, d, U);
            for (r = s + 1; r < S; r++) {
                int *fw = o->assign + ((size_t)s * S + r) * m, *bw = o->assign + ((size_t)r * S + s) * m;
                if (!is_on(active, r))
                    continue;
                normalise_rows(W + r * md, m, d, V);
                abs_cos_matrix(U, V, m, d, o->cost);
                if ((err = lg_hungarian_solve_max(o->cost, m, m, fw, NULL)) < 0)
                    return lg_error_wrap("consistency: matching seeds %d and %d", s, r);
                for (i = 0; i < m; i++)
                    bw[fw[i]] = i;
            }
        }
    } else {
        double *C = o->C;
        if (!o->matched)
            normalise_rows(W + first * md, m, d, C);
        for (s = 0; s < S; s++) {
            if (!is_on(active, s))
                continue;
            normalise_rows(W + s * md, m, d, U);
            abs_cos_matrix(C, U, m, d, o->cost);
            if ((err = lg_hungarian_solve_max(o->cost, m, m, o->assign + (size_t)s * m, NULL)) < 0)
                return lg_error_wrap("consistency: matching seed %d to the consensus", s);
        }
        /* C_j <- normalise(sum_s sign(cos) u_hat), seeds in order */
        for (j = 0; j < m; j++) {
            double *acc = V + (size_t)j * d, ss = 0;
            memset(acc, 0, (size_t)d * sizeof(double));
            for (s = 0; s < S; s++) {
                const float *u;
                double dot = 0, nn = 0, f;
                if (!is_on(active, s))
                    continue;
                u = W + s * md + (size_t)o->assign[(size_t)s * m + j] * d;
                for (k = 0; k < d; k++) {
                    dot += C[(size_t)j * d + k] * u[k];
                    nn += (double)u[k] * u[k];
                }
                if (!(nn > 0))
                    continue;
                f = (dot > 0 ? 1.0 : dot < 0 ? -1.0 : 0.0) / sqrt(nn);
                for (k = 0; k < d; k++)
                    acc[k] += f * u[k];
            }
            for (k = 0; k < d; k++)
                ss += acc[k] * acc[k];
            if (ss > 0) {
                ss = 1.0 / sqrt(ss);
                for (k = 0; k < d; k++)
                    C[(size_t)j * d + k] = acc[k] * ss;
            }
        }
    }
    o->matched = 1;
    return 0;
}

/* One matched pair (u, b): returns 1 - |cos| and adds scale * d(1 - |cos|)/du
 * to g (when not NULL). */
static double pair_term(const float *u, const double *bd, const float *bf, int d, double scale, double *g)
{
    double dot = 0, uu = 0, bb = 0, c, nu, nb, sg;
    int k;
    for (k = 0; k < d; k++) {
        double b = bd ? bd[k] : (double)bf[k];
        dot += (double)u[k] * b;
        uu += (double)u[k] * u[k];
        bb += b * b;
    }
    if (!(uu > 0) || !(bb > 0))
        return 1.0; /* cos taken as 0, no gradient */
    nu = sqrt(uu);
    nb = sqrt(bb);
    c = dot / (nu * nb);
    sg = c > 0 ? 1.0 : c < 0 ? -1.0 : 0.0;
    if (g && sg != 0)
        for (k = 0; k < d; k++) {
            double b = bd ? bd[k] : (double)bf[k];
            g[k] -= scale * sg * (b / (nu * nb) - c * u[k] / uu);
        }
    return 1.0 - fabs(c);
}

int lg_cobj_eval(const lg_cobj *o, const float *W, const unsigned char *active, double *loss, double *grad)
{
    const int S = o->S, m = o->m, d = o->d;
    const size_t md = (size_t)m * d;
    const double w = o->cfg.weight;
    int s, r, i, n_on = 0;

    if (!o->matched)
        return lg_error_set(LG_EINPUT, "consistency: evaluated before the first matching");
    for (s = 0; s < S; s++)
        n_on += is_on(active, s);
    if (grad)
        memset(grad, 0, (size_t)S * md * sizeof(double));
    for (s = 0; s < S; s++) {
        double sum = 0, P, scale;
        loss[s] = 0;
        if (!is_on(active, s))
            continue;
        if (o->cfg.mode == LG_COBJ_PAIRWISE) {
            if (n_on < 2)
                continue; /* no other seed: no term */
            P = (double)(n_on - 1) * m;
            scale = w / P;
            for (r = 0; r < S; r++) {
                const int *pi = o->assign + ((size_t)s * S + r) * m;
                if (r == s || !is_on(active, r))
                    continue;
                for (i = 0; i < m; i++)
                    sum += pair_term(W + s * md + (size_t)i * d, NULL, W + r * md + (size_t)pi[i] * d, d, scale,
                                     grad ? grad + s * md + (size_t)i * d : NULL);
            }
        } else {
            const int *pi = o->assign + (size_t)s * m;
            P = (double)m;
            scale = w / P;
            for (i = 0; i < m; i++) /* consensus row i <-> seed row pi[i] */
                sum += pair_term(W + s * md + (size_t)pi[i] * d, o->C + (size_t)i * d, NULL, d, scale,
                                 grad ? grad + s * md + (size_t)pi[i] * d : NULL);
        }
        loss[s] = w * sum / P;
    }
    return 0;
}

const int *lg_cobj_assignment(const lg_cobj *o, int s, int r)
{
    if (!o->matched || s < 0 || s >= o->S)
        return NULL;
    if (o->cfg.mode == LG_COBJ_CONSENSUS)
        return r == -1 ? o->assign + (size_t)s * o->m : NULL;
    if (r < 0 || r >= o->S || r == s)
        return NULL;
    return o->assign + ((size_t)s * o->S + r) * o->m;
}

const double *lg_cobj_consensus(const lg_cobj *o)
{
    return o->matched && o->cfg.mode == LG_COBJ_CONSENSUS ? o->C : NULL;
}

long lg_cobj_last_match(const lg_cobj *o) { return o->last_match; }

/* ---- the trainer hook -------------------------------------------------------- */

static int cobj_hook(void *ctx, lg_trainer *t, lg_step_stats *st)
{
    lg_cobj *o = ctx;
    const lg_backend *be = lg_trainer_backend(t);
    const size_t md = (size_t)o->m * o->d;
    long step = -1;
    int s, err;
    size_t k;

    for (s = 0; s < o->S; s++) {
        float *W, *g;
        o->hact[s] = (unsigned char)lg_trainer_seed_active(t, s);
        if (!o->hact[s])
            continue;
        if (step < 0)
            step = lg_trainer_steps_done_multi(t, s);
        if ((err = lg_trainer_decoder(t, s, &W, &g)) < 0 || (err = be->download(be, o->hW + s * md, W, md)) < 0)
            return err;
    }
    if (step < 0)
        return 0;
    if (step % o->cfg.every == 0 && o->last_match != step) {
        if ((err = lg_cobj_match(o, o->hW, o->hact)) < 0)
            return err;
        o->last_match = step;
    }
    if ((err = lg_cobj_eval(o, o->hW, o->hact, o->hloss, o->hgrad)) < 0)
        return err;
    for (s = 0; s < o->S; s++) {
        float *W, *g;
        const double *gr = o->hgrad + s * md;
        if (!o->hact[s])
            continue;
        if ((err = lg_trainer_decoder(t, s, &W, &g)) < 0 || (err = be->download(be, o->hg, g, md)) < 0)
            return err;
        for (k = 0; k < md; k++)
            o->hg[k] += (float)gr[k];
        if ((err = be->upload(be, g, o->hg, md)) < 0)
            return err;
        st[s].consistency = o->hloss[s];
        st[s].loss += o->hloss[s];
    }
    return 0;
}

int lg_cobj_attach(lg_cobj *o, lg_trainer *t)
{
    lg_sae_config cfg;
    int err;
    if ((err = lg_trainer_config(t, &cfg, NULL)) < 0)
        return err;
    if (lg_trainer_n_seeds(t) != o->S || cfg.d_sae != o->m || cfg.d_in != o->d)
        return lg_error_set(LG_EINPUT, "consistency: objective for %d seeds of [%d x %d], trainer has %d of [%d x %d]",
                            o->S, o->m, o->d, lg_trainer_n_seeds(t), cfg.d_sae, cfg.d_in);
    if ((err = lg_cobj_backend_check(lg_trainer_backend(t))) < 0)
        return err;
    if (!o->hW) {
        const size_t md = (size_t)o->m * o->d;
        if (!(o->hW = lg_malloc((size_t)o->S * md * sizeof(float))) || !(o->hg = lg_malloc(md * sizeof(float))) ||
            !(o->hloss = lg_malloc((size_t)o->S * sizeof(double))) ||
            !(o->hgrad = lg_malloc((size_t)o->S * md * sizeof(double))) || !(o->hact = lg_malloc((size_t)o->S)))
            return LG_ENOMEM;
    }
    lg_trainer_set_extra(t, cobj_hook, o);
    return 0;
}

uint64_t lg_cobj_train_seed(double weight, uint64_t seed) { return weight > 0 ? seed ^ LG_COBJ_SEED_MIX : seed; }

int lg_cobj_backend_check(const lg_backend *be)
{
    if (!be || strcmp(be->name, "cpu") != 0)
        return lg_error_set(LG_EINPUT,
                            "train.consistency is not implemented on the %s backend (CPU only; run with --backend cpu)",
                            be ? be->name : "(none)");
    return 0;
}

/* test_consistency.c - cross-seed metrics on hand-computed dictionaries
 * (identical, permuted, sign-flipped, scaled, orthogonal), blockwise ==
 * unblocked bit for bit, determinism, the MCC cap flag, input errors, and a
 * one-seed null check (the multi-seed one with its derivation is in
 * tests/py/test_metrics_scipy.py). */
#include "base/base.h"
#include "engine/consistency.h"
#include "base/rng.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "tests/unit/check.h"

static float *random_dict(uint64_t seed, int m, int d) /* [m, d], N(0,1) entries */
{
    float *x = lg_malloc((size_t)m * d * sizeof(float));
    lg_rng r;
    size_t i;
    lg_rng_init(&r, seed, LG_STREAM_INIT);
    for (i = 0; x && i < (size_t)m * d; i++)
        x[i] = (float)lg_rng_normal(&r);
    return x;
}

static void test_identical(void)
{
    enum { M = 40, D = 16 };
    float *A = random_dict(1, M, D), ma[M], mb[M];
    lg_dict_sim s;
    int i, ok = 1;
    CHECK_OK(lg_dict_similarity(A, M, A, M, D, NULL, &s, ma, mb));
    CHECK_CLOSE(s.mmcs, 1.0, 1e-12, 0);
    CHECK_CLOSE(s.mmcs_ab, 1.0, 1e-12, 0);
    CHECK_CLOSE(s.mmcs_ba, 1.0, 1e-12, 0);
    CHECK(s.mcc_computed == 1);
    CHECK_CLOSE(s.mcc, 1.0, 1e-12, 0);
    CHECK(s.shared_frac == 1.0);
    for (i = 0; i < M; i++)
        ok &= fabs(ma[i] - 1.0f) < 1e-6 && fabs(mb[i] - 1.0f) < 1e-6;
    CHECK(ok);
    lg_free(A);
}

/* B = a permutation of A's rows, every third row negated, rows rescaled
 * (the metrics normalise first). Signed: the flipped rows' best match is not
 * themselves; abs: everything matches perfectly. */
static void test_permuted_flipped(void)
{
    enum { M = 30, D = 64 };
    float *A = random_dict(2, M, D), *B = lg_malloc(M * D * sizeof(float));
    float ma[M];
    lg_dict_sim s, s_abs;
    lg_sim_options opt;
    int64_t perm[M];
    lg_rng r;
    int i, k, n_flip = 0;
    lg_rng_init(&r, 3, LG_STREAM_STATS);
    for (i = 0; i < M; i++)
        perm[i] = i;
    lg_rng_shuffle_i64(&r, perm, M);
    for (i = 0; i < M; i++) {
        float sgn = i % 3 == 0 ? -1.0f : 1.0f;
        n_flip += i % 3 == 0;
        for (k = 0; k < D; k++)
            B[i * D + k] = sgn * (0.5f + (float)i) * A[perm[i] * D + k];
    }
    /* Permutation only (no flips): all ones. */
    {
        float *P = lg_malloc(M * D * sizeof(float));
        for (i = 0; i < M; i++)
            for (k = 0; k < D; k++)
                P[i * D + k] = 3.0f * A[perm[i] * D + k];
        CHECK_OK(lg_dict_similarity(A, M, P, M, D, NULL, &s, NULL, NULL));
        CHECK_CLOSE(s.mmcs, 1.0, 1e-12, 0);
        CHECK_CLOSE(s.mcc, 1.0, 1e-12, 0);
        lg_free(P);
    }
    lg_sim_options_init(&opt);
    opt.abs_cos = 1;
    CHECK_OK(lg_dict_similarity(A, M, B, M, D, &opt, &s_abs, NULL, NULL));
    CHECK_CLOSE(s_abs.mmcs, 1.0, 1e-12, 0);
    CHECK_CLOSE(s_abs.mcc, 1.0, 1e-12, 0);
    CHECK(s_abs.shared_frac == 1.0);

    CHECK_OK(lg_dict_similarity(A, M, B, M, D, NULL, &s, ma, NULL));
    /* Random rows in 64 dims: |cos| between distinct rows is far below 1, so a
     * flipped row's best signed match is well below 1 and the rest are 1. */
    {
        int ones = 0;
        for (i = 0; i < M; i++)
            ones += fabs(ma[i] - 1.0f) < 1e-6;
        CHECK(ones == M - n_flip);
    }
    CHECK(s.mmcs < 1.0 - 0.5 * n_flip / (double)M);
    /* Matched: the unflipped pairs stay matched at 1; each flipped row gets a
     * leftover flipped column (-1 for its own, or minus a random cosine, far
     * below 0.5 in 64 dims), so the mean loses at least n_flip / 2 / M, and
     * the shared fraction is exactly the unflipped share. */
    CHECK(s.mcc < 1.0 - 0.5 * n_flip / M);
    CHECK(s.mcc > (double)(M - n_flip) / M - 0.5 * n_flip / M);
    CHECK_CLOSE(s.shared_frac, (double)(M - n_flip) / M, 1e-15, 0);
    lg_free(A);
    lg_free(B);
}

/* Orthogonal: A = e_0..e_3, B = e_4..e_9 in 10 dims -> every cosine is 0. */
static void test_orthogonal(void)
{
    float A[4 * 10] = {0}, B[6 * 10] = {0};
    lg_dict_sim s;
    int i;
    for (i = 0; i < 4; i++)
        A[i * 10 + i] = 2.0f;
    for (i = 0; i < 6; i++)
        B[i * 10 + 4 + i] = -0.5f;
    CHECK_OK(lg_dict_similarity(A, 4, B, 6, 10, NULL, &s, NULL, NULL));
    CHECK(s.mmcs == 0.0 && s.mmcs_ab == 0.0 && s.mmcs_ba == 0.0);
    CHECK(s.mcc == 0.0 && s.shared_frac == 0.0);
    /* m1 > m2 takes the transposed path: same numbers. */
    CHECK_OK(lg_dict_similarity(B, 6, A, 4, 10, NULL, &s, NULL, NULL));
    CHECK(s.mmcs == 0.0 && s.mcc == 0.0);
}

/* A 2-D case by hand: A = {(1,0), (0,1)}, B = {(1,1)/sqrt2, (1,-1)... scaled,
 * (-1, 0)}. cos table: a0: [.7071, .7071, -1]; a1: [.7071, -.7071, 0].
 * mmcs_ab = .7071; mmcs_ba = (.7071 + .7071 + 0) / 3; matched (maximise):
 * a0->b1 + a1->b0 = 1.4142 -> mcc .7071; shared (> 0.7): 2/2. */
static void test_hand_2d(void)
{
    const float A[4] = {1, 0, 0, 1};
    const float B[6] = {2, 2, 3, -3, -1, 0};
    const double h = sqrt(0.5);
    lg_dict_sim s;
    lg_sim_options opt;
    float mb[3];
    CHECK_OK(lg_dict_similarity(A, 2, B, 3, 2, NULL, &s, NULL, mb));
    CHECK_CLOSE(s.mmcs_ab, h, 1e-15, 0);
    CHECK_CLOSE(s.mmcs_ba, 2 * h / 3, 1e-15, 0);
    CHECK_CLOSE(s.mmcs, 0.5 * (h + 2 * h / 3), 1e-15, 0);
    CHECK_CLOSE(s.mcc, h, 1e-15, 0);
    CHECK(s.shared_frac == 1.0);
    CHECK(mb[2] == 0.0f);
    /* threshold above cos 45deg: none shared; abs: b2 now matches a0 at 1. */
    lg_sim_options_init(&opt);
    opt.shared_threshold = 0.75;
    opt.abs_cos = 1;
    CHECK_OK(lg_dict_similarity(A, 2, B, 3, 2, &opt, &s, NULL, mb));
    CHECK_CLOSE(s.mmcs_ab, 0.5 * (1 + h), 1e-15, 0);
    CHECK_CLOSE(s.mmcs_ba, (2 * h + 1) / 3, 1e-15, 0);
    CHECK_CLOSE(s.mcc, 0.5 * (1 + h), 1e-15, 0); /* a0->b2 (1), a1->b0 or b1 */
    CHECK(s.shared_frac == 0.5);
}

static int same_sim(const lg_dict_sim *a, const lg_dict_sim *b)
{
    return memcmp(&a->mmcs, &b->mmcs, sizeof(double)) == 0 &&
           memcmp(&a->mmcs_ab, &b->mmcs_ab, sizeof(double)) == 0 &&
           memcmp(&a->mmcs_ba, &b->mmcs_ba, sizeof(double)) == 0 &&
           memcmp(&a->mcc, &b->mcc, sizeof(double)) == 0 &&
           memcmp(&a->shared_frac, &b->shared_frac, sizeof(double)) == 0 &&
           a->mcc_computed == b->mcc_computed;
}

/* Blocked == unblocked, bit for bit, for block sizes that split both the
 * 4-row unroll and the 256-column tiles unevenly; and run-to-run identity. */
static void test_blockwise(void)
{
    enum { M1 = 203, M2 = 517, D = 37 };
    float *A = random_dict(10, M1, D), *B = random_dict(11, M2, D);
    static float ma_ref[M1], mb_ref[M2], ma[M1], mb[M2];
    static const int blocks[] = {1, 3, 4, 5, 64, 202, 203, 1000};
    lg_dict_sim ref, s;
    lg_sim_options opt;
    size_t b;
    int abs_cos;
    for (abs_cos = 0; abs_cos <= 1; abs_cos++) {
        lg_sim_options_init(&opt);
        opt.abs_cos = abs_cos;
        opt.block_rows = M1; /* unblocked: one block of all rows */
        CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &ref, ma_ref, mb_ref));
        CHECK(ref.mcc_computed);
        for (b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
            opt.block_rows = blocks[b];
            CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &s, ma, mb));
            CHECK_MSG(same_sim(&s, &ref), "block_rows %d abs %d", blocks[b], abs_cos);
            CHECK_MSG(memcmp(ma, ma_ref, sizeof(ma)) == 0 && memcmp(mb, mb_ref, sizeof(mb)) == 0,
                      "block_rows %d abs %d: per-latent maxima differ", blocks[b], abs_cos);
        }
    }
    /* Swapping A and B swaps the directions exactly (same dot products, the
     * products are commutative and summed in the same k order). */
    lg_sim_options_init(&opt);
    CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &ref, NULL, NULL));
    CHECK_OK(lg_dict_similarity(B, M2, A, M1, D, &opt, &s, NULL, NULL));
    CHECK(s.mmcs_ab == ref.mmcs_ba && s.mmcs_ba == ref.mmcs_ab);
    CHECK_CLOSE(s.mcc, ref.mcc, 1e-14, 0);
    lg_free(A);
    lg_free(B);
}

/* Against a direct O(m1 m2 d) double-loop reference written independently. */
static void test_reference(void)
{
    enum { M1 = 50, M2 = 300, D = 20 }; /* M2 > 256: several column tiles */
    float *A = random_dict(20, M1, D), *B = random_dict(21, M2, D);
    lg_dict_sim s;
    double ab = 0, ba = 0, colmax[M2];
    int i, j, k;
    for (j = 0; j < M2; j++)
        colmax[j] = -2;
    for (i = 0; i < M1; i++) {
        double rmax = -2;
        for (j = 0; j < M2; j++) {
            double dot = 0, na = 0, nb = 0;
            for (k = 0; k < D; k++) {
                dot += (double)A[i * D + k] * B[j * D + k];
                na += (double)A[i * D + k] * A[i * D + k];
                nb += (double)B[j * D + k] * B[j * D + k];
            }
            dot /= sqrt(na) * sqrt(nb);
            rmax = dot > rmax ? dot : rmax;
            colmax[j] = dot > colmax[j] ? dot : colmax[j];
        }
        ab += rmax;
    }
    for (j = 0; j < M2; j++)
        ba += colmax[j];
    ab /= M1;
    ba /= M2;
    CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, NULL, &s, NULL, NULL));
    CHECK_CLOSE(s.mmcs_ab, ab, 1e-14, 0);
    CHECK_CLOSE(s.mmcs_ba, ba, 1e-14, 0);
    CHECK(s.mcc <= s.mmcs_ab + 1e-15); /* a matching cannot beat each row's max */
    lg_free(A);
    lg_free(B);
}

static void test_cap_and_errors(void)
{
    float A[6] = {1, 0, 0, 0, 1, 0}, B[6] = {0, 0, 1, 1, 1, 1};
    lg_dict_sim s;
    lg_sim_options opt;
    lg_sim_options_init(&opt);
    opt.mcc_max_cells = 3; /* 2 x 2 = 4 cells > 3: MCC skipped, MMCS still there */
    CHECK_OK(lg_dict_similarity(A, 2, B, 2, 3, &opt, &s, NULL, NULL));
    CHECK(s.mcc_computed == 0 && isnan(s.mcc) && isnan(s.shared_frac));
    CHECK_CLOSE(s.mmcs_ab, sqrt(1.0 / 3), 1e-15, 0);
    opt.mcc_max_cells = 4;
    CHECK_OK(lg_dict_similarity(A, 2, B, 2, 3, &opt, &s, NULL, NULL));
    CHECK(s.mcc_computed == 1);
    opt.mcc = 0;
    CHECK_OK(lg_dict_similarity(A, 2, B, 2, 3, &opt, &s, NULL, NULL));
    CHECK(s.mcc_computed == 0);

    B[0] = 0, B[1] = 0, B[2] = 0; /* zero row 0 of B */
    CHECK(lg_dict_similarity(A, 2, B, 2, 3, NULL, &s, NULL, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "dictionary B: row 0 has zero norm") != NULL);
    B[2] = 1;
    A[4] = NAN;
    CHECK(lg_dict_similarity(A, 2, B, 2, 3, NULL, &s, NULL, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "dictionary A: row 1, column 1") != NULL);
    A[4] = INFINITY;
    CHECK(lg_dict_similarity(A, 2, B, 2, 3, NULL, &s, NULL, NULL) == LG_EINPUT);
    A[4] = 1;
    CHECK(lg_dict_similarity(A, 0, B, 2, 3, NULL, &s, NULL, NULL) == LG_EINPUT);
    CHECK(lg_dict_similarity(A, 2, B, 2, 0, NULL, &s, NULL, NULL) == LG_EINPUT);
    lg_sim_options_init(&opt);
    opt.block_rows = 0;
    CHECK(lg_dict_similarity(A, 2, B, 2, 3, &opt, &s, NULL, NULL) == LG_EINPUT);
    {
        lg_truth_recovery rec;
        A[0] = 0;
        CHECK(lg_dict_recovery(A, 2, B, 2, 3, NULL, &rec, NULL) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "dictionary truth: row 0") != NULL);
        A[0] = 1;
    }
    /* Every allocation failing in turn is reported as LG_ENOMEM, never a crash. */
    {
        int n, got_ok = 0;
        for (n = 0; n < 20 && !got_ok; n++) {
            int rc;
            lg_alloc_fail_after(n);
            rc = lg_dict_similarity(A, 2, B, 2, 3, NULL, &s, NULL, NULL);
            lg_alloc_fail_after(-1);
            CHECK(rc == 0 || rc == LG_ENOMEM);
            got_ok = rc == 0;
        }
        CHECK(got_ok);
    }
}

/* Ground truth: the SAE holds 20 of the 25 true features (scaled, with a
 * little noise) plus 15 unrelated latents. */
static void test_recovery(void)
{
    enum { F = 25, M = 35, D = 48 };
    float *T = random_dict(30, F, D), *S = random_dict(31, M, D), *noise = random_dict(32, M, D);
    float mt[F];
    lg_truth_recovery rec;
    int i, k, found = 0;
    for (i = 0; i < 20; i++)
        for (k = 0; k < D; k++)
            S[(i + 7) * D + k] = 2.0f * T[i * D + k] + 0.01f * noise[i * D + k];
    CHECK_OK(lg_dict_recovery(T, F, S, M, D, NULL, &rec, mt));
    for (i = 0; i < F; i++)
        found += mt[i] > 0.99f;
    CHECK(found == 20);
    CHECK_CLOSE(rec.recovered_frac, 20.0 / F, 1e-15, 0);
    CHECK(rec.mmcs_truth > 20.0 * 0.99 / F && rec.mmcs_truth < (20.0 + 5 * 0.6) / F);
    CHECK(rec.mcc_computed && rec.mcc > 20.0 * 0.99 / F);
    CHECK_CLOSE(rec.shared_frac, 20.0 / F, 1e-15, 0);
    lg_free(T);
    lg_free(S);
    lg_free(noise);
}

/* Null check, one seed: random N(0,1) rows, d = 128, m = 1024, are uniform
 * unit directions after normalisation. The expectation of the per-row max of
 * 1024 cosines (cos^2 ~ Beta(1/2, 127/2)), integrated numerically in
 * tests/py/test_metrics_scipy.py: 0.282677 signed, 0.298793 absolute (HUSAI's
 * random PWMCC 0.298829). The seed-to-seed sd of the MMCS is ~6e-4 (same
 * file), so 0.003 is 5 sd. */
static void test_null_one_seed(void)
{
    enum { M = 1024, D = 128 };
    float *A = random_dict(100, M, D), *B = random_dict(101, M, D);
    lg_dict_sim s;
    lg_sim_options opt;
    lg_sim_options_init(&opt);
    opt.mcc = 0;
    CHECK_OK(lg_dict_similarity(A, M, B, M, D, &opt, &s, NULL, NULL));
    CHECK_CLOSE(s.mmcs, 0.282677, 0.003, 0);
    opt.abs_cos = 1;
    CHECK_OK(lg_dict_similarity(A, M, B, M, D, &opt, &s, NULL, NULL));
    CHECK_CLOSE(s.mmcs, 0.298793, 0.003, 0);
    printf("null (seed 100/101): abs mmcs %.6f\n", s.mmcs);
    lg_free(A);
    lg_free(B);
}

/* The GEMM path (cblas_dgemm tiles) against the exact path: sizes that
 * split both GEMM tile dimensions unevenly (1100 = 2 x 512 + 76 rows,
 * 4200 = 4096 + 104 columns), signed and |cos|. Same float64 cosines up to
 * the BLAS summation order: the means agree to 1e-13, per-latent maxima to a
 * float rounding; GEMM is bit-identical run to run; AUTO picks EXACT below
 * LG_SIM_EXACT_MAX_MACS (bit-identical to it) and GEMM above. */
static void test_gemm_path(void)
{
    enum { M1 = 1100, M2 = 4200, D = 24 };
    float *A = random_dict(30, M1, D), *B = random_dict(31, M2, D);
    float *ma = lg_malloc(M1 * sizeof(float)), *mb = lg_malloc(M2 * sizeof(float));
    float *ma2 = lg_malloc(M1 * sizeof(float)), *mb2 = lg_malloc(M2 * sizeof(float));
    float *ga = lg_malloc(M1 * sizeof(float)), *gb = lg_malloc(M2 * sizeof(float));
    lg_dict_sim ex, g, g2, au;
    lg_sim_options opt;
    int abs_cos, i, bad;
    CHECK(ma && mb && ma2 && mb2 && ga && gb);
    for (abs_cos = 0; abs_cos <= 1; abs_cos++) {
        lg_sim_options_init(&opt);
        opt.abs_cos = abs_cos;
        opt.mcc = 0;
        opt.method = LG_SIM_EXACT;
        CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &ex, ma, mb));
        opt.method = LG_SIM_AUTO; /* 1100 * 4200 * 24 MACs: below the threshold */
        CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &au, NULL, NULL));
        CHECK(same_sim(&au, &ex));
        opt.method = LG_SIM_GEMM;
        CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &g, ga, gb));
        CHECK_OK(lg_dict_similarity(A, M1, B, M2, D, &opt, &g2, ma2, mb2));
        CHECK(same_sim(&g, &g2));
        CHECK(memcmp(ga, ma2, M1 * sizeof(float)) == 0 && memcmp(gb, mb2, M2 * sizeof(float)) == 0);
        CHECK_CLOSE(g.mmcs_ab, ex.mmcs_ab, 1e-13, 0);
        CHECK_CLOSE(g.mmcs_ba, ex.mmcs_ba, 1e-13, 0);
        CHECK_CLOSE(g.mmcs, ex.mmcs, 1e-13, 0);
        CHECK(!g.mcc_computed && isnan(g.mcc));
        for (bad = 0, i = 0; i < M1; i++)
            bad += fabsf(ga[i] - ma[i]) > 1e-6f;
        for (i = 0; i < M2; i++)
            bad += fabsf(gb[i] - mb[i]) > 1e-6f;
        CHECK_MSG(bad == 0, "abs %d: %d per-latent maxima differ by more than 1e-6", abs_cos, bad);
    }
    /* MCC and shared fraction through the GEMM tiles (a small problem) */
    lg_sim_options_init(&opt);
    opt.method = LG_SIM_EXACT;
    CHECK_OK(lg_dict_similarity(A, 40, B, 60, D, &opt, &ex, NULL, NULL));
    opt.method = LG_SIM_GEMM;
    CHECK_OK(lg_dict_similarity(A, 40, B, 60, D, &opt, &g, NULL, NULL));
    CHECK(g.mcc_computed && ex.mcc_computed);
    CHECK_CLOSE(g.mcc, ex.mcc, 1e-13, 0);
    CHECK(g.shared_frac == ex.shared_frac);
    opt.method = 3;
    CHECK(lg_dict_similarity(A, 40, B, 60, D, &opt, &g, NULL, NULL) == LG_EINPUT &&
          strstr(lg_error_msg(), "method"));
    lg_free(A);
    lg_free(B);
    lg_free(ma);
    lg_free(mb);
    lg_free(ma2);
    lg_free(mb2);
    lg_free(ga);
    lg_free(gb);
    /* AUTO above the threshold is GEMM: 1024 * 1024 * 1025 > 2^30 MACs */
    A = random_dict(40, 1024, 1025);
    B = random_dict(41, 1024, 1025);
    lg_sim_options_init(&opt);
    opt.mcc = 0;
    CHECK_OK(lg_dict_similarity(A, 1024, B, 1024, 1025, &opt, &au, NULL, NULL));
    opt.method = LG_SIM_GEMM;
    CHECK_OK(lg_dict_similarity(A, 1024, B, 1024, 1025, &opt, &g, NULL, NULL));
    CHECK(same_sim(&au, &g));
    lg_free(A);
    lg_free(B);
}

/* lg_pair_metrics_compute is the two lg_dict_similarity calls a run (and an
 * import) records, bit for bit (it computes both from one pass over the
 * cosines), and _to_json writes exactly the recorded keys. Sizes: one tile,
 * and several row blocks and column tiles. */
static void pair_metrics_case(int m, int d)
{
    float *A = random_dict(11, m, d), *B = random_dict(12, m, d);
    float *maxcos = malloc((size_t)m * sizeof(float)), *ref_maxcos = malloc((size_t)m * sizeof(float));
    lg_sim_options so, ss;
    lg_dict_sim abs_ref, signed_ref;
    lg_pair_metrics pm;
    int mcc;
    CHECK(A && B && maxcos && ref_maxcos);
    if (!A || !B || !maxcos || !ref_maxcos)
        goto out;
    for (mcc = 0; mcc <= 1; mcc++) {
        cJSON *o = cJSON_CreateObject();
        lg_sim_options_init(&so);
        so.abs_cos = 1;
        so.shared_threshold = 0.4;
        so.mcc = mcc;
        ss = so;
        ss.abs_cos = 0;
        ss.mcc = 0;
        CHECK_OK(lg_dict_similarity(A, m, B, m, d, &so, &abs_ref, ref_maxcos, NULL));
        CHECK_OK(lg_dict_similarity(A, m, B, m, d, &ss, &signed_ref, NULL, NULL));
        CHECK_OK(lg_pair_metrics_compute(A, B, m, d, 0.4, mcc, &pm, maxcos));
        CHECK(pm.abs.mmcs == abs_ref.mmcs && pm.abs.mmcs_ab == abs_ref.mmcs_ab && pm.abs.mmcs_ba == abs_ref.mmcs_ba);
        CHECK(pm.mmcs_signed == signed_ref.mmcs && pm.abs.mcc_computed == mcc);
        CHECK(pm.mmcs_signed != pm.abs.mmcs); /* the signed maxima are not the |cos| ones */
        CHECK(!mcc || (pm.abs.mcc == abs_ref.mcc && pm.abs.shared_frac == abs_ref.shared_frac));
        CHECK(memcmp(maxcos, ref_maxcos, (size_t)m * sizeof(float)) == 0);
        CHECK(o != NULL);
        if (!o)
            continue;
        CHECK_OK(lg_pair_metrics_to_json(&pm, o));
        CHECK(cJSON_GetArraySize(o) == (mcc ? 6 : 4));
        CHECK(cJSON_GetObjectItem(o, "mmcs") && cJSON_GetObjectItem(o, "mmcs")->valuedouble == pm.abs.mmcs);
        CHECK(cJSON_GetObjectItem(o, "mmcs_signed") &&
              cJSON_GetObjectItem(o, "mmcs_signed")->valuedouble == pm.mmcs_signed);
        CHECK((cJSON_GetObjectItem(o, "mcc") != NULL) == mcc && (cJSON_GetObjectItem(o, "shared_frac") != NULL) == mcc);
        cJSON_Delete(o);
    }
    /* errors pass through */
    A[0] = NAN;
    CHECK(lg_pair_metrics_compute(A, B, m, d, 0.4, 1, &pm, NULL) == LG_EINPUT);
out:
    lg_free(A);
    lg_free(B);
    free(maxcos);
    free(ref_maxcos);
}

static void test_pair_metrics(void)
{
    pair_metrics_case(24, 10);
    pair_metrics_case(300, 40);
}

CHECK_MAIN(T(test_identical), T(test_permuted_flipped), T(test_orthogonal), T(test_hand_2d),
           T(test_blockwise), T(test_reference), T(test_cap_and_errors), T(test_recovery),
           T(test_null_one_seed), T(test_gemm_path), T(test_pair_metrics))

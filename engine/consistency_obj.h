/*
 * consistency_obj.h - the consistency objective v2 (`train.consistency`): a
 * term added to each seed's training loss that pulls its decoder rows towards
 * a reference built from the other seeds trained with it, matched one-to-one
 * by the Hungarian assignment on |cos|.
 *
 * Notation: S seeds trained together (the active ones, in seed order), seed
 * s's decoder rows u_{s,i} [d] (i < m = d_sae), w = weight, n = every.
 * cos(a, b) = a.b / (|a| |b|) in float64 (0 when a norm is 0).
 *
 * Matching, at every step t (0-based, before its update) with t % n == 0:
 *   pairwise:  for every pair s < r, pi_{s,r} = the assignment of s's rows to
 *              r's rows maximising sum_i |cos(u_{s,i}, u_{r,pi(i)})|
 *              (lg_hungarian_solve_max); pi_{r,s} = its inverse.
 *   consensus: a running consensus C [m, d] (unit rows, float64). At the
 *              first matching C = the first active seed's rows, normalised.
 *              Each seed is matched to C: pi_s(j) = the row of s given to
 *              consensus row j (maximising sum_j |cos(C_j, u_{s,pi_s(j)})|),
 *              then C_j <- normalise(sum_s sign(cos(C_j, u_{s,pi_s(j)}))
 *              u_{s,pi_s(j)} / |u_{s,pi_s(j)}|) over the active seeds in
 *              seed order (a row whose sum is 0 keeps its old value). C is
 *              carried from one matching to the next ("running"), which keeps
 *              its row labels stable.
 * Between matchings the assignments (and C) stay fixed.
 *
 * Loss of seed s at every step (added to its training loss):
 *   pairwise:  L_s = w / ((S-1) m) * sum_{r != s} sum_i (1 - |cos(u_{s,i}, u_{r,pi_{s,r}(i)})|)
 *   consensus: L_s = w / m * sum_j (1 - |cos(u_{s,pi_s(j)}, C_j)|)
 * i.e. w times the mean over the seed's matched pairs of (1 - |cos|).
 * The reference is held fixed (a stop-gradient): the other seeds' current
 * rows in pairwise mode, C in consensus mode. The gradient therefore flows
 * only into seed s's own decoder:
 *   dL_s/du = -(w/P) sign(c) (b / (|u| |b|) - c u / |u|^2),  c = cos(u, b),
 * summed over the matched pairs (u, b) of s, P = its number of pairs
 * (sign(0) = 0). The trainer then removes the parallel component, clips,
 * takes its Adam step and renormalises as for any other gradient (train.h).
 *
 * Determinism: all of it runs on the host, single-threaded, in seed and row
 * order, in float64 (the gradient is rounded to float once and added to the
 * decoder gradient); the Hungarian solver breaks ties by the lowest column.
 * So it gives the same bits at any thread count.
 *
 * State: the assignments and C live in the objective, not in the trainer's
 * saved state (train.h), so a trainer saved and reloaded mid-training would
 * need the same objective object to continue identically. `ledger run`
 * never does that: a stopped seed group is trained again from the start.
 */
#ifndef LG_CONSISTENCY_OBJ_H
#define LG_CONSISTENCY_OBJ_H

#include "engine/backend.h"
#include "engine/study.h"
#include "engine/train.h"

enum { LG_COBJ_CONSENSUS = 0, LG_COBJ_PAIRWISE = 1 };

#define LG_COBJ_DEFAULT_EVERY 50

typedef struct {
    double weight; /* w >= 0; 0 = off */
    int every;     /* n >= 1 */
    int mode;      /* LG_COBJ_* */
} lg_cobj_config;

/* "consensus" / "pairwise"; parse returns LG_EINPUT for anything else. */
const char *lg_cobj_mode_name(int mode);
int lg_cobj_mode_parse(const char *s, int *out);

typedef struct lg_cobj lg_cobj;

/* An objective for S seeds of m rows in d dimensions. LG_EINPUT when S < 2,
 * weight < 0 or not finite, every < 1, m above LG_HUNGARIAN_MAX_N, or the
 * pairwise assignment tables would exceed 2^28 entries. Free with
 * lg_cobj_free. */
int lg_cobj_new(const lg_cobj_config *cfg, int S, int m, int d, lg_cobj **out);
void lg_cobj_free(lg_cobj *o); /* accepts NULL */

/* ---- the host computation (what the trainer hook runs; tests call it) ----
 * W: [S, m, d] the decoders of all seeds (rows of inactive seeds unread);
 * active [S]: 1 = trained (NULL = all). */

/* Recompute the matching (and, consensus, C) from W. */
int lg_cobj_match(lg_cobj *o, const float *W, const unsigned char *active);
/* loss [S] (w times the mean of 1 - |cos|; 0 for inactive seeds) and, when
 * grad is not NULL, grad [S, m, d] (overwritten; zero for inactive seeds),
 * for the current matching. LG_EINPUT before the first match. */
int lg_cobj_eval(const lg_cobj *o, const float *W, const unsigned char *active, double *loss, double *grad);
/* The current matching: pairwise, seed s's row i -> seed r's row
 * (s != r); consensus (r = -1), consensus row j -> seed s's row. NULL
 * before the first match or for bad indexes. */
const int *lg_cobj_assignment(const lg_cobj *o, int s, int r);
/* The consensus C [m, d] (consensus mode after a match), else NULL. */
const double *lg_cobj_consensus(const lg_cobj *o);
/* Step number of the last matching, -1 before the first. */
long lg_cobj_last_match(const lg_cobj *o);

/* ---- on a trainer -------------------------------------------------------
 * Makes the objective part of t's loss (lg_trainer_set_extra): every step
 * and gradient computation downloads the active seeds' decoders, matches
 * when the step number is a multiple of `every` (once per step number),
 * adds L_s to st.loss and st.consistency and its gradient to grad W_dec.
 * t must have the objective's S, m and d. The objective must outlive t (or
 * be detached with lg_trainer_set_extra(t, NULL, NULL)). */
int lg_cobj_attach(lg_cobj *o, lg_trainer *t);

/* Whether a backend can train with the objective: the CPU one. LG_EINPUT
 * with a message naming the backend otherwise (CUDA: not implemented). */
int lg_cobj_backend_check(const lg_backend *be);

/* The Philox seed a cell of seed number `seed` initialises and draws its
 * batch order from: `seed` itself when weight is 0, else seed XOR
 * LG_COBJ_SEED_MIX. So the seeds of a condition trained with the objective
 * share neither initial weights nor batch order with any seed of the
 * weight-0 twin they are judged against (otherwise coupling to v2 seed j,
 * which would start like twin seed j, would leak twin seed j's
 * initialisation into every v2 seed and inflate their held-out MMCS). */
#define LG_COBJ_SEED_MIX 0x9e3779b97f4a7c15ull
uint64_t lg_cobj_train_seed(double weight, uint64_t seed);

/* ---- acceptance evidence: held-out-seed MMCS (engine/consistency_heldout.c)
 * Aligning seeds trivially raises their agreement with each other, so the
 * objective is judged against seeds trained WITHOUT it. The baseline
 * ("twin") of a condition c that names train.consistency is the first
 * trained condition of the study whose params equal c's except the
 * consistency_* keys and whose consistency weight is 0 (a weight-0 condition
 * is its own twin). For seed i of c:
 *   heldout_mmcs = mean over the twin's seeds j != i of MMCS(c's seed i, twin's seed j)
 *   heldout_mcc  = the same with the Hungarian-matched MCC (when computed)
 * The twin's seed j = i is left out, as in the weight-0 condition's own
 * mean (which must leave out j = i): for a weight-0 condition heldout_mmcs is
 * exactly its mmcs_mean (mcc_mean), so a claim compares heldout_mmcs across
 * consistency weights on the same footing. (The v2 seeds share no
 * initialisation or batch order with any twin seed: lg_cobj_train_seed.) */
/* Index of condition ci's twin, or -1 (no twin, or ci does not name
 * train.consistency, or is a random-init control). */
int lg_cobj_heldout_twin(const lg_study *s, int ci);
/* Seed i's held-out metrics into metrics, from the decoders [d_sae, d] of
 * the condition's seeds (Wc [n_seeds]) and its twin's (Wb [n_seeds]). */
int lg_cobj_heldout_seed(const lg_study *s, int ci, int d, const float *const *Wc, const float *const *Wb,
                         int i, cJSON *metrics);
/* After a run: adds heldout_mmcs / heldout_mcc to the "seeds" entries of
 * every condition of results that has a twin (both fully run), reading the
 * decoders from the weight files the run wrote under outdir. */
int lg_cobj_heldout_results(const lg_study *s, const char *outdir, int d, cJSON *results);

#endif

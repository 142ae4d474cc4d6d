/* The LSTM forward pass: x_t @ kernel + h @ recurrent_kernel, gates, state update.
 *
 * Why C and not Cython: the whole sequence runs in one OpenMP parallel region with a
 * barrier between steps (Cython has no barrier), so each thread keeps its slice of the
 * weights hot in its own cache for the whole sequence, and no thread pool (OpenBLAS's
 * or OpenMP's) wakes, sleeps or spins against another between steps.
 *
 * Work split: hidden units are cut into blocks of W lanes (one SIMD vector: 512 bits
 * where the CPU has AVX-512, else 256); thread p owns a contiguous range of blocks and
 * computes all four gates of its units for all samples, then the state update, while
 * the block is in registers. (Many samples on weights that fit half an L2, a->group > 0:
 * the threads split the samples instead, each group of one tile run through every step
 * by one thread with all the blocks, and never wait for each other.)
 * The weights are packed block-major (lstm_c/_packing.py),
 * kernel rows first, then recurrent rows:
 *     wp[blk][k][gate][lane] = [kernel; recurrent_kernel][k, gate * U + blk * W + lane]
 *
 * Two ways to do the input projection x_t @ kernel, both memory-flat in T:
 *   - fused (B >= a full tile of samples): a step is one pass over the D + U rows of a
 *     block, up to 6 samples per pass (the tile, lstm_c/_tile.h);
 *   - projected ahead (small B, where a tile over samples would be mostly empty and the
 *     stacked weights may not fit in L2): each thread computes x @ kernel + bias for its
 *     own blocks over the next TB steps (a tile over steps: full register reuse even for
 *     one sequence), then each step reads only the recurrent rows.
 *
 * h is double-buffered (threads read all of h_prev and write their blocks of h_next);
 * c is touched only by the thread that owns its units. Steps are separated by the
 * team's barrier (_team.h), which leaves thread 0 alone while another process holds a core.
 */
#ifndef LSTMC_RECURRENCE_H
#define LSTMC_RECURRENCE_H

#include <stddef.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTMC_HAVE_MXCSR 1
#endif

#include "_activations.h"
#include "_finish.h"
#include "_team.h"
#include "_tile.h"

/* One thread's home range of sample groups (lstmc_recurrence_groups_*), on a line of its
 * own: the next group to take and the end. */
typedef struct {
    ptrdiff_t next, end;
} __attribute__((aligned(64))) lstmc_group_range;
enum { LSTMC_GROUP_RANGE_BYTES = sizeof(lstmc_group_range) };

/* Flush denormals to zero inside the kernel (they cost up to ~100 cycles each), and
 * restore the caller's mode after. Per thread: MXCSR is thread-local. */
static inline unsigned int lstmc_enter_ftz(void) {
#ifdef LSTMC_HAVE_MXCSR
    unsigned int saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040);  /* FTZ | DAZ */
    return saved;
#else
    return 0;
#endif
}

static inline void lstmc_leave_ftz(unsigned int saved) {
#ifdef LSTMC_HAVE_MXCSR
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}

/* ---- One block width W: a step's end (_finish.h), a step, the input projection. ------- */
#define LSTMC_DEFINE_WIDTH(SFX, REAL, W)                                                       \
                                                                                              \
LSTMC_DEFINE_FINISH(SFX, REAL, W)   /* lstm_c/_finish.h */                                   \
                                                                                              \
/* x_t @ kernel + bias for processing steps [kb0, kb1) into the projection buffer, blocks */ \
/* [blk0, blk1), all samples. Rows of one sample at consecutive steps are D apart in x   */  \
/* (-D going backwards), so a tile runs over NS steps: full register reuse even at B=1.  */  \
/* A block's tiles prefetch the next block's kernel rows, as in a step below.            */  \
static void lstmc_project_##SFX##W(const lstmc_recurrence_args_##SFX *a, ptrdiff_t blk0,     \
                                   ptrdiff_t blk1, ptrdiff_t kb0, ptrdiff_t kb1) {            \
    const ptrdiff_t D = a->D, ld_x = a->go_backwards ? -D : D, row = a->B * 4 * W;            \
    const ptrdiff_t kernel_lines = D * 4 * W * sizeof(REAL) / 64, NSMAX = LSTMC_TILE_SAMPLES; \
    const ptrdiff_t tiles = a->B * ((kb1 - kb0 + NSMAX - 1) / NSMAX);                         \
    ptrdiff_t blk, b, kk, ns, tile, lines;                                                    \
    for (blk = blk0; blk < blk1; blk++) {                                                     \
        const REAL *w_in = a->wp + blk * (D + a->U) * 4 * W;                                  \
        const REAL *bias = a->bias != NULL ? a->bias + blk * 4 * W : NULL;                    \
        const REAL *next = a->prefetch && blk + 1 < blk1 ? w_in + (D + a->U) * 4 * W : NULL;  \
        tile = 0;                                                                             \
        for (b = 0; b < a->B; b++)                                                            \
            for (kk = 0; kk < kb1 - kb0; kk += ns, tile++) {                                  \
                const ptrdiff_t k = kb0 + kk, t = a->go_backwards ? a->T - 1 - k : k;         \
                const char *prefetch = lstmc_prefetch_share(next, kernel_lines, tile, tiles, &lines); \
                ns = lstmc_tile_size(kb1 - kb0 - kk, NSMAX);                                  \
                lstmc_tile_##SFX##W(ns, bias, 0, w_in, a->x + (b * a->T + t) * D, ld_x, D,     \
                                    NULL, NULL, 0, 0,                                         \
                                    a->projection + (blk * a->TB + kk) * row + b * 4 * W,     \
                                    row, W, prefetch, lines);                                 \
            }                                                                                 \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* One step for this thread's blocks [blk0, blk1) and all samples; kk is the step's row  */  \
/* in the projection buffer when the input was projected ahead. Odd steps visit the      */  \
/* blocks in reverse: the blocks a step used last are still in L2 when the next one      */  \
/* starts, where a fixed order would evict each block just before its turn when a        */  \
/* thread's weights are a little larger than L2 (LSTM(256) on one core: 1 MB).           */  \
/* When a thread's weights are larger than L2 (a->prefetch) and the input is fused with  */  \
/* several tiles per block, a block's tiles also pull the next block's weights into L2,  */  \
/* each its share: otherwise they come from L3 or memory (LSTM(512) in float64: 16 MB)   */  \
/* while the next block's first tile waits (big on one thread: float64 -10%, float32     */  \
/* -4%; 1.4-1.5x L2: med in float64 on one thread, big on two, -4 to -6%). Weights that  */  \
/* fit gain nothing from it.                                                             */  \
/* With the input projected ahead a step is bound by reading the recurrent rows, so     */  \
/* float64 reads them in float32 when every one is a float32 value (a->rec_single: a    */  \
/* float32 model run in float64), half the bytes for the same products and sums.        */  \
/* Spread (a->spread = S, one sample): the steps are projected in batches of S, batch n  */  \
/* over the S steps of batch n - 1, each taking a slice of the kernel rows with its own  */  \
/* recurrent ones (the spread tile); the projection buffer holds two batches, the one    */  \
/* read and the one built. Which slice a step takes depends on k alone, so whichever     */  \
/* thread runs a block runs its slice, also across a fall-back or a regroup.            */  \
static void lstmc_step_##SFX##W(const lstmc_recurrence_args_##SFX *a, ptrdiff_t blk0,        \
                                ptrdiff_t blk1, ptrdiff_t k, ptrdiff_t kk, const REAL *h_in,  \
                                const REAL *h_prev, REAL *h_next) {                           \
    enum { NSMAX = LSTMC_TILE_SAMPLES };                                                      \
    const ptrdiff_t t = a->go_backwards ? a->T - 1 - k : k, D = a->D, U = a->U;               \
    /* spread: the batch built (its steps, none past the call's last; its rows in the    */ \
    /* buffer; its input from row d0), and this step's slice [d0, d1) of the kernel rows  */ \
    /* and which gates: all four, or past LSTMC_TILE_SAMPLES steps two (S even), the      */ \
    /* first S / 2 slices gates i and f, the others g and o                                */ \
    ptrdiff_t spread_ns = 0, spread_row = 0, slice = 0, d0 = 0, d1 = 0;                       \
    int spread_gates = 4, spread_g0 = 0;                                                      \
    const ptrdiff_t spread_ld_x = a->go_backwards ? -D : D;  /* x rows of later steps */     \
    const REAL *spread_x = NULL;                                                              \
    if (a->spread > 0) {                                                                      \
        const ptrdiff_t S = a->spread, batch = (k - a->k_begin) / S + 1;                      \
        const ptrdiff_t first = a->k_begin + batch * S;                                       \
        ptrdiff_t slices = S;  /* of each gate group's rows */                                \
        spread_ns = a->k_end - first < S ? a->k_end - first : S;                              \
        spread_row = batch % 2 * S;                                                           \
        slice = (k - a->k_begin) % S;                                                         \
        if (S > LSTMC_TILE_SAMPLES) {                                                         \
            spread_gates = 2;                                                                 \
            slices = S / 2;                                                                   \
            spread_g0 = slice < slices ? 0 : 2;                                               \
            slice %= slices;                                                                  \
        }                                                                                     \
        d0 = D * slice / slices;                                                              \
        d1 = D * (slice + 1) / slices;                                                        \
        if (spread_ns > 0)                                                                    \
            spread_x = a->x + (a->go_backwards ? a->T - 1 - first : first) * D + d0;          \
    }                                                                                         \
    /* blocks finished together: several when one tile holds every sample */                  \
    const ptrdiff_t chunk = a->B <= NSMAX ? LSTMC_CHUNK : 1;                                  \
    const ptrdiff_t block_lines = (D + U) * 4 * W * sizeof(REAL) / 64;                        \
    const ptrdiff_t tiles = (a->B + NSMAX - 1) / NSMAX;                                       \
    ptrdiff_t j, q, nb, b0, ns, tile, lines, blks[LSTMC_CHUNK];                               \
    REAL acc[LSTMC_CHUNK * NSMAX * 4 * W] LSTMC_ON_A_LINE;                                    \
    for (j = blk0; j < blk1; j += nb) {                                                       \
        nb = blk1 - j < chunk ? blk1 - j : chunk;                                             \
        for (q = 0; q < nb; q++) blks[q] = k % 2 ? blk0 + blk1 - 1 - (j + q) : j + q;         \
        /* the block after this one, in this step's order (chunk == 1: nb == 1) */            \
        const REAL *next = a->prefetch && chunk == 1 && a->projection == NULL && j + 1 < blk1 \
            ? a->wp + (k % 2 ? blk0 + blk1 - 2 - j : j + 1) * (D + U) * 4 * W : NULL;         \
        for (b0 = 0, tile = 0; b0 < a->B; b0 += ns, tile++) {                                 \
            const char *prefetch = lstmc_prefetch_share(next, block_lines, tile, tiles, &lines); \
            ns = lstmc_tile_size(a->B - b0, NSMAX);                                           \
            for (q = 0; q < nb; q++) {                                                        \
                const ptrdiff_t blk = blks[q];                                                \
                const REAL *w_in = a->wp + blk * (D + U) * 4 * W, *w_rec = w_in + D * 4 * W;  \
                const REAL *projected = a->projection != NULL                                 \
                    ? a->projection + ((blk * a->TB + kk) * a->B + b0) * 4 * W : NULL;       \
                if (ns == 1 && q + 1 < nb && spread_ns == 0) {                                \
                    /* one sample: this block and the next side by side (the pair tile) */    \
                    const ptrdiff_t blk_1 = blks[q + 1];                                      \
                    const REAL *w_in_1 = a->wp + blk_1 * (D + U) * 4 * W;                     \
                    const REAL *w_rec_1 = w_in_1 + D * 4 * W;                                 \
                    const REAL *projected_1 = projected != NULL                               \
                        ? projected + (blk_1 - blk) * a->TB * a->B * 4 * W : NULL;            \
                    REAL *out = acc + q * W;                                                  \
                    if (projected != NULL && a->rec_single != NULL)                           \
                        lstmc_pair_##SFX##s##W(projected, projected_1, NULL, NULL, NULL, 0,   \
                                               a->rec_single + blk * U * 4 * W,               \
                                               a->rec_single + blk_1 * U * 4 * W, h_in + b0 * U, U, \
                                               out, out + W, nb * W);                         \
                    else if (projected != NULL)                                               \
                        lstmc_pair_##SFX##W(projected, projected_1, NULL, NULL, NULL, 0, w_rec, \
                                            w_rec_1, h_in + b0 * U, U, out, out + W, nb * W); \
                    else                                                                      \
                        lstmc_pair_##SFX##W(a->bias != NULL ? a->bias + blk * 4 * W : NULL,   \
                                            a->bias != NULL ? a->bias + blk_1 * 4 * W : NULL, \
                                            w_in, w_in_1, a->x + (b0 * a->T + t) * D, D,      \
                                            w_rec, w_rec_1, h_in + b0 * U, U, out, out + W, nb * W); \
                    q++;                                                                      \
                    continue;                                                                 \
                }                                                                             \
                if (projected != NULL && spread_ns > 0) {                                     \
                    /* its gates, and its slice of the batch built (from the bias at first) */ \
                    const REAL *bias = a->bias != NULL ? a->bias + blk * 4 * W : NULL;        \
                    const REAL *w_slice = w_in + d0 * 4 * W;                                  \
                    REAL *built = a->projection + (blk * a->TB + spread_row) * 4 * W;         \
                    if (a->rec_single != NULL)                                                \
                        lstmc_spread_##SFX##s##W(spread_ns, spread_gates, projected,          \
                                                 a->rec_single + blk * U * 4 * W, h_in, U,    \
                                                 acc + q * W, nb * W, w_slice, spread_g0,     \
                                                 spread_x, spread_ld_x, d1 - d0, slice == 0,  \
                                                 bias, built, 4 * W);                         \
                    else                                                                      \
                        lstmc_spread_##SFX##W(spread_ns, spread_gates, projected, w_rec, h_in, U, \
                                              acc + q * W, nb * W, w_slice, spread_g0, spread_x, \
                                              spread_ld_x, d1 - d0, slice == 0, bias, built,   \
                                              4 * W);                                         \
                } else if (projected != NULL && a->rec_single != NULL)                        \
                    lstmc_tile_##SFX##s##W(ns, projected, 4 * W, NULL, NULL, 0, 0,             \
                                           a->rec_single + blk * U * 4 * W, h_in + b0 * U, U, U, \
                                           acc + q * ns * W, W, nb * ns * W, NULL, 0);        \
                else if (projected != NULL)                                                   \
                    lstmc_tile_##SFX##W(ns, projected, 4 * W, NULL, NULL, 0, 0, w_rec,         \
                                        h_in + b0 * U, U, U, acc + q * ns * W, W, nb * ns * W, \
                                        NULL, 0);                                             \
                else                                                                          \
                    lstmc_tile_##SFX##W(ns, a->bias != NULL ? a->bias + blk * 4 * W : NULL, 0, \
                                        w_in, a->x + (b0 * a->T + t) * D, a->T * D, D,        \
                                        w_rec, h_in + b0 * U, U, U, acc + q * ns * W, W, nb * ns * W, \
                                        prefetch, lines);                                     \
            }                                                                                 \
            if (nb == 1)                                                                      \
                lstmc_finish_##SFX##W(a, acc, ns, blks[0], b0, k, t, h_prev, h_next);         \
            else                                                                              \
                lstmc_finish_chunk_##SFX##W(a, acc, ns, nb, blks, b0, k, t, h_prev, h_next);  \
        }                                                                                     \
    }                                                                                         \
}

#define LSTMC_DEFINE_ARGS(SFX, REAL)                                                           \
typedef struct {                                                                              \
    ptrdiff_t B, T, D, U, W, nblk;    /* W: units per block (lanes), 256 or 512 bits */       \
    const REAL *x;                    /* (B, T, D) */                                         \
    const REAL *wp;                   /* (nblk, D + U, 4W) packed kernel and recurrent kernel */\
    const REAL *bias;                 /* (nblk * 4W) packed, or NULL */                       \
    const float *rec_single;          /* (nblk, U, 4W) the recurrent rows in float32, or NULL */\
    REAL *projection;                 /* (nblk, TB, B, 4W) input projected ahead, or NULL */  \
    ptrdiff_t TB;                     /* steps projected at a time (spread: 2 batches) */     \
    int spread;                       /* > 0: B = 1, projected in batches of this many steps, \
                                         each over the steps before it (lstmc_step) */        \
    REAL *h, *h_spare;                /* (B, U): current h on entry and on return; spare */   \
    REAL *c;                          /* (B, U) */                                            \
    REAL *h_dropped;                  /* (n_threads, B, U) scratch when rec_dropout */        \
    const REAL *rec_dropout;          /* (B, U) or NULL */                                    \
    const unsigned char *mask;        /* (B, T) or NULL */                                    \
    const ptrdiff_t *first_valid;     /* (B,) first processing step with a valid input */     \
    int act, rec_act, go_backwards, zero_output_for_mask;                                     \
    REAL *out_seq, *out_last, *trace; /* (B, T, U), (B, U), (6, B, T, U); seq/trace may be NULL */\
    ptrdiff_t trace_plane;            /* B * T * U of the call: one gate's part of the trace */ \
    ptrdiff_t k_begin, k_end;         /* processing steps to run */                           \
    int n_threads;                                                                            \
    ptrdiff_t group;                  /* > 0: the threads take groups of this many samples */ \
    int prefetch;                     /* a thread's weights are larger than L2 */             \
    double patience, regroup_first;   /* the team's (_team.h; tests shorten them) */          \
    lstmc_seat *team_seats;           /* (n_threads,) the team's seats (_team.h) */           \
    lstmc_group_range *group_ranges;  /* (n_threads,) when group > 0: each thread's samples */ \
    int *team_counts;                 /* NULL, or receives fall-backs, regroups, threads */   \
} lstmc_recurrence_args_##SFX;

#define LSTMC_DEFINE_RECURRENCE(SFX, REAL, WIDE, NARROW)                                       \
typedef void (*lstmc_step_fn_##SFX)(const lstmc_recurrence_args_##SFX *, ptrdiff_t, ptrdiff_t,\
                                    ptrdiff_t, ptrdiff_t, const REAL *, const REAL *, REAL *);\
typedef void (*lstmc_project_fn_##SFX)(const lstmc_recurrence_args_##SFX *, ptrdiff_t,        \
                                       ptrdiff_t, ptrdiff_t, ptrdiff_t);                      \
                                                                                              \
/* One thread's share of a call: its blocks at every step, the team's barrier between.  */ \
/* When the team falls back (_team.h), thread 0 takes every block and the others wait   */ \
/* on the bench until it calls them back. The projection buffer always holds the        */ \
/* current steps for every block (each thread projects its blocks before the barrier    */ \
/* that could leave them to thread 0), so whoever owns a block can use it.              */ \
static void lstmc_recurrence_thread_##SFX(const lstmc_recurrence_args_##SFX *a,              \
                                          lstmc_team *team, lstmc_step_fn_##SFX step,         \
                                          lstmc_project_fn_##SFX project, int alone) {        \
    int p = 0, np = 1, full;                                                                  \
    ptrdiff_t k, blk0, blk1, j, n = a->B * a->U, resume;                                      \
    ptrdiff_t kb0 = a->k_begin, kb1 = a->k_begin;  /* steps in the projection buffer */       \
    REAL *h_prev = a->h, *h_next = a->h_spare, *swap;                                         \
    REAL *h_in;                                                                               \
    double started, arrived;                                                                  \
    unsigned int mxcsr = lstmc_enter_ftz();                                                   \
    if (!alone) LSTMC_THREAD_ID(p, np);                                                       \
    full = np;                                                                                \
    /* the team OpenMP really gave (every thread stores the same value) */                    \
    __atomic_store_n(&team->n, np, __ATOMIC_RELAXED);                                         \
    __atomic_store_n(&team->full, np, __ATOMIC_RELAXED);                                      \
    blk0 = a->nblk * p / np;                                                                  \
    blk1 = a->nblk * (p + 1) / np;                                                            \
    h_in = a->rec_dropout != NULL ? a->h_dropped + p * n : NULL;                              \
    /* spread: the first batch in a pass of its own, the others within the steps */          \
    if (a->spread > 0)                                                                        \
        project(a, blk0, blk1, a->k_begin,                                                    \
                a->k_end - a->k_begin < a->spread ? a->k_end : a->k_begin + a->spread);       \
    for (k = a->k_begin; k < a->k_end; k++) {                                                 \
        started = np > 1 ? lstmc_seconds() : 0.0;  /* for the barrier */                      \
        /* Each thread projects the input for its own blocks: no barrier needed. */           \
        if (a->spread > 0) {                                                                  \
            kb0 = k - (k - a->k_begin) % a->TB;  /* the step's row: k - kb0 */                \
        } else if (a->projection != NULL && k == kb1) {                                       \
            /* windows of at most TB steps, as even as possible: 25 steps in windows of 12  */ \
            /* as 9 8 8, not 12 12 1 (DeepBench server on a Zen 4: 2-4% faster)             */ \
            kb0 = k;                                                                          \
            kb1 = k + lstmc_tile_size(a->k_end - k, a->TB);                                   \
            project(a, blk0, blk1, kb0, kb1);                                                 \
        }                                                                                     \
        if (h_in != NULL) {                                                                   \
            for (j = 0; j < n; j++) h_in[j] = h_prev[j] * a->rec_dropout[j];                  \
            step(a, blk0, blk1, k, k - kb0, h_in, h_prev, h_next);                            \
        } else {                                                                              \
            step(a, blk0, blk1, k, k - kb0, h_prev, h_prev, h_next);                          \
        }                                                                                     \
        swap = h_prev; h_prev = h_next; h_next = swap;                                        \
        /* After the last step nobody reads another's units: the region's end suffices. */    \
        if (np > 1 && k + 1 < a->k_end) {                                                     \
            arrived = lstmc_seconds();                                                        \
            if (!lstmc_team_barrier(team, p, k + 1, arrived - started)) continue;             \
            /* A thread was kept waiting far longer than a step takes: another process */     \
            /* has a core. Thread 0 goes on alone, the others wait on the bench.       */     \
            if (p == 0) {                                                                     \
                np = 1;                                                                       \
                blk0 = 0;                                                                     \
                blk1 = a->nblk;                                                               \
                lstmc_team_fell_back(team, lstmc_seconds() - arrived);                        \
                continue;                                                                     \
            }                                                                                 \
            resume = lstmc_team_bench(team, p);                                               \
            if (resume < 0) break;  /* thread 0 finished the call */                          \
            np = full;                                                                        \
            h_prev = (REAL *)team->resume_h;                                                  \
            h_next = h_prev == a->h ? a->h_spare : a->h;                                      \
            kb0 = team->resume_kb0;                                                           \
            kb1 = team->resume_kb1;                                                           \
            k = resume - 1;  /* the loop's k++ takes it to the step thread 0 resumes at */    \
        } else if (full > 1 && k + 1 < a->k_end && lstmc_team_may_regroup(team)) {            \
            /* thread 0, alone: the bench is running again */                                 \
            lstmc_team_regroup(team, k + 1, h_prev, kb0, kb1);                                \
            np = full;                                                                        \
            blk1 = a->nblk / np;  /* blk0 = 0 */                                              \
        }                                                                                     \
    }                                                                                         \
    if (p == 0) {                                                                             \
        if (np == 1 && full > 1) lstmc_team_dismiss(team);                                    \
        team->final_h = h_prev;  /* the buffers swap in step: thread 0's is everyone's */    \
    }                                                                                         \
    if (a->trace != NULL) lstmc_fence_streamed_stores();                                      \
    lstmc_leave_ftz(mxcsr);                                                                   \
}                                                                                             \
                                                                                              \
/* A batch of many samples and weights that fit each core's L2 (a->group > 0): each      */ \
/* thread runs groups of samples alone through every step, as a call of its own on its  */ \
/* rows of every array. Samples do not depend on each other, so there is no barrier.    */ \
/* Thread p first takes the groups of its home range, the p-th of n_threads contiguous  */ \
/* ones, then helps the others with theirs: a core that another process slows simply    */ \
/* takes fewer groups, and on an even machine each thread writes the same rows of the   */ \
/* outputs and states in every call, which stay in its own cache. Taken first come      */ \
/* first served, each call's groups went to either thread, and lines the other core     */ \
/* wrote moved across at every call: 256 x 50 x LSTM(64) on two vCPUs of a Zen 4 took   */ \
/* 4.5 ms instead of 3.05 in phases of seconds, 0.8 ms of it for the output rows.       */ \
static void lstmc_run_group_##SFX(const lstmc_recurrence_args_##SFX *a, lstmc_step_fn_##SFX step, \
                                  lstmc_project_fn_##SFX project, ptrdiff_t g, int p) {        \
    const ptrdiff_t T = a->T, U = a->U, b0 = g * a->group;                                    \
    lstmc_recurrence_args_##SFX own = *a;                                                     \
    lstmc_team alone;                                                                         \
    own.B = a->B - b0 < a->group ? a->B - b0 : a->group;                                      \
    own.x = a->x + b0 * T * a->D;                                                             \
    own.h = a->h + b0 * U;                                                                    \
    own.h_spare = a->h_spare + b0 * U;                                                        \
    own.c = a->c + b0 * U;                                                                    \
    own.h_dropped = a->h_dropped != NULL ? a->h_dropped + p * a->B * U : NULL;                \
    own.rec_dropout = a->rec_dropout != NULL ? a->rec_dropout + b0 * U : NULL;                \
    own.mask = a->mask != NULL ? a->mask + b0 * T : NULL;                                     \
    own.first_valid = a->first_valid != NULL ? a->first_valid + b0 : NULL;                    \
    own.out_seq = a->out_seq != NULL ? a->out_seq + b0 * T * U : NULL;                        \
    own.out_last = a->out_last + b0 * U;                                                      \
    own.trace = a->trace != NULL ? a->trace + b0 * T * U : NULL;  /* trace_plane stays */     \
    lstmc_team_init(&alone, 1, a->team_seats + p, a->patience, a->regroup_first);             \
    lstmc_recurrence_thread_##SFX(&own, &alone, step, project, 1);                            \
    if (alone.final_h != own.h)                                                               \
        memcpy(own.h, alone.final_h, (size_t)(own.B * U) * sizeof(REAL));                     \
}                                                                                             \
static void lstmc_recurrence_groups_##SFX(const lstmc_recurrence_args_##SFX *a,              \
                                          lstmc_team *team, lstmc_step_fn_##SFX step,         \
                                          lstmc_project_fn_##SFX project) {                   \
    const int n = a->n_threads;  /* ranges; OpenMP may give fewer threads: they help */       \
    ptrdiff_t g;                                                                              \
    int p, np, q;                                                                             \
    LSTMC_THREAD_ID(p, np);                                                                   \
    __atomic_store_n(&team->full, np, __ATOMIC_RELAXED);                                      \
    for (q = 0; q < n; q++) {                                                                 \
        lstmc_group_range *range = a->group_ranges + (p + q) % n;                             \
        while ((g = __atomic_fetch_add(&range->next, 1, __ATOMIC_RELAXED)) < range->end)      \
            lstmc_run_group_##SFX(a, step, project, g, p);                                    \
    }                                                                                         \
}                                                                                             \
                                                                                              \
static void lstmc_recurrence_##SFX(const lstmc_recurrence_args_##SFX *a) {                   \
    const int wide = a->W == WIDE;                                                            \
    const lstmc_step_fn_##SFX step = wide ? lstmc_step_##SFX##WIDE : lstmc_step_##SFX##NARROW;\
    const lstmc_project_fn_##SFX project =                                                    \
        wide ? lstmc_project_##SFX##WIDE : lstmc_project_##SFX##NARROW;                       \
    lstmc_team team;                                                                          \
    lstmc_team_init(&team, a->n_threads, a->team_seats, a->patience, a->regroup_first);       \
    /* One thread starts no team: OpenMP's start and end of a region (a futex wake per   */ \
    /* call) were ~5% of a streaming step. Outside a region the thread is 0 of 1.        */ \
    if (a->n_threads == 1) {                                                                  \
        lstmc_recurrence_thread_##SFX(a, &team, step, project, 0);                            \
    } else if (a->group > 0) {                                                                \
        const ptrdiff_t groups = (a->B + a->group - 1) / a->group;                            \
        int p;                                                                                \
        for (p = 0; p < a->n_threads; p++) {                                                  \
            a->group_ranges[p].next = groups * p / a->n_threads;                              \
            a->group_ranges[p].end = groups * (p + 1) / a->n_threads;                          \
        }                                                                                     \
        _Pragma("omp parallel num_threads(a->n_threads)")                                     \
        lstmc_recurrence_groups_##SFX(a, &team, step, project);                               \
        team.final_h = a->h;  /* each group put its h back */                                \
    } else {                                                                                  \
        _Pragma("omp parallel num_threads(a->n_threads)")                                     \
        lstmc_recurrence_thread_##SFX(a, &team, step, project, 0);                            \
    }                                                                                         \
    /* odd number of steps: h back to a->h, once every thread is done reading a->h */     \
    if (team.final_h != a->h)                                                                 \
        memcpy(a->h, team.final_h, (size_t)(a->B * a->U) * sizeof(REAL));                     \
    if (a->team_counts != NULL) {                                                             \
        a->team_counts[0] = team.fallbacks;                                                   \
        a->team_counts[1] = team.regroups;                                                    \
        a->team_counts[2] = team.full;                                                        \
    }                                                                                         \
}

#ifdef _OPENMP
#define LSTMC_THREAD_ID(p, np) do { (p) = omp_get_thread_num(); (np) = omp_get_num_threads(); } while (0)
#else
#define LSTMC_THREAD_ID(p, np) do { (p) = 0; (np) = 1; } while (0)
#endif

/* The L2 cache's size per core, for the prefetch decision (1 MB where the C library
 * does not say). */
static long lstmc_l2_bytes(void) {
#if defined(_SC_LEVEL2_CACHE_SIZE)
    const long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (bytes > 0) return bytes;
#endif
    return 1L << 20;
}

LSTMC_DEFINE_ARGS(f, float)
LSTMC_DEFINE_ARGS(d, double)
LSTMC_DEFINE_WIDTH(f, float, 16)
LSTMC_DEFINE_WIDTH(f, float, 8)
LSTMC_DEFINE_WIDTH(d, double, 8)
LSTMC_DEFINE_WIDTH(d, double, 4)
LSTMC_DEFINE_RECURRENCE(f, float, 16, 8)
LSTMC_DEFINE_RECURRENCE(d, double, 8, 4)

/* The precision-independent face the Cython caller fills: the same fields, pointers
 * untyped, and a flag saying which precision they point to. */
typedef struct {
    ptrdiff_t B, T, D, U, W, nblk;
    const void *x, *wp, *bias;
    const float *rec_single;
    void *projection;
    ptrdiff_t TB;
    int spread;
    void *h, *h_spare, *c, *h_dropped;
    const void *rec_dropout;
    const unsigned char *mask;
    const ptrdiff_t *first_valid;
    int act, rec_act, go_backwards, zero_output_for_mask;
    void *out_seq, *out_last, *trace;
    ptrdiff_t trace_plane, k_begin, k_end;
    int n_threads;
    ptrdiff_t group;
    int prefetch, is_double;
    double patience, regroup_first;
    lstmc_seat *team_seats;
    lstmc_group_range *group_ranges;
    int *team_counts;
} lstmc_recurrence_args;

#define LSTMC_TYPED_ARGS(SFX, REAL, g)                                                           \
    lstmc_recurrence_args_##SFX typed = {                                                     \
        g->B, g->T, g->D, g->U, g->W, g->nblk, (const REAL *)g->x, (const REAL *)g->wp,        \
        (const REAL *)g->bias, g->rec_single, (REAL *)g->projection, g->TB, g->spread,         \
        (REAL *)g->h, (REAL *)g->h_spare, (REAL *)g->c, (REAL *)g->h_dropped,                  \
        (const REAL *)g->rec_dropout,                                                         \
        g->mask,                                                                              \
        g->first_valid, g->act, g->rec_act, g->go_backwards, g->zero_output_for_mask,         \
        (REAL *)g->out_seq, (REAL *)g->out_last, (REAL *)g->trace, g->trace_plane, g->k_begin,  \
        g->k_end, g->n_threads, g->group, g->prefetch, g->patience, g->regroup_first,          \
        g->team_seats, g->group_ranges, g->team_counts}

/* Run processing steps [k_begin, k_end) of the LSTM. */
static void lstmc_recurrence(const lstmc_recurrence_args *g) {
    if (g->is_double) {
        LSTMC_TYPED_ARGS(d, double, g);
        lstmc_recurrence_d(&typed);
    } else {
        LSTMC_TYPED_ARGS(f, float, g);
        lstmc_recurrence_f(&typed);
    }
}

enum { LSTMC_LANES_FLOAT = LSTMC_W_f, LSTMC_LANES_DOUBLE = LSTMC_W_d,
       LSTMC_WIDE_LANES_FLOAT = LSTMC_WIDE_W_f, LSTMC_WIDE_LANES_DOUBLE = LSTMC_WIDE_W_d };

#endif /* LSTMC_RECURRENCE_H */

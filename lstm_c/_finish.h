/* How a step ends: the LSTM cell over a step's finished blocks (lstm_c/_cell.h, or the
 * loops where the CPU lacks it or the activations are others), then Keras's masking, the
 * outputs and the trace rows. LSTMC_DEFINE_FINISH(SFX, REAL, W) defines it for one block
 * width W, inside lstm_c/_recurrence.h's LSTMC_DEFINE_WIDTH, where the recurrence's
 * arguments (lstmc_recurrence_args_*) are defined. */
#ifndef LSTMC_FINISH_H
#define LSTMC_FINISH_H

#include <stddef.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "_activations.h"   /* lstmc_activate_*, LSTMC_CLONES */
#include "_cell.h"          /* lstmc_lstm_cell_*, lstmc_has_fast_cell */
#include "_tile.h"          /* LSTMC_TILE_SAMPLES */

#define LSTMC_CHUNK 8          /* blocks a step finishes together when a tile holds every sample */
#define LSTMC_ON_A_LINE __attribute__((aligned(64)))

/* Copy/clear `lanes` values of one block: whole blocks (all but a ragged last one) take
 * the constant-size path, which compiles to one vector move instead of a libc call. */
#define LSTMC_COPY_LANES(dst, src, lanes, W, REAL)                                            \
    do {                                                                                      \
        if ((lanes) == (W)) memcpy((dst), (src), (W) * sizeof(REAL));                         \
        else memcpy((dst), (src), (lanes) * sizeof(REAL));                                    \
    } while (0)
#define LSTMC_CLEAR_LANES(dst, lanes, W, REAL)                                                \
    do {                                                                                      \
        if ((lanes) == (W)) memset((dst), 0, (W) * sizeof(REAL));                             \
        else memset((dst), 0, (lanes) * sizeof(REAL));                                        \
    } while (0)

/* Trace rows are written once and not read again by the call: in a trace larger than half
 * the L3, whole 64-byte lines are streamed past the caches (no read-for-ownership of 6 x
 * the output, and the weights the next step needs are not evicted by it). So are those of
 * a call on several threads: rows the threads share, left in their caches, cost a third
 * of a step of LSTM(128) on one sequence (trace / fast 1.38 -> 1.23 on two Intel cores).
 * A smaller trace of one thread is better left in cache, where what reads it next (a
 * training step's backward: 2.4 MB for LSTM(64) on 32 x 50, 15% slower streamed) finds
 * it. Other rows (a ragged block, 32-byte blocks whose line the neighbouring block
 * completes much later, an unaligned buffer) are copied. */
#define LSTMC_STREAMED_TRACE_BYTES ((size_t)16 << 20)
#if defined(__x86_64__) || defined(__i386__)
/* One 64-byte line streamed as four SSE stores, which every x86-64 CPU has and whose
 * write-combining buffer sends on as one line. Only 512-bit blocks have 64-byte rows, and
 * those run on any CPU when asked for (Kernel(wide=True)): an AVX-512 store here was
 * an illegal instruction on a CPU without AVX-512 (Zen 3). */
static inline void lstmc_stream_line(void *dst, const void *src) {
    float *d = (float *)dst;
    const float *s = (const float *)src;
    _mm_stream_ps(d, _mm_loadu_ps(s));
    _mm_stream_ps(d + 4, _mm_loadu_ps(s + 4));
    _mm_stream_ps(d + 8, _mm_loadu_ps(s + 8));
    _mm_stream_ps(d + 12, _mm_loadu_ps(s + 12));
}
#define LSTMC_STREAM_LANES(stream, dst, src, lanes, W, REAL)                                  \
    do {                                                                                      \
        if ((stream) && (W) * sizeof(REAL) == 64 && (lanes) == (W) && ((size_t)(dst) & 63) == 0) \
            lstmc_stream_line((dst), (src));                                                  \
        else                                                                                  \
            LSTMC_COPY_LANES(dst, src, lanes, W, REAL);                                       \
    } while (0)
/* Streamed stores are weakly ordered: fence them before the caller can read the trace. */
#define lstmc_fence_streamed_stores() _mm_sfence()
#else
#define LSTMC_STREAM_LANES(stream, dst, src, lanes, W, REAL) LSTMC_COPY_LANES(dst, src, lanes, W, REAL)
#define lstmc_fence_streamed_stores() ((void)0)
#endif

#define LSTMC_DEFINE_FINISH(SFX, REAL, W)                                                     \
                                                                                              \
/* Gates, state update, outputs and trace for samples b0 .. b0 + ns - 1 of the nb       */    \
/* blocks blks[0 .. nb). acc is gate-major, acc[((gate * nb + q) * ns + s) * W + lane], */    \
/* so each activation is one loop over nb * ns * W values: with one sample, finishing   */    \
/* one block at a time left a chain of dependent exp/divide latencies per block (a      */    \
/* fifth of a step); finishing LSTMC_CHUNK blocks together overlaps them. It and the   */    \
/* activations inline into the two versions below, which are cloned like the tiles.     */    \
static inline __attribute__((always_inline))                                                  \
void lstmc_finish_blocks_##SFX##W(const lstmc_recurrence_args_##SFX *a, REAL *acc,            \
                                  ptrdiff_t ns, ptrdiff_t nb, const ptrdiff_t *blks,          \
                                  ptrdiff_t b0, ptrdiff_t k, ptrdiff_t t,                     \
                                  const REAL *h_prev, REAL *h_next) {                         \
    enum { NSMAX = LSTMC_TILE_SAMPLES };                                                      \
    const ptrdiff_t run = ns * W, n = nb * run, BTU = a->trace_plane;                         \
    const int stream = a->n_threads > 1 || 6 * (size_t)BTU * sizeof(REAL) >= LSTMC_STREAMED_TRACE_BYTES; \
    ptrdiff_t q, s, gate, lane, vec;                                                          \
    /* the blocks' c, updated in place, and their new h (units past U in a ragged last    */  \
    /* block are padding lanes: they start from c = 0). On cache lines (as acc, in a      */  \
    /* step): a thread's stack is wherever its thread's is, and vectors split over two    */  \
    /* lines made the thread with unlucky ones up to 40% slower.                          */  \
    REAL c_state[LSTMC_CHUNK * NSMAX * W] LSTMC_ON_A_LINE;                                    \
    REAL h_new[LSTMC_CHUNK * NSMAX * W] LSTMC_ON_A_LINE;                                      \
    const REAL *gate_i = acc, *gate_f = acc + n, *gate_g = acc + 2 * n, *gate_o = acc + 3 * n; \
    lstmc_cell_rows_##SFX rows[LSTMC_CHUNK * NSMAX];                                          \
    const int fast_cell = lstmc_has_fast_cell(W * sizeof(REAL), a->rec_act, a->act);         \
    /* Whole blocks without a mask: the cell in registers (lstmc_lstm_cell_*) writes the  */ \
    /* state, outputs and trace in place.                                                 */ \
    if (fast_cell && a->mask == NULL                                                          \
        && (blks[0] + 1) * W <= a->U && (blks[nb - 1] + 1) * W <= a->U) {                     \
        for (q = 0; q < nb; q++)                                                              \
            for (s = 0; s < ns; s++) {                                                        \
                const ptrdiff_t b = b0 + s, at = q * ns + s, col = b * a->U + blks[q] * W;    \
                const ptrdiff_t row = (b * a->T + k) * a->U + blks[q] * W;                    \
                rows[at].c = a->c + col;                                                      \
                rows[at].h[0] = h_next + col;                                                 \
                rows[at].h[1] = a->out_seq != NULL ? a->out_seq + row : NULL;                 \
                rows[at].h[2] = k == a->T - 1 ? a->out_last + col : NULL;                     \
                rows[at].trace = a->trace != NULL ? a->trace + row : NULL;                    \
            }                                                                                 \
        lstmc_lstm_cell_##SFX(W * sizeof(REAL), acc, n, nb * ns, rows, BTU,                   \
                              stream ? LSTMC_CELL_STREAM : 0);                                \
        return;                                                                               \
    }                                                                                         \
    for (q = 0; q < nb; q++) {                                                                \
        const ptrdiff_t lanes = a->U - blks[q] * W < W ? a->U - blks[q] * W : W;              \
        if (lanes < W) memset(c_state + q * run, 0, run * sizeof(REAL));                      \
        for (s = 0; s < ns; s++)                                                              \
            LSTMC_COPY_LANES(c_state + q * run + s * W, a->c + (b0 + s) * a->U + blks[q] * W, \
                             lanes, W, REAL);                                                 \
    }                                                                                         \
    if (fast_cell) {                                                                          \
        /* a mask or a ragged block: the same cell on copies, so that the bits never      */ \
        /* depend on the path; it leaves the activated gates in acc for the trace         */ \
        for (vec = 0; vec < nb * ns; vec++) {                                                 \
            rows[vec].c = c_state + vec * W;                                                  \
            rows[vec].h[0] = h_new + vec * W;                                                 \
            rows[vec].h[1] = rows[vec].h[2] = rows[vec].trace = NULL;                         \
        }                                                                                     \
        lstmc_lstm_cell_##SFX(W * sizeof(REAL), acc, n, nb * ns, rows, 0,                     \
                              a->trace != NULL ? LSTMC_CELL_KEEP_GATES : 0);                  \
    } else {  /* other activations, or a CPU without the cell: the loops */                   \
        lstmc_activate_##SFX(a->rec_act, acc, 2 * n);       /* i, f */                        \
        lstmc_activate_##SFX(a->act, acc + 2 * n, n);       /* g */                           \
        lstmc_activate_##SFX(a->rec_act, acc + 3 * n, n);   /* o */                           \
        for (lane = 0; lane < n; lane++) {                                                    \
            c_state[lane] = gate_f[lane] * c_state[lane] + gate_i[lane] * gate_g[lane];       \
            h_new[lane] = c_state[lane];                                                      \
        }                                                                                     \
        lstmc_activate_##SFX(a->act, h_new, n);                                               \
        for (lane = 0; lane < n; lane++) h_new[lane] *= gate_o[lane];                         \
    }                                                                                         \
    for (q = 0; q < nb; q++) {                                                                \
        const ptrdiff_t blk = blks[q], lanes = a->U - blk * W < W ? a->U - blk * W : W;       \
        for (s = 0; s < ns; s++) {                                                            \
            const ptrdiff_t b = b0 + s, row = (b * a->T + k) * a->U + blk * W, at = q * run + s * W; \
            REAL *c = a->c + b * a->U + blk * W;                                              \
            REAL *hn = h_next + b * a->U + blk * W;                                           \
            const int valid = a->mask == NULL || a->mask[b * a->T + t];                       \
            /* Keras's output: h after a valid step; at a masked step the previous output  */ \
            /* (the carried h once any step was valid, else 0), or 0 with zero_output.      */ \
            const int emit = valid || (!a->zero_output_for_mask && k >= a->first_valid[b]);   \
            if (valid) {                                                                      \
                LSTMC_COPY_LANES(c, c_state + at, lanes, W, REAL);                            \
                LSTMC_COPY_LANES(hn, h_new + at, lanes, W, REAL);                             \
            } else {  /* a masked step carries (h, c) */                                      \
                LSTMC_COPY_LANES(hn, h_prev + b * a->U + blk * W, lanes, W, REAL);            \
            }                                                                                 \
            if (a->out_seq != NULL) {                                                         \
                if (emit) LSTMC_COPY_LANES(a->out_seq + row, hn, lanes, W, REAL);             \
                else LSTMC_CLEAR_LANES(a->out_seq + row, lanes, W, REAL);                     \
            }                                                                                 \
            if (k == a->T - 1) {                                                              \
                REAL *last = a->out_last + b * a->U + blk * W;                                \
                if (emit) LSTMC_COPY_LANES(last, hn, lanes, W, REAL);                         \
                else LSTMC_CLEAR_LANES(last, lanes, W, REAL);                                 \
            }                                                                                 \
            if (a->trace != NULL) {                                                           \
                for (gate = 0; gate < 4; gate++)                                              \
                    LSTMC_STREAM_LANES(stream, a->trace + gate * BTU + row,                   \
                                       acc + gate * n + at, lanes, W, REAL);                  \
                LSTMC_STREAM_LANES(stream, a->trace + 4 * BTU + row, c, lanes, W, REAL);      \
                LSTMC_STREAM_LANES(stream, a->trace + 5 * BTU + row, hn, lanes, W, REAL);     \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* A tile's samples of one block (batches over a tile: the loops know nb = 1), and a chunk  */ \
/* of blocks (a batch that one tile holds).                                                  */ \
LSTMC_CLONES                                                                                  \
static void lstmc_finish_##SFX##W(const lstmc_recurrence_args_##SFX *a, REAL *acc, ptrdiff_t ns, \
                                  ptrdiff_t blk, ptrdiff_t b0, ptrdiff_t k, ptrdiff_t t,      \
                                  const REAL *h_prev, REAL *h_next) {                         \
    lstmc_finish_blocks_##SFX##W(a, acc, ns, 1, &blk, b0, k, t, h_prev, h_next);              \
}                                                                                             \
LSTMC_CLONES                                                                                  \
static void lstmc_finish_chunk_##SFX##W(const lstmc_recurrence_args_##SFX *a, REAL *acc,      \
                                        ptrdiff_t ns, ptrdiff_t nb, const ptrdiff_t *blks,    \
                                        ptrdiff_t b0, ptrdiff_t k, ptrdiff_t t,               \
                                        const REAL *h_prev, REAL *h_next) {                   \
    lstmc_finish_blocks_##SFX##W(a, acc, ns, nb, blks, b0, k, t, h_prev, h_next);             \
}

#endif /* LSTMC_FINISH_H */

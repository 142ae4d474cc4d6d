/* The forward pass's register tile (lstm_c/_recurrence.h calls it at every block width
 * and precision), the block widths and the tiles built for them.
 *
 * Block widths: units per block are one SIMD vector, 256 or 512 bits, chosen once when
 * the weights are packed (lstm_c/_packing.py, lstmc_wide_blocks). Tiles are compiled
 * for AVX-512, AVX2+FMA and baseline x86-64 and chosen at load time (LSTMC_CLONES).
 */
#ifndef LSTMC_TILE_H
#define LSTMC_TILE_H

#include <stddef.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "_activations.h"  /* LSTMC_CLONES */

#define LSTMC_VECTOR_BYTES 32  /* the narrow block: one AVX2 vector */

/* ---- The tile: the FLOPs of the whole model live here. ----------------------------------
 *
 * The sums (NS samples x 4 gate vectors of W lanes) start from `init` (NS rows of 4W,
 * ld_init apart; ld_init 0 = one row for all, the bias; NULL = zeros), then adds
 * a[s * ld_a + k] * w_a[k] for k < n_a and b[s * ld_b + k] * w_b[k] for k < n_b, where
 * w_*[k] is a row of 4W packed weights, and are stored to out + s * ld_out_s + gate * ld_out_g.
 * The sums stay in vector registers for the whole pass over the rows (NS = 6 with 512-bit
 * vectors: 24 accumulators, 4 weight vectors and a broadcast fill AVX-512's 32 registers;
 * with fewer registers, a pass sums only some of the gates, LSTMC_TILE_GATES): each
 * weight vector loaded feeds NS FMAs, and 4 * NS independent chains hide the FMA latency.
 * Every lane sums its k in the same order whatever NS or the passes, so a sample's result
 * does not depend on the samples it is batched with.
 * `prefetch` (or NULL) starts `prefetch_lines` cache lines the caller wants in L2 soon,
 * requested evenly over the tile's n_a + n_b rows (16.16 fixed point: no division in the
 * loop), so the next weights stream in from memory while this tile's FMAs run instead of
 * stalling a later tile.
 * The loop is unrolled and has its prefetch test outside: on an Intel core running 512-bit
 * vectors, the FMAs have ports 0 and 5 only, and the loop's own counting and testing took
 * some of their cycles (six-sample tiles unrolled by four: a batch of 32 of LSTM(256) 5-7%
 * faster, LSTM(512) on two threads 4-9%; with prefetch, by two: LSTM(512) on one 6%). A
 * one-sample tile waits on its weights, not its FMAs, and was 1.5% slower unrolled. */
#define LSTMC_TILE_ROW(REAL, W, NS, LOAD, w, v, ldv)                                          \
    do {                                                                                      \
        const __typeof__(*(w)) *wk = (w) + k * 4 * W + g0 * W;                                \
        vec wg[NV];                                                                           \
        _Pragma("GCC unroll 8")                                                               \
        for (j = 0; j < NV; j++) wg[j] = LOAD(wk + j * RL);                                   \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++) {                                                            \
            const REAL e = (v)[s * (ldv) + k];                                                \
            _Pragma("GCC unroll 8")                                                           \
            for (j = 0; j < NV; j++) acc[s][j] += e * wg[j];                                  \
        }                                                                                     \
    } while (0)
#define LSTMC_TILE_ROWS(REAL, W, NS, LOAD, w, v, ldv, n, row0)                                 \
    if (prefetch != NULL && g0 == 0) {                                                        \
        _Pragma("GCC unroll 2")                                                               \
        for (k = 0; k < (n); k++) {                                                           \
            __builtin_prefetch(prefetch + 64 * (((row0) + k) * prefetch_step >> 16), 0, 2);   \
            LSTMC_TILE_ROW(REAL, W, NS, LOAD, w, v, ldv);                                     \
        }                                                                                     \
    } else if (NS == 1) {                                                                     \
        for (k = 0; k < (n); k++) LSTMC_TILE_ROW(REAL, W, NS, LOAD, w, v, ldv);               \
    } else {                                                                                  \
        _Pragma("GCC unroll 4")                                                               \
        for (k = 0; k < (n); k++) LSTMC_TILE_ROW(REAL, W, NS, LOAD, w, v, ldv);               \
    }

/* The registers the portable code gets: 16 of SSE2's 128 bits on x86-64 (AArch64's NEON:
 * 32), and those a tile's broadcast samples take (LSTMC_TILE_FITS). */
#if defined(__aarch64__)
#define LSTMC_BASE_REGS 32
#define LSTMC_BROADCAST_REGS(NS) (NS)
#else
#define LSTMC_BASE_REGS 16
#define LSTMC_BROADCAST_REGS(NS) 1
#endif

/* Gates one pass of a tile sums: all four where NS x 4 accumulators, 4 weight vectors and
 * a broadcast fit in the registers, else two (or one) per pass over the rows: the weights
 * are still read once, the samples' values again from L1. A gate's W lanes take VREGS of
 * the REGS registers. 512-bit blocks run on AVX-512's 32: four gates up to NS = 6.
 * 256-bit blocks on AVX2's 16: three samples and four gates need 17, and GCC kept one sum
 * on the stack, a store and a reload in every row's chain of FMAs (half the FMA rate);
 * two gates of six samples (12 + 2 + 1) is the shape of AVX2 sgemm's 6 x 16 kernels.
 * Baseline x86-64 has 16 registers of 128 bits, two per gate. Spare: the broadcast, and a
 * product's own where there is no FMA (baseline); on AArch64 GCC multiplies by each
 * sample's value in place (fmla by element), one register per sample. */
#define LSTMC_TILE_FITS(NS, NG, VREGS, REGS)                                                  \
    (((NS) * (NG) + (NG)) * (VREGS) + LSTMC_BROADCAST_REGS(NS) + 1 <= (REGS))
#define LSTMC_TILE_GATES(NS, VREGS, REGS)                                                     \
    (LSTMC_TILE_FITS(NS, 4, VREGS, REGS) ? 4 : LSTMC_TILE_FITS(NS, 2, VREGS, REGS) ? 2 : 1)

#define LSTMC_TILE_PARAMS(REAL, B_REAL)                                                        \
    const REAL *init, ptrdiff_t ld_init, const REAL *w_a, const REAL *a, ptrdiff_t ld_a,      \
    ptrdiff_t n_a, const B_REAL *w_b, const REAL *b, ptrdiff_t ld_b, ptrdiff_t n_b, REAL *out, \
    ptrdiff_t ld_out_s, ptrdiff_t ld_out_g, const char *prefetch, ptrdiff_t prefetch_lines
#define LSTMC_TILE_ARGS init, ld_init, w_a, a, ld_a, n_a, w_b, b, ld_b, n_b, out, ld_out_s,        \
    ld_out_g, prefetch, prefetch_lines

/* Loads of W weights as a vector of the tile's precision: the row's own (REAL rows), or  */
/* float32 widened to float64 by __builtin_convertvector or an intrinsic (LSTMC_WIDEN_*). */
#define LSTMC_LOAD(p) (*(const vec *)(p))
#define LSTMC_WIDEN(p) __builtin_convertvector(*(const b_vec *)(p), vec)

#define LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, NS, ATTR, LOAD_B, REGS, REG_BYTES)          \
ATTR                                                                                          \
static void NAME##_##NS(LSTMC_TILE_PARAMS(REAL, B_REAL)) {                                    \
    /* numpy guarantees element alignment only: unaligned vector loads and stores. A      */ \
    /* register's vec holds RL lanes: a generic vector wider than the ISA's registers was  */ \
    /* built and summed through the stack (GCC 12, 256 bits on SSE2: 5-8x slower).        */ \
    enum { RL = W * sizeof(REAL) > (REG_BYTES) ? (REG_BYTES) / sizeof(REAL) : W, VREGS = W / RL, \
           NG = LSTMC_TILE_GATES(NS, VREGS, REGS), NV = NG * VREGS };                         \
    typedef REAL vec __attribute__((vector_size(RL * sizeof(REAL)), aligned(sizeof(REAL))));  \
    typedef B_REAL b_vec __attribute__((vector_size(RL * sizeof(B_REAL)), aligned(sizeof(B_REAL)), unused)); \
    vec acc[NS][NV];                                                                          \
    const ptrdiff_t prefetch_step = prefetch != NULL ? (prefetch_lines << 16) / (n_a + n_b) : 0; \
    ptrdiff_t k;                                                                              \
    int s, j, g0;                                                                             \
    /* NG gates of W lanes from gate g0 on: NV consecutive vectors of RL lanes in a row */   \
    for (g0 = 0; g0 < 4; g0 += NG) {                                                          \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++)                                                              \
            _Pragma("GCC unroll 8")                                                           \
            for (j = 0; j < NV; j++)                                                          \
                acc[s][j] = init != NULL ? *(const vec *)(init + s * ld_init + g0 * W + j * RL) \
                                         : (vec){0};                                          \
        LSTMC_TILE_ROWS(REAL, W, NS, LSTMC_LOAD, w_a, a, ld_a, n_a, 0)                        \
        LSTMC_TILE_ROWS(REAL, W, NS, LOAD_B, w_b, b, ld_b, n_b, n_a)                          \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++)                                                              \
            _Pragma("GCC unroll 8")                                                           \
            for (j = 0; j < NV; j++)                                                          \
                *(vec *)(out + s * ld_out_s + (g0 + j / VREGS) * ld_out_g + j % VREGS * RL) \
                    = acc[s][j];                                                              \
    }                                                                                         \
}

/* Tiles of 1 .. LSTMC_TILE_SAMPLES samples, NAME_1 .. NAME_6, and NAME(ns, ...) choosing
 * one. Every width and ISA uses up to 6: LSTMC_TILE_GATES keeps them in registers. */
enum { LSTMC_TILE_SAMPLES = 6 };
/* NAME##_1 .. NAME##_6 called with ARGS (parenthesised), by ns */
#define LSTMC_BY_SAMPLES(NAME, ns, ARGS)                                                      \
    switch (ns) {                                                                             \
    case 1: NAME##_1 ARGS; break;                                                             \
    case 2: NAME##_2 ARGS; break;                                                             \
    case 3: NAME##_3 ARGS; break;                                                             \
    case 4: NAME##_4 ARGS; break;                                                             \
    case 5: NAME##_5 ARGS; break;                                                             \
    default: NAME##_6 ARGS; break;                                                            \
    }
#define LSTMC_DEFINE_TILES_AS(NAME, REAL, B_REAL, W, ATTR, LOAD_B, REGS, REG_BYTES)           \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 1, ATTR, LOAD_B, REGS, REG_BYTES)                    \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 2, ATTR, LOAD_B, REGS, REG_BYTES)                    \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 3, ATTR, LOAD_B, REGS, REG_BYTES)                    \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 4, ATTR, LOAD_B, REGS, REG_BYTES)                    \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 5, ATTR, LOAD_B, REGS, REG_BYTES)                    \
LSTMC_DEFINE_TILE(NAME, REAL, B_REAL, W, 6, ATTR, LOAD_B, REGS, REG_BYTES)                    \
static void NAME(ptrdiff_t ns, LSTMC_TILE_PARAMS(REAL, B_REAL)) {                             \
    LSTMC_BY_SAMPLES(NAME, ns, (LSTMC_TILE_ARGS))                                             \
}

/* ---- The pair tile: one sample, two blocks. -----------------------------------------
 *
 * A one-sample tile sums 4 chains, one per gate, each FMA waiting on the last: with
 * 256-bit blocks on AVX2 (FMA latency 4 cycles), a row every 4 cycles at best. A float32
 * row is 128 bytes, so that is about L2's rate on the Zen 3 (32 bytes a cycle), but a
 * float32 row widened for float64 (the ds tiles) is 64: the chains held those steps to
 * half of it. This tile runs two blocks' rows side by side: 8 chains, two streams of rows.
 * The tiles alone on the Zen 3 (benchmarks/pair_tile.c, GFLOP/s): float32 rows widened
 * 22-24 -> 30-37; float32 rows in L2 40-43 -> 43-44, from L3 (4 MB) 29-34 -> 33-34;
 * float64 rows 5-15% faster. Each block sums in the one-sample tile's order: the same
 * bits. Parameters as the tile's with NS = 1, a pair of each per-block one (init: NULL =
 * zeros). */
#define LSTMC_PAIR_PARAMS(REAL, B_REAL)                                                        \
    const REAL *init0, const REAL *init1, const REAL *w_a0, const REAL *w_a1, const REAL *a,  \
    ptrdiff_t n_a, const B_REAL *w_b0, const B_REAL *w_b1, const REAL *b, ptrdiff_t n_b,      \
    REAL *out0, REAL *out1, ptrdiff_t ld_out_g
#define LSTMC_PAIR_ROWS(W, LOAD, w0, w1, v, n)                                                 \
    for (k = 0; k < (n); k++) {                                                               \
        const __typeof__(acc0[0][0]) e = (v)[k];                                             \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < 4; g++) {                                                             \
            acc0[g] += e * LOAD((w0) + (k * 4 + g) * W);                                      \
            acc1[g] += e * LOAD((w1) + (k * 4 + g) * W);                                      \
        }                                                                                     \
    }
#define LSTMC_DEFINE_PAIR_TILE(NAME, REAL, B_REAL, W, ATTR, LOAD_B)                            \
ATTR                                                                                          \
static void NAME(LSTMC_PAIR_PARAMS(REAL, B_REAL)) {                                           \
    typedef REAL vec __attribute__((vector_size(W * sizeof(REAL)), aligned(sizeof(REAL))));   \
    typedef B_REAL b_vec __attribute__((vector_size(W * sizeof(B_REAL)), aligned(sizeof(B_REAL)), unused)); \
    vec acc0[4], acc1[4];                                                                     \
    ptrdiff_t k;                                                                              \
    int g;                                                                                    \
    _Pragma("GCC unroll 4")                                                                   \
    for (g = 0; g < 4; g++) {                                                                 \
        acc0[g] = init0 != NULL ? *(const vec *)(init0 + g * W) : (vec){0};                   \
        acc1[g] = init1 != NULL ? *(const vec *)(init1 + g * W) : (vec){0};                   \
    }                                                                                         \
    LSTMC_PAIR_ROWS(W, LSTMC_LOAD, w_a0, w_a1, a, n_a)                                        \
    LSTMC_PAIR_ROWS(W, LOAD_B, w_b0, w_b1, b, n_b)                                            \
    _Pragma("GCC unroll 4")                                                                   \
    for (g = 0; g < 4; g++) {                                                                 \
        *(vec *)(out0 + g * ld_out_g) = acc0[g];                                              \
        *(vec *)(out1 + g * ld_out_g) = acc1[g];                                              \
    }                                                                                         \
}
/* Where the pair would gain nothing, two calls of the one-sample tile (the same bits). */
#define LSTMC_DEFINE_PAIR_AS_TWO(NAME, TILE, REAL, B_REAL)                                      \
static void NAME(LSTMC_PAIR_PARAMS(REAL, B_REAL)) {                                           \
    TILE(1, init0, 0, w_a0, a, 0, n_a, w_b0, b, 0, n_b, out0, 0, ld_out_g, NULL, 0);          \
    TILE(1, init1, 0, w_a1, a, 0, n_a, w_b1, b, 0, n_b, out1, 0, ld_out_g, NULL, 0);          \
}

/* ---- The spread tile: a one-sample step that also projects the input ahead. ------------
 *
 * With one sample, a step waits on its recurrent rows streaming in from L2 or L3 and
 * leaves the FMA units idle half the time, while projecting the input ahead (x_t @ kernel
 * over steps, the tile above) keeps them busy in a pass of its own. This tile does both in
 * one pass over the rows: the step's gates, out = init + sum_k h[k] w_rec[k] (stored to
 * out + gate * ld_out_g, as a one-sample tile's), and, one after every n_rec / n_in of
 * those rows, the kernel rows w_in[0 .. n_in) of G gates from g0 for NS later steps,
 * p[s] = start + sum_d x[s * ld_x + d] w_in[d], where start is p_init (the bias; NULL:
 * zeros) when `fresh`, else p itself: a step takes a slice of a batch's rows, and the
 * batch's sums wait in p, in memory, between slices. So the kernel rows are still read
 * once per NS steps, and the longer the batch, the fewer bytes a step reads. Its NS * G
 * sums, the step's 4, a row's G kernel vectors (GCC loads them together) and a broadcast
 * must fit AVX-512's 32 registers: 5 steps of 4 gates take 29 (6 spill some), 12 steps
 * of 2 take 31. Every lane sums in the same order as in the other tiles, and storing and
 * reloading a sum is exact: the same bits as projecting in a pass of its own. */
#define LSTMC_SPREAD_PARAMS(REAL, B_REAL)                                                      \
    const REAL *init, const B_REAL *w_rec, const REAL *h, ptrdiff_t n_rec, REAL *out,         \
    ptrdiff_t ld_out_g, const REAL *w_in, int g0, const REAL *x, ptrdiff_t ld_x,              \
    ptrdiff_t n_in, int fresh, const REAL *p_init, REAL *p, ptrdiff_t ld_p
#define LSTMC_SPREAD_ARGS init, w_rec, h, n_rec, out, ld_out_g, w_in, g0, x, ld_x, n_in,       \
    fresh, p_init, p, ld_p
#define LSTMC_SPREAD_REC_ROW(REAL, W, LOAD_B)                                                 \
    do {                                                                                      \
        const REAL e = h[k];                                                                  \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < 4; g++) gates[g] += e * LOAD_B(w_rec + (k * 4 + g) * W);              \
    } while (0)

#define LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, NS, G, ATTR, LOAD_B)                   \
ATTR                                                                                          \
static void NAME##_##NS(LSTMC_SPREAD_PARAMS(REAL, B_REAL)) {                                  \
    typedef REAL vec __attribute__((vector_size(W * sizeof(REAL)), aligned(sizeof(REAL))));   \
    typedef B_REAL b_vec __attribute__((vector_size(W * sizeof(B_REAL)), aligned(sizeof(B_REAL)), unused)); \
    vec gates[4], sums[NS][G];                                                                \
    /* a kernel row after every `per` recurrent rows: the same count each time, which the */ \
    /* branch predictor can learn (the last kernel rows may come after fewer)          */ \
    const ptrdiff_t per = n_in > 0 ? (n_rec + n_in - 1) / n_in : 0;                           \
    ptrdiff_t k = 0, d, k_end = 0;                                                            \
    int s, g;                                                                                 \
    _Pragma("GCC unroll 4")                                                                   \
    for (g = 0; g < 4; g++) gates[g] = *(const vec *)(init + g * W);                          \
    _Pragma("GCC unroll 12")                                                                  \
    for (s = 0; s < NS; s++)                                                                  \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < G; g++)                                                               \
            sums[s][g] = !fresh ? *(const vec *)(p + s * ld_p + (g0 + g) * W)                 \
                       : p_init != NULL ? *(const vec *)(p_init + (g0 + g) * W) : (vec){0};   \
    for (d = 0; d < n_in; d++) {                                                              \
        k_end = k_end + per < n_rec ? k_end + per : n_rec;                                    \
        for (; k < k_end; k++) LSTMC_SPREAD_REC_ROW(REAL, W, LOAD_B);                         \
        vec wg[G];                                                                            \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < G; g++) wg[g] = *(const vec *)(w_in + (d * 4 + g0 + g) * W);          \
        /* a step's input, then its gates: one broadcast live at a time */                    \
        _Pragma("GCC unroll 12")                                                              \
        for (s = 0; s < NS; s++) {                                                            \
            const REAL e = x[s * ld_x + d];                                                   \
            _Pragma("GCC unroll 4")                                                           \
            for (g = 0; g < G; g++) sums[s][g] += e * wg[g];                                  \
        }                                                                                     \
    }                                                                                         \
    for (; k < n_rec; k++) LSTMC_SPREAD_REC_ROW(REAL, W, LOAD_B);                             \
    _Pragma("GCC unroll 4")                                                                   \
    for (g = 0; g < 4; g++) *(vec *)(out + g * ld_out_g) = gates[g];                          \
    _Pragma("GCC unroll 12")                                                                  \
    for (s = 0; s < NS; s++)                                                                  \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < G; g++) *(vec *)(p + s * ld_p + (g0 + g) * W) = sums[s][g];           \
}

/* Spread tiles: of 1 .. LSTMC_TILE_SAMPLES later steps over all four gates (NAME_4g_NS), of
 * 1 .. LSTMC_SPREAD_STEPS_MAX later steps over two (NAME_2g_NS, gates g0 and g0 + 1), and
 * NAME(ns, gates, ...) choosing one. */
enum { LSTMC_SPREAD_STEPS_MAX = 12 };
/* NAME_1 .. NAME_6, over G gates */
#define LSTMC_DEFINE_SPREAD_TILES_TO_6(NAME, REAL, B_REAL, W, G, ATTR, LOAD_B)                 \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 1, G, ATTR, LOAD_B)                           \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 2, G, ATTR, LOAD_B)                           \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 3, G, ATTR, LOAD_B)                           \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 4, G, ATTR, LOAD_B)                           \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 5, G, ATTR, LOAD_B)                           \
LSTMC_DEFINE_SPREAD_TILE(NAME, REAL, B_REAL, W, 6, G, ATTR, LOAD_B)
#define LSTMC_DEFINE_SPREAD_TILES(NAME, REAL, B_REAL, W, ATTR, LOAD_B)                         \
LSTMC_DEFINE_SPREAD_TILES_TO_6(NAME##_4g, REAL, B_REAL, W, 4, ATTR, LOAD_B)                   \
LSTMC_DEFINE_SPREAD_TILES_TO_6(NAME##_2g, REAL, B_REAL, W, 2, ATTR, LOAD_B)                   \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 7, 2, ATTR, LOAD_B)                      \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 8, 2, ATTR, LOAD_B)                      \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 9, 2, ATTR, LOAD_B)                      \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 10, 2, ATTR, LOAD_B)                     \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 11, 2, ATTR, LOAD_B)                     \
LSTMC_DEFINE_SPREAD_TILE(NAME##_2g, REAL, B_REAL, W, 12, 2, ATTR, LOAD_B)                     \
static void NAME(ptrdiff_t ns, int gates, LSTMC_SPREAD_PARAMS(REAL, B_REAL)) {                \
    if (gates == 4) {                                                                         \
        LSTMC_BY_SAMPLES(NAME##_4g, ns, (LSTMC_SPREAD_ARGS))                                  \
        return;                                                                               \
    }                                                                                         \
    switch (ns) {                                                                             \
    case 7: NAME##_2g_7(LSTMC_SPREAD_ARGS); break;                                            \
    case 8: NAME##_2g_8(LSTMC_SPREAD_ARGS); break;                                            \
    case 9: NAME##_2g_9(LSTMC_SPREAD_ARGS); break;                                            \
    case 10: NAME##_2g_10(LSTMC_SPREAD_ARGS); break;                                          \
    case 11: NAME##_2g_11(LSTMC_SPREAD_ARGS); break;                                          \
    case 12: NAME##_2g_12(LSTMC_SPREAD_ARGS); break;                                          \
    default: LSTMC_BY_SAMPLES(NAME##_2g, ns, (LSTMC_SPREAD_ARGS))                             \
    }                                                                                         \
}

/* Rows for the next tile when `left` remain: tiles as even as possible (32 rows in tiles
 * of at most 6: 6 6 5 5 5 5, not 6 6 6 6 6 2, whose last tile would run at a third of the
 * FMA rate). */
static inline ptrdiff_t lstmc_tile_size(ptrdiff_t left, ptrdiff_t most) {
    const ptrdiff_t tiles = (left + most - 1) / most;
    return (left + tiles - 1) / tiles;
}

/* Tile `tile` of `tiles` prefetches its share of the `lines` cache lines at `base`
 * (*n of them; NULL when there is nothing to share out). One tile would have to request
 * several lines per row, which slows it more than the prefetch gains. */
static inline const char *lstmc_prefetch_share(const void *base, ptrdiff_t lines, ptrdiff_t tile,
                                               ptrdiff_t tiles, ptrdiff_t *n) {
    const ptrdiff_t first = tile * lines / tiles;
    *n = (tile + 1) * lines / tiles - first;
    return base != NULL && tiles > 1 ? (const char *)base + 64 * first : NULL;
}

/* Units per block: one 256-bit vector (LSTMC_W_*) everywhere, or one 512-bit vector
 * (LSTMC_WIDE_W_*) where the CPU has AVX-512 and the kernels were cloned for it. The
 * choice is made once, when the weights are packed (lstmc_wide_blocks). */
enum { LSTMC_W_f = LSTMC_VECTOR_BYTES / sizeof(float), LSTMC_W_d = LSTMC_VECTOR_BYTES / sizeof(double),
       LSTMC_WIDE_W_f = 2 * LSTMC_W_f, LSTMC_WIDE_W_d = 2 * LSTMC_W_d };

static int lstmc_wide_blocks(void) {
#if defined(LSTMC_HAVE_CLONES)
    __builtin_cpu_init();
    return LSTMC_CPU_SUPPORTS("avx512f") != 0;
#else
    return 0;
#endif
}


/* 512-bit blocks are chosen only where the CPU has AVX-512 (lstmc_wide_blocks; cloned, so
 * that a kernel asked for them runs anywhere). 256-bit ones run on AVX2 CPUs and on older
 * ones, whose 16 registers of 128 bits fit fewer sums: two sets of tiles, each shaped for
 * its registers, one chosen at load time (an ifunc: LSTMC_CPU_SUPPORTS in its resolver). */
#define LSTMC_DEFINE_WIDE_TILES(NAME, REAL, W)                                                 \
    LSTMC_DEFINE_TILES_AS(NAME, REAL, REAL, W, LSTMC_CLONES, LSTMC_LOAD, 32, 64)
#if defined(LSTMC_HAVE_CLONES) && LSTMC_ISA_LIMIT >= 3
static int lstmc_avx2_tiles(void) {  /* whether 256-bit blocks run the AVX2 set */
    __builtin_cpu_init();
    return LSTMC_CPU_SUPPORTS("x86-64-v3") != 0;
}
#define LSTMC_DEFINE_NARROW_TILES(NAME, REAL, W)                                               \
    LSTMC_DEFINE_TILES_AS(NAME##_avx2, REAL, REAL, W, __attribute__((target("arch=x86-64-v3"))), \
                          LSTMC_LOAD, 16, 32)                                                 \
    LSTMC_DEFINE_TILES_AS(NAME##_base, REAL, REAL, W, , LSTMC_LOAD, LSTMC_BASE_REGS, 16)      \
    typedef void (*NAME##_fn)(ptrdiff_t, LSTMC_TILE_PARAMS(REAL, REAL));                      \
    static NAME##_fn NAME##_resolve(void) {                                                   \
        return lstmc_avx2_tiles() ? NAME##_avx2 : NAME##_base;                                \
    }                                                                                         \
    static void NAME(ptrdiff_t ns, LSTMC_TILE_PARAMS(REAL, REAL))                             \
        __attribute__((ifunc(#NAME "_resolve")));
#else
static int lstmc_avx2_tiles(void) { return 0; }
#define LSTMC_DEFINE_NARROW_TILES(NAME, REAL, W)                                               \
    LSTMC_DEFINE_TILES_AS(NAME, REAL, REAL, W, LSTMC_CLONES, LSTMC_LOAD, LSTMC_BASE_REGS, 16)
#endif
LSTMC_DEFINE_WIDE_TILES(lstmc_tile_f16, float, 16)
LSTMC_DEFINE_NARROW_TILES(lstmc_tile_f8, float, 8)
LSTMC_DEFINE_WIDE_TILES(lstmc_tile_d8, double, 8)
LSTMC_DEFINE_NARROW_TILES(lstmc_tile_d4, double, 4)

/* float64 tiles over recurrent rows kept in float32 (a->rec_single, lstmc_single_rows).
 * They must give the d tiles' bits, so they are built for the ISA level whose d tiles
 * this CPU runs (the same FMA contraction) and used only on such CPUs. GCC 12 widens
 * a generic vector of 8 floats in halves (extract, convert, insert): the intrinsic is
 * one instruction. float32 has no such rows; its name for the tile is its own tile,
 * never called with them. */
#if defined(LSTMC_HAVE_CLONES)
#define LSTMC_WIDEN_512(p) ((vec)_mm512_cvtps_pd(_mm256_loadu_ps(p)))
#define LSTMC_WIDEN_256(p) ((vec)_mm256_cvtps_pd(_mm_loadu_ps(p)))
LSTMC_DEFINE_TILES_AS(lstmc_tile_ds8, double, float, 8, __attribute__((target("arch=x86-64-v4"))),
                      LSTMC_WIDEN_512, 32, 64)
LSTMC_DEFINE_TILES_AS(lstmc_tile_ds4, double, float, 4, __attribute__((target("arch=x86-64-v3"))),
                      LSTMC_WIDEN_256, 16, 32)
static int lstmc_single_rows(ptrdiff_t W) {
    __builtin_cpu_init();
    return W == LSTMC_WIDE_W_d ? LSTMC_CPU_SUPPORTS("x86-64-v4") != 0
                               : LSTMC_CPU_SUPPORTS("x86-64-v3") != 0;
}
#else  /* one build for every tile: the same contraction everywhere */
LSTMC_DEFINE_TILES_AS(lstmc_tile_ds8, double, float, 8, LSTMC_CLONES, LSTMC_WIDEN, 32, 64)
LSTMC_DEFINE_TILES_AS(lstmc_tile_ds4, double, float, 4, LSTMC_CLONES, LSTMC_WIDEN,
                      LSTMC_BASE_REGS, 16)
static int lstmc_single_rows(ptrdiff_t W) { (void)W; return 1; }
#endif
#define lstmc_tile_fs16 lstmc_tile_f16
#define lstmc_tile_fs8 lstmc_tile_f8

/* Pair tiles (one sample, two blocks): side by side where the AVX2 tiles run, built as
 * they are; elsewhere two calls of the one-sample tile (512-bit blocks are bound by L2,
 * baseline x86-64's 128-bit registers already give a tile 8 chains). */
#if defined(LSTMC_HAVE_CLONES) && LSTMC_ISA_LIMIT >= 3
#define LSTMC_DEFINE_NARROW_PAIR(NAME, TILE, REAL)                                             \
    LSTMC_DEFINE_PAIR_TILE(NAME##_avx2, REAL, REAL, LSTMC_VECTOR_BYTES / sizeof(REAL),        \
                           __attribute__((target("arch=x86-64-v3"))), LSTMC_LOAD)             \
    LSTMC_DEFINE_PAIR_AS_TWO(NAME##_base, TILE##_base, REAL, REAL)                            \
    typedef void (*NAME##_fn)(LSTMC_PAIR_PARAMS(REAL, REAL));                                 \
    static NAME##_fn NAME##_resolve(void) {                                                   \
        return lstmc_avx2_tiles() ? NAME##_avx2 : NAME##_base;                                \
    }                                                                                         \
    static void NAME(LSTMC_PAIR_PARAMS(REAL, REAL)) __attribute__((ifunc(#NAME "_resolve")));
LSTMC_DEFINE_PAIR_TILE(lstmc_pair_ds4, double, float, 4, __attribute__((target("arch=x86-64-v3"))),
                       LSTMC_WIDEN_256)
#else
#define LSTMC_DEFINE_NARROW_PAIR(NAME, TILE, REAL) LSTMC_DEFINE_PAIR_AS_TWO(NAME, TILE, REAL, REAL)
LSTMC_DEFINE_PAIR_AS_TWO(lstmc_pair_ds4, lstmc_tile_ds4, double, float)
#endif
LSTMC_DEFINE_NARROW_PAIR(lstmc_pair_f8, lstmc_tile_f8, float)
LSTMC_DEFINE_NARROW_PAIR(lstmc_pair_d4, lstmc_tile_d4, double)
LSTMC_DEFINE_PAIR_AS_TWO(lstmc_pair_f16, lstmc_tile_f16, float, float)
LSTMC_DEFINE_PAIR_AS_TWO(lstmc_pair_d8, lstmc_tile_d8, double, double)
LSTMC_DEFINE_PAIR_AS_TWO(lstmc_pair_ds8, lstmc_tile_ds8, double, float)
#define lstmc_pair_fs16 lstmc_pair_f16
#define lstmc_pair_fs8 lstmc_pair_f8

/* Spread tiles for every width, cloned like the tiles whose bits they must give (the
 * projection's and the step's); those over float32 recurrent rows built as the ds tiles
 * are. The forward pass spreads 512-bit blocks by default (AVX-512's 32 registers hold the
 * 29 the tile needs); 256-bit ones (AVX2's 16) only when asked. */
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_f16, float, float, 16, LSTMC_CLONES, LSTMC_LOAD)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_f8, float, float, 8, LSTMC_CLONES, LSTMC_LOAD)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_d8, double, double, 8, LSTMC_CLONES, LSTMC_LOAD)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_d4, double, double, 4, LSTMC_CLONES, LSTMC_LOAD)
#if defined(LSTMC_HAVE_CLONES)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_ds8, double, float, 8, __attribute__((target("arch=x86-64-v4"))),
                          LSTMC_WIDEN_512)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_ds4, double, float, 4, __attribute__((target("arch=x86-64-v3"))),
                          LSTMC_WIDEN_256)
#else
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_ds8, double, float, 8, LSTMC_CLONES, LSTMC_WIDEN)
LSTMC_DEFINE_SPREAD_TILES(lstmc_spread_ds4, double, float, 4, LSTMC_CLONES, LSTMC_WIDEN)
#endif
#define lstmc_spread_fs16 lstmc_spread_f16
#define lstmc_spread_fs8 lstmc_spread_f8

#endif

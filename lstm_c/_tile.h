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
 * acc[s][gate] (NS samples x 4 gate vectors of W lanes) starts from `init` (NS rows of 4W,
 * ld_init apart; ld_init 0 = one row for all, the bias; NULL = zeros), then adds
 * a[s * ld_a + k] * w_a[k] for k < n_a and b[s * ld_b + k] * w_b[k] for k < n_b, where
 * w_*[k] is a row of 4W packed weights, and is stored to out + s * ld_out_s + gate * ld_out_g.
 * All NS * 4 sums stay in vector registers for the whole pass (NS = 6 with 512-bit vectors:
 * 24 accumulators, 4 weight vectors and a broadcast fill AVX-512's 32 registers): each
 * weight vector loaded feeds NS FMAs, and 4 * NS independent chains hide the FMA latency.
 * Every lane sums its k in the same order whatever NS is, so a sample's result does not
 * depend on the samples it is batched with.
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
        vec wg[NG];                                                                           \
        _Pragma("GCC unroll 4")                                                               \
        for (g = 0; g < NG; g++) wg[g] = LOAD(wk + g * W);                                    \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++) {                                                            \
            const REAL e = (v)[s * (ldv) + k];                                                \
            _Pragma("GCC unroll 4")                                                           \
            for (g = 0; g < NG; g++) acc[s][g] += e * wg[g];                                  \
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

/* Gates one pass of a tile sums: all four where NS x 4 accumulators, 4 weight vectors and
 * a broadcast fit in the registers, else two per pass over the rows (the weights are
 * still read once, the samples' values twice, from L1). 512-bit blocks run on AVX-512's
 * 32 registers: four gates up to NS = 6. 256-bit blocks run where AVX2 has 16: a tile of
 * three samples and four gates needs 17, and GCC kept one sum on the stack, a store and
 * a reload in every row's chain of FMAs. Two gates of six samples (12 + 2 + 1 registers)
 * is the shape of AVX2 sgemm's 6 x 16 kernels. */
#define LSTMC_TILE_GATES(W, REAL, NS) ((W) * sizeof(REAL) == 64 || (NS) * 4 + 4 + 1 <= 16 ? 4 : 2)

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

#define LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, NS, ATTR, LOAD_B)                              \
ATTR                                                                                          \
static void lstmc_tile_##SFX##W##_##NS(LSTMC_TILE_PARAMS(REAL, B_REAL)) {                     \
    /* numpy guarantees element alignment only: unaligned vector loads and stores */         \
    typedef REAL vec __attribute__((vector_size(W * sizeof(REAL)), aligned(sizeof(REAL))));  \
    typedef B_REAL b_vec __attribute__((vector_size(W * sizeof(B_REAL)), aligned(sizeof(B_REAL)), unused)); \
    enum { NG = LSTMC_TILE_GATES(W, REAL, NS) };                                              \
    vec acc[NS][NG];                                                                          \
    const ptrdiff_t prefetch_step = prefetch != NULL ? (prefetch_lines << 16) / (n_a + n_b) : 0; \
    ptrdiff_t k;                                                                              \
    int s, g, g0;                                                                             \
    for (g0 = 0; g0 < 4; g0 += NG) {                                                          \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++)                                                              \
            _Pragma("GCC unroll 4")                                                           \
            for (g = 0; g < NG; g++)                                                          \
                acc[s][g] = init != NULL ? *(const vec *)(init + s * ld_init + (g0 + g) * W)  \
                                         : (vec){0};                                          \
        LSTMC_TILE_ROWS(REAL, W, NS, LSTMC_LOAD, w_a, a, ld_a, n_a, 0)                        \
        LSTMC_TILE_ROWS(REAL, W, NS, LOAD_B, w_b, b, ld_b, n_b, n_a)                          \
        _Pragma("GCC unroll 8")                                                               \
        for (s = 0; s < NS; s++)                                                              \
            _Pragma("GCC unroll 4")                                                           \
            for (g = 0; g < NG; g++)                                                          \
                *(vec *)(out + s * ld_out_s + (g0 + g) * ld_out_g) = acc[s][g];               \
    }                                                                                         \
}

/* Tiles of 1 .. 6 samples and the switch choosing one (every width uses up to NSMAX = 6:
 * LSTMC_TILE_GATES keeps 256-bit tiles in AVX2's registers). */
#define LSTMC_DEFINE_TILES_AS(SFX, REAL, B_REAL, W, NSMAX, ATTR, LOAD_B)                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 1, ATTR, LOAD_B)                                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 2, ATTR, LOAD_B)                                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 3, ATTR, LOAD_B)                                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 4, ATTR, LOAD_B)                                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 5, ATTR, LOAD_B)                                      \
LSTMC_DEFINE_TILE(SFX, REAL, B_REAL, W, 6, ATTR, LOAD_B)                                      \
enum { LSTMC_NS_##SFX##W = NSMAX };                                                           \
static void lstmc_tile_##SFX##W(ptrdiff_t ns, LSTMC_TILE_PARAMS(REAL, B_REAL)) {              \
    switch (ns) {                                                                             \
    case 1: lstmc_tile_##SFX##W##_1(LSTMC_TILE_ARGS); break;                                  \
    case 2: lstmc_tile_##SFX##W##_2(LSTMC_TILE_ARGS); break;                                  \
    case 3: lstmc_tile_##SFX##W##_3(LSTMC_TILE_ARGS); break;                                  \
    case 4: lstmc_tile_##SFX##W##_4(LSTMC_TILE_ARGS); break;                                  \
    case 5: lstmc_tile_##SFX##W##_5(LSTMC_TILE_ARGS); break;                                  \
    default: lstmc_tile_##SFX##W##_6(LSTMC_TILE_ARGS); break;                                 \
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

#define LSTMC_DEFINE_TILES(SFX, REAL, W, NSMAX)                                                \
    LSTMC_DEFINE_TILES_AS(SFX, REAL, REAL, W, NSMAX, LSTMC_CLONES, LSTMC_LOAD)
LSTMC_DEFINE_TILES(f, float, 16, 6)
LSTMC_DEFINE_TILES(f, float, 8, 6)
LSTMC_DEFINE_TILES(d, double, 8, 6)
LSTMC_DEFINE_TILES(d, double, 4, 6)

/* float64 tiles over recurrent rows kept in float32 (a->rec_single, lstmc_single_rows).
 * They must give the d tiles' bits, so they are built for the ISA level whose d clone
 * this CPU runs (the same FMA contraction) and used only on such CPUs. GCC 12 widens
 * a generic vector of 8 floats in halves (extract, convert, insert): the intrinsic is
 * one instruction. float32 has no such rows; its name for the tile is its own tile,
 * never called with them. */
#if defined(LSTMC_HAVE_CLONES)
#define LSTMC_WIDEN_512(p) ((vec)_mm512_cvtps_pd(_mm256_loadu_ps(p)))
#define LSTMC_WIDEN_256(p) ((vec)_mm256_cvtps_pd(_mm_loadu_ps(p)))
LSTMC_DEFINE_TILES_AS(ds, double, float, 8, 6, __attribute__((target("arch=x86-64-v4"))), LSTMC_WIDEN_512)
LSTMC_DEFINE_TILES_AS(ds, double, float, 4, 6, __attribute__((target("arch=x86-64-v3"))), LSTMC_WIDEN_256)
static int lstmc_single_rows(ptrdiff_t W) {
    __builtin_cpu_init();
    return W == LSTMC_WIDE_W_d ? LSTMC_CPU_SUPPORTS("x86-64-v4") != 0
                               : LSTMC_CPU_SUPPORTS("x86-64-v3") != 0;
}
#else  /* one build for every tile: the same contraction everywhere */
LSTMC_DEFINE_TILES_AS(ds, double, float, 8, 6, LSTMC_CLONES, LSTMC_WIDEN)
LSTMC_DEFINE_TILES_AS(ds, double, float, 4, 6, LSTMC_CLONES, LSTMC_WIDEN)
static int lstmc_single_rows(ptrdiff_t W) { (void)W; return 1; }
#endif
#define lstmc_tile_fs16 lstmc_tile_f16
#define lstmc_tile_fs8 lstmc_tile_f8

/* Samples per tile for blocks of W lanes: below this a batch is projected ahead. */
static int lstmc_tile_samples(ptrdiff_t W, int is_double) {
    if (is_double) return W == LSTMC_WIDE_W_d ? LSTMC_NS_d8 : LSTMC_NS_d4;
    return W == LSTMC_WIDE_W_f ? LSTMC_NS_f16 : LSTMC_NS_f8;
}

#endif

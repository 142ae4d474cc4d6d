/* float32 GEMM micro-kernels for AVX-512 machines, and the products the backward pass
 * builds from them: the weight gradient A^T dZ (A's rows read in place), its column sums and
 * row sums by token id on the way, and the input gradient dZ B^T.
 *
 * Used by _backward.h (the LSTM: dK, dR, db, dX and phase B of the recurrence) and by
 * _backward.pyx's linear_gradients (a linear Dense layer). Included after _recurrence.h,
 * which gives lstmc_enter_ftz and LSTMC_THREAD_ID.
 */
#ifndef LSTMC_GEMM_H
#define LSTMC_GEMM_H

#include <stdint.h>
#include <string.h>

#include "_cpu.h"   /* LSTMC_CPU_SUPPORTS */

/* ------------------------------------------------------------------------------------------
 * float32 GEMM micro-kernels for AVX-512 machines (chosen at run time; elsewhere the
 * portable code and BLAS run). Why our own: the BLAS SciPy ships may be pinned to
 * its AVX2 kernels (OPENBLAS_CORETYPE), half of an AVX-512 core's FMA rate, and the
 * backward's products have fixed, simple shapes.
 *
 * One kernel form: C[i, 0:32] (+)= sum over k < kc of a[k * ks + i] * bp[k * 32 + 0:32],
 * for i < MR: an (MR x 32) tile in 2 MR zmm accumulators; bp is a packed panel of 32
 * columns (k-major), a either packed too (ks = MR) or rows of a row-major matrix read
 * across (ks = its leading dimension: A^T B products need no packing of A). KC rows of k
 * at a time: a 16 KB panel of B and the up to 128 lines of A one tile reads fit in L1
 * together (KC 256 measured ~3% slower on the weight gradient).
 * ------------------------------------------------------------------------------------------ */
enum { LSTMC_GEMM_NR = 32, LSTMC_GEMM_MR = 12, LSTMC_GEMM_KC = 128 };

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define LSTMC_HAVE_AVX512_GEMM 1
#define LSTMC_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

/* acc[i] += sum over k < kc of A(i, k) * bp[k * 32 + 0:32], then C[i, 0:32] = acc[i]: the
 * loop both micro-kernels share; they differ only in where A(i, k) is read. */
#define LSTMC_MICRO_ACCUMULATE_AND_STORE(MR, A_IK)                                             \
    for (k = 0; k < kc; k++) {                                                                 \
        const __m512 b0 = _mm512_loadu_ps(bp + k * 32), b1 = _mm512_loadu_ps(bp + k * 32 + 16);\
        _Pragma("GCC unroll 12")                                                               \
        for (i = 0; i < MR; i++) {                                                             \
            const __m512 ai = _mm512_set1_ps(A_IK);                                            \
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);                                        \
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);                                        \
        }                                                                                      \
    }                                                                                          \
    _Pragma("GCC unroll 12")                                                                   \
    for (i = 0; i < MR; i++) {                                                                 \
        _mm512_storeu_ps(c + i * ldc, acc0[i]);                                                \
        _mm512_storeu_ps(c + i * ldc + 16, acc1[i]);                                           \
    }

#define LSTMC_DEFINE_MICRO(MR)                                                                 \
LSTMC_AVX512 static void lstmc_micro##MR(ptrdiff_t kc, const float *a, ptrdiff_t ks,           \
                                        const float *bp, float *c, ptrdiff_t ldc,              \
                                        int accumulate) {                                      \
    __m512 acc0[MR], acc1[MR];                                                                 \
    ptrdiff_t i, k;                                                                            \
    _Pragma("GCC unroll 12")                                                                   \
    for (i = 0; i < MR; i++) {                                                                 \
        acc0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();             \
        acc1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();        \
    }                                                                                          \
    LSTMC_MICRO_ACCUMULATE_AND_STORE(MR, a[k * ks + i])                                        \
}

LSTMC_DEFINE_MICRO(12)
LSTMC_DEFINE_MICRO(8)
LSTMC_DEFINE_MICRO(4)
LSTMC_DEFINE_MICRO(2)
LSTMC_DEFINE_MICRO(1)

/* The same tile from MR rows of a row-major A read along (A @ B, no packing of A):
 * C[i, 0:32] = sum over k < kc of row[i][k] * bp[k * 32 + 0:32]. */
#define LSTMC_DEFINE_MICRO_ROWS(MR)                                                            \
LSTMC_AVX512 static void lstmc_micro_rows##MR(ptrdiff_t kc, const float *const *row,           \
                                             const float *bp, float *c, ptrdiff_t ldc) {       \
    __m512 acc0[MR], acc1[MR];                                                                 \
    const float *r[MR];                                                                        \
    ptrdiff_t i, k;                                                                            \
    _Pragma("GCC unroll 12")                                                                   \
    for (i = 0; i < MR; i++) {                                                                 \
        acc0[i] = acc1[i] = _mm512_setzero_ps();                                               \
        r[i] = row[i];                                                                         \
    }                                                                                          \
    LSTMC_MICRO_ACCUMULATE_AND_STORE(MR, r[i][k])                                              \
}

LSTMC_DEFINE_MICRO_ROWS(12)
LSTMC_DEFINE_MICRO_ROWS(8)
LSTMC_DEFINE_MICRO_ROWS(4)

static int lstmc_have_avx512_gemm(void) {
    __builtin_cpu_init();
    return LSTMC_CPU_SUPPORTS("avx512f") && LSTMC_CPU_SUPPORTS("avx512vl")
        && LSTMC_CPU_SUPPORTS("avx512dq") && LSTMC_CPU_SUPPORTS("avx512bw");
}

/* pick the widest micro-kernel tile that fits the rows left, so no row past A's end is read */
LSTMC_AVX512 static void lstmc_micro_fit(ptrdiff_t mr, ptrdiff_t kc, const float *a, ptrdiff_t ks,
                                         const float *bp, float *c, ptrdiff_t ldc, int accumulate) {
    switch (mr) {
    case 12: lstmc_micro12(kc, a, ks, bp, c, ldc, accumulate); break;
    case 8: lstmc_micro8(kc, a, ks, bp, c, ldc, accumulate); break;
    case 4: lstmc_micro4(kc, a, ks, bp, c, ldc, accumulate); break;
    case 2: lstmc_micro2(kc, a, ks, bp, c, ldc, accumulate); break;
    default: lstmc_micro1(kc, a, ks, bp, c, ldc, accumulate); break;
    }
}

static inline ptrdiff_t lstmc_tile_rows(ptrdiff_t left) {
    return left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

/* Gradients over all rows (all timesteps of all samples) at once:
 *   dW (m, n_pad) = A^T dZ      (if a) A (rows, m) with row stride lda; dZ (rows, n), row-major
 *   sums (n_ids, n) += dZ's rows summed by ids[row] (if sums, which need a; all into row 0
 *                      without ids: column sums)
 *   dX (rows, d) = dZ B^T       (if dx) B (d, n) given packed as pack_recurrent_transpose(B, 32)
 * For the LSTM, A = [x | h_in | 1] gives dK, dR and db at once, and sums by token id fold an
 * Embedding in (its table's and the kernel's gradients then come from those sums). dX alone
 * is also a forward product: x @ K is dX with dZ = x and B = K^T. n_pad is a multiple of 32;
 * dW's columns past n come out 0. The work is cut in pieces (128 columns of dW and sums, 240
 * rows of dX) shared by n_threads threads; each piece's sums run in one fixed order, so the
 * results do not depend on the thread count. work: n_threads * lstmc_gradient_work() floats. */
typedef struct {
    ptrdiff_t rows, m, lda, n, n_pad, d;
    const float *a, *dz, *bt;
    const ptrdiff_t *ids;
    float *dw, *dx, *sums, *work;
    int n_threads;
} lstmc_gradient_args;

enum { LSTMC_DX_ROWS = 20 * LSTMC_GEMM_MR, LSTMC_DW_PANELS = 4, LSTMC_DW_COLS = LSTMC_DW_PANELS * LSTMC_GEMM_NR };

/* a thread's dZ panels (dW) or one tile (dX), and 16 floats to start on a 64-byte boundary */
static inline ptrdiff_t lstmc_gradient_work(void) {
    return LSTMC_DW_PANELS * LSTMC_GEMM_KC * LSTMC_GEMM_NR + 16;
}

/* Columns [n0, n0 + 32 * LSTMC_DW_PANELS) of dW: dZ is read in rows of up to 128 floats
 * (a stride of 4U floats between rows defeats the prefetcher on narrower reads), packed
 * into panels of 32 columns, each KC x 32 panel then used by every tile of dW's rows.
 * The row sums read the same dZ values while they are in L1. */
LSTMC_AVX512 static void lstmc_dw_piece(const lstmc_gradient_args *g, ptrdiff_t n0, float *pack) {
    const ptrdiff_t cols = g->n - n0 < LSTMC_DW_COLS ? g->n - n0 : LSTMC_DW_COLS;
    const ptrdiff_t panels = (cols + LSTMC_GEMM_NR - 1) / LSTMC_GEMM_NR;
    ptrdiff_t k0, k, mb, mr, q, j;
    for (k0 = 0; k0 < g->rows; k0 += LSTMC_GEMM_KC) {
        const ptrdiff_t kc = g->rows - k0 < LSTMC_GEMM_KC ? g->rows - k0 : LSTMC_GEMM_KC;
        for (k = 0; k < kc; k++) {  /* panel q: dZ[k0 : k0 + kc, n0 + 32 q : n0 + 32 (q + 1)] */
            const float *src = g->dz + (k0 + k) * g->n + n0;
            for (q = 0; q < panels; q++) {
                float *dst = pack + (q * LSTMC_GEMM_KC + k) * LSTMC_GEMM_NR;
                const ptrdiff_t have = cols - q * LSTMC_GEMM_NR;
                if (have >= LSTMC_GEMM_NR) {
                    _mm512_storeu_ps(dst, _mm512_loadu_ps(src + q * LSTMC_GEMM_NR));
                    _mm512_storeu_ps(dst + 16, _mm512_loadu_ps(src + q * LSTMC_GEMM_NR + 16));
                } else {
                    memcpy(dst, src + q * LSTMC_GEMM_NR, have * sizeof(float));
                    memset(dst + have, 0, (LSTMC_GEMM_NR - have) * sizeof(float));
                }
            }
            if (g->sums != NULL) {
                float *sum = g->sums + (g->ids != NULL ? g->ids[k0 + k] : 0) * g->n + n0;
                for (j = 0; j < cols; j++) sum[j] += src[j];
            }
        }
        for (q = 0; q < panels; q++)
            for (mb = 0; mb < g->m; mb += mr) {
                mr = lstmc_tile_rows(g->m - mb);
                lstmc_micro_fit(mr, kc, g->a + k0 * g->lda + mb, g->lda, pack + q * LSTMC_GEMM_KC * LSTMC_GEMM_NR,
                                g->dw + mb * g->n_pad + n0 + q * LSTMC_GEMM_NR, g->n_pad, k0 > 0);
            }
    }
}

/* Rows [r0, r0 + LSTMC_DX_ROWS) of dX. A last group of fewer than 12 rows repeats row r in
 * the tile's spare rows, and a last panel of fewer than 32 columns computes the zero padding
 * of B's packing: both go through a tile (12 x 32 floats of the work) and keep their own part. */
static void lstmc_dx_piece(const lstmc_gradient_args *g, ptrdiff_t r0, float *tile) {
    const ptrdiff_t r1 = g->rows - r0 < LSTMC_DX_ROWS ? g->rows : r0 + LSTMC_DX_ROWS;
    ptrdiff_t r, nb, s;
    for (r = r0; r < r1; r += LSTMC_GEMM_MR) {
        const ptrdiff_t ns = r1 - r < LSTMC_GEMM_MR ? r1 - r : LSTMC_GEMM_MR;
        const float *row[LSTMC_GEMM_MR];
        for (s = 0; s < LSTMC_GEMM_MR; s++) row[s] = g->dz + (r + (s < ns ? s : 0)) * g->n;
        for (nb = 0; nb < g->d; nb += LSTMC_GEMM_NR) {
            const ptrdiff_t cols = g->d - nb < LSTMC_GEMM_NR ? g->d - nb : LSTMC_GEMM_NR;
            if (ns == LSTMC_GEMM_MR && cols == LSTMC_GEMM_NR) {
                lstmc_micro_rows12(g->n, row, g->bt + nb * g->n, g->dx + r * g->d + nb, g->d);
                continue;
            }
            lstmc_micro_rows12(g->n, row, g->bt + nb * g->n, tile, LSTMC_GEMM_NR);
            for (s = 0; s < ns; s++)
                memcpy(g->dx + (r + s) * g->d + nb, tile + s * LSTMC_GEMM_NR, cols * sizeof(float));
        }
    }
}

/* The pieces of dW's columns, then of dX's rows: more threads than pieces would idle. */
static inline ptrdiff_t lstmc_gradient_col_pieces(const lstmc_gradient_args *g) {
    return g->a != NULL ? (g->n_pad + LSTMC_DW_COLS - 1) / LSTMC_DW_COLS : 0;
}
static inline ptrdiff_t lstmc_gradient_pieces(const lstmc_gradient_args *g) {
    return lstmc_gradient_col_pieces(g) + (g->dx != NULL ? (g->rows + LSTMC_DX_ROWS - 1) / LSTMC_DX_ROWS : 0);
}

static void lstmc_gradients_avx512(const lstmc_gradient_args *g) {
    const ptrdiff_t col_pieces = lstmc_gradient_col_pieces(g), pieces = lstmc_gradient_pieces(g);
    ptrdiff_t piece;
    #pragma omp parallel for schedule(dynamic) num_threads(g->n_threads)
    for (piece = 0; piece < pieces; piece++) {
        int p = 0, np = 1;
        unsigned int mxcsr = lstmc_enter_ftz();
        float *work;
        LSTMC_THREAD_ID(p, np);
        (void)np;
        work = g->work + p * lstmc_gradient_work();
        work = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);  /* whole cache lines per vector */
        if (piece < col_pieces) lstmc_dw_piece(g, piece * LSTMC_DW_COLS, work);
        else lstmc_dx_piece(g, (piece - col_pieces) * LSTMC_DX_ROWS, work);
        lstmc_leave_ftz(mxcsr);
    }
}
#else
#define LSTMC_HAVE_AVX512_GEMM 0
static int lstmc_have_avx512_gemm(void) { return 0; }

typedef struct {
    ptrdiff_t rows, m, lda, n, n_pad, d;
    const float *a, *dz, *bt;
    const ptrdiff_t *ids;
    float *dw, *dx, *sums, *work;
    int n_threads;
} lstmc_gradient_args;
static inline ptrdiff_t lstmc_gradient_work(void) { return 1; }
static inline ptrdiff_t lstmc_gradient_pieces(const lstmc_gradient_args *g) { (void)g; return 1; }
static void lstmc_gradients_avx512(const lstmc_gradient_args *g) { (void)g; }
#endif

#endif /* LSTMC_GEMM_H */

/* The LSTM backward pass (BPTT) over a forward trace: the sequential part.
 *
 * What is sequential in backprop through time is the chain dh_k -> dz_k -> dh_{k-1}
 * (dh_prev = dz_k @ R^T) and the cell-state chain dc_k -> dc_{k-1}. That runs here, steps
 * k = T-1 .. 0, in one OpenMP region like the forward (_recurrence.h says why: no thread
 * pool wakes or spins against another between steps). Everything that is not sequential,
 * the weight gradients dK = X^T dZ, dR = H_in^T dZ, db and the input gradient dX = dZ K^T,
 * is left to large GEMMs over all steps after the region: lstmc_gradients_avx512 in _gemm.h
 * (float32 on AVX-512 CPUs) or BLAS (_backward.pyx).
 *
 * Work split: thread p owns a contiguous range of blocks of W units (W = 32 floats or 16
 * doubles, LSTMC_BACK_W below).
 * Each step has two phases with one barrier between them:
 *   A. the cell, elementwise, for the thread's units of every sample: add the step's output
 *      gradient to dh, backpropagate through h = o * act(c) and c = f * c_prev + i * g into
 *      dz (the four gate pre-activation gradients, row k of dZ) and dc;
 *   B. the recurrent product for the thread's units: dh = (dz @ R^T) * keep, which reads
 *      the whole dz row written by every thread in phase A (hence the barrier).
 * Phase A of step k-1 touches only the thread's own units of dh and dc and a different
 * row of dZ than phase B of step k reads, so no second barrier is needed.
 *
 * Derivatives come from the saved gate values where the activation can be inverted
 * (sigmoid' = y (1 - y), tanh' = 1 - y^2, ...). silu, gelu, hard_silu and mish cannot be:
 * for those the caller recomputes the pre-activations (argument z).
 */
#ifndef LSTMC_BACKWARD_H
#define LSTMC_BACKWARD_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  /* the forward's entry point, unused here */
#include "_recurrence.h" /* lstmc_enter_ftz, LSTMC_THREAD_ID, LSTMC_W_f/d, the activations */
#pragma GCC diagnostic pop

/* True for activations whose derivative needs the pre-activation x (not only y = f(x)). */
static inline int lstmc_derivative_needs_input(int code) {
    return code == LSTMC_SILU || code == LSTMC_GELU || code == LSTMC_HARD_SILU || code == LSTMC_MISH;
}

/* slope[k] = f'(x[k]) for activation `code`, given y[k] = f(x[k]); x may be NULL unless
 * lstmc_derivative_needs_input(code). At a kink the flat side's slope (relu'(0) = 0). */
#define LSTMC_DEFINE_DERIVATIVE(SFX, T, EXP, EXPM1, TANH, ERF, FABS)                           \
static inline __attribute__((always_inline)) void lstmc_derivative_##SFX(                      \
        int code, const T *x, const T *y, T *slope, ptrdiff_t n) {                            \
    ptrdiff_t k;                                                                               \
    switch (code) {                                                                            \
    case LSTMC_SIGMOID:                                                                        \
        for (k = 0; k < n; k++) slope[k] = y[k] * ((T)1 - y[k]);                               \
        break;                                                                                 \
    case LSTMC_TANH:                                                                           \
        for (k = 0; k < n; k++) slope[k] = (T)1 - y[k] * y[k];                                 \
        break;                                                                                 \
    case LSTMC_HARD_SIGMOID:                                                                   \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)0 && y[k] < (T)1 ? (T)1 / 6 : (T)0;        \
        break;                                                                                 \
    case LSTMC_HARD_SIGMOID_KERAS2:                                                            \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)0 && y[k] < (T)1 ? (T)0.2 : (T)0;          \
        break;                                                                                 \
    case LSTMC_RELU:                                                                           \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)0 ? (T)1 : (T)0;                          \
        break;                                                                                 \
    case LSTMC_SOFTSIGN: /* y = x / (1 + |x|), so 1 / (1 + |x|)^2 = (1 - |y|)^2 */             \
        for (k = 0; k < n; k++) slope[k] = ((T)1 - FABS(y[k])) * ((T)1 - FABS(y[k]));          \
        break;                                                                                 \
    case LSTMC_ELU: /* e^x = y + 1 below 0 */                                                  \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)0 ? (T)1 : y[k] + (T)1;                   \
        break;                                                                                 \
    case LSTMC_SELU:                                                                           \
        for (k = 0; k < n; k++)                                                                \
            slope[k] = y[k] > (T)0 ? (T)LSTMC_SELU_SCALE                                       \
                                   : y[k] + (T)(LSTMC_SELU_SCALE * LSTMC_SELU_ALPHA);          \
        break;                                                                                 \
    case LSTMC_SOFTPLUS: /* sigmoid(x) = 1 - e^-y */                                           \
        for (k = 0; k < n; k++) slope[k] = -EXPM1(-y[k]);                                      \
        break;                                                                                 \
    case LSTMC_RELU6:                                                                          \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)0 && y[k] < (T)6 ? (T)1 : (T)0;           \
        break;                                                                                 \
    case LSTMC_HARD_TANH:                                                                      \
        for (k = 0; k < n; k++) slope[k] = y[k] > (T)-1 && y[k] < (T)1 ? (T)1 : (T)0;          \
        break;                                                                                 \
    case LSTMC_LEAKY_RELU:                                                                     \
        for (k = 0; k < n; k++) slope[k] = y[k] < (T)0 ? (T)LSTMC_LEAKY_SLOPE : (T)1;          \
        break;                                                                                 \
    case LSTMC_EXPONENTIAL:                                                                    \
        for (k = 0; k < n; k++) slope[k] = y[k];                                               \
        break;                                                                                 \
    case LSTMC_LOG_SIGMOID: /* sigmoid(-x) = 1 - e^y */                                        \
        for (k = 0; k < n; k++) slope[k] = -EXPM1(y[k]);                                       \
        break;                                                                                 \
    case LSTMC_SILU:                                                                           \
        for (k = 0; k < n; k++) {                                                              \
            T s = lstmc_sigmoid_##SFX(x[k]);                                                   \
            slope[k] = s * ((T)1 + x[k] * ((T)1 - s));                                         \
        }                                                                                      \
        break;                                                                                 \
    case LSTMC_GELU:                                                                           \
        for (k = 0; k < n; k++)                                                                \
            slope[k] = (T)0.5 * ((T)1 + ERF(x[k] * (T)LSTMC_SQRT1_2))                          \
                       + x[k] * EXP((T)-0.5 * x[k] * x[k]) * (T)0.39894228040143267794;        \
        break;                                                                                 \
    case LSTMC_HARD_SILU:                                                                      \
        for (k = 0; k < n; k++)                                                                \
            slope[k] = lstmc_hard_sigmoid_##SFX(x[k])                                          \
                       + (x[k] > (T)-3 && x[k] < (T)3 ? x[k] / (T)6 : (T)0);                   \
        break;                                                                                 \
    case LSTMC_MISH:                                                                           \
        for (k = 0; k < n; k++) {                                                              \
            T th = TANH(lstmc_softplus_##SFX(x[k]));                                           \
            slope[k] = th + x[k] * ((T)1 - th * th) * lstmc_sigmoid_##SFX(x[k]);               \
        }                                                                                      \
        break;                                                                                 \
    default: /* LSTMC_LINEAR */                                                                \
        for (k = 0; k < n; k++) slope[k] = (T)1;                                               \
        break;                                                                                 \
    }                                                                                          \
}

LSTMC_DEFINE_DERIVATIVE(f, float, expf, expm1f, tanhf, erff, fabsf)
LSTMC_DEFINE_DERIVATIVE(d, double, exp, expm1, tanh, erf, fabs)

/* Units per block of the backward pass: 32 floats or 16 doubles (two 512-bit or four
 * 256-bit vectors), so that each broadcast sample value feeds several FMAs and NS samples
 * give many independent accumulator chains. Our own constant: the forward's block width
 * (LSTMC_W_f) may change without changing this layout. */
enum { LSTMC_BACK_W_f = 32, LSTMC_BACK_W_d = 16 };

#include "_gemm.h"  /* the float32 AVX-512 micro-kernels and gradient products */

#if LSTMC_HAVE_AVX512_GEMM
/* Phase B (below) with the micro-kernel: dh = (dz_t @ R^T) * keep for blocks [blk0, blk1),
 * up to 12 samples at a time (apack: 12 * 4U floats of the thread's scratch). */
static void lstmc_hidden_backward_avx512(ptrdiff_t B, ptrdiff_t T, ptrdiff_t U, ptrdiff_t t,
                                         ptrdiff_t blk0, ptrdiff_t blk1, const float *dz,
                                         const float *rt, const unsigned char *mask,
                                         const float *rec_dropout, float *dh, float *apack) {
    const ptrdiff_t K = 4 * U;
    ptrdiff_t b0, blk, s, lane;
    float tile[LSTMC_GEMM_MR * LSTMC_GEMM_NR];
    for (b0 = 0; b0 < B; b0 += LSTMC_GEMM_MR) {
        const ptrdiff_t ns = B - b0 < LSTMC_GEMM_MR ? B - b0 : LSTMC_GEMM_MR;
        const ptrdiff_t mr = ns > 8 ? 12 : (ns > 4 ? 8 : 4);
        const float *row[LSTMC_GEMM_MR];
        for (s = 0; s < mr; s++) row[s] = dz + ((b0 + (s < ns ? s : 0)) * T + t) * K;
        for (blk = blk0; blk < blk1; blk++) {
            const ptrdiff_t lanes = U - blk * 32 < 32 ? U - blk * 32 : 32;
            const float *bp = rt + blk * K * 32;
            if (mr == 12) lstmc_micro_rows12(K, row, bp, tile, 32);
            else if (mr == 8) lstmc_micro_rows8(K, row, bp, tile, 32);
            else lstmc_micro_rows4(K, row, bp, tile, 32);
            for (s = 0; s < ns; s++) {
                const ptrdiff_t b = b0 + s, at = b * U + blk * 32;
                if (mask != NULL && !mask[b * T + t]) continue;  /* dh passed through */
                if (rec_dropout != NULL)
                    for (lane = 0; lane < lanes; lane++) dh[at + lane] = tile[s * 32 + lane] * rec_dropout[at + lane];
                else
                    memcpy(dh + at, tile + s * 32, lanes * sizeof(float));
            }
        }
    }
}
#else
static void lstmc_hidden_backward_avx512(ptrdiff_t B, ptrdiff_t T, ptrdiff_t U, ptrdiff_t t,
                                         ptrdiff_t blk0, ptrdiff_t blk1, const float *dz,
                                         const float *rt, const unsigned char *mask,
                                         const float *rec_dropout, float *dh, float *apack) {
    (void)B; (void)T; (void)U; (void)t; (void)blk0; (void)blk1; (void)dz; (void)rt;
    (void)mask; (void)rec_dropout; (void)dh; (void)apack;
}

#endif

/* acc[s * W + lane] = sum over j < n of v[s * ldv + j] * w[j * W + lane], for NS samples:
 * one block of W units of dz @ R^T (w = the block's rows of R, transposed and packed). */
#define LSTMC_DEFINE_BACK_MATVEC(SFX, REAL, NS)                                                \
LSTMC_CLONES                                                                                   \
static void lstmc_back_matvec##NS##_##SFX(const REAL *w, ptrdiff_t n, const REAL *v,          \
                                          ptrdiff_t ldv, REAL *acc) {                          \
    enum { W = LSTMC_BACK_W_##SFX };                                                           \
    REAL sum[NS][W];                                                                           \
    ptrdiff_t j, s, lane;                                                                      \
    memset(sum, 0, sizeof(sum));                                                               \
    for (j = 0; j < n; j++) {                                                                  \
        const REAL *w_j = w + j * W;                                                           \
        _Pragma("GCC unroll 4")                                                                \
        for (s = 0; s < NS; s++) {                                                             \
            const REAL v_j = v[s * ldv + j];                                                   \
            _Pragma("omp simd")                                                                \
            for (lane = 0; lane < W; lane++) sum[s][lane] += v_j * w_j[lane];                  \
        }                                                                                      \
    }                                                                                          \
    for (s = 0; s < NS; s++)                                                                   \
        for (lane = 0; lane < W; lane++) acc[s * W + lane] = sum[s][lane];                     \
}

/* Scratch values per thread: 3 blocks' worth per block for phase A, and 12 samples' dz
 * rows packed for phase B's micro-kernel (LSTMC_GEMM_MR x 4U). */
static inline ptrdiff_t lstmc_backward_scratch(ptrdiff_t U, ptrdiff_t nblk) {
    return 3 * nblk * LSTMC_BACK_W_f + LSTMC_GEMM_MR * 4 * U + 16;
}

#define LSTMC_DEFINE_BACKWARD(SFX, REAL)                                                       \
typedef struct {                                                                               \
    ptrdiff_t B, T, D, U, nblk;                                                                \
    const REAL *trace;               /* (6, B, T, U) i f g o c h, processing order */           \
    const REAL *h0, *c0;             /* (B, U) the state the forward started from */            \
    const REAL *z;                   /* (B, T, 4U) pre-activations, time order, or NULL */      \
    const REAL *rt;                  /* (nblk, 4U, W): rt[blk][j][lane] = R[blk W + lane, j] */ \
    const REAL *rec_dropout;         /* (B, U) or NULL */                                       \
    const unsigned char *mask;       /* (B, T) time order, or NULL */                           \
    const ptrdiff_t *first_valid;    /* (B,) first valid processing step, with a mask */        \
    const REAL *d_out_seq;           /* (B, T, U) processing order, or NULL */                  \
    const REAL *d_out_last;          /* (B, U) or NULL */                                       \
    REAL *dh, *dc;                   /* (B, U): d final state in, d initial state out */        \
    REAL *dz;                        /* (B, T, 4U) out, time order; 0 at masked steps */        \
    REAL *h_in;                      /* (B T, ld_h_in) out, time order: h_prev * keep */       \
    REAL *scratch;                   /* (n_threads, lstmc_backward_scratch(U, nblk)) */         \
    ptrdiff_t ld_h_in;               /* row stride of h_in (>= U) */                            \
    int act, rec_act, go_backwards, zero_output_for_mask, n_threads;                           \
    int fast;                        /* float32 on AVX-512: phase B by the micro-kernel */      \
} lstmc_backward_args_##SFX;                                                                   \
                                                                                               \
LSTMC_DEFINE_BACK_MATVEC(SFX, REAL, 4)                                                         \
LSTMC_DEFINE_BACK_MATVEC(SFX, REAL, 2)                                                         \
LSTMC_DEFINE_BACK_MATVEC(SFX, REAL, 1)                                                         \
                                                                                               \
/* Phase A for units [u0, u0 + n) of every sample at step k (scratch: 3n values). */          \
LSTMC_CLONES                                                                                   \
static void lstmc_cell_backward_##SFX(const lstmc_backward_args_##SFX *a, ptrdiff_t k,        \
                                      ptrdiff_t u0, ptrdiff_t n, REAL *scratch) {             \
    const ptrdiff_t T = a->T, U = a->U, BTU = a->B * a->T * a->U;                              \
    const ptrdiff_t t = a->go_backwards ? T - 1 - k : k;                                       \
    REAL *act_c = scratch, *slope_c = scratch + n, *slope = scratch + 2 * n;                   \
    ptrdiff_t b, u, gate;                                                                      \
    for (b = 0; b < a->B; b++) {                                                               \
        const ptrdiff_t row = (b * T + k) * U + u0, prev = row - U;                            \
        const int valid = a->mask == NULL || a->mask[b * T + t];                               \
        /* the output is h after a valid step, the carried h after a masked one, but a */     \
        /* constant 0 before the first valid step or with zero_output_for_mask */              \
        const int emits = valid || (!a->zero_output_for_mask && k >= a->first_valid[b]);       \
        REAL *dh = a->dh + b * U + u0, *dc = a->dc + b * U + u0;                               \
        REAL *dz = a->dz + (b * T + t) * 4 * U + u0, *h_in = a->h_in + (b * T + t) * a->ld_h_in + u0; \
        const REAL *h_prev = k ? a->trace + 5 * BTU + prev : a->h0 + b * U + u0;               \
        const REAL *c_prev = k ? a->trace + 4 * BTU + prev : a->c0 + b * U + u0;               \
        const REAL *gi = a->trace + row, *gf = gi + BTU, *gg = gi + 2 * BTU;                   \
        const REAL *go = gi + 3 * BTU, *c = gi + 4 * BTU;                                      \
        if (emits && a->d_out_seq != NULL)                                                     \
            for (u = 0; u < n; u++) dh[u] += a->d_out_seq[row + u];                            \
        if (emits && k == T - 1 && a->d_out_last != NULL)                                      \
            for (u = 0; u < n; u++) dh[u] += a->d_out_last[b * U + u0 + u];                    \
        if (a->rec_dropout != NULL)                                                            \
            for (u = 0; u < n; u++) h_in[u] = h_prev[u] * a->rec_dropout[b * U + u0 + u];      \
        else                                                                                   \
            memcpy(h_in, h_prev, n * sizeof(REAL));                                            \
        if (!valid) { /* the cell's result was discarded: (h, c) and dh, dc pass through */   \
            for (gate = 0; gate < 4; gate++) memset(dz + gate * U, 0, n * sizeof(REAL));       \
            continue;                                                                          \
        }                                                                                      \
        memcpy(act_c, c, n * sizeof(REAL));                                                    \
        lstmc_activate_##SFX(a->act, act_c, n);                                                \
        if (a->act == LSTMC_TANH && a->rec_act == LSTMC_SIGMOID) { /* Keras's default: one pass */ \
            _Pragma("omp simd")                                                                \
            for (u = 0; u < n; u++) {                                                          \
                const REAL i_ = gi[u], f_ = gf[u], g_ = gg[u], o_ = go[u], ac = act_c[u];     \
                const REAL dc_new = dc[u] + dh[u] * o_ * ((REAL)1 - ac * ac);                  \
                dz[u] = dc_new * g_ * (i_ * ((REAL)1 - i_));                                   \
                dz[U + u] = dc_new * c_prev[u] * (f_ * ((REAL)1 - f_));                        \
                dz[2 * U + u] = dc_new * i_ * ((REAL)1 - g_ * g_);                             \
                dz[3 * U + u] = dh[u] * ac * (o_ * ((REAL)1 - o_));                            \
                dc[u] = dc_new * f_;                                                           \
            }                                                                                  \
            continue;                                                                          \
        }                                                                                      \
        lstmc_derivative_##SFX(a->act, c, act_c, slope_c, n);                                  \
        for (u = 0; u < n; u++) {                                                              \
            const REAL dc_new = dc[u] + dh[u] * go[u] * slope_c[u];  /* h = o * act(c) */     \
            dz[u] = dc_new * gg[u];                                  /* c = f c_prev + i g */ \
            dz[U + u] = dc_new * c_prev[u];                                                    \
            dz[2 * U + u] = dc_new * gi[u];                                                    \
            dz[3 * U + u] = dh[u] * act_c[u];                                                  \
            dc[u] = dc_new * gf[u];                                                            \
        }                                                                                      \
        for (gate = 0; gate < 4; gate++) {  /* through each gate's activation */             \
            const REAL *z = a->z != NULL ? a->z + (b * T + t) * 4 * U + gate * U + u0 : NULL;  \
            lstmc_derivative_##SFX(gate == 2 ? a->act : a->rec_act, z, gi + gate * BTU, slope, n); \
            for (u = 0; u < n; u++) dz[gate * U + u] *= slope[u];                              \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
/* Phase B for blocks [blk0, blk1) at step k: dh = (dz @ R^T) * keep at valid steps. */       \
static void lstmc_hidden_backward_##SFX(const lstmc_backward_args_##SFX *a, ptrdiff_t k,      \
                                        ptrdiff_t blk0, ptrdiff_t blk1, REAL *apack) {        \
    enum { W = LSTMC_BACK_W_##SFX };                                                           \
    const ptrdiff_t T = a->T, U = a->U, t = a->go_backwards ? T - 1 - k : k;                   \
    ptrdiff_t blk, b0, ns, s, lane;                                                            \
    REAL acc[4 * W];                                                                           \
    if (sizeof(REAL) == sizeof(float) && a->fast) {                                            \
        lstmc_hidden_backward_avx512(a->B, T, U, t, blk0, blk1, (const float *)a->dz,          \
                                     (const float *)a->rt, a->mask,                            \
                                     (const float *)a->rec_dropout, (float *)a->dh, (float *)apack); \
        return;                                                                                \
    }                                                                                          \
    for (blk = blk0; blk < blk1; blk++) {                                                      \
        const REAL *w = a->rt + blk * 4 * U * W;                                               \
        const ptrdiff_t lanes = U - blk * W < W ? U - blk * W : W;                             \
        for (b0 = 0; b0 < a->B; b0 += ns) {                                                   \
            const REAL *v = a->dz + (b0 * T + t) * 4 * U;                                      \
            ns = a->B - b0 >= 4 ? 4 : (a->B - b0 >= 2 ? 2 : 1);                                \
            if (ns == 4) lstmc_back_matvec4_##SFX(w, 4 * U, v, T * 4 * U, acc);                \
            else if (ns == 2) lstmc_back_matvec2_##SFX(w, 4 * U, v, T * 4 * U, acc);           \
            else lstmc_back_matvec1_##SFX(w, 4 * U, v, T * 4 * U, acc);                        \
            for (s = 0; s < ns; s++) {                                                         \
                const ptrdiff_t b = b0 + s, at = b * U + blk * W;                              \
                if (a->mask != NULL && !a->mask[b * T + t]) continue;  /* dh passed through */\
                for (lane = 0; lane < lanes; lane++)                                           \
                    a->dh[at + lane] = acc[s * W + lane]                                       \
                        * (a->rec_dropout != NULL ? a->rec_dropout[at + lane] : (REAL)1);      \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static void lstmc_backward_##SFX(const lstmc_backward_args_##SFX *a) {                        \
    _Pragma("omp parallel num_threads(a->n_threads)")                                          \
    {                                                                                          \
        int p = 0, np = 1;                                                                     \
        ptrdiff_t k, blk0, blk1, u0, u1;                                                       \
        REAL *scratch;                                                                         \
        unsigned int mxcsr = lstmc_enter_ftz();                                                \
        LSTMC_THREAD_ID(p, np);                                                                \
        blk0 = a->nblk * p / np;                                                               \
        blk1 = a->nblk * (p + 1) / np;                                                         \
        u0 = blk0 * LSTMC_BACK_W_##SFX;                                                        \
        u1 = blk1 * LSTMC_BACK_W_##SFX < a->U ? blk1 * LSTMC_BACK_W_##SFX : a->U;              \
        scratch = a->scratch + p * lstmc_backward_scratch(a->U, a->nblk);                      \
        for (k = a->T - 1; k >= 0; k--) {                                                      \
            if (u1 > u0) lstmc_cell_backward_##SFX(a, k, u0, u1 - u0, scratch);                 \
            _Pragma("omp barrier")                                                             \
            lstmc_hidden_backward_##SFX(a, k, blk0, blk1, scratch + 3 * a->nblk * LSTMC_BACK_W_##SFX); \
        }                                                                                      \
        lstmc_leave_ftz(mxcsr);                                                                \
    }                                                                                          \
}

LSTMC_DEFINE_BACKWARD(f, float)
LSTMC_DEFINE_BACKWARD(d, double)

/* The precision-independent face the Cython caller fills (pointers untyped). */
typedef struct {
    ptrdiff_t B, T, D, U, nblk;
    const void *trace, *h0, *c0, *z, *rt, *rec_dropout;
    const unsigned char *mask;
    const ptrdiff_t *first_valid;
    const void *d_out_seq, *d_out_last;
    void *dh, *dc, *dz, *h_in, *scratch;
    ptrdiff_t ld_h_in;
    int act, rec_act, go_backwards, zero_output_for_mask, n_threads, is_double, fast;
} lstmc_backward_args;

#define LSTMC_TYPED_BACKWARD_ARGS(SFX, REAL, g)                                                \
    lstmc_backward_args_##SFX typed = {                                                        \
        g->B, g->T, g->D, g->U, g->nblk, (const REAL *)g->trace, (const REAL *)g->h0,          \
        (const REAL *)g->c0, (const REAL *)g->z, (const REAL *)g->rt,                          \
        (const REAL *)g->rec_dropout, g->mask, g->first_valid, (const REAL *)g->d_out_seq,     \
        (const REAL *)g->d_out_last, (REAL *)g->dh, (REAL *)g->dc, (REAL *)g->dz,              \
        (REAL *)g->h_in, (REAL *)g->scratch, g->ld_h_in, g->act, g->rec_act, g->go_backwards,  \
        g->zero_output_for_mask, g->n_threads, g->fast}

/* Run the sequential part of the backward pass, steps T-1 .. 0. */
static void lstmc_backward(const lstmc_backward_args *g) {
    if (g->is_double) {
        LSTMC_TYPED_BACKWARD_ARGS(d, double, g);
        lstmc_backward_d(&typed);
    } else {
        LSTMC_TYPED_BACKWARD_ARGS(f, float, g);
        lstmc_backward_f(&typed);
    }
}

enum { LSTMC_BACK_LANES_FLOAT = LSTMC_BACK_W_f, LSTMC_BACK_LANES_DOUBLE = LSTMC_BACK_W_d };

#endif /* LSTMC_BACKWARD_H */

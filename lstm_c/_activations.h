/* Element-wise activations for the LSTM kernels, in place on contiguous runs.
 *
 * One definition, two precisions: LSTMC_DEFINE_ACTIVATE expands to a float and a
 * double function from the same text, so the two can never disagree on a formula.
 * The codes are mirrored by lstm_c/activations.py (names -> codes) and the
 * formulas follow Keras 3 (keras/src/activations/activations.py) as recorded in
 * shared/SEMANTICS.md section 1.
 *
 * Clamps are written as comparisons rather than fmin/fmax on purpose: fmin/fmax
 * drop a NaN operand, while Keras (TensorFlow) propagates NaN through relu and
 * clip, and so must we.
 *
 * The switch sits outside the loop so that each loop body is branch-light and the
 * compiler can vectorise the clamps and arithmetic. Sigmoid and tanh (the defaults, and
 * most of an LSTM's non-GEMM time) use the libm-free forms below, good to a few 1e-7
 * relative in float32 and a few 1e-16 in float64 (the vectorised tanh: 3e-15 just above
 * |x| = ln(2)/64, where its exp's table values' rounding first shows);
 * the other activations call libm. Where the CPU has AVX-512 or AVX2 and FMA, sigmoid and
 * tanh run hand-vectorised versions (lstmc_fast_gates_*), the two with the same bits for
 * every input: float64 with a table-driven exp (GCC does not vectorise a table lookup,
 * and the r^13 series was most of a float64 step's gate math), float32 with min/max
 * clamps (and scalef on AVX-512), which GCC's vectorised loops do not use (GCC's own
 * vectorisation of the formula also gives other bits where the clamps bite: it folds the
 * clamped lanes' value at compile time).
 * lstmc_activate_portable_* are the loops alone (tests compare the two).
 * lstm_c/_cell.h runs a whole LSTM cell (those activations and the state update) on such
 * vectors in registers, from the parts defined here (sigmoid's denominator, tanh's
 * fraction).
 */
#ifndef LSTMC_ACTIVATIONS_H
#define LSTMC_ACTIVATIONS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_cpu.h"   /* LSTMC_CLONES, LSTMC_CPU_SUPPORTS */

enum {
    LSTMC_LINEAR = 0,
    LSTMC_SIGMOID = 1,
    LSTMC_TANH = 2,
    LSTMC_HARD_SIGMOID = 3,          /* Keras 3: clip(x/6 + 0.5, 0, 1) */
    LSTMC_HARD_SIGMOID_KERAS2 = 4,   /* Keras 2: clip(0.2x + 0.5, 0, 1) */
    LSTMC_RELU = 5,
    LSTMC_SOFTSIGN = 6,
    LSTMC_ELU = 7,
    LSTMC_SELU = 8,
    LSTMC_SOFTPLUS = 9,
    LSTMC_RELU6 = 10,
    LSTMC_HARD_TANH = 11,
    LSTMC_SILU = 12,
    LSTMC_LEAKY_RELU = 13,
    LSTMC_GELU = 14,
    LSTMC_EXPONENTIAL = 15,
    LSTMC_HARD_SILU = 16,
    LSTMC_MISH = 17,
    LSTMC_LOG_SIGMOID = 18,
    LSTMC_N_ACTIVATIONS = 19
};

#define LSTMC_SELU_ALPHA 1.6732632423543772
#define LSTMC_SELU_SCALE 1.0507009873554805
#define LSTMC_LEAKY_SLOPE 0.2
#define LSTMC_SQRT1_2 0.70710678118654752440

/* float32 sigmoid and tanh without libm, so the loops that apply them vectorise. The
 * polynomials' coefficients come from tools/fit_gate_functions.py (least maximum
 * relative error; "eps" below is float32's, 2^-23).
 *
 * e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2; e^r = 1 + r + r^2 (c2 + ...
 * + c6 r^4), within 0.03 eps (sigmoid: 1.3 eps in float32 arithmetic). The clamp keeps
 * 2^n a normal float; sigmoid is saturated long before it bites. NaN passes through
 * (comparisons are false, and NaN r poisons the polynomial). */
#define LSTMC_EXP_C2 0.4999999403953552f
#define LSTMC_EXP_C3 0.1666652113199234f
#define LSTMC_EXP_C4 0.041668396443128586f
#define LSTMC_EXP_C5 0.008368703536689281f
#define LSTMC_EXP_C6 0.0013814070262014866f
static inline float lstmc_exp_clamped_f(float x) {
    float n, r, p, scale;
    int32_t bits;
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick rather than floorf, which SSE2 lacks */
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    r = x - n * 0.693359375f;          /* ln 2 in two parts (Cody & Waite), so r is exact */
    r = r - n * -2.12194440054690583e-4f;
    p = LSTMC_EXP_C6;
    p = p * r + LSTMC_EXP_C5;
    p = p * r + LSTMC_EXP_C4;
    p = p * r + LSTMC_EXP_C3;
    p = p * r + LSTMC_EXP_C2;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = ((int32_t)n + 127) << 23;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

static inline float lstmc_sigmoid_f(float x) {
    return 1.0f / (1.0f + lstmc_exp_clamped_f(-x));
}

/* tanh x = x P(x^2) / Q(x^2) on [-9, 9] (beyond, tanh is 1 in float32), P and Q of degree
 * 4, within 0.35 eps (2.8 eps in float32 arithmetic: four roundings), held to [-1, 1]. Half
 * the cost of (1 - e^-2|x|) / (1 + e^-2|x|) with a series near 0, where that cancels.
 * Every coefficient is positive: no cancellation in the Horner sums either. NaN passes
 * through. */
#define LSTMC_TANH_P0 1.0f
#define LSTMC_TANH_P1 0.13385936617851257f
#define LSTMC_TANH_P2 0.003501259721815586f
#define LSTMC_TANH_P3 2.069609945465345e-05f
#define LSTMC_TANH_P4 1.346356715004049e-08f
#define LSTMC_TANH_Q1 0.4671925902366638f
#define LSTMC_TANH_Q2 0.025898974388837814f
#define LSTMC_TANH_Q3 0.00032946362625807524f
#define LSTMC_TANH_Q4 7.823589953659393e-07f
static inline float lstmc_tanh_f(float x) {
    float s, p, q, y;
    x = x > 9.0f ? 9.0f : x;
    x = x < -9.0f ? -9.0f : x;
    s = x * x;
    p = LSTMC_TANH_P4;
    p = p * s + LSTMC_TANH_P3;
    p = p * s + LSTMC_TANH_P2;
    p = p * s + LSTMC_TANH_P1;
    p = p * s + LSTMC_TANH_P0;
    q = LSTMC_TANH_Q4;
    q = q * s + LSTMC_TANH_Q3;
    q = q * s + LSTMC_TANH_Q2;
    q = q * s + LSTMC_TANH_Q1;
    q = q * s + 1.0f;
    y = x * p / q;
    y = y > 1.0f ? 1.0f : y;
    return y < -1.0f ? -1.0f : y;
}

/* The same in float64, to libm's accuracy (a few 1e-16): the series runs to r^13 (next
 * term below 2e-17 relative). It is returned in two parts, e^x = scale (1 + q), with
 * scale = 2^n and q = e^r - 1 = r + r^2/2 + ... (Horner ends in a product, not a sum with
 * 1), so that e^x - 1 = (scale - 1) + scale q keeps its relative accuracy near 0: scale
 * - 1 is exact, and 0 for |x| < ln(2)/2. tanh |x| = -m / (2 + m) with m = e^-2|x| - 1
 * needs no series near 0 so; x's sign goes on last (tanh(-0) = -0, NaN passes). */
static inline double lstmc_exp_parts_d(double x, double *scale) {
    double shifted, n, r, p;
    int64_t bits;
    x = x > 708.0 ? 708.0 : x;
    x = x < -708.0 ? -708.0 : x;
    shifted = x * 1.4426950408889634 + 6755399441055744.0;   /* 1.5 * 2^52 */
    /* n in the low bits of shifted's: read there rather than converted (before AVX-512
     * there is no vector conversion from double to int64, and the loop would not vectorise) */
    memcpy(&bits, &shifted, sizeof(bits));
    n = shifted - 6755399441055744.0;
    r = x - n * 0.693145751953125;    /* ln 2 = 0.693145751953125 + 1.4286068203094173e-06 */
    r = r - n * 1.4286068203094173e-06;
    /* Horner on the Taylor coefficients 1/k!, k = 13 .. 1 (multiplications only: a
     * division per term made float64 gate math ~4x the float32 cost) */
    p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    bits = (int64_t)((uint64_t)(bits + 1023) << 52);   /* 2^n: n + 1023 in the exponent */
    memcpy(scale, &bits, sizeof(*scale));
    return p * r;
}

static inline double lstmc_sigmoid_d(double x) {
    double scale, q = lstmc_exp_parts_d(-x, &scale);
    return 1.0 / (1.0 + (scale * q + scale));
}

static inline double lstmc_tanh_d(double x) {
    double scale, q = lstmc_exp_parts_d(-2.0 * fabs(x), &scale);
    double m = scale * q + (scale - 1.0);
    return copysign(m / (-2.0 - m), x);
}

#if defined(LSTMC_HAVE_CLONES)
#include <immintrin.h>
#define LSTMC_AVX512_TARGET __attribute__((target("avx512f,fma")))

#define LSTMC_AVX2_TARGET __attribute__((target("avx2,fma")))

/* float64 e^x on AVX-512, and on AVX2 and FMA for CPUs without it: n = round(16 x / ln 2),
 * 2^((n & 15) / 16) from a table (AVX-512: its two halves in registers, one permute;
 * AVX2: one gather), e^r for |r| <= ln(2)/32 by its series to r^7 (next term below 2e-18 relative).
 * Returned in two parts, e^x = scale (1 + q): `scale` the table value times 2^(n >> 4)
 * (exact), q = e^r - 1 = r + r^2/2 + ... So e^x - 1 = (scale - 1) + scale q has no
 * cancellation: scale - 1 is exact where it is small (scale in [1/2, 2]), and for |x| <
 * ln(2)/32 scale is 1 and e^x - 1 is q itself. Then sigmoid, and tanh |x| = (1 - e^-2|x|) /
 * (1 + e^-2|x|) = -m / (2 + m) with m = e^-2|x| - 1 from its two parts, which keeps the
 * relative accuracy near 0 (within 3e-15 just above |x| = ln(2)/64, where m first takes a
 * table value, a few 1e-16 elsewhere): no series branch, unlike the portable formula. x's
 * sign goes on last (so tanh(-0) = -0). One text for both widths, the few instructions
 * that differ in the helpers below: the same bits for every input. */
static const double lstmc_exp2_sixteenths[16] __attribute__((aligned(64))) = {  /* 2^(j/16) */
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};

/* 2^(j/16) for j = the low 4 bits of k */
LSTMC_AVX512_TARGET static inline __m512d lstmc_exp2_table_pd(__m512i k) {
    return _mm512_permutex2var_pd(_mm512_load_pd(lstmc_exp2_sixteenths), k,
                                  _mm512_load_pd(lstmc_exp2_sixteenths + 8));
}
LSTMC_AVX2_TARGET static inline __m256d lstmc_exp2_table_pd4(__m256i k) {
    return _mm256_i64gather_pd(lstmc_exp2_sixteenths, _mm256_and_si256(k, _mm256_set1_epi64x(15)), 8);
}
/* 2^(k >> 4) to add to an exponent: only the low 16 bits of k matter, so AVX2's 32-bit
 * arithmetic shift (it has no 64-bit one) gives the same 12 bits */
LSTMC_AVX512_TARGET static inline __m512i lstmc_exp2_exponent_pd(__m512i k) {
    return _mm512_slli_epi64(_mm512_srai_epi64(k, 4), 52);
}
LSTMC_AVX2_TARGET static inline __m256i lstmc_exp2_exponent_pd4(__m256i k) {
    return _mm256_slli_epi64(_mm256_srai_epi32(k, 4), 52);
}
/* -v, |v|, and |m| with v's sign, by the sign bit */
LSTMC_AVX512_TARGET static inline __m512d lstmc_negate_pd(__m512d v) {
    return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(v), _mm512_set1_epi64(INT64_MIN)));
}
LSTMC_AVX2_TARGET static inline __m256d lstmc_negate_pd4(__m256d v) {
    return _mm256_xor_pd(v, _mm256_set1_pd(-0.0));
}
LSTMC_AVX512_TARGET static inline __m512d lstmc_abs_pd(__m512d v) {
    return _mm512_castsi512_pd(_mm512_andnot_si512(_mm512_set1_epi64(INT64_MIN), _mm512_castpd_si512(v)));
}
LSTMC_AVX2_TARGET static inline __m256d lstmc_abs_pd4(__m256d v) {
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}
LSTMC_AVX512_TARGET static inline __m512d lstmc_with_sign_of_pd(__m512d m, __m512d v) {
    /* ternary logic 0xCA: sign ? v : m, bit by bit */
    return _mm512_castsi512_pd(_mm512_ternarylogic_epi64(_mm512_set1_epi64(INT64_MIN), _mm512_castpd_si512(v),
                                                         _mm512_castpd_si512(m), 0xCA));
}
LSTMC_AVX2_TARGET static inline __m256d lstmc_with_sign_of_pd4(__m256d m, __m256d v) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    return _mm256_or_pd(_mm256_and_pd(sign, v), _mm256_andnot_pd(sign, m));
}

#define LSTMC_DEFINE_GATES_PD(SFX, TARGET, MM, VEC, IVEC, SI)                                  \
TARGET static inline VEC lstmc_exp_parts_##SFX(VEC x, VEC *scale) {                            \
    const VEC shifter = MM##_set1_pd(6755399441055744.0);  /* 1.5 * 2^52 */                    \
    VEC n, r, p;                                                                               \
    IVEC k;                                                                                    \
    x = MM##_min_pd(MM##_set1_pd(708.0), x);   /* (constant, x): a NaN x passes */             \
    x = MM##_max_pd(MM##_set1_pd(-708.0), x);                                                  \
    n = MM##_fmadd_pd(x, MM##_set1_pd(23.083120654223414), shifter);                           \
    k = MM##_castpd_##SI(n);   /* round(16 x / ln 2) in the low bits */                        \
    n = MM##_sub_pd(n, shifter);                                                               \
    r = MM##_fnmadd_pd(n, MM##_set1_pd(0.043321698787622154), x);                              \
    r = MM##_fnmadd_pd(n, MM##_set1_pd(-2.625571920425678e-12), r);                            \
    p = MM##_set1_pd(1.0 / 5040.0);                                                            \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(1.0 / 720.0));                                        \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(1.0 / 120.0));                                        \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(1.0 / 24.0));                                         \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(1.0 / 6.0));                                          \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(0.5));                                                \
    p = MM##_fmadd_pd(p, r, MM##_set1_pd(1.0));                                                \
    /* the table value times 2^(n >> 4), added to its exponent */                              \
    *scale = MM##_cast##SI##_pd(MM##_add_epi64(MM##_castpd_##SI(lstmc_exp2_table_##SFX(k)),    \
                                               lstmc_exp2_exponent_##SFX(k)));                 \
    return MM##_mul_pd(p, r);                                                                  \
}                                                                                              \
                                                                                               \
/* 1 + e^-v, sigmoid's denominator (lstm_c/_cell.h folds it into a product) */                 \
TARGET static inline VEC lstmc_sigmoid_denominator_##SFX(VEC v) {                              \
    VEC scale;                                                                                 \
    const VEC q = lstmc_exp_parts_##SFX(lstmc_negate_##SFX(v), &scale);                        \
    return MM##_add_pd(MM##_set1_pd(1.0), MM##_fmadd_pd(scale, q, scale));                     \
}                                                                                              \
                                                                                               \
TARGET static inline VEC lstmc_sigmoid_##SFX(VEC v) {                                          \
    return MM##_div_pd(MM##_set1_pd(1.0), lstmc_sigmoid_denominator_##SFX(v));                 \
}                                                                                              \
                                                                                               \
/* tanh v = lstmc_tanh_finish(numerator / denominator, v): m and -2 - m */                     \
TARGET static inline VEC lstmc_tanh_fraction_##SFX(VEC v, VEC *denominator) {                  \
    VEC scale, m;                                                                              \
    const VEC q = lstmc_exp_parts_##SFX(MM##_mul_pd(MM##_set1_pd(-2.0), lstmc_abs_##SFX(v)), &scale); \
    m = MM##_fmadd_pd(scale, q, MM##_sub_pd(scale, MM##_set1_pd(1.0)));                        \
    *denominator = MM##_sub_pd(MM##_set1_pd(-2.0), m);                                         \
    return m;                                                                                  \
}                                                                                              \
                                                                                               \
TARGET static inline VEC lstmc_tanh_finish_##SFX(VEC ratio, VEC v) {                           \
    return lstmc_with_sign_of_##SFX(ratio, v);                                                 \
}                                                                                              \
                                                                                               \
TARGET static inline VEC lstmc_tanh_##SFX(VEC v) {                                             \
    VEC denominator;                                                                           \
    const VEC numerator = lstmc_tanh_fraction_##SFX(v, &denominator);                          \
    return lstmc_tanh_finish_##SFX(MM##_div_pd(numerator, denominator), v);                    \
}
LSTMC_DEFINE_GATES_PD(pd, LSTMC_AVX512_TARGET, _mm512, __m512d, __m512i, si512)
LSTMC_DEFINE_GATES_PD(pd4, LSTMC_AVX2_TARGET, _mm256, __m256d, __m256i, si256)

/* sigmoid (tanh = 0) or tanh (tanh = 1) of x[0 .. n) in place, by the functions above */
LSTMC_AVX512_TARGET static void lstmc_sigmoid_tanh_avx512_d(int tanh, double *x, ptrdiff_t n) {
    ptrdiff_t k;
    for (k = 0; k < n; k += 8) {
        const __mmask8 m = n - k >= 8 ? 0xFF : (__mmask8)((1u << (n - k)) - 1);
        const __m512d v = _mm512_maskz_loadu_pd(m, x + k);
        _mm512_mask_storeu_pd(x + k, m, tanh ? lstmc_tanh_pd(v) : lstmc_sigmoid_pd(v));
    }
}

/* The same on AVX2, the last values through a mask of lanes (LANE_MASK(count): the first
 * `count` lanes) */
#define LSTMC_DEFINE_AVX2_RUN(SFX, REAL, VEC, LANES, PS, ACT, LANE_MASK)                         \
LSTMC_AVX2_TARGET static void lstmc_sigmoid_tanh_avx2_##SFX(int tanh, REAL *x, ptrdiff_t n) {  \
    ptrdiff_t k;                                                                               \
    for (k = 0; k + LANES <= n; k += LANES) {                                                  \
        const VEC v = _mm256_loadu_##PS(x + k);                                                \
        _mm256_storeu_##PS(x + k, tanh ? lstmc_tanh_##ACT(v) : lstmc_sigmoid_##ACT(v));        \
    }                                                                                          \
    if (k < n) {                                                                               \
        const __m256i m = LANE_MASK(n - k);                                                    \
        const VEC v = _mm256_maskload_##PS(x + k, m);                                          \
        _mm256_maskstore_##PS(x + k, m, tanh ? lstmc_tanh_##ACT(v) : lstmc_sigmoid_##ACT(v));  \
    }                                                                                          \
}
#define LSTMC_FIRST_LANES_4(count)                                                             \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3))
#define LSTMC_FIRST_LANES_8(count)                                                             \
    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
LSTMC_DEFINE_AVX2_RUN(d, double, __m256d, 4, pd, pd4, LSTMC_FIRST_LANES_4)

/* float32 sigmoid and tanh on 512-bit vectors (AVX-512) and on 256-bit ones (AVX2 and FMA,
 * for CPUs without AVX-512), the formulas above with what the compiler cannot use on its
 * own: min/max clamps (a NaN x is their second operand, so it passes) and, on AVX-512,
 * scalef for 2^n (one instruction for four; AVX2 builds 2^n in the exponent bits, as the
 * portable formula does: the same value). The two give the same bits for every float32
 * input, so 256- and 512-bit blocks agree. MM is the intrinsics' prefix. */
#define LSTMC_SCALE_512(p, n) _mm512_scalef_ps(p, n)
#define LSTMC_SCALE_256(p, n)                                                                  \
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(                                    \
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23)))
#define LSTMC_DEFINE_GATES_PS(SFX, TARGET, MM, VEC, SCALE)                                     \
/* 1 + e^-x, sigmoid's denominator */                                                          \
TARGET static inline VEC lstmc_sigmoid_denominator_##SFX(VEC x) {                              \
    const VEC one = MM##_set1_ps(1.0f), round = MM##_set1_ps(12582912.0f);                     \
    VEC n, r, p;                                                                               \
    x = MM##_min_ps(MM##_set1_ps(87.0f), x);    /* e^-x with -x in [-87, 88] */                \
    x = MM##_max_ps(MM##_set1_ps(-88.0f), x);                                                  \
    n = MM##_sub_ps(MM##_fmadd_ps(x, MM##_set1_ps(-1.44269504088896341f), round), round);     \
    r = MM##_fnmsub_ps(n, MM##_set1_ps(0.693359375f), x);   /* -x - n ln 2, in two parts */    \
    r = MM##_fnmadd_ps(n, MM##_set1_ps(-2.12194440054690583e-4f), r);                          \
    p = MM##_fmadd_ps(MM##_set1_ps(LSTMC_EXP_C6), r, MM##_set1_ps(LSTMC_EXP_C5));              \
    p = MM##_fmadd_ps(p, r, MM##_set1_ps(LSTMC_EXP_C4));                                       \
    p = MM##_fmadd_ps(p, r, MM##_set1_ps(LSTMC_EXP_C3));                                       \
    p = MM##_fmadd_ps(p, r, MM##_set1_ps(LSTMC_EXP_C2));                                       \
    p = MM##_fmadd_ps(p, r, one);                                                              \
    p = MM##_fmadd_ps(p, r, one);                                                              \
    return MM##_add_ps(one, SCALE(p, n));                                                      \
}                                                                                              \
                                                                                               \
TARGET static inline VEC lstmc_sigmoid_##SFX(VEC x) {                                          \
    return MM##_div_ps(MM##_set1_ps(1.0f), lstmc_sigmoid_denominator_##SFX(x));                \
}                                                                                              \
                                                                                               \
/* tanh x = lstmc_tanh_finish(numerator / denominator, x): x P and Q */                        \
TARGET static inline VEC lstmc_tanh_fraction_##SFX(VEC x, VEC *denominator) {                  \
    VEC s, p, q;                                                                               \
    x = MM##_min_ps(MM##_set1_ps(9.0f), x);                                                    \
    x = MM##_max_ps(MM##_set1_ps(-9.0f), x);                                                   \
    s = MM##_mul_ps(x, x);                                                                     \
    p = MM##_fmadd_ps(MM##_set1_ps(LSTMC_TANH_P4), s, MM##_set1_ps(LSTMC_TANH_P3));            \
    p = MM##_fmadd_ps(p, s, MM##_set1_ps(LSTMC_TANH_P2));                                      \
    p = MM##_fmadd_ps(p, s, MM##_set1_ps(LSTMC_TANH_P1));                                      \
    p = MM##_fmadd_ps(p, s, MM##_set1_ps(LSTMC_TANH_P0));                                      \
    q = MM##_fmadd_ps(MM##_set1_ps(LSTMC_TANH_Q4), s, MM##_set1_ps(LSTMC_TANH_Q3));            \
    q = MM##_fmadd_ps(q, s, MM##_set1_ps(LSTMC_TANH_Q2));                                      \
    q = MM##_fmadd_ps(q, s, MM##_set1_ps(LSTMC_TANH_Q1));                                      \
    *denominator = MM##_fmadd_ps(q, s, MM##_set1_ps(1.0f));                                    \
    return MM##_mul_ps(x, p);                                                                  \
}                                                                                              \
                                                                                               \
/* the ratio held to [-1, 1] (x's sign is already the numerator's) */                          \
TARGET static inline VEC lstmc_tanh_finish_##SFX(VEC ratio, VEC x) {                           \
    (void)x;                                                                                   \
    ratio = MM##_min_ps(MM##_set1_ps(1.0f), ratio);                                            \
    return MM##_max_ps(MM##_set1_ps(-1.0f), ratio);                                            \
}                                                                                              \
                                                                                               \
TARGET static inline VEC lstmc_tanh_##SFX(VEC x) {                                             \
    VEC denominator;                                                                           \
    const VEC numerator = lstmc_tanh_fraction_##SFX(x, &denominator);                          \
    return lstmc_tanh_finish_##SFX(MM##_div_ps(numerator, denominator), x);                    \
}
LSTMC_DEFINE_GATES_PS(ps, LSTMC_AVX512_TARGET, _mm512, __m512, LSTMC_SCALE_512)
LSTMC_DEFINE_GATES_PS(ps8, LSTMC_AVX2_TARGET, _mm256, __m256, LSTMC_SCALE_256)

LSTMC_AVX512_TARGET static void lstmc_sigmoid_tanh_avx512_f(int tanh, float *x, ptrdiff_t n) {
    ptrdiff_t k;
    for (k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? 0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        _mm512_mask_storeu_ps(x + k, m, tanh ? lstmc_tanh_ps(v) : lstmc_sigmoid_ps(v));
    }
}

LSTMC_DEFINE_AVX2_RUN(f, float, __m256, 8, ps, ps8, LSTMC_FIRST_LANES_8)

static inline int lstmc_has_avx2_fma(void) {
    return LSTMC_CPU_SUPPORTS("avx2") && LSTMC_CPU_SUPPORTS("fma");
}

/* Sigmoid or tanh on AVX2 alone, where the CPU has it (tests compare it with AVX-512), and
 * on AVX-512, else AVX2 (the same bits); 0 where neither runs. */
#define LSTMC_DEFINE_FAST_GATES(SFX, REAL)                                                     \
static inline int lstmc_avx2_gates_##SFX(int code, REAL *x, ptrdiff_t n) {                    \
    if ((code != LSTMC_SIGMOID && code != LSTMC_TANH) || !lstmc_has_avx2_fma()) return 0;      \
    lstmc_sigmoid_tanh_avx2_##SFX(code == LSTMC_TANH, x, n);                                   \
    return 1;                                                                                  \
}                                                                                              \
                                                                                               \
static inline int lstmc_fast_gates_##SFX(int code, REAL *x, ptrdiff_t n) {                    \
    if ((code != LSTMC_SIGMOID && code != LSTMC_TANH) || !LSTMC_CPU_SUPPORTS("avx512f"))       \
        return lstmc_avx2_gates_##SFX(code, x, n);                                             \
    lstmc_sigmoid_tanh_avx512_##SFX(code == LSTMC_TANH, x, n);                                 \
    return 1;                                                                                  \
}
LSTMC_DEFINE_FAST_GATES(f, float)
LSTMC_DEFINE_FAST_GATES(d, double)
#else
#define lstmc_fast_gates_f(code, x, n) 0
#define lstmc_fast_gates_d(code, x, n) 0
#define lstmc_avx2_gates_f(code, x, n) 0
#define lstmc_avx2_gates_d(code, x, n) 0
#endif

#define LSTMC_DEFINE_ACTIVATE(SUFFIX, T, EXP, EXPM1, LOG1P, TANH, ERF, FABS)          \
static inline T lstmc_softplus_##SUFFIX(T v) {                                         \
    /* log(1 + e^v) without overflow: max(v, 0) + log1p(e^-|v|) */                     \
    return (v > (T)0 ? v : (T)0) + LOG1P(EXP(-FABS(v)));                               \
}                                                                                      \
static inline T lstmc_hard_sigmoid_##SUFFIX(T v) {                                     \
    /* min(max(v + 3, 0), 6) / 6: the float32 form closest to Keras 3 */               \
    T y = v + (T)3;                                                                    \
    y = y < (T)0 ? (T)0 : y;                                                           \
    y = y > (T)6 ? (T)6 : y;                                                           \
    return y / (T)6;                                                                   \
}                                                                                      \
static inline __attribute__((always_inline))                                           \
void lstmc_activate_portable_##SUFFIX(int code, T *x, ptrdiff_t n) {                   \
    ptrdiff_t k;                                                                       \
    switch (code) {                                                                    \
    case LSTMC_SIGMOID:                                                                \
        for (k = 0; k < n; k++) x[k] = lstmc_sigmoid_##SUFFIX(x[k]);                   \
        break;                                                                         \
    case LSTMC_TANH:                                                                   \
        for (k = 0; k < n; k++) x[k] = lstmc_tanh_##SUFFIX(x[k]);                      \
        break;                                                                         \
    case LSTMC_HARD_SIGMOID:                                                           \
        for (k = 0; k < n; k++) x[k] = lstmc_hard_sigmoid_##SUFFIX(x[k]);              \
        break;                                                                         \
    case LSTMC_HARD_SIGMOID_KERAS2:                                                    \
        for (k = 0; k < n; k++) {                                                      \
            T y = (T)0.2 * x[k] + (T)0.5;                                              \
            y = y < (T)0 ? (T)0 : y;                                                   \
            x[k] = y > (T)1 ? (T)1 : y;                                                \
        }                                                                              \
        break;                                                                         \
    case LSTMC_RELU:                                                                   \
        for (k = 0; k < n; k++) x[k] = x[k] < (T)0 ? (T)0 : x[k];                      \
        break;                                                                         \
    case LSTMC_SOFTSIGN:                                                               \
        for (k = 0; k < n; k++) x[k] = x[k] / ((T)1 + FABS(x[k]));                     \
        break;                                                                         \
    case LSTMC_ELU:                                                                    \
        for (k = 0; k < n; k++) x[k] = x[k] > (T)0 ? x[k] : EXPM1(x[k]);               \
        break;                                                                         \
    case LSTMC_SELU:                                                                   \
        for (k = 0; k < n; k++)                                                        \
            x[k] = (T)LSTMC_SELU_SCALE *                                               \
                   (x[k] > (T)0 ? x[k] : (T)LSTMC_SELU_ALPHA * EXPM1(x[k]));           \
        break;                                                                         \
    case LSTMC_SOFTPLUS:                                                               \
        for (k = 0; k < n; k++) x[k] = lstmc_softplus_##SUFFIX(x[k]);                  \
        break;                                                                         \
    case LSTMC_RELU6:                                                                  \
        for (k = 0; k < n; k++) {                                                      \
            T y = x[k] < (T)0 ? (T)0 : x[k];                                           \
            x[k] = y > (T)6 ? (T)6 : y;                                                \
        }                                                                              \
        break;                                                                         \
    case LSTMC_HARD_TANH:                                                              \
        for (k = 0; k < n; k++) {                                                      \
            T y = x[k] < (T)-1 ? (T)-1 : x[k];                                         \
            x[k] = y > (T)1 ? (T)1 : y;                                                \
        }                                                                              \
        break;                                                                         \
    case LSTMC_SILU:                                                                   \
        for (k = 0; k < n; k++) x[k] = x[k] * lstmc_sigmoid_##SUFFIX(x[k]);            \
        break;                                                                         \
    case LSTMC_LEAKY_RELU:                                                             \
        for (k = 0; k < n; k++) x[k] = x[k] < (T)0 ? (T)LSTMC_LEAKY_SLOPE * x[k] : x[k]; \
        break;                                                                         \
    case LSTMC_GELU:                                                                   \
        for (k = 0; k < n; k++)                                                        \
            x[k] = (T)0.5 * x[k] * ((T)1 + ERF(x[k] * (T)LSTMC_SQRT1_2));              \
        break;                                                                         \
    case LSTMC_EXPONENTIAL:                                                            \
        for (k = 0; k < n; k++) x[k] = EXP(x[k]);                                      \
        break;                                                                         \
    case LSTMC_HARD_SILU:                                                              \
        for (k = 0; k < n; k++) x[k] = x[k] * lstmc_hard_sigmoid_##SUFFIX(x[k]);       \
        break;                                                                         \
    case LSTMC_MISH:                                                                   \
        for (k = 0; k < n; k++) x[k] = x[k] * TANH(lstmc_softplus_##SUFFIX(x[k]));     \
        break;                                                                         \
    case LSTMC_LOG_SIGMOID:                                                            \
        for (k = 0; k < n; k++) x[k] = -lstmc_softplus_##SUFFIX(-x[k]);                \
        break;                                                                         \
    default: /* LSTMC_LINEAR; unknown codes never get here (validated in Python) */     \
        break;                                                                         \
    }                                                                                  \
}                                                                                      \
/* What the kernels call: the AVX-512 gates where there are some, else the loops. */  \
static inline __attribute__((always_inline))                                           \
void lstmc_activate_##SUFFIX(int code, T *x, ptrdiff_t n) {                            \
    if (!lstmc_fast_gates_##SUFFIX(code, x, n)) lstmc_activate_portable_##SUFFIX(code, x, n); \
}

LSTMC_DEFINE_ACTIVATE(f, float, expf, expm1f, log1pf, tanhf, erff, fabsf)
LSTMC_DEFINE_ACTIVATE(d, double, exp, expm1, log1p, tanh, erf, fabs)

#endif /* LSTMC_ACTIVATIONS_H */

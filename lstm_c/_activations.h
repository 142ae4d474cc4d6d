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
 * relative in float32 and a few 1e-16 in float64; the other activations call libm.
 */
#ifndef LSTMC_ACTIVATIONS_H
#define LSTMC_ACTIVATIONS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* Compile hot loops for AVX-512 and AVX2+FMA too, chosen at load time (ifunc); the
 * default clone keeps a wheel built here working on any x86-64. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LSTMC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LSTMC_HAVE_CLONES 1
#else
#define LSTMC_CLONES
#endif

#define LSTMC_SELU_ALPHA 1.6732632423543772
#define LSTMC_SELU_SCALE 1.0507009873554805
#define LSTMC_LEAKY_SLOPE 0.2
#define LSTMC_SQRT1_2 0.70710678118654752440

/* float32 sigmoid and tanh without libm, so the loops that apply them vectorise:
 * e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2, e^r by its Taylor series to
 * r^7 (the next term is below 6e-9 relative: under float32's rounding). The clamp keeps
 * 2^n a normal float; sigmoid and tanh are saturated long before it bites. NaN passes
 * through (comparisons are false, and NaN r poisons the polynomial). */
static inline float lstmc_exp_clamped_f(float x) {
    float n, r, p, scale;
    int32_t bits;
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    /* round to nearest by the 1.5 * 2^23 trick rather than floorf, which SSE2 lacks */
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    r = x - n * 0.693359375f;          /* ln 2 in two parts (Cody & Waite), so r is exact */
    r = r - n * -2.12194440054690583e-4f;
    p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = ((int32_t)n + 127) << 23;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

static inline float lstmc_sigmoid_f(float x) {
    return 1.0f / (1.0f + lstmc_exp_clamped_f(-x));
}

static inline float lstmc_tanh_f(float x) {
    /* Near 0, 1 - e^-2|x| cancels: use tanh's Taylor series there (|x| < 1/4, next term
     * below 1e-8 relative); elsewhere (1 - e^-2|x|) / (1 + e^-2|x|) with x's sign. */
    float a = fabsf(x), x2 = x * x;
    float series = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
    float e = lstmc_exp_clamped_f(-2.0f * a);
    float t = (1.0f - e) / (1.0f + e);
    return a < 0.25f ? series : (x < 0 ? -t : t);
}

/* The same in float64, to libm's accuracy (a few 1e-16): the series runs to r^13 (next
 * term below 2e-17 relative) and the small-|x| branch of tanh ends at 1/2048, where the
 * cancellation in 1 - e^-2|x| still costs no more than ~1e-13 relative. */
static inline double lstmc_exp_clamped_d(double x) {
    double n, r, p, scale;
    int64_t bits;
    x = x > 708.0 ? 708.0 : x;
    x = x < -708.0 ? -708.0 : x;
    n = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;  /* 1.5 * 2^52 */
    r = x - n * 0.693145751953125;    /* ln 2 = 0.693145751953125 + 1.4286068203094173e-06 */
    r = r - n * 1.4286068203094173e-06;
    /* Horner on the Taylor coefficients 1/k!, k = 13 .. 0 (multiplications only: a
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
    p = p * r + 1.0;
    bits = ((int64_t)n + 1023) << 52;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

static inline double lstmc_sigmoid_d(double x) {
    return 1.0 / (1.0 + lstmc_exp_clamped_d(-x));
}

static inline double lstmc_tanh_d(double x) {
    double a = fabs(x), x2 = x * x;
    double series = x * (1.0 + x2 * (-1.0 / 3 + x2 * (2.0 / 15 + x2 * (-17.0 / 315))));
    double e = lstmc_exp_clamped_d(-2.0 * a);
    double t = (1.0 - e) / (1.0 + e);
    return a < 1.0 / 2048 ? series : (x < 0 ? -t : t);
}

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
static inline __attribute__((always_inline)) void lstmc_activate_##SUFFIX(int code, T *x, ptrdiff_t n) {                     \
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
}

LSTMC_DEFINE_ACTIVATE(f, float, expf, expm1f, log1pf, tanhf, erff, fabsf)
LSTMC_DEFINE_ACTIVATE(d, double, exp, expm1, log1p, tanh, erf, fabs)

#endif /* LSTMC_ACTIVATIONS_H */

/* The LSTM cell in registers: a step's four gates' activations, c = f c + i g and
 * h = o tanh(c) for vectors of units, by the vectorised sigmoid and tanh of
 * lstm_c/_activations.h, for lstm_c/_finish.h (which finishes every step of a CPU that
 * has it here, whatever the path). */
#ifndef LSTMC_CELL_H
#define LSTMC_CELL_H

#include <stddef.h>

#include "_activations.h"   /* the gate functions, LSTMC_CPU_SUPPORTS, lstmc_has_avx2_fma */

/* Where one vector of units goes in lstmc_lstm_cell_* (below). */
typedef struct { float *c, *h[3], *trace; } lstmc_cell_rows_f;
typedef struct { double *c, *h[3], *trace; } lstmc_cell_rows_d;
/* its flags, and the vectors whose c it computes before their h */
enum { LSTMC_CELL_STREAM = 1, LSTMC_CELL_KEEP_GATES = 2, LSTMC_CELL_GROUP = 8 };

#if defined(LSTMC_HAVE_CLONES)
/* An LSTM cell on vectors of units, in registers: the gates' activations (sigmoid, and
 * tanh for g), c = f c + i g and h = o tanh(c). Vector v's gates are gates[gate * n +
 * LANES v]; its cell state rows[v].c is read and written; h goes to every one of
 * rows[v].h[0 .. 3) that is not NULL (h_next, the output sequence, the last output); with
 * a trace, the six values i, f, g, o, c, h go to rows[v].trace + 0 .. 5 planes, streamed
 * past the caches if flags has LSTMC_CELL_STREAM (see lstm_c/_finish.h); with
 * LSTMC_CELL_KEEP_GATES, i, f, g, o replace their pre-activations in `gates`. (Both flags
 * in one argument: a seventh argument goes on the stack, and the caller stalled at the
 * call's return, in 256 x 50 x LSTM(64) for longer than the changes below saved.)
 * - The products i g and o tanh(c) take one division each, not two: a sigmoid is 1 over
 *   its denominator and a tanh a fraction, so i g is tanh's numerator over the product of
 *   the two denominators (in float32 that product overflows only where i g < 1e-36, which
 *   then comes out 0; in float64 it cannot). The trace's i, g and o are still the gate
 *   functions' own values (their divisions only then).
 * - c for a group of LSTMC_CELL_GROUP vectors first, then their h: a vector's h waits on
 *   its c through two exp chains and two divisions, which one vector after another left
 *   to run nearly alone.
 * Both cut the cell of a tile of 6 samples by 15-20% on a Zen 4, in float32 and float64
 * (five divisions and one pass: 1.3 and 4.1 ns a unit; three and two passes: 1.1 and 3.4).
 * Every path of a CPU that has this cell takes it (lstm_c/_finish.h), so the bits
 * never depend on the path. (The loops before it took five passes over the gates and kept
 * c and h in memory between them: a batch of 256 of LSTM(64) on one core ran 8% faster in
 * registers.) One for 512-bit vectors (AVX-512), one for 256-bit ones (AVX2 and FMA), in
 * float32 and float64, the same bits. MM is the intrinsics' prefix, ACT the activations'
 * suffix. */
#define LSTMC_DEFINE_CELL(ISA, TARGET, MM, SFX, REAL, VEC, LANES, PS, ACT)                      \
TARGET static inline void lstmc_put_##ISA##_##PS(REAL *dst, VEC value, int stream) {          \
    if (stream && ((size_t)dst & 63) == 0) MM##_stream_##PS(dst, value);                       \
    else MM##_storeu_##PS(dst, value);                                                         \
}                                                                                              \
                                                                                               \
TARGET static void lstmc_lstm_cell_##ISA##_##SFX(                                              \
        REAL *gates, ptrdiff_t n, ptrdiff_t n_vectors, const lstmc_cell_rows_##SFX *rows,      \
        ptrdiff_t plane, int flags) {                                                          \
    const int stream = flags & LSTMC_CELL_STREAM, keep_gates = flags & LSTMC_CELL_KEEP_GATES;  \
    const VEC one = MM##_set1_##PS(1);                                                         \
    VEC o_denominators[LSTMC_CELL_GROUP];                                                      \
    ptrdiff_t v0, v, v1;                                                                       \
    int r;                                                                                     \
    for (v0 = 0; v0 < n_vectors; v0 = v1) {                                                    \
        v1 = v0 + LSTMC_CELL_GROUP < n_vectors ? v0 + LSTMC_CELL_GROUP : n_vectors;            \
        for (v = v0; v < v1; v++) {                                                            \
            REAL *at = gates + LANES * v, *trace = rows[v].trace;                              \
            const VEC zi = MM##_loadu_##PS(at), zg = MM##_loadu_##PS(at + 2 * n);              \
            const VEC i_denominator = lstmc_sigmoid_denominator_##ACT(zi);                     \
            const VEC f = lstmc_sigmoid_##ACT(MM##_loadu_##PS(at + n));                        \
            VEC g_denominator;                                                                 \
            const VEC g_numerator = lstmc_tanh_fraction_##ACT(zg, &g_denominator);             \
            const VEC i_g = lstmc_tanh_finish_##ACT(                                           \
                MM##_div_##PS(g_numerator, MM##_mul_##PS(g_denominator, i_denominator)), zg);  \
            MM##_storeu_##PS(rows[v].c, MM##_fmadd_##PS(f, MM##_loadu_##PS(rows[v].c), i_g));  \
            o_denominators[v - v0] = lstmc_sigmoid_denominator_##ACT(MM##_loadu_##PS(at + 3 * n)); \
            if (trace != NULL || keep_gates) {                                                 \
                const VEC i = MM##_div_##PS(one, i_denominator);                               \
                const VEC g = lstmc_tanh_finish_##ACT(MM##_div_##PS(g_numerator, g_denominator), zg); \
                if (trace != NULL) {                                                           \
                    lstmc_put_##ISA##_##PS(trace, i, stream);                                  \
                    lstmc_put_##ISA##_##PS(trace + plane, f, stream);                          \
                    lstmc_put_##ISA##_##PS(trace + 2 * plane, g, stream);                      \
                }                                                                              \
                if (keep_gates) {                                                              \
                    MM##_storeu_##PS(at, i);                                                   \
                    MM##_storeu_##PS(at + n, f);                                               \
                    MM##_storeu_##PS(at + 2 * n, g);                                           \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        for (v = v0; v < v1; v++) {                                                            \
            REAL *at = gates + LANES * v, *trace = rows[v].trace;                              \
            const VEC c = MM##_loadu_##PS(rows[v].c), o_denominator = o_denominators[v - v0];  \
            VEC tanh_c_denominator;                                                            \
            const VEC tanh_c_numerator = lstmc_tanh_fraction_##ACT(c, &tanh_c_denominator);    \
            const VEC h = lstmc_tanh_finish_##ACT(                                             \
                MM##_div_##PS(tanh_c_numerator, MM##_mul_##PS(tanh_c_denominator, o_denominator)), c); \
            for (r = 0; r < 3; r++)                                                            \
                if (rows[v].h[r] != NULL) MM##_storeu_##PS(rows[v].h[r], h);                   \
            if (trace != NULL || keep_gates) {                                                 \
                const VEC o = MM##_div_##PS(one, o_denominator);                               \
                if (trace != NULL) {                                                           \
                    lstmc_put_##ISA##_##PS(trace + 3 * plane, o, stream);                      \
                    lstmc_put_##ISA##_##PS(trace + 4 * plane, c, stream);                      \
                    lstmc_put_##ISA##_##PS(trace + 5 * plane, h, stream);                      \
                }                                                                              \
                if (keep_gates) MM##_storeu_##PS(at + 3 * n, o);                               \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}
LSTMC_DEFINE_CELL(avx512, LSTMC_AVX512_TARGET, _mm512, f, float, __m512, 16, ps, ps)
LSTMC_DEFINE_CELL(avx512, LSTMC_AVX512_TARGET, _mm512, d, double, __m512d, 8, pd, pd)
LSTMC_DEFINE_CELL(avx2, LSTMC_AVX2_TARGET, _mm256, f, float, __m256, 8, ps, ps8)
LSTMC_DEFINE_CELL(avx2, LSTMC_AVX2_TARGET, _mm256, d, double, __m256d, 4, pd, pd4)

/* Whether a cell of these activations on vectors of `vector_bytes` can run in registers
 * (lstmc_lstm_cell_*) on this CPU: wherever it has AVX2 and FMA, 512-bit blocks included
 * (below), so that on such a CPU every block width and path gives the same bits. */
static inline int lstmc_has_fast_cell(size_t vector_bytes, int recurrent_activation, int activation) {
    if (recurrent_activation != LSTMC_SIGMOID || activation != LSTMC_TANH) return 0;
    return (vector_bytes == 64 || vector_bytes == 32) && lstmc_has_avx2_fma();
}

/* The cell on vectors of `vector_bytes` (lstmc_has_fast_cell said it can run). 512-bit
 * blocks on a CPU without AVX-512 (Kernel(wide=True) asks for them anywhere) run the
 * 256-bit cell on their halves, up to LSTMC_CELL_HALVES blocks at a time. The 256-bit cell
 * never streams: the loops stream only whole 512-bit lines. */
enum { LSTMC_CELL_HALVES = 16 };
#define LSTMC_DEFINE_CELL_OF_WIDTH(SFX, REAL)                                                  \
static inline void lstmc_lstm_cell_##SFX(size_t vector_bytes, REAL *gates, ptrdiff_t n,        \
                                         ptrdiff_t n_vectors, const lstmc_cell_rows_##SFX *rows, \
                                         ptrdiff_t plane, int flags) {                         \
    enum { HALF = 32 / sizeof(REAL) };                                                         \
    lstmc_cell_rows_##SFX halves[2 * LSTMC_CELL_HALVES];                                       \
    ptrdiff_t v0, v, count;                                                                    \
    int r;                                                                                     \
    if (vector_bytes == 32) {                                                                  \
        lstmc_lstm_cell_avx2_##SFX(gates, n, n_vectors, rows, plane, flags & ~LSTMC_CELL_STREAM); \
        return;                                                                                \
    }                                                                                          \
    if (LSTMC_CPU_SUPPORTS("avx512f")) {                                                       \
        lstmc_lstm_cell_avx512_##SFX(gates, n, n_vectors, rows, plane, flags);                 \
        return;                                                                                \
    }                                                                                          \
    for (v0 = 0; v0 < n_vectors; v0 += count) {                                                \
        count = n_vectors - v0 < LSTMC_CELL_HALVES ? n_vectors - v0 : LSTMC_CELL_HALVES;       \
        for (v = 0; v < count; v++) {                                                          \
            const lstmc_cell_rows_##SFX *whole = &rows[v0 + v];                                \
            lstmc_cell_rows_##SFX *low = &halves[2 * v], *high = &halves[2 * v + 1];           \
            *low = *high = *whole;                                                             \
            high->c += HALF;                                                                   \
            for (r = 0; r < 3; r++)                                                            \
                if (whole->h[r] != NULL) high->h[r] += HALF;                                   \
            if (whole->trace != NULL) high->trace += HALF;                                     \
        }                                                                                      \
        lstmc_lstm_cell_avx2_##SFX(gates + 2 * HALF * v0, n, 2 * count, halves, plane,         \
                                   flags & ~LSTMC_CELL_STREAM);                                \
    }                                                                                          \
}
LSTMC_DEFINE_CELL_OF_WIDTH(f, float)
LSTMC_DEFINE_CELL_OF_WIDTH(d, double)

#else
#define lstmc_has_fast_cell(vector_bytes, recurrent_activation, activation) 0
#define lstmc_lstm_cell_f(vector_bytes, gates, n, n_vectors, rows, plane, flags) ((void)(rows))
#define lstmc_lstm_cell_d(vector_bytes, gates, n, n_vectors, rows, plane, flags) ((void)(rows))
#endif

#endif /* LSTMC_CELL_H */

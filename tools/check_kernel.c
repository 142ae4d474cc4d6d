/* The forward kernel (lstm_c/_recurrence.h) on its own, against a scalar LSTM in long
 * double: for a CPU the tests cannot run on, such as AArch64 under QEMU.
 *
 *     aarch64-linux-gnu-gcc -O3 -fno-math-errno -fno-trapping-math -fopenmp -static \
 *         -Ilstm_c tools/check_kernel.c -o /tmp/check_kernel -lm
 *     qemu-aarch64 /tmp/check_kernel
 *
 * (or gcc and the binary itself on this machine). It runs float32 and float64, batches
 * that fill tiles of 1-6 samples and leave ragged ones, 21 units (a ragged last block),
 * the input fused, projected ahead and (one sample) spread over the steps, on 1 and 2
 * threads, with sigmoid gates and tanh, and prints the largest |h - reference| of each;
 * the exit status says whether all were within tolerance (float32 2e-5, float64 1e-12).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "_recurrence.h"

enum { T = 9, D = 7, U = 21 };

static double uniform(unsigned *state) {  /* in [-1, 1) */
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static long double sigmoid(long double x) { return 1.0L / (1.0L + expl(-x)); }

static void *lines(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

/* One problem: Keras-layout weights, their packing (lstm_c/_packing.py), the kernel's
 * outputs and the reference's, compared step by step. */
#define LSTMC_DEFINE_CHECK(REAL, IS_DOUBLE, LANES, TOLERANCE)                                  \
static int check_##REAL(int B, int TB, int spread, int threads, unsigned seed) {              \
    const int W = LANES, nblk = (U + W - 1) / W;                                               \
    REAL kernel[D][4 * U], recurrent[U][4 * U], bias[4 * U], x[B][T][D], out[B][T][U], last[B][U]; \
    REAL *packed = lines(sizeof(REAL) * nblk * (D + U) * 4 * W);                               \
    REAL *packed_bias = lines(sizeof(REAL) * nblk * 4 * W);                                    \
    REAL *h = lines(sizeof(REAL) * B * U), *c = lines(sizeof(REAL) * B * U);                   \
    REAL *spare = lines(sizeof(REAL) * B * U);                                                 \
    REAL *projection = TB ? lines(sizeof(REAL) * nblk * TB * B * 4 * W) : NULL;                \
    lstmc_seat *seats = lines(sizeof(lstmc_seat) * threads);                                   \
    long double h_ref[B][U], c_ref[B][U], h_next[B][U], z[4];                                  \
    double worst = 0.0;                                                                        \
    int b, t, k, g, u, blk;                                                                    \
    for (k = 0; k < D; k++) for (u = 0; u < 4 * U; u++) kernel[k][u] = (REAL)(0.5 * uniform(&seed)); \
    for (k = 0; k < U; k++) for (u = 0; u < 4 * U; u++) recurrent[k][u] = (REAL)(0.5 * uniform(&seed)); \
    for (u = 0; u < 4 * U; u++) bias[u] = (REAL)(0.3 * uniform(&seed));                        \
    for (b = 0; b < B; b++) for (t = 0; t < T; t++) for (k = 0; k < D; k++) x[b][t][k] = (REAL)uniform(&seed); \
    /* packed[blk][row][gate][lane] = [kernel; recurrent][row][gate * U + blk * W + lane] */  \
    for (blk = 0; blk < nblk; blk++)                                                           \
        for (g = 0; g < 4; g++)                                                                \
            for (u = 0; u < W; u++) {                                                          \
                const int unit = blk * W + u, col = g * U + unit;                              \
                for (k = 0; k < D + U; k++)                                                    \
                    packed[((blk * (D + U) + k) * 4 + g) * W + u] =                            \
                        unit >= U ? 0 : k < D ? kernel[k][col] : recurrent[k - D][col];        \
                packed_bias[(blk * 4 + g) * W + u] = unit < U ? bias[col] : 0;                 \
            }                                                                                  \
    for (k = 0; k < B * U; k++) h[k] = c[k] = 0;                                               \
    lstmc_recurrence_args args = {0};                                                          \
    args.B = B; args.T = T; args.D = D; args.U = U; args.W = W; args.nblk = nblk;              \
    args.x = x; args.wp = packed; args.bias = packed_bias;                                     \
    args.projection = projection; args.TB = TB; args.spread = spread;                          \
    args.h = h; args.h_spare = spare; args.c = c;                                              \
    args.act = LSTMC_TANH; args.rec_act = LSTMC_SIGMOID;                                       \
    args.out_seq = out; args.out_last = last; args.trace_plane = B * T * U;                    \
    args.k_begin = 0; args.k_end = T; args.n_threads = threads; args.is_double = IS_DOUBLE;    \
    args.patience = 1.0; args.regroup_first = 1.0; args.team_seats = seats;                    \
    lstmc_recurrence(&args);                                                                   \
    for (b = 0; b < B; b++) for (u = 0; u < U; u++) h_ref[b][u] = c_ref[b][u] = 0;             \
    for (t = 0; t < T; t++) {                                                                  \
        for (b = 0; b < B; b++)                                                                \
            for (u = 0; u < U; u++) {                                                          \
                for (g = 0; g < 4; g++) {                                                      \
                    z[g] = bias[g * U + u];                                                    \
                    for (k = 0; k < D; k++) z[g] += (long double)x[b][t][k] * kernel[k][g * U + u]; \
                    for (k = 0; k < U; k++) z[g] += h_ref[b][k] * recurrent[k][g * U + u];     \
                }                                                                              \
                c_ref[b][u] = sigmoid(z[1]) * c_ref[b][u] + sigmoid(z[0]) * tanhl(z[2]);       \
                h_next[b][u] = sigmoid(z[3]) * tanhl(c_ref[b][u]);                             \
                worst = fmax(worst, fabs((double)(out[b][t][u] - h_next[b][u])));              \
            }                                                                                  \
        for (b = 0; b < B; b++) for (u = 0; u < U; u++) h_ref[b][u] = h_next[b][u];            \
    }                                                                                          \
    printf("%-6s B=%-2d projected %s %d steps, %d thread(s): largest |h - reference| %.2g%s\n", \
           #REAL, B, spread ? "spread," : "ahead", spread ? spread : TB, threads, worst,        \
           worst < TOLERANCE ? "" : "  FAILED");                                               \
    free(packed); free(packed_bias); free(h); free(c); free(spare); free(projection); free(seats); \
    return worst < TOLERANCE;                                                                  \
}
LSTMC_DEFINE_CHECK(float, 0, LSTMC_LANES_FLOAT, 2e-5)
LSTMC_DEFINE_CHECK(double, 1, LSTMC_LANES_DOUBLE, 1e-12)

int main(void) {
    static const int batches[] = {1, 2, 3, 5, 6, 7, 13};
    int ok = 1, i, TB, threads;
    for (i = 0; i < (int)(sizeof batches / sizeof *batches); i++)
        for (TB = 0; TB <= 4; TB += 4)
            for (threads = 1; threads <= 2; threads++) {
                ok &= check_float(batches[i], TB, 0, threads, 1u + i);
                ok &= check_double(batches[i], TB, 0, threads, 2u + i);
            }
    /* one sample, batches of 2 and 4 spread over the steps (the buffer holds two batches;
     * T = 9 leaves a ragged last batch either way) */
    for (i = 2; i <= 4; i += 2)
        for (threads = 1; threads <= 2; threads++) {
            ok &= check_float(1, 2 * i, i, threads, 3u + i);
            ok &= check_double(1, 2 * i, i, threads, 4u + i);
        }
    puts(ok ? "all within tolerance" : "SOME FAILED");
    return !ok;
}

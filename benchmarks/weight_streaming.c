/* How fast can one core stream an LSTM's recurrent weights through its FMA units?
 *
 * The roof behind lstm_c's one-sequence shapes (benchmarks/RESULTS.md): with one sample,
 * every weight loaded feeds one multiply-add, so a step costs the time to read the
 * recurrent kernel, 4U x U values, from wherever it lives. This loop does exactly that
 * work and nothing else: blocks of 64 KB (the four gates of 16 units over 256 inputs, as
 * lstm_c packs them), four accumulators per block, one broadcast input per row, the
 * blocks visited in order or, as lstm_c does, in reverse on odd passes
 * (the blocks a pass used last are still in L2 when the next one starts). It prints
 * bytes per nanosecond per weight size, and the core's float32 FMA peak for scale.
 *
 *     cc -O2 -mavx512f -mfma benchmarks/weight_streaming.c -o /tmp/weight_streaming
 *     /tmp/weight_streaming
 *
 * (-mavx2 -mfma on a CPU without AVX-512: each 64-byte vector becomes two.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float vec __attribute__((vector_size(64)));
enum { ROWS = 256, BLOCK_FLOATS = ROWS * 64 };  /* 64 floats = 4 gates x 16 units */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One block: out[4] = sum over rows of h[row] * w[row][gate]. */
static void block(const float *w, const float *h, vec *out) {
    vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int row = 0; row < ROWS; row++) {
        const vec *wr = (const vec *)(w + row * 64);
        const float e = h[row];
        a0 += e * wr[0];
        a1 += e * wr[1];
        a2 += e * wr[2];
        a3 += e * wr[3];
    }
    out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
}

/* Seconds per pass over `blocks` blocks, best of 5 runs of `passes` passes. */
static double pass_seconds(const float *w, const float *h, vec *out, int blocks, int passes,
                           int serpentine) {
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        const double start = now();
        for (int p = 0; p < passes; p++)
            for (int j = 0; j < blocks; j++) {
                const int b = serpentine && p % 2 ? blocks - 1 - j : j;
                block(w + (size_t)b * BLOCK_FLOATS, h, out + 4 * b);
            }
        const double t = (now() - start) / passes;
        best = t < best ? t : best;
    }
    return best;
}

/* float32 GFLOP/s of 24 independent multiply-add chains with no memory traffic (as many
 * as AVX-512's 32 registers hold: fewer left this Zen 5 core's two FMA pipes idle). */
enum { CHAINS = 24 };
static double fma_peak(void) {
    vec acc[CHAINS], m = {0}, c = {0};
    for (int i = 0; i < 16; i++) m[i] = 0.999999f, c[i] = 1e-7f;
    for (int i = 0; i < CHAINS; i++) acc[i] = c * (float)i;
    const long n = 40000000;
    const double start = now();
    for (long k = 0; k < n; k++) {
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++) acc[i] = acc[i] * m + c;
    }
    const double t = now() - start;
    float sink = 0;
    for (int i = 0; i < CHAINS; i++) sink += acc[i][0];
    if (sink == 42.0f) printf(" ");  /* keep the loop */
    return 2.0 * 16 * CHAINS * n / t / 1e9;
}

int main(void) {
    const int max_blocks = 128;  /* 8 MB */
    float *w = aligned_alloc(64, (size_t)max_blocks * BLOCK_FLOATS * sizeof(float));
    float *h = aligned_alloc(64, ROWS * sizeof(float));
    vec *out = aligned_alloc(64, (size_t)max_blocks * 4 * sizeof(vec));
    if (w == NULL || h == NULL || out == NULL) return 1;
    for (size_t i = 0; i < (size_t)max_blocks * BLOCK_FLOATS; i++) w[i] = 1e-3f;
    for (int i = 0; i < ROWS; i++) h[i] = 0.5f;
    printf("float32 FMA peak, one core: %.0f GFLOP/s\n", fma_peak());
    printf("%10s %22s %22s\n", "weights", "in order: B/ns (us)", "serpentine: B/ns (us)");
    const int sizes[] = {4, 8, 12, 14, 16, 18, 20, 32, 64, 128};  /* blocks of 64 KB */
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int blocks = sizes[s];
        const double bytes = (double)blocks * BLOCK_FLOATS * sizeof(float);
        const int passes = (int)(2e9 / bytes) + 1;
        const double ordered = pass_seconds(w, h, out, blocks, passes, 0);
        const double serpentine = pass_seconds(w, h, out, blocks, passes, 1);
        printf("%7.2f MB %14.0f (%5.2f) %14.0f (%5.2f)\n", bytes / (1 << 20), bytes / ordered / 1e9,
               ordered * 1e6, bytes / serpentine / 1e9, serpentine * 1e6);
    }
    free(w), free(h), free(out);
    return 0;
}

/* One sample's step on 256-bit blocks: the one-sample tile, block after block, against the
 * pair tile (two blocks side by side), both lstm_c's own (lstm_c/_tile.h), alone.
 *
 * A one-sample tile's four FMA chains, one per gate, take a row every 4 cycles on AVX2;
 * the pair's eight, a row of each block. This measures what that is worth where the rows
 * live in L2 or L3, for float32 rows, float64 rows and float32 rows widened for float64.
 * Each line: GFLOP/s (2 per weight) of the single tiles and of the pairs, best of `reps`
 * passes over `blocks` blocks of `rows` rows (float32: 128 bytes a row). The pair's results
 * are checked against the tiles' bit for bit.
 *
 *     cc -O3 -fno-math-errno -fno-trapping-math -Wno-unused-function -Ilstm_c                  \
 *         benchmarks/pair_tile.c -o /tmp/pair_tile
 *     /tmp/pair_tile 256 16 1000    # rows blocks reps: float32 rows, 512 KB
 *
 * Built so, the tiles dispatch as in the package: AVX2 where the CPU has it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "_tile.h"

/* aligned_alloc wants a size that is a multiple of the alignment */
static void *alloc_lines(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One pass of the step's tiles: block pairs (pair = 1) or the blocks one by one, each
 * block's four gate vectors of W lanes stored to its own place in out. */
#define DEFINE_PASS(NAME, TILE, PAIR, REAL, B_REAL, W)                                          \
static void NAME(int pair, const REAL *init, const B_REAL *w, const REAL *h, long rows,         \
                 long blocks, REAL *out) {                                                      \
    for (long b = 0; b < blocks; b += 2) {                                                      \
        const B_REAL *w0 = w + b * rows * 4 * W, *w1 = w0 + rows * 4 * W;                       \
        REAL *out0 = out + b * 4 * W, *out1 = out0 + 4 * W;                                     \
        if (pair) {                                                                             \
            PAIR(init, init, NULL, NULL, NULL, 0, w0, w1, h, rows, out0, out1, W);              \
        } else {                                                                                \
            TILE(1, init, 0, NULL, NULL, 0, 0, w0, h, 0, rows, out0, 0, W, NULL, 0);            \
            TILE(1, init, 0, NULL, NULL, 0, 0, w1, h, 0, rows, out1, 0, W, NULL, 0);            \
        }                                                                                       \
    }                                                                                           \
}
DEFINE_PASS(pass_f8, lstmc_tile_f8, lstmc_pair_f8, float, float, 8)
DEFINE_PASS(pass_d4, lstmc_tile_d4, lstmc_pair_d4, double, double, 4)
DEFINE_PASS(pass_ds4, lstmc_tile_ds4, lstmc_pair_ds4, double, float, 4)

/* Best GFLOP/s of `reps` passes, single tiles and pairs in turn, and whether their bits agree. */
#define DEFINE_MEASURE(NAME, PASS, REAL, B_REAL, W)                                             \
static void NAME(const char *label, long rows, long blocks, int reps) {                         \
    B_REAL *w = alloc_lines(rows * blocks * 4 * W * sizeof(B_REAL));                            \
    REAL *h = alloc_lines(rows * sizeof(REAL)), init[4 * W];                                    \
    REAL *out[2] = {alloc_lines(blocks * 4 * W * sizeof(REAL)),                                 \
                    alloc_lines(blocks * 4 * W * sizeof(REAL))};                                \
    double best[2] = {1e30, 1e30};                                                              \
    for (long i = 0; i < rows * blocks * 4 * W; i++) w[i] = (B_REAL)(1e-3 * (double)(i % 13));  \
    for (long i = 0; i < rows; i++) h[i] = (REAL)(1e-2 * (double)(i % 7));                      \
    for (int i = 0; i < 4 * W; i++) init[i] = (REAL)0.1;                                        \
    for (int r = 0; r < reps; r++)                                                              \
        for (int pair = 0; pair < 2; pair++) {                                                  \
            const double t0 = now();                                                            \
            PASS(pair, init, w, h, rows, blocks, out[pair]);                                    \
            const double t = now() - t0;                                                        \
            if (t < best[pair]) best[pair] = t;                                                 \
        }                                                                                       \
    const int same = memcmp(out[0], out[1], blocks * 4 * W * sizeof(REAL)) == 0;                \
    const double flops = 2.0 * (double)(rows * blocks * 4 * W);                                 \
    printf("%-26s %7.0f KB  tiles %5.1f  pair %5.1f GFLOP/s  %s\n", label,                      \
           (double)(rows * blocks * 4 * W * sizeof(B_REAL)) / 1024, flops / best[0] / 1e9,      \
           flops / best[1] / 1e9, same ? "same bits" : "BITS DIFFER");                          \
    free(w); free(h); free(out[0]); free(out[1]);                                               \
}
DEFINE_MEASURE(measure_f8, pass_f8, float, float, 8)
DEFINE_MEASURE(measure_d4, pass_d4, double, double, 4)
DEFINE_MEASURE(measure_ds4, pass_ds4, double, float, 4)

int main(int argc, char **argv) {
    const long rows = argc > 1 ? atol(argv[1]) : 256, blocks = argc > 2 ? atol(argv[2]) : 16;
    const int reps = argc > 3 ? atoi(argv[3]) : 500;
    if (rows < 1 || blocks < 2 || blocks % 2 || reps < 1) {
        fprintf(stderr, "usage: %s [rows >= 1] [blocks: even, >= 2] [reps >= 1]\n", argv[0]);
        return 2;
    }
    printf("AVX2 tiles: %s\n", lstmc_avx2_tiles() ? "yes" : "no (baseline x86-64: pairs are two tiles)");
    measure_f8("float32 rows", rows, blocks, reps);
    measure_d4("float64 rows", rows, blocks, reps);
    if (lstmc_single_rows(LSTMC_W_d))
        measure_ds4("float32 rows for float64", rows, blocks, reps);
    return 0;
}

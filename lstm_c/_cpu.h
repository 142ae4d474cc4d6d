/* What the CPU runs, for the choices the kernels make at run time (block width, the
 * AVX-512 or AVX2 gates and cell, float32 recurrent rows, the backward's micro-kernels),
 * and which clones of the hot loops are built.
 *
 * A build with -DLSTMC_ISA_LIMIT=3 (in CFLAGS) runs what a CPU without AVX-512 runs, and
 * with -DLSTMC_ISA_LIMIT=1 what one without AVX2 runs (baseline x86-64), on any machine:
 * .ci/run tests the narrower paths so on whatever CPU CI has. The default, 4, leaves every
 * choice to the CPU. A limited build still executes on the CI machine's CPU, so code that
 * strays past its check would pass there: tests/test_machine_code.py reads the machine code
 * for that. */
#ifndef LSTMC_CPU_H
#define LSTMC_CPU_H

#include <string.h>

#ifndef LSTMC_ISA_LIMIT
#define LSTMC_ISA_LIMIT 4
#endif

/* The x86-64 level a feature belongs to: 4 for AVX-512, 3 for AVX2 and FMA, else 1. GCC
 * folds the comparisons of a literal once this is inlined, which it must be: left out of
 * line, the gate math's choice called strcmp in every tile's finish (0.6-1.9% of a batch). */
static inline __attribute__((always_inline)) int lstmc_feature_level(const char *feature) {
    if (strncmp(feature, "avx512", 6) == 0 || strcmp(feature, "x86-64-v4") == 0) return 4;
    if (strcmp(feature, "avx2") == 0 || strcmp(feature, "fma") == 0 || strcmp(feature, "x86-64-v3") == 0)
        return 3;
    return 1;
}

/* __builtin_cpu_supports(feature), within the build's limit; feature a string literal */
#define LSTMC_CPU_SUPPORTS(feature)                                                            \
    (lstmc_feature_level(feature) <= LSTMC_ISA_LIMIT && __builtin_cpu_supports(feature))

/* Compile hot loops for AVX-512 and AVX2+FMA too, chosen at load time (ifunc); the
 * default clone keeps a wheel built here working on any x86-64. LSTMC_HAVE_CLONES: the
 * intrinsics' code is built (GCC on x86-64 Linux), whichever clones the limit leaves. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#if LSTMC_ISA_LIMIT >= 4
#define LSTMC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif LSTMC_ISA_LIMIT == 3
#define LSTMC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LSTMC_CLONES
#endif
#define LSTMC_HAVE_CLONES 1
#else
#define LSTMC_CLONES
#endif

/* Whether the CPU's L2 feeds a core 32 bytes a cycle: AMD's families 17h and 19h (Zen 1 to
 * Zen 4; Zen 5 and Intel's cores since Skylake-SP: 64). Where it does, one sample's step
 * over float64 rows waits on L2 well before they leave it (lstm_c/_core.pyx,
 * SINGLE_ROWS_MIN_BYTES). */
static inline int lstmc_l2_feeds_32_bytes(void) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_is("amdfam17h") || __builtin_cpu_is("amdfam19h");
#else
    return 0;
#endif
}

#endif /* LSTMC_CPU_H */

/*
 * testutil.h - what the library's C tests share: a CHECK macro that counts
 * failures and goes on, a seeded xorshift generator, and clustered data
 * with integer values (exact in f32, f16 and u8).  Header-only: each test
 * program has its own copies.
 */
#ifndef ANN_TESTUTIL_H
#define ANN_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond, ...)                                                                                      \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                               \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fprintf(stderr, "\n");                                                                             \
            failures++;                                                                                        \
        }                                                                                                      \
    } while (0)

/* State of urand(); a test sets it first thing for its own sequence. */
static uint64_t test_rng = 12345;

/* Uniform in [0, 1) (xorshift64). */
static inline double urand(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (double)(test_rng >> 11) / 9007199254740992.0;
}

/*
 * n x d rows around `clusters` centers drawn uniformly in [lo, lo + width);
 * each value is its center plus noise x (the sum of `terms` uniforms less
 * terms / 2), rounded and clamped to [0, 255].
 */
static inline void test_clustered(float *x, int64_t n, int64_t d, int clusters, double lo, double width,
                                  double noise, int terms)
{
    float *c = malloc((size_t)clusters * d * sizeof(float));
    if (!c)
        abort();
    for (int64_t i = 0; i < clusters * d; i++)
        c[i] = (float)(lo + width * urand());
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)(urand() * clusters);
        for (int64_t j = 0; j < d; j++) {
            double s = 0;
            for (int t = 0; t < terms; t++)
                s += urand();
            x[i * d + j] = (float)fmin(255, fmax(0, nearbyint(c[k * d + j] + noise * (s - terms / 2.0))));
        }
    }
    free(c);
}

/* Print the verdict and return main's exit status. */
static inline int test_finish(const char *name)
{
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif

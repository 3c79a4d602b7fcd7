/*
 * gen_data - seeded test data and an independent exact-kNN oracle for the
 * bats suites.  It uses no part of annkit, so a bug in the library cannot
 * hide itself in the expected values.
 *
 *   gen_data [-n ROWS] [-q QROWS] [-d DIM] [-c CLUSTERS] [-s SEED] [-x SPREAD]
 *            BASE.fbin [QUERIES.fbin]
 *       clustered Gaussian data: CLUSTERS centres uniform in [-5, 5]^DIM,
 *       each row a centre plus N(0, SPREAD^2) noise; the queries are drawn
 *       from the same centres with an independent stream.
 *   gen_data knn [-k K] [-D] BASE.fbin QUERIES.fbin
 *       the exact K nearest rows of BASE (squared L2, computed in double,
 *       ties broken by id) for each query, one line of ids per query on
 *       stdout; -D prints the squared distances instead.
 *   gen_data flip FILE OFFSET
 *       invert every bit of the byte at OFFSET of FILE (corrupt-file tests).
 *
 * fbin: uint32 rows, uint32 dim, then rows x dim little-endian float32.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t g_state;

/* splitmix64: small, seedable, and the same on every platform. */
static uint64_t next_u64(void)
{
    uint64_t z = (g_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(void)
{
    return ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0;
}

static double gaussian(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int die(const char *msg, const char *arg)
{
    fprintf(stderr, "gen_data: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 1;
}

static int write_rows(const char *path, const float *centers, int c, int n, int d, double spread)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return die("cannot write", path);
    uint32_t hdr[2] = {(uint32_t)n, (uint32_t)d};
    fwrite(hdr, sizeof hdr, 1, f);
    float *row = malloc((size_t)d * sizeof *row);
    for (int i = 0; i < n; i++) {
        const float *ctr = centers + (size_t)(next_u64() % (uint64_t)c) * d;
        for (int j = 0; j < d; j++)
            row[j] = (float)(ctr[j] + spread * gaussian());
        fwrite(row, sizeof *row, (size_t)d, f);
    }
    free(row);
    if (fclose(f) != 0)
        return die("write error", path);
    return 0;
}

static int generate(int argc, char **argv)
{
    int n = 1000, nq = 100, d = 16, c = 10, opt;
    uint64_t seed = 1;
    double spread = 1.0;
    while ((opt = getopt(argc, argv, "n:q:d:c:s:x:")) != -1) {
        switch (opt) {
        case 'n': n = atoi(optarg); break;
        case 'q': nq = atoi(optarg); break;
        case 'd': d = atoi(optarg); break;
        case 'c': c = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'x': spread = atof(optarg); break;
        default: return die("bad option", NULL);
        }
    }
    if (optind >= argc || n < 0 || nq < 0 || d < 1 || c < 1)
        return die("usage: gen_data [-n ROWS] [-q QROWS] [-d DIM] [-c CLUSTERS] [-s SEED] "
                   "[-x SPREAD] BASE.fbin [QUERIES.fbin]", NULL);
    float *centers = malloc((size_t)c * d * sizeof *centers);
    g_state = seed;
    for (size_t i = 0; i < (size_t)c * d; i++)
        centers[i] = (float)(10.0 * uniform() - 5.0);
    int rc = write_rows(argv[optind], centers, c, n, d, spread);
    if (rc == 0 && optind + 1 < argc) {
        g_state = seed ^ 0x5deece66dULL;
        rc = write_rows(argv[optind + 1], centers, c, nq, d, spread);
    }
    free(centers);
    return rc;
}

static float *read_fbin(const char *path, uint32_t *n, uint32_t *d)
{
    FILE *f = fopen(path, "rb");
    uint32_t hdr[2];
    if (f == NULL || fread(hdr, sizeof hdr, 1, f) != 1) {
        if (f)
            fclose(f);
        return NULL;
    }
    *n = hdr[0];
    *d = hdr[1];
    size_t count = (size_t)hdr[0] * hdr[1];
    float *v = malloc(count ? count * sizeof *v : 1);
    if (v != NULL && fread(v, sizeof *v, count, f) != count) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

typedef struct {
    double dist;
    uint32_t id;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int knn(int argc, char **argv)
{
    int k = 10, opt;
    int print_dist = 0;
    optind = 1;
    while ((opt = getopt(argc, argv, "k:D")) != -1) {
        if (opt == 'k')
            k = atoi(optarg);
        else if (opt == 'D')
            print_dist = 1;
        else
            return die("bad option", NULL);
    }
    if (argc - optind != 2 || k < 1)
        return die("usage: gen_data knn [-k K] [-D] BASE.fbin QUERIES.fbin", NULL);
    uint32_t n, d, nq, dq;
    float *base = read_fbin(argv[optind], &n, &d);
    float *q = read_fbin(argv[optind + 1], &nq, &dq);
    if (base == NULL || q == NULL || d != dq || (uint32_t)k > n)
        return die("cannot read the inputs, or their dimensions differ", NULL);
    cand *c = malloc((size_t)n * sizeof *c);
    for (uint32_t i = 0; i < nq; i++) {
        for (uint32_t j = 0; j < n; j++) {
            double s = 0;
            for (uint32_t t = 0; t < d; t++) {
                double diff = (double)q[(size_t)i * d + t] - (double)base[(size_t)j * d + t];
                s += diff * diff;
            }
            c[j].dist = s;
            c[j].id = j;
        }
        qsort(c, n, sizeof *c, cmp_cand);
        for (int j = 0; j < k; j++) {
            if (print_dist)
                printf("%s%.6g", j ? " " : "", c[j].dist);
            else
                printf("%s%u", j ? " " : "", c[j].id);
        }
        printf("\n");
    }
    free(c);
    free(base);
    free(q);
    return 0;
}

static int flip(int argc, char **argv)
{
    if (argc != 3)
        return die("usage: gen_data flip FILE OFFSET", NULL);
    FILE *f = fopen(argv[1], "r+b");
    long off = atol(argv[2]);
    int byte;
    if (f == NULL || fseek(f, off, SEEK_SET) != 0 || (byte = fgetc(f)) == EOF)
        return die("cannot read the byte", argv[1]);
    fseek(f, off, SEEK_SET);
    fputc(byte ^ 0xff, f);
    return fclose(f) == 0 ? 0 : die("write error", argv[1]);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "knn") == 0)
        return knn(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "flip") == 0)
        return flip(argc - 1, argv + 1);
    return generate(argc, argv);
}

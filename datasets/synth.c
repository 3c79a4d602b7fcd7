/*
 * annsynth - seeded synthetic vectors: isotropic Gaussian clusters.
 *
 *   annsynth --rows N --dim D [--clusters C] [--sigma S] [--dtype f32|u8]
 *            [--seed S] [-f] OUT
 *
 * Model: C centers are drawn uniformly in the unit box [0,1)^D; each row
 * picks a center uniformly at random and adds N(0, sigma^2) noise to every
 * coordinate.  f32 rows store the values as float; u8 rows store
 * round(255 * x) clamped to 0..255.  OUT is an fbin (.fbin) or u8bin
 * (.u8bin) file: uint32 rows, uint32 dim (little endian), then the rows
 * (float32 little endian or bytes), or "-" for stdout.
 *
 * Reproducibility: the same arguments give the same bytes on every machine.
 * The generator is splitmix64 (seeding) + xoshiro256**; the Gaussians come
 * from Box-Muller, with log, sin and cos evaluated by the fixed series below
 * using only +, -, *, / and sqrt (all correctly rounded in IEEE 754), never
 * by the C library, whose last-bit results differ between libms.  Build with
 * floating-point contraction off (datasets/meson.build does), so no FMA
 * changes a rounding.
 *
 * Random stream order (part of the output definition): the C x D center
 * coordinates row by row, each one uniform draw; then per row one draw for
 * its cluster, followed by D Gaussians.  Gaussians come in Box-Muller pairs
 * (two uniform draws u1, u2), the second of a pair kept for the next
 * Gaussian, also across rows.
 *
 * Exit status: 0 success, 1 runtime error, 2 usage error.
 * Uses only libc and sqrt from libm.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "annsynth"
#define ANNSYNTH_VERSION "1.0"

/* ------------------------------------------------------------------ PRNG */

typedef struct rng {
    uint64_t s[4];
    bool have_spare;
    double spare;
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->have_spare = false;
    r->spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_uniform(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1], 53 bits (never 0, for the logarithm). */
static inline double rng_uniform_pos(rng *r)
{
    return (double)((rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n < 2^32: multiply-high on the top 32 bits. */
static inline uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ------------------------------------------- portable elementary functions */

/*
 * Natural logarithm of x in (0, 1].  x = m * 2^e with m in [sqrt(1/2), sqrt(2));
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, summed to s^27
 * (the next term is below 1e-20 relative).  Only exact or correctly rounded
 * operations, in a fixed order.
 */
static double det_log(double x)
{
    int e = 0;
    double m = frexp(x, &e); /* exact: m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;            /* exact */
        e -= 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    /* Horner: 1 + s2/3 + s2^2/5 + ... + s2^13/27 */
    double p = 1.0 / 27.0;
    for (int n = 25; n >= 1; n -= 2)
        p = p * s2 + 1.0 / (double)n;
    static const double ln2 = 0.693147180559945309417232121458176568;
    return (double)e * ln2 + 2.0 * s * p;
}

/*
 * Taylor coefficients, highest degree first, computed once at start-up by
 * exact-order divisions (deterministic everywhere):
 *   g_sin_c: (-1)^m / (2m+1)!  for m = 10 .. 0   (sin d = d * sum c_m d^2m)
 *   g_cos_c: (-1)^m / (2m)!    for m = 11 .. 0   (cos d = sum c_m d^2m)
 */
enum { N_SIN = 11, N_COS = 12 };
static double g_sin_c[N_SIN], g_cos_c[N_COS];

static void sincos_init(void)
{
    for (int m = 0; m < N_SIN; m++) {
        double c = 1.0;
        for (int j = 2; j <= 2 * m + 1; j++)
            c /= (double)j;
        g_sin_c[N_SIN - 1 - m] = (m & 1) ? -c : c;
    }
    for (int m = 0; m < N_COS; m++) {
        double c = 1.0;
        for (int j = 2; j <= 2 * m; j++)
            c /= (double)j;
        g_cos_c[N_COS - 1 - m] = (m & 1) ? -c : c;
    }
}

/*
 * sin and cos of 2*pi*u for u in [0, 1).  The quadrant comes from 4u
 * (exact); the remaining angle t = (4u - q) * pi/2 in [0, pi/2) is centred
 * as t = pi/4 + d, |d| <= pi/4, and sin/cos of d are Taylor series to
 * degree 21/22 (truncation error below 1e-19).  Then the angle sum with
 * sin(pi/4) = cos(pi/4) = sqrt(1/2) and the quadrant rotation.
 */
static void det_sincos_2pi(double u, double *sn, double *cs)
{
    double u4 = u * 4.0;           /* exact */
    int q = (int)u4;               /* 0..3 */
    double f = u4 - (double)q;     /* exact, in [0, 1) */
    static const double half_pi = 1.57079632679489661923132169163975144;
    double d = (f - 0.5) * half_pi; /* f - 0.5 exact */
    double d2 = d * d;
    /* sin d = d (1 - d2/3! + d2^2/5! - ...), cos d = 1 - d2/2! + ... */
    /* Horner in d2 over the precomputed coefficients (sincos_init) */
    double ps = 0.0, pc = 0.0;
    for (int n = 0; n < N_SIN; n++)
        ps = ps * d2 + g_sin_c[n];
    double sd = d * ps;
    for (int n = 0; n < N_COS; n++)
        pc = pc * d2 + g_cos_c[n];
    double cd = pc;
    static const double r = 0.707106781186547524400844362104849039;
    /* t = pi/4 + d */
    double st = r * (cd + sd);
    double ct = r * (cd - sd);
    switch (q) {
    case 0: *sn = st;  *cs = ct;  break;
    case 1: *sn = ct;  *cs = -st; break; /* + pi/2 */
    case 2: *sn = -st; *cs = -ct; break; /* + pi   */
    default: *sn = -ct; *cs = st; break; /* + 3pi/2 */
    }
}

/* Standard normal via Box-Muller, one value per call. */
static double rng_gauss(rng *r)
{
    if (r->have_spare) {
        r->have_spare = false;
        return r->spare;
    }
    double u1 = rng_uniform_pos(r);
    double u2 = rng_uniform(r);
    double rad = sqrt(-2.0 * det_log(u1));
    double sn, cs;
    det_sincos_2pi(u2, &sn, &cs);
    r->spare = rad * sn;
    r->have_spare = true;
    return rad * cs;
}

/* ------------------------------------------------------------- options */

static void usage(FILE *fp)
{
    fprintf(fp,
        "usage: " PROG " --rows N --dim D [--clusters C] [--sigma S] [--dtype f32|u8]\n"
        "                [--seed S] [-f] OUT\n"
        "\n"
        "Write N seeded synthetic D-dimensional vectors: C centers uniform in [0,1)^D,\n"
        "each row = a uniformly chosen center + N(0, S^2) noise per coordinate.\n"
        "\n"
        "  --rows N        number of rows (1 .. 2^32-1)\n"
        "  --dim D         dimension (1 .. 2^32-1)\n"
        "  --clusters C    number of cluster centers (default 100)\n"
        "  --sigma S       noise standard deviation (default 0.1; 0 puts rows on centers)\n"
        "  --dtype T       f32 (float32) or u8 (round(255*x) clamped to 0..255);\n"
        "                  default: from OUT's extension (.fbin f32, .u8bin u8), else f32\n"
        "  --seed S        64-bit seed (default 42); equal seeds give equal bytes everywhere\n"
        "  -f, --force     overwrite an existing OUT\n"
        "  -h, --help      this help\n"
        "  -V, --version   version\n"
        "\n"
        "OUT: PATH.fbin or PATH.u8bin (uint32 rows, uint32 dim, then row-major data,\n"
        "little endian), another name with --dtype, or '-' for stdout.\n"
        "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '" PROG " --help'.\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    /* accept plain digits, and 1e6-style for convenience when exact */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == 0 && *end == '\0') {
        if (v > max)
            return false;
        *out = v;
        return true;
    }
    errno = 0;
    double d = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(d >= 0.0) || d > (double)max || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(d))
        return false;
    *out = d;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------------------- output */

static char *g_tmp_path = NULL; /* removed on signal or failure */

static void on_signal(int sig)
{
    if (g_tmp_path)
        unlink(g_tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)((v >> 24) & 0xff);
}

enum dtype { DT_F32, DT_U8 };

typedef struct opts {
    uint64_t rows, dim, clusters, seed;
    double sigma;
    int dtype; /* -1 = not given */
    bool force;
    const char *out;
} opts;

static int generate(const opts *o, FILE *fp, const char *name)
{
    const uint32_t rows = (uint32_t)o->rows, dim = (uint32_t)o->dim;
    const uint32_t ncl = (uint32_t)o->clusters;
    const size_t esz = o->dtype == DT_F32 ? 4 : 1;

    double *centers = malloc((size_t)ncl * dim * sizeof(double));
    unsigned char *buf = malloc((size_t)dim * esz);
    if (!centers || !buf) {
        fprintf(stderr, PROG ": out of memory (%" PRIu32 " centers x %" PRIu32 " dims)\n", ncl, dim);
        free(centers);
        free(buf);
        return 1;
    }

    rng r;
    sincos_init();
    rng_seed(&r, o->seed);
    for (size_t i = 0; i < (size_t)ncl * dim; i++)
        centers[i] = rng_uniform(&r);

    unsigned char hdr[8];
    put_u32le(hdr, rows);
    put_u32le(hdr + 4, dim);
    int rc = 0;
    if (fwrite(hdr, 1, 8, fp) != 8)
        rc = 1;

    const double sigma = o->sigma;
    for (uint32_t i = 0; i < rows && rc == 0; i++) {
        const double *c = centers + (size_t)rng_below(&r, ncl) * dim;
        for (uint32_t j = 0; j < dim; j++) {
            double x = c[j] + sigma * rng_gauss(&r);
            if (o->dtype == DT_F32) {
                float f = (float)x;
                uint32_t bits;
                memcpy(&bits, &f, 4);
                put_u32le(buf + (size_t)j * 4, bits);
            } else {
                double v = floor(x * 255.0 + 0.5);
                if (!(v >= 0.0))
                    v = 0.0;
                if (v > 255.0)
                    v = 255.0;
                buf[j] = (unsigned char)v;
            }
        }
        if (fwrite(buf, esz, dim, fp) != dim)
            rc = 1;
    }
    if (rc != 0)
        fprintf(stderr, PROG ": '%s': write failed: %s\n", name, strerror(errno));
    free(centers);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = { .rows = 0, .dim = 0, .clusters = 100, .seed = 42, .sigma = 0.1,
               .dtype = -1, .force = false, .out = NULL };
    bool have_rows = false, have_dim = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char optbuf[32];
        /* --opt=value */
        if (strncmp(a, "--", 2) == 0 && strchr(a, '=')) {
            size_t n = (size_t)(strchr(a, '=') - a);
            if (n >= sizeof optbuf)
                return bad_usage("unknown option '%s'", a);
            memcpy(optbuf, a, n);
            optbuf[n] = '\0';
            val = a + n + 1;
            a = optbuf;
        }
#define NEED_VALUE()                                                      \
        do {                                                              \
            if (!val) {                                                   \
                if (i + 1 >= argc)                                        \
                    return bad_usage("option '%s' needs a value", a);     \
                val = argv[++i];                                          \
            }                                                             \
        } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf(PROG " " ANNSYNTH_VERSION "\n");
            return 0;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--force") == 0) {
            o.force = true;
        } else if (strcmp(a, "--rows") == 0) {
            NEED_VALUE();
            if (!parse_u64(val, UINT32_MAX, &o.rows) || o.rows == 0)
                return bad_usage("--rows: '%s' is not an integer in 1..4294967295", val);
            have_rows = true;
        } else if (strcmp(a, "--dim") == 0) {
            NEED_VALUE();
            if (!parse_u64(val, UINT32_MAX, &o.dim) || o.dim == 0)
                return bad_usage("--dim: '%s' is not an integer in 1..4294967295", val);
            have_dim = true;
        } else if (strcmp(a, "--clusters") == 0) {
            NEED_VALUE();
            if (!parse_u64(val, UINT32_MAX, &o.clusters) || o.clusters == 0)
                return bad_usage("--clusters: '%s' is not an integer in 1..4294967295", val);
        } else if (strcmp(a, "--sigma") == 0) {
            NEED_VALUE();
            if (!parse_double(val, &o.sigma) || o.sigma < 0.0)
                return bad_usage("--sigma: '%s' is not a finite number >= 0", val);
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            if (!parse_u64(val, UINT64_MAX, &o.seed))
                return bad_usage("--seed: '%s' is not an integer in 0..2^64-1", val);
        } else if (strcmp(a, "--dtype") == 0) {
            NEED_VALUE();
            if (strcmp(val, "f32") == 0 || strcmp(val, "float32") == 0)
                o.dtype = DT_F32;
            else if (strcmp(val, "u8") == 0 || strcmp(val, "uint8") == 0)
                o.dtype = DT_U8;
            else
                return bad_usage("--dtype: '%s' is not f32 or u8", val);
        } else if (strcmp(a, "-") == 0 || a[0] != '-') {
            if (val)
                return bad_usage("unknown option '%s'", argv[i]);
            if (o.out)
                return bad_usage("more than one output: '%s'", a);
            o.out = a;
        } else if (strcmp(a, "--") == 0) {
            if (i + 1 < argc && !o.out)
                o.out = argv[++i];
            if (i + 1 < argc)
                return bad_usage("more than one output: '%s'", argv[i + 1]);
        } else {
            return bad_usage("unknown option '%s'", argv[i]);
        }
#undef NEED_VALUE
    }
    if (!have_rows)
        return bad_usage("%s", "--rows is required");
    if (!have_dim)
        return bad_usage("%s", "--dim is required");
    if (!o.out)
        return bad_usage("%s", "no output given (a path or '-')");
    if (o.clusters * o.dim > SIZE_MAX / sizeof(double))
        return bad_usage("%s", "--clusters x --dim is too large");

    bool to_stdout = strcmp(o.out, "-") == 0;
    if (!to_stdout) {
        int ext = ends_with(o.out, ".fbin") ? DT_F32 : ends_with(o.out, ".u8bin") ? DT_U8 : -1;
        if (ext >= 0 && o.dtype >= 0 && ext != o.dtype)
            return bad_usage("'%s': --dtype does not match the file extension", o.out);
        if (ext >= 0)
            o.dtype = ext;
        else if (o.dtype < 0)
            return bad_usage("'%s': unknown extension (use .fbin or .u8bin, or give --dtype)", o.out);
    }
    if (o.dtype < 0)
        o.dtype = DT_F32;

    if (to_stdout) {
        if (isatty(STDOUT_FILENO)) {
            fprintf(stderr, PROG ": refusing to write binary data to a terminal\n");
            return 2;
        }
        int rc = generate(&o, stdout, "-");
        if (fflush(stdout) != 0 && rc == 0) {
            fprintf(stderr, PROG ": '-': write failed: %s\n", strerror(errno));
            rc = 1;
        }
        return rc;
    }

    struct stat st;
    if (!o.force && stat(o.out, &st) == 0) {
        fprintf(stderr, PROG ": '%s': exists (use -f to overwrite)\n", o.out);
        return 1;
    }

    /* temporary in the target directory, renamed into place on success */
    size_t n = strlen(o.out);
    char *tmp = malloc(n + 16);
    if (!tmp) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    memcpy(tmp, o.out, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, PROG ": '%s': cannot create a temporary file: %s\n", o.out, strerror(errno));
        free(tmp);
        return 1;
    }
    g_tmp_path = tmp;
    fchmod(fd, 0644);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        fprintf(stderr, PROG ": '%s': %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return 1;
    }
    static char iobuf[1 << 20];
    setvbuf(fp, iobuf, _IOFBF, sizeof iobuf);
    int rc = generate(&o, fp, o.out);
    if (fclose(fp) != 0 && rc == 0) {
        fprintf(stderr, PROG ": '%s': write failed: %s\n", o.out, strerror(errno));
        rc = 1;
    }
    if (rc == 0 && rename(tmp, o.out) != 0) {
        fprintf(stderr, PROG ": '%s': cannot rename the temporary into place: %s\n", o.out, strerror(errno));
        rc = 1;
    }
    if (rc != 0)
        unlink(tmp);
    g_tmp_path = NULL;
    free(tmp);
    return rc;
}

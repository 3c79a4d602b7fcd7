/*
 * testfs.h - what the file-format tests (test_container, test_vectors)
 * share: a CHECK that counts checks and failures, status expectations
 * that also require the error message to name the file, a private
 * temporary directory with paths in it, and whole-file read and write.
 * Header-only; include it first (it defines _GNU_SOURCE for nftw).
 */
#ifndef ANN_TESTFS_H
#define ANN_TESTFS_H

#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ann/core.h"

static int failures;
static int checks;
static char tmpdir[512];

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
        }                                                                     \
    } while (0)

/* Expect status @p want from @p got; for failures, the message must name @p path (when not NULL). */
static void expect_status(ann_status got, ann_status want, const char *path, const char *file, int line)
{
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "%s:%d: FAILED: status %d (%s), expected %d (%s); error: %s\n", file, line, (int)got,
                ann_status_str(got), (int)want, ann_status_str(want), ann_last_error());
    } else if (want != ANN_OK && path && !strstr(ann_last_error(), path)) {
        failures++;
        fprintf(stderr, "%s:%d: FAILED: error does not name '%s': %s\n", file, line, path, ann_last_error());
    } else if (want != ANN_OK && getenv("ANN_TEST_VERBOSE")) {
        fprintf(stderr, "%s:%d: ok: %s\n", file, line, ann_last_error());
    }
}

#define EXPECT(got, want, path) expect_status((got), (want), (path), __FILE__, __LINE__)
#define EXPECT_MSG(substr) \
    CHECK(strstr(ann_last_error(), (substr)) != NULL, "error lacks '%s': %s", (substr), ann_last_error())

/* Make the test directory $TMPDIR/annkit-NAME-XXXXXX (default /tmp); 0 on success. */
static int test_dir_make(const char *name)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/annkit-%s-XXXXXX", t && *t ? t : "/tmp", name);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Remove the test directory (kept when ANN_TEST_KEEP is set), print the counts, return main's status. */
static int test_dir_finish(const char *name)
{
    if (!getenv("ANN_TEST_KEEP"))
        nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "kept %s\n", tmpdir);
    fprintf(stderr, "%s: %d checks, %d failed\n", name, checks, failures);
    return failures ? 1 : 0;
}

/* A path in the test directory (static rotating buffers, so several can be live at once). */
static const char *tp(const char *name)
{
    static char bufs[8][700];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

/* Write len bytes to path (a message on failure; the check that reads it back fails). */
static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, len, f) != len)
        fprintf(stderr, "cannot write %s\n", path);
    if (f)
        fclose(f);
}

/* The whole file, NUL-terminated (not counted in *len); NULL when unreadable. free() it. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        b[n > 0 ? n : 0] = 0;
    *len = (size_t)n;
    return b;
}

#endif

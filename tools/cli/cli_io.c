/*
 * cli_io.c - safe output files and the signal handler that cleans up.
 *
 * An output is written to a temporary file in the directory of its final
 * path and renamed over it only when complete, so a failed or interrupted
 * run never leaves a half-written file under the name a Makefile checks.
 * The temporaries in flight are registered in a fixed table that the
 * SIGINT/SIGTERM/SIGHUP/SIGPIPE handler walks with unlink(), which is
 * async-signal-safe; the handler then dies of the same signal, so that
 * the parent sees the usual status (130 for SIGINT).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TEMPS 8

static char g_temps[MAX_TEMPS][PATH_MAX];
static volatile sig_atomic_t g_temp_used[MAX_TEMPS];
static volatile int g_interrupt;
static mode_t g_umask = 022;

static void on_signal(int sig)
{
    g_interrupt = 1;
    for (int i = 0; i < MAX_TEMPS; i++)
        if (g_temp_used[i])
            unlink(g_temps[i]);
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns: die of the signal */
}

void cli_io_init(void)
{
    g_umask = umask(0);
    umask(g_umask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t j = 0; j < sizeof sigs / sizeof sigs[0]; j++)
            sigaddset(&sa.sa_mask, sigs[j]);
        /* A signal ignored by the parent (nohup, a background job of a
         * non-interactive shell) stays ignored, as in gzip. */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

volatile int *cli_interrupt_flag(void)
{
    return &g_interrupt;
}

static int register_temp(const char *path)
{
    for (int i = 0; i < MAX_TEMPS; i++) {
        if (!g_temp_used[i]) {
            snprintf(g_temps[i], sizeof g_temps[i], "%s", path);
            g_temp_used[i] = 1; /* set after the path is complete */
            return i;
        }
    }
    return -1;
}

static void unregister_temp(int slot)
{
    if (slot >= 0 && slot < MAX_TEMPS)
        g_temp_used[slot] = 0;
}

/* ------------------------------------------------------------------ */
/* Formats                                                             */
/* ------------------------------------------------------------------ */

bool cli_format_is_text(ann_vformat f)
{
    return f == ANN_VFMT_TEXT;
}

bool cli_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_output_format(const char *path, ann_vformat forced, ann_vformat *fmt, int *dtype)
{
    *dtype = -1;
    if (strcmp(path, "-") == 0) {
        *fmt = forced == ANN_VFMT_AUTO ? ANN_VFMT_TEXT : forced;
        return 0;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    const char *ext = (dot != NULL && dot != base) ? dot + 1 : "";
    if (forced != ANN_VFMT_AUTO) {
        *fmt = forced;
    } else if (strcmp(ext, "csv") == 0) {
        *fmt = ANN_VFMT_TEXT;
    } else if (ext[0] == '\0' || ann_vformat_parse(ext, fmt) != ANN_OK || *fmt == ANN_VFMT_AUTO) {
        return cli_usage_error("'%s': cannot tell the output format from the name "
                               "(use .fbin, .fvecs, .ivecs, .bvecs, .npy, .hdf5, .txt, ...)",
                               path);
    }
    switch (*fmt) {
    case ANN_VFMT_FVECS:
        *dtype = ANN_DTYPE_F32;
        break;
    case ANN_VFMT_IVECS:
        *dtype = ANN_DTYPE_I32;
        break;
    case ANN_VFMT_BVECS:
        *dtype = ANN_DTYPE_U8;
        break;
    case ANN_VFMT_FBIN:
        if (strcmp(ext, "ibin") == 0)
            *dtype = ANN_DTYPE_I32;
        else if (strcmp(ext, "u8bin") == 0)
            *dtype = ANN_DTYPE_U8;
        else if (strcmp(ext, "i8bin") == 0)
            *dtype = ANN_DTYPE_I8;
        else if (strcmp(ext, "f16bin") == 0)
            *dtype = ANN_DTYPE_F16;
        else if (strcmp(ext, "fbin") == 0)
            *dtype = ANN_DTYPE_F32;
        break;
    default:
        break;
    }
    return 0;
}

int cli_split_spec(const char *spec, char *path, char *name)
{
    if (ann_spec_split(spec, path, PATH_MAX, name, PATH_MAX) != ANN_OK)
        return cli_usage_error("'%s': name too long", spec);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Safe output                                                         */
/* ------------------------------------------------------------------ */

/* Copy the bytes of @p from into the open descriptor @p fd. */
static int copy_into(const char *from, int fd)
{
    int in = open(from, O_RDONLY);
    if (in < 0)
        return -1;
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -1;
                goto out;
            }
            off += w;
        }
    }
out:
    close(in);
    return rc;
}

int cli_output_open(cli_output *o, const char *path, const cli_output_opts *opts)
{
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path) {
        cli_error("'%s': path too long", path);
        return CLI_EXIT_FAILURE;
    }
    if (strcmp(path, "-") == 0) {
        if (opts->binary)
            return cli_usage_error("refusing to write binary data to stdout; give a file name");
        o->open = true;
        return 0;
    }

    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        cli_error("'%s': is a directory", path);
        return CLI_EXIT_FAILURE;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        /* A device or FIFO (/dev/null, a named pipe): write in place. */
        if (opts->binary && S_ISCHR(st.st_mode)) {
            int fd = open(path, O_WRONLY | O_NOCTTY);
            bool tty = fd >= 0 && isatty(fd);
            if (fd >= 0)
                close(fd);
            if (tty)
                return cli_usage_error("'%s': refusing to write binary data to a terminal", path);
        }
        o->open = true;
        return 0;
    }
    if (exists && !opts->force && !opts->keep_existing) {
        cli_error("'%s': file exists; use -f to overwrite it", path);
        return CLI_EXIT_FAILURE;
    }

    /* ".NAME.tmp.XXXXXX.EXT" next to NAME: same file system, so rename()
     * is atomic; EXT keeps the extension that names the format. */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    const char *dot = strrchr(base, '.');
    const char *ext = (dot != NULL && dot != base) ? dot : "";
    if (base[0] == '\0') {
        cli_error("'%s': not a file name", path);
        return CLI_EXIT_FAILURE;
    }
    int n = snprintf(o->tmp, sizeof o->tmp, "%.*s.%s.tmp.XXXXXX%s", dir_len, path, base, ext);
    if (n < 0 || n >= (int)sizeof o->tmp) {
        o->tmp[0] = '\0';
        cli_error("'%s': path too long", path);
        return CLI_EXIT_FAILURE;
    }
    int fd = mkstemps(o->tmp, (int)strlen(ext));
    if (fd < 0) {
        int e = errno;
        cli_error("'%s': cannot create a temporary file in '%.*s': %s", path, dir_len ? dir_len : 1,
                  dir_len ? path : ".", strerror(e));
        o->tmp[0] = '\0';
        return CLI_EXIT_FAILURE;
    }
    o->slot = register_temp(o->tmp);
    o->open = true;
    mode_t mode = exists ? (st.st_mode & 07777) : (0666 & ~g_umask);
    int rc = 0;
    if (fchmod(fd, mode) != 0) {
        /* not fatal: the file keeps mkstemp's 0600 */
    }
    if (exists && opts->keep_existing && copy_into(path, fd) != 0) {
        cli_error("'%s': cannot copy into '%s': %s", path, o->tmp, strerror(errno));
        rc = CLI_EXIT_FAILURE;
    }
    if (close(fd) != 0 && rc == 0) {
        cli_error("'%s': %s", o->tmp, strerror(errno));
        rc = CLI_EXIT_FAILURE;
    }
    if (rc != 0)
        cli_output_discard(o);
    return rc;
}

const char *cli_output_target(const cli_output *o)
{
    if (strcmp(o->path, "-") == 0)
        return "-";
    return o->tmp[0] ? o->tmp : o->path;
}

int cli_output_commit(cli_output *o)
{
    if (!o->open)
        return 0;
    if (strcmp(o->path, "-") == 0) {
        o->open = false;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            cli_error("error writing to stdout: %s", strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        return 0;
    }
    if (o->tmp[0] == '\0') {
        o->open = false;
        return 0;
    }
    int fd = open(o->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        cli_error("'%s': %s", o->tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        cli_output_discard(o);
        return CLI_EXIT_FAILURE;
    }
    close(fd);
    if (rename(o->tmp, o->path) != 0) {
        cli_error("cannot rename '%s' to '%s': %s", o->tmp, o->path, strerror(errno));
        cli_output_discard(o);
        return CLI_EXIT_FAILURE;
    }
    /* Unregister only after the rename: a signal in between unlinks a
     * name that no longer exists, which is harmless. */
    unregister_temp(o->slot);
    o->slot = -1;
    o->tmp[0] = '\0';
    o->open = false;
    return 0;
}

void cli_output_discard(cli_output *o)
{
    if (o == NULL || !o->open)
        return;
    if (o->tmp[0] != '\0')
        unlink(o->tmp);
    unregister_temp(o->slot);
    o->slot = -1;
    o->tmp[0] = '\0';
    o->open = false;
}

/* ------------------------------------------------------------------ */
/* Lossless dtype conversion                                           */
/* ------------------------------------------------------------------ */

static bool same_value(ann_dtype t, const unsigned char *a, const unsigned char *b)
{
    size_t sz = ann_dtype_size(t);
    if (memcmp(a, b, sz) == 0)
        return true;
    /* +0 and -0 compare equal; two NaNs count as the same value. */
    if (t == ANN_DTYPE_F32) {
        float x, y;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        return x == y || (x != x && y != y);
    }
    if (t == ANN_DTYPE_F64) {
        double x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        return x == y || (x != x && y != y);
    }
    if (t == ANN_DTYPE_F16) {
        uint16_t x, y;
        memcpy(&x, a, 2);
        memcpy(&y, b, 2);
        float fx = ann_f16_to_f32(x), fy = ann_f16_to_f32(y);
        return fx == fy || (fx != fx && fy != fy);
    }
    return false;
}

int cli_convert_lossless(ann_matrix *m, ann_dtype to, const char *what)
{
    if (m->dtype == to)
        return 0;
    ann_matrix conv, back;
    memset(&conv, 0, sizeof conv);
    memset(&back, 0, sizeof back);
    int rc = 0;
    ann_status s = ann_matrix_convert(m, to, &conv);
    if (s == ANN_OK)
        s = ann_matrix_convert(&conv, m->dtype, &back);
    if (s != ANN_OK) {
        rc = cli_report(s, what);
        goto done;
    }
    size_t esz = ann_dtype_size(m->dtype);
    for (int64_t i = 0; i < m->rows && rc == 0; i++) {
        const unsigned char *a = ann_matrix_row(m, i);
        const unsigned char *b = ann_matrix_row(&back, i);
        for (int64_t j = 0; j < m->cols; j++) {
            if (!same_value(m->dtype, a + (size_t)j * esz, b + (size_t)j * esz)) {
                cli_error("'%s': holds only %s, and converting these %s values (row %lld) "
                          "would change them; convert them explicitly with annconvert --dtype %s",
                          what, ann_dtype_name(to), ann_dtype_name(m->dtype), (long long)i,
                          ann_dtype_name(to));
                rc = CLI_EXIT_FAILURE;
                break;
            }
        }
    }
    if (rc == 0) {
        ann_matrix_release(m);
        *m = conv;
        memset(&conv, 0, sizeof conv);
    }
done:
    ann_matrix_release(&conv);
    ann_matrix_release(&back);
    return rc;
}

/*
 * vec_io.c - byte-level input and output shared by the vector-file
 * readers and writers (formats/vec_*.c): whole-file mapping or slurping,
 * buffered checked output, row-range resolution, byte swapping.
 *
 * Inputs are mapped MAP_PRIVATE | MAP_NORESERVE with PROT_READ |
 * PROT_WRITE: a matrix that adopts the mapping is writable copy-on-write
 * (the file never changes), and the kernel reserves no swap for it, so a
 * file larger than RAM + swap can still be mapped and sliced.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "matrix_owner.h"
#include "vec_internal.h"

#define OUT_BUFFER (1u << 20)

/* Read all of @p fd into a heap buffer (for pipes, stdin, unmappable files). */
static ann_status slurp(annv_in *in, int fd, uint64_t hint)
{
    size_t cap = hint > 0 && hint < SIZE_MAX / 2 ? (size_t)hint + 1 : (size_t)1 << 20;
    size_t len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return ann_set_error(ANN_ERR_NOMEM, "'%s': cannot allocate %zu bytes", in->path, cap);
    for (;;) {
        if (len == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                return ann_set_error(ANN_ERR_NOMEM, "'%s': input too large", in->path);
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return ann_set_error(ANN_ERR_NOMEM, "'%s': cannot allocate %zu bytes", in->path, cap * 2);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return ann_set_error(ANN_ERR_IO, "'%s': read failed: %s", in->path, strerror(e));
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    in->heap = buf;
    in->data = buf;
    in->size = len;
    return ANN_OK;
}

/**
 * Open @p path ("-" = stdin, read to EOF) as one byte range in @p in.
 * Regular files are mapped (see the file comment); others are read into
 * the heap.  Errors: ANN_ERR_IO ("'PATH': cannot open: ..."), ANN_ERR_NOMEM.
 */
ann_status annv_in_open(annv_in *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    if (strcmp(path, "-") == 0)
        return slurp(in, STDIN_FILENO, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    ann_status st = ANN_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot stat: %s", path, strerror(errno));
        goto cleanup;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = ann_set_error(ANN_ERR_IO, "'%s': is a directory", path);
        goto cleanup;
    }
    if (S_ISREG(sb.st_mode) && sb.st_size > 0 && (uint64_t)sb.st_size <= SIZE_MAX) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
        if (p != MAP_FAILED) {
            in->map = p;
            in->map_len = (size_t)sb.st_size;
            in->data = p;
            in->size = (uint64_t)sb.st_size;
            goto cleanup;
        }
    }
    st = slurp(in, fd, S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0);
cleanup:
    close(fd);
    return st;
}

/** Unmap or free what @p in owns. */
void annv_in_close(annv_in *in)
{
    if (in->map)
        munmap(in->map, in->map_len);
    free(in->heap);
    in->map = NULL;
    in->heap = NULL;
    in->data = NULL;
}

/**
 * Hand the mapping or heap buffer of @p in to @p m (ann_matrix_adopt_mmap
 * or _heap), so that ann_matrix_release(m) unmaps or frees it.
 * Errors: ANN_ERR_NOMEM (then @p in still owns it), ANN_ERR_INTERNAL.
 */
ann_status annv_in_give(annv_in *in, ann_matrix *m)
{
    ann_status st;
    if (in->map) {
        st = ann_matrix_adopt_mmap(m, in->map, in->map_len);
        if (st == ANN_OK)
            in->map = NULL;
    } else if (in->heap) {
        st = ann_matrix_adopt_heap(m, in->heap);
        if (st == ANN_OK)
            in->heap = NULL;
    } else {
        st = ann_set_error(ANN_ERR_INTERNAL, "'%s': no storage to hand over", in->path);
    }
    return st;
}

/**
 * Make @p out a rows x cols matrix of @p dt over the bytes at @p p inside
 * @p in: adopted without a copy when @p p is aligned for the element type,
 * else (or when empty) copied to a new heap matrix.  Errors: ANN_ERR_NOMEM.
 */
ann_status annv_in_matrix(annv_in *in, const unsigned char *p, int64_t rows, int64_t cols, ann_dtype dt,
                          ann_matrix *out)
{
    const size_t es = ann_dtype_size(dt);
    const size_t bytes = (size_t)rows * (size_t)cols * es;
    memset(out, 0, sizeof *out);
    if (bytes > 0 && ((uintptr_t)p % es) == 0) {
        *out = ann_matrix_view((void *)p, rows, cols, dt);
        ann_status st = annv_in_give(in, out);
        if (st != ANN_OK)
            memset(out, 0, sizeof *out);
        return st;
    }
    ann_status st = ann_matrix_alloc(out, rows, cols, dt);
    if (st != ANN_OK)
        return st;
    if (bytes > 0)
        memcpy(out->data, p, bytes);
    return ANN_OK;
}

/** Open @p path for writing ("-" = stdout) with a 1 MiB buffer. */
ann_status annv_out_open(annv_out *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->fp = stdout;
        o->is_stdout = true;
        return ANN_OK;
    }
    o->fp = fopen(path, "wb");
    if (!o->fp)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot create: %s", path, strerror(errno));
    o->buf = malloc(OUT_BUFFER);
    if (o->buf)
        setvbuf(o->fp, o->buf, _IOFBF, OUT_BUFFER);
    return ANN_OK;
}

/** Write @p n bytes at @p p to @p o. */
ann_status annv_out_write(annv_out *o, const void *p, size_t n)
{
    if (n > 0 && fwrite(p, 1, n, o->fp) != n)
        return ann_set_error(ANN_ERR_IO, "'%s': write failed: %s", o->path, strerror(errno ? errno : EIO));
    return ANN_OK;
}

/** Write the rows of @p m back to back, one fwrite when they are contiguous. */
ann_status annv_out_rows(annv_out *o, const ann_matrix *m)
{
    const size_t rb = (size_t)m->cols * ann_dtype_size(m->dtype);
    if (m->rows == 0 || rb == 0)
        return ANN_OK;
    if ((size_t)m->stride == rb)
        return annv_out_write(o, m->data, rb * (size_t)m->rows);
    for (int64_t i = 0; i < m->rows; i++) {
        ann_status st = annv_out_write(o, ann_matrix_row(m, i), rb);
        if (st != ANN_OK)
            return st;
    }
    return ANN_OK;
}

/**
 * Flush @p o, fsync it when it is a regular file, and close it (stdout is
 * only flushed).  A regular file that failed is removed.  Errors:
 * ANN_ERR_IO with the path and errno text.
 */
ann_status annv_out_close(annv_out *o)
{
    ann_status st = ANN_OK;
    errno = 0;
    if (fflush(o->fp) != 0 || ferror(o->fp))
        st = ann_set_error(ANN_ERR_IO, "'%s': write failed: %s", o->path, strerror(errno ? errno : EIO));
    if (!o->is_stdout) {
        struct stat sb;
        int fd = fileno(o->fp);
        if (st == ANN_OK && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fsync(fd) != 0)
            st = ann_set_error(ANN_ERR_IO, "'%s': fsync failed: %s", o->path, strerror(errno));
        if (fclose(o->fp) != 0 && st == ANN_OK)
            st = ann_set_error(ANN_ERR_IO, "'%s': close failed: %s", o->path, strerror(errno));
        if (st != ANN_OK && stat(o->path, &sb) == 0 && S_ISREG(sb.st_mode))
            unlink(o->path);
    }
    free(o->buf);
    memset(o, 0, sizeof *o);
    return st;
}

/** Close @p o after a failure; a regular output file is removed. */
void annv_out_abort(annv_out *o)
{
    if (!o->fp)
        return;
    if (o->is_stdout) {
        fflush(o->fp);
    } else {
        struct stat sb;
        bool reg = fstat(fileno(o->fp), &sb) == 0 && S_ISREG(sb.st_mode);
        fclose(o->fp);
        if (reg)
            unlink(o->path);
    }
    free(o->buf);
    memset(o, 0, sizeof *o);
}

/**
 * Resolve rows [o->row_begin, o->row_end) (row_end -1 = to the end) of a
 * file of @p total rows into [*begin, *end).  Errors: ANN_ERR_INVALID_ARG
 * "'PATH': invalid row range B:E" or "'PATH': rows B:E are outside the
 * file (N rows)".
 */
ann_status annv_resolve_rows(const char *path, const ann_read_opts *o, int64_t total, int64_t *begin,
                             int64_t *end)
{
    const int64_t b = o->row_begin, e = o->row_end < 0 ? total : o->row_end;
    char range[64];
    if (o->row_end < 0)
        snprintf(range, sizeof range, "%lld:end", (long long)b);
    else
        snprintf(range, sizeof range, "%lld:%lld", (long long)b, (long long)o->row_end);
    if (b < 0 || o->row_end < -1 || (o->row_end >= 0 && b > o->row_end))
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': invalid row range %s", path, range);
    if (b > e || e > total)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': rows %s are outside the file (%lld rows)", path, range,
                             (long long)total);
    *begin = b;
    *end = e;
    return ANN_OK;
}

/** rows x cols x esize bytes into @p bytes; false on negative input or a product above INT64_MAX. */
bool annv_bytes(int64_t rows, int64_t cols, size_t esize, uint64_t *bytes)
{
    uint64_t a;
    if (rows < 0 || cols < 0)
        return false;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)cols, &a) ||
        __builtin_mul_overflow(a, (uint64_t)esize, &a) || a > (uint64_t)INT64_MAX)
        return false;
    *bytes = a;
    return true;
}

/** Reverse the byte order of @p n elements of @p esize (2, 4 or 8) bytes at @p data, in place. */
void annv_bswap(void *data, size_t n, size_t esize)
{
    unsigned char *p = data;
    if (esize == 2) {
        for (size_t i = 0; i < n; i++, p += 2) {
            uint16_t v;
            memcpy(&v, p, 2);
            v = __builtin_bswap16(v);
            memcpy(p, &v, 2);
        }
    } else if (esize == 4) {
        for (size_t i = 0; i < n; i++, p += 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = __builtin_bswap32(v);
            memcpy(p, &v, 4);
        }
    } else if (esize == 8) {
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            v = __builtin_bswap64(v);
            memcpy(p, &v, 8);
        }
    }
}

/**
 * Checks every writer makes on @p m: in host memory, a known dtype,
 * non-negative shape, a stride of at least one row, data when non-empty.
 * Errors: ANN_ERR_INVALID_ARG naming @p path.
 */
ann_status annv_check_matrix(const char *path, const ann_matrix *m)
{
    if (!m || m->loc != ANN_LOC_HOST)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': the matrix to write is not in host memory", path);
    const size_t es = ann_dtype_size(m->dtype);
    if (es == 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': the matrix has an unknown dtype %d", path, (int)m->dtype);
    uint64_t rb;
    if (m->rows < 0 || m->cols < 0 || !annv_bytes(1, m->cols, es, &rb) || (m->rows > 1 && m->stride < (int64_t)rb) ||
        (m->rows > 0 && m->cols > 0 && !m->data))
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': bad matrix shape %lld x %lld (stride %lld bytes)", path,
                             (long long)m->rows, (long long)m->cols, (long long)m->stride);
    return ANN_OK;
}

/** Lower-case extension of the last component of @p path, without the dot, into @p buf ("" when none). */
void annv_extension(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t i = 0;
    if (dot && dot != base && len > 0) {
        for (const char *p = dot + 1; *p && i + 1 < len; p++)
            buf[i++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
    }
    if (len > 0)
        buf[i] = '\0';
}

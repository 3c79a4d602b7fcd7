/*
 * vec_text.c - plain-text vectors: one row per line, numbers separated by
 * spaces, tabs or commas (so TSV, CSV and whitespace-aligned columns all
 * read).  Our own convention, documented in formats/vectors.md "text":
 * lines that are empty or whose first non-blank character is '#' are
 * skipped, a '#' after a number starts a trailing comment, a UTF-8 byte
 * order mark at the start is ignored, and every row must have the same
 * number of values (a ragged row is an error naming its line).  Values
 * are parsed with strtof (so "nan", "inf" and hex floats work) and the
 * result is F32.
 *
 * Writing produces TSV: tab-separated, '\n' after each row, floats with
 * "%.Ng" (N significant digits, 9 by default, which round-trips every
 * float32) and integers printed as integers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vec_internal.h"

/* Values collected so far. */
typedef struct text_acc {
    float *v;
    size_t n, cap;
} text_acc;

static bool acc_push(text_acc *a, float x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 4096;
        float *nv = realloc(a->v, cap * sizeof *nv);
        if (!nv)
            return false;
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Parse the values of one data line into @p acc (when @p keep) and count
 * them in @p count.  Returns ANN_ERR_FORMAT with the message on bad input.
 */
static ann_status parse_line(const char *path, long line_no, char *s, bool keep, text_acc *acc, int64_t *count)
{
    int64_t k = 0;
    char *p = s;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0' || *p == '#')
            break;
        char *end;
        errno = 0;
        const float x = strtof(p, &end);
        if (end == p) {
            size_t len = strcspn(p, " \t,\r");
            return ann_set_error(ANN_ERR_FORMAT, "'%s': line %ld: '%.*s' is not a number", path, line_no,
                                 (int)(len > 40 ? 40 : len), p);
        }
        if (*end != '\0' && *end != ',' && *end != '#' && !is_blank(*end)) {
            size_t len = strcspn(p, " \t,\r");
            return ann_set_error(ANN_ERR_FORMAT, "'%s': line %ld: '%.*s' is not a number", path, line_no,
                                 (int)(len > 40 ? 40 : len), p);
        }
        if (keep && !acc_push(acc, x))
            return ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory at line %ld", path, line_no);
        k++;
        p = end;
        while (is_blank(*p))
            p++;
        if (*p == ',') {
            p++;
            while (is_blank(*p))
                p++;
            if (*p == ',')
                return ann_set_error(ANN_ERR_FORMAT, "'%s': line %ld: empty field after value %lld", path, line_no,
                                     (long long)k);
        }
    }
    *count = k;
    return ANN_OK;
}

/*
 * Read the text file @p path: rows [o->row_begin, o->row_end) are kept in
 * @p acc when @p acc is not NULL; @p rows_out gets the number of data rows
 * seen (all of them, or o->row_end when reading stopped there) and
 * @p cols_out the number of values per row.
 */
static ann_status text_scan(const char *path, const ann_read_opts *o, text_acc *acc, int64_t *rows_out,
                            int64_t *cols_out)
{
    const bool is_stdin = strcmp(path, "-") == 0;
    FILE *fp = is_stdin ? stdin : fopen(path, "r");
    if (!fp)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    ann_status st = ANN_OK;
    char *line = NULL;
    size_t cap = 0;
    long line_no = 0;
    int64_t rows = 0;
    int64_t cols = o->text_cols > 0 ? o->text_cols : -1;
    for (;;) {
        errno = 0;
        const ssize_t len = getline(&line, &cap, fp);
        if (len < 0) {
            if (ferror(fp))
                st = ann_set_error(ANN_ERR_IO, "'%s': read failed: %s", path, strerror(errno ? errno : EIO));
            break;
        }
        line_no++;
        if ((size_t)len != strlen(line)) {
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': line %ld contains a NUL byte (not a text file?)", path, line_no);
            break;
        }
        char *s = line;
        if (line_no == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
            (unsigned char)s[2] == 0xBF)
            s += 3;
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        while (is_blank(*s))
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        if (o->row_end >= 0 && rows >= o->row_end)
            break;   /* the requested rows are complete; the rest is not read */
        const bool keep = acc && rows >= o->row_begin;
        int64_t k = 0;
        st = parse_line(path, line_no, s, keep, acc, &k);
        if (st != ANN_OK)
            break;
        if (cols < 0)
            cols = k;
        if (k != cols) {
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': line %ld has %lld values, expected %lld%s", path, line_no,
                               (long long)k, (long long)cols,
                               o->text_cols > 0 ? "" : " (as in the first row)");
            break;
        }
        rows++;
    }
    free(line);
    if (!is_stdin)
        fclose(fp);
    *rows_out = rows;
    *cols_out = cols < 0 ? 0 : cols;
    return st;
}

/**
 * Read rows o->row_begin..o->row_end of text file @p path ("-" = stdin)
 * into a new F32 heap matrix @p out.  o->text_cols > 0 fixes the
 * expected number of values per row, else the first data row sets it.
 * With an explicit o->row_end, reading stops after that row.
 * Errors: ANN_ERR_IO, ANN_ERR_FORMAT ("'x.txt': line 5 has 3 values,
 * expected 4", non-numbers), ANN_ERR_INVALID_ARG (row range),
 * ANN_ERR_NOMEM.  Not thread-safe for "-" (stdin).
 */
ann_status annv_text_read(const char *path, const ann_read_opts *o, ann_matrix *out)
{
    text_acc acc = {0};
    int64_t rows = 0, cols = 0, b = 0, e = 0;
    /* reject an inverted or negative range before reading (the row count does not matter for it) */
    if (o->row_begin < 0 || o->row_end < -1 || (o->row_end >= 0 && o->row_begin > o->row_end))
        return annv_resolve_rows(path, o, INT64_MAX, &b, &e);
    ann_status st = text_scan(path, o, &acc, &rows, &cols);
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, rows, &b, &e);
    if (st == ANN_OK)
        st = ann_matrix_alloc(out, e - b, cols, ANN_DTYPE_F32);
    if (st == ANN_OK && acc.n > 0)
        memcpy(out->data, acc.v, (size_t)(e - b) * (size_t)cols * sizeof(float));
    free(acc.v);
    return st;
}

/** Count the rows and columns of text file @p path (reads all of it).  Errors as annv_text_read(). */
ann_status annv_text_probe(const char *path, const ann_read_opts *o, ann_vectors_info *info)
{
    int64_t rows = 0, cols = 0;
    ann_status st = text_scan(path, o, NULL, &rows, &cols);
    if (st == ANN_OK) {
        info->dtype = ANN_DTYPE_F32;
        info->rows = rows;
        info->cols = cols;
    }
    return st;
}

/* Append element j of row r (dtype t) to buf; returns the length written. */
static int format_elem(char *buf, size_t len, const void *r, int64_t j, ann_dtype t, int prec)
{
    switch (t) {
    case ANN_DTYPE_F32: return snprintf(buf, len, "%.*g", prec, (double)((const float *)r)[j]);
    case ANN_DTYPE_F16: return snprintf(buf, len, "%.*g", prec, (double)ann_f16_to_f32(((const uint16_t *)r)[j]));
    case ANN_DTYPE_F64: return snprintf(buf, len, "%.*g", prec, ((const double *)r)[j]);
    case ANN_DTYPE_I8: return snprintf(buf, len, "%d", (int)((const int8_t *)r)[j]);
    case ANN_DTYPE_U8: return snprintf(buf, len, "%u", (unsigned)((const uint8_t *)r)[j]);
    case ANN_DTYPE_I32: return snprintf(buf, len, "%ld", (long)((const int32_t *)r)[j]);
    case ANN_DTYPE_U32: return snprintf(buf, len, "%lu", (unsigned long)((const uint32_t *)r)[j]);
    case ANN_DTYPE_I64: return snprintf(buf, len, "%lld", (long long)((const int64_t *)r)[j]);
    }
    return 0;
}

/**
 * Write @p m (any dtype) as TSV to @p path ("-" = stdout): values of a
 * row separated by tabs, each row ended by '\n'; floats with
 * o->text_precision significant digits (9 when <= 0), integers exactly.
 * Errors: ANN_ERR_IO, ANN_ERR_INVALID_ARG.
 */
ann_status annv_text_write(const char *path, const ann_matrix *m, const ann_write_opts *o)
{
    ann_status st = annv_check_matrix(path, m);
    if (st != ANN_OK)
        return st;
    int prec = o && o->text_precision > 0 ? o->text_precision : 9;
    if (prec > 40)
        prec = 40;
    annv_out out;
    st = annv_out_open(&out, path);
    if (st != ANN_OK)
        return st;
    char buf[4096];
    for (int64_t i = 0; i < m->rows && st == ANN_OK; i++) {
        const void *r = ann_matrix_row(m, i);
        size_t n = 0;
        for (int64_t j = 0; j < m->cols && st == ANN_OK; j++) {
            if (n > sizeof buf - 128) {
                st = annv_out_write(&out, buf, n);
                n = 0;
            }
            if (j > 0)
                buf[n++] = '\t';
            n += (size_t)format_elem(buf + n, sizeof buf - n, r, j, m->dtype, prec);
        }
        buf[n++] = '\n';
        if (st == ANN_OK)
            st = annv_out_write(&out, buf, n);
    }
    if (st != ANN_OK) {
        annv_out_abort(&out);
        return st;
    }
    return annv_out_close(&out);
}

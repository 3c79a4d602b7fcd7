/*
 * vec_internal.h - INTERNAL: what the vector-file readers and writers in
 * formats/vec_*.c share with the dispatcher (formats/vectors.c).
 *
 * Conventions: every function returns an ann_status and, on failure, sets
 * ann_set_error() text of the form "'PATH': problem".  Readers fill an
 * owned ann_matrix (heap via ann_matrix_alloc() or a file mapping adopted
 * with ann_matrix_adopt_mmap()); on failure *out is left zeroed.
 * Row ranges arrive already validated against nothing: each reader
 * resolves them with annv_resolve_rows() once it knows the row count.
 */
#ifndef ANN_VEC_INTERNAL_H
#define ANN_VEC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ann/vectors.h"

/* ------------------------------ input ------------------------------- */

/**
 * The whole content of an input file as bytes: a private writable
 * mapping of a regular file (MAP_PRIVATE | MAP_NORESERVE, so writes never
 * reach the file and reserve no swap), or, for stdin, pipes and files
 * that cannot be mapped, a heap copy read to EOF.
 */
typedef struct annv_in {
    const char *path;     /* for messages */
    unsigned char *data;  /* first byte of the file (NULL when size is 0) */
    uint64_t size;        /* file size in bytes */
    void *map;            /* mapping base or NULL */
    size_t map_len;
    void *heap;           /* heap copy or NULL */
} annv_in;

/** Open @p path ("-" = stdin) as bytes.  Errors: ANN_ERR_IO, ANN_ERR_NOMEM. */
ann_status annv_in_open(annv_in *in, const char *path);

/** Release what @p in still owns (NULL-safe on a zeroed struct). */
void annv_in_close(annv_in *in);

/**
 * Make @p m (already filled with data pointer, shape, stride, dtype) own
 * the input's storage, so the matrix points into the file bytes with no
 * copy.  @p in owns nothing afterwards.  Errors: ANN_ERR_NOMEM (then @p in
 * still owns the storage).
 */
ann_status annv_in_give(annv_in *in, ann_matrix *m);

/**
 * Make @p out a rows x cols matrix of @p dt whose contiguous elements
 * start at @p p inside @p in: when @p p is aligned for the element type
 * the matrix adopts @p in's storage (no copy, see annv_in_give), else,
 * or for an empty matrix, the elements are copied into a new heap matrix.
 * Errors: ANN_ERR_NOMEM.
 */
ann_status annv_in_matrix(annv_in *in, const unsigned char *p, int64_t rows, int64_t cols, ann_dtype dt,
                          ann_matrix *out);

/* ------------------------------ output ------------------------------ */

/** A buffered output file, or stdout for "-". */
typedef struct annv_out {
    const char *path;
    FILE *fp;
    bool is_stdout;
    char *buf;           /* setvbuf buffer */
} annv_out;

/** Create/truncate @p path for writing ("-" = stdout).  Errors: ANN_ERR_IO, ANN_ERR_NOMEM. */
ann_status annv_out_open(annv_out *o, const char *path);

/** Write @p n bytes.  Errors: ANN_ERR_IO naming the path and errno. */
ann_status annv_out_write(annv_out *o, const void *p, size_t n);

/** Write the rows of host matrix @p m back to back (cols x element size bytes each). */
ann_status annv_out_rows(annv_out *o, const ann_matrix *m);

/**
 * Flush, fsync (regular files) and close; stdout is flushed, not closed.
 * Errors: ANN_ERR_IO.  @p o is closed in every case.
 */
ann_status annv_out_close(annv_out *o);

/** Close after a failure without reporting (a partly written regular file is removed). */
void annv_out_abort(annv_out *o);

/* ----------------------------- helpers ------------------------------ */

/**
 * Resolve the requested rows [o->row_begin, o->row_end) of a file of
 * @p total rows (row_end -1 = to the end).  Errors: ANN_ERR_INVALID_ARG
 * "'PATH': rows B:E are outside the file (N rows)".
 */
ann_status annv_resolve_rows(const char *path, const ann_read_opts *o, int64_t total, int64_t *begin,
                             int64_t *end);

/** rows x cols x esize in bytes, or false on overflow (or negative input). */
bool annv_bytes(int64_t rows, int64_t cols, size_t esize, uint64_t *bytes);

/** Reverse the byte order of @p n elements of @p esize (2, 4 or 8) bytes in place. */
void annv_bswap(void *data, size_t n, size_t esize);

/** Common writer checks: host matrix, non-negative shape, stride large enough. */
ann_status annv_check_matrix(const char *path, const ann_matrix *m);

/** Lower-case extension of @p path without the dot ("" when none), into @p buf. */
void annv_extension(const char *path, char *buf, size_t len);

/* --------------------------- the formats ---------------------------- */
/* Each reader honours o->row_begin/o->row_end; probes fill info->dtype, rows, cols. */

ann_status annv_hdf5_read(const char *path, const char *name, const ann_read_opts *o, ann_matrix *out);
ann_status annv_hdf5_probe(const char *path, const char *name, ann_vectors_info *info);
ann_status annv_hdf5_write(const char *path, const char *name, const ann_matrix *m, const ann_write_opts *o);

/* fmt is ANN_VFMT_FVECS, IVECS or BVECS. */
ann_status annv_texmex_read(const char *path, ann_vformat fmt, const ann_read_opts *o, ann_matrix *out);
ann_status annv_texmex_probe(const char *path, ann_vformat fmt, ann_vectors_info *info);
ann_status annv_texmex_write(const char *path, ann_vformat fmt, const ann_matrix *m);

/* elem: element type of the file (from the extension; F32 when unknown). */
ann_status annv_bin_read(const char *path, ann_dtype elem, const ann_read_opts *o, ann_matrix *out);
ann_status annv_bin_probe(const char *path, ann_dtype elem, ann_vectors_info *info);
/* elem_known: the extension fixed the element type to elem; else the matrix's dtype is written. */
ann_status annv_bin_write(const char *path, ann_dtype elem, bool elem_known, const ann_matrix *m);

ann_status annv_npy_read(const char *path, const ann_read_opts *o, ann_matrix *out);
ann_status annv_npy_probe(const char *path, ann_vectors_info *info);
ann_status annv_npy_write(const char *path, const ann_matrix *m);

ann_status annv_idx_read(const char *path, const ann_read_opts *o, ann_matrix *out);
ann_status annv_idx_probe(const char *path, ann_vectors_info *info);
/** True when @p path holds an idx file (plain or gzip) whose header is consistent. */
bool annv_idx_sniff(const char *path);

ann_status annv_text_read(const char *path, const ann_read_opts *o, ann_matrix *out);
ann_status annv_text_probe(const char *path, const ann_read_opts *o, ann_vectors_info *info);
ann_status annv_text_write(const char *path, const ann_matrix *m, const ann_write_opts *o);

#endif

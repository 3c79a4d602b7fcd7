/*
 * ann/vectors.h - reading and writing vector files (implemented in formats/).
 *
 * Formats: ann-benchmarks HDF5 (PATH:NAME picks a dataset), texmex
 * fvecs/ivecs/bvecs, big-ann fbin/ibin/u8bin/i8bin (and f16bin), NumPy npy
 * v1/v2/v3, MNIST idx (read; gzip accepted), text/TSV (whitespace or
 * comma separated rows).  The format comes from the file's magic, then
 * its extension, or from an explicit ann_vformat.  Byte layouts and the
 * rules for each format are in formats/vectors.md.
 *
 * Readers reject truncated, corrupt or mismatched input with
 * ANN_ERR_FORMAT and a message naming the file and the field.
 * Threading: calls are independent; HDF5 access is serialised by the
 * HDF5 library's global lock.
 */
#ifndef ANN_VECTORS_H_c41b02
#define ANN_VECTORS_H_c41b02

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Vector file formats. */
typedef enum ann_vformat {
    ANN_VFMT_AUTO = 0,  /**< from magic, then extension */
    ANN_VFMT_HDF5,
    ANN_VFMT_FVECS,
    ANN_VFMT_IVECS,
    ANN_VFMT_BVECS,
    ANN_VFMT_FBIN,      /**< also .ibin .u8bin .i8bin .f16bin: the element type comes from the extension */
    ANN_VFMT_NPY,
    ANN_VFMT_IDX,
    ANN_VFMT_TEXT,
    ANN_VFMT_ANNKIT,    /**< an annkit container (index or graph); not a vector file */
} ann_vformat;

/** Name as used by --format: "hdf5", "fvecs", "ivecs", "bvecs", "bin", "npy", "idx", "text", "annkit". */
const char *ann_vformat_name(ann_vformat f);
/** Parse a --format name; also accepts "fbin", "ibin", "u8bin", "i8bin", "f16bin" (all ANN_VFMT_FBIN), "tsv", "txt", "h5". */
ann_status ann_vformat_parse(const char *name, ann_vformat *out);

/**
 * Split "PATH[:NAME]" into its path and HDF5 dataset name.  A ':' only
 * counts when the part before it names an existing file or has an HDF5
 * extension (.hdf5, .h5), so paths containing ':' still work.
 * @p name is set to "" when absent.  Errors: ANN_ERR_INVALID_ARG (too long).
 */
ann_status ann_spec_split(const char *spec, char *path, size_t path_len, char *name, size_t name_len);

/**
 * Decide the format of @p path: the magic bytes when the file exists and is
 * seekable (npy, HDF5, idx, gzip+idx, annkit), else the extension.
 * Returns ANN_ERR_FORMAT with a message when neither tells.
 * @p elem receives the element type implied by the extension for the
 * bin family and the texmex formats (F32 otherwise).
 */
ann_status ann_vformat_detect(const char *path, ann_vformat *fmt, ann_dtype *elem);

/** Options for ann_vectors_read(). */
typedef struct ann_read_opts {
    ann_vformat format;  /**< AUTO by default */
    int64_t row_begin;   /**< first row to read (default 0) */
    int64_t row_end;     /**< one past the last row; -1 = to the end */
    int64_t text_cols;   /**< text only: expected columns, 0 = from the first row */
} ann_read_opts;

/** Defaults: AUTO, all rows. */
void ann_read_opts_init(ann_read_opts *o);

/**
 * Read the matrix named by @p spec ("PATH[:NAME]"; "-" reads text from
 * stdin, or the format given in @p opts).  The result owns its memory:
 * an uncompressed fbin/npy/fvecs-free file is memory-mapped when possible,
 * other formats are read into the heap.  Dtype is the file's own (idx
 * u8 images stay U8; HDF5 int64 stays I64; text is F32).
 *
 * An HDF5 file with no NAME is an error listing its datasets.
 * Errors: ANN_ERR_IO (open/read), ANN_ERR_FORMAT (bad magic, truncated,
 * sizes that do not add up, ragged text rows, unknown HDF5 dataset),
 * ANN_ERR_INVALID_ARG (row range outside the file), ANN_ERR_NOMEM.
 */
ann_status ann_vectors_read(const char *spec, const ann_read_opts *opts, ann_matrix *out);

/** What ann_vectors_probe() reports without loading the data. */
typedef struct ann_vectors_info {
    ann_vformat format;
    ann_dtype dtype;
    int64_t rows, cols;
    char hdf5_datasets[512];  /**< HDF5: comma-separated dataset names at the root */
    char hdf5_distance[32];   /**< HDF5: the file's 'distance' attribute, "" if none */
} ann_vectors_info;

/** Read only the header of @p spec.  Errors as ann_vectors_read(). */
ann_status ann_vectors_probe(const char *spec, ann_vformat format, ann_vectors_info *info);

/** Options for ann_vectors_write(). */
typedef struct ann_write_opts {
    ann_vformat format;       /**< AUTO = from the extension of the path */
    bool hdf5_append;         /**< HDF5: add the dataset to an existing file (else create a new file) */
    bool hdf5_replace;        /**< HDF5: replace a dataset of that name if present */
    const char *hdf5_distance;/**< HDF5: set the file attribute 'distance' to this (NULL = leave) */
    int text_precision;       /**< text: significant digits for floats (default 9) */
} ann_write_opts;

/** Defaults: AUTO, new file, precision 9. */
void ann_write_opts_init(ann_write_opts *o);

/**
 * Write @p m to @p spec ("PATH[:NAME]"; "-" writes text to stdout) in
 * place: callers that need atomic output write to a temporary path and
 * rename it (tools/cli does).  The matrix's dtype must be storable in the
 * format: fvecs F32, ivecs I32, bvecs U8, bin F32/I32/U8/I8/F16 (by
 * extension), npy any, HDF5 any, text any; idx cannot be written.
 * An HDF5 target needs a dataset NAME.
 * Errors: ANN_ERR_IO, ANN_ERR_UNSUPPORTED (format cannot hold the dtype,
 * idx output), ANN_ERR_INVALID_ARG.
 */
ann_status ann_vectors_write(const char *spec, const ann_matrix *m, const ann_write_opts *opts);

#ifdef __cplusplus
}
#endif
#endif

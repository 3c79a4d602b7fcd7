/*
 * ann/core.h - core types of annkit: status codes and error text, element
 * types, metrics, matrix views, execution settings and parameter tables.
 *
 * Every other public header builds on this one.  The library never prints
 * and never exits: each call returns an ann_status, and the detail of the
 * last failure on the calling thread is in ann_last_error().
 */
#ifndef ANN_CORE_H_7f3a91
#define ANN_CORE_H_7f3a91

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Status                                                              */
/* ------------------------------------------------------------------ */

/**
 * Result of every library call.  0 is success; the negative values are
 * stable: they are never renumbered or reused.
 */
typedef enum ann_status {
    ANN_OK = 0,
    ANN_ERR_NOMEM = -1,               /**< an allocation failed */
    ANN_ERR_INVALID_ARG = -2,         /**< a parameter is out of range or inconsistent */
    ANN_ERR_IO = -3,                  /**< open/read/write/rename failed (errno in the text) */
    ANN_ERR_FORMAT = -4,              /**< a file is malformed, truncated or of the wrong kind */
    ANN_ERR_VERSION = -5,             /**< a file has an unknown major version */
    ANN_ERR_UNSUPPORTED = -6,         /**< valid request that this build or algorithm does not do */
    ANN_ERR_BACKEND_UNAVAILABLE = -7, /**< the requested backend (CUDA) cannot run here */
    ANN_ERR_CUDA = -8,                /**< a CUDA runtime or cuBLAS call failed */
    ANN_ERR_INTERNAL = -9,            /**< a broken invariant: a bug in annkit */
    ANN_ERR_CHECKSUM = -10,           /**< a section's checksum does not match its bytes */
    ANN_ERR_INTERRUPTED = -11,        /**< the interrupt flag of ann_exec was raised */
    ANN_ERR_MISMATCH = -12,           /**< two inputs disagree (dimension, dtype, metric, rows) */
} ann_status;

/** Short description of a status ("out of memory", ...); never NULL, static storage. */
const char *ann_status_str(ann_status s);

/**
 * Detail of the last failure on this thread, with its context (path,
 * field, offset, sizes), e.g. "'q.fbin': file size 100 is not 8 + 3 x 128 x 4".
 * Empty string when nothing failed yet.  Valid until the next failing
 * call on the same thread.
 */
const char *ann_last_error(void);

/**
 * Record the detail of a failure for ann_last_error() and return @p s, so
 * that implementations can write `return ann_set_error(ANN_ERR_IO, ...)`.
 * printf-style; the text is truncated to 1023 bytes.  Thread-safe (the
 * buffer is thread-local).
 */
ann_status ann_set_error(ann_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** Clear the thread's error text (ann_last_error() returns ""). */
void ann_clear_error(void);

/* ------------------------------------------------------------------ */
/* Element types and metrics                                           */
/* ------------------------------------------------------------------ */

/**
 * Element type of a matrix.  Vector data for the algorithms is one of
 * F32, F16, I8, U8; the others appear in files (ids, distances).  The
 * numeric values are stored in annkit files and never change.
 */
typedef enum ann_dtype {
    ANN_DTYPE_F32 = 0,
    ANN_DTYPE_F16 = 1,
    ANN_DTYPE_I8 = 2,
    ANN_DTYPE_U8 = 3,
    ANN_DTYPE_I32 = 4,
    ANN_DTYPE_U32 = 5,
    ANN_DTYPE_I64 = 6,
    ANN_DTYPE_F64 = 7,
} ann_dtype;

/** Size in bytes of one element of @p t (0 for an unknown value). */
size_t ann_dtype_size(ann_dtype t);
/** Lower-case name: "f32", "f16", "i8", "u8", "i32", "u32", "i64", "f64"; "?" if unknown. */
const char *ann_dtype_name(ann_dtype t);
/**
 * Parse a dtype name (also accepts "float32", "float", "float16", "half",
 * "int8", "uint8", "int32", "uint32", "int64", "float64", "double").
 * Returns ANN_ERR_INVALID_ARG for anything else.
 */
ann_status ann_dtype_parse(const char *name, ann_dtype *out);

/**
 * Distance metric.  The numeric values are those of cuVS's DistanceType
 * (notes/algorithms.md 0.1) and are stored in files.
 *
 * Returned distances (DESIGN.md "Core contracts"): sqeuclidean is squared
 * L2, euclidean is L2, inner_product is +dot sorted descending, cosine is
 * 1 - cos, l1 is the sum of absolute differences, hamming counts differing bits.
 */
typedef enum ann_metric {
    ANN_METRIC_SQEUCLIDEAN = 0,
    ANN_METRIC_EUCLIDEAN = 1,
    ANN_METRIC_COSINE = 2,
    ANN_METRIC_L1 = 3,
    ANN_METRIC_INNER_PRODUCT = 6,
    ANN_METRIC_HAMMING = 20,
} ann_metric;

/** Name as spelled on the command line ("sqeuclidean", ...); "?" if unknown. */
const char *ann_metric_name(ann_metric m);
/** Parse a metric name; also accepts "l2" (sqeuclidean), "ip", "dot" (inner_product), "angular" (cosine). */
ann_status ann_metric_parse(const char *name, ann_metric *out);
/** True when larger distance values are better (inner_product only). */
bool ann_metric_larger_is_better(ann_metric m);
/** The distance a slot with no result gets: +inf, or -inf for inner_product. */
float ann_metric_worst(ann_metric m);

/* ------------------------------------------------------------------ */
/* Matrices                                                            */
/* ------------------------------------------------------------------ */

/** Where a matrix's memory lives. */
typedef enum ann_location { ANN_LOC_HOST = 0, ANN_LOC_DEVICE = 1 } ann_location;

/**
 * A row-major matrix: rows x cols elements of @c dtype, @c stride bytes
 * between row starts (>= cols * ann_dtype_size(dtype)).
 *
 * A view does not own its memory (@c owner == NULL).  Matrices returned by
 * readers own it: release them with ann_matrix_release(), which frees the
 * heap buffer or unmaps the file mapping.
 */
typedef struct ann_matrix {
    void *data;
    int64_t rows;
    int64_t cols;
    int64_t stride;      /**< bytes between consecutive rows */
    ann_dtype dtype;
    ann_location loc;
    void *owner;         /**< internal: NULL for views; freed by ann_matrix_release */
} ann_matrix;

/** A non-owning view of contiguous host memory (stride = cols * element size). */
ann_matrix ann_matrix_view(void *data, int64_t rows, int64_t cols, ann_dtype dtype);

/**
 * Allocate a zero-filled contiguous host matrix (64-byte aligned).
 * Errors: ANN_ERR_INVALID_ARG (negative sizes, unknown dtype),
 * ANN_ERR_NOMEM.  Release with ann_matrix_release().
 */
ann_status ann_matrix_alloc(ann_matrix *out, int64_t rows, int64_t cols, ann_dtype dtype);

/** Release what @p m owns and zero it.  A view or a zeroed matrix is a no-op; NULL is allowed. */
void ann_matrix_release(ann_matrix *m);

/** Pointer to row @p i (no bounds check). */
static inline void *ann_matrix_row(const ann_matrix *m, int64_t i)
{
    return (char *)m->data + i * m->stride;
}

/**
 * Convert @p src (any dtype) into a new owned contiguous matrix of dtype
 * @p to.  Conversions to integer types round to nearest and saturate;
 * f16 uses IEEE binary16 round-to-nearest-even.  Runs on OpenMP threads.
 * Errors: ANN_ERR_NOMEM, ANN_ERR_INVALID_ARG.
 */
ann_status ann_matrix_convert(const ann_matrix *src, ann_dtype to, ann_matrix *out);

/** Scale every row of an owned or writable f32 matrix to unit L2 norm (zero rows stay zero). */
ann_status ann_matrix_normalize_rows(ann_matrix *m);

/** IEEE binary16 helpers (round to nearest even; inf/NaN kept). */
float ann_f16_to_f32(uint16_t h);
uint16_t ann_f32_to_f16(float f);

/* ------------------------------------------------------------------ */
/* Execution settings                                                  */
/* ------------------------------------------------------------------ */

/** Which backend runs an operation (DESIGN.md "Backends"). */
typedef enum ann_device {
    ANN_DEVICE_AUTO = 0, /**< CUDA when the plugin loads, a device exists and the op is supported; else CPU */
    ANN_DEVICE_CPU = 1,
    ANN_DEVICE_CUDA = 2, /**< CUDA or ANN_ERR_BACKEND_UNAVAILABLE, never a silent fallback */
} ann_device;

/** Parse "auto", "cpu", "cuda" (also "gpu"). */
ann_status ann_device_parse(const char *name, ann_device *out);
const char *ann_device_name(ann_device d);

/**
 * Progress report: @p phase ("kmeans", "search", ...), @p done of @p total
 * units.  Called from the calling thread only, at most a few times a second.
 */
typedef void (*ann_progress_fn)(void *user, const char *phase, int64_t done, int64_t total);

/** Log message from the library at verbosity @p level (0 = warning, 1 = info, 2 = debug). */
typedef void (*ann_log_fn)(void *user, int level, const char *msg);

/**
 * How an operation runs: the backend, OpenMP threads, the seed of every
 * random choice, and optional progress/log callbacks and interrupt flag.
 * Initialise with ann_exec_init().
 */
typedef struct ann_exec {
    ann_device device;
    int n_threads;                   /**< 0 = OpenMP default */
    uint64_t seed;                   /**< every random choice derives from it */
    ann_progress_fn progress;        /**< may be NULL */
    void *progress_user;
    ann_log_fn log;                  /**< may be NULL */
    void *log_user;
    volatile int *interrupt;         /**< when non-NULL and *interrupt != 0, long loops return ANN_ERR_INTERRUPTED */
    ann_device used;                 /**< out: the backend that ran the last operation */
    uint64_t max_host_memory;        /**< bytes of host memory a build may plan for (annbuild
                                          --max-host-memory); 0 = what is available now
                                          (ann_mem_host_available()).  Read by CAGRA's build_algo
                                          auto to decide whether NN-Descent fits. */
} ann_exec;

/** Defaults: device AUTO, threads 0, seed 42, no callbacks, max_host_memory 0. */
void ann_exec_init(ann_exec *ex);

/* ------------------------------------------------------------------ */
/* Parameter tables                                                    */
/* ------------------------------------------------------------------ */

/** Type of a parameter field. */
typedef enum ann_param_type {
    ANN_PARAM_INT32 = 0,
    ANN_PARAM_INT64 = 1,
    ANN_PARAM_FLOAT = 2,  /**< float (4 bytes) */
    ANN_PARAM_ENUM = 3,   /**< int32 index into the '|'-separated @c choices */
    ANN_PARAM_BOOL = 4,   /**< bool */
} ann_param_type;

/**
 * One parameter of a params struct: the single table of valid ranges that
 * the library checks, the CLI parses (--NAME with '_' spelled '-') and
 * --help prints.  Defaults are not here: they come from the struct's
 * *_params_init().
 */
typedef struct ann_param_desc {
    const char *name;     /**< field's standard name, e.g. "n_lists" */
    ann_param_type type;
    size_t offset;        /**< offsetof(struct, field) */
    double min, max;      /**< inclusive range (numbers) */
    const char *choices;  /**< ANN_PARAM_ENUM: "matrix|csr|auto" */
    const char *help;     /**< one line, for --help and man pages */
} ann_param_desc;

/**
 * Check every field of @p params against @p table.
 * Returns ANN_ERR_INVALID_ARG naming the first field out of range.
 */
ann_status ann_params_check(const ann_param_desc *table, size_t n, const void *params);

/**
 * Set the field @p name of @p params from the text @p value (numbers accept
 * 1e6, 10K, 4M, 2G suffixes for integers; enums take a choice name; bools
 * take 0/1/true/false).  Checks the range.  Errors: ANN_ERR_INVALID_ARG.
 */
ann_status ann_params_set(const ann_param_desc *table, size_t n, void *params,
                          const char *name, const char *value);

/** Format field @p d of @p params as text into @p buf (for --help defaults and --json). */
void ann_params_format(const ann_param_desc *d, const void *params, char *buf, size_t len);

/** Library version string, "MAJOR.MINOR.PATCH". */
const char *ann_version(void);

#ifdef __cplusplus
}
#endif
#endif

/*
 * ann/container.h - the annkit container: the file format of every index
 * and graph file (implemented in formats/container.c; the normative byte
 * layout is formats/container.md and man/ann-index.5).
 *
 * A container is a 64-byte header (magic, major.minor version, endianness
 * tag, kind, algorithm, metric, dtype, rows, dim) followed by named
 * sections, each 64-byte aligned, stored raw or zstd-compressed, each
 * with a CRC-32C of its stored bytes, and a section table.  A reader
 * memory-maps the file; raw sections are then used in place.
 */
#ifndef ANN_CONTAINER_H_e2d4a7
#define ANN_CONTAINER_H_e2d4a7

#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANN_CONTAINER_MAJOR 1   /**< readers reject any other major version */
#define ANN_CONTAINER_MINOR 0
#define ANN_SECTION_NAME_MAX 24 /**< bytes including the terminating NUL */

/** What a container holds. */
typedef enum ann_kind { ANN_KIND_INDEX = 1, ANN_KIND_GRAPH = 2 } ann_kind;

/** Algorithm that made a container (stored in files; values never change). */
typedef enum ann_algo {
    ANN_ALGO_NONE = 0,
    ANN_ALGO_BRUTE_FORCE = 1,
    ANN_ALGO_IVF_FLAT = 2,
    ANN_ALGO_IVF_SQ = 3,
    ANN_ALGO_IVF_PQ = 4,
    ANN_ALGO_CAGRA = 5,
    ANN_ALGO_HNSW = 6,
    ANN_ALGO_NN_DESCENT = 7,
} ann_algo;

/** "brute_force", "ivf_flat", ...; "?" when unknown. */
const char *ann_algo_name(ann_algo a);
/** Parse an --algo name.  Errors: ANN_ERR_INVALID_ARG. */
ann_status ann_algo_parse(const char *name, ann_algo *out);

/** Section codecs. */
typedef enum ann_codec { ANN_CODEC_NONE = 0, ANN_CODEC_ZSTD = 1 } ann_codec;

/** Header fields of a container, as ann_container_probe() reports them. */
typedef struct ann_container_info {
    uint16_t major, minor;
    ann_kind kind;
    ann_algo algo;
    ann_metric metric;
    ann_dtype dtype;
    int64_t rows, dim;
    uint32_t n_sections;
    uint64_t file_size;
} ann_container_info;

/* ---------------------------- writing ------------------------------ */

typedef struct ann_container_writer ann_container_writer;

/**
 * Start a container with the given header fields.  Sections are added
 * with ann_container_add() and the file is produced by
 * ann_container_write().  Errors: ANN_ERR_NOMEM.
 */
ann_status ann_container_writer_create(ann_kind kind, ann_algo algo, ann_metric metric,
                                       ann_dtype dtype, int64_t rows, int64_t dim,
                                       ann_container_writer **out);

/**
 * Add a section named @p name (at most 23 bytes, unique) holding @p size
 * bytes at @p data.  The bytes are not copied: they must stay valid until
 * ann_container_write() returns.  @p codec ZSTD compresses the section
 * when that makes it smaller (else it is stored raw).
 * Errors: ANN_ERR_INVALID_ARG (name too long or duplicate), ANN_ERR_NOMEM.
 */
ann_status ann_container_add(ann_container_writer *w, const char *name, const void *data,
                             uint64_t size, ann_codec codec);

/**
 * Write the container to @p path (created or truncated; callers wanting
 * atomic output pass a temporary path and rename).  Compression runs on
 * up to @p n_threads zstd workers (0 = 1).
 * Errors: ANN_ERR_IO (with the path and errno text), ANN_ERR_NOMEM.
 */
ann_status ann_container_write(ann_container_writer *w, const char *path, int n_threads);

/** Free a writer (NULL allowed). */
void ann_container_writer_free(ann_container_writer *w);

/* ---------------------------- reading ------------------------------ */

typedef struct ann_container ann_container;

/**
 * Open and validate @p path: magic, major version, endianness, header and
 * section-table checksums, section bounds and alignment inside the file.
 * The file is memory-mapped read-only.  Section checksums are verified
 * when a section is first fetched.
 * Errors: ANN_ERR_IO, ANN_ERR_FORMAT (not an annkit file, truncated,
 * sizes that do not add up: the message names the file and the field),
 * ANN_ERR_VERSION (unknown major version), ANN_ERR_CHECKSUM.
 */
ann_status ann_container_open(const char *path, ann_container **out);

/** Header fields of an open container. */
const ann_container_info *ann_container_header(const ann_container *c);

/** The file's path as given to ann_container_open(). */
const char *ann_container_path(const ann_container *c);

/**
 * Fetch section @p name: @p data points into the mapping for raw sections
 * or into a heap buffer owned by the container for compressed ones; valid
 * until ann_container_close().  The checksum is checked on first fetch.
 * Errors: ANN_ERR_FORMAT (no such section: the message names it),
 * ANN_ERR_CHECKSUM, ANN_ERR_NOMEM.
 */
ann_status ann_container_get(ann_container *c, const char *name, const void **data, uint64_t *size);

/**
 * Like ann_container_get(), and check that the section holds exactly
 * @p expect bytes (ANN_ERR_FORMAT naming the section otherwise).
 */
ann_status ann_container_get_sized(ann_container *c, const char *name, uint64_t expect, const void **data);

/** True when the container has a section called @p name. */
bool ann_container_has(const ann_container *c, const char *name);

/**
 * Enumerate section @p i (0 <= i < n_sections): name, stored size,
 * raw size and codec.  Errors: ANN_ERR_INVALID_ARG for i out of range.
 */
ann_status ann_container_section_info(const ann_container *c, uint32_t i, const char **name,
                                      uint64_t *stored, uint64_t *raw, ann_codec *codec);

/** Unmap and free (NULL allowed). */
void ann_container_close(ann_container *c);

/**
 * Read only the 64-byte header of @p path (no mapping, no section checks).
 * Errors as ann_container_open() for the header fields.
 */
ann_status ann_container_probe(const char *path, ann_container_info *info);

/* ------------------------------ meta ------------------------------- */

/*
 * Every annkit container has a "meta" section of UTF-8 text, one
 * "key=value" per line (parameters such as n_lists=1024), which
 * `annconvert --info` prints.  These helpers build and query it.
 */

/**
 * Look up @p key in meta text @p meta of @p len bytes; copy the value to
 * @p buf.  Returns false when absent.
 */
bool ann_meta_get(const char *meta, size_t len, const char *key, char *buf, size_t buf_len);

/** Like ann_meta_get() for an integer; ANN_ERR_FORMAT (naming @p what and the key) when missing or not a number. */
ann_status ann_meta_get_i64(const char *meta, size_t len, const char *key, const char *what, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif

/*
 * container.c - the annkit container: the file format of index and graph
 * files.  The byte layout and the reading rules are normative in
 * formats/container.md (version 1.0); the section numbers quoted below
 * refer to it.
 *
 * Writing compresses the zstd sections first (so that every stored size
 * is known), then writes header, table and sections in one sequential
 * pass with write(2), checking every call, fsync(2) and close(2).
 * Reading maps the whole file (PROT_READ, MAP_PRIVATE), validates the
 * header and the table at open (container.md 6, checks 1-9) and each
 * section's checksum and codec when it is first fetched (check 10).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "ann/container.h"
#include "crc32c.h"
#include "matrix_owner.h"

#define HDR_SIZE 64
#define ENTRY_SIZE 64
#define TRAILER_SIZE 8
#define SECTION_ALIGN 64
#define ENDIAN_TAG 0x01020304u
#define ENDIAN_TAG_SWAPPED 0x04030201u
#define ZSTD_LEVEL 3

static const unsigned char container_magic[8] = {0x89, 'A', 'N', 'N', 'K', 'I', 'T', '\n'};

/* Header field offsets (container.md 2). */
enum {
    H_MAGIC = 0, H_MAJOR = 8, H_MINOR = 10, H_ENDIAN = 12, H_KIND = 16, H_ALGO = 20,
    H_METRIC = 24, H_DTYPE = 28, H_ROWS = 32, H_DIM = 40, H_TABLE = 48, H_NSEC = 56, H_CRC = 60,
};
/* Section table entry field offsets (container.md 3). */
enum { E_NAME = 0, E_OFFSET = 24, E_STORED = 32, E_RAW = 40, E_CODEC = 48, E_CRC = 52 };

/* ------------------------- little-endian I/O ------------------------ */

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t align_up(uint64_t x)
{
    return (x + SECTION_ALIGN - 1) & ~(uint64_t)(SECTION_ALIGN - 1);
}

/* ----------------------------- names -------------------------------- */

static const char *const algo_names[] = {
    "none", "brute_force", "ivf_flat", "ivf_sq", "ivf_pq", "cagra", "hnsw", "nn_descent",
};

/**
 * Name of algorithm @p a as spelled by --algo ("brute_force", ...);
 * "none" for ANN_ALGO_NONE, "?" for a value this build does not know.
 */
const char *ann_algo_name(ann_algo a)
{
    if ((unsigned)a < sizeof algo_names / sizeof algo_names[0])
        return algo_names[a];
    return "?";
}

/**
 * Parse an --algo name into @p out.  Case-insensitive; '-' may stand for
 * '_' ("ivf-flat").  "none" is not accepted.
 * Errors: ANN_ERR_INVALID_ARG listing the valid names.
 */
ann_status ann_algo_parse(const char *name, ann_algo *out)
{
    char buf[32];
    size_t n = name ? strlen(name) : 0;
    if (name && n < sizeof buf) {
        for (size_t i = 0; i <= n; i++)
            buf[i] = name[i] == '-' ? '_' : name[i];
        for (unsigned a = 1; a < sizeof algo_names / sizeof algo_names[0]; a++)
            if (strcasecmp(buf, algo_names[a]) == 0) {
                *out = (ann_algo)a;
                return ANN_OK;
            }
    }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown algorithm '%s' (expected brute_force, ivf_flat, ivf_sq, ivf_pq, "
                         "cagra, hnsw, nn_descent)", name ? name : "(null)");
}

/* ---------------------------- writing ------------------------------- */

typedef struct wsection {
    char name[ANN_SECTION_NAME_MAX];
    const void *data;
    uint64_t size;
    ann_codec codec;
} wsection;

struct ann_container_writer {
    ann_container_info hdr;
    wsection *secs;
    uint32_t n, cap;
};

/**
 * Start a container writer with the header fields @p kind, @p algo,
 * @p metric, @p dtype, @p rows and @p dim (stored as given; rows and dim
 * must not be negative).  Errors: ANN_ERR_INVALID_ARG, ANN_ERR_NOMEM.
 * A writer is used by one thread at a time.
 */
ann_status ann_container_writer_create(ann_kind kind, ann_algo algo, ann_metric metric,
                                       ann_dtype dtype, int64_t rows, int64_t dim,
                                       ann_container_writer **out)
{
    *out = NULL;
    if (rows < 0 || dim < 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "container header: negative rows (%lld) or dim (%lld)",
                             (long long)rows, (long long)dim);
    ann_container_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ann_set_error(ANN_ERR_NOMEM, "out of memory creating a container writer");
    w->hdr.major = ANN_CONTAINER_MAJOR;
    w->hdr.minor = ANN_CONTAINER_MINOR;
    w->hdr.kind = kind;
    w->hdr.algo = algo;
    w->hdr.metric = metric;
    w->hdr.dtype = dtype;
    w->hdr.rows = rows;
    w->hdr.dim = dim;
    *out = w;
    return ANN_OK;
}

static wsection *writer_find(const ann_container_writer *w, const char *name)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (strcmp(w->secs[i].name, name) == 0)
            return &w->secs[i];
    return NULL;
}

/**
 * Add section @p name (1 to 23 bytes, unique) of @p size bytes at
 * @p data; the bytes are not copied and must stay valid until
 * ann_container_write() returns.  @p codec ANN_CODEC_ZSTD asks for
 * compression, which is kept only when it makes the section smaller.
 * Errors: ANN_ERR_INVALID_ARG (bad or duplicate name, unknown codec,
 * NULL data with a non-zero size), ANN_ERR_NOMEM.
 */
ann_status ann_container_add(ann_container_writer *w, const char *name, const void *data,
                             uint64_t size, ann_codec codec)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= ANN_SECTION_NAME_MAX)
        return ann_set_error(ANN_ERR_INVALID_ARG, "section name '%s' must have 1 to %d bytes",
                             name ? name : "(null)", ANN_SECTION_NAME_MAX - 1);
    if (writer_find(w, name))
        return ann_set_error(ANN_ERR_INVALID_ARG, "section '%s' added twice", name);
    if (codec != ANN_CODEC_NONE && codec != ANN_CODEC_ZSTD)
        return ann_set_error(ANN_ERR_INVALID_ARG, "section '%s': unknown codec %d", name, (int)codec);
    if (!data && size > 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "section '%s': no data for %llu bytes", name,
                             (unsigned long long)size);
    if (size > SIZE_MAX / 2)
        return ann_set_error(ANN_ERR_INVALID_ARG, "section '%s': size %llu is too large", name,
                             (unsigned long long)size);
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? 2 * w->cap : 8;
        wsection *s = realloc(w->secs, (size_t)cap * sizeof *s);
        if (!s)
            return ann_set_error(ANN_ERR_NOMEM, "out of memory adding section '%s'", name);
        w->secs = s;
        w->cap = cap;
    }
    wsection *s = &w->secs[w->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, len);
    s->data = data;
    s->size = size;
    s->codec = codec;
    return ANN_OK;
}

/* Write all @p n bytes or fail with errno set. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One section as it will be stored. */
typedef struct stored_section {
    const void *bytes;   /* stored bytes: caller data or `comp` */
    void *comp;          /* compressed buffer owned here, or NULL */
    uint64_t stored, offset;
    uint32_t codec, crc;
} stored_section;

/* Compress section @p s into @p st when zstd is asked for and shrinks it. */
static ann_status compress_section(const wsection *s, ZSTD_CCtx **cctx, int n_threads, stored_section *st)
{
    st->bytes = s->data;
    st->stored = s->size;
    st->codec = ANN_CODEC_NONE;
    if (s->codec != ANN_CODEC_ZSTD || s->size == 0)
        return ANN_OK;
    if (!*cctx) {
        *cctx = ZSTD_createCCtx();
        if (!*cctx)
            return ann_set_error(ANN_ERR_NOMEM, "out of memory creating a zstd context");
        ZSTD_CCtx_setParameter(*cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
        ZSTD_CCtx_setParameter(*cctx, ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(*cctx, ZSTD_c_contentSizeFlag, 1);
        /* Fails harmlessly (single-threaded) on a libzstd built without threads. */
        if (n_threads > 1)
            ZSTD_CCtx_setParameter(*cctx, ZSTD_c_nbWorkers, n_threads);
    }
    size_t bound = ZSTD_compressBound((size_t)s->size);
    void *buf = malloc(bound);
    if (!buf)
        return ann_set_error(ANN_ERR_NOMEM, "cannot allocate %zu bytes to compress section '%s'", bound,
                             s->name);
    size_t r = ZSTD_compress2(*cctx, buf, bound, s->data, (size_t)s->size);
    if (ZSTD_isError(r)) {
        free(buf);
        return ann_set_error(ANN_ERR_INTERNAL, "section '%s': zstd compression failed: %s", s->name,
                             ZSTD_getErrorName(r));
    }
    if (r >= s->size) {   /* no gain: store raw (container.md 4) */
        free(buf);
        return ANN_OK;
    }
    st->comp = buf;
    st->bytes = buf;
    st->stored = r;
    st->codec = ANN_CODEC_ZSTD;
    return ANN_OK;
}

/**
 * Write the container to @p path (created with mode 0666 & ~umask, or
 * truncated), laid out as in container.md 4.  zstd sections are
 * compressed first with up to @p n_threads zstd workers (0 or 1 = one
 * thread), then everything is written in one pass and fsync'ed.  An
 * empty "meta" section is added when the caller added none (container.md
 * 7).  On failure a partly written regular file is removed.
 * Errors: ANN_ERR_IO ("'PATH': write failed: <strerror>"), ANN_ERR_NOMEM,
 * ANN_ERR_INTERNAL (zstd failure).
 */
ann_status ann_container_write(ann_container_writer *w, const char *path, int n_threads)
{
    ann_status st = ANN_OK;
    stored_section *ss = NULL;
    unsigned char *head = NULL;
    ZSTD_CCtx *cctx = NULL;
    int fd = -1;
    bool created = false;

    if (!writer_find(w, "meta")) {
        st = ann_container_add(w, "meta", "", 0, ANN_CODEC_NONE);
        if (st != ANN_OK)
            goto cleanup;
    }
    const uint32_t n = w->n;
    ss = calloc(n ? n : 1, sizeof *ss);
    if (!ss) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory", path);
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++) {
        st = compress_section(&w->secs[i], &cctx, n_threads, &ss[i]);
        if (st != ANN_OK)
            goto cleanup;
        ss[i].crc = ann_crc32c(0, ss[i].bytes, (size_t)ss[i].stored);
    }

    /* Layout: header, table at 64, then each section at the next multiple of 64. */
    const uint64_t table_off = HDR_SIZE;
    const size_t head_len = HDR_SIZE + (size_t)n * ENTRY_SIZE + TRAILER_SIZE;
    uint64_t pos = align_up(head_len);
    for (uint32_t i = 0; i < n; i++) {
        ss[i].offset = pos;
        pos = align_up(pos + ss[i].stored);
    }

    head = calloc(1, head_len);
    if (!head) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory", path);
        goto cleanup;
    }
    unsigned char *h = head;
    memcpy(h + H_MAGIC, container_magic, 8);
    put_u16(h + H_MAJOR, ANN_CONTAINER_MAJOR);
    put_u16(h + H_MINOR, ANN_CONTAINER_MINOR);
    put_u32(h + H_ENDIAN, ENDIAN_TAG);
    put_u32(h + H_KIND, (uint32_t)w->hdr.kind);
    put_u32(h + H_ALGO, (uint32_t)w->hdr.algo);
    put_u32(h + H_METRIC, (uint32_t)w->hdr.metric);
    put_u32(h + H_DTYPE, (uint32_t)w->hdr.dtype);
    put_u64(h + H_ROWS, (uint64_t)w->hdr.rows);
    put_u64(h + H_DIM, (uint64_t)w->hdr.dim);
    put_u64(h + H_TABLE, table_off);
    put_u32(h + H_NSEC, n);
    put_u32(h + H_CRC, ann_crc32c(0, h, HDR_SIZE));   /* field is still zero here */
    unsigned char *t = head + table_off;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *e = t + (size_t)i * ENTRY_SIZE;
        memcpy(e + E_NAME, w->secs[i].name, ANN_SECTION_NAME_MAX);
        put_u64(e + E_OFFSET, ss[i].offset);
        put_u64(e + E_STORED, ss[i].stored);
        put_u64(e + E_RAW, w->secs[i].size);
        put_u32(e + E_CODEC, ss[i].codec);
        put_u32(e + E_CRC, ss[i].crc);
    }
    put_u32(t + (size_t)n * ENTRY_SIZE, ann_crc32c(0, t, (size_t)n * ENTRY_SIZE));

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot create: %s", path, strerror(errno));
        goto cleanup;
    }
    struct stat sb;
    created = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    static const unsigned char zeros[SECTION_ALIGN];
    uint64_t at = head_len;
    if (write_all(fd, head, head_len) != 0)
        goto write_error;
    for (uint32_t i = 0; i < n; i++) {
        if (write_all(fd, zeros, (size_t)(ss[i].offset - at)) != 0 ||
            write_all(fd, ss[i].bytes, (size_t)ss[i].stored) != 0)
            goto write_error;
        at = ss[i].offset + ss[i].stored;
    }
    if (created && fsync(fd) != 0)
        goto write_error;
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto write_error;
    goto cleanup;

write_error:
    st = ann_set_error(ANN_ERR_IO, "'%s': write failed: %s", path, strerror(errno));
cleanup:
    if (fd >= 0)
        close(fd);
    if (st != ANN_OK && created)
        unlink(path);
    if (ss)
        for (uint32_t i = 0; i < w->n; i++)
            free(ss[i].comp);
    free(ss);
    free(head);
    ZSTD_freeCCtx(cctx);
    return st;
}

/** Free a writer and its section list (not the caller's section bytes); NULL is allowed. */
void ann_container_writer_free(ann_container_writer *w)
{
    if (!w)
        return;
    free(w->secs);
    free(w);
}

/* ---------------------------- reading ------------------------------- */

typedef struct rsection {
    char name[ANN_SECTION_NAME_MAX];
    uint64_t offset, stored, raw;
    uint32_t codec, crc;
    bool checked;        /* checksum and codec verified, `data` valid */
    const void *data;    /* into the mapping, or `decoded` */
    void *decoded;       /* heap copy of a zstd section */
} rsection;

struct ann_container {
    char *path;
    ann_container_info info;
    const unsigned char *map;
    size_t map_len;
    rsection *secs;
    pthread_mutex_t lock;   /* guards lazy checks and decoding in ann_container_get */
};

/*
 * Container.md 6, checks 1-6, on the first @p have bytes of a file of
 * @p file_size bytes.  Fills @p info and the table offset.
 */
static ann_status parse_header(const char *path, const unsigned char *h, size_t have, uint64_t file_size,
                               ann_container_info *info, uint64_t *table_off)
{
    size_t cmp = have < 8 ? have : 8;
    if (memcmp(h, container_magic, cmp) != 0)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': not an annkit file (bad magic)", path);
    if (have < HDR_SIZE)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': truncated: %llu bytes, shorter than the %d-byte header",
                             path, (unsigned long long)file_size, HDR_SIZE);
    const uint32_t tag = get_u32(h + H_ENDIAN);
    if (tag == ENDIAN_TAG_SWAPPED)
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': big-endian file (endianness tag reads 0x%08x); annkit containers "
                             "are little-endian", path, tag);
    if (tag != ENDIAN_TAG)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': bad endianness tag 0x%08x (expected 0x%08x)", path, tag,
                             ENDIAN_TAG);
    const uint16_t major = get_u16(h + H_MAJOR), minor = get_u16(h + H_MINOR);
    if (major != ANN_CONTAINER_MAJOR)
        return ann_set_error(ANN_ERR_VERSION,
                             "'%s': container version %u.%u is not supported (this build reads major "
                             "version %d)", path, major, minor, ANN_CONTAINER_MAJOR);
    unsigned char tmp[HDR_SIZE];
    memcpy(tmp, h, HDR_SIZE);
    put_u32(tmp + H_CRC, 0);
    const uint32_t stored_crc = get_u32(h + H_CRC), crc = ann_crc32c(0, tmp, HDR_SIZE);
    if (stored_crc != crc)
        return ann_set_error(ANN_ERR_CHECKSUM, "'%s': header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                             path, stored_crc, crc);
    const int64_t rows = (int64_t)get_u64(h + H_ROWS), dim = (int64_t)get_u64(h + H_DIM);
    if (rows < 0 || dim < 0)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': header field %s is negative (%lld)", path,
                             rows < 0 ? "rows" : "dim", (long long)(rows < 0 ? rows : dim));
    memset(info, 0, sizeof *info);
    info->major = major;
    info->minor = minor;
    info->kind = (ann_kind)get_u32(h + H_KIND);
    info->algo = (ann_algo)get_u32(h + H_ALGO);
    info->metric = (ann_metric)get_u32(h + H_METRIC);
    info->dtype = (ann_dtype)get_u32(h + H_DTYPE);
    info->rows = rows;
    info->dim = dim;
    info->n_sections = get_u32(h + H_NSEC);
    info->file_size = file_size;
    *table_off = get_u64(h + H_TABLE);
    return ANN_OK;
}

/* Read up to @p n bytes at @p off; returns the count read or -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* Open @p path read-only and get its size; a directory is an I/O error. */
static ann_status open_file(const char *path, int *fd_out, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ann_set_error(ANN_ERR_IO, "'%s': cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return ann_set_error(ANN_ERR_IO, "'%s': is a directory", path);
    }
    *fd_out = fd;
    *size = (uint64_t)sb.st_size;
    return ANN_OK;
}

/**
 * Read and check only the 64-byte header of @p path with pread(2)
 * (container.md 6, checks 1-6) into @p info; no mapping, no table or
 * section checks.  Errors: ANN_ERR_IO, ANN_ERR_FORMAT, ANN_ERR_VERSION,
 * ANN_ERR_CHECKSUM, each naming the file and the field.  Thread-safe.
 */
ann_status ann_container_probe(const char *path, ann_container_info *info)
{
    int fd;
    uint64_t size;
    ann_status st = open_file(path, &fd, &size);
    if (st != ANN_OK)
        return st;
    unsigned char h[HDR_SIZE];
    ssize_t got = pread_full(fd, h, HDR_SIZE, 0);
    int e = errno;
    close(fd);
    if (got < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': read failed: %s", path, strerror(e));
    uint64_t table_off;
    return parse_header(path, h, (size_t)got, size, info, &table_off);
}

/* Container.md 6, checks 7-9, on the mapped file. */
static ann_status parse_table(ann_container *c, uint64_t table_off)
{
    const char *path = c->path;
    const uint64_t size = c->map_len;
    const uint32_t n = c->info.n_sections;
    if (table_off < HDR_SIZE)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section table offset %llu is inside the %d-byte header",
                             path, (unsigned long long)table_off, HDR_SIZE);
    const uint64_t table_len = (uint64_t)n * ENTRY_SIZE + TRAILER_SIZE;
    if (table_off > size || table_len > size - table_off)
        return ann_set_error(ANN_ERR_FORMAT,
                             "'%s': section table (%u entries at byte %llu) ends at byte %llu, past the "
                             "end of the file (%llu bytes)", path, n, (unsigned long long)table_off,
                             (unsigned long long)(table_off + table_len), (unsigned long long)size);
    const unsigned char *t = c->map + table_off;
    const uint32_t stored_crc = get_u32(t + (size_t)n * ENTRY_SIZE);
    const uint32_t crc = ann_crc32c(0, t, (size_t)n * ENTRY_SIZE);
    if (stored_crc != crc)
        return ann_set_error(ANN_ERR_CHECKSUM,
                             "'%s': section table checksum mismatch (stored 0x%08x, computed 0x%08x)", path,
                             stored_crc, crc);
    c->secs = calloc(n ? n : 1, sizeof *c->secs);
    if (!c->secs)
        return ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory for %u sections", path, n);
    const uint64_t table_end = table_off + table_len;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = t + (size_t)i * ENTRY_SIZE;
        rsection *s = &c->secs[i];
        if (memchr(e + E_NAME, 0, ANN_SECTION_NAME_MAX) == NULL)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': section %u: name is not NUL-terminated", path, i);
        memcpy(s->name, e + E_NAME, ANN_SECTION_NAME_MAX);
        if (s->name[0] == '\0')
            return ann_set_error(ANN_ERR_FORMAT, "'%s': section %u has an empty name", path, i);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(c->secs[j].name, s->name) == 0)
                return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' appears twice in the section table",
                                     path, s->name);
        s->offset = get_u64(e + E_OFFSET);
        s->stored = get_u64(e + E_STORED);
        s->raw = get_u64(e + E_RAW);
        s->codec = get_u32(e + E_CODEC);
        s->crc = get_u32(e + E_CRC);
        if (s->offset % SECTION_ALIGN != 0)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' offset %llu is not a multiple of %d", path,
                                 s->name, (unsigned long long)s->offset, SECTION_ALIGN);
        if (s->offset < HDR_SIZE)
            return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' starts at byte %llu, inside the %d-byte "
                                 "header", path, s->name, (unsigned long long)s->offset, HDR_SIZE);
        if (s->offset > size || s->stored > size - s->offset)
            return ann_set_error(ANN_ERR_FORMAT,
                                 "'%s': section '%s' ends at byte %llu, past the end of the file (%llu bytes)",
                                 path, s->name,
                                 (unsigned long long)(s->offset > UINT64_MAX - s->stored
                                                          ? UINT64_MAX : s->offset + s->stored),
                                 (unsigned long long)size);
        if (s->stored > 0 && s->offset < table_end && table_off < s->offset + s->stored)
            return ann_set_error(ANN_ERR_FORMAT,
                                 "'%s': section '%s' (bytes %llu to %llu) overlaps the section table (bytes "
                                 "%llu to %llu)", path, s->name, (unsigned long long)s->offset,
                                 (unsigned long long)(s->offset + s->stored), (unsigned long long)table_off,
                                 (unsigned long long)table_end);
        if (s->codec == ANN_CODEC_NONE && s->raw != s->stored)
            return ann_set_error(ANN_ERR_FORMAT,
                                 "'%s': section '%s' is stored raw but its raw size %llu differs from its "
                                 "stored size %llu", path, s->name, (unsigned long long)s->raw,
                                 (unsigned long long)s->stored);
        for (uint32_t j = 0; j < i; j++) {
            const rsection *o = &c->secs[j];
            if (s->stored > 0 && o->stored > 0 && s->offset < o->offset + o->stored &&
                o->offset < s->offset + s->stored)
                return ann_set_error(ANN_ERR_FORMAT, "'%s': sections '%s' and '%s' overlap (bytes %llu and %llu)",
                                     path, o->name, s->name, (unsigned long long)o->offset,
                                     (unsigned long long)s->offset);
        }
    }
    return ANN_OK;
}

/**
 * Open @p path: map it read-only (MAP_PRIVATE) and run container.md 6
 * checks 1-9.  The result is released with ann_container_close().
 * Errors: ANN_ERR_IO, ANN_ERR_FORMAT, ANN_ERR_VERSION, ANN_ERR_CHECKSUM,
 * ANN_ERR_NOMEM; the message names the file and the field.
 * Thread-safe; one container may be used from several threads.
 */
ann_status ann_container_open(const char *path, ann_container **out)
{
    *out = NULL;
    int fd;
    uint64_t size;
    ann_status st = open_file(path, &fd, &size);
    if (st != ANN_OK)
        return st;
    ann_container *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory", path);
    }
    pthread_mutex_init(&c->lock, NULL);
    c->path = strdup(path);
    if (!c->path) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': out of memory", path);
        goto cleanup;
    }
    uint64_t table_off;
    if (size < HDR_SIZE) {   /* too short to map usefully: read what is there for the message */
        unsigned char h[HDR_SIZE];
        ssize_t got = pread_full(fd, h, HDR_SIZE, 0);
        if (got < 0) {
            st = ann_set_error(ANN_ERR_IO, "'%s': read failed: %s", path, strerror(errno));
            goto cleanup;
        }
        st = parse_header(path, h, (size_t)got, size, &c->info, &table_off);
        if (st == ANN_OK)   /* cannot happen: fewer than 64 bytes */
            st = ann_set_error(ANN_ERR_FORMAT, "'%s': truncated", path);
        goto cleanup;
    }
    if (size > SIZE_MAX) {
        st = ann_set_error(ANN_ERR_NOMEM, "'%s': file too large to map", path);
        goto cleanup;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot map %llu bytes: %s", path, (unsigned long long)size,
                           strerror(errno));
        goto cleanup;
    }
    c->map = map;
    c->map_len = (size_t)size;
    st = parse_header(path, c->map, HDR_SIZE, size, &c->info, &table_off);
    if (st != ANN_OK)
        goto cleanup;
    st = parse_table(c, table_off);

cleanup:
    close(fd);
    if (st != ANN_OK) {
        ann_container_close(c);
        return st;
    }
    *out = c;
    return ANN_OK;
}

/** Header fields of @p c (valid until ann_container_close()). */
const ann_container_info *ann_container_header(const ann_container *c)
{
    return &c->info;
}

/** The path @p c was opened with (valid until ann_container_close()). */
const char *ann_container_path(const ann_container *c)
{
    return c->path;
}

static rsection *find_section(const ann_container *c, const char *name)
{
    for (uint32_t i = 0; i < c->info.n_sections; i++)
        if (strncmp(c->secs[i].name, name, ANN_SECTION_NAME_MAX) == 0)
            return &c->secs[i];
    return NULL;
}

/* Container.md 6, check 10: codec, checksum, zstd frame; sets s->data. Called under c->lock. */
static ann_status check_section(ann_container *c, rsection *s)
{
    const char *path = c->path;
    const unsigned char *bytes = c->map + s->offset;
    if (s->codec != ANN_CODEC_NONE && s->codec != ANN_CODEC_ZSTD)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' has unknown codec %u", path, s->name,
                             s->codec);
    const uint32_t crc = ann_crc32c(0, bytes, (size_t)s->stored);
    if (crc != s->crc)
        return ann_set_error(ANN_ERR_CHECKSUM, "'%s': section '%s' checksum mismatch (stored 0x%08x, computed "
                             "0x%08x)", path, s->name, s->crc, crc);
    if (s->codec == ANN_CODEC_NONE) {
        s->data = bytes;
        s->checked = true;
        return ANN_OK;
    }
    const unsigned long long fcs = ZSTD_getFrameContentSize(bytes, (size_t)s->stored);
    if (fcs == ZSTD_CONTENTSIZE_ERROR)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' is not a zstd frame", path, s->name);
    if (fcs == ZSTD_CONTENTSIZE_UNKNOWN)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s': zstd frame does not record its content size",
                             path, s->name);
    if (fcs != s->raw)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s': zstd frame holds %llu bytes, table raw size is "
                             "%llu", path, s->name, fcs, (unsigned long long)s->raw);
    const size_t fsz = ZSTD_findFrameCompressedSize(bytes, (size_t)s->stored);
    if (ZSTD_isError(fsz) || fsz != s->stored)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s': stored bytes are not exactly one zstd frame",
                             path, s->name);
    if (s->raw > SIZE_MAX / 2)
        return ann_set_error(ANN_ERR_NOMEM, "'%s': section '%s': raw size %llu is too large", path, s->name,
                             (unsigned long long)s->raw);
    void *buf = ann_aligned_calloc((size_t)s->raw);
    if (!buf)
        return ann_set_error(ANN_ERR_NOMEM, "'%s': section '%s': cannot allocate %llu bytes", path, s->name,
                             (unsigned long long)s->raw);
    const size_t r = ZSTD_decompress(buf, (size_t)s->raw, bytes, (size_t)s->stored);
    if (ZSTD_isError(r) || r != s->raw) {
        free(buf);
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s': zstd decompression failed: %s", path, s->name,
                             ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
    }
    s->decoded = buf;
    s->data = buf;
    s->checked = true;
    return ANN_OK;
}

/**
 * Fetch section @p name of @p c: @p data receives the raw bytes (in the
 * mapping for raw sections, in a 64-byte aligned heap buffer owned by
 * @p c for zstd ones) and @p size their count.  The first fetch of each
 * section verifies its checksum and decodes it.  Valid until
 * ann_container_close().  Thread-safe.
 * Errors: ANN_ERR_FORMAT ("'PATH': no section 'NAME'", bad zstd frame),
 * ANN_ERR_CHECKSUM, ANN_ERR_NOMEM.
 */
ann_status ann_container_get(ann_container *c, const char *name, const void **data, uint64_t *size)
{
    rsection *s = find_section(c, name);
    if (!s)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': no section '%s'", c->path, name);
    ann_status st = ANN_OK;
    pthread_mutex_lock(&c->lock);
    if (!s->checked)
        st = check_section(c, s);
    pthread_mutex_unlock(&c->lock);
    if (st != ANN_OK)
        return st;
    *data = s->data;
    if (size)
        *size = s->raw;
    return ANN_OK;
}

/**
 * ann_container_get() that also requires the section to hold exactly
 * @p expect bytes.  Errors: as ann_container_get(), and ANN_ERR_FORMAT
 * "'PATH': section 'NAME' holds N bytes, expected M".
 */
ann_status ann_container_get_sized(ann_container *c, const char *name, uint64_t expect, const void **data)
{
    uint64_t size;
    const void *p;
    ann_status st = ann_container_get(c, name, &p, &size);
    if (st != ANN_OK)
        return st;
    if (size != expect)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': section '%s' holds %llu bytes, expected %llu", c->path, name,
                             (unsigned long long)size, (unsigned long long)expect);
    *data = p;
    return ANN_OK;
}

/** True when @p c has a section called @p name (no checksum check). */
bool ann_container_has(const ann_container *c, const char *name)
{
    return find_section(c, name) != NULL;
}

/**
 * Describe section @p i in table order: @p name (valid until close),
 * @p stored and @p raw sizes in bytes, @p codec.  Any output pointer may
 * be NULL.  Errors: ANN_ERR_INVALID_ARG when @p i >= n_sections.
 */
ann_status ann_container_section_info(const ann_container *c, uint32_t i, const char **name,
                                      uint64_t *stored, uint64_t *raw, ann_codec *codec)
{
    if (i >= c->info.n_sections)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': section index %u out of range (%u sections)", c->path,
                             i, c->info.n_sections);
    const rsection *s = &c->secs[i];
    if (name)
        *name = s->name;
    if (stored)
        *stored = s->stored;
    if (raw)
        *raw = s->raw;
    if (codec)
        *codec = (ann_codec)s->codec;
    return ANN_OK;
}

/** Unmap @p c and free its decoded sections; NULL is allowed. */
void ann_container_close(ann_container *c)
{
    if (!c)
        return;
    if (c->secs)
        for (uint32_t i = 0; i < c->info.n_sections; i++)
            free(c->secs[i].decoded);
    free(c->secs);
    if (c->map)
        munmap((void *)c->map, c->map_len);
    pthread_mutex_destroy(&c->lock);
    free(c->path);
    free(c);
}

/* ------------------------------ meta -------------------------------- */

/**
 * Find @p key in the meta text @p meta of @p len bytes (container.md 7:
 * "key=value" lines; empty lines and lines starting with '#' are
 * skipped; a trailing '\r' is ignored).  The first match's value is
 * copied to @p buf (truncated to @p buf_len - 1 bytes, NUL-terminated;
 * @p buf may be NULL to test presence).  Returns false when absent.
 */
bool ann_meta_get(const char *meta, size_t len, const char *key, char *buf, size_t buf_len)
{
    const size_t klen = strlen(key);
    const char *p = meta, *end = meta + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ve = le;
        if (ve > p && ve[-1] == '\r')
            ve--;
        if (ve > p && *p != '#' && (size_t)(ve - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            if (buf && buf_len > 0) {
                size_t vlen = (size_t)(ve - (p + klen + 1));
                if (vlen > buf_len - 1)
                    vlen = buf_len - 1;
                memcpy(buf, p + klen + 1, vlen);
                buf[vlen] = '\0';
            }
            return true;
        }
        p = le + 1;
    }
    return false;
}

/**
 * ann_meta_get() for a decimal integer (an optional sign, digits, nothing
 * else).  @p what names the file in the message, normally the container's
 * path: "'PATH': meta key 'n_lists' is missing" or "... is not an
 * integer ('abc')".  Errors: ANN_ERR_FORMAT.
 */
ann_status ann_meta_get_i64(const char *meta, size_t len, const char *key, const char *what, int64_t *out)
{
    char buf[64];
    if (!ann_meta_get(meta, len, key, buf, sizeof buf))
        return ann_set_error(ANN_ERR_FORMAT, "'%s': meta key '%s' is missing", what, key);
    char *end;
    errno = 0;
    const long long v = strtoll(buf, &end, 10);
    if (buf[0] == '\0' || *end != '\0' || errno == ERANGE || buf[0] == ' ' || buf[0] == '\t')
        return ann_set_error(ANN_ERR_FORMAT, "'%s': meta key '%s' is not an integer ('%s')", what, key, buf);
    *out = (int64_t)v;
    return ANN_OK;
}

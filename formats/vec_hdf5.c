/*
 * vec_hdf5.c - ann-benchmarks HDF5 dataset files (erikbern/ann-benchmarks
 * ann_benchmarks/datasets.py; notes/formats-and-anchors.md section 3;
 * formats/vectors.md "hdf5").
 *
 * An ann-benchmarks file holds 2-D datasets at the root ("train", "test",
 * "neighbors", "distances") and a string attribute "distance" on the root
 * group.  Published files use float32/int32, newer ones int64/float64, so
 * the reader accepts 8-, 16-, 32- and 64-bit integers and 16-, 32- and
 * 64-bit floats (and h5py's int8-based bool enum) and returns the file's
 * own type (16-bit integers widen to I32).  A dataset of rank r >= 1 has
 * dim0 rows and the product of the other dimensions as columns.  Row
 * ranges are read with one hyperslab H5Dread straight into the result.
 *
 * The writer makes what h5py makes for `f.create_dataset(name, data=a)`
 * and `f.attrs['distance'] = 'euclidean'`: a contiguous, uncompressed,
 * little-endian dataset and a scalar variable-length UTF-8 string
 * attribute, so h5py reads the attribute back as str.
 *
 * HDF5's automatic error printing is switched off around every call
 * sequence (the library never prints); the HDF5 error stack supplies the
 * detail of our messages.  Debian's HDF5 is the thread-safe build, so
 * these functions may be called from several threads (they serialise on
 * HDF5's global lock) but not from inside OpenMP regions doing other work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "vec_internal.h"

static const unsigned char hdf5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* ------------------------- error handling --------------------------- */

/* Saved automatic error handler, restored when a call sequence ends. */
typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

static void quiet_begin(h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct walk_ctx {
    char outer[160], inner[160];
} walk_ctx;

static herr_t walk_cb(unsigned n, const H5E_error2_t *err, void *data)
{
    walk_ctx *w = data;
    if (n == 0)
        snprintf(w->outer, sizeof w->outer, "%s", err->desc ? err->desc : "");
    snprintf(w->inner, sizeof w->inner, "%s", err->desc ? err->desc : "");
    return 0;
}

/* The HDF5 error stack of the calling thread as one phrase ("unable to open file (file signature not found)"). */
static const char *h5_detail(char *buf, size_t len)
{
    walk_ctx w = {{0}, {0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
    if (w.outer[0] == '\0')
        snprintf(buf, len, "HDF5 error");
    else if (strcmp(w.outer, w.inner) == 0 || w.inner[0] == '\0')
        snprintf(buf, len, "%s", w.outer);
    else
        snprintf(buf, len, "%s (%s)", w.outer, w.inner);
    return buf;
}

/* ----------------------------- files -------------------------------- */

/* True when @p path starts with the HDF5 signature (at 0 or at a user-block offset 512, 1024, ...). */
static bool has_hdf5_magic(int fd, uint64_t size)
{
    unsigned char b[8];
    for (uint64_t off = 0; off + 8 <= size; off = off ? off * 2 : 512) {
        if (pread(fd, b, 8, (off_t)off) != 8)
            return false;
        if (memcmp(b, hdf5_magic, 8) == 0)
            return true;
        if (off > ((uint64_t)1 << 40))
            break;
    }
    return false;
}

/*
 * Check that @p path can be opened and is an HDF5 file, so that the
 * common failures get errno text or a plain "not an HDF5 file" instead of
 * an HDF5 stack.  Errors: ANN_ERR_IO, ANN_ERR_FORMAT.
 */
static ann_status precheck(const char *path)
{
    if (strcmp(path, "-") == 0)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'-': HDF5 cannot be read from or written to a pipe");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
    struct stat sb;
    ann_status st = ANN_OK;
    if (fstat(fd, &sb) != 0)
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        st = ann_set_error(ANN_ERR_IO, "'%s': is a directory", path);
    else if (!has_hdf5_magic(fd, (uint64_t)sb.st_size))
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': not an HDF5 file (no HDF5 signature)", path);
    close(fd);
    return st;
}

/*
 * File access properties: HDF5 >= 1.10.7 may ignore file-locking failures
 * on file systems that do not support locks (NFS, some containers), which
 * would otherwise make every open fail with "unable to lock file".
 * Returns H5P_DEFAULT or a property list to close with close_fapl().
 */
static hid_t make_fapl(void)
{
#if H5_VERSION_GE(1, 10, 7)
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_file_locking(fapl, 1, 1) >= 0)
        return fapl;
    if (fapl >= 0)
        H5Pclose(fapl);
#endif
    return H5P_DEFAULT;
}

static void close_fapl(hid_t fapl)
{
    if (fapl != H5P_DEFAULT)
        H5Pclose(fapl);
}

static ann_status open_read(const char *path, hid_t *f)
{
    ann_status st = precheck(path);
    if (st != ANN_OK)
        return st;
    const hid_t fapl = make_fapl();
    *f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char d[400];
    if (*f < 0)
        h5_detail(d, sizeof d);   /* before the next HDF5 call clears the error stack */
    close_fapl(fapl);
    if (*f < 0)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': HDF5 cannot open the file: %s", path, d);
    return ANN_OK;
}

/* ------------------------ dataset listing --------------------------- */

typedef struct list_ctx {
    char *buf;
    size_t len, used;
    const char *sep;
    bool truncated;
} list_ctx;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    list_ctx *c = data;
    (void)info;
    hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
    if (obj < 0)
        return 0;   /* dangling link: not a dataset */
    const bool is_dataset = H5Iget_type(obj) == H5I_DATASET;
    H5Oclose(obj);
    if (!is_dataset)
        return 0;
    const size_t need = strlen(name) + (c->used ? strlen(c->sep) : 0);
    if (c->used + need + 4 >= c->len) {
        c->truncated = true;
        return 1;   /* stop: the buffer is full */
    }
    c->used += (size_t)snprintf(c->buf + c->used, c->len - c->used, "%s%s", c->used ? c->sep : "", name);
    return 0;
}

/* The root datasets of @p f in creation order when the file tracks it, else by name. */
static void list_datasets(hid_t f, char *buf, size_t len, const char *sep)
{
    list_ctx c = {buf, len, 0, sep, false};
    buf[0] = '\0';
    if (H5Literate(f, H5_INDEX_CRT_ORDER, H5_ITER_INC, NULL, list_cb, &c) < 0) {
        c.used = 0;
        c.truncated = false;
        buf[0] = '\0';
        H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &c);
    }
    if (c.truncated && c.used + 4 < len)
        snprintf(buf + c.used, len - c.used, "%s...", c.used ? sep : "");
    if (c.used == 0 && !c.truncated)
        snprintf(buf, len, "none");
}

/* True when the link path @p name (possibly "grp/ds") exists in @p f, checked component by component. */
static bool link_exists(hid_t f, const char *name)
{
    char part[1024];
    if (strlen(name) >= sizeof part)
        return false;
    for (const char *p = name; (p = strchr(p, '/')) != NULL; p++) {
        const size_t n = (size_t)(p - name);
        if (n == 0)
            continue;
        memcpy(part, name, n);
        part[n] = '\0';
        if (H5Lexists(f, part, H5P_DEFAULT) <= 0)
            return false;
    }
    return H5Lexists(f, name, H5P_DEFAULT) > 0;
}

/* Open dataset @p name of @p f, or fail listing the datasets that exist. */
static ann_status open_dataset(hid_t f, const char *path, const char *name, hid_t *d)
{
    char list[512];
    if (name[0] == '\0') {
        list_datasets(f, list, sizeof list, ", ");
        return ann_set_error(ANN_ERR_FORMAT, "'%s': name a dataset as PATH:NAME (datasets: %s)", path, list);
    }
    if (!link_exists(f, name)) {
        list_datasets(f, list, sizeof list, ", ");
        return ann_set_error(ANN_ERR_FORMAT, "'%s': no dataset '%s' (datasets: %s)", path, name, list);
    }
    *d = H5Dopen2(f, name, H5P_DEFAULT);
    if (*d < 0) {
        list_datasets(f, list, sizeof list, ", ");
        return ann_set_error(ANN_ERR_FORMAT, "'%s': '%s' is not a dataset (datasets: %s)", path, name, list);
    }
    return ANN_OK;
}

/* ----------------------------- types -------------------------------- */

/* IEEE binary16, little-endian, as h5py defines numpy's float16. */
static hid_t make_f16_type(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0)
        return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/*
 * Our dtype for file type @p ft and a memory type (a copy the caller
 * closes) that makes H5Dread deliver it.  Errors: ANN_ERR_UNSUPPORTED.
 */
static ann_status map_type(const char *path, const char *name, hid_t ft, ann_dtype *dt, hid_t *mt)
{
    const H5T_class_t cls = H5Tget_class(ft);
    const size_t size = H5Tget_size(ft);
    hid_t base = -1;
    *mt = -1;
    if (cls == H5T_INTEGER) {
        const bool sgn = H5Tget_sign(ft) == H5T_SGN_2;
        if (size == 1) {
            *dt = sgn ? ANN_DTYPE_I8 : ANN_DTYPE_U8;
            base = sgn ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8;
        } else if (size == 2) {
            *dt = ANN_DTYPE_I32;
            base = H5T_NATIVE_INT32;
        } else if (size == 4) {
            *dt = sgn ? ANN_DTYPE_I32 : ANN_DTYPE_U32;
            base = sgn ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32;
        } else if (size == 8 && sgn) {
            *dt = ANN_DTYPE_I64;
            base = H5T_NATIVE_INT64;
        }
    } else if (cls == H5T_FLOAT) {
        if (size == 4) {
            *dt = ANN_DTYPE_F32;
            base = H5T_NATIVE_FLOAT;
        } else if (size == 8) {
            *dt = ANN_DTYPE_F64;
            base = H5T_NATIVE_DOUBLE;
        } else if (size == 2) {
            *dt = ANN_DTYPE_F16;
            *mt = make_f16_type();
        }
    } else if (cls == H5T_ENUM && size == 1) {   /* h5py's bool: enum over int8 */
        hid_t super = H5Tget_super(ft);
        const bool sgn = super >= 0 && H5Tget_sign(super) == H5T_SGN_2;
        if (super >= 0)
            H5Tclose(super);
        *dt = sgn ? ANN_DTYPE_I8 : ANN_DTYPE_U8;
        *mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
    }
    if (base >= 0)
        *mt = H5Tcopy(base);
    if (*mt < 0) {
        static const char *const class_names[] = {"integer", "float", "time", "string", "bitfield", "opaque",
                                                  "compound", "reference", "enum", "variable-length", "array"};
        const char *cn = cls >= 0 && (size_t)cls < sizeof class_names / sizeof class_names[0] ? class_names[cls] : "?";
        return ann_set_error(ANN_ERR_UNSUPPORTED,
                             "'%s': dataset '%s' has %zu-byte %s elements (expected integers of 1, 2, 4 or 8 bytes "
                             "or floats of 2, 4 or 8 bytes)", path, name, size, cn);
    }
    return ANN_OK;
}

/* File type (a copy to close) for writing @p dt, little-endian as h5py writes on x86. */
static hid_t file_type(ann_dtype dt)
{
    switch (dt) {
    case ANN_DTYPE_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case ANN_DTYPE_F16: return make_f16_type();
    case ANN_DTYPE_I8: return H5Tcopy(H5T_STD_I8LE);
    case ANN_DTYPE_U8: return H5Tcopy(H5T_STD_U8LE);
    case ANN_DTYPE_I32: return H5Tcopy(H5T_STD_I32LE);
    case ANN_DTYPE_U32: return H5Tcopy(H5T_STD_U32LE);
    case ANN_DTYPE_I64: return H5Tcopy(H5T_STD_I64LE);
    case ANN_DTYPE_F64: return H5Tcopy(H5T_IEEE_F64LE);
    }
    return -1;
}

/* Memory type (a copy to close) of host elements of @p dt. */
static hid_t mem_type(ann_dtype dt)
{
    switch (dt) {
    case ANN_DTYPE_F32: return H5Tcopy(H5T_NATIVE_FLOAT);
    case ANN_DTYPE_F16: return make_f16_type();
    case ANN_DTYPE_I8: return H5Tcopy(H5T_NATIVE_INT8);
    case ANN_DTYPE_U8: return H5Tcopy(H5T_NATIVE_UINT8);
    case ANN_DTYPE_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case ANN_DTYPE_U32: return H5Tcopy(H5T_NATIVE_UINT32);
    case ANN_DTYPE_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case ANN_DTYPE_F64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    }
    return -1;
}

/* Rows (dim0) and columns (product of the rest) of dataset @p d. */
static ann_status dataset_shape(hid_t d, const char *path, const char *name, int *rank_out, int64_t *rows,
                                int64_t *cols)
{
    hid_t sp = H5Dget_space(d);
    ann_status st = ANN_OK;
    hsize_t dims[H5S_MAX_RANK];
    const int rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (rank < 0 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        char dd[400];
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': dataset '%s': cannot read its shape: %s", path, name,
                           h5_detail(dd, sizeof dd));
    } else if (rank == 0) {
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': dataset '%s' is a scalar, not a matrix", path, name);
    } else {
        int64_t c = 1;
        for (int i = 1; i < rank; i++)
            if (__builtin_mul_overflow(c, (int64_t)dims[i], &c))
                st = ann_set_error(ANN_ERR_FORMAT, "'%s': dataset '%s' is too large", path, name);
        *rows = (int64_t)dims[0];
        *cols = c;
        *rank_out = rank;
    }
    if (sp >= 0)
        H5Sclose(sp);
    return st;
}

/* The root attribute 'distance' as text into @p buf ("" when absent or not a string). */
static void read_distance(hid_t f, char *buf, size_t len)
{
    buf[0] = '\0';
    if (H5Aexists(f, "distance") <= 0)
        return;
    hid_t a = H5Aopen(f, "distance", H5P_DEFAULT);
    hid_t ft = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hid_t mt = -1;
    if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        goto cleanup;
    mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(buf, len, "%s", s);
            H5free_memory(s);
        }
    } else {
        const size_t n = H5Tget_size(ft);
        char *s = calloc(1, n + 1);
        H5Tset_size(mt, n + 1);   /* room for the terminator whatever the file's padding */
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (s && H5Aread(a, mt, s) >= 0)
            snprintf(buf, len, "%s", s);
        free(s);
    }
cleanup:
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
}

/* ----------------------------- reading ------------------------------ */

/**
 * Read rows o->row_begin..o->row_end of dataset @p name ("train", or a
 * path "grp/ds") of the HDF5 file @p path into a new heap matrix @p out
 * in the dataset's own type (16-bit integers widen to I32).  An empty
 * @p name is an error that lists the root datasets.
 * Errors: ANN_ERR_IO, ANN_ERR_FORMAT ("'d.hdf5': no dataset 'tset'
 * (datasets: train, test, neighbors, distances)", not HDF5, scalar),
 * ANN_ERR_UNSUPPORTED (element type), ANN_ERR_INVALID_ARG (row range),
 * ANN_ERR_NOMEM.
 */
ann_status annv_hdf5_read(const char *path, const char *name, const ann_read_opts *o, ann_matrix *out)
{
    h5_quiet q;
    hid_t f = -1, d = -1, ft = -1, mt = -1, fs = -1, ms = -1;
    int rank = 0;
    int64_t rows = 0, cols = 0, b = 0, e = 0;
    ann_dtype dt = ANN_DTYPE_F32;
    memset(out, 0, sizeof *out);
    quiet_begin(&q);
    ann_status st = open_read(path, &f);
    if (st == ANN_OK)
        st = open_dataset(f, path, name, &d);
    if (st == ANN_OK)
        st = dataset_shape(d, path, name, &rank, &rows, &cols);
    if (st == ANN_OK) {
        ft = H5Dget_type(d);
        st = map_type(path, name, ft, &dt, &mt);
    }
    if (st == ANN_OK)
        st = annv_resolve_rows(path, o, rows, &b, &e);
    if (st == ANN_OK)
        st = ann_matrix_alloc(out, e - b, cols, dt);
    if (st != ANN_OK || e == b || cols == 0)
        goto cleanup;

    hsize_t dims[H5S_MAX_RANK], start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
    fs = H5Dget_space(d);
    H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 0; i < rank; i++)
        count[i] = dims[i];
    start[0] = (hsize_t)b;
    count[0] = (hsize_t)(e - b);
    const hsize_t mdims[1] = {(hsize_t)(e - b) * (hsize_t)cols};
    ms = H5Screate_simple(1, mdims, NULL);
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, mt, ms, fs, H5P_DEFAULT, out->data) < 0) {
        char dd[400];
        st = ann_set_error(ANN_ERR_FORMAT, "'%s': reading dataset '%s' failed: %s", path, name,
                           h5_detail(dd, sizeof dd));
        ann_matrix_release(out);
    }
cleanup:
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    if (st != ANN_OK)
        ann_matrix_release(out);
    quiet_end(&q);
    return st;
}

/**
 * Describe the HDF5 file @p path: info->hdf5_datasets (comma-separated
 * root datasets) and info->hdf5_distance always; with a dataset @p name
 * also its dtype, rows and cols (without @p name they stay 0 and the call
 * succeeds, for `annconvert --info`).  Errors as annv_hdf5_read().
 */
ann_status annv_hdf5_probe(const char *path, const char *name, ann_vectors_info *info)
{
    h5_quiet q;
    hid_t f = -1, d = -1, ft = -1, mt = -1;
    int rank;
    quiet_begin(&q);
    ann_status st = open_read(path, &f);
    if (st != ANN_OK)
        goto cleanup;
    list_datasets(f, info->hdf5_datasets, sizeof info->hdf5_datasets, ",");
    if (strcmp(info->hdf5_datasets, "none") == 0)
        info->hdf5_datasets[0] = '\0';
    read_distance(f, info->hdf5_distance, sizeof info->hdf5_distance);
    if (name[0] == '\0')
        goto cleanup;
    st = open_dataset(f, path, name, &d);
    if (st == ANN_OK)
        st = dataset_shape(d, path, name, &rank, &info->rows, &info->cols);
    if (st == ANN_OK) {
        ft = H5Dget_type(d);
        st = map_type(path, name, ft, &info->dtype, &mt);
    }
cleanup:
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    quiet_end(&q);
    return st;
}

/* ----------------------------- writing ------------------------------ */

/* Set the root attribute 'distance' to @p value as h5py does for a str: scalar, variable-length UTF-8. */
static ann_status write_distance(hid_t f, const char *path, const char *value)
{
    ann_status st = ANN_OK;
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
    if (t < 0 || sp < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        H5Tset_strpad(t, H5T_STR_NULLTERM) < 0 || (H5Aexists(f, "distance") > 0 && H5Adelete(f, "distance") < 0) ||
        (a = H5Acreate2(f, "distance", t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, t, &value) < 0) {
        char dd[400];
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot write the attribute 'distance': %s", path,
                           h5_detail(dd, sizeof dd));
    }
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

/* Write the rows of a strided matrix through a contiguous buffer, a block of rows at a time. */
static herr_t write_strided(hid_t d, hid_t mt, const ann_matrix *m)
{
    const size_t rb = (size_t)m->cols * ann_dtype_size(m->dtype);
    const int64_t block = rb >= ((size_t)8 << 20) ? 1 : (int64_t)(((size_t)8 << 20) / rb);
    unsigned char *buf = malloc((size_t)(block < m->rows ? block : m->rows) * rb);
    hid_t fs = H5Dget_space(d);
    herr_t rc = buf && fs >= 0 ? 0 : -1;
    for (int64_t i = 0; i < m->rows && rc >= 0; i += block) {
        const int64_t n = m->rows - i < block ? m->rows - i : block;
        for (int64_t r = 0; r < n; r++)
            memcpy(buf + (size_t)r * rb, ann_matrix_row(m, i + r), rb);
        const hsize_t start[2] = {(hsize_t)i, 0}, count[2] = {(hsize_t)n, (hsize_t)m->cols};
        hid_t ms = H5Screate_simple(2, count, NULL);
        rc = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        if (rc >= 0)
            rc = H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, buf);
        if (ms >= 0)
            H5Sclose(ms);
    }
    if (fs >= 0)
        H5Sclose(fs);
    free(buf);
    return rc;
}

/**
 * Write @p m (any dtype) as the 2-D dataset @p name of HDF5 file
 * @p path: a new file, or with o->hdf5_append an existing one (created
 * when absent) to which the dataset is added; an existing dataset of that
 * name is an error unless o->hdf5_replace.  o->hdf5_distance, when not
 * NULL, sets the root attribute 'distance'.  Contiguous, uncompressed,
 * little-endian, as h5py and ann-benchmarks write.  A new file is removed
 * again when writing fails.
 * Errors: ANN_ERR_INVALID_ARG (no dataset name, dataset exists),
 * ANN_ERR_FORMAT (append target is not HDF5), ANN_ERR_IO, ANN_ERR_NOMEM.
 */
ann_status annv_hdf5_write(const char *path, const char *name, const ann_matrix *m, const ann_write_opts *o)
{
    h5_quiet q;
    hid_t f = -1, d = -1, ft = -1, mt = -1, sp = -1, lcpl = -1;
    bool created = false;
    char dd[400];
    ann_status st = annv_check_matrix(path, m);
    if (st != ANN_OK)
        return st;
    if (name[0] == '\0')
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': writing HDF5 needs a dataset name (PATH:NAME)", path);
    if (strcmp(path, "-") == 0)
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'-': HDF5 cannot be written to a pipe");
    quiet_begin(&q);
    struct stat sb;
    if (o->hdf5_append && stat(path, &sb) == 0) {
        st = precheck(path);
        if (st != ANN_OK)
            goto cleanup;
        const hid_t fapl = make_fapl();
        f = H5Fopen(path, H5F_ACC_RDWR, fapl);
        if (f < 0)
            h5_detail(dd, sizeof dd);   /* before the next HDF5 call clears the error stack */
        close_fapl(fapl);
        if (f < 0) {
            st = ann_set_error(ANN_ERR_IO, "'%s': HDF5 cannot open the file for writing: %s", path, dd);
            goto cleanup;
        }
        if (link_exists(f, name)) {
            if (!o->hdf5_replace) {
                st = ann_set_error(ANN_ERR_INVALID_ARG, "'%s': dataset '%s' already exists", path, name);
                goto cleanup;
            }
            if (H5Ldelete(f, name, H5P_DEFAULT) < 0) {
                st = ann_set_error(ANN_ERR_IO, "'%s': cannot replace dataset '%s': %s", path, name,
                                   h5_detail(dd, sizeof dd));
                goto cleanup;
            }
        }
    } else {
        /* create it ourselves first, for a plain errno message when the directory is missing or read-only */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            st = ann_set_error(ANN_ERR_IO, "'%s': cannot create: %s", path, strerror(errno));
            goto cleanup;
        }
        close(fd);
        created = true;
        const hid_t fapl = make_fapl();
        f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (f < 0)
            h5_detail(dd, sizeof dd);
        close_fapl(fapl);
        if (f < 0) {
            st = ann_set_error(ANN_ERR_IO, "'%s': HDF5 cannot create the file: %s", path, dd);
            goto cleanup;
        }
    }
    ft = file_type(m->dtype);
    mt = mem_type(m->dtype);
    const hsize_t dims[2] = {(hsize_t)m->rows, (hsize_t)m->cols};
    sp = H5Screate_simple(2, dims, NULL);
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0)
        H5Pset_create_intermediate_group(lcpl, 1);
    /* no modification times in the dataset headers: the same data gives the same bytes (as h5py does) */
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl >= 0)
        H5Pset_obj_track_times(dcpl, 0);
    d = ft < 0 || mt < 0 || sp < 0 ? -1 : H5Dcreate2(f, name, ft, sp, lcpl, dcpl >= 0 ? dcpl : H5P_DEFAULT, H5P_DEFAULT);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (d < 0) {
        st = ann_set_error(ANN_ERR_IO, "'%s': cannot create dataset '%s': %s", path, name, h5_detail(dd, sizeof dd));
        goto cleanup;
    }
    if (m->rows > 0 && m->cols > 0) {
        const bool contiguous = m->rows == 1 || m->stride == m->cols * (int64_t)ann_dtype_size(m->dtype);
        const herr_t rc = contiguous ? H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->data)
                                     : write_strided(d, mt, m);
        if (rc < 0) {
            st = ann_set_error(ANN_ERR_IO, "'%s': writing dataset '%s' failed: %s", path, name,
                               h5_detail(dd, sizeof dd));
            goto cleanup;
        }
    }
    if (o->hdf5_distance)
        st = write_distance(f, path, o->hdf5_distance);
cleanup:
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (d >= 0 && H5Dclose(d) < 0 && st == ANN_OK)
        st = ann_set_error(ANN_ERR_IO, "'%s': closing dataset '%s' failed: %s", path, name, h5_detail(dd, sizeof dd));
    if (f >= 0 && H5Fclose(f) < 0 && st == ANN_OK)
        st = ann_set_error(ANN_ERR_IO, "'%s': closing the file failed: %s", path, h5_detail(dd, sizeof dd));
    if (st != ANN_OK && created)
        unlink(path);
    quiet_end(&q);
    return st;
}

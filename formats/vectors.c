/*
 * vectors.c - the public vector-file API of ann/vectors.h: format names,
 * "PATH[:NAME]" specs, format detection, and dispatch of read, probe and
 * write to the per-format modules (formats/vec_*.c).
 *
 * Detection (formats/vectors.md "Detection"): the magic bytes of an
 * existing file win (annkit container, npy, HDF5, gzip-compressed or
 * plain idx), then the extension; "-" is text unless a format is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ann/container.h"
#include "vec_internal.h"

/** Name of @p f as --format spells it ("auto" for AUTO, "?" if unknown). */
const char *ann_vformat_name(ann_vformat f)
{
    switch (f) {
    case ANN_VFMT_AUTO: return "auto";
    case ANN_VFMT_HDF5: return "hdf5";
    case ANN_VFMT_FVECS: return "fvecs";
    case ANN_VFMT_IVECS: return "ivecs";
    case ANN_VFMT_BVECS: return "bvecs";
    case ANN_VFMT_FBIN: return "bin";
    case ANN_VFMT_NPY: return "npy";
    case ANN_VFMT_IDX: return "idx";
    case ANN_VFMT_TEXT: return "text";
    case ANN_VFMT_ANNKIT: return "annkit";
    }
    return "?";
}

static const struct { const char *name; ann_vformat f; } vformat_names[] = {
    {"auto", ANN_VFMT_AUTO},   {"hdf5", ANN_VFMT_HDF5},   {"h5", ANN_VFMT_HDF5},     {"fvecs", ANN_VFMT_FVECS},
    {"ivecs", ANN_VFMT_IVECS}, {"bvecs", ANN_VFMT_BVECS}, {"bin", ANN_VFMT_FBIN},    {"fbin", ANN_VFMT_FBIN},
    {"ibin", ANN_VFMT_FBIN},   {"u8bin", ANN_VFMT_FBIN},  {"i8bin", ANN_VFMT_FBIN},  {"f16bin", ANN_VFMT_FBIN},
    {"npy", ANN_VFMT_NPY},     {"idx", ANN_VFMT_IDX},     {"text", ANN_VFMT_TEXT},   {"tsv", ANN_VFMT_TEXT},
    {"txt", ANN_VFMT_TEXT},    {"csv", ANN_VFMT_TEXT},    {"annkit", ANN_VFMT_ANNKIT},
};

/**
 * Parse a --format name (case-insensitive): the names of
 * ann_vformat_name() plus "auto", "h5", "fbin", "ibin", "u8bin", "i8bin",
 * "f16bin", "tsv", "txt", "csv".  Errors: ANN_ERR_INVALID_ARG.
 */
ann_status ann_vformat_parse(const char *name, ann_vformat *out)
{
    for (size_t i = 0; i < sizeof vformat_names / sizeof vformat_names[0]; i++)
        if (strcasecmp(name, vformat_names[i].name) == 0) {
            *out = vformat_names[i].f;
            return ANN_OK;
        }
    return ann_set_error(ANN_ERR_INVALID_ARG,
                         "unknown format '%s' (expected hdf5, fvecs, ivecs, bvecs, bin, fbin, ibin, u8bin, i8bin, "
                         "f16bin, npy, idx, text, annkit)", name);
}

/* True for extensions that mark an HDF5 file. */
static bool hdf5_ext(const char *ext)
{
    return strcmp(ext, "hdf5") == 0 || strcmp(ext, "h5") == 0 || strcmp(ext, "he5") == 0;
}

/**
 * Split @p spec into @p path and HDF5 dataset @p name (see
 * ann/vectors.h).  An existing file named by the whole spec is taken as
 * is; otherwise the rightmost ':' whose prefix is an existing file or
 * ends in .hdf5/.h5 splits it.
 * Errors: ANN_ERR_INVALID_ARG (a part does not fit its buffer).
 */
ann_status ann_spec_split(const char *spec, char *path, size_t path_len, char *name, size_t name_len)
{
    size_t cut = strlen(spec);   /* length of the path part */
    struct stat sb;
    if (stat(spec, &sb) != 0) {
        char buf[4096];
        for (const char *c = strrchr(spec, ':'); c; ) {
            const size_t n = (size_t)(c - spec);
            if (n > 0 && n < sizeof buf) {
                char ext[16];
                memcpy(buf, spec, n);
                buf[n] = '\0';
                annv_extension(buf, ext, sizeof ext);
                if (hdf5_ext(ext) || stat(buf, &sb) == 0) {
                    cut = n;
                    break;
                }
            }
            /* previous ':' */
            const char *p = c;
            c = NULL;
            while (p > spec) {
                p--;
                if (*p == ':') {
                    c = p;
                    break;
                }
            }
        }
    }
    const char *nm = spec[cut] == ':' ? spec + cut + 1 : "";
    if (cut >= path_len || strlen(nm) >= name_len)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': path or dataset name is too long", spec);
    memcpy(path, spec, cut);
    path[cut] = '\0';
    memcpy(name, nm, strlen(nm) + 1);
    return ANN_OK;
}

/* Format and element type from the extension of @p path; false when the extension tells nothing. */
static bool detect_by_extension(const char *path, ann_vformat *fmt, ann_dtype *elem)
{
    static const struct { const char *ext; ann_vformat f; ann_dtype t; } exts[] = {
        {"hdf5", ANN_VFMT_HDF5, ANN_DTYPE_F32},   {"h5", ANN_VFMT_HDF5, ANN_DTYPE_F32},
        {"he5", ANN_VFMT_HDF5, ANN_DTYPE_F32},    {"fvecs", ANN_VFMT_FVECS, ANN_DTYPE_F32},
        {"ivecs", ANN_VFMT_IVECS, ANN_DTYPE_I32}, {"bvecs", ANN_VFMT_BVECS, ANN_DTYPE_U8},
        {"fbin", ANN_VFMT_FBIN, ANN_DTYPE_F32},   {"bin", ANN_VFMT_FBIN, ANN_DTYPE_F32},
        {"ibin", ANN_VFMT_FBIN, ANN_DTYPE_I32},   {"u8bin", ANN_VFMT_FBIN, ANN_DTYPE_U8},
        {"i8bin", ANN_VFMT_FBIN, ANN_DTYPE_I8},   {"f16bin", ANN_VFMT_FBIN, ANN_DTYPE_F16},
        {"npy", ANN_VFMT_NPY, ANN_DTYPE_F32},     {"idx", ANN_VFMT_IDX, ANN_DTYPE_F32},
        {"txt", ANN_VFMT_TEXT, ANN_DTYPE_F32},    {"tsv", ANN_VFMT_TEXT, ANN_DTYPE_F32},
        {"csv", ANN_VFMT_TEXT, ANN_DTYPE_F32},    {"text", ANN_VFMT_TEXT, ANN_DTYPE_F32},
    };
    char ext[16];
    *elem = ANN_DTYPE_F32;
    if (strcmp(path, "-") == 0) {
        *fmt = ANN_VFMT_TEXT;
        return true;
    }
    annv_extension(path, ext, sizeof ext);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcmp(ext, exts[i].ext) == 0) {
            *fmt = exts[i].f;
            *elem = exts[i].t;
            return true;
        }
    /* MNIST names: train-images-idx3-ubyte, t10k-labels-idx1-ubyte(.gz) */
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (strstr(base, "-ubyte") || (strstr(base, "-idx") && strstr(base, "ubyte"))) {
        *fmt = ANN_VFMT_IDX;
        return true;
    }
    return false;
}

/* Format from the first bytes of @p path when it is an existing regular file; false when they tell nothing. */
static bool detect_by_magic(const char *path, ann_vformat *fmt)
{
    static const unsigned char annkit_magic[8] = {0x89, 'A', 'N', 'N', 'K', 'I', 'T', '\n'};
    static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    static const unsigned char hdf5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    struct stat sb;
    if (strcmp(path, "-") == 0 || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char b[8] = {0};
    const ssize_t n = pread(fd, b, sizeof b, 0);
    close(fd);
    if (n >= 8 && memcmp(b, annkit_magic, 8) == 0)
        *fmt = ANN_VFMT_ANNKIT;
    else if (n >= 6 && memcmp(b, npy_magic, 6) == 0)
        *fmt = ANN_VFMT_NPY;
    else if (n >= 8 && memcmp(b, hdf5_magic, 8) == 0)
        *fmt = ANN_VFMT_HDF5;
    else if (n >= 4 && ((b[0] == 0x1f && b[1] == 0x8b) || (b[0] == 0 && b[1] == 0)) && annv_idx_sniff(path))
        *fmt = ANN_VFMT_IDX;
    else
        return false;
    return true;
}

/**
 * Decide the format of @p path (see ann/vectors.h): magic bytes of an
 * existing file first, then the extension.  @p elem (may be NULL) gets
 * the element type the extension implies for the bin and texmex families,
 * F32 otherwise.  Errors: ANN_ERR_FORMAT when nothing tells.
 */
ann_status ann_vformat_detect(const char *path, ann_vformat *fmt, ann_dtype *elem)
{
    ann_dtype e = ANN_DTYPE_F32;
    ann_vformat f = ANN_VFMT_AUTO, fe;
    const bool by_ext = detect_by_extension(path, &fe, &e);
    if (!detect_by_magic(path, &f)) {
        if (!by_ext)
            return ann_set_error(ANN_ERR_FORMAT,
                                 "'%s': cannot tell the file format from its contents or its extension "
                                 "(give the format explicitly)", path);
        f = fe;
    }
    if (f != ANN_VFMT_FBIN && f != ANN_VFMT_FVECS && f != ANN_VFMT_IVECS && f != ANN_VFMT_BVECS)
        e = ANN_DTYPE_F32;
    *fmt = f;
    if (elem)
        *elem = e;
    return ANN_OK;
}

/** Defaults: AUTO format, all rows, columns from the first text row. */
void ann_read_opts_init(ann_read_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = ANN_VFMT_AUTO;
    o->row_begin = 0;
    o->row_end = -1;
    o->text_cols = 0;
}

/** Defaults: AUTO format, new HDF5 file, no replace, no distance attribute, 9 digits. */
void ann_write_opts_init(ann_write_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = ANN_VFMT_AUTO;
    o->text_precision = 9;
}

/* Element type the extension of @p path implies for the bin family (F32 when none); @p known says whether it did. */
static ann_dtype bin_elem(const char *path, bool *known)
{
    ann_vformat f;
    ann_dtype e;
    *known = detect_by_extension(path, &f, &e) && f == ANN_VFMT_FBIN;
    return *known ? e : ANN_DTYPE_F32;
}

/* Split the spec and settle the format for reading; @p name is set for HDF5 specs. */
static ann_status resolve_input(const char *spec, ann_vformat given, char *path, size_t path_len, char *name,
                                size_t name_len, ann_vformat *fmt)
{
    ann_status st = ann_spec_split(spec, path, path_len, name, name_len);
    if (st != ANN_OK)
        return st;
    if (given != ANN_VFMT_AUTO)
        *fmt = given;
    else if (strcmp(path, "-") == 0)
        *fmt = ANN_VFMT_TEXT;
    else {
        struct stat sb;
        if (stat(path, &sb) != 0)   /* report the missing file, not the unknown format */
            return ann_set_error(ANN_ERR_IO, "'%s': cannot open: %s", path, strerror(errno));
        if (S_ISDIR(sb.st_mode))
            return ann_set_error(ANN_ERR_IO, "'%s': is a directory", path);
        st = ann_vformat_detect(path, fmt, NULL);
        if (st != ANN_OK)
            return st;
    }
    if (name[0] != '\0' && *fmt != ANN_VFMT_HDF5)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': a dataset name (':%s') only applies to HDF5 files, this is "
                             "a %s file", path, name, ann_vformat_name(*fmt));
    if (*fmt == ANN_VFMT_ANNKIT)
        return ann_set_error(ANN_ERR_FORMAT, "'%s': is an annkit index or graph file, not a vector file", path);
    return ANN_OK;
}

/**
 * Read the matrix named by @p spec (see ann/vectors.h for the contract).
 * @p opts may be NULL (defaults).  On failure *out is zeroed.
 */
ann_status ann_vectors_read(const char *spec, const ann_read_opts *opts, ann_matrix *out)
{
    ann_read_opts def;
    char path[4096], name[256];
    ann_vformat fmt;
    memset(out, 0, sizeof *out);
    if (!opts) {
        ann_read_opts_init(&def);
        opts = &def;
    }
    ann_status st = resolve_input(spec, opts->format, path, sizeof path, name, sizeof name, &fmt);
    if (st != ANN_OK)
        return st;
    bool known;
    switch (fmt) {
    case ANN_VFMT_HDF5: st = annv_hdf5_read(path, name, opts, out); break;
    case ANN_VFMT_FVECS:
    case ANN_VFMT_IVECS:
    case ANN_VFMT_BVECS: st = annv_texmex_read(path, fmt, opts, out); break;
    case ANN_VFMT_FBIN: st = annv_bin_read(path, bin_elem(path, &known), opts, out); break;
    case ANN_VFMT_NPY: st = annv_npy_read(path, opts, out); break;
    case ANN_VFMT_IDX: st = annv_idx_read(path, opts, out); break;
    case ANN_VFMT_TEXT: st = annv_text_read(path, opts, out); break;
    default: st = ann_set_error(ANN_ERR_INVALID_ARG, "'%s': unknown format %d", path, (int)fmt); break;
    }
    if (st != ANN_OK)
        ann_matrix_release(out);
    return st;
}

/**
 * Describe @p spec without loading its data (see ann/vectors.h).  An
 * annkit container is reported with format ANNKIT and its rows, dim and
 * dtype; an HDF5 file without NAME reports its datasets and 'distance'
 * attribute with rows = cols = 0.  Text files are read through to count
 * their rows.
 */
ann_status ann_vectors_probe(const char *spec, ann_vformat format, ann_vectors_info *info)
{
    char path[4096], name[256];
    ann_vformat fmt;
    memset(info, 0, sizeof *info);
    ann_status st = ann_spec_split(spec, path, sizeof path, name, sizeof name);
    if (st != ANN_OK)
        return st;
    if (format == ANN_VFMT_AUTO && strcmp(path, "-") != 0 && ann_vformat_detect(path, &fmt, NULL) == ANN_OK &&
        fmt == ANN_VFMT_ANNKIT && name[0] == '\0') {
        ann_container_info ci;
        st = ann_container_probe(path, &ci);
        if (st == ANN_OK) {
            info->format = ANN_VFMT_ANNKIT;
            info->dtype = ci.dtype;
            info->rows = ci.rows;
            info->cols = ci.dim;
        }
        return st;
    }
    st = resolve_input(spec, format, path, sizeof path, name, sizeof name, &fmt);
    if (st != ANN_OK)
        return st;
    info->format = fmt;
    ann_read_opts o;
    ann_read_opts_init(&o);
    bool known;
    switch (fmt) {
    case ANN_VFMT_HDF5: return annv_hdf5_probe(path, name, info);
    case ANN_VFMT_FVECS:
    case ANN_VFMT_IVECS:
    case ANN_VFMT_BVECS: return annv_texmex_probe(path, fmt, info);
    case ANN_VFMT_FBIN: return annv_bin_probe(path, bin_elem(path, &known), info);
    case ANN_VFMT_NPY: return annv_npy_probe(path, info);
    case ANN_VFMT_IDX: return annv_idx_probe(path, info);
    case ANN_VFMT_TEXT: return annv_text_probe(path, &o, info);
    default: return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': unknown format %d", path, (int)fmt);
    }
}

/**
 * Write @p m to @p spec (see ann/vectors.h).  The format is opts->format,
 * else the extension, else text for "-".  @p opts may be NULL.
 */
ann_status ann_vectors_write(const char *spec, const ann_matrix *m, const ann_write_opts *opts)
{
    ann_write_opts def;
    char path[4096], name[256];
    ann_vformat fmt;
    ann_dtype elem = ANN_DTYPE_F32;
    if (!opts) {
        ann_write_opts_init(&def);
        opts = &def;
    }
    ann_status st = ann_spec_split(spec, path, sizeof path, name, sizeof name);
    if (st != ANN_OK)
        return st;
    bool known = false;
    if (opts->format != ANN_VFMT_AUTO) {
        fmt = opts->format;
        elem = bin_elem(path, &known);
    } else if (!detect_by_extension(path, &fmt, &elem)) {
        return ann_set_error(ANN_ERR_INVALID_ARG,
                             "'%s': cannot tell the output format from the extension (give the format explicitly)",
                             path);
    } else {
        known = fmt == ANN_VFMT_FBIN && strcmp(path, "-") != 0;
    }
    if (name[0] != '\0' && fmt != ANN_VFMT_HDF5)
        return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': a dataset name (':%s') only applies to HDF5 files", path,
                             name);
    switch (fmt) {
    case ANN_VFMT_HDF5: return annv_hdf5_write(path, name, m, opts);
    case ANN_VFMT_FVECS:
    case ANN_VFMT_IVECS:
    case ANN_VFMT_BVECS: return annv_texmex_write(path, fmt, m);
    case ANN_VFMT_FBIN: return annv_bin_write(path, elem, known, m);
    case ANN_VFMT_NPY: return annv_npy_write(path, m);
    case ANN_VFMT_TEXT: return annv_text_write(path, m, opts);
    case ANN_VFMT_IDX:
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': idx files can be read but not written", path);
    case ANN_VFMT_ANNKIT:
        return ann_set_error(ANN_ERR_UNSUPPORTED, "'%s': annkit containers are written by annbuild and anngraph, "
                             "not as vector files", path);
    default: return ann_set_error(ANN_ERR_INVALID_ARG, "'%s': unknown format %d", path, (int)fmt);
    }
}

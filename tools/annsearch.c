/*
 * annsearch - search an index, and measure recall and QPS.
 *
 *   annsearch [OPTIONS] INDEX... QUERIES -k K [--truth GT[:NAME]] [-o RESULTS]
 *
 * Search parameters are options generated from the library's table of
 * the index's algorithm and take comma-separated lists; every combination
 * is one search and one result line (text, --json or --tsv) on stdout.
 * QPS counts only the time spent in ann_index_search(), measured with a
 * monotonic clock (the best of --repeat runs), never file I/O.
 *
 * Filters (DESIGN.md "Filters"): --filter BITSET (bit i of byte i / 8 set:
 * row i may be returned) or --allow IDS (the allowed ids, as a vector file
 * or a text list) restrict the results; ann_index_search_filtered().
 *
 * A CAGRA index built with --no-dataset holds no vectors: --data DATASET
 * gives them (ann_index_attach_dataset), and is then also the base
 * vectors of recall_threshold.
 *
 * Shards (DESIGN.md "Scale-out"): several INDEX operands of one algorithm
 * and metric, built with annbuild --rows A:B over disjoint row ranges, are
 * searched one after the other; each shard's ids get its row offset and
 * the per-query results are merged by (distance, id).  Filters and --data
 * are over the global rows.
 *
 * Recall: "recall" is the id intersection with the true top k; with the
 * base vectors (--data, or the train dataset of an ann-benchmarks file
 * that holds both the queries and the truth), "recall_threshold" is the
 * ann-benchmarks rule that credits ties at the k-th distance.
 */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    OPT_TRUTH = CLI_OPT_TOOL,
    OPT_DATA,
    OPT_DISTANCES,
    OPT_JSON,
    OPT_TSV,
    OPT_BATCH,
    OPT_REPEAT,
    OPT_FORMAT,
    OPT_FILTER,
    OPT_ALLOW,
};

static const struct option longopts[] = {
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"data", required_argument, NULL, OPT_DATA},
    {"output", required_argument, NULL, 'o'},
    {"distances", required_argument, NULL, OPT_DISTANCES},
    {"json", no_argument, NULL, OPT_JSON},
    {"tsv", no_argument, NULL, OPT_TSV},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"filter", required_argument, NULL, OPT_FILTER},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {NULL, 0, NULL, 0},
};

enum style { STYLE_TEXT, STYLE_JSON, STYLE_TSV };

/** Everything the command line asks for. */
struct search_opts {
    const char *index;     /* the first INDEX operand */
    char *const *indexes;  /* every INDEX operand (shards) */
    int n_indexes;
    const char *queries;   /* QUERIES operand, PATH[:NAME] */
    int64_t k;             /* -k K: neighbours per query (required) */
    const char *truth;     /* --truth GT[:NAME]: true neighbour ids */
    const char *data;      /* --data DATASET: base vectors, for recall_threshold */
    const char *output;    /* -o, --output RESULTS: neighbours of the last setting */
    const char *distances; /* --distances PATH: their distances (non-HDF5 RESULTS) */
    enum style style;      /* --json, --tsv (default: aligned text) */
    int64_t batch;         /* --batch N: queries per search call (0: all) */
    int repeat;            /* --repeat N: runs per setting, the fastest counts */
    ann_vformat format;    /* --format NAME of QUERIES */
    const char *filter;    /* --filter BITSET: file of bytes, bit i = row i may be returned */
    const char *allow;     /* --allow IDS: the ids that may be returned */
};

static void usage(FILE *out, const cli_parser *p)
{
    fputs("Usage: annsearch [OPTIONS] INDEX... QUERIES -k K\n"
          "Search INDEX for the K nearest neighbours of each row of QUERIES; with\n"
          "ground truth, print recall and QPS for each setting of the search parameters.\n"
          "Several INDEX files are shards (annbuild --rows A:B) searched as one index:\n"
          "ids are global rows, each shard's results shifted by its first row.\n"
          "\n"
          "QUERIES, GT and DATASET are PATH[:NAME], where NAME picks a dataset of an\n"
          "HDF5 file (GT defaults to NAME 'neighbors' there).\n"
          "\n"
          "Options:\n"
          "  -k K                  neighbours per query (required)\n"
          "      --truth GT        true neighbour ids (ann-benchmarks neighbors, ivecs,\n"
          "                        ibin, ...): print recall@K\n"
          "      --data DATASET    base vectors of the index: also print the ann-benchmarks\n"
          "                        recall (ties at the K-th distance count); taken from\n"
          "                        PATH:train when QUERIES and GT are the same HDF5 file\n"
          "  -o, --output RESULTS  write the neighbour ids of the last setting (int32 when\n"
          "                        they fit); an .hdf5 file without NAME gets the datasets\n"
          "                        'neighbors' and 'distances', as ann-benchmarks has them\n"
          "      --distances PATH  write the distances of the last setting\n"
          "      --json            print one JSON object per setting\n"
          "      --tsv             print a header line and tab-separated rows\n"
          "      --batch N         search N queries per call (default: all at once)\n"
          "      --repeat N        run each setting N times and report the fastest\n"
          "      --format NAME     format of QUERIES (default: from its magic or extension)\n"
          "      --filter BITSET   return only ids whose bit is set in BITSET, a file of\n"
          "                        ceil(N / 8) bytes (or whole uint32 words): bit i of\n"
          "                        byte i / 8, least significant first, is id i; N is\n"
          "                        the rows, or one past the largest id of an index\n"
          "                        whose rows have ids of their own\n"
          "      --allow IDS       return only the ids listed in IDS (a vector file of\n"
          "                        integers, or text: ids separated by blanks or commas)\n"
          "\n"
          "A CAGRA index built with --no-dataset needs --data DATASET (the vectors it was\n"
          "built from).  Every index takes filters; a cagra or ivf_flat search with more\n"
          "than 90 % of the rows filtered out is a filtered brute force (-v says so).\n",
          out);
    cli_help_params(out, p);
    fputs("\n", out);
    cli_help_common(out);
}

/* ------------------------------------------------------------------ */
/* Output plans (checked before any work)                              */
/* ------------------------------------------------------------------ */

struct out_file {
    char path[PATH_MAX];
    char name[PATH_MAX];
    ann_vformat format;
    int format_dtype;    /* the one dtype the format holds, -1: any */
    bool hdf5_pair;      /* HDF5 without NAME: 'neighbors' and 'distances' */
    bool hdf5_append;    /* the HDF5 file exists: add to it */
    bool replace_ids;    /* a dataset to be written exists (-f given) */
    bool replace_dists;
    cli_output out;
    cli_output *target;  /* &out, or the output of -o when both name datasets of one HDF5 file */
};

/* Whether dataset @p ds exists in the HDF5 file @p path. */
static int hdf5_has(const char *path, const char *ds, bool *has)
{
    ann_vectors_info vi;
    memset(&vi, 0, sizeof vi);
    ann_status s = ann_vectors_probe(path, ANN_VFMT_HDF5, &vi);
    if (s != ANN_OK)
        return cli_report(s, path);
    *has = false;
    size_t n = strlen(ds);
    for (const char *p = vi.hdf5_datasets; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, ds, n) == 0)
            *has = true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/* Check an existing HDF5 target: may datasets @p a (and @p b) be written? */
static int plan_hdf5(struct out_file *f, bool force, const char *a, const char *b)
{
    if (!cli_file_exists(f->path))
        return 0;
    ann_vectors_info vi;
    ann_clear_error();
    if (ann_vectors_probe(f->path, ANN_VFMT_HDF5, &vi) != ANN_OK) {
        if (!force) {
            cli_error("'%s': file exists and is not a readable HDF5 file (%s); use -f to replace it",
                      f->path, ann_last_error());
            return CLI_EXIT_FAILURE;
        }
        return 0; /* replaced by a new file */
    }
    bool has_a = false, has_b = false;
    int rc = hdf5_has(f->path, a, &has_a);
    if (rc == 0 && b != NULL)
        rc = hdf5_has(f->path, b, &has_b);
    if (rc != 0)
        return rc;
    if ((has_a || has_b) && !force) {
        cli_error("'%s': dataset '%s' exists; use -f to replace it", f->path, has_a ? a : b);
        return CLI_EXIT_FAILURE;
    }
    f->replace_ids = has_a;
    f->replace_dists = has_b;
    f->hdf5_append = true;
    return 0;
}

/* Plan an output of ids (@p ids true) or distances; @p ids_file is the
 * planned -o when planning --distances, else NULL. */
static int plan_output(const char *spec, bool ids, bool force, struct out_file *ids_file,
                       struct out_file *f)
{
    int rc;
    memset(f, 0, sizeof *f);
    f->out.slot = -1;
    f->target = &f->out;
    if ((rc = cli_split_spec(spec, f->path, f->name)) != 0)
        return rc;
    if ((rc = cli_output_format(f->path, ANN_VFMT_AUTO, &f->format, &f->format_dtype)) != 0)
        return rc;
    if (f->format == ANN_VFMT_IDX)
        return cli_usage_error("'%s': idx files can be read but not written", f->path);
    if (f->format_dtype >= 0) {
        bool ok = ids ? (f->format_dtype == ANN_DTYPE_I32 || f->format_dtype == ANN_DTYPE_I64)
                      : (f->format_dtype == ANN_DTYPE_F32);
        if (!ok)
            return cli_usage_error("'%s': %s files hold %s, which cannot store %s", f->path,
                                   ann_vformat_name(f->format),
                                   ann_dtype_name((ann_dtype)f->format_dtype),
                                   ids ? "neighbour ids" : "distances");
    }
    if (f->format == ANN_VFMT_HDF5) {
        if (f->name[0] == '\0') {
            if (!ids)
                return cli_usage_error("'%s': --distances into HDF5 needs a dataset name: '%s:NAME'",
                                       f->path, f->path);
            f->hdf5_pair = true;
            rc = plan_hdf5(f, force, "neighbors", "distances");
        } else {
            rc = plan_hdf5(f, force, f->name, NULL);
            f->replace_dists = f->replace_ids;
        }
        if (rc != 0)
            return rc;
        if (ids_file != NULL && ids_file->format == ANN_VFMT_HDF5 &&
            strcmp(ids_file->path, f->path) == 0) {
            /* Two datasets of one file: both go into the temporary of -o,
             * the distances after the ids. */
            f->target = &ids_file->out;
            f->hdf5_append = true;
            return 0;
        }
    }
    cli_output_opts oo = {
        .force = force,
        .binary = !cli_format_is_text(f->format),
        .keep_existing = f->hdf5_append,
    };
    return cli_output_open(&f->out, f->path, &oo);
}

/* Write @p m to @p f (dataset @p ds of an HDF5 target). */
static int write_matrix(struct out_file *f, const char *ds, const ann_matrix *m, bool append,
                        bool replace, const char *distance_attr)
{
    char spec[2 * PATH_MAX + 2];
    const char *target = cli_output_target(f->target);
    if (ds != NULL && ds[0] != '\0')
        snprintf(spec, sizeof spec, "%s:%s", target, ds);
    else
        snprintf(spec, sizeof spec, "%s", target);
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.format = f->format;
    wo.hdf5_append = append;
    wo.hdf5_replace = replace;
    wo.hdf5_distance = distance_attr;
    ann_clear_error();
    ann_status s = ann_vectors_write(spec, m, &wo);
    return s == ANN_OK ? 0 : cli_report(s, f->path);
}

/* ------------------------------------------------------------------ */
/* Result lines                                                        */
/* ------------------------------------------------------------------ */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* A parameter value as JSON: numbers and booleans bare, the rest quoted. */
static void json_value(FILE *out, const ann_param_desc *d, const char *text)
{
    if (d->type == ANN_PARAM_BOOL) {
        bool t = strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        fputs(t ? "true" : "false", out);
        return;
    }
    if (d->type != ANN_PARAM_ENUM) {
        char *end;
        double v = strtod(text, &end);
        if (end != text && *end == '\0' && isfinite(v)) {
            fputs(text, out);
            return;
        }
    }
    json_string(out, text);
}

/* What one result line reports. */
struct result {
    double seconds;        /* best wall time of the searches */
    double qps;
    double recall;         /* NAN when not computed */
    double recall_threshold;
};

struct report {
    FILE *out;
    enum style style;
    const struct search_opts *o;
    const cli_settings *settings;
    int *widths;           /* text: width of each "name=value" column */
    const char *algo;
    int64_t n_queries;
    bool have_recall;
    bool have_threshold;
};

static void print_header(const struct report *r)
{
    if (r->style != STYLE_TSV)
        return;
    for (size_t j = 0; j < r->settings->n_table; j++)
        fprintf(r->out, "%s\t", r->settings->table[j].name);
    fputs("k", r->out);
    if (r->have_recall)
        fputs("\trecall", r->out);
    if (r->have_threshold)
        fputs("\trecall_threshold", r->out);
    fputs("\tqps\tseconds\n", r->out);
    fflush(r->out);
}

static void print_result(const struct report *r, size_t i, const struct result *res,
                         ann_device used)
{
    const cli_settings *st = r->settings;
    const void *params = cli_settings_get(st, i);
    FILE *out = r->out;
    char val[128], tok[256];
    switch (r->style) {
    case STYLE_JSON:
        fputs("{\"algo\":", out);
        json_string(out, r->algo);
        fputs(",\"index\":", out);
        if (r->o->n_indexes == 1) {
            json_string(out, r->o->index);
        } else {
            for (int j = 0; j < r->o->n_indexes; j++) {
                fputc(j ? ',' : '[', out);
                json_string(out, r->o->indexes[j]);
            }
            fputc(']', out);
        }
        fputs(",\"queries\":", out);
        json_string(out, r->o->queries);
        fprintf(out, ",\"n_queries\":%lld,\"k\":%lld", (long long)r->n_queries, (long long)r->o->k);
        for (size_t j = 0; j < st->n_table; j++) {
            ann_params_format(&st->table[j], params, val, sizeof val);
            fputc(',', out);
            json_string(out, st->table[j].name);
            fputc(':', out);
            json_value(out, &st->table[j], val);
        }
        if (r->have_recall)
            fprintf(out, ",\"recall\":%.6f", res->recall);
        else
            fputs(",\"recall\":null", out);
        if (r->have_threshold)
            fprintf(out, ",\"recall_threshold\":%.6f", res->recall_threshold);
        fprintf(out, ",\"qps\":%.3f,\"seconds\":%.6f,\"batch\":%lld,\"repeat\":%d,\"device\":",
                res->qps, res->seconds, (long long)(r->o->batch ? r->o->batch : r->n_queries),
                r->o->repeat);
        json_string(out, ann_device_name(used));
        fputs("}\n", out);
        break;
    case STYLE_TSV:
        for (size_t j = 0; j < st->n_table; j++) {
            ann_params_format(&st->table[j], params, val, sizeof val);
            fprintf(out, "%s\t", val);
        }
        fprintf(out, "%lld", (long long)r->o->k);
        if (r->have_recall)
            fprintf(out, "\t%.6f", res->recall);
        if (r->have_threshold)
            fprintf(out, "\t%.6f", res->recall_threshold);
        fprintf(out, "\t%.3f\t%.6f\n", res->qps, res->seconds);
        break;
    case STYLE_TEXT:
        for (size_t j = 0; j < st->n_table; j++) {
            ann_params_format(&st->table[j], params, val, sizeof val);
            snprintf(tok, sizeof tok, "%s=%s", st->table[j].name, val);
            fprintf(out, "%-*s  ", r->widths[j], tok);
        }
        snprintf(tok, sizeof tok, "k=%lld", (long long)r->o->k);
        fprintf(out, "%-6s", tok);
        if (r->have_recall)
            fprintf(out, "  recall=%.4f", res->recall);
        if (r->have_threshold)
            fprintf(out, "  recall_threshold=%.4f", res->recall_threshold);
        snprintf(tok, sizeof tok, "qps=%.1f", res->qps);
        fprintf(out, "  %-14s  seconds=%.6f\n", tok, res->seconds);
        break;
    }
    fflush(out);
}

/* ------------------------------------------------------------------ */
/* Inputs                                                              */
/* ------------------------------------------------------------------ */

/* Read @p spec; convert element types an index cannot search into f32. */
static int read_vectors(const char *spec, ann_vformat format, bool as_vectors, ann_matrix *m)
{
    char path[PATH_MAX], name[PATH_MAX];
    int rc = cli_split_spec(spec, path, name);
    if (rc != 0)
        return rc;
    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = format;
    ann_clear_error();
    ann_status s = ann_vectors_read(spec, &ro, m);
    if (s != ANN_OK)
        return cli_report(s, path);
    if (as_vectors && m->dtype != ANN_DTYPE_F32 && m->dtype != ANN_DTYPE_F16 &&
        m->dtype != ANN_DTYPE_I8 && m->dtype != ANN_DTYPE_U8) {
        ann_matrix f;
        if ((s = ann_matrix_convert(m, ANN_DTYPE_F32, &f)) != ANN_OK)
            return cli_report(s, path);
        ann_matrix_release(m);
        *m = f;
    }
    return 0;
}

/* True when @p a and @p b name the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Load the ground truth and, when available, the base vectors. */
static int read_truth(const struct search_opts *o, int64_t n_queries, ann_matrix *truth,
                      ann_matrix *data)
{
    char path[PATH_MAX], name[PATH_MAX], spec[2 * PATH_MAX + 16];
    char qpath[PATH_MAX], qname[PATH_MAX];
    int rc;
    if ((rc = cli_split_spec(o->truth, path, name)) != 0)
        return rc;
    ann_vformat fmt = ANN_VFMT_AUTO;
    ann_dtype elem;
    bool hdf5 = ann_vformat_detect(path, &fmt, &elem) == ANN_OK && fmt == ANN_VFMT_HDF5;
    if (hdf5 && name[0] == '\0')
        snprintf(spec, sizeof spec, "%s:neighbors", path);
    else
        snprintf(spec, sizeof spec, "%s", o->truth);
    if ((rc = read_vectors(spec, ANN_VFMT_AUTO, false, truth)) != 0)
        return rc;
    if (truth->rows < n_queries) {
        cli_error("'%s': %lld rows of ground truth for %lld queries", spec, (long long)truth->rows,
                  (long long)n_queries);
        return CLI_EXIT_FAILURE;
    }
    if (truth->cols < o->k) {
        cli_error("'%s': %lld true neighbours per query, fewer than k = %lld", spec,
                  (long long)truth->cols, (long long)o->k);
        return CLI_EXIT_FAILURE;
    }
    if (truth->dtype != ANN_DTYPE_I32 && truth->dtype != ANN_DTYPE_I64 &&
        (rc = cli_convert_lossless(truth, ANN_DTYPE_I64, spec)) != 0)
        return rc;

    if (data == NULL) /* already read (the vectors of an index built without them) */
        return 0;
    if (o->data != NULL)
        return read_vectors(o->data, ANN_VFMT_AUTO, true, data);
    /* An ann-benchmarks file that holds the queries and the truth also
     * holds the base vectors as 'train'. */
    if (!hdf5 || (rc = cli_split_spec(o->queries, qpath, qname)) != 0 || !same_file(path, qpath))
        return rc;
    bool has_train = false;
    if ((rc = hdf5_has(path, "train", &has_train)) != 0)
        return rc;
    if (!has_train)
        return 0;
    snprintf(spec, sizeof spec, "%s:train", path);
    cli_info("using '%s' as the base vectors for recall_threshold", spec);
    return read_vectors(spec, ANN_VFMT_AUTO, true, data);
}

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Filters                                                             */
/* ------------------------------------------------------------------ */

struct filter {
    uint32_t *bits;  /* NULL: no filter */
    int64_t n_bits;
    int64_t kept;
};

/* Read all of @p path into a new buffer (NUL-terminated). */
static int slurp(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cli_error("'%s': %s", path, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b != NULL) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(b, 2 * cap + 1);
        if (nb == NULL) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    bool err = ferror(f) != 0;
    fclose(f);
    if (b == NULL) {
        cli_error("out of memory reading '%s'", path);
        return CLI_EXIT_FAILURE;
    }
    if (err) {
        free(b);
        cli_error("'%s': read error", path);
        return CLI_EXIT_FAILURE;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* --filter: a file of exactly ceil(rows / 8) bytes, or of ceil(rows / 32) uint32 words (rows: the id space). */
static int read_bitset(const char *path, int64_t rows, struct filter *f)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = slurp(path, &buf, &len);
    if (rc != 0)
        goto done;
    const size_t bytes = (size_t)((rows + 7) / 8), words = (size_t)((rows + 31) / 32) * 4;
    if (len != bytes && len != words) {
        cli_error("'%s': %zu bytes; a bitset of %lld ids has %zu bytes (or %zu as uint32 words)", path, len,
                  (long long)rows, bytes, words);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    f->bits = calloc(words / 4 + 1, sizeof(uint32_t));
    if (f->bits == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    /* bit i of byte i / 8 is bit i of the little-endian word i / 32 */
    for (size_t i = 0; i < bytes; i++)
        f->bits[i / 4] |= (uint32_t)(unsigned char)buf[i] << (8 * (i % 4));
    if (rows % 32)
        f->bits[rows / 32] &= (1u << (rows % 32)) - 1; /* padding bits never name an id */
    f->n_bits = rows;
done:
    free(buf);
    return rc;
}

/* Parse a text list of ids (blanks, commas or newlines between them; '#' starts a comment). */
static int parse_id_text(const char *path, const char *buf, int64_t **ids, int64_t *n)
{
    size_t cap = 1024;
    int64_t *v = malloc(cap * sizeof *v);
    int64_t m = 0;
    int line = 1;
    int rc = 0;
    if (v == NULL)
        goto nomem;
    for (const char *c = buf; *c;) {
        if (*c == '\n') {
            line++;
            c++;
        } else if (*c == ' ' || *c == '\t' || *c == '\r' || *c == ',') {
            c++;
        } else if (*c == '#') {
            while (*c && *c != '\n')
                c++;
        } else {
            char *end;
            errno = 0;
            long long x = strtoll(c, &end, 10);
            if (end == c || errno != 0 || (*end && !strchr(" \t\r\n,#", *end))) {
                cli_error("'%s': line %d: '%.20s' is not an id", path, line, c);
                rc = CLI_EXIT_FAILURE;
                goto done;
            }
            if ((size_t)m == cap) {
                int64_t *nv = realloc(v, 2 * cap * sizeof *v);
                if (nv == NULL)
                    goto nomem;
                v = nv;
                cap *= 2;
            }
            v[m++] = x;
            c = end;
        }
    }
    *ids = v;
    *n = m;
    return 0;
nomem:
    cli_error("out of memory");
    rc = CLI_EXIT_FAILURE;
done:
    free(v);
    return rc;
}

/* --allow: ids (each below rows, the id space) as a vector file (ibin, ivecs, npy, HDF5, ...) or a text list. */
static int read_allow(const char *spec, int64_t rows, struct filter *f)
{
    char path[PATH_MAX], name[PATH_MAX];
    int64_t *ids = NULL;
    int64_t n = 0;
    char *buf = NULL;
    size_t len = 0;
    ann_matrix m;
    memset(&m, 0, sizeof m);
    int rc = cli_split_spec(spec, path, name);
    if (rc != 0)
        goto done;
    ann_vformat fmt = ANN_VFMT_AUTO;
    ann_dtype elem;
    ann_clear_error();
    const bool binary = strcmp(path, "-") != 0 && ann_vformat_detect(path, &fmt, &elem) == ANN_OK &&
                        fmt != ANN_VFMT_TEXT && fmt != ANN_VFMT_ANNKIT;
    ann_clear_error();
    if (binary) {
        if ((rc = read_vectors(spec, ANN_VFMT_AUTO, false, &m)) != 0)
            goto done;
        if (m.dtype != ANN_DTYPE_I64 && (rc = cli_convert_lossless(&m, ANN_DTYPE_I64, spec)) != 0)
            goto done;
        n = m.rows * m.cols;
        ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
        if (ids == NULL)
            goto nomem;
        for (int64_t r = 0; r < m.rows; r++)
            memcpy(ids + r * m.cols, ann_matrix_row(&m, r), (size_t)m.cols * sizeof *ids);
    } else {
        if ((rc = slurp(path, &buf, &len)) != 0 || (rc = parse_id_text(path, buf, &ids, &n)) != 0)
            goto done;
    }
    f->bits = calloc((size_t)((rows + 31) / 32) + 1, sizeof(uint32_t));
    if (f->bits == NULL)
        goto nomem;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= rows) {
            cli_error("'%s': id %lld is not an id of the index (0 .. %lld)", path, (long long)ids[i],
                      (long long)rows - 1);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        f->bits[ids[i] / 32] |= 1u << (ids[i] % 32);
    }
    f->n_bits = rows;
    goto done;
nomem:
    cli_error("out of memory");
    rc = CLI_EXIT_FAILURE;
done:
    ann_matrix_release(&m);
    free(buf);
    free(ids);
    return rc;
}

/* Search all queries in batches; the wall time of the search calls. */
static int search_all(const ann_index *ix, const void *params, const ann_matrix *q, int64_t k,
                      int64_t batch, const struct filter *flt, ann_exec *ex, int64_t *ids, float *dists,
                      double *seconds)
{
    int64_t step = batch > 0 ? batch : q->rows;
    if (step < 1)
        step = 1;
    double total = 0;
    for (int64_t b = 0; b < q->rows; b += step) {
        ann_matrix view = *q;
        view.data = ann_matrix_row(q, b);
        view.rows = q->rows - b < step ? q->rows - b : step;
        view.owner = NULL;
        double t0 = cli_now();
        ann_clear_error();
        ann_status s = flt->bits != NULL
                           ? ann_index_search_filtered(ix, params, &view, k, flt->bits, flt->n_bits, ex,
                                                       ids + b * k, dists + b * k)
                           : ann_index_search(ix, params, &view, k, ex, ids + b * k, dists + b * k);
        total += cli_now() - t0;
        if (s != ANN_OK) {
            cli_progress_end();
            return cli_report(s, NULL);
        }
    }
    cli_progress_end();
    *seconds = total;
    return 0;
}

/** One INDEX operand. */
struct shard {
    const char *path;
    ann_index *ix;
    ann_index_info info;
    struct filter flt;  /* the global filter cut to this shard's rows, or all of it for a shard with its own ids
                           (bits NULL: none) */
};

/* Whether result (da, ia) ranks before (db, ib) under @p metric: empty slots (id < 0) last, ties by id. */
static bool ranks_before(ann_metric metric, float da, int64_t ia, float db, int64_t ib)
{
    if ((ia < 0) != (ib < 0))
        return ib < 0;
    if (da != db)
        return metric == ANN_METRIC_INNER_PRODUCT ? da > db : da < db;
    return ia < ib;
}

/*
 * Search every shard and merge: shard j's ids are shifted by its row
 * offset (not those of a shard that maps rows to ids of its own: they are
 * global already), and each query keeps the k best of all shards.  A single shard
 * at offset 0 is searched straight into ids/dists.  tmp_ids/tmp_dists and
 * mrg_ids/mrg_dists are n x k scratch arrays (unused for one shard at 0).
 * *seconds: the search calls plus the merge.
 */
static int search_shards(struct shard *sh, int n_sh, const void *params, const ann_matrix *q, int64_t k,
                         int64_t batch, ann_exec *ex, int64_t *ids, float *dists, int64_t *tmp_ids,
                         float *tmp_dists, int64_t *mrg_ids, float *mrg_dists, double *seconds)
{
    if (n_sh == 1 && sh[0].info.row_offset == 0)
        return search_all(sh[0].ix, params, q, k, batch, &sh[0].flt, ex, ids, dists, seconds);
    const int64_t n = q->rows;
    const ann_metric metric = sh[0].info.metric;
    double total = 0;
    for (int j = 0; j < n_sh; j++) {
        double sec = 0;
        int rc = search_all(sh[j].ix, params, q, k, batch, &sh[j].flt, ex, j ? tmp_ids : ids,
                            j ? tmp_dists : dists, &sec);
        if (rc != 0)
            return rc;
        double t0 = cli_now();
        int64_t *nid = j ? tmp_ids : ids;
        const int64_t off = sh[j].info.has_ids ? 0 : sh[j].info.row_offset;
        for (int64_t i = 0; i < n * k; i++)
            if (nid[i] >= 0)
                nid[i] += off;
        if (j > 0) {
            for (int64_t i = 0; i < n; i++) {
                const int64_t *ai = ids + i * k, *bi = tmp_ids + i * k;
                const float *ad = dists + i * k, *bd = tmp_dists + i * k;
                int64_t a = 0, b = 0;
                for (int64_t m = 0; m < k; m++) {
                    if (ranks_before(metric, ad[a], ai[a], bd[b], bi[b])) {
                        mrg_ids[i * k + m] = ai[a];
                        mrg_dists[i * k + m] = ad[a++];
                    } else {
                        mrg_ids[i * k + m] = bi[b];
                        mrg_dists[i * k + m] = bd[b++];
                    }
                }
            }
            memcpy(ids, mrg_ids, (size_t)(n * k) * sizeof *ids);
            memcpy(dists, mrg_dists, (size_t)(n * k) * sizeof *dists);
        }
        total += sec + (cli_now() - t0);
    }
    *seconds = total;
    return 0;
}

/* The bits [off, off + rows) of global filter @p g as shard filter @p f (bit 0 = the shard's row 0). */
static int shard_filter(const struct filter *g, int64_t off, int64_t rows, struct filter *f)
{
    f->bits = calloc((size_t)(rows + 31) / 32 + 1, sizeof *f->bits);
    if (f->bits == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    f->n_bits = rows;
    f->kept = 0;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t v = off + r;
        if (v < g->n_bits && ((g->bits[v >> 5] >> (v & 31)) & 1u)) {
            f->bits[r >> 5] |= 1u << (r & 31);
            f->kept++;
        }
    }
    return 0;
}

static int shard_cmp(const void *a, const void *b)
{
    const struct shard *x = a, *y = b;
    return (x->info.row_offset > y->info.row_offset) - (x->info.row_offset < y->info.row_offset);
}

/* Write the ids and distances of the last setting. */
static int write_results(struct out_file *res, struct out_file *dist, const ann_index_info *info,
                         int64_t n, int64_t k, int64_t *ids, float *dists)
{
    int rc = 0;
    int32_t *ids32 = NULL;
    bool fit32 = true;
    for (int64_t i = 0; i < n * k && fit32; i++)
        fit32 = ids[i] >= INT32_MIN && ids[i] <= INT32_MAX;
    ann_matrix mid = ann_matrix_view(ids, n, k, ANN_DTYPE_I64);
    ann_matrix mdist = ann_matrix_view(dists, n, k, ANN_DTYPE_F32);
    if (fit32) {
        ids32 = malloc((size_t)(n * k > 0 ? n * k : 1) * sizeof *ids32);
        if (ids32 == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_FAILURE;
        }
        for (int64_t i = 0; i < n * k; i++)
            ids32[i] = (int32_t)ids[i];
        mid = ann_matrix_view(ids32, n, k, ANN_DTYPE_I32);
    } else if (res != NULL && res->format_dtype == ANN_DTYPE_I32) {
        cli_error("'%s': ids above 2^31 do not fit %s files", res->path, ann_vformat_name(res->format));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }

    if (res != NULL && res->hdf5_pair) {
        /* ann-benchmarks: 'distance' is euclidean (true L2) or angular (1 - cos). */
        const char *attr = info->metric == ANN_METRIC_EUCLIDEAN ? "euclidean"
                           : info->metric == ANN_METRIC_COSINE  ? "angular"
                                                                : NULL;
        if ((rc = write_matrix(res, "neighbors", &mid, res->hdf5_append, res->replace_ids, attr)) == 0)
            rc = write_matrix(res, "distances", &mdist, true, res->replace_dists, NULL);
    } else if (res != NULL) {
        rc = write_matrix(res, res->name, &mid, res->hdf5_append, res->replace_ids, NULL);
    }
    if (rc == 0 && dist != NULL)
        rc = write_matrix(dist, dist->name, &mdist, dist->hdf5_append, dist->replace_dists, NULL);
    if (rc == 0 && res != NULL)
        rc = cli_output_commit(&res->out);
    if (rc == 0 && dist != NULL)
        rc = cli_output_commit(&dist->out);
done:
    free(ids32);
    return rc;
}

static int run_search(struct search_opts *o, const cli_parser *p)
{
    struct out_file *res = NULL, *dist = NULL;
    struct shard *sh = NULL;
    ann_matrix queries, truth, data;
    cli_settings settings;
    struct filter flt = {NULL, 0, 0};
    int64_t *ids = NULL, *tmp_ids = NULL, *mrg_ids = NULL;
    float *dists = NULL, *tmp_dists = NULL, *mrg_dists = NULL;
    int *widths = NULL;
    ann_exec ex;
    char qpath[PATH_MAX], qname[PATH_MAX];
    int rc;
    ann_status s;
    memset(&queries, 0, sizeof queries);
    memset(&truth, 0, sizeof truth);
    memset(&data, 0, sizeof data);
    memset(&settings, 0, sizeof settings);

    if ((rc = cli_split_spec(o->queries, qpath, qname)) != 0)
        goto done;
    if (o->output != NULL && o->distances != NULL && strcmp(o->output, o->distances) == 0) {
        rc = cli_usage_error("-o and --distances name the same file '%s'", o->output);
        goto done;
    }
    if (o->output != NULL) {
        if ((res = calloc(1, sizeof *res)) == NULL)
            goto nomem;
        if ((rc = plan_output(o->output, true, p->common.force, NULL, res)) != 0)
            goto done;
        if (res->hdf5_pair && o->distances != NULL) {
            rc = cli_usage_error("--distances: the distances already go to '%s:distances'", res->path);
            goto done;
        }
    }
    if (o->distances != NULL) {
        if ((dist = calloc(1, sizeof *dist)) == NULL)
            goto nomem;
        if ((rc = plan_output(o->distances, false, p->common.force, res, dist)) != 0)
            goto done;
    }
    if ((rc = cli_exec_init(&ex, &p->common)) != 0)
        goto done;

    if ((sh = calloc((size_t)o->n_indexes, sizeof *sh)) == NULL)
        goto nomem;
    int64_t total_rows = 0; /* one past the last global row of any shard */
    int64_t id_space = 0;   /* one past the largest id any shard can return: the size of a filter */
    for (int j = 0; j < o->n_indexes; j++) {
        double t0 = cli_now();
        sh[j].path = o->indexes[j];
        ann_clear_error();
        if ((s = ann_index_load(sh[j].path, &sh[j].ix)) != ANN_OK) {
            rc = cli_report(s, sh[j].path);
            goto done;
        }
        ann_index_get_info(sh[j].ix, &sh[j].info);
        const ann_index_info *si = &sh[j].info;
        if (ann_algo_describe(si->algo) == NULL) {
            cli_error("'%s': %s indexes cannot be searched by this build", sh[j].path, ann_algo_name(si->algo));
            rc = CLI_EXIT_UNAVAILABLE;
            goto done;
        }
        if (j > 0 && (si->algo != sh[0].info.algo || si->metric != sh[0].info.metric || si->dim != sh[0].info.dim)) {
            cli_error("'%s': a %s index (%s, dim %lld) cannot be searched with '%s', a %s index (%s, dim %lld): "
                      "shards need the same algorithm, metric and dimension",
                      sh[j].path, ann_algo_name(si->algo), ann_metric_name(si->metric), (long long)si->dim,
                      sh[0].path, ann_algo_name(sh[0].info.algo), ann_metric_name(sh[0].info.metric),
                      (long long)sh[0].info.dim);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        if (si->row_offset + si->rows > total_rows)
            total_rows = si->row_offset + si->rows;
        const int64_t bound = si->has_ids ? si->id_bound : si->row_offset + si->rows;
        if (bound > id_space)
            id_space = bound;
        cli_info("loaded '%s': %s, %lld rows x %lld dim (rows %lld to %lld), %s, in %.3f s", sh[j].path,
                 ann_algo_name(si->algo), (long long)si->rows, (long long)si->dim, (long long)si->row_offset,
                 (long long)(si->row_offset + si->rows - 1), ann_metric_name(si->metric), cli_now() - t0);
    }
    /* disjoint row ranges, searched in row order */
    qsort(sh, (size_t)o->n_indexes, sizeof *sh, shard_cmp);
    for (int j = 1; j < o->n_indexes; j++)
        if (sh[j - 1].info.row_offset + sh[j - 1].info.rows > sh[j].info.row_offset) {
            cli_error("'%s' (rows %lld to %lld) and '%s' (rows %lld to %lld) overlap: shards must hold disjoint "
                      "rows (annbuild --rows A:B)",
                      sh[j - 1].path, (long long)sh[j - 1].info.row_offset,
                      (long long)(sh[j - 1].info.row_offset + sh[j - 1].info.rows - 1), sh[j].path,
                      (long long)sh[j].info.row_offset, (long long)(sh[j].info.row_offset + sh[j].info.rows - 1));
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
    ann_index_info info = sh[0].info;
    info.rows = total_rows;
    const ann_algo_desc *desc = ann_algo_describe(info.algo);
    bool all_have_data = true;
    for (int j = 0; j < o->n_indexes; j++)
        all_have_data = all_have_data && sh[j].info.has_dataset;
    if (o->data != NULL && o->truth == NULL && all_have_data) {
        rc = cli_usage_error("--data needs --truth (or a cagra index built with --no-dataset)");
        goto done;
    }
    if (!all_have_data) {
        if (o->data == NULL) {
            for (int j = 0; j < o->n_indexes; j++)
                if (!sh[j].info.has_dataset) {
                    cli_error("'%s': the index holds no vectors (built with --no-dataset): give the dataset it "
                              "was built from with --data DATASET",
                              sh[j].path);
                    break;
                }
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        if ((rc = read_vectors(o->data, ANN_VFMT_AUTO, true, &data)) != 0)
            goto done;
        for (int j = 0; j < o->n_indexes; j++) {
            if (sh[j].info.has_dataset)
                continue;
            /* a shard's rows of the dataset (all of it for an index at offset 0 without --rows) */
            ann_matrix part = data;
            part.owner = NULL;
            if (sh[j].info.row_offset > 0) {
                if (data.rows < sh[j].info.row_offset + sh[j].info.rows) {
                    cli_error("'%s' has %lld rows: shard '%s' holds rows %lld to %lld", o->data,
                              (long long)data.rows, sh[j].path, (long long)sh[j].info.row_offset,
                              (long long)(sh[j].info.row_offset + sh[j].info.rows - 1));
                    rc = CLI_EXIT_FAILURE;
                    goto done;
                }
                part.data = ann_matrix_row(&data, sh[j].info.row_offset);
                part.rows = sh[j].info.rows;
            } else if (o->n_indexes > 1 && data.rows > sh[j].info.rows) {
                part.rows = sh[j].info.rows;
            }
            ann_clear_error();
            if ((s = ann_index_attach_dataset(sh[j].ix, &part, p->common.threads)) != ANN_OK) {
                rc = cli_report(s, o->data);
                goto done;
            }
            cli_info("attached '%s' to '%s'", o->data, sh[j].path);
        }
    }
    if (o->filter != NULL && (rc = read_bitset(o->filter, id_space, &flt)) != 0)
        goto done;
    if (o->allow != NULL && (rc = read_allow(o->allow, id_space, &flt)) != 0)
        goto done;
    if (flt.bits != NULL) {
        for (int64_t w = 0; w < (id_space + 31) / 32; w++)
            flt.kept += __builtin_popcount(flt.bits[w]);
        cli_info("filter: %lld of %lld ids may be returned", (long long)flt.kept, (long long)id_space);
        for (int j = 0; j < o->n_indexes; j++) {
            if ((o->n_indexes == 1 && sh[j].info.row_offset == 0) || sh[j].info.has_ids)
                sh[j].flt = flt;
            else if ((rc = shard_filter(&flt, sh[j].info.row_offset, sh[j].info.rows, &sh[j].flt)) != 0)
                goto done;
        }
    }
    if ((rc = cli_settings_expand(p, desc, &settings)) != 0)
        goto done;

    if ((rc = read_vectors(o->queries, o->format, true, &queries)) != 0)
        goto done;
    if (queries.cols != info.dim) {
        cli_error("'%s': dimension %lld does not match index dimension %lld", o->queries,
                  (long long)queries.cols, (long long)info.dim);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    if (o->truth != NULL && (rc = read_truth(o, queries.rows, &truth, data.data != NULL ? NULL : &data)) != 0)
        goto done;

    int64_t n = queries.rows, k = o->k;
    if (n > 0 && k > INT64_MAX / n / (int64_t)sizeof(int64_t)) {
        cli_error("%lld queries x k = %lld is too large", (long long)n, (long long)k);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    ids = malloc((size_t)(n * k > 0 ? n * k : 1) * sizeof *ids);
    dists = malloc((size_t)(n * k > 0 ? n * k : 1) * sizeof *dists);
    widths = calloc(settings.n_table + 1, sizeof *widths);
    if (ids == NULL || dists == NULL || widths == NULL)
        goto nomem;
    if (o->n_indexes > 1 || sh[0].info.row_offset != 0) {
        const size_t nk = (size_t)(n * k > 0 ? n * k : 1);
        tmp_ids = malloc(nk * sizeof *tmp_ids);
        mrg_ids = malloc(nk * sizeof *mrg_ids);
        tmp_dists = malloc(nk * sizeof *tmp_dists);
        mrg_dists = malloc(nk * sizeof *mrg_dists);
        if (tmp_ids == NULL || mrg_ids == NULL || tmp_dists == NULL || mrg_dists == NULL)
            goto nomem;
    }

    /* Text columns: as wide as the widest "name=value" of any setting. */
    for (size_t j = 0; j < settings.n_table; j++)
        for (size_t i = 0; i < settings.count; i++) {
            char val[128];
            ann_params_format(&settings.table[j], cli_settings_get(&settings, i), val, sizeof val);
            int w = (int)(strlen(settings.table[j].name) + 1 + strlen(val));
            if (w > widths[j])
                widths[j] = w;
        }
    /* Results go to stdout, unless the neighbours themselves do. */
    bool ids_to_stdout = res != NULL && strcmp(res->path, "-") == 0;
    struct report rep = {
        .out = ids_to_stdout ? stderr : stdout,
        .style = o->style,
        .o = o,
        .settings = &settings,
        .widths = widths,
        .algo = desc->name,
        .n_queries = n,
        .have_recall = truth.data != NULL,
        .have_threshold = data.data != NULL && truth.data != NULL,
    };
    print_header(&rep);
    for (size_t i = 0; i < settings.count; i++) {
        const void *params = cli_settings_get(&settings, i);
        struct result r = {.seconds = INFINITY, .recall = NAN, .recall_threshold = NAN};
        for (int rep_i = 0; rep_i < o->repeat; rep_i++) {
            double sec = 0;
            if ((rc = search_shards(sh, o->n_indexes, params, &queries, k, o->batch, &ex, ids, dists, tmp_ids,
                                    tmp_dists, mrg_ids, mrg_dists, &sec)) != 0)
                goto done;
            if (sec < r.seconds)
                r.seconds = sec;
        }
        r.qps = r.seconds > 0 ? (double)n / r.seconds : INFINITY;
        if (truth.data != NULL) {
            ann_clear_error();
            if ((s = ann_recall_ids(ids, n, k, &truth, &r.recall)) != ANN_OK) {
                rc = cli_report(s, o->truth);
                goto done;
            }
        }
        if (data.data != NULL && truth.data != NULL) {
            ann_clear_error();
            s = ann_recall_threshold(ids, n, k, &truth, &data, &queries, info.metric, &r.recall_threshold);
            if (s != ANN_OK) {
                rc = cli_report(s, o->data ? o->data : o->truth);
                goto done;
            }
        }
        print_result(&rep, i, &r, ex.used);
    }
    if (res != NULL || dist != NULL)
        rc = write_results(res, dist, &info, n, k, ids, dists);
    goto done;

nomem:
    cli_error("out of memory");
    rc = CLI_EXIT_FAILURE;
done:
    if (res != NULL)
        cli_output_discard(&res->out);
    if (dist != NULL)
        cli_output_discard(&dist->out);
    free(res);
    free(dist);
    free(ids);
    free(dists);
    free(tmp_ids);
    free(tmp_dists);
    free(mrg_ids);
    free(mrg_dists);
    free(widths);
    cli_settings_free(&settings);
    ann_matrix_release(&queries);
    ann_matrix_release(&truth);
    ann_matrix_release(&data);
    if (sh != NULL)
        for (int j = 0; j < o->n_indexes; j++) {
            ann_index_free(sh[j].ix);
            if (sh[j].flt.bits != flt.bits)
                free(sh[j].flt.bits);
        }
    free(sh);
    free(flt.bits);
    return rc;
}

int main(int argc, char **argv)
{
    struct search_opts o = {.k = -1, .repeat = 1, .format = ANN_VFMT_AUTO};
    cli_parser p;
    int rc, c;

    cli_init(argv[0], "annsearch");
    if ((rc = cli_parser_init(&p, "k:o:", longopts, CLI_PARAMS_SEARCH, NULL, 0)) != 0)
        return rc;
    while ((c = cli_getopt(&p, argc, argv)) != CLI_GETOPT_END) {
        switch (c) {
        case CLI_GETOPT_HELP:
            usage(stdout, &p);
            goto done;
        case CLI_GETOPT_VERSION:
            cli_print_version(stdout);
            goto done;
        case CLI_GETOPT_ERROR:
            rc = CLI_EXIT_USAGE;
            goto done;
        case 'k':
            if ((rc = cli_parse_i64("-k", optarg, 1, INT32_MAX, &o.k)) != 0)
                goto done;
            break;
        case 'o':
            o.output = optarg;
            break;
        case OPT_TRUTH:
            o.truth = optarg;
            break;
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_DISTANCES:
            o.distances = optarg;
            break;
        case OPT_JSON:
            o.style = STYLE_JSON;
            break;
        case OPT_TSV:
            o.style = STYLE_TSV;
            break;
        case OPT_BATCH:
            if ((rc = cli_parse_i64("--batch", optarg, 1, INT64_MAX, &o.batch)) != 0)
                goto done;
            break;
        case OPT_REPEAT:
            if ((rc = cli_parse_int("--repeat", optarg, 1, 1000000, &o.repeat)) != 0)
                goto done;
            break;
        case OPT_FILTER:
            o.filter = optarg;
            break;
        case OPT_ALLOW:
            o.allow = optarg;
            break;
        case OPT_FORMAT:
            if (ann_vformat_parse(optarg, &o.format) != ANN_OK) {
                rc = cli_usage_error("unknown --format '%s'", optarg);
                goto done;
            }
            break;
        default:
            rc = cli_usage_error("unexpected option");
            goto done;
        }
    }
    if (argc - optind < 2) {
        rc = cli_usage_error(argc - optind == 0 ? "missing operands INDEX and QUERIES"
                                                : "missing operand QUERIES");
        goto done;
    }
    if (o.k < 0) {
        rc = cli_usage_error("missing -k K");
        goto done;
    }
    if (o.filter != NULL && o.allow != NULL) {
        rc = cli_usage_error("--filter and --allow cannot be combined");
        goto done;
    }
    o.index = argv[optind];
    o.indexes = argv + optind;
    o.n_indexes = argc - optind - 1;
    o.queries = argv[argc - 1];
    rc = run_search(&o, &p);
done:
    cli_parser_free(&p);
    return rc;
}

/*
 * annconvert - convert vector files between formats, element types and
 * row ranges, and describe any file annkit reads (--info).
 *
 *   annconvert [OPTIONS] IN OUT
 *   annconvert [OPTIONS] [--distances PATH] GRAPH OUT
 *   annconvert --to graph [--metric NAME] [--distances PATH] [--compress] IDS GRAPH
 *   annconvert --info FILE...
 *   annconvert --to cagra-v5 [--no-dataset] INDEX OUT      (annkit CAGRA index -> cuVS file)
 *   annconvert [--compress] CUVS_CAGRA INDEX                (cuVS CAGRA file -> annkit index)
 *
 * IN and OUT are PATH[:NAME] (NAME: a dataset of an HDF5 file), or "-"
 * for text on stdin/stdout.  The output is written to a temporary file
 * and renamed into place (tools/cli/cli_io.c); writing OUT.hdf5:NAME adds
 * the dataset to an existing HDF5 file by copying the file to the
 * temporary, appending there and renaming, so the original is untouched
 * until the new file is complete.
 *
 * Graph files (anngraph, man/ann-graph.5) are exported as their ids, a
 * rows x degree integer matrix (int32 unless --dtype says otherwise), and
 * optionally their distances (--distances PATH, float32); --to graph reads
 * such matrices back into a graph file (ann_graph_from_ids checks every
 * id against the number of rows).
 *
 * CAGRA indexes: --to cagra-v5 writes an annkit CAGRA index as cuVS's own
 * serialized index, version 5 (notes/algorithms.md 8; with the dataset
 * unless --no-dataset or the index has none); a cuVS CAGRA file as IN
 * (recognised by its first bytes: a numpy dtype string, then an npy
 * magic) is read into an annkit CAGRA index file OUT.
 */
#include "cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_INFO = CLI_OPT_TOOL,
    OPT_FORMAT,
    OPT_OUTPUT_FORMAT,
    OPT_DTYPE,
    OPT_ROWS,
    OPT_NORMALIZE,
    OPT_DISTANCE,
    OPT_TO,
    OPT_METRIC,
    OPT_DISTANCES,
    OPT_COMPRESS,
    OPT_NO_DATASET,
};

static const struct option longopts[] = {
    {"info", no_argument, NULL, OPT_INFO},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output-format", required_argument, NULL, OPT_OUTPUT_FORMAT},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"rows", required_argument, NULL, OPT_ROWS},
    {"normalize", no_argument, NULL, OPT_NORMALIZE},
    {"distance", required_argument, NULL, OPT_DISTANCE},
    {"to", required_argument, NULL, OPT_TO},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"distances", required_argument, NULL, OPT_DISTANCES},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"no-dataset", no_argument, NULL, OPT_NO_DATASET},
    {NULL, 0, NULL, 0},
};

/** Everything the command line asks for. */
struct convert_opts {
    bool info;              /* --info: describe the operands instead of converting */
    const char *in;         /* IN operand: PATH[:NAME], "-" = text on stdin */
    const char *out;        /* OUT operand: PATH[:NAME], "-" = text on stdout */
    ann_vformat in_format;  /* --format NAME: format of IN (AUTO = magic, then extension) */
    ann_vformat out_format; /* --output-format NAME: format of OUT (AUTO = extension) */
    int dtype;              /* --dtype TYPE: element type of OUT (-1 = keep, or the format's) */
    int64_t row_begin;      /* --rows A:B, first row */
    int64_t row_end;        /* --rows A:B, one past the last row (-1 = to the end) */
    bool normalize;         /* --normalize: unit L2 rows, computed in f32 */
    const char *distance;   /* --distance NAME: HDF5 'distance' attribute of OUT */
    bool to_graph;          /* --to graph: IN holds ids, OUT is a graph file */
    const char *metric;     /* --metric NAME of an imported graph (NULL: sqeuclidean) */
    const char *distances;  /* --distances PATH: a graph's distances (export: written, import: read) */
    bool compress;          /* --compress: zstd sections in a graph or index output */
    bool to_cuvs;           /* --to cagra-v5: IN is an annkit CAGRA index, OUT a cuVS CAGRA file */
    bool no_dataset;        /* --no-dataset: with --to cagra-v5, leave the vectors out */
};

static void usage(FILE *out)
{
    fputs("Usage: annconvert [OPTIONS] IN OUT\n"
          "       annconvert [OPTIONS] [--distances PATH] GRAPH OUT\n"
          "       annconvert --to graph [--metric NAME] [--distances PATH] IDS GRAPH\n"
          "       annconvert --to cagra-v5 [--no-dataset] INDEX CUVS_FILE\n"
          "       annconvert [--compress] CUVS_FILE INDEX\n"
          "       annconvert --info FILE...\n"
          "Convert a vector file to another format, element type or row range,\n"
          "export a graph file's neighbour ids (and distances) as a matrix, import\n"
          "such a matrix as a graph file (--to graph), or describe what a file holds\n"
          "(--info).\n"
          "\n"
          "IN, OUT and FILE are PATH[:NAME], where NAME picks a dataset of an HDF5\n"
          "file; '-' is text on stdin or stdout.  Formats: hdf5, fvecs, ivecs, bvecs,\n"
          "bin (.fbin .ibin .u8bin .i8bin .f16bin), npy, idx (input only), text.\n"
          "\n"
          "Options:\n"
          "      --info            describe each FILE: format, shape, element type; for\n"
          "                        annkit files the header, sections and meta text\n"
          "      --format NAME     format of IN (default: from its magic bytes or extension)\n"
          "      --output-format NAME\n"
          "                        format of OUT (default: from its extension)\n"
          "      --dtype TYPE      element type of OUT: f32, f16, i8, u8, i32, i64, f64\n"
          "      --rows A:B        only rows A to B-1 of IN (':1000', '500:')\n"
          "      --normalize       scale every row to unit L2 norm (computed in f32)\n"
          "      --distance NAME   HDF5 output: set the file's 'distance' attribute\n"
          "                        (euclidean, angular, hamming, jaccard)\n"
          "\n"
          "Graphs:\n"
          "      --distances PATH  GRAPH input: also write the graph's distances (float32)\n"
          "                        to PATH; with --to graph: read them from PATH\n"
          "      --to graph        read IN as neighbour ids (rows x degree integers, each\n"
          "                        below rows) and write the graph file OUT\n"
          "      --metric NAME     with --to graph: the metric recorded in the graph\n"
          "                        (default sqeuclidean)\n"
          "      --compress        with --to graph, or reading a cuVS CAGRA file: store the\n"
          "                        sections zstd-compressed\n"
          "\n"
          "CAGRA indexes:\n"
          "      --to cagra-v5     write the annkit CAGRA index IN as cuVS's serialized\n"
          "                        CAGRA index (version 5), with its vectors\n"
          "      --no-dataset      with --to cagra-v5: without the vectors\n"
          "  A cuVS CAGRA file as IN (first bytes: a numpy dtype string and an npy magic)\n"
          "  is converted to an annkit CAGRA index OUT.\n"
          "\n",
          out);
    cli_help_common(out);
}

static bool valid_distance(const char *d)
{
    static const char *names[] = {"euclidean", "angular", "hamming", "jaccard"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(d, names[i]) == 0)
            return true;
    return false;
}

/* True when the comma-separated @p list contains @p item. */
static bool list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* --info                                                              */
/* ------------------------------------------------------------------ */

static const char *kind_name(ann_kind k)
{
    return k == ANN_KIND_INDEX ? "index" : k == ANN_KIND_GRAPH ? "graph" : "?";
}

static int info_container(const char *path)
{
    ann_container_info h;
    ann_container *c = NULL;
    ann_status s = ann_container_probe(path, &h);
    if (s == ANN_OK)
        s = ann_container_open(path, &c);
    if (s != ANN_OK)
        return cli_report(s, path);

    char size[32];
    printf("file: %s\n", path);
    printf("kind: %s\n", kind_name(h.kind));
    printf("format: annkit\n");
    printf("version: %u.%u\n", (unsigned)h.major, (unsigned)h.minor);
    printf("algorithm: %s\n", ann_algo_name(h.algo));
    printf("metric: %s\n", ann_metric_name(h.metric));
    printf("dtype: %s\n", ann_dtype_name(h.dtype));
    printf("rows: %lld\n", (long long)h.rows);
    printf("dim: %lld\n", (long long)h.dim);
    printf("file size: %llu (%s)\n", (unsigned long long)h.file_size,
           cli_format_bytes(h.file_size, size, sizeof size));
    printf("sections: %u\n", (unsigned)h.n_sections);
    printf("  %-23s %12s %12s  %s\n", "name", "stored", "raw", "codec");
    int rc = 0;
    for (uint32_t i = 0; i < h.n_sections; i++) {
        const char *name;
        uint64_t stored, raw;
        ann_codec codec;
        s = ann_container_section_info(c, i, &name, &stored, &raw, &codec);
        if (s != ANN_OK) {
            rc = cli_report(s, path);
            goto done;
        }
        printf("  %-23s %12llu %12llu  %s\n", name, (unsigned long long)stored,
               (unsigned long long)raw, codec == ANN_CODEC_ZSTD ? "zstd" : "none");
    }
    if (ann_container_has(c, "meta")) {
        const void *meta;
        uint64_t len;
        s = ann_container_get(c, "meta", &meta, &len);
        if (s != ANN_OK) {
            rc = cli_report(s, path);
            goto done;
        }
        printf("meta:\n");
        const char *p = meta, *end = p + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            if (n > 0 && !(n == 1 && p[0] == '\0'))
                printf("  %.*s\n", (int)strnlen(p, n), p);
            p += n + 1;
        }
    }
done:
    ann_container_close(c);
    return rc;
}

static int info_vectors(const char *spec, const char *path, const char *name, ann_vformat fmt,
                        ann_vformat forced)
{
    ann_vectors_info vi;
    memset(&vi, 0, sizeof vi);
    ann_status s = ann_vectors_probe(spec, forced, &vi);
    if (s != ANN_OK)
        return cli_report(s, path);
    printf("file: %s\n", spec);
    printf("kind: vectors\n");
    printf("format: %s\n", ann_vformat_name(vi.format != ANN_VFMT_AUTO ? vi.format : fmt));
    if (vi.format == ANN_VFMT_HDF5 && name[0] == '\0') {
        /* The whole file: every dataset at the root with its shape. */
        if (vi.hdf5_distance[0])
            printf("distance: %s\n", vi.hdf5_distance);
        printf("datasets:\n");
        char list[sizeof vi.hdf5_datasets];
        snprintf(list, sizeof list, "%s", vi.hdf5_datasets);
        char *save = NULL;
        for (char *ds = strtok_r(list, ",", &save); ds != NULL; ds = strtok_r(NULL, ",", &save)) {
            char sub[PATH_MAX + 256];
            ann_vectors_info di;
            snprintf(sub, sizeof sub, "%s:%s", path, ds);
            if (ann_vectors_probe(sub, ANN_VFMT_HDF5, &di) == ANN_OK)
                printf("  %-16s %lld x %lld %s\n", ds, (long long)di.rows, (long long)di.cols,
                       ann_dtype_name(di.dtype));
            else
                printf("  %-16s (not a 1-D or 2-D numeric dataset: %s)\n", ds, ann_last_error());
        }
        return 0;
    }
    if (name[0])
        printf("dataset: %s\n", name);
    printf("shape: %lld x %lld\n", (long long)vi.rows, (long long)vi.cols);
    printf("dtype: %s\n", ann_dtype_name(vi.dtype));
    if (vi.format == ANN_VFMT_HDF5 && vi.hdf5_distance[0])
        printf("distance: %s\n", vi.hdf5_distance);
    return 0;
}

/* --info of a cuVS CAGRA file (read in full: its fields are npy blobs). */
static int info_cuvs(const char *path)
{
    ann_index *ix = NULL;
    ann_clear_error();
    ann_status s = ann_cagra_load_cuvs(path, &ix);
    if (s != ANN_OK)
        return cli_report(s, path);
    ann_index_info info;
    ann_index_get_info(ix, &info);
    printf("file: %s\n", path);
    printf("kind: index\n");
    printf("format: cuvs-cagra (serialization version 5)\n");
    printf("algorithm: cagra\n");
    printf("metric: %s\n", ann_metric_name(info.metric));
    printf("dtype: %s\n", ann_dtype_name(info.dtype));
    printf("rows: %lld\n", (long long)info.rows);
    printf("dim: %lld\n", (long long)info.dim);
    printf("graph degree: %lld\n", (long long)info.graph_degree);
    printf("dataset: %s\n", info.has_dataset ? "included" : "not included");
    if (info.has_ids) /* content_map bit 1: searches return source_indices[row] */
        printf("source indices: included (ids below %lld)\n", (long long)info.id_bound);
    else
        printf("source indices: not included\n");
    ann_index_free(ix);
    return 0;
}

static int run_info(char *const files[], int n, ann_vformat forced)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], name[PATH_MAX];
        int r = cli_split_spec(files[i], path, name);
        if (r == 0 && strcmp(path, "-") == 0)
            r = cli_usage_error("--info needs file names, not '-'");
        if (r == 0) {
            ann_vformat fmt = forced;
            ann_dtype elem;
            ann_status s = ANN_OK;
            const bool cuvs = fmt == ANN_VFMT_AUTO && ann_cagra_cuvs_detect(path);
            if (fmt == ANN_VFMT_AUTO && !cuvs)
                s = ann_vformat_detect(path, &fmt, &elem);
            if (i > 0)
                printf("\n");
            if (cuvs)
                r = info_cuvs(path);
            else if (s != ANN_OK)
                r = cli_report(s, path);
            else if (fmt == ANN_VFMT_ANNKIT)
                r = info_container(path);
            else
                r = info_vectors(files[i], path, name, fmt, forced);
        }
        /* Keep going over the other files; the worst status wins. */
        if (r > rc)
            rc = r;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Conversion                                                          */
/* ------------------------------------------------------------------ */

/* Decide how OUT is written; checks that fail before any data is read. */
struct out_plan {
    char path[PATH_MAX];
    char name[PATH_MAX];
    ann_vformat format;
    int format_dtype;    /* the one dtype the format holds, -1 = any */
    bool hdf5_append;    /* add to an existing HDF5 file */
    bool hdf5_replace;   /* replace an existing dataset of that name (-f) */
};

/* The plan for writing @p spec in format @p forced (AUTO: from the name);
 * @p distance is the --distance attribute asked for, if any. */
static int plan_output_spec(const char *spec, ann_vformat forced, const char *distance, bool force,
                            struct out_plan *plan)
{
    int rc;
    memset(plan, 0, sizeof *plan);
    if ((rc = cli_split_spec(spec, plan->path, plan->name)) != 0)
        return rc;
    if ((rc = cli_output_format(plan->path, forced, &plan->format, &plan->format_dtype)) != 0)
        return rc;
    if (strcmp(plan->path, "-") == 0 && !cli_format_is_text(plan->format))
        return cli_usage_error("stdout ('-') takes only text output, not %s",
                               ann_vformat_name(plan->format));
    if (plan->format == ANN_VFMT_IDX)
        return cli_usage_error("'%s': idx files can be read but not written", plan->path);
    if (distance != NULL && plan->format != ANN_VFMT_HDF5)
        return cli_usage_error("--distance applies only to HDF5 output");
    if (plan->format != ANN_VFMT_HDF5)
        return 0;

    if (plan->name[0] == '\0')
        return cli_usage_error("'%s': HDF5 output needs a dataset name: '%s:NAME'", plan->path,
                               plan->path);
    if (!cli_file_exists(plan->path))
        return 0;
    ann_vectors_info vi;
    memset(&vi, 0, sizeof vi);
    ann_clear_error();
    if (ann_vectors_probe(plan->path, ANN_VFMT_HDF5, &vi) != ANN_OK) {
        if (!force) {
            cli_error("'%s': file exists and is not a readable HDF5 file (%s); use -f to replace it",
                      plan->path, ann_last_error());
            return CLI_EXIT_FAILURE;
        }
        return 0; /* replaced by a new file */
    }
    if (list_has(vi.hdf5_datasets, plan->name)) {
        if (!force) {
            cli_error("'%s': dataset '%s' exists; use -f to replace it", plan->path, plan->name);
            return CLI_EXIT_FAILURE;
        }
        plan->hdf5_replace = true;
    }
    plan->hdf5_append = true;
    return 0;
}

static int plan_output(const struct convert_opts *o, bool force, struct out_plan *plan)
{
    return plan_output_spec(o->out, o->out_format, o->distance, force, plan);
}

/* Apply --normalize and --dtype, then fit the format's element type. */
static int transform(const struct convert_opts *o, const struct out_plan *plan, ann_matrix *m)
{
    ann_matrix tmp;
    ann_status s;
    if (o->normalize) {
        /* Always a fresh f32 copy: the input may be a read-only mapping. */
        if ((s = ann_matrix_convert(m, ANN_DTYPE_F32, &tmp)) != ANN_OK)
            return cli_report(s, o->in);
        ann_matrix_release(m);
        *m = tmp;
        if ((s = ann_matrix_normalize_rows(m)) != ANN_OK)
            return cli_report(s, o->in);
    }
    if (o->dtype >= 0 && m->dtype != (ann_dtype)o->dtype) {
        if ((s = ann_matrix_convert(m, (ann_dtype)o->dtype, &tmp)) != ANN_OK)
            return cli_report(s, o->in);
        ann_matrix_release(m);
        *m = tmp;
    }
    if (plan->format_dtype >= 0 && m->dtype != (ann_dtype)plan->format_dtype) {
        if (o->dtype >= 0)
            return cli_usage_error("'%s': %s output holds %s, not %s", plan->path,
                                   ann_vformat_name(plan->format),
                                   ann_dtype_name((ann_dtype)plan->format_dtype),
                                   ann_dtype_name((ann_dtype)o->dtype));
        return cli_convert_lossless(m, (ann_dtype)plan->format_dtype, plan->path);
    }
    return 0;
}

static int run_convert(const struct convert_opts *o, const cli_common *co)
{
    struct out_plan plan;
    cli_output out;
    ann_matrix m;
    ann_exec ex;
    char in_path[PATH_MAX], in_name[PATH_MAX], spec[2 * PATH_MAX + 2];
    int rc;
    memset(&out, 0, sizeof out);
    memset(&m, 0, sizeof m);

    if ((rc = cli_exec_init(&ex, co)) != 0)
        return rc;
    if ((rc = cli_split_spec(o->in, in_path, in_name)) != 0)
        return rc;
    if ((rc = plan_output(o, co->force, &plan)) != 0)
        return rc;
    cli_output_opts oo = {
        .force = co->force,
        .binary = !cli_format_is_text(plan.format),
        .keep_existing = plan.hdf5_append,
    };
    if ((rc = cli_output_open(&out, plan.path, &oo)) != 0)
        return rc;

    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = o->in_format;
    ro.row_begin = o->row_begin;
    ro.row_end = o->row_end;
    double t0 = cli_now();
    ann_clear_error();
    ann_status s = ann_vectors_read(o->in, &ro, &m);
    if (s != ANN_OK) {
        rc = cli_report(s, in_path);
        goto done;
    }
    cli_info("read '%s': %lld x %lld %s in %.3f s", o->in, (long long)m.rows, (long long)m.cols,
             ann_dtype_name(m.dtype), cli_now() - t0);
    if ((rc = transform(o, &plan, &m)) != 0)
        goto done;

    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.format = plan.format;
    wo.hdf5_append = plan.hdf5_append;
    wo.hdf5_replace = plan.hdf5_replace;
    wo.hdf5_distance = o->distance;
    if (plan.name[0])
        snprintf(spec, sizeof spec, "%s:%s", cli_output_target(&out), plan.name);
    else
        snprintf(spec, sizeof spec, "%s", cli_output_target(&out));
    t0 = cli_now();
    ann_clear_error();
    s = ann_vectors_write(spec, &m, &wo);
    if (s != ANN_OK) {
        rc = cli_report(s, plan.path);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    cli_info("wrote '%s': %lld x %lld %s (%s) in %.3f s", o->out, (long long)m.rows,
             (long long)m.cols, ann_dtype_name(m.dtype), ann_vformat_name(plan.format),
             cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_matrix_release(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Graph files: export, import (--to graph)                            */
/* ------------------------------------------------------------------ */

/*
 * Whether @p path (a plain path, no ":NAME") is an annkit graph file: *is
 * is set when its magic says annkit and its header says graph.  A file
 * that does not exist or is not annkit is left to the vector readers,
 * which report it; an annkit file whose header cannot be read is
 * reported here.  Returns 0 or an exit status.
 */
static int graph_input(const char *path, ann_vformat forced, bool *is)
{
    *is = false;
    if (strcmp(path, "-") == 0 || (forced != ANN_VFMT_AUTO && forced != ANN_VFMT_ANNKIT))
        return 0;
    ann_vformat fmt;
    ann_dtype elem;
    if (!cli_file_exists(path) || ann_vformat_detect(path, &fmt, &elem) != ANN_OK ||
        fmt != ANN_VFMT_ANNKIT) {
        ann_clear_error();
        return 0;
    }
    ann_container_info h;
    ann_clear_error();
    ann_status s = ann_container_probe(path, &h);
    if (s != ANN_OK)
        return cli_report(s, path);
    *is = h.kind == ANN_KIND_GRAPH;
    return 0;
}

/* "TARGET" or "TARGET:NAME" into @p buf. */
static const char *target_spec(char *buf, size_t len, const char *target, const char *name)
{
    if (name[0])
        snprintf(buf, len, "%s:%s", target, name);
    else
        snprintf(buf, len, "%s", target);
    return buf;
}

static int run_export(const struct convert_opts *o, const cli_common *co, const char *in_path)
{
    struct out_plan plan, dplan;
    cli_output out, dout;
    ann_graph *g = NULL;
    ann_matrix ids, dist;
    ann_exec ex;
    char spec[2 * PATH_MAX + 2];
    bool shared = false;
    int rc;
    ann_status s;
    memset(&out, 0, sizeof out);
    memset(&dout, 0, sizeof dout);
    memset(&ids, 0, sizeof ids);
    memset(&dist, 0, sizeof dist);
    memset(&dplan, 0, sizeof dplan);

    if (o->normalize)
        return cli_usage_error("'%s' is a graph file: --normalize does not apply to its ids", o->in);
    if ((rc = cli_exec_init(&ex, co)) != 0)
        return rc;
    if ((rc = plan_output(o, co->force, &plan)) != 0)
        return rc;
    if (o->distances != NULL) {
        if ((rc = plan_output_spec(o->distances, ANN_VFMT_AUTO, NULL, co->force, &dplan)) != 0)
            return rc;
        if (strcmp(dplan.path, plan.path) == 0) {
            /* Two datasets of one HDF5 file are written to one temporary. */
            if (plan.format != ANN_VFMT_HDF5 || strcmp(plan.name, dplan.name) == 0)
                return cli_usage_error("--distances '%s' names the same output as '%s' (use another "
                                       "file, or another dataset of the HDF5 file)",
                                       o->distances, o->out);
            shared = true;
        }
    }
    cli_output_opts oo = {
        .force = co->force,
        .binary = !cli_format_is_text(plan.format),
        .keep_existing = plan.hdf5_append,
    };
    if ((rc = cli_output_open(&out, plan.path, &oo)) != 0)
        goto done;
    if (o->distances != NULL && !shared) {
        cli_output_opts doo = {
            .force = co->force,
            .binary = !cli_format_is_text(dplan.format),
            .keep_existing = dplan.hdf5_append,
        };
        if ((rc = cli_output_open(&dout, dplan.path, &doo)) != 0)
            goto done;
    }

    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_graph_load(in_path, &g)) != ANN_OK) {
        rc = cli_report(s, in_path);
        goto done;
    }
    cli_info("read '%s': graph of %lld rows x degree %d, %s, %s in %.3f s", o->in, (long long)g->rows,
             (int)g->degree, ann_metric_name(g->metric), g->distances ? "with distances" : "no distances",
             cli_now() - t0);
    if (o->distances != NULL && g->distances == NULL) {
        cli_error("'%s': the graph holds no distances (it was built with --return-distances false)",
                  in_path);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    int64_t begin = o->row_begin, end = o->row_end < 0 ? g->rows : o->row_end;
    if (begin >= g->rows || end > g->rows) {
        cli_error("'%s': --rows %lld:%lld is outside the graph's %lld rows", in_path, (long long)begin,
                  (long long)end, (long long)g->rows);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }

    /* The ids: int32 unless --dtype or the format says otherwise. */
    ids = ann_matrix_view(g->ids + begin * g->degree, end - begin, g->degree, ANN_DTYPE_U32);
    if (o->dtype < 0 && plan.format_dtype < 0 && (rc = cli_convert_lossless(&ids, ANN_DTYPE_I32, plan.path)) != 0)
        goto done;
    if ((rc = transform(o, &plan, &ids)) != 0)
        goto done;
    ann_write_opts wo;
    ann_write_opts_init(&wo);
    wo.format = plan.format;
    wo.hdf5_append = plan.hdf5_append;
    wo.hdf5_replace = plan.hdf5_replace;
    wo.hdf5_distance = o->distance;
    t0 = cli_now();
    ann_clear_error();
    if ((s = ann_vectors_write(target_spec(spec, sizeof spec, cli_output_target(&out), plan.name), &ids,
                               &wo)) != ANN_OK) {
        rc = cli_report(s, plan.path);
        goto done;
    }

    /* The distances: float32 as stored, in the same rows. */
    if (o->distances != NULL) {
        struct convert_opts dopts = *o;
        dopts.dtype = -1;
        dopts.normalize = false;
        dist = ann_matrix_view(g->distances + begin * g->degree, end - begin, g->degree, ANN_DTYPE_F32);
        if ((rc = transform(&dopts, &dplan, &dist)) != 0)
            goto done;
        ann_write_opts_init(&wo);
        wo.format = dplan.format;
        wo.hdf5_append = shared ? true : dplan.hdf5_append;
        wo.hdf5_replace = dplan.hdf5_replace;
        ann_clear_error();
        if ((s = ann_vectors_write(target_spec(spec, sizeof spec, cli_output_target(shared ? &out : &dout),
                                               dplan.name),
                                   &dist, &wo)) != ANN_OK) {
            rc = cli_report(s, dplan.path);
            goto done;
        }
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    if (o->distances != NULL && !shared && (rc = cli_output_commit(&dout)) != 0)
        goto done;
    cli_info("wrote '%s': %lld x %lld %s ids (%s)%s%s in %.3f s", o->out, (long long)ids.rows,
             (long long)ids.cols, ann_dtype_name(ids.dtype), ann_vformat_name(plan.format),
             o->distances ? " and distances to " : "", o->distances ? o->distances : "", cli_now() - t0);
done:
    cli_output_discard(&out);
    cli_output_discard(&dout);
    ann_matrix_release(&ids);
    ann_matrix_release(&dist);
    ann_graph_free(g);
    return rc;
}

/* Value @p j of row @p i of a float matrix, as a double. */
static double float_at(const ann_matrix *m, int64_t i, int64_t j)
{
    const void *r = ann_matrix_row(m, i);
    switch (m->dtype) {
    case ANN_DTYPE_F64:
        return ((const double *)r)[j];
    case ANN_DTYPE_F16:
        return ann_f16_to_f32(((const uint16_t *)r)[j]);
    default:
        return ((const float *)r)[j];
    }
}

/*
 * Make the ids matrix @p m (read from @p what) one that ann_graph_from_ids
 * takes: i32, u32 and i64 as they are; i8 and u8 widened; floating-point
 * values (text is read as f32) only when each is an integer that the type
 * holds exactly.  Returns 0 or CLI_EXIT_FAILURE.
 */
static int ids_as_integers(ann_matrix *m, const char *what)
{
    ann_matrix conv;
    ann_status s;
    switch (m->dtype) {
    case ANN_DTYPE_I32:
    case ANN_DTYPE_U32:
    case ANN_DTYPE_I64:
        return 0;
    case ANN_DTYPE_I8:
    case ANN_DTYPE_U8:
        break;
    case ANN_DTYPE_F32:
    case ANN_DTYPE_F16:
    case ANN_DTYPE_F64: {
        const double exact = m->dtype == ANN_DTYPE_F64 ? 9007199254740992.0
                           : m->dtype == ANN_DTYPE_F32 ? 16777216.0
                                                       : 2048.0;
        for (int64_t i = 0; i < m->rows; i++)
            for (int64_t j = 0; j < m->cols; j++) {
                double v = float_at(m, i, j);
                if (v != floor(v)) {
                    cli_error("'%s': row %lld, column %lld holds %g, not an id", what, (long long)i,
                              (long long)j, v);
                    return CLI_EXIT_FAILURE;
                }
                if (fabs(v) >= exact) {
                    cli_error("'%s': row %lld, column %lld: id %.0f is beyond the integers that %s "
                              "holds exactly (%.0f); give the ids as integers (npy, ivecs, ibin)",
                              what, (long long)i, (long long)j, v, ann_dtype_name(m->dtype), exact);
                    return CLI_EXIT_FAILURE;
                }
            }
        break;
    }
    default:
        cli_error("'%s': %s values cannot be neighbour ids", what, ann_dtype_name(m->dtype));
        return CLI_EXIT_FAILURE;
    }
    if ((s = ann_matrix_convert(m, ANN_DTYPE_I64, &conv)) != ANN_OK)
        return cli_report(s, what);
    ann_matrix_release(m);
    *m = conv;
    return 0;
}

static int run_to_graph(const struct convert_opts *o, const cli_common *co)
{
    char in_path[PATH_MAX], in_name[PATH_MAX], d_path[PATH_MAX], d_name[PATH_MAX];
    cli_output out;
    ann_matrix ids, dist;
    ann_graph *g = NULL;
    ann_exec ex;
    ann_metric metric = ANN_METRIC_SQEUCLIDEAN;
    bool regraph = false;
    int rc;
    ann_status s;
    memset(&out, 0, sizeof out);
    memset(&ids, 0, sizeof ids);
    memset(&dist, 0, sizeof dist);

    if (o->dtype >= 0 || o->normalize || o->distance != NULL || o->out_format != ANN_VFMT_AUTO ||
        o->row_begin != 0 || o->row_end != -1)
        return cli_usage_error("--to graph takes no vector conversion options (--dtype, --rows, "
                               "--normalize, --distance, --output-format)");
    if (o->metric != NULL && ann_metric_parse(o->metric, &metric) != ANN_OK)
        return cli_usage_error("unknown --metric '%s' (sqeuclidean, euclidean, inner_product, "
                               "cosine, l1, hamming)",
                               o->metric);
    if ((rc = cli_split_spec(o->in, in_path, in_name)) != 0)
        return rc;
    if (o->distances != NULL && (rc = cli_split_spec(o->distances, d_path, d_name)) != 0)
        return rc;
    if ((rc = graph_input(in_path, o->in_format, &regraph)) != 0)
        return rc;
    if (regraph && (o->metric != NULL || o->distances != NULL))
        return cli_usage_error("'%s' is a graph file already: --to graph copies it (--compress), "
                               "without --metric or --distances",
                               o->in);
    if ((rc = cli_exec_init(&ex, co)) != 0)
        return rc;
    cli_output_opts oo = {.force = co->force, .binary = true};
    if ((rc = cli_output_open(&out, o->out, &oo)) != 0)
        return rc;

    double t0 = cli_now();
    if (regraph) {
        ann_clear_error();
        if ((s = ann_graph_load(in_path, &g)) != ANN_OK) {
            rc = cli_report(s, in_path);
            goto done;
        }
    } else {
        ann_read_opts ro;
        ann_read_opts_init(&ro);
        ro.format = o->in_format;
        ann_clear_error();
        if ((s = ann_vectors_read(o->in, &ro, &ids)) != ANN_OK) {
            rc = cli_report(s, in_path);
            goto done;
        }
        cli_info("read '%s': %lld x %lld %s", o->in, (long long)ids.rows, (long long)ids.cols,
                 ann_dtype_name(ids.dtype));
        if ((rc = ids_as_integers(&ids, in_path)) != 0)
            goto done;
        if (o->distances != NULL) {
            ann_read_opts_init(&ro);
            ann_clear_error();
            if ((s = ann_vectors_read(o->distances, &ro, &dist)) != ANN_OK) {
                rc = cli_report(s, d_path);
                goto done;
            }
            cli_info("read '%s': %lld x %lld %s", o->distances, (long long)dist.rows,
                     (long long)dist.cols, ann_dtype_name(dist.dtype));
            if (dist.rows != ids.rows || dist.cols != ids.cols) {
                cli_error("'%s': %lld x %lld distances, but '%s' holds %lld x %lld ids", d_path,
                          (long long)dist.rows, (long long)dist.cols, o->in, (long long)ids.rows,
                          (long long)ids.cols);
                rc = CLI_EXIT_FAILURE;
                goto done;
            }
            if (dist.dtype != ANN_DTYPE_F32) {
                ann_matrix f;
                if ((s = ann_matrix_convert(&dist, ANN_DTYPE_F32, &f)) != ANN_OK) {
                    rc = cli_report(s, d_path);
                    goto done;
                }
                ann_matrix_release(&dist);
                dist = f;
            }
        }
        ann_clear_error();
        if ((s = ann_graph_from_ids(&ids, o->distances ? &dist : NULL, metric, &g)) != ANN_OK) {
            rc = cli_report(s, in_path);
            goto done;
        }
    }
    ann_clear_error();
    if ((s = ann_graph_save(g, cli_output_target(&out), o->compress, co->threads)) != ANN_OK) {
        rc = cli_report(s, o->out);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    cli_info("wrote '%s': graph of %lld rows x degree %d, %s, %s in %.3f s", o->out, (long long)g->rows,
             (int)g->degree, ann_metric_name(g->metric), g->distances ? "with distances" : "no distances",
             cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_graph_free(g);
    ann_matrix_release(&ids);
    ann_matrix_release(&dist);
    return rc;
}

/* ------------------------------------------------------------------ */
/* CAGRA indexes <-> cuVS CAGRA files                                  */
/* ------------------------------------------------------------------ */

static int cagra_options_check(const struct convert_opts *o, const char *what)
{
    if (o->dtype >= 0 || o->normalize || o->distance != NULL || o->out_format != ANN_VFMT_AUTO ||
        o->row_begin != 0 || o->row_end != -1 || o->metric != NULL || o->distances != NULL)
        return cli_usage_error("%s takes no vector or graph options (--dtype, --rows, --normalize, --distance, "
                               "--output-format, --metric, --distances)",
                               what);
    return 0;
}

/* --to cagra-v5: annkit CAGRA index -> cuVS file. */
static int run_to_cuvs(const struct convert_opts *o, const cli_common *co)
{
    cli_output out;
    ann_index *ix = NULL;
    int rc;
    ann_status s;
    memset(&out, 0, sizeof out);
    if ((rc = cagra_options_check(o, "--to cagra-v5")) != 0)
        return rc;
    if (o->compress)
        return cli_usage_error("--compress: cuVS CAGRA files are not compressed");
    cli_output_opts oo = {.force = co->force, .binary = true};
    if ((rc = cli_output_open(&out, o->out, &oo)) != 0)
        return rc;
    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_index_load(o->in, &ix)) != ANN_OK) {
        rc = cli_report(s, o->in);
        goto done;
    }
    ann_index_info info;
    ann_index_get_info(ix, &info);
    if (info.algo != ANN_ALGO_CAGRA) {
        cli_error("'%s': --to cagra-v5 needs a cagra index (this one is %s)", o->in, ann_algo_name(info.algo));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    const bool with_data = info.has_dataset && !o->no_dataset;
    if (!info.has_dataset && !o->no_dataset)
        cli_info("'%s' holds no vectors: the cuVS file will not have them either", o->in);
    ann_clear_error();
    if ((s = ann_cagra_save_cuvs(ix, cli_output_target(&out), with_data)) != ANN_OK) {
        /* ANN_ERR_INVALID_ARG is about the index (sizes, ids that do not fit uint32), not the output */
        rc = cli_report(s, s == ANN_ERR_INVALID_ARG ? o->in : o->out);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    cli_info("wrote '%s': cuVS CAGRA file (version 5), %lld rows x degree %lld, %s%s, in %.3f s", o->out,
             (long long)info.rows, (long long)info.graph_degree, with_data ? "with the dataset" : "graph only",
             info.has_ids ? ", with source indices" : "",
             cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_index_free(ix);
    return rc;
}

/* A cuVS CAGRA file -> annkit CAGRA index. */
static int run_from_cuvs(const struct convert_opts *o, const cli_common *co)
{
    cli_output out;
    ann_index *ix = NULL;
    int rc;
    ann_status s;
    memset(&out, 0, sizeof out);
    if ((rc = cagra_options_check(o, "reading a cuVS CAGRA file")) != 0)
        return rc;
    if (o->no_dataset)
        return cli_usage_error("--no-dataset applies only with --to cagra-v5");
    cli_output_opts oo = {.force = co->force, .binary = true};
    if ((rc = cli_output_open(&out, o->out, &oo)) != 0)
        return rc;
    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_cagra_load_cuvs(o->in, &ix)) != ANN_OK) {
        rc = cli_report(s, o->in);
        goto done;
    }
    ann_clear_error();
    if ((s = ann_index_save(ix, cli_output_target(&out), o->compress, co->threads)) != ANN_OK) {
        rc = cli_report(s, o->out);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    ann_index_info info;
    ann_index_get_info(ix, &info);
    cli_info("wrote '%s': cagra index, %lld rows x %lld dim, degree %lld, %s, %s%s, in %.3f s", o->out,
             (long long)info.rows, (long long)info.dim, (long long)info.graph_degree, ann_metric_name(info.metric),
             info.has_dataset ? "with the dataset" : "graph only", info.has_ids ? ", with source indices" : "",
             cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_index_free(ix);
    return rc;
}

int main(int argc, char **argv)
{
    struct convert_opts o = {
        .in_format = ANN_VFMT_AUTO,
        .out_format = ANN_VFMT_AUTO,
        .dtype = -1,
        .row_begin = 0,
        .row_end = -1,
    };
    cli_parser p;
    int rc, c;
    ann_dtype dt;

    cli_init(argv[0], "annconvert");
    if ((rc = cli_parser_init(&p, "", longopts, CLI_PARAMS_NONE, NULL, 0)) != 0)
        return rc;
    while ((c = cli_getopt(&p, argc, argv)) != CLI_GETOPT_END) {
        switch (c) {
        case CLI_GETOPT_HELP:
            usage(stdout);
            goto done;
        case CLI_GETOPT_VERSION:
            cli_print_version(stdout);
            goto done;
        case CLI_GETOPT_ERROR:
            rc = CLI_EXIT_USAGE;
            goto done;
        case OPT_INFO:
            o.info = true;
            break;
        case OPT_FORMAT:
            if (ann_vformat_parse(optarg, &o.in_format) != ANN_OK) {
                rc = cli_usage_error("unknown --format '%s'", optarg);
                goto done;
            }
            break;
        case OPT_OUTPUT_FORMAT:
            if (ann_vformat_parse(optarg, &o.out_format) != ANN_OK) {
                rc = cli_usage_error("unknown --output-format '%s'", optarg);
                goto done;
            }
            break;
        case OPT_DTYPE:
            if (ann_dtype_parse(optarg, &dt) != ANN_OK) {
                rc = cli_usage_error("unknown --dtype '%s' (f32, f16, i8, u8, i32, i64, f64)", optarg);
                goto done;
            }
            o.dtype = (int)dt;
            break;
        case OPT_ROWS:
            if ((rc = cli_parse_rows("--rows", optarg, &o.row_begin, &o.row_end)) != 0)
                goto done;
            break;
        case OPT_NORMALIZE:
            o.normalize = true;
            break;
        case OPT_DISTANCE:
            if (!valid_distance(optarg)) {
                rc = cli_usage_error("unknown --distance '%s' (euclidean, angular, hamming, jaccard)",
                                     optarg);
                goto done;
            }
            o.distance = optarg;
            break;
        case OPT_TO:
            if (strcmp(optarg, "graph") == 0) {
                o.to_graph = true;
            } else if (strcmp(optarg, "cagra-v5") == 0 || strcmp(optarg, "cuvs-cagra") == 0) {
                o.to_cuvs = true;
            } else if (strcmp(optarg, "hnswlib") == 0) {
                cli_error("--to hnswlib: not available in this build (it converts CAGRA indexes)");
                rc = CLI_EXIT_UNAVAILABLE;
                goto done;
            } else {
                rc = cli_usage_error("unknown --to '%s' (graph, cagra-v5)", optarg);
                goto done;
            }
            break;
        case OPT_METRIC:
            o.metric = optarg;
            break;
        case OPT_DISTANCES:
            o.distances = optarg;
            break;
        case OPT_COMPRESS:
            o.compress = true;
            break;
        case OPT_NO_DATASET:
            o.no_dataset = true;
            break;
        default:
            rc = cli_usage_error("unexpected option");
            goto done;
        }
    }

    int n = argc - optind;
    if (o.info) {
        if (o.dtype >= 0 || o.normalize || o.distance != NULL || o.out_format != ANN_VFMT_AUTO ||
            o.row_begin != 0 || o.row_end != -1 || o.to_graph || o.metric != NULL ||
            o.distances != NULL || o.compress || o.to_cuvs || o.no_dataset) {
            rc = cli_usage_error("--info takes no conversion options (--dtype, --rows, --normalize, "
                                 "--distance, --output-format, --to, --metric, --distances, --compress)");
            goto done;
        }
        if (n < 1) {
            rc = cli_usage_error("--info needs at least one FILE");
            goto done;
        }
        rc = run_info(argv + optind, n, o.in_format);
        goto done;
    }
    if (n < 2) {
        rc = cli_usage_error(n == 0 ? "missing operands IN and OUT" : "missing operand OUT");
        goto done;
    }
    if (n > 2) {
        rc = cli_usage_error("too many operands (from '%s' on)", argv[optind + 2]);
        goto done;
    }
    o.in = argv[optind];
    o.out = argv[optind + 1];
    if (o.to_graph && o.to_cuvs) {
        rc = cli_usage_error("--to was given twice");
        goto done;
    }
    if (o.to_graph) {
        rc = run_to_graph(&o, &p.common);
        goto done;
    }
    if (o.to_cuvs) {
        rc = run_to_cuvs(&o, &p.common);
        goto done;
    }
    {
        char cpath[PATH_MAX], cname[PATH_MAX];
        if ((rc = cli_split_spec(o.in, cpath, cname)) != 0)
            goto done;
        if (strcmp(cpath, "-") != 0 && o.in_format == ANN_VFMT_AUTO && cli_file_exists(cpath) &&
            ann_cagra_cuvs_detect(cpath)) {
            rc = run_from_cuvs(&o, &p.common);
            goto done;
        }
    }
    if (o.no_dataset) {
        rc = cli_usage_error("--no-dataset applies only with --to cagra-v5");
        goto done;
    }
    if (o.metric != NULL || o.compress) {
        rc = cli_usage_error("%s applies only with --to graph", o.metric ? "--metric" : "--compress");
        goto done;
    }
    char in_path[PATH_MAX], in_name[PATH_MAX];
    bool is_graph = false;
    if ((rc = cli_split_spec(o.in, in_path, in_name)) != 0 ||
        (rc = graph_input(in_path, o.in_format, &is_graph)) != 0)
        goto done;
    if (is_graph) {
        rc = run_export(&o, &p.common, in_path);
        goto done;
    }
    if (o.distances != NULL) {
        rc = cli_usage_error("--distances applies to a graph file input, or with --to graph");
        goto done;
    }
    rc = run_convert(&o, &p.common);
done:
    cli_parser_free(&p);
    return rc;
}

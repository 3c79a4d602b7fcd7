/*
 * annbuild - build an index file from a dataset.
 *
 *   annbuild --algo NAME [--metric NAME] [PARAMETERS] [--rows A:B]
 *            [--compress] DATASET -o INDEX
 *   annbuild --algo cagra [--graph GRAPH] [--no-dataset] ... DATASET -o INDEX
 *
 * The build parameters are options generated from the library's table of
 * the chosen algorithm (--n-lists for n_lists, ...); the index is saved
 * to a temporary file next to INDEX and renamed into place.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_ALGO = CLI_OPT_TOOL,
    OPT_METRIC,
    OPT_ROWS,
    OPT_COMPRESS,
    OPT_FORMAT,
    OPT_GRAPH,
    OPT_NO_DATASET,
    OPT_EXTEND,
};

static const struct option longopts[] = {
    {"algo", required_argument, NULL, OPT_ALGO},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"rows", required_argument, NULL, OPT_ROWS},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"format", required_argument, NULL, OPT_FORMAT},
    CLI_MEM_LONGOPTS,
    {"graph", required_argument, NULL, OPT_GRAPH},
    {"no-dataset", no_argument, NULL, OPT_NO_DATASET},
    {"extend", required_argument, NULL, OPT_EXTEND},
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

/** Everything the command line asks for. */
struct build_opts {
    const char *algo;     /* --algo NAME (required) */
    const char *metric;   /* --metric NAME (NULL: the algorithm's default) */
    const char *dataset;  /* DATASET operand, PATH[:NAME] */
    const char *extend;   /* --extend INDEX: add DATASET's rows to this index */
    const char *output;   /* -o, --output INDEX (required) */
    ann_vformat format;   /* --format NAME of DATASET (AUTO: magic, then extension) */
    int64_t row_begin;    /* --rows A:B, first row */
    int64_t row_end;      /* --rows A:B, one past the last row (-1: to the end) */
    bool compress;        /* --compress: zstd sections */
    cli_mem_limits mem;   /* --max-host-memory, --max-gpu-memory */
    const char *graph;    /* --graph GRAPH: initial kNN graph of a cagra build (anngraph file) */
    bool no_dataset;      /* --no-dataset: a cagra index without the vectors */
};

/* Index algorithms annbuild knows by name (anngraph makes the graphs). */
static const ann_algo index_algos[] = {
    ANN_ALGO_BRUTE_FORCE, ANN_ALGO_IVF_FLAT, ANN_ALGO_IVF_SQ,
    ANN_ALGO_IVF_PQ,      ANN_ALGO_CAGRA,    ANN_ALGO_HNSW,
};
#define N_INDEX_ALGOS (sizeof index_algos / sizeof index_algos[0])

/* "brute_force, ivf_flat" (available ones) into @p buf. */
static const char *algo_list(char *buf, size_t len, bool available)
{
    buf[0] = '\0';
    for (size_t i = 0; i < N_INDEX_ALGOS; i++) {
        if ((ann_algo_describe(index_algos[i]) != NULL) != available)
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", used ? ", " : "", ann_algo_name(index_algos[i]));
    }
    return buf;
}

static void usage(FILE *out, const cli_parser *p)
{
    char avail[256], missing[256];
    algo_list(avail, sizeof avail, true);
    algo_list(missing, sizeof missing, false);
    fputs("Usage: annbuild --algo NAME [OPTIONS] DATASET -o INDEX\n"
          "Build an index of the vectors in DATASET and save it to INDEX.\n"
          "\n"
          "DATASET is PATH[:NAME], where NAME picks a dataset of an HDF5 file.\n"
          "\n"
          "Options:\n",
          out);
    fprintf(out, "      --algo NAME       index algorithm: %s\n", avail);
    if (missing[0])
        fprintf(out, "                        (not in this build: %s)\n", missing);
    fputs("      --metric NAME     sqeuclidean (default), euclidean, inner_product,\n"
          "                        cosine, l1, hamming\n"
          "  -o, --output INDEX    the index file to write (required)\n"
          "      --rows A:B        index only rows A to B-1 of DATASET (':1000', '500:')\n"
          "      --compress        store the index sections zstd-compressed\n"
          "      --format NAME     format of DATASET (default: from its magic or extension)\n",
          out);
    cli_mem_help(out);
    fputs("\n"
          "CAGRA:\n"
          "      --graph GRAPH     take the initial kNN graph from GRAPH (an anngraph file\n"
          "                        of the same rows) instead of building one; its rows are\n"
          "                        re-sorted by exact distance, and a degree below\n"
          "                        --intermediate-graph-degree replaces it\n"
          "      --extend INDEX    add the rows of DATASET to INDEX (ids continue after\n"
          "                        the largest one; cagra links them into its graph) and\n"
          "                        write the result to -o; --algo and build parameters\n"
          "                        do not apply\n"
          "      --no-dataset      keep only the graph, not the vectors: annsearch then\n"
          "                        needs --data DATASET\n",
          out);
    cli_help_params(out, p);
    fputs("\n", out);
    cli_help_common(out);
}

/* Resolve --algo: 0, or an exit status after printing. */
static int resolve_algo(const char *name, const ann_algo_desc **desc)
{
    char avail[256];
    ann_algo a;
    if (ann_algo_parse(name, &a) != ANN_OK)
        return cli_usage_error("unknown --algo '%s' (available: %s)", name,
                               algo_list(avail, sizeof avail, true));
    bool is_index = false;
    for (size_t i = 0; i < N_INDEX_ALGOS; i++)
        is_index |= index_algos[i] == a;
    if (!is_index)
        return cli_usage_error("--algo %s makes graphs, not indexes; use anngraph "
                               "(annbuild takes: %s)",
                               name, algo_list(avail, sizeof avail, true));
    *desc = ann_algo_describe(a);
    if (*desc == NULL) {
        cli_error("--algo %s: not available in this build (available: %s)", name,
                  algo_list(avail, sizeof avail, true));
        return CLI_EXIT_UNAVAILABLE;
    }
    return 0;
}

static int run_build(const struct build_opts *o, const cli_parser *p)
{
    const ann_algo_desc *desc = NULL;
    void *params = NULL;
    ann_index *ix = NULL;
    ann_graph *knn = NULL;
    ann_matrix data;
    cli_output out;
    ann_exec ex;
    char path[PATH_MAX], name[PATH_MAX], size[32];
    int rc;
    ann_status s;
    memset(&data, 0, sizeof data);
    memset(&out, 0, sizeof out);

    if ((rc = resolve_algo(o->algo, &desc)) != 0)
        goto done;
    params = calloc(1, desc->build_params_size ? desc->build_params_size : 1);
    if (params == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    if (desc->build_params_init != NULL)
        desc->build_params_init(params);
    if (o->metric != NULL) {
        ann_metric metric;
        if (ann_metric_parse(o->metric, &metric) != ANN_OK) {
            rc = cli_usage_error("unknown --metric '%s' (sqeuclidean, euclidean, inner_product, "
                                 "cosine, l1, hamming)",
                                 o->metric);
            goto done;
        }
        if (desc->metric_offset + sizeof(ann_metric) <= desc->build_params_size)
            memcpy((char *)params + desc->metric_offset, &metric, sizeof metric);
    }
    if ((rc = cli_params_apply(p, desc, params)) != 0)
        goto done;
    if (desc->algo != ANN_ALGO_CAGRA && (o->graph != NULL || o->no_dataset)) {
        rc = cli_usage_error("%s applies only to --algo cagra", o->graph != NULL ? "--graph" : "--no-dataset");
        goto done;
    }
    if (desc->algo == ANN_ALGO_CAGRA && o->no_dataset)
        ((ann_cagra_params *)params)->attach_dataset_on_build = false;
    if ((rc = cli_split_spec(o->dataset, path, name)) != 0)
        goto done;
    if ((rc = cli_exec_init(&ex, &p->common)) != 0)
        goto done;
    ex.max_host_memory = (uint64_t)o->mem.max_host; /* 0 = available memory (cagra build_algo auto) */
    /* the memory model says whether the build fits, before any work */
    if ((rc = cli_mem_check(&o->mem, o->dataset, o->format, o->row_begin, o->row_end, desc->algo, params,
                            ex.device)) != 0)
        goto done;
    cli_output_opts oo = {.force = p->common.force, .binary = true};
    if ((rc = cli_output_open(&out, o->output, &oo)) != 0)
        goto done;

    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = o->format;
    ro.row_begin = o->row_begin;
    ro.row_end = o->row_end;
    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_vectors_read(o->dataset, &ro, &data)) != ANN_OK) {
        rc = cli_report(s, path);
        goto done;
    }
    cli_info("read '%s': %lld x %lld %s in %.3f s", o->dataset, (long long)data.rows,
             (long long)data.cols, ann_dtype_name(data.dtype), cli_now() - t0);
    if (data.dtype != ANN_DTYPE_F32 && data.dtype != ANN_DTYPE_F16 && data.dtype != ANN_DTYPE_I8 &&
        data.dtype != ANN_DTYPE_U8) {
        /* Indexes hold f32/f16/i8/u8; other element types are read as f32. */
        ann_matrix f;
        cli_info("'%s': converting %s to f32", o->dataset, ann_dtype_name(data.dtype));
        if ((s = ann_matrix_convert(&data, ANN_DTYPE_F32, &f)) != ANN_OK) {
            rc = cli_report(s, path);
            goto done;
        }
        ann_matrix_release(&data);
        data = f;
    }

    if (o->graph != NULL) {
        ann_clear_error();
        if ((s = ann_graph_load(o->graph, &knn)) != ANN_OK) {
            rc = cli_report(s, o->graph);
            goto done;
        }
        if (knn->rows != data.rows) {
            cli_error("'%s': the graph has %lld rows, '%s' has %lld", o->graph, (long long)knn->rows, o->dataset,
                      (long long)data.rows);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        cli_info("read '%s': %lld rows x degree %d, %s", o->graph, (long long)knn->rows, (int)knn->degree,
                 ann_metric_name(knn->metric));
    }

    t0 = cli_now();
    ann_clear_error();
    if (desc->algo == ANN_ALGO_CAGRA)
        s = ann_cagra_build(params, &data, knn, &ex, &ix);
    else
        s = ann_index_build(desc->algo, params, &data, &ex, &ix);
    cli_progress_end();
    if (s != ANN_OK) {
        rc = cli_report(s, o->graph != NULL && s == ANN_ERR_MISMATCH ? o->graph : path);
        goto done;
    }
    double t_build = cli_now() - t0;
    /* a shard remembers its first row, so annsearch can merge shards by global row number */
    if (o->row_begin > 0 && (s = ann_index_set_row_offset(ix, o->row_begin)) != ANN_OK) {
        rc = cli_report(s, path);
        goto done;
    }
    ann_index_info info;
    ann_index_get_info(ix, &info);
    if (info.n_lists > 0)
        cli_info("built %s index: %lld rows x %lld dim, %lld lists, %s, %s, %s in memory, "
                 "%.3f s on %s",
                 desc->name, (long long)info.rows, (long long)info.dim, (long long)info.n_lists,
                 ann_dtype_name(info.dtype), ann_metric_name(info.metric),
                 cli_format_bytes(info.memory_bytes, size, sizeof size), t_build,
                 ann_device_name(ex.used));
    else if (info.graph_degree > 0)
        cli_info("built %s index: %lld rows x %lld dim, graph degree %lld, %s, %s, %s%s in memory, "
                 "%.3f s on %s",
                 desc->name, (long long)info.rows, (long long)info.dim, (long long)info.graph_degree,
                 ann_dtype_name(info.dtype), ann_metric_name(info.metric),
                 cli_format_bytes(info.memory_bytes, size, sizeof size),
                 info.has_dataset ? "" : " (graph only)", t_build, ann_device_name(ex.used));
    else
        cli_info("built %s index: %lld rows x %lld dim, %s, %s, %s in memory, %.3f s on %s",
                 desc->name, (long long)info.rows, (long long)info.dim,
                 ann_dtype_name(info.dtype), ann_metric_name(info.metric),
                 cli_format_bytes(info.memory_bytes, size, sizeof size), t_build,
                 ann_device_name(ex.used));

    t0 = cli_now();
    ann_clear_error();
    if ((s = ann_index_save(ix, cli_output_target(&out), o->compress, p->common.threads)) != ANN_OK) {
        rc = cli_report(s, o->output);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    cli_info("wrote '%s' in %.3f s", o->output, cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_index_free(ix);
    ann_graph_free(knn);
    ann_matrix_release(&data);
    free(params);
    return rc;
}

/*
 * --extend INDEX: load INDEX, add the rows of DATASET (converted to the
 * index's dtype when they differ) with ids after the largest present, and
 * save the result to -o (a temporary renamed on success; INDEX itself is
 * only replaced when -o names it and -f is given).
 */
static int run_extend(const struct build_opts *o, const cli_parser *p)
{
    ann_index *ix = NULL;
    ann_matrix data, conv;
    cli_output out;
    ann_exec ex;
    char path[PATH_MAX], name[PATH_MAX];
    int rc;
    ann_status s;
    memset(&data, 0, sizeof data);
    memset(&conv, 0, sizeof conv);
    memset(&out, 0, sizeof out);

    if ((rc = cli_split_spec(o->dataset, path, name)) != 0)
        goto done;
    if ((rc = cli_exec_init(&ex, &p->common)) != 0)
        goto done;
    cli_output_opts oo = {.force = p->common.force, .binary = true};
    if ((rc = cli_output_open(&out, o->output, &oo)) != 0)
        goto done;
    ann_clear_error();
    if ((s = ann_index_load(o->extend, &ix)) != ANN_OK) {
        rc = cli_report(s, o->extend);
        goto done;
    }
    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = o->format;
    ro.row_begin = o->row_begin;
    ro.row_end = o->row_end;
    ann_clear_error();
    if ((s = ann_vectors_read(o->dataset, &ro, &data)) != ANN_OK) {
        rc = cli_report(s, path);
        goto done;
    }
    ann_index_info info;
    ann_index_get_info(ix, &info);
    const ann_matrix *add = &data;
    if (data.dtype != info.dtype && data.cols == info.dim) {
        cli_info("'%s': converting %s to the index's %s", o->dataset, ann_dtype_name(data.dtype),
                 ann_dtype_name(info.dtype));
        if ((s = ann_matrix_convert(&data, info.dtype, &conv)) != ANN_OK) {
            rc = cli_report(s, path);
            goto done;
        }
        add = &conv;
    }
    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_index_extend(ix, add, NULL, &ex)) != ANN_OK) {
        rc = cli_report(s, s == ANN_ERR_UNSUPPORTED ? o->extend : path);
        goto done;
    }
    cli_progress_end();
    ann_index_get_info(ix, &info);
    cli_info("added %lld rows to '%s' in %.3f s: %lld rows now", (long long)add->rows, o->extend,
             cli_now() - t0, (long long)info.rows);
    ann_clear_error();
    if ((s = ann_index_save(ix, cli_output_target(&out), o->compress, p->common.threads)) != ANN_OK) {
        rc = cli_report(s, o->output);
        goto done;
    }
    rc = cli_output_commit(&out);
done:
    cli_output_discard(&out);
    ann_index_free(ix);
    ann_matrix_release(&conv);
    ann_matrix_release(&data);
    return rc;
}

int main(int argc, char **argv)
{
    struct build_opts o = {.format = ANN_VFMT_AUTO, .row_end = -1};
    cli_parser p;
    int rc, c;

    cli_openmp_passive(argv, "annbuild");
    cli_init(argv[0], "annbuild");
    if ((rc = cli_parser_init(&p, "o:", longopts, CLI_PARAMS_BUILD, index_algos, N_INDEX_ALGOS)) != 0)
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
        case OPT_ALGO:
            o.algo = optarg;
            break;
        case OPT_METRIC:
            o.metric = optarg;
            break;
        case 'o':
            o.output = optarg;
            break;
        case OPT_ROWS:
            if ((rc = cli_parse_rows("--rows", optarg, &o.row_begin, &o.row_end)) != 0)
                goto done;
            break;
        case OPT_COMPRESS:
            o.compress = true;
            break;
        case CLI_OPT_MAX_HOST:
        case CLI_OPT_MAX_GPU:
            if ((rc = cli_mem_option(c, optarg, &o.mem)) != 0)
                goto done;
            break;
        case OPT_GRAPH:
            o.graph = optarg;
            break;
        case OPT_EXTEND:
            o.extend = optarg;
            break;
        case OPT_NO_DATASET:
            o.no_dataset = true;
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

    char avail[256];
    if (o.algo == NULL && o.extend == NULL) {
        rc = cli_usage_error("missing --algo NAME (available: %s)", algo_list(avail, sizeof avail, true));
        goto done;
    }
    if (argc - optind < 1) {
        rc = cli_usage_error("missing operand DATASET");
        goto done;
    }
    if (argc - optind > 1) {
        rc = cli_usage_error("too many operands (from '%s' on)", argv[optind + 1]);
        goto done;
    }
    if (o.output == NULL) {
        rc = cli_usage_error("missing -o INDEX");
        goto done;
    }
    o.dataset = argv[optind];
    if (o.extend != NULL && o.algo != NULL) {
        rc = cli_usage_error("--extend takes the algorithm of its index; --algo does not apply");
        goto done;
    }
    rc = o.extend != NULL ? run_extend(&o, &p) : run_build(&o, &p);
done:
    cli_parser_free(&p);
    return rc;
}

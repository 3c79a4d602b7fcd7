/*
 * anngraph - build the k-nearest-neighbour graph of a dataset, or measure
 * the recall of a graph file.
 *
 *   anngraph [--algo nn_descent|brute_force|ivf_pq] [--metric NAME] [PARAMETERS]
 *            [--rows A:B] [--compress] DATASET -o GRAPH
 *   anngraph --eval [--sample N] [--json] GRAPH DATASET
 *
 * The parameters are options generated from the library's tables of the
 * graph builders (ann_nn_descent_param_table, ann_knn_graph_param_table,
 * ann_ivf_pq_graph_param_table; --graph-degree for graph_degree, ...),
 * checked against the table of the chosen algorithm (and, for ivf_pq, by
 * ann_ivf_pq_graph_params_check before the data are read).  The graph is
 * saved to a temporary file next to GRAPH and renamed into place
 * (tools/cli/cli_io.c).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

enum {
    OPT_ALGO = CLI_OPT_TOOL,
    OPT_METRIC,
    OPT_ROWS,
    OPT_COMPRESS,
    OPT_FORMAT,
    OPT_EVAL,
    OPT_SAMPLE,
    OPT_JSON,
    OPT_GPARAM = CLI_OPT_TOOL + 0x100, /* + i: the i-th generated parameter option */
};

static const struct option fixed_longopts[] = {
    {"algo", required_argument, NULL, OPT_ALGO},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"rows", required_argument, NULL, OPT_ROWS},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"eval", no_argument, NULL, OPT_EVAL},
    {"sample", required_argument, NULL, OPT_SAMPLE},
    {"json", no_argument, NULL, OPT_JSON},
    CLI_MEM_LONGOPTS,
    {"output", required_argument, NULL, 'o'},
};
#define N_FIXED (sizeof fixed_longopts / sizeof fixed_longopts[0])

/* ------------------------------------------------------------------ */
/* The graph builders and their parameter tables                       */
/* ------------------------------------------------------------------ */

/** A graph algorithm as anngraph knows it. */
struct graph_algo {
    ann_algo algo;
    const char *name;
    size_t params_size;
    void (*init)(void *p);
    const ann_param_desc *(*table)(size_t *n);
    size_t metric_offset;
    ann_status (*check)(const void *p); /* checks beyond the table, before any work (NULL: none) */
};

static void nnd_init(void *p) { ann_nn_descent_params_init(p); }
static void knn_init(void *p) { ann_knn_graph_params_init(p); }
static void ivf_pq_init(void *p) { ann_ivf_pq_graph_params_init(p); }
static ann_status ivf_pq_check(const void *p) { return ann_ivf_pq_graph_params_check(p); }

static const struct graph_algo graph_algos[] = {
    {ANN_ALGO_NN_DESCENT, "nn_descent", sizeof(ann_nn_descent_params), nnd_init,
     ann_nn_descent_param_table, offsetof(ann_nn_descent_params, metric), NULL},
    {ANN_ALGO_BRUTE_FORCE, "brute_force", sizeof(ann_knn_graph_params), knn_init,
     ann_knn_graph_param_table, offsetof(ann_knn_graph_params, metric), NULL},
    {ANN_ALGO_IVF_PQ, "ivf_pq", sizeof(ann_ivf_pq_graph_params), ivf_pq_init, ann_ivf_pq_graph_param_table,
     offsetof(ann_ivf_pq_graph_params, index.metric), ivf_pq_check},
};
#define N_GRAPH_ALGOS (sizeof graph_algos / sizeof graph_algos[0])

/** One option generated from a table: the parameter name and its --spelling. */
struct gparam {
    const char *name; /* "graph_degree" */
    char *option;     /* "graph-degree" (allocated) */
};

/** A parameter option as given, in order. */
struct given {
    int index;         /* into the gparam array */
    const char *value; /* points into argv */
};

/** The option table: fixed + generated options, and what was given. */
struct opt_table {
    struct option *longopts; /* zero-terminated (allocated) */
    struct gparam *params;
    size_t n_params;
    struct given *given;
    size_t n_given;
};

static void opt_table_free(struct opt_table *t)
{
    for (size_t i = 0; i < t->n_params; i++)
        free(t->params[i].option);
    free(t->params);
    free(t->longopts);
    free(t->given);
    memset(t, 0, sizeof *t);
}

/* The fixed options plus one --option per distinct parameter name of the
 * graph algorithms' tables ("metric" is a fixed option).  0 or exit 1. */
static int opt_table_init(struct opt_table *t)
{
    size_t n_max = 0;
    memset(t, 0, sizeof *t);
    for (size_t a = 0; a < N_GRAPH_ALGOS; a++) {
        size_t n;
        graph_algos[a].table(&n);
        n_max += n;
    }
    t->longopts = calloc(N_FIXED + n_max + 1, sizeof *t->longopts);
    t->params = calloc(n_max + 1, sizeof *t->params);
    if (t->longopts == NULL || t->params == NULL)
        goto nomem;
    memcpy(t->longopts, fixed_longopts, sizeof fixed_longopts);
    size_t n_long = N_FIXED;
    for (size_t a = 0; a < N_GRAPH_ALGOS; a++) {
        size_t n;
        const ann_param_desc *d = graph_algos[a].table(&n);
        for (size_t j = 0; j < n; j++) {
            bool taken = strcmp(d[j].name, "metric") == 0;
            for (size_t i = 0; i < t->n_params && !taken; i++)
                taken = strcmp(t->params[i].name, d[j].name) == 0;
            if (taken)
                continue;
            char *opt = strdup(d[j].name);
            if (opt == NULL)
                goto nomem;
            for (char *c = opt; *c; c++)
                if (*c == '_')
                    *c = '-';
            t->params[t->n_params].name = d[j].name;
            t->params[t->n_params].option = opt;
            t->longopts[n_long].name = opt;
            t->longopts[n_long].has_arg = required_argument;
            t->longopts[n_long].val = OPT_GPARAM + (int)t->n_params;
            n_long++;
            t->n_params++;
        }
    }
    return 0;
nomem:
    opt_table_free(t);
    cli_error("out of memory");
    return CLI_EXIT_FAILURE;
}

static int opt_table_add(struct opt_table *t, int index, const char *value)
{
    struct given *g = realloc(t->given, (t->n_given + 1) * sizeof *g);
    if (g == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    t->given = g;
    t->given[t->n_given].index = index;
    t->given[t->n_given].value = value;
    t->n_given++;
    return 0;
}

static const ann_param_desc *find_param(const ann_param_desc *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* Apply the given parameter options to @p params (of @p ga, initialised).
 * 0 or CLI_EXIT_USAGE. */
static int apply_params(const struct opt_table *t, const struct graph_algo *ga, void *params)
{
    size_t n;
    const ann_param_desc *d = ga->table(&n);
    for (size_t i = 0; i < t->n_given; i++) {
        const struct gparam *gp = &t->params[t->given[i].index];
        const char *value = t->given[i].value;
        if (find_param(d, n, gp->name) == NULL)
            return cli_usage_error("option '--%s' does not apply to --algo %s", gp->option, ga->name);
        ann_clear_error();
        if (ann_params_set(d, n, params, gp->name, value) != ANN_OK) {
            const char *why = ann_last_error();
            return cli_usage_error("invalid --%s '%s'%s%s", gp->option, value, why[0] ? ": " : "", why);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Help                                                                */
/* ------------------------------------------------------------------ */

static const char *metavar(const ann_param_desc *d)
{
    switch (d->type) {
    case ANN_PARAM_FLOAT:
        return "X";
    case ANN_PARAM_ENUM:
        return "MODE";
    case ANN_PARAM_BOOL:
        return "BOOL";
    default:
        return "N";
    }
}

static void help_params(FILE *out)
{
    for (size_t a = 0; a < N_GRAPH_ALGOS; a++) {
        const struct graph_algo *ga = &graph_algos[a];
        size_t n;
        const ann_param_desc *d = ga->table(&n);
        unsigned char defaults[256];
        memset(defaults, 0, sizeof defaults);
        if (ga->params_size <= sizeof defaults)
            ga->init(defaults);
        fprintf(out, "\n%s parameters (with --algo %s):\n", ga->name, ga->name);
        for (size_t j = 0; j < n; j++) {
            char opt[96], def[64] = "?", range[160];
            if (strcmp(d[j].name, "metric") == 0)
                continue;
            snprintf(opt, sizeof opt, "--%s %s", d[j].name, metavar(&d[j]));
            for (char *c = opt + 2; *c && *c != ' '; c++)
                if (*c == '_')
                    *c = '-';
            if (ga->params_size <= sizeof defaults)
                ann_params_format(&d[j], defaults, def, sizeof def);
            if (d[j].type == ANN_PARAM_ENUM)
                snprintf(range, sizeof range, "%s", d[j].choices ? d[j].choices : "");
            else if (d[j].type == ANN_PARAM_BOOL)
                snprintf(range, sizeof range, "true|false");
            else if (d[j].type == ANN_PARAM_FLOAT)
                snprintf(range, sizeof range, "%g..%g", d[j].min, d[j].max);
            else
                snprintf(range, sizeof range, "%.0f..%.0f", d[j].min, d[j].max);
            if (strlen(opt) < 22)
                fprintf(out, "      %-22s%s\n", opt, d[j].help ? d[j].help : "");
            else
                fprintf(out, "      %s\n      %-22s%s\n", opt, "", d[j].help ? d[j].help : "");
            fprintf(out, "      %-22s%s, default %s\n", "", range, def);
        }
    }
}

static void usage(FILE *out)
{
    fputs("Usage: anngraph [OPTIONS] DATASET -o GRAPH\n"
          "       anngraph --eval [--sample N] [--json] GRAPH DATASET\n"
          "Build the k-nearest-neighbour graph of the vectors in DATASET and save it\n"
          "to GRAPH, or measure a graph's recall against the exact graph (--eval).\n"
          "\n"
          "DATASET is PATH[:NAME], where NAME picks a dataset of an HDF5 file.\n"
          "\n"
          "Options:\n"
          "      --algo NAME       nn_descent (default, approximate), brute_force (exact)\n"
          "                        or ivf_pq (IVF-PQ searches refined exactly)\n"
          "      --metric NAME     sqeuclidean (default), euclidean, inner_product,\n"
          "                        cosine, l1 (not ivf_pq), hamming (u8 and i8 data,\n"
          "                        nn_descent)\n"
          "  -o, --output GRAPH    the graph file to write (required)\n"
          "      --rows A:B        use only rows A to B-1 of DATASET (':1000', '500:')\n"
          "      --compress        store the graph sections zstd-compressed\n"
          "      --format NAME     format of DATASET (default: from its magic or extension)\n",
          out);
    cli_mem_help(out);
    fputs("\n"
          "Evaluation:\n"
          "      --eval            read GRAPH and DATASET and print the graph's recall: the\n"
          "                        fraction of each sampled row's exact nearest rows that\n"
          "                        the graph holds\n"
          "      --sample N        rows sampled with --seed (default 1000; 0: every row)\n"
          "      --json            print one JSON object instead of a line of text\n",
          out);
    help_params(out);
    fputs("\n", out);
    cli_help_common(out);
}

/* ------------------------------------------------------------------ */
/* Shared steps                                                        */
/* ------------------------------------------------------------------ */

/** Everything the command line asks for. */
struct graph_opts {
    bool eval;            /* --eval GRAPH DATASET */
    const char *algo;     /* --algo NAME (NULL: nn_descent) */
    const char *metric;   /* --metric NAME (NULL: sqeuclidean) */
    const char *dataset;  /* DATASET operand, PATH[:NAME] */
    const char *graph;    /* --eval: the GRAPH operand */
    const char *output;   /* -o GRAPH */
    ann_vformat format;   /* --format of DATASET */
    int64_t row_begin;    /* --rows A:B */
    int64_t row_end;      /* -1: to the end */
    bool rows_given;
    bool compress;        /* --compress */
    int64_t sample;       /* --sample N (0: every row) */
    bool sample_given;
    bool json;            /* --json */
    cli_mem_limits mem;   /* --max-host-memory, --max-gpu-memory */
};

/* Read the dataset (rows, format) into @p data as f32/f16/i8/u8.
 * 0 or an exit status. */
static int read_dataset(const struct graph_opts *o, const char *path, ann_matrix *data)
{
    ann_read_opts ro;
    ann_read_opts_init(&ro);
    ro.format = o->format;
    ro.row_begin = o->row_begin;
    ro.row_end = o->row_end;
    double t0 = cli_now();
    ann_clear_error();
    ann_status s = ann_vectors_read(o->dataset, &ro, data);
    if (s != ANN_OK)
        return cli_report(s, path);
    cli_info("read '%s': %lld x %lld %s in %.3f s", o->dataset, (long long)data->rows,
             (long long)data->cols, ann_dtype_name(data->dtype), cli_now() - t0);
    if (data->dtype != ANN_DTYPE_F32 && data->dtype != ANN_DTYPE_F16 && data->dtype != ANN_DTYPE_I8 &&
        data->dtype != ANN_DTYPE_U8) {
        /* Graphs are built of f32/f16/i8/u8; other element types are read as f32. */
        ann_matrix f;
        cli_info("'%s': converting %s to f32", o->dataset, ann_dtype_name(data->dtype));
        if ((s = ann_matrix_convert(data, ANN_DTYPE_F32, &f)) != ANN_OK)
            return cli_report(s, path);
        ann_matrix_release(data);
        *data = f;
    }
    return 0;
}

/* Resolve --algo: 0, or an exit status after printing. */
static int resolve_algo(const char *name, const struct graph_algo **out)
{
    ann_algo a;
    if (name == NULL)
        name = "nn_descent";
    if (ann_algo_parse(name, &a) != ANN_OK)
        return cli_usage_error("unknown --algo '%s' (available: nn_descent, brute_force, ivf_pq)", name);
    for (size_t i = 0; i < N_GRAPH_ALGOS; i++)
        if (graph_algos[i].algo == a) {
            *out = &graph_algos[i];
            return 0;
        }
    return cli_usage_error("--algo %s makes indexes, not graphs; use annbuild "
                           "(anngraph takes: nn_descent, brute_force, ivf_pq)",
                           ann_algo_name(a));
}

/* ------------------------------------------------------------------ */
/* Build                                                               */
/* ------------------------------------------------------------------ */

/* Library messages: level 0 is a warning (shown unless -q), 1 info (-v), 2 debug (-vv). */
static void on_library_log(void *user, int level, const char *msg)
{
    (void)user;
    if (level <= 0)
        cli_warn("%s", msg);
    else if (level == 1)
        cli_info("%s", msg);
    else
        cli_debug("%s", msg);
}

static int run_build(const struct graph_opts *o, const struct opt_table *t, const cli_common *co)
{
    const struct graph_algo *ga = NULL;
    union {
        ann_nn_descent_params nnd;
        ann_knn_graph_params knn;
        ann_ivf_pq_graph_params ivf_pq;
    } params;
    ann_graph *g = NULL;
    ann_matrix data;
    cli_output out;
    ann_exec ex;
    ann_metric metric = ANN_METRIC_SQEUCLIDEAN;
    char path[PATH_MAX], name[PATH_MAX], size[32];
    int rc;
    ann_status s;
    memset(&data, 0, sizeof data);
    memset(&out, 0, sizeof out);

    if ((rc = resolve_algo(o->algo, &ga)) != 0)
        goto done;
    ga->init(&params);
    if (o->metric != NULL) {
        if (ann_metric_parse(o->metric, &metric) != ANN_OK) {
            rc = cli_usage_error("unknown --metric '%s' (sqeuclidean, euclidean, inner_product, "
                                 "cosine, l1, hamming)",
                                 o->metric);
            goto done;
        }
        memcpy((char *)&params + ga->metric_offset, &metric, sizeof metric);
    }
    if ((rc = apply_params(t, ga, &params)) != 0)
        goto done;
    if (ga->check != NULL) {
        ann_clear_error();
        if ((s = ga->check(&params)) != ANN_OK) {
            /* Parameters that do not go together: a usage error; a metric
             * or variant the algorithm does not have: unavailable. */
            if (s == ANN_ERR_INVALID_ARG)
                rc = cli_usage_error("--algo %s: %s", ga->name, ann_last_error());
            else
                rc = cli_report(s, NULL);
            goto done;
        }
    }
    if ((rc = cli_split_spec(o->dataset, path, name)) != 0)
        goto done;
    if ((rc = cli_exec_init(&ex, co)) != 0)
        goto done;
    ex.log = on_library_log;
    /* every builder has a model (annmem nn_descent, brute_force, ivf_pq): refuse before any work */
    if ((rc = cli_mem_check(&o->mem, o->dataset, o->format, o->row_begin, o->row_end, ga->algo, &params,
                            ex.device)) != 0)
        goto done;
    cli_output_opts oo = {.force = co->force, .binary = true};
    if ((rc = cli_output_open(&out, o->output, &oo)) != 0)
        goto done;
    if ((rc = read_dataset(o, path, &data)) != 0)
        goto done;
    if (metric == ANN_METRIC_HAMMING && data.dtype != ANN_DTYPE_U8 && data.dtype != ANN_DTYPE_I8) {
        /* A property of the data, not of this build: a data error. */
        cli_error("'%s': --metric hamming compares bits of u8 or i8 vectors, not %s "
                  "(convert with annconvert --dtype u8)",
                  path, ann_dtype_name(data.dtype));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }

    double t0 = cli_now();
    ann_clear_error();
    s = ann_graph_build(ga->algo, &params, &data, &ex, &g);
    cli_progress_end();
    if (s != ANN_OK) {
        rc = cli_report(s, path);
        goto done;
    }
    double t_build = cli_now() - t0;
    cli_info("built %s graph: %lld rows x degree %d, %s, %s, %s in memory, %.3f s on %s", ga->name,
             (long long)g->rows, (int)g->degree, ann_metric_name(g->metric),
             g->distances ? "with distances" : "no distances",
             cli_format_bytes((uint64_t)g->rows * g->degree * (g->distances ? 8 : 4), size, sizeof size),
             t_build, ann_device_name(ex.used));

    t0 = cli_now();
    ann_clear_error();
    if ((s = ann_graph_save(g, cli_output_target(&out), o->compress, co->threads)) != ANN_OK) {
        rc = cli_report(s, o->output);
        goto done;
    }
    if ((rc = cli_output_commit(&out)) != 0)
        goto done;
    cli_info("wrote '%s' in %.3f s", o->output, cli_now() - t0);
done:
    cli_output_discard(&out);
    ann_graph_free(g);
    ann_matrix_release(&data);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */

/* @p s as a JSON string (quotes, backslashes and control characters escaped). */
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

static int run_eval(const struct graph_opts *o, const cli_common *co)
{
    ann_graph *g = NULL;
    ann_matrix data;
    ann_exec ex;
    char path[PATH_MAX], name[PATH_MAX];
    int rc;
    ann_status s;
    memset(&data, 0, sizeof data);

    if ((rc = cli_split_spec(o->dataset, path, name)) != 0)
        goto done;
    if ((rc = cli_exec_init(&ex, co)) != 0)
        goto done;
    double t0 = cli_now();
    ann_clear_error();
    if ((s = ann_graph_load(o->graph, &g)) != ANN_OK) {
        rc = cli_report(s, o->graph);
        goto done;
    }
    cli_info("read '%s': %lld rows x degree %d, %s, %s in %.3f s", o->graph, (long long)g->rows,
             (int)g->degree, ann_algo_name(g->algo), ann_metric_name(g->metric), cli_now() - t0);
    if ((rc = read_dataset(o, path, &data)) != 0)
        goto done;
    if (data.rows != g->rows) {
        cli_error("'%s': %lld rows, but the graph '%s' has %lld (the dataset it was built from; "
                  "--rows picks a slice)",
                  o->dataset, (long long)data.rows, o->graph, (long long)g->rows);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }

    int64_t sample = o->sample;
    int64_t used = (sample <= 0 || sample > g->rows) ? g->rows : sample;
    double recall = 0.0;
    t0 = cli_now();
    ann_clear_error();
    s = ann_graph_eval(g, &data, sample, co->seed, &ex, &recall);
    cli_progress_end();
    if (s != ANN_OK) {
        rc = cli_report(s, o->graph);
        goto done;
    }
    double secs = cli_now() - t0;
    cli_info("evaluated %lld rows in %.3f s on %s", (long long)used, secs, ann_device_name(ex.used));
    if (o->json) {
        printf("{\"graph\":");
        json_string(stdout, o->graph);
        printf(",\"dataset\":");
        json_string(stdout, o->dataset);
        printf(",\"algo\":\"%s\",\"metric\":\"%s\",\"rows\":%lld,\"degree\":%d,\"sample\":%lld,"
               "\"seed\":%llu,\"recall\":%.6f,\"seconds\":%.3f}\n",
               ann_algo_name(g->algo), ann_metric_name(g->metric), (long long)g->rows, (int)g->degree,
               (long long)used, (unsigned long long)co->seed, recall, secs);
    } else {
        printf("recall %.4f (sample %lld of %lld rows, degree %d)\n", recall, (long long)used,
               (long long)g->rows, (int)g->degree);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("write error on standard output");
        rc = CLI_EXIT_FAILURE;
    }
done:
    ann_graph_free(g);
    ann_matrix_release(&data);
    return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct graph_opts o = {.format = ANN_VFMT_AUTO, .row_end = -1, .sample = 1000};
    struct opt_table t;
    cli_parser p;
    int rc, c;

    cli_openmp_passive(argv, "anngraph");
    cli_init(argv[0], "anngraph");
    memset(&p, 0, sizeof p);
    if ((rc = opt_table_init(&t)) != 0)
        return rc;
    if ((rc = cli_parser_init(&p, "o:", t.longopts, CLI_PARAMS_NONE, NULL, 0)) != 0)
        goto done;
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
            o.rows_given = true;
            break;
        case OPT_COMPRESS:
            o.compress = true;
            break;
        case CLI_OPT_MAX_HOST:
        case CLI_OPT_MAX_GPU:
            if ((rc = cli_mem_option(c, optarg, &o.mem)) != 0)
                goto done;
            break;
        case OPT_FORMAT:
            if (ann_vformat_parse(optarg, &o.format) != ANN_OK || o.format == ANN_VFMT_ANNKIT) {
                rc = cli_usage_error("unknown --format '%s'", optarg);
                goto done;
            }
            break;
        case OPT_EVAL:
            o.eval = true;
            break;
        case OPT_SAMPLE:
            if ((rc = cli_parse_i64("--sample", optarg, 0, INT64_MAX, &o.sample)) != 0)
                goto done;
            o.sample_given = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        default:
            if (c >= OPT_GPARAM && (size_t)(c - OPT_GPARAM) < t.n_params) {
                if ((rc = opt_table_add(&t, c - OPT_GPARAM, optarg)) != 0)
                    goto done;
                break;
            }
            rc = cli_usage_error("unexpected option");
            goto done;
        }
    }

    int n = argc - optind;
    if (o.eval) {
        if (o.algo != NULL || o.metric != NULL || o.output != NULL || o.compress || t.n_given > 0) {
            rc = cli_usage_error("--eval reads a graph: it takes no build options (--algo, --metric, "
                                 "-o, --compress, parameters)");
            goto done;
        }
        if (n < 2) {
            rc = cli_usage_error(n == 0 ? "--eval needs operands GRAPH and DATASET"
                                        : "--eval needs operand DATASET after GRAPH");
            goto done;
        }
        if (n > 2) {
            rc = cli_usage_error("too many operands (from '%s' on)", argv[optind + 2]);
            goto done;
        }
        o.graph = argv[optind];
        o.dataset = argv[optind + 1];
        rc = run_eval(&o, &p.common);
        goto done;
    }
    if (o.sample_given || o.json) {
        rc = cli_usage_error("%s applies only with --eval", o.json ? "--json" : "--sample");
        goto done;
    }
    if (n < 1) {
        rc = cli_usage_error("missing operand DATASET");
        goto done;
    }
    if (n > 1) {
        rc = cli_usage_error("too many operands (from '%s' on)", argv[optind + 1]);
        goto done;
    }
    if (o.output == NULL) {
        rc = cli_usage_error("missing -o GRAPH");
        goto done;
    }
    o.dataset = argv[optind];
    rc = run_build(&o, &t, &p.common);
done:
    cli_parser_free(&p);
    opt_table_free(&t);
    return rc;
}

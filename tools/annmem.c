/*
 * annmem - memory footprint of an index or graph build, and the largest N
 * that fits (the "Memory footprint" sections of seeds/cagra.md and
 * seeds/nn-descent.md, the ACE partition rule of seeds/hnsw-ace.md and
 * annkit's own layouts, CPU builds included, all in lib/src/memory.c).
 *
 *   annmem MODEL [OPTIONS]
 *   annmem [MODEL] [OPTIONS] --measure -- COMMAND [ARGUMENTS...]
 *
 * Prints every term of the model in bytes and MiB, host and device
 * separately, as an aligned table (default), one JSON object (--json) or
 * TSV (--tsv); then the capacity of each space (M_usable, B_per_vector,
 * B_fixed, N_max) when its free memory is known.  --measure runs an annkit
 * command and prints its peak host memory beside the model's estimate.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ann/memory.h>

#define MIB 1048576.0

enum {
    OPT_ROWS = CLI_OPT_TOOL,
    OPT_DIM,
    OPT_DTYPE,
    OPT_BPV,
    OPT_METRIC,
    OPT_PHASE,
    OPT_INPUT,
    OPT_GRAPH_DEGREE,
    OPT_IGRAPH_DEGREE,
    OPT_BUILD_ALGO,
    OPT_N_LISTS,
    OPT_TRAIN_SET_RATIO,
    OPT_BATCH,
    OPT_ID_BYTES,
    OPT_DIM_ALIGN,
    OPT_RETURN_DISTANCES,
    OPT_DIST_COMP,
    OPT_KM_FRACTION,
    OPT_MAX_TRAIN,
    OPT_COMPRESS,
    OPT_NPARTITIONS,
    OPT_IMBALANCE,
    OPT_PQ_DIM,
    OPT_PQ_BITS,
    OPT_N_PROBES,
    OPT_REFINE_RATIO,
    OPT_FORCE_ROTATION,
    OPT_MAX_TRAIN_PQ,
    /* capacity and output (not model inputs) */
    OPT_FREE,
    OPT_OTHER,
    OPT_FREE_HOST,
    OPT_OTHER_HOST,
    OPT_HEADROOM,
    OPT_OBSERVED,
    OPT_OBSERVED_HOST,
    OPT_OBSERVED_ROWS,
    OPT_JSON,
    OPT_TSV,
    OPT_MEASURE,
};

static const struct option longopts[] = {
    {"rows", required_argument, NULL, OPT_ROWS},
    {"dim", required_argument, NULL, OPT_DIM},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"bytes-per-value", required_argument, NULL, OPT_BPV},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"phase", required_argument, NULL, OPT_PHASE},
    {"input", required_argument, NULL, OPT_INPUT},
    {"graph-degree", required_argument, NULL, OPT_GRAPH_DEGREE},
    {"intermediate-graph-degree", required_argument, NULL, OPT_IGRAPH_DEGREE},
    {"build-algo", required_argument, NULL, OPT_BUILD_ALGO},
    {"n-lists", required_argument, NULL, OPT_N_LISTS},
    {"train-set-ratio", required_argument, NULL, OPT_TRAIN_SET_RATIO},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"id-bytes", required_argument, NULL, OPT_ID_BYTES},
    {"dim-align", required_argument, NULL, OPT_DIM_ALIGN},
    {"return-distances", required_argument, NULL, OPT_RETURN_DISTANCES},
    {"dist-comp-dtype", required_argument, NULL, OPT_DIST_COMP},
    {"kmeans-trainset-fraction", required_argument, NULL, OPT_KM_FRACTION},
    {"max-train-points-per-cluster", required_argument, NULL, OPT_MAX_TRAIN},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"npartitions", required_argument, NULL, OPT_NPARTITIONS},
    {"imbalance", required_argument, NULL, OPT_IMBALANCE},
    {"pq-dim", required_argument, NULL, OPT_PQ_DIM},
    {"pq-bits", required_argument, NULL, OPT_PQ_BITS},
    {"n-probes", required_argument, NULL, OPT_N_PROBES},
    {"refine-ratio", required_argument, NULL, OPT_REFINE_RATIO},
    {"force-random-rotation", required_argument, NULL, OPT_FORCE_ROTATION},
    {"max-train-points-per-pq-code", required_argument, NULL, OPT_MAX_TRAIN_PQ},
    {"free", required_argument, NULL, OPT_FREE},
    {"other", required_argument, NULL, OPT_OTHER},
    {"free-host", required_argument, NULL, OPT_FREE_HOST},
    {"other-host", required_argument, NULL, OPT_OTHER_HOST},
    {"headroom", required_argument, NULL, OPT_HEADROOM},
    {"observed-peak", required_argument, NULL, OPT_OBSERVED},
    {"observed-host-peak", required_argument, NULL, OPT_OBSERVED_HOST},
    {"observed-rows", required_argument, NULL, OPT_OBSERVED_ROWS},
    {"json", no_argument, NULL, OPT_JSON},
    {"tsv", no_argument, NULL, OPT_TSV},
    {"measure", no_argument, NULL, OPT_MEASURE},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fputs("Usage: annmem MODEL [OPTIONS]\n"
          "       annmem [MODEL] [OPTIONS] --measure -- COMMAND [ARGUMENTS...]\n"
          "Print the memory an index or graph build (or a search) needs, term by term,\n"
          "in host and device memory, and the largest number of rows N that fits.\n"
          "\n"
          "MODEL: cagra, nn_descent, brute_force, ivf_flat, ace (also hnsw), ivf_pq (the\n"
          "       IVF-PQ kNN graph of anngraph --algo ivf_pq).\n"
          "Numbers accept 1e6, 10K, 10M (powers of 1000) and 64GiB, 512MiB (powers of 1024).\n"
          "\n"
          "Model inputs (the docs' symbols in parentheses):\n"
          "      --rows N          number of vectors (N); without it, N is the N_max found\n"
          "      --dim D           vector dimension (D)\n"
          "      --dtype TYPE      f32 (default), f16, i8, u8: sets B\n"
          "      --bytes-per-value B  bytes per vector value (B, B_in) instead of --dtype\n"
          "      --metric NAME     sqeuclidean (default), euclidean, inner_product, cosine, l1\n"
          "      --phase PHASE     build (default) or search (cagra, brute_force)\n"
          "      --input WHERE     host (default), device or both: where the dataset is\n"
          "                        during the build (input_size; dataset_size*, N*D*B_in)\n"
          "      --graph-degree G  final graph degree (G; ivf_pq too), default 64\n"
          "      --intermediate-graph-degree I  intermediate degree (I), default 128\n"
          "      --build-algo NAME cagra's initial graph: ivf_pq (default), nn_descent, iterative\n"
          "      --n-lists C       IVF lists (C; ivf_flat n_lists), default 1024;\n"
          "                        ivf_pq: default auto (N/2000)\n"
          "      --train-set-ratio R  IVF-PQ training ratio (N/R rows), default 10\n"
          "      --batch Q         query batch (Q), default 1024\n"
          "  -k K                  results per query (K, k), default 10\n"
          "      --id-bytes S      bytes per graph id (S_idx), default 4\n"
          "      --dim-align D     aligned row length (D_align), default: rows padded to 16 bytes\n"
          "      --return-distances BOOL  NN-Descent and ivf_pq R: true (default) or false\n"
          "      --dist-comp-dtype T  NN-Descent B_comp: auto (default), fp16, fp32\n"
          "      --kmeans-trainset-fraction F  ivf_flat, default 0.5; ivf_pq, default auto\n"
          "      --max-train-points-per-cluster N  ivf_flat, default 256 (0: no cap)\n"
          "      --compress        brute_force, ivf_flat: the index is saved with zstd\n"
          "      --npartitions P   ace partitions; default 0: the smallest count that fits\n"
          "      --imbalance X     ace largest/average partition, default 3\n"
          "      --pq-dim N        ivf_pq subspaces, default auto (from D)\n"
          "      --pq-bits N       ivf_pq bits per code, 4 to 8, default auto\n"
          "      --n-probes N      ivf_pq lists probed, default auto (no memory of its own)\n"
          "      --refine-ratio X  ivf_pq candidates per row / graph degree, default 2\n"
          "      --force-random-rotation BOOL  ivf_pq, default false\n"
          "      --max-train-points-per-pq-code N  ivf_pq codebook rows per code, default 256\n"
          "\n"
          "Capacity (M_usable = (M_free - M_other) x (1 - H), N_max per space):\n"
          "      --free BYTES      free memory (M_free) of the model's main space: device\n"
          "                        when the model has a device peak, else host\n"
          "      --other BYTES     memory reserved for other uses (M_other), same space\n"
          "      --free-host BYTES free host memory (default: MemAvailable)\n"
          "      --other-host BYTES  host memory reserved for other uses\n"
          "      --headroom H      scratch headroom (default 0.20 cagra IVF-PQ builds on CUDA\n"
          "                        and cagra searches; 0.30 NN-Descent, iterative and ACE;\n"
          "                        0.10 brute_force, ivf_flat, ivf_pq, cagra IVF-PQ on the CPU)\n"
          "      --observed-peak BYTES  peak of a representative run in the main space:\n"
          "                        gives H_measured, used as H without --headroom\n"
          "      --observed-host-peak BYTES  the same for host memory\n"
          "      --observed-rows N the N of that run (default --rows)\n"
          "\n"
          "Output and measurement:\n"
          "      --json            one JSON object on one line\n"
          "      --tsv             tab-separated rows: kind, name, space, value, MiB, peak, formula\n"
          "      --measure         run COMMAND (after --), record its peak host memory\n"
          "                        (ru_maxrss) and print it beside the model's estimate;\n"
          "                        MODEL and its inputs come from an annbuild or anngraph\n"
          "                        command line and its dataset's header unless given\n"
          "\n",
          out);
    cli_help_common(out);
    fputs("  (--threads sizes annkit's per-thread scratch; --device cuda adds brute_force's\n"
          "   device copies to a search, and gives nn_descent and cagra the docs' (cuVS)\n"
          "   host peak instead of annkit's CPU one, cpu_build_peak)\n",
          out);
}

/* ------------------------------------------------------------------ */
/* Parsing option values                                               */
/* ------------------------------------------------------------------ */

static int parse_double(const char *opt, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v))
        return cli_usage_error("invalid number '%s' for %s", text, opt);
    if (v < min || v > max)
        return cli_usage_error("%s %s: out of range [%g, %g]", opt, text, min, max);
    *out = v;
    return 0;
}

static int parse_bool(const char *opt, const char *text, bool *out)
{
    if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
        *out = true;
    else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
        *out = false;
    else
        return cli_usage_error("invalid value '%s' for %s (true or false)", text, opt);
    return 0;
}

static int parse_bytes(const char *opt, const char *text, uint64_t *out)
{
    int64_t v;
    int rc = cli_parse_i64(opt, text, 0, INT64_MAX, &v);
    if (rc == 0)
        *out = (uint64_t)v;
    return rc;
}

/*
 * Apply one model-input option to @p in.  Returns 0, or CLI_EXIT_USAGE
 * (after printing); returns -1 for a code that is not a model input.
 */
static int apply_input(ann_mem_inputs *in, int code, const char *arg)
{
    int64_t v = 0;
    double d = 0.0;
    int rc = 0;
    switch (code) {
    case OPT_ROWS:
        if ((rc = cli_parse_i64("--rows", arg, 1, (int64_t)1 << 53, &v)) == 0)
            in->rows = v;
        return rc;
    case OPT_DIM:
        if ((rc = cli_parse_i64("--dim", arg, 1, (int64_t)1 << 32, &v)) == 0)
            in->dim = v;
        return rc;
    case OPT_DTYPE: {
        ann_dtype t;
        if (ann_dtype_parse(arg, &t) != ANN_OK)
            return cli_usage_error("unknown --dtype '%s' (f32, f16, i8, u8)", arg);
        in->dtype = t;
        in->bytes_per_value = 0;
        return 0;
    }
    case OPT_BPV:
        if ((rc = cli_parse_i64("--bytes-per-value", arg, 1, 64, &v)) == 0) {
            in->bytes_per_value = (int32_t)v;
            in->dtype = v == 4 ? ANN_DTYPE_F32 : v == 2 ? ANN_DTYPE_F16 : v == 1 ? ANN_DTYPE_U8 : ANN_DTYPE_F64;
        }
        return rc;
    case OPT_METRIC: {
        ann_metric m;
        if (ann_metric_parse(arg, &m) != ANN_OK)
            return cli_usage_error("unknown --metric '%s' (sqeuclidean, euclidean, inner_product, cosine, l1)",
                                   arg);
        in->metric = m;
        return 0;
    }
    case OPT_PHASE:
        if (!strcmp(arg, "build"))
            in->phase = ANN_MEM_PHASE_BUILD;
        else if (!strcmp(arg, "search"))
            in->phase = ANN_MEM_PHASE_SEARCH;
        else
            return cli_usage_error("invalid --phase '%s' (build or search)", arg);
        return 0;
    case OPT_INPUT:
        if (!strcmp(arg, "host") || !strcmp(arg, "device") || !strcmp(arg, "both")) {
            in->input_on_host = strcmp(arg, "device") != 0;
            in->input_on_device = strcmp(arg, "host") != 0;
        } else {
            return cli_usage_error("invalid --input '%s' (host, device or both)", arg);
        }
        return 0;
    case OPT_GRAPH_DEGREE:
        if ((rc = cli_parse_i64("--graph-degree", arg, 1, 1 << 24, &v)) == 0)
            in->graph_degree = v;
        return rc;
    case OPT_IGRAPH_DEGREE:
        if ((rc = cli_parse_i64("--intermediate-graph-degree", arg, 1, 1 << 24, &v)) == 0)
            in->intermediate_graph_degree = v;
        return rc;
    case OPT_BUILD_ALGO:
        if (ann_mem_builder_parse(arg, &in->build_algo) != ANN_OK)
            return cli_usage_error("unknown --build-algo '%s' (ivf_pq, nn_descent, iterative)", arg);
        return 0;
    case OPT_N_LISTS:
        if ((rc = cli_parse_i64("--n-lists", arg, 1, 1 << 24, &v)) == 0)
            in->n_lists = v;
        return rc;
    case OPT_TRAIN_SET_RATIO:
        if ((rc = parse_double("--train-set-ratio", arg, 1.0, 1e12, &d)) == 0)
            in->train_set_ratio = d;
        return rc;
    case OPT_BATCH:
        if ((rc = cli_parse_i64("--batch", arg, 1, (int64_t)1 << 40, &v)) == 0)
            in->batch = v;
        return rc;
    case 'k':
        if ((rc = cli_parse_i64("-k", arg, 1, (int64_t)1 << 30, &v)) == 0)
            in->k = v;
        return rc;
    case OPT_ID_BYTES:
        if ((rc = cli_parse_i64("--id-bytes", arg, 1, 8, &v)) == 0)
            in->idx_bytes = (int32_t)v;
        return rc;
    case OPT_DIM_ALIGN:
        if ((rc = cli_parse_i64("--dim-align", arg, 1, (int64_t)1 << 32, &v)) == 0)
            in->dim_align = v;
        return rc;
    case OPT_RETURN_DISTANCES:
        return parse_bool("--return-distances", arg, &in->return_distances);
    case OPT_DIST_COMP:
        if (!strcmp(arg, "auto"))
            in->dist_comp_bytes = 0;
        else if (!strcmp(arg, "fp16") || !strcmp(arg, "f16") || !strcmp(arg, "half"))
            in->dist_comp_bytes = 2;
        else if (!strcmp(arg, "fp32") || !strcmp(arg, "f32") || !strcmp(arg, "float"))
            in->dist_comp_bytes = 4;
        else
            return cli_usage_error("invalid --dist-comp-dtype '%s' (auto, fp16, fp32)", arg);
        return 0;
    case OPT_KM_FRACTION:
        if ((rc = parse_double("--kmeans-trainset-fraction", arg, 1e-6, 1.0, &d)) == 0)
            in->kmeans_trainset_fraction = d;
        return rc;
    case OPT_MAX_TRAIN:
        if ((rc = cli_parse_i64("--max-train-points-per-cluster", arg, 0, 1 << 30, &v)) == 0)
            in->max_train_points_per_cluster = v;
        return rc;
    case OPT_COMPRESS:
        in->compress = true;
        return 0;
    case OPT_NPARTITIONS:
        if ((rc = cli_parse_i64("--npartitions", arg, 0, (int64_t)1 << 40, &v)) == 0)
            in->npartitions = v;
        return rc;
    case OPT_IMBALANCE:
        if ((rc = parse_double("--imbalance", arg, 1.0, 1e6, &d)) == 0)
            in->imbalance = d;
        return rc;
    case OPT_PQ_DIM:
        if ((rc = cli_parse_i64("--pq-dim", arg, 0, 8192, &v)) == 0)
            in->pq_dim = (int32_t)v;
        return rc;
    case OPT_PQ_BITS:
        if ((rc = cli_parse_i64("--pq-bits", arg, 0, 8, &v)) == 0 && v != 0 && v < 4)
            return cli_usage_error("--pq-bits %s: expected 0 (auto) or 4 to 8", arg);
        if (rc == 0)
            in->pq_bits = (int32_t)v;
        return rc;
    case OPT_N_PROBES:
        if ((rc = cli_parse_i64("--n-probes", arg, 0, 1 << 24, &v)) == 0)
            in->n_probes = (int32_t)v;
        return rc;
    case OPT_REFINE_RATIO:
        if ((rc = parse_double("--refine-ratio", arg, 1.0, 64.0, &d)) == 0)
            in->refine_ratio = d;
        return rc;
    case OPT_FORCE_ROTATION:
        return parse_bool("--force-random-rotation", arg, &in->force_random_rotation);
    case OPT_MAX_TRAIN_PQ:
        if ((rc = cli_parse_i64("--max-train-points-per-pq-code", arg, 1, 1 << 20, &v)) == 0)
            in->max_train_points_per_pq_code = (int32_t)v;
        return rc;
    default:
        return -1;
    }
}

/* The model inputs given on the command line, applied in order after the defaults. */
typedef struct given_opt {
    int code;
    const char *arg;
} given_opt;

typedef struct run_opts {
    const char *model;        /* MODEL operand, or NULL */
    given_opt *given;         /* model-input options, in order */
    size_t n_given;
    bool rows_given;
    uint64_t free_main, other_main, free_host, other_host;
    bool free_host_given;
    double headroom;          /* < 0: default */
    uint64_t observed_main, observed_host;
    int64_t observed_rows;
    bool json, tsv, measure;
    char **command;           /* after --, NULL-terminated */
    int n_command;
} run_opts;

/* ------------------------------------------------------------------ */
/* --measure: the model of an annkit command line                      */
/* ------------------------------------------------------------------ */

/* Options of the annkit tools that take no value. */
static bool flag_option(const char *name)
{
    static const char *flags[] = {"--compress", "--force", "-f", "-q", "-v", "-vv", "-vvv", "--quiet",
                                  "--verbose", "--no-dataset", "--json", "--tsv", "-h", "--help", "-V",
                                  "--version", "--normalize", "--info", NULL};
    for (size_t i = 0; flags[i]; i++)
        if (!strcmp(name, flags[i]))
            return true;
    return false;
}

/*
 * Read an annbuild or anngraph command line into @p in: the model from
 * --algo, the parameters it names, and N, D, dtype from the dataset's
 * header.  Returns 0 or an exit status (after printing).
 */
static int model_from_command(char **cmd, int n, bool have_model, ann_mem_inputs *in)
{
    const char *base = strrchr(cmd[0], '/');
    base = base ? base + 1 : cmd[0];
    const bool is_build = !strcmp(base, "annbuild"), is_graph = !strcmp(base, "anngraph");
    if (!is_build && !is_graph) {
        if (!have_model)
            return cli_usage_error("--measure: cannot tell the model of '%s'; give MODEL", cmd[0]);
        return 0; /* the model and its inputs come from annmem's own options */
    }
    const char *algo = NULL, *dataset = NULL, *rows_range = NULL, *format = NULL, *threads = NULL, *device = NULL;
    given_opt found[64];
    int n_found = 0;
    static const struct {
        const char *name;
        int code;
    } map[] = {
        {"--metric", OPT_METRIC},
        {"--graph-degree", OPT_GRAPH_DEGREE},
        {"--intermediate-graph-degree", OPT_IGRAPH_DEGREE},
        {"--build-algo", OPT_BUILD_ALGO},
        {"--n-lists", OPT_N_LISTS},
        {"--train-set-ratio", OPT_TRAIN_SET_RATIO},
        {"--kmeans-trainset-fraction", OPT_KM_FRACTION},
        {"--max-train-points-per-cluster", OPT_MAX_TRAIN},
        {"--return-distances", OPT_RETURN_DISTANCES},
        {"--dist-comp-dtype", OPT_DIST_COMP},
        {"--npartitions", OPT_NPARTITIONS},
        {"--pq-dim", OPT_PQ_DIM},
        {"--pq-bits", OPT_PQ_BITS},
        {"--n-probes", OPT_N_PROBES},
        {"--refine-ratio", OPT_REFINE_RATIO},
        {"--force-random-rotation", OPT_FORCE_ROTATION},
        {"--max-train-points-per-pq-code", OPT_MAX_TRAIN_PQ},
    };
    for (int i = 1; i < n; i++) {
        const char *a = cmd[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (!dataset)
                dataset = a;
            continue;
        }
        if (!strcmp(a, "--"))
            continue;
        char name[128];
        const char *val = NULL;
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else if (a[1] != '-' && a[2] != '\0' && !flag_option(a)) {
            snprintf(name, sizeof name, "%.2s", a); /* -oFILE */
            val = a + 2;
        } else {
            snprintf(name, sizeof name, "%s", a);
            if (!flag_option(a) && i + 1 < n)
                val = cmd[++i];
        }
        if (!strcmp(name, "--compress")) {
            if (n_found < 64)
                found[n_found++] = (given_opt){OPT_COMPRESS, NULL};
        } else if (!val) {
            continue;
        } else if (!strcmp(name, "--algo")) {
            algo = val;
        } else if (!strcmp(name, "--rows")) {
            rows_range = val;
        } else if (!strcmp(name, "--format")) {
            format = val;
        } else if (!strcmp(name, "--threads")) {
            threads = val;
        } else if (!strcmp(name, "--device")) {
            device = val;
        } else {
            for (size_t j = 0; j < sizeof map / sizeof map[0]; j++)
                if (!strcmp(name, map[j].name) && n_found < 64)
                    found[n_found++] = (given_opt){map[j].code, val};
        }
    }
    if (!have_model) {
        ann_algo a;
        if (algo == NULL && is_graph)
            algo = "nn_descent";
        if (algo == NULL)
            return cli_usage_error("--measure: '%s' has no --algo; give MODEL", cmd[0]);
        if (ann_mem_model_parse(algo, &a) != ANN_OK ||
            (is_graph && a != ANN_ALGO_NN_DESCENT && a != ANN_ALGO_IVF_PQ) || (is_build && a == ANN_ALGO_IVF_PQ)) {
            cli_error("--measure: no memory model for %s --algo %s (models: cagra, nn_descent, brute_force, "
                      "ivf_flat, ace; anngraph: nn_descent, ivf_pq); give MODEL",
                      base, algo);
            return CLI_EXIT_UNAVAILABLE;
        }
        int32_t nt = in->n_threads;
        ann_mem_inputs_init(in, a);
        in->n_threads = nt;
    }
    if (threads) {
        int64_t t;
        if (cli_parse_i64("--threads", threads, 0, 65536, &t) != 0)
            return CLI_EXIT_USAGE;
        in->n_threads = (int32_t)t;
    }
    if (device)
        in->device = !strcmp(device, "cuda") || !strcmp(device, "gpu");
    in->input_on_host = true; /* the tools read the dataset into host memory */
    in->input_on_device = false;
    for (int i = 0; i < n_found; i++) {
        int rc = apply_input(in, found[i].code, found[i].arg);
        if (rc > 0)
            return rc;
    }
    if (dataset) {
        ann_vformat fmt = ANN_VFMT_AUTO;
        if (format && ann_vformat_parse(format, &fmt) != ANN_OK)
            return cli_usage_error("--measure: unknown --format '%s' in the command", format);
        ann_vectors_info vi;
        ann_clear_error();
        ann_status s = ann_vectors_probe(dataset, fmt, &vi);
        if (s != ANN_OK)
            return cli_report(s, dataset);
        int64_t lo = 0, hi = -1;
        if (rows_range && cli_parse_rows("--rows", rows_range, &lo, &hi) != 0)
            return CLI_EXIT_USAGE;
        if (hi < 0 || hi > vi.rows)
            hi = vi.rows;
        in->rows = hi > lo ? hi - lo : 0;
        in->dim = vi.cols;
        /* annbuild reads other element types as f32 */
        in->dtype = vi.dtype == ANN_DTYPE_F16 || vi.dtype == ANN_DTYPE_I8 || vi.dtype == ANN_DTYPE_U8 ? vi.dtype
                                                                                                       : ANN_DTYPE_F32;
        in->bytes_per_value = 0;
    }
    return 0;
}

typedef struct measurement {
    bool done;
    uint64_t host_peak;   /* ru_maxrss in bytes */
    int exit_status;      /* the command's exit status, or 128 + signal */
    double seconds;
} measurement;

static int run_command(char **cmd, measurement *m)
{
    fflush(stdout);
    fflush(stderr);
    double t0 = cli_now();
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("cannot fork: %s", strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if (pid == 0) {
        /* stdout of annmem carries only its report: the command writes to stderr */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execvp(cmd[0], cmd);
        fprintf(stderr, "%s: '%s': cannot run: %s\n", cli_progname(), cmd[0], strerror(errno));
        _exit(127);
    }
    struct sigaction ign, old_int, old_term;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGINT, &ign, &old_int); /* the command gets Ctrl-C; we still reap it */
    sigaction(SIGTERM, &ign, &old_term);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r;
    do {
        r = wait4(pid, &status, 0, &ru);
    } while (r < 0 && errno == EINTR);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (r < 0) {
        cli_error("waiting for '%s': %s", cmd[0], strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    m->done = true;
    m->seconds = cli_now() - t0;
    m->host_peak = (uint64_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
    m->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* MiB as the docs print them: two decimals, or two significant digits below 0.01. */
static void mib_text(uint64_t bytes, char *buf, size_t len)
{
    double v = (double)bytes / MIB;
    if (v >= 0.01 || bytes == 0)
        snprintf(buf, len, "%.2f", v);
    else
        snprintf(buf, len, "%.2g", v);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.17g", v);
}

typedef struct report {
    ann_mem_estimate est;
    ann_mem_capacity cap[2]; /* [ANN_MEM_HOST], [ANN_MEM_DEVICE] */
    uint64_t m_free[2], m_other[2];
    bool free_from_meminfo;
    int64_t n_max;           /* the answer: the smaller known N_max, -1 when none */
    const char *limited_by;
    measurement meas;
    char **command;
    int n_command;
    bool ace_auto;           /* npartitions was derived from the budgets */
} report;

static const char *where(const ann_mem_inputs *in)
{
    return in->input_on_host && in->input_on_device ? "both" : in->input_on_device ? "device" : "host";
}

static const char *input_text(const ann_mem_inputs *in, char *buf, size_t len)
{
    const ann_mem_inputs *x = in;
    int o = snprintf(buf, len, "N=%lld D=%lld B=%d (%s) metric=%s", (long long)x->rows, (long long)x->dim,
                     (int)x->bytes_per_value, ann_dtype_name(x->dtype), ann_metric_name(x->metric));
    switch (x->algo) {
    case ANN_ALGO_CAGRA:
        o += snprintf(buf + o, len - (size_t)o, " G=%lld I=%lld C=%lld R=%g Q=%lld K=%lld S_idx=%d",
                      (long long)x->graph_degree, (long long)x->intermediate_graph_degree, (long long)x->n_lists,
                      x->train_set_ratio, (long long)x->batch, (long long)x->k, (int)x->idx_bytes);
        break;
    case ANN_ALGO_NN_DESCENT:
        o += snprintf(buf + o, len - (size_t)o, " G=%lld I=%lld return_distances=%s", (long long)x->graph_degree,
                      (long long)x->intermediate_graph_degree, x->return_distances ? "true" : "false");
        break;
    case ANN_ALGO_IVF_FLAT:
        o += snprintf(buf + o, len - (size_t)o, " n_lists=%lld kmeans_trainset_fraction=%g max_train_points_per_cluster=%lld",
                      (long long)x->n_lists, x->kmeans_trainset_fraction, (long long)x->max_train_points_per_cluster);
        break;
    case ANN_ALGO_BRUTE_FORCE:
        if (x->phase == ANN_MEM_PHASE_SEARCH)
            o += snprintf(buf + o, len - (size_t)o, " Q=%lld k=%lld", (long long)x->batch, (long long)x->k);
        break;
    case ANN_ALGO_HNSW:
        o += snprintf(buf + o, len - (size_t)o, " npartitions=%lld imbalance=%g", (long long)x->npartitions,
                      x->imbalance);
        break;
    case ANN_ALGO_IVF_PQ: /* 0 = auto: the resolved values are among the derived counts */
        o += snprintf(buf + o, len - (size_t)o,
                      " G=%lld n_lists=%lld pq_dim=%d pq_bits=%d kmeans_trainset_fraction=%g refine_ratio=%g "
                      "return_distances=%s threads=%d",
                      (long long)x->graph_degree, (long long)x->n_lists, (int)x->pq_dim, (int)x->pq_bits,
                      x->kmeans_trainset_fraction, x->refine_ratio, x->return_distances ? "true" : "false",
                      (int)x->n_threads);
        break;
    default:
        break;
    }
    if (x->algo == ANN_ALGO_CAGRA || x->algo == ANN_ALGO_NN_DESCENT)
        snprintf(buf + o, len - (size_t)o, " input=%s build=%s", where(x),
                 x->device || x->input_on_device ? "cuda" : "cpu");
    else if (x->compress)
        snprintf(buf + o, len - (size_t)o, " compress");
    return buf;
}

static void print_table(FILE *f, const report *r)
{
    const ann_mem_estimate *e = &r->est;
    char buf[512], mib[32];
    fprintf(f, "model: %s, phase %s", ann_mem_model_name(e->in.algo),
            e->in.phase == ANN_MEM_PHASE_SEARCH ? "search" : "build");
    if (e->in.algo == ANN_ALGO_CAGRA && e->in.phase == ANN_MEM_PHASE_BUILD)
        fprintf(f, ", build_algo %s", ann_mem_builder_name(e->in.build_algo));
    fputc('\n', f);
    fprintf(f, "inputs: %s\n", input_text(&e->in, buf, sizeof buf));
    if (e->n_counts) {
        fputs("derived:", f);
        for (size_t i = 0; i < e->n_counts; i++)
            fprintf(f, " %s=%.10g", e->counts[i].name, e->counts[i].value);
        fputc('\n', f);
    }
    fputc('\n', f);
    const bool sources = cli_verbosity() >= CLI_V_INFO;
    fprintf(f, "  %-26s %-6s %20s %14s  %s\n", "term", "space", "bytes", "MiB", sources ? "formula [source]" : "formula");
    for (size_t i = 0; i < e->n_terms; i++) {
        const ann_mem_term *t = &e->terms[i];
        mib_text(t->bytes, mib, sizeof mib);
        fprintf(f, "%c %-26s %-6s %20llu %14s  %s", t->is_peak ? '*' : ' ', t->name, ann_mem_space_name(t->space),
                (unsigned long long)t->bytes, mib, t->formula);
        if (sources)
            fprintf(f, "  [%s]", t->source);
        fputc('\n', f);
    }
    fputs("  (* the selected peak of its space)\n\n", f);

    /* Capacity, device then host. */
    const ann_mem_space spaces[2] = {ANN_MEM_DEVICE, ANN_MEM_HOST};
    fprintf(f, "  %-26s %28s %28s\n", "capacity", "device", "host");
    char cell[2][64];
#define ROW(label, ...)                                                                  \
    do {                                                                                 \
        for (int s_ = 0; s_ < 2; s_++) {                                                 \
            const ann_mem_space sp = spaces[s_];                                         \
            const ann_mem_side *side = sp == ANN_MEM_DEVICE ? &e->device : &e->host;     \
            const ann_mem_capacity *c = &r->cap[sp];                                     \
            (void)c;                                                                     \
            if (!side->used)                                                             \
                snprintf(cell[s_], sizeof cell[s_], "-");                                \
            else                                                                         \
                __VA_ARGS__;                                                             \
        }                                                                                \
        fprintf(f, "  %-26s %28s %28s\n", label, cell[0], cell[1]);                      \
    } while (0)
#define BYTES_CELL(v)                                                                    \
    do {                                                                                 \
        char m_[32];                                                                     \
        mib_text((v), m_, sizeof m_);                                                    \
        snprintf(cell[s_], sizeof cell[s_], "%llu (%s MiB)", (unsigned long long)(v), m_); \
    } while (0)
    ROW("peak term", snprintf(cell[s_], sizeof cell[s_], "%s", side->peak_name));
    ROW("formula_without_scratch", BYTES_CELL(side->peak));
    ROW("B_per_vector", snprintf(cell[s_], sizeof cell[s_], "%.15g", c->known ? c->b_per_vector : side->b_per_vector));
    ROW("B_fixed", snprintf(cell[s_], sizeof cell[s_], "%.15g", c->known ? c->b_fixed : side->b_fixed));
    ROW("M_free", if (r->m_free[sp]) BYTES_CELL(r->m_free[sp]); else snprintf(cell[s_], sizeof cell[s_], "unknown"));
    ROW("M_other", BYTES_CELL(r->m_other[sp]));
    ROW("H", snprintf(cell[s_], sizeof cell[s_], "%.4g", c->h));
    ROW("H_measured",
        if (isnan(c->h_measured)) snprintf(cell[s_], sizeof cell[s_], "-");
        else snprintf(cell[s_], sizeof cell[s_], "%.4f", c->h_measured));
    ROW("M_usable", if (c->known) BYTES_CELL(c->m_usable); else snprintf(cell[s_], sizeof cell[s_], "-"));
    ROW("N_max", if (c->known) snprintf(cell[s_], sizeof cell[s_], "%lld", (long long)c->n_max);
        else snprintf(cell[s_], sizeof cell[s_], "-"));
    ROW("N_max (linear form)", if (c->known) snprintf(cell[s_], sizeof cell[s_], "%lld", (long long)c->n_max_linear);
        else snprintf(cell[s_], sizeof cell[s_], "-"));
    ROW("fits N", if (c->known) snprintf(cell[s_], sizeof cell[s_], "%s", c->fits ? "yes" : "no");
        else snprintf(cell[s_], sizeof cell[s_], "-"));
#undef ROW
#undef BYTES_CELL
    if (r->free_from_meminfo && e->host.used)
        fputs("  (host M_free: MemAvailable of /proc/meminfo or the cgroup limit)\n", f);
    if (r->ace_auto)
        fprintf(f, "  (npartitions %lld: the smallest count whose partition_size_max fits)\n",
                (long long)e->in.npartitions);
    const bool device_unknown = e->device.used && !r->cap[ANN_MEM_DEVICE].known;
    if (r->n_max >= 0)
        fprintf(f, "\nN_max = %lld (%s memory limits%s)\n", (long long)r->n_max, r->limited_by,
                device_unknown ? "; device memory unknown: give --free" : "");
    else if (device_unknown)
        fputs("\nN_max: unknown (give --free for the device memory)\n", f);

    if (r->meas.done) {
        char m1[32], m2[32];
        mib_text(r->meas.host_peak, m1, sizeof m1);
        mib_text(e->host.peak, m2, sizeof m2);
        fprintf(f, "\nmeasured:");
        for (int i = 0; i < r->n_command; i++)
            fprintf(f, " %s", r->command[i]);
        fprintf(f, "\n  exit status %d, %.3f s\n", r->meas.exit_status, r->meas.seconds);
        fprintf(f, "  host peak:   measured %llu B (%s MiB, ru_maxrss), estimate %llu B (%s MiB, %s)\n",
                (unsigned long long)r->meas.host_peak, m1, (unsigned long long)e->host.peak, m2,
                e->host.peak_name ? e->host.peak_name : "-");
        if (!isnan(r->cap[ANN_MEM_HOST].h_measured))
            fprintf(f, "  H_measured:  %.4f\n", r->cap[ANN_MEM_HOST].h_measured);
        if (e->device.used)
            fputs("  device:      not measured\n", f);
    }
}

static void json_side(FILE *f, const report *r, ann_mem_space sp)
{
    const ann_mem_side *side = sp == ANN_MEM_DEVICE ? &r->est.device : &r->est.host;
    const ann_mem_capacity *c = &r->cap[sp];
    if (!side->used) {
        fputs("null", f);
        return;
    }
    fputs("{\"peak_term\":", f);
    json_string(f, side->peak_name);
    fprintf(f, ",\"formula_without_scratch\":%llu,\"b_per_vector\":", (unsigned long long)side->peak);
    json_number(f, c->known ? c->b_per_vector : side->b_per_vector);
    fputs(",\"b_fixed\":", f);
    json_number(f, c->known ? c->b_fixed : side->b_fixed);
    fputs(",\"m_free\":", f);
    if (r->m_free[sp])
        fprintf(f, "%llu", (unsigned long long)r->m_free[sp]);
    else
        fputs("null", f);
    fprintf(f, ",\"m_other\":%llu,\"h\":", (unsigned long long)r->m_other[sp]);
    json_number(f, c->h);
    fputs(",\"h_measured\":", f);
    json_number(f, c->h_measured);
    if (c->known)
        fprintf(f, ",\"m_usable\":%llu,\"n_max\":%lld,\"n_max_linear\":%lld,\"fits\":%s}",
                (unsigned long long)c->m_usable, (long long)c->n_max, (long long)c->n_max_linear,
                c->fits ? "true" : "false");
    else
        fputs(",\"m_usable\":null,\"n_max\":null,\"n_max_linear\":null,\"fits\":null}", f);
}

static void print_json(FILE *f, const report *r)
{
    const ann_mem_estimate *e = &r->est;
    const ann_mem_inputs *in = &e->in;
    fputs("{\"model\":", f);
    json_string(f, ann_mem_model_name(in->algo));
    fprintf(f, ",\"phase\":\"%s\"", in->phase == ANN_MEM_PHASE_SEARCH ? "search" : "build");
    if (in->algo == ANN_ALGO_CAGRA)
        fprintf(f, ",\"build_algo\":\"%s\"", ann_mem_builder_name(in->build_algo));
    fprintf(f, ",\"inputs\":{\"N\":%lld,\"D\":%lld,\"B\":%d,\"dtype\":\"%s\",\"metric\":\"%s\"", (long long)in->rows,
            (long long)in->dim, (int)in->bytes_per_value, ann_dtype_name(in->dtype), ann_metric_name(in->metric));
    switch (in->algo) {
    case ANN_ALGO_CAGRA:
        fprintf(f, ",\"G\":%lld,\"I\":%lld,\"C\":%lld,\"R\":", (long long)in->graph_degree,
                (long long)in->intermediate_graph_degree, (long long)in->n_lists);
        json_number(f, in->train_set_ratio);
        fprintf(f, ",\"Q\":%lld,\"K\":%lld,\"S_idx\":%d,\"input\":\"%s\"", (long long)in->batch, (long long)in->k,
                (int)in->idx_bytes, where(in));
        break;
    case ANN_ALGO_NN_DESCENT:
        fprintf(f, ",\"G\":%lld,\"I\":%lld,\"return_distances\":%s,\"input\":\"%s\"", (long long)in->graph_degree,
                (long long)in->intermediate_graph_degree, in->return_distances ? "true" : "false",
                where(in));
        break;
    case ANN_ALGO_IVF_FLAT:
        fprintf(f, ",\"n_lists\":%lld,\"kmeans_trainset_fraction\":", (long long)in->n_lists);
        json_number(f, in->kmeans_trainset_fraction);
        fprintf(f, ",\"max_train_points_per_cluster\":%lld,\"compress\":%s", (long long)in->max_train_points_per_cluster,
                in->compress ? "true" : "false");
        break;
    case ANN_ALGO_BRUTE_FORCE:
        fprintf(f, ",\"Q\":%lld,\"k\":%lld,\"compress\":%s", (long long)in->batch, (long long)in->k,
                in->compress ? "true" : "false");
        break;
    case ANN_ALGO_HNSW:
        fprintf(f, ",\"npartitions\":%lld,\"imbalance\":", (long long)in->npartitions);
        json_number(f, in->imbalance);
        break;
    case ANN_ALGO_IVF_PQ:
        fprintf(f, ",\"G\":%lld,\"n_lists\":%lld,\"pq_dim\":%d,\"pq_bits\":%d,\"n_probes\":%d,\"kmeans_trainset_fraction\":",
                (long long)in->graph_degree, (long long)in->n_lists, (int)in->pq_dim, (int)in->pq_bits,
                (int)in->n_probes);
        json_number(f, in->kmeans_trainset_fraction);
        fputs(",\"refine_ratio\":", f);
        json_number(f, in->refine_ratio);
        fprintf(f, ",\"force_random_rotation\":%s,\"max_train_points_per_pq_code\":%d,\"return_distances\":%s",
                in->force_random_rotation ? "true" : "false", (int)in->max_train_points_per_pq_code,
                in->return_distances ? "true" : "false");
        break;
    default:
        break;
    }
    if (in->algo == ANN_ALGO_CAGRA || in->algo == ANN_ALGO_NN_DESCENT)
        fprintf(f, ",\"build\":\"%s\"", in->device || in->input_on_device ? "cuda" : "cpu");
    fputs("},\"derived\":{", f);
    for (size_t i = 0; i < e->n_counts; i++) {
        if (i)
            fputc(',', f);
        json_string(f, e->counts[i].name);
        fputc(':', f);
        json_number(f, e->counts[i].value);
    }
    fputs("},\"terms\":[", f);
    for (size_t i = 0; i < e->n_terms; i++) {
        const ann_mem_term *t = &e->terms[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        json_string(f, t->name);
        fprintf(f, ",\"space\":\"%s\",\"bytes\":%llu,\"mib\":", ann_mem_space_name(t->space),
                (unsigned long long)t->bytes);
        json_number(f, (double)t->bytes / MIB);
        fprintf(f, ",\"peak\":%s,\"formula\":", t->is_peak ? "true" : "false");
        json_string(f, t->formula);
        fputs(",\"source\":", f);
        json_string(f, t->source);
        fputc('}', f);
    }
    fputs("],\"device\":", f);
    json_side(f, r, ANN_MEM_DEVICE);
    fputs(",\"host\":", f);
    json_side(f, r, ANN_MEM_HOST);
    if (r->n_max >= 0)
        fprintf(f, ",\"n_max\":%lld,\"limited_by\":\"%s\"", (long long)r->n_max, r->limited_by);
    else
        fputs(",\"n_max\":null,\"limited_by\":null", f);
    if (r->meas.done) {
        fputs(",\"measured\":{\"command\":[", f);
        for (int i = 0; i < r->n_command; i++) {
            if (i)
                fputc(',', f);
            json_string(f, r->command[i]);
        }
        fprintf(f, "],\"exit_status\":%d,\"seconds\":", r->meas.exit_status);
        json_number(f, r->meas.seconds);
        fprintf(f, ",\"host_peak\":%llu,\"host_estimate\":%llu,\"h_measured\":", (unsigned long long)r->meas.host_peak,
                (unsigned long long)e->host.peak);
        json_number(f, r->cap[ANN_MEM_HOST].h_measured);
        fputs(",\"device_peak\":null,\"device\":\"not measured\"}", f);
    }
    fputs("}\n", f);
}

static void print_tsv(FILE *f, const report *r)
{
    const ann_mem_estimate *e = &r->est;
    char mib[32];
    fputs("kind\tname\tspace\tvalue\tMiB\tpeak\tformula\n", f);
    fprintf(f, "model\t%s\t\t%s\t\t\t\n", ann_mem_model_name(e->in.algo),
            e->in.phase == ANN_MEM_PHASE_SEARCH ? "search" : "build");
    fprintf(f, "input\tN\t\t%lld\t\t\t\ninput\tD\t\t%lld\t\t\t\ninput\tB\t\t%d\t\t\t\n", (long long)e->in.rows,
            (long long)e->in.dim, (int)e->in.bytes_per_value);
    for (size_t i = 0; i < e->n_counts; i++)
        fprintf(f, "count\t%s\t\t%.10g\t\t\t%s\n", e->counts[i].name, e->counts[i].value, e->counts[i].formula);
    for (size_t i = 0; i < e->n_terms; i++) {
        const ann_mem_term *t = &e->terms[i];
        mib_text(t->bytes, mib, sizeof mib);
        fprintf(f, "term\t%s\t%s\t%llu\t%s\t%d\t%s\n", t->name, ann_mem_space_name(t->space),
                (unsigned long long)t->bytes, mib, t->is_peak ? 1 : 0, t->formula);
    }
    for (int s = 0; s < 2; s++) {
        ann_mem_space sp = s == 0 ? ANN_MEM_DEVICE : ANN_MEM_HOST;
        const char *sn = ann_mem_space_name(sp);
        const ann_mem_side *side = sp == ANN_MEM_DEVICE ? &e->device : &e->host;
        const ann_mem_capacity *c = &r->cap[sp];
        if (!side->used)
            continue;
        mib_text(side->peak, mib, sizeof mib);
        fprintf(f, "capacity\tformula_without_scratch\t%s\t%llu\t%s\t\t%s\n", sn, (unsigned long long)side->peak, mib,
                side->peak_name);
        fprintf(f, "capacity\tB_per_vector\t%s\t%.10g\t\t\t\n", sn, c->known ? c->b_per_vector : side->b_per_vector);
        fprintf(f, "capacity\tB_fixed\t%s\t%.10g\t\t\t\n", sn, c->known ? c->b_fixed : side->b_fixed);
        fprintf(f, "capacity\tH\t%s\t%.10g\t\t\t\n", sn, c->h);
        if (!isnan(c->h_measured))
            fprintf(f, "capacity\tH_measured\t%s\t%.10g\t\t\t\n", sn, c->h_measured);
        if (!c->known)
            continue;
        mib_text(r->m_free[sp], mib, sizeof mib);
        fprintf(f, "capacity\tM_free\t%s\t%llu\t%s\t\t\n", sn, (unsigned long long)r->m_free[sp], mib);
        mib_text(r->m_other[sp], mib, sizeof mib);
        fprintf(f, "capacity\tM_other\t%s\t%llu\t%s\t\t\n", sn, (unsigned long long)r->m_other[sp], mib);
        mib_text(c->m_usable, mib, sizeof mib);
        fprintf(f, "capacity\tM_usable\t%s\t%llu\t%s\t\t\n", sn, (unsigned long long)c->m_usable, mib);
        fprintf(f, "capacity\tN_max\t%s\t%lld\t\t\t\n", sn, (long long)c->n_max);
        fprintf(f, "capacity\tN_max_linear\t%s\t%lld\t\t\t\n", sn, (long long)c->n_max_linear);
        fprintf(f, "capacity\tfits\t%s\t%d\t\t\t\n", sn, c->fits ? 1 : 0);
    }
    if (r->n_max >= 0)
        fprintf(f, "answer\tN_max\t%s\t%lld\t\t\t\n", r->limited_by, (long long)r->n_max);
    if (r->meas.done) {
        mib_text(r->meas.host_peak, mib, sizeof mib);
        fprintf(f, "measured\thost_peak\thost\t%llu\t%s\t\t\n", (unsigned long long)r->meas.host_peak, mib);
        fprintf(f, "measured\texit_status\t\t%d\t\t\t\n", r->meas.exit_status);
        if (!isnan(r->cap[ANN_MEM_HOST].h_measured))
            fprintf(f, "measured\tH_measured\thost\t%.10g\t\t\t\n", r->cap[ANN_MEM_HOST].h_measured);
    }
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

/* Capacity of both spaces for @p in; fills r->cap, r->n_max, r->limited_by. */
static int capacities(const run_opts *o, const ann_mem_inputs *in, report *r)
{
    r->n_max = -1;
    r->limited_by = NULL;
    for (int s = 0; s < 2; s++) {
        ann_mem_space sp = s == 0 ? ANN_MEM_HOST : ANN_MEM_DEVICE;
        ann_mem_budget b;
        ann_mem_budget_init(&b);
        b.free = r->m_free[sp];
        b.other = r->m_other[sp];
        b.headroom = o->headroom;
        b.observed_rows = o->observed_rows;
        /* --observed-peak is the main space's, --observed-host-peak the host's */
        if (sp == ANN_MEM_DEVICE)
            b.observed_peak = o->observed_main;
        else if (r->est.device.used)
            b.observed_peak = o->observed_host;
        else
            b.observed_peak = o->observed_main ? o->observed_main : o->observed_host;
        if (sp == ANN_MEM_HOST && r->meas.done) {
            b.observed_peak = r->meas.host_peak;
            b.observed_rows = in->rows;
        }
        ann_clear_error();
        ann_status st = ann_mem_capacity_compute(in, sp, &b, &r->cap[sp]);
        if (st != ANN_OK)
            return cli_report(st, NULL);
        const ann_mem_capacity *c = &r->cap[sp];
        if (c->known && (r->n_max < 0 || c->n_max < r->n_max)) {
            r->n_max = c->n_max;
            r->limited_by = ann_mem_space_name(sp);
        }
    }
    return 0;
}

static int run(run_opts *o, const cli_common *co)
{
    report *r = calloc(1, sizeof *r);
    ann_mem_inputs in;
    ann_algo algo = ANN_ALGO_NONE;
    int rc = 0;
    if (!r) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    if (o->model && ann_mem_model_parse(o->model, &algo) != ANN_OK) {
        rc = cli_usage_error("unknown MODEL '%s' (cagra, nn_descent, brute_force, ivf_flat, ace, ivf_pq)", o->model);
        goto done;
    }
    ann_mem_inputs_init(&in, algo);
    in.n_threads = co->threads;
    in.device = co->device == ANN_DEVICE_CUDA;
    if (o->measure) {
        if (o->n_command == 0) {
            rc = cli_usage_error("--measure needs a command after '--'");
            goto done;
        }
        if ((rc = model_from_command(o->command, o->n_command, o->model != NULL, &in)) != 0)
            goto done;
    } else if (!o->model) {
        rc = cli_usage_error("missing MODEL (cagra, nn_descent, brute_force, ivf_flat, ace, ivf_pq)");
        goto done;
    }
    for (size_t i = 0; i < o->n_given; i++)
        if ((rc = apply_input(&in, o->given[i].code, o->given[i].arg)) != 0)
            goto done;
    if (in.dim < 1) {
        rc = cli_usage_error("--dim is required");
        goto done;
    }

    /* The budgets: the main space is the device when the model has a device peak. */
    ann_mem_inputs probe = in;
    if (probe.rows < 1)
        probe.rows = 1;
    ann_clear_error();
    ann_status st = ann_mem_estimate_compute(&probe, &r->est);
    if (st != ANN_OK) {
        rc = st == ANN_ERR_UNSUPPORTED ? CLI_EXIT_UNAVAILABLE : cli_usage_error("%s", ann_last_error());
        if (st == ANN_ERR_UNSUPPORTED)
            cli_error("%s", ann_last_error());
        goto done;
    }
    const bool has_device = r->est.device.used;
    const ann_mem_space main_space = has_device ? ANN_MEM_DEVICE : ANN_MEM_HOST;
    r->m_free[main_space] = o->free_main;
    r->m_other[main_space] = o->other_main;
    if (has_device || o->free_host_given || o->other_host) {
        if (o->free_host_given)
            r->m_free[ANN_MEM_HOST] = o->free_host;
        if (o->other_host)
            r->m_other[ANN_MEM_HOST] = o->other_host;
    }
    if (r->m_free[ANN_MEM_HOST] == 0 && !o->free_host_given && !(main_space == ANN_MEM_HOST && o->free_main)) {
        r->m_free[ANN_MEM_HOST] = ann_mem_host_available();
        r->free_from_meminfo = r->m_free[ANN_MEM_HOST] != 0;
    }

    /* ACE with npartitions 0: the smallest count that fits the known budgets. */
    if (in.algo == ANN_ALGO_HNSW && in.npartitions == 0 && in.rows > 0) {
        double h = o->headroom >= 0 ? o->headroom : r->est.headroom;
        uint64_t uh = 0, ud = 0;
        for (int s = 0; s < 2; s++) {
            uint64_t fr = r->m_free[s], ot = r->m_other[s];
            uint64_t u = fr == 0 ? 0 : fr > ot ? (uint64_t)floor((double)(fr - ot) * (1.0 - h)) : 1;
            if (s == ANN_MEM_HOST)
                uh = u;
            else
                ud = u;
        }
        if (uh || ud) {
            int64_t P;
            ann_clear_error();
            st = ann_mem_ace_partitions(&in, uh, ud, &P);
            if (st != ANN_OK) {
                cli_error("%s", ann_last_error());
                rc = CLI_EXIT_FAILURE;
                goto done;
            }
            in.npartitions = P;
            r->ace_auto = true;
        }
    }

    if (in.rows < 1) {
        /* No --rows: report at N = N_max of the known budgets. */
        if (!o->free_main && !o->free_host_given) {
            rc = cli_usage_error("--rows is required (or --free to find the largest N)");
            goto done;
        }
        in.rows = 1;
        if ((rc = capacities(o, &in, r)) != 0)
            goto done;
        if (r->n_max < 1) {
            cli_error("not even one vector fits the memory given");
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        in.rows = r->n_max;
    }
    if (o->measure) {
        if ((rc = run_command(o->command, &r->meas)) != 0)
            goto done;
        r->command = o->command;
        r->n_command = o->n_command;
    }
    ann_clear_error();
    st = ann_mem_estimate_compute(&in, &r->est);
    if (st != ANN_OK) {
        rc = st == ANN_ERR_UNSUPPORTED ? CLI_EXIT_UNAVAILABLE : cli_usage_error("%s", ann_last_error());
        if (st == ANN_ERR_UNSUPPORTED)
            cli_error("%s", ann_last_error());
        goto done;
    }
    if ((rc = capacities(o, &in, r)) != 0)
        goto done;
    if (o->json)
        print_json(stdout, r);
    else if (o->tsv)
        print_tsv(stdout, r);
    else
        print_table(stdout, r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("write error on standard output: %s", strerror(errno));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    if (r->meas.done && r->meas.exit_status != 0) {
        cli_error("'%s' exited with status %d", o->command[0], r->meas.exit_status);
        rc = CLI_EXIT_FAILURE;
    }
done:
    free(r);
    return rc;
}

int main(int argc, char **argv)
{
    run_opts o;
    cli_parser p;
    int rc, c;
    memset(&o, 0, sizeof o);
    o.headroom = -1.0;

    cli_init(argv[0], "annmem");
    /* Everything after a "--" is the command of --measure. */
    int n_args = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            n_args = i;
            o.command = argv + i + 1;
            o.n_command = argc - i - 1;
            break;
        }
    }
    o.given = calloc((size_t)argc + 1, sizeof *o.given);
    if (!o.given) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    if ((rc = cli_parser_init(&p, "k:", longopts, CLI_PARAMS_NONE, NULL, 0)) != 0) {
        free(o.given);
        return rc;
    }
    ann_mem_inputs scratch;
    ann_mem_inputs_init(&scratch, ANN_ALGO_CAGRA);
    while ((c = cli_getopt(&p, n_args, argv)) != CLI_GETOPT_END) {
        switch (c) {
        case CLI_GETOPT_HELP:
            usage(stdout);
            rc = 0;
            goto done;
        case CLI_GETOPT_VERSION:
            cli_print_version(stdout);
            rc = 0;
            goto done;
        case CLI_GETOPT_ERROR:
            rc = CLI_EXIT_USAGE;
            goto done;
        case OPT_FREE:
            if ((rc = parse_bytes("--free", optarg, &o.free_main)) != 0)
                goto done;
            break;
        case OPT_OTHER:
            if ((rc = parse_bytes("--other", optarg, &o.other_main)) != 0)
                goto done;
            break;
        case OPT_FREE_HOST:
            if ((rc = parse_bytes("--free-host", optarg, &o.free_host)) != 0)
                goto done;
            o.free_host_given = true;
            break;
        case OPT_OTHER_HOST:
            if ((rc = parse_bytes("--other-host", optarg, &o.other_host)) != 0)
                goto done;
            break;
        case OPT_HEADROOM:
            if ((rc = parse_double("--headroom", optarg, 0.0, 0.99, &o.headroom)) != 0)
                goto done;
            break;
        case OPT_OBSERVED:
            if ((rc = parse_bytes("--observed-peak", optarg, &o.observed_main)) != 0)
                goto done;
            break;
        case OPT_OBSERVED_HOST:
            if ((rc = parse_bytes("--observed-host-peak", optarg, &o.observed_host)) != 0)
                goto done;
            break;
        case OPT_OBSERVED_ROWS:
            if ((rc = cli_parse_i64("--observed-rows", optarg, 1, (int64_t)1 << 53, &o.observed_rows)) != 0)
                goto done;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_TSV:
            o.tsv = true;
            break;
        case OPT_MEASURE:
            o.measure = true;
            break;
        default:
            /* a model input: check its value now, apply it later */
            rc = apply_input(&scratch, c, optarg);
            if (rc < 0) {
                rc = cli_usage_error("unexpected option");
                goto done;
            }
            if (rc != 0)
                goto done;
            if (c == OPT_ROWS)
                o.rows_given = true;
            o.given[o.n_given].code = c;
            o.given[o.n_given].arg = optarg;
            o.n_given++;
            break;
        }
    }
    if (o.json && o.tsv) {
        rc = cli_usage_error("--json and --tsv exclude each other");
        goto done;
    }
    if (o.n_command > 0 && !o.measure) {
        rc = cli_usage_error("a command after '--' needs --measure");
        goto done;
    }
    if (optind < n_args)
        o.model = argv[optind++];
    if (optind < n_args) {
        rc = cli_usage_error("unexpected operand '%s'", argv[optind]);
        goto done;
    }
    if (o.observed_main && !o.rows_given && !o.observed_rows && !o.measure) {
        rc = cli_usage_error("--observed-peak needs --rows or --observed-rows (the N of the observed run)");
        goto done;
    }
    rc = run(&o, &p.common);
done:
    cli_parser_free(&p);
    free(o.given);
    return rc;
}

/*
 * cli_opt.c - option parsing shared by the tools: checked number parsers
 * with size suffixes (the zstd readU32FromChar idea), the common options
 * on top of getopt_long, and long options generated from the library's
 * parameter tables (ann_algo_describe()), so that a parameter added to a
 * table becomes an option, a range check and a --help line at once.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

/* Multiplier of a size suffix; 0 when @p s is not one. */
static uint64_t suffix_value(const char *s)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } table[] = {
        {"", 1},
        {"K", 1000ULL}, {"k", 1000ULL}, {"KB", 1000ULL}, {"kB", 1000ULL},
        {"M", 1000000ULL}, {"MB", 1000000ULL},
        {"G", 1000000000ULL}, {"GB", 1000000000ULL},
        {"T", 1000000000000ULL}, {"TB", 1000000000000ULL},
        {"Ki", 1ULL << 10}, {"KiB", 1ULL << 10},
        {"Mi", 1ULL << 20}, {"MiB", 1ULL << 20},
        {"Gi", 1ULL << 30}, {"GiB", 1ULL << 30},
        {"Ti", 1ULL << 40}, {"TiB", 1ULL << 40},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].name) == 0)
            return table[i].mult;
    return 0;
}

/*
 * Parse @p text into a signed 128-bit-safe value.  Plain integers are
 * accumulated exactly with overflow checks; a mantissa with '.' or an
 * exponent goes through strtod and must come out integral.  Returns false
 * for junk; *overflow is set when the magnitude exceeds 2^63.
 */
static bool parse_integer(const char *text, bool *negative, uint64_t *magnitude, bool *overflow)
{
    const char *p = text;
    *negative = false;
    *overflow = false;
    if (*p == '+' || *p == '-') {
        *negative = (*p == '-');
        p++;
    }
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return false;
    const char *num = p;
    bool real = false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        real = true;
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if ((*p == 'e' || *p == 'E') &&
        (isdigit((unsigned char)p[1]) ||
         ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
        real = true;
        p += 2;
        while (isdigit((unsigned char)*p))
            p++;
    }
    uint64_t mult = suffix_value(p);
    if (mult == 0)
        return false;

    if (!real) {
        uint64_t v = 0;
        for (const char *d = num; isdigit((unsigned char)*d); d++) {
            unsigned digit = (unsigned)(*d - '0');
            if (v > (UINT64_MAX - digit) / 10) {
                *overflow = true;
                return true;
            }
            v = v * 10 + digit;
        }
        if (v != 0 && mult > UINT64_MAX / v) {
            *overflow = true;
            return true;
        }
        *magnitude = v * mult;
        return true;
    }

    char buf[128];
    size_t len = (size_t)(p - num);
    if (len >= sizeof buf)
        return false;
    memcpy(buf, num, len);
    buf[len] = '\0';
    errno = 0;
    double d = strtod(buf, NULL) * (double)mult;
    if (!isfinite(d) || d >= 18446744073709551616.0) {
        *overflow = true;
        return true;
    }
    if (d != floor(d))
        return false;
    *magnitude = (uint64_t)d;
    return true;
}

int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out)
{
    bool neg, overflow;
    uint64_t mag = 0;
    if (text == NULL || !parse_integer(text, &neg, &mag, &overflow))
        return cli_usage_error("invalid number '%s' for %s", text ? text : "", opt);
    if (overflow || (!neg && mag > (uint64_t)INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1))
        return cli_usage_error("%s %s: value too large", opt, text);
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    if (v < min || v > max)
        return cli_usage_error("%s %s: out of range [%lld, %lld]", opt, text, (long long)min,
                               (long long)max);
    *out = v;
    return 0;
}

int cli_parse_int(const char *opt, const char *text, int min, int max, int *out)
{
    int64_t v;
    int rc = cli_parse_i64(opt, text, min, max, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

int cli_parse_u64(const char *opt, const char *text, uint64_t *out)
{
    bool neg, overflow;
    uint64_t mag = 0;
    if (text == NULL || !parse_integer(text, &neg, &mag, &overflow) || neg)
        return cli_usage_error("invalid number '%s' for %s", text ? text : "", opt);
    if (overflow)
        return cli_usage_error("%s %s: value too large", opt, text);
    *out = mag;
    return 0;
}

int cli_parse_rows(const char *opt, const char *text, int64_t *begin, int64_t *end)
{
    const char *colon = strchr(text, ':');
    if (colon == NULL)
        return cli_usage_error("%s '%s': expected A:B (rows A to B-1; A or B may be left out)",
                               opt, text);
    char a[64], b[64];
    size_t la = (size_t)(colon - text);
    if (la >= sizeof a || strlen(colon + 1) >= sizeof b)
        return cli_usage_error("%s '%s': too long", opt, text);
    memcpy(a, text, la);
    a[la] = '\0';
    strcpy(b, colon + 1);
    int64_t lo = 0, hi = -1;
    int rc;
    if (a[0] != '\0' && (rc = cli_parse_i64(opt, a, 0, INT64_MAX, &lo)) != 0)
        return rc;
    if (b[0] != '\0' && (rc = cli_parse_i64(opt, b, 0, INT64_MAX, &hi)) != 0)
        return rc;
    if (hi >= 0 && hi <= lo)
        return cli_usage_error("%s '%s': the range is empty", opt, text);
    *begin = lo;
    *end = hi;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The parser                                                          */
/* ------------------------------------------------------------------ */

static const struct option common_longopts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"force", no_argument, NULL, 'f'},
    {"device", required_argument, NULL, CLI_OPT_DEVICE},
    {"threads", required_argument, NULL, CLI_OPT_THREADS},
    {"seed", required_argument, NULL, CLI_OPT_SEED},
};
#define N_COMMON (sizeof common_longopts / sizeof common_longopts[0])

/* The algorithms whose tables a tool turns into options, by default every
 * value of ann_algo after NONE. */
static const ann_algo all_algos[] = {
    ANN_ALGO_BRUTE_FORCE, ANN_ALGO_IVF_FLAT, ANN_ALGO_IVF_SQ,    ANN_ALGO_IVF_PQ,
    ANN_ALGO_CAGRA,       ANN_ALGO_HNSW,     ANN_ALGO_NN_DESCENT,
};

static const ann_param_desc *kind_table(const ann_algo_desc *d, cli_param_kind kind, size_t *n)
{
    *n = 0;
    const ann_param_desc *(*fn)(size_t *) =
        kind == CLI_PARAMS_BUILD ? d->build_table : kind == CLI_PARAMS_SEARCH ? d->search_table : NULL;
    if (fn == NULL)
        return NULL;
    const ann_param_desc *t = fn(n);
    if (t == NULL)
        *n = 0;
    return t;
}

static bool longopt_taken(const struct option *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return true;
    return false;
}

/* "n_lists" -> "n-lists" (allocated). */
static char *dashed(const char *name)
{
    char *s = strdup(name);
    if (s != NULL)
        for (char *c = s; *c; c++)
            if (*c == '_')
                *c = '-';
    return s;
}

int cli_parser_init(cli_parser *p, const char *shortopts, const struct option *longopts,
                    cli_param_kind kind, const ann_algo *algos, size_t n_algos)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    if (algos == NULL) {
        algos = all_algos;
        n_algos = sizeof all_algos / sizeof all_algos[0];
    }
    for (size_t i = 0; i < n_algos && i < sizeof p->algos / sizeof p->algos[0]; i++)
        p->algos[p->n_algos++] = algos[i];
    p->common.force = false;
    ann_exec ex;
    ann_exec_init(&ex);
    p->common.device = ex.device;
    p->common.threads = ex.n_threads;
    p->common.seed = ex.seed;
    snprintf(p->shortopts, sizeof p->shortopts, ":hVqvf%s", shortopts ? shortopts : "");

    size_t n_tool = 0;
    while (longopts != NULL && longopts[n_tool].name != NULL)
        n_tool++;

    /* Count the parameter names of every described algorithm (upper bound). */
    size_t n_param_max = 0;
    for (size_t a = 0; a < p->n_algos; a++) {
        const ann_algo_desc *d = ann_algo_describe(p->algos[a]);
        size_t n = 0;
        if (d != NULL)
            kind_table(d, kind, &n);
        n_param_max += n;
    }

    size_t cap = N_COMMON + n_tool + n_param_max + 1;
    p->longopts = calloc(cap, sizeof *p->longopts);
    p->params = calloc(n_param_max + 1, sizeof *p->params);
    p->given = calloc(1, sizeof *p->given);
    if (p->longopts == NULL || p->params == NULL || p->given == NULL)
        goto nomem;
    memcpy(p->longopts, common_longopts, sizeof common_longopts);
    p->n_longopts = N_COMMON;
    for (size_t i = 0; i < n_tool; i++)
        p->longopts[p->n_longopts++] = longopts[i];

    for (size_t a = 0; a < p->n_algos; a++) {
        const ann_algo_desc *d = ann_algo_describe(p->algos[a]);
        if (d == NULL)
            continue;
        size_t n;
        const ann_param_desc *t = kind_table(d, kind, &n);
        for (size_t j = 0; j < n; j++) {
            char *opt = dashed(t[j].name);
            if (opt == NULL)
                goto nomem;
            /* Shared names (n_probes of several IVF kinds) give one option;
             * names that a fixed option already spells (metric) are skipped. */
            if (longopt_taken(p->longopts, p->n_longopts, opt)) {
                free(opt);
                continue;
            }
            p->params[p->n_params].name = t[j].name;
            p->params[p->n_params].option = opt;
            p->longopts[p->n_longopts].name = opt;
            p->longopts[p->n_longopts].has_arg = required_argument;
            p->longopts[p->n_longopts].flag = NULL;
            p->longopts[p->n_longopts].val = CLI_OPT_PARAM + (int)p->n_params;
            p->n_longopts++;
            p->n_params++;
        }
    }
    return 0;

nomem:
    cli_parser_free(p);
    cli_error("out of memory");
    return CLI_EXIT_FAILURE;
}

void cli_parser_free(cli_parser *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_params; i++)
        free(p->params[i].option);
    free(p->params);
    free(p->longopts);
    free(p->given);
    p->params = NULL;
    p->longopts = NULL;
    p->given = NULL;
    p->n_params = p->n_longopts = p->n_given = 0;
}

int cli_getopt(cli_parser *p, int argc, char *const argv[])
{
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, p->shortopts, p->longopts, NULL);
        const char *arg = optarg;
        int rc;
        switch (c) {
        case -1:
            return CLI_GETOPT_END;
        case 'h':
            return CLI_GETOPT_HELP;
        case 'V':
            return CLI_GETOPT_VERSION;
        case 'q':
            cli_set_verbosity(CLI_V_QUIET);
            continue;
        case 'v':
            cli_set_verbosity(cli_verbosity() + 1);
            continue;
        case 'f':
            p->common.force = true;
            continue;
        case CLI_OPT_DEVICE:
            if (ann_device_parse(arg, &p->common.device) != ANN_OK) {
                cli_usage_error("invalid --device '%s' (expected auto, cpu or cuda)", arg);
                return CLI_GETOPT_ERROR;
            }
            continue;
        case CLI_OPT_THREADS:
            if ((rc = cli_parse_int("--threads", arg, 0, 65536, &p->common.threads)) != 0)
                return CLI_GETOPT_ERROR;
            continue;
        case CLI_OPT_SEED:
            if ((rc = cli_parse_u64("--seed", arg, &p->common.seed)) != 0)
                return CLI_GETOPT_ERROR;
            continue;
        case ':': {
            const char *what = (optind > 0 && optind <= argc) ? argv[optind - 1] : "?";
            if (optopt > 0 && optopt < 0x80 && what[0] == '-' && what[1] != '-')
                cli_usage_error("option '-%c' requires an argument", optopt);
            else
                cli_usage_error("option '%s' requires an argument", what);
            return CLI_GETOPT_ERROR;
        }
        case '?': {
            const char *what = (optind > 0 && optind <= argc) ? argv[optind - 1] : "?";
            if (strncmp(what, "--", 2) == 0) {
                const char *eq = strchr(what, '=');
                if (optopt != 0 && eq != NULL)
                    cli_usage_error("option '%.*s' does not take an argument", (int)(eq - what), what);
                else
                    cli_usage_error("unrecognized or ambiguous option '%s'", what);
            } else if (optopt > 0 && optopt < 0x80 && isprint(optopt)) {
                cli_usage_error("invalid option '-%c'", optopt);
            } else {
                cli_usage_error("invalid option '%s'", what);
            }
            return CLI_GETOPT_ERROR;
        }
        default:
            if (c >= CLI_OPT_PARAM && (size_t)(c - CLI_OPT_PARAM) < p->n_params) {
                cli_param_arg *g = realloc(p->given, (p->n_given + 1) * sizeof *g);
                if (g == NULL) {
                    cli_error("out of memory");
                    return CLI_GETOPT_ERROR;
                }
                p->given = g;
                p->given[p->n_given].index = c - CLI_OPT_PARAM;
                p->given[p->n_given].value = arg;
                p->n_given++;
                continue;
            }
            return c;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Help                                                                */
/* ------------------------------------------------------------------ */

void cli_help_common(FILE *out)
{
    fputs("Common options:\n"
          "  -h, --help            print this help to stdout and exit\n"
          "  -V, --version         print the versions and the backends found, and exit\n"
          "  -q, --quiet           print only errors\n"
          "  -v, --verbose         print timings and summaries (-vv: debug messages)\n"
          "  -f, --force           overwrite existing output files\n"
          "      --device DEV      auto (default), cpu or cuda\n"
          "      --threads N       OpenMP threads (default 0: all cores)\n"
          "      --seed N          seed of every random choice (default 42)\n",
          out);
}

/* Value placeholder of a parameter in --help. */
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

static void format_bound(const ann_param_desc *d, double v, char *buf, size_t len)
{
    if (d->type == ANN_PARAM_FLOAT)
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "%.0f", v);
}

void cli_help_params(FILE *out, const cli_parser *p)
{
    cli_param_kind kind = p->kind;
    for (size_t a = 0; a < p->n_algos; a++) {
        const ann_algo_desc *d = ann_algo_describe(p->algos[a]);
        if (d == NULL)
            continue;
        size_t n;
        const ann_param_desc *t = kind_table(d, kind, &n);
        if (n == 0)
            continue;
        size_t size = kind == CLI_PARAMS_BUILD ? d->build_params_size : d->search_params_size;
        void (*init)(void *) = kind == CLI_PARAMS_BUILD ? d->build_params_init : d->search_params_init;
        void *defaults = calloc(1, size ? size : 1);
        if (defaults != NULL && init != NULL)
            init(defaults);
        if (kind == CLI_PARAMS_BUILD)
            fprintf(out, "\n%s build parameters (with --algo %s):\n", d->name, d->name);
        else
            fprintf(out, "\n%s search parameters (comma-separated lists allowed):\n", d->name);
        for (size_t j = 0; j < n; j++) {
            char opt[96], def[64] = "?", lo[32], hi[32], range[160];
            /* Only parameters that became options (not "metric", say,
             * which a fixed option of the tool spells). */
            bool generated = false;
            for (size_t i = 0; i < p->n_params && !generated; i++)
                generated = strcmp(p->params[i].name, t[j].name) == 0;
            if (!generated)
                continue;
            snprintf(opt, sizeof opt, "--%s %s", t[j].name, metavar(&t[j]));
            for (char *c = opt + 2; *c && *c != ' '; c++)
                if (*c == '_')
                    *c = '-';
            if (defaults != NULL)
                ann_params_format(&t[j], defaults, def, sizeof def);
            if (t[j].type == ANN_PARAM_ENUM) {
                snprintf(range, sizeof range, "%s", t[j].choices ? t[j].choices : "");
            } else if (t[j].type == ANN_PARAM_BOOL) {
                snprintf(range, sizeof range, "true|false");
            } else {
                format_bound(&t[j], t[j].min, lo, sizeof lo);
                format_bound(&t[j], t[j].max, hi, sizeof hi);
                snprintf(range, sizeof range, "%s..%s", lo, hi);
            }
            /* "--option N" in a 22-column field, the help after it, or on
             * the next line when the option is longer than the field. */
            if (strlen(opt) < 22)
                fprintf(out, "      %-22s%s\n", opt, t[j].help ? t[j].help : "");
            else
                fprintf(out, "      %s\n      %-22s%s\n", opt, "", t[j].help ? t[j].help : "");
            fprintf(out, "      %-22s%s, default %s\n", "", range, def);
        }
        free(defaults);
    }
}

/* ------------------------------------------------------------------ */
/* Applying parameter options                                          */
/* ------------------------------------------------------------------ */

static const ann_param_desc *find_param(const ann_param_desc *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

static int not_applicable(const cli_parser *p, const ann_algo_desc *desc, const char *option)
{
    if (p->kind == CLI_PARAMS_BUILD)
        return cli_usage_error("option '--%s' does not apply to --algo %s", option, desc->name);
    return cli_usage_error("option '--%s' does not apply to %s indexes", option, desc->name);
}

static int set_param(const ann_param_desc *t, size_t n, void *params, const char *name,
                     const char *option, const char *value)
{
    ann_clear_error();
    ann_status s = ann_params_set(t, n, params, name, value);
    if (s != ANN_OK) {
        const char *why = ann_last_error();
        return cli_usage_error("invalid --%s '%s'%s%s", option, value, why[0] ? ": " : "", why);
    }
    return 0;
}

int cli_params_apply(const cli_parser *p, const ann_algo_desc *desc, void *params)
{
    size_t n;
    const ann_param_desc *t = kind_table(desc, p->kind, &n);
    for (size_t i = 0; i < p->n_given; i++) {
        const cli_param_opt *po = &p->params[p->given[i].index];
        if (find_param(t, n, po->name) == NULL)
            return not_applicable(p, desc, po->option);
        int rc = set_param(t, n, params, po->name, po->option, p->given[i].value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One parameter of a sweep: its values split at commas. */
typedef struct sweep {
    const cli_param_opt *opt;
    char *buf;      /* copy of the argument, cut at the commas */
    char **values;
    size_t n_values;
} sweep;

int cli_settings_expand(const cli_parser *p, const ann_algo_desc *desc, cli_settings *out)
{
    int rc = 0;
    size_t n_table;
    const ann_param_desc *t = kind_table(desc, CLI_PARAMS_SEARCH, &n_table);
    size_t size = desc->search_params_size ? desc->search_params_size : 1;
    sweep *sw = calloc(p->n_given + 1, sizeof *sw);
    size_t n_sw = 0;
    unsigned char *scratch = calloc(1, size);
    memset(out, 0, sizeof *out);
    if (sw == NULL || scratch == NULL)
        goto nomem;

    /* One sweep per distinct option; a repeated option replaces the
     * earlier value but keeps its place in the order. */
    for (size_t i = 0; i < p->n_given; i++) {
        const cli_param_opt *po = &p->params[p->given[i].index];
        if (find_param(t, n_table, po->name) == NULL) {
            rc = not_applicable(p, desc, po->option);
            goto done;
        }
        sweep *s = NULL;
        for (size_t j = 0; j < n_sw; j++)
            if (sw[j].opt == po)
                s = &sw[j];
        if (s == NULL)
            s = &sw[n_sw++];
        free(s->buf);
        free(s->values);
        memset(s, 0, sizeof *s);
        s->opt = po;
        s->buf = strdup(p->given[i].value);
        s->values = calloc(strlen(p->given[i].value) / 2 + 2, sizeof *s->values);
        if (s->buf == NULL || s->values == NULL)
            goto nomem;
        char *save = NULL;
        const char *v = p->given[i].value;
        size_t len = strlen(v);
        if (len == 0 || v[0] == ',' || v[len - 1] == ',' || strstr(v, ",,") != NULL) {
            rc = cli_usage_error("invalid --%s '%s': empty value in the list", po->option, v);
            goto done;
        }
        for (char *tok = strtok_r(s->buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            /* Check each value now, so the error names it. */
            if (desc->search_params_init != NULL)
                desc->search_params_init(scratch);
            if ((rc = set_param(t, n_table, scratch, po->name, po->option, tok)) != 0)
                goto done;
            s->values[s->n_values++] = tok;
        }
    }

    size_t count = 1;
    for (size_t j = 0; j < n_sw; j++) {
        if (count > 100000 / sw[j].n_values) {
            rc = cli_usage_error("too many parameter combinations (more than 100000)");
            goto done;
        }
        count *= sw[j].n_values;
    }
    out->params = calloc(count, size);
    if (out->params == NULL)
        goto nomem;
    out->count = count;
    out->params_size = size;
    out->table = t;
    out->n_table = n_table;
    for (size_t c = 0; c < count; c++) {
        unsigned char *dst = out->params + c * size;
        if (desc->search_params_init != NULL)
            desc->search_params_init(dst);
        /* Mixed radix, the last sweep varying fastest. */
        size_t rest = c;
        for (size_t j = n_sw; j-- > 0;) {
            size_t k = rest % sw[j].n_values;
            rest /= sw[j].n_values;
            if ((rc = set_param(t, n_table, dst, sw[j].opt->name, sw[j].opt->option, sw[j].values[k])) != 0)
                goto done;
        }
    }
    goto done;

nomem:
    cli_error("out of memory");
    rc = CLI_EXIT_FAILURE;
done:
    if (sw != NULL)
        for (size_t j = 0; j < n_sw; j++) {
            free(sw[j].buf);
            free(sw[j].values);
        }
    free(sw);
    free(scratch);
    if (rc != 0)
        cli_settings_free(out);
    return rc;
}

const void *cli_settings_get(const cli_settings *s, size_t i)
{
    return s->params + i * s->params_size;
}

void cli_settings_free(cli_settings *s)
{
    if (s == NULL)
        return;
    free(s->params);
    memset(s, 0, sizeof *s);
}

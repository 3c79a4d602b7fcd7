/*
 * tools/cli/cli.h - what every annkit tool shares: messages and exit
 * statuses, option parsing (common options, number parsers, algorithm
 * parameters generated from the library's tables), safe output files and
 * progress on a terminal.
 *
 * The tools use only the public library headers (<ann/ann.h>) and this
 * helper library; nothing here prints to stdout except the help and
 * version texts, which are the requested data of -h and -V.
 *
 * Conventions (DESIGN.md, "The command-line contract"):
 *  - every message goes to stderr and starts with the tool's name;
 *  - exit statuses are CLI_EXIT_OK, CLI_EXIT_FAILURE, CLI_EXIT_USAGE and
 *    CLI_EXIT_UNAVAILABLE, nothing else;
 *  - functions that can fail print their own message and return the exit
 *    status to use (0 on success), so that a tool's main() keeps a single
 *    cleanup path: `if ((rc = cli_something(...)) != 0) goto done;`.
 */
#ifndef ANN_TOOLS_CLI_H
#define ANN_TOOLS_CLI_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <ann/ann.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------ */
/* Exit statuses and messages (cli_msg.c)                              */
/* ------------------------------------------------------------------ */

/** The only exit statuses of the tools; each man page lists exactly these. */
enum cli_exit {
    CLI_EXIT_OK = 0,          /**< success */
    CLI_EXIT_FAILURE = 1,     /**< runtime or data error */
    CLI_EXIT_USAGE = 2,       /**< bad command line */
    CLI_EXIT_UNAVAILABLE = 3, /**< requested backend or feature not available */
};

/** Verbosity levels; the default is CLI_V_NORMAL, -q lowers it, each -v raises it. */
enum cli_verbosity {
    CLI_V_QUIET = 0,  /**< errors only */
    CLI_V_NORMAL = 1, /**< errors, warnings, progress on a terminal */
    CLI_V_INFO = 2,   /**< -v: timings and summaries */
    CLI_V_DEBUG = 3,  /**< -vv: library debug messages */
};

/**
 * Start a tool: remember its name for messages (@p name, or the basename
 * of @p argv0 when @p name is NULL), read the umask for output files and
 * install the SIGINT/SIGTERM handler that removes temporary outputs.
 * Call first thing in main().
 */
void cli_init(const char *argv0, const char *name);

/**
 * Internal to tools/cli: read the umask and install the signal handlers
 * (cli_io.c); cli_init() calls it.
 */
void cli_io_init(void);

/** The tool's name as messages print it ("annbuild"). */
const char *cli_progname(void);

/** Set the verbosity (a cli_verbosity value; larger values are clamped). */
void cli_set_verbosity(int level);

/** The current verbosity. */
int cli_verbosity(void);

/** Print "PROG: MESSAGE" to stderr, whatever the verbosity. */
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/** Print "PROG: warning: MESSAGE" to stderr unless -q. */
void cli_warn(const char *fmt, ...) CLI_PRINTF(1, 2);

/** Print "PROG: MESSAGE" to stderr at -v and above. */
void cli_info(const char *fmt, ...) CLI_PRINTF(1, 2);

/** Print "PROG: MESSAGE" to stderr at -vv and above. */
void cli_debug(const char *fmt, ...) CLI_PRINTF(1, 2);

/**
 * Map a library status to an exit status: ANN_OK gives 0;
 * ANN_ERR_BACKEND_UNAVAILABLE and ANN_ERR_UNSUPPORTED give
 * CLI_EXIT_UNAVAILABLE; every other failure gives CLI_EXIT_FAILURE.
 */
int cli_exit_status(ann_status s);

/**
 * Report the failure @p s of a library call that worked on @p operand
 * (a path or option value; NULL when there is none) and return the exit
 * status for it.  The line is "PROG: DETAIL" where DETAIL is
 * ann_last_error(); when that text does not mention the operand it is
 * prefixed with "'OPERAND': ", and when it is empty ann_status_str(s) is
 * used.  Returns 0 (and prints nothing) for ANN_OK.
 */
int cli_report(ann_status s, const char *operand);

/**
 * Print a usage error: "PROG: MESSAGE" and "Try 'PROG --help'." on
 * stderr.  Returns CLI_EXIT_USAGE for the caller to exit with.
 */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* ------------------------------------------------------------------ */
/* Numbers (cli_opt.c)                                                 */
/* ------------------------------------------------------------------ */

/**
 * Parse an integer option value in [@p min, @p max].  Accepted forms:
 * "123", "1e6" (an exact integer), and the suffixes K, M, G, T (powers
 * of 1000: 10K = 10000) and Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB (powers of 1024:
 * 64GiB); a B alone after a decimal suffix is also accepted (4MB).
 * Overflow, trailing junk and values out of range are usage errors
 * naming @p opt.  Returns 0 or CLI_EXIT_USAGE (after printing).
 */
int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out);

/** cli_parse_i64() for an int (range within INT_MIN..INT_MAX). */
int cli_parse_int(const char *opt, const char *text, int min, int max, int *out);

/** cli_parse_i64() for a 64-bit seed: any value in 0..UINT64_MAX. */
int cli_parse_u64(const char *opt, const char *text, uint64_t *out);

/**
 * Parse a row range "A:B" (rows A .. B-1, Python slice style).  A
 * defaults to 0 and B to the end (-1): ":1000", "500:", "10K:20K".
 * Returns 0 or CLI_EXIT_USAGE.
 */
int cli_parse_rows(const char *opt, const char *text, int64_t *begin, int64_t *end);

/* ------------------------------------------------------------------ */
/* Option parsing (cli_opt.c)                                          */
/* ------------------------------------------------------------------ */

/** Option codes of the common options; tools number their own from CLI_OPT_TOOL. */
enum cli_optcode {
    CLI_OPT_DEVICE = 0x100,
    CLI_OPT_THREADS,
    CLI_OPT_SEED,
    CLI_OPT_MAX_HOST = 0x1f0, /**< --max-host-memory (tools that build: cli_mem_*) */
    CLI_OPT_MAX_GPU,          /**< --max-gpu-memory */
    CLI_OPT_TOOL = 0x200,   /**< first code free for a tool's own long options */
    CLI_OPT_PARAM = 0x1000, /**< CLI_OPT_PARAM + i: the i-th generated parameter option */
};

/** Options every tool accepts. */
typedef struct cli_common {
    bool force;        /**< -f, --force: overwrite existing outputs */
    ann_device device; /**< --device auto|cpu|cuda */
    int threads;       /**< --threads N (0 = OpenMP default) */
    uint64_t seed;     /**< --seed N (default that of ann_exec_init) */
} cli_common;

/** Which parameter tables a tool turns into options. */
typedef enum cli_param_kind {
    CLI_PARAMS_NONE = 0,
    CLI_PARAMS_BUILD,  /**< build parameters of every algorithm (annbuild) */
    CLI_PARAMS_SEARCH, /**< search parameters of every algorithm (annsearch) */
} cli_param_kind;

/** One generated parameter option: the standard name and its --spelling. */
typedef struct cli_param_opt {
    const char *name;  /**< "n_lists" (the table's string) */
    char *option;      /**< "n-lists" (allocated) */
} cli_param_opt;

/** A parameter option as given on the command line, in order. */
typedef struct cli_param_arg {
    int index;         /**< into cli_parser.params */
    const char *value; /**< the argument text (points into argv) */
} cli_param_arg;

/**
 * A tool's option parser: its long options plus the common ones and the
 * generated parameter options, and the parameter values collected while
 * parsing.  Set up with cli_parser_init(), run with cli_getopt(), freed
 * with cli_parser_free().
 */
typedef struct cli_parser {
    struct option *longopts; /**< getopt_long table (allocated, zero-terminated) */
    size_t n_longopts;
    char shortopts[64];      /**< ":" + common + the tool's short options */
    cli_param_kind kind;
    ann_algo algos[16];      /**< algorithms whose tables give options */
    size_t n_algos;
    cli_param_opt *params;   /**< generated options (allocated) */
    size_t n_params;
    cli_param_arg *given;    /**< parameter options seen, in order (allocated) */
    size_t n_given;
    cli_common common;       /**< values of the common options */
} cli_parser;

/**
 * Prepare @p p for a tool whose own options are @p shortopts (getopt
 * syntax, without the common "hVqvf") and @p longopts (terminated by a
 * zeroed entry; codes from CLI_OPT_TOOL or short-option characters), and
 * whose parameter options come from the tables of @p kind of the
 * algorithms @p algos (@p n_algos of them, at most 16; NULL: every
 * algorithm).  Algorithms the library does not describe are skipped.
 * Returns 0 or CLI_EXIT_FAILURE (out of memory, after printing).
 */
int cli_parser_init(cli_parser *p, const char *shortopts, const struct option *longopts,
                    cli_param_kind kind, const ann_algo *algos, size_t n_algos);

/** Free what cli_parser_init() allocated (a zeroed parser is fine). */
void cli_parser_free(cli_parser *p);

/** What cli_getopt() returns besides option codes. */
enum cli_getopt_result {
    CLI_GETOPT_END = -1,   /**< no more options: operands start at optind */
    CLI_GETOPT_ERROR = -2, /**< usage error already printed: exit with CLI_EXIT_USAGE */
    CLI_GETOPT_HELP = -3,  /**< -h/--help: print the usage to stdout and exit 0 */
    CLI_GETOPT_VERSION = -4, /**< -V/--version: cli_print_version() and exit 0 */
};

/**
 * Next option of the tool's own: getopt_long() over the combined table,
 * with the common options (-q, -v, -f, --device, --threads, --seed) and
 * the parameter options handled inside.  Returns the option code (optarg
 * holds its argument), or a cli_getopt_result.  Unknown options and
 * missing arguments print a usage error and return CLI_GETOPT_ERROR.
 */
int cli_getopt(cli_parser *p, int argc, char *const argv[]);

/** Print the common options' help lines (for a tool's --help). */
void cli_help_common(FILE *out);

/**
 * OpenMP threads waiting at a barrier spin by default (libgomp), which on a
 * shared machine burns the CPU share the working threads need (an
 * NN-Descent graph of Fashion-MNIST took 13-19 s instead of 7-11 s with one
 * of two cores busy elsewhere).  Unless the user chose a policy
 * (OMP_WAIT_POLICY, GOMP_SPINCOUNT), the build tools run with passive
 * waiting: libgomp reads the policy only at start, so this sets it and
 * executes the tool once more (only when /proc/self/exe is the tool @p name
 * itself, not e.g. valgrind).  If that fails it returns and the tool carries
 * on with the default policy.  Call first thing in main().
 */
void cli_openmp_passive(char **argv, const char *name);

/* ------------------------- memory limits ----------------------------- */

/** The long options of the memory limits, to put in a tool's option table. */
#define CLI_MEM_LONGOPTS                                                     \
    {"max-host-memory", required_argument, NULL, CLI_OPT_MAX_HOST},         \
    {"max-gpu-memory", required_argument, NULL, CLI_OPT_MAX_GPU}

/** --max-host-memory / --max-gpu-memory in bytes (0: the defaults of ann_mem_check_build). */
typedef struct cli_mem_limits {
    int64_t max_host;
    int64_t max_gpu;
} cli_mem_limits;

/**
 * Parse option @p c with argument @p arg into @p l: 0 when taken, an exit
 * status (2) for a bad value, -1 when @p c is not a memory option.
 */
int cli_mem_option(int c, const char *arg, cli_mem_limits *l);

/** The --help lines of the memory limits. */
void cli_mem_help(FILE *out);

/**
 * Before any work: probe @p dataset (rows A:B of it) and check the memory
 * model of building @p algo with @p params (ann_mem_check_build).  0 when
 * it fits or the dataset cannot be probed (reading it will then report
 * why), else exit status 1 after printing the model's message.
 */
int cli_mem_check(const cli_mem_limits *l, const char *dataset, ann_vformat format, int64_t row_begin,
                  int64_t row_end, ann_algo algo, const void *params, ann_device device);

/**
 * Print the generated parameter options of @p p: one header per
 * algorithm, then each option with its value form, range, default (from
 * the params init function) and help line.  CLI_PARAMS_SEARCH notes that
 * values may be lists.
 */
void cli_help_params(FILE *out, const cli_parser *p);

/**
 * Apply the parameter options given on the command line to @p params, a
 * params struct of @p desc (build or search, as @p p's kind says),
 * already initialised.  Each value goes through ann_params_set().  An
 * option that @p desc's table does not have, or a value it rejects, is
 * a usage error.  Returns 0 or CLI_EXIT_USAGE.
 */
int cli_params_apply(const cli_parser *p, const ann_algo_desc *desc, void *params);

/**
 * The search settings of a tool with list-valued parameters: every
 * combination (cartesian product, the first option given varying
 * slowest) of the comma-separated values given for the parameter
 * options, applied to defaults from desc->search_params_init.
 */
typedef struct cli_settings {
    size_t count;            /**< number of settings (at least 1) */
    size_t params_size;      /**< bytes of one params struct */
    unsigned char *params;   /**< count params structs, back to back (allocated) */
    const ann_param_desc *table; /**< the search table of the algorithm */
    size_t n_table;
} cli_settings;

/**
 * Expand the parameter options of @p p (kind CLI_PARAMS_SEARCH) for
 * algorithm @p desc into @p out.  Usage errors as cli_params_apply().
 * Returns 0, CLI_EXIT_USAGE or CLI_EXIT_FAILURE (out of memory).
 */
int cli_settings_expand(const cli_parser *p, const ann_algo_desc *desc, cli_settings *out);

/** Setting @p i (a pointer to a params struct inside @p s). */
const void *cli_settings_get(const cli_settings *s, size_t i);

/** Free the settings (a zeroed struct is fine). */
void cli_settings_free(cli_settings *s);

/* ------------------------------------------------------------------ */
/* Version, execution settings, progress (cli_exec.c)                  */
/* ------------------------------------------------------------------ */

/**
 * Print the -V text to @p out: the tool and its version, the library
 * version, and the backends compiled in and found (this loads the CUDA
 * plugin when there is one, see ann_backend_probe()).
 */
void cli_print_version(FILE *out);

/**
 * Fill @p ex from the common options: device, threads, seed, the
 * interrupt flag raised by SIGINT/SIGTERM, the library's log messages
 * (to stderr at -v/-vv) and progress on stderr when it is a terminal.
 * When --device cuda was asked for, checks now that CUDA can run.
 * Returns 0 or CLI_EXIT_UNAVAILABLE (after printing).
 */
int cli_exec_init(ann_exec *ex, const cli_common *co);

/** End a progress line, if one is showing (call before printing results). */
void cli_progress_end(void);

/** Seconds on a monotonic clock. */
double cli_now(void);

/** Format @p bytes as "512 B", "1.3 KiB", "4.0 GiB" into @p buf. */
const char *cli_format_bytes(uint64_t bytes, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Files and safe output (cli_io.c)                                    */
/* ------------------------------------------------------------------ */

/** True when @p f writes text (so "-" and terminals are fine). */
bool cli_format_is_text(ann_vformat f);

/**
 * The output format of @p path: @p forced when it is not ANN_VFMT_AUTO,
 * else from the extension alone (never from the content of an existing
 * file).  @p dtype receives the one element type the format can hold
 * (fvecs f32, ivecs i32, bvecs u8, .fbin f32, .ibin i32, .u8bin u8,
 * .i8bin i8, .f16bin f16), or -1 when it holds any.  "-" is text.
 * Returns 0 or CLI_EXIT_USAGE when the extension says nothing.
 */
int cli_output_format(const char *path, ann_vformat forced, ann_vformat *fmt, int *dtype);

/** Options of cli_output_open(). */
typedef struct cli_output_opts {
    bool force;          /**< -f: an existing file may be replaced */
    bool binary;         /**< the format is binary: "-" and terminals are refused */
    bool keep_existing;  /**< the temporary starts as a copy of the existing file (HDF5 append); implies the caller checked overwriting */
} cli_output_opts;

/**
 * An output file in the making.  A regular file is written to a
 * temporary ".NAME.tmp.XXXXXX.EXT" in the same directory (EXT keeps the
 * extension that tells the format), registered with the signal handler,
 * and renamed over NAME by cli_output_commit().  "-" is stdout; an
 * existing device or FIFO (/dev/null) is written in place.
 */
typedef struct cli_output {
    char path[PATH_MAX]; /**< the final path as given */
    char tmp[PATH_MAX];  /**< the temporary; "" when written in place */
    int slot;            /**< signal-handler registration, -1 for none */
    bool open;           /**< between a successful open and commit/discard */
} cli_output;

/**
 * Check and start the output @p path: refuse an existing file without
 * opts->force (exit 1, the message names the file and suggests -f),
 * refuse binary output to stdout or a terminal (exit 2), create the
 * temporary (exit 1 when the directory is not writable).
 * Returns 0 or an exit status (after printing).
 */
int cli_output_open(cli_output *o, const char *path, const cli_output_opts *opts);

/** The path a writer should write to: the temporary, "-", or the path itself. */
const char *cli_output_target(const cli_output *o);

/**
 * Finish @p o: flush the temporary to disk and rename it over the final
 * path.  Returns 0 or CLI_EXIT_FAILURE (the temporary is removed).
 */
int cli_output_commit(cli_output *o);

/** Abandon @p o: remove the temporary.  Safe on a zeroed or finished output. */
void cli_output_discard(cli_output *o);

/** The flag SIGINT/SIGTERM raise (given to ann_exec.interrupt). */
volatile int *cli_interrupt_flag(void);

/**
 * True when the file @p path (no ":NAME") exists as a regular file.
 */
bool cli_file_exists(const char *path);

/**
 * Split an operand "PATH[:NAME]" (ann_spec_split) into @p path and
 * @p name (each PATH_MAX bytes).  Returns 0 or CLI_EXIT_USAGE.
 */
int cli_split_spec(const char *spec, char *path, char *name);

/**
 * Convert @p m in place to dtype @p to when that loses nothing (every
 * value survives the round trip), else fail.  @p what names the output
 * for the message.  Returns 0 or CLI_EXIT_FAILURE (lossy: the message
 * names the row and suggests annconvert --dtype: a data error,
 * CLI_EXIT_FAILURE) or CLI_EXIT_FAILURE for a library failure.
 */
int cli_convert_lossless(ann_matrix *m, ann_dtype to, const char *what);

#endif

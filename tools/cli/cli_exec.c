/*
 * cli_exec.c - the execution settings every tool hands the library
 * (device, threads, seed, interrupt flag, log and progress callbacks),
 * the -V text, clocks and byte counts for messages.
 *
 * Progress is drawn on one stderr line, only when stderr is a terminal
 * and not with -q: "annbuild: kmeans 12/20 (3.4 s)".  Logs and pipes stay
 * free of carriage returns.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *cli_format_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

void cli_print_version(FILE *out)
{
    ann_backend_report r;
    memset(&r, 0, sizeof r);
    ann_backend_probe(true, &r);
    fprintf(out, "%s (annkit) %s\n", cli_progname(), ann_version());
    fprintf(out, "library: libannkit %s\n", ann_version());
    fprintf(out, "backends:\n");
    fprintf(out, "  cpu: available%s%s\n", r.cpu_detail[0] ? "; " : "", r.cpu_detail);
    if (!r.cuda_compiled)
        fprintf(out, "  cuda: not compiled in\n");
    else if (!r.cuda_loaded)
        fprintf(out, "  cuda: compiled in, not usable%s%s\n", r.cuda_detail[0] ? ": " : "",
                r.cuda_detail);
    else
        fprintf(out, "  cuda: %d device%s%s%s\n", r.cuda_devices, r.cuda_devices == 1 ? "" : "s",
                r.cuda_detail[0] ? "; " : "", r.cuda_detail);
}

/* ------------------------------------------------------------------ */
/* Progress                                                            */
/* ------------------------------------------------------------------ */

static struct {
    bool showing;      /* a progress line is on the terminal */
    char phase[32];
    double phase_start;
    double last_draw;
} g_progress;

void cli_progress_end(void)
{
    if (g_progress.showing) {
        fputs("\n", stderr);
        g_progress.showing = false;
    }
}

static void on_progress(void *user, const char *phase, int64_t done, int64_t total)
{
    (void)user;
    double now = cli_now();
    if (phase == NULL)
        phase = "";
    if (strncmp(g_progress.phase, phase, sizeof g_progress.phase - 1) != 0) {
        cli_progress_end();
        snprintf(g_progress.phase, sizeof g_progress.phase, "%s", phase);
        g_progress.phase_start = now;
        g_progress.last_draw = 0;
    }
    bool finished = total > 0 && done >= total;
    if (!finished && now - g_progress.last_draw < 0.2)
        return;
    g_progress.last_draw = now;
    if (total > 0)
        fprintf(stderr, "\r%s: %s %lld/%lld (%.1f s)\033[K", cli_progname(), phase, (long long)done,
                (long long)total, now - g_progress.phase_start);
    else
        fprintf(stderr, "\r%s: %s %lld (%.1f s)\033[K", cli_progname(), phase, (long long)done,
                now - g_progress.phase_start);
    g_progress.showing = true;
    if (finished)
        cli_progress_end();
    fflush(stderr);
}

static void on_log(void *user, int level, const char *msg)
{
    (void)user;
    if (level <= 1)
        cli_info("%s", msg);
    else
        cli_debug("%s", msg);
}

int cli_exec_init(ann_exec *ex, const cli_common *co)
{
    ann_exec_init(ex);
    ex->device = co->device;
    ex->n_threads = co->threads;
    ex->seed = co->seed;
    ex->interrupt = cli_interrupt_flag();
    ex->log = on_log;
    ex->log_user = NULL;
    if (cli_verbosity() >= CLI_V_NORMAL && isatty(STDERR_FILENO)) {
        ex->progress = on_progress;
        ex->progress_user = NULL;
    }
#ifdef _OPENMP
    /* Also for library calls that take no ann_exec (conversions, recall). */
    if (co->threads > 0)
        omp_set_num_threads(co->threads);
#endif
    if (co->device == ANN_DEVICE_CUDA) {
        /* Fail before reading data or building: --device cuda that
         * cannot run is an error, never a silent fallback. */
        ann_device got;
        ann_clear_error();
        ann_status s = ann_backend_resolve(ANN_DEVICE_CUDA, &got);
        if (s != ANN_OK) {
            const char *why = ann_last_error();
            if (why[0] == '\0')
                why = ann_status_str(s);
            if (strstr(why, "--device") != NULL)
                cli_error("%s", why);
            else
                cli_error("--device cuda: %s", why);
            return cli_exit_status(s) == CLI_EXIT_FAILURE ? CLI_EXIT_UNAVAILABLE : cli_exit_status(s);
        }
    }
    return 0;
}

void cli_openmp_passive(char **argv, const char *name)
{
    char exe[PATH_MAX];
    if (getenv("OMP_WAIT_POLICY") != NULL || getenv("GOMP_SPINCOUNT") != NULL)
        return;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    const char *base = strrchr(exe, '/');
    if (strcmp(base ? base + 1 : exe, name) != 0)
        return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0)
        return;
    execv(exe, argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed: carry on with the default policy */
}

/*
 * cli_msg.c - the tool's name, messages on stderr filtered by one
 * verbosity level, and the mapping from library statuses to the four
 * exit statuses (libarchive's lafe_err and zstd's DISPLAYLEVEL, reduced
 * to what the annkit contract needs).
 */
#include "cli.h"

#include <stdarg.h>
#include <string.h>

static char g_progname[64] = "annkit";
static int g_verbosity = CLI_V_NORMAL;

void cli_init(const char *argv0, const char *name)
{
    const char *base = name;
    if (base == NULL && argv0 != NULL) {
        const char *slash = strrchr(argv0, '/');
        base = slash ? slash + 1 : argv0;
    }
    if (base != NULL && base[0] != '\0')
        snprintf(g_progname, sizeof g_progname, "%s", base);
    cli_io_init();
}

const char *cli_progname(void)
{
    return g_progname;
}

void cli_set_verbosity(int level)
{
    if (level < CLI_V_QUIET)
        level = CLI_V_QUIET;
    if (level > CLI_V_DEBUG)
        level = CLI_V_DEBUG;
    g_verbosity = level;
}

int cli_verbosity(void)
{
    return g_verbosity;
}

/* One message line: "PROG: [prefix]text\n", written with a single fprintf
 * of a preformatted buffer so that lines from OpenMP threads do not mix. */
static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    cli_progress_end();
    fprintf(stderr, "%s: %s%s\n", g_progname, prefix, text);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    if (g_verbosity < CLI_V_NORMAL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

void cli_info(const char *fmt, ...)
{
    if (g_verbosity < CLI_V_INFO)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_debug(const char *fmt, ...)
{
    if (g_verbosity < CLI_V_DEBUG)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

int cli_exit_status(ann_status s)
{
    switch (s) {
    case ANN_OK:
        return CLI_EXIT_OK;
    case ANN_ERR_BACKEND_UNAVAILABLE:
    case ANN_ERR_UNSUPPORTED:
        return CLI_EXIT_UNAVAILABLE;
    default:
        return CLI_EXIT_FAILURE;
    }
}

int cli_report(ann_status s, const char *operand)
{
    if (s == ANN_OK)
        return CLI_EXIT_OK;
    const char *detail = ann_last_error();
    if (detail == NULL || detail[0] == '\0')
        detail = ann_status_str(s);
    /* The library's text normally quotes the file; add the operand when
     * it does not, so that every message names what failed. */
    if (operand != NULL && operand[0] != '\0' && strstr(detail, operand) == NULL)
        cli_error("'%s': %s", operand, detail);
    else
        cli_error("%s", detail);
    return cli_exit_status(s);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", g_progname);
    return CLI_EXIT_USAGE;
}

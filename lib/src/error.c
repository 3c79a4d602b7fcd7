/*
 * error.c - status strings and the thread-local error detail.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ann/core.h"

static _Thread_local char err_buf[1024];

const char *ann_status_str(ann_status s)
{
    switch (s) {
    case ANN_OK: return "success";
    case ANN_ERR_NOMEM: return "out of memory";
    case ANN_ERR_INVALID_ARG: return "invalid argument";
    case ANN_ERR_IO: return "input/output error";
    case ANN_ERR_FORMAT: return "malformed file";
    case ANN_ERR_VERSION: return "unsupported file version";
    case ANN_ERR_UNSUPPORTED: return "not supported";
    case ANN_ERR_BACKEND_UNAVAILABLE: return "backend unavailable";
    case ANN_ERR_CUDA: return "CUDA error";
    case ANN_ERR_INTERNAL: return "internal error";
    case ANN_ERR_CHECKSUM: return "checksum mismatch";
    case ANN_ERR_INTERRUPTED: return "interrupted";
    case ANN_ERR_MISMATCH: return "inputs do not match";
    }
    return "unknown status";
}

const char *ann_last_error(void)
{
    return err_buf;
}

ann_status ann_set_error(ann_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return s;
}

void ann_clear_error(void)
{
    err_buf[0] = '\0';
}

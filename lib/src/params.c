/*
 * params.c - the parameter tables: range checks, parsing from text and
 * formatting, shared by the library, the CLI and --help.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ann/core.h"

static double get_num(const ann_param_desc *d, const void *p)
{
    const char *f = (const char *)p + d->offset;
    switch (d->type) {
    case ANN_PARAM_INT32:
    case ANN_PARAM_ENUM: return *(const int32_t *)f;
    case ANN_PARAM_INT64: return (double)*(const int64_t *)f;
    case ANN_PARAM_FLOAT: return *(const float *)f;
    case ANN_PARAM_BOOL: return *(const bool *)f;
    }
    return 0;
}

static int n_choices(const char *choices)
{
    int n = 1;
    for (const char *c = choices; *c; c++)
        n += *c == '|';
    return n;
}

/* Copy choice i of "a|b|c" into buf. */
static void choice_at(const char *choices, int i, char *buf, size_t len)
{
    const char *s = choices;
    for (; i > 0 && s; i--) {
        s = strchr(s, '|');
        if (s)
            s++;
    }
    if (!s) {
        snprintf(buf, len, "?");
        return;
    }
    size_t n = strcspn(s, "|");
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

ann_status ann_params_check(const ann_param_desc *table, size_t n, const void *params)
{
    for (size_t i = 0; i < n; i++) {
        const ann_param_desc *d = &table[i];
        double v = get_num(d, params);
        if (d->type == ANN_PARAM_ENUM) {
            if (v < 0 || v >= n_choices(d->choices))
                return ann_set_error(ANN_ERR_INVALID_ARG, "%s: invalid choice %g (expected %s)", d->name,
                                     v, d->choices);
            continue;
        }
        if (d->type == ANN_PARAM_BOOL)
            continue;
        if (!(v >= d->min && v <= d->max)) {
            char buf[32];
            ann_params_format(d, params, buf, sizeof buf);
            return ann_set_error(ANN_ERR_INVALID_ARG, "%s = %s is out of range [%.10g, %.10g]", d->name, buf,
                                 d->min, d->max);
        }
    }
    return ANN_OK;
}

/* Parse a number with an optional K/M/G/T (x1000) or Ki/Mi/Gi (x1024) suffix. */
static int parse_number(const char *s, double *out)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v))
        return -1;
    double mul = 1;
    if (*end) {
        char c = (char)(*end | 0x20);
        bool bin = end[1] == 'i' || end[1] == 'I';
        double base = bin ? 1024.0 : 1000.0;
        switch (c) {
        case 'k': mul = base; break;
        case 'm': mul = base * base; break;
        case 'g': mul = base * base * base; break;
        case 't': mul = base * base * base * base; break;
        default: return -1;
        }
        end += bin ? 2 : 1;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -1;
    }
    *out = v * mul;
    return 0;
}

ann_status ann_params_set(const ann_param_desc *table, size_t n, void *params, const char *name,
                          const char *value)
{
    const ann_param_desc *d = NULL;
    for (size_t i = 0; i < n && !d; i++)
        if (strcmp(table[i].name, name) == 0)
            d = &table[i];
    if (!d)
        return ann_set_error(ANN_ERR_INVALID_ARG, "unknown parameter '%s'", name);
    char *f = (char *)params + d->offset;
    if (d->type == ANN_PARAM_ENUM) {
        int nc = n_choices(d->choices);
        for (int i = 0; i < nc; i++) {
            char buf[64];
            choice_at(d->choices, i, buf, sizeof buf);
            if (strcasecmp(buf, value) == 0) {
                *(int32_t *)f = i;
                return ANN_OK;
            }
        }
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: invalid value '%s' (expected %s)", name, value,
                             d->choices);
    }
    if (d->type == ANN_PARAM_BOOL) {
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes"))
            *(bool *)f = true;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no"))
            *(bool *)f = false;
        else
            return ann_set_error(ANN_ERR_INVALID_ARG, "%s: invalid value '%s' (expected true or false)",
                                 name, value);
        return ANN_OK;
    }
    double v;
    if (parse_number(value, &v) != 0)
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: invalid number '%s'", name, value);
    if (d->type != ANN_PARAM_FLOAT && v != floor(v))
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s: '%s' is not an integer", name, value);
    if (!(v >= d->min && v <= d->max))
        return ann_set_error(ANN_ERR_INVALID_ARG, "%s = %s is out of range [%.10g, %.10g]", name, value, d->min,
                             d->max);
    switch (d->type) {
    case ANN_PARAM_INT32: *(int32_t *)f = (int32_t)v; break;
    case ANN_PARAM_INT64: *(int64_t *)f = (int64_t)v; break;
    case ANN_PARAM_FLOAT: *(float *)f = (float)v; break;
    default: break;
    }
    return ANN_OK;
}

void ann_params_format(const ann_param_desc *d, const void *params, char *buf, size_t len)
{
    const char *f = (const char *)params + d->offset;
    switch (d->type) {
    case ANN_PARAM_INT32: snprintf(buf, len, "%d", *(const int32_t *)f); break;
    case ANN_PARAM_INT64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)f); break;
    case ANN_PARAM_FLOAT: snprintf(buf, len, "%g", (double)*(const float *)f); break;
    case ANN_PARAM_BOOL: snprintf(buf, len, "%s", *(const bool *)f ? "true" : "false"); break;
    case ANN_PARAM_ENUM: choice_at(d->choices, *(const int32_t *)f, buf, len); break;
    }
}

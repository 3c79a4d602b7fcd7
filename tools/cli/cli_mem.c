/*
 * cli_mem.c - --max-host-memory / --max-gpu-memory: the memory model of
 * annmem (lib/src/memory.c) checked before a build starts.
 */
#include "cli.h"

int cli_mem_option(int c, const char *arg, cli_mem_limits *l)
{
    if (c == CLI_OPT_MAX_HOST)
        return cli_parse_i64("--max-host-memory", arg, 1, INT64_MAX, &l->max_host);
    if (c == CLI_OPT_MAX_GPU)
        return cli_parse_i64("--max-gpu-memory", arg, 1, INT64_MAX, &l->max_gpu);
    return -1;
}

void cli_mem_help(FILE *out)
{
    fputs("      --max-host-memory BYTES\n"
          "                        refuse before any work when the build's estimated peak\n"
          "                        host memory does not fit (default: the available memory;\n"
          "                        the model is annmem's)\n"
          "      --max-gpu-memory BYTES\n"
          "                        the same for device memory on --device cuda\n",
          out);
}

int cli_mem_check(const cli_mem_limits *l, const char *dataset, ann_vformat format, int64_t row_begin,
                  int64_t row_end, ann_algo algo, const void *params, ann_device device)
{
    ann_vectors_info vi;
    ann_clear_error();
    if (ann_vectors_probe(dataset, format, &vi) != ANN_OK || vi.rows < 1) {
        ann_clear_error(); /* reading the data will say what is wrong */
        return 0;
    }
    int64_t hi = row_end < 0 || row_end > vi.rows ? vi.rows : row_end;
    int64_t lo = row_begin < hi ? row_begin : hi;
    ann_dtype dt = vi.dtype == ANN_DTYPE_F16 || vi.dtype == ANN_DTYPE_I8 || vi.dtype == ANN_DTYPE_U8
                       ? vi.dtype : ANN_DTYPE_F32;
    ann_status s = ann_mem_check_build(algo, params, hi - lo, vi.cols, dt, (uint64_t)l->max_host,
                                       (uint64_t)l->max_gpu, device == ANN_DEVICE_CUDA, NULL);
    if (s != ANN_OK)
        return cli_report(s, NULL);
    ann_clear_error();
    return 0;
}

/*
 * test_headers.c - every public header compiles as C11 on its own and
 * twice (include guards), with no C++ in it (cuVS c/tests/core/headers.c idea).
 */
#include "ann/core.h"
#include "ann/vectors.h"
#include "ann/container.h"
#include "ann/backend.h"
#include "ann/index.h"
#include "ann/brute_force.h"
#include "ann/ivf_flat.h"
#include "ann/recall.h"
#include "ann/graph.h"
#include "ann/memory.h"
#include "ann/ann.h"
#include "ann/core.h"
#include "ann/ann.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    /* something from each header links */
    int bad = 0;
    bad |= strcmp(ann_status_str(ANN_OK), "success") != 0;
    bad |= ann_dtype_size(ANN_DTYPE_F16) != 2;
    bad |= strcmp(ann_metric_name(ANN_METRIC_INNER_PRODUCT), "inner_product") != 0;
    bad |= ann_algo_describe(ANN_ALGO_IVF_FLAT) == NULL;
    ann_read_opts ro;
    ann_read_opts_init(&ro);
    bad |= ro.row_end != -1;
    if (bad) {
        fprintf(stderr, "test_headers: a basic call returned the wrong value\n");
        return 1;
    }
    return 0;
}

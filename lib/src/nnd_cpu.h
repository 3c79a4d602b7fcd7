/*
 * nnd_cpu.h - INTERNAL: NN-Descent on the CPU (nnd_cpu.c).
 */
#ifndef ANN_NND_CPU_H
#define ANN_NND_CPU_H

#include "ann/graph.h"

/**
 * Build an all-neighbours graph of data (n x dim, f32/f16/i8/u8; hamming:
 * contiguous u8/i8) with parameters p (already checked and clamped:
 * 1 <= graph_degree <= intermediate_graph_degree <= n - 1).  Writes
 * n x graph_degree ids and, when out_dist is not NULL, distances in the
 * returned convention.  Threads: ex->n_threads.  Errors: ANN_ERR_NOMEM,
 * ANN_ERR_INTERRUPTED, ANN_ERR_UNSUPPORTED.
 */
ann_status ann_cpu_nn_descent(const ann_nn_descent_params *p, const ann_matrix *data, ann_exec *ex,
                              uint32_t *out_ids, float *out_dist);

#endif

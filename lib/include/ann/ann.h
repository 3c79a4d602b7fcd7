/*
 * ann/ann.h - annkit's public API, one include for all of it.
 *
 *   ann/core.h         status and errors, dtypes, metrics, matrices, ann_exec, parameter tables
 *   ann/vectors.h      vector files (HDF5, fvecs/ivecs/bvecs, bin, npy, idx, text)
 *   ann/container.h    the annkit container of index and graph files
 *   ann/backend.h      CPU and CUDA backends
 *   ann/index.h        index handle: build, extend, search, save, load
 *   ann/brute_force.h  exact search parameters
 *   ann/ivf_flat.h     IVF-Flat parameters
 *   ann/ivf_pq.h       IVF-PQ parameters and the kNN-graph preset
 *   ann/cagra.h        CAGRA graph index: parameters, build from a graph, optimize, cuVS files
 *   ann/recall.h       recall@k (id intersection and the ann-benchmarks distance rule)
 *   ann/graph.h        kNN graphs: NN-Descent, brute force, IVF-PQ, evaluation, graph files
 *   ann/memory.h       memory-footprint model (annmem, checks before builds)
 */
#ifndef ANN_ANN_H_19c0de
#define ANN_ANN_H_19c0de

#include "ann/core.h"
#include "ann/vectors.h"
#include "ann/container.h"
#include "ann/backend.h"
#include "ann/index.h"
#include "ann/brute_force.h"
#include "ann/ivf_flat.h"
#include "ann/ivf_pq.h"
#include "ann/cagra.h"
#include "ann/recall.h"
#include "ann/graph.h"
#include "ann/memory.h"

#endif

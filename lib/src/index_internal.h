/*
 * index_internal.h - INTERNAL access to an index's arrays for other parts
 * of the library (graph builders reuse IVF-Flat as a candidate generator).
 */
#ifndef ANN_INDEX_INTERNAL_H
#define ANN_INDEX_INTERNAL_H

#include "ann/index.h"
#include "backend_ops.h"

/** The IVF-Flat view of @p ix.  Errors: ANN_ERR_INVALID_ARG when ix is not ivf_flat. */
ann_status ann_index_ivf_view(const ann_index *ix, ann_ivf_flat_view *v);

#endif

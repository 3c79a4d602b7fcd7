/*
 * index_internal.h - INTERNAL access to an index's arrays for other parts
 * of the library (graph builders reuse IVF-Flat as a candidate generator;
 * the cuVS CAGRA file reads and writes the row -> id map).
 */
#ifndef ANN_INDEX_INTERNAL_H
#define ANN_INDEX_INTERNAL_H

#include "ann/index.h"
#include "backend_ops.h"

/** The IVF-Flat view of @p ix.  Errors: ANN_ERR_INVALID_ARG when ix is not ivf_flat. */
ann_status ann_index_ivf_view(const ann_index *ix, ann_ivf_flat_view *v);

/**
 * Check a row -> id map of @p n int64 ids: every id >= 0 (-1 marks empty
 * result slots) and no id twice.  Sorts an (id, row) copy: O(n log n)
 * time, 16 n bytes.  Errors (the message names the rows and the id):
 * ANN_ERR_INVALID_ARG (negative or repeated id), ANN_ERR_NOMEM.
 * Single thread.
 */
ann_status ann_ids_check(const int64_t *ids, int64_t n);

/**
 * Give brute_force or cagra index @p ix the row -> id map @p ids (int64
 * x rows, copied; checked by ann_ids_check): a search then returns
 * ids[row] instead of row, filters are over these ids, the map is saved
 * as the `ids` section (formats/container.md 7.2, 7.5) and extend
 * continues after the largest id.  The map is kept even when it is
 * 0..rows-1 (a cuVS file with source indices goes back out with them).
 * NULL removes the map.  Drops nothing else; a loaded brute_force index
 * is copied out of its mapping first.
 * Errors: ANN_ERR_INVALID_ARG (ivf_flat, whose list_ids are its map; bad
 * ids), ANN_ERR_NOMEM.  Not concurrent with other calls on @p ix.
 */
ann_status ann_index_set_ids(ann_index *ix, const int64_t *ids);

/**
 * The row -> id map of brute_force or cagra index @p ix (int64 x rows,
 * owned by the index, valid until it changes), or NULL when a search
 * returns row numbers (and always for ivf_flat).
 */
const int64_t *ann_index_row_ids(const ann_index *ix);

#endif

/*
 * matrix_owner.h - INTERNAL: give an ann_matrix ownership of memory, so
 * that ann_matrix_release() frees or unmaps it (used by formats/ readers).
 */
#ifndef ANN_MATRIX_OWNER_H
#define ANN_MATRIX_OWNER_H

#include <stddef.h>
#include "ann/core.h"

/**
 * @p m takes ownership of @p ptr, a block from malloc/posix_memalign/
 * aligned_alloc; release() frees it.  Errors: ANN_ERR_NOMEM.
 */
ann_status ann_matrix_adopt_heap(ann_matrix *m, void *ptr);

/**
 * @p m takes ownership of the mapping [map_base, map_base + map_len);
 * release() munmaps it.  Errors: ANN_ERR_NOMEM.
 */
ann_status ann_matrix_adopt_mmap(ann_matrix *m, void *map_base, size_t map_len);

/** 64-byte aligned allocation of @p bytes (at least 1), zero-filled; NULL on failure. */
void *ann_aligned_calloc(size_t bytes);

#endif

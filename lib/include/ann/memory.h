/*
 * ann/memory.h - the memory model: how many bytes a build or a search
 * needs, in host and in device memory, and the largest N that fits.
 *
 * One implementation serves annmem(1) (the planner) and annbuild/anngraph
 * (which refuse a build that cannot fit before doing any work).
 *
 * Models (MODEL as spelled by annmem and --algo):
 *  - cagra       seeds/cagra.md, "Memory footprint" and "Search peak memory
 *                usage": dataset_size, graph_size, IVFPQ_build_peak,
 *                IVFPQ_search_peak, NND_device_peak, NND_host_peak, the
 *                iterative builder's D_iter, G_tmp, Q_tile, R_tile, W_iter,
 *                H_iter, iterative_device_peak, iterative_host_peak,
 *                optimize_peak, build_peak of each initial-graph builder,
 *                query_size, result_size, workspace_size, search_memory.
 *  - nn_descent  seeds/nn-descent.md, "Memory footprint": graph_size,
 *                distances_size, index_size, compute_dataset_size,
 *                l2_norms_size, device_workspace_size, device_build_peak,
 *                host_workspace_size (with E_G, E_I, R, M_l2).
 *  - brute_force annkit's own layout (lib/src/index.c, lib/src/bf_cpu.c,
 *                cuda/bf_cuda.cu): data, norms, the search workspace.
 *  - ivf_flat    annkit's own layout (lib/src/index.c, lib/src/kmeans_cpu.c):
 *                packed lists, k-means training copies, the repacking copy.
 *  - ace (hnsw)  seeds/hnsw-ace.md, AceParams.npartitions: the partition
 *                size rule 2 x (N / npartitions) x D x sizeof(T), times an
 *                imbalance of up to 3.
 *  - ivf_pq      annkit's own IVF-PQ kNN-graph build (anngraph --algo
 *                ivf_pq; lib/src/ivf_pq_cpu.c): the index arrays, the
 *                training, codebook, encoding and search phases (which do
 *                not coexist: max()), the output graph.  Its parameters are
 *                resolved by ann_ivf_pq_graph_params_resolve().
 *
 * CPU builds: nn_descent and cagra (builders nn_descent and ivf_pq) also
 * have annkit's CPU terms (lib/src/nnd_cpu.c, lib/src/ivf_pq_cpu.c,
 * lib/src/cagra_build.c, all prefixed cpu_), and their selected host peak
 * is "cpu_build_peak" unless the build runs on CUDA (the field device, or
 * the dataset in device memory), where the docs' host terms apply.
 *
 * Symbols are the docs' own: N rows, D dimension, B bytes per value, G
 * graph degree, I intermediate degree, C IVF-PQ lists, R train-set ratio
 * (CAGRA) or return_distances (NN-Descent), Q batch, K results per query,
 * S_idx bytes per graph id.  Every size is in bytes; the docs' "MB" are
 * MiB (bytes / 1048576).
 *
 * Capacity (seeds/cagra.md and seeds/nn-descent.md, "Scratch and maximum
 * vectors"):
 *     M_usable   = (M_free - M_other) x (1 - H)
 *     peak(N)    = N x B_per_vector + B_fixed        (peak_without_scratch)
 *     N_max      = floor((M_usable - B_fixed) / B_per_vector)
 *     H_measured = (observed_peak - formula_without_scratch) / formula_without_scratch
 * checked for host and device memory separately; the smaller N_max is the
 * answer.  Where the selected peak is not linear in N (a max() of phases,
 * floor(N / R), min(N, 8192), the 2 MiB round-up of H_iter, the k-means
 * training rows of ivf_flat), ann_mem_capacity() solves the full
 * expression: N_max is the largest N such that every n <= N fits.
 *
 * Nothing here allocates more than the structs it fills, prints or exits.
 */
#ifndef ANN_MEMORY_H_4be917
#define ANN_MEMORY_H_4be917

#include "ann/container.h"
#include "ann/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a term lives. */
typedef enum ann_mem_space {
    ANN_MEM_HOST = 0,   /**< host (CPU) memory, pinned or pageable */
    ANN_MEM_DEVICE = 1, /**< GPU memory */
    ANN_MEM_TOTAL = 2,  /**< a sum over both spaces (NN-Descent index_size); in no peak */
} ann_mem_space;

/** Which operation the selected peaks describe. */
typedef enum ann_mem_phase {
    ANN_MEM_PHASE_BUILD = 0,  /**< building the index or graph (the default) */
    ANN_MEM_PHASE_SEARCH = 1, /**< searching a batch of Q queries (cagra, brute_force) */
} ann_mem_phase;

/** CAGRA's initial-graph builder (cagra.md, "Build peak memory usage"). */
typedef enum ann_mem_builder {
    ANN_MEM_BUILD_IVF_PQ = 0,     /**< "ivf_pq": IVF-PQ build + batched IVF-PQ search */
    ANN_MEM_BUILD_NN_DESCENT = 1, /**< "nn_descent" */
    ANN_MEM_BUILD_ITERATIVE = 2,  /**< "iterative" (iterative CAGRA search) */
} ann_mem_builder;

/**
 * The inputs of a model.  Fill with ann_mem_inputs_init(), then set what
 * differs.  Each field names the docs' symbol; fields a model does not use
 * are ignored by it.
 */
typedef struct ann_mem_inputs {
    ann_algo algo;          /**< model: CAGRA, NN_DESCENT, BRUTE_FORCE, IVF_FLAT, HNSW (= ace), IVF_PQ */
    ann_mem_phase phase;    /**< build (default) or search */
    int64_t rows;           /**< N (>= 1) */
    int64_t dim;            /**< D (>= 1) */
    ann_dtype dtype;        /**< element type of the dataset (f32 default) */
    int32_t bytes_per_value;/**< B (B_in for NN-Descent); 0 = ann_dtype_size(dtype) */
    ann_metric metric;      /**< sqeuclidean default; decides norms (M_l2, annkit's norms) */
    bool input_on_host;     /**< the dataset is in host memory during the build and counts
                                 there as input_size (default true: annkit's tools read it
                                 into host memory; brute_force, ivf_flat and ACE always) */
    bool input_on_device;   /**< the dataset is in device memory when the build starts
                                 (cagra's dataset_size*, nn_descent's N x D x B_in term);
                                 default false */
    bool device;            /**< the build or search runs on CUDA: brute_force adds its device
                                 copies; nn_descent and cagra select the docs' (cuVS) host peak
                                 instead of annkit's CPU one (also selected by input_on_device) */
    int32_t n_threads;      /**< annkit's per-thread scratch; 0 = the OpenMP default */
    /* CAGRA, NN-Descent, ACE */
    int64_t graph_degree;              /**< G, default 64 */
    int64_t intermediate_graph_degree; /**< I, default 128 */
    ann_mem_builder build_algo;        /**< CAGRA initial graph, default ivf_pq */
    int64_t n_lists;                   /**< C (CAGRA IVF-PQ) and ivf_flat n_lists, default 1024;
                                            ivf_pq: default 0 = auto (rows / 2000) */
    double train_set_ratio;            /**< R of CAGRA's IVF-PQ, default 10 (N / R training rows) */
    int64_t batch;                     /**< Q, default 1024 */
    int64_t k;                         /**< K, default 10 */
    int32_t idx_bytes;                 /**< S_idx of CAGRA, default 4 (NN-Descent always uses 4) */
    int64_t dim_align;                 /**< D_align; 0 = rows padded to 16 bytes
                                            (round_up(D x B, lcm(16, B)) / B) */
    /* NN-Descent */
    bool return_distances;             /**< R = 1 when true (default true) */
    int32_t dist_comp_bytes;           /**< B_comp: 2 (fp16), 4 (fp32), 0 = auto (default):
                                            4 for l1 or f32 data with D <= 16, else 2 */
    /* ivf_flat, ivf_pq */
    double kmeans_trainset_fraction;   /**< default 0.5; ivf_pq: default 0 = auto */
    int64_t max_train_points_per_cluster; /**< default 256; 0 = no cap */
    bool compress;                     /**< brute_force, ivf_flat: saved with zstd (--compress) */
    /* ACE */
    int64_t npartitions;               /**< 0 (default) = the smallest count that fits
                                            (ann_mem_ace_partitions()); 2 when no budget is known */
    double imbalance;                  /**< largest / average partition, default 3 */
    /* ivf_pq (graph_degree, return_distances, n_lists, kmeans_trainset_fraction above) */
    int32_t pq_dim;                    /**< PQ subspaces, default 0 = auto */
    int32_t pq_bits;                   /**< bits per code, 4..8, default 0 = auto */
    int32_t n_probes;                  /**< default 0 = auto (reported; no memory of its own) */
    double refine_ratio;               /**< candidates / graph_degree, default 2 */
    bool force_random_rotation;        /**< default false */
    int32_t max_train_points_per_pq_code; /**< codebook training rows per code, default 256 */
} ann_mem_inputs;

/** Defaults of every field for model @p algo (rows and dim are 0: set them). */
void ann_mem_inputs_init(ann_mem_inputs *in, ann_algo algo);

/** One named size of a model. */
typedef struct ann_mem_term {
    const char *name;     /**< the docs' symbol in snake_case ("dataset_size", "IVFPQ_build_peak") */
    ann_mem_space space;
    uint64_t bytes;       /**< value at the inputs' N (saturates at UINT64_MAX) */
    double per_vector;    /**< linear form at N: bytes ~= N x per_vector + fixed */
    double fixed;
    const char *formula;  /**< e.g. "N*D*B" */
    const char *source;   /**< doc and section, or the annkit source file */
    bool is_peak;         /**< the selected peak of its space (for the phase and builder) */
} ann_mem_term;

/** A derived count (E_G, n_train, Q_iter, ...), not bytes. */
typedef struct ann_mem_count {
    const char *name;
    double value;
    const char *formula;
} ann_mem_count;

/** The selected peak of one space. */
typedef struct ann_mem_side {
    bool used;            /**< the model has a peak in this space for this phase */
    const char *peak_name;/**< the term that is the peak */
    uint64_t peak;        /**< formula_without_scratch: the peak at N, without headroom */
    double b_per_vector;  /**< B_per_vector of the peak's linear form at N */
    double b_fixed;       /**< B_fixed */
} ann_mem_side;

#define ANN_MEM_MAX_TERMS 64
#define ANN_MEM_MAX_COUNTS 16

/** Every term of a model at one N, and the selected peaks. */
typedef struct ann_mem_estimate {
    ann_mem_inputs in;        /**< the inputs with defaults resolved (B, npartitions ...) */
    double headroom;          /**< the model's default H (0.20 cagra's IVF-PQ build on CUDA and
                                   cagra searches; 0.30 NN-Descent, iterative and ACE; 0.10
                                   annkit's own CPU layouts: brute_force, ivf_flat, ivf_pq and
                                   cagra's IVF-PQ build on the CPU) */
    size_t n_terms;
    ann_mem_term terms[ANN_MEM_MAX_TERMS];
    size_t n_counts;
    ann_mem_count counts[ANN_MEM_MAX_COUNTS];
    ann_mem_side host, device;
} ann_mem_estimate;

/**
 * Evaluate every term of model @p in->algo at N = in->rows, in bytes.  Each
 * term carries its formula and its source (doc and section, or annkit source
 * file); man/annmem.1 lists them all.
 * Errors: ANN_ERR_INVALID_ARG (rows or dim < 1, a degree, ratio, batch, k,
 * bytes per value or imbalance out of range; ivf_pq: parameters that
 * ann_ivf_pq_graph_params_resolve() refuses), ANN_ERR_UNSUPPORTED (a model
 * or phase that is not modelled: ivf_flat, nn_descent, ace and ivf_pq
 * searches; ivf_pq with metric l1 or hamming).
 */
ann_status ann_mem_estimate_compute(const ann_mem_inputs *in, ann_mem_estimate *est);

/** A term of @p est by name, or NULL. */
const ann_mem_term *ann_mem_term_find(const ann_mem_estimate *est, const char *name);

/** The memory one space offers (the capacity variables of the docs). */
typedef struct ann_mem_budget {
    uint64_t free;         /**< M_free; 0 = unknown (no capacity for this space) */
    uint64_t other;        /**< M_other */
    double headroom;       /**< H; negative = H_measured when observed, else the model's default */
    uint64_t observed_peak;/**< observed_peak of a representative run; 0 = none */
    int64_t observed_rows; /**< N of that run; 0 = the inputs' N */
} ann_mem_budget;

/** Fill @p b with "unknown": free 0, other 0, headroom -1, nothing observed. */
void ann_mem_budget_init(ann_mem_budget *b);

/** What one space allows. */
typedef struct ann_mem_capacity {
    bool known;            /**< M_free was given and the model uses this space */
    double h;              /**< H used */
    double h_measured;     /**< H_measured, or NAN without an observed peak */
    uint64_t m_usable;     /**< (M_free - M_other) x (1 - H), 0 when other >= free */
    double b_per_vector;   /**< linear form of the peak at N_max */
    double b_fixed;
    int64_t n_max_linear;  /**< floor((M_usable - B_fixed) / B_per_vector) with that form */
    int64_t n_max;         /**< largest N such that every n <= N fits (0: not even N = 1) */
    bool fits;             /**< the peak at the inputs' N is <= M_usable */
} ann_mem_capacity;

/**
 * Capacity of @p space for model @p in under @p budget (docs, "Scratch and
 * maximum vectors"), all sizes in bytes.  With budget->observed_peak,
 * h_measured is computed against the peak at observed_rows and, when
 * budget->headroom < 0, used as H (clamped at 0).  N_max is searched up to
 * 2^53 by evaluating the model: from the linear form's answer, then by
 * bisection; for ivf_flat and ivf_pq, whose peaks can drop as N grows
 * (fewer k-means training rows where the sampling ratio steps up), the
 * points where they drop (up to 10^6 of them) are checked too.  When the model has
 * no peak in @p space, out->known is false and n_max is -1.
 * Errors: those of ann_mem_estimate_compute(), ANN_ERR_NOMEM.
 */
ann_status ann_mem_capacity_compute(const ann_mem_inputs *in, ann_mem_space space, const ann_mem_budget *budget,
                                    ann_mem_capacity *out);

/**
 * ACE: the smallest npartitions whose partition_size_max fits both
 * @p usable_host and @p usable_device bytes (0 = that space unlimited),
 * i.e. ceil(imbalance x 2 x ceil(N / P) x D x B) <= usable; at most N.
 * Errors: ANN_ERR_INVALID_ARG (no partition count fits, bad inputs).
 */
ann_status ann_mem_ace_partitions(const ann_mem_inputs *in, uint64_t usable_host, uint64_t usable_device,
                                  int64_t *npartitions);

/**
 * Host memory available to this process, in bytes: MemAvailable of
 * /proc/meminfo, lowered to the cgroup's remaining limit (v2 memory.max -
 * memory.current, or v1 memory.limit_in_bytes - memory.usage_in_bytes)
 * when one is set.  0 when it cannot be read.
 */
uint64_t ann_mem_host_available(void);

/**
 * Check, before any work, that the selected build peak of @p in fits:
 * host peak <= max_host_bytes x (1 - H) and, when the model has a device
 * peak and max_device_bytes > 0, device peak <= max_device_bytes x (1 - H),
 * H being the model's default headroom.  max_host_bytes = 0 means
 * ann_mem_host_available() (no host check when that is 0 too);
 * max_device_bytes = 0 means no device check.  @p est (may be NULL)
 * receives the estimate.
 * Errors: ANN_ERR_NOMEM when a peak does not fit, with a message naming the
 * estimate, the limit, the option that sets it and the largest N that fits:
 * "estimated peak host memory 76.5 GiB (ivf_flat build, 10000000 x 1024 f32:
 * build_peak) exceeds 21.6 GiB, the usable part of --max-host-memory 24.0 GiB
 * (headroom 0.10); at most 2822373 rows fit: raise --max-host-memory or
 * build fewer rows" (the default host limit is named "the available host
 * memory ... (MemAvailable; --max-host-memory sets another limit)");
 * errors of ann_mem_estimate_compute().
 */
ann_status ann_mem_check(const ann_mem_inputs *in, uint64_t max_host_bytes, uint64_t max_device_bytes,
                         ann_mem_estimate *est);

/**
 * ann_mem_check() for a build of @p algo with its build params struct
 * (NULL = the defaults): ann_brute_force_params (metric), ann_ivf_flat_params
 * (metric, n_lists, kmeans_trainset_fraction, max_train_points_per_cluster),
 * ann_nn_descent_params of ann/graph.h (metric, graph_degree,
 * intermediate_graph_degree, return_distances, dist_comp_dtype),
 * ann_cagra_params of ann/cagra.h (metric, the degrees clamped as the
 * build clamps them, and the builder: nn_descent and brute_force are
 * modelled as nn_descent, iterative as iterative, ivf_pq and auto as
 * ivf_pq, the smallest, which auto falls back to),
 * ann_ivf_pq_graph_params of ann/ivf_pq.h (every field that changes
 * memory: metric, n_lists, pq_dim, pq_bits, kmeans_trainset_fraction,
 * force_random_rotation, max_train_points_per_pq_code, n_probes,
 * graph_degree, refine_ratio, return_distances); for HNSW
 * @p build_params must be NULL (use ann_mem_check() with filled inputs).  @p rows, @p dim: the dataset's N and D;
 * @p dtype: its element type as the build sees it.  The dataset counts in
 * host memory (the tools read it there); @p on_device: the build runs on
 * CUDA and the dataset is also in device memory.
 * With @p on_device false, nn_descent and cagra select annkit's CPU host
 * peak (cpu_build_peak: lib/src/nnd_cpu.c, lib/src/ivf_pq_cpu.c); with
 * it true, the docs' (cuVS) host terms.
 * Errors: ANN_ERR_NOMEM (does not fit, see ann_mem_check()),
 * ANN_ERR_INVALID_ARG (non-NULL params of a model whose struct is unknown
 * here, bad sizes), ANN_ERR_UNSUPPORTED (no model for @p algo).
 */
ann_status ann_mem_check_build(ann_algo algo, const void *build_params, int64_t rows, int64_t dim, ann_dtype dtype,
                               uint64_t max_host_bytes, uint64_t max_device_bytes, bool on_device,
                               ann_mem_estimate *est);

/** Parse a model name: cagra, nn_descent, brute_force, ivf_flat, ace, hnsw, ivf_pq ('-' may replace '_'). */
ann_status ann_mem_model_parse(const char *name, ann_algo *out);
/** The model's name as annmem prints it ("ace" for HNSW). */
const char *ann_mem_model_name(ann_algo algo);
/** Parse a CAGRA builder: ivf_pq, nn_descent, iterative (or iterative_cagra_search). */
ann_status ann_mem_builder_parse(const char *name, ann_mem_builder *out);
const char *ann_mem_builder_name(ann_mem_builder b);
/** "host", "device", "total". */
const char *ann_mem_space_name(ann_mem_space s);

#ifdef __cplusplus
}
#endif
#endif

/*
 * cagra_cuda.cu - CAGRA search on CUDA; the twin of lib/src/cagra_search.c.
 *
 * Sources: Ootomo et al., "CAGRA: Highly Parallel Graph Construction and
 * Approximate Nearest Neighbor Search for GPUs", ICDE 2024, section V;
 * notes/algorithms.md 7.1-7.7 (parameters, plan, seeds, single-CTA,
 * multi-CTA, multi-kernel, distance post-processing); seeds/cagra.md.
 *
 * Common pieces.
 *  - Device cache (*view->device_cache, cu_cache_get): the vectors in their
 *    own dtype with rows padded to a 16-byte stride (zeros in the padding),
 *    the graph (rows x degree u32) and, for cosine, the view's L2 norms.
 *    A sweep over search parameters uploads nothing but the queries.
 *  - Queries are uploaded per call as f32 (integers as their values, no
 *    1/256 scaling: notes 0.2 allows it and the CPU does the same); for
 *    cosine each is divided by its norm exactly as the CPU does (double
 *    sum in element order, float division), so the ranking keys are the
 *    CPU's: squared L2, -dot, -cos (= -q.x / |x| with the stored |x|), L1.
 *  - A list entry is one u64 with the CPU's encoding: the order-preserving
 *    bits of the float key (high 32), the row (bits 1..31) and the
 *    "parent" flag (bit 0), so an integer comparison orders by (key, id)
 *    and ties break exactly as on the CPU; ~0 is an empty slot.
 *  - Distances: a team of 4, 8, 16 or 32 lanes per candidate; each lane
 *    loads 16-byte vectors of the row (4 f32, 8 f16, 16 i8/u8) strided by
 *    team x 16 bytes and combines them with the query held in shared
 *    memory as float, then a butterfly shuffle sums the team.  team_size
 *    0 = the descriptor rule of notes 7.2 ((128, 8), (256, 16), (512, 32):
 *    the block dim closest to the dimension); 4 runs as 4 (the team loop
 *    is generic here, so cuVS's reason not to instantiate it does not
 *    apply).
 *  - Visited sets: open addressing with linear probing, key u32, empty
 *    ~0, slot (key ^ (key >> bitlen)) & (2^bitlen - 1), an insert into a
 *    full table counts as "already visited" (notes 7.2).
 *  - Seeds (notes 7.3): single-CTA and multi-kernel use the CPU's seeds
 *    (slot i trial j = xorshift64((i + slots x j) ^ rand_xor_mask) mod
 *    rows with slots = itopk + search_width x degree, the same for every
 *    query), computed on the host with the same function; multi-CTA seeds
 *    differ per CTA and query (block_id = cta + n_cta x query with the
 *    query's index in the whole call, num_blocks = n_cta x all queries).
 *  - Plan: ann_cagra_plan_resolve() with the CPU's arguments (itopk
 *    rounded to 32 and raised to k, filtered boost, auto max_iterations
 *    itopk / search_width + log term).  Multi-CTA alone takes base 32 for
 *    the automatic max_iterations (notes 7.2: each CTA expands one parent
 *    per iteration): the same function resolved with itopk 32 and
 *    search_width 1, so user values and min_iterations follow one rule.
 *  - Algorithm (notes 7.2): AUTO = single-CTA when itopk <= 512 and the
 *    queries per launch are at least twice the SM count, else multi-CTA;
 *    a shape the chosen kernel cannot hold (graph degree > 224 for
 *    multi-CTA, shared memory beyond the device's opt-in limit for
 *    single-CTA) falls back to multi-kernel under AUTO and is
 *    ANN_ERR_UNSUPPORTED when asked for explicitly.
 *  - Queries per launch: max_queries (0 = 65535, notes 7.1), lowered so
 *    that the per-query device workspace stays within cu_workspace_budget().
 *
 * SINGLE_CTA (notes 7.4), one block per query, everything in shared
 * memory: the query, the list area R = [itopk list A | second list A' |
 * candidates B of search_width x degree slots rounded up to a power of
 * two], the small visited table when used, parents.  Seeds fill all
 * itopk + search_width x degree slots; one bitonic sort of them gives A.
 * Each iteration: warp 0 flags the first search_width unexpanded entries
 * of A as parents (ballot scan); SMALL mode resets the table every
 * reset_interval iterations and re-inserts A; teams expand the parents'
 * children (hash insert by the team leader, distance only for new ones)
 * into B; B is bitonic-sorted and merged with A (each element's rank by
 * binary search in the other list), keeping the itopk best.  One block
 * sort + merge serves every size: the candidate area is at most
 * search_width x degree entries, the list stays sorted, so no radix
 * select of the whole buffer is needed (and the result is exactly the
 * CPU's "best itopk of list and candidates" by (key, id)); parents that
 * fail the filter then leave A (stable compaction by a block scan).  The
 * loop ends when no unexpanded entry is left or after max_iterations - 1
 * expansions, exactly as the CPU; output = the first k entries of A that
 * pass the filter.  Visited table: SMALL (shared, bitlen from
 * itopk + sw x deg, at most 13) or HASH (one table per query in global
 * memory, bitlen from itopk + sw x deg x max_iterations, from 11, capped
 * at 20), with the bitlen/reset rules of notes 7.2; a filter forces HASH.
 * Both behave as the CPU's exact visited set (SMALL re-evaluates only
 * nodes that can no longer enter the list, because without a filter the
 * list never loses entries), so results equal the CPU's wherever keys
 * are bit-identical (integer data with L2 or inner product) and differ
 * only at float near-ties otherwise.
 *
 * MULTI_CTA (notes 7.5), grid (n_cta, queries), n_cta = max(search_width,
 * itopk / 32): each CTA keeps a 32-entry list plus degree candidate slots
 * (graph_degree <= 224, buffer <= 256) and a small visited table in
 * shared memory that is reset and refilled from the list every
 * iteration; the query's CTAs share a "traversed" table in global memory
 * (bitlen for n_cta x max(32, max_iterations) entries, 11..25): a CTA
 * takes as its one parent per iteration the first unexpanded entry among
 * its first 64 that it can insert there (entries another CTA took are
 * dropped; a parent found beyond position 32 moves into the last empty
 * slot of the top 32), skips children some CTA already expanded, and
 * drops list entries that other CTAs expanded meanwhile; parents pushed
 * out of a CTA's top 32 leave the traversed table (a tombstone: the key
 * with its MSB set), so other CTAs may keep and expand them.  Each CTA
 * writes its top 32 (filter applied); a final kernel per query sorts
 * the n_cta x 32 results, removes duplicates (the same row has the same
 * key in every CTA) and writes the first k.  Results depend on the
 * timing of the CTAs (not deterministic run to run).
 *
 * MULTI_KERNEL (notes 7.6): the single-CTA steps as separate kernels over
 * per-query global buffers (the same block sort + merge, run on global
 * memory, so any itopk works; lists double-buffered, candidates, one visited
 * table per query in global memory, SMALL with resets or HASH as above):
 * init (seeds, sort), then per iteration pickup (parents; reset/restore
 * of a SMALL table; a flag for the host), expand (teams, many blocks per
 * query), merge (sort, merge, filtered-parent removal), until no query
 * found a parent or max_iterations; then output.  Same results as
 * single-CTA.
 *
 * Threading: one host thread per call; concurrent calls on one index are
 * safe (per-thread stream, cache lookup under cu_cache_lock()).
 */
#include <cstring>
#include <new>
#include <vector>

#include "cuda_common.cuh"
#include "topk.cuh"

namespace {

constexpr uint64_t kInvalid = ~0ull;       /* empty list slot */
constexpr uint32_t kEmpty = ~0u;           /* empty hash slot */
constexpr uint32_t kTomb = 0x80000000u;    /* removed key: key | kTomb (keys are rows < 2^31 - 1) */
constexpr unsigned kFull = 0xffffffffu;    /* full-warp mask */
constexpr int kMaxBlock = 1024;
constexpr int kSmallMaxBitlen = 13;        /* SMALL visited table: at most 8192 slots (32 KiB) */
constexpr int kHashMinBitlen = 11;         /* HASH visited table per query */
constexpr int kHashMaxBitlen = 20;
constexpr int kMcItopk = 32;               /* multi-CTA list per CTA */
constexpr int kMcMaxBuffer = 256;          /* multi-CTA list + candidates */
constexpr int kMcVisitedMinBitlen = 8;
constexpr int kMcVisitedMaxBitlen = 14;
constexpr int kMcTravMinBitlen = 11;
constexpr int kMcTravMaxBitlen = 25;
constexpr int kFinalSmemEntries = 4096;    /* multi-CTA final sort in shared memory up to this many */
constexpr int64_t kDefaultMaxQueries = 65535;
constexpr size_t kDefaultSmem = 48 * 1024; /* above this a kernel opts in (cudaFuncSetAttribute) */

/* Distance families (what the team accumulates, how the key is formed). */
enum Fam : int { kFamL2 = 0, kFamDot = 1, kFamCos = 2, kFamL1 = 3 };
/* Returned conventions (notes 7.7 / DESIGN.md). */
enum Out : int { kOutKey = 0, kOutSqrt = 1, kOutNeg = 2, kOutCos = 3 };

/* ------------------------------- cache ------------------------------- */

struct CagraCache {
    CuCacheBase base;
    /* what is cached (a view with other values gets a fresh cache) */
    const void *src;
    const float *src_norms;
    const uint32_t *src_graph;
    int64_t rows, dim, stride;
    int32_t deg;
    ann_dtype dtype;
    ann_metric metric;
    /* device copies */
    void *data;        /* rows x ld elements of dtype, zero padding */
    int64_t ld;        /* elements per stored row: ld x elem size is a multiple of 16 */
    uint32_t *graph;   /* rows x deg */
    float *norms;      /* rows L2 norms (cosine only) */
};

/** Free the device copies and the cache itself (CuCacheBase::destroy; cache_free calls it). */
void cagra_cache_destroy(CuCacheBase *b)
{
    CagraCache *c = reinterpret_cast<CagraCache *>(b);
    cu_free(c->data);
    cu_free(c->graph);
    cu_free(c->norms);
    delete c;
}

/** Whether cache @p c was made from exactly this view (same host arrays and shape). */
bool cagra_cache_matches(const CagraCache *c, const ann_cagra_view *ix)
{
    return c->src == ix->data && c->src_norms == ix->norms && c->src_graph == ix->graph && c->rows == ix->rows &&
           c->dim == ix->dim && c->stride == ix->stride && c->deg == ix->graph_degree && c->dtype == ix->dtype &&
           c->metric == ix->metric;
}

/*
 * Upload the vectors of @p ix (rows padded to a 16-byte stride, zeros in
 * the padding), the graph and, for cosine, the L2 norms (the view's, or
 * computed on the device when it has none) into a new cache.  Synchronous
 * (the host arrays may change after it returns).  Errors: ANN_ERR_NOMEM,
 * ANN_ERR_CUDA (out of device memory among them).
 */
ann_status cagra_cache_build(CuCtx *ctx, const ann_cagra_view *ix, CagraCache **out)
{
    ann_status st = ANN_OK;
    const size_t es = cu_dtype_size(ix->dtype);
    CagraCache *c = new (std::nothrow) CagraCache();
    if (!c)
        return CU_FAIL(ANN_ERR_NOMEM, "out of host memory for the CAGRA device cache");
    c->base.magic = kCuCacheMagic;
    c->base.destroy = cagra_cache_destroy;
    c->src = ix->data;
    c->src_norms = ix->norms;
    c->src_graph = ix->graph;
    c->rows = ix->rows;
    c->dim = ix->dim;
    c->stride = ix->stride;
    c->deg = ix->graph_degree;
    c->dtype = ix->dtype;
    c->metric = ix->metric;
    c->data = nullptr;
    c->graph = nullptr;
    c->norms = nullptr;
    c->ld = cu_round_up(ix->dim * (int64_t)es, 16) / (int64_t)es;
    CU_MALLOC(&c->data, (size_t)ix->rows * (size_t)c->ld * es);
    CU_CHECK(cudaMemsetAsync(c->data, 0, (size_t)ix->rows * (size_t)c->ld * es, ctx->stream));
    CU_CHECK(cudaMemcpy2DAsync(c->data, (size_t)c->ld * es, ix->data, (size_t)ix->stride, (size_t)ix->dim * es,
                               (size_t)ix->rows, cudaMemcpyHostToDevice, ctx->stream));
    CU_MALLOC(&c->graph, (size_t)ix->rows * (size_t)ix->graph_degree * sizeof(uint32_t));
    CU_CHECK(cudaMemcpyAsync(c->graph, ix->graph, (size_t)ix->rows * (size_t)ix->graph_degree * sizeof(uint32_t),
                             cudaMemcpyHostToDevice, ctx->stream));
    if (ix->metric == ANN_METRIC_COSINE) {
        CU_MALLOC(&c->norms, (size_t)ix->rows * sizeof(float));
        if (ix->norms)
            CU_CHECK(cudaMemcpyAsync(c->norms, ix->norms, (size_t)ix->rows * sizeof(float), cudaMemcpyHostToDevice,
                                     ctx->stream));
        else /* the padding is zero, so the padded rows have the same norms */
            ANN_TRY(cu_row_norms(ctx, c->data, ix->dtype, ix->rows, c->ld, true, c->norms));
    }
    /* the host arrays must outlive the copies */
    CU_CHECK(cudaStreamSynchronize(ctx->stream));
    *out = c;
    return ANN_OK;
cleanup:
    (void)cudaStreamSynchronize(ctx->stream);
    cagra_cache_destroy(&c->base);
    return st;
}

/* ------------------------- device primitives ------------------------- */

/** Parameters every search kernel shares (passed by value). */
struct Common {
    const void *data;        /* rows x ld elements, 16-byte rows */
    int64_t ld;              /* elements per stored row */
    int nvec;                /* 16-byte vectors per row */
    int ldq;                 /* floats of the query in shared memory (= ld) */
    int dim;
    int64_t rows;
    const uint32_t *graph;   /* rows x deg */
    int deg;
    const float *norms;      /* cosine: L2 norms; else NULL */
    int fam;                 /* Fam */
    int out_kind;            /* Out */
    float worst;             /* distance of an empty slot */
    const uint32_t *filter;  /* NULL or bitset, 1 = keep */
    int64_t filter_bits;
    const float *q;          /* batch x dim f32 (cosine: unit length) */
    const float *qnorm;      /* batch: query norms (cosine output) */
    int team;                /* lanes per distance: 4, 8, 16 or 32 */
    int sw;                  /* parents per iteration */
    int max_iter, min_iter, nrs;
    int64_t k;
    int64_t *ids;            /* batch x k */
    float *dist;             /* batch x k */
};

/** An entry: key bits (high 32), row (bits 1..31), parent flag (bit 0); the CPU's encoding. */
__device__ __forceinline__ uint64_t make_entry(float key, uint32_t id)
{
    return ((uint64_t)topk::float_order(key) << 32) | ((uint64_t)id << 1);
}

/** Row of an entry (flag stripped). */
__device__ __forceinline__ uint32_t entry_id(uint64_t e) { return (uint32_t)(e >> 1) & 0x7fffffffu; }
/** Ranking key (smaller is better) of an entry. */
__device__ __forceinline__ float entry_key(uint64_t e) { return topk::order_float((uint32_t)(e >> 32)); }

/** Whether row @p i passes the filter (1 = keep; rows beyond the bitset are filtered out). */
__device__ __forceinline__ bool keep_row(const uint32_t *f, int64_t bits, uint32_t i)
{
    return !f || ((int64_t)i < bits && ((__ldg(f + (i >> 5)) >> (i & 31u)) & 1u));
}

/** The returned distance of a key (notes 7.7; the CPU's conversion). */
__device__ __forceinline__ float out_distance(int kind, float key, float qn)
{
    switch (kind) {
    case kOutSqrt: return sqrtf(key > 0.0f ? key : 0.0f);
    case kOutNeg: return -key;
    case kOutCos: return qn > 0.0f ? 1.0f + key : 1.0f;
    default: return key;
    }
}

/** xorshift64* (notes 7.3), the device twin of ann_cagra_xorshift64(). */
__device__ __forceinline__ uint64_t xorshift64(uint64_t u)
{
    u ^= u >> 12;
    u ^= u << 25;
    u ^= u >> 27;
    return u * 0x2545F4914F6CDD1DULL;
}

/** First probe slot of @p key in a table of 2^bitlen slots (notes 7.2). */
__device__ __forceinline__ uint32_t hash_slot(uint32_t key, int bitlen)
{
    return (key ^ (key >> bitlen)) & ((1u << bitlen) - 1u);
}

/**
 * Insert @p key (< 2^31 - 1) into the open-addressing table @p t of
 * 2^bitlen slots (shared or global memory): 1 when it was not there (or
 * only as a tombstone, which is revived), 0 when it was or the table is
 * full (notes 7.2: a failed insert counts as visited).  A key occupies at
 * most one slot: its first insert takes the first empty slot of its probe
 * sequence, slots never become empty again, and a re-insert stops at its
 * tombstone before any empty slot.
 */
__device__ int hash_insert(uint32_t *t, int bitlen, uint32_t key)
{
    const uint32_t mask = (1u << bitlen) - 1u;
    uint32_t s = hash_slot(key, bitlen);
    for (uint32_t n = 0; n <= mask;) {
        const uint32_t old = atomicCAS(t + s, kEmpty, key);
        if (old == kEmpty)
            return 1;
        if (old == key)
            return 0;
        if (old == (key | kTomb)) {
            if (atomicCAS(t + s, old, key) == old)
                return 1;
            continue; /* changed meanwhile: look at the slot again */
        }
        s = (s + 1u) & mask;
        ++n;
    }
    return 0;
}

/** Whether @p key is live in the global table @p t (reads through L2: other blocks write concurrently). */
__device__ bool hash_contains_global(const uint32_t *t, int bitlen, uint32_t key)
{
    const uint32_t mask = (1u << bitlen) - 1u;
    uint32_t s = hash_slot(key, bitlen);
    for (uint32_t n = 0; n <= mask; ++n) {
        const uint32_t v = __ldcg(t + s);
        if (v == key)
            return true;
        if (v == kEmpty || v == (key | kTomb))
            return false;
        s = (s + 1u) & mask;
    }
    return false;
}

/** Turn @p key in the global table @p t into a tombstone (MSB set; notes 7.2 "supports remove"). */
__device__ void hash_remove_global(uint32_t *t, int bitlen, uint32_t key)
{
    const uint32_t mask = (1u << bitlen) - 1u;
    uint32_t s = hash_slot(key, bitlen);
    for (uint32_t n = 0; n <= mask; ++n) {
        const uint32_t v = __ldcg(t + s);
        if (v == key) {
            atomicCAS(t + s, key, key | kTomb);
            return;
        }
        if (v == kEmpty || v == (key | kTomb))
            return;
        s = (s + 1u) & mask;
    }
}

/** One 16-byte vector of a row as floats (element values, no scaling). */
template <typename T> struct Unpack;
template <> struct Unpack<float> {
    static constexpr int V = 4;
    __device__ static __forceinline__ void run(const uint4 &r, float *x)
    {
        x[0] = __uint_as_float(r.x);
        x[1] = __uint_as_float(r.y);
        x[2] = __uint_as_float(r.z);
        x[3] = __uint_as_float(r.w);
    }
};
template <> struct Unpack<__half> {
    static constexpr int V = 8;
    __device__ static __forceinline__ void run(const uint4 &r, float *x)
    {
        const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            x[2 * i] = __half2float(__ushort_as_half((unsigned short)(w[i] & 0xffffu)));
            x[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(w[i] >> 16)));
        }
    }
};
template <> struct Unpack<uint8_t> {
    static constexpr int V = 16;
    __device__ static __forceinline__ void run(const uint4 &r, float *x)
    {
        const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int b = 0; b < 4; ++b)
                x[4 * i + b] = (float)((w[i] >> (8 * b)) & 0xffu);
    }
};
template <> struct Unpack<int8_t> {
    static constexpr int V = 16;
    __device__ static __forceinline__ void run(const uint4 &r, float *x)
    {
        const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int b = 0; b < 4; ++b)
                x[4 * i + b] = (float)((int32_t)(w[i] << (24 - 8 * b)) >> 24);
    }
};

/**
 * The ranking key (smaller is better) of row @p id for the query @p sq
 * (shared memory, c.ldq floats, zero padding), computed by a team of
 * c.team lanes; @p lt is the lane's rank in its team.  Every lane of the
 * warp must call it (the team sum is a full-warp shuffle); lanes of
 * teams with @p active false load nothing and get a meaningless value.
 */
template <typename T>
__device__ __forceinline__ float team_key(const Common &c, const float *sq, uint32_t id, bool active, int lt)
{
    constexpr int V = Unpack<T>::V;
    float acc = 0.0f;
    if (active) {
        const uint4 *row = reinterpret_cast<const uint4 *>(static_cast<const T *>(c.data) + (int64_t)id * c.ld);
#pragma unroll 4 /* several 16-byte loads in flight (the trip count is only known at run time) */
        for (int v = lt; v < c.nvec; v += c.team) {
            float x[V];
            Unpack<T>::run(__ldg(row + v), x);
            const float4 *q4 = reinterpret_cast<const float4 *>(sq + v * V);
#pragma unroll
            for (int u = 0; u < V / 4; ++u) {
                const float4 qq = q4[u];
                const float qa[4] = {qq.x, qq.y, qq.z, qq.w};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float xv = x[4 * u + e];
                    if (c.fam == kFamL2) {
                        const float t = qa[e] - xv;
                        acc = fmaf(t, t, acc);
                    } else if (c.fam == kFamL1) {
                        acc += fabsf(qa[e] - xv);
                    } else {
                        acc = fmaf(qa[e], xv, acc);
                    }
                }
            }
        }
    }
    for (int o = c.team >> 1; o > 0; o >>= 1)
        acc += __shfl_xor_sync(kFull, acc, o);
    if (!active)
        return 0.0f;
    if (c.fam == kFamDot)
        return -acc;
    if (c.fam == kFamCos) {
        const float xn = __ldg(c.norms + id);
        return xn > 0.0f ? -acc / xn : 0.0f;
    }
    return acc;
}

/** Copy query row @p q (dim floats) into @p sq, zero-padded to ldq (all threads; no barrier). */
__device__ __forceinline__ void load_query(float *sq, const float *q, int dim, int ldq)
{
    for (int i = threadIdx.x; i < ldq; i += blockDim.x)
        sq[i] = i < dim ? q[i] : 0.0f;
}

/**
 * Exclusive prefix sum of @p v over the block (every thread calls it;
 * blockDim.x a multiple of 32); *@p total = the sum.  @p s_warp holds 32
 * words of shared memory.  Starts with a barrier (so s_warp is free).
 */
__device__ unsigned block_exclusive_scan(unsigned v, unsigned *s_warp, unsigned *total)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    unsigned incl = v;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned t = __shfl_up_sync(kFull, incl, o);
        if (lane >= o)
            incl += t;
    }
    __syncthreads();
    if (lane == 31)
        s_warp[warp] = incl;
    __syncthreads();
    unsigned before = 0, all = 0;
    for (int w = 0; w < nw; ++w) {
        const unsigned s = s_warp[w];
        if (w < warp)
            before += s;
        all += s;
    }
    *total = all;
    return before + incl - v;
}

/**
 * Stable compaction: dst[0 ..) = the entries of src[0 .. n) for which
 * drop() is false, in order, then kInvalid up to n.  Every thread calls
 * it; src and dst must not overlap; ends with a barrier.
 */
template <class Drop>
__device__ void block_compact(const uint64_t *src, int n, uint64_t *dst, const Drop &drop, unsigned *s_warp)
{
    const int per = (n + (int)blockDim.x - 1) / (int)blockDim.x;
    const int b = (int)threadIdx.x * per;
    const int e = b + per < n ? b + per : n;
    unsigned cnt = 0;
    for (int i = b; i < e; ++i)
        cnt += drop(src[i]) ? 0u : 1u;
    unsigned total = 0;
    unsigned pos = block_exclusive_scan(cnt, s_warp, &total);
    for (int i = b; i < e; ++i) {
        const uint64_t x = src[i];
        if (!drop(x))
            dst[pos++] = x;
    }
    for (int i = (int)total + threadIdx.x; i < n; i += blockDim.x)
        dst[i] = kInvalid;
    __syncthreads();
}

/**
 * out[0 .. na) = the na smallest of the ascending lists a[0 .. na) and
 * b[0 .. nb): each element's place is its index plus the number of
 * elements of the other list before it (b's ties go after a's, so places
 * are distinct even among repeated kInvalid).  All threads call it; the
 * caller puts barriers before (lists complete) and after.
 */
__device__ void merge_best(const uint64_t *a, int na, const uint64_t *b, int nb, uint64_t *out)
{
    for (int i = threadIdx.x; i < na; i += blockDim.x) {
        const uint64_t x = a[i];
        int lo = 0, hi = nb;
        while (lo < hi) {
            const int m = (lo + hi) >> 1;
            if (b[m] < x)
                lo = m + 1;
            else
                hi = m;
        }
        if (i + lo < na)
            out[i + lo] = x;
    }
    for (int j = threadIdx.x; j < nb; j += blockDim.x) {
        const uint64_t x = b[j];
        if (x == kInvalid) /* its place is j + na: never kept */
            continue;
        int lo = 0, hi = na;
        while (lo < hi) {
            const int m = (lo + hi) >> 1;
            if (a[m] <= x)
                lo = m + 1;
            else
                hi = m;
        }
        if (j + lo < na)
            out[j + lo] = x;
    }
}

/**
 * Warp 0 only: flag the first (up to) @p sw unexpanded valid entries of
 * the sorted list @p A (n entries) as parents and write their rows to
 * par[]; returns how many (the same value in every lane).
 */
__device__ int pick_parents(uint64_t *A, int n, int sw, uint32_t *par)
{
    const int lane = threadIdx.x & 31;
    int np = 0;
    for (int base = 0; base < n && np < sw; base += 32) {
        const int i = base + lane;
        const uint64_t e = i < n ? A[i] : kInvalid;
        const bool cand = e != kInvalid && !(e & 1ull);
        const unsigned bal = __ballot_sync(kFull, cand);
        const int rank = __popc(bal & ((1u << lane) - 1u));
        if (cand && np + rank < sw) {
            A[i] = e | 1ull;
            par[np + rank] = entry_id(e);
        }
        const int got = __popc(bal);
        np = np + got < sw ? np + got : sw;
    }
    return np;
}

/**
 * Warp 0 only: ids/dist row @p qrow = the first k entries of the sorted
 * list @p A (n entries) that are valid and pass the filter; -1 / worst
 * after them.  @p dedup drops an entry equal to its predecessor.
 */
__device__ void write_results(const Common &c, const uint64_t *A, int n, int64_t qrow, bool dedup)
{
    const int lane = threadIdx.x & 31;
    const float qn = c.qnorm[qrow];
    int64_t out = 0;
    for (int base = 0; base < n && out < c.k; base += 32) {
        const int i = base + lane;
        const uint64_t e = i < n ? A[i] : kInvalid;
        bool ok = e != kInvalid && keep_row(c.filter, c.filter_bits, entry_id(e));
        if (ok && dedup && i > 0 && A[i - 1] == e)
            ok = false;
        const unsigned bal = __ballot_sync(kFull, ok);
        const int64_t r = out + __popc(bal & ((1u << lane) - 1u));
        if (ok && r < c.k) {
            c.ids[qrow * c.k + r] = (int64_t)entry_id(e);
            c.dist[qrow * c.k + r] = out_distance(c.out_kind, entry_key(e), qn);
        }
        out += __popc(bal);
    }
    for (int64_t j = (out < c.k ? out : c.k) + lane; j < c.k; j += 32) {
        c.ids[qrow * c.k + j] = -1;
        c.dist[qrow * c.k + j] = c.worst;
    }
}

/*
 * cagra_prep_queries: qnorm[i] = |q_i| (double sum in element order, as
 * the CPU), and for cosine q_i /= |q_i| in float (the CPU's unit query).
 * Launch: 1-D, one thread per query row, any block size.
 * Layout: q contiguous bq x dim f32.
 */
__global__ void cagra_prep_queries(float *__restrict__ q, int64_t bq, int64_t dim, bool cosine,
                                   float *__restrict__ qnorm)
{
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= bq)
        return;
    float *r = q + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j)
        s += (double)r[j] * r[j];
    const float n = (float)sqrt(s);
    qnorm[i] = n;
    if (cosine && n > 0.0f)
        for (int64_t j = 0; j < dim; ++j)
            r[j] /= n;
}

/* ---------------------------- single-CTA ----------------------------- */

/** Single-CTA parameters and shared-memory layout (byte offsets; the query is at 0). */
struct SingleArgs {
    Common c;
    int itopk;               /* I: list length, multiple of 32 */
    int Cp;                  /* candidate slots: power of two >= sw x deg */
    int P0;                  /* power of two >= n_slots */
    int n_slots;             /* I + sw x deg seed slots */
    const uint32_t *seeds;   /* n_slots x nrs */
    bool small;              /* SMALL (shared) visited table, else HASH (global, one per query) */
    int bitlen;
    int reset_interval;      /* SMALL: reset every this many iterations */
    uint32_t *ghash;         /* HASH: batch x 2^bitlen */
    unsigned off_R, off_hash, off_par, off_fp, off_warp, off_misc;
};

/*
 * Seeds (notes 7.3) into W[0 .. P0): slot s gets the best of its nrs
 * trials when its row is new to the visited table, else kInvalid; slots
 * from n_slots on are kInvalid.  All threads call it; no barrier.
 */
template <typename T>
__device__ void seed_slots(const Common &c, const float *sq, const uint32_t *seeds, int n_slots, int P0,
                           uint32_t *hash, int bitlen, uint64_t *W)
{
    const int tid = threadIdx.x, lane = tid & 31;
    const int lt = tid & (c.team - 1), team_id = tid / c.team, n_teams = blockDim.x / c.team;
    const int leader = lane & ~(c.team - 1);
    for (int base = 0; base < n_slots; base += n_teams) {
        const int s = base + team_id;
        const bool valid = s < n_slots;
        uint32_t best = 0;
        float bk = 0.0f;
        for (int j = 0; j < c.nrs; ++j) {
            const uint32_t id = valid ? __ldg(seeds + (int64_t)s * c.nrs + j) : 0u;
            const float key = team_key<T>(c, sq, id, valid, lt);
            if (j == 0 || key < bk) {
                bk = key;
                best = id;
            }
        }
        int fresh = 0;
        if (valid && lt == 0)
            fresh = hash_insert(hash, bitlen, best);
        fresh = __shfl_sync(kFull, fresh, leader);
        if (valid && lt == 0)
            W[s] = fresh ? make_entry(bk, best) : kInvalid;
    }
    for (int i = n_slots + tid; i < P0; i += blockDim.x)
        W[i] = kInvalid;
}

/*
 * cagra_single_cta: the whole search of one query (notes 7.4; the loop
 * described at the top of this file).
 * Launch: grid (queries of the batch), block a multiple of 32 (64..1024)
 * with team | block; dynamic shared memory per SingleArgs offsets: query
 * (ldq floats), R (max(P0, 2 itopk + Cp) u64), SMALL table (2^bitlen u32),
 * parents and filtered parents (sw u32 each), 32 scan words, 4 ints.
 * Layout: c.q row blockIdx.x; ghash + blockIdx.x x 2^bitlen (HASH);
 * results row blockIdx.x of c.ids / c.dist.
 */
template <typename T>
__global__ void __launch_bounds__(kMaxBlock) cagra_single_cta(const SingleArgs a)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const Common &c = a.c;
    float *sq = reinterpret_cast<float *>(smem);
    uint64_t *R = reinterpret_cast<uint64_t *>(smem + a.off_R);
    uint32_t *par = reinterpret_cast<uint32_t *>(smem + a.off_par);
    uint32_t *fp = reinterpret_cast<uint32_t *>(smem + a.off_fp);
    unsigned *s_warp = reinterpret_cast<unsigned *>(smem + a.off_warp);
    int *misc = reinterpret_cast<int *>(smem + a.off_misc);
    const int64_t qi = blockIdx.x;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int lt = tid & (c.team - 1), team_id = tid / c.team, n_teams = blockDim.x / c.team;
    const int leader = lane & ~(c.team - 1);
    const int hsize = 1 << a.bitlen;
    const int I = a.itopk, C = c.sw * c.deg;
    uint32_t *hash = a.small ? reinterpret_cast<uint32_t *>(smem + a.off_hash) : a.ghash + ((size_t)qi << a.bitlen);

    load_query(sq, c.q + qi * c.dim, c.dim, c.ldq);
    for (int i = tid; i < hsize; i += blockDim.x)
        hash[i] = kEmpty;
    __syncthreads();
    seed_slots<T>(c, sq, a.seeds, a.n_slots, a.P0, hash, a.bitlen, R);
    __syncthreads();
    topk::block_bitonic_sort(R, a.P0); /* R[0 .. I) = the best seeds: the list */

    uint64_t *A = R, *A2 = R + I, *B = R + 2 * I;
    for (int iter = 0; iter + 1 < c.max_iter; ++iter) {
        __syncthreads(); /* the previous iteration's readers of misc and A are done */
        if (warp == 0) {
            const int np = pick_parents(A, I, c.sw, par);
            if (lane == 0) {
                misc[0] = np;
                misc[1] = 0;
            }
        }
        __syncthreads();
        const int np = misc[0];
        if (np == 0)
            break;
        if (a.small && (iter + 1) % a.reset_interval == 0) {
            for (int i = tid; i < hsize; i += blockDim.x)
                hash[i] = kEmpty;
            __syncthreads();
            for (int i = tid; i < I; i += blockDim.x) {
                const uint64_t e = A[i];
                if (e != kInvalid)
                    hash_insert(hash, a.bitlen, entry_id(e));
            }
            __syncthreads();
        }
        /* expand: slot s = parent s / deg, neighbour s % deg */
        for (int base = 0; base < C; base += n_teams) {
            const int s = base + team_id;
            uint32_t child = 0;
            int fresh = 0;
            if (s < np * c.deg && lt == 0) {
                const uint32_t p = par[s / c.deg];
                child = __ldg(c.graph + (int64_t)p * c.deg + (s % c.deg));
                fresh = hash_insert(hash, a.bitlen, child);
            }
            fresh = __shfl_sync(kFull, fresh, leader);
            child = __shfl_sync(kFull, child, leader);
            const float key = team_key<T>(c, sq, child, fresh != 0, lt);
            if (s < C && lt == 0)
                B[s] = fresh ? make_entry(key, child) : kInvalid;
        }
        for (int i = C + tid; i < a.Cp; i += blockDim.x)
            B[i] = kInvalid;
        __syncthreads();
        topk::block_bitonic_sort(B, a.Cp);
        merge_best(A, I, B, a.Cp, A2);
        __syncthreads();
        {
            uint64_t *t = A;
            A = A2;
            A2 = t;
        }
        /* parents that fail the filter leave the list (notes 7.4 step 8; the CPU removes them after merging) */
        if (c.filter) {
            for (int t = tid; t < np; t += blockDim.x) {
                const uint32_t p = par[t];
                if (!keep_row(c.filter, c.filter_bits, p))
                    fp[atomicAdd(&misc[1], 1)] = p;
            }
            __syncthreads();
            const int nfp = misc[1];
            if (nfp > 0) {
                auto drop = [&](uint64_t e) -> bool {
                    if (e == kInvalid || !(e & 1ull))
                        return false;
                    const uint32_t id = entry_id(e);
                    for (int t = 0; t < nfp; ++t)
                        if (fp[t] == id)
                            return true;
                    return false;
                };
                block_compact(A, I, A2, drop, s_warp);
                uint64_t *t = A;
                A = A2;
                A2 = t;
            }
        }
    }
    __syncthreads();
    if (warp == 0)
        write_results(c, A, I, qi, false);
}

/* ----------------------------- multi-CTA ----------------------------- */

/** Multi-CTA parameters and shared-memory layout (the query at offset 0). */
struct MultiArgs {
    Common c;
    int Mp;                  /* buffer: power of two >= 32 + deg, <= 256 */
    int vbits;               /* visited table (shared) */
    uint32_t *trav;          /* batch x 2^tbits traversed tables (global) */
    int tbits;
    uint64_t *res;           /* batch x n_cta x 32 results (flag stripped) */
    int64_t q0;              /* index of the batch's first query in the call */
    int64_t nq_total;        /* queries in the call */
    uint64_t rand_xor_mask;
    unsigned off_buf, off_vis, off_misc;
};

/*
 * Warp 0 only (notes 7.5 step 3): the parent of this CTA: the first
 * unexpanded valid entry among buf[0 .. 64) that can be inserted into the
 * traversed table; entries another CTA took are invalidated on the way;
 * a parent found beyond position 32 moves into the last empty slot of
 * buf[0 .. 32), and none is taken when that area has no empty slot.
 * Returns the parent's position (-1: none) and its row in *pid.
 */
__device__ int mc_pick_parent(uint64_t *buf, uint32_t *trav, int tbits, uint32_t *pid)
{
    const int lane = threadIdx.x & 31;
    int ppos = -1, jslot = -1;
    uint64_t pe = kInvalid;
    for (int base = 0; base < 2 * kMcItopk; base += 32) {
        const int i = base + lane;
        const uint64_t e = buf[i];
        bool inval = e == kInvalid;
        unsigned bal = __ballot_sync(kFull, e != kInvalid && !(e & 1ull));
        while (bal != 0u && ppos < 0) {
            const int src = __ffs(bal) - 1;
            int ok = 0;
            if (lane == src) {
                ok = hash_insert(trav, tbits, entry_id(e));
                if (!ok) {
                    buf[i] = kInvalid; /* another CTA expands it */
                    inval = true;
                }
            }
            ok = __shfl_sync(kFull, ok, src);
            const uint64_t se = __shfl_sync(kFull, e, src);
            if (ok) {
                ppos = base + src;
                pe = se;
            }
            bal &= bal - 1u;
        }
        __syncwarp();
        if (ppos >= 0)
            break;
        if (base == 0) {
            const unsigned ib = __ballot_sync(kFull, inval);
            if (ib == 0u)
                break; /* the top 32 are all expanded: nothing to do */
            jslot = 31 - __clz((int)ib);
        }
    }
    if (ppos >= 0 && lane == 0) {
        if (ppos < kMcItopk) {
            buf[ppos] = pe | 1ull;
        } else {
            buf[jslot] = pe | 1ull;
            buf[ppos] = kInvalid;
            ppos = jslot;
        }
    }
    ppos = __shfl_sync(kFull, ppos, 0);
    __syncwarp();
    *pid = entry_id(pe);
    return ppos;
}

/*
 * cagra_multi_cta: one CTA of a query (notes 7.5; see the top of this
 * file), writes its top 32 (filter applied, flags cleared, kInvalid for
 * empty) to res[query][cta].
 * Launch: grid (n_cta, queries of the batch), block 64..1024 (multiple of
 * 32, team | block); dynamic shared memory per MultiArgs offsets: query,
 * buffer (Mp u64), visited table (2^vbits u32), 4 words.
 * Layout: trav + blockIdx.y x 2^tbits (set to ~0 before the launch).
 */
template <typename T>
__global__ void __launch_bounds__(kMaxBlock) cagra_multi_cta(const MultiArgs a)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const Common &c = a.c;
    float *sq = reinterpret_cast<float *>(smem);
    uint64_t *buf = reinterpret_cast<uint64_t *>(smem + a.off_buf);
    uint32_t *vis = reinterpret_cast<uint32_t *>(smem + a.off_vis);
    unsigned *misc = reinterpret_cast<unsigned *>(smem + a.off_misc);
    const int64_t qi = blockIdx.y;
    const int cta = blockIdx.x, n_cta = gridDim.x;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int lt = tid & (c.team - 1), team_id = tid / c.team, n_teams = blockDim.x / c.team;
    const int leader = lane & ~(c.team - 1);
    const int vsize = 1 << a.vbits;
    uint32_t *trav = a.trav + ((size_t)qi << a.tbits);

    load_query(sq, c.q + qi * c.dim, c.dim, c.ldq);
    for (int i = tid; i < a.Mp; i += blockDim.x)
        buf[i] = kInvalid;
    for (int i = tid; i < vsize; i += blockDim.x)
        vis[i] = kEmpty;
    __syncthreads();

    /* seeds: deg per CTA into the candidate area (notes 7.3) */
    const uint64_t block_id = (uint64_t)cta + (uint64_t)n_cta * (uint64_t)(a.q0 + qi);
    const uint64_t num_blocks = (uint64_t)n_cta * (uint64_t)a.nq_total;
    for (int base = 0; base < c.deg; base += n_teams) {
        const int s = base + team_id;
        const bool valid = s < c.deg;
        uint32_t best = 0;
        float bk = 0.0f;
        for (int j = 0; j < c.nrs; ++j) {
            const uint64_t gid = block_id + num_blocks * ((uint64_t)s + (uint64_t)c.deg * (uint64_t)j);
            const uint32_t id = (uint32_t)(xorshift64(gid ^ a.rand_xor_mask) % (uint64_t)c.rows);
            const float key = team_key<T>(c, sq, id, valid, lt);
            if (j == 0 || key < bk) {
                bk = key;
                best = id;
            }
        }
        int fresh = 0;
        if (valid && lt == 0)
            fresh = hash_insert(vis, a.vbits, best);
        fresh = __shfl_sync(kFull, fresh, leader);
        if (valid && lt == 0)
            buf[kMcItopk + s] = fresh ? make_entry(bk, best) : kInvalid;
    }
    __syncthreads();

    for (int iter = 0;; ++iter) {
        topk::block_bitonic_sort(buf, a.Mp);
        if (iter + 1 >= c.max_iter)
            break;
        if (warp == 0) {
            uint32_t pid = 0;
            const int ppos = mc_pick_parent(buf, trav, a.tbits, &pid);
            if (lane == 0) {
                misc[0] = (unsigned)ppos;
                misc[1] = pid;
            }
        } else {
            for (int i = tid - 32; i < vsize; i += blockDim.x - 32)
                vis[i] = kEmpty;
        }
        __syncthreads();
        const int ppos = (int)misc[0];
        const uint32_t pid = misc[1];
        if (ppos < 0 && iter >= c.min_iter)
            break;
        /* the visited table again holds the top 32; the candidate area is cleared, and parents pushed out of
           the top 32 leave the traversed table, so that other CTAs may keep (and expand) them (notes 7.5 step 5) */
        for (int i = tid; i < a.Mp; i += blockDim.x) {
            const uint64_t e = buf[i];
            if (i < kMcItopk) {
                if (e != kInvalid)
                    hash_insert(vis, a.vbits, entry_id(e));
            } else {
                if (e != kInvalid && (e & 1ull))
                    hash_remove_global(trav, a.tbits, entry_id(e));
                buf[i] = kInvalid;
            }
        }
        __syncthreads();
        /* expand the parent: children new to this CTA and expanded by no CTA */
        for (int base = 0; base < c.deg; base += n_teams) {
            const int j = base + team_id;
            uint32_t child = 0;
            int fresh = 0;
            if (ppos >= 0 && j < c.deg && lt == 0) {
                child = __ldg(c.graph + (int64_t)pid * c.deg + j);
                fresh = hash_insert(vis, a.vbits, child);
                if (fresh && hash_contains_global(trav, a.tbits, child))
                    fresh = 0;
            }
            fresh = __shfl_sync(kFull, fresh, leader);
            child = __shfl_sync(kFull, child, leader);
            const float key = team_key<T>(c, sq, child, fresh != 0, lt);
            if (j < c.deg && lt == 0)
                buf[kMcItopk + j] = fresh ? make_entry(key, child) : kInvalid;
        }
        __syncthreads();
        /* entries another CTA expanded meanwhile leave; a parent failing the filter leaves (notes 7.5 steps 6-7) */
        if (tid < kMcItopk) {
            const uint64_t e = buf[tid];
            if (e != kInvalid) {
                if (e & 1ull) {
                    if (c.filter && tid == ppos && !keep_row(c.filter, c.filter_bits, entry_id(e)))
                        buf[tid] = kInvalid;
                } else if (hash_contains_global(trav, a.tbits, entry_id(e))) {
                    buf[tid] = kInvalid;
                }
            }
        }
        __syncthreads();
    }
    if (tid < kMcItopk) {
        const uint64_t e = buf[tid];
        uint64_t o = kInvalid;
        if (e != kInvalid && keep_row(c.filter, c.filter_bits, entry_id(e)))
            o = e & ~1ull;
        a.res[(qi * n_cta + cta) * kMcItopk + tid] = o;
    }
}

/*
 * cagra_mc_final: per query, the n = n_cta x 32 CTA results sorted, rows
 * reported by several CTAs (identical entries) kept once, the first k
 * written.
 * Launch: grid (queries of the batch), block 256; dynamic shared memory
 * P x 8 bytes when scratch is NULL, else scratch + query x P is used.
 * Layout: res row-major n entries per query; P = power of two >= n.
 */
__global__ void __launch_bounds__(256)
    cagra_mc_final(const Common c, const uint64_t *__restrict__ res, int n, int P, uint64_t *scratch)
{
    extern __shared__ __align__(16) unsigned char fin_smem[];
    const int64_t qi = blockIdx.x;
    uint64_t *buf = scratch ? scratch + qi * P : reinterpret_cast<uint64_t *>(fin_smem);
    for (int i = threadIdx.x; i < P; i += blockDim.x)
        buf[i] = i < n ? res[qi * n + i] : kInvalid;
    __syncthreads();
    topk::block_bitonic_sort(buf, P);
    if (threadIdx.x < 32)
        write_results(c, buf, P, qi, true);
}

/* ---------------------------- multi-kernel --------------------------- */

/** Multi-kernel buffers (global, per query of the batch) and sizes. */
struct MkArgs {
    Common c;
    int itopk, Cp, P0, n_slots;
    const uint32_t *seeds;
    bool small;
    int bitlen, reset_interval;
    uint32_t *hash;      /* batch x 2^bitlen */
    uint64_t *work;      /* batch x P0: seed sort */
    uint64_t *B;         /* batch x Cp: candidates */
    uint32_t *par;       /* batch x sw */
    int *np;             /* batch */
    unsigned *any;       /* one flag: some query found a parent */
};

/*
 * mk_init: visited table cleared, seeds evaluated and sorted, the list
 * cur[query] = the best itopk of them.
 * Launch: grid (queries of the batch), block 64..1024 (team | block);
 * dynamic shared memory ldq floats.
 */
template <typename T>
__global__ void __launch_bounds__(kMaxBlock) mk_init(const MkArgs a, uint64_t *cur)
{
    extern __shared__ __align__(16) unsigned char smem[];
    float *sq = reinterpret_cast<float *>(smem);
    const int64_t qi = blockIdx.x;
    const int hsize = 1 << a.bitlen;
    uint32_t *hash = a.hash + ((size_t)qi << a.bitlen);
    uint64_t *W = a.work + qi * a.P0;
    load_query(sq, a.c.q + qi * a.c.dim, a.c.dim, a.c.ldq);
    for (int i = threadIdx.x; i < hsize; i += blockDim.x)
        hash[i] = kEmpty;
    __syncthreads();
    seed_slots<T>(a.c, sq, a.seeds, a.n_slots, a.P0, hash, a.bitlen, W);
    __syncthreads();
    topk::block_bitonic_sort(W, a.P0);
    for (int i = threadIdx.x; i < a.itopk; i += blockDim.x)
        cur[qi * a.itopk + i] = W[i];
}

/*
 * mk_pickup: parents of iteration @p iter for every query (warp 0 scans
 * the list), np[query]; *any = 1 when some query has one; SMALL tables are
 * reset and refilled from the list every reset_interval iterations.
 * Launch: grid (queries of the batch), block 128.
 */
__global__ void __launch_bounds__(128) mk_pickup(const MkArgs a, uint64_t *cur, int iter)
{
    const int64_t qi = blockIdx.x;
    uint64_t *A = cur + qi * a.itopk;
    if (threadIdx.x < 32) {
        const int np = pick_parents(A, a.itopk, a.c.sw, a.par + qi * a.c.sw);
        if (threadIdx.x == 0) {
            a.np[qi] = np;
            if (np > 0)
                atomicOr(a.any, 1u);
        }
    }
    if (a.small && (iter + 1) % a.reset_interval == 0) {
        uint32_t *hash = a.hash + ((size_t)qi << a.bitlen);
        const int hsize = 1 << a.bitlen;
        __syncthreads();
        for (int i = threadIdx.x; i < hsize; i += blockDim.x)
            hash[i] = kEmpty;
        __syncthreads();
        for (int i = threadIdx.x; i < a.itopk; i += blockDim.x) {
            const uint64_t e = A[i];
            if (e != kInvalid)
                hash_insert(hash, a.bitlen, entry_id(e));
        }
    }
}

/*
 * mk_expand: children of the query's parents: slot s (block x teams +
 * team) = parent s / deg, neighbour s % deg; its entry (or kInvalid when
 * the visited table had it) into B[query][s].  Queries without parents
 * are skipped (mk_merge copies their list).
 * Launch: grid (ceil(sw x deg / teams per block), queries of the batch),
 * block 64..1024 (team | block); dynamic shared memory ldq floats.
 */
template <typename T>
__global__ void __launch_bounds__(kMaxBlock) mk_expand(const MkArgs a)
{
    extern __shared__ __align__(16) unsigned char smem[];
    float *sq = reinterpret_cast<float *>(smem);
    const Common &c = a.c;
    const int64_t qi = blockIdx.y;
    const int np = a.np[qi];
    if (np == 0)
        return;
    const int tid = threadIdx.x, lane = tid & 31;
    const int lt = tid & (c.team - 1), team_id = tid / c.team, n_teams = blockDim.x / c.team;
    const int leader = lane & ~(c.team - 1);
    const int C = c.sw * c.deg;
    uint32_t *hash = a.hash + ((size_t)qi << a.bitlen);
    uint64_t *B = a.B + qi * a.Cp;
    load_query(sq, c.q + qi * c.dim, c.dim, c.ldq);
    __syncthreads();
    const int s = blockIdx.x * n_teams + team_id;
    uint32_t child = 0;
    int fresh = 0;
    if (s < np * c.deg && lt == 0) {
        const uint32_t p = a.par[qi * c.sw + s / c.deg];
        child = __ldg(c.graph + (int64_t)p * c.deg + (s % c.deg));
        fresh = hash_insert(hash, a.bitlen, child);
    }
    fresh = __shfl_sync(kFull, fresh, leader);
    child = __shfl_sync(kFull, child, leader);
    const float key = team_key<T>(c, sq, child, fresh != 0, lt);
    if (s < C && lt == 0)
        B[s] = fresh ? make_entry(key, child) : kInvalid;
    if (blockIdx.x == 0)
        for (int i = C + tid; i < a.Cp; i += blockDim.x)
            B[i] = kInvalid;
}

/*
 * mk_merge: next[query] = the best itopk of cur[query] and the sorted
 * candidates, minus this iteration's parents that fail the filter (the
 * single-CTA merge step); a query without parents copies its list.
 * Launch: grid (queries of the batch), block 256; dynamic shared memory
 * sw u32 + 32 scan words + 4 ints.
 */
__global__ void __launch_bounds__(256) mk_merge(const MkArgs a, uint64_t *cur, uint64_t *next)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const int64_t qi = blockIdx.x;
    const int I = a.itopk;
    uint64_t *A = cur + qi * I, *An = next + qi * I, *B = a.B + qi * a.Cp;
    uint32_t *fp = reinterpret_cast<uint32_t *>(smem);
    unsigned *s_warp = reinterpret_cast<unsigned *>(smem + (((size_t)a.c.sw * 4 + 15) / 16) * 16);
    int *misc = reinterpret_cast<int *>(s_warp + 32);
    const int np = a.np[qi];
    if (np == 0) {
        for (int i = threadIdx.x; i < I; i += blockDim.x)
            An[i] = A[i];
        return;
    }
    if (threadIdx.x == 0)
        misc[0] = 0;
    topk::block_bitonic_sort(B, a.Cp); /* B is complete (previous kernel) */
    merge_best(A, I, B, a.Cp, An);
    __syncthreads();
    if (!a.c.filter)
        return;
    for (int t = threadIdx.x; t < np; t += blockDim.x) {
        const uint32_t p = a.par[qi * a.c.sw + t];
        if (!keep_row(a.c.filter, a.c.filter_bits, p))
            fp[atomicAdd(&misc[0], 1)] = p;
    }
    __syncthreads();
    const int nfp = misc[0];
    if (nfp == 0)
        return;
    auto drop = [&](uint64_t e) -> bool {
        if (e == kInvalid || !(e & 1ull))
            return false;
        const uint32_t id = entry_id(e);
        for (int t = 0; t < nfp; ++t)
            if (fp[t] == id)
                return true;
        return false;
    };
    block_compact(An, I, A, drop, s_warp); /* A (the old list) is free */
    for (int i = threadIdx.x; i < I; i += blockDim.x)
        An[i] = A[i];
}

/*
 * mk_output: the first k valid entries of each query's list that pass
 * the filter.
 * Launch: grid (queries of the batch), block 32.
 */
__global__ void __launch_bounds__(32) mk_output(const Common c, const uint64_t *cur, int itopk)
{
    write_results(c, cur + (int64_t)blockIdx.x * itopk, itopk, blockIdx.x, false);
}

/* ------------------------------- host -------------------------------- */

/* Smallest bitlen >= lo (<= hi) with 2^bitlen x fill >= need; hi + 1 when none. */
int bitlen_for(int64_t need, double fill, int lo, int hi)
{
    int b = lo;
    while (b <= hi && (double)((int64_t)1 << b) * fill < (double)need)
        ++b;
    return b;
}

/* Team size for dimension @p dim (notes 7.2 descriptor rule: closest of 128 / 256 / 512, ties to the first). */
int auto_team(int64_t dim)
{
    static const int64_t bd[3] = {128, 256, 512};
    static const int ts[3] = {8, 16, 32};
    int best = 0;
    for (int i = 1; i < 3; ++i) {
        const int64_t d0 = dim > bd[best] ? dim - bd[best] : bd[best] - dim;
        const int64_t d1 = dim > bd[i] ? dim - bd[i] : bd[i] - dim;
        if (d1 < d0)
            best = i;
    }
    return ts[best];
}

/* Allow @p kernel @p smem bytes of dynamic shared memory (opt-in above 48 KiB). */
template <typename K>
ann_status allow_smem(K kernel, size_t smem)
{
    ann_status st = ANN_OK;
    if (smem > kDefaultSmem)
        CU_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
cleanup:
    return st;
}

/* Everything a launch needs besides the per-algorithm buffers. */
struct Plan {
    int algo;             /* ANN_CAGRA_SEARCH_SINGLE_CTA / MULTI_CTA / MULTI_KERNEL */
    ann_cagra_plan pl;
    int team, block;
    bool small;
    int bitlen, reset_interval;
    int Cp, P0, n_slots;
    size_t smem;          /* single-CTA / multi-CTA dynamic shared memory */
    int64_t batch;
    /* single-CTA layout */
    unsigned off_R, off_hash, off_par, off_fp, off_warp, off_misc;
    /* multi-CTA */
    int n_cta, Mp, vbits, tbits, Pf;
    unsigned off_buf, off_vis, off_mmisc;
};

/* Single-CTA shared memory layout; returns the total bytes. */
size_t single_layout(Plan &P, int64_t ldq, int itopk, int sw)
{
    size_t o = (size_t)cu_round_up(ldq * 4, 16);
    const int64_t Rn = cu_max64(P.P0, 2 * (int64_t)itopk + P.Cp);
    P.off_R = (unsigned)o;
    o += (size_t)Rn * 8;
    P.off_hash = (unsigned)o;
    if (P.small)
        o += (size_t)4 << P.bitlen;
    P.off_par = (unsigned)o;
    o += (size_t)sw * 4;
    P.off_fp = (unsigned)o;
    o += (size_t)sw * 4;
    o = (size_t)cu_round_up((int64_t)o, 16);
    P.off_warp = (unsigned)o;
    o += 32 * 4;
    P.off_misc = (unsigned)o;
    o += 16;
    return o;
}

/* Multi-CTA shared memory layout; returns the total bytes. */
size_t multi_layout(Plan &P, int64_t ldq)
{
    size_t o = (size_t)cu_round_up(ldq * 4, 16);
    P.off_buf = (unsigned)o;
    o += (size_t)P.Mp * 8;
    P.off_vis = (unsigned)o;
    o += (size_t)4 << P.vbits;
    P.off_mmisc = (unsigned)o;
    o += 16;
    return o;
}

/* Launch the single-CTA kernel of dtype T. */
template <typename T>
ann_status launch_single(CuCtx *ctx, const SingleArgs &a, const Plan &P, int64_t bq)
{
    ann_status st = ANN_OK;
    ANN_TRY(allow_smem(cagra_single_cta<T>, P.smem));
    cagra_single_cta<T><<<(unsigned)bq, P.block, P.smem, ctx->stream>>>(a);
    CU_LAUNCHED("cagra_single_cta");
cleanup:
    return st;
}

/* Launch the multi-CTA kernel of dtype T. */
template <typename T>
ann_status launch_multi(CuCtx *ctx, const MultiArgs &a, const Plan &P, int64_t bq)
{
    ann_status st = ANN_OK;
    ANN_TRY(allow_smem(cagra_multi_cta<T>, P.smem));
    cagra_multi_cta<T><<<dim3((unsigned)P.n_cta, (unsigned)bq), P.block, P.smem, ctx->stream>>>(a);
    CU_LAUNCHED("cagra_multi_cta");
cleanup:
    return st;
}

/* Run the multi-kernel search of dtype T on one batch (lists in cur/next, swapped as it goes). */
template <typename T>
ann_status run_multi_kernel(CuCtx *ctx, const MkArgs &a, const Plan &P, int64_t bq, uint64_t *cur, uint64_t *next)
{
    ann_status st = ANN_OK;
    const size_t qsm = (size_t)cu_round_up((int64_t)a.c.ldq * 4, 16);
    const size_t msm = (size_t)cu_round_up((int64_t)a.c.sw * 4, 16) + 32 * 4 + 16;
    const int teams = P.block / a.c.team;
    const unsigned gx = (unsigned)cu_div_up((int64_t)a.c.sw * a.c.deg, teams);
    unsigned any = 0;
    ANN_TRY(allow_smem(mk_init<T>, qsm));
    ANN_TRY(allow_smem(mk_expand<T>, qsm));
    ANN_TRY(allow_smem(mk_merge, msm));
    mk_init<T><<<(unsigned)bq, P.block, qsm, ctx->stream>>>(a, cur);
    CU_LAUNCHED("mk_init");
    for (int iter = 0; iter + 1 < P.pl.max_iterations; ++iter) {
        CU_CHECK(cudaMemsetAsync(a.any, 0, sizeof(unsigned), ctx->stream));
        mk_pickup<<<(unsigned)bq, 128, 0, ctx->stream>>>(a, cur, iter);
        CU_LAUNCHED("mk_pickup");
        CU_CHECK(cudaMemcpyAsync(&any, a.any, sizeof(unsigned), cudaMemcpyDeviceToHost, ctx->stream));
        CU_CHECK(cudaStreamSynchronize(ctx->stream));
        if (!any) /* no query has an unexpanded entry: nothing changes any more */
            break;
        mk_expand<T><<<dim3(gx, (unsigned)bq), P.block, qsm, ctx->stream>>>(a);
        CU_LAUNCHED("mk_expand");
        mk_merge<<<(unsigned)bq, 256, msm, ctx->stream>>>(a, cur, next);
        CU_LAUNCHED("mk_merge");
        uint64_t *t = cur;
        cur = next;
        next = t;
    }
    mk_output<<<(unsigned)bq, 32, 0, ctx->stream>>>(a.c, cur, a.itopk);
    CU_LAUNCHED("mk_output");
cleanup:
    return st;
}

/* Dispatch a templated launcher on the index dtype. */
#define CAGRA_DISPATCH(dtype, FN, ...)                                                                             \
    ((dtype) == ANN_DTYPE_F32   ? FN<float>(__VA_ARGS__)                                                            \
     : (dtype) == ANN_DTYPE_F16 ? FN<__half>(__VA_ARGS__)                                                           \
     : (dtype) == ANN_DTYPE_I8  ? FN<int8_t>(__VA_ARGS__)                                                           \
                                : FN<uint8_t>(__VA_ARGS__))

} // namespace

/* ------------------------------- driver ------------------------------ */

/**
 * CUDA CAGRA search (backend_ops.h cagra_search): semantics of
 * ann_cpu_cagra_search() (lib/src/cagra_search.c); the algorithms are
 * described at the top of this file.  q: n x dim host rows of any vector
 * dtype; ids/dist: n x k host arrays (int64 rows, -1 for empty slots;
 * distances in the metric's returned convention, worst for empty slots),
 * best first, ties by (distance, id).  n_threads is unused.
 * Errors: ANN_ERR_UNSUPPORTED (metric, dtype, >= 2^31 rows, a shape the
 * explicitly chosen kernel cannot run, a dimension whose query does not
 * fit in shared memory), ANN_ERR_INVALID_ARG (hashmap_mode small with a
 * table above 2^13 slots, too many seed slots), ANN_ERR_MISMATCH, ANN_ERR_CUDA,
 * ANN_ERR_NOMEM; the message names the cause.
 */
ann_status cu_cagra_search(const ann_cagra_view *ix, const ann_cagra_search_params *p, const ann_matrix *q,
                           int64_t k, int n_threads, int64_t *ids, float *dist)
{
    (void)n_threads;
    ann_status st = ANN_OK;
    CuCtx *ctx = nullptr;
    CagraCache *cache = nullptr;
    bool owned = false;
    const int64_t nq = q->rows, dim = ix->dim, rows = ix->rows;
    const int deg = ix->graph_degree;
    const float worst = cu_worst(ix->metric);
    const size_t es = cu_dtype_size(ix->dtype);
    Plan P;
    std::memset(&P, 0, sizeof P);
    int64_t ld = 0, per_query = 0, filter_words = 0, req_batch = 0;
    int optin = 0, sw = 1, I = 32, block_req = 0;
    size_t budget = 0;
    double rate = 0, fill = 0.5;
    bool filtered = false;
    Common cm;
    std::memset(&cm, 0, sizeof cm);
    std::vector<uint32_t> h_seeds;
    /* device buffers */
    float *d_q = nullptr, *d_qnorm = nullptr, *d_dist = nullptr;
    int64_t *d_ids = nullptr;
    uint32_t *d_filter = nullptr, *d_seeds = nullptr, *d_hash = nullptr, *d_par = nullptr;
    uint64_t *d_res = nullptr, *d_fin = nullptr, *d_l0 = nullptr, *d_l1 = nullptr, *d_B = nullptr, *d_W = nullptr;
    int *d_np = nullptr;
    unsigned *d_any = nullptr;

    /* the library always passes checked params (the plugin links nothing of it: no ann_*_init here) */
    if (!p)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: no search parameters");
    if (k < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: k = %lld must be at least 1", (long long)k);
    if (!(cu_metric_ok(ix->metric) || ix->metric == ANN_METRIC_L1))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "cagra on CUDA: metric %d is not supported", (int)ix->metric);
    if (!cu_dtype_ok(ix->dtype) || !cu_dtype_ok(q->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "cagra on CUDA: dtype not supported");
    if (!ix->data || !ix->graph)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: the index has no vectors");
    if (q->cols != dim)
        return CU_FAIL(ANN_ERR_MISMATCH, "cagra: queries have dimension %lld, the index %lld", (long long)q->cols,
                       (long long)dim);
    if (rows >= ((int64_t)1 << 31) || dim > (1 << 20) || deg < 1 || deg > 65536)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "cagra on CUDA: %lld rows x %lld dims, degree %d is out of range",
                       (long long)rows, (long long)dim, deg);
    if (ix->metric == ANN_METRIC_COSINE && !ix->norms)
        return CU_FAIL(ANN_ERR_INTERNAL, "cagra: cosine index without norms");
    if (k > INT32_MAX / 4)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "cagra on CUDA: k = %lld is too large", (long long)k);
    if (nq <= 0)
        return ANN_OK;
    if (rows <= 0) {
        for (int64_t i = 0; i < nq * k; ++i) {
            ids[i] = -1;
            dist[i] = worst;
        }
        return ANN_OK;
    }

    /* ------------------------------ plan ------------------------------ */
    filtered = ix->filter != nullptr;
    rate = filtered ? 1.0 - (double)ix->filter_kept / (double)rows : 0.0;
    P.pl = ann_cagra_plan_resolve(p, rows, deg, k, rate);
    sw = P.pl.search_width;
    I = P.pl.itopk;
    fill = p->hashmap_max_fill_rate;
    if (!(fill >= 0.1 && fill <= 0.9))
        fill = 0.5;
    if ((int64_t)I + (int64_t)sw * deg > (1 << 24))
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: itopk_size + search_width x graph_degree = %lld is too large",
                       (long long)((int64_t)I + (int64_t)sw * deg));

    ANN_TRY(cu_ctx_get(&ctx));
    CU_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx->device));

    ld = cu_round_up(dim * (int64_t)es, 16) / (int64_t)es;
    P.team = p->team_size > 0 ? p->team_size : auto_team(dim);
    if (P.team != 4 && P.team != 8 && P.team != 16 && P.team != 32)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: team_size = %d: expected 0, 4, 8, 16 or 32", p->team_size);
    block_req = p->thread_block_size;
    if (block_req != 0 && block_req != 64 && block_req != 128 && block_req != 256 && block_req != 512 &&
        block_req != 1024)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "cagra: thread_block_size = %d: expected 0, 64, 128, 256, 512 or 1024",
                       block_req);
    req_batch = cu_min64(nq, p->max_queries > 0 ? (int64_t)p->max_queries : kDefaultMaxQueries);

    /* visited table of single-CTA / multi-kernel (notes 7.2) */
    {
        const int lo = p->hashmap_min_bitlen > 8 ? p->hashmap_min_bitlen : 8;
        const int64_t need_small = (int64_t)I + (int64_t)sw * deg;
        const int sb = bitlen_for(need_small, fill, lo, 30);
        if (filtered || p->hashmap_mode == ANN_CAGRA_HASHMAP_HASH)
            P.small = false;
        else if (p->hashmap_mode == ANN_CAGRA_HASHMAP_SMALL && sb > kSmallMaxBitlen &&
                 p->algo != ANN_CAGRA_SEARCH_MULTI_CTA)
            return CU_FAIL(ANN_ERR_INVALID_ARG,
                           "cagra: hashmap_mode small needs a table of 2^%d slots for itopk %d + search_width %d x "
                           "degree %d (at most 2^%d): use hash or auto",
                           sb, I, sw, deg, kSmallMaxBitlen);
        else
            P.small = sb <= kSmallMaxBitlen;
        if (P.small) {
            P.bitlen = sb;
            int r = 1;
            while ((double)I + (double)sw * deg * (double)(r + 2) <= (double)((int64_t)1 << sb) * fill)
                ++r;
            P.reset_interval = r;
        } else {
            const int hlo = p->hashmap_min_bitlen > kHashMinBitlen ? p->hashmap_min_bitlen : kHashMinBitlen;
            const int64_t need = (int64_t)I + (int64_t)sw * deg * (int64_t)P.pl.max_iterations;
            const int hb = bitlen_for(need, fill, hlo, kHashMaxBitlen);
            P.bitlen = hb > kHashMaxBitlen ? kHashMaxBitlen : hb; /* capped: a full table means "visited" */
            P.reset_interval = 1;
        }
    }
    P.Cp = (int)cu_pow2_ceil(cu_max64(1, (int64_t)sw * deg));
    P.n_slots = I + sw * deg;
    P.P0 = (int)cu_pow2_ceil(P.n_slots);

    /* algorithm (notes 7.2) */
    P.algo = p->algo;
    if (P.algo == ANN_CAGRA_SEARCH_AUTO)
        P.algo = (I <= 512 && req_batch >= 2 * (int64_t)ctx->sm_count) ? ANN_CAGRA_SEARCH_SINGLE_CTA
                                                                         : ANN_CAGRA_SEARCH_MULTI_CTA;
    if (P.algo == ANN_CAGRA_SEARCH_SINGLE_CTA) {
        P.smem = single_layout(P, ld, I, sw);
        if (P.smem > (size_t)optin) {
            if (p->algo == ANN_CAGRA_SEARCH_SINGLE_CTA)
                ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED,
                                "cagra: single_cta needs %zu bytes of shared memory (itopk %d, search_width %d, "
                                "degree %d, dim %lld), the device allows %d: use search_algo multi_kernel",
                                P.smem, I, sw, deg, (long long)dim, optin));
            P.algo = ANN_CAGRA_SEARCH_MULTI_KERNEL;
        }
    }
    if (P.algo == ANN_CAGRA_SEARCH_MULTI_CTA) {
        if (kMcItopk + deg > kMcMaxBuffer) {
            if (p->algo == ANN_CAGRA_SEARCH_MULTI_CTA)
                ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED,
                                "cagra: multi_cta needs graph_degree <= %d (this graph has %d): use single_cta or "
                                "multi_kernel",
                                kMcMaxBuffer - kMcItopk, deg));
            P.algo = ANN_CAGRA_SEARCH_MULTI_KERNEL;
        } else {
            /* automatic max_iterations from base 32 (notes 7.2), same user/min_iterations rules */
            ann_cagra_search_params p2 = *p;
            p2.itopk_size = kMcItopk;
            p2.search_width = 1;
            P.pl.max_iterations = ann_cagra_plan_resolve(&p2, rows, deg, 1, 0.0).max_iterations;
            P.n_cta = (int)cu_max64(sw, cu_div_up(I, kMcItopk));
            P.Mp = (int)cu_pow2_ceil(kMcItopk + deg);
            if (P.Mp < 2 * kMcItopk)
                P.Mp = 2 * kMcItopk;
            const int vlo = p->hashmap_min_bitlen > kMcVisitedMinBitlen ? p->hashmap_min_bitlen : kMcVisitedMinBitlen;
            P.vbits = bitlen_for(kMcItopk + 2 * (int64_t)deg, fill, vlo, kMcVisitedMaxBitlen);
            if (P.vbits > kMcVisitedMaxBitlen)
                P.vbits = kMcVisitedMaxBitlen;
            P.tbits = bitlen_for((int64_t)P.n_cta * cu_max64(kMcItopk, P.pl.max_iterations), fill, kMcTravMinBitlen,
                                 kMcTravMaxBitlen);
            if (P.tbits > kMcTravMaxBitlen)
                P.tbits = kMcTravMaxBitlen;
            P.Pf = (int)cu_pow2_ceil((int64_t)P.n_cta * kMcItopk);
            P.smem = multi_layout(P, ld);
            if (P.smem > (size_t)optin)
                ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED,
                                "cagra: multi_cta needs %zu bytes of shared memory (dim %lld), the device allows %d",
                                P.smem, (long long)dim, optin));
        }
    }
    if (P.algo == ANN_CAGRA_SEARCH_MULTI_KERNEL && (size_t)cu_round_up(ld * 4, 16) > (size_t)optin)
        ANN_TRY(CU_FAIL(ANN_ERR_UNSUPPORTED, "cagra on CUDA: a query of %lld dims does not fit in shared memory",
                        (long long)dim));

    /* block size */
    if (block_req) {
        P.block = block_req;
    } else if (P.algo == ANN_CAGRA_SEARCH_SINGLE_CTA) {
        /* notes 7.4: from 64, doubled while smem > 128 B x block, then while deg x sw x team >= 2 block and the
           launch has few queries */
        P.block = 64;
        while (P.block < kMaxBlock && P.smem > (size_t)128 * P.block)
            P.block *= 2;
        while (P.block < kMaxBlock && (int64_t)deg * sw * P.team >= 2 * (int64_t)P.block &&
               req_batch <= (int64_t)(kMaxBlock / (2 * P.block)) * ctx->sm_count)
            P.block *= 2;
    } else {
        const int64_t work = (int64_t)deg * (P.algo == ANN_CAGRA_SEARCH_MULTI_KERNEL ? sw : 1) * P.team;
        P.block = 64;
        while (P.block < kMaxBlock && work >= 2 * (int64_t)P.block)
            P.block *= 2;
    }

    /* queries per launch: the workspace budget */
    budget = cu_workspace_budget(ctx);
    per_query = dim * 4 + 4 + k * 12;
    if (P.algo == ANN_CAGRA_SEARCH_SINGLE_CTA)
        per_query += P.small ? 0 : ((int64_t)4 << P.bitlen);
    else if (P.algo == ANN_CAGRA_SEARCH_MULTI_CTA)
        per_query += ((int64_t)4 << P.tbits) + (int64_t)P.n_cta * kMcItopk * 8 +
                     (P.Pf > kFinalSmemEntries ? (int64_t)P.Pf * 8 : 0);
    else
        per_query += ((int64_t)4 << P.bitlen) + 2 * (int64_t)I * 8 + (int64_t)P.Cp * 8 + (int64_t)P.P0 * 8 +
                     (int64_t)sw * 4 + 4;
    P.batch = cu_max64(1, cu_min64(req_batch, (int64_t)(budget / (size_t)per_query)));
    if (P.algo != ANN_CAGRA_SEARCH_SINGLE_CTA && P.batch > 65535) /* queries are gridDim.y there */
        P.batch = 65535;

    /* --------------------------- device data --------------------------- */
    ANN_TRY(cu_cache_get(ctx, ix, cagra_cache_build, cagra_cache_matches, cagra_cache_destroy, &cache, &owned));
    if (filtered) {
        filter_words = cu_div_up(cu_max64(ix->filter_bits, 1), 32);
        CU_MALLOC(&d_filter, (size_t)filter_words * 4);
        if (ix->filter_bits > 0)
            CU_CHECK(cudaMemcpyAsync(d_filter, ix->filter, (size_t)cu_div_up(ix->filter_bits, 32) * 4,
                                     cudaMemcpyHostToDevice, ctx->stream));
    }
    CU_MALLOC(&d_q, (size_t)P.batch * dim * sizeof(float));
    CU_MALLOC(&d_qnorm, (size_t)P.batch * sizeof(float));
    CU_MALLOC(&d_ids, (size_t)P.batch * k * sizeof(int64_t));
    CU_MALLOC(&d_dist, (size_t)P.batch * k * sizeof(float));
    if (P.algo != ANN_CAGRA_SEARCH_MULTI_CTA) {
        /* the CPU's seeds (lib/src/cagra_search.c): slot s, trial j */
        const int nrs = P.pl.num_random_samplings;
        try {
            h_seeds.resize((size_t)P.n_slots * nrs);
        } catch (...) {
            ANN_TRY(CU_FAIL(ANN_ERR_NOMEM, "cagra: out of host memory for seeds"));
        }
        for (int s = 0; s < P.n_slots; ++s)
            for (int j = 0; j < nrs; ++j) {
                const uint64_t gid = (uint64_t)s + (uint64_t)P.n_slots * (uint64_t)j;
                h_seeds[(size_t)s * nrs + j] =
                    (uint32_t)(ann_cagra_xorshift64(gid ^ P.pl.rand_xor_mask) % (uint64_t)rows);
            }
        CU_MALLOC(&d_seeds, h_seeds.size() * sizeof(uint32_t));
        CU_CHECK(cudaMemcpyAsync(d_seeds, h_seeds.data(), h_seeds.size() * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                 ctx->stream));
    }
    if (P.algo == ANN_CAGRA_SEARCH_SINGLE_CTA) {
        if (!P.small)
            CU_MALLOC(&d_hash, ((size_t)P.batch << P.bitlen) * sizeof(uint32_t));
    } else if (P.algo == ANN_CAGRA_SEARCH_MULTI_CTA) {
        CU_MALLOC(&d_hash, ((size_t)P.batch << P.tbits) * sizeof(uint32_t));
        CU_MALLOC(&d_res, (size_t)P.batch * P.n_cta * kMcItopk * sizeof(uint64_t));
        if (P.Pf > kFinalSmemEntries)
            CU_MALLOC(&d_fin, (size_t)P.batch * P.Pf * sizeof(uint64_t));
    } else {
        CU_MALLOC(&d_hash, ((size_t)P.batch << P.bitlen) * sizeof(uint32_t));
        CU_MALLOC(&d_l0, (size_t)P.batch * I * sizeof(uint64_t));
        CU_MALLOC(&d_l1, (size_t)P.batch * I * sizeof(uint64_t));
        CU_MALLOC(&d_B, (size_t)P.batch * P.Cp * sizeof(uint64_t));
        CU_MALLOC(&d_W, (size_t)P.batch * P.P0 * sizeof(uint64_t));
        CU_MALLOC(&d_par, (size_t)P.batch * sw * sizeof(uint32_t));
        CU_MALLOC(&d_np, (size_t)P.batch * sizeof(int));
        CU_MALLOC(&d_any, sizeof(unsigned));
    }

    cm.data = cache->data;
    cm.ld = cache->ld;
    cm.nvec = (int)(cache->ld * (int64_t)es / 16);
    cm.ldq = (int)cache->ld;
    cm.dim = (int)dim;
    cm.rows = rows;
    cm.graph = cache->graph;
    cm.deg = deg;
    cm.norms = cache->norms;
    cm.fam = ix->metric == ANN_METRIC_INNER_PRODUCT ? kFamDot
           : ix->metric == ANN_METRIC_COSINE        ? kFamCos
           : ix->metric == ANN_METRIC_L1            ? kFamL1
                                                    : kFamL2;
    cm.out_kind = ix->metric == ANN_METRIC_EUCLIDEAN       ? kOutSqrt
                : ix->metric == ANN_METRIC_INNER_PRODUCT ? kOutNeg
                : ix->metric == ANN_METRIC_COSINE        ? kOutCos
                                                         : kOutKey;
    cm.worst = worst;
    cm.filter = d_filter;
    cm.filter_bits = filtered ? ix->filter_bits : 0;
    cm.q = d_q;
    cm.qnorm = d_qnorm;
    cm.team = P.team;
    cm.sw = sw;
    cm.max_iter = P.pl.max_iterations;
    cm.min_iter = P.pl.min_iterations;
    cm.nrs = P.pl.num_random_samplings;
    cm.k = k;
    cm.ids = d_ids;
    cm.dist = d_dist;

    /* ------------------------------ batches ----------------------------- */
    for (int64_t b0 = 0; b0 < nq; b0 += P.batch) {
        const int64_t bq = cu_min64(P.batch, nq - b0);
        ANN_TRY(cu_upload_f32(ctx, (const char *)q->data + b0 * q->stride, bq, dim, q->stride, q->dtype, d_q));
        cagra_prep_queries<<<(unsigned)cu_div_up(bq, 128), 128, 0, ctx->stream>>>(
            d_q, bq, dim, ix->metric == ANN_METRIC_COSINE, d_qnorm);
        CU_LAUNCHED("cagra_prep_queries");
        if (P.algo == ANN_CAGRA_SEARCH_SINGLE_CTA) {
            SingleArgs a;
            std::memset(&a, 0, sizeof a);
            a.c = cm;
            a.itopk = I;
            a.Cp = P.Cp;
            a.P0 = P.P0;
            a.n_slots = P.n_slots;
            a.seeds = d_seeds;
            a.small = P.small;
            a.bitlen = P.bitlen;
            a.reset_interval = P.reset_interval;
            a.ghash = d_hash;
            a.off_R = P.off_R;
            a.off_hash = P.off_hash;
            a.off_par = P.off_par;
            a.off_fp = P.off_fp;
            a.off_warp = P.off_warp;
            a.off_misc = P.off_misc;
            ANN_TRY(CAGRA_DISPATCH(ix->dtype, launch_single, ctx, a, P, bq));
        } else if (P.algo == ANN_CAGRA_SEARCH_MULTI_CTA) {
            MultiArgs a;
            std::memset(&a, 0, sizeof a);
            a.c = cm;
            a.Mp = P.Mp;
            a.vbits = P.vbits;
            a.trav = d_hash;
            a.tbits = P.tbits;
            a.res = d_res;
            a.q0 = b0;
            a.nq_total = nq;
            a.rand_xor_mask = P.pl.rand_xor_mask;
            a.off_buf = P.off_buf;
            a.off_vis = P.off_vis;
            a.off_misc = P.off_mmisc;
            CU_CHECK(cudaMemsetAsync(d_hash, 0xff, ((size_t)bq << P.tbits) * sizeof(uint32_t), ctx->stream));
            ANN_TRY(CAGRA_DISPATCH(ix->dtype, launch_multi, ctx, a, P, bq));
            const size_t fsm = P.Pf > kFinalSmemEntries ? 0 : (size_t)P.Pf * 8;
            cagra_mc_final<<<(unsigned)bq, 256, fsm, ctx->stream>>>(cm, d_res, P.n_cta * kMcItopk, P.Pf, d_fin);
            CU_LAUNCHED("cagra_mc_final");
        } else {
            MkArgs a;
            std::memset(&a, 0, sizeof a);
            a.c = cm;
            a.itopk = I;
            a.Cp = P.Cp;
            a.P0 = P.P0;
            a.n_slots = P.n_slots;
            a.seeds = d_seeds;
            a.small = P.small;
            a.bitlen = P.bitlen;
            a.reset_interval = P.reset_interval;
            a.hash = d_hash;
            a.work = d_W;
            a.B = d_B;
            a.par = d_par;
            a.np = d_np;
            a.any = d_any;
            ANN_TRY(CAGRA_DISPATCH(ix->dtype, run_multi_kernel, ctx, a, P, bq, d_l0, d_l1));
        }
        CU_CHECK(cudaMemcpyAsync(ids + b0 * k, d_ids, (size_t)bq * k * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                 ctx->stream));
        CU_CHECK(cudaMemcpyAsync(dist + b0 * k, d_dist, (size_t)bq * k * sizeof(float), cudaMemcpyDeviceToHost,
                                 ctx->stream));
        CU_CHECK(cudaStreamSynchronize(ctx->stream));
    }

cleanup:
    if (ctx)
        (void)cudaStreamSynchronize(ctx->stream);
    cu_free(d_q);
    cu_free(d_qnorm);
    cu_free(d_ids);
    cu_free(d_dist);
    cu_free(d_filter);
    cu_free(d_seeds);
    cu_free(d_hash);
    cu_free(d_par);
    cu_free(d_res);
    cu_free(d_fin);
    cu_free(d_l0);
    cu_free(d_l1);
    cu_free(d_B);
    cu_free(d_W);
    cu_free(d_np);
    cu_free(d_any);
    if (owned && cache)
        cagra_cache_destroy(&cache->base);
    return st;
}

/*
 * topk.cuh - device top-k primitives of the CUDA backend, all ordered by
 * (distance, id) so that ties break exactly as on the CPU.
 *
 * Keys.  A candidate is one 64-bit key: the order-preserving bit pattern
 * of its float ranking score ("smaller is better": inner product is
 * carried as -dot) in the high 32 bits and a 32-bit tie-breaker that
 * orders like the id (the row number, or the rank of the id) in the low
 * 32 bits.  Comparing keys as unsigned integers is then comparing
 * (score, id) lexicographically, and all keys of one selection are
 * distinct.
 *
 * Selection.  block_select_smallest() is an MSD radix select run by one
 * thread block over one row of keys: histogram passes over digits of
 * 11, 11, 10, 11, 11 and 10 bits (most significant first) narrow down the
 * digit prefix of the k-th smallest key; it stops as soon as every key
 * sharing the prefix is needed (usually after the three score digits),
 * then one pass collects all keys below the prefix and the needed keys
 * equal to it.  Any k works and the chosen set is exact and deterministic
 * (its order in the output is not).  Histogram updates are aggregated per
 * warp with __match_any_sync, since clustered distances pile into few bins.
 * The general technique is textbook radix selection (e.g. Alabi et al.,
 * "Fast k-selection algorithms for graphics processing units", 2012).
 *
 * Sorting.  block_bitonic_sort() sorts a power-of-two array in shared or
 * global memory with one block (Batcher's bitonic network).
 */
#ifndef ANNKIT_CUDA_TOPK_CUH
#define ANNKIT_CUDA_TOPK_CUH

#include <cstdint>

#include "cuda_common.cuh"

namespace topk {

/** Threads per block of every kernel that calls block_select_smallest(). */
constexpr int kSelectThreads = 256;

/** Order-preserving map of a float to u32 (-0 is mapped like +0). */
__device__ __forceinline__ uint32_t float_order(float f)
{
    if (f == 0.0f)
        f = 0.0f;
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/** Inverse of float_order(). */
__device__ __forceinline__ float order_float(uint32_t u)
{
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    return __uint_as_float(u);
}

/** Order-preserving map of a double to u64 (-0 is mapped like +0). */
__device__ __forceinline__ uint64_t double_order(double f)
{
    if (f == 0.0)
        f = 0.0;
    uint64_t u = (uint64_t)__double_as_longlong(f);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

/** Inverse of double_order(). */
__device__ __forceinline__ double order_double(uint64_t u)
{
    u = (u & 0x8000000000000000ull) ? (u & 0x7fffffffffffffffull) : ~u;
    return __longlong_as_double((long long)u);
}

/** The 64-bit selection key of (score, tie). */
__device__ __forceinline__ uint64_t make_key(float score, uint32_t tie)
{
    return ((uint64_t)float_order(score) << 32) | tie;
}

/** Score part of a key. */
__device__ __forceinline__ float key_score(uint64_t key)
{
    return order_float((uint32_t)(key >> 32));
}

/** Tie part of a key. */
__device__ __forceinline__ uint32_t key_tie(uint64_t key)
{
    return (uint32_t)key;
}

/**
 * Warp-aggregated append: every active lane calls it, lanes with @p pred
 * get distinct consecutive slots from *counter (one atomic per warp).
 * The returned slot is meaningful only where @p pred holds.
 */
__device__ __forceinline__ unsigned warp_append(unsigned *counter, bool pred)
{
    const unsigned act = __activemask();
    const unsigned bal = __ballot_sync(act, pred);
    const int leader = __ffs(act) - 1;
    const unsigned lane = threadIdx.x & 31u;
    unsigned base = 0;
    if ((int)lane == leader && bal)
        base = atomicAdd(counter, (unsigned)__popc(bal));
    base = __shfl_sync(act, base, leader);
    return base + (unsigned)__popc(bal & ((1u << lane) - 1u));
}

/** Shared memory of block_select_smallest(). */
struct SelectShared {
    unsigned hist[2048];
    unsigned warp_sums[kSelectThreads / 32];
    unsigned bin;
    unsigned before;
    unsigned out_count;
    unsigned eq_count;
};

/**
 * The @p k smallest of the @p m keys get(0) .. get(m-1) (all distinct in
 * our uses; duplicates are handled by taking the first ones found),
 * written unordered to out[0 .. min(k, m)).  Returns min(k, m).
 * Called by all kSelectThreads threads of the block (blockDim.x must be
 * kSelectThreads, 1-D); get(i) may be called several times per i.
 */
template <class GetKey>
__device__ int64_t block_select_smallest(const GetKey &get, int64_t m, int64_t k, uint64_t *out,
                                         SelectShared &sh)
{
    const int tid = threadIdx.x;
    if (m <= k) {
        for (int64_t i = tid; i < m; i += kSelectThreads)
            out[i] = get(i);
        __syncthreads();
        return m;
    }
    if (k <= 0)
        return 0;
    uint64_t prefix = 0, mask = 0;
    unsigned need = (unsigned)k;
    bool exact = false;
    for (int pass = 0; pass < 6; ++pass) {
        /* digits of 11, 11, 10 bits in each 32-bit half: shifts 53, 42, 32, 21, 10, 0 */
        const int sub = pass % 3;
        const int shift = (pass < 3 ? 32 : 0) + (sub == 0 ? 21 : sub == 1 ? 10 : 0);
        const unsigned nbins = sub == 2 ? 1024u : 2048u;
        for (int b = tid; b < 2048; b += kSelectThreads)
            sh.hist[b] = 0;
        __syncthreads();
        for (int64_t i = tid; i < m; i += kSelectThreads) {
            const uint64_t key = get(i);
            if ((key & mask) == prefix) {
                const unsigned digit = (unsigned)(key >> shift) & (nbins - 1u);
                const unsigned act = __activemask();
                const unsigned peers = __match_any_sync(act, digit);
                if ((int)(threadIdx.x & 31u) == __ffs(peers) - 1)
                    atomicAdd(&sh.hist[digit], (unsigned)__popc(peers));
            }
        }
        __syncthreads();
        /* block scan over the bins: thread t owns bins [8t, 8t + 8) */
        constexpr int per = 2048 / kSelectThreads;
        unsigned local = 0;
        for (int j = 0; j < per; ++j) {
            const int b = tid * per + j;
            local += b < (int)nbins ? sh.hist[b] : 0u;
        }
        unsigned incl = local;
        for (int o = 1; o < 32; o <<= 1) {
            const unsigned v = __shfl_up_sync(0xffffffffu, incl, o);
            if ((tid & 31) >= o)
                incl += v;
        }
        if ((tid & 31) == 31)
            sh.warp_sums[tid >> 5] = incl;
        __syncthreads();
        unsigned excl = incl - local;
        for (int w = 0; w < (tid >> 5); ++w)
            excl += sh.warp_sums[w];
        if (excl < need && need <= excl + local) {
            unsigned acc = excl;
            for (int j = 0; j < per; ++j) {
                const int b = tid * per + j;
                const unsigned c = b < (int)nbins ? sh.hist[b] : 0u;
                if (acc + c >= need) {
                    sh.bin = (unsigned)b;
                    sh.before = acc;
                    break;
                }
                acc += c;
            }
        }
        __syncthreads();
        const unsigned bin = sh.bin;
        need -= sh.before;
        prefix |= (uint64_t)bin << shift;
        mask |= (uint64_t)(nbins - 1u) << shift;
        const bool done = sh.hist[bin] == need;
        __syncthreads(); /* everyone has read hist/bin before they are reused */
        if (done) {
            exact = true;
            break;
        }
    }
    if (tid == 0) {
        sh.out_count = 0;
        sh.eq_count = 0;
    }
    __syncthreads();
    for (int64_t i = tid; i < m; i += kSelectThreads) {
        const uint64_t key = get(i);
        const uint64_t km = key & mask;
        bool take = km < prefix;
        if (km == prefix)
            take = exact || atomicAdd(&sh.eq_count, 1u) < need;
        const unsigned slot = warp_append(&sh.out_count, take);
        if (take)
            out[slot] = key;
    }
    __syncthreads();
    return k;
}

/** A re-ranked candidate: exact distance (order-mapped double, smaller better) and tie-breaker. */
struct Ranked {
    uint64_t key;   /* double_order(distance key) */
    uint64_t tie;   /* orders like the id */
};

__device__ __forceinline__ bool less_than(uint64_t a, uint64_t b) { return a < b; }
__device__ __forceinline__ bool less_than(const Ranked &a, const Ranked &b)
{
    return a.key < b.key || (a.key == b.key && a.tie < b.tie);
}

/**
 * Sort a[0 .. n) ascending (n a power of two) with all threads of the
 * block; @p a may be in shared or global memory.  The caller synchronises
 * the block before the call (the data must be complete); the function
 * ends with a barrier.
 */
template <typename T>
__device__ void block_bitonic_sort(T *a, int n)
{
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < (n >> 1); i += blockDim.x) {
                const int lo = 2 * i - (i & (stride - 1));
                const int hi = lo + stride;
                const bool up = (lo & size) == 0;
                const T x = a[lo], y = a[hi];
                if (less_than(y, x) == up) {
                    a[lo] = y;
                    a[hi] = x;
                }
            }
            __syncthreads();
        }
    }
}

/** Sum of a double over a warp (all lanes get it). */
__device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

} // namespace topk

#endif

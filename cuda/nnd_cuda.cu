/*
 * nnd_cuda.cu - NN-Descent all-neighbours kNN graphs on CUDA; the twin of
 * lib/src/nnd_cpu.c (same contract, backend_ops.h nn_descent): rows best
 * first by (distance, id), never the row itself, no duplicates, distances
 * in the returned convention (squared L2, L2, +dot, 1 - cos, L1, bit
 * count), termination when an iteration's insertions fall below
 * termination_threshold x rows x intermediate_graph_degree.
 *
 * Algorithm: GNND (Wang et al., CIKM 2021) as cuVS implements it
 * (notes/algorithms.md 5.3-5.5), with the CPU twin's choices where the
 * reference is weak:
 *  - Graph: every row keeps W = roundUp32(intermediate_graph_degree)
 *    entries on the device, as 64-bit keys (order-preserving bits of the
 *    distance key, smaller is better, above the id: topk.cuh), sorted, with
 *    a "new" flag byte per entry.  Empty slots are ~0 (only when rows - 1 <
 *    W).
 *  - Initial graph: as on the CPU, each row's nearest rows among the rows
 *    of its nearest balanced k-means clusters (the plugin's own k-means and
 *    IVF-Flat search, 1 list per 128 rows, about 8 x (W + 1) candidates
 *    per row); hamming and small sets (rows <= 4 (K + 1)) start from a
 *    random graph: row i takes i + 1 + ((a + j b) mod (rows - 1)) mod rows
 *    for j < W with a, b drawn from the seed and b prime to rows - 1, so
 *    the ids are distinct and never i for every rows (the reference's init
 *    degenerates when rows % degree == 0, issue #2273).
 *  - Each iteration (all on the device, one kernel per step):
 *    1. sample: per row the first 32 entries flagged new (flag cleared) and
 *       the first 32 flagged old (NUM_SAMPLES = 32 each);
 *    2. reverse: every forward sample u -> v offers u to v's reverse list
 *       of 32 (new and old apart); a list keeps the 32 offers of smallest
 *       hash(u, v, iteration, seed): a uniform sample, the same whatever
 *       the thread timing (the reference keeps the first 32 to arrive);
 *    3. local join, one CTA per row u: Nw = new + reverse new, Od = old +
 *       reverse old minus Nw (each deduplicated and sorted by id, <= 64);
 *       the Nw x (Nw + Od) distances are computed in one go - on tensor
 *       cores (WMMA 16x16x16, fp16 inputs, fp32 accumulation) when
 *       dist_comp_dtype is fp16, or auto with dim > 16, else fp32 SIMT
 *       (also when a value is beyond the binary16 range); L1 and bitwise
 *       hamming (popcount of the XOR of the bytes) by SIMT kernels;
 *    4. proposals: every element a of the join offers itself its partners
 *       (Nw: every other element, Od: Nw) that beat a's current worst
 *       entry and are not in a's row yet, best first, into a's candidate
 *       set of kCand = 64 slots, until the set rejects one.  The set is
 *       lock-free (one warp per
 *       offer): a key replaces the set's largest by atomicCAS, or the entry
 *       of the same id when smaller, so it ends as the 64 best distinct
 *       proposals whatever the order (slot values only decrease, which
 *       makes a cached upper bound of its maximum a safe pre-filter).  The
 *       reference proposes only each element's closest partner into a
 *       locked list of 32.  A CPU model of this file on the consistency-
 *       test data (20000 x 64, degrees 64/128, u8 inner product) reached
 *       graph recall 0.914 when only the 8 best partners per element were
 *       offered, 0.979 with 16 and 0.987 with all of them in 20
 *       iterations, and 0.984 in 10 once partners already in the row were
 *       left out (the CPU twin: 0.985); f32 squared L2: 0.998 in 7
 *       iterations (CPU 0.998);
 *    5. merge, one warp per row: candidates not in the row are merged into
 *       the sorted row (keeping W), entering flagged new; the insertions
 *       are counted for the termination test.
 *  - Output: every row is re-ranked by exact distances from the original
 *    values (fp32 data, double accumulation; hamming from the bytes),
 *    sorted by (distance, id), and its first graph_degree entries are
 *    returned.
 * Determinism: for a given seed the samples, reverse lists, joins and
 * merges do not depend on thread timing, except in a rare race: two
 * concurrent proposals of one id to one row can both enter its candidate
 * set (the merge drops the copy, so the result stays valid, but the set
 * lost a slot).  Repeated runs are therefore identical in practice, not
 * guaranteed.  Graphs differ from the CPU's, with the same quality: the
 * CPU merges proposals after every chunk of 8192 rows and bounds them
 * differently, samples min(32, max(8, I / 4)) entries per kind, and the
 * random sequences differ.
 *
 * Device memory (W = roundUp32(I), D' = dim padded to 16 (fp16) or dim
 * (fp32; hamming: bytes padded to 4)): the compute copy N x D' x 2 (fp16)
 * or 4, norms N x 4 (L2, cosine), the graph N x W x 9, samples N x 264,
 * reverse lists N x 528, candidate sets N x 520, i.e. about
 * N x (D' x B_comp + 9 W + 1320) bytes - 2.7 GB for 1M x 128 at I = 128
 * (seeds/nn-descent.md puts 1.3 GB on the device and 2.2 GB on the host
 * for the same build; here the graph lives on the device and the host
 * holds only the output).  The initial IVF search runs first (its own
 * device cache of the data), the final re-rank last (fp32 data, after the
 * iteration buffers are freed).
 */
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "cuda_common.cuh"
#include "topk.cuh"

namespace {

constexpr int kS = 32;                 /* NUM_SAMPLES: new and old samples per row */
constexpr int kNwMax = 2 * kS;         /* Nw, Od <= 64 */
constexpr int kJoinMax = 2 * kNwMax;   /* the join's rows, m <= 128 */
constexpr int kCand = 64;              /* candidate set per row and iteration */
constexpr int kJoinThreads = 256;
constexpr int kRowWarps = 4;           /* warps per block of the warp-per-row kernels with shared memory */
constexpr unsigned long long kEmpty = ~0ull;
constexpr uint32_t kNoId = 0xffffffffu;
constexpr unsigned kFull = 0xffffffffu;

/* join shared memory: vectors of a dim chunk, then (aliased) the distance matrix */
constexpr int kHC = 128;               /* fp16 dims per chunk */
constexpr int kHP = kHC + 8;           /* fp16 row pitch (WMMA: multiple of 8, rows 32-byte aligned) */
constexpr int kFC = 64;                /* fp32 / word elements per chunk */
constexpr int kFP = kFC + 1;           /* their row pitch (odd: conflict-free columns) */
constexpr int kDP = 132;               /* distance matrix pitch (WMMA float store: multiple of 4) */
constexpr int kJoinSmem = kJoinMax * kHP * 2;
static_assert(kJoinMax * kFP * 4 <= kJoinSmem && kNwMax * kDP * 4 <= kJoinSmem, "join shared memory");

constexpr int64_t kInitBatch = 65536;  /* rows per IVF search batch of the initial graph */
constexpr int64_t kOutBatch = 262144;  /* rows per output batch */

/* Metric classes of this file (kernels take them as a runtime argument). */
enum NndMetric : int { kNL2 = 0, kNIP = 1, kNCos = 2, kNL1 = 3, kNHam = 4 };
/* Join distance kernels. */
enum JoinMode : int { kJoinWmma = 0, kJoinDot = 1, kJoinL1 = 2, kJoinHam = 3 };

int nnd_metric_kind(ann_metric m)
{
    switch (m) {
    case ANN_METRIC_INNER_PRODUCT: return kNIP;
    case ANN_METRIC_COSINE: return kNCos;
    case ANN_METRIC_L1: return kNL1;
    case ANN_METRIC_HAMMING: return kNHam;
    default: return kNL2;
    }
}

/* ------------------------- hashing, random rows ------------------------- */

__host__ __device__ __forceinline__ uint64_t nnd_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__host__ __device__ __forceinline__ uint64_t nnd_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        const uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * The random row of i: ids i + 1 + ((a + j b) mod (n - 1)) mod n for
 * j = 0 .. n - 2 are the n - 1 other rows, each once (b is prime to n - 1).
 */
__host__ __device__ __forceinline__ void nnd_affine(uint64_t seed, int64_t i, int64_t n, uint64_t *a, uint64_t *b)
{
    const uint64_t m = (uint64_t)n - 1;
    *a = nnd_mix(seed ^ ((uint64_t)i * 0xd1b54a32d192ed03ull)) % m;
    uint64_t bb = 1;
    if (m > 2) {
        bb = 1 + nnd_mix(~seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull)) % (m - 1);
        while (nnd_gcd(bb, m) != 1)
            bb = bb % (m - 1) + 1;
    }
    *b = bb;
}

__host__ __device__ __forceinline__ uint32_t nnd_affine_id(int64_t i, int64_t n, uint64_t a, uint64_t b, uint64_t j)
{
    const uint64_t m = (uint64_t)n - 1;
    return (uint32_t)(((uint64_t)i + 1 + (a + j * b) % m) % (uint64_t)n);
}

/* ------------------------------ device helpers ------------------------------ */

/* Sort a[0 .. n) ascending (n a power of two) with the 32 lanes of one warp. */
template <typename T>
__device__ void warp_bitonic_sort(T *a, int n)
{
    const int lane = threadIdx.x & 31;
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = lane; i < (n >> 1); i += 32) {
                const int lo = 2 * i - (i & (stride - 1));
                const int hi = lo + stride;
                const bool up = (lo & size) == 0;
                const T x = a[lo], y = a[hi];
                if ((y < x) == up) {
                    a[lo] = y;
                    a[hi] = x;
                }
            }
            __syncwarp();
        }
    }
}

/* Number of entries of the ascending a[0 .. len) below key. */
__device__ __forceinline__ int count_below(const unsigned long long *a, int len, unsigned long long key)
{
    int lo = 0, hi = len;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (a[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

__device__ __forceinline__ unsigned long long warp_min_u64(unsigned long long v)
{
    for (int o = 16; o > 0; o >>= 1) {
        const unsigned long long w = __shfl_xor_sync(kFull, v, o);
        v = w < v ? w : v;
    }
    return v;
}

/* The distance key (smaller is better) from a dot product and the norms. */
__device__ __forceinline__ float key_from_dot(int mk, float dot, float na, float nb)
{
    if (mk == kNIP)
        return -dot;
    if (mk == kNCos) {
        const float den = na * nb;
        return den > 0.0f ? 1.0f - dot / den : 1.0f;
    }
    const float v = na + nb - 2.0f * dot;
    return v > 0.0f ? v : 0.0f;
}

/*
 * Bounded sets of keys.  A set of CAP slots (~0 = empty) holds the CAP
 * smallest keys offered to it, whatever the order of the offers: an offer
 * replaces the set's largest key by atomicCAS when smaller (retrying when
 * the slot changed under it), so every write replaces a value by a smaller
 * one and slot values only decrease.  Hence *smax, lowered to the largest
 * key seen once the set is full (~0 before), is always an upper bound of
 * the set's maximum, and offers not below it can be dropped at once.
 */

/* Offer key to a set of CAP slots, by one thread (reverse lists: ids are offered once). */
template <int CAP>
__device__ void set_offer(unsigned long long *slots, unsigned long long *smax, unsigned long long key)
{
    if (key >= __ldcg(smax))
        return;
    for (;;) {
        unsigned long long mx = 0, mx2 = 0;
        int ms = -1;
#pragma unroll 8
        for (int s = 0; s < CAP; s += 2) {
            const ulonglong2 p = __ldcg(reinterpret_cast<const ulonglong2 *>(slots + s));
            const unsigned long long v2[2] = {p.x, p.y};
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const unsigned long long v = v2[h];
                if (ms < 0 || v > mx) {
                    mx2 = ms < 0 ? 0 : mx;
                    mx = v;
                    ms = s + h;
                } else if (v > mx2) {
                    mx2 = v;
                }
            }
        }
        if (key >= mx) {
            if (mx != kEmpty)
                atomicMin(smax, mx);
            return;
        }
        if (atomicCAS(slots + ms, mx, key) == mx) {
            const unsigned long long nm = mx2 > key ? mx2 : key;
            if (nm != kEmpty)
                atomicMin(smax, nm);
            return;
        }
    }
}

/*
 * Offer key (the same in every lane) to a candidate set of kCand = 64
 * slots, by a whole warp (lane l reads slots l and 32 + l).  An entry of
 * the same id (low 32 bits) is replaced when the key is smaller, else the
 * offer is dropped.  Returns 1 when the key entered, 0 when its id was
 * there already, -1 when the key is not below the set's maximum (nor is
 * any larger key: the caller offers keys in ascending order and stops).
 */
__device__ int warp_set_offer(unsigned long long *slots, unsigned long long *smax, unsigned long long key)
{
    const int lane = threadIdx.x & 31;
    const uint32_t id = (uint32_t)key;
    for (;;) {
        if (key >= __ldcg(smax))
            return -1;
        const unsigned long long a = __ldcg(slots + lane), b = __ldcg(slots + 32 + lane);
        const unsigned pa = __ballot_sync(kFull, a != kEmpty && (uint32_t)a == id);
        const unsigned pb = __ballot_sync(kFull, b != kEmpty && (uint32_t)b == id);
        if (pa | pb) {
            const int sl = pa ? __ffs((int)pa) - 1 : 32 + __ffs((int)pb) - 1;
            const unsigned long long old = __shfl_sync(kFull, sl < 32 ? a : b, sl & 31);
            if (old <= key)
                return 0;
            unsigned long long prev = 0;
            if (lane == 0)
                prev = atomicCAS(slots + sl, old, key);
            if (__shfl_sync(kFull, prev, 0) == old)
                return 1;
            continue;
        }
        /* the largest slot (ties: the lower slot), the same in every lane */
        unsigned long long mx = a >= b ? a : b;
        int ms = a >= b ? lane : 32 + lane;
        for (int o = 16; o > 0; o >>= 1) {
            const unsigned long long om = __shfl_xor_sync(kFull, mx, o);
            const int os = __shfl_xor_sync(kFull, ms, o);
            if (om > mx || (om == mx && os < ms)) {
                mx = om;
                ms = os;
            }
        }
        if (key >= mx) {
            if (lane == 0 && mx != kEmpty)
                atomicMin(smax, mx);
            return -1;
        }
        /* the largest key besides slot ms: the set's maximum once key replaces it */
        unsigned long long rest = ms == lane ? b : ms == 32 + lane ? a : (a > b ? a : b);
        for (int o = 16; o > 0; o >>= 1) {
            const unsigned long long r = __shfl_xor_sync(kFull, rest, o);
            rest = r > rest ? r : rest;
        }
        unsigned long long prev = 0;
        if (lane == 0)
            prev = atomicCAS(slots + ms, mx, key);
        if (__shfl_sync(kFull, prev, 0) == mx) {
            const unsigned long long nm = rest > key ? rest : key;
            if (lane == 0 && nm != kEmpty)
                atomicMin(smax, nm);
            return 1;
        }
    }
}

/* ------------------------------ kernels: setup ------------------------------ */

/*
 * nnd_to_half: dst[r][k] = src[r][k] rounded to binary16 for k < d, 0 for
 * d <= k < ld; *overflow = 1 when a value is not finite or beyond the
 * binary16 range.
 * Launch: 1-D grid-stride over rows x ld, any shape.
 * Layout: src row-major rows x d f32, dst row-major rows x ld halves.
 */
__global__ void nnd_to_half(const float *__restrict__ src, int64_t rows, int64_t d, int64_t ld,
                            __half *__restrict__ dst, unsigned *__restrict__ overflow)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < rows * ld;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / ld, k = e % ld;
        const float v = k < d ? src[r * d + k] : 0.0f;
        if (!(fabsf(v) <= 65504.0f))
            *overflow = 1u;
        dst[e] = __float2half_rn(v);
    }
}

/*
 * nnd_random_init: row i of the graph = the first min(W, n - 1) ids of its
 * random sequence (nnd_affine) as keys with distance 0 (ranked later),
 * the remaining slots empty.
 * Launch: 1-D, one warp per row (blockDim a multiple of 32).
 * Layout: graph row-major n x W keys.
 */
__global__ void nnd_random_init(unsigned long long *__restrict__ graph, int W, int64_t n, uint64_t seed)
{
    const int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (i >= n)
        return;
    uint64_t a = 0, b = 1;
    if (lane == 0)
        nnd_affine(seed, i, n, &a, &b);
    a = __shfl_sync(kFull, a, 0);
    b = __shfl_sync(kFull, b, 0);
    const int64_t valid = n - 1 < W ? n - 1 : W;
    for (int j = lane; j < W; j += 32)
        graph[i * W + j] = j < valid ? (unsigned long long)nnd_affine_id(i, n, a, b, (uint64_t)j) : kEmpty;
}

/* ------------------------------ row distances ------------------------------ */

/* Distance key between rows a and b of a float/half matrix (row stride ld, d used), double accumulation. */
template <typename T>
__device__ double row_dist(const T *__restrict__ x, int64_t ld, int64_t d, int mk, int64_t a, int64_t b)
{
    const T *xa = x + a * ld, *xb = x + b * ld;
    double s = 0;
    if (mk == kNL2) {
        for (int64_t k = 0; k < d; ++k) {
            const double u = (double)to_f32(xa[k]) - (double)to_f32(xb[k]);
            s += u * u;
        }
        return s;
    }
    if (mk == kNL1) {
        for (int64_t k = 0; k < d; ++k)
            s += fabs((double)to_f32(xa[k]) - (double)to_f32(xb[k]));
        return s;
    }
    if (mk == kNIP) {
        for (int64_t k = 0; k < d; ++k)
            s += (double)to_f32(xa[k]) * (double)to_f32(xb[k]);
        return -s;
    }
    double aa = 0, bb = 0;
    for (int64_t k = 0; k < d; ++k) {
        const double u = to_f32(xa[k]), v = to_f32(xb[k]);
        s += u * v;
        aa += u * u;
        bb += v * v;
    }
    return (aa > 0 && bb > 0) ? 1.0 - s / (sqrt(aa) * sqrt(bb)) : 1.0;
}

/* Hamming distance between rows a and b of packed bytes (ld 32-bit words per row, zero padded). */
__device__ double row_dist(const uint32_t *__restrict__ x, int64_t ld, int64_t d, int mk, int64_t a, int64_t b)
{
    (void)d;
    (void)mk;
    const uint32_t *xa = x + a * ld, *xb = x + b * ld;
    int c = 0;
    for (int64_t k = 0; k < ld; ++k)
        c += __popc(xa[k] ^ xb[k]);
    return (double)c;
}

/*
 * nnd_rank: rows r0 .. r0 + rows of the graph get the distance keys of
 * their entries from x (lane-per-entry, row_dist) and are sorted by
 * (distance, id).  Without out_ids the sorted keys are written back to the
 * graph; with out_ids the first deg entries go to out_ids/out_dist (rows
 * relative to r0) in the returned convention (sqrt for euclidean, +dot for
 * inner product; out_dist may be NULL).
 * Launch: 1-D, kRowWarps warps per block, one warp per row; dynamic shared
 * memory kRowWarps x P x 8 bytes.
 * Layout: graph row-major n x W keys (ids in the low 32 bits, ~0 empty);
 * x row-major with row stride ld elements; P a power of two >= W.
 */
template <typename T>
__global__ void __launch_bounds__(kRowWarps * 32)
    nnd_rank(const T *__restrict__ x, int64_t ld, int64_t d, int mk, unsigned long long *__restrict__ graph, int W,
             int P, int64_t r0, int64_t rows, int deg, bool sqrt_out, uint32_t *__restrict__ out_ids,
             float *__restrict__ out_dist)
{
    extern __shared__ unsigned long long rk_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t r = blockIdx.x * (int64_t)kRowWarps + warp;
    if (r >= rows)
        return;
    const int64_t i = r0 + r;
    unsigned long long *s = rk_smem + (int64_t)warp * P;
    unsigned long long *g = graph + i * W;
    for (int j = lane; j < P; j += 32) {
        unsigned long long key = kEmpty;
        if (j < W) {
            const unsigned long long e = g[j];
            if (e != kEmpty) {
                const uint32_t id = (uint32_t)e;
                key = topk::make_key((float)row_dist(x, ld, d, mk, i, (int64_t)id), id);
            }
        }
        s[j] = key;
    }
    __syncwarp();
    warp_bitonic_sort(s, P);
    if (!out_ids) {
        for (int j = lane; j < W; j += 32)
            g[j] = s[j];
        return;
    }
    for (int j = lane; j < deg; j += 32) {
        const unsigned long long key = s[j];
        out_ids[r * deg + j] = (uint32_t)key;
        if (out_dist) {
            const float v = topk::key_score(key);
            out_dist[r * deg + j] = sqrt_out ? sqrtf(v) : mk == kNIP ? -v : v;
        }
    }
}

/* ------------------------------ kernels: iteration ------------------------------ */

/*
 * nnd_sample: forward samples of row i: the first kS entries flagged new
 * (their flags cleared) into newf[i], the first kS flagged old into
 * oldf[i], counts in nnew/nold (the CPU twin's rule, in row order).
 * Launch: 1-D, one warp per row.
 * Layout: graph/flags row-major n x W (W a multiple of 32); newf/oldf n x kS.
 */
__global__ void nnd_sample(const unsigned long long *__restrict__ graph, uint8_t *__restrict__ flags, int W,
                           int64_t n, uint32_t *__restrict__ newf, int32_t *__restrict__ nnew,
                           uint32_t *__restrict__ oldf, int32_t *__restrict__ nold)
{
    const int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (i >= n)
        return;
    const unsigned lt = (1u << lane) - 1u;
    int nf = 0, of = 0;
    for (int c0 = 0; c0 < W && (nf < kS || of < kS); c0 += 32) {
        const int64_t e = i * W + c0 + lane;
        const unsigned long long key = graph[e];
        const bool valid = key != kEmpty;
        const bool fl = flags[e] != 0;
        const bool isn = valid && fl, iso = valid && !fl;
        const unsigned bn = __ballot_sync(kFull, isn), bo = __ballot_sync(kFull, iso);
        const int pn = nf + __popc(bn & lt), po = of + __popc(bo & lt);
        if (isn && pn < kS) {
            newf[i * kS + pn] = (uint32_t)key;
            flags[e] = 0;
        }
        if (iso && po < kS)
            oldf[i * kS + po] = (uint32_t)key;
        nf = min(kS, nf + __popc(bn));
        of = min(kS, of + __popc(bo));
    }
    if (lane == 0) {
        nnew[i] = nf;
        nold[i] = of;
    }
}

/*
 * nnd_reverse: every forward sample v of u (new and old apart) offers u to
 * v's reverse set with priority hash(u, v, salt): each set keeps the kS
 * offers of smallest (priority, u).
 * Launch: 1-D grid over n x 2 kS threads (thread = (u, kind, j)), any block
 * size.
 * Layout: newf/oldf n x kS with counts nnew/nold; revn/revo n x kS keys
 * (priority << 32 | u, ~0 empty, reset before), revn_max/revo_max n
 * (reset to ~0 before).
 */
__global__ void nnd_reverse(const uint32_t *__restrict__ newf, const int32_t *__restrict__ nnew,
                            const uint32_t *__restrict__ oldf, const int32_t *__restrict__ nold, int64_t n,
                            uint64_t salt, unsigned long long *revn, unsigned long long *revn_max,
                            unsigned long long *revo, unsigned long long *revo_max)
{
    const int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    const int64_t u = e / (2 * kS);
    if (u >= n)
        return;
    const int kind = (int)(e % (2 * kS)) / kS, j = (int)(e % kS);
    if (j >= (kind ? nold[u] : nnew[u]))
        return;
    const uint32_t v = (kind ? oldf : newf)[u * kS + j];
    const uint32_t pri = (uint32_t)(nnd_mix(salt ^ ((uint64_t)u << 32 | v) ^ ((uint64_t)kind << 63)) >> 32);
    const unsigned long long key = ((unsigned long long)pri << 32) | (uint32_t)u;
    if (kind)
        set_offer<kS>(revo + (int64_t)v * kS, revo_max + v, key);
    else
        set_offer<kS>(revn + (int64_t)v * kS, revn_max + v, key);
}

/*
 * Dot products (WMMA, fp16 in, fp32 out): D[i][j] = x[ids[i]] . x[ids[j]]
 * for i < m1 (rounded up to 16), j < m (rounded up to 16), dims in chunks
 * of kHC through shared memory; each warp keeps up to 4 16x16 output tiles
 * in registers across the chunks.  Called by the whole CTA; buf is the
 * join's shared buffer, D aliases it (written after the last chunk).
 */
__device__ void join_dots_wmma(const __half *__restrict__ x, int64_t ld, const uint32_t *ids, int m1, int m,
                               unsigned char *buf, float *D)
{
    namespace wmma = nvcuda::wmma;
    __half *xs = reinterpret_cast<__half *>(buf);
    const int tid = threadIdx.x, warp = tid >> 5;
    const int MP = (m + 15) & ~15, M1P = (m1 + 15) & ~15;
    const int T2 = MP / 16, ntiles = (M1P / 16) * T2;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4];
#pragma unroll
    for (int q = 0; q < 4; ++q)
        wmma::fill_fragment(acc[q], 0.0f);
    for (int64_t k0 = 0; k0 < ld; k0 += kHC) {
        const int cw = (int)(ld - k0 < kHC ? ld - k0 : kHC); /* a multiple of 16 */
        const int vecs = cw / 8;                              /* 16-byte vectors per row */
        __syncthreads();                                      /* the previous chunk is consumed */
        for (int e = tid; e < MP * vecs; e += kJoinThreads) {
            const int r = e / vecs, c = e % vecs;
            uint4 v = make_uint4(0u, 0u, 0u, 0u);
            if (r < m)
                v = *reinterpret_cast<const uint4 *>(x + (int64_t)ids[r] * ld + k0 + c * 8);
            *reinterpret_cast<uint4 *>(xs + r * kHP + c * 8) = v;
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int tile = warp + 8 * q;
            if (tile < ntiles) {
                const int ti = tile / T2, tj = tile % T2;
                for (int kk = 0; kk < cw; kk += 16) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
                    wmma::load_matrix_sync(fa, xs + ti * 16 * kHP + kk, kHP);
                    wmma::load_matrix_sync(fb, xs + tj * 16 * kHP + kk, kHP);
                    wmma::mma_sync(acc[q], fa, fb, acc[q]);
                }
            }
        }
    }
    __syncthreads(); /* every warp is done with xs before D overwrites it */
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int tile = warp + 8 * q;
        if (tile < ntiles) {
            const int ti = tile / T2, tj = tile % T2;
            wmma::store_matrix_sync(D + ti * 16 * kDP + tj * 16, acc[q], kDP, wmma::mem_row_major);
        }
    }
    __syncthreads();
}

/*
 * SIMT distances: D[i][j] for i < m1, j < m of dot products (kJoinDot), L1
 * (kJoinL1) from f32 rows, or hamming (kJoinHam) from 32-bit words.  Each
 * thread owns rows ib + 16 r (r < 4) and columns jb + 16 c (c < 8),
 * ib = tid / 16, jb = tid % 16; elements go through shared memory in
 * chunks of kFC (pitch kFP, odd: the 16 columns a warp reads hit distinct
 * banks).  Called by the whole CTA; D aliases buf.
 */
template <int kMode>
__device__ void join_dists_simt(const void *__restrict__ xv, int64_t ld, const uint32_t *ids, int m1, int m,
                                unsigned char *buf, float *D)
{
    typedef typename std::conditional<kMode == kJoinHam, uint32_t, float>::type T;
    const T *x = static_cast<const T *>(xv);
    T *xs = reinterpret_cast<T *>(buf);
    const int tid = threadIdx.x, ib = tid >> 4, jb = tid & 15;
    float acc[4][8];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c)
            acc[r][c] = 0.0f;
    for (int64_t k0 = 0; k0 < ld; k0 += kFC) {
        const int cw = (int)(ld - k0 < kFC ? ld - k0 : kFC);
        __syncthreads();
        for (int e = tid; e < kJoinMax * cw; e += kJoinThreads) {
            const int r = e / cw, c = e % cw;
            xs[r * kFP + c] = r < m ? x[(int64_t)ids[r] * ld + k0 + c] : (T)0;
        }
        __syncthreads();
        for (int k = 0; k < cw; ++k) {
            T a[4], b[8];
#pragma unroll
            for (int r = 0; r < 4; ++r)
                a[r] = xs[(ib + 16 * r) * kFP + k];
#pragma unroll
            for (int c = 0; c < 8; ++c)
                b[c] = xs[(jb + 16 * c) * kFP + k];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int c = 0; c < 8; ++c) {
                    if (kMode == kJoinHam)
                        acc[r][c] += (float)__popc((uint32_t)a[r] ^ (uint32_t)b[c]);
                    else if (kMode == kJoinL1)
                        acc[r][c] += fabsf((float)a[r] - (float)b[c]);
                    else
                        acc[r][c] = fmaf((float)a[r], (float)b[c], acc[r][c]);
                }
        }
    }
    __syncthreads(); /* xs is dead before D overwrites it */
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) {
            const int i = ib + 16 * r, j = jb + 16 * c;
            if (i < m1 && j < m)
                D[i * kDP + j] = acc[r][c];
        }
    __syncthreads();
}

/*
 * nnd_join: the local join of row u = blockIdx.x.  Nw = new forward +
 * reverse samples, Od = old ones minus Nw (deduplicated, sorted by id);
 * distance keys of the Nw x (Nw + Od) pairs; every element offers its
 * partners (Nw: every other element; Od: Nw) that beat its current worst
 * entry and its candidate bound and are not in its row to its candidate
 * set, best first, until the set rejects one (one warp per element).
 * Launch: grid (n), block kJoinThreads (256); static shared memory ~37 KB.
 * Layout: x the compute copy, row stride ld (halves: a multiple of 16,
 * zero padded; f32: dim; words: ceil(dim / 4)); nrm per row (squared L2
 * norm, L2 norm for cosine; NULL otherwise); graph n x W keys; samples as
 * nnd_sample/nnd_reverse; cand n x kCand keys, cand_max n (reset to ~0).
 */
template <int kMode>
__global__ void __launch_bounds__(kJoinThreads)
    nnd_join(const void *__restrict__ xv, int64_t ld, const float *__restrict__ nrm, int mk,
             const unsigned long long *__restrict__ graph, int W, const uint32_t *__restrict__ newf,
             const int32_t *__restrict__ nnew, const uint32_t *__restrict__ oldf, const int32_t *__restrict__ nold,
             const unsigned long long *__restrict__ revn, const unsigned long long *__restrict__ revo,
             unsigned long long *cand, unsigned long long *cand_max)
{
    __shared__ __align__(128) unsigned char s_buf[kJoinSmem];
    __shared__ uint32_t s_ids[kJoinMax];
    __shared__ uint32_t s_lists[2][kNwMax];
    __shared__ unsigned long long s_thr[kJoinMax];
    __shared__ float s_nrm[kJoinMax];
    __shared__ int s_cnt[2];
    const int64_t u = blockIdx.x;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned lt = (1u << lane) - 1u;

    /* 1. warp 0 builds Nw into s_ids, warp 1 the old list into s_lists[1] */
    if (warp < 2) {
        uint32_t *lst = s_lists[warp];
        const int nf = warp == 0 ? nnew[u] : nold[u];
        const uint32_t *fw = (warp == 0 ? newf : oldf) + u * kS;
        const unsigned long long rv = (warp == 0 ? revn : revo)[u * kS + lane];
        lst[lane] = lane < nf ? fw[lane] : kNoId;
        lst[32 + lane] = rv == kEmpty ? kNoId : (uint32_t)rv;
        __syncwarp();
        warp_bitonic_sort(lst, kNwMax);
        const uint32_t v0 = lst[lane], v1 = lst[32 + lane];
        const bool k0 = v0 != kNoId && (lane == 0 || v0 != lst[lane - 1]);
        const bool k1 = v1 != kNoId && v1 != lst[31 + lane];
        const unsigned b0 = __ballot_sync(kFull, k0), b1 = __ballot_sync(kFull, k1);
        __syncwarp(); /* every lane has read lst before it is compacted in place */
        uint32_t *dst = warp == 0 ? s_ids : lst;
        if (k0)
            dst[__popc(b0 & lt)] = v0;
        if (k1)
            dst[__popc(b0) + __popc(b1 & lt)] = v1;
        if (lane == 0)
            s_cnt[warp] = __popc(b0) + __popc(b1);
    }
    __syncthreads();
    const int m1 = s_cnt[0];
    if (m1 == 0)
        return;
    /* 2. Od = old list minus Nw, appended to s_ids */
    if (warp == 0) {
        const int m2 = s_cnt[1];
        bool keep[2];
        uint32_t val[2];
#pragma unroll
        for (int q = 0; q < 2; ++q) {
            const int idx = lane + 32 * q;
            val[q] = idx < m2 ? s_lists[1][idx] : kNoId;
            bool in = false;
            if (idx < m2) { /* binary search in the sorted Nw */
                int lo = 0, hi = m1;
                while (lo < hi) {
                    const int mid = (lo + hi) >> 1;
                    if (s_ids[mid] < val[q])
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                in = lo < m1 && s_ids[lo] == val[q];
            }
            keep[q] = idx < m2 && !in;
        }
        const unsigned b0 = __ballot_sync(kFull, keep[0]), b1 = __ballot_sync(kFull, keep[1]);
        __syncwarp(); /* every lane has read s_cnt[1] */
        if (keep[0])
            s_ids[m1 + __popc(b0 & lt)] = val[0];
        if (keep[1])
            s_ids[m1 + __popc(b0) + __popc(b1 & lt)] = val[1];
        if (lane == 0)
            s_cnt[1] = __popc(b0) + __popc(b1);
    }
    __syncthreads();
    const int m = m1 + s_cnt[1];
    if (m < 2)
        return;

    /* 3. bounds and norms of the elements */
    for (int t = tid; t < m; t += kJoinThreads) {
        const uint32_t id = s_ids[t];
        const unsigned long long worst = graph[(int64_t)id * W + W - 1];
        const unsigned long long cm = __ldcg(cand_max + id);
        s_thr[t] = worst < cm ? worst : cm;
        s_nrm[t] = nrm ? nrm[id] : 0.0f;
    }
    /* 4. distances D[i][j], i < m1, j < m (the helpers start and end with a barrier) */
    float *D = reinterpret_cast<float *>(s_buf);
    if (kMode == kJoinWmma)
        join_dots_wmma(static_cast<const __half *>(xv), ld, s_ids, m1, m, s_buf, D);
    else
        join_dists_simt<kMode>(xv, ld, s_ids, m1, m, s_buf, D);
    if (kMode == kJoinWmma || kMode == kJoinDot) {
        for (int e = tid; e < m1 * m; e += kJoinThreads) {
            const int i = e / m, j = e % m;
            D[i * kDP + j] = key_from_dot(mk, D[i * kDP + j], s_nrm[i], s_nrm[j]);
        }
        __syncthreads();
    }

    /* 5. proposals: one warp per target element t */
    for (int t = warp; t < m; t += kJoinThreads / 32) {
        const unsigned long long thr = s_thr[t];
        unsigned long long c[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int j = lane + 32 * q;
            c[q] = kEmpty;
            const bool pair = t < m1 ? (j < m && j != t) : (j < m1);
            if (pair) {
                const float dd = t < m1 ? D[t * kDP + j] : D[j * kDP + t];
                const unsigned long long key = topk::make_key(dd, s_ids[j]);
                if (key < thr)
                    c[q] = key;
            }
        }
        const uint32_t tgt = s_ids[t];
        /* drop the partners already in the target's row (they would crowd its candidate set) */
        if (__any_sync(kFull, (c[0] & c[1] & c[2] & c[3]) != kEmpty)) {
            const unsigned long long *trow = graph + (int64_t)tgt * W;
            for (int c0 = 0; c0 < W; c0 += 32) {
                const uint32_t rid = (uint32_t)trow[c0 + lane];
                for (int l = 0; l < 32; ++l) {
                    const uint32_t x = __shfl_sync(kFull, rid, l);
#pragma unroll
                    for (int q = 0; q < 4; ++q)
                        if ((uint32_t)c[q] == x)
                            c[q] = kEmpty; /* an empty slot (id ~0) matches only empty keys */
                }
            }
        }
        /* offer the others best first; the first one the set rejects ends the target */
        unsigned long long *cs = cand + (int64_t)tgt * kCand, *cm = cand_max + tgt;
        for (;;) {
            unsigned long long lm = c[0];
#pragma unroll
            for (int q = 1; q < 4; ++q)
                lm = c[q] < lm ? c[q] : lm;
            const unsigned long long wm = warp_min_u64(lm);
            if (wm == kEmpty)
                break;
#pragma unroll
            for (int q = 0; q < 4; ++q)
                if (c[q] == wm)
                    c[q] = kEmpty; /* keys are distinct (distinct partner ids) */
            if (warp_set_offer(cs, cm, wm) < 0)
                break;
        }
    }
}

/*
 * nnd_merge: the candidates of row v (valid: not empty, below the row's
 * worst key, id not in the row, first of their id) are merged into the
 * sorted row, keeping W entries; those that enter are flagged new and
 * counted into *updates.
 * Launch: 1-D, kRowWarps warps per block, one warp per row; dynamic shared
 * memory kRowWarps x (W x 9 + 3 x kCand x 8, rounded up to 8) bytes.
 * Layout: graph/flags row-major n x W; cand n x kCand keys.
 */
__global__ void __launch_bounds__(kRowWarps * 32)
    nnd_merge(unsigned long long *__restrict__ graph, uint8_t *__restrict__ flags, int W, int64_t n,
              const unsigned long long *__restrict__ cand, unsigned long long *__restrict__ updates)
{
    extern __shared__ unsigned long long mg_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t v = blockIdx.x * (int64_t)kRowWarps + warp;
    if (v >= n)
        return;
    const int per = W + 3 * kCand + (W + 7) / 8; /* 8-byte words per warp */
    unsigned long long *s_row = mg_smem + (int64_t)warp * per;
    unsigned long long *s_c = s_row + W;        /* the raw candidates */
    unsigned long long *s_v = s_c + kCand;      /* valid ones (others ~0) */
    unsigned long long *s_sorted = s_v + kCand; /* valid ones, ascending */
    uint8_t *s_fl = reinterpret_cast<uint8_t *>(s_sorted + kCand);

    const unsigned long long c0 = cand[v * kCand + lane], c1 = cand[v * kCand + 32 + lane];
    if (!__any_sync(kFull, c0 != kEmpty || c1 != kEmpty))
        return;
    unsigned long long *g = graph + v * W;
    uint8_t *f = flags + v * W;
    for (int j = lane; j < W; j += 32) {
        s_row[j] = g[j];
        s_fl[j] = f[j];
    }
    s_c[lane] = c0;
    s_c[32 + lane] = c1;
    __syncwarp();
    const unsigned long long worst = s_row[W - 1];
    bool ok[2];
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        const int slot = lane + 32 * q;
        const unsigned long long c = q ? c1 : c0;
        const uint32_t id = (uint32_t)c;
        bool good = c != kEmpty && c < worst;
        for (int t = 0; t < W && good; ++t)
            good = (uint32_t)s_row[t] != id; /* empty slots hold id ~0, never a row */
        for (int t = 0; t < kCand && good; ++t) {
            const unsigned long long o = s_c[t];
            if (t != slot && o != kEmpty && (uint32_t)o == id && (o < c || (o == c && t < slot)))
                good = false;
        }
        ok[q] = good;
        s_v[slot] = good ? c : kEmpty;
    }
    const int nc = __popc(__ballot_sync(kFull, ok[0])) + __popc(__ballot_sync(kFull, ok[1]));
    if (nc == 0)
        return;
    __syncwarp();
    int rank[2] = {0, 0};
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        if (!ok[q])
            continue;
        const unsigned long long c = q ? c1 : c0;
        int r = 0;
        for (int t = 0; t < kCand; ++t)
            r += s_v[t] < c;
        rank[q] = r;
        s_sorted[r] = c;
    }
    __syncwarp();
    for (int j = lane; j < W; j += 32) {
        const int pos = j + count_below(s_sorted, nc, s_row[j]);
        if (pos < W) {
            g[pos] = s_row[j];
            f[pos] = s_fl[j];
        }
    }
    unsigned long long ins = 0;
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        if (!ok[q])
            continue;
        const unsigned long long c = q ? c1 : c0;
        const int pos = rank[q] + count_below(s_row, W, c);
        if (pos < W) {
            g[pos] = c;
            f[pos] = 1;
            ++ins;
        }
    }
    for (int o = 16; o > 0; o >>= 1)
        ins += __shfl_xor_sync(kFull, ins, o);
    if (lane == 0 && ins)
        atomicAdd(updates, ins);
}

unsigned grid_for(int64_t work, int threads)
{
    const int64_t b = cu_div_up(work, threads);
    return (unsigned)(b < 1 ? 1 : b > 2147483647 ? 2147483647 : b);
}

unsigned grid_stride_blocks(int64_t work, int threads)
{
    const int64_t b = cu_div_up(work, threads);
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

/* ------------------------------ host side ------------------------------ */

/* Device buffers of one build. */
struct Nnd {
    CuCtx *ctx = nullptr;
    int64_t n = 0, d = 0;
    int K = 0, W = 0, deg = 0;
    int mk = kNL2;
    int mode = kJoinDot;
    int64_t ld = 0;                   /* elements (halves, floats, words) per row of x */
    void *x = nullptr;                /* compute copy */
    float *nrm = nullptr;
    unsigned long long *graph = nullptr;
    uint8_t *flags = nullptr;
    uint32_t *newf = nullptr, *oldf = nullptr;
    int32_t *nnew = nullptr, *nold = nullptr;
    unsigned long long *revn = nullptr, *revo = nullptr, *revn_max = nullptr, *revo_max = nullptr;
    unsigned long long *cand = nullptr, *cand_max = nullptr;
    unsigned long long *updates = nullptr;
    float *stage = nullptr;
    unsigned *overflow = nullptr;
    uint32_t *out_ids = nullptr;
    float *out_dist = nullptr;

    void free_iteration()
    {
        cu_free(newf);
        cu_free(oldf);
        cu_free(nnew);
        cu_free(nold);
        cu_free(revn);
        cu_free(revo);
        cu_free(revn_max);
        cu_free(revo_max);
        cu_free(cand);
        cu_free(cand_max);
        newf = oldf = nullptr;
        nnew = nold = nullptr;
        revn = revo = revn_max = revo_max = cand = cand_max = nullptr;
    }

    ~Nnd()
    {
        free_iteration();
        cu_free(x);
        cu_free(nrm);
        cu_free(graph);
        cu_free(flags);
        cu_free(updates);
        cu_free(stage);
        cu_free(overflow);
        cu_free(out_ids);
        cu_free(out_dist);
    }
};

/* Free an IVF-Flat device cache made by cu_ivf_flat_search (plugin.cu's cache_free). */
void free_cache(void *cache)
{
    CuCacheBase *b = static_cast<CuCacheBase *>(cache);
    if (b && b->magic == kCuCacheMagic && b->destroy) {
        b->magic = 0;
        b->destroy(b);
    }
}

/*
 * Initial graph from an IVF-Flat search of the data by itself, as the CPU
 * twin's cluster_init: n / 128 lists trained on a quarter of the rows (10
 * k-means iterations, the CUDA k-means), every row searched with k = W + 1
 * over about 8 (W + 1) candidates; the row itself is dropped and rows left
 * short are topped up from their random sequence.  Writes the ids as keys
 * of distance 0 into s.graph (ranked later).  L1 clusters by squared L2.
 */
ann_status nnd_ivf_init(Nnd &s, const ann_matrix *data, ann_metric metric, uint64_t seed, int n_threads)
{
    ann_status st = ANN_OK;
    const int64_t n = s.n, d = s.d;
    const int W = s.W;
    const ann_metric im = metric == ANN_METRIC_INNER_PRODUCT || metric == ANN_METRIC_COSINE ? metric
                                                                                           : ANN_METRIC_SQEUCLIDEAN;
    const int64_t lists64 = n / 128;
    const int32_t L = (int32_t)(lists64 < 1 ? 1 : lists64 > 65536 ? 65536 : lists64);
    const size_t es = cu_dtype_size(data->dtype);
    const size_t rb = (size_t)d * es;
    const int64_t kk = (int64_t)W + 1;
    const int64_t want = n - 1 < W ? n - 1 : W;
    void *cache = nullptr;
    std::vector<float> centers;
    std::vector<int32_t> labels;
    std::vector<int64_t> offsets, list_ids, pos, ids;
    std::vector<unsigned char> packed;
    std::vector<float> dist, cnorms, dnorms;
    std::vector<unsigned long long> keys;
    ann_kmeans_params kp;
    ann_ivf_flat_search_params sp;
    ann_ivf_flat_view view;
    ann_matrix train = *data;
    int64_t n_train = 0, ratio = 1, per_list = 1, probes = 2;
    const int64_t batch = n < kInitBatch ? n : kInitBatch;

    try {
        centers.resize((size_t)L * d);
        labels.resize((size_t)n);
        offsets.assign((size_t)L + 1, 0);
        list_ids.resize((size_t)n);
        pos.resize((size_t)L);
        packed.resize((size_t)n * rb);
        ids.resize((size_t)batch * kk);
        dist.resize((size_t)batch * kk);
        keys.resize((size_t)batch * W);
        if (im != ANN_METRIC_INNER_PRODUCT) {
            cnorms.resize((size_t)L);
            dnorms.resize((size_t)n);
        }
    } catch (...) {
        return CU_FAIL(ANN_ERR_NOMEM, "nn_descent: out of host memory for the initial graph of %lld rows",
                       (long long)n);
    }
    /* k-means on a strided quarter of the rows (the CPU's IVF-Flat training subset) */
    n_train = (int64_t)(0.25 * (double)n);
    if (n_train < L)
        n_train = L;
    ratio = n / n_train > 1 ? n / n_train : 1;
    train.owner = nullptr;
    train.rows = n / ratio;
    train.stride = data->stride * ratio;
    kp.metric = im;
    kp.n_clusters = L;
    kp.n_iters = 10;
    kp.seed = seed;
    ANN_TRY(cu_kmeans_fit(&kp, &train, n_threads, centers.data()));
    ANN_TRY(cu_kmeans_predict(im, centers.data(), L, data, n_threads, labels.data()));
    /* pack the rows by list, stable in row order */
    for (int64_t i = 0; i < n; ++i)
        offsets[(size_t)labels[(size_t)i] + 1]++;
    for (int32_t l = 0; l < L; ++l)
        offsets[(size_t)l + 1] += offsets[(size_t)l];
    for (int32_t l = 0; l < L; ++l)
        pos[(size_t)l] = offsets[(size_t)l];
    for (int64_t i = 0; i < n; ++i) {
        const int64_t p = pos[(size_t)labels[(size_t)i]]++;
        list_ids[(size_t)p] = i;
        std::memcpy(packed.data() + (size_t)p * rb, (const char *)data->data + i * data->stride, rb);
    }
    /* norms as ann_ivf_flat_view asks: squared (L2) or plain (cosine) L2 norms, double accumulation */
    if (im != ANN_METRIC_INNER_PRODUCT) {
        for (int32_t l = 0; l < L; ++l) {
            double acc = 0;
            for (int64_t j = 0; j < d; ++j)
                acc += (double)centers[(size_t)(l * d + j)] * centers[(size_t)(l * d + j)];
            cnorms[(size_t)l] = (float)(im == ANN_METRIC_COSINE ? std::sqrt(acc) : acc);
        }
        for (int64_t r = 0; r < n; ++r) {
            const unsigned char *row = packed.data() + (size_t)r * rb;
            double acc = 0;
            for (int64_t j = 0; j < d; ++j) {
                double v;
                switch (data->dtype) {
                case ANN_DTYPE_F32: {
                    float f;
                    std::memcpy(&f, row + 4 * j, 4);
                    v = f;
                    break;
                }
                case ANN_DTYPE_F16: {
                    __half h;
                    std::memcpy(&h, row + 2 * j, 2);
                    v = __half2float(h);
                    break;
                }
                case ANN_DTYPE_I8: v = (double)(int8_t)row[j]; break;
                default: v = (double)row[j]; break;
                }
                acc += v * v;
            }
            dnorms[(size_t)r] = (float)(im == ANN_METRIC_COSINE ? std::sqrt(acc) : acc);
        }
    }
    view.metric = im;
    view.dtype = data->dtype;
    view.rows = n;
    view.dim = d;
    view.n_lists = L;
    view.centers = centers.data();
    view.center_norms = cnorms.empty() ? nullptr : cnorms.data();
    view.list_offsets = offsets.data();
    view.list_ids = list_ids.data();
    view.data = packed.data();
    view.data_norms = dnorms.empty() ? nullptr : dnorms.data();
    view.device_cache = &cache;
    view.filter = nullptr;
    view.filter_bits = 0;
    std::memset(&sp, 0, sizeof sp);
    per_list = n / L > 0 ? n / L : 1;
    probes = (8 * kk + per_list - 1) / per_list;
    sp.n_probes = (int32_t)(probes < 2 ? 2 : probes > L ? L : probes);
    sp.max_codes = 0;
    sp.search_mode = ANN_IVF_SEARCH_AUTO;
    for (int64_t b0 = 0; b0 < n; b0 += batch) {
        const int64_t m = n - b0 < batch ? n - b0 : batch;
        ann_matrix q = *data;
        q.owner = nullptr;
        q.data = (char *)data->data + b0 * data->stride;
        q.rows = m;
        ANN_TRY(cu_ivf_flat_search(&view, &sp, &q, kk, n_threads, ids.data(), dist.data()));
        for (int64_t r = 0; r < m; ++r) {
            const int64_t i = b0 + r;
            unsigned long long *row = keys.data() + (size_t)r * W;
            int64_t c = 0;
            for (int64_t j = 0; j < kk && c < want; ++j) {
                const int64_t v = ids[(size_t)(r * kk + j)];
                if (v < 0 || v == i)
                    continue;
                row[c++] = (unsigned long long)v;
            }
            if (c < want) { /* too few candidates: the random sequence, skipping ids present */
                uint64_t a = 0, bb = 1;
                nnd_affine(seed, i, n, &a, &bb);
                const int64_t found = c;
                for (uint64_t j = 0; j < (uint64_t)(n - 1) && c < want; ++j) {
                    const unsigned long long v = nnd_affine_id(i, n, a, bb, j);
                    bool dup = false;
                    for (int64_t t = 0; t < found && !dup; ++t)
                        dup = row[t] == v;
                    if (!dup)
                        row[c++] = v;
                }
            }
            for (; c < W; ++c)
                row[c] = kEmpty;
        }
        CU_CHECK(cudaMemcpyAsync(s.graph + b0 * W, keys.data(), (size_t)m * W * sizeof(unsigned long long),
                                 cudaMemcpyHostToDevice, s.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(s.ctx->stream)); /* keys is reused by the next batch */
    }
cleanup:
    free_cache(cache);
    return st;
}

/*
 * Upload the compute copy of the data (s.mode, s.ld) and its norms; fp16
 * falls back to fp32 (s.mode = kJoinDot) when a value does not fit.
 */
ann_status nnd_upload(Nnd &s, const ann_matrix *data)
{
    ann_status st = ANN_OK;
    const int64_t n = s.n, d = s.d;
    unsigned h_over = 0;
    if (s.mode == kJoinHam) {
        s.ld = cu_div_up(d, 4);
        CU_MALLOC(&s.x, (size_t)n * s.ld * 4);
        CU_CHECK(cudaMemsetAsync(s.x, 0, (size_t)n * s.ld * 4, s.ctx->stream));
        CU_CHECK(cudaMemcpy2DAsync(s.x, (size_t)s.ld * 4, data->data, (size_t)data->stride, (size_t)d, (size_t)n,
                                   cudaMemcpyHostToDevice, s.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(s.ctx->stream));
        return ANN_OK;
    }
    if (s.mode == kJoinWmma) {
        const int64_t chunk = cu_max64(1, cu_min64(n, (int64_t)(((size_t)64 << 20) / ((size_t)d * 4))));
        s.ld = cu_round_up(d, 16);
        CU_MALLOC(&s.x, (size_t)n * s.ld * sizeof(__half));
        CU_MALLOC(&s.stage, (size_t)chunk * d * sizeof(float));
        CU_MALLOC(&s.overflow, sizeof(unsigned));
        CU_CHECK(cudaMemsetAsync(s.overflow, 0, sizeof(unsigned), s.ctx->stream));
        for (int64_t r0 = 0; r0 < n; r0 += chunk) {
            const int64_t m = cu_min64(chunk, n - r0);
            ANN_TRY(cu_upload_f32(s.ctx, (const char *)data->data + r0 * data->stride, m, d, data->stride,
                                  data->dtype, s.stage));
            nnd_to_half<<<grid_stride_blocks(m * s.ld, 256), 256, 0, s.ctx->stream>>>(
                s.stage, m, d, s.ld, static_cast<__half *>(s.x) + r0 * s.ld, s.overflow);
            CU_LAUNCHED("nnd_to_half");
            CU_CHECK(cudaStreamSynchronize(s.ctx->stream)); /* the stage is reused */
        }
        CU_CHECK(cudaMemcpyAsync(&h_over, s.overflow, sizeof(unsigned), cudaMemcpyDeviceToHost, s.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(s.ctx->stream));
        cu_free(s.stage);
        s.stage = nullptr;
        if (h_over) { /* beyond binary16: compute in fp32 instead */
            cu_free(s.x);
            s.x = nullptr;
            s.mode = kJoinDot;
        }
    }
    if (s.mode != kJoinWmma) {
        s.ld = d;
        CU_MALLOC(&s.x, (size_t)n * d * sizeof(float));
        ANN_TRY(cu_upload_f32(s.ctx, data->data, n, d, data->stride, data->dtype, static_cast<float *>(s.x)));
    }
    if (s.mk == kNL2 || s.mk == kNCos) {
        CU_MALLOC(&s.nrm, (size_t)n * sizeof(float));
        ANN_TRY(cu_row_norms(s.ctx, s.x, s.mode == kJoinWmma ? ANN_DTYPE_F16 : ANN_DTYPE_F32, n, s.ld,
                             s.mk == kNCos, s.nrm));
    }
    CU_CHECK(cudaStreamSynchronize(s.ctx->stream));
cleanup:
    return st;
}

/* Rank rows [r0, r0 + rows) of the graph from the current copy s.x (see nnd_rank). */
ann_status nnd_rank_rows(Nnd &s, int64_t r0, int64_t rows, bool final_out, bool sqrt_out, bool with_dist)
{
    ann_status st = ANN_OK;
    const int P = (int)cu_pow2_ceil(s.W);
    const size_t smem = (size_t)kRowWarps * P * sizeof(unsigned long long);
    const unsigned grid = grid_for(rows, kRowWarps);
    uint32_t *oi = final_out ? s.out_ids : nullptr;
    float *od = final_out && with_dist ? s.out_dist : nullptr;
    if (s.mode == kJoinHam)
        nnd_rank<uint32_t><<<grid, kRowWarps * 32, smem, s.ctx->stream>>>(
            static_cast<const uint32_t *>(s.x), s.ld, s.d, s.mk, s.graph, s.W, P, r0, rows, s.deg, sqrt_out, oi, od);
    else if (s.mode == kJoinWmma)
        nnd_rank<__half><<<grid, kRowWarps * 32, smem, s.ctx->stream>>>(
            static_cast<const __half *>(s.x), s.ld, s.d, s.mk, s.graph, s.W, P, r0, rows, s.deg, sqrt_out, oi, od);
    else
        nnd_rank<float><<<grid, kRowWarps * 32, smem, s.ctx->stream>>>(
            static_cast<const float *>(s.x), s.ld, s.d, s.mk, s.graph, s.W, P, r0, rows, s.deg, sqrt_out, oi, od);
    CU_LAUNCHED("nnd_rank");
cleanup:
    return st;
}

ann_status nnd_launch_join(Nnd &s)
{
    ann_status st = ANN_OK;
    const unsigned grid = (unsigned)s.n;
    switch (s.mode) {
    case kJoinWmma:
        nnd_join<kJoinWmma><<<grid, kJoinThreads, 0, s.ctx->stream>>>(s.x, s.ld, s.nrm, s.mk, s.graph, s.W, s.newf,
                                                                      s.nnew, s.oldf, s.nold, s.revn, s.revo, s.cand,
                                                                      s.cand_max);
        break;
    case kJoinDot:
        nnd_join<kJoinDot><<<grid, kJoinThreads, 0, s.ctx->stream>>>(s.x, s.ld, s.nrm, s.mk, s.graph, s.W, s.newf,
                                                                     s.nnew, s.oldf, s.nold, s.revn, s.revo, s.cand,
                                                                     s.cand_max);
        break;
    case kJoinL1:
        nnd_join<kJoinL1><<<grid, kJoinThreads, 0, s.ctx->stream>>>(s.x, s.ld, s.nrm, s.mk, s.graph, s.W, s.newf,
                                                                    s.nnew, s.oldf, s.nold, s.revn, s.revo, s.cand,
                                                                    s.cand_max);
        break;
    default:
        nnd_join<kJoinHam><<<grid, kJoinThreads, 0, s.ctx->stream>>>(s.x, s.ld, s.nrm, s.mk, s.graph, s.W, s.newf,
                                                                     s.nnew, s.oldf, s.nold, s.revn, s.revo, s.cand,
                                                                     s.cand_max);
        break;
    }
    CU_LAUNCHED("nnd_join");
cleanup:
    return st;
}

} // namespace

/**
 * CUDA NN-Descent (backend_ops.h nn_descent): semantics of
 * ann_cpu_nn_descent(); the algorithm is described at the top of this
 * file.  n_threads only reaches the host-side parts of the initial graph.
 */
ann_status cu_nn_descent(const ann_nn_descent_params *p, const ann_matrix *data, int n_threads, uint64_t seed,
                         uint32_t *ids, float *dist)
{
    ann_status st = ANN_OK;
    Nnd s;
    const int64_t n = data->rows, d = data->cols;
    const bool hamming = p->metric == ANN_METRIC_HAMMING;
    double stop_below = 0;
    unsigned long long h_updates = 0;
    size_t merge_smem = 0;

    if (!cu_dtype_ok(data->dtype))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "nn_descent on CUDA: dtype not supported");
    if (!(cu_metric_ok(p->metric) || p->metric == ANN_METRIC_L1 || hamming))
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "nn_descent on CUDA: metric %d is not supported", (int)p->metric);
    if (hamming && data->dtype != ANN_DTYPE_U8 && data->dtype != ANN_DTYPE_I8)
        return CU_FAIL(ANN_ERR_UNSUPPORTED, "nn_descent: hamming needs u8 or i8 data");
    if (n < 2 || n >= (int64_t)INT32_MAX || d < 1)
        return CU_FAIL(ANN_ERR_INVALID_ARG, "nn_descent on CUDA: %lld rows x %lld dims", (long long)n, (long long)d);
    if (p->intermediate_graph_degree < 1 || p->intermediate_graph_degree > n - 1 ||
        p->intermediate_graph_degree > 1024 || p->graph_degree < 1 ||
        p->graph_degree > p->intermediate_graph_degree)
        return CU_FAIL(ANN_ERR_INVALID_ARG,
                       "nn_descent on CUDA: graph_degree %d, intermediate_graph_degree %d for %lld rows",
                       (int)p->graph_degree, (int)p->intermediate_graph_degree, (long long)n);

    s.n = n;
    s.d = d;
    s.K = p->intermediate_graph_degree;
    s.W = (int)cu_round_up(s.K, 32);
    s.deg = p->graph_degree;
    s.mk = nnd_metric_kind(p->metric);
    if (hamming)
        s.mode = kJoinHam;
    else if (p->metric == ANN_METRIC_L1)
        s.mode = kJoinL1;
    else if (p->dist_comp_dtype == ANN_DIST_COMP_FP16 || (p->dist_comp_dtype == ANN_DIST_COMP_AUTO && d > 16))
        s.mode = kJoinWmma;
    else
        s.mode = kJoinDot;
    ANN_TRY(cu_ctx_get(&s.ctx));

    /* initial graph: ids (IVF-Flat or random), then the compute copy, then distances and order */
    CU_MALLOC(&s.graph, (size_t)n * s.W * sizeof(unsigned long long));
    CU_MALLOC(&s.flags, (size_t)n * s.W);
    if (hamming || n <= 4 * (int64_t)(s.K + 1)) {
        nnd_random_init<<<grid_for(n * 32, 256), 256, 0, s.ctx->stream>>>(s.graph, s.W, n, seed);
        CU_LAUNCHED("nnd_random_init");
    } else {
        ANN_TRY(nnd_ivf_init(s, data, p->metric, seed, n_threads));
    }
    ANN_TRY(nnd_upload(s, data));
    ANN_TRY(nnd_rank_rows(s, 0, n, false, false, false));
    CU_CHECK(cudaMemsetAsync(s.flags, 1, (size_t)n * s.W, s.ctx->stream));

    /* iterations */
    CU_MALLOC(&s.newf, (size_t)n * kS * sizeof(uint32_t));
    CU_MALLOC(&s.oldf, (size_t)n * kS * sizeof(uint32_t));
    CU_MALLOC(&s.nnew, (size_t)n * sizeof(int32_t));
    CU_MALLOC(&s.nold, (size_t)n * sizeof(int32_t));
    CU_MALLOC(&s.revn, (size_t)n * kS * sizeof(unsigned long long));
    CU_MALLOC(&s.revo, (size_t)n * kS * sizeof(unsigned long long));
    CU_MALLOC(&s.revn_max, (size_t)n * sizeof(unsigned long long));
    CU_MALLOC(&s.revo_max, (size_t)n * sizeof(unsigned long long));
    CU_MALLOC(&s.cand, (size_t)n * kCand * sizeof(unsigned long long));
    CU_MALLOC(&s.cand_max, (size_t)n * sizeof(unsigned long long));
    CU_MALLOC(&s.updates, sizeof(unsigned long long));
    merge_smem = (size_t)kRowWarps * (size_t)(s.W + 3 * kCand + (s.W + 7) / 8) * sizeof(unsigned long long);
    stop_below = (double)p->termination_threshold * (double)n * (double)s.K;
    for (int32_t it = 0; it < p->max_iterations; ++it) {
        const uint64_t salt = nnd_mix(seed ^ (0x5851f42d4c957f2dull * (uint64_t)(it + 1)));
        nnd_sample<<<grid_for(n * 32, 256), 256, 0, s.ctx->stream>>>(s.graph, s.flags, s.W, n, s.newf, s.nnew, s.oldf,
                                                                     s.nold);
        CU_LAUNCHED("nnd_sample");
        CU_CHECK(cudaMemsetAsync(s.revn, 0xff, (size_t)n * kS * sizeof(unsigned long long), s.ctx->stream));
        CU_CHECK(cudaMemsetAsync(s.revo, 0xff, (size_t)n * kS * sizeof(unsigned long long), s.ctx->stream));
        CU_CHECK(cudaMemsetAsync(s.revn_max, 0xff, (size_t)n * sizeof(unsigned long long), s.ctx->stream));
        CU_CHECK(cudaMemsetAsync(s.revo_max, 0xff, (size_t)n * sizeof(unsigned long long), s.ctx->stream));
        nnd_reverse<<<grid_for(n * 2 * kS, 256), 256, 0, s.ctx->stream>>>(s.newf, s.nnew, s.oldf, s.nold, n, salt,
                                                                          s.revn, s.revn_max, s.revo, s.revo_max);
        CU_LAUNCHED("nnd_reverse");
        CU_CHECK(cudaMemsetAsync(s.cand, 0xff, (size_t)n * kCand * sizeof(unsigned long long), s.ctx->stream));
        CU_CHECK(cudaMemsetAsync(s.cand_max, 0xff, (size_t)n * sizeof(unsigned long long), s.ctx->stream));
        ANN_TRY(nnd_launch_join(s));
        CU_CHECK(cudaMemsetAsync(s.updates, 0, sizeof(unsigned long long), s.ctx->stream));
        nnd_merge<<<grid_for(n, kRowWarps), kRowWarps * 32, merge_smem, s.ctx->stream>>>(s.graph, s.flags, s.W, n,
                                                                                          s.cand, s.updates);
        CU_LAUNCHED("nnd_merge");
        CU_CHECK(cudaMemcpyAsync(&h_updates, s.updates, sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                 s.ctx->stream));
        CU_CHECK(cudaStreamSynchronize(s.ctx->stream));
        if ((double)h_updates < stop_below)
            break;
    }
    s.free_iteration();

    /* output: re-rank by exact distances from the original values (fp32; hamming: the bytes) */
    if (s.mode == kJoinWmma) {
        cu_free(s.x);
        s.x = nullptr;
        s.mode = kJoinDot;
        s.ld = d;
        CU_MALLOC(&s.x, (size_t)n * d * sizeof(float));
        ANN_TRY(cu_upload_f32(s.ctx, data->data, n, d, data->stride, data->dtype, static_cast<float *>(s.x)));
    }
    {
        const int64_t ob = n < kOutBatch ? n : kOutBatch;
        CU_MALLOC(&s.out_ids, (size_t)ob * s.deg * sizeof(uint32_t));
        if (dist)
            CU_MALLOC(&s.out_dist, (size_t)ob * s.deg * sizeof(float));
        for (int64_t r0 = 0; r0 < n; r0 += ob) {
            const int64_t m = cu_min64(ob, n - r0);
            ANN_TRY(nnd_rank_rows(s, r0, m, true, p->metric == ANN_METRIC_EUCLIDEAN, dist != nullptr));
            CU_CHECK(cudaMemcpyAsync(ids + r0 * s.deg, s.out_ids, (size_t)m * s.deg * sizeof(uint32_t),
                                     cudaMemcpyDeviceToHost, s.ctx->stream));
            if (dist)
                CU_CHECK(cudaMemcpyAsync(dist + r0 * s.deg, s.out_dist, (size_t)m * s.deg * sizeof(float),
                                         cudaMemcpyDeviceToHost, s.ctx->stream));
            CU_CHECK(cudaStreamSynchronize(s.ctx->stream));
        }
    }

cleanup:
    if (s.ctx && st != ANN_OK)
        (void)cudaStreamSynchronize(s.ctx->stream);
    return st;
}

// bench/hnsw_native.cpp - hnswlib built natively (-O3 -march=native) as a benchmark peer.
//
// Builds an hnswlib HierarchicalNSW<float> index (L2Space, squared L2) from an .fbin file on
// N threads, or loads one that an earlier run saved, then searches an .fbin file of queries
// for every ef of a list on N threads and reports recall@k (by id, against an .ibin of
// ground-truth ids) and QPS. bench/bench_cagra.py compiles and drives it:
//
//   g++ -O3 -march=native -fopenmp -std=c++17 -pthread bench/hnsw_native.cpp -o bench/out/hnsw_native
//
// Uses only Debian's libhnswlib-dev headers (/usr/include/hnswlib, header-only).
//
// Output: one line per event on stdout (a JSON object per line with --json): the build
// ("build", seconds from allocating the index to the last addPoint), then one "search" line
// per ef (seconds for all queries, QPS = queries / seconds, recall). Only the build and the
// search calls are timed; reading files, saving, loading and scoring recall are not.
// Messages go to stderr. Exit status: 0 success, 1 runtime or data error, 2 usage error.

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

const char *const kProg = "hnsw_native";

struct Options {
    std::string train, load, save, queries, truth;
    size_t M = 16;
    size_t ef_construction = 200;
    size_t seed = 100;
    unsigned threads = 2;
    size_t k = 10;
    std::vector<size_t> efs{10, 20, 40, 80, 160};
    bool json = false;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void usage(FILE *to) {
    std::fprintf(to,
        "usage: %s [OPTIONS] (--train TRAIN.fbin | --load INDEX) [--queries Q.fbin --truth T.ibin]\n"
        "\n"
        "Build (or load) an hnswlib HNSW index, L2 space, and search it for every ef.\n"
        "\n"
        "  --train FILE            vectors to index (.fbin: u32 rows, u32 dim, f32 data); labels are row numbers\n"
        "  --load FILE             load an index saved with --save instead of building\n"
        "  --save FILE             save the built index (hnswlib format)\n"
        "  --queries FILE          query vectors (.fbin)\n"
        "  --truth FILE            ground-truth ids (.ibin: u32 rows, u32 cols, i32 ids; cols >= k)\n"
        "  --M N                   graph degree parameter (default 16)\n"
        "  --ef-construction N     build candidate list size (default 200)\n"
        "  --seed N                level generator seed (default 100, as hnswlib)\n"
        "  --threads N             threads for building and searching (default 2)\n"
        "  -k N                    neighbours per query (default 10)\n"
        "  --ef LIST               comma-separated ef values to search with (default 10,20,40,80,160)\n"
        "  --json                  one JSON object per line\n"
        "  -h, --help              this help\n",
        kProg);
}

size_t parse_size(const std::string &opt, const std::string &s) {
    if (s.empty() || s[0] == '-')
        throw UsageError("option '" + opt + "': expected a non-negative integer, got '" + s + "'");
    char *end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (errno != 0 || *end != '\0')
        throw UsageError("option '" + opt + "': expected a non-negative integer, got '" + s + "'");
    return static_cast<size_t>(v);
}

std::vector<size_t> parse_list(const std::string &opt, const std::string &s) {
    std::vector<size_t> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos)
            comma = s.size();
        std::string item = s.substr(start, comma - start);
        if (!item.empty())
            out.push_back(parse_size(opt, item));
        start = comma + 1;
    }
    if (out.empty())
        throw UsageError("option '" + opt + "': empty list");
    return out;
}

Options parse_args(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        }
        if (a == "--json") {
            o.json = true;
            continue;
        }
        std::string val;
        size_t eq = a.find('=');
        if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
            val = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else {
            if (i + 1 >= argc)
                throw UsageError("option '" + a + "' needs a value");
            val = argv[++i];
        }
        if (a == "--train") o.train = val;
        else if (a == "--load") o.load = val;
        else if (a == "--save") o.save = val;
        else if (a == "--queries") o.queries = val;
        else if (a == "--truth") o.truth = val;
        else if (a == "--M" || a == "-M") o.M = parse_size(a, val);
        else if (a == "--ef-construction") o.ef_construction = parse_size(a, val);
        else if (a == "--seed") o.seed = parse_size(a, val);
        else if (a == "--threads") o.threads = static_cast<unsigned>(parse_size(a, val));
        else if (a == "-k") o.k = parse_size(a, val);
        else if (a == "--ef") o.efs = parse_list(a, val);
        else throw UsageError("unknown option '" + a + "'");
    }
    if (o.train.empty() == o.load.empty())
        throw UsageError("give exactly one of --train and --load");
    if (!o.load.empty() && !o.save.empty())
        throw UsageError("--save goes with --train, not --load");
    if (o.queries.empty() != o.truth.empty())
        throw UsageError("--queries and --truth go together");
    if (!o.load.empty() && o.queries.empty())
        throw UsageError("--load needs --queries and --truth");
    if (o.M < 2 || o.M > 10000)
        throw UsageError("--M must be in 2..10000");
    if (o.ef_construction < 1)
        throw UsageError("--ef-construction must be at least 1");
    if (o.threads < 1 || o.threads > 1024)
        throw UsageError("--threads must be in 1..1024");
    if (o.k < 1)
        throw UsageError("-k must be at least 1");
    return o;
}

// A row-major matrix read from an 8-byte-header file (.fbin / .ibin).
template <class T>
struct Matrix {
    uint32_t rows = 0, cols = 0;
    std::vector<T> data;
    const T *row(size_t i) const { return data.data() + i * cols; }
};

template <class T>
Matrix<T> read_bin(const std::string &path) {
    std::unique_ptr<FILE, int (*)(FILE *)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f)
        throw std::runtime_error("'" + path + "': " + std::strerror(errno));
    uint32_t hdr[2];
    if (std::fread(hdr, sizeof hdr, 1, f.get()) != 1)
        throw std::runtime_error("'" + path + "': shorter than its 8-byte header");
    if (std::fseek(f.get(), 0, SEEK_END) != 0)
        throw std::runtime_error("'" + path + "': cannot seek");
    long size = std::ftell(f.get());
    uint64_t want = 8 + uint64_t(hdr[0]) * hdr[1] * sizeof(T);
    if (size < 0 || uint64_t(size) != want)
        throw std::runtime_error("'" + path + "': " + std::to_string(hdr[0]) + " x " + std::to_string(hdr[1]) +
                                 " needs " + std::to_string(want) + " bytes, the file has " + std::to_string(size));
    if (hdr[0] == 0 || hdr[1] == 0)
        throw std::runtime_error("'" + path + "': empty (" + std::to_string(hdr[0]) + " x " +
                                 std::to_string(hdr[1]) + ")");
    Matrix<T> m;
    m.rows = hdr[0];
    m.cols = hdr[1];
    m.data.resize(size_t(m.rows) * m.cols);
    std::fseek(f.get(), 8, SEEK_SET);
    if (std::fread(m.data.data(), sizeof(T), m.data.size(), f.get()) != m.data.size())
        throw std::runtime_error("'" + path + "': read error");
    return m;
}

// Calls fn(i) for i in [begin, end) on `threads` threads (the calling one included), handing
// out one index at a time so that slow items do not leave a thread idle. The first exception
// thrown by fn stops the loop and is rethrown here.
template <class Fn>
void parallel_for(size_t begin, size_t end, unsigned threads, Fn fn) {
    std::atomic<size_t> next{begin};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_lock;
    auto worker = [&]() {
        for (;;) {
            size_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= end || failed.load(std::memory_order_relaxed))
                return;
            try {
                fn(i);
            } catch (...) {
                std::lock_guard<std::mutex> g(error_lock);
                if (!error)
                    error = std::current_exception();
                failed = true;
                return;
            }
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (unsigned t = 1; t < threads; t++)
        pool.emplace_back(worker);
    worker();
    for (auto &t : pool)
        t.join();
    if (error)
        std::rethrow_exception(error);
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const char *simd_compiled() {
#if defined(USE_AVX512)
    return "avx512";
#elif defined(USE_AVX)
    return "avx";
#elif defined(USE_SSE)
    return "sse";
#else
    return "none";
#endif
}

int run(const Options &o) {
    Matrix<float> train, queries;
    Matrix<int32_t> truth;
    if (!o.queries.empty()) {
        queries = read_bin<float>(o.queries);
        truth = read_bin<int32_t>(o.truth);
        if (truth.rows != queries.rows)
            throw std::runtime_error("'" + o.truth + "' has " + std::to_string(truth.rows) + " rows, '" +
                                     o.queries + "' has " + std::to_string(queries.rows));
        if (truth.cols < o.k)
            throw std::runtime_error("'" + o.truth + "' has " + std::to_string(truth.cols) +
                                     " ids per query, fewer than k = " + std::to_string(o.k));
    }
    size_t dim;
    if (!o.train.empty()) {
        train = read_bin<float>(o.train);
        dim = train.cols;
        if (!o.queries.empty() && queries.cols != dim)
            throw std::runtime_error("'" + o.queries + "': dimension " + std::to_string(queries.cols) +
                                     " does not match '" + o.train + "' (" + std::to_string(dim) + ")");
    } else {
        dim = queries.cols;
    }

    hnswlib::L2Space space(dim);  // outlives the index, which keeps a pointer into it
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;

    if (!o.train.empty()) {
        const size_t n = train.rows;
        double t0 = now_s();
        index.reset(new hnswlib::HierarchicalNSW<float>(&space, n, o.M, o.ef_construction, o.seed));
        // The first point becomes the entry point; inserting it alone keeps two threads from
        // both seeing an empty index and each making their own point the entry.
        index->addPoint(train.row(0), 0);
        parallel_for(1, n, o.threads, [&](size_t i) { index->addPoint(train.row(i), hnswlib::labeltype(i)); });
        double build_s = now_s() - t0;
        if (o.json)
            std::printf("{\"event\": \"build\", \"build_s\": %.6f, \"rows\": %zu, \"dim\": %zu, \"M\": %zu, "
                        "\"ef_construction\": %zu, \"seed\": %zu, \"threads\": %u, \"simd\": \"%s\"}\n",
                        build_s, n, dim, o.M, o.ef_construction, o.seed, o.threads, simd_compiled());
        else
            std::printf("build  rows %zu  dim %zu  M %zu  ef_construction %zu  threads %u  simd %s  seconds %.3f\n",
                        n, dim, o.M, o.ef_construction, o.threads, simd_compiled(), build_s);
        std::fflush(stdout);
        if (!o.save.empty())
            index->saveIndex(o.save);
        train = Matrix<float>();  // the index holds its own copy of the vectors
    } else {
        try {
            index.reset(new hnswlib::HierarchicalNSW<float>(&space, o.load));
        } catch (const std::exception &e) {
            throw std::runtime_error("'" + o.load + "': " + e.what());
        }
    }

    if (o.queries.empty())
        return 0;
    const size_t nq = queries.rows, k = o.k;
    std::vector<int64_t> found(nq * k);
    for (size_t ef : o.efs) {
        std::fill(found.begin(), found.end(), -1);
        index->setEf(ef);  // searchKnn uses max(ef, k)
        double t0 = now_s();
        parallel_for(0, nq, o.threads, [&](size_t q) {
            auto top = index->searchKnn(queries.row(q), k);  // max-heap by distance: farthest on top
            size_t j = top.size();
            int64_t *out = found.data() + q * k;
            while (!top.empty()) {
                out[--j] = int64_t(top.top().second);
                top.pop();
            }
        });
        double sec = now_s() - t0;
        size_t hits = 0;
        for (size_t q = 0; q < nq; q++) {
            const int64_t *f = found.data() + q * k;
            const int32_t *t = truth.row(q);
            for (size_t a = 0; a < k; a++) {
                if (f[a] < 0)
                    continue;
                for (size_t b = 0; b < k; b++)
                    if (f[a] == t[b]) {
                        hits++;
                        break;
                    }
            }
        }
        double recall = double(hits) / double(nq * k);
        double qps = double(nq) / sec;
        if (o.json)
            std::printf("{\"event\": \"search\", \"ef\": %zu, \"k\": %zu, \"queries\": %zu, \"threads\": %u, "
                        "\"recall\": %.6f, \"qps\": %.3f, \"seconds\": %.6f}\n",
                        ef, k, nq, o.threads, recall, qps, sec);
        else
            std::printf("ef %4zu  recall@%zu %.4f  QPS %9.0f  seconds %.4f\n", ef, k, recall, qps, sec);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    try {
        o = parse_args(argc, argv);
    } catch (const UsageError &e) {
        std::fprintf(stderr, "%s: %s\nTry %s --help.\n", kProg, e.what(), kProg);
        return 2;
    }
    try {
        return run(o);
    } catch (const std::bad_alloc &) {
        std::fprintf(stderr, "%s: out of memory\n", kProg);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s: %s\n", kProg, e.what());
    }
    return 1;
}

#!/usr/bin/python3
"""annkit vs FAISS (and optionally hnswlib) on fashion-mnist-784-euclidean, k = 10.

Run with Debian's interpreter (python3-faiss 1.7.3, python3-hnswlib, python3-h5py,
python3-numpy); see bench/README.md.

    /usr/bin/python3 bench/bench_fashion_mnist.py [--peers annkit,faiss] [--n-lists 1024] ...

(a) brute force: annbuild --algo brute_force + annsearch --json (QPS as annsearch
    reports it) vs FAISS IndexFlatL2 (index.search timed).
(b) IVF-Flat: annbuild --algo ivf_flat vs FAISS IndexIVFFlat with the same n_lists,
    both swept over n_probes; recall@10 (id intersection with the file's neighbors)
    and the ann-benchmarks threshold recall; QPS at equal recall (0.90, 0.95, 0.99)
    by log-QPS interpolation along each side's Pareto curve.
All 10000 test queries as one batch, 2 threads on every side, best of N runs
(default 3) on every side. Raw results: bench/out/fashion-mnist.jsonl.
Exit status: 0 done (whether or not a target is met), 1 error, 2 usage error.
"""

import os
import sys

# Thread counts must be fixed before numpy/faiss load their OpenMP/BLAS runtimes.
_THREADS = "2"
for _a in sys.argv:
    if _a.startswith("--threads="):
        _THREADS = _a.split("=", 1)[1]
if "--threads" in sys.argv:
    _i = sys.argv.index("--threads")
    if _i + 1 < len(sys.argv):
        _THREADS = sys.argv[_i + 1]
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = _THREADS

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

PROG = "bench_fashion_mnist.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "datasets", "out", "fashion-mnist-784-euclidean.hdf5")
DEFAULT_OUT = os.path.join(ROOT, "bench", "out", "fashion-mnist.jsonl")
DEFAULT_PROBES = "1,2,3,4,6,8,10,12,16,20,24,32,48,64"
DEFAULT_EFS = "10,16,24,32,48,64,96,128,192,256,384,512"
TARGETS = (0.90, 0.95, 0.99)


def die(msg, code=1):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.exit(code)


def warn(msg):
    sys.stderr.write("%s: warning: %s\n" % (PROG, msg))


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


try:
    import h5py
    import numpy as np
except ImportError as e:
    die("%s (run with /usr/bin/python3; apt install python3-h5py python3-numpy)" % e)


# ----------------------------------------------------------------- recall

def recall_ids(found, truth, k):
    """Mean |found[:, :k] & truth[:, :k]| / k; -1 never matches."""
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += np.intersect1d(f[f >= 0], t).size
    return hits / float(k * found.shape[0])


def recall_threshold(found, train, test, gt_dist, k, chunk=500):
    """ann-benchmarks 'k-nn' recall: a returned id counts when its true Euclidean
    distance (recomputed from the vectors, float64) is <= gt_dist[i][k-1] + 1e-3."""
    thr = gt_dist[:, k - 1].astype(np.float64) + 1e-3
    hits = 0
    for s in range(0, found.shape[0], chunk):
        f = found[s:s + chunk, :k]
        valid = f >= 0
        rows = train[np.where(valid, f, 0)].astype(np.float64)           # c x k x d
        q = test[s:s + chunk].astype(np.float64)[:, None, :]
        d = np.sqrt(((rows - q) ** 2).sum(axis=2))
        hits += int(((d <= thr[s:s + chunk, None]) & valid).sum())
    return hits / float(k * found.shape[0])


# --------------------------------------------------- QPS at equal recall

def pareto(points):
    """points: [(recall, qps)] -> the frontier sorted by recall ascending, where
    each kept point has a higher QPS than every point of higher recall."""
    pts = sorted(points, key=lambda p: (-p[0], -p[1]))
    front, best = [], -1.0
    for r, q in pts:
        if q > best:
            front.append((r, q))
            best = q
    return front[::-1]


def qps_at(points, target):
    """(qps, how): QPS at the given recall, log-QPS linear in recall between the
    bracketing Pareto points. how = 'interp', 'lower-bound' (every point is above the
    target: the QPS of the lowest-recall point), or None when the target is not reached."""
    front = pareto(points)
    if not front or front[-1][0] < target:
        return None, None
    if front[0][0] >= target:
        return front[0][1], "lower-bound"
    for (r0, q0), (r1, q1) in zip(front, front[1:]):
        if r0 <= target <= r1:
            if r1 == r0:
                return max(q0, q1), "interp"
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0))), "interp"
    return None, None


# ----------------------------------------------------------------- annkit

class Annkit:
    def __init__(self, bindir, threads, device, env):
        self.bindir = bindir
        self.threads = threads
        self.device = device
        self.env = env
        for t in ("annbuild", "annsearch"):
            p = os.path.join(bindir, t)
            if not os.access(p, os.X_OK):
                die("'%s' not found or not executable; build annkit (meson setup build && "
                    "ninja -C build), pass --annkit-bin or set ANNKIT_BIN" % p)

    def tool(self, name):
        return os.path.join(self.bindir, name)

    def common(self):
        a = ["--threads", str(self.threads)]
        if self.device:
            a += ["--device", self.device]
        return a

    def run(self, argv, capture=True):
        log("+ " + " ".join(shlex.quote(x) for x in argv))
        t0 = time.perf_counter()
        p = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE if capture else None,
                           stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError("exit %d: %s\n%s" % (p.returncode, " ".join(argv), p.stderr.strip()))
        if p.stderr.strip():
            for line in p.stderr.strip().splitlines()[-5:]:
                log("  | " + line)
        return p, wall

    def version(self):
        try:
            p = subprocess.run([self.tool("annsearch"), "--version"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
            return p.stdout.strip().splitlines()[0] if p.stdout.strip() else "?"
        except Exception:  # noqa: BLE001
            return "?"

    def build(self, data, index, algo, extra):
        """annbuild -v; returns (build seconds as annbuild reports them, or None;
        wall seconds of the whole process, including load and save)."""
        argv = [self.tool("annbuild"), "--algo", algo, "-v"] + extra + self.common() + \
            ["%s:train" % data, "-o", index, "-f"]
        p, wall = self.run(argv)
        m = re.search(r"built [^\n]*?([0-9.]+) s on ", p.stderr)
        return (float(m.group(1)) if m else None), wall

    def search(self, index, data, k, extra):
        """One annsearch --json process; returns {n_probes (0 when absent): record}."""
        argv = [self.tool("annsearch"), index, "%s:test" % data, "-k", str(k),
                "--truth", "%s:neighbors" % data, "--json"] + extra + self.common()
        p, _ = self.run(argv)
        out = {}
        for line in p.stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                raise RuntimeError("annsearch printed a line that is not JSON (%s): %r" % (e, line))
            if "qps" not in r or "recall" not in r:
                raise RuntimeError("annsearch JSON lacks qps or recall: %r" % r)
            out[r.get("n_probes", 0)] = r
        if not out:
            raise RuntimeError("annsearch --json printed no JSON object: %s" % " ".join(argv))
        return out


def merge_best(best, run):
    """Fold one run's {setting: record} into best: keep the fastest record per
    setting and the list of every run's QPS in qps_runs."""
    for key, r in run.items():
        prev = best.get(key)
        runs = (prev["qps_runs"] if prev else []) + [r["qps"]]
        if prev is None or r["qps"] > prev["qps"]:
            best[key] = dict(r)
        best[key]["qps_runs"] = runs


# ------------------------------------------------------------------ peers

def best_of(fn, runs):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def faiss_bf_build(faiss, train):
    index = faiss.IndexFlatL2(train.shape[1])
    t, _ = timed(lambda: index.add(train))
    return index, t


def faiss_ivf_build(faiss, train, n_lists):
    d = train.shape[1]
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, n_lists, faiss.METRIC_L2)
    ttrain, _ = timed(lambda: index.train(train))
    tadd, _ = timed(lambda: index.add(train))
    index._quantizer_ref = quantizer   # keep the quantizer alive with the index
    return index, ttrain, tadd


def hnswlib_sweep(hnswlib, train, test, k, M, efc, efs, threads, runs):
    index = hnswlib.Index(space="l2", dim=train.shape[1])
    t0 = time.perf_counter()
    index.init_index(max_elements=train.shape[0], M=M, ef_construction=efc, random_seed=100)
    index.add_items(train, np.arange(train.shape[0]), num_threads=threads)
    build = time.perf_counter() - t0
    out = []
    for ef in efs:
        index.set_ef(max(ef, k))
        tbest, times, (ids, _) = best_of(lambda: index.knn_query(test, k=k, num_threads=threads), runs)
        out.append((ef, tbest, times, ids.astype(np.int64)))
    return build, out


# ------------------------------------------------------------------ output

class Report:
    def __init__(self, path, meta):
        self.path = path
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.tmp = path + ".tmp"
        self.fp = open(self.tmp, "w")
        self.write(dict(meta, kind="meta"))

    def write(self, rec):
        self.fp.write(json.dumps(rec, sort_keys=True) + "\n")
        self.fp.flush()

    def close(self):
        self.fp.close()
        os.replace(self.tmp, self.path)


def fmt_qps(q):
    return "-" if q is None else ("%.0f" % q if q >= 100 else "%.1f" % q)


def fmt_r(r):
    return "-" if r is None else "%.4f" % r


def verdict(ratio, target):
    if ratio is None:
        return ""
    return "  [target >= %.1fx: %s]" % (target, "met" if ratio >= target else "NOT met")


def parse_list(s, what):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        die("%s: '%s' is not a comma-separated list of integers" % (what, s), 2)
    if not v or min(v) <= 0:
        die("%s: '%s' must list positive integers" % (what, s), 2)
    return v


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="fashion-mnist-784-euclidean.hdf5")
    ap.add_argument("--annkit-bin", default=os.environ.get("ANNKIT_BIN", os.path.join(ROOT, "build", "tools")),
                    help="directory of annbuild/annsearch (default $ANNKIT_BIN or build/tools)")
    ap.add_argument("--annkit-device", default="cpu",
                    help="--device passed to annbuild/annsearch (default cpu; '' passes none)")
    ap.add_argument("--peers", default="annkit,faiss",
                    help="comma list of annkit, faiss, hnswlib (default annkit,faiss)")
    ap.add_argument("--parts", default="bf,ivf", help="comma list of bf, ivf, hnsw (default bf,ivf)")
    ap.add_argument("--threads", type=int, default=2, help="threads on every side (default 2)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="best of N timings on every side (default 3)")
    ap.add_argument("--n-lists", type=int, default=1024)
    ap.add_argument("--n-probes", default=DEFAULT_PROBES)
    ap.add_argument("--search-modes", default="auto,csr,matrix",
                    help="annkit IVF search modes to sweep; the first is the headline (default auto,csr,matrix)")
    ap.add_argument("--kmeans-n-iters", type=int, default=None, help="passed to annbuild when given")
    ap.add_argument("--hnsw-M", type=int, default=16)
    ap.add_argument("--hnsw-ef-construction", type=int, default=200)
    ap.add_argument("--hnsw-ef", default=DEFAULT_EFS)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "bench", "out", "work"),
                    help="where annkit indexes go (default bench/out/work)")
    ap.add_argument("--keep-indexes", action="store_true", help="do not delete annkit indexes at the end")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT, help="JSON lines (default bench/out/fashion-mnist.jsonl)")
    args = ap.parse_args()

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for p in peers:
        if p not in ("annkit", "faiss", "hnswlib"):
            die("--peers: unknown peer '%s' (annkit, faiss, hnswlib)" % p, 2)
    for p in parts:
        if p not in ("bf", "ivf", "hnsw"):
            die("--parts: unknown part '%s' (bf, ivf, hnsw)" % p, 2)
    if "hnswlib" in peers and "hnsw" not in parts:
        parts.append("hnsw")
    probes = parse_list(args.n_probes, "--n-probes")
    efs = parse_list(args.hnsw_ef, "--hnsw-ef")
    modes = [m.strip() for m in args.search_modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("auto", "csr", "matrix"):
            die("--search-modes: unknown mode '%s'" % m, 2)
    if args.threads <= 0 or args.runs <= 0 or args.k <= 0 or args.n_lists <= 0:
        die("--threads, --runs, -k and --n-lists must be positive", 2)

    if not os.path.exists(args.data):
        die("'%s' not found; make it with datasets/fashion-mnist.sh (or bench/run.sh)" % args.data)
    data = os.path.abspath(args.data)

    env = dict(os.environ)
    ak = Annkit(os.path.abspath(args.annkit_bin), args.threads, args.annkit_device, env) if "annkit" in peers else None
    faiss = hnswlib = None
    if "faiss" in peers:
        try:
            import faiss  # noqa: F811
        except ImportError as e:
            die("cannot import faiss (%s); apt install python3-faiss, or drop it from --peers" % e)
        faiss.omp_set_num_threads(args.threads)
    if "hnswlib" in peers:
        try:
            import hnswlib  # noqa: F811
        except ImportError as e:
            die("cannot import hnswlib (%s); apt install python3-hnswlib, or drop it from --peers" % e)

    log("loading %s" % data)
    with h5py.File(data, "r") as f:
        for n in ("train", "test", "neighbors", "distances"):
            if n not in f:
                die("'%s' has no dataset '%s'" % (data, n))
        train = np.ascontiguousarray(f["train"][()], dtype=np.float32)
        test = np.ascontiguousarray(f["test"][()], dtype=np.float32)
        gt = f["neighbors"][()].astype(np.int64)
        gtd = f["distances"][()]
        dist_attr = f.attrs.get("distance", "?")
    k = args.k
    if gt.shape[1] < k:
        die("ground truth has %d columns, fewer than k = %d" % (gt.shape[1], k))
    nq = test.shape[0]

    meta = {
        "bench": "fashion-mnist", "data": data, "distance": str(dist_attr),
        "train": list(train.shape), "test": list(test.shape), "k": k,
        "threads": args.threads, "runs": args.runs, "peers": peers, "parts": parts,
        "cpu": cpu_model(), "nproc": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "faiss": getattr(faiss, "__version__", None) if faiss else None,
        "hnswlib": getattr(hnswlib, "__version__", None) if hnswlib else None,
        "annkit": ak.version() if ak else None,
    }
    rep = Report(args.output, meta)
    os.makedirs(args.workdir, exist_ok=True)
    summary = []
    print("fashion-mnist-784-euclidean: train %dx%d, test %d, k = %d, %d threads, best of %d"
          % (train.shape[0], train.shape[1], nq, k, args.threads, args.runs))
    print("cpu: %s (%s cores); faiss %s; annkit %s" % (meta["cpu"], meta["nproc"], meta["faiss"] or "-",
                                                      meta["annkit"] or "-"))

    def rec(**kw):
        r = dict(kw, bench="fashion-mnist", k=k, threads=args.threads, n_queries=nq)
        rep.write(r)
        return r

    # ------------------------------------------------------------ (a) brute force
    # Runs alternate between the sides (annkit run 1, FAISS run 1, annkit run 2, ...),
    # so a load change on the machine hits both alike; each side keeps its best run.
    if "bf" in parts:
        print("\n== (a) brute force, %d queries in one batch" % nq)
        rows = []
        idx = os.path.join(args.workdir, "fm.bf")
        ak_ok, ak_best, ak_build = bool(ak), {}, None
        fx_index, fx_build, fx_times, fx_ids = None, None, [], None
        try:
            if ak:
                try:
                    ak_build, _ = ak.build(data, idx, "brute_force", ["--metric", "sqeuclidean"])
                except RuntimeError as e:
                    warn("annkit brute force build failed: %s" % e)
                    ak_ok = False
            if faiss:
                fx_index, fx_build = faiss_bf_build(faiss, train)
            for run in range(args.runs):
                for side in (("annkit", "faiss") if run % 2 == 0 else ("faiss", "annkit")):
                    if side == "annkit" and ak_ok:
                        try:
                            merge_best(ak_best, ak.search(idx, data, k, []))
                        except RuntimeError as e:
                            warn("annkit brute force search failed: %s" % e)
                            ak_ok = False
                    if side == "faiss" and fx_index is not None:
                        t, (_, fx_ids) = timed(lambda: fx_index.search(test, k))
                        fx_times.append(t)
        finally:
            if not args.keep_indexes and os.path.exists(idx):
                os.remove(idx)
        if ak_ok and ak_best:
            r = list(ak_best.values())[0]
            rows.append(rec(peer="annkit", algo="brute_force", qps=r["qps"], qps_runs=r["qps_runs"],
                            qps_median=statistics.median(r["qps_runs"]),
                            recall=r.get("recall"), recall_threshold=r.get("recall_threshold"),
                            build_s=ak_build, raw=r))
        if fx_times:
            rows.append(rec(peer="faiss", algo="IndexFlatL2", qps=nq / min(fx_times),
                            qps_runs=[nq / t for t in fx_times], qps_median=nq / statistics.median(fx_times),
                            recall=recall_ids(fx_ids, gt, k),
                            recall_threshold=recall_threshold(fx_ids, train, test, gtd, k), build_s=fx_build))
            del fx_index
        print("%-8s %-12s %10s %8s %10s   %s" % ("peer", "algo", "QPS", "recall", "recall_thr", "QPS of each run"))
        for r in rows:
            print("%-8s %-12s %10s %8s %10s   %s" % (r["peer"], r["algo"], fmt_qps(r["qps"]), fmt_r(r["recall"]),
                                                     fmt_r(r.get("recall_threshold")),
                                                     " ".join(fmt_qps(q) for q in r["qps_runs"])))
        a = [r for r in rows if r["peer"] == "annkit"]
        b = [r for r in rows if r["peer"] == "faiss"]
        if a and b:
            ratio = a[0]["qps"] / b[0]["qps"]
            ratio_med = a[0]["qps_median"] / b[0]["qps_median"]
            # run i of annkit and run i of FAISS ran back to back: their ratio sees one load
            pairs = [x / y for x, y in zip(a[0]["qps_runs"], b[0]["qps_runs"])]
            ratio_pair = statistics.median(pairs)
            print("QPS ratio annkit/FAISS: %.3fx%s" % (ratio, verdict(ratio, 1.0)))
            print("  noise check: ratio of the median QPS %.3fx; median of the back-to-back run ratios %.3fx (%s)"
                  % (ratio_med, ratio_pair, " ".join("%.2f" % x for x in pairs)))
            summary.append(rec(kind="summary", part="brute_force", ratio=ratio, target=1.0,
                               annkit_qps=a[0]["qps"], faiss_qps=b[0]["qps"], ratio_median=ratio_med,
                               ratio_pairs=pairs, ratio_pairs_median=ratio_pair))

    # ------------------------------------------------------------ (b) IVF-Flat
    curves = {}   # label -> [(recall, best qps)]
    curves_med = {}   # label -> [(recall, median qps)]
    if "ivf" in parts:
        print("\n== (b) IVF-Flat, n_lists = %d, n_probes %s" % (args.n_lists, ",".join(map(str, probes))))
        table = {}  # n_probes -> {label: (qps, recall, rthr)}
        builds = []
        idx = os.path.join(args.workdir, "fm.ivf_flat")
        ak_ok, ak_best = bool(ak), {m: {} for m in modes}
        ak_modes_ok = {m: True for m in modes}
        fx_index, fx_times, fx_ids = None, {p: [] for p in probes}, {}
        try:
            if ak:
                extra = ["--metric", "sqeuclidean", "--n-lists", str(args.n_lists)]
                if args.kmeans_n_iters:
                    extra += ["--kmeans-n-iters", str(args.kmeans_n_iters)]
                try:
                    bt, bwall = ak.build(data, idx, "ivf_flat", extra)
                    builds.append(("annkit", "%s s (annbuild's own timing; process wall %.2f s incl. load and save)"
                                   % ("?" if bt is None else "%.2f" % bt, bwall)))
                    rec(peer="annkit", algo="ivf_flat", kind="build", n_lists=args.n_lists, build_s=bt,
                        build_wall_s=bwall)
                except RuntimeError as e:
                    warn("annkit IVF-Flat build failed: %s" % e)
                    ak_ok = False
            if faiss:
                fx_index, ttrain, tadd = faiss_ivf_build(faiss, train, args.n_lists)
                builds.append(("faiss", "%.2f s (train %.2f + add %.2f)" % (ttrain + tadd, ttrain, tadd)))
                rec(peer="faiss", algo="IndexIVFFlat", kind="build", n_lists=args.n_lists, build_s=ttrain + tadd,
                    train_s=ttrain, add_s=tadd)
            # Interleave per setting: for each n_probes, every annkit mode and FAISS run
            # back to back (the order flips every run), so both sides of a point see
            # the same machine load.
            for run in range(args.runs):
                for p in probes:
                    def ak_side():
                        for mode in modes:
                            if not (ak_ok and ak_modes_ok[mode]):
                                continue
                            try:
                                merge_best(ak_best[mode], ak.search(
                                    idx, data, k, ["--n-probes", str(p), "--search-mode", mode]))
                            except RuntimeError as e:
                                warn("annkit search mode %s failed: %s" % (mode, e))
                                ak_modes_ok[mode] = False

                    def fx_side():
                        if fx_index is not None:
                            fx_index.nprobe = p
                            t, (_, fx_ids[p]) = timed(lambda: fx_index.search(test, k))
                            fx_times[p].append(t)
                    for side in ((ak_side, fx_side) if run % 2 == 0 else (fx_side, ak_side)):
                        side()
        finally:
            if not args.keep_indexes and os.path.exists(idx):
                os.remove(idx)
        for mode in modes:
            if not (ak_ok and ak_modes_ok[mode]):
                continue
            label = "annkit-%s" % mode
            curves[label], curves_med[label] = [], []
            for p in probes:
                r = ak_best[mode].get(p)
                if r is None:
                    warn("annkit %s: no JSON line for n_probes=%d" % (mode, p))
                    continue
                rec(peer="annkit", algo="ivf_flat", search_mode=mode, n_lists=args.n_lists, n_probes=p,
                    qps=r["qps"], qps_runs=r["qps_runs"], qps_median=statistics.median(r["qps_runs"]),
                    recall=r.get("recall"), recall_threshold=r.get("recall_threshold"), raw=r)
                table.setdefault(p, {})[label] = (r["qps"], r.get("recall"), r.get("recall_threshold"))
                curves[label].append((r["recall"], r["qps"]))
                curves_med[label].append((r["recall"], statistics.median(r["qps_runs"])))
        if fx_index is not None:
            curves["faiss"], curves_med["faiss"] = [], []
            for p in probes:
                rc = recall_ids(fx_ids[p], gt, k)
                rt = recall_threshold(fx_ids[p], train, test, gtd, k)
                q = nq / min(fx_times[p])
                qmed = nq / statistics.median(fx_times[p])
                rec(peer="faiss", algo="IndexIVFFlat", n_lists=args.n_lists, n_probes=p, qps=q,
                    qps_runs=[nq / t for t in fx_times[p]], qps_median=qmed, recall=rc, recall_threshold=rt)
                table.setdefault(p, {})["faiss"] = (q, rc, rt)
                curves["faiss"].append((rc, q))
                curves_med["faiss"].append((rc, qmed))
            del fx_index
        for who, txt in builds:
            print("build %-7s %s" % (who, txt))
        labels = [lab for lab in ["annkit-%s" % m for m in modes] + ["faiss"] if lab in curves]
        hdr = "%8s" % "n_probes" + "".join(" | %-28s" % lab for lab in labels)
        print(hdr)
        print("%8s" % "" + "".join(" | %9s %8s %9s" % ("QPS", "recall", "rec_thr") for _ in labels))
        for p in probes:
            line = "%8d" % p
            for lab in labels:
                v = table.get(p, {}).get(lab)
                line += " | %9s %8s %9s" % ((fmt_qps(v[0]), fmt_r(v[1]), fmt_r(v[2])) if v else ("-", "-", "-"))
            print(line)

    # ------------------------------------------------------------ hnswlib (context)
    if "hnsw" in parts and hnswlib:
        print("\n== hnswlib HNSW, M = %d, ef_construction = %d (context for the CAGRA target)"
              % (args.hnsw_M, args.hnsw_ef_construction))
        build, out = hnswlib_sweep(hnswlib, train, test, k, args.hnsw_M, args.hnsw_ef_construction, efs,
                                   args.threads, args.runs)
        print("build hnswlib %.2f s" % build)
        rec(peer="hnswlib", algo="hnsw", kind="build", M=args.hnsw_M, ef_construction=args.hnsw_ef_construction,
            build_s=build)
        curves["hnswlib"] = []
        print("%6s %10s %8s %10s" % ("ef", "QPS", "recall", "recall_thr"))
        for ef, tbest, times, ids in out:
            rc = recall_ids(ids, gt, k)
            rt = recall_threshold(ids, train, test, gtd, k)
            rec(peer="hnswlib", algo="hnsw", M=args.hnsw_M, ef_construction=args.hnsw_ef_construction, ef=ef,
                qps=nq / tbest, qps_runs=[nq / t for t in times], qps_median=nq / statistics.median(times),
                recall=rc, recall_threshold=rt)
            curves["hnswlib"].append((rc, nq / tbest))
            curves_med.setdefault("hnswlib", []).append((rc, nq / statistics.median(times)))
            print("%6d %10s %8s %10s" % (ef, fmt_qps(nq / tbest), fmt_r(rc), fmt_r(rt)))

    # ------------------------------------------------------------ equal recall
    if curves:
        labels = list(curves)
        print("\n== QPS at equal recall@10 (id intersection; log-QPS interpolated on each Pareto curve;"
              " '>=' = every point is above the target)")
        print("%7s" % "recall" + "".join(" %14s" % lab for lab in labels) + "   ratios vs faiss")
        med_lines = []
        for target in TARGETS:
            vals = {lab: qps_at(curves[lab], target) for lab in labels}
            line = "%7.2f" % target
            for lab in labels:
                q, how = vals[lab]
                line += " %14s" % ("-" if q is None else (">=" if how == "lower-bound" else "") + fmt_qps(q))
            fq = vals.get("faiss", (None, None))[0]
            ratios = {}
            if fq:
                for lab in labels:
                    if lab.startswith("annkit") and vals[lab][0]:
                        ratios[lab] = vals[lab][0] / fq
            if ratios:
                line += "   " + ", ".join("%s %.3fx" % (lab, r) for lab, r in ratios.items())
                head = "annkit-%s" % modes[0] if modes else None
                if head in ratios and abs(target - 0.95) < 1e-9:
                    line += verdict(ratios[head], 1.2)
            print(line)
            vals_med = {lab: qps_at(curves_med[lab], target)[0] for lab in labels if lab in curves_med}
            ratios_med = {}
            if vals_med.get("faiss"):
                for lab in labels:
                    if lab.startswith("annkit") and vals_med.get(lab):
                        ratios_med[lab] = vals_med[lab] / vals_med["faiss"]
            summary.append(rec(kind="summary", part="ivf_flat_equal_recall", target_recall=target,
                               qps={lab: vals[lab][0] for lab in labels},
                               how={lab: vals[lab][1] for lab in labels},
                               ratio_vs_faiss=ratios, qps_median=vals_med, ratio_vs_faiss_median=ratios_med,
                               target=1.2 if abs(target - 0.95) < 1e-9 else None,
                               n_lists=args.n_lists))
            med_lines.append("%7.2f   %s" % (target, ", ".join("%s %.3fx" % (lab, r) for lab, r in ratios_med.items())
                                             if ratios_med else "-"))
        if med_lines and args.runs > 1:
            print("the same ratios from the median QPS of the runs (a check on timing noise):")
            for line in med_lines:
                print(line)
    rep.close()
    print("\nraw results: %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

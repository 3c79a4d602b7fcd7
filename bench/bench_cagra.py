#!/usr/bin/python3
"""annkit CAGRA (CPU) vs hnswlib (Debian's Python binding and a native build) on fashion-mnist-784-euclidean, k = 10.

Run with Debian's interpreter (python3-hnswlib 0.6.2, python3-h5py, python3-numpy):

    /usr/bin/python3 bench/bench_cagra.py [--runs 3] [--threads 2] [--annkit-bin DIR] ...

Peers, all three in the same run, each on --threads threads:
  hnswlib         Debian's python3-hnswlib (add_items / knn_query with num_threads).
  hnswlib-native  bench/hnsw_native.cpp against Debian's libhnswlib-dev headers, compiled by
                  this script with `g++ -O3 -march=native -fopenmp -std=c++17 -pthread` into
                  bench/out/hnsw_native (recompiled when the source, the headers or the command
                  change). No compiler or no headers: the peer is skipped with a message.
                  --skip-native leaves it out; --native-bin uses a binary built elsewhere.
  annkit          `annbuild --algo cagra` and `annsearch --json`, --device cpu.

Build: hnswlib with M = 16, ef_construction = 200 on both hnswlib peers (all rows added on
all threads; the native build adds the first row alone, then the rest in parallel, as the
Python binding does) against annkit's `annbuild --algo cagra` with its initial NN-Descent
graph included (the time annbuild -v reports for the build, and the process wall time with
loading and saving beside it); best of --build-runs builds on each side, the sides built
back to back in each round. hnswlib times cover allocating the index and adding the rows.
Search: all test queries in one batch on --threads threads; hnswlib swept over ef (the
native peer: one process per round that loads the index the last native build saved, like
annkit's one annsearch process per round; loading is not timed), annkit over itopk_size
(and, since itopk_size is rounded up to 32, over max_iterations at itopk_size 32 for the
low-recall end); best of --runs runs of each setting, the runs alternating between the
sides so that changing machine load hits all alike.
Recall is recall@10 by id intersection with the file's neighbors. QPS at equal recall
(0.90, 0.95, 0.99): each side's points reduced to their Pareto frontier, log(QPS)
interpolated linearly in recall between the two frontier points around the target.
Ratios are annkit/peer for each hnswlib peer (search QPS at equal recall; build seconds).
Targets (DESIGN.md): QPS at recall 0.95 >= 1.2x hnswlib; build time <= 0.5x hnswlib.

Data: datasets/out/fashion-mnist-784-euclidean.hdf5 (train, test, neighbors); when it
is missing, /tmp/fm/train.fbin and /tmp/fm/test.fbin with ground truth computed by
annkit's brute force (--fbin-dir to point elsewhere). The native peer reads train.fbin,
test.fbin and truth.ibin that the script writes to its temporary directory.
Raw results: bench/out/cagra.jsonl.  Exit status: 0 done (targets met or not), 1 error,
2 usage error.
"""

import os
import sys

_THREADS = "2"
for _i, _a in enumerate(sys.argv):
    if _a.startswith("--threads="):
        _THREADS = _a.split("=", 1)[1]
    elif _a == "--threads" and _i + 1 < len(sys.argv):
        _THREADS = sys.argv[_i + 1]
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = _THREADS

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

PROG = "bench_cagra.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "datasets", "out", "fashion-mnist-784-euclidean.hdf5")
DEFAULT_OUT = os.path.join(ROOT, "bench", "out", "cagra.jsonl")
NATIVE_SRC = os.path.join(ROOT, "bench", "hnsw_native.cpp")
DEFAULT_NATIVE_BIN = os.path.join(ROOT, "bench", "out", "hnsw_native")
NATIVE_FLAGS = ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-pthread"]
TARGETS = (0.90, 0.95, 0.99)
TARGET_QPS_RATIO = 1.2
TARGET_BUILD_RATIO = 0.5


def die(msg, code=1):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.exit(code)


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


try:
    import h5py
    import numpy as np
except ImportError as e:
    die("%s (run with /usr/bin/python3; apt install python3-h5py python3-numpy)" % e)


def debian_version(pkg):
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return p.stdout.strip() or None if p.returncode == 0 else None
    except OSError:
        return None


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# --------------------------------------------------------------- recall, QPS

def recall_ids(found, truth, k):
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += np.intersect1d(f[f >= 0], t).size
    return hits / float(k * found.shape[0])


def pareto(points):
    """[(recall, qps)] -> frontier by recall ascending; each kept point is faster
    than every point of higher recall."""
    front, best = [], -1.0
    for r, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if q > best:
            front.append((r, q))
            best = q
    return front[::-1]


def qps_at(points, target):
    """(qps, how): how = 'interp', 'lower-bound' (every point is above the target;
    the QPS of the lowest-recall one) or None (target not reached)."""
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


# --------------------------------------------------------------------- data

class Data:
    pass


def run(argv, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


def read_fbin(path):
    with open(path, "rb") as f:
        n, d = np.fromfile(f, dtype=np.uint32, count=2)
        return np.fromfile(f, dtype=np.float32, count=int(n) * int(d)).reshape(int(n), int(d))


def write_bin(path, a, dtype):
    """.fbin / .ibin: uint32 rows, uint32 cols, then the row-major data."""
    a = np.ascontiguousarray(a, dtype=dtype)
    with open(path, "wb") as f:
        np.array(a.shape, dtype=np.uint32).tofile(f)
        a.tofile(f)


def load_data(args, work):
    d = Data()
    if os.path.exists(args.data):
        with h5py.File(args.data, "r") as f:
            d.train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
            d.test = np.ascontiguousarray(f["test"][:], dtype=np.float32)
            d.truth = np.asarray(f["neighbors"][:, :args.k], dtype=np.int64)
        d.train_spec, d.test_spec = args.data + ":train", args.data + ":test"
        d.truth_spec = args.data + ":neighbors"
        d.source = args.data
        return d
    tr, te = os.path.join(args.fbin_dir, "train.fbin"), os.path.join(args.fbin_dir, "test.fbin")
    if not (os.path.exists(tr) and os.path.exists(te)):
        die("neither %s nor %s and %s exist" % (args.data, tr, te))
    log("%s is missing: using %s, %s and annkit brute force for the ground truth" % (args.data, tr, te))
    d.train, d.test = read_fbin(tr), read_fbin(te)
    bf, gt = os.path.join(work, "bf.idx"), os.path.join(work, "truth.ivecs")
    run([args.tool("annbuild"), "-f", "--algo", "brute_force", "--threads", str(args.threads), tr, "-o", bf])
    run([args.tool("annsearch"), "-f", "--threads", str(args.threads), bf, te, "-k", str(args.k), "-o", gt])
    raw = np.fromfile(gt, dtype=np.int32).reshape(d.test.shape[0], args.k + 1)
    d.truth = raw[:, 1:].astype(np.int64)
    d.train_spec, d.test_spec, d.truth_spec, d.source = tr, te, gt, tr
    return d


# -------------------------------------------------------------------- peers

def hnswlib_build(hnswlib, train, M, efc, threads):
    index = hnswlib.Index(space="l2", dim=train.shape[1])
    t0 = time.perf_counter()
    index.init_index(max_elements=train.shape[0], M=M, ef_construction=efc, random_seed=100)
    index.add_items(train, np.arange(train.shape[0]), num_threads=threads)
    return index, time.perf_counter() - t0


def hnswlib_sweep_once(index, test, truth, k, efs, threads):
    out = {}
    for ef in efs:
        index.set_ef(max(ef, k))
        t0 = time.perf_counter()
        ids, _ = index.knn_query(test, k=k, num_threads=threads)
        sec = time.perf_counter() - t0
        out[ef] = {"qps": test.shape[0] / sec, "seconds": sec,
                   "recall": recall_ids(ids.astype(np.int64), truth, k)}
    return out


# hnswlib compiled here: bench/hnsw_native.cpp

def compile_native(args):
    """-> (binary, info dict) or (None, reason). Compiles only when the binary is missing or
    older than the source or the headers, or was made by another command."""
    if args.native_bin:
        if not os.access(args.native_bin, os.X_OK):
            return None, "--native-bin %s is not an executable" % args.native_bin
        return args.native_bin, {"binary": args.native_bin, "cmd": None}
    cxx = shutil.which(args.cxx)
    if cxx is None:
        return None, "compiler %r not found (apt install g++)" % args.cxx
    header = os.path.join(args.hnswlib_include, "hnswlib", "hnswlib.h")
    if not os.path.exists(header):
        return None, "%s not found (apt install libhnswlib-dev, or --hnswlib-include DIR)" % header
    if not os.path.exists(NATIVE_SRC):
        return None, "%s not found" % NATIVE_SRC
    out = args.native_out
    inc = [] if os.path.realpath(args.hnswlib_include) == "/usr/include" else ["-I", args.hnswlib_include]
    cmd = [cxx] + NATIVE_FLAGS + inc + [NATIVE_SRC, "-o", out]
    try:
        version = subprocess.run([cxx, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        version = None
    info = {"binary": out, "cmd": " ".join(cmd), "compiler": version}
    stamp = out + ".cmd"
    hdr_dir = os.path.dirname(header)
    newest = max([os.path.getmtime(NATIVE_SRC)] +
                 [os.path.getmtime(os.path.join(hdr_dir, h)) for h in os.listdir(hdr_dir)])
    try:
        with open(stamp) as f:
            same_cmd = f.read() == info["cmd"]
        fresh = same_cmd and os.access(out, os.X_OK) and os.path.getmtime(out) >= newest
    except OSError:
        fresh = False
    if fresh:
        return out, info
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    log("compiling the native hnswlib peer: %s" % info["cmd"])
    tmp = out + ".tmp"
    p = subprocess.run(cmd[:-1] + [tmp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-15:])
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return None, "compiling %s failed (exit %d)%s" % (NATIVE_SRC, p.returncode, ":\n" + tail if tail else "")
    os.replace(tmp, out)
    with open(stamp, "w") as f:
        f.write(info["cmd"])
    return out, info


def native_build(args, paths, index_path):
    argv = [args.native, "--json", "--train", paths["train"], "--save", index_path, "--M", str(args.M),
            "--ef-construction", str(args.ef_construction), "--threads", str(args.threads)]
    t0 = time.perf_counter()
    p = run(argv)
    wall = time.perf_counter() - t0
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if r.get("event") == "build":
            return r["build_s"], wall, r
    raise RuntimeError("%s did not report the build: %s" % (args.native, p.stdout + p.stderr))


def native_sweep_once(args, paths, index_path, efs):
    argv = [args.native, "--json", "--load", index_path, "--queries", paths["test"], "--truth", paths["truth"],
            "-k", str(args.k), "--threads", str(args.threads), "--ef", ",".join(str(e) for e in efs)]
    p = run(argv)
    out = {}
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if r.get("event") == "search":
            out[r["ef"]] = {"qps": r["qps"], "seconds": r["seconds"], "recall": r["recall"]}
    if len(out) != len(set(efs)):
        raise RuntimeError("%s reported %d of %d ef settings" % (args.native, len(out), len(set(efs))))
    return out


BUILT_RE = re.compile(r"built cagra index: .* ([0-9.]+) s on")


def annkit_build(args, data, out_path):
    argv = [args.tool("annbuild"), "-v", "-f", "--algo", "cagra", "--threads", str(args.threads),
            "--device", "cpu", "--build-algo", args.build_algo,
            "--graph-degree", str(args.graph_degree),
            "--intermediate-graph-degree", str(args.intermediate_graph_degree),
            "--nn-descent-niter", str(args.nn_descent_niter), data.train_spec, "-o", out_path]
    t0 = time.perf_counter()
    p = run(argv)
    wall = time.perf_counter() - t0
    m = BUILT_RE.search(p.stderr)
    if not m:
        raise RuntimeError("annbuild -v did not report the build time: %s" % p.stderr)
    return float(m.group(1)), wall, argv


def annkit_sweep_once(args, data, index_path, settings):
    """settings: [(itopk, max_iterations)] -> {setting: record}."""
    out = {}
    by_iter = {}
    for itopk, mi in settings:
        by_iter.setdefault(mi, []).append(itopk)
    for mi, itopks in sorted(by_iter.items()):
        argv = [args.tool("annsearch"), "--json", "--threads", str(args.threads), "--device", "cpu",
                index_path, data.test_spec, "-k", str(args.k), "--truth", data.truth_spec,
                "--itopk-size", ",".join(str(i) for i in itopks), "--max-iterations", str(mi)]
        p = run(argv)
        for line in p.stdout.splitlines():
            r = json.loads(line)
            out[(r["itopk_size"], r["max_iterations"])] = {
                "qps": r["qps"], "seconds": r["seconds"], "recall": r["recall"], "raw": r}
    return out


def fold(best, run_out):
    for key, r in run_out.items():
        prev = best.get(key)
        runs = (prev["qps_runs"] if prev else []) + [r["qps"]]
        if prev is None or r["qps"] > prev["qps"]:
            best[key] = dict(r)
        best[key]["qps_runs"] = runs


# --------------------------------------------------------------------- main

def parse_list(s, what):
    try:
        return [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        die("%s: expected a comma-separated list of integers, got %r" % (what, s), 2)


def fmt(q):
    return "-" if q is None else ("%.0f" % q if q >= 100 else "%.2f" % q)


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="ann-benchmarks HDF5 file")
    ap.add_argument("--fbin-dir", default="/tmp/fm", help="train.fbin/test.fbin when --data is missing")
    ap.add_argument("--annkit-bin", default=None, help="directory of the annkit tools (default: build/tools)")
    ap.add_argument("--threads", type=int, default=2, help="threads on every side (default 2)")
    ap.add_argument("--runs", type=int, default=3, help="search runs per setting (best counts)")
    ap.add_argument("--build-runs", type=int, default=3, help="builds per side (best counts)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--M", type=int, default=16, help="hnswlib M, both hnswlib peers")
    ap.add_argument("--ef-construction", type=int, default=200, help="hnswlib ef_construction, both hnswlib peers")
    ap.add_argument("--efs", default="10,12,14,16,20,24,32,40,48,64,96,128", help="hnswlib ef sweep, both peers")
    ap.add_argument("--graph-degree", type=int, default=32)
    ap.add_argument("--intermediate-graph-degree", type=int, default=32)
    ap.add_argument("--build-algo", default="nn_descent")
    ap.add_argument("--nn-descent-niter", type=int, default=4,
                    help="NN-Descent iterations of the initial graph (4 gives the graph quality of 20 here)")
    ap.add_argument("--itopk", default="32,64,96,128,192,256", help="itopk_size sweep (max_iterations auto)")
    ap.add_argument("--iters", default="6,8,10,12,14,16,20,24,28",
                    help="max_iterations sweep at itopk_size 32 (the low-recall end)")
    ap.add_argument("--no-hnswlib", action="store_true", help="annkit only (no hnswlib peer at all)")
    ap.add_argument("--no-hnswlib-py", action="store_true", help="leave out Debian's python3-hnswlib")
    ap.add_argument("--skip-native", "--no-native", dest="skip_native", action="store_true",
                    help="leave out the native (-O3 -march=native) hnswlib build")
    ap.add_argument("--cxx", default=os.environ.get("CXX", "g++"),
                    help="C++ compiler for the native peer (default $CXX or g++)")
    ap.add_argument("--hnswlib-include", default="/usr/include",
                    help="directory holding hnswlib/hnswlib.h (default /usr/include, Debian's libhnswlib-dev)")
    ap.add_argument("--native-out", default=DEFAULT_NATIVE_BIN, help="where the native peer is compiled to")
    ap.add_argument("--native-bin", default=None, help="use this hnsw_native binary; compile nothing")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    args = ap.parse_args()
    if args.threads < 1 or args.runs < 1 or args.build_runs < 1 or args.k < 1:
        die("--threads, --runs, --build-runs and -k must be at least 1", 2)

    if args.annkit_bin is None:
        for cand in ("build",):
            if os.path.exists(os.path.join(ROOT, cand, "tools", "annsearch")):
                args.annkit_bin = os.path.join(ROOT, cand, "tools")
                break
        else:
            die("no built annkit tools (build with meson/ninja, or --annkit-bin DIR)")
    args.tool = lambda name: os.path.join(args.annkit_bin, name)
    efs = parse_list(args.efs, "--efs")
    settings = [(i, 0) for i in parse_list(args.itopk, "--itopk")] + \
               [(32, m) for m in parse_list(args.iters, "--iters")]
    hnswlib = None
    if not (args.no_hnswlib or args.no_hnswlib_py):
        try:
            import hnswlib as _h
            hnswlib = _h
        except ImportError as e:
            die("%s (apt install python3-hnswlib, or --no-hnswlib-py)" % e)
    args.native, native_info, native_skipped = None, None, None
    if args.no_hnswlib or args.skip_native:
        native_skipped = "--no-hnswlib" if args.no_hnswlib else "--skip-native"
    else:
        args.native, native_info = compile_native(args)
        if args.native is None:
            native_skipped, native_info = native_info, None
            log("skipping the native hnswlib peer: %s" % native_skipped)

    # the hnswlib peers, in the order they run and print
    peers = []
    if hnswlib:
        peers.append({"name": "hnswlib", "short": "hnswlib-py", "builds": [], "best": {}})
    if args.native:
        peers.append({"name": "hnswlib-native", "short": "native", "builds": [], "best": {}})

    work = tempfile.mkdtemp(prefix="bench_cagra.")
    try:
        data = load_data(args, work)
        log("data: %s: train %s, test %s; load average %s" % (data.source, data.train.shape, data.test.shape,
                                                               loadavg()))
        paths = None
        if args.native:
            paths = {"train": os.path.join(work, "train.fbin"), "test": os.path.join(work, "test.fbin"),
                     "truth": os.path.join(work, "truth.ibin")}
            write_bin(paths["train"], data.train, np.float32)
            write_bin(paths["test"], data.test, np.float32)
            write_bin(paths["truth"], data.truth[:, :args.k], np.int32)
        meta = {"kind": "meta", "bench": "cagra-fashion-mnist", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
                "threads": args.threads, "k": args.k, "runs": args.runs, "build_runs": args.build_runs,
                "hnswlib": getattr(hnswlib, "__version__", None) if hnswlib else None,
                "python3-hnswlib": debian_version("python3-hnswlib") if hnswlib else None,
                "libhnswlib-dev": debian_version("libhnswlib-dev") if args.native else None,
                "hnswlib_native": native_info, "hnswlib_native_skipped": native_skipped,
                "numpy": np.__version__, "data": data.source, "loadavg_start": loadavg()}
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        meta["cpu"] = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        records = [meta]

        # ---- builds, back to back in each round, best of N
        idx = os.path.join(work, "fm.cagra")
        nidx = os.path.join(work, "fm.hnsw")
        ab, aw = [], []
        hindex = None
        argv = None
        for b in range(args.build_runs):
            for p in peers:
                if p["name"] == "hnswlib":
                    hindex = None
                    hindex, t = hnswlib_build(hnswlib, data.train, args.M, args.ef_construction, args.threads)
                    p["builds"].append(t)
                else:
                    t, w, r = native_build(args, paths, nidx)
                    p["builds"].append(t)
                    p.setdefault("process", []).append(w)
                    p["simd"] = r.get("simd")
                log("build %d: %s %.2f s (load %s)" % (b + 1, p["name"], t, loadavg()))
            t, w, argv = annkit_build(args, data, idx)
            ab.append(t)
            aw.append(w)
            log("build %d: annkit cagra %.2f s (process %.2f s) (load %s)" % (b + 1, t, w, loadavg()))
        records.append({"kind": "build", "peer": "annkit", "algo": "cagra", "build_s": min(ab), "build_runs": ab,
                        "process_s": min(aw), "argv": argv})
        for p in peers:
            rec = {"kind": "build", "peer": p["name"], "algo": "hnsw", "M": args.M,
                   "ef_construction": args.ef_construction, "build_s": min(p["builds"]), "build_runs": p["builds"]}
            if "process" in p:
                rec.update(process_s=min(p["process"]), simd=p.get("simd"))
            records.append(rec)

        # ---- search sweeps, alternating rounds, best of N
        abest = {}
        for r in range(args.runs):
            for p in peers:
                if p["name"] == "hnswlib":
                    fold(p["best"], hnswlib_sweep_once(hindex, data.test, data.truth, args.k, efs, args.threads))
                else:
                    fold(p["best"], native_sweep_once(args, paths, nidx, efs))
            fold(abest, annkit_sweep_once(args, data, idx, settings))
            log("search round %d of %d done (load %s)" % (r + 1, args.runs, loadavg()))
        for p in peers:
            for ef, rec in sorted(p["best"].items()):
                records.append(dict(rec, kind="search", peer=p["name"], ef=ef))
        for (it, mi), rec in sorted(abest.items()):
            records.append(dict(rec, kind="search", peer="annkit", itopk_size=it, max_iterations=mi))

        # ---- report
        print("== CAGRA (annkit, CPU) vs %s on %s, k = %d, %d threads each, %d queries in one batch"
              % (" and ".join(p["name"] for p in peers) or "no peer", os.path.basename(data.source), args.k,
                 args.threads, data.test.shape[0]))
        print("load average at start %s, at end %s" % (meta["loadavg_start"], loadavg()))
        if native_info and native_info.get("cmd"):
            print("native peer: %s  (%s; hnswlib SIMD compiled in: %s)" % (
                native_info["cmd"], native_info.get("compiler"), next((p.get("simd") for p in peers
                                                                       if p["name"] == "hnswlib-native"), "?")))
        elif native_skipped:
            print("native peer: skipped (%s)" % native_skipped.splitlines()[0])
        print()
        print("build (best of %d)" % args.build_runs)
        for p in peers:
            extra = "   (process incl. load+save %.2f s)" % min(p["process"]) if "process" in p else ""
            print("  %-44s %7.2f s   runs %s%s" % (
                "%s M=%d ef_construction=%d" % (p["name"], args.M, args.ef_construction), min(p["builds"]),
                " ".join("%.2f" % t for t in p["builds"]), extra))
        print("  %-44s %7.2f s   runs %s   (process incl. load+save %.2f s)" % (
            "annkit cagra (%s, ideg %d, deg %d)" % (args.build_algo, args.intermediate_graph_degree,
                                                     args.graph_degree),
            min(ab), " ".join("%.2f" % t for t in ab), min(aw)))
        build_summary = {"kind": "summary", "part": "build", "annkit_s": min(ab), "peers": {}}
        for p in peers:
            bratio = min(ab) / min(p["builds"])
            rounds = sorted(a / h for a, h in zip(ab, p["builds"]))
            print("  build time annkit/%-15s %.2fx (best/best)  [target <= %.1fx: %s];"
                  " per round %s, median %.2fx" % (
                      p["name"] + ":", bratio, TARGET_BUILD_RATIO,
                      "met" if bratio <= TARGET_BUILD_RATIO else "NOT met",
                      " ".join("%.2fx" % x for x in rounds), rounds[len(rounds) // 2]))
            build_summary["peers"][p["name"]] = {"build_s": min(p["builds"]), "ratio": bratio,
                                                 "round_ratios": rounds}
        # the keys of the earlier single-peer summary (Debian's python3-hnswlib)
        py = build_summary["peers"].get("hnswlib")
        build_summary.update(hnswlib_s=py["build_s"] if py else None, ratio=py["ratio"] if py else None,
                             round_ratios=py["round_ratios"] if py else [])
        print()
        print("search sweeps (best of %d runs)" % args.runs)
        for p in peers:
            print("  %s:  ef     recall      QPS" % p["name"])
            for ef, rec in sorted(p["best"].items()):
                print("  %s   %4d   %.4f  %8.0f" % (" " * len(p["name"]), ef, rec["recall"], rec["qps"]))
        print("  annkit:   itopk  max_it  recall      QPS")
        for (it, mi), rec in sorted(abest.items(), key=lambda kv: kv[1]["recall"]):
            print("           %5d  %6d  %.4f  %8.0f" % (it, mi, rec["recall"], rec["qps"]))
        print()
        print("QPS at equal recall@%d (log-QPS interpolated on each Pareto frontier); ratio = annkit/peer" % args.k)
        print("  recall  " + "".join("%12s" % p["short"] for p in peers) + "%12s" % "annkit" +
              "".join("%19s" % ("annkit/" + p["short"]) for p in peers))
        apts = [(r["recall"], r["qps"]) for r in abest.values()]
        for t in TARGETS:
            aq, ah = qps_at(apts, t)
            qps, how, ratios = {"annkit": aq}, {"annkit": ah}, {}
            for p in peers:
                q, h = qps_at([(r["recall"], r["qps"]) for r in p["best"].values()], t)
                qps[p["name"]], how[p["name"]] = q, h
                ratios[p["name"]] = aq / q if aq and q else None
            notes = []
            if t == 0.95 and any(v is not None for v in ratios.values()):
                notes.append("target >= %.1fx: %s" % (TARGET_QPS_RATIO, ", ".join(
                    "%s %s" % (p["short"], "-" if ratios[p["name"]] is None else
                               "met" if ratios[p["name"]] >= TARGET_QPS_RATIO else "NOT met") for p in peers)))
            lb = [n for n, h in how.items() if h == "lower-bound"]
            if lb:
                notes.append("%s: every point above" % ", ".join(lb))
            print("  %.2f    " % t + "".join("%12s" % fmt(qps[p["name"]]) for p in peers) + "%12s" % fmt(aq) +
                  "".join("%19s" % ("-" if ratios[p["name"]] is None else "%.2fx" % ratios[p["name"]])
                          for p in peers) + ("  [%s]" % "; ".join(notes) if notes else ""))
            records.append({"kind": "summary", "target_recall": t, "qps": qps, "how": how,
                            "ratio": ratios.get("hnswlib"), "ratios": ratios})
        build_summary["loadavg_end"] = loadavg()
        records.append(build_summary)
        d = os.path.dirname(args.output)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(args.output + ".tmp", "w") as f:
            for rec in records:
                f.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
        os.replace(args.output + ".tmp", args.output)
        print()
        print("raw results: %s" % args.output)
    except RuntimeError as e:
        die(str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

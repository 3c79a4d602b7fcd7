#!/usr/bin/python3
"""annkit CAGRA (CPU) vs hnswlib on fashion-mnist-784-euclidean, k = 10.

Run with Debian's interpreter (python3-hnswlib 0.6.2, python3-h5py, python3-numpy):

    /usr/bin/python3 bench/bench_cagra.py [--runs 3] [--threads 2] [--annkit-bin DIR] ...

Build: hnswlib with M = 16, ef_construction = 200 (add_items on all threads) against
annkit's `annbuild --algo cagra` with its initial NN-Descent graph included (the time
annbuild -v reports for the build, and the process wall time with loading and saving
beside it); best of --build-runs builds on each side.
Search: all test queries in one batch on --threads threads; hnswlib swept over ef,
annkit over itopk_size (and, since itopk_size is rounded up to 32, over max_iterations
at itopk_size 32 for the low-recall end); best of --runs runs of each setting, the runs
alternating between the two sides so that changing machine load hits both alike.
Recall is recall@10 by id intersection with the file's neighbors. QPS at equal recall
(0.90, 0.95, 0.99): each side's points reduced to their Pareto frontier, log(QPS)
interpolated linearly in recall between the two frontier points around the target.
Targets (DESIGN.md): QPS at recall 0.95 >= 1.2x hnswlib; build time <= 0.5x hnswlib.

Data: datasets/out/fashion-mnist-784-euclidean.hdf5 (train, test, neighbors); when it
is missing, /tmp/fm/train.fbin and /tmp/fm/test.fbin with ground truth computed by
annkit's brute force (--fbin-dir to point elsewhere).
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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="search runs per setting (best counts)")
    ap.add_argument("--build-runs", type=int, default=3, help="builds per side (best counts)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--efs", default="10,12,14,16,20,24,32,40,48,64,96,128")
    ap.add_argument("--graph-degree", type=int, default=32)
    ap.add_argument("--intermediate-graph-degree", type=int, default=32)
    ap.add_argument("--build-algo", default="nn_descent")
    ap.add_argument("--nn-descent-niter", type=int, default=4,
                    help="NN-Descent iterations of the initial graph (4 gives the graph quality of 20 here)")
    ap.add_argument("--itopk", default="32,64,96,128,192,256", help="itopk_size sweep (max_iterations auto)")
    ap.add_argument("--iters", default="6,8,10,12,14,16,20,24,28",
                    help="max_iterations sweep at itopk_size 32 (the low-recall end)")
    ap.add_argument("--no-hnswlib", action="store_true", help="annkit only")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    args = ap.parse_args()

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
    if not args.no_hnswlib:
        try:
            import hnswlib as _h
            hnswlib = _h
        except ImportError as e:
            die("%s (apt install python3-hnswlib, or --no-hnswlib)" % e)

    work = tempfile.mkdtemp(prefix="bench_cagra.")
    try:
        data = load_data(args, work)
        log("data: %s: train %s, test %s; load average %s" % (data.source, data.train.shape, data.test.shape,
                                                               loadavg()))
        meta = {"kind": "meta", "bench": "cagra-fashion-mnist", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
                "threads": args.threads, "k": args.k, "runs": args.runs, "build_runs": args.build_runs,
                "hnswlib": getattr(hnswlib, "__version__", None) if hnswlib else None,
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

        # ---- builds, alternating, best of N
        idx = os.path.join(work, "fm.cagra")
        hb, ab, aw = [], [], []
        hindex = None
        argv = None
        for b in range(args.build_runs):
            if hnswlib:
                hindex = None
                hindex, t = hnswlib_build(hnswlib, data.train, args.M, args.ef_construction, args.threads)
                hb.append(t)
                log("build %d: hnswlib %.2f s (load %s)" % (b + 1, t, loadavg()))
            t, w, argv = annkit_build(args, data, idx)
            ab.append(t)
            aw.append(w)
            log("build %d: annkit cagra %.2f s (process %.2f s) (load %s)" % (b + 1, t, w, loadavg()))
        records.append({"kind": "build", "peer": "annkit", "algo": "cagra", "build_s": min(ab), "build_runs": ab,
                        "process_s": min(aw), "argv": argv})
        if hnswlib:
            records.append({"kind": "build", "peer": "hnswlib", "algo": "hnsw", "M": args.M,
                            "ef_construction": args.ef_construction, "build_s": min(hb), "build_runs": hb})

        # ---- search sweeps, alternating rounds, best of N
        hbest, abest = {}, {}
        for r in range(args.runs):
            if hnswlib:
                fold(hbest, hnswlib_sweep_once(hindex, data.test, data.truth, args.k, efs, args.threads))
            fold(abest, annkit_sweep_once(args, data, idx, settings))
            log("search round %d of %d done (load %s)" % (r + 1, args.runs, loadavg()))
        for ef, rec in sorted(hbest.items()):
            records.append(dict(rec, kind="search", peer="hnswlib", ef=ef))
        for (it, mi), rec in sorted(abest.items()):
            rr = dict(rec, kind="search", peer="annkit", itopk_size=it, max_iterations=mi)
            records.append(rr)

        # ---- report
        print("== CAGRA (annkit, CPU) vs hnswlib on %s, k = %d, %d threads, %d queries in one batch"
              % (os.path.basename(data.source), args.k, args.threads, data.test.shape[0]))
        print("load average at start %s, at end %s" % (meta["loadavg_start"], loadavg()))
        print()
        print("build (best of %d)" % args.build_runs)
        if hnswlib:
            print("  hnswlib M=%d ef_construction=%d   %7.2f s   runs %s" % (
                args.M, args.ef_construction, min(hb), " ".join("%.2f" % t for t in hb)))
        print("  annkit cagra (%s, ideg %d, deg %d)   %7.2f s   runs %s   (process incl. load+save %.2f s)" % (
            args.build_algo, args.intermediate_graph_degree, args.graph_degree, min(ab),
            " ".join("%.2f" % t for t in ab), min(aw)))
        bratio = min(ab) / min(hb) if hnswlib else None
        rounds = sorted(a / h for a, h in zip(ab, hb)) if hnswlib else []
        if bratio is not None:
            print("  build time annkit/hnswlib: %.2fx (best/best)  [target <= %.1fx: %s]" % (
                bratio, TARGET_BUILD_RATIO, "met" if bratio <= TARGET_BUILD_RATIO else "NOT met"))
            print("  per build round (each side built back to back): %s, median %.2fx" % (
                " ".join("%.2fx" % r for r in rounds), rounds[len(rounds) // 2]))
        print()
        print("search sweeps (best of %d runs)" % args.runs)
        if hnswlib:
            print("  hnswlib:  ef     recall      QPS")
            for ef, rec in sorted(hbest.items()):
                print("           %4d   %.4f  %8.0f" % (ef, rec["recall"], rec["qps"]))
        print("  annkit:   itopk  max_it  recall      QPS")
        for (it, mi), rec in sorted(abest.items(), key=lambda kv: kv[1]["recall"]):
            print("           %5d  %6d  %.4f  %8.0f" % (it, mi, rec["recall"], rec["qps"]))
        print()
        print("QPS at equal recall@%d (log-QPS interpolated on each Pareto frontier)" % args.k)
        print("  recall    hnswlib     annkit    ratio")
        apts = [(r["recall"], r["qps"]) for r in abest.values()]
        hpts = [(r["recall"], r["qps"]) for r in hbest.values()]
        for t in TARGETS:
            aq, ah = qps_at(apts, t)
            hq, hh = qps_at(hpts, t) if hnswlib else (None, None)
            ratio = aq / hq if aq and hq else None
            note = ""
            if t == 0.95 and ratio is not None:
                note = "  [target >= %.1fx: %s]" % (TARGET_QPS_RATIO, "met" if ratio >= TARGET_QPS_RATIO else "NOT met")
            if ah == "lower-bound" or hh == "lower-bound":
                note += "  (%s)" % ", ".join("%s: every point above" % n for n, h in
                                            (("annkit", ah), ("hnswlib", hh)) if h == "lower-bound")
            print("  %.2f   %9s  %9s   %6s%s" % (t, fmt(hq), fmt(aq), "-" if ratio is None else "%.2fx" % ratio,
                                                note))
            records.append({"kind": "summary", "target_recall": t, "qps": {"annkit": aq, "hnswlib": hq},
                            "how": {"annkit": ah, "hnswlib": hh}, "ratio": ratio})
        records.append({"kind": "summary", "part": "build", "annkit_s": min(ab),
                        "hnswlib_s": min(hb) if hnswlib else None, "ratio": bratio, "round_ratios": rounds,
                        "loadavg_end": loadavg()})
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

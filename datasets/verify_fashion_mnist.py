#!/usr/bin/python3
"""Verify fashion-mnist-784-euclidean.hdf5 against the ann-benchmarks layout.

Run with Debian's interpreter (python3-h5py, python3-numpy):

    /usr/bin/python3 datasets/verify_fashion_mnist.py [FILE] [--rows N] [--seed S] [--idx-dir DIR]

Checks (notes/formats-and-anchors.md section 3):
  * datasets train, test, neighbors, distances at the root, with shapes
    60000x784, 10000x784, 10000x100, 10000x100 and dtypes float32, float32,
    int32, float32;
  * the file attribute 'distance' reads back as the str 'euclidean';
  * train and test equal the Debian idx images (when the idx files are readable);
  * every neighbors row holds distinct ids in [0, 60000) and every distances row
    is finite and ascending;
  * for N test rows (default 200, seeded choice), neighbors equals the exact
    top-100 of a numpy float64 brute force (ties by lower id) and distances
    equal the true Euclidean distances within 1e-3 relative;
  * the SHA-256 of the raw little-endian contents of train, test and neighbors
    equal the known-good digests below (those of a full float64 brute force over
    all 10000 test rows); the distances digest is only reported, since a correct
    writer may round the last bit of a float32 distance differently.
Exit status: 0 all checks pass, 1 any failure, 2 usage error.
"""

import argparse
import gzip
import hashlib
import os
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    sys.stderr.write("verify_fashion_mnist.py: %s (run with /usr/bin/python3; "
                     "apt install python3-h5py python3-numpy)\n" % e)
    sys.exit(1)

PROG = "verify_fashion_mnist.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FILE = os.path.join(ROOT, "datasets", "out", "fashion-mnist-784-euclidean.hdf5")
DEFAULT_IDX = "/usr/share/datasets/fashion-mnist"

N_TRAIN, N_TEST, DIM, K = 60000, 10000, 784, 100
EXPECTED = {
    "train": ((N_TRAIN, DIM), np.float32),
    "test": ((N_TEST, DIM), np.float32),
    "neighbors": ((N_TEST, K), np.int32),
    "distances": ((N_TEST, K), np.float32),
}
# SHA-256 of each dataset's contents (C order, little endian), not of the file:
# libhdf5 may store object timestamps, so the file's own bytes need not repeat.
CONTENT_SHA256 = {
    "train": "f6dbbc68019e1afed449c7e2130a3c1080565792ee36a6e205901fae1ff56d3b",
    "test": "0169a6f9509eaf39785478798039e49921dcb7db2d1596bc6e6287522b43337e",
    "neighbors": "fa4c540473991f5c0d6222f6e42c558e6091aafd73a43f8dcec81845fd41c225",
    "distances": "a41116d76f13713434e4b4ebe2048da097a382e6c652746cea0b4beb25420480",
}
DIGEST_REQUIRED = ("train", "test", "neighbors")


def content_sha256(a):
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(a.tobytes()).hexdigest()


class Checker:
    def __init__(self):
        self.failures = 0

    def ok(self, msg):
        print("ok    %s" % msg)

    def fail(self, msg):
        self.failures += 1
        print("FAIL  %s" % msg)

    def check(self, cond, msg, detail=""):
        if cond:
            self.ok(msg)
        else:
            self.fail(msg + (": " + detail if detail else ""))
        return cond


def read_idx_images(path):
    """MNIST idx3 (gzipped): magic 0x00000803, counts big endian, then uint8 pixels."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 0x803:
        raise ValueError("%s: bad idx3 magic 0x%x" % (path, magic))
    data = np.frombuffer(raw[16:], dtype=np.uint8)
    if data.size != n * rows * cols:
        raise ValueError("%s: %d pixels, header says %d" % (path, data.size, n * rows * cols))
    return data.reshape(n, rows * cols)


def exact_topk(train64, train_sq, q64, k):
    """Exact squared L2 of one query against all rows (integer pixels: exact in
    float64), top k by (distance, id)."""
    d2 = train_sq - 2.0 * (train64 @ q64) + float(q64 @ q64)
    # candidates: everything up to the k-th smallest value, ties included
    kth = np.partition(d2, k - 1)[k - 1]
    cand = np.nonzero(d2 <= kth)[0]
    order = np.lexsort((cand, d2[cand]))
    ids = cand[order][:k]
    return ids, d2


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", default=DEFAULT_FILE)
    ap.add_argument("--rows", type=int, default=200, help="test rows to brute-force (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the row choice (default 0)")
    ap.add_argument("--idx-dir", default=os.environ.get("FASHION_MNIST_DIR", DEFAULT_IDX),
                    help="Debian idx files to compare train/test with ('' to skip)")
    args = ap.parse_args()
    if args.rows < 0 or args.rows > N_TEST:
        ap.error("--rows must be in 0..%d" % N_TEST)

    c = Checker()
    if not os.path.exists(args.file):
        print("FAIL  '%s' does not exist (make it with datasets/fashion-mnist.sh)" % args.file)
        return 1
    try:
        f = h5py.File(args.file, "r")
    except Exception as e:  # noqa: BLE001 - any open failure is a failure
        print("FAIL  h5py cannot open '%s': %s" % (args.file, e))
        return 1

    with f:
        print("file  %s" % args.file)
        names = sorted(f.keys())
        missing = [n for n in EXPECTED if n not in f]
        c.check(not missing, "datasets train, test, neighbors, distances present",
                "missing %s (have %s)" % (missing, names))
        extra = [n for n in names if n not in EXPECTED]
        if extra:
            print("note  extra objects at the root: %s" % extra)
        if missing:
            return 1
        for name, (shape, dtype) in EXPECTED.items():
            ds = f[name]
            if not isinstance(ds, h5py.Dataset):
                c.fail("'%s' is a dataset" % name)
                continue
            c.check(ds.shape == shape, "%s shape %s" % (name, shape), "got %s" % (ds.shape,))
            c.check(ds.dtype == np.dtype(dtype), "%s dtype %s" % (name, np.dtype(dtype)),
                    "got %s" % ds.dtype)

        if "distance" not in f.attrs:
            c.fail("attribute 'distance' present")
        else:
            dist = f.attrs["distance"]
            c.check(isinstance(dist, str) and dist == "euclidean",
                    "attribute distance is the str 'euclidean'",
                    "got %r (%s)" % (dist, type(dist).__name__))
        for a in f.attrs:
            if a != "distance":
                print("note  attribute %s = %r" % (a, f.attrs[a]))

        if c.failures:
            print("%d check(s) failed; skipping the content checks" % c.failures)
            return 1

        train = f["train"][()]
        test = f["test"][()]
        neighbors = f["neighbors"][()]
        distances = f["distances"][()]

    # --- contents of train and test against the source idx files
    if args.idx_dir:
        paths = [os.path.join(args.idx_dir, n) for n in
                 ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")]
        if all(os.path.exists(p) for p in paths):
            src_train = read_idx_images(paths[0])
            src_test = read_idx_images(paths[1])
            c.check(np.array_equal(train, src_train.astype(np.float32)),
                    "train equals train-images-idx3-ubyte.gz in file order")
            c.check(np.array_equal(test, src_test.astype(np.float32)),
                    "test equals t10k-images-idx3-ubyte.gz in file order")
        else:
            print("note  idx files not found under %s; train/test contents not compared" % args.idx_dir)
    c.check(bool(np.isfinite(train).all() and np.isfinite(test).all()), "train and test are finite")

    # --- whole-file sanity of the ground truth
    in_range = (neighbors >= 0) & (neighbors < N_TRAIN)
    c.check(bool(in_range.all()), "neighbors ids in [0, %d)" % N_TRAIN,
            "%d ids out of range, first at row %d" % ((~in_range).sum(), np.argwhere(~in_range)[0][0])
            if not in_range.all() else "")
    srt = np.sort(neighbors, axis=1)
    dup_rows = np.nonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))[0]
    c.check(dup_rows.size == 0, "neighbors rows have distinct ids",
            "%d rows with duplicates, first row %d" % (dup_rows.size, dup_rows[0]) if dup_rows.size else "")
    fin = np.isfinite(distances).all()
    asc_rows = np.nonzero((np.diff(distances, axis=1) < 0).any(axis=1))[0]
    c.check(bool(fin), "distances are finite")
    c.check(asc_rows.size == 0, "distances rows are ascending",
            "%d rows not ascending, first row %d" % (asc_rows.size, asc_rows[0]) if asc_rows.size else "")
    c.check(bool((distances >= 0).all()), "distances are >= 0")

    # --- content digests
    for name, arr in (("train", train), ("test", test), ("neighbors", neighbors), ("distances", distances)):
        got = content_sha256(arr)
        if name in DIGEST_REQUIRED:
            c.check(got == CONTENT_SHA256[name], "%s content sha256 %s" % (name, CONTENT_SHA256[name][:16]),
                    "got %s" % got)
        elif got == CONTENT_SHA256[name]:
            print("ok    %s content sha256 %s (bit-identical to the reference)" % (name, got[:16]))
        else:
            print("note  %s content sha256 %s differs from the reference %s (allowed: the tolerance "
                  "check below decides)" % (name, got[:16], CONTENT_SHA256[name][:16]))

    # --- exact brute force on a seeded sample of test rows
    if args.rows:
        rng = np.random.default_rng(args.seed)
        rows = np.sort(rng.choice(N_TEST, size=args.rows, replace=False))
        train64 = train.astype(np.float64)
        train_sq = np.einsum("ij,ij->i", train64, train64)
        id_bad, tie_only, dist_bad = [], 0, []
        max_rel = 0.0
        for r in rows:
            q64 = test[r].astype(np.float64)
            ids, d2 = exact_topk(train64, train_sq, q64, K)
            true_d = np.sqrt(d2[ids])
            got = neighbors[r].astype(np.int64)
            if not np.array_equal(got, ids):
                pos = int(np.nonzero(got != ids)[0][0])
                # same distances position by position -> only the order of ties differs
                if np.array_equal(d2[np.clip(got, 0, N_TRAIN - 1)], d2[ids]):
                    tie_only += 1
                id_bad.append((int(r), pos, int(ids[pos]), float(d2[ids[pos]]),
                               int(got[pos]), float(d2[got[pos]]) if 0 <= got[pos] < N_TRAIN else float("nan")))
            err = np.abs(distances[r].astype(np.float64) - true_d)
            rel = err / np.maximum(true_d, 1e-6)
            bad = err > 1e-3 * true_d + 1e-6
            max_rel = max(max_rel, float(rel.max()))
            if bad.any():
                j = int(np.nonzero(bad)[0][0])
                dist_bad.append((int(r), j, float(distances[r][j]), float(true_d[j])))
        detail = ""
        if id_bad:
            lines = ["row %d position %d: expected id %d (d2 %.0f), file has id %d (d2 %.0f)" % b
                     for b in id_bad[:5]]
            detail = ("%d of %d rows differ (%d only in the order of equal distances); first: %s"
                      % (len(id_bad), len(rows), tie_only, "; ".join(lines)))
        c.check(not id_bad, "neighbors equal a float64 brute force (ties by lower id) on %d test rows"
                % len(rows), detail)
        detail = ""
        if dist_bad:
            detail = "%d rows off; first: row %d position %d: file %.6g, true %.6g" % (
                (len(dist_bad),) + dist_bad[0])
        c.check(not dist_bad, "distances equal the true Euclidean distances within 1e-3 relative "
                "(max relative error %.2e)" % max_rel, detail)

    if c.failures:
        print("%d check(s) failed" % c.failures)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

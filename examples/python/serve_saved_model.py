"""Serving a SavedModel from Python: load it, run its serving signature on a batch, and again from 8
threads at once (the results must be identical).

    serve_saved_model.py EXPORT_DIR

Prints exactly what examples/c/serve_saved_model.c and the C++ exporter
(examples/cpp/saved_model_export.cc) print for the same directory."""
import sys
import threading

import kiln

ROWS, FEATURES, THREADS = 6, 4, 8


def main():
    if len(sys.argv) != 2:
        print("usage: serve_saved_model.py EXPORT_DIR", file=sys.stderr)
        return 2
    loaded = kiln.saved_model.load(sys.argv[1])
    serve = loaded.signatures["serving_default"]
    print("signature serving_default")
    for kind, specs in (("input", serve.inputs), ("output", serve.outputs)):
        for s in specs:
            dims = ", ".join("None" if d is None else str(d) for d in s.shape)
            print("  %s %s %s (%s)" % (kind, s.name, s.dtype, dims))

    # Multiples of 1/64, exact in float32: the batch the C and C++ programs serve.
    x = kiln.constant([[((i * FEATURES + j) * 37 % 129 - 64) / 64.0 for j in range(FEATURES)] for i in range(ROWS)])
    (y,) = serve(x).values()
    rows = y.tolist()
    for i, row in enumerate(rows):
        print("row %d: %s" % (i, " ".join("%.9g" % v for v in row)))  # C's %.9g of the float32 values

    mismatches = []

    def run():
        for _ in range(10):
            (out,) = serve(x).values()
            if out.tolist() != rows:
                mismatches.append(1)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("%d threads: %s" % (THREADS, "DIFFERENT" if mismatches else "identical"))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

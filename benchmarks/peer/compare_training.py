"""Runs the training workloads W3 and W6 (benchmarks/README.md) in kiln and in PyTorch, interleaved
(kiln, torch, kiln, torch, ... for --rounds rounds), and prints one table: workload, kiln median
[range], torch median [range], ratio kiln / torch, and each side's peak RSS.

  W3: one MLP training step (784-512-256-10, batch 128, Adam 1e-3), ms per step: kiln through a
      GradientTape loop (BM_KilnW3TapeStep) and through train_on_batch (BM_KilnW3TrainOnBatch),
      torch's (peer/mlp_torch.py --workload w3). The median of --steps single steps per round.
  W6: Fashion-MNIST, that MLP, 5 epochs of fit with batch 128, then the test accuracy: seconds of
      the whole process (BM_KilnW6FashionMnistFit; peer/mlp_torch.py --workload w6).

The PyTorch side runs as issue 10's fair peer: 2 threads (torch.set_num_threads, OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS), Debian's OpenMP OpenBLAS through --torch-library-path (LD_LIBRARY_PATH for
torch alone), glibc's MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ at 1 GiB, and
OPENBLAS_CORETYPE=SkylakeX where the CPU has AVX-512. Skips the PyTorch side with a message when
torch does not import."""
import argparse
import json
import os
import re
import sys

from peer_util import kiln_env, run, summary, torch_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def kiln_w3(bench, steps):
    cmd = [bench, "--benchmark_filter=^BM_KilnW3(TapeStep|TrainOnBatch)/", "--benchmark_repetitions=%d" % steps,
           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]
    out, _, rss = run(cmd, kiln_env())
    stats = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "aggregate" and b["aggregate_name"] in ("median", "min", "max"):
            scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
            stats.setdefault(b["run_name"], {})[b["aggregate_name"]] = b["real_time"] * scale
    return {name.split("/")[0]: dict(s, rss=rss) for name, s in stats.items()}


def kiln_w6(bench):
    cmd = [bench, "--benchmark_filter=^BM_KilnW6FashionMnistFit/", "--benchmark_format=json"]
    out, wall, rss = run(cmd, kiln_env())
    b = json.loads(out)["benchmarks"][0]
    if b.get("error_occurred"):
        sys.exit("kiln W6: %s" % b.get("error_message"))
    return {"seconds": wall, "train_seconds": b["train_seconds"], "accuracy": b["test_accuracy"], "rss": rss}


def torch_run(python, args, library_path):
    return run([python, os.path.join(HERE, "mlp_torch.py")] + args, torch_env(library_path))


def torch_w3(python, steps, library_path):
    out, _, rss = torch_run(python, ["--workload", "w3", "--steps", str(steps)], library_path)
    m = re.search(r"median ([\d.]+) min ([\d.]+) max ([\d.]+).*blas (\S+)", out)
    if not m:
        print(out.strip())  # torch is absent: the peer said why
        return None
    return {"median": float(m.group(1)), "min": float(m.group(2)), "max": float(m.group(3)), "rss": rss,
            "blas": m.group(4)}


def torch_w6(python, library_path):
    out, wall, rss = torch_run(python, ["--workload", "w6"], library_path)
    m = re.search(r"train_seconds ([\d.]+) test_accuracy ([\d.]+)", out)
    if not m:
        print(out.strip())
        return None
    return {"seconds": wall, "train_seconds": float(m.group(1)), "accuracy": float(m.group(2)), "rss": rss}


def summary_rss(rounds, key="median", lo="min", hi="max"):
    return summary(rounds, key, lo, hi) + (max(r["rss"] for r in rounds),)


def cell(s, fmt):
    return (fmt + " [" + fmt + " - " + fmt + "]") % s[:3] if s else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=os.path.join(REPO, "build", "benchmarks", "kiln_benchmarks"),
                        help="the kiln_benchmarks binary (default: build/benchmarks/kiln_benchmarks)")
    parser.add_argument("--python", default="/usr/bin/python3", help="a Python with torch (default /usr/bin/python3)")
    parser.add_argument("--rounds", type=int, default=3, help="kiln/torch rounds (default 3)")
    parser.add_argument("--steps", type=int, default=200, help="W3 timed steps per program run (default 200)")
    parser.add_argument("--workloads", default="w3,w6", help="comma-separated: w3, w6 (default both)")
    parser.add_argument("--quick", action="store_true", help="1 round of 30 W3 steps; W6 left out")
    parser.add_argument("--torch-library-path", default="",
                        help="prepended to LD_LIBRARY_PATH for torch alone (a folder with OpenBLAS's "
                             "libblas.so.3: Debian's torch calls whichever libblas.so.3 it finds)")
    args = parser.parse_args()
    workloads = set(args.workloads.split(","))
    if args.quick:
        args.rounds, args.steps, workloads = 1, 30, workloads - {"w6"}

    k3 = {"BM_KilnW3TapeStep": [], "BM_KilnW3TrainOnBatch": []}
    t3, k6, t6 = [], [], []
    torch_ok = True
    for i in range(args.rounds):
        load = os.getloadavg()[0]
        if "w3" in workloads:
            for name, s in kiln_w3(args.bench, args.steps).items():
                k3[name].append(s)
                print("round %d kiln  %-22s median %8.3f ms [%.3f - %.3f]  load %.1f"
                      % (i + 1, name[len("BM_Kiln"):], s["median"], s["min"], s["max"], load), flush=True)
            t = torch_w3(args.python, args.steps, args.torch_library_path) if torch_ok else None
            torch_ok = t is not None
            if t:
                t3.append(t)
                print("round %d torch W3 step               median %8.3f ms [%.3f - %.3f]  blas %s"
                      % (i + 1, t["median"], t["min"], t["max"], t["blas"]), flush=True)
        if "w6" in workloads:
            k = kiln_w6(args.bench)
            k6.append(k)
            print("round %d kiln  W6 %.1f s (fit %.1f s) accuracy %.4f" % (i + 1, k["seconds"], k["train_seconds"],
                                                                          k["accuracy"]), flush=True)
            t = torch_w6(args.python, args.torch_library_path) if torch_ok else None
            torch_ok = t is not None
            if t:
                t6.append(t)
                print("round %d torch W6 %.1f s (train %.1f s) accuracy %.4f" % (i + 1, t["seconds"],
                                                                               t["train_seconds"], t["accuracy"]),
                      flush=True)

    print("\n%d round(s), interleaved, 2 threads; load average now %.1f" % (args.rounds, os.getloadavg()[0]))
    print("%-34s %-30s %-30s %-6s %-9s %-9s" % ("workload", "kiln median [range]", "torch median [range]", "ratio",
                                               "kiln RSS", "torch RSS"))
    ts = summary_rss(t3) if t3 else None
    for name, label in (("BM_KilnW3TapeStep", "W3 step, GradientTape (ms)"),
                        ("BM_KilnW3TrainOnBatch", "W3 step, train_on_batch (ms)")):
        if k3[name]:
            ks = summary_rss(k3[name])
            print("%-34s %-30s %-30s %-6s %-9s %-9s" % (label, cell(ks, "%.3f"), cell(ts, "%.3f"),
                                                       "%.2f" % (ks[0] / ts[0]) if ts else "-", "%.0f MiB" % ks[3],
                                                       "%.0f MiB" % ts[3] if ts else "-"))
    if k6:
        for r in k6 + t6:
            r["lo"] = r["hi"] = r["seconds"]
        ks = summary_rss(k6, "seconds", "lo", "hi")
        tw = summary_rss(t6, "seconds", "lo", "hi") if t6 else None
        print("%-34s %-30s %-30s %-6s %-9s %-9s" % ("W6 Fashion-MNIST, 5 epochs (s)", cell(ks, "%.1f"), cell(tw, "%.1f"),
                                                   "%.2f" % (ks[0] / tw[0]) if tw else "-", "%.0f MiB" % ks[3],
                                                   "%.0f MiB" % tw[3] if tw else "-"))
        print("%-34s %-30s %-30s" % ("W6 test accuracy", " ".join("%.4f" % r["accuracy"] for r in k6),
                                     " ".join("%.4f" % r["accuracy"] for r in t6) or "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

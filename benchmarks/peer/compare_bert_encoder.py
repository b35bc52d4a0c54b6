"""Times one forward and backward pass of the BERT-style encoder in kiln
(benchmarks/bench_bert_encoder.cc, BM_KilnBertEncoderStep) and in PyTorch
(benchmarks/peer/bert_encoder_torch.py), interleaved: kiln, torch, kiln, torch, ... for --rounds
rounds of --steps timed steps each (after each program's warm-up), so that both see the same load.

Prints every round, then one summary line per engine: the median of the rounds' median step times
[the fastest – the slowest single step of all rounds], and the ratio kiln / torch of the medians.
Skips the PyTorch side with a message when torch does not import."""
import argparse
import json
import os
import re
import subprocess
import sys

from peer_util import summary

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WORKLOAD = ("BERT-style encoder, forward + backward (gradients of all trainable variables, no optimizer): "
            "batch 16, sequence 128, hidden 256, 4 heads, FFN 1024 (exact GELU), 2 blocks, vocab 1000, "
            "dropout 0.1, 3 classes, float32, 2 threads")


def run_kiln(bench, steps):
    cmd = [bench, "--benchmark_filter=^BM_KilnBertEncoderStep", "--benchmark_repetitions=%d" % steps,
           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if r.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr))
    stats = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("run_type") == "aggregate" and b["aggregate_name"] in ("median", "min", "max"):
            scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
            stats[b["aggregate_name"]] = b["real_time"] * scale
    return stats


def run_torch(python, steps, library_path):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    if library_path:
        env["LD_LIBRARY_PATH"] = library_path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    cmd = [python, os.path.join(HERE, "bert_encoder_torch.py"), "--steps", str(steps)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr))
    m = re.search(r"median ([\d.]+) min ([\d.]+) max ([\d.]+).*blas (\S+)", r.stdout)
    if not m:
        print(r.stdout.strip())  # torch is absent: the peer said why
        return None
    return {"median": float(m.group(1)), "min": float(m.group(2)), "max": float(m.group(3)), "blas": m.group(4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=os.path.join(REPO, "build", "benchmarks", "kiln_benchmarks"),
                        help="the kiln_benchmarks binary (default: build/benchmarks/kiln_benchmarks)")
    parser.add_argument("--python", default="/usr/bin/python3", help="a Python with torch (default /usr/bin/python3)")
    parser.add_argument("--rounds", type=int, default=3, help="kiln/torch rounds (default 3)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per program run (default 30)")
    parser.add_argument("--torch-library-path", default="",
                        help="prepended to LD_LIBRARY_PATH for torch alone (e.g. a folder with OpenBLAS's "
                             "libblas.so.3: Debian's torch calls whichever libblas.so.3 it finds)")
    args = parser.parse_args()

    kiln_rounds, torch_rounds = [], []
    for i in range(args.rounds):
        k = run_kiln(args.bench, args.steps)
        kiln_rounds.append(k)
        print("round %d kiln  median %9.2f ms  [%.2f - %.2f]  load %.1f" % (i + 1, k["median"], k["min"], k["max"],
                                                                       os.getloadavg()[0]), flush=True)
        t = run_torch(args.python, args.steps, args.torch_library_path)
        if t is None:
            break
        torch_rounds.append(t)
        print("round %d torch median %9.2f ms  [%.2f - %.2f]  load %.1f  blas %s"
              % (i + 1, t["median"], t["min"], t["max"], os.getloadavg()[0], t["blas"]), flush=True)

    print("workload: %s; %d rounds x %d steps, interleaved" % (WORKLOAD, len(kiln_rounds), args.steps))
    km, kmin, kmax = summary(kiln_rounds)
    print("kiln  median %.2f ms [%.2f - %.2f]" % (km, kmin, kmax))
    if torch_rounds:
        tm, tmin, tmax = summary(torch_rounds)
        print("torch median %.2f ms [%.2f - %.2f]" % (tm, tmin, tmax))
        print("ratio kiln / torch %.2f" % (km / tm))
    return 0


if __name__ == "__main__":
    sys.exit(main())

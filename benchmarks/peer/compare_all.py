"""Issue 10's benchmark suite in one run: every workload of benchmarks/README.md ("The issue-10 suite")
in kiln (build/benchmarks/kiln_benchmarks) and in PyTorch (the peer/*_torch.py scripts and the
libtorch W2 peer), interleaved — for each round and each workload, kiln's process, then torch's — so
that drift and other load hit both sides alike. Prints one table: workload, kiln median [range],
PyTorch median [range], the ratio of the times kiln / torch, the issue's target and whether it is
met, each side's peak RSS (one process per workload and side, wait4's ru_maxrss), and notes; plus
the machine's limit (the FMA peak, BM_PeakFmaF32 / BM_PeakFmaBf16) and raw oneDNN matmuls (kiln's
W1 as a percentage of them).

Medians: a per-call workload (W1, W2, W7, the peak) runs --repetitions blocks of calls, each long
enough to take --min-time seconds (Google Benchmark's repetitions on kiln's side, the same loop in
the peers), and takes the median of the blocks' means; a per-step workload (W3, W4, W5) takes the
median of --steps single steps after warm-up; W6 is the whole process. Over rounds: the median of
the rounds' medians; the range is the smallest and the largest figure of all rounds.

Benchmarks the binary does not have show as "missing", peers that do not exist likewise; a benchmark
that skips itself (no avx512_bf16, no dataset) shows its reason. The PyTorch column is skipped with a
message when torch does not import. The PyTorch side runs as issue 10's fair peer (peer_util.torch_env:
2 threads, Debian's OpenMP OpenBLAS through --torch-library-path, glibc's malloc thresholds at 1 GiB,
OPENBLAS_CORETYPE=SkylakeX on AVX-512); kiln gets OMP_NUM_THREADS=2."""
import argparse
import json
import os
import shutil
import subprocess
import sys

from peer_util import RunFailed, kiln_env, run, summary, torch_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LIBTORCH_INCLUDE = "/usr/include/torch/csrc/api/include"

PER_CALL, PER_STEP, PROCESS = "per call", "per step", "process"
SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


class Row:
    """One line of the table. unit: "GFLOP/s" or a time unit; kiln: a Google Benchmark name (without
    the /real_time, /iterations:N suffixes); torch: the peer's RESULT item; target: ("ratio", x) =
    kiln / torch time at most x, ("kiln", x) = kiln's median at most x (unit), ("raw", x) = kiln at
    least x of raw oneDNN (raw: that row's benchmark); flops: per call, for GFLOP/s from the time;
    cpu: the benchmarks may skip themselves on CPUs without the instructions (bf16, the FMA loops)."""

    def __init__(self, label, unit, kiln=None, torch=None, target=None, raw=None, flops=None, cpu=False):
        self.label, self.unit, self.kiln, self.torch = label, unit, kiln, torch
        self.target, self.raw, self.flops, self.cpu = target, raw, flops, cpu


class Workload:
    def __init__(self, key, kind, rows, script=None, memory_target=True):
        self.key, self.kind, self.rows, self.script, self.memory_target = key, kind, rows, script, memory_target

    def kiln_names(self):
        names = [r.kiln for r in self.rows if r.kiln] + [r.raw for r in self.rows if r.raw]
        return list(dict.fromkeys(names))


def suite():
    w1 = []
    for n in (64, 256, 1024, 2048):
        target = ("raw", 0.95) if n >= 256 else None
        w1.append(Row("W1 GEMM fp32 n=%d (GFLOP/s)" % n, "GFLOP/s", "BM_W1KilnMatmul/%d" % n, "w1_f32_%d" % n,
                      target, raw="BM_W1RawOneDnnMatmul/%d" % n, flops=2.0 * n ** 3))
    w1.append(Row("W1 GEMM bf16 n=1024 (GFLOP/s)", "GFLOP/s", "BM_W1KilnMatmulBf16/1024", "w1_bf16_1024",
                  ("raw", 0.95), raw="BM_W1RawOneDnnMatmulBf16/1024", flops=2.0 * 1024 ** 3, cpu=True))
    w2 = [Row("W2 a + b, [%s], %s (µs)" % ("1" if e == 1 else "1, 64", "tape" if t else "no tape"), "us",
              "BM_W2KilnAdd/%d/%d" % (e, t), "w2_add%d_tape%d" % (e, t), ("ratio", 0.25))
          for e in (1, 64) for t in (0, 1)]
    return [
        Workload("peak", PER_CALL, [Row("machine limit: FMA peak fp32, 2 threads (GFLOP/s)", "GFLOP/s", "BM_PeakFmaF32",
                                        cpu=True),
                                    Row("machine limit: FMA peak bf16, 2 threads (GFLOP/s)", "GFLOP/s",
                                        "BM_PeakFmaBf16", cpu=True)], memory_target=False),
        Workload("w1", PER_CALL, w1, "gemm_torch.py"),
        Workload("w2", PER_CALL, w2, "overhead_torch.py"),
        Workload("w3", PER_STEP, [Row("W3 MLP step, GradientTape (ms)", "ms", "BM_KilnW3TapeStep", "w3_step", ("ratio", 0.70)),
                                  Row("W3 MLP step, train_on_batch (ms)", "ms", "BM_KilnW3TrainOnBatch", "w3_step",
                                      ("ratio", 0.70))], "mlp_torch.py"),
        Workload("w4", PER_STEP, [Row("W4 transformer step (ms)", "ms", "BM_KilnW4TransformerStep", "w4_step",
                                      ("ratio", 0.60))], "transformer_torch.py"),
        Workload("w5", PER_STEP, [Row("W5 conv-net step (ms)", "ms", "BM_KilnW5ConvStep", "w5_step", ("ratio", 0.50))],
                 "convnet_torch.py"),
        Workload("w6", PROCESS, [Row("W6 Fashion-MNIST, 5 epochs, whole process (s)", "s", "BM_KilnW6FashionMnistFit",
                                     "w6", ("ratio", 0.70))], "mlp_torch.py"),
        Workload("w7", PER_CALL, [Row("W7 MLP inference, batch 1 (µs)", "us", "BM_KilnW7InferenceBatch1", "w7_b1",
                                      ("kiln", 10.0)),
                                  Row("W7 batch 1, bf16 weights (opt-in; µs)", "us", "BM_KilnW7InferenceBatch1Bf16",
                                      "w7_b1", ("kiln", 10.0)),
                                  Row("W7 batch 1, int8 weights (opt-in; µs)", "us", "BM_KilnW7InferenceBatch1Int8",
                                      "w7_b1", ("kiln", 10.0)),
                                  Row("W7 MLP inference, batch 256 (µs)", "us", "BM_KilnW7InferenceBatch256", "w7_b256",
                                      ("ratio", 0.80))], "inference_torch.py"),
    ]


def base_name(name):
    """BM_X/64/real_time, BM_Y/iterations:1/real_time -> BM_X/64, BM_Y."""
    return "/".join(p for p in name.split("/") if ":" not in p and p not in ("real_time", "manual_time"))


def kiln_benchmarks(bench):
    """The benchmark names the binary has."""
    out = subprocess.run([bench, "--benchmark_list_tests=true"], capture_output=True, text=True, check=True).stdout
    return {base_name(line.strip()) for line in out.splitlines() if line.strip()}


def in_unit(seconds, unit, flops):
    return flops / seconds / 1e9 if unit == "GFLOP/s" else seconds / SECONDS[unit]


def gflops_counter(value):
    """A GFLOPS counter as Google Benchmark writes it: a kIsRate counter is FLOP/s in the JSON whatever
    its name says (kIs1000 only picks the console's prefix); a value below 1e5 is already GFLOP/s."""
    return value / 1e9 if value > 1e5 else value


def run_kiln(bench, wl, names, args):
    """One kiln process for the workload: {name: [values in the row's unit] or an error string}, the
    process's counters (W6), wall seconds and peak RSS."""
    cmd = [bench, "--benchmark_filter=^(%s)(/|$)" % "|".join(names), "--benchmark_format=json"]
    if wl.kind == PER_CALL:
        # Repetitions of the process's benchmarks in a random order, not each benchmark's in a row:
        # drift within the process then hits kiln's rows and raw oneDNN's (W1) alike.
        cmd += ["--benchmark_repetitions=%d" % args.repetitions, "--benchmark_min_time=%g" % args.min_time,
                "--benchmark_enable_random_interleaving=true"]
    elif wl.kind == PER_STEP:
        cmd += ["--benchmark_repetitions=%d" % args.steps]
    out, wall, rss = run(cmd, kiln_env(), check=False)
    rows = {r.kiln: r for r in wl.rows if r.kiln}
    rows.update({r.raw: Row(r.raw, r.unit, flops=r.flops) for r in wl.rows if r.raw})
    values, counters = {}, {}
    for b in json.loads(out[out.find("{"):])["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or "aggregate_name" in b:
            continue
        name = base_name(b.get("run_name", b["name"]))
        if name not in rows:
            continue
        if b.get("error_occurred"):
            values[name] = "skipped: %s" % b.get("error_message", "error")
            continue
        row = rows[name]
        if row.unit == "GFLOP/s" and "GFLOPS" in b:
            v = gflops_counter(b["GFLOPS"])
        elif row.unit == "GFLOP/s" and not row.flops:
            v = None
        else:
            v = in_unit(b["real_time"] * SECONDS[b["time_unit"]], row.unit, row.flops or 0)
        if v is None:
            values[name] = "no GFLOPS counter"
        elif not isinstance(values.get(name), str):
            values.setdefault(name, []).append(v)
        counters[name] = {k: b[k] for k in ("train_seconds", "test_accuracy") if k in b}
    return values, counters, wall, rss


def parse_results(out):
    """The peers' `RESULT <item> median M min A max B unit U [key value]...` lines."""
    results = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == "RESULT" and f[2::2][:4] == ["median", "min", "max", "unit"]:
            extra = dict(zip(f[10::2], f[11::2]))
            results[f[1]] = dict(extra, median=float(f[3]), min=float(f[5]), max=float(f[7]), unit=f[9])
    return results


def convert(r, unit):
    """A RESULT's (median, min, max) in unit."""
    if r["unit"] == "gflops" or unit == "GFLOP/s":
        return r["median"], r["min"], r["max"]
    s = SECONDS[r["unit"]] / SECONDS[unit]
    return r["median"] * s, r["min"] * s, r["max"] * s


def torch_command(wl, args, libtorch):
    if wl.key == "w2" and libtorch:
        return [libtorch, "--repetitions", str(args.repetitions), "--min-time", str(args.min_time)]
    script = os.path.join(HERE, wl.script)
    with open(script) as f:
        declared = f.read()
    cmd = [args.python, script, "--workload", wl.key]
    if wl.kind == PER_CALL:  # only the options the peer declares
        cmd += ["--repetitions", str(args.repetitions)] if '"--repetitions"' in declared else []
        cmd += ["--min-time", str(args.min_time)] if '"--min-time"' in declared else []
    elif wl.kind == PER_STEP and '"--steps"' in declared:
        cmd += ["--steps", str(args.steps)]
    return cmd


def build_libtorch(build_dir):
    """Compiles overhead_libtorch.cc against Debian's libtorch-dev into <build>/peer on first use (and
    when the source is newer); None, after saying why, when it cannot."""
    src = os.path.join(HERE, "overhead_libtorch.cc")
    exe = os.path.join(build_dir, "peer", "overhead_libtorch")
    if not os.path.exists(os.path.join(LIBTORCH_INCLUDE, "torch", "torch.h")) or not shutil.which("g++"):
        print("libtorch-dev (or g++) is not installed: W2's PyTorch figure is torch's Python overhead "
              "(Debian: apt-get install libtorch-dev)")
        return None
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
        return exe
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    print("building W2's libtorch peer once (g++ against libtorch-dev, about a minute): %s" % exe, flush=True)
    r = subprocess.run(["g++", "-O2", "-std=c++17", "-isystem", LIBTORCH_INCLUDE, src, "-o", exe, "-ltorch",
                        "-ltorch_cpu", "-lc10"], capture_output=True, text=True)
    if r.returncode != 0:
        print("building overhead_libtorch failed; W2's PyTorch figure is torch's Python overhead:\n%s"
              % r.stderr[-2000:])
        return None
    return exe


def torch_imports(python, env):
    try:
        r = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True,
                           env=env)
    except OSError as e:
        return None, str(e)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    return r.stdout.strip(), None


def fmt(v):
    a = abs(v)
    return "%.0f" % v if a >= 100 else "%.1f" % v if a >= 10 else "%.2f" % v if a >= 1 else "%.3f" % v


class Side:
    """What one side measured for one row over the rounds: per round (median, min, max), or why not."""

    def __init__(self):
        self.rounds, self.why = [], None

    def add(self, value):
        if isinstance(value, str):
            self.why = self.why or value
        else:
            self.rounds.append(value)

    def summary(self):
        if not self.rounds:
            return None
        return summary([{"median": m, "min": lo, "max": hi} for m, lo, hi in self.rounds])

    def cell(self):
        s = self.summary()
        if s is None:
            return self.why or "-"
        return "%s [%s – %s]" % (fmt(s[0]), fmt(s[1]), fmt(s[2])) if len(self.rounds) > 1 or s[1] != s[2] else fmt(s[0])


def stats(values):
    """A list of per-repetition values -> (median, min, max); a string (why not) passes through."""
    if isinstance(values, str):
        return values
    ordered = sorted(values)
    h = len(ordered) // 2
    median = ordered[h] if len(ordered) % 2 else (ordered[h - 1] + ordered[h]) / 2
    return median, ordered[0], ordered[-1]


def smoke(bench, workloads):
    """CI's smoke run (scripts/dev.sh test): every kiln benchmark of the workloads once, briefly, in one
    process; fails when one is missing or reports an error (unless it depends on the CPU). Never judges
    speed."""
    have = kiln_benchmarks(bench)
    cpu = {r.kiln for w in workloads for r in w.rows if r.cpu} | {r.raw for w in workloads for r in w.rows if r.cpu}
    names = [n for w in workloads for n in w.kiln_names()]
    present = [n for n in names if n in have]
    results = {}
    if present:
        cmd = [bench, "--benchmark_filter=^(%s)(/|$)" % "|".join(present), "--benchmark_format=json",
               "--benchmark_repetitions=1", "--benchmark_min_time=0.01"]
        try:
            out, wall, mib = run(cmd, kiln_env(), check=False)
        except RunFailed as e:
            print(str(e)[-3000:])
            return 1
        for b in json.loads(out[out.find("{"):])["benchmarks"]:
            if b.get("run_type", "iteration") == "iteration":
                results[base_name(b.get("run_name", b["name"]))] = b
        print("%d benchmarks in %.1f s, peak RSS %.0f MiB" % (len(results), wall, mib))
    bad = 0
    for n in names:
        b = results.get(n)
        if n not in have or b is None:
            status, bad = "MISSING", bad + 1
        elif b.get("error_occurred") and n in cpu:
            status = "skipped (this CPU): %s" % b.get("error_message")
        elif b.get("error_occurred"):
            status, bad = "FAILED: %s" % b.get("error_message"), bad + 1
        else:
            status = "ok %.4g %s" % (b["real_time"], b["time_unit"])
        print("  %-32s %s" % (n, status))
    if bad:
        print("%d of %d benchmarks missing or failed" % (bad, len(names)))
    return 1 if bad else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default=os.path.join(REPO, "build", "benchmarks", "kiln_benchmarks"),
                        help="the kiln_benchmarks binary (default: build/benchmarks/kiln_benchmarks)")
    parser.add_argument("--build-dir", help="where the libtorch W2 peer is compiled (default: the bench's build/)")
    parser.add_argument("--python", default="/usr/bin/python3", help="a Python with torch (default /usr/bin/python3)")
    parser.add_argument("--workloads", default="peak,w1,w2,w3,w4,w5,w6,w7",
                        help="comma-separated, from peak,w1,w2,w3,w4,w5,w6,w7 (default all)")
    parser.add_argument("--rounds", type=int, default=3, help="kiln/torch rounds (default 3)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of W3/W4/W5 per process (default 200)")
    parser.add_argument("--repetitions", type=int, default=5,
                        help="timed blocks of W1/W2/W7/peak per process (default 5)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timed block (default 0.5)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 1 round, 20 steps, 3 blocks of 0.05 s, W6 left out")
    parser.add_argument("--smoke", action="store_true",
                        help="CI: each kiln benchmark once, briefly (W6 left out), no PyTorch; fails on a missing "
                             "or failing benchmark, never on speed")
    parser.add_argument("--no-libtorch", action="store_true", help="W2's PyTorch figure from Python, not libtorch")
    parser.add_argument("--torch-library-path", default="",
                        help="prepended to LD_LIBRARY_PATH for torch alone (a folder with OpenBLAS's "
                             "libblas.so.3: Debian's torch calls whichever libblas.so.3 it finds)")
    args = parser.parse_args()
    all_workloads = suite()
    keys = [k for k in args.workloads.lower().split(",") if k]
    unknown = set(keys) - {w.key for w in all_workloads}
    if unknown:
        parser.error("unknown workload(s) %s; choose from %s" % (",".join(sorted(unknown)),
                                                                 ",".join(w.key for w in all_workloads)))
    if args.quick:
        args.rounds, args.steps, args.repetitions, args.min_time = 1, 20, 3, 0.05
        keys = [k for k in keys if k != "w6"]
    workloads = [w for w in all_workloads if w.key in keys]
    if not os.access(args.bench, os.X_OK):
        sys.exit("%s not found: build it first (scripts/dev.sh bench builds it)" % args.bench)
    if args.smoke:
        return smoke(args.bench, [w for w in workloads if w.kind != PROCESS])
    have = kiln_benchmarks(args.bench)

    tenv = torch_env(args.torch_library_path)
    version, why = torch_imports(args.python, tenv)
    if version is None:
        print("torch does not import under %s (%s): the PyTorch column is skipped "
              "(Debian: apt-get install python3-torch)" % (args.python, why))
    elif not args.torch_library_path:
        print("no --torch-library-path: torch runs on the system's libblas.so.3 (scripts/dev.sh bench passes "
              "Debian's OpenMP OpenBLAS)")
    libtorch = None
    if version and any(w.key == "w2" for w in workloads) and not args.no_libtorch:
        libtorch = build_libtorch(args.build_dir or os.path.dirname(os.path.dirname(os.path.abspath(args.bench))))

    kiln = {}     # kiln benchmark name -> Side
    torch = {}    # (workload, item) -> Side
    rss = {}      # (workload, "kiln"|"torch") -> [MiB per round]
    extra = {}    # (workload, side) -> [counters / RESULT extras per round]
    failures = []
    for w in workloads:
        for name in w.kiln_names():
            kiln[name] = Side()
            if name not in have:
                kiln[name].add("missing")
        for r in w.rows:
            if r.torch:
                torch[(w.key, r.torch)] = Side()
    load0 = os.getloadavg()[0]
    for i in range(args.rounds):
        for w in workloads:
            names = [n for n in w.kiln_names() if n in have]
            if names:
                try:
                    values, counters, wall, mib = run_kiln(args.bench, w, names, args)
                except (RunFailed, ValueError, KeyError) as e:
                    failures.append(str(e))
                    for n in names:
                        kiln[n].add("failed")
                    print("round %d kiln  %-4s FAILED: %s" % (i + 1, w.key, str(e).splitlines()[0]), flush=True)
                else:
                    rss.setdefault((w.key, "kiln"), []).append(mib)
                    for n in names:
                        v = values.get(n, "no result")
                        if w.kind == PROCESS and not isinstance(v, str):
                            v = [wall]  # W6: the whole process
                            extra.setdefault((w.key, "kiln"), []).append(counters.get(n, {}))
                        kiln[n].add(stats(v))
                    print("round %d kiln  %-4s %s  (%.0f MiB)" % (i + 1, w.key, "  ".join(
                        "%s %s" % (n, fmt(stats(values[n])[0]) if not isinstance(values.get(n, ""), str)
                                   else values.get(n, "no result")) for n in names), mib), flush=True)
            items = [r.torch for r in w.rows if r.torch]
            if not items or version is None:
                continue
            if not os.path.exists(os.path.join(HERE, w.script)):
                for item in items:
                    torch[(w.key, item)].add("missing (peer/%s)" % w.script)
                continue
            cmd = torch_command(w, args, libtorch)
            try:
                out, wall, mib = run(cmd, tenv, check=False)
            except RunFailed as e:
                failures.append(str(e))
                for item in items:
                    torch[(w.key, item)].add("failed")
                print("round %d torch %-4s FAILED: %s" % (i + 1, w.key, str(e).splitlines()[0]), flush=True)
                continue
            results = parse_results(out)
            rss.setdefault((w.key, "torch"), []).append(mib)
            unit = {r.torch: r.unit for r in w.rows if r.torch}
            for item in dict.fromkeys(items):
                if item not in results:
                    torch[(w.key, item)].add("no result")
                elif w.kind == PROCESS:
                    torch[(w.key, item)].add((wall, wall, wall))
                    extra.setdefault((w.key, "torch"), []).append(results[item])
                else:
                    torch[(w.key, item)].add(convert(results[item], unit[item]))
                    if w.key == "w2":
                        extra[(w.key, "torch")] = [results[item]]
            print("round %d torch %-4s %s  (%.0f MiB)" % (i + 1, w.key, "  ".join(
                "%s %s" % (k, fmt(results[k]["median"])) for k in dict.fromkeys(items) if k in results) or
                out.strip()[-200:], mib), flush=True)

    print_table(workloads, kiln, torch, rss, extra, args, version, load0)
    if failures:
        print("\n%d process(es) failed; the first:\n%s" % (len(failures), failures[0][-3000:]))
        return 1
    return 0


def ratio_of(row, k, t):
    """kiln's time / torch's time (for GFLOP/s, torch's rate / kiln's)."""
    if not k or not t or not k[0] or not t[0]:
        return None
    return t[0] / k[0] if row.unit == "GFLOP/s" else k[0] / t[0]


def target_cell(row, k, ratio, raw):
    if not row.target:
        return "-"
    kind, x = row.target
    if kind == "ratio":
        text, value, ok = "≤ %.2fx" % x, ratio, ratio is not None and ratio <= x
    elif kind == "kiln":
        text, value, ok = "≤ %g %s" % (x, "µs" if row.unit == "us" else row.unit), k and k[0], k and k[0] <= x
    else:
        value = k[0] / raw[0] if k and raw else None
        text, ok = "≥ %.0f%% of raw" % (100 * x), value is not None and value >= x
    if value is None:
        return text
    return "%s: %s" % (text, "met" if ok else "MISSED")


def print_table(workloads, kiln, torch, rss, extra, args, version, load0):
    print("\n%d round(s), interleaved (kiln, torch, ...), 2 threads; load average %.1f at the start, %.1f now; "
          "torch %s" % (args.rounds, load0, os.getloadavg()[0], version or "not available"))
    header = ["workload", "kiln median [range]", "PyTorch median [range]", "ratio", "target",
              "peak RSS kiln / torch", "notes"]
    lines = []
    peak = {}
    memory = []
    for w in workloads:
        krss, trss = rss.get((w.key, "kiln")), rss.get((w.key, "torch"))
        rss_cell = "%s / %s MiB" % ("%.0f" % max(krss) if krss else "-", "%.0f" % max(trss) if trss else "-")
        if krss and trss and w.memory_target:
            memory.append((w.key, max(krss) / max(trss)))
        if w.key == "peak":
            rss_cell = "-"
        for row in w.rows:
            k = kiln[row.kiln].summary()
            t = torch[(w.key, row.torch)].summary() if row.torch else None
            raw = kiln[row.raw].summary() if row.raw else None
            if w.key == "peak" and k:
                peak["bf16" if "Bf16" in row.kiln else "f32"] = k[0]
            ratio = ratio_of(row, k, t)
            notes = []
            if w.key == "w1" and k:
                if raw:
                    notes.append("kiln at %.0f%% of raw oneDNN" % (100 * k[0] / raw[0]))
                p = peak.get("bf16" if "bf16" in row.label else "f32")
                if p:
                    notes.append("%.0f%% of the FMA peak" % (100 * k[0] / p))
            if w.key == "w2" and row.torch and version:
                impl = [e.get("impl") for e in extra.get(("w2", "torch"), [])]
                notes.append("torch: libtorch C++" if "libtorch" in impl else "torch: Python (no libtorch peer)")
            target = target_cell(row, k, ratio, raw)
            if w.kind == PROCESS:
                ka = [e["test_accuracy"] for e in extra.get((w.key, "kiln"), []) if "test_accuracy" in e]
                ta = [float(e["accuracy"]) for e in extra.get((w.key, "torch"), []) if "accuracy" in e]
                if ka or ta:  # each round's, once when they agree (training is seeded)
                    notes.append("test accuracy %s / %s" % (
                        " ".join(dict.fromkeys("%.4f" % a for a in ka)) or "-",
                        " ".join(dict.fromkeys("%.4f" % a for a in ta)) or "-"))
                if ka and ta and target.endswith("met") and stats(ka)[0] < stats(ta)[0]:
                    target = target[:-len("met")] + "MISSED (accuracy)"
            lines.append([row.label, kiln[row.kiln].cell(), torch[(w.key, row.torch)].cell() if row.torch else "-",
                          "%.2f" % ratio if ratio is not None else "-", target, rss_cell, "; ".join(notes)])
            if row.raw:
                lines.append(["  raw oneDNN matmul, same n (GFLOP/s)", kiln[row.raw].cell(), "-", "-", "-", "", ""])
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    for cells in [header, ["-" * n for n in widths]] + lines:
        print("| " + " | ".join(c.ljust(n) for c, n in zip(cells, widths)) + " |")
    print("\nratio: kiln's time / PyTorch's (for GFLOP/s rows, PyTorch's rate / kiln's): below 1, kiln is faster.")
    if memory:
        print("peak RSS target (kiln at most 0.5x PyTorch's): %s" % "; ".join(
            "%s %.2f %s" % (key, r, "met" if r <= 0.5 else "MISSED") for key, r in memory))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Runs kiln_dist_benchmarks (bench_distributed.cc) and prints the tables of benchmarks/README.md's
# "Data-parallel training over MPI (issue 11)" section.
#
#   benchmarks/distributed/run.sh <build dir>      (configured with -DKILN_BUILD_BENCHMARKS=ON)
#
# (a) allreduce bandwidth under mpirun -np 2: kiln::distributed::allreduce against raw
#     MPI_Allreduce (the median of ROUNDS runs of each), and a fit t(n) = alpha + beta * n to the
#     raw times. Twice: as the process
#     starts by default, then with glibc's mmap threshold raised (GLIBC_TUNABLES), so that MPI's
#     temporary buffers above 32 MiB are reused instead of mapped and page-faulted in afresh on
#     every call (a page fault costs ~17 us on the 2-core VM of the README).
# (b) the W3 training step in three configurations: A = 1 process x 2 threads, B = 1 process x
#     1 thread, C = 2 processes x 1 thread (data-parallel), and the scaling efficiency; ROUNDS
#     (default 2) rounds of A, B, C.
# Every run uses --bind-to none, so the configurations differ only in how the two cores are split
# (processes or threads), not in how the processes are pinned. BIND=core (or any mpirun
# --bind-to value) overrides it. The JSON of each run is kept in <build dir>/dist-bench-results/.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
build=$1
bin=$build/benchmarks/kiln_dist_benchmarks
if [[ ! -x $bin ]]; then
  echo "$0: $bin not found; configure with -DKILN_BUILD_BENCHMARKS=ON (MPI found) and build" \
    "the target kiln_dist_benchmarks" >&2
  exit 1
fi
out=$build/dist-bench-results
mkdir -p "$out"

# Debian's OpenMPI in a container: no CMA/ptrace for vader's single-copy path.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun=(mpirun --oversubscribe --bind-to "${BIND:-none}")
if [[ $(id -u) -eq 0 ]]; then mpirun+=(--allow-run-as-root); fi

rounds=${ROUNDS:-2}

# run <name> <np> <threads> <filter> [mpirun options]: rank 0 writes $out/<name>.json; the
# console goes to $out/<name>.log.
run() {
  local name=$1 np=$2 threads=$3 filter=$4
  shift 4
  echo "running $name: mpirun -np $np $*, $threads thread(s) per process, filter $filter" >&2
  if ! "${mpirun[@]}" "$@" -np "$np" "$bin" --threads="$threads" --benchmark_filter="$filter" \
      --benchmark_out="$out/$name.json" --benchmark_out_format=json >"$out/$name.log" 2>&1; then
    cat "$out/$name.log" >&2
    echo "$0: $name failed (log above)" >&2
    exit 1
  fi
}

rm -f "$out"/*.json "$out"/*.log
for ((r = 1; r <= rounds; ++r)); do
  run "allreduce_round$r" 2 1 '^BM_Allreduce'
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296 \
    run "allreduce_no_mmap_round$r" 2 1 '^BM_Allreduce' -x GLIBC_TUNABLES
done
for ((r = 1; r <= rounds; ++r)); do
  run "w3_A_round$r" 1 2 '^BM_W3'
  run "w3_B_round$r" 1 1 '^BM_W3'
  run "w3_C_round$r" 2 1 '^BM_W3'
done

/usr/bin/python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])

def load(name):
    with open(f"{out}/{name}.json") as f:
        runs = json.load(f)["benchmarks"]
    return {r["run_name"]: r for r in runs if r.get("run_type", "iteration") == "iteration"}

def seconds(r):  # the mean wall time of one iteration
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[r["time_unit"]]
    return r["real_time"] * scale

def human(n):
    for unit, div in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n // div} {unit}"
    return f"{n} B"

# t(n) = alpha + beta n by weighted least squares.
def fit(xs, ys, ws):
    sw = sum(ws)
    sx = sum(w * x for w, x in zip(ws, xs))
    sy = sum(w * y for w, y in zip(ws, ys))
    sxx = sum(w * x * x for w, x in zip(ws, xs))
    sxy = sum(w * x * y for w, x, y in zip(ws, xs, ys))
    beta = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return (sy - beta * sx) / sw, beta

# (a) allreduce
for name, title in (("allreduce", "default environment"),
                    ("allreduce_no_mmap", "GLIBC_TUNABLES mmap_threshold = trim_threshold = 4 GiB")):
    samples = {"BM_AllreduceKiln": {}, "BM_AllreduceKilnInPlace": {}, "BM_AllreduceRaw": {},
               "BM_AllreduceRawOutOfPlace": {}}
    for rnd in range(1, rounds + 1):
        for run_name, r in load(f"{name}_round{rnd}").items():
            kind, size = run_name.split("/")[0], int(run_name.split("/")[1])
            samples[kind].setdefault(size, []).append(seconds(r))
    # The median over the rounds of each size's time (rounds run kiln and raw MPI alternately).
    times = {kind: {n: statistics.median(ts) for n, ts in by_size.items()} for kind, by_size in samples.items()}
    kiln_t, inplace_t, raw_t, raw_oop_t = (times[k] for k in ("BM_AllreduceKiln", "BM_AllreduceKilnInPlace",
                                                               "BM_AllreduceRaw", "BM_AllreduceRawOutOfPlace"))
    sizes = sorted(set(kiln_t) & set(inplace_t) & set(raw_t) & set(raw_oop_t))
    print(f"\n(a) allreduce, float32 sum, mpirun -np 2, {title}; median of {rounds} runs")
    print("    (GB/s: 1e9 bytes of the buffer per second; % of raw: raw time / kiln time, raw in place;")
    print("    tensor: allreduce(t) into a new tensor, also against raw out of place;")
    print("    variable: allreduce_(v) in place)\n")
    print("| size | raw MPI time | raw GB/s | kiln tensor GB/s | % of raw | % of raw out of place | "
          "kiln variable GB/s | % of raw |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        k, v, m, o = kiln_t[n], inplace_t[n], raw_t[n], raw_oop_t[n]
        print(f"| {human(n)} | {m * 1e6:,.1f} µs | {n / m / 1e9:.2f} | {n / k / 1e9:.2f} | {100 * m / k:.0f} % | "
              f"{100 * o / k:.0f} % | {n / v / 1e9:.2f} | {100 * m / v:.0f} % |")
    # Ordinary least squares (the big sizes dominate it) and least squares of the relative error
    # (weights 1/t^2: every size counts alike).
    ys = [raw_t[n] for n in sizes]
    print()
    for label, ws in (("ordinary least squares", [1.0] * len(sizes)),
                      ("relative-error least squares", [1.0 / (y * y) for y in ys])):
        alpha, beta = fit(sizes, ys, ws)
        print(f"raw MPI_Allreduce t(n) = alpha + beta n, {label}: alpha = {alpha * 1e6:.2f} µs, "
              f"beta = {beta * 1e9:.4f} ns/byte ({1 / beta / 1e9:.2f} GB/s)")

# (b) W3
configs = [("A", "1 process x 2 threads", 1), ("B", "1 process x 1 thread", 1),
           ("C", "2 processes x 1 thread", 2)]
print("\n(b) W3 training step (GradientTape, Adam(1e-3)), global batch 128, 200 steps after 20\n")
print("| round | config | rows per rank | step, sync 0 (after) | step, sync 1 (overlap) | "
      "step, sync 2 (per gradient) | samples/s, sync 1 | local step, 64 rows | local step, 128 rows |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
effs = []
for rnd in range(1, rounds + 1):
    rate = {}
    for key, label, ranks in configs:
        r = load(f"w3_{key}_round{rnd}")
        steps = [seconds(r[f"BM_W3DataParallelStep/{k}/iterations:200/real_time"]) for k in range(3)]
        l64 = seconds(r["BM_W3LocalStep/64/iterations:200/real_time"])
        l128 = seconds(r["BM_W3LocalStep/128/iterations:200/real_time"])
        rate[key], rate[key + "'"] = 128 / steps[0], 128 / l128
        rate[key + "1"] = 128 / steps[1]
        print(f"| {rnd} | {key}: {label} | {128 // ranks} | " + " | ".join(f"{t * 1e3:.3f} ms" for t in steps)
              + f" | {128 / steps[1]:,.0f} | {l64 * 1e3:.3f} ms | {l128 * 1e3:.3f} ms |")
    effs.append((rate["C"] / rate["A"], rate["C1"] / rate["A"], rate["C"] / rate["A'"], rate["C1"] / rate["A'"],
                 rate["C"] / (2 * rate["B"]), rate["C"] / (2 * rate["B'"])))
print("\nScaling efficiency E (A, B: their sync-0 step on 1 rank; A', B': their plain local step on")
print("128 rows, no distributed optimizer; C1: C with sync 1, the allreduce overlapping the backward pass)\n")
print("| round | C / A | C1 / A | C / A' | C1 / A' | C / 2B | C / 2B' |")
print("|---|---:|---:|---:|---:|---:|---:|")
for rnd, e in enumerate(effs, 1):
    print(f"| {rnd} | " + " | ".join(f"{v:.3f}" for v in e) + " |")
EOF
echo >&2
echo "JSON and logs: $out" >&2

// kiln_dist_benchmarks: data-parallel training over MPI (issue 11). Run every rank the same way:
//
//   mpirun -np 2 build/benchmarks/kiln_dist_benchmarks [--threads=N] [benchmark flags]
//
// (benchmarks/distributed/run.sh runs the whole set and prints the tables.) Every benchmark has a
// fixed iteration count: Google Benchmark's adaptive count would differ between ranks and leave
// one rank waiting in a collective the other never calls. Each benchmark's ranks meet in a barrier
// after the warm-up, so they start the timed loop together. Only rank 0 reports.
//
// BM_AllreduceKiln/<bytes>: kiln::distributed::allreduce(t, "sum") on a float32 tensor of <bytes>,
//   as the public API does it: a new output tensor, which MPI_Allreduce writes the sum into
//   (send buffer the input, receive buffer the output) on kiln's duplicate of MPI_COMM_WORLD.
// BM_AllreduceKilnInPlace/<bytes>: kiln::distributed::allreduce_(v, "sum") on a float32 variable
//   of <bytes>: MPI_IN_PLACE on the variable's own buffer, the equivalent of the raw call below.
// BM_AllreduceRaw/<bytes>: MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)
//   on a buffer of the same size, allocated and touched once.
// BM_AllreduceRawOutOfPlace/<bytes>: MPI_Allreduce(in, out, ...) into a second buffer: the raw
//   counterpart of BM_AllreduceKiln.
//   bytes_per_second is <bytes> per call over the call's wall time (the algorithm bandwidth; for 2
//   ranks the ring's bus bandwidth 2(p-1)/p x that is the same number).
// BM_W3DataParallelStep/<sync>: one W3 training step (bench_training.h: 784-512-256-10 ReLU MLP,
//   mean sparse softmax cross-entropy of the logits, Adam(1e-3)) through a GradientTape loop, the
//   535,818 gradients (2.14 MB) averaged over the ranks by
//   sync 0: the optimizer made distributed with set_distributed(world()) (one 64 MiB fusion
//           buffer: one allreduce after the backward pass, in apply_gradients);
//   sync 1: DistributedGradientTape (defaults) with a plain optimizer: buckets in reverse order,
//           the first at most 1 MiB (the last two layers' 0.53 MB, summed on the background
//           thread while the first layer's backward runs), then the first layer's 1.6 MB;
//   sync 2: DistributedGradientTape with fusion_threshold_bytes 0: one allreduce per gradient,
//           each started as soon as the backward pass has finished it.
//   Each rank takes its 128/size rows of the global batch of 128; counter samples_per_second is
//   the global 128 per step. After the steps the ranks compare a checksum of their weights, which
//   must agree to the bit.
// BM_W3LocalStep/<rows>: the same step on <rows> rows with a plain (not distributed) optimizer on
//   each rank: the compute part T_c(rows) alone, under the same core sharing as the real run.
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_training.h"

namespace {

constexpr int kW3WarmUp = 20, kW3Steps = 200;

// Rank != 0: runs the benchmarks and reports nothing.
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context &) override { return true; }
  void ReportRuns(const std::vector<Run> &) override {}
};

// Enough calls for stable numbers, about 1 GiB reduced per size: 20,000 calls up to 16 KiB, 4 of
// 256 MiB. The largest sizes are slow where a page fault is expensive (MPI's temporary buffer of
// n/p bytes is above glibc's 32 MiB mmap threshold cap from 64 MiB on, so every call maps and
// faults it in afresh).
int64_t allreduce_iterations(int64_t bytes) {
  return std::clamp<int64_t>((int64_t{1} << 30) / bytes, 4, 20000);
}

int64_t allreduce_warm_up(int64_t iterations) { return std::clamp<int64_t>(iterations / 10, 1, 100); }

void BM_AllreduceKiln(benchmark::State &state, int64_t bytes) {
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  kiln::Tensor t = kiln::Tensor::from_vector(std::vector<float>(static_cast<size_t>(n), 0.0f), {n});
  for (int64_t i = 0; i < allreduce_warm_up(state.max_iterations); ++i) {
    kiln::Tensor r = kiln::distributed::allreduce(t, "sum");
    benchmark::DoNotOptimize(r.get());
  }
  kiln::distributed::barrier();
  for (auto _ : state) {
    kiln::Tensor r = kiln::distributed::allreduce(t, "sum");
    benchmark::DoNotOptimize(r.get());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_AllreduceKilnInPlace(benchmark::State &state, int64_t bytes) {
  const int64_t n = bytes / static_cast<int64_t>(sizeof(float));
  kiln::Variable v(kiln::Tensor::from_vector(std::vector<float>(static_cast<size_t>(n), 0.0f), {n}), "v");
  for (int64_t i = 0; i < allreduce_warm_up(state.max_iterations); ++i)
    kiln::distributed::allreduce_(v, "sum");
  kiln::distributed::barrier();
  for (auto _ : state) kiln::distributed::allreduce_(v, "sum");
  state.SetBytesProcessed(state.iterations() * bytes);
}

// Raw MPI_Allreduce of bytes of float32 zeros (the sums stay 0, so no value ever becomes a slow
// denormal or an inf) from in to out, MPI_IN_PLACE when in_place; the buffers are allocated and
// touched once, the best case for raw MPI.
void time_raw_allreduce(benchmark::State &state, int64_t bytes, bool in_place) {
  const int n = static_cast<int>(bytes / static_cast<int64_t>(sizeof(float)));
  std::vector<float> in(static_cast<size_t>(n), 0.0f), out(in_place ? 0 : static_cast<size_t>(n), 0.0f);
  const void *src = in_place ? MPI_IN_PLACE : in.data();
  float *dst = in_place ? in.data() : out.data();
  auto call = [&] {
    if (MPI_Allreduce(src, dst, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
      kiln::distributed::abort(2);
  };
  for (int64_t i = 0; i < allreduce_warm_up(state.max_iterations); ++i) call();
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto _ : state) call();
  benchmark::DoNotOptimize(dst);
  state.SetBytesProcessed(state.iterations() * bytes);
}

void BM_AllreduceRaw(benchmark::State &state, int64_t bytes) { time_raw_allreduce(state, bytes, true); }

// The raw form of BM_AllreduceKiln: out of place, the sum written into a second buffer.
void BM_AllreduceRawOutOfPlace(benchmark::State &state, int64_t bytes) {
  time_raw_allreduce(state, bytes, false);
}

// The same initial weights on every rank (broadcast_variables makes sure of it anyway).
kiln::Sequential seeded_w3_mlp() {
  kiln::set_seed(1234);
  return kiln_bench::w3_mlp();
}

// The W3 step of one rank on rows [offset, offset + rows) of bench_training.h's global batch.
struct W3Rank {
  kiln::Sequential model = seeded_w3_mlp();
  kiln::Loss loss_fn = kiln_bench::w3_loss();
  kiln::optimizers::Optimizer optimizer = kiln::optimizers::Adam(1e-3);
  std::vector<kiln::Variable> vars = model.trainable_variables();
  kiln::Tensor x, y;

  int sync;  // -1: not distributed; otherwise BM_W3DataParallelStep's argument

  W3Rank(int64_t rows, int64_t offset, int sync_mode) : sync(sync_mode) {
    std::vector<float> xs(static_cast<size_t>(rows * kiln_bench::kW3Inputs));
    std::vector<int32_t> ys(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t g = offset + r;  // the row of the global batch, as W3Batch fills it
      for (int64_t j = 0; j < kiln_bench::kW3Inputs; ++j)
        xs[static_cast<size_t>(r * kiln_bench::kW3Inputs + j)] =
            static_cast<float>((g * kiln_bench::kW3Inputs + j) % 255) / 255.0f;
      ys[static_cast<size_t>(r)] = static_cast<int32_t>(g % kiln_bench::kW3Classes);
    }
    x = kiln::Tensor::from_vector(xs, {rows, kiln_bench::kW3Inputs});
    y = kiln::Tensor::from_vector(ys, {rows});
    if (sync >= 0) {
      kiln::Communicator world = kiln::distributed::world();
      world.broadcast_variables(vars, 0);  // every rank starts from rank 0's weights (Horovod)
      if (sync == 0) optimizer.set_distributed(world);
    }
  }
  void run() {
    kiln::GradientTape tape;
    if (sync > 0) kiln::distributed::DistributedGradientTape(tape, "mean", sync == 1 ? int64_t{64} << 20 : 0);
    kiln::Tensor loss = loss_fn(y, model(x, /*training=*/true));
    tape.stop();
    optimizer.apply_gradients(tape.gradient(loss, vars), vars);
  }
};

// Minor page faults of this process so far: on a VM where a fault costs ~17 us, memory that a
// step maps afresh (malloc above its mmap threshold) shows here.
long minor_faults() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

void run_w3(benchmark::State &state, W3Rank &step, int64_t samples_per_step) {
  for (int i = 0; i < kW3WarmUp; ++i) step.run();  // the slots, the primitives, the allocator's cache
  kiln::distributed::barrier();
  const long faults = minor_faults();
  for (auto _ : state) step.run();
  state.counters["faults_per_step"] =
      static_cast<double>(minor_faults() - faults) / static_cast<double>(state.iterations());
  state.counters["samples_per_second"] = benchmark::Counter(static_cast<double>(samples_per_step),
                                                            benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = kiln::num_threads();
  state.counters["ranks"] = kiln::distributed::size();
}

void BM_W3DataParallelStep(benchmark::State &state) {
  const int size = kiln::distributed::size(), rank = kiln::distributed::rank();
  if (kiln_bench::kW3Batch % size != 0) {
    state.SkipWithError("the global batch of 128 does not split evenly over the ranks");
    return;  // every rank skips alike: no collective runs
  }
  const int64_t rows = kiln_bench::kW3Batch / size;
  W3Rank step(rows, rank * rows, static_cast<int>(state.range(0)));
  run_w3(state, step, kiln_bench::kW3Batch);
  // The ranks applied the same averaged gradients, so their weights must agree to the bit.
  double sum = 0;
  for (const kiln::Variable &v : step.vars)
    for (float f : v.value().to_vector<float>()) sum += static_cast<double>(f);
  const std::vector<double> sums =
      kiln::distributed::allgather(kiln::Tensor::from_vector(std::vector<double>{sum}, {1}))
          .to_vector<double>();
  if (std::any_of(sums.begin(), sums.end(), [&](double s) { return s != sums[0]; }))
    state.SkipWithError("the ranks' weights differ after the steps: the gradients were not averaged alike");
}

void BM_W3LocalStep(benchmark::State &state) {
  const int64_t rows = state.range(0);
  W3Rank step(rows, kiln::distributed::rank() * rows % kiln_bench::kW3Batch, /*sync_mode=*/-1);
  run_w3(state, step, rows);  // per rank: the job's rate is this times the ranks
}

// --threads=N (or KILN_BENCH_THREADS=N): kiln's kernel threads per process; otherwise
// kiln_dist_init's choice (the processors divided among the ranks on this machine).
int take_threads_flag(int *argc, char **argv) {
  int threads = 0;
  if (const char *env = std::getenv("KILN_BENCH_THREADS")) threads = std::atoi(env);
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      threads = std::atoi(argv[i] + 10);
    else
      argv[out++] = argv[i];
  }
  *argc = out;
  return threads;
}

bool has_out_flag(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_out=", 16) == 0 && argv[i][16] != '\0') return true;
  return false;
}

}  // namespace

int main(int argc, char **argv) {
  const int threads = take_threads_flag(&argc, argv);
  try {
    kiln::distributed::init();
    if (threads > 0) kiln::set_num_threads(threads);
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln_dist_benchmarks: %s\n", e.what());
    return 1;
  }
  const int rank = kiln::distributed::rank();

  for (int64_t bytes = int64_t{1} << 10; bytes <= int64_t{256} << 20; bytes <<= 2) {
    const int64_t iters = allreduce_iterations(bytes);
    benchmark::RegisterBenchmark("BM_AllreduceKiln", BM_AllreduceKiln, bytes)
        ->Arg(bytes)
        ->Iterations(iters)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_AllreduceKilnInPlace", BM_AllreduceKilnInPlace, bytes)
        ->Arg(bytes)
        ->Iterations(iters)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_AllreduceRaw", BM_AllreduceRaw, bytes)
        ->Arg(bytes)
        ->Iterations(iters)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("BM_AllreduceRawOutOfPlace", BM_AllreduceRawOutOfPlace, bytes)
        ->Arg(bytes)
        ->Iterations(iters)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("BM_W3DataParallelStep", BM_W3DataParallelStep)
      ->DenseRange(0, 2)
      ->Iterations(kW3Steps)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_W3LocalStep", BM_W3LocalStep)
      ->Arg(kiln_bench::kW3Batch / 2)
      ->Arg(kiln_bench::kW3Batch)
      ->Iterations(kW3Steps)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter display, file;
    benchmark::RunSpecifiedBenchmarks(&display, has_out_flag(argc, argv) ? &file : nullptr);
  }
  benchmark::Shutdown();
  kiln::distributed::finalize();
  return 0;
}

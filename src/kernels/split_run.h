// Results independent of the thread count for reductions oneDNN would split by thread count
// (convolution backward-weights, GEMMs with a long K): the work is cut into pieces whose number
// and sizes are a function of the shape alone, each piece runs a primitive created for one
// thread, the pieces run concurrently on the caller's OpenMP team, and partial sums are added in
// piece order. Every piece prepares its own memory objects, stream and scratchpad on the calling
// thread, so running it inside the parallel region takes no lock, allocates nothing of kiln's and
// throws nothing.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "kernels/engine.h"

namespace kiln {
class Storage;
}

namespace kiln::kernels {

// Makes oneDNN primitives created or run on the calling thread while it lives use one thread: it
// sets OpenMP's count, which oneDNN reads when it builds a primitive and when a GEMM runs, to 1,
// and restores kiln's count after. It first applies kiln's count, so that execute()'s own
// apply_num_threads() inside the scope finds it applied and leaves OpenMP's count at 1. (Not
// kiln's per-thread override: its range check asks the OS for the processor count, about half a
// microsecond, twice per small matmul.)
class SingleThreadScope {
 public:
  SingleThreadScope();
  ~SingleThreadScope();
  SingleThreadScope(const SingleThreadScope &) = delete;
  SingleThreadScope &operator=(const SingleThreadScope &) = delete;

 private:
  int previous_;
};

// One execution of a primitive, prepared on the calling thread to run on any thread (on a stream
// of its own: run_all gives each run one of the calling thread's streams).
class PreparedRun {
 public:
  static constexpr int kMaxArgs = 8;
  // p's arguments (buffers in the layouts p expects) and a scratchpad of its own.
  PreparedRun(const dnnl::primitive &p, std::initializer_list<Arg> args);
  // Runs p on `stream` and waits for it; the status instead of an exception, so it may run in a
  // parallel region.
  dnnl_status_t run(dnnl_stream_t stream) noexcept;
  // Points argument `arg` (given to the constructor) at `data`, a buffer of the same layout; for a
  // buffer known only on the thread that runs this (run_all's `before`).
  dnnl_status_t set_data(int arg, void *data) noexcept;

 private:
  dnnl::primitive prim_;
  int count_ = 0;
  dnnl::memory mems_[kMaxArgs + 1];
  dnnl_exec_arg_t args_[kMaxArgs + 1];
  std::shared_ptr<Storage> scratch_;
};

// Runs every run, concurrently on the calling thread's OpenMP team at num_threads(), each on its
// own stream of the calling thread (kept for its next call); throws
// Internal naming `what` if any failed. before(i, t), when given, runs on OpenMP thread t of the
// team (t < team_size()) just before run i, which it may prepare (PreparedRun::set_data); it must
// not throw or allocate, and a status other than success skips the run and fails the call.
using BeforeRun = std::function<dnnl_status_t(size_t run, int thread)>;
void run_all(std::vector<PreparedRun> &runs, const char *what, const BeforeRun &before = nullptr);
// The number of OpenMP threads run_all's team has at most (num_threads()).
int team_size();

// out[i] = parts[0][i] + parts[1][i] + ... in that order, for i < count, on num_threads() threads.
void sum_in_order(const std::vector<const float *> &parts, int64_t count, float *out);

}  // namespace kiln::kernels

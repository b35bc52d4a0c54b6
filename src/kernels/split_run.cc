#include "kernels/split_run.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"

namespace kiln::kernels {

SingleThreadScope::SingleThreadScope() {
  apply_num_threads();
  previous_ = omp_get_max_threads();
  omp_set_num_threads(1);
}

SingleThreadScope::~SingleThreadScope() { omp_set_num_threads(previous_); }

PreparedRun::PreparedRun(const dnnl::primitive &p, std::initializer_list<Arg> args) : prim_(p) {
  if (args.size() > static_cast<size_t>(kMaxArgs))
    fail(Code::kInternal, "PreparedRun: more than ", kMaxArgs, " arguments");
  for (const Arg &a : args) {
    mems_[count_] = dnnl::memory(arg_md(p, a.id), engine(), const_cast<void *>(a.data));
    args_[count_] = {a.id, mems_[count_].get()};
    ++count_;
  }
  const dnnl::memory::desc smd = arg_md(p, DNNL_ARG_SCRATCHPAD);
  if (smd.get_size() > 0) {
    scratch_ = Storage::allocate(smd.get_size());
    mems_[count_] = dnnl::memory(smd, engine(), scratch_->data());
    args_[count_] = {DNNL_ARG_SCRATCHPAD, mems_[count_].get()};
    ++count_;
  }
}

dnnl_status_t PreparedRun::run(dnnl_stream_t stream) noexcept {
  const dnnl_status_t st = dnnl_primitive_execute(prim_.get(), stream, count_, args_);
  const dnnl_status_t wt = dnnl_stream_wait(stream);
  return st != dnnl_success ? st : wt;
}

dnnl_status_t PreparedRun::set_data(int arg, void *data) noexcept {
  for (int i = 0; i < count_; ++i)
    if (args_[i].arg == arg) return dnnl_memory_set_data_handle(args_[i].memory, data);
  return dnnl_invalid_arguments;
}

int team_size() {
  apply_num_threads();
  return omp_get_max_threads();
}

void run_all(std::vector<PreparedRun> &runs, const char *what, const BeforeRun &before) {
  const int64_t n = static_cast<int64_t>(runs.size());
  std::vector<dnnl_status_t> status(runs.size(), dnnl_success);
  // The calling thread's streams, one per concurrent run: creating streams on every call costs more
  // than a small piece.
  thread_local std::vector<dnnl::stream> streams;
  while (streams.size() < runs.size()) streams.emplace_back(engine());
  const dnnl::stream *stream = streams.data();
  apply_num_threads();
#pragma omp parallel for if (n > 1) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<size_t>(i);
    status[at] = before ? before(at, omp_get_thread_num()) : dnnl_success;
    if (status[at] == dnnl_success) status[at] = runs[at].run(stream[i].get());
  }
  for (dnnl_status_t s : status)
    if (s != dnnl_success)
      fail(Code::kInternal, "oneDNN ", what, " failed with status ", static_cast<int>(s));
}

void sum_in_order(const std::vector<const float *> &parts, int64_t count, float *out) {
  const int64_t k = static_cast<int64_t>(parts.size());
  const float *const *p = parts.data();
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  apply_num_threads();
#pragma omp parallel for if (blocks > 1) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, hi = std::min(count, lo + kBlock);
    for (int64_t i = lo; i < hi; ++i) out[i] = p[0][i];
    for (int64_t j = 1; j < k; ++j)
      for (int64_t i = lo; i < hi; ++i) out[i] += p[j][i];
  }
}

}  // namespace kiln::kernels

// The transformations that run on pipeline threads: a parallel map and prefetch. Both are one
// iterator: workers pull input elements in turn (numbered as pulled), apply the map function (none
// for prefetch) and file each result under its number; next() hands results out in that order,
// so the output order never depends on thread timing. Errors travel as results and are rethrown
// by next() on the consuming thread. Destroying the iterator stops and joins its threads.
#include <cxxabi.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "data/dataset_internal.h"

namespace kiln::data {

namespace {

// Runs f, keeping what it throws in *error, except a forced unwind (pthread_exit: Python ends
// threads that call into it during interpreter shutdown), which must pass on out of the thread.
// Catching that one binds a reference to the unwinder's null exception object, as libstdc++'s own
// thread routine does, which UBSan reports: hence no_sanitize("undefined") on this function alone.
template <typename F>
__attribute__((no_sanitize("undefined"))) void capture(F &&f, std::exception_ptr *error) {
  try {
    f();
  } catch (abi::__forced_unwind &) {
    throw;
  } catch (...) {
    *error = std::current_exception();
  }
}

class PipelineIterator final : public Iterator {
 public:
  // fn may be empty (prefetch). keep_alive holds what fn refers to.
  PipelineIterator(IteratorPtr in, const MapFn *fn, int64_t workers, int64_t capacity, DatasetPtr keep_alive)
      : in_(std::move(in)), fn_(fn), capacity_(capacity), keep_alive_(std::move(keep_alive)) {
    try {
      for (int64_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    } catch (...) {
      stop();
      throw;
    }
  }
  ~PipelineIterator() override { stop(); }

  bool next(Element *out) override {
    std::unique_lock<std::mutex> lock(mu_);
    // finished_ in the wait too: a caller that waits while another takes the end marker returns
    // (kiln_iterator_next serialises its callers, but a core iterator may be shared as well).
    ready_.wait(lock, [&] { return finished_ || results_.count(next_out_) != 0; });
    if (finished_) return false;
    auto it = results_.find(next_out_);
    Result r = std::move(it->second);
    results_.erase(it);
    ++next_out_;
    room_.notify_all();
    if (r.end) {
      finished_ = true;
      ready_.notify_all();
      return false;
    }
    lock.unlock();
    if (r.error) std::rethrow_exception(r.error);
    *out = std::move(r.value);
    return true;
  }

 private:
  struct Result {
    Element value;
    std::exception_ptr error;
    bool end = false;
  };

  void stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    room_.notify_all();
    for (std::thread &t : threads_)
      if (t.joinable()) t.join();
  }

  // Not noexcept: a thread ended by pthread_exit while in the map function or the input (Python
  // ends threads that call into it during interpreter shutdown) unwinds with
  // abi::__forced_unwind, which must pass through every handler here and out of the thread.
  void work() {
    // Kernels in the map function run at one thread: the pipeline's parallelism is its workers.
    try {
      set_num_threads_for_this_thread(1);
    } catch (...) {
    }
    for (;;) {
      Result r;
      uint64_t seq;
      {
        std::lock_guard<std::mutex> pull(in_mu_);  // pulls happen one at a time, in number order
        {
          std::unique_lock<std::mutex> lock(mu_);
          room_.wait(lock, [&] { return cancelled_ || input_done_ || next_in_ < next_out_ + capacity_; });
          if (cancelled_ || input_done_) return;
          seq = next_in_++;
        }
        capture([&] { r.end = !in_->next(&r.value); }, &r.error);
        if (r.end) {
          std::lock_guard<std::mutex> lock(mu_);
          input_done_ = true;
        }
      }
      if (fn_ && !r.end && !r.error) {
        capture([&] { r.value = (*fn_)(r.value); }, &r.error);
        if (r.error) r.value.clear();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        results_.emplace(seq, std::move(r));
      }
      ready_.notify_all();
      room_.notify_all();  // input_done_ may have changed: idle workers leave
    }
  }

  IteratorPtr in_;
  const MapFn *fn_;
  const int64_t capacity_;
  DatasetPtr keep_alive_;
  std::mutex in_mu_;  // guards in_; taken before mu_
  std::mutex mu_;     // guards everything below
  std::condition_variable ready_, room_;
  std::map<uint64_t, Result> results_;
  uint64_t next_in_ = 0, next_out_ = 0;
  bool input_done_ = false, cancelled_ = false, finished_ = false;
  std::vector<std::thread> threads_;  // last: started once everything above exists
};

class ParallelMapDataset final : public Dataset {
 public:
  ParallelMapDataset(DatasetPtr input, MapFn fn, int64_t workers, std::vector<std::string> names)
      : Dataset(std::move(names)), input_(std::move(input)), fn_(std::move(fn)), workers_(workers) {}
  int64_t cardinality() const override { return input_->cardinality(); }
  IteratorPtr make_iterator() const override {
    return std::make_unique<PipelineIterator>(input_->make_iterator(), &fn_, workers_, workers_,
                                              shared_from_this());
  }

 private:
  DatasetPtr input_;
  MapFn fn_;
  int64_t workers_;
};

class PrefetchDataset final : public Dataset {
 public:
  PrefetchDataset(DatasetPtr input, int64_t buffer_size)
      : Dataset(input->names()), input_(std::move(input)), buffer_size_(buffer_size) {}
  int64_t cardinality() const override { return input_->cardinality(); }
  IteratorPtr make_iterator() const override {
    return std::make_unique<PipelineIterator>(input_->make_iterator(), nullptr, 1, buffer_size_, nullptr);
  }

 private:
  DatasetPtr input_;
  int64_t buffer_size_;
};

}  // namespace

int64_t autotune_parallelism() {
  const unsigned n = std::thread::hardware_concurrency();
  return n < 2 ? 2 : static_cast<int64_t>(n);
}

DatasetPtr map(DatasetPtr input, MapFn fn, int64_t num_parallel_calls,
               std::vector<std::string> output_names) {
  if (!input) fail(Code::kInvalidArgument, "map: the input dataset is null");
  if (!fn) fail(Code::kInvalidArgument, "map: no function");
  if (num_parallel_calls < -1)
    fail(Code::kInvalidArgument, "map: num_parallel_calls is ", num_parallel_calls,
         "; expected >= 1, 0 (serial) or AUTOTUNE (-1)");
  const int64_t workers = num_parallel_calls == kAutotune ? autotune_parallelism() : num_parallel_calls;
  if (workers <= 1)
    return internal::make_serial_map(std::move(input), std::move(fn), std::move(output_names));
  if (workers > 256) fail(Code::kInvalidArgument, "map: num_parallel_calls is ", workers, "; at most 256");
  return std::make_shared<ParallelMapDataset>(std::move(input), std::move(fn), workers,
                                              std::move(output_names));
}

DatasetPtr prefetch(DatasetPtr input, int64_t buffer_size) {
  if (!input) fail(Code::kInvalidArgument, "prefetch: the input dataset is null");
  if (buffer_size < -1)
    fail(Code::kInvalidArgument, "prefetch: buffer_size is ", buffer_size,
         "; expected >= 0 or AUTOTUNE (-1)");
  if (buffer_size == 0) return input;  // tf: prefetch(0) prefetches nothing
  return std::make_shared<PrefetchDataset>(std::move(input), buffer_size == kAutotune ? 2 : buffer_size);
}

}  // namespace kiln::data

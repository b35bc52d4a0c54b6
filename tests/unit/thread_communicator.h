// An in-process communicator whose ranks are threads (tests of src/train/distribution.h without
// MPI, under the sanitizers too): a reusable barrier and each rank's posted buffer, summed in rank
// order as one deterministic reduction.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "train/distribution.h"

namespace kiln::train {

// The ranks' shared state: a barrier and each rank's posted buffer.
class Hub {
 public:
  explicit Hub(int size) : size_(size), posted_(static_cast<size_t>(size)) {}
  int size() const { return size_; }
  // Waits until every rank has arrived (a reusable barrier).
  void barrier() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t gen = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != gen; });
  }
  void post(int rank, void *data) {
    std::lock_guard<std::mutex> lock(mu_);
    posted_[static_cast<size_t>(rank)] = data;
  }
  void *posted(int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    return posted_[static_cast<size_t>(rank)];
  }

 private:
  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<void *> posted_;
};

template <typename T>
inline void sum_into(std::vector<unsigned char> *out, Hub &hub, size_t count) {
  // From rank 0's values (not from +0), as MPI does: -0 summed with -0 stays -0.
  const T *first = static_cast<const T *>(hub.posted(0));
  std::vector<T> acc(first, first + count);
  for (int r = 1; r < hub.size(); ++r) {
    const T *p = static_cast<const T *>(hub.posted(r));
    for (size_t i = 0; i < count; ++i) acc[i] += p[i];
  }
  out->assign(reinterpret_cast<unsigned char *>(acc.data()),
              reinterpret_cast<unsigned char *>(acc.data()) + count * sizeof(T));
}

// A rank of the in-process communicator: sums in rank order, as one deterministic reduction.
class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Hub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return hub_->size(); }
  void allreduce_sum(void *data, size_t count, DType dtype) override {
    ++calls;
    hub_->post(rank_, data);
    hub_->barrier();
    std::vector<unsigned char> result;
    if (dtype == DType::kFloat32)
      sum_into<float>(&result, *hub_, count);
    else if (dtype == DType::kFloat64)
      sum_into<double>(&result, *hub_, count);
    else
      fail(Code::kInvalidArgument, "ThreadCommunicator: unsupported dtype");
    hub_->barrier();  // every rank has read every buffer
    std::memcpy(data, result.data(), result.size());
  }
  void broadcast(void *data, size_t bytes, int root) override {
    hub_->post(rank_, data);
    hub_->barrier();
    if (rank_ != root) std::memcpy(data, hub_->posted(root), bytes);
    hub_->barrier();
  }
  std::atomic<int> calls{0};

 private:
  std::shared_ptr<Hub> hub_;
  int rank_;
};

// Runs body(rank, communicator) on `size` threads at once; rethrows the first error.
inline void run_ranks(int size,
                      const std::function<void(int, const std::shared_ptr<ThreadCommunicator> &)> &body) {
  auto hub = std::make_shared<Hub>(size);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r, std::make_shared<ThreadCommunicator>(hub, r));
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto &t : threads) t.join();
  for (auto &e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace kiln::train

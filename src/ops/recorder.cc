#include "ops/recorder.h"

#include <algorithm>
#include <atomic>
#include <mutex>

namespace kiln::ops {

class ThreadRecorders {
 public:
  std::atomic<int> count{0};  // lets the common no-tape case skip the lock
  std::mutex mu;
  std::vector<Recorder *> list;
};

namespace {
std::shared_ptr<ThreadRecorders> &current_shared() {
  thread_local std::shared_ptr<ThreadRecorders> t = std::make_shared<ThreadRecorders>();
  return t;
}
ThreadRecorders *current() { return current_shared().get(); }
}  // namespace

std::shared_ptr<ThreadRecorders> thread_recorders() { return current_shared(); }

void add_recorder(const std::shared_ptr<ThreadRecorders> &list, Recorder *r) {
  std::lock_guard<std::mutex> lock(list->mu);
  list->list.push_back(r);
  list->count.store(static_cast<int>(list->list.size()));
}

void remove_recorder(const std::shared_ptr<ThreadRecorders> &list, Recorder *r) {
  std::lock_guard<std::mutex> lock(list->mu);
  auto &l = list->list;
  l.erase(std::remove(l.begin(), l.end(), r), l.end());
  list->count.store(static_cast<int>(l.size()));
}

namespace {
template <typename Ids>
bool any_watched(ThreadRecorders *tr, const Ids &ids) {
  if (tr->count.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list) {
    if (!r->active()) continue;
    for (uint64_t id : ids)
      if (r->watches(id)) return true;
  }
  return false;
}
}  // namespace

bool should_record(std::initializer_list<const Tensor *> inputs) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return false;
  std::vector<uint64_t> ids;
  for (const Tensor *t : inputs)
    if (t && t->defined()) ids.push_back(t->id());
  return any_watched(tr, ids);
}

bool should_record(const std::vector<Tensor> &inputs) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return false;
  std::vector<uint64_t> ids;
  for (const Tensor &t : inputs)
    if (t.defined()) ids.push_back(t.id());
  return any_watched(tr, ids);
}

void record(const char *op, const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs,
            BackwardFn backward) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return;
  auto rec = std::make_shared<OpRecord>();
  rec->op = op;
  for (const Tensor &t : inputs) rec->inputs.push_back(t.defined() ? t.id() : 0);
  for (const Tensor &t : outputs) {
    rec->outputs.push_back(t.id());
    rec->output_shapes.push_back(t.shape());
    rec->output_dtypes.push_back(t.dtype());
  }
  rec->backward = std::move(backward);
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list) {
    if (!r->active()) continue;
    bool w = false;
    for (uint64_t id : rec->inputs)
      if (id && r->watches(id)) w = true;
    if (w) r->add(rec);
  }
}

void notify_variable_read(const Tensor &value) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list)
    if (r->active()) r->on_variable_read(value);
}

}  // namespace kiln::ops

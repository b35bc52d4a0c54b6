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

uint64_t id_of(const Tensor &t) { return t.defined() ? t.id() : 0; }
uint64_t id_of(const Tensor *t) { return t && t->defined() ? t->id() : 0; }

// Caller holds tr->mu.
template <typename Range>
bool watched_by(const Recorder *r, const Range &inputs) {
  for (const auto &t : inputs) {
    uint64_t id = id_of(t);
    if (id && r->watches(id)) return true;
  }
  return false;
}

template <typename Range>
bool any_watched(const Range &inputs) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list)
    if (r->active() && watched_by(r, inputs)) return true;
  return false;
}

}  // namespace

bool should_record(std::initializer_list<const Tensor *> inputs) { return any_watched(inputs); }
bool should_record(const std::vector<Tensor> &inputs) { return any_watched(inputs); }

namespace detail {

bool has_recorders() { return current()->count.load(std::memory_order_relaxed) != 0; }

void describe(OpRecord &rec, const char *op, const Tensor *inputs, size_t num_inputs, const Tensor *outputs,
              size_t num_outputs) {
  rec.op = op;
  rec.inputs.reserve_extra(num_inputs);
  for (size_t i = 0; i < num_inputs; ++i) rec.inputs.push_back(id_of(inputs[i]));
  for (size_t i = 0; i < num_outputs; ++i)
    rec.outputs.push_back(OpOutput{outputs[i].id(), outputs[i].shape(), outputs[i].dtype()});
}

void submit(const std::shared_ptr<const OpRecord> &rec, const Tensor *inputs, size_t num_inputs) {
  ThreadRecorders *tr = current();
  struct Span {
    const Tensor *b, *e;
    const Tensor *begin() const { return b; }
    const Tensor *end() const { return e; }
  } span{inputs, inputs + num_inputs};
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list)
    if (r->active() && watched_by(r, span)) r->add(rec);
}

}  // namespace detail

namespace {
// The read of a variable: the identity from the variable to the value read.
struct ReadVariableRecord final : OpRecord {
  Grads backward(const Grads &g) const override { return g; }
};
}  // namespace

void notify_variable_read(uint64_t variable_id, bool trainable, const Tensor &value) {
  ThreadRecorders *tr = current();
  if (tr->count.load(std::memory_order_relaxed) == 0) return;
  if (!is_floating(value.dtype())) return;  // tapes differentiate floating values only
  std::shared_ptr<ReadVariableRecord> rec;  // one record shared by every tape that watches
  std::lock_guard<std::mutex> lock(tr->mu);
  for (Recorder *r : tr->list) {
    if (!r->active() || !r->on_variable_read(variable_id, trainable)) continue;
    if (!rec) {
      rec = std::make_shared<ReadVariableRecord>();
      rec->op = "ReadVariable";
      rec->inputs.push_back(variable_id);
      rec->outputs.push_back(OpOutput{value.id(), value.shape(), value.dtype()});
    }
    r->add(rec);
  }
}

}  // namespace kiln::ops

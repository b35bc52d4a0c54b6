// The hook through which ops report themselves to gradient tapes.
//
// Ops sit below autodiff/, so they know tapes only through this interface:
// each thread has a list of active recorders (tapes). An op asks
// should_record() (free when the list is empty) and then record()s itself
// with a backward function written in terms of ops.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "core/small_vector.h"
#include "core/tensor.h"

namespace kiln::ops {

using Grads = std::vector<Tensor>;

struct OpOutput {
  uint64_t id;
  Shape shape;
  DType dtype;
};

// One recorded op. The gradient rule lives in the same allocation (see record()).
struct OpRecord {
  virtual ~OpRecord() = default;
  // Given one gradient per output (zeros where an output got none), returns one
  // gradient per input (undefined where that input gets none).
  virtual Grads backward(const Grads &output_grads) const = 0;

  const char *op = nullptr;
  SmallVector<uint64_t, 4> inputs;  // 0 for an undefined input
  SmallVector<OpOutput, 1> outputs;
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  // Recording now (not stopped, not busy computing its own gradient).
  virtual bool active() const = 0;
  virtual bool watches(uint64_t id) const = 0;
  virtual void add(const std::shared_ptr<const OpRecord> &record) = 0;
  // A variable was read while this recorder was active. Returns whether the recorder watches
  // the variable (a tape that watches accessed variables starts watching a trainable one here);
  // if so, the read is added to it as an op from the variable's id to the value read.
  virtual bool on_variable_read(uint64_t variable_id, bool trainable) = 0;
};

// The calling thread's list of recorders. Held by each recorder so that it can
// remove itself even when destroyed on another thread.
class ThreadRecorders;
std::shared_ptr<ThreadRecorders> thread_recorders();
void add_recorder(const std::shared_ptr<ThreadRecorders> &list, Recorder *r);
void remove_recorder(const std::shared_ptr<ThreadRecorders> &list, Recorder *r);

// True when an active recorder of this thread watches one of the inputs.
bool should_record(std::initializer_list<const Tensor *> inputs);
bool should_record(const std::vector<Tensor> &inputs);

namespace detail {
template <typename F>
struct RecordWith final : OpRecord {
  explicit RecordWith(F f) : fn(std::move(f)) {}
  Grads backward(const Grads &g) const override { return fn(g); }
  F fn;
};
bool has_recorders();
void describe(OpRecord &rec, const char *op, const Tensor *inputs, size_t num_inputs, const Tensor *outputs,
              size_t num_outputs);
void submit(const std::shared_ptr<const OpRecord> &rec, const Tensor *inputs, size_t num_inputs);

template <typename F>
void record(const char *op, const Tensor *in, size_t n_in, const Tensor *out, size_t n_out, F &&backward) {
  if (!has_recorders()) return;
  // One allocation holds the record and the gradient rule's captures.
  auto rec = std::make_shared<RecordWith<std::decay_t<F>>>(std::forward<F>(backward));
  describe(*rec, op, in, n_in, out, n_out);
  submit(rec, in, n_in);
}
}  // namespace detail

// Records an op with every active recorder of this thread that watches one of its inputs.
// backward: Grads(const Grads &output_grads), written in ops.
template <typename F>
void record(const char *op, std::initializer_list<Tensor> inputs, std::initializer_list<Tensor> outputs,
            F &&backward) {
  detail::record(op, inputs.begin(), inputs.size(), outputs.begin(), outputs.size(),
                 std::forward<F>(backward));
}
template <typename F>
void record(const char *op, const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs,
            F &&backward) {
  detail::record(op, inputs.data(), inputs.size(), outputs.data(), outputs.size(), std::forward<F>(backward));
}

// Tells this thread's active recorders that the variable with this id was read as `value`.
// Tapes differentiate with respect to a variable through these reads (TF's ReadVariableOp).
void notify_variable_read(uint64_t variable_id, bool trainable, const Tensor &value);

}  // namespace kiln::ops

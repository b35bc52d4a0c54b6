// The hook through which ops report themselves to gradient tapes.
//
// Ops sit below autodiff/, so they know tapes only through this interface:
// each thread has a list of active recorders (tapes). An op asks
// should_record() (free when the list is empty) and then record()s itself
// with a backward function written in terms of ops.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace kiln::ops {

using Grads = std::vector<Tensor>;
// Given one gradient per output (zeros where an output got none), returns one
// gradient per input (undefined where that input gets none).
using BackwardFn = std::function<Grads(const Grads &output_grads)>;

struct OpRecord {
  const char *op;
  std::vector<uint64_t> inputs;
  std::vector<uint64_t> outputs;
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
  BackwardFn backward;
};

class Recorder {
 public:
  virtual ~Recorder() = default;
  // Recording now (not stopped, not busy computing its own gradient).
  virtual bool active() const = 0;
  virtual bool watches(uint64_t id) const = 0;
  virtual void add(const std::shared_ptr<const OpRecord> &record) = 0;
  // A trainable variable's value was read while this recorder was active.
  virtual void on_variable_read(const Tensor &value) = 0;
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
// Records an op with every active recorder of this thread that watches one of its inputs.
void record(const char *op, const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs,
            BackwardFn backward);
// Tells this thread's active recorders that a trainable variable was read.
void notify_variable_read(const Tensor &value);

}  // namespace kiln::ops

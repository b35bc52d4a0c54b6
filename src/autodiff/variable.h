// Variable: the only mutable thing. A named holder of a tensor value, with an
// identity of its own (as tf.Variable's resource handle) that tapes, optimizer
// slots and checkpoints key on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/tensor.h"

namespace kiln::autodiff {

struct VariableBuffer;

class Variable : public std::enable_shared_from_this<Variable> {
 public:
  // The variable starts with a copy of initial's value (as tf.Variable), so it never
  // aliases a caller's tensor, nor writes into a buffer adopted from the caller.
  Variable(std::string name, const Tensor &initial, bool trainable);
  ~Variable();
  Variable(const Variable &) = delete;
  Variable &operator=(const Variable &) = delete;

  // Unique among variables and tensors for the life of the process; never reused.
  uint64_t id() const { return id_; }
  const std::string &name() const { return name_; }
  bool trainable() const { return trainable_.load(std::memory_order_relaxed); }
  // Keras's layer.trainable = False freezes a layer's variables this way: tapes stop watching
  // them when read, and trainable_variables leave them out.
  void set_trainable(bool t) { trainable_.store(t, std::memory_order_relaxed); }
  DType dtype() const { return dtype_; }
  const Shape &shape() const { return shape_; }

  // The current value, as a new tensor (a new tensor id per read). A recording tape that
  // watches this variable (explicitly, or because it watches accessed trainable variables)
  // records the read, so gradients with respect to the variable flow through it.
  Tensor value() const;
  // The value without notifying tapes (for optimizers and serialisation).
  Tensor peek() const;
  // The value for an op that consumes it at once and lets it go (a layer's weight passed straight
  // into a kernel). When no tape is registered on this thread and no autocast scope casts it,
  // every such read of one buffer returns the same tensor (same id), kept by the variable, so
  // the read allocates nothing; otherwise it is value(). The tensor must not escape the op.
  // Writes drop the kept tensor first, so they stay in place unless a read is still in use.
  Tensor read_for_op() const;

  // Replace, add to, subtract from the value. Shapes and dtypes must match.
  // Updates in place when no tensor read earlier is still alive; otherwise writes a new
  // buffer (copy on write), so tensors read earlier never change.
  void assign(const Tensor &v);
  void assign_add(const Tensor &delta);
  void assign_sub(const Tensor &delta);

  // A fused in-place update of several variables at once (an optimizer's weight and its slots):
  // locks them all (in id order, so concurrent calls cannot deadlock), then calls
  // f(dst, src) with, for each variable i, dst[i] the buffer to write and src[i] its current
  // value. dst[i] is the current buffer itself (dst[i] == src[i]) when no tensor read earlier
  // is alive, else a new buffer that becomes current, so a tensor read earlier never changes.
  // f must write every element of every dst[i] (reading src[i] before writing dst[i] at each
  // element, as they may alias), must not throw and must not touch the variables. A variable
  // listed twice is InvalidArgument.
  using UpdateFn = std::function<void(void *const *dst, const void *const *src)>;
  static void update_in_place(Variable *const *vars, size_t n, const UpdateFn &f);

  // The live variable with this id, when a shared_ptr owns it (as every variable of a layer or a
  // C handle); null otherwise. Thread-safe.
  static std::shared_ptr<Variable> find(uint64_t id);

 private:
  void check_compatible(const Tensor &v, const char *op) const;
  void update(const Tensor &delta, bool add, const char *op);
  // A buffer that may be written: the current one when no reader holds it, else a new one
  // installed as current. Caller holds mu_; the contents of a new buffer are undefined.
  VariableBuffer &writable_buffer_locked();

  const uint64_t id_;
  std::string name_;
  std::atomic<bool> trainable_;
  DType dtype_;
  Shape shape_;
  mutable std::mutex mu_;
  std::shared_ptr<VariableBuffer> buffer_;  // guarded by mu_
  mutable Tensor op_read_;                  // read_for_op's tensor of buffer_ (or none); guarded by mu_
};

}  // namespace kiln::autodiff

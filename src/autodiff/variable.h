// Variable: the only mutable thing. A named holder of a tensor value.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/tensor.h"

namespace kiln::autodiff {

class Variable {
 public:
  // The variable starts with initial's value (shared until the first in-place update).
  Variable(std::string name, const Tensor &initial, bool trainable);

  const std::string &name() const { return name_; }
  bool trainable() const { return trainable_; }
  DType dtype() const { return dtype_; }
  const Shape &shape() const { return shape_; }

  // The current value. Under a recording tape that watches accessed variables,
  // a trainable variable's value is watched.
  Tensor value() const;
  // The value without notifying tapes (for optimizers and serialisation).
  Tensor peek() const;

  // Replace, add to, subtract from the value. Shapes and dtypes must match.
  // Updates in place when nothing else holds the old value; otherwise copies,
  // so tensors read earlier never change.
  void assign(const Tensor &v);
  void assign_add(const Tensor &delta);
  void assign_sub(const Tensor &delta);

 private:
  void check_compatible(const Tensor &v, const char *op) const;
  void update(const Tensor &delta, float sign, const char *op);
  std::string name_;
  bool trainable_;
  DType dtype_;
  Shape shape_;
  mutable std::mutex mu_;
  Tensor value_;
};

}  // namespace kiln::autodiff

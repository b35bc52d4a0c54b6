// Tensor: an immutable value (shape, dtype, shared storage), like TF's EagerTensor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // A fresh, uninitialised tensor. Only the op that creates it writes into it. Throws
  // ResourceExhausted when its byte size exceeds kMaxBytes or memory runs out.
  static Tensor empty(DType dtype, const Shape &shape);
  // A tensor over existing storage (shared, not copied).
  static Tensor from_storage(DType dtype, const Shape &shape, std::shared_ptr<Storage> storage);
  // A copy of `bytes` bytes of host data.
  static Tensor from_data(DType dtype, const Shape &shape, const void *data, size_t bytes);
  template <typename T>
  static Tensor scalar(T value) {
    Tensor t = empty(dtype_of<T>::value, Shape{});
    *t.mutable_data<T>() = value;
    return t;
  }

  bool defined() const { return impl_ != nullptr; }
  DType dtype() const;
  const Shape &shape() const;
  int rank() const { return shape().rank(); }
  int64_t num_elements() const { return shape().num_elements(); }
  // Cannot overflow: creation checks it against kMaxBytes.
  size_t byte_size() const { return static_cast<size_t>(num_elements()) * dtype_size(dtype()); }
  // Identity of this value, used by tapes to follow it through the ops.
  uint64_t id() const;

  const void *raw_data() const;
  template <typename T>
  const T *data() const { return static_cast<const T *>(raw_data()); }
  // Writable view for the op that has just created this tensor with empty().
  void *raw_mutable_data() const;
  template <typename T>
  T *mutable_data() const { return static_cast<T *>(raw_mutable_data()); }

  const std::shared_ptr<Storage> &storage() const;
  // Same storage and values, another shape with the same element count, new identity.
  Tensor reshaped(const Shape &shape) const;
  // True when nothing else references this value or its storage. Not enough to write over it: the
  // buffer may be a caller's or a variable's (overwritable() checks those too).
  bool unique() const;
  // unique(), and over a buffer kiln owns that no variable holds (not adopted, not Storage::held):
  // an op that consumes this handle may write its result over the data.
  bool overwritable() const;
  // Gives this value a new identity (after an in-place update by its only owner).
  void renew_id();

  // Keras's metadata on a value (TF's _keras_mask and _keras_logits): the mask a masking layer
  // computed for its output, and the logits a sigmoid or softmax activation made it from (which
  // crossentropy then reads in place of the clipped probabilities). with_* return a copy that
  // shares this tensor's storage and identity (a tape sees one value); an undefined argument
  // removes that entry. The getters give an undefined tensor when there is none.
  Tensor with_keras_mask(const Tensor &mask) const;
  Tensor with_keras_logits(const Tensor &logits) const;
  const Tensor &keras_mask() const;
  const Tensor &keras_logits() const;

  std::string description() const;  // "float32[2, 3]"
  // Element i converted to double (for tests and printing).
  double item_as_double(int64_t i = 0) const;

 private:
  struct Impl;
  struct KerasMetadata;
  Tensor with_metadata(const Tensor &mask, const Tensor &logits) const;
  std::shared_ptr<Impl> impl_;
};

// A new identity from the sequence tensor ids come from, so an object that takes one
// (a variable) never shares its id with any tensor.
uint64_t next_object_id();

// Throws InvalidArgument when t is undefined, naming op and argument.
void require_defined(const Tensor &t, const char *op, const char *arg);

}  // namespace kiln

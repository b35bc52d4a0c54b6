// The ABI boundary: what the opaque C handles hold, and the guard that turns
// every exception into a status.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/tape.h"
#include "autodiff/variable.h"
#include "core/config.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kiln/kiln.h"
#include "layers/layer.h"

namespace kiln::train {
class GradientAllreduce;
}

struct kiln_status {
  kiln_status_code code;
  std::string message;
};

struct kiln_tensor {
  kiln::Tensor value;
};

struct kiln_variable {
  std::shared_ptr<kiln::autodiff::Variable> variable;
};

struct kiln_tape {
  std::unique_ptr<kiln::autodiff::Tape> tape;
  // Set by kiln_tape_set_distributed: gradients come back summed over the ranks.
  std::shared_ptr<kiln::train::GradientAllreduce> allreduce;
};

struct kiln_config {
  kiln::Config value;
};

struct kiln_tensor_list {
  std::vector<kiln::Tensor> tensors;
};

struct kiln_layer {
  explicit kiln_layer(std::shared_ptr<kiln::layers::Layer> l) : layer(std::move(l)) {}
  explicit kiln_layer(std::weak_ptr<kiln::layers::Layer> w) : weak(std::move(w)) {}
  std::shared_ptr<kiln::layers::Layer> layer;  // empty in a weak handle
  std::weak_ptr<kiln::layers::Layer> weak;     // a weak handle's layer (kiln_layer_clone_weak)
};

namespace kiln::capi {

kiln_status *make_status(Code code, const std::string &message) noexcept;
// A status for an error thrown inside entry point fn. Running out of memory can happen in any
// op, deep below the code that names it, so those messages get fn in front.
kiln_status *status_from_error(Code code, const char *message, const char *fn) noexcept;

// A foreign function's status (a callback table's) as an exception of the same code, its message
// after `where: ` (unchanged when where is empty); frees the status. NULL: nothing. A code outside
// kiln_status_code's errors becomes INTERNAL.
void check_foreign(kiln_status *st, const std::string &where);

// The user_data of foreign functions kiln keeps (a LearningRateScheduler's schedule, a custom
// learning-rate schedule), shared by the copies of those functions and destroyed with the last.
// destroy is set only once the entry point has succeeded: on failure the caller keeps user_data.
struct ForeignUserData {
  explicit ForeignUserData(void *data) : user_data(data) {}
  ForeignUserData(const ForeignUserData &) = delete;
  ForeignUserData &operator=(const ForeignUserData &) = delete;
  ~ForeignUserData() {
    if (destroy) destroy(user_data);
  }
  void *const user_data;
  kiln_user_data_destroy_fn destroy = nullptr;
};

// Throws InvalidArgument when a required handle or pointer is NULL.
inline void require_not_null(const void *p, const char *fn, const char *arg) {
  if (p == nullptr) fail(Code::kInvalidArgument, fn, ": argument '", arg, "' is NULL");
}

// Element i of an array argument of pointers, which must not be NULL ("fn: values[3] is NULL").
template <typename T>
T *element_of(T *const *array, size_t i, const char *fn, const char *arg) {
  if (array[i] == nullptr) fail(Code::kInvalidArgument, fn, ": ", arg, "[", i, "] is NULL");
  return array[i];
}

// An array argument of `count` elements of `size` bytes each, checked before any pointer
// arithmetic on it: more than the address space can hold (e.g. SIZE_MAX) is ResourceExhausted
// naming the argument.
inline void require_array_fits(size_t count, size_t size, const char *fn, const char *arg) {
  if (count > static_cast<size_t>(PTRDIFF_MAX) / size)
    fail(Code::kResourceExhausted, fn, ": argument '", arg, "' has ", count, " elements of ", size,
         " bytes; more than memory can hold");
}

inline const Tensor &tensor_of(const kiln_tensor *t, const char *fn, const char *arg) {
  require_not_null(t, fn, arg);
  return t->value;
}

// The layer behind a handle; a weak handle whose layer is gone is FailedPrecondition. arg names
// the handle in errors ("layer", "model").
inline std::shared_ptr<layers::Layer> layer_of(const kiln_layer *l, const char *fn, const char *arg = "layer") {
  require_not_null(l, fn, arg);
  if (l->layer) return l->layer;
  std::shared_ptr<layers::Layer> p = l->weak.lock();
  if (!p) fail(Code::kFailedPrecondition, fn, ": ", arg, " is a weak handle whose layer no longer exists");
  return p;
}

// For the getters without a status: the layer, or null for NULL or a weak handle whose layer is
// gone.
inline std::shared_ptr<layers::Layer> peek_layer(const kiln_layer *l) {
  if (!l) return nullptr;
  return l->layer ? l->layer : l->weak.lock();
}

// A new handle for a tensor result (the caller owns it).
inline kiln_tensor *new_tensor(Tensor t) { return new kiln_tensor{std::move(t)}; }

DType dtype_from_c(int dtype, const char *fn);
// A shape from C dims; errors name the entry point.
Shape shape_from_c(const int64_t *dims, size_t rank, const char *fn);

// An object's config from C: NULL means an empty one (the class's defaults).
inline const Config &config_or_empty(const kiln_config *c) {
  static const Config empty;
  return c ? c->value : empty;
}

// The second half of a two-call variable getter: new handles for vars[0 .. min(capacity, n))
// in out, and the full count in *out_count. All handles or none: out is untouched on failure.
// The caller checks out and out_count against NULL (its own rule for capacity 0).
// Writes new handles H{items[i]} for the first min(capacity, size) items to out (all or none) and
// the number of items to *out_count.
template <typename H, typename P>
void write_handles(H **out, size_t capacity, size_t *out_count, const std::vector<P> &items) {
  const size_t n = std::min(capacity, items.size());
  std::vector<std::unique_ptr<H>> made;
  made.reserve(n);
  for (size_t i = 0; i < n; ++i) made.push_back(std::make_unique<H>(H{items[i]}));
  for (size_t i = 0; i < n; ++i) out[i] = made[i].release();
  *out_count = items.size();
}

inline void write_variables(kiln_variable **out, size_t capacity, size_t *out_count,
                            const std::vector<std::shared_ptr<autodiff::Variable>> &vars) {
  write_handles(out, capacity, out_count, vars);
}

}  // namespace kiln::capi

// Every entry point body sits between these: nothing escapes as an exception.
// KILN_CAPI_END_AS(fn) is for helpers that hold an entry point's body and know its name.
#define KILN_CAPI_BEGIN try {
#define KILN_CAPI_END KILN_CAPI_END_AS(__func__)
#define KILN_CAPI_END_AS(fn)                                                                       \
  }                                                                                                \
  catch (const ::kiln::Error &e) {                                                                 \
    return ::kiln::capi::status_from_error(e.code(), e.what(), fn);                                \
  }                                                                                                \
  catch (const std::bad_alloc &) {                                                                 \
    return ::kiln::capi::status_from_error(::kiln::Code::kResourceExhausted, "out of memory", fn); \
  }                                                                                                \
  catch (const std::length_error &) { /* a count past what a vector can hold, e.g. SIZE_MAX */     \
    return ::kiln::capi::status_from_error(::kiln::Code::kResourceExhausted,                       \
                                           "a count or size too large to allocate", fn);           \
  }                                                                                                \
  catch (const std::exception &e) {                                                                \
    return ::kiln::capi::status_from_error(::kiln::Code::kInternal, e.what(), fn);                 \
  }                                                                                                \
  catch (...) {                                                                                    \
    return ::kiln::capi::make_status(::kiln::Code::kInternal, "unknown internal error");           \
  }                                                                                                \
  return nullptr;

namespace kiln::capi {

// Entry point body for the ops that make a tensor of a C shape: *out = make(shape).
template <typename F>
kiln_status *shaped(kiln_tensor **out, const int64_t *dims, size_t rank, const char *fn, F &&make) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  *out = new_tensor(make(shape_from_c(dims, rank, fn)));
  KILN_CAPI_END_AS(fn)
}

}  // namespace kiln::capi

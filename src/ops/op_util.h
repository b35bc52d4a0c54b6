// Argument checks shared by the ops. Every message names the op, what it got and what it expected.
#pragma once

#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"

namespace kiln::ops {

// The dtypes of arithmetic (TF's real number types kiln has): floating, int32 and int64.
inline constexpr std::initializer_list<DType> kArithmetic = {DType::kFloat32, DType::kBFloat16,
                                                             DType::kFloat64, DType::kInt32, DType::kInt64};

inline void require_dtype(const Tensor &t, const char *op, const char *arg,
                          std::initializer_list<DType> allowed) {
  require_defined(t, op, arg);
  for (DType d : allowed)
    if (t.dtype() == d) return;
  std::string names;
  for (DType d : allowed) names += std::string(names.empty() ? "" : " or ") + dtype_name(d);
  fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected ", names);
}

inline void require_float32(const Tensor &t, const char *op, const char *arg) {
  require_dtype(t, op, arg, {DType::kFloat32});
}

// The floating dtypes: what carries gradients and what float math accepts.
inline void require_floating(const Tensor &t, const char *op, const char *arg) {
  require_dtype(t, op, arg, {DType::kFloat32, DType::kBFloat16, DType::kFloat64});
}

inline void require_same_dtype(const Tensor &a, const Tensor &b, const char *op) {
  require_defined(a, op, "a");
  require_defined(b, op, "b");
  if (a.dtype() != b.dtype())
    fail(Code::kInvalidArgument, op, ": operands have different dtypes, ", a.description(), " and ",
         b.description(), "; expected the same dtype");
}

inline void require_rank(const Tensor &t, int rank, const char *op, const char *arg) {
  require_defined(t, op, arg);
  if (t.rank() != rank)
    fail(Code::kInvalidArgument, op, ": argument '", arg, "' is ", t.description(), "; expected rank ", rank);
}

}  // namespace kiln::ops

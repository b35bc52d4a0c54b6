// The kernel calling convention, which every kernel in src/kernels follows:
//   kernel(knobs..., [DType dtype,] const T *in / const void *in, sizes or Shapes..., T *out / void *out...)
// Inputs are raw pointers with their dtype (when the kernel serves several) and their sizes
// (element counts, [outer, n, inner] views, or Shapes); outputs are preallocated raw pointers,
// last. Kernels never see Tensor, the tape or Variables: ops validate, allocate, call the kernel
// and record the gradient. Inside OpenMP regions a kernel neither allocates nor throws.
#pragma once

#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"

namespace kiln::kernels {

// The type integer arithmetic runs in: unsigned for integers (so overflow wraps, as TF's kernels
// do, never undefined behaviour), else T itself.
template <typename T, bool = std::is_integral_v<T>>
struct Wrapping {
  using type = T;
};
template <typename T>
struct Wrapping<T, true> {
  using type = std::make_unsigned_t<T>;
};

// Calls f(T{}) for the T among Ts whose dtype is `dtype`; an InvalidArgument naming op otherwise.
template <typename... Ts, typename F>
void dispatch_among(DType dtype, const char *op, F &&f) {
  const bool done = ((dtype == dtype_of<Ts>::value ? (f(Ts{}), true) : false) || ...);
  if (!done) fail(Code::kInvalidArgument, op, ": unsupported dtype ", dtype_name(dtype));
}

}  // namespace kiln::kernels

// The kernel calling convention, which every kernel in src/kernels follows:
//   kernel(knobs..., [DType dtype,] const T *in / const void *in, sizes or Shapes..., T *out / void *out...)
// Inputs are raw pointers with their dtype (when the kernel serves several) and their sizes
// (element counts, [outer, n, inner] views, or Shapes); outputs are preallocated raw pointers,
// last. Kernels never see Tensor, the tape or Variables: ops validate, allocate, call the kernel
// and record the gradient. Inside OpenMP regions a kernel neither allocates nor throws.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

namespace kiln::kernels {

// Calls f(T{}) for the T among Ts whose dtype is `dtype`; an InvalidArgument naming op otherwise.
template <typename... Ts, typename F>
void dispatch_among(DType dtype, const char *op, F &&f) {
  const bool done = ((dtype == dtype_of<Ts>::value ? (f(Ts{}), true) : false) || ...);
  if (!done) fail(Code::kInvalidArgument, op, ": unsupported dtype ", dtype_name(dtype));
}

}  // namespace kiln::kernels

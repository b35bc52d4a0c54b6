// Helpers shared by the elementwise op files, and internal ops used by their gradient rules.
#pragma once

#include "core/tensor.h"

namespace kiln::ops::internal {

// g summed back to `shape` after broadcasting (no work when the shapes already match).
Tensor reduce_to(const Tensor &g, const Shape &shape);

// A buffer for a gradient computed elementwise from g (same dtype and shape): g's own when
// g.overwritable() (the only handle on a buffer kiln owns and no variable holds: a tape hands each
// rule an output's complete gradient and drops it), else a new one. For kernels that read
// element i before writing it, which may then write over g: no new buffer, no read for ownership.
Tensor overwritable_or_empty(const Tensor &g);

// A scalar of like's dtype: the constants of gradient rules, which keep the operand's dtype.
Tensor scalar_like(double value, const Tensor &like);

// dy * f'(x) for f in {relu / leaky_relu (alpha), gelu (erf form), gelu (tanh form)}, in one
// fused pass. Differentiable again: its own gradient is written in ops.
Tensor relu_grad(const Tensor &x, const Tensor &dy, float alpha);
Tensor gelu_grad(const Tensor &x, const Tensor &dy, bool approximate);
// gelu_grad(x, dy, false) with the erfc(-x/sqrt2) that kernels::gelu_erf_saving_erfc wrote
// beside gelu(x) (float32 x and dy): the same bits without evaluating erfc again. Where a tape
// records the call, or the operands are not float32 pairs, it is gelu_grad itself. Writes over
// dy when overwritable_or_empty allows.
Tensor gelu_grad_from_erfc(const Tensor &x, const Tensor &erfc, const Tensor &dy);

}  // namespace kiln::ops::internal

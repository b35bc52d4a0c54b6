// Placeholder bodies, replaced family by family.
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

Tensor add(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("add"); }
Tensor sub(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("sub"); }
Tensor mul(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("mul"); }
Tensor div(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("div"); }
Tensor maximum(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("maximum"); }
Tensor minimum(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("minimum"); }
Tensor pow(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("pow"); }
Tensor neg(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("neg"); }
Tensor abs(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("abs"); }
Tensor exp(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("exp"); }
Tensor log(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("log"); }
Tensor sqrt(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("sqrt"); }
Tensor rsqrt(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("rsqrt"); }
Tensor square(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("square"); }
Tensor tanh(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("tanh"); }
Tensor sigmoid(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("sigmoid"); }
Tensor relu(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("relu"); }
Tensor gelu(const Tensor &/*x*/, bool /*approximate*/) { KILN_OP_UNIMPLEMENTED("gelu"); }
Tensor softplus(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("softplus"); }
Tensor elu(const Tensor &/*x*/, float /*alpha*/) { KILN_OP_UNIMPLEMENTED("elu"); }
Tensor leaky_relu(const Tensor &/*x*/, float /*alpha*/) { KILN_OP_UNIMPLEMENTED("leaky_relu"); }
Tensor swish(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("swish"); }
Tensor equal(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("equal"); }
Tensor not_equal(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("not_equal"); }
Tensor greater(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("greater"); }
Tensor greater_equal(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("greater_equal"); }
Tensor less(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("less"); }
Tensor less_equal(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("less_equal"); }
Tensor logical_and(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("logical_and"); }
Tensor logical_or(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("logical_or"); }
Tensor logical_xor(const Tensor &/*a*/, const Tensor &/*b*/) { KILN_OP_UNIMPLEMENTED("logical_xor"); }
Tensor logical_not(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("logical_not"); }
Tensor where(const Tensor &/*cond*/, const Tensor &/*x*/, const Tensor &/*y*/) { KILN_OP_UNIMPLEMENTED("where"); }
Tensor cast(const Tensor &/*x*/, DType /*dtype*/) { KILN_OP_UNIMPLEMENTED("cast"); }
Tensor clip_by_value(const Tensor &/*x*/, float /*clip_min*/, float /*clip_max*/) { KILN_OP_UNIMPLEMENTED("clip_by_value"); }

}  // namespace kiln::ops

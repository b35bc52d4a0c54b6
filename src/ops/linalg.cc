// Placeholder bodies, replaced family by family.
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

Tensor matmul(const Tensor &/*a*/, const Tensor &/*b*/, bool /*transpose_a*/, bool /*transpose_b*/) { KILN_OP_UNIMPLEMENTED("matmul"); }
Tensor sum(const Tensor &/*x*/, const std::vector<int64_t> &/*axes*/, bool /*keepdims*/) { KILN_OP_UNIMPLEMENTED("sum"); }
Tensor mean(const Tensor &/*x*/, const std::vector<int64_t> &/*axes*/, bool /*keepdims*/) { KILN_OP_UNIMPLEMENTED("mean"); }
Tensor max(const Tensor &/*x*/, const std::vector<int64_t> &/*axes*/, bool /*keepdims*/) { KILN_OP_UNIMPLEMENTED("max"); }
Tensor min(const Tensor &/*x*/, const std::vector<int64_t> &/*axes*/, bool /*keepdims*/) { KILN_OP_UNIMPLEMENTED("min"); }
Tensor argmax(const Tensor &/*x*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("argmax"); }
Tensor softmax(const Tensor &/*x*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("softmax"); }
Tensor log_softmax(const Tensor &/*x*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("log_softmax"); }
Tensor sum_to_shape(const Tensor &/*grad*/, const Shape &/*shape*/) { KILN_OP_UNIMPLEMENTED("sum_to_shape"); }

}  // namespace kiln::ops

// Placeholder bodies, replaced family by family.
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

Tensor reshape(const Tensor &/*x*/, const std::vector<int64_t> &/*shape*/) { KILN_OP_UNIMPLEMENTED("reshape"); }
Tensor transpose(const Tensor &/*x*/, const std::vector<int64_t> &/*perm*/) { KILN_OP_UNIMPLEMENTED("transpose"); }
Tensor concat(const std::vector<Tensor> &/*values*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("concat"); }
std::vector<Tensor> split(const Tensor &/*x*/, const std::vector<int64_t> &/*sizes*/, int64_t /*num_splits*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("split"); }
Tensor slice(const Tensor &/*x*/, const std::vector<int64_t> &/*begin*/, const std::vector<int64_t> &/*size*/) { KILN_OP_UNIMPLEMENTED("slice"); }
Tensor stack(const std::vector<Tensor> &/*values*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("stack"); }
Tensor expand_dims(const Tensor &/*x*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("expand_dims"); }
Tensor squeeze(const Tensor &/*x*/, const std::vector<int64_t> &/*axes*/) { KILN_OP_UNIMPLEMENTED("squeeze"); }
Tensor broadcast_to(const Tensor &/*x*/, const Shape &/*shape*/) { KILN_OP_UNIMPLEMENTED("broadcast_to"); }
Tensor tile(const Tensor &/*x*/, const std::vector<int64_t> &/*multiples*/) { KILN_OP_UNIMPLEMENTED("tile"); }
Tensor gather(const Tensor &/*params*/, const Tensor &/*indices*/, int64_t /*axis*/) { KILN_OP_UNIMPLEMENTED("gather"); }
Tensor one_hot(const Tensor &/*indices*/, int64_t /*depth*/, float /*on_value*/, float /*off_value*/) { KILN_OP_UNIMPLEMENTED("one_hot"); }
Tensor stop_gradient(const Tensor &/*x*/) { KILN_OP_UNIMPLEMENTED("stop_gradient"); }

}  // namespace kiln::ops

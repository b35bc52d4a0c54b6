// Placeholder bodies, replaced family by family.
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

Tensor layer_norm(const Tensor &/*x*/, const Tensor &/*gamma*/, const Tensor &/*beta*/, float /*epsilon*/) { KILN_OP_UNIMPLEMENTED("layer_norm"); }
BatchNormResult batch_norm(const Tensor &/*x*/, const Tensor &/*gamma*/, const Tensor &/*beta*/, const Tensor &/*mean*/, const Tensor &/*variance*/, bool /*training*/, float /*epsilon*/) { KILN_OP_UNIMPLEMENTED("batch_norm"); }
Tensor conv2d(const Tensor &/*x*/, const Tensor &/*filter*/, const std::vector<int64_t> &/*strides*/, const std::vector<int64_t> &/*dilations*/, Padding /*padding*/) { KILN_OP_UNIMPLEMENTED("conv2d"); }
Tensor max_pool2d(const Tensor &/*x*/, const std::vector<int64_t> &/*ksize*/, const std::vector<int64_t> &/*strides*/, Padding /*padding*/) { KILN_OP_UNIMPLEMENTED("max_pool2d"); }
Tensor avg_pool2d(const Tensor &/*x*/, const std::vector<int64_t> &/*ksize*/, const std::vector<int64_t> &/*strides*/, Padding /*padding*/) { KILN_OP_UNIMPLEMENTED("avg_pool2d"); }

}  // namespace kiln::ops

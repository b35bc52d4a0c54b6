// Placeholder bodies, replaced family by family.
#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

Tensor random_uniform(const Shape &/*shape*/, float /*minval*/, float /*maxval*/, int64_t /*seed*/) { KILN_OP_UNIMPLEMENTED("random_uniform"); }
Tensor random_normal(const Shape &/*shape*/, float /*mean*/, float /*stddev*/, int64_t /*seed*/) { KILN_OP_UNIMPLEMENTED("random_normal"); }
Tensor truncated_normal(const Shape &/*shape*/, float /*mean*/, float /*stddev*/, int64_t /*seed*/) { KILN_OP_UNIMPLEMENTED("truncated_normal"); }
Tensor dropout(const Tensor &/*x*/, float /*rate*/, bool /*training*/, int64_t /*seed*/) { KILN_OP_UNIMPLEMENTED("dropout"); }

}  // namespace kiln::ops

// Stand-ins for the symbols the checkpoint save and restore (train/checkpoint*.cc) need from
// outside src/core and src/io, so the object-graph target links those files alone instead of the
// whole library (kernels, layers, optimizers) built a second time with clang.
//  - The layer and optimizer calls of the restore: the fuzz model's objects are groups and
//    variables, never layers or optimizers (their Trackable::layer() / optimizer() are null), so
//    these are never reached; each fails loudly if it were.
//  - Trackable::child, whose real definition sits in checkpoint_trackables.cc with the layer and
//    optimizer views; the fuzz model's groups override it, this default serves the variables.
//  - ops::cast, which a restore calls only for a value saved in another floating dtype than a
//    `convert_float` attribute's (the fuzz model's float64 `_u_product`): a plain loop here.
#include "core/error.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/checkpoint_internal.h"

namespace kiln {

namespace layers {
bool Layer::built() const { __builtin_trap(); }
bool Layer::call_when_built(std::function<void()>) { __builtin_trap(); }
}  // namespace layers

namespace train {

std::vector<std::string> Optimizer::slot_names() const { __builtin_trap(); }
Config Optimizer::get_config() const { __builtin_trap(); }
std::vector<Optimizer::VariableSlots> Optimizer::slot_variables() const { __builtin_trap(); }
void Optimizer::defer_slot_restore_for_variable(uint64_t, const std::string &, const Tensor &,
                                                std::function<void()>) {
  __builtin_trap();
}
TrackablePtr make_trackable(const VariablePtr &) { __builtin_trap(); }
TrackablePtr make_trackable(const layers::LayerPtr &) { __builtin_trap(); }
TrackablePtr make_weights_root(const layers::LayerPtr &) { __builtin_trap(); }
bool is_weights_root(const Trackable &) { return false; }

TrackablePtr Trackable::child(const std::string &name) const {
  for (const Child &c : children())
    if (c.name == name) return c.object;
  return nullptr;
}

}  // namespace train

namespace ops {

namespace {
double load(const Tensor &t, int64_t i) {
  switch (t.dtype()) {
    case DType::kFloat32:
      return t.data<float>()[i];
    case DType::kFloat64:
      return t.data<double>()[i];
    case DType::kBFloat16:
      return static_cast<float>(t.data<bfloat16>()[i]);
    default:
      fail(Code::kUnimplemented, "fuzz cast stub: ", dtype_name(t.dtype()), " is not a floating dtype");
  }
}
}  // namespace

Tensor cast(const Tensor &x, DType dtype) {
  Tensor out = Tensor::empty(dtype, x.shape());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    const double v = load(x, i);
    switch (dtype) {
      case DType::kFloat32:
        out.mutable_data<float>()[i] = static_cast<float>(v);
        break;
      case DType::kFloat64:
        out.mutable_data<double>()[i] = v;
        break;
      case DType::kBFloat16:
        out.mutable_data<bfloat16>()[i] = bfloat16(static_cast<float>(v));
        break;
      default:
        fail(Code::kUnimplemented, "fuzz cast stub: to ", dtype_name(dtype));
    }
  }
  return out;
}

}  // namespace ops
}  // namespace kiln

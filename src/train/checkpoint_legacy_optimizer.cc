// TF's legacy optimizers in a saved object graph (checkpoint_internal.h): the edges Keras's
// optimizer_v2 (Keras < 2.11, tf.keras.optimizers.legacy) and tf.compat.v1.train's optimizers
// give their state, and their slot names, mapped onto kiln's optimizers, which save Keras
// >= 2.11's layout. The names come from Keras 2.13's keras/optimizers/legacy/*.py (add_slot,
// _set_hyper, the `iter` weight) and TF's training/*.py (_zeros_slot).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "train/checkpoint_internal.h"

namespace kiln::train {

namespace {

// A legacy hyperparameter variable whose saved value equals the live optimizer's setting: the
// restore takes it, and nothing changes.
class LegacyHyperparameter final : public Trackable {
 public:
  LegacyHyperparameter(OptimizerPtr opt, std::string name) : opt_(std::move(opt)), name_(std::move(name)) {}
  Id id() const override { return Id{opt_.get(), "legacy hyperparameter " + name_}; }
  std::string description() const override {
    return "hyperparameter '" + name_ + "' of optimizer '" + opt_->name() + "'";
  }
  std::vector<TrackableAttribute> attributes() const override {
    TrackableAttribute a;
    a.full_name = name_;
    a.dtype = DType::kFloat32;
    a.shape = Shape{};
    a.convert_float = true;  // optimizer_v2 keeps its hyperparameters in the variables' dtype
    a.read = [] { return Tensor::scalar<float>(0.f); };  // never saved: only restores make this
    a.write = [](const Tensor &) {};
    return {a};
  }

 private:
  OptimizerPtr opt_;
  std::string name_;
};

struct SlotRename {
  const char *cls, *legacy, *slot;
};

// (kiln class, legacy slot name) -> kiln slot name.
const SlotRename kSlotRenames[] = {
    {"SGD", "momentum", "momentum"},
    {"Adam", "m", "momentum"},
    {"Adam", "v", "velocity"},
    {"Adam", "vhat", "velocity_hat"},
    {"AdamW", "m", "momentum"},
    {"AdamW", "v", "velocity"},
    {"AdamW", "vhat", "velocity_hat"},
    {"Adamax", "m", "momentum"},
    {"Adamax", "v", "norm"},
    {"Nadam", "m", "momentum"},
    {"Nadam", "v", "velocity"},
    // Keras 2's RMSprop keeps the mean square in "rms" and the gradient mean (centered) in "mg".
    {"RMSprop", "rms", "velocity"},
    {"RMSprop", "momentum", "momentum"},
    {"RMSprop", "mg", "average_gradient"},
    {"Adagrad", "accumulator", "accumulator"},
    {"Ftrl", "accumulator", "accumulator"},
    {"Ftrl", "linear", "linear"},
    {"Adadelta", "accum_grad", "accumulated_grad"},
    {"Adadelta", "accum_var", "accumulated_delta_var"},
    // tf.compat.v1.train.AdadeltaOptimizer's names.
    {"Adadelta", "accum", "accumulated_grad"},
    {"Adadelta", "accum_update", "accumulated_delta_var"},
};

}  // namespace

TrackablePtr legacy_optimizer_child(const Trackable &optimizer_node, const std::string &name,
                                    const std::function<std::optional<double>()> &saved_scalar) {
  const OptimizerPtr opt = optimizer_node.optimizer();
  if (!opt) return nullptr;
  if (name == "iter") return optimizer_node.child("_iterations");
  if (name == "learning_rate") return optimizer_node.child("_learning_rate");
  if (name == "momentum_cache" && opt->class_name() == "Nadam") return optimizer_node.child("_u_product");

  // A hyperparameter: kiln's optimizers hold it as a setting (get_config), which a restore
  // cannot change; a saved value equal to it is taken, any other left unmatched so the status
  // names it.
  const Config config = opt->get_config();
  double live = 0;
  if (name == "decay" && !config.has(name)) {
    live = 0;  // Keras >= 2.11 dropped optimizer_v2's time-inverse decay: only 0 means the same
  } else if (name != "name" && config.has(name) && !config.is_null(name) &&
             (config.type(name) == Config::Type::kFloat || config.type(name) == Config::Type::kInt)) {
    live = config.get_float(name);
  } else {
    return nullptr;
  }
  const std::optional<double> saved = saved_scalar ? saved_scalar() : std::nullopt;
  if (!saved || static_cast<float>(*saved) != static_cast<float>(live)) return nullptr;
  return std::make_shared<LegacyHyperparameter>(opt, name);
}

std::string legacy_slot_name(const Optimizer &optimizer, const std::string &legacy_name) {
  const std::vector<std::string> names = optimizer.slot_names();
  auto has = [&](const std::string &s) { return std::find(names.begin(), names.end(), s) != names.end(); };
  const std::string &cls = optimizer.class_name();
  for (const SlotRename &r : kSlotRenames)
    if (cls == r.cls && legacy_name == r.legacy) return has(r.slot) ? r.slot : "";
  // A class kiln has no table for (a registered one) may use the legacy names itself.
  return has(legacy_name) ? legacy_name : "";
}

}  // namespace kiln::train

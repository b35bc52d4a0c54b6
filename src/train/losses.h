// Keras losses (Keras 3 losses/losses.py and losses/loss.py): objects with a name, a reduction and
// their own options, made by class name or Keras function alias through a registry, reduced with
// sample weights exactly as Keras's reduce_weighted_values does. Every value is composed of ops,
// so it is differentiable through the tape.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"

namespace kiln::train {

// Keras's reduction strings: "sum_over_batch_size" (default), "sum", "none".
// Keras 3's reductions: "mean" is "sum_over_batch_size" under its own name; "mean_with_sample_weight"
// divides the weighted sum by the sum of the sample weights (by the count without them).
enum class Reduction { kSumOverBatchSize = 0, kSum = 1, kNone = 2, kMean = 3, kMeanWithSampleWeight = 4 };
Reduction reduction_from_string(const std::string &s, const std::string &owner);
const char *reduction_name(Reduction r);

// Probabilities are clipped to [kEpsilon, 1 - kEpsilon] (Keras's backend.epsilon()).
constexpr float kEpsilon = 1e-7f;

class Loss {
 public:
  // Reads name, reduction and dtype from r; subclasses read theirs, then call r.finish().
  Loss(std::string class_name, ConfigReader &r, const std::string &default_name);
  virtual ~Loss() = default;
  Loss(const Loss &) = delete;
  Loss &operator=(const Loss &) = delete;

  const std::string &class_name() const { return class_name_; }
  const std::string &name() const { return name_; }
  uint64_t id() const { return id_; }
  Reduction reduction() const { return reduction_; }

  // Keras's __call__: per-sample losses (call), weighted by sample_weight (undefined: none) and
  // reduced. Thread-safe (a loss has no state).
  Tensor operator()(const Tensor &y_true, const Tensor &y_pred, const Tensor &sample_weight = Tensor()) const;
  // Keras's call: the unreduced losses ([B] for [B, C] inputs). *mask (may be null) gets the
  // entries that count (ignore_class), or stays undefined.
  virtual Tensor call(const Tensor &y_true, const Tensor &y_pred, Tensor *mask = nullptr) const = 0;
  // call after Keras's conversion of y_pred to the loss's dtype: integer, uint8 and bool
  // predictions become float32 (float ones keep theirs). What __call__ and the loss-based metrics
  // use.
  Tensor values(const Tensor &y_true, const Tensor &y_pred, Tensor *mask = nullptr) const;

  // name, reduction, then the class's own keys.
  Config get_config() const;

 protected:
  virtual void add_config(Config &) const {}

 private:
  std::string class_name_;
  std::string name_;
  Reduction reduction_;
  uint64_t id_;
};
using LossPtr = std::shared_ptr<Loss>;

// Keras's reduce_weighted_values: values * sample_weight (ranks matched as
// squeeze_or_expand_to_same_rank does; a lower-rank weight broadcasts over trailing dims), the mask
// folded in as apply_mask does, then "sum" sums and "sum_over_batch_size" divides the sum by the
// number of elements of values (not by the weights' sum), 0 when there are none.
Tensor reduce_weighted_values(const Tensor &values, const Tensor &sample_weight, const Tensor &mask,
                              Reduction reduction, const std::string &owner);
// The mask a loss or a loss-based metric applies, as Keras's Loss.__call__ combines them: y_pred's
// carried mask (a masking layer's output) and the one the loss made (ignore_class), both applying
// (logical and); either alone as it is; undefined when neither is.
Tensor combined_mask(const Tensor &y_pred, const Tensor &loss_mask);
// Keras's squeeze_or_expand_to_same_rank (expand_rank_1 = true).
void squeeze_or_expand_to_same_rank(Tensor &a, Tensor &b);

// A loss by class name ("SparseCategoricalCrossentropy") or Keras function alias
// ("sparse_categorical_crossentropy", "mse", "kld", ...). Unknown names: NotFound listing the
// known ones; unknown config keys: InvalidArgument naming the key.
LossPtr create_loss(const std::string &name, const Config &config = Config());
// A loss computed by a function of the caller's: Keras's LossFunctionWrapper(fn), which compile
// makes of a plain function, or a Loss subclass with its own call. call squeezes or expands y_true
// and y_pred to the same rank (LossFunctionWrapper.call), then gives fn's values (floating point),
// which are weighed and reduced as any loss's. class_name: "LossFunctionWrapper" (its config then
// holds "fn": fn_name) or the subclass's name; config: "name" (default fn_name), "reduction",
// nothing else. No function travels in a config: deserialize refuses such a loss (NotFound).
using LossFn = std::function<Tensor(const Tensor &y_true, const Tensor &y_pred)>;
inline constexpr const char kLossFunctionWrapper[] = "LossFunctionWrapper";
LossPtr make_function_loss(const std::string &class_name, const std::string &fn_name, LossFn fn,
                           const Config &config = Config());

// {"class_name": ..., "config": {...}} both ways (Keras serialize / deserialize). A
// LossFunctionWrapper is made by the custom loss registered under its "fn", any other class not
// built in by the one registered under its class name.
Config serialize_loss(const Loss &loss);
LossPtr deserialize_loss(const Config &serialized);
// Class names, then aliases, then the custom losses registered.
std::vector<std::string> registered_losses();
// The built-in class a name or alias stands for ("mse" -> "MeanSquaredError"); empty when unknown.
std::string loss_class_for(const std::string &name);

// Custom losses by name, as Keras's registered custom objects (custom_objects,
// register_keras_serializable): a Loss subclass of the caller's by its class name, or a function
// by its name (a LossFunctionWrapper's "fn"). create_loss and deserialize_loss (so compile's loss
// names, the compile config of a SavedModel and MeanMetricWrapper's "fn") make them with the
// factory, from the saved config or the caller's. The factory is called without any lock held.
using LossFactory = std::function<LossPtr(const Config &config)>;
// Replaces an earlier registration of name; a built-in class or alias is InvalidArgument.
void register_loss(const std::string &name, LossFactory factory);
// NotFound when name is not registered; InvalidArgument for a built-in name.
void unregister_loss(const std::string &name);
// Whether name is a built-in loss class or alias, or a registered custom loss.
bool loss_registered(const std::string &name);

}  // namespace kiln::train

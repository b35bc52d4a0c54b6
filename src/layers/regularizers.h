// Weight regularizers as keras.regularizers: L1, L2, L1L2 ("l1", "l2", "l1_l2" by name).
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "core/tensor.h"

namespace kiln::layers {

class Regularizer {
 public:
  Regularizer(double l1, double l2) : l1_(l1), l2_(l2) {}
  // l1 * sum(|w|) + l2 * sum(w^2), a float32 scalar (recorded on tapes).
  Tensor operator()(const Tensor &w) const;
  std::string class_name() const;
  Config get_config() const;
  double l1() const { return l1_; }
  double l2() const { return l2_; }

 private:
  double l1_, l2_;
};
using RegularizerPtr = std::shared_ptr<const Regularizer>;

// "l1" / "l2" / "l1_l2" with Keras's default factor 0.01, or a serialized
// {"class_name": "L2", "config": {"l2": 0.001}}; null gives nullptr.
RegularizerPtr regularizer_from_value(const Config &config, const std::string &key);
Config serialize_regularizer(const Regularizer &r);

}  // namespace kiln::layers

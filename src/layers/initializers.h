// Weight initializers, by name and as objects, as keras.initializers: glorot_uniform (Keras's
// default kernel initializer), glorot_normal, he_normal, he_uniform, lecun_normal, lecun_uniform,
// zeros, ones, constant, random_normal, random_uniform, truncated_normal, orthogonal.
//
// Seeds as Keras 3: an initializer with a seed gives the same values on every call (a stateless
// stream keyed by the seed); without one, each call draws the next values of the global
// sequence, so runs repeat after set_seed.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tensor.h"

namespace kiln::layers {

class Initializer {
 public:
  virtual ~Initializer() = default;
  // Values of `shape` in `dtype` (a floating dtype; others are INVALID_ARGUMENT).
  virtual Tensor operator()(const Shape &shape, DType dtype) const = 0;
  // Keras's class name ("GlorotUniform") and config ({"seed": null}).
  virtual std::string class_name() const = 0;
  virtual Config get_config() const = 0;
};
using InitializerPtr = std::shared_ptr<const Initializer>;

// By Keras name or alias ("glorot_uniform", "GlorotUniform", "zeros", "Zeros", ...) with
// default arguments; NOT_FOUND naming the known names otherwise.
InitializerPtr get_initializer(const std::string &name);
// From Keras's serialized form {"class_name": "RandomNormal", "config": {"stddev": 0.1}}.
InitializerPtr deserialize_initializer(const Config &serialized);
Config serialize_initializer(const Initializer &init);
// Keras 3.15's EinsumDense kernels: a VarianceScaling-family initializer (GlorotUniform, HeNormal,
// ...) without input_axes and output_axes, remade with these (fan_in = the product of the sizes
// along input_axes, fan_out along output_axes; same seed); any other initializer as it is.
InitializerPtr with_fan_axes(const InitializerPtr &init, const std::vector<int64_t> &input_axes,
                             const std::vector<int64_t> &output_axes);
// What a layer config's initializer key holds: a name or a serialized initializer.
InitializerPtr initializer_from_value(const Config &config, const std::string &key);

}  // namespace kiln::layers

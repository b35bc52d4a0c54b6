// Activations by Keras name (keras.activations): linear, relu, relu6, sigmoid, tanh, softmax,
// log_softmax, gelu, elu, selu, softplus, softsign, swish/silu, leaky_relu, exponential,
// hard_sigmoid, mish, celu, glu, hard_shrink, hard_silu/hard_swish, hard_tanh, log_sigmoid,
// soft_shrink, sparse_plus, sparse_sigmoid, squareplus, tanh_shrink (each at Keras's defaults).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace kiln::layers {

struct Activation {
  std::string name;  // the Keras name, what get_config writes ("linear" for none)
  std::function<Tensor(const Tensor &)> fn;  // empty for linear
  Tensor operator()(const Tensor &x) const { return fn ? fn(x) : x; }
};

// NOT_FOUND naming the known names for an unknown one. "" and "linear" give the identity.
Activation get_activation(const std::string &name);
std::vector<std::string> activation_names();

// The activation a fused op (ops::dense, ops::conv2d_bias_act) applies itself for a Keras name,
// with the parameter activations.cc uses (leaky_relu's slope, elu's scale); kLinear for the
// others and for linear, which then run as their own op (sigmoid and softmax among them: their
// outputs carry the logits, which a fused op would not make).
std::pair<ops::DenseActivation, float> fused_activation(const std::string &name);

}  // namespace kiln::layers

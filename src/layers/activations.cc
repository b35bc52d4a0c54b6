#include "layers/activations.h"

#include <map>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

using Fn = std::function<Tensor(const Tensor &)>;

Tensor scalar_like(const Tensor &x, double v) { return ops::fill(Shape({}), v, x.dtype()); }

// Keras 3's hard_sigmoid: relu6(x + 3) / 6.
Tensor hard_sigmoid(const Tensor &x) {
  return ops::div(ops::relu6(ops::add(x, scalar_like(x, 3))), scalar_like(x, 6));
}

// x where |x| > threshold, else 0 (NaN gives 0, as Keras's where).
Tensor hard_shrink(const Tensor &x, double threshold) {
  return ops::where(ops::greater(ops::abs(x), scalar_like(x, threshold)), x, ops::zeros_like(x));
}

// x - threshold above threshold, x + threshold below -threshold, else 0.
Tensor soft_shrink(const Tensor &x, double threshold) {
  const Tensor t = scalar_like(x, threshold);
  return ops::where(ops::greater(x, t), ops::sub(x, t),
                    ops::where(ops::less(x, ops::neg(t)), ops::add(x, t), ops::zeros_like(x)));
}

// The first half of the last axis times the sigmoid of the second.
Tensor glu(const Tensor &x) {
  const int64_t n = x.rank() == 0 ? 0 : x.shape()[x.rank() - 1];
  if (x.rank() == 0 || n % 2 != 0)
    fail(Code::kInvalidArgument, "glu: the last axis of ", x.description(),
         " must have an even size (it splits into two halves)");
  const std::vector<Tensor> halves = ops::split(x, {}, 2, -1);
  return ops::mul(halves[0], ops::sigmoid(halves[1]));
}

const std::map<std::string, Fn> &table() {
  static const std::map<std::string, Fn> t = {
      {"linear", nullptr},
      {"relu", [](const Tensor &x) { return ops::relu(x); }},
      {"relu6", [](const Tensor &x) { return ops::relu6(x); }},
      // As keras.activations.sigmoid / softmax, the output carries its logits (_keras_logits):
      // crossentropy reads them in place of the clipped probabilities.
      {"sigmoid", [](const Tensor &x) { return ops::sigmoid(x).with_keras_logits(x); }},
      {"tanh", [](const Tensor &x) { return ops::tanh(x); }},
      {"softmax", [](const Tensor &x) { return ops::softmax(x, -1).with_keras_logits(x); }},
      {"log_softmax", [](const Tensor &x) { return ops::log_softmax(x, -1); }},
      // keras.activations.gelu's default is the exact (erf) form.
      {"gelu", [](const Tensor &x) { return ops::gelu(x, false); }},
      {"elu", [](const Tensor &x) { return ops::elu(x, 1.0f); }},
      {"selu", [](const Tensor &x) { return ops::selu(x); }},
      {"softplus", [](const Tensor &x) { return ops::softplus(x); }},
      {"softsign", [](const Tensor &x) { return ops::div(x, ops::add(ops::abs(x), scalar_like(x, 1))); }},
      {"swish", [](const Tensor &x) { return ops::swish(x); }},
      {"silu", [](const Tensor &x) { return ops::swish(x); }},
      // keras.activations.leaky_relu's default negative slope (Keras 3) is 0.2.
      {"leaky_relu", [](const Tensor &x) { return ops::leaky_relu(x, 0.2f); }},
      {"exponential", [](const Tensor &x) { return ops::exp(x); }},
      // Keras 3's hard_sigmoid: relu6(x + 3) / 6.
      {"hard_sigmoid", hard_sigmoid},
      {"mish", [](const Tensor &x) { return ops::mul(x, ops::tanh(ops::softplus(x))); }},
      // Keras 3's newer activations, at their defaults, in the ops of its TensorFlow backend (so
      // gradients at the kinks are TF's: celu's maximum / minimum both pass 1 at 0).
      {"celu",
       [](const Tensor &x) {
         const Tensor zero = scalar_like(x, 0);
         return ops::add(ops::maximum(x, zero), ops::expm1(ops::minimum(x, zero)));
       }},
      {"glu", [](const Tensor &x) { return glu(x); }},
      {"hard_shrink", [](const Tensor &x) { return hard_shrink(x, 0.5); }},
      {"hard_silu", [](const Tensor &x) { return ops::mul(x, hard_sigmoid(x)); }},
      {"hard_swish", [](const Tensor &x) { return ops::mul(x, hard_sigmoid(x)); }},
      {"hard_tanh",
       [](const Tensor &x) { return ops::clip_by_value(x, scalar_like(x, -1), scalar_like(x, 1)); }},
      {"log_sigmoid", [](const Tensor &x) { return ops::neg(ops::softplus(ops::neg(x))); }},
      {"soft_shrink", [](const Tensor &x) { return soft_shrink(x, 0.5); }},
      // 0 up to -1, (x + 1)^2 / 4 up to 1, then x.
      {"sparse_plus",
       [](const Tensor &x) {
         const Tensor quarter = ops::mul(scalar_like(x, 0.25), ops::square(ops::add(x, scalar_like(x, 1))));
         return ops::where(ops::less_equal(x, scalar_like(x, -1)), ops::zeros_like(x),
                           ops::where(ops::less(x, scalar_like(x, 1)), quarter, x));
       }},
      // 0 up to -1, (x + 1) / 2 up to 1, then 1.
      {"sparse_sigmoid",
       [](const Tensor &x) {
         const Tensor half = ops::mul(scalar_like(x, 0.5), ops::add(x, scalar_like(x, 1)));
         return ops::where(ops::less_equal(x, scalar_like(x, -1)), ops::zeros_like(x),
                           ops::where(ops::greater_equal(x, scalar_like(x, 1)), ops::ones_like(x), half));
       }},
      // (x + sqrt(x^2 + b)) / 2, b 4.
      {"squareplus",
       [](const Tensor &x) {
         const Tensor root = ops::sqrt(ops::add(ops::square(x), scalar_like(x, 4)));
         return ops::div(ops::add(x, root), scalar_like(x, 2));
       }},
      {"tanh_shrink", [](const Tensor &x) { return ops::sub(x, ops::tanh(x)); }},
  };
  return t;
}

}  // namespace

std::vector<std::string> activation_names() {
  std::vector<std::string> n;
  for (const auto &[k, v] : table()) n.push_back(k);
  return n;
}

Activation get_activation(const std::string &name) {
  const std::string key = name.empty() ? "linear" : name;
  auto it = table().find(key);
  if (it == table().end()) {
    std::string known;
    for (const std::string &n : activation_names()) known += (known.empty() ? "" : ", ") + n;
    fail(Code::kNotFound, "unknown activation '", name, "'; known: ", known);
  }
  return Activation{key, it->second};
}

std::pair<ops::DenseActivation, float> fused_activation(const std::string &name) {
  using A = ops::DenseActivation;
  static const std::map<std::string, std::pair<A, float>> table = {
      {"relu", {A::kRelu, 0.0f}},         {"relu6", {A::kRelu6, 0.0f}},
      {"tanh", {A::kTanh, 0.0f}},         {"gelu", {A::kGelu, 0.0f}},
      {"elu", {A::kElu, 1.0f}},           {"selu", {A::kSelu, 0.0f}},
      {"softplus", {A::kSoftplus, 0.0f}}, {"swish", {A::kSwish, 0.0f}},
      {"silu", {A::kSwish, 0.0f}},        {"leaky_relu", {A::kLeakyRelu, 0.2f}},
      {"exponential", {A::kExp, 0.0f}},
  };
  const auto it = table.find(name);
  return it == table.end() ? std::pair<A, float>{A::kLinear, 0.0f} : it->second;
}

}  // namespace kiln::layers

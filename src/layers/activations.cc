#include "layers/activations.h"

#include <map>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

using Fn = std::function<Tensor(const Tensor &)>;

Tensor scalar_like(const Tensor &x, double v) { return ops::fill(Shape({}), v, x.dtype()); }

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
      {"hard_sigmoid",
       [](const Tensor &x) {
         return ops::div(ops::relu6(ops::add(x, scalar_like(x, 3))), scalar_like(x, 6));
       }},
      {"mish", [](const Tensor &x) { return ops::mul(x, ops::tanh(ops::softplus(x))); }},
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

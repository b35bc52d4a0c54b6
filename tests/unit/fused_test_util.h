// Shared by the fused-op tests (ops::dense, ops::conv2d_bias_act): an activation case, the
// activation as its own op (what a fused op must equal) and a bit-for-bit comparison.
#pragma once

#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "core/threads.h"
#include "ops/ops.h"
#include "special_values_util.h"
#include "test_util.h"

namespace kiln::testing {

using A = ops::DenseActivation;

struct Act {
  const char *name;
  A act;
  float alpha;
};

inline Tensor activate(const Tensor &z, const Act &a) {
  switch (a.act) {
    case A::kLinear:
      return z;
    case A::kRelu:
      return ops::relu(z);
    case A::kRelu6:
      return ops::relu6(z);
    case A::kLeakyRelu:
      return ops::leaky_relu(z, a.alpha);
    case A::kSigmoid:
      return ops::sigmoid(z);
    case A::kTanh:
      return ops::tanh(z);
    case A::kGelu:
      return ops::gelu(z, false);
    case A::kGeluTanh:
      return ops::gelu(z, true);
    case A::kElu:
      return ops::elu(z, a.alpha);
    case A::kSelu:
      return ops::selu(z);
    case A::kSoftplus:
      return ops::softplus(z);
    case A::kSwish:
      return ops::swish(z);
    case A::kExp:
      return ops::exp(z);
  }
  return z;
}

// Bit for bit, NaN payloads aside (not part of the contract).
inline ::testing::AssertionResult same_values(const Tensor &got, const Tensor &want) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return ::testing::AssertionFailure() << got.description() << " vs " << want.description();
  if (got.dtype() != DType::kFloat32)
    return std::memcmp(got.raw_data(), want.raw_data(),
                       static_cast<size_t>(got.num_elements()) * dtype_size(got.dtype())) == 0
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << "bits differ";
  const float *g = got.data<float>(), *w = want.data<float>();
  for (int64_t i = 0; i < got.num_elements(); ++i)
    if (!same(g[i], w[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << g[i] << " vs " << w[i];
  return ::testing::AssertionSuccess();
}

// f() computed with `threads` threads on the calling thread (then back to the default).
template <typename F>
auto with_threads(int threads, const F &f) {
  set_num_threads_for_this_thread(threads);
  auto r = f();
  set_num_threads_for_this_thread(0);
  return r;
}

// x and the bias salted with NaN, +-inf, +-0 and denormals.
inline Tensor salted(const Shape &s, unsigned seed) {
  const float denorm = std::numeric_limits<float>::denorm_min();
  const float specials[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, denorm, -denorm, 3e38f};
  std::vector<float> v = values(random_tensor(s, seed));
  for (size_t i = seed % 5; i < v.size(); i += 11)
    v[i] = specials[(i / 11) % (sizeof specials / sizeof(float))];
  return make(s, v);
}

// A convolution's operands: input, filter and bias (undefined: none).
struct ConvOperands {
  Tensor x, f, b;
};
using ConvFn = std::function<Tensor(const Tensor &, const Tensor &, const Tensor &)>;

// The gradients of sum(y * r) (r random) with respect to x (unless with_x is false: the input
// not watched, as a network's first layer), the filter and the bias (when defined).
inline std::vector<Tensor> conv_grads(const ConvFn &fn, const ConvOperands &o, bool with_x = true) {
  autodiff::Tape tape(false, false);
  std::vector<Tensor> sources{o.x, o.f};
  if (!with_x) sources.erase(sources.begin());
  if (o.b.defined()) sources.push_back(o.b);
  for (const Tensor &t : sources) tape.watch(t);
  const Tensor y = fn(o.x, o.f, o.b);
  tape.stop_recording();
  return tape.gradient(y, sources, autodiff::Unconnected::kZero, random_tensor(y.shape(), 77u));
}

// Second order: an outer tape's gradients (x, filter, bias) of the inner gradient of fn with
// respect to operand wrt.
inline std::vector<Tensor> conv_second_order(const ConvFn &fn, const ConvOperands &o, size_t wrt) {
  autodiff::Tape outer(false, false);
  for (const Tensor &t : {o.x, o.f, o.b}) outer.watch(t);
  const Tensor g = inner_gradient([&](const std::vector<Tensor> &in) { return fn(in[0], in[1], in[2]); },
                                  wrt)({o.x, o.f, o.b});
  outer.stop_recording();
  return outer.gradient(g, {o.x, o.f, o.b}, autodiff::Unconnected::kZero, random_tensor(g.shape(), 5u));
}

}  // namespace kiln::testing

// The stress case table, one function per op family (see stress_cases.h). Each case returns the
// op's results and, through a tape, the gradients of sum(y * dy) for its float inputs.
#include "stress_cases.h"

#include <cstdint>
#include <utility>

#include "autodiff/tape.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln::stress {
namespace {

using autodiff::Tape;
using autodiff::Unconnected;
using testing::make_typed;
using testing::random_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
using Results = std::vector<Tensor>;

// Seeds for the inputs: each call a new one, so no two inputs are alike.
unsigned next_seed() {
  static unsigned s = 1000;
  return ++s;
}

Tensor rnd(const Shape &shape, float lo = -1.0f, float hi = 1.0f) {
  return random_tensor(shape, next_seed(), lo, hi);
}

// Integers in [0, bound): a fixed scramble, so indices repeat and land everywhere.
template <typename T = int32_t>
Tensor indices(const Shape &shape, int64_t bound) {
  std::vector<T> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>((static_cast<int64_t>(i) * 7919 + 13) % bound);
  return make_typed<T>(shape, v);
}

void append(Results &r, Results more) { r.insert(r.end(), more.begin(), more.end()); }

// f's result and the gradients of sum(f(inputs) * dy) with respect to `inputs` (dy fixed, of f's
// output shape, drawn once here).
Results fwd_grad(const std::vector<Tensor> &inputs, const Fn &f, const Tensor &dy) {
  Tape tape(false, false);
  for (const Tensor &t : inputs) tape.watch(t);
  const Tensor y = f(inputs);
  Results out = tape.gradient(y, inputs, Unconnected::kZero, dy);
  out.insert(out.begin(), y);
  return out;
}

// A case for each (name, f) over the same inputs, forward and gradient; one case per family keeps the
// table short while every op is run.
struct Op {
  const char *name;
  Fn f;
};
Case grad_family(const std::string &family, const std::vector<Tensor> &inputs, const std::vector<Op> &list) {
  std::vector<Tensor> dys;
  for (const Op &op : list) dys.push_back(rnd(op.f(inputs).shape()));
  return {family, [=] {
            Results r;
            for (size_t i = 0; i < list.size(); ++i) append(r, fwd_grad(inputs, list[i].f, dys[i]));
            return r;
          }};
}

Fn unary(Tensor (*op)(const Tensor &)) {
  return [op](const std::vector<Tensor> &v) { return op(v[0]); };
}
Fn binary(Tensor (*op)(const Tensor &, const Tensor &)) {
  return [op](const std::vector<Tensor> &v) { return op(v[0], v[1]); };
}

// 33280 elements: above every loop threshold (32768).
const Shape kWide{64, 520};

void matmul_family(std::vector<Case> &c) {
  const Tensor a = rnd({96, 160}), b = rnd({160, 128}), at = rnd({160, 96}), bt = rnd({128, 160});
  c.push_back({"matmul", [=] {
                 return Results{ops::matmul(a, b), ops::matmul(at, b, true, false),
                                ops::matmul(a, bt, false, true), ops::matmul(at, bt, true, true)};
               }});
  c.push_back(grad_family("matmul_3d_batched_grad", {rnd({4, 48, 96}), rnd({96, 80}), rnd({4, 96, 80})},
                          {{"3d_2d", [](const auto &v) { return ops::matmul(v[0], v[1]); }},
                           {"batched", [](const auto &v) { return ops::matmul(v[0], v[2]); }}}));
  const Tensor e1 = rnd({4, 24, 2, 16}), e2 = rnd({4, 24, 2, 16});
  c.push_back(
      grad_family("einsum_grad", {e1, e2},
                  {{"bqhd,bkhd->bhqk", [](const auto &v) { return ops::einsum("bqhd,bkhd->bhqk", v); }},
                   {"ij->ji", [](const auto &v) { return ops::einsum("bqhd->bhdq", {v[0]}); }}}));
}

void elementwise_family(std::vector<Case> &c) {
  const Tensor x = rnd(kWide), y = rnd(kWide, 0.5f, 2.0f), row = rnd({520});
  c.push_back(grad_family(
      "binary_grad", {x, y, row},
      {{"add", binary(ops::add)},
       {"sub", binary(ops::sub)},
       {"mul", binary(ops::mul)},
       {"div", binary(ops::div)},
       {"maximum", binary(ops::maximum)},
       {"minimum", binary(ops::minimum)},
       {"pow", [](const auto &v) { return ops::pow(v[1], v[0]); }},
       {"broadcast_mul", [](const auto &v) { return ops::mul(v[0], v[2]); }},
       {"floormod", [](const auto &v) { return ops::floormod(v[0], v[1]); }},
       {"clip", [](const auto &v) { return ops::clip_by_value(v[0], -0.5f, 0.5f); }},
       {"where", [](const auto &v) { return ops::where(ops::greater(v[0], v[2]), v[0], v[1]); }}}));
  // The SIMD unary ops (Highway + SLEEF) and the rest, on values they all accept.
  const Tensor pos = rnd(kWide, 0.05f, 0.95f);
  c.push_back(
      grad_family("unary_grad", {pos},
                  {{"exp", unary(ops::exp)},
                   {"log", unary(ops::log)},
                   {"tanh", unary(ops::tanh)},
                   {"sigmoid", unary(ops::sigmoid)},
                   {"softplus", unary(ops::softplus)},
                   {"sqrt", unary(ops::sqrt)},
                   {"rsqrt", unary(ops::rsqrt)},
                   {"square", unary(ops::square)},
                   {"neg", unary(ops::neg)},
                   {"abs", unary(ops::abs)},
                   {"relu", unary(ops::relu)},
                   {"swish", unary(ops::swish)},
                   {"log1p", unary(ops::log1p)},
                   {"expm1", unary(ops::expm1)},
                   {"sin", unary(ops::sin)},
                   {"cos", unary(ops::cos)},
                   {"relu6", unary(ops::relu6)},
                   {"selu", unary(ops::selu)},
                   {"floor", unary(ops::floor)},
                   {"round", unary(ops::round)},
                   {"sign", unary(ops::sign)},
                   {"gelu", [](const auto &v) { return ops::gelu(v[0], false); }},
                   {"gelu_tanh", [](const auto &v) { return ops::gelu(v[0], true); }},
                   {"elu", [](const auto &v) { return ops::elu(ops::sub(v[0], ops::fill({}, 0.5)), 1.0f); }},
                   {"leaky_relu", [](const auto &v) { return ops::leaky_relu(v[0], 0.2f); }}}));
  const Tensor xi = indices<int32_t>(kWide, 1000),
               yi = ops::add(indices<int32_t>(kWide, 97), ops::fill({}, 1, DType::kInt32));
  c.push_back({"integer_compare_logical_cast", [=] {
                 const Tensor gt = ops::greater(x, y), le = ops::less_equal(x, row);
                 return Results{ops::floordiv(xi, yi),
                                ops::floormod(xi, yi),
                                ops::floordiv(x, y),
                                ops::add(xi, yi),
                                ops::mul(xi, yi),
                                ops::equal(xi, yi),
                                ops::not_equal(x, y),
                                ops::greater_equal(x, row),
                                ops::less(x, y),
                                ops::logical_and(gt, le),
                                ops::logical_or(gt, le),
                                ops::logical_xor(gt, le),
                                ops::logical_not(gt),
                                ops::cast(x, DType::kBFloat16),
                                ops::cast(x, DType::kInt32),
                                ops::cast(xi, DType::kFloat32),
                                ops::cast(x, DType::kFloat64),
                                ops::cast(gt, DType::kFloat32)};
               }});
  c.push_back(grad_family("cast_grad", {x}, {{"bf16", [](const auto &v) {
                                                return ops::cast(ops::cast(v[0], DType::kBFloat16),
                                                                 DType::kFloat32);
                                              }}}));
}

void reduce_family(std::vector<Case> &c) {
  const Tensor x = rnd(kWide), near_one = rnd({130, 256}, 0.9f, 1.1f);
  c.push_back(grad_family("reduce_grad", {x, near_one},
                          {{"sum", [](const auto &v) { return ops::sum(v[0], {1}); }},
                           {"sum_all", [](const auto &v) { return ops::sum(v[0]); }},
                           {"mean", [](const auto &v) { return ops::mean(v[0], {0}, true); }},
                           {"max", [](const auto &v) { return ops::max(v[0], {1}); }},
                           {"min", [](const auto &v) { return ops::min(v[0], {0}); }},
                           {"prod", [](const auto &v) { return ops::reduce_prod(v[1], {1}); }},
                           {"logsumexp", [](const auto &v) { return ops::reduce_logsumexp(v[0], {1}); }},
                           {"moments",
                            [](const auto &v) {
                              const ops::MomentsResult m = ops::moments(v[0], {0});
                              return ops::add(m.mean, m.variance);
                            }},
                           {"l2_normalize", [](const auto &v) { return ops::l2_normalize(v[0], {1}); }},
                           {"sum_to_shape", [](const auto &v) {
                              return ops::sum_to_shape(v[0], Shape{1, 520});
                            }}}));
  const Tensor b = ops::greater(x, ops::fill({}, 0.0));
  c.push_back({"reduce_index_bool", [=] {
                 return Results{ops::argmax(x, 1),       ops::argmin(x, 0),
                                ops::argmax(x, 0),       ops::reduce_any(b, {1}),
                                ops::reduce_all(b, {0}), ops::reduce_prod(indices<int32_t>(kWide, 3), {1})};
               }});
}

void softmax_norm_family(std::vector<Case> &c) {
  const Tensor sx = rnd({64, 1024}, -4.0f, 4.0f);
  c.push_back(grad_family("softmax_grad", {sx},
                          {{"softmax", [](const auto &v) { return ops::softmax(v[0]); }},
                           {"log_softmax", [](const auto &v) { return ops::log_softmax(v[0]); }},
                           {"softmax_axis0", [](const auto &v) { return ops::softmax(v[0], 0); }}}));
  // Norms over 64 x 512 = 32768 elements (> 16384).
  const Tensor nx = rnd({64, 512}), gamma = rnd({512}, 0.5f, 1.5f), beta = rnd({512});
  const Tensor mv = rnd({512}), vv = rnd({512}, 0.5f, 2.0f);
  const Tensor nx3 = rnd({16, 8, 256}), g2 = rnd({8, 256}, 0.5f, 1.5f), b2 = rnd({8, 256});
  c.push_back(grad_family(
      "norm_grad", {nx, gamma, beta, nx3, g2, b2},
      {{"layer_norm", [](const auto &v) { return ops::layer_norm(v[0], v[1], v[2]); }},
       {"layer_norm_2axes",
        [](const auto &v) {
          return ops::layer_norm(v[3], v[4], v[5], 1e-3f, {-2, -1});
        }},
       {"batch_norm_train", [=](const auto &v) { return ops::batch_norm(v[0], v[1], v[2], mv, vv, true).y; }},
       {"batch_norm_infer",
        [=](const auto &v) { return ops::batch_norm(v[0], v[1], v[2], mv, vv, false).y; }},
       {"bias_add", [](const auto &v) { return ops::bias_add(v[0], v[2]); }}}));
}

void loss_family(std::vector<Case> &c) {
  const Tensor logits = rnd({128, 300}, -3.0f, 3.0f), soft = ops::softmax(rnd({128, 300}));
  const Tensor labels = indices<int32_t>({128}, 300), labels64 = indices<int64_t>({128}, 300);
  const Tensor z = rnd(kWide, 0.0f, 1.0f), s = rnd(kWide, -3.0f, 3.0f);
  c.push_back(grad_family(
      "loss_grad", {logits, soft, z, s},
      {{"sparse_xent32",
        [=](const auto &v) { return ops::sparse_softmax_cross_entropy_with_logits(labels, v[0]); }},
       {"sparse_xent64",
        [=](const auto &v) { return ops::sparse_softmax_cross_entropy_with_logits(labels64, v[0]); }},
       {"softmax_xent", [](const auto &v) { return ops::softmax_cross_entropy_with_logits(v[1], v[0]); }},
       {"sigmoid_xent", [](const auto &v) { return ops::sigmoid_cross_entropy_with_logits(v[2], v[3]); }}}));
}

void scan_family(std::vector<Case> &c) {
  const Tensor x = rnd(kWide), xi = indices<int32_t>(kWide, 50);
  c.push_back(
      grad_family("scan_grad", {x},
                  {{"cumsum", [](const auto &v) { return ops::cumsum(v[0], 1); }},
                   {"cumsum_excl_rev", [](const auto &v) { return ops::cumsum(v[0], 0, true, true); }},
                   {"top_k", [](const auto &v) { return ops::top_k(v[0], 7).values; }}}));
  c.push_back({"scan_int", [=] {
                 const ops::TopKResult t = ops::top_k(x, 5), ti = ops::top_k(xi, 3);
                 return Results{ops::cumsum(xi, 1), t.indices, ti.values, ti.indices};
               }});
}

void index_family(std::vector<Case> &c) {
  const Tensor params = rnd({500, 72}), idx = indices<int32_t>({96, 5}, 500),
               idx64 = indices<int64_t>({480}, 72);
  const Tensor nd = indices<int32_t>({600, 1}, 500), upd = rnd({600, 72});
  const Tensor mask = ops::greater(rnd({500}), ops::fill({}, 0.0));
  const Tensor labels = indices<int64_t>({700}, 50);
  c.push_back(grad_family(
      "index_grad", {params, upd},
      {{"gather", [=](const auto &v) { return ops::gather(v[0], idx); }},
       {"gather_axis1", [=](const auto &v) { return ops::gather(v[0], idx64, 1); }},
       {"gather_nd", [=](const auto &v) { return ops::gather_nd(v[0], nd); }},
       {"scatter_nd",
        [=](const auto &v) {
          return ops::scatter_nd(nd, v[1], Shape{500, 72});
        }},
       {"tensor_scatter_nd_add", [=](const auto &v) { return ops::tensor_scatter_nd_add(v[0], nd, v[1]); }},
       {"boolean_mask", [=](const auto &v) { return ops::boolean_mask(v[0], mask); }}}));
  c.push_back(
      {"one_hot", [=] {
         return Results{ops::one_hot(labels, 50), ops::one_hot(labels, 50, 2.0, -1.0, 0, DType::kInt32)};
       }});
}

void shape_family(std::vector<Case> &c) {
  const Tensor x = rnd({40, 30, 28}), y = rnd({40, 30, 28}), small = rnd({1, 30, 1});
  c.push_back(grad_family(
      "shape_grad", {x, y, small},
      {{"transpose",
        [](const auto &v) {
          return ops::transpose(v[0], {2, 0, 1});
        }},
       {"concat",
        [](const auto &v) {
          return ops::concat({v[0], v[1]}, 1);
        }},
       {"slice",
        [](const auto &v) {
          return ops::slice(v[0], {3, 2, 1}, {30, -1, 20});
        }},
       {"split",
        [](const auto &v) {
          return ops::split(v[0], {10, -1}, 0, 1)[1];
        }},
       {"stack",
        [](const auto &v) {
          return ops::stack({v[0], v[1]}, 2);
        }},
       {"tile",
        [](const auto &v) {
          return ops::tile(v[2], {40, 1, 28});
        }},
       {"broadcast_to",
        [](const auto &v) {
          return ops::broadcast_to(v[2], Shape{40, 30, 28});
        }},
       {"reshape_squeeze",
        [](const auto &v) {
          return ops::squeeze(ops::expand_dims(ops::reshape(v[0], {-1, 28}), 0));
        }},
       {"pad_constant",
        [](const auto &v) {
          return ops::pad(v[0], {1, 2, 0, 3, 2, 2}, ops::PadMode::kConstant, 0.5);
        }},
       {"pad_reflect",
        [](const auto &v) {
          return ops::pad(v[0], {1, 2, 0, 3, 2, 2}, ops::PadMode::kReflect);
        }},
       {"pad_symmetric",
        [](const auto &v) {
          return ops::pad(v[0], {1, 2, 0, 3, 2, 2}, ops::PadMode::kSymmetric);
        }},
       {"stop_gradient", [](const auto &v) { return ops::add(ops::stop_gradient(v[0]), v[1]); }}}));
}

void conv_family(std::vector<Case> &c) {
  // conv2d in two geometries, so that different shapes interleave.
  const Tensor x = rnd({4, 16, 16, 8});
  c.push_back(grad_family("conv2d_grad", {x, rnd({3, 3, 8, 16}), rnd({5, 5, 8, 12})},
                          {{"same",
                            [](const auto &v) {
                              return ops::conv2d(v[0], v[1], {1, 1}, {1, 1}, ops::Padding::kSame);
                            }},
                           {"valid_stride2",
                            [](const auto &v) {
                              return ops::conv2d(v[0], v[2], {2, 2}, {1, 1}, ops::Padding::kValid);
                            }},
                           {"dilated", [](const auto &v) {
                              return ops::conv2d(v[0], v[1], {1, 1}, {2, 2}, ops::Padding::kSame);
                            }}}));
  c.push_back(grad_family(
      "conv_variants_grad",
      {rnd({2, 8, 8, 16}), rnd({3, 3, 12, 16}), x, rnd({3, 3, 8, 2}), rnd({4, 40, 8}), rnd({5, 8, 12})},
      {{"conv2d_transpose",
        [](const auto &v) {
          return ops::conv2d_transpose(v[0], v[1], {2, 16, 16, 12}, {2, 2}, {1, 1}, ops::Padding::kSame);
        }},
       {"depthwise",
        [](const auto &v) {
          return ops::depthwise_conv2d(v[2], v[3], {1, 1}, {1, 1}, ops::Padding::kSame);
        }},
       {"conv1d", [](const auto &v) { return ops::conv1d(v[4], v[5], 2, 1, ops::Padding::kValid); }}}));
  // Pools over 4 x 32 x 32 x 16 = 65536 elements.
  c.push_back(grad_family("pools_grad", {rnd({4, 32, 32, 16})},
                          {{"max",
                            [](const auto &v) {
                              return ops::max_pool2d(v[0], {2, 2}, {2, 2}, ops::Padding::kValid);
                            }},
                           {"avg", [](const auto &v) {
                              return ops::avg_pool2d(v[0], {3, 3}, {2, 2}, ops::Padding::kSame);
                            }}}));
}

void random_creation_family(std::vector<Case> &c) {
  const Tensor x = rnd(kWide);
  c.push_back({"stateless_random_creation", [=] {
                 const ops::SeedPair s{7, 11};
                 return Results{ops::stateless_random_uniform(kWide, s, -2.0f, 3.0f),
                                ops::stateless_random_normal(kWide, s, 1.0f, 2.0f),
                                ops::stateless_truncated_normal(kWide, {3, 4}),
                                ops::stateless_random_uniform_int(kWide, s, DType::kInt32, -9, 99),
                                ops::stateless_random_uniform_int(kWide, s, DType::kInt64, -9, 99),
                                ops::stateless_random_uniform_float(kWide, s, DType::kFloat64, -2, 3),
                                ops::stateless_random_uniform_float(kWide, s, DType::kBFloat16, -2, 3),
                                ops::zeros(kWide),
                                ops::ones_like(x),
                                ops::fill(kWide, 2.5),
                                ops::range(0, 40000, 1.5),
                                ops::range_int64(-5, 40000, 3),
                                ops::zeros_like(x),
                                ops::fill_int64(kWide, int64_t{1} << 60)};
               }});
  c.push_back(grad_family("stateless_dropout_grad", {x},
                          {{"dropout",
                            [](const auto &v) {
                              return ops::stateless_dropout(v[0], 0.3f, {5, 6});
                            }},
                           {"noise_shape", [](const auto &v) {
                              return ops::stateless_dropout(v[0], 0.5f, {8, 9}, {-1, 1});
                            }}}));
}

}  // namespace

std::vector<Case> cases() {
  std::vector<Case> c;
  matmul_family(c);
  elementwise_family(c);
  reduce_family(c);
  softmax_norm_family(c);
  loss_family(c);
  scan_family(c);
  index_family(c);
  shape_family(c);
  conv_family(c);
  random_creation_family(c);
  return c;
}

}  // namespace kiln::stress

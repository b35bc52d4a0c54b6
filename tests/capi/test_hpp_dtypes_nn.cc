// float64 and bfloat16 through kiln.hpp for matmul, reductions, scans, softmax, the norms, floor
// division, einsum and the fused losses: float64 against long double loops, bfloat16 softmax and
// norms against the rounded float32 result, float64 gradients through the tape, dtype errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

using kiln::DType;
using kiln::Tensor;
using LD = long double;
using Doubles = std::vector<double>;

Doubles random_doubles(size_t n, unsigned seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Doubles v(n);
  for (double &x : v) x = dist(gen);
  return v;
}

void expect_close(const Tensor &got, const std::vector<LD> &want, double tol) {
  ASSERT_EQ(got.dtype(), DType::float64);
  const Doubles g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], static_cast<double>(want[i]), tol * (1.0 + std::fabs(static_cast<double>(want[i]))))
        << i;
}

// bfloat16 tensors compared bit for bit.
bool same_bits(const Tensor &a, const Tensor &b) {
  if (a.dtype() != DType::bfloat16 || b.dtype() != DType::bfloat16 || a.shape() != b.shape()) return false;
  const size_t n = static_cast<size_t>(kiln_tensor_get_num_elements(a.get()));
  return std::memcmp(kiln_tensor_get_data(a.get()), kiln_tensor_get_data(b.get()), 2 * n) == 0;
}

TEST(HppFloat64, MatmulReductionsScansAgainstLongDouble) {
  const int64_t m = 33, k = 257, n = 40;
  const Doubles a = random_doubles(static_cast<size_t>(m * k), 1),
                b = random_doubles(static_cast<size_t>(n * k), 2);
  const Tensor ta = Tensor::from_vector(a, {m, k}), tb = Tensor::from_vector(b, {n, k});
  std::vector<LD> want(static_cast<size_t>(m * n)), rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      LD s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += static_cast<LD>(a[static_cast<size_t>(i * k + p)]) * b[static_cast<size_t>(j * k + p)];
      want[static_cast<size_t>(i * n + j)] = s;
    }
    for (int64_t p = 0; p < k; ++p) rows[static_cast<size_t>(i)] += a[static_cast<size_t>(i * k + p)];
  }
  expect_close(kiln::matmul(ta, tb, false, true), want, 1e-13);
  expect_close(kiln::einsum("ik,jk->ij", {ta, tb}), want, 1e-13);
  expect_close(kiln::sum(ta, {1}), rows, 1e-14);
  const Tensor cs = kiln::cumsum(ta, 1);
  EXPECT_NEAR(cs.to_vector<double>()[static_cast<size_t>(k - 1)], static_cast<double>(rows[0]), 1e-12);
  const Tensor am = kiln::argmax(ta, 1);
  EXPECT_EQ(am.dtype(), DType::int64);
  const kiln::TopK top = kiln::top_k(ta, 3);
  EXPECT_EQ(top.values.dtype(), DType::float64);
  EXPECT_EQ(top.values.to_vector<double>()[0], a[static_cast<size_t>(am.to_vector<int64_t>()[0])]);
}

TEST(HppFloat64, SoftmaxNormsLossesFloorDiv) {
  const Doubles x = random_doubles(12, 3, -10.0, 10.0);
  const Tensor t = Tensor::from_vector(x, {3, 4});
  std::vector<LD> sm(12), lsm(12), sparse(3);
  const std::vector<int64_t> labels = {0, 3, 2};
  for (int r = 0; r < 3; ++r) {
    LD mx = x[static_cast<size_t>(r * 4)], s = 0;
    for (int j = 0; j < 4; ++j) mx = std::max<LD>(mx, x[static_cast<size_t>(r * 4 + j)]);
    for (int j = 0; j < 4; ++j) s += std::exp(static_cast<LD>(x[static_cast<size_t>(r * 4 + j)]) - mx);
    for (int j = 0; j < 4; ++j) {
      lsm[static_cast<size_t>(r * 4 + j)] = x[static_cast<size_t>(r * 4 + j)] - mx - std::log(s);
      sm[static_cast<size_t>(r * 4 + j)] = std::exp(lsm[static_cast<size_t>(r * 4 + j)]);
    }
    sparse[static_cast<size_t>(r)] = -lsm[static_cast<size_t>(r * 4 + labels[static_cast<size_t>(r)])];
  }
  expect_close(kiln::softmax(t), sm, 1e-14);
  expect_close(kiln::log_softmax(t), lsm, 1e-14);
  expect_close(kiln::sparse_softmax_cross_entropy_with_logits(Tensor::from_vector(labels, {3}), t), sparse,
               1e-14);
  const Tensor g = Tensor::from_vector(Doubles{1.0, 2.0, 0.5, -1.0}, {4}),
               b = Tensor::from_vector(Doubles(4, 0.25), {4});
  const Tensor ln = kiln::layer_norm(t, g, b);
  EXPECT_EQ(ln.dtype(), DType::float64);
  const kiln::BatchNormResult bn = kiln::batch_norm(t, g, b, Tensor(), Tensor(), true);
  EXPECT_EQ(bn.mean.dtype(), DType::float64);
  const Tensor q = kiln::floordiv(Tensor::from_vector(Doubles{7.0, -7.0}, {2}),
                                  Tensor::from_vector(Doubles{2.0, 2.0}, {2}));
  EXPECT_EQ(q.to_vector<double>(), (Doubles{3.0, -4.0}));
}

TEST(HppBFloat16, SoftmaxAndNormsAreTheRoundedFloat32Result) {
  std::vector<float> xv(6 * 20);
  std::mt19937 gen(4);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  for (float &v : xv) v = dist(gen);
  const Tensor xb = kiln::cast(Tensor::from_vector(xv, {6, 20}), DType::bfloat16);
  const Tensor x32 = kiln::cast(xb, DType::float32);
  EXPECT_TRUE(same_bits(kiln::softmax(xb, 0), kiln::cast(kiln::softmax(x32, 0), DType::bfloat16)));
  EXPECT_TRUE(same_bits(kiln::log_softmax(xb), kiln::cast(kiln::log_softmax(x32), DType::bfloat16)));
  EXPECT_TRUE(
      same_bits(kiln::l2_normalize(xb, {1}), kiln::cast(kiln::l2_normalize(x32, {1}), DType::bfloat16)));
  const Tensor g32 = Tensor::from_vector(std::vector<float>(20, 1.5f), {20});
  const Tensor b32 = Tensor::from_vector(std::vector<float>(20, -0.5f), {20});
  const Tensor gb = kiln::cast(g32, DType::bfloat16), bb = kiln::cast(b32, DType::bfloat16);
  const Tensor want = kiln::cast(kiln::layer_norm(x32, g32, b32), DType::bfloat16);
  EXPECT_TRUE(same_bits(kiln::layer_norm(xb, gb, bb), want));
  EXPECT_TRUE(same_bits(kiln::layer_norm(xb, g32, b32), want));
  // the scans, products, logsumexp and floor division: float32's result, rounded once
  EXPECT_TRUE(same_bits(kiln::cumsum(xb, 1), kiln::cast(kiln::cumsum(x32, 1), DType::bfloat16)));
  EXPECT_TRUE(same_bits(kiln::einsum("ij,kj->ik", {xb, xb}),
                        kiln::cast(kiln::einsum("ij,kj->ik", {x32, x32}), DType::bfloat16)));
  EXPECT_TRUE(same_bits(kiln::cumprod(xb, 0), kiln::cast(kiln::cumprod(x32, 0), DType::bfloat16)));
  EXPECT_TRUE(
      same_bits(kiln::reduce_prod(xb, {1}), kiln::cast(kiln::reduce_prod(x32, {1}), DType::bfloat16)));
  EXPECT_TRUE(same_bits(kiln::reduce_logsumexp(xb, {0}),
                        kiln::cast(kiln::reduce_logsumexp(x32, {0}), DType::bfloat16)));
  EXPECT_TRUE(same_bits(kiln::floordiv(xb, kiln::cast(kiln::fill({1}, 1.5f), DType::bfloat16)),
                        kiln::cast(kiln::floordiv(x32, kiln::fill({1}, 1.5f)), DType::bfloat16)));
  const kiln::BatchNormResult bn = kiln::batch_norm(xb, gb, bb, Tensor(), Tensor(), true);
  EXPECT_EQ(bn.y.dtype(), DType::bfloat16);
  EXPECT_EQ(bn.variance.dtype(), DType::float32);
  EXPECT_TRUE(same_bits(
      bn.y, kiln::cast(kiln::batch_norm(x32, g32, b32, Tensor(), Tensor(), true).y, DType::bfloat16)));
}

TEST(HppFloat64, GradientsKeepFloat64) {
  const Tensor x = Tensor::from_vector(random_doubles(6, 5), {2, 3});
  const Tensor g = Tensor::from_vector(Doubles{1.0, 2.0, 3.0}, {3}),
               b = Tensor::from_vector(Doubles(3, 0.0), {3});
  kiln::GradientTape tape;
  tape.watch(x);
  tape.watch(g);
  const Tensor y = kiln::layer_norm(x, g, b);
  const std::vector<Tensor> d =
      tape.gradient(y, {x, g}, kiln::Unconnected::zero, Tensor::from_vector(random_doubles(6, 6), {2, 3}));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].dtype(), DType::float64);
  EXPECT_EQ(d[1].dtype(), DType::float64);
  // Each row's dx sums to 0: layer_norm's output does not move when a row shifts.
  const Doubles dx = d[0].to_vector<double>();
  EXPECT_NEAR(dx[0] + dx[1] + dx[2], 0.0, 1e-14);
}

// top_k of bfloat16 (through float32, exact): bfloat16 values and int32 indices, with a gradient.
TEST(HppFloatDtypesNn, TopKTakesBFloat16) {
  const Tensor x =
      kiln::cast(Tensor::from_vector(std::vector<float>{0.5f, -2.0f, 3.0f, 1.0f}, {2, 2}), DType::bfloat16);
  kiln::GradientTape tape;
  tape.watch(x);
  const kiln::TopK top = kiln::top_k(x, 1);
  ASSERT_EQ(top.values.dtype(), DType::bfloat16);
  EXPECT_EQ(kiln::cast(top.values, DType::float32).to_vector<float>(), (std::vector<float>{0.5f, 3.0f}));
  EXPECT_EQ(top.indices.to_vector<int32_t>(), (std::vector<int32_t>{0, 0}));
  const Tensor g = tape.gradient(kiln::sum(kiln::cast(top.values, DType::float32)), {x})[0];
  ASSERT_EQ(g.dtype(), DType::bfloat16);
  EXPECT_EQ(kiln::cast(g, DType::float32).to_vector<float>(), (std::vector<float>{1, 0, 1, 0}));
}

// The convolutions, poolings and fused cross-entropies take bfloat16 operands: the float32 op on their
// values, rounded once.
TEST(HppFloatDtypesNn, WindowOpsAndCrossEntropiesTakeBFloat16) {
  const Tensor x = kiln::cast(kiln::reshape(kiln::range(0, 48, 1), {1, 4, 4, 3}) * 0.125f, DType::bfloat16);
  const Tensor f = kiln::cast(kiln::reshape(kiln::range(0, 24, 1), {2, 2, 3, 2}) * -0.25f, DType::bfloat16);
  auto f32 = [](const Tensor &t) { return kiln::cast(t, DType::float32); };
  auto same = [&](const Tensor &got, const Tensor &want) {
    ASSERT_EQ(got.dtype(), DType::bfloat16);
    EXPECT_EQ(f32(got).to_vector<float>(), f32(kiln::cast(want, DType::bfloat16)).to_vector<float>());
  };
  same(kiln::conv2d(x, f, {2, 1}, {1, 1}, kiln::Padding::same),
       kiln::conv2d(f32(x), f32(f), {2, 1}, {1, 1}, kiln::Padding::same));
  same(kiln::max_pool2d(x, {2, 2}, {1, 1}, kiln::Padding::same),
       kiln::max_pool2d(f32(x), {2, 2}, {1, 1}, kiln::Padding::same));
  same(kiln::avg_pool3d(kiln::reshape(x, {1, 2, 2, 4, 3})),
       kiln::avg_pool3d(f32(kiln::reshape(x, {1, 2, 2, 4, 3}))));
  const Tensor logits = kiln::reshape(kiln::slice(x, {0, 0, 0, 0}, {1, 2, 4, 3}), {8, 3});
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
  same(kiln::sparse_softmax_cross_entropy_with_logits(labels, logits),
       kiln::sparse_softmax_cross_entropy_with_logits(labels, f32(logits)));
}

TEST(HppFloatDtypesNn, ErrorsNameTheOpAndDtypes) {
  const Tensor x64 = Tensor::from_vector(Doubles{1, 2, 3, 4}, {2, 2});
  const Tensor x32 = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  for (const auto &[fn, fragment] : std::vector<std::pair<std::function<void()>, std::string>>{
           {[&] { kiln::matmul(x64, x32); }, "matmul"},
           {[&] { kiln::layer_norm(x64, kiln::reshape(x32, {4}), kiln::reshape(x64, {4})); }, "gamma"},
           {[&] { kiln::top_k(kiln::cast(x32, DType::boolean), 1); }, "top_k"},
       }) {
    try {
      fn();
      ADD_FAILURE() << "expected an error naming " << fragment;
    } catch (const kiln::Error &e) {
      EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

}  // namespace

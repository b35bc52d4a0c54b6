// float64 and bfloat16 for the reductions, scans, matmul, softmax, the norms, floor division and the
// fused losses: float64 against long double references at both sides of the kernels' size
// thresholds, bfloat16 as the rounded float32 result, float64 gradients by central differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "autodiff/tape.h"
#include "core/threads.h"
#include "ops/conv3d.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using LD = long double;
using testing::make_typed;
using testing::values;

Tensor rand64(const Shape &shape, unsigned seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape.num_elements()));
  for (double &x : v) x = dist(gen);
  return make_typed(shape, v);
}

std::vector<LD> wide(const Tensor &t) {
  std::vector<double> v = values<double>(t);
  return std::vector<LD>(v.begin(), v.end());
}

// |got - want| <= tol * (scale + |want|) elementwise; scale defaults to 1.
void expect_close(const Tensor &got, const std::vector<LD> &want, double tol, const char *what,
                  double scale = 1.0) {
  ASSERT_EQ(got.dtype(), DType::kFloat64) << what;
  ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size()) << what;
  const double *p = got.data<double>();
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = static_cast<double>(want[i]);
    if (std::isnan(w)) {
      EXPECT_TRUE(std::isnan(p[i])) << what << " at " << i;
      continue;
    }
    if (std::isinf(w)) {
      EXPECT_EQ(p[i], w) << what << " at " << i;
      continue;
    }
    EXPECT_NEAR(p[i], w, tol * (scale + std::fabs(w))) << what << " at " << i;
  }
}

// x viewed as [outer, n, inner]: f folds each line of n values into one.
std::vector<LD> fold_lines(const std::vector<LD> &x, int64_t outer, int64_t n, int64_t inner,
                           const std::function<LD(const std::vector<LD> &)> &f) {
  std::vector<LD> out;
  std::vector<LD> line(static_cast<size_t>(n));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t k = 0; k < n; ++k)
        line[static_cast<size_t>(k)] = x[static_cast<size_t>((o * n + k) * inner + i)];
      out.push_back(f(line));
    }
  return out;
}

LD ld_sum(const std::vector<LD> &v) {
  LD s = 0;
  for (LD x : v) s += x;
  return s;
}

// Small and above every kernel threshold (32768 elements).
const std::vector<Shape> kShapes = {Shape{3, 5, 4}, Shape{40, 37, 23}};

TEST(Float64Reduce, SumMeanMaxMinProdAgainstLongDouble) {
  unsigned seed = 1;
  for (const Shape &s : kShapes)
    for (int axis = 0; axis < 3; ++axis) {
      const Tensor x = rand64(s, seed++);
      const std::vector<LD> xv = wide(x);
      int64_t outer = 1, inner = 1;
      for (int i = 0; i < axis; ++i) outer *= s[i];
      for (int i = axis + 1; i < 3; ++i) inner *= s[i];
      const int64_t n = s[axis];
      expect_close(ops::sum(x, {axis}), fold_lines(xv, outer, n, inner, ld_sum), 1e-14, "sum",
                   static_cast<double>(n));
      expect_close(ops::mean(x, {axis}),
                   fold_lines(xv, outer, n, inner, [n](const std::vector<LD> &l) { return ld_sum(l) / n; }),
                   1e-14, "mean");
      expect_close(ops::max(x, {axis}),
                   fold_lines(xv, outer, n, inner,
                              [](const std::vector<LD> &l) { return *std::max_element(l.begin(), l.end()); }),
                   0.0, "max");
      expect_close(ops::min(x, {axis}),
                   fold_lines(xv, outer, n, inner,
                              [](const std::vector<LD> &l) { return *std::min_element(l.begin(), l.end()); }),
                   0.0, "min");
      const Tensor am = ops::argmax(x, axis), an = ops::argmin(x, axis);
      const std::vector<LD> want_am = fold_lines(xv, outer, n, inner, [](const std::vector<LD> &l) {
        return static_cast<LD>(std::max_element(l.begin(), l.end()) - l.begin());
      });
      const std::vector<LD> want_an = fold_lines(xv, outer, n, inner, [](const std::vector<LD> &l) {
        return static_cast<LD>(std::min_element(l.begin(), l.end()) - l.begin());
      });
      for (size_t i = 0; i < want_am.size(); ++i) {
        EXPECT_EQ(am.data<int64_t>()[i], static_cast<int64_t>(want_am[i]));
        EXPECT_EQ(an.data<int64_t>()[i], static_cast<int64_t>(want_an[i]));
      }
    }
  // Products of values near 1, so that the large rows neither overflow nor vanish.
  const Tensor x = rand64(Shape{40, 1000}, 7, 0.9, 1.1);
  expect_close(ops::reduce_prod(x, {1}),
               fold_lines(wide(x), 40, 1000, 1,
                          [](const std::vector<LD> &l) {
                            LD p = 1;
                            for (LD v : l) p *= v;
                            return p;
                          }),
               1e-13, "reduce_prod");
  EXPECT_EQ(ops::sum(x).dtype(), DType::kFloat64);
}

TEST(Float64Reduce, SpecialValuesAndEmpty) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = make_typed<double>(Shape{2, 3}, {1.0, nan, 2.0, -inf, 3.0, -0.0});
  expect_close(ops::max(x, {1}), {nan, 3.0L}, 0.0, "max NaN");
  expect_close(ops::sum(x, {1}), {nan, -inf}, 0.0, "sum");
  const Tensor e = Tensor::empty(DType::kFloat64, Shape{0, 2});
  expect_close(ops::sum(e, {0}), {0.0L, 0.0L}, 0.0, "empty sum");
  expect_close(ops::mean(e, {0}), {nan, nan}, 0.0, "empty mean");
  expect_close(ops::max(e, {0}), {-inf, -inf}, 0.0, "empty max");
}

TEST(Float64Scan, CumsumAndTopK) {
  unsigned seed = 20;
  for (const Shape &s : kShapes)
    for (bool exclusive : {false, true})
      for (bool reverse : {false, true}) {
        const Tensor x = rand64(s, seed++);
        const std::vector<LD> xv = wide(x);
        const int64_t outer = s[0], n = s[1], inner = s[2];
        std::vector<LD> want(xv.size());
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            LD acc = 0;
            for (int64_t t = 0; t < n; ++t) {
              const int64_t k = reverse ? n - 1 - t : t;
              const size_t at = static_cast<size_t>((o * n + k) * inner + i);
              if (exclusive) want[at] = acc;
              acc += xv[at];
              if (!exclusive) want[at] = acc;
            }
          }
        expect_close(ops::cumsum(x, 1, exclusive, reverse), want, 1e-14, "cumsum", static_cast<double>(n));
      }
  const Tensor x = make_typed<double>(Shape{2, 4}, {0.5, 1e-300, 2.0, 1e-300, -1.0, 3.25, 3.25, -0.0});
  const ops::TopKResult r = ops::top_k(x, 2);
  EXPECT_EQ(r.values.dtype(), DType::kFloat64);
  EXPECT_EQ(values<double>(r.values), (std::vector<double>{2.0, 0.5, 3.25, 3.25}));
  EXPECT_EQ(values<int32_t>(r.indices), (std::vector<int32_t>{2, 0, 1, 2}));
}

// op(a) · op(b) in long double, with NumPy-broadcast batches (a and b of rank 3 at most here).
std::vector<LD> ref_matmul(const Tensor &a, const Tensor &b, bool ta, bool tb, const Shape &out) {
  const std::vector<LD> av = wide(a), bv = wide(b);
  const int r = out.rank();
  const int64_t m = out[r - 2], n = out[r - 1], k = ta ? a.shape()[a.rank() - 2] : a.shape()[a.rank() - 1];
  const int64_t batches = out.num_elements() / (m * n);
  const int64_t a_batches = k == 0 ? 1 : a.num_elements() / (m * k),
                b_batches = k == 0 ? 1 : b.num_elements() / (k * n);
  std::vector<LD> c(static_cast<size_t>(out.num_elements()));
  for (int64_t q = 0; q < batches; ++q) {
    const int64_t qa = a_batches == 1 ? 0 : q, qb = b_batches == 1 ? 0 : q;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        LD s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += av[static_cast<size_t>(qa * m * k + (ta ? p * m + i : i * k + p))] *
               bv[static_cast<size_t>(qb * k * n + (tb ? j * k + p : p * n + j))];
        c[static_cast<size_t>((q * m + i) * n + j)] = s;
      }
  }
  return c;
}

// scatter_nd / tensor_scatter_nd_add (and gather's gradient, scatter_add): float64 sums in
// double, bfloat16 sums in float32 and rounds once.
TEST(FloatDtypesScatter, ScatterNdInFloat64AndBFloat16) {
  const Tensor idx = make_typed<int32_t>({4, 1}, {2, 0, 2, 5});
  const Tensor upd = rand64(Shape{4, 3}, 90);
  const Tensor got = ops::scatter_nd(idx, upd, Shape{6, 3});
  ASSERT_EQ(got.dtype(), DType::kFloat64);
  const std::vector<double> u = values<double>(upd), g = values<double>(got);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(g[size_t(2 * 3 + c)], u[size_t(0 * 3 + c)] + u[size_t(2 * 3 + c)]);
    EXPECT_EQ(g[size_t(0 * 3 + c)], u[size_t(1 * 3 + c)]);
    EXPECT_EQ(g[size_t(1 * 3 + c)], 0.0);
  }
  const Tensor bf = ops::cast(upd, DType::kBFloat16);
  const Tensor want = ops::cast(ops::scatter_nd(idx, ops::cast(bf, DType::kFloat32), Shape{6, 3}), DType::kBFloat16);
  EXPECT_EQ(values<uint16_t>(ops::scatter_nd(idx, bf, Shape{6, 3})), values<uint16_t>(want));
  const Tensor base = rand64(Shape{6, 3}, 91);
  EXPECT_EQ(values<double>(ops::tensor_scatter_nd_add(base, idx, upd)), values<double>(ops::add(base, got)));
}

// Integer scatter_nd sums in its own dtype: int64 exactly beyond 2^53, both widths wrapping
// around on overflow as TF's CPU kernel.
TEST(FloatDtypesScatter, ScatterNdInIntegers) {
  const Tensor idx = make_typed<int32_t>({4, 1}, {2, 0, 2, 3});
  const int64_t big = (int64_t{1} << 53) + 1;
  const Tensor u64 = make_typed<int64_t>({4}, {big, 7, 2, std::numeric_limits<int64_t>::max()});
  const Tensor g64 = ops::scatter_nd(idx, u64, Shape{5});
  ASSERT_EQ(g64.dtype(), DType::kInt64);
  EXPECT_EQ(values<int64_t>(g64),
            (std::vector<int64_t>{7, 0, big + 2, std::numeric_limits<int64_t>::max(), 0}));
  const Tensor two_max = make_typed<int64_t>({2}, {std::numeric_limits<int64_t>::max(), 2});
  EXPECT_EQ(values<int64_t>(ops::scatter_nd(make_typed<int32_t>({2, 1}, {1, 1}), two_max, Shape{2})),
            (std::vector<int64_t>{0, std::numeric_limits<int64_t>::min() + 1}));
  const Tensor u32 = make_typed<int32_t>({4}, {std::numeric_limits<int32_t>::max(), -5, 1, 9});
  const Tensor g32 = ops::scatter_nd(idx, u32, Shape{5});
  ASSERT_EQ(g32.dtype(), DType::kInt32);
  EXPECT_EQ(values<int32_t>(g32), (std::vector<int32_t>{-5, 0, std::numeric_limits<int32_t>::min(), 9, 0}));
  const Tensor base = make_typed<int32_t>({5}, {1, 2, 3, 4, 5});
  EXPECT_EQ(
      values<int32_t>(ops::tensor_scatter_nd_add(base, idx, make_typed<int32_t>({4}, {10, 20, 30, 40}))),
      (std::vector<int32_t>{21, 2, 43, 44, 5}));
  testing::expect_error([&] { ops::tensor_scatter_nd_add(base, idx, u64); }, Code::kInvalidArgument,
                        {"tensor_scatter_nd_add", "int64"});
  testing::expect_error(
      [&] {
        ops::scatter_nd(idx, make_typed<uint8_t>({4}, {1, 2, 3, 4}), Shape{5});
      },
      Code::kInvalidArgument, {"scatter_nd", "updates", "uint8"});
}

TEST(Float64Matmul, TransposesBatchesAndSizesAgainstLongDouble) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {Shape{3, 5}, Shape{5, 4}, false, false},       {Shape{5, 3}, Shape{5, 4}, true, false},
      {Shape{3, 5}, Shape{4, 5}, false, true},        {Shape{5, 3}, Shape{4, 5}, true, true},
      {Shape{2, 3, 5}, Shape{5, 4}, false, false},    {Shape{3, 5}, Shape{2, 4, 5}, false, true},
      {Shape{64, 300}, Shape{300, 70}, false, false}, {Shape{300, 64}, Shape{70, 300}, true, true},
      {Shape{3, 0}, Shape{0, 4}, false, false},
  };
  unsigned seed = 40;
  for (const Case &c : cases) {
    const Tensor a = rand64(c.a, seed++), b = rand64(c.b, seed++);
    const Tensor y = ops::matmul(a, b, c.ta, c.tb);
    const int64_t k = c.ta ? c.a[c.a.rank() - 2] : c.a[c.a.rank() - 1];
    expect_close(y, ref_matmul(a, b, c.ta, c.tb, y.shape()), 1e-15, "matmul", 4.0 * static_cast<double>(k));
  }
}

TEST(Float64Matmul, SameBitsWhateverTheThreadCount) {
  const Tensor a = rand64(Shape{4, 70, 130}, 50), b = rand64(Shape{130, 90}, 51);
  const int before = num_threads();
  set_num_threads(1);
  const std::vector<double> one = values<double>(ops::matmul(a, b));
  set_num_threads(std::max(2, before));
  const std::vector<double> many = values<double>(ops::matmul(a, b));
  set_num_threads(before);
  EXPECT_EQ(one, many);
}

std::vector<LD> ref_softmax(const std::vector<LD> &x, int64_t outer, int64_t n, int64_t inner, bool log) {
  std::vector<LD> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return static_cast<size_t>((o * n + k) * inner + i); };
      LD m = x[at(0)];
      for (int64_t k = 1; k < n; ++k) m = std::max(m, x[at(k)]);
      LD s = 0;
      for (int64_t k = 0; k < n; ++k) s += std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < n; ++k)
        y[at(k)] = log ? (x[at(k)] - m) - std::log(s) : std::exp(x[at(k)] - m) / s;
    }
  return y;
}

TEST(Float64Softmax, BothAxesBothSizesAgainstLongDouble) {
  unsigned seed = 60;
  for (const Shape &s : {Shape{3, 7}, Shape{40, 1000}})
    for (int axis : {0, 1})
      for (bool log : {false, true}) {
        const Tensor x = rand64(s, seed++, -20.0, 20.0);
        const Tensor y = log ? ops::log_softmax(x, axis) : ops::softmax(x, axis);
        const int64_t outer = axis == 0 ? 1 : s[0], inner = axis == 0 ? s[1] : 1;
        expect_close(y, ref_softmax(wide(x), outer, s[axis], inner, log), 1e-13,
                     log ? "log_softmax" : "softmax", log ? 1.0 : 0.0);
      }
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = make_typed<double>(Shape{3, 2}, {nan, 1.0, -inf, 0.0, 1000.0, -1000.0});
  expect_close(ops::softmax(x), {nan, nan, 0.0L, 1.0L, 1.0L, 0.0L}, 0.0, "softmax special");
  expect_close(ops::log_softmax(x), {nan, nan, -inf, 0.0L, 0.0L, -2000.0L}, 0.0, "log_softmax special");
}

void ref_layer_norm(const std::vector<LD> &x, const std::vector<LD> &g, const std::vector<LD> &b,
                    int64_t rows, int64_t cols, LD eps, std::vector<LD> *y) {
  y->resize(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    LD mu = 0, var = 0;
    for (int64_t j = 0; j < cols; ++j) mu += x[static_cast<size_t>(r * cols + j)];
    mu /= cols;
    for (int64_t j = 0; j < cols; ++j)
      var += (x[static_cast<size_t>(r * cols + j)] - mu) * (x[static_cast<size_t>(r * cols + j)] - mu);
    var /= cols;
    for (int64_t j = 0; j < cols; ++j) {
      const size_t i = static_cast<size_t>(r * cols + j);
      (*y)[i] = (x[i] - mu) / std::sqrt(var + eps) * g[static_cast<size_t>(j)] + b[static_cast<size_t>(j)];
    }
  }
}

TEST(Float64Norms, LayerNormAndBatchNormAgainstLongDouble) {
  unsigned seed = 80;
  for (const Shape &s : {Shape{3, 8}, Shape{300, 130}}) {
    const int64_t rows = s[0], cols = s[1];
    const Tensor x = rand64(s, seed++, -3.0, 5.0), g = rand64(Shape{cols}, seed++),
                 b = rand64(Shape{cols}, seed++);
    std::vector<LD> want;
    ref_layer_norm(wide(x), wide(g), wide(b), rows, cols, static_cast<LD>(1e-3f), &want);
    expect_close(ops::layer_norm(x, g, b, 1e-3f), want, 1e-13, "layer_norm");
    // batch_norm normalises columns: the layer norm of the transpose, with per-column gamma/beta
    // seen per row there.
    std::vector<LD> xt(static_cast<size_t>(rows * cols));
    const std::vector<LD> xv = wide(x);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        xt[static_cast<size_t>(c * rows + r)] = xv[static_cast<size_t>(r * cols + c)];
    std::vector<LD> ones(static_cast<size_t>(rows), 1.0L), zeros(static_cast<size_t>(rows), 0.0L), norm_t;
    ref_layer_norm(xt, ones, zeros, cols, rows, static_cast<LD>(1e-3f), &norm_t);
    const std::vector<LD> gv = wide(g), bv = wide(b);
    std::vector<LD> want_bn(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        want_bn[static_cast<size_t>(r * cols + c)] =
            norm_t[static_cast<size_t>(c * rows + r)] * gv[static_cast<size_t>(c)] +
            bv[static_cast<size_t>(c)];
    const ops::BatchNormResult bn = ops::batch_norm(x, g, b, Tensor(), Tensor(), true, 1e-3f);
    expect_close(bn.y, want_bn, 1e-13, "batch_norm training");
    EXPECT_EQ(bn.mean.dtype(), DType::kFloat64);
    const ops::BatchNormResult inf = ops::batch_norm(x, g, b, bn.mean, bn.variance, false, 1e-3f);
    expect_close(inf.y, want_bn, 1e-13, "batch_norm inference");
  }
}

TEST(Float64FloorDiv, FloordivAndFloormod) {
  const Tensor a = make_typed<double>(Shape{6}, {7.0, -7.0, 7.0, -7.0, 1e300, 0.5});
  const Tensor b = make_typed<double>(Shape{6}, {2.0, 2.0, -2.0, -2.0, 3.0, 0.0});
  const std::vector<double> q = values<double>(ops::floordiv(a, b)), m = values<double>(ops::floormod(a, b));
  EXPECT_EQ(std::vector<double>(q.begin(), q.begin() + 4), (std::vector<double>{3.0, -4.0, -4.0, 3.0}));
  EXPECT_EQ(std::vector<double>(m.begin(), m.begin() + 4), (std::vector<double>{1.0, 1.0, -1.0, -1.0}));
  EXPECT_EQ(q[4], std::floor(1e300 / 3.0));
  EXPECT_EQ(q[5], std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(m[5]));
}

TEST(Float64Losses, FusedCrossEntropiesAgainstLongDouble) {
  unsigned seed = 100;
  for (const Shape &s : {Shape{4, 5}, Shape{100, 400}}) {
    const int64_t rows = s[0], n = s[1];
    const Tensor logits = rand64(s, seed++, -30.0, 30.0);
    std::vector<int64_t> lab(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) lab[static_cast<size_t>(r)] = (r * 7) % n;
    const Tensor labels = make_typed(Shape{rows}, lab);
    const Tensor z = rand64(s, seed++, 0.0, 1.0);
    const std::vector<LD> lse = ref_softmax(wide(logits), rows, n, 1, true), zv = wide(z);
    std::vector<LD> want_sparse, want_dense;
    for (int64_t r = 0; r < rows; ++r) {
      want_sparse.push_back(-lse[static_cast<size_t>(r * n + lab[static_cast<size_t>(r)])]);
      LD d = 0;
      for (int64_t j = 0; j < n; ++j)
        d -= zv[static_cast<size_t>(r * n + j)] * lse[static_cast<size_t>(r * n + j)];
      want_dense.push_back(d);
    }
    expect_close(ops::sparse_softmax_cross_entropy_with_logits(labels, logits), want_sparse, 1e-13,
                 "sparse xent");
    expect_close(ops::softmax_cross_entropy_with_logits(z, logits), want_dense, 1e-13, "dense xent",
                 static_cast<double>(n));
    const std::vector<LD> xv = wide(logits);
    std::vector<LD> want_sig;
    for (size_t i = 0; i < xv.size(); ++i)
      want_sig.push_back(std::max<LD>(xv[i], 0) - xv[i] * zv[i] + std::log1p(std::exp(-std::fabs(xv[i]))));
    expect_close(ops::sigmoid_cross_entropy_with_logits(z, logits), want_sig, 1e-14, "sigmoid xent");
  }
}

// ---- bfloat16: softmax and the norms are the float32 result rounded once ----

Tensor bf16_of(const Tensor &f32) { return ops::cast(f32, DType::kBFloat16); }

void expect_same_bits(const Tensor &got, const Tensor &want, const char *what) {
  ASSERT_EQ(got.dtype(), DType::kBFloat16) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(want.dtype(), DType::kBFloat16) << what;
  const uint16_t *g = static_cast<const uint16_t *>(got.raw_data()),
                 *w = static_cast<const uint16_t *>(want.raw_data());
  for (int64_t i = 0; i < got.num_elements(); ++i) EXPECT_EQ(g[i], w[i]) << what << " at " << i;
}

TEST(BFloat16Nn, SoftmaxAndNormsAreTheRoundedFloat32Result) {
  unsigned seed = 120;
  for (const Shape &s : {Shape{3, 8}, Shape{300, 130}}) {
    const Tensor x = bf16_of(testing::random_tensor(s, seed++, -4.0f, 4.0f));
    const Tensor x32 = ops::cast(x, DType::kFloat32);
    for (int axis : {0, 1}) {
      expect_same_bits(ops::softmax(x, axis), bf16_of(ops::softmax(x32, axis)), "softmax");
      expect_same_bits(ops::log_softmax(x, axis), bf16_of(ops::log_softmax(x32, axis)), "log_softmax");
    }
    expect_same_bits(ops::l2_normalize(x, {1}), bf16_of(ops::l2_normalize(x32, {1})), "l2_normalize");
    const Tensor g32 = testing::random_tensor(Shape{s[1]}, seed++),
                 b32 = testing::random_tensor(Shape{s[1]}, seed++);
    const Tensor g = bf16_of(g32), b = bf16_of(b32);
    const Tensor gr = ops::cast(g, DType::kFloat32), br = ops::cast(b, DType::kFloat32);
    // bfloat16 gamma/beta, and float32 ones as TF's fused batch norm and Keras mixed precision keep them.
    expect_same_bits(ops::layer_norm(x, g, b), bf16_of(ops::layer_norm(x32, gr, br)),
                     "layer_norm bf16 params");
    expect_same_bits(ops::layer_norm(x, g32, b32), bf16_of(ops::layer_norm(x32, g32, b32)),
                     "layer_norm f32 params");
    const ops::BatchNormResult bn = ops::batch_norm(x, g, b, Tensor(), Tensor(), true);
    const ops::BatchNormResult bn32 = ops::batch_norm(x32, gr, br, Tensor(), Tensor(), true);
    expect_same_bits(bn.y, bf16_of(bn32.y), "batch_norm training");
    EXPECT_EQ(bn.mean.dtype(), DType::kFloat32);  // as TF's FusedBatchNormV3
    EXPECT_EQ(values<float>(bn.variance), values<float>(bn32.variance));
    const ops::BatchNormResult inf = ops::batch_norm(x, g32, b32, bn.mean, bn.variance, false);
    expect_same_bits(inf.y, bf16_of(ops::batch_norm(x32, g32, b32, bn.mean, bn.variance, false).y),
                     "batch_norm inference");
  }
}

TEST(BFloat16Nn, NormGradientsKeepTheInputDtypes) {
  const Tensor x = bf16_of(testing::random_tensor(Shape{4, 6}, 140));
  const Tensor g = bf16_of(testing::random_tensor(Shape{6}, 141)),
               b32 = testing::random_tensor(Shape{6}, 142);
  const Tensor g32 = testing::random_tensor(Shape{6}, 143);
  autodiff::Tape tape(false, true);
  tape.watch(x);
  tape.watch(g32);
  const Tensor y = ops::layer_norm(x, g32, b32);
  tape.stop_recording();
  const Tensor dy = bf16_of(testing::random_tensor(Shape{4, 6}, 144));
  std::vector<Tensor> d = tape.gradient(y, {x, g32}, autodiff::Unconnected::kZero, dy);
  EXPECT_EQ(d[0].dtype(), DType::kBFloat16);
  EXPECT_EQ(d[1].dtype(), DType::kFloat32);
  (void)g;
}

// mean, max, min and top_k of bfloat16 have gradients (in bfloat16), as TF's: the float32 gradients of
// the same (exactly representable) values, rounded; max's ties share the gradient as in float32.
TEST(BFloat16Nn, ReductionsAndTopKHaveGradients) {
  const Tensor x = bf16_of(testing::make(Shape{2, 3}, {0.5f, -1.25f, 0.5f, 2.0f, 3.0f, -0.75f}));
  const Tensor xr = ops::cast(x, DType::kFloat32);
  const std::vector<std::pair<const char *, std::function<Tensor(const Tensor &)>>> fns = {
      {"mean", [](const Tensor &t) { return ops::mean(t, {1}); }},
      {"max", [](const Tensor &t) { return ops::max(t, {1}); }},
      {"min",
       [](const Tensor &t) {
         return ops::min(t, {0, 1}, true);
       }},
      {"top_k", [](const Tensor &t) { return ops::top_k(t, 2).values; }}};
  for (const auto &[name, f] : fns) {
    auto grad = [&](const Tensor &in) {
      autodiff::Tape tape(false, true);
      tape.watch(in);
      const Tensor y = f(in);
      tape.stop_recording();
      const Tensor seed = ops::cast(ops::fill(y.shape(), 3.0), in.dtype());
      return tape.gradient(y, {in}, autodiff::Unconnected::kNone, seed)[0];
    };
    const Tensor got = grad(x);
    ASSERT_TRUE(got.defined()) << name;
    ASSERT_EQ(got.dtype(), DType::kBFloat16) << name;
    EXPECT_EQ(values<float>(ops::cast(got, DType::kFloat32)),
              values<float>(ops::cast(bf16_of(grad(xr)), DType::kFloat32)))
        << name;
    EXPECT_EQ(ops::top_k(x, 2).values.dtype(), DType::kBFloat16);
  }
}

// pad's gradient in every floating dtype (it once recorded float32 only, so a ZeroPadding layer under
// mixed_bfloat16 cut the gradient to the layers before it), and dropout of bfloat16 and float64 as TF's
// (x times the scale in x's dtype, then the keep mask of the float32 draws).
TEST(BFloat16Nn, PadAndDropoutTakeEveryFloatingDtype) {
  const Tensor x32 = testing::make(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor w = testing::random_tensor(Shape{4, 7}, 170);
  for (const DType dt : {DType::kBFloat16, DType::kFloat64}) {
    const Tensor x = ops::cast(x32, dt);
    for (const ops::PadMode mode : {ops::PadMode::kConstant, ops::PadMode::kReflect, ops::PadMode::kSymmetric}) {
      auto grad = [&](const Tensor &in) {
        autodiff::Tape tape(false, true);
        tape.watch(in);
        const Tensor y = ops::cast(ops::pad(in, {1, 1, 2, 2}, mode), DType::kFloat32);
        const Tensor loss = ops::sum(ops::mul(y, w));
        return tape.gradient(loss, {in}, autodiff::Unconnected::kNone)[0];
      };
      const Tensor g = grad(x);
      ASSERT_TRUE(g.defined()) << dtype_name(dt);
      EXPECT_EQ(g.dtype(), dt);
      const std::vector<float> got = values<float>(ops::cast(g, DType::kFloat32));
      const std::vector<float> want = values<float>(grad(x32));
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.02f * (1 + std::fabs(want[i])));
    }
    const std::vector<float> base = values<float>(ops::stateless_dropout(x32, 0.5f, {4, 5}));
    const Tensor y = ops::stateless_dropout(x, 0.5f, {4, 5});
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_EQ(values<float>(ops::cast(y, DType::kFloat32)), base);
    autodiff::Tape tape(false, true);
    tape.watch(x);
    const Tensor loss = ops::sum(ops::cast(ops::dropout(x, 0.25f, true, 7), DType::kFloat32));
    const Tensor g = tape.gradient(loss, {x}, autodiff::Unconnected::kNone)[0];
    ASSERT_TRUE(g.defined());
    for (float v : values<float>(ops::cast(g, DType::kFloat32))) EXPECT_TRUE(v == 0.0f || std::fabs(v - 4.0f / 3) < 0.01f);
  }
}

// The window ops and the fused cross-entropies take bfloat16 operands as TF does: the float32 op on the
// bfloat16 values, rounded once (exactly that here), with bfloat16 gradients that are the float32 ones
// rounded. moments too (composed of ops that take bfloat16).
TEST(BFloat16Nn, WindowOpsAndCrossEntropiesComputeInFloat32) {
  using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
  const Tensor x4 = testing::random_tensor(Shape{2, 5, 4, 3}, 180),
               f4 = testing::random_tensor(Shape{3, 2, 3, 2}, 181);
  const Tensor x5 = testing::random_tensor(Shape{1, 3, 4, 3, 2}, 182),
               f5 = testing::random_tensor(Shape{2, 2, 2, 2, 3}, 183);
  const Tensor x3 = testing::random_tensor(Shape{2, 6, 3}, 184),
               f3 = testing::random_tensor(Shape{3, 3, 2}, 185);
  const Tensor logits = testing::random_tensor(Shape{4, 5}, 186),
               probs = ops::softmax(testing::random_tensor(Shape{4, 5}, 187));
  const Tensor labels = testing::make_typed<int32_t>(Shape{4}, {0, 4, 2, 1});
  const std::vector<int64_t> s1 = {1, 1}, s21 = {2, 1}, s3 = {1, 2, 1}, d3 = {1, 1, 1};
  const std::vector<std::tuple<const char *, Fn, std::vector<Tensor>>> cases = {
      {"conv2d",
       [&](const std::vector<Tensor> &t) { return ops::conv2d(t[0], t[1], s21, s1, ops::Padding::kSame); },
       {x4, f4}},
      {"depthwise_conv2d",
       [&](const std::vector<Tensor> &t) {
         return ops::depthwise_conv2d(t[0], t[1], s1, s1, ops::Padding::kValid);
       },
       {x4, f4}},
      {"conv2d_transpose",
       [&](const std::vector<Tensor> &t) {
         return ops::conv2d_transpose(t[0], t[1], {2, 10, 4, 2}, s21, s1, ops::Padding::kSame);
       },
       {x4, ops::transpose(f4, {0, 1, 3, 2})}},
      {"conv1d",
       [&](const std::vector<Tensor> &t) { return ops::conv1d(t[0], t[1], 2, 1, ops::Padding::kSame); },
       {x3, f3}},
      {"max_pool2d",
       [&](const std::vector<Tensor> &t) {
         return ops::max_pool2d(t[0], {2, 2}, {1, 2}, ops::Padding::kSame);
       },
       {x4}},
      {"avg_pool2d",
       [&](const std::vector<Tensor> &t) {
         return ops::avg_pool2d(t[0], {3, 2}, {2, 1}, ops::Padding::kSame);
       },
       {x4}},
      {"conv3d",
       [&](const std::vector<Tensor> &t) { return ops::conv3d(t[0], t[1], s3, d3, ops::Padding::kSame); },
       {x5, f5}},
      {"conv3d_transpose",
       [&](const std::vector<Tensor> &t) {
         return ops::conv3d_transpose(t[0], t[1], {1, 3, 4, 3, 2}, s3, d3, ops::Padding::kSame);
       },
       {ops::conv3d(x5, f5, s3, d3, ops::Padding::kSame), f5}},
      {"max_pool3d",
       [&](const std::vector<Tensor> &t) {
         return ops::max_pool3d(t[0], {2, 2, 2}, {1, 1, 2}, ops::Padding::kSame);
       },
       {x5}},
      {"avg_pool3d",
       [&](const std::vector<Tensor> &t) {
         return ops::avg_pool3d(t[0], {2, 3, 1}, {2, 1, 1}, ops::Padding::kSame);
       },
       {x5}},
      {"sparse_softmax_cross_entropy_with_logits",
       [&](const std::vector<Tensor> &t) {
         return ops::sparse_softmax_cross_entropy_with_logits(labels, t[0]);
       },
       {logits}},
      {"softmax_cross_entropy_with_logits",
       [&](const std::vector<Tensor> &t) { return ops::softmax_cross_entropy_with_logits(t[1], t[0], -1); },
       {logits, probs}},
      {"sigmoid_cross_entropy_with_logits",
       [&](const std::vector<Tensor> &t) { return ops::sigmoid_cross_entropy_with_logits(t[1], t[0]); },
       {logits, probs}},
      {"moments",
       [&](const std::vector<Tensor> &t) {
         return ops::moments(t[0], {0, 2}, false).variance;
       },
       {x3}},
  };
  for (const auto &[name, f, inputs] : cases) {
    std::vector<Tensor> b, r;  // bfloat16 inputs, and their values in float32
    for (const Tensor &t : inputs) {
      b.push_back(bf16_of(t));
      r.push_back(ops::cast(b.back(), DType::kFloat32));
    }
    auto run = [&](const std::vector<Tensor> &in, Tensor *y) {
      autodiff::Tape tape(false, true);
      for (const Tensor &t : in) tape.watch(t);
      *y = f(in);
      const Tensor loss = ops::sum(ops::cast(*y, DType::kFloat32));
      return tape.gradient(loss, std::vector<autodiff::GradientSource>(in.begin(), in.end()),
                           autodiff::Unconnected::kNone);
    };
    Tensor yb, yr;
    const std::vector<Tensor> gb = run(b, &yb), gr = run(r, &yr);
    ASSERT_EQ(yb.dtype(), DType::kBFloat16) << name;
    if (std::string(name) != "moments") expect_same_bits(yb, bf16_of(yr), name);
    for (size_t i = 0; i < gb.size(); ++i) {
      ASSERT_TRUE(gb[i].defined()) << name << " input " << i;
      EXPECT_EQ(gb[i].dtype(), DType::kBFloat16) << name;
      const std::vector<float> g = values<float>(ops::cast(gb[i], DType::kFloat32)), w = values<float>(gr[i]);
      float scale = 0;
      for (float v : w) scale = std::max(scale, std::fabs(v));
      for (size_t k = 0; k < g.size(); ++k)
        EXPECT_NEAR(g[k], w[k], 0.02f * scale + 1e-6f) << name << " " << k;
    }
  }
}

// bfloat16 softmax gradients are computed in float32 (from the rounded output): within a few
// bfloat16 steps of the float32 gradient.
TEST(BFloat16Nn, SoftmaxGradientsComputeInFloat32) {
  const Tensor x32 = testing::random_tensor(Shape{3, 5}, 160, -2.0f, 2.0f);
  const Tensor x = bf16_of(x32), xr = ops::cast(x, DType::kFloat32);
  const Tensor dy32 = testing::random_tensor(Shape{3, 5}, 161);
  const Tensor dy = bf16_of(dy32), dyr = ops::cast(dy, DType::kFloat32);
  for (bool log : {false, true}) {
    auto grad = [&](const Tensor &in, const Tensor &seed) {
      autodiff::Tape tape(false, true);
      tape.watch(in);
      const Tensor y = log ? ops::log_softmax(in) : ops::softmax(in);
      tape.stop_recording();
      return tape.gradient(y, {in}, autodiff::Unconnected::kZero, seed)[0];
    };
    const Tensor got = grad(x, dy), want = grad(xr, dyr);
    ASSERT_EQ(got.dtype(), DType::kBFloat16);
    const std::vector<float> g = values<float>(ops::cast(got, DType::kFloat32)), w = values<float>(want);
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(g[i], w[i], 0.03f * (0.1f + std::fabs(w[i]))) << log << " " << i;
  }
}

TEST(FloatDtypesNn, ErrorsNameOpArgumentAndDtypes) {
  const Tensor x64 = rand64(Shape{2, 3}, 150);
  const Tensor x32 = testing::random_tensor(Shape{2, 3}, 151);
  testing::expect_error([&] { ops::matmul(x64, ops::cast(x32, DType::kFloat32), false, true); },
                        Code::kInvalidArgument, {"matmul", "float64", "float32"});
  testing::expect_error(
      [&] { ops::layer_norm(x64, ops::cast(rand64(Shape{3}, 1), DType::kFloat32), rand64(Shape{3}, 2)); },
      Code::kInvalidArgument, {"layer_norm", "gamma", "float32[3]", "expected float64"});
  testing::expect_error([&] { ops::softmax(ops::cast(x32, DType::kInt32)); }, Code::kInvalidArgument,
                        {"softmax", "'x'", "int32", "float32 or bfloat16 or float64"});
  testing::expect_error([&] { ops::sigmoid_cross_entropy_with_logits(x32, x64); }, Code::kInvalidArgument,
                        {"sigmoid_cross_entropy_with_logits", "labels", "float32[2, 3]", "expected float64"});
  testing::expect_error([&] { ops::top_k(ops::cast(x32, DType::kBool), 1); }, Code::kInvalidArgument,
                        {"top_k", "bool"});
}

// ---- float64 gradients by central differences ----

// The tape's gradient of sum(f(inputs) * w) against central differences of that sum (step h).
void check_gradients_f64(const char *name, const std::function<Tensor(const std::vector<Tensor> &)> &f,
                         const std::vector<Tensor> &inputs, double tol = 1e-7, double h = 1e-5) {
  std::vector<Tensor> analytic;
  Tensor w;
  {
    autodiff::Tape tape(false, true);
    for (const Tensor &x : inputs) tape.watch(x);
    const Tensor y = f(inputs);
    ASSERT_EQ(y.dtype(), DType::kFloat64) << name;
    w = rand64(y.shape(), 999, -1.0, 1.0);
    tape.stop_recording();
    analytic = tape.gradient(y, inputs, autodiff::Unconnected::kZero, w);
  }
  auto objective = [&](const std::vector<Tensor> &xs) {
    const std::vector<double> y = values<double>(f(xs)), wv = values<double>(w);
    LD s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += static_cast<LD>(y[i]) * wv[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    ASSERT_TRUE(analytic[k].defined()) << name << " input " << k;
    ASSERT_EQ(analytic[k].dtype(), DType::kFloat64) << name << " input " << k;
    const std::vector<double> base = values<double>(inputs[k]);
    for (size_t i = 0; i < base.size(); ++i) {
      std::vector<Tensor> xs = inputs;
      std::vector<double> v = base;
      v[i] = base[i] + h;
      xs[k] = make_typed(inputs[k].shape(), v);
      const LD up = objective(xs);
      v[i] = base[i] - h;
      xs[k] = make_typed(inputs[k].shape(), v);
      const double numeric = static_cast<double>((up - objective(xs)) / (2 * h));
      EXPECT_NEAR(analytic[k].data<double>()[i], numeric, tol * (1.0 + std::fabs(numeric)))
          << name << ": d/d input " << k << " element " << i;
    }
  }
}

using Fn = std::function<Tensor(const std::vector<Tensor> &)>;

// Rules that need only these ops, cast and the array ops.
TEST(Float64Gradients, CentralDifferences) {
  const std::vector<std::pair<const char *, std::pair<std::vector<Shape>, Fn>>> cases = {
      {"sum", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::sum(v[0], {1}); }}},
      {"matmul",
       {{Shape{3, 4}, Shape{4, 2}}, [](const std::vector<Tensor> &v) { return ops::matmul(v[0], v[1]); }}},
      {"matmul_tt",
       {{Shape{2, 4, 3}, Shape{2, 4}},
        [](const std::vector<Tensor> &v) { return ops::matmul(v[0], v[1], true, true); }}},
      {"cumsum",
       {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::cumsum(v[0], 1, true, true); }}},
      {"layer_norm",
       {{Shape{3, 5}, Shape{5}, Shape{5}},
        [](const std::vector<Tensor> &v) { return ops::layer_norm(v[0], v[1], v[2]); }}},
      {"batch_norm",
       {{Shape{4, 3}, Shape{3}, Shape{3}},
        [](const std::vector<Tensor> &v) {
          return ops::batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true).y;
        }}},
      {"sparse_xent",
       {{Shape{3, 4}},
        [](const std::vector<Tensor> &v) {
          return ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>(Shape{3}, {0, 3, 1}),
                                                               v[0]);
        }}},
  };
  unsigned seed = 200;
  for (const auto &[name, c] : cases) {
    std::vector<Tensor> inputs;
    for (const Shape &s : c.first) inputs.push_back(rand64(s, seed++));
    check_gradients_f64(name, c.second, inputs);
  }
}

// Rules written with elementwise ops (mul, sub, exp, equal...), all in float64.
TEST(Float64Gradients, CentralDifferencesThroughElementwiseOps) {
  const std::vector<std::pair<const char *, std::pair<std::vector<Shape>, Fn>>> cases = {
      {"mean", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::mean(v[0], {0}); }}},
      {"max", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::max(v[0], {1}); }}},
      {"reduce_prod",
       {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::reduce_prod(v[0], {1}); }}},
      {"softmax", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::softmax(v[0], 0); }}},
      {"log_softmax", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::log_softmax(v[0]); }}},
      {"logsumexp",
       {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::reduce_logsumexp(v[0], {1}); }}},
      {"moments_var",
       {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::moments(v[0], {0}).variance; }}},
      {"l2_normalize",
       {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::l2_normalize(v[0], {1}); }}},
      {"top_k", {{Shape{3, 4}}, [](const std::vector<Tensor> &v) { return ops::top_k(v[0], 2).values; }}},
      {"floormod",
       {{Shape{3}, Shape{3}}, [](const std::vector<Tensor> &v) { return ops::floormod(v[0], v[1]); }}},
      {"softmax_xent",
       {{Shape{3, 4}, Shape{3, 4}},
        [](const std::vector<Tensor> &v) { return ops::softmax_cross_entropy_with_logits(v[0], v[1]); }}},
      {"sigmoid_xent",
       {{Shape{3, 4}, Shape{3, 4}},
        [](const std::vector<Tensor> &v) { return ops::sigmoid_cross_entropy_with_logits(v[0], v[1]); }}},
      {"layer_norm_second_order",
       {{Shape{2, 3}, Shape{3}, Shape{3}},
        [](const std::vector<Tensor> &v) {
          autodiff::Tape inner(false, true);
          inner.watch(v[0]);
          const Tensor y = ops::layer_norm(v[0], v[1], v[2]);
          return inner.gradient(ops::sum(ops::mul(y, y)), {v[0]}, autodiff::Unconnected::kZero)[0];
        }}},
  };
  unsigned seed = 300;
  for (const auto &[name, c] : cases) {
    std::vector<Tensor> inputs;
    for (const Shape &s : c.first) inputs.push_back(rand64(s, seed++, 0.5, 2.0));
    check_gradients_f64(name, c.second, inputs);
  }
}

}  // namespace
}  // namespace kiln

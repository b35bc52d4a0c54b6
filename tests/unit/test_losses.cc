// Fused cross-entropy losses against double-precision references (including confident logits of
// +-100 and -inf logits), their errors, and finite-difference gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace testing;  // NOLINT

constexpr float kInf = std::numeric_limits<float>::infinity();

// log(sum_j exp(x_j)) - x_label in long double.
double ref_sparse(const std::vector<float> &row, int64_t label) {
  long double m = -INFINITY;
  for (float v : row) m = std::max<long double>(m, v);
  long double s = 0;
  for (float v : row) s += std::exp(static_cast<long double>(v) - m);
  return static_cast<double>(std::log(s) + m - row[static_cast<size_t>(label)]);
}

TEST(Losses, SparseMatchesReferenceAtLargeMagnitudes) {
  // Rows: ordinary, confident (+-100), label on a non-maximal logit, a -inf logit, 1 class.
  std::vector<std::vector<float>> rows = {{0.5f, -1.25f, 2.0f},
                                          {100.0f, -100.0f, 0.0f},
                                          {100.0f, -100.0f, 0.0f},
                                          {-kInf, 3.0f, 1.0f},
                                          {20.0f, 20.0f, 20.0f}};
  std::vector<int64_t> labels = {2, 0, 2, 1, 1};
  std::vector<float> flat;
  for (auto &r : rows) flat.insert(flat.end(), r.begin(), r.end());
  Tensor loss =
      ops::sparse_softmax_cross_entropy_with_logits(make_typed<int64_t>({5}, labels), make({5, 3}, flat));
  ASSERT_EQ(loss.shape(), Shape({5}));
  for (size_t i = 0; i < rows.size(); ++i) {
    double want = ref_sparse(rows[i], labels[i]);
    EXPECT_NEAR(loss.data<float>()[i], want, 1e-6 * (1 + std::fabs(want))) << "row " << i;
  }
  // The confident row's loss is exp(-100) (about 3.7e-44, a denormal), not rounded to 0.
  EXPECT_GT(loss.data<float>()[1], 0.0f);
  EXPECT_NEAR(loss.data<float>()[1] / 3.7200760e-44f, 1.0f, 0.1f);
  // A -inf logit on the label gives +inf (TF); all -inf gives NaN.
  Tensor l2 = ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({2}, {0, 0}),
                                                            make({2, 2}, {-kInf, 1.0f, -kInf, -kInf}));
  EXPECT_EQ(l2.data<float>()[0], kInf);
  EXPECT_TRUE(std::isnan(l2.data<float>()[1]));
}

// Within a few float ulps of a long double reference, at every magnitude from 1e-3 to 3e4 (and
// the float limit), on both sides of the parallel threshold. exp(-|d|) terms down to the denormal
// range must survive: they are the whole loss of a confident, correct prediction.
bool close_ulps(float got, long double want, const char *what, size_t i) {
  const long double tol = 4 * std::numeric_limits<float>::epsilon() * std::fabs(want) + 1e-44L;
  if (std::isinf(want) ? got == want : std::fabs(got - want) <= tol) return true;
  ADD_FAILURE() << what << " element " << i << ": " << got << " vs " << static_cast<double>(want);
  return false;
}

// lse(x) - x[k] in long double, as (max - x[k]) + log1p(the other terms): the plain
// m + log(s) - x[k] would itself round the tiny losses of confident rows away.
long double ref_lse_minus(const float *x, int64_t n, int64_t k) {
  int64_t at = 0;
  for (int64_t j = 1; j < n; ++j)
    if (x[j] > x[at]) at = j;
  const long double m = x[at];
  long double s = 0;
  for (int64_t j = 0; j < n; ++j)
    if (j != at) s += std::exp(static_cast<long double>(x[j]) - m);
  return (m - x[k]) + std::log1p(s);
}

TEST(Losses, LargeMagnitudeSweepWithinUlps) {
  for (int64_t rows : {int64_t(64), int64_t(8192)}) {  // 8192 * 5 logits: the threaded path
    const int64_t classes = 5;
    std::vector<float> x(size_t(rows * classes)), z(x.size());
    std::vector<int32_t> labels(static_cast<size_t>(rows));
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const float scale = std::pow(10.0f, -3.0f + 7.5f * float(r % 64) / 63.0f);  // 1e-3 .. 3e4
      float zsum = 0;
      for (int64_t j = 0; j < classes; ++j) {
        x[size_t(r * classes + j)] = scale * u(gen);
        zsum += z[size_t(r * classes + j)] = u(gen) + 1.0f;
      }
      for (int64_t j = 0; j < classes; ++j) z[size_t(r * classes + j)] /= zsum;
      labels[size_t(r)] = int32_t(r % classes);
    }
    x[0] = 3.0e38f;  // the float limit: the row is still finite
    x[1] = -3.0e38f;
    Tensor xt = make({rows, classes}, x), zt = make({rows, classes}, z);
    Tensor sparse = ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({rows}, labels), xt);
    Tensor dense = ops::softmax_cross_entropy_with_logits(zt, xt);
    Tensor sig = ops::sigmoid_cross_entropy_with_logits(zt, xt);
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = x.data() + r * classes;
      const long double want = ref_lse_minus(row, classes, labels[size_t(r)]);
      if (!close_ulps(sparse.data<float>()[r], want, "sparse", size_t(r))) break;
      long double d = 0;
      for (int64_t j = 0; j < classes; ++j)
        d += static_cast<long double>(z[size_t(r * classes + j)]) * ref_lse_minus(row, classes, j);
      // The dense sum cancels nothing (all terms >= 0), so it stays within a few ulps too.
      if (!close_ulps(dense.data<float>()[r], d, "dense", size_t(r))) break;
    }
    for (size_t i = 0; i < x.size(); ++i) {
      const long double xv = x[i], zv = z[i];
      const long double want = std::max<long double>(xv, 0) - xv * zv + std::log1p(std::exp(-std::fabs(xv)));
      // x * z rounds once in float: allow that rounding on top of the ulps.
      const long double tol = std::fabs(xv * zv) * std::numeric_limits<float>::epsilon();
      if (std::fabs(sig.data<float>()[i] - want) >
          tol + 4 * std::numeric_limits<float>::epsilon() * std::fabs(want) + 1e-44L) {
        ADD_FAILURE() << "sigmoid element " << i << ": " << sig.data<float>()[i] << " vs " << double(want);
        break;
      }
    }
  }
}

// TF sums labels * (logsumexp - x) over every class, so a zero label times an infinite or NaN
// term is NaN; a -inf logit under a label of 1 is an infinite loss.
TEST(Losses, DenseSoftmaxCrossEntropySpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = make({3, 3}, {-inf, 0, 1, nan, 0, 1, -inf, 0, 1});
  const Tensor z = make({3, 3}, {0, 1, 0, 0, 0, 0, 1, 0, 0});
  const std::vector<float> got = values(ops::softmax_cross_entropy_with_logits(z, x));
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_TRUE(std::isnan(got[1]));
  EXPECT_EQ(got[2], inf);
}

TEST(Losses, SparseHigherRankAndEmpty) {
  Tensor x = random_tensor({2, 3, 4}, 3, -5, 5);
  Tensor y = make_typed<int32_t>({2, 3}, {0, 1, 2, 3, 3, 0});
  Tensor loss = ops::sparse_softmax_cross_entropy_with_logits(y, x);
  ASSERT_EQ(loss.shape(), Shape({2, 3}));
  Tensor ref = ops::neg(ops::sum(ops::mul(ops::one_hot(y, 4), ops::log_softmax(x)), {-1}));
  expect_near(loss, values(ref), 1e-5f);
  Tensor empty =
      ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({0}, {}), make({0, 4}, {}));
  EXPECT_EQ(empty.shape(), Shape({0}));
}

TEST(Losses, SparseLargeBatchUsesThreadsWithSameResult) {
  const int64_t rows = 5000, classes = 10;  // above kLossParallelThreshold
  Tensor x = random_tensor({rows, classes}, 9, -30, 30);
  std::vector<int32_t> lv(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) lv[size_t(i)] = int32_t(i % classes);
  Tensor loss = ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({rows}, lv), x);
  std::vector<float> xv = values(x);
  for (int64_t i = 0; i < rows; i += 97) {
    std::vector<float> row(xv.begin() + i * classes, xv.begin() + (i + 1) * classes);
    double want = ref_sparse(row, lv[size_t(i)]);
    EXPECT_NEAR(loss.data<float>()[i], want, 1e-6 * (1 + std::fabs(want)));
  }
}

TEST(Losses, SparseErrors) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_error(
      [&] {
        ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({2}, {0, 3}), x);
      },
      Code::kInvalidArgument,
      {"sparse_softmax_cross_entropy_with_logits: labels[1] = 3", "expected a label in [0, 3)"});
  expect_error(
      [&] {
        ops::sparse_softmax_cross_entropy_with_logits(make_typed<int64_t>({2}, {-1, 0}), x);
      },
      Code::kInvalidArgument, {"labels[0] = -1"});
  expect_error(
      [&] {
        ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({3}, {0, 0, 0}), x);
      },
      Code::kInvalidArgument, {"labels int32[3] and logits float32[2, 3] do not match"});
  expect_error(
      [&] {
        ops::sparse_softmax_cross_entropy_with_logits(make({2}, {0, 0}), x);
      },
      Code::kInvalidArgument, {"argument 'labels' is float32[2]", "int32 or int64"});
}

TEST(Losses, SoftmaxMatchesReference) {
  // Confident rows, a -inf logit with label 0 (NaN, as TF's 0 * inf), soft labels.
  std::vector<float> x = {100.0f, -100.0f, 0.0f, -kInf, 2.0f, 1.0f, 0.3f, -0.7f, 1.1f};
  std::vector<float> z = {1.0f, 0.0f, 0.0f, 0.0f, 0.75f, 0.25f, 0.2f, 0.3f, 0.5f};
  Tensor loss = ops::softmax_cross_entropy_with_logits(make({3, 3}, z), make({3, 3}, x));
  ASSERT_EQ(loss.shape(), Shape({3}));
  for (int r = 0; r < 3; ++r) {
    std::vector<float> row(x.begin() + r * 3, x.begin() + r * 3 + 3);
    double want = 0;
    for (int j = 0; j < 3; ++j)
      if (z[size_t(r * 3 + j)] != 0) want += z[size_t(r * 3 + j)] * ref_sparse(row, j);
    if (r == 1)
      EXPECT_TRUE(std::isnan(loss.data<float>()[r]));
    else
      EXPECT_NEAR(loss.data<float>()[r], want, 1e-6 * (1 + std::fabs(want))) << "row " << r;
  }
  EXPECT_GT(loss.data<float>()[0], 0.0f);  // exp(-100), not 0
  // axis 0 equals the transposed problem; labels broadcast.
  Tensor xs = random_tensor({4, 3}, 5, -3, 3), zs = random_tensor({4, 3}, 6, 0, 1);
  Tensor a0 = ops::softmax_cross_entropy_with_logits(zs, xs, 0);
  Tensor t = ops::softmax_cross_entropy_with_logits(ops::transpose(zs), ops::transpose(xs), -1);
  expect_near(a0, values(t), 1e-6f);
  Tensor zb = random_tensor({3}, 7, 0, 1);
  Tensor b = ops::softmax_cross_entropy_with_logits(zb, xs);
  Tensor bref = ops::softmax_cross_entropy_with_logits(ops::broadcast_to(zb, {4, 3}), xs);
  expect_near(b, values(bref), 1e-6f);
}

TEST(Losses, SigmoidMatchesReference) {
  std::vector<float> x = {-100.0f, 100.0f, 0.0f, 3.5f, -20.0f, 1e-3f};
  std::vector<float> z = {1.0f, 0.0f, 0.5f, 1.0f, 0.0f, 1.0f};
  Tensor loss = ops::sigmoid_cross_entropy_with_logits(make({6}, z), make({6}, x));
  for (size_t i = 0; i < x.size(); ++i) {
    long double xv = x[i], zv = z[i];
    long double want = std::max<long double>(xv, 0) - xv * zv + std::log1p(std::exp(-std::fabs(xv)));
    EXPECT_NEAR(loss.data<float>()[i], double(want), 1e-6 * (1 + std::fabs(double(want)))) << i;
  }
  // -20 with label 0: log1p(e^-20) = 2.06e-9, kept to full relative precision.
  EXPECT_NEAR(loss.data<float>()[4] / 2.0611537e-9f, 1.0f, 1e-5f);
  expect_error(
      [&] {
        ops::sigmoid_cross_entropy_with_logits(make({2}, {0, 1}), make({3}, {0, 1, 2}));
      },
      Code::kInvalidArgument, {"sigmoid_cross_entropy_with_logits: labels float32[2]", "same shape"});
  expect_error(
      [&] {
        ops::softmax_cross_entropy_with_logits(make({2}, {0, 1}), make({3}, {0, 1, 2}));
      },
      Code::kInvalidArgument, {"softmax_cross_entropy_with_logits"});
}

TEST(Losses, GradientsMatchCentralDifferences) {
  Tensor labels = make_typed<int32_t>({2, 3}, {0, 4, 2, 1, 3, 3});
  check_gradient_table(
      {
          {"sparse_softmax_cross_entropy_with_logits",
           {{2, 3, 5}},
           [labels](const std::vector<Tensor> &v) {
             return ops::sparse_softmax_cross_entropy_with_logits(labels, v[0]);
           }},
          {"softmax_cross_entropy_with_logits",
           {{4, 3}, {4, 3}},
           [](const std::vector<Tensor> &v) { return ops::softmax_cross_entropy_with_logits(v[0], v[1]); }},
          {"softmax_cross_entropy_with_logits axis 0",
           {{4, 3}, {4, 3}},
           [](const std::vector<Tensor> &v) {
             return ops::softmax_cross_entropy_with_logits(v[0], v[1], 0);
           }},
          {"sigmoid_cross_entropy_with_logits",
           {{3, 4}, {3, 4}},
           [](const std::vector<Tensor> &v) { return ops::sigmoid_cross_entropy_with_logits(v[0], v[1]); }},
      },
      400);
}

TEST(Losses, FusedGradientMatchesComposedAndKeepsTinyTerms) {
  // Without an outer tape the gradient is one fused kernel; with one it is built from ops. Both agree.
  Tensor x = random_tensor({6, 7}, 21, -8, 8), z = random_tensor({6, 7}, 22, 0, 1),
         w = random_tensor({6}, 23);
  Tensor labels = make_typed<int64_t>({6}, {0, 6, 3, 3, 1, 5});
  for (int dense = 0; dense < 2; ++dense) {
    auto loss = [&](const Tensor &xv) {
      return dense ? ops::softmax_cross_entropy_with_logits(z, xv)
                   : ops::sparse_softmax_cross_entropy_with_logits(labels, xv);
    };
    autodiff::Tape t1(false, true);
    t1.watch(x);
    Tensor l1 = loss(x);
    t1.stop_recording();
    Tensor fused = t1.gradient(l1, {x}, autodiff::Unconnected::kZero, w)[0];
    autodiff::Tape outer(false, true);  // records the backward pass, so the composed rule runs
    outer.watch(x);
    autodiff::Tape t2(false, true);
    t2.watch(x);
    Tensor l2 = loss(x);
    Tensor composed = t2.gradient(l2, {x}, autodiff::Unconnected::kZero, w)[0];
    expect_near(fused, values(composed), 1e-5f, dense ? "dense" : "sparse");
  }
  // A confident, correct row: d loss / d x_label = -(e^-100 + e^-200) / (1 + ...), about -3.7e-44, not 0.
  Tensor c = make({1, 3}, {100.0f, 0.0f, -100.0f});
  autodiff::Tape t(false, true);
  t.watch(c);
  Tensor l0 = ops::sparse_softmax_cross_entropy_with_logits(make_typed<int32_t>({1}, {0}), c);
  t.stop_recording();
  Tensor g = t.gradient(l0, {c}, autodiff::Unconnected::kZero)[0];
  EXPECT_LT(g.data<float>()[0], 0.0f);
  EXPECT_NEAR(g.data<float>()[0] / -3.7200760e-44f, 1.0f, 0.1f);
  EXPECT_GT(g.data<float>()[1], 0.0f);
}

TEST(Losses, SecondOrderThroughNestedTapes) {
  // d/dx of sum(d loss/dx * w): the gradient rule is made of ops, so an outer tape sees it.
  Tensor x = random_tensor({2, 4}, 11);
  Tensor labels = make_typed<int32_t>({2}, {1, 3});
  Tensor w = random_tensor({2, 4}, 12);
  auto first = [&](const Tensor &xv) {
    autodiff::Tape inner(false, true);
    inner.watch(xv);
    Tensor l = ops::sum(ops::sparse_softmax_cross_entropy_with_logits(labels, xv));
    return ops::sum(ops::mul(inner.gradient(l, {xv}, autodiff::Unconnected::kZero)[0], w));
  };
  autodiff::Tape outer(false, true);
  outer.watch(x);
  Tensor y = first(x);
  Tensor g = outer.gradient(y, {x}, autodiff::Unconnected::kZero)[0];
  ASSERT_TRUE(g.defined());
  std::vector<float> xv = values(x);
  const float eps = 1e-2f;
  for (size_t i = 0; i < xv.size(); ++i) {
    std::vector<float> up = xv, down = xv;
    up[i] += eps;
    down[i] -= eps;
    double numeric =
        (first(make({2, 4}, up)).item_as_double() - first(make({2, 4}, down)).item_as_double()) / (2 * eps);
    EXPECT_NEAR(g.data<float>()[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << i;
  }
}

// ---- CTC ----

// -log of the summed probability of every path of `frames` classes (rows of logits x, [frames,
// classes]) that collapses to `label`: repeats merged, then blanks dropped. By enumeration.
double ctc_enumerated(const std::vector<double> &x, int64_t frames, int64_t classes,
                      const std::vector<int64_t> &label, int64_t blank) {
  std::vector<double> p(x.size());
  for (int64_t t = 0; t < frames; ++t) {
    double m = x[size_t(t * classes)], s = 0;
    for (int64_t c = 1; c < classes; ++c) m = std::max(m, x[size_t(t * classes + c)]);
    for (int64_t c = 0; c < classes; ++c) s += std::exp(x[size_t(t * classes + c)] - m);
    for (int64_t c = 0; c < classes; ++c)
      p[size_t(t * classes + c)] = std::exp(x[size_t(t * classes + c)] - m) / s;
  }
  int64_t paths = 1;
  for (int64_t t = 0; t < frames; ++t) paths *= classes;
  double total = 0;
  for (int64_t k = 0; k < paths; ++k) {
    std::vector<int64_t> out;
    double prob = 1;
    int64_t rest = k, prev = -1;
    for (int64_t t = 0; t < frames; ++t, rest /= classes) {
      const int64_t c = rest % classes;
      prob *= p[size_t(t * classes + c)];
      if (c != prev && c != blank) out.push_back(c);
      prev = c;
    }
    if (out == label) total += prob;
  }
  return -std::log(total);
}

TEST(Ctc, MatchesEnumerationOverBlanksLengthsAndLayouts) {
  // Five samples of 5 frames and 3 classes: repeats that need a blank between them, no labels,
  // fewer frames than the tensor holds, and padding past label_length that is never read.
  const int64_t batch = 5, frames = 5, classes = 3, width = 3;
  Tensor x = ops::cast(random_tensor({batch, frames, classes}, 31, -3, 3), DType::kFloat64);
  const std::vector<int64_t> label_len = {2, 2, 0, 3, 1}, logit_len = {5, 3, 4, 5, 1};
  for (int64_t blank : {0, 1, 2, -1}) {
    const int64_t b0 = blank < 0 ? blank + classes : blank;
    const int64_t a = b0 == 0 ? 1 : 0, b = b0 == 2 ? 1 : 2;  // the two non-blank classes
    const std::vector<int64_t> labels = {a, b, 7, a, a, -4, b, b, b, b, a, b, a, 9, 9};
    for (bool time_major : {false, true}) {
      Tensor logits = time_major ? ops::transpose(x, {1, 0, 2}) : x;
      Tensor loss = ops::ctc_loss(make_typed<int64_t>({batch, width}, labels), logits,
                                  make_typed<int64_t>({batch}, label_len),
                                  make_typed<int32_t>({batch}, {5, 3, 4, 5, 1}), time_major, blank);
      ASSERT_EQ(loss.shape(), Shape({batch}));
      ASSERT_EQ(loss.dtype(), DType::kFloat64);
      const std::vector<double> xv = values<double>(x);
      for (int64_t i = 0; i < batch; ++i) {
        const std::vector<int64_t> label(labels.begin() + i * width,
                                         labels.begin() + i * width + label_len[size_t(i)]);
        const std::vector<double> rows(xv.begin() + i * frames * classes,
                                       xv.begin() + (i * frames + logit_len[size_t(i)]) * classes);
        const double want = ctc_enumerated(rows, logit_len[size_t(i)], classes, label, b0);
        const double got = loss.data<double>()[i];
        if (std::isinf(want))
          EXPECT_EQ(got, want) << "sample " << i << " blank " << blank;
        else
          EXPECT_NEAR(got, want, 1e-12 * (1 + std::fabs(want))) << "sample " << i << " blank " << blank;
      }
      // [a, a] fits its 3 frames only as a, blank, a.
      EXPECT_TRUE(std::isfinite(loss.data<double>()[1]));
    }
  }
}

TEST(Ctc, KnownValuesImpossibleAlignmentsAndGradient) {
  // Uniform logits over two classes: one label in two frames has the paths 11, _1, 1_ (3 of 4).
  Tensor uniform = ops::zeros({1, 2, 2}, DType::kFloat32);
  Tensor one = make_typed<int32_t>({1, 1}, {1});
  Tensor two = make_typed<int32_t>({1}, {2});
  EXPECT_NEAR(ops::ctc_loss(one, uniform, make_typed<int32_t>({1}, {1}), two, false).data<float>()[0],
              -std::log(0.75), 1e-6);
  // [1, 1] needs 1 _ 1: impossible in two frames (+inf, NaN gradient), exactly (1/2)^3 in three.
  Tensor repeat = make_typed<int32_t>({1, 2}, {1, 1});
  Tensor x2 = ops::zeros({1, 2, 2}, DType::kFloat32), x3 = ops::zeros({1, 3, 2}, DType::kFloat32);
  EXPECT_NEAR(ops::ctc_loss(repeat, x3, two, make_typed<int32_t>({1}, {3}), false).data<float>()[0],
              3 * std::log(2.0), 1e-6);
  autodiff::Tape tape(false, true);
  tape.watch(x2);
  Tensor impossible = ops::ctc_loss(repeat, x2, two, two, false);
  EXPECT_EQ(impossible.data<float>()[0], std::numeric_limits<float>::infinity());
  Tensor g = tape.gradient(impossible, {x2}, autodiff::Unconnected::kZero)[0];
  for (float v : values(g)) EXPECT_TRUE(std::isnan(v));
  // One frame, one label: softmax minus one-hot, and frames past logit_length get 0.
  autodiff::Tape tape2(false, true);
  Tensor x = make({1, 3, 2}, {0.3f, -0.2f, 5, 5, -7, 7});
  tape2.watch(x);
  Tensor l = ops::ctc_loss(one, x, make_typed<int32_t>({1}, {1}), make_typed<int32_t>({1}, {1}), false);
  const double p1 = 1 / (1 + std::exp(0.5));
  EXPECT_NEAR(l.data<float>()[0], -std::log(p1), 1e-6);
  std::vector<float> gv = values(tape2.gradient(l, {x}, autodiff::Unconnected::kZero)[0]);
  EXPECT_NEAR(gv[0], 1 - p1, 1e-6);
  EXPECT_NEAR(gv[1], p1 - 1, 1e-6);
  for (size_t i = 2; i < gv.size(); ++i) EXPECT_EQ(gv[i], 0.0f) << i;
  // No frames: the empty labelling has probability 1, any other 0.
  Tensor none = ops::ctc_loss(make_typed<int32_t>({2, 1}, {1, 1}), ops::zeros({2, 0, 2}, DType::kFloat32),
                              make_typed<int32_t>({2}, {0, 1}), make_typed<int32_t>({2}, {0, 0}), false);
  EXPECT_EQ(values(none), (std::vector<float>{0.0f, std::numeric_limits<float>::infinity()}));
}

TEST(Ctc, GradientsMatchCentralDifferences) {
  Tensor labels = make_typed<int32_t>({2, 3}, {1, 2, 2, 3, 0, 0});
  Tensor label_len = make_typed<int32_t>({2}, {3, 1}), logit_len = make_typed<int32_t>({2}, {5, 4});
  check_gradient_table(
      {
          {"ctc_loss batch-major",
           {{2, 5, 4}},
           [&](const std::vector<Tensor> &v) {
             return ops::ctc_loss(labels, v[0], label_len, logit_len, false, 0);
           }},
          {"ctc_loss time-major, blank last",
           {{5, 2, 4}},
           [&](const std::vector<Tensor> &v) {
             return ops::ctc_loss(ops::sub(labels, make_typed<int32_t>({}, {1})), v[0], label_len, logit_len,
                                  true, -1);
           }},
      },
      500);
}

TEST(Ctc, HugeLogitsKeepBoundedGradientsAndThreadsAgree) {
  // Every gradient is a probability difference in [-1, 1], even where the logits are 1e20.
  const int64_t batch = 40, frames = 60, classes = 12, width = 10;
  std::vector<int64_t> lv(static_cast<size_t>(batch * width)), ll(static_cast<size_t>(batch)),
      tl(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch * width; ++i) lv[size_t(i)] = 1 + (i * 7 + i / 3) % (classes - 1);
  for (int64_t b = 0; b < batch; ++b) ll[size_t(b)] = b % (width + 1), tl[size_t(b)] = frames - b % 7;
  Tensor labels = make_typed<int64_t>({batch, width}, lv);
  for (double scale : {1.0, 1e20}) {
    Tensor x = ops::mul(ops::cast(random_tensor({batch, frames, classes}, 41), DType::kFloat64),
                        ops::fill({}, scale, DType::kFloat64));
    auto run = [&] {
      autodiff::Tape tape(false, true);
      tape.watch(x);
      Tensor loss =
          ops::ctc_loss(labels, x, make_typed<int64_t>({batch}, ll), make_typed<int64_t>({batch}, tl), false);
      return std::make_pair(loss, tape.gradient(ops::sum(loss), {x}, autodiff::Unconnected::kZero)[0]);
    };
    const int saved = num_threads();
    set_num_threads(1);
    const auto one = run();
    set_num_threads(2);
    const auto two = run();
    set_num_threads(saved);
    EXPECT_TRUE(same_bits(one.first, two.first)) << scale;
    EXPECT_TRUE(same_bits(one.second, two.second)) << scale;
    for (double v : values<double>(one.second)) ASSERT_TRUE(v >= -1 && v <= 1) << v << " at scale " << scale;
  }
}

TEST(Ctc, BFloat16RunsAsFloat32) {
  Tensor x = random_tensor({2, 4, 3}, 51, -2, 2);
  Tensor labels = make_typed<int32_t>({2, 2}, {1, 2, 2, 2});
  Tensor ll = make_typed<int32_t>({2}, {2, 1}), tl = make_typed<int32_t>({2}, {4, 3});
  Tensor bf = ops::ctc_loss(labels, ops::cast(x, DType::kBFloat16), ll, tl, false);
  ASSERT_EQ(bf.dtype(), DType::kBFloat16);
  Tensor f32 =
      ops::ctc_loss(labels, ops::cast(ops::cast(x, DType::kBFloat16), DType::kFloat32), ll, tl, false);
  EXPECT_TRUE(same_bits(bf, ops::cast(f32, DType::kBFloat16)));
}

TEST(Ctc, Errors) {
  Tensor x = ops::zeros({2, 4, 3}, DType::kFloat32);
  Tensor labels = make_typed<int32_t>({2, 2}, {1, 2, 2, 0});
  Tensor two = make_typed<int32_t>({2}, {2, 1}), four = make_typed<int32_t>({2}, {4, 4});
  auto run = [&](const Tensor &l, const Tensor &logits, const Tensor &ll, const Tensor &tl,
                 int64_t blank = 0) { return [=] { ops::ctc_loss(l, logits, ll, tl, false, blank); }; };
  expect_error(run(make_typed<int32_t>({2, 2}, {1, 2, 0, 2}), x, two, four), Code::kInvalidArgument,
               {"labels[1, 0] = 0 is the blank index", "within label_length[1] = 1"});
  expect_error(run(make_typed<int32_t>({2, 2}, {1, 3, 2, 0}), x, two, four), Code::kInvalidArgument,
               {"labels[0, 1] = 3 is outside the classes", "[0, 3)"});
  expect_error(run(labels, x, make_typed<int32_t>({2}, {3, 1}), four), Code::kInvalidArgument,
               {"label_length[0] = 3 is out of range; expected [0, 2]"});
  expect_error(run(labels, x, two, make_typed<int64_t>({2}, {4, -1})), Code::kInvalidArgument,
               {"logit_length[1] = -1 is out of range; expected [0, 4]"});
  expect_error(run(labels, x, make_typed<int32_t>({3}, {1, 1, 1}), four), Code::kInvalidArgument,
               {"label_length is int32[3]; expected shape [2]"});
  expect_error(run(labels, x, two, make({2}, {4, 4})), Code::kInvalidArgument,
               {"logit_length", "int32 or int64"});
  expect_error(run(make({2, 2}, {1, 2, 2, 0}), x, two, four), Code::kInvalidArgument,
               {"labels", "int32 or int64"});
  expect_error(run(labels, ops::zeros({3, 4, 3}, DType::kFloat32), two, four), Code::kInvalidArgument,
               {"do not match", "[batch, frames, classes]"});
  expect_error(run(labels, ops::zeros({2, 4}, DType::kFloat32), two, four), Code::kInvalidArgument,
               {"do not match"});
  expect_error(run(labels, x, two, four, 3), Code::kInvalidArgument,
               {"blank_index 3 is out of range for 3 classes; expected [-3, 3)"});
  expect_error(run(make_typed<int32_t>({2, 0}, {}), ops::zeros({2, 4, 0}, DType::kFloat32),
                   make_typed<int32_t>({2}, {0, 0}), four),
               Code::kInvalidArgument, {"have 0 classes; expected at least 1"});
  expect_error(
      [&] {
        ops::ctc_loss(labels, ops::zeros({4, 3, 3}, DType::kFloat32), two, four, true, 0);
      },
      Code::kInvalidArgument, {"[frames, batch, classes] (logits_time_major)"});
}

TEST(CtcDecode, GreedyMergesRepeatsDropsBlanksAndTakesTheFirstOfTies) {
  // Frame maxima 1, 1, 0, 1, 2 (blank 0): merged 1 _ 1 2, unmerged 1 1 _ 1 2. Sample 1 uses two
  // frames, each a tie between class 0 and class 1: the first, as TF's RowMax, so the blank wins.
  Tensor x = make({2, 5, 3}, {0, 2, 1, 0, 3, 1, 4, 1, 2, 0, 5, 1, 0, 0, 6,  //
                              7, 7, 0, 7, 7, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9});
  Tensor lengths = make_typed<int32_t>({2}, {5, 2});
  auto [merged, score] = ops::ctc_decode(x, lengths);
  EXPECT_EQ(merged.shape(), Shape({1, 2, 5}));
  EXPECT_EQ(values<int32_t>(merged), (std::vector<int32_t>{1, 1, 2, -1, -1, -1, -1, -1, -1, -1}));
  EXPECT_EQ(values(score), (std::vector<float>{-20, -14}));
  auto [plain, unused] = ops::ctc_decode(x, lengths, "greedy", 100, 1, false);
  EXPECT_EQ(values<int32_t>(plain), (std::vector<int32_t>{1, 1, 1, 2, -1, -1, -1, -1, -1, -1}));
  // The blank last (mask_index -1): class 0 is a label now, and 2 the blank.
  auto [last, unused2] = ops::ctc_decode(x, lengths, "greedy", 100, 1, true, -1);
  EXPECT_EQ(values<int32_t>(last), (std::vector<int32_t>{1, 0, 1, -1, -1, 0, -1, -1, -1, -1}));
}

TEST(CtcDecode, BeamSearchWithoutPruningFindsTheMostProbableLabellings) {
  // Every prefix of 4 frames over two labels fits in 64 beams, so the beam search is exact: its
  // paths are the most probable labellings, scored by their log-probabilities (-ctc_loss).
  const int64_t frames = 4, classes = 3, blank = 1;
  Tensor x = ops::cast(random_tensor({1, frames, classes}, 61, -2, 2), DType::kFloat64);
  std::vector<std::pair<double, std::vector<int64_t>>> all;
  for (int64_t len = 0; len <= frames; ++len)
    for (int64_t k = 0; k < (int64_t{1} << len); ++k) {
      std::vector<int64_t> label;
      for (int64_t i = 0; i < len; ++i) label.push_back((k >> i) & 1 ? 2 : 0);
      const std::vector<int64_t> padded = len ? label : std::vector<int64_t>{0};
      const double loss =
          ops::ctc_loss(make_typed<int64_t>({1, int64_t(padded.size())}, padded), x,
                        make_typed<int64_t>({1}, {len}), make_typed<int64_t>({1}, {frames}), false, blank)
              .data<double>()[0];
      if (std::isfinite(loss)) all.push_back({-loss, label});
    }
  std::sort(all.begin(), all.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
  auto [paths, scores] =
      ops::ctc_decode(x, make_typed<int64_t>({1}, {frames}), "beam_search", 64, 3, true, blank);
  ASSERT_EQ(paths.shape(), Shape({3, 1, frames}));
  ASSERT_EQ(scores.shape(), Shape({1, 3}));
  for (int64_t p = 0; p < 3; ++p) {
    EXPECT_NEAR(scores.data<double>()[p], all[size_t(p)].first, 1e-12) << p;
    std::vector<int64_t> got;
    for (int64_t i = 0; i < frames; ++i)
      if (paths.data<int32_t>()[p * frames + i] >= 0) got.push_back(paths.data<int32_t>()[p * frames + i]);
    EXPECT_EQ(got, all[size_t(p)].second) << p;
  }
}

TEST(CtcDecode, SpecialValuesAndErrors) {
  Tensor x = make({2, 2, 3}, {0, 1, 2, 2, 1, 0, std::nanf(""), 0, 0, 0, 0, 0});
  Tensor both = make_typed<int32_t>({2}, {2, 2});
  auto [paths, scores] = ops::ctc_decode(x, both, "beam_search", 4, 2);
  EXPECT_EQ(values<int32_t>(paths)[2], -1);  // sample 1, a NaN logit: empty paths, NaN scores
  EXPECT_TRUE(std::isnan(scores.data<float>()[2]) && std::isnan(scores.data<float>()[3]));
  EXPECT_TRUE(std::isfinite(scores.data<float>()[0]));
  // -inf logits make prefixes impossible mid-search; one that comes back is listed once, and the
  // paths stay sorted by probability.
  const float ninf = -std::numeric_limits<float>::infinity();
  Tensor holes =
      make({1, 6, 3}, {.1f, .2f, 0, .3f, 0, .1f, 0, ninf, ninf, ninf, 0, ninf, 0, .5f, .2f, .4f, .1f, .3f});
  auto [unique, sorted] =
      ops::ctc_decode(holes, make_typed<int32_t>({1}, {6}), "beam_search", 100, 6, true, 2);
  std::set<std::vector<int32_t>> seen;
  for (int64_t p = 0; p < 6; ++p) {
    const int32_t *row = unique.data<int32_t>() + p * 6;
    EXPECT_TRUE(seen.insert(std::vector<int32_t>(row, row + 6)).second) << "path " << p << " repeats";
    if (p > 0) {
      EXPECT_GE(sorted.data<float>()[p - 1], sorted.data<float>()[p]) << p;
    }
  }
  auto run = [&](const Tensor &logits, const Tensor &lengths, const std::string &strategy, int64_t width,
                 int64_t top, int64_t mask = 0) {
    return [=] { ops::ctc_decode(logits, lengths, strategy, width, top, true, mask); };
  };
  expect_error(run(x, both, "beam", 4, 1), Code::kInvalidArgument,
               {"strategy 'beam' is not one of 'greedy', 'beam_search'"});
  expect_error(run(x, both, "beam_search", 2, 3), Code::kInvalidArgument,
               {"beam_width 2 and top_paths 3", "1 <= top_paths <= beam_width"});
  expect_error(run(x, both, "beam_search", 0, 0), Code::kInvalidArgument, {"1 <= top_paths <= beam_width"});
  // One frame of three classes has three labellings (none, 0's, 2's... with blank 1: none, 0, 2).
  expect_error(
      run(ops::zeros({1, 1, 3}, DType::kFloat32), make_typed<int32_t>({1}, {1}), "beam_search", 8, 4, 1),
      Code::kInvalidArgument, {"sample 0 has fewer than top_paths = 4 distinct paths"});
  expect_error(run(x, make_typed<int32_t>({2}, {3, 0}), "greedy", 1, 1), Code::kInvalidArgument,
               {"ctc_decode: sequence_lengths[0] = 3 is out of range; expected [0, 2]"});
  expect_error(run(x, both, "greedy", 1, 1, 3), Code::kInvalidArgument,
               {"ctc_decode: mask_index 3 is out of range for 3 classes"});
  expect_error(run(ops::zeros({2, 3}, DType::kFloat32), both, "greedy", 1, 1), Code::kInvalidArgument,
               {"expected logits [batch, frames, classes]"});
  expect_error(run(make_typed<int32_t>({1, 1, 1}, {0}), both, "greedy", 1, 1), Code::kInvalidArgument,
               {"argument 'inputs' is int32"});
}

}  // namespace
}  // namespace kiln

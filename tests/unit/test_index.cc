// Indexing and padding ops: gather with batch_dims, gather_nd, scatter_nd, tensor_scatter_nd_add,
// boolean_mask, one_hot with axis and dtype, pad in every mode. Reference loops written from TF's
// definitions (sizes on both sides of the parallel threshold), the gradient table (second order
// included), errors.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::check_gradient_table;
using testing::expect_error;
using testing::expect_near;
using testing::inner_gradient;
using testing::make;
using testing::make_bool;
using testing::make_typed;
using testing::random_tensor;
using testing::values;
using V = const std::vector<Tensor> &;
using Fn = std::function<Tensor(const std::vector<Tensor> &)>;
constexpr Code kBad = Code::kInvalidArgument;

// TF's source position for output position i of one padded axis (-1: the constant).
int64_t ref_source(int64_t i, int64_t dim, int64_t before, ops::PadMode mode) {
  int64_t j = i - before;
  if (j >= 0 && j < dim) return j;
  if (mode == ops::PadMode::kConstant) return -1;
  if (mode == ops::PadMode::kReflect) return j < 0 ? -j : 2 * (dim - 1) - j;
  return j < 0 ? -j - 1 : 2 * dim - 1 - j;
}

std::vector<float> ref_pad(const Tensor &x, const std::vector<int64_t> &p, ops::PadMode mode, float c) {
  const Shape &s = x.shape();
  std::vector<int64_t> out_dims;
  for (int a = 0; a < s.rank(); ++a) out_dims.push_back(s[a] + p[2 * a] + p[2 * a + 1]);
  const int64_t n = Shape(out_dims).num_elements();
  std::vector<float> out(static_cast<size_t>(n));
  const std::vector<float> xv = values(x);
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rest = flat, src = 0, stride = 1;
    bool constant = false;
    for (int a = s.rank() - 1; a >= 0; --a) {
      const int64_t i = rest % out_dims[a];
      rest /= out_dims[a];
      const int64_t j = ref_source(i, s[a], p[2 * a], mode);
      if (j < 0) constant = true;
      src += j * stride;
      stride *= s[a];
    }
    out[static_cast<size_t>(flat)] = constant ? c : xv[static_cast<size_t>(src)];
  }
  return out;
}

TEST(Pad, EveryModeMatchesTheReferenceOnBothSidesOfTheThreadThreshold) {
  struct Case {
    Shape shape;
    std::vector<int64_t> paddings;
  };
  const std::vector<Case> cases = {
      {{5}, {2, 3}},          {{3, 4}, {1, 2, 0, 3}},     {{2, 3, 4}, {0, 1, 2, 2, 3, 0}},
      {{1, 1}, {0, 1, 1, 0}}, {{300, 200}, {2, 1, 3, 4}},  // above the parallel threshold
  };
  for (const Case &c : cases)
    for (ops::PadMode mode : {ops::PadMode::kConstant, ops::PadMode::kReflect, ops::PadMode::kSymmetric}) {
      bool fits = true;
      for (int a = 0; a < c.shape.rank(); ++a) {
        const int64_t limit = mode == ops::PadMode::kReflect ? c.shape[a] - 1 : c.shape[a];
        if (mode != ops::PadMode::kConstant && (c.paddings[2 * a] > limit || c.paddings[2 * a + 1] > limit))
          fits = false;
      }
      if (!fits) continue;
      const Tensor x = random_tensor(c.shape, 3);
      const std::string what = c.shape.to_string() + " mode " + std::to_string(static_cast<int>(mode));
      expect_near(ops::pad(x, c.paddings, mode, -7.5), ref_pad(x, c.paddings, mode, -7.5f), 0, what);
      set_num_threads(1);
      expect_near(ops::pad(x, c.paddings, mode, -7.5), ref_pad(x, c.paddings, mode, -7.5f), 0,
                  what + " 1 thread");
      set_num_threads(2);
    }
}

TEST(Pad, OtherDTypesAndTheirConstants) {
  const Tensor x = make_typed<int64_t>({2}, {int64_t{1} << 40, -3});
  EXPECT_EQ(values<int64_t>(ops::pad(x, {1, 1}, ops::PadMode::kConstant, 5)),
            (std::vector<int64_t>{5, int64_t{1} << 40, -3, 5}));
  EXPECT_EQ(values<int64_t>(ops::pad(x, {1, 1}, ops::PadMode::kSymmetric)),
            (std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40, -3, -3}));
  const Tensor b = make_bool({2}, {1, 0});
  EXPECT_EQ(values<uint8_t>(ops::pad(b, {0, 2}, ops::PadMode::kConstant, 1)),
            (std::vector<uint8_t>{1, 0, 1, 1}));
  const Tensor u = make_typed<uint8_t>({1}, {9});
  expect_error(
      [&] {
        ops::pad(u, {1, 0}, ops::PadMode::kConstant, 256);
      },
      kBad, {"pad: constant_values 256 does not fit in uint8"});
  expect_error([&] { ops::pad(u, {1, 0}, ops::PadMode::kConstant, -1); }, kBad, {"does not fit in uint8"});
  // A scalar pads to itself.
  EXPECT_EQ(values<uint8_t>(ops::pad(make_typed<uint8_t>({}, {4}), {})), (std::vector<uint8_t>{4}));
}

TEST(Pad, Errors) {
  const Tensor x = random_tensor({2, 3}, 1);
  expect_error([&] { ops::pad(x, {1, 1}); }, kBad, {"pad", "float32[2, 3]", "expected 4 values"});
  expect_error(
      [&] {
        ops::pad(x, {0, 0, -1, 0});
      },
      kBad, {"pad", "[-1, 0] for dim 1", "expected values >= 0"});
  expect_error(
      [&] {
        ops::pad(x, {2, 0, 0, 0}, ops::PadMode::kReflect);
      },
      kBad, {"pad", "REFLECT", "<= 1 (dim - 1)"});
  expect_error(
      [&] {
        ops::pad(x, {0, 0, 0, 4}, ops::PadMode::kSymmetric);
      },
      kBad, {"SYMMETRIC", "<= 3 (dim)"});
  expect_error([&] { ops::pad(x, {0, 0, 0, INT64_MAX}); }, kBad, {"pad", "overflow"});
  expect_error([&] { ops::pad(x, {0, INT64_MAX / 4, 0, INT64_MAX / 4}); }, kBad, {"pad", "kiln's limit"});
  expect_error([&] { ops::pad(x, {0, 0, 0, 0}, static_cast<ops::PadMode>(7)); }, kBad, {"pad: mode 7"});
  // A result too big to hold is refused by the allocator, naming its size, before the per-axis
  // index maps are made (which once asked for 16 TB first and failed with a bare "out of memory");
  // an empty result needs no maps at all.
  const int64_t big = int64_t{1} << 40;
  try {
    ops::pad(x, {big, big, 0, 0});
    ADD_FAILURE() << "pad to [2^41 + 2, 3] succeeded";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("26388279066648 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ops::pad(random_tensor({0, 3}, 2), {0, 0, big, big}).shape(), Shape({0, 2 * big + 3}));
}

// out[b, ..., j, ...] = params[b, ..., indices[b, j], ...] by plain loops over a [batch, outer, n, inner]
// view.
TEST(Gather, BatchDimsMatchTheReference) {
  const Tensor params = random_tensor({2, 3, 4, 5}, 4);
  const Tensor idx = make_typed<int32_t>({2, 3, 2}, {3, 0, 1, 1, 2, 0, 0, 0, 3, 2, 1, 3});
  // batch_dims 1, axis 2: params [2 | 3 | 4 | 5], indices [2 | 6]
  Tensor y = ops::gather(params, idx, 2, 1);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3, 2, 5}));
  // batch_dims 2, axis 2: params [6 | 4 | 5] (batch over the first two dims), indices [6 | 2]
  Tensor z = ops::gather(params, idx, 2, 2);
  ASSERT_EQ(z.shape(), (Shape{2, 3, 2, 5}));
  const std::vector<float> p = values(params), yv = values(y), zv = values(z);
  const std::vector<int32_t> iv = values<int32_t>(idx);
  for (int b = 0; b < 2; ++b)
    for (int o = 0; o < 3; ++o)
      for (int j = 0; j < 6; ++j)
        for (int c = 0; c < 5; ++c)
          EXPECT_EQ(yv[static_cast<size_t>(((b * 3 + o) * 6 + j) * 5 + c)],
                    p[static_cast<size_t>(((b * 3 + o) * 4 + iv[static_cast<size_t>(b * 6 + j)]) * 5 + c)]);
  for (int b = 0; b < 6; ++b)
    for (int j = 0; j < 2; ++j)
      for (int c = 0; c < 5; ++c)
        EXPECT_EQ(zv[static_cast<size_t>((b * 2 + j) * 5 + c)],
                  p[static_cast<size_t>((b * 4 + iv[static_cast<size_t>(b * 2 + j)]) * 5 + c)]);
  expect_error([&] { ops::gather(params, idx, 1, 2); }, kBad, {"gather", "axis 1 is before batch_dims 2"});
  expect_error(
      [&] {
        ops::gather(params, make_typed<int32_t>({3, 1}, {0, 0, 0}), 1, 1);
      },
      kBad, {"gather", "differ in batch dim 0"});
}

TEST(GatherNd, MatchesTheReference) {
  const Tensor params = random_tensor({3, 4, 2}, 5);
  const std::vector<float> p = values(params);
  // K = 2: picks rows params[i, j, :]
  const Tensor idx = make_typed<int64_t>({2, 2, 2}, {2, 3, 0, 0, 1, 2, 2, 3});
  Tensor y = ops::gather_nd(params, idx);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 2}));
  const std::vector<int64_t> iv = values<int64_t>(idx);
  for (size_t r = 0; r < 4; ++r)
    for (size_t c = 0; c < 2; ++c)
      EXPECT_EQ(values(y)[r * 2 + c], p[static_cast<size_t>((iv[2 * r] * 4 + iv[2 * r + 1]) * 2) + c]);
  // K = 3: scalars
  expect_near(ops::gather_nd(params, make_typed<int32_t>({1, 3}, {2, 1, 1})), {p[(2 * 4 + 1) * 2 + 1]}, 0);
  // batch_dims 1: indices [3, 1] pick params[b, idx[b], :]
  Tensor b = ops::gather_nd(params, make_typed<int32_t>({3, 1}, {1, 3, 0}), 1);
  ASSERT_EQ(b.shape(), (Shape{3, 2}));
  expect_near(b, {p[2], p[3], p[(4 + 3) * 2], p[(4 + 3) * 2 + 1], p[16], p[17]}, 0);
  // any dtype moves
  EXPECT_EQ(values<int32_t>(ops::gather_nd(make_typed<int32_t>({2, 2}, {1, 2, 3, 4}),
                                           make_typed<int32_t>({2, 2}, {1, 0, 0, 1}))),
            (std::vector<int32_t>{3, 2}));
  expect_error(
      [&] {
        ops::gather_nd(params, make_typed<int32_t>({1, 4}, {0, 0, 0, 0}));
      },
      kBad, {"gather_nd", "K = 4", "expected 1 <= K <= 3"});
  expect_error(
      [&] {
        ops::gather_nd(params, make_typed<int32_t>({2}, {0, 4}));
      },
      kBad, {"gather_nd", "hold 4 at flat position 1", "out of range for dim 1", "[0, 4)"});
  expect_error(
      [&] {
        ops::gather_nd(params, make_typed<int32_t>({3, 1}, {0, 0, 0}), 2);
      },
      kBad, {"gather_nd", "batch_dims 2"});
  expect_error(
      [&] {
        ops::gather_nd(params, make_typed<int32_t>({2, 1}, {0, 0}), 1);
      },
      kBad, {"gather_nd", "differ in batch dim 0"});
}

TEST(ScatterNd, DuplicatesAccumulateAndTensorScatterAdds) {
  const Tensor idx = make_typed<int32_t>({4, 2}, {0, 1, 2, 0, 0, 1, 1, 1});
  const Tensor upd = make({4, 3}, {1, 2, 3, 10, 20, 30, 100, 200, 300, 5, 5, 5});
  Tensor y = ops::scatter_nd(idx, upd, {3, 2, 3});
  std::vector<float> want(18, 0.0f);
  for (int j = 0; j < 3; ++j) {
    want[static_cast<size_t>(3 + j)] = static_cast<float>((1 + 100) * (j + 1));
    want[static_cast<size_t>(12 + j)] = static_cast<float>(10 * (j + 1));
    want[static_cast<size_t>(9 + j)] = 5;
  }
  expect_near(y, want, 0);
  const Tensor base = random_tensor({3, 2, 3}, 6);
  std::vector<float> sum = values(base);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += want[i];
  expect_near(ops::tensor_scatter_nd_add(base, idx, upd), sum, 1e-6f);
  expect_error(
      [&] {
        ops::scatter_nd(idx, make({4, 2}, std::vector<float>(8)), {3, 2, 3});
      },
      kBad, {"scatter_nd", "float32[4, 2]", "expected updates of shape [4, 3]"});
  expect_error([&] { ops::scatter_nd(idx, upd, {2, 2, 3}); }, kBad, {"scatter_nd", "out of range for dim 0"});
  expect_error(
      [&] {
        ops::tensor_scatter_nd_add(base, idx, make({4}, {1, 2, 3, 4}));
      },
      kBad, {"tensor_scatter_nd_add", "expected updates of shape [4, 3]"});
}

TEST(BooleanMask, PicksTrueEntriesAlongAxis) {
  const Tensor x = make({2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  expect_near(ops::boolean_mask(x, make_bool({2, 3}, {1, 0, 0, 0, 1, 1})), {1, 2, 9, 10, 11, 12}, 0);
  Tensor y = ops::boolean_mask(x, make_bool({3}, {0, 1, 1}), 1);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 2}));
  expect_near(y, {3, 4, 5, 6, 9, 10, 11, 12}, 0);
  Tensor none = ops::boolean_mask(x, make_bool({2}, {0, 0}));
  EXPECT_EQ(none.shape(), (Shape{0, 3, 2}));
  expect_error(
      [&] {
        ops::boolean_mask(x, make_bool({3}, {1, 1, 1}));
      },
      kBad, {"boolean_mask", "does not match dims 0 to 0"});
  expect_error(
      [&] {
        ops::boolean_mask(x, make_bool({3, 2}, {1, 1, 1, 1, 1, 1}), 2);
      },
      kBad, {"boolean_mask", "axis 2"});
}

TEST(OneHot, AxisAndDType) {
  const Tensor idx = make_typed<int32_t>({2, 2}, {0, 2, 1, 5});
  Tensor y = ops::one_hot(idx, 3, 1.0, 0.0, 1);  // [2, 3, 2]
  ASSERT_EQ(y.shape(), (Shape{2, 3, 2}));
  expect_near(y, {1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0}, 0);
  Tensor z = ops::one_hot(idx, 3, 4, -1, 0, DType::kInt64);  // [3, 2, 2]
  EXPECT_EQ(values<int64_t>(z), (std::vector<int64_t>{4, -1, -1, -1, -1, -1, 4, -1, -1, 4, -1, -1}));
  Tensor b = ops::one_hot(make_typed<int64_t>({2}, {1, 0}), 2, 1, 0, -1, DType::kBool);
  EXPECT_EQ(values<uint8_t>(b), (std::vector<uint8_t>{0, 1, 1, 0}));
  Tensor bf = ops::one_hot(make_typed<int64_t>({1}, {1}), 2, 2.5, 0, -1, DType::kBFloat16);
  EXPECT_EQ(bf.dtype(), DType::kBFloat16);
  EXPECT_EQ(bf.item_as_double(1), 2.5);
  expect_error([&] { ops::one_hot(idx, 3, 1, 0, 3); }, kBad, {"one_hot", "axis 3", "expected -1 or 0 to 2"});
  expect_error([&] { ops::one_hot(idx, 3, 1e30, 0, -1, DType::kInt32); }, kBad, {"one_hot", "on_value"});
  expect_error([&] { ops::one_hot(idx, 3, 1e300, 0, -1, DType::kFloat32); }, kBad,
               {"one_hot", "on_value", "inf"});
  expect_error([&] { ops::one_hot(idx, 3, 1, -1e39, -1, DType::kBFloat16); }, kBad, {"one_hot", "off_value"});
  EXPECT_TRUE(std::isinf(ops::one_hot(idx, 3, std::numeric_limits<double>::infinity()).item_as_double(0) +
                         ops::one_hot(idx, 3, std::numeric_limits<double>::infinity()).item_as_double(1)));
  expect_error([&] { ops::one_hot(idx, int64_t{1} << 62); }, kBad, {"one_hot", "depth 4611686018427387904", "kiln's limit"});
}

TEST(IndexGradients, TableAgainstCentralDifferences) {
  const Tensor i_b = make_typed<int32_t>({2, 3}, {2, 0, 2, 1, 1, 0});
  const Tensor i_nd = make_typed<int64_t>({3, 2}, {1, 2, 0, 0, 1, 2});
  const Tensor i_nd_b = make_typed<int32_t>({2, 2, 1}, {1, 1, 0, 2});
  const Tensor mask = make_bool({3, 2}, {1, 0, 1, 1, 0, 1});
  const std::vector<testing::ShapeGradCase> cases = {
      {"gather batch_dims 1", {{2, 3, 2}}, [&](V x) { return ops::gather(x[0], i_b, 1, 1); }},
      {"gather batch_dims 1 axis 2", {{2, 2, 3}}, [&](V x) { return ops::gather(x[0], i_b, 2, 1); }},
      {"gather_nd K 2 repeated", {{2, 3, 2}}, [&](V x) { return ops::gather_nd(x[0], i_nd); }},
      {"gather_nd batch_dims 1", {{2, 3, 2}}, [&](V x) { return ops::gather_nd(x[0], i_nd_b, 1); }},
      {"scatter_nd duplicates",
       {{3, 2}},
       [&](V x) {
         return ops::scatter_nd(i_nd, x[0], {2, 3, 2});
       }},
      {"tensor_scatter_nd_add",
       {{2, 3}, {3}},
       [&](V x) { return ops::tensor_scatter_nd_add(x[0], i_nd, x[1]); }},
      {"boolean_mask axis 0", {{3, 2, 2}}, [&](V x) { return ops::boolean_mask(x[0], mask); }},
      {"boolean_mask axis 1", {{2, 3, 2}}, [&](V x) { return ops::boolean_mask(x[0], mask, 1); }},
      {"pad CONSTANT",
       {{2, 3}},
       [](V x) {
         return ops::pad(x[0], {1, 0, 2, 1}, ops::PadMode::kConstant, 3);
       }},
      {"pad REFLECT",
       {{3, 4}},
       [](V x) {
         return ops::pad(x[0], {2, 1, 3, 3}, ops::PadMode::kReflect);
       }},
      {"pad SYMMETRIC",
       {{2, 3}},
       [](V x) {
         return ops::pad(x[0], {2, 2, 0, 3}, ops::PadMode::kSymmetric);
       }},
      {"pad second order",
       {{3, 3}},
       inner_gradient(
           [](V x) {
             return ops::square(ops::pad(x[0], {1, 2, 2, 1}, ops::PadMode::kReflect));
           },
           0)},
      {"gather_nd second order",
       {{2, 3, 2}},
       inner_gradient([&](V x) { return ops::square(ops::gather_nd(x[0], i_nd)); }, 0)},
  };
  check_gradient_table(cases, 40u);
}

}  // namespace
}  // namespace kiln

// einsum against a naive reference (every assignment of label values, summed in double), on the
// contractions attention uses, plus errors and finite-difference gradients.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace testing;  // NOLINT

// Explicit equations with letters only.
std::vector<double> ref_einsum(const std::string &eq, const std::vector<Tensor> &in, Shape *out_shape) {
  const size_t arrow = eq.find("->");
  std::vector<std::string> terms;
  std::string lhs = eq.substr(0, arrow), out = eq.substr(arrow + 2);
  for (size_t s = 0;;) {
    size_t c = lhs.find(',', s);
    terms.push_back(lhs.substr(s, c == std::string::npos ? std::string::npos : c - s));
    if (c == std::string::npos) break;
    s = c + 1;
  }
  std::map<char, int64_t> size;
  for (size_t k = 0; k < terms.size(); ++k)
    for (size_t i = 0; i < terms[k].size(); ++i) size[terms[k][i]] = in[k].shape()[int(i)];
  std::vector<char> all;
  for (auto &[c, n] : size) all.push_back(c);
  *out_shape = Shape();
  for (char c : out) out_shape->push_back(size[c]);
  std::vector<double> r(size_t(out_shape->num_elements()), 0.0);
  std::map<char, int64_t> at;
  for (char c : all) at[c] = 0;
  auto offset = [&](const std::string &t, const Shape &s) {
    int64_t o = 0;
    for (size_t i = 0; i < t.size(); ++i) o = o * s[int(i)] + at[t[i]];
    return o;
  };
  while (true) {
    double p = 1;
    for (size_t k = 0; k < terms.size(); ++k) p *= in[k].data<float>()[offset(terms[k], in[k].shape())];
    r[size_t(offset(out, *out_shape))] += p;
    size_t i = 0;
    for (; i < all.size(); ++i) {
      if (++at[all[i]] < size[all[i]]) break;
      at[all[i]] = 0;
    }
    if (i == all.size()) break;
  }
  return r;
}

struct EinsumCase {
  std::string eq;
  std::vector<Shape> shapes;
};

const std::vector<EinsumCase> kCases = {
    {"bqhd,bkhd->bhqk", {{2, 3, 2, 4}, {2, 5, 2, 4}}},
    {"bhqk,bkhd->bqhd", {{2, 2, 3, 5}, {2, 5, 2, 4}}},
    {"ij,jk->ik", {{3, 4}, {4, 5}}},
    {"bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}},
    {"ij->ji", {{3, 4}}},
    {"ij->i", {{3, 4}}},
    {"ij->", {{3, 4}}},
    {"ij,kj->ik", {{3, 4}, {5, 4}}},  // transpose_b without a copy
    {"ji,jk->ik", {{4, 3}, {4, 5}}},  // transpose_a without a copy
    {"i,j->ij", {{3}, {4}}},          // outer product
    {"i,i->", {{5}, {5}}},            // dot
    {"bij,jk->bki", {{2, 3, 4}, {4, 5}}},
    {"abc,cd->d", {{2, 3, 4}, {4, 5}}},  // labels summed away before the matmul
    {"ij,kl->ikjl", {{2, 3}, {4, 2}}},
};

TEST(Einsum, MatchesNaiveReference) {
  unsigned seed = 40;
  for (const EinsumCase &c : kCases) {
    std::vector<Tensor> in;
    for (const Shape &s : c.shapes) in.push_back(random_tensor(s, seed++));
    Shape want_shape;
    std::vector<double> want = ref_einsum(c.eq, in, &want_shape);
    Tensor got = ops::einsum(c.eq, in);
    ASSERT_EQ(got.shape(), want_shape) << c.eq;
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got.data<float>()[i], want[i], 1e-5) << c.eq << " " << i;
  }
}

TEST(Einsum, EllipsisImplicitOutputAndSpaces) {
  Tensor a = random_tensor({2, 3, 4}, 1), b = random_tensor({4, 5}, 2);
  Tensor want = ops::matmul(a, ops::broadcast_to(b, {2, 4, 5}));
  expect_near(ops::einsum("...ij,...jk->...ik", {a, b}), values(want), 1e-5f);
  expect_near(ops::einsum("bij, jk", {a, b}), values(ops::transpose(want, {0, 1, 2})),
              1e-5f);                                                       // implicit: b i k
  Tensor c = random_tensor({1, 3, 4}, 3), d = random_tensor({2, 4, 5}, 4);  // ellipsis dims broadcast
  EXPECT_EQ(ops::einsum("...ij,...jk->...ik", {c, d}).shape(), Shape({2, 3, 5}));
  EXPECT_EQ(ops::einsum("ba", {random_tensor({2, 3}, 5)}).shape(), Shape({3, 2}));  // implicit: sorted
}

TEST(Einsum, Errors) {
  Tensor a = random_tensor({2, 3}, 1), b = random_tensor({4, 5}, 2);
  expect_error(
      [&] {
        ops::einsum("ij,jk->ik", {a, b});
      },
      Code::kInvalidArgument,
      {"einsum: equation 'ij,jk->ik' gives label j sizes 3 and 4", "expected equal sizes"});
  expect_error([&] { ops::einsum("ijk->i", {a}); }, Code::kInvalidArgument,
               {"labels operand 0 of shape [2, 3]"});
  expect_error([&] { ops::einsum("ij->iz", {a}); }, Code::kInvalidArgument, {"output label 'z' in no input"});
  expect_error([&] { ops::einsum("ij,jk", {a}); }, Code::kInvalidArgument, {"2 input terms for 1 operands"});
  expect_error([&] { ops::einsum("i1->i", {a}); }, Code::kInvalidArgument, {"has '1' in a term"});
  expect_error([&] { ops::einsum("ii->i", {random_tensor({2, 2}, 3)}); }, Code::kUnimplemented, {"diagonal"});
  expect_error([&] { ops::einsum("i,i,i->i", {b, b, b}); }, Code::kUnimplemented, {"3 operands"});
  expect_error([&] { ops::einsum("ij->jj", {a}); }, Code::kInvalidArgument, {"repeats output label 'j'"});
  expect_error(
      [&] {
        ops::einsum("ij->i", {make_typed<uint8_t>({1, 1}, {1})});
      },
      Code::kInvalidArgument, {"einsum: argument 'inputs[0]' is uint8"});
  expect_error(
      [&] {
        ops::einsum("ij,jk", {make_typed<int32_t>({1, 1}, {1}), a});
      },
      Code::kInvalidArgument, {"einsum", "different dtypes"});
}

// bfloat16 operands: float32's result rounded once (TF registers Einsum for bfloat16), differentiable.
TEST(Einsum, BFloat16IsTheRoundedFloat32Result) {
  const Tensor a = ops::cast(random_tensor({2, 3, 4}, 41), DType::kBFloat16),
               b = ops::cast(random_tensor({2, 4, 5}, 42), DType::kBFloat16);
  const Tensor got = ops::einsum("bij,bjk->bik", {a, b});
  ASSERT_EQ(got.dtype(), DType::kBFloat16);
  const Tensor want =
      ops::cast(ops::einsum("bij,bjk->bik", {ops::cast(a, DType::kFloat32), ops::cast(b, DType::kFloat32)}),
                DType::kBFloat16);
  EXPECT_EQ(std::memcmp(got.data<bfloat16>(), want.data<bfloat16>(), 2 * 3 * 5 * sizeof(bfloat16)), 0);
  autodiff::Tape tape(false, true);
  tape.watch(a);
  const Tensor y = ops::einsum("bij->b", {a});
  tape.stop_recording();
  EXPECT_EQ(tape.gradient(y, {a}, autodiff::Unconnected::kZero)[0].dtype(), DType::kBFloat16);
  expect_error(
      [&] {
        ops::einsum("ij,jk",
                    {ops::cast(random_tensor({1, 1}, 43), DType::kBFloat16), random_tensor({1, 1}, 44)});
      },
      Code::kInvalidArgument, {"einsum", "different dtypes", "bfloat16[1, 1]", "float32[1, 1]"});
}

// Integers, as TF's einsum: every case of the table, exactly (an int64 reference of small values).
TEST(Einsum, IntegersAreExact) {
  for (const EinsumCase &c : kCases) {
    std::vector<Tensor> ints, floats;
    unsigned seed = 1;
    for (const Shape &s : c.shapes) {
      const Tensor f = ops::round(ops::mul(random_tensor(s, seed++), testing::make({}, {9.0f})));
      floats.push_back(f);
      ints.push_back(ops::cast(f, DType::kInt64));
    }
    const Tensor got = ops::einsum(c.eq, ints), want = ops::einsum(c.eq, floats);
    ASSERT_EQ(got.dtype(), DType::kInt64) << c.eq;
    ASSERT_EQ(got.shape(), want.shape()) << c.eq;
    EXPECT_EQ(values<int64_t>(got), values<int64_t>(ops::cast(want, DType::kInt64))) << c.eq;
  }
}

TEST(Einsum, GradientsMatchCentralDifferences) {
  std::vector<ShapeGradCase> cases;
  for (const EinsumCase &c : kCases) {
    std::string eq = c.eq;
    cases.push_back(
        {"einsum " + eq, c.shapes, [eq](const std::vector<Tensor> &v) { return ops::einsum(eq, v); }});
  }
  cases.push_back({"einsum ellipsis", {{2, 2, 3}, {3, 2}}, [](const std::vector<Tensor> &v) {
                     return ops::einsum("...ij,...jk->...ik", v);
                   }});
  check_gradient_table(cases, 600);
}

}  // namespace
}  // namespace kiln

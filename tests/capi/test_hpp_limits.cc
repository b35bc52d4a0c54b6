// Sizes and values at the limits through kiln.hpp (issue 5, section 2): each must throw
// kiln::Error with the right code and a message naming the op and the offending value,
// never crash, hang or return a tensor with no memory behind it.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

#if defined(__SANITIZE_ADDRESS__)
// Allocations beyond memory must come back as NULL for kiln to report; ASan aborts by default.
extern "C" const char *__asan_default_options() { return "allocator_may_return_null=1"; }
#endif

namespace {

using kiln::DType;
using kiln::Padding;
using kiln::Tensor;

constexpr int64_t k62 = int64_t{1} << 62, k32 = int64_t{1} << 32, kMax = INT64_MAX;
constexpr kiln_status_code kInvalid = KILN_STATUS_INVALID_ARGUMENT;
constexpr kiln_status_code kExhausted = KILN_STATUS_RESOURCE_EXHAUSTED;

template <typename F>
void expect_error(F &&fn, kiln_status_code code, const std::string &op, const std::string &value) {
  try {
    fn();
    ADD_FAILURE() << "no kiln::Error; expected one naming '" << op << "' and '" << value << "'";
  } catch (const kiln::Error &e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.code(), code) << msg;
    EXPECT_NE(msg.find(op), std::string::npos) << "'" << msg << "' lacks '" << op << "'";
    EXPECT_NE(msg.find(value), std::string::npos) << "'" << msg << "' lacks '" << value << "'";
  }
}
#define EXPECT_LIMIT(stmt, code, op, value)               \
  do {                                                    \
    SCOPED_TRACE(#stmt);                                  \
    expect_error([&] { (void)(stmt); }, code, op, value); \
  } while (0)

TEST(HppLimits, CreationBeyondTheByteLimit) {
  EXPECT_LIMIT(kiln::zeros({k62}), kExhausted, "kiln_zeros", "18446744073709551616 bytes");
  EXPECT_LIMIT(kiln::ones({k62}), kExhausted, "kiln_ones", "4611686018427387904");
  EXPECT_LIMIT(kiln::fill({k62}, 2.0, DType::int64), kExhausted, "kiln_fill", "int64[4611686018427387904]");
  EXPECT_LIMIT(kiln::random_uniform({k62}), kExhausted, "kiln_random_uniform", "4611686018427387904");
  EXPECT_LIMIT(kiln::random_normal({k62}), kExhausted, "kiln_random_normal", "4611686018427387904");
  EXPECT_LIMIT(kiln::truncated_normal({k62}), kExhausted, "kiln_truncated_normal", "4611686018427387904");
  EXPECT_LIMIT(kiln::range(0, 4611686018427387904.0, 1, DType::int64), kExhausted, "kiln_range",
               "4611686018427387904");
  // Beyond 2^63 bytes (the old size-class loop never ended) and beyond any address space.
  EXPECT_LIMIT(kiln::zeros({(int64_t{1} << 60) + 1}, DType::int64), kExhausted, "kiln_zeros",
               "9223372036854775816");
  EXPECT_LIMIT(kiln::zeros({int64_t{1} << 59}), kExhausted, "kiln_zeros", "2305843009213693952 bytes");
}

TEST(HppLimits, OverflowingShapesAreInvalid) {
  EXPECT_LIMIT(kiln::zeros({k32, k32}), kInvalid, "kiln_zeros", "[4294967296, 4294967296]");
  EXPECT_LIMIT(kiln::zeros({0, k32, k32}), kInvalid, "kiln_zeros", "[0, 4294967296, 4294967296]");
  const int64_t dims[2] = {int64_t{1} << 31, int64_t{1} << 31};
  EXPECT_LIMIT(Tensor::from_data(DType::float32, {dims[0], dims[1]}, nullptr, 0), kInvalid,
               "kiln_tensor_create", "18446744073709551616 bytes");
  Tensor empty = kiln::zeros({0});
  EXPECT_LIMIT(kiln::reshape(empty, {k32, k32}), kInvalid, "reshape", "[4294967296, 4294967296]");
  EXPECT_LIMIT(kiln::reshape(empty, {-1, k32, k32}), kInvalid, "reshape", "4294967296");
  EXPECT_LIMIT(kiln::broadcast_to(kiln::zeros({1}), {k62}), kExhausted, "kiln_broadcast_to",
               "4611686018427387904");
  EXPECT_LIMIT(kiln::tile(kiln::zeros({4}), {k62}), kInvalid, "tile", "4 x 4611686018427387904");
  EXPECT_LIMIT(kiln::tile(kiln::zeros({1}), {k62}), kExhausted, "kiln_tile", "4611686018427387904");
  EXPECT_LIMIT(kiln::one_hot(Tensor::from_vector<int32_t>({0, 1}, {2}), k62), kInvalid, "one_hot",
               "depth 4611686018427387904");
  EXPECT_LIMIT(kiln::matmul(kiln::zeros({int64_t{1} << 40, 0}), kiln::zeros({0, int64_t{1} << 40})), kInvalid,
               "matmul", "[1099511627776, 1099511627776]");
  EXPECT_LIMIT(kiln::concat({kiln::zeros({k62, 0}), kiln::zeros({k62, 0})}, 0), kInvalid, "concat",
               "4611686018427387904");
  Tensor half = kiln::zeros({int64_t{1} << 61, 0});
  EXPECT_LIMIT(kiln::stack({half, half, half, half}), kInvalid, "stack", "[4, 2305843009213693952, 0]");
}

TEST(HppLimits, SplitAndSliceSizesCannotWrap) {
  Tensor x = kiln::range(0, 4);
  EXPECT_LIMIT(kiln::split(x, {k62 + 1, k62 + 1, k62 + 1, k62 + 1}), kInvalid, "split",
               "4611686018427387905");
  EXPECT_LIMIT(kiln::split(x, {kMax, 5}), kInvalid, "split", "9223372036854775807");
  EXPECT_LIMIT(kiln::slice(x, {1}, {kMax}), kInvalid, "slice", "9223372036854775807");
  EXPECT_LIMIT(kiln::slice(x, {kMax}, {1}), kInvalid, "slice", "9223372036854775807");
  EXPECT_EQ(kiln::slice(x, {1}, {-1}).to_vector<float>(), (std::vector<float>{1, 2, 3}));  // still fine
}

TEST(HppLimits, HugeWindows) {
  Tensor x = kiln::reshape(kiln::range(0, 50), {1, 5, 5, 2}), f = kiln::ones({2, 2, 2, 1});
  // INT64_MAX strides: one window at the top left, as a stride of 4 gives here.
  const std::vector<float> want = kiln::conv2d(x, f, {4, 4}).to_vector<float>();
  EXPECT_EQ(kiln::conv2d(x, f, {kMax, kMax}).to_vector<float>(), want);
  EXPECT_EQ(kiln::conv2d(x, f, {kMax, kMax}, {1, 1}, Padding::same).to_vector<float>(), want);
  EXPECT_EQ(kiln::max_pool2d(x, {2, 2}, {kMax, kMax}).to_vector<float>(),
            kiln::max_pool2d(x, {2, 2}, {4, 4}).to_vector<float>());
  EXPECT_EQ(kiln::avg_pool2d(x, {2, 2}, {kMax, kMax}, Padding::same).to_vector<float>(),
            kiln::avg_pool2d(x, {2, 2}, {4, 4}).to_vector<float>());
  EXPECT_LIMIT(kiln::conv2d(x, f, {1, 1}, {kMax, kMax}), kInvalid, "conv2d", "9223372036854775807");
  EXPECT_LIMIT(kiln::conv2d(x, f, {1, 1}, {int64_t{1} << 40, 1}, Padding::same), kInvalid, "conv2d",
               "1099511627776");
  EXPECT_LIMIT(kiln::max_pool2d(x, {kMax, kMax}, {1, 1}), kInvalid, "max_pool2d", "9223372036854775807");
  EXPECT_LIMIT(kiln::avg_pool2d(x, {kMax, 1}, {1, 1}, Padding::same), kInvalid, "avg_pool2d",
               "9223372036854775807");
}

TEST(HppLimits, RangeNeedsFiniteArguments) {
  const double nan = std::nan(""), inf = INFINITY;
  EXPECT_LIMIT(kiln::range(0, nan, 1, DType::int64), kInvalid, "range", "limit nan");
  EXPECT_LIMIT(kiln::range(nan, 3), kInvalid, "range", "start nan");
  EXPECT_LIMIT(kiln::range(0, inf, 1, DType::int32), kInvalid, "range", "limit inf");
  EXPECT_LIMIT(kiln::range(-inf, 0), kInvalid, "range", "start -inf");
  EXPECT_LIMIT(kiln::range(0, 3, nan), kInvalid, "range", "delta nan");
  EXPECT_LIMIT(kiln::range(0, 1e30, 1e-30), kInvalid, "range", "inf elements, more than");
}

TEST(HppLimits, ThreadCountIsBounded) {
  const int before = kiln::num_threads();
  EXPECT_LIMIT(kiln::set_num_threads(1 << 30), kInvalid, "set_num_threads", "1073741824");
  EXPECT_LIMIT(kiln::set_num_threads(INT_MAX), kInvalid, "set_num_threads", "2147483647");
  EXPECT_EQ(kiln::num_threads(), before);
  kiln::set_num_threads(1);  // small counts stay accepted
  EXPECT_EQ(kiln::num_threads(), 1);
  kiln::set_num_threads(before);
}

TEST(HppLimits, NegativeEnumValues) {
  Tensor x = kiln::ones({1, 2, 2, 1});
  for (int v : {-1, INT_MIN}) {
    const std::string n = std::to_string(v);
    EXPECT_LIMIT(kiln::zeros({2}, static_cast<DType>(v)), kInvalid, "zeros: dtype", n);
    EXPECT_LIMIT(kiln::cast(x, static_cast<DType>(v)), kInvalid, "cast: dtype", n);
    EXPECT_LIMIT(kiln::max_pool2d(x, {1, 1}, {1, 1}, static_cast<Padding>(v)), kInvalid,
                 "max_pool2d: padding", n);
    kiln::GradientTape tape(true);
    tape.watch(x);
    Tensor y = x * x;
    EXPECT_LIMIT(tape.gradient(y, {x}, static_cast<kiln::Unconnected>(v)), kInvalid, "unconnected", n);
  }
}

}  // namespace

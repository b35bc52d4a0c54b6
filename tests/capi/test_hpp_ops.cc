// Every kiln.hpp function and operator, through the shared library alone: results checked
// against hand values or plain reference loops, defaults exercised, and bad input checked to
// throw kiln::Error with the right code and a message naming the op and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

using kiln::Dims;
using kiln::DType;
using kiln::Tensor;
using Floats = std::vector<float>;

// Runs fn, which must throw kiln::Error with `code` and a message holding `fragment`.
template <typename F>
void expect_error(F &&fn, kiln_status_code code, const std::string &fragment) {
  try {
    fn();
    ADD_FAILURE() << "no kiln::Error; expected one with '" << fragment << "'";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "'" << e.what() << "' lacks '" << fragment << "'";
  }
}
#define EXPECT_KILN_ERROR(stmt, code, fragment)          \
  do {                                                   \
    SCOPED_TRACE(#stmt);                                 \
    expect_error([&] { (void)(stmt); }, code, fragment); \
  } while (0)
constexpr kiln_status_code kInvalid = KILN_STATUS_INVALID_ARGUMENT;

// Checks a float32 tensor's shape and values (tolerance relative to 1 + |want|).
void expect_floats(const Tensor &t, const Dims &shape, const Floats &want, double tol = 1e-6) {
  ASSERT_TRUE(t.valid());
  ASSERT_EQ(t.dtype(), DType::float32);
  ASSERT_EQ(t.shape(), shape);
  std::vector<float> got = t.to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "element " << i;
}

// 0, 1, 2, ... as a float32 tensor of `shape`.
Tensor iota(const Dims &shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return kiln::reshape(kiln::range(0, static_cast<double>(n)), shape);
}

// ------------------------------------------------------------------ library

TEST(HppOps, LibraryFunctions) {
  EXPECT_EQ(kiln::version(), KILN_VERSION_STRING);
  EXPECT_EQ(kiln::abi_version(), KILN_ABI_VERSION);
  kiln::set_num_threads(2);
  EXPECT_EQ(kiln::num_threads(), 2);
  EXPECT_KILN_ERROR(kiln::set_num_threads(0), kInvalid, "set_num_threads: got 0");
  EXPECT_EQ(kiln::num_threads(), 2);

  kiln::set_seed(3);
  Tensor a = kiln::random_uniform({8});
  kiln::set_seed(3);
  EXPECT_EQ(kiln::random_uniform({8}).to_vector<float>(), a.to_vector<float>());

  kiln::PrimitiveCacheStats before = kiln::primitive_cache_stats();
  (void)kiln::matmul(kiln::ones({16, 16}), kiln::ones({16, 16}));  // over 8 rows: oneDNN's (1-8: gemv)
  kiln::PrimitiveCacheStats after = kiln::primitive_cache_stats();
  EXPECT_GT(after.hits + after.misses, before.hits + before.misses);
  EXPECT_GE(after.size, 1);

  kiln::AllocatorStats s0 = kiln::allocator_stats();
  (void)kiln::zeros({100});
  (void)kiln::zeros({100});
  kiln::AllocatorStats s1 = kiln::allocator_stats();
  EXPECT_GE(s1.system_allocs + s1.cache_hits, s0.system_allocs + s0.cache_hits + 2);

  // Once released, nothing is cached: the next buffer comes from the system.
  kiln::allocator_release_cached();
  EXPECT_EQ(kiln::allocator_release_cached(), 0u);
  kiln::AllocatorStats s2 = kiln::allocator_stats();
  (void)kiln::zeros({100});
  kiln::AllocatorStats s3 = kiln::allocator_stats();
  EXPECT_EQ(s3.system_allocs, s2.system_allocs + 1);
  EXPECT_EQ(s3.cache_hits, s2.cache_hits);
}

// ------------------------------------------------------------------ tensors

TEST(HppOps, Bfloat16Value) {
  EXPECT_EQ(kiln::bfloat16(1.0f).bits, 0x3F80);
  EXPECT_EQ(kiln::bfloat16(-2.0f).bits, 0xC000);
  EXPECT_EQ(kiln::bfloat16(1.00390625f).bits, 0x3F80);  // a tie rounds to even
  EXPECT_EQ(kiln::bfloat16(1.01171875f).bits, 0x3F82);
  EXPECT_EQ(static_cast<float>(kiln::bfloat16::from_bits(0x3FC0)), 1.5f);
  EXPECT_TRUE(std::isnan(static_cast<float>(kiln::bfloat16(std::nanf("")))));
}

template <typename T>
void round_trip(const std::vector<T> &values, DType dtype) {
  SCOPED_TRACE(static_cast<int>(dtype));
  Tensor t = Tensor::from_vector(values, {2, 2});
  EXPECT_EQ(t.dtype(), dtype);
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.shape(), (Dims{2, 2}));
  EXPECT_EQ(t.num_elements(), 4);
  EXPECT_EQ(t.byte_size(), 4 * sizeof(T));
  std::vector<T> back = t.to_vector<T>();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(std::memcmp(&back[i], &values[i], sizeof(T)), 0) << i;
  Tensor s = Tensor::scalar(values[1]);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.shape(), Dims{});
  T one = s.item<T>();
  EXPECT_EQ(std::memcmp(&one, &values[1], sizeof(T)), 0);
  // Reading with another element type is refused, not reinterpreted.
  if (dtype == DType::float32)
    EXPECT_KILN_ERROR(t.to_vector<int32_t>(), kInvalid, "the tensor is float32; cannot read it as int32");
  else
    EXPECT_KILN_ERROR(t.to_vector<float>(), kInvalid, "; cannot read it as float32");
}

TEST(HppOps, FromVectorToVectorItemEveryDtype) {
  round_trip<float>({1.5f, -2, 0, 3e8f}, DType::float32);
  round_trip<int32_t>({-1, 0, 7, 2147483647}, DType::int32);
  round_trip<int64_t>({-5, 1LL << 40, 0, 3}, DType::int64);
  round_trip<uint8_t>({0, 128, 255, 1}, DType::uint8);
  round_trip<kiln::bfloat16>(
      {kiln::bfloat16(1.0f), kiln::bfloat16(-2.0f), kiln::bfloat16(0.5f), kiln::bfloat16(3.0f)},
      DType::bfloat16);

  Tensor b = Tensor::from_vector<bool>({true, false, false, true}, {2, 2});
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_EQ(b.byte_size(), 4u);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, false, false, true}));
  EXPECT_EQ(b.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 0, 1}));  // bool reads as 0/1 bytes
  EXPECT_TRUE(Tensor::scalar(true).item<bool>());
  EXPECT_FALSE(Tensor::scalar(false).item<bool>());
  EXPECT_KILN_ERROR(Tensor::from_vector<uint8_t>({1, 0}, {2}).to_vector<bool>(), kInvalid,
                    "the tensor is uint8; cannot read it as bool");
  EXPECT_KILN_ERROR(b.to_vector<float>(), kInvalid, "the tensor is bool; cannot read it as float32");

  // A braced list deduces the element type (the kiln.hpp example).
  Tensor x = Tensor::from_vector({1.f, 2.f, 3.f}, {3});
  EXPECT_EQ(x.dtype(), DType::float32);
  EXPECT_EQ(x.to_vector<float>(), (Floats{1, 2, 3}));
  EXPECT_EQ(Tensor::from_vector({int64_t{4}, int64_t{5}}, {2}).dtype(), DType::int64);

  float raw[3] = {4, 5, 6};
  Tensor d = Tensor::from_data(DType::float32, {3}, raw, sizeof raw);
  raw[0] = 0;  // a copy was taken
  EXPECT_EQ(d.to_vector<float>(), (Floats{4, 5, 6}));
  EXPECT_EQ(d.data<float>()[2], 6.0f);
  EXPECT_EQ(Tensor::from_data(DType::float32, {0, 3}, nullptr, 0).num_elements(), 0);

  EXPECT_KILN_ERROR(Tensor::from_data(DType::float32, {2, 3}, raw, sizeof raw), kInvalid, "24 bytes");
  EXPECT_KILN_ERROR(Tensor::from_vector<float>({1, 2, 3}, {2}), kInvalid, "needs 8 bytes");
  EXPECT_KILN_ERROR(Tensor::from_data(static_cast<DType>(9), {1}, raw, 4), kInvalid,
                    "Tensor::from_data: dtype 9 is not valid");
  EXPECT_KILN_ERROR(x.item<float>(), kInvalid, "Tensor::item: tensor has 3 elements; expected 1");
  Tensor empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_EQ(empty.get(), nullptr);
  EXPECT_KILN_ERROR(empty.dtype(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.rank(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.shape(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.num_elements(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.byte_size(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.data<float>(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.to_vector<float>(), kInvalid, "the tensor is empty");
  EXPECT_KILN_ERROR(empty.item<float>(), kInvalid, "the tensor is empty");
  // other empty handles' names: a kiln::Error too, not a std::string made from NULL
  EXPECT_KILN_ERROR(kiln::Variable().name(), kInvalid, "kiln::Variable::name: the handle is empty");
  EXPECT_KILN_ERROR(kiln::Layer().name(), kInvalid, "kiln::Layer::name: the handle is empty");
  EXPECT_KILN_ERROR(kiln::Layer().class_name(), kInvalid, "kiln::Layer::class_name: the handle is empty");
  EXPECT_KILN_ERROR(kiln::summary::SummaryWriter().logdir(), kInvalid, "kiln::SummaryWriter::logdir");
}

TEST(HppOps, TensorHandleOwnership) {
  Tensor a = Tensor::from_vector<float>({1, 2}, {2});
  Tensor copy(a);
  EXPECT_NE(copy.get(), a.get());                  // its own handle ...
  EXPECT_EQ(copy.data<float>(), a.data<float>());  // ... on the same value
  Tensor assigned;
  assigned = a;
  EXPECT_EQ(assigned.data<float>(), a.data<float>());
  assigned = assigned;  // self-assignment keeps the value
  EXPECT_EQ(assigned.to_vector<float>(), (Floats{1, 2}));

  Tensor moved(std::move(copy));
  EXPECT_FALSE(copy.valid());  // NOLINT(bugprone-use-after-move): moved-from tensors are empty
  Tensor target = kiln::zeros({3});
  target = std::move(moved);
  EXPECT_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(target.to_vector<float>(), (Floats{1, 2}));

  // release() hands the C handle over; Tensor(handle) adopts one.
  kiln_tensor *h = target.release();
  EXPECT_FALSE(target.valid());
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(kiln_tensor_get_num_elements(h), 2);
  Tensor adopted(h);
  EXPECT_EQ(adopted.get(), h);
  EXPECT_EQ(adopted.to_vector<float>(), (Floats{1, 2}));
}

// ----------------------------------------------------------------- creation

TEST(HppOps, Creation) {
  expect_floats(kiln::zeros({2}), {2}, {0, 0});
  EXPECT_EQ(kiln::zeros({2}, DType::int64).to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  expect_floats(kiln::ones({}), {}, {1});
  EXPECT_EQ(kiln::ones({2}, DType::boolean).to_vector<bool>(), (std::vector<bool>{true, true}));
  expect_floats(kiln::fill({3}, 2.5), {3}, {2.5f, 2.5f, 2.5f});
  EXPECT_EQ(kiln::fill({2}, 1.5, DType::bfloat16).to_vector<kiln::bfloat16>()[1].bits, 0x3FC0);
  EXPECT_EQ(kiln::fill({2}, 7, DType::uint8).to_vector<uint8_t>(), (std::vector<uint8_t>{7, 7}));
  expect_floats(kiln::range(0, 3), {3}, {0, 1, 2});
  expect_floats(kiln::range(0, 5, 1.5), {4}, {0, 1.5f, 3, 4.5f});
  EXPECT_EQ(kiln::range(5, 0, -2, DType::int32).to_vector<int32_t>(), (std::vector<int32_t>{5, 3, 1}));

  Tensor u = kiln::random_uniform({2000});  // defaults: [0, 1), next op seed
  for (float v : u.to_vector<float>()) ASSERT_TRUE(v >= 0.0f && v < 1.0f);
  kiln::set_seed(4);
  Tensor u2 = kiln::random_uniform({2000}, -3, -2, 11);
  // TF2: the next call with op seed 11 differs; the sequence repeats after set_seed.
  EXPECT_NE(u2.to_vector<float>(), kiln::random_uniform({2000}, -3, -2, 11).to_vector<float>());
  kiln::set_seed(4);
  EXPECT_EQ(u2.to_vector<float>(), kiln::random_uniform({2000}, -3, -2, 11).to_vector<float>());
  EXPECT_NEAR(kiln::mean(u2).item<float>(), -2.5f, 0.05f);
  EXPECT_NEAR(kiln::mean(kiln::random_normal({4000})).item<float>(), 0.0f, 0.1f);
  Tensor n = kiln::random_normal({4000}, 5, 0.5f, 2);
  EXPECT_NEAR(kiln::mean(n).item<float>(), 5.0f, 0.05f);
  Tensor tn = kiln::truncated_normal({4000});
  EXPECT_LE(kiln::max(kiln::abs(tn)).item<float>(), 2.0f);
  EXPECT_LE(kiln::max(kiln::abs(kiln::truncated_normal({4000}, 1, 0.5f, 9) - 1.0f)).item<float>(),
            1.0f + 1e-6f);

  // Enum values outside kiln.h's are refused before they reach the C enums.
  EXPECT_KILN_ERROR(kiln::zeros({2}, static_cast<DType>(99)), kInvalid, "zeros: dtype 99 is not valid");
  EXPECT_KILN_ERROR(kiln::ones({2}, static_cast<DType>(0)), kInvalid, "ones: dtype 0 is not valid");
  EXPECT_KILN_ERROR(kiln::fill({2}, 1, static_cast<DType>(99)), kInvalid, "fill: dtype 99 is not valid");
  EXPECT_KILN_ERROR(kiln::range(0, 3, 1, static_cast<DType>(-1)), kInvalid, "range: dtype -1 is not valid");
  EXPECT_KILN_ERROR(kiln::range(0, 3, 1, DType::boolean), kInvalid, "range: dtype bool is not supported");
  EXPECT_KILN_ERROR(kiln::range(0, 3, 0), kInvalid, "range: delta is 0");
  EXPECT_KILN_ERROR(kiln::random_uniform({2}, 1, 0), kInvalid,
                    "random_uniform: minval 1 is greater than maxval 0");
  EXPECT_KILN_ERROR(kiln::random_normal({2}, 0, -1), kInvalid, "random_normal: stddev is -1");
  EXPECT_KILN_ERROR(kiln::truncated_normal({2}, 0, -1), kInvalid, "truncated_normal: stddev is -1");
}

// tf.random.uniform's dtype argument: floating dtypes with double bounds, integer ones with
// integer bounds in [minval, maxval); float32 gives random_uniform's values.
TEST(HppOps, RandomUniformDtypes) {
  kiln::set_seed(6);
  const std::vector<float> f = kiln::random_uniform({300}, -1, 1, 2).to_vector<float>();
  kiln::set_seed(6);
  EXPECT_EQ(kiln::random_uniform({300}, DType::float32, -1, 1, 2).to_vector<float>(), f);
  const Tensor d = kiln::random_uniform({3000}, DType::float64, 10, 12);
  EXPECT_EQ(d.dtype(), DType::float64);
  int not_float = 0;
  for (double v : d.to_vector<double>()) {
    ASSERT_TRUE(v >= 10 && v < 12) << v;
    not_float += static_cast<double>(static_cast<float>(v)) != v;
  }
  EXPECT_GT(not_float, 2990);
  const Tensor b = kiln::random_uniform({1000}, DType::bfloat16);
  EXPECT_EQ(b.dtype(), DType::bfloat16);
  for (float v : kiln::cast(b, DType::float32).to_vector<float>())
    ASSERT_TRUE(v >= 0 && v < 1 && v * 256 == std::floor(v * 256)) << v;
  std::vector<int> seen(10);
  for (int32_t v : kiln::random_uniform_int({2000}, DType::int32, -5, 5).to_vector<int32_t>()) {
    ASSERT_TRUE(v >= -5 && v < 5) << v;
    ++seen[static_cast<size_t>(v + 5)];
  }
  for (int c : seen) EXPECT_GT(c, 120);  // ~200 each
  const Tensor i = kiln::stateless_random_uniform_int({500}, {7, 8}, DType::int64, -(int64_t{1} << 40), 3);
  EXPECT_EQ(i.to_vector<int64_t>(),
            kiln::stateless_random_uniform_int({500}, {7, 8}, DType::int64, -(int64_t{1} << 40), 3)
                .to_vector<int64_t>());
  for (int64_t v : i.to_vector<int64_t>()) ASSERT_TRUE(v >= -(int64_t{1} << 40) && v < 3) << v;
  EXPECT_EQ(kiln::stateless_random_uniform({50}, {1, 2}, DType::float64, 0, 1).to_vector<double>(),
            kiln::stateless_random_uniform({50}, {1, 2}, DType::float64, 0, 1).to_vector<double>());
  EXPECT_KILN_ERROR(kiln::random_uniform_int({2}, DType::int64, 4, 4), kInvalid,
                    "random_uniform: minval 4 is not less than maxval 4");
  EXPECT_KILN_ERROR(kiln::random_uniform({2}, DType::int32), kInvalid,
                    "random_uniform: dtype is int32; expected float32, bfloat16 or float64");
  EXPECT_KILN_ERROR(kiln::random_uniform_int({2}, DType::float32, 0, 1), kInvalid,
                    "random_uniform: dtype is float32; expected int32 or int64");
  EXPECT_KILN_ERROR(kiln::random_uniform({2}, static_cast<DType>(99)), kInvalid,
                    "random_uniform: dtype 99 is not valid");
}

// -------------------------------------------------------------- elementwise

struct BinaryCase {
  const char *name;
  std::function<Tensor(const Tensor &, const Tensor &)> op;
  std::function<double(double, double)> ref;
  bool boolean_out;
};

TEST(HppOps, BinaryOps) {
  const Floats av{2, 0.5f, 1, 4, 0.5f, 3}, bv{2, 0.5f, 3};
  const Tensor a = Tensor::from_vector(av, {2, 3}), b = Tensor::from_vector(bv, {3});
  const std::vector<BinaryCase> cases = {
      {"add", kiln::add, [](double x, double y) { return x + y; }, false},
      {"sub", kiln::sub, [](double x, double y) { return x - y; }, false},
      {"mul", kiln::mul, [](double x, double y) { return x * y; }, false},
      {"div", kiln::div, [](double x, double y) { return x / y; }, false},
      {"maximum", kiln::maximum, [](double x, double y) { return std::max(x, y); }, false},
      {"minimum", kiln::minimum, [](double x, double y) { return std::min(x, y); }, false},
      {"pow", kiln::pow, [](double x, double y) { return std::pow(x, y); }, false},
      {"equal", kiln::equal, [](double x, double y) { return double(x == y); }, true},
      {"not_equal", kiln::not_equal, [](double x, double y) { return double(x != y); }, true},
      {"greater", kiln::greater, [](double x, double y) { return double(x > y); }, true},
      {"greater_equal", kiln::greater_equal, [](double x, double y) { return double(x >= y); }, true},
      {"less", kiln::less, [](double x, double y) { return double(x < y); }, true},
      {"less_equal", kiln::less_equal, [](double x, double y) { return double(x <= y); }, true},
  };
  for (const BinaryCase &c : cases) {
    SCOPED_TRACE(c.name);
    Floats want;
    std::vector<bool> bits;
    for (size_t i = 0; i < 6; ++i) {
      want.push_back(static_cast<float>(c.ref(av[i], bv[i % 3])));
      bits.push_back(want.back() != 0);
    }
    Tensor got = c.op(a, b);
    if (c.boolean_out)
      EXPECT_EQ(got.to_vector<bool>(), bits);
    else
      expect_floats(got, {2, 3}, want);
    EXPECT_KILN_ERROR(c.op(a, kiln::zeros({2})), kInvalid, std::string(c.name) + ": shapes [2, 3] and [2]");
    EXPECT_KILN_ERROR(c.op(a, Tensor()), kInvalid, std::string("kiln_") + c.name + ": argument 'b' is NULL");
    EXPECT_KILN_ERROR(c.op(a, kiln::zeros({3}, DType::int32)), kInvalid,
                      std::string(c.name) + ": operands have different dtypes");
  }
  const Tensor p = Tensor::from_vector<bool>({true, true, false, false}, {4});
  const Tensor q = Tensor::from_vector<bool>({true, false, true, false}, {4});
  EXPECT_EQ(kiln::logical_and(p, q).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(kiln::logical_or(p, q).to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(kiln::logical_xor(p, q).to_vector<bool>(), (std::vector<bool>{false, true, true, false}));
  EXPECT_KILN_ERROR(kiln::logical_and(a, a), kInvalid,
                    "logical_and: argument 'a' is float32[2, 3]; expected bool");
  EXPECT_KILN_ERROR(kiln::logical_or(p, a), kInvalid, "logical_or: operands have different dtypes");
  EXPECT_KILN_ERROR(kiln::logical_xor(p, Tensor()), kInvalid, "kiln_logical_xor: argument 'b' is NULL");
  EXPECT_KILN_ERROR(kiln::pow(kiln::ones({2}, DType::boolean), kiln::ones({2}, DType::boolean)), kInvalid,
                    "pow: argument 'a' is bool[2]; expected float32");
  EXPECT_EQ(
      kiln::add(Tensor::from_vector<int32_t>({1, 2}, {2}), Tensor::scalar<int32_t>(5)).to_vector<int32_t>(),
      (std::vector<int32_t>{6, 7}));
}

struct UnaryCase {
  const char *name;
  std::function<Tensor(const Tensor &)> op;
  std::function<double(double)> ref;
  bool positive_input;
};

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

TEST(HppOps, UnaryOps) {
  const Floats sv{-2, -0.5f, 0, 0.5f, 1, 3}, pv{0.25f, 0.5f, 1, 2, 4, 9};
  const Tensor s = Tensor::from_vector(sv, {2, 3}), p = Tensor::from_vector(pv, {2, 3});
  const double k = 0.7978845608028654;  // sqrt(2 / pi)
  const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor &x) { return kiln::neg(x); }, [](double x) { return -x; }, false},
      {"abs", [](const Tensor &x) { return kiln::abs(x); }, [](double x) { return std::fabs(x); }, false},
      {"exp", [](const Tensor &x) { return kiln::exp(x); }, [](double x) { return std::exp(x); }, false},
      {"log", [](const Tensor &x) { return kiln::log(x); }, [](double x) { return std::log(x); }, true},
      {"sqrt", [](const Tensor &x) { return kiln::sqrt(x); }, [](double x) { return std::sqrt(x); }, true},
      {"rsqrt", [](const Tensor &x) { return kiln::rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); },
       true},
      {"square", [](const Tensor &x) { return kiln::square(x); }, [](double x) { return x * x; }, false},
      {"tanh", [](const Tensor &x) { return kiln::tanh(x); }, [](double x) { return std::tanh(x); }, false},
      {"sigmoid", [](const Tensor &x) { return kiln::sigmoid(x); }, sigmoid_ref, false},
      {"relu", [](const Tensor &x) { return kiln::relu(x); }, [](double x) { return x > 0 ? x : 0; }, false},
      {"softplus", [](const Tensor &x) { return kiln::softplus(x); },
       [](double x) { return std::log1p(std::exp(x)); }, false},
      {"swish", [](const Tensor &x) { return kiln::swish(x); }, [](double x) { return x * sigmoid_ref(x); },
       false},
      {"stop_gradient", [](const Tensor &x) { return kiln::stop_gradient(x); }, [](double x) { return x; },
       false},
      {"gelu", [](const Tensor &x) { return kiln::gelu(x); },  // default: the erf form
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, false},
      {"gelu", [](const Tensor &x) { return kiln::gelu(x, true); },
       [k](double x) { return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x))); }, false},
      {"elu", [](const Tensor &x) { return kiln::elu(x); },  // default alpha 1
       [](double x) { return x > 0 ? x : std::exp(x) - 1; }, false},
      {"elu", [](const Tensor &x) { return kiln::elu(x, 0.5f); },
       [](double x) { return x > 0 ? x : 0.5 * (std::exp(x) - 1); }, false},
      {"leaky_relu", [](const Tensor &x) { return kiln::leaky_relu(x); },  // default alpha 0.2
       [](double x) { return x > 0 ? x : 0.2 * x; }, false},
      {"leaky_relu", [](const Tensor &x) { return kiln::leaky_relu(x, 0.01f); },
       [](double x) { return x > 0 ? x : 0.01 * x; }, false},
      {"clip_by_value", [](const Tensor &x) { return kiln::clip_by_value(x, -1, 1); },
       [](double x) { return std::min(1.0, std::max(-1.0, x)); }, false},
  };
  for (const UnaryCase &c : cases) {
    SCOPED_TRACE(c.name);
    const Floats &in = c.positive_input ? pv : sv;
    Floats want;
    for (float v : in) want.push_back(static_cast<float>(c.ref(v)));
    expect_floats(c.op(c.positive_input ? p : s), {2, 3}, want, 2e-6);
    EXPECT_KILN_ERROR(c.op(Tensor()), kInvalid, std::string("kiln_") + c.name + ": argument 'x' is NULL");
    if (std::string(c.name) != "stop_gradient")  // stop_gradient passes any dtype
      EXPECT_KILN_ERROR(c.op(kiln::zeros({2}, DType::boolean)), kInvalid,
                        std::string(c.name) + ": argument 'x' is bool[2]");
  }
  EXPECT_EQ(kiln::logical_not(Tensor::from_vector<bool>({true, false}, {2})).to_vector<bool>(),
            (std::vector<bool>{false, true}));
  EXPECT_KILN_ERROR(kiln::logical_not(s), kInvalid,
                    "logical_not: argument 'x' is float32[2, 3]; expected bool");
  EXPECT_EQ(kiln::neg(Tensor::from_vector<int32_t>({3, -4}, {2})).to_vector<int32_t>(),
            (std::vector<int32_t>{-3, 4}));
  EXPECT_EQ(kiln::square(Tensor::from_vector<int64_t>({3, -4}, {2})).to_vector<int64_t>(),
            (std::vector<int64_t>{9, 16}));
  EXPECT_EQ(kiln::abs(Tensor::from_vector<int32_t>({3, -4}, {2})).to_vector<int32_t>(),
            (std::vector<int32_t>{3, 4}));
  EXPECT_KILN_ERROR(kiln::exp(kiln::zeros({2}, DType::int32)), kInvalid,
                    "exp: argument 'x' is int32[2]; expected float32");
  EXPECT_KILN_ERROR(kiln::elu(s, NAN), kInvalid, "elu: argument 'alpha' is nan");
  EXPECT_KILN_ERROR(kiln::leaky_relu(s, INFINITY), kInvalid, "leaky_relu: argument 'alpha' is inf");
  expect_floats(kiln::clip_by_value(s, 1, -1), s.shape(), std::vector<float>(size_t(s.num_elements()), 1.0f));
}

TEST(HppOps, Operators) {
  const Tensor a = Tensor::from_vector<float>({1, 2, 4}, {3});
  const Tensor b = Tensor::from_vector<float>({2, 8, 1}, {3});
  expect_floats(a + b, {3}, {3, 10, 5});
  expect_floats(a - b, {3}, {-1, -6, 3});
  expect_floats(a * b, {3}, {2, 16, 4});
  expect_floats(a / b, {3}, {0.5f, 0.25f, 4});
  expect_floats(-a, {3}, {-1, -2, -4});
  expect_floats(a + 1.0f, {3}, {2, 3, 5});
  expect_floats(a - 1.0f, {3}, {0, 1, 3});
  expect_floats(a * 2.0f, {3}, {2, 4, 8});
  expect_floats(a / 2.0f, {3}, {0.5f, 1, 2});
  expect_floats(1.0f + a, {3}, {2, 3, 5});
  expect_floats(1.0f - a, {3}, {0, -1, -3});
  expect_floats(2.0f * a, {3}, {2, 4, 8});
  expect_floats(8.0f / a, {3}, {8, 4, 2});
  // Broadcasting between a row and a column.
  expect_floats(kiln::reshape(a, {3, 1}) * b, {3, 3}, {2, 8, 1, 4, 16, 2, 8, 32, 4});
  const Tensor ints = kiln::ones({3}, DType::int32);
  EXPECT_KILN_ERROR(ints + 1.0f, kInvalid, "add: operands have different dtypes");
  EXPECT_KILN_ERROR(2.0f * ints, kInvalid, "mul: operands have different dtypes");
  EXPECT_KILN_ERROR(a - kiln::ones({2}), kInvalid, "sub: shapes [3] and [2] are not broadcast-compatible");
  EXPECT_KILN_ERROR(a / Tensor(), kInvalid, "kiln_truediv: argument 'b' is NULL");
  EXPECT_KILN_ERROR(-kiln::ones({2}, DType::boolean), kInvalid, "neg: argument 'x' is bool[2]");
}

// Comparisons give bool tensors, elementwise, as tf.Tensor's; &, |, ^, ~ on bool tensors.
TEST(HppOps, ComparisonAndLogicalOperators) {
  const Tensor a = Tensor::from_vector<float>({1, 2, 4}, {3});
  const Tensor b = Tensor::from_vector<float>({2, 2, 1}, {3});
  auto bools = [](const Tensor &t) {
    EXPECT_EQ(t.dtype(), DType::boolean);
    std::vector<int> out;
    for (uint8_t v : kiln::cast(t, DType::uint8).to_vector<uint8_t>()) out.push_back(v);
    return out;
  };
  EXPECT_EQ(bools(a == b), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(bools(a != b), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(bools(a < b), (std::vector<int>{1, 0, 0}));
  EXPECT_EQ(bools(a <= b), (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(bools(a > b), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(bools(a >= b), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(bools(a > 1.5f), (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(bools(2.0 >= a), (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(bools(kiln::reshape(a, {3, 1}) == b),
            (std::vector<int>{0, 0, 1, 1, 1, 0, 0, 0, 0}));  // broadcast
  const Tensor ids = Tensor::from_vector<int64_t>({3, 7, 3}, {3});
  EXPECT_EQ(bools(ids == 3), (std::vector<int>{1, 0, 1}));  // an integer beside int64 takes its dtype
  const Tensor p = a > 1.5f, q = a < b;
  EXPECT_EQ(bools(p & q), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(bools(p | q), (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(bools(p ^ q), (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(bools(p ^ ~q), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(bools(~p), (std::vector<int>{1, 0, 0}));
  const float nan = std::nanf("");
  const Tensor n = Tensor::from_vector<float>({nan, 1}, {2});
  EXPECT_EQ(bools(n == n), (std::vector<int>{0, 1}));  // NaN is unequal to itself
  EXPECT_EQ(bools(n != n), (std::vector<int>{1, 0}));
  EXPECT_KILN_ERROR(a & b, kInvalid, "float32");
  EXPECT_KILN_ERROR(a == kiln::ones({2}), kInvalid, "not broadcast-compatible");
}

// Tensors over the caller's memory: no copy, release called once when the last reference goes,
// and not at all when creation fails.
TEST(HppOps, TensorFromBufferAndMovedVector) {
  static float data[4] = {1, 2, 3, 4};
  int released = 0;
  {
    const Tensor t = Tensor::from_buffer(DType::float32, {2, 2}, data, sizeof data, [&] { ++released; });
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
    const Tensor doubled = t * 2.0f;
    EXPECT_EQ(doubled.to_vector<float>(), (std::vector<float>{2, 4, 6, 8}));
    const Tensor copy = t;  // another handle
    EXPECT_EQ(released, 0);
  }
  EXPECT_EQ(released, 1);
  EXPECT_KILN_ERROR(Tensor::from_buffer(DType::float32, {3}, data, sizeof data, [&] { ++released; }),
                    kInvalid, "");
  EXPECT_EQ(released, 1);  // the buffer stayed the caller's
  std::vector<int64_t> ids = {5, 6, 7};
  const int64_t *where = ids.data();
  const Tensor t = Tensor::from_vector(std::move(ids), {3});
  EXPECT_EQ(t.dtype(), DType::int64);
  EXPECT_EQ(static_cast<const int64_t *>(kiln_tensor_get_data(t.get())), where);  // taken over, not copied
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 7}));
}

TEST(HppOps, WhereCastClip) {
  const Tensor cond = Tensor::from_vector<bool>({true, false}, {2, 1});
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_floats(kiln::where(cond, x, Tensor::scalar(9.0f)), {2, 3}, {1, 2, 3, 9, 9, 9});
  EXPECT_KILN_ERROR(kiln::where(x, x, x), kInvalid, "where: argument 'cond' is float32[2, 3]; expected bool");
  EXPECT_KILN_ERROR(kiln::where(cond, x, kiln::zeros({2, 3}, DType::int32)), kInvalid,
                    "where: x is float32[2, 3] and y is int32[2, 3]");
  EXPECT_KILN_ERROR(kiln::where(cond, Tensor(), x), kInvalid, "kiln_where: argument 'x' is NULL");

  const Tensor f = Tensor::from_vector<float>({1.7f, -1.7f, 0, 2.5f}, {4});
  EXPECT_EQ(kiln::cast(f, DType::int32).to_vector<int32_t>(), (std::vector<int32_t>{1, -1, 0, 2}));
  EXPECT_EQ(kiln::cast(f, DType::int64).to_vector<int64_t>(), (std::vector<int64_t>{1, -1, 0, 2}));
  EXPECT_EQ(kiln::cast(f, DType::boolean).to_vector<bool>(), (std::vector<bool>{true, true, false, true}));
  std::vector<kiln::bfloat16> bf = kiln::cast(f, DType::bfloat16).to_vector<kiln::bfloat16>();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(bf[i].bits, kiln::bfloat16(f.to_vector<float>()[i]).bits) << i;
  expect_floats(kiln::cast(kiln::cast(f, DType::bfloat16), DType::float32), {4},
                {1.703125f, -1.703125f, 0, 2.5f});
  expect_floats(kiln::cast(Tensor::from_vector<uint8_t>({3, 200}, {2}), DType::float32), {2}, {3, 200});
  EXPECT_KILN_ERROR(kiln::cast(f, static_cast<DType>(42)), kInvalid, "cast: dtype 42 is not valid");
  EXPECT_KILN_ERROR(kiln::cast(Tensor(), DType::int32), kInvalid, "kiln_cast: argument 'x' is NULL");

  expect_floats(kiln::clip_by_value(f, -1, 2), {4}, {1.7f, -1, 0, 2});
  // As tf.clip_by_value, maximum(minimum(x, max), min): min everywhere when min > max.
  expect_floats(kiln::clip_by_value(f, 2, 1), {4}, {2, 2, 2, 2});
}

// Tensor bounds (kiln_clip_by_value_tensor): broadcasting, exact integer bounds, the gradient of
// TF's minimum and maximum (a tie goes to x), and the checks.
TEST(HppOps, ClipByValueTensorBounds) {
  const Tensor x = Tensor::from_vector<float>({0.5f, 2, 9, -1, 2.5f, 4}, {2, 3});
  const Tensor lo = Tensor::from_vector<float>({1, 2, 3}, {3}),
               hi = Tensor::from_vector<float>({2, 3.5f}, {2, 1});
  expect_floats(kiln::clip_by_value(x, lo, hi), {2, 3}, {1, 2, 3, 1, 2.5f, 3.5f});
  const Tensor big = Tensor::from_vector<int64_t>({int64_t{1} << 40, -7, 16777219}, {3});
  EXPECT_EQ(kiln::clip_by_value(big, Tensor::from_vector<int64_t>({0, 0, 16777217}, {3}),
                                Tensor::scalar<int64_t>((int64_t{1} << 40) - 1))
                .to_vector<int64_t>(),
            (std::vector<int64_t>{(int64_t{1} << 40) - 1, 0, 16777219}));
  const Tensor v = Tensor::from_vector<float>({0.5f, 2, 9}, {3}),
               w = Tensor::from_vector<float>({1, 10, 100}, {3});
  kiln::GradientTape tape(true);
  tape.watch(v);
  tape.watch(lo);
  const Tensor top = Tensor::scalar<float>(3);
  tape.watch(top);
  const Tensor y = kiln::sum(kiln::clip_by_value(v, lo, top) * w);
  tape.stop();
  expect_floats(tape.gradient(y, v), {3}, {0, 10, 0});
  expect_floats(tape.gradient(y, lo), {3}, {1, 0, 0});
  expect_floats(tape.gradient(y, top), {}, {100});
  EXPECT_KILN_ERROR(kiln::clip_by_value(x, big, hi), kInvalid,
                    "clip_by_value: argument 'clip_value_min' is int64[3]; expected x's dtype float32");
  EXPECT_KILN_ERROR(kiln::clip_by_value(lo, x, hi), kInvalid, "expected bounds that broadcast to x's shape");
  EXPECT_KILN_ERROR(kiln::clip_by_value(x, Tensor(), hi), kInvalid,
                    "kiln_clip_by_value_tensor: argument 'clip_min' is NULL");
}

// TF's kernels: argmax / argmin never pick a NaN; sqrt's gradient is 0 where the incoming one is.
TEST(HppOps, TfKernelEdgeCases) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(kiln::argmax(Tensor::from_vector<float>({nan, 1, 2}, {3})).to_vector<int64_t>(),
            (std::vector<int64_t>{2}));
  EXPECT_EQ(kiln::argmin(Tensor::from_vector<float>({nan, 1, 2}, {3})).to_vector<int64_t>(),
            (std::vector<int64_t>{1}));
  const Tensor x = Tensor::from_vector<float>({0, 4}, {2});
  kiln::GradientTape tape;
  tape.watch(x);
  const Tensor y = kiln::where(x > 0.0f, kiln::sqrt(x), kiln::zeros({2}));
  tape.stop();
  expect_floats(tape.gradient(y, x), {2}, {0, 0.25f});
}

// ------------------------------------------------------ matmul, reductions

TEST(HppOps, Matmul) {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = Tensor::from_vector<float>({1, -1, 0, 2, 0.5f, 1}, {3, 2});
  expect_floats(kiln::matmul(a, b), {2, 2}, {2.5f, 6, 7, 12});
  expect_floats(kiln::matmul(a, a, false, true), {2, 2}, {14, 32, 32, 77});
  expect_floats(kiln::matmul(a, a, true), {3, 3}, {17, 22, 27, 22, 29, 36, 27, 36, 45});
  expect_floats(kiln::matmul(b, a, true, true), {2, 2}, {2.5f, 7, 6, 12});
  expect_floats(kiln::matmul(kiln::stack({a, a * 2.0f}), b), {2, 2, 2}, {2.5f, 6, 7, 12, 5, 12, 14, 24});
  Tensor bf = kiln::matmul(kiln::cast(a, DType::bfloat16), kiln::cast(b, DType::bfloat16));
  EXPECT_EQ(bf.dtype(), DType::bfloat16);
  expect_floats(kiln::cast(bf, DType::float32), {2, 2}, {2.5f, 6, 7, 12}, 1e-2);
  EXPECT_KILN_ERROR(kiln::matmul(a, a), kInvalid, "matmul: inner dimensions differ, 3 vs 2");
  EXPECT_KILN_ERROR(kiln::matmul(kiln::ones({3}), b), kInvalid, "matmul: operands must have rank >= 2");
  EXPECT_KILN_ERROR(kiln::matmul(kiln::ones({2, 3}, DType::int32), b), kInvalid,
                    "matmul: operands have different dtypes, int32[2, 3] and float32[3, 2]");
  EXPECT_KILN_ERROR(kiln::matmul(kiln::ones({2, 3}, DType::uint8), kiln::ones({3, 2}, DType::uint8)),
                    kInvalid, "matmul: argument 'a' is uint8[2, 3]");
}

TEST(HppOps, Reductions) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_floats(kiln::sum(x), {}, {21});
  expect_floats(kiln::sum(x, {0}), {3}, {5, 7, 9});
  expect_floats(kiln::sum(x, {-1}, true), {2, 1}, {6, 15});
  expect_floats(kiln::mean(x), {}, {3.5f});
  expect_floats(kiln::mean(x, {1}), {2}, {2, 5});
  expect_floats(kiln::mean(x, {0, 1}, true), {1, 1}, {3.5f});
  expect_floats(kiln::max(x), {}, {6});
  expect_floats(kiln::max(x, {0}), {3}, {4, 5, 6});
  expect_floats(kiln::min(x), {}, {1});
  expect_floats(kiln::min(x, {1}, true), {2, 1}, {1, 4});
  EXPECT_EQ(kiln::sum(kiln::cast(x, DType::int32), {0}).to_vector<int32_t>(),
            (std::vector<int32_t>{5, 7, 9}));
  EXPECT_EQ(kiln::max(Tensor::from_vector<int64_t>({-4, 8, 2}, {3})).item<int64_t>(), 8);
  EXPECT_KILN_ERROR(kiln::sum(x, {2}), kInvalid, "sum: axis 2 is out of range for a tensor of rank 2");
  EXPECT_KILN_ERROR(kiln::mean(kiln::cast(x, DType::boolean)), kInvalid, "mean: argument 'x' is bool[2, 3]");
  EXPECT_KILN_ERROR(kiln::max(x, {0, -2}), kInvalid, "max: axes [0, -2] name axis 0");
  EXPECT_KILN_ERROR(kiln::min(kiln::zeros({2}, DType::boolean)), kInvalid, "min: argument 'x' is bool[2]");

  const Tensor t = Tensor::from_vector<float>({1, 3, 3, 7, 2, 0}, {2, 3});
  EXPECT_EQ(kiln::argmax(t).dtype(), DType::int64);
  EXPECT_EQ(kiln::argmax(t, -1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));  // first on ties
  EXPECT_EQ(kiln::argmax(t).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));   // TF's default axis 0
  EXPECT_EQ(kiln::argmin(t).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_KILN_ERROR(kiln::argmax(t, 2), kInvalid, "argmax: axis 2 is out of range");
  EXPECT_KILN_ERROR(kiln::argmax(Tensor::scalar(1.0f)), kInvalid,
                    "argmax: argument 'x' is float32[]; expected rank >= 1");
}

TEST(HppOps, Softmax) {
  const Floats v{1, 2, 3, -1, 0, 5};
  const Tensor x = Tensor::from_vector(v, {2, 3});
  for (int axis : {-1, 0}) {
    SCOPED_TRACE(axis);
    Floats soft(6), logs(6);
    for (int g = 0; g < (axis ? 2 : 3); ++g) {  // reference along the axis
      auto at = [&](int i) { return axis ? g * 3 + i : i * 3 + g; };
      const int len = axis ? 3 : 2;
      double top = -1e300, total = 0;
      for (int i = 0; i < len; ++i) top = std::max<double>(top, v[at(i)]);
      for (int i = 0; i < len; ++i) total += std::exp(v[at(i)] - top);
      for (int i = 0; i < len; ++i) {
        soft[at(i)] = static_cast<float>(std::exp(v[at(i)] - top) / total);
        logs[at(i)] = static_cast<float>(v[at(i)] - top - std::log(total));
      }
    }
    if (axis == -1) {  // the default axis
      expect_floats(kiln::softmax(x), {2, 3}, soft);
      expect_floats(kiln::log_softmax(x), {2, 3}, logs);
    }
    expect_floats(kiln::softmax(x, axis), {2, 3}, soft);
    expect_floats(kiln::log_softmax(x, axis), {2, 3}, logs);
  }
  EXPECT_KILN_ERROR(kiln::softmax(x, 2), kInvalid, "softmax: axis 2 is out of range");
  EXPECT_KILN_ERROR(kiln::log_softmax(kiln::ones({2}, DType::int32)), kInvalid,
                    "log_softmax: argument 'x' is int32[2]; expected float32");
}

// ---------------------------------------------------------------- nn ops

TEST(HppOps, LayerAndBatchNorm) {
  const Floats xv{1, 2, 3, -1, 0, 5}, g{1, 2, 0.5f}, bt{0, 1, -1};
  const Tensor x = Tensor::from_vector(xv, {2, 3}), gamma = Tensor::from_vector(g, {3}),
               beta = Tensor::from_vector(bt, {3});
  for (float eps : {1e-3f, 0.5f}) {
    Floats want;
    for (int r = 0; r < 2; ++r) {
      double m = (xv[r * 3] + xv[r * 3 + 1] + xv[r * 3 + 2]) / 3.0, var = 0;
      for (int c = 0; c < 3; ++c) var += (xv[r * 3 + c] - m) * (xv[r * 3 + c] - m) / 3;
      for (int c = 0; c < 3; ++c)
        want.push_back(static_cast<float>((xv[r * 3 + c] - m) / std::sqrt(var + eps) * g[c] + bt[c]));
    }
    if (eps == 1e-3f) expect_floats(kiln::layer_norm(x, gamma, beta), {2, 3}, want, 1e-5);  // default epsilon
    expect_floats(kiln::layer_norm(x, gamma, beta, eps), {2, 3}, want, 1e-5);
  }
  EXPECT_KILN_ERROR(kiln::layer_norm(x, kiln::ones({2}), beta), kInvalid,
                    "layer_norm: argument 'gamma' is float32[2]; expected float32[3]");
  EXPECT_KILN_ERROR(kiln::layer_norm(x, gamma, beta, -1), kInvalid, "layer_norm: epsilon is -1");

  // batch_norm over [4, 2]: channel 0 holds 1 3 5 7 (mean 4, variance 5), channel 1 2 6 4 0 (mean 3, variance
  // 5).
  const Tensor bx = Tensor::from_vector<float>({1, 2, 3, 6, 5, 4, 7, 0}, {4, 2});
  const Tensor bg = Tensor::from_vector<float>({1, 2}, {2}), bb = Tensor::from_vector<float>({0, -1}, {2});
  auto normalised = [](const Floats &mean, const Floats &variance, float epsilon) {
    const Floats xs{1, 2, 3, 6, 5, 4, 7, 0}, gs{1, 2}, bs{0, -1};
    Floats y;
    for (size_t i = 0; i < 8; ++i)
      y.push_back(static_cast<float>(
          (xs[i] - mean[i % 2]) / std::sqrt(variance[i % 2] + epsilon) * gs[i % 2] + bs[i % 2]));
    return y;
  };
  kiln::BatchNormResult train = kiln::batch_norm(bx, bg, bb, Tensor(), Tensor(), true);  // default epsilon
  expect_floats(train.y, {4, 2}, normalised({4, 3}, {5, 5}, 1e-3f), 1e-5);
  expect_floats(train.mean, {2}, {4, 3});
  expect_floats(train.variance, {2}, {5, 5});
  kiln::BatchNormResult train_eps = kiln::batch_norm(bx, bg, bb, Tensor(), Tensor(), true, 1.0f);
  expect_floats(train_eps.y, {4, 2}, normalised({4, 3}, {5, 5}, 1.0f), 1e-5);
  const Tensor mm = Tensor::from_vector<float>({1, 1}, {2}), mv = Tensor::from_vector<float>({4, 0.25f}, {2});
  kiln::BatchNormResult infer = kiln::batch_norm(bx, bg, bb, mm, mv, false, 0.0f);
  expect_floats(infer.y, {4, 2}, normalised({1, 1}, {4, 0.25f}, 0.0f), 1e-5);
  expect_floats(infer.mean, {2}, {1, 1});
  expect_floats(infer.variance, {2}, {4, 0.25f});
  EXPECT_KILN_ERROR(kiln::batch_norm(bx, bg, bb, Tensor(), mv, false), kInvalid,
                    "kiln_batch_norm: argument 'mean' is NULL");
  EXPECT_KILN_ERROR(kiln::batch_norm(kiln::ones({2}), bg, bb, Tensor(), Tensor(), true), kInvalid,
                    "batch_norm: argument 'x' is float32[2]; expected rank >= 2");
  EXPECT_KILN_ERROR(kiln::batch_norm(bx, gamma, bb, Tensor(), Tensor(), true), kInvalid,
                    "batch_norm: argument 'gamma' is float32[3]; expected float32[2]");
}

TEST(HppOps, ConvAndPoolDefaults) {
  const Tensor x = kiln::reshape(kiln::range(1, 10), {1, 3, 3, 1});  // 1..9
  const Tensor f = Tensor::from_vector<float>({1, 0, 0, 1}, {2, 2, 1, 1});
  expect_floats(kiln::conv2d(x, f), {1, 2, 2, 1}, {6, 8, 12, 14});  // strides 1, dilations 1, VALID
  expect_floats(kiln::conv2d(x, f, {2, 2}, {1, 1}, kiln::Padding::same), {1, 2, 2, 1}, {6, 3, 7, 9});
  expect_floats(kiln::conv2d(x, f, {1, 1}, {2, 2}), {1, 1, 1, 1}, {10});
  expect_floats(kiln::max_pool2d(x, {2, 2}, {1, 1}), {1, 2, 2, 1}, {5, 6, 8, 9});  // VALID by default
  expect_floats(kiln::max_pool2d(x, {2, 2}, {2, 2}, kiln::Padding::same), {1, 2, 2, 1}, {5, 6, 8, 9});
  expect_floats(kiln::avg_pool2d(x, {2, 2}, {1, 1}), {1, 2, 2, 1}, {3, 4, 6, 7});
  // SAME: the padding is left out of the average.
  expect_floats(kiln::avg_pool2d(x, {2, 2}, {2, 2}, kiln::Padding::same), {1, 2, 2, 1}, {3, 4.5f, 7.5f, 9});

  // Keyword-style options; the pools default to Keras' 2x2 window with strides 2, VALID.
  expect_floats(kiln::conv2d(x, f, kiln::Conv2dOptions().with_strides({2, 2}).with_padding(kiln::Padding::same)),
                {1, 2, 2, 1}, {6, 3, 7, 9});
  expect_floats(kiln::conv2d(x, f, kiln::Conv2dOptions().with_dilations({2, 2})), {1, 1, 1, 1}, {10});
  const Tensor x4 = kiln::reshape(kiln::range(1, 17), {1, 4, 4, 1});
  expect_floats(kiln::max_pool2d(x4), {1, 2, 2, 1}, {6, 8, 14, 16});
  expect_floats(kiln::avg_pool2d(x4, kiln::Pool2dOptions().with_ksize({4, 4}).with_strides({1, 1})), {1, 1, 1, 1},
                {8.5f});
  expect_floats(kiln::max_pool2d(x, kiln::Pool2dOptions().with_strides({1, 1})), {1, 2, 2, 1}, {5, 6, 8, 9});
  EXPECT_KILN_ERROR(kiln::conv2d(x, f, kiln::Conv2dOptions().with_strides({2})), kInvalid,
                    "conv2d: strides and dilations need 2 values each");
  EXPECT_KILN_ERROR(kiln::max_pool2d(x, kiln::Pool2dOptions().with_ksize({2, 2, 2})), kInvalid,
                    "max_pool2d: ksize and strides need 2 values each");
  EXPECT_KILN_ERROR(kiln::conv2d(x, f, {1, 1, 1}), kInvalid,
                    "conv2d: strides and dilations need 2 values each");
  EXPECT_KILN_ERROR(kiln::conv2d(x, f, {1, 1}, {1}), kInvalid,
                    "conv2d: strides and dilations need 2 values each");
  EXPECT_KILN_ERROR(kiln::conv2d(x, f, {0, 1}), kInvalid,
                    "conv2d: strides is [0, 1]; expected 2 positive values");
  EXPECT_KILN_ERROR(kiln::conv2d(x, kiln::ones({2, 2, 3, 1})), kInvalid, "expected filter dim 2 == x dim 3");
  EXPECT_KILN_ERROR(kiln::conv2d(x, f, {1, 1}, {1, 1}, static_cast<kiln::Padding>(5)), kInvalid,
                    "conv2d: padding 5 is not valid");
  EXPECT_KILN_ERROR(kiln::max_pool2d(x, {2}, {1, 1}), kInvalid,
                    "max_pool2d: ksize and strides need 2 values each");
  EXPECT_KILN_ERROR(kiln::avg_pool2d(x, {2, 2}, {1}), kInvalid,
                    "avg_pool2d: ksize and strides need 2 values each");
  EXPECT_KILN_ERROR(kiln::max_pool2d(kiln::ones({3, 3, 1}), {2, 2}, {1, 1}), kInvalid,
                    "max_pool2d: x has shape [3, 3, 1]");
  EXPECT_KILN_ERROR(kiln::avg_pool2d(x, {4, 4}, {1, 1}), kInvalid, "avg_pool2d: input of shape [1, 3, 3, 1]");
  EXPECT_KILN_ERROR(kiln::max_pool2d(x, {2, 2}, {1, 1}, static_cast<kiln::Padding>(-1)), kInvalid,
                    "max_pool2d: padding -1 is not valid");
  EXPECT_KILN_ERROR(kiln::avg_pool2d(x, {2, 2}, {1, 1}, static_cast<kiln::Padding>(2)), kInvalid,
                    "avg_pool2d: padding 2 is not valid");
}

TEST(HppOps, LayerNormOverTrailingAxes) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 0, 0, 0, 8}, {2, 2, 2});
  const Tensor y = kiln::layer_norm(x, kiln::ones({2, 2}), kiln::zeros({2, 2}), 0.0f, {-2, -1});
  const float s1 = 1 / std::sqrt(1.25f), s2 = 1 / std::sqrt(12.0f);
  expect_floats(y, {2, 2, 2}, {-1.5f * s1, -0.5f * s1, 0.5f * s1, 1.5f * s1, -2 * s2, -2 * s2, -2 * s2, 6 * s2}, 1e-5);
  EXPECT_KILN_ERROR(kiln::layer_norm(x, kiln::ones({2, 2}), kiln::zeros({2, 2}), 1e-3f, {0, 1}), kInvalid,
                    "layer_norm: axes [0, 1] for x float32[2, 2, 2]; expected distinct trailing axes");
}

TEST(HppOps, ConvVariants) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  const Tensor f = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 1, 2, 2});
  expect_floats(kiln::depthwise_conv2d(x, f), {1, 2, 2, 4}, {1, 2, 6, 8, 3, 6, 12, 16, 5, 10, 18, 24, 7, 14, 24, 32});
  expect_floats(kiln::depthwise_conv2d(x, f, kiln::Conv2dOptions().with_strides({2, 2})), {1, 1, 1, 4}, {1, 2, 6, 8});
  EXPECT_KILN_ERROR(kiln::depthwise_conv2d(x, kiln::ones({1, 1, 3, 1})), kInvalid,
                    "depthwise_conv2d: filter of shape [1, 1, 3, 1] is for 3 channels");
  const Tensor k = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2, 1, 1});
  expect_floats(kiln::conv2d_transpose(kiln::fill({1, 1, 1, 1}, 2), k, {1, 2, 2, 1},
                                       kiln::Conv2dOptions().with_strides({2, 2})),
                {1, 2, 2, 1}, {2, 4, 6, 8});
  // SAME, stride 2: each input cell spreads over its 2x2 block of the doubled output.
  expect_floats(kiln::conv2d_transpose(kiln::ones({1, 2, 1, 1}), k, {1, 4, 2, 1},
                                       kiln::Conv2dOptions().with_strides({2, 2}).with_padding(kiln::Padding::same)),
                {1, 4, 2, 1}, {1, 2, 3, 4, 1, 2, 3, 4});
  EXPECT_KILN_ERROR(kiln::conv2d_transpose(x, k, {1, 2, 2}), kInvalid, "kiln_conv2d_transpose: output_rank is 3");
  const Tensor s = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 4, 1});
  const Tensor taps = Tensor::from_vector<float>({1, -1}, {2, 1, 1});
  expect_floats(kiln::conv1d(s, taps), {1, 3, 1}, {-1, -1, -1});
  expect_floats(kiln::conv1d(s, taps, 2), {1, 2, 1}, {-1, -1});
  expect_floats(kiln::conv1d(s, taps, 1, kiln::Padding::same), {1, 4, 1}, {-1, -1, -1, 4});
  expect_floats(kiln::conv1d(s, taps, 1, kiln::Padding::valid, 3), {1, 1, 1}, {-3});
  EXPECT_KILN_ERROR(kiln::conv1d(x, taps), kInvalid, "conv1d: x has shape [1, 2, 2, 2]; expected rank 3");
}

// ------------------------------------------------------- shape, indexing

TEST(HppOps, ShapeOps) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_floats(kiln::reshape(x, {3, -1}), {3, 2}, {1, 2, 3, 4, 5, 6});
  expect_floats(kiln::transpose(x), {3, 2}, {1, 4, 2, 5, 3, 6});  // default: reverse the dims
  expect_floats(kiln::transpose(iota({2, 3, 2}), {2, 0, 1}), {2, 2, 3},
                {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11});
  expect_floats(kiln::concat({x, x}, 0), {4, 3}, {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  expect_floats(kiln::concat({kiln::ones({2, 1}), x}, -1), {2, 4}, {1, 1, 2, 3, 1, 4, 5, 6});
  const Tensor r = Tensor::from_vector<float>({1, 2}, {2}), s = Tensor::from_vector<float>({3, 4}, {2});
  expect_floats(kiln::stack({r, s}), {2, 2}, {1, 2, 3, 4});  // default axis 0
  expect_floats(kiln::stack({r, s}, 1), {2, 2}, {1, 3, 2, 4});
  expect_floats(kiln::slice(x, {0, 1}, {2, -1}), {2, 2}, {2, 3, 5, 6});
  expect_floats(kiln::expand_dims(x, 0), {1, 2, 3}, {1, 2, 3, 4, 5, 6});
  expect_floats(kiln::expand_dims(x, -1), {2, 3, 1}, {1, 2, 3, 4, 5, 6});
  const Tensor q = kiln::reshape(r, {1, 2, 1});
  expect_floats(kiln::squeeze(q), {2}, {1, 2});  // default: every dim of 1
  expect_floats(kiln::squeeze(q, {0}), {2, 1}, {1, 2});
  expect_floats(kiln::broadcast_to(r, {3, 2}), {3, 2}, {1, 2, 1, 2, 1, 2});
  expect_floats(kiln::tile(kiln::reshape(r, {1, 2}), {2, 2}), {2, 4}, {1, 2, 1, 2, 1, 2, 1, 2});

  EXPECT_KILN_ERROR(kiln::reshape(x, {4, -1}), kInvalid, "reshape: cannot infer the -1 in [4, -1]");
  EXPECT_KILN_ERROR(kiln::transpose(x, {0, 0}), kInvalid,
                    "transpose: perm [0, 0] for float32[2, 3] repeats axis 0");
  EXPECT_KILN_ERROR(kiln::concat({x, r}, 0), kInvalid,
                    "concat: values[1] is float32[2] but values[0] is float32[2, 3]");
  EXPECT_KILN_ERROR(kiln::concat({x, Tensor()}, 0), kInvalid, "kiln_concat: values[1] is NULL");
  EXPECT_KILN_ERROR(kiln::concat({}, 0), kInvalid, "concat: got an empty list");
  EXPECT_KILN_ERROR(kiln::stack({r, x}), kInvalid,
                    "stack: values[1] is float32[2, 3] but values[0] is float32[2]");
  EXPECT_KILN_ERROR(kiln::slice(x, {0, 0}, {3, 1}), kInvalid,
                    "slice: window begin [0, 0] size [3, 1] does not fit in [2, 3]");
  EXPECT_KILN_ERROR(kiln::slice(x, {0}, {1, 1}), kInvalid, "slice: begin and size differ in length");
  EXPECT_KILN_ERROR(kiln::slice(x, {0}, {1}), kInvalid,
                    "slice: begin [0] and size [1] for float32[2, 3] must have one entry per dim");
  EXPECT_KILN_ERROR(kiln::expand_dims(x, 3), kInvalid, "expand_dims: axis 3 is out of range");
  EXPECT_KILN_ERROR(kiln::squeeze(q, {1}), kInvalid, "squeeze: cannot squeeze axis 1 of float32[1, 2, 1]");
  EXPECT_KILN_ERROR(kiln::broadcast_to(r, {3, 3}), kInvalid,
                    "broadcast_to: cannot broadcast float32[2] to [3, 3]");
  EXPECT_KILN_ERROR(kiln::tile(x, {2}), kInvalid, "tile: multiples [2] has 1 entries for float32[2, 3]");
}

TEST(HppOps, SplitWithSizesAndNumSplits) {
  const Tensor m = iota({3, 4});
  std::vector<Tensor> halves = kiln::split(m, {}, 1, 2);  // two equal parts along axis 1
  ASSERT_EQ(halves.size(), 2u);
  expect_floats(halves[0], {3, 2}, {0, 1, 4, 5, 8, 9});
  expect_floats(halves[1], {3, 2}, {2, 3, 6, 7, 10, 11});
  std::vector<Tensor> rows = kiln::split(m, {}, 0, 3);
  ASSERT_EQ(rows.size(), 3u);
  expect_floats(rows[2], {1, 4}, {8, 9, 10, 11});
  std::vector<Tensor> parts = kiln::split(m, {1, -1});  // default axis 0; -1 takes the rest
  ASSERT_EQ(parts.size(), 2u);
  expect_floats(parts[0], {1, 4}, {0, 1, 2, 3});
  expect_floats(parts[1], {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
  std::vector<Tensor> cols = kiln::split(m, {1, 0, 3}, -1);
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(cols[1].shape(), (Dims{3, 0}));
  expect_floats(cols[2], {3, 3}, {1, 2, 3, 5, 6, 7, 9, 10, 11});

  EXPECT_KILN_ERROR(kiln::split(m, {}), kInvalid, "split: give sizes or num_splits >= 1");
  EXPECT_KILN_ERROR(kiln::split(m, {}, 1, 3), kInvalid,
                    "split: cannot split axis 1 of float32[3, 4] into 3 equal parts");
  EXPECT_KILN_ERROR(kiln::split(m, {1, 1}), kInvalid, "split: sizes [1, 1] do not add up to 3");
  EXPECT_KILN_ERROR(kiln::split(m, {}, 2, 2), kInvalid, "split: axis 2 is out of range");
  EXPECT_KILN_ERROR(kiln::split(Tensor(), {}, 0, 2), kInvalid, "kiln_split: argument 'x' is NULL");
}

TEST(HppOps, IndexingAndPadding) {
  const Tensor p = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_floats(kiln::gather(p, Tensor::from_vector<int32_t>({2, 0, 1, 1}, {2, 2}), 1, 1), {2, 2}, {3, 1, 5, 5});
  EXPECT_KILN_ERROR(kiln::gather(p, Tensor::from_vector<int32_t>({0, 0, 0}, {3, 1}), 1, 1), kInvalid,
                    "gather: params [2, 3] and indices int32[3, 1] differ in batch dim 0");
  expect_floats(kiln::gather_nd(p, Tensor::from_vector<int32_t>({1, 2, 0, 0}, {2, 2})), {2}, {6, 1});
  expect_floats(kiln::gather_nd(p, Tensor::from_vector<int32_t>({2, 0}, {2, 1}), 1), {2}, {3, 4});
  EXPECT_KILN_ERROR(kiln::gather_nd(p, Tensor::from_vector<int32_t>({2, 0}, {1, 2})), kInvalid,
                    "gather_nd: indices int32[1, 2] hold 2 at flat position 0");
  const Tensor idx = Tensor::from_vector<int32_t>({0, 2, 0}, {3, 1});
  const Tensor upd = Tensor::from_vector<float>({1, 2, 3}, {3});
  expect_floats(kiln::scatter_nd(idx, upd, {4}), {4}, {4, 0, 2, 0});
  EXPECT_KILN_ERROR(kiln::scatter_nd(idx, upd, {2}), kInvalid, "scatter_nd: indices int32[3, 1] hold 2");
  expect_floats(kiln::tensor_scatter_nd_add(kiln::ones({4}), idx, upd), {4}, {5, 1, 3, 1});
  EXPECT_KILN_ERROR(kiln::tensor_scatter_nd_add(kiln::ones({4}), idx, kiln::ones({2})), kInvalid,
                    "tensor_scatter_nd_add: updates float32[2]");
  // Integers sum in their own dtype: int64 exactly beyond 2^53, int32 wrapping around as TF's.
  const int64_t big = (int64_t{1} << 53) + 1;
  EXPECT_EQ(kiln::scatter_nd(idx, Tensor::from_vector<int64_t>({big, 7, 2}, {3}), {4}).to_vector<int64_t>(),
            (std::vector<int64_t>{big + 2, 0, 7, 0}));
  EXPECT_EQ(
      kiln::scatter_nd(idx, Tensor::from_vector<int32_t>({INT32_MAX, 5, 3}, {3}), {4}).to_vector<int32_t>(),
      (std::vector<int32_t>{INT32_MIN + 2, 0, 5, 0}));
  EXPECT_EQ(kiln::tensor_scatter_nd_add(Tensor::from_vector<int32_t>({1, 1, 1, 1}, {4}), idx,
                                        Tensor::from_vector<int32_t>({1, 2, 3}, {3}))
                .to_vector<int32_t>(),
            (std::vector<int32_t>{5, 1, 3, 1}));
  EXPECT_KILN_ERROR(
      kiln::tensor_scatter_nd_add(kiln::ones({4}), idx, Tensor::from_vector<int32_t>({1, 2, 3}, {3})),
      kInvalid, "tensor_scatter_nd_add: operands have different dtypes");
  const Tensor mask = Tensor::from_vector<bool>({true, false, true}, {3});
  expect_floats(kiln::boolean_mask(p, mask, 1), {2, 2}, {1, 3, 4, 6});
  EXPECT_KILN_ERROR(kiln::boolean_mask(p, mask), kInvalid, "boolean_mask: mask bool[3] does not match");
  const Tensor i = Tensor::from_vector<int64_t>({1, 0}, {2});
  expect_floats(kiln::one_hot(i, 3, 1, 0, 0), {3, 2}, {0, 1, 1, 0, 0, 0});
  const Tensor hot = kiln::one_hot(i, 2, 3, 0, -1, kiln::DType::int32);
  EXPECT_EQ(hot.to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 3, 0}));
  EXPECT_KILN_ERROR(kiln::one_hot(i, 2, 300, 0, -1, kiln::DType::uint8), kInvalid,
                    "one_hot: on_value 300 does not fit in uint8");
  expect_floats(kiln::pad(p, {{1, 0}, {0, 1}}, kiln::PadMode::constant, -1), {3, 4},
                {-1, -1, -1, -1, 1, 2, 3, -1, 4, 5, 6, -1});
  expect_floats(kiln::pad(p, {{0, 0}, {2, 0}}, kiln::PadMode::reflect), {2, 5}, {3, 2, 1, 2, 3, 6, 5, 4, 5, 6});
  expect_floats(kiln::pad(p, {{1, 0}, {0, 0}}, kiln::PadMode::symmetric), {3, 3}, {1, 2, 3, 1, 2, 3, 4, 5, 6});
  EXPECT_KILN_ERROR(kiln::pad(p, {{0, 0}}), kInvalid, "kiln_pad: num_dims is 1");
  EXPECT_KILN_ERROR(kiln::pad(p, {{0, 0}, {3, 0}}, kiln::PadMode::reflect), kInvalid, "<= 2 (dim - 1)");
  EXPECT_KILN_ERROR(kiln::pad(p, {{0, 0}, {0, 0}}, static_cast<kiln::PadMode>(9)), kInvalid, "pad: mode 9");
}

TEST(HppOps, GatherOneHotDropout) {
  const Tensor p = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  expect_floats(kiln::gather(p, Tensor::from_vector<int32_t>({2, 0}, {2})), {2, 2},
                {5, 6, 1, 2});  // default axis 0
  expect_floats(kiln::gather(p, Tensor::from_vector<int64_t>({1, 1, 0}, {3}), 1), {3, 3},
                {2, 2, 1, 4, 4, 3, 6, 6, 5});
  EXPECT_KILN_ERROR(kiln::gather(p, Tensor::from_vector<int32_t>({3}, {1})), kInvalid,
                    "gather: indices[0] = 3 is out of range for axis 0 of params [3, 2]");
  EXPECT_KILN_ERROR(kiln::gather(p, p), kInvalid,
                    "gather: argument 'indices' is float32[3, 2]; expected int32 or int64");

  const Tensor idx = Tensor::from_vector<int64_t>({0, 2, -1}, {3});
  expect_floats(kiln::one_hot(idx, 3), {3, 3}, {1, 0, 0, 0, 0, 1, 0, 0, 0});  // defaults on 1, off 0
  expect_floats(kiln::one_hot(idx, 3, 5, -1), {3, 3}, {5, -1, -1, -1, -1, 5, -1, -1, -1});
  EXPECT_KILN_ERROR(kiln::one_hot(idx, -2), kInvalid, "one_hot: depth is -2");
  EXPECT_KILN_ERROR(kiln::one_hot(p, 3), kInvalid, "one_hot: argument 'indices' is float32[3, 2]");

  const Tensor x = kiln::ones({1000});
  EXPECT_EQ(kiln::dropout(x, 0.5f, false).to_vector<float>(), x.to_vector<float>());
  kiln::set_seed(6);
  const Tensor kept = kiln::dropout(x, 0.25f, true, 5);
  EXPECT_NE(kept.to_vector<float>(), kiln::dropout(x, 0.25f, true, 5).to_vector<float>());
  kiln::set_seed(6);
  EXPECT_EQ(kept.to_vector<float>(), kiln::dropout(x, 0.25f, true, 5).to_vector<float>());
  int zeros = 0;
  for (float v : kept.to_vector<float>()) {
    ASSERT_TRUE(v == 0.0f || std::fabs(v - 1 / 0.75f) < 1e-6f) << v;
    zeros += v == 0.0f;
  }
  EXPECT_GT(zeros, 180);
  EXPECT_LT(zeros, 320);
  kiln::set_seed(8);
  const Tensor unseeded = kiln::dropout(x, 0.5f, true);  // default seed: the global sequence
  kiln::set_seed(8);
  EXPECT_EQ(unseeded.to_vector<float>(), kiln::dropout(x, 0.5f, true).to_vector<float>());
  EXPECT_KILN_ERROR(kiln::dropout(x, 1.0f, true), kInvalid, "dropout: rate is 1");
  EXPECT_KILN_ERROR(kiln::dropout(kiln::ones({2}, DType::int32), 0.5f, true), kInvalid,
                    "dropout: argument 'x' is int32[2]");
}

// -------------------------------------------------------- variables, tapes

TEST(HppOps, Variable) {
  kiln::Variable v(Tensor::from_vector<float>({1, 2}, {2}));  // defaults: "Variable", trainable
  EXPECT_EQ(v.name(), "Variable");
  EXPECT_TRUE(v.trainable());
  ASSERT_NE(v.get(), nullptr);
  Tensor before = v;  // operator Tensor reads the value
  v.assign(Tensor::from_vector<float>({5, 6}, {2}));
  expect_floats(v.value(), {2}, {5, 6});
  v.assign_add(kiln::ones({2}));
  v.assign_sub(kiln::fill({2}, 0.5));
  expect_floats(v.value(), {2}, {5.5f, 6.5f});
  expect_floats(before, {2}, {1, 2});  // reads never change

  kiln::Variable shared = v;  // copies are new handles to the same variable
  shared.assign(kiln::zeros({2}));
  expect_floats(v.value(), {2}, {0, 0});
  EXPECT_NE(shared.get(), v.get());
  {
    kiln::Variable moved = std::move(shared);  // a move transfers the handle
    EXPECT_FALSE(shared.valid());
    moved.assign_add(kiln::ones({2}));
  }  // freeing one handle leaves the variable alive for the others
  expect_floats(v.value(), {2}, {1, 1});
  v.assign(kiln::zeros({2}));

  kiln::Variable steps(Tensor::from_vector<int64_t>({3}, {1}), "steps", false);
  EXPECT_EQ(steps.name(), "steps");
  EXPECT_FALSE(steps.trainable());
  steps.assign_add(Tensor::from_vector<int64_t>({2}, {1}));
  EXPECT_EQ(steps.value().item<int64_t>(), 5);

  EXPECT_KILN_ERROR(kiln::Variable(Tensor()), kInvalid, "kiln_variable_create: argument 'initial' is NULL");
  EXPECT_KILN_ERROR(v.assign(kiln::ones({3})), kInvalid,
                    "Variable.assign on variable 'Variable': got float32[3]; expected float32[2]");
  EXPECT_KILN_ERROR(v.assign_add(kiln::ones({2}, DType::int32)), kInvalid,
                    "Variable.assign_add on variable 'Variable': got int32[2]");
  EXPECT_KILN_ERROR(steps.assign_sub(Tensor()), kInvalid,
                    "kiln_variable_assign_sub: argument 'delta' is NULL");
}

TEST(HppOps, GradientTapeOverloads) {
  // The kiln.hpp example: a braced list of one source gives a vector.
  const Tensor x = Tensor::from_vector({1.f, 2.f, 3.f}, {3});
  {
    kiln::GradientTape tape;
    tape.watch(x);
    Tensor loss = kiln::sum(x * x);
    tape.stop();
    Tensor grad = tape.gradient(loss, {x})[0];
    expect_floats(grad, {3}, {2, 4, 6});
    EXPECT_KILN_ERROR(tape.gradient(loss, x), KILN_STATUS_FAILED_PRECONDITION, "only be called once");
  }
  const Tensor z = Tensor::from_vector<float>({3, 4}, {2});
  kiln::GradientTape tape(true);  // persistent
  tape.watch(x);
  tape.watch(z);
  Tensor sq = x * x;
  tape.stop();
  Tensor cube_unrecorded = sq * x;
  tape.start();
  Tensor cube = sq * x;
  tape.stop();
  expect_floats(tape.gradient(cube, x), {3}, {3, 12, 27});  // single source
  std::vector<Tensor> g = tape.gradient(cube, {x, z});
  ASSERT_EQ(g.size(), 2u);
  expect_floats(g[0], {3}, {3, 12, 27});
  EXPECT_FALSE(g[1].valid());  // unconnected: none
  expect_floats(tape.gradient(cube, z, kiln::Unconnected::zero), {2}, {0, 0});
  EXPECT_FALSE(tape.gradient(cube_unrecorded, x).valid());
  std::vector<Tensor> scaled = tape.gradient(sq, std::vector<Tensor>{x}, kiln::Unconnected::none,
                                             Tensor::from_vector<float>({1, 0.5f, -1}, {3}));
  expect_floats(scaled[0], {3}, {2, 2, -6});
  expect_floats(tape.gradient(sq, {x}, kiln::Unconnected::none, kiln::fill({3}, 2))[0], {3}, {4, 8, 12});
  EXPECT_KILN_ERROR(tape.gradient(sq, {x}, kiln::Unconnected::none, kiln::ones({2})), kInvalid,
                    "GradientTape.gradient: output gradient float32[2] does not match target float32[3]");
  EXPECT_KILN_ERROR(tape.gradient(sq, {x}, static_cast<kiln::Unconnected>(4)), kInvalid,
                    "GradientTape::gradient: unconnected 4 is not valid");
  EXPECT_KILN_ERROR(tape.gradient(sq, {Tensor()}), kInvalid,
                    "kiln_tape_gradient_with_output: sources[0] is NULL");
  EXPECT_KILN_ERROR(tape.gradient(kiln::cast(sq, DType::int32), x), kInvalid,
                    "GradientTape.gradient: target is int32[3]");
  EXPECT_KILN_ERROR(tape.watch(kiln::ones({2}, DType::int32)), kInvalid,
                    "GradientTape.watch: cannot watch a int32[2]");
  EXPECT_KILN_ERROR(tape.watch(Tensor()), kInvalid, "kiln_tape_watch: argument 'tensor' is NULL");

  // Variables: trainable ones read under a tape are watched; the others only with watch(Variable).
  kiln::Variable w(Tensor::from_vector<float>({1, 2}, {2}), "w");
  kiln::Variable c(Tensor::from_vector<float>({3}, {1}), "c", false);
  {
    kiln::GradientTape vt(true);
    Tensor loss = kiln::sum(kiln::square(w)) + kiln::sum(Tensor(c));
    vt.stop();
    std::vector<Tensor> gv = vt.gradient(loss, std::vector<kiln::Variable>{w, c});
    expect_floats(gv[0], {2}, {2, 4});
    EXPECT_FALSE(gv[1].valid());
    std::vector<Tensor> gz = vt.gradient(loss, {w, c}, kiln::Unconnected::zero);  // braced list of variables
    expect_floats(gz[0], {2}, {2, 4});
    expect_floats(gz[1], {1}, {0});
    EXPECT_KILN_ERROR(vt.gradient(loss, {w}, static_cast<kiln::Unconnected>(-2)), kInvalid,
                      "GradientTape::gradient: unconnected -2 is not valid");
    EXPECT_KILN_ERROR(vt.gradient(Tensor(), {w}), kInvalid,
                      "kiln_tape_gradient_variables: argument 'target' is NULL");
  }
  {
    kiln::GradientTape vt(false, false);  // no automatic watching
    vt.watch(c);
    Tensor loss = kiln::sum(kiln::square(c.value())) + kiln::sum(w.value());
    vt.stop();
    std::vector<Tensor> gv = vt.gradient(loss, {w, c});
    EXPECT_FALSE(gv[0].valid());
    expect_floats(gv[1], {1}, {6});
  }
}

// ------------------------------------------------------------------ losses

TEST(HppOpsMath, Losses) {
  Tensor x = Tensor::from_vector<float>({2, 1, 0, 0, 0, 0}, {2, 3});
  Tensor labels = Tensor::from_vector<int32_t>({0, 1}, {2});
  const double lse0 = std::log(std::exp(2.0) + std::exp(1.0) + 1.0);
  expect_floats(kiln::sparse_softmax_cross_entropy_with_logits(labels, x), {2},
                {float(lse0 - 2), float(std::log(3.0))}, 1e-6);
  Tensor z = Tensor::from_vector<float>({1, 0, 0, 0, 1, 0}, {2, 3});
  expect_floats(kiln::softmax_cross_entropy_with_logits(z, x), {2}, {float(lse0 - 2), float(std::log(3.0))}, 1e-6);
  expect_floats(kiln::softmax_cross_entropy_with_logits(kiln::transpose(z), kiln::transpose(x), 0), {2},
                {float(lse0 - 2), float(std::log(3.0))}, 1e-6);
  expect_floats(kiln::sigmoid_cross_entropy_with_logits(Tensor::from_vector<float>({1, 0}, {2}),
                                                        Tensor::from_vector<float>({0, -20}, {2})),
                {2}, {float(std::log(2.0)), float(std::log1p(std::exp(-20.0)))}, 1e-6);
  EXPECT_KILN_ERROR(kiln::sparse_softmax_cross_entropy_with_logits(Tensor::from_vector<int32_t>({0, 5}, {2}), x),
                    kInvalid, "labels[1] = 5");
  EXPECT_KILN_ERROR(kiln::softmax_cross_entropy_with_logits(labels, x), kInvalid, "argument 'labels' is int32");
  EXPECT_KILN_ERROR(kiln::sigmoid_cross_entropy_with_logits(z, labels), kInvalid, "argument 'logits' is int32");
  kiln::GradientTape tape;
  tape.watch(x);
  Tensor loss = kiln::sum(kiln::sparse_softmax_cross_entropy_with_logits(labels, x));
  tape.stop();
  const float e = float(std::exp(2.0) + std::exp(1.0) + 1.0);
  expect_floats(tape.gradient(loss, x), {2, 3},
                {float(std::exp(2.0)) / e - 1, float(std::exp(1.0)) / e, 1 / e, 1.f / 3, 1.f / 3 - 1, 1.f / 3}, 1e-5);
}

TEST(HppOpsMath, CtcLoss) {
  // Uniform logits over two classes and two frames: [1] has the paths 11, _1 and 1_ (3 of 4).
  Tensor x = kiln::zeros({2, 1, 2});  // time-major [frames, batch, classes]
  Tensor labels = Tensor::from_vector<int32_t>({1}, {1, 1});
  Tensor one = Tensor::from_vector<int32_t>({1}, {1}), two = Tensor::from_vector<int32_t>({2}, {1});
  expect_floats(kiln::ctc_loss(labels, x, one, two), {1}, {float(-std::log(0.75))}, 1e-6);
  expect_floats(kiln::ctc_loss(Tensor::from_vector<int32_t>({0}, {1, 1}), kiln::transpose(x, {1, 0, 2}), one,
                               two, false, -1),
                {1}, {float(-std::log(0.75))}, 1e-6);
  kiln::GradientTape tape;
  tape.watch(x);
  Tensor loss = kiln::sum(kiln::ctc_loss(labels, x, one, two));
  tape.stop();
  // d/dx = softmax - occupancy: blank 1/3 of frame 0 (the path _1), 1 of 2/3 of it.
  expect_floats(tape.gradient(loss, x), {2, 1, 2},
                {0.5f - 1.f / 3, 0.5f - 2.f / 3, 0.5f - 1.f / 3, 0.5f - 2.f / 3}, 1e-6);
  EXPECT_KILN_ERROR(kiln::ctc_loss(labels, x, one, two, true, 1), kInvalid,
                    "labels[0, 0] = 1 is the blank index");
}

TEST(HppOpsMath, CtcDecode) {
  // Frame maxima 1, 1, 2 (blank 0): greedily [1, 2], scored -(3 + 2 + 4).
  const Tensor x = Tensor::from_vector<float>({0, 3, 1, 0, 2, 1, 0, 1, 4}, {1, 3, 3});
  const Tensor lengths = Tensor::from_vector<int64_t>({3}, {1});
  auto [paths, scores] = kiln::ctc_decode(x, lengths);
  EXPECT_EQ(paths.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, -1}));
  expect_floats(scores, {1, 1}, {-9});
  auto [beams, log_probs] = kiln::ctc_decode(x, lengths, "beam_search", 8, 3);
  EXPECT_EQ(beams.shape(), (kiln::Dims{3, 1, 3}));
  const std::vector<float> lp = log_probs.to_vector<float>();
  ASSERT_EQ(lp.size(), 3u);
  EXPECT_TRUE(lp[0] >= lp[1] && lp[1] >= lp[2] && lp[0] < 0) << lp[0] << " " << lp[1] << " " << lp[2];
  EXPECT_KILN_ERROR(kiln::ctc_decode(x, lengths, "beam"), kInvalid, "strategy 'beam'");
}

// ------------------------------------------ more reductions, scans, helpers

TEST(HppOpsMath, ReductionsScansHelpers) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_floats(kiln::reduce_prod(x, {1}), {2}, {6, 120});
  expect_floats(kiln::reduce_prod(x), {}, {720});
  Tensor b = Tensor::from_vector<bool>({true, false, true, true, true, true}, {2, 3});
  EXPECT_EQ(kiln::reduce_any(b, {1}).to_vector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(kiln::reduce_all(b, {1}).to_vector<bool>(), (std::vector<bool>{false, true}));
  EXPECT_EQ(kiln::reduce_all(b).to_vector<bool>(), (std::vector<bool>{false}));
  expect_floats(kiln::reduce_logsumexp(x, {1}, true), {2, 1},
                {float(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0))),
                 float(std::log(std::exp(4.0) + std::exp(5.0) + std::exp(6.0)))}, 1e-6);
  EXPECT_EQ(kiln::argmin(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  expect_floats(kiln::bias_add(x, Tensor::from_vector<float>({1, 1, 2}, {3})), {2, 3}, {2, 3, 5, 5, 6, 8});
  kiln::Moments m = kiln::moments(x, {0});
  expect_floats(m.mean, {3}, {2.5f, 3.5f, 4.5f});
  expect_floats(m.variance, {3}, {2.25f, 2.25f, 2.25f});
  expect_floats(kiln::l2_normalize(Tensor::from_vector<float>({3, 4}, {2})), {2}, {0.6f, 0.8f});
  expect_floats(kiln::cumsum(x, 1), {2, 3}, {1, 3, 6, 4, 9, 15});
  expect_floats(kiln::cumsum(x, 0, true), {2, 3}, {0, 0, 0, 1, 2, 3});
  expect_floats(kiln::cumprod(x, 1), {2, 3}, {1, 2, 6, 4, 20, 120});
  expect_floats(kiln::cumprod(x, 0, true, true), {2, 3}, {4, 5, 6, 1, 1, 1});
  kiln::TopK t = kiln::top_k(x, 2);
  expect_floats(t.values, {2, 2}, {3, 2, 6, 5});
  EXPECT_EQ(t.indices.to_vector<int32_t>(), (std::vector<int32_t>{2, 1, 2, 1}));
  EXPECT_KILN_ERROR(kiln::reduce_any(x), kInvalid, "reduce_any: argument 'x' is float32");
  EXPECT_KILN_ERROR(kiln::reduce_prod(b), kInvalid, "reduce_prod: argument 'x' is bool");
  EXPECT_KILN_ERROR(kiln::reduce_logsumexp(x, {3}), kInvalid, "reduce_logsumexp");
  EXPECT_KILN_ERROR(kiln::argmin(b), kInvalid, "argmin: argument 'x' is bool");
  EXPECT_KILN_ERROR(kiln::bias_add(x, x), kInvalid, "bias_add");
  EXPECT_KILN_ERROR(kiln::moments(b, {0}), kInvalid, "moments: argument 'x' is bool");
  EXPECT_KILN_ERROR(kiln::l2_normalize(x, {}, -1), kInvalid, "l2_normalize: epsilon is -1");
  EXPECT_KILN_ERROR(kiln::cumsum(x, 5), kInvalid, "cumsum");
  EXPECT_KILN_ERROR(kiln::cumprod(x, 5), kInvalid, "cumprod");
  EXPECT_KILN_ERROR(kiln::top_k(x, -1), kInvalid, "top_k: k is -1");
  // top_k's gradient lands on the chosen positions.
  kiln::GradientTape tape;
  tape.watch(x);
  Tensor s = kiln::sum(kiln::top_k(x, 2).values);
  tape.stop();
  expect_floats(tape.gradient(s, x), {2, 3}, {0, 1, 1, 0, 1, 1});
}

// --------------------------------------------------------- floor division

TEST(HppOpsMath, FloorDivision) {
  Tensor a = Tensor::from_vector<int32_t>({7, -7, 7, -7}, {4}), b = Tensor::from_vector<int32_t>({2, 2, -2, -2}, {4});
  EXPECT_EQ(kiln::floordiv(a, b).to_vector<int32_t>(), (std::vector<int32_t>{3, -4, -4, 3}));
  EXPECT_EQ(kiln::floormod(a, b).to_vector<int32_t>(), (std::vector<int32_t>{1, 1, -1, -1}));
  EXPECT_EQ((a % b).to_vector<int32_t>(), (std::vector<int32_t>{1, 1, -1, -1}));
  expect_floats(kiln::floormod(Tensor::from_vector<float>({-7.5f}, {1}), Tensor::scalar(2.0f)), {1}, {0.5f});
  EXPECT_KILN_ERROR(kiln::floordiv(a, Tensor::from_vector<int32_t>({0}, {1})), kInvalid,
                    "floordiv: integer division by zero");
  EXPECT_KILN_ERROR(kiln::floormod(a, Tensor::scalar(1.0f)), kInvalid, "floormod: operands have different dtypes");
}

// ------------------------------------------------------------------ einsum

TEST(HppOpsMath, Einsum) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  expect_floats(kiln::einsum("ij,jk->ik", {a, b}), {2, 2}, {4, 5, 10, 11});
  expect_floats(kiln::einsum("ij->ji", {a}), {3, 2}, {1, 4, 2, 5, 3, 6});
  expect_floats(kiln::einsum("ij->", {a}), {}, {21});
  Tensor q = iota({1, 2, 1, 3}), k = iota({1, 2, 1, 3});
  expect_floats(kiln::einsum("bqhd,bkhd->bhqk", {q, k}), {1, 1, 2, 2}, {5, 14, 14, 50});
  EXPECT_KILN_ERROR(kiln::einsum("ij,jk->ik", {a, a}), kInvalid, "gives label j sizes 3 and 2");
  EXPECT_KILN_ERROR(kiln::einsum("ij,jk,kl->il", {a, b, a}), KILN_STATUS_UNIMPLEMENTED, "3 operands");
  kiln::GradientTape tape;
  tape.watch(a);
  Tensor s = kiln::sum(kiln::einsum("ij,jk->ik", {a, b}));
  tape.stop();
  expect_floats(tape.gradient(s, a), {2, 3}, {1, 1, 2, 1, 1, 2});
}

// ------------------------------------- exact int64 creation, more unary ops

TEST(HppOps, Int64CreationIsExact) {
  const int64_t big = int64_t{1} << 60;
  EXPECT_EQ(kiln::fill_int64({1}, big + 1).to_vector<int64_t>(), std::vector<int64_t>{big + 1});
  EXPECT_EQ(kiln::range_int64(big, big + 3).to_vector<int64_t>(),
            (std::vector<int64_t>{big, big + 1, big + 2}));
  EXPECT_EQ(kiln::range_int64(4, -3, -3, DType::int32).to_vector<int32_t>(),
            (std::vector<int32_t>{4, 1, -2}));
  EXPECT_KILN_ERROR(kiln::fill_int64({1}, big, DType::int32), kInvalid, "does not fit in int32");
  EXPECT_KILN_ERROR(kiln::range_int64(0, 3, 0), kInvalid, "delta is 0");
  EXPECT_KILN_ERROR(kiln::range(0, NAN, 1, DType::int64), kInvalid, "finite");
  EXPECT_KILN_ERROR(kiln::fill({1}, 1e30, DType::int64), kInvalid, "int64");
}

TEST(HppOps, MoreUnaryOps) {
  const Floats xv{-0.75f, -0.5f, 0, 0.5f, 2.5f, 3.5f};
  const Tensor x = Tensor::from_vector(xv, {6});
  const double scale = 1.0507009873554805, alpha = 1.6732632423543772;
  const std::vector<UnaryCase> cases = {
      {"log1p", [](const Tensor &t) { return kiln::log1p(t); }, [](double v) { return std::log1p(v); },
       false},
      {"expm1", [](const Tensor &t) { return kiln::expm1(t); }, [](double v) { return std::expm1(v); },
       false},
      {"floor", [](const Tensor &t) { return kiln::floor(t); }, [](double v) { return std::floor(v); },
       false},
      {"round", [](const Tensor &t) { return kiln::round(t); }, [](double v) { return std::nearbyint(v); },
       false},
      {"sign", [](const Tensor &t) { return kiln::sign(t); },
       [](double v) { return v > 0   ? 1.0
                             : v < 0 ? -1.0
                                     : 0.0; }, false},
      {"sin", [](const Tensor &t) { return kiln::sin(t); }, [](double v) { return std::sin(v); }, false},
      {"cos", [](const Tensor &t) { return kiln::cos(t); }, [](double v) { return std::cos(v); }, false},
      {"relu6", [](const Tensor &t) { return kiln::relu6(t); },
       [](double v) { return std::min(6.0, std::max(0.0, v)); }, false},
      {"selu", [](const Tensor &t) { return kiln::selu(t); },
       [=](double v) { return v > 0 ? scale * v : scale * alpha * std::expm1(v); }, false},
  };
  const Tensor bad = kiln::zeros({2}, DType::uint8);
  for (const UnaryCase &c : cases) {
    SCOPED_TRACE(c.name);
    Floats want;
    for (float v : xv) want.push_back(static_cast<float>(c.ref(v)));
    expect_floats(c.op(x), {6}, want, 2e-6);
    EXPECT_KILN_ERROR(c.op(bad), kInvalid, "expected float32");
  }
}

// A variable copies its initial value and has its own, stable id; tape.gradient takes a list of targets.
TEST(HppOps, GradientTapeWatchedVariables) {
  kiln::Variable a(Tensor::from_vector<float>({1}, {1}), "a"), b(Tensor::from_vector<float>({2}, {1}), "b");
  std::vector<kiln::Variable> watched;
  {
    kiln::GradientTape tape;
    tape.watch(b);
    Tensor y = a * kiln::fill({}, 3);  // a read: watched after b
    tape.stop();
    watched = tape.watched_variables();
    ASSERT_EQ(watched.size(), 2u);
    EXPECT_EQ(watched[0].id(), b.id());
    EXPECT_EQ(watched[1].id(), a.id());
    tape.reset();
    EXPECT_TRUE(tape.watched_variables().empty());
  }
  watched[1].assign_add(kiln::ones({1}));  // the same variable as a
  expect_floats(a.value(), {1}, {2});
  {
    kiln::GradientTape tape(false, false);  // explicit watches only
    Tensor y = a * kiln::fill({}, 3);
    EXPECT_TRUE(tape.watched_variables().empty());
  }
}

TEST(HppOps, VariableIdentityAndTargetLists) {
  const Tensor t = Tensor::from_vector<float>({1, 2}, {2});
  kiln::Variable v1(t, "v1"), v2(t, "v2");
  const kiln::Variable alias = v1;  // a copy of the handle is the same variable
  EXPECT_NE(v1.id(), 0u);
  EXPECT_NE(v1.id(), v2.id());
  EXPECT_EQ(alias.id(), v1.id());
  {
    kiln::GradientTape tape;
    Tensor loss = kiln::sum(v1 * kiln::fill({}, 3)) + kiln::sum(v2 * kiln::fill({}, 5));
    std::vector<Tensor> g = tape.gradient(loss, {v1, v2});
    expect_floats(g[0], {2}, {3, 3});
    expect_floats(g[1], {2}, {5, 5});
  }
  const uint64_t id = v1.id();
  v1.assign_add(kiln::ones({2}));
  EXPECT_EQ(v1.id(), id);
  expect_floats(t, {2}, {1, 2});
  {
    kiln::GradientTape tape;
    Tensor x = Tensor::from_vector<float>({1, 2}, {2});
    tape.watch(x);
    Tensor l1 = kiln::sum(x * x);
    Tensor l2 = x * v2;
    tape.stop();
    // A rejected call (int32 output gradient) leaves the non-persistent tape usable.
    EXPECT_KILN_ERROR(tape.gradient(std::vector<Tensor>{l1, l2}, std::vector<Tensor>{x},
                                    kiln::Unconnected::none, {Tensor(), kiln::ones({2}, DType::int32)}),
                      kInvalid, "output gradient int32[2] does not match target float32[2]");
    EXPECT_KILN_ERROR(tape.gradient(std::vector<Tensor>{l1}, std::vector<Tensor>{Tensor()}), kInvalid,
                      "source 0 has neither a tensor nor a variable");
    std::vector<Tensor> g = tape.gradient({l1, l2}, {v2});  // braced lists of targets and variables
    expect_floats(g[0], {2}, {1, 2});
    EXPECT_KILN_ERROR(tape.gradient(std::vector<Tensor>{l1, l2}, std::vector<Tensor>{x}),
                      KILN_STATUS_FAILED_PRECONDITION, "only be called once");
  }
  {
    kiln::GradientTape tape(true);
    Tensor x = Tensor::from_vector<float>({1, 2}, {2});
    tape.watch(x);
    Tensor l1 = kiln::sum(x * x);
    Tensor l2 = x * v2;
    tape.stop();
    expect_floats(tape.gradient({l1, l2}, {x})[0], {2}, {3, 6});
    expect_floats(tape.gradient(std::vector<Tensor>{l1, l2}, std::vector<Tensor>{x}, kiln::Unconnected::none,
                                {kiln::fill({}, 2), Tensor()})[0],
                  {2}, {5, 10});
  }
}

// Stateless random ops and stateless dropout: the same seed pair, the same values, on any thread.
TEST(HppOps, StatelessRandomAndDropoutNoiseShape) {
  kiln::set_seed(1);
  const Tensor u = kiln::stateless_random_uniform({500}, {3, 4}, -1, 2);
  kiln::set_seed(2);
  EXPECT_EQ(u.to_vector<float>(), kiln::stateless_random_uniform({500}, {3, 4}, -1, 2).to_vector<float>());
  EXPECT_NE(u.to_vector<float>(), kiln::stateless_random_uniform({500}, {4, 3}, -1, 2).to_vector<float>());
  const Tensor n = kiln::stateless_random_normal({500}, {5, 6}, 1, 2);
  const Tensor t = kiln::stateless_truncated_normal({500}, {5, 6});
  const Tensor x = kiln::ones({8, 5});
  const Tensor d = kiln::stateless_dropout(x, 0.5f, {7, 8}, {8, 1});
  std::vector<std::vector<float>> got(4 * 4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      got[i * 4 + 0] = kiln::stateless_random_uniform({500}, {3, 4}, -1, 2).to_vector<float>();
      got[i * 4 + 1] = kiln::stateless_random_normal({500}, {5, 6}, 1, 2).to_vector<float>();
      got[i * 4 + 2] = kiln::stateless_truncated_normal({500}, {5, 6}).to_vector<float>();
      got[i * 4 + 3] = kiln::stateless_dropout(x, 0.5f, {7, 8}, {8, 1}).to_vector<float>();
    });
  for (auto &th : threads) th.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i * 4 + 0], u.to_vector<float>()) << "thread " << i;
    EXPECT_EQ(got[i * 4 + 1], n.to_vector<float>()) << "thread " << i;
    EXPECT_EQ(got[i * 4 + 2], t.to_vector<float>()) << "thread " << i;
    EXPECT_EQ(got[i * 4 + 3], d.to_vector<float>()) << "thread " << i;
  }
  // Rows are kept or dropped whole with noise_shape [8, 1] (also with -1 for x's dim).
  const std::vector<float> dv = d.to_vector<float>();
  for (int r = 0; r < 8; ++r)
    for (int c = 1; c < 5; ++c) EXPECT_EQ(dv[r * 5 + c], dv[r * 5]) << r;
  EXPECT_EQ(kiln::stateless_dropout(x, 0.5f, {7, 8}, {-1, 1}).to_vector<float>(), dv);
  const std::vector<float> sd = kiln::dropout(x, 0.5f, true, 3, {1, 5}).to_vector<float>();
  for (int r = 1; r < 8; ++r)
    for (int c = 0; c < 5; ++c) EXPECT_EQ(sd[r * 5 + c], sd[c]) << r;
  // Gradients flow through the broadcast mask.
  kiln::GradientTape tape;
  tape.watch(x);
  Tensor y = kiln::stateless_dropout(x, 0.5f, {7, 8}, {8, 1});
  expect_floats(tape.gradient(kiln::sum(y), x), {8, 5}, dv);
  EXPECT_KILN_ERROR(kiln::stateless_dropout(x, 0.5f, {1, 2}, {8, 2}), kInvalid,
                    "stateless_dropout: noise_shape [8, 2] does not broadcast");
  EXPECT_KILN_ERROR(kiln::dropout(x, 0.5f, true, 1, {8}), kInvalid, "dropout: noise_shape [8] has rank 1");
  EXPECT_KILN_ERROR(kiln::stateless_random_normal({2}, {1, 2}, 0, -1), kInvalid,
                    "stateless_random_normal: stddev is -1");
}

// Nested tapes through max_pool2d: the gradient of its gradient picks ddx at each window's argmax.
TEST(HppOps, MaxPoolSecondOrder) {
  const Tensor x =
      Tensor::from_vector<float>({1, 9, 2, 3, 4, 5, 6, 7, 8, 0, 15, 11, 12, 13, 10, 14}, {1, 4, 4, 1});
  const Tensor dy = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 2, 2, 1});
  kiln::GradientTape outer;
  outer.watch(dy);
  Tensor dx;
  {
    kiln::GradientTape inner;
    inner.watch(x);
    Tensor y = kiln::max_pool2d(x, {2, 2}, {2, 2});
    dx = inner.gradient(y, std::vector<Tensor>{x}, kiln::Unconnected::none, dy)[0];
  }
  const Tensor ddx = kiln::reshape(kiln::range(1, 17), {1, 4, 4, 1});
  expect_floats(outer.gradient(dx, std::vector<Tensor>{dy}, kiln::Unconnected::none, ddx)[0], {1, 2, 2, 1},
                {2, 8, 14, 11});
}

TEST(HppOps, ClipByNormAndGlobalNorm) {
  const Tensor a = Tensor::from_vector({3.0f, 4.0f}, {2}), b = Tensor::from_vector({12.0f}, {1});
  EXPECT_EQ(kiln::global_norm({a, Tensor(), b}).to_vector<float>(), std::vector<float>{13});
  auto [clipped, norm] = kiln::clip_by_global_norm({a, Tensor(), b}, 6.5);
  EXPECT_EQ(norm.to_vector<float>(), std::vector<float>{13});
  EXPECT_EQ(clipped[0].to_vector<float>(), (std::vector<float>{1.5f, 2}));
  EXPECT_FALSE(clipped[1].valid());
  EXPECT_EQ(clipped[2].to_vector<float>(), std::vector<float>{6});
  EXPECT_EQ(kiln::clip_by_global_norm({a}, 20).first[0].to_vector<float>(), (std::vector<float>{3, 4}));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(
      kiln::clip_by_global_norm({a}, 1, Tensor::from_vector({inf}, {})).first[0].to_vector<float>()[0]));
  EXPECT_EQ(kiln::clip_by_norm(a, 2.5).to_vector<float>(), (std::vector<float>{1.5f, 2}));
  const Tensor rows = Tensor::from_vector({3.0f, 4.0f, 0.0f, 0.0f, 0.3f, 0.4f}, {3, 2});
  EXPECT_EQ(kiln::clip_by_norm(rows, 1, {1}).to_vector<float>(),
            (std::vector<float>{0.6f, 0.8f, 0, 0, 0.3f, 0.4f}));
  EXPECT_THROW(kiln::global_norm({}), kiln::Error);
}

}  // namespace

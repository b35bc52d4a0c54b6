// Binary elementwise kernels with NumPy broadcasting.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_loops.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

// Integer arithmetic wraps (two's complement) instead of overflowing, which would be UB.
template <typename T>
using Unsigned = std::make_unsigned_t<T>;

struct AddF {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<Unsigned<T>>(a) + static_cast<Unsigned<T>>(b));
    else
      return a + b;
  }
};
struct SubF {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<Unsigned<T>>(a) - static_cast<Unsigned<T>>(b));
    else
      return a - b;
  }
};
struct MulF {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>)
      return static_cast<T>(static_cast<Unsigned<T>>(a) * static_cast<Unsigned<T>>(b));
    else
      return a * b;
  }
};
// Integer division truncates toward zero (like C and TensorFlow's Div). ops::div rejects a
// zero divisor before the kernel runs; the b == 0 branch only keeps a kernel from trapping
// if a caller forgets. MIN / -1 wraps to MIN. Floats follow IEEE (inf or NaN).
struct DivF {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;
      if (b == -1) return static_cast<T>(Unsigned<T>(0) - static_cast<Unsigned<T>>(a));
      return static_cast<T>(a / b);
    } else {
      return a / b;
    }
  }
};
template <typename T>
inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

// NaN in either operand gives NaN, like TensorFlow.
struct MaxF {
  template <typename T>
  T operator()(T a, T b) const {
    return (a > b || is_nan(a)) ? a : b;
  }
};
struct MinF {
  template <typename T>
  T operator()(T a, T b) const {
    return (a < b || is_nan(a)) ? a : b;
  }
};
// Integers raise by squaring, wrapping on overflow (0^0 = 1); ops::pow rejects a negative
// exponent before the kernel runs, and the b < 0 branch only keeps a forgetful caller defined.
struct PowF {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b < 0) return 0;
      Unsigned<T> base = static_cast<Unsigned<T>>(a), r = 1;
      for (auto e = static_cast<Unsigned<T>>(b); e != 0; e >>= 1) {
        if (e & 1) r *= base;
        base *= base;
      }
      return static_cast<T>(r);
    } else {
      return std::pow(a, b);
    }
  }
};
struct EqF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a == b;
  }
};
struct NeF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a != b;
  }
};
struct GtF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a > b;
  }
};
struct GeF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a >= b;
  }
};
struct LtF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a < b;
  }
};
struct LeF {
  template <typename T>
  uint8_t operator()(T a, T b) const {
    return a <= b;
  }
};
struct AndF {
  uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) & (b != 0); }
};
struct OrF {
  uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) | (b != 0); }
};
struct XorF {
  uint8_t operator()(uint8_t a, uint8_t b) const { return (a != 0) ^ (b != 0); }
};

template <typename T, typename R, typename Op>
void run(const void *a_raw, const Shape &as, const void *b_raw, const Shape &bs, void *out_raw,
         const Shape &os, Op op) {
  const T *a = static_cast<const T *>(a_raw);
  const T *b = static_cast<const T *>(b_raw);
  R *out = static_cast<R *>(out_raw);
  const int64_t n = os.num_elements(), na = as.num_elements(), nb = bs.num_elements();
  if (n == 0) return;
  // Same shape, or a scalar on one side: one flat span, no plan.
  if ((na == n || na == 1) && (nb == n || nb == 1)) {
    const int64_t sa = na == n ? 1 : 0, sb = nb == n ? 1 : 0;
    parallel_chunks(n, [&](int64_t lo, int64_t hi) {
      apply_span(a + lo * sa, sa, b + lo * sb, sb, out + lo, hi - lo, op);
    });
    return;
  }
  const Shape *ins[2] = {&as, &bs};
  const BroadcastPlan<2> plan = make_broadcast_plan<2>(os, ins);
  parallel_chunks(n, [&](int64_t lo, int64_t hi) {
    for_each_span(plan, lo, hi, [&](int64_t o, const int64_t *off, const int64_t *st, int64_t len) {
      apply_span(a + off[0], st[0], b + off[1], st[1], out + o, len, op);
    });
  });
}

// bfloat16 runs the float32 formula on the widened operands and rounds the result once,
// as TensorFlow's CPU kernels do; comparisons compare the widened values (exactly).
template <typename Op>
struct Bf16Op {
  Op op;
  auto operator()(bfloat16 a, bfloat16 b) const {
    const auto r = op(static_cast<float>(a), static_cast<float>(b));
    if constexpr (std::is_same_v<std::decay_t<decltype(r)>, float>)
      return bfloat16(r);
    else
      return r;
  }
};

// run<T, R> for the storage type T: bfloat16 computes through Bf16Op.
template <typename T, typename R, typename Op>
void run_storage(const void *a, const Shape &as, const void *b, const Shape &bs, void *out, const Shape &os,
                 Op op) {
  if constexpr (std::is_same_v<T, bfloat16>)
    run<T, R>(a, as, b, bs, out, os, Bf16Op<Op>{op});
  else
    run<T, R>(a, as, b, bs, out, os, op);
}

template <typename T>
void run_typed(BinaryOp op, const void *a, const Shape &as, const void *b, const Shape &bs, void *out,
               const Shape &os) {
  switch (op) {
    case BinaryOp::kAdd:
      return run_storage<T, T>(a, as, b, bs, out, os, AddF{});
    case BinaryOp::kSub:
      return run_storage<T, T>(a, as, b, bs, out, os, SubF{});
    case BinaryOp::kMul:
      return run_storage<T, T>(a, as, b, bs, out, os, MulF{});
    case BinaryOp::kDiv:
      return run_storage<T, T>(a, as, b, bs, out, os, DivF{});
    case BinaryOp::kMaximum:
      return run_storage<T, T>(a, as, b, bs, out, os, MaxF{});
    case BinaryOp::kMinimum:
      return run_storage<T, T>(a, as, b, bs, out, os, MinF{});
    case BinaryOp::kEqual:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, EqF{});
    case BinaryOp::kNotEqual:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, NeF{});
    case BinaryOp::kGreater:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, GtF{});
    case BinaryOp::kGreaterEqual:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, GeF{});
    case BinaryOp::kLess:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, LtF{});
    case BinaryOp::kLessEqual:
      return run_storage<T, uint8_t>(a, as, b, bs, out, os, LeF{});
    case BinaryOp::kPow:
      if constexpr (!std::is_same_v<T, uint8_t>) return run_storage<T, T>(a, as, b, bs, out, os, PowF{});
      break;
    default:
      break;
  }
  fail(Code::kInternal, "elementwise binary kernel: op ", static_cast<int>(op),
       " is not defined for this dtype");
}

// oneDNN binary for large float32 operands of the output's shape. Only the IEEE operations go
// here (the same bits as the loops); oneDNN's max/min drop a NaN in src1, so maximum and minimum
// always run the loops. A broadcasting operand runs the loops too: oneDNN 2.6 runs several
// broadcast patterns in its reference code (x[16,4,128,128] - s[16,4,128,1]: 56 ms against the
// loops' 0.24 ms; s[16,4,1,128] likewise), and the loops are level with its JIT code on the rest.
bool onednn_binary(BinaryOp op, const void *a, const Shape &as, const void *b, const Shape &bs, void *out,
                   const Shape &os) {
  static constexpr std::pair<BinaryOp, dnnl::algorithm> kTable[] = {
      {BinaryOp::kAdd, dnnl::algorithm::binary_add},
      {BinaryOp::kMul, dnnl::algorithm::binary_mul},
      {BinaryOp::kSub, dnnl::algorithm::binary_sub},
      {BinaryOp::kDiv, dnnl::algorithm::binary_div},
  };
  const int64_t n = os.num_elements();
  if (as.num_elements() != n || bs.num_elements() != n) return false;
  const auto *entry = std::find_if(std::begin(kTable), std::end(kTable), [op](const auto &e) { return e.first == op; });
  if (entry == std::end(kTable)) return false;
  const dnnl::algorithm alg = entry->second;
  PrimitiveKey key(PrimitiveKind::kBinary);
  key.add(static_cast<int64_t>(alg)).add(os);
  run_cached(key,
             [&] {
               dnnl::binary::desc d(alg, plain_f32_desc(os), plain_f32_desc(os), plain_f32_desc(os));
               return dnnl::primitive(
                   dnnl::binary(dnnl::binary::primitive_desc(d, user_scratchpad_attr(), engine())));
             },
             {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, out}});
  return true;
}

template <typename T, typename P>
bool any_of(const void *x_raw, int64_t n, P pred) {
  const T *x = static_cast<const T *>(x_raw);
  bool found = false;
  for (int64_t i = 0; i < n; ++i) found |= pred(x[i]);
  return found;
}

template <typename P>
bool any_integer(DType dtype, const void *x, int64_t n, P pred) {
  if (dtype == DType::kInt32) return any_of<int32_t>(x, n, pred);
  if (dtype == DType::kInt64) return any_of<int64_t>(x, n, pred);
  return false;
}

}  // namespace

bool contains_zero(DType dtype, const void *x, int64_t n) {
  return any_integer(dtype, x, n, [](auto v) { return v == 0; });
}

bool contains_negative(DType dtype, const void *x, int64_t n) {
  return any_integer(dtype, x, n, [](auto v) { return v < 0; });
}

void binary(BinaryOp op, DType dtype, const void *a, const Shape &a_shape, const void *b,
            const Shape &b_shape, void *out, const Shape &out_shape) {
  switch (dtype) {
    case DType::kFloat32:
      if (out_shape.num_elements() >= kElementwiseLargeThreshold &&
          onednn_binary(op, a, a_shape, b, b_shape, out, out_shape))
        return;
      return run_typed<float>(op, a, a_shape, b, b_shape, out, out_shape);
    case DType::kInt32:
      return run_typed<int32_t>(op, a, a_shape, b, b_shape, out, out_shape);
    case DType::kInt64:
      return run_typed<int64_t>(op, a, a_shape, b, b_shape, out, out_shape);
    case DType::kUInt8:
      if (binary_writes_bool(op)) return run_typed<uint8_t>(op, a, a_shape, b, b_shape, out, out_shape);
      break;
    case DType::kBool:
      switch (op) {
        case BinaryOp::kLogicalAnd:
          return run<uint8_t, uint8_t>(a, a_shape, b, b_shape, out, out_shape, AndF{});
        case BinaryOp::kLogicalOr:
          return run<uint8_t, uint8_t>(a, a_shape, b, b_shape, out, out_shape, OrF{});
        case BinaryOp::kLogicalXor:
          return run<uint8_t, uint8_t>(a, a_shape, b, b_shape, out, out_shape, XorF{});
        case BinaryOp::kEqual:
        case BinaryOp::kNotEqual:
          // Compare truth values, so a stray non-0/1 byte still counts as true.
          return run<uint8_t, uint8_t>(a, a_shape, b, b_shape, out, out_shape,
                                       [op](uint8_t x, uint8_t y) -> uint8_t {
                                         return ((x != 0) == (y != 0)) == (op == BinaryOp::kEqual);
                                       });
        default:
          if (binary_writes_bool(op)) return run_typed<uint8_t>(op, a, a_shape, b, b_shape, out, out_shape);
          break;
      }
      break;
    case DType::kBFloat16:
      return run_typed<bfloat16>(op, a, a_shape, b, b_shape, out, out_shape);
    case DType::kFloat64:
      return run_typed<double>(op, a, a_shape, b, b_shape, out, out_shape);
  }
  fail(Code::kInternal, "elementwise binary kernel: op ", static_cast<int>(op), " has no ", dtype_name(dtype),
       " kernel");
}

}  // namespace kiln::kernels

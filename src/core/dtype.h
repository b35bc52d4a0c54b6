// Element types and the bfloat16 storage type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace kiln {

// Values match KILN_DTYPE_* in include/kiln/kiln.h; append only.
enum class DType : int {
  kFloat32 = 1,
  kBFloat16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kUInt8 = 5,
  kBool = 6,
  kFloat64 = 7,
};

bool dtype_valid(int value);
size_t dtype_size(DType dtype);
const char *dtype_name(DType dtype);
// "float32" -> DType::kFloat32 ...; nullopt for a name kiln has no dtype for.
std::optional<DType> dtype_from_name(const std::string &name);
inline bool is_floating(DType d) {
  return d == DType::kFloat32 || d == DType::kBFloat16 || d == DType::kFloat64;
}
inline bool is_integer(DType d) { return d == DType::kInt32 || d == DType::kInt64 || d == DType::kUInt8; }

// bfloat16: the upper 16 bits of an IEEE float32, rounded to nearest even.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  explicit bfloat16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN stays a quiet NaN
      bits = static_cast<uint16_t>((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  explicit operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::kFloat32; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::kBFloat16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::kInt32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::kInt64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::kUInt8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::kBool; };
template <> struct dtype_of<double> { static constexpr DType value = DType::kFloat64; };

// Calls f(T{}) with T the C++ type of dtype.
template <typename F>
auto dispatch_dtype(DType dtype, F &&f) {
  switch (dtype) {
    case DType::kFloat32: return f(float{});
    case DType::kBFloat16: return f(bfloat16{});
    case DType::kInt32: return f(int32_t{});
    case DType::kInt64: return f(int64_t{});
    case DType::kUInt8: return f(uint8_t{});
    case DType::kFloat64: return f(double{});
    case DType::kBool: break;
  }
  return f(bool{});
}

}  // namespace kiln

// Element and byte counts. Every product or sum of dims goes through these helpers, so
// no count can overflow silently: a shape whose count wraps around would describe a
// tensor with (almost) no memory behind it, and kernels would read and write past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

// Hard caps on one tensor. 2^62 leaves room for one more doubling (a sum of two counts)
// and for a byte offset of any element, without ever reaching int64's limit.
inline constexpr int64_t kMaxElements = int64_t{1} << 62;
inline constexpr int64_t kMaxBytes = int64_t{1} << 62;

// out = a * b for counts a, b >= 0; false (out untouched) when the product exceeds limit.
[[nodiscard]] inline bool checked_mul(int64_t a, int64_t b, int64_t *out, int64_t limit = kMaxElements) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > limit) return false;
  *out = r;
  return true;
}

// out = a + b for counts a, b >= 0; false (out untouched) when the sum exceeds limit.
[[nodiscard]] inline bool checked_add(int64_t a, int64_t b, int64_t *out, int64_t limit = kMaxElements) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r) || r > limit) return false;
  *out = r;
  return true;
}

// The product of dims[0..rank) ignoring zeros, or -1 when it exceeds kMaxElements (or a dim
// is negative). A shape is valid only when this fits: [0, 2^32, 2^32] is empty, but its
// strides and every partial product still overflow, so it is rejected like [2^32, 2^32].
int64_t nonzero_dims_product(const int64_t *dims, size_t rank);

// elements * elem_size as an exact decimal string, even when it exceeds 2^64 (for messages).
std::string byte_count_string(int64_t elements, size_t elem_size);

// Throws the ResourceExhausted error of checked_byte_size.
[[noreturn]] void throw_byte_limit(int64_t elements, size_t elem_size, const std::string &what);

// The byte size of `elements` elements of `elem_size` bytes. Throws ResourceExhausted naming
// what() (e.g. "float32[4611686018427387904]") when it exceeds kMaxBytes: no buffer that
// large can exist, so this is the allocation failure it would be, reported before trying.
// what is called only then: every tensor creation passes here, so it builds no string.
template <typename What>
size_t checked_byte_size(int64_t elements, size_t elem_size, What &&what) {
  int64_t bytes;
  if (!checked_mul(elements, static_cast<int64_t>(elem_size), &bytes, kMaxBytes))
    throw_byte_limit(elements, elem_size, what());
  return static_cast<size_t>(bytes);
}

}  // namespace kiln

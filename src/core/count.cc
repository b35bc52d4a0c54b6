#include "core/count.h"

#include <algorithm>

#include "core/error.h"

namespace kiln {

int64_t nonzero_dims_product(const int64_t *dims, size_t rank) {
  int64_t n = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) return -1;
    if (dims[i] != 0 && !checked_mul(n, dims[i], &n)) return -1;
  }
  return n;
}

std::string byte_count_string(int64_t elements, size_t elem_size) {
  __extension__ using u128 = unsigned __int128;  // elements < 2^63 times a small size fits
  u128 v = static_cast<u128>(static_cast<uint64_t>(elements)) * elem_size;
  std::string s;
  do {
    s.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  std::reverse(s.begin(), s.end());
  return s;
}

void throw_byte_limit(int64_t elements, size_t elem_size, const std::string &what) {
  fail(Code::kResourceExhausted, "a tensor of ", what, " needs ", byte_count_string(elements, elem_size),
       " bytes, more than kiln's limit of ", kMaxBytes, " bytes (2^62) for one tensor");
}

}  // namespace kiln

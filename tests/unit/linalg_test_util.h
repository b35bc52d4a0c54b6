// Reference helpers shared by the LINALG family's tests (test_linalg*.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "core/threads.h"
#include "test_util.h"

namespace kiln::linalg_test {

using testing::make;
using testing::random_tensor;
using testing::values;

// Row-major multi-index of flat index i in s.
inline std::vector<int64_t> unravel(int64_t i, const Shape &s) {
  std::vector<int64_t> idx(static_cast<size_t>(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = i % s[d];
    i /= s[d];
  }
  return idx;
}

// Offset in s of a multi-index of a (possibly higher-rank) broadcast shape: s is right-aligned
// and its size-1 dims repeat.
inline int64_t broadcast_offset(const std::vector<int64_t> &idx, const Shape &s) {
  int64_t off = 0;
  const size_t lead = idx.size() - static_cast<size_t>(s.rank());
  for (int d = 0; d < s.rank(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[lead + static_cast<size_t>(d)]);
  return off;
}

// Runs kernels single-threaded while alive. The primitive-cache tests call an op 1000 times:
// they count primitive creations, and on a busy machine 2-thread OpenMP regions would make
// them take tens of seconds.
struct SingleThreaded {
  int saved = num_threads();
  SingleThreaded() { set_num_threads(1); }
  ~SingleThreaded() { set_num_threads(saved); }
};

inline Tensor to_bf16(const Tensor &t) {
  std::vector<bfloat16> v;
  for (float f : testing::values(t)) v.push_back(bfloat16(f));
  return testing::make_typed(t.shape(), v);
}

}  // namespace kiln::linalg_test

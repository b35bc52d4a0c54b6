// Loop machinery shared by the elementwise kernels: broadcast plans walked as
// contiguous spans, and the single-thread / OpenMP split at the size threshold.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "core/shape.h"
#include "core/threads.h"
#include "kernels/elementwise.h"

namespace kiln::kernels {

// The output's dims with each input's element strides (0 along broadcast dims).
// Size-1 dims are dropped and adjacent dims merged wherever every operand is
// contiguous across them, so the innermost stride of an input is 0 or 1 and
// same-shape work collapses to one long span.
template <int N>
struct BroadcastPlan {
  int rank = 1;
  int64_t dims[Shape::kMaxRank] = {1};
  int64_t strides[N][Shape::kMaxRank] = {};
};

template <int N>
BroadcastPlan<N> make_broadcast_plan(const Shape &out, const Shape *const (&ins)[N]) {
  BroadcastPlan<N> p;
  std::array<int64_t, Shape::kMaxRank> in_strides[N];
  for (int k = 0; k < N; ++k) in_strides[k] = ins[k]->strides();
  int r = 0;
  for (int d = 0; d < out.rank(); ++d) {
    if (out[d] == 1) continue;
    int64_t st[N];
    for (int k = 0; k < N; ++k) {
      const int id = d - (out.rank() - ins[k]->rank());
      const bool broadcast = id < 0 || (*ins[k])[id] == 1;
      st[k] = broadcast ? 0 : in_strides[k][static_cast<size_t>(id)];
    }
    bool merge = r > 0;
    for (int k = 0; k < N && merge; ++k) merge = p.strides[k][r - 1] == st[k] * out[d];
    if (merge) {
      p.dims[r - 1] *= out[d];
      for (int k = 0; k < N; ++k) p.strides[k][r - 1] = st[k];
      continue;
    }
    p.dims[r] = out[d];
    for (int k = 0; k < N; ++k) p.strides[k][r] = st[k];
    ++r;
  }
  p.rank = r > 0 ? r : 1;  // all dims 1: one element, strides 0
  return p;
}

// Calls f(out_offset, in_offsets, inner_strides, len) for each contiguous run of output
// elements in [begin, end); in_offsets[k] is input k's element offset, inner_strides[k] 0 or 1.
template <int N, typename F>
void for_each_span(const BroadcastPlan<N> &p, int64_t begin, int64_t end, F &&f) {
  const int last = p.rank - 1;
  const int64_t inner = p.dims[last];
  int64_t inner_strides[N];
  for (int k = 0; k < N; ++k) inner_strides[k] = p.strides[k][last];
  int64_t idx[Shape::kMaxRank];
  int64_t off[N] = {};
  int64_t rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % p.dims[d];
    rem /= p.dims[d];
    for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
  }
  int64_t pos = begin;
  while (pos < end) {
    const int64_t len = std::min(inner - idx[last], end - pos);
    f(pos, static_cast<const int64_t *>(off), static_cast<const int64_t *>(inner_strides), len);
    pos += len;
    idx[last] += len;
    for (int k = 0; k < N; ++k) off[k] += len * inner_strides[k];
    if (idx[last] < inner || pos >= end) continue;
    idx[last] = 0;
    for (int k = 0; k < N; ++k) off[k] -= inner * inner_strides[k];
    for (int d = last - 1; d >= 0; --d) {
      ++idx[d];
      for (int k = 0; k < N; ++k) off[k] += p.strides[k][d];
      if (idx[d] < p.dims[d]) break;
      idx[d] = 0;
      for (int k = 0; k < N; ++k) off[k] -= p.dims[d] * p.strides[k][d];
    }
  }
}

// Calls f(begin, end) over [0, n): once on this thread below the threshold, otherwise
// in one contiguous chunk per OpenMP thread.
template <typename F>
void parallel_chunks(int64_t n, F &&f) {
  if (n < kElementwiseLargeThreshold) {
    f(int64_t{0}, n);
    return;
  }
  apply_num_threads();
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

// out[i] = op(a[i * sa], b[i * sb]) for i < n, with sa, sb in {0, 1}; each case its own
// loop so that the compiler vectorises it.
template <typename T, typename R, typename Op>
inline void apply_span(const T *a, int64_t sa, const T *b, int64_t sb, R *out, int64_t n, Op op) {
  if (sa && sb) {
    for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
  } else if (sa) {
    const T y = *b;
    for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], y);
  } else if (sb) {
    const T x = *a;
    for (int64_t i = 0; i < n; ++i) out[i] = op(x, b[i]);
  } else {
    const R v = op(*a, *b);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

// A plain row-major float32 descriptor (rank 0 as [1]).
inline dnnl::memory::desc plain_f32_desc(const Shape &shape) {
  const Shape s = shape.rank() == 0 ? Shape{1} : shape;
  const auto st = s.strides();
  return dnnl::memory::desc(dnnl::memory::dims(s.data(), s.data() + s.rank()), dnnl::memory::data_type::f32,
                            dnnl::memory::dims(st.begin(), st.begin() + s.rank()));
}

// Appends a float's exact bits to a cache key (decimal printing would merge nearby values).
inline void append_float_key(std::string &key, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  key += std::to_string(bits);
  key += ';';
}

}  // namespace kiln::kernels

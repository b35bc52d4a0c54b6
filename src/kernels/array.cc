#include "kernels/array.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"

namespace kiln::kernels {

namespace {

// The index space after dropping size-1 dims and merging dims that are
// contiguous on both sides, so a plain copy becomes one memcpy.
struct Plan {
  std::vector<int64_t> dims, ds, ss;
};

Plan simplify(const std::vector<int64_t> &dims, const std::vector<int64_t> &ds,
              const std::vector<int64_t> &ss) {
  Plan p;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 1) continue;
    if (!p.dims.empty() && p.ds.back() == ds[k] * dims[k] && p.ss.back() == ss[k] * dims[k]) {
      p.dims.back() *= dims[k];
      p.ds.back() = ds[k];
      p.ss.back() = ss[k];
      continue;
    }
    p.dims.push_back(dims[k]);
    p.ds.push_back(ds[k]);
    p.ss.push_back(ss[k]);
  }
  if (p.dims.empty()) p = Plan{{1}, {1}, {1}};
  return p;
}

template <typename T>
inline void copy_inner(T *d, int64_t dstride, const T *s, int64_t sstride, int64_t n) {
  if (dstride == 1 && sstride == 1) {
    std::memcpy(d, s, static_cast<size_t>(n) * sizeof(T));
  } else if (dstride == 1 && sstride == 0) {
    std::fill(d, d + n, *s);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * dstride] = s[i * sstride];
  }
}

// Copies work items [w0, w1): item w is chunk (w % nchunks) of row (w / nchunks),
// rows being the row-major positions of all dims but the last.
// Runs inside an OpenMP region: no allocation (the odometer is a fixed array) and no throw.
template <typename T>
void copy_range(T *dst, const T *src, const Plan &p, int64_t nchunks, int64_t chunk, int64_t w0, int64_t w1) {
  const size_t outer = p.dims.size() - 1;
  const int64_t inner = p.dims[outer], dsi = p.ds[outer], ssi = p.ss[outer];
  std::array<int64_t, kMaxCopyDims> idx{};
  int64_t row = w0 / nchunks, c = w0 % nchunks, doff = 0, soff = 0;
  for (size_t k = outer; k-- > 0;) {
    idx[k] = row % p.dims[k];
    row /= p.dims[k];
    doff += idx[k] * p.ds[k];
    soff += idx[k] * p.ss[k];
  }
  for (int64_t w = w0; w < w1; ++w) {
    int64_t b = c * chunk, e = std::min(inner, b + chunk);
    copy_inner(dst + doff + b * dsi, dsi, src + soff + b * ssi, ssi, e - b);
    if (++c < nchunks) continue;
    c = 0;
    for (size_t k = outer; k-- > 0;) {
      doff += p.ds[k];
      soff += p.ss[k];
      if (++idx[k] < p.dims[k]) break;
      doff -= p.ds[k] * p.dims[k];
      soff -= p.ss[k] * p.dims[k];
      idx[k] = 0;
    }
  }
}

// A transpose that swaps the source's contiguous dim `k` into the last place:
// copying row by row would read with a large stride, so copy small square
// tiles that stay in cache. Work items are (position in the other dims, row of tiles).
template <typename T>
void copy_tiled(T *dst, const T *src, const Plan &p, size_t k, size_t bytes) {
  constexpr int64_t kTile = 8;  // small: power-of-two strides map a tall tile onto few cache sets
  const size_t last = p.dims.size() - 1;
  const int64_t na = p.dims[k], nb = p.dims[last], dsa = p.ds[k], ssb = p.ss[last];
  const int64_t ta = (na + kTile - 1) / kTile;
  int64_t batch = 1;
  for (size_t i = 0; i < last; ++i)
    if (i != k) batch *= p.dims[i];
  parallel_ranges(batch * ta, bytes, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t rest = w / ta, a0 = w % ta * kTile, doff = 0, soff = 0;
      for (size_t i = last; i-- > 0;) {
        if (i == k) continue;
        int64_t j = rest % p.dims[i];
        rest /= p.dims[i];
        doff += j * p.ds[i];
        soff += j * p.ss[i];
      }
      const int64_t a1 = std::min(na, a0 + kTile);
      for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
        const int64_t b1 = std::min(nb, b0 + kTile);
        for (int64_t a = a0; a < a1; ++a) {
          T *drow = dst + doff + a * dsa;
          const T *scol = src + soff + a;
          for (int64_t b = b0; b < b1; ++b) drow[b] = scol[b * ssb];
        }
      }
    }
  });
}

template <typename T>
void copy_typed(void *dst, const void *src, const Plan &p) {
  int64_t total = 1;
  for (int64_t d : p.dims) total *= d;
  const int64_t inner = p.dims.back(), rows = total / inner;
  T *d = static_cast<T *>(dst);
  const T *s = static_cast<const T *>(src);
  const size_t bytes = static_cast<size_t>(total) * sizeof(T);
  const size_t last = p.dims.size() - 1;
  if (p.ds[last] == 1 && p.ss[last] != 1 && inner >= 8) {
    for (size_t k = 0; k < last; ++k)
      if (p.ss[k] == 1 && p.dims[k] >= 8) return copy_tiled(d, s, p, k, bytes);
  }
  // Few long rows: cut rows into chunks so every thread gets work.
  const int64_t nt = num_threads();
  int64_t chunk = inner, nchunks = 1;
  if (bytes >= kParallelCopyBytes && rows < 4 * nt) {
    chunk = std::max<int64_t>(4096, (inner + 4 * nt - 1) / (4 * nt));
    nchunks = (inner + chunk - 1) / chunk;
  }
  parallel_ranges(rows * nchunks, bytes,
                  [&](int64_t w0, int64_t w1) { copy_range(d, s, p, nchunks, chunk, w0, w1); });
}

}  // namespace

std::vector<int64_t> contiguous_strides(const std::vector<int64_t> &dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) s[k - 1] = s[k] * dims[k];
  return s;
}

void copy_strided(void *dst, const std::vector<int64_t> &dst_strides, const void *src,
                  const std::vector<int64_t> &src_strides, const std::vector<int64_t> &dims,
                  size_t elem_size) {
  if (dst_strides.size() != dims.size() || src_strides.size() != dims.size())
    fail(Code::kInternal, "copy_strided: ", dims.size(), " dims but ", dst_strides.size(), " and ",
         src_strides.size(), " strides");
  if (dims.size() > kMaxCopyDims)
    fail(Code::kInternal, "copy_strided: ", dims.size(), " dims; at most ", kMaxCopyDims, " are supported");
  for (int64_t d : dims)
    if (d == 0) return;
  Plan p = simplify(dims, dst_strides, src_strides);
  switch (elem_size) {
    case 1:
      return copy_typed<uint8_t>(dst, src, p);
    case 2:
      return copy_typed<uint16_t>(dst, src, p);
    case 4:
      return copy_typed<uint32_t>(dst, src, p);
    case 8:
      return copy_typed<uint64_t>(dst, src, p);
    default:
      fail(Code::kInternal, "copy_strided: unsupported element size ", elem_size);
  }
}

template <typename Index>
int64_t find_out_of_range(const Index *indices, int64_t count, int64_t n) {
  for (int64_t i = 0; i < count; ++i) {
    int64_t k = static_cast<int64_t>(indices[i]);
    if (k < 0 || k >= n) return i;
  }
  return -1;
}

#define KILN_INSTANTIATE_INDEX(Index) template int64_t find_out_of_range<Index>(const Index *, int64_t, int64_t);
KILN_INSTANTIATE_INDEX(int32_t)
KILN_INSTANTIATE_INDEX(int64_t)
#undef KILN_INSTANTIATE_INDEX

}  // namespace kiln::kernels

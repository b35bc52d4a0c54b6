#include "kernels/index.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/array.h"

namespace kiln::kernels {

namespace {

// Calls f(T{}) with an unsigned type of elem_size bytes: the kernels only move elements.
template <typename F>
void with_element(size_t elem_size, F &&f) {
  switch (elem_size) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
    default:
      fail(Code::kInternal, "index kernels: unsupported element size ", elem_size);
  }
}

}  // namespace

template <typename Index>
void gather(const void *params, int64_t batch, int64_t outer, int64_t n, int64_t inner, const Index *indices,
            int64_t m, void *out, size_t elem_size) {
  const size_t row = static_cast<size_t>(inner) * elem_size;
  const char *src = static_cast<const char *>(params);
  char *dst = static_cast<char *>(out);
  const int64_t rows = batch * outer * m;
  if (rows == 0 || row == 0) return;
  parallel_ranges(rows, static_cast<size_t>(rows) * row, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (outer * m), rest = r % (outer * m), o = rest / m, j = rest % m;
      const int64_t from = (b * outer + o) * n + static_cast<int64_t>(indices[b * m + j]);
      std::memcpy(dst + static_cast<size_t>(r) * row, src + static_cast<size_t>(from) * row, row);
    }
  });
}

// a + b; integers wrap around in two's complement, as TF's integer adds do on CPU (no overflow UB).
template <typename T>
inline T wrapping_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}

template <typename T, typename Index>
void scatter_add(const T *updates, int64_t batch, int64_t outer, int64_t n, int64_t inner,
                 const Index *indices, int64_t m, T *out) {
  const int64_t slices = batch * outer;
  if (slices == 0 || n == 0 || inner == 0) return;
  // Work items are (batch * outer slice, column block): no two items touch the same output, each
  // zeroes its own columns and then adds its updates in index order, so the sum does not depend on
  // the thread count. The block is a function of inner alone (about an eighth of it, in whole
  // 64-byte lines), so a wide embedding's one slice still splits among the threads.
  const int64_t block = std::clamp<int64_t>((inner / 8 + 15) / 16 * 16, 16, 256);
  const int64_t blocks = (inner + block - 1) / block;
  const size_t bytes = static_cast<size_t>(slices * (n + m) * inner) * sizeof(T);
  parallel_ranges(slices * blocks, bytes, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t s = w / blocks, b = s / outer;
      const int64_t c0 = (w % blocks) * block, c1 = std::min(inner, c0 + block);
      T *slice = out + s * n * inner;
      for (int64_t r = 0; r < n; ++r) std::fill(slice + r * inner + c0, slice + r * inner + c1, T(0));
      for (int64_t j = 0; j < m; ++j) {
        const T *u = updates + (s * m + j) * inner;
        T *d = slice + static_cast<int64_t>(indices[b * m + j]) * inner;
        for (int64_t c = c0; c < c1; ++c) d[c] = wrapping_add(d[c], u[c]);
      }
    }
  });
}

template <typename Index>
int64_t nd_offsets(const Index *indices, int64_t count, int k, const int64_t *dims, int64_t *out) {
  for (int64_t i = 0; i < count; ++i) {
    int64_t flat = 0;
    for (int j = 0; j < k; ++j) {
      const int64_t v = static_cast<int64_t>(indices[i * k + j]);
      if (v < 0 || v >= dims[j]) return i * k + j;
      flat = flat * dims[j] + v;
    }
    out[i] = flat;
  }
  return -1;
}

int64_t true_positions(const uint8_t *mask, int64_t n, int64_t *out) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i)
    if (mask[i]) out[count++] = i;
  return count;
}

template <typename Index>
void one_hot(const Index *indices, int64_t outer, int64_t inner, int64_t depth, const void *on,
             const void *off, size_t elem_size, void *out) {
  with_element(elem_size, [&](auto tag) {
    using T = decltype(tag);
    T on_v, off_v;
    std::memcpy(&on_v, on, sizeof(T));
    std::memcpy(&off_v, off, sizeof(T));
    T *o = static_cast<T *>(out);
    const int64_t rows = outer * depth;
    parallel_ranges(rows, static_cast<size_t>(rows * inner) * sizeof(T), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t oi = r / depth, d = r % depth;
        const Index *idx = indices + oi * inner;
        T *row = o + r * inner;
        for (int64_t i = 0; i < inner; ++i) row[i] = static_cast<int64_t>(idx[i]) == d ? on_v : off_v;
      }
    });
  });
}

namespace {

// Visits every output row (all axes but the last) of a padding: f(row, source offset of the row's
// outer position or -1 when an outer axis reads the constant).
template <typename F>
void for_each_pad_row(const std::vector<int64_t> &src_dims, const std::vector<std::vector<int64_t>> &maps,
                      int64_t begin, int64_t end, F &&f) {
  const size_t rank = maps.size();
  for (int64_t r = begin; r < end; ++r) {
    int64_t rest = r, src = 0, stride = src_dims[rank - 1];
    bool constant = false;
    for (size_t a = rank - 1; a-- > 0;) {
      const int64_t n = static_cast<int64_t>(maps[a].size());
      const int64_t m = maps[a][static_cast<size_t>(rest % n)];
      rest /= n;
      if (m < 0) constant = true;
      src += m * stride;
      stride *= src_dims[a];
    }
    f(r, constant ? -1 : src);
  }
}

int64_t pad_rows(const std::vector<std::vector<int64_t>> &maps) {
  int64_t rows = 1;
  for (size_t a = 0; a + 1 < maps.size(); ++a) rows *= static_cast<int64_t>(maps[a].size());
  return rows;
}

}  // namespace

void pad(const void *src, const std::vector<int64_t> &src_dims, const std::vector<std::vector<int64_t>> &maps,
         const void *constant, size_t elem_size, void *out) {
  if (maps.empty()) {  // a scalar
    std::memcpy(out, src, elem_size);
    return;
  }
  const std::vector<int64_t> &last = maps.back();
  const int64_t width = static_cast<int64_t>(last.size()), rows = pad_rows(maps);
  if (rows == 0 || width == 0) return;
  with_element(elem_size, [&](auto tag) {
    using T = decltype(tag);
    T c;
    std::memcpy(&c, constant, sizeof(T));
    const T *s = static_cast<const T *>(src);
    T *o = static_cast<T *>(out);
    parallel_ranges(rows, static_cast<size_t>(rows * width) * sizeof(T), [&](int64_t begin, int64_t end) {
      for_each_pad_row(src_dims, maps, begin, end, [&](int64_t r, int64_t base) {
        T *row = o + r * width;
        if (base < 0) {
          std::fill(row, row + width, c);
          return;
        }
        for (int64_t i = 0; i < width; ++i) {
          const int64_t m = last[static_cast<size_t>(i)];
          row[i] = m < 0 ? c : s[base + m];
        }
      });
    });
  });
}

template <typename T>
void pad_backward(const T *dy, const std::vector<int64_t> &src_dims, const std::vector<std::vector<int64_t>> &maps,
                  T *dx) {
  int64_t n = 1;
  for (int64_t d : src_dims) n *= d;
  std::fill(dx, dx + n, T(0));
  if (maps.empty()) {
    dx[0] = dy[0];
    return;
  }
  const std::vector<int64_t> &last = maps.back();
  const int64_t width = static_cast<int64_t>(last.size()), rows = pad_rows(maps);
  // Serial: REFLECT and SYMMETRIC send several outputs to one source cell.
  for_each_pad_row(src_dims, maps, 0, rows, [&](int64_t r, int64_t base) {
    if (base < 0) return;
    const T *row = dy + r * width;
    for (int64_t i = 0; i < width; ++i) {
      const int64_t m = last[static_cast<size_t>(i)];
      if (m >= 0) dx[base + m] += row[i];
    }
  });
}
template void pad_backward<float>(const float *, const std::vector<int64_t> &,
                                  const std::vector<std::vector<int64_t>> &, float *);
template void pad_backward<double>(const double *, const std::vector<int64_t> &,
                                   const std::vector<std::vector<int64_t>> &, double *);

#define KILN_INSTANTIATE_INDEX(Index)                                                                        \
  template void gather<Index>(const void *, int64_t, int64_t, int64_t, int64_t, const Index *, int64_t,      \
                              void *, size_t);                                                               \
  template void scatter_add<float, Index>(const float *, int64_t, int64_t, int64_t, int64_t, const Index *,  \
                                          int64_t, float *);                                                 \
  template void scatter_add<double, Index>(const double *, int64_t, int64_t, int64_t, int64_t,               \
                                           const Index *, int64_t, double *);                                \
  template void scatter_add<int32_t, Index>(const int32_t *, int64_t, int64_t, int64_t, int64_t,             \
                                            const Index *, int64_t, int32_t *);                              \
  template void scatter_add<int64_t, Index>(const int64_t *, int64_t, int64_t, int64_t, int64_t,             \
                                            const Index *, int64_t, int64_t *);                              \
  template int64_t nd_offsets<Index>(const Index *, int64_t, int, const int64_t *, int64_t *);               \
  template void one_hot<Index>(const Index *, int64_t, int64_t, int64_t, const void *, const void *, size_t, \
                               void *);
KILN_INSTANTIATE_INDEX(int32_t)
KILN_INSTANTIATE_INDEX(int64_t)
#undef KILN_INSTANTIATE_INDEX

}  // namespace kiln::kernels

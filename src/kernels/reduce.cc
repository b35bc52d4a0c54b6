#include "kernels/reduce.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/dispatch.h"
#include "kernels/simd.h"

namespace kiln::kernels {

namespace {

// A run of adjacent axes that are all reduced or all kept, with size-1 axes dropped:
// reducing [8, 1, 3, 5] over {1, 2} is the same as reducing [8, 15] over {1}.
struct Group {
  int64_t size;
  bool reduced;
};

std::vector<Group> collapse(const Shape &shape, const std::vector<bool> &reduce) {
  std::vector<Group> groups;
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape[i] == 1) continue;
    bool r = reduce[static_cast<size_t>(i)];
    if (!groups.empty() && groups.back().reduced == r)
      groups.back().size *= shape[i];
    else
      groups.push_back({shape[i], r});
  }
  return groups;
}

template <typename Acc>
Acc identity(ReduceKind kind) {
  using L = std::numeric_limits<Acc>;
  switch (kind) {
    case ReduceKind::kMax:
      return L::has_infinity ? -L::infinity() : L::lowest();
    case ReduceKind::kMin:
      return L::has_infinity ? L::infinity() : L::max();
    case ReduceKind::kSum:
    case ReduceKind::kMean:
      break;
  }
  return Acc(0);
}

// max and min propagate NaN, as NumPy and TF >= 2.4: once a is NaN no comparison is true
// and it stays; a NaN v is taken by the v != v test.
template <ReduceKind K, typename Acc>
inline Acc combine(Acc a, Acc v) {
  if constexpr (K == ReduceKind::kMax)
    return (v > a || v != v) ? v : a;  // NOLINT(misc-redundant-expression): NaN test
  else if constexpr (K == ReduceKind::kMin)
    return (v < a || v != v) ? v : a;  // NOLINT(misc-redundant-expression): NaN test
  else if constexpr (std::is_integral_v<Acc>)  // integer sums wrap, as TF's
    return static_cast<Acc>(static_cast<typename Wrapping<Acc>::type>(a) +
                            static_cast<typename Wrapping<Acc>::type>(v));
  else
    return a + v;
}

// Combines a contiguous row of n values into a. Independent lanes let the compiler
// vectorise without -ffast-math (and make float sums more accurate).
template <ReduceKind K, typename T, typename Acc>
Acc lanes_row(const T *x, int64_t n, Acc a) {
  constexpr int kLanes = 8;
  if (n < kLanes) {
    for (int64_t i = 0; i < n; ++i) a = combine<K>(a, static_cast<Acc>(x[i]));
    return a;
  }
  Acc lane[kLanes];
  for (int l = 0; l < kLanes; ++l) lane[l] = static_cast<Acc>(x[l]);
  int64_t i = kLanes;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] = combine<K>(lane[l], static_cast<Acc>(x[i + l]));
  for (; i < n; ++i) lane[0] = combine<K>(lane[0], static_cast<Acc>(x[i]));
  for (int l = 0; l < kLanes; ++l) a = combine<K>(a, lane[l]);
  return a;
}

// Float sums of rows longer than this add in a tree of blocks of this many values (each summed
// in lanes), as Eigen's and NumPy's pairwise sums do, so the rounding error grows with log(n),
// not with n: a mean of a million float32 values keeps about 7 digits.
constexpr int64_t kSumBlock = 1024;

template <typename T, typename Acc>
Acc tree_sum(const T *x, int64_t n) {
  if (n <= kSumBlock) return lanes_row<ReduceKind::kSum>(x, n, Acc(0));
  const int64_t half = (n / kSumBlock + 1) / 2 * kSumBlock;  // whole blocks on the left
  return tree_sum<T, Acc>(x, half) + tree_sum<T, Acc>(x + half, n - half);
}

template <ReduceKind K, typename T, typename Acc>
Acc reduce_row(const T *x, int64_t n, Acc a) {
  if constexpr (K == ReduceKind::kSum && std::is_floating_point_v<Acc>)
    if (n > kSumBlock) return combine<K>(a, tree_sum<T, Acc>(x, n));
  return lanes_row<K>(x, n, a);
}

// Combines a contiguous row elementwise into acc.
template <ReduceKind K, typename T, typename Acc>
void accumulate_row(const T *x, int64_t n, Acc *acc) {
  for (int64_t i = 0; i < n; ++i) acc[i] = combine<K>(acc[i], static_cast<Acc>(x[i]));
}

// Rows [r0, r1) of a reduced axis combined into acc[0, w), each row's slice in turn by
// leaf(lo, hi, into). Float sums over more than kSumBlock rows add in a tree of kSumBlock-row
// blocks, split as tree_sum splits a long row (each half into its own zeroed sums, then acc + (left +
// right)), so a sum along a long leading axis keeps its precision as a long row's does; up to
// kSumBlock rows, and max, min and integer sums (exact in any order), go in sequence.
template <ReduceKind K, typename Acc, typename Leaf>
void tree_rows(int64_t r0, int64_t r1, Acc *acc, int64_t w, const Leaf &leaf);

// Whether n rows add in a tree.
template <ReduceKind K, typename Acc>
constexpr bool tree_of(int64_t n) {
  return K == ReduceKind::kSum && std::is_floating_point_v<Acc> && n > kSumBlock;
}

// tree_rows' split of more than kSumBlock rows, kept out of line so that the common short case
// inlines the leaf into its caller.
template <ReduceKind K, typename Acc, typename Leaf>
[[gnu::noinline]] void tree_split(int64_t r0, int64_t r1, Acc *acc, int64_t w, const Leaf &leaf) {
  const int64_t half = ((r1 - r0) / kSumBlock + 1) / 2 * kSumBlock;
  std::vector<Acc> sums(static_cast<size_t>(2 * w), Acc(0));
  tree_rows<K>(r0, r0 + half, sums.data(), w, leaf);
  tree_rows<K>(r0 + half, r1, sums.data() + w, w, leaf);
  for (int64_t i = 0; i < w; ++i)
    acc[i] = acc[i] + (sums[static_cast<size_t>(i)] + sums[static_cast<size_t>(w + i)]);
}

template <ReduceKind K, typename Acc, typename Leaf>
inline void tree_rows(int64_t r0, int64_t r1, Acc *acc, int64_t w, const Leaf &leaf) {
  if (tree_of<K, Acc>(r1 - r0))
    tree_split<K>(r0, r1, acc, w, leaf);
  else
    leaf(r0, r1, acc);
}

// The plan of reduce_groups: for each group, the input stride of one of its indices, the output
// stride (kept groups) and the number of outputs one of its indices reaches (the kept sizes after it).
struct Strides {
  int64_t x[Shape::kMaxRank] = {};
  int64_t out[Shape::kMaxRank] = {};
  int64_t reach[Shape::kMaxRank] = {};
};

Strides strides_of(const std::vector<Group> &groups) {
  Strides s;
  int64_t x = 1, out = 1;
  for (size_t i = groups.size(); i-- > 0;) {
    s.x[i] = x;
    s.reach[i] = out;
    s.out[i] = groups[i].reduced ? 0 : out;
    x *= groups[i].size;
    if (!groups[i].reduced) out *= groups[i].size;
  }
  return s;
}

// Reduces the input from group g on into acc: kept groups walk their slices of acc, reduced ones
// combine their slices into the same acc (through tree_rows), the innermost group as a row.
template <ReduceKind K, typename T, typename Acc>
void reduce_from(const T *x, Acc *acc, const std::vector<Group> &groups, const Strides &s, size_t g) {
  const Group group = groups[g];
  if (g + 1 == groups.size()) {
    if (group.reduced)
      acc[0] = reduce_row<K>(x, group.size, acc[0]);
    else
      accumulate_row<K>(x, group.size, acc);
    return;
  }
  if (!group.reduced) {
    for (int64_t i = 0; i < group.size; ++i)
      reduce_from<K>(x + i * s.x[g], acc + i * s.out[g], groups, s, g + 1);
    return;
  }
  tree_rows<K>(0, group.size, acc, s.reach[g], [&](int64_t lo, int64_t hi, Acc *into) {
    for (int64_t i = lo; i < hi; ++i) reduce_from<K>(x + i * s.x[g], into, groups, s, g + 1);
  });
}

// Reduces the input over the reduced groups into acc (which holds the identity, or a part's running
// value). Walks the input row by row (the innermost group), with an odometer over the outer groups
// tracking the matching output offset (kept groups advance it, reduced ones do not); a float sum over
// more than kSumBlock indices of an outer reduced group goes through reduce_from's tree instead (the
// same order otherwise, but a call per row).
template <ReduceKind K, typename T, typename Acc>
void reduce_groups(const T *x, Acc *acc, const std::vector<Group> &groups) {
  const int n = static_cast<int>(groups.size());
  const Strides s = strides_of(groups);
  for (int i = 0; i + 1 < n; ++i)
    if (groups[static_cast<size_t>(i)].reduced && tree_of<K, Acc>(groups[static_cast<size_t>(i)].size))
      return reduce_from<K>(x, acc, groups, s, 0);
  const Group inner = groups.back();
  int64_t rows = 1;
  for (int i = 0; i < n - 1; ++i) rows *= groups[static_cast<size_t>(i)].size;
  int64_t idx[Shape::kMaxRank] = {};
  int64_t o = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T *row = x + r * inner.size;
    if (inner.reduced)
      acc[o] = reduce_row<K>(row, inner.size, acc[o]);
    else
      accumulate_row<K>(row, inner.size, acc + o);
    for (int i = n - 2; i >= 0; --i) {
      o += s.out[i];
      if (++idx[i] < groups[static_cast<size_t>(i)].size) break;
      o -= s.out[i] * idx[i];
      idx[i] = 0;
    }
  }
}

template <ReduceKind K, typename Acc>
void combine_into(Acc *acc, const Acc *part, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] = combine<K>(acc[i], part[i]);
}

// Large inputs: the outermost group is cut into kParts parts (a fixed number, so a sum
// adds in the same order whatever the thread count), shared among threads. A kept group
// gives each part its own slice of the output; a reduced one gives each part a private
// accumulator, combined in part order at the end.
constexpr int64_t kParts = 16;

int64_t parts_of(int64_t rows) { return std::min<int64_t>(kParts, rows); }

// The parts of rows [0, rows) on the threads: part(p, lo, hi, into) handles rows [lo, hi). Kept
// (!reduced): into is acc, where each part writes its own slice. Reduced: part 0 adds into acc and
// every other part into a private [n_out] seeded with acc[0] (acc holds the identity everywhere on
// entry), combined into acc in part order. relu_grad_column_sum sums through this too, so it keeps
// the order of the reductions here.
template <ReduceKind K, typename Acc, typename Part>
void run_parts(int64_t rows, bool reduced, Acc *acc, int64_t n_out, const Part &part) {
  const int64_t parts = parts_of(rows);
  std::vector<Acc> partial(reduced ? static_cast<size_t>((parts - 1) * n_out) : 0, acc[0]);
  apply_num_threads();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < parts; ++p)
    part(p, rows * p / parts, rows * (p + 1) / parts,
         !reduced || p == 0 ? acc : partial.data() + (p - 1) * n_out);
  for (int64_t p = 1; reduced && p < parts; ++p)
    combine_into<K>(acc, partial.data() + (p - 1) * n_out, n_out);
}

template <ReduceKind K, typename T, typename Acc>
void reduce_parallel(const T *x, Acc *acc, int64_t n_out, const std::vector<Group> &groups) {
  const Group first = groups.front();
  int64_t x_stride = 1, out_stride = 1;
  for (size_t i = 1; i < groups.size(); ++i) {
    x_stride *= groups[i].size;
    if (!groups[i].reduced) out_stride *= groups[i].size;
  }
  const int64_t parts = parts_of(first.size);
  // Each part's sub-plan, made before the parallel region (no allocation inside it).
  std::vector<std::vector<Group>> subs(static_cast<size_t>(parts), groups);
  for (int64_t p = 0; p < parts; ++p)
    subs[static_cast<size_t>(p)].front().size = first.size * (p + 1) / parts - first.size * p / parts;
  run_parts<K>(first.size, first.reduced, acc, n_out, [&](int64_t p, int64_t lo, int64_t, Acc *into) {
    reduce_groups<K>(x + lo * x_stride, first.reduced ? into : into + lo * out_stride,
                     subs[static_cast<size_t>(p)]);
  });
}

// Columns per task of reduce_columns.
constexpr int64_t kColumnBlock = 64;

// [rows, cols] reduced over its rows (a bias gradient, a broadcast undone over the batch): the parts
// and the combination order of reduce_parallel, so the same bits, with the threads splitting the
// columns instead of the parts; no private [cols] accumulators are made and then combined on one
// thread.
// Rows [lo, hi) of columns [c0, c0 + w) summed in a tree into sums (zeroed).
template <ReduceKind K, typename T, typename Acc>
[[gnu::noinline]] void column_tree(const T *x, int64_t cols, int64_t c0, int64_t w, int64_t lo, int64_t hi,
                                   Acc *sums) {
  tree_split<K>(lo, hi, sums, w, [&](int64_t r0, int64_t r1, Acc *sum) {
    for (int64_t r = r0; r < r1; ++r) accumulate_row<K>(x + r * cols + c0, w, sum);
  });
}

template <ReduceKind K, typename T, typename Acc>
void reduce_columns(const T *x, Acc *acc, int64_t rows, int64_t cols) {
  const int64_t parts = parts_of(rows);
  const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  apply_num_threads();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kColumnBlock, w = std::min(kColumnBlock, cols - c0);
    const Acc seed = acc[c0];  // the identity, as everywhere in acc on entry
    Acc part[kColumnBlock];
    for (int64_t p = 0; p < parts; ++p) {
      Acc *into = p == 0 ? acc + c0 : part;
      if (p > 0) std::fill(part, part + w, seed);
      const int64_t lo = rows * p / parts, hi = rows * (p + 1) / parts;
      if (tree_of<K, Acc>(hi - lo)) {
        // Summed apart and then added (the same bits as tree_rows(lo, hi, into, ...): into + (0 +
        // s) is into + s), so that part's address stays here and GCC keeps part in registers.
        Acc sums[kColumnBlock] = {};
        column_tree<K>(x, cols, c0, w, lo, hi, sums);
        combine_into<K>(into, sums, w);
      } else {
        for (int64_t r = lo; r < hi; ++r) accumulate_row<K>(x + r * cols + c0, w, into);
      }
      if (p > 0) combine_into<K>(acc + c0, part, w);
    }
  }
}

template <ReduceKind K, typename T, typename Acc>
void reduce_any(const T *x, Acc *acc, int64_t n_in, int64_t n_out, const std::vector<Group> &groups) {
  if (n_in >= kReduceLoopThreshold && groups.size() == 2 && groups[0].reduced &&
      groups[1].size >= 2 * kColumnBlock)
    reduce_columns<K>(x, acc, groups[0].size, groups[1].size);
  else if (n_in >= kReduceLoopThreshold)
    reduce_parallel<K>(x, acc, n_out, groups);
  else
    reduce_groups<K>(x, acc, groups);
}

template <typename T, typename Acc>
void reduce_loop(ReduceKind kind, const T *x, Acc *acc, int64_t n_in, int64_t n_out,
                 const std::vector<Group> &groups) {
  switch (kind) {
    case ReduceKind::kSum:
    case ReduceKind::kMean:
      return reduce_any<ReduceKind::kSum>(x, acc, n_in, n_out, groups);
    case ReduceKind::kMax:
      return reduce_any<ReduceKind::kMax>(x, acc, n_in, n_out, groups);
    case ReduceKind::kMin:
      return reduce_any<ReduceKind::kMin>(x, acc, n_in, n_out, groups);
  }
}

template <typename T>
void reduce_typed(ReduceKind kind, const T *x, int64_t n_in, const std::vector<Group> &groups, int64_t n_out,
                  T *out) {
  // bfloat16 accumulates in float32; other types in themselves.
  using Acc = std::conditional_t<std::is_same_v<T, bfloat16>, float, T>;
  std::vector<Acc> scratch;
  Acc *acc = nullptr;
  if constexpr (std::is_same_v<T, Acc>) {
    acc = out;
  } else {
    scratch.resize(static_cast<size_t>(n_out));
    acc = scratch.data();
  }
  const Acc init = identity<Acc>(kind);
  for (int64_t i = 0; i < n_out; ++i) acc[i] = init;
  if (n_in > 0) reduce_loop(kind, x, acc, n_in, n_out, groups);
  if (kind == ReduceKind::kMean) {
    // The sum divided by the count, as TF divides (a multiply by 1/count is an ulp off for about a
    // quarter of counts: the mean of seven 3s would not be 3). The mean of nothing is 0/0 = NaN.
    const int64_t count = n_out == 0 ? 1 : n_in / n_out;
    const Acc divisor = static_cast<Acc>(count);
    for (int64_t i = 0; i < n_out; ++i)
      acc[i] = count == 0 ? std::numeric_limits<Acc>::quiet_NaN() : acc[i] / divisor;
  }
  if constexpr (!std::is_same_v<T, Acc>)
    for (int64_t i = 0; i < n_out; ++i) out[i] = T(acc[i]);
}

// relu_grad_column_sum over rows [r0, r1), added into acc: blocks of rows whose gradient (about
// 32 kB) is still in the cache when it is summed, each row added as accumulate_row adds it.
void relu_grad_rows(const float *y, const float *dy, float *dx, float *acc, int64_t r0, int64_t r1,
                    int64_t cols, float alpha) {
  const int64_t block = std::max<int64_t>(1, 8192 / cols);
  for (int64_t r = r0; r < r1; r += block) {
    const int64_t end = std::min(r1, r + block), at = r * cols;
    simd::unary_backward_f32(UnaryOp::kRelu, y + at, dy + at, dx + at, (end - r) * cols, alpha);
    for (int64_t i = r; i < end; ++i) accumulate_row<ReduceKind::kSum>(dx + i * cols, cols, acc);
  }
}

}  // namespace

void relu_grad_column_sum(const float *y, const float *dy, float *dx, float *db, int64_t rows, int64_t cols,
                          float alpha) {
  if (rows < 2 || cols < 2)
    fail(Code::kInternal, "relu_grad_column_sum: [", rows, ", ", cols,
         "]; expected at least 2 rows and 2 columns");
  std::fill(db, db + cols, 0.0f);
  const auto sum_rows = [&](int64_t lo, int64_t hi, float *into) {
    tree_rows<ReduceKind::kSum>(lo, hi, into, cols, [&](int64_t r0, int64_t r1, float *sum) {
      relu_grad_rows(y, dy, dx, sum, r0, r1, cols, alpha);
    });
  };
  if (rows * cols < kReduceLoopThreshold) {  // reduce_groups' one pass
    sum_rows(0, rows, db);
    return;
  }
  run_parts<ReduceKind::kSum>(rows, true, db, cols,
                              [&](int64_t, int64_t lo, int64_t hi, float *into) { sum_rows(lo, hi, into); });
}

void reduce(ReduceKind kind, DType dtype, const void *x, const Shape &x_shape,
            const std::vector<bool> &reduce, void *out) {
  const int64_t n = x_shape.num_elements();
  int64_t n_out = 1;
  for (int i = 0; i < x_shape.rank(); ++i)
    if (!reduce[static_cast<size_t>(i)]) n_out *= x_shape[i];
  std::vector<Group> groups = collapse(x_shape, reduce);
  bool any_reduced = false;
  for (const Group &g : groups) any_reduced = any_reduced || g.reduced;
  if (n > 0 && !any_reduced) {  // only size-1 axes reduced: the values pass through
    std::memcpy(out, x, static_cast<size_t>(n) * dtype_size(dtype));
    return;
  }
  dispatch_among<float, bfloat16, double, int32_t, int64_t>(dtype, "reduce", [&](auto t) {
    using T = decltype(t);
    reduce_typed(kind, static_cast<const T *>(x), n, groups, n_out, static_cast<T *>(out));
  });
}

namespace {

template <typename T>
void argmax_typed(const T *x, int64_t outer, int64_t n, int64_t inner, int64_t *out) {
  using V = std::conditional_t<std::is_same_v<T, bfloat16>, float, T>;
  const bool parallel = outer > 1 && outer * n * inner >= kReduceLoopThreshold;
  if (parallel) apply_num_threads();
  // Each thread's running maxima, allocated before the parallel region.
  const int nt = parallel ? num_threads() : 1;
  std::vector<V> scratch(inner > 1 ? static_cast<size_t>(nt) * static_cast<size_t>(inner) : 0);
#pragma omp parallel for num_threads(nt) if (parallel) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    const T *base = x + o * n * inner;
    int64_t *dst = out + o * inner;
    if (inner == 1) {
      // As TF's kernel (Eigen's arg-max reducer): from (0, lowest), strictly greater replaces,
      // so ties keep the first index and a NaN is never chosen, wherever it is.
      V best = std::numeric_limits<V>::lowest();
      int64_t at = 0;
      for (int64_t k = 0; k < n; ++k) {
        V v = static_cast<V>(base[k]);
        if (v > best) best = v, at = k;
      }
      dst[0] = at;
      continue;
    }
    // Scan row by row so that memory is read contiguously.
    V *best = scratch.data() + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(inner);
    for (int64_t j = 0; j < inner; ++j) best[j] = std::numeric_limits<V>::lowest(), dst[j] = 0;
    for (int64_t k = 0; k < n; ++k) {
      const T *row = base + k * inner;
      for (int64_t j = 0; j < inner; ++j) {
        V v = static_cast<V>(row[j]);
        if (v > best[j]) best[j] = v, dst[j] = k;
      }
    }
  }
}

}  // namespace

void argmax(DType dtype, const void *x, int64_t outer, int64_t n, int64_t inner, int64_t *out) {
  if (outer * inner == 0) return;
  dispatch_among<float, bfloat16, double, int32_t, int64_t>(dtype, "argmax", [&](auto t) {
    using T = decltype(t);
    argmax_typed(static_cast<const T *>(x), outer, n, inner, out);
  });
}

}  // namespace kiln::kernels

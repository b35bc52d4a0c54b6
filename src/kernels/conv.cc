#include "kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"
#include "kernels/conv_direct.h"
#include "kernels/engine.h"
#include "kernels/split_run.h"

namespace kiln::kernels {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using ConvFwd = dnnl::convolution_forward;
using ConvBwdData = dnnl::convolution_backward_data;
using ConvBwdWeights = dnnl::convolution_backward_weights;

memory::desc nhwc_md(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, Tag::nhwc);
}
memory::desc src_md(const Window2d &g) { return nhwc_md(g.n, g.c, g.h, g.w); }
memory::desc dst_md(const Window2d &g) { return nhwc_md(g.n, g.o, g.oh, g.ow); }
// Filters are created with layout `any` so that oneDNN picks its fast blocked kernels (about 1.5x to 3x
// faster than the gemm kernels it falls back to on a fixed HWIO layout, reorders included).
memory::desc filter_md(const Window2d &g, Tag tag) {
  if (g.groups == 1) return memory::desc({g.o, g.c, g.kh, g.kw}, memory::data_type::f32, tag);
  return memory::desc({g.groups, g.o / g.groups, g.c / g.groups, g.kh, g.kw}, memory::data_type::f32, tag);
}
// TF's filter layout: HWIO, or for groups (depthwise, one input channel per group) hwigo = [KH, KW, C, M].
Tag plain_filter_tag(const Window2d &g) { return g.groups == 1 ? Tag::hwio : Tag::hwigo; }
memory::dims strides(const Window2d &g) { return {g.sh, g.sw}; }
memory::dims dilates(const Window2d &g) { return {g.dh - 1, g.dw - 1}; }  // oneDNN counts from 0
memory::dims pad_l(const Window2d &g) { return {g.pad_top, g.pad_left}; }
memory::dims pad_r(const Window2d &g) { return {g.pad_bottom, g.pad_right}; }

ConvFwd::primitive_desc forward_pd(const Window2d &g) {
  ConvFwd::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_md(g),
                  filter_md(g, Tag::any), dst_md(g), strides(g), dilates(g), pad_l(g), pad_r(g));
  return ConvFwd::primitive_desc(d, user_scratchpad_attr(), engine());
}

PrimitiveKey key_for(PrimitiveKind kind, const Window2d &g) {
  PrimitiveKey key(kind);
  append_key(key, g);
  return key;
}

// Copies a filter between TF's plain layout (HWIO, or hwigo for groups) and the layout a convolution chose
// (`blocked`), through a cached reorder. `kind` tells which convolution's layout it is, so the key (the
// window plus the kind) determines both layouts.
void reorder_filter(PrimitiveKind kind, const Window2d &g, const memory::desc &blocked, bool to_plain,
                    const void *from, void *to) {
  PrimitiveKey key = key_for(PrimitiveKind::kReorder, g);
  key.add(static_cast<int64_t>(kind)).add(static_cast<int64_t>(to_plain));
  const memory::desc plain = filter_md(g, plain_filter_tag(g));
  run_cached(key,
             [&] {
               const memory::desc &src = to_plain ? blocked : plain, &dst = to_plain ? plain : blocked;
               return dnnl::reorder(
                   dnnl::reorder::primitive_desc(engine(), src, engine(), dst, user_scratchpad_attr()));
             },
             {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

// The filter as the primitive wants it: the caller's HWIO buffer itself when the layouts agree,
// otherwise a buffer in the primitive's layout. An input filter (given with its `source`) is
// reordered into it, or taken from the cache below when the same storage at the same version was
// reordered to the same layout before; an output filter (backward weights, no source) gets fresh
// scratch.
//
// The cache is keyed by the storage's id, which is never reused (unlike its pointer: the allocator
// recycles buffers), and checked against its version, which every in-place write bumps (a
// Variable's assign/assign_add/assign_sub, Tensor::raw_mutable_data). A stale entry is dropped on
// sight, never served. Entries live in a small LRU bounded in count and bytes, and are dropped as
// soon as their storage dies (the storage release hook). Adopted buffers (id 0) are never cached:
// their owner can change them behind kiln's back. Beside the storage, an entry is matched by the
// blocked layout alone (its memory descriptor, which holds the filter's dims too; oneDNN may pick
// another layout for another window, batch or thread count): the copy depends on nothing else, so
// a batch's pieces share it, as do convolutions of other kinds or windows that chose the same
// layout.
struct FilterBuffer {
  float *data = nullptr;
  bool blocked = false;
  memory::desc md;
  std::shared_ptr<Storage> scratch;
};

constexpr size_t kMaxCachedFilters = 32;
constexpr size_t kMaxCachedFilterBytes = size_t{64} << 20;

struct CachedFilter {
  uint64_t storage_id = 0;
  uint64_t version = 0;
  memory::desc md;
  std::shared_ptr<Storage> data;  // read-only once cached
  uint64_t last_use = 0;
};

struct FilterCache {
  FilterCache() { entries.reserve(kMaxCachedFilters); }  // so that inserting never allocates
  std::mutex mu;
  std::vector<CachedFilter> entries;
  uint64_t tick = 0;
  size_t bytes = 0;
  int64_t hits = 0, misses = 0;
};

FilterCache &filter_cache() {
  static FilterCache *c = new FilterCache();  // never destroyed: storages may die after static destruction
  return *c;
}

// Takes entry i out of the cache (the caller holds the lock); returns its buffer, to be released
// after the lock.
std::shared_ptr<Storage> take_locked(FilterCache &c, size_t i) {
  std::shared_ptr<Storage> data = std::move(c.entries[i].data);
  c.bytes -= c.entries[i].md.get_size();
  c.entries[i] = std::move(c.entries.back());
  c.entries.pop_back();
  return data;
}

// The storage release hook: drops what was cached from a storage that died. No throw, no
// allocation: the buffers are released after the lock through a fixed array.
void drop_storage(uint64_t id) noexcept {
  FilterCache &c = filter_cache();
  std::shared_ptr<Storage> dropped[kMaxCachedFilters];
  size_t n = 0;
  try {
    std::lock_guard<std::mutex> lock(c.mu);
    for (size_t i = 0; i < c.entries.size();)
      if (c.entries[i].storage_id == id && n < kMaxCachedFilters)
        dropped[n++] = take_locked(c, i);
      else
        ++i;
  } catch (...) {  // std::system_error from the lock: the entries then age out of the LRU
  }
}

// The cached copy for (source, md), or null; drops a stale one.
std::shared_ptr<Storage> cached_filter(const FilterSource &source, const memory::desc &md) {
  FilterCache &c = filter_cache();
  std::shared_ptr<Storage> stale;
  std::lock_guard<std::mutex> lock(c.mu);
  for (size_t i = 0; i < c.entries.size(); ++i) {
    CachedFilter &e = c.entries[i];
    if (e.storage_id != source.storage_id || e.md != md) continue;
    if (e.version == source.version) {
      e.last_use = ++c.tick;
      ++c.hits;
      return e.data;
    }
    stale = take_locked(c, i);
    break;
  }
  ++c.misses;
  return nullptr;
}

void cache_filter(const FilterSource &source, const memory::desc &md, const std::shared_ptr<Storage> &data) {
  const size_t size = md.get_size();
  if (size > kMaxCachedFilterBytes) return;
  FilterCache &c = filter_cache();
  std::shared_ptr<Storage> evicted[kMaxCachedFilters];
  size_t n = 0;
  std::lock_guard<std::mutex> lock(c.mu);
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const CachedFilter &e = c.entries[i];
    if (e.storage_id != source.storage_id || e.md != md) continue;
    // Another thread cached this filter meanwhile: keep the newer version (versions only grow).
    if (e.version >= source.version) return;
    evicted[n++] = take_locked(c, i);
    break;
  }
  while (!c.entries.empty() &&
         (c.entries.size() >= kMaxCachedFilters || c.bytes + size > kMaxCachedFilterBytes)) {
    size_t oldest = 0;
    for (size_t i = 1; i < c.entries.size(); ++i)
      if (c.entries[i].last_use < c.entries[oldest].last_use) oldest = i;
    evicted[n++] = take_locked(c, oldest);
  }
  CachedFilter e;
  e.storage_id = source.storage_id;
  e.version = source.version;
  e.md = md;
  e.data = data;
  e.last_use = ++c.tick;
  c.entries.push_back(std::move(e));
  c.bytes += size;
}

FilterBuffer filter_buffer(PrimitiveKind kind, const Window2d &g, const dnnl::primitive &p, int arg,
                           const float *plain_data, const FilterSource *source) {
  FilterBuffer b;
  b.md = arg_md(p, arg);
  if (b.md == filter_md(g, plain_filter_tag(g))) {
    b.data = const_cast<float *>(plain_data);
    return b;
  }
  b.blocked = true;
  const bool cacheable = source && source->storage_id != 0;
  if (cacheable) b.scratch = cached_filter(*source, b.md);
  if (!b.scratch) {
    b.scratch = Storage::allocate(b.md.get_size());
    if (source) reorder_filter(kind, g, b.md, false, plain_data, b.scratch->data());
    if (cacheable) cache_filter(*source, b.md, b.scratch);
  }
  b.data = static_cast<float *>(b.scratch->data());
  return b;
}

}  // namespace

FilterSource filter_source(Storage &storage) {
  if (!storage.versioned()) return {};
  static const bool installed = (add_storage_release_hook(&drop_storage), true);
  (void)installed;
  storage.mark_derived_cached();
  return {storage.id(), storage.version()};
}

FilterCacheStats filter_cache_stats() {
  FilterCache &c = filter_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return {c.hits, c.misses, static_cast<int64_t>(c.entries.size()), static_cast<int64_t>(c.bytes)};
}

void filter_cache_clear() {
  FilterCache &c = filter_cache();
  std::vector<CachedFilter> taken;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    taken.swap(c.entries);
    c.bytes = 0;
  }
}

void append_key(PrimitiveKey &key, const Window2d &g) {
  for (int64_t v : {g.n, g.h, g.w, g.c, g.kh, g.kw, g.o, g.sh, g.sw, g.dh, g.dw, g.oh, g.ow, g.pad_top,
                    g.pad_left, g.pad_bottom, g.pad_right, g.groups})
    key.add(v);
}

void conv2d_forward(const Window2d &g, const float *x, const float *filter, const FilterSource &filter_source,
                    float *y) {
  if (direct_conv_applies(g)) return direct_conv_forward(g, x, filter, y);
  const PrimitiveKind kind = PrimitiveKind::kConvForward;
  dnnl::primitive p = cached_primitive(key_for(kind, g), [&] { return ConvFwd(forward_pd(g)); });
  FilterBuffer w = filter_buffer(kind, g, p, DNNL_ARG_WEIGHTS, filter, &filter_source);
  execute(p, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w.data}, {DNNL_ARG_DST, y}});
}

void conv2d_backward_data(const Window2d &g, const float *dy, const float *filter,
                          const FilterSource &filter_source, float *dx) {
  const PrimitiveKind kind = PrimitiveKind::kConvBackwardData;
  dnnl::primitive p = cached_primitive(key_for(kind, g), [&] {
    ConvBwdData::desc d(dnnl::algorithm::convolution_direct, src_md(g), filter_md(g, Tag::any), dst_md(g),
                        strides(g), dilates(g), pad_l(g), pad_r(g));
    return ConvBwdData(ConvBwdData::primitive_desc(d, user_scratchpad_attr(), engine(), forward_pd(g)));
  });
  FilterBuffer w = filter_buffer(kind, g, p, DNNL_ARG_WEIGHTS, filter, &filter_source);
  execute(p, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w.data}, {DNNL_ARG_DIFF_SRC, dx}});
}

namespace {

// The pieces of a filter gradient. Their count and geometry are a function of the shape alone,
// never of the thread count, so the sum over images and output positions (which oneDNN splits by
// its thread count) always runs in one order: within a piece by a one-thread primitive, across
// pieces in piece order. Ranges of the batch, or for a single image ranges of its output rows (each
// with the input rows it reads); up to kMaxFilterGradPieces (enough to keep a few cores busy),
// fewer when their partial gradients would take more than kMaxPartialFilterBytes.
constexpr int64_t kMaxFilterGradPieces = 8;
constexpr int64_t kMaxPartialFilterBytes = int64_t{64} << 20;
constexpr int64_t kMinPieceOutputRows = 4;

struct FilterGradPiece {
  Window2d g;                   // the piece's own convolution
  int64_t x_offset, dy_offset;  // where its input and output gradient start, in elements
};

int64_t filter_count(const Window2d &g) { return g.kh * g.kw * (g.c / g.groups) * g.o; }

std::vector<FilterGradPiece> filter_grad_pieces(const Window2d &g) {
  const int64_t wanted =
      std::max<int64_t>(1, std::min(kMaxFilterGradPieces, kMaxPartialFilterBytes / (filter_count(g) * 4)));
  std::vector<FilterGradPiece> pieces;
  if (g.n > 1) {
    const int64_t size = (g.n + std::min(wanted, g.n) - 1) / std::min(wanted, g.n);
    for (int64_t first = 0; first < g.n; first += size) {
      Window2d q = g;
      q.n = std::min(size, g.n - first);
      pieces.push_back({q, first * g.h * g.w * g.c, first * g.oh * g.ow * g.o});
    }
    return pieces;
  }
  const int64_t count = std::max<int64_t>(1, std::min(wanted, g.oh / kMinPieceOutputRows));
  const int64_t rows = (g.oh + count - 1) / count, span = (g.kh - 1) * g.dh + 1;
  for (int64_t r0 = 0; r0 < g.oh; r0 += rows) {
    const int64_t r1 = std::min(g.oh, r0 + rows);
    // Input rows [top, end) feed output rows [r0, r1); those outside the image are padding.
    const int64_t top = r0 * g.sh - g.pad_top, end = (r1 - 1) * g.sh - g.pad_top + span;
    const int64_t start = std::max<int64_t>(0, top), stop = std::min(g.h, end);
    if (stop <= start) return {{g, 0, 0}};  // a piece of padding alone: keep the image whole
    Window2d q = g;
    q.oh = r1 - r0;
    q.h = stop - start;
    q.pad_top = start - top;
    q.pad_bottom = end - stop;
    pieces.push_back({q, start * g.w * g.c, r0 * g.ow * g.o});
  }
  return pieces;
}

dnnl::primitive backward_filter_primitive(const Window2d &g) {
  return cached_primitive(key_for(PrimitiveKind::kConvBackwardWeights, g), [&] {
    ConvBwdWeights::desc d(dnnl::algorithm::convolution_direct, src_md(g), filter_md(g, Tag::any), dst_md(g),
                           strides(g), dilates(g), pad_l(g), pad_r(g));
    return ConvBwdWeights(ConvBwdWeights::primitive_desc(d, user_scratchpad_attr(), engine(), forward_pd(g)));
  });
}

// backward_filter for g that direct_conv_applies to: pieces of whole images, as many as a
// function of the shape alone gives (each piece's dy about a quarter of a core's L2 cache, at
// most kMaxDirectPieces, and partial sums of at most kMaxPartialFilterBytes in all), each summed
// by direct_conv_filter_grad on one thread, the partial sums added in piece order.
constexpr int64_t kDirectPieceDyBytes = int64_t{256} << 10;
constexpr int64_t kMaxDirectPieces = 64;

void direct_backward_filter(const Window2d &g, const float *x, const float *dy, const DyWriter *write_dy,
                            float *dfilter) {
  const int64_t dy_image = g.oh * g.ow * g.o, x_image = g.h * g.w, count_floats = filter_count(g);
  const int64_t most = std::clamp<int64_t>(kMaxPartialFilterBytes / (count_floats * int64_t{sizeof(float)}),
                                           1, kMaxDirectPieces);
  const int64_t fit = std::max<int64_t>(1, kDirectPieceDyBytes / (dy_image * int64_t{sizeof(float)}));
  const int64_t size = std::min(g.n, std::max(fit, (g.n + most - 1) / most));
  const int64_t pieces = (g.n + size - 1) / size;
  std::shared_ptr<Storage> partials;
  if (pieces > 1) partials = Storage::allocate(static_cast<size_t>(pieces * count_floats) * sizeof(float));
  std::vector<std::shared_ptr<Storage>> thread_dy;
  if (!dy) {
    thread_dy.resize(static_cast<size_t>(std::max(1, team_size())));
    for (auto &b : thread_dy) b = Storage::allocate(static_cast<size_t>(size * dy_image) * sizeof(float));
  }
  std::atomic<bool> no_buffer{false};
  apply_num_threads();
#pragma omp parallel for if (pieces > 1) schedule(dynamic, 1)
  for (int64_t i = 0; i < pieces; ++i) {
    Window2d q = g;
    q.n = std::min(size, g.n - i * size);
    const float *piece_dy = dy ? dy + i * size * dy_image : nullptr;
    if (!dy) {
      const auto t = static_cast<size_t>(omp_get_thread_num());
      if (t >= thread_dy.size()) {
        no_buffer = true;
        continue;
      }
      auto *buffer = static_cast<float *>(thread_dy[t]->data());
      (*write_dy)(i * size, q.n, buffer);
      piece_dy = buffer;
    }
    float *out = pieces > 1 ? static_cast<float *>(partials->data()) + i * count_floats : dfilter;
    direct_conv_filter_grad(q, x + i * size * x_image, piece_dy, out);
  }
  if (no_buffer) fail(Code::kInternal, "conv2d_backward_filter: an OpenMP thread past the team's buffers");
  if (pieces == 1) return;
  std::vector<const float *> parts(static_cast<size_t>(pieces));
  for (int64_t i = 0; i < pieces; ++i)
    parts[static_cast<size_t>(i)] = static_cast<const float *>(partials->data()) + i * count_floats;
  sum_in_order(parts, count_floats, dfilter);
}

// conv2d_backward_filter from dy, or (dy null) from write_dy into one buffer per thread of the
// team, each piece written just before it runs.
void backward_filter(const Window2d &g, const float *x, const float *dy, const DyWriter *write_dy,
                     float *dfilter) {
  if (direct_conv_applies(g)) return direct_backward_filter(g, x, dy, write_dy, dfilter);
  const PrimitiveKind kind = PrimitiveKind::kConvBackwardWeights;
  const std::vector<FilterGradPiece> pieces = filter_grad_pieces(g);
  const size_t n = pieces.size();
  const int64_t dy_image = g.oh * g.ow * g.o;
  std::shared_ptr<Storage> whole_dy;
  std::vector<std::shared_ptr<Storage>> thread_dy;
  if (!dy && (n == 1 || g.n == 1)) {  // one piece, or pieces of rows: dy whole, then as usual
    whole_dy = Storage::allocate(static_cast<size_t>(g.n * dy_image) * sizeof(float));
    (*write_dy)(0, g.n, static_cast<float *>(whole_dy->data()));
    dy = static_cast<const float *>(whole_dy->data());
  } else if (!dy) {
    thread_dy.resize(static_cast<size_t>(std::max(1, team_size())));
    for (auto &b : thread_dy)
      b = Storage::allocate(static_cast<size_t>(pieces[0].g.n * dy_image) * sizeof(float));
  }
  std::vector<dnnl::primitive> prims(n);
  {
    SingleThreadScope one;
    for (size_t i = 0; i < n; ++i) prims[i] = backward_filter_primitive(pieces[i].g);
  }
  const memory::desc plain = filter_md(g, plain_filter_tag(g));
  std::vector<memory::desc> mds(n);
  bool same_layout = true;
  for (size_t i = 0; i < n; ++i) {
    mds[i] = arg_md(prims[i], DNNL_ARG_DIFF_WEIGHTS);
    same_layout = same_layout && mds[i] == mds[0];
  }
  std::vector<std::shared_ptr<Storage>> partials(n);
  std::vector<PreparedRun> runs;
  runs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    float *out = dfilter;
    if (n > 1 || mds[i] != plain) {
      partials[i] = Storage::allocate(mds[i].get_size());
      out = static_cast<float *>(partials[i]->data());
    }
    const float *piece_dy = dy ? dy + pieces[i].dy_offset : static_cast<const float *>(thread_dy[0]->data());
    runs.emplace_back(prims[i], std::initializer_list<Arg>{{DNNL_ARG_SRC, x + pieces[i].x_offset},
                                                           {DNNL_ARG_DIFF_DST, piece_dy},
                                                           {DNNL_ARG_DIFF_WEIGHTS, out}});
  }
  if (dy) {
    run_all(runs, "convolution backward-weights");
  } else {
    // Pieces of whole images (filter_grad_pieces with g.n > 1): piece i's images start at its
    // dy_offset.
    run_all(runs, "convolution backward-weights", [&](size_t i, int t) -> dnnl_status_t {
      if (t < 0 || static_cast<size_t>(t) >= thread_dy.size()) return dnnl_runtime_error;
      auto *buffer = static_cast<float *>(thread_dy[static_cast<size_t>(t)]->data());
      (*write_dy)(pieces[i].dy_offset / dy_image, pieces[i].g.n, buffer);
      return runs[i].set_data(DNNL_ARG_DIFF_DST, buffer);
    });
  }
  if (!partials[0]) return;  // one piece, written in place
  std::vector<const float *> parts(n);
  if (same_layout) {
    // Add in the primitives' own layout (its padding is zero in every part), then one reorder.
    for (size_t i = 0; i < n; ++i) parts[i] = static_cast<const float *>(partials[i]->data());
    if (mds[0] == plain) return sum_in_order(parts, filter_count(g), dfilter);
    float *sum = static_cast<float *>(partials[0]->data());
    sum_in_order(parts, static_cast<int64_t>(mds[0].get_size() / sizeof(float)), sum);
    return reorder_filter(kind, pieces[0].g, mds[0], true, sum, dfilter);
  }
  // The pieces chose different layouts: bring every part to the plain layout first.
  std::vector<std::shared_ptr<Storage>> plains(n);
  for (size_t i = 0; i < n; ++i) {
    if (mds[i] == plain) {
      parts[i] = static_cast<const float *>(partials[i]->data());
      continue;
    }
    plains[i] = Storage::allocate(plain.get_size());
    reorder_filter(kind, pieces[i].g, mds[i], true, partials[i]->data(), plains[i]->data());
    parts[i] = static_cast<const float *>(plains[i]->data());
  }
  sum_in_order(parts, filter_count(g), dfilter);
}

}  // namespace

void conv2d_backward_filter(const Window2d &g, const float *x, const float *dy, float *dfilter) {
  backward_filter(g, x, dy, nullptr, dfilter);
}

void conv2d_backward_filter(const Window2d &g, const float *x, const DyWriter &write_dy, float *dfilter) {
  backward_filter(g, x, nullptr, &write_dy, dfilter);
}

}  // namespace kiln::kernels

// The one place that owns oneDNN's engine, the per-thread streams and the primitive cache.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln::kernels {

dnnl::engine &engine();
// The calling thread's in-order CPU stream.
dnnl::stream &stream();

dnnl::memory::data_type to_dnnl(DType dtype);
dnnl::memory::dims to_dims(const Shape &shape);

struct PrimitiveCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;  // primitives created
  int64_t size = 0;
};

PrimitiveCacheStats primitive_cache_stats();
void primitive_cache_clear();

// Returns the cached primitive for key, creating it with make() on a miss.
// Thread-safe. key must name everything the primitive depends on.
dnnl::primitive cached_primitive(const std::string &key, const std::function<dnnl::primitive()> &make);

// Runs p on this thread's stream and waits; applies the thread count first.
void execute(const dnnl::primitive &p, const std::unordered_map<int, dnnl::memory> &args);

// A oneDNN memory object over a raw pointer (no copy) with a plain row-major layout.
dnnl::memory plain_memory(const Shape &shape, DType dtype, const void *data);

// Appends shape and dtype to a cache key.
void append_key(std::string &key, const Shape &shape, DType dtype);

}  // namespace kiln::kernels

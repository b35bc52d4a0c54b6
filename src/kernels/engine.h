// Every kernel follows one calling convention, written at the top of kernels/dispatch.h:
// raw pointers + dtype + sizes in, preallocated raw output pointers last, no Tensor.
//
// The one place that owns oneDNN's engine, the per-thread streams and the primitive cache.
//
// Thread safety. Debian's oneDNN 2.6 is built without DNNL_ENABLE_CONCURRENT_EXEC: with its
// default (library) scratchpad a primitive shares one scratch buffer among all its executions,
// and two threads running one cached primitive corrupt each other's results (or deadlock in a
// kernel barrier). So every primitive kiln creates takes user_scratchpad_attr(), and execute()
// gives each execution its own scratchpad from kiln's allocator; the cache refuses a primitive
// created without it. oneDNN 2.6 also fixes the OpenMP thread count of some primitives at
// creation, so every PrimitiveKey carries the calling thread's num_threads().
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <oneapi/dnnl/dnnl.hpp>
#include <type_traits>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln::kernels {

dnnl::engine &engine();
// The calling thread's in-order CPU stream.
dnnl::stream &stream();

dnnl::memory::data_type to_dnnl(DType dtype);
dnnl::memory::dims to_dims(const Shape &shape);

// The attributes every kiln primitive descriptor is created with (user-managed scratchpad).
dnnl::primitive_attr user_scratchpad_attr();

// Every kind of primitive kiln caches; part of each key.
enum class PrimitiveKind : int32_t {
  kNone = 0,
  kMatmul,
  kConvForward,
  kConvBackwardData,
  kConvBackwardWeights,
  kReorder,
  kPoolForward,
  kPoolForwardTraining,
  kPoolBackward,
  kBinary,
};

// A primitive-cache key: a fixed-size plain struct, hashed and compared over its first `count`
// values, so that a lookup builds no string and allocates nothing. It names everything the
// primitive depends on, and the thread count it runs with (filled in by the constructor).
struct PrimitiveKey {
  static constexpr int kMaxValues = 40;
  PrimitiveKind kind;
  int32_t threads;
  int32_t count = 0;
  int64_t values[kMaxValues];  // only the first count are meaningful

  explicit PrimitiveKey(PrimitiveKind k);
  PrimitiveKey &add(int64_t v) {
    if (count == kMaxValues) overflow();
    values[count++] = v;
    return *this;
  }
  PrimitiveKey &add_bits(float v);  // the float's bit pattern, so -0, NaNs etc. stay distinct
  PrimitiveKey &add(const Shape &s);
  PrimitiveKey &add(DType d) { return add(static_cast<int64_t>(d)); }
  uint64_t hash() const;
  bool operator==(const PrimitiveKey &o) const;

 private:
  [[noreturn]] static void overflow();
};

struct PrimitiveCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;  // primitives created
  int64_t size = 0;
};

PrimitiveCacheStats primitive_cache_stats();
void primitive_cache_clear();
// The shared cache keeps at most this many primitives, evicting the least recently used
// (default kDefaultPrimitiveCacheCapacity). Each thread also keeps a few in a small memo.
constexpr size_t kDefaultPrimitiveCacheCapacity = 1024;
void set_primitive_cache_capacity(size_t capacity);
size_t primitive_cache_capacity();

// A non-owning callable returning the primitive to create on a cache miss (no std::function,
// so passing a lambda allocates nothing).
class MakePrimitive {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, MakePrimitive>>>
  MakePrimitive(F &&f)  // NOLINT: implicit, so a lambda can be passed directly
      : obj_(const_cast<void *>(static_cast<const void *>(&f))),
        call_([](void *o) -> dnnl::primitive { return (*static_cast<std::remove_reference_t<F> *>(o))(); }) {}
  dnnl::primitive operator()() const { return call_(obj_); }

 private:
  void *obj_;
  dnnl::primitive (*call_)(void *);
};

// Returns the cached primitive for key, creating it with make() on a miss. Thread-safe.
// make() must create its primitive descriptor with user_scratchpad_attr().
dnnl::primitive cached_primitive(const PrimitiveKey &key, MakePrimitive make);

// One execution argument: a oneDNN argument id and the buffer behind it. The memory
// descriptor is the primitive's own for that argument (e.g. the layout a convolution chose
// for its weights), so the buffer must already be in that layout.
struct Arg {
  int id;
  const void *data;
};

// Runs p on this thread's stream with its own scratchpad and waits; applies the thread count
// first. Thread-safe: any thread may run any cached primitive, several at once.
void execute(const dnnl::primitive &p, std::initializer_list<Arg> args);
// cached_primitive(key, make) then execute, with one memo lookup.
void run_cached(const PrimitiveKey &key, MakePrimitive make, std::initializer_list<Arg> args);

// The memory descriptor p expects for argument id (e.g. DNNL_ARG_WEIGHTS).
dnnl::memory::desc arg_md(const dnnl::primitive &p, int id);

// A plain row-major descriptor for shape (a scalar as [1]).
dnnl::memory::desc plain_desc(const Shape &shape, DType dtype);

}  // namespace kiln::kernels

#include "kernels/engine.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "core/storage.h"
#include "core/threads.h"

namespace kiln::kernels {

// ---- keys ----

PrimitiveKey::PrimitiveKey(PrimitiveKind k) : kind(k), threads(num_threads()) {}

PrimitiveKey &PrimitiveKey::add_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return add(static_cast<int64_t>(bits));
}

PrimitiveKey &PrimitiveKey::add(const Shape &s) {
  add(static_cast<int64_t>(s.rank()));
  for (int i = 0; i < s.rank(); ++i) add(s[i]);
  return *this;
}

uint64_t PrimitiveKey::hash() const {
  auto mix = [](uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
  };
  uint64_t h = mix(static_cast<uint64_t>(kind), static_cast<uint64_t>(threads));
  h = mix(h, static_cast<uint64_t>(count));
  for (int i = 0; i < count; ++i) h = mix(h, static_cast<uint64_t>(values[i]));
  return h;
}

bool PrimitiveKey::operator==(const PrimitiveKey &o) const {
  return kind == o.kind && threads == o.threads && count == o.count &&
         std::memcmp(values, o.values, sizeof(int64_t) * static_cast<size_t>(count)) == 0;
}

void PrimitiveKey::overflow() {
  fail(Code::kInternal, "primitive cache key: more than ", kMaxValues, " values");
}

namespace {

// ---- the shared cache: LRU over a list, indexed by a hash map ----

struct KeyHash {
  size_t operator()(const PrimitiveKey &k) const { return static_cast<size_t>(k.hash()); }
};

struct Node {
  PrimitiveKey key;
  dnnl::primitive prim;
};

struct Cache {
  std::mutex mu;
  // Held while a primitive is created: one creation at a time. oneDNN's own lazily built state
  // (its primitive-descriptor cache and locks) is then set up under a lock kiln owns, and two
  // threads missing on one key create it once.
  std::recursive_mutex create_mu;
  std::list<Node> lru;  // most recently used first
  std::unordered_map<PrimitiveKey, std::list<Node>::iterator, KeyHash> map;
  size_t capacity = kDefaultPrimitiveCacheCapacity;
  std::atomic<int64_t> hits{0};
  std::atomic<int64_t> misses{0};
  // Bumped by clear and capacity changes; each thread's memo empties itself when it sees a
  // new generation, so a clear reaches the primitives the memos hold too.
  std::atomic<uint64_t> generation{1};

  void evict_to(size_t n) {  // with mu held
    while (map.size() > n) {
      map.erase(lru.back().key);
      lru.pop_back();
    }
  }
};

Cache &cache() {
  static Cache *c = new Cache();  // never destroyed: thread-local memos may outlive static destructors
  return *c;
}

// ---- the per-thread memo in front of it ----

// A steady loop finds its primitive here by hashing and comparing a few integers, and reuses the
// oneDNN memory objects built for it (only their data pointers change per call), so a cached op
// takes no lock and allocates nothing but its scratchpad. The memory objects are this thread's
// own, so no oneDNN object is shared across threads except the (immutable) primitive.
//
// It is 2-way set associative and indexed by the key's hash, so a lookup compares at most two
// keys, and a training step cycling through more primitives than one small list holds (a conv
// net uses six per conv layer) does not evict each entry just before it is needed again, as a
// round-robin list would. 128 entries take about 70 KiB per thread.
constexpr int kMemoSets = 64;
constexpr int kMemoWays = 2;
constexpr int kMaxArgs = 12;

struct MemoEntry {
  bool has_key = false;
  uint64_t hash = 0;
  PrimitiveKey key{PrimitiveKind::kNone};
  dnnl::primitive prim;
  // Filled on the first execute.
  bool exec_ready = false;
  size_t scratch_bytes = 0;
  dnnl::memory scratch;
  int num_mems = 0;
  int ids[kMaxArgs] = {};
  dnnl::memory mems[kMaxArgs];
};

struct Memo {
  MemoEntry sets[kMemoSets][kMemoWays];
  int victim[kMemoSets] = {};  // the way to replace next: the one not used last
  // The entries of the last two lookups: execute(p) right after cached_primitive() finds p's
  // entry here (a kernel may run a reorder between the two).
  MemoEntry *recent[2] = {nullptr, nullptr};
  int recent_next = 0;
  uint64_t generation = 0;

  void sync() {
    const uint64_t g = cache().generation.load(std::memory_order_acquire);
    if (g == generation) return;
    for (auto &set : sets)
      for (MemoEntry &e : set) e = MemoEntry();
    generation = g;
  }
  void touch(MemoEntry &e, int set, int way) {
    victim[set] = kMemoWays - 1 - way;
    recent[recent_next] = &e;
    recent_next ^= 1;
  }
  MemoEntry *find(const PrimitiveKey &key, uint64_t h) {
    const int set = static_cast<int>(h % kMemoSets);
    for (int w = 0; w < kMemoWays; ++w) {
      MemoEntry &e = sets[set][w];
      if (e.has_key && e.hash == h && e.key == key) {
        touch(e, set, w);
        return &e;
      }
    }
    return nullptr;
  }
  MemoEntry &insert(uint64_t h) {
    const int set = static_cast<int>(h % kMemoSets), way = victim[set];
    MemoEntry &e = sets[set][way];
    e = MemoEntry();
    e.hash = h;
    touch(e, set, way);
    return e;
  }
};

Memo &memo() {
  thread_local Memo m;
  m.sync();
  return m;
}

void check_user_scratchpad(const dnnl::primitive &p) {
  const_dnnl_primitive_desc_t pd = p.get_primitive_desc();
  const_dnnl_primitive_attr_t attr = nullptr;
  dnnl_scratchpad_mode_t mode = dnnl_scratchpad_mode_library;
  if (dnnl_primitive_desc_get_attr(pd, &attr) != dnnl_success ||
      dnnl_primitive_attr_get_scratchpad_mode(attr, &mode) != dnnl_success ||
      mode != dnnl_scratchpad_mode_user)
    fail(Code::kInternal,
         "a oneDNN primitive was created without user_scratchpad_attr(): it would share its "
         "scratchpad among threads");
}

dnnl::primitive shared_lookup(const PrimitiveKey &key, MakePrimitive make) {
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.map.find(key);
    if (it != c.map.end()) {
      c.hits.fetch_add(1, std::memory_order_relaxed);
      c.lru.splice(c.lru.begin(), c.lru, it->second);
      return it->second->prim;
    }
  }
  std::lock_guard<std::recursive_mutex> creating(c.create_mu);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.map.find(key);  // created by another thread while this one waited
    if (it != c.map.end()) {
      c.hits.fetch_add(1, std::memory_order_relaxed);
      return it->second->prim;
    }
  }
  dnnl::primitive p;
  try {
    p = make();
  } catch (const dnnl::error &e) {
    fail(e.status == dnnl_unimplemented ? Code::kUnimplemented : Code::kInternal,
         "oneDNN could not create a primitive of kind ", static_cast<int>(key.kind), ": ", e.what());
  }
  check_user_scratchpad(p);
  c.misses.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(c.mu);
  c.lru.push_front(Node{key, p});
  c.map.emplace(key, c.lru.begin());
  c.evict_to(c.capacity);
  return p;
}

MemoEntry &memo_lookup(const PrimitiveKey &key, MakePrimitive make) {
  Memo &m = memo();
  const uint64_t h = key.hash();
  if (MemoEntry *e = m.find(key, h)) {
    cache().hits.fetch_add(1, std::memory_order_relaxed);
    return *e;
  }
  dnnl::primitive p = shared_lookup(key, make);  // may throw: the memo stays as it was
  MemoEntry &e = m.insert(h);
  e.has_key = true;
  e.key = key;
  e.prim = std::move(p);
  return e;
}

// The entry holding p's memory objects: one of the last lookups, else found by the primitive's
// identity (the memo holds a reference, so the pointer cannot be reused while it is there), else
// a new keyless entry.
MemoEntry &memo_for(const dnnl::primitive &p) {
  Memo &m = memo();
  for (MemoEntry *e : m.recent)
    if (e && e->prim.get(true) == p.get()) return *e;
  for (auto &set : m.sets)
    for (MemoEntry &e : set)
      if (e.prim.get(true) == p.get()) return e;
  MemoEntry &e = m.insert(std::hash<const void *>()(p.get()));
  e.prim = p;
  return e;
}

void check(dnnl_status_t s, const char *what) {
  if (s != dnnl_success) fail(Code::kInternal, "oneDNN ", what, " failed with status ", static_cast<int>(s));
}

dnnl::memory &memory_for(MemoEntry &e, int id) {
  for (int i = 0; i < e.num_mems; ++i)
    if (e.ids[i] == id) return e.mems[i];
  if (e.num_mems == kMaxArgs) fail(Code::kInternal, "oneDNN execute: more than ", kMaxArgs, " arguments");
  dnnl::memory::desc md = arg_md(e.prim, id);
  if (md.data.ndims == 0) fail(Code::kInternal, "oneDNN execute: the primitive takes no argument ", id);
  e.mems[e.num_mems] = dnnl::memory(md, engine(), DNNL_MEMORY_NONE);
  e.ids[e.num_mems] = id;
  return e.mems[e.num_mems++];
}

void execute_entry(MemoEntry &e, std::initializer_list<Arg> args) {
  if (!e.exec_ready) {
    const dnnl::memory::desc smd = arg_md(e.prim, DNNL_ARG_SCRATCHPAD);
    e.scratch_bytes = smd.get_size();
    if (e.scratch_bytes > 0) e.scratch = dnnl::memory(smd, engine(), DNNL_MEMORY_NONE);
    e.exec_ready = true;
  }
  if (args.size() + 1 > static_cast<size_t>(kMaxArgs))
    fail(Code::kInternal, "oneDNN execute: more than ", kMaxArgs, " arguments");
  dnnl_exec_arg_t exec[kMaxArgs];
  int n = 0;
  for (const Arg &a : args) {
    dnnl::memory &mem = memory_for(e, a.id);
    check(dnnl_memory_set_data_handle(mem.get(), const_cast<void *>(a.data)), "set_data_handle");
    exec[n++] = {a.id, mem.get()};
  }
  // This execution's own scratchpad, released when it returns (the stream is waited on).
  std::shared_ptr<Storage> scratch;
  if (e.scratch_bytes > 0) {
    scratch = Storage::allocate(e.scratch_bytes);
    check(dnnl_memory_set_data_handle(e.scratch.get(), scratch->data()), "set_data_handle");
    exec[n++] = {DNNL_ARG_SCRATCHPAD, e.scratch.get()};
  }
  apply_num_threads();
  dnnl::stream &s = stream();
  const dnnl_status_t st = dnnl_primitive_execute(e.prim.get(), s.get(), n, exec);
  const dnnl_status_t wt = dnnl_stream_wait(s.get());
  if (e.scratch_bytes > 0) dnnl_memory_set_data_handle(e.scratch.get(), nullptr);
  check(st, "primitive execution");
  check(wt, "stream wait");
}

}  // namespace

dnnl::engine &engine() {
  static dnnl::engine *e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

dnnl::stream &stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

dnnl::memory::data_type to_dnnl(DType dtype) {
  using dt = dnnl::memory::data_type;
  switch (dtype) {
    case DType::kFloat32: return dt::f32;
    case DType::kBFloat16: return dt::bf16;
    case DType::kInt32: return dt::s32;
    case DType::kUInt8: return dt::u8;
    case DType::kBool: return dt::u8;
    case DType::kInt64:
    case DType::kFloat64: break;
  }
  fail(Code::kUnimplemented, "oneDNN has no ", dtype_name(dtype), " data type");
}

dnnl::memory::dims to_dims(const Shape &shape) {
  return dnnl::memory::dims(shape.data(), shape.data() + shape.rank());
}

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

PrimitiveCacheStats primitive_cache_stats() {
  Cache &c = cache();
  PrimitiveCacheStats s;
  s.hits = c.hits.load();
  s.misses = c.misses.load();
  std::lock_guard<std::mutex> lock(c.mu);
  s.size = static_cast<int64_t>(c.map.size());
  return s;
}

void primitive_cache_clear() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.map.clear();
  c.lru.clear();
  c.generation.fetch_add(1, std::memory_order_release);
}

void set_primitive_cache_capacity(size_t capacity) {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.capacity = capacity;
  c.evict_to(capacity);
}

size_t primitive_cache_capacity() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.capacity;
}

dnnl::primitive cached_primitive(const PrimitiveKey &key, MakePrimitive make) {
  return memo_lookup(key, make).prim;
}

void execute(const dnnl::primitive &p, std::initializer_list<Arg> args) { execute_entry(memo_for(p), args); }

void run_cached(const PrimitiveKey &key, MakePrimitive make, std::initializer_list<Arg> args) {
  execute_entry(memo_lookup(key, make), args);
}

dnnl::memory::desc arg_md(const dnnl::primitive &p, int id) {
  const dnnl_memory_desc_t *md =
      dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_exec_arg_md, id);
  return md ? dnnl::memory::desc(*md) : dnnl::memory::desc();
}

dnnl::memory::desc plain_desc(const Shape &shape, DType dtype) {
  Shape s = shape.rank() == 0 ? Shape{1} : shape;
  auto st = s.strides();
  return dnnl::memory::desc(to_dims(s), to_dnnl(dtype),
                            dnnl::memory::dims(st.begin(), st.begin() + s.rank()));
}

}  // namespace kiln::kernels

#include "kernels/engine.h"

#include <atomic>
#include <mutex>

#include "core/error.h"
#include "core/threads.h"

namespace kiln::kernels {

namespace {
struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, dnnl::primitive> map;
  std::atomic<int64_t> hits{0};
  std::atomic<int64_t> misses{0};
};
Cache &cache() {
  static Cache *c = new Cache();
  return *c;
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
    case DType::kInt64: break;
  }
  fail(Code::kUnimplemented, "oneDNN has no ", dtype_name(dtype), " data type");
}

dnnl::memory::dims to_dims(const Shape &shape) {
  return dnnl::memory::dims(shape.data(), shape.data() + shape.rank());
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
}

dnnl::primitive cached_primitive(const std::string &key, const std::function<dnnl::primitive()> &make) {
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.map.find(key);
    if (it != c.map.end()) {
      c.hits.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  dnnl::primitive p;
  try {
    p = make();
  } catch (const dnnl::error &e) {
    fail(e.status == dnnl_unimplemented ? Code::kUnimplemented : Code::kInternal,
         "oneDNN could not create a primitive for ", key, ": ", e.what());
  }
  c.misses.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(c.mu);
  return c.map.emplace(key, p).first->second;
}

void execute(const dnnl::primitive &p, const std::unordered_map<int, dnnl::memory> &args) {
  apply_num_threads();
  try {
    p.execute(stream(), args);
    stream().wait();
  } catch (const dnnl::error &e) {
    fail(Code::kInternal, "oneDNN primitive failed: ", e.what());
  }
}

dnnl::memory plain_memory(const Shape &shape, DType dtype, const void *data) {
  Shape s = shape.rank() == 0 ? Shape{1} : shape;
  auto st = s.strides();
  dnnl::memory::desc md(to_dims(s), to_dnnl(dtype), dnnl::memory::dims(st.begin(), st.begin() + s.rank()));
  return dnnl::memory(md, engine(), const_cast<void *>(data));
}

void append_key(std::string &key, const Shape &shape, DType dtype) {
  key += dtype_name(dtype);
  key += shape.to_string();
  key += ';';
}

}  // namespace kiln::kernels

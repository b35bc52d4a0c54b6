#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.h"

namespace kiln {

namespace {

// Buffers are cached by power-of-two size class, so a steady training loop that
// allocates the same sizes each step reuses them without calling malloc.
constexpr int kNumClasses = 48;
constexpr size_t kMinClassBytes = 64;
#ifdef KILN_NO_ALLOC_CACHE
constexpr int64_t kMaxCachedBytes = 0;
#else
constexpr int64_t kMaxCachedBytes = int64_t{2} << 30;
#endif

int size_class(size_t bytes, size_t *capacity) {
  size_t c = kMinClassBytes;
  int k = 0;
  while (c < bytes) {
    c <<= 1;
    ++k;
  }
  *capacity = c;
  return k;
}

struct Cache {
  std::mutex mu;
  std::vector<void *> free_lists[kNumClasses];
  int64_t cached_bytes = 0;
  std::atomic<int64_t> system_allocs{0};
  std::atomic<int64_t> cache_hits{0};
};

Cache &cache() {
  static Cache *c = new Cache();  // never destroyed: tensors may outlive static destruction
  return *c;
}

}  // namespace

std::shared_ptr<Storage> Storage::make() {
  // One allocation for the object and its reference count.
  struct Enabler : Storage {};
  return std::make_shared<Enabler>();
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes) {
  size_t capacity = 0;
  int k = size_class(bytes == 0 ? 1 : bytes, &capacity);
  void *p = nullptr;
  Cache &c = cache();
  if (k < kNumClasses) {
    std::lock_guard<std::mutex> lock(c.mu);
    auto &list = c.free_lists[k];
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
      c.cached_bytes -= static_cast<int64_t>(capacity);
    }
  }
  if (p) {
    c.cache_hits.fetch_add(1, std::memory_order_relaxed);
  } else {
    p = std::aligned_alloc(kAlignment, capacity);
    if (!p)
      fail(Code::kResourceExhausted, "out of memory allocating a tensor buffer of ", bytes, " bytes");
    c.system_allocs.fetch_add(1, std::memory_order_relaxed);
  }
  auto s = make();
  s->data_ = p;
  s->bytes_ = bytes;
  s->capacity_ = capacity;
  s->size_class_ = k;
  return s;
}

std::shared_ptr<Storage> Storage::adopt(void *data, size_t bytes, Deleter deleter, void *user_data) {
  auto s = make();
  s->data_ = data;
  s->bytes_ = bytes;
  s->deleter_ = deleter;
  s->user_data_ = user_data;
  return s;
}

Storage::~Storage() {
  if (capacity_ == 0) {
    if (deleter_) deleter_(data_, user_data_);
    return;
  }
  const int64_t cap = static_cast<int64_t>(capacity_);
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (size_class_ < kNumClasses && c.cached_bytes + cap <= kMaxCachedBytes) {
      c.free_lists[size_class_].push_back(data_);
      c.cached_bytes += cap;
      return;
    }
  }
  std::free(data_);
}

AllocatorStats allocator_stats() {
  Cache &c = cache();
  AllocatorStats s;
  s.system_allocs = c.system_allocs.load();
  s.cache_hits = c.cache_hits.load();
  std::lock_guard<std::mutex> lock(c.mu);
  s.cached_bytes = c.cached_bytes;
  return s;
}

bool allocator_caching_enabled() { return kMaxCachedBytes > 0; }


}  // namespace kiln

#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <mutex>
#include <new>
#include <vector>

#include "core/count.h"
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

// The smallest power-of-two class holding `bytes` (<= kMaxBytes, so the shift cannot
// overflow: a loop doubling a size_t would never end above 2^63).
int size_class(size_t bytes, size_t *capacity) {
  if (bytes <= kMinClassBytes) {
    *capacity = kMinClassBytes;
    return 0;
  }
  const int bits = 64 - __builtin_clzll(static_cast<unsigned long long>(bytes - 1));  // ceil(log2(bytes))
  *capacity = size_t{1} << bits;
  return bits - __builtin_ctzll(kMinClassBytes);
}

struct Cache {
  std::mutex mu;
  std::vector<void *> free_lists[kNumClasses];
  int64_t cached_bytes = 0;
  std::atomic<int64_t> system_allocs{0};
  std::atomic<int64_t> cache_hits{0};
};

// fork() while another thread holds the cache's lock would leave the child's copy locked for ever
// (the child's first tensor would wait on it): the forking thread takes the lock first and both
// processes give it back after. (The prepare handlers run before glibc takes malloc's own locks,
// and the lock is only held around list operations, so a fork waits at most for one of them.)
// The handlers are registered when the library loads, and the cache is made on first use without
// a function-local static: a thread inside that static's initialiser (which registered the
// handlers, and so waited for a fork in progress to finish) left the guard taken in the child,
// whose first tensor then waited for it for ever.
std::atomic<Cache *> g_cache{nullptr};  // never destroyed: tensors may outlive static destruction

Cache &cache() {
  Cache *c = g_cache.load(std::memory_order_acquire);
  if (c) return *c;
  Cache *fresh = new Cache();
  if (g_cache.compare_exchange_strong(c, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
    return *fresh;
  delete fresh;  // another thread's came first; nothing used this one
  return *c;
}

// The prepare handler makes the cache when there is none yet (it runs before fork, where
// allocating is safe): were it to lock nothing, another thread could make the cache and take its
// lock before the fork copied the process.
// (Nothing may throw out of a fork handler: should making the cache fail, it forks unlocked. Only
// the forking thread touches g_locked_for_fork, and glibc runs one fork's handlers at a time.)
Cache *g_locked_for_fork = nullptr;
void lock_cache_for_fork() {
  try {
    Cache &c = cache();
    c.mu.lock();
    g_locked_for_fork = &c;
  } catch (...) {
    g_locked_for_fork = nullptr;
  }
}
void unlock_cache_after_fork() {
  if (g_locked_for_fork) g_locked_for_fork->mu.unlock();
  g_locked_for_fork = nullptr;
}
[[maybe_unused]] const bool g_fork_handlers_registered =
    pthread_atfork(lock_cache_for_fork, unlock_cache_after_fork, unlock_cache_after_fork) == 0;

// Frees every cached buffer; returns the bytes given back. The buffers are taken out under
// the lock and freed after it, so other threads are not held up by free().
int64_t release_cached(Cache &c) {
  std::vector<void *> taken[kNumClasses];
  int64_t bytes;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (int k = 0; k < kNumClasses; ++k) taken[k].swap(c.free_lists[k]);
    bytes = c.cached_bytes;
    c.cached_bytes = 0;
  }
  for (auto &list : taken)
    for (void *p : list) std::free(p);
#ifdef __GLIBC__
  // free() keeps freed heap chunks in the process; this hands them back to the system too.
  if (bytes > 0) malloc_trim(0);
#endif
  return bytes;
}

std::atomic<uint64_t> g_next_storage_id{1};
std::atomic<StorageReleaseHook> g_release_hooks[kMaxStorageReleaseHooks] = {};
std::mutex g_release_hooks_mu;  // serialises add and remove (destructors only load the slots)

}  // namespace

void add_storage_release_hook(StorageReleaseHook hook) {
  if (!hook) return;
  std::lock_guard<std::mutex> lock(g_release_hooks_mu);
  for (auto &slot : g_release_hooks)
    if (slot.load() == hook) return;
  for (auto &slot : g_release_hooks)
    if (!slot.load()) {
      slot.store(hook);
      return;
    }
  fail(Code::kInternal, "add_storage_release_hook: all ", kMaxStorageReleaseHooks,
       " storage release hooks are taken; raise kMaxStorageReleaseHooks");
}

void remove_storage_release_hook(StorageReleaseHook hook) {
  std::lock_guard<std::mutex> lock(g_release_hooks_mu);
  for (auto &slot : g_release_hooks)
    if (slot.load() == hook) slot.store(nullptr);
}

std::shared_ptr<Storage> Storage::make() {
  // One allocation for the object and its reference count.
  struct Enabler : Storage {};
  auto s = std::make_shared<Enabler>();
  s->id_ = g_next_storage_id.fetch_add(1, std::memory_order_relaxed);
  return s;
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes) {
  if (bytes > static_cast<size_t>(kMaxBytes))
    fail(Code::kResourceExhausted, "cannot allocate a tensor buffer of ", bytes,
         " bytes: more than kiln's limit of ", kMaxBytes, " bytes (2^62)");
  size_t capacity = 0;
  int k = size_class(bytes == 0 ? 1 : bytes, &capacity);
  auto s = make();  // first, so that nothing can throw once the buffer is taken
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
    int64_t released = 0;
    if (!p) {
      // The cache may hold the memory this needs: give it back and try once more.
      released = release_cached(c);
      p = std::aligned_alloc(kAlignment, capacity);
    }
    if (!p)
      fail(Code::kResourceExhausted, "out of memory allocating a tensor buffer of ", bytes, " bytes (",
           capacity, " after rounding up), also after returning the allocator's ", released,
           " cached bytes to the system");
    c.system_allocs.fetch_add(1, std::memory_order_relaxed);
  }
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

// No throw and no allocation that can escape here: a destructor that throws terminates the
// process. The free list's push_back may allocate, so a failure there frees the buffer instead.
Storage::~Storage() {
  if (derived_cached_.load(std::memory_order_relaxed))
    for (const auto &slot : g_release_hooks)
      if (StorageReleaseHook hook = slot.load()) hook(id_);
  if (capacity_ == 0) {
    if (deleter_) deleter_(data_, user_data_);
    return;
  }
  const int64_t cap = static_cast<int64_t>(capacity_);
  Cache &c = cache();
  try {
    std::lock_guard<std::mutex> lock(c.mu);
    if (size_class_ < kNumClasses && c.cached_bytes + cap <= kMaxCachedBytes) {
      c.free_lists[size_class_].push_back(data_);
      c.cached_bytes += cap;
      return;
    }
  } catch (...) {  // std::bad_alloc from push_back, std::system_error from the lock
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

int64_t allocator_release_cached() { return release_cached(cache()); }

}  // namespace kiln

// Reference-counted, 64-byte-aligned buffers from a caching allocator.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace kiln {

constexpr size_t kAlignment = 64;

// A buffer. Either owned (returned to the caching allocator when the last
// reference goes) or adopted from a caller with a deleter (zero copy).
class Storage {
 public:
  using Deleter = void (*)(void *data, void *user_data);

  // An owned buffer of at least `bytes` bytes, 64-byte aligned. Throws ResourceExhausted
  // (never aborts) above kMaxBytes, or when the system allocator fails even after the
  // cache has been emptied and the allocation retried.
  static std::shared_ptr<Storage> allocate(size_t bytes);
  // Adopts data; deleter(data, user_data) runs when the last reference goes (deleter may be null).
  static std::shared_ptr<Storage> adopt(void *data, size_t bytes, Deleter deleter, void *user_data);

  ~Storage();
  Storage(const Storage &) = delete;
  Storage &operator=(const Storage &) = delete;

  // Hands the adopted buffer's release to `deleter`; call once the tensor over it exists,
  // so that a failure before then leaves the buffer with its owner.
  void set_deleter(Deleter deleter, void *user_data) {
    deleter_ = deleter;
    user_data_ = user_data;
  }

  void *data() const { return data_; }
  size_t bytes() const { return bytes_; }

  // Identity and version, for caches of data derived from a buffer's contents (the conv kernels'
  // reordered filters). The id is never given to another storage: buffers are recycled, so
  // pointers repeat. The version changes with every write into a buffer that may already have been
  // read: Tensor::raw_mutable_data and the Variable's in-place updates bump it before writing
  // (a writer must not keep a pointer from raw_mutable_data across a read by others).
  uint64_t id() const { return id_; }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  void bump_version() { version_.fetch_add(1, std::memory_order_acq_rel); }
  // False for adopted buffers: their owner may write into them behind kiln's back, so nothing
  // derived from their contents may be cached.
  bool versioned() const { return capacity_ != 0; }
  // A buffer a holder besides tensors reads and writes (a variable's): a tensor over it is never
  // written over in place, even as its only handle (Tensor::overwritable). Set before any tensor
  // over the buffer exists.
  void mark_held() { held_ = true; }
  bool held() const { return held_; }
  // Asks for the release hooks (add_storage_release_hook) to run with id() when this storage
  // dies, so caches can drop what they derived from it.
  void mark_derived_cached() { derived_cached_.store(true, std::memory_order_relaxed); }

 protected:
  Storage() = default;

 private:
  static std::shared_ptr<Storage> make();
  void *data_ = nullptr;
  size_t bytes_ = 0;
  size_t capacity_ = 0;  // bucket size for owned buffers; 0 when adopted
  int size_class_ = 0;   // which free list an owned buffer returns to
  Deleter deleter_ = nullptr;
  void *user_data_ = nullptr;
  uint64_t id_ = 0;
  std::atomic<uint64_t> version_{0};
  std::atomic<bool> derived_cached_{false};
  bool held_ = false;
};

// Called with the id of each dying storage marked with mark_derived_cached(), from its destructor
// on whichever thread drops the last reference: must not throw, and must not drop the last
// reference to another storage while holding a lock the hook itself takes. Each cache of derived
// data (the conv filter cache, gemv's packed weights) adds its own, once.
using StorageReleaseHook = void (*)(uint64_t id) noexcept;
// At most this many hooks for the process.
constexpr int kMaxStorageReleaseHooks = 8;
// Adds hook (adding one already there does nothing). Internal error when kMaxStorageReleaseHooks
// are there already. Thread-safe.
void add_storage_release_hook(StorageReleaseHook hook);
// Removes hook (not there: nothing). A destructor running at the same time may still call it once.
void remove_storage_release_hook(StorageReleaseHook hook);

struct AllocatorStats {
  int64_t system_allocs = 0;  // buffers obtained from the system allocator
  int64_t cache_hits = 0;     // buffers served from the cache
  int64_t cached_bytes = 0;   // bytes currently held in the cache
};

AllocatorStats allocator_stats();
// False in sanitizer builds, where buffers go straight back to the system so that
// AddressSanitizer sees every use after free.
bool allocator_caching_enabled();
// Returns every cached free buffer to the system (like torch.cuda.empty_cache); returns the
// bytes released. Buffers in use are untouched. Thread-safe.
int64_t allocator_release_cached();

}  // namespace kiln

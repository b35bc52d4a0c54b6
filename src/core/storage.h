// Reference-counted, 64-byte-aligned buffers from a caching allocator.
#pragma once

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
};

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

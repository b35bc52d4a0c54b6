// A vector of trivially copyable values that keeps its first N elements inline,
// so the short lists ops record (inputs, outputs) cost no heap allocation.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

namespace kiln {

template <typename T, size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>, "SmallVector holds trivially copyable values");

 public:
  void push_back(const T &v) {
    if (size_ < N)
      inline_[size_] = v;
    else
      overflow_.push_back(v);
    ++size_;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T &operator[](size_t i) const { return i < N ? inline_[i] : overflow_[i - N]; }
  void reserve_extra(size_t n) {
    if (size_ + n > N) overflow_.reserve(size_ + n - N);
  }

 private:
  T inline_[N];
  std::vector<T> overflow_;
  size_t size_ = 0;
};

}  // namespace kiln

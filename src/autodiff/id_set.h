// A set of tensor ids (never 0) with open addressing: inserting an id allocates
// nothing until the table grows, which keeps a recording tape cheap per op.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::autodiff {

class IdSet {
 public:
  bool contains(uint64_t id) const {
    if (slots_.empty()) return false;
    for (size_t i = slot(id);; i = (i + 1) & mask()) {
      if (slots_[i] == id) return true;
      if (slots_[i] == 0) return false;
    }
  }
  // Returns true when id was not in the set.
  bool insert(uint64_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (size_t i = slot(id);; i = (i + 1) & mask()) {
      if (slots_[i] == id) return false;
      if (slots_[i] == 0) {
        slots_[i] = id;
        ++size_;
        return true;
      }
    }
  }
  size_t size() const { return size_; }

 private:
  size_t mask() const { return slots_.size() - 1; }
  size_t slot(uint64_t id) const { return static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> 20) & mask(); }
  void grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, 0);
    size_ = 0;
    for (uint64_t id : old)
      if (id) insert(id);
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

}  // namespace kiln::autodiff

// Tensor shapes: up to kMaxRank dims held inline, so building one never allocates.
// A Shape is always valid: every dim >= 0 and the product of its non-zero dims at most
// kMaxElements (core/count.h), so num_elements(), strides() and any partial product of
// dims cannot overflow. Every way of building or changing one checks this.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace kiln {

class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t> &dims);
  Shape(const int64_t *dims, int rank);
  // As above, with errors naming `op` ("reshape: shape [...] has ...").
  Shape(const std::vector<int64_t> &dims, const char *op);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  // Sets dim i (checked like a new shape; errors name op when given).
  void set_dim(int i, int64_t d, const char *op = nullptr);
  // Dim by index, negative counting from the end; throws on out of range.
  int64_t dim(int i) const;
  const int64_t *data() const { return dims_.data(); }
  int64_t num_elements() const;
  std::vector<int64_t> to_vector() const { return {dims_.begin(), dims_.begin() + rank_}; }
  std::string to_string() const;

  void push_back(int64_t d, const char *op = nullptr);
  // Row-major strides in elements.
  std::array<int64_t, kMaxRank> strides() const;

  bool operator==(const Shape &o) const;
  bool operator!=(const Shape &o) const { return !(*this == o); }
  // True when prefix's dims are this shape's leading dims (a Keras mask's shape is its value's).
  bool starts_with(const Shape &prefix) const;

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// "[1, 2, 3]": how error messages print a list of dims, axes or strides (the first `limit` values,
// then "..." when there are more).
std::string list_string(const std::vector<int64_t> &values, size_t limit = SIZE_MAX);

// NumPy broadcasting of two shapes; throws InvalidArgument naming op when they do not broadcast.
Shape broadcast_shapes(const Shape &a, const Shape &b, const char *op);
// Normalises axis (negative counts from the end) into [0, rank); throws naming op.
int normalize_axis(int64_t axis, int rank, const char *op);

}  // namespace kiln

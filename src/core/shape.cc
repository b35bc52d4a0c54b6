#include "core/shape.h"

#include "core/error.h"

namespace kiln {

namespace {
void check_rank(size_t rank) {
  if (rank > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, "shape has rank ", rank, "; kiln supports rank <= ", Shape::kMaxRank);
}
void check_dim(int64_t d) {
  if (d < 0) fail(Code::kInvalidArgument, "shape dimension ", d, " is negative; dims must be >= 0");
}
// Checks a whole list first, so the message shows the shape as given.
void check_dims(const int64_t *dims, size_t rank) {
  for (size_t i = 0; i < rank; ++i)
    if (dims[i] < 0)
      fail(Code::kInvalidArgument, "shape ", list_string(std::vector<int64_t>(dims, dims + rank)),
           " has a negative dimension (", dims[i], " at index ", i, "); dims must be >= 0");
}
}  // namespace

Shape::Shape(std::initializer_list<int64_t> dims) {
  check_rank(dims.size());
  check_dims(dims.begin(), dims.size());
  for (int64_t d : dims) push_back(d);
}

Shape::Shape(const std::vector<int64_t> &dims) {
  check_rank(dims.size());
  check_dims(dims.data(), dims.size());
  for (int64_t d : dims) push_back(d);
}

Shape::Shape(const int64_t *dims, int rank) {
  if (rank < 0) fail(Code::kInvalidArgument, "shape rank ", rank, " is negative");
  check_rank(static_cast<size_t>(rank));
  if (rank > 0 && dims == nullptr) fail(Code::kInvalidArgument, "shape dims pointer is NULL for rank ", rank);
  check_dims(dims, static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) push_back(dims[i]);
}

void Shape::push_back(int64_t d) {
  check_rank(static_cast<size_t>(rank_) + 1);
  check_dim(d);
  dims_[static_cast<size_t>(rank_++)] = d;
}

int64_t Shape::dim(int i) const {
  int a = normalize_axis(i, rank_, "Shape::dim");
  return dims_[static_cast<size_t>(a)];
}

int64_t Shape::num_elements() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

std::string list_string(const std::vector<int64_t> &values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(values[i]);
  }
  return s + "]";
}

std::string Shape::to_string() const { return list_string(to_vector()); }

std::array<int64_t, Shape::kMaxRank> Shape::strides() const {
  std::array<int64_t, kMaxRank> s{};
  int64_t acc = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    s[static_cast<size_t>(i)] = acc;
    acc *= dims_[static_cast<size_t>(i)];
  }
  return s;
}

bool Shape::operator==(const Shape &o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != o.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

Shape broadcast_shapes(const Shape &a, const Shape &b, const char *op) {
  if (a == b) return a;
  int rank = a.rank() > b.rank() ? a.rank() : b.rank();
  Shape out;
  for (int i = 0; i < rank; ++i) {
    int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail(Code::kInvalidArgument, op, ": shapes ", a.to_string(), " and ", b.to_string(),
           " are not broadcast-compatible (dimension ", i, ": ", da, " vs ", db,
           "); expected equal dims or 1");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

int normalize_axis(int64_t axis, int rank, const char *op) {
  if (axis < -rank || axis >= rank)
    fail(Code::kInvalidArgument, op, ": axis ", axis, " is out of range for a tensor of rank ", rank,
         "; expected an axis in [", -rank, ", ", rank, ")");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

}  // namespace kiln

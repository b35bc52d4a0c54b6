#include "core/shape.h"

#include "core/count.h"
#include "core/error.h"

namespace kiln {

namespace {
// "op: " or "" as the start of a message.
std::string prefix(const char *op) { return op ? std::string(op) + ": " : std::string(); }

void check_rank(size_t rank, const char *op) {
  if (rank > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, prefix(op), "shape has rank ", rank,
         "; kiln supports rank <= ", Shape::kMaxRank);
}
// Checks a whole list at once, so the message shows the shape as given.
void check_dims(const int64_t *dims, size_t rank, const char *op) {
  check_rank(rank, op);
  if (rank > 0 && dims == nullptr)
    fail(Code::kInvalidArgument, prefix(op), "shape dims pointer is NULL for rank ", rank);
  for (size_t i = 0; i < rank; ++i)
    if (dims[i] < 0)
      fail(Code::kInvalidArgument, prefix(op), "shape ", list_string(std::vector<int64_t>(dims, dims + rank)),
           " has a negative dimension (", dims[i], " at index ", i, "); dims must be >= 0");
  if (nonzero_dims_product(dims, rank) < 0)
    fail(Code::kInvalidArgument, prefix(op), "shape ", list_string(std::vector<int64_t>(dims, dims + rank)),
         " has too many elements: the product of its non-zero dims exceeds kiln's limit of ", kMaxElements,
         " (2^62) elements");
}
}  // namespace

Shape::Shape(std::initializer_list<int64_t> dims) {
  check_dims(dims.begin(), dims.size(), nullptr);
  for (int64_t d : dims) dims_[static_cast<size_t>(rank_++)] = d;
}

Shape::Shape(const std::vector<int64_t> &dims) : Shape(dims, nullptr) {}

Shape::Shape(const std::vector<int64_t> &dims, const char *op) {
  check_dims(dims.data(), dims.size(), op);
  for (int64_t d : dims) dims_[static_cast<size_t>(rank_++)] = d;
}

Shape::Shape(const int64_t *dims, int rank) {
  if (rank < 0) fail(Code::kInvalidArgument, "shape rank ", rank, " is negative");
  check_dims(dims, static_cast<size_t>(rank), nullptr);
  for (int i = 0; i < rank; ++i) dims_[static_cast<size_t>(rank_++)] = dims[i];
}

void Shape::push_back(int64_t d, const char *op) {
  std::array<int64_t, kMaxRank + 1> next{};
  for (int i = 0; i < rank_; ++i) next[static_cast<size_t>(i)] = dims_[static_cast<size_t>(i)];
  next[static_cast<size_t>(rank_)] = d;
  check_dims(next.data(), static_cast<size_t>(rank_) + 1, op);
  dims_[static_cast<size_t>(rank_++)] = d;
}

void Shape::set_dim(int i, int64_t d, const char *op) {
  if (i < 0 || i >= rank_)
    fail(Code::kInternal, prefix(op), "set_dim: index ", i, " is out of range for rank ", rank_);
  std::array<int64_t, kMaxRank> next = dims_;
  next[static_cast<size_t>(i)] = d;
  check_dims(next.data(), static_cast<size_t>(rank_), op);
  dims_ = next;
}

int64_t Shape::dim(int i) const {
  int a = normalize_axis(i, rank_, "Shape::dim");
  return dims_[static_cast<size_t>(a)];
}

int64_t Shape::num_elements() const {
  // Cannot overflow: the product of the non-zero dims is at most kMaxElements.
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

std::string list_string(const std::vector<int64_t> &values, size_t limit) {
  std::string s = "[";
  for (size_t i = 0; i < values.size() && i < limit; ++i) {
    if (i) s += ", ";
    s += std::to_string(values[i]);
  }
  return s + (values.size() > limit ? ", ...]" : "]");
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

bool Shape::starts_with(const Shape &prefix) const {
  if (prefix.rank_ > rank_) return false;
  for (int i = 0; i < prefix.rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != prefix.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

Shape broadcast_shapes(const Shape &a, const Shape &b, const char *op) {
  if (a == b) return a;
  int rank = a.rank() > b.rank() ? a.rank() : b.rank();
  std::vector<int64_t> out;
  for (int i = 0; i < rank; ++i) {
    int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail(Code::kInvalidArgument, op, ": shapes ", a.to_string(), " and ", b.to_string(),
           " are not broadcast-compatible (dimension ", i, ": ", da, " vs ", db,
           "); expected equal dims or 1");
    out.push_back(da == 1 ? db : da);
  }
  // [2^40, 1] and [1, 2^40] are valid shapes, but they broadcast to 2^80 elements.
  return Shape(out, op);
}

int normalize_axis(int64_t axis, int rank, const char *op) {
  if (axis < -rank || axis >= rank)
    fail(Code::kInvalidArgument, op, ": axis ", axis, " is out of range for a tensor of rank ", rank,
         "; expected an axis in [", -rank, ", ", rank, ")");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

}  // namespace kiln

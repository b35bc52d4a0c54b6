#include "data/element_util.h"

#include <cstring>

#include "core/error.h"

namespace kiln::data {

namespace {

Shape tail_shape(const Shape &s) {
  Shape out;
  for (int d = 1; d < s.rank(); ++d) out.push_back(s[d]);
  return out;
}

Shape with_leading(int64_t n, const Shape &s) {
  Shape out{n};
  for (int d = 0; d < s.rank(); ++d) out.push_back(s[d]);
  return out;
}

}  // namespace

std::string describe(const Tensor &t) { return t.defined() ? t.description() : std::string("(no tensor)"); }

void require_components(const Element &e, const char *op) {
  for (size_t i = 0; i < e.size(); ++i)
    if (!e[i].defined())
      fail(Code::kInvalidArgument, op, ": component ", i, " is an empty slot; expected a tensor");
}

Tensor slice_row(const Tensor &t, int64_t i) {
  const Shape row = tail_shape(t.shape());
  const size_t bytes = static_cast<size_t>(row.num_elements()) * dtype_size(t.dtype());
  const auto *src = static_cast<const uint8_t *>(t.raw_data()) + static_cast<size_t>(i) * bytes;
  return Tensor::from_data(t.dtype(), row, src, bytes);
}

Tensor stack_rows(const std::vector<Tensor> &rows, const char *op, size_t component) {
  const Tensor &first = rows.front();
  for (size_t r = 1; r < rows.size(); ++r)
    if (rows[r].dtype() != first.dtype() || rows[r].shape() != first.shape())
      fail(Code::kInvalidArgument, op, ": component ", component, " of element ", r, " in the batch is ",
           describe(rows[r]), "; element 0's is ", describe(first),
           " (batch needs equal shapes: use padded_batch for varying ones)");
  Tensor out = Tensor::empty(first.dtype(), with_leading(static_cast<int64_t>(rows.size()), first.shape()));
  const size_t bytes = first.byte_size();
  auto *dst = static_cast<uint8_t *>(out.raw_mutable_data());
  for (size_t r = 0; r < rows.size(); ++r)
    if (bytes) std::memcpy(dst + r * bytes, rows[r].raw_data(), bytes);
  return out;
}

namespace {

// Copies src (shape s) into dst (shape d >= s dim by dim), recursively over dims.
void copy_padded(const uint8_t *src, const Shape &s, uint8_t *dst, const Shape &d, int dim, size_t elem) {
  if (dim == s.rank()) {
    std::memcpy(dst, src, elem);
    return;
  }
  int64_t src_stride = 1, dst_stride = 1;
  for (int k = dim + 1; k < s.rank(); ++k) {
    src_stride *= s[k];
    dst_stride *= d[k];
  }
  if (dim == s.rank() - 1) {
    if (s[dim]) std::memcpy(dst, src, static_cast<size_t>(s[dim]) * elem);
    return;
  }
  for (int64_t i = 0; i < s[dim]; ++i)
    copy_padded(src + static_cast<size_t>(i * src_stride) * elem, s,
                dst + static_cast<size_t>(i * dst_stride) * elem, d, dim + 1, elem);
}

}  // namespace

Tensor stack_padded(const std::vector<Tensor> &rows, const std::vector<int64_t> &shape, const Tensor &pad,
                    const char *op, size_t component) {
  const Tensor &first = rows.front();
  const Shape target(shape, op);
  for (size_t r = 0; r < rows.size(); ++r) {
    const Shape &s = rows[r].shape();
    bool fits = rows[r].dtype() == first.dtype() && s.rank() == target.rank();
    for (int k = 0; fits && k < s.rank(); ++k) fits = s[k] <= target[k];
    if (!fits)
      fail(Code::kInvalidArgument, op, ": component ", component, " of element ", r, " in the batch is ",
           describe(rows[r]), "; it must be ", dtype_name(first.dtype()), " and fit in the padded shape ",
           target.to_string());
  }
  if (pad.defined() && (pad.dtype() != first.dtype() || pad.rank() != 0))
    fail(Code::kInvalidArgument, op, ": the padding value of component ", component, " is ", describe(pad),
         "; expected a ", dtype_name(first.dtype()), " scalar");
  Tensor out = Tensor::empty(first.dtype(), with_leading(static_cast<int64_t>(rows.size()), target));
  const size_t elem = dtype_size(first.dtype());
  const size_t row_bytes = static_cast<size_t>(target.num_elements()) * elem;
  auto *dst = static_cast<uint8_t *>(out.raw_mutable_data());
  const size_t total = row_bytes * rows.size();
  if (!pad.defined()) {
    std::memset(dst, 0, total);
  } else {
    for (size_t i = 0; i < total; i += elem) std::memcpy(dst + i, pad.raw_data(), elem);
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].num_elements() == 0) continue;
    copy_padded(static_cast<const uint8_t *>(rows[r].raw_data()), rows[r].shape(), dst + r * row_bytes,
                target, 0, elem);
  }
  return out;
}

}  // namespace kiln::data

// Tensor handles: creation by copy or over a user buffer, shape and data access.
#include <cstring>

#include "capi/handles.h"
#include "core/count.h"

using kiln::Tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;

namespace {

struct Layout {
  kiln::DType dtype;
  kiln::Shape shape;
};

// The dtype and shape of a new tensor over `num_bytes` of `data`; errors name fn.
Layout check_layout(const char *fn, kiln_dtype dtype, const int64_t *dims, size_t rank, const void *data,
                    size_t num_bytes) {
  Layout l{kiln::capi::dtype_from_c(dtype, fn), kiln::capi::shape_from_c(dims, rank, fn)};
  const int64_t n = l.shape.num_elements();
  const size_t elem = kiln::dtype_size(l.dtype);
  int64_t need_signed = 0;
  // Checked: {2^31, 2^31} float32 needs 2^64 bytes, which wraps to 0 in a size_t.
  const bool fits = kiln::checked_mul(n, static_cast<int64_t>(elem), &need_signed, kiln::kMaxBytes);
  const size_t need = static_cast<size_t>(need_signed);
  if (!fits || num_bytes != need)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": a ", kiln::dtype_name(l.dtype), l.shape.to_string(),
               " tensor needs ", kiln::byte_count_string(n, elem), " bytes",
               fits ? "" : " (more than kiln's limit of 2^62)", "; got ", num_bytes);
  if (need > 0) require_not_null(data, fn, "data");
  return l;
}

}  // namespace

extern "C" {

kiln_status *kiln_tensor_create(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims, size_t rank,
                                const void *data, size_t num_bytes) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_tensor_create", "out");
  Layout l = check_layout("kiln_tensor_create", dtype, dims, rank, data, num_bytes);
  *out = kiln::capi::new_tensor(kiln::Tensor::from_data(l.dtype, l.shape, data, num_bytes));
  KILN_CAPI_END
}

kiln_status *kiln_tensor_create_from_buffer(kiln_tensor **out, kiln_dtype dtype, const int64_t *dims, size_t rank,
                                            void *data, size_t num_bytes, kiln_deleter deleter,
                                            void *user_data) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tensor_create_from_buffer";
  require_not_null(out, fn, "out");
  Layout l = check_layout(fn, dtype, dims, rank, data, num_bytes);
  if (reinterpret_cast<uintptr_t>(data) % kiln::dtype_size(l.dtype) != 0)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": data is not aligned to its ", kiln::dtype_size(l.dtype),
               "-byte element size");
  // The deleter is attached only once nothing else can fail, so a failed call leaves
  // the buffer with the caller and never calls it.
  auto handle = std::make_unique<kiln_tensor>();
  auto storage = kiln::Storage::adopt(data, num_bytes, nullptr, nullptr);
  handle->value = kiln::Tensor::from_storage(l.dtype, l.shape, storage);
  storage->set_deleter(deleter, user_data);
  *out = handle.release();
  KILN_CAPI_END
}

kiln_status *kiln_tensor_clone(kiln_tensor **out, const kiln_tensor *tensor) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_tensor_clone", "out");
  *out = kiln::capi::new_tensor(tensor_of(tensor, "kiln_tensor_clone", "tensor"));
  KILN_CAPI_END
}

kiln_status *kiln_tensor_get_keras_mask(kiln_tensor **out, const kiln_tensor *tensor) {
  KILN_CAPI_BEGIN
  require_not_null(out, "kiln_tensor_get_keras_mask", "out");
  const Tensor &mask = tensor_of(tensor, "kiln_tensor_get_keras_mask", "tensor").keras_mask();
  *out = mask.defined() ? kiln::capi::new_tensor(mask) : nullptr;
  KILN_CAPI_END
}

kiln_status *kiln_tensor_with_keras_mask(kiln_tensor **out, const kiln_tensor *tensor,
                                         const kiln_tensor *mask) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tensor_with_keras_mask";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(tensor, fn, "tensor");
  Tensor m;
  if (mask) {
    m = tensor_of(mask, fn, "mask");
    if (!t.shape().starts_with(m.shape()))
      kiln::fail(kiln::Code::kInvalidArgument, fn, ": mask ", m.description(), " does not fit tensor ",
                 t.description(), "; expected the leading dims of the tensor's shape");
  }
  *out = kiln::capi::new_tensor(t.with_keras_mask(m));
  KILN_CAPI_END
}

void kiln_tensor_free(kiln_tensor *tensor) { delete tensor; }

kiln_dtype kiln_tensor_get_dtype(const kiln_tensor *tensor) {
  return tensor ? static_cast<kiln_dtype>(tensor->value.dtype()) : static_cast<kiln_dtype>(0);
}
int kiln_tensor_get_rank(const kiln_tensor *tensor) { return tensor ? tensor->value.rank() : -1; }
const int64_t *kiln_tensor_get_dims(const kiln_tensor *tensor) {
  return tensor ? tensor->value.shape().data() : nullptr;
}
int64_t kiln_tensor_get_num_elements(const kiln_tensor *tensor) {
  return tensor ? tensor->value.num_elements() : -1;
}
size_t kiln_tensor_get_byte_size(const kiln_tensor *tensor) { return tensor ? tensor->value.byte_size() : 0; }
const void *kiln_tensor_get_data(const kiln_tensor *tensor) { return tensor ? tensor->value.raw_data() : nullptr; }

kiln_status *kiln_tensor_copy_to(const kiln_tensor *tensor, void *dst, size_t num_bytes) {
  KILN_CAPI_BEGIN
  const kiln::Tensor &t = tensor_of(tensor, "kiln_tensor_copy_to", "tensor");
  if (num_bytes != t.byte_size())
    kiln::fail(kiln::Code::kInvalidArgument, "kiln_tensor_copy_to: ", t.description(), " holds ", t.byte_size(),
               " bytes; the destination is ", num_bytes);
  if (num_bytes) {
    require_not_null(dst, "kiln_tensor_copy_to", "dst");
    std::memcpy(dst, t.raw_data(), num_bytes);
  }
  KILN_CAPI_END
}

}  // extern "C"

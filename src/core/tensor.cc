#include "core/tensor.h"

#include <atomic>
#include <cstring>
#include <type_traits>

#include "core/count.h"
#include "core/error.h"

namespace kiln {

namespace {
std::atomic<uint64_t> g_next_id{1};
uint64_t next_id() { return g_next_id.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

uint64_t next_object_id() { return next_id(); }

struct Tensor::KerasMetadata {
  Tensor mask, logits;
};

struct Tensor::Impl {
  Shape shape;
  DType dtype;
  std::shared_ptr<Storage> storage;
  uint64_t id;
  std::shared_ptr<const KerasMetadata> keras;  // null: no mask, no logits
};

namespace {
// Byte size of a tensor of dtype and shape; ResourceExhausted above kMaxBytes.
size_t bytes_of(DType dtype, const Shape &shape) {
  return checked_byte_size(shape.num_elements(), dtype_size(dtype),
                           [&] { return dtype_name(dtype) + shape.to_string(); });
}
}  // namespace

Tensor Tensor::empty(DType dtype, const Shape &shape) {
  return from_storage(dtype, shape, Storage::allocate(bytes_of(dtype, shape)));
}

Tensor Tensor::from_storage(DType dtype, const Shape &shape, std::shared_ptr<Storage> storage) {
  size_t need = bytes_of(dtype, shape);
  if (!storage || storage->bytes() < need)
    fail(Code::kInvalidArgument, "tensor of ", dtype_name(dtype), shape.to_string(), " needs ", need,
         " bytes; the buffer holds ", storage ? storage->bytes() : 0);
  Tensor t;
  t.impl_ = std::make_shared<Impl>(Impl{shape, dtype, std::move(storage), next_id(), nullptr});
  return t;
}

Tensor Tensor::from_data(DType dtype, const Shape &shape, const void *data, size_t bytes) {
  const int64_t n = shape.num_elements();
  int64_t need_signed;
  if (!checked_mul(n, static_cast<int64_t>(dtype_size(dtype)), &need_signed, kMaxBytes) ||
      bytes != static_cast<size_t>(need_signed))
    fail(Code::kInvalidArgument, "tensor of ", dtype_name(dtype), shape.to_string(), " needs ",
         byte_count_string(n, dtype_size(dtype)), " bytes of data; got ", bytes);
  const size_t need = bytes;
  if (need > 0 && data == nullptr)
    fail(Code::kInvalidArgument, "tensor data pointer is NULL for ", need, " bytes");
  Tensor t = empty(dtype, shape);
  if (need) std::memcpy(t.raw_mutable_data(), data, need);
  return t;
}

DType Tensor::dtype() const { return impl_->dtype; }
const Shape &Tensor::shape() const { return impl_->shape; }
uint64_t Tensor::id() const { return impl_->id; }
const void *Tensor::raw_data() const { return impl_->storage->data(); }
void *Tensor::raw_mutable_data() const {
  impl_->storage->bump_version();  // caches derived from the old contents must not serve them again
  return impl_->storage->data();
}
const std::shared_ptr<Storage> &Tensor::storage() const { return impl_->storage; }

Tensor Tensor::reshaped(const Shape &shape) const {
  if (shape.num_elements() != num_elements())
    fail(Code::kInvalidArgument, "reshape: cannot reshape ", description(), " (", num_elements(),
         " elements) to ", shape.to_string(), " (", shape.num_elements(), " elements)");
  return from_storage(dtype(), shape, impl_->storage);
}

bool Tensor::unique() const { return impl_.use_count() == 1 && impl_->storage.use_count() == 1; }
bool Tensor::overwritable() const {
  return unique() && impl_->storage->versioned() && !impl_->storage->held();
}
void Tensor::renew_id() { impl_->id = next_id(); }

Tensor Tensor::with_metadata(const Tensor &mask, const Tensor &logits) const {
  if (!impl_) fail(Code::kInvalidArgument, "an undefined tensor cannot carry a Keras mask or logits");
  Tensor t;
  t.impl_ = std::make_shared<Impl>(Impl{impl_->shape, impl_->dtype, impl_->storage, impl_->id, nullptr});
  if (mask.defined() || logits.defined())
    t.impl_->keras = std::make_shared<const KerasMetadata>(KerasMetadata{mask, logits});
  return t;
}
Tensor Tensor::with_keras_mask(const Tensor &mask) const { return with_metadata(mask, keras_logits()); }
Tensor Tensor::with_keras_logits(const Tensor &logits) const { return with_metadata(keras_mask(), logits); }

namespace {
const Tensor &no_tensor() {
  static const Tensor none;
  return none;
}
}  // namespace

const Tensor &Tensor::keras_mask() const { return impl_ && impl_->keras ? impl_->keras->mask : no_tensor(); }
const Tensor &Tensor::keras_logits() const {
  return impl_ && impl_->keras ? impl_->keras->logits : no_tensor();
}

std::string Tensor::description() const {
  if (!impl_) return "undefined";
  return std::string(dtype_name(dtype())) + shape().to_string();
}

double Tensor::item_as_double(int64_t i) const {
  return dispatch_dtype(dtype(), [&](auto tag) -> double {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bfloat16>)
      return static_cast<double>(static_cast<float>(data<T>()[i]));
    else
      return static_cast<double>(data<T>()[i]);
  });
}

void require_defined(const Tensor &t, const char *op, const char *arg) {
  if (!t.defined()) fail(Code::kInvalidArgument, op, ": argument '", arg, "' is an undefined tensor");
}

}  // namespace kiln

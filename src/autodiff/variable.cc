#include "autodiff/variable.h"

#include <cstring>

#include "core/error.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::autodiff {

Variable::Variable(std::string name, const Tensor &initial, bool trainable)
    : name_(std::move(name)), trainable_(trainable) {
  require_defined(initial, "Variable", "initial_value");
  dtype_ = initial.dtype();
  shape_ = initial.shape();
  value_ = initial;
}

Tensor Variable::value() const {
  Tensor v = peek();
  if (trainable_) ops::notify_variable_read(v);
  return v;
}

Tensor Variable::peek() const {
  std::lock_guard<std::mutex> lock(mu_);
  return value_;
}

void Variable::check_compatible(const Tensor &v, const char *op) const {
  require_defined(v, op, "value");
  if (v.dtype() != dtype_ || v.shape() != shape_)
    fail(Code::kInvalidArgument, op, " on variable '", name_, "': got ", v.description(), "; expected ",
         dtype_name(dtype_), shape_.to_string());
}

void Variable::assign(const Tensor &v) {
  check_compatible(v, "Variable.assign");
  std::lock_guard<std::mutex> lock(mu_);
  if (value_.unique()) {
    std::memcpy(value_.raw_mutable_data(), v.raw_data(), v.byte_size());
    value_.renew_id();
  } else {
    value_ = Tensor::from_data(v.dtype(), v.shape(), v.raw_data(), v.byte_size());
  }
}

void Variable::update(const Tensor &delta, float sign, const char *op) {
  check_compatible(delta, op);
  std::lock_guard<std::mutex> lock(mu_);
  if (dtype_ == DType::kFloat32 && value_.unique()) {
    float *dst = value_.mutable_data<float>();
    const float *src = delta.data<float>();
    int64_t n = value_.num_elements();
    for (int64_t i = 0; i < n; ++i) dst[i] += sign * src[i];
    value_.renew_id();
    return;
  }
  value_ = sign > 0 ? ops::add(value_, delta) : ops::sub(value_, delta);
}

void Variable::assign_add(const Tensor &delta) { update(delta, 1.0f, "Variable.assign_add"); }
void Variable::assign_sub(const Tensor &delta) { update(delta, -1.0f, "Variable.assign_sub"); }

}  // namespace kiln::autodiff

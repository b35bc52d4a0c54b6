#include "train/distribution.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::train {

GradientAllreduce::GradientAllreduce(CommunicatorPtr comm, bool average, size_t fusion_threshold_bytes)
    : comm_(std::move(comm)), average_(average), threshold_(fusion_threshold_bytes) {
  KILN_REQUIRE(comm_ != nullptr, "DistributedOptimizer: the communicator is null");
}

void GradientAllreduce::set_scale(double scale) {
  std::lock_guard<std::mutex> lock(mu_);
  has_scale_ = true;
  scale_ = scale;
}

void GradientAllreduce::clear_scale() {
  std::lock_guard<std::mutex> lock(mu_);
  has_scale_ = false;
}

namespace {

template <typename T>
void scaled_copy(T *dst, const T *src, size_t n, double scale) {
  if (scale == 1.0) {
    std::memcpy(dst, src, n * sizeof(T));
    return;
  }
  const T s = static_cast<T>(scale);
  for (size_t i = 0; i < n; ++i) dst[i] = src[i] * s;
}

}  // namespace

void GradientAllreduce::reduce_dtype(const std::vector<Tensor> &grads, DType dtype, double scale,
                                     std::vector<Tensor> *out) {
  const size_t elem = dtype_size(dtype);
  std::vector<size_t> group;
  size_t group_bytes = 0;
  auto flush = [&] {
    if (group.empty()) return;
    if (buffer_.size() < group_bytes) buffer_.resize(group_bytes);
    size_t at = 0;
    for (size_t i : group) {
      const Tensor &g = grads[i];
      const size_t n = static_cast<size_t>(g.num_elements());
      if (dtype == DType::kFloat32)
        scaled_copy(reinterpret_cast<float *>(buffer_.data() + at), g.data<float>(), n, scale);
      else
        scaled_copy(reinterpret_cast<double *>(buffer_.data() + at), g.data<double>(), n, scale);
      at += n * elem;
    }
    comm_->allreduce_sum(buffer_.data(), group_bytes / elem, dtype);
    at = 0;
    for (size_t i : group) {
      const Tensor &g = grads[i];
      Tensor r = Tensor::empty(dtype, g.shape());
      std::memcpy(r.raw_mutable_data(), buffer_.data() + at, g.byte_size());
      at += g.byte_size();
      (*out)[i] = std::move(r);
    }
    group.clear();
    group_bytes = 0;
  };
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor &g = grads[i];
    if (!g.defined() || g.dtype() != dtype) continue;
    if (!group.empty() && group_bytes + g.byte_size() > threshold_) flush();
    group.push_back(i);
    group_bytes += g.byte_size();
  }
  flush();
}

std::vector<Tensor> GradientAllreduce::reduce(const std::vector<Tensor> &grads) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Tensor &g : grads)
    if (g.defined() && g.dtype() != DType::kFloat32 && g.dtype() != DType::kFloat64)
      fail(Code::kInvalidArgument, "DistributedOptimizer: a gradient is ", g.description(),
           "; gradients are averaged over the processes in float32 or float64");
  const double scale = has_scale_ ? scale_ : (average_ ? 1.0 / comm_->size() : 1.0);
  // One process: nothing to sum (a DistributedOptimizer also runs unchanged outside mpirun).
  if (comm_->size() == 1 && scale == 1.0) return grads;
  std::vector<Tensor> out(grads.size());
  reduce_dtype(grads, DType::kFloat32, scale, &out);
  reduce_dtype(grads, DType::kFloat64, scale, &out);
  // A buffer far larger than the usual step's would otherwise stay for good.
  if (buffer_.size() > threshold_) std::vector<unsigned char>().swap(buffer_);
  return out;
}

void allreduce_sum_doubles(Communicator &comm, std::vector<double> *values) {
  if (!values->empty()) comm.allreduce_sum(values->data(), values->size(), DType::kFloat64);
}

std::vector<Tensor> allreduce_sum_tensors(Communicator &comm, const std::vector<Tensor> &tensors) {
  std::vector<double> flat;
  std::vector<Tensor> as_double;
  for (const Tensor &t : tensors) {
    KILN_REQUIRE(t.defined(), "allreduce: a tensor is undefined");
    Tensor d = t.dtype() == DType::kFloat64 ? t : ops::cast(t, DType::kFloat64);
    const double *p = d.data<double>();
    flat.insert(flat.end(), p, p + d.num_elements());
  }
  allreduce_sum_doubles(comm, &flat);
  std::vector<Tensor> out;
  size_t at = 0;
  for (const Tensor &t : tensors) {
    const size_t n = static_cast<size_t>(t.num_elements());
    Tensor d = Tensor::from_data(DType::kFloat64, t.shape(), flat.data() + at, n * sizeof(double));
    at += n;
    out.push_back(t.dtype() == DType::kFloat64 ? d : ops::cast(d, t.dtype()));
  }
  return out;
}

void broadcast_variables(Communicator &comm, const std::vector<std::shared_ptr<autodiff::Variable>> &vars,
                         int root) {
  KILN_REQUIRE(root >= 0 && root < comm.size(), "broadcast_variables: root rank ", root, " is outside [0, ",
               comm.size(), ")");
  // A signature of the list (count, then per variable dtype and shape), hashed so the ranks can
  // compare it in one broadcast; then every rank says whether its own matched, so all fail alike.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  mix(vars.size());
  size_t total = 0;
  for (const auto &v : vars) {
    KILN_REQUIRE(v != nullptr, "broadcast_variables: a variable is null");
    mix(static_cast<uint64_t>(v->dtype()));
    mix(static_cast<uint64_t>(v->shape().rank()));
    for (int64_t d : v->shape().to_vector()) mix(static_cast<uint64_t>(d));
    total += static_cast<size_t>(v->shape().num_elements()) * dtype_size(v->dtype());
  }
  uint64_t root_h = h;
  comm.broadcast(&root_h, sizeof root_h, root);
  std::vector<double> mismatched{root_h == h ? 0.0 : 1.0};
  allreduce_sum_doubles(comm, &mismatched);
  if (mismatched[0] != 0.0)
    fail(Code::kInvalidArgument, "broadcast_variables: ", static_cast<int64_t>(mismatched[0]),
         " rank(s) hold other variables than root rank ", root, " (", vars.size(),
         " on this rank); every rank must build the same model, with the same shapes and dtypes");
  std::vector<unsigned char> buffer(total);
  size_t at = 0;
  if (comm.rank() == root) {
    for (const auto &v : vars) {
      const Tensor t = v->value();
      std::memcpy(buffer.data() + at, t.raw_data(), t.byte_size());
      at += t.byte_size();
    }
  }
  if (total > 0) comm.broadcast(buffer.data(), total, root);
  if (comm.rank() == root) return;
  at = 0;
  for (const auto &v : vars) {
    const size_t bytes = static_cast<size_t>(v->shape().num_elements()) * dtype_size(v->dtype());
    v->assign(Tensor::from_data(v->dtype(), v->shape(), buffer.data() + at, bytes));
    at += bytes;
  }
}

}  // namespace kiln::train

#include "train/distribution.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::train {

// The background thread of the overlapped reductions: runs the posted collectives in order.
class GradientAllreduce::Worker {
 public:
  Worker() : thread_([this] { run(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Until every posted job has run; then the first error of them, if any, is thrown. Jobs the
  // worker has not started yet run here, on the calling thread, which saves waking it (one at a
  // time and in order all the same: a job starts only while no other runs).
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (!busy_ && !jobs_.empty()) {
        run_front(lock);
        continue;
      }
      if (jobs_.empty() && !busy_) break;
      cv_.wait(lock);
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return quit_ || (!jobs_.empty() && !busy_); });
      if (jobs_.empty()) return;
      run_front(lock);
    }
  }
  // Runs the first job with the lock released; busy_ keeps any other thread from starting one.
  void run_front(std::unique_lock<std::mutex> &lock) {
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    busy_ = true;
    // After a failure the later buckets are not summed: the step fails on this rank anyway.
    const bool skip = error_ != nullptr;
    lock.unlock();
    std::exception_ptr failed;
    if (!skip) try {
        job();
      } catch (...) {
        failed = std::current_exception();
      }
    lock.lock();
    if (failed && !error_) error_ = failed;
    busy_ = false;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool quit_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once the members above exist
};

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

void scaled_copy(DType dtype, void *dst, const Tensor &src, double scale) {
  const size_t n = static_cast<size_t>(src.num_elements());
  if (dtype == DType::kFloat32)
    scaled_copy(static_cast<float *>(dst), src.data<float>(), n, scale);
  else
    scaled_copy(static_cast<double *>(dst), src.data<double>(), n, scale);
}

bool reducible(DType d) { return d == DType::kFloat32 || d == DType::kFloat64; }

}  // namespace

// One reduction: the gradients it sums laid out in buckets, the outputs, and the buckets handed
// to the communicator (on the worker, or at once without one) in order as they fill.
class GradientAllreduce::Step final : public autodiff::GradientReadyHook {
 public:
  struct Member {
    size_t index;  // in the caller's list
    DType dtype;
    Shape shape;
  };
  // members in bucket order; first_cap bounds the first bucket (besides the threshold).
  Step(GradientAllreduce &owner, const std::vector<Member> &members, size_t n, double scale, size_t first_cap,
       Worker *worker)
      : owner_(owner),
        scale_(scale),
        worker_(worker),
        out_(n),
        defined_(n, 0),
        slot_(n, kNone),
        offset_(n, 0) {
    const size_t threshold = owner.threshold_;
    for (const Member &m : members) {
      const size_t bytes = static_cast<size_t>(m.shape.num_elements()) * dtype_size(m.dtype);
      Bucket *b = buckets_.empty() ? nullptr : &buckets_.back();
      const size_t cap = buckets_.size() == 1 ? std::min(threshold, first_cap) : threshold;
      if (!b || b->dtype != m.dtype || b->bytes + bytes > cap) {
        buckets_.push_back(Bucket{m.dtype, 0, {}, 0, 0});
        b = &buckets_.back();
      }
      slot_[m.index] = buckets_.size() - 1;
      offset_[m.index] = b->bytes;
      b->members.push_back(m.index);
      b->bytes += bytes;
      ++b->waiting;
      out_[m.index] = Tensor::empty(m.dtype, m.shape);
    }
    size_t fused = 0;
    // A bucket of one gradient is summed in its output; the others in the fusion buffer.
    for (Bucket &b : buckets_)
      if (b.members.size() > 1) {
        b.fused_at = fused;
        fused += b.bytes;
      }
    if (owner.buffer_.size() < fused) owner.buffer_.resize(fused);
  }
  ~Step() override {
    if (worker_ && launched_ > 0) try {
        worker_->wait();
      } catch (
          ...) {  // NOLINT(bugprone-empty-catch): the step already failed; its error is the one that counts
      }
  }
  Step(const Step &) = delete;
  Step &operator=(const Step &) = delete;

  void ready(size_t i, const Tensor &grad) override {
    if (i >= slot_.size() || slot_[i] == kNone) return;
    Bucket &b = buckets_[slot_[i]];
    void *dst = data_of(b, i);
    if (grad.defined()) {
      if (grad.dtype() != b.dtype || grad.shape() != out_[i].shape())
        fail(Code::kInternal, "DistributedOptimizer: gradient ", i, " is ", grad.description(), "; expected ",
             out_[i].description());
      scaled_copy(b.dtype, dst, grad, scale_);
      defined_[i] = 1;
    } else {
      // Every rank must have the same gradients defined; a missing one adds zeros.
      std::memset(dst, 0, out_[i].byte_size());
    }
    --b.waiting;
    while (launched_ < buckets_.size() && buckets_[launched_].waiting == 0) launch(launched_++);
  }

  std::vector<Tensor> finish() {
    if (launched_ != buckets_.size())
      fail(Code::kInternal, "DistributedOptimizer: ", buckets_.size() - launched_,
           " gradient bucket(s) never became complete");
    if (worker_) worker_->wait();
    for (size_t i = 0; i < out_.size(); ++i)
      if (!defined_[i]) out_[i] = Tensor();
    return std::move(out_);
  }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  struct Bucket {
    DType dtype;
    size_t bytes;
    std::vector<size_t> members;
    size_t waiting;
    size_t fused_at;
  };
  void *data_of(const Bucket &b, size_t i) {
    if (b.members.size() == 1) return out_[i].raw_mutable_data();
    return owner_.buffer_.data() + b.fused_at + offset_[i];
  }
  void launch(size_t k) {
    Bucket &b = buckets_[k];
    const size_t elem = dtype_size(b.dtype);
    void *data = data_of(b, b.members.front());
    Communicator *comm = owner_.comm_.get();
    // The outputs of a fused bucket, filled from the buffer once it is summed.
    std::vector<std::pair<void *, size_t>> outs;
    if (b.members.size() > 1)
      for (size_t i : b.members) outs.emplace_back(out_[i].raw_mutable_data(), out_[i].byte_size());
    auto job = [comm, data, count = b.bytes / elem, dtype = b.dtype, outs = std::move(outs)] {
      if (count > 0) comm->allreduce_sum(data, count, dtype);
      const unsigned char *at = static_cast<const unsigned char *>(data);
      for (const auto &o : outs) {
        std::memcpy(o.first, at, o.second);
        at += o.second;
      }
    };
    if (worker_)
      worker_->post(std::move(job));
    else
      job();
  }
  GradientAllreduce &owner_;
  double scale_;
  Worker *worker_;
  std::vector<Tensor> out_;
  std::vector<char> defined_;
  std::vector<size_t> slot_;    // caller index -> its bucket
  std::vector<size_t> offset_;  // caller index -> its byte offset in the bucket
  std::vector<Bucket> buckets_;
  size_t launched_ = 0;
};

GradientAllreduce::GradientAllreduce(CommunicatorPtr comm, bool average, size_t fusion_threshold_bytes,
                                     bool overlap)
    : comm_(std::move(comm)), average_(average), threshold_(fusion_threshold_bytes), overlap_(overlap) {
  KILN_REQUIRE(comm_ != nullptr, "DistributedOptimizer: the communicator is null");
}

GradientAllreduce::~GradientAllreduce() = default;

void GradientAllreduce::set_scale(double scale) {
  std::lock_guard<std::mutex> lock(mu_);
  has_scale_ = true;
  scale_ = scale;
}

void GradientAllreduce::clear_scale() {
  std::lock_guard<std::mutex> lock(mu_);
  has_scale_ = false;
}

double GradientAllreduce::scale_locked() const {
  return has_scale_ ? scale_ : (average_ ? 1.0 / comm_->size() : 1.0);
}

std::vector<Tensor> GradientAllreduce::reduce(const std::vector<Tensor> &grads) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Tensor &g : grads)
    if (g.defined() && !reducible(g.dtype()))
      fail(Code::kInvalidArgument, "DistributedOptimizer: a gradient is ", g.description(),
           "; gradients are averaged over the processes in float32 or float64");
  const double scale = scale_locked();
  // One process: nothing to sum (a DistributedOptimizer also runs unchanged outside mpirun).
  if (comm_->size() == 1 && scale == 1.0) return grads;
  std::vector<Step::Member> members;
  for (size_t i = grads.size(); i-- > 0;)
    if (grads[i].defined()) members.push_back(Step::Member{i, grads[i].dtype(), grads[i].shape()});
  Step step(*this, members, grads.size(), scale, threshold_, nullptr);
  for (const Step::Member &m : members) step.ready(m.index, grads[m.index]);
  return step.finish();
}

std::vector<Tensor> GradientAllreduce::gradient(autodiff::Tape &tape, const std::vector<Tensor> &targets,
                                                const autodiff::GradientSources &sources,
                                                autodiff::Unconnected unconnected,
                                                const std::vector<Tensor> &target_grads) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < sources.size(); ++i)
    if (sources[i].id && !reducible(sources[i].dtype))
      fail(Code::kInvalidArgument, "DistributedGradientTape: source ", i, " is ",
           dtype_name(sources[i].dtype), sources[i].shape.to_string(),
           "; gradients are averaged over the processes in float32 or float64");
  const double scale = scale_locked();
  if (comm_->size() == 1 && scale == 1.0) return tape.gradient(targets, sources, unconnected, target_grads);
  std::vector<Step::Member> members;
  for (size_t i = sources.size(); i-- > 0;)
    members.push_back(Step::Member{i, sources[i].dtype, sources[i].shape});
  if (overlap_ && !worker_) worker_ = std::make_unique<Worker>();
  Step step(*this, members, sources.size(), scale, overlap_ ? kFirstBucketBytes : threshold_,
            overlap_ ? worker_.get() : nullptr);
  tape.gradient(targets, sources, unconnected, target_grads, &step);
  return step.finish();
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

#include "train/distribution.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
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

// Runs the posted jobs in order, one at a time, on its thread or on a waiting caller's.
class CollectiveWorker {
 public:
  CollectiveWorker() : thread_([this] { run(); }) {}
  ~CollectiveWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  CollectiveWorker(const CollectiveWorker &) = delete;
  CollectiveWorker &operator=(const CollectiveWorker &) = delete;
  // job must not throw.
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  // Until every posted job has run. Jobs the thread has not started yet run here, on the calling
  // thread, which saves waking it (one at a time and in order all the same: a job starts only
  // while no other runs).
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (!busy_ && !jobs_.empty()) {
        run_front(lock);
        continue;
      }
      if (jobs_.empty() && !busy_) return;
      cv_.wait(lock);
    }
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
    lock.unlock();
    job();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool quit_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

Communicator::Communicator() = default;
Communicator::~Communicator() = default;

void Communicator::FreeBytes::operator()(unsigned char *p) const { std::free(p); }

Communicator::Buffer Communicator::take_buffer(size_t bytes) {
  Buffer b;
  if (bytes == 0) return b;
  {
    std::lock_guard<std::mutex> lock(background_mu_);
    b = std::move(spare_);
  }
  if (b.size() < bytes) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    auto *p = static_cast<unsigned char *>(std::aligned_alloc(64, rounded));
    if (!p) fail(Code::kResourceExhausted, "distributed gradients: cannot allocate ", rounded, " bytes");
    b = Buffer(p, rounded);
  }
  return b;
}

void Communicator::give_buffer(Buffer b) {
  std::lock_guard<std::mutex> lock(background_mu_);
  if (b.size() > spare_.size()) spare_ = std::move(b);
}

CollectiveWorker &Communicator::background() {
  std::lock_guard<std::mutex> lock(background_mu_);
  if (!background_) background_ = std::make_unique<CollectiveWorker>();
  return *background_;
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

void scaled_copy(DType dtype, void *dst, const Tensor &src, double scale) {
  const size_t n = static_cast<size_t>(src.num_elements());
  if (dtype == DType::kFloat32)
    scaled_copy(static_cast<float *>(dst), src.data<float>(), n, scale);
  else
    scaled_copy(static_cast<double *>(dst), src.data<double>(), n, scale);
}

bool reducible(DType d) { return d == DType::kFloat32 || d == DType::kFloat64; }

}  // namespace

// One reduction: the gradients it sums laid out in buckets, the outputs, and the buckets handed to
// the communicator in layout order as they fill: to the background worker when there is one,
// otherwise all in finish().
class GradientAllreduce::Step final : public autodiff::GradientReadyHook {
 public:
  struct Member {
    size_t index;  // in the caller's list
    DType dtype;
    Shape shape;
  };
  // members in layout order; first_cap bounds the first bucket (besides the threshold). With
  // check_defined, finish() also sums which ranks have each gradient defined (see there).
  Step(GradientAllreduce &owner, const std::vector<Member> &members, size_t n, double scale, size_t first_cap,
       CollectiveWorker *worker, bool check_defined)
      : owner_(owner),
        scale_(scale),
        worker_(worker),
        check_defined_(check_defined),
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
    // A bucket of one gradient is summed in its output; the others in the fusion buffer, each at a
    // 64-byte boundary (float64 data stays aligned whatever precedes it).
    size_t fused = 0;
    for (Bucket &b : buckets_)
      if (b.members.size() > 1) {
        b.fused_at = fused;
        fused += (b.bytes + 63) / 64 * 64;
      }
    if (check_defined_) {
      mask_at_ = fused;
      fused += n * sizeof(float);
    }
    buffer_ = owner.comm_->take_buffer(fused);
  }
  ~Step() override {
    if (worker_ && posted_) worker_->wait();  // the jobs use this step's buffers
    owner_.comm_->give_buffer(std::move(buffer_));
  }
  Step(const Step &) = delete;
  Step &operator=(const Step &) = delete;

  void ready(size_t i, const Tensor &grad) override {
    if (i >= slot_.size() || slot_[i] == kNone) return;
    Bucket &b = buckets_[slot_[i]];
    void *dst = data_of(b, i);
    if (out_[i].byte_size() == 0) {
      defined_[i] = grad.defined();  // nothing to copy (and dst may be null)
    } else if (grad.defined()) {
      if (grad.dtype() != b.dtype || grad.shape() != out_[i].shape())
        fail(Code::kInternal, "distributed gradients: gradient ", i, " is ", grad.description(),
             "; expected ", out_[i].description());
      scaled_copy(b.dtype, dst, grad, scale_);
      defined_[i] = 1;
    } else {
      std::memset(dst, 0, out_[i].byte_size());  // adds nothing; finish() checks the ranks agree
    }
    --b.waiting;
    while (launched_ < buckets_.size() && buckets_[launched_].waiting == 0) launch(launched_++);
  }

  // The sums (undefined where no rank has the gradient). With check_defined, a gradient defined on
  // some ranks but not all fails on every rank: those ranks would otherwise update the variable
  // and the others skip it, and their weights would part.
  std::vector<Tensor> finish() {
    if (launched_ != buckets_.size())
      fail(Code::kInternal, "distributed gradients: ", buckets_.size() - launched_,
           " gradient bucket(s) never became complete");
    float *mask = check_defined_ ? reinterpret_cast<float *>(buffer_.data() + mask_at_) : nullptr;
    if (mask) {
      for (size_t i = 0; i < out_.size(); ++i) mask[i] = defined_[i] ? 1.0f : 0.0f;
      post([this, mask, n = out_.size()] { owner_.comm_->allreduce_sum(mask, n, DType::kFloat32); });
    }
    if (worker_) worker_->wait();
    for (auto &job : deferred_) job();
    if (error_) std::rethrow_exception(error_);
    const int ranks = owner_.comm_->size();
    for (size_t i = 0; i < out_.size(); ++i) {
      if (slot_[i] == kNone) continue;
      if (mask && mask[i] != 0.0f && mask[i] != static_cast<float>(ranks))
        fail(Code::kFailedPrecondition, "distributed gradients: the gradient of source ", i,
             " is defined on ", static_cast<int>(mask[i]), " of ", ranks,
             " processes; every process must compute a gradient for the same variables");
      if (mask ? mask[i] == 0.0f : !defined_[i]) out_[i] = Tensor();
    }
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
    return buffer_.data() + b.fused_at + offset_[i];
  }
  // Runs job in order after the jobs before it; a failed job keeps the later ones from running.
  void post(std::function<void()> job) {
    auto guarded = [this, job = std::move(job)] {
      if (error_) return;  // the step fails on this rank anyway
      try {
        job();
      } catch (...) {
        error_ = std::current_exception();
      }
    };
    posted_ = true;
    if (worker_)
      worker_->post(std::move(guarded));
    else
      deferred_.push_back(std::move(guarded));
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
    post([comm, data, count = b.bytes / elem, dtype = b.dtype, outs = std::move(outs)] {
      if (count > 0) comm->allreduce_sum(data, count, dtype);
      const unsigned char *at = static_cast<const unsigned char *>(data);
      for (const auto &o : outs) {
        if (o.second > 0) std::memcpy(o.first, at, o.second);
        at += o.second;
      }
    });
  }
  GradientAllreduce &owner_;
  double scale_;
  CollectiveWorker *worker_;
  bool check_defined_;
  bool posted_ = false;
  std::exception_ptr error_;  // the first failed job's (written by the jobs, read after they ran)
  std::vector<std::function<void()>> deferred_;  // without a worker: the jobs finish() runs
  Communicator::Buffer buffer_;
  size_t mask_at_ = 0;
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
  // The float32 gradients, then the float64 ones, each in reverse order.
  std::vector<Step::Member> members;
  for (DType dtype : {DType::kFloat32, DType::kFloat64})
    for (size_t i = grads.size(); i-- > 0;)
      if (grads[i].defined() && grads[i].dtype() == dtype)
        members.push_back(Step::Member{i, dtype, grads[i].shape()});
  Step step(*this, members, grads.size(), scale, threshold_, nullptr, false);
  for (const Step::Member &m : members) step.ready(m.index, grads[m.index]);
  return step.finish();
}

std::vector<Tensor> GradientAllreduce::gradient(autodiff::Tape &tape, const std::vector<Tensor> &targets,
                                                const autodiff::GradientSources &sources,
                                                autodiff::Unconnected unconnected,
                                                const std::vector<Tensor> &target_grads) {
  std::lock_guard<std::mutex> lock(mu_);
  // Integer and bool sources get no gradient to sum; other floating dtypes cannot be summed here.
  for (size_t i = 0; i < sources.size(); ++i)
    if (sources[i].id && is_floating(sources[i].dtype) && !reducible(sources[i].dtype))
      fail(Code::kInvalidArgument, "distributed gradients: source ", i, " is ", dtype_name(sources[i].dtype),
           sources[i].shape.to_string(), "; gradients are averaged over the processes in float32 or float64");
  const double scale = scale_locked();
  if (comm_->size() == 1 && scale == 1.0) return tape.gradient(targets, sources, unconnected, target_grads);
  std::vector<Step::Member> members;
  for (size_t i = sources.size(); i-- > 0;)
    if (reducible(sources[i].dtype)) members.push_back(Step::Member{i, sources[i].dtype, sources[i].shape});
  Step step(*this, members, sources.size(), scale, overlap_ ? kFirstBucketBytes : threshold_,
            overlap_ ? &comm_->background() : nullptr, true);
  std::vector<Tensor> local = tape.gradient(targets, sources, unconnected, target_grads, &step);
  std::vector<Tensor> out = step.finish();
  for (size_t i = 0; i < sources.size(); ++i)
    if (!reducible(sources[i].dtype)) out[i] = local[i];  // not summed: an integer source's
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

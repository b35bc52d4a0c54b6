#include "autodiff/variable.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "autodiff/autocast.h"
#include "core/error.h"
#include "core/utf8.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::autodiff {

// One version of a variable's value. Tensors read from it hold a Lease; the variable writes
// into the buffer in place only when none is alive. use_count() of a shared_ptr cannot decide
// that: it is a relaxed load, which orders nothing, so a reader's last access to the data
// could race with the write. Here every lease ends with a release decrement and the writer
// checks with an acquire load, so each reader's accesses happen before the write.
struct VariableBuffer {
  explicit VariableBuffer(size_t bytes) : storage(Storage::allocate(bytes)) { storage->mark_held(); }
  std::shared_ptr<Storage> storage;
  // Live leases. Incremented only under the variable's mutex, which the writer also holds,
  // so no lease can start between the writer's check and its write.
  std::atomic<int64_t> readers{0};
};

namespace {

struct Lease {
  explicit Lease(std::shared_ptr<VariableBuffer> b) : buffer(std::move(b)) {
    buffer->readers.fetch_add(1, std::memory_order_relaxed);
  }
  ~Lease() { buffer->readers.fetch_sub(1, std::memory_order_release); }
  Lease(const Lease &) = delete;
  Lease &operator=(const Lease &) = delete;
  std::shared_ptr<VariableBuffer> buffer;  // keeps the buffer alive after the variable moves on
};

Tensor leased_tensor(DType dtype, const Shape &shape, std::shared_ptr<Lease> lease) {
  Storage *storage = lease->buffer->storage.get();
  // The tensor's storage shares the lease's control block: the lease ends when the last tensor
  // (or reshaped view, or kernel) holding this storage lets go.
  return Tensor::from_storage(dtype, shape, std::shared_ptr<Storage>(std::move(lease), storage));
}

template <typename T>
void add_loop(T *dst, const T *src, const T *delta, int64_t n, bool add) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>) {
      dst[i] = static_cast<T>(add ? src[i] + delta[i] : src[i] - delta[i]);
    } else {
      const float a = static_cast<float>(src[i]), b = static_cast<float>(delta[i]);
      dst[i] = T(add ? a + b : a - b);
    }
  }
}

}  // namespace

namespace {

// Every live variable by id, for Variable::find: registered when built, removed by the destructor
// under the same mutex, so a lookup never reaches a freed variable (one being destroyed has no
// owner left, and weak_from_this() finds it expired).
struct Registry {
  std::mutex mu;
  std::unordered_map<uint64_t, Variable *> live;
};

Registry &registry() {
  static Registry *r = new Registry();  // never destroyed: variables may die during static destruction
  return *r;
}

}  // namespace

Variable::Variable(std::string name, const Tensor &initial, bool trainable)
    : id_(next_object_id()), name_(std::move(name)), trainable_(trainable) {
  require_defined(initial, "Variable", "initial_value");
  require_utf8(name_, "Variable", "the name");  // names reach checkpoints and SavedModels as text
  dtype_ = initial.dtype();
  shape_ = initial.shape();
  buffer_ = std::make_shared<VariableBuffer>(initial.byte_size());
  if (initial.byte_size()) std::memcpy(buffer_->storage->data(), initial.raw_data(), initial.byte_size());
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live.emplace(id_, this);
}

Variable::~Variable() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live.erase(id_);
}

std::shared_ptr<Variable> Variable::find(uint64_t id) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const auto it = r.live.find(id);
  return it == r.live.end() ? nullptr : it->second->weak_from_this().lock();
}

namespace {
thread_local std::optional<DType> t_autocast;
}  // namespace

AutocastScope::AutocastScope(std::optional<DType> dtype) : saved_(t_autocast) { t_autocast = dtype; }
AutocastScope::~AutocastScope() { t_autocast = saved_; }
std::optional<DType> AutocastScope::current() { return t_autocast; }

// Inside an AutocastScope (mixed precision) a floating variable reads cast to the scope's dtype,
// through a recorded cast whose gradient casts back: gradients arrive in the variable's dtype.
Tensor Variable::value() const {
  Tensor v = peek();
  ops::notify_variable_read(id_, trainable(), v);
  if (t_autocast && *t_autocast != dtype_ && is_floating(dtype_)) return ops::cast(v, *t_autocast);
  return v;
}

Tensor Variable::peek() const {
  std::shared_ptr<Lease> lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = std::make_shared<Lease>(buffer_);
  }
  return leased_tensor(dtype_, shape_, std::move(lease));
}

Tensor Variable::read_for_op() const {
  // A tape could record the read, or a later op on it, by the tensor's id: reads it can see keep
  // their own ids, as value() gives.
  if (ops::detail::has_recorders() || (t_autocast && *t_autocast != dtype_ && is_floating(dtype_)))
    return value();
  std::lock_guard<std::mutex> lock(mu_);
  if (!op_read_.defined()) op_read_ = leased_tensor(dtype_, shape_, std::make_shared<Lease>(buffer_));
  return op_read_;
}

void Variable::check_compatible(const Tensor &v, const char *op) const {
  require_defined(v, op, "value");
  if (v.dtype() != dtype_ || v.shape() != shape_)
    fail(Code::kInvalidArgument, op, " on variable '", name_, "': got ", v.description(), "; expected ",
         dtype_name(dtype_), shape_.to_string());
}

VariableBuffer &Variable::writable_buffer_locked() {
  op_read_ = Tensor();  // its lease ends here unless an op still holds the tensor
  if (buffer_->readers.load(std::memory_order_acquire) != 0)
    buffer_ = std::make_shared<VariableBuffer>(buffer_->storage->bytes());
  return *buffer_;
}

void Variable::assign(const Tensor &v) {
  check_compatible(v, "Variable.assign");
  std::lock_guard<std::mutex> lock(mu_);
  // v may be a read of this variable: it then holds a lease, so the write goes to a new buffer.
  VariableBuffer &dst = writable_buffer_locked();
  dst.storage->bump_version();  // an in-place write: caches keyed by (storage, version) go stale
  if (v.byte_size()) std::memcpy(dst.storage->data(), v.raw_data(), v.byte_size());
}

void Variable::update(const Tensor &delta, bool add, const char *op) {
  check_compatible(delta, op);
  if (dtype_ == DType::kBool)
    fail(Code::kInvalidArgument, op, " on variable '", name_, "': bool variables cannot be added to");
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<VariableBuffer> src = buffer_;  // the old value, when dst is a new buffer
  VariableBuffer &dst = writable_buffer_locked();
  dst.storage->bump_version();
  const int64_t n = shape_.num_elements();
  dispatch_dtype(dtype_, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>)
      add_loop(static_cast<T *>(dst.storage->data()), static_cast<const T *>(src->storage->data()),
               delta.data<T>(), n, add);
  });
}

void Variable::update_in_place(Variable *const *vars, size_t n, const UpdateFn &f) {
  if (n == 1) {  // the common case (an in-place collective on one variable), without allocating
    Variable &v = *vars[0];
    std::lock_guard<std::mutex> lock(v.mu_);
    const std::shared_ptr<VariableBuffer> old = v.buffer_;  // alive until f returns
    VariableBuffer &d = v.writable_buffer_locked();
    d.storage->bump_version();
    void *dst = d.storage->data();
    const void *src = old->storage->data();
    f(&dst, &src);
    return;
  }
  std::vector<Variable *> order(vars, vars + n);
  std::sort(order.begin(), order.end(), [](const Variable *a, const Variable *b) { return a->id_ < b->id_; });
  for (size_t i = 1; i < n; ++i)
    if (order[i] == order[i - 1])
      fail(Code::kInvalidArgument, "Variable.update_in_place: variable '", order[i]->name_, "' is listed twice");
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(n);
  for (Variable *v : order) locks.emplace_back(v->mu_);
  // The old buffers stay alive until f returns, for the variables that move to a new one.
  std::vector<std::shared_ptr<VariableBuffer>> old(n);
  std::vector<void *> dst(n);
  std::vector<const void *> src(n);
  for (size_t i = 0; i < n; ++i) {
    old[i] = vars[i]->buffer_;
    VariableBuffer &d = vars[i]->writable_buffer_locked();
    d.storage->bump_version();
    dst[i] = d.storage->data();
    src[i] = old[i]->storage->data();
  }
  f(dst.data(), src.data());
}

void Variable::assign_add(const Tensor &delta) { update(delta, true, "Variable.assign_add"); }
void Variable::assign_sub(const Tensor &delta) { update(delta, false, "Variable.assign_sub"); }

}  // namespace kiln::autodiff

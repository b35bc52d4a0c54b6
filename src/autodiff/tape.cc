#include "autodiff/tape.h"

#include <algorithm>
#include <functional>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::autodiff {

Tape::Tape(bool persistent, bool watch_accessed_variables)
    : persistent_(persistent),
      watch_accessed_variables_(watch_accessed_variables),
      owner_(std::this_thread::get_id()),
      thread_list_(ops::thread_recorders()) {
  start_recording();
}

Tape::~Tape() {
  if (recording_) ops::remove_recorder(thread_list_, this);
}

void Tape::check_thread(const char *what) const {
  if (std::this_thread::get_id() != owner_)
    fail(Code::kFailedPrecondition, "GradientTape.", what,
         ": a tape belongs to the thread that created it; called from another thread");
}

void Tape::start_recording() {
  check_thread("start_recording");
  if (recording_) return;
  recording_ = true;
  ops::add_recorder(thread_list_, this);
}

void Tape::stop_recording() {
  if (!recording_) return;
  check_thread("stop_recording");
  recording_ = false;
  ops::remove_recorder(thread_list_, this);
}

GradientSource::GradientSource(const Tensor &t) {
  if (!t.defined()) return;
  id = t.id();
  shape = t.shape();
  dtype = t.dtype();
}

GradientSource::GradientSource(const Variable &v) : id(v.id()), shape(v.shape()), dtype(v.dtype()) {}

void Tape::watch(const Tensor &t) {
  require_defined(t, "GradientTape.watch", "tensor");
  check_thread("watch");
  if (!is_floating(t.dtype()))
    fail(Code::kInvalidArgument, "GradientTape.watch: cannot watch a ", t.description(),
         " tensor; expected a floating-point tensor");
  watched_.insert(t.id());
}

void Tape::watch(const Variable &v) {
  check_thread("watch");
  if (!is_floating(v.dtype()))
    fail(Code::kInvalidArgument, "GradientTape.watch: cannot watch variable '", v.name(), "' of ",
         dtype_name(v.dtype()), v.shape().to_string(), "; expected a floating-point variable");
  watch_variable_id(v.id());
}

std::vector<std::shared_ptr<Variable>> Tape::watched_variables() const {
  check_thread("watched_variables");
  std::vector<std::shared_ptr<Variable>> out;
  for (uint64_t id : variable_ids_)
    if (std::shared_ptr<Variable> v = Variable::find(id)) out.push_back(std::move(v));
  return out;
}

void Tape::watch_variable_id(uint64_t id) {
  if (watched_.insert(id)) variable_ids_.push_back(id);
}

void Tape::add(const std::shared_ptr<const ops::OpRecord> &record) {
  records_.push_back(record);
  for (size_t i = 0; i < record->outputs.size(); ++i)
    if (is_floating(record->outputs[i].dtype)) watched_.insert(record->outputs[i].id);
}

bool Tape::on_variable_read(uint64_t variable_id, bool trainable) {
  if (trainable && watch_accessed_variables_) watch_variable_id(variable_id);
  return watched_.contains(variable_id);
}

void Tape::check_gradient_args(const std::vector<Tensor> &targets, const std::vector<GradientSource> &sources,
                               const std::vector<Tensor> &target_grads) const {
  const char *op = "GradientTape.gradient";
  for (size_t i = 0; i < sources.size(); ++i)
    if (!sources[i].id) fail(Code::kInvalidArgument, op, ": source ", i, " is an undefined tensor");
  if (!target_grads.empty() && target_grads.size() != targets.size())
    fail(Code::kInvalidArgument, op, ": ", target_grads.size(), " output gradients for ", targets.size(),
         " targets; expected one per target");
  for (size_t k = 0; k < targets.size(); ++k) {
    const Tensor &y = targets[k];
    const std::string which = targets.size() == 1 ? "target" : "target " + std::to_string(k);
    if (!y.defined()) fail(Code::kInvalidArgument, op, ": ", which, " is an undefined tensor");
    if (!is_floating(y.dtype()))
      fail(Code::kInvalidArgument, op, ": ", which, " is ", y.description(),
           "; expected a floating-point tensor");
    if (target_grads.empty() || !target_grads[k].defined()) continue;
    const Tensor &dy = target_grads[k];
    if (dy.dtype() != y.dtype() || dy.shape() != y.shape())
      fail(Code::kInvalidArgument, op, ": output gradient ", dy.description(), " does not match target ",
           y.description(), "; expected the target's dtype and shape");
  }
  if (used_ && !persistent_)
    fail(Code::kFailedPrecondition,
         "GradientTape.gradient can only be called once on a non-persistent tape; create it with "
         "persistent=true to call it again");
}

std::vector<Tensor> Tape::gradient(const Tensor &target, const GradientSources &sources,
                                   Unconnected unconnected, const Tensor &target_grad) {
  require_defined(target, "GradientTape.gradient", "target");
  return gradient(std::vector<Tensor>{target}, sources, unconnected,
                  target_grad.defined() ? std::vector<Tensor>{target_grad} : std::vector<Tensor>{});
}

std::vector<Tensor> Tape::gradient(const std::vector<Tensor> &targets, const GradientSources &sources,
                                   Unconnected unconnected, const std::vector<Tensor> &target_grads,
                                   GradientReadyHook *hook) {
  check_thread("gradient");
  check_gradient_args(targets, sources, target_grads);
  used_ = true;

  // Only records on a path from a watched source matter; an unwatched source gets no gradient.
  IdSet reachable, source_ids;
  for (const GradientSource &s : sources) {
    source_ids.insert(s.id);
    if (watches(s.id)) reachable.insert(s.id);
  }
  std::vector<char> relevant(records_.size(), 0);
  for (size_t r = 0; r < records_.size(); ++r) {
    const ops::OpRecord &rec = *records_[r];
    for (size_t i = 0; i < rec.inputs.size(); ++i)
      if (rec.inputs[i] && reachable.contains(rec.inputs[i])) relevant[r] = 1;
    if (relevant[r])
      for (size_t o = 0; o < rec.outputs.size(); ++o) reachable.insert(rec.outputs[o].id);
  }

  // With a hook: the earliest relevant record reading each source is the last the walk passes
  // that adds to its gradient; sources read by none are complete before the walk.
  std::vector<std::vector<size_t>> complete_after;  // record index -> sources complete after it
  std::vector<size_t> complete_at_start;
  if (hook) {
    std::unordered_map<uint64_t, std::vector<size_t>> by_id;
    for (size_t i = 0; i < sources.size(); ++i) by_id[sources[i].id].push_back(i);
    complete_after.resize(records_.size());
    for (size_t r = 0; r < records_.size() && !by_id.empty(); ++r) {
      if (!relevant[r]) continue;
      const ops::OpRecord &rec = *records_[r];
      for (size_t k = 0; k < rec.inputs.size(); ++k) {
        const uint64_t id = rec.inputs[k];
        auto it = id ? by_id.find(id) : by_id.end();
        if (it == by_id.end()) continue;
        complete_after[r].insert(complete_after[r].end(), it->second.begin(), it->second.end());
        by_id.erase(it);
      }
    }
    for (const auto &entry : by_id)
      complete_at_start.insert(complete_at_start.end(), entry.second.begin(), entry.second.end());
    std::sort(complete_at_start.begin(), complete_at_start.end());
  }

  // The backward pass runs ops; this tape must not record them (outer tapes do).
  busy_ = true;
  struct Reset {
    bool &b;
    ~Reset() { b = false; }
  } reset{busy_};

  std::unordered_map<uint64_t, Tensor> grads;
  auto accumulate = [&grads](uint64_t id, const Tensor &g) {
    auto it = grads.find(id);
    if (it == grads.end())
      grads.emplace(id, g);
    else
      it->second = ops::add(it->second, g);
  };
  auto final_gradient = [&](size_t i) {
    auto it = grads.find(sources[i].id);
    if (it != grads.end()) return it->second;
    return unconnected == Unconnected::kZero ? ops::zeros(sources[i].shape, sources[i].dtype) : Tensor();
  };
  for (size_t k = 0; k < targets.size(); ++k) {
    const bool given = !target_grads.empty() && target_grads[k].defined();
    accumulate(targets[k].id(), given ? target_grads[k] : ops::ones_like(targets[k]));
  }
  auto emit_after = [&](size_t r) {
    for (size_t i : complete_after[r]) hook->ready(i, final_gradient(i));
  };
  if (hook)
    for (size_t i : complete_at_start) hook->ready(i, final_gradient(i));
  for (size_t r = records_.size(); r-- > 0;) {
    // A non-persistent tape lets go of each record (and the values its rule captured, such as
    // variable reads) as the walk passes it, which lowers the walk's peak memory.
    std::shared_ptr<const ops::OpRecord> held = persistent_ ? records_[r] : std::move(records_[r]);
    if (!relevant[r]) continue;
    const ops::OpRecord &rec = *held;
    bool any = false;
    ops::Grads out_grads(rec.outputs.size());
    for (size_t o = 0; o < rec.outputs.size(); ++o) {
      auto it = grads.find(rec.outputs[o].id);
      if (it == grads.end()) continue;
      any = true;
      // Every consumer of this output was recorded later, so has been walked already: the
      // gradient is complete and, unless asked for, no longer needed.
      if (source_ids.contains(it->first)) {
        out_grads[o] = it->second;
      } else {
        out_grads[o] = std::move(it->second);
        grads.erase(it);
      }
    }
    if (!any) {
      if (hook) emit_after(r);
      continue;
    }
    for (size_t o = 0; o < out_grads.size(); ++o)
      if (!out_grads[o].defined()) out_grads[o] = ops::zeros(rec.outputs[o].shape, rec.outputs[o].dtype);
    ops::Grads in_grads = rec.backward(out_grads);
    out_grads.clear();
    if (in_grads.size() != rec.inputs.size())
      fail(Code::kInternal, "gradient rule of ", rec.op, " returned ", in_grads.size(), " gradients for ",
           rec.inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      uint64_t id = rec.inputs[i];
      if (!id || !in_grads[i].defined() || !reachable.contains(id)) continue;
      accumulate(id, in_grads[i]);
    }
    if (hook) emit_after(r);
  }
  if (!persistent_) {
    records_.clear();
    records_.shrink_to_fit();
  }

  std::vector<Tensor> result(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) result[i] = final_gradient(i);
  return result;
}

void Tape::reset() {
  check_thread("reset");
  if (busy_)
    fail(Code::kFailedPrecondition, "GradientTape.reset: called during the tape's own backward walk");
  records_.clear();
  records_.shrink_to_fit();
  watched_ = IdSet();
  variable_ids_.clear();
  used_ = false;
}

std::vector<std::vector<Tensor>> Tape::walks(const Tensor &target, const GradientSources &sources,
                                             int64_t count, const std::function<Tensor(int64_t)> &seed,
                                             const char *what) {
  check_thread(what);
  require_defined(target, what, "target");
  check_gradient_args({target}, sources, {});
  std::vector<std::vector<Tensor>> out;
  if (count == 0) {  // nothing to walk; the call still uses a non-persistent tape up
    used_ = true;
    if (!persistent_) records_.clear();
    return out;
  }
  // Every walk but the last keeps the records; the last treats them as the tape's kind says.
  struct Restore {
    bool &flag;
    bool value;
    ~Restore() { flag = value; }
  } restore{persistent_, persistent_};
  out.reserve(static_cast<size_t>(count));
  for (int64_t p = 0; p < count; ++p) {
    const Tensor s = seed(p);
    persistent_ = restore.value || p + 1 < count;
    used_ = false;  // the walks are one call: the checks above covered it
    out.push_back(gradient(std::vector<Tensor>{target}, sources, Unconnected::kNone, std::vector<Tensor>{s}));
  }
  return out;
}

namespace {

// Float32 zeros of `shape` with ones where pick(flat index) holds, cast to dtype: a walk's seed.
Tensor seed_of(const Shape &shape, DType dtype, const std::function<bool(int64_t)> &pick) {
  Tensor t = Tensor::empty(DType::kFloat32, shape);
  float *d = t.mutable_data<float>();
  for (int64_t i = 0; i < shape.num_elements(); ++i) d[i] = pick(i) ? 1.0f : 0.0f;
  return dtype == DType::kFloat32 ? t : ops::cast(t, dtype);
}

Shape joined(const Shape &a, const Shape &b, int skip_b, const char *what) {
  std::vector<int64_t> dims = a.to_vector();
  for (int i = skip_b; i < b.rank(); ++i) dims.push_back(b[i]);
  if (dims.size() > static_cast<size_t>(Shape::kMaxRank))
    fail(Code::kInvalidArgument, what, ": the result would have rank ", dims.size(), " (target ",
         a.to_string(), ", source ", b.to_string(), "); expected at most ", Shape::kMaxRank);
  return Shape(dims, what);
}

// The walks' gradients for one source as rows of one tensor of `shape`, stacked on `axis`; undefined
// when no walk reached the source (or zeros per unconnected).
Tensor assemble(const std::vector<std::vector<Tensor>> &walked, size_t source, const Shape &row_shape,
                DType dtype, int64_t axis, const Shape &shape, Unconnected unconnected) {
  bool any = false;
  for (const auto &w : walked) any = any || w[source].defined();
  if (!any) return unconnected == Unconnected::kZero ? ops::zeros(shape, dtype) : Tensor();
  std::vector<Tensor> rows;
  rows.reserve(walked.size());
  for (const auto &w : walked) rows.push_back(w[source].defined() ? w[source] : ops::zeros(row_shape, dtype));
  return ops::reshape(ops::stack(rows, axis), shape.to_vector());
}

}  // namespace

std::vector<Tensor> Tape::jacobian(const Tensor &target, const GradientSources &sources,
                                   Unconnected unconnected) {
  const char *what = "GradientTape.jacobian";
  require_defined(target, what, "target");
  std::vector<Shape> shapes;
  for (const GradientSource &s : sources) shapes.push_back(joined(target.shape(), s.shape, 0, what));
  const int64_t n = target.num_elements();
  const auto walked = walks(
      target, sources, n,
      [&](int64_t p) { return seed_of(target.shape(), target.dtype(), [p](int64_t i) { return i == p; }); },
      what);
  std::vector<Tensor> out(sources.size());
  for (size_t s = 0; s < sources.size(); ++s) {
    if (n == 0) {
      out[s] = ops::zeros(shapes[s], sources[s].dtype);
      continue;
    }
    out[s] = assemble(walked, s, sources[s].shape, sources[s].dtype, 0, shapes[s], unconnected);
  }
  return out;
}

Tensor Tape::batch_jacobian(const Tensor &target, const Tensor &source, Unconnected unconnected) {
  const char *what = "GradientTape.batch_jacobian";
  require_defined(target, what, "target");
  require_defined(source, what, "source");
  if (target.shape().rank() < 1 || source.shape().rank() < 1 || target.shape()[0] != source.shape()[0])
    fail(Code::kInvalidArgument, what, ": target ", target.description(), " and source ",
         source.description(),
         " need the same first (batch) dimension; expected target [b, ...] and source [b, ...]");
  const Shape shape = joined(target.shape(), source.shape(), 1, what);
  const int64_t b = target.shape()[0], per_row = b == 0 ? 0 : target.num_elements() / b;
  const auto walked = walks(
      target, GradientSources{GradientSource(source)}, b == 0 ? 0 : per_row,
      [&](int64_t p) {
        return seed_of(target.shape(), target.dtype(), [p, per_row](int64_t i) { return i % per_row == p; });
      },
      what);
  if (walked.empty()) return ops::zeros(shape, source.dtype());
  return assemble(walked, 0, source.shape(), source.dtype(), 1, shape, unconnected);
}

}  // namespace kiln::autodiff

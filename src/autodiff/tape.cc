#include "autodiff/tape.h"

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

void Tape::watch(const Tensor &t) {
  require_defined(t, "GradientTape.watch", "tensor");
  check_thread("watch");
  if (!is_floating(t.dtype()))
    fail(Code::kInvalidArgument, "GradientTape.watch: cannot watch a ", t.description(),
         " tensor; expected a floating-point tensor");
  watched_.insert(t.id());
}

void Tape::add(const std::shared_ptr<const ops::OpRecord> &record) {
  records_.push_back(record);
  for (size_t i = 0; i < record->outputs.size(); ++i)
    if (is_floating(record->outputs[i].dtype)) watched_.insert(record->outputs[i].id);
}

void Tape::on_variable_read(const Tensor &value) {
  if (!watch_accessed_variables_) return;
  if (watched_.insert(value.id())) variable_values_.push_back(value);
}

std::vector<Tensor> Tape::gradient(const Tensor &target, const std::vector<Tensor> &sources,
                                   Unconnected unconnected, const Tensor &target_grad) {
  require_defined(target, "GradientTape.gradient", "target");
  check_thread("gradient");
  for (size_t i = 0; i < sources.size(); ++i)
    if (!sources[i].defined())
      fail(Code::kInvalidArgument, "GradientTape.gradient: source ", i, " is an undefined tensor");
  if (used_ && !persistent_)
    fail(Code::kFailedPrecondition,
         "GradientTape.gradient can only be called once on a non-persistent tape; create it with persistent=true to call it again");
  if (!is_floating(target.dtype()))
    fail(Code::kInvalidArgument, "GradientTape.gradient: target is ", target.description(),
         "; expected a floating-point tensor");
  if (target_grad.defined() && target_grad.shape() != target.shape())
    fail(Code::kInvalidArgument, "GradientTape.gradient: output gradient ", target_grad.description(),
         " does not match target ", target.description());
  used_ = true;

  // Only records on a path from a watched source matter; an unwatched source gets no gradient.
  IdSet reachable;
  for (const Tensor &s : sources)
    if (watches(s.id())) reachable.insert(s.id());
  std::vector<char> relevant(records_.size(), 0);
  for (size_t r = 0; r < records_.size(); ++r) {
    const ops::OpRecord &rec = *records_[r];
    for (size_t i = 0; i < rec.inputs.size(); ++i)
      if (rec.inputs[i] && reachable.contains(rec.inputs[i])) relevant[r] = 1;
    if (relevant[r])
      for (size_t o = 0; o < rec.outputs.size(); ++o) reachable.insert(rec.outputs[o].id);
  }

  // The backward pass runs ops; this tape must not record them (outer tapes do).
  busy_ = true;
  struct Reset {
    bool &b;
    ~Reset() { b = false; }
  } reset{busy_};

  std::unordered_map<uint64_t, Tensor> grads;
  grads[target.id()] = target_grad.defined() ? target_grad : ops::ones_like(target);
  for (size_t r = records_.size(); r-- > 0;) {
    if (!relevant[r]) continue;
    const ops::OpRecord &rec = *records_[r];
    bool any = false;
    ops::Grads out_grads(rec.outputs.size());
    for (size_t o = 0; o < rec.outputs.size(); ++o) {
      auto it = grads.find(rec.outputs[o].id);
      if (it != grads.end()) {
        out_grads[o] = it->second;
        any = true;
      }
    }
    if (!any) continue;
    for (size_t o = 0; o < out_grads.size(); ++o)
      if (!out_grads[o].defined()) out_grads[o] = ops::zeros(rec.outputs[o].shape, rec.outputs[o].dtype);
    ops::Grads in_grads = rec.backward(out_grads);
    if (in_grads.size() != rec.inputs.size())
      fail(Code::kInternal, "gradient rule of ", rec.op, " returned ", in_grads.size(), " gradients for ",
           rec.inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      uint64_t id = rec.inputs[i];
      if (!id || !in_grads[i].defined() || !reachable.contains(id)) continue;
      auto it = grads.find(id);
      if (it == grads.end())
        grads.emplace(id, in_grads[i]);
      else
        it->second = ops::add(it->second, in_grads[i]);
    }
  }

  std::vector<Tensor> result(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    auto it = grads.find(sources[i].id());
    if (it != grads.end())
      result[i] = it->second;
    else if (unconnected == Unconnected::kZero)
      result[i] = ops::zeros_like(sources[i]);
  }
  if (!persistent_) {
    records_.clear();
    records_.shrink_to_fit();
  }
  return result;
}

}  // namespace kiln::autodiff

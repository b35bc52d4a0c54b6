// GradientTape: records the ops that touch watched values, then runs their
// gradient rules backwards. Gradient rules are ops, so an outer tape that is
// recording while an inner one computes its gradient records that work too:
// nested tapes give higher-order gradients.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <thread>
#include <vector>

#include "autodiff/id_set.h"
#include "autodiff/variable.h"
#include "core/tensor.h"
#include "ops/recorder.h"

namespace kiln::autodiff {

enum class Unconnected { kNone = 0, kZero = 1 };

// What a gradient is taken with respect to: a tensor, or a variable (through every read of it
// that the tape recorded, as TF differentiates a variable through its ReadVariableOps).
struct GradientSource {
  GradientSource(const Tensor &t);    // NOLINT(google-explicit-constructor): a tensor is a source
  GradientSource(const Variable &v);  // NOLINT(google-explicit-constructor): so is a variable
  uint64_t id = 0;                    // 0 for an undefined tensor (rejected by gradient())
  Shape shape;
  DType dtype = DType::kFloat32;
};

// A list of sources: built from a braced list mixing tensors and variables, or from tensors.
class GradientSources : public std::vector<GradientSource> {
 public:
  GradientSources() = default;
  GradientSources(std::initializer_list<GradientSource> l) : std::vector<GradientSource>(l) {}
  GradientSources(std::vector<GradientSource> v) : std::vector<GradientSource>(std::move(v)) {}  // NOLINT
  GradientSources(const std::vector<Tensor> &tensors)
      : std::vector<GradientSource>(tensors.begin(), tensors.end()) {}  // NOLINT
};

// Told of each source's gradient as soon as the backward walk has finished it (every recorded op
// that reads the source has been walked), while the walk goes on: a distributed optimizer starts
// summing gradients over the processes this way, overlapping the backward pass.
class GradientReadyHook {
 public:
  virtual ~GradientReadyHook() = default;
  // Source i's gradient as gradient() will return it (undefined when it gets none). Called once
  // for every source, on the walking thread, before gradient() returns.
  virtual void ready(size_t i, const Tensor &grad) = 0;
};

class Tape : public ops::Recorder {
 public:
  // A new tape, recording on the calling thread (which owns it) until stop_recording().
  Tape(bool persistent, bool watch_accessed_variables);
  ~Tape() override;
  Tape(const Tape &) = delete;
  Tape &operator=(const Tape &) = delete;

  void watch(const Tensor &t);
  // Watches the variable itself: every later read of it while recording is recorded.
  void watch(const Variable &v);
  bool persistent() const { return persistent_; }
  bool watch_accessed_variables() const { return watch_accessed_variables_; }
  bool recording() const { return recording_; }
  // Fails (FailedPrecondition) unless called on the thread that created the tape; what names the
  // call in the message.
  void check_thread(const char *what) const;
  void stop_recording();
  void start_recording();
  // Ids of the variables this tape watches, in the order it started watching them
  // (tf.GradientTape.watched_variables()).
  const std::vector<uint64_t> &watched_variable_ids() const { return variable_ids_; }
  // tf.GradientTape.watched_variables(): the variables this tape watches, in the order it started
  // watching them (explicitly, or read while recording under watch_accessed_variables), those
  // still alive and owned by a shared_ptr (Variable::find); a tape does not keep them alive. The
  // tape's thread only, as watch().
  std::vector<std::shared_ptr<Variable>> watched_variables() const;

  // d(sum_k sum(targets[k] * target_grads[k]))/d(source) for each source, summed over every path
  // (target_grads empty, or an undefined entry, means ones). Everything is checked before the
  // tape is used, so a rejected call leaves a non-persistent tape usable; a non-persistent tape
  // allows one call that gets that far, and frees its records as the backward walk passes them.
  // hook (may be null) hears of each source's gradient as soon as it is complete.
  std::vector<Tensor> gradient(const std::vector<Tensor> &targets, const GradientSources &sources,
                               Unconnected unconnected, const std::vector<Tensor> &target_grads = {},
                               GradientReadyHook *hook = nullptr);
  std::vector<Tensor> gradient(const Tensor &target, const GradientSources &sources, Unconnected unconnected,
                               const Tensor &target_grad = Tensor());
  // tf.GradientTape.jacobian: for each source, J[i..., j...] = d target[i...] / d source[j...], of
  // shape target.shape + source.shape (one backward walk per element of target). A source that no
  // element of target depends on gets an undefined tensor or zeros per `unconnected`. Counts as one
  // gradient call: a non-persistent tape allows it once.
  std::vector<Tensor> jacobian(const Tensor &target, const GradientSources &sources, Unconnected unconnected);
  // tf.GradientTape.batch_jacobian: target [b, y...] and source [b, x...], where target[i] depends
  // on source[i] only: J[i, y..., x...] = d target[i, y...] / d source[i, x...], of shape
  // target.shape + source.shape[1:] (one backward walk per element of target[0]).
  Tensor batch_jacobian(const Tensor &target, const Tensor &source, Unconnected unconnected);
  // tf.GradientTape.reset: forgets what it recorded and watched, as a new tape would; it records
  // again if it was recording.
  void reset();

  // ops::Recorder
  bool active() const override { return recording_ && !busy_; }
  bool watches(uint64_t id) const override { return watched_.contains(id); }
  void add(const std::shared_ptr<const ops::OpRecord> &record) override;
  bool on_variable_read(uint64_t variable_id, bool trainable) override;

 private:
  void check_gradient_args(const std::vector<Tensor> &targets, const std::vector<GradientSource> &sources,
                           const std::vector<Tensor> &target_grads) const;
  void watch_variable_id(uint64_t id);
  // One backward walk per seed (seed(p) is target's upstream gradient in walk p); what each walk
  // gives, in order. The records stay until the last walk, which frees them on a non-persistent tape.
  std::vector<std::vector<Tensor>> walks(const Tensor &target, const GradientSources &sources, int64_t count,
                                         const std::function<Tensor(int64_t)> &seed, const char *what);
  bool persistent_;
  bool watch_accessed_variables_;
  bool recording_ = false;
  bool busy_ = false;
  bool used_ = false;
  std::thread::id owner_;
  std::shared_ptr<ops::ThreadRecorders> thread_list_;
  IdSet watched_;
  std::vector<uint64_t> variable_ids_;
  std::vector<std::shared_ptr<const ops::OpRecord>> records_;
};

}  // namespace kiln::autodiff

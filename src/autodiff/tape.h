// GradientTape: records the ops that touch watched values, then runs their
// gradient rules backwards. Gradient rules are ops, so an outer tape that is
// recording while an inner one computes its gradient records that work too:
// nested tapes give higher-order gradients.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "autodiff/id_set.h"
#include "core/tensor.h"
#include "ops/recorder.h"

namespace kiln::autodiff {

enum class Unconnected { kNone = 0, kZero = 1 };

class Tape : public ops::Recorder {
 public:
  // A new tape, recording on the calling thread (which owns it) until stop_recording().
  Tape(bool persistent, bool watch_accessed_variables);
  ~Tape() override;
  Tape(const Tape &) = delete;
  Tape &operator=(const Tape &) = delete;

  void watch(const Tensor &t);
  bool persistent() const { return persistent_; }
  bool watch_accessed_variables() const { return watch_accessed_variables_; }
  bool recording() const { return recording_; }
  void stop_recording();
  void start_recording();
  // Values of trainable variables read while recording, in first-read order.
  const std::vector<Tensor> &watched_variable_values() const { return variable_values_; }

  // d(sum(target * target_grad))/d(source) for each source; target_grad undefined means ones.
  // Sums over every path. Non-persistent tapes allow one call.
  std::vector<Tensor> gradient(const Tensor &target, const std::vector<Tensor> &sources,
                               Unconnected unconnected, const Tensor &target_grad = Tensor());

  // ops::Recorder
  bool active() const override { return recording_ && !busy_; }
  bool watches(uint64_t id) const override { return watched_.contains(id); }
  void add(const std::shared_ptr<const ops::OpRecord> &record) override;
  void on_variable_read(const Tensor &value) override;

 private:
  void check_thread(const char *what) const;
  bool persistent_;
  bool watch_accessed_variables_;
  bool recording_ = false;
  bool busy_ = false;
  bool used_ = false;
  std::thread::id owner_;
  std::shared_ptr<ops::ThreadRecorders> thread_list_;
  IdSet watched_;
  std::vector<Tensor> variable_values_;
  std::vector<std::shared_ptr<const ops::OpRecord>> records_;
};

}  // namespace kiln::autodiff

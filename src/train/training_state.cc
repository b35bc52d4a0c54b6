#include "train/training_state.h"

#include <mutex>

#include "core/error.h"

namespace kiln::train {

std::shared_ptr<TrainingState> training_state(layers::Layer &model) {
  static std::mutex mu;  // makes first use atomic; the slot itself is guarded by the layer
  std::lock_guard<std::mutex> lock(mu);
  auto state = std::static_pointer_cast<TrainingState>(model.attachment());
  if (!state) {
    state = std::make_shared<TrainingState>();
    model.set_attachment(state);
  }
  return state;
}

ModelBusy::ModelBusy(layers::Layer &model, const char *what) : state_(training_state(model)) {
  std::lock_guard<std::mutex> lock(state_->busy_mu);
  if (state_->busy_depth > 0 && state_->busy_thread != std::this_thread::get_id())
    fail(Code::kFailedPrecondition, what, ": the model '", model.name(), "' is in ", state_->busy_what,
         " on another thread; expected one fit, evaluate, train_on_batch or test_on_batch per model at a "
         "time (predict and calls of the model may run beside them)");
  if (state_->busy_depth++ == 0) {
    state_->busy_thread = std::this_thread::get_id();
    state_->busy_what = what;
  }
}

ModelBusy::~ModelBusy() {
  std::lock_guard<std::mutex> lock(state_->busy_mu);
  if (--state_->busy_depth == 0) state_->busy_thread = std::thread::id();
}

}  // namespace kiln::train

#include "train/training_state.h"

#include <mutex>

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

}  // namespace kiln::train

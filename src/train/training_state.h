// What compile leaves on a model (Keras keeps these as model attributes: model.optimizer,
// model.stop_training, the compiled loss and metrics). It lives in the model's attachment slot
// (layers::Layer::attachment), so every handle of the model reaches it. Fit, evaluate and predict
// (model_training.h) own the compiled parts; callbacks (callbacks.h) read the optimizer and set
// stop_training.
#pragma once

#include <atomic>
#include <memory>

#include "layers/layer.h"
#include "train/optimizer.h"

namespace kiln::train {

struct CompiledModel;  // model_training.cc: losses, loss weights, metrics, step overrides

struct TrainingState {
  OptimizerPtr optimizer;                  // null before compile
  std::atomic<bool> stop_training{false};  // Keras's model.stop_training; fit reads it after each batch
  std::shared_ptr<CompiledModel> compiled;  // null before compile
};

// The model's training state, made empty on first use (never null). Thread-safe.
std::shared_ptr<TrainingState> training_state(layers::Layer &model);

}  // namespace kiln::train

// What compile leaves on a model (Keras keeps these as model attributes: model.optimizer,
// model.stop_training, the compiled loss and metrics). It lives in the model's attachment slot
// (layers::Layer::attachment), so every handle of the model reaches it. Fit, evaluate and predict
// (model_training.h) own the compiled parts; callbacks (callbacks.h) read the optimizer and set
// stop_training.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "layers/layer.h"
#include "train/optimizer.h"

namespace kiln::train {

struct CompiledModel;  // model_training.cc: losses, loss weights, metrics, step overrides

struct TrainingState {
  OptimizerPtr optimizer;                  // null before compile
  std::atomic<bool> stop_training{false};  // Keras's model.stop_training; fit reads it after each batch
  std::shared_ptr<CompiledModel> compiled;  // null before compile
  // The thread in fit, evaluate, train_on_batch or test_on_batch (ModelBusy), how deep (a callback may
  // evaluate within fit on the same thread), and which call it is in.
  std::mutex busy_mu;
  std::thread::id busy_thread;
  int busy_depth = 0;
  const char *busy_what = "";
};

// Marks the model busy in `what` on this thread for the guard's life. Another thread's fit, evaluate,
// train_on_batch or test_on_batch on the model meanwhile is FAILED_PRECONDITION naming both calls (their
// shared state, the compiled metrics and the optimizer, takes one at a time); the same thread may nest.
class ModelBusy {
 public:
  ModelBusy(layers::Layer &model, const char *what);
  ~ModelBusy();
  ModelBusy(const ModelBusy &) = delete;
  ModelBusy &operator=(const ModelBusy &) = delete;

 private:
  std::shared_ptr<TrainingState> state_;
};

// The model's training state, made empty on first use (never null). Thread-safe.
std::shared_ptr<TrainingState> training_state(layers::Layer &model);

}  // namespace kiln::train

// Keras's training loop on a model (Keras 3 trainers/trainer.py and backend trainers): compile
// attaches a CompiledModel (losses, loss weights, metrics, step overrides) to the model's
// TrainingState; fit / evaluate / predict run the epochs and batches with Keras's data
// handling (validation_split, shuffle, class_weight, steps) and call the callbacks' hooks.
// model_training.cc: compile, the steps, compute_loss / compute_metrics, *_on_batch.
// model_fit.cc: the batch sources and the fit / evaluate / predict loops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "layers/layer.h"
#include "train/callbacks.h"
#include "train/losses.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/training_state.h"

namespace kiln::train {

using layers::LayerPtr;

// Keras's compile arguments. Losses either as objects or by name (one for every output, or one
// per output); an empty optimizer and optimizer_name means Keras's default "rmsprop".
struct CompileOptions {
  OptimizerPtr optimizer;
  std::string optimizer_name;
  std::vector<LossPtr> losses;
  std::vector<std::string> loss_names;
  std::vector<double> loss_weights;
  std::vector<std::string> metric_names;
  std::vector<MetricPtr> metrics;
  // Keras's compile list when names and objects mix: one entry per metric in compile order, true
  // for the next of metrics, false for the next of metric_names. Empty: the names, then the objects.
  std::vector<bool> metric_is_object;
  // Keras's weighted_metrics: one entry per metric in compile order (as metric_is_object), true
  // for a metric updated with the batch's sample weight. Empty: none is. The weighted metrics come
  // after the others in the logs, as Keras's.
  std::vector<bool> metric_is_weighted;
  bool run_eagerly = false;
};

// A compiled metric: a name (resolved at the first batch) or an object; weighted: one of Keras's
// weighted_metrics, updated with the sample weight.
struct CompiledMetric {
  std::string name;
  MetricPtr object;
  bool weighted = false;
  // A custom loss's name (Keras's custom_objects): the loss, made at compile while it is
  // registered; each output gets a MeanMetricWrapper of it.
  LossPtr custom_loss;
};

// A replacement for train_step / test_step: gets the batch as fit unpacked it (x components, y
// components, then the sample weight if any) and returns the logs.
using StepFn = std::function<Logs(const LayerPtr &model, const std::vector<Tensor> &data)>;

// What compile leaves on a model (held by TrainingState::compiled).
// Step overrides may be set before compile (a subclass sets them when it is made): the state
// then exists with compiled false, and compile carries the overrides over.
struct CompiledModel {
  bool compiled = false;
  std::vector<LossPtr> losses;       // empty: no compiled loss; 1: every output; else one per output
  std::vector<double> loss_weights;  // empty: all 1
  std::vector<CompiledMetric> metrics;  // Keras's order: `metrics` in compile order, then weighted_metrics
  bool run_eagerly = false;
  MetricPtr loss_tracker;  // Mean named "loss"
  // The compiled metrics, resolved at the first batch from the shapes (Keras's CompileMetrics
  // build): per output, one per entry of `metrics`, in its order; names prefixed "output_<i>_"
  // with several outputs, and made unique as Keras's ("accuracy_1"; "weighted_accuracy" for a
  // weighted metric whose name is taken).
  bool metrics_built = false;
  std::vector<std::vector<MetricPtr>> output_metrics;
  std::vector<std::vector<std::string>> output_metric_names;  // the log name of each, in the same layout
  // Keras's individual loss trackers: with several outputs, a Mean "output_<i>_loss" per output
  // of that output's loss before its loss weight (made at the first compute_loss). They follow
  // the compiled metrics in the logs, as Keras 3's.
  std::vector<MetricPtr> output_loss_trackers;
  std::vector<Tensor> last_output_losses;
  StepFn train_step, test_step;  // empty: the built-in steps
  // The last compute_loss value and its batch size: compute_metrics feeds them to loss_tracker.
  Tensor last_loss;
  int64_t last_batch_size = 0;
  bool loss_pending = false;
  // Guards the last_* values, loss_pending, output_loss_trackers and the metrics' build:
  // compute_loss and compute_metrics may run on several threads at once (as a layer call may).
  mutable std::mutex state_mu;
  // The epoch a callback's on_train_begin asks fit to start at instead of its initial_epoch
  // (BackupAndRestore resuming from a backup; Keras 3's model._initial_epoch). fit clears it
  // before on_train_begin and after reading it; -1: not set.
  int64_t resume_epoch = -1;
};

// The metrics the logs report, with their log names, in Keras 3's order: the loss tracker, the
// compiled `metrics` (output by output), the weighted_metrics (output by output), then the
// individual loss trackers.
struct LoggedMetric {
  std::string name;
  MetricPtr metric;
};
std::vector<LoggedMetric> logged_metrics(const CompiledModel &c);

// Keras's fit arguments. Either x/y (one tensor per input / output) or a dataset whose elements
// hold num_inputs x components, then the y components, then optionally a sample weight.
struct FitOptions {
  std::vector<Tensor> x, y;
  Tensor sample_weight;
  data::DatasetPtr dataset;
  size_t num_inputs = 1;
  int64_t batch_size = -1;  // -1: 32
  int64_t epochs = 1;
  int verbose = -1;  // -1: auto
  std::vector<CallbackPtr> callbacks;
  double validation_split = 0.0;
  std::vector<Tensor> validation_x, validation_y;
  Tensor validation_sample_weight;
  data::DatasetPtr validation_dataset;
  std::vector<int64_t> validation_freq;  // empty: every epoch; one value: every N; more: epochs listed
  bool shuffle = true;
  std::vector<double> class_weight;
  int64_t initial_epoch = 0;  // a callback may move it at train begin (CompiledModel::resume_epoch)
  int64_t steps_per_epoch = -1;
  int64_t validation_steps = -1;
  int64_t validation_batch_size = -1;  // -1: batch_size
  // Data-parallel training (distribution.h): each global batch split by rows over the ranks,
  // rank 0's shuffle, weights and optimizer state, gradients summed over the ranks, metrics over
  // all of them, and only rank 0 prints and runs the file-writing callbacks. Null: one process.
  CommunicatorPtr distribution;
};

struct EvaluateOptions {
  std::vector<Tensor> x, y;
  Tensor sample_weight;
  data::DatasetPtr dataset;
  size_t num_inputs = 1;
  int64_t batch_size = -1;
  int verbose = -1;
  int64_t steps = -1;
  std::vector<CallbackPtr> callbacks;
};

struct PredictOptions {
  std::vector<Tensor> x;
  data::DatasetPtr dataset;
  size_t num_inputs = 1;
  int64_t batch_size = -1;
  int verbose = -1;
  int64_t steps = -1;
  std::vector<CallbackPtr> callbacks;
};

// model.compile. Everything is checked and made before the model's state changes: on failure the
// earlier compile state stays. Unknown names: NotFound listing the known ones.
void compile(const LayerPtr &model, const CompileOptions &options);
bool is_compiled(const layers::Layer &model);
// The compiled state; FailedPrecondition naming what before compile ("call compile() first").
std::shared_ptr<CompiledModel> compiled_model(layers::Layer &model, const char *what);

// model.fit: returns the History. Errors before the first batch leave the model as it was.
std::shared_ptr<History> fit(const LayerPtr &model, const FitOptions &options);
// model.evaluate(return_dict=True).
Logs evaluate(const LayerPtr &model, const EvaluateOptions &options);
// model.predict: each output's batches concatenated along axis 0.
std::vector<Tensor> predict(const LayerPtr &model, const PredictOptions &options);

// The *_on_batch calls (metrics are reset first, as Keras's reset_metrics=True).
Logs train_on_batch(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                    const Tensor &sample_weight = Tensor(), const std::vector<double> &class_weight = {});
Logs test_on_batch(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                   const Tensor &sample_weight = Tensor());
std::vector<Tensor> predict_on_batch(const LayerPtr &model, const std::vector<Tensor> &x);

// Keras's compute_loss: the compiled losses of every output (weighted, computed in float32) plus
// model.losses(); a float32 scalar recorded on the thread's tapes. Remembers the value for
// compute_metrics' loss tracker.
Tensor compute_loss(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                    const std::vector<Tensor> &y_pred, const Tensor &sample_weight = Tensor());
// Keras's compute_metrics: updates the loss tracker (with the last compute_loss value, weighted
// by the batch size) and the compiled metrics, and returns every metric's result.
Logs compute_metrics(const LayerPtr &model, const std::vector<Tensor> &x, const std::vector<Tensor> &y,
                     const std::vector<Tensor> &y_pred, const Tensor &sample_weight = Tensor());
// The current results of the loss tracker and the compiled metrics (Keras's get_metrics_result).
Logs metrics_result(layers::Layer &model);
// Every compiled metric (and the loss tracker) back to zero (Keras's reset_metrics).
void reset_metrics(layers::Layer &model);
// model.metrics_names: "loss", then the built compiled metrics.
std::vector<std::string> metrics_names(layers::Layer &model);

// The built-in steps (Keras's train_step / test_step) on one batch as fit unpacks it: num_inputs x
// components, then the y components (num_y of them; -1: one per model output), then optionally
// a sample weight.
Logs default_train_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs,
                        int64_t num_y = -1);
Logs default_test_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs,
                       int64_t num_y = -1);
// Sets the step overrides (empty functions: the built-in steps); allowed before compile, kept by
// later compiles.
void set_step_overrides(layers::Layer &model, StepFn train_step, StepFn test_step);

// The per-sample weights of class_weight for targets y (class ids, or one-hot / probabilities
// whose argmax is the class), as Keras's class_weight_to_sample_weights; classes past the table
// weigh 1.
Tensor class_weight_to_sample_weight(const Tensor &y, const std::vector<double> &class_weight);

}  // namespace kiln::train

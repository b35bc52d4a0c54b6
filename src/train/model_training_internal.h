// Pieces model_training.cc shares with model_fit.cc (not part of the training API).
#pragma once

#include <cstddef>
#include <vector>

#include "train/model_training.h"

namespace kiln::train {

// v[begin, end), clamped to v's size.
std::vector<Tensor> slice_vector(const std::vector<Tensor> &v, size_t begin, size_t end);
// The target components of a batch (y tensors, then optionally a sample weight) for a model with
// num_outputs outputs. num_y: how many are y (tensors given apart), or -1 (a dataset element:
// num_outputs). InvalidArgument naming what for counts that do not fit.
void split_targets(const std::vector<Tensor> &rest, size_t num_outputs, int64_t num_y, std::vector<Tensor> *y,
                   Tensor *sw, const char *what);
// The override when one is set, else the built-in step.
Logs run_train_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs, int64_t num_y);
Logs run_test_step(const LayerPtr &model, const std::vector<Tensor> &data, size_t num_inputs, int64_t num_y);
// The per-sample weights: sample_weight, or class_weight's weights of the classes in y[0]; both given is
// INVALID_ARGUMENT, as Keras 3 raises.
Tensor combined_sample_weight(const std::vector<Tensor> &y, const Tensor &sample_weight,
                              const std::vector<double> &class_weight, const char *what);
// x present; x, y (which may be empty: no targets) and sample_weight batched, with one number of
// samples (> 0).
void check_arrays(const std::vector<Tensor> &x, const std::vector<Tensor> &y, const Tensor &sample_weight,
                  const char *what);
// Data without y: INVALID_ARGUMENT naming the compiled loss or metric that needs it.
void check_without_y(const CompiledModel &c, const char *what);
// The number of y tensors against the compiled losses (none: nothing compiled may need y, unless
// a train / test step of the user's reads the batch).
void check_num_targets(const CompiledModel &c, size_t num_y, const char *what);
// For SparseCategoricalCrossentropy outputs whose class count the model tells ahead
// (compute_output_shape): every label in [0, classes) (or ignore_class), so fit fails before any
// batch trains rather than at the batch holding the bad label.
void check_sparse_labels(layers::Layer &model, const CompiledModel &c, const std::vector<Tensor> &x,
                         const std::vector<Tensor> &y, const char *what);
// x components, y components, then sample_weight when defined (a batch as fit unpacks it).
std::vector<Tensor> batch_data(const std::vector<Tensor> &x, const std::vector<Tensor> &y, const Tensor &sw);

}  // namespace kiln::train

// What the files of built-in layers share: input checks whose errors name the layer, and the
// config pieces every weight layer reads and writes (initializers, regularizers, constraints).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <utility>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"
#include "ops/ops.h"

namespace kiln::layers {

// The dim at `axis` of an input shape, which must be known (INVALID_ARGUMENT naming the layer).
int64_t known_dim(const Layer &l, const PartialShape &s, size_t axis, const char *what);
// The one input of a single-input layer (INVALID_ARGUMENT naming the layer otherwise).
const PartialShape &single_input(const Layer &l, const std::vector<PartialShape> &shapes);
const Tensor &single_input(const Layer &l, const std::vector<Tensor> &inputs);

// "(2, 3)", "(2,)": a tuple as Python prints it, for error messages.
std::string tuple_string(const std::vector<int64_t> &v);
// Keras's standardize_tuple: an int (every axis) or n ints, each >= min_value (INVALID_ARGUMENT
// naming the owner and key otherwise).
std::vector<int64_t> tuple_of(const ConfigReader &r, const char *key, std::vector<int64_t> v, size_t n,
                              int64_t min_value);
// Keras's data_format of an image layer: "channels_last" (also for absent or null, Keras's
// image_data_format default) or "channels_first"; returns whether channels come first.
bool read_channels_first(ConfigReader &r);
inline const char *data_format_name(bool channels_first) {
  return channels_first ? "channels_first" : "channels_last";
}

// Images [N, H, W, C] or [H, W, C] as channels last (transposed when channels come first), and back.
Tensor to_channels_last(const Tensor &x, bool channels_first);
Tensor from_channels_last(const Tensor &y, bool channels_first);
// The images input of an image preprocessing layer: rank 4 (a batch) or 3 (one image); INVALID_ARGUMENT
// naming the layer otherwise.
const Tensor &image_input(const Layer &l, const std::vector<Tensor> &inputs);
// The images input of an image preprocessing layer as Keras casts it: numbers (not bool; INVALID_ARGUMENT
// naming the layer otherwise) in the layer's compute dtype, channels last.
Tensor compute_images(const Layer &l, const std::vector<Tensor> &inputs, bool channels_first);
// The height x width window of channels-last images x (rank 4 or 3) whose top-left pixel is (top, left).
Tensor crop_window(const Tensor &x, int64_t top, int64_t left, int64_t height, int64_t width);
// The largest centred box of aspect ratio height : width in channels-last images x (Keras's
// crop_to_aspect_ratio), its size and offsets computed in F and truncated as Keras computes them:
// float32 in Resizing, Python's float (double) in smart_resize.
template <typename F>
Tensor crop_to_aspect(const Tensor &x, int64_t height, int64_t width) {
  const int h_axis = x.rank() - 3;
  const int64_t h = x.shape()[h_axis], w = x.shape()[h_axis + 1];
  auto trunc = [](F v) { return static_cast<int64_t>(v); };
  const auto f = [](int64_t v) { return static_cast<F>(v); };  // in F: no int64 overflow, clamped first
  const int64_t th = std::max<int64_t>(trunc(std::min(f(h), f(w) * f(height) / f(width))), 1);
  const int64_t tw = std::max<int64_t>(trunc(std::min(f(w), f(h) * f(width) / f(height))), 1);
  return crop_window(x, trunc(static_cast<F>(h - th) / 2), trunc(static_cast<F>(w - tw) / 2), th, tw);
}

// The output shape of an image layer that gives height x width images of input shape s (rank 4
// or 3; INVALID_ARGUMENT naming the layer otherwise).
PartialShape image_output_shape(const Layer &l, PartialShape s, int64_t height, int64_t width,
                                bool channels_first);
// An image layer's output height and width ("height", "width"), both required and >= 1.
std::pair<int64_t, int64_t> read_image_size(ConfigReader &r);

// A dropout rate, required, in [0, 1) (rate 1 would divide by zero); INVALID_ARGUMENT naming the
// owner otherwise.
double read_rate(ConfigReader &r);
// Keras's seed of a random layer: an int >= 0, or null or absent for none (-1 here, what the random
// ops take for none; a negative seed is an error rather than silently none); written back the same way.
int64_t read_seed(ConfigReader &r);
void write_seed(Config &c, int64_t seed);

// The serialized layer under key ({"class_name": ..., "config": {...}}: a wrapper's layer, an RNN's
// cell); INVALID_ARGUMENT naming the owner when absent or not a layer.
Config wrapped_config(ConfigReader &r, const char *key);

// The initializer under `key`, or get_initializer(def) when the key is absent or null.
InitializerPtr initializer_or(const Config &config, ConfigReader &r, const char *key, const char *def);
// Writes a regularizer, or null for none, as Keras's get_config does.
void set_regularizer(Config &c, const char *key, const RegularizerPtr &r);
// Keys every Keras weight layer writes and kiln accepts only as null (constraints are not
// implemented yet: a non-null value is an error rather than silently ignored).
void reject_constraints(ConfigReader &r, std::initializer_list<const char *> keys);

// A Keras config value that is an int or a list of ints (Softmax's and UnitNormalization's axis, Dot's
// axes), written back in the form it came in.
struct IntOrList {
  std::vector<int64_t> values;
  bool list = false;

  static IntOrList read(ConfigReader &r, const char *key, const std::vector<int64_t> &def);
  void write(Config &c, const char *key) const;
};

// An activity regularizer's loss on a layer output y, divided by the batch size (y's first dim; a
// scalar y is not divided, an empty batch gives 0), as tf.keras and Keras >= 3.14 add it, so that its
// weight does not grow with the batch.
Tensor activity_loss(const Regularizer &reg, const Tensor &y);

// Keras 3's encode_categorical_inputs for CategoryEncoding and Discretization: int64 ids in
// [0, depth) (a scalar as one sample) as one-hot rows ("one_hot": a last axis of 1 is replaced), or
// as a multi-hot vector ("multi_hot") or counts ("count", each id weighted by `weights` of the ids'
// shape when given) over axis 1 (axis 0 of 1-D ids): per sample of [batch, n] ids, and for rank 3
// and more over axis 1, as Keras 3 reduces; in dtype `out`.
Tensor encode_categorical(const Tensor &ids, const std::string &mode, int64_t depth, DType out,
                          const Tensor &weights = Tensor());
// The output shape encode_categorical gives for ids of shape s.
PartialShape encoded_shape(PartialShape s, const std::string &mode, int64_t depth);

// Keras's kernel_initializer, bias_initializer, kernel/bias/activity_regularizer and
// kernel/bias_constraint keys (Dense, MultiHeadAttention, ...), read and written in that order.
struct KernelBiasSettings {
  InitializerPtr kernel_init, bias_init;
  RegularizerPtr kernel_reg, bias_reg, activity_reg;

  static KernelBiasSettings read(const Config &config, ConfigReader &r);
  void write(Config &c) const;
};

}  // namespace kiln::layers

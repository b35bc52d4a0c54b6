// Model and Sequential. Models are layers (as in Keras 3): a Model subclass composes layers in
// its constructor and writes call; Sequential chains a list of layers and is nestable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace kiln::layers {

// The base of user models: a layer with is_model() set (summary prints "Model: ...").
class Model : public Layer {
 public:
  Model(std::string class_name, ConfigReader &base) : Layer(std::move(class_name), base) { set_is_model(true); }
};

// Keras's InputLayer (keras.Input's layer): the input shape and dtype of a Sequential model,
// given as its first layer. Config: "batch_shape" (Keras 3) or "batch_input_shape" (tf.keras 2),
// or "shape" with "batch_size"; "dtype" (the input's dtype, default float32); "sparse", "ragged"
// and "optional" only false. Its call passes the input through; it has no weights.
class InputLayer final : public Layer {
 public:
  explicit InputLayer(const Config &config);
  const PartialShape &batch_shape() const { return batch_shape_; }
  DType input_dtype() const { return input_dtype_; }

 protected:
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override;
  void add_config(Config &config) const override;

 private:
  InputLayer(const Config &config, ConfigReader &&r);
  PartialShape batch_shape_;
  DType input_dtype_ = DType::kFloat32;
};

class Sequential final : public Model {
 public:
  // Config: name, trainable, dtype, and "layers": a list of serialized layers, of which the first
  // may be an InputLayer.
  explicit Sequential(const Config &config);
  // Appends a layer (the model builds again on its next call, as Keras). As Keras's: an
  // InputLayer first, or a first layer with an input_shape argument, gives the model its input
  // shape, and the model is then built after each add. An InputLayer after other layers, or a
  // second one, is INVALID_ARGUMENT.
  void add(const LayerPtr &layer);
  // Removes the last layer; FAILED_PRECONDITION when there is none.
  void pop();
  // The InputLayer the model was given (not one of layers(), as Keras's Sequential.layers);
  // null when none.
  const std::shared_ptr<InputLayer> &input_layer() const { return input_layer_; }
  // Builds for the config's "build_input_shape" (Keras's from_config), once made: the factory
  // calls it, as building needs the model's shared owner. Without the key it does nothing.
  void build_from_config();
  // The masks the last layer gives when the model runs on inputs with these masks (it runs the
  // layers: each layer's mask depends on the previous one's outputs).
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs,
                                   const std::vector<Tensor> &previous_masks) override;

 protected:
  void build_impl(const std::vector<PartialShape> &input_shapes) override;
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override;
  // Each layer gets the previous layer's output masks (Keras's Sequential.call).
  CallResult call_with_masks(const std::vector<Tensor> &inputs, const CallContext &ctx) override;
  void add_config(Config &config) const override;

 private:
  Sequential(const Config &config, ConfigReader &&r);
  // add, without building (the constructor's adds: building needs the model's shared owner).
  void add_layer(const LayerPtr &layer);
  [[noreturn]] void fail_duplicate_name(const Layer &layer) const;
  std::optional<PartialShape> pending_build_shape_;
  std::shared_ptr<InputLayer> input_layer_;
};

// Keras's model.summary() table (TF 2.x layout, line length 65): one row per direct sub-layer
// (nested models as one row), output shapes, parameter counts, and totals. A model not built is
// INVALID_ARGUMENT (Keras's ValueError).
std::string summary(const Layer &model, int64_t line_length = 65);

}  // namespace kiln::layers

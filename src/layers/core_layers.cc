// Core built-in layers: Dense, Activation, Dropout, Flatten, Reshape, Embedding, Masking,
// Identity, Rescaling.
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "layers/activations.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/dense_options.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// ------------------------------------------------------------------ Dense

class Dense final : public Layer {
 public:
  explicit Dense(const Config &config) : Dense(config, ConfigReader(config, "Dense")) {}

 private:
  Dense(const Config &config, ConfigReader &&r) : Layer("Dense", r) {
    units_ = r.get_int("units");
    if (units_ <= 0) fail(Code::kInvalidArgument, "Dense: units must be positive; got ", units_);
    activation_ = get_activation(r.get_string("activation", "linear"));
    std::tie(fused_, fused_alpha_) = fused_activation(activation_.name);
    use_bias_ = r.get_bool("use_bias", true);
    w_ = KernelBiasSettings::read(config, r);
    r.finish();
    input_spec_.min_ndim = 2;
    set_supports_masking(true);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    const int64_t in = known_dim(*this, s, s.size() - 1, "last dimension");
    kernel_ = add_weight("kernel", Shape({in, units_}), dtype(), *w_.kernel_init, true, w_.kernel_reg);
    if (use_bias_) bias_ = add_weight("bias", Shape({units_}), dtype(), *w_.bias_init, true, w_.bias_reg);
    input_spec_.last_dim = in;
  }

  // matmul, bias and activation in one op (ops::dense: the bits of matmul, bias_add and the
  // activation op); an activation it cannot take runs after it, as its own op.
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    // Integer and bool inputs are cast to the compute dtype, as Keras's Dense does (int features
    // fed straight to fit/predict).
    const Tensor &in = single_input(*this, inputs);
    const Tensor x = is_floating(in.dtype()) ? in : ops::cast(in, compute_dtype());
    Tensor y;
    if (x.dtype() == DType::kFloat32) {
      ops::DenseOptions options;
      options.inference_weights = inference_weights();
      y = ops::dense(x, kernel_->read_for_op(), bias_ ? bias_->read_for_op() : Tensor(), fused_, fused_alpha_,
                     options);
      if (fused_ == ops::DenseActivation::kLinear) y = activation_(y);
    } else {  // other dtypes as before (bias_add takes float32 only and says so)
      y = ops::matmul(x, kernel_->read_for_op());
      if (bias_) y = ops::bias_add(y, bias_->read_for_op());
      y = activation_(y);
    }
    if (w_.activity_reg) add_loss(activity_loss(*w_.activity_reg, y));
    return {y};
  }

  void add_config(Config &c) const override {
    c.set("units", units_).set("activation", activation_.name).set("use_bias", use_bias_);
    w_.write(c);
  }

  int64_t units_;
  Activation activation_;
  ops::DenseActivation fused_ = ops::DenseActivation::kLinear;
  float fused_alpha_ = 0.0f;
  bool use_bias_;
  KernelBiasSettings w_;
  VariablePtr kernel_, bias_;
};

// ------------------------------------------------------------------ Activation

class ActivationLayer final : public Layer {
 public:
  explicit ActivationLayer(const Config &config) : ActivationLayer(ConfigReader(config, "Activation")) {}

 private:
  explicit ActivationLayer(ConfigReader &&r) : Layer("Activation", r) {
    activation_ = get_activation(r.get_string("activation", "linear"));
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return {activation_(single_input(*this, inputs))};
  }
  void add_config(Config &c) const override { c.set("activation", activation_.name); }
  Activation activation_;
};

// ------------------------------------------------------------------ Dropout

class Dropout final : public Layer {
 public:
  explicit Dropout(const Config &config) : Dropout(ConfigReader(config, "Dropout")) {}

 private:
  explicit Dropout(ConfigReader &&r) : Layer("Dropout", r) {
    rate_ = read_rate(r);
    has_noise_shape_ = r.has("noise_shape");
    if (has_noise_shape_) noise_shape_ = r.config().get_dims("noise_shape");
    seed_ = read_seed(r);
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (!ctx.training || rate_ == 0) return {x};
    return {ops::dropout(x, static_cast<float>(rate_), true, seed_, noise_shape_)};
  }
  void add_config(Config &c) const override {
    c.set("rate", rate_);
    if (has_noise_shape_)
      c.set_dims("noise_shape", noise_shape_);
    else
      c.set_null("noise_shape");
    write_seed(c, seed_);
  }
  double rate_;
  std::vector<int64_t> noise_shape_;  // None entries are -1: the op takes x's dim there
  bool has_noise_shape_ = false;
  int64_t seed_;
};

// ------------------------------------------------------------------ Flatten / Reshape

class Flatten final : public Layer {
 public:
  explicit Flatten(const Config &config) : Flatten(ConfigReader(config, "Flatten")) {}

 private:
  explicit Flatten(ConfigReader &&r) : Layer("Flatten", r) {
    const std::string fmt = r.get_string("data_format", "channels_last");
    if (fmt != "channels_last" && fmt != "channels_first")
      fail(Code::kInvalidArgument, "Flatten: data_format '", fmt,
           "'; expected 'channels_last' or 'channels_first'");
    channels_first_ = fmt == "channels_first";
    input_spec_.min_ndim = 1;
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor x = single_input(*this, inputs);
    if (x.rank() <= 1) return {ops::expand_dims(x, -1)};  // Keras: (batch,) -> (batch, 1)
    if (channels_first_ && x.rank() >= 3) {  // Keras: the channel axis moves last before flattening
      std::vector<int64_t> perm{0};
      for (int64_t a = 2; a < x.rank(); ++a) perm.push_back(a);
      perm.push_back(1);
      x = ops::transpose(x, perm);
    }
    return {ops::reshape(x, {x.shape()[0], -1})};
  }
  void add_config(Config &c) const override {
    c.set("data_format", channels_first_ ? "channels_first" : "channels_last");
  }
  bool channels_first_ = false;
};

class Reshape final : public Layer {
 public:
  explicit Reshape(const Config &config) : Reshape(ConfigReader(config, "Reshape")) {}

 private:
  explicit Reshape(ConfigReader &&r) : Layer("Reshape", r) {
    target_ = r.get_int_list("target_shape", {});
    if (!r.has("target_shape")) fail(Code::kInvalidArgument, "Reshape: config key 'target_shape' is required");
    int unknown = 0;
    for (int64_t d : target_) {
      if (d == -1) ++unknown;
      if (d == 0 || d < -1) fail(Code::kInvalidArgument, "Reshape: target_shape entries must be positive or -1");
    }
    if (unknown > 1) fail(Code::kInvalidArgument, "Reshape: target_shape may hold at most one -1");
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    if (x.rank() < 1) bad_input("input needs a batch dimension");
    std::vector<int64_t> shape = {x.shape()[0]};
    shape.insert(shape.end(), target_.begin(), target_.end());
    // Keras resolves a -1 from the sample's shape, so an empty batch reshapes too.
    int64_t sample = 1, known = 1;
    for (int i = 1; i < x.rank(); ++i) sample *= x.shape()[i];
    for (int64_t d : target_) known *= d == -1 ? 1 : d;
    for (int64_t &d : shape)
      if (d == -1 && known > 0 && sample % known == 0 && x.shape()[0] == 0) d = sample / known;
    return {ops::reshape(x, shape)};
  }
  void add_config(Config &c) const override { c.set("target_shape", target_); }
  std::vector<int64_t> target_;
};

// ------------------------------------------------------------------ Embedding

class Embedding final : public Layer {
 public:
  explicit Embedding(const Config &config) : Embedding(config, ConfigReader(config, "Embedding")) {}

 private:
  Embedding(const Config &config, ConfigReader &&r) : Layer("Embedding", r) {
    input_dim_ = r.get_int("input_dim");
    output_dim_ = r.get_int("output_dim");
    if (input_dim_ <= 0 || output_dim_ <= 0)
      fail(Code::kInvalidArgument, "Embedding: input_dim and output_dim must be positive; got ", input_dim_, " and ",
           output_dim_);
    init_ = initializer_or(config, r, "embeddings_initializer", "random_uniform");  // Keras: "uniform"
    reg_ = regularizer_from_value(config, "embeddings_regularizer");
    activity_reg_ = regularizer_from_value(config, "activity_regularizer");
    r.accept({"embeddings_regularizer", "activity_regularizer", "input_length"});
    reject_constraints(r, {"embeddings_constraint"});
    mask_zero_ = r.get_bool("mask_zero", false);
    r.finish();
    set_supports_masking(mask_zero_);  // as Keras; input_dim still counts index 0
    // As Keras: float ids must not round through bfloat16, and gathering from the float32 table
    // then casting the rows is cheaper than casting the table.
    set_autocast(false);
  }
  // Keras: with mask_zero, id 0 is padding: the mask is ids != 0, of the ids' shape.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs, const std::vector<Tensor> &) override {
    if (!mask_zero_) return {};
    const Tensor &ids = single_input(*this, inputs);
    return {ops::not_equal(ids, ops::zeros(Shape({}), ids.dtype()))};
  }
  void build_impl(const std::vector<PartialShape> &) override {
    embeddings_ = add_weight("embeddings", Shape({input_dim_, output_dim_}), dtype(), *init_, true, reg_);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor ids = single_input(*this, inputs);
    if (ids.dtype() != DType::kInt32 && ids.dtype() != DType::kInt64) {
      if (!is_floating(ids.dtype())) bad_input("input is ", ids.description(), "; expected integer ids");
      ids = ops::cast(ids, DType::kInt32);  // Keras casts float ids to int
    }
    const Tensor y = ops::cast(ops::gather(embeddings_->value(), ids, 0), compute_dtype());
    if (activity_reg_) add_loss(activity_loss(*activity_reg_, y));
    return {y};
  }
  void add_config(Config &c) const override {
    c.set("input_dim", input_dim_).set("output_dim", output_dim_);
    c.set("embeddings_initializer", serialize_initializer(*init_));
    set_regularizer(c, "embeddings_regularizer", reg_);
    set_regularizer(c, "activity_regularizer", activity_reg_);
    c.set_null("embeddings_constraint").set("mask_zero", mask_zero_);
  }
  int64_t input_dim_, output_dim_;
  bool mask_zero_;
  InitializerPtr init_;
  RegularizerPtr reg_, activity_reg_;
  VariablePtr embeddings_;
};

// ------------------------------------------------------------------ Masking

// Keras's Masking(mask_value): a step whose features all equal mask_value is padding: its
// output is zeros and its mask false.
class Masking final : public Layer {
 public:
  explicit Masking(const Config &config) : Masking(ConfigReader(config, "Masking")) {}

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &inputs, const std::vector<Tensor> &) override {
    return {step_mask(single_input(*this, inputs))};
  }

 private:
  explicit Masking(ConfigReader &&r) : Layer("Masking", r) {
    mask_value_ = r.get_float("mask_value", 0.0);
    r.finish();
    set_supports_masking(true);
  }
  Tensor step_mask(const Tensor &x) const {
    return ops::reduce_any(ops::not_equal(x, ops::fill(Shape({}), mask_value_, x.dtype())), {-1});
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    return {ops::mul(x, ops::expand_dims(ops::cast(step_mask(x), x.dtype()), -1))};
  }
  void add_config(Config &c) const override { c.set("mask_value", mask_value_); }
  double mask_value_;
};

// ------------------------------------------------------------------ Identity / Rescaling

// keras.layers.Identity: its input, mask and all.
class Identity final : public Layer {
 public:
  explicit Identity(const Config &config) : Identity(ConfigReader(config, "Identity")) {}

 private:
  explicit Identity(ConfigReader &&r) : Layer("Identity", r) {
    r.finish();
    set_supports_masking(true);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    return {single_input(*this, inputs)};
  }
};

// keras.layers.Rescaling(scale, offset=0.0): x * scale + offset in the compute dtype (uint8
// images in, floats out). scale and offset are numbers, or lists of numbers broadcast against
// the input's last axes.
class Rescaling final : public Layer {
 public:
  explicit Rescaling(const Config &config) : Rescaling(ConfigReader(config, "Rescaling")) {}

 private:
  explicit Rescaling(ConfigReader &&r) : Layer("Rescaling", r) {
    if (!r.has("scale")) fail(Code::kInvalidArgument, "Rescaling: config key 'scale' is required");
    scale_ = read_value(r, "scale", 1.0);
    offset_ = read_value(r, "offset", 0.0);
    r.finish();
    set_supports_masking(true);
  }
  struct Value {
    std::vector<double> values;
    bool list = false;
  };
  static Value read_value(ConfigReader &r, const char *key, double def) {
    Value v{{def}, false};
    if (!r.has(key)) return v;
    v.list = r.config().type(key) == Config::Type::kList;
    v.values = r.config().get_float_list(key);
    for (double d : v.values)
      if (!std::isfinite(d)) fail(Code::kInvalidArgument, "Rescaling: ", key, " must be finite; got ", d);
    if (v.list && v.values.empty()) fail(Code::kInvalidArgument, "Rescaling: ", key, " is an empty list");
    return v;
  }
  static Tensor constant(const Value &v, DType dtype) {
    const Tensor t = v.list
                         ? Tensor::from_data(DType::kFloat64, Shape({static_cast<int64_t>(v.values.size())}),
                                             v.values.data(), v.values.size() * sizeof(double))
                         : Tensor::scalar(v.values[0]);
    return ops::cast(t, dtype);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &in = single_input(*this, inputs);
    const DType dt = compute_dtype();
    const Tensor x = in.dtype() == dt ? in : ops::cast(in, dt);
    return {ops::add(ops::mul(x, constant(scale_, dt)), constant(offset_, dt))};
  }
  static void write_value(Config &c, const char *key, const Value &v) {
    if (v.list)
      c.set(key, v.values);
    else
      c.set(key, v.values[0]);
  }
  void add_config(Config &c) const override {
    write_value(c, "scale", scale_);
    write_value(c, "offset", offset_);
  }
  Value scale_, offset_;
};

}  // namespace

void register_core_layers() {
  register_class<Dense>("Dense");
  register_class<ActivationLayer>("Activation");
  register_class<Dropout>("Dropout");
  register_class<Flatten>("Flatten");
  register_class<Reshape>("Reshape");
  register_class<Embedding>("Embedding");
  register_class<Masking>("Masking");
  register_class<Identity>("Identity");
  register_class<Rescaling>("Rescaling");
}

void register_builtin_layers() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_core_layers();
    register_normalization_layers();
    register_sequential();
    register_conv_layers();
    register_attention_layers();
    register_activation_layers();
    register_reshaping_layers();
    register_noise_layers();
    register_recurrent_layers();
    register_wrapper_layers();
  });
}

}  // namespace kiln::layers

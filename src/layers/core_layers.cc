// Core built-in layers: Dense, EinsumDense, Activation, Dropout, AlphaDropout, Flatten, Reshape,
// Embedding, Masking, Identity, Rescaling, CategoryEncoding.
#include <algorithm>
#include <cctype>
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

// ------------------------------------------------------------------ EinsumDense

// Keras's _analyze_einsum_string: the shapes an EinsumDense equation gives its kernel, bias and
// output, for the forms Keras takes: "ab,bc->ac", "...ab,bc->...ac" (the ellipsis on the left of
// the input and the output) and "ab...,bc->ac..." (on the right).
struct EinsumPlan {
  std::vector<int64_t> kernel, output;  // output: the whole output shape (-1: unknown)
  std::optional<std::vector<int64_t>> bias;
  // The kernel's axes that take the input's axes, and those that give the output's.
  std::vector<int64_t> input_axes, output_axes;
};

struct EinsumSpecs {
  std::string input, weight, output;
  bool left = false, right = false;  // where the ellipsis is, if anywhere
};

bool all_letters(const std::string &t, size_t at_least) {
  if (t.size() < at_least) return false;
  for (char c : t)
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  return true;
}

EinsumSpecs parse_einsum_dense(const std::string &equation, const std::string &owner) {
  static const std::string dots = "...";
  auto starts = [](const std::string &t) { return t.compare(0, dots.size(), dots) == 0; };
  auto ends = [](const std::string &t) {
    return t.size() >= dots.size() && t.compare(t.size() - dots.size(), dots.size(), dots) == 0;
  };
  EinsumSpecs e;
  const size_t arrow = equation.find("->"), comma = equation.find(',');
  bool ok = arrow != std::string::npos && comma != std::string::npos && comma < arrow;
  if (ok) {
    std::string in = equation.substr(0, comma), out = equation.substr(arrow + 2);
    e.weight = equation.substr(comma + 1, arrow - comma - 1);
    e.left = starts(in) && starts(out);
    e.right = !e.left && ends(in) && ends(out);
    if (e.left) {
      in = in.substr(dots.size());
      out = out.substr(dots.size());
    } else if (e.right) {
      in.resize(in.size() - dots.size());
      out.resize(out.size() - dots.size());
    }
    e.input = in;
    e.output = out;
    ok = all_letters(e.input, e.right ? 2 : 1) && all_letters(e.weight, 1) && all_letters(e.output, 1);
  }
  if (!ok)
    fail(Code::kInvalidArgument, owner, ": equation '", equation,
         "' is not of a form EinsumDense takes; expected [X],[Y]->[Z], ...[X],[Y]->...[Z] or "
         "[X]...,[Y]->[Z]...");
  return e;
}

// shapes_only: for compute_output_shape, which (as Keras's) gives the output's shape even where
// the weights' sizes are unknown; a build refuses those.
EinsumPlan plan_einsum_dense(const EinsumSpecs &e, const std::optional<std::string> &bias_axes,
                             const PartialShape &input, const std::vector<int64_t> &partial_output,
                             const std::string &owner, bool shapes_only) {
  const int64_t rank = static_cast<int64_t>(input.size());
  const int64_t elided = rank - static_cast<int64_t>(e.input.size());
  if (elided < 0 || (elided > 0 && !e.left && !e.right))
    fail(Code::kInvalidArgument, owner, ": the input has rank ", rank, ", but the equation's input '",
         e.input, "' has ", e.input.size(), " axes",
         e.left || e.right ? " (and at most the ellipsis more)" : "");
  EinsumPlan p;
  // The batch dim, the elided dims (on their side), and output_shape for the equation's axes.
  p.output.push_back(input[0]);
  if (e.left)
    for (int64_t i = 1; i < elided; ++i) p.output.push_back(input[static_cast<size_t>(i)]);
  p.output.insert(p.output.end(), partial_output.begin(), partial_output.end());
  if (e.right)
    for (int64_t i = rank - elided; i < rank; ++i) p.output.push_back(input[static_cast<size_t>(i)]);
  const int64_t lead = e.left ? elided : 0;  // output axes before the spec's
  // The einsum's output has the spec's axes and the elided ones; the rest came from the input.
  const size_t given = partial_output.size(), from_input = p.output.size() - given;
  const size_t want = e.output.size() + static_cast<size_t>(elided);
  if (p.output.size() != want)
    fail(Code::kInvalidArgument, owner, ": output_shape has ", given, " dims, but the equation's output '",
         e.output, "' needs ", want - from_input, " for an input of rank ", rank,
         " (the output's axes after the batch axis", e.left || e.right ? ", without the ellipsis's" : "",
         ")");
  auto input_dim = [&](char c) -> int64_t {
    const int64_t i = static_cast<int64_t>(e.input.find(c));
    return input[static_cast<size_t>(e.left ? i + elided : i)];
  };
  auto output_at = [&](char c) { return lead + static_cast<int64_t>(e.output.find(c)); };
  for (char c : e.input) {
    if (e.output.find(c) == std::string::npos) continue;
    int64_t &out = p.output[static_cast<size_t>(output_at(c))];
    const int64_t in = input_dim(c);
    if (in >= 0 && out >= 0 && in != out)
      fail(Code::kInvalidArgument, owner, ": the input and output_shape differ at the shared axis '", c,
           "': the input has ", in, ", output_shape ", out);
    if (out < 0) out = in;  // None in output_shape: the input's size (Keras's documented shapes)
  }
  for (char c : e.output)
    if (e.input.find(c) == std::string::npos && e.weight.find(c) == std::string::npos)
      fail(Code::kInvalidArgument, owner, ": the output axis '", c, "' of '", e.output,
           "' is in neither the input '", e.input, "' nor the weight '", e.weight, "'");
  for (size_t i = 0; i < e.weight.size(); ++i) {
    const char c = e.weight[i];
    int64_t d;
    if (e.output.find(c) != std::string::npos) {
      d = p.output[static_cast<size_t>(output_at(c))];
      p.output_axes.push_back(static_cast<int64_t>(i));
    } else if (e.input.find(c) != std::string::npos) {
      d = input_dim(c);
      p.input_axes.push_back(static_cast<int64_t>(i));
    } else {
      fail(Code::kInvalidArgument, owner, ": the weight axis '", c, "' is in neither the input '", e.input,
           "' nor the output '", e.output, "'; the kernel must be fully specified");
    }
    if (d < 0 && !shapes_only)
      fail(Code::kInvalidArgument, owner, ": the kernel's axis '", c,
           "' has an unknown size; give it in output_shape (or in the input's shape)");
    p.kernel.push_back(d);
  }
  if (bias_axes) {
    if (bias_axes->empty())
      fail(Code::kInvalidArgument, owner, ": bias_axes is empty; expected output axes or null");
    size_t first = e.output.size();
    for (char c : *bias_axes) {
      const size_t at = e.output.find(c);
      if (at == std::string::npos)
        fail(Code::kInvalidArgument, owner, ": bias axis '", c, "' is not in the output '", e.output, "'");
      first = std::min(first, at);
    }
    std::vector<int64_t> bias;
    for (size_t i = first; i < e.output.size(); ++i) {
      const char c = e.output[i];
      if (bias_axes->find(c) == std::string::npos) {
        bias.push_back(1);
        continue;
      }
      const int64_t d = p.output[static_cast<size_t>(lead) + i];
      if (d < 0 && !shapes_only)
        fail(Code::kInvalidArgument, owner, ": the bias axis '", c,
             "' has an unknown size; give it in output_shape");
      bias.push_back(d);
    }
    if (!e.left)
      for (int64_t i = 0; i < elided; ++i) bias.push_back(1);
    p.bias = bias;
  }
  return p;
}

// keras.layers.EinsumDense(equation, output_shape, activation, bias_axes, ...): einsum(equation,
// inputs, kernel) + bias, then the activation; the kernel's and bias's shapes come from the
// equation, the input's shape and output_shape (the output's shape without its batch axis and
// the ellipsis's axes; None for an axis the input gives). The kernel's VarianceScaling-family
// initializer takes its fans along the kernel's input and output axes (Keras 3.15).
class EinsumDense final : public Layer {
 public:
  explicit EinsumDense(const Config &config) : EinsumDense(config, ConfigReader(config, "EinsumDense")) {}

 private:
  EinsumDense(const Config &config, ConfigReader &&r) : Layer("EinsumDense", r) {
    if (!r.has("equation")) fail(Code::kInvalidArgument, "EinsumDense: config key 'equation' is required");
    equation_ = r.get_string("equation", "");
    specs_ = parse_einsum_dense(equation_, "EinsumDense");
    if (!r.has("output_shape"))
      fail(Code::kInvalidArgument, "EinsumDense: config key 'output_shape' is required");
    const bool list = config.type("output_shape") == Config::Type::kList;
    output_shape_ = list ? config.get_dims("output_shape") : std::vector<int64_t>{r.get_int("output_shape")};
    for (int64_t d : output_shape_)
      if (d == 0 || d < -1 || (!list && d < 0))
        fail(Code::kInvalidArgument, "EinsumDense: output_shape has ", d,
             list ? "; expected positive sizes or null" : "; expected a positive size");
    bias_axes_ = r.get_optional_string("bias_axes");
    activation_ = get_activation(r.get_string("activation", "linear"));
    w_ = KernelBiasSettings::read(config, r);
    // Keras's LoRA and GPTQ keys: null is what an ordinary layer's config holds.
    for (const char *key : {"gptq_unpacked_column_size", "lora_alpha"})
      if (r.has(key))
        fail(Code::kUnimplemented, "EinsumDense: ", key, " (Keras's LoRA / GPTQ layers) is not supported");
    r.finish();
  }

  EinsumPlan plan(const PartialShape &s, bool shapes_only = false) const {
    return plan_einsum_dense(specs_, bias_axes_, s, output_shape_, describe(), shapes_only);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    const EinsumPlan p = plan(s);
    kernel_ = add_weight("kernel", Shape(p.kernel), dtype(),
                         *with_fan_axes(w_.kernel_init, p.input_axes, p.output_axes), true, w_.kernel_reg);
    if (p.bias) bias_ = add_weight("bias", Shape(*p.bias), dtype(), *w_.bias_init, true, w_.bias_reg);
    input_spec_.ndim = static_cast<int64_t>(s.size());
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {plan(single_input(*this, shapes), true).output};
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &in = single_input(*this, inputs);
    // The input's sizes must give the weights the build made (errors naming the layer and the axis).
    const EinsumPlan p = plan(in.shape().to_vector());
    if (Shape(p.kernel) != kernel_->value().shape() || (p.bias && Shape(*p.bias) != bias_->value().shape()))
      bad_input("the input ", in.description(), " needs a kernel of ", Shape(p.kernel).to_string(),
                p.bias ? " and a bias of " + Shape(*p.bias).to_string() : std::string(),
                "; the layer was built with ", kernel_->value().shape().to_string(),
                bias_ ? " and " + bias_->value().shape().to_string() : std::string(),
                " (from its first input's shape)");
    const Tensor x = is_floating(in.dtype()) ? in : ops::cast(in, compute_dtype());
    Tensor y = ops::einsum(equation_, {x, kernel_->read_for_op()});
    if (bias_) y = ops::add(y, bias_->read_for_op());
    y = activation_(y);
    if (w_.activity_reg) add_loss(activity_loss(*w_.activity_reg, y));
    return {y};
  }

  void add_config(Config &c) const override {
    c.set_dims("output_shape", output_shape_).set("equation", equation_).set("activation", activation_.name);
    c.set("bias_axes", bias_axes_);
    w_.write(c);
  }

  std::string equation_;
  EinsumSpecs specs_;
  std::vector<int64_t> output_shape_;
  std::optional<std::string> bias_axes_;
  Activation activation_;
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

// Dropout's and AlphaDropout's noise_shape: the mask's shape (None entries, -1 here, take the
// input's dim), or the input's shape when absent.
struct NoiseShape {
  std::vector<int64_t> dims;
  bool given = false;

  static NoiseShape read(ConfigReader &r) {
    NoiseShape n;
    n.given = r.has("noise_shape");
    if (n.given) n.dims = r.config().get_dims("noise_shape");
    for (int64_t d : n.dims)
      if (d < -1)
        fail(Code::kInvalidArgument, r.owner(), ": noise_shape has ", d, "; expected sizes >= 0 or None");
    return n;
  }
  void write(Config &c) const {
    if (given)
      c.set_dims("noise_shape", dims);
    else
      c.set_null("noise_shape");
  }
  // The concrete mask shape for x: each dim 1 or x's (an error naming the layer otherwise).
  Shape for_input(const Layer &l, const Tensor &x) const {
    if (!given) return x.shape();
    if (static_cast<int64_t>(dims.size()) != x.rank())
      l.bad_input("noise_shape ", Shape(dims).to_string(), " has rank ", dims.size(), "; the input ",
                  x.description(), " has rank ", x.rank());
    std::vector<int64_t> out(dims);
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] < 0) out[i] = x.shape()[static_cast<int>(i)];
      if (out[i] != 1 && out[i] != x.shape()[static_cast<int>(i)])
        l.bad_input("noise_shape ", Shape(dims).to_string(), " does not broadcast to the input ",
                    x.description(), "; each dim must be 1, the input's or None");
    }
    return Shape(out);
  }
};

// Dropout and AlphaDropout: rate, noise_shape and seed; their input outside training (or at rate 0).
class DropoutLike : public Layer {
 protected:
  DropoutLike(const char *class_name, ConfigReader &&r) : Layer(class_name, r) {
    rate_ = read_rate(r);
    noise_shape_ = NoiseShape::read(r);
    seed_ = read_seed(r);
    r.finish();
    set_supports_masking(true);
  }
  // The input in training.
  virtual Tensor drop(const Tensor &x) const = 0;
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (!ctx.training || rate_ == 0) return {x};
    return {drop(x)};
  }
  void add_config(Config &c) const override {  // Keras's order
    c.set("rate", rate_);
    write_seed(c, seed_);
    noise_shape_.write(c);
  }
  double rate_ = 0;
  NoiseShape noise_shape_;
  int64_t seed_ = -1;
};

class Dropout final : public DropoutLike {
 public:
  explicit Dropout(const Config &config) : DropoutLike("Dropout", ConfigReader(config, "Dropout")) {}

 private:
  Tensor drop(const Tensor &x) const override {
    return ops::dropout(x, static_cast<float>(rate_), true, seed_, noise_shape_.dims);
  }
};

// keras.layers.AlphaDropout(rate, noise_shape=None, seed=None): in training, dropped values take
// SELU's negative saturation -alpha * scale, then a * x + b keeps the mean and variance of a
// self-normalizing network (Klambauer et al. 2017), as Keras computes it; outside training, x.
class AlphaDropout final : public DropoutLike {
 public:
  explicit AlphaDropout(const Config &config)
      : DropoutLike("AlphaDropout", ConfigReader(config, "AlphaDropout")) {}

 private:
  Tensor drop(const Tensor &x) const override {
    if (!is_floating(x.dtype())) bad_input("the input is ", x.description(), "; expected a floating dtype");
    constexpr double kAlpha = 1.6732632423543772848170429916717, kScale = 1.0507009873554804934193349852946;
    const double alpha_p = -kAlpha * kScale;
    const double a = std::pow((1 - rate_) * (1 + rate_ * alpha_p * alpha_p), -0.5), b = -a * alpha_p * rate_;
    auto k = [&](double v) { return ops::fill(Shape{}, v, x.dtype()); };
    const Tensor u = ops::random_uniform(noise_shape_.for_input(*this, x), 0.0f, 1.0f, seed_);
    const Tensor kept = ops::cast(ops::greater_equal(u, ops::fill(Shape{}, rate_, u.dtype())), x.dtype());
    const Tensor dropped = ops::add(ops::mul(x, kept), ops::mul(k(alpha_p), ops::sub(k(1.0), kept)));
    return ops::add(ops::mul(k(a), dropped), k(b));
  }
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

// keras.layers.ActivityRegularization(l1=0.0, l2=0.0): its input (and mask), adding the activity
// loss l1 * sum(|x|) + l2 * sum(x^2) divided by the batch size (activity_loss), as a Keras layer with
// activity_regularizer L1L2(l1, l2). Each factor a finite number >= 0 (Keras's validate_float_arg).
class ActivityRegularization final : public Layer {
 public:
  explicit ActivityRegularization(const Config &config)
      : ActivityRegularization(ConfigReader(config, "ActivityRegularization")) {}

 private:
  explicit ActivityRegularization(ConfigReader &&r) : Layer("ActivityRegularization", r) {
    const double l1 = factor(r, "l1"), l2 = factor(r, "l2");
    r.finish();
    reg_ = std::make_shared<Regularizer>(l1, l2);
    set_supports_masking(true);
  }
  static double factor(ConfigReader &r, const char *key) {
    const double v = r.has(key) ? r.get_float(key, 0.0) : 0.0;
    if (!std::isfinite(v) || v < 0)
      fail(Code::kInvalidArgument, r.owner(), ": ", key, " is ", v, "; expected a finite number >= 0");
    return v;
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    if (!is_floating(x.dtype())) bad_input("input is ", x.description(), "; expected a floating dtype");
    add_loss(activity_loss(*reg_, x));
    return {x};
  }
  void add_config(Config &c) const override { c.set("l1", reg_->l1()).set("l2", reg_->l2()); }
  RegularizerPtr reg_;
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

// ------------------------------------------------------------------ CategoryEncoding

// keras.layers.CategoryEncoding(num_tokens, output_mode="multi_hot", sparse=False): integer
// token ids in [0, num_tokens) encoded over a last axis of num_tokens. "one_hot": one row per
// id (a trailing axis of 1 replaced); "multi_hot" and "count": the ids along axis 1 together (the
// ids of each sample of [batch, n]; a rank-1 input is one sample; [batch, n, m] gives [batch, m,
// num_tokens], as Keras 3 reduces axis 1), 1 where a token occurs or how often (the sum of
// count_weights, an optional second input of the ids' shape), in the compute dtype. A
// scalar is one sample of one id. Float ids are read as they come (no autocast: a bfloat16 policy
// must not round id 257 to 256), truncated as Keras's cast. Ids outside the range are an error
// (TF's bincount drops them without a word).
class CategoryEncoding final : public Layer {
 public:
  explicit CategoryEncoding(const Config &config)
      : CategoryEncoding(ConfigReader(config, "CategoryEncoding")) {}

 private:
  explicit CategoryEncoding(ConfigReader &&r) : Layer("CategoryEncoding", r) {
    if (!r.has("num_tokens"))
      fail(Code::kInvalidArgument,
           "CategoryEncoding: num_tokens must be set (use IntegerLookup when the number of "
           "tokens is not known beforehand)");
    num_tokens_ = r.get_int("num_tokens");
    if (num_tokens_ < 1)
      fail(Code::kInvalidArgument, "CategoryEncoding: num_tokens must be >= 1; got ", num_tokens_);
    mode_ = r.get_string("output_mode", "multi_hot");
    if (mode_ == "binary") mode_ = "multi_hot";  // Keras's deprecated name
    if (mode_ != "count" && mode_ != "one_hot" && mode_ != "multi_hot")
      fail(Code::kInvalidArgument, "CategoryEncoding: output_mode '", mode_,
           "' is not one of 'count', 'one_hot', 'multi_hot'");
    if (r.get_bool("sparse", false))
      fail(Code::kUnimplemented, "CategoryEncoding: sparse=True (sparse outputs) is not supported");
    r.finish();
    set_autocast(false);  // Keras's _convert_input_args = False
  }

  // The ids as int64 (a scalar as one sample), each checked against the range.
  Tensor ids_of(const Tensor &x) const {
    if (!is_integer(x.dtype()) && !is_floating(x.dtype()))
      bad_input("the input is ", x.description(), "; expected integer token ids");
    if (is_floating(x.dtype())) {  // truncated as Keras's cast, once known to be finite
      const Tensor f = ops::cast(x, DType::kFloat64);
      for (int64_t i = 0; i < f.num_elements(); ++i)
        if (!std::isfinite(f.data<double>()[i]))
          bad_input("token id ", f.data<double>()[i], " at flat index ", i, " is not a number of a token");
    }
    Tensor ids = ops::cast(x, DType::kInt64);
    if (ids.rank() == 0) ids = ops::reshape(ids, {1});
    const int64_t *v = ids.data<int64_t>();
    for (int64_t i = 0; i < ids.num_elements(); ++i)
      if (v[i] < 0 || v[i] >= num_tokens_)
        bad_input("token id ", v[i], " at flat index ", i, " is out of range; expected ids in [0, ",
                  num_tokens_, ")");
    return ids;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    if (inputs.empty() || inputs.size() > 2)
      bad_input("got ", inputs.size(),
                " inputs; expected the token ids, and count_weights for output_mode 'count'");
    const Tensor ids = ids_of(inputs[0]);
    Tensor weights = inputs.size() == 2 ? inputs[1] : Tensor();
    if (weights.defined()) {
      if (mode_ != "count")
        bad_input("count_weights is used only with output_mode 'count'; this layer's output_mode is '", mode_,
                  "'");
      if (!is_floating(weights.dtype()) && !is_integer(weights.dtype()))
        bad_input("count_weights is ", weights.description(), "; expected numbers");
      weights = ops::cast(weights, compute_dtype());  // as Keras converts them
      if (weights.rank() == 0) weights = ops::reshape(weights, {1});
      if (weights.shape() != ids.shape())
        bad_input("count_weights ", inputs[1].description(), " does not match the ids ",
                  inputs[0].description());
    }
    return {encode_categorical(ids, mode_, num_tokens_, compute_dtype(), weights)};
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {encoded_shape(shapes.at(0), mode_, num_tokens_)};
  }

  void add_config(Config &c) const override {
    c.set("num_tokens", num_tokens_).set("output_mode", mode_).set("sparse", false);
  }

  int64_t num_tokens_;
  std::string mode_;
};

}  // namespace

void register_core_layers() {
  register_class<Dense>("Dense");
  register_class<EinsumDense>("EinsumDense");
  register_class<ActivationLayer>("Activation");
  register_class<Dropout>("Dropout");
  register_class<AlphaDropout>("AlphaDropout");
  register_class<Flatten>("Flatten");
  register_class<Reshape>("Reshape");
  register_class<Embedding>("Embedding");
  register_class<Masking>("Masking");
  register_class<Identity>("Identity");
  register_class<ActivityRegularization>("ActivityRegularization");
  register_class<Rescaling>("Rescaling");
  register_class<CategoryEncoding>("CategoryEncoding");
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
    register_conv_lstm_layers();
    register_wrapper_layers();
    register_preprocessing_layers();
    register_lookup_layers();
    register_image_augmentation_layers();
  });
}

}  // namespace kiln::layers

// Layer wrappers: keras.layers.Bidirectional, TimeDistributed and SpectralNormalization. Each holds layers
// made from the serialized layer in its config (as Keras deserializes a copy of the layer it is given),
// tracked under Keras's attributes, so weight paths ("bidirectional/forward_lstm/lstm_cell/kernel") and
// checkpoint edges ("forward_layer/cell/kernel", "layer/kernel") are Keras's.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/initializers.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

std::string without_prefix(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0 ? s.substr(prefix.size()) : s;
}

using ConfigChanges = std::vector<std::pair<std::string, Config::Json>>;

// The layer of a serialized config with some of its config keys replaced.
LayerPtr make_with(Config serialized, const ConfigChanges &changes) {
  Config inner = serialized.has("config") ? serialized.get_config("config") : Config();
  Config::Json json = inner.json();
  for (const auto &[k, v] : changes) json[k] = v;
  serialized.set("config", Config::from_value(std::move(json), "layer config"));
  return deserialize_layer(serialized);
}

// Keras's force_zero_output_for_mask: a recurrent layer's zero_output_for_mask follows its
// return_sequences (a layer without them is left alone).
ConfigChanges with_zero_output(const Config &inner, ConfigChanges changes) {
  if (inner.has("return_sequences") && inner.type("return_sequences") == Config::Type::kBool)
    changes.emplace_back("zero_output_for_mask", inner.get_bool("return_sequences"));
  return changes;
}

// The states a recurrent layer returns with return_state: its cell's (the layer's first sub-layer: an
// RNN's cell, or LSTM's lstm_cell); one for a layer without a cell.
size_t state_count(const Layer &l) {
  const std::vector<int64_t> sizes =
      l.layers().empty() ? std::vector<int64_t>{} : l.layers()[0]->state_size();
  return sizes.empty() ? 1 : sizes.size();
}

bool config_bool(const Layer &l, const char *key) {
  const Config c = l.get_config();
  return c.has(key) && c.type(key) == Config::Type::kBool && c.get_bool(key);
}

// keras.layers.Bidirectional(layer, merge_mode="concat", backward_layer=None): a recurrent layer run
// forwards and, as a copy with go_backwards=True (or backward_layer), backwards over the same
// sequences; with return_sequences the backward outputs are flipped back into time order, then the
// two are merged ("concat" on the last axis, "sum", "ave", "mul", or null: both outputs). Inputs: the
// sequences, then optionally the initial states, the forward layer's first and the backward layer's
// after. Outputs: the merged output(s), then the forward layer's final states and the backward's
// with return_state. As Keras, each layer's zero_output_for_mask is set to its return_sequences.
class Bidirectional final : public Layer {
 public:
  explicit Bidirectional(const Config &config) : Bidirectional(ConfigReader(config, "Bidirectional")) {}

 private:
  explicit Bidirectional(ConfigReader &&r) : Layer("Bidirectional", r) {
    // The layer's full config (defaults written out), through a layer made from it.
    const Config layer = serialize_layer(*deserialize_layer(wrapped_config(r, "layer")));
    if (!r.has("merge_mode")) {
      merge_mode_ = r.config().has("merge_mode") ? "" : "concat";  // null: no merge
    } else {
      merge_mode_ = r.get_string("merge_mode", "concat");
      if (merge_mode_ != "concat" && merge_mode_ != "sum" && merge_mode_ != "ave" && merge_mode_ != "mul")
        fail(Code::kInvalidArgument, "Bidirectional: merge_mode '", merge_mode_,
             "' must be one of 'sum', 'mul', 'ave', 'concat' or null");
    }
    std::optional<Config> backward;
    if (r.config().has("backward_layer") && !r.config().is_null("backward_layer"))
      backward = serialize_layer(*deserialize_layer(wrapped_config(r, "backward_layer")));
    r.accept({"backward_layer"});
    r.finish();
    const Config inner = layer.has("config") ? layer.get_config("config") : Config();
    if (!inner.has("go_backwards") && !backward)
      fail(Code::kInvalidArgument, "Bidirectional: the layer (", layer.get_string("class_name"),
           ") has no go_backwards; expected a recurrent layer (SimpleRNN, GRU, LSTM) or a backward_layer");
    const std::string name = inner.has("name") ? inner.get_string("name") : "";
    forward_ =
        make_with(layer, with_zero_output(inner, {{"name", "forward_" + without_prefix(name, "forward_")}}));
    if (backward) {
      const Config b = backward->has("config") ? backward->get_config("config") : Config();
      backward_ = make_with(*backward, with_zero_output(b, {}));
    } else {
      backward_ =
          make_with(layer, with_zero_output(inner, {{"name", "backward_" + without_prefix(name, "backward_")},
                                                    {"go_backwards", true}}));
    }
    if (config_bool(*forward_, "go_backwards") == config_bool(*backward_, "go_backwards"))
      fail(Code::kInvalidArgument,
           "Bidirectional: the forward and backward layers must have different "
           "go_backwards values; both have ",
           config_bool(*forward_, "go_backwards"));
    for (const char *a : {"return_sequences", "return_state"})
      if (config_bool(*forward_, a) != config_bool(*backward_, a))
        fail(Code::kInvalidArgument, "Bidirectional: the forward and backward layers must have the same ", a,
             "; got ", config_bool(*forward_, a), " and ", config_bool(*backward_, a));
    return_sequences_ = config_bool(*forward_, "return_sequences");
    return_state_ = config_bool(*forward_, "return_state");
    forward_states_ = state_count(*forward_);
    backward_states_ = state_count(*backward_);
    track(forward_, "forward_layer");
    track(backward_, "backward_layer");
  }

  // The inputs of each layer: the sequences, then its half of the initial states.
  template <typename T>
  std::pair<std::vector<T>, std::vector<T>> split(const std::vector<T> &s) const {
    if (s.empty()) bad_input("expected the sequences, then optionally the initial states");
    if ((s.size() - 1) % 2 != 0)
      bad_input("got " + std::to_string(s.size() - 1) +
                " initial states; expected an even number, the forward layer's then the backward layer's");
    const size_t half = (s.size() - 1) / 2;
    std::vector<T> f{s[0]}, b{s[0]};
    f.insert(f.end(), s.begin() + 1, s.begin() + 1 + long(half));
    b.insert(b.end(), s.begin() + 1 + long(half), s.end());
    return {f, b};
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const auto [f, b] = split(shapes);
    forward_->build(f);
    backward_->build(b);
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    const Tensor mask = masks.empty() ? Tensor() : masks[0];
    if (!mask.defined() || !return_sequences_) return {};
    std::vector<Tensor> out(merge_mode_.empty() ? 2 : 1, mask);
    if (return_state_) out.resize(out.size() + forward_states_ + backward_states_, Tensor());
    return out;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const auto [fin, bin] = split(inputs);
    const Tensor *mask = input_mask(ctx, 0);
    auto run = [&](Layer &l, const std::vector<Tensor> &in) {
      std::vector<Tensor> masks;
      CallContext c = ctx;
      c.mask = nullptr;
      if (mask) {
        masks.assign(in.size(), Tensor());
        masks[0] = *mask;
        c.mask = &masks;
      }
      return l.call(in, c).outputs;
    };
    std::vector<Tensor> y = run(*forward_, fin), y_rev = run(*backward_, bin);
    if (y.empty() || y_rev.empty() || (!return_state_ && (y.size() != 1 || y_rev.size() != 1)))
      bad_input("the forward and backward layers gave " + std::to_string(y.size()) + " and " +
                std::to_string(y_rev.size()) + " outputs; expected one each without return_state");
    Tensor a = y[0], b = y_rev[0];
    if (return_sequences_) {  // the backward outputs back in time order
      const int64_t steps = b.shape()[1];
      b = ops::gather(b, ops::range_int64(steps - 1, -1, -1), 1);
    }
    std::vector<Tensor> out;
    if (merge_mode_ == "concat")
      out.push_back(ops::concat({a, b}, -1));
    else if (merge_mode_ == "sum")
      out.push_back(ops::add(a, b));
    else if (merge_mode_ == "ave")
      out.push_back(ops::div(ops::add(a, b), ops::fill(Shape({}), 2.0, a.dtype())));
    else if (merge_mode_ == "mul")
      out.push_back(ops::mul(a, b));
    else
      out = {a, b};
    if (return_state_) {
      out.insert(out.end(), y.begin() + 1, y.end());
      out.insert(out.end(), y_rev.begin() + 1, y_rev.end());
    }
    return out;
  }

  void add_config(Config &c) const override {
    if (merge_mode_.empty())
      c.set_null("merge_mode");
    else
      c.set("merge_mode", merge_mode_);
    c.set("layer", serialize_layer(*forward_)).set("backward_layer", serialize_layer(*backward_));
  }

  std::string merge_mode_;  // empty: null
  LayerPtr forward_, backward_;
  bool return_sequences_ = false, return_state_ = false;
  size_t forward_states_ = 1, backward_states_ = 1;  // the states each returns with return_state (LSTM: 2)
};

// keras.layers.TimeDistributed(layer): the layer applied to every step of [B, T, ...]: in training once
// per step, as Keras (batch statistics per step), in inference as one call over [B * T, ...] (the same
// values for layers that treat rows apart), the outputs shaped [B, T, ...]. The input's mask passes
// through.
class TimeDistributed final : public Layer {
 public:
  explicit TimeDistributed(const Config &config) : TimeDistributed(ConfigReader(config, "TimeDistributed")) {}

 private:
  explicit TimeDistributed(ConfigReader &&r) : Layer("TimeDistributed", r) {
    inner_ = deserialize_layer(wrapped_config(r, "layer"));
    r.finish();
    track(inner_, "layer");
    set_supports_masking(true);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    if (s.size() < 3)
      bad_input("input has shape ", partial_shape_string(s), "; expected rank >= 3 (batch, time, ...)");
    PartialShape step{s[0] >= 0 && s[1] >= 0 ? s[0] * s[1] : kUnknownDim};
    step.insert(step.end(), s.begin() + 2, s.end());
    inner_->build({step});
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor &x = single_input(*this, inputs);
    if (x.rank() < 3) bad_input("input is ", x.description(), "; expected rank >= 3 (batch, time, ...)");
    const int64_t batch = x.shape()[0], steps = x.shape()[1];
    std::vector<int64_t> flat{batch * steps};
    for (int i = 2; i < x.rank(); ++i) flat.push_back(x.shape()[i]);
    CallContext c = ctx;
    c.mask = nullptr;
    if (ctx.training) return per_step(x, c);
    std::vector<Tensor> out = inner_->call({ops::reshape(x, flat)}, c).outputs;
    for (Tensor &y : out) {
      if (y.rank() < 1 || y.shape()[0] != batch * steps)
        bad_input("the wrapped layer gave ", y.description(), " for ", batch * steps,
                  " steps; expected one row per step");
      std::vector<int64_t> back{batch, steps};
      for (int i = 1; i < y.rank(); ++i) back.push_back(y.shape()[i]);
      y = ops::reshape(y, back);
    }
    return out;
  }

  // Keras calls the layer once per step (a training BatchNormalization then normalizes each step by
  // its own batch statistics); the outputs are stacked on axis 1.
  std::vector<Tensor> per_step(const Tensor &x, const CallContext &c) {
    const int64_t steps = x.shape()[1];
    const std::vector<Tensor> parts = ops::split(x, {}, steps, 1);
    std::vector<std::vector<Tensor>> outs;
    for (const Tensor &p : parts) {
      std::vector<int64_t> dims = p.shape().to_vector();
      dims.erase(dims.begin() + 1);
      const std::vector<Tensor> y = inner_->call({ops::reshape(p, dims)}, c).outputs;
      if (!outs.empty() && y.size() != outs.size())
        bad_input("the wrapped layer gave ", y.size(), " outputs after ", outs.size());
      outs.resize(y.size());
      for (size_t i = 0; i < y.size(); ++i) outs[i].push_back(y[i]);
    }
    std::vector<Tensor> out;
    for (const auto &o : outs) out.push_back(ops::stack(o, 1));
    return out;
  }

  void add_config(Config &c) const override { c.set("layer", serialize_layer(*inner_)); }

  LayerPtr inner_;
};

// keras.layers.SpectralNormalization(layer, power_iterations=1): the wrapped layer's kernel (or, without
// one, its embeddings, or DepthwiseConv's depthwise_kernel, which Keras 3 names kernel) divided by its
// largest singular value before each training call, estimated by power iteration on the kernel as a [-1,
// units] matrix from a kept vector u ([1, units], the non-trainable weight "vector_u",
// TruncatedNormal(stddev=0.02)): v = normalize(u W^T), u = normalize(v W) (normalize: x * rsqrt(max(sum x^2,
// 1e-14))), sigma = v W u^T. As Keras, the kernel variable itself is assigned the normalized value (a kernel
// of zeros is left alone), outside any tape, so the gradient is the wrapped layer's. Inference calls the
// layer as it is. Floating outputs are cast to a floating input's dtype, as Keras casts them (Keras also
// casts for integer inputs, which would truncate an Embedding's vectors; kiln does not).
class SpectralNormalization final : public Layer {
 public:
  explicit SpectralNormalization(const Config &config)
      : SpectralNormalization(ConfigReader(config, "SpectralNormalization")) {}

 private:
  explicit SpectralNormalization(ConfigReader &&r) : Layer("SpectralNormalization", r) {
    inner_ = deserialize_layer(wrapped_config(r, "layer"));
    iterations_ = r.get_int("power_iterations", 1);
    if (iterations_ <= 0 || iterations_ > 1000)
      fail(Code::kInvalidArgument, "SpectralNormalization: power_iterations must be in [1, 1000]; got ",
           iterations_);
    r.finish();
    track(inner_, "layer");
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    inner_->build(shapes);
    // depthwise_kernel: DepthwiseConv's, which Keras 3 names kernel.
    for (const char *name : {"kernel", "embeddings", "depthwise_kernel"})
      for (const auto &[n, v] : inner_->own_weights())
        if (!kernel_ && n == name) kernel_ = v;
    if (!kernel_)
      bad_input("the wrapped layer '", inner_->name(), "' (", inner_->class_name(),
                ") has no weight 'kernel' nor 'embeddings'");
    const Shape &k = kernel_->shape();
    if (k.rank() < 1 || k.num_elements() == 0)
      bad_input("the wrapped layer's ", kernel_->name(), " has shape ", k.to_string(),
                "; expected a non-empty kernel");
    Config init;
    init.set("stddev", 0.02);
    Config serialized;
    serialized.set("class_name", "TruncatedNormal").set("config", init);
    vector_u_ = add_weight("vector_u", Shape({1, k[k.rank() - 1]}), kernel_->dtype(),
                           *deserialize_initializer(serialized), false);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    if (ctx.training) normalize_kernel();
    std::vector<Tensor> out = inner_->call(inputs, ctx).outputs;
    const DType in = inputs.empty() ? DType::kFloat32 : inputs[0].dtype();
    for (Tensor &y : out)
      if (is_floating(in) && is_floating(y.dtype()) && y.dtype() != in) y = ops::cast(y, in);
    return out;
  }

  // One power-iteration estimate of the kernel's largest singular value; the kernel divided by it and
  // u kept, both by assignment.
  void normalize_kernel() {
    const Tensor kernel = kernel_->peek();
    if (!*ops::reduce_any(ops::not_equal(kernel, ops::zeros_like(kernel))).data<bool>()) return;
    const int64_t units = kernel.shape()[kernel.rank() - 1];
    const Tensor w = ops::reshape(kernel, {-1, units});
    const auto normalize = [](const Tensor &x) {
      const Tensor floor = ops::fill(Shape({}), 1e-14, x.dtype());
      return ops::mul(x, ops::rsqrt(ops::maximum(ops::sum(ops::square(x)), floor)));
    };
    Tensor u = vector_u_->peek(), v;
    for (int64_t i = 0; i < iterations_; ++i) {
      v = normalize(ops::matmul(u, w, false, true));
      u = normalize(ops::matmul(v, w));
    }
    const Tensor sigma = ops::matmul(ops::matmul(v, w), u, false, true);  // [1, 1]
    vector_u_->assign(u);
    kernel_->assign(ops::div(kernel, ops::reshape(sigma, {})));
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return inner_->compute_output_shape(shapes);
  }
  void add_config(Config &c) const override {
    c.set("layer", serialize_layer(*inner_));
    c.set("power_iterations", iterations_);
  }

  LayerPtr inner_;
  int64_t iterations_ = 1;
  VariablePtr kernel_, vector_u_;
};

}  // namespace

void register_wrapper_layers() {
  register_class<Bidirectional>("Bidirectional");
  register_class<TimeDistributed>("TimeDistributed");
  register_class<SpectralNormalization>("SpectralNormalization");
}

}  // namespace kiln::layers

// keras.layers.ConvLSTM1D / ConvLSTM2D / ConvLSTM3D, as Keras 3 computes them: an LSTM whose input and
// recurrent transformations are convolutions. Channels last: sequences [B, T, spatial..., C] (rank 1,
// 2 or 3 spatial axes); the states h and c are [B, out spatial..., filters], the out spatial size
// being the input convolution's (kernel_size, strides, padding, dilation_rate). Each step:
//   z = conv(x_t, kernel) + bias + conv(h, recurrent_kernel)   (the recurrent one: strides 1, "same")
//   i, f, o = recurrent_activation(z_i, z_f, z_o); c' = f * c + i * activation(z_c);
//   h' = o * activation(c')
// Weights as Keras names and lays them out (checkpoint edges "cell/kernel", ...): the layer's cell
// "conv_lstm_cell" holds kernel [k..., C, 4 * filters], recurrent_kernel [k..., filters, 4 * filters]
// and bias [4 * filters], gates in Keras's order i, f, c, o.
//
// The input convolutions of every step run as one convolution over [B * T, spatial..., C]; the loop
// then runs the recurrent convolution and the gates per step from eager ops, so the tape
// differentiates through time. Masks, go_backwards, return_sequences, return_state and
// zero_output_for_mask behave as in the other RNN layers (recurrent_layers.cc). Dropout masks (one
// per gate, for the input and for h) are drawn once per call, when training with a rate strictly
// between 0 and 1, and used at every step, as Keras's DropoutRNNCell keeps them.
//
// The window ops compute in float32 (conv_util.h): float32 and bfloat16 layers; mixed_bfloat16
// computes in float32 and rounds the outputs once.
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "layers/activations.h"
#include "layers/builtins.h"
#include "layers/conv_util.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "layers/policy.h"
#include "layers/recurrent_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

constexpr int64_t kGates = 4;

const char *class_of(size_t rank) {
  return rank == 1 ? "ConvLSTM1D" : rank == 2 ? "ConvLSTM2D" : "ConvLSTM3D";
}

// Keras's ConvLSTMCell arguments, which its layer passes on.
struct ConvLstmSpec : RecurrentWeights {
  size_t rank = 2;
  int64_t filters = 0;
  std::vector<int64_t> kernel_size, strides, dilation;
  std::string padding;
  Activation activation, recurrent_activation;
  bool use_bias = true, unit_forget_bias = true;
  double dropout = 0, recurrent_dropout = 0;
  int64_t seed = -1;
};

std::shared_ptr<const ConvLstmSpec> read_spec(const Config &config, ConfigReader &r, size_t rank) {
  auto spec = std::make_shared<ConvLstmSpec>();
  ConvLstmSpec &s = *spec;
  s.rank = rank;
  s.filters = r.get_int("filters");
  if (s.filters < 1 || s.filters > INT64_MAX / kGates)
    fail(Code::kInvalidArgument, r.owner(), ": filters must be positive and at most ", INT64_MAX / kGates,
         " (the kernel holds 4 gates of them); got ", s.filters);
  s.kernel_size = required_tuple(r, "kernel_size", rank);
  s.strides = tuple_of(r, "strides", r.get_int_list("strides", {1}), rank, 1);
  s.padding = read_padding(r, false);
  read_data_format(r);
  s.dilation = tuple_of(r, "dilation_rate", r.get_int_list("dilation_rate", {1}), rank, 1);
  check_window_span(r.owner(), s.kernel_size, s.dilation);
  check_strides_or_dilation(r.owner(), s.strides, s.dilation);
  s.activation = get_activation(r.get_string("activation", "tanh"));
  s.recurrent_activation = get_activation(r.get_string("recurrent_activation", "sigmoid"));
  s.use_bias = r.get_bool("use_bias", true);
  s.read_weights(config, r);
  s.unit_forget_bias = r.get_bool("unit_forget_bias", true);
  s.dropout = clamped_rate(r, "dropout");
  s.recurrent_dropout = clamped_rate(r, "recurrent_dropout");
  s.seed = read_seed(r);
  return spec;
}

// Gate g's filters of a kernel [k..., in, 4 * filters] or a bias [4 * filters] (its last axis).
Tensor gate_of(const Tensor &w, int64_t g, int64_t filters) {
  std::vector<int64_t> begin(size_t(w.rank()), 0), size = w.shape().to_vector();
  begin.back() = g * filters;
  size.back() = filters;
  return ops::slice(w, begin, size);
}

// Dropout masks for one call: per gate, for the inputs [B, spatial..., C] and for h [B, out..., F].
struct ConvLstmMasks {
  std::vector<Tensor> input, recurrent;
};

// Keras 3's ConvLSTMCell: the weights and one step. The layer runs it over the sequence; called on
// its own (a sub-layer reached through the layer) it takes [x, h, c] and gives [h', h', c'].
class ConvLstmCell final : public Layer {
 public:
  ConvLstmCell(const Config &base, std::shared_ptr<const ConvLstmSpec> spec)
      : ConvLstmCell(ConfigReader(base, "ConvLSTMCell"), std::move(spec)) {}

  VariablePtr kernel, recurrent_kernel, bias;

  // Two states, h and c (Keras's state_size is -1 here: their shapes follow the input's).
  std::vector<int64_t> state_size() const override { return {spec_->filters, spec_->filters}; }
  int64_t output_size() const override { return spec_->filters; }
  int64_t input_dim() const { return input_dim_; }
  const std::vector<int64_t> &spatial() const { return spatial_; }

  // The states' shape [batch, out..., filters] for inputs of shape `inputs` whose spatial dims start
  // at axis `first` (a step's: 1, a sequence's: 2); unknown stays unknown. Errors name owner.
  PartialShape state_shape(const Layer &owner, const PartialShape &inputs, size_t first) const {
    const ConvLstmSpec &s = *spec_;
    PartialShape out{inputs[0]};
    for (size_t i = 0; i < s.rank; ++i)
      out.push_back(window_output_length(owner, inputs, inputs[first + i], s.kernel_size[i], s.strides[i],
                                         s.dilation[i], s.padding));
    out.push_back(s.filters);
    return out;
  }

  struct Weights {
    Tensor kernel, rec, bias;
  };
  Weights read_weights() const {
    Weights w;
    w.kernel = f32_compute(kernel->read_for_op());
    w.rec = f32_compute(recurrent_kernel->read_for_op());
    if (bias) w.bias = f32_compute(bias->read_for_op());
    return w;
  }

  ConvLstmMasks draw_masks(const Shape &input, const Shape &state, bool training) const {
    const ConvLstmSpec &s = *spec_;
    const auto draw = [&](const Shape &shape, double rate, int64_t seed) {
      std::vector<Tensor> m;
      if (!training || !(rate > 0 && rate < 1)) return m;
      // Keras's get_dropout_mask: ones dropped at rate and scaled by 1 / (1 - rate), one per gate.
      std::vector<int64_t> all = shape.to_vector();
      all.insert(all.begin(), kGates);
      const Tensor drawn =
          ops::dropout(ops::ones(Shape(all), DType::kFloat32), static_cast<float>(rate), true, seed);
      for (const Tensor &g : ops::split(drawn, {}, kGates, 0))
        m.push_back(ops::reshape(g, shape.to_vector()));
      return m;
    };
    ConvLstmMasks m;
    m.input = draw(input, s.dropout, s.seed);
    m.recurrent = draw(state, s.recurrent_dropout, recurrent_seed(s.seed));
    return m;
  }

  // The input convolutions (with the bias) of sequences x [B, T, spatial..., C] in float32:
  // [B, T, out..., 4 * filters], one convolution over [B * T, ...] (one per gate with dropout).
  Tensor project(const Tensor &x, const ConvLstmMasks &m, const Weights &w) const {
    const ConvLstmSpec &s = *spec_;
    const int64_t batch = x.shape()[0], steps = x.shape()[1];
    std::vector<int64_t> flat = x.shape().to_vector();
    flat.erase(flat.begin());
    flat[0] = batch * steps;
    const ops::Padding p = to_padding(s.padding);
    const auto conv = [&](const Tensor &xs, const Tensor &k, const Tensor &b) {
      const Tensor y = convolution(ops::reshape(xs, flat), k, s.strides, s.dilation, p);
      return b.defined() ? ops::bias_add(y, b) : y;
    };
    Tensor y;
    if (m.input.empty()) {
      y = conv(x, w.kernel, w.bias);
    } else {
      std::vector<Tensor> parts;
      for (int64_t g = 0; g < kGates; ++g)
        parts.push_back(conv(ops::mul(x, ops::expand_dims(m.input[size_t(g)], 1)),
                             gate_of(w.kernel, g, s.filters),
                             w.bias.defined() ? gate_of(w.bias, g, s.filters) : Tensor()));
      y = ops::concat(parts, -1);
    }
    std::vector<int64_t> out = y.shape().to_vector();
    out[0] = steps;
    out.insert(out.begin(), batch);
    return ops::reshape(y, out);
  }

  // One step from the projected input xt [B, out..., 4 * filters]: {h', c'}.
  std::vector<Tensor> step(const Tensor &xt, const Tensor &h, const Tensor &c, const Weights &w,
                           const ConvLstmMasks &m) const {
    const ConvLstmSpec &s = *spec_;
    const std::vector<int64_t> ones(s.rank, 1);
    const auto rec = [&](const Tensor &hs, const Tensor &k) {
      return convolution(hs, k, ones, ones, ops::Padding::kSame);
    };
    Tensor r;
    if (m.recurrent.empty()) {
      r = rec(h, w.rec);
    } else {
      std::vector<Tensor> parts;
      for (int64_t g = 0; g < kGates; ++g)
        parts.push_back(rec(ops::mul(h, m.recurrent[size_t(g)]), gate_of(w.rec, g, s.filters)));
      r = ops::concat(parts, -1);
    }
    const std::vector<Tensor> z = ops::split(ops::add(xt, r), {}, kGates, -1);
    const Tensor i = s.recurrent_activation(z[0]), f = s.recurrent_activation(z[1]);
    const Tensor c2 = ops::add(ops::mul(f, c), ops::mul(i, s.activation(z[2])));
    const Tensor o = s.recurrent_activation(z[3]);
    return {ops::mul(o, s.activation(c2)), c2};
  }

 private:
  ConvLstmCell(ConfigReader &&r, std::shared_ptr<const ConvLstmSpec> spec)
      : Layer("ConvLSTMCell", r), spec_(std::move(spec)) {
    r.finish();
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const ConvLstmSpec &s = *spec_;
    if (shapes.empty() || shapes[0].size() != s.rank + 2)
      bad_input("needs a step's shape (batch, spatial..., channels) of rank ", s.rank + 2, " to build; got ",
                shapes.empty() ? std::string("none") : partial_shape_string(shapes[0]));
    const PartialShape &in = shapes[0];
    spatial_.clear();
    for (size_t i = 1; i <= s.rank; ++i) spatial_.push_back(known_dim(*this, in, i, "spatial dimension"));
    input_dim_ = known_dim(*this, in, s.rank + 1, "channel dimension (the last)");
    state_shape(*this, in, 1);  // the window must fit
    std::vector<int64_t> k = s.kernel_size, rk = s.kernel_size;
    k.insert(k.end(), {input_dim_, kGates * s.filters});
    rk.insert(rk.end(), {s.filters, kGates * s.filters});
    kernel = add_weight("kernel", Shape(k), dtype(), *s.kernel_init, true, s.kernel_reg);
    recurrent_kernel =
        add_weight("recurrent_kernel", Shape(rk), dtype(), *s.recurrent_init, true, s.recurrent_reg);
    if (!s.use_bias) return;
    if (s.unit_forget_bias)
      bias = add_weight("bias", Shape({kGates * s.filters}), dtype(), UnitForgetBias(s.bias_init, s.filters),
                        true, s.bias_reg);
    else
      bias = add_weight("bias", Shape({kGates * s.filters}), dtype(), *s.bias_init, true, s.bias_reg);
  }

  // The input's shape must be the one the cell was built for (Keras's input_spec).
  void check_input(const Shape &x) const {
    std::vector<int64_t> want{x.rank() > 0 ? x[0] : 0};
    want.insert(want.end(), spatial_.begin(), spatial_.end());
    want.push_back(input_dim_);
    if (x.to_vector() != want)
      bad_input("input has shape ", x.to_string(), "; expected ",
                partial_shape_string(partial_shape_of(Shape(want))),
                " (batch, spatial..., channels) as built");
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    if (inputs.size() != 3)
      bad_input("got ", inputs.size(), " inputs; expected the input, then its states h and c");
    const Tensor &x = inputs[0];
    if (!is_floating(x.dtype())) bad_input("input is ", x.description(), "; expected a floating dtype");
    check_input(x.shape());
    const PartialShape st = state_shape(*this, partial_shape_of(x.shape()), 1);
    for (size_t i = 1; i < 3; ++i)
      if (partial_shape_of(inputs[i].shape()) != st)
        bad_input("state ", i == 1 ? "h" : "c", " has shape ", inputs[i].shape().to_string(), "; expected ",
                  partial_shape_string(st));
    const Tensor xf = ops::cast(x, DType::kFloat32);
    const ConvLstmMasks m = draw_masks(xf.shape(), inputs[1].shape(), ctx.training);
    const Weights w = read_weights();
    const Tensor xt = ops::squeeze(project(ops::expand_dims(xf, 1), m, w), {1});
    std::vector<Tensor> next =
        step(xt, ops::cast(inputs[1], DType::kFloat32), ops::cast(inputs[2], DType::kFloat32), w, m);
    next.insert(next.begin(), next[0]);
    for (Tensor &y : next) y = ops::cast(y, compute_dtype());
    return next;
  }

  std::shared_ptr<const ConvLstmSpec> spec_;
  std::vector<int64_t> spatial_;
  int64_t input_dim_ = -1;
};

// keras.layers.ConvLSTM1D / 2D / 3D(filters, kernel_size, strides=1, padding="valid",
// data_format=None, dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
// use_bias=True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
// bias_initializer="zeros", unit_forget_bias=True, regularizers, dropout=0, recurrent_dropout=0,
// seed=None, return_sequences=False, return_state=False, go_backwards=False, stateful=False).
// Inputs: the sequences [B, T, spatial..., C], then optionally h0 and c0 ([B, out..., filters]).
// Outputs: the last h (or every step's, [B, T, out..., filters]), then h and c with return_state.
class ConvLstm final : public Layer {
 public:
  ConvLstm(const Config &config, size_t rank)
      : ConvLstm(config, ConfigReader(config, class_of(rank)), rank) {}

 private:
  ConvLstm(const Config &config, ConfigReader &&r, size_t rank) : Layer(class_of(rank), r) {
    require_float32_layer(*this);
    spec_ = read_spec(config, r, rank);
    activity_reg_ = regularizer_from_value(config, "activity_regularizer");
    r.accept({"activity_regularizer"});
    flags_ = LoopFlags::read(r);
    r.finish();
    Config base;
    base.set("name", "conv_lstm_cell").set("trainable", trainable());
    set_policy_config(base, "dtype", dtype_policy());
    cell_ = std::make_shared<ConvLstmCell>(base, spec_);
    track(cell_, "cell");
  }

  size_t rank() const { return spec_->rank; }

  // The states' shape for sequences of shape seq: [batch, out spatial..., filters].
  PartialShape state_shape(const PartialShape &seq) const { return cell_->state_shape(*this, seq, 2); }

  void check_shapes(const std::vector<PartialShape> &shapes) const {
    if (shapes.size() != 1 && shapes.size() != 3)
      bad_input("got ", shapes.size(),
                " inputs; expected the sequences, then optionally the initial states h and c");
    if (shapes[0].size() != rank() + 3)
      bad_input("sequences have shape ", partial_shape_string(shapes[0]), "; expected rank ", rank() + 3,
                " (batch, timesteps, spatial..., channels)");
    if (shapes.size() == 1) return;
    const PartialShape want = state_shape(shapes[0]);
    for (size_t i = 1; i < 3; ++i) {
      const PartialShape &st = shapes[i];
      bool ok = st.size() == want.size();
      for (size_t d = 0; ok && d < st.size(); ++d) ok = st[d] < 0 || want[d] < 0 || st[d] == want[d];
      if (!ok)
        bad_input("initial state ", i == 1 ? "h" : "c", " has shape ", partial_shape_string(st),
                  "; expected ", partial_shape_string(want), " (batch, out spatial..., filters)");
    }
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    check_shapes(shapes);
    state_shape(shapes[0]);  // the window must fit (an error naming this layer, not its cell)
    PartialShape step{shapes[0][0]};
    step.insert(step.end(), shapes[0].begin() + 2, shapes[0].end());
    for (size_t i = 1; i < step.size(); ++i)
      if (step[i] < 0)
        bad_input("sequences have shape ", partial_shape_string(shapes[0]),
                  "; the spatial and channel dimensions must be known (Keras's ConvLSTM needs static ones)");
    cell_->build({step});
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    check_shapes(shapes);
    const PartialShape st = state_shape(shapes[0]);
    PartialShape out = st;
    if (flags_.return_sequences) out.insert(out.begin() + 1, shapes[0][1]);
    std::vector<PartialShape> result{out};
    if (flags_.return_state) result.insert(result.end(), {st, st});
    return result;
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    return flags_.output_masks(masks, 2);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const std::vector<PartialShape> shapes = check_sequences(*this, inputs);
    check_shapes(shapes);
    const Tensor &seq = inputs[0];
    const int64_t steps = seq.shape()[1];
    for (size_t i = 0; i <= rank(); ++i) {
      const int64_t want = i < rank() ? cell_->spatial()[i] : cell_->input_dim();
      if (seq.shape()[int(i) + 2] != want)
        bad_input("sequences have shape ", seq.shape().to_string(),
                  "; the layer was built for steps of shape ",
                  partial_shape_string(cell_->build_input_shapes()[0]));
    }
    const Tensor *mask = sequence_mask(*this, ctx, seq);
    const PartialShape st = state_shape(shapes[0]);
    const Shape state(std::vector<int64_t>(st.begin(), st.end()));
    // The window ops compute in float32; the outputs are cast to the compute dtype at the end.
    std::vector<Tensor> states;
    for (size_t i = 0; i < 2; ++i)
      states.push_back(inputs.size() == 1 ? ops::zeros(state, DType::kFloat32)
                                          : ops::cast(inputs[1 + i], DType::kFloat32));
    const Tensor x = ops::cast(seq, DType::kFloat32);
    std::vector<int64_t> step_in = x.shape().to_vector();
    step_in.erase(step_in.begin() + 1);
    const ConvLstmMasks drop = cell_->draw_masks(Shape(step_in), state, ctx.training);
    const ConvLstmCell::Weights w = cell_->read_weights();
    const std::vector<Tensor> xs = ops::split(cell_->project(x, drop, w), {}, steps, 1);

    std::vector<Tensor> result = flags_.run(steps, mask, std::move(states), [&](int64_t t, const auto &now) {
      std::vector<Tensor> next = cell_->step(ops::squeeze(xs[size_t(t)], {1}), now[0], now[1], w, drop);
      return std::make_pair(next[0], next);
    });
    for (Tensor &y : result) y = ops::cast(y, compute_dtype());
    if (activity_reg_)
      for (const Tensor &y : result) add_loss(activity_loss(*activity_reg_, y));
    return result;
  }

  // Keras's get_config: the RNN's loop keys, then the cell's arguments.
  void add_config(Config &c) const override {
    const ConvLstmSpec &s = *spec_;
    flags_.write(c);
    c.set("filters", s.filters).set("kernel_size", s.kernel_size).set("strides", s.strides);
    c.set("padding", s.padding).set("data_format", "channels_last").set("dilation_rate", s.dilation);
    c.set("activation", s.activation.name).set("recurrent_activation", s.recurrent_activation.name);
    c.set("use_bias", s.use_bias);
    s.write_initializers(c);
    c.set("unit_forget_bias", s.unit_forget_bias);
    s.write_regularizers(c, &activity_reg_);
    c.set("dropout", s.dropout).set("recurrent_dropout", s.recurrent_dropout);
    write_seed(c, s.seed);
  }

  std::shared_ptr<const ConvLstmSpec> spec_;
  RegularizerPtr activity_reg_;
  LoopFlags flags_;
  std::shared_ptr<ConvLstmCell> cell_;
};

}  // namespace

void register_conv_lstm_layers() {
  for (size_t rank = 1; rank <= 3; ++rank)
    add_layer_factory(class_of(rank),
                      [rank](const Config &c) -> LayerPtr { return std::make_shared<ConvLstm>(c, rank); });
}

}  // namespace kiln::layers

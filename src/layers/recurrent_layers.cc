// Recurrent built-in layers: keras.layers.SimpleRNN, GRU and LSTM, as Keras 3 computes them.
//
// Each layer keeps its weights in a cell sub-layer tracked under the attribute "cell" and named as
// Keras names it ("lstm_cell"), so weight paths ("lstm/lstm_cell/kernel") and checkpoint edges
// ("cell/kernel") are Keras's: kernel [input_dim, gates * units], recurrent_kernel [units, gates *
// units] and bias ([gates * units], or [2, 3 * units] for GRU's reset_after), gates in Keras's order
// (LSTM i, f, c, o; GRU z, r, h). The layer runs the steps itself from eager ops, so the tape
// differentiates through time. The input projection of every step is one matmul over [B * T, F].
//
// Masks follow Keras's backend rnn: a step whose mask is false keeps the previous states, and its
// output is the previous output (zeros with zero_output_for_mask). go_backwards walks the steps from
// the last, and return_sequences then gives the outputs in that (reversed) order, as Keras does.
// Dropout masks are drawn once per call and used at every step (Keras's DropoutRNNCell); a rate is
// clamped into [0, 1] as Keras clamps it, and only a rate strictly between 0 and 1 drops.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "layers/activations.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "layers/policy.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

enum class CellKind { kSimple, kGru, kLstm };

int64_t gate_count(CellKind k) { return k == CellKind::kSimple ? 1 : k == CellKind::kGru ? 3 : 4; }

// Keras's unit_forget_bias: the LSTM bias initializer's values with the forget gate's set to one.
class UnitForgetBias final : public Initializer {
 public:
  UnitForgetBias(InitializerPtr base, int64_t units) : base_(std::move(base)), units_(units) {}
  Tensor operator()(const Shape &, DType dtype) const override {
    return ops::concat({(*base_)(Shape({units_}), dtype), ops::ones(Shape({units_}), dtype),
                        (*base_)(Shape({2 * units_}), dtype)},
                       0);
  }
  std::string class_name() const override { return base_->class_name(); }
  Config get_config() const override { return base_->get_config(); }

 private:
  InitializerPtr base_;
  int64_t units_;
};

// What the layer's config says about its cell (Keras's cell arguments).
struct CellSpec {
  CellKind kind = CellKind::kLstm;
  int64_t units = 0;
  Activation activation, recurrent_activation;
  bool use_bias = true, unit_forget_bias = true, reset_after = true;
  InitializerPtr kernel_init, recurrent_init, bias_init;
  RegularizerPtr kernel_reg, recurrent_reg, bias_reg, activity_reg;
  double dropout = 0, recurrent_dropout = 0;
  int64_t seed = -1;
};

// The cell: the weights of one step, which its layer reads (it is not called on its own).
class RecurrentCell final : public Layer {
 public:
  RecurrentCell(const Config &base, std::shared_ptr<const CellSpec> spec)
      : RecurrentCell(ConfigReader(base, "RecurrentCell"), std::move(spec)) {}

  VariablePtr kernel, recurrent_kernel, bias;

 private:
  RecurrentCell(ConfigReader &&r, std::shared_ptr<const CellSpec> spec)
      : Layer(spec->kind == CellKind::kSimple ? "SimpleRNNCell"
              : spec->kind == CellKind::kGru  ? "GRUCell"
                                              : "LSTMCell",
              r),
        spec_(std::move(spec)) {
    r.finish();
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const CellSpec &s = *spec_;
    const int64_t in = shapes.at(0).back(), g = gate_count(s.kind);
    kernel = add_weight("kernel", Shape({in, g * s.units}), dtype(), *s.kernel_init, true, s.kernel_reg);
    recurrent_kernel = add_weight("recurrent_kernel", Shape({s.units, g * s.units}), dtype(),
                                  *s.recurrent_init, true, s.recurrent_reg);
    if (!s.use_bias) return;
    if (s.kind == CellKind::kLstm && s.unit_forget_bias) {
      bias = add_weight("bias", Shape({g * s.units}), dtype(), UnitForgetBias(s.bias_init, s.units), true,
                        s.bias_reg);
    } else {
      const Shape shape =
          s.kind == CellKind::kGru && s.reset_after ? Shape({2, g * s.units}) : Shape({g * s.units});
      bias = add_weight("bias", shape, dtype(), *s.bias_init, true, s.bias_reg);
    }
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &, const CallContext &) override {
    fail_layer(Code::kUnimplemented, "a recurrent layer's cell runs only inside its layer; call the layer");
  }

  std::shared_ptr<const CellSpec> spec_;
};

const char *kind_name(CellKind k) {
  return k == CellKind::kSimple ? "SimpleRNN" : k == CellKind::kGru ? "GRU" : "LSTM";
}

// A dropout rate as Keras's cells read it: clamped into [0, 1]; NaN is INVALID_ARGUMENT.
double clamped_rate(ConfigReader &r, const char *key) {
  const double v = r.get_float(key, 0.0);
  if (std::isnan(v)) fail(Code::kInvalidArgument, r.owner(), ": ", key, " is NaN; expected a rate in [0, 1]");
  return std::min(1.0, std::max(0.0, v));
}

// keras.layers.SimpleRNN / GRU / LSTM (units, activation="tanh", recurrent_activation="sigmoid",
// use_bias=True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
// bias_initializer="zeros", unit_forget_bias=True (LSTM), reset_after=True (GRU), regularizers,
// dropout, recurrent_dropout, seed, return_sequences, return_state, go_backwards, unroll,
// zero_output_for_mask). Inputs: the sequences [B, T, F], then optionally the initial states
// ([B, units] each: h, and c for LSTM), Keras's initial_state. Outputs: the last output [B, units]
// (or every step's, [B, T, units], with return_sequences), then the final states with return_state.
// stateful=True is not supported (UNIMPLEMENTED); unroll changes nothing here.
class Recurrent final : public Layer {
 public:
  Recurrent(const Config &config, CellKind kind)
      : Recurrent(config, ConfigReader(config, kind_name(kind)), kind) {}

 private:
  Recurrent(const Config &config, ConfigReader &&r, CellKind kind) : Layer(kind_name(kind), r) {
    auto spec = std::make_shared<CellSpec>();
    CellSpec &s = *spec;
    s.kind = kind;
    s.units = r.get_int("units");
    if (s.units <= 0) fail(Code::kInvalidArgument, r.owner(), ": units must be positive; got ", s.units);
    s.activation = get_activation(r.get_string("activation", "tanh"));
    if (kind != CellKind::kSimple)
      s.recurrent_activation = get_activation(r.get_string("recurrent_activation", "sigmoid"));
    s.use_bias = r.get_bool("use_bias", true);
    s.kernel_init = initializer_or(config, r, "kernel_initializer", "glorot_uniform");
    s.recurrent_init = initializer_or(config, r, "recurrent_initializer", "orthogonal");
    s.bias_init = initializer_or(config, r, "bias_initializer", "zeros");
    if (kind == CellKind::kLstm) s.unit_forget_bias = r.get_bool("unit_forget_bias", true);
    s.kernel_reg = regularizer_from_value(config, "kernel_regularizer");
    s.recurrent_reg = regularizer_from_value(config, "recurrent_regularizer");
    s.bias_reg = regularizer_from_value(config, "bias_regularizer");
    s.activity_reg = regularizer_from_value(config, "activity_regularizer");
    r.accept({"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer"});
    reject_constraints(r, {"kernel_constraint", "recurrent_constraint", "bias_constraint"});
    s.dropout = clamped_rate(r, "dropout");
    s.recurrent_dropout = clamped_rate(r, "recurrent_dropout");
    if (kind == CellKind::kGru) s.reset_after = r.get_bool("reset_after", true);
    s.seed = read_seed(r);
    return_sequences_ = r.get_bool("return_sequences", false);
    return_state_ = r.get_bool("return_state", false);
    go_backwards_ = r.get_bool("go_backwards", false);
    unroll_ = r.get_bool("unroll", false);
    zero_output_for_mask_ = r.get_bool("zero_output_for_mask", false);
    if (r.get_bool("stateful", false))
      fail(Code::kUnimplemented, r.owner(),
           ": stateful=True is not supported; pass the states between calls with "
           "return_state=True and the initial states as inputs");
    // Keras's implementation: 1 (which a recurrent_dropout forces) draws a dropout mask per gate, 2 one
    // for every gate; otherwise the same computation. Not part of Keras's config.
    implementation_ = r.get_int("implementation", 2);
    if (implementation_ != 1 && implementation_ != 2)
      fail(Code::kInvalidArgument, r.owner(), ": implementation must be 1 or 2; got ", implementation_);
    if (s.recurrent_dropout != 0) implementation_ = 1;
    if (r.has("use_cudnn")) {
      const Config::Type t = config.type("use_cudnn");
      if (t == Config::Type::kBool ? config.get_bool("use_cudnn")
                                   : t != Config::Type::kString || config.get_string("use_cudnn") != "auto")
        fail(Code::kInvalidArgument, r.owner(), ": use_cudnn must be \"auto\" or false (kiln has no cuDNN)");
    }
    r.finish();
    spec_ = spec;
    Config base;
    base.set("name", std::string(kind == CellKind::kSimple ? "simple_rnn_cell"
                                 : kind == CellKind::kGru  ? "gru_cell"
                                                           : "lstm_cell"))
        .set("trainable", trainable());
    set_policy_config(base, "dtype", dtype_policy());
    cell_ = std::make_shared<RecurrentCell>(base, spec_);
    track(cell_, "cell");
  }

  int64_t state_count() const { return spec_->kind == CellKind::kLstm ? 2 : 1; }

  void check_shapes(const std::vector<PartialShape> &shapes) const {
    const size_t n = static_cast<size_t>(state_count());
    if (shapes.size() != 1 && shapes.size() != 1 + n)
      bad_input("got " + std::to_string(shapes.size()) + " inputs; expected the sequences, then optionally " +
                std::to_string(n) + " initial state" + (n > 1 ? "s (h, c)" : " (h)"));
    if (shapes[0].size() != 3)
      bad_input("sequences have shape " + partial_shape_string(shapes[0]) +
                "; expected rank 3 (batch, timesteps, features)");
    for (size_t i = 1; i < shapes.size(); ++i) {
      const PartialShape &st = shapes[i];
      if (st.size() != 2 || (st[1] >= 0 && st[1] != spec_->units))
        bad_input("initial state " + std::to_string(i - 1) + " has shape " + partial_shape_string(st) +
                  "; expected (batch, " + std::to_string(spec_->units) + ")");
    }
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    check_shapes(shapes);
    const int64_t in = known_dim(*this, shapes[0], 2, "feature dimension");
    cell_->build({{kUnknownDim, in}});
    input_dim_ = in;
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    if (masks.empty() || !masks[0].defined() || !return_sequences_) return {};
    std::vector<Tensor> out(return_state_ ? 1 + size_t(state_count()) : 1);
    out[0] = masks[0];
    return out;
  }

  // A [count, B, n] draw of Keras's get_dropout_mask: ones dropped at rate, scaled by 1 / (1 - rate).
  static Tensor dropout_mask(int64_t count, int64_t batch, int64_t n, double rate, DType dtype,
                             int64_t seed) {
    return ops::dropout(ops::ones(Shape({count, batch, n}), dtype), static_cast<float>(rate), true, seed);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    std::vector<PartialShape> shapes;
    for (const Tensor &t : inputs) shapes.push_back(partial_shape_of(t.shape()));
    check_shapes(shapes);
    const CellSpec &s = *spec_;
    const Tensor &seq = inputs[0];
    if (!is_floating(seq.dtype()))
      bad_input("sequences are " + seq.description() + "; expected a floating dtype");
    const int64_t batch = seq.shape()[0], steps = seq.shape()[1], feat = seq.shape()[2], u = s.units;
    if (feat != input_dim_)
      bad_input("sequences have " + std::to_string(feat) + " features; the layer was built for " +
                std::to_string(input_dim_));
    if (steps == 0) bad_input("sequences have 0 timesteps; expected at least 1");
    const DType dt = seq.dtype();
    std::vector<Tensor> states;
    for (int64_t i = 0; i < state_count(); ++i) {
      if (inputs.size() == 1) {
        states.push_back(ops::zeros(Shape({batch, u}), dt));
        continue;
      }
      const Tensor &st = inputs[size_t(1 + i)];
      if (st.shape()[0] != batch)
        bad_input("initial state " + std::to_string(i) + " has batch " + std::to_string(st.shape()[0]) +
                  "; the sequences have " + std::to_string(batch));
      states.push_back(st.dtype() == dt ? st : ops::cast(st, dt));
    }
    const Tensor *mask = input_mask(ctx, 0);

    const Tensor kernel = cell_->kernel->read_for_op();
    const Tensor rec = cell_->recurrent_kernel->read_for_op();
    Tensor bias, rec_bias;
    if (cell_->bias) {
      bias = cell_->bias->read_for_op();
      if (s.kind == CellKind::kGru && s.reset_after) {
        rec_bias = ops::reshape(ops::slice(bias, {1, 0}, {1, -1}), {3 * u});
        bias = ops::reshape(ops::slice(bias, {0, 0}, {1, -1}), {3 * u});
      }
    }
    // Keras's dropout masks, drawn once per call: one for every gate, or (implementation 1, which a
    // recurrent_dropout selects) one per gate, each gate's inputs and state dropped apart.
    const int64_t gates = gate_count(s.kind), width = gates * u;
    const bool per_gate = implementation_ == 1 && gates > 1;
    const auto masks = [&](int64_t n, double rate, int64_t seed) {
      std::vector<Tensor> m;
      if (!ctx.training || !(rate > 0 && rate < 1)) return m;
      const Tensor drawn = dropout_mask(per_gate ? gates : 1, batch, n, rate, dt, seed);
      for (int64_t g = 0; g < (per_gate ? gates : 1); ++g)
        m.push_back(ops::reshape(ops::slice(drawn, {g, 0, 0}, {1, batch, n}), {batch, n}));
      return m;
    };
    const std::vector<Tensor> in_masks = masks(feat, s.dropout, s.seed);
    const std::vector<Tensor> rec_masks = masks(u, s.recurrent_dropout,
                                                s.seed < 0            ? -1
                                                : s.seed == INT64_MAX ? 0
                                                                      : s.seed + 1);
    // The recurrent kernel's columns of gates [first, first + count), sliced once per call.
    std::map<std::pair<int64_t, int64_t>, Tensor> cols{{{0, gates}, rec}};
    const auto rec_cols = [&](int64_t first, int64_t count) -> const Tensor & {
      Tensor &c = cols[{first, count}];
      if (!c.defined()) c = ops::slice(rec, {0, first * u}, {u, count * u});
      return c;
    };
    // The state's recurrent contribution to gates [first, first + count): h (dropped by its mask) times
    // their columns, one matmul unless each gate has its own mask.
    const auto h_for = [&](const Tensor &h, int64_t g) {
      return rec_masks.empty() ? h : ops::mul(h, rec_masks[rec_masks.size() == 1 ? 0 : size_t(g)]);
    };
    const auto rec_gates = [&](const Tensor &h, int64_t first, int64_t count) {
      if (rec_masks.size() <= 1) return ops::matmul(h_for(h, first), rec_cols(first, count));
      std::vector<Tensor> parts;
      for (int64_t g = first; g < first + count; ++g)
        parts.push_back(ops::matmul(h_for(h, g), rec_cols(g, 1)));
      return ops::concat(parts, 1);
    };

    // Every step's input projection in one matmul (one per gate with per-gate masks), then split by
    // step: [T] of [B, gates * u].
    const auto project = [&](const Tensor &x, const Tensor &k) {
      const int64_t n = k.shape()[1];
      return ops::reshape(ops::matmul(ops::reshape(x, {batch * steps, feat}), k), {batch, steps, n});
    };
    Tensor projected;
    if (in_masks.size() <= 1) {
      projected = project(in_masks.empty() ? seq : ops::mul(seq, ops::expand_dims(in_masks[0], 1)), kernel);
    } else {
      std::vector<Tensor> parts;
      for (int64_t g = 0; g < gates; ++g)
        parts.push_back(project(ops::mul(seq, ops::expand_dims(in_masks[size_t(g)], 1)),
                                ops::slice(kernel, {0, g * u}, {feat, u})));
      projected = ops::concat(parts, 2);
    }
    const std::vector<Tensor> xs = ops::split(ops::transpose(projected, {1, 0, 2}), {}, steps, 0);
    const Tensor one = ops::fill(Shape({}), 1.0, dt);

    std::vector<Tensor> outputs;
    outputs.reserve(size_t(steps));
    Tensor last;
    for (int64_t k = 0; k < steps; ++k) {
      const int64_t t = go_backwards_ ? steps - 1 - k : k;
      const Tensor xt = ops::reshape(xs[size_t(t)], {batch, width});
      const Tensor h_prev = states[0];
      std::vector<Tensor> next;
      if (s.kind == CellKind::kSimple) {
        const Tensor h = bias.defined() ? ops::add(xt, bias) : xt;
        next = {s.activation(ops::add(h, rec_gates(h_prev, 0, 1)))};
      } else if (s.kind == CellKind::kLstm) {
        Tensor z = ops::add(xt, rec_gates(h_prev, 0, 4));
        if (bias.defined()) z = ops::add(z, bias);
        const std::vector<Tensor> g = ops::split(z, {}, 4, 1);
        const Tensor i = s.recurrent_activation(g[0]), f = s.recurrent_activation(g[1]);
        const Tensor c = ops::add(ops::mul(f, states[1]), ops::mul(i, s.activation(g[2])));
        const Tensor o = s.recurrent_activation(g[3]);
        next = {ops::mul(o, s.activation(c)), c};
      } else {
        const std::vector<Tensor> gx = ops::split(bias.defined() ? ops::add(xt, bias) : xt, {}, 3, 1);
        std::vector<Tensor> zr;  // the recurrent parts of z and r, then (reset_after) of h
        if (s.reset_after) {
          Tensor inner = rec_gates(h_prev, 0, 3);
          if (rec_bias.defined()) inner = ops::add(inner, rec_bias);
          zr = ops::split(inner, {}, 3, 1);
        } else {
          zr = ops::split(rec_gates(h_prev, 0, 2), {}, 2, 1);
        }
        const Tensor z = s.recurrent_activation(ops::add(gx[0], zr[0]));
        const Tensor rr = s.recurrent_activation(ops::add(gx[1], zr[1]));
        const Tensor h_rec =
            s.reset_after ? ops::mul(rr, zr[2]) : ops::matmul(ops::mul(rr, h_for(h_prev, 2)), rec_cols(2, 1));
        const Tensor hh = s.activation(ops::add(gx[2], h_rec));
        next = {ops::add(ops::mul(z, h_prev), ops::mul(ops::sub(one, z), hh))};
      }
      Tensor out = next[0];
      if (mask) {
        const Tensor m = ops::slice(*mask, {0, t}, {batch, 1});
        out = ops::where(m, out, zero_output_for_mask_ ? ops::zeros_like(out) : h_prev);
        for (size_t j = 0; j < next.size(); ++j) next[j] = ops::where(m, next[j], states[j]);
      }
      states = std::move(next);
      if (return_sequences_) outputs.push_back(out);
      last = out;
    }
    std::vector<Tensor> result{return_sequences_ ? ops::stack(outputs, 1) : last};
    if (return_state_) result.insert(result.end(), states.begin(), states.end());
    if (s.activity_reg)
      for (const Tensor &y : result) add_loss(activity_loss(*s.activity_reg, y));
    return result;
  }

  void add_config(Config &c) const override {
    const CellSpec &s = *spec_;
    c.set("return_sequences", return_sequences_)
        .set("return_state", return_state_)
        .set("go_backwards", go_backwards_)
        .set("stateful", false)
        .set("unroll", unroll_)
        .set("zero_output_for_mask", zero_output_for_mask_)
        .set("units", s.units)
        .set("activation", s.activation.name);
    if (s.kind != CellKind::kSimple) c.set("recurrent_activation", s.recurrent_activation.name);
    c.set("use_bias", s.use_bias)
        .set("kernel_initializer", serialize_initializer(*s.kernel_init))
        .set("recurrent_initializer", serialize_initializer(*s.recurrent_init))
        .set("bias_initializer", serialize_initializer(*s.bias_init));
    if (s.kind == CellKind::kLstm) c.set("unit_forget_bias", s.unit_forget_bias);
    set_regularizer(c, "kernel_regularizer", s.kernel_reg);
    set_regularizer(c, "recurrent_regularizer", s.recurrent_reg);
    set_regularizer(c, "bias_regularizer", s.bias_reg);
    set_regularizer(c, "activity_regularizer", s.activity_reg);
    c.set_null("kernel_constraint").set_null("recurrent_constraint").set_null("bias_constraint");
    c.set("dropout", s.dropout).set("recurrent_dropout", s.recurrent_dropout);
    if (s.kind == CellKind::kGru) c.set("reset_after", s.reset_after);
    if (s.kind != CellKind::kSimple) write_seed(c, s.seed);  // Keras's SimpleRNN config has no seed
  }

  std::shared_ptr<const CellSpec> spec_;
  std::shared_ptr<RecurrentCell> cell_;
  bool return_sequences_ = false, return_state_ = false, go_backwards_ = false, unroll_ = false,
       zero_output_for_mask_ = false;
  int64_t input_dim_ = -1;
  int64_t implementation_ = 2;
};

template <CellKind K>
void register_recurrent(const char *name) {
  add_layer_factory(name, [](const Config &c) -> LayerPtr { return std::make_shared<Recurrent>(c, K); });
}

}  // namespace

void register_recurrent_layers() {
  register_recurrent<CellKind::kSimple>("SimpleRNN");
  register_recurrent<CellKind::kGru>("GRU");
  register_recurrent<CellKind::kLstm>("LSTM");
}

}  // namespace kiln::layers

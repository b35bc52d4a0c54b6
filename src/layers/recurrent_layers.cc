// Recurrent built-in layers, as Keras 3 computes them: the cells SimpleRNNCell, GRUCell, LSTMCell and
// StackedRNNCells, keras.layers.RNN(cell) around any cell (built-in or custom: a layer with a
// state_size), and SimpleRNN, GRU and LSTM, which are RNNs of their built-in cell.
//
// A built-in cell's weights are named as Keras names them, so weight paths ("lstm/lstm_cell/kernel")
// and checkpoint edges ("cell/kernel") are Keras's: kernel [input_dim, gates * units], recurrent_kernel
// [units, gates * units] and bias ([gates * units], or [2, 3 * units] for GRU's reset_after), gates in
// Keras's order (LSTM i, f, c, o; GRU z, r, h). The RNN runs the steps itself from eager ops, so the
// tape differentiates through time. With a built-in cell the input projection of every step is one
// matmul over [B * T, F]; any other cell is called once per step with [x_t, states...].
//
// Masks follow Keras's backend rnn: a step whose mask is false keeps the previous states, and its
// output is the previous output (zeros before the first, and always with zero_output_for_mask).
// go_backwards walks the steps from the last, and return_sequences then gives the outputs in that
// (reversed) order, as Keras does. Dropout masks are drawn once per RNN call and used at every step
// (Keras's DropoutRNNCell), also for built-in cells inside a stack or a custom cell; a cell called
// on its own draws them at each call. A rate is clamped into [0, 1] as Keras clamps it, and only a
// rate strictly between 0 and 1 drops.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "layers/activations.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "layers/policy.h"
#include "layers/recurrent_util.h"
#include "ops/ops.h"

namespace kiln::layers {

Tensor UnitForgetBias::operator()(const Shape &, DType dtype) const {
  return ops::concat({(*base_)(Shape({units_}), dtype), ops::ones(Shape({units_}), dtype),
                      (*base_)(Shape({2 * units_}), dtype)},
                     0);
}

void RecurrentWeights::read_weights(const Config &config, ConfigReader &r) {
  kernel_init = initializer_or(config, r, "kernel_initializer", "glorot_uniform");
  recurrent_init = initializer_or(config, r, "recurrent_initializer", "orthogonal");
  bias_init = initializer_or(config, r, "bias_initializer", "zeros");
  kernel_reg = regularizer_from_value(config, "kernel_regularizer");
  recurrent_reg = regularizer_from_value(config, "recurrent_regularizer");
  bias_reg = regularizer_from_value(config, "bias_regularizer");
  r.accept({"kernel_regularizer", "recurrent_regularizer", "bias_regularizer"});
  reject_constraints(r, {"kernel_constraint", "recurrent_constraint", "bias_constraint"});
}

void RecurrentWeights::write_initializers(Config &c) const {
  c.set("kernel_initializer", serialize_initializer(*kernel_init))
      .set("recurrent_initializer", serialize_initializer(*recurrent_init))
      .set("bias_initializer", serialize_initializer(*bias_init));
}

void RecurrentWeights::write_regularizers(Config &c, const RegularizerPtr *activity) const {
  set_regularizer(c, "kernel_regularizer", kernel_reg);
  set_regularizer(c, "recurrent_regularizer", recurrent_reg);
  set_regularizer(c, "bias_regularizer", bias_reg);
  if (activity) set_regularizer(c, "activity_regularizer", *activity);
  c.set_null("kernel_constraint").set_null("recurrent_constraint").set_null("bias_constraint");
}

double clamped_rate(ConfigReader &r, const char *key) {
  const double v = r.get_float(key, 0.0);
  if (std::isnan(v)) fail(Code::kInvalidArgument, r.owner(), ": ", key, " is NaN; expected a rate in [0, 1]");
  return std::min(1.0, std::max(0.0, v));
}

LoopFlags LoopFlags::read(ConfigReader &r) {
  LoopFlags f;
  f.return_sequences = r.get_bool("return_sequences", false);
  f.return_state = r.get_bool("return_state", false);
  f.go_backwards = r.get_bool("go_backwards", false);
  f.unroll = r.get_bool("unroll", false);
  f.zero_output_for_mask = r.get_bool("zero_output_for_mask", false);
  if (r.get_bool("stateful", false))
    fail(Code::kUnimplemented, r.owner(),
         ": stateful=True is not supported; pass the states between calls with "
         "return_state=True and the initial states as inputs");
  return f;
}

void LoopFlags::write(Config &c) const {
  c.set("return_sequences", return_sequences)
      .set("return_state", return_state)
      .set("go_backwards", go_backwards)
      .set("stateful", false)
      .set("unroll", unroll)
      .set("zero_output_for_mask", zero_output_for_mask);
}

std::vector<Tensor> LoopFlags::output_masks(const std::vector<Tensor> &masks, size_t states) const {
  if (masks.empty() || !masks[0].defined() || !return_sequences) return {};
  std::vector<Tensor> out(return_state ? 1 + states : 1);
  out[0] = masks[0];
  return out;
}

// Keras's backend rnn at step t of a masked sequence (mask [B, T], bool): where the mask is false the
// step keeps the previous states (next becomes states there) and its output is the previous output
// `last` (zeros before the first step, and always with zero_output).
static void mask_step(const Tensor &mask, int64_t t, bool zero_output, const Tensor &last, Tensor &out,
                      std::vector<Tensor> &next, const std::vector<Tensor> &states) {
  const int64_t batch = mask.shape()[0];
  const Tensor m = ops::slice(mask, {0, t}, {batch, 1});  // [B, 1]
  // m over a tensor of any rank: [B, 1, ..., 1].
  const auto over = [&](const Tensor &like) {
    if (like.rank() == 2) return m;
    std::vector<int64_t> shape(size_t(like.rank()), 1);
    shape[0] = batch;
    return ops::reshape(m, shape);
  };
  out = ops::where(over(out), out, zero_output || !last.defined() ? ops::zeros_like(out) : last);
  for (size_t j = 0; j < next.size(); ++j) next[j] = ops::where(over(next[j]), next[j], states[j]);
}

std::vector<Tensor> LoopFlags::run(int64_t steps, const Tensor *mask, std::vector<Tensor> states,
                                   const StepFn &step) const {
  std::vector<Tensor> outputs;
  outputs.reserve(size_t(steps));
  Tensor last;
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = go_backwards ? steps - 1 - k : k;
    auto [out, next] = step(t, states);
    if (mask) mask_step(*mask, t, zero_output_for_mask, last, out, next, states);
    states = std::move(next);
    if (return_sequences) outputs.push_back(out);
    last = out;
  }
  std::vector<Tensor> result{return_sequences ? ops::stack(outputs, 1) : last};
  if (return_state) result.insert(result.end(), states.begin(), states.end());
  return result;
}

const Tensor *sequence_mask(const Layer &l, const CallContext &ctx, const Tensor &seq) {
  const Tensor *mask = input_mask(ctx, 0);
  const int64_t batch = seq.shape()[0], steps = seq.shape()[1];
  if (mask && (mask->rank() != 2 || mask->shape()[0] != batch || mask->shape()[1] != steps))
    l.bad_input("the sequences' mask has shape ", mask->shape().to_string(),
                "; expected (batch, timesteps) = (", batch, ", ", steps, ")");
  return mask;
}

std::vector<PartialShape> check_sequences(const Layer &l, const std::vector<Tensor> &inputs) {
  std::vector<PartialShape> shapes;
  for (const Tensor &t : inputs) shapes.push_back(partial_shape_of(t.shape()));
  if (inputs.empty())
    l.bad_input("got no inputs; expected the sequences, then optionally the initial states");
  const Tensor &seq = inputs[0];
  if (!is_floating(seq.dtype()))
    l.bad_input("sequences are ", seq.description(), "; expected a floating dtype");
  if (seq.rank() >= 2 && seq.shape()[1] == 0) l.bad_input("sequences have 0 timesteps; expected at least 1");
  return shapes;
}

namespace {

enum class CellKind { kSimple, kGru, kLstm };

int64_t gate_count(CellKind k) { return k == CellKind::kSimple ? 1 : k == CellKind::kGru ? 3 : 4; }

// Keras's cell arguments: what a cell's config (and its layer's) says about one step.
struct CellSpec : RecurrentWeights {
  CellKind kind = CellKind::kLstm;
  int64_t units = 0;
  Activation activation, recurrent_activation;
  bool use_bias = true, unit_forget_bias = true, reset_after = true;
  double dropout = 0, recurrent_dropout = 0;
  int64_t seed = -1;
  // Keras's implementation: 1 (which a recurrent_dropout forces) draws a dropout mask per gate, 2 one
  // for every gate; otherwise the same computation. Not part of Keras's config.
  int64_t implementation = 2;
};

const char *kind_name(CellKind k) {
  return k == CellKind::kSimple ? "SimpleRNN" : k == CellKind::kGru ? "GRU" : "LSTM";
}
const char *cell_class(CellKind k) {
  return k == CellKind::kSimple ? "SimpleRNNCell" : k == CellKind::kGru ? "GRUCell" : "LSTMCell";
}
// The name Keras gives a layer's cell.
const char *cell_name(CellKind k) {
  return k == CellKind::kSimple ? "simple_rnn_cell" : k == CellKind::kGru ? "gru_cell" : "lstm_cell";
}

// Reads the cell arguments (SimpleRNNCell / GRUCell / LSTMCell, or the keys SimpleRNN / GRU / LSTM
// pass on to their cell).
std::shared_ptr<const CellSpec> read_cell_spec(const Config &config, ConfigReader &r, CellKind kind) {
  auto spec = std::make_shared<CellSpec>();
  CellSpec &s = *spec;
  s.kind = kind;
  s.units = r.get_int("units");
  if (s.units <= 0) fail(Code::kInvalidArgument, r.owner(), ": units must be positive; got ", s.units);
  s.activation = get_activation(r.get_string("activation", "tanh"));
  if (kind != CellKind::kSimple)
    s.recurrent_activation = get_activation(r.get_string("recurrent_activation", "sigmoid"));
  s.use_bias = r.get_bool("use_bias", true);
  s.read_weights(config, r);
  if (kind == CellKind::kLstm) s.unit_forget_bias = r.get_bool("unit_forget_bias", true);
  s.dropout = clamped_rate(r, "dropout");
  s.recurrent_dropout = clamped_rate(r, "recurrent_dropout");
  if (kind == CellKind::kGru) s.reset_after = r.get_bool("reset_after", true);
  s.seed = read_seed(r);
  s.implementation = r.get_int("implementation", 2);
  if (s.implementation != 1 && s.implementation != 2)
    fail(Code::kInvalidArgument, r.owner(), ": implementation must be 1 or 2; got ", s.implementation);
  if (s.recurrent_dropout != 0) s.implementation = 1;
  return spec;
}

// Writes the cell arguments in Keras's order: a cell's (for_layer false) or its layer's, which puts
// unit_forget_bias after the initializers and has an activity_regularizer.
void write_cell_spec(Config &c, const CellSpec &s, bool for_layer, const RegularizerPtr &activity_reg) {
  c.set("units", s.units).set("activation", s.activation.name);
  if (s.kind != CellKind::kSimple) c.set("recurrent_activation", s.recurrent_activation.name);
  c.set("use_bias", s.use_bias);
  if (s.kind == CellKind::kLstm && !for_layer) c.set("unit_forget_bias", s.unit_forget_bias);
  s.write_initializers(c);
  if (s.kind == CellKind::kLstm && for_layer) c.set("unit_forget_bias", s.unit_forget_bias);
  s.write_regularizers(c, for_layer ? &activity_reg : nullptr);
  c.set("dropout", s.dropout).set("recurrent_dropout", s.recurrent_dropout);
  if (s.kind == CellKind::kGru) c.set("reset_after", s.reset_after);
  // Keras's SimpleRNN layer config has no seed; its cell's has.
  if (s.kind != CellKind::kSimple || !for_layer) write_seed(c, s.seed);
}

// A cell's dropout masks for one sequence: for its input and its state, one for every gate, or one
// per gate (implementation 1); empty when nothing drops.
struct CellMasks {
  std::vector<Tensor> input, recurrent;
};

// Keras's DropoutRNNCell keeps a cell's masks from the first step of an RNN call to its end. An RNN
// whose cell is not a built-in one (a stack, or a custom cell holding built-in ones) opens this
// scope on its thread, so the built-in cells its steps call draw their masks once per sequence.
struct SequenceMasks {
  std::map<const Layer *, CellMasks> cells;
  SequenceMasks *outer = nullptr;
};
thread_local SequenceMasks *t_sequence = nullptr;

class SequenceScope {
 public:
  SequenceScope() {
    masks_.outer = t_sequence;
    t_sequence = &masks_;
  }
  ~SequenceScope() { t_sequence = masks_.outer; }
  SequenceScope(const SequenceScope &) = delete;
  SequenceScope &operator=(const SequenceScope &) = delete;

 private:
  SequenceMasks masks_;
};

// keras.layers.SimpleRNNCell / GRUCell / LSTMCell: one step. Called as a cell: inputs [x [B, F],
// states...] (h, and c for LSTM, each [B, units]); outputs [output, new states...]. Also the cell of
// a SimpleRNN / GRU / LSTM layer, which runs its steps through the same step().
class RecurrentCell final : public Layer {
 public:
  RecurrentCell(const Config &config, CellKind kind)
      : RecurrentCell(config, ConfigReader(config, cell_class(kind)), kind) {}
  RecurrentCell(const Config &base, const std::shared_ptr<const CellSpec> &spec)
      : RecurrentCell(ConfigReader(base, cell_class(spec->kind)), spec) {}

  VariablePtr kernel, recurrent_kernel, bias;

  const CellSpec &spec() const { return *spec_; }
  int64_t input_dim() const { return input_dim_; }
  std::vector<int64_t> state_size() const override {
    return std::vector<int64_t>(spec_->kind == CellKind::kLstm ? 2 : 1, spec_->units);
  }
  int64_t output_size() const override { return spec_->units; }

  // The weights as one call reads them, with the recurrent kernel's column slices made once.
  struct StepWeights {
    Tensor kernel, rec, bias, rec_bias;
    std::map<std::pair<int64_t, int64_t>, Tensor> cols;
  };
  // dt: the dtype the step computes in (an enclosing layer's autocast may read them in another).
  StepWeights read_weights(DType dt) const {
    const CellSpec &s = *spec_;
    const auto read = [&](const VariablePtr &v) {
      const Tensor t = v->read_for_op();
      return t.dtype() == dt ? t : ops::cast(t, dt);
    };
    StepWeights w;
    w.kernel = read(kernel);
    w.rec = read(recurrent_kernel);
    if (bias) {
      w.bias = read(bias);
      if (s.kind == CellKind::kGru && s.reset_after) {
        w.rec_bias = ops::reshape(ops::slice(w.bias, {1, 0}, {1, -1}), {3 * s.units});
        w.bias = ops::reshape(ops::slice(w.bias, {0, 0}, {1, -1}), {3 * s.units});
      }
    }
    w.cols[{0, gate_count(s.kind)}] = w.rec;
    return w;
  }

  // Keras's dropout masks for a batch, drawn when training with a rate strictly between 0 and 1.
  CellMasks draw_masks(int64_t batch, int64_t feat, DType dt, bool training) const {
    const CellSpec &s = *spec_;
    const int64_t gates = gate_count(s.kind);
    const bool per_gate = s.implementation == 1 && gates > 1;
    const auto draw = [&](int64_t n, double rate, int64_t seed) {
      std::vector<Tensor> m;
      if (!training || !(rate > 0 && rate < 1)) return m;
      const int64_t count = per_gate ? gates : 1;
      // Keras's get_dropout_mask: ones dropped at rate, scaled by 1 / (1 - rate).
      const Tensor drawn =
          ops::dropout(ops::ones(Shape({count, batch, n}), dt), static_cast<float>(rate), true, seed);
      for (int64_t g = 0; g < count; ++g)
        m.push_back(ops::reshape(ops::slice(drawn, {g, 0, 0}, {1, batch, n}), {batch, n}));
      return m;
    };
    CellMasks m;
    m.input = draw(feat, s.dropout, s.seed);
    m.recurrent = draw(s.units, s.recurrent_dropout, recurrent_seed(s.seed));
    return m;
  }

  // The input projection of sequences x [B, T, F] (dropped by the input masks): [B, T, gates * units],
  // one matmul over [B * T, F] (one per gate with per-gate masks).
  Tensor project(const Tensor &x, const CellMasks &m, const StepWeights &w) const {
    const int64_t batch = x.shape()[0], steps = x.shape()[1], feat = x.shape()[2], u = spec_->units;
    const auto one = [&](const Tensor &xs, const Tensor &k) {
      const int64_t n = k.shape()[1];
      return ops::reshape(ops::matmul(ops::reshape(xs, {batch * steps, feat}), k), {batch, steps, n});
    };
    if (m.input.size() <= 1)
      return one(m.input.empty() ? x : ops::mul(x, ops::expand_dims(m.input[0], 1)), w.kernel);
    std::vector<Tensor> parts;
    for (int64_t g = 0; g < gate_count(spec_->kind); ++g)
      parts.push_back(one(ops::mul(x, ops::expand_dims(m.input[size_t(g)], 1)),
                          ops::slice(w.kernel, {0, g * u}, {feat, u})));
    return ops::concat(parts, 2);
  }

  // One step from the projected input xt [B, gates * units]: the new states (the output is the first).
  std::vector<Tensor> step(const Tensor &xt, const std::vector<Tensor> &states, StepWeights &w,
                           const CellMasks &m) const {
    const CellSpec &s = *spec_;
    const int64_t u = s.units;
    // The recurrent kernel's columns of gates [first, first + count), sliced once per call.
    const auto rec_cols = [&](int64_t first, int64_t count) -> const Tensor & {
      Tensor &c = w.cols[{first, count}];
      if (!c.defined()) c = ops::slice(w.rec, {0, first * u}, {u, count * u});
      return c;
    };
    const auto h_for = [&](const Tensor &h, int64_t g) {
      return m.recurrent.empty() ? h : ops::mul(h, m.recurrent[m.recurrent.size() == 1 ? 0 : size_t(g)]);
    };
    // The state's recurrent contribution to gates [first, first + count): h (dropped by its mask)
    // times their columns, one matmul unless each gate has its own mask.
    const auto rec_gates = [&](const Tensor &h, int64_t first, int64_t count) {
      if (m.recurrent.size() <= 1) return ops::matmul(h_for(h, first), rec_cols(first, count));
      std::vector<Tensor> parts;
      for (int64_t g = first; g < first + count; ++g)
        parts.push_back(ops::matmul(h_for(h, g), rec_cols(g, 1)));
      return ops::concat(parts, 1);
    };
    const Tensor &h_prev = states[0];
    if (s.kind == CellKind::kSimple) {
      const Tensor h = w.bias.defined() ? ops::add(xt, w.bias) : xt;
      return {s.activation(ops::add(h, rec_gates(h_prev, 0, 1)))};
    }
    if (s.kind == CellKind::kLstm) {
      Tensor z = ops::add(xt, rec_gates(h_prev, 0, 4));
      if (w.bias.defined()) z = ops::add(z, w.bias);
      const std::vector<Tensor> g = ops::split(z, {}, 4, 1);
      const Tensor i = s.recurrent_activation(g[0]), f = s.recurrent_activation(g[1]);
      const Tensor c = ops::add(ops::mul(f, states[1]), ops::mul(i, s.activation(g[2])));
      const Tensor o = s.recurrent_activation(g[3]);
      return {ops::mul(o, s.activation(c)), c};
    }
    const std::vector<Tensor> gx = ops::split(w.bias.defined() ? ops::add(xt, w.bias) : xt, {}, 3, 1);
    std::vector<Tensor> zr;  // the recurrent parts of z and r, then (reset_after) of h
    if (s.reset_after) {
      Tensor inner = rec_gates(h_prev, 0, 3);
      if (w.rec_bias.defined()) inner = ops::add(inner, w.rec_bias);
      zr = ops::split(inner, {}, 3, 1);
    } else {
      zr = ops::split(rec_gates(h_prev, 0, 2), {}, 2, 1);
    }
    const Tensor z = s.recurrent_activation(ops::add(gx[0], zr[0]));
    const Tensor rr = s.recurrent_activation(ops::add(gx[1], zr[1]));
    const Tensor h_rec =
        s.reset_after ? ops::mul(rr, zr[2]) : ops::matmul(ops::mul(rr, h_for(h_prev, 2)), rec_cols(2, 1));
    const Tensor hh = s.activation(ops::add(gx[2], h_rec));
    const Tensor one = ops::fill(Shape({}), 1.0, xt.dtype());
    return {ops::add(ops::mul(z, h_prev), ops::mul(ops::sub(one, z), hh))};
  }

 private:
  RecurrentCell(const Config &config, ConfigReader &&r, CellKind kind)
      : Layer(cell_class(kind), r), spec_(read_cell_spec(config, r, kind)) {
    r.finish();
  }
  RecurrentCell(ConfigReader &&r, const std::shared_ptr<const CellSpec> &spec)
      : Layer(cell_class(spec->kind), r), spec_(spec) {
    r.finish();
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const CellSpec &s = *spec_;
    if (shapes.empty() || shapes[0].empty())
      bad_input("needs the input's shape (batch, features) to build; got ",
                shapes.empty() ? std::string("none") : partial_shape_string(shapes[0]));
    const int64_t in = known_dim(*this, shapes[0], shapes[0].size() - 1, "feature dimension"),
                  g = gate_count(s.kind);
    input_dim_ = in;
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

  // Keras's cell call: [x, states...] -> [output, new states...].
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const CellSpec &s = *spec_;
    const size_t n = state_size().size();
    if (inputs.size() != 1 + n)
      bad_input("got ", inputs.size(), " inputs; expected the input, then its ", n, " state",
                n > 1 ? "s (h, c)" : " (h)");
    const Tensor &x = inputs[0];
    if (!is_floating(x.dtype())) bad_input("input is ", x.description(), "; expected a floating dtype");
    if (x.rank() != 2 || x.shape()[1] != input_dim_)
      bad_input("input has shape ", x.shape().to_string(), "; expected (batch, ", input_dim_, ")");
    const int64_t batch = x.shape()[0];
    std::vector<Tensor> states;
    for (size_t i = 1; i < inputs.size(); ++i) {
      const Tensor &st = inputs[i];
      if (st.rank() != 2 || st.shape()[0] != batch || st.shape()[1] != s.units)
        bad_input("state ", i - 1, " has shape ", st.shape().to_string(), "; expected (", batch, ", ",
                  s.units, ")");
      states.push_back(st.dtype() == x.dtype() ? st : ops::cast(st, x.dtype()));
    }
    // Inside an RNN's sequence the masks of its first step hold to its last (Keras's DropoutRNNCell).
    CellMasks drawn;
    const CellMasks *masks = &drawn;
    if (t_sequence) {
      auto it = t_sequence->cells.find(this);
      if (it == t_sequence->cells.end())
        it = t_sequence->cells.emplace(this, draw_masks(batch, input_dim_, x.dtype(), ctx.training)).first;
      masks = &it->second;
    } else {
      drawn = draw_masks(batch, input_dim_, x.dtype(), ctx.training);
    }
    StepWeights w = read_weights(x.dtype());
    const Tensor xt = ops::reshape(project(ops::expand_dims(x, 1), *masks, w), {batch, -1});
    std::vector<Tensor> next = step(xt, states, w, *masks);
    next.insert(next.begin(), next[0]);
    return next;
  }

  void add_config(Config &c) const override {
    write_cell_spec(c, *spec_, false, nullptr);
    if (spec_->implementation != 2 && spec_->recurrent_dropout == 0)
      c.set("implementation", spec_->implementation);
  }

  std::shared_ptr<const CellSpec> spec_;
  int64_t input_dim_ = -1;
};

// The state sizes of a cell, which must have some (Keras's "The RNN cell should have a state_size").
std::vector<int64_t> cell_states(const std::string &owner, const Layer &cell) {
  std::vector<int64_t> sizes = cell.state_size();
  if (sizes.empty())
    fail(Code::kInvalidArgument, owner, ": the cell ", cell.describe(),
         " has no state_size; a cell's call takes [input, states...] and returns [output, new states...], ",
         "and its state_size gives the states' sizes (Python: self.state_size = units; C: ",
         "kiln_layer_set_state_size)");
  return sizes;
}

// One step of a cell that is not a built-in one: cell([x, states...]) -> the output, then the new
// states (checked: one per state, each of its state's shape and dtype); owner names the caller.
std::pair<Tensor, std::vector<Tensor>> cell_step(const Layer &owner, Layer &cell, const Tensor &x,
                                                 const std::vector<Tensor> &states, bool training) {
  std::vector<Tensor> in{x};
  in.insert(in.end(), states.begin(), states.end());
  CallContext cc;
  cc.training = training;
  std::vector<Tensor> out = cell(in, cc);
  if (out.size() != 1 + states.size())
    owner.bad_input("the cell ", cell.describe(), " returned ", out.size(),
                    " tensors; expected its output, then ", states.size(), " state",
                    states.size() == 1 ? "" : "s");
  Tensor y = out[0];
  out.erase(out.begin());
  for (size_t j = 0; j < out.size(); ++j)
    if (out[j].shape() != states[j].shape() || out[j].dtype() != states[j].dtype())
      owner.bad_input("the cell ", cell.describe(), " returned state ", j, " as ", out[j].description(),
                      "; expected ", states[j].description(), " (its state_size, in the cell's dtype)");
  return {y, out};
}

// keras.layers.StackedRNNCells(cells): the cells run one after the other in each step, each one's output
// the next one's input. Its states are the cells' states one after the other (Keras nests them per
// cell; kiln's layers take and give them flat, Python groups them again).
class StackedRNNCells final : public Layer {
 public:
  StackedRNNCells(const Config &config, std::vector<LayerPtr> cells)
      : StackedRNNCells(ConfigReader(config, "StackedRNNCells"), std::move(cells)) {}

  std::vector<int64_t> state_size() const override {
    std::vector<int64_t> all;
    for (const auto &[cell, sizes] : cells_) all.insert(all.end(), sizes.begin(), sizes.end());
    return all;
  }
  int64_t output_size() const override { return cells_.back().first->output_size(); }

 private:
  StackedRNNCells(ConfigReader &&r, std::vector<LayerPtr> cells) : Layer("StackedRNNCells", r) {
    if (cells.empty()) {
      for (const Config &c : r.get_config_list("cells")) cells.push_back(deserialize_layer(c));
    }
    r.finish();
    if (cells.empty()) fail(Code::kInvalidArgument, r.owner(), ": needs at least one cell");
    for (size_t i = 0; i < cells.size(); ++i) {
      cells_.emplace_back(cells[i], cell_states(r.owner(), *cells[i]));
      track(cells[i], "cells/" + std::to_string(i));
    }
  }

  // Builds the cells while their inputs' sizes are known: a built-in cell's output size is; a custom
  // cell's may differ from its state size (Keras's output_size), so the cells after one build at the
  // first call, from its output.
  void build_impl(const std::vector<PartialShape> &shapes) override {
    if (shapes.empty()) bad_input("needs the input's shape to build");
    PartialShape step = shapes[0];
    for (const auto &[cell, sizes] : cells_) {
      cell->build({step});
      if (!output_known(*cell)) break;
      step = {step.empty() ? kUnknownDim : step[0], cell->output_size()};
    }
  }

  // Whether kiln knows the cell's output size before it runs: a built-in cell's, a stack's whose last
  // cell's is known.
  static bool output_known(const Layer &cell) {
    if (dynamic_cast<const RecurrentCell *>(&cell)) return true;
    const auto *stack = dynamic_cast<const StackedRNNCells *>(&cell);
    return stack && output_known(*stack->cells_.back().first);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const size_t n = state_size().size();
    if (inputs.size() != 1 + n)
      bad_input("got ", inputs.size(), " inputs; expected the input, then ", n, " states");
    Tensor x = inputs[0];
    std::vector<Tensor> states{Tensor()};  // the output goes first
    size_t at = 1;
    for (const auto &[cell, sizes] : cells_) {
      const auto first = inputs.begin() + std::ptrdiff_t(at);
      std::vector<Tensor> own(first, first + std::ptrdiff_t(sizes.size()));
      at += sizes.size();
      // Each cell's states in its compute dtype, as its call makes its input (Keras's autocast), and
      // back in the dtype they came in.
      const DType cdt = cell->compute_dtype();
      for (Tensor &st : own)
        if (is_floating(st.dtype()) && is_floating(cdt) && st.dtype() != cdt) st = ops::cast(st, cdt);
      auto [y, next] = cell_step(*this, *cell, x, own, ctx.training);
      x = y;
      for (size_t j = 0; j < next.size(); ++j)
        states.push_back(next[j].dtype() == first[std::ptrdiff_t(j)].dtype()
                             ? next[j]
                             : ops::cast(next[j], first[std::ptrdiff_t(j)].dtype()));
    }
    states[0] = x;
    return states;
  }

  void add_config(Config &c) const override {
    std::vector<Config> cells;
    for (const auto &[cell, sizes] : cells_) cells.push_back(serialize_layer(*cell));
    c.set("cells", cells);
  }

  std::vector<std::pair<LayerPtr, std::vector<int64_t>>> cells_;
};

// keras.layers.RNN(cell, return_sequences, return_state, go_backwards, stateful, unroll,
// zero_output_for_mask), and SimpleRNN / GRU / LSTM (units, activation="tanh",
// recurrent_activation="sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
// recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=True (LSTM),
// reset_after=True (GRU), regularizers, dropout, recurrent_dropout, seed, and RNN's arguments), which
// are RNNs of their built-in cell. Inputs: the sequences [B, T, ...], then optionally the initial
// states ([B, size] each: Keras's initial_state; zeros without). Outputs: the last output (or every
// step's, [B, T, ...], with return_sequences), then the final states with return_state.
// stateful=True is not supported (UNIMPLEMENTED); unroll changes nothing here.
class RNN final : public Layer {
 public:
  RNN(const Config &config, CellKind kind) : RNN(config, ConfigReader(config, kind_name(kind)), kind) {}
  RNN(const Config &config, std::vector<LayerPtr> cells)
      : RNN(config, ConfigReader(config, "RNN"), std::move(cells)) {}

 private:
  RNN(const Config &config, ConfigReader &&r, CellKind kind) : Layer(kind_name(kind), r) {
    spec_ = read_cell_spec(config, r, kind);
    activity_reg_ = regularizer_from_value(config, "activity_regularizer");
    r.accept({"activity_regularizer"});
    flags_ = LoopFlags::read(r);
    if (r.has("use_cudnn")) {
      const Config::Type t = config.type("use_cudnn");
      if (t == Config::Type::kBool ? config.get_bool("use_cudnn")
                                   : t != Config::Type::kString || config.get_string("use_cudnn") != "auto")
        fail(Code::kInvalidArgument, r.owner(), ": use_cudnn must be \"auto\" or false (kiln has no cuDNN)");
    }
    r.finish();
    Config base;
    base.set("name", cell_name(kind)).set("trainable", trainable());
    set_policy_config(base, "dtype", dtype_policy());
    set_cell(std::make_shared<RecurrentCell>(base, spec_), r.owner());
  }

  RNN(const Config &config, ConfigReader &&r, std::vector<LayerPtr> cells) : Layer("RNN", r) {
    flags_ = LoopFlags::read(r);
    activity_reg_ = regularizer_from_value(config, "activity_regularizer");  // Keras's Layer argument
    r.accept({"activity_regularizer"});
    LayerPtr cell;
    if (cells.empty()) {
      cell = deserialize_layer(wrapped_config(r, "cell"));
      r.accept({"cell"});
    } else if (cells.size() == 1) {
      cell = cells[0];
    } else {
      Config stack;
      stack.set("trainable", trainable());
      cell = create_layer_around("StackedRNNCells", stack, cells);
    }
    r.finish();  // a "cell" key beside the cells given is unknown
    set_cell(cell, r.owner());
  }

  void set_cell(LayerPtr cell, const std::string &owner) {
    states_ = cell_states(owner, *cell);
    builtin_ = dynamic_cast<RecurrentCell *>(cell.get());
    cell_ = std::move(cell);
    track(cell_, "cell");
  }

  size_t state_count() const { return states_.size(); }

  void check_shapes(const std::vector<PartialShape> &shapes) const {
    const size_t n = state_count();
    if (shapes.size() != 1 && shapes.size() != 1 + n)
      bad_input("got ", shapes.size(), " inputs; expected the sequences, then optionally ", n,
                " initial state", n > 1 ? "s" : "",
                builtin_ && n == 2 ? " (h, c)"
                : builtin_         ? " (h)"
                                   : "");
    if (shapes[0].size() < 3 || (builtin_ && shapes[0].size() != 3))
      bad_input("sequences have shape ", partial_shape_string(shapes[0]), "; expected rank 3",
                builtin_ ? " (batch, timesteps, features)" : " or more (batch, timesteps, features...)");
    for (size_t i = 1; i < shapes.size(); ++i) {
      const PartialShape &st = shapes[i];
      const int64_t want = states_[i - 1];
      if (st.size() != 2 || (st[1] >= 0 && st[1] != want))
        bad_input("initial state ", i - 1, " has shape ", partial_shape_string(st), "; expected (batch, ",
                  want, ")");
    }
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    check_shapes(shapes);
    PartialShape step{shapes[0][0]};
    step.insert(step.end(), shapes[0].begin() + 2, shapes[0].end());
    if (builtin_) known_dim(*this, shapes[0], 2, "feature dimension");
    cell_->build({step});
  }

  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    return flags_.output_masks(masks, state_count());
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    check_shapes(check_sequences(*this, inputs));
    const Tensor &seq = inputs[0];
    const int64_t batch = seq.shape()[0], steps = seq.shape()[1];
    if (builtin_ && seq.shape()[2] != builtin_->input_dim())
      bad_input("sequences have ", seq.shape()[2], " features; the layer was built for ",
                builtin_->input_dim());
    const Tensor *mask = sequence_mask(*this, ctx, seq);
    // Keras: the states (and a built-in cell's inputs) in the cell's compute dtype; the outputs in
    // the layer's.
    const DType dt = is_floating(cell_->compute_dtype()) ? cell_->compute_dtype() : seq.dtype();
    std::vector<Tensor> states;
    for (size_t i = 0; i < state_count(); ++i) {
      if (inputs.size() == 1) {
        states.push_back(ops::zeros(Shape({batch, states_[i]}), dt));
        continue;
      }
      const Tensor &st = inputs[1 + i];
      if (st.shape()[0] != batch)
        bad_input("initial state ", i, " has batch ", st.shape()[0], "; the sequences have ", batch);
      states.push_back(st.dtype() == dt ? st : ops::cast(st, dt));
    }
    // The steps, in time order: [T] of [B, ...] (the input projections of a built-in cell).
    RecurrentCell::StepWeights w;
    CellMasks drop;
    Tensor by_time;
    if (builtin_) {
      w = builtin_->read_weights(dt);
      drop = builtin_->draw_masks(batch, seq.shape()[2], dt, ctx.training);
      by_time =
          ops::transpose(builtin_->project(seq.dtype() == dt ? seq : ops::cast(seq, dt), drop, w), {1, 0, 2});
    } else {
      std::vector<int64_t> perm{1, 0};
      for (int64_t a = 2; a < seq.rank(); ++a) perm.push_back(a);
      by_time = ops::transpose(seq, perm);
    }
    const std::vector<Tensor> xs = ops::split(by_time, {}, steps, 0);
    std::vector<int64_t> step_shape = by_time.shape().to_vector();
    step_shape.erase(step_shape.begin());
    const std::optional<SequenceScope> scope = builtin_ ? std::nullopt : std::make_optional<SequenceScope>();

    std::vector<Tensor> result = flags_.run(steps, mask, std::move(states), [&](int64_t t, const auto &st) {
      const Tensor xt = ops::reshape(xs[size_t(t)], step_shape);
      if (!builtin_) return cell_step(*this, *cell_, xt, st, ctx.training);
      std::vector<Tensor> next = builtin_->step(xt, st, w, drop);
      return std::make_pair(next[0], next);
    });
    for (Tensor &y : result)
      if (is_floating(y.dtype()) && y.dtype() != compute_dtype()) y = ops::cast(y, compute_dtype());
    if (activity_reg_)
      for (const Tensor &y : result) add_loss(activity_loss(*activity_reg_, y));
    return result;
  }

  void add_config(Config &c) const override {
    flags_.write(c);
    if (spec_) {
      write_cell_spec(c, *spec_, true, activity_reg_);
    } else {
      c.set("cell", serialize_layer(*cell_));
      if (activity_reg_) set_regularizer(c, "activity_regularizer", activity_reg_);
    }
  }

  std::shared_ptr<const CellSpec> spec_;  // SimpleRNN, GRU, LSTM: their cell's arguments
  RegularizerPtr activity_reg_;
  LoopFlags flags_;
  LayerPtr cell_;
  RecurrentCell *builtin_ = nullptr;  // cell_ when it is a built-in cell (the steps' fast path)
  std::vector<int64_t> states_;
};

template <CellKind K>
void register_recurrent(const char *name) {
  add_layer_factory(name, [](const Config &c) -> LayerPtr { return std::make_shared<RNN>(c, K); });
  add_layer_factory(cell_class(K),
                    [](const Config &c) -> LayerPtr { return std::make_shared<RecurrentCell>(c, K); });
}

// A layer made around given layers, or from its config alone (which then holds them serialized).
template <typename L>
void register_around(const char *name) {
  add_layer_factory(
      name, [](const Config &c) -> LayerPtr { return std::make_shared<L>(c, std::vector<LayerPtr>{}); });
  add_layer_around_factory(name, [name](const Config &c, const std::vector<LayerPtr> &layers) -> LayerPtr {
    if (layers.empty()) fail(Code::kInvalidArgument, name, ": needs at least one cell");
    return std::make_shared<L>(c, layers);
  });
}

}  // namespace

void register_recurrent_layers() {
  register_recurrent<CellKind::kSimple>("SimpleRNN");
  register_recurrent<CellKind::kGru>("GRU");
  register_recurrent<CellKind::kLstm>("LSTM");
  register_around<RNN>("RNN");
  register_around<StackedRNNCells>("StackedRNNCells");
}

}  // namespace kiln::layers

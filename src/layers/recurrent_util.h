// What the recurrent layers (recurrent_layers.cc) and the convolutional recurrent layers
// (conv_lstm_layers.cc) share: Keras's RNN loop arguments, its cells' dropout rates and
// unit_forget_bias, and the masking of one step as Keras's backend rnn does it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "layers/initializers.h"
#include "layers/layer.h"
#include "layers/regularizers.h"
#include "ops/ops.h"

namespace kiln::layers {

// What every RNN layer's config holds about its loop (Keras's RNN arguments). stateful=True is
// UNIMPLEMENTED.
struct LoopFlags {
  bool return_sequences = false, return_state = false, go_backwards = false, unroll = false,
       zero_output_for_mask = false;

  static LoopFlags read(ConfigReader &r);
  void write(Config &c) const;
  // The output masks of a call whose input masks are masks: the sequences' mask for every step's
  // output (with return_sequences), none for the last output and the `states` final states.
  std::vector<Tensor> output_masks(const std::vector<Tensor> &masks, size_t states) const;

  // Keras's backend rnn: step(t, states) -> (output, new states) for t over the `steps` steps, from
  // the last with go_backwards; a step whose mask (mask [B, T], or null) is false keeps the states
  // and repeats the previous output (zeros before the first step, and always with
  // zero_output_for_mask). Returns the last output, or every step's stacked on
  // axis 1 with return_sequences (in processing order), then the final states with return_state.
  using StepFn = std::function<std::pair<Tensor, std::vector<Tensor>>(int64_t, const std::vector<Tensor> &)>;
  std::vector<Tensor> run(int64_t steps, const Tensor *mask, std::vector<Tensor> states,
                          const StepFn &step) const;
};

// The sequences of an RNN layer's call: a floating dtype, at least one step (INVALID_ARGUMENT naming
// the layer otherwise). Returns the input shapes of the call, for its shape checks.
std::vector<PartialShape> check_sequences(const Layer &l, const std::vector<Tensor> &inputs);
// The mask of the sequences seq [B, T, ...] in a call, or null; INVALID_ARGUMENT naming the layer
// unless it is [B, T].
const Tensor *sequence_mask(const Layer &l, const CallContext &ctx, const Tensor &seq);

// Keras's weight arguments of a recurrent cell (LSTMCell, ConvLSTMCell, ...): the kernel's, the
// recurrent kernel's and the bias's initializers and regularizers; constraints are accepted as null.
struct RecurrentWeights {
  InitializerPtr kernel_init, recurrent_init, bias_init;
  RegularizerPtr kernel_reg, recurrent_reg, bias_reg;

  // Reads them, with Keras's default initializers (glorot_uniform, orthogonal, zeros).
  void read_weights(const Config &config, ConfigReader &r);
  void write_initializers(Config &c) const;
  // The regularizers, then the activity regularizer when activity is given (a layer's), then the null
  // constraints, in Keras's order.
  void write_regularizers(Config &c, const RegularizerPtr *activity) const;
};

// The seed of a cell's recurrent dropout masks: the next one after the input masks' seed (wrapping),
// none (-1) for none.
inline int64_t recurrent_seed(int64_t seed) { return seed < 0 ? -1 : seed == INT64_MAX ? 0 : seed + 1; }

// A dropout rate as Keras's cells read it: clamped into [0, 1]; NaN is INVALID_ARGUMENT.
double clamped_rate(ConfigReader &r, const char *key);

// Keras's unit_forget_bias: the LSTM bias initializer's values ([4 * units]: i, f, c, o) with the
// forget gate's set to one.
class UnitForgetBias final : public Initializer {
 public:
  UnitForgetBias(InitializerPtr base, int64_t units) : base_(std::move(base)), units_(units) {}
  Tensor operator()(const Shape &, DType dtype) const override;
  std::string class_name() const override { return base_->class_name(); }
  Config get_config() const override { return base_->get_config(); }

 private:
  InitializerPtr base_;
  int64_t units_;
};

}  // namespace kiln::layers

// Fused optimizer updates: one pass over memory updates a weight and all its slots in place
// (Keras's update_step for each optimizer, with the gradient clipping and decoupled weight decay
// of its base class folded in), and the sums of squares gradient clipping needs.
//
// Every element's update reads only that element (Lamb also reads two norms of the whole
// variable, summed in a first pass that writes nothing), so splitting the elements among threads
// cannot change a bit: results do not depend on the thread count. Sums of squares add
// fixed-size blocks in a fixed order for the same reason.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// One rule per Keras update_step (and per variant that changes which slots exist).
enum class UpdateRule {
  kSgd,          // slots: none
  kSgdMomentum,  // slots: momentum
  kSgdNesterov,  // slots: momentum
  kAdam,         // slots: momentum, velocity
  kAdamAmsgrad,  // slots: momentum, velocity, velocity_hat
  kRmsprop,      // slots: velocity, then momentum when use_momentum, then average_gradient when centered
  kAdagrad,      // slots: accumulator
  kAdadelta,     // slots: accumulated_grad, accumulated_delta_var
  kNadam,        // slots: momentum, velocity
  kAdamax,       // slots: momentum, norm
  kLion,         // slots: momentum
  kFtrl,         // slots: accumulator, linear
  kLamb,         // slots: momentum, velocity (the update takes two passes: norms, then the step)
  kAdafactor,    // slots: r, c, velocity when factored, velocity alone otherwise (several passes)
};

constexpr int kMaxSlots = 3;
constexpr int kMaxCoefficients = 10;

// Everything a step needs besides the buffers. Coefficients are computed once per step in
// double and rounded to the variable's dtype by the kernel.
struct UpdateParams {
  UpdateRule rule = UpdateRule::kSgd;
  // Gradient preprocessing, in this order: g = g * (clip_mul / clip_div) when scale is set (Keras's
  // clip_by_norm and clip_by_global_norm; the ratio is rounded once, in double, so the loop
  // multiplies instead of dividing), then g = clip(g, -clip_value, clip_value) when
  // clip_value > 0 (NaN stays NaN).
  bool scale = false;
  double clip_mul = 1.0;
  double clip_div = 1.0;
  double clip_value = 0.0;
  // Decoupled weight decay before the update, as Keras's _apply_weight_decay:
  // w = w - w * weight_decay * decay_lr, when weight_decay != 0.
  double weight_decay = 0.0;
  double decay_lr = 0.0;
  // RMSprop's variants.
  bool centered = false;
  bool use_momentum = false;
  // The rule's coefficients (see optimizer_kernels.cc for each rule's list).
  double c[kMaxCoefficients] = {};
  // Adafactor's factoring of a variable of rank >= 2 over its last two axes: factor[0] the
  // product of the leading axes, factor[1] the rows (axis -2), factor[2] the columns (axis -1);
  // its r slot holds factor[0] * factor[1] elements and c factor[0] * factor[2].
  bool factored = false;
  int64_t factor[3] = {};
};

// Updates n elements of a weight and its slots: dst[0] / src[0] are the weight's buffers to write
// and read, dst[1..] / src[1..] the slots' in the rule's order; dst[i] may equal src[i] (in place).
// grad holds n elements of the same dtype (float32 or float64; anything else is Unimplemented,
// checked before any write). Runs on num_threads() threads above the elementwise threshold;
// allocates nothing once it starts writing (Lamb's norms, over more than one block, allocate their
// partial sums before) and throws nothing then.
void apply_update(DType dtype, int64_t n, const UpdateParams &p, void *const *dst, const void *const *src,
                  const void *grad);

// The sum of squares of n elements (float32 or float64), accumulated in double: fixed blocks
// summed in order, the blocks' sums added in block order, so the bits do not depend on the
// thread count.
double sum_of_squares(DType dtype, const void *data, int64_t n);

}  // namespace kiln::kernels

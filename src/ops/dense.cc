// dense: a Dense layer's act(x · kernel + bias) as one op. float32 and bfloat16 run one matmul
// primitive with the bias fused and the activation in place on its output (kernels::dense), and
// record one tape entry whose rule is written in ops; float64 composes matmul, add and the
// activation op. Either way the bits are those of the composition (few rows: matmul's gemv
// kernel, which an unrecorded call feeds with its kernel packed once and memoised), except with
// DenseOptions::inference_weights (ops/dense_options.h), which rounds or quantizes the kernel.
#include <cmath>
#include <optional>

#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "ops/dense_options.h"
#include "ops/elementwise_internal.h"
#include "ops/fused_activation.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

using DA = DenseActivation;
using internal::activation_kernel;
using internal::ActivationKernel;
using internal::pre_activation_grads;

// t [..., n] as [rows, n]; rank-2 tensors as they are.
Tensor rows_of(const Tensor &t) {
  if (t.rank() == 2) return t;
  const int64_t n = t.shape()[t.rank() - 1];
  return reshape(t, {-1, n});
}

void validate(const Tensor &x, const Tensor &kernel, const Tensor &bias, DA activation, float alpha) {
  require_floating(x, "dense", "x");
  require_dtype(kernel, "dense", "kernel", {x.dtype()});
  if (bias.defined()) require_dtype(bias, "dense", "bias", {x.dtype()});
  const int64_t in = x.rank() > 0 ? x.shape()[x.rank() - 1] : 0;
  if (x.rank() < 2 || kernel.rank() != 2 || kernel.shape()[0] != in)
    fail(Code::kInvalidArgument, "dense: x ", x.description(), " and kernel ", kernel.description(),
         " do not match; expected x of rank >= 2 and a kernel [", in, ", units]");
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != kernel.shape()[1]))
    fail(Code::kInvalidArgument, "dense: bias ", bias.description(), " does not match kernel ",
         kernel.description(), "; expected a bias [", kernel.shape()[1], "]");
  if ((activation == DA::kLeakyRelu || activation == DA::kElu) && !std::isfinite(alpha))
    fail(Code::kInvalidArgument, "dense: argument 'alpha' is ", alpha, "; expected a finite value");
  activation_kernel(activation, "dense");  // rejects an out-of-range enum
}

}  // namespace

Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha) {
  return dense(x, kernel, bias, activation, alpha, DenseOptions{});
}

Tensor dense(const Tensor &x, const Tensor &kernel, const Tensor &bias, DenseActivation activation,
             float alpha, const DenseOptions &options) {
  validate(x, kernel, bias, activation, alpha);
  if (x.dtype() == DType::kFloat64) {  // oneDNN 2.6 has no f64 matmul on CPU: the ops themselves
    Tensor z = matmul(x, kernel);
    if (bias.defined()) z = add(z, bias);
    return internal::activate(z, activation, alpha);
  }
  const ActivationKernel act = activation_kernel(activation, "dense");
  const float kernel_alpha = internal::activation_kernel_alpha(activation, alpha);
  Shape out_shape = x.shape();
  out_shape.set_dim(x.rank() - 1, kernel.shape()[1], "dense");
  Tensor y = Tensor::empty(x.dtype(), out_shape);
  const bool recording = should_record({&x, &kernel, &bias});
  Tensor z;  // the pre-activation, kept only for a rule that reads it
  if (recording && act.reads_pre) z = Tensor::empty(x.dtype(), out_shape);
  // An inference call (no tape records it) may read the kernel packed and memoised by its
  // storage; a recorded one reads it in place (the same float32 bits).
  kernels::DenseWeightSource source;
  if (!recording) {
    source.storage = kernel.storage().get();
    source.weights = options.inference_weights;
  }
  // The exact gelu under a tape (float32) keeps the erfc its forward computes, so that the rule
  // does not evaluate it again: half of the activation's cost in a step (W4's FFN).
  Tensor erfc;
  const bool save_erfc = z.defined() && activation == DA::kGelu && x.dtype() == DType::kFloat32;
  kernels::dense(save_erfc ? std::nullopt : act.op, kernel_alpha, x.dtype(), x.raw_data(), x.shape(),
                 kernel.raw_data(), kernel.shape(), bias.defined() ? bias.raw_data() : nullptr,
                 z.defined() && !save_erfc ? z.raw_mutable_data() : nullptr,
                 save_erfc ? z.raw_mutable_data() : y.raw_mutable_data(), source);
  if (save_erfc) {
    erfc = Tensor::empty(DType::kFloat32, out_shape);
    kernels::gelu_erf_saving_erfc(z.data<float>(), y.mutable_data<float>(), erfc.mutable_data<float>(),
                                  y.num_elements());
  }
  if (recording) {
    // As matmul's and add's rules on the activation's gradient: dx = gz · kernelᵀ, dkernel =
    // xᵀ · gz with x's leading dims folded into rows, dbias = gz summed over the leading dims.
    // Only the gradients some tape can use are computed (TF's skip_input_indices): the first
    // layer's batch x is watched by no tape, so its dx GEMM, a quarter of an MLP step, is skipped.
    const bool need_dx = should_record({&x}), need_dk = should_record({&kernel}),
               need_db = bias.defined() && should_record({&bias});
    // A rule that reads z recomputes it from x and kernel under a recording outer tape.
    const Tensor saved_x = need_dk || act.reads_pre ? x : Tensor();
    const Tensor saved_kernel = need_dx || act.reads_pre ? kernel : Tensor();
    const Tensor saved_bias = act.reads_pre ? bias : Tensor();
    const int64_t units = kernel.shape()[1];
    record("dense", {x, kernel, bias}, {y},
           [saved_x, saved_kernel, saved_bias, y, z, erfc, activation, alpha, need_dx, need_dk, need_db,
            units](const Grads &g) -> Grads {
             // The kernel's z is no op's output, so a tape recording this rule (higher order)
             // could not differentiate through it: there, z is recomputed as a recorded op.
             const bool recompute = z.defined() && should_record({&saved_x, &saved_kernel, &saved_bias});
             const Tensor pre =
                 recompute ? dense(saved_x, saved_kernel, saved_bias, DenseActivation::kLinear) : z;
             const auto [gz, db] = pre_activation_grads(activation, alpha, g[0], y, pre,
                                                        recompute ? Tensor() : erfc, need_db, units);
             Tensor dx = need_dx ? matmul(gz, saved_kernel, false, true) : Tensor();
             Tensor dk = need_dk ? matmul(rows_of(saved_x), rows_of(gz), true, false) : Tensor();
             return {dx, dk, db};
           });
  }
  return y;
}

}  // namespace kiln::ops

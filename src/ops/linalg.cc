// matmul, softmax and log_softmax. Reductions live in reduce.cc.
#include "kernels/matmul.h"
#include "kernels/softmax.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"
#include "ops/reduce_internal.h"

namespace kiln::ops {

namespace {

const char *flag(bool b) { return b ? "true" : "false"; }

[[noreturn]] void matmul_fail(const Tensor &a, const Tensor &b, bool ta, bool tb, const std::string &what) {
  fail(Code::kInvalidArgument, "matmul: ", what, " (a is ", a.description(), " with transpose_a=", flag(ta),
       ", b is ", b.description(), " with transpose_b=", flag(tb), ")");
}

Shape matmul_shape(const Tensor &a, const Tensor &b, bool ta, bool tb) {
  const std::initializer_list<DType> allowed = {DType::kFloat32, DType::kBFloat16, DType::kFloat64,
                                                DType::kInt32, DType::kInt64};
  require_dtype(a, "matmul", "a", allowed);
  require_dtype(b, "matmul", "b", allowed);
  require_same_dtype(a, b, "matmul");
  if (a.rank() < 2 || b.rank() < 2) matmul_fail(a, b, ta, tb, "operands must have rank >= 2");
  const Shape &sa = a.shape(), &sb = b.shape();
  const int ra = sa.rank(), rb = sb.rank();
  const int64_t m = ta ? sa[ra - 1] : sa[ra - 2], ka = ta ? sa[ra - 2] : sa[ra - 1];
  const int64_t kb = tb ? sb[rb - 1] : sb[rb - 2], n = tb ? sb[rb - 2] : sb[rb - 1];
  if (ka != kb)
    matmul_fail(
        a, b, ta, tb,
        str_cat("inner dimensions differ, ", ka, " vs ", kb, "; expected a's columns to equal b's rows"));
  const int r = ra > rb ? ra : rb;
  std::vector<int64_t> out;
  for (int i = 0; i < r - 2; ++i) {
    const int ia = i - (r - ra), ib = i - (r - rb);
    const int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
    if (da != db && da != 1 && db != 1)
      matmul_fail(a, b, ta, tb, "batch dimensions do not broadcast; expected equal batch dims or 1");
    out.push_back(da == 1 ? db : da);
  }
  out.push_back(m);
  out.push_back(n);
  // Checked: [2^40, 0] x [0, 2^40] is a valid product of two empty tensors, but not its result.
  return Shape(out, "matmul");
}

// t [..., n] as the matrix [rows, n] (the batch folded into the rows).
Tensor as_rows(const Tensor &t) {
  const int64_t n = t.shape()[t.rank() - 1];
  int64_t rows = 1;
  for (int i = 0; i + 1 < t.rank(); ++i) rows *= t.shape()[i];
  return reshape(t, {rows, n});
}

Tensor softmax_op(const char *op, const Tensor &x, int64_t axis, bool log) {
  require_floating(x, op, "x");
  if (x.rank() == 0)
    fail(Code::kInvalidArgument, op, ": argument 'x' is ", x.description(), "; expected rank >= 1");
  const int a = normalize_axis(axis, x.rank(), op);
  Tensor out = Tensor::empty(x.dtype(), x.shape());
  const internal::AxisView v = internal::axis_view(x.shape(), a);
  kernels::softmax(log, x.dtype(), x.raw_data(), v.outer, v.n, v.inner, out.raw_mutable_data());
  if (should_record({&x})) {
    // In ops, so that the rule is itself differentiable.
    // bfloat16 computes its rule in float32, as its forward pass.
    std::vector<int64_t> axes{a};
    // Rows of n contiguous values: the axis is the last one, or every axis after it has size 1
    // (then the row is the axis, not the last dim).
    const bool last = v.inner == 1;
    const int64_t rows = v.outer, n = v.n;
    record(op, {x}, {out}, [out, axes, log, last, rows, n](const Grads &g) -> Grads {
      // float32 along contiguous rows, when no tape watches the backward pass: one fused pass per
      // row (the rule below makes four passes and a reduction over the tensor).
      if (last && out.dtype() == DType::kFloat32 && g[0].dtype() == DType::kFloat32 &&
          !should_record({&out, &g[0]})) {
        Tensor dx = Tensor::empty(DType::kFloat32, out.shape());
        kernels::softmax_grad(log, out.data<float>(), g[0].data<float>(), n == 0 ? 0 : rows, n,
                              dx.mutable_data<float>());
        return {dx};
      }
      const DType ct = internal::gradient_dtype(out);
      const Tensor y = internal::as_dtype(out, ct), dy = internal::as_dtype(g[0], ct);
      const Tensor dx =
          log ? sub(dy, mul(exp(y), sum(dy, axes, true))) : mul(sub(dy, sum(mul(dy, y), axes, true)), y);
      return {internal::as_dtype(dx, out.dtype())};
    });
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor &a, const Tensor &b, bool transpose_a, bool transpose_b) {
  const Shape out_shape = matmul_shape(a, b, transpose_a, transpose_b);
  Tensor out = Tensor::empty(a.dtype(), out_shape);
  kernels::matmul(transpose_a, transpose_b, a.dtype(), a.raw_data(), a.shape(), b.raw_data(), b.shape(),
                  out.raw_mutable_data(), out.shape());
  if (is_floating(a.dtype()) && should_record({&a, &b})) {
    // Only the gradients some tape can use are computed (TF's skip_input_indices): an input no
    // tape watches, such as a Dense layer's batch, costs no GEMM, and its partner is not kept.
    const bool need_da = should_record({&a}), need_db = should_record({&b});
    const Tensor saved_a = need_db ? a : Tensor(), saved_b = need_da ? b : Tensor();
    const Shape a_shape = a.shape(), b_shape = b.shape();
    record("matmul", {a, b}, {out}, [saved_a, saved_b, a_shape, b_shape, transpose_a, transpose_b](const Grads &g) -> Grads {
      // out = op(a)·op(b); each case's rule keeps the result in a's (b's) own layout.
      const Tensor &d = g[0], &sa = saved_a, &sb = saved_b;
      // x[..., M, K] @ w[K, N] (a Dense layer on a sequence): the weight gradient folds the batch
      // into the rows of one GEMM, [B*M, K]^T @ [B*M, N], instead of B small GEMMs writing a
      // [B, K, N] temporary that sum_to_shape then reduces (300 MB for a BERT-base FFN).
      const bool fold = !transpose_a && b_shape.rank() == 2 && a_shape.rank() > 2;
      Tensor da, db;
      if (!transpose_a && !transpose_b) {
        if (sb.defined()) da = matmul(d, sb, false, true);
        if (sa.defined()) db = fold ? matmul(as_rows(sa), as_rows(d), true, false) : matmul(sa, d, true, false);
      } else if (transpose_a && !transpose_b) {
        if (sb.defined()) da = matmul(sb, d, false, true);
        if (sa.defined()) db = matmul(sa, d, false, false);
      } else if (!transpose_a && transpose_b) {
        if (sb.defined()) da = matmul(d, sb, false, false);
        if (sa.defined()) db = fold ? matmul(as_rows(d), as_rows(sa), true, false) : matmul(d, sa, true, false);
      } else {
        if (sb.defined()) da = matmul(sb, d, true, true);
        if (sa.defined()) db = matmul(d, sa, true, true);
      }
      return {da.defined() ? sum_to_shape(da, a_shape) : da, db.defined() ? sum_to_shape(db, b_shape) : db};
    });
  }
  return out;
}

Tensor softmax(const Tensor &x, int64_t axis) { return softmax_op("softmax", x, axis, false); }

Tensor log_softmax(const Tensor &x, int64_t axis) { return softmax_op("log_softmax", x, axis, true); }

}  // namespace kiln::ops

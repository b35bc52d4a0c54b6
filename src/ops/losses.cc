// Fused, numerically stable cross-entropy losses (TF's tf.nn.*_cross_entropy_with_logits).
// The forward pass is one kernel per row; gradient rules are written in ops (softmax,
// log_softmax, sigmoid), so tapes can nest through them. Also the CTC loss (its gradient computed
// with it, as TF's) and CTC decoding.
#include "kernels/losses.h"

#include <string>
#include <utility>
#include <vector>

#include "kernels/ctc_decode.h"
#include "ops/op_util.h"
#include "ops/ops.h"
#include "ops/recorder.h"

namespace kiln::ops {

namespace {

// The loss gradient broadcast over the class axis: g [rows...] -> [rows..., 1].
Tensor per_class(const Tensor &g) { return expand_dims(g, -1); }

Shape without_last(const Shape &s) {
  Shape out;
  for (int i = 0; i + 1 < s.rank(); ++i) out.push_back(s[i]);
  return out;
}

template <typename Index>
void check_labels(const Index *l, int64_t count, int64_t classes, const Tensor &labels,
                  const Tensor &logits) {
  for (int64_t i = 0; i < count; ++i)
    if (l[i] < 0 || l[i] >= classes)
      fail(Code::kInvalidArgument, "sparse_softmax_cross_entropy_with_logits: labels[", i,
           "] = ", static_cast<int64_t>(l[i]), " (labels ", labels.description(), ", logits ",
           logits.description(), ") is outside the valid range of classes; expected a label in [0, ", classes,
           ")");
}

// The fused losses run float32 or float64 logits (labels of the same dtype where they are floats);
// bfloat16 ones run as float32 and round the loss once (the casts carry the gradient).
void require_xent_dtype(const Tensor &logits, const char *op, const char *arg) {
  require_floating(logits, op, arg);
}
Tensor as_float32(const Tensor &t) { return cast(t, DType::kFloat32); }

}  // namespace

Tensor sparse_softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits) {
  const char *op = "sparse_softmax_cross_entropy_with_logits";
  require_dtype(labels, op, "labels", {DType::kInt32, DType::kInt64});
  require_xent_dtype(logits, op, "logits");
  if (logits.dtype() == DType::kBFloat16)
    return cast(sparse_softmax_cross_entropy_with_logits(labels, as_float32(logits)), DType::kBFloat16);
  if (logits.rank() < 1 || labels.shape() != without_last(logits.shape()))
    fail(Code::kInvalidArgument, op, ": labels ", labels.description(), " and logits ", logits.description(),
         " do not match; expected logits of rank >= 1 and labels of logits' shape without its last (class) "
         "dim");
  const int64_t classes = logits.shape()[logits.rank() - 1];
  if (labels.dtype() == DType::kInt32)
    check_labels(labels.data<int32_t>(), labels.num_elements(), classes, labels, logits);
  else
    check_labels(labels.data<int64_t>(), labels.num_elements(), classes, labels, logits);
  Tensor loss = Tensor::empty(logits.dtype(), labels.shape());
  const int64_t rows = labels.num_elements();
  kernels::sparse_softmax_xent(logits.dtype(), logits.raw_data(), labels.dtype(), labels.raw_data(), rows,
                               classes, loss.raw_mutable_data());
  if (should_record({&logits})) {
    record(op, {labels, logits}, {loss}, [labels, logits, classes, rows](const Grads &g) -> Grads {
      // TF's backprop, g * (softmax - one_hot(labels)): one fused pass, or built from ops when an
      // outer tape records (so it can be differentiated again).
      if (!should_record({&logits, &g[0]})) {
        Tensor d = Tensor::empty(logits.dtype(), logits.shape());
        kernels::sparse_softmax_xent_grad(logits.dtype(), logits.raw_data(), labels.dtype(),
                                          labels.raw_data(), g[0].raw_data(), rows, classes,
                                          d.raw_mutable_data());
        return {Tensor(), d};
      }
      Tensor target = one_hot(labels, classes, 1.0, 0.0, -1, logits.dtype());
      return {Tensor(), mul(per_class(g[0]), sub(softmax(logits, -1), target))};
    });
  }
  return loss;
}

Tensor softmax_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits, int64_t axis) {
  const char *op = "softmax_cross_entropy_with_logits";
  require_xent_dtype(logits, op, "logits");
  require_dtype(labels, op, "labels", {logits.dtype()});
  if (logits.dtype() == DType::kBFloat16)
    return cast(softmax_cross_entropy_with_logits(as_float32(labels), as_float32(logits), axis),
                DType::kBFloat16);
  if (logits.rank() < 1)
    fail(Code::kInvalidArgument, op, ": logits ", logits.description(), " is a scalar; expected rank >= 1");
  const int a = normalize_axis(axis, logits.rank(), op);
  Tensor z = labels;
  if (z.shape() != logits.shape()) {
    // TF broadcasts labels to logits' shape; anything else is an error naming this op.
    Shape b = broadcast_shapes(z.shape(), logits.shape(), op);
    if (b != logits.shape())
      fail(Code::kInvalidArgument, op, ": labels ", labels.description(), " do not broadcast to logits ",
           logits.description(), "; expected labels of logits' shape");
    z = broadcast_to(z, logits.shape());
  }
  Tensor x = logits;
  if (a != logits.rank() - 1) {  // move the class axis last; transpose records its own gradient
    std::vector<int64_t> perm;
    for (int i = 0; i < logits.rank(); ++i)
      if (i != a) perm.push_back(i);
    perm.push_back(a);
    x = transpose(x, perm);
    z = transpose(z, perm);
  }
  Tensor loss = Tensor::empty(x.dtype(), without_last(x.shape()));
  const int64_t classes = x.shape()[x.rank() - 1], rows = loss.num_elements();
  kernels::softmax_xent(x.dtype(), x.raw_data(), z.raw_data(), rows, classes, loss.raw_mutable_data());
  if (should_record({&x, &z})) {
    record(op, {z, x}, {loss}, [z, x, rows, classes](const Grads &g) -> Grads {
      Tensor ge = per_class(g[0]);
      // d/dx of sum_j z_j (lse - x_j) = softmax * sum(z) - z: equal to TF's softmax - z for labels
      // that sum to 1, and still the true gradient for labels that do not. Fused unless an outer
      // tape records.
      Tensor dx;
      if (!should_record({&x, &z, &g[0]})) {
        dx = Tensor::empty(x.dtype(), x.shape());
        kernels::softmax_xent_grad(x.dtype(), x.raw_data(), z.raw_data(), g[0].raw_data(), rows, classes,
                                   dx.raw_mutable_data());
      } else {
        dx = mul(ge, sub(mul(softmax(x, -1), sum(z, {-1}, true)), z));
      }
      Tensor dz = mul(ge, neg(log_softmax(x, -1)));
      return {dz, dx};
    });
  }
  return loss;
}

Tensor sigmoid_cross_entropy_with_logits(const Tensor &labels, const Tensor &logits) {
  const char *op = "sigmoid_cross_entropy_with_logits";
  require_xent_dtype(logits, op, "logits");
  require_dtype(labels, op, "labels", {logits.dtype()});
  if (logits.dtype() == DType::kBFloat16)
    return cast(sigmoid_cross_entropy_with_logits(as_float32(labels), as_float32(logits)), DType::kBFloat16);
  if (labels.shape() != logits.shape())
    fail(Code::kInvalidArgument, op, ": labels ", labels.description(), " and logits ", logits.description(),
         " differ in shape; expected the same shape");
  Tensor loss = Tensor::empty(logits.dtype(), logits.shape());
  kernels::sigmoid_xent(logits.dtype(), logits.raw_data(), labels.raw_data(), loss.num_elements(),
                        loss.raw_mutable_data());
  if (should_record({&labels, &logits})) {
    record(op, {labels, logits}, {loss}, [labels, logits](const Grads &g) -> Grads {
      return {mul(g[0], neg(logits)), mul(g[0], sub(sigmoid(logits), labels))};
    });
  }
  return loss;
}

namespace {

// A [batch] length tensor as int64 values, each in [0, limit].
std::vector<int64_t> ctc_lengths(const Tensor &t, int64_t batch, int64_t limit, const char *arg,
                                 const char *limit_name, const char *op = "ctc_loss") {
  require_dtype(t, op, arg, {DType::kInt32, DType::kInt64});
  if (t.shape() != Shape{batch})
    fail(Code::kInvalidArgument, op, ": ", arg, " is ", t.description(), "; expected shape [", batch,
         "] (one length per sample)");
  const Tensor v = cast(t, DType::kInt64);
  std::vector<int64_t> out(v.data<int64_t>(), v.data<int64_t>() + batch);
  for (int64_t b = 0; b < batch; ++b)
    if (out[b] < 0 || out[b] > limit)
      fail(Code::kInvalidArgument, op, ": ", arg, "[", b, "] = ", out[b], " is out of range; expected [0, ",
           limit, "] (", limit_name, ")");
  return out;
}

// A class index in [-classes, classes) as [0, classes); what names the argument.
int64_t ctc_class(int64_t index, int64_t classes, const Tensor &logits, const char *what, const char *op) {
  if (classes == 0)
    fail(Code::kInvalidArgument, op, ": logits ", logits.description(),
         " have 0 classes; expected at least 1 (the blank)");
  if (index < -classes || index >= classes)
    fail(Code::kInvalidArgument, op, ": ", what, " ", index, " is out of range for ", classes,
         " classes; expected [", -classes, ", ", classes, ")");
  return index < 0 ? index + classes : index;
}

template <typename Index>
void check_ctc_labels(const Index *l, const std::vector<int64_t> &lengths, int64_t max_label, int64_t classes,
                      int64_t blank) {
  for (size_t b = 0; b < lengths.size(); ++b)
    for (int64_t i = 0; i < lengths[b]; ++i) {
      const int64_t v = l[static_cast<int64_t>(b) * max_label + i];
      if (v < 0 || v >= classes || v == blank)
        fail(Code::kInvalidArgument, "ctc_loss: labels[", b, ", ", i, "] = ", v,
             v == blank ? " is the blank index" : " is outside the classes", "; expected a label in [0, ",
             classes, ") other than the blank index ", blank, " within label_length[", b, "] = ", lengths[b]);
    }
}

}  // namespace

Tensor ctc_loss(const Tensor &labels, const Tensor &logits, const Tensor &label_length,
                const Tensor &logit_length, bool logits_time_major, int64_t blank_index) {
  const char *op = "ctc_loss";
  require_dtype(labels, op, "labels", {DType::kInt32, DType::kInt64});
  require_xent_dtype(logits, op, "logits");
  if (logits.rank() != 3 || labels.rank() != 2 ||
      labels.shape()[0] != logits.shape()[logits_time_major ? 1 : 0])
    fail(Code::kInvalidArgument, op, ": labels ", labels.description(), " and logits ", logits.description(),
         " do not match; expected labels [batch, max_label_length] and logits ",
         logits_time_major ? "[frames, batch, classes] (logits_time_major)" : "[batch, frames, classes]");
  if (logits_time_major)
    return ctc_loss(labels, transpose(logits, {1, 0, 2}), label_length, logit_length, false, blank_index);
  if (logits.dtype() == DType::kBFloat16)
    return cast(ctc_loss(labels, as_float32(logits), label_length, logit_length, false, blank_index),
                DType::kBFloat16);
  const int64_t batch = logits.shape()[0], frames = logits.shape()[1], classes = logits.shape()[2];
  const int64_t max_label = labels.shape()[1];
  const int64_t blank = ctc_class(blank_index, classes, logits, "blank_index", op);
  const std::vector<int64_t> label_len =
      ctc_lengths(label_length, batch, max_label, "label_length", "labels' max_label_length");
  const std::vector<int64_t> logit_len =
      ctc_lengths(logit_length, batch, frames, "logit_length", "logits' frames");
  if (labels.dtype() == DType::kInt32)
    check_ctc_labels(labels.data<int32_t>(), label_len, max_label, classes, blank);
  else
    check_ctc_labels(labels.data<int64_t>(), label_len, max_label, classes, blank);
  Tensor loss = Tensor::empty(logits.dtype(), Shape{batch});
  const bool recording = should_record({&logits});
  Tensor grad = recording ? Tensor::empty(logits.dtype(), logits.shape()) : Tensor();
  kernels::ctc_loss(logits.dtype(), logits.raw_data(), labels.dtype(), labels.raw_data(), label_len.data(),
                    logit_len.data(), batch, frames, classes, max_label, blank, loss.raw_mutable_data(),
                    recording ? grad.raw_mutable_data() : nullptr);
  if (recording) {
    // TF's rule: the gradient computed with the loss, scaled by the incoming one (a constant to an
    // outer tape, as in TF).
    record(op, {logits}, {loss},
           [grad](const Grads &g) -> Grads { return {mul(expand_dims(per_class(g[0]), -1), grad)}; });
  }
  return loss;
}

std::pair<Tensor, Tensor> ctc_decode(const Tensor &logits, const Tensor &sequence_lengths,
                                     const std::string &strategy, int64_t beam_width, int64_t top_paths,
                                     bool merge_repeated, int64_t mask_index) {
  const char *op = "ctc_decode";
  require_xent_dtype(logits, op, "inputs");
  if (logits.dtype() == DType::kBFloat16)
    return ctc_decode(as_float32(logits), sequence_lengths, strategy, beam_width, top_paths, merge_repeated,
                      mask_index);
  if (logits.rank() != 3)
    fail(Code::kInvalidArgument, op, ": inputs are ", logits.description(),
         "; expected logits [batch, frames, classes]");
  const bool greedy = strategy == "greedy";
  if (!greedy && strategy != "beam_search")
    fail(Code::kInvalidArgument, op, ": strategy '", strategy, "' is not one of 'greedy', 'beam_search'");
  if (!greedy && (beam_width < 1 || top_paths < 1 || top_paths > beam_width))
    fail(Code::kInvalidArgument, op, ": beam_width ", beam_width, " and top_paths ", top_paths,
         " are out of range; expected 1 <= top_paths <= beam_width");
  const int64_t batch = logits.shape()[0], frames = logits.shape()[1], classes = logits.shape()[2];
  const int64_t blank = ctc_class(mask_index, classes, logits, "mask_index", op);
  const std::vector<int64_t> lengths =
      ctc_lengths(sequence_lengths, batch, frames, "sequence_lengths", "inputs' frames", op);
  const int64_t paths = greedy ? 1 : top_paths;
  Tensor decoded = Tensor::empty(DType::kInt32, Shape{paths, batch, frames});
  Tensor scores = Tensor::empty(logits.dtype(), Shape{batch, paths});
  if (greedy) {
    kernels::ctc_greedy_decode(logits.dtype(), logits.raw_data(), lengths.data(), batch, frames, classes,
                               blank, merge_repeated, decoded.mutable_data<int32_t>(),
                               scores.raw_mutable_data());
  } else {
    const int64_t short_of = kernels::ctc_beam_search_decode(
        logits.dtype(), logits.raw_data(), lengths.data(), batch, frames, classes, blank, beam_width,
        top_paths, decoded.mutable_data<int32_t>(), scores.raw_mutable_data());
    if (short_of >= 0)
      fail(Code::kInvalidArgument, op, ": sample ", short_of, " has fewer than top_paths = ", top_paths,
           " distinct paths in its ", lengths[static_cast<size_t>(short_of)], " frames of ", classes,
           " classes (as TF: less leaves in the beam search than requested)");
  }
  return {decoded, scores};
}

}  // namespace kiln::ops

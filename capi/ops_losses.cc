// Entry points of the fused cross-entropy losses, the CTC loss and CTC decoding (kiln/ops.h, "losses").
#include <utility>

#include "capi/handles.h"
#include "ops/ops.h"

using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

extern "C" {

kiln_status *kiln_sparse_softmax_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                           const kiln_tensor *logits) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_sparse_softmax_cross_entropy_with_logits";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::sparse_softmax_cross_entropy_with_logits(tensor_of(labels, fn, "labels"),
                                                                  tensor_of(logits, fn, "logits")));
  KILN_CAPI_END
}

kiln_status *kiln_softmax_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                    const kiln_tensor *logits, int64_t axis) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_softmax_cross_entropy_with_logits";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::softmax_cross_entropy_with_logits(tensor_of(labels, fn, "labels"),
                                                           tensor_of(logits, fn, "logits"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_sigmoid_cross_entropy_with_logits(kiln_tensor **out, const kiln_tensor *labels,
                                                    const kiln_tensor *logits) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_sigmoid_cross_entropy_with_logits";
  require_not_null(out, fn, "out");
  *out = new_tensor(ops::sigmoid_cross_entropy_with_logits(tensor_of(labels, fn, "labels"),
                                                           tensor_of(logits, fn, "logits")));
  KILN_CAPI_END
}

kiln_status *kiln_ctc_loss(kiln_tensor **out, const kiln_tensor *labels, const kiln_tensor *logits,
                           const kiln_tensor *label_length, const kiln_tensor *logit_length,
                           bool logits_time_major, int64_t blank_index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_ctc_loss";
  require_not_null(out, fn, "out");
  *out =
      new_tensor(ops::ctc_loss(tensor_of(labels, fn, "labels"), tensor_of(logits, fn, "logits"),
                               tensor_of(label_length, fn, "label_length"),
                               tensor_of(logit_length, fn, "logit_length"), logits_time_major, blank_index));
  KILN_CAPI_END
}

kiln_status *kiln_ctc_decode(kiln_tensor **decoded, kiln_tensor **scores, const kiln_tensor *inputs,
                             const kiln_tensor *sequence_lengths, const char *strategy, int64_t beam_width,
                             int64_t top_paths, bool merge_repeated, int64_t mask_index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_ctc_decode";
  require_not_null(decoded, fn, "decoded");
  require_not_null(scores, fn, "scores");
  auto [paths, values] =
      ops::ctc_decode(tensor_of(inputs, fn, "inputs"), tensor_of(sequence_lengths, fn, "sequence_lengths"),
                      strategy ? strategy : "greedy", beam_width, top_paths, merge_repeated, mask_index);
  *decoded = new_tensor(std::move(paths));
  *scores = new_tensor(std::move(values));
  KILN_CAPI_END
}

}  // extern "C"

// Entry points of the fused cross-entropy losses (kiln/ops.h, "losses").
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

}  // extern "C"

// The buckets of tf.summary.histogram, computed as TensorBoard 2.13's
// plugins/histogram/summary_v2.py `_buckets` does under TensorFlow 2.13, so that kiln's
// histograms match TensorFlow's bit for bit (FORMATS.md §1.5: DT_DOUBLE [k, 3]).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace kiln::summary {

// The [bucket_count, 3] rows (left edge, right edge, count), row-major, of data's elements
// (any shape, any kiln dtype; bool counts as 0 and 1), each first converted to float64:
// - bucket_count <= 0: no rows (TensorBoard treats a negative count as 0 and returns [0, 3]);
//   above 2^31 - 1 (TensorBoard requires an int32) it is InvalidArgument.
// - no elements: bucket_count rows of zeros.
// - one distinct value v: every edge is v, every count 0 except the last bucket's, which holds
//   all the elements.
// - otherwise, with min and max of the data: width = (max - min) / k; an element x goes to bucket
//   floor((x - min) / width), the last bucket also taking x == max; the edges are
//   tf.linspace(min, max, k + 1): min, then min + width * i, then exactly max. (The edges of all
//   160 weight histograms of a real TF 2.13 Keras run match these bit for bit; see the test.)
// Everything is float64 arithmetic in TensorFlow's order, so non-finite values and overflow give
// what TensorFlow gives on x86-64. There, casting floor((x - min) / width) to int32 yields
// INT32_MIN when it is NaN or outside int32, and one_hot ignores that negative index: such an
// element is counted nowhere. kiln drops those elements by the same test, without the undefined
// conversion. Consequences:
// - any NaN: min and max are NaN (TF's reductions propagate NaN): all edges NaN, all counts 0;
// - max = +inf (no NaN, min finite): width = inf, so the finite elements all go to bucket 0 and
//   the +inf ones are dropped; edges min, inf, ..., inf;
// - min = -inf: every offset is inf or NaN, so all counts are 0; the inner edges are NaN;
// - all elements +inf (or all -inf): max - min is NaN: all counts 0, inner edges NaN;
// - a finite range that overflows (max - min = inf) puts everything in bucket 0 except elements
//   whose offset overflows too; a width that underflows to 0 drops every element.
// So the counts sum to the element count whenever max - min and the width are finite and > 0.
std::vector<double> histogram_buckets(const Tensor &data, int64_t bucket_count);

}  // namespace kiln::summary

// CTC decoding (keras.ops.ctc_decode, TF's ctc_greedy_decoder and ctc_beam_search_decoder):
// the most likely label sequences of each sample's logits.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace kiln::kernels {

// logits (float32 or float64) [batch, frames, classes]; sample b uses its first lengths[b] frames
// (the op validates them: [0, frames]); blank in [0, classes).
//
// Greedy: each frame's largest logit (the first of equal ones, as TF's CTCGreedyDecoder),
// repeats merged when merge_repeated, then blanks dropped. decoded [batch, frames] int32 padded
// with -1; scores [batch] = -(sum of those logits).
void ctc_greedy_decode(DType dtype, const void *logits, const int64_t *lengths, int64_t batch, int64_t frames,
                       int64_t classes, int64_t blank, bool merge_repeated, int32_t *decoded, void *scores);

// Beam search: TF's prefix beam search over log-softmax probabilities with `beam_width` beams
// (no repeat merging of the emitted labels; a prefix is never listed twice). decoded [top_paths, batch,
// frames] int32 padded with -1, best first; scores [batch, top_paths] = the paths' log-probabilities. A
// sample with a NaN or +inf logit in its frames gets empty paths and NaN scores. Returns -1, or the first
// sample with fewer distinct paths than top_paths (the op reports it; decoded and scores are then partial).
int64_t ctc_beam_search_decode(DType dtype, const void *logits, const int64_t *lengths, int64_t batch,
                               int64_t frames, int64_t classes, int64_t blank, int64_t beam_width,
                               int64_t top_paths, int32_t *decoded, void *scores);

}  // namespace kiln::kernels

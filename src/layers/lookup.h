// Keras's lookup layers (IntegerLookup): a vocabulary of tokens mapped to indices, read with
// get_vocabulary() and replaced with set_vocabulary(), as Keras's IndexLookup methods.
#pragma once

#include "core/tensor.h"
#include "layers/layer.h"

namespace kiln::layers {

// What a layer with a vocabulary implements.
class VocabularyLayer {
 public:
  // Every token by its index (1-D), with the mask and OOV tokens first when
  // include_special_tokens, so a token's position is the index a call gives it.
  virtual Tensor get_vocabulary(bool include_special_tokens) const = 0;
  // Replaces the vocabulary (and, for output_mode "tf_idf", the IDF weights; undefined otherwise).
  virtual void set_vocabulary(const Tensor &vocabulary, const Tensor &idf_weights) = 0;

 protected:
  ~VocabularyLayer() = default;
};

// layer.get_vocabulary / layer.set_vocabulary; INVALID_ARGUMENT naming the layer when its class
// has no vocabulary.
Tensor get_vocabulary(const Layer &layer, bool include_special_tokens);
void set_vocabulary(Layer &layer, const Tensor &vocabulary, const Tensor &idf_weights = Tensor());

}  // namespace kiln::layers

// Keras's lookup layers (IntegerLookup): a vocabulary of tokens mapped to indices, read with
// get_vocabulary() and replaced with set_vocabulary(), as Keras's IndexLookup methods; and the string
// hashes of TF's to_hash_bucket ops, which Hashing and IntegerLookup's "farmhash" OOV buckets use.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

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

// TF's Fingerprint64 (FarmHash's fingerprint, the same on every platform): tf.strings.to_hash_bucket_fast.
uint64_t fingerprint64(std::string_view s);
// TF's StrongKeyedHash (HighwayHash's SipHash keyed by two uint64s): tf.strings.to_hash_bucket_strong.
uint64_t strong_keyed_hash(const std::array<uint64_t, 2> &key, std::string_view s);
// TF's FingerprintCat64: fingerprints a and b combined, in that order (sparse.cross_hashed's step).
uint64_t fingerprint_cat64(uint64_t a, uint64_t b);
// The bucket in [0, buckets) of s: strong_keyed_hash with a key (Keras's salt), else fingerprint64.
int64_t hash_bucket(std::string_view s, int64_t buckets, const std::optional<std::array<uint64_t, 2>> &key);

}  // namespace kiln::layers

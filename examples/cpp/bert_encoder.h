// The small BERT-style encoder of examples/cpp/bert_encoder.cc (and of
// benchmarks/bench_bert_encoder.cc): token embeddings plus a custom SegPosEmbedding, two encoder
// blocks (self-attention and a GELU feed-forward network, each with dropout, a residual and
// LayerNormalization), mean-pooling and a Dense classifier, all as kiln.hpp subclasses over
// built-in layers. examples/python/bert_encoder.py and examples/c/bert_encoder.c build the same.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/kiln.hpp"

namespace bert_example {

using kiln::Tensor;

// The model's sizes; the sequence length may be anything up to max_len.
struct BertConfig {
  int64_t vocab, type_vocab, max_len, hidden, heads, classes;
};

inline kiln::Layer dropout(int64_t seed) {
  kiln::layers::DropoutOptions o;
  o.seed = seed;
  return kiln::layers::Dropout(0.1, o);
}

// norm(x + types[t] + positions[0..seq)), then dropout: the tables are made in build.
class SegPosEmbedding : public kiln::Layer {
 public:
  SegPosEmbedding(int64_t type_vocab, int64_t max_len, int64_t seed)
      : Layer("SegPosEmbedding"), type_vocab_(type_vocab), max_len_(max_len) {
    norm_ = track(kiln::layers::LayerNormalization());
    drop_ = track(dropout(seed));
  }

 protected:
  void build(const std::vector<kiln::Dims> &shapes) override {
    const int64_t hidden = shapes[0].back();
    types_ = add_weight("token_type_embeddings", {type_vocab_, hidden}, "truncated_normal");
    positions_ = add_weight("position_embeddings", {max_len_, hidden}, "truncated_normal");
  }
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    // As Keras's Embedding, indices of another dtype are cast: a model's build calls it on float zeros.
    Tensor token_types = kiln::cast(in[1], kiln::DType::int32);
    Tensor pos = kiln::range(0, static_cast<double>(in[0].shape()[1]), 1, kiln::DType::int32);
    Tensor y = in[0] + kiln::gather(types_.value(), token_types) + kiln::gather(positions_.value(), pos);
    return {drop_(norm_(y), training)};
  }

 private:
  int64_t type_vocab_, max_len_;
  kiln::Layer norm_, drop_;
  kiln::Variable types_, positions_;
};

// Post-norm transformer block: norm1(x + drop(mha(x, x))), then norm2(h + drop(ffn(h))).
class EncoderBlock : public kiln::Layer {
 public:
  EncoderBlock(int64_t hidden, int64_t heads, int64_t seed) : Layer("EncoderBlock") {
    kiln::layers::MultiHeadAttentionOptions mha;
    mha.dropout = 0.1;
    mha.seed = seed;
    attention_ = track(kiln::layers::MultiHeadAttention(heads, hidden / heads, mha));
    attention_dropout_ = track(dropout(seed + 1));
    attention_norm_ = track(kiln::layers::LayerNormalization());
    ffn_inner_ = track(kiln::layers::Dense(4 * hidden, "gelu"));
    ffn_outer_ = track(kiln::layers::Dense(hidden));
    ffn_dropout_ = track(dropout(seed + 2));
    ffn_norm_ = track(kiln::layers::LayerNormalization());
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    const Tensor &x = in[0];
    Tensor a = attention_dropout_(attention_(kiln::layers::attention_inputs(x, x), training)[0], training);
    Tensor h = attention_norm_(x + a);
    Tensor f = ffn_dropout_(ffn_outer_(ffn_inner_(h)), training);
    return {ffn_norm_(h + f)};
  }

 private:
  kiln::Layer attention_, attention_dropout_, attention_norm_, ffn_inner_, ffn_outer_, ffn_dropout_,
      ffn_norm_;
};

inline kiln::Layer token_embedding(int64_t vocab, int64_t hidden) {
  kiln::layers::EmbeddingOptions o;
  o.embeddings_initializer = "random_uniform";
  return kiln::layers::Embedding(vocab, hidden, o);
}

// The members are made in the Python example's order (built-in layers are named when made).
class BertEncoder : public kiln::Model {
 public:
  explicit BertEncoder(const BertConfig &c)
      : Model("BertEncoder"),
        tokens_(token_embedding(c.vocab, c.hidden)),
        seg_pos_(c.type_vocab, c.max_len, 1),
        block1_(c.hidden, c.heads, 10),
        block2_(c.hidden, c.heads, 20),
        pool_(kiln::layers::GlobalAveragePooling1D()),
        classifier_(kiln::layers::Dense(c.classes)) {
    track(tokens_);
    track(seg_pos_);
    track(block1_);
    track(block2_);
    track(pool_);
    track(classifier_);
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    Tensor h = seg_pos_({tokens_(in[0]), in[1]}, training)[0];
    h = block2_(block1_(h, training), training);
    return {classifier_(pool_(h))};
  }

 private:
  kiln::Layer tokens_;
  SegPosEmbedding seg_pos_;
  EncoderBlock block1_, block2_;
  kiln::Layer pool_, classifier_;
};

// The mean softmax cross-entropy of the model's logits for class labels.
inline Tensor classification_loss(const Tensor &labels, const Tensor &logits) {
  return kiln::mean(kiln::sparse_softmax_cross_entropy_with_logits(labels, logits));
}

}  // namespace bert_example

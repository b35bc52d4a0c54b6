// A small BERT-style encoder in C++ (see examples/python/bert_encoder.py, which prints the same
// numbers): token embeddings plus a custom SegPosEmbedding, two encoder blocks (self-attention and a
// GELU feed-forward network, each with dropout, a residual and LayerNormalization), mean-pooling
// and a Dense classifier; one forward and backward pass under a GradientTape.
#include <cstdio>
#include <iostream>

#include "kiln/kiln.hpp"

using kiln::Tensor;

namespace {

constexpr int64_t kBatch = 2, kSeq = 8, kHidden = 16, kHeads = 4, kVocab = 50, kTypes = 2, kClasses = 3;

kiln::Layer dropout(int64_t seed) {
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

kiln::Layer token_embedding() {
  kiln::layers::EmbeddingOptions o;
  o.embeddings_initializer = "random_uniform";
  return kiln::layers::Embedding(kVocab, kHidden, o);
}

// The members are made in the Python example's order (built-in layers are named when made).
class BertEncoder : public kiln::Model {
 public:
  BertEncoder()
      : Model("BertEncoder"),
        tokens_(token_embedding()),
        seg_pos_(kTypes, kSeq, 1),
        block1_(kHidden, kHeads, 10),
        block2_(kHidden, kHeads, 20),
        pool_(kiln::layers::GlobalAveragePooling1D()),
        classifier_(kiln::layers::Dense(kClasses)) {
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

void show(const char *label, const Tensor &t) {
  std::printf("%s", label);
  for (float v : t.to_vector<float>()) std::printf(" %.9g", static_cast<double>(v));
  std::printf("\n");
}

}  // namespace

int main() {
  try {
    kiln::set_seed(1234);
    BertEncoder model;
    std::vector<int32_t> ids, types, labels;
    for (int64_t i = 0; i < kBatch * kSeq; ++i) {
      ids.push_back(static_cast<int32_t>((7 * i + 3) % kVocab));
      types.push_back(i % kSeq >= kSeq / 2 ? 1 : 0);
    }
    for (int64_t i = 1; i <= kBatch; ++i) labels.push_back(static_cast<int32_t>(i % kClasses));

    kiln::GradientTape tape;
    Tensor logits = model(
        {Tensor::from_vector(ids, {kBatch, kSeq}), Tensor::from_vector(types, {kBatch, kSeq})}, true)[0];
    Tensor loss = kiln::mean(
        kiln::sparse_softmax_cross_entropy_with_logits(Tensor::from_vector(labels, {kBatch}), logits));
    tape.stop();
    std::vector<kiln::Variable> variables = model.trainable_variables();
    std::vector<Tensor> grads = tape.gradient(loss, variables);

    std::cout << model.summary();
    show("loss", loss);
    show("logits", logits);
    std::printf("trainable variables %zu\n", variables.size());
    for (size_t i = 0; i < variables.size(); ++i) {
      std::vector<float> g = grads[i].to_vector<float>();
      double total = 0;
      for (float x : g) total += x;
      std::printf("%s [", variables[i].name().c_str());
      const kiln::Dims shape = grads[i].shape();
      for (size_t d = 0; d < shape.size(); ++d)
        std::printf(d ? ",%lld" : "%lld", static_cast<long long>(shape[d]));
      std::printf("] grad sum %.9g first", total);
      for (size_t k = 0; k < g.size() && k < 3; ++k) std::printf(" %.9g", static_cast<double>(g[k]));
      std::printf("\n");
    }
    return 0;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

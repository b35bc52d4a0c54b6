// A small BERT-style encoder in C++ (see examples/python/bert_encoder.py, which prints the same
// numbers): token embeddings plus a custom SegPosEmbedding, two encoder blocks (self-attention and a
// GELU feed-forward network, each with dropout, a residual and LayerNormalization), mean-pooling
// and a Dense classifier; one forward and backward pass under a GradientTape.
#include "bert_encoder.h"

#include <cstdio>
#include <iostream>

using bert_example::BertConfig;
using bert_example::BertEncoder;
using kiln::Tensor;

namespace {

constexpr int64_t kBatch = 2, kSeq = 8, kHidden = 16, kHeads = 4, kVocab = 50, kTypes = 2, kClasses = 3;

void show(const char *label, const Tensor &t) {
  std::printf("%s", label);
  for (float v : t.to_vector<float>()) std::printf(" %.9g", static_cast<double>(v));
  std::printf("\n");
}

}  // namespace

int main() {
  try {
    kiln::set_seed(1234);
    BertEncoder model(BertConfig{kVocab, kTypes, kSeq, kHidden, kHeads, kClasses});
    std::vector<int32_t> ids, types, labels;
    for (int64_t i = 0; i < kBatch * kSeq; ++i) {
      ids.push_back(static_cast<int32_t>((7 * i + 3) % kVocab));
      types.push_back(i % kSeq >= kSeq / 2 ? 1 : 0);
    }
    for (int64_t i = 1; i <= kBatch; ++i) labels.push_back(static_cast<int32_t>(i % kClasses));

    kiln::GradientTape tape;
    Tensor logits = model(
        {Tensor::from_vector(ids, {kBatch, kSeq}), Tensor::from_vector(types, {kBatch, kSeq})}, true)[0];
    Tensor loss = bert_example::classification_loss(Tensor::from_vector(labels, {kBatch}), logits);
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

// W4 (issue 10): one training step of a small transformer encoder, built from kiln's layers
// through kiln.hpp: token Embedding (vocab 8000) + learned position Embedding (128 positions), one
// post-norm encoder block (MultiHeadAttention with 4 heads of key_dim 64 and attention dropout 0.1;
// Dropout(0.1), residual, LayerNormalization; Dense(1024, "gelu") -> Dense(256), Dropout(0.1),
// residual, LayerNormalization), GlobalAveragePooling1D, Dense(2) logits; batch 16, sequence 128,
// hidden 256, 2 threads. One step = the forward pass in training mode under a GradientTape, the mean
// sparse softmax cross-entropy of the logits, tape.gradient over the trainable variables, AdamW(1e-3)
// (Keras's defaults: weight decay 0.004, epsilon 1e-7). benchmarks/README.md defines it exactly;
// peer/transformer_torch.py --workload w4 runs the same model in PyTorch.
#include <memory>
#include <vector>

#include "bench_training.h"

namespace {

constexpr int64_t kBatch = 16, kSeq = 128, kHidden = 256, kHeads = 4, kFfn = 1024, kVocab = 8000,
                  kClasses = 2;

kiln::Layer dropout(int64_t seed) {
  kiln::layers::DropoutOptions o;
  o.seed = seed;
  return kiln::layers::Dropout(0.1, o);
}

kiln::Layer attention() {
  kiln::layers::MultiHeadAttentionOptions o;
  o.dropout = 0.1;
  o.seed = 3;
  return kiln::layers::MultiHeadAttention(kHeads, kHidden / kHeads, o);
}

// Embeddings, one BERT-style (post-norm) encoder block, mean-pooling, a 2-class head.
class TransformerClassifier : public kiln::Model {
 public:
  TransformerClassifier()
      : Model("TransformerClassifier"),
        tokens_(kiln::layers::Embedding(kVocab, kHidden)),
        positions_(kiln::layers::Embedding(kSeq, kHidden)),
        attention_(attention()),
        attention_dropout_(dropout(1)),
        attention_norm_(kiln::layers::LayerNormalization()),
        ffn_inner_(kiln::layers::Dense(kFfn, "gelu")),
        ffn_outer_(kiln::layers::Dense(kHidden)),
        ffn_dropout_(dropout(2)),
        ffn_norm_(kiln::layers::LayerNormalization()),
        pool_(kiln::layers::GlobalAveragePooling1D()),
        classifier_(kiln::layers::Dense(kClasses)) {
    for (kiln::Layer *l : {&tokens_, &positions_, &attention_, &attention_dropout_, &attention_norm_,
                           &ffn_inner_, &ffn_outer_, &ffn_dropout_, &ffn_norm_, &pool_, &classifier_})
      track(*l);
  }

 protected:
  std::vector<kiln::Tensor> call(const std::vector<kiln::Tensor> &in, bool training) override {
    // Position ids 0..seq-1: their [seq, hidden] rows broadcast over the batch.
    kiln::Tensor pos = kiln::range(0, static_cast<double>(in[0].shape()[1]), 1, kiln::DType::int32);
    kiln::Tensor x = tokens_(in[0]) + positions_(pos);
    kiln::Tensor a =
        attention_dropout_(attention_(kiln::layers::attention_inputs(x, x), training)[0], training);
    kiln::Tensor h = attention_norm_(x + a);
    kiln::Tensor f = ffn_dropout_(ffn_outer_(ffn_inner_(h)), training);
    h = ffn_norm_(h + f);
    return {classifier_(pool_(h))};
  }

 private:
  kiln::Layer tokens_, positions_, attention_, attention_dropout_, attention_norm_, ffn_inner_, ffn_outer_,
      ffn_dropout_, ffn_norm_, pool_, classifier_;
};

struct W4Step {
  TransformerClassifier model;
  kiln::Loss loss_fn = kiln_bench::w3_loss();  // SparseCategoricalCrossentropy(from_logits=True)
  kiln::optimizers::Optimizer optimizer = kiln::optimizers::AdamW(1e-3);
  kiln::Tensor ids, labels;
  std::vector<kiln::Variable> vars;

  W4Step() {
    // Fixed synthetic batch: ids (7 i + 3) mod 8000 over the flattened [16, 128], labels i mod 2.
    std::vector<int32_t> id_values(static_cast<size_t>(kBatch * kSeq)),
        label_values(static_cast<size_t>(kBatch));
    for (size_t i = 0; i < id_values.size(); ++i) id_values[i] = static_cast<int32_t>((7 * i + 3) % kVocab);
    for (size_t i = 0; i < label_values.size(); ++i) label_values[i] = static_cast<int32_t>(i % kClasses);
    ids = kiln::Tensor::from_vector(id_values, {kBatch, kSeq});
    labels = kiln::Tensor::from_vector(label_values, {kBatch});
    model(ids);  // builds the layers, so the variables exist
    vars = model.trainable_variables();
    for (int i = 0; i < 3; ++i) run();  // the slots, the primitives, the allocator's cache
  }
  void run() {
    kiln::GradientTape tape;
    kiln::Tensor loss = loss_fn(labels, model(ids, /*training=*/true));
    tape.stop();
    optimizer.apply_gradients(tape.gradient(loss, vars), vars);
  }
};

void BM_KilnW4TransformerStep(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static std::unique_ptr<W4Step> step;  // built once, shared by the repetitions
  if (!step) step = std::make_unique<W4Step>();
  for (auto _ : state) step->run();
}

}  // namespace

KILN_BENCH_PER_STEP(BM_KilnW4TransformerStep);

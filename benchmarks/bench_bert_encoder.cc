// One training step's forward and backward pass (no optimizer) of the BERT-style encoder of
// examples/cpp/bert_encoder.h at batch 16, sequence 128, hidden 256, 4 heads, FFN 1024, vocab 1000,
// 2 threads: the model in training mode (dropout 0.1) under a tape, the mean sparse softmax
// cross-entropy of its 3-class logits, and the gradients of every trainable variable.
// benchmarks/peer/bert_encoder_torch.py times the same model in PyTorch, and
// benchmarks/peer/compare_bert_encoder.py runs the two interleaved (see README.md).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "../examples/cpp/bert_encoder.h"
#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kBatch = 16, kSeq = 128, kHidden = 256, kHeads = 4, kVocab = 1000, kTypes = 2, kClasses = 3;

struct EncoderStep {
  bert_example::BertEncoder model{bert_example::BertConfig{kVocab, kTypes, kSeq, kHidden, kHeads, kClasses}};
  std::vector<kiln::Tensor> inputs;
  kiln::Tensor labels;
  std::vector<kiln::Variable> variables;

  EncoderStep() {
    std::vector<int32_t> ids, types, y;
    for (int64_t i = 0; i < kBatch * kSeq; ++i) {
      ids.push_back(static_cast<int32_t>((7 * i + 3) % kVocab));
      types.push_back(i % kSeq >= kSeq / 2 ? 1 : 0);
    }
    for (int64_t i = 0; i < kBatch; ++i) y.push_back(static_cast<int32_t>(i % kClasses));
    inputs = {kiln::Tensor::from_vector(ids, {kBatch, kSeq}),
              kiln::Tensor::from_vector(types, {kBatch, kSeq})};
    labels = kiln::Tensor::from_vector(y, {kBatch});
    for (int i = 0; i < 3; ++i) run();  // build, create the primitives, fill the allocator's cache
    variables = model.trainable_variables();
  }

  std::vector<kiln::Tensor> run() {
    kiln::GradientTape tape;
    kiln::Tensor loss = bert_example::classification_loss(labels, model(inputs, true)[0]);
    tape.stop();
    return tape.gradient(loss, variables.empty() ? model.trainable_variables() : variables);
  }
};

// One step per iteration, one iteration per repetition: run with --benchmark_repetitions=30 and the
// median, min and max aggregates are those of single steps, as the PyTorch peer reports them.
void BM_KilnBertEncoderStep(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static std::unique_ptr<EncoderStep> step;  // built once, shared by the repetitions
  if (!step) step = std::make_unique<EncoderStep>();
  for (auto _ : state) {
    std::vector<kiln::Tensor> grads = step->run();
    benchmark::DoNotOptimize(grads.data());
  }
}

double min_of(const std::vector<double> &v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
double max_of(const std::vector<double> &v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

}  // namespace

BENCHMARK(BM_KilnBertEncoderStep)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1)
    ->ComputeStatistics("min", min_of)
    ->ComputeStatistics("max", max_of);

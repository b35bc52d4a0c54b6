// W5 (issue 10): one training step of a small conv-net through kiln.hpp's train_on_batch:
// x [128, 28, 28, 1] -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) ->
// MaxPooling2D(2) -> Flatten -> Dense(128, relu) -> Dense(10) logits ("valid" padding, Keras's
// defaults: 26 -> 13 -> 11 -> 5, 1600 features), the mean sparse softmax cross-entropy of the logits,
// backward, SGD(learning_rate 0.01, momentum 0.9); 2 threads. benchmarks/README.md defines it
// exactly; peer/convnet_torch.py --workload w5 runs the same model in PyTorch.
#include <memory>
#include <vector>

#include "bench_training.h"

namespace {

constexpr int64_t kBatch = 128, kSide = 28, kClasses = 10;

kiln::Sequential w5_convnet() {
  namespace L = kiln::layers;
  kiln::Sequential model({L::Conv2D(32, {3, 3}, "relu"), L::MaxPooling2D({2, 2}),
                          L::Conv2D(64, {3, 3}, "relu"), L::MaxPooling2D({2, 2}), L::Flatten(),
                          L::Dense(128, "relu"), L::Dense(kClasses)});
  model.build_for({-1, kSide, kSide, 1});
  return model;
}

struct W5Step {
  kiln::Sequential model = w5_convnet();
  kiln::Tensor x, y;

  W5Step() {
    // Fixed synthetic batch: x[i] = (i mod 255) / 255 over the flattened [128, 28, 28, 1], labels i mod 10.
    std::vector<float> xs(static_cast<size_t>(kBatch * kSide * kSide));
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 255) / 255.0f;
    std::vector<int32_t> ys(static_cast<size_t>(kBatch));
    for (size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<int32_t>(i % kClasses);
    x = kiln::Tensor::from_vector(xs, {kBatch, kSide, kSide, 1});
    y = kiln::Tensor::from_vector(ys, {kBatch});
    kiln::optimizers::SGDOptions sgd;
    sgd.momentum = 0.9;
    model.compile(kiln::CompileOptions()
                      .with_optimizer(kiln::optimizers::SGD(0.01, sgd))
                      .with_loss(kiln_bench::w3_loss()));
    for (int i = 0; i < 5; ++i) run();  // the slots, the primitives, the allocator's cache
  }
  void run() { model.train_on_batch(x, y); }
};

void BM_KilnW5ConvStep(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static std::unique_ptr<W5Step> step;  // built once, shared by the repetitions
  if (!step) step = std::make_unique<W5Step>();
  for (auto _ : state) step->run();
}

}  // namespace

KILN_BENCH_PER_STEP(BM_KilnW5ConvStep);

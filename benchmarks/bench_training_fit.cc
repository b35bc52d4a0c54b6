// The training benchmarks through Keras's compile / train_on_batch / fit (kiln.hpp):
//
// W3 through train_on_batch: the W3 step of bench_training.h on a model compiled with Adam(1e-3)
//   and SparseCategoricalCrossentropy(from_logits=True) (loss only, no metrics).
// W6: Fashion-MNIST end to end: the W3 MLP on the 60,000 training images flattened to 784 floats
//   in [0, 1], Adam(1e-3), 5 epochs of fit with batch 128 (shuffled, silent), then evaluate on the
//   10,000 test images. One iteration; counters test_accuracy and train_seconds (fit alone);
//   peer/compare_training.py times the whole process. Skipped when the dataset is not installed.
#include <chrono>
#include <memory>

#include "bench_training.h"

namespace {

struct TrainOnBatch {
  kiln::Sequential model = kiln_bench::w3_mlp();
  kiln_bench::W3Batch batch;

  TrainOnBatch() {
    model.compile(kiln::CompileOptions().with_optimizer(kiln::optimizers::Adam(1e-3)).with_loss(kiln_bench::w3_loss()));
    for (int i = 0; i < 5; ++i) run();  // the slots, the primitives, the allocator's cache
  }
  void run() { model.train_on_batch(batch.x, batch.y); }
};

void BM_KilnW3TrainOnBatch(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static std::unique_ptr<TrainOnBatch> step;  // built once, shared by the repetitions
  if (!step) step = std::make_unique<TrainOnBatch>();
  for (auto _ : state) step->run();
}

// The images flattened to [n, 784] floats in [0, 1] by one truediv of the uint8 pixels (TF's
// x_train / 255: float32, the one float buffer of the set; PyTorch's peer divides likewise).
kiln::Tensor flat_images(const kiln::Tensor &x) {
  const int64_t n = x.shape()[0];
  return kiln::reshape(x / kiln::fill({}, 255, kiln::DType::uint8), {n, kiln_bench::kW3Inputs});
}

void BM_KilnW6FashionMnistFit(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::data::FashionMnist data;
  try {
    data = kiln::data::load_fashion_mnist();
  } catch (const kiln::Error &e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) {
    kiln::set_seed(1234);
    kiln::Tensor x_train = flat_images(data.x_train), x_test = flat_images(data.x_test);
    kiln::Tensor y_train = kiln::cast(data.y_train, kiln::DType::int32);
    kiln::Tensor y_test = kiln::cast(data.y_test, kiln::DType::int32);
    kiln::Sequential model = kiln_bench::w3_mlp();
    model.compile(kiln::CompileOptions()
                      .with_optimizer(kiln::optimizers::Adam(1e-3))
                      .with_loss(kiln_bench::w3_loss())
                      .with_metrics(std::vector<std::string>{"accuracy"}));
    const auto t0 = std::chrono::steady_clock::now();
    model.fit(x_train, y_train, kiln::FitOptions().with_batch_size(128).with_epochs(5).with_verbose(0));
    state.counters["train_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["test_accuracy"] =
        model.evaluate(x_test, y_test, kiln::EvaluateOptions().with_batch_size(1000).with_verbose(0)).at("accuracy");
  }
}

}  // namespace

KILN_BENCH_PER_STEP(BM_KilnW3TrainOnBatch);
BENCHMARK(BM_KilnW6FashionMnistFit)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

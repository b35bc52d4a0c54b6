// TensorBoard logging (kiln::summary through kiln.hpp):
//
// BM_SummaryScalar: one tf.summary.scalar per iteration through a file writer with TF's defaults
//   (max_queue 10, flush_millis 120000): serialize, frame with CRC-32C, queue; the background
//   thread writes. items_per_second is scalars per second on the caller's thread.
// BM_SummaryHistogram: a 30-bucket histogram of a 512x256 float32 weight (131,072 values).
// BM_KilnW3FitEpoch / BM_KilnW3FitEpochTensorBoard: one epoch of fit over 60,032 samples (469
//   W3 batches of 128, Fashion-MNIST's size; the W3 MLP and Adam(1e-3)), without and with the Keras
//   TensorBoard callback at update_freq="epoch" (write_graph on, Keras's default); the difference
//   is the callback's cost (target: under 1% of a training step's time).
// BM_TinyFit / BM_TinyFitTensorBoard: 20 epochs of one 8-sample step of a Dense(1) model per
//   iteration, so the difference divided by 20 is the callback's own cost per epoch (its writers
//   created and closed once per fit, the epoch's scalars and flush), measured without the noise of
//   a real step.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "bench_training.h"

namespace {

std::string bench_dir(const char *name) {
  const char *tmp = std::getenv("TMPDIR");
  std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln_bench_summary_" + name;
  std::filesystem::remove_all(base);
  return base;
}

void BM_SummaryScalar(benchmark::State &state) {
  const std::string dir = bench_dir("scalar");
  {
    kiln::summary::SummaryWriter w = kiln::summary::create_file_writer(dir);
    auto scope = w.as_default();
    int64_t step = 0;
    for (auto _ : state) {
      kiln::summary::scalar("loss", 0.5 + static_cast<double>(step) * 1e-6, step);
      ++step;
    }
    w.flush();
    state.SetItemsProcessed(state.iterations());
  }
  std::filesystem::remove_all(dir);
}

void BM_SummaryHistogram(benchmark::State &state) {
  const std::string dir = bench_dir("histogram");
  {
    kiln::summary::SummaryWriter w = kiln::summary::create_file_writer(dir);
    auto scope = w.as_default();
    const kiln::Tensor weights = kiln::random_normal({512, 256});
    int64_t step = 0;
    for (auto _ : state) kiln::summary::histogram("dense/kernel_0/histogram", weights, step++);
    w.flush();
    state.SetItemsProcessed(state.iterations() * 512 * 256);
  }
  std::filesystem::remove_all(dir);
}

// 469 batches of W3 data as one [60032, 784] array for fit.
struct W3Epoch {
  kiln::Tensor x, y;
  W3Epoch() {
    constexpr int64_t n = 469 * kiln_bench::kW3Batch;
    std::vector<float> xs(static_cast<size_t>(n * kiln_bench::kW3Inputs));
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 251) / 251.0f;
    std::vector<int32_t> ys(static_cast<size_t>(n));
    for (size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<int32_t>(i % kiln_bench::kW3Classes);
    x = kiln::Tensor::from_vector(xs, {n, kiln_bench::kW3Inputs});
    y = kiln::Tensor::from_vector(ys, {n});
  }
};

void fit_epochs(benchmark::State &state, bool tensorboard) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static W3Epoch data;
  kiln::Sequential model = kiln_bench::w3_mlp();
  model.compile(
      kiln::CompileOptions().with_optimizer(kiln::optimizers::Adam(1e-3)).with_loss(kiln_bench::w3_loss()));
  const std::string dir = bench_dir("fit");
  std::vector<kiln::Callback> callbacks;
  if (tensorboard) callbacks.push_back(kiln::callbacks::TensorBoard(dir));  // update_freq "epoch"
  const kiln::FitOptions fit = kiln::FitOptions()
                                   .with_batch_size(kiln_bench::kW3Batch)
                                   .with_epochs(1)
                                   .with_verbose(0)
                                   .with_shuffle(false);
  model.fit(data.x, data.y, kiln::FitOptions(fit).with_callbacks(callbacks));  // warm-up
  for (auto _ : state) model.fit(data.x, data.y, kiln::FitOptions(fit).with_callbacks(callbacks));
  std::filesystem::remove_all(dir);
}

void BM_KilnW3FitEpoch(benchmark::State &state) { fit_epochs(state, false); }

void tiny_fit(benchmark::State &state, bool tensorboard) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  kiln::Sequential model({kiln::layers::Dense(1)});
  model.build_for({-1, 4});
  model.compile(kiln::CompileOptions().with_optimizer(kiln::optimizers::SGD(0.01)).with_loss("mse"));
  const kiln::Tensor x = kiln::Tensor::from_vector(std::vector<float>(32, 0.5f), {8, 4});
  const kiln::Tensor y = kiln::Tensor::from_vector(std::vector<float>(8, 1.0f), {8, 1});
  const std::string dir = bench_dir("tiny");
  std::vector<kiln::Callback> callbacks;
  if (tensorboard) callbacks.push_back(kiln::callbacks::TensorBoard(dir));
  const kiln::FitOptions fit = kiln::FitOptions()
                                   .with_batch_size(8)
                                   .with_epochs(20)
                                   .with_verbose(0)
                                   .with_shuffle(false)
                                   .with_callbacks(callbacks);
  model.fit(x, y, fit);
  for (auto _ : state) model.fit(x, y, fit);
  state.counters["epochs"] =
      benchmark::Counter(20.0 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  std::filesystem::remove_all(dir);
}

void BM_TinyFit(benchmark::State &state) { tiny_fit(state, false); }
void BM_TinyFitTensorBoard(benchmark::State &state) { tiny_fit(state, true); }
void BM_KilnW3FitEpochTensorBoard(benchmark::State &state) { fit_epochs(state, true); }

}  // namespace

BENCHMARK(BM_SummaryScalar)->UseRealTime();
BENCHMARK(BM_SummaryHistogram)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnW3FitEpoch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_KilnW3FitEpochTensorBoard)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
BENCHMARK(BM_TinyFit)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_TinyFitTensorBoard)->Unit(benchmark::kMicrosecond)->UseRealTime();

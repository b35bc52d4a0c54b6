// W7 (issue 10): inference through a SavedModel served from C. The W3 MLP (784-512-256-10, ReLU,
// logits; bench_training.h) is saved once with kiln::saved_model::save to a temporary directory,
// loaded back with kiln_saved_model_load, and its "serving_default" signature is run with
// kiln_saved_model_signature_run on a [1, 784] and a [256, 784] float32 batch, 2 threads. One
// iteration = one call, its output list freed. Targets: batch 1 at most 10 us; batch 256 at most
// 0.8x PyTorch's forward. BM_KilnW7InferenceBatch1Bf16 and BM_KilnW7InferenceBatch1Int8 are batch
// 1 with the model loaded with {"inference_weights": "bfloat16"} or {"inference_weights": "int8"}
// (the Dense kernels read rounded to bfloat16, or quantized to int8).
// BM_KilnW7InferenceBatch1Inputs64 is batch 1 in float32 over 64 different inputs in turn (the
// rows of the second layer a call leaves out, where the first layer's ReLU gave zeros, change
// from call to call). benchmarks/README.md,
// "### W7", defines them.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_training.h"
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"

namespace {

// The status's message, the status freed; empty for success (NULL).
std::string take_error(kiln_status *st) {
  if (!st) return "";
  std::string message = kiln_status_get_message(st);
  kiln_status_free(st);
  return message.empty() ? "kiln error" : message;
}

// The loaded SavedModel, made once for every W7 benchmark. The export directory is removed as
// soon as the model is loaded: a loaded SavedModel holds its weights in memory.
struct W7Model {
  kiln_saved_model *saved_model = nullptr;
  const kiln_saved_model_signature *serve = nullptr;
  std::string error;  // why the model could not be made, if it could not

  // inference_weights: the load option's value ("float32", "bfloat16", "int8").
  explicit W7Model(const char *inference_weights) {
    char dir_template[] = "/tmp/kiln_w7_XXXXXX";
    const char *dir = mkdtemp(dir_template);
    if (!dir) {
      error = "cannot create a temporary directory under /tmp";
      return;
    }
    const std::string export_dir = std::string(dir) + "/w3_mlp";
    try {
      kiln::set_seed(1234);
      kiln::Sequential model = kiln_bench::w3_mlp();
      kiln::saved_model::save(model, export_dir);
    } catch (const kiln::Error &e) {
      error = std::string("saving the W3 MLP: ") + e.what();
    }
    kiln_config *options = nullptr;
    if (error.empty()) error = take_error(kiln_config_create(&options));
    if (error.empty())
      error = take_error(kiln_config_set_string(options, "inference_weights", inference_weights));
    if (error.empty()) error = take_error(kiln_saved_model_load(&saved_model, export_dir.c_str(), options));
    kiln_config_free(options);
    if (error.empty())
      error = take_error(kiln_saved_model_get_signature(&serve, saved_model, "serving_default"));
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  ~W7Model() { kiln_saved_model_free(saved_model); }
  W7Model(const W7Model &) = delete;
  W7Model &operator=(const W7Model &) = delete;
};

enum class Weights { kFloat32, kBFloat16, kInt8 };

const W7Model &w7_model(Weights weights) {
  if (weights == Weights::kBFloat16) {
    static const W7Model bf16_model("bfloat16");
    return bf16_model;
  }
  if (weights == Weights::kInt8) {
    static const W7Model int8_model("int8");
    return int8_model;
  }
  static const W7Model model("float32");
  return model;
}

// x[i, j] = ((784 i + j + 37 shift) mod 255) / 255: shift 0 is W3's batch.
kiln_tensor *w7_input(int64_t batch, std::string &error, int shift = 0) {
  std::vector<float> xs(static_cast<size_t>(batch * kiln_bench::kW3Inputs));
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = static_cast<float>((i + 37 * static_cast<size_t>(shift)) % 255) / 255.0f;
  const int64_t dims[2] = {batch, kiln_bench::kW3Inputs};
  kiln_tensor *x = nullptr;
  error =
      take_error(kiln_tensor_create(&x, KILN_DTYPE_FLOAT32, dims, 2, xs.data(), xs.size() * sizeof(float)));
  return x;
}

// inputs: how many different batches the calls take in turn (w7_input's shifts 0 .. inputs - 1).
void run_w7(benchmark::State &state, int64_t batch, Weights weights = Weights::kFloat32, int inputs = 1) {
  kiln::ThreadCountScope threads(2);
  const W7Model &m = w7_model(weights);
  if (!m.error.empty()) {
    state.SkipWithError(m.error.c_str());
    return;
  }
  std::string error;
  std::vector<std::unique_ptr<kiln_tensor, void (*)(kiln_tensor *)>> xs;
  for (int i = 0; i < inputs && error.empty(); ++i)
    xs.emplace_back(w7_input(batch, error, i), kiln_tensor_free);
  // Warm-up calls (the primitives, the allocator's cache), and a check of the output's shape.
  for (int i = 0; i < 5 && error.empty(); ++i) {
    kiln_tensor_list *out = nullptr;
    const kiln_tensor *in = xs[static_cast<size_t>(i % inputs)].get();
    error = take_error(kiln_saved_model_signature_run(&out, m.serve, &in, 1));
    if (error.empty()) {
      kiln_tensor *y = nullptr;
      error = take_error(kiln_tensor_list_get(&y, out, 0));
      if (error.empty() && (!y || kiln_tensor_get_rank(y) != 2 || kiln_tensor_get_dims(y)[0] != batch ||
                            kiln_tensor_get_dims(y)[1] != kiln_bench::kW3Classes))
        error = "the signature's output is not [batch, 10]";
      kiln_tensor_free(y);
    }
    kiln_tensor_list_free(out);
  }
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::vector<const kiln_tensor *> ins;
  for (const auto &x : xs) ins.push_back(x.get());
  size_t next = 0;
  for (auto _ : state) {
    kiln_tensor_list *out = nullptr;
    kiln_status *st = kiln_saved_model_signature_run(&out, m.serve, &ins[next], 1);
    next = next + 1 == ins.size() ? 0 : next + 1;
    if (st) {
      error = take_error(st);
      state.SkipWithError(error.c_str());
      break;
    }
    benchmark::DoNotOptimize(out);
    kiln_tensor_list_free(out);
  }
}

void BM_KilnW7InferenceBatch1(benchmark::State &state) { run_w7(state, 1); }
void BM_KilnW7InferenceBatch256(benchmark::State &state) { run_w7(state, 256); }
void BM_KilnW7InferenceBatch1Bf16(benchmark::State &state) { run_w7(state, 1, Weights::kBFloat16); }
void BM_KilnW7InferenceBatch1Int8(benchmark::State &state) { run_w7(state, 1, Weights::kInt8); }
void BM_KilnW7InferenceBatch1Inputs64(benchmark::State &state) { run_w7(state, 1, Weights::kFloat32, 64); }

void w7(benchmark::internal::Benchmark *b) {
  b->Unit(benchmark::kMicrosecond)
      ->UseRealTime()
      ->ComputeStatistics("min", kiln_bench::min_of)
      ->ComputeStatistics("max", kiln_bench::max_of);
}

}  // namespace

BENCHMARK(BM_KilnW7InferenceBatch1)->Apply(w7);
BENCHMARK(BM_KilnW7InferenceBatch1Bf16)->Apply(w7);
BENCHMARK(BM_KilnW7InferenceBatch1Int8)->Apply(w7);
BENCHMARK(BM_KilnW7InferenceBatch1Inputs64)->Apply(w7);
BENCHMARK(BM_KilnW7InferenceBatch256)->Apply(w7);

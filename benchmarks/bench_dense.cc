// Dense(256 -> 256, relu) forward at batch 1, 64 and 256, through kiln.hpp: the layer (matmul,
// bias and relu in one fused op) against the same product built from three ops, kiln::matmul,
// kiln::bias_add and kiln::relu (what the layer ran before the fusion), on the layer's weights.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kIn = 256, kUnits = 256;

struct DenseSetup {
  kiln::Layer layer;
  kiln::Tensor x, kernel, bias;
};

DenseSetup make_dense(int64_t batch) {
  kiln::Config c;
  c.set("units", kUnits).set("activation", std::string("relu"));
  c.set("bias_initializer", std::string("ones"));
  DenseSetup s{kiln::Layer::create("Dense", c), kiln::random_uniform({batch, kIn}, -1.0f, 1.0f, 1), {}, {}};
  s.layer(s.x);  // builds the weights
  const std::vector<kiln::Variable> vars = s.layer.trainable_variables();
  s.kernel = vars[0].value();
  s.bias = vars[1].value();
  return s;
}

// The product's multiply-adds, as GFLOPS.
void count_flops(benchmark::State &state) {
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(state.range(0) * kIn * kUnits),
                         benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_DenseReluFused(benchmark::State &state) {
  DenseSetup s = make_dense(state.range(0));
  for (auto _ : state) {
    kiln::Tensor y = s.layer(s.x);
    benchmark::DoNotOptimize(y.get());
  }
  count_flops(state);
}

void BM_DenseReluThreeOps(benchmark::State &state) {
  DenseSetup s = make_dense(state.range(0));
  for (auto _ : state) {
    kiln::Tensor y = kiln::relu(kiln::bias_add(kiln::matmul(s.x, s.kernel), s.bias));
    benchmark::DoNotOptimize(y.get());
  }
  count_flops(state);
}

}  // namespace

BENCHMARK(BM_DenseReluFused)->Arg(1)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DenseReluThreeOps)->Arg(1)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

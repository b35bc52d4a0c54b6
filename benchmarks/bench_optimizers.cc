// Optimizer steps on the W3 MLP's variables (784x512, 512, 512x256, 256, 256x10, 10: 535,818
// floats): Adam's apply_gradients (one fused in-place kernel per variable) against the same
// update composed from kiln ops (m, v and w through eltwise ops and assign, as a chain of ops
// would), and SGD and AdamW with global_clipnorm for scale. Threads: the argument.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

const std::vector<kiln::Dims> kW3Shapes = {{784, 512}, {512}, {512, 256}, {256}, {256, 10}, {10}};

kiln::Tensor filled(const kiln::Dims &shape, float base) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = base * static_cast<float>((i % 17) - 8) / 8.0f;
  return kiln::Tensor::from_vector(v, shape);
}

struct Mlp {
  std::vector<kiln::Variable> vars;
  std::vector<kiln::Tensor> grads;
  Mlp() {
    for (const kiln::Dims &s : kW3Shapes) {
      vars.emplace_back(filled(s, 0.1f), "w3/var");
      grads.push_back(filled(s, 0.01f));
    }
  }
};

void run_optimizer(benchmark::State &state, kiln::optimizers::Optimizer opt) {
  kiln::ThreadCountScope threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  opt.apply_gradients(mlp.grads, mlp.vars);  // makes the slots
  for (auto _ : state) opt.apply_gradients(mlp.grads, mlp.vars);
  state.counters["params"] = 535818;
}

void BM_AdamFusedW3(benchmark::State &state) { run_optimizer(state, kiln::optimizers::Adam(1e-3)); }

void BM_SgdFusedW3(benchmark::State &state) { run_optimizer(state, kiln::optimizers::SGD(1e-2)); }

void BM_AdamWGlobalClipFusedW3(benchmark::State &state) {
  kiln::optimizers::AdamOptions o;
  o.global_clipnorm = 1.0;
  run_optimizer(state, kiln::optimizers::AdamW(1e-3, o));
}

// The same Adam step as a chain of kiln ops per variable (what an optimizer written with ops
// would run): 10 elementwise ops and 3 assigns, each a pass over memory.
void BM_AdamComposedOpsW3(benchmark::State &state) {
  kiln::ThreadCountScope threads(static_cast<int>(state.range(0)));
  Mlp mlp;
  std::vector<kiln::Variable> ms, vs;
  for (const kiln::Dims &s : kW3Shapes) {
    ms.emplace_back(filled(s, 0.0f), "m", false);
    vs.emplace_back(filled(s, 0.0f), "v", false);
  }
  const float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, eps = 1e-7f;
  int64_t t = 0;
  for (auto _ : state) {
    ++t;
    const float alpha =
        lr * std::sqrt(1 - std::pow(b2, static_cast<float>(t))) / (1 - std::pow(b1, static_cast<float>(t)));
    for (size_t i = 0; i < mlp.vars.size(); ++i) {
      const kiln::Tensor &g = mlp.grads[i];
      kiln::Tensor m = ms[i].value(), v = vs[i].value();
      m = m + (g - m) * (1 - b1);
      v = v + (g * g - v) * (1 - b2);
      ms[i].assign(m);
      vs[i].assign(v);
      mlp.vars[i].assign_sub(m * alpha / (kiln::sqrt(v) + eps));
    }
  }
  state.counters["params"] = 535818;
}

}  // namespace

BENCHMARK(BM_AdamFusedW3)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AdamComposedOpsW3)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SgdFusedW3)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AdamWGlobalClipFusedW3)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

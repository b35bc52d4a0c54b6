// Large float32 elementwise work, softmax and layer_norm through kiln.hpp (kiln's own Highway +
// SLEEF loops since issue 5), against the raw oneDNN eltwise / softmax / layer-norm
// primitives kiln used above its size thresholds before (created once, run in place).
#include <benchmark/benchmark.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kN = 1 << 20;

void BM_KilnExp1M(benchmark::State &state) {
  kiln::Tensor x = kiln::random_uniform({kN}, -10, 10, 1);
  for (auto _ : state) {
    kiln::Tensor y = kiln::exp(x);
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

void BM_KilnGeluErf1M(benchmark::State &state) {
  kiln::Tensor x = kiln::random_uniform({kN}, -6, 6, 1);
  for (auto _ : state) {
    kiln::Tensor y = kiln::gelu(x);
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

// The raw primitive over kiln-owned buffers; algorithm from the benchmark's argument.
void raw_eltwise(benchmark::State &state, dnnl::algorithm alg, float lo, float hi) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  dnnl::memory::desc md({kN}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  dnnl::eltwise_forward prim(dnnl::eltwise_forward::primitive_desc(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, md, 0.0f, 0.0f), eng));
  kiln::Tensor x = kiln::random_uniform({kN}, lo, hi, 1);
  dnnl::memory mx(md, eng, const_cast<float *>(x.data<float>()));
  dnnl::memory my(md, eng);
  for (auto _ : state) {
    prim.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}});
    s.wait();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
void BM_RawOneDnnExp1M(benchmark::State &state) { raw_eltwise(state, dnnl::algorithm::eltwise_exp, -10, 10); }
void BM_RawOneDnnGeluErf1M(benchmark::State &state) {
  raw_eltwise(state, dnnl::algorithm::eltwise_gelu_erf, -6, 6);
}

// Broadcasting binary ops as attention's softmax gradient runs them (x - s with s one value per
// row), against the raw oneDNN binary primitive kiln used for them before (its reference code in
// 2.6 for this pattern). range(0): 0 = s [16,4,128,1], 1 = s [16,4,1,128].
dnnl::memory::dims broadcast_dims(int64_t which) {
  return which == 0 ? dnnl::memory::dims{16, 4, 128, 1} : dnnl::memory::dims{16, 4, 1, 128};
}
void BM_KilnBroadcastSub(benchmark::State &state) {
  const dnnl::memory::dims sd = broadcast_dims(state.range(0));
  kiln::Tensor x = kiln::random_uniform({16, 4, 128, 128}, -1, 1, 1);
  kiln::Tensor s = kiln::random_uniform(kiln::Dims(sd.begin(), sd.end()), -1, 1, 2);
  for (auto _ : state) {
    kiln::Tensor y = x - s;
    benchmark::DoNotOptimize(y.get());
  }
  state.SetItemsProcessed(state.iterations() * x.num_elements());
}
void BM_RawOneDnnBroadcastSub(benchmark::State &state) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream st(eng);
  const dnnl::memory::dims xd{16, 4, 128, 128};
  dnnl::memory::desc xm(xd, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abcd);
  dnnl::memory::desc sm(broadcast_dims(state.range(0)), dnnl::memory::data_type::f32, dnnl::memory::format_tag::abcd);
  dnnl::binary prim(dnnl::binary::primitive_desc(dnnl::binary::desc(dnnl::algorithm::binary_sub, xm, sm, xm), eng));
  dnnl::memory mx(xm, eng), ms(sm, eng), my(xm, eng);
  for (auto _ : state) {
    prim.execute(st, {{DNNL_ARG_SRC_0, mx}, {DNNL_ARG_SRC_1, ms}, {DNNL_ARG_DST, my}});
    st.wait();
  }
  state.SetItemsProcessed(state.iterations() * 16 * 4 * 128 * 128);
}

void BM_KilnLogSoftmax(benchmark::State &state) {
  kiln::Tensor x = kiln::random_uniform({1024, 1000}, -5, 5, 1);
  for (auto _ : state) {
    kiln::Tensor y = kiln::log_softmax(x);
    benchmark::DoNotOptimize(y.get());
  }
}

void BM_RawOneDnnLogSoftmax(benchmark::State &state) {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  dnnl::memory::desc md({1024, 1000}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  dnnl::logsoftmax_forward prim(dnnl::logsoftmax_forward::primitive_desc(
      dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng));
  kiln::Tensor x = kiln::random_uniform({1024, 1000}, -5, 5, 1);
  dnnl::memory mx(md, eng, const_cast<float *>(x.data<float>()));
  dnnl::memory my(md, eng);
  for (auto _ : state) {
    prim.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}});
    s.wait();
  }
}

void BM_KilnLayerNorm(benchmark::State &state) {
  kiln::Tensor x = kiln::random_uniform({4096, 768}, -2, 2, 1);
  kiln::Tensor g = kiln::ones({768}), b = kiln::zeros({768});
  for (auto _ : state) {
    kiln::Tensor y = kiln::layer_norm(x, g, b);
    benchmark::DoNotOptimize(y.get());
  }
}

}  // namespace

BENCHMARK(BM_KilnExp1M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RawOneDnnExp1M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnGeluErf1M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RawOneDnnGeluErf1M)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnBroadcastSub)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RawOneDnnBroadcastSub)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnLogSoftmax)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_RawOneDnnLogSoftmax)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KilnLayerNorm)->Unit(benchmark::kMicrosecond)->UseRealTime();

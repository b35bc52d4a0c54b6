// kiln's rule that a result never depends on the thread count, checked bit for bit on the ops
// whose reductions a threaded kernel could split: the forward value and every gradient of the
// convolutions, matmul's weight gradient (2-D, batched, and the folded 3-D GEMM), bias_add,
// batch_norm and layer_norm's gamma and beta, and sum/mean over large axes. Counts above the
// machine's cores are asked for on purpose: OpenMP and oneDNN honour them.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "conv_test_util.h"
#include "core/threads.h"
#include "ops/nn_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::Padding;
using testing::ConvShape;
using testing::random_tensor;

using Fn = std::function<Tensor(const std::vector<Tensor> &)>;

// f's value and the gradients of sum(f * w) with respect to every input, at `threads` threads
// (the calling thread's override, removed afterwards).
std::vector<Tensor> value_and_gradients(const Fn &f, const std::vector<Tensor> &inputs, int threads) {
  set_num_threads_for_this_thread(threads);
  autodiff::Tape tape(false, true);
  for (const Tensor &x : inputs) tape.watch(x);
  Tensor y = f(inputs);
  tape.stop_recording();
  std::vector<Tensor> out =
      tape.gradient(y, inputs, autodiff::Unconnected::kZero, random_tensor(y.shape(), 99u));
  out.insert(out.begin(), y);
  set_num_threads_for_this_thread(0);
  return out;
}

using testing::same_bits;

// Requires f's value and gradients at 2, 3 and 4 threads to equal those at 1 thread, bit for bit.
void expect_thread_invariant(const std::string &name, const Fn &f, const std::vector<Tensor> &inputs) {
  const std::vector<Tensor> want = value_and_gradients(f, inputs, 1);
  for (int threads : {2, 3, 4}) {
    const std::vector<Tensor> got = value_and_gradients(f, inputs, threads);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(same_bits(got[i], want[i]))
          << name << ": " << (i == 0 ? std::string("value") : "gradient of input " + std::to_string(i - 1))
          << " differs between 1 and " << threads << " threads";
  }
}

struct ConvCase {
  Shape x, filter;
  int64_t stride;
  Padding padding;
};

std::string describe(const ConvCase &c) {
  return "x " + c.x.to_string() + " filter " + c.filter.to_string() + " stride " + std::to_string(c.stride) +
         (c.padding == Padding::kSame ? " SAME" : " VALID");
}

TEST(ThreadInvariance, Conv2d) {
  const std::vector<ConvCase> cases = {
      {{1, 9, 7, 5}, {3, 3, 5, 8}, 1, Padding::kSame},
      {{3, 11, 13, 8}, {3, 3, 8, 16}, 2, Padding::kValid},
      {{8, 15, 15, 16}, {3, 3, 16, 32}, 1, Padding::kSame},
      {{16, 13, 9, 4}, {5, 3, 4, 6}, 2, Padding::kSame},
      {{16, 14, 14, 32}, {3, 3, 32, 64}, 1, Padding::kValid},
      {{5, 7, 7, 3}, {1, 1, 3, 7}, 1, Padding::kValid},
  };
  unsigned seed = 1;
  for (const ConvCase &c : cases)
    expect_thread_invariant("conv2d " + describe(c),
                            [&](const std::vector<Tensor> &in) {
                              return ops::conv2d(in[0], in[1], {c.stride, c.stride}, {1, 1}, c.padding);
                            },
                            {random_tensor(c.x, seed++), random_tensor(c.filter, seed++)});
}

// The filter gradient runs as pieces (ranges of the batch, or of one image's output rows with the
// input rows and padding they read); checked against a float64 loop over shapes that cut pieces
// at every kind of edge: padding on either side, strides, dilations, a last piece shorter.
TEST(ThreadInvariance, Conv2dFilterGradientPiecesMatchFloat64) {
  const std::vector<ConvShape> cases = {
      {{1, 37, 11, 5}, {3, 3, 5, 7}, {1, 1}, {1, 1}, Padding::kSame},
      {{1, 41, 9, 4}, {5, 3, 4, 6}, {2, 1}, {1, 1}, Padding::kSame},
      {{1, 45, 10, 3}, {3, 2, 3, 5}, {1, 2}, {2, 1}, Padding::kValid},
      {{1, 64, 8, 8}, {4, 4, 8, 8}, {3, 3}, {1, 1}, Padding::kSame},
      {{1, 33, 7, 6}, {7, 3, 6, 4}, {1, 1}, {3, 1}, Padding::kSame},
      {{11, 9, 8, 5}, {3, 3, 5, 7}, {2, 2}, {1, 1}, Padding::kSame},
  };
  unsigned seed = 30;
  for (const ConvShape &c : cases) {
    const testing::WindowAxis ah = testing::window_axis(c.x[1], c.f[0], c.s[0], c.d[0], c.p);
    const testing::WindowAxis aw = testing::window_axis(c.x[2], c.f[1], c.s[1], c.d[1], c.p);
    const Tensor x = random_tensor(c.x, seed++), dy = random_tensor({c.x[0], ah.out, aw.out, c.f[3]}, seed++);
    const Tensor got = ops::internal::conv2d_backprop_filter(x, c.f, dy, c.s, c.d, c.p);
    const float *px = x.data<float>(), *pdy = dy.data<float>(), *pg = got.data<float>();
    const int64_t n = c.x[0], h = c.x[1], w = c.x[2], ch = c.x[3], o = c.f[3];
    int bad = 0;
    for (int64_t ky = 0; ky < c.f[0]; ++ky)
      for (int64_t kx = 0; kx < c.f[1]; ++kx)
        for (int64_t ci = 0; ci < ch; ++ci)
          for (int64_t oi = 0; oi < o; ++oi) {
            double want = 0;
            for (int64_t b = 0; b < n; ++b)
              for (int64_t oy = 0; oy < ah.out; ++oy)
                for (int64_t ox = 0; ox < aw.out; ++ox) {
                  const int64_t iy = oy * c.s[0] - ah.before + ky * c.d[0],
                                ix = ox * c.s[1] - aw.before + kx * c.d[1];
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  want += static_cast<double>(px[((b * h + iy) * w + ix) * ch + ci]) *
                          pdy[((b * ah.out + oy) * aw.out + ox) * o + oi];
                }
            const float g = pg[((ky * c.f[1] + kx) * ch + ci) * o + oi];
            if (std::fabs(g - want) > 1e-4 * (1.0 + std::fabs(want)) && bad++ < 5)
              ADD_FAILURE() << "filter gradient, x " << c.x.to_string() << " filter " << c.f.to_string()
                            << " at [" << ky << ", " << kx << ", " << ci << ", " << oi << "]: " << g << " vs "
                            << want;
          }
  }
}

TEST(ThreadInvariance, DepthwiseConv2d) {
  const std::vector<ConvCase> cases = {
      {{1, 9, 9, 8}, {3, 3, 8, 1}, 1, Padding::kSame},
      {{8, 13, 11, 16}, {3, 3, 16, 2}, 2, Padding::kValid},
      {{16, 14, 14, 32}, {3, 3, 32, 1}, 1, Padding::kSame},
  };
  unsigned seed = 20;
  for (const ConvCase &c : cases)
    expect_thread_invariant(
        "depthwise_conv2d " + describe(c),
        [&](const std::vector<Tensor> &in) {
          return ops::depthwise_conv2d(in[0], in[1], {c.stride, c.stride}, {1, 1}, c.padding);
        },
        {random_tensor(c.x, seed++), random_tensor(c.filter, seed++)});
}

TEST(ThreadInvariance, Conv2dTranspose) {
  // x [N, H, W, C], filter [KH, KW, O, C], output [N, 2H, 2W, O] at stride 2, SAME.
  for (int64_t n : {1, 3, 8, 16}) {
    const Shape x{n, 7, 9, 16}, filter{3, 3, 8, 16};
    expect_thread_invariant(
        "conv2d_transpose batch " + std::to_string(n),
        [&](const std::vector<Tensor> &in) {
          return ops::conv2d_transpose(in[0], in[1], {n, 14, 18, 8}, {2, 2}, {1, 1}, Padding::kSame);
        },
        {random_tensor(x, 40u + static_cast<unsigned>(n)), random_tensor(filter, 41u)});
  }
}

TEST(ThreadInvariance, Conv1d) {
  for (int64_t n : {1, 3, 8, 16})
    for (Padding padding : {Padding::kSame, Padding::kValid})
      expect_thread_invariant(
          "conv1d batch " + std::to_string(n),
          [&](const std::vector<Tensor> &in) { return ops::conv1d(in[0], in[1], 2, 1, padding); },
          {random_tensor({n, 101, 16}, 50u), random_tensor({5, 16, 32}, 51u)});
}

TEST(ThreadInvariance, MatmulWeightGradient) {
  // The weight gradient is matmul(x, dy, transpose_a=true): a tall K reduction.
  auto dense = [](const std::vector<Tensor> &in) { return ops::matmul(in[0], in[1]); };
  expect_thread_invariant("matmul [4096, 64] x [64, 96]", dense,
                          {random_tensor({4096, 64}, 60u), random_tensor({64, 96}, 61u)});
  expect_thread_invariant("matmul [2001, 33] x [33, 17]", dense,
                          {random_tensor({2001, 33}, 62u), random_tensor({33, 17}, 63u)});
  expect_thread_invariant("matmul [16, 512, 48] x [48, 40] (folded)", dense,
                          {random_tensor({16, 512, 48}, 64u), random_tensor({48, 40}, 65u)});
  expect_thread_invariant("matmul [4, 1024, 32] x [4, 32, 24] (batched)", dense,
                          {random_tensor({4, 1024, 32}, 66u), random_tensor({4, 32, 24}, 67u)});
  // Below the size that runs as pieces: one piece, still on one thread.
  expect_thread_invariant("matmul [65536, 1] x [1, 8]", dense,
                          {random_tensor({65536, 1}, 58u), random_tensor({1, 8}, 59u)});
  auto transposed = [](const std::vector<Tensor> &in) { return ops::matmul(in[0], in[1], true, false); };
  expect_thread_invariant("matmul transpose_a [8192, 64]^T x [8192, 32]", transposed,
                          {random_tensor({8192, 64}, 68u), random_tensor({8192, 32}, 69u)});
}

// Few rows beside a long K: the product runs as ranges of output columns (a Dense layer's batch
// of 128 on a 784x512 kernel), forward and backward, with the bias of the fused dense op.
TEST(ThreadInvariance, MatmulColumnPieces) {
  auto product = [](const std::vector<Tensor> &in) { return ops::matmul(in[0], in[1]); };
  expect_thread_invariant("matmul [128, 784] x [784, 512]", product,
                          {random_tensor({128, 784}, 70u), random_tensor({784, 512}, 71u)});
  expect_thread_invariant("matmul [100, 700] x [700, 460] (uneven columns)", product,
                          {random_tensor({100, 700}, 72u), random_tensor({700, 460}, 73u)});
  auto transposed_b = [](const std::vector<Tensor> &in) { return ops::matmul(in[0], in[1], false, true); };
  expect_thread_invariant("matmul transpose_b [128, 784] x [512, 784]^T", transposed_b,
                          {random_tensor({128, 784}, 74u), random_tensor({512, 784}, 75u)});
  auto dense = [](const std::vector<Tensor> &in) {
    return ops::dense(in[0], in[1], in[2], ops::DenseActivation::kRelu);
  };
  expect_thread_invariant("dense relu [2, 64, 784] x [784, 512] + bias", dense,
                          {random_tensor({2, 64, 784}, 76u), random_tensor({784, 512}, 77u),
                           random_tensor({512}, 78u)});
}

// The shapes that make a float32 matmul run as pieces (batch, row and K ranges, broadcast batches,
// transposes) against the float64 loop.
TEST(ThreadInvariance, MatmulPiecesMatchFloat64) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{3, 300, 70}, {3, 70, 130}, false, false},    // batch pieces
      {{5, 1, 300, 70}, {2, 70, 40}, false, false},  // broadcast batch dims on both sides
      {{1, 300, 70}, {6, 130, 70}, false, true},     // a broadcast, b transposed
      {{4, 70, 300}, {1, 70, 90}, true, false},      // a transposed, b broadcast
      {{1030, 90}, {90, 1100}, false, false},        // row pieces
      {{3000, 40}, {3000, 24}, true, false},         // K pieces
      {{2, 2100, 33}, {2, 2100, 17}, true, false},   // batch and K pieces
      {{5, 1025}, {1025, 300}, false, false},        // K pieces of a wide, short product
      {{100, 700}, {700, 460}, false, false},        // column pieces, the last one shorter
      {{2, 50, 700}, {460, 700}, false, true},       // column pieces of a folded batch, b transposed
      {{4, 2048}, {2048, 1024}, false, false},       // K and column pieces
  };
  unsigned seed = 90;
  for (const Case &c : cases) {
    const Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    const Tensor got = ops::matmul(a, b, c.ta, c.tb);
    const Tensor want = ops::matmul(ops::cast(a, DType::kFloat64), ops::cast(b, DType::kFloat64), c.ta, c.tb);
    ASSERT_EQ(got.shape(), want.shape());
    const float *g = got.data<float>();
    const double *w = want.data<double>();
    int bad = 0;
    for (int64_t i = 0; i < got.num_elements() && bad < 5; ++i)
      if (std::fabs(g[i] - w[i]) > 1e-4 * (1.0 + std::fabs(w[i]))) {
        ADD_FAILURE() << "matmul " << c.a.to_string() << " x " << c.b.to_string() << " at " << i << ": "
                      << g[i] << " vs " << w[i];
        ++bad;
      }
  }
}

TEST(ThreadInvariance, BiasAddAndNorms) {
  const Tensor x = random_tensor({64, 17, 19, 24}, 70u);
  expect_thread_invariant("bias_add",
                          [](const std::vector<Tensor> &in) { return ops::bias_add(in[0], in[1]); },
                          {x, random_tensor({24}, 71u)});
  expect_thread_invariant("batch_norm training",
                          [](const std::vector<Tensor> &in) {
                            return ops::batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 1e-3f).y;
                          },
                          {x, random_tensor({24}, 72u, 0.5f, 1.5f), random_tensor({24}, 73u)});
  expect_thread_invariant(
      "layer_norm", [](const std::vector<Tensor> &in) { return ops::layer_norm(in[0], in[1], in[2], 1e-3f); },
      {random_tensor({4096, 96}, 74u), random_tensor({96}, 75u, 0.5f, 1.5f), random_tensor({96}, 76u)});
}

TEST(ThreadInvariance, Reductions) {
  const Tensor x = random_tensor({257, 1031}, 80u);
  for (const std::vector<int64_t> &axes : std::vector<std::vector<int64_t>>{{}, {0}, {1}}) {
    expect_thread_invariant("sum", [&](const std::vector<Tensor> &in) { return ops::sum(in[0], axes); }, {x});
    expect_thread_invariant("mean", [&](const std::vector<Tensor> &in) { return ops::mean(in[0], axes); },
                            {x});
  }
  const Tensor big = random_tensor({1 << 20}, 81u);
  expect_thread_invariant("sum of 2^20", [](const std::vector<Tensor> &in) { return ops::sum(in[0]); },
                          {big});
}

}  // namespace
}  // namespace kiln

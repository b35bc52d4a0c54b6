// The libtorch (C++) peer of W2 (benchmarks/README.md): the eager overhead of `c = a + b` on float32
// tensors of shape [1] and [1, 64], in µs per op, without autograd recording (plain tensors) and
// with it (both inputs requires_grad, so every add records a graph node) — the same loop as
// overhead_torch.py without the Python interpreter in between, which is the figure issue 10 asks
// for ("PyTorch's libtorch figure").
//
// Not part of the CMake build (it needs Debian's libtorch-dev, which kiln does not): compare_all.py
// compiles it on first use into <build>/peer/overhead_libtorch with
//   g++ -O2 -std=c++17 -I/usr/include/torch/csrc/api/include overhead_libtorch.cc -ltorch -ltorch_cpu -lc10
//
// Per case: a block of adds long enough to take --min-time seconds, timed --repetitions times (as
// Google Benchmark times kiln's side). Prints
//   RESULT w2_add<elements>_tape<0|1> median M min A max B unit us impl libtorch threads 2 torch V
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Times n adds; the result of each is dropped at once, with its graph node when recorded.
double time_adds(const torch::Tensor &a, const torch::Tensor &b, long n) {
  const auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) {
    torch::Tensor c = a + b;
    asm volatile("" : : "r"(c.unsafeGetTensorImpl()) : "memory");  // keep the add
  }
  return seconds_since(t0);
}

// Seconds per add of each of repetitions blocks, each at least min_time long.
std::vector<double> time_per_add(const torch::Tensor &a, const torch::Tensor &b, int repetitions, double min_time) {
  long n = 1;
  for (;;) {
    const double elapsed = time_adds(a, b, n);
    if (elapsed >= min_time) break;
    n = elapsed < min_time / 10 ? n * 10 : std::max(n + 1, static_cast<long>(n * 1.4 * min_time / elapsed));
  }
  std::vector<double> per_add;
  for (int r = 0; r < repetitions; ++r) per_add.push_back(time_adds(a, b, n) / static_cast<double>(n));
  return per_add;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

}  // namespace

int main(int argc, char **argv) {
  int repetitions = 5;
  double min_time = 0.5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--repetitions") == 0 && i + 1 < argc) {
      repetitions = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
      min_time = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--repetitions N] [--min-time SECONDS]\n", argv[0]);
      return 2;
    }
  }
  torch::set_num_threads(2);
  const int64_t sizes[] = {1, 64};
  for (int64_t elements : sizes) {
    const std::vector<int64_t> shape = elements == 1 ? std::vector<int64_t>{1} : std::vector<int64_t>{1, elements};
    for (int tape = 0; tape <= 1; ++tape) {
      const auto options = torch::TensorOptions().dtype(torch::kFloat32).requires_grad(tape == 1);
      const torch::Tensor a = torch::full(shape, 1.5, options), b = torch::full(shape, 2.5, options);
      time_adds(a, b, 1000);  // warm-up
      std::vector<double> us = time_per_add(a, b, repetitions, min_time);
      for (double &t : us) t *= 1e6;
      std::printf("RESULT w2_add%lld_tape%d median %.6g min %.6g max %.6g unit us impl libtorch threads %d torch %s\n",
                  static_cast<long long>(elements), tape, median(us), *std::min_element(us.begin(), us.end()),
                  *std::max_element(us.begin(), us.end()), torch::get_num_threads(), TORCH_VERSION);
      std::fflush(stdout);
    }
  }
  return 0;
}

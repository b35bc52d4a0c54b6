// Exporting a SavedModel from C++: trains a small MLP (4 features, 3 classes) for a few steps,
// saves it with model.save, loads the directory back and serves its signature, from one thread
// and then from 8 at once.
//
//   kiln_example_saved_model_export EXPORT_DIR
//
// Prints the signature and the served predictions exactly as examples/c/serve_saved_model.c and
// examples/python/serve_saved_model.py print them from the same directory (the test
// example.saved_model_cpp_to_c_python compares the three outputs byte for byte), and exits 1 if
// the served predictions differ by a bit from the trained model's own.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kRows = 6, kFeatures = 4, kThreads = 8;

// Multiples of 1/64 (exact in float32), the same formula in the three programs.
kiln::Tensor batch(int64_t rows) {
  std::vector<float> xs;
  for (int64_t i = 0; i < rows * kFeatures; ++i)
    xs.push_back(static_cast<float>((i * 37) % 129 - 64) / 64.0f);
  return kiln::Tensor::from_vector(xs, {rows, kFeatures});
}

std::string shape_text(const kiln::Dims &dims) {
  std::string s = "(";
  for (size_t d = 0; d < dims.size(); ++d)
    s += (d ? ", " : "") + (dims[d] < 0 ? std::string("None") : std::to_string(dims[d]));
  return s + ")";
}

bool same(const kiln::Tensor &a, const kiln::Tensor &b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s EXPORT_DIR\n", argv[0]);
    return 2;
  }
  try {
    kiln::set_seed(11);
    kiln::Sequential model({kiln::layers::Dense(16, "relu"), kiln::layers::Dense(3, "softmax")});
    model.build_for({-1, kFeatures});
    model.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy", {"accuracy"});
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < 32; ++i) labels.push_back((i * 7 + 1) % 3);
    const kiln::Tensor x_train = batch(32), y_train = kiln::Tensor::from_vector(labels, {32});
    for (int step = 0; step < 5; ++step) model.train_on_batch(x_train, y_train);

    model.save(argv[1]);  // kiln::saved_model::save(model, argv[1])

    const kiln::saved_model::SavedModel loaded = kiln::saved_model::load(argv[1]);
    const kiln::saved_model::Signature serve = loaded.signature("serving_default");
    std::printf("signature serving_default\n");
    for (const auto &s : serve.inputs())
      std::printf("  input %s float32 %s\n", s.name.c_str(), shape_text(s.shape).c_str());
    for (const auto &s : serve.outputs())
      std::printf("  output %s float32 %s\n", s.name.c_str(), shape_text(s.shape).c_str());

    const kiln::Tensor x = batch(kRows);
    const kiln::Tensor y = serve(x);
    const std::vector<float> ys = y.to_vector<float>();
    const size_t cols = ys.size() / static_cast<size_t>(kRows);
    for (int64_t i = 0; i < kRows; ++i) {
      std::printf("row %d:", static_cast<int>(i));
      for (size_t j = 0; j < cols; ++j)
        std::printf(" %.9g", static_cast<double>(ys[static_cast<size_t>(i) * cols + j]));
      std::printf("\n");
    }
    if (!same(y, model.predict_on_batch(x))) {
      std::fprintf(stderr, "the served predictions differ from the trained model's\n");
      return 1;
    }

    std::vector<int> mismatches(kThreads, 0);
    std::vector<std::thread> threads;
    for (int64_t t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int round = 0; round < 10; ++round)
          if (!same(serve(x), y)) ++mismatches[static_cast<size_t>(t)];
      });
    int total = 0;
    for (size_t t = 0; t < threads.size(); ++t) {
      threads[t].join();
      total += mismatches[t];
    }
    std::printf("%d threads: %s\n", static_cast<int>(kThreads), total ? "DIFFERENT" : "identical");
    return total ? 1 : 0;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln: %s\n", e.what());
    return 1;
  }
}

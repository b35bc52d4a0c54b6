// What the C++ Fashion-MNIST demos share (fashion_mnist.cc with fit, fashion_mnist_tape.cc with a
// GradientTape loop): the command line, the data as float32 images [n, 28, 28, 1] in [0, 1] and
// int32 labels, the conv net and the class names.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

namespace fashion_mnist {

inline const char *const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Args {
  int epochs = 4;
  int64_t train_samples = 60000, test_samples = 10000;
  std::string data_dir;  // "": Debian's /usr/share/datasets/fashion-mnist
  std::string log_dir;   // TensorBoard's logs (the fit demo); "": logs/fashion_mnist/<date-time>
  bool distributed = false;  // --distributed: data-parallel over MPI (the fit demo, under mpirun)
};

inline Args parse_args(int argc, char **argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    if (std::strcmp(argv[i], "--distributed") == 0) {
      a.distributed = true;
      --i;  // a flag without a value
      continue;
    }
    if (i + 1 >= argc) break;
    if (std::strcmp(argv[i], "--epochs") == 0) a.epochs = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--train-samples") == 0) a.train_samples = std::atoll(argv[i + 1]);
    else if (std::strcmp(argv[i], "--test-samples") == 0) a.test_samples = std::atoll(argv[i + 1]);
    else if (std::strcmp(argv[i], "--data-dir") == 0) a.data_dir = argv[i + 1];
    else if (std::strcmp(argv[i], "--log-dir") == 0) a.log_dir = argv[i + 1];
  }
  return a;
}

// The TensorBoard log directory of this run: the one asked for, else logs/fashion_mnist/<local
// date-time> as Keras's tutorials name theirs ("logs/fit/20240131-142501"), so runs sit side by
// side under one --logdir.
inline std::string log_dir_of(const Args &args) {
  if (!args.log_dir.empty()) return args.log_dir;
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  return std::string("logs/fashion_mnist/") + stamp;
}

struct Data {
  kiln::Tensor x_train, y_train, x_test, y_test;
};

// The first n of uint8 images [N, 28, 28] as float32 [n, 28, 28, 1] in [0, 1].
inline kiln::Tensor images(const kiln::Tensor &x, int64_t n) {
  kiln::Tensor f = kiln::cast(kiln::slice(x, {0, 0, 0}, {n, 28, 28}), kiln::DType::float32) / 255.0f;
  return kiln::reshape(f, {n, 28, 28, 1});
}
// The first n of uint8 labels [N] as int32.
inline kiln::Tensor labels(const kiln::Tensor &y, int64_t n) {
  return kiln::cast(kiln::slice(y, {0}, {n}), kiln::DType::int32);
}

// The data, or nothing (after a message) when Debian's dataset-fashion-mnist is not installed.
inline std::optional<Data> load(const Args &args) {
  kiln::data::FashionMnist raw;
  try {
    raw = kiln::data::load_fashion_mnist(args.data_dir);
  } catch (const kiln::Error &e) {
    if (e.code() != KILN_STATUS_NOT_FOUND) throw;
    std::printf("Fashion-MNIST not found (%s): install Debian's dataset-fashion-mnist; skipping\n", e.what());
    return std::nullopt;
  }
  const int64_t n_train = std::min<int64_t>(args.train_samples, raw.x_train.shape()[0]);
  const int64_t n_test = std::min<int64_t>(args.test_samples, raw.x_test.shape()[0]);
  return Data{images(raw.x_train, n_train), labels(raw.y_train, n_train), images(raw.x_test, n_test),
              labels(raw.y_test, n_test)};
}

// Conv2D(32, 3, relu) - MaxPooling2D - Conv2D(64, 3, relu) - MaxPooling2D - Flatten -
// Dense(128, relu) - Dense(10) (logits), built for [None, 28, 28, 1]; prints its summary.
inline kiln::Sequential build_model(bool print_summary = true) {
  namespace L = kiln::layers;
  kiln::Sequential model({L::Conv2D(32, {3}, "relu"), L::MaxPooling2D(), L::Conv2D(64, {3}, "relu"),
                          L::MaxPooling2D(), L::Flatten(), L::Dense(128, "relu"), L::Dense(10)});
  model.build_for({-1, 28, 28, 1});
  if (print_summary) std::printf("%s", model.summary().c_str());
  return model;
}

// Prints the predicted class of the first n images (logits [>= n, 10]) beside the true one.
inline void print_predictions(const kiln::Tensor &logits, const kiln::Tensor &y, size_t n) {
  const std::vector<int64_t> predicted = kiln::argmax(logits, -1).to_vector<int64_t>();
  const std::vector<int32_t> truth = y.to_vector<int32_t>();
  for (size_t i = 0; i < n && i < predicted.size(); ++i)
    std::printf("test image %zu: predicted %-11s (true: %s)\n", i, kClassNames[predicted[i]], kClassNames[truth[i]]);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace fashion_mnist

// Trains a two-layer network on a toy regression task with a GradientTape loop,
// the way a TF2 custom training loop does, and prints the loss falling.
//
//   y = sin(3 x0) + x1^2 ;  model: tanh(x W1 + b1) W2 + b2 ;  plain SGD.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kiln/kiln.hpp"

int main(int argc, char **argv) {
  int epochs = 200;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--epochs") == 0) epochs = std::atoi(argv[i + 1]);
  try {
    kiln::set_seed(7);
    const int64_t n = 256, hidden = 32;
    kiln::Tensor x = kiln::random_uniform({n, 2}, -1.0f, 1.0f);
    std::vector<float> xs = x.to_vector<float>(), ys(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      ys[static_cast<size_t>(i)] = std::sin(3 * xs[static_cast<size_t>(2 * i)]) +
                                   xs[static_cast<size_t>(2 * i + 1)] * xs[static_cast<size_t>(2 * i + 1)];
    kiln::Tensor y = kiln::Tensor::from_vector(ys, {n, 1});

    std::vector<kiln::Variable> params = {
        kiln::Variable(kiln::random_normal({2, hidden}, 0.0f, 0.7f), "dense/kernel"),
        kiln::Variable(kiln::zeros({hidden}), "dense/bias"),
        kiln::Variable(kiln::random_normal({hidden, 1}, 0.0f, 0.2f), "dense_1/kernel"),
        kiln::Variable(kiln::zeros({1}), "dense_1/bias"),
    };
    const float learning_rate = 0.1f;
    float first = 0, last = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      kiln::GradientTape tape;
      kiln::Tensor h = kiln::tanh(kiln::matmul(x, params[0]) + params[1].value());
      kiln::Tensor pred = kiln::matmul(h, params[2]) + params[3].value();
      kiln::Tensor loss = kiln::mean(kiln::square(pred - y));
      tape.stop();
      std::vector<kiln::Tensor> grads = tape.gradient(loss, params);
      for (size_t k = 0; k < params.size(); ++k) params[k].assign_sub(grads[k] * learning_rate);
      last = loss.item<float>();
      if (epoch == 0) first = last;
      if (epoch % (epochs / 10 > 0 ? epochs / 10 : 1) == 0 || epoch == epochs - 1)
        std::printf("epoch %4d  loss %.5f\n", epoch, last);
    }
    std::printf("loss fell from %.5f to %.5f\n", first, last);
    return last < first ? 0 : 1;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln error: %s\n", e.what());
    return 1;
  }
}

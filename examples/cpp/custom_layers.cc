// The seed's custom-layer examples in C++ (see examples/python/custom_layers.py, which prints the
// same numbers): MyDense inside a Model subclass, a SegPosEmbedding whose build creates its
// tables, and the summary of a nested Sequential.
#include <cstdio>
#include <iostream>

#include "kiln/kiln.hpp"

using kiln::Tensor;

class MyDense : public kiln::Layer {
 public:
  MyDense(int64_t in, int64_t out) : Layer("MyDense") {
    w_ = add_weight("kernel", {in, out}, "random_normal");
    b_ = add_weight("bias", {out}, "zeros");
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    return {kiln::matmul(x[0], w_.value()) + b_.value()};
  }

 private:
  kiln::Variable w_, b_;
};

class MyModel : public kiln::Model {
 public:
  MyModel() : Model("MyModel"), dense1_(4, 8), dense2_(8, 3) {
    track(dense1_);
    track(dense2_);
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool) override {
    return {dense2_(kiln::relu(dense1_(x[0])))};
  }

 private:
  MyDense dense1_, dense2_;
};

class SegPosEmbedding : public kiln::Layer {
 public:
  SegPosEmbedding(int64_t type_vocab, int64_t max_len)
      : Layer("SegPosEmbedding"), type_vocab_(type_vocab), max_len_(max_len) {
    norm_ = track(kiln::layers::LayerNormalization());
    drop_ = track(kiln::layers::Dropout(0.1));
  }

 protected:
  void build(const std::vector<kiln::Dims> &shapes) override {
    const int64_t hidden = shapes[0].back();
    types_ = add_weight("token_type_embeddings", {type_vocab_, hidden}, "truncated_normal");
    positions_ = add_weight("position_embeddings", {max_len_, hidden}, "truncated_normal");
  }
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    Tensor pos = kiln::range(0, static_cast<double>(in[0].shape()[1]), 1, kiln::DType::int32);
    Tensor y = in[0] + kiln::gather(types_.value(), in[1]) + kiln::gather(positions_.value(), pos);
    return {drop_(norm_(y), training)};
  }

 private:
  int64_t type_vocab_, max_len_;
  kiln::Layer norm_, drop_;
  kiln::Variable types_, positions_;
};

static Tensor pattern(const kiln::Dims &shape, float scale) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(scale * static_cast<float>(i % 7 - 3));
  return Tensor::from_vector(v, shape);
}

static void show(const char *label, const Tensor &t) {
  std::printf("%s", label);
  for (float v : t.to_vector<float>()) std::printf(" %.6g", static_cast<double>(v));
  std::printf("\n");
}

static void names(const std::vector<kiln::Variable> &vars) {
  std::printf("variables");
  for (const kiln::Variable &v : vars) std::printf(" %s", v.name().c_str());
  std::printf("\n");
}

int main() {
  try {
    kiln::set_seed(1234);
    MyModel model;
    show("mymodel", model(pattern({2, 4}, 0.25f)));
    names(model.trainable_variables());

    SegPosEmbedding emb(2, 6);
    Tensor types = Tensor::from_vector(std::vector<int32_t>{0, 1, 1, 1, 0, 0}, {2, 3});
    show("segpos", emb({pattern({2, 3, 4}, 0.125f), types}, false)[0]);
    names(emb.variables());

    kiln::Sequential inner({kiln::layers::Dense(64, "relu"), kiln::layers::Dense(10)});
    kiln::Sequential outer({inner, kiln::layers::Dense(2)});
    outer.build_for({-1, 784});
    std::cout << outer.summary();
    return 0;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

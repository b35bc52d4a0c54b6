// The SavedModel through kiln.hpp: kiln::saved_model::save / load, model.save,
// kiln::models::load_model, signatures by position and by name, 8-thread serving, a custom C++
// class through the registry, and errors as kiln::Error.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "kiln/kiln.hpp"

namespace {

class HppSavedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln_hpp_saved_model_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string dir;
};

kiln::Sequential mlp() {
  kiln::Sequential m({kiln::layers::Dense(8, "relu"), kiln::layers::Dense(3, "softmax")});
  m.build_for({-1, 4});
  return m;
}

kiln::Tensor features(int64_t rows) {
  std::vector<float> v;
  for (int64_t i = 0; i < rows * 4; ++i) v.push_back(static_cast<float>((i * 37) % 129 - 64) / 64.0f);
  return kiln::Tensor::from_vector(v, {rows, 4});
}

bool same(const kiln::Tensor &a, const kiln::Tensor &b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// A model compiled with a loss function and a metric of it loads compiled once the function is
// registered under its name (Keras's custom_objects); without it, load_model says what to do.
TEST_F(HppSavedModel, CustomLossFunctionLoadsOnceRegistered) {
  const auto half_squared = [](const kiln::Tensor &y_true, const kiln::Tensor &y_pred) {
    const kiln::Tensor d = y_pred - y_true;
    return kiln::mean(d * d * 0.5f, {-1});
  };
  kiln::Sequential m({kiln::layers::Dense(3)});
  m.build_for({-1, 4});
  const kiln::Loss loss = kiln::Loss::from_function("half_squared", half_squared);
  m.compile(kiln::CompileOptions()
                .with_optimizer(kiln::optimizers::SGD(0.1))
                .with_loss(loss)
                .with_metrics(std::vector<kiln::Metric>{kiln::Metric::mean_wrapper(loss)}));
  const kiln::Tensor x = features(8), y = features(8) * 0.5f;
  const kiln::Tensor y3 = kiln::slice(y, {0, 0}, {8, 3});
  m.train_on_batch(x, y3);
  m.save(dir + "/export");
  try {
    kiln::models::load_model(dir + "/export");
    ADD_FAILURE() << "loaded without the function";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("'half_squared'"), std::string::npos) << e.what();
  }
  kiln::losses::register_function("half_squared", half_squared);
  EXPECT_TRUE(kiln::Loss::is_registered("half_squared"));
  kiln::Model l = kiln::models::load_model(dir + "/export");
  ASSERT_TRUE(l.is_compiled());
  const auto a = m.test_on_batch(x, y3), b = l.test_on_batch(x, y3);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b.count("half_squared"), 1u);
  EXPECT_EQ(m.train_on_batch(x, y3), l.train_on_batch(x, y3));
  EXPECT_TRUE(same(m.predict_on_batch(x), l.predict_on_batch(x)));
  // By name, as a loss and a metric.
  kiln::Sequential n({kiln::layers::Dense(3)});
  n.compile("sgd", "half_squared", std::vector<std::string>{"half_squared"});
  EXPECT_EQ(n.train_on_batch(x, y3).count("half_squared"), 1u);
  kiln::losses::unregister_loss("half_squared");
  EXPECT_FALSE(kiln::Loss::is_registered("half_squared"));
  try {
    kiln::losses::register_function("mse", half_squared);
    ADD_FAILURE() << "registered over a built-in loss";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
  }
}

TEST_F(HppSavedModel, SaveLoadServeAndTrainOn) {
  kiln::Sequential m = mlp();
  m.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy", {"accuracy"});
  const kiln::Tensor x = features(16);
  const kiln::Tensor y = kiln::Tensor::from_vector(std::vector<int64_t>(16, 1), {16});
  for (int i = 0; i < 3; ++i) m.train_on_batch(x, y);
  m.save(dir + "/export");

  const kiln::saved_model::SavedModel loaded = kiln::saved_model::load(dir + "/export");
  EXPECT_EQ(loaded.kiln_version(), kiln::version());
  EXPECT_EQ(loaded.signature_keys(), std::vector<std::string>{"serving_default"});
  const kiln::saved_model::Signature serve = loaded.signatures().at("serving_default");
  ASSERT_EQ(serve.inputs().size(), 1u);
  EXPECT_EQ(serve.inputs()[0].name, m.layers()[0].name() + "_input");
  EXPECT_EQ(serve.inputs()[0].shape, (kiln::Dims{-1, 4}));
  EXPECT_EQ(serve.outputs()[0].shape, (kiln::Dims{-1, 3}));
  EXPECT_TRUE(same(serve(x), m.predict_on_batch(x)));
  const std::map<std::string, kiln::Tensor> named = serve({{serve.inputs()[0].name, x}});
  EXPECT_TRUE(same(named.at(serve.outputs()[0].name), m.predict_on_batch(x)));

  kiln::Model l = loaded.model();
  ASSERT_TRUE(l.is_compiled());
  EXPECT_EQ(m.train_on_batch(x, y), l.train_on_batch(x, y));
  EXPECT_TRUE(same(m.predict_on_batch(x), l.predict_on_batch(x)));

  const kiln::Model again = kiln::models::load_model(dir + "/export", false);
  EXPECT_FALSE(again.is_compiled());
}

TEST_F(HppSavedModel, EightThreadsServe) {
  kiln::saved_model::save(mlp(), dir + "/export");
  const kiln::saved_model::Signature serve = kiln::saved_model::load(dir + "/export").signature();
  // The signature keeps the SavedModel alive after `load`'s result is gone.
  std::vector<kiln::Tensor> inputs, expected;
  for (int t = 0; t < 8; ++t) {
    inputs.push_back(features(1 + 3 * t));
    expected.push_back(serve(inputs.back()));
  }
  std::vector<int> bad(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 10; ++r)
        if (!same(serve(inputs[static_cast<size_t>(t)]), expected[static_cast<size_t>(t)]))
          ++bad[static_cast<size_t>(t)];
    });
  for (std::thread &th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(8, 0));
}

// inference_weights "bfloat16" and "int8": batch 1 to 8 close to float32's results, more rows
// float32's bits; another value is a kiln::Error naming the choices.
TEST_F(HppSavedModel, InferenceWeights) {
  kiln::saved_model::save(mlp(), dir + "/export");
  const kiln::Tensor x2 = features(2), x9 = features(9);
  const kiln::saved_model::Signature f32 = kiln::saved_model::load(dir + "/export").signature();
  for (const std::string format : {"bfloat16", "int8"}) {
    SCOPED_TRACE(format);
    const kiln::saved_model::Signature s = kiln::saved_model::load(dir + "/export", true, format).signature();
    EXPECT_FALSE(same(s(x2), f32(x2)));
    const std::vector<float> a = s(x2).to_vector<float>(), b = f32(x2).to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 0.02) << i;
    EXPECT_TRUE(same(s(x9), f32(x9)));
    EXPECT_TRUE(same(kiln::models::load_model(dir + "/export", false, format).predict_on_batch(x2), s(x2)));
  }
  try {
    kiln::saved_model::load(dir + "/export", true, "int4");
    FAIL() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("'int4'; expected \"float32\", \"bfloat16\" or \"int8\""),
              std::string::npos)
        << e.what();
  }
}

TEST_F(HppSavedModel, OptionsAndErrors) {
  kiln::Sequential m = mlp();
  kiln::saved_model::SaveOptions o;
  o.inputs = {{"features", kiln::DType::float32, {}}};
  o.output_names = {"probabilities"};
  kiln::saved_model::save(m, dir + "/named", o);
  const kiln::saved_model::Signature s = kiln::saved_model::load(dir + "/named").signature();
  EXPECT_EQ(s.inputs()[0].name, "features");
  EXPECT_EQ(s.outputs()[0].name, "probabilities");

  try {
    s(kiln::reshape(features(2), {4, 2}));
    FAIL() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("has shape (4, 2); expected (None, 4)"), std::string::npos)
        << e.what();
  }
  try {
    kiln::saved_model::load(dir + "/nowhere");
    FAIL() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
  }
  try {
    kiln::Sequential unbuilt({kiln::layers::Dense(2)});
    unbuilt.save(dir + "/unbuilt");
    FAIL() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_FAILED_PRECONDITION);
  }
}

}  // namespace

// TensorBoard logging through kiln.hpp (kiln::summary): TF2's metrics pattern with the step bound
// to optimizer.iterations, as_default scopes and the per-thread step, every summary kind read
// back, and errors as kiln::Error.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "kiln/kiln.hpp"

namespace {

class HppSummary : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln_hpp_summary_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string dir;
};

kiln::Tensor features(int64_t rows, int64_t shift) {
  std::vector<float> v;
  for (int64_t i = 0; i < rows * 4; ++i)
    v.push_back(static_cast<float>(((i + shift) * 37) % 129 - 64) / 64.0f);
  return kiln::Tensor::from_vector(v, {rows, 4});
}

std::vector<kiln::Config> values_of(const kiln::Config &file) {
  std::vector<kiln::Config> out;
  for (const kiln::Config &e : file.get_config_list("events"))
    for (kiln::Config v : e.get_config_list("values")) {
      v.set("step", e.get_int("step"));
      out.push_back(v);
    }
  return out;
}

// The seed's pattern: a Mean updated per batch, written every N optimizer steps, then reset.
TEST_F(HppSummary, MeanMetricEveryNStepsAtOptimizerIterations) {
  kiln::Sequential m({kiln::layers::Dense(8, "relu"), kiln::layers::Dense(3, "softmax")});
  m.build_for({-1, 4});
  kiln::optimizers::Optimizer opt = kiln::optimizers::Adam(0.01);
  m.compile(opt, "sparse_categorical_crossentropy");
  kiln::summary::SummaryWriter writer = kiln::summary::create_file_writer(dir + "/train");
  kiln::Metric mean = kiln::metrics::Mean("loss");
  std::vector<double> expected;
  double acc = 0;
  {
    auto scope = writer.as_default();
    kiln::summary::set_step(opt);
    const kiln::Tensor y = kiln::Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 1, 0, 2, 1, 1}, {8});
    for (int step = 0; step < 9; ++step) {
      const double loss = m.train_on_batch(features(8, step), y).at("loss");
      acc += loss;
      mean.update_state_values(kiln::Tensor::from_vector(std::vector<float>{static_cast<float>(loss)}, {}));
      if ((step + 1) % 3 == 0) {
        EXPECT_TRUE(kiln::summary::scalar("loss", mean.result().to_vector<float>()[0]));
        expected.push_back(static_cast<float>(static_cast<float>(acc) / 3.0f));
        acc = 0;
        mean.reset_state();
      }
    }
    kiln::summary::clear_step();
  }
  EXPECT_FALSE(kiln::summary::scalar("loss", 1.0, 0));  // the scope is over: no default writer
  writer.close();
  const std::vector<kiln::Config> vs = values_of(kiln::summary::read_events(writer.path()));
  ASSERT_EQ(vs.size(), 3u);
  for (size_t i = 0; i < vs.size(); ++i) {
    EXPECT_EQ(vs[i].get_string("tag"), "loss");
    EXPECT_EQ(vs[i].get_int("step"), static_cast<int64_t>(3 * (i + 1)));
    EXPECT_NEAR(vs[i].get_float("scalar"), expected[i], 1e-6);
  }
}

TEST_F(HppSummary, KindsScopesAndThreads) {
  kiln::summary::SummaryWriter w = kiln::summary::create_file_writer(dir + "/kinds", {5, 1000, ".v2"});
  EXPECT_NE(w.path().find("events.out.tfevents."), std::string::npos);
  EXPECT_EQ(w.logdir(), dir + "/kinds");
  {
    auto scope = w.as_default(3);
    EXPECT_TRUE(kiln::summary::should_record_summaries());
    EXPECT_EQ(kiln::summary::get_step(), 3);
    std::vector<float> h(50);
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<float>(i);
    EXPECT_TRUE(kiln::summary::histogram("weights", kiln::Tensor::from_vector(h, {50}), std::nullopt, 10));
    EXPECT_TRUE(kiln::summary::image(
        "img", kiln::Tensor::from_vector(std::vector<float>(2 * 4 * 6 * 1, 0.5f), {2, 4, 6, 1})));
    EXPECT_TRUE(kiln::summary::text("notes", "| a | b |\n|---|---|\n| 1 | 2 |"));
    kiln::Config hp;
    hp.set("units", 64).set("optimizer", "adam");
    EXPECT_TRUE(kiln::summary::hparams(hp));
    kiln::summary::record_if(false);
    EXPECT_FALSE(kiln::summary::scalar("off", 1.0));
    kiln::summary::record_if(true);
    // Another thread has no default writer.
    std::thread([] { EXPECT_FALSE(kiln::summary::should_record_summaries()); }).join();
    kiln::summary::trace_on();
    kiln::Tensor a = features(4, 0);
    (void)kiln::matmul(a, kiln::transpose(a, {1, 0}));
    EXPECT_TRUE(kiln::summary::trace_export("trace"));
  }
  EXPECT_FALSE(kiln::summary::get_step().has_value());
  w.flush();
  const std::vector<kiln::Config> vs = values_of(kiln::summary::read_events(w.path()));
  ASSERT_GE(vs.size(), 6u);
  EXPECT_EQ(vs[0].get_string("kind"), "histogram");
  EXPECT_EQ(vs[0].get_int("step"), 3);
  EXPECT_EQ(vs[1].get_string("kind"), "image");
  EXPECT_EQ(vs[1].get_int("width"), 6);
  EXPECT_EQ(vs[1].get_int("height"), 4);
  EXPECT_EQ(vs[2].get_string("kind"), "text");
  EXPECT_EQ(vs[3].get_string("kind"), "hparams");
  EXPECT_EQ(vs[4].get_string("tag"), "trace");
}

// fit with kiln::callbacks::TensorBoard: train/ and validation/ runs with Keras's tags.
TEST_F(HppSummary, FitWithTensorBoardCallback) {
  kiln::Sequential m({kiln::layers::Dense(8, "relu"), kiln::layers::Dense(3, "softmax")});
  m.build_for({-1, 4});
  m.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy", {"accuracy"});
  std::vector<int64_t> labels;
  for (int i = 0; i < 40; ++i) labels.push_back(i % 3);
  kiln::callbacks::TensorBoardOptions o;
  o.histogram_freq = 1;
  o.update_freq = 2;
  kiln::History h = m.fit(features(40, 1), kiln::Tensor::from_vector(labels, {40}),
                          kiln::FitOptions()
                              .with_epochs(2)
                              .with_batch_size(10)
                              .with_verbose(0)
                              .with_validation_split(0.25)
                              .with_callbacks({kiln::callbacks::TensorBoard(dir + "/fit", o)}));
  std::map<std::string, std::vector<std::pair<int64_t, double>>> train, val;
  for (const auto &[run, out] :
       {std::make_pair(std::string("train"), &train), std::make_pair(std::string("validation"), &val)}) {
    std::vector<std::string> files;
    for (const auto &e : std::filesystem::directory_iterator(dir + "/fit/" + run))
      files.push_back(e.path().string());
    ASSERT_EQ(files.size(), 1u) << run;
    for (const kiln::Config &v : values_of(kiln::summary::read_events(files[0])))
      if (v.get_string("kind") == "scalar")
        (*out)[v.get_string("tag")].emplace_back(v.get_int("step"), v.get_float("scalar"));
  }
  ASSERT_EQ(train["epoch_loss"].size(), 2u);
  for (int e = 0; e < 2; ++e) {
    EXPECT_EQ(train["epoch_loss"][e].first, e);
    EXPECT_FLOAT_EQ(train["epoch_loss"][e].second, h.history().at("loss")[e]);
    EXPECT_FLOAT_EQ(val["epoch_loss"][e].second, h.history().at("val_loss")[e]);
    EXPECT_FLOAT_EQ(val["epoch_accuracy"][e].second, h.history().at("val_accuracy")[e]);
  }
  EXPECT_EQ(train["epoch_learning_rate"].size(), 2u);
  EXPECT_EQ(train["batch_loss"].size(), 3u);  // 6 batches, every 2nd
  EXPECT_EQ(val["evaluation_loss_vs_iterations"].back().first, 6);
}

TEST_F(HppSummary, ErrorsAreKilnErrors) {
  EXPECT_THROW(kiln::summary::create_file_writer(dir + "/x", {0, 10, ".v2"}), kiln::Error);
  kiln::summary::SummaryWriter w = kiln::summary::create_file_writer(dir + "/e");
  auto scope = w.as_default();
  EXPECT_THROW(kiln::summary::scalar("no step", 1.0), kiln::Error);
  EXPECT_THROW(kiln::summary::image("bad", features(2, 0), 0), kiln::Error);  // rank 2, not [k, h, w, c]
  w.close();
  EXPECT_THROW(kiln::summary::scalar("closed", 1.0, 0), kiln::Error);
  // One flipped byte is detected by the reader.
  const std::string path = w.path();
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(20);
  f.put('\x7f');
  f.close();
  EXPECT_THROW(kiln::summary::read_events(path), kiln::Error);
}

}  // namespace

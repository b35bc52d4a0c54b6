// kiln.hpp's ModelCheckpoint and BackupAndRestore (kiln::callbacks) in Model::fit: formatted file
// names per epoch and per batch, save_best_only's best, an unknown name as kiln::Error, and a fit
// that throws in its second epoch resumed bit for bit by a fresh model and optimizer.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>

#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kN = 40;

struct Problem {
  kiln::Tensor x, y;
};

Problem problem() {
  std::vector<float> x(kN * 3), y(kN);
  uint32_t s = 9;
  for (float &v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  for (int64_t i = 0; i < kN; ++i) y[size_t(i)] = x[size_t(3 * i)] - 2 * x[size_t(3 * i + 1)];
  return {kiln::Tensor::from_vector(x, {kN, 3}), kiln::Tensor::from_vector(y, {kN, 1})};
}

kiln::Sequential model(uint64_t seed) {
  kiln::set_seed(seed);
  kiln::Sequential m({kiln::layers::Dense(4, "relu"), kiln::layers::Dense(1)});
  m.build_for(kiln::Dims{-1, 3});
  m.compile(kiln::optimizers::Adam(0.01), "mse");
  return m;
}

std::vector<std::vector<float>> weights(const kiln::Sequential &m) {
  std::vector<std::vector<float>> out;
  for (const kiln::Variable &v : m.variables()) out.push_back(v.value().to_vector<float>());
  return out;
}

kiln::FitOptions options(int64_t epochs, const std::vector<kiln::Callback> &callbacks) {
  return kiln::FitOptions()
      .with_epochs(epochs)
      .with_batch_size(10)
      .with_verbose(0)
      .with_shuffle(false)
      .with_callbacks(callbacks);
}

class CrashAt : public kiln::Callback {
 public:
  CrashAt(int64_t epoch, int64_t batch) : Callback("CrashAt"), epoch_at_(epoch), batch_at_(batch) {}
  void on_epoch_begin(int64_t epoch, const kiln::Logs &) override {
    epoch_ = epoch;
    epochs.push_back(epoch);
  }
  void on_train_batch_begin(int64_t batch, const kiln::Logs &) override {
    if (epoch_ == epoch_at_ && batch == batch_at_)
      throw kiln::Error(KILN_STATUS_INTERNAL, "the machine went down");
  }
  std::vector<int64_t> epochs;

 private:
  int64_t epoch_at_, batch_at_, epoch_ = -1;
};

class HppCheckpointCallbacks : public ::testing::Test {
 protected:
  void SetUp() override {
    const char *base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln_hpp_cbckpt_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  bool exists(const std::string &name) const { return std::filesystem::exists(dir + "/" + name); }
  std::string dir;
  Problem p = problem();
};

TEST_F(HppCheckpointCallbacks, ModelCheckpointNamesAndBest) {
  kiln::Sequential m = model(1);
  kiln::Callback per_epoch = kiln::callbacks::ModelCheckpoint(dir + "/e{epoch:02d}");
  kiln::callbacks::ModelCheckpointOptions every3;
  every3.save_freq = 3;
  kiln::Callback per_batch = kiln::callbacks::ModelCheckpoint(dir + "/b{epoch}-{batch}", every3);
  kiln::callbacks::ModelCheckpointOptions best;
  best.monitor = "loss";
  best.save_best_only = true;
  best.has_initial_value_threshold = true;
  best.initial_value_threshold = 1e9;
  kiln::Callback best_cb = kiln::callbacks::ModelCheckpoint(dir + "/best", best);
  EXPECT_EQ(best_cb.class_name(), "ModelCheckpoint");
  m.fit(p.x, p.y, options(2, {per_epoch, per_batch, best_cb}));
  // save_weights_only false: model.save's SavedModel directories, which load back whole.
  EXPECT_TRUE(exists("e01/saved_model.pb") && exists("e02/saved_model.pb"));
  EXPECT_TRUE(exists("b1-3/saved_model.pb") && exists("b2-2/saved_model.pb"));  // 4 batches an epoch, across epochs
  EXPECT_TRUE(exists("best/saved_model.pb"));
  const kiln::Model reloaded = kiln::models::load_model(dir + "/e02");
  EXPECT_EQ(reloaded.count_params(), m.count_params());
  EXPECT_LT(best_cb.attributes().get_float("best"), 1e9);
  try {
    m.fit(p.x, p.y, options(1, {kiln::callbacks::ModelCheckpoint(dir + "/{val_loss}")}));
    ADD_FAILURE() << "expected an error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("KeyError: 'val_loss'"), std::string::npos) << e.what();
  }
}

TEST_F(HppCheckpointCallbacks, BackupAndRestoreResumesBitForBit) {
  kiln::Sequential straight = model(3);
  straight.fit(p.x, p.y, options(3, {}));
  const auto expected = weights(straight);

  const std::string backup = dir + "/backup";
  kiln::Sequential first = model(3);
  CrashAt crash(1, 2);
  EXPECT_THROW(first.fit(p.x, p.y, options(3, {kiln::callbacks::BackupAndRestore(backup), crash})),
               kiln::Error);
  EXPECT_EQ(crash.epochs, (std::vector<int64_t>{0, 1}));

  kiln::Sequential second = model(3);
  CrashAt log(-1, -1);
  kiln::Callback bar = kiln::callbacks::BackupAndRestore(backup);
  kiln::History h = second.fit(p.x, p.y, options(3, {bar, log}));
  EXPECT_EQ(h.epoch(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(log.epochs, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(bar.attributes().get_int("resumed_epoch"), 1);
  const auto got = weights(second);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), expected[i].size());
    EXPECT_EQ(std::memcmp(got[i].data(), expected[i].data(), got[i].size() * sizeof(float)), 0)
        << "variable " << i;
  }
  EXPECT_FALSE(exists("backup"));

  kiln::callbacks::BackupAndRestoreOptions keep;
  keep.save_freq = 2;
  keep.delete_checkpoint = false;
  model(3).fit(p.x, p.y, options(1, {kiln::callbacks::BackupAndRestore(backup, keep)}));
  EXPECT_TRUE(exists("backup/chief/checkpoint"));
}

}  // namespace

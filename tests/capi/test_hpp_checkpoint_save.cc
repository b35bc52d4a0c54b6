// kiln::train's checkpoint writing and restoring from kiln.hpp: Checkpoint of {name, object}
// pairs (models, optimizers, variables, checkpoints), save / write / restore / read, the chainable
// LoadStatus, CheckpointManager, latest_checkpoint, Model::save_weights / load_weights, the Keras
// fixture (../shared/fixtures; skipped when absent), and the errors as kiln::Error codes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif

namespace {

using kiln::Dims;
using kiln::Tensor;
using kiln::testing::TempDir;
using kiln::train::Checkpoint;
using kiln::train::CheckpointManager;
using kiln::train::LoadStatus;

const std::string kFixture =
    std::string(KILN_TEST_SOURCE_DIR) + "/../shared/fixtures/tf2_checkpoint/keras_embedding.ckpt-0";

bool exists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The status code of what fn throws (KILN_STATUS_OK when it does not), its message in *message.
template <typename F>
kiln_status_code code_of(F &&fn, std::string *message = nullptr) {
  try {
    fn();
  } catch (const kiln::Error &e) {
    if (message) *message = e.what();
    return e.code();
  }
  return KILN_STATUS_OK;
}

kiln::Sequential small_model(int64_t first_units = 8) {
  kiln::Sequential m({kiln::layers::Dense(first_units, "relu"), kiln::layers::Dense(3, "softmax")});
  m.build_for(Dims{-1, 5});
  return m;
}

void train_steps(kiln::Model &m, int from, int steps) {
  for (int s = from; s < from + steps; ++s) {
    std::vector<float> x(30);
    std::vector<int64_t> y(6);
    for (int i = 0; i < 30; ++i) x[size_t(i)] = static_cast<float>((i * 7 + s * 13) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < 6; ++i) y[size_t(i)] = (i * 7 + s) % 3;
    m.train_on_batch(Tensor::from_vector(x, {6, 5}), Tensor::from_vector(y, {6}));
  }
}

bool same_bits(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.byte_size() == b.byte_size() &&
         std::memcmp(kiln_tensor_get_data(a.get()), kiln_tensor_get_data(b.get()), a.byte_size()) == 0;
}

void expect_same(const std::vector<kiln::Variable> &a, const std::vector<kiln::Variable> &b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same_bits(a[i].value(), b[i].value())) << a[i].name();
}

void copy_weights(const kiln::Model &from, kiln::Model &to) {
  const auto src = from.variables(), dst = to.variables();
  ASSERT_EQ(src.size(), dst.size());
  for (size_t i = 0; i < src.size(); ++i) {
    kiln::Variable d = dst[i];
    d.assign(src[i].value());
  }
}

TEST(HppCheckpointSave, ResumedTrainingIsBitIdentical) {
  TempDir dir("kiln_hpp_ckpt_save");
  kiln::Sequential a = small_model(), b = small_model(), c = small_model();
  copy_weights(a, c);
  a.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  b.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  c.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  train_steps(a, 0, 3);
  Checkpoint ckpt_a({{"model", a}, {"optimizer", a.optimizer()}});
  EXPECT_EQ(ckpt_a.save(dir / "ckpt"), dir / "ckpt-1");

  Checkpoint ckpt_b({{"optimizer", b.optimizer()}, {"model", b}});
  EXPECT_EQ(ckpt_b.save_counter(), 0);
  LoadStatus status = ckpt_b.restore(dir.path());
  EXPECT_EQ(ckpt_b.save_counter(), 1);
  EXPECT_EQ(b.optimizer().iterations(), 3);
  status.assert_existing_objects_matched();
  EXPECT_EQ(code_of([&] { status.assert_consumed(); }), KILN_STATUS_FAILED_PRECONDITION);
  EXPECT_EQ(status.pending_values().size(), 8u);  // Adam's m and v of 4 variables, until b's first step
  train_steps(b, 3, 2);
  status.assert_consumed().assert_existing_objects_matched();
  EXPECT_TRUE(status.pending_values().empty());
  EXPECT_EQ(status.path(), dir / "ckpt-1");

  train_steps(c, 0, 5);
  expect_same(b.variables(), c.variables());
  expect_same(b.optimizer().variables(), c.optimizer().variables());
}

TEST(HppCheckpointSave, SaveNumberingStateFileWriteAndRead) {
  TempDir dir("kiln_hpp_ckpt_save");
  kiln::Variable v(Tensor::from_vector({1.f}, {}), "v");
  kiln::Variable step(Tensor::from_vector<int64_t>({41}, {}), "step", false);
  EXPECT_EQ(kiln::train::latest_checkpoint(dir.path()), std::nullopt);
  Checkpoint ckpt({{"v", v}});
  ckpt.track("step", step);  // ckpt.step = step
  EXPECT_EQ(ckpt.save(dir / "ckpt"), dir / "ckpt-1");
  v.assign(Tensor::from_vector({2.f}, {}));
  EXPECT_EQ(ckpt.save(dir / "ckpt"), dir / "ckpt-2");
  EXPECT_EQ(kiln::train::latest_checkpoint(dir.path()), dir / "ckpt-2");
  std::ifstream state(dir / "checkpoint");
  const std::string text((std::istreambuf_iterator<char>(state)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("model_checkpoint_path: \"ckpt-2\""), std::string::npos) << text;
  EXPECT_EQ(ckpt.write(dir / "exact"), dir / "exact");
  EXPECT_EQ(ckpt.save_counter(), 2);
  EXPECT_EQ(kiln::train::latest_checkpoint(dir.path()), dir / "ckpt-2");
  {
    kiln::train::CheckpointReader r(dir / "ckpt-2");
    EXPECT_EQ(r.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE").item<int64_t>(), 2);
    EXPECT_EQ(r.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE").item<int64_t>(), 41);
  }

  kiln::Variable v2(Tensor::from_vector({0.f}, {}), "v");
  kiln::Variable step2(Tensor::from_vector<int64_t>({0}, {}), "step", false);
  Checkpoint outer({{"inner", ckpt}});  // a nested checkpoint: its objects under "inner/"
  EXPECT_EQ(outer.write(dir / "outer"), dir / "outer");
  EXPECT_TRUE(kiln::train::CheckpointReader(dir / "outer").has_tensor("inner/v/.ATTRIBUTES/VARIABLE_VALUE"));

  Checkpoint again({{"v", v2}, {"step", step2}});
  again.restore(dir.path()).assert_consumed();
  EXPECT_EQ(v2.value().item<float>(), 2.f);
  EXPECT_EQ(step2.value().item<int64_t>(), 41);
  EXPECT_EQ(again.save_counter(), 2);
  EXPECT_EQ(again.save(dir / "ckpt"), dir / "ckpt-3");
  // read: exactly a prefix; expect_partial chains with the checks, in any order.
  v2.assign(Tensor::from_vector({5.f}, {}));
  again.read(dir / "exact").expect_partial().assert_existing_objects_matched();
  EXPECT_EQ(v2.value().item<float>(), 2.f);
}

TEST(HppCheckpointSave, ManagerKeepsTheNewest) {
  TempDir dir("kiln_hpp_ckpt_save");
  kiln::Variable v(Tensor::from_vector({1.f}, {}), "v");
  Checkpoint ckpt({{"v", v}});
  CheckpointManager manager(ckpt, dir.path(), 2);
  EXPECT_EQ(manager.directory(), dir.path());
  EXPECT_EQ(manager.latest_checkpoint(), std::nullopt);
  EXPECT_EQ(manager.restore_or_initialize(), std::nullopt);
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(manager.save(), dir / ("ckpt-" + std::to_string(i)));
  EXPECT_EQ(manager.checkpoints(), (std::vector<std::string>{dir / "ckpt-3", dir / "ckpt-4"}));
  EXPECT_EQ(manager.latest_checkpoint(), dir / "ckpt-4");
  EXPECT_FALSE(exists(dir / "ckpt-1.index") || exists(dir / "ckpt-2.data-00000-of-00001"));
  EXPECT_TRUE(exists(dir / "ckpt-3.index") && exists(dir / "ckpt-4.data-00000-of-00001"));
  EXPECT_EQ(manager.save(10), dir / "ckpt-10");
  EXPECT_EQ(ckpt.save_counter(), 5);
  EXPECT_EQ(code_of([&] { manager.save(-2); }), KILN_STATUS_INVALID_ARGUMENT);

  kiln::Variable v2(Tensor::from_vector({0.f}, {}), "v");
  Checkpoint ckpt2({{"v", v2}});
  CheckpointManager later(ckpt2, dir.path(), std::nullopt, std::nullopt, "ckpt");
  EXPECT_EQ(later.checkpoints(), (std::vector<std::string>{dir / "ckpt-4", dir / "ckpt-10"}));
  EXPECT_EQ(later.restore_or_initialize(), dir / "ckpt-10");
  EXPECT_EQ(v2.value().item<float>(), 1.f);

  std::string message;
  EXPECT_EQ(code_of([&] { CheckpointManager(ckpt, dir.path(), 0); }, &message), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("max_to_keep"), std::string::npos) << message;
  EXPECT_EQ(code_of([&] { CheckpointManager(ckpt, dir.path(), 1, -2.0); }), KILN_STATUS_INVALID_ARGUMENT);
  CheckpointManager named(ckpt, dir / "named", std::nullopt, 1.0, "model");
  EXPECT_EQ(named.save(), dir / "named/model-6");
}

TEST(HppCheckpointSave, SaveWeightsAndLoadWeights) {
  TempDir dir("kiln_hpp_ckpt_save");
  kiln::Sequential a = small_model(), b = small_model();
  a.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  b.compile(kiln::optimizers::Adam(0.01), "sparse_categorical_crossentropy");
  train_steps(a, 0, 2);
  a.save_weights(dir / "w");
  EXPECT_EQ(kiln::train::latest_checkpoint(dir.path()), dir / "w");
  LoadStatus status = b.load_weights(dir.path());
  EXPECT_EQ(b.optimizer().iterations(), 2);
  expect_same(a.variables(), b.variables());
  train_steps(a, 2, 1);
  train_steps(b, 2, 1);
  status.assert_consumed();
  expect_same(a.variables(), b.variables());

  // An unbuilt model takes the weights when it builds (Keras's deferred restoration).
  kiln::Sequential unbuilt({kiln::layers::Dense(3)});
  EXPECT_EQ(code_of([&] { unbuilt.load_weights(dir / "none"); }), KILN_STATUS_NOT_FOUND);
  unbuilt.load_weights(dir / "w").expect_partial();
  EXPECT_EQ(code_of([&] { unbuilt.build_for({-1, 6}); }), KILN_STATUS_INVALID_ARGUMENT);  // a has 5 inputs
  EXPECT_EQ(code_of([&] { a.save_weights(dir / "w.h5"); }), KILN_STATUS_UNIMPLEMENTED);
}

// A subclassed model keeping its layers as attributes: track(layer, "name") keys them as Keras
// keys `self.hidden` and the elements of `self.heads = [...]`.
class AttributeModel : public kiln::Model {
 public:
  AttributeModel() : Model("AttributeModel") {
    hidden_ = track(kiln::layers::Dense(8, "relu"), "hidden");
    out_ = track(kiln::layers::Dense(3), "heads/0");
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &x, bool training) override {
    return {out_(hidden_(x[0], training), training)};
  }

 private:
  kiln::Layer hidden_, out_;
};

TEST(HppCheckpointSave, SubLayersInAttributesGoByTheirNames) {
  TempDir dir("kiln_hpp_ckpt_attr");
  AttributeModel a, b;
  a.build_for(Dims{-1, 5});
  b.build_for(Dims{-1, 5});
  a.save_weights(dir / "w");
  const auto keys = kiln::train::load_checkpoint(dir / "w").get_variable_to_shape_map();
  EXPECT_EQ(keys.at("hidden/kernel/.ATTRIBUTES/VARIABLE_VALUE"), (Dims{5, 8}));
  EXPECT_EQ(keys.at("heads/0/bias/.ATTRIBUTES/VARIABLE_VALUE"), (Dims{3}));
  EXPECT_EQ(keys.count("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"), 0u);
  b.load_weights(dir / "w").assert_consumed();
  expect_same(a.variables(), b.variables());
}

TEST(HppCheckpointSave, KerasFixtureLoadsIntoTheSameModel) {
  if (!exists(kFixture + ".index")) GTEST_SKIP() << "fixture " << kFixture << " is absent";
  kiln::Sequential m({kiln::layers::Flatten(), kiln::layers::Dense(200, "relu"), kiln::layers::Dropout(0.2),
                      kiln::layers::Dense(10, "softmax")});
  m.build_for(Dims{-1, 28, 28});
  m.compile(kiln::optimizers::Adam(0.5), "sparse_categorical_crossentropy");
  LoadStatus status = m.load_weights(kFixture);
  EXPECT_EQ(m.optimizer().iterations(), 1500);
  status.assert_existing_objects_matched().assert_nontrivial_match();
  EXPECT_EQ(status.restored_count(), 6);  // 4 weights, iterations, learning rate; the moments wait
  kiln::train::CheckpointReader keras(kFixture);
  EXPECT_TRUE(same_bits(m.variables()[0].value(),
                        keras.get_tensor("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")));
  EXPECT_TRUE(same_bits(m.variables()[3].value(),
                        keras.get_tensor("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")));
  std::vector<float> x(2 * 28 * 28, 0.25f);
  m.train_on_batch(Tensor::from_vector(x, {2, 28, 28}), Tensor::from_vector<int64_t>({1, 7}, {2}));
  status.assert_consumed();  // the first step made the slots, which took the saved moments
  EXPECT_EQ(status.restored_count(), 14);
}

TEST(HppCheckpointSave, ErrorsNameWhatWasWrongAndChangeNothing) {
  TempDir dir("kiln_hpp_ckpt_save");
  kiln::Sequential saved = small_model(8), wrong = small_model(9);
  saved.save_weights(dir / "w");
  const Tensor before = wrong.variables()[0].value();
  std::string message;
  EXPECT_EQ(code_of([&] { wrong.load_weights(dir / "w"); }, &message), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("[5, 9]"), std::string::npos) << message;
  EXPECT_NE(message.find("[5, 8]"), std::string::npos) << message;
  EXPECT_TRUE(same_bits(wrong.variables()[0].value(), before));

  // assert_consumed names what did not match on either side.
  kiln::Variable v(Tensor::from_vector({1.f}, {}), "v"), w(Tensor::from_vector({2.f}, {}), "w");
  Checkpoint({{"v", v}, {"w", w}}).write(dir / "vw");
  kiln::Variable extra(Tensor::from_vector({0.f}, {}), "extra");
  Checkpoint partial({{"v", v}, {"extra", extra}});
  LoadStatus status = partial.read(dir / "vw");
  status.expect_partial();
  EXPECT_EQ(code_of([&] { status.assert_consumed(); }, &message), KILN_STATUS_FAILED_PRECONDITION);
  EXPECT_NE(message.find("variable 'extra' at 'extra'"), std::string::npos) << message;
  EXPECT_EQ(status.unmatched_values(), std::vector<std::string>{"w"});
  EXPECT_EQ(status.unmatched_objects().size(), 1u);
  EXPECT_EQ(code_of([&] { status.assert_existing_objects_matched(); }), KILN_STATUS_FAILED_PRECONDITION);

  // A corrupt data file: DATA_LOSS, and the variable keeps its value.
  {
    std::fstream f(dir / "vw.data-00000-of-00001", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1);
    f.put('\x7f');
  }
  kiln::Variable v2(Tensor::from_vector({0.f}, {}), "v");
  Checkpoint reader({{"v", v2}});
  EXPECT_EQ(code_of([&] { reader.read(dir / "vw"); }), KILN_STATUS_DATA_LOSS);
  EXPECT_EQ(v2.value().item<float>(), 0.f);
  EXPECT_EQ(code_of([&] { reader.restore(dir / "missing"); }), KILN_STATUS_NOT_FOUND);

  // Names: repeated, the checkpoint's own, empty handles.
  EXPECT_EQ(code_of([&] { Checkpoint({{"a", v}, {"a", w}}); }, &message), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("'a'"), std::string::npos) << message;
  EXPECT_EQ(code_of([&] { Checkpoint({{"save_counter", v}}); }), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { Checkpoint({{"m", kiln::Model()}}); }), KILN_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { Checkpoint().save(""); }), KILN_STATUS_INVALID_ARGUMENT);
}

}  // namespace

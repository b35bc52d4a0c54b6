// Keras's deferred restoration: load_weights / Checkpoint.restore into a model that is not built
// yet keeps the values and assigns them when the model builds (explicitly, or on its first call
// or training step), then the run carries on bit for bit as the saved model's would; a mismatch
// shows as the build's error, with nothing assigned; a model dropped before it builds is freed.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/file_util.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/model_training.h"

namespace kiln::train {
namespace {

using layers::LayerPtr;
using testing::dense_config;
using testing::expect_error;
using testing::serialized_layer;
using testing::TempDir;

// Dense(8, relu), BatchNormalization, Dense(3, softmax), not built: the weights' shapes come from
// the first input.
LayerPtr unbuilt_model() {
  Config c;
  c.set("layers", std::vector<Config>{serialized_layer("Dense", dense_config(8, "relu")),
                                      serialized_layer("BatchNormalization"),
                                      serialized_layer("Dense", dense_config(3, "softmax"))});
  return layers::create_layer("Sequential", c);
}

LayerPtr built_model(int64_t inputs = 5) {
  LayerPtr m = unbuilt_model();
  m->build({layers::PartialShape{-1, inputs}});
  return m;
}

OptimizerPtr adam() { return make_optimizer("Adam", Config()); }

void compile_with(const LayerPtr &m, const OptimizerPtr &opt) {
  CompileOptions c;
  c.optimizer = opt;
  c.loss_names = {"sparse_categorical_crossentropy"};
  compile(m, c);
}

void train_steps(const LayerPtr &m, int64_t from, int64_t steps) {
  for (int64_t s = from; s < from + steps; ++s) {
    const Tensor x = testing::random_tensor(Shape{6, 5}, static_cast<unsigned>(s + 1));
    std::vector<int64_t> y;
    for (int64_t i = 0; i < 6; ++i) y.push_back((i * 7 + s) % 3);
    train_on_batch(m, {x}, {testing::make_typed<int64_t>(Shape{6}, y)});
  }
}

using testing::same_bits;

void expect_same_variables(const LayerPtr &a, const LayerPtr &b) {
  const auto va = a->variables(), vb = b->variables();
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i)
    EXPECT_TRUE(same_bits(va[i]->peek(), vb[i]->peek())) << va[i]->name();
}

// A compiled model trained 2 steps, saved with save_weights.
struct Saved {
  TempDir dir;
  LayerPtr model = built_model();
  OptimizerPtr opt = adam();
  std::string path = dir / "weights";
  Saved() {
    compile_with(model, opt);
    train_steps(model, 0, 2);
    save_weights(model, path);
  }
};

TEST(CheckpointDeferred, LoadWeightsIntoAnUnbuiltModelLandsAtItsFirstStepAndResumesBitForBit) {
  Saved saved;
  const LayerPtr m = unbuilt_model();
  const OptimizerPtr opt = adam();
  compile_with(m, opt);
  const LoadStatus status = load_weights(m, saved.path);
  // Everything waits: the model's weights and the optimizer it carries.
  EXPECT_FALSE(status.pending_values().empty());
  EXPECT_EQ(status.restored_count(), 0);
  EXPECT_TRUE(status.unmatched_values().empty());
  expect_error([&] { status.assert_consumed(); }, Code::kFailedPrecondition,
               {"unbuilt model", "layer_with_weights-0/kernel"});
  // The checkpoint may go away: its files stay open for the build.
  io::remove_file_quietly(saved.path + ".index");
  io::remove_file_quietly(saved.path + ".data-00000-of-00001");

  // The first training step builds the model (the values land), makes the slots (theirs land),
  // and takes the third step as the saved model does.
  train_steps(m, 2, 1);
  train_steps(saved.model, 2, 1);
  expect_same_variables(m, saved.model);
  EXPECT_EQ(opt->iterations(), 3);
  for (size_t i = 0; i < opt->variables().size(); ++i)
    EXPECT_TRUE(same_bits(opt->variables()[i]->peek(), saved.opt->variables()[i]->peek())) << i;
  EXPECT_TRUE(status.pending_values().empty());
  EXPECT_NO_THROW(status.assert_consumed());
  EXPECT_GT(status.restored_count(), 0);
}

TEST(CheckpointDeferred, ExplicitBuildAndCheckpointRestoreWithTheOptimizerOutside) {
  Saved saved;
  const std::string prefix = saved.dir / "ckpt";
  Checkpoint({{"model", make_trackable(saved.model)}, {"optimizer", make_trackable(saved.opt)}})
      .write(prefix);

  const LayerPtr m = unbuilt_model();
  const OptimizerPtr opt = adam();
  Checkpoint ckpt({{"model", make_trackable(m)}, {"optimizer", make_trackable(opt)}});
  const LoadStatus status = ckpt.read(prefix);
  EXPECT_EQ(opt->iterations(), 2);  // the optimizer is not below the model: restored now
  EXPECT_FALSE(status.pending_values().empty());
  m->build({layers::PartialShape{-1, 5}});
  expect_same_variables(m, saved.model);
  opt->build(m->trainable_variables());
  EXPECT_NO_THROW(status.assert_consumed());
}

TEST(CheckpointDeferred, ACallBuildsTheModelWithTheSavedWeights) {
  Saved saved;
  const LayerPtr m = unbuilt_model();
  LoadStatus status = load_weights(m, saved.path);
  status.expect_partial();  // the optimizer's values: this model is not compiled
  const Tensor x = testing::random_tensor(Shape{4, 5}, 77u);
  EXPECT_TRUE(same_bits((*m)(x), (*saved.model)(x)));
  expect_same_variables(m, saved.model);
}

TEST(CheckpointDeferred, AMismatchIsTheBuildsErrorAndAssignsNothing) {
  Saved saved;
  const LayerPtr m = unbuilt_model();
  LoadStatus status = load_weights(m, saved.path);
  status.expect_partial();
  expect_error(
      [&] {
        m->build({layers::PartialShape{-1, 6}});
      },
      Code::kInvalidArgument, {"layer_with_weights-0/kernel", "[6, 8]", "[5, 8]"});
  EXPECT_TRUE(m->built());
  // Nothing assigned: the biases keep their initial zeros.
  const Tensor bias = m->layers()[0]->own_weights()[1].second->peek();
  for (int64_t i = 0; i < bias.num_elements(); ++i) EXPECT_EQ(bias.data<float>()[i], 0.f);
}

TEST(CheckpointDeferred, ValuesLandWithoutTheStatusAndAModelDroppedUnbuiltIsFreed) {
  Saved saved;
  {
    const LayerPtr m = unbuilt_model();
    load_weights(m, saved.path).expect_partial();  // the status is gone at once
    m->build({layers::PartialShape{-1, 5}});
    expect_same_variables(m, saved.model);
  }
  std::weak_ptr<layers::Layer> weak;
  {
    const LayerPtr m = unbuilt_model();
    weak = m;
    load_weights(m, saved.path).expect_partial();
  }
  EXPECT_TRUE(weak.expired()) << "the deferred restore keeps the model alive";
}

}  // namespace
}  // namespace kiln::train

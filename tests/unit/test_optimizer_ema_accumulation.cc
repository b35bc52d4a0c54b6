// Keras 3's base-optimizer options kiln used to refuse: gradient_accumulation_steps, use_ema
// (with ema_momentum and ema_overwrite_frequency, and finalize_variable_values) and
// loss_scale_factor (scale_loss, and the unscaling in apply_gradients). Each expected value is
// Keras's formula written out in float32, one rounding per operation, as Keras's ops run.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/config.h"
#include "test_util.h"
#include "train/optimizer.h"

namespace kiln::train {
namespace {

using autodiff::Variable;
using testing::expect_error;

Tensor grad(const std::vector<float> &v) { return testing::make(Shape{static_cast<int64_t>(v.size())}, v); }

VariablePtr vec(const std::string &name, const std::vector<float> &v) {
  return std::make_shared<Variable>(name, grad(v), true);
}

std::vector<float> read(const Variable &v) {
  const Tensor t = v.peek();
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

TEST(OptimizerAccumulation, UpdatesEveryNthStepWithTheMeanGradient) {
  OptimizerPtr opt =
      make_optimizer("SGD", Config().set("learning_rate", 0.1).set("gradient_accumulation_steps", 3));
  VariablePtr w = vec("w", {1.0f, -2.0f});
  const std::vector<std::vector<float>> gs = {{0.3f, 1.1f}, {-0.7f, 0.2f}, {0.9f, 0.45f}};
  opt->apply_gradients({grad(gs[0])}, {w});
  opt->apply_gradients({grad(gs[1])}, {w});
  EXPECT_EQ(read(*w), (std::vector<float>{1.0f, -2.0f}));  // nothing moves before the 3rd step
  EXPECT_EQ(read(*opt->slot(w->id(), "gradient_accumulator")),
            (std::vector<float>{0.3f + -0.7f, 1.1f + 0.2f}));
  EXPECT_EQ(opt->iterations(), 0);  // Keras's iterations counts updates
  EXPECT_EQ(opt->iterations_variable()->peek().data<int64_t>()[0], 2);
  opt->apply_gradients({grad(gs[2])}, {w});
  std::vector<float> want = {1.0f, -2.0f};
  for (size_t i = 0; i < 2; ++i) {
    const float acc = gs[0][i] + gs[1][i];
    const float mean = (gs[2][i] + acc) / 3.0f;
    want[i] = want[i] - 0.1f * mean;
  }
  EXPECT_EQ(read(*w), want);
  EXPECT_EQ(read(*opt->slot(w->id(), "gradient_accumulator")), (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(opt->iterations(), 1);
  EXPECT_EQ(opt->get_config().get_int("gradient_accumulation_steps"), 3);
}

// Adam with accumulation over 2 steps takes the same steps, bit for bit, as Adam given the mean
// gradients: its bias correction counts updates, not calls.
TEST(OptimizerAccumulation, AdamCountsUpdatesForItsBiasCorrection) {
  OptimizerPtr acc =
      make_optimizer("Adam", Config().set("learning_rate", 0.01).set("gradient_accumulation_steps", 2));
  OptimizerPtr plain = make_optimizer("Adam", Config().set("learning_rate", 0.01));
  VariablePtr a = vec("a", {0.5f, -1.5f, 2.0f}), b = vec("b", {0.5f, -1.5f, 2.0f});
  const std::vector<std::vector<float>> gs = {
      {0.1f, -0.2f, 0.3f}, {0.25f, 0.5f, -0.125f}, {1.5f, -0.75f, 0.2f}, {-0.3f, 0.6f, 0.9f}};
  for (size_t s = 0; s < gs.size(); s += 2) {
    acc->apply_gradients({grad(gs[s])}, {a});
    acc->apply_gradients({grad(gs[s + 1])}, {a});
    std::vector<float> mean(3);
    for (size_t i = 0; i < 3; ++i) mean[i] = (gs[s + 1][i] + gs[s][i]) / 2.0f;
    plain->apply_gradients({grad(mean)}, {b});
    EXPECT_EQ(read(*a), read(*b)) << "update " << s / 2;
  }
  EXPECT_EQ(acc->iterations(), plain->iterations());
}

// The learning-rate schedule reads the raw counter (Keras's _get_current_learning_rate).
TEST(OptimizerAccumulation, TheScheduleReadsTheRawCounter) {
  Config schedule;
  schedule.set("class_name", "PiecewiseConstantDecay")
      .set("config",
           Config().set("boundaries", std::vector<int64_t>{2}).set("values", std::vector<double>{1.0, 0.5}));
  OptimizerPtr opt =
      make_optimizer("SGD", Config().set("learning_rate", schedule).set("gradient_accumulation_steps", 2));
  VariablePtr w = vec("w", {0.0f});
  for (int s = 0; s < 4; ++s) opt->apply_gradients({grad({1.0f})}, {w});
  // Update 1 at raw count 1 (rate 1.0), update 2 at raw count 3 (rate 0.5).
  EXPECT_EQ(read(*w), (std::vector<float>{-1.5f}));
}

TEST(OptimizerEma, AveragesFollowKerasFormulaAndFinalizeAssignsThem) {
  OptimizerPtr opt =
      make_optimizer("SGD", Config().set("learning_rate", 0.5).set("use_ema", true).set("ema_momentum", 0.9));
  VariablePtr w = vec("w", {1.0f, 3.0f});
  const std::vector<std::vector<float>> gs = {{0.5f, -1.0f}, {0.25f, 0.75f}, {-2.0f, 0.1f}};
  std::vector<float> var = {1.0f, 3.0f}, avg = {0.0f, 0.0f};
  for (size_t s = 0; s < gs.size(); ++s) {
    opt->apply_gradients({grad(gs[s])}, {w});
    const float m = static_cast<float>(s != 0 ? 1 : 0) * 0.9f;
    for (size_t i = 0; i < 2; ++i) {
      var[i] = var[i] - 0.5f * gs[s][i];
      const float kept = m * avg[i], fresh = (1.0f - m) * var[i];
      avg[i] = kept + fresh;
    }
    EXPECT_EQ(read(*w), var) << s;
    EXPECT_EQ(read(*opt->slot(w->id(), "average")), avg) << s;
  }
  EXPECT_NE(read(*w), avg);
  opt->finalize_variable_values({w});
  EXPECT_EQ(read(*w), avg);
  const Config c = opt->get_config();
  EXPECT_TRUE(c.get_bool("use_ema"));
  EXPECT_EQ(c.get_float("ema_momentum"), 0.9);
  // variables(): iterations, then the variable's momentum-free SGD slots: only "average".
  EXPECT_EQ(opt->variables().size(), 2u);
  EXPECT_EQ(opt->slot_names(), (std::vector<std::string>{"average"}));
}

// SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.5) with one more option.
OptimizerPtr ema_sgd(const char *key, int64_t value) {
  return make_optimizer(
      "SGD",
      Config().set("learning_rate", 1.0).set("use_ema", true).set("ema_momentum", 0.5).set(key, value));
}

TEST(OptimizerEma, OverwriteFrequencyGivesTheVariablesTheirAverages) {
  OptimizerPtr opt = ema_sgd("ema_overwrite_frequency", 2);
  VariablePtr w = vec("w", {4.0f});
  opt->apply_gradients({grad({1.0f})}, {w});  // w 3, average 3 (step 0)
  EXPECT_EQ(read(*w), (std::vector<float>{3.0f}));
  opt->apply_gradients({grad({1.0f})}, {w});  // w 2, average 2.5, then w takes it (step 1: 2 % 2 == 0)
  EXPECT_EQ(read(*w), (std::vector<float>{2.5f}));
  // Without use_ema, finalize changes nothing.
  OptimizerPtr plain = make_optimizer("SGD", Config());
  VariablePtr v = vec("v", {7.0f});
  plain->apply_gradients({grad({1.0f})}, {v});
  const std::vector<float> before = read(*v);
  plain->finalize_variable_values({v});
  EXPECT_EQ(read(*v), before);
}

// With accumulation the averages move on every call (Keras runs them after either branch), and
// step 0 lasts until the first update.
TEST(OptimizerEma, WithAccumulationAveragesMoveEveryCall) {
  OptimizerPtr opt = ema_sgd("gradient_accumulation_steps", 2);
  VariablePtr w = vec("w", {8.0f});
  opt->apply_gradients({grad({2.0f})}, {w});  // no update; average = w (step 0)
  EXPECT_EQ(read(*opt->slot(w->id(), "average")), (std::vector<float>{8.0f}));
  opt->apply_gradients({grad({4.0f})}, {w});  // w = 8 - 3 = 5; still step 0: average = 5
  EXPECT_EQ(read(*w), (std::vector<float>{5.0f}));
  EXPECT_EQ(read(*opt->slot(w->id(), "average")), (std::vector<float>{5.0f}));
  opt->apply_gradients({grad({2.0f})}, {w});  // no update; step 1: average = 0.5 * 5 + 0.5 * 5
  EXPECT_EQ(read(*opt->slot(w->id(), "average")), (std::vector<float>{5.0f}));
  opt->apply_gradients({grad({4.0f})}, {w});  // w = 5 - 3 = 2; average = 2.5 + 1 = 3.5
  EXPECT_EQ(read(*opt->slot(w->id(), "average")), (std::vector<float>{3.5f}));
  EXPECT_EQ(opt->slot_names(), (std::vector<std::string>{"average", "gradient_accumulator"}));
}

TEST(OptimizerLossScale, ScaleLossAndApplyUnscale) {
  OptimizerPtr opt = make_optimizer("SGD", Config().set("learning_rate", 1.0).set("loss_scale_factor", 4.0));
  const Tensor loss = Tensor::scalar<float>(1.5f);
  EXPECT_EQ(opt->scale_loss(loss).data<float>()[0], 6.0f);
  VariablePtr w = vec("w", {1.0f});
  opt->apply_gradients({grad({8.0f})}, {w});  // 8 / 4 = 2
  EXPECT_EQ(read(*w), (std::vector<float>{-1.0f}));
  EXPECT_EQ(opt->get_config().get_float("loss_scale_factor"), 4.0);
  OptimizerPtr plain = make_optimizer("SGD", Config());
  EXPECT_EQ(plain->scale_loss(loss).data<float>()[0], 1.5f);
  EXPECT_TRUE(plain->get_config().is_null("loss_scale_factor"));
  // A float64 loss scales in float64.
  EXPECT_EQ(opt->scale_loss(Tensor::scalar<double>(0.1)).data<double>()[0], 0.1 * 4.0);
}

TEST(OptimizerOptions, ConfigRoundTripAndBadValues) {
  const Config c = Config()
                       .set("use_ema", true)
                       .set("ema_momentum", 0.75)
                       .set("ema_overwrite_frequency", 3)
                       .set("loss_scale_factor", 128.0)
                       .set("gradient_accumulation_steps", 4);
  OptimizerPtr opt = make_optimizer("Adam", c);
  const Config got = opt->get_config();
  EXPECT_TRUE(got.get_bool("use_ema"));
  EXPECT_EQ(got.get_float("ema_momentum"), 0.75);
  EXPECT_EQ(got.get_int("ema_overwrite_frequency"), 3);
  EXPECT_EQ(got.get_float("loss_scale_factor"), 128.0);
  EXPECT_EQ(got.get_int("gradient_accumulation_steps"), 4);
  EXPECT_EQ(make_optimizer("Adam", got)->get_config().to_json(), got.to_json());
  expect_error([] { make_optimizer("SGD", Config().set("use_ema", true).set("ema_momentum", 1.5)); },
               Code::kInvalidArgument, {"ema_momentum", "[0, 1]", "1.5"});
  expect_error(
      [] { make_optimizer("SGD", Config().set("use_ema", true).set("ema_overwrite_frequency", -1)); },
      Code::kInvalidArgument, {"ema_overwrite_frequency", ">= 1"});
  expect_error([] { make_optimizer("SGD", Config().set("gradient_accumulation_steps", 1)); },
               Code::kInvalidArgument, {"gradient_accumulation_steps", ">= 2", "got 1"});
  expect_error([] { make_optimizer("SGD", Config().set("loss_scale_factor", 0.0)); }, Code::kInvalidArgument,
               {"loss_scale_factor", "nonzero"});
  expect_error([] { make_optimizer("SGD", Config().set("gradient_accumulation_steps", 2.5)); },
               Code::kInvalidArgument, {"gradient_accumulation_steps"});
  // Keras ignores ema_momentum when use_ema is off; 0 means "none" for the two integers.
  EXPECT_FALSE(make_optimizer("SGD", Config().set("ema_momentum", 7.0)).get() == nullptr);
  EXPECT_TRUE(make_optimizer("SGD", Config().set("gradient_accumulation_steps", 0))
                  ->get_config()
                  .is_null("gradient_accumulation_steps"));
}

}  // namespace
}  // namespace kiln::train

// kiln.hpp optimizers and schedules: every golden trajectory (tests/golden/optimizers_golden.json)
// through kiln::optimizers, typed options, apply_gradients over pairs, the learning rate,
// variables and slots, schedules, BERT's create_optimizer, and a GradientTape training loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hpp_test_util.h"
#include "kiln/kiln.hpp"

#ifndef KILN_TEST_SOURCE_DIR
#error "KILN_TEST_SOURCE_DIR must name the source tree (tests/capi/CMakeLists.txt sets it)"
#endif

namespace {

using kiln::Config;
using kiln::Tensor;
using kiln::Variable;
using Json = nlohmann::ordered_json;
namespace opt = kiln::optimizers;
namespace sch = kiln::optimizers::schedules;

const Json &golden() {
  static const Json j = [] {
    std::ifstream in(std::string(KILN_TEST_SOURCE_DIR) + "/tests/golden/optimizers_golden.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str(), nullptr, false);
  }();
  return j;
}

Tensor tensor(const Json &values, const kiln::Dims &shape) {
  std::vector<float> v;
  for (const Json &x : values) v.push_back(static_cast<float>(x.get<double>()));
  return Tensor::from_vector(v, shape);
}

TEST(HppOptimizers, GoldenTrajectories) {
  ASSERT_FALSE(golden().is_discarded());
  const Json &g = golden();
  for (const Json &c : g.at("cases")) {
    std::vector<Variable> vars;
    std::vector<kiln::Dims> shapes;
    for (const Json &v : g.at("variables")) {
      shapes.push_back(v.at("shape").get<kiln::Dims>());
      vars.emplace_back(tensor(v.at("init"), shapes.back()), v.at("name").get<std::string>());
    }
    opt::Optimizer o = opt::Optimizer::create(c.at("class_name").get<std::string>(),
                                              Config::from_json(c.at("config").dump()));
    if (c.contains("exclude_var_names"))
      o.exclude_from_weight_decay({}, c.at("exclude_var_names").get<std::vector<std::string>>());
    std::map<size_t, double> changes;
    if (c.contains("set_learning_rate"))
      for (const Json &p : c.at("set_learning_rate")) changes[p.at(0).get<size_t>()] = p.at(1).get<double>();
    const std::string name = c.at("name").get<std::string>();
    for (size_t step = 0; step < c.at("trajectory").size(); ++step) {
      if (changes.count(step)) o.set_learning_rate(changes[step]);
      EXPECT_NEAR(o.learning_rate(), c.at("learning_rates").at(step).get<double>(), 1e-12) << name;
      std::vector<std::pair<Tensor, Variable>> pairs;
      for (size_t i = 0; i < vars.size(); ++i) {
        const Json &gj = g.at("gradients").at(step).at(i);
        pairs.emplace_back(gj.is_null() ? Tensor() : tensor(gj, shapes[i]), vars[i]);
      }
      o.apply_gradients(pairs);
      for (size_t i = 0; i < vars.size(); ++i) {
        const std::vector<float> got = vars[i].value().to_vector<float>();
        const Json &want = c.at("trajectory").at(step).at(i);
        for (size_t k = 0; k < got.size(); ++k) {
          const double w = want.at(k).get<double>();
          ASSERT_LE(std::fabs(got[k] - w), 2e-5 + 2e-5 * std::fabs(w))
              << name << " step " << step << " var " << i;
        }
      }
    }
    EXPECT_EQ(o.iterations(), 20) << name;
  }
}

TEST(HppOptimizers, TypedOptionsGiveKerasConfigs) {
  opt::AdamOptions ao;
  ao.amsgrad = true;
  ao.clipnorm = 1.0;
  opt::Optimizer adam = opt::Adam(0.01, ao);
  Config c = adam.get_config();
  EXPECT_EQ(adam.class_name(), "Adam");
  EXPECT_EQ(c.get_float("learning_rate"), 0.01);
  EXPECT_TRUE(c.get_bool("amsgrad"));
  EXPECT_EQ(c.get_float("clipnorm"), 1.0);
  EXPECT_EQ(c.get_float("beta_2"), 0.999);
  EXPECT_EQ(opt::AdamW().get_config().get_float("weight_decay"), 0.004);
  EXPECT_EQ(opt::SGD().get_config().get_float("learning_rate"), 0.01);
  EXPECT_EQ(opt::RMSprop().get_config().get_string("name").rfind("rm_sprop", 0), 0u);  // Keras's auto name
  opt::SGDOptions so;
  so.momentum = 0.9;
  so.nesterov = true;
  EXPECT_TRUE(opt::SGD(0.1, so).get_config().get_bool("nesterov"));
  opt::RMSpropOptions ro;
  ro.centered = true;
  EXPECT_TRUE(opt::RMSprop(0.001, ro).get_config().get_bool("centered"));
  EXPECT_EQ(opt::Adagrad().get_config().get_float("initial_accumulator_value"), 0.1);
  EXPECT_EQ(opt::Adadelta().get_config().get_float("rho"), 0.95);
  EXPECT_EQ(opt::Nadam().class_name(), "Nadam");
  opt::AdamaxOptions xo;
  xo.beta_2 = 0.99;
  EXPECT_EQ(opt::Adamax(0.002, xo).get_config().get_float("beta_2"), 0.99);
  opt::LionOptions lo;
  lo.beta_1 = 0.95;
  const Config lion = opt::Lion(1e-4, lo).get_config();
  EXPECT_EQ(lion.get_float("beta_1"), 0.95);
  EXPECT_EQ(lion.get_float("beta_2"), 0.99);
  EXPECT_EQ(opt::get("lion").class_name(), "Lion");
  lo.beta_1 = 0;
  EXPECT_THROW(opt::Lion(1e-4, lo), kiln::Error);
  EXPECT_EQ(opt::get("rmsprop").class_name(), "RMSprop");
  opt::FtrlOptions fo;
  fo.l1_regularization_strength = 0.01;
  fo.learning_rate_power = 0.0;
  const Config ftrl = opt::Ftrl(0.05, fo).get_config();
  EXPECT_EQ(ftrl.get_float("l1_regularization_strength"), 0.01);
  EXPECT_EQ(ftrl.get_float("learning_rate_power"), 0.0);
  EXPECT_EQ(ftrl.get_float("initial_accumulator_value"), 0.1);
  fo.beta = -1;
  EXPECT_NO_THROW(opt::Ftrl(0.05, fo));  // Keras checks beta for nothing but finiteness
  fo.l2_regularization_strength = -1;
  EXPECT_THROW(opt::Ftrl(0.05, fo), kiln::Error);
  opt::LambOptions mo;
  mo.beta_2 = 0.99;
  const opt::Optimizer lamb = opt::Lamb(0.01, mo);
  EXPECT_EQ(lamb.class_name(), "Lamb");
  EXPECT_EQ(lamb.get_config().get_float("beta_2"), 0.99);
  EXPECT_EQ(opt::get("lamb").get_config().get_float("epsilon"), 1e-7);
  opt::AdafactorOptions fo2;
  fo2.clip_threshold = 0.5;
  fo2.relative_step = false;
  const Config adafactor = opt::Adafactor(0.01, fo2).get_config();
  EXPECT_EQ(adafactor.get_float("clip_threshold"), 0.5);
  EXPECT_FALSE(adafactor.get_bool("relative_step"));
  EXPECT_EQ(adafactor.get_float("beta_2_decay"), -0.8);
  EXPECT_EQ(opt::get("adafactor").class_name(), "Adafactor");
  // serialize / deserialize, copies share the optimizer.
  opt::Optimizer back = opt::Optimizer::deserialize(adam.serialize());
  EXPECT_EQ(back.get_config().to_json(), adam.get_config().to_json());
  opt::Optimizer copy = adam;
  EXPECT_EQ(copy.id(), adam.id());
  EXPECT_NE(back.id(), adam.id());
}

// Keras 3's use_ema, gradient_accumulation_steps and loss_scale_factor through the typed options.
TEST(HppOptimizers, EmaAccumulationAndLossScale) {
  opt::SGDOptions so;
  so.use_ema = true;
  so.ema_momentum = 0.5;
  so.gradient_accumulation_steps = 2;
  opt::Optimizer o = opt::SGD(1.0, so);
  const Config c = o.get_config();
  EXPECT_TRUE(c.get_bool("use_ema"));
  EXPECT_EQ(c.get_float("ema_momentum"), 0.5);
  EXPECT_EQ(c.get_int("gradient_accumulation_steps"), 2);
  EXPECT_EQ(c.type("loss_scale_factor"), Config::Type::null);
  Variable w(Tensor::from_vector({8.f}, {1}), "w");
  for (float g : {2.f, 4.f, 2.f, 4.f}) o.apply_gradients({Tensor::from_vector({g}, {1})}, {w});
  EXPECT_EQ(w.value().to_vector<float>(), std::vector<float>{2.f});
  EXPECT_EQ(o.iterations(), 2);
  EXPECT_EQ(o.get_slot(w, "average").value().to_vector<float>(), std::vector<float>{3.5f});
  EXPECT_EQ(o.get_slot(w, "gradient_accumulator").value().to_vector<float>(), std::vector<float>{0.f});
  o.finalize_variable_values({w});
  EXPECT_EQ(w.value().to_vector<float>(), std::vector<float>{3.5f});

  opt::AdamOptions ao;
  ao.loss_scale_factor = 8.0;
  opt::Optimizer scaled = opt::Adam(0.1, ao);
  EXPECT_EQ(scaled.get_config().get_float("loss_scale_factor"), 8.0);
  EXPECT_EQ(scaled.scale_loss(Tensor::scalar(0.75f)).to_vector<float>(), std::vector<float>{6.f});
  EXPECT_EQ(opt::Adam().scale_loss(Tensor::scalar(0.75f)).to_vector<float>(), std::vector<float>{0.75f});
  ao.gradient_accumulation_steps = 1;
  kiln::testing::expect_code(KILN_STATUS_INVALID_ARGUMENT, "gradient_accumulation_steps",
                             [&] { opt::Adam(0.1, ao); });
}

// Nadam's u_product (listed after iterations) is float32 for a float32 model, holding Keras's
// float32 product of the momentum schedule.
TEST(HppOptimizers, NadamUProductFollowsTheModelsDtype) {
  Variable w(Tensor::from_vector({1.f, -2.f}, {2}), "dense/kernel");
  opt::Optimizer o = opt::Nadam(0.01);
  float want = 1.0f;
  for (int t = 1; t <= 4; ++t) {
    o.apply_gradients({Tensor::from_vector({0.5f, -0.25f}, {2})}, {w});
    want = want * 0.9f * (1.0f - 0.5f * std::pow(0.96f, static_cast<float>(t)));
  }
  const std::vector<Variable> vs = o.variables();
  ASSERT_EQ(vs.size(), 4u);
  EXPECT_NE(vs[1].name().find("u_product"), std::string::npos) << vs[1].name();
  ASSERT_EQ(vs[1].value().dtype(), kiln::DType::float32);
  EXPECT_EQ(vs[1].value().to_vector<float>(), std::vector<float>{want});
}

// Keras's build(var_list): the slots of each variable, in the list's order, without a step.
TEST(HppOptimizers, Build) {
  Variable w(Tensor::from_vector({1.f, 2.f, 3.f}, {3}), "dense/kernel");
  Variable b(Tensor::from_vector({0.f}, {1}), "dense/bias");
  opt::Optimizer o = opt::Adafactor();
  o.build({b, w});
  EXPECT_EQ(o.iterations(), 0);
  const std::vector<Variable> vs = o.variables();
  ASSERT_EQ(vs.size(), 3u);  // iterations, then the velocity of each (their r and c are placeholders)
  EXPECT_EQ(o.get_slot(b, "velocity").id(), vs[1].id());
  EXPECT_EQ(o.get_slot(w, "velocity").value().to_vector<float>(), std::vector<float>(3, 0.f));
  EXPECT_THROW(o.build({Variable(Tensor::from_vector<int64_t>({1}, {1}), "step", false)}), kiln::Error);
}

TEST(HppOptimizers, LearningRateVariablesAndSlots) {
  Variable w(Tensor::from_vector({1.f, 2.f, 3.f}, {3}), "dense/kernel");
  Variable b(Tensor::from_vector({0.f}, {1}), "dense/bias");
  opt::Optimizer o = opt::Adam(0.1);
  o.apply_gradients({Tensor::from_vector({0.1f, 0.2f, 0.3f}, {3}), Tensor()}, {w, b});
  EXPECT_EQ(o.iterations(), 1);
  const std::vector<Variable> vs = o.variables();
  ASSERT_EQ(vs.size(), 5u);  // as Keras builds: b, given without a gradient, has its slots too
  EXPECT_EQ(o.get_slot(w, "momentum").id(), vs[1].id());
  EXPECT_EQ(o.get_slot(w, "v").id(), vs[2].id());
  EXPECT_EQ(o.get_slot(b, "momentum").id(), vs[3].id());
  const std::vector<float> m = o.get_slot(w, "m").value().to_vector<float>();
  o.set_learning_rate(0.5);
  EXPECT_EQ(o.learning_rate(), 0.5);
  EXPECT_EQ(o.get_slot(w, "m").value().to_vector<float>(), m);
  try {
    o.get_slot(b, "accumulator");
    ADD_FAILURE() << "expected NOT_FOUND";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
  }
  try {
    o.apply_gradients({Tensor::from_vector({1.f}, {1})}, {w});
    ADD_FAILURE() << "expected INVALID_ARGUMENT";
  } catch (const kiln::Error &e) {
    EXPECT_NE(std::string(e.what()).find("dense/kernel"), std::string::npos) << e.what();
  }
  // A schedule: the learning rate follows iterations.
  o.set_learning_rate(sch::ExponentialDecay(1.0, 1, 0.5));
  EXPECT_EQ(o.learning_rate(), 0.5);
  EXPECT_THROW(o.set_learning_rate(0.1), kiln::Error);
}

// A custom schedule written in C++ (the Transformer's warm-up, as Keras's LearningRateSchedule
// subclass): each step's learning rate is the function's; its exceptions come back as themselves'
// code; get_config makes the optimizer serializable, and without it serializing is UNIMPLEMENTED.
TEST(HppOptimizers, CustomSchedule) {
  const auto transformer = [](int64_t step) {
    const double s = static_cast<double>(step + 1);
    return std::min(1.0 / std::sqrt(s), s * std::pow(4.0, -1.5)) / 4.0;
  };
  Variable w(Tensor::from_vector({1.f}, {1}), "w");
  opt::Optimizer o = opt::SGD(0.01);
  o.set_learning_rate("TransformerSchedule", transformer, [] { return Config().set("d_model", 16); });
  float want = 1.f;
  for (int64_t step = 0; step < 6; ++step) {
    EXPECT_EQ(o.learning_rate(), transformer(step));
    o.apply_gradients({Tensor::from_vector({1.f}, {1})}, {w});
    want -= static_cast<float>(transformer(step));
    EXPECT_FLOAT_EQ(w.value().to_vector<float>()[0], want);
  }
  const Config lr = o.get_config().get_config("learning_rate");
  EXPECT_EQ(lr.get_string("class_name"), "TransformerSchedule");
  EXPECT_EQ(lr.get_config("config").get_int("d_model"), 16);
  o.set_learning_rate("Failing", [](int64_t) -> double {
    throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "the schedule ran out");
  });
  try {
    o.apply_gradients({Tensor::from_vector({1.f}, {1})}, {w});
    ADD_FAILURE() << "expected OUT_OF_RANGE";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_OUT_OF_RANGE);
    EXPECT_NE(std::string(e.what()).find("the schedule ran out"), std::string::npos) << e.what();
  }
  EXPECT_EQ(o.iterations(), 6);
  try {
    o.get_config();
    ADD_FAILURE() << "expected UNIMPLEMENTED";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_UNIMPLEMENTED);
  }
  EXPECT_THROW(o.set_learning_rate("Empty", std::function<double(int64_t)>()), kiln::Error);
}

// Schedules compute in float32, as Keras does (floatx): each value is the float32 formula's.
TEST(HppSchedules, Values) {
  EXPECT_EQ(sch::ExponentialDecay(0.1, 10, 0.5)(20), double(0.025f));
  sch::ExponentialDecayOptions st;
  st.staircase = true;
  EXPECT_EQ(sch::InverseTimeDecay(0.1, 10, 1.0, st)(15), double(0.05f));
  EXPECT_EQ(sch::PiecewiseConstantDecay({10, 20}, {1.0, 0.5, 0.1})(15), 0.5);
  EXPECT_EQ(sch::PolynomialDecay(0.1, 10)(5), double((0.1f - 0.0001f) * 0.5f + 0.0001f));
  sch::CosineDecayOptions co;
  co.has_warmup_target = true;
  co.warmup_target = 1.0;
  co.warmup_steps = 10;
  EXPECT_EQ(sch::CosineDecay(0.0, 100, co)(5), 0.5);
  sch::CosineDecayRestartsOptions ro;
  ro.m_mul = 0.5;
  const sch::LearningRateSchedule sgdr = sch::CosineDecayRestarts(0.1, 5, ro);
  EXPECT_EQ(sgdr(15), double(0.025f));
  EXPECT_EQ(sgdr.get_config().get_string("name"), "SGDRDecay");
  EXPECT_THROW(sch::CosineDecayRestarts(0.1, 0)(1), kiln::Error);
  sch::PolynomialDecayOptions to_zero;
  to_zero.end_learning_rate = 0.0;
  const sch::LearningRateSchedule warm = sch::LinearWarmup(sch::PolynomialDecay(1.0, 100, to_zero), 10);
  EXPECT_EQ(warm(5), double(5.0f / 10.0f * (1.0f - 10.0f / 100.0f)));  // Model Garden's float32 formula
  EXPECT_EQ(warm(50), 0.5);
  EXPECT_EQ(warm.class_name(), "LinearWarmup");
  const sch::LearningRateSchedule up = sch::WarmUp(0.1, sch::PolynomialDecay(0.1, 100, to_zero), 10, 2.0);
  EXPECT_EQ(up(5), double(0.1f * std::pow(5.0f / 10.0f, 2.0f)));
  EXPECT_EQ(up(20), double(0.1f * (1.0f - 20.0f / 100.0f)));
  EXPECT_EQ(sch::LearningRateSchedule::deserialize(up.serialize())(7), up(7));
  EXPECT_EQ(sch::LearningRateSchedule::deserialize(warm.serialize())(50), warm(50));
  EXPECT_THROW(sch::LearningRateSchedule("Nope", Config())(1), kiln::Error);
}

TEST(HppOptimizers, BertCreateOptimizerAndATrainingLoop) {
  // BERT's recipe in one line: AdamW, warm-up over 10 steps, linear decay to 0 at 200.
  opt::Optimizer bert = opt::create_optimizer(0.05, 200, 10);
  const Config c = bert.get_config();
  EXPECT_EQ(bert.class_name(), "AdamW");
  EXPECT_EQ(c.get_float("weight_decay"), 0.01);
  // Model Garden's create_optimizer: PolynomialDecay in WarmUp, which ramps to init_lr itself.
  const Config lr = c.get_config("learning_rate");
  EXPECT_EQ(lr.get_string("class_name"), "WarmUp");
  EXPECT_EQ(lr.get_config("config").get_config("decay_schedule_fn").get_string("class_name"),
            "PolynomialDecay");
  const sch::LearningRateSchedule bert_lr = sch::LearningRateSchedule::deserialize(lr);
  EXPECT_EQ(bert_lr(5), double(0.05f * (5.0f / 10.0f)));
  EXPECT_EQ(bert_lr(10), double((0.05f - 0.0f) * (1.0f - 10.0f / 200.0f) + 0.0f));
  EXPECT_EQ(
      opt::create_optimizer(0.05, 200, 0).get_config().get_config("learning_rate").get_string("class_name"),
      "PolynomialDecay");
  EXPECT_EQ(bert.learning_rate(), 0.0);
  Variable w(Tensor::from_vector({0.f, 0.f, 0.f}, {3}), "dense/kernel");
  Variable b(Tensor::from_vector({1.f}, {1}), "dense/bias");
  const Tensor target = Tensor::from_vector({1.f, -1.f, 2.f}, {3});
  float first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    kiln::GradientTape tape;
    Tensor d = w.value() - target;
    Tensor loss = kiln::sum(d * d) + kiln::sum(b.value() * b.value());
    tape.stop();
    std::vector<Tensor> gv = tape.gradient(loss, {w, b});
    if (step == 0) first = loss.to_vector<float>()[0];
    last = loss.to_vector<float>()[0];
    bert.apply_gradients(gv, {w, b});
  }
  EXPECT_LT(last, 0.2f * first);
  EXPECT_NEAR(bert.learning_rate(), 0.0, 1e-12);
}

TEST(HppOptimizers, MinimizeTakesOneTapeStep) {
  Variable w(Tensor::from_vector({0.f, 0.f, 0.f}, {3}), "w");
  Variable unused(Tensor::from_vector({5.f}, {1}), "unused");
  const Tensor target = Tensor::from_vector({1.f, -1.f, 2.f}, {3});
  opt::Optimizer sgd = opt::Optimizer::create("SGD", Config().set("learning_rate", 0.25));
  auto loss = [&] {
    Tensor d = w.value() - target;
    return kiln::sum(d * d);
  };
  const Tensor l = sgd.minimize(loss, {w, unused});  // unused gets no gradient: skipped
  EXPECT_FLOAT_EQ(l.to_vector<float>()[0], 6.0f);
  // w -= 0.25 * 2 (w - target)
  EXPECT_EQ(w.value().to_vector<float>(), (std::vector<float>{0.5f, -0.5f, 1.0f}));
  EXPECT_EQ(unused.value().to_vector<float>(), (std::vector<float>{5.f}));
  try {
    sgd.minimize([]() -> Tensor { throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "the data ran out"); }, {w});
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_OUT_OF_RANGE);
    EXPECT_NE(std::string(e.what()).find("the data ran out"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sgd.minimize([] { return Tensor(); }, {w}), kiln::Error);
  EXPECT_EQ(w.value().to_vector<float>(), (std::vector<float>{0.5f, -0.5f, 1.0f}));
}

}  // namespace

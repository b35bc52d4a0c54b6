// Optimizers and schedules in the core: 20-step trajectories of every optimizer (and clipping,
// weight decay and its exclusions, schedules, a learning rate changed mid-run) against
// tests/golden/optimizers_golden.json (NumPy float64 from Keras's formulas, made by
// tests/golden/make_optimizer_golden.py) in float32 and float64; thread-count invariance; the
// copy-on-write rule of in-place updates; slots, variables, configs and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "core/config.h"
#include "core/threads.h"
#include "kernels/simd.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedules.h"

namespace kiln::train {
namespace {

using autodiff::Variable;
using Json = nlohmann::ordered_json;
using testing::expect_error;

const Json &golden() {
  static const Json j = [] {
    const std::string path = testing::source_dir() + "/tests/golden/optimizers_golden.json";
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str(), nullptr, false);
  }();
  return j;
}

Config config_of(const Json &j) { return Config::from_json(j.dump()); }

template <typename T>
Tensor tensor_of(const Json &values, const Shape &shape) {
  std::vector<T> v;
  for (const Json &x : values) v.push_back(static_cast<T>(x.get<double>()));
  return Tensor::from_data(dtype_of<T>::value, shape, v.data(), v.size() * sizeof(T));
}

template <typename T>
std::vector<double> read(const Variable &v) {
  const Tensor t = v.peek();
  return std::vector<double>(t.data<T>(), t.data<T>() + t.num_elements());
}

// One golden case in dtype T; returns the worst relative error.
template <typename T>
void run_case(const Json &c, double rtol, double atol) {
  const Json &g = golden();
  std::vector<VariablePtr> vars;
  std::vector<Shape> shapes;
  for (const Json &v : g.at("variables")) {
    shapes.emplace_back(v.at("shape").get<std::vector<int64_t>>());
    vars.push_back(std::make_shared<Variable>(v.at("name").get<std::string>(),
                                              tensor_of<T>(v.at("init"), shapes.back()), true));
  }
  OptimizerPtr opt = make_optimizer(c.at("class_name").get<std::string>(), config_of(c.at("config")));
  if (c.contains("exclude_var_names"))
    opt->exclude_from_weight_decay({}, c.at("exclude_var_names").get<std::vector<std::string>>());
  std::map<int64_t, double> lr_changes;
  if (c.contains("set_learning_rate"))
    for (const Json &p : c.at("set_learning_rate"))
      lr_changes[p.at(0).get<int64_t>()] = p.at(1).get<double>();
  const std::string name = c.at("name").get<std::string>() + (sizeof(T) == 4 ? " (float32)" : " (float64)");
  for (size_t step = 0; step < c.at("trajectory").size(); ++step) {
    if (lr_changes.count(static_cast<int64_t>(step)))
      opt->set_learning_rate(lr_changes[static_cast<int64_t>(step)]);
    EXPECT_EQ(opt->learning_rate(), c.at("learning_rates").at(step).get<double>())
        << name << " step " << step;
    std::vector<Tensor> grads;
    for (size_t i = 0; i < vars.size(); ++i) {
      const Json &gj = g.at("gradients").at(step).at(i);
      grads.push_back(gj.is_null() ? Tensor() : tensor_of<T>(gj, shapes[i]));
    }
    opt->apply_gradients(grads, vars);
    for (size_t i = 0; i < vars.size(); ++i) {
      const std::vector<double> got = read<T>(*vars[i]);
      const Json &want = c.at("trajectory").at(step).at(i);
      for (size_t k = 0; k < got.size(); ++k) {
        const double w = want.at(k).get<double>();
        ASSERT_LE(std::fabs(got[k] - w), atol + rtol * std::fabs(w))
            << name << " step " << step << " variable " << vars[i]->name() << " element " << k;
      }
    }
  }
  EXPECT_EQ(opt->iterations(), static_cast<int64_t>(c.at("trajectory").size())) << name;
}

TEST(OptimizerGolden, EveryCaseFloat32AndFloat64) {
  ASSERT_FALSE(golden().is_discarded()) << "cannot read tests/golden/optimizers_golden.json";
  ASSERT_GE(golden().at("cases").size(), 20u);
  for (const Json &c : golden().at("cases")) {
    run_case<float>(c, 2e-5, 2e-5);
    run_case<double>(c, 1e-11, 1e-12);
  }
}

// Keras 3's Adam.update_step on a float32 variable computes alpha in float32 from beta_1, beta_2
// and the step cast to float32, and every element op in float32, each rounded (separate ops, no
// FMA): kiln's steps are those bits on every compiled instruction set, at a size with a partial
// last vector. The same with a warm-up schedule (LinearWarmup over PolynomialDecay), which Keras
// computes in float32: the reference's learning rate is Model Garden's and Keras's formulas in
// float32 (power 1, so no pow).
TEST(OptimizerGolden, Float32AdamIsKerasBitForBitOnEveryTarget) {
  const int64_t n = 37;
  const Tensor w0 = testing::random_tensor(Shape({n}), 21);
  const float b1 = 0.9f, b2 = 0.999f, one_b1 = static_cast<float>(1 - 0.9),
              one_b2 = static_cast<float>(1 - 0.999), eps = 1e-7f;
  const Config warmup_poly =
      Config()
          .set("after_warmup_lr_sched", Config()
                                            .set("class_name", "PolynomialDecay")
                                            .set("config", Config()
                                                               .set("initial_learning_rate", 0.003)
                                                               .set("decay_steps", 7)
                                                               .set("end_learning_rate", 0.0001)))
          .set("warmup_steps", 3)
          .set("warmup_learning_rate", 0.0002);
  const auto poly = [](float s) {  // Keras's PolynomialDecay, float32, s clipped to decay_steps
    const float p = std::min(s, 7.0f) / 7.0f;
    return (0.003f - 0.0001f) * (1.0f - p) + 0.0001f;
  };
  const auto warm = [&](float s) { return s < 3.0f ? 0.0002f + s / 3.0f * (poly(3.0f) - 0.0002f) : poly(s); };
  for (const bool scheduled : {false, true})
    for (int64_t target : kernels::simd::available_targets()) {
      kernels::simd::force_target(target);
      SCOPED_TRACE(std::string(kernels::simd::target_name(target)) + (scheduled ? ", scheduled" : ""));
      VariablePtr w = std::make_shared<Variable>("w", w0, true);
      OptimizerPtr opt = make_optimizer("Adam", Config().set("learning_rate", 0.003));
      if (scheduled) opt->set_learning_rate_schedule(make_schedule("LinearWarmup", warmup_poly));
      std::vector<float> want = testing::values(w0), m(n, 0.0f), v(n, 0.0f);
      for (int t = 1; t <= 10; ++t) {
        const float lr = scheduled ? warm(static_cast<float>(t - 1)) : 0.003f;
        ASSERT_EQ(static_cast<float>(opt->learning_rate()), lr) << "step " << t;
        const Tensor g = testing::random_tensor(Shape({n}), 100 + t);
        opt->apply_gradients({g}, {w});
        const std::vector<float> gv = testing::values(g);
        const float alpha = lr * std::sqrt(1.0f - std::pow(b2, static_cast<float>(t))) /
                            (1.0f - std::pow(b1, static_cast<float>(t)));
        for (int64_t i = 0; i < n; ++i) {
          const float dm = (gv[i] - m[i]) * one_b1, dv = (gv[i] * gv[i] - v[i]) * one_b2;
          m[i] = m[i] + dm;
          v[i] = v[i] + dv;
          const float step = (m[i] * alpha) / (std::sqrt(v[i]) + eps);
          want[i] = want[i] - step;
        }
        const std::vector<float> got = testing::values(w->peek());
        ASSERT_EQ(std::memcmp(got.data(), want.data(), n * sizeof(float)), 0) << "step " << t;
      }
    }
  kernels::simd::force_target(0);
}

// amsgrad's velocity_hat is Keras's ops.maximum(v_hat, v): a NaN in v (from a NaN gradient, or a
// float32 square that overflowed) propagates into velocity_hat and the weight, on every SIMD target
// (the vector body and the tail) and in float64, where a plain `vh < v ? v : vh` kept the old v_hat.
template <typename T>
void expect_amsgrad_nan_propagates(T huge) {
  const int64_t n = 37;
  for (int64_t target : kernels::simd::available_targets()) {
    kernels::simd::force_target(target);
    SCOPED_TRACE(std::string(kernels::simd::target_name(target)) + " " + dtype_name(dtype_of<T>::value));
    VariablePtr w =
        std::make_shared<Variable>("w", testing::make_typed<T>(Shape({n}), std::vector<T>(n, 1)), true);
    OptimizerPtr opt = make_optimizer("Adam", Config().set("amsgrad", true));
    std::vector<T> g(n, T(0.5));
    g[3] = g[n - 2] = std::numeric_limits<T>::quiet_NaN();
    g[5] = huge;  // its square overflows to inf, and inf - inf in the velocity's update is NaN
    const Tensor grad = testing::make_typed<T>(Shape({n}), g);
    opt->apply_gradients({grad}, {w});
    opt->apply_gradients({grad}, {w});
    const std::vector<T> vh = testing::values<T>(opt->slot(w->id(), "velocity_hat")->peek());
    const std::vector<T> wv = testing::values<T>(w->peek());
    for (int64_t i = 0; i < n; ++i) {
      const bool bad = i == 3 || i == n - 2 || i == 5;
      EXPECT_EQ(std::isnan(vh[i]), bad) << i;
      EXPECT_EQ(std::isnan(wv[i]), bad) << i;
    }
  }
  kernels::simd::force_target(0);
}

TEST(Optimizer, AmsgradVelocityHatPropagatesNaN) {
  expect_amsgrad_nan_propagates<float>(1e20f);
  expect_amsgrad_nan_propagates<double>(1e160);
}

// Keras 3's Nadam on a float32 model: u_product a float32 variable, each step's u_t, u_{t+1},
// products and 1 - beta_2^t in float32 from beta_1, beta_2, 0.96 and the steps cast to float32,
// the element ops in float32 without FMA. kiln's steps are those bits.
TEST(OptimizerGolden, Float32NadamIsKerasBitForBit) {
  const int64_t n = 29;
  const Tensor w0 = testing::random_tensor(Shape({n}), 31);
  for (const double beta_1 : {0.9, 0.8}) {
    SCOPED_TRACE(beta_1);
    VariablePtr w = std::make_shared<Variable>("w", w0, true);
    OptimizerPtr opt = make_optimizer(
        "Nadam", Config().set("learning_rate", 0.002).set("beta_1", beta_1).set("beta_2", 0.99));
    const float b1 = static_cast<float>(beta_1);
    const float lr = 0.002f, b2 = 0.99f, eps = 1e-7f, decay = 0.96f;
    std::vector<float> want = testing::values(w0), m(n, 0.0f), v(n, 0.0f);
    float prod = 1.0f;
    auto u = [&](int s) { return b1 * (1.0f - 0.5f * std::pow(decay, static_cast<float>(s))); };
    for (int t = 1; t <= 12; ++t) {
      const Tensor g = testing::random_tensor(Shape({n}), 200 + t);
      opt->apply_gradients({g}, {w});
      const std::vector<float> gv = testing::values(g);
      prod = prod * b1 * (1.0f - 0.5f * std::pow(decay, static_cast<float>(t)));
      const float u_t = u(t), u_next = u(t + 1), prod_next = prod * u_next;
      const float b2_power = std::pow(b2, static_cast<float>(t));
      for (int64_t i = 0; i < n; ++i) {
        const float dm = (gv[i] - m[i]) * (1.0f - b1), dv = (gv[i] * gv[i] - v[i]) * (1.0f - b2);
        m[i] = m[i] + dm;
        v[i] = v[i] + dv;
        const float first = (u_next * m[i]) / (1.0f - prod_next),
                    second = ((1.0f - u_t) * gv[i]) / (1.0f - prod);
        const float m_hat = first + second, v_hat = v[i] / (1.0f - b2_power);
        const float step = (m_hat * lr) / (std::sqrt(v_hat) + eps);
        want[i] = want[i] - step;
      }
      ASSERT_EQ(opt->state_variables()[0]->peek().data<float>()[0], prod) << "step " << t;
      const std::vector<float> got = testing::values(w->peek());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), n * sizeof(float)), 0) << "step " << t;
    }
  }
}

TEST(ScheduleGolden, EverySchedule) {
  for (const Json &s : golden().at("schedules")) {
    SchedulePtr sched = deserialize_schedule(config_of(s.at("schedule")));
    for (size_t i = 0; i < s.at("steps").size(); ++i) {
      const int64_t step = s.at("steps").at(i).get<int64_t>();
      // Keras's float32 arithmetic in its order, with the C library's cosf/powf/logf: every bit.
      EXPECT_EQ((*sched)(step), s.at("values").at(i).get<double>())
          << s.at("schedule").dump() << " at step " << step;
    }
    // get_config round-trips: the same schedule again.
    SchedulePtr again = deserialize_schedule(sched->serialize());
    EXPECT_EQ(again->serialize(), sched->serialize());
  }
}

TEST(Schedules, ErrorsAndAliases) {
  EXPECT_NEAR(
      (*make_schedule(
          "exponential_decay",
          Config().set("initial_learning_rate", 1.0).set("decay_steps", 1).set("decay_rate", 0.5)))(2),
      0.25, 1e-15);
  // warmup_steps below 0, in each schedule that takes it (one shared check).
  const Config poly = Config()
                          .set("class_name", "PolynomialDecay")
                          .set("config", Config().set("initial_learning_rate", 0.1).set("decay_steps", 10));
  for (const auto &[name, config] : std::vector<std::pair<std::string, Config>>{
           {"CosineDecay",
            Config().set("initial_learning_rate", 0.1).set("decay_steps", 10).set("warmup_steps", -1)},
           {"LinearWarmup", Config().set("after_warmup_lr_sched", poly).set("warmup_steps", -1)},
           {"WarmUp", Config()
                          .set("initial_learning_rate", 0.1)
                          .set("decay_schedule_fn", poly)
                          .set("warmup_steps", -1)}})
    expect_error([&] { make_schedule(name, config); }, Code::kInvalidArgument,
                 {name, "warmup_steps must be >= 0; got -1"});
  expect_error([] { make_schedule("NoSuchDecay", Config()); }, Code::kNotFound,
               {"NoSuchDecay", "ExponentialDecay"});
  // CosineDecayRestarts: Keras's defaults (t_mul 2, name SGDRDecay); restarts at 5, 15, 35.
  SchedulePtr sgdr =
      make_schedule("cosine_decay_restarts",
                    Config().set("initial_learning_rate", 0.1).set("first_decay_steps", 5).set("m_mul", 0.5));
  EXPECT_EQ((*sgdr)(5), double(0.05f));  // computed in float32, as Keras does
  // PiecewiseConstantDecay: an int boundary stays exact (Keras casts it to the int64 step), even
  // above float32's 2^24.
  SchedulePtr piecewise =
      make_schedule("PiecewiseConstantDecay", Config()
                                                  .set("boundaries", std::vector<int64_t>{16777217})
                                                  .set("values", std::vector<double>{1.0, 0.5}));
  EXPECT_EQ((*piecewise)(16777217), 1.0);
  EXPECT_EQ((*piecewise)(16777218), 0.5);
  EXPECT_EQ((*sgdr)(15), double(0.025f));
  EXPECT_EQ(sgdr->get_config().get_string("name"), "SGDRDecay");
  EXPECT_EQ(sgdr->get_config().get_float("t_mul"), 2.0);
  expect_error(
      [] {
        make_schedule("CosineDecayRestarts",
                      Config().set("initial_learning_rate", 0.1).set("first_decay_steps", 0));
      },
      Code::kInvalidArgument, {"first_decay_steps must be > 0"});
  expect_error([] { make_schedule("CosineDecayRestarts", Config().set("initial_learning_rate", 0.1)); },
               Code::kInvalidArgument, {"first_decay_steps", "required"});
  expect_error(
      [] {
        make_schedule("ExponentialDecay", Config().set("initial_learning_rate", 1.0).set("decay_rate", 0.5));
      },
      Code::kInvalidArgument, {"decay_steps", "required"});
  expect_error(
      [] {
        make_schedule(
            "ExponentialDecay",
            Config().set("initial_learning_rate", 1.0).set("decay_steps", 0).set("decay_rate", 0.5));
      },
      Code::kInvalidArgument, {"decay_steps must be > 0"});
  expect_error(
      [] {
        make_schedule("PolynomialDecay",
                      Config().set("initial_learning_rate", 1.0).set("decay_steps", 3).set("decay_rte", 0.5));
      },
      Code::kInvalidArgument, {"decay_rte"});
  expect_error(
      [] {
        make_schedule(
            "PiecewiseConstantDecay",
            Config().set("boundaries", std::vector<int64_t>{1, 2}).set("values", std::vector<double>{1.0}));
      },
      Code::kInvalidArgument, {"one shorter"});
}

VariablePtr var(const std::string &name, const Shape &shape, unsigned seed, DType dtype = DType::kFloat32) {
  Tensor t = testing::random_tensor(shape, seed);
  if (dtype == DType::kFloat64) {
    std::vector<double> d(testing::values(t).begin(), testing::values(t).end());
    t = Tensor::from_data(DType::kFloat64, shape, d.data(), d.size() * sizeof(double));
  }
  return std::make_shared<Variable>(name, t, true);
}

TEST(Optimizer, OneAndTwoThreadsGiveTheSameBits) {
  // Large enough to run on several threads (above the elementwise threshold) and to need
  // several blocks in the global norm (and in Lamb's per-variable norms).
  auto run = [](const char *cls, int threads) {
    set_num_threads_for_this_thread(threads);
    std::vector<VariablePtr> vars{var("w", Shape({300, 500}), 1), var("b", Shape({500}), 2)};
    OptimizerPtr opt = make_optimizer(
        cls, Config().set("global_clipnorm", 1.0).set("learning_rate", 0.01).set("weight_decay", 0.01));
    for (int s = 0; s < 3; ++s)
      opt->apply_gradients(
          {testing::random_tensor(Shape({300, 500}), 10 + s), testing::random_tensor(Shape({500}), 20 + s)},
          vars);
    set_num_threads_for_this_thread(0);
    std::vector<float> out;
    for (const VariablePtr &v : opt->variables()) {
      if (v->dtype() != DType::kFloat32) continue;
      const std::vector<float> x = testing::values(v->peek());
      out.insert(out.end(), x.begin(), x.end());
    }
    for (const VariablePtr &v : vars) {
      const std::vector<float> x = testing::values(v->peek());
      out.insert(out.end(), x.begin(), x.end());
    }
    return out;
  };
  for (const char *cls : {"AdamW", "Lamb", "Adafactor"}) {
    const std::vector<float> one = run(cls, 1), two = run(cls, 2), three = run(cls, 3);
    ASSERT_EQ(one.size(), two.size());
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0) << cls;
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0) << cls;
  }
}

TEST(Optimizer, UpdatesInPlaceButNeverChangesATensorReadEarlier) {
  VariablePtr w = var("w", Shape({64}), 3);
  OptimizerPtr opt = make_optimizer("Adam", Config().set("learning_rate", 0.1));
  const Tensor g = testing::random_tensor(Shape({64}), 4);
  opt->apply_gradients({g}, {w});             // makes the slots
  const void *before = w->peek().raw_data();  // the lease ends with the temporary
  const void *slot_before = opt->slot(w->id(), "momentum")->peek().raw_data();
  opt->apply_gradients({g}, {w});
  EXPECT_EQ(w->peek().raw_data(), before) << "no reader: the weight is updated in place";
  EXPECT_EQ(opt->slot(w->id(), "momentum")->peek().raw_data(), slot_before) << "slots too";

  const Tensor read_w = w->value();
  const Tensor read_m = opt->slot(w->id(), "m")->value();
  const std::vector<float> w0 = testing::values(read_w), m0 = testing::values(read_m);
  opt->apply_gradients({g}, {w});
  EXPECT_EQ(testing::values(read_w), w0);
  EXPECT_EQ(testing::values(read_m), m0);
  EXPECT_NE(testing::values(w->peek()), w0);
  EXPECT_NE(testing::values(opt->slot(w->id(), "momentum")->peek()), m0);
}

TEST(Optimizer, VariablesSlotsAndIds) {
  VariablePtr a = var("dense/kernel", Shape({2, 3}), 5), b = var("dense/bias", Shape({3}), 6);
  OptimizerPtr opt = make_optimizer("adam", Config().set("amsgrad", true));
  EXPECT_EQ(opt->class_name(), "Adam");
  EXPECT_EQ(opt->variables().size(), 1u);  // iterations only, before the first step
  EXPECT_EQ(opt->iterations_variable()->dtype(), DType::kInt64);
  EXPECT_FALSE(opt->iterations_variable()->trainable());
  expect_error([&] { opt->slot(a->id(), "momentum"); }, Code::kNotFound, {"no slots"});
  // As Keras builds: the first call makes the slots of every variable it is given, gradient or
  // not, in the list's order (a's untouched until its first gradient).
  opt->apply_gradients({Tensor(), testing::random_tensor(Shape({3}), 7)}, {a, b});
  EXPECT_EQ(testing::values(opt->slot(a->id(), "momentum")->peek()), std::vector<float>(6, 0.0f));
  opt->apply_gradients({testing::random_tensor(Shape({2, 3}), 8), testing::random_tensor(Shape({3}), 9)},
                       {a, b});
  const std::vector<VariablePtr> vs = opt->variables();
  ASSERT_EQ(vs.size(), 7u);
  EXPECT_EQ(vs[0], opt->iterations_variable());
  EXPECT_EQ(opt->iterations(), 2);
  EXPECT_EQ(vs[1], opt->slot(a->id(), "momentum"));
  EXPECT_EQ(vs[2], opt->slot(a->id(), "velocity"));
  EXPECT_EQ(vs[3], opt->slot(a->id(), "vhat"));
  EXPECT_EQ(vs[4], opt->slot(b->id(), "m"));
  EXPECT_EQ(vs[1]->shape(), a->shape());
  EXPECT_NE(vs[1]->name().find("dense/kernel/momentum"), std::string::npos) << vs[1]->name();
  // A variable new to a later call gets its slots then, after the others'.
  VariablePtr c = var("dense_1/kernel", Shape({2}), 10);
  opt->apply_gradients({Tensor(), testing::random_tensor(Shape({3}), 11)}, {c, b});
  ASSERT_EQ(opt->variables().size(), 10u);
  EXPECT_EQ(opt->variables()[7], opt->slot(c->id(), "momentum"));
  expect_error([&] { opt->slot(a->id(), "accumulator"); }, Code::kNotFound,
               {"accumulator", "momentum, velocity"});
  // Nadam lists its u_product after iterations: float64 until it is built, then in its first
  // variable's dtype (float64, or float32 for any other), its value carried over.
  OptimizerPtr nadam = make_optimizer("Nadam", Config());
  ASSERT_EQ(nadam->variables().size(), 2u);
  EXPECT_EQ(nadam->variables()[1]->dtype(), DType::kFloat64);
  nadam->apply_gradients({testing::random_tensor(Shape({3}), 7)}, {b});
  EXPECT_EQ(nadam->variables().size(), 4u);
  EXPECT_EQ(nadam->variables()[1]->dtype(), DType::kFloat32);
  EXPECT_EQ(nadam->state_variables()[0]->peek().data<float>()[0], 0.9f * (1.0f - 0.5f * 0.96f));
  OptimizerPtr nadam64 = make_optimizer("Nadam", Config());
  nadam64->state_variables()[0]->assign(Tensor::scalar<double>(0.1));
  const VariablePtr w64 = std::make_shared<Variable>("w64", Tensor::scalar<double>(1.0), true);
  nadam64->build({w64, b});
  ASSERT_EQ(nadam64->state_variables()[0]->dtype(), DType::kFloat64);
  EXPECT_EQ(nadam64->state_variables()[0]->peek().data<double>()[0], 0.1);
  EXPECT_EQ(nadam64->variables()[1], nadam64->state_variables()[0]);
}

std::vector<double> values_f64(const Tensor &t) {
  const std::vector<float> f = testing::values(t);
  return std::vector<double>(f.begin(), f.end());
}

// Adafactor factors a variable of rank >= 2 over its last two axes: for [2, 3, 4], r is [2, 3]
// (the mean over the columns) and c [2, 4] (over the rows), per leading index. A variable of rank
// < 2 has a full velocity and Keras's int32 placeholders for r and c, which variables() leaves
// out. Three steps against the formulas of Keras's update_step, in double.
TEST(Optimizer, AdafactorFactorsTheLastTwoAxes) {
  const VariablePtr w = var("w", Shape({2, 3, 4}), 31), b = var("b", Shape({4}), 32),
                    s = var("s", Shape{}, 33);
  std::vector<std::vector<double>> ref = {values_f64(w->peek()), values_f64(b->peek()),
                                          values_f64(s->peek())};
  OptimizerPtr opt =
      make_optimizer("Adafactor", Config().set("learning_rate", 0.2).set("clip_threshold", 0.7));
  std::vector<double> r(6, 0.0), c(8, 0.0), v_b(4, 0.0), v_s(1, 0.0);
  auto mean_squares = [](const std::vector<double> &x) {
    double a = 0;
    for (double e : x) a += e * e;
    return a / static_cast<double>(x.size());
  };
  for (int step = 1; step <= 3; ++step) {
    const std::vector<Tensor> g = {testing::random_tensor(Shape({2, 3, 4}), 40 + step),
                                   testing::random_tensor(Shape({4}), 50 + step),
                                   testing::random_tensor(Shape{}, 60 + step)};
    opt->apply_gradients(g, {w, b, s});
    const double t = step, rho = std::min(0.2, 1 / std::sqrt(t)), beta = 1 - std::pow(t, -0.8);
    std::vector<std::vector<double>> v(3);
    std::vector<std::vector<double>> gd;
    for (const Tensor &x : g) gd.push_back(values_f64(x));
    for (int bi = 0; bi < 2; ++bi) {
      for (int i = 0; i < 3; ++i) {
        double m = 0;
        for (int j = 0; j < 4; ++j) m += gd[0][(bi * 3 + i) * 4 + j] * gd[0][(bi * 3 + i) * 4 + j] + 1e-30;
        r[bi * 3 + i] = beta * r[bi * 3 + i] + (1 - beta) * m / 4;
      }
      for (int j = 0; j < 4; ++j) {
        double m = 0;
        for (int i = 0; i < 3; ++i) m += gd[0][(bi * 3 + i) * 4 + j] * gd[0][(bi * 3 + i) * 4 + j] + 1e-30;
        c[bi * 4 + j] = beta * c[bi * 4 + j] + (1 - beta) * m / 3;
      }
      const double r_mean = (r[bi * 3] + r[bi * 3 + 1] + r[bi * 3 + 2]) / 3;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) v[0].push_back(r[bi * 3 + i] / r_mean * c[bi * 4 + j]);
    }
    for (int j = 0; j < 4; ++j) v_b[j] = beta * v_b[j] + (1 - beta) * (gd[1][j] * gd[1][j] + 1e-30);
    v_s[0] = beta * v_s[0] + (1 - beta) * (gd[2][0] * gd[2][0] + 1e-30);
    v[1] = v_b;
    v[2] = v_s;
    for (size_t k = 0; k < 3; ++k) {
      const double alpha = std::max(1e-3, std::sqrt(mean_squares(ref[k]))) * rho;
      std::vector<double> u;
      for (size_t i = 0; i < ref[k].size(); ++i) u.push_back(gd[k][i] / std::sqrt(v[k][i]));
      const double denominator = std::max(1.0, std::sqrt(mean_squares(u)) / 0.7);
      for (size_t i = 0; i < ref[k].size(); ++i) ref[k][i] -= alpha * u[i] / denominator;
    }
    const VariablePtr vars[] = {w, b, s};
    for (size_t k = 0; k < 3; ++k) {
      const std::vector<double> got = values_f64(vars[k]->peek());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], ref[k][i], 2e-5 * (1 + std::fabs(ref[k][i])))
            << "step " << step << " variable " << k;
    }
    const std::vector<double> r_got = values_f64(opt->slot(w->id(), "r")->peek());
    const std::vector<double> c_got = values_f64(opt->slot(w->id(), "c")->peek());
    for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(r_got[i], r[i], 2e-5 * r[i]);
    for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(c_got[i], c[i], 2e-5 * c[i]);
  }
  EXPECT_EQ(opt->slot(w->id(), "r")->shape(), Shape({2, 3}));
  EXPECT_EQ(opt->slot(w->id(), "c")->shape(), Shape({2, 4}));
  EXPECT_EQ(opt->slot(w->id(), "velocity")->shape(), Shape({2, 3, 4}));
  for (const VariablePtr &x : {b, s}) {
    for (const char *name : {"r", "c"}) {
      const VariablePtr p = opt->slot(x->id(), name);
      EXPECT_EQ(p->dtype(), DType::kInt32);
      EXPECT_EQ(p->shape(), Shape{});
      EXPECT_EQ(p->peek().data<int32_t>()[0], 0);
    }
    EXPECT_EQ(opt->slot(x->id(), "velocity")->shape(), x->shape());
  }
  const std::vector<VariablePtr> listed = opt->variables();
  ASSERT_EQ(listed.size(), 6u);  // iterations; r, c, velocity of w; velocity of b and of s
  EXPECT_EQ(listed[1], opt->slot(w->id(), "r"));
  EXPECT_EQ(listed[2], opt->slot(w->id(), "c"));
  EXPECT_EQ(listed[3], opt->slot(w->id(), "velocity"));
  EXPECT_EQ(listed[4], opt->slot(b->id(), "velocity"));
  EXPECT_EQ(listed[5], opt->slot(s->id(), "velocity"));
  const std::vector<Optimizer::VariableSlots> slots = opt->slot_variables();
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_EQ(slots[0].placeholder, std::vector<bool>({false, false, false}));
  EXPECT_EQ(slots[1].placeholder, std::vector<bool>({true, true, false}));

  // A restored slot value must have the slot's form: r of a [2, 3, 4] variable is [2, 3], and a
  // placeholder an int32 scalar.
  OptimizerPtr fresh = make_optimizer("Adafactor", Config());
  fresh->defer_slot_restore(0, "r", testing::random_tensor(Shape({2, 3, 4}), 1));
  expect_error([&] { fresh->build({w}); }, Code::kInvalidArgument, {"'r'", "float32[2, 3]"});
  OptimizerPtr fresh2 = make_optimizer("Adafactor", Config());
  fresh2->defer_slot_restore(0, "c", Tensor::scalar<int32_t>(0));
  fresh2->defer_slot_restore(0, "r", Tensor::scalar<int32_t>(0));
  fresh2->build({b});
  EXPECT_EQ(fresh2->pending_slot_restores(), 0u);
  // Keras's config keys and defaults.
  const Config cfg = make_optimizer("Adafactor", Config())->get_config();
  EXPECT_EQ(cfg.get_float("learning_rate"), 0.001);
  EXPECT_EQ(cfg.get_float("beta_2_decay"), -0.8);
  EXPECT_EQ(cfg.get_float("epsilon_1"), 1e-30);
  EXPECT_EQ(cfg.get_float("epsilon_2"), 1e-3);
  EXPECT_EQ(cfg.get_float("clip_threshold"), 1.0);
  EXPECT_TRUE(cfg.get_bool("relative_step"));
  EXPECT_EQ(make_optimizer("adafactor", Config())->class_name(), "Adafactor");
}

TEST(Optimizer, LearningRateChangedMidRunKeepsTheMoments) {
  VariablePtr w = var("w", Shape({5}), 11);
  OptimizerPtr opt = make_optimizer("Adam", Config().set("learning_rate", 0.1));
  opt->apply_gradients({testing::random_tensor(Shape({5}), 12)}, {w});
  const std::vector<float> m = testing::values(opt->slot(w->id(), "momentum")->peek());
  opt->set_learning_rate(0.01);
  EXPECT_EQ(opt->learning_rate(), 0.01);
  EXPECT_EQ(testing::values(opt->slot(w->id(), "momentum")->peek()), m);
  EXPECT_EQ(opt->iterations(), 1);
  EXPECT_EQ(opt->get_config().get_float("learning_rate"), 0.01);
  // A schedule follows iterations, and cannot be set to a float.
  OptimizerPtr sched = make_optimizer(
      "SGD",
      Config().set(
          "learning_rate",
          Config()
              .set("class_name", "InverseTimeDecay")
              .set("config",
                   Config().set("initial_learning_rate", 1.0).set("decay_steps", 1).set("decay_rate", 1.0))));
  EXPECT_EQ(sched->learning_rate(), 1.0);
  sched->iterations_variable()->assign(Tensor::scalar<int64_t>(3));
  EXPECT_EQ(sched->learning_rate(), 0.25);
  expect_error([&] { sched->set_learning_rate(0.1); }, Code::kFailedPrecondition,
               {"schedule", "InverseTimeDecay"});
}

TEST(Optimizer, WeightDecayExclusion) {
  VariablePtr k = var("encoder/dense/kernel", Shape({4}), 13), b = var("encoder/dense/bias", Shape({4}), 14),
              ln = var("encoder/LayerNorm/gamma", Shape({4}), 15);
  OptimizerPtr opt = make_optimizer(
      "AdamW", Config()
                   .set("weight_decay", 0.5)
                   .set("exclude_from_weight_decay", std::vector<std::string>{"LayerNorm", "bias"}));
  EXPECT_TRUE(opt->uses_weight_decay(*k));
  EXPECT_FALSE(opt->uses_weight_decay(*b));
  EXPECT_FALSE(opt->uses_weight_decay(*ln));
  opt->exclude_from_weight_decay({k->id()}, {});
  EXPECT_FALSE(opt->uses_weight_decay(*k));
  EXPECT_TRUE(opt->uses_weight_decay(*b));
  // With a zero gradient Adam moves nothing, so only the decay changes a weight.
  const Tensor zero = Tensor::from_data(DType::kFloat32, Shape({4}), std::vector<float>(4, 0.f).data(), 16);
  const std::vector<float> k0 = testing::values(k->peek()), b0 = testing::values(b->peek());
  opt->apply_gradients({zero, zero}, {k, b});
  EXPECT_EQ(testing::values(k->peek()), k0);
  const std::vector<float> b1 = testing::values(b->peek());
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(b1[i], b0[i] - b0[i] * 0.5f * 0.001f);
  expect_error([&] { opt->exclude_from_weight_decay({}, {"x"}); }, Code::kFailedPrecondition, {"before"});
  // Names are patterns, as Keras's re.search("|".join(var_names), variable.name).
  OptimizerPtr re = make_optimizer("AdamW", Config());
  re->exclude_from_weight_decay({}, {"dense/(bias|gamma)$", "^encoder/Layer.*"});
  EXPECT_TRUE(re->uses_weight_decay(*k));
  EXPECT_FALSE(re->uses_weight_decay(*b));
  EXPECT_FALSE(re->uses_weight_decay(*ln));
  expect_error([&] { re->exclude_from_weight_decay({}, {"dense/(bias"}); }, Code::kInvalidArgument,
               {"exclude_from_weight_decay", "dense/(bias", "regular expression"});
  EXPECT_FALSE(re->uses_weight_decay(*b));  // a failed call keeps the earlier exclusion
  expect_error(
      [] {
        make_optimizer("AdamW", Config().set("exclude_from_weight_decay", std::vector<std::string>{"["}));
      },
      Code::kInvalidArgument, {"exclude_from_weight_decay", "["});
}

TEST(Optimizer, ClipnormScalesEachGradient) {
  // SGD(lr=1, clipnorm=1): w moves by g / |g| when |g| > 1, by g otherwise.
  VariablePtr a = std::make_shared<Variable>("a", testing::make(Shape({2}), {0, 0}), true);
  VariablePtr b = std::make_shared<Variable>("b", testing::make(Shape({2}), {0, 0}), true);
  OptimizerPtr opt = make_optimizer("SGD", Config().set("learning_rate", 1.0).set("clipnorm", 1.0));
  opt->apply_gradients({testing::make(Shape({2}), {3, 4}), testing::make(Shape({2}), {0.3f, 0.4f})}, {a, b});
  testing::expect_near(a->peek(), {-0.6f, -0.8f});
  testing::expect_near(b->peek(), {-0.3f, -0.4f});
  // global_clipnorm: both scaled by 1 / |(3, 4, 0, 0)| = 1/5.
  OptimizerPtr glob = make_optimizer("SGD", Config().set("learning_rate", 1.0).set("global_clipnorm", 1.0));
  glob->apply_gradients({testing::make(Shape({2}), {3, 4}), testing::make(Shape({2}), {0, 0})}, {a, b});
  testing::expect_near(a->peek(), {-1.2f, -1.6f});
  // A non-finite global norm makes every update NaN, as Keras's.
  glob->apply_gradients({testing::make(Shape({2}), {INFINITY, 0}), testing::make(Shape({2}), {0, 0})},
                        {a, b});
  EXPECT_TRUE(std::isnan(testing::values(b->peek())[0]));
}

TEST(Optimizer, ConfigRoundTrips) {
  const char *classes[] = {"SGD",   "Adam",   "AdamW", "RMSprop", "Adagrad", "Adadelta",
                           "Nadam", "Adamax", "Lion",  "Ftrl",    "Lamb",    "Adafactor"};
  for (const char *cls : classes) {
    OptimizerPtr o = make_optimizer(cls, Config().set("clipvalue", 0.5).set("name", "opt"));
    const Config c = o->get_config();
    EXPECT_EQ(c.get_string("name"), "opt");
    EXPECT_EQ(c.get_float("clipvalue"), 0.5);
    EXPECT_EQ(make_optimizer(cls, c)->get_config(), c) << cls;
    EXPECT_EQ(deserialize_optimizer(o->serialize())->get_config(), c) << cls;
  }
  EXPECT_EQ(make_optimizer("SGD", Config())->get_config().get_float("learning_rate"), 0.01);
  EXPECT_EQ(make_optimizer("AdamW", Config())->get_config().get_float("weight_decay"), 0.004);
  EXPECT_TRUE(make_optimizer("Adam", Config())->get_config().is_null("weight_decay"));
  EXPECT_EQ(make_optimizer("Adagrad", Config())->get_config().get_float("initial_accumulator_value"), 0.1);
  EXPECT_EQ(make_optimizer("Adadelta", Config())->get_config().get_float("rho"), 0.95);
  EXPECT_EQ(make_optimizer("Nadam", Config())->get_config().get_float("epsilon"), 1e-7);
  const Config ftrl = make_optimizer("Ftrl", Config())->get_config();
  EXPECT_EQ(ftrl.get_float("learning_rate_power"), -0.5);
  EXPECT_EQ(ftrl.get_float("initial_accumulator_value"), 0.1);
  EXPECT_EQ(ftrl.get_float("beta"), 0.0);
  EXPECT_EQ(ftrl.get_string("name").rfind("ftrl", 0), 0u);
  // Default names are Keras's (its optimizers default to name=None): the class name through
  // Keras's to_snake_case, made unique.
  for (const auto &[cls, base] : std::vector<std::pair<std::string, std::string>>{{"SGD", "sgd"},
                                                                                  {"Adam", "adam"},
                                                                                  {"AdamW", "adam_w"},
                                                                                  {"RMSprop", "rm_sprop"},
                                                                                  {"Nadam", "nadam"}}) {
    const std::string n1 = make_optimizer(cls, Config())->name(), n2 = make_optimizer(cls, Config())->name();
    EXPECT_EQ(n1.rfind(base, 0), 0u) << n1;
    EXPECT_EQ(n2.rfind(base + "_", 0), 0u) << n2;
    EXPECT_NE(n1, n2);
  }
}

TEST(Optimizer, Errors) {
  VariablePtr w = var("dense/kernel", Shape({2, 3}), 16);
  OptimizerPtr opt = make_optimizer("Adam", Config());
  expect_error(
      [&] {
        opt->apply_gradients({testing::random_tensor(Shape({3, 2}), 1)}, {w});
      },
      Code::kInvalidArgument, {"dense/kernel", "[3, 2]", "[2, 3]"});
  expect_error(
      [&] {
        opt->apply_gradients(
            {Tensor::from_data(DType::kFloat64, Shape({2, 3}), std::vector<double>(6).data(), 48)}, {w});
      },
      Code::kInvalidArgument, {"dense/kernel", "float64"});
  expect_error([&] { opt->apply_gradients({Tensor()}, {w}); }, Code::kInvalidArgument, {"no gradients"});
  expect_error(
      [&] {
        opt->apply_gradients({testing::random_tensor(Shape({2, 3}), 1)}, {});
      },
      Code::kInvalidArgument, {"1 gradients for 0 variables"});
  const Tensor g = testing::random_tensor(Shape({2, 3}), 1);
  expect_error(
      [&] {
        opt->apply_gradients({g, g}, {w, w});
      },
      Code::kInvalidArgument, {"dense/kernel", "twice"});
  VariablePtr ints = std::make_shared<Variable>("step", Tensor::scalar<int32_t>(1), true);
  expect_error([&] { opt->apply_gradients({Tensor::scalar<int32_t>(1)}, {ints}); }, Code::kInvalidArgument,
               {"step", "int32"});
  // A failed call changes nothing.
  EXPECT_EQ(opt->iterations(), 0);
  EXPECT_EQ(opt->variables().size(), 1u);
  expect_error([] { make_optimizer("Adamax2", Config()); }, Code::kNotFound, {"Adamax2", "Adam"});
  expect_error([] { make_optimizer("Adam", Config().set("beta1", 0.5)); }, Code::kInvalidArgument, {"beta1"});
  expect_error([] { make_optimizer("SGD", Config().set("clipnorm", 1.0).set("clipvalue", 1.0)); },
               Code::kInvalidArgument, {"only one of"});
  expect_error([] { make_optimizer("SGD", Config().set("momentum", 1.5)); }, Code::kInvalidArgument,
               {"momentum"});
  // Ftrl's settings, as Keras checks them (and non-finite ones).
  expect_error([] { make_optimizer("Ftrl", Config().set("learning_rate_power", 0.1)); },
               Code::kInvalidArgument, {"learning_rate_power", "negative or zero"});
  expect_error([] { make_optimizer("Ftrl", Config().set("initial_accumulator_value", -0.1)); },
               Code::kInvalidArgument, {"initial_accumulator_value", "positive or zero"});
  expect_error([] { make_optimizer("Ftrl", Config().set("l1_regularization_strength", NAN)); },
               Code::kInvalidArgument, {"l1_regularization_strength"});
  expect_error([] { make_optimizer("Ftrl", Config().set("beta", INFINITY)); }, Code::kInvalidArgument,
               {"beta"});
  expect_error([] { make_optimizer("SGD", Config().set("use_ema", true).set("ema_momentum", -0.5)); },
               Code::kInvalidArgument, {"ema_momentum"});
  expect_error(
      [] { make_optimizer("SGD", Config().set("learning_rate", Config().set("class_name", "Nope"))); },
      Code::kNotFound, {"learning_rate", "Nope"});
  expect_error([] { register_optimizer("Adam", [](const Config &) { return OptimizerPtr(); }); },
               Code::kInvalidArgument, {"built-in"});
}

}  // namespace
}  // namespace kiln::train

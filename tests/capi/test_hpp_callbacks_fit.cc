// kiln.hpp callbacks inside fit (kiln_model_fit from kiln/training.h): a Callback subclass sees
// every epoch with model() the model being trained and stops it, an exception from a hook comes
// out of fit with its code, and a LearningRateScheduler std::function sets the rate.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.hpp"

namespace {

constexpr int64_t kN = 40;

struct Problem {
  kiln::Tensor x, y;
};

Problem problem() {
  std::vector<float> x(kN * 3), y(kN);
  uint32_t s = 5;
  for (float &v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  for (int64_t i = 0; i < kN; ++i) y[size_t(i)] = x[size_t(3 * i)] - 2 * x[size_t(3 * i + 1)];
  return {kiln::Tensor::from_vector(x, {kN, 3}), kiln::Tensor::from_vector(y, {kN, 1})};
}

kiln::Layer compiled_model() {
  kiln::Layer m = kiln::layers::Dense(1);
  kiln::optimizers::Optimizer opt = kiln::optimizers::SGD(0.05);
  const char *loss = "mse";
  kiln_compile_options co;
  kiln::detail::check(kiln_compile_options_init(&co, sizeof co));
  co.optimizer = opt.get();
  co.loss_names = &loss;
  co.num_loss_names = 1;
  kiln::detail::check(kiln_model_compile(m.get(), &co));
  return m;
}

void fit(kiln::Layer &m, const Problem &p, int64_t epochs, const std::vector<kiln::Callback *> &callbacks) {
  auto x = kiln::detail::to_list({p.x});
  auto y = kiln::detail::to_list({p.y});
  std::vector<kiln_callback *> hs;
  for (kiln::Callback *cb : callbacks) hs.push_back(cb->get());
  kiln_fit_options fo;
  kiln::detail::check(kiln_fit_options_init(&fo, sizeof fo));
  fo.x = x.get();
  fo.y = y.get();
  fo.batch_size = 10;
  fo.epochs = epochs;
  fo.verbose = 0;
  fo.validation_split = 0.25;
  fo.callbacks = hs.data();
  fo.num_callbacks = hs.size();
  kiln::detail::check(kiln_model_fit(nullptr, m.get(), &fo));
}

class Watcher : public kiln::Callback {
 public:
  Watcher() : Callback("Watcher") {}
  void on_train_batch_begin(int64_t batch, const kiln::Logs &) override {
    if (batch == throw_at_batch) throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "batch too far");
  }
  void on_epoch_end(int64_t epoch, const kiln::Logs &logs) override {
    epochs.push_back(epoch);
    model_ids.push_back(model().id());
    rates.push_back(logs.get("learning_rate", -1));
    has_val_loss = has_val_loss && logs.contains("val_loss");
    if (epoch == stop_at) kiln::detail::check(kiln_model_set_stop_training(model().get(), true));
  }
  int64_t stop_at = -1, throw_at_batch = -1;
  bool has_val_loss = true;
  std::vector<int64_t> epochs;
  std::vector<uint64_t> model_ids;
  std::vector<double> rates;
};

TEST(HppCallbacksFit, SubclassSeesEveryEpochAndStops) {
  Problem p = problem();
  kiln::Layer m = compiled_model();
  Watcher w;
  fit(m, p, 3, {&w});
  EXPECT_EQ(w.epochs, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(w.model_ids, (std::vector<uint64_t>(3, m.id())));
  EXPECT_TRUE(w.has_val_loss);
  EXPECT_EQ(w.params().get_int("epochs"), 3);
  Watcher stopper;
  stopper.stop_at = 1;
  fit(m, p, 5, {&stopper});
  EXPECT_EQ(stopper.epochs.size(), 2u);
}

TEST(HppCallbacksFit, ExceptionFromAHookStopsFit) {
  Problem p = problem();
  kiln::Layer m = compiled_model();
  Watcher w;
  w.throw_at_batch = 1;
  try {
    fit(m, p, 2, {&w});
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_OUT_OF_RANGE);
    EXPECT_NE(std::string(e.what()).find("Watcher on_train_batch_begin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("batch too far"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(w.epochs.empty());
}

// Keras's one logs dict: set_log/erase_log in a hook reach the callbacks after it and History.
class LogWriter : public kiln::Callback {
 public:
  LogWriter() : Callback("LogWriter") {}
  void on_epoch_end(int64_t epoch, const kiln::Logs &logs) override {
    set_log("epoch_x10", 10.0 * static_cast<double>(epoch));
    set_log("diverged", NAN);  // a log may be NaN (a setting may not)
    erase_log("val_loss");
    seen_own_change = logs.contains("epoch_x10") && !logs.contains("val_loss");
  }
  // As Keras's CallbackList, a begin hook gets logs too (empty), and may write them.
  void on_train_begin(const kiln::Logs &logs) override {
    begin_logs_empty = logs.empty();
    set_log("started", 1);
  }
  void write_outside_a_hook() { set_log("x", 1); }
  bool seen_own_change = false, begin_logs_empty = false;
};

class LogReader : public kiln::Callback {
 public:
  LogReader() : Callback("LogReader") {}
  void on_epoch_end(int64_t, const kiln::Logs &logs) override { values.push_back(logs.get("epoch_x10", -1)); }
  void on_train_begin(const kiln::Logs &logs) override { started = logs.get("started", -1); }
  std::vector<double> values;
  double started = 0;
};

TEST(HppCallbacksFit, HooksWriteTheLogs) {
  Problem p = problem();
  kiln::Layer m = compiled_model();
  LogWriter w;
  LogReader r;
  kiln::History h;
  fit(m, p, 2, {&w, &r, &h});
  EXPECT_TRUE(w.seen_own_change);
  EXPECT_TRUE(w.begin_logs_empty);
  EXPECT_EQ(r.started, 1.0);
  EXPECT_EQ(r.values, (std::vector<double>{0.0, 10.0}));
  const auto hist = h.history();
  EXPECT_EQ(hist.count("val_loss"), 0u);
  EXPECT_EQ(hist.at("epoch_x10"), (std::vector<double>{0.0, 10.0}));
  ASSERT_EQ(hist.at("diverged").size(), 2u);
  EXPECT_TRUE(std::isnan(hist.at("diverged")[1]));
  EXPECT_THROW(w.write_outside_a_hook(), kiln::Error);
}

TEST(HppCallbacksFit, LearningRateSchedulerAndEarlyStopping) {
  Problem p = problem();
  kiln::Layer m = compiled_model();
  kiln::Callback sched = kiln::callbacks::LearningRateScheduler([](int64_t epoch, double) { return 0.1 / double(epoch + 1); });
  Watcher w;
  fit(m, p, 3, {&sched, &w});
  ASSERT_EQ(w.rates.size(), 3u);
  EXPECT_NEAR(w.rates[1], 0.05, 1e-12);
  EXPECT_NEAR(w.rates[2], 0.1 / 3, 1e-12);

  kiln::callbacks::EarlyStoppingOptions o;
  o.monitor = "loss";
  o.min_delta = 100;  // nothing after the first epoch counts as better
  o.patience = 1;
  kiln::Callback es = kiln::callbacks::EarlyStopping(o);
  Watcher w2;
  fit(m, p, 6, {&w2, &es});
  EXPECT_EQ(w2.epochs.size(), 2u);
  EXPECT_EQ(es.attributes().get_int("stopped_epoch"), 1);
}

}  // namespace

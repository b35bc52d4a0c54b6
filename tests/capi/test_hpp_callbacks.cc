// Callbacks through kiln.hpp: a built-in callback by class name, copies, and an unknown class as
// a kiln::Error; a Callback subclass (its hooks, model(), an exception from a hook, a destroyed
// object); the typed built-ins (EarlyStopping restoring weights, CSVLogger, TerminateOnNaN,
// LearningRateScheduler without an optimizer) and LambdaCallback, driven hook by hook.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "kiln/kiln.hpp"

namespace {

template <typename F>
void expect_error(F &&f, kiln_status_code code, const std::vector<std::string> &fragments) {
  try {
    f();
    ADD_FAILURE() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string &frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what() << " lacks " << frag;
  }
}

kiln::Layer dense_model() {
  kiln::Layer m = kiln::layers::Dense(2);
  m.build_for({-1, 3});
  return m;
}

void fill(kiln::Layer &m, float value) {
  for (kiln::Variable &v : m.variables()) {
    kiln::Tensor t = v.value();
    const kiln::Dims dims = t.shape();
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    v.assign(kiln::Tensor::from_vector(std::vector<float>(size_t(n), value), dims));
  }
}

kiln::Logs logs_of(double loss, double val_loss) { return kiln::Logs().set("loss", loss).set("val_loss", val_loss); }

TEST(HppCallbacks, CreateCopyAndUnknown) {
  kiln::Callback h = kiln::Callback::create("History");
  kiln::Callback copy = h;
  EXPECT_EQ(copy.class_name(), "History");
  try {
    kiln::Callback::create("NoSuchCallback");
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("NoSuchCallback"), std::string::npos);
  }
}

class Recorder : public kiln::Callback {
 public:
  Recorder() : Callback("Recorder") {}
  void on_train_begin(const kiln::Logs &logs) override { trace.push_back(logs.empty() ? "begin:none" : "begin"); }
  void on_epoch_end(int64_t epoch, const kiln::Logs &logs) override {
    if (epoch == 9) throw kiln::Error(KILN_STATUS_OUT_OF_RANGE, "epoch 9 is too late");
    trace.push_back("end" + std::to_string(epoch) + ":" + std::to_string(logs.at("loss")).substr(0, 3));
    if (model().valid()) trace.push_back("model:" + model().class_name());
  }
  std::vector<std::string> trace;
};

TEST(HppCallbacks, SubclassHooksModelAndErrors) {
  Recorder r;
  EXPECT_EQ(r.class_name(), "Recorder");
  r.call_hook("on_train_begin");
  r.call_hook("on_epoch_end", 0, logs_of(0.5, 0.7));
  kiln::Layer m = dense_model();
  r.set_model(m);
  r.call_hook("on_epoch_end", 1, logs_of(0.25, 0.7));
  EXPECT_EQ(r.trace, (std::vector<std::string>{"begin:none", "end0:0.5", "end1:0.2", "model:Dense"}));
  EXPECT_EQ(r.params().get_int("epochs"), 1);
  expect_error([&] { r.call_hook("on_epoch_end", 9, logs_of(1, 1)); }, KILN_STATUS_OUT_OF_RANGE,
               {"Recorder on_epoch_end", "epoch 9 is too late"});

  // A handle that outlives the object: its hooks report the object gone instead of crashing.
  kiln::Callback handle;
  {
    Recorder gone;
    handle = gone;
  }
  expect_error([&] { handle.call_hook("on_train_begin"); }, KILN_STATUS_FAILED_PRECONDITION, {"destroyed"});
}

TEST(HppCallbacks, AssigningSubclassObjectsKeepsEveryCallbackServed) {
  {  // copy: a's own callback dies with its last handle (ASan: ~Callback used to write to the freed link)
    Recorder a, b;
    a = b;
    a.call_hook("on_train_begin");
    EXPECT_TRUE(a.trace.empty());
    EXPECT_EQ(b.trace, (std::vector<std::string>{"begin:none"}));
  }
  {  // move between objects of one class: the target serves the callback; the source is empty
    Recorder a, b;
    a = std::move(b);
    EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    a.call_hook("on_train_begin");
    EXPECT_EQ(a.trace, (std::vector<std::string>{"begin:none"}));
  }
}

TEST(HppCallbacks, EarlyStoppingRestoresBestWeights) {
  kiln::Layer m = dense_model();
  kiln::callbacks::EarlyStoppingOptions o;
  o.patience = 1;
  o.restore_best_weights = true;
  kiln::Callback es = kiln::callbacks::EarlyStopping(o);
  es.set_model(m);
  es.call_hook("on_train_begin");
  const double values[] = {0.9, 0.3, 0.5, 0.4};
  for (int64_t e = 0; e < 4; ++e) {
    fill(m, static_cast<float>(e));
    es.call_hook("on_epoch_end", e, logs_of(1.0, values[e]));
    if (es.attributes().get_int("stopped_epoch") > 0) break;
  }
  es.call_hook("on_train_end");
  EXPECT_EQ(es.attributes().get_int("stopped_epoch"), 2);
  EXPECT_EQ(es.attributes().get_int("best_epoch"), 1);
  EXPECT_EQ(m.variables()[0].value().to_vector<float>()[0], 1.0f);

  o.mode = "sideways";
  expect_error([&] { kiln::callbacks::EarlyStopping(o); }, KILN_STATUS_INVALID_ARGUMENT, {"sideways"});
  kiln::callbacks::ReduceLROnPlateauOptions r;
  r.factor = 2.0;
  expect_error([&] { kiln::callbacks::ReduceLROnPlateau(r); }, KILN_STATUS_INVALID_ARGUMENT, {"factor"});
}

TEST(HppCallbacks, CsvLoggerAndTerminateOnNaN) {
  const std::string path = ::testing::TempDir() + "/kiln_hpp_csv_logger.csv";
  kiln::Callback csv = kiln::callbacks::CSVLogger(path);
  csv.call_hook("on_train_begin");
  csv.call_hook("on_epoch_end", 0, kiln::Logs().set("loss", 0.5).set("accuracy", 0.75));
  csv.call_hook("on_train_end");
  std::ifstream f(path, std::ios::binary);
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(text.str(), "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.75,0.5,NA,NA\r\n");
  std::remove(path.c_str());

  kiln::Callback nan = kiln::callbacks::TerminateOnNaN(/*raise_error=*/true);
  nan.call_hook("on_train_batch_end", 0, kiln::Logs().set("loss", 0.5));
  EXPECT_EQ(nan.class_name(), "TerminateOnNaN");
}

// SwapEMAWeights on a compiled model: evaluation runs on the averages and gives the weights back.
TEST(HppCallbacks, SwapEMAWeights) {
  kiln::Layer m = dense_model();
  kiln::Callback swap = kiln::callbacks::SwapEMAWeights();
  EXPECT_EQ(swap.class_name(), "SwapEMAWeights");
  swap.set_model(m);
  expect_error([&] { swap.call_hook("on_test_begin"); }, KILN_STATUS_FAILED_PRECONDITION, {"compile"});
  kiln::Sequential model({kiln::layers::Input({3}), kiln::layers::Dense(1)});
  kiln::optimizers::SGDOptions ema;
  ema.use_ema = true;
  ema.ema_momentum = 0.5;
  model.compile(kiln::optimizers::SGD(0.1, ema), "mse");
  const kiln::Tensor x = kiln::ones({4, 3}), y = kiln::zeros({4, 1});
  for (int i = 0; i < 3; ++i) model.train_on_batch(x, y);
  const std::vector<float> before = model.trainable_variables()[0].value().to_vector<float>();
  kiln::Callback on_model = kiln::callbacks::SwapEMAWeights(/*swap_on_epoch=*/true);
  on_model.set_model(model);
  on_model.call_hook("on_test_begin");
  EXPECT_NE(model.trainable_variables()[0].value().to_vector<float>(), before);  // the averages
  on_model.call_hook("on_test_end");
  EXPECT_EQ(model.trainable_variables()[0].value().to_vector<float>(), before);
}

TEST(HppCallbacks, LearningRateSchedulerNeedsACompiledModel) {
  int calls = 0;
  kiln::Callback s = kiln::callbacks::LearningRateScheduler([&](int64_t, double lr) {
    ++calls;
    return lr;
  });
  EXPECT_EQ(s.class_name(), "LearningRateScheduler");
  kiln::Layer m = dense_model();
  s.set_model(m);
  expect_error([&] { s.call_hook("on_epoch_begin", 0); }, KILN_STATUS_FAILED_PRECONDITION, {"compile"});
  EXPECT_EQ(calls, 0);
  expect_error([] { kiln::callbacks::LearningRateScheduler(nullptr); }, KILN_STATUS_INVALID_ARGUMENT, {"empty"});
}

TEST(HppCallbacks, LambdaCallback) {
  std::vector<std::string> trace;
  kiln::callbacks::LambdaHooks h;
  h.on_epoch_begin = [&](int64_t e, const kiln::Logs &) { trace.push_back("begin" + std::to_string(e)); };
  h.on_train_batch_end = [&](int64_t b, const kiln::Logs &logs) {
    if (logs.get("loss", 0) > 10) throw std::runtime_error("loss exploded");
    trace.push_back("batch" + std::to_string(b));
  };
  kiln::Callback cb = kiln::callbacks::LambdaCallback(h);
  EXPECT_EQ(cb.class_name(), "LambdaCallback");
  cb.call_hook("on_epoch_begin", 2);
  cb.call_hook("on_train_batch_end", 5, kiln::Logs().set("loss", 1.0));
  cb.call_hook("on_epoch_end", 2);  // no function: nothing
  EXPECT_EQ(trace, (std::vector<std::string>{"begin2", "batch5"}));
  expect_error([&] { cb.call_hook("on_train_batch_end", 6, kiln::Logs().set("loss", 100.0)); },
               KILN_STATUS_INTERNAL, {"LambdaCallback on_train_batch_end", "loss exploded"});
}

TEST(HppCallbacks, HistoryReadsItsRecord) {
  kiln::History h;
  EXPECT_EQ(h.class_name(), "History");
  EXPECT_TRUE(h.history().empty());
  EXPECT_TRUE(h.keys().empty());
  EXPECT_TRUE(h.epoch().empty());
  kiln::History not_history(kiln::Callback::create("ProgbarLogger").release());
  try {
    not_history.history();
    FAIL() << "expected kiln::Error";
  } catch (const kiln::Error &e) {
    EXPECT_EQ(e.code(), KILN_STATUS_FAILED_PRECONDITION);
  }
}

}  // namespace

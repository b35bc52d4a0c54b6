// ModelCheckpoint and BackupAndRestore (src/train/callbacks_checkpoint.h) and the Python
// str.format they name files with (src/train/python_format.h): formats checked against values
// Python printed; ModelCheckpoint's file names, per-batch counting across epochs, save_best_only
// with Keras 2's messages, and its errors; BackupAndRestore resuming an interrupted fit at the
// next epoch with weights bit-identical to an uninterrupted fit, and deleting its backup.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "bundle_test_util.h"
#include "core/rng.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "test_util.h"
#include "train/callbacks_checkpoint.h"
#include "train/checkpoint.h"
#include "train/model_training.h"
#include "train/progbar.h"
#include "train/python_format.h"
#include "train/saved_model.h"

namespace kiln::train {
namespace {

using testing::TempDir;

using layers::LayerPtr;
using testing::expect_error;
using testing::make;
using testing::make_typed;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- Python's format ----

TEST(PythonFormat, FloatsAsPythonFormatsThem) {
  struct Case {
    double v;
    const char *spec, *expected;
  };
  // Each expected string is what Python 3 printed for format(v, spec).
  const Case cases[] = {
      {1.0, ".3", "1.0"},
      {12.3, ".3", "12.3"},
      {123.0, ".3", "1.23e+02"},
      {100.0, ".3", "1e+02"},
      {0.0001, ".3", "0.0001"},
      {1e-05, ".3", "1e-05"},
      {-1234.5, "012,.1f", "-0,001,234.5"},
      {kNaN, "+f", "+nan"},
      {-kNaN, "f", "nan"},
      {kInf, "%", "inf%"},
      {0.5, "%", "50.000000%"},
      {-0.0, "z.1f", "0.0"},
      {-0.0001, "z.1f", "0.0"},
      {-0.0, "", "-0.0"},
      {1e+16, "", "1e+16"},
      {1e+16, ".3", "1e+16"},
      {1.5, "^9.2f", "  1.50   "},
      {1.5, "*<8", "1.5*****"},
      {1.5, "+", "+1.5"},
      {1.5, " ", " 1.5"},
      {-1.5, "=8", "-    1.5"},
      {1.0, "#.0f", "1."},
      {1.0, "#g", "1.00000"},
      {1.0, "g", "1"},
      {0.1, "#.3", "0.100"},
      {1234567.0, ",", "1,234,567.0"},
      {1234567.0, "_", "1_234_567.0"},
      {1.0, ".0", "1e+00"},
      {5.25, "n", "5.25"},
      {0.0, ".3", "0.0"},
      {2.5e-05, ".2", "2.5e-05"},
      {1e-05, "", "1e-05"},
      {1.0, ".1", "1e+00"},
      {9.99, ".2", "1e+01"},
      {0.00012345, ".3", "0.000123"},
      {-0.0, ".3", "-0.0"},
      {1.5, "0<6", "1.5000"},
      {1.5, "x=8", "xxxxx1.5"},
      {-1.5, "08", "-00001.5"},
      {1.5, "08_", "00_001.5"},
      {kInf, "08.2f", "00000inf"},
      {-kInf, "+.3", "-inf"},
      {kNaN, "E", "NAN"},
      {0.123456789, ".2f", "0.12"},
      {0.123456789, ".5f", "0.12346"},
      {1234.5678, "e", "1.234568e+03"},
      {1234.5678, ".3E", "1.235E+03"},
      {1234.5678, "G", "1234.57"},
      {1e-07, "g", "1e-07"},
      {123456789.0, "g", "1.23457e+08"},
      {0.1, "", "0.1"},
      {0.6666666666666666, "", "0.6666666666666666"},
      {0.07, ".2%", "7.00%"},
      {3.14159, "10.4f", "    3.1416"},
      {3.14159, "<10.2f", "3.14      "},
      {3.14159, "-^+10.2f", "--+3.14---"},
      {1e+22, "f", "10000000000000000000000.000000"},
      {1.5, "\xc3\xa9^7",
       "\xc3\xa9\xc3\xa9"
       "1.5\xc3\xa9\xc3\xa9"},
  };
  for (const Case &c : cases)
    EXPECT_EQ(python_format_float(c.v, c.spec), c.expected) << c.v << " '" << c.spec << "'";
}

TEST(PythonFormat, IntsAsPythonFormatsThem) {
  struct Case {
    int64_t v;
    const char *spec, *expected;
  };
  const Case cases[] = {
      {1234, "09,", "0,001,234"},
      {1234, "08,", "0,001,234"},
      {1234, "010,", "00,001,234"},
      {3, ".2f", "3.00"},
      {3, "e", "3.000000e+00"},
      {3, "g", "3"},
      {3, "%", "300.000000%"},
      {3, "", "3"},
      {3, "x", "3"},
      {255, "#x", "0xff"},
      {255, "#010x", "0x000000ff"},
      {123456789, "_x", "75b_cd15"},
      {5, "n", "5"},
      {5, "+d", "+5"},
      {5, " 5", "    5"},
      {1234, ",", "1,234"},
      {1234, "_b", "100_1101_0010"},
      {-5, "#x", "-0x5"},
      {7, "02d", "07"},
      {7, "03", "007"},
      {12, "02d", "12"},
      {-7, "03d", "-07"},
      {255, "X", "FF"},
      {8, "o", "10"},
      {8, "#o", "0o10"},
      {std::numeric_limits<int64_t>::min(), "d", "-9223372036854775808"},
      {42, "^6", "  42  "},
      {42, "*>6", "****42"},
      {-42, "=+6", "-   42"},
  };
  for (const Case &c : cases)
    EXPECT_EQ(python_format_int(c.v, c.spec), c.expected) << c.v << " '" << c.spec << "'";
}

TEST(PythonFormat, PatternsWithNamedFields) {
  const std::vector<FormatArg> args{FormatArg::of_int("epoch", 3), FormatArg::of_float("loss", 0.5),
                                    FormatArg::of_float("val_loss", 0.123456)};
  EXPECT_EQ(python_format("weights.{epoch:02d}-{val_loss:.2f}.ckpt", args), "weights.03-0.12.ckpt");
  EXPECT_EQ(python_format("m_{epoch}_{loss}", args), "m_3_0.5");
  EXPECT_EQ(python_format("{{epoch}}/{epoch:>4}", args), "{epoch}/   3");
  EXPECT_EQ(python_format("{epoch!r:>6}|{val_loss!s:.4}", args), "     3|0.12");
  EXPECT_EQ(python_format("plain", args), "plain");
  EXPECT_EQ(python_format("", args), "");
  // The first argument of a name wins (ModelCheckpoint puts epoch first).
  EXPECT_EQ(python_format("{epoch}", {FormatArg::of_int("epoch", 1), FormatArg::of_float("epoch", 9.0)}),
            "1");

  const Code bad = Code::kInvalidArgument;
  expect_error([&] { python_format("{acc:.2f}", args); }, bad, {"KeyError: 'acc'", "epoch, loss, val_loss"});
  expect_error([&] { python_format("{loss:d}", args); }, bad,
               {"Unknown format code 'd' for object of type 'float'"});
  expect_error([&] { python_format("{epoch:.2d}", args); }, bad, {"Precision not allowed"});
  expect_error([&] { python_format("{epoch:z}", args); }, bad, {"Negative zero coercion"});
  expect_error([&] { python_format("{epoch:,x}", args); }, bad, {"Cannot specify ','"});
  expect_error([&] { python_format("{epoch:s}", args); }, bad,
               {"Unknown format code 's' for object of type 'int'"});
  expect_error([&] { python_format("{loss:.}", args); }, bad, {"missing precision"});
  expect_error([&] { python_format("{loss:.2fx}", args); }, bad, {"Invalid format specifier"});
  expect_error([&] { python_format("{}", args); }, bad, {"positional fields"});
  expect_error([&] { python_format("{0}", args); }, bad, {"positional fields"});
  expect_error([&] { python_format("{loss.real}", args); }, bad, {"attribute and index access"});
  expect_error([&] { python_format("{loss[0]}", args); }, bad, {"attribute and index access"});
  expect_error([&] { python_format("{loss:{epoch}}", args); }, bad, {"nested fields"});
  expect_error([&] { python_format("{loss", args); }, bad, {"expected '}' before end of string"});
  expect_error([&] { python_format("a{", args); }, bad, {"Single '{'"});
  expect_error([&] { python_format("a}b", args); }, bad, {"Single '}'"});
  expect_error([&] { python_format("{loss!x}", args); }, bad, {"Unknown conversion specifier x"});
  expect_error([&] { python_format("{loss!r=}", args); }, bad, {"expected ':' after conversion specifier"});
  expect_error([&] { python_format("{loss!r:+}", args); }, bad, {"Sign not allowed in string"});
  expect_error([&] { python_format("{epoch:99999999}", args); }, bad, {"too large"});
  expect_error([&] { python_format("{epoch:c}", args); }, bad, {"'c'", "not supported"});
}

// ---- the callbacks ----

bool exists(const std::string &path) { return std::filesystem::exists(path); }

constexpr int64_t kN = 64, kF = 4, kC = 3;

// x: kN x kF; y: a class a Dense layer can learn.
struct Problem {
  Tensor x, y;
};

Problem problem() {
  const testing::ClassProblem c = testing::class_problem(kN, kF, 11u);
  return Problem{c.x, c.y};
}

// Sequential([Dense(8, relu), Dense(3, softmax)]), built, compiled with Adam (slots and an
// iteration count that a resume must restore) and sparse categorical crossentropy.
LayerPtr compiled_model() {
  auto dense = [](int64_t units, const char *activation) {
    Config d;
    d.set("units", units).set("activation", activation);
    Config ser;
    ser.set("class_name", "Dense").set("config", d);
    return ser;
  };
  Config c;
  c.set("layers", std::vector<Config>{dense(8, "relu"), dense(kC, "softmax")});
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, kF}});
  CompileOptions co;
  co.optimizer = make_optimizer("Adam", Config().set("learning_rate", 0.01));
  co.loss_names = {"sparse_categorical_crossentropy"};
  compile(m, co);
  return m;
}

std::vector<std::vector<float>> weights(const LayerPtr &m) {
  std::vector<std::vector<float>> out;
  for (const VariablePtr &v : m->variables()) {
    const Tensor t = v->peek();
    out.emplace_back(t.data<float>(), t.data<float>() + t.shape().num_elements());
  }
  return out;
}

bool bit_identical(const std::vector<std::vector<float>> &a, const std::vector<std::vector<float>> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

// fit(x, y, batch_size=16 (4 batches), epochs, shuffle=False, validation_split=0.25 when asked).
FitOptions fit_options(const Problem &p, int64_t epochs, std::vector<CallbackPtr> callbacks,
                       bool validation = false) {
  FitOptions f;
  f.x = {p.x};
  f.y = {p.y};
  f.epochs = epochs;
  f.batch_size = 16;
  f.verbose = 0;
  f.shuffle = false;
  f.callbacks = std::move(callbacks);
  if (validation) f.validation_split = 0.25;
  return f;
}

// Records the epochs fit runs, and fails (a bug in a callback, a crash) or stops at a given
// epoch and batch.
class Interrupter : public Callback {
 public:
  Interrupter(int64_t epoch, int64_t batch, bool stop = false)
      : Callback("Interrupter"), at_epoch_(epoch), at_batch_(batch), stop_(stop) {}
  void on_epoch_begin(int64_t epoch, Logs &) override {
    epoch_ = epoch;
    epochs_run.push_back(epoch);
  }
  void on_train_batch_begin(int64_t batch, Logs &) override {
    if (epoch_ != at_epoch_ || batch != at_batch_) return;
    if (!stop_) fail(Code::kInternal, "the machine went down");
  }
  void on_train_batch_end(int64_t batch, Logs &) override {
    if (stop_ && epoch_ == at_epoch_ && batch == at_batch_) training_state(*model())->stop_training = true;
  }
  std::vector<int64_t> epochs_run;

 private:
  int64_t at_epoch_, at_batch_;
  bool stop_;
  int64_t epoch_ = -1;
};

class CheckpointCallbacks : public ::testing::Test {
 protected:
  void SetUp() override {
    set_progress_sink([this](const std::string &s) { printed += s; });
    set_callback_warning_sink([this](const std::string &s) { warnings += s + "\n"; });
  }
  void TearDown() override {
    set_progress_sink(nullptr);
    set_callback_warning_sink(nullptr);
  }
  std::string printed, warnings;
  TempDir dir;
};

TEST_F(CheckpointCallbacks, ModelCheckpointSavesEachEpochUnderItsFormattedName) {
  set_global_seed(3);
  const Problem p = problem();
  LayerPtr m = compiled_model();
  ModelCheckpointOptions o;
  o.filepath = dir / "ckpt/weights.{epoch:02d}-{val_loss:.2f}";
  o.save_weights_only = true;
  o.verbose = 1;
  CallbackPtr mc = make_model_checkpoint(o);
  // Records the weights at each epoch end, after ModelCheckpoint saved them.
  std::vector<std::vector<std::vector<float>>> at_end;
  std::vector<double> val_losses;
  LambdaHooks hooks;
  hooks.on_epoch_end = [&](int64_t, Logs &logs) {
    at_end.push_back(weights(m));
    val_losses.push_back(*logs.get("val_loss"));
  };
  fit(m, fit_options(p, 2, {mc, make_lambda_callback(hooks)}, true));
  ASSERT_EQ(val_losses.size(), 2u);
  for (int64_t e = 0; e < 2; ++e) {
    const std::string path = dir / str_cat("ckpt/weights.0", e + 1, "-",
                                           python_format_float(val_losses[static_cast<size_t>(e)], ".2f"));
    ASSERT_TRUE(exists(path + ".index")) << path;
    EXPECT_TRUE(exists(path + ".data-00000-of-00001"));
    EXPECT_NE(printed.find(str_cat("\nEpoch ", e + 1, ": saving model to ", path, "\n")), std::string::npos)
        << printed;
    // The file holds that epoch's weights (and the optimizer: the model is compiled).
    set_global_seed(4);
    LayerPtr fresh = compiled_model();
    load_weights(fresh, path)
        .assert_existing_objects_matched()
        .expect_partial();  // slots come with the first step
    EXPECT_TRUE(bit_identical(weights(fresh), at_end[static_cast<size_t>(e)])) << "epoch " << e;
  }
  EXPECT_TRUE(exists(dir / "ckpt/checkpoint"));  // the state file names the newest, as save_weights does
  EXPECT_EQ(mc->attributes().get_int("epochs_since_last_save"), 0);
}

TEST_F(CheckpointCallbacks, ModelCheckpointCountsBatchesAcrossEpochs) {
  const Problem p = problem();
  LayerPtr m = compiled_model();
  ModelCheckpointOptions o;
  o.filepath = dir / "b{epoch}-{batch}";
  o.save_freq = 3;
  fit(m, fit_options(p, 3, {make_model_checkpoint(o)}));
  // 4 batches an epoch: the 3rd, 6th, 9th and 12th batch overall.
  // save_weights_only false: each save is model.save's SavedModel directory.
  for (const char *name : {"b1-3", "b2-2", "b3-1", "b3-4"})
    EXPECT_TRUE(exists(dir / name + "/saved_model.pb")) << name;
  int saves = 0;
  for (const auto &e : std::filesystem::directory_iterator(dir.path()))
    saves += std::filesystem::exists(e.path() / "saved_model.pb") ? 1 : 0;
  EXPECT_EQ(saves, 4);
}

TEST_F(CheckpointCallbacks, ModelCheckpointSaveBestOnlyPrintsAsKeras2) {
  LayerPtr m = compiled_model();
  ModelCheckpointOptions o;
  o.filepath = dir / "best";
  o.save_best_only = true;
  o.verbose = 1;
  CallbackPtr mc = make_model_checkpoint(o);
  EXPECT_TRUE(std::isinf(mc->attributes().get_float("best")));
  CallbackList list({mc}, false, false, m, CallbackParams());
  Logs begin;
  list.on_train_begin(begin);
  const double values[] = {0.5, 0.7, 0.25};
  for (int64_t e = 0; e < 3; ++e) {
    Logs logs;
    list.on_epoch_begin(e, logs);
    logs.set("loss", 1.0);
    logs.set("val_loss", values[e]);
    list.on_epoch_end(e, logs);
    if (e == 0) {
      EXPECT_TRUE(exists(dir / "best/saved_model.pb"));
    }
  }
  const std::string path = dir / "best";
  EXPECT_EQ(printed,
            "\nEpoch 1: val_loss improved from inf to 0.50000, saving model to " + path +
                "\n\nEpoch 2: val_loss did not improve from 0.50000\n\nEpoch 3: val_loss improved from "
                "0.50000 to 0.25000, saving model to " +
                path + "\n");
  EXPECT_DOUBLE_EQ(mc->attributes().get_float("best"), 0.25);
  EXPECT_EQ(mc->attributes().get_string("last_saved_filepath"), path);

  // A missing monitor warns and saves nothing; mode "max" with a threshold.
  printed.clear();
  o.filepath = dir / "acc{epoch}";
  o.monitor = "val_accuracy";
  o.mode = "max";
  o.initial_value_threshold = 0.6;
  CallbackPtr acc = make_model_checkpoint(o);
  CallbackList acc_list({acc}, false, false, m, CallbackParams());
  for (int64_t e = 0; e < 3; ++e) {
    Logs logs;
    logs.set("loss", 1.0);
    if (e > 0) logs.set("val_accuracy", e == 1 ? 0.5 : 0.75);
    acc_list.on_epoch_end(e, logs);
  }
  EXPECT_EQ(warnings, "Can save best model only with val_accuracy available, skipping.\n");
  EXPECT_FALSE(exists(dir / "acc1"));
  EXPECT_FALSE(exists(dir / "acc2"));  // 0.5 is below the threshold
  EXPECT_TRUE(exists(dir / "acc3/saved_model.pb"));
  EXPECT_NE(printed.find("val_accuracy improved from 0.60000 to 0.75000"), std::string::npos) << printed;
}

TEST_F(CheckpointCallbacks, ModelCheckpointErrors) {
  LayerPtr m = compiled_model();
  auto run_epoch = [&](const std::string &filepath, bool weights_only = false) {
    ModelCheckpointOptions o;
    o.filepath = filepath;
    o.save_weights_only = weights_only;
    CallbackList list({make_model_checkpoint(o)}, false, false, m, CallbackParams());
    Logs logs;
    logs.set("loss", 0.5);
    list.on_epoch_end(0, logs);
  };
  const Code bad = Code::kInvalidArgument;
  // Keras's KeyError: a name the logs lack; {batch} exists only in per-batch saves.
  expect_error([&] { run_epoch(dir / "w{val_loss:.2f}"); }, bad,
               {"failed to format this callback filepath", "KeyError: 'val_loss'", "epoch, loss"});
  expect_error([&] { run_epoch(dir / "w{batch}"); }, bad, {"KeyError: 'batch'"});
  expect_error([&] { run_epoch(dir / "w{loss:d}"); }, bad, {"Unknown format code 'd'"});
  expect_error([&] { run_epoch(dir.path(), true); }, bad, {"non-directory filepath", dir.path()});
  // HDF5 and .keras files are refused when the callback is made, as model.save refuses them.
  for (const char *name : {"model_{epoch}.keras", "w.h5", "w.hdf5"})
    expect_error([&] { run_epoch(dir / name); }, Code::kUnimplemented, {"HDF5 or .keras", name});
  // A SavedModel is a directory, but kiln does not replace one of other files.
  std::filesystem::create_directories(dir / "other");
  { std::ofstream(dir / "other/notes.txt") << "mine"; }
  expect_error([&] { run_epoch(dir / "other"); }, Code::kFailedPrecondition, {"is not a SavedModel"});

  const Code cfg = Code::kInvalidArgument;
  expect_error([] { create_callback("ModelCheckpoint", Config()); }, cfg, {"'filepath' is required"});
  expect_error(
      [] { create_callback("ModelCheckpoint", Config().set("filepath", "w").set("save_freq", "batch")); },
      cfg, {"unrecognized save_freq 'batch'"});
  expect_error(
      [] { create_callback("ModelCheckpoint", Config().set("filepath", "w").set("save_freq", int64_t{0})); },
      cfg, {"save_freq is 0"});
  expect_error(
      [] { create_callback("ModelCheckpoint", Config().set("filepath", "w").set("save_freq", false)); }, cfg,
      {"save_freq is false"});
  expect_error([] { create_callback("ModelCheckpoint", Config().set("filepath", "w").set("mode", "up")); },
               cfg, {"mode 'up' is unknown"});
  expect_error(
      [] { create_callback("ModelCheckpoint", Config().set("filepath", "w").set("period", int64_t{2})); },
      cfg, {"period"});
  // mode "auto" needs a direction only to compare.
  expect_error(
      [] {
        create_callback(
            "ModelCheckpoint",
            Config().set("filepath", "w").set("monitor", "val_mystery").set("save_best_only", true));
      },
      cfg, {"cannot tell whether it should be maximized or minimized"});
  EXPECT_NO_THROW(
      create_callback("ModelCheckpoint", Config().set("filepath", "w").set("monitor", "val_mystery")));
  // By name, with Keras's keys.
  CallbackPtr byname = create_callback("ModelCheckpoint", Config()
                                                              .set("filepath", dir / "n{epoch}")
                                                              .set("monitor", "loss")
                                                              .set("save_freq", "epoch")
                                                              .set("save_best_only", true)
                                                              .set("initial_value_threshold", 2.0));
  EXPECT_EQ(byname->class_name(), "ModelCheckpoint");
  EXPECT_DOUBLE_EQ(byname->attributes().get_float("best"), 2.0);
}

// The test the brief asks for: a fit of 3 epochs dies in its second epoch; a fresh model and
// optimizer with the same BackupAndRestore continue at epoch 1 (Keras's second) and end with the
// weights of an uninterrupted 3-epoch fit, bit for bit.
TEST_F(CheckpointCallbacks, BackupAndRestoreResumesAnInterruptedFitBitForBit) {
  const Problem p = problem();
  const std::string backup = dir / "backup";
  set_global_seed(42);
  LayerPtr straight = compiled_model();
  fit(straight, fit_options(p, 3, {}));
  const auto expected = weights(straight);

  set_global_seed(42);
  LayerPtr first = compiled_model();
  BackupAndRestoreOptions bo;
  bo.backup_dir = backup;
  auto crash = std::make_shared<Interrupter>(1, 2);
  expect_error(
      [&] {
        fit(first, fit_options(p, 3, {make_backup_and_restore(bo), crash}));
      },
      Code::kInternal, {"the machine went down"});
  EXPECT_EQ(crash->epochs_run, (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(exists(backup + "/chief/checkpoint"));  // not deleted: fit did not complete
  EXPECT_TRUE(exists(backup + "/chief/ckpt-1.index"));

  set_global_seed(42);
  LayerPtr second = compiled_model();  // fresh weights and a fresh Adam
  auto log = std::make_shared<Interrupter>(-1, -1);
  CallbackPtr bar = make_backup_and_restore(bo);
  std::shared_ptr<History> h = fit(second, fit_options(p, 3, {bar, log}));
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(log->epochs_run, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(bar->attributes().get_int("resumed_epoch"), 1);
  EXPECT_TRUE(bit_identical(weights(second), expected));
  EXPECT_EQ(training_state(*second)->optimizer->iterations(), 12);  // Adam's step count came back too
  EXPECT_FALSE(exists(backup));                                     // completed: the backup is gone
}

// A fit stopped by a callback (stop_training, as TerminateOnNaN) completes, so with
// delete_checkpoint=false the backup stays and the next fit starts after its epoch; a backup
// that covers every epoch leaves nothing to run.
TEST_F(CheckpointCallbacks, BackupAndRestoreKeepsTheBackupWhenAskedAndSkipsFinishedEpochs) {
  const Problem p = problem();
  BackupAndRestoreOptions bo;
  bo.backup_dir = dir / "keep";
  bo.delete_checkpoint = false;
  LayerPtr m = compiled_model();
  auto stop = std::make_shared<Interrupter>(0, 3, /*stop=*/true);
  fit(m, fit_options(p, 4, {make_backup_and_restore(bo), stop}));
  EXPECT_EQ(stop->epochs_run, (std::vector<int64_t>{0}));
  EXPECT_TRUE(exists(bo.backup_dir + "/chief/ckpt-1.index"));

  auto log = std::make_shared<Interrupter>(-1, -1);
  std::shared_ptr<History> h = fit(compiled_model(), fit_options(p, 4, {make_backup_and_restore(bo), log}));
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{1, 2, 3}));
  // max_to_keep 1: the newest backup alone, numbered on from the restored save_counter.
  EXPECT_FALSE(exists(bo.backup_dir + "/chief/ckpt-1.index"));
  EXPECT_TRUE(exists(bo.backup_dir + "/chief/ckpt-4.index"));

  auto none = std::make_shared<Interrupter>(-1, -1);
  h = fit(compiled_model(), fit_options(p, 4, {make_backup_and_restore(bo), none}));
  EXPECT_TRUE(h->epoch.empty());
  EXPECT_TRUE(none->epochs_run.empty());
}

// save_freq in batches (4 a epoch here): a backup of an epoch's last batch resumes at the next
// epoch, bit for bit; one from the middle of an epoch runs that epoch again from its first batch.
TEST_F(CheckpointCallbacks, BackupAndRestoreEveryNBatches) {
  const Problem p = problem();
  set_global_seed(7);
  LayerPtr straight = compiled_model();
  fit(straight, fit_options(p, 3, {}));
  const auto expected = weights(straight);

  BackupAndRestoreOptions bo;
  bo.backup_dir = dir / "batches";
  bo.save_freq = 2;  // after batches 1 and 3 of each epoch
  set_global_seed(7);
  expect_error(
      [&] {
        fit(compiled_model(),
            fit_options(p, 3, {make_backup_and_restore(bo), std::make_shared<Interrupter>(1, 0)}));
      },
      Code::kInternal, {"the machine went down"});
  set_global_seed(7);
  LayerPtr resumed = compiled_model();
  std::shared_ptr<History> h = fit(resumed, fit_options(p, 3, {make_backup_and_restore(bo)}));
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(bit_identical(weights(resumed), expected));

  // Dies at batch 2 of epoch 1: the backup is of batch 1, so epoch 1 runs again.
  expect_error(
      [&] {
        fit(compiled_model(),
            fit_options(p, 3, {make_backup_and_restore(bo), std::make_shared<Interrupter>(1, 2)}));
      },
      Code::kInternal, {"the machine went down"});
  auto log = std::make_shared<Interrupter>(-1, -1);
  h = fit(compiled_model(), fit_options(p, 3, {make_backup_and_restore(bo), log}));
  EXPECT_EQ(log->epochs_run, (std::vector<int64_t>{1, 2}));
}

TEST_F(CheckpointCallbacks, BackupAndRestoreErrors) {
  const Problem p = problem();
  BackupAndRestoreOptions bo;
  bo.backup_dir = dir / "errors";
  // An unbuilt model (Keras 3's ValueError): its weights could not take the backup.
  Config dense;
  dense.set("units", kC);
  Config ser;
  ser.set("class_name", "Dense").set("config", dense);
  LayerPtr unbuilt = layers::create_layer("Sequential", Config().set("layers", std::vector<Config>{ser}));
  CompileOptions mse;
  mse.optimizer_name = "sgd";
  mse.loss_names = {"mse"};  // (fit builds a model early to check sparse labels)
  compile(unbuilt, mse);
  FitOptions f = fit_options(p, 1, {make_backup_and_restore(bo)});
  f.y = {make(Shape{kN, kC}, std::vector<float>(kN * kC, 0.0f))};
  expect_error([&] { fit(unbuilt, f); }, Code::kFailedPrecondition, {"must be built before you call fit()"});
  CompileOptions co;
  co.optimizer_name = "sgd";
  co.loss_names = {"sparse_categorical_crossentropy"};

  // A backup of another architecture is refused, naming the mismatch, before any epoch runs.
  expect_error(
      [&] {
        fit(compiled_model(),
            fit_options(p, 3, {make_backup_and_restore(bo), std::make_shared<Interrupter>(1, 0)}));
      },
      Code::kInternal, {"the machine went down"});
  Config wide;
  wide.set("units", int64_t{5}).set("activation", "relu");
  Config d2;
  d2.set("units", kC);
  Config s1, s2;
  s1.set("class_name", "Dense").set("config", wide);
  s2.set("class_name", "Dense").set("config", d2);
  LayerPtr other = layers::create_layer("Sequential", Config().set("layers", std::vector<Config>{s1, s2}));
  other->build({{-1, kF}});
  compile(other, co);
  auto log = std::make_shared<Interrupter>(-1, -1);
  expect_error(
      [&] {
        fit(other, fit_options(p, 3, {make_backup_and_restore(bo), log}));
      },
      Code::kInvalidArgument, {"does not fit this model", "shape [4, 5]"});
  EXPECT_TRUE(log->epochs_run.empty());

  const Code cfg = Code::kInvalidArgument;
  expect_error([] { create_callback("BackupAndRestore", Config()); }, cfg, {"'backup_dir' is required"});
  expect_error([] { create_callback("BackupAndRestore", Config().set("backup_dir", "")); }, cfg,
               {"backup_dir is empty"});
  expect_error(
      [] { create_callback("BackupAndRestore", Config().set("backup_dir", "b").set("save_freq", "step")); },
      cfg, {"unrecognized save_freq 'step'"});
  expect_error(
      [] {
        create_callback("BackupAndRestore", Config().set("backup_dir", "b").set("save_freq", int64_t{-3}));
      },
      cfg, {"save_freq is -3"});
  expect_error(
      [] {
        create_callback("BackupAndRestore",
                        Config().set("backup_dir", "b").set("save_before_preemption", true));
      },
      cfg, {"save_before_preemption"});
  expect_error(
      [] {
        create_callback("BackupAndRestore", Config().set("backup_dir", "b").set("double_checkpoint", true));
      },
      cfg, {"double_checkpoint"});
  CallbackPtr never = create_callback(
      "BackupAndRestore",
      Config().set("backup_dir", dir / "never").set("save_freq", false).set("delete_checkpoint", false));
  fit(compiled_model(), fit_options(p, 2, {never}));
  EXPECT_FALSE(exists(dir / "never"));
}

}  // namespace
}  // namespace kiln::train

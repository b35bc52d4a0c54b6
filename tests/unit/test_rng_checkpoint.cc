// The global random state in checkpoints (issue 8's exact resume): core/rng.h's snapshot and
// restore give back the draws that followed the snapshot; make_global_rng_trackable saves the
// state as one int64 [1 + k, 2] value under `<name>/_state-<k>` and restores it whatever the live
// k; training with Dropout (unseeded and seeded) and fit's shuffle, saved after N epochs with the
// model and its optimizer, then restored into fresh objects after a different seed — in this
// process and in a fresh one (this binary run again) — continues bit for bit, weights, slots,
// iterations and the random state alike; BackupAndRestore resumes such a fit bit for bit too, and
// still restores a backup without the random state (Keras's).
#include <gtest/gtest.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bundle_test_util.h"
#include "core/rng.h"
#include "core/threads.h"
#include "io/bundle.h"
#include "layers/layer.h"
#include "model_test_util.h"
#include "test_util.h"
#include "train/callbacks_checkpoint.h"
#include "train/checkpoint.h"
#include "train/model_training.h"
#include "train/training_state.h"

extern char **environ;

namespace kiln::train {
namespace {

using testing::TempDir;

using layers::LayerPtr;
using testing::expect_error;
using testing::serialized_layer;

constexpr const char *kChildDirEnv = "KILN_RNG_RESUME_DIR";
constexpr const char *kChildThreadsEnv = "KILN_RNG_RESUME_THREADS";
constexpr int64_t kSamples = 40, kFeatures = 5, kClasses = 3;
constexpr int64_t kN = 2, kM = 2;  // epochs before and after the save

// Dense(8, relu), Dropout(0.3) (unseeded: the global sequence), Dropout(0.25, seed=11) (op seed
// 11's call counter), Dense(3, softmax); built, compiled with Adam (slots, iterations).
LayerPtr compiled_model() {
  Config c;
  c.set("layers", std::vector<Config>{
                      serialized_layer("Dense", Config().set("units", int64_t{8}).set("activation", "relu")),
                      serialized_layer("Dropout", Config().set("rate", 0.3)),
                      serialized_layer("Dropout", Config().set("rate", 0.25).set("seed", int64_t{11})),
                      serialized_layer("Dense", Config().set("units", kClasses).set("activation", "softmax")),
                  });
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, kFeatures}});
  CompileOptions co;
  co.optimizer = make_optimizer("Adam", Config().set("learning_rate", 0.01));
  co.loss_names = {"sparse_categorical_crossentropy"};
  compile(m, co);
  return m;
}

// Fixed data (a std::mt19937, the same in every process), labels from the features.
struct Problem {
  Tensor x, y;
};
Problem problem() {
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xs(static_cast<size_t>(kSamples * kFeatures));
  for (float &v : xs) v = u(gen);
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < kSamples; ++i) {
    const float *r = &xs[static_cast<size_t>(i * kFeatures)];
    ys.push_back(r[0] > r[1] ? (r[2] > r[3] ? 0 : 1) : 2);
  }
  return {testing::make(Shape{kSamples, kFeatures}, xs), testing::make_typed<int64_t>(Shape{kSamples}, ys)};
}

// fit(x, y, batch_size=8 (5 batches), epochs, shuffle=True).
FitOptions fit_options(const Problem &p, int64_t epochs, std::vector<CallbackPtr> callbacks = {}) {
  FitOptions f;
  f.x = {p.x};
  f.y = {p.y};
  f.epochs = epochs;
  f.batch_size = 8;
  f.verbose = 0;
  f.shuffle = true;
  f.callbacks = std::move(callbacks);
  return f;
}

using testing::same_bits;

// Everything training changes: the model's variables, the optimizer's (iterations, slots), and
// the global random state.
struct TrainingSnapshot {
  std::vector<Tensor> model, optimizer;
  GlobalRngState rng;
};
TrainingSnapshot snapshot(const LayerPtr &m) {
  TrainingSnapshot s;
  for (const VariablePtr &v : m->variables()) s.model.push_back(v->peek());
  for (const VariablePtr &v : training_state(*m)->optimizer->variables()) s.optimizer.push_back(v->peek());
  s.rng = global_rng_state();
  return s;
}

bool same_state(const GlobalRngState &a, const GlobalRngState &b) {
  return a.seed == b.seed && a.next_unseeded == b.next_unseeded && a.op_seed_calls == b.op_seed_calls;
}

void expect_identical(const TrainingSnapshot &got, const TrainingSnapshot &want) {
  ASSERT_EQ(got.model.size(), want.model.size());
  for (size_t i = 0; i < got.model.size(); ++i)
    EXPECT_TRUE(same_bits(got.model[i], want.model[i])) << "weight " << i;
  ASSERT_EQ(got.optimizer.size(), want.optimizer.size());
  for (size_t i = 0; i < got.optimizer.size(); ++i)
    EXPECT_TRUE(same_bits(got.optimizer[i], want.optimizer[i])) << "optimizer variable " << i;
  EXPECT_TRUE(same_state(got.rng, want.rng));
}

bool same_weights(const TrainingSnapshot &a, const TrainingSnapshot &b) {
  if (a.model.size() != b.model.size()) return false;
  for (size_t i = 0; i < a.model.size(); ++i)
    if (!same_bits(a.model[i], b.model[i])) return false;
  return true;
}

Checkpoint model_and_rng(const LayerPtr &m) {
  return Checkpoint({{"model", make_trackable(m)}, {"rng", make_global_rng_trackable()}});
}

// Draws that move every part of the state away from a run's: another seed, unseeded draws, and
// calls with op seeds the run uses (11) and does not.
void disturb_rng() {
  set_global_seed(987654321);
  for (int i = 0; i < 5; ++i) resolve_op_seed(-1);
  for (int64_t s : {11, 11, 3, 40}) resolve_op_seed(s);
}

// The uninterrupted run: N epochs, a save of the model (with its optimizer) and the random state
// as dir/ckpt-1, M more epochs, and a write of the same objects as dir/expected. Returns the
// state at the end.
TrainingSnapshot train_save_train(const Problem &p, const std::string &dir) {
  set_global_seed(3);
  LayerPtr m = compiled_model();
  fit(m, fit_options(p, kN));
  Checkpoint ckpt = model_and_rng(m);
  EXPECT_EQ(ckpt.save(dir + "/ckpt"), dir + "/ckpt-1");
  fit(m, fit_options(p, kM));
  const TrainingSnapshot s = snapshot(m);
  ckpt.write(dir + "/expected");
  return s;
}

// ------------------------------------------------------------------ the state itself

TEST(GlobalRngState, ARestoredSnapshotDrawsWhatFollowedIt) {
  set_global_seed(17);
  for (int i = 0; i < 3; ++i) resolve_op_seed(-1);
  resolve_op_seed(9);
  resolve_op_seed(2);
  resolve_op_seed(9);
  const GlobalRngState s = global_rng_state();
  EXPECT_EQ(s.seed, 17u);
  EXPECT_EQ(s.next_unseeded, 3u);
  EXPECT_EQ(s.op_seed_calls, (std::vector<std::pair<int64_t, uint64_t>>{{2, 1}, {9, 2}}));  // ascending

  std::vector<uint64_t> after;
  for (int64_t op : {-1, 9, 2, 5, -1}) after.push_back(resolve_op_seed(op));
  disturb_rng();
  set_global_rng_state(s);
  EXPECT_TRUE(same_state(global_rng_state(), s));
  std::vector<uint64_t> again;
  for (int64_t op : {-1, 9, 2, 5, -1}) again.push_back(resolve_op_seed(op));
  EXPECT_EQ(again, after);
}

TEST(GlobalRngState, RejectsNegativeAndRepeatedOpSeedsChangingNothing) {
  set_global_seed(4);
  resolve_op_seed(1);
  const GlobalRngState before = global_rng_state();
  GlobalRngState bad;
  bad.seed = 99;
  bad.op_seed_calls = {{-1, 2}};
  expect_error([&] { set_global_rng_state(bad); }, Code::kInvalidArgument, {"op seed -1", ">= 0"});
  bad.op_seed_calls = {{3, 1}, {3, 2}};
  expect_error([&] { set_global_rng_state(bad); }, Code::kInvalidArgument, {"op seed 3", "twice"});
  EXPECT_TRUE(same_state(global_rng_state(), before));
}

// ------------------------------------------------------------------ in a checkpoint

TEST(GlobalRngCheckpoint, SavesOneInt64ValueNamedByTheOpSeedCount) {
  TempDir dir;
  set_global_seed(77);
  for (int i = 0; i < 3; ++i) resolve_op_seed(-1);
  resolve_op_seed(11);
  resolve_op_seed(11);
  resolve_op_seed(4);
  Checkpoint ckpt({{"rng", make_global_rng_trackable()}});
  const std::string path = ckpt.write(dir / "w");
  io::BundleReader r(path);
  std::vector<std::string> keys;
  for (const io::BundleEntry &e : r.entries()) keys.push_back(e.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"_CHECKPOINTABLE_OBJECT_GRAPH",
                                            "rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE"}));
  const Tensor t = r.read("rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(t.dtype(), DType::kInt64);
  EXPECT_EQ(testing::values<int64_t>(t), (std::vector<int64_t>{77, 3, 4, 1, 11, 2}));

  // 64-bit seeds and counts keep their bits.
  set_global_seed(~uint64_t{0} - 5);
  const GlobalRngState big = global_rng_state();
  ckpt.write(dir / "big");
  set_global_seed(1);
  ckpt.read(dir / "big").assert_consumed();
  EXPECT_EQ(global_seed(), ~uint64_t{0} - 5);
  EXPECT_TRUE(same_state(global_rng_state(), big));
}

TEST(GlobalRngCheckpoint, RestoresWhateverTheLiveOpSeedCount) {
  TempDir dir;
  set_global_seed(21);
  resolve_op_seed(-1);
  resolve_op_seed(6);
  Checkpoint ckpt({{"rng", make_global_rng_trackable()}});
  const std::string path = ckpt.save(dir / "ckpt");
  const GlobalRngState saved = global_rng_state();
  std::vector<uint64_t> after;
  for (int64_t op : {6, -1, 8}) after.push_back(resolve_op_seed(op));

  // More op seeds live than saved (k = 4 against 1), then none at all.
  for (int64_t s : {1, 2, 3}) resolve_op_seed(s);
  ckpt.restore(path).assert_consumed();
  EXPECT_TRUE(same_state(global_rng_state(), saved));
  set_global_seed(5);
  Checkpoint other({{"rng", make_global_rng_trackable()}});  // a fresh object on the same state
  other.restore(dir.path()).assert_consumed();
  EXPECT_TRUE(same_state(global_rng_state(), saved));
  std::vector<uint64_t> again;
  for (int64_t op : {6, -1, 8}) again.push_back(resolve_op_seed(op));
  EXPECT_EQ(again, after);

  // Tracked twice, it is one object (one node, one value).
  Checkpoint twice({{"a", make_global_rng_trackable()}, {"b", make_global_rng_trackable()}});
  io::BundleReader r(twice.write(dir / "twice"));
  EXPECT_EQ(r.entries().size(), 2u);  // the value and the object graph
}

// Keras's keys stay Keras's: nothing of the random state in a model's or optimizer's checkpoint
// unless it is tracked.
TEST(GlobalRngCheckpoint, IsNeverPartOfAModelsKeys) {
  TempDir dir;
  set_global_seed(2);
  LayerPtr m = compiled_model();
  fit(m, fit_options(problem(), 1));
  save_weights(m, dir / "weights");
  Checkpoint ckpt(
      {{"model", make_trackable(m)}, {"optimizer", make_trackable(training_state(*m)->optimizer)}});
  ckpt.write(dir / "ckpt");
  for (const char *prefix : {"weights", "ckpt"}) {
    const io::BundleReader r(dir / prefix);
    for (const io::BundleEntry &e : r.entries())
      EXPECT_EQ(e.key.find("_state"), std::string::npos) << prefix << ": " << e.key;
  }
}

// A save while other threads draw takes one consistent snapshot (the edge's k, the value's shape
// and its rows agree), and a restore lands whole.
TEST(GlobalRngCheckpoint, SavesWhileOtherThreadsDraw) {
  TempDir dir;
  set_global_seed(8);
  std::atomic<bool> stop{false};
  std::vector<std::thread> drawers;
  for (int t = 0; t < 3; ++t)
    drawers.emplace_back([&stop, t] {
      int64_t i = 0;
      while (!stop.load()) resolve_op_seed(t == 0 ? -1 : (i++ % 64) + 100 * t);
    });
  Checkpoint ckpt({{"rng", make_global_rng_trackable()}});
  for (int i = 0; i < 40; ++i) EXPECT_NO_THROW(ckpt.write(dir / "w"));
  stop = true;
  for (std::thread &t : drawers) t.join();
  ckpt.read(dir / "w").assert_consumed();
  const GlobalRngState s = global_rng_state();
  EXPECT_EQ(s.seed, 8u);
  EXPECT_LE(s.op_seed_calls.size(), 128u);
}

// ------------------------------------------------------------------ exact resume

// The test, in one process: the resumed objects are new, made after another seed and
// other draws, as in a fresh process; without the random state tracked the run differs.
TEST(GlobalRngResume, DropoutAndShuffledFitResumeBitForBit) {
  TempDir dir;
  const Problem p = problem();
  const TrainingSnapshot expected = train_save_train(p, dir.path());

  disturb_rng();
  LayerPtr m = compiled_model();
  Checkpoint ckpt = model_and_rng(m);
  LoadStatus status = ckpt.restore(dir.path());
  status.assert_existing_objects_matched();  // Adam's slots land at its first step
  fit(m, fit_options(p, kM));
  status.assert_consumed();
  expect_identical(snapshot(m), expected);
  EXPECT_EQ(training_state(*m)->optimizer->iterations(), (kN + kM) * 5);

  // The same restore without the random state: the model and optimizer come back, the masks and
  // shuffles after it do not.
  disturb_rng();
  LayerPtr without = compiled_model();
  Checkpoint model_only({{"model", make_trackable(without)}});
  model_only.restore(dir.path()).expect_partial();
  fit(without, fit_options(p, kM));
  EXPECT_FALSE(same_weights(snapshot(without), expected));
}

// The child half of the cross-process test below: runs only when that test starts this binary
// with KILN_RNG_RESUME_DIR set. A fresh process: restores dir/ckpt-1 into new objects, trains M
// epochs, and writes everything to dir/child for the parent to compare.
TEST(GlobalRngResumeChild, RestoresTheParentsCheckpointAndTrains) {
  const char *dir = std::getenv(kChildDirEnv);
  const char *threads = std::getenv(kChildThreadsEnv);
  if (!dir || !threads) GTEST_SKIP() << "runs as the child of GlobalRngResume.InAFreshProcessBitForBit";
  set_num_threads(std::atoi(threads));
  LayerPtr m = compiled_model();  // draws its initial weights from this process's sequence
  Checkpoint ckpt = model_and_rng(m);
  LoadStatus status = ckpt.restore(std::string(dir) + "/ckpt-1");
  fit(m, fit_options(problem(), kM));
  status.assert_consumed();
  ckpt.write(std::string(dir) + "/child");
}

TEST(GlobalRngResume, InAFreshProcessBitForBit) {
  TempDir dir;
  train_save_train(problem(), dir.path());

  // This binary again, told by its environment to be the child (prepared before spawning).
  std::vector<std::string> env_strings;
  for (char **e = environ; *e; ++e)
    if (std::strncmp(*e, "KILN_RNG_RESUME_", 16) != 0) env_strings.push_back(*e);
  env_strings.push_back(std::string(kChildDirEnv) + "=" + dir.path());
  env_strings.push_back(std::string(kChildThreadsEnv) + "=" + std::to_string(num_threads()));
  std::vector<char *> envp;
  for (std::string &e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=GlobalRngResumeChild.*";
  char *argv[] = {exe.data(), filter.data(), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child failed (status " << status << ")";

  // Every value the child wrote (weights, slots, iterations, save counter, random state) is the
  // uninterrupted run's, bit for bit.
  io::BundleReader want(dir / "expected"), got(dir / "child");
  std::vector<std::string> want_keys, got_keys;
  for (const io::BundleEntry &e : want.entries()) want_keys.push_back(e.key);
  for (const io::BundleEntry &e : got.entries()) got_keys.push_back(e.key);
  ASSERT_EQ(got_keys, want_keys);
  int compared = 0;
  for (const std::string &k : want_keys) {
    if (k == "_CHECKPOINTABLE_OBJECT_GRAPH") continue;
    EXPECT_TRUE(same_bits(got.read(k), want.read(k))) << k;
    ++compared;
  }
  EXPECT_GT(compared, 10);
}

// ------------------------------------------------------------------ BackupAndRestore

// Records the epochs fit runs and fails in a given epoch and batch (a crash).
class Crash : public Callback {
 public:
  Crash(int64_t epoch, int64_t batch) : Callback("Crash"), at_epoch_(epoch), at_batch_(batch) {}
  void on_epoch_begin(int64_t epoch, Logs &) override { epoch_ = epoch; }
  void on_train_batch_begin(int64_t batch, Logs &) override {
    if (epoch_ == at_epoch_ && batch == at_batch_) fail(Code::kInternal, "the machine went down");
  }

 private:
  int64_t at_epoch_, at_batch_, epoch_ = -1;
};

// Beyond Keras's promise: a shuffled fit with Dropout that dies in its third epoch, resumed by
// fresh objects after other draws, ends bit for bit where the uninterrupted fit ends.
TEST(GlobalRngResume, BackupAndRestoreResumesShuffledDropoutFitBitForBit) {
  TempDir dir;
  const Problem p = problem();
  set_global_seed(42);
  LayerPtr straight = compiled_model();
  fit(straight, fit_options(p, 4));
  const TrainingSnapshot expected = snapshot(straight);

  BackupAndRestoreOptions bo;
  bo.backup_dir = dir / "backup";
  set_global_seed(42);
  expect_error(
      [&] {
        fit(compiled_model(),
            fit_options(p, 4, {make_backup_and_restore(bo), std::make_shared<Crash>(2, 3)}));
      },
      Code::kInternal, {"the machine went down"});
  // The backup holds the random state beside Keras's keys.
  bool has_rng = false;
  const io::BundleReader backup(bo.backup_dir + "/chief/ckpt-2");
  for (const io::BundleEntry &e : backup.entries()) has_rng = has_rng || e.key.rfind("rng/_state-", 0) == 0;
  EXPECT_TRUE(has_rng);

  disturb_rng();
  LayerPtr resumed = compiled_model();
  CallbackPtr bar = make_backup_and_restore(bo);
  std::shared_ptr<History> h = fit(resumed, fit_options(p, 4, {bar}));
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{2, 3}));
  expect_identical(snapshot(resumed), expected);
}

// A backup without the random state (as Keras writes it: the model and the two counters)
// restores the rest and resumes after its epoch.
TEST(GlobalRngResume, BackupAndRestoreTakesABackupWithoutTheRandomState) {
  TempDir dir;
  const Problem p = problem();
  set_global_seed(1);
  LayerPtr first = compiled_model();
  fit(first, fit_options(p, 1));
  auto epoch = std::make_shared<autodiff::Variable>("ckpt_saved_epoch", Tensor::scalar<int64_t>(0), false);
  auto batch = std::make_shared<autodiff::Variable>("ckpt_saved_batch", Tensor::scalar<int64_t>(0), false);
  auto keras = std::make_shared<Checkpoint>(
      std::vector<std::pair<std::string, TrackablePtr>>{{"model", make_trackable(first)},
                                                        {"ckpt_saved_epoch", make_trackable(epoch)},
                                                        {"ckpt_saved_batch", make_trackable(batch)}});
  CheckpointManager(keras, dir / "backup/chief").save();

  BackupAndRestoreOptions bo;
  bo.backup_dir = dir / "backup";
  LayerPtr second = compiled_model();
  CallbackPtr bar = make_backup_and_restore(bo);
  std::shared_ptr<History> h = fit(second, fit_options(p, 3, {bar}));
  EXPECT_EQ(h->epoch, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(bar->attributes().get_int("resumed_epoch"), 1);
}

}  // namespace
}  // namespace kiln::train

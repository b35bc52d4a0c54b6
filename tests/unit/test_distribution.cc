// Data-parallel training in the core (src/train/distribution.h) over an in-process communicator
// whose ranks are threads, so it runs without MPI and under the sanitizers: the fused gradient
// allreduce, broadcast of variables, and fit with a distribution ending where one process ends on
// the same global batches, with validation, a stop from one rank and the file writers on rank 0.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "bundle_test_util.h"
#include "layers/layer.h"
#include "ops/ops.h"
#include "test_util.h"
#include "thread_communicator.h"
#include "train/callbacks.h"
#include "train/callbacks_checkpoint.h"
#include "train/distribution.h"
#include "train/model_training.h"

namespace kiln::train {
namespace {

using testing::expect_error;
using testing::make;
using testing::make_typed;

TEST(GradientAllreduce, FusesSumsMeansAndSkipsUndefined) {
  std::vector<std::vector<Tensor>> results(2);
  run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    const float f = static_cast<float>(rank + 1);
    const std::vector<Tensor> grads{make(Shape{3}, {f, 2 * f, -0.0f}), Tensor(),
                                    Tensor::scalar<double>(10.0 * f), make(Shape{2, 2}, {f, f, f, f})};
    // 16 bytes: the 12-byte and 16-byte float32 gradients cannot share a buffer; float64 apart.
    GradientAllreduce sum(comm, false, 16);
    results[static_cast<size_t>(rank)] = sum.reduce(grads);
    EXPECT_EQ(comm->calls.load(), 3);
    GradientAllreduce mean(comm, true, kDefaultFusionThresholdBytes);
    const std::vector<Tensor> m = mean.reduce(grads);
    EXPECT_FLOAT_EQ(m[0].data<float>()[1], 3.0f);
    mean.set_scale(0.25);
    EXPECT_FLOAT_EQ(mean.reduce(grads)[3].data<float>()[0], 0.75f);
  });
  for (const auto &r : results) {
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0].data<float>()[0], 3.0f);
    EXPECT_EQ(r[0].data<float>()[1], 6.0f);
    EXPECT_TRUE(std::signbit(r[0].data<float>()[2]));
    EXPECT_FALSE(r[1].defined());
    EXPECT_EQ(r[2].data<double>()[0], 30.0);
    EXPECT_EQ(r[3].shape(), Shape({2, 2}));
    EXPECT_EQ(r[3].data<float>()[3], 3.0f);
  }
}

// gradient() sums in buckets during the backward walk, on the background thread when it
// overlaps: the same sums as reduce() after the walk, for every threshold, with an unconnected
// source (undefined on every rank) and a float64 one beside float32.
TEST(GradientAllreduce, OverlappedGradientIsTheSumAfterTheWalk) {
  for (size_t threshold : {size_t{0}, size_t{40}, kDefaultFusionThresholdBytes})
    for (bool overlap : {true, false})
      run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
        const float f = static_cast<float>(rank) + 0.5f;
        Tensor x = make(Shape{2, 4}, {f, 1, -2, 3, 0.25f, -f, 2, 1});
        Tensor w1 = make(Shape{4, 3}, {1, -1, 2, 0.5f, 0.25f, -3, 1, 2, 1, -1, 0, 4});
        Tensor b1 = make(Shape{3}, {0.1f, -0.2f, 0.3f}), w2 = make(Shape{3, 2}, {1, 2, -1, 0.5f, 3, -2});
        Tensor unused = make(Shape{2}, {1, 1});
        Tensor d = Tensor::from_data(DType::kFloat64, Shape{2}, std::vector<double>{1.5, -f}.data(), 16);
        autodiff::Tape tape(true, true);
        for (const Tensor &t : {w1, b1, w2, unused, d}) tape.watch(t);
        Tensor h = ops::relu(ops::add(ops::matmul(x, w1), b1));
        Tensor y = ops::sum(ops::matmul(h, w2));
        Tensor z = ops::sum(ops::mul(d, d));
        tape.stop_recording();
        const autodiff::GradientSources sources{w1, b1, w2, unused, d};
        GradientAllreduce a(comm, true, threshold, overlap);
        const std::vector<Tensor> got = a.gradient(tape, {y, z}, sources, autodiff::Unconnected::kNone);
        if (threshold == 0) {
          // One per source, the unconnected one too, and the check of which are defined.
          EXPECT_EQ(comm->calls.load(), 6);
        }
        const std::vector<Tensor> want =
            a.reduce(tape.gradient({y, z}, sources, autodiff::Unconnected::kNone));
        ASSERT_EQ(got.size(), 5u);
        for (size_t i = 0; i < 5; ++i) {
          ASSERT_EQ(got[i].defined(), want[i].defined()) << i;
          if (!got[i].defined()) continue;
          EXPECT_EQ(got[i].dtype(), want[i].dtype());
          ASSERT_EQ(got[i].shape(), want[i].shape());
          EXPECT_EQ(std::memcmp(got[i].raw_data(), want[i].raw_data(), got[i].byte_size()), 0) << i;
        }
        EXPECT_FALSE(got[3].defined());
        // The mean of the ranks' d * 2: (2 * 1.5 + 2 * 1.5) / 2 and (-1 - 3) / 2.
        EXPECT_EQ(got[4].data<double>()[0], 3.0);
        EXPECT_EQ(got[4].data<double>()[1], -2.0);
      });
}

// float64 gradients fused after float32 ones of 20 bytes stay 8-byte aligned (UBSan checks), in
// the overlapped and the after-the-walk forms.
TEST(GradientAllreduce, MixedDtypesInFusedBuckets) {
  for (bool overlap : {true, false})
    run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
      const double r = rank + 1.0;
      Tensor a = Tensor::from_data(DType::kFloat64, Shape{1}, std::vector<double>{r}.data(), 8);
      Tensor b = Tensor::from_data(DType::kFloat64, Shape{2}, std::vector<double>{r, -r}.data(), 16);
      Tensor c = make(Shape{2}, {1, 2}), d = make(Shape{3}, {3, 4, 5});
      autodiff::Tape tape(true, true);
      for (const Tensor &t : {a, b, c, d}) tape.watch(t);
      Tensor y64 = ops::add(ops::sum(ops::mul(a, a)), ops::sum(b));
      Tensor y32 = ops::sum(ops::mul(ops::sum(c), ops::sum(d)));
      tape.stop_recording();
      GradientAllreduce sum(comm, false, kDefaultFusionThresholdBytes, overlap);
      const autodiff::GradientSources sources{a, b, c, d};
      const std::vector<Tensor> got = sum.gradient(tape, {y64, y32}, sources, autodiff::Unconnected::kNone);
      EXPECT_EQ(got[0].data<double>()[0], 2.0 * 1 + 2.0 * 2);  // d(a^2) = 2a, summed over a = 1, 2
      EXPECT_EQ(got[1].data<double>()[1], 2.0);
      EXPECT_EQ(got[2].data<float>()[0], 24.0f);  // sum(d) = 12 on each rank
      EXPECT_EQ(got[3].data<float>()[2], 6.0f);   // sum(c) = 3 on each rank
      const std::vector<Tensor> again =
          sum.reduce(tape.gradient({y64, y32}, sources, autodiff::Unconnected::kNone));
      for (size_t i = 0; i < 4; ++i)
        EXPECT_EQ(std::memcmp(again[i].raw_data(), got[i].raw_data(), got[i].byte_size()), 0) << i;
    });
}

// A gradient defined on one rank only fails on both (their weights would part otherwise); an
// integer source keeps its local, undefined gradient.
TEST(GradientAllreduce, GradientDefinedOnSomeRanksFailsOnAll) {
  run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    Tensor w = make(Shape{2}, {1, 2}), v = make(Shape{2}, {3, 4});
    Tensor count = make_typed<int64_t>(Shape{1}, {5});
    autodiff::Tape tape(true, true);
    tape.watch(w);
    tape.watch(v);
    Tensor y = rank == 0 ? ops::sum(ops::mul(w, v)) : ops::sum(ops::mul(w, w));
    tape.stop_recording();
    GradientAllreduce mean(comm, true, kDefaultFusionThresholdBytes);
    expect_error(
        [&] {
          mean.gradient(tape, {y}, {w, v}, autodiff::Unconnected::kNone);
        },
        Code::kFailedPrecondition, {"source 1 is defined on 1 of 2 processes"});
    const std::vector<Tensor> g = mean.gradient(tape, {y}, {w, count}, autodiff::Unconnected::kNone);
    EXPECT_TRUE(g[0].defined());
    EXPECT_FALSE(g[1].defined());
  });
}

TEST(GradientAllreduce, RejectsIntegerGradients) {
  run_ranks(1, [&](int, const std::shared_ptr<ThreadCommunicator> &comm) {
    GradientAllreduce a(comm, true, 1024);
    expect_error([&] { a.reduce({make_typed<int64_t>(Shape{1}, {1})}); }, Code::kInvalidArgument,
                 {"int64", "float32 or float64"});
    // A bfloat16 source is rejected before the tape is used: the tape still gives its gradient.
    Tensor x = make(Shape{2}, {1, 2});
    Tensor b = ops::cast(x, DType::kBFloat16);
    autodiff::Tape tape(false, true);
    tape.watch(x);
    tape.watch(b);
    Tensor y = ops::sum(ops::mul(x, x));
    tape.stop_recording();
    expect_error(
        [&] {
          a.gradient(tape, {y}, {x, b}, autodiff::Unconnected::kNone);
        },
        Code::kInvalidArgument, {"source 1 is bfloat16[2]", "float32 or float64"});
    EXPECT_TRUE(tape.gradient(y, {x}, autodiff::Unconnected::kNone)[0].defined());
  });
}

TEST(BroadcastVariables, RootsValuesAndAgreedErrors) {
  std::vector<float> got(2);
  run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    auto v =
        std::make_shared<autodiff::Variable>("v", make(Shape{2}, {float(rank), float(rank) + 0.5f}), true);
    broadcast_variables(*comm, {v}, 1);
    got[static_cast<size_t>(rank)] = v->value().data<float>()[1];
    // Rank 1 holds another shape: both ranks fail, neither changes.
    auto w = std::make_shared<autodiff::Variable>(
        "w", make(Shape{rank + 1}, std::vector<float>(size_t(rank + 1), 7.0f)), true);
    expect_error([&] { broadcast_variables(*comm, {w}, 0); }, Code::kInvalidArgument,
                 {"1 rank(s) hold other variables", "same shapes"});
    EXPECT_EQ(w->value().data<float>()[0], 7.0f);
  });
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], 1.5f);
}

// The problem and model of the fit tests.
constexpr int64_t kN = 200, kF = 4, kC = 3;

struct Problem {
  Tensor x, y;
};

Problem problem() {
  std::vector<float> xs;
  std::vector<int64_t> ys;
  uint32_t s = 9;
  for (int64_t i = 0; i < kN * kF; ++i) {
    s = s * 1664525u + 1013904223u;
    xs.push_back(static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
  for (int64_t i = 0; i < kN; ++i) {
    const float *r = &xs[static_cast<size_t>(i * kF)];
    ys.push_back(r[0] > r[1] ? (r[2] > 0 ? 0 : 1) : 2);
  }
  return {make(Shape{kN, kF}, xs), make_typed<int64_t>(Shape{kN}, ys)};
}

LayerPtr model() {
  Config hidden, out;
  hidden.set("units", int64_t{8});
  hidden.set("activation", std::string("relu"));
  out.set("units", kC);
  out.set("activation", std::string("softmax"));
  std::vector<Config> ls;
  for (const Config &c : {hidden, out}) {
    Config ser;
    ser.set("class_name", std::string("Dense"));
    ser.set("config", c);
    ls.push_back(ser);
  }
  Config c;
  c.set("layers", ls);
  LayerPtr m = layers::create_layer("Sequential", c);
  m->build({{-1, kF}});
  return m;
}

// fit on the problem's tensors, in order (no shuffle), silently.
FitOptions fit_options(const Problem &p, int64_t batch_size, int64_t epochs) {
  FitOptions o;
  o.x = {p.x};
  o.y = {p.y};
  o.batch_size = batch_size;
  o.epochs = epochs;
  o.verbose = 0;
  o.shuffle = false;
  return o;
}

void compile_sgd(const LayerPtr &m) {
  Config oc;
  oc.set("learning_rate", 0.1);
  oc.set("momentum", 0.9);
  CompileOptions c;
  c.optimizer = make_optimizer("SGD", oc);
  c.loss_names = {"sparse_categorical_crossentropy"};
  c.metric_names = {"accuracy"};
  compile(m, c);
}

void copy_weights(const LayerPtr &from, const LayerPtr &to) {
  const auto a = from->variables(), b = to->variables();
  for (size_t i = 0; i < a.size(); ++i) b[i]->assign(a[i]->value());
}

float max_difference(const LayerPtr &a, const LayerPtr &b) {
  const auto va = a->variables(), vb = b->variables();
  float worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const Tensor p = va[i]->value(), q = vb[i]->value();
    for (int64_t k = 0; k < p.num_elements(); ++k)
      worst = std::max(worst, std::fabs(p.data<float>()[k] - q.data<float>()[k]));
  }
  return worst;
}

TEST(DistributedFit, TwoRanksEndWhereOneProcessEnds) {
  const Problem p = problem();
  // Rank 0's and the reference's weights agree; rank 1 starts elsewhere (fit broadcasts rank 0's).
  std::vector<LayerPtr> ranks{model(), model()};
  const LayerPtr one = model();
  copy_weights(ranks[0], one);
  for (const LayerPtr &m : ranks) compile_sgd(m);
  compile_sgd(one);
  FitOptions o = fit_options(p, 50, 2);  // 4 global batches of 50 (25 rows per rank) ...
  o.validation_x = {p.x};
  o.validation_y = {p.y};
  o.validation_batch_size = 64;  // ... validated in batches of 64, 64, 64 and 8 (4 per rank)
  std::vector<std::shared_ptr<History>> histories(2);
  run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    FitOptions mine = o;
    mine.distribution = comm;
    histories[static_cast<size_t>(rank)] = fit(ranks[static_cast<size_t>(rank)], mine);
  });
  const std::shared_ptr<History> h = fit(one, o);
  EXPECT_LT(max_difference(ranks[0], one), 1e-5f);
  EXPECT_LT(max_difference(ranks[1], one), 1e-5f);
  for (const auto &hr : histories)
    for (const char *key : {"loss", "accuracy", "val_loss", "val_accuracy"})
      for (size_t e = 0; e < 2; ++e)
        EXPECT_NEAR(hr->history.at(key)[e], h->history.at(key)[e], 1e-5) << key << " epoch " << e;
  // The optimizer is back to plain after fit.
  EXPECT_EQ(training_state(*ranks[0])->optimizer->gradient_allreduce(), nullptr);
}

// Stops the fit from one rank only, after a given batch.
class StopAt final : public Callback {
 public:
  explicit StopAt(int64_t batch) : Callback("StopAt"), batch_(batch) {}
  void on_train_batch_end(int64_t batch, Logs &) override {
    if (batch == batch_) training_state(*model())->stop_training = true;
  }

 private:
  int64_t batch_;
};

TEST(DistributedFit, AStopOnOneRankStopsAllAndOnlyRankZeroWrites) {
  const Problem p = problem();
  testing::TempDir tmp;
  const std::string dir = tmp.path();
  std::vector<LayerPtr> ranks{model(), model()};
  for (const LayerPtr &m : ranks) compile_sgd(m);
  run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    FitOptions o = fit_options(p, 20, 3);
    o.distribution = comm;
    Config csv;
    csv.set("filename", dir + "/rank" + std::to_string(rank) + ".csv");
    o.callbacks = {create_callback("CSVLogger", csv)};
    if (rank == 1) o.callbacks.push_back(std::make_shared<StopAt>(2));
    fit(ranks[static_cast<size_t>(rank)], o);
  });
  EXPECT_EQ(training_state(*ranks[0])->optimizer->iterations(), 3);
  EXPECT_EQ(training_state(*ranks[1])->optimizer->iterations(), 3);
  EXPECT_TRUE(std::filesystem::exists(dir + "/rank0.csv"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/rank1.csv"));
}

// Fails the fit at the end of an epoch (after BackupAndRestore, listed first, saved it).
class CrashAfterEpoch final : public Callback {
 public:
  explicit CrashAfterEpoch(int64_t epoch) : Callback("CrashAfterEpoch"), epoch_(epoch) {}
  void on_epoch_end(int64_t epoch, Logs &) override {
    if (epoch == epoch_) fail(Code::kInternal, "the machine went down");
  }

 private:
  int64_t epoch_;
};

// An interrupted distributed fit resumes from rank 0's backup on every rank and ends where an
// uninterrupted single-process fit ends; only rank 0 keeps the backup.
TEST(DistributedFit, BackupAndRestoreResumesOnEveryRank) {
  const Problem p = problem();
  testing::TempDir tmp;
  const FitOptions o = fit_options(p, 40, 3);
  const LayerPtr straight = model();
  std::vector<LayerPtr> first{model(), model()}, second{model(), model()};
  copy_weights(straight, first[0]);
  compile_sgd(straight);
  for (const LayerPtr &m : first) compile_sgd(m);
  for (const LayerPtr &m : second) compile_sgd(m);  // fresh weights: the backup's come back
  fit(straight, o);
  auto run = [&](const std::vector<LayerPtr> &models, bool crash, const std::string &backup) {
    run_ranks(2, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
      FitOptions mine = o;
      mine.distribution = comm;
      BackupAndRestoreOptions bo;
      bo.backup_dir = backup + "/rank0";  // one backup for every rank, as on a shared file system
      mine.callbacks = {make_backup_and_restore(bo)};
      if (crash) mine.callbacks.push_back(std::make_shared<CrashAfterEpoch>(1));
      try {
        fit(models[static_cast<size_t>(rank)], mine);
        EXPECT_FALSE(crash);
      } catch (const Error &e) {
        EXPECT_TRUE(crash) << e.what();
      }
    });
  };
  run(first, true, tmp.path());
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/rank0/chief/checkpoint"));
  run(second, false, tmp.path());
  EXPECT_LT(max_difference(second[0], straight), 1e-5f);
  EXPECT_LT(max_difference(second[1], straight), 1e-5f);
  EXPECT_EQ(training_state(*second[1])->optimizer->iterations(), 15);  // 5 steps x 3 epochs, restored
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/rank0/chief"));  // rank 0 deleted it at the end
}

}  // namespace
}  // namespace kiln::train

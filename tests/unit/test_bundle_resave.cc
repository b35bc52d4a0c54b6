// Crash safety of a save over an existing bundle (io/bundle.h, "Crash safety"): the writer's
// finish() is stopped after each of its steps in turn (a test hook throws there, leaving the final
// names as a crash would), and the prefix must then read as the complete old bundle before the
// new index is in place and as the complete new one from then on; latest_checkpoint still finds
// it, and the next save over it recovers and leaves only the bundle's two files. A second crash
// inside that recovering save, at each of its steps, must keep the same promise.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/variable.h"
#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/bundle_internal.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "train/checkpoint.h"

namespace kiln::io {
namespace {

using testing::TempDir;

struct SimulatedCrash : std::runtime_error {
  SimulatedCrash() : std::runtime_error("simulated crash") {}
};

// The hook's state: the steps seen by the save under way, and the step (1-based) it stops after.
std::vector<std::string> g_steps;
size_t g_stop_after = 0;

void record_step(const char *step) {
  g_steps.push_back(step);
  if (g_steps.size() == g_stop_after) throw SimulatedCrash();
}

// The steps are renames and directory fsyncs, hundreds of them here: on a disk the fsyncs cost
// seconds, so the directories go to /dev/shm (a tmpfs) where there is one. What is checked is
// the order of the steps, which does not depend on the file system.
class FastTempDirs {
 public:
  FastTempDirs() {
    const char *old = std::getenv("TMPDIR");
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (::access("/dev/shm", W_OK) == 0) ::setenv("TMPDIR", "/dev/shm", 1);
  }
  ~FastTempDirs() {
    if (had_)
      ::setenv("TMPDIR", old_.c_str(), 1);
    else
      ::unsetenv("TMPDIR");
  }
  FastTempDirs(const FastTempDirs &) = delete;
  FastTempDirs &operator=(const FastTempDirs &) = delete;

 private:
  bool had_ = false;
  std::string old_;
};

// Installs the hook for one save; removes it on scope exit, whatever happens.
class StepHook {
 public:
  explicit StepHook(size_t stop_after) {
    g_steps.clear();
    g_stop_after = stop_after;
    bundle_internal::set_finish_step_hook(&record_step);
  }
  ~StepHook() { bundle_internal::set_finish_step_hook(nullptr); }
  StepHook(const StepHook &) = delete;
  StepHook &operator=(const StepHook &) = delete;
};

// Generation g: tensors whose sizes and values differ from every other generation's, so a data
// file read through another generation's index fails its checks.
void write_generation(const std::string &prefix, int g) {
  BundleWriter w(prefix);
  std::vector<float> values(static_cast<size_t>(3 + g));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(g * 100 + static_cast<int>(i));
  w.add("a", Tensor::from_data(DType::kFloat32, Shape{static_cast<int64_t>(values.size())}, values.data(),
                               values.size() * sizeof(float)));
  w.add("b", Tensor::scalar<int64_t>(g));
  w.finish();
}

// The generation the prefix reads as (every tensor checked against it), or -1 with *problem set.
int read_generation(const std::string &prefix, std::string *problem) {
  try {
    BundleReader r(prefix);
    const int g = static_cast<int>(r.read("b").data<int64_t>()[0]);
    const Tensor a = r.read("a");
    if (a.num_elements() != 3 + g) {
      *problem = str_cat("'a' has ", a.num_elements(), " elements for generation ", g);
      return -1;
    }
    for (int64_t i = 0; i < a.num_elements(); ++i)
      if (a.data<float>()[i] != static_cast<float>(g * 100 + i)) {
        *problem = str_cat("'a'[", i, "] is ", a.data<float>()[i], " in generation ", g);
        return -1;
      }
    return g;
  } catch (const Error &e) {
    *problem = e.what();
    return -1;
  }
}

// Saves generation g over prefix, stopped after step stop_after (0: never). Returns the steps.
std::vector<std::string> save(const std::string &prefix, int g, size_t stop_after) {
  StepHook hook(stop_after);
  try {
    write_generation(prefix, g);
    EXPECT_EQ(stop_after == 0 || stop_after > g_steps.size(), true) << "the save went on past its stop";
  } catch (const SimulatedCrash &) {
  }
  return g_steps;
}

// The generation the prefix must read as after a save of new_g stopped after `steps` (the
// steps it took): the new one once its index is in place, else the one before (old_g).
int expected_after(const std::vector<std::string> &steps, int old_g, int new_g) {
  for (const std::string &s : steps)
    if (s == "index_renamed") return new_g;
  return old_g;
}

// The checks of the directory after a (possibly cut short) save: the prefix reads as generation
// want, and the directory's state file still finds it.
void expect_reads(const TempDir &dir, const std::string &prefix, int want, const std::string &when) {
  SCOPED_TRACE(when);
  std::string problem;
  EXPECT_EQ(read_generation(prefix, &problem), want) << problem;
  EXPECT_TRUE(bundle_exists(prefix));
  EXPECT_EQ(latest_checkpoint(dir.path()), prefix);
  EXPECT_EQ(resolve_checkpoint_prefix(dir.path(), "test"), prefix);
}

std::string joined(const std::vector<std::string> &v) {
  std::string s;
  for (const std::string &x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

TEST(BundleResaveTest, StepsOfAFirstSaveAndOfASaveOverTheSamePrefix) {
  TempDir dir;
  const std::string prefix = dir / "w";
  EXPECT_EQ(joined(save(prefix, 1, 0)), "data_renamed, index_renamed");
  EXPECT_EQ(joined(save(prefix, 2, 0)),
            "index_moved_aside, data_moved_aside, data_renamed, index_renamed, previous_index_removed, "
            "previous_data_removed");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"w.data-00000-of-00001", "w.index"}));
  std::string problem;
  EXPECT_EQ(read_generation(prefix, &problem), 2) << problem;
}

TEST(BundleResaveTest, CrashAtEveryStepOfASaveOverTheSamePrefixKeepsOldOrNew) {
  FastTempDirs fast;
  const size_t kSteps = 6;  // of a save over an existing bundle (the test above lists them)
  for (size_t k = 1; k <= kSteps; ++k) {
    // A fresh directory for each crash point; j = 0 is the recovering save run to its end.
    for (size_t j = 0; j <= kSteps + 1; ++j) {
      TempDir dir;
      const std::string prefix = dir / "w";
      write_generation(prefix, 1);
      CheckpointState state;
      state.model_checkpoint_path = prefix;
      update_checkpoint_state(dir.path(), state);

      const std::vector<std::string> first = save(prefix, 2, k);
      ASSERT_EQ(first.size(), k);
      const int after_first = expected_after(first, 1, 2);
      expect_reads(dir, prefix, after_first, str_cat("crash after ", first.back()));
      if (::testing::Test::HasFailure()) return;

      // The next save over the prefix, itself cut short after its step j.
      const std::vector<std::string> second = save(prefix, 3, j);
      const int after_second = expected_after(second, after_first, 3);
      expect_reads(dir, prefix, after_second,
                   str_cat("crash after ", first.back(), ", then after [", joined(second), "]"));
      if (::testing::Test::HasFailure()) return;

      // A save to its end leaves exactly the bundle's two files (and the state file).
      save(prefix, 4, 0);
      expect_reads(dir, prefix, 4,
                   str_cat("clean save after [", joined(first), "] and [", joined(second), "]"));
      EXPECT_EQ(dir.list(), (std::vector<std::string>{"checkpoint", "w.data-00000-of-00001", "w.index"}))
          << "after [" << joined(first) << "] and [" << joined(second) << "]";
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// A crash between the two renames of a first save leaves a data file without an index: no
// bundle yet. An old bundle with other data file names (TensorFlow's shards) is not moved aside:
// the new data file replaces none of its files, and the index's rename switches at once.
TEST(BundleResaveTest, FirstSaveAndAShardedOldBundle) {
  TempDir dir;
  const std::string prefix = dir / "m";
  EXPECT_EQ(joined(save(prefix, 1, 1)), "data_renamed");
  EXPECT_FALSE(bundle_exists(prefix));
  std::string problem;
  EXPECT_EQ(read_generation(prefix, &problem), -1);
  EXPECT_NE(problem.find("no checkpoint at"), std::string::npos) << problem;

  // Generation 1 as a bundle of two shards, its tensors all in the first.
  const std::string one = dir / "one";
  write_generation(one, 1);
  remove_file_quietly(prefix + ".data-00000-of-00001");
  testing::RawIndex index = testing::read_raw_index(one + ".index");
  index.header.set_num_shards(2);
  testing::write_raw_index(prefix + ".index", index);
  testing::spit(prefix + ".data-00000-of-00002", testing::slurp(one + ".data-00000-of-00001"));
  testing::spit(prefix + ".data-00001-of-00002", "");
  EXPECT_EQ(read_generation(prefix, &problem), 1) << problem;

  EXPECT_EQ(joined(save(prefix, 2, 0)), "data_renamed, index_renamed");
  EXPECT_EQ(read_generation(prefix, &problem), 2) << problem;

  // Generation 1's shards again; a save over them cut short after its data file.
  testing::write_raw_index(prefix + ".index", index);
  remove_file_quietly(prefix + ".data-00000-of-00001");
  EXPECT_EQ(joined(save(prefix, 2, 1)), "data_renamed");
  EXPECT_EQ(read_generation(prefix, &problem), 1) << problem;
  // That data file is under the name a new one takes: the writer cannot tell it from one the
  // index reads without reading the index, so the bundle moves aside as in any save over it.
  EXPECT_EQ(joined(save(prefix, 3, 0)),
            "index_moved_aside, data_moved_aside, data_renamed, index_renamed, previous_index_removed, "
            "previous_data_removed");
  EXPECT_EQ(read_generation(prefix, &problem), 3) << problem;
}

// CheckpointManager deletes a checkpoint's previous bundle with it.
TEST(BundleResaveTest, ManagerDeletesAPreviousBundleWithItsCheckpoint) {
  TempDir dir;
  auto v = std::make_shared<autodiff::Variable>("v", Tensor::scalar<float>(1.f), true);
  auto ckpt = std::make_shared<train::Checkpoint>(
      std::vector<std::pair<std::string, train::TrackablePtr>>{{"v", train::make_trackable(v)}});
  train::CheckpointManagerOptions o;
  o.max_to_keep = 1;
  train::CheckpointManager manager(ckpt, dir.path(), o);
  const std::string first = manager.save();
  // A save over it cut short with its bundle aside (index and data).
  {
    StepHook hook(2);
    EXPECT_THROW(ckpt->write(first), SimulatedCrash);
  }
  EXPECT_FALSE(file_exists(first + ".index"));
  EXPECT_TRUE(file_exists(previous_bundle_prefix(first) + ".index"));
  EXPECT_EQ(manager.latest_checkpoint(), first);
  EXPECT_EQ(latest_checkpoint(dir.path()), first);
  ckpt->read(first).assert_consumed();
  const std::string second = manager.save();
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"checkpoint", base_name(second) + ".data-00000-of-00001",
                                                  base_name(second) + ".index"}));
}

}  // namespace
}  // namespace kiln::io

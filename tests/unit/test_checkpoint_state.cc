// The `checkpoint` state file: TensorFlow's fixture parses, kiln's writes round-trip (with the
// TF2 timestamps) and store paths relative to the directory, latest_checkpoint follows TF, and
// damaged files are DataLoss naming the file.
#include <gtest/gtest.h>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"

namespace kiln::io {
namespace {

using testing::TempDir;

TEST(CheckpointStateTest, ReadsTensorFlowFile) {
  const std::string dir = testing::fixtures_dir() + "/tf2_checkpoint";
  if (!std::filesystem::exists(dir + "/checkpoint"))
    GTEST_SKIP() << "TensorFlow fixture " << dir << " not found";
  const auto state = get_checkpoint_state(dir);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->model_checkpoint_path, dir + "/keras_embedding.ckpt-9");
  EXPECT_EQ(state->all_model_checkpoint_paths, (std::vector<std::string>{dir + "/keras_embedding.ckpt-9"}));
  EXPECT_TRUE(state->all_model_checkpoint_timestamps.empty());
  EXPECT_EQ(state->last_preserved_timestamp, 0.0);
  // The fixture's state names ckpt-9 but only ckpt-0 was kept: like TF, no latest checkpoint.
  EXPECT_EQ(latest_checkpoint(dir), "");
}

TEST(CheckpointStateTest, RoundTripWithTimestamps) {
  TempDir dir;
  EXPECT_FALSE(get_checkpoint_state(dir.path()).has_value());
  EXPECT_EQ(latest_checkpoint(dir.path()), "");
  CheckpointState s;
  s.model_checkpoint_path = dir / "ckpt-3";
  s.all_model_checkpoint_paths = {dir / "ckpt-1", dir / "ckpt-2", dir / "ckpt-3"};
  s.all_model_checkpoint_timestamps = {1690485354.25, 1690485360.125, 1690485371.0078125};
  s.last_preserved_timestamp = 1690485350.5;
  update_checkpoint_state(dir.path(), s);
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"checkpoint"}));  // no temporary left

  const std::string text = testing::slurp(dir / "checkpoint");
  // TF's layout: relative paths, one field per line.
  EXPECT_EQ(text.rfind("model_checkpoint_path: \"ckpt-3\"\n", 0), 0u) << text;
  EXPECT_NE(text.find("all_model_checkpoint_paths: \"ckpt-1\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("all_model_checkpoint_timestamps: 1690485354.25\n"), std::string::npos) << text;
  EXPECT_NE(text.find("last_preserved_timestamp: 1690485350.5\n"), std::string::npos) << text;
  EXPECT_EQ(text.find(dir.path()), std::string::npos) << text;

  const auto back = get_checkpoint_state(dir.path());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->model_checkpoint_path, s.model_checkpoint_path);
  EXPECT_EQ(back->all_model_checkpoint_paths, s.all_model_checkpoint_paths);
  EXPECT_EQ(back->all_model_checkpoint_timestamps, s.all_model_checkpoint_timestamps);
  EXPECT_EQ(back->last_preserved_timestamp, s.last_preserved_timestamp);

  // latest_checkpoint only once the checkpoint's index exists.
  EXPECT_EQ(latest_checkpoint(dir.path()), "");
  {
    BundleWriter w(dir / "ckpt-3");
    w.finish();
  }
  EXPECT_EQ(latest_checkpoint(dir.path()), dir / "ckpt-3");
}

TEST(CheckpointStateTest, RelativePathsAndAppendedLatest) {
  TempDir dir;
  CheckpointState s;
  s.model_checkpoint_path = "model.ckpt-20";  // already relative
  s.all_model_checkpoint_paths = {dir / "model.ckpt-10", "/elsewhere/model.ckpt-5"};
  update_checkpoint_state(dir.path() + "/", s);
  const std::string text = testing::slurp(dir / "checkpoint");
  EXPECT_EQ(text,
            "model_checkpoint_path: \"model.ckpt-20\"\n"
            "all_model_checkpoint_paths: \"model.ckpt-10\"\n"
            "all_model_checkpoint_paths: \"/elsewhere/model.ckpt-5\"\n"
            "all_model_checkpoint_paths: \"model.ckpt-20\"\n");
  const auto back = get_checkpoint_state(dir.path());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(
      back->all_model_checkpoint_paths,
      (std::vector<std::string>{dir / "model.ckpt-10", "/elsewhere/model.ckpt-5", dir / "model.ckpt-20"}));
  // Rewriting replaces the file.
  s.model_checkpoint_path = dir / "model.ckpt-30";
  s.all_model_checkpoint_paths.clear();
  update_checkpoint_state(dir.path(), s, "other_state");
  EXPECT_EQ(get_checkpoint_state(dir.path(), "other_state")->all_model_checkpoint_paths,
            (std::vector<std::string>{dir / "model.ckpt-30"}));
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"checkpoint", "other_state"}));
}

TEST(CheckpointStateTest, BadContentsAndArguments) {
  TempDir dir;
  for (const char *bad :
       {"model_checkpoint_path: ", "model_checkpoint_path: \"a\"\nall_model_checkpoint_paths: 7\n",
        "\x01\x02garbage", "", "all_model_checkpoint_paths: \"x\"\n"}) {
    testing::spit(dir / "checkpoint", bad);
    try {
      get_checkpoint_state(dir.path());
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error &e) {
      EXPECT_EQ(e.code(), Code::kDataLoss) << e.what();
      EXPECT_NE(std::string(e.what()).find(dir / "checkpoint"), std::string::npos) << e.what();
    }
  }
  // A field from a newer TensorFlow is skipped.
  testing::spit(dir / "checkpoint", "model_checkpoint_path: \"a\"\nfuture_field: 3\n");
  EXPECT_EQ(get_checkpoint_state(dir.path())->model_checkpoint_path, dir / "a");

  CheckpointState s;
  EXPECT_THROW(update_checkpoint_state(dir.path(), s), Error);
  s.model_checkpoint_path = "a";
  s.all_model_checkpoint_timestamps = {1.0, 2.0};
  EXPECT_THROW(update_checkpoint_state(dir.path(), s), Error);
}

}  // namespace
}  // namespace kiln::io

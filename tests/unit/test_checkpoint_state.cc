// The `checkpoint` state file: TensorFlow's fixture parses, kiln's writes round-trip (with the
// TF2 timestamps) and store paths relative to the directory, latest_checkpoint follows TF,
// damaged files are DataLoss naming the file, and resolve_checkpoint_prefix turns a directory or
// a checkpoint's file into its prefix.
#include <gtest/gtest.h>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"

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

// Found by the fuzzer: the newest path spelt with other slashes ("//dir/ckpt-3") at the end of the
// list is the same file, so it is not appended again, and every path is written with single slashes.
TEST(CheckpointStateTest, SlashRunsNameTheSameFile) {
  TempDir dir;
  CheckpointState s;
  s.model_checkpoint_path = dir / "ckpt-3";
  s.all_model_checkpoint_paths = {dir.path() + "//sub//ckpt-1", "//elsewhere///ckpt-2",
                                  "/" + dir.path() + "/ckpt-3"};
  update_checkpoint_state(dir.path() + "//", s);
  EXPECT_EQ(testing::slurp(dir / "checkpoint"),
            "model_checkpoint_path: \"ckpt-3\"\n"
            "all_model_checkpoint_paths: \"sub/ckpt-1\"\n"
            "all_model_checkpoint_paths: \"/elsewhere/ckpt-2\"\n"
            "all_model_checkpoint_paths: \"ckpt-3\"\n");
  EXPECT_EQ(kiln::io::collapse_slashes("//a//b/"), "/a/b/");
  EXPECT_EQ(kiln::io::collapse_slashes(""), "");
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

// Every message must carry `who` and the named parts, with the expected code.
void expect_resolve_error(const std::string &path, Code code, const std::vector<std::string> &parts) {
  try {
    resolve_checkpoint_prefix(path, "the_caller");
    ADD_FAILURE() << "resolved '" << path << "'";
  } catch (const Error &e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find("the_caller: "), std::string::npos) << e.what();
    for (const std::string &p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(CheckpointStateTest, ResolveCheckpointPrefix) {
  TempDir dir;
  EXPECT_TRUE(is_directory(dir.path()));
  EXPECT_FALSE(is_file(dir.path()));
  EXPECT_FALSE(is_directory(dir / "nothing"));
  EXPECT_FALSE(is_file(dir / "nothing"));

  expect_resolve_error("", Code::kInvalidArgument, {"empty"});
  // A directory without a state file is not a checkpoint.
  expect_resolve_error(dir.path(), Code::kNotFound,
                       {"'" + dir.path() + "'", "holds no checkpoint", "state file"});
  // A state file naming a checkpoint that is gone.
  CheckpointState s;
  s.model_checkpoint_path = dir / "ckpt-2";
  update_checkpoint_state(dir.path(), s);
  expect_resolve_error(
      dir.path(), Code::kNotFound,
      {"'" + dir.path() + "'", "holds no checkpoint", "'" + (dir / "ckpt-2") + "'", ".index"});

  {
    BundleWriter w(dir / "ckpt-2");
    w.finish();
  }
  EXPECT_TRUE(is_file(dir / "ckpt-2.index"));
  EXPECT_EQ(resolve_checkpoint_prefix(dir.path(), "the_caller"), dir / "ckpt-2");
  EXPECT_EQ(resolve_checkpoint_prefix(dir.path() + "/", "the_caller"), dir / "ckpt-2");
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-2", "the_caller"), dir / "ckpt-2");
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-2.index", "the_caller"), dir / "ckpt-2");
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-2.data-00000-of-00001", "the_caller"), dir / "ckpt-2");
  // Anything else is taken as a prefix, even when missing (the reader then says NotFound).
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-7", "the_caller"), dir / "ckpt-7");
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-7.index", "the_caller"), dir / "ckpt-7.index");
  EXPECT_EQ(resolve_checkpoint_prefix(dir / "ckpt-2.data-0000x-of-00001", "the_caller"),
            dir / "ckpt-2.data-0000x-of-00001");
}

}  // namespace
}  // namespace kiln::io

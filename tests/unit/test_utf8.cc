// UTF-8 checks at the places where names and strings enter JSON or protobuf string fields.
#include <gtest/gtest.h>

#include <string>

#include "autodiff/variable.h"
#include "core/config.h"
#include "core/utf8.h"
#include "summary/summary.h"
#include "test_util.h"
#include "train/checkpoint.h"

namespace kiln {
namespace {

using testing::expect_error;

TEST(Utf8, WellFormedAndMalformedSequences) {
  for (const char *ok :
       {"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"})
    EXPECT_TRUE(is_utf8(ok)) << ok;
  for (const char *bad : {"\xFF", "\x80", "caf\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",
                          "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "a\xC3(b"})
    EXPECT_FALSE(is_utf8(bad)) << ::testing::PrintToString(std::string(bad));
  EXPECT_TRUE(is_utf8(std::string("nul\0inside", 10)));
  expect_error([] { require_utf8("ok\xFE", "op", "the thing"); }, Code::kInvalidArgument,
               {"op: the thing is not valid UTF-8", "0xFE", "offset 2"});
}

TEST(Utf8, ConfigsRefuseMalformedKeysAndStrings) {
  Config c;
  expect_error([&] { c.set("\xFF\xFE", 1); }, Code::kInvalidArgument, {"config", "key", "UTF-8"});
  expect_error([&] { c.set("name", std::string("\xFF")); }, Code::kInvalidArgument, {"key 'name'", "UTF-8"});
  expect_error(
      [&] {
        c.set("names", std::vector<std::string>{"a", "\xC3"});
      },
      Code::kInvalidArgument, {"key 'names'", "UTF-8"});
  c.set("name", std::string("caf\xC3\xA9"));
  EXPECT_EQ(Config::from_json(c.to_json()).get_string("name"), "caf\xC3\xA9");
}

TEST(Utf8, NamesThatReachFilesAreChecked) {
  expect_error([] { autodiff::Variable("\xFF", Tensor::scalar(1.0f), true); }, Code::kInvalidArgument,
               {"Variable", "name", "UTF-8"});
  const train::TrackablePtr v =
      train::make_trackable(std::make_shared<autodiff::Variable>("v", Tensor::scalar(1.0f), true));
  expect_error(
      [&] {
        train::Checkpoint bad({{"\xFF", v}});
      },
      Code::kInvalidArgument, {"Checkpoint", "UTF-8"});
  train::Checkpoint ckpt({{"v", v}});
  expect_error([&] { ckpt.track("\xC3", v); }, Code::kInvalidArgument, {"Checkpoint", "UTF-8"});
  expect_error([] { summary::scalar("lo\xFFss", 1.0, 0); }, Code::kInvalidArgument,
               {"summary.scalar", "tag", "UTF-8"});
}

}  // namespace
}  // namespace kiln

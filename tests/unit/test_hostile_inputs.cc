// Inputs built to hang or crash a reader: a FIFO with no writer (whose open blocks), a device that
// never ends (/dev/zero), and configs nested deep enough to overflow the stack of a recursive
// walk. Each gets a clear error naming the path or the limit, at once.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "core/config.h"
#include "core/error.h"
#include "data/readers.h"
#include "io/bundle.h"
#include "io/event_reader.h"
#include "io/file_util.h"
#include "test_util.h"

namespace kiln {
namespace {

std::string fifo_in_temp_dir(const std::string &name) {
  static const testing::TempDir dir("kiln_hostile");  // removed at the program's exit
  const std::string path = dir / name;
  ::unlink(path.c_str());
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

TEST(HostileInputs, FifosAndDevicesAreRefusedWithoutBlocking) {
  const std::string fifo = fifo_in_temp_dir("data.fifo");
  for (const std::string &path : {fifo, std::string("/dev/zero")}) {
    SCOPED_TRACE(path);
    testing::expect_error([&] { data::read_idx(path); }, Code::kFailedPrecondition,
                          {"read_idx", path, "not a regular file"});
    testing::expect_error([&] { data::read_csv(path, data::CsvOptions()); }, Code::kFailedPrecondition,
                          {"read_csv", path, "not a regular file"});
    testing::expect_error([&] { io::read_file(path); }, Code::kFailedPrecondition,
                          {path, "not a regular file"});
    testing::expect_error([&] { io::events::RecordReader reader(path); }, Code::kInvalidArgument,
                          {path, "not a regular file"});
  }
  // A checkpoint whose index is a FIFO.
  const std::string index = fifo_in_temp_dir("ckpt.index");
  const std::string prefix = index.substr(0, index.size() - std::string(".index").size());
  testing::expect_error([&] { io::BundleReader reader(prefix); }, Code::kDataLoss, {"not a regular file"});
}

std::string nested_json(int depth, bool lists) {
  std::string open, close;
  for (int i = 0; i < depth - 1; ++i) {
    open += lists ? "[" : "{\"a\":";
    close += lists ? "]" : "}";
  }
  return "{\"a\":" + open + "1" + close + "}";
}

TEST(HostileInputs, ConfigsNestAtMost512Levels) {
  for (bool lists : {false, true}) {
    SCOPED_TRACE(lists ? "lists" : "objects");
    const Config ok = Config::from_json(nested_json(512, lists));
    EXPECT_EQ(Config::from_json(ok.to_json()).to_json(), ok.to_json());
    for (int depth : {513, 100000})
      testing::expect_error([&] { Config::from_json(nested_json(depth, lists)); }, Code::kInvalidArgument,
                            {"nests deeper than 512"});
  }
  // Not an object at the top, or with NaN (whose markers are walked): refused before any walk
  // that could recurse 100000 levels (quoting the value, or turning markers back into NaN).
  for (const char *inner : {"1", "NaN", "{\"a\": NaN}"})
    for (const std::string &text :
         {std::string(100000, '[') + inner + std::string(100000, ']'),
          "{\"a\":" + std::string(100000, '[') + inner + std::string(100000, ']') + "}"}) {
      SCOPED_TRACE(text.substr(99990, 30));
      testing::expect_error([&] { Config::from_json(text); }, Code::kInvalidArgument,
                            {"nests deeper than 512"});
    }
  // Built by set(): a config of 512 levels fits under no key.
  const Config deep = Config::from_json(nested_json(512, false));
  Config outer;
  testing::expect_error([&] { outer.set("k", deep); }, Code::kInvalidArgument,
                        {"key 'k'", "deeper than 512"});
  testing::expect_error([&] { outer.set("k", std::vector<Config>{deep}); }, Code::kInvalidArgument,
                        {"key 'k'", "deeper than 512"});
  EXPECT_FALSE(outer.has("k"));
}

}  // namespace
}  // namespace kiln

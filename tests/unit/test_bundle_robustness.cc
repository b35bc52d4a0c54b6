// Regression tests for what fuzzing the checkpoint readers found (fuzz/): each case is the
// smallest form of an input that made a reader misbehave, with the error it must give now.
//  - an index whose table repeats a key, or has keys out of order (its checksums all hold);
//  - an index block (checksum good) with a block handle past the end of the file: LevelDB
//    allocated the size it names before reading (2 GiB for the fuzzer's input, or bad_alloc);
//  - an entry whose size field is huge: the reader allocated that many bytes before it looked
//    at the data file (a string tensor's std::string threw std::length_error, not a kiln::Error);
//  - a state file naming "<dir>//<name>": rewriting it stored "/<name>", a file at the root.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../../fuzz/fuzz_table.h"  // a LevelDB table writer that takes keys in any order
#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/bundle_internal.h"
#include "io/checkpoint_state.h"
#include "io/crc32c.h"
#include "test_util.h"

namespace kiln::io {
namespace {

using testing::expect_error;
using testing::TempDir;

std::string header_bytes() {
  tfproto::BundleHeaderProto h;
  h.set_num_shards(1);
  h.mutable_version()->set_producer(1);
  return h.SerializeAsString();
}

// A float32 [n] entry over data[offset, offset + 4n).
std::string float_entry(const std::string &data, int64_t offset, int64_t n) {
  tfproto::BundleEntryProto e;
  e.set_dtype(tfproto::DT_FLOAT);
  e.mutable_shape()->add_dim()->set_size(n);
  e.set_offset(offset);
  e.set_size(4 * n);
  e.set_crc32c(crc32c::mask(crc32c::value(data.data() + offset, static_cast<size_t>(4 * n))));
  return e.SerializeAsString();
}

// LevelDB reports an I/O failure as text with strerror(errno) in it: a full disk is
// ResourceExhausted and a read-only directory FailedPrecondition, as kiln's own file code says
// (INTERNAL before, whatever the cause).
TEST(BundleRobustnessTest, LevelDbIoErrorsKeepTheirErrnosCode) {
  const auto code_of = [](const leveldb::Status &st) {
    try {
      bundle_internal::fail_status(st, "writing ckpt");
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find("writing ckpt"), std::string::npos) << e.what();
      return e.code();
    }
    return Code::kOk;
  };
  EXPECT_EQ(code_of(leveldb::Status::IOError("/d/ckpt.index", std::strerror(ENOSPC))),
            Code::kResourceExhausted);
  EXPECT_EQ(code_of(leveldb::Status::IOError("/d/ckpt.index", std::strerror(EROFS))),
            Code::kFailedPrecondition);
  EXPECT_EQ(code_of(leveldb::Status::IOError("/d/ckpt.index", std::strerror(EACCES))),
            Code::kFailedPrecondition);
  EXPECT_EQ(code_of(leveldb::Status::NotFound("/d/ckpt.index", "missing")), Code::kNotFound);
  EXPECT_EQ(code_of(leveldb::Status::IOError("/d/ckpt.index", std::strerror(EIO))), Code::kInternal);
}

TEST(BundleRobustnessTest, RepeatedOrUnorderedKeysAreDataLoss) {
  TempDir dir;
  const std::string data(16, '\0');
  testing::spit(dir / "b.data-00000-of-00001", data);
  struct Case {
    std::vector<std::pair<std::string, std::string>> records;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      // The fuzzer's find: the same name twice, with different sizes (the reader listed both,
      // and entry() / read() took the first while entries() also showed the second).
      {{{"", header_bytes()}, {"w", float_entry(data, 0, 2)}, {"w", float_entry(data, 0, 4)}},
       {"'w'", "repeats"}},
      {{{"", header_bytes()}, {"b", float_entry(data, 0, 1)}, {"a", float_entry(data, 4, 1)}},
       {"'a'", "out of order", "'b'"}},
  };
  for (const Case &c : cases) {
    fuzz::write_table(dir / "b.index", c.records, /*mode=*/0);
    std::vector<std::string> expect = c.expect;
    expect.push_back("b.index");
    expect_error([&] { BundleReader r(dir / "b"); }, Code::kDataLoss, expect);
  }
  // In order, the same table reads.
  fuzz::write_table(dir / "b.index",
                    {{"", header_bytes()}, {"a", float_entry(data, 4, 1)}, {"b", float_entry(data, 0, 1)}},
                    0);
  BundleReader r(dir / "b");
  EXPECT_EQ(r.entries().size(), 2u);
  EXPECT_EQ(r.read("a").num_elements(), 1);
}

TEST(BundleRobustnessTest, BlockHandleOutsideTheFileIsDataLoss) {
  TempDir dir;
  const std::string data(16, '\0');
  testing::spit(dir / "b.data-00000-of-00001", data);
  std::vector<std::pair<std::string, std::string>> records = {{"", header_bytes()}};
  for (char c = 'a'; c <= 'h'; ++c) records.emplace_back(std::string(1, c), float_entry(data, 0, 4));
  // 64-byte blocks: several data blocks, so the index block has several handles.
  const fuzz::TableParts parts = fuzz::table_parts(records, fuzz::kSmallBlocks);
  ASSERT_GT(parts.index.size(), 2u);
  testing::spit(dir / "b.index", fuzz::finish_table(parts.blocks, parts.index));
  EXPECT_EQ(BundleReader(dir / "b").entries().size(), 8u);
  // 2 GiB (what LevelDB allocated for the fuzzer's input), 1 TiB (std::bad_alloc), and a few
  // KiB past the end of the file.
  for (const uint64_t bad_size : {uint64_t{1} << 31, uint64_t{1} << 40, parts.blocks.size() + 4096}) {
    auto index = parts.index;
    std::string handle;
    fuzz::table_detail::put_varint64(&handle, 0);
    fuzz::table_detail::put_varint64(&handle, bad_size);
    index[1].second = handle;
    testing::spit(dir / "b.index", fuzz::finish_table(parts.blocks, index));
    SCOPED_TRACE(bad_size);
    expect_error([&] { BundleReader r(dir / "b"); }, Code::kDataLoss,
                 {"b.index", "points at a block of " + std::to_string(bad_size) + " bytes", "outside"});
  }
}

TEST(BundleRobustnessTest, HugeSizesFailOnTheDataFileBeforeAnyAllocation) {
  TempDir dir;
  const std::string data(64, '\x01');
  testing::spit(dir / "b.data-00000-of-00001", data);
  testing::RawIndex idx;
  idx.header.set_num_shards(1);
  idx.header.mutable_version()->set_producer(1);
  // float32 [2^43]: 32 TiB, which no allocation gives (ASan aborts on it; malloc fails).
  tfproto::BundleEntryProto big;
  big.set_dtype(tfproto::DT_FLOAT);
  big.mutable_shape()->add_dim()->set_size(int64_t{1} << 43);
  big.set_size(int64_t{1} << 45);
  idx.entries.emplace_back("big", big);
  // A string scalar of 2^62 bytes: std::string threw std::length_error.
  tfproto::BundleEntryProto str;
  str.set_dtype(tfproto::DT_STRING);
  str.mutable_shape();
  str.set_size(int64_t{1} << 62);
  idx.entries.emplace_back("str", str);
  // Both within the file's size but past its end at their offset.
  tfproto::BundleEntryProto late = big;
  late.mutable_shape()->mutable_dim(0)->set_size(8);
  late.set_size(32);
  late.set_offset(40);
  idx.entries.emplace_back("late", late);
  testing::write_raw_index(dir / "b.index", idx);
  BundleReader r(dir / "b");
  expect_error([&] { r.read("big"); }, Code::kDataLoss, {"'big'", "truncated", "64-byte file"});
  expect_error([&] { r.read_strings("str"); }, Code::kDataLoss, {"'str'", "truncated", "64-byte file"});
  expect_error([&] { r.read("late"); }, Code::kDataLoss, {"'late'", "bytes [40, 72)"});
}

TEST(BundleRobustnessTest, StatePathWithDoubledSlashStaysInTheDirectory) {
  TempDir dir;
  CheckpointState s;
  s.model_checkpoint_path = dir.path() + "//ckpt-2";
  s.all_model_checkpoint_paths = {dir.path() + "///ckpt-1"};
  update_checkpoint_state(dir.path(), s);
  const std::string text = testing::slurp(dir / "checkpoint");
  EXPECT_NE(text.find("model_checkpoint_path: \"ckpt-2\""), std::string::npos) << text;
  EXPECT_NE(text.find("all_model_checkpoint_paths: \"ckpt-1\""), std::string::npos) << text;
  const auto again = get_checkpoint_state(dir.path());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->model_checkpoint_path, dir / "ckpt-2");
  EXPECT_EQ(again->all_model_checkpoint_paths, (std::vector<std::string>{dir / "ckpt-1", dir / "ckpt-2"}));
  // Only slashes after the directory: it names the directory itself, kept (with one slash).
  s.model_checkpoint_path = dir.path() + "//";
  s.all_model_checkpoint_paths.clear();
  update_checkpoint_state(dir.path(), s);
  EXPECT_EQ(get_checkpoint_state(dir.path())->model_checkpoint_path, dir.path() + "/");
}

}  // namespace
}  // namespace kiln::io

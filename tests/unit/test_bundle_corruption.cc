// Damaged and unusual bundles: flipped bytes and truncation anywhere in the index or data (always
// a kiln::Error, never a crash), missing files, and bundles crafted through LevelDB that kiln's
// writer never makes but TensorFlow may: several shards, big-endian data, Snappy blocks, sliced
// entries, dtypes kiln has no type for, invalid shapes and headers.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "bundle_test_util.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/crc32c.h"
#include "test_util.h"

namespace kiln::io {
namespace {

using testing::RawIndex;
using testing::expect_error;
using testing::TempDir;

const char *kData1 = ".data-00000-of-00001";

// Opens prefix and reads every entry; returns "" or the first kiln::Error's message. Anything
// else (another exception, a crash) fails the test.
std::string open_and_read_all(const std::string &prefix, Code *code = nullptr) {
  try {
    BundleReader r(prefix);
    for (const BundleEntry &e : r.entries()) {
      if (e.dtype == TfDType::kString)
        r.read_strings(e.key);
      else
        r.read(e.key);
    }
    return "";
  } catch (const Error &e) {
    if (code) *code = e.code();
    return e.what();
  }
}

// ---- damaged TensorFlow fixtures ----

TEST(BundleCorruptionTest, FlippedDataByteNamesTensor) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  std::string data = testing::slurp(prefix + kData1);
  const std::string kernel = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE";
  data[1000] = static_cast<char>(data[1000] ^ 0x10);           // inside the first kernel
  data[data.size() - 5] = static_cast<char>(data.back() ^ 1);  // inside the object graph's strings
  testing::spit(prefix + kData1, data);
  BundleReader r(prefix);
  expect_error([&] { r.read(kernel); }, Code::kDataLoss, {kernel, "ckpt.data-00000-of-00001", "checksum"});
  expect_error([&] { r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH"); }, Code::kDataLoss,
               {"_CHECKPOINTABLE_OBJECT_GRAPH", "checksum"});
  // The other tensors are still fine.
  EXPECT_EQ(*r.read("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE").data<int64_t>(), 1500);
}

TEST(BundleCorruptionTest, FlippedStringLengthNamesTensor) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  BundleReader clean(testing::tf2_prefix());
  const BundleEntry &g = clean.entry("_CHECKPOINTABLE_OBJECT_GRAPH");
  // Every byte of the string layout's head: the length varint and the length checksum.
  for (int64_t i = 0; i < 6; ++i) {
    std::string data = testing::slurp(testing::tf2_prefix() + kData1);
    data[static_cast<size_t>(g.offset + i)] ^= 0x01;
    testing::overwrite(prefix + kData1, data);
    BundleReader r(prefix);
    expect_error([&] { r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH"); }, Code::kDataLoss,
                 {"_CHECKPOINTABLE_OBJECT_GRAPH"});
  }
}

TEST(BundleCorruptionTest, TruncatedAndEmptyDataFile) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  const std::string data = testing::slurp(prefix + kData1);
  testing::spit(prefix + kData1, data.substr(0, 700000));
  {
    BundleReader r(prefix);
    // Before the cut: fine. After it: DataLoss naming file and tensor.
    r.read("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
    const std::string v1 = "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE";
    expect_error([&] { r.read(v1); }, Code::kDataLoss, {"truncated", v1, "ckpt.data-00000-of-00001"});
    expect_error([&] { r.read_strings("_CHECKPOINTABLE_OBJECT_GRAPH"); }, Code::kDataLoss, {"truncated"});
  }
  testing::spit(prefix + kData1, "");
  BundleReader r(prefix);
  expect_error([&] { r.read("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"); }, Code::kDataLoss,
               {"truncated"});
}

TEST(BundleCorruptionTest, MissingFiles) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  expect_error([&] { BundleReader r(prefix); }, Code::kNotFound, {"ckpt.index"});
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  std::remove((prefix + kData1).c_str());
  BundleReader r(prefix);  // the data file opens lazily
  EXPECT_EQ(r.entries().size(), 15u);
  expect_error([&] { r.read("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"); }, Code::kDataLoss,
               {"ckpt.data-00000-of-00001", "optimizer/_iterations"});
}

// Every single-byte flip of the index: never a crash, and a flip inside any block the reader
// uses (data blocks, index block, both with CRCs) or the footer's magic is DataLoss at open.
void flip_every_index_byte(const std::string &src_prefix) {
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(src_prefix, prefix);
  const std::string index = testing::slurp(src_prefix + ".index");
  // Where the blocks end: the index block's handle is in the footer; its end is where the
  // footer starts, and the metaindex (unused without a filter) lies just before it.
  const size_t footer = index.size() - 48;
  int errors = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string bad = index;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      testing::overwrite(prefix + ".index", bad);
      Code code = Code::kOk;
      const std::string msg = open_and_read_all(prefix, &code);
      if (!msg.empty()) {
        ++errors;
        EXPECT_TRUE(code == Code::kDataLoss) << "byte " << i << ": " << code_name(code) << " " << msg;
        EXPECT_NE(msg.find("ckpt"), std::string::npos) << msg;
      }
      if (i >= footer + 40) {
        EXPECT_FALSE(msg.empty()) << "flipped magic byte " << i << " accepted";
      }
    }
  }
  EXPECT_GT(errors, static_cast<int>(index.size()));
}

TEST(BundleCorruptionTest, FlippedIndexBytesTf2) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  flip_every_index_byte(testing::tf2_prefix());
  // A flip in the single data block (bytes 0..880 + trailer) is caught by its CRC at open.
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  const std::string index = testing::slurp(prefix + ".index");
  for (size_t i = 0; i < 886; i += 7) {
    std::string bad = index;
    bad[i] ^= 0x04;
    testing::overwrite(prefix + ".index", bad);
    expect_error([&] { BundleReader r(prefix); }, Code::kDataLoss, {"ckpt.index"});
  }
}

TEST(BundleCorruptionTest, FlippedIndexBytesBert) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::bert_prefix());
  flip_every_index_byte(testing::bert_prefix());
}

TEST(BundleCorruptionTest, TruncatedOrGarbageIndex) {
  KILN_SKIP_WITHOUT_FIXTURE(testing::tf2_prefix());
  TempDir dir;
  const std::string prefix = dir / "ckpt";
  testing::copy_bundle(testing::tf2_prefix(), prefix);
  const std::string index = testing::slurp(prefix + ".index");
  for (size_t n : {size_t{0}, size_t{1}, size_t{10}, size_t{47}, size_t{48}, size_t{100}, index.size() / 2,
                   index.size() - 48, index.size() - 1}) {
    testing::spit(prefix + ".index", index.substr(0, n));
    expect_error([&] { BundleReader r(prefix); }, Code::kDataLoss, {"ckpt.index"});
  }
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
  testing::spit(prefix + ".index", garbage);
  expect_error([&] { BundleReader r(prefix); }, Code::kDataLoss, {"ckpt.index"});
  // The right magic number over garbage handles.
  std::string fake = garbage.substr(0, 200) + index.substr(index.size() - 48);
  testing::spit(prefix + ".index", fake);
  expect_error([&] { BundleReader r(prefix); }, Code::kDataLoss, {"ckpt.index"});
  // A directory where the index should be.
  std::remove((prefix + ".index").c_str());
  std::filesystem::create_directory(prefix + ".index");
  expect_error([&] { BundleReader r(prefix); }, Code::kDataLoss, {"ckpt.index"});
}

// ---- crafted bundles ----

// A kiln bundle to start from: returns its raw index.
RawIndex write_base(const std::string &prefix) {
  BundleWriter w(prefix);
  w.add("f", testing::make({2, 2}, {1.0f, -0.0f, 3.5f, 4.0f}));
  w.add("i", Tensor::scalar<int64_t>(-7));
  w.add_strings("s", {2}, {"ab", ""});
  w.finish();
  return testing::read_raw_index(prefix + ".index");
}

tfproto::BundleEntryProto *find(RawIndex *idx, const std::string &key) {
  for (auto &kv : idx->entries)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

TEST(BundleCraftedTest, SeveralShards) {
  TempDir dir;
  RawIndex a = write_base(dir / "a");
  BundleWriter wb(dir / "b");
  wb.add("g", testing::make({3}, {7.0f, 8.0f, 9.0f}));
  wb.finish();
  RawIndex b = testing::read_raw_index(dir / "b.index");
  // The merged index TF's MergeBundles would make: a's tensors in shard 0, b's in shard 1.
  RawIndex merged = a;
  merged.header.set_num_shards(2);
  for (auto &kv : b.entries) {
    kv.second.set_shard_id(1);
    merged.entries.push_back(kv);
  }
  std::sort(merged.entries.begin(), merged.entries.end(),
            [](const auto &x, const auto &y) { return x.first < y.first; });
  testing::write_raw_index(dir / "m.index", merged);
  std::filesystem::rename(dir / "a.data-00000-of-00001", dir / "m.data-00000-of-00002");
  std::filesystem::rename(dir / "b.data-00000-of-00001", dir / "m.data-00001-of-00002");
  {
    BundleReader r(dir / "m");
    EXPECT_EQ(r.num_shards(), 2);
    EXPECT_EQ(r.entry("g").shard_id, 1);
    EXPECT_EQ(testing::values(r.read("g")), (std::vector<float>{7.0f, 8.0f, 9.0f}));
    EXPECT_EQ(*r.read("i").data<int64_t>(), -7);
    EXPECT_EQ(r.read_strings("s"), (std::vector<std::string>{"ab", ""}));
  }
  std::remove((dir / "m.data-00001-of-00002").c_str());
  BundleReader r(dir / "m");
  EXPECT_EQ(*r.read("i").data<int64_t>(), -7);
  expect_error([&] { r.read("g"); }, Code::kDataLoss, {"m.data-00001-of-00002", "'g'"});
  // An entry naming a shard the header does not have.
  merged.entries.front().second.set_shard_id(2);
  testing::write_raw_index(dir / "m.index", merged);
  expect_error([&] { BundleReader bad(dir / "m"); }, Code::kDataLoss, {"shard 2 of 2"});
}

// Data written on a big-endian machine: the header says BIG, numbers (and the string length
// checksums) are big-endian, and the reader swaps them.
TEST(BundleCraftedTest, BigEndianData) {
  TempDir dir;
  const std::vector<float> f = {1.0f, -2.5f, 3e38f};
  const std::vector<int64_t> i64 = {-7, 1LL << 40};
  const std::vector<uint16_t> bf = {0x3f80, 0xc000};
  std::string data;
  RawIndex idx;
  idx.header.set_num_shards(1);
  idx.header.set_endianness(tfproto::BundleHeaderProto::BIG);
  idx.header.mutable_version()->set_producer(1);
  auto add = [&](const std::string &key, tfproto::DataType dt, std::vector<int64_t> shape, std::string bytes,
                 uint32_t crc) {
    tfproto::BundleEntryProto e;
    e.set_dtype(dt);
    for (int64_t d : shape) e.mutable_shape()->add_dim()->set_size(d);
    e.set_offset(static_cast<int64_t>(data.size()));
    e.set_size(static_cast<int64_t>(bytes.size()));
    e.set_crc32c(crc32c::mask(crc));
    data += bytes;
    idx.entries.emplace_back(key, e);
  };
  auto swapped = [](const void *p, size_t n, size_t elem) {
    std::string s(static_cast<const char *>(p), n);
    for (size_t k = 0; k < n; k += elem)
      std::reverse(s.begin() + static_cast<long>(k), s.begin() + static_cast<long>(k + elem));
    return s;
  };
  std::string fb = swapped(f.data(), 12, 4), ib = swapped(i64.data(), 16, 8), bb = swapped(bf.data(), 4, 2);
  add("bf", tfproto::DT_BFLOAT16, {2}, bb, crc32c::value(bb.data(), bb.size()));
  add("f", tfproto::DT_FLOAT, {3}, fb, crc32c::value(fb.data(), fb.size()));
  add("i", tfproto::DT_INT64, {2}, ib, crc32c::value(ib.data(), ib.size()));
  // Strings "hi", "": varints 02 00; the CRC of the lengths as big-endian u32s, stored big-endian.
  const std::string lens_be("\0\0\0\x02\0\0\0\0", 8);
  uint32_t crc = crc32c::value(lens_be.data(), lens_be.size());
  const uint32_t m = crc32c::mask(crc);
  const char check[4] = {static_cast<char>(m >> 24), static_cast<char>(m >> 16), static_cast<char>(m >> 8),
                         static_cast<char>(m)};
  crc = crc32c::extend(crc, check, 4);
  crc = crc32c::extend(crc, "hi", 2);
  add("s", tfproto::DT_STRING, {2}, std::string("\x02\x00", 2) + std::string(check, 4) + "hi", crc);
  testing::write_raw_index(dir / "be.index", idx);
  testing::spit(dir / "be.data-00000-of-00001", data);

  BundleReader r(dir / "be");
  EXPECT_EQ(testing::values(r.read("f")), f);
  EXPECT_EQ(testing::values<int64_t>(r.read("i")), i64);
  const Tensor b = r.read("bf");
  EXPECT_EQ(b.data<bfloat16>()[0].bits, 0x3f80);
  EXPECT_EQ(b.data<bfloat16>()[1].bits, 0xc000);
  EXPECT_EQ(r.read_strings("s"), (std::vector<std::string>{"hi", ""}));
}

// TF's reader handles Snappy blocks although TF writes none; so does kiln's (through LevelDB).
TEST(BundleCraftedTest, SnappyIndexBlocks) {
  TempDir dir;
  RawIndex idx = write_base(dir / "a");
  // Many similar entries make a block Snappy actually shrinks (LevelDB keeps it raw otherwise).
  BundleWriter w(dir / "big");
  for (int k = 0; k < 200; ++k)
    w.add("model/layer_with_weights-" + std::to_string(1000 + k) + "/kernel/.ATTRIBUTES/VARIABLE_VALUE",
          Tensor::scalar(static_cast<float>(k)));
  w.finish();
  RawIndex big = testing::read_raw_index(dir / "big.index");
  testing::write_raw_index(dir / "big.index", big, leveldb::kSnappyCompression);
  const std::string bytes = testing::slurp(dir / "big.index");
  // The first data block's trailer type byte: at the handle size from the index block; simpler to
  // check the table shrank against the uncompressed one.
  testing::write_raw_index(dir / "plain.index", big, leveldb::kNoCompression);
  EXPECT_LT(bytes.size(), testing::slurp(dir / "plain.index").size())
      << "Snappy did not compress: test is moot";
  BundleReader r(dir / "big");
  ASSERT_EQ(r.entries().size(), 200u);
  for (int k = 0; k < 200; k += 37)
    EXPECT_EQ(
        *r.read("model/layer_with_weights-" + std::to_string(1000 + k) + "/kernel/.ATTRIBUTES/VARIABLE_VALUE")
             .data<float>(),
        static_cast<float>(k));
}

TEST(BundleCraftedTest, UnsupportedEntries) {
  TempDir dir;
  RawIndex idx = write_base(dir / "c");
  // A half tensor (kiln has no float16), a sliced entry, and a rank-9 tensor.
  tfproto::BundleEntryProto half = *find(&idx, "f");
  half.set_dtype(tfproto::DT_HALF);
  half.set_size(8);
  tfproto::BundleEntryProto sliced = *find(&idx, "f");
  sliced.add_slices()->add_extent()->set_start(0);
  tfproto::BundleEntryProto deep = *find(&idx, "i");
  for (int k = 0; k < 9; ++k) deep.mutable_shape()->add_dim()->set_size(1);
  idx.entries.emplace_back("h", half);
  idx.entries.emplace_back("j", sliced);
  idx.entries.emplace_back("k", deep);
  testing::write_raw_index(dir / "c.index", idx);
  BundleReader r(dir / "c");
  EXPECT_EQ(r.entry("h").dtype, TfDType::kHalf);
  expect_error([&] { r.read("h"); }, Code::kUnimplemented, {"float16", "'h'"});
  EXPECT_TRUE(r.entry("j").sliced);
  expect_error([&] { r.read("j"); }, Code::kUnimplemented, {"'j'", "slices"});
  EXPECT_EQ(r.entry("k").shape.size(), 9u);
  expect_error([&] { r.read("k"); }, Code::kUnimplemented, {"'k'"});
  expect_error([&] { r.read_strings("f"); }, Code::kInvalidArgument, {"float32"});
}

TEST(BundleCraftedTest, InvalidEntriesAndHeaders) {
  TempDir dir;
  const RawIndex base = write_base(dir / "d");
  struct Case {
    const char *what;
    std::function<void(RawIndex *)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"negative dim", [](RawIndex *x) { find(x, "f")->mutable_shape()->mutable_dim(0)->set_size(-1); },
       "'f'"},
      {"unknown rank", [](RawIndex *x) { find(x, "f")->mutable_shape()->set_unknown_rank(true); },
       "unknown rank"},
      {"huge dims",
       [](RawIndex *x) {
         auto *s = find(x, "f")->mutable_shape();
         s->mutable_dim(0)->set_size(1LL << 40);
         s->mutable_dim(1)->set_size(1LL << 40);
       },
       "invalid shape"},
      {"negative offset", [](RawIndex *x) { find(x, "f")->set_offset(-4); }, "negative"},
      {"zero shards", [](RawIndex *x) { x->header.set_num_shards(0); }, "shard count"},
      {"newer consumer", [](RawIndex *x) { x->header.mutable_version()->set_min_consumer(2); }, "newer"},
      {"bad consumer", [](RawIndex *x) { x->header.mutable_version()->add_bad_consumers(1); }, "newer"},
      {"unknown byte order",
       [](RawIndex *x) { x->header.set_endianness(static_cast<tfproto::BundleHeaderProto::Endianness>(5)); },
       "byte order"},
  };
  for (const Case &c : cases) {
    RawIndex x = base;
    c.edit(&x);
    testing::write_raw_index(dir / "d.index", x);
    SCOPED_TRACE(c.what);
    expect_error([&] { BundleReader r(dir / "d"); }, Code::kDataLoss, {c.expect, "d.index"});
  }
  // Size and CRC disagreeing with the data: DataLoss on read, naming the tensor.
  RawIndex x = base;
  find(&x, "f")->set_size(12);
  find(&x, "i")->set_crc32c(find(&x, "i")->crc32c() ^ 1);
  find(&x, "s")->set_size(2);
  testing::write_raw_index(dir / "d.index", x);
  BundleReader r(dir / "d");
  expect_error([&] { r.read("f"); }, Code::kDataLoss, {"'f'", "12 bytes"});
  expect_error([&] { r.read("i"); }, Code::kDataLoss, {"'i'", "checksum"});
  expect_error([&] { r.read_strings("s"); }, Code::kDataLoss, {"'s'"});
  // No header at all.
  RawIndex none = base;
  leveldb::WritableFile *raw = nullptr;
  ASSERT_TRUE(leveldb::Env::Default()->NewWritableFile(dir / "d.index", &raw).ok());
  std::unique_ptr<leveldb::WritableFile> file(raw);
  leveldb::Options o;
  leveldb::TableBuilder tb(o, file.get());
  for (const auto &kv : none.entries) tb.Add(kv.first, kv.second.SerializeAsString());
  ASSERT_TRUE(tb.Finish().ok());
  ASSERT_TRUE(file->Close().ok());
  expect_error([&] { BundleReader bad(dir / "d"); }, Code::kDataLoss, {"header"});
}

}  // namespace
}  // namespace kiln::io

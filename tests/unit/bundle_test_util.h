// Helpers for the tensor-bundle and checkpoint-state tests: the TensorFlow fixtures, temporary
// directories, whole-file I/O, and raw access to a bundle's index (through LevelDB, as the
// reader) so tests can craft bundles kiln's writer never makes (several shards, big-endian data,
// Snappy blocks, sliced or damaged entries).
#pragma once

#include <gtest/gtest.h>
#include <leveldb/comparator.h>
#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <leveldb/table_builder.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tensor_bundle.pb.h"
#include "test_util.h"

namespace kiln::testing {

// ../shared/fixtures beside the repository (absent in a user's checkout: tests then skip).
inline std::string fixtures_dir() { return testing::source_dir() + "/../shared/fixtures"; }
inline std::string tf2_prefix() { return fixtures_dir() + "/tf2_checkpoint/keras_embedding.ckpt-0"; }
inline std::string bert_prefix() { return fixtures_dir() + "/tf1_bert_tiny/bert_model.ckpt"; }

#define KILN_SKIP_WITHOUT_FIXTURE(prefix)                                                       \
  do {                                                                                          \
    if (!std::filesystem::exists(std::string(prefix) + ".index"))                               \
      GTEST_SKIP() << "TensorFlow fixture " << (prefix) << " not found (../shared/fixtures is " \
                   << "only beside the development checkout)";                                  \
  } while (0)

inline std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Rewrites an existing file of the same size in place: no truncation, which ext4 would follow
// with a flush to disk (the corruption tests rewrite files thousands of times).
inline void overwrite(const std::string &path, const std::string &bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Copies `<src_prefix>.index` and its single data shard to `<dst_prefix>.*`.
inline void copy_bundle(const std::string &src_prefix, const std::string &dst_prefix) {
  spit(dst_prefix + ".index", slurp(src_prefix + ".index"));
  spit(dst_prefix + ".data-00000-of-00001", slurp(src_prefix + ".data-00000-of-00001"));
}

struct RawIndex {
  tfproto::BundleHeaderProto header;
  std::vector<std::pair<std::string, tfproto::BundleEntryProto>> entries;  // key order
};

inline RawIndex read_raw_index(const std::string &path) {
  RawIndex out;
  const std::string bytes = slurp(path);
  leveldb::RandomAccessFile *raw = nullptr;
  EXPECT_TRUE(leveldb::Env::Default()->NewRandomAccessFile(path, &raw).ok());
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  leveldb::Table *table_raw = nullptr;
  leveldb::Options options;
  EXPECT_TRUE(leveldb::Table::Open(options, file.get(), bytes.size(), &table_raw).ok()) << path;
  std::unique_ptr<leveldb::Table> table(table_raw);
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(leveldb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().empty()) {
      EXPECT_TRUE(out.header.ParseFromString(it->value().ToString()));
    } else {
      tfproto::BundleEntryProto e;
      EXPECT_TRUE(e.ParseFromString(it->value().ToString()));
      out.entries.emplace_back(it->key().ToString(), e);
    }
  }
  EXPECT_TRUE(it->status().ok());
  return out;
}

// Writes an index table as TensorFlow's writer would (header under "", then the entries in key
// order), optionally with Snappy blocks.
inline void write_raw_index(const std::string &path, const RawIndex &index,
                            leveldb::CompressionType compression = leveldb::kNoCompression) {
  leveldb::WritableFile *raw = nullptr;
  ASSERT_TRUE(leveldb::Env::Default()->NewWritableFile(path, &raw).ok());
  std::unique_ptr<leveldb::WritableFile> file(raw);
  leveldb::Options options;
  options.block_size = 262144;
  options.block_restart_interval = 16;
  options.compression = compression;
  leveldb::TableBuilder builder(options, file.get());
  auto entries = index.entries;
  std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
  builder.Add("", index.header.SerializeAsString());
  for (const auto &kv : entries) builder.Add(kv.first, kv.second.SerializeAsString());
  ASSERT_TRUE(builder.Finish().ok());
  ASSERT_TRUE(file->Close().ok());
}

}  // namespace kiln::testing

// LevelDB tables for the bundle-reader target: records in, a `.index` file out (with the
// options of the input's mode, fuzz_util.h), and a table's records out, for its seeds. The
// table format is LevelDB's (FORMATS.md §2.2), written here so any key order can be had.
#pragma once

#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/table.h>
#include <leveldb/table_builder.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "io/crc32c.h"

namespace kiln::fuzz {

namespace table_detail {

inline void put_varint64(std::string *out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void put_fixed32(std::string *out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// A block of the table format (every entry a restart point, no key sharing), then its trailer
// (type 0 = uncompressed, masked CRC32C of block and type). Appends to file, returns its handle.
inline std::string append_block(std::string *file,
                                const std::vector<std::pair<std::string, std::string>> &entries) {
  std::string block;
  std::vector<uint32_t> restarts;
  for (const auto &e : entries) {
    restarts.push_back(static_cast<uint32_t>(block.size()));
    put_varint32(&block, 0);
    put_varint32(&block, static_cast<uint32_t>(e.first.size()));
    put_varint32(&block, static_cast<uint32_t>(e.second.size()));
    block += e.first;
    block += e.second;
  }
  if (restarts.empty()) restarts.push_back(0);
  for (uint32_t r : restarts) put_fixed32(&block, r);
  put_fixed32(&block, static_cast<uint32_t>(restarts.size()));
  std::string handle;
  put_varint64(&handle, file->size());
  put_varint64(&handle, block.size());
  block.push_back('\0');
  const uint32_t crc = io::crc32c::value(block.data(), block.size());
  *file += block;
  put_fixed32(file, io::crc32c::mask(crc));
  return handle;
}

}  // namespace table_detail

// A table in parts: its data blocks, and its index block's entries (the last key of each data
// block -> the block's handle).
struct TableParts {
  std::string blocks;
  std::vector<std::pair<std::string, std::string>> index;
};

// Records as data blocks in input order, whose checksums hold: an unsorted or repeated key stays
// so (LevelDB's own TableBuilder asserts on those).
inline TableParts table_parts(std::vector<std::pair<std::string, std::string>> records, uint8_t mode) {
  using namespace table_detail;
  const size_t block_size = (mode & kSmallBlocks) ? 64 : 262144;
  TableParts t;
  std::vector<std::pair<std::string, std::string>> pending;
  size_t pending_bytes = 0;
  auto flush = [&] {
    if (pending.empty()) return;
    const std::string last = pending.back().first;
    t.index.emplace_back(last, append_block(&t.blocks, pending));
    pending.clear();
    pending_bytes = 0;
  };
  for (auto &r : records) {
    pending_bytes += r.first.size() + r.second.size() + 8;
    pending.push_back(std::move(r));
    if (pending_bytes >= block_size) flush();
  }
  flush();
  return t;
}

// blocks, then an empty metaindex, the index block of `index` (its values are block handles,
// or whatever bytes they are) and the footer.
inline std::string finish_table(std::string blocks,
                                const std::vector<std::pair<std::string, std::string>> &index) {
  using namespace table_detail;
  std::string footer = append_block(&blocks, {});  // the metaindex
  footer += append_block(&blocks, index);
  footer.resize(40, '\0');
  put_fixed32(&footer, 0x8b80fb57u);  // LevelDB's table magic, low word first
  put_fixed32(&footer, 0xdb477524u);
  return blocks + footer;
}

// Writes records as a table whose checksums hold (in input order but in the Snappy mode, which
// LevelDB's TableBuilder writes after a stable sort that keeps the first of equal keys).
inline void write_table(const std::string &path, std::vector<std::pair<std::string, std::string>> records,
                        uint8_t mode) {
  if (!(mode & kSnappy)) {
    TableParts t = table_parts(std::move(records), mode);
    write_file(path, finish_table(std::move(t.blocks), t.index));
    return;
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const auto &a, const auto &b) { return a.first < b.first; });
  records.erase(std::unique(records.begin(), records.end(),
                            [](const auto &a, const auto &b) { return a.first == b.first; }),
                records.end());
  leveldb::WritableFile *raw = nullptr;
  if (!leveldb::Env::Default()->NewWritableFile(path, &raw).ok()) {
    std::fprintf(stderr, "kiln fuzz: cannot create %s\n", path.c_str());
    std::abort();
  }
  std::unique_ptr<leveldb::WritableFile> file(raw);
  leveldb::Options o;
  o.block_size = (mode & kSmallBlocks) ? 64 : 262144;
  o.block_restart_interval = (mode & kSmallBlocks) ? 2 : 16;
  o.compression = leveldb::kSnappyCompression;
  leveldb::TableBuilder builder(o, file.get());
  for (const auto &r : records) builder.Add(r.first, r.second);
  if (!builder.Finish().ok() || !file->Close().ok()) {
    std::fprintf(stderr, "kiln fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// The records of a valid table, as the index part of a records-mode input.
inline std::string table_records(const std::string &path) {
  leveldb::RandomAccessFile *raw = nullptr;
  uint64_t size = 0;
  std::string out;
  if (!leveldb::Env::Default()->GetFileSize(path, &size).ok() ||
      !leveldb::Env::Default()->NewRandomAccessFile(path, &raw).ok())
    return out;
  std::unique_ptr<leveldb::RandomAccessFile> file(raw);
  leveldb::Table *table_raw = nullptr;
  if (!leveldb::Table::Open(leveldb::Options(), file.get(), size, &table_raw).ok()) return out;
  std::unique_ptr<leveldb::Table> table(table_raw);
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(leveldb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    put_record(&out, it->key().ToString(), it->value().ToString());
  return out;
}

}  // namespace kiln::fuzz

// Pieces shared by the bundle writer (bundle.cc) and reader (bundle_reader.cc): file names,
// the table options, TensorFlow's version numbers, and the string-tensor encoding helpers.
#pragma once

#include <leveldb/comparator.h>
#include <leveldb/options.h>
#include <leveldb/status.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/shape.h"
#include "io/crc32c.h"

namespace kiln::io::bundle_internal {

// TensorFlow's kTensorBundleVersion / kTensorBundleMinProducer / kTensorBundleMinConsumer:
// files say which readers they need, and kiln reads what version-1 readers read.
inline constexpr int kBundleVersion = 1;
inline constexpr int kBundleMinProducer = 0;
inline constexpr int kBundleMinConsumer = 0;
// Far more shards than any writer makes; a larger count is a corrupt header.
inline constexpr int kMaxShards = 1 << 20;
// LevelDB's table footer: two block handles padded to 40 bytes, then the magic number.
inline constexpr size_t kFooterSize = 48;
inline constexpr uint64_t kTableMagic = 0xdb4775248b80fb57ull;
inline constexpr size_t kBlockTrailerSize = 5;

static_assert(sizeof(bool) == 1, "DT_BOOL is one byte per element, as kiln's bool");

inline std::string index_path(const std::string &prefix) { return prefix + ".index"; }

inline std::string data_path(const std::string &prefix, int shard, int num_shards) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, ".data-%05d-of-%05d", shard, num_shards);
  return prefix + suffix;
}

// The options TensorFlow's BundleWriter gives its table: 256 KiB blocks, a restart point every
// 16 keys, bytewise keys, no filter. Snappy is off, as in TF ("not supported on all platforms"),
// which also keeps the bytes identical to TF's.
inline leveldb::Options table_options() {
  leveldb::Options o;
  o.comparator = leveldb::BytewiseComparator();
  o.block_size = 262144;
  o.block_restart_interval = 16;
  o.compression = leveldb::kNoCompression;
  o.filter_policy = nullptr;
  o.paranoid_checks = true;  // Table::Open then verifies the index block's CRC too
  return o;
}

inline void put_varint64(std::string *out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Decodes a varint64 from [*p, end); false when it runs past end or over 10 bytes.
inline bool get_varint64(const char **p, const char *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift <= 63 && *p < end; shift += 7) {
    const uint64_t byte = static_cast<unsigned char>(*(*p)++);
    v |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

// Fixed-width integers in the byte order of the bundle's data (the length checksums of a
// string tensor are written as the writer's native integers).
template <typename T>
inline void append_fixed(std::string *out, T v, bool big_endian) {
  unsigned char b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) {
    const size_t shift = 8 * (big_endian ? sizeof(T) - 1 - i : i);
    b[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> shift);
  }
  out->append(reinterpret_cast<const char *>(b), sizeof(T));
}

inline uint32_t load_fixed32(const char *p, bool big_endian) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    const size_t shift = 8 * (big_endian ? 3 - i : i);
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << shift;
  }
  return v;
}

// The CRC of a string tensor's lengths as TensorFlow computes it: each length as a 32-bit
// integer, or 64-bit when it does not fit.
inline uint32_t extend_with_lengths(uint32_t crc, const std::vector<uint64_t> &lengths, bool big_endian) {
  std::string buf;
  buf.reserve(lengths.size() * 4);
  for (uint64_t len : lengths) {
    if (len <= 0xffffffffull) {
      append_fixed<uint32_t>(&buf, static_cast<uint32_t>(len), big_endian);
    } else {
      append_fixed<uint64_t>(&buf, len, big_endian);
    }
  }
  return crc32c::extend(crc, buf.data(), buf.size());
}

inline void byte_swap(void *data, int64_t n, size_t elem_size) {
  if (elem_size <= 1) return;
  auto *p = static_cast<unsigned char *>(data);
  for (int64_t i = 0; i < n; ++i, p += elem_size) std::reverse(p, p + elem_size);
}

// A LevelDB error as kiln's: NotFound, or for an IOError the code of the errno whose text it
// carries (a full disk is ResourceExhausted, a read-only directory FailedPrecondition).
[[noreturn]] void fail_status(const leveldb::Status &s, const std::string &what);

inline std::string shape_string(const std::vector<int64_t> &dims) { return list_string(dims); }

// For the crash-safety tests: BundleWriter::finish() calls the hook after each change it makes
// under a final name (bundle.h, "Crash safety"), with the step's name ("data_renamed",
// "index_moved_aside", ...). A test throws from it to stop the save at that point, leaving the
// files as a crash there would (but for the temporaries, which the writer then removes). Null
// (the default) in normal use; set it only while no writer runs.
using FinishStepHook = void (*)(const char *step);
void set_finish_step_hook(FinishStepHook hook);

}  // namespace kiln::io::bundle_internal

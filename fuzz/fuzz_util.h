// Shared by kiln's fuzz targets and their seed writer: a private scratch directory for the files
// a target hands to the readers, and the encoding of one fuzz input as a bundle's two files.
#pragma once

#include <fcntl.h>
#include <google/protobuf/stubs/logging.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kiln::fuzz {

// A directory of this process's own, made on first use and removed at exit (fuzz/run.sh also
// removes its parent, $KILN_FUZZ_TMP, after a crash). Else on tmpfs (/dev/shm) when there is
// one: every input is written to files, and a disk's fsync would cost more than the parsing.
inline const std::string &scratch_dir() {
  static const std::string dir = [] {
    const char *tmp = std::getenv("TMPDIR");
    const char *own = std::getenv("KILN_FUZZ_TMP");
    std::string base = own && *own                                 ? own
                       : std::filesystem::is_directory("/dev/shm") ? "/dev/shm"
                                                                   : (tmp && *tmp ? tmp : "/tmp");
    std::string tmpl = base + "/kiln_fuzz_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("kiln fuzz: mkdtemp");
      std::abort();
    }
    return tmpl;
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

// Protobuf logs each string field with invalid UTF-8 it parses (then fails the parse, which kiln
// reports): millions of lines under a fuzzer. The targets call this once.
inline void quiet_protobuf() {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char *, int, const std::string &) {});
}

// Replaces path with bytes (a harness failure, not a finding, aborts with a message).
inline void write_file(const std::string &path, const void *bytes, size_t n) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(("kiln fuzz: open " + path).c_str());
    std::abort();
  }
  const char *p = static_cast<const char *>(bytes);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) {
      std::perror(("kiln fuzz: write " + path).c_str());
      std::abort();
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  ::close(fd);
}

inline void write_file(const std::string &path, const std::string &bytes) {
  write_file(path, bytes.data(), bytes.size());
}

// One input of the bundle-reader target:
//   byte 0      the mode: bit 0 clear, the index part is the `.index` file as it is; bit 0 set,
//               it is a list of records (below) that LevelDB's TableBuilder writes as a table,
//               so every block checksum is right and mutations reach the entries themselves
//               (bit 1: Snappy blocks; bit 2: 64-byte blocks, so several data blocks; bit 3: the
//               records are the index block itself, key -> block handle, over data blocks that
//               are the data part's bytes, so the handles LevelDB follows are the fuzzer's)
//   bytes 1..4  n, little-endian: the index part's length (one past the end takes the rest)
//   then        the index part (n bytes), then the data file (the rest)
// A record is varint32 key length, key, varint32 value length, value; the header's key is "".
// Records go into the table in input order, so unsorted or repeated keys give a table whose
// checksums hold but whose order does not.
struct BundleInput {
  uint8_t mode = 0;
  std::string index, data;
};

inline constexpr uint8_t kRecords = 1, kSnappy = 2, kSmallBlocks = 4, kOwnIndex = 8;

inline BundleInput split_bundle_input(const uint8_t *bytes, size_t size) {
  BundleInput in;
  if (size == 0) return in;
  in.mode = bytes[0];
  ++bytes;
  --size;
  uint64_t n = 0;
  for (size_t i = 0; i < 4 && i < size; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  const size_t head = size < 4 ? size : 4;
  bytes += head;
  size -= head;
  if (n > size) n = size;
  in.index.assign(reinterpret_cast<const char *>(bytes), static_cast<size_t>(n));
  in.data.assign(reinterpret_cast<const char *>(bytes) + n, size - static_cast<size_t>(n));
  return in;
}

inline std::string join_bundle_input(uint8_t mode, const std::string &index, const std::string &data) {
  std::string out(1, static_cast<char>(mode));
  const uint32_t n = static_cast<uint32_t>(index.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  return out + index + data;
}

inline void put_varint32(std::string *out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline bool get_varint32(const char **p, const char *end, uint32_t *v) {
  uint32_t r = 0;
  for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
    const uint32_t b = static_cast<unsigned char>(*(*p)++);
    r |= (b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

inline void put_record(std::string *out, const std::string &key, const std::string &value) {
  put_varint32(out, static_cast<uint32_t>(key.size()));
  *out += key;
  put_varint32(out, static_cast<uint32_t>(value.size()));
  *out += value;
}

// The records of an index part; a record cut short ends the list.
inline std::vector<std::pair<std::string, std::string>> parse_records(const std::string &part) {
  std::vector<std::pair<std::string, std::string>> out;
  const char *p = part.data(), *end = p + part.size();
  for (;;) {
    uint32_t kn = 0, vn = 0;
    if (!get_varint32(&p, end, &kn) || kn > static_cast<size_t>(end - p)) break;
    std::string key(p, kn);
    p += kn;
    if (!get_varint32(&p, end, &vn) || vn > static_cast<size_t>(end - p)) break;
    out.emplace_back(std::move(key), std::string(p, vn));
    p += vn;
  }
  return out;
}

}  // namespace kiln::fuzz

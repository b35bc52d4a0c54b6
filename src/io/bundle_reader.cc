// Tensor bundles (FORMATS.md §2), the reader: the index is read once through libleveldb's Table,
// the data files open on first use and are read with pread, so one reader serves many threads.
#include <fcntl.h>
#include <leveldb/env.h>
#include <leveldb/iterator.h>
#include <leveldb/table.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/count.h"
#include "core/error.h"
#include "io/bundle.h"
#include "io/bundle_internal.h"
#include "io/crc32c.h"
#include "io/file_util.h"
#include "tensor_bundle.pb.h"

namespace kiln::io {

namespace tfp = ::kiln::tfproto;
using bundle_internal::byte_swap;
using bundle_internal::data_path;
using bundle_internal::extend_with_lengths;
using bundle_internal::get_varint64;
using bundle_internal::index_path;
using bundle_internal::kBlockTrailerSize;
using bundle_internal::kBundleMinConsumer;
using bundle_internal::kBundleMinProducer;
using bundle_internal::kBundleVersion;
using bundle_internal::kFooterSize;
using bundle_internal::kMaxShards;
using bundle_internal::kTableMagic;
using bundle_internal::load_fixed32;
using bundle_internal::shape_string;
using bundle_internal::table_options;

// ---- reader ----

struct BundleReader::Impl {
  std::string prefix;
  // The index read is the previous bundle a cut-short save over prefix left (bundle.h, "Crash
  // safety"): its data files are under the previous prefix, or still under prefix.
  bool previous = false;
  int num_shards = 1;
  bool big_endian = false;
  std::vector<BundleEntry> entries;
  std::unordered_map<std::string, size_t> by_key;

  // Data files open on first use; once open, an fd is only read with pread (thread-safe) and
  // closed by the destructor.
  struct Shard {
    int fd = -1;
    uint64_t size = 0;
    std::string path;  // the file opened
  };
  mutable std::mutex mu;
  mutable std::vector<Shard> shards;

  ~Impl() {
    for (Shard &s : shards)
      if (s.fd >= 0) ::close(s.fd);
  }

  void load_index();
  // The data file of a shard (the previous bundle's where that applies).
  std::string data_file(int shard_id) const;
  const Shard &shard(const BundleEntry &e) const;
  // DataLoss when e's data file is missing or too short for its bytes. Called before a buffer
  // of e.size bytes is allocated: a corrupt size must not cost (or fail) a huge allocation.
  const Shard &check_range(const BundleEntry &e) const;
  // Reads e's e.size bytes into dst (check_range first).
  void read_bytes(const BundleEntry &e, void *dst) const;
};

namespace {

// The index read with pread. LevelDB's own file would mmap it, which fails on an empty file and
// costs a mapping for a file read once.
class PreadFile final : public leveldb::RandomAccessFile {
 public:
  explicit PreadFile(int fd) : fd_(fd) {}
  ~PreadFile() override { ::close(fd_); }
  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice *result, char *scratch) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return leveldb::Status::IOError("pread", std::strerror(errno));
      }
      if (r == 0) break;  // end of file: a short result, which LevelDB reports as truncation
      done += static_cast<size_t>(r);
    }
    *result = leveldb::Slice(scratch, done);
    return leveldb::Status::OK();
  }

 private:
  int fd_;
};

struct BlockHandle {
  uint64_t offset = 0, size = 0;
};

// Whether a block of h's size and its trailer lie before the footer of a size-byte table.
bool inside(const BlockHandle &h, uint64_t size) {
  const uint64_t limit = size - kFooterSize;
  return h.offset <= limit && h.size <= limit - h.offset && kBlockTrailerSize <= limit - h.offset - h.size;
}

// Checks the table's footer before LevelDB trusts its block handles: a corrupt handle there is
// not covered by any CRC. Returns the index block's handle.
BlockHandle check_footer(leveldb::RandomAccessFile *file, uint64_t size, const std::string &path) {
  if (size < kFooterSize)
    fail(Code::kDataLoss, "'", path, "' is not a checkpoint index: ", size,
         " bytes is too short for a table");
  char scratch[kFooterSize];
  leveldb::Slice footer;
  const leveldb::Status s = file->Read(size - kFooterSize, kFooterSize, &footer, scratch);
  if (!s.ok() || footer.size() != kFooterSize)
    fail(Code::kDataLoss, "cannot read the footer of '", path, "'");
  uint64_t magic = 0;
  for (size_t i = 0; i < 8; ++i)
    magic |= static_cast<uint64_t>(static_cast<unsigned char>(footer[40 + i])) << (8 * i);
  if (magic != kTableMagic)
    fail(Code::kDataLoss, "'", path, "' is not a checkpoint index (no LevelDB table magic number)");
  const char *p = footer.data();
  const char *end = p + 40;
  BlockHandle h;
  for (int i = 0; i < 2; ++i) {  // the metaindex, then the index
    if (!get_varint64(&p, end, &h.offset) || !get_varint64(&p, end, &h.size) || !inside(h, size))
      fail(Code::kDataLoss, "'", path, "' is a corrupt checkpoint index: its footer points outside the file");
  }
  return h;
}

// LevelDB allocates a block's size as its handle says before it reads the block, so a handle in
// the index block pointing past the end of the file would cost a buffer of any size (up to
// std::bad_alloc): possible in an index block whose checksum holds, i.e. a crafted file. Each
// handle of an uncompressed index block with a good checksum (what TensorFlow and kiln write) is
// checked against the file here; any other index block is left to LevelDB, which rejects a bad
// checksum and decompresses a Snappy block (load_index catches an allocation failure there).
void check_index_block(leveldb::RandomAccessFile *file, uint64_t size, const BlockHandle &index,
                       const std::string &path) {
  std::string buf(static_cast<size_t>(index.size) + kBlockTrailerSize, '\0');  // within the file
  leveldb::Slice block;
  if (!file->Read(index.offset, buf.size(), &block, buf.data()).ok() || block.size() != buf.size()) return;
  const char *data = block.data();
  const size_t n = static_cast<size_t>(index.size);
  if (data[n] != 0 || n < 4) return;  // compressed, or too short: LevelDB's to judge
  if (crc32c::value(data, n + 1) != crc32c::unmask(load_fixed32(data + n + 1, false))) return;
  const uint64_t restarts = load_fixed32(data + n - 4, false);
  if (restarts > (n - 4) / 4) return;
  const char *p = data;
  const char *end = data + n - 4 - 4 * restarts;
  while (p < end) {
    uint64_t shared = 0, key_bytes = 0, value_bytes = 0;
    if (!get_varint64(&p, end, &shared) || !get_varint64(&p, end, &key_bytes) ||
        !get_varint64(&p, end, &value_bytes) || key_bytes > static_cast<uint64_t>(end - p) ||
        value_bytes > static_cast<uint64_t>(end - p) - key_bytes)
      return;  // a malformed entry: LevelDB's iterator reports it
    p += key_bytes;
    const char *v = p;
    p += value_bytes;
    BlockHandle h;
    if (get_varint64(&v, p, &h.offset) && get_varint64(&v, p, &h.size) && !inside(h, size))
      fail(Code::kDataLoss, "'", path, "' is a corrupt checkpoint index: it points at a block of ", h.size,
           " bytes at offset ", h.offset, ", outside the ", size, "-byte file");
  }
}

BundleEntry to_entry(const std::string &key, const tfp::BundleEntryProto &p, int num_shards,
                     const std::string &path) {
  BundleEntry e;
  e.key = key;
  e.dtype = static_cast<TfDType>(p.dtype());
  e.shard_id = p.shard_id();
  e.offset = p.offset();
  e.size = p.size();
  e.masked_crc32c = p.crc32c();
  e.sliced = p.slices_size() > 0;
  const tfp::TensorShapeProto &sp = p.shape();
  if (sp.unknown_rank())
    fail(Code::kDataLoss, "tensor '", key, "' in '", path,
         "' has an unknown rank, which a checkpoint never holds");
  for (const auto &d : sp.dim()) e.shape.push_back(d.size());
  if (nonzero_dims_product(e.shape.data(), e.shape.size()) < 0)
    fail(Code::kDataLoss, "tensor '", key, "' in '", path, "' has an invalid shape ", shape_string(e.shape));
  if (!e.sliced) {
    if (e.shard_id < 0 || e.shard_id >= num_shards)
      fail(Code::kDataLoss, "tensor '", key, "' in '", path, "' is in shard ", e.shard_id, " of ",
           num_shards);
    if (e.offset < 0 || e.size < 0)
      fail(Code::kDataLoss, "tensor '", key, "' in '", path, "' has a negative offset or size");
  }
  return e;
}

}  // namespace

void BundleReader::Impl::load_index() {
  std::string path = index_path(prefix);
  int fd = open_for_reading(path);
  if (fd < 0 && errno == ENOENT) {
    // A save over this prefix may have moved the bundle aside (and crashed, or not finished
    // yet); if that one is gone too, the save has finished meanwhile.
    const std::string aside = index_path(previous_bundle_prefix(prefix));
    fd = open_for_reading(aside);
    if (fd >= 0) {
      path = aside;
      previous = true;
    } else if (errno == ENOENT) {
      fd = open_for_reading(path);
    } else {
      path = aside;
    }
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      fail(Code::kNotFound, "no checkpoint at '", prefix, "': '", index_path(prefix), "' does not exist");
    fail(Code::kInternal, "cannot open '", path, "': ", std::strerror(err));
  }
  auto file = std::make_unique<PreadFile>(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(Code::kInternal, "cannot stat '", path, "': ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(Code::kDataLoss, "'", path, "' is not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  check_index_block(file.get(), size, check_footer(file.get(), size, path), path);

  // LevelDB sizes a Snappy block's buffer by the length the block declares (up to 4 GiB) before
  // it decompresses: when that cannot be had, the file is what is wrong.
  auto leveldb_step = [&](auto &&step) {
    try {
      step();
    } catch (const std::bad_alloc &) {
      fail(Code::kDataLoss, "'", path,
           "' is a corrupt checkpoint index: a block declares more bytes than can be allocated");
    }
  };
  leveldb::Table *table_raw = nullptr;
  leveldb::Status s;
  leveldb_step([&] { s = leveldb::Table::Open(table_options(), file.get(), size, &table_raw); });
  if (!s.ok()) fail(Code::kDataLoss, "'", path, "' is not a valid checkpoint index: ", s.ToString());
  std::unique_ptr<leveldb::Table> table(table_raw);
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(ro));
  leveldb_step([&] { it->SeekToFirst(); });
  if (!it->Valid() || !it->key().empty()) {
    if (!it->status().ok())
      fail(Code::kDataLoss, "'", path, "' is not a valid checkpoint index: ", it->status().ToString());
    fail(Code::kDataLoss, "'", path, "' has no bundle header (the entry under the key \"\")");
  }
  tfp::BundleHeaderProto header;
  if (!header.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
    fail(Code::kDataLoss, "'", path, "' has a corrupt bundle header");
  const tfp::VersionDef &v = header.version();
  const auto &bad = v.bad_consumers();
  if (v.producer() < kBundleMinProducer || v.min_consumer() > kBundleVersion ||
      std::find(bad.begin(), bad.end(), kBundleVersion) != bad.end())
    fail(Code::kDataLoss, "'", path, "' needs a newer reader: bundle version producer ", v.producer(),
         ", min_consumer ", v.min_consumer(), "; kiln reads version ", kBundleVersion, " (min consumer ",
         kBundleMinConsumer, ")");
  if (header.endianness() != tfp::BundleHeaderProto::LITTLE &&
      header.endianness() != tfp::BundleHeaderProto::BIG)
    fail(Code::kDataLoss, "'", path, "' has an unknown byte order ", static_cast<int>(header.endianness()));
  big_endian = header.endianness() == tfp::BundleHeaderProto::BIG;
  if (header.num_shards() < 1 || header.num_shards() > kMaxShards)
    fail(Code::kDataLoss, "'", path, "' has an invalid shard count ", header.num_shards());
  num_shards = header.num_shards();

  tfp::BundleEntryProto proto;
  for (leveldb_step([&] { it->Next(); }); it->Valid(); leveldb_step([&] { it->Next(); })) {
    std::string key = it->key().ToString();
    // A table's keys are strictly increasing (its blocks' checksums do not tell): a repeated or
    // out-of-order key is a corrupt index, and readers that seek (TensorFlow's) would see
    // another tensor under that name than this list does.
    if (!entries.empty() && !(entries.back().key < key))
      fail(Code::kDataLoss, "'", path, "' is a corrupt checkpoint index: its key '", key, "' ",
           entries.back().key == key ? "repeats" : "is out of order after '" + entries.back().key + "'");
    if (!proto.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      fail(Code::kDataLoss, "'", path, "' has a corrupt entry for tensor '", key, "'");
    by_key.emplace(key, entries.size());
    entries.push_back(to_entry(key, proto, num_shards, path));
  }
  if (!it->status().ok())
    fail(Code::kDataLoss, "'", path, "' is not a valid checkpoint index: ", it->status().ToString());
  shards.resize(static_cast<size_t>(num_shards));
}

std::string BundleReader::Impl::data_file(int shard_id) const {
  if (previous) {
    // The index moves aside before the data file does.
    std::string aside = data_path(previous_bundle_prefix(prefix), shard_id, num_shards);
    if (file_exists(aside)) return aside;
  }
  return data_path(prefix, shard_id, num_shards);
}

const BundleReader::Impl::Shard &BundleReader::Impl::shard(const BundleEntry &e) const {
  std::lock_guard<std::mutex> lock(mu);
  Shard &s = shards[static_cast<size_t>(e.shard_id)];
  if (s.fd >= 0) return s;
  std::string path = data_file(e.shard_id);
  const int fd = open_for_reading(path);
  if (fd < 0) {
    const int err = errno;
    fail(Code::kDataLoss, "cannot open data file '", path, "' of checkpoint '", prefix, "' (tensor '", e.key,
         "'): ", std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(Code::kInternal, "cannot stat '", path, "': ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(Code::kDataLoss, "data file '", path, "' of checkpoint '", prefix, "' is not a regular file");
  }
  s.size = static_cast<uint64_t>(st.st_size);
  s.path = std::move(path);
  s.fd = fd;
  return s;
}

const BundleReader::Impl::Shard &BundleReader::Impl::check_range(const BundleEntry &e) const {
  const Shard &s = shard(e);
  const uint64_t offset = static_cast<uint64_t>(e.offset), n = static_cast<uint64_t>(e.size);
  if (offset > s.size || n > s.size - offset)
    fail(Code::kDataLoss, "data file '", s.path, "' is truncated: tensor '", e.key, "' needs bytes [", offset,
         ", ", offset + n, ") of a ", s.size, "-byte file");
  return s;
}

void BundleReader::Impl::read_bytes(const BundleEntry &e, void *dst) const {
  const Shard &s = check_range(e);
  const std::string &path = s.path;
  const uint64_t offset = static_cast<uint64_t>(e.offset), n = static_cast<uint64_t>(e.size);
  auto *p = static_cast<char *>(dst);
  uint64_t done = 0;
  while (done < n) {
    // Under 1 GiB per call: some kernels cap a single read.
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, uint64_t{1} << 30));
    const ssize_t r = ::pread(s.fd, p + done, chunk, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(Code::kDataLoss, "cannot read tensor '", e.key, "' from '", path, "': ", std::strerror(errno));
    }
    if (r == 0)
      fail(Code::kDataLoss, "data file '", path, "' is truncated: tensor '", e.key, "' ends at byte ",
           offset + n);
    done += static_cast<uint64_t>(r);
  }
}

namespace {
void check_crc(uint32_t crc, const BundleEntry &e, const std::string &path) {
  if (crc32c::mask(crc) != e.masked_crc32c)
    fail(Code::kDataLoss, "checksum mismatch for tensor '", e.key, "' in '", path, "': the file is corrupt");
}
}  // namespace

BundleReader::BundleReader(const std::string &prefix) : impl_(std::make_unique<Impl>()) {
  impl_->prefix = prefix;
  impl_->load_index();
}

BundleReader::~BundleReader() = default;

const std::string &BundleReader::prefix() const { return impl_->prefix; }
int BundleReader::num_shards() const { return impl_->num_shards; }
const std::vector<BundleEntry> &BundleReader::entries() const { return impl_->entries; }
bool BundleReader::contains(const std::string &key) const { return impl_->by_key.count(key) != 0; }

const BundleEntry &BundleReader::entry(const std::string &key) const {
  const auto it = impl_->by_key.find(key);
  if (it == impl_->by_key.end())
    fail(Code::kNotFound, "checkpoint '", impl_->prefix, "' has no tensor '", key, "'");
  return impl_->entries[it->second];
}

Tensor BundleReader::read(const std::string &key) const {
  const BundleEntry &e = entry(key);
  const std::string what = str_cat("tensor '", key, "' of checkpoint '", impl_->prefix, "'");
  if (e.sliced) fail(Code::kUnimplemented, what, " is partitioned into slices, which kiln does not read");
  const DType dtype = from_tf_dtype(e.dtype, what);
  Shape shape;
  try {
    shape = Shape(e.shape);
  } catch (const Error &err) {
    fail(Code::kUnimplemented, what, " has a shape kiln tensors cannot hold: ", err.what());
  }
  const size_t elem = dtype_size(dtype);
  const int64_t n = shape.num_elements();
  int64_t bytes = 0;
  if (!checked_mul(n, static_cast<int64_t>(elem), &bytes, kMaxBytes) || e.size != bytes)
    fail(Code::kDataLoss, what, " has ", e.size, " bytes of data; ", tf_dtype_name(e.dtype),
         shape_string(e.shape), " needs ", byte_count_string(n, elem));
  const std::string &path = impl_->check_range(e).path;
  Tensor t = Tensor::empty(dtype, shape);
  impl_->read_bytes(e, t.raw_mutable_data());
  check_crc(crc32c::value(t.raw_data(), static_cast<size_t>(bytes)), e, path);
  if (dtype == DType::kBool) {
    // Any nonzero byte is true; a C++ bool must hold exactly 0 or 1.
    auto *b = static_cast<unsigned char *>(t.raw_mutable_data());
    for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
  }
  if (impl_->big_endian) byte_swap(t.raw_mutable_data(), n, elem);
  return t;
}

void BundleReader::hold_data_files() const {
  // The shards the entries use (a corrupt header may claim any number).
  std::vector<char> used(static_cast<size_t>(impl_->num_shards), 0);
  for (const BundleEntry &e : impl_->entries) {
    if (e.sliced || used[static_cast<size_t>(e.shard_id)]) continue;
    used[static_cast<size_t>(e.shard_id)] = 1;
    try {
      impl_->shard(e);
    } catch (const Error &) {
      // The read that needs this file reports it.
    }
  }
}

std::vector<std::string> BundleReader::read_strings(const std::string &key) const {
  const BundleEntry &e = entry(key);
  const std::string what = str_cat("tensor '", key, "' of checkpoint '", impl_->prefix, "'");
  KILN_REQUIRE(e.dtype == TfDType::kString, "read_strings: ", what, " is ", tf_dtype_name(e.dtype),
               ", not string");
  if (e.sliced) fail(Code::kUnimplemented, what, " is partitioned into slices, which kiln does not read");
  const bool has_zero = std::find(e.shape.begin(), e.shape.end(), int64_t{0}) != e.shape.end();
  const uint64_t count =
      has_zero ? 0 : static_cast<uint64_t>(nonzero_dims_product(e.shape.data(), e.shape.size()));
  // Each element takes at least its one-byte length, and the length checksum 4 bytes.
  if (static_cast<uint64_t>(e.size) < 4 || count > static_cast<uint64_t>(e.size) - 4)
    fail(Code::kDataLoss, what, " has ", e.size, " bytes of data, too few for ", count, " strings");
  const std::string &path = impl_->check_range(e).path;
  std::string buf(static_cast<size_t>(e.size), '\0');
  impl_->read_bytes(e, buf.data());

  const char *p = buf.data();
  const char *end = p + buf.size();
  std::vector<uint64_t> lengths(static_cast<size_t>(count));
  for (uint64_t &len : lengths) {
    if (!get_varint64(&p, end, &len))
      fail(Code::kDataLoss, what, " has corrupt string lengths in '", path, "'");
  }
  if (end - p < 4) fail(Code::kDataLoss, what, " has no string length checksum in '", path, "'");
  const uint32_t length_crc = extend_with_lengths(0, lengths, impl_->big_endian);
  if (load_fixed32(p, impl_->big_endian) != crc32c::mask(length_crc))
    fail(Code::kDataLoss, "string length checksum mismatch for tensor '", key, "' in '", path, "'");
  // The entry's CRC: the lengths as fixed integers, the length checksum, then the bytes.
  const uint32_t crc =
      crc32c::extend(crc32c::extend(length_crc, p, 4), p + 4, static_cast<size_t>(end - p - 4));
  check_crc(crc, e, path);
  p += 4;
  uint64_t remaining = static_cast<uint64_t>(end - p);
  std::vector<std::string> out;
  out.reserve(lengths.size());
  for (uint64_t len : lengths) {
    if (len > remaining) fail(Code::kDataLoss, what, " has string lengths past its data in '", path, "'");
    out.emplace_back(p, static_cast<size_t>(len));
    p += len;
    remaining -= len;
  }
  if (remaining != 0)
    fail(Code::kDataLoss, what, " has ", remaining, " bytes after its strings in '", path, "'");
  return out;
}

}  // namespace kiln::io

// Tensor bundles (FORMATS.md §2), the writer and the dtype names: the index is a LevelDB table
// written through Debian's libleveldb; the data file is the tensors' bytes, concatenated in the
// order they are added.
#include "io/bundle.h"

#include <leveldb/env.h>
#include <leveldb/table_builder.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "core/count.h"
#include "core/error.h"
#include "io/bundle_internal.h"
#include "io/crc32c.h"
#include "io/file_util.h"
#include "tensor_bundle.pb.h"

namespace kiln::io {

namespace tfp = ::kiln::tfproto;
using bundle_internal::append_fixed;
using bundle_internal::data_path;
using bundle_internal::extend_with_lengths;
using bundle_internal::fail_status;
using bundle_internal::index_path;
using bundle_internal::kBundleVersion;
using bundle_internal::put_varint64;
using bundle_internal::shape_string;
using bundle_internal::table_options;

// ---- dtypes ----

std::string tf_dtype_name(TfDType d) {
  const int n = static_cast<int>(d);
  if (n > 100 && n < 200) return tf_dtype_name(static_cast<TfDType>(n - 100)) + "_ref";
  switch (n) {
    case 0:
      return "invalid";
    case 1:
      return "float32";
    case 2:
      return "float64";
    case 3:
      return "int32";
    case 4:
      return "uint8";
    case 5:
      return "int16";
    case 6:
      return "int8";
    case 7:
      return "string";
    case 8:
      return "complex64";
    case 9:
      return "int64";
    case 10:
      return "bool";
    case 11:
      return "qint8";
    case 12:
      return "quint8";
    case 13:
      return "qint32";
    case 14:
      return "bfloat16";
    case 15:
      return "qint16";
    case 16:
      return "quint16";
    case 17:
      return "uint16";
    case 18:
      return "complex128";
    case 19:
      return "float16";
    case 20:
      return "resource";
    case 21:
      return "variant";
    case 22:
      return "uint32";
    case 23:
      return "uint64";
    case 24:
      return "float8_e5m2";
    case 25:
      return "float8_e4m3fn";
    case 26:
      return "float8_e4m3fnuz";
    case 27:
      return "float8_e4m3b11fnuz";
    case 28:
      return "float8_e5m2fnuz";
    case 29:
      return "int4";
    case 30:
      return "uint4";
    case 31:
      return "int2";
    case 32:
      return "uint2";
    case 33:
      return "float4_e2m1fn";
    default:
      return str_cat("dtype_", n);
  }
}

TfDType to_tf_dtype(DType d) {
  switch (d) {
    case DType::kFloat32:
      return TfDType::kFloat;
    case DType::kBFloat16:
      return TfDType::kBFloat16;
    case DType::kInt32:
      return TfDType::kInt32;
    case DType::kInt64:
      return TfDType::kInt64;
    case DType::kUInt8:
      return TfDType::kUInt8;
    case DType::kBool:
      return TfDType::kBool;
    case DType::kFloat64:
      return TfDType::kDouble;
  }
  fail(Code::kInvalidArgument, "to_tf_dtype: unknown kiln dtype ", static_cast<int>(d));
}

DType from_tf_dtype(TfDType d, const std::string &what) {
  switch (d) {
    case TfDType::kFloat:
      return DType::kFloat32;
    case TfDType::kDouble:
      return DType::kFloat64;
    case TfDType::kBFloat16:
      return DType::kBFloat16;
    case TfDType::kInt32:
      return DType::kInt32;
    case TfDType::kInt64:
      return DType::kInt64;
    case TfDType::kUInt8:
      return DType::kUInt8;
    case TfDType::kBool:
      return DType::kBool;
    default:
      break;
  }
  fail(Code::kUnimplemented, what, ": TensorFlow dtype ", tf_dtype_name(d),
       " has no kiln dtype (kiln holds float32, float64, bfloat16, int32, int64, uint8 and bool)");
}

// ---- writer ----

namespace bundle_internal {

void fail_status(const leveldb::Status &s, const std::string &what) {
  if (s.IsNotFound()) fail(Code::kNotFound, what, ": ", s.ToString());
  // LevelDB's IOError carries strerror(errno) alone: find which errno it was.
  const std::string text = s.ToString();
  for (int err : {ENOSPC, EDQUOT, ENOMEM, EFBIG, EACCES, EPERM, EROFS})
    if (text.find(std::strerror(err)) != std::string::npos) fail(errno_code(err), what, ": ", text);
  fail(Code::kInternal, what, ": ", text);
}

}  // namespace bundle_internal

namespace {

std::atomic<bundle_internal::FinishStepHook> finish_step_hook{nullptr};

void finish_step(const char *step) {
  if (const bundle_internal::FinishStepHook hook = finish_step_hook.load()) hook(step);
}

}  // namespace

void bundle_internal::set_finish_step_hook(FinishStepHook hook) { finish_step_hook.store(hook); }

std::string previous_bundle_prefix(const std::string &prefix) { return prefix + ".kiln-previous"; }

bool bundle_exists(const std::string &prefix) {
  return file_exists(index_path(prefix)) || file_exists(index_path(previous_bundle_prefix(prefix)));
}

struct BundleWriter::Impl {
  std::string prefix;
  // Declared before the files: members are destroyed in reverse, so a file is closed before
  // its temporary name is removed.
  std::unique_ptr<TempPath> data_temp;
  std::unique_ptr<leveldb::WritableFile> data_file;
  std::map<std::string, tfp::BundleEntryProto> entries;  // bytewise key order, as the index
  int64_t offset = 0;
  bool finished = false;
  std::string failure;  // the I/O error that broke this writer; later calls report it

  void check_usable(const char *op) const {
    if (finished)
      fail(Code::kFailedPrecondition, "BundleWriter::", op, ": '", prefix, "' is already finished");
    if (!failure.empty())
      fail(Code::kFailedPrecondition, "BundleWriter::", op, ": an earlier write to '", prefix,
           "' failed: ", failure);
  }

  void check_key(const std::string &key, const char *op) const {
    KILN_REQUIRE(!key.empty(), "BundleWriter::", op, ": empty key (the key \"\" holds the bundle's header)");
    KILN_REQUIRE(entries.count(key) == 0, "BundleWriter::", op, ": duplicate key '", key, "' in '", prefix,
                 "'");
  }

  void open_data() {
    if (data_file) return;
    create_dirs(dir_name(prefix));
    data_temp = std::make_unique<TempPath>(data_path(prefix, 0, 1));
    leveldb::WritableFile *f = nullptr;
    const leveldb::Status s = leveldb::Env::Default()->NewWritableFile(data_temp->temp(), &f);
    if (!s.ok()) fail_status(s, str_cat("BundleWriter: cannot create '", data_temp->temp(), "'"));
    data_file.reset(f);
  }

  // Appends to the data file; an I/O error leaves the file unusable, so it breaks the writer.
  void append(const void *data, size_t n) {
    const leveldb::Status s = data_file->Append(leveldb::Slice(static_cast<const char *>(data), n));
    if (!s.ok()) {
      failure = s.ToString();
      fail_status(s, str_cat("BundleWriter: cannot write '", data_temp->temp(), "'"));
    }
  }

  // Runs body (which appends the tensor's bytes), turning any error into a broken writer.
  template <typename Body>
  void write_tensor(Body &&body) {
    try {
      open_data();
      body();
    } catch (const std::exception &e) {
      if (failure.empty()) failure = e.what();
      throw;
    }
  }

  // Renames the synced temporaries into place in the order bundle.h ("Crash safety") gives:
  // while a rename replaces one file at a time, the prefix always reads as the previous bundle
  // or the new one.
  // Installs of one process take turns: the sequence reads the prefix's files and then renames
  // them, so two writers of one prefix interleaving would rename files from under each other.
  // (Writers in different processes are not coordinated, as TensorFlow's are not.)
  void install(TempPath *index_temp) {
    static std::mutex install_mutex;
    const std::lock_guard<std::mutex> lock(install_mutex);
    const std::string dir = dir_name(prefix);
    const std::string data = data_path(prefix, 0, 1), index = index_path(prefix);
    const std::string previous = previous_bundle_prefix(prefix);
    const std::string previous_data = data_path(previous, 0, 1), previous_index = index_path(previous);
    bool keep_previous = false;
    if (file_exists(index)) {
      if (file_exists(data)) {
        // The new data file would replace the one the current index reads: the current bundle
        // moves aside first. A previous bundle still there is stale (the prefix's own index is
        // newer), and its data file must be gone before an index joins it.
        const bool removed_index = remove_file(previous_index);
        if (remove_file(previous_data) || removed_index) {
          sync_dir(dir);
          finish_step("stale_previous_removed");
        }
        rename_file(index, previous_index);
        sync_dir(dir);
        finish_step("index_moved_aside");
        rename_file(data, previous_data);
        sync_dir(dir);
        finish_step("data_moved_aside");
        keep_previous = true;
      }
    } else if (file_exists(previous_index)) {
      // An earlier save over this prefix was cut short: the bundle it replaced is the one to keep
      // until the new one is in place. Its data file may still be under the prefix, where the new
      // one is about to go.
      if (!file_exists(previous_data) && file_exists(data)) {
        rename_file(data, previous_data);
        sync_dir(dir);
        finish_step("data_moved_aside");
      }
      keep_previous = true;
    }
    // Data first, index last: a reader that finds the new index finds the new data with it.
    data_temp->commit();
    sync_dir(dir);
    finish_step("data_renamed");
    index_temp->commit();
    sync_dir(dir);
    finish_step("index_renamed");
    if (keep_previous) {
      // The index first: a previous data file without its index is stale, never read.
      remove_file_quietly(previous_index);
      finish_step("previous_index_removed");
      remove_file_quietly(previous_data);
      finish_step("previous_data_removed");
    }
  }

  void write_index(const std::string &temp) {
    leveldb::WritableFile *raw = nullptr;
    leveldb::Status s = leveldb::Env::Default()->NewWritableFile(temp, &raw);
    if (!s.ok()) fail_status(s, str_cat("BundleWriter: cannot create '", temp, "'"));
    std::unique_ptr<leveldb::WritableFile> file(raw);
    const leveldb::Options options = table_options();
    leveldb::TableBuilder builder(options, file.get());
    bool done = false;
    try {
      tfp::BundleHeaderProto header;
      header.set_num_shards(1);
      header.set_endianness(tfp::BundleHeaderProto::LITTLE);
      header.mutable_version()->set_producer(kBundleVersion);
      std::string value;
      header.SerializeToString(&value);
      builder.Add("", value);
      for (const auto &kv : entries) {
        kv.second.SerializeToString(&value);
        builder.Add(kv.first, value);
      }
      done = true;
      s = builder.Finish();
      if (s.ok()) s = file->Sync();
      if (s.ok()) s = file->Close();
      if (!s.ok()) fail_status(s, str_cat("BundleWriter: cannot write '", temp, "'"));
    } catch (...) {
      // The builder insists on Finish() or Abandon() before it is destroyed.
      if (!done) builder.Abandon();
      throw;
    }
  }
};

BundleWriter::BundleWriter(std::string prefix) : impl_(std::make_unique<Impl>()) {
  KILN_REQUIRE(!prefix.empty(), "BundleWriter: empty prefix");
  impl_->prefix = std::move(prefix);
}

BundleWriter::~BundleWriter() = default;

void BundleWriter::add(const std::string &key, const Tensor &value) {
  Impl &m = *impl_;
  m.check_usable("add");
  require_defined(value, "BundleWriter::add", "value");
  m.check_key(key, "add");
  tfp::BundleEntryProto entry;
  entry.set_dtype(static_cast<tfp::DataType>(to_tf_dtype(value.dtype())));
  tfp::TensorShapeProto *shape = entry.mutable_shape();  // set even for a scalar, as TF does
  for (int i = 0; i < value.rank(); ++i) shape->add_dim()->set_size(value.shape()[i]);
  const size_t bytes = value.byte_size();
  entry.set_offset(m.offset);
  entry.set_size(static_cast<int64_t>(bytes));
  entry.set_crc32c(crc32c::mask(crc32c::value(value.raw_data(), bytes)));
  m.write_tensor([&] { m.append(value.raw_data(), bytes); });
  m.offset += static_cast<int64_t>(bytes);
  m.entries.emplace(key, std::move(entry));
}

void BundleWriter::add_strings(const std::string &key, const std::vector<int64_t> &shape,
                               const std::vector<std::string> &values) {
  Impl &m = *impl_;
  m.check_usable("add_strings");
  m.check_key(key, "add_strings");
  const int64_t n = nonzero_dims_product(shape.data(), shape.size());
  KILN_REQUIRE(n >= 0, "BundleWriter::add_strings: invalid shape ", shape_string(shape), " for '", key, "'");
  const bool has_zero = std::find(shape.begin(), shape.end(), int64_t{0}) != shape.end();
  const size_t count = has_zero ? 0 : static_cast<size_t>(n);
  KILN_REQUIRE(count == values.size(), "BundleWriter::add_strings: shape ", shape_string(shape), " of '", key,
               "' holds ", count, " strings; got ", values.size());

  // TF's layout: the lengths as varints, the masked CRC of the lengths, then the bytes. The
  // entry's CRC covers the lengths (as fixed integers), the length checksum, then the bytes.
  std::vector<uint64_t> lengths;
  lengths.reserve(values.size());
  std::string head;
  for (const std::string &v : values) {
    lengths.push_back(v.size());
    put_varint64(&head, v.size());
  }
  uint32_t crc = extend_with_lengths(0, lengths, false);
  std::string checksum;
  append_fixed<uint32_t>(&checksum, crc32c::mask(crc), false);
  crc = crc32c::extend(crc, checksum.data(), checksum.size());
  head += checksum;
  int64_t total = static_cast<int64_t>(head.size());
  for (const std::string &v : values) {
    crc = crc32c::extend(crc, v.data(), v.size());
    total += static_cast<int64_t>(v.size());
  }

  tfp::BundleEntryProto entry;
  entry.set_dtype(tfp::DT_STRING);
  tfp::TensorShapeProto *sp = entry.mutable_shape();
  for (int64_t d : shape) sp->add_dim()->set_size(d);
  entry.set_offset(m.offset);
  entry.set_size(total);
  entry.set_crc32c(crc32c::mask(crc));
  m.write_tensor([&] {
    m.append(head.data(), head.size());
    for (const std::string &v : values) m.append(v.data(), v.size());
  });
  m.offset += total;
  m.entries.emplace(key, std::move(entry));
}

void BundleWriter::finish() {
  Impl &m = *impl_;
  m.check_usable("finish");
  try {
    m.open_data();  // a bundle without tensors still has its (empty) data file, as TF's
    leveldb::Status s = m.data_file->Flush();
    if (s.ok()) s = m.data_file->Sync();
    if (s.ok()) s = m.data_file->Close();
    if (!s.ok()) fail_status(s, str_cat("BundleWriter: cannot write '", m.data_temp->temp(), "'"));
    m.data_file.reset();

    TempPath index_temp(index_path(m.prefix));
    m.write_index(index_temp.temp());
    m.install(&index_temp);
  } catch (const std::exception &e) {
    if (m.failure.empty()) m.failure = e.what();
    throw;
  }
  m.data_temp.reset();
  m.finished = true;
}

}  // namespace kiln::io

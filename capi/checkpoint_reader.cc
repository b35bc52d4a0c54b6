// TensorFlow checkpoints across the ABI: kiln_checkpoint_reader over the core's BundleReader
// (tf.train.load_checkpoint / CheckpointReader), with the variable list fixed at open time.
#include <algorithm>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "capi/handles.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"

using kiln::Code;
using kiln::fail;
using kiln::capi::require_not_null;
namespace io = kiln::io;

// One listed variable: its index entry and what the getters hand out as borrowed values.
struct CheckpointVariable {
  const io::BundleEntry *entry;
  std::string dtype_name;
  int kiln_dtype;  // 0: kiln has no dtype for the TF one
};

struct kiln_checkpoint_reader {
  std::unique_ptr<io::BundleReader> reader;
  std::vector<CheckpointVariable> variables;  // the index's order (bytewise by name)
  std::unordered_map<std::string, size_t> by_name;
};

namespace {

const kiln_checkpoint_reader &reader_of(const kiln_checkpoint_reader *r, const char *fn) {
  require_not_null(r, fn, "reader");
  return *r;
}

const CheckpointVariable &variable_at(const kiln_checkpoint_reader &r, size_t index, const char *fn) {
  if (index >= r.variables.size())
    fail(Code::kOutOfRange, fn, ": index ", index, " is out of range; the checkpoint '", r.reader->prefix(),
         "' has ", r.variables.size(), " variables");
  return r.variables[index];
}

int kiln_dtype_of(io::TfDType d) {
  switch (d) {
    case io::TfDType::kFloat:
      return KILN_DTYPE_FLOAT32;
    case io::TfDType::kBFloat16:
      return KILN_DTYPE_BFLOAT16;
    case io::TfDType::kInt32:
      return KILN_DTYPE_INT32;
    case io::TfDType::kInt64:
      return KILN_DTYPE_INT64;
    case io::TfDType::kUInt8:
      return KILN_DTYPE_UINT8;
    case io::TfDType::kBool:
      return KILN_DTYPE_BOOL;
    case io::TfDType::kDouble:
      return KILN_DTYPE_FLOAT64;
    default:
      return 0;
  }
}

}  // namespace

extern "C" {

kiln_status *kiln_checkpoint_reader_open(kiln_checkpoint_reader **out, const char *path) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_open";
  require_not_null(out, fn, "out");
  require_not_null(path, fn, "path");
  auto r = std::make_unique<kiln_checkpoint_reader>();
  r->reader = std::make_unique<io::BundleReader>(io::resolve_checkpoint_prefix(path, fn));
  const std::vector<io::BundleEntry> &entries = r->reader->entries();
  r->variables.reserve(entries.size());
  for (const io::BundleEntry &e : entries) {
    // A partitioned variable's slices have keys of their own, which start with a NUL byte
    // (TF's EncodeTensorNameSlice); TF's reader lists only the full variable, and so do we.
    if (!e.key.empty() && e.key[0] == '\0') continue;
    r->by_name.emplace(e.key, r->variables.size());
    r->variables.push_back(CheckpointVariable{&e, io::tf_dtype_name(e.dtype), kiln_dtype_of(e.dtype)});
  }
  *out = r.release();
  KILN_CAPI_END
}

void kiln_checkpoint_reader_free(kiln_checkpoint_reader *reader) { delete reader; }

kiln_status *kiln_checkpoint_reader_get_prefix(const char **out, const kiln_checkpoint_reader *reader) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_prefix";
  require_not_null(out, fn, "out");
  *out = reader_of(reader, fn).reader->prefix().c_str();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_num_variables(size_t *out, const kiln_checkpoint_reader *reader) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_num_variables";
  require_not_null(out, fn, "out");
  *out = reader_of(reader, fn).variables.size();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_name(const char **out, const kiln_checkpoint_reader *reader,
                                             size_t index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_name";
  require_not_null(out, fn, "out");
  *out = variable_at(reader_of(reader, fn), index, fn).entry->key.c_str();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_find(size_t *out_index, const kiln_checkpoint_reader *reader,
                                         const char *name) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_find";
  require_not_null(out_index, fn, "out_index");
  const kiln_checkpoint_reader &r = reader_of(reader, fn);
  require_not_null(name, fn, "name");
  auto it = r.by_name.find(name);
  if (it == r.by_name.end())
    fail(Code::kNotFound, fn, ": the checkpoint '", r.reader->prefix(), "' has no variable '", name, "'");
  *out_index = it->second;
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_has_tensor(bool *out, const kiln_checkpoint_reader *reader,
                                               const char *name) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_has_tensor";
  require_not_null(out, fn, "out");
  const kiln_checkpoint_reader &r = reader_of(reader, fn);
  require_not_null(name, fn, "name");
  *out = r.by_name.count(name) > 0;
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_dtype_name(const char **out, const kiln_checkpoint_reader *reader,
                                                   size_t index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_dtype_name";
  require_not_null(out, fn, "out");
  *out = variable_at(reader_of(reader, fn), index, fn).dtype_name.c_str();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_dtype(kiln_dtype *out, const kiln_checkpoint_reader *reader,
                                              size_t index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_dtype";
  require_not_null(out, fn, "out");
  *out = static_cast<kiln_dtype>(variable_at(reader_of(reader, fn), index, fn).kiln_dtype);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_shape(int64_t *out_dims, size_t capacity, size_t *out_rank,
                                              const kiln_checkpoint_reader *reader, size_t index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_shape";
  require_not_null(out_rank, fn, "out_rank");
  if (capacity) require_not_null(out_dims, fn, "out_dims");
  const std::vector<int64_t> &dims = variable_at(reader_of(reader, fn), index, fn).entry->shape;
  std::copy_n(dims.begin(), std::min(capacity, dims.size()), out_dims);
  *out_rank = dims.size();
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_byte_size(size_t *out, const kiln_checkpoint_reader *reader,
                                                  size_t index) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_byte_size";
  require_not_null(out, fn, "out");
  const io::BundleEntry &e = *variable_at(reader_of(reader, fn), index, fn).entry;
  *out = e.sliced || e.size < 0 ? 0 : static_cast<size_t>(e.size);
  KILN_CAPI_END
}

kiln_status *kiln_checkpoint_reader_get_tensor(kiln_tensor **out, const kiln_checkpoint_reader *reader,
                                               const char *name) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_checkpoint_reader_get_tensor";
  require_not_null(out, fn, "out");
  const kiln_checkpoint_reader &r = reader_of(reader, fn);
  require_not_null(name, fn, "name");
  if (!r.by_name.count(name))
    fail(Code::kNotFound, fn, ": the checkpoint '", r.reader->prefix(), "' has no variable '", name, "'");
  *out = kiln::capi::new_tensor(r.reader->read(name));
  KILN_CAPI_END
}

}  // extern "C"

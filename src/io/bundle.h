// TensorFlow's tensor-bundle checkpoint format (FORMATS.md §2): `<prefix>.index`, a LevelDB table
// (through Debian's libleveldb) of BundleEntryProto values under the tensors' names plus the
// BundleHeaderProto under "", and `<prefix>.data-NNNNN-of-MMMMM`, the tensors' raw bytes. One
// writer and one reader serve kiln's checkpoints and TensorFlow's alike.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::io {

// TensorFlow's DataType numbers (types.proto); kiln tensors hold the ones with a kiln DType.
enum class TfDType : int {
  kInvalid = 0,
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kBFloat16 = 14,
  kUInt16 = 17,
  kComplex128 = 18,
  kHalf = 19,
  kUInt32 = 22,
  kUInt64 = 23,
};

// "float32", "int64", "string", ... as TensorFlow names them (tf.dtypes.DType.name); "dtype_<n>"
// for a number this list does not know.
std::string tf_dtype_name(TfDType d);
// The TF type of a kiln dtype, and back (Unimplemented naming the TF type when kiln has none).
TfDType to_tf_dtype(DType d);
DType from_tf_dtype(TfDType d, const std::string &what);

// One entry of the index, as the BundleEntryProto says.
struct BundleEntry {
  std::string key;
  TfDType dtype = TfDType::kInvalid;
  std::vector<int64_t> shape;
  int32_t shard_id = 0;
  int64_t offset = 0, size = 0;
  uint32_t masked_crc32c = 0;
  bool sliced = false;  // a partitioned variable's full entry (its slices are other keys)
};

// Writes a bundle: tensors are added in any order, finish() writes the data file, then the index
// with keys in bytewise order, each to a temporary name in the prefix's directory, fsynced, then
// renamed into place. Nothing under the final names exists until finish() returns, and a writer
// destroyed without finish() removes its temporaries.
// The data file holds the tensors in the order they were added, as TensorFlow's writer does (a
// Keras TF2 checkpoint has each kernel before its bias and the object graph last), so adding a TF
// bundle's tensors in its offset order reproduces its files byte for byte. add() copies the bytes
// into the temporary data file at once: the writer keeps no tensor alive.
class BundleWriter {
 public:
  explicit BundleWriter(std::string prefix);
  ~BundleWriter();
  BundleWriter(const BundleWriter &) = delete;
  BundleWriter &operator=(const BundleWriter &) = delete;

  // InvalidArgument on an empty or duplicate key (the key "" is the header's).
  void add(const std::string &key, const Tensor &value);
  // A DT_STRING tensor of `shape` (a scalar for the object graph), TF's string layout.
  void add_strings(const std::string &key, const std::vector<int64_t> &shape,
                   const std::vector<std::string> &values);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a bundle written by kiln or by TensorFlow (any shard count; uncompressed or Snappy index
// blocks). Every read checks the size and the CRC32C of the bytes: a mismatch or a truncated
// file is DataLoss naming the file and the tensor. A reader may be used from several threads.
class BundleReader {
 public:
  // NotFound when `<prefix>.index` does not exist; DataLoss when it is not a valid table or its
  // header is missing or unsupported (big-endian data is byte-swapped, not rejected).
  explicit BundleReader(const std::string &prefix);
  ~BundleReader();
  BundleReader(const BundleReader &) = delete;
  BundleReader &operator=(const BundleReader &) = delete;

  const std::string &prefix() const;
  int num_shards() const;
  // Every entry but the header, in key order.
  const std::vector<BundleEntry> &entries() const;
  bool contains(const std::string &key) const;
  // NotFound naming the key (and the prefix) when absent.
  const BundleEntry &entry(const std::string &key) const;
  // The tensor under key as a kiln tensor; Unimplemented for a TF dtype kiln has no DType for
  // (naming it) and for sliced entries.
  Tensor read(const std::string &key) const;
  // A DT_STRING tensor's elements (the object graph); InvalidArgument for other dtypes.
  std::vector<std::string> read_strings(const std::string &key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::io

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
// with keys in bytewise order, each to a temporary name in the prefix's directory
// (`<final name>.tempstate<hex>`, as TensorFlow), fsynced, then renamed into place. Nothing
// under the final names changes before finish() has both files written and synced, and a
// writer destroyed without finish() removes its temporaries.
// The data file holds the tensors in the order they were added, as TensorFlow's writer does (a
// Keras TF2 checkpoint has each kernel before its bias and the object graph last), so adding a TF
// bundle's tensors in its offset order reproduces its files byte for byte. add() copies the bytes
// into the temporary data file at once: the writer keeps no tensor alive.
//
// Crash safety. A process killed (or a machine stopped) at any point of finish() leaves a
// BundleReader of the prefix reading either the complete bundle that was there before (if any)
// or the complete new one: never an index beside the other bundle's data. Renames replace one
// file at a time, so finish() puts the files in place as follows (fsyncing the directory after
// each step, so the steps also reach the disk in this order):
//  - When the prefix has no bundle, or one whose data file has another name (a TensorFlow bundle
//    of several shards): the data file is renamed in, then the index. A new data file without
//    its index is no bundle yet; the index's rename switches from the old bundle to the new.
//  - When the prefix's bundle has the data file the new one replaces (a save over the same
//    prefix: save_weights or ModelCheckpoint to one path, Checkpoint::write): that bundle first
//    moves to previous_bundle_prefix(prefix), its index, then its data file; then the new data
//    file and index are renamed in, then the previous bundle's files are removed. While the
//    prefix has no index, BundleReader(prefix) reads the previous bundle (its index under the
//    previous prefix, each data file under the previous prefix when there and under the prefix
//    otherwise: it is still there when the index has moved and the data file not yet), and
//    bundle_exists() counts it, so latest_checkpoint() still finds the checkpoint.
//  - A finish() on a prefix that has no index but a previous bundle (a save over it was cut
//    short) keeps that bundle where it is, moving its data file aside first when it is still
//    under the prefix, until the new bundle is in place.
// TensorFlow knows nothing of the previous prefix: in the window between the index moving aside
// and the new index arriving it finds no checkpoint at the prefix (its own writer leaves the new
// data file beside the old index there instead). A reader that opens the prefix while a save
// over it runs (no crash) may fail with DataLoss (the checksums catch the mix), never return it.
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

// Where BundleWriter::finish() keeps the bundle it replaces while it puts a new one in place:
// `<prefix>.kiln-previous` (see "Crash safety" above).
std::string previous_bundle_prefix(const std::string &prefix);
// Whether BundleReader(prefix) finds a bundle to read: `<prefix>.index` exists, or a save over
// the prefix was cut short and left the previous bundle under previous_bundle_prefix(prefix).
bool bundle_exists(const std::string &prefix);

// Reads a bundle written by kiln or by TensorFlow (any shard count; uncompressed or Snappy index
// blocks). Every read checks the size and the CRC32C of the bytes: a mismatch or a truncated
// file is DataLoss naming the file and the tensor. A reader may be used from several threads.
class BundleReader {
 public:
  // NotFound when `<prefix>.index` does not exist (nor a previous bundle a cut-short save over
  // the prefix left: BundleWriter, "Crash safety"); DataLoss when it is not a valid table or its
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
  // Opens every data file now (they open on first use otherwise), so later reads see these
  // files even when the checkpoint is saved over or deleted meanwhile: a restore deferred until
  // a model builds reads them then. A file that cannot be opened is left to the read that needs it.
  void hold_data_files() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::io

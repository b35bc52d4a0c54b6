// The files of kiln's SavedModel directory besides its checkpoint (FORMATS.md §3, DESIGN.md §6):
// `saved_model.pb`, a KilnSavedModel message (proto/saved_model.proto: the model's Keras config,
// the shapes it was built with, the serving signatures, the compile config, the kiln version),
// and `fingerprint.pb`, a KilnFingerprint with TensorFlow's FingerprintDef field numbers (64-bit
// hashes of each part, and saved_model.pb's checksum, which the reader verifies). Here only the
// bytes: train/saved_model.h makes and restores the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/dtype.h"

namespace kiln::io {

inline constexpr const char *kSavedModelFile = "saved_model.pb";
inline constexpr const char *kFingerprintFile = "fingerprint.pb";
inline constexpr const char *kVariablesDir = "variables";
inline constexpr const char *kVariablesPrefix = "variables/variables";
inline constexpr const char *kServingDefault = "serving_default";
// The layout this code writes; a manifest with a larger number is refused (written by a newer kiln).
inline constexpr int64_t kSavedModelFormatVersion = 1;

// A signature's tensor: name, dtype and dims (-1 unknown).
struct TensorSpecInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;
};

struct SignatureInfo {
  std::string key = kServingDefault;
  std::string method_name = "predict";
  std::vector<TensorSpecInfo> inputs, outputs;
};

struct SavedModelManifest {
  int64_t format_version = kSavedModelFormatVersion;
  std::string kiln_version;
  Config model_config;                       // {"class_name": ..., "config": {...}}
  std::vector<TensorSpecInfo> build_inputs;  // names empty; dims -1 where unknown
  std::vector<SignatureInfo> signatures;
  std::optional<Config> compile_config;
  std::string variables_prefix = kVariablesPrefix;
};

// The manifest's bytes (binary protobuf).
std::string encode_saved_model(const SavedModelManifest &manifest);
// The fingerprint of the manifest saved_model_bytes (encode_saved_model's), beside a checkpoint
// whose index file holds index_bytes.
std::string encode_fingerprint(const std::string &saved_model_bytes, const std::string &index_bytes);

// Parses and checks a manifest: the protobuf, the format version, the JSON of the configs (a
// model config must be {"class_name": <string>, "config": {...}}), dtype names, dims (>= -1),
// signature keys (non-empty, unique) and tensor names (non-empty, unique per side), and a
// variables prefix inside the directory. `what` names the file in errors: DataLoss for bytes
// that are not a manifest, Unimplemented for a newer format version.
SavedModelManifest decode_saved_model(const std::string &bytes, const std::string &what);
// Checks fingerprint bytes against the manifest bytes they were written with: DataLoss naming
// `what` when they do not parse or the checksum differs (saved_model.pb changed after the save).
void check_fingerprint(const std::string &fingerprint_bytes, const std::string &saved_model_bytes,
                       const std::string &what);

// Reads `<dir>/saved_model.pb` and, when present, checks it against `<dir>/fingerprint.pb`.
// NotFound naming the directory when it has no saved_model.pb.
SavedModelManifest read_saved_model(const std::string &dir);

// 64-bit FNV-1a of bytes (the fingerprint's hashes).
uint64_t fingerprint64(const std::string &bytes);

}  // namespace kiln::io

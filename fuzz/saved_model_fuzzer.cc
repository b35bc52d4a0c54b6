// libFuzzer target: the SavedModel manifest and fingerprint (src/io/saved_model_format.cc). The
// input is split at its first 0xFF 0xFE pair (none: no fingerprint): the first part is
// saved_model.pb, the second fingerprint.pb, both written to a scratch directory that
// read_saved_model loads. A manifest that loads is encoded again and must decode to the same
// manifest (the encoder and decoder agree on every field). Any failure must be a kiln::Error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/file_util.h"
#include "io/saved_model_format.h"

namespace {

bool same_specs(const std::vector<kiln::io::TensorSpecInfo> &a,
                const std::vector<kiln::io::TensorSpecInfo> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].dtype != b[i].dtype || a[i].dims != b[i].dims) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  kiln::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  namespace io = kiln::io;
  const std::string input(reinterpret_cast<const char *>(bytes), size);
  const size_t cut = input.find("\xff\xfe");
  const std::string &dir = kiln::fuzz::scratch_dir();
  const std::string fingerprint = io::join_path(dir, io::kFingerprintFile);
  kiln::fuzz::write_file(io::join_path(dir, io::kSavedModelFile), input.substr(0, cut));
  if (cut == std::string::npos)
    io::remove_file_quietly(fingerprint);
  else
    kiln::fuzz::write_file(fingerprint, input.substr(cut + 2));
  io::SavedModelManifest m;
  try {
    m = io::read_saved_model(dir);
  } catch (const kiln::Error &) {
    return 0;
  }
  io::SavedModelManifest again;
  try {
    again = io::decode_saved_model(io::encode_saved_model(m), "re-encoded");
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "a manifest kiln read does not survive its own encoder: %s\n", e.what());
    __builtin_trap();
  }
  if (again.format_version != m.format_version || again.kiln_version != m.kiln_version ||
      again.model_config != m.model_config || !same_specs(again.build_inputs, m.build_inputs) ||
      again.signatures.size() != m.signatures.size() ||
      again.compile_config.has_value() != m.compile_config.has_value() ||
      again.variables_prefix != m.variables_prefix)
    __builtin_trap();
  for (size_t i = 0; i < m.signatures.size(); ++i)
    if (again.signatures[i].key != m.signatures[i].key ||
        !same_specs(again.signatures[i].inputs, m.signatures[i].inputs) ||
        !same_specs(again.signatures[i].outputs, m.signatures[i].outputs))
      __builtin_trap();
  return 0;
}

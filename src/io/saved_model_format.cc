#include "io/saved_model_format.h"

#include <set>
#include <utility>

#include "core/error.h"
#include "io/file_util.h"
#include "saved_model.pb.h"

namespace kiln::io {

namespace {

namespace pb = ::kiln::tfproto;

// The largest manifest read: configs of models with thousands of layers stay far below it, and
// a corrupt length cannot make the reader allocate more.
constexpr size_t kMaxManifestBytes = size_t{256} << 20;
constexpr int kMaxRank = 8;  // the most dims a kiln tensor has (KILN_MAX_RANK)

void to_proto(const TensorSpecInfo &spec, pb::KilnTensorSpec *out) {
  out->set_name(spec.name);
  out->set_dtype(dtype_name(spec.dtype));
  for (int64_t d : spec.dims) out->add_dims(d);
}

TensorSpecInfo from_proto(const pb::KilnTensorSpec &spec, const std::string &what, const std::string &where) {
  TensorSpecInfo out;
  out.name = spec.name();
  const std::optional<DType> dtype = dtype_from_name(spec.dtype());
  if (!dtype)
    fail(Code::kDataLoss, what, ": ", where, " has dtype '", spec.dtype(),
         "'; expected one of float32, bfloat16, float64, int32, int64, uint8, bool");
  out.dtype = *dtype;
  if (spec.dims_size() > kMaxRank)
    fail(Code::kDataLoss, what, ": ", where, " has rank ", spec.dims_size(), "; at most ", kMaxRank,
         " is supported");
  for (int64_t d : spec.dims()) {
    if (d < -1)
      fail(Code::kDataLoss, what, ": ", where, " has dimension ", d, "; expected -1 (unknown) or >= 0");
    out.dims.push_back(d);
  }
  return out;
}

Config parse_json(const std::string &text, const std::string &what, const char *field) {
  try {
    return Config::from_json(text, field);
  } catch (const Error &e) {
    fail(Code::kDataLoss, what, ": its ", field, " is not a JSON object: ", e.what());
  }
}

void check_names(const std::vector<TensorSpecInfo> &specs, const std::string &what, const std::string &side) {
  std::set<std::string> seen;
  for (const TensorSpecInfo &s : specs) {
    if (s.name.empty()) fail(Code::kDataLoss, what, ": ", side, " has a tensor without a name");
    if (!seen.insert(s.name).second)
      fail(Code::kDataLoss, what, ": ", side, " names tensor '", s.name, "' twice");
  }
}

uint64_t hash_message(const google::protobuf::Message &m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  return fingerprint64(bytes);
}

}  // namespace

uint64_t fingerprint64(const std::string &bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string encode_saved_model(const SavedModelManifest &m) {
  pb::KilnSavedModel p;
  p.set_format_version(m.format_version);
  p.set_kiln_version(m.kiln_version);
  p.set_model_config(m.model_config.to_json());
  for (const TensorSpecInfo &s : m.build_inputs) to_proto(s, p.add_build_inputs());
  for (const SignatureInfo &sig : m.signatures) {
    pb::KilnSignature *ps = p.add_signatures();
    ps->set_key(sig.key);
    ps->set_method_name(sig.method_name);
    for (const TensorSpecInfo &s : sig.inputs) to_proto(s, ps->add_inputs());
    for (const TensorSpecInfo &s : sig.outputs) to_proto(s, ps->add_outputs());
  }
  if (m.compile_config) p.set_compile_config(m.compile_config->to_json());
  p.set_variables_prefix(m.variables_prefix);
  std::string out;
  if (!p.SerializeToString(&out)) fail(Code::kInternal, "saved_model: could not encode the manifest");
  return out;
}

std::string encode_fingerprint(const std::string &saved_model_bytes, const std::string &index_bytes) {
  pb::KilnSavedModel p;
  if (!p.ParseFromString(saved_model_bytes))
    fail(Code::kInternal, "saved_model: could not re-read the manifest");
  pb::KilnFingerprint f;
  f.set_saved_model_checksum(fingerprint64(saved_model_bytes));
  f.set_graph_def_program_hash(fingerprint64(p.model_config()));
  pb::KilnSavedModel signatures;
  *signatures.mutable_signatures() = p.signatures();
  f.set_signature_def_hash(hash_message(signatures));
  pb::KilnSavedModel objects;
  *objects.mutable_build_inputs() = p.build_inputs();
  objects.set_compile_config(p.compile_config());
  f.set_saved_object_graph_hash(hash_message(objects));
  f.set_checkpoint_hash(fingerprint64(index_bytes));
  f.mutable_version()->set_producer(1);
  std::string out;
  if (!f.SerializeToString(&out)) fail(Code::kInternal, "saved_model: could not encode the fingerprint");
  return out;
}

SavedModelManifest decode_saved_model(const std::string &bytes, const std::string &what) {
  if (bytes.size() > kMaxManifestBytes)
    fail(Code::kDataLoss, what, ": ", bytes.size(), " bytes is larger than any kiln manifest (at most ",
         kMaxManifestBytes, ")");
  pb::KilnSavedModel p;
  if (!p.ParseFromString(bytes))
    fail(Code::kDataLoss, what, " is not a kiln SavedModel manifest (it does not parse)");
  SavedModelManifest m;
  m.format_version = p.format_version();
  if (m.format_version <= 0)
    fail(Code::kDataLoss, what, " is not a kiln SavedModel manifest: format_version is ", m.format_version,
         "; expected ", kSavedModelFormatVersion);
  if (m.format_version > kSavedModelFormatVersion)
    fail(Code::kUnimplemented, what, " has format version ", m.format_version, " (written by kiln ",
         p.kiln_version(), "); this kiln reads version ", kSavedModelFormatVersion, " and older");
  m.kiln_version = p.kiln_version();
  m.model_config = parse_json(p.model_config(), what, "model_config");
  if (!m.model_config.has("class_name") || m.model_config.type("class_name") != Config::Type::kString ||
      !m.model_config.has("config") || m.model_config.type("config") != Config::Type::kConfig)
    fail(Code::kDataLoss, what, ": model_config must be {\"class_name\": <string>, \"config\": {...}}");
  for (int i = 0; i < p.build_inputs_size(); ++i)
    m.build_inputs.push_back(from_proto(p.build_inputs(i), what, str_cat("build input ", i)));
  std::set<std::string> keys;
  for (const pb::KilnSignature &ps : p.signatures()) {
    SignatureInfo sig;
    sig.key = ps.key();
    if (sig.key.empty()) fail(Code::kDataLoss, what, ": a signature has an empty key");
    if (!keys.insert(sig.key).second)
      fail(Code::kDataLoss, what, ": signature '", sig.key, "' appears twice");
    sig.method_name = ps.method_name();
    const std::string where = str_cat("signature '", sig.key, "'");
    for (int i = 0; i < ps.inputs_size(); ++i)
      sig.inputs.push_back(from_proto(ps.inputs(i), what, str_cat(where, " input ", i)));
    for (int i = 0; i < ps.outputs_size(); ++i)
      sig.outputs.push_back(from_proto(ps.outputs(i), what, str_cat(where, " output ", i)));
    if (sig.inputs.empty() || sig.outputs.empty())
      fail(Code::kDataLoss, what, ": ", where, " has no inputs or no outputs");
    check_names(sig.inputs, what, where + "'s inputs");
    check_names(sig.outputs, what, where + "'s outputs");
    m.signatures.push_back(std::move(sig));
  }
  if (!p.compile_config().empty()) m.compile_config = parse_json(p.compile_config(), what, "compile_config");
  m.variables_prefix = p.variables_prefix();
  // The prefix stays inside the export directory: no absolute path, no "..".
  const std::string &v = m.variables_prefix;
  if (v.empty() || v[0] == '/' || v == ".." || v.compare(0, 3, "../") == 0 ||
      v.find("/../") != std::string::npos || (v.size() >= 3 && v.compare(v.size() - 3, 3, "/..") == 0))
    fail(Code::kDataLoss, what, ": variables_prefix '", v, "' is not a path inside the export directory");
  return m;
}

void check_fingerprint(const std::string &fingerprint_bytes, const std::string &saved_model_bytes,
                       const std::string &what) {
  pb::KilnFingerprint f;
  if (fingerprint_bytes.size() > kMaxManifestBytes || !f.ParseFromString(fingerprint_bytes))
    fail(Code::kDataLoss, what, " is not a SavedModel fingerprint (it does not parse)");
  const uint64_t actual = fingerprint64(saved_model_bytes);
  if (f.saved_model_checksum() != actual)
    fail(Code::kDataLoss, what, " records saved_model.pb checksum ", f.saved_model_checksum(),
         " but the file has ", actual, ": saved_model.pb was changed or damaged after the save");
}

SavedModelManifest read_saved_model(const std::string &dir) {
  const std::string path = join_path(dir, kSavedModelFile);
  if (!file_exists(path))
    fail(Code::kNotFound, "'", dir, "' is not a SavedModel directory: it has no ", kSavedModelFile);
  const std::string bytes = read_file(path);
  const std::string fingerprint = join_path(dir, kFingerprintFile);
  if (file_exists(fingerprint)) check_fingerprint(read_file(fingerprint), bytes, "'" + fingerprint + "'");
  return decode_saved_model(bytes, "'" + path + "'");
}

}  // namespace kiln::io

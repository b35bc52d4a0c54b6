// Keras's IntegerLookup preprocessing layer (its IndexLookup base): integer tokens mapped to
// indices of a vocabulary given or learned by adapt() (the most frequent tokens), with mask and
// out-of-vocabulary (OOV) indices, the inverse mapping, and the encoded output modes; and Keras's
// Hashing and HashedCrossing layers, values hashed into bins by TF's string hashes of their text and
// by its feature crosses.
#include <farmhash.h>
#include <highwayhash/sip_hash.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "io/file_util.h"
#include "layers/adapt.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "layers/lookup.h"
#include "layers/policy.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// Keras's mask index outside output_mode "int" (int64's max): an id the encodings drop.
constexpr int64_t kDroppedId = std::numeric_limits<int64_t>::max();

// Tokens as int64, as Keras converts them (tf.cast): integers and bool as they are, floats truncated
// toward zero; a float that is not a finite number within int64 is an error naming its flat index
// (unless skip, when given, marks it: it is 0 then).
std::vector<int64_t> int64_values(const Layer &l, const Tensor &x, const char *what,
                                  const std::vector<bool> &skip = {}) {
  const int64_t n = x.num_elements();
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (is_integer(x.dtype()) || x.dtype() == DType::kBool) {
    const Tensor c = ops::cast(x, DType::kInt64);
    std::copy(c.data<int64_t>(), c.data<int64_t>() + n, v.begin());
    return v;
  }
  if (!is_floating(x.dtype())) l.bad_input(what, " is ", x.description(), "; expected integer tokens");
  const Tensor f = ops::cast(x, DType::kFloat64);
  const double *d = f.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    if (!skip.empty() && skip[size_t(i)]) continue;  // 0
    if (!(d[i] >= -9223372036854775808.0 && d[i] < 9223372036854775808.0))
      l.bad_input(what, " holds ", d[i], " at flat index ", i,
                  "; expected integer tokens (floats are truncated toward zero, within int64)");
    v[size_t(i)] = static_cast<int64_t>(d[i]);
  }
  return v;
}

Tensor int64_tensor(const std::vector<int64_t> &v, const Shape &shape) {
  return Tensor::from_data(DType::kInt64, shape, v.data(), v.size() * sizeof(int64_t));
}

// A vocabulary file: one integer per line (Keras's TextFileInitializer of whole lines), trailing empty
// lines ignored.
std::vector<int64_t> read_vocabulary_file(const std::string &owner, const std::string &path) {
  const std::string text = io::read_file(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::vector<int64_t> tokens;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const char *b = line.data(), *e = line.data() + line.size();
    if (b != e && *b == '+') ++b;
    int64_t t = 0;
    const auto [p, ec] = std::from_chars(b, e, t);
    if (line.empty() || ec != std::errc() || p != e)
      fail(Code::kInvalidArgument, owner, ": vocabulary file '", path, "' line ", i + 1, " is '",
           line.substr(0, 40), "'; expected one integer token per line");
    tokens.push_back(t);
  }
  return tokens;
}

// TF's AsString of an integer: its decimal digits, written into buf.
std::string_view decimal(int64_t v, std::array<char, 24> &buf) {
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return {buf.data(), static_cast<size_t>(r.ptr - buf.data())};
}

// Keras's salt: None, one int (used for both halves) or two ints, kept as given for the config;
// TF's key is the two as uint64s.
struct Salt {
  std::vector<int64_t> given;  // empty: none
  std::optional<std::array<uint64_t, 2>> key() const {
    if (given.empty()) return std::nullopt;
    return std::array<uint64_t, 2>{static_cast<uint64_t>(given[0]), static_cast<uint64_t>(given[1])};
  }
  static Salt read(ConfigReader &r) {
    Salt s;
    if (!r.has("salt")) return s;
    const Config &c = r.config();
    if (c.type("salt") == Config::Type::kInt)
      s.given.assign(2, c.get_int("salt"));
    else if (c.type("salt") == Config::Type::kList)
      s.given = c.get_int_list("salt");
    if (s.given.size() != 2)
      fail(Code::kInvalidArgument, r.owner(), ": salt must be one int or a list of two ints; got ",
           c.json().at("salt").dump());
    return s;
  }
  void write(Config &c) const {
    if (given.empty())
      c.set_null("salt");
    else
      c.set("salt", given);
  }
};

// Keras's preprocessing layers whose "int" output carries an integer dtype (Hashing, HashedCrossing):
// "int64" (their default) or "int32", as a name or a DTypePolicy config. kiln's layer policies are
// float, so the key is taken out of the config the Layer base reads, and the layer writes it back.
struct IntOutputDtype {
  std::optional<DType> dtype;  // an integer dtype given
  bool given = false;          // any dtype given

  static IntOutputDtype of(const Config &c, const std::string &owner) {
    IntOutputDtype d;
    const std::optional<std::string> name = policy_name_from_config(c, "dtype", owner);
    d.given = name.has_value();
    if (name == "int64") d.dtype = DType::kInt64;
    if (name == "int32") d.dtype = DType::kInt32;
    return d;
  }
  Config base_config(Config c) const {
    if (dtype) c.erase("dtype");
    return c;
  }
  // The "int" output's dtype; Keras's errors for a float dtype there, an integer one elsewhere.
  DType check(const char *owner, const std::string &mode, const Config &c) const {
    if (mode == "int" && given && !dtype)
      fail(Code::kInvalidArgument, owner,
           ": with output_mode 'int' the dtype must be 'int32' or 'int64'; got ",
           c.json().at("dtype").dump());
    if (mode != "int" && dtype)
      fail(Code::kInvalidArgument, owner, ": output_mode '", mode, "' gives float encodings; got dtype ",
           dtype_name(*dtype));
    return dtype.value_or(DType::kInt64);
  }
};

// The keys Keras validates: None is not a default.
void refuse_nulls(const ConfigReader &r, std::initializer_list<const char *> keys) {
  for (const char *key : keys)
    if (r.config().has(key) && r.config().is_null(key))
      fail(Code::kInvalidArgument, r.owner(), ": ", key, " must not be None");
}

// The hashing layers' num_bins: a positive int.
int64_t read_num_bins(ConfigReader &r) {
  if (!r.has("num_bins"))
    fail(Code::kInvalidArgument, r.owner(), ": num_bins must be a positive int; got None");
  const int64_t n = r.get_int("num_bins");
  if (n <= 0) fail(Code::kInvalidArgument, r.owner(), ": num_bins must be a positive int; got ", n);
  return n;
}

// ------------------------------------------------------------------ IntegerLookup

// keras.layers.IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
// vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int",
// sparse=False, pad_to_max_tokens=False, oov_method="floormod", salt=None). Indices: the mask token
// at 0 (output_mode "int" only), then num_oov_indices OOV indices (an OOV token x goes to
// floormod(x, num_oov_indices)), then the vocabulary. adapt() learns the vocabulary as Keras does:
// tokens by count, ties by token, both descending, the mask and OOV tokens left out, at most
// max_tokens indices in all; for "tf_idf" also the IDF weights log(1 + documents / (1 + documents
// with the token)). The vocabulary (and IDF weights) are in the config once set, so a config or a
// SavedModel rebuilds the layer.
class IntegerLookup final : public Layer, public Adaptable, public VocabularyLayer {
 public:
  explicit IntegerLookup(const Config &config) : IntegerLookup(ConfigReader(config, "IntegerLookup")) {}

 private:
  // What set_vocabulary and adapt replace at once: a call sees the old state or the new one.
  struct State {
    std::vector<int64_t> tokens;                 // the token of index token_start() + i
    std::unordered_map<int64_t, int64_t> index;  // token -> index
    std::vector<float> idf;                      // "tf_idf": a weight per output slot
    std::optional<int64_t> frozen_size;          // Keras's _frozen_vocab_size
  };

  explicit IntegerLookup(ConfigReader &&r) : Layer("IntegerLookup", r) {
    refuse_nulls(r, {"invert", "num_oov_indices", "output_mode", "sparse", "pad_to_max_tokens",
                     "vocabulary_dtype", "oov_method"});
    invert_ = r.get_bool("invert", false);
    if (r.has("max_tokens")) {
      max_tokens_ = r.get_int("max_tokens");
      if (*max_tokens_ <= 1)
        fail(Code::kInvalidArgument, "IntegerLookup: max_tokens must be greater than 1 when set; got ",
             *max_tokens_);
    }
    num_oov_ = r.get_int("num_oov_indices", 1);
    if (num_oov_ < 0 || num_oov_ > (int64_t{1} << 62))  // indices stay far from int64's end
      fail(Code::kInvalidArgument, "IntegerLookup: num_oov_indices must be in [0, 2**62]; got ", num_oov_);
    if (r.has("oov_token"))
      oov_token_ = r.get_int("oov_token");
    else if (!r.config().has("oov_token"))  // absent: Keras's default; null: None
      oov_token_ = -1;
    if (r.has("mask_token")) mask_token_ = r.get_int("mask_token");
    mode_ = r.get_string("output_mode", "int");
    if (mode_ == "binary") mode_ = "multi_hot";
    if (mode_ == "tf-idf") mode_ = "tf_idf";
    if (mode_ != "int" && mode_ != "one_hot" && mode_ != "multi_hot" && mode_ != "count" && mode_ != "tf_idf")
      fail(Code::kInvalidArgument, "IntegerLookup: output_mode '", mode_,
           "' is not one of 'int', 'one_hot', 'multi_hot', 'count', 'tf_idf'");
    if (invert_ && mode_ != "int")
      fail(Code::kInvalidArgument, "IntegerLookup: output_mode must be 'int' when invert is true; got '",
           mode_, "'");
    if (max_tokens_ && *max_tokens_ <= token_start())
      fail(Code::kInvalidArgument, "IntegerLookup: max_tokens (", *max_tokens_,
           ") must be more than the mask and OOV indices (", token_start(), "), to leave room for tokens");
    if (!oov_token_ && (invert_ || num_oov_ > 0))
      fail(Code::kInvalidArgument, "IntegerLookup: oov_token must be an int ",
           invert_ ? "when invert is true" : "when num_oov_indices > 0", "; got None");
    if (r.get_bool("sparse", false)) {
      if (mode_ == "int")
        fail(
            Code::kInvalidArgument,
            "IntegerLookup: sparse=True may only be used with output_mode 'one_hot', 'multi_hot', 'count' or "
            "'tf_idf'; got output_mode 'int'");
      fail(Code::kUnimplemented, "IntegerLookup: sparse=True (sparse outputs) is not supported");
    }
    pad_ = r.get_bool("pad_to_max_tokens", false);
    if (pad_ && !max_tokens_)
      fail(Code::kInvalidArgument,
           "IntegerLookup: pad_to_max_tokens=True needs max_tokens; got max_tokens=None");
    const std::string dtype = r.get_string("vocabulary_dtype", "int64");
    if (dtype != "int64")
      fail(Code::kInvalidArgument, "IntegerLookup: vocabulary_dtype must be 'int64' (as Keras's); got '",
           dtype, "'");
    oov_method_ = r.get_string("oov_method", "floormod");
    if (oov_method_ != "floormod" && oov_method_ != "farmhash")
      fail(Code::kInvalidArgument, "IntegerLookup: oov_method '", oov_method_,
           "' is not one of 'floormod', 'farmhash'");
    salt_ = Salt::read(r);
    if (!salt_.given.empty() && oov_method_ != "farmhash")
      fail(Code::kInvalidArgument,
           "IntegerLookup: salt can only be used when oov_method='farmhash'; got "
           "oov_method='",
           oov_method_, "'");
    std::optional<std::vector<double>> idf;
    if (r.has("idf_weights")) {
      if (mode_ != "tf_idf")
        fail(Code::kInvalidArgument,
             "IntegerLookup: idf_weights may only be set with output_mode 'tf_idf'; got '", mode_, "'");
      if (r.config().type("idf_weights") != Config::Type::kList)
        fail(Code::kInvalidArgument, "IntegerLookup: idf_weights must be a list of floats; got ",
             r.config().json().at("idf_weights").dump());
      idf = r.config().get_float_list("idf_weights");
    }
    std::optional<std::vector<int64_t>> vocab;
    if (r.has("vocabulary")) {
      if (r.config().type("vocabulary") == Config::Type::kString) {
        if (mode_ == "tf_idf")
          fail(Code::kInvalidArgument,
               "IntegerLookup: output_mode 'tf_idf' cannot read its vocabulary from a file; pass the "
               "vocabulary and idf_weights as lists");
        vocab = read_vocabulary_file("IntegerLookup", r.config().get_string("vocabulary"));
      } else {
        if (r.config().type("vocabulary") != Config::Type::kList)
          fail(Code::kInvalidArgument,
               "IntegerLookup: vocabulary must be a list of ints or a file path; got ",
               r.config().json().at("vocabulary").dump());
        vocab = r.config().get_int_list("vocabulary");
      }
    }
    // Keras's keys: vocabulary_size (the size once fixed), has_input_vocabulary (false for a
    // vocabulary adapt() learned, which a later adapt() may replace).
    auto state = std::make_shared<State>();
    if (r.has("vocabulary_size")) {
      state->frozen_size = r.get_int("vocabulary_size");
      if (*state->frozen_size < 0)
        fail(Code::kInvalidArgument, "IntegerLookup: vocabulary_size must be >= 0; got ",
             *state->frozen_size);
    }
    input_vocabulary_ = r.get_bool("has_input_vocabulary", vocab.has_value());
    r.finish();
    set_autocast(false);  // tokens are looked up as int64 whatever the policy
    if (mode_ == "tf_idf" && vocab && !idf)
      fail(Code::kInvalidArgument,
           "IntegerLookup: with a vocabulary and output_mode 'tf_idf', idf_weights must be given too");
    state_ = std::move(state);
    if (vocab) set_values(*vocab, idf);
  }

  int64_t oov_start() const { return mask_token_ && mode_ == "int" ? 1 : 0; }
  int64_t token_start() const { return oov_start() + num_oov_; }
  bool size_fixed() const { return mode_ != "int" && !pad_; }

  std::shared_ptr<const State> state() const {
    std::lock_guard<std::mutex> lock(state_mu_);
    return state_;
  }
  // Keras's _record_vocabulary_size: the size of an encoding layer stays as it was first set.
  void install(std::shared_ptr<State> s) {
    const int64_t size = token_start() + static_cast<int64_t>(s->tokens.size());
    std::lock_guard<std::mutex> lock(state_mu_);
    if (size_fixed() && state_->frozen_size && *state_->frozen_size != size)
      fail_layer(Code::kFailedPrecondition, "with output_mode '", mode_,
                 "' and pad_to_max_tokens=False the vocabulary size cannot change once set; it was ",
                 *state_->frozen_size, ", the new vocabulary gives ", size);
    s->frozen_size = size;
    state_ = std::move(s);
  }

  // Keras's set_vocabulary: the special tokens may lead the vocabulary, in Keras's order (then the IDF
  // weights cover them too); else the weights get the mean weight in front, for the special indices.
  void set_values(const std::vector<int64_t> &vocabulary, const std::optional<std::vector<double>> &idf) {
    if (mode_ == "tf_idf" && !idf) bad_input("idf_weights must be set when output_mode is 'tf_idf'");
    if (mode_ != "tf_idf" && idf)
      bad_input("idf_weights may only be set with output_mode 'tf_idf'; got output_mode '", mode_, "'");
    if (vocabulary.empty()) bad_input("cannot set an empty vocabulary");
    const auto start = static_cast<size_t>(token_start());
    bool found_special = vocabulary.size() >= start;
    for (size_t i = 0; found_special && i < start; ++i)
      found_special = vocabulary[i] == (i < size_t(oov_start()) ? *mask_token_ : *oov_token_);
    auto s = std::make_shared<State>();
    s->tokens.assign(vocabulary.begin() + (found_special ? std::ptrdiff_t(start) : 0), vocabulary.end());
    std::vector<int64_t> repeated;
    for (size_t i = 0; i < s->tokens.size(); ++i) {
      const int64_t t = s->tokens[i];
      if (!s->index.emplace(t, token_start() + int64_t(i)).second &&
          std::find(repeated.begin(), repeated.end(), t) == repeated.end())
        repeated.push_back(t);
    }
    if (!repeated.empty())
      bad_input("the vocabulary repeats tokens ", list_string(repeated, 10), "; expected each token once");
    const std::string order = "either leave the mask and OOV tokens out, or put them first, in this order: " +
                              list_string(special_tokens(11), 10);
    if (mask_token_ && s->index.count(*mask_token_))
      bad_input("the mask token ", *mask_token_, " is in the vocabulary at an unexpected place; ", order);
    if (invert_ && s->index.count(*oov_token_))
      bad_input("the OOV token ", *oov_token_, " is in the vocabulary at an unexpected place; ", order);
    const int64_t size = token_start() + static_cast<int64_t>(s->tokens.size());
    if (max_tokens_ && size > *max_tokens_)
      bad_input("the vocabulary's size (with the mask and OOV indices) is ", size, ", more than max_tokens ",
                *max_tokens_);
    if (idf) {
      if (idf->size() != vocabulary.size())
        bad_input("idf_weights must be as long as the vocabulary; got ", idf->size(), " weights for ",
                  vocabulary.size(), " tokens");
      double mean = 0.0;  // NumPy's average, in float64
      for (double w : *idf) mean += w;
      mean /= static_cast<double>(idf->size());
      if (!found_special) s->idf.assign(start, static_cast<float>(mean));
      for (double w : *idf) s->idf.push_back(static_cast<float>(w));
      if (pad_) s->idf.resize(size_t(*max_tokens_), 0.0f);
    }
    install(std::move(s));
  }

  // Keras's special tokens in index order: the mask token (output_mode "int"), then the OOV tokens.
  // (The first `limit` of them.)
  std::vector<int64_t> special_tokens(size_t limit = SIZE_MAX) const {
    std::vector<int64_t> v(std::min(size_t(oov_start()), limit), mask_token_.value_or(0));
    v.insert(v.end(), std::min(size_t(num_oov_), limit - v.size()), oov_token_.value_or(0));
    return v;
  }
  std::vector<int64_t> vocabulary_of(const State &s, bool include_special_tokens) const {
    std::vector<int64_t> v = include_special_tokens ? special_tokens() : std::vector<int64_t>();
    v.insert(v.end(), s.tokens.begin(), s.tokens.end());
    return v;
  }

  Tensor get_vocabulary(bool include_special_tokens) const override {
    const std::vector<int64_t> v = vocabulary_of(*state(), include_special_tokens);
    return int64_tensor(v, Shape{int64_t(v.size())});
  }

  void set_vocabulary(const Tensor &vocabulary, const Tensor &idf_weights) override {
    std::lock_guard<std::mutex> lock(adapt_mu_);
    if (vocabulary.rank() != 1)
      bad_input("the vocabulary is ", vocabulary.description(), "; expected a 1-D tensor");
    std::optional<std::vector<double>> idf;
    if (idf_weights.defined()) {
      if (idf_weights.rank() != 1 || !is_floating(idf_weights.dtype()))
        bad_input("idf_weights is ", idf_weights.description(), "; expected a 1-D float tensor");
      const Tensor d = ops::cast(idf_weights, DType::kFloat64);
      idf.emplace(d.data<double>(), d.data<double>() + d.num_elements());
    }
    set_values(int64_values(*this, vocabulary, "the vocabulary"), idf);
  }

  int64_t depth(const State &s) const { return pad_ ? *max_tokens_ : s.frozen_size.value_or(kUnknownDim); }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = single_input(*this, inputs);
    const std::vector<int64_t> ids = int64_values(*this, x, "the input");
    const std::shared_ptr<const State> s = state();
    if (size_fixed() && !s->frozen_size)
      fail_layer(Code::kFailedPrecondition, "with output_mode '", mode_,
                 "' and pad_to_max_tokens=False the vocabulary must be set before calling the layer: pass "
                 "vocabulary, or call adapt()");
    std::vector<int64_t> out(ids.size());
    const auto n_tokens = static_cast<int64_t>(s->tokens.size());
    const int64_t mask_id = mode_ == "int" ? 0 : kDroppedId;
    const bool farmhash = oov_method_ == "farmhash";
    const std::optional<std::array<uint64_t, 2>> key = salt_.key();
    std::array<char, 24> digits;
    std::vector<int64_t> oov;
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t v = ids[i];
      if (invert_) {
        if (mask_token_ && v == 0)
          out[i] = *mask_token_;
        else if (v >= token_start() && v - token_start() < n_tokens)
          out[i] = s->tokens[size_t(v - token_start())];
        else
          out[i] = *oov_token_;
        continue;
      }
      if (mask_token_ && v == *mask_token_) {
        out[i] = mask_id;
        continue;
      }
      const auto it = s->index.find(v);
      if (it != s->index.end()) {
        out[i] = it->second;
      } else if (num_oov_ == 0) {
        if (oov.size() <= 10) oov.push_back(v);
        out[i] = -1;
      } else if (farmhash) {  // TF's to_hash_bucket of the token's digits
        out[i] = hash_bucket(decimal(v, digits), num_oov_, key) + oov_start();
      } else {
        const int64_t r = v % num_oov_;
        out[i] = (r < 0 ? r + num_oov_ : r) + oov_start();  // floormod
      }
    }
    if (!oov.empty())
      bad_input("with num_oov_indices=0 every input must be in the vocabulary; found OOV values ",
                list_string(oov, 10), "; consider num_oov_indices=1");
    const Tensor ids_out = int64_tensor(out, x.shape());
    if (mode_ == "int") return {ids_out};
    const int64_t d = depth(*s);
    Tensor y = encode_categorical(ids_out, mode_ == "tf_idf" ? "count" : mode_, d, DType::kFloat32);
    if (mode_ == "tf_idf") {
      if (static_cast<int64_t>(s->idf.size()) != d)
        fail_layer(Code::kFailedPrecondition, "output_mode 'tf_idf' needs ", d,
                   " IDF weights; the layer has ", s->idf.size(),
                   ": set the vocabulary with idf_weights, or adapt() the layer");
      y = ops::mul(
          y, Tensor::from_data(DType::kFloat32, Shape{d}, s->idf.data(), s->idf.size() * sizeof(float)));
    }
    return {y};
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    if (mode_ == "int") return {s};
    return {encoded_shape(s, mode_ == "tf_idf" ? "count" : mode_, depth(*state()))};
  }

  // Keras's adapt of an array: a 1-D array is a column, one token per sample (a dataset's 1-D batch
  // is one sample).
  void adapt_array(const Tensor &data) override {
    Adaptable::adapt_array(data.rank() == 1 ? ops::reshape(data, {data.shape()[0], 1}) : data);
  }

  void adapt(const NextBatchFn &next) override {
    std::lock_guard<std::mutex> lock(adapt_mu_);
    if (input_vocabulary_)
      fail_layer(Code::kFailedPrecondition,
                 "cannot adapt a layer made with a vocabulary; make it without one to adapt it");
    std::unordered_map<int64_t, int64_t> counts, doc_counts;
    int64_t documents = 0;
    Tensor batch;
    bool any = false;
    while (next(&batch)) {
      any = true;
      const std::vector<int64_t> ids = int64_values(*this, batch, "an adapt() batch");
      for (int64_t t : ids) ++counts[t];
      if (mode_ != "tf_idf") continue;
      // Each sample (row of axis 0; a batch of rank 0 or 1 is one) counts a token once; Keras's
      // tf.unique of a row needs rows of rank 1.
      if (batch.rank() > 2)
        bad_input(
            "adapt() with output_mode 'tf_idf' needs batches of rank 2 at most (samples of tokens); got ",
            batch.description());
      const int64_t rows = batch.rank() >= 2 ? batch.shape()[0] : 1;
      const size_t per_row = rows ? ids.size() / size_t(rows) : 0;
      for (int64_t r = 0; r < rows; ++r) {
        std::unordered_set<int64_t> seen(ids.begin() + std::ptrdiff_t(size_t(r) * per_row),
                                         ids.begin() + std::ptrdiff_t(size_t(r + 1) * per_row));
        for (int64_t t : seen) ++doc_counts[t];
      }
      documents += rows;
    }
    if (!any) bad_input("adapt() got no batches; expected at least one (a batch of the data)");
    auto s = std::make_shared<State>();
    if (counts.empty()) {  // Keras keeps the vocabulary (and weights) it had
      *s = *state();
      install(std::move(s));
      return;
    }
    if (mask_token_) counts.erase(*mask_token_);
    if (oov_token_) counts.erase(*oov_token_);
    std::vector<std::pair<int64_t, int64_t>> ranked(counts.begin(), counts.end());  // (token, count)
    std::sort(ranked.begin(), ranked.end(), [](const auto &a, const auto &b) {
      return a.second != b.second ? a.second > b.second : a.first > b.first;
    });
    if (max_tokens_)
      ranked.resize(std::min(ranked.size(), size_t(std::max<int64_t>(*max_tokens_ - token_start(), 0))));
    for (const auto &[token, count] : ranked) {
      s->index.emplace(token, token_start() + int64_t(s->tokens.size()));
      s->tokens.push_back(token);
    }
    if (mode_ == "tf_idf") {
      // log(1 + documents / (1 + document count)) in float64, as TF divides int64s, then float32;
      // the special indices get the weights' mean.
      std::vector<float> w;
      double sum = 0.0;
      for (int64_t t : s->tokens) {
        w.push_back(static_cast<float>(
            std::log(1.0 + static_cast<double>(documents) / static_cast<double>(1 + doc_counts[t]))));
        sum += w.back();
      }
      const float mean = w.empty() ? std::numeric_limits<float>::quiet_NaN()
                                   : static_cast<float>(sum / static_cast<double>(w.size()));
      s->idf.assign(size_t(token_start()), mean);
      s->idf.insert(s->idf.end(), w.begin(), w.end());
      if (pad_) s->idf.resize(std::max(s->idf.size(), size_t(*max_tokens_)), 0.0f);
    }
    install(std::move(s));
  }

  void add_config(Config &c) const override {
    const std::shared_ptr<const State> s = state();
    c.set("invert", invert_).set("max_tokens", max_tokens_).set("num_oov_indices", num_oov_);
    c.set("oov_token", oov_token_).set("mask_token", mask_token_).set("output_mode", mode_);
    c.set("sparse", false).set("pad_to_max_tokens", pad_).set("vocabulary_dtype", "int64");
    // The vocabulary's own tokens, as Keras's config holds a given one; with "tf_idf" the special
    // tokens lead it, so that the IDF weights (which cover them) line up.
    const bool weighted =
        mode_ == "tf_idf" && s->frozen_size && token_start() + int64_t(s->tokens.size()) > 0;
    const bool has_vocab = weighted || !s->tokens.empty();
    if (weighted) {
      const size_t size = size_t(token_start()) + s->tokens.size();
      c.set_any_float("idf_weights",
                      std::vector<double>(s->idf.begin(),
                                          s->idf.begin() + std::ptrdiff_t(std::min(s->idf.size(), size))));
      c.set("vocabulary", vocabulary_of(*s, true));
    } else {
      c.set_null("idf_weights");
      if (has_vocab)
        c.set("vocabulary", s->tokens);
      else
        c.set_null("vocabulary");
    }
    c.set("vocabulary_size", s->frozen_size);
    c.set("oov_method", oov_method_);
    salt_.write(c);
    if (has_vocab && !input_vocabulary_) c.set("has_input_vocabulary", false);
  }

  bool invert_ = false, pad_ = false, input_vocabulary_ = false;
  std::optional<int64_t> max_tokens_, oov_token_, mask_token_;
  int64_t num_oov_ = 1;
  std::string mode_, oov_method_;
  Salt salt_;
  std::shared_ptr<const State> state_;  // never null
  mutable std::mutex state_mu_;         // state_: a call sees the old vocabulary or the new
  std::mutex adapt_mu_;                 // one adapt() or set_vocabulary() at a time
};

// ------------------------------------------------------------------ Hashing

// keras.layers.Hashing(num_bins, mask_value=None, salt=None, output_mode="int", sparse=False): each
// value's bin, TF's to_hash_bucket of its text (integers as decimal digits, floats truncated to int64
// first, bools "true" / "false"): FarmHash's fingerprint, or with a salt SipHash keyed by it. With
// mask_value (and num_bins > 1) the mask is bin 0 and the other values hash into 1 .. num_bins - 1.
// int64 bins ("int"), or float32 encodings over num_bins ("one_hot", "multi_hot", "count").
class Hashing final : public Layer {
 public:
  explicit Hashing(const Config &config) : Hashing(IntOutputDtype::of(config, "Hashing"), config) {}

 private:
  Hashing(const IntOutputDtype &d, const Config &config)
      : Hashing(ConfigReader(d.base_config(config), "Hashing"), d) {}

  Hashing(ConfigReader &&r, const IntOutputDtype &d) : Layer("Hashing", r) {
    refuse_nulls(r, {"output_mode", "sparse"});
    num_bins_ = read_num_bins(r);
    if (r.has("mask_value")) {
      const Config &c = r.config();
      const Config::Type t = c.type("mask_value");
      if (t != Config::Type::kInt && t != Config::Type::kFloat && t != Config::Type::kBool)
        fail(Code::kInvalidArgument,
             "Hashing: mask_value must be a number or a bool (kiln has no string tensors); got ",
             c.json().at("mask_value").dump());
      mask_ = c.json().at("mask_value");
    }
    salt_ = Salt::read(r);
    mode_ = r.get_string("output_mode", "int");
    if (mode_ != "int" && mode_ != "one_hot" && mode_ != "multi_hot" && mode_ != "count")
      fail(Code::kInvalidArgument, "Hashing: output_mode '", mode_,
           "' is not one of 'int', 'one_hot', 'multi_hot', 'count'");
    out_dtype_ = d.check("Hashing", mode_, r.config());
    if (r.get_bool("sparse", false)) {
      if (mode_ == "int")
        fail(Code::kInvalidArgument,
             "Hashing: sparse=True may only be used with output_mode 'one_hot', 'multi_hot' or 'count'; got "
             "output_mode 'int'");
      fail(Code::kUnimplemented, "Hashing: sparse=True (sparse outputs) is not supported");
    }
    r.finish();
    set_autocast(false);  // values are hashed as given, whatever the policy
  }

  // Keras's tf.equal(values, mask_value): the mask converted to the inputs' dtype (an error where TF's
  // conversion is: a float for integer inputs, an integer outside their range, a number for bool
  // inputs; a bool is 0 or 1 for numbers, as Python's bool is an int), then compared with each of x's
  // values, which `wide` holds as int64 (integers, bool) or float64 (floats).
  std::vector<bool> mask_of(const Tensor &x, const Tensor &wide) const {
    const Config::Json &m = *mask_;
    const std::string what = m.dump();
    const auto n = static_cast<size_t>(x.num_elements());
    std::vector<bool> hit(n);
    if (is_floating(x.dtype())) {  // the mask rounded to the inputs' float dtype, as TF converts it
      const double given = m.is_boolean() ? double(m.get<bool>()) : m.get<double>();
      const double v =
          *ops::cast(ops::cast(Tensor::scalar(given), x.dtype()), DType::kFloat64).data<double>();
      for (size_t i = 0; i < n; ++i) hit[i] = wide.data<double>()[i] == v;
      return hit;
    }
    int64_t v = 0;
    if (x.dtype() == DType::kBool) {
      if (!m.is_boolean())
        bad_input("mask_value ", what, " cannot be compared with ", x.description(),
                  " inputs; expected a bool mask_value for bool inputs");
      v = m.get<bool>();
    } else {
      const int64_t lo = x.dtype() == DType::kUInt8 ? 0 : x.dtype() == DType::kInt32 ? INT32_MIN : INT64_MIN;
      const int64_t hi = x.dtype() == DType::kUInt8   ? 255
                         : x.dtype() == DType::kInt32 ? INT32_MAX
                                                      : INT64_MAX;
      const bool integral = m.is_boolean() || m.is_number_integer();
      v = m.is_boolean() ? int64_t(m.get<bool>()) : integral ? m.get<int64_t>() : 0;
      if (!integral || (m.is_number_unsigned() && m.get<uint64_t>() > uint64_t(INT64_MAX)) || v < lo ||
          v > hi)
        bad_input("mask_value ", what, " does not convert to the inputs' dtype ", dtype_name(x.dtype()),
                  " (TF converts it to compare, and refuses a float for integers); expected an integer in [",
                  lo, ", ", hi, "]");
    }
    for (size_t i = 0; i < n; ++i) hit[i] = wide.data<int64_t>()[i] == v;
    return hit;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor x = single_input(*this, inputs);
    // Keras's one_hot drops a last axis of 1 here, and encode_categorical_inputs drops another.
    if (mode_ == "one_hot" && x.rank() > 0 && x.shape()[x.rank() - 1] == 1) x = ops::squeeze(x, {-1});
    const bool is_bool = x.dtype() == DType::kBool;
    const bool masked = mask_ && num_bins_ > 1;
    // one widening cast, read by the mask and by the tokens: int64 (integers, bool) or float64
    const Tensor wide = ops::cast(x, is_floating(x.dtype()) ? DType::kFloat64 : DType::kInt64);
    const std::vector<bool> hit = masked ? mask_of(x, wide) : std::vector<bool>();
    const std::vector<int64_t> ints =
        int64_values(*this, wide, "the input", hit);  // masked values need no cast
    const int64_t bins = masked ? num_bins_ - 1 : num_bins_;
    const std::optional<std::array<uint64_t, 2>> key = salt_.key();
    std::array<char, 24> digits;
    std::vector<int64_t> out(ints.size());
    for (size_t i = 0; i < ints.size(); ++i) {
      if (masked && hit[i]) {
        out[i] = 0;
        continue;
      }
      const std::string_view text = is_bool ? (ints[i] ? "true" : "false") : decimal(ints[i], digits);
      out[i] = hash_bucket(text, bins, key) + (masked ? 1 : 0);
    }
    const Tensor ids = int64_tensor(out, x.shape());
    if (mode_ == "int") return {out_dtype_ == DType::kInt64 ? ids : ops::cast(ids, out_dtype_)};
    return {encode_categorical(ids, mode_, num_bins_, DType::kFloat32)};
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    PartialShape s = single_input(*this, shapes);
    if (mode_ == "int") return {s};
    if (mode_ == "one_hot" && !s.empty() && s.back() == 1) s.pop_back();  // as call
    return {encoded_shape(s, mode_, num_bins_)};
  }

  void add_config(Config &c) const override {
    if (mode_ == "int") c.set("dtype", std::string(dtype_name(out_dtype_)));  // Keras's int-mode dtype
    c.set("num_bins", num_bins_);
    salt_.write(c);
    if (mask_)
      c.update(Config::from_value(Config::Json::object({{"mask_value", *mask_}}), "Hashing"));
    else
      c.set_null("mask_value");
    c.set("output_mode", mode_).set("sparse", false);
  }

  int64_t num_bins_ = 1;
  std::optional<Config::Json> mask_;  // an int, a float or a bool, as given
  Salt salt_;
  std::string mode_;
  DType out_dtype_ = DType::kInt64;  // "int" mode's bins
};

// ------------------------------------------------------------------ HashedCrossing

// keras.layers.HashedCrossing(num_bins, output_mode="int", sparse=False): the cross of two or more
// integer features of shape (), (batch,) or (batch, 1), each row's values hashed together as TF's
// sparse.cross_hashed does (FingerprintCat64 from the key 0xDECAFCAFFE over the features' int64 values,
// in input order), modulo num_bins: int64 bins ("int"), or one-hot float32 rows ("one_hot").
class HashedCrossing final : public Layer {
 public:
  explicit HashedCrossing(const Config &config)
      : HashedCrossing(IntOutputDtype::of(config, "HashedCrossing"), config) {}

 private:
  static constexpr uint64_t kHashKey = 0xDECAFCAFFEull;  // TF's _DEFAULT_HASH_KEY

  HashedCrossing(const IntOutputDtype &d, const Config &config)
      : HashedCrossing(ConfigReader(d.base_config(config), "HashedCrossing"), d) {}

  HashedCrossing(ConfigReader &&r, const IntOutputDtype &d) : Layer("HashedCrossing", r) {
    refuse_nulls(r, {"output_mode", "sparse"});
    num_bins_ = read_num_bins(r);
    mode_ = r.get_string("output_mode", "int");
    if (mode_ != "int" && mode_ != "one_hot")
      fail(Code::kInvalidArgument, "HashedCrossing: output_mode '", mode_,
           "' is not one of 'int', 'one_hot'");
    out_dtype_ = d.check("HashedCrossing", mode_, r.config());
    if (r.get_bool("sparse", false))
      fail(Code::kUnimplemented, "HashedCrossing: sparse=True (sparse outputs) is not supported");
    r.finish();
    set_autocast(false);  // features are crossed as given, whatever the policy
  }

  // Keras's checks: two or more features of one shape, (), (batch,) or (batch, 1).
  template <typename S>
  void check_features(const std::vector<S> &shapes, const std::vector<std::string> &names) const {
    if (shapes.size() < 2)
      bad_input("needs a list of at least two features; got ", shapes.size(), " input",
                shapes.size() == 1 ? "" : "s");
    for (size_t i = 1; i < shapes.size(); ++i)
      if (shapes[i] != shapes[0])
        bad_input("the features must have one shape; feature 0 is ", names[0], ", feature ", i, " is ",
                  names[i]);
    const S &s = shapes[0];
    if (s.size() > 2 || (s.size() == 2 && s[1] != 1))
      bad_input("the features should have shape () or (batch_size,) or (batch_size, 1); got ", names[0]);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::string> names;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!is_integer(inputs[i].dtype()))
        bad_input("feature ", i, " is ", inputs[i].description(),
                  "; expected integer features (kiln has no string tensors)");
      shapes.push_back(inputs[i].shape().to_vector());
      names.push_back(inputs[i].description());
    }
    check_features(shapes, names);
    std::vector<std::vector<int64_t>> features;
    for (const Tensor &x : inputs) features.push_back(int64_values(*this, x, "a feature"));
    std::vector<int64_t> out(features[0].size());
    for (size_t j = 0; j < out.size(); ++j) {
      uint64_t h = kHashKey;
      for (const std::vector<int64_t> &f : features) h = fingerprint_cat64(h, static_cast<uint64_t>(f[j]));
      out[j] = static_cast<int64_t>(h % static_cast<uint64_t>(num_bins_));
    }
    const Tensor ids = int64_tensor(out, inputs[0].shape());
    if (mode_ == "int") return {out_dtype_ == DType::kInt64 ? ids : ops::cast(ids, out_dtype_)};
    return {encode_categorical(ids, "one_hot", num_bins_, DType::kFloat32)};
  }

  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    std::vector<std::string> names;
    for (const PartialShape &s : shapes) names.push_back(tuple_string(s));
    check_features(shapes, names);
    if (mode_ == "int") return {shapes[0]};
    return {encoded_shape(shapes[0], "one_hot", num_bins_)};
  }

  void add_config(Config &c) const override {
    if (mode_ == "int") c.set("dtype", std::string(dtype_name(out_dtype_)));  // Keras's int-mode dtype
    c.set("num_bins", num_bins_).set("output_mode", mode_).set("sparse", false);
  }

  int64_t num_bins_ = 1;
  std::string mode_;
  DType out_dtype_ = DType::kInt64;
};

}  // namespace

uint64_t fingerprint_cat64(uint64_t a, uint64_t b) {
  constexpr uint64_t kMul = 0xc6a4a7935bd1e995ull;
  const auto shift_mix = [](uint64_t v) { return v ^ (v >> 47); };
  uint64_t r = a ^ kMul;
  r ^= shift_mix(b * kMul) * kMul;
  r *= kMul;
  r = shift_mix(r) * kMul;
  return shift_mix(r);
}

uint64_t fingerprint64(std::string_view s) { return util::Fingerprint64(s.data(), s.size()); }

uint64_t strong_keyed_hash(const std::array<uint64_t, 2> &key, std::string_view s) {
  const highwayhash::HH_U64 k[2] = {key[0], key[1]};
  return highwayhash::SipHash(k, s.data(), s.size());
}

int64_t hash_bucket(std::string_view s, int64_t buckets, const std::optional<std::array<uint64_t, 2>> &key) {
  const uint64_t h = key ? strong_keyed_hash(*key, s) : fingerprint64(s);
  return static_cast<int64_t>(h % static_cast<uint64_t>(buckets));
}

Tensor get_vocabulary(const Layer &layer, bool include_special_tokens) {
  const auto *v = dynamic_cast<const VocabularyLayer *>(&layer);
  if (!v)
    fail(Code::kInvalidArgument, "layer '", layer.name(), "' (", layer.class_name(),
         ") has no vocabulary; the layers with one are: IntegerLookup");
  return v->get_vocabulary(include_special_tokens);
}

void set_vocabulary(Layer &layer, const Tensor &vocabulary, const Tensor &idf_weights) {
  auto *v = dynamic_cast<VocabularyLayer *>(&layer);
  if (!v)
    fail(Code::kInvalidArgument, "layer '", layer.name(), "' (", layer.class_name(),
         ") has no vocabulary; the layers with one are: IntegerLookup");
  v->set_vocabulary(vocabulary, idf_weights);
}

void register_lookup_layers() {
  register_class<IntegerLookup>("IntegerLookup");
  register_class<Hashing>("Hashing");
  register_class<HashedCrossing>("HashedCrossing");
}

}  // namespace kiln::layers

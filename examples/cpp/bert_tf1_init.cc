// google-research/bert's encoder (modeling.py's BertModel) built from kiln's built-in layers and
// initialised from a TensorFlow 1 checkpoint (bert_model.ckpt, as google-research/bert's
// downloads hold it) with kiln::train::init_from_checkpoint and the name map of
// bert_tf1_names.h. It then checks that every weight landed where its name says (each kiln
// variable against the checkpoint's tensor, reshaped as mapped), that every checkpoint name but
// the Adam slots, global_step and the cls/* pre-training heads was taken, and that the kiln
// model computes what modeling.py computes (a reference written with kiln ops on the
// checkpoint's own tensors, in TF1's layout).
//
// Usage: kiln_example_bert_tf1_init [MODEL_DIR]
//   MODEL_DIR holds bert_config.json and bert_model.ckpt.{index,data-*} (default:
//   ../shared/fixtures/tf1_bert_tiny, the tiny test model of keras-bert). Exits 77 (skipped) when
//   they are absent, 1 when a check fails.
//
// modeling.py, in kiln layers (the kiln names are in bert_tf1_names.h):
//   embeddings = LayerNorm(word[ids] + token_type[type_ids] + position[0..S)), epsilon 1e-12; dropout
//   each layer: a = MultiHeadAttention(A heads of H/A)(x, x, mask)    (query/key/value/output dense)
//               h = LayerNorm(x + dropout(a));  f = Dense(H)(gelu(Dense(I)(h)))
//               out = LayerNorm(h + dropout(f))
//   pooled = Dense(H, tanh)(sequence_output[:, 0])
// modeling.py's gelu is the tanh approximation, so the intermediate Dense is linear and the call
// applies kiln::gelu(x, /*approximate=*/true). Its attention adds -10000 to masked scores; kiln's
// MultiHeadAttention masks them out: the same probabilities to float precision.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bert_tf1_names.h"
#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;

constexpr int kSkipped = 77;

// bert_config.json's sizes.
struct BertConfig {
  int64_t vocab_size = 0, hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0,
          intermediate_size = 0, max_position_embeddings = 0, type_vocab_size = 0;
  double hidden_dropout_prob = 0.1, attention_probs_dropout_prob = 0.1;
  std::string hidden_act = "gelu";

  static BertConfig from_json_file(const std::string &path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const kiln::Config j = kiln::Config::from_json(text.str());
    BertConfig c;
    c.vocab_size = j.get_int("vocab_size");
    c.hidden_size = j.get_int("hidden_size");
    c.num_hidden_layers = j.get_int("num_hidden_layers");
    c.num_attention_heads = j.get_int("num_attention_heads");
    c.intermediate_size = j.get_int("intermediate_size");
    c.max_position_embeddings = j.get_int("max_position_embeddings");
    c.type_vocab_size = j.get_int("type_vocab_size");
    if (j.has("hidden_dropout_prob")) c.hidden_dropout_prob = j.get_float("hidden_dropout_prob");
    if (j.has("attention_probs_dropout_prob"))
      c.attention_probs_dropout_prob = j.get_float("attention_probs_dropout_prob");
    if (j.has("hidden_act")) c.hidden_act = j.get_string("hidden_act");
    return c;
  }
};

kiln::Config named(const std::string &name) {
  kiln::Config c;
  c.set("name", name);
  return c;
}

kiln::Layer layer_norm(const std::string &name) {
  kiln::layers::LayerNormalizationOptions o;
  o.epsilon = 1e-12;  // modeling.py's layer_norm (tf.contrib.layers.layer_norm's default)
  o.name = name;
  return kiln::layers::LayerNormalization(o);
}

kiln::Layer dense(int64_t units, const std::string &name, const std::string &activation = "linear") {
  kiln::layers::DenseOptions o;
  o.activation = activation;
  o.kernel_initializer = "truncated_normal";
  o.name = name;
  return kiln::layers::Dense(units, o);
}

kiln::Layer embedding(int64_t rows, int64_t width, const std::string &name) {
  kiln::layers::EmbeddingOptions o;
  o.embeddings_initializer = "truncated_normal";
  o.name = name;
  return kiln::layers::Embedding(rows, width, o);
}

// modeling.py's get_activation.
Tensor activation(const std::string &name, const Tensor &x) {
  if (name == "gelu") return kiln::gelu(x, /*approximate=*/true);
  if (name == "relu") return kiln::relu(x);
  if (name == "tanh") return kiln::tanh(x);
  if (name == "linear") return x;
  throw std::runtime_error("hidden_act '" + name +
                           "' is not one of modeling.py's (gelu, relu, tanh, linear)");
}

// embedding_lookup + embedding_postprocessor: inputs {input_ids, token_type_ids}.
class BertEmbeddings : public kiln::Layer {
 public:
  explicit BertEmbeddings(const BertConfig &c) : Layer("BertEmbeddings", named("embeddings")) {
    word_ = track(embedding(c.vocab_size, c.hidden_size, "word_embeddings"));
    token_type_ = track(embedding(c.type_vocab_size, c.hidden_size, "token_type_embeddings"));
    position_ = track(embedding(c.max_position_embeddings, c.hidden_size, "position_embeddings"));
    norm_ = track(layer_norm("layer_norm"));
    drop_ = track(kiln::layers::Dropout(c.hidden_dropout_prob));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    const Tensor positions = kiln::range(0, static_cast<double>(in[0].shape()[1]), 1, kiln::DType::int32);
    const Tensor y = word_(in[0]) + token_type_(in[1]) + position_(positions);  // [S, H] broadcasts over B
    return {drop_(norm_(y), training)};
  }

 private:
  kiln::Layer word_, token_type_, position_, norm_, drop_;
};

// One transformer layer: inputs {x [B, S, H], attention mask [B, 1, S] (1 = attend)}.
class BertLayer : public kiln::Layer {
 public:
  BertLayer(const BertConfig &c, int64_t index)
      : Layer("BertLayer", named("layer_" + std::to_string(index))), act_(c.hidden_act) {
    kiln::layers::MultiHeadAttentionOptions mha;
    mha.dropout = c.attention_probs_dropout_prob;
    mha.kernel_initializer = "truncated_normal";
    mha.name = "attention";
    attention_ = track(
        kiln::layers::MultiHeadAttention(c.num_attention_heads, c.hidden_size / c.num_attention_heads, mha));
    attention_drop_ = track(kiln::layers::Dropout(c.hidden_dropout_prob));
    attention_norm_ = track(layer_norm("attention_layer_norm"));
    intermediate_ = track(dense(c.intermediate_size, "intermediate"));
    output_ = track(dense(c.hidden_size, "output"));
    output_drop_ = track(kiln::layers::Dropout(c.hidden_dropout_prob));
    output_norm_ = track(layer_norm("output_layer_norm"));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    const Tensor &x = in[0];
    kiln::layers::AttentionCall call;
    call.attention_mask = in[1];
    const Tensor a = attention_(kiln::layers::attention_inputs(x, x, call), training)[0];
    const Tensor h = attention_norm_(x + attention_drop_(a, training));
    const Tensor f = output_(activation(act_, intermediate_(h)));
    return {output_norm_(h + output_drop_(f, training))};
  }

 private:
  std::string act_;
  kiln::Layer attention_, attention_drop_, attention_norm_, intermediate_, output_, output_drop_,
      output_norm_;
};

// transformer_model: inputs {embeddings, attention mask}.
class BertEncoder : public kiln::Layer {
 public:
  explicit BertEncoder(const BertConfig &c) : Layer("BertEncoder", named("encoder")) {
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers_.push_back(track(BertLayer(c, i)));
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    Tensor h = in[0];
    for (BertLayer &l : layers_) h = l({h, in[1]}, training)[0];
    return {h};
  }

 private:
  std::vector<BertLayer> layers_;
};

// BertModel: inputs {input_ids, token_type_ids, input_mask} ([B, S] int32 each), outputs
// {sequence_output [B, S, H], pooled_output [B, H]}.
class BertModel : public kiln::Model {
 public:
  explicit BertModel(const BertConfig &c)
      : Model("BertModel", named("bert")),
        embeddings_(c),
        encoder_(c),
        pooler_(dense(c.hidden_size, "pooler", "tanh")) {
    track(embeddings_);
    track(encoder_);
    track(pooler_);
  }

 protected:
  std::vector<Tensor> call(const std::vector<Tensor> &in, bool training) override {
    const int64_t batch = in[0].shape()[0], seq = in[0].shape()[1];
    // create_attention_mask_from_input_mask: every query position sees the unmasked keys.
    const Tensor mask = kiln::reshape(kiln::cast(in[2], kiln::DType::float32), {batch, 1, seq});
    const Tensor seq_out = encoder_({embeddings_({in[0], in[1]}, training)[0], mask}, training)[0];
    const int64_t hidden = seq_out.shape()[2];
    const Tensor first = kiln::reshape(kiln::slice(seq_out, {0, 0, 0}, {batch, 1, hidden}), {batch, hidden});
    return {seq_out, pooler_(first)};
  }

 private:
  BertEmbeddings embeddings_;
  BertEncoder encoder_;
  kiln::Layer pooler_;
};

// ------------------------------------------------------------------ modeling.py, from the checkpoint

// The same computation written directly on the checkpoint's tensors, in TF1's layout ([H, H]
// attention kernels, heads split by reshape as transpose_for_scores does).
class Reference {
 public:
  Reference(const kiln::train::CheckpointReader &reader, const BertConfig &c) : r_(reader), c_(c) {}

  std::vector<Tensor> run(const Tensor &ids, const Tensor &types, const Tensor &input_mask) const {
    const int64_t b = ids.shape()[0], s = ids.shape()[1], h = c_.hidden_size;
    Tensor x = kiln::gather(w("bert/embeddings/word_embeddings"), ids) +
               kiln::gather(w("bert/embeddings/token_type_embeddings"), types) +
               kiln::slice(w("bert/embeddings/position_embeddings"), {0, 0}, {s, h});
    x = norm(x, "bert/embeddings/LayerNorm");
    // modeling.py's additive mask: (1 - mask) * -10000 on [B, 1, 1, S] scores.
    const Tensor adder =
        (1.0f - kiln::reshape(kiln::cast(input_mask, kiln::DType::float32), {b, 1, 1, s})) * -10000.0f;
    Tensor x2 = kiln::reshape(x, {b * s, h});
    for (int64_t i = 0; i < c_.num_hidden_layers; ++i) {
      const std::string p = "bert/encoder/layer_" + std::to_string(i) + "/";
      const Tensor q = heads(linear(x2, p + "attention/self/query"), b, s);
      const Tensor k = heads(linear(x2, p + "attention/self/key"), b, s);
      const Tensor v = heads(linear(x2, p + "attention/self/value"), b, s);
      const float scale = 1.0f / std::sqrt(static_cast<float>(h / c_.num_attention_heads));
      const Tensor probs = kiln::softmax(kiln::matmul(q, k, false, true) * scale + adder);
      const Tensor context = kiln::reshape(kiln::transpose(kiln::matmul(probs, v), {0, 2, 1, 3}), {b * s, h});
      const Tensor a =
          norm(linear(context, p + "attention/output/dense") + x2, p + "attention/output/LayerNorm");
      const Tensor f = linear(gelu_tanh(linear(a, p + "intermediate/dense")), p + "output/dense");
      x2 = norm(f + a, p + "output/LayerNorm");
    }
    const Tensor seq_out = kiln::reshape(x2, {b, s, h});
    const Tensor first = kiln::reshape(kiln::slice(seq_out, {0, 0, 0}, {b, 1, h}), {b, h});
    return {seq_out, kiln::tanh(linear(first, "bert/pooler/dense"))};
  }

 private:
  Tensor w(const std::string &name) const { return r_.get_tensor(name); }
  Tensor linear(const Tensor &x, const std::string &scope) const {
    return kiln::matmul(x, w(scope + "/kernel")) + w(scope + "/bias");
  }
  Tensor norm(const Tensor &x, const std::string &scope) const {
    const kiln::Moments m = kiln::moments(x, {-1}, true);
    return (x - m.mean) * kiln::rsqrt(m.variance + 1e-12f) * w(scope + "/gamma") + w(scope + "/beta");
  }
  // [B*S, H] -> [B, A, S, H/A].
  Tensor heads(const Tensor &x, int64_t b, int64_t s) const {
    const int64_t a = c_.num_attention_heads;
    return kiln::transpose(kiln::reshape(x, {b, s, a, c_.hidden_size / a}), {0, 2, 1, 3});
  }
  static Tensor gelu_tanh(const Tensor &x) {
    const float k = std::sqrt(2.0f / 3.14159265358979f);
    return 0.5f * x * (1.0f + kiln::tanh(k * (x + 0.044715f * x * x * x)));
  }

  const kiln::train::CheckpointReader &r_;
  BertConfig c_;
};

bool exists(const std::string &path) { return std::ifstream(path).good(); }

bool starts_with(const std::string &s, const std::string &head) {
  return s.compare(0, head.size(), head) == 0;
}
bool ends_with(const std::string &s, const std::string &tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

double max_abs_diff(const Tensor &a, const Tensor &b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = x.size() == y.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    m = std::max(m, static_cast<double>(std::fabs(x[i] - y[i])));
  return m;
}

int run(const std::string &dir) {
  const std::string config_path = dir + "/bert_config.json", ckpt = dir + "/bert_model.ckpt";
  if (!exists(config_path) || !exists(ckpt + ".index")) {
    std::printf("skipped: %s and %s.index not found (google-research/bert's model directory)\n",
                config_path.c_str(), ckpt.c_str());
    return kSkipped;
  }
  const BertConfig config = BertConfig::from_json_file(config_path);
  std::printf("BERT: %lld layers, hidden %lld, %lld heads, intermediate %lld, vocab %lld\n",
              static_cast<long long>(config.num_hidden_layers), static_cast<long long>(config.hidden_size),
              static_cast<long long>(config.num_attention_heads),
              static_cast<long long>(config.intermediate_size), static_cast<long long>(config.vocab_size));

  // A batch of two sequences of 6 tokens, the second padded after 4.
  const int64_t batch = 2, seq = 6;
  std::vector<int32_t> ids(batch * seq), types(batch * seq), mask(batch * seq);
  for (int64_t i = 0; i < batch * seq; ++i) {
    ids[i] = static_cast<int32_t>((7 * i + 3) % config.vocab_size);
    types[i] = i % seq >= seq / 2 ? 1 : 0;
    mask[i] = i >= seq + 4 ? 0 : 1;
  }
  const Tensor input_ids = Tensor::from_vector(ids, {batch, seq});
  const Tensor token_types = Tensor::from_vector(types, {batch, seq});
  const Tensor input_mask = Tensor::from_vector(mask, {batch, seq});

  BertModel model(config);
  model({input_ids, token_types, input_mask});  // builds every layer

  // The assignment map, and init_from_checkpoint. allow_reshape lets the [H, H] attention kernels
  // into MultiHeadAttention's [H, A, H/A] and [A, H/A, H] (see bert_tf1_names.h).
  const std::vector<bert_tf1::NamePair> names =
      bert_tf1::bert_tf1_name_map(model.name(), config.num_hidden_layers);
  std::vector<kiln::train::CheckpointAssignment> map;
  for (const auto &[tf1, kiln_name] : names) map.emplace_back(tf1, kiln_name);
  kiln::train::InitFromCheckpointOptions options;
  options.allow_reshape = true;
  const kiln::train::InitFromCheckpointReport report =
      kiln::train::init_from_checkpoint(ckpt, map, model, options);
  std::cout << report.summary;

  int failures = 0;
  auto check = [&](bool ok, const std::string &what) {
    if (!ok) {
      std::printf("FAILED: %s\n", what.c_str());
      ++failures;
    }
  };

  // Every weight where its name says: the kiln variable holds the checkpoint's tensor, in the same
  // row-major order (only the shape may differ, as mapped).
  const kiln::train::CheckpointReader reader(ckpt);
  std::map<std::string, kiln::Variable> variables;
  for (const kiln::Variable &v : model.variables()) variables.emplace(v.name(), v);
  check(variables.size() == names.size(), "the model has one variable per mapped name");
  for (const auto &[tf1, kiln_name] : names) {
    auto it = variables.find(kiln_name);
    if (it == variables.end()) {
      check(false, "no kiln variable " + kiln_name);
      continue;
    }
    const Tensor expected = reader.get_tensor(tf1), got = it->second.value();
    check(expected.to_vector<float>() == got.to_vector<float>(), kiln_name + " holds " + tf1);
  }
  std::printf("checked %zu weights against the checkpoint\n", names.size());

  // Every checkpoint name is matched, skipped (Adam slots, global_step) or a cls/* head.
  check(report.matched.size() == names.size(), "every mapped name matched");
  check(report.unmatched_variables.empty(), "every kiln variable got a value");
  check(report.missing.empty() && report.mismatched.empty(), "nothing missing or mismatched");
  for (const std::string &n : report.unmatched_checkpoint_names)
    check(starts_with(n, "cls/"), "unmatched " + n);
  for (const std::string &n : report.skipped_checkpoint_names)
    check(ends_with(n, "/adam_m") || ends_with(n, "/adam_v") || n == "global_step", "skipped " + n);
  const size_t total = reader.num_variables();
  check(report.matched.size() + report.unmatched_checkpoint_names.size() +
                report.skipped_checkpoint_names.size() ==
            total,
        "matched + unmatched + skipped = every checkpoint name");
  std::printf(
      "%zu checkpoint names: %zu matched, %zu cls/* heads left, %zu optimizer slots and counters skipped\n",
      total, report.matched.size(), report.unmatched_checkpoint_names.size(),
      report.skipped_checkpoint_names.size());

  // The kiln model computes modeling.py's function.
  const std::vector<Tensor> out = model({input_ids, token_types, input_mask});
  const std::vector<Tensor> ref = Reference(reader, config).run(input_ids, token_types, input_mask);
  const double d_seq = max_abs_diff(out[0], ref[0]), d_pool = max_abs_diff(out[1], ref[1]);
  std::printf("max |kiln - modeling.py|: sequence_output %.3g, pooled_output %.3g\n", d_seq, d_pool);
  check(d_seq < 1e-4 && d_pool < 1e-4, "the kiln model computes modeling.py's outputs");
  std::printf("pooled_output[0]:");
  for (float v : kiln::slice(out[1], {0, 0}, {1, config.hidden_size}).to_vector<float>())
    std::printf(" %.6f", v);
  std::printf("\n");

  std::printf(failures ? "%d checks FAILED\n" : "all checks passed\n", failures);
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc > 1 ? argv[1] : "../shared/fixtures/tf1_bert_tiny");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

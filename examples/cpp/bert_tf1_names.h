// TF1 checkpoint names of google-research/bert and google-research/albert (FORMATS.md §2.4), and
// the kiln variables of examples/cpp/bert_tf1_init.cc's encoder they go to: the assignment map
// for kiln::train::init_from_checkpoint. Plain C++ (no kiln header), so the unit test of the
// ALBERT map (tests/unit/test_init_from_checkpoint.cc) uses this very file.
//
// The kiln model, named <m>, is built from built-in layers whose names give these paths:
//
//   TF1 (BERT) name                           TF1 shape    kiln variable                      kiln shape
//   bert/embeddings/word_embeddings           [V, E]       <m>/embeddings/word_embeddings/embeddings
//   bert/embeddings/token_type_embeddings     [T, E]       <m>/embeddings/token_type_embeddings/...
//   bert/embeddings/position_embeddings       [P, E]       <m>/embeddings/position_embeddings/...
//   bert/embeddings/LayerNorm/{gamma,beta}    [E]          <m>/embeddings/layer_norm/{gamma,beta}
//   bert/encoder/layer_<i>/... (below: L)                  <m>/encoder/layer_<i>/... (below: K)
//   L attention/self/query/kernel             [H, H]       K attention/query/kernel           [H, A, H/A]
//   L attention/self/query/bias               [H]          K attention/query/bias             [A, H/A]
//   L attention/self/{key,value}/...                       K attention/{key,value}/...        (as query)
//   L attention/output/dense/kernel           [H, H]       K attention/attention_output/kernel [A, H/A, H]
//   L attention/output/dense/bias             [H]          K attention/attention_output/bias  [H]
//   L attention/output/LayerNorm/{gamma,beta} [H]          K attention_layer_norm/{gamma,beta}
//   L intermediate/dense/{kernel,bias}        [H, I], [I]  K intermediate/{kernel,bias}
//   L output/dense/{kernel,bias}              [I, H], [H]  K output/{kernel,bias}
//   L output/LayerNorm/{gamma,beta}           [H]          K output_layer_norm/{gamma,beta}
//   bert/pooler/dense/{kernel,bias}           [H, H], [H]  <m>/pooler/{kernel,bias}
//
// (H hidden_size, A num_attention_heads, I intermediate_size, E = H for BERT.) kiln's
// MultiHeadAttention is Keras's: its query/key/value projections are EinsumDense kernels
// [H, A, H/A] and its output projection [A, H/A, H]. TF1 BERT stores them as plain dense kernels
// [H, H] whose output columns (for query/key/value) or input rows (for the output dense) are the
// heads one after another, head a owning columns a*H/A .. (a+1)*H/A - 1 (modeling.py's
// transpose_for_scores reshapes [B*S, H] to [B, S, A, H/A]). So each is the same row-major bytes
// as kiln's shape: [H, H] -> [H, A, H/A] splits the last dim, [H, H] -> [A, H/A, H] the first,
// [H] -> [A, H/A] the only one. init_from_checkpoint does exactly that reshape when
// allow_reshape is on; nothing is transposed.
//
// ALBERT (factorised embeddings, cross-layer sharing): the embeddings are as above with E =
// embedding_size, then (only when E != H, as albert's modeling.py)
//   bert/encoder/embedding_hidden_mapping_in/{kernel,bias}  [E, H], [H]
//     -> <m>/encoder/embedding_hidden_mapping_in/{kernel,bias}
// and the layers' weights live once per group, G = bert/encoder/transformer/group_<g>/inner_group_0/:
//   G attention_1/self/{query,key,value}/{kernel,bias}   -> K attention/{query,key,value}/...
//   G attention_1/output/dense/{kernel,bias}             -> K attention/attention_output/...
//   G LayerNorm/{gamma,beta}        (after attention)    -> K attention_layer_norm/...
//   G ffn_1/intermediate/dense/{kernel,bias}             -> K intermediate/...
//   G ffn_1/intermediate/output/dense/{kernel,bias}      -> K output/...
//   G LayerNorm_1/{gamma,beta}      (after the FFN)      -> K output_layer_norm/...
// where layer i uses group g = i * num_hidden_groups / num_hidden_layers (ALBERT's
// int(i / num_hidden_layers * num_hidden_groups)); with the usual one group every kiln layer
// takes the same values. The kiln layers are separate objects, so fine-tuning unties them; a
// model that must stay tied calls one layer num_hidden_layers times and maps to it once.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bert_tf1 {

// (TF1 checkpoint name, kiln variable name).
using NamePair = std::pair<std::string, std::string>;

namespace detail {

// One encoder layer's weights: the path under the TF1 layer (BERT) or group (ALBERT) scope, and
// the path under kiln's layer scope.
struct LayerWeight {
  const char *bert, *albert, *kiln;
};

inline const std::vector<LayerWeight> &layer_weights() {
  static const std::vector<LayerWeight> w = {
      {"attention/self/query/kernel", "attention_1/self/query/kernel", "attention/query/kernel"},
      {"attention/self/query/bias", "attention_1/self/query/bias", "attention/query/bias"},
      {"attention/self/key/kernel", "attention_1/self/key/kernel", "attention/key/kernel"},
      {"attention/self/key/bias", "attention_1/self/key/bias", "attention/key/bias"},
      {"attention/self/value/kernel", "attention_1/self/value/kernel", "attention/value/kernel"},
      {"attention/self/value/bias", "attention_1/self/value/bias", "attention/value/bias"},
      {"attention/output/dense/kernel", "attention_1/output/dense/kernel",
       "attention/attention_output/kernel"},
      {"attention/output/dense/bias", "attention_1/output/dense/bias", "attention/attention_output/bias"},
      {"attention/output/LayerNorm/gamma", "LayerNorm/gamma", "attention_layer_norm/gamma"},
      {"attention/output/LayerNorm/beta", "LayerNorm/beta", "attention_layer_norm/beta"},
      {"intermediate/dense/kernel", "ffn_1/intermediate/dense/kernel", "intermediate/kernel"},
      {"intermediate/dense/bias", "ffn_1/intermediate/dense/bias", "intermediate/bias"},
      {"output/dense/kernel", "ffn_1/intermediate/output/dense/kernel", "output/kernel"},
      {"output/dense/bias", "ffn_1/intermediate/output/dense/bias", "output/bias"},
      {"output/LayerNorm/gamma", "LayerNorm_1/gamma", "output_layer_norm/gamma"},
      {"output/LayerNorm/beta", "LayerNorm_1/beta", "output_layer_norm/beta"},
  };
  return w;
}

inline void add_embeddings(std::vector<NamePair> &map, const std::string &model) {
  const std::string k = model + "/embeddings/";
  map.emplace_back("bert/embeddings/word_embeddings", k + "word_embeddings/embeddings");
  map.emplace_back("bert/embeddings/token_type_embeddings", k + "token_type_embeddings/embeddings");
  map.emplace_back("bert/embeddings/position_embeddings", k + "position_embeddings/embeddings");
  map.emplace_back("bert/embeddings/LayerNorm/gamma", k + "layer_norm/gamma");
  map.emplace_back("bert/embeddings/LayerNorm/beta", k + "layer_norm/beta");
}

inline void add_pooler(std::vector<NamePair> &map, const std::string &model) {
  map.emplace_back("bert/pooler/dense/kernel", model + "/pooler/kernel");
  map.emplace_back("bert/pooler/dense/bias", model + "/pooler/bias");
}

inline std::string kiln_layer_scope(const std::string &model, int64_t i) {
  return model + "/encoder/layer_" + std::to_string(i) + "/";
}

}  // namespace detail

// google-research/bert's names -> the kiln model `model` with num_hidden_layers layers, one pair
// per weight (39 for two layers). The cls/* pre-training heads are not part of the encoder.
inline std::vector<NamePair> bert_tf1_name_map(const std::string &model, int64_t num_hidden_layers) {
  std::vector<NamePair> map;
  detail::add_embeddings(map, model);
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    const std::string tf1 = "bert/encoder/layer_" + std::to_string(i) + "/";
    for (const detail::LayerWeight &w : detail::layer_weights())
      map.emplace_back(tf1 + w.bert, detail::kiln_layer_scope(model, i) + w.kiln);
  }
  detail::add_pooler(map, model);
  return map;
}

// The group ALBERT's layer `layer` uses.
inline int64_t albert_group_of_layer(int64_t layer, int64_t num_hidden_layers, int64_t num_hidden_groups) {
  return layer * num_hidden_groups / num_hidden_layers;
}

// google-research/albert's names -> the kiln model `model`: each group's weights go to every
// layer that uses the group, so a checkpoint name appears once per such layer. ALBERT has the
// embedding_hidden_mapping_in projection only when embedding_size != hidden_size
// (hidden_mapping). One inner group per group (inner_group_num 1, as every released ALBERT).
inline std::vector<NamePair> albert_tf1_name_map(const std::string &model, int64_t num_hidden_layers,
                                                 int64_t num_hidden_groups = 1, bool hidden_mapping = true) {
  std::vector<NamePair> map;
  detail::add_embeddings(map, model);
  if (hidden_mapping) {
    map.emplace_back("bert/encoder/embedding_hidden_mapping_in/kernel",
                     model + "/encoder/embedding_hidden_mapping_in/kernel");
    map.emplace_back("bert/encoder/embedding_hidden_mapping_in/bias",
                     model + "/encoder/embedding_hidden_mapping_in/bias");
  }
  for (int64_t i = 0; i < num_hidden_layers; ++i) {
    const int64_t g = albert_group_of_layer(i, num_hidden_layers, num_hidden_groups);
    const std::string tf1 = "bert/encoder/transformer/group_" + std::to_string(g) + "/inner_group_0/";
    for (const detail::LayerWeight &w : detail::layer_weights())
      map.emplace_back(tf1 + w.albert, detail::kiln_layer_scope(model, i) + w.kiln);
  }
  detail::add_pooler(map, model);
  return map;
}

}  // namespace bert_tf1

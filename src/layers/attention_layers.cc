// MultiHeadAttention (Keras 3 layers/attention/multi_head_attention.py) with its four
// EinsumDense-style projections as sub-layers, so the weights are named as Keras names them
// (multi_head_attention/query/kernel ...). The merge and reshaping layers live in
// merge_layers.cc and are registered from register_attention_layers() too.
//
// Call inputs, in Keras's positional order (the C ABI passes one list of tensors):
//   query [B, T, dim], value [B, S, dim], then optionally key [B, S, dim] (default: value) and
//   attention_mask (bool or numeric, nonzero = attend; [B, T, S] or broadcasting to it, fewer
//   axes (size-1 axes go in just before the positions, as Keras), or [B, heads, T, S] per head), then
//   optionally the call flags as scalar (rank-0) tensors: return_attention_scores, then
//   use_causal_mask. A mask without a key passes value again as the key (Keras's default).
// Outputs: the attention output [B, T, output_shape...] and, with return_attention_scores, the
// attention probabilities [B, num_heads, T, S] (before dropout, as Keras returns them).
// Higher ranks follow Keras's attention_axes: T and S stand for the dims at the attention axes
// (default: all between the batch and feature axes), and the other axes join the batch, so a
// mask is [batch dims, T dims, S dims] and the scores [batch dims, heads, T dims, S dims].
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/initializers.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

// Keras's _large_negative_number: what a masked score gets before the softmax.
constexpr double kMaskedScore = -1e9;

int64_t product(const std::vector<int64_t> &dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

// ------------------------------------------------------------------ EinsumDense projections

// What one projection contracts and produces: the kernel is [in..., out...] (in = the input's
// trailing `in_rank` dims), the bias [out...] (none when use_bias is false).
struct ProjectionSpec {
  std::vector<int64_t> in;
  std::vector<int64_t> out;
  bool use_bias = true;
  KernelBiasSettings w;  // the owner's initializers and regularizers
};

// Keras's EinsumDense as MultiHeadAttention uses it ("abc,cde->abde" for the query, key and
// value projections, "abcd,cde->abe" for the output), computed as one dense op between reshapes.
// Internal: it is created by its owner, not from a config, so it is not registered.
class EinsumProjection final : public Layer {
 public:
  EinsumProjection(const Config &base, ProjectionSpec spec)
      : EinsumProjection(base, ConfigReader(base, "EinsumDense"), std::move(spec)) {}

 private:
  EinsumProjection(const Config &, ConfigReader &&r, ProjectionSpec spec)
      : Layer("EinsumDense", r), spec_(std::move(spec)) {
    r.finish();
  }

  void build_impl(const std::vector<PartialShape> &) override {
    std::vector<int64_t> kernel_dims = spec_.in, input_axes, output_axes;
    kernel_dims.insert(kernel_dims.end(), spec_.out.begin(), spec_.out.end());
    // Keras 3.15's EinsumDense: a VarianceScaling initializer's fans along the kernel's input and
    // output axes (fan_in = prod(in), fan_out = prod(out)), not a convolution's.
    for (size_t i = 0; i < kernel_dims.size(); ++i)
      (i < spec_.in.size() ? input_axes : output_axes).push_back(static_cast<int64_t>(i));
    kernel_ =
        add_weight("kernel", Shape(kernel_dims), dtype(),
                   *with_fan_axes(spec_.w.kernel_init, input_axes, output_axes), true, spec_.w.kernel_reg);
    if (spec_.use_bias)
      bias_ = add_weight("bias", Shape(spec_.out), dtype(), *spec_.w.bias_init, true, spec_.w.bias_reg);
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = inputs.at(0);
    const int64_t lead = x.rank() - static_cast<int64_t>(spec_.in.size());
    std::vector<int64_t> out_dims(x.shape().data(), x.shape().data() + lead);
    out_dims.insert(out_dims.end(), spec_.out.begin(), spec_.out.end());
    const int64_t in_size = product(spec_.in), out_size = product(spec_.out);
    // One dense op: the matmul with the bias fused (the bits of matmul then add), and one
    // gradient rule that sums the bias gradient without a separate broadcasting add's.
    const Tensor y =
        ops::dense(ops::reshape(x, {-1, in_size}), ops::reshape(kernel_->read_for_op(), {in_size, out_size}),
                   bias_ ? ops::reshape(bias_->read_for_op(), {out_size}) : Tensor());
    return {ops::reshape(y, out_dims)};
  }

  ProjectionSpec spec_;
  VariablePtr kernel_, bias_;
};

// ------------------------------------------------------------------ MultiHeadAttention

// The call's inputs split by role (see the file comment). Rank-0 inputs are the flags.
template <typename T>
struct AttentionArgs {
  const T *query = nullptr, *value = nullptr, *key = nullptr, *mask = nullptr;
  const T *return_scores = nullptr, *causal = nullptr;
};

// A call flag: a scalar tensor, of dtype bool when bool_only (Attention's; MultiHeadAttention
// takes any dtype, nonzero true). A build sees only shapes: any scalar.
bool is_flag(const PartialShape &s, bool) { return s.empty(); }
bool is_flag(const Tensor &t, bool bool_only) {
  return t.rank() == 0 && (!bool_only || t.dtype() == DType::kBool);
}

// The inputs by role: 2 to max_tensors tensors (query, value, then key and for
// MultiHeadAttention attention_mask), then at most two flags. `expected` says what the layer takes.
template <typename T>
AttentionArgs<T> split_inputs(const Layer &l, const std::vector<T> &inputs, size_t max_tensors,
                              const char *expected, bool bool_flags) {
  size_t tensors = 0;
  while (tensors < inputs.size() && !is_flag(inputs[tensors], bool_flags)) ++tensors;
  bool flags_only = true;
  for (size_t i = tensors; i < inputs.size(); ++i) flags_only &= is_flag(inputs[i], bool_flags);
  if (tensors < 2 || tensors > max_tensors || inputs.size() - tensors > 2 || !flags_only)
    l.bad_input("got ", inputs.size(), " inputs; expected ", expected, ", then optionally the scalar",
                bool_flags ? " bool" : "", " flags return_attention_scores and use_causal_mask");
  AttentionArgs<T> a;
  a.query = &inputs[0];
  a.value = &inputs[1];
  a.key = tensors > 2 ? &inputs[2] : &inputs[1];
  if (tensors > 3) a.mask = &inputs[3];
  if (inputs.size() > tensors) a.return_scores = &inputs[tensors];
  if (inputs.size() > tensors + 1) a.causal = &inputs[tensors + 1];
  return a;
}

bool flag_value(const Tensor *t) {
  if (!t) return false;
  return ops::cast(*t, DType::kFloat32).data<float>()[0] != 0.0f;
}

// The positions query position i may attend to, bool [t, s]: with causal, key positions j <= i
// (Keras's causal mask); with a window w > 0, |i - j| < w (Keras's _compute_sliding_window_mask, a
// symmetric band); both ANDed.
Tensor position_mask(int64_t t, int64_t s, bool causal, int64_t window) {
  std::vector<uint8_t> allowed(static_cast<size_t>(t * s));
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < s; ++j)
      allowed[size_t(i * s + j)] = (!causal || j <= i) && (window <= 0 || std::llabs(i - j) < window);
  return Tensor::from_data(DType::kBool, Shape{t, s}, allowed.data(), allowed.size());
}

constexpr const char *kMhaInputs = "query and value, optionally key and attention_mask";

// keras.layers.MultiHeadAttention, and keras.layers.GroupedQueryAttention(head_dim, num_query_heads,
// num_key_value_heads, ...) as its special case: rank-3 inputs, key_dim = value_dim = head_dim, and
// key and value projected to num_key_value_heads heads, each repeated for num_query_heads /
// num_key_value_heads query heads in turn (Keras's ops.repeat on the heads axis). Both take Keras 3's
// use_gate (the attention output times sigmoid of a "gate" projection of the query, before the output
// projection) and sliding_window (key positions within sliding_window - 1 of the query's).
class MultiHeadAttention final : public Layer {
 public:
  explicit MultiHeadAttention(const Config &config)
      : MultiHeadAttention(config, ConfigReader(config, "MultiHeadAttention"), false) {}
  struct Grouped {};
  MultiHeadAttention(const Config &config, Grouped)
      : MultiHeadAttention(config, ConfigReader(config, "GroupedQueryAttention"), true) {}

 private:
  MultiHeadAttention(const Config &config, ConfigReader &&r, bool grouped)
      : Layer(grouped ? "GroupedQueryAttention" : "MultiHeadAttention", r), grouped_(grouped) {
    if (grouped) {
      key_dim_ = value_dim_ = r.get_int("head_dim");
      num_heads_ = r.get_int("num_query_heads");
      kv_heads_ = r.get_int("num_key_value_heads");
      if (num_heads_ <= 0 || kv_heads_ <= 0 || key_dim_ <= 0)
        fail(Code::kInvalidArgument, r.owner(),
             ": head_dim, num_query_heads and num_key_value_heads must be positive; got ", key_dim_, ", ",
             num_heads_, " and ", kv_heads_);
      if (num_heads_ % kv_heads_ != 0)
        fail(Code::kInvalidArgument, r.owner(), ": num_query_heads (", num_heads_,
             ") must be divisible by num_key_value_heads (", kv_heads_, ")");
    } else {
      num_heads_ = kv_heads_ = r.get_int("num_heads");
      key_dim_ = r.get_int("key_dim");
      value_dim_ = r.get_int("value_dim", key_dim_);
      if (num_heads_ <= 0 || key_dim_ <= 0 || value_dim_ <= 0)
        fail(Code::kInvalidArgument, r.owner(), ": num_heads, key_dim and value_dim must be positive; got ",
             num_heads_, ", ", key_dim_, " and ", value_dim_);
    }
    dropout_ = r.get_float("dropout", 0.0);
    if (!(dropout_ >= 0 && dropout_ < 1))
      fail(Code::kInvalidArgument, r.owner(), ": dropout must be in [0, 1); got ", dropout_);
    use_bias_ = r.get_bool("use_bias", true);
    if (!grouped) {
      output_shape_is_int_ = r.has("output_shape") && config.type("output_shape") == Config::Type::kInt;
      output_shape_ = r.get_optional_int_list("output_shape");
      if (output_shape_)
        for (int64_t d : *output_shape_)
          if (d <= 0) fail(Code::kInvalidArgument, r.owner(), ": output_shape entries must be positive");
      attention_axes_ = r.get_optional_int_list("attention_axes");
    }
    w_ = KernelBiasSettings::read(config, r);
    if (r.get_bool("flash_attention", false))
      fail(Code::kUnimplemented, r.owner(), ": flash_attention is not supported");
    seed_ = read_seed(r);
    use_gate_ = r.get_bool("use_gate", false);
    if (r.has("sliding_window")) {
      sliding_window_ = r.get_int("sliding_window");
      if (sliding_window_ <= 0)
        fail(Code::kInvalidArgument, r.owner(), ": sliding_window must be null or a positive int; got ",
             sliding_window_);
    }
    r.finish();
    set_supports_masking(true);
  }

  // Keras: the output has the query's positions, so it keeps the query's mask; the scores get none.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    if (masks.empty()) return {};
    return {masks[0]};
  }

  // The last dim of a query, value or key of the rank the layer was built for.
  int64_t feature_dim(const PartialShape &s, const char *which) const {
    if (static_cast<int64_t>(s.size()) != rank_)
      bad_input(std::string(which) + " has shape " + partial_shape_string(s) + "; expected rank " +
                std::to_string(rank_) + " (batch, positions..., features), as the query");
    if (s.back() < 0)
      bad_input(std::string(which) + " needs a known last dimension; got " + partial_shape_string(s));
    return s.back();
  }

  std::shared_ptr<EinsumProjection> projection(const char *sub_name, std::vector<int64_t> in,
                                               std::vector<int64_t> out) {
    Config base;
    base.set("name", sub_name).set("trainable", trainable());
    set_policy_config(base, "dtype", dtype_policy());
    ProjectionSpec spec{std::move(in), std::move(out), use_bias_, w_};
    auto p = std::make_shared<EinsumProjection>(base, std::move(spec));
    track(p);  // before it builds, so its weights are named under this layer
    return p;
  }

  // Keras's attention axes for a rank-r query: the given ones (negative from the end), or every
  // axis between the batch axis and the feature axis; the others but the last are batch axes.
  void set_axes(int64_t r) {
    if (grouped_ && r != 3)
      bad_input("query has rank " + std::to_string(r) + "; expected rank 3 (batch, positions, features)");
    if (r < 3)
      bad_input("query has rank " + std::to_string(r) +
                "; expected rank >= 3 (batch, positions..., features)");
    rank_ = r;
    attn_axes_.clear();
    batch_axes_.clear();
    if (attention_axes_) {
      for (int64_t ax : *attention_axes_) {
        const int64_t k = ax < 0 ? ax + r : ax;
        if (k < 1 || k > r - 2 || std::find(attn_axes_.begin(), attn_axes_.end(), k) != attn_axes_.end())
          bad_input("attention_axes " + partial_shape_string(*attention_axes_) +
                    " must name distinct axes between the batch axis and the feature axis of a rank-" +
                    std::to_string(r) + " query");
        attn_axes_.push_back(k);
      }
      std::sort(attn_axes_.begin(), attn_axes_.end());
    } else {
      for (int64_t k = 1; k <= r - 2; ++k) attn_axes_.push_back(k);
    }
    for (int64_t k = 0; k <= r - 2; ++k)
      if (std::find(attn_axes_.begin(), attn_axes_.end(), k) == attn_axes_.end()) batch_axes_.push_back(k);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const AttentionArgs<PartialShape> a = split_inputs(*this, shapes, 4, kMhaInputs, false);
    set_axes(static_cast<int64_t>(a.query->size()));
    query_dim_ = feature_dim(*a.query, "query");
    value_dim_in_ = feature_dim(*a.value, "value");
    key_dim_in_ = feature_dim(*a.key, "key");
    const std::vector<int64_t> out = output_shape_ ? *output_shape_ : std::vector<int64_t>{query_dim_};
    query_ = projection("query", {query_dim_}, {num_heads_, key_dim_});
    key_ = projection("key", {key_dim_in_}, {kv_heads_, key_dim_});
    if (use_gate_) gate_ = projection("gate", {query_dim_}, {num_heads_, value_dim_});  // Keras's order
    value_ = projection("value", {value_dim_in_}, {kv_heads_, value_dim_});
    output_ = projection("attention_output", {num_heads_, value_dim_}, out);
    query_->build({*a.query});
    key_->build({*a.key});
    if (gate_) gate_->build({*a.query});
    value_->build({*a.value});
    PartialShape heads(a.query->begin(), a.query->end() - 1);
    heads.push_back(num_heads_);
    heads.push_back(value_dim_);
    output_->build({heads});
  }

  // An input's dims at the batch axes or at the attention axes.
  static std::vector<int64_t> dims_at(const Shape &s, const std::vector<int64_t> &axes) {
    std::vector<int64_t> d;
    for (int64_t k : axes) d.push_back(s[static_cast<int>(k)]);
    return d;
  }

  // A projection [axes 0..r-2, heads, d] as [batch, heads, positions, d]: batch axes flattened
  // first, attention axes flattened into the positions.
  Tensor per_head(const Tensor &p) const {
    std::vector<int64_t> perm = batch_axes_;
    perm.push_back(rank_ - 1);
    perm.insert(perm.end(), attn_axes_.begin(), attn_axes_.end());
    perm.push_back(rank_);
    const Shape &s = p.shape();
    // Every dim spelt out (no -1), so that an empty batch reshapes too.
    const Tensor h =
        ops::reshape(ops::transpose(p, perm), {product(dims_at(s, batch_axes_)), s[int(rank_) - 1],
                                               product(dims_at(s, attn_axes_)), s[int(rank_)]});
    if (s[int(rank_) - 1] == num_heads_) return h;
    // GroupedQueryAttention's key and value heads, each repeated for its group of query heads:
    // [b, kv, 1, n, d] broadcast to [b, kv, group, n, d], read as [b, heads, n, d].
    const Shape &hs = h.shape();
    const Shape grouped({hs[0], kv_heads_, num_heads_ / kv_heads_, hs[2], hs[3]});
    return ops::reshape(ops::broadcast_to(ops::expand_dims(h, 2), grouped),
                        {hs[0], num_heads_, hs[2], hs[3]});
  }

  // The combined mask as 0/1 values of the scores' dtype, shaped [batch, 1, T, S] or [1, 1, T, S]
  // (T, S: the flattened query and key positions); undefined when nothing is masked.
  // The padding masks of the inputs (Keras's query_mask, value_mask, key_mask), each shaped as
  // its input without the feature axis; nullptr where absent.
  struct PaddingMasks {
    const Tensor *query = nullptr, *value = nullptr, *key = nullptr;
  };

  // A padding mask [batch dims, positions] as 0/1 values of dt, shaped [batch, 1, T, 1] for the
  // query or [batch, 1, 1, S] for the value and key (Keras's expand_dims(-1) and (-2)).
  Tensor padding_mask(const Tensor &mask, const char *which, bool query, int64_t nb, DType dt) const {
    if (mask.rank() != rank_ - 1)
      bad_input(std::string(which) + " mask has shape " + mask.shape().to_string() + "; expected rank " +
                std::to_string(rank_ - 1) + " (the " + which + "'s shape without its feature axis)");
    std::vector<int64_t> perm = batch_axes_;
    perm.insert(perm.end(), attn_axes_.begin(), attn_axes_.end());
    const Tensor m = ops::transpose(ops::cast(mask, dt), perm);
    return query ? ops::reshape(m, {nb, 1, -1, 1}) : ops::reshape(m, {nb, 1, 1, -1});
  }

  // Keras's _compute_attention_mask: the padding masks, the explicit attention_mask and the
  // causal mask AND'ed, as 0/1 values of the scores' dtype broadcasting to [batch, 1, T, S] (T,
  // S: the flattened query and key positions); undefined when nothing is masked.
  Tensor combined_mask(const Tensor *mask, const PaddingMasks &padding, bool causal,
                       const std::vector<int64_t> &batch, const std::vector<int64_t> &target,
                       const std::vector<int64_t> &source, DType dt) const {
    const int64_t nb = product(batch), t = product(target), s = product(source);
    Tensor m;
    auto and_in = [&m](const Tensor &x) { m = m.defined() ? ops::mul(m, x) : x; };
    if (padding.query) and_in(padding_mask(*padding.query, "query", true, nb, dt));
    if (padding.value) and_in(padding_mask(*padding.value, "value", false, nb, dt));
    if (padding.key) and_in(padding_mask(*padding.key, "key", false, nb, dt));
    if (mask) {
      // Keras's _masked_softmax: size-1 axes go in just before the positions until the mask has
      // the scores' rank [batch..., heads, T..., S...], so [T, S] and [B, T, S] apply to every head
      // and [B, heads, T, S] masks each head apart.
      std::vector<int64_t> want = batch;
      want.insert(want.end(), target.begin(), target.end());
      want.insert(want.end(), source.begin(), source.end());
      std::vector<int64_t> md = mask->shape().to_vector();
      int64_t heads = 1;
      const size_t positions = target.size() + source.size();
      bool ok = md.size() >= positions && md.size() <= want.size() + 1;
      if (ok && md.size() == want.size() + 1) {
        heads = md[batch.size()];
        ok = heads == 1 || heads == num_heads_;
        md.erase(md.begin() + static_cast<std::ptrdiff_t>(batch.size()));
      } else if (ok) {  // Keras's expand_dims at -(2 * attention axes) - 1: just before the positions
        md.insert(md.end() - static_cast<std::ptrdiff_t>(positions), want.size() - md.size(), int64_t{1});
      }
      for (size_t i = 0; ok && i < want.size(); ++i) ok = md[i] == want[i] || md[i] == 1;
      if (!ok)
        bad_input("attention_mask has shape " + mask->shape().to_string() + "; expected " +
                  partial_shape_string(want) +
                  " (batch, query positions, key positions), the same with the heads axis after the "
                  "batch, or fewer leading axes and dims of 1 that broadcast to it");
      Tensor given = *mask;
      if (given.dtype() != DType::kBool) given = ops::not_equal(given, ops::zeros(Shape({}), given.dtype()));
      std::vector<int64_t> from = md, to = want;
      from.insert(from.begin() + static_cast<std::ptrdiff_t>(batch.size()), heads);
      to.insert(to.begin() + static_cast<std::ptrdiff_t>(batch.size()), heads);
      const Tensor full = ops::broadcast_to(ops::reshape(ops::cast(given, dt), from), Shape(to));
      and_in(ops::reshape(full, {nb, heads, t, s}));
    }
    if (causal || sliding_window_ > 0) {
      if (attn_axes_.size() != 1)
        fail_layer(Code::kUnimplemented, "use_causal_mask and sliding_window need one attention axis");
      and_in(ops::reshape(ops::cast(position_mask(t, s, causal, sliding_window_), dt), {1, 1, t, s}));
    }
    return m;
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const AttentionArgs<Tensor> a = split_inputs(*this, inputs, 4, kMhaInputs, false);
    const Tensor &q_in = *a.query, &v_in = *a.value, &k_in = *a.key;
    const int64_t dims[3] = {feature_dim(partial_shape_of(q_in.shape()), "query"),
                             feature_dim(partial_shape_of(v_in.shape()), "value"),
                             feature_dim(partial_shape_of(k_in.shape()), "key")};
    const int64_t built[3] = {query_dim_, value_dim_in_, key_dim_in_};
    const char *which[3] = {"query", "value", "key"};
    for (int i = 0; i < 3; ++i)
      if (dims[i] != built[i])
        bad_input(std::string(which[i]) + " has last dimension " + std::to_string(dims[i]) +
                  "; the layer was built for " + std::to_string(built[i]));
    const std::vector<int64_t> batch = dims_at(q_in.shape(), batch_axes_),
                               target = dims_at(q_in.shape(), attn_axes_),
                               source = dims_at(v_in.shape(), attn_axes_);
    const std::vector<int64_t> v_batch = dims_at(v_in.shape(), batch_axes_),
                               k_batch = dims_at(k_in.shape(), batch_axes_);
    if (v_batch != batch || k_batch != batch)
      bad_input("query, value and key have batch sizes " + partial_shape_string(batch) + ", " +
                partial_shape_string(v_batch) + " and " + partial_shape_string(k_batch) +
                "; expected the same");
    const std::vector<int64_t> k_source = dims_at(k_in.shape(), attn_axes_);
    if (k_source != source)
      bad_input("key has positions " + partial_shape_string(k_source) + " and value " +
                partial_shape_string(source) + "; expected the same");

    CallContext inner;  // the projections have no dropout; training does not reach them
    Tensor q = per_head((*query_)({q_in}, inner)[0]);  // [batch, heads, T, key_dim]
    Tensor k = per_head((*key_)({k_in}, inner)[0]);    // [batch, heads, S, key_dim]
    Tensor v = per_head((*value_)({v_in}, inner)[0]);  // [batch, heads, S, value_dim]
    const DType dt = q.dtype();
    q = ops::mul(q, ops::fill(Shape({}), 1.0 / std::sqrt(static_cast<double>(key_dim_)), dt));
    Tensor scores = ops::matmul(q, k, false, true);  // [batch, heads, T, S]

    PaddingMasks padding;
    padding.query = input_mask(ctx, 0);
    padding.value = input_mask(ctx, 1);
    if (a.key != a.value) padding.key = input_mask(ctx, 2);  // Keras: no key given, no key mask
    const Tensor m = combined_mask(a.mask, padding, flag_value(a.causal), batch, target, source, dt);
    if (m.defined()) {
      // (1 - m) * large negative, then the softmax, then * m so that a fully masked row is zero.
      const Tensor adder =
          ops::mul(ops::sub(ops::ones(Shape({}), dt), m), ops::fill(Shape({}), kMaskedScore, dt));
      scores = ops::add(scores, adder);
    }
    Tensor probs = ops::softmax(scores, -1);
    if (m.defined()) probs = ops::mul(probs, m);
    Tensor dropped = probs;
    if (ctx.training && dropout_ > 0)
      dropped = ops::dropout(probs, static_cast<float>(dropout_), true, seed_);

    // Back to the query's layout: [batch dims, heads, target dims, value_dim], then the query's
    // axis order with heads and value_dim last.
    std::vector<int64_t> grouped = batch;
    grouped.push_back(num_heads_);
    grouped.insert(grouped.end(), target.begin(), target.end());
    grouped.push_back(value_dim_);
    std::vector<int64_t> back(static_cast<size_t>(rank_ - 1));
    const int64_t nb = static_cast<int64_t>(batch_axes_.size());
    for (int64_t i = 0; i < nb; ++i) back[size_t(batch_axes_[size_t(i)])] = i;
    for (size_t j = 0; j < attn_axes_.size(); ++j)
      back[size_t(attn_axes_[j])] = nb + 1 + static_cast<int64_t>(j);
    back.push_back(nb);
    back.push_back(rank_);
    Tensor context = ops::transpose(ops::reshape(ops::matmul(dropped, v), grouped), back);
    if (gate_) context = ops::mul(context, ops::sigmoid((*gate_)({q_in}, inner)[0]));
    Tensor out = (*output_)({context}, inner)[0];
    if (w_.activity_reg) add_loss(activity_loss(*w_.activity_reg, out));
    if (!flag_value(a.return_scores)) return {out};
    // Keras's score layout: [batch dims, heads, target dims, source dims].
    std::vector<int64_t> score_dims = batch;
    score_dims.push_back(num_heads_);
    score_dims.insert(score_dims.end(), target.begin(), target.end());
    score_dims.insert(score_dims.end(), source.begin(), source.end());
    const Tensor shown = ops::reshape(probs, score_dims);
    if (w_.activity_reg) add_loss(activity_loss(*w_.activity_reg, shown));  // Keras: every output
    return {out, shown};
  }

  void set_sliding_window(Config &c) const {
    if (sliding_window_ > 0)
      c.set("sliding_window", sliding_window_);
    else
      c.set_null("sliding_window");
  }

  // Keras's get_config, key order kept.
  void add_config(Config &c) const override {
    if (grouped_) {
      c.set("head_dim", key_dim_).set("num_query_heads", num_heads_).set("num_key_value_heads", kv_heads_);
      c.set("use_bias", use_bias_).set("use_gate", use_gate_);
      set_sliding_window(c);
      c.set("dropout", dropout_);
    } else {
      c.set("num_heads", num_heads_).set("key_dim", key_dim_).set("value_dim", value_dim_);
      c.set("dropout", dropout_).set("use_bias", use_bias_).set("use_gate", use_gate_);
      if (!output_shape_)
        c.set_null("output_shape");
      else if (output_shape_is_int_)
        c.set("output_shape", (*output_shape_)[0]);
      else
        c.set("output_shape", *output_shape_);
      c.set("attention_axes", attention_axes_);
      set_sliding_window(c);
    }
    w_.write(c);
    write_seed(c, seed_);
  }

  const bool grouped_;  // GroupedQueryAttention
  int64_t num_heads_, key_dim_, value_dim_;
  int64_t kv_heads_;  // the key and value projections' heads: num_heads_ but in GroupedQueryAttention
  double dropout_;
  bool use_bias_, use_gate_ = false;
  int64_t sliding_window_ = 0;  // 0: none
  std::optional<std::vector<int64_t>> output_shape_, attention_axes_;
  bool output_shape_is_int_ = false;
  KernelBiasSettings w_;
  int64_t seed_;
  int64_t query_dim_ = -1, value_dim_in_ = -1, key_dim_in_ = -1;
  int64_t rank_ = 0;                             // the query's rank, set by build
  std::vector<int64_t> attn_axes_, batch_axes_;  // sorted; batch_axes_ excludes the feature axis
  std::shared_ptr<EinsumProjection> query_, key_, value_, output_, gate_;  // gate_: with use_gate
};

// ------------------------------------------------------------------ Attention, AdditiveAttention

// Keras 3's Attention (Luong: dot-product or "concat" scores, layers/attention/attention.py) and
// AdditiveAttention (Bahdanau: sum(scale * tanh(q + k)), additive_attention.py), one class.
// Inputs: query [..., Tq, dim], value [..., Tv, dim], optionally key [..., Tv, dim] (default:
// value), then optionally the scalar flags return_attention_scores and use_causal_mask (as
// MultiHeadAttention's). The query's mask zeroes the output's masked rows; the value's mask keeps
// its positions out of the softmax (their scores less 1e9, as Keras). Outputs: [..., Tq, dim of
// value], and with return_attention_scores the weights [..., Tq, Tv] (after dropout, as Keras's).
class DotAttention final : public Layer {
 public:
  DotAttention(const char *class_name, const Config &config)
      : DotAttention(class_name, ConfigReader(config, class_name)) {}

 private:
  DotAttention(const char *class_name, ConfigReader &&r)
      : Layer(class_name, r), additive_(std::string(class_name) == "AdditiveAttention") {
    use_scale_ = r.get_bool("use_scale", additive_);
    // Keras checks score_mode in Attention's constructor, which AdditiveAttention's passes it to
    // (and then scores its own way; its config leaves the key out).
    if (r.config().has("score_mode") && r.config().is_null("score_mode"))
      fail(Code::kInvalidArgument, class_name, ": score_mode is null; expected 'dot' or 'concat'");
    score_mode_ = r.get_string("score_mode", "dot");
    if (score_mode_ != "dot" && score_mode_ != "concat")
      fail(Code::kInvalidArgument, class_name, ": score_mode is '", score_mode_,
           "'; expected 'dot' or 'concat'");
    dropout_ = r.get_float("dropout", 0.0);
    if (!(dropout_ >= 0 && dropout_ < 1))
      fail(Code::kInvalidArgument, class_name, ": dropout is ", dropout_, "; expected a rate in [0, 1)");
    seed_ = read_seed(r);
    r.finish();
    set_supports_masking(true);
  }

  template <typename T>
  AttentionArgs<T> split(const std::vector<T> &inputs) const {
    return split_inputs(*this, inputs, 3, "[query, value] or [query, value, key]", true);
  }

  void build_impl(const std::vector<PartialShape> &shapes) override {
    const AttentionArgs<PartialShape> a = split(shapes);
    for (const PartialShape *s : {a.query, a.value, a.key})
      if (s->size() < 2)
        bad_input("an input has shape " + partial_shape_string(*s) + "; expected (batch, steps, dim)");
    if (use_scale_) {
      if (additive_) {
        const int64_t dim = a.query->back();
        if (dim < 0)
          bad_input("the query needs a known last dimension; got " + partial_shape_string(*a.query));
        scale_ = add_weight("scale", Shape{dim}, dtype(), *get_initializer("glorot_uniform"), true);
      } else {
        scale_ = add_weight("scale", Shape{}, dtype(), *get_initializer("ones"), true);
      }
    }
    if (!additive_ && score_mode_ == "concat")
      concat_weight_ = add_weight("concat_score_weight", Shape{}, dtype(), *get_initializer("ones"), true);
  }

  // Keras's _calculate_scores: [..., Tq, Tv].
  Tensor scores(const Tensor &q, const Tensor &k) const {
    if (!additive_ && score_mode_ == "dot") {  // (AdditiveAttention ignores score_mode, as Keras's)
      Tensor s = ops::matmul(q, k, false, true);
      return scale_ ? ops::mul(s, scale_->read_for_op()) : s;
    }
    // q [..., Tq, 1, dim] + k [..., 1, Tv, dim]
    Tensor sum = ops::add(ops::expand_dims(q, -2), ops::expand_dims(k, -3));
    if (additive_) {
      Tensor t = ops::tanh(sum);
      return ops::sum(scale_ ? ops::mul(scale_->read_for_op(), t) : t, {-1});
    }
    if (scale_) sum = ops::mul(scale_->read_for_op(), sum);
    return ops::mul(concat_weight_->read_for_op(), ops::sum(ops::tanh(sum), {-1}));
  }

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const AttentionArgs<Tensor> a = split(inputs);
    const Tensor &q = *a.query, &v = *a.value, &k = *a.key;
    if (q.rank() < 2 || v.rank() != q.rank() || k.rank() != q.rank())
      bad_input("query " + q.shape().to_string() + ", value " + v.shape().to_string() + " and key " +
                    k.shape().to_string() + " need one rank, at least 2: (batch, steps, dim)",
                k.rank() == 0 ? " (the call flags are scalar bool tensors)" : "");
    const int r = q.rank();
    if (k.shape()[r - 1] != q.shape()[r - 1] || k.shape()[r - 2] != v.shape()[r - 2])
      bad_input("query " + q.shape().to_string() + ", value " + v.shape().to_string() + " and key " +
                k.shape().to_string() + " do not fit: the key needs the query's dim and the value's steps");
    Tensor s = scores(q, k);
    const int64_t tq = q.shape()[r - 2], tv = k.shape()[r - 2];
    // Keras's _calculate_score_mask: the value's mask [..., Tv] as [..., 1, Tv], AND the causal mask.
    Tensor keep;
    if (const Tensor *vm = input_mask(ctx, 1)) {
      if (vm->rank() != r - 1)
        bad_input("the value's mask has shape " + vm->shape().to_string() + "; expected the value's shape " +
                  "without its last axis");
      keep = ops::expand_dims(ops::cast(*vm, DType::kBool), -2);
    }
    if (flag_value(a.causal)) {
      const Tensor causal = position_mask(tq, tv, true, 0);
      keep = keep.defined() ? ops::logical_and(keep, causal) : causal;
    }
    if (keep.defined())  // Keras: where(padding, scores - 1e9, scores)
      s = ops::where(keep, s, ops::sub(s, ops::fill(Shape{}, 1e9, s.dtype())));
    Tensor weights = ops::softmax(s, -1);
    if (ctx.training && dropout_ > 0)
      weights = ops::dropout(weights, static_cast<float>(dropout_), true, seed_);
    Tensor out = ops::matmul(weights, v);
    if (const Tensor *qm = input_mask(ctx, 0)) {
      if (qm->rank() != r - 1)
        bad_input("the query's mask has shape " + qm->shape().to_string() + "; expected the query's shape " +
                  "without its last axis");
      out = ops::where(ops::expand_dims(ops::cast(*qm, DType::kBool), -1), out,
                       ops::zeros(Shape{}, out.dtype()));
    }
    if (flag_value(a.return_scores)) return {out, weights};
    return {out};
  }

  // Keras: the output keeps the query's mask; the scores get none.
  std::vector<Tensor> compute_mask(const std::vector<Tensor> &, const std::vector<Tensor> &masks) override {
    if (masks.empty()) return {};
    return {masks[0]};
  }

  // Keras's formula, (*query[:-1], value[-1]), without running the layer; flag shapes (scalars)
  // may follow the inputs. A shape says nothing of a flag's value: the scores, [..., Tq, Tv] when a
  // call asks for them, are not listed.
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    build(shapes);
    const AttentionArgs<PartialShape> a = split(shapes);
    PartialShape out(a.query->begin(), a.query->end() - 1);
    out.push_back(a.value->back());
    return {out};
  }

  void add_config(Config &c) const override {
    c.set("use_scale", use_scale_);
    if (!additive_) c.set("score_mode", score_mode_);
    c.set("dropout", dropout_);
    write_seed(c, seed_);
  }

  bool additive_, use_scale_ = false;
  std::string score_mode_;
  double dropout_ = 0;
  int64_t seed_ = -1;
  VariablePtr scale_, concat_weight_;
};

}  // namespace

void register_attention_layers() {
  register_class<MultiHeadAttention>("MultiHeadAttention");
  // Keras 3 exports the class under a second name, GroupQueryAttention; configs name the class.
  for (const char *name : {"GroupedQueryAttention", "GroupQueryAttention"})
    add_layer_factory(name, [](const Config &c) -> LayerPtr {
      return std::make_shared<MultiHeadAttention>(c, MultiHeadAttention::Grouped{});
    });
  for (const char *name : {"Attention", "AdditiveAttention"})
    add_layer_factory(
        name, [name](const Config &c) -> LayerPtr { return std::make_shared<DotAttention>(name, c); });
  register_merge_layers();
}

}  // namespace kiln::layers

// einsum for one or two operands, lowered to sum, broadcast_to, transpose, reshape and a batched
// matmul, so it is as fast as matmul and takes its gradient (and higher orders) from those ops.
#include <algorithm>
#include <cctype>
#include <map>
#include <string>

#include "ops/op_util.h"
#include "ops/ops.h"

namespace kiln::ops {

namespace {

// A label is a letter's character code; the dims an ellipsis stands for get labels 0..7 (the
// broadcast dims, right-aligned across operands), below every letter.
using Labels = std::vector<int>;

[[noreturn]] void bad(const std::string &eq, const std::string &what) {
  fail(Code::kInvalidArgument, "einsum: equation '", eq, "' ", what);
}

// One term ("bij", "...ij"): its letters, and where the ellipsis sits (-1: none).
struct Term {
  std::string letters;
  int ellipsis_at = -1;
};

Term parse_term(const std::string &eq, const std::string &t) {
  Term term;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, 3, "...") == 0) {
      if (term.ellipsis_at >= 0) bad(eq, "has more than one ellipsis in a term; expected at most one");
      term.ellipsis_at = static_cast<int>(term.letters.size());
      i += 2;
    } else if (std::isalpha(static_cast<unsigned char>(t[i]))) {
      term.letters += t[i];
    } else {
      bad(eq, str_cat("has '", t[i], "' in a term; expected letters, '...', ',' and '->'"));
    }
  }
  return term;
}

Labels expand(const Term &t, int ell_rank, int ell_total) {
  Labels l;
  for (size_t i = 0; i <= t.letters.size(); ++i) {
    if (static_cast<int>(i) == t.ellipsis_at)
      for (int e = ell_total - ell_rank; e < ell_total; ++e) l.push_back(e);
    if (i < t.letters.size()) l.push_back(static_cast<unsigned char>(t.letters[i]));
  }
  return l;
}

bool has(const Labels &l, int label) { return std::find(l.begin(), l.end(), label) != l.end(); }

std::vector<int64_t> positions(const Labels &from, const Labels &wanted) {
  std::vector<int64_t> p;
  for (int w : wanted) p.push_back(std::find(from.begin(), from.end(), w) - from.begin());
  return p;
}

bool is_identity(const std::vector<int64_t> &perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

Tensor permute(const Tensor &x, const Labels &from, const Labels &to) {
  std::vector<int64_t> perm = positions(from, to);
  return is_identity(perm) ? x : transpose(x, perm);
}

// Sums x (labelled l) over the labels `keep` lacks; l becomes the remaining labels.
Tensor sum_out(const Tensor &x, Labels &l, const Labels &keep) {
  std::vector<int64_t> axes;
  Labels rest;
  for (size_t i = 0; i < l.size(); ++i) {
    if (has(keep, l[i]))
      rest.push_back(l[i]);
    else
      axes.push_back(static_cast<int64_t>(i));
  }
  if (axes.empty()) return x;
  l = rest;
  return sum(x, axes);
}

int64_t product(const std::map<int, int64_t> &size, const Labels &l) {
  int64_t n = 1;
  for (int label : l) n *= size.at(label);
  return n;
}

std::vector<int64_t> dims_of(const std::map<int, int64_t> &size, const Labels &l) {
  std::vector<int64_t> d;
  for (int label : l) d.push_back(size.at(label));
  return d;
}

}  // namespace

Tensor einsum(const std::string &equation, const std::vector<Tensor> &inputs) {
  std::string eq;
  for (char c : equation)
    if (!std::isspace(static_cast<unsigned char>(c))) eq += c;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<Term> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(
        parse_term(eq, lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != inputs.size())
    bad(eq, str_cat("has ", terms.size(), " input terms for ", inputs.size(),
                    " operands; expected one term each"));
  if (inputs.empty() || inputs.size() > 2)
    fail(Code::kUnimplemented, "einsum: equation '", eq, "' has ", inputs.size(),
         " operands; kiln's einsum takes one or two (chain two-operand einsums for more)");
  for (size_t k = 0; k < inputs.size(); ++k)
    require_dtype(inputs[k], "einsum", k == 0 ? "inputs[0]" : "inputs[1]",
                  {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64, DType::kBFloat16});
  if (inputs.size() == 2) require_same_dtype(inputs[0], inputs[1], "einsum");
  // bfloat16 computes in float32 and rounds once, as the other bfloat16 ops (TF registers Einsum for
  // it); the casts carry the gradient.
  if (inputs[0].dtype() == DType::kBFloat16) {
    std::vector<Tensor> wide;
    for (const Tensor &t : inputs) wide.push_back(cast(t, DType::kFloat32));
    return cast(einsum(equation, wide), DType::kBFloat16);
  }

  // Labels per operand, with the ellipsis dims numbered right-aligned across operands.
  int ell_total = 0;
  std::vector<int> ell_rank(inputs.size(), 0);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const int letters = static_cast<int>(terms[k].letters.size());
    const int r = inputs[k].rank();
    if (terms[k].ellipsis_at < 0 ? r != letters : r < letters)
      bad(eq, str_cat("labels operand ", k, " of shape ", inputs[k].shape().to_string(), " with ", letters,
                      " letters", terms[k].ellipsis_at < 0 ? " and no ellipsis" : " and an ellipsis",
                      "; expected one label per dim"));
    ell_rank[k] = r - letters;
    ell_total = std::max(ell_total, ell_rank[k]);
  }
  std::vector<Labels> labels;
  std::map<int, int64_t> size;
  std::map<int, int> count;
  for (size_t k = 0; k < inputs.size(); ++k) {
    labels.push_back(expand(terms[k], ell_rank[k], ell_total));
    for (size_t i = 0; i < labels[k].size(); ++i) {
      const int l = labels[k][i];
      if (std::count(labels[k].begin(), labels[k].end(), l) > 1)
        fail(Code::kUnimplemented, "einsum: equation '", eq, "' repeats label '", static_cast<char>(l),
             "' within operand ", k, " (a diagonal); kiln's einsum does not take diagonals");
      const int64_t d = inputs[k].shape()[static_cast<int>(i)];
      auto it = size.find(l);
      const bool broadcasts = l < 'A' && (d == 1 || (it != size.end() && it->second == 1));
      if (it == size.end() || d == it->second) {
        size[l] = d;
      } else if (broadcasts) {  // ellipsis dims broadcast as NumPy's; letters do not (as TF)
        size[l] = it->second == 1 ? d : it->second;
      } else {
        bad(eq, str_cat("gives label ", l < 'A' ? std::string("...") : std::string(1, static_cast<char>(l)),
                        " sizes ", it->second, " and ", d, " (operand shapes ", inputs[0].shape().to_string(),
                        inputs.size() > 1 ? " and " + inputs[1].shape().to_string() : std::string(),
                        "); expected equal sizes"));
      }
      ++count[l];
    }
  }

  // The output: as written, or (implicit form) the ellipsis dims then the letters used once, sorted.
  Labels out;
  if (arrow != std::string::npos) {
    Term o = parse_term(eq, eq.substr(arrow + 2));
    out = expand(o, o.ellipsis_at >= 0 ? ell_total : 0, ell_total);
    for (int l : out) {
      if (!size.count(l))
        bad(eq,
            str_cat("has output label '", static_cast<char>(l), "' in no input; expected input labels only"));
      if (std::count(out.begin(), out.end(), l) > 1)
        bad(eq, str_cat("repeats output label '", static_cast<char>(l), "'; expected each at most once"));
    }
  } else {
    for (int e = 0; e < ell_total; ++e) out.push_back(e);
    for (const auto &[l, n] : count)
      if (l >= 'A' && n == 1) out.push_back(l);
  }

  if (inputs.size() == 1) {
    Labels l = labels[0];
    Tensor x = sum_out(inputs[0], l, out);
    return permute(x, l, out);
  }

  // Two operands: drop labels only one side has and the output lacks, then classify the rest.
  Labels la = labels[0], lb = labels[1];
  Labels keep_a = out, keep_b = out;
  keep_a.insert(keep_a.end(), lb.begin(), lb.end());
  keep_b.insert(keep_b.end(), la.begin(), la.end());
  Tensor a = sum_out(inputs[0], la, keep_a);
  Tensor b = sum_out(inputs[1], lb, keep_b);
  Labels batch, free_a, free_b, contract;
  for (int l : out)
    if (has(la, l) && has(lb, l)) batch.push_back(l);
  for (int l : la) {
    if (!has(lb, l)) free_a.push_back(l);
    if (has(lb, l) && !has(out, l)) contract.push_back(l);
  }
  for (int l : lb)
    if (!has(la, l)) free_b.push_back(l);
  // Ellipsis dims of size 1 on one side broadcast to the other's size.
  auto widen = [&](const Tensor &x, const Labels &l) {
    std::vector<int64_t> want = dims_of(size, l);
    return x.shape().to_vector() == want ? x : broadcast_to(x, Shape(want));
  };
  a = widen(a, la);
  b = widen(b, lb);

  // a as [batch, M, K] (or [batch, K, M] with transpose_a when that saves a copy); b likewise.
  Labels a_mk = batch, a_km = batch, b_kn = batch, b_nk = batch;
  a_mk.insert(a_mk.end(), free_a.begin(), free_a.end());
  a_mk.insert(a_mk.end(), contract.begin(), contract.end());
  a_km.insert(a_km.end(), contract.begin(), contract.end());
  a_km.insert(a_km.end(), free_a.begin(), free_a.end());
  b_kn.insert(b_kn.end(), contract.begin(), contract.end());
  b_kn.insert(b_kn.end(), free_b.begin(), free_b.end());
  b_nk.insert(b_nk.end(), free_b.begin(), free_b.end());
  b_nk.insert(b_nk.end(), contract.begin(), contract.end());
  const bool ta = !is_identity(positions(la, a_mk)) && is_identity(positions(la, a_km));
  const bool tb = !is_identity(positions(lb, b_kn)) && is_identity(positions(lb, b_nk));
  const int64_t nb = product(size, batch), m = product(size, free_a), n = product(size, free_b),
                k = product(size, contract);
  Tensor a3 = reshape(permute(a, la, ta ? a_km : a_mk),
                      ta ? std::vector<int64_t>{nb, k, m} : std::vector<int64_t>{nb, m, k});
  Tensor b3 = reshape(permute(b, lb, tb ? b_nk : b_kn),
                      tb ? std::vector<int64_t>{nb, n, k} : std::vector<int64_t>{nb, k, n});
  Tensor c = matmul(a3, b3, ta, tb);
  Labels lc = batch;
  lc.insert(lc.end(), free_a.begin(), free_a.end());
  lc.insert(lc.end(), free_b.begin(), free_b.end());
  return permute(reshape(c, dims_of(size, lc)), lc, out);
}

}  // namespace kiln::ops

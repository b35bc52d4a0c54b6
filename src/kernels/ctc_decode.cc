#include "kernels/ctc_decode.h"

#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/log_space.h"

namespace kiln::kernels {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T>
void greedy(const T *x, const int64_t *lengths, int64_t batch, int64_t frames, int64_t classes, int64_t blank,
            bool merge_repeated, int32_t *decoded, T *scores) {
  for (int64_t b = 0; b < batch; ++b) {
    int32_t *out = decoded + b * frames;
    int64_t emitted = 0, prev = -1;
    double score = 0;
    for (int64_t t = 0; t < lengths[b]; ++t) {
      const T *row = x + (b * frames + t) * classes;
      int64_t best = 0;  // the first of equal maxima; a NaN first class stays, as TF's RowMax
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best]) best = c;
      score -= static_cast<double>(row[best]);
      if (best != blank && !(merge_repeated && best == prev)) out[emitted++] = static_cast<int32_t>(best);
      prev = best;
    }
    for (int64_t i = emitted; i < frames; ++i) out[i] = -1;
    scores[b] = static_cast<T>(score);
  }
}

// TF's CTC prefix beam search (ctc_beam_search.h with its default scorer), in double: a tree of
// label prefixes, each with the log-probabilities of ending in a blank and in its own label, now
// (newp) and one frame ago (oldp); at most `width` prefixes (the leaves) survive each frame.
class BeamSearch {
 public:
  BeamSearch(int64_t classes, int64_t blank, int64_t width)
      : classes_(classes), blank_(blank), width_(width) {
    nodes_.push_back(
        Node{-1, -1, {}, {0.0, 0.0, kLogZero}, -1, kLogZero});  // the empty prefix: probability 1
    push(0);
  }

  void step(const double *x) {
    double max = x[0];
    for (int64_t c = 1; c < classes_; ++c) max = x[c] > max ? x[c] : max;
    double sum = 0;
    for (int64_t c = 0; c < classes_; ++c) sum += std::exp(x[c] - max);
    const double norm = max + std::log(sum);  // log-softmax offset
    const std::vector<int64_t> branches = extract();
    for (int64_t b : branches) nodes_[b].oldp = nodes_[b].newp;
    for (int64_t b : branches) {
      Node &n = nodes_[static_cast<size_t>(b)];
      if (n.parent >= 0) {
        const Node &p = nodes_[static_cast<size_t>(n.parent)];
        if (active(p)) n.newp.label = log_add(n.newp.label, n.label == p.label ? p.oldp.blank : p.oldp.total);
        n.newp.label += x[n.label] - norm;
      }
      n.newp.blank = n.oldp.total + x[blank_] - norm;
      n.newp.total = log_add(n.newp.blank, n.newp.label);
      push(b);
    }
    for (int64_t b : branches) {
      const Prob old = nodes_[static_cast<size_t>(b)].oldp;
      const int64_t own = nodes_[static_cast<size_t>(b)].label;
      if (!candidate(old.total)) continue;
      for (int64_t label = 0; label < classes_; ++label) {
        if (label == blank_) continue;
        const int64_t c = child(b, label);
        Node &n = nodes_[static_cast<size_t>(c)];
        if (active(n)) continue;  // a leaf already: its probabilities moved on above
        // A new prefix: a repeat of the last label needs a blank between the two.
        n.newp.blank = kLogZero;
        n.newp.label = x[label] - norm + (label == own ? old.blank : old.total);
        n.newp.total = n.newp.label;
        if (candidate(n.newp.total)) {
          if (static_cast<int64_t>(leaves_.size()) == width_) {
            const int64_t bottom = std::prev(leaves_.end())->node;
            nodes_[static_cast<size_t>(bottom)].newp = Prob{};
            remove(bottom);
          }
          push(c);
        } else {
          n.oldp = n.newp = Prob{};
        }
      }
    }
  }

  // The best n prefixes as (labels, log-probability), best first; false if fewer leaves exist.
  bool top(int64_t n, std::vector<std::vector<int32_t>> *paths, std::vector<double> *log_probs) const {
    if (n > static_cast<int64_t>(leaves_.size())) return false;
    auto it = leaves_.begin();
    for (int64_t i = 0; i < n; ++i, ++it) {
      std::vector<int32_t> labels;
      for (int64_t at = it->node; nodes_[static_cast<size_t>(at)].parent >= 0;
           at = nodes_[static_cast<size_t>(at)].parent)
        labels.insert(labels.begin(), static_cast<int32_t>(nodes_[static_cast<size_t>(at)].label));
      paths->push_back(std::move(labels));
      log_probs->push_back(nodes_[static_cast<size_t>(it->node)].newp.total);
    }
    return true;
  }

 private:
  struct Prob {
    double total = kLogZero, blank = kLogZero, label = kLogZero;
  };
  struct Node {
    int64_t parent, label;
    Prob oldp, newp;
    int64_t leaf = -1;  // its entry's order among the leaves, -1 when not a leaf
    double leaf_total = kLogZero;
  };
  // Leaves best first; equal probabilities in the order they joined.
  struct Leaf {
    double total;
    int64_t order, node;
    bool operator<(const Leaf &o) const { return total != o.total ? total > o.total : order < o.order; }
  };

  static bool active(const Node &n) { return n.newp.total != kLogZero; }
  bool candidate(double total) const {
    return total > kLogZero &&
           (static_cast<int64_t>(leaves_.size()) < width_ || total > std::prev(leaves_.end())->total);
  }
  // A node joins the leaves once: a leaf whose probability fell to 0 this frame and that comes
  // back as its parent's new child moves to its new place (TF would list it twice).
  void push(int64_t node) {
    remove(node);
    Node &n = nodes_[static_cast<size_t>(node)];
    n.leaf = next_++;
    n.leaf_total = n.newp.total;
    leaves_.insert(Leaf{n.leaf_total, n.leaf, node});
  }
  void remove(int64_t node) {
    Node &n = nodes_[static_cast<size_t>(node)];
    if (n.leaf < 0) return;
    leaves_.erase(Leaf{n.leaf_total, n.leaf, node});
    n.leaf = -1;
  }
  std::vector<int64_t> extract() {
    std::vector<int64_t> out;
    out.reserve(leaves_.size());
    for (const Leaf &l : leaves_) {
      out.push_back(l.node);
      nodes_[static_cast<size_t>(l.node)].leaf = -1;
    }
    leaves_.clear();
    return out;
  }
  int64_t child(int64_t parent, int64_t label) {
    const auto [it, added] =
        children_.try_emplace(parent * classes_ + label, static_cast<int64_t>(nodes_.size()));
    if (added) nodes_.push_back(Node{parent, label, {}, {}, -1, kLogZero});
    return it->second;
  }

  int64_t classes_, blank_, width_, next_ = 0;
  std::vector<Node> nodes_;
  std::unordered_map<int64_t, int64_t> children_;
  std::set<Leaf> leaves_;
};

}  // namespace

void ctc_greedy_decode(DType dtype, const void *logits, const int64_t *lengths, int64_t batch, int64_t frames,
                       int64_t classes, int64_t blank, bool merge_repeated, int32_t *decoded, void *scores) {
  dispatch_among<float, double>(dtype, "ctc_decode", [&](auto t) {
    using T = decltype(t);
    greedy(static_cast<const T *>(logits), lengths, batch, frames, classes, blank, merge_repeated, decoded,
           static_cast<T *>(scores));
  });
}

int64_t ctc_beam_search_decode(DType dtype, const void *logits, const int64_t *lengths, int64_t batch,
                               int64_t frames, int64_t classes, int64_t blank, int64_t beam_width,
                               int64_t top_paths, int32_t *decoded, void *scores) {
  int64_t failed = -1;
  dispatch_among<float, double>(dtype, "ctc_decode", [&](auto t) {
    using T = decltype(t);
    const T *x = static_cast<const T *>(logits);
    T *out_scores = static_cast<T *>(scores);
    std::vector<double> row(static_cast<size_t>(classes));
    for (int64_t b = 0; b < batch && failed < 0; ++b) {
      std::vector<std::vector<int32_t>> paths;
      std::vector<double> log_probs;
      bool finite = true;  // no NaN or +inf logit, and some class possible in every frame
      for (int64_t i = 0; i < lengths[b] * classes && finite; i += classes) {
        double max = kLogZero;
        for (int64_t c = 0; c < classes; ++c) {
          const double v = static_cast<double>(x[b * frames * classes + i + c]);
          finite = finite && !std::isnan(v) && v != std::numeric_limits<double>::infinity();
          max = v > max ? v : max;
        }
        finite = finite && max > kLogZero;
      }
      if (finite) {
        BeamSearch search(classes, blank, beam_width);
        for (int64_t f = 0; f < lengths[b]; ++f) {
          const T *src = x + (b * frames + f) * classes;
          for (int64_t c = 0; c < classes; ++c) row[static_cast<size_t>(c)] = static_cast<double>(src[c]);
          search.step(row.data());
        }
        if (!search.top(top_paths, &paths, &log_probs)) {
          failed = b;
          break;
        }
      } else {
        paths.assign(static_cast<size_t>(top_paths), {});
        log_probs.assign(static_cast<size_t>(top_paths), kNaN);
      }
      for (int64_t p = 0; p < top_paths; ++p) {
        int32_t *out = decoded + (p * batch + b) * frames;
        const std::vector<int32_t> &path = paths[static_cast<size_t>(p)];
        for (int64_t i = 0; i < frames; ++i)
          out[i] = i < static_cast<int64_t>(path.size()) ? path[static_cast<size_t>(i)] : -1;
        out_scores[b * top_paths + p] = static_cast<T>(log_probs[static_cast<size_t>(p)]);
      }
    }
  });
  return failed;
}

}  // namespace kiln::kernels

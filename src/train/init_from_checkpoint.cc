// init_from_checkpoint (init_from_checkpoint.h): the checkpoint's names, the assignment map
// resolved into (checkpoint key, variable) pairs, every pair checked and every value read, then
// the assignments, and the report.
#include "train/init_from_checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "io/bundle.h"
#include "io/checkpoint_state.h"

namespace kiln::train {

namespace {

constexpr const char *kFn = "init_from_checkpoint";
constexpr const char *kObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH";

std::vector<std::string> split_segments(const std::string &s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

// TF's escaping of edge names inside a key undone: ".." -> ".", ".S" -> "/".
std::string unescape_path(const std::string &path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '.' && i + 1 < path.size() && (path[i + 1] == '.' || path[i + 1] == 'S')) {
      out += path[i + 1] == '.' ? '.' : '/';
      ++i;
    } else {
      out += path[i];
    }
  }
  return out;
}

bool ends_with(const std::string &s, const std::string &tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_scope(const std::string &name) { return !name.empty() && name.back() == '/'; }

// Whether name lies under scope ("/" holds every name); *rest gets the part after the scope.
bool under_scope(const std::string &name, const std::string &scope, std::string *rest) {
  if (scope == "/") {
    *rest = name;
    return true;
  }
  if (name.size() <= scope.size() || name.compare(0, scope.size(), scope) != 0) return false;
  *rest = name.substr(scope.size());
  return true;
}

std::string join_scope(const std::string &scope, const std::string &rest) {
  return scope == "/" ? rest : scope + rest;
}

std::string dims_string(const std::vector<int64_t> &dims) { return list_string(dims); }

// One checkpoint variable as the map sees it.
struct CkptName {
  const io::BundleEntry *entry;
  CheckpointKeyName name;
};

// One planned assignment.
struct Planned {
  const CkptName *source;
  std::shared_ptr<autodiff::Variable> variable;
};

}  // namespace

// ------------------------------------------------------------------ names

bool is_tf1_optimizer_state_name(const std::string &name) {
  static const std::set<std::string> kWhole = {"global_step", "beta1_power", "beta2_power"};
  static const std::set<std::string> kLast = {"adam_m",   "adam_v",     "Adam",      "Adam_1",
                                              "Momentum", "RMSProp",    "RMSProp_1", "Adagrad",
                                              "Adadelta", "Adadelta_1", "Ftrl",      "Ftrl_1"};
  if (kWhole.count(name)) return true;
  const size_t slash = name.rfind('/');
  return slash != std::string::npos && kLast.count(name.substr(slash + 1)) > 0;
}

std::string object_based_variable_name(const std::string &key) {
  static const std::string kTail = "/.ATTRIBUTES/VARIABLE_VALUE";
  if (!ends_with(key, kTail) || key.size() == kTail.size()) return "";
  return unescape_path(key.substr(0, key.size() - kTail.size()));
}

CheckpointKeyName checkpoint_key_name(const std::string &key) {
  CheckpointKeyName out;
  out.name = key;
  if (key.empty() || key[0] == '\0' || key == kObjectGraphKey) {
    out.kind = CheckpointKeyKind::kNotAVariable;
    return out;
  }
  const std::vector<std::string> segments = split_segments(key);
  // An edge name never escapes to ".ATTRIBUTES" or ".OPTIMIZER_SLOT" (its dots are doubled), so a
  // segment spelled so is TF's marker.
  const auto attributes = std::find(segments.begin(), segments.end(), ".ATTRIBUTES");
  if (attributes == segments.end()) {
    out.kind =
        is_tf1_optimizer_state_name(key) ? CheckpointKeyKind::kOptimizerState : CheckpointKeyKind::kVariable;
    return out;
  }
  out.object_based = true;
  const std::vector<std::string> path(segments.begin(), attributes);
  const std::vector<std::string> attribute(attributes + 1, segments.end());
  if (path.empty() || attribute.size() != 1 || attribute[0] != "VARIABLE_VALUE") {
    out.kind = CheckpointKeyKind::kNotAVariable;  // an object's own attribute (a config, a saver's value)
    return out;
  }
  std::string joined;
  for (const std::string &s : path) joined += (joined.empty() ? "" : "/") + s;
  out.name = unescape_path(joined);
  // The optimizer is the edge "optimizer" of a Checkpoint or of a compiled Keras model (its slots
  // also hang off their variables as .OPTIMIZER_SLOT); save_counter is tf.train.Checkpoint's.
  // TF1's slot names count too, for TF1 variables saved under their names in an object graph.
  const bool optimizer = std::find(path.begin(), path.end(), ".OPTIMIZER_SLOT") != path.end() ||
                         std::find(path.begin(), path.end(), "optimizer") != path.end() ||
                         path.back() == "save_counter" || is_tf1_optimizer_state_name(out.name);
  out.kind = optimizer ? CheckpointKeyKind::kOptimizerState : CheckpointKeyKind::kVariable;
  return out;
}

bool reshape_compatible(const std::vector<int64_t> &from, const std::vector<int64_t> &to) {
  // Where each shape's dims end, as counts of elements before the boundary (size-1 dims add
  // nothing). One set within the other means one shape refines the other.
  auto boundaries = [](const std::vector<int64_t> &dims, int64_t *count) {
    std::set<int64_t> b;
    int64_t n = 1;
    for (int64_t d : dims) {
      if (d < 0 || (d > 0 && n > INT64_MAX / d)) return std::set<int64_t>{-1};
      n *= d;
      b.insert(n);
    }
    *count = n;
    return b;
  };
  int64_t n_from = 0, n_to = 0;
  const std::set<int64_t> a = boundaries(from, &n_from), b = boundaries(to, &n_to);
  if (a.count(-1) || b.count(-1) || n_from != n_to) return false;
  return std::includes(a.begin(), a.end(), b.begin(), b.end()) ||
         std::includes(b.begin(), b.end(), a.begin(), a.end());
}

// ------------------------------------------------------------------ report

std::string InitFromCheckpointReport::to_string() const {
  std::ostringstream os;
  size_t reshaped = 0;
  for (const Match &m : matched) reshaped += m.reshaped;
  os << "init_from_checkpoint: " << checkpoint << "\n";
  os << "  matched " << matched.size() << " variables"
     << (reshaped ? str_cat(" (", reshaped, " reshaped)") : "") << ":\n";
  for (const Match &m : matched) {
    os << "    " << m.checkpoint_name << " " << dims_string(m.checkpoint_shape) << " -> " << m.variable_name;
    if (m.reshaped) os << " " << m.variable->shape().to_string() << " (reshaped)";
    os << "\n";
  }
  if (!mismatched.empty()) {
    os << "  mismatched (skipped) " << mismatched.size() << ":\n";
    for (const Mismatch &m : mismatched)
      os << "    " << m.checkpoint_name << " " << m.checkpoint_dtype << dims_string(m.checkpoint_shape)
         << " -> " << m.variable_name << " " << m.variable_dtype << dims_string(m.variable_shape) << "\n";
  }
  if (!missing.empty()) {
    os << "  missing from the checkpoint " << missing.size() << ":\n";
    for (const Missing &m : missing) os << "    " << m.checkpoint_name << " -> " << m.variable_name << "\n";
  }
  os << "  unmatched checkpoint names " << unmatched_checkpoint_names.size()
     << (unmatched_checkpoint_names.empty() ? "\n" : ":\n");
  for (const std::string &n : unmatched_checkpoint_names) os << "    " << n << "\n";
  os << "  unmatched variables " << unmatched_variables.size()
     << (unmatched_variables.empty() ? "\n" : ":\n");
  for (const std::string &n : unmatched_variables) os << "    " << n << "\n";
  os << "  skipped (optimizer slots, counters, object graph) " << skipped_checkpoint_names.size();
  if (!skipped_checkpoint_names.empty()) {
    os << ": ";
    const size_t shown = std::min<size_t>(skipped_checkpoint_names.size(), 3);
    for (size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << skipped_checkpoint_names[i];
    if (shown < skipped_checkpoint_names.size()) os << ", ...";
  }
  os << "\n";
  return os.str();
}

// ------------------------------------------------------------------ init_from_checkpoint

InitFromCheckpointReport init_from_checkpoint(
    const std::string &ckpt_dir_or_file, const std::vector<CheckpointAssignment> &assignment_map,
    const std::vector<std::shared_ptr<autodiff::Variable>> &variables,
    const InitFromCheckpointOptions &options) {
  // The map is checked for its own mistakes before any file is opened.
  for (const CheckpointAssignment &a : assignment_map) {
    if (a.checkpoint_name.empty())
      fail(Code::kInvalidArgument, kFn, ": an assignment has an empty checkpoint name");
    if (a.variable && !a.variable_name.empty())
      fail(Code::kInvalidArgument, kFn, ": the assignment of '", a.checkpoint_name,
           "' names both a variable and a variable name ('", a.variable_name, "'); give one");
    if (!a.variable && a.variable_name.empty())
      fail(Code::kInvalidArgument, kFn, ": the assignment of '", a.checkpoint_name, "' has no variable");
    const bool target_scope = !a.variable && is_scope(a.variable_name);
    if (is_scope(a.checkpoint_name) != target_scope)
      fail(Code::kInvalidArgument, kFn, ": '", a.checkpoint_name, "' -> '",
           a.variable ? a.variable->name() : a.variable_name,
           "' maps a scope to a single variable or back; a scope ends in '/' on both sides ('scope/': "
           "'other_scope/', '/' for everything)");
  }
  std::vector<std::shared_ptr<autodiff::Variable>> store;  // variables, each once
  std::unordered_map<std::string, std::vector<size_t>> by_name;
  {
    std::set<uint64_t> seen;
    for (const auto &v : variables) {
      if (!v) fail(Code::kInvalidArgument, kFn, ": variable ", &v - variables.data(), " of the list is null");
      if (!seen.insert(v->id()).second) continue;
      by_name[v->name()].push_back(store.size());
      store.push_back(v);
    }
  }

  InitFromCheckpointReport report;
  report.checkpoint = io::resolve_checkpoint_prefix(ckpt_dir_or_file, kFn);
  io::BundleReader reader(report.checkpoint);

  // The checkpoint's names; a name two keys share (a TF2 path equal to a TF1 key, or two
  // escapings of one path) would make the map ambiguous.
  std::vector<CkptName> ckpt;
  ckpt.reserve(reader.entries().size());
  for (const io::BundleEntry &e : reader.entries()) {
    if (!e.key.empty() && e.key[0] == '\0') continue;  // a slice of a partitioned variable
    ckpt.push_back(CkptName{&e, checkpoint_key_name(e.key)});
  }
  std::unordered_map<std::string, const CkptName *> ckpt_by_name, ckpt_by_key;
  for (const CkptName &c : ckpt) {
    ckpt_by_key.emplace(c.entry->key, &c);
    if (c.name.kind == CheckpointKeyKind::kNotAVariable) continue;
    auto [it, inserted] = ckpt_by_name.emplace(c.name.name, &c);
    if (!inserted)
      fail(Code::kInvalidArgument, kFn, ": the checkpoint '", report.checkpoint,
           "' has two keys for the name '", c.name.name, "': '", it->second->entry->key, "' and '",
           c.entry->key, "'");
  }
  auto find_ckpt = [&](const std::string &name) -> const CkptName * {
    auto it = ckpt_by_name.find(name);
    if (it != ckpt_by_name.end()) return it->second;
    auto k = ckpt_by_key.find(name);  // a TF2 key in full
    return k != ckpt_by_key.end() && k->second->name.kind != CheckpointKeyKind::kNotAVariable ? k->second
                                                                                              : nullptr;
  };
  auto missing_error = [&](const std::string &name, const std::string &variable, const char *why) {
    fail(Code::kNotFound, kFn, ": the checkpoint '", report.checkpoint, "' has no variable '", name,
         "' (for '", variable, "')", why, "; ", ckpt.size(),
         " names are in it (tf.train.list_variables lists them)");
  };

  // Resolve the map into planned assignments, the last entry for a variable winning: an entry
  // replaced by a later one is cleared (variable null) and dropped afterwards.
  std::vector<Planned> planned;    // source null: the checkpoint lacks the name (allow_missing)
  std::vector<std::string> asked;  // the checkpoint name each planned entry asked for
  std::unordered_map<const autodiff::Variable *, size_t> planned_at;
  auto plan_for = [&](const CkptName *source, const std::string &name,
                      const std::shared_ptr<autodiff::Variable> &v) {
    auto [it, inserted] = planned_at.emplace(v.get(), planned.size());
    if (!inserted) {
      planned[it->second].variable = nullptr;
      it->second = planned.size();
    }
    planned.push_back(Planned{source, v});
    asked.push_back(name);
  };
  auto add = [&](const CkptName *source, const std::shared_ptr<autodiff::Variable> &v) {
    plan_for(source, source->name.name, v);
  };
  auto add_missing = [&](const std::string &name, const std::shared_ptr<autodiff::Variable> &v,
                         const char *why) {
    if (!options.allow_missing) missing_error(name, v->name(), why);
    plan_for(nullptr, name, v);
  };
  for (const CheckpointAssignment &a : assignment_map) {
    if (!is_scope(a.checkpoint_name)) {
      std::shared_ptr<autodiff::Variable> v = a.variable;
      if (!v) {
        auto it = by_name.find(a.variable_name);
        if (it == by_name.end())
          fail(Code::kNotFound, kFn, ": no variable is named '", a.variable_name, "' (for checkpoint name '",
               a.checkpoint_name, "') among the ", store.size(),
               " variables given; a scope ends in '/' ('scope/': 'other_scope/')");
        if (it->second.size() > 1)
          fail(Code::kInvalidArgument, kFn, ": ", it->second.size(), " of the variables given are named '",
               a.variable_name, "'; give the variable itself for checkpoint name '", a.checkpoint_name, "'");
        v = store[it->second[0]];
      }
      // A name asked for by name is taken even when it is optimizer state.
      if (const CkptName *c = find_ckpt(a.checkpoint_name))
        add(c, v);
      else
        add_missing(a.checkpoint_name, v, "");
      continue;
    }
    size_t in_scope = 0;
    for (const auto &v : store) {
      std::string rest;
      if (!under_scope(v->name(), a.variable_name, &rest)) continue;
      ++in_scope;
      const std::string name = join_scope(a.checkpoint_name, rest);
      const CkptName *c = find_ckpt(name);
      if (c && c->name.kind == CheckpointKeyKind::kOptimizerState && options.skip_optimizer_state)
        add_missing(name, v,
                    ", as a scope's names leave optimizer state out (map it by name, or turn "
                    "skip_optimizer_state off)");
      else if (c)
        add(c, v);
      else
        add_missing(name, v,
                    str_cat(" under scope '", a.checkpoint_name, "' -> '", a.variable_name, "'").c_str());
    }
    if (in_scope == 0)
      fail(Code::kNotFound, kFn, ": none of the ", store.size(), " variables given is under the scope '",
           a.variable_name, "' (for checkpoint scope '", a.checkpoint_name, "')");
  }

  std::vector<Planned> plan;
  for (size_t i = 0; i < planned.size(); ++i) {
    if (!planned[i].variable) continue;
    if (planned[i].source)
      plan.push_back(planned[i]);
    else
      report.missing.push_back(InitFromCheckpointReport::Missing{asked[i], planned[i].variable->name()});
  }

  // Check every pair before anything changes.
  std::vector<Planned> fits;
  std::vector<bool> reshape;
  std::vector<std::string> errors;
  std::set<const CkptName *> mismatched_sources;
  for (const Planned &p : plan) {
    const io::BundleEntry &e = *p.source->entry;
    const std::vector<int64_t> var_shape = p.variable->shape().to_vector();
    const bool dtype_ok = e.dtype == io::to_tf_dtype(p.variable->dtype());
    const bool same_shape = e.shape == var_shape;
    const bool reshapes = !same_shape && options.allow_reshape && reshape_compatible(e.shape, var_shape);
    if (dtype_ok && (same_shape || reshapes)) {
      fits.push_back(p);
      reshape.push_back(reshapes);
      continue;
    }
    InitFromCheckpointReport::Mismatch m{p.source->name.name,
                                         p.variable->name(),
                                         io::tf_dtype_name(e.dtype),
                                         io::tf_dtype_name(io::to_tf_dtype(p.variable->dtype())),
                                         e.shape,
                                         var_shape};
    errors.push_back(str_cat("checkpoint variable '", m.checkpoint_name, "' (", m.checkpoint_dtype,
                             dims_string(m.checkpoint_shape), ") does not fit variable '", m.variable_name,
                             "' (", m.variable_dtype, dims_string(m.variable_shape), "): ",
                             !dtype_ok ? "the dtypes differ"
                             : options.allow_reshape
                                 ? "the shapes differ by more than a split or merge of dims"
                                 : "the shapes differ"));
    report.mismatched.push_back(std::move(m));
    mismatched_sources.insert(p.source);
  }
  if (!errors.empty() && !options.skip_mismatched) {
    std::string more = errors.size() > 1 ? str_cat(" (and ", errors.size() - 1, " more mismatches)") : "";
    fail(Code::kInvalidArgument, kFn, ": ", errors[0], more, "; checkpoint '", report.checkpoint,
         "'; nothing was assigned");
  }

  // Read each value once (a shared ALBERT weight goes to every layer), then assign.
  std::map<const CkptName *, Tensor> values;
  for (const Planned &p : fits)
    if (!values.count(p.source)) values.emplace(p.source, reader.read(p.source->entry->key));
  for (size_t i = 0; i < fits.size(); ++i) {
    const Planned &p = fits[i];
    const Tensor &value = values.at(p.source);
    p.variable->assign(reshape[i] ? value.reshaped(p.variable->shape()) : value);
    report.matched.push_back(InitFromCheckpointReport::Match{p.source->name.name, p.source->entry->key,
                                                             p.variable->name(), p.variable,
                                                             p.source->entry->shape, reshape[i]});
  }

  std::set<const CkptName *> used;
  for (const Planned &p : fits) used.insert(p.source);
  for (const CkptName &c : ckpt) {
    if (used.count(&c) || mismatched_sources.count(&c)) continue;
    const bool skip = c.name.kind == CheckpointKeyKind::kNotAVariable ||
                      (c.name.kind == CheckpointKeyKind::kOptimizerState && options.skip_optimizer_state);
    (skip ? report.skipped_checkpoint_names : report.unmatched_checkpoint_names).push_back(c.name.name);
  }
  std::set<const autodiff::Variable *> assigned;
  for (const Planned &p : fits) assigned.insert(p.variable.get());
  for (const auto &v : store)
    if (!assigned.count(v.get())) report.unmatched_variables.push_back(v->name());
  return report;
}

InitFromCheckpointReport init_from_checkpoint(const std::string &ckpt_dir_or_file,
                                              const std::vector<CheckpointAssignment> &assignment_map,
                                              const layers::LayerPtr &model,
                                              const InitFromCheckpointOptions &options) {
  if (!model) fail(Code::kInvalidArgument, kFn, ": the model is null");
  std::vector<std::shared_ptr<autodiff::Variable>> vars = model->variables();
  if (vars.empty() && !model->built())
    fail(Code::kFailedPrecondition, kFn, ": model '", model->name(),
         "' is not built and has no variables yet; build it (or call it once) first");
  return init_from_checkpoint(ckpt_dir_or_file, assignment_map, vars, options);
}

}  // namespace kiln::train

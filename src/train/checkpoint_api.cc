// tf.train.Checkpoint and Keras's save_weights / load_weights in TF format (checkpoint.h), over
// the object-graph save and restore of checkpoint.cc.
#include <algorithm>

#include "core/error.h"
#include "core/utf8.h"
#include "io/checkpoint_state.h"
#include "io/file_util.h"
#include "train/checkpoint.h"
#include "train/checkpoint_internal.h"

namespace kiln::train {

// ------------------------------------------------------------------ Checkpoint

// The checkpoint's root object: its named children, then save_counter once it exists.
struct Checkpoint::Impl final : public Trackable {
  std::mutex mu;  // serialises save, write and restore
  // Guards named: track() may add a child while a checkpoint nesting this one saves.
  mutable std::mutex named_mu;
  std::vector<Child> named;
  mutable std::mutex counter_mu;
  VariablePtr save_counter;  // made by the first save or restore, as TF does

  Id id() const override { return Id{this, ""}; }
  std::string description() const override { return "Checkpoint"; }
  std::vector<Child> children() const override {
    std::vector<Child> out;
    {
      std::lock_guard<std::mutex> lock(named_mu);
      out = named;
    }
    if (VariablePtr c = counter()) out.push_back(Child{"save_counter", make_trackable(c)});
    return out;
  }
  VariablePtr counter() const {
    std::lock_guard<std::mutex> lock(counter_mu);
    return save_counter;
  }
  VariablePtr make_counter() {
    std::lock_guard<std::mutex> lock(counter_mu);
    if (!save_counter)
      save_counter = std::make_shared<autodiff::Variable>("save_counter", Tensor::scalar<int64_t>(0), false);
    return save_counter;
  }
};

Checkpoint::Checkpoint(std::vector<std::pair<std::string, TrackablePtr>> children)
    : impl_(std::make_shared<Impl>()) {
  std::sort(children.begin(), children.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
  for (size_t i = 0; i < children.size(); ++i) {
    const std::string &name = children[i].first;
    if (name.empty()) fail(Code::kInvalidArgument, "Checkpoint: a child has an empty name");
    require_utf8(name, "Checkpoint", "a child's name");  // a string field of the object graph
    if (name == "save_counter")
      fail(Code::kInvalidArgument,
           "Checkpoint: 'save_counter' is the checkpoint's own child; name the object otherwise");
    if (i > 0 && children[i - 1].first == name)
      fail(Code::kInvalidArgument, "Checkpoint: two children are named '", name, "'");
    if (!children[i].second) fail(Code::kInvalidArgument, "Checkpoint: the object for '", name, "' is null");
    impl_->named.push_back(Trackable::Child{name, children[i].second});
  }
}

Checkpoint::~Checkpoint() = default;

void Checkpoint::track(const std::string &name, TrackablePtr object) {
  if (name.empty()) fail(Code::kInvalidArgument, "Checkpoint: a child has an empty name");
  require_utf8(name, "Checkpoint", "a child's name");  // a string field of the object graph
  if (name == "save_counter")
    fail(Code::kInvalidArgument,
         "Checkpoint: 'save_counter' is the checkpoint's own child; name the object otherwise");
  if (!object) fail(Code::kInvalidArgument, "Checkpoint: the object for '", name, "' is null");
  std::lock_guard<std::mutex> lock(impl_->named_mu);
  for (Trackable::Child &c : impl_->named)
    if (c.name == name) {
      c.object = std::move(object);
      return;
    }
  impl_->named.push_back(Trackable::Child{name, std::move(object)});
}

int64_t Checkpoint::save_counter() const {
  VariablePtr c = impl_->counter();
  return c ? c->peek().data<int64_t>()[0] : 0;
}

TrackablePtr Checkpoint::root() const { return impl_; }

std::string Checkpoint::write(const std::string &prefix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  write_object_graph(impl_, prefix);
  return prefix;
}

std::string Checkpoint::save_numbered(const std::string &prefix, int64_t number,
                                      const std::function<void(const std::string &path)> &record) {
  if (prefix.empty()) fail(Code::kInvalidArgument, "Checkpoint.save: the prefix is empty");
  std::lock_guard<std::mutex> lock(impl_->mu);
  const VariablePtr counter = impl_->make_counter();
  const int64_t before = counter->peek().data<int64_t>()[0];
  if (number < 0) number = before + 1;
  const std::string path = prefix + "-" + std::to_string(number);
  counter->assign(Tensor::scalar<int64_t>(before + 1));
  try {
    write_object_graph(impl_, path);
    if (record) record(path);
  } catch (...) {
    counter->assign(Tensor::scalar<int64_t>(before));
    throw;
  }
  return path;
}

std::string Checkpoint::save(const std::string &prefix) {
  return save_numbered(prefix, -1, [](const std::string &path) {
    // TF's Checkpoint.save records the newest checkpoint alone (CheckpointManager keeps lists).
    io::CheckpointState state;
    state.model_checkpoint_path = path;
    state.all_model_checkpoint_paths = {path};
    io::update_checkpoint_state(io::dir_name(path), state);
  });
}

LoadStatus Checkpoint::read(const std::string &path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const VariablePtr counter = impl_->make_counter();
  return restore_impl(impl_, path, {Trackable::Id{counter.get(), ""}});
}

LoadStatus Checkpoint::restore(const std::string &path) {
  return read(io::resolve_checkpoint_prefix(path, "Checkpoint.restore"));
}

// ------------------------------------------------------------------ Keras save_weights / load_weights

namespace {

// Keras's model._checkpoint = tf.train.Checkpoint(root=model): the model is the root, and the
// checkpoint attaches it to itself as "root".
class WeightsRoot final : public Trackable {
 public:
  explicit WeightsRoot(layers::LayerPtr model) : model_(std::move(model)), inner_(make_trackable(model_)) {}
  Id id() const override { return inner_->id(); }
  std::string description() const override { return inner_->description(); }
  std::vector<Child> children() const override {
    std::vector<Child> out = inner_->children();
    out.push_back(Child{"root", std::make_shared<WeightsRoot>(model_)});
    return out;
  }
  std::vector<TrackableAttribute> attributes() const override { return inner_->attributes(); }
  layers::LayerPtr layer() const override { return model_; }
  // The model's own lookup (which also finds attribute-named sub-layers by their positional names).
  TrackablePtr child(const std::string &name) const override {
    if (name == "root") return std::make_shared<WeightsRoot>(model_);
    return inner_->child(name);
  }

 private:
  layers::LayerPtr model_;
  TrackablePtr inner_;
};

}  // namespace

void save_weights(const layers::LayerPtr &model, const std::string &path) {
  if (!model) fail(Code::kInvalidArgument, "save_weights: the model is null");
  if (path.empty()) fail(Code::kInvalidArgument, "save_weights: the path is empty");
  if (io::has_keras_file_suffix(path))
    fail(Code::kUnimplemented, "save_weights('", path,
         "'): HDF5 / .keras weight files are not supported; give a path without that suffix (TensorFlow "
         "format)");
  write_object_graph(std::make_shared<WeightsRoot>(model), path);
  io::CheckpointState state;
  state.model_checkpoint_path = path;
  state.all_model_checkpoint_paths = {path};
  io::update_checkpoint_state(io::dir_name(path), state);
}

bool is_weights_root(const Trackable &t) { return dynamic_cast<const WeightsRoot *>(&t) != nullptr; }

TrackablePtr make_weights_root(const layers::LayerPtr &model) {
  if (!model) fail(Code::kInvalidArgument, "make_weights_root: the model is null");
  return std::make_shared<WeightsRoot>(model);
}

LoadStatus load_weights(const layers::LayerPtr &model, const std::string &path) {
  if (!model) fail(Code::kInvalidArgument, "load_weights: the model is null");
  if (io::has_keras_file_suffix(path))
    fail(Code::kUnimplemented, "load_weights('", path,
         "'): HDF5 / .keras weight files are not supported; give a TensorFlow-format checkpoint");
  const std::string prefix = io::resolve_checkpoint_prefix(path, "load_weights");
  LoadStatus status = restore_object_graph(std::make_shared<WeightsRoot>(model), prefix);
  try {
    status.assert_nontrivial_match();
  } catch (...) {
    status.expect_partial();  // the error says it all; no warning on top
    throw;
  }
  return status;
}

}  // namespace kiln::train

#include "train/callbacks.h"

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "train/serialized.h"

namespace kiln::train {

// ---- Logs ----

void Logs::set(const std::string &name, double value) {
  for (auto &kv : items_) {
    if (kv.first == name) {
      kv.second = value;
      return;
    }
  }
  items_.emplace_back(name, value);
}

std::optional<double> Logs::get(const std::string &name) const {
  for (const auto &kv : items_)
    if (kv.first == name) return kv.second;
  return std::nullopt;
}

void Logs::erase(const std::string &name) {
  items_.erase(std::remove_if(items_.begin(), items_.end(), [&](const auto &kv) { return kv.first == name; }),
               items_.end());
}

Config Logs::to_config() const {
  Config c;
  for (const auto &kv : items_) c.set_any_float(kv.first, kv.second);
  return c;
}

Logs Logs::from_config(const Config &config) {
  Logs logs;
  for (const std::string &k : config.keys()) {
    const Config::Type t = config.type(k);
    if (t == Config::Type::kFloat) {
      logs.set(k, config.get_float(k));
    } else if (t == Config::Type::kInt) {
      logs.set(k, static_cast<double>(config.get_int(k)));
    } else if (t == Config::Type::kBool) {
      logs.set(k, config.get_bool(k) ? 1.0 : 0.0);
    } else {
      fail(Code::kInvalidArgument, "logs: '", k, "' is not a number; expected every log value to be a float");
    }
  }
  return logs;
}

// ---- History ----

void History::on_train_begin(Logs &) {
  std::lock_guard<std::mutex> lock(mu_);
  epoch.clear();
}

void History::on_epoch_end(int64_t e, Logs &logs) {
  std::lock_guard<std::mutex> lock(mu_);
  epoch.push_back(e);
  for (const auto &kv : logs.items()) {
    auto it = history.find(kv.first);
    if (it == history.end()) {
      keys.push_back(kv.first);
      it = history.emplace(kv.first, std::vector<double>()).first;
    }
    it->second.push_back(kv.second);
  }
}

Config History::record() const {
  std::lock_guard<std::mutex> lock(mu_);
  Config values;
  for (const std::string &k : keys) values.set_any_float(k, history.at(k));
  Config out;
  out.set("epoch", epoch);
  out.set("keys", keys);
  out.set("history", values);
  return out;
}

// ---- CallbackList ----

CallbackList::CallbackList(std::vector<CallbackPtr> callbacks, bool add_history, bool add_progbar,
                           const layers::LayerPtr &model, const CallbackParams &params)
    : callbacks_(std::move(callbacks)) {
  bool has_progbar = false;
  for (const CallbackPtr &cb : callbacks_) {
    if (!cb) fail(Code::kInvalidArgument, "callbacks: a callback in the list is null");
    if (!history_) history_ = std::dynamic_pointer_cast<History>(cb);
    if (cb->class_name() == "ProgbarLogger") has_progbar = true;
  }
  if (!history_ && add_history) {
    history_ = std::make_shared<History>();
    callbacks_.push_back(history_);
  }
  if (!has_progbar && add_progbar) callbacks_.push_back(create_callback("ProgbarLogger"));
  for (const CallbackPtr &cb : callbacks_) {
    cb->set_model(model);
    cb->set_params(params);
  }
}

template <typename F>
void CallbackList::each(const Logs &logs, F &&f) {
  Logs shared = logs;
  for (const CallbackPtr &cb : callbacks_) f(*cb, shared);
}

void CallbackList::on_train_begin(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_train_begin(l); });
}
void CallbackList::on_train_end(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_train_end(l); });
}
void CallbackList::on_epoch_begin(int64_t e, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_epoch_begin(e, l); });
}
void CallbackList::on_epoch_end(int64_t e, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_epoch_end(e, l); });
}
void CallbackList::on_train_batch_begin(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_train_batch_begin(b, l); });
}
void CallbackList::on_train_batch_end(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_train_batch_end(b, l); });
}
void CallbackList::on_test_begin(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_test_begin(l); });
}
void CallbackList::on_test_end(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_test_end(l); });
}
void CallbackList::on_test_batch_begin(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_test_batch_begin(b, l); });
}
void CallbackList::on_test_batch_end(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_test_batch_end(b, l); });
}
void CallbackList::on_predict_begin(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_predict_begin(l); });
}
void CallbackList::on_predict_end(const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_predict_end(l); });
}
void CallbackList::on_predict_batch_begin(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_predict_batch_begin(b, l); });
}
void CallbackList::on_predict_batch_end(int64_t b, const Logs &logs) {
  each(logs, [&](Callback &c, Logs &l) { c.on_predict_batch_end(b, l); });
}

// ---- registry ----

namespace {

std::mutex &registry_mutex() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, CallbackFactory> &registry() {
  static std::map<std::string, CallbackFactory> r;
  return r;
}

void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_callback("History", [](const Config &c) -> CallbackPtr {
      ConfigReader r(c, "History");
      r.finish();
      return std::make_shared<History>();
    });
    register_builtin_callbacks();
  });
}

}  // namespace

void register_callback(const std::string &class_name, CallbackFactory factory) {
  if (class_name.empty()) fail(Code::kInvalidArgument, "register_callback: the class name is empty");
  if (!factory) fail(Code::kInvalidArgument, "register_callback: the factory of '", class_name, "' is empty");
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[class_name] = std::move(factory);
}

std::vector<std::string> registered_callbacks() {
  ensure_builtins();
  std::vector<std::string> names;
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (const auto &kv : registry()) names.push_back(kv.first);
  return names;
}

CallbackPtr create_callback(const std::string &class_name, const Config &config) {
  ensure_builtins();
  CallbackFactory f;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(class_name);
    if (it != registry().end()) f = it->second;
  }
  if (!f)
    fail(Code::kNotFound, "callback: unknown class '", class_name, "'; known: ", join_names(registered_callbacks()));
  CallbackPtr cb = f(config);
  if (!cb) fail(Code::kInternal, "callback: the factory of '", class_name, "' gave no callback");
  return cb;
}

}  // namespace kiln::train

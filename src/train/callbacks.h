// Keras callbacks (keras/src/callbacks/*.py): objects with the Keras hooks that fit, evaluate and
// predict call, a CallbackList that dispatches them in order (adding History and ProgbarLogger as
// Keras's CallbackList does), and the registry of the built-in classes by name (EarlyStopping,
// LearningRateScheduler, ReduceLROnPlateau, CSVLogger, TerminateOnNaN, ProgbarLogger, History,
// LambdaCallback are in callbacks_builtin.cc and progbar.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "layers/layer.h"

namespace kiln::train {

// Keras's logs dict: names to floats in insertion order (loss, metrics, then val_*).
class Logs {
 public:
  // Replaces the value of name, or appends it.
  void set(const std::string &name, double value);
  std::optional<double> get(const std::string &name) const;
  bool contains(const std::string &name) const { return get(name).has_value(); }
  void erase(const std::string &name);
  const std::vector<std::pair<std::string, double>> &items() const { return items_; }
  bool empty() const { return items_.empty(); }
  void clear() { items_.clear(); }
  // As a Config of floats, and back (non-numeric entries of a Config are InvalidArgument).
  Config to_config() const;
  static Logs from_config(const Config &config);

 private:
  std::vector<std::pair<std::string, double>> items_;
};

// Keras's callback.params: {"verbose", "epochs", "steps"}; steps is -1 when unknown.
struct CallbackParams {
  int64_t verbose = 1;
  int64_t epochs = 1;
  int64_t steps = -1;
};

class Callback {
 public:
  explicit Callback(std::string class_name) : class_name_(std::move(class_name)) {}
  virtual ~Callback() = default;
  Callback(const Callback &) = delete;
  Callback &operator=(const Callback &) = delete;

  const std::string &class_name() const { return class_name_; }
  // Keras's set_model / self.model: the model fit, evaluate or predict runs. Its training state
  // (training_state.h) holds the optimizer and stop_training.
  virtual void set_model(const layers::LayerPtr &model) { model_ = model; }
  const layers::LayerPtr &model() const { return model_; }
  virtual void set_params(const CallbackParams &params) { params_ = params; }
  const CallbackParams &params() const { return params_; }

  // The Keras hooks. Logs may be read and changed (ReduceLROnPlateau adds "learning_rate").
  // epoch and batch count from 0, as Keras passes them.
  virtual void on_train_begin(Logs &) {}
  virtual void on_train_end(Logs &) {}
  virtual void on_epoch_begin(int64_t /*epoch*/, Logs &) {}
  virtual void on_epoch_end(int64_t /*epoch*/, Logs &) {}
  virtual void on_train_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_train_batch_end(int64_t /*batch*/, Logs &) {}
  virtual void on_test_begin(Logs &) {}
  virtual void on_test_end(Logs &) {}
  virtual void on_test_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_test_batch_end(int64_t /*batch*/, Logs &) {}
  virtual void on_predict_begin(Logs &) {}
  virtual void on_predict_end(Logs &) {}
  virtual void on_predict_batch_begin(int64_t /*batch*/, Logs &) {}
  virtual void on_predict_batch_end(int64_t /*batch*/, Logs &) {}

 private:
  std::string class_name_;
  layers::LayerPtr model_;
  CallbackParams params_;
};

using CallbackPtr = std::shared_ptr<Callback>;

// Keras's History: history[name] holds one value per epoch, epoch the epoch numbers. fit returns it.
class History : public Callback {
 public:
  History() : Callback("History") {}
  void on_train_begin(Logs &) override;
  void on_epoch_end(int64_t e, Logs &logs) override;
  // {"epoch": [...], "keys": [names in first-seen order], "history": {name: [values]}}: a copy
  // taken under the lock, so it may be read while fit runs on another thread. Values may be
  // non-finite.
  Config record() const;
  // Read these directly only when no fit is running.
  std::vector<int64_t> epoch;
  std::map<std::string, std::vector<double>> history;  // ordered by name; keys() order below
  std::vector<std::string> keys;                       // names in first-seen order

 private:
  mutable std::mutex mu_;
};

// Keras's CallbackList: calls each callback's hook in list order. With add_history a History is
// appended unless the list has one; with add_progbar a ProgbarLogger is appended unless the list
// has one (Keras 3's _add_default_callbacks). set_model / set_params reach every callback.
class CallbackList {
 public:
  CallbackList(std::vector<CallbackPtr> callbacks, bool add_history, bool add_progbar,
               const layers::LayerPtr &model, const CallbackParams &params);
  const std::vector<CallbackPtr> &callbacks() const { return callbacks_; }
  // The History in the list (null without one).
  std::shared_ptr<History> history() const { return history_; }

  void on_train_begin(Logs &logs);
  void on_train_end(Logs &logs);
  void on_epoch_begin(int64_t epoch, Logs &logs);
  void on_epoch_end(int64_t epoch, Logs &logs);
  void on_train_batch_begin(int64_t batch, Logs &logs);
  void on_train_batch_end(int64_t batch, Logs &logs);
  void on_test_begin(Logs &logs);
  void on_test_end(Logs &logs);
  void on_test_batch_begin(int64_t batch, Logs &logs);
  void on_test_batch_end(int64_t batch, Logs &logs);
  void on_predict_begin(Logs &logs);
  void on_predict_end(Logs &logs);
  void on_predict_batch_begin(int64_t batch, Logs &logs);
  void on_predict_batch_end(int64_t batch, Logs &logs);

 private:
  template <typename F>
  void each(F &&f);
  std::vector<CallbackPtr> callbacks_;
  std::shared_ptr<History> history_;
};

// The registry of callback classes by name (as layers and optimizers): the built-ins, plus
// registered classes. Unknown names: NotFound listing the known ones; unknown config keys:
// InvalidArgument naming the key.
using CallbackFactory = std::function<CallbackPtr(const Config &config)>;
CallbackPtr create_callback(const std::string &class_name, const Config &config = Config());
void register_callback(const std::string &class_name, CallbackFactory factory);
std::vector<std::string> registered_callbacks();

// callbacks_builtin.cc: adds the built-in classes to the registry (called once, on first use).
void register_builtin_callbacks();

}  // namespace kiln::train

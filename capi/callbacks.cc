// Callbacks across the ABI: kiln_callback handles, each holding one shared reference to a core
// callback (as kiln_loss does).
#include "train/callbacks.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "capi/handles.h"
#include "capi/train_handles.h"
#include "train/checkpoint.h"
#include "train/progbar.h"

using kiln::capi::check_foreign;
using kiln::capi::config_or_empty;
using kiln::capi::require_not_null;

namespace {

using kiln::Code;
using kiln::fail;
using kiln::train::Logs;

// A hook's status as an exception of the same code, naming the callback and the hook.
void check_hook(kiln_status *st, const kiln::train::Callback &cb, const char *hook) {
  if (st) check_foreign(st, "callback " + cb.class_name() + " " + hook);
}

// The trampoline: a core callback whose hooks are the foreign table's.
class ForeignCallback final : public kiln::train::Callback {
 public:
  ForeignCallback(const std::string &class_name, const kiln_callback_table &t, void *user_data)
      : Callback(class_name), t_(t), user_data_(user_data) {}
  ~ForeignCallback() override {
    if (t_.destroy) t_.destroy(user_data_);
  }
  // Hands user_data to the callback: from now on its death calls destroy.
  void arm_destroy(void (*destroy)(void *)) { t_.destroy = destroy; }

  void on_train_begin(Logs &l) override { run(t_.on_train_begin, "on_train_begin", l); }
  void on_train_end(Logs &l) override { run(t_.on_train_end, "on_train_end", l); }
  void on_epoch_begin(int64_t e, Logs &l) override { run(t_.on_epoch_begin, "on_epoch_begin", e, l); }
  void on_epoch_end(int64_t e, Logs &l) override { run(t_.on_epoch_end, "on_epoch_end", e, l); }
  void on_train_batch_begin(int64_t b, Logs &l) override {
    run(t_.on_train_batch_begin, "on_train_batch_begin", b, l);
  }
  void on_train_batch_end(int64_t b, Logs &l) override {
    run(t_.on_train_batch_end, "on_train_batch_end", b, l);
  }
  void on_test_begin(Logs &l) override { run(t_.on_test_begin, "on_test_begin", l); }
  void on_test_end(Logs &l) override { run(t_.on_test_end, "on_test_end", l); }
  void on_test_batch_begin(int64_t b, Logs &l) override {
    run(t_.on_test_batch_begin, "on_test_batch_begin", b, l);
  }
  void on_test_batch_end(int64_t b, Logs &l) override {
    run(t_.on_test_batch_end, "on_test_batch_end", b, l);
  }
  void on_predict_begin(Logs &l) override { run(t_.on_predict_begin, "on_predict_begin", l); }
  void on_predict_end(Logs &l) override { run(t_.on_predict_end, "on_predict_end", l); }
  void on_predict_batch_begin(int64_t b, Logs &l) override {
    run(t_.on_predict_batch_begin, "on_predict_batch_begin", b, l);
  }
  void on_predict_batch_end(int64_t b, Logs &l) override {
    run(t_.on_predict_batch_end, "on_predict_batch_end", b, l);
  }

 private:
  using Hook = kiln_status *(*)(kiln_layer *, const kiln_config *, void *);
  using IndexHook = kiln_status *(*)(kiln_layer *, int64_t, const kiln_config *, void *);

  // Every hook gets a logs config, empty when there is nothing to log (Keras's CallbackList
  // hands each hook a dict, {} for None). As Keras's one logs dict, what the hook changes in it
  // reaches the callbacks after it and History.
  template <typename F>
  void call(const char *name, Logs &l, F &&f) {
    kiln_layer model{model_ptr()};
    kiln_config logs{l.to_config()};
    const kiln::Config before = logs.value;
    check_hook(f(model_ptr() ? &model : nullptr, &logs), *this, name);
    if (logs.value == before) return;  // (a NaN log reads as changed: read back, harmlessly)
    try {
      l = Logs::from_config(logs.value);
    } catch (const kiln::Error &e) {
      kiln::fail(e.code(), "callback ", class_name(), " ", name, " left ", e.what());
    }
  }
  void run(Hook h, const char *name, Logs &l) {
    if (h) call(name, l, [&](kiln_layer *m, const kiln_config *c) { return h(m, c, user_data_); });
  }
  void run(IndexHook h, const char *name, int64_t i, Logs &l) {
    if (h) call(name, l, [&](kiln_layer *m, const kiln_config *c) { return h(m, i, c, user_data_); });
  }
  kiln::layers::LayerPtr model_ptr() const { return model(); }

  kiln_callback_table t_;
  void *user_data_;
};

// Runs one hook of cb by its Keras name.
void call_hook_by_name(kiln::train::Callback &cb, const std::string &hook, int64_t i, Logs &l) {
  using C = kiln::train::Callback;
  static const std::pair<const char *, void (C::*)(Logs &)> plain[] = {
      {"on_train_begin", &C::on_train_begin}, {"on_train_end", &C::on_train_end},
      {"on_test_begin", &C::on_test_begin},   {"on_test_end", &C::on_test_end},
      {"on_predict_begin", &C::on_predict_begin}, {"on_predict_end", &C::on_predict_end}};
  static const std::pair<const char *, void (C::*)(int64_t, Logs &)> indexed[] = {
      {"on_epoch_begin", &C::on_epoch_begin},
      {"on_epoch_end", &C::on_epoch_end},
      {"on_train_batch_begin", &C::on_train_batch_begin},
      {"on_train_batch_end", &C::on_train_batch_end},
      {"on_test_batch_begin", &C::on_test_batch_begin},
      {"on_test_batch_end", &C::on_test_batch_end},
      {"on_predict_batch_begin", &C::on_predict_batch_begin},
      {"on_predict_batch_end", &C::on_predict_batch_end}};
  for (const auto &p : plain)
    if (hook == p.first) return (cb.*p.second)(l);
  for (const auto &p : indexed)
    if (hook == p.first) return (cb.*p.second)(i, l);
  std::string known;
  for (const auto &p : plain) known += std::string(known.empty() ? "" : ", ") + p.first;
  for (const auto &p : indexed) known += std::string(", ") + p.first;
  fail(Code::kInvalidArgument, "kiln_callback_call_hook: unknown hook '", hook, "'; expected one of ", known);
}

}  // namespace

extern "C" {

kiln_status *kiln_callback_create(kiln_callback **out, const char *class_name, const kiln_config *config) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  *out = new kiln_callback{kiln::train::create_callback(class_name, config_or_empty(config))};
  KILN_CAPI_END
}

kiln_status *kiln_callback_clone(kiln_callback **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  *out = new kiln_callback{callback->callback};
  KILN_CAPI_END
}

void kiln_callback_free(kiln_callback *callback) { delete callback; }

const char *kiln_callback_get_class_name(const kiln_callback *callback) {
  return callback ? callback->callback->class_name().c_str() : nullptr;
}

kiln_status *kiln_callback_get_history(kiln_config **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  auto *history = dynamic_cast<const kiln::train::History *>(callback->callback.get());
  if (!history)
    kiln::fail(kiln::Code::kFailedPrecondition, __func__, ": callback is a ", callback->callback->class_name(),
               "; expected a History (the callback fit returns)");
  *out = new kiln_config{history->record()};
  KILN_CAPI_END
}

}  // extern "C"

extern "C" {

kiln_status *kiln_callback_create_custom(kiln_callback **out, const char *class_name,
                                         const kiln_callback_table *table, void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(class_name, __func__, "class_name");
  require_not_null(table, __func__, "table");
  if (table->struct_size < offsetof(kiln_callback_table, destroy) + sizeof(table->destroy))
    fail(Code::kInvalidArgument, __func__, ": table->struct_size is ", table->struct_size,
         "; expected sizeof(kiln_callback_table)");
  if (!*class_name) fail(Code::kInvalidArgument, __func__, ": class_name is empty");
  kiln_callback_table t{};
  std::memcpy(static_cast<void *>(&t), table, std::min(table->struct_size, sizeof t));
  // Until the callback exists, user_data stays the caller's: a failed create must not destroy it.
  const auto destroy = t.destroy;
  t.destroy = nullptr;
  auto cb = std::make_shared<ForeignCallback>(class_name, t, user_data);
  *out = new kiln_callback{cb};
  cb->arm_destroy(destroy);
  KILN_CAPI_END
}

kiln_status *kiln_callback_create_lr_scheduler(kiln_callback **out, int verbose, kiln_lr_schedule_fn schedule,
                                               kiln_user_data_destroy_fn destroy, void *user_data) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(reinterpret_cast<const void *>(schedule), __func__, "schedule");
  auto state = std::make_shared<kiln::capi::ForeignUserData>(user_data);
  auto fn = [schedule, state](int64_t epoch, double lr) {
    double out_lr = lr;
    check_foreign(schedule(&out_lr, epoch, lr, state->user_data), "callback LearningRateScheduler schedule");
    return out_lr;
  };
  kiln::train::CallbackPtr cb = kiln::train::make_learning_rate_scheduler(fn, verbose);
  *out = new kiln_callback{std::move(cb)};
  state->destroy = destroy;  // handed over: the callback's death frees user_data
  KILN_CAPI_END
}

kiln_status *kiln_callback_call_hook(kiln_callback *callback, const char *hook, int64_t index, kiln_config *logs) {
  KILN_CAPI_BEGIN
  require_not_null(callback, __func__, "callback");
  require_not_null(hook, __func__, "hook");
  Logs l = logs ? Logs::from_config(logs->value) : Logs();
  call_hook_by_name(*callback->callback, hook, index, l);
  if (logs) logs->value = l.to_config();
  KILN_CAPI_END
}

kiln_status *kiln_callback_set_model(kiln_callback *callback, kiln_layer *model) {
  KILN_CAPI_BEGIN
  require_not_null(callback, __func__, "callback");
  callback->callback->set_model(model ? kiln::capi::layer_of(model, __func__, "model") : nullptr);
  KILN_CAPI_END
}

kiln_status *kiln_callback_get_params(kiln_config **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  const kiln::train::CallbackParams &p = callback->callback->params();
  kiln::Config c;
  c.set("verbose", p.verbose).set("epochs", p.epochs).set("steps", p.steps);
  *out = new kiln_config{std::move(c)};
  KILN_CAPI_END
}

kiln_status *kiln_callback_get_attributes(kiln_config **out, const kiln_callback *callback) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(callback, __func__, "callback");
  *out = new kiln_config{callback->callback->attributes()};
  KILN_CAPI_END
}

kiln_status *kiln_set_progress_callback(kiln_text_fn fn, kiln_is_terminal_fn is_terminal, void *user_data) {
  KILN_CAPI_BEGIN
  if (!fn) {
    kiln::train::set_progress_sink(nullptr);
    kiln::train::set_progress_terminal(nullptr);
  } else {
    kiln::train::set_progress_terminal(
        is_terminal ? std::function<bool()>([is_terminal, user_data] { return is_terminal(user_data); }) : nullptr);
    kiln::train::set_progress_sink([fn, user_data](const std::string &text) { fn(text.c_str(), user_data); });
  }
  KILN_CAPI_END
}

kiln_status *kiln_set_warning_callback(kiln_text_fn fn, void *user_data) {
  KILN_CAPI_BEGIN
  // Checkpoint restores' warnings (values no object took) go the same way as callbacks'.
  if (!fn) {
    kiln::train::set_callback_warning_sink(nullptr);
    kiln::train::set_checkpoint_warning_sink(nullptr);
  } else {
    kiln::train::set_callback_warning_sink([fn, user_data](const std::string &text) { fn(text.c_str(), user_data); });
    kiln::train::set_checkpoint_warning_sink(
        [fn, user_data](const std::string &text) { fn(text.c_str(), user_data); });
  }
  KILN_CAPI_END
}

}  // extern "C"

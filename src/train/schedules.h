// Learning-rate schedules (keras.optimizers.schedules): a learning rate as a function of the
// optimizer's step, with Keras's formulas and configs, plus TF Model Garden's warm-up wrappers
// LinearWarmup and WarmUp (BERT's create_optimizer). Immutable once made, so one schedule may be
// shared by optimizers and threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace kiln::train {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  const std::string &class_name() const { return class_name_; }
  // The learning rate at `step` (the optimizer's iterations before the update): computed in
  // float32 as Keras computes it, returned as a double.
  virtual double operator()(int64_t step) const = 0;
  // Keras's get_config (the keys its from_config takes).
  virtual Config get_config() const = 0;
  // {"class_name": ..., "config": get_config()}.
  Config serialize() const;

 protected:
  explicit LearningRateSchedule(std::string class_name) : class_name_(std::move(class_name)) {}

 private:
  std::string class_name_;
};

using SchedulePtr = std::shared_ptr<const LearningRateSchedule>;

// A schedule from its class name ("ExponentialDecay", ..., or Keras's snake-case alias
// "exponential_decay") and config; unknown classes are NotFound, unknown keys and bad values
// InvalidArgument naming them.
SchedulePtr make_schedule(const std::string &class_name, const Config &config);
// From the serialized form {"class_name": ..., "config": {...}}.
SchedulePtr deserialize_schedule(const Config &serialized);
// The built-in class names.
std::vector<std::string> schedule_classes();

// A custom schedule (a subclass of Keras's LearningRateSchedule written in C++, Python, ...):
// fn(step) is the learning rate at step, get_config() its config for serialize(). fn and
// get_config may throw kiln::Error; an empty get_config is Keras's base class without one
// (serialize() is UNIMPLEMENTED, as its NotImplementedError). It is not in the registry:
// deserialize_schedule does not know its class.
SchedulePtr make_function_schedule(std::string class_name, std::function<double(int64_t)> fn,
                                   std::function<Config()> get_config);

}  // namespace kiln::train

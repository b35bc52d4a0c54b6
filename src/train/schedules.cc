#include "train/schedules.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"

namespace kiln::train {

Config LearningRateSchedule::serialize() const {
  Config c;
  c.set("class_name", class_name_).set("config", get_config());
  return c;
}

namespace {

// Keras computes a schedule in floatx (float32 by default): each setting and the step are cast to
// float32 first, then every operation rounds to float32 in Keras's order (the Python floats Keras
// mixes in, such as CosineDecay's 1 - alpha, are computed in double and then cast, as TensorFlow
// converts them). The result is returned widened to double, so a float32 model's learning rate
// has Keras's bits, and a float64 model's is Keras's float32 value cast, as Keras (floatx float32)
// casts it. cos, pow and log are the C library's, as TensorFlow's CPU kernels without XLA.
float f32(double v) { return static_cast<float>(v); }
float f32(int64_t step) { return static_cast<float>(step); }
const float kPi = f32(3.14159265358979323846);

// Steps and step counts are written back as ints when they are whole numbers (as Keras users
// write them), so a config read from JSON round-trips unchanged.
void set_number(Config &c, const char *key, double v) {
  if (std::floor(v) == v && std::fabs(v) < 9007199254740992.0)
    c.set(key, static_cast<int64_t>(v));
  else
    c.set(key, v);
}

void require_key(ConfigReader &r, const char *key) {
  if (!r.has(key)) fail(Code::kInvalidArgument, r.owner(), ": config key '", key, "' is required");
}

double required_float(ConfigReader &r, const char *key) {
  require_key(r, key);
  return r.get_float(key, 0.0);
}

std::vector<double> required_float_list(ConfigReader &r, const char *key) {
  require_key(r, key);
  try {
    return r.config().get_float_list(key);
  } catch (const Error &e) {
    fail(e.code(), r.owner(), ": ", e.what());
  }
}

double positive_decay_steps(ConfigReader &r) {
  const double steps = required_float(r, "decay_steps");
  if (!(steps > 0)) fail(Code::kInvalidArgument, r.owner(), ": decay_steps must be > 0; got ", steps);
  return steps;
}

// warmup_steps, required (LinearWarmup, WarmUp) or 0 when absent (CosineDecay); >= 0 either way.
double nonnegative_warmup_steps(ConfigReader &r, bool required) {
  const double steps = required ? required_float(r, "warmup_steps") : r.get_float("warmup_steps", 0.0);
  if (steps < 0) fail(Code::kInvalidArgument, r.owner(), ": warmup_steps must be >= 0; got ", steps);
  return steps;
}

// The base of every schedule: its name.
class Named : public LearningRateSchedule {
 protected:
  Named(const char *class_name, ConfigReader &r, const char *default_name)
      : LearningRateSchedule(class_name), name_(r.get_string("name", default_name)) {}
  std::string name_;
};

// ExponentialDecay / InverseTimeDecay share their arguments.
class TimeDecay : public Named {
 public:
  TimeDecay(const char *class_name, ConfigReader &r, bool inverse)
      : Named(class_name, r, class_name),
        initial_(required_float(r, "initial_learning_rate")),
        steps_(positive_decay_steps(r)),
        rate_(required_float(r, "decay_rate")),
        staircase_(r.get_bool("staircase", false)),
        inverse_(inverse) {}
  double operator()(int64_t step) const override {
    float p = f32(step) / f32(steps_);
    if (staircase_) p = std::floor(p);
    return inverse_ ? f32(initial_) / (1.0f + f32(rate_) * p) : f32(initial_) * std::pow(f32(rate_), p);
  }
  Config get_config() const override {
    Config c;
    c.set("initial_learning_rate", initial_);
    set_number(c, "decay_steps", steps_);
    c.set("decay_rate", rate_).set("staircase", staircase_).set("name", name_);
    return c;
  }

 private:
  double initial_, steps_, rate_;
  bool staircase_, inverse_;
};

class PiecewiseConstantDecay final : public Named {
 public:
  explicit PiecewiseConstantDecay(ConfigReader &r)
      : Named("PiecewiseConstantDecay", r, "PiecewiseConstant"),
        boundaries_(required_float_list(r, "boundaries")),
        values_(required_float_list(r, "values")) {
    if (boundaries_.size() + 1 != values_.size())
      fail(Code::kInvalidArgument, r.owner(), ": boundaries (", boundaries_.size(),
           ") must be one shorter than values (", values_.size(), ")");
    for (double b : boundaries_) steps_.push_back(as_step(b));
  }
  // Keras's sum of indicator terms in float32 (so unsorted boundaries give what Keras gives),
  // comparing the integer step with the boundaries cast to its int64.
  double operator()(int64_t step) const override {
    if (boundaries_.empty()) return f32(values_[0]);
    float r = 0;
    if (step <= steps_.front()) r += f32(values_.front());
    if (step > steps_.back()) r += f32(values_.back());
    for (size_t i = 0; i + 1 < steps_.size(); ++i)
      if (step > steps_[i] && step <= steps_[i + 1]) r += f32(values_[i + 1]);
    return r;
  }
  Config get_config() const override {
    Config c;
    const bool whole =
        std::all_of(boundaries_.begin(), boundaries_.end(), [](double b) { return std::floor(b) == b; });
    if (whole)
      c.set("boundaries", std::vector<int64_t>(boundaries_.begin(), boundaries_.end()));
    else
      c.set("boundaries", boundaries_);
    c.set("values", values_).set("name", name_);
    return c;
  }

 private:
  // Keras keeps an int boundary exact and casts a float one to float32 and then to the step's
  // int64 (toward zero); NaN and values beyond int64 give x86's "integer indefinite", as
  // TensorFlow's cast does there. (A config keeps no difference between 10 and 10.0, so every
  // whole number is taken as the int.)
  static int64_t as_step(double b) {
    if (std::floor(b) == b && std::fabs(b) < 9.2e18) return static_cast<int64_t>(b);
    const float v = f32(b);
    if (!(std::fabs(v) < 9.2233720368547758e18f)) return INT64_MIN;
    return static_cast<int64_t>(v);
  }
  std::vector<double> boundaries_, values_;
  std::vector<int64_t> steps_;
};

class PolynomialDecay final : public Named {
 public:
  explicit PolynomialDecay(ConfigReader &r)
      : Named("PolynomialDecay", r, "PolynomialDecay"),
        initial_(required_float(r, "initial_learning_rate")),
        steps_(positive_decay_steps(r)),
        end_(r.get_float("end_learning_rate", 0.0001)),
        power_(r.get_float("power", 1.0)),
        cycle_(r.get_bool("cycle", false)) {}
  double operator()(int64_t step) const override {
    float s = f32(step), steps = f32(steps_);
    if (cycle_)
      steps *= s == 0 ? 1.0f : std::ceil(s / f32(steps_));
    else
      s = std::min(s, steps);
    const float p = s / steps;
    return (f32(initial_) - f32(end_)) * std::pow(1.0f - p, f32(power_)) + f32(end_);
  }
  Config get_config() const override {
    Config c;
    c.set("initial_learning_rate", initial_);
    set_number(c, "decay_steps", steps_);
    c.set("end_learning_rate", end_).set("power", power_).set("cycle", cycle_).set("name", name_);
    return c;
  }

 private:
  double initial_, steps_, end_, power_;
  bool cycle_;
};

class CosineDecay final : public Named {
 public:
  explicit CosineDecay(ConfigReader &r)
      : Named("CosineDecay", r, "CosineDecay"),
        initial_(required_float(r, "initial_learning_rate")),
        steps_(positive_decay_steps(r)),
        alpha_(r.get_float("alpha", 0.0)),
        has_target_(r.has("warmup_target")),
        target_(r.get_float("warmup_target", 0.0)),
        warmup_steps_(nonnegative_warmup_steps(r, false)) {}
  double operator()(int64_t step) const override {
    float s = f32(step);
    const float steps = f32(steps_), warmup = f32(warmup_steps_), target = f32(target_);
    if (!has_target_) return decay(std::min(s, steps), f32(initial_));
    s = std::min(s, steps + warmup);
    if (s < warmup) return (target - f32(initial_)) * (s / warmup) + f32(initial_);
    return decay(s - warmup, target);
  }
  Config get_config() const override {
    Config c;
    c.set("initial_learning_rate", initial_);
    set_number(c, "decay_steps", steps_);
    c.set("alpha", alpha_).set("name", name_);
    if (has_target_)
      c.set("warmup_target", target_);
    else
      c.set_null("warmup_target");
    set_number(c, "warmup_steps", warmup_steps_);
    return c;
  }

 private:
  float decay(float s, float from) const {
    const float cosine = 0.5f * (1.0f + std::cos(kPi * (s / f32(steps_))));
    return from * (f32(1 - alpha_) * cosine + f32(alpha_));  // Keras: (1 - self.alpha) in Python
  }
  double initial_, steps_, alpha_;
  bool has_target_;
  double target_, warmup_steps_;
};

// Keras's CosineDecayRestarts (SGDR): cosine decay over first_decay_steps, then restarts, each
// period t_mul times the last and each restart's peak m_mul times the last.
class CosineDecayRestarts final : public Named {
 public:
  explicit CosineDecayRestarts(ConfigReader &r)
      : Named("CosineDecayRestarts", r, "SGDRDecay"),
        initial_(required_float(r, "initial_learning_rate")),
        first_steps_(required_float(r, "first_decay_steps")),
        t_mul_(r.get_float("t_mul", 2.0)),
        m_mul_(r.get_float("m_mul", 1.0)),
        alpha_(r.get_float("alpha", 0.0)) {
    if (!(first_steps_ > 0))
      fail(Code::kInvalidArgument, r.owner(), ": first_decay_steps must be > 0; got ", first_steps_);
  }
  double operator()(int64_t step) const override {
    const float t_mul = f32(t_mul_), alpha = f32(alpha_);
    float fraction = f32(step) / f32(first_steps_);
    float restart;
    if (t_mul == 1.0f) {
      restart = std::floor(fraction);
      fraction -= restart;
    } else {  // periods grow geometrically: find the one holding fraction
      restart = std::floor(std::log(1.0f - fraction * (1.0f - t_mul)) / std::log(t_mul));
      const float done = (1.0f - std::pow(t_mul, restart)) / (1.0f - t_mul);
      fraction = (fraction - done) / std::pow(t_mul, restart);
    }
    const float cosine = 0.5f * std::pow(f32(m_mul_), restart) * (1.0f + std::cos(kPi * fraction));
    return f32(initial_) * ((1.0f - alpha) * cosine + alpha);
  }
  Config get_config() const override {
    Config c;
    c.set("initial_learning_rate", initial_);
    set_number(c, "first_decay_steps", first_steps_);
    c.set("t_mul", t_mul_).set("m_mul", m_mul_).set("alpha", alpha_).set("name", name_);
    return c;
  }

 private:
  double initial_, first_steps_, t_mul_, m_mul_, alpha_;
};

// What a warm-up hands over to: a serialized schedule or a float (Model Garden's wrappers take
// either).
class Handover {
 public:
  Handover(ConfigReader &r, const char *key) : key_(key) {
    require_key(r, key);
    if (r.config().type(key) == Config::Type::kConfig)
      schedule_ = deserialize_schedule(r.config().get_config(key));
    else
      value_ = r.get_float(key, 0.0);
  }
  float operator()(int64_t step) const { return schedule_ ? f32((*schedule_)(step)) : f32(value_); }
  void add_to(Config &c) const {
    if (schedule_)
      c.set(key_, schedule_->serialize());
    else
      c.set(key_, value_);
  }

 private:
  const char *key_;
  SchedulePtr schedule_;
  double value_ = 0.0;
};

// TF Model Garden's WarmUp (official.nlp.optimization, which BERT's create_optimizer uses):
// initial_learning_rate * (step / warmup_steps)^power during the warm-up, then
// decay_schedule_fn(step) (at the same step, not shifted). Float32, as Model Garden's.
class WarmUp final : public Named {
 public:
  explicit WarmUp(ConfigReader &r)
      : Named("WarmUp", r, "WarmUp"),
        initial_(required_float(r, "initial_learning_rate")),
        after_(r, "decay_schedule_fn"),
        warmup_steps_(nonnegative_warmup_steps(r, true)),
        power_(r.get_float("power", 1.0)) {}
  double operator()(int64_t step) const override {
    const float s = f32(step), warmup = f32(warmup_steps_);
    if (s < warmup) return f32(initial_) * std::pow(s / warmup, f32(power_));
    return after_(step);
  }
  Config get_config() const override {
    Config c;
    c.set("initial_learning_rate", initial_);
    after_.add_to(c);
    set_number(c, "warmup_steps", warmup_steps_);
    c.set("power", power_).set("name", name_);
    return c;
  }

 private:
  double initial_;
  Handover after_;
  double warmup_steps_, power_;
};

// TF Model Garden's LinearWarmup: from warmup_learning_rate, linearly to the wrapped schedule's
// value at warmup_steps, then the wrapped schedule (at the same step, not shifted: BERT's
// warm-up + polynomial decay). after_warmup_lr_sched is a serialized schedule or a float.
class LinearWarmup final : public Named {
 public:
  explicit LinearWarmup(ConfigReader &r)
      : Named("LinearWarmup", r, "LinearWarmup"),
        after_(r, "after_warmup_lr_sched"),
        warmup_steps_(nonnegative_warmup_steps(r, true)),
        warmup_lr_(r.get_float("warmup_learning_rate", 0.0)),
        final_lr_(after_(static_cast<int64_t>(warmup_steps_))) {}
  // Model Garden's float32 formula: init + s / warmup_steps * (final - init).
  double operator()(int64_t step) const override {
    const float s = f32(step), warmup = f32(warmup_steps_), init = f32(warmup_lr_);
    if (s < warmup) return init + s / warmup * (final_lr_ - init);
    return after_(step);
  }
  Config get_config() const override {
    Config c;
    after_.add_to(c);
    set_number(c, "warmup_steps", warmup_steps_);
    c.set("warmup_learning_rate", warmup_lr_).set("name", name_);
    return c;
  }

 private:
  Handover after_;
  double warmup_steps_, warmup_lr_;
  float final_lr_;
};

using ScheduleFactory = std::function<SchedulePtr(ConfigReader &r)>;

const std::map<std::string, ScheduleFactory> &factories() {
  static const std::map<std::string, ScheduleFactory> f = {
      {"ExponentialDecay",
       [](ConfigReader &r) { return std::make_shared<TimeDecay>("ExponentialDecay", r, false); }},
      {"InverseTimeDecay",
       [](ConfigReader &r) { return std::make_shared<TimeDecay>("InverseTimeDecay", r, true); }},
      {"PiecewiseConstantDecay", [](ConfigReader &r) { return std::make_shared<PiecewiseConstantDecay>(r); }},
      {"PolynomialDecay", [](ConfigReader &r) { return std::make_shared<PolynomialDecay>(r); }},
      {"CosineDecay", [](ConfigReader &r) { return std::make_shared<CosineDecay>(r); }},
      {"CosineDecayRestarts", [](ConfigReader &r) { return std::make_shared<CosineDecayRestarts>(r); }},
      {"LinearWarmup", [](ConfigReader &r) { return std::make_shared<LinearWarmup>(r); }},
      {"WarmUp", [](ConfigReader &r) { return std::make_shared<WarmUp>(r); }},
  };
  return f;
}

// "exponential_decay" -> "ExponentialDecay".
std::string from_snake_case(const std::string &s) {
  std::string out;
  bool up = true;
  for (char ch : s) {
    if (ch == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch))) : ch;
    up = false;
  }
  return out;
}

}  // namespace

SchedulePtr make_schedule(const std::string &class_name, const Config &config) {
  auto it = factories().find(class_name);
  if (it == factories().end()) it = factories().find(from_snake_case(class_name));
  if (it == factories().end()) {
    std::string known;
    for (const auto &kv : factories()) known += (known.empty() ? "" : ", ") + kv.first;
    fail(Code::kNotFound, "learning rate schedule: unknown class '", class_name, "'; known: ", known,
         " (a custom schedule is set on its optimizer in code: load a model compiled with one with "
         "compile=false and compile it again)");
  }
  ConfigReader r(config, it->first);
  SchedulePtr s = it->second(r);
  r.finish();
  return s;
}

SchedulePtr deserialize_schedule(const Config &serialized) {
  if (!serialized.has("class_name"))
    fail(Code::kInvalidArgument,
         "learning rate schedule: the serialized form needs 'class_name' (and 'config')");
  ConfigReader outer(serialized, "learning rate schedule");
  const std::string class_name = outer.get_string("class_name", "");
  const Config config = outer.get_optional_config("config").value_or(Config());
  outer.accept({"module", "registered_name"});  // Keras 3's serialized form carries these too
  outer.finish();
  return make_schedule(class_name, config);
}

namespace {

class FunctionSchedule : public LearningRateSchedule {
 public:
  FunctionSchedule(std::string class_name, std::function<double(int64_t)> fn, std::function<Config()> config)
      : LearningRateSchedule(std::move(class_name)), fn_(std::move(fn)), config_(std::move(config)) {}
  double operator()(int64_t step) const override { return fn_(step); }
  Config get_config() const override {
    if (!config_)
      fail(Code::kUnimplemented, "learning rate schedule '", class_name(),
           "' must override get_config() in order to be serializable");
    return config_();
  }

 private:
  std::function<double(int64_t)> fn_;
  std::function<Config()> config_;
};

}  // namespace

SchedulePtr make_function_schedule(std::string class_name, std::function<double(int64_t)> fn,
                                   std::function<Config()> get_config) {
  if (class_name.empty()) fail(Code::kInvalidArgument, "learning rate schedule: a custom schedule needs a class name");
  if (!fn) fail(Code::kInvalidArgument, "learning rate schedule ", class_name, ": no function");
  return std::make_shared<FunctionSchedule>(std::move(class_name), std::move(fn), std::move(get_config));
}

std::vector<std::string> schedule_classes() {
  std::vector<std::string> names;
  for (const auto &kv : factories()) names.push_back(kv.first);
  return names;
}

}  // namespace kiln::train

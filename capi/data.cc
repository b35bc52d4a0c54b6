// The input pipeline across the ABI: kiln_dataset and kiln_iterator handles over the core's
// datasets, the trampolines of the generator, map and predicate callback tables, and the readers.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>

#include "capi/data_handle.h"
#include "capi/handles.h"
#include "capi/options.h"
#include "data/dataset.h"
#include "data/readers.h"

using kiln::Code;
using kiln::fail;
using kiln::Tensor;
using kiln::capi::element_of;
using kiln::capi::require_array_fits;
using kiln::capi::require_not_null;
namespace data = kiln::data;

struct kiln_iterator {
  data::IteratorPtr iterator;
  std::mutex mu;  // one kiln_iterator_next at a time: each element goes to one caller
  bool ended = false;
};

namespace {

const data::DatasetPtr &dataset_of(const kiln_dataset *d, const char *fn, const char *arg = "ds") {
  require_not_null(d, fn, arg);
  return d->dataset;
}

const std::vector<Tensor> &list_of(const kiln_tensor_list *l, const char *fn, const char *arg) {
  require_not_null(l, fn, arg);
  return l->tensors;
}

std::vector<std::string> names_from_c(const char *const *names, size_t n, const char *fn) {
  std::vector<std::string> out;
  if (!names) return out;
  for (size_t i = 0; i < n; ++i) {
    if (!names[i]) fail(Code::kInvalidArgument, fn, ": names[", i, "] is NULL");
    out.emplace_back(names[i]);
  }
  return out;
}

// The body of the entry points that make one dataset from others: *out = make().
template <typename F>
kiln_status *make_dataset(kiln_dataset **out, const char *fn, F &&make) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  data::DatasetPtr d = make();
  *out = new kiln_dataset{std::move(d)};
  KILN_CAPI_END_AS(fn)
}

// A callback's status as an exception with its code and message unchanged.
void check_callback(kiln_status *st) { kiln::capi::check_foreign(st, std::string()); }

// A copied callback table and its user_data; destroy runs when the last dataset or iterator
// holding it goes, once armed (a failed constructor leaves user_data with the caller).
template <typename Table>
struct Callbacks {
  Table table{};
  void *user_data = nullptr;
  bool armed = false;
  ~Callbacks() {
    if (armed && table.destroy) table.destroy(user_data);
  }
};

// The caller's table, of which the fields up to and including `required` must be present.
template <typename Table>
std::shared_ptr<Callbacks<Table>> copy_table(const Table *t, size_t v1_size, void *user_data,
                                             const char *fn) {
  require_not_null(t, fn, "callbacks");
  if (t->struct_size < v1_size)
    fail(Code::kInvalidArgument, fn, ": callbacks->struct_size is ", t->struct_size, "; expected at least ",
         v1_size, " (set it to sizeof the table)");
  auto cb = std::make_shared<Callbacks<Table>>();
  std::memcpy(static_cast<void *>(&cb->table), t, std::min(t->struct_size, sizeof(Table)));
  cb->user_data = user_data;
  return cb;
}

// One pass of a C generator: finish runs when the pass ends or its iterator goes.
struct GeneratorPass {
  std::shared_ptr<Callbacks<kiln_generator_callbacks>> cb;
  void *state = nullptr;
  bool open = false;
  void close() {
    if (open && cb->table.finish) cb->table.finish(state, cb->user_data);
    open = false;
  }
  ~GeneratorPass() { close(); }
};

kiln_csv_options csv_defaults() {
  kiln_csv_options d{};
  d.struct_size = sizeof d;
  d.header = true;
  d.delimiter = ',';
  return d;
}
constexpr size_t kCsvOptionsV1 = KILN_OPTIONS_V1_SIZE(kiln_csv_options, skip_text_columns);

}  // namespace

extern "C" {

kiln_status *kiln_dataset_from_tensors(kiln_dataset **out, const kiln_tensor_list *components,
                                       const char *const *names) {
  return make_dataset(out, __func__, [&] {
    const auto &c = list_of(components, "kiln_dataset_from_tensors", "components");
    return data::from_tensors(c, names_from_c(names, c.size(), "kiln_dataset_from_tensors"));
  });
}

kiln_status *kiln_dataset_from_tensor_slices(kiln_dataset **out, const kiln_tensor_list *components,
                                             const char *const *names) {
  return make_dataset(out, __func__, [&] {
    const auto &c = list_of(components, "kiln_dataset_from_tensor_slices", "components");
    return data::from_tensor_slices(c, names_from_c(names, c.size(), "kiln_dataset_from_tensor_slices"));
  });
}

kiln_status *kiln_dataset_range(kiln_dataset **out, int64_t start, int64_t stop, int64_t step) {
  return make_dataset(out, __func__, [&] { return data::range(start, stop, step); });
}

kiln_status *kiln_dataset_from_generator(kiln_dataset **out, const kiln_generator_callbacks *callbacks,
                                         void *user_data) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    auto cb = copy_table(callbacks, KILN_OPTIONS_V1_SIZE(kiln_generator_callbacks, next), user_data, fn);
    if (!cb->table.next) fail(Code::kInvalidArgument, fn, ": callbacks->next is NULL");
    data::DatasetPtr d = data::from_generator([cb]() -> data::NextFn {
      auto pass = std::make_shared<GeneratorPass>();
      pass->cb = cb;
      if (cb->table.start) check_callback(cb->table.start(&pass->state, cb->user_data));
      pass->open = true;
      return [pass](data::Element *e) {
        if (!pass->open) return false;
        kiln_tensor_list list;
        bool end = false;
        check_callback(pass->cb->table.next(&list, &end, pass->state, pass->cb->user_data));
        if (end) {
          pass->close();
          return false;
        }
        *e = std::move(list.tensors);
        return true;
      };
    });
    cb->armed = true;
    return d;
  });
}

kiln_status *kiln_dataset_shuffle(kiln_dataset **out, const kiln_dataset *ds, int64_t buffer_size,
                                  int64_t seed, bool reshuffle_each_iteration) {
  return make_dataset(out, __func__, [&] {
    return data::shuffle(dataset_of(ds, "kiln_dataset_shuffle"), buffer_size, seed, reshuffle_each_iteration);
  });
}

kiln_status *kiln_dataset_batch(kiln_dataset **out, const kiln_dataset *ds, int64_t batch_size,
                                bool drop_remainder) {
  return make_dataset(out, __func__, [&] {
    return data::batch(dataset_of(ds, "kiln_dataset_batch"), batch_size, drop_remainder);
  });
}

kiln_status *kiln_dataset_padded_batch(kiln_dataset **out, const kiln_dataset *ds, int64_t batch_size,
                                       const int64_t *padded_dims, const size_t *padded_ranks,
                                       size_t num_padded_shapes, const kiln_tensor_list *padding_values,
                                       bool drop_remainder) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    std::vector<std::vector<int64_t>> shapes;
    if (num_padded_shapes) require_not_null(padded_ranks, fn, "padded_ranks");
    size_t at = 0;
    for (size_t i = 0; i < num_padded_shapes; ++i) {
      if (padded_ranks[i] > KILN_MAX_RANK)
        fail(Code::kInvalidArgument, fn, ": padded shape ", i, " has rank ", padded_ranks[i], "; at most ",
             KILN_MAX_RANK);
      if (padded_ranks[i]) require_not_null(padded_dims, fn, "padded_dims");
      shapes.emplace_back(padded_dims + at, padded_dims + at + padded_ranks[i]);
      at += padded_ranks[i];
    }
    data::Element pads = padding_values ? padding_values->tensors : data::Element{};
    return data::padded_batch(dataset_of(ds, fn), batch_size, std::move(shapes), std::move(pads),
                              drop_remainder);
  });
}

kiln_status *kiln_dataset_map(kiln_dataset **out, const kiln_dataset *ds, int64_t num_parallel_calls,
                              const kiln_map_callbacks *callbacks, void *user_data) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    const data::DatasetPtr &input = dataset_of(ds, fn);
    auto cb = copy_table(callbacks, KILN_OPTIONS_V1_SIZE(kiln_map_callbacks, map), user_data, fn);
    if (!cb->table.map) fail(Code::kInvalidArgument, fn, ": callbacks->map is NULL");
    data::DatasetPtr d = data::map(
        input,
        [cb](const data::Element &e) {
          kiln_tensor_list in{e};
          kiln_tensor_list result;
          check_callback(cb->table.map(&result, &in, cb->user_data));
          for (size_t i = 0; i < result.tensors.size(); ++i)
            if (!result.tensors[i].defined())
              fail(Code::kInvalidArgument, "map: the function's output ", i,
                   " is an empty slot; expected a tensor");
          return std::move(result.tensors);
        },
        num_parallel_calls);
    cb->armed = true;
    return d;
  });
}

kiln_status *kiln_dataset_filter(kiln_dataset **out, const kiln_dataset *ds,
                                 const kiln_predicate_callbacks *callbacks, void *user_data) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    const data::DatasetPtr &input = dataset_of(ds, fn);
    auto cb = copy_table(callbacks, KILN_OPTIONS_V1_SIZE(kiln_predicate_callbacks, predicate), user_data, fn);
    if (!cb->table.predicate) fail(Code::kInvalidArgument, fn, ": callbacks->predicate is NULL");
    data::DatasetPtr d = data::filter(input, [cb](const data::Element &e) {
      kiln_tensor_list in{e};
      bool keep = false;
      check_callback(cb->table.predicate(&keep, &in, cb->user_data));
      return keep;
    });
    cb->armed = true;
    return d;
  });
}

kiln_status *kiln_dataset_repeat(kiln_dataset **out, const kiln_dataset *ds, int64_t count) {
  return make_dataset(out, __func__,
                      [&] { return data::repeat(dataset_of(ds, "kiln_dataset_repeat"), count); });
}

kiln_status *kiln_dataset_take(kiln_dataset **out, const kiln_dataset *ds, int64_t count) {
  return make_dataset(out, __func__, [&] { return data::take(dataset_of(ds, "kiln_dataset_take"), count); });
}

kiln_status *kiln_dataset_skip(kiln_dataset **out, const kiln_dataset *ds, int64_t count) {
  return make_dataset(out, __func__, [&] { return data::skip(dataset_of(ds, "kiln_dataset_skip"), count); });
}

kiln_status *kiln_dataset_shard(kiln_dataset **out, const kiln_dataset *ds, int64_t num_shards,
                                int64_t index) {
  return make_dataset(out, __func__,
                      [&] { return data::shard(dataset_of(ds, "kiln_dataset_shard"), num_shards, index); });
}

kiln_status *kiln_dataset_zip(kiln_dataset **out, const kiln_dataset *const *datasets, size_t num_datasets) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    require_array_fits(num_datasets, sizeof(const kiln_dataset *), fn, "num_datasets");
    if (num_datasets) require_not_null(datasets, fn, "datasets");
    std::vector<data::DatasetPtr> ins;
    for (size_t i = 0; i < num_datasets; ++i) ins.push_back(element_of(datasets, i, fn, "datasets")->dataset);
    return data::zip(std::move(ins));
  });
}

kiln_status *kiln_dataset_concatenate(kiln_dataset **out, const kiln_dataset *ds, const kiln_dataset *other) {
  const char *fn = __func__;
  return make_dataset(out, fn,
                      [&] { return data::concatenate(dataset_of(ds, fn), dataset_of(other, fn, "other")); });
}

kiln_status *kiln_dataset_cache(kiln_dataset **out, const kiln_dataset *ds) {
  return make_dataset(out, __func__, [&] { return data::cache(dataset_of(ds, "kiln_dataset_cache")); });
}

kiln_status *kiln_dataset_prefetch(kiln_dataset **out, const kiln_dataset *ds, int64_t buffer_size) {
  return make_dataset(out, __func__,
                      [&] { return data::prefetch(dataset_of(ds, "kiln_dataset_prefetch"), buffer_size); });
}

kiln_status *kiln_dataset_unbatch(kiln_dataset **out, const kiln_dataset *ds) {
  return make_dataset(out, __func__, [&] { return data::unbatch(dataset_of(ds, "kiln_dataset_unbatch")); });
}

kiln_status *kiln_dataset_enumerate(kiln_dataset **out, const kiln_dataset *ds, int64_t start) {
  return make_dataset(out, __func__,
                      [&] { return data::enumerate(dataset_of(ds, "kiln_dataset_enumerate"), start); });
}

kiln_status *kiln_dataset_get_cardinality(int64_t *out, const kiln_dataset *ds) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  *out = dataset_of(ds, __func__)->cardinality();
  KILN_CAPI_END
}

size_t kiln_dataset_get_num_names(const kiln_dataset *ds) { return ds ? ds->dataset->names().size() : 0; }

const char *kiln_dataset_get_name(const kiln_dataset *ds, size_t index) {
  if (!ds || index >= ds->dataset->names().size()) return nullptr;
  return ds->dataset->names()[index].c_str();
}

kiln_status *kiln_dataset_clone(kiln_dataset **out, const kiln_dataset *ds) {
  return make_dataset(out, __func__, [&] { return dataset_of(ds, "kiln_dataset_clone"); });
}

void kiln_dataset_free(kiln_dataset *ds) { delete ds; }

kiln_status *kiln_dataset_make_iterator(kiln_iterator **out, const kiln_dataset *ds) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  auto it = std::make_unique<kiln_iterator>();
  it->iterator = dataset_of(ds, __func__)->make_iterator();
  *out = it.release();
  KILN_CAPI_END
}

kiln_status *kiln_iterator_next(kiln_tensor_list **out, bool *end, kiln_iterator *it) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(end, __func__, "end");
  require_not_null(it, __func__, "it");
  data::Element e;
  std::lock_guard<std::mutex> lock(it->mu);
  if (it->ended || !it->iterator->next(&e)) {
    it->ended = true;
    *out = nullptr;
    *end = true;
    return nullptr;
  }
  *out = new kiln_tensor_list{std::move(e)};
  *end = false;
  KILN_CAPI_END
}

void kiln_iterator_free(kiln_iterator *it) { delete it; }

kiln_status *kiln_read_idx(kiln_tensor **out, const char *path) {
  KILN_CAPI_BEGIN
  require_not_null(out, __func__, "out");
  require_not_null(path, __func__, "path");
  *out = kiln::capi::new_tensor(data::read_idx(path));
  KILN_CAPI_END
}

kiln_status *kiln_load_fashion_mnist(kiln_tensor **x_train, kiln_tensor **y_train, kiln_tensor **x_test,
                                     kiln_tensor **y_test, const char *dir) {
  KILN_CAPI_BEGIN
  require_not_null(x_train, __func__, "x_train");
  require_not_null(y_train, __func__, "y_train");
  require_not_null(x_test, __func__, "x_test");
  require_not_null(y_test, __func__, "y_test");
  data::FashionMnist f = data::load_fashion_mnist(dir ? dir : data::kFashionMnistDir);
  auto a = std::make_unique<kiln_tensor>(kiln_tensor{f.x_train});
  auto b = std::make_unique<kiln_tensor>(kiln_tensor{f.y_train});
  auto c = std::make_unique<kiln_tensor>(kiln_tensor{f.x_test});
  auto d = std::make_unique<kiln_tensor>(kiln_tensor{f.y_test});
  *x_train = a.release();
  *y_train = b.release();
  *x_test = c.release();
  *y_test = d.release();
  KILN_CAPI_END
}

kiln_status *kiln_csv_options_init(kiln_csv_options *options, size_t struct_size) {
  KILN_CAPI_BEGIN
  kiln::capi::init_options(options, struct_size, csv_defaults(), kCsvOptionsV1, __func__, "kiln_csv_options");
  KILN_CAPI_END
}

kiln_status *kiln_dataset_from_csv(kiln_dataset **out, const char *path, const kiln_csv_options *options) {
  const char *fn = __func__;
  return make_dataset(out, fn, [&] {
    require_not_null(path, fn, "path");
    const kiln_csv_options o =
        kiln::capi::read_options(options, csv_defaults(), kCsvOptionsV1, fn, "kiln_csv_options");
    data::CsvOptions c;
    c.header = o.header;
    c.delimiter = o.delimiter;
    c.skip_text_columns = o.skip_text_columns;
    if (o.num_column_types) require_not_null(o.column_types, fn, "options->column_types");
    for (size_t i = 0; i < o.num_column_types; ++i) {
      const int t = static_cast<int>(o.column_types[i]);
      if (t < KILN_CSV_AUTO || t > KILN_CSV_SKIP)
        fail(Code::kInvalidArgument, fn, ": column_types[", i, "] is ", t,
             "; expected KILN_CSV_AUTO (0) to KILN_CSV_SKIP (5)");
      c.column_types.push_back(static_cast<data::CsvType>(t));
    }
    return data::csv_dataset(path, c);
  });
}

}  // extern "C"

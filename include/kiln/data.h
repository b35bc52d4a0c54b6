/*
 * kiln/data.h — the tf.data-style input pipeline: datasets, iterators, and the IDX (MNIST),
 * Fashion-MNIST and CSV readers.
 * Part of the kiln C API (C99); include "kiln/kiln.h" for all of it.
 *
 * A kiln_dataset is an immutable description of a sequence of elements; each transformation
 * returns a new dataset and leaves its input as it was. An element is a list of tensors (its
 * components): one tensor, a tuple, or a dict when the dataset has names (one per component).
 * kiln_dataset_make_iterator starts one pass (an epoch); kiln_iterator_next hands the elements
 * out. A handle owns one reference to a shared dataset object: iterators keep their dataset
 * alive, so a dataset handle may be freed while its iterators run.
 *
 *   kiln_dataset *ds = NULL, *shuffled = NULL, *batched = NULL;
 *   kiln_iterator *it = NULL;
 *   kiln_tensor_list *batch = NULL;
 *   bool end = false;
 *   kiln_dataset_from_tensor_slices(&ds, xy, NULL);          // xy: a list {x[N, ...], y[N]}
 *   kiln_dataset_shuffle(&shuffled, ds, 1024, 7, true);
 *   kiln_dataset_batch(&batched, shuffled, 64, false);
 *   kiln_dataset_make_iterator(&it, batched);
 *   while (!kiln_iterator_next(&batch, &end, it) && !end) {
 *     ...                                                      // batch: {x[64, ...], y[64]}
 *     kiln_tensor_list_free(batch);
 *   }
 *   kiln_iterator_free(it);
 *
 * Threads: datasets may be shared between threads (they never change); each thread iterates
 * its own iterator. A parallel map and prefetch run pipeline threads that kernels use at one
 * thread each; kiln_iterator_free stops and joins them.
 */
#ifndef KILN_DATA_H
#define KILN_DATA_H

#include "kiln/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/** kiln_dataset_get_cardinality of an endless dataset (tf.data.INFINITE_CARDINALITY). */
#define KILN_DATASET_INFINITE_CARDINALITY (-1)
/** kiln_dataset_get_cardinality when kiln cannot tell (filter, generators: tf's UNKNOWN). */
#define KILN_DATASET_UNKNOWN_CARDINALITY (-2)
/** tf.data.AUTOTUNE, accepted by num_parallel_calls and prefetch's buffer_size: kiln picks
 *  one worker per processor (at least 2) for map, and 2 elements for prefetch. */
#define KILN_DATASET_AUTOTUNE (-1)

/* ------------------------------------------------------------------ sources */

/// One element of all the components (tf's Dataset.from_tensors). names: NULL (a tuple) or one
/// distinct UTF-8 name per component (a dict element). Ownership: *out is new, free with
/// kiln_dataset_free; the tensors are shared (immutable), the names copied.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_from_tensors(kiln_dataset **out, const kiln_tensor_list *components,
                                                const char *const *names);
/// One element per row of dim 0 (tf's Dataset.from_tensor_slices): every component needs rank >= 1 and
/// the same dim 0 (else INVALID_ARGUMENT naming both). names as kiln_dataset_from_tensors.
/// Ownership: *out is new; the tensors are shared, the names copied. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_from_tensor_slices(kiln_dataset **out, const kiln_tensor_list *components,
                                                      const char *const *names);
/// int64 scalars start, start + step, ... before stop (tf's Dataset.range); step 0 is INVALID_ARGUMENT.
/// Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_range(kiln_dataset **out, int64_t start, int64_t stop, int64_t step);

/// A data source in foreign code (tf's Dataset.from_generator). NULL entries mean "default".
/// Callbacks return NULL for success or a status (kiln_status_create) that comes out of
/// kiln_iterator_next with its code and message unchanged.
/// Threads: the calls of one pass run one at a time, never overlapping. next runs on the thread
/// that pulls from the dataset: the thread calling kiln_iterator_next, or a pipeline thread of a
/// parallel map or prefetch placed after it; start on the thread starting the pass (the one
/// calling kiln_dataset_make_iterator, or the puller when a repeat starts a new pass); finish
/// where the pass ends (the puller, or the thread freeing the iterator). Passes of different
/// iterators may run at once on different threads.
typedef struct kiln_generator_callbacks {
  size_t struct_size; /**< sizeof(kiln_generator_callbacks) */
  /// Starts a pass (each new iterator; repeat starts one per repetition): sets *state, the pass's
  /// state given to next and finish (it starts NULL). Default: none (state stays NULL).
  kiln_status *(*start)(void **state, void *user_data);
  /// Required. Appends the next element's components to out (an empty list) and leaves *end false,
  /// or sets *end to true when the pass has no more elements (out is then ignored).
  kiln_status *(*next)(kiln_tensor_list *out, bool *end, void *state, void *user_data);
  /// Ends a pass that start began: after its end, or when its iterator is freed before that (then
  /// on the thread freeing it). Default: nothing.
  void (*finish)(void *state, void *user_data);
  /// Frees user_data when the dataset and every iterator over it are gone. May run on any
  /// thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_generator_callbacks;

/// A dataset whose elements come from callbacks. callbacks is copied. Cardinality UNKNOWN.
/// Ownership: *out is new; on failure destroy is not called (user_data stays the caller's).
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_from_generator(kiln_dataset **out, const kiln_generator_callbacks *callbacks,
                                                  void *user_data);

/* ---------------------------------------------------------- transformations */

/// tf's Dataset.shuffle: fills a buffer of buffer_size (>= 1) elements and hands out one drawn
/// at random, replacing it with the next input element. seed >= 0 fixes the order (with the
/// global seed, kiln_set_seed); seed < 0 takes the next value of the global seed sequence, as
/// kiln's unseeded random ops do, so a program repeats after kiln_set_seed. With
/// reshuffle_each_iteration every iterator (epoch) draws a new order; else every one the same.
/// Ownership: *out is new; ds stays the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_shuffle(kiln_dataset **out, const kiln_dataset *ds, int64_t buffer_size,
                                           int64_t seed, bool reshuffle_each_iteration);
/// tf's Dataset.batch: stacks batch_size (>= 1) consecutive elements, component by component (a new
/// dim 0); the last, shorter batch is dropped when drop_remainder. Elements whose components differ
/// in shape or dtype give INVALID_ARGUMENT from kiln_iterator_next. Ownership: *out is new.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_batch(kiln_dataset **out, const kiln_dataset *ds, int64_t batch_size,
                                         bool drop_remainder);
/// tf's Dataset.padded_batch: batches components of varying shape, padding each to its padded
/// shape. padded_dims holds num_padded_shapes shapes one after the other, padded_ranks[i] dims
/// each; a -1 dim, or rank 0 for a component of higher rank, pads to the batch's longest.
/// num_padded_shapes 0: every dim pads to the batch's longest. padding_values: NULL (zeros), one
/// scalar per component of its dtype, or one for every component (as tf.data's single value).
/// Ownership: *out is new; the arrays and padding_values stay the caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_padded_batch(kiln_dataset **out, const kiln_dataset *ds, int64_t batch_size,
                                                const int64_t *padded_dims, const size_t *padded_ranks,
                                                size_t num_padded_shapes, const kiln_tensor_list *padding_values,
                                                bool drop_remainder);

/// A map function in foreign code (tf's Dataset.map). Callbacks return NULL or a status that
/// comes out of kiln_iterator_next with its code and message unchanged.
typedef struct kiln_map_callbacks {
  size_t struct_size; /**< sizeof(kiln_map_callbacks) */
  /// Required. Appends the output components to out (an empty list) computed from element (borrowed
  /// for the call). Threads: with num_parallel_calls 0 or 1, on the thread pulling from the map (see
  /// kiln_generator_callbacks); above 1, on the map's worker threads, several at once, with
  /// kernels at one thread.
  kiln_status *(*map)(kiln_tensor_list *out, const kiln_tensor_list *element, void *user_data);
  /// Frees user_data when the dataset and every iterator over it are gone; any thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_map_callbacks;

/// tf's Dataset.map(fn, num_parallel_calls): num_parallel_calls 0 or 1 maps on the iterating thread;
/// above 1 (at most 256), or KILN_DATASET_AUTOTUNE, maps on that many worker threads and keeps the
/// input order, so the output equals the serial map's. callbacks is copied. The output has no names.
/// Ownership: *out is new; on failure destroy is not called. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_map(kiln_dataset **out, const kiln_dataset *ds, int64_t num_parallel_calls,
                                       const kiln_map_callbacks *callbacks, void *user_data);

/// A predicate in foreign code (tf's Dataset.filter). Returns NULL or a status as the map callbacks.
typedef struct kiln_predicate_callbacks {
  size_t struct_size; /**< sizeof(kiln_predicate_callbacks) */
  /// Required. Sets *keep to whether element (borrowed for the call) stays. Runs on the thread
  /// pulling from the filter (see kiln_generator_callbacks).
  kiln_status *(*predicate)(bool *keep, const kiln_tensor_list *element, void *user_data);
  /// Frees user_data when the dataset and its iterators are gone; any thread. Default: nothing.
  void (*destroy)(void *user_data);
} kiln_predicate_callbacks;

/// tf's Dataset.filter: the elements for which the predicate says keep. Cardinality UNKNOWN (INFINITE
/// for an endless input). callbacks is copied. Ownership: *out is new; on failure destroy is not
/// called. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_filter(kiln_dataset **out, const kiln_dataset *ds,
                                          const kiln_predicate_callbacks *callbacks, void *user_data);
/// tf's Dataset.repeat: count passes over ds (count < 0: forever). Each pass is a new iterator of
/// ds (a shuffle before it reshuffles). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_repeat(kiln_dataset **out, const kiln_dataset *ds, int64_t count);
/// tf's Dataset.take: the first count elements (count < 0: all). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_take(kiln_dataset **out, const kiln_dataset *ds, int64_t count);
/// tf's Dataset.skip: all but the first count elements (count < 0: none). Ownership: *out is new.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_skip(kiln_dataset **out, const kiln_dataset *ds, int64_t count);
/// tf's Dataset.shard(num_shards, index): the elements at positions p with p % num_shards == index
/// (a data-parallel rank's share: shard(size, rank)). INVALID_ARGUMENT unless num_shards >= 1 and
/// 0 <= index < num_shards. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_shard(kiln_dataset **out, const kiln_dataset *ds, int64_t num_shards,
                                         int64_t index);
/// tf's Dataset.zip: elements of the datasets side by side, their components one after the other;
/// ends with the shortest. The output has no names. Ownership: *out is new; the datasets stay the
/// caller's. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_zip(kiln_dataset **out, const kiln_dataset *const *datasets, size_t num_datasets);
/// tf's Dataset.concatenate: ds's elements, then other's (same components and dtypes, else
/// INVALID_ARGUMENT from kiln_iterator_next). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_concatenate(kiln_dataset **out, const kiln_dataset *ds, const kiln_dataset *other);
/// tf's Dataset.cache() in memory: the first pass that reaches the end keeps the elements; later
/// passes read them instead of ds. Ownership: *out is new (it holds the cache). Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_cache(kiln_dataset **out, const kiln_dataset *ds);
/// tf's Dataset.prefetch: a background thread keeps up to buffer_size elements ready
/// (KILN_DATASET_AUTOTUNE: 2; 0: no prefetching, ds itself). Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_prefetch(kiln_dataset **out, const kiln_dataset *ds, int64_t buffer_size);
/// tf's Dataset.unbatch: each element's rows (dim 0) as elements. Ownership: *out is new.
/// Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_unbatch(kiln_dataset **out, const kiln_dataset *ds);
/// tf's Dataset.enumerate: (int64 index from start, components...). The output has no names.
/// Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_enumerate(kiln_dataset **out, const kiln_dataset *ds, int64_t start);

/* ------------------------------------------------------ datasets, iterators */

/// tf's dataset.cardinality(): the number of elements, KILN_DATASET_INFINITE_CARDINALITY or
/// KILN_DATASET_UNKNOWN_CARDINALITY. Ownership: nothing changes hands. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_get_cardinality(int64_t *out, const kiln_dataset *ds);
/// The number of component names: 0 unless the elements are dicts. 0 for NULL. Thread-safety: safe.
KILN_API size_t kiln_dataset_get_num_names(const kiln_dataset *ds);
/// The name of component index (UTF-8), or NULL for a bad index or NULL.
/// Lifetime: borrowed, valid while the handle lives. Thread-safety: safe.
KILN_API const char *kiln_dataset_get_name(const kiln_dataset *ds, size_t index);
/// A new handle to the same dataset. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_clone(kiln_dataset **out, const kiln_dataset *ds);
/// Frees a handle; the dataset lives on while other handles, datasets or iterators use it. Accepts NULL.
/// Thread-safety: safe.
KILN_API void kiln_dataset_free(kiln_dataset *ds);

/// Starts a pass over ds (iter(dataset)); prefetch and parallel maps start their threads now.
/// Ownership: *out is new, free with kiln_iterator_free. Thread-safety: safe; several iterators of
/// one dataset may run at once.
KILN_API kiln_status *kiln_dataset_make_iterator(kiln_iterator **out, const kiln_dataset *ds);
/// The next element: *out gets a new list of its components and *end false, or, after the last,
/// *out NULL and *end true (and so on every later call). An error (a callback's status, a bad
/// batch) comes back as a status; the pass may go on after it, as tf's does. Ownership: *out is
/// new, free with kiln_tensor_list_free. Thread-safety: safe, as a tf.data iterator shared by
/// threads: calls on one iterator take turns, each element goes to exactly one caller, and every
/// caller after the last element gets *end true.
KILN_API kiln_status *kiln_iterator_next(kiln_tensor_list **out, bool *end, kiln_iterator *it);
/// Frees an iterator, stopping and joining its pipeline threads (a callback already running
/// finishes first). Accepts NULL. Thread-safety: not while another thread uses it.
KILN_API void kiln_iterator_free(kiln_iterator *it);

/* ------------------------------------------------------------------ readers */

/// Reads an IDX file (the MNIST format: magic, big-endian dims, big-endian data), gzip or plain,
/// as a tensor of its dims: element type 0x08 gives uint8; 0x09 (int8), 0x0B (int16) and 0x0C
/// give int32; 0x0D float32; 0x0E float64. A missing file is NOT_FOUND; a corrupt or truncated
/// one DATA_LOSS naming the file and what is wrong. Ownership: *out is new. Thread-safety: safe.
KILN_API kiln_status *kiln_read_idx(kiln_tensor **out, const char *path);
/// keras.datasets.fashion_mnist.load_data(): uint8 x_train [60000, 28, 28], y_train [60000], x_test
/// [10000, 28, 28], y_test [10000] from train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte in dir (each with or without .gz). dir NULL:
/// /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). Errors as kiln_read_idx, and
/// DATA_LOSS when the images and labels do not match. Ownership: the four outputs are new; on
/// failure none is written. Thread-safety: safe.
KILN_API kiln_status *kiln_load_fashion_mnist(kiln_tensor **x_train, kiln_tensor **y_train, kiln_tensor **x_test,
                                              kiln_tensor **y_test, const char *dir);

/** Column types of CSV reading. Explicit values; append only. */
typedef enum kiln_csv_type {
  KILN_CSV_AUTO = 0,    /**< int32 when every value is an integer in range, int64 when one is not, else
                             float32; text otherwise (see skip_text_columns) */
  KILN_CSV_INT32 = 1,
  KILN_CSV_INT64 = 2,
  KILN_CSV_FLOAT32 = 3,
  KILN_CSV_FLOAT64 = 4,
  KILN_CSV_SKIP = 5,    /**< the column is left out */
  KILN_CSV_MIN_ENUM = -0x7FFFFFFF - 1, /**< not a value */
  KILN_CSV_MAX_ENUM = 0x7FFFFFFF       /**< not a value */
} kiln_csv_type;

/// Options of kiln_dataset_from_csv. Fill with kiln_csv_options_init first.
typedef struct kiln_csv_options {
  size_t struct_size;                /**< sizeof(kiln_csv_options) */
  bool header;                       /**< default true: the first record names the columns (else
                                          column_0, column_1, ...) */
  char delimiter;                    /**< default ',' */
  const kiln_csv_type *column_types; /**< NULL (default: every column AUTO) or one per column */
  size_t num_column_types;           /**< the length of column_types */
  bool skip_text_columns;            /**< default false: an AUTO column of text is INVALID_ARGUMENT
                                          naming it; true leaves it out */
} kiln_csv_options;

/// Fills options with the defaults. struct_size: sizeof(kiln_csv_options) as the caller compiled it.
/// Ownership: the caller's struct. Thread-safety: safe.
KILN_API kiln_status *kiln_csv_options_init(kiln_csv_options *options, size_t struct_size);
/// tf.data.experimental.make_csv_dataset's simple form: reads a CSV file (gzip or plain; RFC 4180
/// quotes) into a dataset of dict elements, one per record, named by the columns kept, each a
/// scalar of the column's type. A record with the wrong number of fields or an unclosed quote is
/// DATA_LOSS naming the file and line; a value that is not of its column's type INVALID_ARGUMENT
/// naming the line, the column and the value. options may be NULL (defaults).
/// Ownership: *out is new (the file is read now, not kept open). Thread-safety: safe.
KILN_API kiln_status *kiln_dataset_from_csv(kiln_dataset **out, const char *path, const kiln_csv_options *options);

#ifdef __cplusplus
}
#endif

#endif /* KILN_DATA_H */

/* kiln/data.h from plain C: datasets, every transformation, C callbacks (generator, map,
 * filter) and their errors, iterators freed early, and the IDX, Fashion-MNIST and CSV readers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"

/* ---------------------------------------------------------------- helpers */

static kiln_tensor *i64s(int64_t n, const int64_t *values) { return make(I64, 1, &n, values); }

static kiln_tensor_list *list_of(kiln_tensor *a, kiln_tensor *b) {
  kiln_tensor_list *l = NULL;
  if (status_failed(kiln_tensor_list_create(&l))) return NULL;
  if (a) kiln_status_free(kiln_tensor_list_append(l, a));
  if (b) kiln_status_free(kiln_tensor_list_append(l, b));
  return l;
}

/* Runs a pass over ds and writes component `c`'s first value of each element (as int64) to out;
 * returns the element count, or -1 after an error (the status message goes to *message when
 * given, else it is reported). */
static int64_t drain(const kiln_dataset *ds, size_t c, int64_t *out, int64_t capacity, kiln_status **error) {
  kiln_iterator *it = NULL;
  int64_t n = 0;
  if (status_failed(kiln_dataset_make_iterator(&it, ds))) return -1;
  for (;;) {
    kiln_tensor_list *e = NULL;
    kiln_tensor *t = NULL;
    bool end = false;
    kiln_status *st = kiln_iterator_next(&e, &end, it);
    if (st) {
      if (error) *error = st;
      else status_failed(st);
      n = -1;
      break;
    }
    if (end) {
      if (e) report("end with an element");
      break;
    }
    if (!status_failed(kiln_tensor_list_get(&t, e, c)) && n < capacity) {
      if (kiln_tensor_get_dtype(t) == I64) out[n] = ((const int64_t *)kiln_tensor_get_data(t))[0];
      else if (kiln_tensor_get_dtype(t) == I32) out[n] = ((const int32_t *)kiln_tensor_get_data(t))[0];
      else if (kiln_tensor_get_dtype(t) == U8) out[n] = ((const uint8_t *)kiln_tensor_get_data(t))[0];
      else out[n] = (int64_t)((const float *)kiln_tensor_get_data(t))[0];
    }
    ++n;
    kiln_tensor_free(t);
    kiln_tensor_list_free(e);
  }
  kiln_iterator_free(it);
  return n;
}

static int64_t cardinality(const kiln_dataset *ds) {
  int64_t n = -99;
  status_failed(kiln_dataset_get_cardinality(&n, ds));
  return n;
}

static int same(const int64_t *a, const int64_t *b, int64_t n) {
  int64_t i;
  for (i = 0; i < n; ++i)
    if (a[i] != b[i]) return 0;
  return 1;
}

static kiln_dataset *range_ds(int64_t start, int64_t stop) {
  kiln_dataset *d = NULL;
  status_failed(kiln_dataset_range(&d, start, stop, 1));
  return d;
}

/* ---------------------------------------------------------------- callbacks */

static int g_destroyed = 0;
static void count_destroy(void *user_data) {
  (void)user_data;
  ++g_destroyed;
}

/* x -> x * factor (user_data points at factor); element 113 fails with OUT_OF_RANGE. */
static kiln_status *times(kiln_tensor_list *out, const kiln_tensor_list *element, void *user_data) {
  kiln_tensor *x = NULL, *y = NULL;
  kiln_status *st = kiln_tensor_list_get(&x, element, 0);
  int64_t v;
  if (st) return st;
  v = ((const int64_t *)kiln_tensor_get_data(x))[0];
  kiln_tensor_free(x);
  if (v == 113) return kiln_status_create(KILN_STATUS_OUT_OF_RANGE, "thirteen is unlucky");
  v *= *(const int64_t *)user_data;
  st = kiln_tensor_create(&y, I64, NULL, 0, &v, sizeof v);
  if (!st) st = kiln_tensor_list_append(out, y);
  kiln_tensor_free(y);
  return st;
}

static kiln_status *is_odd(bool *keep, const kiln_tensor_list *element, void *user_data) {
  kiln_tensor *x = NULL;
  kiln_status *st = kiln_tensor_list_get(&x, element, 0);
  (void)user_data;
  if (st) return st;
  *keep = ((const int64_t *)kiln_tensor_get_data(x))[0] % 2 != 0;
  kiln_tensor_free(x);
  return NULL;
}

/* A generator of 0 .. limit-1 (user_data points at limit); the state counts. */
static int g_started = 0, g_finished = 0;
static kiln_status *gen_start(void **state, void *user_data) {
  int64_t *i = (int64_t *)malloc(sizeof *i);
  (void)user_data;
  if (!i) return kiln_status_create(KILN_STATUS_RESOURCE_EXHAUSTED, "malloc");
  *i = 0;
  *state = i;
  ++g_started;
  return NULL;
}
static kiln_status *gen_next(kiln_tensor_list *out, bool *end, void *state, void *user_data) {
  int64_t *i = (int64_t *)state;
  kiln_tensor *t = NULL;
  kiln_status *st;
  if (*i >= *(const int64_t *)user_data) {
    *end = true;
    return NULL;
  }
  st = kiln_tensor_create(&t, I64, NULL, 0, i, sizeof *i);
  ++*i;
  if (!st) st = kiln_tensor_list_append(out, t);
  kiln_tensor_free(t);
  return st;
}
static void gen_finish(void *state, void *user_data) {
  (void)user_data;
  free(state);
  ++g_finished;
}

/* ---------------------------------------------------------------- tests */

static void test_slices_batch_shuffle(void) {
  int64_t xs[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ys[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  const char *names[2] = {"x", "y"};
  kiln_tensor_list *l = list_of(i64s(10, xs), i64s(10, ys));
  kiln_dataset *d = NULL, *s = NULL, *s2 = NULL, *b = NULL, *bd = NULL, *bad = (kiln_dataset *)NULL;
  int64_t a1[10], a2[10], a3[10], got[10];
  EXPECT_OK(kiln_dataset_from_tensor_slices(&d, l, names));
  CHECK(cardinality(d) == 10);
  CHECK(kiln_dataset_get_num_names(d) == 2);
  CHECK(strcmp(kiln_dataset_get_name(d, 1), "y") == 0);
  CHECK(kiln_dataset_get_name(d, 2) == NULL);
  CHECK(drain(d, 1, got, 10, NULL) == 10 && got[0] == 10 && got[9] == 19);

  EXPECT_OK(kiln_dataset_shuffle(&s, d, 4, 7, true));
  EXPECT_OK(kiln_dataset_shuffle(&s2, d, 4, 7, true));
  CHECK(drain(s, 0, a1, 10, NULL) == 10);
  CHECK(drain(s, 0, a2, 10, NULL) == 10);
  CHECK(!same(a1, a2, 10)); /* a new order each epoch */
  CHECK(drain(s2, 0, a3, 10, NULL) == 10);
  CHECK(same(a1, a3, 10)); /* the same seed, the same first epoch */
  CHECK(!same(a1, xs, 10));

  EXPECT_OK(kiln_dataset_batch(&b, d, 4, false));
  EXPECT_OK(kiln_dataset_batch(&bd, d, 4, true));
  CHECK(cardinality(b) == 3 && cardinality(bd) == 2);
  CHECK(drain(b, 0, got, 10, NULL) == 3 && got[0] == 0 && got[1] == 4 && got[2] == 8);
  CHECK(drain(bd, 0, got, 10, NULL) == 2);
  CHECK(kiln_dataset_get_num_names(b) == 2);

  EXPECT_ERROR(kiln_dataset_batch(&bad, d, 0, false), INVALID, "batch_size is 0", NULL);
  EXPECT_ERROR(kiln_dataset_shuffle(&bad, NULL, 4, 1, true), INVALID, "'ds'", NULL);
  EXPECT_ERROR(kiln_dataset_from_tensor_slices(&bad, NULL, NULL), INVALID, "components", NULL);
  CHECK(bad == NULL);
  kiln_dataset_free(d);
  kiln_dataset_free(s);
  kiln_dataset_free(s2);
  kiln_dataset_free(b);
  kiln_dataset_free(bd);
  kiln_tensor_list_free(l);
  release_kept();
}

static void test_map_filter_errors(void) {
  int64_t factor = 3, got[64], serial[64], i;
  kiln_map_callbacks m;
  kiln_predicate_callbacks p;
  kiln_dataset *r = range_ds(0, 40), *ms = NULL, *mp = NULL, *f = NULL, *bad = NULL, *r13 = range_ds(110, 120),
               *me = NULL, *mpe = NULL;
  kiln_status *err = NULL;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.map = times;
  m.destroy = count_destroy;
  g_destroyed = 0;
  EXPECT_OK(kiln_dataset_map(&ms, r, 0, &m, &factor));
  EXPECT_OK(kiln_dataset_map(&mp, r, 4, &m, &factor));
  CHECK(drain(ms, 0, serial, 64, NULL) == 40);
  for (i = 0; i < 40; ++i) CHECK(serial[i] == i * 3);
  CHECK(drain(mp, 0, got, 64, NULL) == 40);
  CHECK(same(got, serial, 40)); /* the parallel map keeps the order */
  CHECK(cardinality(mp) == 40);

  /* A callback's status comes out of next() with its code and message. */
  EXPECT_OK(kiln_dataset_map(&me, r13, 0, &m, &factor));
  EXPECT_OK(kiln_dataset_map(&mpe, r13, KILN_DATASET_AUTOTUNE, &m, &factor));
  CHECK(drain(me, 0, got, 64, &err) == -1);
  CHECK(kiln_status_get_code(err) == KILN_STATUS_OUT_OF_RANGE);
  CHECK(strcmp(kiln_status_get_message(err), "thirteen is unlucky") == 0);
  kiln_status_free(err);
  err = NULL;
  CHECK(drain(mpe, 0, got, 64, &err) == -1);
  CHECK(kiln_status_get_code(err) == KILN_STATUS_OUT_OF_RANGE);
  kiln_status_free(err);

  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.predicate = is_odd;
  EXPECT_OK(kiln_dataset_filter(&f, r, &p, NULL));
  CHECK(cardinality(f) == KILN_DATASET_UNKNOWN_CARDINALITY);
  CHECK(drain(f, 0, got, 64, NULL) == 20 && got[0] == 1 && got[19] == 39);

  /* Bad tables: nothing is taken, destroy is not called. */
  m.struct_size = 0;
  EXPECT_ERROR(kiln_dataset_map(&bad, r, 0, &m, &factor), INVALID, "struct_size", NULL);
  m.struct_size = sizeof m;
  m.map = NULL;
  EXPECT_ERROR(kiln_dataset_map(&bad, r, 0, &m, &factor), INVALID, "map is NULL", NULL);
  EXPECT_ERROR(kiln_dataset_map(&bad, r, -5, &m, &factor), INVALID, NULL, NULL);
  CHECK(bad == NULL);
  CHECK(g_destroyed == 0);
  kiln_dataset_free(ms);
  kiln_dataset_free(mp);
  kiln_dataset_free(me);
  CHECK(g_destroyed == 3);
  kiln_dataset_free(mpe);
  CHECK(g_destroyed == 4);
  kiln_dataset_free(f);
  kiln_dataset_free(r);
  kiln_dataset_free(r13);
}

static void test_generator_and_early_free(void) {
  int64_t limit = 5, got[16];
  kiln_generator_callbacks g;
  kiln_map_callbacks m;
  int64_t factor = 2;
  kiln_dataset *d = NULL, *rep = NULL, *mp = NULL, *pf = NULL, *inf = NULL, *bad = NULL;
  kiln_iterator *it = NULL;
  kiln_tensor_list *e = NULL;
  bool end = false;
  int round;
  memset(&g, 0, sizeof g);
  g.struct_size = sizeof g;
  g.start = gen_start;
  g.next = gen_next;
  g.finish = gen_finish;
  g.destroy = count_destroy;
  g_destroyed = g_started = g_finished = 0;
  EXPECT_OK(kiln_dataset_from_generator(&d, &g, &limit));
  CHECK(cardinality(d) == KILN_DATASET_UNKNOWN_CARDINALITY);
  CHECK(drain(d, 0, got, 16, NULL) == 5 && got[4] == 4);
  CHECK(g_started == 1 && g_finished == 1);
  EXPECT_OK(kiln_dataset_repeat(&rep, d, 2));
  CHECK(drain(rep, 0, got, 16, NULL) == 10 && got[5] == 0);
  CHECK(g_started == 3 && g_finished == 3);
  /* An iterator freed mid-pass finishes its pass. */
  EXPECT_OK(kiln_dataset_make_iterator(&it, d));
  EXPECT_OK(kiln_iterator_next(&e, &end, it));
  kiln_tensor_list_free(e);
  kiln_iterator_free(it);
  CHECK(g_started == 4 && g_finished == 4);
  kiln_dataset_free(rep);
  kiln_dataset_free(d);
  CHECK(g_destroyed == 1);
  g.next = NULL;
  EXPECT_ERROR(kiln_dataset_from_generator(&bad, &g, &limit), INVALID, "next is NULL", NULL);
  CHECK(bad == NULL && g_destroyed == 1);

  /* An endless parallel map behind prefetch, freed after one element: threads stop. */
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.map = times;
  inf = range_ds(20, 1000000);
  EXPECT_OK(kiln_dataset_map(&mp, inf, 3, &m, &factor));
  EXPECT_OK(kiln_dataset_prefetch(&pf, mp, 4));
  for (round = 0; round < 10; ++round) {
    it = NULL;
    e = NULL;
    EXPECT_OK(kiln_dataset_make_iterator(&it, pf));
    EXPECT_OK(kiln_iterator_next(&e, &end, it));
    CHECK(!end && e != NULL);
    kiln_tensor_list_free(e);
    kiln_iterator_free(it);
  }
  kiln_dataset_free(pf);
  kiln_dataset_free(mp);
  kiln_dataset_free(inf);
}

static void test_other_transformations(void) {
  int64_t got[64];
  kiln_dataset *a = range_ds(0, 5), *b = range_ds(10, 13), *z = NULL, *c = NULL, *en = NULL, *t = NULL, *s = NULL,
               *rp = NULL, *rpi = NULL, *ca = NULL, *ba = NULL, *ub = NULL, *pf = NULL, *pb = NULL, *cl = NULL;
  const kiln_dataset *pair[2];
  kiln_iterator *it = NULL;
  kiln_tensor_list *e = NULL;
  kiln_tensor *x = NULL;
  bool end = false;
  int64_t pad_dims[1] = {4};
  size_t pad_ranks[1] = {1};
  int round;
  pair[0] = a;
  pair[1] = b;
  EXPECT_OK(kiln_dataset_zip(&z, pair, 2));
  CHECK(cardinality(z) == 3);
  CHECK(drain(z, 1, got, 64, NULL) == 3 && got[2] == 12);
  EXPECT_OK(kiln_dataset_concatenate(&c, a, b));
  CHECK(cardinality(c) == 8);
  CHECK(drain(c, 0, got, 64, NULL) == 8 && got[5] == 10);
  EXPECT_OK(kiln_dataset_enumerate(&en, b, 100));
  CHECK(drain(en, 0, got, 64, NULL) == 3 && got[0] == 100 && got[2] == 102);
  EXPECT_OK(kiln_dataset_take(&t, a, 2));
  CHECK(cardinality(t) == 2 && drain(t, 0, got, 64, NULL) == 2);
  EXPECT_OK(kiln_dataset_skip(&s, a, 2));
  CHECK(cardinality(s) == 3 && drain(s, 0, got, 64, NULL) == 3 && got[0] == 2);
  {
    kiln_dataset *sh = NULL, *bad = NULL;
    EXPECT_OK(kiln_dataset_shard(&sh, a, 2, 1)); /* positions 1 and 3 of 0..4 */
    CHECK(cardinality(sh) == 2 && drain(sh, 0, got, 64, NULL) == 2 && got[0] == 1 && got[1] == 3);
    EXPECT_ERROR(kiln_dataset_shard(&bad, a, 2, 2), INVALID, "index is 2", "num_shards");
    EXPECT_ERROR(kiln_dataset_shard(&bad, a, 0, 0), INVALID, "num_shards is 0", NULL);
    EXPECT_ERROR(kiln_dataset_shard(&bad, NULL, 2, 0), INVALID, NULL, NULL);
    CHECK(bad == NULL);
    kiln_dataset_free(sh);
  }
  EXPECT_OK(kiln_dataset_repeat(&rp, a, 3));
  CHECK(cardinality(rp) == 15 && drain(rp, 0, got, 64, NULL) == 15);
  EXPECT_OK(kiln_dataset_repeat(&rpi, a, -1));
  CHECK(cardinality(rpi) == KILN_DATASET_INFINITE_CARDINALITY);
  EXPECT_OK(kiln_dataset_cache(&ca, a));
  CHECK(drain(ca, 0, got, 64, NULL) == 5 && drain(ca, 0, got, 64, NULL) == 5 && got[4] == 4);
  EXPECT_OK(kiln_dataset_batch(&ba, a, 2, false));
  EXPECT_OK(kiln_dataset_unbatch(&ub, ba));
  CHECK(drain(ub, 0, got, 64, NULL) == 5 && got[3] == 3);
  {
    /* A batch whose components disagree on their rows (3 and 2) is an error; the pass then goes on
     * with the next batch (rows 3, 4 and 12, 13), as tf.data, without reading past the bad one. */
    kiln_dataset *b3 = NULL, *b2 = NULL, *zz = NULL, *ragged = NULL, *r10 = range_ds(10, 15);
    const kiln_dataset *two[2];
    kiln_iterator *rit = NULL;
    kiln_tensor_list *re = NULL;
    bool rend = false;
    EXPECT_OK(kiln_dataset_batch(&b3, a, 3, false));
    EXPECT_OK(kiln_dataset_batch(&b2, r10, 2, false));
    two[0] = b3;
    two[1] = b2;
    EXPECT_OK(kiln_dataset_zip(&zz, two, 2));
    EXPECT_OK(kiln_dataset_unbatch(&ragged, zz));
    EXPECT_OK(kiln_dataset_make_iterator(&rit, ragged));
    EXPECT_ERROR(kiln_iterator_next(&re, &rend, rit), INVALID, "unbatch: component 1", "same first dim");
    CHECK(re == NULL);
    for (round = 0; round < 2; ++round) {
      kiln_tensor *c0 = NULL, *c1 = NULL;
      re = NULL;
      EXPECT_OK(kiln_iterator_next(&re, &rend, rit));
      CHECK(!rend && re);
      if (re && !status_failed(kiln_tensor_list_get(&c0, re, 0)) &&
          !status_failed(kiln_tensor_list_get(&c1, re, 1)))
        CHECK(((const int64_t *)kiln_tensor_get_data(c0))[0] == 3 + round &&
              ((const int64_t *)kiln_tensor_get_data(c1))[0] == 12 + round);
      kiln_tensor_free(c0);
      kiln_tensor_free(c1);
      kiln_tensor_list_free(re);
    }
    re = NULL;
    EXPECT_OK(kiln_iterator_next(&re, &rend, rit));
    CHECK(rend && re == NULL);
    kiln_iterator_free(rit);
    kiln_dataset_free(ragged);
    kiln_dataset_free(zz);
    kiln_dataset_free(b2);
    kiln_dataset_free(b3);
    kiln_dataset_free(r10);
  }
  EXPECT_OK(kiln_dataset_prefetch(&pf, a, KILN_DATASET_AUTOTUNE));
  CHECK(cardinality(pf) == 5 && drain(pf, 0, got, 64, NULL) == 5 && got[4] == 4);
  /* padded_batch of batches of 2: [2] rows padded to [4]. */
  EXPECT_OK(kiln_dataset_padded_batch(&pb, ba, 2, pad_dims, pad_ranks, 1, NULL, false));
  EXPECT_OK(kiln_dataset_make_iterator(&it, pb));
  EXPECT_OK(kiln_iterator_next(&e, &end, it));
  if (e && !status_failed(kiln_tensor_list_get(&x, e, 0))) {
    int64_t dims[2] = {2, 4};
    const int64_t *v = (const int64_t *)kiln_tensor_get_data(x);
    CHECK(meta_ok(x, I64, 2, dims));
    CHECK(v[0] == 0 && v[1] == 1 && v[2] == 0 && v[4] == 2 && v[5] == 3 && v[7] == 0);
  }
  kiln_tensor_free(x);
  kiln_tensor_list_free(e);
  kiln_iterator_free(it);
  EXPECT_OK(kiln_dataset_clone(&cl, a));
  CHECK(cardinality(cl) == 5);
  kiln_dataset_free(a);
  CHECK(drain(cl, 0, got, 64, NULL) == 5); /* the clone keeps the dataset */
  /* End is sticky; NULL arguments are errors. */
  it = NULL;
  EXPECT_OK(kiln_dataset_make_iterator(&it, t));
  for (round = 0; round < 4; ++round) {
    e = NULL;
    EXPECT_OK(kiln_iterator_next(&e, &end, it));
    CHECK(end == (round >= 2) && (e == NULL) == end);
    kiln_tensor_list_free(e);
  }
  EXPECT_ERROR(kiln_iterator_next(NULL, &end, it), INVALID, "'out'", NULL);
  EXPECT_ERROR(kiln_dataset_range(NULL, 0, 1, 1), INVALID, NULL, NULL);
  EXPECT_ERROR(kiln_dataset_zip(&z, NULL, 2), INVALID, "datasets", NULL);
  kiln_iterator_free(it);
  kiln_iterator_free(NULL);
  kiln_dataset_free(NULL);
  kiln_dataset_free(b);
  kiln_dataset_free(z);
  kiln_dataset_free(c);
  kiln_dataset_free(en);
  kiln_dataset_free(t);
  kiln_dataset_free(s);
  kiln_dataset_free(rp);
  kiln_dataset_free(rpi);
  kiln_dataset_free(ca);
  kiln_dataset_free(ba);
  kiln_dataset_free(ub);
  kiln_dataset_free(pf);
  kiln_dataset_free(pb);
  kiln_dataset_free(cl);
}

static void write_bytes(const char *path, const unsigned char *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    report("cannot write %s", path);
    return;
  }
  fwrite(bytes, 1, n, f);
  fclose(f);
}

static void test_readers(void) {
  static const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4};
  static const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 7, 9};
  static const unsigned char cut[] = {0, 0, 8, 1, 0, 0, 0, 9, 1};
  const char *csv = "a,b,c\n1,2.5,x\n3,4,y\n";
  char dir[] = "/tmp/kiln_capi_data_XXXXXX";
  char path[256];
  kiln_tensor *t = NULL, *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
  kiln_dataset *d = NULL, *bad = NULL;
  kiln_csv_options o;
  kiln_csv_type types[3] = {KILN_CSV_FLOAT32, KILN_CSV_SKIP, KILN_CSV_SKIP};
  int64_t dims3[3] = {2, 1, 2}, got[8];
  FILE *f;
  if (!mkdtemp(dir)) {
    report("mkdtemp");
    return;
  }
  sprintf(path, "%s/train-images-idx3-ubyte", dir);
  write_bytes(path, images, sizeof images);
  EXPECT_OK(kiln_read_idx(&t, path));
  CHECK(t && meta_ok(t, U8, 3, dims3) && ((const uint8_t *)kiln_tensor_get_data(t))[3] == 4);
  kiln_tensor_free(t);
  sprintf(path, "%s/t10k-images-idx3-ubyte", dir);
  write_bytes(path, images, sizeof images);
  sprintf(path, "%s/train-labels-idx1-ubyte", dir);
  write_bytes(path, labels, sizeof labels);
  sprintf(path, "%s/t10k-labels-idx1-ubyte", dir);
  write_bytes(path, labels, sizeof labels);
  EXPECT_OK(kiln_load_fashion_mnist(&xtr, &ytr, &xte, &yte, dir));
  CHECK(xtr && meta_ok(xtr, U8, 3, dims3) && ((const uint8_t *)kiln_tensor_get_data(yte))[1] == 9);
  kiln_tensor_free(xtr);
  kiln_tensor_free(ytr);
  kiln_tensor_free(xte);
  kiln_tensor_free(yte);
  write_bytes(path, cut, sizeof cut);
  xtr = NULL;
  EXPECT_ERROR(kiln_load_fashion_mnist(&xtr, &ytr, &xte, &yte, dir), KILN_STATUS_DATA_LOSS, "t10k-labels",
               "truncated");
  CHECK(xtr == NULL);
  EXPECT_ERROR(kiln_read_idx(U, "/nonexistent/x.idx"), KILN_STATUS_NOT_FOUND, "/nonexistent/x.idx", NULL);
  EXPECT_ERROR(kiln_read_idx(U, path), KILN_STATUS_DATA_LOSS, path, "uint8[9]");

  sprintf(path, "%s/a.csv", dir);
  f = fopen(path, "w");
  if (f) {
    fputs(csv, f);
    fclose(f);
  }
  EXPECT_OK(kiln_csv_options_init(&o, sizeof o));
  CHECK(o.header && o.delimiter == ',' && !o.skip_text_columns);
  EXPECT_ERROR(kiln_dataset_from_csv(&bad, path, &o), INVALID, "'c'", "text");
  o.skip_text_columns = true;
  EXPECT_OK(kiln_dataset_from_csv(&d, path, &o));
  CHECK(cardinality(d) == 2 && kiln_dataset_get_num_names(d) == 2);
  CHECK(strcmp(kiln_dataset_get_name(d, 1), "b") == 0);
  CHECK(drain(d, 0, got, 8, NULL) == 2 && got[1] == 3);
  kiln_dataset_free(d);
  d = NULL;
  o.column_types = types;
  o.num_column_types = 3;
  EXPECT_OK(kiln_dataset_from_csv(&d, path, &o));
  CHECK(kiln_dataset_get_num_names(d) == 1);
  kiln_dataset_free(d);
  types[1] = (kiln_csv_type)42;
  EXPECT_ERROR(kiln_dataset_from_csv(&bad, path, &o), INVALID, "column_types[1]", NULL);
  o.struct_size = 1;
  EXPECT_ERROR(kiln_dataset_from_csv(&bad, path, &o), INVALID, "struct_size", NULL);
  CHECK(bad == NULL);
  remove_tree(dir);
}

int main(void) {
  test_slices_batch_shuffle();
  test_map_filter_errors();
  test_generator_and_early_free();
  test_other_transformations();
  test_readers();
  release_kept();
  return test_summary();
}

/* C API tests: the full flow and bad input, compiled against the installed
 * header and library and run under AddressSanitizer by `make test`.
 * Usage: test_api FIXTURES_DIR GROUP_PHOTO (the folder holding tiny64/ and
 * cond128/; a synthetic group photo of GROUP_FACES default-model faces, as
 * `cargo run --example synthetic_group -- GROUP_PHOTO 1 5 640x480` writes it). */
#include "testing.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A test-only export, not in the header: panics inside the boundary. */
eo_status eo_test_panic(void);

static char tiny_path[4096], cond_path[4096];
static const char *group_path;
/* Faces in the group photo (the Makefile makes it with 5). */
enum { GROUP_FACES = 5 };
/* A fresh folder of this run for the files the tests write, so that a
 * rerun never meets the last run's files (writes never replace them). */
static char scratch[] = "/tmp/editone-api-XXXXXX";

/* scratch/<name> in a static buffer of 4 (enough for one call's paths). */
static const char *in_scratch(const char *name) {
  static char paths[4][4096];
  static int next;
  char *p = paths[next++ % 4];
  snprintf(p, 4096, "%s/%s", scratch, name);
  return p;
}

static size_t latent_len(eo_model m) {
  eo_model_desc d = {sizeof d};
  if (eo_model_info(m, &d) != EO_OK) return 0;
  return (size_t)d.num_ws * d.w_dim;
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

static float *read_latent(eo_latent l, size_t n) {
  float *w = malloc(n * sizeof *w);
  if (w && eo_latent_read(l, w, n, NULL) != EO_OK) {
    free(w);
    return NULL;
  }
  return w;
}

static int count_steps(void *user, const char *stage, uint64_t done, uint64_t total) {
  int *steps = user;
  (void)done;
  (void)total;
  if (strcmp(stage, "optimize") == 0 || strcmp(stage, "render") == 0) (*steps)++;
  return 0;
}

static int cancel_at_three(void *user, const char *stage, uint64_t done, uint64_t total) {
  (void)stage;
  (void)total;
  *(uint64_t *)user = done;
  return done >= 3;
}

/* An edit from seed 1 toward seed 2, optimised briefly. */
static eo_edit make_edit(eo_model m, eo_latent *example) {
  eo_latent target;
  eo_edit e = {0};
  OK(eo_latent_from_seed(m, 1, 1.0f, example));
  OK(eo_latent_from_seed(m, 2, 1.0f, &target));
  OK(eo_edit_from_latents(*example, target, &e));
  eo_optimize_options opts;
  OK(eo_optimize_options_init(&opts));
  opts.iterations = 15;
  opts.learning_rate = 0.01f;
  int steps = 0;
  OK(eo_edit_optimize(e, &opts, count_steps, &steps));
  CHECK(steps == 15, "optimize reported %d steps, expected 15", steps);
  OK(eo_latent_release(target));
  return e;
}

static void test_full_flow(void) {
  eo_model m;
  OK(eo_model_load(tiny_path, &m));
  eo_model_desc d = {sizeof d};
  OK(eo_model_info(m, &d));
  CHECK(d.resolution == 64 && d.num_ws == 10 && d.w_dim == 64 && d.channels == 3, "tiny64 info");
  CHECK(strcmp(d.architecture, "stylegan2") == 0, "architecture '%s'", d.architecture);
  size_t n = latent_len(m);

  eo_latent example;
  eo_edit e = make_edit(m, &example);
  eo_optimize_report r = {sizeof r};
  OK(eo_edit_report(e, &r));
  CHECK(r.optimized == 1 && r.iterations == 15 && r.best_loss < r.initial_loss,
        "report: optimized %u iterations %u loss %g -> %g", r.optimized, r.iterations, r.initial_loss, r.best_loss);

  enum { N = 6 };
  eo_latent targets[N], edited[N];
  float alphas[N], alphas2[N];
  for (int i = 0; i < N; i++) OK(eo_latent_from_seed(m, 10 + i, 0.7f, &targets[i]));
  OK(eo_edit_apply_batch(e, targets, N, edited, alphas));

  /* Every edited latent lies on the example's hyperplane. */
  float *dir = malloc(n * sizeof *dir);
  size_t needed = 0;
  OK(eo_edit_direction(e, NULL, 0, &needed));
  CHECK(needed == n, "direction needs %zu floats", needed);
  OK(eo_edit_direction(e, dir, n, NULL));
  eo_latent example_edited;
  OK(eo_edit_apply(e, example, &example_edited));
  float *w0e = read_latent(example_edited, n);
  double plane = dot(w0e, dir, n);
  for (int i = 0; i < N; i++) {
    float *w = read_latent(edited[i], n);
    double p = dot(w, dir, n);
    CHECK(fabs(p - plane) <= 1e-5 * fmax(1.0, fabs(plane)), "latent %d off the hyperplane: %g vs %g", i, p, plane);
    float a;
    OK(eo_edit_alpha(e, targets[i], &a));
    CHECK(a == alphas[i], "alpha %d: %g vs batch %g", i, a, alphas[i]);
    free(w);
  }

  /* The example's strength moves every alpha by the same amount. */
  float s;
  OK(eo_edit_strength(e, &s));
  OK(eo_edit_set_strength(e, s + 0.5f));
  eo_latent edited2[N];
  OK(eo_edit_apply_batch(e, targets, N, edited2, alphas2));
  for (int i = 0; i < N; i++) {
    CHECK(fabsf(alphas2[i] - alphas[i] - 0.5f) < 1e-4f, "alpha %d moved by %g", i, alphas2[i] - alphas[i]);
    OK(eo_latent_release(edited2[i]));
  }

  /* Rendering: native RGB, resampled RGBA, gray, raw floats, a file. */
  uint8_t *rgb = malloc(64 * 64 * 3), *rgba = malloc(32 * 40 * 4), *gray = malloc(100 * 100);
  eo_image_view views[3] = {
      {rgb, 64, 64, 64 * 3, EO_PIXEL_RGB8},
      {rgba, 32, 32, 40 * 4, EO_PIXEL_RGBA8},
      {gray, 100, 100, 100, EO_PIXEL_GRAY8},
  };
  int steps = 0;
  OK(eo_render_batch(edited, 3, views, count_steps, &steps));
  CHECK(steps == 1, "render reported %d progress calls for one chunk", steps);
  CHECK(rgba[3] == 255 && rgba[31 * 160 + 31 * 4 + 3] == 255, "RGBA alpha is opaque");
  OK(eo_render(edited[0], &views[0]));
  float *img = malloc(3 * 64 * 64 * sizeof *img);
  OK(eo_render_f32(edited[0], img, 3 * 64 * 64));
  int in_range = 1;
  for (int i = 0; i < 3 * 64 * 64; i++) in_range &= isfinite(img[i]) && fabsf(img[i]) < 10.0f;
  CHECK(in_range, "raw output finite and near [-1, 1]");
  /* The official uint8 rule: clamp(x * 127.5 + 128, 0, 255), truncated. */
  float v = img[0] * 127.5f + 128.0f;
  int expected = v < 0 ? 0 : v > 255 ? 255 : (int)v;
  CHECK(abs(rgb[0] - expected) <= 1, "first red byte %d vs %d", rgb[0], expected);
  OK(eo_render_to_file(edited[0], in_scratch("render.png"), 96));
  EXPECT(eo_render_to_file(edited[0], in_scratch("render.bmp"), 0), EO_ERR_INVALID_ARGUMENT);
  EXPECT(eo_render_to_file(edited[0], "/nonexistent-dir/x.png", 0), EO_ERR_IO);

  free(rgb), free(rgba), free(gray), free(img), free(dir), free(w0e);
  for (int i = 0; i < N; i++) {
    OK(eo_latent_release(targets[i]));
    OK(eo_latent_release(edited[i]));
  }
  OK(eo_latent_release(example_edited));
  OK(eo_latent_release(example));
  OK(eo_edit_release(e));
  OK(eo_model_release(m));
}

static void test_null_pointers(void) {
  eo_model m;
  eo_latent l, l2;
  eo_edit e;
  float f[64] = {0};
  OK(eo_model_load(tiny_path, &m));
  OK(eo_latent_from_seed(m, 3, 1.0f, &l));
  OK(eo_latent_from_seed(m, 4, 1.0f, &l2));
  OK(eo_edit_from_latents(l, l2, &e));
  eo_image_view null_data = {NULL, 8, 8, 24, EO_PIXEL_RGB8};
  eo_latent ls[1] = {l};

  BAD_ARG(eo_engine_options_init(NULL));
  BAD_ARG(eo_device_name(NULL, 0, NULL));
  BAD_ARG(eo_cpu_threads(NULL));
  BAD_ARG(eo_model_load(NULL, &m));
  BAD_ARG(eo_model_load(tiny_path, NULL));
  BAD_ARG(eo_model_info(m, NULL));
  BAD_ARG(eo_latent_from_seed(m, 1, 1.0f, NULL));
  BAD_ARG(eo_latent_from_seed_class(m, 1, 0, 1.0f, NULL));
  BAD_ARG(eo_latent_from_w(m, NULL, 64, &l2));
  BAD_ARG(eo_latent_from_w(m, f, 64, NULL));
  BAD_ARG(eo_latent_read(l, NULL, 0, NULL));
  BAD_ARG(eo_render(l, NULL));
  BAD_ARG(eo_render(l, &null_data));
  BAD_ARG(eo_render_f32(l, NULL, 3 * 64 * 64));
  BAD_ARG(eo_render_batch(NULL, 1, &null_data, NULL, NULL));
  BAD_ARG(eo_render_batch(ls, 1, NULL, NULL, NULL));
  BAD_ARG(eo_render_to_file(l, NULL, 0));
  BAD_ARG(eo_edit_from_latents(l, l, NULL));
  BAD_ARG(eo_edit_from_direction(l, NULL, 64, 1.0f, &e));
  BAD_ARG(eo_edit_from_direction(l, f, 64, 1.0f, NULL));
  BAD_ARG(eo_edit_push_direction(e, NULL, 64, 1.0f));
  BAD_ARG(eo_optimize_options_init(NULL));
  BAD_ARG(eo_edit_report(e, NULL));
  BAD_ARG(eo_edit_strength(e, NULL));
  BAD_ARG(eo_edit_direction(e, NULL, 0, NULL));
  BAD_ARG(eo_edit_alpha(e, l, NULL));
  BAD_ARG(eo_edit_apply(e, l, NULL));
  BAD_ARG(eo_edit_apply_batch(e, NULL, 1, &l2, NULL));
  BAD_ARG(eo_edit_apply_batch(e, ls, 1, NULL, NULL));
  BAD_ARG(eo_edit_apply_baseline(e, l, EO_BASELINE_NAIVE, NULL));
  BAD_ARG(eo_edit_save(e, NULL));
  BAD_ARG(eo_edit_load(m, NULL, &e));
  BAD_ARG(eo_edit_load(m, "x.json", NULL));
  OK(eo_live_handles(NULL, NULL, NULL));

  OK(eo_edit_release(e));
  OK(eo_latent_release(l));
  OK(eo_latent_release(l2));
  OK(eo_model_release(m));
}

static void test_lengths_and_values(void) {
  eo_model m;
  eo_latent l, out;
  eo_edit e;
  OK(eo_model_load(tiny_path, &m));
  size_t n = latent_len(m);
  float *w = calloc(n + 1, sizeof *w);
  for (size_t i = 0; i < n; i++) w[i] = (float)(i % 7) / 7.0f;
  OK(eo_latent_from_w(m, w, 64, &l)); /* W: one row, repeated */
  OK(eo_latent_release(l));
  OK(eo_latent_from_w(m, w, n, &l)); /* W+ */
  BAD_ARG(eo_latent_from_w(m, w, 0, &out));
  BAD_ARG(eo_latent_from_w(m, w, 63, &out));
  BAD_ARG(eo_latent_from_w(m, w, n + 1, &out));
  w[5] = NAN;
  BAD_ARG(eo_latent_from_w(m, w, n, &out));
  w[5] = INFINITY;
  BAD_ARG(eo_latent_from_w(m, w, n, &out));
  w[5] = 0.5f;
  BAD_ARG(eo_latent_from_seed(m, 1, NAN, &out));
  BAD_ARG(eo_latent_from_seed(m, 1ull << 32, 1.0f, &out));
  BAD_ARG(eo_latent_from_seed_class(m, 1, 0, 1.0f, &out)); /* unconditional */

  size_t needed = 0;
  OK(eo_latent_read(l, NULL, 0, &needed));
  CHECK(needed == n, "latent needs %zu floats, expected %zu", needed, n);
  BAD_ARG(eo_latent_read(l, w, n - 1, NULL));
  BAD_ARG(eo_render_f32(l, w, n));

  BAD_ARG(eo_edit_from_direction(l, w, 0, 1.0f, &e));
  BAD_ARG(eo_edit_from_direction(l, w, 65, 1.0f, &e));
  BAD_ARG(eo_edit_from_direction(l, w, 64, NAN, &e));
  BAD_ARG(eo_edit_from_latents(l, l, &e)); /* an edit that changes nothing */
  OK(eo_edit_from_direction(l, w, 64, 2.0f, &e));
  BAD_ARG(eo_edit_set_strength(e, INFINITY));
  BAD_ARG(eo_edit_push_direction(e, w, 3, 1.0f));
  eo_latent ls[1] = {l};
  BAD_ARG(eo_edit_apply_batch(e, ls, 0, &out, NULL));
  BAD_ARG(eo_edit_apply_baseline(e, l, 7, &out));

  eo_optimize_options opts;
  OK(eo_optimize_options_init(&opts));
  opts.iterations = 0;
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  OK(eo_optimize_options_init(&opts));
  opts.objective = 42;
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  OK(eo_optimize_options_init(&opts));
  opts.learning_rate = NAN;
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  opts.struct_size = 0;
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  eo_model_desc d = {0};
  BAD_ARG(eo_model_info(m, &d));

  uint8_t px[16 * 16 * 4];
  eo_image_view bad_format = {px, 16, 16, 64, 9};
  eo_image_view bad_stride = {px, 16, 16, 10, EO_PIXEL_RGBA8};
  eo_image_view zero_width = {px, 0, 16, 64, EO_PIXEL_RGBA8};
  eo_image_view huge = {px, 100000, 16, 400000, EO_PIXEL_RGBA8};
  BAD_ARG(eo_render(l, &bad_format));
  BAD_ARG(eo_render(l, &bad_stride));
  BAD_ARG(eo_render(l, &zero_width));
  BAD_ARG(eo_render(l, &huge));

  char small[2];
  BAD_ARG(eo_device_name(small, sizeof small, &needed));
  CHECK(needed >= 4, "device name needs %zu bytes", needed);
  eo_engine_options eo;
  OK(eo_engine_options_init(&eo));
  eo.device = "quantum";
  BAD_ARG(eo_init(&eo));
  eo.device = "cuda:7";
  EXPECT(eo_init(&eo), EO_ERR_DEVICE);
  eo.device = "cpu";
  eo.cpu_threads = 2;
  OK(eo_init(&eo));

  free(w);
  OK(eo_edit_release(e));
  OK(eo_latent_release(l));
  OK(eo_model_release(m));
}

static void test_handles(void) {
  eo_model m, cond;
  eo_latent l, other, out;
  eo_edit e;
  float a;
  OK(eo_model_load(tiny_path, &m));
  OK(eo_model_load(cond_path, &cond));
  OK(eo_latent_from_seed(m, 5, 1.0f, &l));
  BAD_ARG(eo_latent_from_seed(cond, 5, 1.0f, &other)); /* conditional: needs a class */
  BAD_ARG(eo_latent_from_seed_class(cond, 5, 3, 1.0f, &other));
  OK(eo_latent_from_seed_class(cond, 5, 1, 1.0f, &other));
  eo_latent example;
  e = make_edit(m, &example);

  eo_latent zero = {0}, forged = {123456789};
  eo_latent as_latent = {m.id};
  eo_model latent_as_model = {l.id};
  eo_edit model_as_edit = {m.id};
  BAD_HANDLE(eo_render_f32(zero, NULL, 0));
  BAD_HANDLE(eo_latent_release(forged));
  BAD_HANDLE(eo_latent_release(as_latent));
  BAD_HANDLE(eo_model_release(latent_as_model));
  BAD_HANDLE(eo_edit_release(model_as_edit));
  BAD_HANDLE(eo_edit_alpha(model_as_edit, l, &a));
  /* A latent of another model. */
  BAD_HANDLE(eo_edit_alpha(e, other, &a));
  BAD_HANDLE(eo_edit_apply(e, other, &out));
  eo_latent mixed[2] = {l, other};
  eo_latent outs[2] = {{0}, {0}};
  BAD_HANDLE(eo_edit_apply_batch(e, mixed, 2, outs, NULL));
  CHECK(outs[0].id == 0, "no handle is created when a batch fails");
  BAD_HANDLE(eo_edit_from_latents(l, other, &e));
  eo_image_view v[2];
  uint8_t px[2][64 * 64 * 3];
  for (int i = 0; i < 2; i++) v[i] = (eo_image_view){px[i], 64, 64, 192, EO_PIXEL_RGB8};
  BAD_ARG(eo_render_batch(mixed, 2, v, NULL, NULL));

  /* Released handles stay invalid; ids are never reused. */
  OK(eo_latent_release(l));
  BAD_HANDLE(eo_latent_release(l));
  BAD_HANDLE(eo_edit_alpha(e, l, &a));
  eo_latent fresh;
  OK(eo_latent_from_seed(m, 5, 1.0f, &fresh));
  CHECK(fresh.id != l.id, "ids are not reused");
  /* Releasing the model keeps its latents and edits usable. */
  OK(eo_model_release(m));
  BAD_HANDLE(eo_model_release(m));
  OK(eo_edit_alpha(e, fresh, &a));
  eo_model_desc of_latent = {sizeof of_latent};
  OK(eo_latent_info(fresh, &of_latent));
  CHECK(of_latent.resolution == 64 && of_latent.num_ws == 10, "eo_latent_info after the model's release");
  BAD_ARG(eo_latent_info(fresh, NULL));
  BAD_HANDLE(eo_latent_info(zero, &of_latent));
  BAD_HANDLE(eo_latent_from_seed(m, 1, 1.0f, &out));

  OK(eo_latent_release(fresh));
  OK(eo_latent_release(other));
  OK(eo_latent_release(example));
  OK(eo_edit_release(e));
  BAD_HANDLE(eo_edit_release(e));
  OK(eo_model_release(cond));
}

static void test_cancel_and_presets(void) {
  eo_model m, cond;
  eo_latent example;
  OK(eo_model_load(tiny_path, &m));
  OK(eo_model_load(cond_path, &cond));
  eo_edit e = make_edit(m, &example);
  size_t n = latent_len(m);
  float *before = malloc(n * sizeof *before), *after = malloc(n * sizeof *after);
  OK(eo_edit_direction(e, before, n, NULL));
  eo_optimize_options opts;
  OK(eo_optimize_options_init(&opts));
  opts.iterations = 50;
  opts.patience = 0;
  uint64_t last = 0;
  EXPECT(eo_edit_optimize(e, &opts, cancel_at_three, &last), EO_ERR_CANCELLED);
  CHECK(last == 3, "cancelled at step %llu", (unsigned long long)last);
  OK(eo_edit_direction(e, after, n, NULL));
  CHECK(memcmp(before, after, n * sizeof *before) == 0, "cancellation leaves the edit as it was");
  eo_optimize_report r = {sizeof r};
  OK(eo_edit_report(e, &r));
  CHECK(r.iterations == 15, "report still describes the earlier run (%u)", r.iterations);

  const char *path = in_scratch("preset.json");
  OK(eo_edit_save(e, path));
  eo_edit loaded, wrong;
  OK(eo_edit_load(m, path, &loaded));
  OK(eo_edit_direction(loaded, after, n, NULL));
  CHECK(memcmp(before, after, n * sizeof *before) == 0, "preset round trip keeps the direction bit for bit");
  EXPECT(eo_edit_load(cond, path, &wrong), EO_ERR_INCOMPATIBLE);
  FILE *f = fopen(path, "w");
  if (f) fputs("{\"format\": \"editone-preset\", \"version\": 1, \"mo", f), fclose(f);
  EXPECT(eo_edit_load(m, path, &wrong), EO_ERR_FORMAT);
  EXPECT(eo_edit_load(m, "build/does-not-exist.json", &wrong), EO_ERR_IO);
  EXPECT(eo_edit_save(e, "/nonexistent-dir/p.json"), EO_ERR_IO);

  free(before), free(after);
  OK(eo_edit_release(loaded));
  OK(eo_edit_release(e));
  OK(eo_latent_release(example));
  OK(eo_model_release(m));
  OK(eo_model_release(cond));
}

enum { THREADS = 4, TARGETS = 8, ROUNDS = 20 };

struct shared {
  eo_edit edit;
  eo_latent targets[TARGETS];
  float expected[TARGETS];
  int mismatches, failures;
};

static void *apply_many(void *arg) {
  struct shared *s = arg;
  for (int round = 0; round < ROUNDS; round++) {
    eo_latent out[TARGETS];
    float alphas[TARGETS];
    if (eo_edit_apply_batch(s->edit, s->targets, TARGETS, out, alphas) != EO_OK) {
      __atomic_add_fetch(&s->failures, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    for (int i = 0; i < TARGETS; i++) {
      if (alphas[i] != s->expected[i]) __atomic_add_fetch(&s->mismatches, 1, __ATOMIC_SEQ_CST);
      if (eo_latent_release(out[i]) != EO_OK) __atomic_add_fetch(&s->failures, 1, __ATOMIC_SEQ_CST);
    }
  }
  return NULL;
}

static void test_concurrent_apply(void) {
  eo_model m;
  eo_latent example;
  OK(eo_model_load(tiny_path, &m));
  struct shared s = {0};
  s.edit = make_edit(m, &example);
  for (int i = 0; i < TARGETS; i++) OK(eo_latent_from_seed(m, 100 + i, 1.0f, &s.targets[i]));
  eo_latent out[TARGETS];
  OK(eo_edit_apply_batch(s.edit, s.targets, TARGETS, out, s.expected));
  for (int i = 0; i < TARGETS; i++) OK(eo_latent_release(out[i]));
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, apply_many, &s);
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  CHECK(s.failures == 0 && s.mismatches == 0, "4 threads: %d failures, %d mismatched alphas", s.failures, s.mismatches);
  for (int i = 0; i < TARGETS; i++) OK(eo_latent_release(s.targets[i]));
  OK(eo_latent_release(example));
  OK(eo_edit_release(s.edit));
  OK(eo_model_release(m));
}

static int count_snapshots(void *user, uint32_t step, eo_latent current, const eo_point *positions, size_t n) {
  int *count = user;
  float w[100];
  (void)step;
  (void)positions;
  (*count)++;
  /* The temporary latent can be read and rendered during the call. */
  return n != 1 || eo_latent_read(current, w, 100, NULL) != EO_OK;
}

static void test_drag(void) {
  eo_model m;
  eo_latent example, moved;
  eo_edit e;
  OK(eo_model_load_default(&m));
  OK(eo_latent_from_seed(m, 1, 1.0f, &example));
  /* The host shows the 64x64 face at 128x128: points are in its pixels. */
  eo_point handle = {65.0f, 73.0f}, target = {81.0f, 73.0f}, where = {0, 0};
  uint32_t steps = 0, reached = 0;
  int snapshots = 0;
  eo_drag_options opts;
  OK(eo_drag_options_init(&opts));
  opts.image_width = opts.image_height = 128;
  opts.positions = &where;
  opts.steps = &steps;
  opts.reached = &reached;
  opts.snapshot_every = 5;
  opts.snapshot = count_snapshots;
  opts.snapshot_user = &snapshots;
  OK(eo_edit_from_drag(example, &handle, &target, 1, &opts, NULL, NULL, &e));
  CHECK(reached == 1 && fabsf(where.x - target.x) <= 4.5f && fabsf(where.y - target.y) <= 4.5f,
        "drag reached %u after %u steps at (%g, %g)", reached, steps, where.x, where.y);
  CHECK(snapshots == (int)(steps / 5) + 1, "%d snapshots for %u steps", snapshots, steps);
  eo_optimize_options o;
  OK(eo_optimize_options_init_fast(&o));
  o.iterations = 5;
  OK(eo_edit_optimize(e, &o, NULL, NULL));
  OK(eo_edit_apply(e, example, &moved));
  OK(eo_latent_release(moved));
  OK(eo_edit_release(e));

  eo_point nan_point = {NAN, 3.0f}, outside = {200.0f, 3.0f};
  uint8_t small[10 * 10];
  eo_image_view wrong_mask = {small, 10, 10, 10, EO_PIXEL_GRAY8};
  BAD_ARG(eo_edit_from_drag(example, &handle, &target, 0, &opts, NULL, NULL, &e));
  BAD_ARG(eo_edit_from_drag(example, NULL, &target, 1, &opts, NULL, NULL, &e));
  BAD_ARG(eo_edit_from_drag(example, &handle, &target, 1, &opts, NULL, NULL, NULL));
  BAD_ARG(eo_edit_from_drag(example, &nan_point, &target, 1, &opts, NULL, NULL, &e));
  BAD_ARG(eo_edit_from_drag(example, &handle, &outside, 1, &opts, NULL, NULL, &e));
  opts.mask = &wrong_mask;
  BAD_ARG(eo_edit_from_drag(example, &handle, &target, 1, &opts, NULL, NULL, &e));
  opts.mask = NULL;
  opts.mask_rect[0] = 100, opts.mask_rect[1] = 0, opts.mask_rect[2] = 50, opts.mask_rect[3] = 10;
  BAD_ARG(eo_edit_from_drag(example, &handle, &target, 1, &opts, NULL, NULL, &e));
  opts.mask_rect[2] = 0;
  opts.max_steps = 40;
  uint64_t last = 0;
  EXPECT(eo_edit_from_drag(example, &handle, &target, 1, &opts, cancel_at_three, &last, &e), EO_ERR_CANCELLED);
  eo_latent forged = {987654321};
  BAD_HANDLE(eo_edit_from_drag(forged, &handle, &target, 1, &opts, NULL, NULL, &e));

  OK(eo_latent_release(example));
  OK(eo_model_release(m));
}

static int count_invert(void *user, const char *stage, uint64_t done, uint64_t total) {
  (void)done;
  (void)total;
  if (strcmp(stage, "invert") == 0) (*(int *)user)++;
  return 0;
}

static void test_invert(void) {
  eo_model m;
  eo_latent face, inverted, same, edited;
  eo_edit e;
  OK(eo_model_load_default(&m));
  OK(eo_latent_from_seed(m, 3, 1.0f, &face));
  /* A 96x80 RGBA "photo": the face rendered into a wider canvas. */
  enum { W = 96, H = 80 };
  uint8_t *photo = calloc(W * H * 4, 1), *out = calloc(W * H * 4, 1);
  for (int i = 0; i < W * H * 4; i++) photo[i] = (uint8_t)(i * 7);
  eo_image_view square = {photo + 16 * 4 + 8 * W * 4, 64, 64, W * 4, EO_PIXEL_RGBA8};
  OK(eo_render(face, &square));
  eo_image_view view = {photo, W, H, W * 4, EO_PIXEL_RGBA8};
  uint32_t crop[4] = {0, 0, 0, 0}, pw = 0, ph = 0, pc[4];
  float psnr = 0;
  eo_invert_options opts;
  OK(eo_invert_options_init(&opts));
  opts.steps = 40;
  opts.crop = crop;
  opts.psnr = &psnr;
  int steps = 0;
  OK(eo_latent_invert(m, &view, &opts, count_invert, &steps, &inverted));
  CHECK(steps == 40, "invert reported %d steps", steps);
  CHECK(crop[0] == 8 && crop[1] == 0 && crop[2] == 80 && crop[3] == 80, "crop %u,%u,%u,%u", crop[0], crop[1], crop[2], crop[3]);
  CHECK(psnr > 10.0f, "psnr %g", psnr);
  OK(eo_latent_photo(inverted, &pw, &ph, pc));
  CHECK(pw == W && ph == H && pc[2] == 80, "photo %ux%u", pw, ph);
  OK(eo_latent_photo(face, &pw, &ph, NULL));
  CHECK(pw == 0 && ph == 0, "a sampled latent has no photo");

  /* Strength 0 on the photo's own edit: residual rendering gives the photo back. */
  float dir[100] = {0};
  dir[5] = 1.0f;
  OK(eo_edit_from_direction(inverted, dir, 100, 2.0f, &e));
  OK(eo_edit_set_strength(e, 0.0f));
  OK(eo_edit_apply(e, inverted, &same));
  eo_image_view result = {out, W, H, W * 4, EO_PIXEL_RGBA8};
  OK(eo_render(same, &result));
  int worst = 0;
  for (int i = 0; i < W * H * 4; i++)
    if (i % 4 != 3 && abs(out[i] - photo[i]) > worst) worst = abs(out[i] - photo[i]);
  CHECK(worst <= 1, "identity edit in residual mode differs from the photo by %d grey levels", worst);
  OK(eo_edit_set_strength(e, 2.0f));
  OK(eo_edit_apply(e, inverted, &edited));
  OK(eo_render_ex(edited, EO_RENDER_RESIDUAL, &result));
  uint8_t plain[64 * 64 * 3];
  eo_image_view plain_view = {plain, 64, 64, 64 * 3, EO_PIXEL_RGB8};
  OK(eo_render_ex(edited, EO_RENDER_PLAIN, &plain_view));
  BAD_ARG(eo_render_ex(face, EO_RENDER_RESIDUAL, &plain_view));
  BAD_ARG(eo_render_ex(face, 9, &plain_view));
  OK(eo_render_to_file(edited, in_scratch("residual.png"), 0));
  /* The size rule hosts read instead of re-deriving it: the file's size. */
  uint32_t sw = 0, sh = 0, fw = 0, fh = 0;
  OK(eo_render_size(edited, 0, &sw, &sh));
  OK(eo_image_read(in_scratch("residual.png"), EO_PIXEL_RGB8, NULL, 0, &fw, &fh, NULL));
  CHECK(sw == W && sh == H && fw == W && fh == H, "residual size %ux%u, file %ux%u", sw, sh, fw, fh);
  OK(eo_render_size(edited, 48, &sw, &sh));
  OK(eo_render_to_file(edited, in_scratch("residual48.png"), 48));
  OK(eo_image_read(in_scratch("residual48.png"), EO_PIXEL_RGB8, NULL, 0, &fw, &fh, NULL));
  CHECK(sw == 48 && sh == 40 && fw == sw && fh == sh, "fitted size %ux%u, file %ux%u", sw, sh, fw, fh);
  OK(eo_render_size(face, 100, &sw, &sh));
  CHECK(sw == 100 && sh == 100, "a model picture fitted to 100: %ux%u", sw, sh);
  BAD_ARG(eo_render_size(face, 0, NULL, &sh));

  /* Bad pictures: no crash, no huge allocation. */
  eo_latent bad;
  uint8_t tiny[16];
  eo_image_view zero = {photo, 0, 10, 40, EO_PIXEL_RGBA8};
  eo_image_view short_stride = {photo, 20, 20, 20, EO_PIXEL_RGBA8};
  eo_image_view bad_format = {photo, 20, 20, 80, 77};
  eo_image_view one_pixel = {tiny, 1, 1, 4, EO_PIXEL_RGBA8};
  eo_image_view huge = {tiny, 20000, 20000, 80000, EO_PIXEL_RGBA8};
  BAD_ARG(eo_latent_invert(m, &zero, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, &short_stride, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, &bad_format, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, &one_pixel, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, &huge, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, NULL, &opts, NULL, NULL, &bad));
  BAD_ARG(eo_latent_invert(m, &view, &opts, NULL, NULL, NULL));
  opts.vgg16_path = "build/no-such-vgg16.pt";
  EXPECT(eo_latent_invert(m, &view, &opts, NULL, NULL, &bad), EO_ERR_IO);
  opts.vgg16_path = in_scratch("preset.json"); /* not TorchScript */
  EXPECT(eo_latent_invert(m, &view, &opts, NULL, NULL, &bad), EO_ERR_FORMAT);
  /* A file that is not a zip: a message that names the problem, with no
   * libtorch stack trace in it. */
  opts.vgg16_path = "/etc/passwd";
  EXPECT(eo_latent_invert(m, &view, &opts, NULL, NULL, &bad), EO_ERR_FORMAT);
  CHECK(strstr(eo_last_error(), "not a TorchScript file") && !strstr(eo_last_error(), "frame #") &&
            !strstr(eo_last_error(), "Exception raised"),
        "vgg16 message: %s", eo_last_error());
  opts.vgg16_path = NULL;
  uint64_t last = 0;
  EXPECT(eo_latent_invert(m, &view, &opts, cancel_at_three, &last, &bad), EO_ERR_CANCELLED);

  free(photo), free(out);
  OK(eo_edit_release(e));
  OK(eo_latent_release(same));
  OK(eo_latent_release(edited));
  OK(eo_latent_release(inverted));
  OK(eo_latent_release(face));
  OK(eo_model_release(m));
}

/* eo_edit_alphas equals eo_edit_alpha per latent, follows strength
 * changes, and refuses released latents without writing anything. */
static void test_alphas(void) {
  eo_model m;
  eo_latent example, ls[6];
  OK(eo_model_load(tiny_path, &m));
  eo_edit e = make_edit(m, &example);
  for (int i = 0; i < 6; i++) OK(eo_latent_from_seed(m, 20 + i, 1.0f, &ls[i]));
  float a[6], b[6], one;
  OK(eo_edit_alphas(e, ls, 6, a));
  for (int i = 0; i < 6; i++) {
    OK(eo_edit_alpha(e, ls[i], &one));
    CHECK(fabsf(one - a[i]) <= 1e-5f * (1 + fabsf(one)), "alphas[%d] %g != alpha %g", i, a[i], one);
  }
  float s0;
  OK(eo_edit_strength(e, &s0));
  OK(eo_edit_set_strength(e, s0 + 2.0f));
  OK(eo_edit_alphas(e, ls, 6, b));
  for (int i = 0; i < 6; i++)
    CHECK(fabsf(b[i] - a[i] - 2.0f) < 1e-4f, "alpha %d moved by %g, not 2", i, b[i] - a[i]);
  BAD_ARG(eo_edit_alphas(e, NULL, 6, b));
  BAD_ARG(eo_edit_alphas(e, ls, 6, NULL));
  OK(eo_latent_release(ls[3]));
  float before = b[0];
  BAD_HANDLE(eo_edit_alphas(e, ls, 6, b));
  CHECK(strstr(eo_last_error(), "targets[3]") != NULL, "message names the index: %s", eo_last_error());
  CHECK(b[0] == before, "alphas written on error");
  for (int i = 0; i < 6; i++)
    if (i != 3) OK(eo_latent_release(ls[i]));
  OK(eo_latent_release(example));
  OK(eo_edit_release(e));
  OK(eo_model_release(m));
}

/* Writes `len` bytes to `path`; returns 1 on success. */
static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, len, f) == len;
  return fclose(f) == 0 && ok;
}

/* Converting to the native format keeps the pixels and the fingerprint;
 * a hostile pickle is refused by name; bad arguments are refused. */
static void test_convert(void) {
  char dir[] = "/tmp/editone-convert-XXXXXX", out[4096], hostile[4096], missing[4096];
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp failed");
    return;
  }
  snprintf(out, sizeof out, "%s/tiny64.safetensors", dir);
  snprintf(hostile, sizeof hostile, "%s/hostile.pkl", dir);
  snprintf(missing, sizeof missing, "%s/missing.pkl", dir);

  OK(eo_model_convert(tiny_path, out));
  eo_model a, b;
  eo_latent la, lb;
  OK(eo_model_load(tiny_path, &a));
  OK(eo_model_load(out, &b));
  OK(eo_latent_from_seed(a, 5, 1.0f, &la));
  OK(eo_latent_from_seed(b, 5, 1.0f, &lb));
  static float pa[3 * 64 * 64], pb[3 * 64 * 64];
  OK(eo_render_f32(la, pa, 3 * 64 * 64));
  OK(eo_render_f32(lb, pb, 3 * 64 * 64));
  CHECK(memcmp(pa, pb, sizeof pa) == 0, "the converted model renders differently");

  /* pickle: os.system('touch MARKER'), protocol 2 */
  static const char evil[] = "\x80\x02" "cos\nsystem\n" "X\x0c\x00\x00\x00" "touch MARKER" "\x85R.";
  CHECK(write_file(hostile, evil, sizeof evil - 1), "cannot write %s", hostile);
  eo_model h = {0};
  EXPECT(eo_model_load(hostile, &h), EO_ERR_FORMAT);
  CHECK(strstr(eo_last_error(), "'os.system'") != NULL, "message does not name the global: %s", eo_last_error());
  EXPECT(eo_model_convert(hostile, out), EO_ERR_FORMAT);
  EXPECT(eo_model_convert(missing, out), EO_ERR_IO);
  BAD_ARG(eo_model_convert(NULL, out));
  BAD_ARG(eo_model_convert(tiny_path, NULL));

  eo_engine_options opts;
  OK(eo_engine_options_init(&opts));
  CHECK(opts.half_precision == 0, "half precision is off by default");
  opts.device = "cpu";
  opts.half_precision = 2;
  BAD_ARG(eo_init(&opts));
  CHECK(opts.tf32 == 0, "TF32 is off by default");
  opts.half_precision = 0;
  opts.tf32 = 2;
  BAD_ARG(eo_init(&opts));
  opts.tf32 = 0;
  CHECK(opts.cpu_cache_mib == 1024, "the CPU buffer cache keeps 1024 MiB by default, not %u", opts.cpu_cache_mib);
  opts.cpu_cache_mib = (1u << 20) + 1;
  BAD_ARG(eo_init(&opts));
  CHECK(strstr(eo_last_error(), "cpu_cache_mib") != NULL, "message does not name the field: %s", eo_last_error());

  OK(eo_latent_release(la));
  OK(eo_latent_release(lb));
  OK(eo_model_release(a));
  OK(eo_model_release(b));
  remove(out);
  remove(hostile);
  remove(dir);
}

/* The names in the scratch folder, sorted and joined by spaces. */
static void scratch_names(char *out, size_t len) {
  struct dirent **list = NULL;
  int n = scandir(scratch, &list, NULL, alphasort);
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
      strncat(out, list[i]->d_name, len - strlen(out) - 2);
      strcat(out, " ");
    }
    free(list[i]);
  }
  free(list);
}

static void remove_scratch(void) {
  struct dirent **list = NULL;
  int n = scandir(scratch, &list, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) remove(in_scratch(list[i]->d_name));
    free(list[i]);
  }
  free(list);
  remove(scratch);
}

/* Every writer refuses to replace an existing file unless asked, and
 * leaves no temporary file behind either way. */
static void test_files_are_sacred(void) {
  remove_scratch();
  CHECK(mkdir(scratch, 0700) == 0, "cannot recreate %s", scratch);
  eo_model m;
  eo_latent l, example;
  OK(eo_model_load(tiny_path, &m));
  OK(eo_latent_from_seed(m, 7, 1.0f, &l));
  eo_edit e = make_edit(m, &example);
  const char *png = in_scratch("a.png");
  size_t len0, len1;
  OK(eo_render_to_file(l, png, 0));
  unsigned char *first = read_file(png, &len0);
  EXPECT(eo_render_to_file(l, png, 32), EO_ERR_EXISTS);
  CHECK(strstr(eo_last_error(), "a.png") != NULL, "message names the file: %s", eo_last_error());
  EXPECT(eo_render_to_file_ex(l, png, 32, 0), EO_ERR_EXISTS);
  uint8_t pixels[8 * 8 * 3] = {0};
  eo_image_view view = {pixels, 8, 8, 24, EO_PIXEL_RGB8};
  EXPECT(eo_image_write(&view, png), EO_ERR_EXISTS);
  unsigned char *kept = read_file(png, &len1);
  CHECK(first && kept && len0 == len1 && memcmp(first, kept, len0) == 0, "a refused write changed the file");
  OK(eo_image_write_ex(&view, png, EO_WRITE_REPLACE));
  uint32_t w = 0, h = 0;
  OK(eo_image_read(png, EO_PIXEL_RGB8, NULL, 0, &w, &h, NULL));
  CHECK(w == 8 && h == 8, "the replaced file is %ux%u", w, h);
  OK(eo_render_to_file_ex(l, png, 0, EO_WRITE_REPLACE));
  BAD_ARG(eo_render_to_file_ex(l, png, 0, 2));
  BAD_ARG(eo_image_write_ex(&view, png, 0x80000000u));

  const char *preset = in_scratch("p.json");
  OK(eo_edit_save(e, preset));
  EXPECT(eo_edit_save(e, preset), EO_ERR_EXISTS);
  OK(eo_edit_save_ex(e, preset, EO_WRITE_REPLACE));
  const char *converted = in_scratch("m.safetensors");
  OK(eo_model_convert(tiny_path, converted));
  EXPECT(eo_model_convert(tiny_path, converted), EO_ERR_EXISTS);
  OK(eo_model_convert_ex(tiny_path, converted, EO_WRITE_REPLACE));
  CHECK(strcmp(eo_status_name(EO_ERR_EXISTS), "EO_ERR_EXISTS") == 0, "status name %s", eo_status_name(EO_ERR_EXISTS));

  char names[1024];
  scratch_names(names, sizeof names);
  CHECK(strcmp(names, "a.png m.safetensors p.json ") == 0, "files left: %s", names);

  /* A flipped bit in a converted model's weights is caught at load. */
  unsigned char *model = read_file(converted, &len0);
  eo_model damaged;
  if (model) {
    model[len0 - 1000] ^= 0x10;
    CHECK(write_file(in_scratch("flipped.safetensors"), model, len0), "cannot write the damaged copy");
    EXPECT(eo_model_load(in_scratch("flipped.safetensors"), &damaged), EO_ERR_FORMAT);
    CHECK(strstr(eo_last_error(), "damaged") != NULL, "message: %s", eo_last_error());
  }
  free(first), free(kept), free(model);
  OK(eo_latent_release(example));
  OK(eo_latent_release(l));
  OK(eo_edit_release(e));
  OK(eo_model_release(m));
}

/* Hostile values and files: refused with a status that names the
 * problem, never read without end. */
static void test_hostile_values(void) {
  eo_model m, none;
  eo_latent example;
  eo_edit e, loaded;
  OK(eo_model_load(tiny_path, &m));
  EXPECT(eo_model_load("/dev/zero", &none), EO_ERR_IO);
  CHECK(strstr(eo_last_error(), "not a regular file") != NULL, "message: %s", eo_last_error());
  EXPECT(eo_edit_load(m, "/dev/zero", &loaded), EO_ERR_IO);
  e = make_edit(m, &example);

  eo_optimize_options opts;
  OK(eo_optimize_options_init(&opts));
  opts.learning_rate = 1e30f;
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  CHECK(strstr(eo_last_error(), "learning_rate") != NULL, "message: %s", eo_last_error());
  OK(eo_optimize_options_init(&opts));
  opts.edit_rows = (uint32_t)latent_len(m); /* far more rows than the model has */
  BAD_ARG(eo_edit_optimize(e, &opts, NULL, NULL));
  CHECK(strstr(eo_last_error(), "edit_rows") != NULL, "message: %s", eo_last_error());

  eo_model_desc d = {sizeof d};
  OK(eo_model_info(m, &d));
  float *huge = malloc(d.w_dim * sizeof *huge);
  for (uint32_t i = 0; i < d.w_dim; i++) huge[i] = FLT_MAX;
  eo_edit overflow;
  BAD_ARG(eo_edit_from_direction(example, huge, d.w_dim, 3.0f, &overflow));
  CHECK(strstr(eo_last_error(), "overflows") != NULL, "message: %s", eo_last_error());

  /* A JPEG cut to a quarter of its bytes is refused as truncated. */
  enum { S = 256 };
  uint8_t *pattern = malloc(S * S * 3);
  for (int i = 0; i < S * S * 3; i++) pattern[i] = (uint8_t)(i * 31 % 251);
  eo_image_view view = {pattern, S, S, S * 3, EO_PIXEL_RGB8};
  const char *jpg = in_scratch("whole.jpg");
  OK(eo_image_write(&view, jpg));
  size_t len = 0;
  unsigned char *bytes = read_file(jpg, &len);
  uint32_t w, h;
  if (bytes && write_file(in_scratch("cut.jpg"), bytes, len / 4)) {
    EXPECT(eo_image_read(in_scratch("cut.jpg"), EO_PIXEL_RGB8, pattern, S * S * 3, &w, &h, NULL), EO_ERR_FORMAT);
    CHECK(strstr(eo_last_error(), "truncated") != NULL, "message: %s", eo_last_error());
  }
  free(bytes), free(pattern), free(huge);
  OK(eo_latent_release(example));
  OK(eo_edit_release(e));
  OK(eo_model_release(m));
}

static int point_in_box(eo_point p, const float *b) {
  return p.x >= b[0] && p.x <= b[2] && p.y >= b[1] && p.y <= b[3];
}

/* Whether pixel (x, y) of the photo maps outside the model's crop of a
 * face (transform t: photo -> crop, crop of r x r pixels), with a margin. */
static int outside_crop(const double *t, uint32_t x, uint32_t y, uint32_t r) {
  double cx = t[0] * x + t[1] * y + t[2], cy = t[3] * x + t[4] * y + t[5];
  return cx < -1.0 || cy < -1.0 || cx > r || cy > r;
}

/* Detection: the group's faces, largest first, each box around its
 * landmarks; partial reads; refusals with messages. */
static void test_faces_detect(eo_detector det, const eo_image_view *group) {
  eo_detect_options o;
  OK(eo_detect_options_init(&o));
  CHECK(o.struct_size == sizeof o && o.min_face_size >= 12.0f && o.score_threshold > 0.0f && o.score_threshold < 1.0f,
        "detect defaults: size %u, min face %g, threshold %g", o.struct_size, o.min_face_size, o.score_threshold);
  eo_face faces[16];
  size_t count = 99;
  OK(eo_faces_detect(det, group, &o, faces, 16, &count));
  CHECK(count == GROUP_FACES, "%zu faces found in the group photo, expected %d", count, GROUP_FACES);
  for (size_t i = 0; i < count && i < 16; i++) {
    const float *b = faces[i].bbox;
    CHECK(b[2] > b[0] + 20 && b[3] > b[1] + 20, "face %zu: box %g,%g,%g,%g", i, b[0], b[1], b[2], b[3]);
    CHECK(faces[i].score >= o.score_threshold && faces[i].score <= 1.0f, "face %zu: score %g", i, faces[i].score);
    for (int k = 0; k < 5; k++)
      CHECK(point_in_box(faces[i].landmarks[k], b), "face %zu: landmark %d (%g, %g) outside its box", i, k,
            faces[i].landmarks[k].x, faces[i].landmarks[k].y);
    if (i > 0) {
      const float *a = faces[i - 1].bbox;
      CHECK((a[2] - a[0]) * (a[3] - a[1]) >= (b[2] - b[0]) * (b[3] - b[1]), "face %zu is larger than face %zu", i,
            i - 1);
    }
  }
  /* NULL options are the defaults. */
  eo_face again[16];
  size_t count2 = 0;
  OK(eo_faces_detect(det, group, NULL, again, 16, &count2));
  CHECK(count2 == count && memcmp(again, faces, count * sizeof *faces) == 0, "NULL options found other faces");

  /* A smaller cap: the first faces written, nothing past the cap, the full count. */
  eo_face few[3];
  memset(few, 0x5A, sizeof few);
  count2 = 0;
  OK(eo_faces_detect(det, group, &o, few, 2, &count2));
  CHECK(count2 == count, "cap 2: count %zu, expected %zu", count2, count);
  CHECK(memcmp(few, faces, 2 * sizeof *few) == 0, "cap 2: the first two faces differ");
  unsigned char untouched[sizeof(eo_face)];
  memset(untouched, 0x5A, sizeof untouched);
  CHECK(memcmp(&few[2], untouched, sizeof untouched) == 0, "cap 2: a third face was written");
  count2 = 0;
  OK(eo_faces_detect(det, group, &o, NULL, 0, &count2));
  CHECK(count2 == count, "cap 0: count %zu", count2);
  BAD_ARG(eo_faces_detect(det, group, &o, faces, 16, NULL));
  BAD_ARG(eo_faces_detect(det, group, &o, NULL, 4, &count2));
  BAD_ARG(eo_faces_detect(det, NULL, &o, faces, 16, &count2));

  /* A photo under 12 pixels is refused; a flat one has no face (EO_OK, count 0). */
  uint8_t small[10 * 10 * 3];
  memset(small, 128, sizeof small);
  eo_image_view ten = {small, 10, 10, 30, EO_PIXEL_RGB8};
  BAD_ARG(eo_faces_detect(det, &ten, &o, faces, 16, &count2));
  CHECK(strstr(eo_last_error(), "10x10") != NULL, "message: %s", eo_last_error());
  enum { FW = 160, FH = 120 };
  uint8_t *flat = malloc(FW * FH * 3);
  memset(flat, 140, FW * FH * 3);
  eo_image_view flat_view = {flat, FW, FH, FW * 3, EO_PIXEL_RGB8};
  count2 = 99;
  OK(eo_faces_detect(det, &flat_view, &o, faces, 16, &count2));
  CHECK(count2 == 0, "a flat picture has %zu faces", count2);
  free(flat);

  /* Options out of range are refused by name. */
  eo_detect_options bad = o;
  bad.min_face_size = 5.0f;
  BAD_ARG(eo_faces_detect(det, group, &bad, faces, 16, &count2));
  CHECK(strstr(eo_last_error(), "min_face_size") != NULL, "message: %s", eo_last_error());
  bad = o;
  bad.score_threshold = 1.5f;
  BAD_ARG(eo_faces_detect(det, group, &bad, faces, 16, &count2));
  CHECK(strstr(eo_last_error(), "score_threshold") != NULL, "message: %s", eo_last_error());
  BAD_ARG(eo_detect_options_init(NULL));
}

/* Missing and damaged detector files: refused with a status and a message. */
static void test_detector_files(void) {
  eo_detector d = {0};
  EXPECT(eo_detector_load(in_scratch("no-such-detector.safetensors"), &d), EO_ERR_IO);
  CHECK(strstr(eo_last_error(), "no-such-detector") != NULL, "message: %s", eo_last_error());
  const char *installed = getenv("EDITONE_FACE_DETECTOR");
  eo_detector good = {0};
  OK(eo_detector_load(NULL, &good));
  /* The default file, copied with one byte flipped. */
  char path[4096];
  snprintf(path, sizeof path, "%s", installed ? installed : "");
  if (!installed) {
    /* The library's default: the setup cache of the source folder. */
    const char *fixtures = tiny_path; /* REPO/tests/fixtures/stylegan2/tiny64 */
    const char *cut = strstr(fixtures, "/tests/fixtures/");
    if (cut) snprintf(path, sizeof path, "%.*s/.cache/models/mtcnn.safetensors", (int)(cut - fixtures), fixtures);
  }
  size_t len = 0;
  unsigned char *bytes = read_file(path, &len);
  CHECK(bytes != NULL && len > 1000, "cannot read the installed detector '%s'", path);
  if (bytes) {
    bytes[len / 2] ^= 0x01;
    CHECK(write_file(in_scratch("flipped-detector.safetensors"), bytes, len), "cannot write the flipped copy");
    EXPECT(eo_detector_load(in_scratch("flipped-detector.safetensors"), &d), EO_ERR_FORMAT);
    CHECK(strstr(eo_last_error(), "corrupt") != NULL, "message: %s", eo_last_error());
    CHECK(write_file(in_scratch("short-detector.safetensors"), bytes, len / 3), "cannot write the short copy");
    eo_status st = eo_detector_load(in_scratch("short-detector.safetensors"), &d);
    CHECK(st == EO_ERR_FORMAT || st == EO_ERR_IO, "a truncated detector: %s", eo_status_name(st));
    CHECK(strlen(eo_last_error()) > 8, "no message for a truncated detector");
    free(bytes);
  }
  BAD_ARG(eo_detector_load(NULL, NULL));
  OK(eo_detector_release(good));
  BAD_HANDLE(eo_detector_release(good));
  uint8_t px[16 * 16 * 3] = {0};
  eo_image_view v = {px, 16, 16, 48, EO_PIXEL_RGB8};
  size_t count = 0;
  BAD_HANDLE(eo_faces_detect(good, &v, NULL, NULL, 0, &count));
}

/* Inversion of two faces, their records, the photo rendered back, refusals. */
static void test_faces_photo(eo_detector det, const eo_image_view *group) {
  eo_model m;
  OK(eo_model_load_default(&m));
  eo_model_desc d = {sizeof d};
  OK(eo_model_info(m, &d));
  size_t per = (size_t)d.num_ws * d.w_dim, bytes = (size_t)group->stride * group->height;
  eo_align align = 99;
  OK(eo_model_alignment(m, &align));
  CHECK(align == EO_ALIGN_TEMPLATE, "the default model aligns faces with %u, not the template", align);

  eo_face faces[16];
  size_t count = 0;
  OK(eo_faces_detect(det, group, NULL, faces, 16, &count));
  if (count < 2) {
    CHECK(0, "need two faces, found %zu", count);
    OK(eo_model_release(m));
    return;
  }
  eo_invert_options opts;
  OK(eo_invert_options_init(&opts));
  opts.steps = 8;
  float psnr[2] = {0, 0};
  uint32_t crop[8] = {0};
  opts.psnr = psnr;
  opts.crop = crop;
  eo_latent ls[2] = {{0}, {0}};
  int steps = 0;
  OK(eo_faces_invert(m, group, faces, 2, EO_ALIGN_MODEL, &opts, count_invert, &steps, ls));
  CHECK(steps > 0, "no progress reported");
  for (int i = 0; i < 2; i++) {
    CHECK(psnr[i] > 8.0f && psnr[i] < 60.0f, "face %d: PSNR %g", i, psnr[i]);
    CHECK(crop[4 * i + 2] > 20 && crop[4 * i + 3] > 20 && crop[4 * i] < group->width && crop[4 * i + 1] < group->height,
          "face %d: crop %u,%u %ux%u", i, crop[4 * i], crop[4 * i + 1], crop[4 * i + 2], crop[4 * i + 3]);
  }

  /* Each latent remembers its photo, its face and its transform. */
  double t[2][6];
  for (int i = 0; i < 2; i++) {
    uint32_t has = 9, pw = 0, ph = 0;
    eo_face f;
    OK(eo_latent_face(ls[i], &has, &f, t[i]));
    CHECK(has == 1 && memcmp(&f, &faces[i], sizeof f) == 0, "latent %d: has_face %u, or another face", i, has);
    /* The transform takes the eyes to the crop's upper half, left to right. */
    double lx = t[i][0] * f.landmarks[0].x + t[i][1] * f.landmarks[0].y + t[i][2];
    double ly = t[i][3] * f.landmarks[0].x + t[i][4] * f.landmarks[0].y + t[i][5];
    double rx = t[i][0] * f.landmarks[1].x + t[i][1] * f.landmarks[1].y + t[i][2];
    CHECK(lx > 0 && lx < rx && rx < d.resolution && ly > 0 && ly < d.resolution / 2.0,
          "latent %d: eyes mapped to (%g, %g) and x %g", i, lx, ly, rx);
    OK(eo_latent_photo(ls[i], &pw, &ph, NULL));
    CHECK(pw == group->width && ph == group->height, "latent %d remembers a %ux%u photo", i, pw, ph);
  }
  OK(eo_latent_face(ls[0], &(uint32_t){0}, NULL, NULL));
  BAD_ARG(eo_latent_face(ls[0], NULL, NULL, NULL));

  /* Unedited, the photo comes back byte for byte. */
  uint8_t *out = malloc(bytes), *out2 = malloc(bytes);
  eo_image_view dst = {out, group->width, group->height, group->stride, EO_PIXEL_RGB8};
  eo_image_view dst2 = {out2, group->width, group->height, group->stride, EO_PIXEL_RGB8};
  OK(eo_render_photo(ls, 2, EO_RENDER_AUTO, &dst));
  CHECK(memcmp(out, group->data, bytes) == 0, "the unedited faces do not give the photo back");

  /* An edit made on face 0: at strength 0 it leaves face 0 as it was, so
   * the photo comes back exactly; at strength 3 it changes both faces
   * (each with its own alpha) and nothing outside their crops. */
  float *dir = calloc(per, sizeof *dir);
  dir[3] = 1.0f;
  eo_edit e;
  eo_latent edited[2] = {{0}, {0}}, same[2] = {{0}, {0}};
  OK(eo_edit_from_direction(ls[0], dir, d.w_dim, 3.0f, &e));
  OK(eo_edit_apply_batch(e, ls, 2, edited, NULL));
  OK(eo_edit_set_strength(e, 0.0f));
  OK(eo_edit_apply(e, ls[0], &same[0]));
  same[1] = ls[1];
  OK(eo_render_photo(same, 2, EO_RENDER_RESIDUAL, &dst));
  CHECK(memcmp(out, group->data, bytes) == 0, "an identity edit does not give the photo back");
  same[1].id = 0;
  OK(eo_render_photo(edited, 2, EO_RENDER_AUTO, &dst));
  size_t inside = 0, outside = 0;
  for (uint32_t y = 0; y < group->height; y++)
    for (uint32_t x = 0; x < group->width; x++) {
      size_t at = (size_t)y * group->stride + (size_t)x * 3;
      if (memcmp(out + at, group->data + at, 3) == 0) continue;
      if (outside_crop(t[0], x, y, d.resolution) && outside_crop(t[1], x, y, d.resolution))
        outside++;
      else
        inside++;
    }
  CHECK(outside == 0, "%zu pixels outside the faces' crops changed", outside);
  CHECK(inside > 500, "the edit changed only %zu pixels of the faces", inside);
  OK(eo_render_photo(edited, 2, EO_RENDER_PLAIN, &dst2));

  /* The saved floats with the recorded transforms give the same latents:
   * the same photo, byte for byte, for the same edit. */
  float *w = malloc(2 * per * sizeof *w);
  OK(eo_latent_read(ls[0], w, per, NULL));
  OK(eo_latent_read(ls[1], w + per, per, NULL));
  double transforms[12];
  memcpy(transforms, t[0], sizeof t[0]);
  memcpy(transforms + 6, t[1], sizeof t[1]);
  eo_latent back[2] = {{0}, {0}}, back_edited[2] = {{0}, {0}};
  OK(eo_latents_from_faces(m, group, faces, transforms, 2, EO_ALIGN_MODEL, w, 2 * per, back));
  OK(eo_edit_set_strength(e, 3.0f));
  OK(eo_edit_apply_batch(e, back, 2, back_edited, NULL));
  OK(eo_render_photo(back_edited, 2, EO_RENDER_AUTO, &dst2));
  OK(eo_render_photo(edited, 2, EO_RENDER_AUTO, &dst));
  CHECK(memcmp(out, out2, bytes) == 0, "rebuilt latents render the edited photo differently");
  double t2[6];
  uint32_t has = 0;
  OK(eo_latent_face(back[1], &has, NULL, t2));
  CHECK(has == 1 && memcmp(t2, t[1], sizeof t2) == 0, "the rebuilt latent has another transform");
  /* Aligned again (no transforms), the default model's template gives the same transform. */
  eo_latent realigned[2] = {{0}, {0}};
  OK(eo_latents_from_faces(m, group, faces, NULL, 2, EO_ALIGN_TEMPLATE, w, 2 * per, realigned));
  OK(eo_latent_face(realigned[0], &has, NULL, t2));
  CHECK(fabs(t2[0] - t[0][0]) < 1e-9 && fabs(t2[2] - t[0][2]) < 1e-6, "aligned again: another transform");
  /* One face alone: the other stays as in the photo. */
  OK(eo_render_photo(&back_edited[1], 1, EO_RENDER_AUTO, &dst2));
  size_t changed_other = 0;
  for (uint32_t y = 0; y < group->height; y++)
    for (uint32_t x = 0; x < group->width; x++) {
      size_t at = (size_t)y * group->stride + (size_t)x * 3;
      if (memcmp(out2 + at, group->data + at, 3) != 0 && outside_crop(t[1], x, y, d.resolution)) changed_other++;
    }
  CHECK(changed_other == 0, "rendering face 1 alone changed %zu pixels outside it", changed_other);

  /* Refusals. */
  eo_latent bad[2] = {{0}, {0}}, seed = {0}, plain = {0}, other[1] = {{0}};
  eo_image_view small_dst = {out, group->width - 1, group->height, group->stride, EO_PIXEL_RGB8};
  BAD_ARG(eo_render_photo(edited, 2, EO_RENDER_AUTO, &small_dst));
  CHECK(strstr(eo_last_error(), "dst") != NULL, "message: %s", eo_last_error());
  BAD_ARG(eo_render_photo(edited, 2, 9, &dst));
  BAD_ARG(eo_render_photo(edited, 0, EO_RENDER_AUTO, &dst));
  BAD_ARG(eo_render_photo(NULL, 2, EO_RENDER_AUTO, &dst));
  BAD_ARG(eo_render_photo(edited, 2, EO_RENDER_AUTO, NULL));
  eo_latent twice[2] = {edited[0], back_edited[0]};
  BAD_ARG(eo_render_photo(twice, 2, EO_RENDER_AUTO, &dst));
  CHECK(strstr(eo_last_error(), "once") != NULL, "a face given twice: %s", eo_last_error());
  OK(eo_latent_from_seed(m, 4, 1.0f, &seed));
  eo_latent with_seed[2] = {edited[0], seed};
  BAD_ARG(eo_render_photo(with_seed, 2, EO_RENDER_AUTO, &dst));
  CHECK(strstr(eo_last_error(), "latents[1]") != NULL, "a non-face latent: %s", eo_last_error());
  OK(eo_latent_face(seed, &has, NULL, NULL));
  CHECK(has == 0, "a seed's latent has a face");
  eo_invert_options few;
  OK(eo_invert_options_init(&few));
  few.steps = 2;
  OK(eo_latent_invert(m, group, &few, NULL, NULL, &plain));
  eo_latent with_plain[2] = {plain, edited[1]};
  BAD_ARG(eo_render_photo(with_plain, 2, EO_RENDER_AUTO, &dst));
  /* Another photo: the group with one pixel changed. */
  uint8_t *copy = malloc(bytes);
  memcpy(copy, group->data, bytes);
  copy[0] ^= 0xFF;
  eo_image_view copy_view = {copy, group->width, group->height, group->stride, EO_PIXEL_RGB8};
  OK(eo_latents_from_faces(m, &copy_view, &faces[1], &transforms[6], 1, EO_ALIGN_MODEL, w + per, per, other));
  eo_latent two_photos[2] = {edited[0], other[0]};
  BAD_ARG(eo_render_photo(two_photos, 2, EO_RENDER_AUTO, &dst));
  CHECK(strstr(eo_last_error(), "different photos") != NULL, "two photos: %s", eo_last_error());
  /* Bad alignments, lengths and transforms. */
  BAD_ARG(eo_faces_invert(m, group, faces, 2, 9, &opts, NULL, NULL, bad));
  CHECK(strstr(eo_last_error(), "align") != NULL, "message: %s", eo_last_error());
  BAD_ARG(eo_latents_from_faces(m, group, faces, NULL, 2, 4, w, 2 * per, bad));
  BAD_ARG(eo_latents_from_faces(m, group, faces, transforms, 2, EO_ALIGN_MODEL, w, 2 * per - 1, bad));
  BAD_ARG(eo_latents_from_faces(m, group, faces, transforms, 0, EO_ALIGN_MODEL, w, 0, bad));
  double skewed[12];
  memcpy(skewed, transforms, sizeof skewed);
  skewed[1] += 0.3; /* no longer a similarity */
  BAD_ARG(eo_latents_from_faces(m, group, faces, skewed, 2, EO_ALIGN_MODEL, w, 2 * per, bad));
  skewed[1] = NAN;
  BAD_ARG(eo_latents_from_faces(m, group, faces, skewed, 2, EO_ALIGN_MODEL, w, 2 * per, bad));
  BAD_ARG(eo_faces_invert(m, group, faces, 0, EO_ALIGN_MODEL, &opts, NULL, NULL, bad));
  BAD_ARG(eo_faces_invert(m, group, faces, 2, EO_ALIGN_MODEL, &opts, NULL, NULL, NULL));
  BAD_ARG(eo_model_alignment(m, NULL));
  CHECK(bad[0].id == 0 && bad[1].id == 0, "a refused call created a latent");
  /* Cancelled: nothing created. */
  uint64_t last = 0;
  opts.steps = 20;
  EXPECT(eo_faces_invert(m, group, faces, 2, EO_ALIGN_MODEL, &opts, cancel_at_three, &last, bad), EO_ERR_CANCELLED);
  CHECK(bad[0].id == 0 && bad[1].id == 0, "a cancelled call created a latent");

  /* A face partly outside the photo: its crop is padded, the photo comes
   * back whole and nothing outside its crop changes. */
  eo_face edge = faces[0];
  float dx = -edge.bbox[0] - (edge.bbox[2] - edge.bbox[0]) / 2; /* half the box left of x = 0 */
  for (int k = 0; k < 4; k += 2) edge.bbox[k] += dx;
  for (int k = 0; k < 5; k++) edge.landmarks[k].x += dx;
  eo_latent cut[1] = {{0}}, cut_edited[1] = {{0}};
  opts.steps = 3;
  OK(eo_faces_invert(m, group, &edge, 1, EO_ALIGN_MODEL, &opts, NULL, NULL, cut));
  OK(eo_render_photo(cut, 1, EO_RENDER_AUTO, &dst));
  CHECK(memcmp(out, group->data, bytes) == 0, "a face cut by the border: the photo does not come back");
  OK(eo_edit_apply(e, cut[0], &cut_edited[0]));
  OK(eo_render_photo(cut_edited, 1, EO_RENDER_AUTO, &dst));
  double tc[6];
  OK(eo_latent_face(cut[0], &has, NULL, tc));
  outside = 0;
  for (uint32_t y = 0; y < group->height; y++)
    for (uint32_t x = 0; x < group->width; x++) {
      size_t at = (size_t)y * group->stride + (size_t)x * 3;
      if (memcmp(out + at, group->data + at, 3) != 0 && outside_crop(tc, x, y, d.resolution)) outside++;
    }
  CHECK(outside == 0, "a face cut by the border: %zu pixels outside its crop changed", outside);

  /* convert --align: recorded in the converted model. */
  const char *ffhq = in_scratch("default-ffhq.safetensors");
  const char *kept = in_scratch("default-kept.safetensors");
  char src[4096];
  snprintf(src, sizeof src, "%s", tiny_path);
  const char *cut_at = strstr(src, "/tests/fixtures/");
  if (cut_at) snprintf(src + (cut_at - src), sizeof src - (size_t)(cut_at - src), "/.cache/models/digiface-dcgan.safetensors");
  const char *source = getenv("EDITONE_DEFAULT_MODEL") ? getenv("EDITONE_DEFAULT_MODEL") : src;
  eo_model converted;
  OK(eo_model_convert_align(source, ffhq, EO_ALIGN_FFHQ, 0));
  OK(eo_model_load(ffhq, &converted));
  OK(eo_model_alignment(converted, &align));
  CHECK(align == EO_ALIGN_FFHQ, "converted with EO_ALIGN_FFHQ, the model says %u", align);
  OK(eo_model_release(converted));
  OK(eo_model_convert_align(ffhq, kept, EO_ALIGN_MODEL, 0));
  OK(eo_model_load(kept, &converted));
  OK(eo_model_alignment(converted, &align));
  CHECK(align == EO_ALIGN_FFHQ, "converted with EO_ALIGN_MODEL from an FFHQ model: %u", align);
  OK(eo_model_release(converted));
  EXPECT(eo_model_convert_align(source, ffhq, EO_ALIGN_NONE, 0), EO_ERR_EXISTS);
  OK(eo_model_convert_align(source, ffhq, EO_ALIGN_NONE, EO_WRITE_REPLACE));
  OK(eo_model_load(ffhq, &converted));
  OK(eo_model_alignment(converted, &align));
  CHECK(align == EO_ALIGN_NONE, "replaced with EO_ALIGN_NONE, the model says %u", align);
  OK(eo_model_release(converted));
  BAD_ARG(eo_model_convert_align(source, in_scratch("bad-align.safetensors"), 7, 0));
  CHECK(read_file(in_scratch("bad-align.safetensors"), &(size_t){0}) == NULL, "a refused conversion wrote a file");
  remove(ffhq);
  remove(kept);

  free(copy), free(w), free(dir), free(out), free(out2);
  OK(eo_latent_release(plain));
  OK(eo_latent_release(seed));
  OK(eo_latent_release(other[0]));
  OK(eo_latent_release(cut[0]));
  OK(eo_latent_release(cut_edited[0]));
  for (int i = 0; i < 2; i++) {
    OK(eo_latent_release(ls[i]));
    OK(eo_latent_release(edited[i]));
    if (same[i].id) OK(eo_latent_release(same[i]));
    OK(eo_latent_release(back[i]));
    OK(eo_latent_release(back_edited[i]));
    OK(eo_latent_release(realigned[i]));
  }
  OK(eo_edit_release(e));
  OK(eo_model_release(m));
}

static void test_faces(void) {
  eo_image_view group = read_photo(group_path);
  eo_detector det = {0};
  if (!group.data) {
    CHECK(0, "cannot read the group photo '%s'", group_path);
    return;
  }
  OK(eo_detector_load(NULL, &det));
  test_faces_detect(det, &group);
  test_detector_files();
  test_faces_photo(det, &group);
  OK(eo_detector_release(det));
  free(group.data);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FIXTURES_DIR GROUP_PHOTO\n", argv[0]);
    return 2;
  }
  group_path = argv[2];
  if (!mkdtemp(scratch)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(tiny_path, sizeof tiny_path, "%s/tiny64", argv[1]);
  snprintf(cond_path, sizeof cond_path, "%s/cond128", argv[1]);
  CHECK(eo_abi_version() == EO_ABI_VERSION, "ABI %u, header %u", eo_abi_version(), EO_ABI_VERSION);
  eo_engine_options opts;
  OK(eo_engine_options_init(&opts));
  opts.device = "cpu";
  OK(eo_init(&opts));

  test_full_flow();
  test_null_pointers();
  test_lengths_and_values();
  test_handles();
  test_cancel_and_presets();
  test_concurrent_apply();
  test_drag();
  test_invert();
  test_convert();
  test_alphas();
  test_files_are_sacred();
  test_hostile_values();
  test_faces();

  /* A panic inside the library becomes EO_ERR_INTERNAL with its message,
   * and the library goes on working. */
  EXPECT(eo_test_panic(), EO_ERR_INTERNAL);
  CHECK(strstr(eo_last_error(), "a bug in editone") && strstr(eo_last_error(), "eo_test_panic was called"),
        "panic message: %s", eo_last_error());
  size_t none = 0;
  BAD_ARG(eo_device_name(NULL, 0, NULL));
  OK(eo_device_name(NULL, 0, &none));
  CHECK(none > 1, "device name size %zu", none);

  size_t models = 9, latents = 9, edits = 9;
  OK(eo_live_handles(&models, &latents, &edits));
  CHECK(models == 0 && latents == 0 && edits == 0, "live handles at exit: %zu models, %zu latents, %zu edits",
        models, latents, edits);
  remove_scratch();
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}

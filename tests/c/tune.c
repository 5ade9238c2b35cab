/* C API tests of pivotal tuning (issue 22): eo_model_tune and the tuned
 * model's handles, files, edits and renders, compiled against the installed
 * header and library and run under AddressSanitizer by `make test`.
 * Usage: test_tune FIXTURES_DIR GROUP_PHOTO (the folder holding tiny64/, a
 * model the tuned file must refuse; a synthetic group photo of default-model
 * faces, as `cargo run --example synthetic_group -- GROUP_PHOTO 1 5 640x480`
 * writes it). Two faces, few steps: the whole file runs in seconds. */
#include "testing.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FACES = 2, TUNE_STEPS = 20 };

static char scratch[] = "/tmp/editone-tune-XXXXXX";
static char tiny_path[4096];

/* scratch/<name> in one of two static buffers. */
static const char *at(const char *name) {
  static char paths[2][4096];
  static int next;
  char *p = paths[next++ % 2];
  snprintf(p, 4096, "%s/%s", scratch, name);
  return p;
}

/* How many entries the scratch folder holds (hidden temporary files too). */
static int scratch_entries(void) {
  DIR *d = opendir(scratch);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d) closedir(d);
  return n;
}

/* The live handles as one comparable triple. */
typedef struct {
  size_t models, latents, edits;
} live;

static live live_now(void) {
  live h = {0, 0, 0};
  OK(eo_live_handles(&h.models, &h.latents, &h.edits));
  return h;
}

static int same_live(live a, live b) { return a.models == b.models && a.latents == b.latents && a.edits == b.edits; }

/* What every test starts from: the default model, the group photo, two of
 * its faces inverted on the model (latents `ls`) and their PSNRs. */
typedef struct {
  eo_model m;
  eo_model_desc d;
  size_t per;          /* floats of a latent */
  eo_image_view photo; /* the group photo, RGB8 */
  eo_face faces[FACES];
  double transforms[6 * FACES];
  eo_align align;
  eo_latent ls[FACES];
  float psnr[FACES];
} base_run;

/* A model's plain render of a latent into a new buffer (resolution^2 RGB). */
static uint8_t *render_plain(eo_latent l, const eo_model_desc *d) {
  size_t bytes = (size_t)d->resolution * d->resolution * 3;
  uint8_t *px = calloc(bytes, 1);
  eo_image_view v = {px, d->resolution, d->resolution, d->resolution * 3, EO_PIXEL_RGB8};
  if (px) OK(eo_render_ex(l, EO_RENDER_PLAIN, &v));
  return px;
}

/* Whether two latents render the same plain picture, byte for byte. */
static int same_render(eo_latent a, eo_latent b, const eo_model_desc *d) {
  uint8_t *x = render_plain(a, d), *y = render_plain(b, d);
  int same = x && y && memcmp(x, y, (size_t)d->resolution * d->resolution * 3) == 0;
  free(x);
  free(y);
  return same;
}

/* The photo with latents ls[0..n] rendered in `mode`, into a new buffer. */
static uint8_t *render_on_photo(const eo_latent *ls, size_t n, eo_render_mode mode, const eo_image_view *photo) {
  size_t bytes = (size_t)photo->stride * photo->height;
  uint8_t *px = calloc(bytes, 1);
  eo_image_view v = {px, photo->width, photo->height, photo->stride, EO_PIXEL_RGB8};
  if (px) OK(eo_render_photo(ls, n, mode, &v));
  return px;
}

static int start_base(base_run *b, const char *group_path) {
  eo_detector det = {0};
  eo_face found[16];
  size_t count = 0;
  memset(b, 0, sizeof *b);
  b->d.struct_size = sizeof b->d;
  b->photo = read_photo(group_path);
  OK(eo_model_load_default(&b->m));
  OK(eo_model_info(b->m, &b->d));
  OK(eo_model_alignment(b->m, &b->align));
  b->per = (size_t)b->d.num_ws * b->d.w_dim;
  OK(eo_detector_load(NULL, &det));
  if (b->photo.data) OK(eo_faces_detect(det, &b->photo, NULL, found, 16, &count));
  OK(eo_detector_release(det));
  if (count < FACES) {
    CHECK(0, "need %d faces in '%s', found %zu", FACES, group_path, count);
    return 0;
  }
  memcpy(b->faces, found, sizeof b->faces);
  eo_invert_options opts;
  OK(eo_invert_options_init(&opts));
  opts.steps = 40;
  opts.psnr = b->psnr;
  OK(eo_faces_invert(b->m, &b->photo, b->faces, FACES, EO_ALIGN_MODEL, &opts, NULL, NULL, b->ls));
  for (int i = 0; i < FACES; i++) OK(eo_latent_face(b->ls[i], &(uint32_t){0}, NULL, &b->transforms[6 * i]));
  return 1;
}

static void end_base(base_run *b) {
  for (int i = 0; i < FACES; i++)
    if (b->ls[i].id) OK(eo_latent_release(b->ls[i]));
  if (b->m.id) OK(eo_model_release(b->m));
  free(b->photo.data);
}

/* Progress of a tuning: the last step reported, and when to cancel. */
typedef struct {
  uint64_t last, total, cancel_at;
  int other_stage;
} tune_progress;

static int on_tune(void *user, const char *stage, uint64_t done, uint64_t total) {
  tune_progress *p = user;
  if (strcmp(stage, "tune") != 0) p->other_stage = 1;
  p->last = done;
  p->total = total;
  return p->cancel_at && done >= p->cancel_at;
}

/* Tunes the base's latents with `steps` steps; PSNRs after tuning into psnr. */
static eo_status tune(const base_run *b, uint32_t steps, float *psnr, eo_model *out, eo_latent *tuned) {
  eo_tune_options opts;
  tune_progress p = {0, 0, 0, 0};
  OK(eo_tune_options_init(&opts));
  opts.steps = steps;
  opts.psnr = psnr;
  eo_status st = eo_model_tune(b->m, b->ls, FACES, &opts, on_tune, &p, out, tuned);
  CHECK(st != EO_OK || (p.last == steps && p.total == steps && !p.other_stage),
        "tuning reported step %llu of %llu (other stages: %d), expected %u of %u", (unsigned long long)p.last,
        (unsigned long long)p.total, p.other_stage, steps, steps);
  return st;
}

/* The options' defaults, the tuned model's shape and what its latents carry. */
static void test_tuned_model(const base_run *b, eo_model tuned, const eo_latent *tl, const float *psnr) {
  eo_tune_options o;
  OK(eo_tune_options_init(&o));
  CHECK(o.struct_size == sizeof o && o.steps >= 1 && o.steps <= 100000 && fabsf(o.learning_rate - 2e-4f) < 1e-9f &&
            fabsf(o.locality_weight - 0.1f) < 1e-9f && fabsf(o.locality_reach - 0.5f) < 1e-9f && !o.vgg16_path &&
            !o.psnr,
        "tune option defaults: %u steps, lr %g, locality %g reach %g", o.steps, o.learning_rate, o.locality_weight,
        o.locality_reach);
  uint32_t flag = 9;
  OK(eo_model_is_tuned(b->m, &flag));
  CHECK(flag == 0, "the base says it is tuned");
  OK(eo_model_is_tuned(tuned, &flag));
  CHECK(flag == 1, "the tuned model says it is not tuned");
  eo_model_desc d = {sizeof d};
  OK(eo_model_info(tuned, &d));
  CHECK(d.resolution == b->d.resolution && d.num_ws == b->d.num_ws && d.w_dim == b->d.w_dim &&
            strcmp(d.architecture, b->d.architecture) == 0,
        "the tuned model has another shape");
  float *w0 = malloc(b->per * sizeof *w0), *w1 = malloc(b->per * sizeof *w1);
  for (int i = 0; i < FACES; i++) {
    CHECK(psnr[i] > b->psnr[i], "face %d: tuned PSNR %.2f dB does not beat the inversion's %.2f dB", i, psnr[i],
          b->psnr[i]);
    printf("face %d: PSNR %.2f dB inverted, %.2f dB after %d tuning steps\n", i, b->psnr[i], psnr[i], TUNE_STEPS);
    OK(eo_latent_read(b->ls[i], w0, b->per, NULL));
    OK(eo_latent_read(tl[i], w1, b->per, NULL));
    CHECK(memcmp(w0, w1, b->per * sizeof *w0) == 0, "tuned latent %d has other values", i);
    double t[6];
    uint32_t has = 0, pw = 0, ph = 0;
    OK(eo_latent_face(tl[i], &has, NULL, t));
    CHECK(has && memcmp(t, &b->transforms[6 * i], sizeof t) == 0, "tuned latent %d lost its face", i);
    OK(eo_latent_photo(tl[i], &pw, &ph, NULL));
    CHECK(pw == b->photo.width && ph == b->photo.height, "tuned latent %d lost its photo", i);
    CHECK(!same_render(b->ls[i], tl[i], &b->d), "face %d renders the same through the tuned model", i);
  }
  free(w0);
  free(w1);
  /* Untouched, both models give the photo back exactly. */
  size_t bytes = (size_t)b->photo.stride * b->photo.height;
  uint8_t *px = render_on_photo(tl, FACES, EO_RENDER_AUTO, &b->photo);
  CHECK(px && memcmp(px, b->photo.data, bytes) == 0, "the tuned latents do not give the photo back");
  free(px);
  /* One photo's faces render through one model. */
  eo_latent mixed[FACES] = {tl[0], b->ls[1]};
  uint8_t *buf = calloc(bytes, 1);
  eo_image_view v = {buf, b->photo.width, b->photo.height, b->photo.stride, EO_PIXEL_RGB8};
  BAD_ARG(eo_render_photo(mixed, FACES, EO_RENDER_AUTO, &v));
  free(buf);
}

/* A bad option: eo_model_tune refuses it with EO_ERR_INVALID_ARGUMENT
 * naming `field`, and creates nothing. */
static void refuse_option(const base_run *b, const eo_tune_options *o, const char *field) {
  live before = live_now();
  eo_model out = {0};
  eo_latent got[FACES] = {{0}, {0}};
  BAD_ARG(eo_model_tune(b->m, b->ls, FACES, o, NULL, NULL, &out, got));
  CHECK(strstr(eo_last_error(), field) != NULL, "refused without naming %s: %s", field, eo_last_error());
  CHECK(out.id == 0 && got[0].id == 0 && same_live(before, live_now()), "a refused tuning (%s) created a handle", field);
}

/* Every refusal of eo_model_tune; none creates a handle. */
static void test_bad_options(const base_run *b, eo_model tuned, const eo_latent *tl) {
  eo_tune_options o;
  OK(eo_tune_options_init(&o));
  o.steps = 0;
  refuse_option(b, &o, "steps");
  OK(eo_tune_options_init(&o));
  o.learning_rate = 0;
  refuse_option(b, &o, "learning_rate");
  o.learning_rate = -1e-3f;
  refuse_option(b, &o, "learning_rate");
  o.learning_rate = NAN;
  refuse_option(b, &o, "learning_rate");
  OK(eo_tune_options_init(&o));
  o.locality_weight = -0.1f;
  refuse_option(b, &o, "locality_weight");
  o.locality_weight = INFINITY;
  refuse_option(b, &o, "locality_weight");
  OK(eo_tune_options_init(&o));
  o.locality_reach = 0;
  refuse_option(b, &o, "locality_reach");
  o.locality_reach = 1.5f;
  refuse_option(b, &o, "locality_reach");
  OK(eo_tune_options_init(&o));
  o.vgg16_path = at("no-vgg16.pt");
  o.steps = 1;
  EXPECT(eo_model_tune(b->m, b->ls, FACES, &o, NULL, NULL, &(eo_model){0}, (eo_latent[FACES]){{0}}), EO_ERR_IO);

  live before = live_now();
  eo_model out = {0};
  eo_latent got[FACES] = {{0}, {0}}, seed = {0}, mixed[FACES] = {b->ls[0], tl[1]};
  OK(eo_tune_options_init(&o));
  o.steps = 1;
  BAD_ARG(eo_model_tune(b->m, b->ls, 0, &o, NULL, NULL, &out, got));
  eo_latent many[257], many_out[257];
  for (int i = 0; i < 257; i++) many[i] = b->ls[i % FACES];
  BAD_ARG(eo_model_tune(b->m, many, 257, &o, NULL, NULL, &out, many_out));
  CHECK(strstr(eo_last_error(), "256") != NULL, "257 photos: %s", eo_last_error());
  BAD_ARG(eo_model_tune(b->m, NULL, FACES, &o, NULL, NULL, &out, got));
  BAD_ARG(eo_model_tune(b->m, b->ls, FACES, &o, NULL, NULL, NULL, got));
  BAD_ARG(eo_model_tune(b->m, b->ls, FACES, &o, NULL, NULL, &out, NULL));
  BAD_HANDLE(eo_model_tune((eo_model){0}, b->ls, FACES, &o, NULL, NULL, &out, got));
  /* A latent of another model: the tuned model's, given with the base. */
  BAD_HANDLE(eo_model_tune(b->m, mixed, FACES, &o, NULL, NULL, &out, got));
  CHECK(strstr(eo_last_error(), "latents[1]") != NULL, "another model's latent: %s", eo_last_error());
  /* A latent that was not inverted from a photo. */
  OK(eo_latent_from_seed(b->m, 3, 1.0f, &seed));
  eo_latent with_seed[FACES] = {b->ls[0], seed};
  BAD_ARG(eo_model_tune(b->m, with_seed, FACES, &o, NULL, NULL, &out, got));
  CHECK(strstr(eo_last_error(), "latents[1]") && strstr(eo_last_error(), "photo"), "a seed's latent: %s",
        eo_last_error());
  OK(eo_latent_release(seed));
  /* A tuned model is not tuned again: its base is, on all the photos. */
  BAD_ARG(eo_model_tune(tuned, tl, FACES, &o, NULL, NULL, &out, got));
  CHECK(strstr(eo_last_error(), "already tuned") != NULL, "tuning a tuned model: %s", eo_last_error());
  CHECK(out.id == 0 && got[0].id == 0 && got[1].id == 0 && same_live(before, live_now()),
        "a refused tuning created a handle");
  /* The other entry points' NULLs and handles. */
  BAD_ARG(eo_tune_options_init(NULL));
  BAD_ARG(eo_model_is_tuned(b->m, NULL));
  BAD_HANDLE(eo_model_is_tuned((eo_model){0}, &(uint32_t){0}));
  BAD_ARG(eo_model_save_tuned(b->m, at("base.safetensors")));
  CHECK(strstr(eo_last_error(), "not tuned") != NULL, "saving the base: %s", eo_last_error());
  BAD_HANDLE(eo_model_save_tuned((eo_model){0}, at("none.safetensors")));
  BAD_ARG(eo_model_load_tuned(b->m, NULL, &out));
  BAD_ARG(eo_model_load_tuned(b->m, at("x.safetensors"), NULL));
  BAD_HANDLE(eo_model_load_tuned((eo_model){0}, at("x.safetensors"), &out));
  CHECK(scratch_entries() == 0, "a refused call wrote a file");
}

/* Cancelled through the progress callback: no handle, no file, the base as it was. */
static void test_cancel(const base_run *b) {
  live before = live_now();
  uint8_t *ref = render_plain(b->ls[0], &b->d);
  eo_tune_options o;
  tune_progress p = {0, 0, 3, 0};
  eo_model out = {0};
  eo_latent got[FACES] = {{0}, {0}};
  OK(eo_tune_options_init(&o));
  o.steps = 50;
  EXPECT(eo_model_tune(b->m, b->ls, FACES, &o, on_tune, &p, &out, got), EO_ERR_CANCELLED);
  CHECK(p.last == 3, "cancelled at step 3, the last step reported is %llu", (unsigned long long)p.last);
  CHECK(out.id == 0 && got[0].id == 0 && got[1].id == 0, "a cancelled tuning gave out a handle");
  CHECK(same_live(before, live_now()), "a cancelled tuning left handles behind");
  CHECK(scratch_entries() == 0, "a cancelled tuning wrote a file");
  uint8_t *again = render_plain(b->ls[0], &b->d);
  CHECK(ref && again && memcmp(ref, again, (size_t)b->d.resolution * b->d.resolution * 3) == 0,
        "a cancelled tuning changed the base");
  free(ref);
  free(again);
}

/* A whole file's bytes with one byte flipped (at `from_end` bytes before its end) written to `out`. */
static void flip_copy(const char *src, const char *out, size_t from_end) {
  size_t len = 0;
  unsigned char *bytes = read_file(src, &len);
  FILE *f = fopen(out, "wb");
  CHECK(bytes && len > from_end && f, "cannot copy '%s'", src);
  if (bytes && len > from_end && f) {
    bytes[len - 1 - from_end] ^= 0x40;
    CHECK(fwrite(bytes, 1, len, f) == len, "cannot write '%s'", out);
  }
  if (f) fclose(f);
  free(bytes);
}

/* Saved, loaded over the base: bit exact; refused over another model or damaged. */
static void test_files(const base_run *b, eo_model tuned, const eo_latent *tl) {
  char path[4096];
  snprintf(path, sizeof path, "%s", at("tuned.safetensors"));
  OK(eo_model_save_tuned(tuned, path));
  EXPECT(eo_model_save_tuned(tuned, path), EO_ERR_EXISTS);
  OK(eo_model_save_tuned_ex(tuned, path, EO_WRITE_REPLACE));
  CHECK(scratch_entries() == 1, "saving left %d files, expected the tuned model alone", scratch_entries());

  eo_model again = {0};
  eo_latent back[FACES] = {{0}, {0}}, s1 = {0}, s2 = {0};
  OK(eo_model_load_tuned(b->m, path, &again));
  uint32_t flag = 0;
  OK(eo_model_is_tuned(again, &flag));
  CHECK(flag == 1, "a loaded tuned model says it is not tuned");
  float *w = malloc(FACES * b->per * sizeof *w);
  for (int i = 0; i < FACES; i++) OK(eo_latent_read(tl[i], w + i * b->per, b->per, NULL));
  OK(eo_latents_from_faces(again, &b->photo, b->faces, b->transforms, FACES, b->align, w, FACES * b->per, back));
  for (int i = 0; i < FACES; i++)
    CHECK(same_render(tl[i], back[i], &b->d), "face %d renders differently through the reloaded model", i);
  OK(eo_latent_from_seed(tuned, 11, 1.0f, &s1));
  OK(eo_latent_from_seed(again, 11, 1.0f, &s2));
  CHECK(same_render(s1, s2, &b->d), "seed 11 renders differently through the reloaded model");
  /* The same file again, through another path to the same base. */
  for (int i = 0; i < FACES; i++) OK(eo_latent_release(back[i]));
  OK(eo_latent_release(s1));
  OK(eo_latent_release(s2));
  OK(eo_model_release(again));
  free(w);

  /* Over another model; over a tuned model; damaged; not a tuned file. */
  eo_model tiny = {0}, out = {0};
  live before = live_now();
  OK(eo_model_load(tiny_path, &tiny));
  EXPECT(eo_model_load_tuned(tiny, path, &out), EO_ERR_INCOMPATIBLE);
  CHECK(strstr(eo_last_error(), "tuned from") != NULL, "over another model: %s", eo_last_error());
  OK(eo_model_release(tiny));
  BAD_ARG(eo_model_load_tuned(tuned, path, &out));
  flip_copy(path, at("damaged.safetensors"), 100);
  EXPECT(eo_model_load_tuned(b->m, at("damaged.safetensors"), &out), EO_ERR_FORMAT);
  CHECK(strstr(eo_last_error(), "damaged") != NULL, "a flipped byte: %s", eo_last_error());
  size_t len = 0;
  unsigned char *bytes = read_file(path, &len);
  FILE *f = fopen(at("short.safetensors"), "wb");
  if (f && bytes) fwrite(bytes, 1, len / 2, f);
  if (f) fclose(f);
  free(bytes);
  EXPECT(eo_model_load_tuned(b->m, at("short.safetensors"), &out), EO_ERR_FORMAT);
  char src[4200];
  snprintf(src, sizeof src, "%s/weights.safetensors", tiny_path);
  EXPECT(eo_model_load_tuned(b->m, src, &out), EO_ERR_FORMAT);
  CHECK(strstr(eo_last_error(), "not a tuned model") != NULL, "a model file: %s", eo_last_error());
  EXPECT(eo_model_load_tuned(b->m, at("missing.safetensors"), &out), EO_ERR_IO);
  /* A tuned file is not a model of its own. */
  CHECK(eo_model_load(path, &out) != EO_OK && strstr(eo_last_error(), "tuned") != NULL,
        "eo_model_load of a tuned file: %s", eo_last_error());
  CHECK(out.id == 0 && same_live(before, live_now()), "a refused load created a handle");
  remove(at("damaged.safetensors"));
  remove(at("short.safetensors"));
  remove(path);
}

/* Edits mix the base and the tuned model: same latent space, same alphas. */
static void test_edits(const base_run *b, eo_model tuned, const eo_latent *tl) {
  float *dir = calloc(b->per, sizeof *dir), *w0 = malloc(b->per * sizeof *w0), *w1 = malloc(b->per * sizeof *w1);
  dir[5] = 1.0f;
  eo_edit e = {0};
  eo_latent ed_tuned = {0}, ed_base = {0}, ref_tuned = {0}, ref_base = {0};
  OK(eo_edit_from_direction(b->ls[0], dir, b->d.w_dim, 3.0f, &e));
  OK(eo_edit_apply(e, tl[1], &ed_tuned));
  OK(eo_edit_apply(e, b->ls[1], &ed_base));
  OK(eo_latent_read(ed_tuned, w0, b->per, NULL));
  OK(eo_latent_read(ed_base, w1, b->per, NULL));
  CHECK(memcmp(w0, w1, b->per * sizeof *w0) == 0, "an edit moves the tuned latent elsewhere than the base latent");
  /* The edited tuned latent renders through the tuned model, not the base. */
  OK(eo_latent_from_w(tuned, w0, b->per, &ref_tuned));
  OK(eo_latent_from_w(b->m, w0, b->per, &ref_base));
  CHECK(same_render(ed_tuned, ref_tuned, &b->d), "the edited tuned latent does not render through the tuned model");
  CHECK(!same_render(ed_tuned, ref_base, &b->d), "the edited tuned latent renders through the base");
  /* Alphas depend on the latent's values only. */
  float a_base = 0, a_tuned = 1;
  for (int i = 0; i < FACES; i++) {
    OK(eo_edit_alpha(e, b->ls[i], &a_base));
    OK(eo_edit_alpha(e, tl[i], &a_tuned));
    CHECK(memcmp(&a_base, &a_tuned, sizeof a_base) == 0, "face %d: alpha %.9g on the base, %.9g tuned", i, a_base,
          a_tuned);
  }
  /* An edit made on the tuned model applies to the base's latents too. */
  eo_edit e2 = {0};
  eo_latent back = {0};
  OK(eo_edit_from_direction(tl[0], dir, b->d.w_dim, 2.0f, &e2));
  OK(eo_edit_apply(e2, b->ls[1], &back));
  OK(eo_edit_release(e2));
  OK(eo_latent_release(back));

  /* An identity edit, residual, through the tuned model: the photo exactly
   * (at strength 0 the example's face stays as it is, and the naive
   * baseline adds nothing to the other); at strength 3 the faces change. */
  size_t bytes = (size_t)b->photo.stride * b->photo.height;
  eo_latent edited[FACES] = {{0}, {0}};
  OK(eo_edit_set_strength(e, 0.0f));
  OK(eo_edit_apply(e, tl[0], &edited[0]));
  OK(eo_edit_apply_baseline(e, tl[1], EO_BASELINE_NAIVE, &edited[1]));
  uint8_t *px = render_on_photo(edited, FACES, EO_RENDER_RESIDUAL, &b->photo);
  CHECK(px && memcmp(px, b->photo.data, bytes) == 0, "an identity edit through the tuned model changed the photo");
  free(px);
  for (int i = 0; i < FACES; i++) OK(eo_latent_release(edited[i]));
  OK(eo_edit_set_strength(e, 3.0f));
  OK(eo_edit_apply_batch(e, tl, FACES, edited, NULL));
  px = render_on_photo(edited, FACES, EO_RENDER_AUTO, &b->photo);
  CHECK(px && memcmp(px, b->photo.data, bytes) != 0, "a strength-3 edit through the tuned model changed nothing");
  free(px);
  for (int i = 0; i < FACES; i++) OK(eo_latent_release(edited[i]));
  OK(eo_latent_release(ed_tuned));
  OK(eo_latent_release(ed_base));
  OK(eo_latent_release(ref_tuned));
  OK(eo_latent_release(ref_base));
  OK(eo_edit_release(e));
  free(dir);
  free(w0);
  free(w1);
}

/* The tuned model outlives its base, and the base outlives a tuned model. */
static void test_lifecycle(const char *group_path) {
  base_run b;
  eo_model tuned = {0};
  eo_latent tl[FACES] = {{0}, {0}}, seed = {0};
  float psnr[FACES];
  if (!start_base(&b, group_path)) {
    end_base(&b);
    return;
  }
  /* The tuned model released first: the base still renders and tunes. */
  uint8_t *before = render_plain(b.ls[0], &b.d);
  OK(tune(&b, 2, psnr, &tuned, tl));
  OK(eo_model_release(tuned));
  for (int i = 0; i < FACES; i++) OK(eo_latent_release(tl[i]));
  uint8_t *after = render_plain(b.ls[0], &b.d);
  CHECK(before && after && memcmp(before, after, (size_t)b.d.resolution * b.d.resolution * 3) == 0,
        "releasing the tuned model changed the base's render");
  free(after);
  OK(tune(&b, 2, psnr, &tuned, tl));
  uint8_t *tuned_px = render_plain(tl[0], &b.d);
  /* The base released first: the tuned model and its latents live on. */
  OK(eo_latent_release(b.ls[0]));
  OK(eo_latent_release(b.ls[1]));
  OK(eo_model_release(b.m));
  b.ls[0].id = b.ls[1].id = b.m.id = 0;
  uint8_t *still = render_plain(tl[0], &b.d);
  CHECK(tuned_px && still && memcmp(tuned_px, still, (size_t)b.d.resolution * b.d.resolution * 3) == 0,
        "the tuned latent renders differently after the base's release");
  OK(eo_latent_from_seed(tuned, 4, 1.0f, &seed));
  free(render_plain(seed, &b.d));
  size_t bytes = (size_t)b.photo.stride * b.photo.height;
  uint8_t *px = render_on_photo(tl, FACES, EO_RENDER_AUTO, &b.photo);
  CHECK(px && memcmp(px, b.photo.data, bytes) == 0, "without its base the tuned model loses the photo");
  OK(eo_model_save_tuned(tuned, at("orphan.safetensors")));
  remove(at("orphan.safetensors"));
  OK(eo_latent_release(seed));
  for (int i = 0; i < FACES; i++) OK(eo_latent_release(tl[i]));
  OK(eo_model_release(tuned));
  BAD_HANDLE(eo_model_release(tuned));
  BAD_HANDLE(eo_model_release(b.m));
  free(px);
  free(before);
  free(tuned_px);
  free(still);
  end_base(&b);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FIXTURES_DIR GROUP_PHOTO\n", argv[0]);
    return 2;
  }
  if (!mkdtemp(scratch)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(tiny_path, sizeof tiny_path, "%s/tiny64", argv[1]);
  eo_engine_options eng;
  OK(eo_engine_options_init(&eng));
  eng.device = "cpu";
  OK(eo_init(&eng));

  base_run b;
  eo_model tuned = {0};
  eo_latent tl[FACES] = {{0}, {0}};
  float psnr[FACES] = {0, 0};
  if (start_base(&b, argv[2])) {
    test_cancel(&b);
    if (tune(&b, TUNE_STEPS, psnr, &tuned, tl) == EO_OK) {
      test_tuned_model(&b, tuned, tl, psnr);
      test_bad_options(&b, tuned, tl);
      test_files(&b, tuned, tl);
      test_edits(&b, tuned, tl);
      for (int i = 0; i < FACES; i++) OK(eo_latent_release(tl[i]));
      OK(eo_model_release(tuned));
    } else {
      CHECK(0, "tuning failed: %s", eo_last_error());
    }
  }
  end_base(&b);
  test_lifecycle(argv[2]);

  size_t models = 9, latents = 9, edits = 9;
  OK(eo_live_handles(&models, &latents, &edits));
  CHECK(models == 0 && latents == 0 && edits == 0, "live handles at exit: %zu models, %zu latents, %zu edits",
        models, latents, edits);
  rmdir(scratch);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}

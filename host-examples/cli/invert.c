/*
 * editone invert: photos into the model's latent space. For each PHOTO it
 * writes, in --out DIR, NAME-photo.png (the photo as read, so DIR is
 * complete for 'editone apply --inverted DIR'), NAME-reconstruction.png,
 * NAME.json (crop, PSNR) and, last, NAME.f32 (the W+ latent, float32 LE).
 * With --faces it finds the photo's faces and inverts each aligned face
 * instead: NAME.json records the faces and NAME.faces.f32, last, holds one
 * latent per face (faceset.c).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char INVERT_USAGE[] =
    "usage: editone [global options] invert [--model PATH] PHOTO... --out DIR\n"
    "           [--steps N] [--wplus] [--vgg16 FILE] [--seed S] [--json] [--overwrite]\n"
    "           [--faces | --face K] [--align template|ffhq|none] [--threshold F]\n"
    "           [--min-face PX] [--detector PATH] [--tune [--tune-steps N]]\n"
    "\n"
    "Projects photos (PNG or JPEG, any size: the centred square is used) into\n"
    "the model's latent space, so they can be edited with 'editone apply\n"
    "--inverted DIR', which writes the edited photos at their own size.\n"
    "\n"
    "  --model PATH   model file or folder (default: the built-in face model)\n"
    "  --out DIR      where to write NAME.f32, NAME.json, NAME-photo.png and\n"
    "                 NAME-reconstruction.png for each PHOTO\n"
    "  --steps N      optimisation steps (default: the model's; 1000 StyleGAN2, 600 DCGAN)\n"
    "  --wplus        optimise one latent row per layer (closer fit, less editable)\n"
    "  --vgg16 FILE   TorchScript VGG16 (the official projector's vgg16.pt) for a\n"
    "                 perceptual loss; default a pixel loss over three scales\n"
    "  --seed S       seed of the random draws (default 303)\n"
    "  --json         print one JSON object per photo\n"
    "  --overwrite    replace output files that exist (never a PHOTO)\n"
    "\n"
    "Faces in photos (group photos, portraits of any framing):\n"
    "  --faces        find the faces (as 'editone faces' does), align each to the\n"
    "                 model's crop and invert it: NAME.faces.f32 holds one latent\n"
    "                 per face and NAME.json records each face's index, box, score,\n"
    "                 landmarks, photo-to-crop transform, crop and PSNR, which\n"
    "                 'editone apply --inverted DIR' reuses to edit every face and\n"
    "                 write one photo; NAME-reconstruction.png is the photo with\n"
    "                 the reconstructed faces blended in\n"
    "  --face K       the same for face K only (0 = the largest; see 'editone faces')\n"
    "  --align A      how faces are aligned: template (five landmarks fitted to the\n"
    "                 model's face template), ffhq (the FFHQ crop of StyleGAN2 face\n"
    "                 models) or none (the detector's box); default: the model's\n"
    "                 own, as 'editone info' shows it\n"
    "  --threshold F, --min-face PX, --detector PATH   the detector's options, as\n"
    "                 for 'editone faces'\n"
    "  --tune         then tune one copy of the generator on every face of the run\n"
    "                 together (pivotal tuning), so that it reproduces them: written\n"
    "                 to DIR/tuned.safetensors with DIR/tuned.manifest (the photos it\n"
    "                 was tuned on), which 'editone apply --inverted DIR' renders\n"
    "                 their edits through; NAME.json and NAME-reconstruction.png are\n"
    "                 the tuned ones (at most 256 faces in a run). Nothing is written\n"
    "                 until the tuning ends; the tuned model is renamed into place last\n"
    "  --tune-steps N tuning steps (default 100)\n"
    "A photo with no face (or no face K) is named on stderr and nothing is\n"
    "written for it; the other photos are inverted and the exit status is then 4.\n"
    "\n"
    "Nothing is written when two PHOTOs share a NAME (d1/a.png, d2/a.png), when\n"
    "an output would replace a PHOTO, or, without --overwrite, when an output\n"
    "exists. Each file is written under a hidden temporary name and renamed\n"
    "when whole; NAME.f32 (NAME.faces.f32) comes last, so a stopped run leaves\n"
    "no latent without its photo. An error (an unreadable photo, a library\n"
    "error) stops the run; the photos before it keep their files.\n";

typedef struct {
    const char *model, *out, *steps, *vgg16, *seed;
    int wplus, json;
    int faces;              /* --faces, or --face K */
    const char *face, *align;
    detect_text dx;
    int tune;               /* --tune */
    const char *tune_steps;
} invert_text;

/* invert --faces: what every photo needs. */
typedef struct {
    eo_detector det;
    eo_detect_options detect;
    eo_align align;     /* as asked (EO_ALIGN_MODEL: the model's) */
    eo_align used;      /* as done: the model's when align is EO_ALIGN_MODEL */
    int has_k;
    uint32_t k;
    int without;        /* photos with no face (no face K) */
    int tune_on;        /* --tune */
    eo_tune_options tune; /* --tune's options (--tune-steps) */
    size_t tuned_faces; /* faces inverted so far, for --tune's limit */
} face_run;

/* The most faces one generator is tuned on (eo_model_tune's n). */
#define MAX_TUNED_FACES 256u

/* "dir/name.jpg" -> "name". */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *start = slash ? slash + 1 : path;
    const char *dot = strrchr(start, '.');
    size_t len = dot && dot != start ? (size_t)(dot - start) : strlen(start);
    char *name = malloc(len + 1);
    if (name) {
        memcpy(name, start, len);
        name[len] = '\0';
    }
    return name;
}

/* The files invert writes for each photo, in the order it writes them (with --faces: FACE_SUFFIXES). */
static const char *const OUTPUT_SUFFIXES[] = { "-photo.png", "-reconstruction.png", ".json", ".f32" };
static const char *const FACE_SUFFIXES[] = { "-photo.png", "-reconstruction.png", ".json", ".faces.f32" };
enum { OUT_PHOTO, OUT_RECONSTRUCTION, OUT_JSON, OUT_LATENT, OUT_COUNT };

/* The summary of one photo: a line of NAME.json, and of stdout with --json. */
static void write_summary(FILE *f, const char *source, const uint32_t crop[4], float psnr, const char *latent)
{
    fputs("{\"photo\": ", f);
    json_string(f, source);
    fprintf(f, ", \"crop\": [%u, %u, %u, %u], \"psnr\": ", crop[0], crop[1], crop[2], crop[3]);
    json_number(f, psnr);
    fputs(", \"latent\": ", f);
    json_string(f, latent);
    fputs("}\n", f);
}

static int write_json_file(const char *path, const char *source, const uint32_t crop[4], float psnr, const char *latent)
{
    output_file out;
    int rc = open_output(path, &out);
    if (rc == EC_OK)
        write_summary(out.f, source, crop, psnr, latent);
    return close_output(&out, rc);
}

static int write_latent_file(eo_latent l, const eo_model_desc *d, const char *path)
{
    float *w = NULL;
    output_file out;
    int rc = read_latent(l, d, &w);
    if (rc == EC_OK && (rc = open_output(path, &out)) == EC_OK) {
        write_f32(out.f, w, latent_floats(d)); /* a failure sets the stream's error, which close_output reports */
        rc = close_output(&out, EC_OK);
    }
    free(w);
    return rc;
}

static int write_reconstruction(eo_latent l, const eo_model_desc *d, const char *path)
{
    uint8_t *pixels = xcalloc((size_t)d->resolution * d->resolution, 3);
    eo_image_view plain = { pixels, d->resolution, d->resolution, d->resolution * 3, EO_PIXEL_RGB8 };
    eo_status st;
    int rc = EC_OK;
    if (!pixels)
        rc = out_of_memory();
    else if ((st = eo_render_ex(l, EO_RENDER_PLAIN, &plain)) != EO_OK)
        rc = lib_error(st, "rendering the reconstruction");
    else if ((st = eo_image_write_ex(&plain, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(pixels);
    return rc;
}

/*
 * Writes the files of one photo (paths in OUTPUT_SUFFIXES order). NAME.f32
 * comes last: 'apply --inverted' lists those, so a run stopped between the
 * files never leaves a latent whose photo is missing.
 */
static int write_outputs(eo_latent l, const eo_model_desc *d, const eo_image_view *photo, char *const *paths,
                         const uint32_t crop[4], float psnr, const char *source, int json)
{
    eo_status st = eo_image_write_ex(photo, paths[OUT_PHOTO], write_flags());
    int rc = st == EO_OK ? EC_OK : write_error(st, paths[OUT_PHOTO]);
    if (rc == EC_OK)
        rc = write_reconstruction(l, d, paths[OUT_RECONSTRUCTION]);
    if (rc == EC_OK)
        rc = write_json_file(paths[OUT_JSON], source, crop, psnr, paths[OUT_LATENT]);
    if (rc == EC_OK)
        rc = write_latent_file(l, d, paths[OUT_LATENT]);
    if (rc == EC_OK && json)
        write_summary(stdout, source, crop, psnr, paths[OUT_LATENT]);
    else if (rc == EC_OK)
        printf("%s: PSNR %.2f dB (square %ux%u at %u,%u) -> %s\n", source, psnr, crop[2], crop[3], crop[0], crop[1],
               paths[OUT_LATENT]);
    return rc;
}

/* New strings OUT/NAME<suffix> for each of OUTPUT_SUFFIXES (FACE_SUFFIXES with --faces). */
static int output_paths(const invert_text *x, const char *photo, char **paths)
{
    char *name = base_name(photo);
    int rc = name ? EC_OK : out_of_memory();
    for (int k = 0; k < OUT_COUNT; k++) {
        paths[k] = name ? named_path(x->out, name, (x->faces ? FACE_SUFFIXES : OUTPUT_SUFFIXES)[k]) : NULL;
        if (!paths[k])
            rc = out_of_memory();
    }
    free(name);
    return rc;
}

static void free_paths(char **paths)
{
    for (int k = 0; k < OUT_COUNT; k++)
        free(paths[k]);
}

static int invert_one(eo_model m, const eo_model_desc *d, const invert_text *x, const eo_invert_options *base,
                      const char *source)
{
    char *paths[OUT_COUNT];
    eo_image_view photo = { 0 };
    eo_invert_options opts = *base;
    eo_latent l = { 0 };
    uint32_t crop[4] = { 0, 0, 0, 0 };
    float psnr = 0;
    progress p;
    int rc = output_paths(x, source, paths);
    if (rc == EC_OK)
        rc = read_image(source, EO_PIXEL_RGB8, &photo);
    if (rc == EC_OK) {
        opts.crop = crop;
        opts.psnr = &psnr;
        progress_start(&p, "invert");
        eo_status st = eo_latent_invert(m, &photo, &opts, on_progress, &p, &l);
        progress_finish(&p);
        if (st != EO_OK)
            rc = lib_error(st, "inverting '%s'", source);
    }
    if (rc == EC_OK)
        rc = write_outputs(l, d, &photo, paths, crop, psnr, source, x->json);
    release_latent(&l);
    free(photo.data);
    free_paths(paths);
    return rc;
}

/* ------------------------------------------------------------------ */
/* invert --faces                                                      */
/* ------------------------------------------------------------------ */

/* NAME-reconstruction.png: the photo with its faces' reconstructions blended in. */
static int write_faces_reconstruction(const eo_latent *ls, size_t n, const eo_image_view *photo, const char *path)
{
    uint8_t *pixels = xcalloc((size_t)photo->width * 3, photo->height);
    eo_image_view v = { pixels, photo->width, photo->height, photo->width * 3, EO_PIXEL_RGB8 };
    eo_status st;
    int rc = EC_OK;
    if (!pixels)
        rc = out_of_memory();
    else if ((st = eo_render_photo(ls, n, EO_RENDER_PLAIN, &v)) != EO_OK)
        rc = lib_error(st, "rendering the reconstruction");
    else if ((st = eo_image_write_ex(&v, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(pixels);
    return rc;
}

/* The n latents' W+ floats, one after the other, in a new array. */
static int face_latent_floats(const eo_latent *ls, size_t n, const eo_model_desc *d, float **out)
{
    size_t per = latent_floats(d);
    float *w = xcalloc(n * per, sizeof *w);
    if (!w)
        return out_of_memory();
    for (size_t i = 0; i < n; i++) {
        eo_status st = eo_latent_read(ls[i], w + i * per, per, NULL);
        if (st != EO_OK) {
            free(w);
            return lib_error(st, "reading the latent of face %zu", i);
        }
    }
    *out = w;
    return EC_OK;
}

static int write_floats_file(const float *w, size_t n, const char *path)
{
    output_file out;
    int rc = open_output(path, &out);
    if (rc == EC_OK)
        write_f32(out.f, w, n); /* a failure sets the stream's error, which close_output reports */
    return close_output(&out, rc);
}

static int write_face_set_file(const face_set *s, const char *source, char *const *paths)
{
    output_file out;
    int rc = open_output(paths[OUT_JSON], &out);
    if (rc == EC_OK)
        write_face_set_json(out.f, s, source, paths[OUT_LATENT], 0);
    return close_output(&out, rc);
}

static void print_face_summary(const face_set *s, const char *source, const char *latents)
{
    printf("%s: %zu face%s of %zu found (%s alignment) -> %s\n", source, s->n, s->n == 1 ? "" : "s", s->found,
           align_name(s->align), latents);
    for (size_t i = 0; i < s->n; i++) {
        const float *b = s->faces[i].bbox;
        printf("  face %u: box %.0f,%.0f %.0fx%.0f, PSNR %.2f dB", s->index[i], b[0], b[1], b[2] - b[0],
               b[3] - b[1], s->psnr[i]);
        if (s->psnr_inverted)
            printf(" tuned (%.2f dB inverted)", s->psnr_inverted[i]);
        putchar('\n');
    }
}

/*
 * Writes the files of a photo's faces (paths in FACE_SUFFIXES order):
 * the photo, the reconstruction, NAME.json (which holds the checksum of
 * the latents) and, last, NAME.faces.f32.
 */
static int write_face_outputs(const eo_latent *ls, const eo_model_desc *d, const eo_image_view *photo,
                              char *const *paths, face_set *s, const char *source, int json)
{
    float *w = NULL;
    eo_status st = eo_image_write_ex(photo, paths[OUT_PHOTO], write_flags());
    int rc = st == EO_OK ? EC_OK : write_error(st, paths[OUT_PHOTO]);
    if (rc == EC_OK)
        rc = write_faces_reconstruction(ls, s->n, photo, paths[OUT_RECONSTRUCTION]);
    if (rc == EC_OK)
        rc = face_latent_floats(ls, s->n, d, &w);
    if (rc == EC_OK) {
        s->latents_hash = fnv1a64_f32(w, s->n * latent_floats(d));
        rc = write_face_set_file(s, source, paths);
    }
    if (rc == EC_OK)
        rc = write_floats_file(w, s->n * latent_floats(d), paths[OUT_LATENT]);
    if (rc == EC_OK && json)
        write_face_set_json(stdout, s, source, paths[OUT_LATENT], 1);
    else if (rc == EC_OK)
        print_face_summary(s, source, paths[OUT_LATENT]);
    fflush(stdout);
    free(w);
    return rc;
}

/* The faces to invert: all found, or face K alone. */
static int choose_faces(face_set *s, const eo_face *found, const face_run *fr)
{
    s->n = fr->has_k ? 1 : s->found;
    s->faces = xcalloc(s->n, sizeof *s->faces);
    s->index = xcalloc(s->n, sizeof *s->index);
    s->transforms = xcalloc(6 * s->n, sizeof *s->transforms);
    s->crop = xcalloc(4 * s->n, sizeof *s->crop);
    s->psnr = xcalloc(s->n, sizeof *s->psnr);
    if (!s->faces || !s->index || !s->transforms || !s->crop || !s->psnr)
        return out_of_memory();
    for (size_t i = 0; i < s->n; i++) {
        s->index[i] = fr->has_k ? fr->k : (uint32_t)i;
        s->faces[i] = found[s->index[i]];
    }
    return EC_OK;
}

/* Inverts the chosen faces into ls[s->n], filling in their PSNR, crop and transform. */
static int invert_faces(eo_model m, const eo_invert_options *base, const eo_image_view *photo, face_set *s,
                        const face_run *fr, const char *source, eo_latent *ls)
{
    eo_invert_options opts = *base;
    progress p;
    eo_status st;
    opts.crop = s->crop;
    opts.psnr = s->psnr;
    progress_start(&p, "invert");
    st = eo_faces_invert(m, photo, s->faces, s->n, fr->align, &opts, on_progress, &p, ls);
    progress_finish(&p);
    if (st != EO_OK)
        return lib_error(st, "inverting the faces of '%s'", source);
    for (size_t i = 0; i < s->n; i++) {
        uint32_t has_face = 0;
        if ((st = eo_latent_face(ls[i], &has_face, NULL, &s->transforms[6 * i])) != EO_OK)
            return lib_error(st, "reading the transform of face %u of '%s'", s->index[i], source);
        if (!has_face)
            return fail("the library gave face %u of '%s' no face", s->index[i], source);
    }
    return EC_OK;
}

/* A photo's faces, found and inverted, waiting to be written (with --tune, after tuning). */
typedef struct {
    const char *source;
    char *name;             /* NAME of its files */
    char *paths[OUT_COUNT];
    eo_image_view photo;
    face_set s;             /* s.n 0: no face (no face K), nothing to write */
    eo_latent *ls;          /* s.n latents: the base model's, with --tune then the tuned model's */
} face_photo;

static void free_face_photo(face_photo *fp)
{
    free_latents(fp->ls, fp->s.n);
    free_face_set(&fp->s);
    free(fp->photo.data);
    free(fp->name);
    free_paths(fp->paths);
    memset(fp, 0, sizeof *fp);
}

/* The faces chosen in fp's photo, inverted, with the checksum of their latents (tuned.manifest lists it). */
static int invert_chosen(eo_model m, const eo_model_desc *d, const eo_invert_options *base, face_run *fr,
                         face_photo *fp)
{
    float *w = NULL;
    int rc = EC_OK;
    if (fr->tune_on && fr->tuned_faces + fp->s.n > MAX_TUNED_FACES)
        return fail("--tune: '%s' brings the run to %zu faces; one generator is tuned on at most %u faces: invert"
                    " the photos in smaller groups", fp->source, fr->tuned_faces + fp->s.n, MAX_TUNED_FACES);
    if (!(fp->ls = xcalloc(fp->s.n, sizeof *fp->ls)))
        return out_of_memory();
    if (fr->tune_on && !(fp->s.psnr_inverted = xcalloc(fp->s.n, sizeof *fp->s.psnr_inverted)))
        return out_of_memory();
    rc = invert_faces(m, base, &fp->photo, &fp->s, fr, fp->source, fp->ls);
    if (rc == EC_OK)
        rc = face_latent_floats(fp->ls, fp->s.n, d, &w);
    if (rc == EC_OK)
        fp->s.latents_hash = fnv1a64_f32(w, fp->s.n * latent_floats(d));
    fr->tuned_faces += fp->s.n;
    free(w);
    return rc;
}

/* One photo with --faces, found and inverted into fp; fr->without counts one with no face (no face K). */
static int find_face_photo(eo_model m, const eo_model_desc *d, const invert_text *x, face_run *fr,
                           const eo_invert_options *base, const char *source, face_photo *fp)
{
    eo_face *found = NULL;
    face_set *s = &fp->s;
    int rc;
    memset(fp, 0, sizeof *fp);
    fp->source = source;
    rc = output_paths(x, source, fp->paths);
    if (rc == EC_OK && !(fp->name = base_name(source)))
        rc = out_of_memory();
    if (rc == EC_OK)
        rc = read_image(source, EO_PIXEL_RGB8, &fp->photo);
    if (rc == EC_OK)
        rc = find_faces(fr->det, &fr->detect, &fp->photo, source, &found, &s->found);
    if (rc == EC_OK && (s->found == 0 || (fr->has_k && fr->k >= s->found))) {
        report_no_face(source, &fr->detect, s->found, fr->k);
        fr->without++;
    } else if (rc == EC_OK) {
        s->width = fp->photo.width;
        s->height = fp->photo.height;
        s->align = fr->used;
        s->threshold = fr->detect.score_threshold;
        s->min_face = fr->detect.min_face_size;
        s->photo_hash = fnv1a64_view(&fp->photo);
        rc = choose_faces(s, found, fr);
        if (rc == EC_OK)
            rc = invert_chosen(m, d, base, fr, fp);
    }
    free(found);
    return rc;
}

/* One photo with --faces: found, inverted, written. */
static int invert_faces_one(eo_model m, const eo_model_desc *d, const invert_text *x, face_run *fr,
                            const eo_invert_options *base, const char *source)
{
    face_photo fp;
    int rc = find_face_photo(m, d, x, fr, base, source, &fp);
    if (rc == EC_OK && fp.s.n)
        rc = write_face_outputs(fp.ls, d, &fp.photo, fp.paths, &fp.s, source, x->json);
    free_face_photo(&fp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* invert --faces --tune                                               */
/* ------------------------------------------------------------------ */

/* A photo's latents become the tuned model's (its s.n of tl), its PSNRs the tuned ones (the inversion's kept). */
static void adopt_tuned(face_photo *fp, const eo_latent *tl, const float *psnr)
{
    release_latents(fp->ls, fp->s.n);
    memcpy(fp->ls, tl, fp->s.n * sizeof *fp->ls);
    memcpy(fp->s.psnr_inverted, fp->s.psnr, fp->s.n * sizeof *psnr);
    memcpy(fp->s.psnr, psnr, fp->s.n * sizeof *psnr);
}

/*
 * One generator tuned on every face of the run (total of them), as a new
 * model; each photo's latents are then the tuned model's. On an error or
 * Ctrl-C nothing is made and the photos keep the base's latents.
 */
static int tune_face_photos(eo_model m, face_run *fr, face_photo *fps, int n, size_t total, eo_model *tuned)
{
    eo_latent *all = xcalloc(total, sizeof *all), *tl = xcalloc(total, sizeof *tl);
    float *psnr = xcalloc(total, sizeof *psnr);
    progress p;
    eo_status st;
    int rc = all && tl && psnr ? EC_OK : out_of_memory();
    for (int i = 0, k = 0; rc == EC_OK && i < n; k += (int)fps[i].s.n, i++)
        memcpy(all + k, fps[i].ls, fps[i].s.n * sizeof *all);
    fr->tune.psnr = psnr;
    if (rc == EC_OK) {
        progress_start(&p, "tune");
        st = eo_model_tune(m, all, total, &fr->tune, on_progress, &p, tuned, tl);
        progress_finish(&p);
        if (st != EO_OK)
            rc = lib_error(st, "tuning the generator on %zu faces", total);
    }
    for (int i = 0, k = 0; rc == EC_OK && i < n; k += (int)fps[i].s.n, i++)
        adopt_tuned(&fps[i], tl + k, psnr + k);
    fr->tune.psnr = NULL;
    free(all);
    free(tl);
    free(psnr);
    return rc;
}

/*
 * invert --faces --tune: every photo's faces found and inverted, one
 * generator tuned on all of them, then the files: the tuned model under a
 * temporary name and tuned.manifest (faceset.c), each photo's files, and
 * last the tuned model renamed into place. A run stopped before the tuning
 * ends writes nothing.
 */
static int invert_tuned_faces(eo_model m, const eo_model_desc *d, const invert_text *x, face_run *fr,
                              const eo_invert_options *opts, char **photos, int n)
{
    face_photo *fps = xcalloc((size_t)n, sizeof *fps);
    tuned_photo *listed = xcalloc((size_t)n, sizeof *listed);
    eo_model tuned = { 0 };
    output_file model = { 0 };
    size_t total = 0, k = 0;
    int rc = fps && listed ? EC_OK : out_of_memory();
    for (int i = 0; rc == EC_OK && i < n; total += fps[i].s.n, i++)
        rc = g_interrupted ? cancelled("inverting") : find_face_photo(m, d, x, fr, opts, photos[i], &fps[i]);
    if (rc == EC_OK && total > 0)
        rc = tune_face_photos(m, fr, fps, n, total, &tuned);
    for (int i = 0; rc == EC_OK && i < n; i++)
        if (fps[i].s.n)
            listed[k++] = (tuned_photo){ fps[i].name, &fps[i].s };
    if (rc == EC_OK && total > 0)
        rc = begin_tuned_files(tuned, x->out, listed, k, fr->tune.steps, &model);
    for (int i = 0; rc == EC_OK && model.f && i < n; i++)
        if (fps[i].s.n)
            rc = g_interrupted ? cancelled("writing the photos' files")
                               : write_face_outputs(fps[i].ls, d, &fps[i].photo, fps[i].paths, &fps[i].s,
                                                    fps[i].source, x->json);
    if (model.f)
        rc = finish_tuned_files(&model, rc);
    release_model(&tuned);
    for (int i = 0; fps && i < n; i++)
        free_face_photo(&fps[i]);
    free(fps);
    free(listed);
    return rc;
}

/* --faces' options (usage errors reported), before anything else happens. */
static int parse_face_run(const invert_text *x, face_run *fr)
{
    uint32_t k = 0;
    memset(fr, 0, sizeof *fr);
    fr->align = EO_ALIGN_MODEL;
    if (x->face && opt_u32("invert", "--face", x->face, 0, UINT32_MAX - 1, &k))
        return EC_USAGE;
    fr->has_k = x->face != NULL;
    fr->k = k;
    if (x->align && parse_align("invert", "--align", x->align, &fr->align))
        return EC_USAGE;
    fr->tune_on = x->tune;
    if (eo_tune_options_init(&fr->tune) != EO_OK)
        return fail("preparing the tune options");
    fr->tune.vgg16_path = x->vgg16; /* the inversion's loss, the paper's LPIPS + L2 for tuning */
    if (x->tune_steps && opt_u32("invert", "--tune-steps", x->tune_steps, 1, 100000, &fr->tune.steps))
        return EC_USAGE;
    return parse_detect_options("invert", &x->dx, &fr->detect);
}

/* The detector, and the alignment the model asks for when --align is not given. */
static int start_face_run(eo_model m, const invert_text *x, face_run *fr)
{
    eo_status st;
    fr->used = fr->align;
    if (fr->align == EO_ALIGN_MODEL && (st = eo_model_alignment(m, &fr->used)) != EO_OK)
        return lib_error(st, "reading the model's face alignment");
    return open_detector(x->dx.detector, &fr->det);
}

/* Whether a photo's NAME ends in ".faces", which a whole-photo inversion must not write (see below). */
static int faces_name(const char *photo)
{
    char *name = base_name(photo);
    size_t len = name ? strlen(name) : 0;
    int reserved = len > 6 && strcmp(name + len - 6, ".faces") == 0;
    free(name);
    return reserved;
}

/*
 * Before anything is written (outputs.c): two photos with one name (d1/a.png,
 * d2/a.png) would write the same files; a photo may be an output of another
 * (a.png's copy is a-photo.png); without --overwrite no output may exist.
 */
static int check_invert_outputs(const invert_text *x, char **photos, int n)
{
    output_plan p = { 0 };
    char *paths[OUT_COUNT];
    int rc = plan_input(&p, x->model);
    if (rc == EC_OK)
        rc = plan_input(&p, x->vgg16);
    if (rc == EC_OK && x->faces)
        rc = plan_input(&p, x->dx.detector);
    for (int i = 0; i < n && rc == EC_OK; i++)
        rc = plan_input(&p, photos[i]);
    /* NAME.faces.f32 is what apply --inverted reads as the faces of NAME. */
    for (int i = 0; i < n && rc == EC_OK && !x->faces; i++)
        if (faces_name(photos[i]))
            rc = usage_error("invert", "'%s': a photo named NAME.faces.* would write NAME.faces.f32, which 'editone"
                             " apply' reads as the faces of photo NAME; rename it, or give --faces", photos[i]);
    for (int i = 0; i < n && rc == EC_OK; i++) {
        rc = output_paths(x, photos[i], paths);
        for (int k = 0; k < OUT_COUNT && rc == EC_OK; k++)
            rc = plan_output(&p, paths[k], "'%s'", photos[i]);
        free_paths(paths);
    }
    for (int k = 0; k < 2 && rc == EC_OK && x->tune; k++) {
        char *path = path_join(x->out, k ? TUNED_MANIFEST_FILE : TUNED_MODEL_FILE);
        rc = path ? plan_output(&p, path, "--tune") : out_of_memory();
        free(path);
    }
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static int run_invert(const engine_args *g, const invert_text *x, char **photos, int n)
{
    eo_model m = { 0 };
    eo_model_desc d;
    eo_invert_options opts;
    eo_status st;
    face_run fr;
    int rc = parse_face_run(x, &fr);
    if (rc == EC_OK)
        rc = check_invert_outputs(x, photos, n);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK && (st = eo_invert_options_init(&opts)) != EO_OK)
        rc = lib_error(st, "preparing invert options");
    if (rc == EC_OK && x->steps && opt_u32("invert", "--steps", x->steps, 1, 100000, &opts.steps))
        rc = EC_USAGE;
    if (rc == EC_OK && x->seed && opt_u64("invert", "--seed", x->seed, 0, UINT32_MAX, &opts.seed))
        rc = EC_USAGE;
    opts.wplus = (uint32_t)x->wplus;
    opts.vgg16_path = x->vgg16;
    if (rc == EC_OK)
        rc = open_model("invert", x->model, &m, &d);
    if (rc == EC_OK && x->faces)
        rc = start_face_run(m, x, &fr);
    if (rc == EC_OK)
        rc = make_dirs(x->out);
    if (rc == EC_OK && x->tune)
        rc = invert_tuned_faces(m, &d, x, &fr, &opts, photos, n);
    for (int i = 0; rc == EC_OK && !x->tune && i < n; i++) {
        if (!x->faces)
            rc = invert_one(m, &d, x, &opts, photos[i]);
        else
            rc = g_interrupted ? cancelled("inverting") : invert_faces_one(m, &d, x, &fr, &opts, photos[i]);
    }
    release_detector(&fr.det);
    release_model(&m);
    if (rc == EC_OK && fr.without) {
        if (fr.has_k)
            fprintf(stderr, "editone invert: %d of %d photo%s had no face %u", fr.without, n, n == 1 ? "" : "s", fr.k);
        else
            fprintf(stderr, "editone invert: %d of %d photo%s had no face", fr.without, n, n == 1 ? "" : "s");
        fprintf(stderr, "; nothing was written for %s\n", fr.without == 1 ? "it" : "them");
        rc = EC_NO_FACE;
    }
    return rc;
}

int cmd_invert(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "invert";
    invert_text x;
    int rc;
    memset(&x, 0, sizeof x);
    option opts[] = {
        { "--model", &x.model, NULL }, { "--out", &x.out, NULL },     { "--steps", &x.steps, NULL },
        { "--vgg16", &x.vgg16, NULL }, { "--seed", &x.seed, NULL },   { "--wplus", NULL, &x.wplus },
        { "--json", NULL, &x.json },   { "--overwrite", NULL, &g_overwrite },
        { "--faces", NULL, &x.faces }, { "--face", &x.face, NULL },   { "--align", &x.align, NULL },
        { "--threshold", &x.dx.threshold, NULL }, { "--min-face", &x.dx.min_face, NULL },
        { "--detector", &x.dx.detector, NULL }, { "--tune", NULL, &x.tune },
        { "--tune-steps", &x.tune_steps, NULL },
    };
    char **photos = xcalloc((size_t)argc + 1, sizeof *photos);
    int nphotos = 0;
    if (!photos)
        return out_of_memory();
    rc = parse_with_operands(cmd, argc, argv, opts, COUNT_OF(opts), photos, &nphotos);
    if (x.face)
        x.faces = 1;
    if (rc == EC_HELP)
        rc = show_help(INVERT_USAGE);
    else if (rc == EC_OK && nphotos == 0)
        rc = usage_error(cmd, "no PHOTO given");
    else if (rc == EC_OK && !x.out)
        rc = usage_error(cmd, "no --out DIR given");
    else if (rc == EC_OK && !x.faces && (x.align || x.dx.threshold || x.dx.min_face || x.dx.detector || x.tune))
        rc = usage_error(cmd, "--align, --threshold, --min-face, --detector and --tune apply to --faces (or --face K)");
    else if (rc == EC_OK && x.tune_steps && !x.tune)
        rc = usage_error(cmd, "--tune-steps N goes with --tune");
    else if (rc == EC_OK)
        rc = run_invert(g, &x, photos, nphotos);
    free(photos);
    return rc;
}

/*
 * editone CLI: the files of a photo inverted face by face, written by
 * 'editone invert --faces' and read back by 'editone apply --inverted':
 *
 *   NAME-photo.png          the photo as read
 *   NAME-reconstruction.png the photo with each face's reconstruction
 *   NAME.json               what this file reads back: each face's index,
 *                           box, score, landmarks and photo-to-crop
 *                           transform, the alignment, and checksums of the
 *                           photo's pixels and of the latents
 *   NAME.faces.f32          one W+ latent per face (num_ws x w_dim float32
 *                           LE each, in the order of NAME.json's faces);
 *                           written last, it is what apply looks for
 *
 * Each file is written whole under a temporary name, but a run of invert
 * --overwrite stopped between them can leave a new NAME.json beside an old
 * NAME.faces.f32: the checksums tell, and apply refuses such a mix instead
 * of pasting faces where they are not.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Most faces one photo's record may hold, and its largest file. */
#define MAX_FACES 10000u
#define MAX_RECORD_BYTES ((size_t)16 << 20)

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static void json_hash(FILE *f, uint64_t h)
{
    fprintf(f, "\"%016" PRIx64 "\"", h);
}

/*
 * The record of a face set: one JSON object, on one line (one_line: for
 * stdout, one object per photo) or with one line per face (NAME.json).
 */
void write_face_set_json(FILE *f, const face_set *s, const char *source, const char *latents, int one_line)
{
    const char *sep = one_line ? " " : "\n  ";
    fputs("{\"photo\": ", f);
    json_string(f, source);
    fprintf(f, ", \"width\": %u, \"height\": %u, \"align\": ", s->width, s->height);
    json_string(f, align_name(s->align));
    fputs(", \"threshold\": ", f);
    json_number(f, s->threshold);
    fputs(", \"min_face\": ", f);
    json_number(f, s->min_face);
    fprintf(f, ",%s\"faces_found\": %zu, \"photo_fnv1a64\": ", one_line ? " " : "\n ", s->found);
    json_hash(f, s->photo_hash);
    fputs(", \"latents\": ", f);
    json_string(f, latents);
    fputs(", \"latents_fnv1a64\": ", f);
    json_hash(f, s->latents_hash);
    fputs(one_line ? ", \"faces\": [" : ",\n \"faces\": [", f);
    for (size_t i = 0; i < s->n; i++) {
        fprintf(f, "%s%s{\"index\": %u, ", i ? "," : "", sep, s->index[i]);
        json_face(f, &s->faces[i]);
        fputs(", \"transform\": [", f);
        for (int k = 0; k < 6; k++) {
            fputs(k ? ", " : "", f);
            json_double(f, s->transforms[6 * i + k]);
        }
        fputc(']', f);
        if (s->crop)
            fprintf(f, ", \"crop\": [%u, %u, %u, %u]", s->crop[4 * i], s->crop[4 * i + 1], s->crop[4 * i + 2],
                    s->crop[4 * i + 3]);
        if (s->psnr) {
            fputs(", \"psnr\": ", f);
            json_number(f, s->psnr[i]);
        }
        if (s->psnr_inverted) {
            fputs(", \"psnr_inverted\": ", f);
            json_number(f, s->psnr_inverted[i]);
        }
        fputc('}', f);
    }
    fputs(one_line ? "]}\n" : "\n ]}\n", f);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

void free_face_set(face_set *s)
{
    free(s->faces);
    free(s->index);
    free(s->transforms);
    free(s->crop);
    free(s->psnr);
    free(s->psnr_inverted);
    memset(s, 0, sizeof *s);
}

/* A record's problem, reported with the file's path. */
typedef struct {
    const char *path;
    char what[160];
} record_reader;

static int bad_record(record_reader *r, const char *field, const char *expected)
{
    return fail("'%s': %s: expected %s; the file is not the record 'editone invert --faces' wrote", r->path, field,
                expected);
}

static int number_f64(const json_value *v, double *out)
{
    char *end;
    if (!v || v->kind != JSON_NUMBER)
        return 0;
    errno = 0;
    *out = strtod(v->text, &end);
    return *end == '\0' && isfinite(*out);
}

static int number_f32(const json_value *v, float *out)
{
    char *end;
    if (!v || v->kind != JSON_NUMBER)
        return 0;
    *out = strtof(v->text, &end);
    return *end == '\0' && isfinite(*out);
}

static int number_u32(const json_value *v, uint64_t max, uint32_t *out)
{
    uint64_t n;
    if (!v || v->kind != JSON_NUMBER || !parse_u64(v->text, 0, max, &n))
        return 0;
    *out = (uint32_t)n;
    return 1;
}

/* n numbers of an array into floats (f32) or doubles (f64). */
static int numbers(const json_value *v, size_t n, float *f32, double *f64)
{
    if (!v || v->kind != JSON_ARRAY || v->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (f32 ? !number_f32(&v->items[i], &f32[i]) : !number_f64(&v->items[i], &f64[i]))
            return 0;
    return 1;
}

static int hash_of(const json_value *v, uint64_t *out)
{
    char *end;
    if (!v || v->kind != JSON_STRING || strlen(v->text) != 16)
        return 0;
    for (const char *c = v->text; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return 0;
    *out = strtoull(v->text, &end, 16);
    return *end == '\0';
}

static int read_face(record_reader *r, const json_value *v, size_t i, face_set *s)
{
    char field[64];
    float marks[10];
    eo_face *f = &s->faces[i];
    snprintf(field, sizeof field, "faces[%zu]", i);
    if (!v || v->kind != JSON_OBJECT)
        return bad_record(r, field, "an object");
    snprintf(field, sizeof field, "faces[%zu].index", i);
    if (!number_u32(json_get(v, "index"), s->found ? s->found - 1 : 0, &s->index[i]))
        return bad_record(r, field, "a whole number below faces_found");
    for (size_t k = 0; k < i; k++)
        if (s->index[k] == s->index[i])
            return bad_record(r, field, "each face once");
    snprintf(field, sizeof field, "faces[%zu].box", i);
    if (!numbers(json_get(v, "box"), 4, f->bbox, NULL))
        return bad_record(r, field, "4 numbers");
    snprintf(field, sizeof field, "faces[%zu].score", i);
    if (!number_f32(json_get(v, "score"), &f->score))
        return bad_record(r, field, "a number");
    snprintf(field, sizeof field, "faces[%zu].landmarks", i);
    const json_value *lm = json_get(v, "landmarks");
    if (!lm || lm->kind != JSON_ARRAY || lm->n != 5)
        return bad_record(r, field, "5 points");
    for (size_t k = 0; k < 5; k++)
        if (!numbers(&lm->items[k], 2, &marks[2 * k], NULL))
            return bad_record(r, field, "5 points [X, Y]");
    for (size_t k = 0; k < 5; k++)
        f->landmarks[k] = (eo_point){ marks[2 * k], marks[2 * k + 1] };
    snprintf(field, sizeof field, "faces[%zu].transform", i);
    if (!numbers(json_get(v, "transform"), 6, NULL, &s->transforms[6 * i]))
        return bad_record(r, field, "6 numbers");
    return EC_OK;
}

static int read_record(record_reader *r, const json_value *root, face_set *s)
{
    const json_value *faces = json_get(root, "faces"), *align = json_get(root, "align");
    uint32_t found = 0;
    if (!root || root->kind != JSON_OBJECT)
        return bad_record(r, "the file", "one JSON object");
    if (!number_u32(json_get(root, "width"), MAX_SIDE, &s->width) || s->width == 0)
        return bad_record(r, "width", "the photo's width in pixels");
    if (!number_u32(json_get(root, "height"), MAX_SIDE, &s->height) || s->height == 0)
        return bad_record(r, "height", "the photo's height in pixels");
    if (!align || align->kind != JSON_STRING)
        return bad_record(r, "align", "template, ffhq or none");
    s->align = 0;
    for (eo_align a = EO_ALIGN_TEMPLATE; a <= EO_ALIGN_NONE; a++)
        if (strcmp(align->text, align_name(a)) == 0)
            s->align = a;
    if (!s->align)
        return bad_record(r, "align", "template, ffhq or none");
    if (!number_u32(json_get(root, "faces_found"), UINT32_MAX, &found))
        return bad_record(r, "faces_found", "a whole number");
    s->found = found;
    if (!hash_of(json_get(root, "photo_fnv1a64"), &s->photo_hash))
        return bad_record(r, "photo_fnv1a64", "16 hex digits");
    if (!hash_of(json_get(root, "latents_fnv1a64"), &s->latents_hash))
        return bad_record(r, "latents_fnv1a64", "16 hex digits");
    if (!faces || faces->kind != JSON_ARRAY || faces->n == 0 || faces->n > MAX_FACES || faces->n > s->found)
        return bad_record(r, "faces", "a list of 1 to faces_found faces");
    s->n = faces->n;
    s->faces = xcalloc(s->n, sizeof *s->faces);
    s->index = xcalloc(s->n, sizeof *s->index);
    s->transforms = xcalloc(6 * s->n, sizeof *s->transforms);
    if (!s->faces || !s->index || !s->transforms)
        return out_of_memory();
    for (size_t i = 0; i < s->n; i++)
        if (read_face(r, &faces->items[i], i, s) != EC_OK)
            return EC_ERROR;
    return EC_OK;
}

/* Reads DIR/NAME.json, the record of a photo inverted face by face (free_face_set it). */
int read_face_set(const char *dir, const char *name, face_set *s)
{
    record_reader r;
    json_value root;
    char *path = named_path(dir, name, ".json");
    int rc = path ? json_read_file(path, MAX_RECORD_BYTES, &root) : out_of_memory();
    memset(s, 0, sizeof *s);
    if (rc == EC_OK) {
        r.path = path;
        rc = read_record(&r, &root, s);
        json_free(&root);
    }
    if (rc != EC_OK)
        free_face_set(s);
    free(path);
    return rc;
}

/* The mix of two runs that a stopped 'invert --overwrite' can leave. */
static int mixed_runs(const char *dir, const char *name, const char *file)
{
    return fail("'%s/%s%s' does not belong with '%s/%s.json' (its checksum differs): the folder mixes two runs of"
                " 'editone invert', one of them stopped; invert that photo again",
                dir, name, file, dir, name);
}

/* The photo of a face set, checked against its record. */
static int read_set_photo(const char *dir, const char *name, const face_set *s, eo_image_view *photo)
{
    char *path = named_path(dir, name, "-photo.png");
    int rc = path ? read_image(path, EO_PIXEL_RGB8, photo) : out_of_memory();
    if (rc == EC_OK && (photo->width != s->width || photo->height != s->height))
        rc = fail("'%s' is %ux%u; '%s/%s.json' was made from a %ux%u photo: the folder mixes two runs of"
                  " 'editone invert'; invert that photo again",
                  path, photo->width, photo->height, dir, name, s->width, s->height);
    else if (rc == EC_OK && fnv1a64_view(photo) != s->photo_hash)
        rc = mixed_runs(dir, name, "-photo.png");
    free(path);
    return rc;
}

/* The latents of a face set, checked against its record. */
static int read_set_latents(const char *dir, const char *name, const eo_model_desc *d, const face_set *s,
                            float **w)
{
    size_t per = latent_floats(d);
    uint64_t size = 0, expected = (uint64_t)s->n * per * 4;
    char *path = named_path(dir, name, ".faces.f32");
    int rc = path ? file_size(path, &size) : out_of_memory();
    if (rc == EC_OK && size != expected)
        rc = fail("'%s' holds %" PRIu64 " bytes; '%s/%s.json' lists %zu faces, which take %" PRIu64
                  " = %zu x %u rows (num_ws) x %u floats (w_dim) x 4 bytes for this model: the latents are"
                  " another model's, or the folder mixes two runs of 'editone invert'",
                  path, size, dir, name, s->n, expected, s->n, d->num_ws, d->w_dim);
    if (rc == EC_OK)
        rc = read_f32_file(path, s->n * per, w);
    if (rc == EC_OK && fnv1a64_f32(*w, s->n * per) != s->latents_hash) {
        rc = mixed_runs(dir, name, ".faces.f32");
        free(*w);
        *w = NULL;
    }
    free(path);
    return rc;
}

/*
 * What can be checked of face set DIR/NAME before any photo is written:
 * the photo's size (from its header) and the latents, against the record.
 */
int check_face_set_files(const eo_model_desc *d, const char *dir, const char *name, const face_set *s)
{
    uint32_t w = 0, h = 0;
    size_t needed = 0;
    float *latents = NULL;
    char *path = named_path(dir, name, "-photo.png");
    eo_status st = path ? eo_image_read(path, EO_PIXEL_RGB8, NULL, 0, &w, &h, &needed) : EO_OK;
    int rc = !path ? out_of_memory() : st != EO_OK ? lib_error(st, "reading '%s'", path) : EC_OK;
    if (rc == EC_OK && (w != s->width || h != s->height))
        rc = fail("'%s' is %ux%u; '%s/%s.json' was made from a %ux%u photo: the folder mixes two runs of"
                  " 'editone invert'; invert that photo again",
                  path, w, h, dir, name, s->width, s->height);
    if (rc == EC_OK)
        rc = read_set_latents(dir, name, d, s, &latents);
    free(latents);
    free(path);
    return rc;
}

/*
 * The n latents of face set DIR/NAME (read with read_face_set) into out:
 * the photo and the latents checked against the record, then rebuilt
 * with the recorded transforms, so each face lands where it was taken from.
 */
int face_set_latents(eo_model m, const eo_model_desc *d, const char *dir, const char *name, const face_set *s,
                     eo_latent *out)
{
    eo_image_view photo = { 0 };
    float *w = NULL;
    int rc = read_set_photo(dir, name, s, &photo);
    if (rc == EC_OK)
        rc = read_set_latents(dir, name, d, s, &w);
    if (rc == EC_OK) {
        eo_status st = eo_latents_from_faces(m, &photo, s->faces, s->transforms, s->n, s->align, w,
                                             s->n * latent_floats(d), out);
        if (st != EO_OK)
            rc = lib_error(st, "making the latents of the faces of '%s/%s-photo.png'", dir, name);
    }
    free(w);
    free(photo.data);
    return rc;
}

/* ------------------------------------------------------------------ */
/* A tuned generator beside the face sets (invert --faces --tune)      */
/* ------------------------------------------------------------------ */

/*
 * DIR/tuned.safetensors is the generator tuned on every face of one run,
 * and DIR/tuned.manifest (JSON) says which run: the checksum of the model
 * file and, per photo, its NAME and the checksums NAME.json records. The
 * names cannot be a photo's files (those end in .json, .f32 and .png).
 * invert writes the model under a temporary name, then the manifest, then
 * the photos' files and, last, renames the model into place; apply takes
 * the model only when the manifest, the model and every record it renders
 * agree, so a stopped run, a stale model or a record added by a later run
 * is refused instead of rendering faces through a generator tuned on others.
 */
#define TUNED_MODEL TUNED_MODEL_FILE
#define TUNED_MANIFEST TUNED_MANIFEST_FILE
#define MANIFEST_FORMAT "editone-tuned-faces"
#define MAX_MANIFEST_BYTES ((size_t)64 << 20)

/* fnv1a64 of a whole file's bytes. */
static int file_fnv1a64(const char *path, uint64_t *out)
{
    unsigned char buf[1 << 16];
    uint64_t h = FNV1A64_INIT;
    size_t got;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail("reading '%s': %s", path, strerror(errno));
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        h = fnv1a64(h, buf, got);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return fail("reading '%s': read error", path);
    *out = h;
    return EC_OK;
}

static void json_psnrs(FILE *f, const float *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        json_number(f, v[i]);
    }
    fputc(']', f);
}

static void write_manifest_json(FILE *f, const tuned_photo *photos, size_t n, uint32_t steps, uint64_t model_hash)
{
    fprintf(f, "{\"format\": \"%s\", \"version\": 1, \"tuned_model\": \"%s\", \"tuned_fnv1a64\": ", MANIFEST_FORMAT,
            TUNED_MODEL);
    json_hash(f, model_hash);
    fprintf(f, ", \"steps\": %u,\n \"photos\": [", steps);
    for (size_t i = 0; i < n; i++) {
        const face_set *s = photos[i].s;
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        json_string(f, photos[i].name);
        fputs(", \"photo_fnv1a64\": ", f);
        json_hash(f, s->photo_hash);
        fputs(", \"latents_fnv1a64\": ", f);
        json_hash(f, s->latents_hash);
        fputs(", \"psnr_inverted\": ", f);
        json_psnrs(f, s->psnr_inverted, s->n);
        fputs(", \"psnr_tuned\": ", f);
        json_psnrs(f, s->psnr, s->n);
        fputc('}', f);
    }
    fputs("\n ]}\n", f);
}

/*
 * The tuned model of n photos' faces, saved under a temporary name in DIR
 * (model: close_output publishes it as DIR/tuned.safetensors, or removes
 * it), and DIR/tuned.manifest written whole with the model's checksum.
 */
int begin_tuned_files(eo_model tuned, const char *dir, const tuned_photo *photos, size_t n, uint32_t steps,
                      output_file *model)
{
    char *model_path = path_join(dir, TUNED_MODEL), *manifest_path = path_join(dir, TUNED_MANIFEST);
    output_file manifest;
    uint64_t hash = 0;
    eo_status st;
    int rc;
    memset(model, 0, sizeof *model);
    rc = model_path && manifest_path ? open_output(model_path, model) : out_of_memory();
    /* The library replaces the (empty) temporary file whole; the rename comes last. */
    if (rc == EC_OK && (st = eo_model_save_tuned_ex(tuned, model->tmp, EO_WRITE_REPLACE)) != EO_OK)
        rc = lib_error(st, "saving the tuned model");
    if (rc == EC_OK)
        rc = file_fnv1a64(model->tmp, &hash);
    if (rc == EC_OK && (rc = open_output(manifest_path, &manifest)) == EC_OK) {
        write_manifest_json(manifest.f, photos, n, steps, hash);
        rc = close_output(&manifest, EC_OK);
    }
    if (rc != EC_OK)
        rc = close_output(model, rc);
    free(manifest_path);
    if (!model->f)
        free(model_path);
    return rc;
}

/* The owner of model->path after begin_tuned_files: frees it once the model is published or removed. */
int finish_tuned_files(output_file *model, int rc)
{
    char *path = (char *)model->path;
    rc = close_output(model, rc);
    free(path);
    return rc;
}

/* A folder whose tuned model does not belong to its records: the message ends with what to do. */
static int not_tuned_together(const char *dir, const char *what)
{
    return fail("'%s': %s; invert all its photos again with 'editone invert --faces --tune --overwrite', or remove"
                " '%s/" TUNED_MODEL "' and '%s/" TUNED_MANIFEST "' to edit them without it",
                dir, what, dir, dir);
}

/* The manifest's entry for photo NAME, or NULL. */
static const json_value *manifest_photo(const json_value *photos, const char *name)
{
    for (size_t i = 0; i < photos->n; i++) {
        const json_value *n = json_get(&photos->items[i], "name");
        if (n && n->kind == JSON_STRING && strcmp(n->text, name) == 0)
            return &photos->items[i];
    }
    return NULL;
}

/* Every target of t is a face set of the tuned run, with the checksums the manifest lists. */
static int check_tuned_targets(const char *dir, const json_value *photos, const target_spec *t, const face_set *sets)
{
    char what[600];
    for (size_t i = 0; i < t->n; i++) {
        const json_value *p = manifest_photo(photos, t->names[i]);
        uint64_t photo_hash = 0, latents_hash = 0;
        if (!(t->face_sets[i] && sets)) {
            snprintf(what, sizeof what, "'%s.f32' is a whole photo, not one of the faces its tuned model was tuned on",
                     t->names[i]);
            return not_tuned_together(dir, what);
        }
        if (!p) {
            snprintf(what, sizeof what, "'%s.json' was not among the photos its tuned model was tuned on (a later"
                     " run of 'editone invert' added it)", t->names[i]);
            return not_tuned_together(dir, what);
        }
        if (!hash_of(json_get(p, "photo_fnv1a64"), &photo_hash) ||
            !hash_of(json_get(p, "latents_fnv1a64"), &latents_hash) || photo_hash != sets[i].photo_hash ||
            latents_hash != sets[i].latents_hash) {
            snprintf(what, sizeof what, "'%s.json' is not the record its tuned model was tuned on (another run of"
                     " 'editone invert' rewrote it)", t->names[i]);
            return not_tuned_together(dir, what);
        }
    }
    return EC_OK;
}

/* DIR/tuned.manifest, read and checked against the model file at model_path. */
static int read_manifest(const char *dir, const char *model_path, json_value *root)
{
    char *path = path_join(dir, TUNED_MANIFEST);
    const json_value *format, *photos;
    uint64_t listed = 0, actual = 0;
    int rc = path ? json_read_file(path, MAX_MANIFEST_BYTES, root) : out_of_memory();
    if (rc != EC_OK) {
        free(path);
        return rc;
    }
    format = json_get(root, "format");
    photos = json_get(root, "photos");
    if (root->kind != JSON_OBJECT || !format || format->kind != JSON_STRING ||
        strcmp(format->text, MANIFEST_FORMAT) != 0 || !photos || photos->kind != JSON_ARRAY ||
        !hash_of(json_get(root, "tuned_fnv1a64"), &listed))
        rc = fail("'%s' is not the manifest 'editone invert --faces --tune' writes", path);
    else if ((rc = file_fnv1a64(model_path, &actual)) == EC_OK && actual != listed)
        rc = not_tuned_together(dir, "its " TUNED_MODEL " is not the model its " TUNED_MANIFEST
                                     " lists (the checksums differ): the folder mixes two runs of 'editone invert'");
    if (rc != EC_OK)
        json_free(root);
    free(path);
    return rc;
}

/* Whether DIR/name exists (a file of any kind, a dangling link included). */
static int in_folder(const char *dir, const char *name)
{
    char *path = path_join(dir, name);
    struct stat st;
    int exists = path && lstat(path, &st) == 0;
    free(path);
    return exists;
}

/* The tuned model's file loaded over the base, with a clear word for a file tuned from another model. */
static int load_tuned(eo_model base, const char *path, eo_model *tuned)
{
    eo_status st = eo_model_load_tuned(base, path, tuned);
    if (st == EO_ERR_INCOMPATIBLE)
        return fail("'%s' was tuned from another model than this one: give the --model the photos were inverted"
                    " with", path);
    return st == EO_OK ? EC_OK : lib_error(st, "loading the tuned model '%s'", path);
}

/*
 * apply --inverted DIR: when DIR holds a tuned model (invert --faces
 * --tune), *tuned receives it, loaded over `base`, after DIR/tuned.manifest
 * has vouched for the model file and for every record among t's targets
 * (sets: their records, read with read_face_set). Without one, *tuned is
 * left with id 0, unless a manifest says a stopped run never wrote it.
 */
int open_tuned_model(eo_model base, const target_spec *t, const face_set *sets, eo_model *tuned)
{
    const char *dir = t->inverted_dir;
    int has_model = in_folder(dir, TUNED_MODEL), has_manifest = in_folder(dir, TUNED_MANIFEST);
    char *model_path;
    json_value root;
    int rc;
    if (!has_model && !has_manifest)
        return EC_OK;
    if (!has_model)
        return not_tuned_together(dir, "its " TUNED_MANIFEST " lists a tuned model, but the run of 'editone invert"
                                       " --tune' that wrote it stopped before writing " TUNED_MODEL);
    if (!has_manifest)
        return not_tuned_together(dir, "its " TUNED_MODEL " has no " TUNED_MANIFEST " beside it to say which"
                                       " photos it was tuned on");
    if (!(model_path = path_join(dir, TUNED_MODEL)))
        return out_of_memory();
    rc = read_manifest(dir, model_path, &root);
    if (rc == EC_OK) {
        rc = check_tuned_targets(dir, json_get(&root, "photos"), t, sets);
        json_free(&root);
    }
    if (rc == EC_OK)
        rc = load_tuned(base, model_path, tuned);
    free(model_path);
    return rc;
}

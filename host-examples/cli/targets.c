/*
 * editone CLI: the engine and model, the images a command works on
 * (--seeds LIST or --latents-f32 FILE --count N) and rendering them.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Engine and model                                                    */
/* ------------------------------------------------------------------ */

int start_engine(const engine_args *g)
{
    eo_engine_options opts;
    eo_status st = eo_engine_options_init(&opts);
    if (st != EO_OK)
        return lib_error(st, "preparing engine options");
    opts.device = g->device;
    opts.cpu_threads = g->threads;
    opts.half_precision = (uint32_t)g->half;
    opts.tf32 = (uint32_t)g->tf32;
    if (g->cpu_cache_mib >= 0)
        opts.cpu_cache_mib = (uint32_t)g->cpu_cache_mib;
    st = eo_init(&opts);
    if (st != EO_OK)
        return lib_error(st, "starting the engine on device '%s'", g->device ? g->device : "auto");
    return EC_OK;
}

/* The engine's device name as a new string. */
int device_name(char **out)
{
    size_t needed = 0;
    eo_status st = eo_device_name(NULL, 0, &needed);
    char *buf;
    if (st != EO_OK)
        return lib_error(st, "reading the device name");
    buf = malloc(needed ? needed : 1);
    if (!buf)
        return out_of_memory();
    st = eo_device_name(buf, needed, NULL);
    if (st != EO_OK) {
        free(buf);
        return lib_error(st, "reading the device name");
    }
    *out = buf;
    return EC_OK;
}

/*
 * Loads the model a command works on and reads its shape. Today --model
 * is required; when the library gains eo_model_load_default, a missing
 * path falls back to it here (and only here).
 */
int open_model(const char *cmd, const char *path, eo_model *m, eo_model_desc *desc)
{
    eo_status st;
    (void)cmd;
    st = path ? eo_model_load(path, m) : eo_model_load_default(m);
    if (st != EO_OK)
        return path ? lib_error(st, "loading model '%s'", path) : lib_error(st, "loading the default model");
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    st = eo_model_info(*m, desc);
    if (st != EO_OK) {
        int rc = lib_error(st, "reading the shape of model '%s'", path ? path : "(default)");
        eo_model_release(*m);
        m->id = 0;
        return rc;
    }
    return EC_OK;
}

void release_model(eo_model *m)
{
    if (m->id)
        eo_model_release(*m);
    m->id = 0;
}

void release_edit(eo_edit *e)
{
    if (e->id)
        eo_edit_release(*e);
    e->id = 0;
}

void release_latent(eo_latent *l)
{
    if (l->id)
        eo_latent_release(*l);
    l->id = 0;
}

/* Releases n latents (ids 0 are skipped); the array stays. */
void release_latents(eo_latent *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        release_latent(&ls[i]);
}

/* Releases n latents (ids 0 are skipped) and frees the array. */
void free_latents(eo_latent *ls, size_t n)
{
    if (!ls)
        return;
    release_latents(ls, n);
    free(ls);
}

size_t latent_floats(const eo_model_desc *d)
{
    return (size_t)d->num_ws * d->w_dim;
}

/* --class against the model: required for conditional models, refused otherwise. */
int check_class(const char *cmd, const eo_model_desc *d, int has_class, uint32_t k)
{
    if (d->c_dim == 0 && has_class)
        return usage_error(cmd, "--class given, but the model is unconditional");
    if (d->c_dim > 0 && !has_class)
        return usage_error(cmd, "the model is conditional (%u classes): give --class K (0..%u)", d->c_dim,
                           d->c_dim - 1);
    if (has_class && k >= d->c_dim)
        return usage_error(cmd, "--class %u is out of range: the model has %u classes (0..%u)", k, d->c_dim,
                           d->c_dim - 1);
    return EC_OK;
}

/* The latent of a seed (with its class for conditional models; see check_class). */
int latent_from_seed(eo_model m, const eo_model_desc *d, uint64_t seed, uint32_t k, float psi,
                     eo_latent *out)
{
    eo_status st = d->c_dim ? eo_latent_from_seed_class(m, seed, k, psi, out)
                            : eo_latent_from_seed(m, seed, psi, out);
    if (st != EO_OK)
        return lib_error(st, "making the latent of seed %" PRIu64, seed);
    return EC_OK;
}

/* Reads a latent's W+ floats into a new array. */
int read_latent(eo_latent l, const eo_model_desc *d, float **out)
{
    size_t n = latent_floats(d);
    float *w = malloc(n * sizeof *w);
    eo_status st;
    if (!w)
        return out_of_memory();
    st = eo_latent_read(l, w, n, NULL);
    if (st != EO_OK) {
        free(w);
        return lib_error(st, "reading a latent");
    }
    *out = w;
    return EC_OK;
}

/* ------------------------------------------------------------------ */
/* Targets: --seeds LIST | --latents-f32 FILE --count N                */
/* ------------------------------------------------------------------ */

/* Sorts names with their face-set flags alongside. */
typedef struct {
    char *name;
    unsigned char face_set;
} listed_name;

static int by_listed_name(const void *a, const void *b)
{
    const listed_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->face_set - (int)y->face_set;
}

/* Whether `name` ends with `suffix` (and has more before it). */
static int ends_with(const char *name, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len > n && strcmp(name + len - n, suffix) == 0;
}

/*
 * The photos of DIR, sorted by NAME: DIR/NAME.f32 for a photo inverted
 * whole, DIR/NAME.faces.f32 for one inverted face by face (invert
 * --faces). One NAME both ways would write NAME.<ext> twice: refused.
 */
static int list_inverted(const char *dir, target_spec *t)
{
    DIR *d = opendir(dir);
    struct dirent *e = NULL;
    size_t cap = 16, n = 0;
    listed_name *list;
    int rc = EC_OK;
    if (!d)
        return fail("reading '%s': %s", dir, strerror(errno));
    list = xcalloc(cap, sizeof *list);
    while (list && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        int faces = ends_with(e->d_name, len, ".faces.f32");
        if (!faces && !ends_with(e->d_name, len, ".f32"))
            continue;
        if (n == cap) {
            listed_name *grown = realloc(list, 2 * cap * sizeof *grown);
            if (!grown)
                break;
            list = grown;
            cap *= 2;
        }
        if (!(list[n].name = strndup(e->d_name, len - (faces ? 10 : 4))))
            break;
        list[n++].face_set = (unsigned char)faces;
    }
    closedir(d);
    if (!list || e != NULL)
        rc = out_of_memory();
    else if (n == 0)
        rc = fail("'%s' holds no NAME.f32 or NAME.faces.f32 latents written by 'editone invert'", dir);
    if (rc == EC_OK)
        qsort(list, n, sizeof *list, by_listed_name);
    for (size_t i = 1; i < n && rc == EC_OK; i++)
        if (strcmp(list[i].name, list[i - 1].name) == 0)
            rc = usage_error(g_command, "'%s' holds both %s.f32 (the photo inverted whole) and %s.faces.f32 (its"
                             " faces); both would write %s.<ext>: move one of them away",
                             dir, list[i].name, list[i].name, list[i].name);
    t->names = rc == EC_OK ? xcalloc(n, sizeof *t->names) : NULL;
    t->face_sets = rc == EC_OK ? xcalloc(n, 1) : NULL;
    if (rc == EC_OK && (!t->names || !t->face_sets))
        rc = out_of_memory();
    for (size_t i = 0; i < n; i++) {
        if (rc == EC_OK) {
            t->names[i] = list[i].name;
            t->face_sets[i] = list[i].face_set;
            t->n_face_sets += list[i].face_set;
        } else {
            free(list[i].name);
        }
    }
    free(list);
    if (rc != EC_OK) {
        free(t->names);
        free(t->face_sets);
        t->names = NULL;
        t->face_sets = NULL;
        t->n_face_sets = 0;
        return rc;
    }
    t->n = n;
    t->inverted_dir = dir;
    return EC_OK;
}

static int parse_target_list(const char *cmd, const target_text *tx, target_spec *t)
{
    uint64_t count;
    memset(t, 0, sizeof *t);
    t->psi = 1.0f;
    if (!!tx->seeds + !!tx->latents + !!tx->inverted != 1)
        return usage_error(cmd, "give one of --seeds LIST, --latents-f32 FILE --count N, --inverted DIR");
    if (tx->inverted) {
        if (tx->count || tx->psi || tx->class_index)
            return usage_error(cmd, "--count, --psi and --class do not apply to --inverted");
        return list_inverted(tx->inverted, t);
    }
    if (tx->latents) {
        if (!tx->count)
            return usage_error(cmd, "--latents-f32 needs --count N");
        if (tx->psi || tx->class_index)
            return usage_error(cmd, "--psi and --class apply to --seeds only");
        if (opt_u64(cmd, "--count", tx->count, 1, MAX_TARGETS, &count) != EC_OK)
            return EC_USAGE;
        t->n = (size_t)count;
        t->latents_path = tx->latents;
        return EC_OK;
    }
    if (tx->count)
        return usage_error(cmd, "--count applies to --latents-f32 only");
    if (tx->psi && opt_float(cmd, "--psi", tx->psi, -MAX_FLOAT, MAX_FLOAT, &t->psi) != EC_OK)
        return EC_USAGE;
    if (tx->class_index) {
        if (opt_u32(cmd, "--class", tx->class_index, 0, UINT32_MAX, &t->class_index) != EC_OK)
            return EC_USAGE;
        t->has_class = 1;
    }
    return parse_seed_list(cmd, "--seeds", tx->seeds, &t->seeds, &t->n);
}

int parse_targets(const char *cmd, const target_text *tx, target_spec *t)
{
    int rc = parse_target_list(cmd, tx, t);
    t->total = t->n;
    return rc;
}

/*
 * Keeps targets first .. first + n - 1 of the whole list (--shard): seeds
 * and photos move to the front; raw latents keep their rows' numbers
 * through t->offset, so that latent0123.png is row 123 in every shard.
 */
int keep_target_range(target_spec *t, size_t first, size_t n)
{
    for (size_t i = 0; t->names && i < t->n; i++)
        if (i < first || i >= first + n)
            free(t->names[i]);
    if (t->seeds)
        memmove(t->seeds, t->seeds + first, n * sizeof *t->seeds);
    if (t->names) {
        memmove(t->names, t->names + first, n * sizeof *t->names);
        memmove(t->face_sets, t->face_sets + first, n);
        t->n_face_sets = 0;
        for (size_t i = 0; i < n; i++)
            t->n_face_sets += t->face_sets[i];
    }
    if (!t->seeds && !t->names)
        t->offset = first;
    t->n = n;
    return EC_OK;
}

void free_targets(target_spec *t)
{
    free(t->seeds);
    t->seeds = NULL;
    for (size_t i = 0; t->names && i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    t->names = NULL;
    free(t->face_sets);
    t->face_sets = NULL;
}

/* DIR/NAME.f32 with the photo DIR/NAME-photo.png, as one latent (face sets: see faceset.c). */
static int make_inverted_latent(eo_model m, const eo_model_desc *d, const target_spec *t, size_t i, eo_latent *l)
{
    if (t->face_sets[i])
        return fail("photo '%s' was inverted face by face ('invert --faces'); 'editone %s' takes only photos"
                    " inverted whole", t->names[i], g_command);
    char *path = named_path(t->inverted_dir, t->names[i], ".f32");
    float *w = NULL;
    eo_image_view photo = { 0 };
    int rc = path ? read_f32_file(path, latent_floats(d), &w) : out_of_memory();
    free(path);
    path = named_path(t->inverted_dir, t->names[i], "-photo.png");
    if (rc == EC_OK)
        rc = path ? read_image(path, EO_PIXEL_RGB8, &photo) : out_of_memory();
    if (rc == EC_OK) {
        eo_status st = eo_latent_from_w_photo(m, w, latent_floats(d), &photo, l);
        if (st != EO_OK)
            rc = lib_error(st, "making the latent of '%s'", path);
    }
    free(photo.data);
    free(w);
    free(path);
    return rc;
}

/* The --latents-f32 file must hold exactly N latents of the model. */
static int check_latents_file(const target_spec *t, const eo_model_desc *d)
{
    uint64_t size, expected;
    int rc = file_size(t->latents_path, &size);
    if (rc != EC_OK)
        return rc;
    expected = (uint64_t)t->total * latent_floats(d) * 4;
    if (size != expected)
        return fail("'%s' holds %" PRIu64 " bytes; expected %" PRIu64 " = %zu latents x %u rows (num_ws) x"
                    " %u floats (w_dim) x 4 bytes",
                    t->latents_path, size, expected, t->total, d->num_ws, d->w_dim);
    return EC_OK;
}

/* Rows first .. first + n - 1 of the --latents-f32 file, read as needed. */
static int make_raw_latents(eo_model m, const eo_model_desc *d, const target_spec *t, size_t first, size_t n,
                            eo_latent *ls)
{
    size_t per = latent_floats(d);
    float *w;
    int rc = read_f32_range(t->latents_path, (uint64_t)(t->offset + first) * per, n * per, &w);
    if (rc != EC_OK)
        return rc;
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        eo_status st = eo_latent_from_w(m, w + i * per, per, &ls[i]);
        if (st != EO_OK)
            rc = lib_error(st, "making latent %zu of '%s'", t->offset + first + i, t->latents_path);
    }
    free(w);
    return rc;
}

/* What can be checked before any latent is made: the class, the file size. */
int check_targets(const char *cmd, const eo_model_desc *d, const target_spec *t)
{
    if (t->seeds)
        return check_class(cmd, d, t->has_class, t->class_index);
    if (t->latents_path)
        return check_latents_file(t, d);
    return EC_OK;
}

/*
 * Makes the latents of targets first .. first + n - 1 (checked with
 * check_targets) into ls[0..n]; on error none is left.
 */
int make_target_range(eo_model m, const eo_model_desc *d, const target_spec *t, size_t first, size_t n,
                      eo_latent *ls)
{
    int rc = EC_OK;
    memset(ls, 0, n * sizeof *ls);
    if (t->seeds) {
        for (size_t i = 0; i < n && rc == EC_OK; i++)
            rc = latent_from_seed(m, d, t->seeds[first + i], t->class_index, t->psi, &ls[i]);
    } else if (t->inverted_dir) {
        for (size_t i = 0; i < n && rc == EC_OK; i++)
            rc = make_inverted_latent(m, d, t, first + i, &ls[i]);
    } else {
        rc = make_raw_latents(m, d, t, first, n, ls);
    }
    if (rc != EC_OK)
        release_latents(ls, n);
    return rc;
}

/* Makes the latents of the targets (n handles in a new array). */
int make_targets(const char *cmd, eo_model m, const eo_model_desc *d, const target_spec *t,
                 eo_latent **out)
{
    eo_latent *ls;
    int rc = check_targets(cmd, d, t);
    if (rc != EC_OK)
        return rc;
    ls = xcalloc(t->n, sizeof *ls);
    if (!ls)
        return out_of_memory();
    rc = make_target_range(m, d, t, 0, t->n, ls);
    if (rc != EC_OK) {
        free(ls);
        return rc;
    }
    *out = ls;
    return EC_OK;
}

/* "seed0003.png", "latent0000.png" or "NAME.png" for target i. */
char *target_file_name(const target_spec *t, size_t i, const char *ext)
{
    if (t->names) {
        size_t len = strlen(t->names[i]) + strlen(ext) + 2;
        char *name = malloc(len);
        if (name)
            snprintf(name, len, "%s.%s", t->names[i], ext);
        return name;
    }
    int len = t->seeds ? snprintf(NULL, 0, "seed%04" PRIu64 ".%s", t->seeds[i], ext)
                       : snprintf(NULL, 0, "latent%04zu.%s", t->offset + i, ext);
    char *name = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!name)
        return NULL;
    if (t->seeds)
        snprintf(name, (size_t)len + 1, "seed%04" PRIu64 ".%s", t->seeds[i], ext);
    else
        snprintf(name, (size_t)len + 1, "latent%04zu.%s", t->offset + i, ext);
    return name;
}

/* A new string DIR/<name of target i>. */
static char *target_path(const target_spec *t, size_t i, const image_files *o)
{
    char *name = target_file_name(t, i, o->ext);
    char *path = name ? path_join(o->dir, name) : NULL;
    free(name);
    return path;
}

/* "seed 3", "latent 5" or "photo 'NAME'": target i in messages. */
void describe_target(const target_spec *t, size_t i, char *buf, size_t len)
{
    if (t->seeds)
        snprintf(buf, len, "seed %" PRIu64, t->seeds[i]);
    else if (t->names)
        snprintf(buf, len, "photo '%s'", t->names[i]);
    else
        snprintf(buf, len, "latent %zu", t->offset + i);
}

/*
 * The files the targets are read from: --latents-f32, or each photo's
 * NAME.f32 and NAME-photo.png (face sets: NAME.faces.f32, NAME-photo.png
 * and NAME.json).
 */
int plan_target_inputs(output_plan *p, const target_spec *t)
{
    static const char *const suffixes[] = { ".f32", "-photo.png" };
    static const char *const face_suffixes[] = { ".faces.f32", "-photo.png", ".json" };
    int rc = plan_input(p, t->latents_path);
    for (size_t i = 0; t->names && i < t->n && rc == EC_OK; i++)
        for (size_t k = 0; k < (t->face_sets[i] ? COUNT_OF(face_suffixes) : COUNT_OF(suffixes)) && rc == EC_OK; k++) {
            char *input = named_path(t->inverted_dir, t->names[i], t->face_sets[i] ? face_suffixes[k] : suffixes[k]);
            rc = input ? plan_input(p, input) : out_of_memory();
            free(input);
        }
    return rc;
}

static int by_seed(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A seed listed twice would write its file twice; names of photos and latents cannot repeat. */
static int check_repeated_seeds(const target_spec *t, const image_files *o)
{
    uint64_t *sorted = t->seeds ? malloc(t->n * sizeof *sorted) : NULL;
    int rc = EC_OK;
    if (!t->seeds || t->n < 2)
        return EC_OK;
    if (!sorted)
        return out_of_memory();
    memcpy(sorted, t->seeds, t->n * sizeof *sorted);
    qsort(sorted, t->n, sizeof *sorted, by_seed);
    for (size_t i = 1; i < t->n && rc == EC_OK; i++)
        if (sorted[i] == sorted[i - 1])
            rc = usage_error(g_command, "seed %" PRIu64 " is listed twice in --seeds; both would write '%s/seed%04" PRIu64
                             ".%s'", sorted[i], o->dir, sorted[i], o->ext);
    free(sorted);
    return rc;
}

/*
 * Checks the image files the targets will be written to (see
 * plan_check_output); --resume's complete ones (o->skip) are not written.
 */
int plan_target_files(output_plan *p, const target_spec *t, const image_files *o)
{
    int rc = check_repeated_seeds(t, o);
    for (size_t i = 0; i < t->n && rc == EC_OK; i++) {
        if (o->skip && o->skip[i])
            continue;
        char *path = target_path(t, i, o), what[300];
        describe_target(t, i, what, sizeof what);
        rc = path ? plan_check_output(p, path, what) : out_of_memory();
        free(path);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Rendering outputs                                                   */
/* ------------------------------------------------------------------ */

int render_one_file(eo_latent l, const char *dir, const char *name, uint32_t size)
{
    char *path = path_join(dir, name);
    eo_status st;
    int rc = EC_OK;
    if (!path)
        return out_of_memory();
    st = eo_render_to_file_ex(l, path, size, write_flags());
    if (st != EO_OK)
        rc = write_error(st, path);
    free(path);
    return rc;
}

/* Renders each target's latent to DIR/<seedNNNN|latentNNNN>.<ext>. */
int render_files(const eo_latent *ls, const target_spec *t, const char *dir, const char *ext,
                 uint32_t size)
{
    progress p;
    int rc = make_dirs(dir);
    if (rc != EC_OK)
        return rc;
    progress_start(&p, "render");
    for (size_t i = 0; i < t->n && rc == EC_OK; i++) {
        char *name = target_file_name(t, i, ext);
        if (g_interrupted)
            rc = EC_CANCELLED;
        else if (!name)
            rc = out_of_memory();
        else
            rc = render_one_file(ls[i], dir, name, size);
        free(name);
        if (rc == EC_OK)
            progress_show(&p, i + 1, t->n);
    }
    progress_finish(&p);
    if (rc == EC_CANCELLED)
        return cancelled("rendering");
    if (rc == EC_OK)
        fprintf(stderr, "editone: wrote %zu image%s to %s\n", t->n, t->n == 1 ? "" : "s", dir);
    return rc;
}

/*
 * Host pixels one eo_render_batch call may fill: a chunk of 64 images of
 * a 1024 x 1024 model (192 MiB) goes in one call; a chunk of large photos
 * (residual rendering keeps their size) is split so that memory stays
 * bounded.
 */
#define RENDER_BATCH_BYTES ((size_t)256 << 20)

/*
 * The view in which eo_render_batch gives the pixels eo_render_to_file(l,
 * path, size) saves: the size the library says that file has
 * (eo_render_size; eo_render_batch resamples with the same Lanczos
 * filter, and a view of the picture's own size is a copy in both); RGB, or
 * grey for a one-channel model's plain output (a latent without a photo),
 * so files keep their colour type.
 */
static int file_view(eo_latent l, const eo_model_desc *d, uint32_t size, eo_image_view *v)
{
    uint32_t w = 0, h = 0, photo_w = 0, photo_h = 0;
    eo_status st = eo_latent_photo(l, &photo_w, &photo_h, NULL);
    if (st == EO_OK)
        st = eo_render_size(l, size, &w, &h);
    if (st != EO_OK)
        return lib_error(st, "reading the picture size of a latent");
    v->format = photo_w == 0 && d->channels == 1 ? EO_PIXEL_GRAY8 : EO_PIXEL_RGB8;
    v->data = NULL;
    v->width = w;
    v->height = h;
    v->stride = w * (v->format == EO_PIXEL_GRAY8 ? 1 : 3);
    return EC_OK;
}

static size_t view_bytes(const eo_image_view *v)
{
    return (size_t)v->stride * v->height;
}

/* How many of the n views (at least one) fit in RENDER_BATCH_BYTES. */
static size_t views_within_budget(const eo_image_view *views, size_t n)
{
    size_t k = 1, bytes = view_bytes(&views[0]);
    while (k < n && bytes + view_bytes(&views[k]) <= RENDER_BATCH_BYTES)
        bytes += view_bytes(&views[k++]);
    return k;
}

/* How many of the n flags from `flags` on equal `value` (up to the first that does not). */
static size_t flag_run(const unsigned char *flags, size_t n, unsigned char value)
{
    size_t k = 0;
    while (k < n && flags[k] == value)
        k++;
    return k;
}

/* Progress of one eo_render_batch call as part of all the targets. */
typedef struct {
    progress *p;
    uint64_t offset, total;
} batch_progress;

static int32_t on_batch_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    batch_progress *b = user;
    (void)stage;
    (void)total;
    progress_show(b->p, b->offset + done, b->total);
    return g_interrupted ? 1 : 0;
}

/*
 * After a failed batch: each image alone, so that the error names the
 * image that fails (and a batch the device could not hold still renders).
 */
static int render_views_singly(const eo_latent *ls, eo_image_view *views, size_t n, const target_spec *t,
                               size_t first, const image_files *o)
{
    int rc = EC_OK;
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        eo_status st = g_interrupted ? EO_ERR_CANCELLED : eo_render_batch(&ls[i], 1, &views[i], NULL, NULL);
        char *path = target_path(t, first + i, o);
        if (st == EO_ERR_CANCELLED)
            rc = EC_CANCELLED;
        else if (!path)
            rc = out_of_memory();
        else if (st != EO_OK)
            rc = lib_error(st, "rendering '%s'", path);
        free(path);
    }
    return rc;
}

/* Saves view i as the file of target first + i. */
static int write_view(const eo_image_view *v, const target_spec *t, size_t i, const image_files *o)
{
    char *path = target_path(t, i, o);
    eo_status st;
    int rc = EC_OK;
    if (g_interrupted)
        rc = EC_CANCELLED;
    else if (!path)
        rc = out_of_memory();
    else if ((st = eo_image_write_ex(v, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(path);
    return rc;
}

/* n latents in one eo_render_batch call into one host buffer, then their files. */
static int render_views(const eo_latent *ls, eo_image_view *views, size_t n, const target_spec *t,
                        size_t first, const image_files *o, batch_progress *bp)
{
    size_t bytes = 0;
    uint8_t *buf;
    eo_status st;
    int rc = EC_OK;
    for (size_t i = 0; i < n; i++)
        bytes += view_bytes(&views[i]);
    if (!(buf = malloc(bytes)))
        return out_of_memory();
    for (size_t i = 0, at = 0; i < n; at += view_bytes(&views[i]), i++)
        views[i].data = buf + at;
    st = eo_render_batch(ls, n, views, on_batch_progress, bp);
    if (st == EO_ERR_CANCELLED)
        rc = EC_CANCELLED;
    else if (st != EO_OK)
        rc = render_views_singly(ls, views, n, t, first, o);
    for (size_t i = 0; i < n && rc == EC_OK; i++)
        rc = write_view(&views[i], t, first + i, o);
    free(buf);
    return rc;
}

/*
 * Renders the latents ls[0..n] of targets first .. first + n - 1 to the
 * files eo_render_to_file would write (the same sizes and colour types),
 * in as few eo_render_batch calls as RENDER_BATCH_BYTES allows: device
 * batches, no round trip per image. The DCGAN's pixels are those of
 * single renders byte for byte; a StyleGAN2 batch rounds differently from
 * a single image (as the official code does between batch sizes), so about
 * 1 byte in 20,000 may differ by one grey level from 'editone render'. Progress counts all t->n
 * targets; Ctrl-C gives EC_CANCELLED, which the caller reports.
 */
int render_chunk_files(const eo_latent *ls, size_t n, const target_spec *t, size_t first, const image_files *o,
                       progress *p)
{
    eo_image_view *views;
    batch_progress bp = { p, first, t->n };
    int rc = EC_OK;
    if (!(views = xcalloc(n, sizeof *views)))
        return out_of_memory();
    for (size_t i = 0; i < n && rc == EC_OK; i++)
        rc = file_view(ls[i], o->d, o->size, &views[i]);
    for (size_t i = 0, k = 0; i < n && rc == EC_OK; i += k) {
        const unsigned char *skip = o->skip ? o->skip + first + i : NULL;
        if (skip && skip[0]) { /* --resume: complete files stay as they are */
            k = flag_run(skip, n - i, 1);
            continue;
        }
        k = views_within_budget(views + i, skip ? flag_run(skip, n - i, 0) : n - i);
        bp.offset = first + i;
        rc = render_views(ls + i, views + i, k, t, first + i, o, &bp);
    }
    free(views);
    return rc;
}

/* Writes the raw outputs of n latents, n x C x H x W float32 LE, to path. */
int render_f32_file(const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path)
{
    size_t per = (size_t)d->channels * d->resolution * d->resolution;
    float *buf = malloc(per * sizeof *buf);
    output_file out = { 0 };
    progress p;
    int rc = buf ? open_output(path, &out) : out_of_memory();
    if (rc == EC_OK)
        progress_start(&p, "render");
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        eo_status st = eo_render_f32(ls[i], buf, per);
        if (g_interrupted)
            rc = cancelled("rendering");
        else if (st != EO_OK)
            rc = lib_error(st, "rendering latent %zu", i);
        else if (!write_f32(out.f, buf, per))
            rc = fail("writing '%s': %s", path, strerror(errno));
        else
            progress_show(&p, i + 1, n);
    }
    if (out.f)
        progress_finish(&p);
    free(buf);
    return close_output(&out, rc);
}

/*
 * Appends n latents' W+ floats (num_ws x w_dim each, float32 LE) to f,
 * which is writing `path` (named in errors).
 */
int write_latents(FILE *f, const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path)
{
    size_t per = latent_floats(d);
    float *w = malloc(per * sizeof *w);
    int rc = EC_OK;
    if (!w)
        return out_of_memory();
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        eo_status st = eo_latent_read(ls[i], w, per, NULL);
        if (st != EO_OK)
            rc = lib_error(st, "reading an edited latent for '%s'", path);
        else if (!write_f32(f, w, per))
            rc = fail("writing '%s': %s", path, strerror(errno));
    }
    free(w);
    return rc;
}

/* Image format option: "png" (default) or "jpg". */
int parse_format(const char *cmd, const char *text, const char **ext)
{
    if (!text || strcmp(text, "png") == 0)
        *ext = "png";
    else if (strcmp(text, "jpg") == 0 || strcmp(text, "jpeg") == 0)
        *ext = "jpg";
    else
        return usage_error(cmd, "--format: '%s' is not png or jpg", text);
    return EC_OK;
}

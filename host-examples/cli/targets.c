/*
 * editone CLI: the engine and model, the images a command works on
 * (--seeds LIST or --latents-f32 FILE --count N) and rendering them.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
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

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAMEs of DIR/NAME.f32, sorted. */
static int list_inverted(const char *dir, target_spec *t)
{
    DIR *d = opendir(dir);
    struct dirent *e = NULL;
    size_t cap = 16;
    if (!d)
        return fail("reading '%s': %s", dir, strerror(errno));
    t->names = xcalloc(cap, sizeof *t->names);
    while (t->names && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".f32") != 0)
            continue;
        if (t->n == cap) {
            char **grown = realloc(t->names, 2 * cap * sizeof *grown);
            if (!grown)
                break;
            t->names = grown;
            cap *= 2;
        }
        if (!(t->names[t->n] = strndup(e->d_name, len - 4)))
            break;
        t->n++;
    }
    closedir(d);
    if (!t->names || e != NULL)
        return out_of_memory();
    if (t->n == 0)
        return fail("'%s' holds no NAME.f32 latents written by 'editone invert'", dir);
    qsort(t->names, t->n, sizeof *t->names, by_name);
    t->inverted_dir = dir;
    return EC_OK;
}

int parse_targets(const char *cmd, const target_text *tx, target_spec *t)
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

void free_targets(target_spec *t)
{
    free(t->seeds);
    t->seeds = NULL;
    for (size_t i = 0; t->names && i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    t->names = NULL;
}

/* DIR/NAME.f32 with the photo DIR/NAME-photo.png, as one latent. */
static int make_inverted_latent(eo_model m, const eo_model_desc *d, const target_spec *t, size_t i, eo_latent *l)
{
    size_t len = strlen(t->names[i]) + 16;
    char *file = malloc(len), *path;
    float *w = NULL;
    eo_image_view photo = { 0 };
    int rc;
    if (!file)
        return out_of_memory();
    snprintf(file, len, "%s.f32", t->names[i]);
    path = path_join(t->inverted_dir, file);
    rc = path ? read_f32_file(path, latent_floats(d), &w) : out_of_memory();
    free(path);
    snprintf(file, len, "%s-photo.png", t->names[i]);
    path = path_join(t->inverted_dir, file);
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
    free(file);
    return rc;
}

/* Reads N raw W+ latents from the --latents-f32 file. */
static int read_latents_file(const target_spec *t, const eo_model_desc *d, float **out)
{
    size_t per = latent_floats(d);
    uint64_t size, expected;
    int rc = file_size(t->latents_path, &size);
    if (rc != EC_OK)
        return rc;
    expected = (uint64_t)t->n * per * 4;
    if (size != expected)
        return fail("'%s' holds %" PRIu64 " bytes; expected %" PRIu64 " = %zu latents x %u rows (num_ws) x"
                    " %u floats (w_dim) x 4 bytes",
                    t->latents_path, size, expected, t->n, d->num_ws, d->w_dim);
    return read_f32_file(t->latents_path, t->n * per, out);
}

static int make_raw_latents(eo_model m, const eo_model_desc *d, const target_spec *t, eo_latent *ls)
{
    size_t per = latent_floats(d);
    float *w;
    int rc = read_latents_file(t, d, &w);
    if (rc != EC_OK)
        return rc;
    for (size_t i = 0; i < t->n && rc == EC_OK; i++) {
        eo_status st = eo_latent_from_w(m, w + i * per, per, &ls[i]);
        if (st != EO_OK)
            rc = lib_error(st, "making latent %zu of '%s'", i, t->latents_path);
    }
    free(w);
    return rc;
}

/* Makes the latents of the targets (n handles in a new array). */
int make_targets(const char *cmd, eo_model m, const eo_model_desc *d, const target_spec *t,
                 eo_latent **out)
{
    int rc = EC_OK;
    eo_latent *ls;
    if (t->seeds && (rc = check_class(cmd, d, t->has_class, t->class_index)) != EC_OK)
        return rc;
    ls = xcalloc(t->n, sizeof *ls);
    if (!ls)
        return out_of_memory();
    if (t->seeds) {
        for (size_t i = 0; i < t->n && rc == EC_OK; i++)
            rc = latent_from_seed(m, d, t->seeds[i], t->class_index, t->psi, &ls[i]);
    } else if (t->inverted_dir) {
        for (size_t i = 0; i < t->n && rc == EC_OK; i++)
            rc = make_inverted_latent(m, d, t, i, &ls[i]);
    } else {
        rc = make_raw_latents(m, d, t, ls);
    }
    if (rc != EC_OK) {
        free_latents(ls, t->n);
        return rc;
    }
    *out = ls;
    return EC_OK;
}

/* "seed0003.png" or "latent0000.png" for target i. */
static char *target_file_name(const target_spec *t, size_t i, const char *ext)
{
    if (t->names) {
        size_t len = strlen(t->names[i]) + strlen(ext) + 2;
        char *name = malloc(len);
        if (name)
            snprintf(name, len, "%s.%s", t->names[i], ext);
        return name;
    }
    int len = t->seeds ? snprintf(NULL, 0, "seed%04" PRIu64 ".%s", t->seeds[i], ext)
                       : snprintf(NULL, 0, "latent%04zu.%s", i, ext);
    char *name = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!name)
        return NULL;
    if (t->seeds)
        snprintf(name, (size_t)len + 1, "seed%04" PRIu64 ".%s", t->seeds[i], ext);
    else
        snprintf(name, (size_t)len + 1, "latent%04zu.%s", i, ext);
    return name;
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
    st = eo_render_to_file(l, path, size);
    if (st != EO_OK)
        rc = lib_error(st, "rendering '%s'", path);
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

/* Writes the raw outputs of n latents, n x C x H x W float32 LE, to path. */
int render_f32_file(const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path)
{
    size_t per = (size_t)d->channels * d->resolution * d->resolution;
    float *buf = malloc(per * sizeof *buf);
    FILE *f;
    progress p;
    int rc = EC_OK;
    if (!buf)
        return out_of_memory();
    if (!(f = open_output(path))) {
        free(buf);
        return EC_ERROR;
    }
    progress_start(&p, "render");
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        eo_status st = eo_render_f32(ls[i], buf, per);
        if (g_interrupted)
            rc = cancelled("rendering");
        else if (st != EO_OK)
            rc = lib_error(st, "rendering latent %zu", i);
        else if (!write_f32(f, buf, per))
            rc = fail("writing '%s': %s", path, strerror(errno));
        else
            progress_show(&p, i + 1, n);
    }
    progress_finish(&p);
    free(buf);
    if (rc != EC_OK) {
        fclose(f);
        remove(path);
        return rc;
    }
    return close_output(f, path, 1);
}

/* Writes n latents' W+ floats (num_ws x w_dim each, float32 LE) to path. */
int write_latents_file(const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path)
{
    FILE *f = open_output(path);
    int rc = EC_OK;
    if (!f)
        return EC_ERROR;
    for (size_t i = 0; i < n && rc == EC_OK; i++) {
        float *w;
        rc = read_latent(ls[i], d, &w);
        if (rc != EC_OK)
            break;
        if (!write_f32(f, w, latent_floats(d))) {
            free(w);
            return close_output(f, path, 0);
        }
        free(w);
    }
    if (rc != EC_OK) {
        fclose(f);
        remove(path);
        return rc;
    }
    return close_output(f, path, 1);
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

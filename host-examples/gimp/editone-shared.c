/*
 * The editone plug-ins' shared part (editone-shared.h), compiled into the
 * GIMP 2.10 plug-in (editone-gimp.c) and the GIMP 3 one (editone-gimp3.c).
 *
 * Faces are found by the library's detector, aligned to the model's crop
 * and projected into its latent space, all faces of a layer in one run;
 * the faces (boxes, landmarks, transforms and latents) are cached in a
 * layer parasite keyed by the layer's pixels. A result is the layer itself
 * with every face's edit composited back through feathered masks: outside
 * them (and in the alpha channel) it is the layer, bit for bit. For models
 * of other subjects, the subject "the whole layer" projects every layer
 * whole and renders it in residual mode.
 *
 * The edit is saved as a preset file under the GIMP profile and as a
 * parasite on the image. Everything goes through libeditone's public C API.
 *
 * The few calls whose names or types differ between GIMP 2.10 and GIMP 3
 * are wrapped at the top; everything below them is the same for both.
 */
#include "editone-shared.h"

#include <editone.h>

#include <glib/gstdio.h>
#include <utime.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ GIMP 2.10 and GIMP 3 */
#if GIMP_MAJOR_VERSION >= 3
#define ITEM(x) GIMP_ITEM(x)
#define DRAWABLE(x) GIMP_DRAWABLE(x)
typedef GimpPath *eg_path;

static gint layer_width(eg_layer l) { return gimp_drawable_get_width(DRAWABLE(l)); }
static gint layer_height(eg_layer l) { return gimp_drawable_get_height(DRAWABLE(l)); }
static gint image_width(eg_image i) { return gimp_image_get_width(i); }
static gint image_height(eg_image i) { return gimp_image_get_height(i); }
static void layer_offsets(eg_layer l, gint *x, gint *y) { gimp_drawable_get_offsets(DRAWABLE(l), x, y); }
static gboolean is_group(eg_layer l) { return gimp_item_is_group_layer(ITEM(l)); }

static gconstpointer parasite_bytes(const GimpParasite *p, gsize *len)
{
    guint32 n = 0;
    gconstpointer data = gimp_parasite_get_data(p, &n);
    *len = n;
    return data;
}

GArray *eg_image_layers(eg_image image)
{
    GimpLayer **layers = gimp_image_get_layers(image);
    GArray *all = g_array_new(FALSE, FALSE, sizeof(eg_layer));
    for (gsize i = 0; layers && layers[i]; i++)
        g_array_append_val(all, layers[i]);
    g_free(layers);
    return all;
}

/* The first selected path, or NULL. */
static eg_path active_path(eg_image image)
{
    GimpPath **paths = gimp_image_get_selected_paths(image);
    eg_path path = paths ? paths[0] : NULL;
    g_free(paths);
    return path;
}

static gint *path_strokes(eg_path path, gsize *n) { return gimp_path_get_strokes(path, n); }

static void stroke_points(eg_path path, gint stroke, gsize *n, gdouble **points)
{
    gboolean closed;
    gimp_path_stroke_get_points(path, stroke, n, points, &closed);
}

/* A new RGBA layer just above `source`, at its place. */
static eg_layer new_layer_above(eg_image image, eg_layer source, const char *name, gint width, gint height)
{
    eg_layer layer = gimp_layer_new(image, name, width, height, GIMP_RGBA_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
    GimpItem *parent = gimp_item_get_parent(ITEM(source));
    gimp_image_insert_layer(image, layer, parent ? GIMP_LAYER(parent) : NULL,
                            gimp_image_get_item_position(image, ITEM(source)));
    return layer;
}
#else
#define ITEM(x) (x)
#define DRAWABLE(x) (x)
typedef gint32 eg_path;

static gint layer_width(eg_layer l) { return gimp_drawable_width(l); }
static gint layer_height(eg_layer l) { return gimp_drawable_height(l); }
static gint image_width(eg_image i) { return gimp_image_width(i); }
static gint image_height(eg_image i) { return gimp_image_height(i); }
static void layer_offsets(eg_layer l, gint *x, gint *y) { gimp_drawable_offsets(l, x, y); }
static gboolean is_group(eg_layer l) { return gimp_item_is_group(l); }

static gconstpointer parasite_bytes(const GimpParasite *p, gsize *len)
{
    *len = gimp_parasite_data_size(p);
    return gimp_parasite_data(p);
}

GArray *eg_image_layers(eg_image image)
{
    gint n = 0, *layers = gimp_image_get_layers(image, &n);
    GArray *all = g_array_new(FALSE, FALSE, sizeof(eg_layer));
    g_array_append_vals(all, layers, (guint)n);
    g_free(layers);
    return all;
}

/* The active path, or 0. */
static eg_path active_path(eg_image image)
{
    eg_path path = gimp_image_get_active_vectors(image);
    return path > 0 ? path : 0;
}

static gint *path_strokes(eg_path path, gsize *n)
{
    gint count = 0, *strokes = gimp_vectors_get_strokes(path, &count);
    *n = (gsize)count;
    return strokes;
}

static void stroke_points(eg_path path, gint stroke, gsize *n, gdouble **points)
{
    gint count = 0;
    gboolean closed;
    gimp_vectors_stroke_get_points(path, stroke, &count, points, &closed);
    *n = (gsize)count;
}

/* A new RGBA layer just above `source`, at its place. */
static eg_layer new_layer_above(eg_image image, eg_layer source, const char *name, gint width, gint height)
{
    eg_layer layer = gimp_layer_new(image, name, width, height, GIMP_RGBA_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
    gimp_image_insert_layer(image, layer, gimp_item_get_parent(source), gimp_image_get_item_position(image, source));
    return layer;
}
#endif

/* The item's name; names are small and the plug-in exits after each command. */
static const char *name_of(eg_layer layer) { return gimp_item_get_name(ITEM(layer)); }

/* --------------------------------------------------- the same for both */
#define LATENT_PARASITE "editone-latent"
#define FACES_PARASITE "editone-faces"
#define RESULT_PARASITE "editone-result-of"
#define PRESET_PARASITE "editone-preset"
#define SUBJECT_PARASITE "editone-subject"
#define EXAMPLE_PARASITE "editone-example"
#define PIXEL_FORMAT "R'G'B'A u8"
/* Parasites the plug-in attaches: saved in XCF files and undone with the
 * step that attached them (without UNDOABLE, GIMP records a "can't undo"
 * step of its own for each). */
#define PARASITE_FLAGS (GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE)

enum { SUBJECT_FACES = EG_SUBJECT_FACES, SUBJECT_LAYER = EG_SUBJECT_LAYER };
static const char *const subject_names[] = { "faces", "layer" };

/* The faces cache: header (magic, count, floats per latent, 0,
 * fingerprint), then count eo_face, 6 * count doubles (photo-to-crop
 * transforms), count * floats floats (W+ latents). */
#define FACES_MAGIC 0x31464f45u /* "EOF1" */
#define FACES_HEADER 24
#define MAX_FACES 4096

/* A layer's pixels as the library sees them. */
typedef struct {
    guint8 *data;
    gint width, height;
} pixels;

static const char *failure; /* set with the library's message on error */
static char message[2048];

static gboolean ok(eo_status st, const char *doing)
{
    if (st == EO_OK)
        return TRUE;
    snprintf(message, sizeof message, "editone: %s: %s", doing, eo_last_error());
    failure = message;
    return FALSE;
}

const char *eg_failure(void)
{
    return failure;
}

void eg_begin(void)
{
    gegl_init(NULL, NULL);
    failure = NULL;
}

gboolean eg_fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    failure = message;
    return FALSE;
}

gboolean eg_check_layer(eg_layer layer)
{
    if (!gimp_item_is_layer(ITEM(layer)))
        return eg_fail("editone: select a layer (a layer mask or a channel is selected)");
    if (is_group(layer))
        return eg_fail("editone: '%s' is a layer group: select the layers inside it", name_of(layer));
    if (gimp_item_is_text_layer(ITEM(layer)))
        return eg_fail("editone: '%s' is a text layer: select a picture layer (or rasterize the text first)",
                       name_of(layer));
    if (layer_width(layer) < 12 || layer_height(layer) < 12)
        return eg_fail("editone: '%s' is %dx%d pixels: editone needs a layer of at least 12 pixels a side",
                       name_of(layer), layer_width(layer), layer_height(layer));
    return TRUE;
}

/* Where one long call sits in the whole run: part `index` of `count`. */
typedef struct {
    guint index, count;
} span;

static int32_t on_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    const span *s = user;
    gdouble f = total ? (gdouble)done / (gdouble)total : 0.0;
    (void)stage;
    gimp_progress_update(s ? (s->index + f) / s->count : f);
    return 0;
}

static pixels read_layer(eg_layer layer)
{
    pixels p = { NULL, layer_width(layer), layer_height(layer) };
    GeglBuffer *buffer = gimp_drawable_get_buffer(DRAWABLE(layer));
    p.data = g_malloc((gsize)p.width * p.height * 4);
    gegl_buffer_get(buffer, GEGL_RECTANGLE(0, 0, p.width, p.height), 1.0, babl_format(PIXEL_FORMAT), p.data,
                    GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    g_object_unref(buffer);
    return p;
}

static eo_image_view view_of(const pixels *p)
{
    eo_image_view v = { p->data, (uint32_t)p->width, (uint32_t)p->height, (uint32_t)p->width * 4, EO_PIXEL_RGBA8 };
    return v;
}

/* FNV-1a of the pixels, so a cached latent is dropped when the layer changes. */
static guint64 fingerprint(const pixels *p)
{
    guint64 h = 0xcbf29ce484222325ULL;
    for (gsize i = 0; i < (gsize)p->width * p->height * 4; i++)
        h = (h ^ p->data[i]) * 0x100000001b3ULL;
    return h;
}

/* SHA-256 of the pixels: a key for files kept across sessions. */
static void pixels_digest(const pixels *p, guint8 digest[32])
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    gsize len = 32;
    g_checksum_update(sum, p->data, (gssize)p->width * p->height * 4);
    g_checksum_get_digest(sum, digest, &len);
    g_checksum_free(sum);
}

static gboolean latent_floats(eo_model m, size_t *floats)
{
    eo_model_desc d = { sizeof d };
    if (!ok(eo_model_info(m, &d), "reading the model"))
        return FALSE;
    *floats = (size_t)d.num_ws * d.w_dim;
    return TRUE;
}

/*
 * What a layer is to the model, as its parasite keeps it: its faces (box
 * and landmarks, photo-to-crop transform and latent of each; n may be 0)
 * or, for the whole-layer subject, one latent of the whole layer.
 */
typedef struct {
    eg_layer layer;
    gboolean faces;
    guint64 fingerprint;
    guint8 digest[32]; /* SHA-256 of the pixels: the tuned model cache's key */
    gboolean fresh; /* made in this run: attach it as the layer's cache */
    size_t n, floats;
    eo_face *face;
    double *transform;
    float *w;
} layer_state;

static void state_free(layer_state *st)
{
    g_free(st->face);
    g_free(st->transform);
    g_free(st->w);
    st->face = NULL;
    st->transform = NULL;
    st->w = NULL;
}

static gsize faces_size(size_t n, size_t floats)
{
    return FACES_HEADER + n * (sizeof(eo_face) + 6 * sizeof(double) + floats * sizeof(float));
}

/* The layer's parasite, if it holds what `st` asks for (its subject, the
 * layer's current pixels, the model's latent size). Parasites come from
 * XCF files: every size is checked before it is used. */
static gboolean state_from_parasite(layer_state *st)
{
    GimpParasite *par = gimp_item_get_parasite(ITEM(st->layer), st->faces ? FACES_PARASITE : LATENT_PARASITE);
    gboolean found = FALSE;
    gsize size = 0;
    if (!par)
        return FALSE;
    const guint8 *d = parasite_bytes(par, &size);
    if (!st->faces) {
        if (size == 8 + st->floats * sizeof(float) && memcmp(d, &st->fingerprint, 8) == 0) {
            st->n = 1;
            st->w = g_new(float, st->floats);
            memcpy(st->w, d + 8, st->floats * sizeof(float));
            found = TRUE;
        }
    } else if (size >= FACES_HEADER) {
        guint32 magic, n, floats;
        guint64 fp;
        memcpy(&magic, d, 4);
        memcpy(&n, d + 4, 4);
        memcpy(&floats, d + 8, 4);
        memcpy(&fp, d + 16, 8);
        if (magic == FACES_MAGIC && fp == st->fingerprint && floats == st->floats && n >= 1 && n <= MAX_FACES &&
            size == faces_size(n, floats)) {
            st->n = n;
            st->face = g_new(eo_face, n);
            st->transform = g_new(double, 6 * (gsize)n);
            st->w = g_new(float, (gsize)n * floats);
            d += FACES_HEADER;
            memcpy(st->face, d, n * sizeof(eo_face));
            d += n * sizeof(eo_face);
            memcpy(st->transform, d, 6 * (gsize)n * sizeof(double));
            d += 6 * (gsize)n * sizeof(double);
            memcpy(st->w, d, (gsize)n * floats * sizeof(float));
            found = TRUE;
        }
    }
    gimp_parasite_free(par);
    return found;
}

/* Attaches a state made in this run as its layer's cache. */
static void state_attach(const layer_state *st)
{
    if (!st->fresh)
        return;
    GimpParasite *par;
    if (st->faces) {
        gsize size = faces_size(st->n, st->floats);
        guint8 *blob = g_malloc0(size), *d = blob + FACES_HEADER;
        guint32 magic = FACES_MAGIC, n = (guint32)st->n, floats = (guint32)st->floats;
        memcpy(blob, &magic, 4);
        memcpy(blob + 4, &n, 4);
        memcpy(blob + 8, &floats, 4);
        memcpy(blob + 16, &st->fingerprint, 8);
        memcpy(d, st->face, st->n * sizeof(eo_face));
        d += st->n * sizeof(eo_face);
        memcpy(d, st->transform, 6 * st->n * sizeof(double));
        d += 6 * st->n * sizeof(double);
        memcpy(d, st->w, st->n * st->floats * sizeof(float));
        par = gimp_parasite_new(FACES_PARASITE, PARASITE_FLAGS, size, blob);
        g_free(blob);
    } else {
        guint8 *blob = g_malloc(8 + st->floats * sizeof(float));
        memcpy(blob, &st->fingerprint, 8);
        memcpy(blob + 8, st->w, st->floats * sizeof(float));
        par = gimp_parasite_new(LATENT_PARASITE, PARASITE_FLAGS, 8 + st->floats * sizeof(float), blob);
        g_free(blob);
    }
    gimp_item_attach_parasite(ITEM(st->layer), par);
    gimp_parasite_free(par);
}

/* The faces of a photo, largest first (none under 12 pixels a side). */
static gboolean detect_faces(eo_detector det, const eo_image_view *v, eo_face **faces, size_t *n)
{
    eo_detect_options o;
    size_t cap = 64, count = 0;
    *faces = NULL;
    *n = 0;
    if (v->width < 12 || v->height < 12)
        return TRUE;
    eo_detect_options_init(&o);
    *faces = g_new(eo_face, cap);
    gboolean good = ok(eo_faces_detect(det, v, &o, *faces, cap, &count), "finding faces");
    if (good && count > cap) {
        cap = count;
        g_free(*faces);
        *faces = g_new(eo_face, cap);
        good = ok(eo_faces_detect(det, v, &o, *faces, cap, &count), "finding faces");
        count = MIN(count, cap);
    }
    if (good && count > MAX_FACES)
        good = eg_fail("editone: %zu faces found; at most %d per layer", count, MAX_FACES);
    if (!good) {
        g_free(*faces);
        *faces = NULL;
        return FALSE;
    }
    *n = count;
    return TRUE;
}

/* Projects the layer now: every face found in one run, or the whole layer. */
static gboolean state_invert(eo_model m, eo_detector det, const pixels *p, gint steps, const span *sp, layer_state *st)
{
    eo_image_view v = view_of(p);
    eo_invert_options o;
    eo_invert_options_init(&o);
    o.steps = (uint32_t)steps;
    if (!st->faces) {
        eo_latent l;
        if (!ok(eo_latent_invert(m, &v, &o, on_progress, (void *)sp, &l), "projecting the layer"))
            return FALSE;
        st->n = 1;
        st->w = g_new(float, st->floats);
        gboolean good = ok(eo_latent_read(l, st->w, st->floats, NULL), "reading the latent");
        eo_latent_release(l);
        return good;
    }
    if (!detect_faces(det, &v, &st->face, &st->n))
        return FALSE;
    if (st->n == 0)
        return TRUE;
    eo_latent *ls = g_new0(eo_latent, st->n);
    gboolean good = ok(eo_faces_invert(m, &v, st->face, st->n, EO_ALIGN_MODEL, &o, on_progress, (void *)sp, ls),
                       "projecting the faces");
    st->transform = g_new(double, 6 * st->n);
    st->w = g_new(float, st->n * st->floats);
    for (size_t k = 0; good && k < st->n; k++) {
        uint32_t has_face = 0;
        good = ok(eo_latent_read(ls[k], st->w + k * st->floats, st->floats, NULL), "reading a face's latent") &&
               ok(eo_latent_face(ls[k], &has_face, NULL, st->transform + 6 * k), "reading a face's transform");
        if (good && !has_face)
            good = eg_fail("editone: the library returned a face latent without its face");
    }
    for (size_t k = 0; k < st->n; k++)
        if (ls[k].id)
            eo_latent_release(ls[k]);
    g_free(ls);
    return good;
}

/* The layer's state: its cache when it still matches the layer, else
 * projected now (progress: part sp->index of sp->count). */
static gboolean state_get(eo_model m, eo_detector det, eg_layer layer, gboolean faces, gint steps, const span *sp,
                          layer_state *st)
{
    pixels p = read_layer(layer);
    gboolean good;
    memset(st, 0, sizeof *st);
    st->layer = layer;
    st->faces = faces;
    st->fingerprint = fingerprint(&p);
    pixels_digest(&p, st->digest);
    good = latent_floats(m, &st->floats);
    if (good && !state_from_parasite(st)) {
        gimp_progress_set_text_printf(faces ? "editone: faces of '%s' (%u of %u)" : "editone: projecting '%s' (%u of %u)",
                                      name_of(layer), sp->index + 1, sp->count);
        good = state_invert(m, det, &p, steps, sp, st);
        st->fresh = good && st->n > 0;
    }
    g_free(p.data);
    if (!good)
        state_free(st);
    return good;
}

/* Latents of faces [first, first + count) of the state (or of the whole
 * layer), remembering the layer's pixels `p`. */
static gboolean state_latents(eo_model m, const layer_state *st, const pixels *p, size_t first, size_t count,
                              eo_latent *out)
{
    eo_image_view v = view_of(p);
    if (!st->faces)
        return ok(eo_latent_from_w_photo(m, st->w, st->floats, &v, out), "restoring the layer's latent");
    return ok(eo_latents_from_faces(m, &v, st->face + first, st->transform + 6 * first, count, EO_ALIGN_MODEL,
                                    st->w + first * st->floats, count * st->floats, out),
              "restoring the layer's faces");
}

static gchar *profile_file(const char *name)
{
    gchar *dir = g_build_filename(gimp_directory(), "editone", NULL);
    g_mkdir_with_parents(dir, 0700);
    gchar *path = g_build_filename(dir, name, NULL);
    g_free(dir);
    return path;
}

static void attach_image_parasite(eg_image image, const char *name, gsize len, gconstpointer data)
{
    GimpParasite *par = gimp_parasite_new(name, PARASITE_FLAGS, len, data);
    gimp_image_attach_parasite(image, par);
    gimp_parasite_free(par);
}

/* g_file_set_contents writes a temporary file and renames it. */
static gboolean write_profile_file(const char *name, const char *text, gsize len)
{
    gchar *path = profile_file(name);
    GError *error = NULL;
    gboolean good = g_file_set_contents(path, text, (gssize)len, &error);
    if (!good) {
        eg_fail("editone: writing '%s': %s", path, error->message);
        g_error_free(error);
    }
    g_free(path);
    return good;
}

/*
 * Saves the edit and its subject to the profile (preset.json, subject)
 * and the image's parasites. preset.json is the plug-in's own, rewritten
 * at every edit, so it is replaced on purpose (EO_WRITE_REPLACE); the
 * library writes it under a temporary name and renames it, so it is
 * always a whole preset.
 */
static gboolean save_edit(eg_image image, eo_edit e, gint subject)
{
    gchar *path = profile_file("preset.json"), *text = NULL;
    gsize len = 0;
    const char *name = subject_names[subject];
    gboolean good = ok(eo_edit_save_ex(e, path, EO_WRITE_REPLACE), "saving the preset") &&
                    write_profile_file("subject", name, strlen(name));
    if (good && g_file_get_contents(path, &text, &len, NULL)) {
        attach_image_parasite(image, PRESET_PARASITE, len, text);
        attach_image_parasite(image, SUBJECT_PARASITE, strlen(name), name);
    }
    g_free(text);
    g_free(path);
    return good;
}

/* "faces" or "layer" from a parasite's or file's bytes; an edit saved
 * before the plug-in knew faces has none and was a whole-layer edit. */
static gint subject_of(const char *text, gsize len)
{
    return text && len == strlen(subject_names[SUBJECT_FACES]) && memcmp(text, subject_names[SUBJECT_FACES], len) == 0
               ? SUBJECT_FACES
               : SUBJECT_LAYER;
}

/*
 * The image's edit and subject (its parasites), else the profile's last.
 * The parasites go through the profile's files (g_file_set_contents also
 * writes a temporary file and renames it); if that fails, loading the file
 * would give another image's edit, so it is an error.
 */
static gboolean load_edit(eo_model m, eg_image image, eo_edit *e, gint *subject)
{
    gchar *path = profile_file("preset.json");
    GimpParasite *par = gimp_image_get_parasite(image, PRESET_PARASITE);
    gboolean good = TRUE;
    if (par) {
        GimpParasite *sub = gimp_image_get_parasite(image, SUBJECT_PARASITE);
        gsize len = 0, sub_len = 0;
        gconstpointer text = parasite_bytes(par, &len), sub_text = sub ? parasite_bytes(sub, &sub_len) : NULL;
        *subject = sub ? subject_of(sub_text, sub_len) : SUBJECT_LAYER;
        good = write_profile_file("preset.json", text, len) &&
               write_profile_file("subject", subject_names[*subject], strlen(subject_names[*subject]));
        if (sub)
            gimp_parasite_free(sub);
        gimp_parasite_free(par);
    } else if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        good = eg_fail("editone: no example set yet: run Filters > Editone > Set Example first");
    } else {
        gchar *subject_path = profile_file("subject"), *text = NULL;
        gsize len = 0;
        *subject = g_file_get_contents(subject_path, &text, &len, NULL) ? subject_of(text, len) : SUBJECT_LAYER;
        g_free(text);
        g_free(subject_path);
    }
    good = good && ok(eo_edit_load(m, path, e), "loading the edit (run Set Example first)");
    g_free(path);
    return good;
}

/* Anchors of the active path, in pairs: handle, target (layer pixels). */
static gboolean path_points(eg_image image, eg_layer layer, eo_point **handles, eo_point **targets, size_t *n)
{
    eg_path path = active_path(image);
    gsize nstrokes = 0;
    gint *strokes = path ? path_strokes(path, &nstrokes) : NULL;
    GArray *anchors = g_array_new(FALSE, FALSE, sizeof(eo_point));
    gint ox, oy;
    layer_offsets(layer, &ox, &oy);
    for (gsize s = 0; s < nstrokes; s++) {
        gsize np = 0;
        gdouble *cp = NULL;
        stroke_points(path, strokes[s], &np, &cp);
        for (gsize i = 0; i + 6 <= np; i += 6) {
            eo_point pt = { (float)(cp[i + 2] - ox), (float)(cp[i + 3] - oy) }; /* anchor of (in, anchor, out) */
            g_array_append_val(anchors, pt);
        }
        g_free(cp);
    }
    g_free(strokes);
    *n = anchors->len / 2;
    *handles = g_new(eo_point, *n ? *n : 1);
    *targets = g_new(eo_point, *n ? *n : 1);
    for (size_t i = 0; i < *n; i++) {
        (*handles)[i] = g_array_index(anchors, eo_point, 2 * i);
        (*targets)[i] = g_array_index(anchors, eo_point, 2 * i + 1);
    }
    g_array_free(anchors, TRUE);
    if (*n == 0)
        failure = "editone: the active path needs anchors in pairs (handle, then target)";
    return *n > 0;
}

/* Layer pixels to the face's crop (the model's pixels): x' = t0 x + t1 y + t2,
 * y' = t3 x + t4 y + t5; false when the point falls outside the crop. */
static gboolean to_crop(const double *t, uint32_t resolution, eo_point *pt)
{
    double x = t[0] * pt->x + t[1] * pt->y + t[2], y = t[3] * pt->x + t[4] * pt->y + t[5];
    pt->x = (float)x;
    pt->y = (float)y;
    return x >= -0.5 && y >= -0.5 && x <= resolution - 0.5 && y <= resolution - 0.5;
}

/* The edit of `example`: along a direction, or dragging the active path's
 * anchor pairs (for a face, `transform` maps them onto its crop). */
static gboolean make_edit(eo_model m, eg_image image, eg_layer layer, eo_latent example, const double *transform,
                          gint kind, gint direction, gdouble strength, eo_edit *e)
{
    eo_model_desc d = { sizeof d };
    if (!ok(eo_model_info(m, &d), "reading the model"))
        return FALSE;
    if (kind == 1) {
        eo_point *handles, *targets;
        size_t n;
        eo_drag_options o;
        gboolean good = path_points(image, layer, &handles, &targets, &n);
        eo_drag_options_init(&o);
        if (transform) {
            for (size_t i = 0; good && i < n; i++)
                if (!to_crop(transform, d.resolution, &handles[i]) || !to_crop(transform, d.resolution, &targets[i]))
                    good = eg_fail("editone: the path's anchor pair %zu is not on the example face: draw the pairs "
                                "inside the face's box", i + 1);
            o.image_width = o.image_height = 0; /* the crop: the model's resolution */
        } else {
            o.image_width = (uint32_t)layer_width(layer);
            o.image_height = (uint32_t)layer_height(layer);
        }
        gimp_progress_init("editone: dragging");
        good = good && ok(eo_edit_from_drag(example, handles, targets, n, &o, on_progress, NULL, e), "dragging");
        g_free(handles);
        g_free(targets);
        return good;
    }
    size_t len = ((size_t)direction + 1) * d.w_dim;
    float *dirs = g_new(float, len);
    gboolean good = ok(eo_model_directions(m, (uint32_t)direction + 1, dirs, len), "finding directions") &&
                    ok(eo_edit_from_direction(example, dirs + (size_t)direction * d.w_dim, d.w_dim, (float)strength, e),
                       "making the edit");
    g_free(dirs);
    return good;
}

static const char *other_subjects =
    "For models of other subjects (cars, churches...), choose the subject \"the whole layer\" in Set Example.";

/* Releases what a command held (a handle still 0 was never made). */
static void release(eo_model m, eo_detector det, eo_edit e)
{
    if (e.id)
        eo_edit_release(e);
    if (det.id)
        eo_detector_release(det);
    if (m.id)
        eo_model_release(m);
}

static gboolean load_detector(eo_detector *det)
{
    if (ok(eo_detector_load(NULL, det), "loading the face detector"))
        return TRUE;
    gchar *text = g_strdup_printf("%s. %s", message, other_subjects);
    eg_fail("%s", text);
    g_free(text);
    return FALSE;
}

/* The example face: the largest whose box centre lies in the selection,
 * or the largest when nothing is selected. */
static gboolean choose_face(eg_image image, const layer_state *st, size_t *k)
{
    gint ox, oy, w = image_width(image), h = image_height(image);
    *k = 0;
    if (gimp_selection_is_empty(image))
        return TRUE;
    layer_offsets(st->layer, &ox, &oy);
    for (size_t i = 0; i < st->n; i++) {
        const float *b = st->face[i].bbox;
        gint x = ox + (gint)floor((b[0] + b[2]) / 2 + 0.5), y = oy + (gint)floor((b[1] + b[3]) / 2 + 0.5);
        if (x >= 0 && y >= 0 && x < w && y < h && gimp_selection_value(image, x, y) >= 128) {
            *k = i;
            return TRUE;
        }
    }
    return eg_fail("editone: none of the %zu faces found in '%s' has its centre in the selection: select around one "
                "face, or select nothing to take the largest",
                st->n, name_of(st->layer));
}

gboolean eg_set_example(eg_image image, eg_layer layer, const eg_example_args *args)
{
    gint subject = args->subject;
    gboolean faces = subject == SUBJECT_FACES;
    eo_model m = { 0 };
    eo_detector det = { 0 };
    eo_latent example = { 0 };
    eo_edit e = { 0 };
    layer_state st = { 0 };
    span whole = { 0, 1 };
    size_t k = 0;
    if (subject != SUBJECT_FACES && subject != SUBJECT_LAYER)
        return eg_fail("editone: subject is %d: 0 for faces, 1 for the whole layer", subject);
    if (!eg_check_layer(layer))
        return FALSE;
    gboolean good = ok(eo_model_load_default(&m), "loading the model") && (!faces || load_detector(&det));
    if (good) {
        gimp_progress_init("editone: setting the example");
        good = state_get(m, det, layer, faces, args->invert_steps, &whole, &st);
    }
    if (good && faces && st.n == 0)
        good = eg_fail("editone: no face found in '%s'; nothing was changed. %s", name_of(layer), other_subjects);
    good = good && (!faces || choose_face(image, &st, &k));
    if (good) {
        pixels p = read_layer(layer);
        good = state_latents(m, &st, &p, k, 1, &example);
        g_free(p.data);
    }
    good = good && make_edit(m, image, layer, example, faces ? st.transform + 6 * k : NULL, args->kind,
                             args->direction, args->strength, &e);
    if (good) {
        eo_optimize_options o;
        eo_optimize_options_init_fast(&o);
        if (args->optimize_steps > 0)
            o.iterations = (uint32_t)args->optimize_steps;
        gimp_progress_init("editone: optimising the edit");
        good = ok(eo_edit_optimize(e, &o, on_progress, NULL), "optimising");
    }
    if (good) {
        /* The image changes here only, in one undo step. The example is
         * named for scripts: "layer TATTOO [face LEFT TOP RIGHT BOTTOM]". */
        GString *where = g_string_new(NULL);
        g_string_printf(where, "layer %d", gimp_item_get_tattoo(ITEM(layer)));
        for (int i = 0; faces && i < 4; i++) {
            char number[G_ASCII_DTOSTR_BUF_SIZE];
            g_string_append_printf(where, "%s%s", i ? " " : " face ",
                                   g_ascii_formatd(number, sizeof number, "%.1f", st.face[k].bbox[i]));
        }
        gimp_image_undo_group_start(image);
        state_attach(&st);
        good = save_edit(image, e, subject);
        if (good)
            attach_image_parasite(image, EXAMPLE_PARASITE, where->len, where->str);
        gimp_image_undo_group_end(image);
        g_string_free(where, TRUE);
    }
    state_free(&st);
    if (example.id)
        eo_latent_release(example);
    release(m, det, e);
    return good;
}

/* Whether `par` holds `tattoo`: a result made from the layer it names. */
static gboolean names_tattoo(const GimpParasite *par, guint tattoo)
{
    gsize len = 0;
    gconstpointer data = par ? parasite_bytes(par, &len) : NULL;
    return data && len == sizeof tattoo && memcmp(data, &tattoo, sizeof tattoo) == 0;
}

/* The result layer made from `source`, if there is one. */
static gboolean result_of(eg_image image, eg_layer source, eg_layer *found)
{
    GArray *layers = eg_image_layers(image);
    guint tattoo = gimp_item_get_tattoo(ITEM(source));
    gboolean seen = FALSE;
    for (guint i = 0; i < layers->len && !seen; i++) {
        eg_layer layer = g_array_index(layers, eg_layer, i);
        GimpParasite *par = gimp_item_get_parasite(ITEM(layer), RESULT_PARASITE);
        seen = names_tattoo(par, tattoo);
        if (seen && found)
            *found = layer;
        if (par)
            gimp_parasite_free(par);
    }
    g_array_free(layers, TRUE);
    return seen;
}

gboolean eg_is_result(eg_layer layer)
{
    GimpParasite *par = gimp_item_get_parasite(ITEM(layer), RESULT_PARASITE);
    if (par)
        gimp_parasite_free(par);
    return par != NULL;
}

/* Releases the latents made of two arrays of n (an id 0 was never made)
 * and frees the arrays. */
static void free_latents(eo_latent *a, eo_latent *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].id)
            eo_latent_release(a[i]);
        if (b[i].id)
            eo_latent_release(b[i]);
    }
    g_free(a);
    g_free(b);
}

/* ------------------------------------------- the tuned model (PTI) */
#define TUNE_PARASITE "editone-tune"
/* Tuned models kept in the profile; the least recently used go first. */
#define TUNED_KEEP 8
/* eo_model_tune's limit on photos at once. */
#define TUNE_MAX 256

/* Orders layer states by their pixels, so that the same layers give the
 * same tuning (and cache key) whichever order they were selected in. */
static int by_digest(const void *a, const void *b)
{
    return memcmp(((const layer_state *)a)->digest, ((const layer_state *)b)->digest, 32);
}

/*
 * The cache file for a tuning of these states: SHA-256 of the base model
 * (its shapes and, when set, the EDITONE_DEFAULT_MODEL it came from), the
 * tuning options and every layer's pixels, faces and pivots, in order. A
 * file that is there but tuned from another base is refused by
 * eo_model_load_tuned, and then tuned again.
 */
static gchar *tuned_path(eo_model m, const layer_state *states, guint count, const eo_tune_options *o)
{
    eo_model_desc d = { sizeof d };
    const char *model = g_getenv("EDITONE_DEFAULT_MODEL");
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    eo_model_info(m, &d);
    /* fields one by one: padding bytes are not part of the key */
    gchar *about = g_strdup_printf("editone-tuned-1 %.16s %u %u %u %u %s|%u %.9g %.9g %.9g %" G_GUINT64_FORMAT,
                                   d.architecture, d.resolution, d.channels, d.w_dim, d.num_ws, model ? model : "",
                                   o->steps, o->learning_rate, o->locality_weight, o->locality_reach,
                                   (guint64)o->seed);
    g_checksum_update(sum, (const guchar *)about, -1);
    g_free(about);
    for (guint i = 0; i < count; i++) {
        const layer_state *st = &states[i];
        guint64 n = st->n;
        g_checksum_update(sum, st->digest, 32);
        g_checksum_update(sum, (const guchar *)&n, sizeof n);
        if (st->faces)
            g_checksum_update(sum, (const guchar *)st->transform, (gssize)(6 * st->n * sizeof(double)));
        g_checksum_update(sum, (const guchar *)st->w, (gssize)(st->n * st->floats * sizeof(float)));
    }
    gchar *dir = profile_file("tuned"), *name = g_strdup_printf("%s.safetensors", g_checksum_get_string(sum));
    g_mkdir_with_parents(dir, 0700);
    gchar *path = g_build_filename(dir, name, NULL);
    g_checksum_free(sum);
    g_free(name);
    g_free(dir);
    return path;
}

/* Modification time, for GSList sorting of "mtime\tpath" strings. */
static gint newest_first(gconstpointer a, gconstpointer b)
{
    return -strcmp(a, b);
}

/* Removes all but the TUNED_KEEP most recently used tuned models. */
static void prune_tuned(void)
{
    gchar *dir = profile_file("tuned");
    GDir *d = g_dir_open(dir, 0, NULL);
    GSList *files = NULL;
    const gchar *name;
    while (d && (name = g_dir_read_name(d))) {
        GStatBuf sb;
        gchar *path = g_build_filename(dir, name, NULL);
        if (name[0] != '.' && g_str_has_suffix(name, ".safetensors") && g_stat(path, &sb) == 0)
            files = g_slist_prepend(files, g_strdup_printf("%020lld\t%s", (long long)sb.st_mtime, path));
        g_free(path);
    }
    files = g_slist_sort(files, newest_first);
    guint kept = 0;
    for (GSList *f = files; f; f = f->next)
        if (++kept > TUNED_KEEP)
            g_remove(strchr(f->data, '\t') + 1);
    g_slist_free_full(files, g_free);
    if (d)
        g_dir_close(d);
    g_free(dir);
}

/* Tunes the base on every face (or whole layer) of the states at once and
 * saves the result as the cache file `path`; a file that cannot be saved
 * costs the next run a new tuning, so it is a message, not a failure. */
static gboolean tune_now(eo_model m, const layer_state *states, guint count, size_t total, const eo_tune_options *o,
                         const char *path, eo_model *tuned)
{
    eo_latent *ls = g_new0(eo_latent, total), *pivots = g_new0(eo_latent, total);
    span whole = { 0, 1 };
    size_t at = 0;
    gboolean good = TRUE;
    for (guint i = 0; good && i < count; at += states[i].n, i++) {
        pixels p = read_layer(states[i].layer);
        good = states[i].n == 0 || state_latents(m, &states[i], &p, 0, states[i].n, ls + at);
        g_free(p.data);
    }
    gimp_progress_set_text_printf("editone: tuning the model to %zu %s", total, states->faces ? "faces" : "layers");
    good = good && ok(eo_model_tune(m, ls, total, o, on_progress, &whole, tuned, pivots), "tuning the model");
    if (good && eo_model_save_tuned_ex(*tuned, path, EO_WRITE_REPLACE) != EO_OK)
        g_message("editone: the tuned model could not be kept in the profile (%s); the next run tunes again",
                  eo_last_error());
    free_latents(ls, pivots, total);
    prune_tuned();
    return good;
}

/*
 * The base tuned to every face of `states` (pivotal tuning, one generator
 * for all), from the profile's cache when it holds this tuning, else tuned
 * now (progress: GIMP's Cancel ends the plug-in, the image untouched). The
 * states are sorted by their pixels first.
 */
static gboolean tuned_model(eo_model m, layer_state *states, guint count, gint steps, eo_model *tuned)
{
    eo_tune_options o;
    size_t total = 0;
    eo_tune_options_init(&o);
    o.steps = (uint32_t)steps;
    qsort(states, count, sizeof *states, by_digest);
    for (guint i = 0; i < count; i++)
        total += states[i].n;
    if (total > TUNE_MAX)
        return eg_fail("editone: the selected layers hold %zu faces; tuning takes at most %d at once: select fewer "
                       "layers, or set the tuning steps to 0",
                       total, TUNE_MAX);
    gchar *path = tuned_path(m, states, count, &o);
    gboolean good = g_file_test(path, G_FILE_TEST_IS_REGULAR) && eo_model_load_tuned(m, path, tuned) == EO_OK;
    if (good)
        g_utime(path, NULL); /* recently used: kept by prune_tuned */
    else
        good = tune_now(m, states, count, total, &o, path, tuned);
    g_free(path);
    return good;
}

/* The tuning steps of the image's last Apply (0: not tuned). */
static gint image_tune_steps(eg_image image)
{
    GimpParasite *par = gimp_image_get_parasite(image, TUNE_PARASITE);
    gsize len = 0;
    gconstpointer data = par ? parasite_bytes(par, &len) : NULL;
    gint steps = 0;
    if (data && len < 16) {
        char text[16] = { 0 };
        memcpy(text, data, len);
        steps = (gint)CLAMP(g_ascii_strtoll(text, NULL, 10), 0, G_MAXINT);
    }
    if (par)
        gimp_parasite_free(par);
    return steps;
}

/* The edit of the state's layer: its faces' edits composited into its
 * pixels (alpha kept), or the whole layer rendered in residual mode. */
static gboolean render_state(eo_model m, eo_edit e, const layer_state *st, pixels *out)
{
    pixels p = read_layer(st->layer);
    size_t n = st->n;
    eo_latent *ls = g_new0(eo_latent, n), *edited = g_new0(eo_latent, n);
    gboolean good = fingerprint(&p) == st->fingerprint ||
                    eg_fail("editone: '%s' changed while editone worked on it; run the command again",
                         name_of(st->layer));
    *out = (pixels){ g_malloc((gsize)p.width * p.height * 4), p.width, p.height };
    eo_image_view v = view_of(out);
    good = good && state_latents(m, st, &p, 0, n, ls) &&
           ok(eo_edit_apply_batch(e, ls, n, edited, NULL), "applying the edit");
    if (st->faces) {
        good = good && ok(eo_render_photo(edited, n, EO_RENDER_AUTO, &v), "rendering the faces into the layer");
        for (gsize i = 3; good && i < (gsize)p.width * p.height * 4; i += 4)
            out->data[i] = p.data[i];
    } else {
        good = good && ok(eo_render(edited[0], &v), "rendering");
    }
    free_latents(ls, edited, n);
    g_free(p.data);
    if (!good) {
        g_free(out->data);
        out->data = NULL;
    }
    return good;
}

/* Writes `out` into the result layer of `source` (made if missing). */
static void write_result(eg_image image, eg_layer source, const pixels *out)
{
    eg_layer target;
    gint ox, oy;
    if (!result_of(image, source, &target)) {
        guint tattoo = gimp_item_get_tattoo(ITEM(source));
        gchar *name = g_strdup_printf("%s (editone)", name_of(source));
        target = new_layer_above(image, source, name, out->width, out->height);
        g_free(name);
        layer_offsets(source, &ox, &oy);
        gimp_layer_set_offsets(target, ox, oy);
        GimpParasite *par = gimp_parasite_new(RESULT_PARASITE, PARASITE_FLAGS, sizeof tattoo, &tattoo);
        gimp_item_attach_parasite(ITEM(target), par);
        gimp_parasite_free(par);
    }
    /* Through the shadow buffer: merging it records the old pixels in the
     * undo group, so undoing Adjust Strength brings them back. */
    GeglBuffer *buffer = gimp_drawable_get_shadow_buffer(DRAWABLE(target));
    gegl_buffer_set(buffer, GEGL_RECTANGLE(0, 0, out->width, out->height), 0, babl_format(PIXEL_FORMAT), out->data,
                    GEGL_AUTO_ROWSTRIDE);
    gegl_buffer_flush(buffer);
    g_object_unref(buffer);
    gimp_drawable_merge_shadow(DRAWABLE(target), TRUE);
    gimp_drawable_update(DRAWABLE(target), 0, 0, out->width, out->height);
}

/*
 * Apply to Selection (strength NULL) and Adjust Strength. First every
 * layer's faces are found and projected (or read from its cache), with
 * progress over all layers, then with tuning one generator is tuned to all
 * of them (or read from the profile's cache); GIMP's Cancel ends the
 * plug-in there and the image has not been touched. Then, with the
 * progress ended (nothing left to cancel), every result is rendered and
 * written in one undo step.
 */
gboolean eg_apply(eg_image image, GArray *candidates, gint invert_steps, gint tune_steps, const gdouble *strength)
{
    eo_model m = { 0 }, tuned = { 0 };
    eo_detector det = { 0 };
    eo_edit e = { 0 };
    gint subject = SUBJECT_LAYER;
    GArray *layers = g_array_new(FALSE, FALSE, sizeof(eg_layer));
    GString *skipped = g_string_new(NULL);
    guint with_faces = 0, without = 0;
    gboolean good = ok(eo_model_load_default(&m), "loading the model") && load_edit(m, image, &e, &subject);
    gboolean faces = subject == SUBJECT_FACES;
    for (guint i = 0; i < candidates->len; i++) {
        eg_layer source = g_array_index(candidates, eg_layer, i);
        /* Adjust re-renders existing results only */
        if (!eg_is_result(source) && (!strength || result_of(image, source, NULL)))
            g_array_append_val(layers, source);
    }
    layer_state *states = g_new0(layer_state, layers->len ? layers->len : 1);
    if (good && strength)
        good = ok(eo_edit_set_strength(e, (float)*strength), "setting the strength");
    if (good && faces && layers->len > 0)
        good = load_detector(&det);
    if (good && layers->len > 0)
        gimp_progress_init(strength ? "editone: adjusting the strength" : "editone: applying the edit");
    for (guint i = 0; good && i < layers->len; i++) {
        span sp = { i, layers->len };
        good = state_get(m, det, g_array_index(layers, eg_layer, i), faces, invert_steps, &sp, &states[i]);
        if (good && states[i].n == 0) {
            g_string_append_printf(skipped, "%s'%s'", without ? ", " : "", name_of(states[i].layer));
            without++;
        }
        with_faces += good && states[i].n > 0;
    }
    if (good && faces && layers->len > 0 && with_faces == 0)
        good = eg_fail("editone: no face found in %s; nothing was changed. %s", skipped->str, other_subjects);
    if (strength)
        tune_steps = image_tune_steps(image);
    if (good && tune_steps > 0 && with_faces > 0)
        good = tuned_model(m, states, layers->len, tune_steps, &tuned);
    if (good) {
        if (layers->len > 0)
            gimp_progress_end();
        gimp_image_undo_group_start(image);
        if (strength) {
            good = save_edit(image, e, subject);
        } else {
            gchar *steps = g_strdup_printf("%d", MAX(tune_steps, 0));
            attach_image_parasite(image, TUNE_PARASITE, strlen(steps), steps);
            g_free(steps);
        }
        for (guint i = 0; good && i < layers->len; i++) {
            pixels out;
            if (states[i].n == 0)
                continue;
            good = render_state(tuned.id ? tuned : m, e, &states[i], &out);
            if (good) {
                write_result(image, states[i].layer, &out);
                state_attach(&states[i]);
                g_free(out.data);
            }
        }
        gimp_image_undo_group_end(image);
    }
    if (good && without > 0)
        g_message("editone: no face found in %s; %s", skipped->str,
                  without > 1 ? "those layers were left as they are" : "that layer was left as it is");
    for (guint i = 0; i < layers->len; i++)
        state_free(&states[i]);
    g_free(states);
    g_string_free(skipped, TRUE);
    g_array_free(layers, TRUE);
    if (tuned.id)
        eo_model_release(tuned);
    release(m, det, e);
    return good;
}

gint eg_default_tune_steps(void)
{
    eo_tune_options o;
    eo_tune_options_init(&o);
    return (gint)o.steps;
}

/*
 * editone for GIMP 2.10: edit one layer, apply the edit to every layer.
 *
 * Filters > Editone > Set Example        the active layer is the example; the
 *                                         edit is a direction and strength, or
 *                                         drag points from the active path
 *                                         (anchors in pairs: handle, target)
 * Filters > Editone > Apply to Selection  a new edited layer above every layer
 *                                         (the linked ones, when some are linked)
 * Filters > Editone > Adjust Strength     the example's strength; results follow
 *
 * Layers are photos to the model: each is projected into its latent space
 * once (cached in a layer parasite) and results render in residual mode,
 * so they keep the layer's size, position and detail. The edit is saved as
 * a preset file under the GIMP profile and as a parasite on the image.
 * Everything goes through libeditone's public C API.
 */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <editone.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SET_EXAMPLE "plug-in-editone-set-example"
#define APPLY "plug-in-editone-apply-to-selection"
#define ADJUST "plug-in-editone-adjust-strength"
#define LATENT_PARASITE "editone-latent"
#define RESULT_PARASITE "editone-result-of"
#define PRESET_PARASITE "editone-preset"
#define PIXEL_FORMAT "R'G'B'A u8"

/* A layer's pixels as the library sees them. */
typedef struct {
    guint8 *data;
    gint width, height;
} pixels;

static const char *failure; /* set with the library's message on error */

static gboolean ok(eo_status st, const char *doing)
{
    static char message[1024];
    if (st == EO_OK)
        return TRUE;
    snprintf(message, sizeof message, "editone: %s: %s", doing, eo_last_error());
    failure = message;
    return FALSE;
}

static int32_t on_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)user;
    (void)stage;
    gimp_progress_update(total ? (gdouble)done / (gdouble)total : 0.0);
    return 0;
}

static pixels read_layer(gint32 layer)
{
    pixels p = { NULL, gimp_drawable_width(layer), gimp_drawable_height(layer) };
    GeglBuffer *buffer = gimp_drawable_get_buffer(layer);
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

/* The layer's latent: cached in a parasite (fingerprint, floats), else
 * projected now. The latent remembers the layer's pixels as its photo. */
static gboolean layer_latent(eo_model m, gint32 layer, gint invert_steps, eo_latent *out)
{
    pixels p = read_layer(layer);
    eo_image_view v = view_of(&p);
    guint64 fp = fingerprint(&p);
    size_t n = 0;
    gboolean done = FALSE, good = TRUE;
    eo_latent fresh;
    GimpParasite *cached = gimp_item_get_parasite(layer, LATENT_PARASITE);
    eo_model_desc d = { sizeof d };
    good = ok(eo_model_info(m, &d), "reading the model");
    n = (size_t)d.num_ws * d.w_dim;
    if (good && cached && (size_t)gimp_parasite_data_size(cached) == 8 + n * 4 &&
        memcmp(gimp_parasite_data(cached), &fp, 8) == 0) {
        good = ok(eo_latent_from_w_photo(m, (const float *)((const guint8 *)gimp_parasite_data(cached) + 8), n, &v, out),
                  "restoring the layer's latent");
        done = TRUE;
    }
    if (cached)
        gimp_parasite_free(cached);
    if (good && !done) {
        eo_invert_options o;
        eo_invert_options_init(&o);
        o.steps = (uint32_t)invert_steps;
        gimp_progress_init_printf("editone: projecting '%s'", gimp_item_get_name(layer));
        good = ok(eo_latent_invert(m, &v, &o, on_progress, NULL, &fresh), "projecting the layer");
        if (good) {
            guint8 *blob = g_malloc(8 + n * 4);
            memcpy(blob, &fp, 8);
            good = ok(eo_latent_read(fresh, (float *)(blob + 8), n, NULL), "reading the latent");
            if (good) {
                GimpParasite *par = gimp_parasite_new(LATENT_PARASITE, GIMP_PARASITE_PERSISTENT, 8 + n * 4, blob);
                gimp_item_attach_parasite(layer, par);
                gimp_parasite_free(par);
            }
            g_free(blob);
            *out = fresh;
        }
    }
    g_free(p.data);
    return good;
}

static gchar *preset_path(void)
{
    gchar *dir = g_build_filename(gimp_directory(), "editone", NULL);
    g_mkdir_with_parents(dir, 0700);
    gchar *path = g_build_filename(dir, "preset.json", NULL);
    g_free(dir);
    return path;
}

/*
 * Saves the edit to the profile's preset file and the image's parasite.
 * That file is the plug-in's own, rewritten at every edit, so it is
 * replaced on purpose (EO_WRITE_REPLACE); the library writes it under a
 * temporary name and renames it, so it is always a whole preset.
 */
static gboolean save_edit(gint32 image, eo_edit e)
{
    gchar *path = preset_path(), *text = NULL;
    gsize len = 0;
    gboolean good = ok(eo_edit_save_ex(e, path, EO_WRITE_REPLACE), "saving the preset");
    if (good && g_file_get_contents(path, &text, &len, NULL)) {
        GimpParasite *par = gimp_parasite_new(PRESET_PARASITE, GIMP_PARASITE_PERSISTENT, len, text);
        gimp_image_attach_parasite(image, par);
        gimp_parasite_free(par);
    }
    g_free(text);
    g_free(path);
    return good;
}

/*
 * The image's edit (its parasite), else the profile's last preset. The
 * parasite goes through the profile's preset file (g_file_set_contents
 * also writes a temporary file and renames it); if that fails, loading the
 * file would give another image's edit, so it is an error.
 */
static gboolean load_edit(eo_model m, gint32 image, eo_edit *e)
{
    gchar *path = preset_path();
    GimpParasite *par = gimp_image_get_parasite(image, PRESET_PARASITE);
    GError *error = NULL;
    gboolean good = TRUE;
    if (par) {
        good = g_file_set_contents(path, gimp_parasite_data(par), gimp_parasite_data_size(par), &error);
        gimp_parasite_free(par);
    }
    if (!good) {
        static char message[1024];
        snprintf(message, sizeof message, "editone: writing the image's edit to '%s': %s", path, error->message);
        failure = message;
        g_error_free(error);
    }
    good = good && ok(eo_edit_load(m, path, e), "loading the edit (run Set Example first)");
    g_free(path);
    return good;
}

/* Anchors of the active path, in pairs: handle, target (layer pixels). */
static gboolean path_points(gint32 image, gint32 layer, eo_point **handles, eo_point **targets, size_t *n)
{
    gint32 vectors = gimp_image_get_active_vectors(image);
    gint nstrokes = 0, *strokes = vectors > 0 ? gimp_vectors_get_strokes(vectors, &nstrokes) : NULL;
    GArray *anchors = g_array_new(FALSE, FALSE, sizeof(eo_point));
    gint ox, oy;
    gimp_drawable_offsets(layer, &ox, &oy);
    for (gint s = 0; s < nstrokes; s++) {
        gint np = 0;
        gdouble *cp = NULL;
        gboolean closed;
        gimp_vectors_stroke_get_points(vectors, strokes[s], &np, &cp, &closed);
        for (gint i = 0; i + 6 <= np; i += 6) {
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

static gboolean make_edit(eo_model m, gint32 image, gint32 layer, eo_latent example, gint kind, gint direction,
                          gdouble strength, eo_edit *e)
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
        o.image_width = (uint32_t)gimp_drawable_width(layer);
        o.image_height = (uint32_t)gimp_drawable_height(layer);
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

static gboolean set_example(gint32 image, gint32 layer, const GimpParam *param)
{
    eo_model m;
    eo_latent example = { 0 };
    eo_edit e = { 0 };
    gboolean good = ok(eo_model_load_default(&m), "loading the model");
    good = good && layer_latent(m, layer, param[7].data.d_int32, &example);
    good = good && make_edit(m, image, layer, example, param[3].data.d_int32, param[4].data.d_int32,
                             param[5].data.d_float, &e);
    if (good) {
        eo_optimize_options o;
        eo_optimize_options_init_fast(&o);
        if (param[6].data.d_int32 > 0)
            o.iterations = (uint32_t)param[6].data.d_int32;
        gimp_progress_init("editone: optimising the edit");
        good = ok(eo_edit_optimize(e, &o, on_progress, NULL), "optimising") && save_edit(image, e);
    }
    if (e.id)
        eo_edit_release(e);
    if (example.id)
        eo_latent_release(example);
    eo_model_release(m);
    return good;
}

/* The result layer made from `source`, or -1. */
static gint32 result_of(gint32 image, gint32 source)
{
    gint n = 0, *layers = gimp_image_get_layers(image, &n);
    gint tattoo = gimp_item_get_tattoo(source);
    gint32 found = -1;
    for (gint i = 0; i < n && found < 0; i++) {
        GimpParasite *par = gimp_item_get_parasite(layers[i], RESULT_PARASITE);
        if (par && gimp_parasite_data_size(par) == sizeof tattoo && memcmp(gimp_parasite_data(par), &tattoo, sizeof tattoo) == 0)
            found = layers[i];
        if (par)
            gimp_parasite_free(par);
    }
    g_free(layers);
    return found;
}

static gboolean is_result(gint32 layer)
{
    GimpParasite *par = gimp_item_get_parasite(layer, RESULT_PARASITE);
    if (par)
        gimp_parasite_free(par);
    return par != NULL;
}

/* Renders the edit of `source` into its result layer (made if missing). */
static gboolean render_result(gint32 image, gint32 source, eo_model m, eo_edit e, gint invert_steps)
{
    eo_latent l = { 0 }, edited = { 0 };
    gboolean good = layer_latent(m, source, invert_steps, &l) && ok(eo_edit_apply(e, l, &edited), "applying the edit");
    gint w = gimp_drawable_width(source), h = gimp_drawable_height(source), ox, oy;
    pixels out = { g_malloc((gsize)w * h * 4), w, h };
    eo_image_view v = view_of(&out);
    good = good && ok(eo_render(edited, &v), "rendering");
    if (good) {
        gint32 target = result_of(image, source);
        if (target < 0) {
            gint tattoo = gimp_item_get_tattoo(source);
            gchar *name = g_strdup_printf("%s (editone)", gimp_item_get_name(source));
            target = gimp_layer_new(image, name, w, h, GIMP_RGBA_IMAGE, 100.0, GIMP_LAYER_MODE_NORMAL);
            g_free(name);
            gimp_image_insert_layer(image, target, gimp_item_get_parent(source), gimp_image_get_item_position(image, source));
            gimp_drawable_offsets(source, &ox, &oy);
            gimp_layer_set_offsets(target, ox, oy);
            GimpParasite *par = gimp_parasite_new(RESULT_PARASITE, GIMP_PARASITE_PERSISTENT, sizeof tattoo, &tattoo);
            gimp_item_attach_parasite(target, par);
            gimp_parasite_free(par);
        }
        GeglBuffer *buffer = gimp_drawable_get_buffer(target);
        gegl_buffer_set(buffer, GEGL_RECTANGLE(0, 0, w, h), 0, babl_format(PIXEL_FORMAT), out.data, GEGL_AUTO_ROWSTRIDE);
        g_object_unref(buffer);
        gimp_drawable_update(target, 0, 0, w, h);
    }
    g_free(out.data);
    if (edited.id)
        eo_latent_release(edited);
    if (l.id)
        eo_latent_release(l);
    return good;
}

/* Every layer, or the linked ones when some are linked; never results. */
static GArray *target_layers(gint32 image)
{
    gint n = 0, *layers = gimp_image_get_layers(image, &n);
    GArray *all = g_array_new(FALSE, FALSE, sizeof(gint32)), *linked = g_array_new(FALSE, FALSE, sizeof(gint32));
    for (gint i = 0; i < n; i++) {
        if (is_result(layers[i]))
            continue;
        g_array_append_val(all, layers[i]);
        if (gimp_item_get_linked(layers[i]))
            g_array_append_val(linked, layers[i]);
    }
    g_free(layers);
    if (linked->len > 0) {
        g_array_free(all, TRUE);
        return linked;
    }
    g_array_free(linked, TRUE);
    return all;
}

static gboolean apply_all(gint32 image, gint invert_steps, const gdouble *strength)
{
    eo_model m;
    eo_edit e = { 0 };
    gboolean good = ok(eo_model_load_default(&m), "loading the model") && load_edit(m, image, &e);
    if (good && strength)
        good = ok(eo_edit_set_strength(e, (float)*strength), "setting the strength") && save_edit(image, e);
    if (good) {
        GArray *layers = target_layers(image);
        gimp_image_undo_group_start(image);
        for (guint i = 0; good && i < layers->len; i++) {
            gint32 source = g_array_index(layers, gint32, i);
            if (!strength || result_of(image, source) >= 0)
                good = render_result(image, source, m, e, invert_steps);
        }
        gimp_image_undo_group_end(image);
        g_array_free(layers, TRUE);
    }
    if (e.id)
        eo_edit_release(e);
    eo_model_release(m);
    return good;
}

/* What the user chose last time (interactive runs). */
typedef struct {
    gint direction;
    gdouble strength;
} last_values;

/* A small dialog: the direction (when `direction` is given) and strength. */
static gboolean ask(const char *title, gint *direction, gdouble *strength)
{
    GtkAdjustment *adjustment;
    GtkWidget *dialog, *table, *spin;
    gint row = 0;
    gboolean accepted;
    gimp_ui_init("editone", FALSE);
    dialog = gimp_dialog_new(title, "editone", NULL, 0, gimp_standard_help_func, NULL, "_Cancel",
                             GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    table = gtk_table_new(2, 3, FALSE);
    gtk_container_set_border_width(GTK_CONTAINER(table), 12);
    gtk_table_set_row_spacings(GTK_TABLE(table), 6);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dialog))), table, TRUE, TRUE, 0);
    if (direction) {
        adjustment = GTK_ADJUSTMENT(gtk_adjustment_new(*direction, 0, 99, 1, 5, 0));
        spin = gtk_spin_button_new(adjustment, 1, 0);
        gimp_table_attach_aligned(GTK_TABLE(table), 0, row++, "_Direction (0 = strongest):", 0.0, 0.5, spin, 1, TRUE);
        g_signal_connect(adjustment, "value-changed", G_CALLBACK(gimp_int_adjustment_update), direction);
    }
    adjustment = GTK_ADJUSTMENT(gtk_adjustment_new(*strength, -20, 20, 0.5, 1, 0));
    spin = gtk_spin_button_new(adjustment, 0.5, 2);
    gimp_table_attach_aligned(GTK_TABLE(table), 0, row, "_Strength:", 0.0, 0.5, spin, 1, TRUE);
    g_signal_connect(adjustment, "value-changed", G_CALLBACK(gimp_double_adjustment_update), strength);
    gtk_widget_show_all(dialog);
    accepted = gimp_dialog_run(GIMP_DIALOG(dialog)) == GTK_RESPONSE_OK;
    gtk_widget_destroy(dialog);
    return accepted;
}

/* Fills the user's choices into `args` for interactive and repeat runs;
 * false when the user cancelled. */
static gboolean interactive_args(const gchar *name, GimpRunMode mode, GimpParam *args)
{
    last_values last = { 0, 4.0 };
    gboolean adjust = strcmp(name, ADJUST) == 0;
    gimp_get_data(name, &last);
    if (mode == GIMP_RUN_INTERACTIVE &&
        !ask(adjust ? "Editone: Adjust Strength" : "Editone: Set Example", adjust ? NULL : &last.direction, &last.strength))
        return FALSE;
    gimp_set_data(name, &last, sizeof last);
    if (adjust) {
        args[3].data.d_float = last.strength;
    } else if (strcmp(name, SET_EXAMPLE) == 0) {
        args[3].data.d_int32 = 0;
        args[4].data.d_int32 = last.direction;
        args[5].data.d_float = last.strength;
        args[6].data.d_int32 = 0;
        args[7].data.d_int32 = 0;
    } else {
        args[3].data.d_int32 = 0;
    }
    return TRUE;
}

static void query(void)
{
    static const GimpParamDef common[] = {
        { GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }" },
        { GIMP_PDB_IMAGE, "image", "Input image" },
        { GIMP_PDB_DRAWABLE, "drawable", "Input drawable" },
    };
    static GimpParamDef set_args[8], apply_args[4], adjust_args[4];
    memcpy(set_args, common, sizeof common);
    set_args[3] = (GimpParamDef){ GIMP_PDB_INT32, "edit-kind", "0: a direction and strength, 1: drag the active path's anchor pairs" };
    set_args[4] = (GimpParamDef){ GIMP_PDB_INT32, "direction", "Unsupervised direction index (0 = strongest)" };
    set_args[5] = (GimpParamDef){ GIMP_PDB_FLOAT, "strength", "Strength along the direction" };
    set_args[6] = (GimpParamDef){ GIMP_PDB_INT32, "optimize-steps", "Optimisation steps (0 = the fast preset)" };
    set_args[7] = (GimpParamDef){ GIMP_PDB_INT32, "invert-steps", "Projection steps per layer (0 = default)" };
    memcpy(apply_args, common, sizeof common);
    apply_args[3] = set_args[7];
    memcpy(adjust_args, common, sizeof common);
    adjust_args[3] = (GimpParamDef){ GIMP_PDB_FLOAT, "strength", "The example's strength; every result follows" };

    gimp_install_procedure(SET_EXAMPLE, "Make the active layer the example of an editone edit",
                           "The layer is projected into the face model's latent space, edited along a direction "
                           "(or by dragging the active path's anchors in pairs: handle, target), and the edit is "
                           "optimised and saved with the image.",
                           "editone", "editone", "2026", "Set _Example...", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(set_args), 0, set_args, NULL);
    gimp_install_procedure(APPLY, "Apply the editone edit to the selected layers",
                           "Adds an edited copy above every layer (the linked layers when some are linked), each "
                           "with its own strength so all end in the same state; one undo step.",
                           "editone", "editone", "2026", "_Apply to Selection", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(apply_args), 0, apply_args, NULL);
    gimp_install_procedure(ADJUST, "Change the example's strength; every result follows",
                           "Sets the edit's strength and re-renders every editone result layer.", "editone",
                           "editone", "2026", "Adjust _Strength...", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(adjust_args), 0, adjust_args, NULL);
    gimp_plugin_menu_register(SET_EXAMPLE, "<Image>/Filters/Editone");
    gimp_plugin_menu_register(APPLY, "<Image>/Filters/Editone");
    gimp_plugin_menu_register(ADJUST, "<Image>/Filters/Editone");
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals)
{
    static GimpParam values[2];
    GimpParam args[8];
    gint32 image = param[1].data.d_image, layer = param[2].data.d_drawable;
    GimpRunMode mode = (GimpRunMode)param[0].data.d_int32;
    gboolean good;
    gegl_init(NULL, NULL);
    failure = NULL;
    memset(args, 0, sizeof args);
    memcpy(args, param, (gsize)MIN(nparams, 8) * sizeof *param);
    param = args;
    values[0].type = GIMP_PDB_STATUS;
    *nreturn_vals = 1;
    *return_vals = values;
    if (mode != GIMP_RUN_NONINTERACTIVE && !interactive_args(name, mode, args)) {
        values[0].data.d_status = GIMP_PDB_CANCEL;
        return;
    }
    if (strcmp(name, SET_EXAMPLE) == 0 && nparams == 8)
        good = set_example(image, layer, param);
    else if (strcmp(name, APPLY) == 0 && nparams == 4)
        good = apply_all(image, param[3].data.d_int32, NULL);
    else if (strcmp(name, ADJUST) == 0 && nparams == 4)
        good = apply_all(image, 0, &param[3].data.d_float);
    else {
        good = FALSE;
        failure = "editone: wrong procedure or number of arguments";
    }
    if (good && mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush();
    if (!good && failure && mode == GIMP_RUN_INTERACTIVE)
        g_message("%s", failure);
    values[0].data.d_status = good ? GIMP_PDB_SUCCESS : GIMP_PDB_EXECUTION_ERROR;
    if (!good && failure) {
        values[1].type = GIMP_PDB_STRING;
        values[1].data.d_string = (gchar *)failure;
        *nreturn_vals = 2;
    }
}

const GimpPlugInInfo PLUG_IN_INFO = { NULL, NULL, query, run };

MAIN()

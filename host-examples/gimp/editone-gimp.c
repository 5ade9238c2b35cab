/*
 * editone for GIMP 2.10: edit one face, apply the edit to every face of
 * every layer.
 *
 * Filters > Editone > Set Example        a face of the active layer is the
 *                                         example: the one whose box centre
 *                                         lies in the selection (the largest
 *                                         such), else the layer's largest.
 *                                         The edit is a direction and
 *                                         strength, or drag points from the
 *                                         active path (anchors in pairs:
 *                                         handle, target)
 * Filters > Editone > Apply to Selection  one new layer above every layer
 *                                         (the linked ones, when some are
 *                                         linked) with all its faces edited;
 *                                         a layer with no face is left alone
 *                                         and named in a message
 * Filters > Editone > Adjust Strength     the example's strength; results follow
 *
 * Everything but the registration, the dialog and which layers a command
 * works on is in editone-shared.c, which the GIMP 3 plug-in
 * (editone-gimp3.c) compiles too.
 */
#include "editone-shared.h"

#include <libgimp/gimpui.h>

#include <string.h>

/* Every layer, or the linked ones when some are linked; never results. */
static GArray *target_layers(gint32 image)
{
    GArray *all = eg_image_layers(image), *linked = g_array_new(FALSE, FALSE, sizeof(gint32));
    for (guint i = 0; i < all->len; i++) {
        gint32 layer = g_array_index(all, gint32, i);
        if (!eg_is_result(layer) && gimp_item_get_linked(layer))
            g_array_append_val(linked, layer);
    }
    if (linked->len > 0) {
        g_array_free(all, TRUE);
        return linked;
    }
    g_array_free(linked, TRUE);
    return all;
}

/* What the user chose last time (interactive runs). */
typedef struct {
    gint direction;
    gdouble strength;
    gint subject;
} last_values;

/* A small dialog: the subject and direction (when given) and strength. */
static gboolean ask(const char *title, gint *subject, gint *direction, gdouble *strength)
{
    GtkAdjustment *adjustment;
    GtkWidget *dialog, *table, *spin, *combo = NULL;
    gint row = 0;
    gboolean accepted;
    gimp_ui_init("editone", FALSE);
    dialog = gimp_dialog_new(title, "editone", NULL, 0, gimp_standard_help_func, NULL, "_Cancel",
                             GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    table = gtk_table_new(3, 3, FALSE);
    gtk_container_set_border_width(GTK_CONTAINER(table), 12);
    gtk_table_set_row_spacings(GTK_TABLE(table), 6);
    gtk_box_pack_start(GTK_BOX(gtk_dialog_get_content_area(GTK_DIALOG(dialog))), table, TRUE, TRUE, 0);
    if (subject) {
        combo = gimp_int_combo_box_new("Faces (the face in the selection, else the largest)", EG_SUBJECT_FACES,
                                       "The whole layer (models of other subjects)", EG_SUBJECT_LAYER, NULL);
        gimp_int_combo_box_set_active(GIMP_INT_COMBO_BOX(combo), *subject);
        gimp_table_attach_aligned(GTK_TABLE(table), 0, row++, "_Edit:", 0.0, 0.5, combo, 1, TRUE);
    }
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
    if (accepted && combo)
        gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(combo), subject);
    gtk_widget_destroy(dialog);
    return accepted;
}

/* Fills the user's choices into `args` for interactive and repeat runs;
 * false when the user cancelled. */
static gboolean interactive_args(const gchar *name, GimpRunMode mode, GimpParam *args)
{
    last_values last = { 0, 4.0, EG_SUBJECT_FACES };
    gboolean adjust = strcmp(name, EG_ADJUST) == 0;
    gimp_get_data(name, &last);
    if (mode == GIMP_RUN_INTERACTIVE &&
        !ask(adjust ? "Editone: Adjust Strength" : "Editone: Set Example", adjust ? NULL : &last.subject,
             adjust ? NULL : &last.direction, &last.strength))
        return FALSE;
    gimp_set_data(name, &last, sizeof last);
    if (adjust) {
        args[3].data.d_float = last.strength;
    } else if (strcmp(name, EG_SET_EXAMPLE) == 0) {
        args[3].data.d_int32 = 0;
        args[4].data.d_int32 = last.direction;
        args[5].data.d_float = last.strength;
        args[6].data.d_int32 = 0;
        args[7].data.d_int32 = 0;
        args[8].data.d_int32 = last.subject;
    } else {
        args[3].data.d_int32 = 0;
        args[4].data.d_int32 = eg_default_tune_steps();
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
    static GimpParamDef set_args[9], apply_args[5], adjust_args[4];
    memcpy(set_args, common, sizeof common);
    set_args[3] = (GimpParamDef){ GIMP_PDB_INT32, "edit-kind", "0: a direction and strength, 1: drag the active path's anchor pairs" };
    set_args[4] = (GimpParamDef){ GIMP_PDB_INT32, "direction", "Unsupervised direction index (0 = strongest)" };
    set_args[5] = (GimpParamDef){ GIMP_PDB_FLOAT, "strength", "Strength along the direction" };
    set_args[6] = (GimpParamDef){ GIMP_PDB_INT32, "optimize-steps", "Optimisation steps (0 = the fast preset)" };
    set_args[7] = (GimpParamDef){ GIMP_PDB_INT32, "invert-steps", "Projection steps per layer (0 = default)" };
    set_args[8] = (GimpParamDef){ GIMP_PDB_INT32, "subject",
                                  "0: faces (the face whose box centre is in the selection, else the layer's largest; "
                                  "Apply edits every face), 1: the whole layer (models of other subjects)" };
    memcpy(apply_args, common, sizeof common);
    apply_args[3] = set_args[7];
    apply_args[4] = (GimpParamDef){ GIMP_PDB_INT32, "tune-steps",
                                    "Tune the generator to the layers' faces in this many steps (0: no tuning; "
                                    "interactive runs use the library's default); cached in the profile" };
    memcpy(adjust_args, common, sizeof common);
    adjust_args[3] = (GimpParamDef){ GIMP_PDB_FLOAT, "strength", "The example's strength; every result follows" };

    gimp_install_procedure(EG_SET_EXAMPLE, "Make a face of the active layer the example of an editone edit",
                           "The face whose box centre lies in the selection (the largest such), or the layer's "
                           "largest face when nothing is selected, is projected into the model's latent space, "
                           "edited along a direction (or by dragging the active path's anchors in pairs: handle, "
                           "target), and the edit is optimised and saved with the image. With subject 1 the whole "
                           "layer is the example (models of other subjects). A layer with no face is an error and "
                           "changes nothing.",
                           "editone", "editone", "2026", "Set _Example...", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(set_args), 0, set_args, NULL);
    gimp_install_procedure(EG_APPLY, "Apply the editone edit to the selected layers",
                           "Adds one edited copy above every layer (the linked layers when some are linked) with "
                           "every face edited, each with its own strength so all end in the same state; outside "
                           "the faces the copy is the layer. Layers with no face are left alone (a message names "
                           "them). One undo step. Whole-layer edits (Set Example's subject 1) edit whole layers. "
                           "With tune-steps > 0 one copy of the generator is first tuned to all the faces (pivotal "
                           "tuning) and they render through it; it is kept in the profile for the same layers.",
                           "editone", "editone", "2026", "_Apply to Selection", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(apply_args), 0, apply_args, NULL);
    gimp_install_procedure(EG_ADJUST, "Change the example's strength; every result follows",
                           "Sets the edit's strength and re-renders every editone result layer.", "editone",
                           "editone", "2026", "Adjust _Strength...", "RGB*", GIMP_PLUGIN,
                           G_N_ELEMENTS(adjust_args), 0, adjust_args, NULL);
    gimp_plugin_menu_register(EG_SET_EXAMPLE, "<Image>/Filters/Editone");
    gimp_plugin_menu_register(EG_APPLY, "<Image>/Filters/Editone");
    gimp_plugin_menu_register(EG_ADJUST, "<Image>/Filters/Editone");
}

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals)
{
    static GimpParam values[2];
    GimpParam args[9];
    gint32 image = param[1].data.d_image, layer = param[2].data.d_drawable;
    GimpRunMode mode = (GimpRunMode)param[0].data.d_int32;
    gboolean good;
    eg_begin();
    memset(args, 0, sizeof args);
    memcpy(args, param, (gsize)MIN(nparams, 9) * sizeof *param);
    param = args;
    values[0].type = GIMP_PDB_STATUS;
    *nreturn_vals = 1;
    *return_vals = values;
    if (mode != GIMP_RUN_NONINTERACTIVE && !interactive_args(name, mode, args)) {
        values[0].data.d_status = GIMP_PDB_CANCEL;
        return;
    }
    if (strcmp(name, EG_SET_EXAMPLE) == 0 && nparams == 9) {
        eg_example_args ex = { param[3].data.d_int32, param[4].data.d_int32, param[5].data.d_float,
                               param[6].data.d_int32, param[7].data.d_int32, param[8].data.d_int32 };
        good = eg_set_example(image, layer, &ex);
    } else if ((strcmp(name, EG_APPLY) == 0 && nparams == 5) || (strcmp(name, EG_ADJUST) == 0 && nparams == 4)) {
        gboolean adjust = strcmp(name, EG_ADJUST) == 0;
        GArray *layers = target_layers(image);
        good = adjust ? eg_apply(image, layers, 0, 0, &param[3].data.d_float)
                      : eg_apply(image, layers, param[3].data.d_int32, param[4].data.d_int32, NULL);
        g_array_free(layers, TRUE);
    } else {
        good = eg_fail("editone: wrong procedure or number of arguments");
    }
    if (good && mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush();
    if (!good && eg_failure() && mode == GIMP_RUN_INTERACTIVE)
        g_message("%s", eg_failure());
    values[0].data.d_status = good ? GIMP_PDB_SUCCESS : GIMP_PDB_EXECUTION_ERROR;
    if (!good && eg_failure()) {
        values[1].type = GIMP_PDB_STRING;
        values[1].data.d_string = (gchar *)eg_failure();
        *nreturn_vals = 2;
    }
}

const GimpPlugInInfo PLUG_IN_INFO = { NULL, NULL, query, run };

MAIN()

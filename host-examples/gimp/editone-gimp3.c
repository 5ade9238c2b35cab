/*
 * editone for GIMP 3: edit one face, apply the edit to every face of every
 * selected layer.
 *
 * Filters > Editone > Set Example        a face of the selected layer is
 *                                         the example: the one whose box
 *                                         centre lies in the selection (the
 *                                         largest such), else the layer's
 *                                         largest. The edit is a direction
 *                                         and strength, or drag points from
 *                                         the selected path (anchors in
 *                                         pairs: handle, target)
 * Filters > Editone > Apply to Selection  one new layer above every selected
 *                                         layer with all its faces edited;
 *                                         a layer with no face is left alone
 *                                         and named in a message
 * Filters > Editone > Adjust Strength     the example's strength; every
 *                                         result of the image follows
 *
 * GIMP 3 generates the dialogs from the procedures' typed arguments and
 * remembers their last values. Everything else (the calls into editone,
 * the caches, the preset and its parasites, the result layers, progress
 * and undo) is editone-shared.c, compiled into the GIMP 2.10 plug-in too.
 */
#include "editone-shared.h"

#include <libgimp/gimpui.h>

#include <string.h>

#define EDITONE_TYPE_PLUG_IN (editone_plug_in_get_type())
G_DECLARE_FINAL_TYPE(EditonePlugIn, editone_plug_in, EDITONE, PLUG_IN, GimpPlugIn)

/** The plug-in: GIMP 3 asks it for its procedures. */
struct _EditonePlugIn {
    GimpPlugIn parent_instance;
};

G_DEFINE_TYPE(EditonePlugIn, editone_plug_in, GIMP_TYPE_PLUG_IN)

/* The selected drawables as layers, each checked (a picture layer of at
 * least 12 pixels a side); false with a message naming the first that is
 * not. */
static gboolean selected_layers(GimpDrawable **drawables, GArray **layers)
{
    *layers = g_array_new(FALSE, FALSE, sizeof(eg_layer));
    for (gsize i = 0; drawables && drawables[i]; i++) {
        eg_layer layer = (eg_layer)drawables[i]; /* eg_check_layer checks it is one */
        if (!eg_check_layer(layer))
            return FALSE;
        if (eg_is_result(layer))
            return eg_fail("editone: '%s' is an editone result: select the layers it was made from",
                           gimp_item_get_name(GIMP_ITEM(layer)));
        g_array_append_val(*layers, layer);
    }
    return (*layers)->len > 0 || eg_fail("editone: select the layers to edit in the Layers dialog");
}

/* Set Example: the one selected layer, with the dialog's choices. */
static gboolean run_set_example(GimpImage *image, GimpDrawable **drawables, GimpProcedureConfig *config)
{
    eg_example_args args;
    if (!drawables || !drawables[0] || drawables[1])
        return eg_fail("editone: Set Example takes one layer: select only the layer with the example face");
    g_object_get(config, "direction", &args.direction, "strength", &args.strength, "optimize-steps",
                 &args.optimize_steps, "invert-steps", &args.invert_steps, NULL);
    args.kind = gimp_procedure_config_get_choice_id(config, "edit-kind");
    args.subject = gimp_procedure_config_get_choice_id(config, "subject");
    return eg_set_example(image, (eg_layer)drawables[0], &args); /* it checks the layer */
}

/* Apply to Selection on the selected layers, or Adjust Strength on every
 * result of the image. */
static gboolean run_apply(GimpImage *image, GimpDrawable **drawables, GimpProcedureConfig *config, gboolean adjust)
{
    GArray *layers = NULL;
    gboolean good;
    if (adjust) {
        gdouble strength;
        g_object_get(config, "strength", &strength, NULL);
        layers = eg_image_layers(image);
        good = eg_apply(image, layers, 0, 0, &strength);
    } else {
        gint steps, tune_steps;
        g_object_get(config, "invert-steps", &steps, "tune-steps", &tune_steps, NULL);
        good = selected_layers(drawables, &layers) && eg_apply(image, layers, steps, tune_steps, NULL);
    }
    g_array_free(layers, TRUE);
    return good;
}

/* The dialog GIMP generates from the procedure's arguments; false when
 * the user cancelled. */
static gboolean ask(GimpProcedure *procedure, GimpProcedureConfig *config, const char *title)
{
    gimp_ui_init("editone");
    GtkWidget *dialog = gimp_procedure_dialog_new(procedure, config, title);
    gimp_procedure_dialog_fill(GIMP_PROCEDURE_DIALOG(dialog), NULL);
    gboolean accepted = gimp_procedure_dialog_run(GIMP_PROCEDURE_DIALOG(dialog));
    gtk_widget_destroy(dialog);
    return accepted;
}

static GimpValueArray *run(GimpProcedure *procedure, GimpRunMode mode, GimpImage *image, GimpDrawable **drawables,
                           GimpProcedureConfig *config, gpointer data)
{
    const char *name = gimp_procedure_get_name(procedure);
    gboolean set = strcmp(name, EG_SET_EXAMPLE) == 0, adjust = strcmp(name, EG_ADJUST) == 0, good;
    (void)data;
    eg_begin();
    if (mode == GIMP_RUN_INTERACTIVE &&
        !ask(procedure, config,
             set ? "Editone: Set Example" : adjust ? "Editone: Adjust Strength" : "Editone: Apply to Selection"))
        return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
    good = set ? run_set_example(image, drawables, config) : run_apply(image, drawables, config, adjust);
    if (good && mode != GIMP_RUN_NONINTERACTIVE)
        gimp_displays_flush();
    if (!good) /* GIMP shows the message (interactive) or returns it to the caller */
        return gimp_procedure_new_return_values(
            procedure, GIMP_PDB_EXECUTION_ERROR,
            g_error_new_literal(GIMP_PLUG_IN_ERROR, 0, eg_failure() ? eg_failure() : "editone: failed"));
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}

/* Set Example's arguments: the subject, the kind of edit and its settings. */
static void add_example_arguments(GimpProcedure *p)
{
    gimp_procedure_add_choice_argument(
        p, "subject", "_Edit", "What the example is: a face of the layer or the whole layer",
        gimp_choice_new_with_values("faces", EG_SUBJECT_FACES, "Faces (the face in the selection, else the largest)",
                                    "Apply edits every face of each layer", "layer", EG_SUBJECT_LAYER,
                                    "The whole layer (models of other subjects)", "For models of cars, churches...",
                                    NULL),
        "faces", G_PARAM_READWRITE);
    gimp_procedure_add_choice_argument(
        p, "edit-kind", "_Kind", "How the example is edited",
        gimp_choice_new_with_values("direction", 0, "Along a direction", NULL, "drag", 1,
                                    "Drag the selected path's anchors in pairs (handle, target)", NULL, NULL),
        "direction", G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "direction", "_Direction (0 = strongest)",
                                    "Unsupervised direction index (0 = strongest)", 0, 99, 0, G_PARAM_READWRITE);
    gimp_procedure_add_double_argument(p, "strength", "_Strength", "Strength along the direction", -20.0, 20.0, 4.0,
                                       G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "optimize-steps", "_Optimisation steps", "Optimisation steps (0 = the fast preset)",
                                    0, 100000, 0, G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "invert-steps", "_Projection steps",
                                    "Projection steps per layer (0 = the default)", 0, 100000, 0, G_PARAM_READWRITE);
}

static GList *query_procedures(GimpPlugIn *plug_in)
{
    (void)plug_in;
    return g_list_append(g_list_append(g_list_append(NULL, g_strdup(EG_SET_EXAMPLE)), g_strdup(EG_APPLY)),
                         g_strdup(EG_ADJUST));
}

static GimpProcedure *create_procedure(GimpPlugIn *plug_in, const gchar *name)
{
    GimpProcedure *p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, run, NULL, NULL);
    gimp_procedure_set_image_types(p, "RGB*");
    gimp_procedure_set_attribution(p, "editone", "editone", "2026");
    if (strcmp(name, EG_SET_EXAMPLE) == 0) {
        gimp_procedure_set_menu_label(p, "Set _Example...");
        gimp_procedure_set_documentation(
            p, "Make a face of the selected layer the example of an editone edit",
            "The face whose box centre lies in the selection (the largest such), or the layer's largest face when "
            "nothing is selected, is projected into the model's latent space, edited along a direction (or by "
            "dragging the selected path's anchors in pairs: handle, target), and the edit is optimised and saved "
            "with the image. With the subject \"layer\" the whole layer is the example (models of other subjects). "
            "A layer with no face is an error and changes nothing.",
            name);
        gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
        add_example_arguments(p);
    } else if (strcmp(name, EG_APPLY) == 0) {
        gimp_procedure_set_menu_label(p, "_Apply to Selection...");
        gimp_procedure_set_documentation(
            p, "Apply the editone edit to the selected layers",
            "Adds one edited copy above every selected layer with every face edited, each with its own strength "
            "so all end in the same state; outside the faces the copy is the layer. Layers with no face are left "
            "alone (a message names them). One undo step. With tuning steps above 0, one copy of the generator is "
            "first tuned to all the faces (pivotal tuning) and they render through it, faithful to the photos; the "
            "tuned copy is kept in the profile, so Adjust Strength and applying again to the same layers reuse it.",
            name);
        gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE | GIMP_PROCEDURE_SENSITIVE_DRAWABLES);
        gimp_procedure_add_int_argument(p, "invert-steps", "_Projection steps",
                                        "Projection steps per layer (0 = the default)", 0, 100000, 0, G_PARAM_READWRITE);
        gimp_procedure_add_int_argument(p, "tune-steps", "_Tuning steps",
                                        "Steps tuning the generator to the layers' faces (0 = no tuning)", 0, 100000,
                                        eg_default_tune_steps(), G_PARAM_READWRITE);
    } else {
        gimp_procedure_set_menu_label(p, "Adjust _Strength...");
        gimp_procedure_set_documentation(p, "Change the example's strength; every result follows",
                                         "Sets the edit's strength and re-renders every editone result layer of "
                                         "the image. One undo step.",
                                         name);
        gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE | GIMP_PROCEDURE_SENSITIVE_DRAWABLES |
                                                   GIMP_PROCEDURE_SENSITIVE_NO_DRAWABLES);
        gimp_procedure_add_double_argument(p, "strength", "_Strength", "The example's strength; every result follows",
                                           -20.0, 20.0, 4.0, G_PARAM_READWRITE);
    }
    gimp_procedure_add_menu_path(p, "<Image>/Filters/Editone"); /* after the menu label, which it needs */
    return p;
}

static void editone_plug_in_class_init(EditonePlugInClass *klass)
{
    GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS(klass);
    plug_in_class->query_procedures = query_procedures;
    plug_in_class->create_procedure = create_procedure;
}

static void editone_plug_in_init(EditonePlugIn *self)
{
    (void)self;
}

GIMP_MAIN(EDITONE_TYPE_PLUG_IN)

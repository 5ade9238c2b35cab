/*
 * What the GIMP 2.10 and GIMP 3 plug-ins share (editone-shared.c, compiled
 * into both): every call into editone, the faces and latent caches in
 * layer parasites, the preset in the profile and in image parasites, the
 * result layers. Each plug-in keeps only its registration, its dialogs and
 * which layers a command works on, so the two cannot drift apart.
 *
 * GIMP 2.10 names images and items by integer IDs, GIMP 3 by objects:
 * eg_image and eg_layer are whichever the GIMP compiled against uses.
 */
#ifndef EDITONE_SHARED_H
#define EDITONE_SHARED_H

#include <libgimp/gimp.h>

#if GIMP_MAJOR_VERSION >= 3
/** An image as this GIMP's plug-in API names it. */
typedef GimpImage *eg_image;
/** A layer as this GIMP's plug-in API names it. */
typedef GimpLayer *eg_layer;
#else
/** An image as this GIMP's plug-in API names it. */
typedef gint32 eg_image;
/** A layer as this GIMP's plug-in API names it. */
typedef gint32 eg_layer;
#endif

/** Procedure names, the same in both GIMPs. */
#define EG_SET_EXAMPLE "plug-in-editone-set-example"
/** Apply to Selection's procedure name. */
#define EG_APPLY "plug-in-editone-apply-to-selection"
/** Adjust Strength's procedure name. */
#define EG_ADJUST "plug-in-editone-adjust-strength"

/** What an edit is made of and applied to (Set Example's subject). */
enum { EG_SUBJECT_FACES = 0, EG_SUBJECT_LAYER = 1 };

/** How Set Example makes the edit. */
typedef struct {
    gint kind;          /**< 0: a direction and strength, 1: drag the active path's anchor pairs */
    gint direction;     /**< unsupervised direction index, 0 = strongest */
    gdouble strength;   /**< strength along the direction */
    gint optimize_steps; /**< optimisation steps, 0 = the fast preset */
    gint invert_steps;  /**< projection steps, 0 = the library's default */
    gint subject;       /**< EG_SUBJECT_FACES or EG_SUBJECT_LAYER */
} eg_example_args;

/** The message of the last failure, or NULL; reset by eg_begin(). */
const char *eg_failure(void);

/** Starts a command: forgets the last failure and readies GEGL. */
void eg_begin(void);

/** Records a failure message (printf format); returns FALSE. */
gboolean eg_fail(const char *format, ...) G_GNUC_PRINTF(1, 2);

/** Checks that `layer` can be edited: a plain layer (not a group, not a
 * text layer) of at least 12 pixels a side; else a message naming it. */
gboolean eg_check_layer(eg_layer layer);

/** Makes the example from `layer` of `image` and saves the edit (one undo
 * step; the image is untouched on failure). */
gboolean eg_set_example(eg_image image, eg_layer layer, const eg_example_args *args);

/** Apply to Selection (`strength` NULL) on `layers`, or Adjust Strength
 * (re-renders the results of those of `layers` that have one). Result
 * layers among `layers` are left out. One undo step. With `tune_steps` > 0
 * Apply tunes one generator to all the layers' faces and renders through
 * it (the tuned model is cached in the profile, keyed by the layers'
 * pixels); Adjust ignores `tune_steps` and tunes as the image's last Apply
 * did. */
gboolean eg_apply(eg_image image, GArray *layers, gint invert_steps, gint tune_steps, const gdouble *strength);

/** The library's default number of tuning steps (the plug-ins' default). */
gint eg_default_tune_steps(void);

/** The image's top-level layers, top first (a GArray of eg_layer). */
GArray *eg_image_layers(eg_image image);

/** Whether `layer` is a result layer made by the plug-in. */
gboolean eg_is_result(eg_layer layer);

#endif

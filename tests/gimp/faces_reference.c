/*
 * What the GIMP plug-in's result layer must be, straight from the C API:
 * every face of PHOTO found, inverted in one run with STEPS steps, edited
 * with PRESET and composited back into the photo (eo_render_photo), written
 * to OUT.png. The plug-in's test compares its result layers with this.
 * Usage: faces_reference PRESET STEPS PHOTO OUT.png
 */
#include <editone.h>

#include <stdio.h>
#include <stdlib.h>

static int check(eo_status st, const char *doing)
{
    if (st != EO_OK) {
        fprintf(stderr, "faces_reference: %s: %s\n", doing, eo_last_error());
        exit(1);
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: faces_reference PRESET STEPS PHOTO OUT.png\n");
        return 2;
    }
    uint32_t width = 0, height = 0;
    size_t needed = 0, n = 0;
    check(eo_image_read(argv[3], EO_PIXEL_RGBA8, NULL, 0, &width, &height, &needed), "reading the photo's size");
    uint8_t *pixels = malloc(needed), *out = malloc(needed);
    if (!pixels || !out)
        return 1;
    check(eo_image_read(argv[3], EO_PIXEL_RGBA8, pixels, needed, &width, &height, &needed), "reading the photo");
    eo_image_view photo = { pixels, width, height, width * 4, EO_PIXEL_RGBA8 };
    eo_image_view result = { out, width, height, width * 4, EO_PIXEL_RGBA8 };

    eo_model m;
    eo_detector det;
    eo_edit e;
    check(eo_model_load_default(&m), "loading the model");
    check(eo_edit_load(m, argv[1], &e), "loading the preset");
    check(eo_detector_load(NULL, &det), "loading the detector");
    check(eo_faces_detect(det, &photo, NULL, NULL, 0, &n), "counting faces");
    if (n == 0) {
        fprintf(stderr, "faces_reference: no face in %s\n", argv[3]);
        return 1;
    }
    eo_face *faces = calloc(n, sizeof *faces);
    eo_latent *latents = calloc(n, sizeof *latents), *edited = calloc(n, sizeof *edited);
    if (!faces || !latents || !edited)
        return 1;
    check(eo_faces_detect(det, &photo, NULL, faces, n, &n), "finding faces");
    eo_invert_options o;
    eo_invert_options_init(&o);
    o.steps = (uint32_t)strtoul(argv[2], NULL, 10);
    check(eo_faces_invert(m, &photo, faces, n, EO_ALIGN_MODEL, &o, NULL, NULL, latents), "inverting the faces");
    check(eo_edit_apply_batch(e, latents, n, edited, NULL), "applying the preset");
    check(eo_render_photo(edited, n, EO_RENDER_AUTO, &result), "rendering the photo");
    check(eo_image_write_ex(&result, argv[4], EO_WRITE_REPLACE), "writing the result");
    printf("%zu faces\n", n);

    for (size_t k = 0; k < n; k++) {
        eo_latent_release(edited[k]);
        eo_latent_release(latents[k]);
    }
    free(edited);
    free(latents);
    free(faces);
    free(out);
    free(pixels);
    eo_detector_release(det);
    eo_edit_release(e);
    eo_model_release(m);
    return 0;
}

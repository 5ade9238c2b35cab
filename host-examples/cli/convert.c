/*
 * editone convert: any model the library loads (an NVlabs StyleGAN2 .pkl, a
 * rosinality .pt, the native format) into one native .safetensors file,
 * which loads fast and keeps the original's fingerprint for presets.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char CONVERT_USAGE[] =
    "usage: editone [global options] convert [--align template|ffhq|none] [--overwrite]\n"
    "           IN OUT.safetensors\n"
    "\n"
    "Converts a model to editone's native format (float32 safetensors with the\n"
    "config in its metadata). IN may be:\n"
    "  - an NVlabs StyleGAN2 / StyleGAN2-ADA network pickle (.pkl): G_ema is read,\n"
    "    with its whole config, from the pickled networks; nothing in the file\n"
    "    is executed, and a file naming anything else is refused\n"
    "  - a rosinality/stylegan2-pytorch checkpoint (.pt): g_ema and latent_avg,\n"
    "    renamed to the NVlabs layout; images keep rosinality's numerics\n"
    "  - a native model file or folder\n"
    "The model is built on the CPU first; nothing is written if it fails. OUT\n"
    "must not be IN; an existing OUT is replaced only with --overwrite.\n"
    "Presets made with IN apply to OUT.\n"
    "\n"
    "  --align A      record how the model's training faces were cropped, which a\n"
    "                 network pickle cannot say: template (five landmarks fitted\n"
    "                 to a face template), ffhq (NVlabs' FFHQ crop: StyleGAN2 face\n"
    "                 models) or none; 'editone invert --faces' aligns faces so by\n"
    "                 default. Without it OUT keeps IN's ('editone info' shows it)\n"
    "  --overwrite    replace an existing OUT (never IN)\n";

/* OUT is never IN (however spelled), and exists only with --overwrite. */
static int check_convert_output(const char *in, const char *out)
{
    output_plan p = { 0 };
    int rc = plan_input(&p, in);
    if (rc == EC_OK)
        rc = plan_output(&p, out, "the conversion of '%s'", in);
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

int cmd_convert(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "convert", *in, *out, *align_text = NULL;
    eo_model m = { 0 };
    eo_model_desc d;
    eo_status st;
    eo_align align = EO_ALIGN_MODEL;
    option opts[] = { { "--overwrite", NULL, &g_overwrite }, { "--align", &align_text, NULL } };
    char **paths = xcalloc((size_t)argc + 1, sizeof *paths);
    int rc = paths ? EC_OK : out_of_memory(), n = 0;

    if (rc == EC_OK)
        rc = parse_with_operands(cmd, argc, argv, opts, COUNT_OF(opts), paths, &n);
    in = paths ? paths[0] : NULL;
    out = paths ? paths[1] : NULL;
    free(paths);
    if (rc == EC_HELP)
        return show_help(CONVERT_USAGE);
    if (rc != EC_OK)
        return rc;
    if (n != 2)
        return usage_error(cmd, "give an input model and an output .safetensors path");
    if (align_text && parse_align(cmd, "--align", align_text, &align) != EC_OK)
        return EC_USAGE;
    rc = check_convert_output(in, out);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc != EC_OK)
        return rc;
    st = align_text ? eo_model_convert_align(in, out, align, write_flags()) : eo_model_convert_ex(in, out, write_flags());
    if (st != EO_OK)
        return st == EO_ERR_EXISTS ? exists_error(out) : lib_error(st, "converting '%s'", in);
    rc = open_model(cmd, out, &m, &d);
    if (rc == EC_OK && (st = eo_model_alignment(m, &align)) != EO_OK)
        rc = lib_error(st, "reading the face alignment of '%s'", out);
    if (rc == EC_OK)
        printf("%s: %s %ux%u, %u W+ rows of %u, faces aligned: %s, written to %s\n", in, d.architecture,
               d.resolution, d.resolution, d.num_ws, d.w_dim, align_name(align), out);
    release_model(&m);
    return rc;
}

/*
 * editone convert: any model the library loads (an NVlabs StyleGAN2 .pkl, a
 * rosinality .pt, the native format) into one native .safetensors file,
 * which loads fast and keeps the original's fingerprint for presets.
 */
#include "cli.h"

#include <string.h>

static const char CONVERT_USAGE[] =
    "usage: editone [global options] convert IN OUT.safetensors\n"
    "\n"
    "Converts a model to editone's native format (float32 safetensors with the\n"
    "config in its metadata). IN may be:\n"
    "  - an NVlabs StyleGAN2 / StyleGAN2-ADA network pickle (.pkl): G_ema is read,\n"
    "    with its whole config, from the pickled networks; nothing in the file\n"
    "    is executed, and a file naming anything else is refused\n"
    "  - a rosinality/stylegan2-pytorch checkpoint (.pt): g_ema and latent_avg,\n"
    "    renamed to the NVlabs layout; images keep rosinality's numerics\n"
    "  - a native model file or folder\n"
    "The model is built on the CPU first; nothing is written if it fails.\n"
    "Presets made with IN apply to OUT.\n";

int cmd_convert(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "convert", *in, *out;
    eo_model m = { 0 };
    eo_model_desc d;
    eo_status st;
    int rc, first = 0;

    rc = parse_options(cmd, argc, argv, NULL, 0, &first);
    if (rc == EC_HELP)
        return show_help(CONVERT_USAGE);
    if (rc != EC_OK)
        return rc;
    if (argc - first != 2)
        return usage_error(cmd, "give an input model and an output .safetensors path");
    in = argv[first];
    out = argv[first + 1];
    if (strcmp(in, out) == 0)
        return usage_error(cmd, "the output must not overwrite the input");
    rc = start_engine(g);
    if (rc != EC_OK)
        return rc;
    st = eo_model_convert(in, out);
    if (st != EO_OK)
        return lib_error(st, "converting '%s'", in);
    rc = open_model(cmd, out, &m, &d);
    if (rc == EC_OK)
        printf("%s: %s %ux%u, %u W+ rows of %u, written to %s\n", in, d.architecture, d.resolution,
               d.resolution, d.num_ws, d.w_dim, out);
    release_model(&m);
    return rc;
}

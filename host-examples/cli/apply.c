/*
 * editone apply: a preset transferred to many images.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char APPLY_USAGE[] =
    "usage: editone [global options] apply [--model PATH] --preset PRESET.json\n"
    "           (--seeds LIST [--psi F] [--class K] | --latents-f32 FILE --count N\n"
    "            | --inverted DIR)\n"
    "           [--strength A] [--baseline naive|unscaled]\n"
    "           [--out-dir DIR [--size S] [--format png|jpg]]\n"
    "           [--alphas FILE.json] [--json] [--out-latents-f32 FILE]\n"
    "\n"
    "Applies a preset made by 'editone edit' to many images: each image i moves\n"
    "along the preset's direction by its own strength alpha_i.\n"
    "\n"
    "  --model PATH             the model the preset was made for (default: the\n"
    "                           built-in face model)\n"
    "  --preset PRESET.json     the preset\n"
    "  --seeds LIST             target seeds such as 3-6; images are seed0003.png, ...\n"
    "  --psi F, --class K       as for 'render'\n"
    "  --latents-f32 FILE       N raw W+ latents (num_ws x w_dim float32 LE each) ...\n"
    "  --count N                ... their number; images are latent0000.png, ...\n"
    "  --inverted DIR           the photos 'editone invert' projected into DIR; the\n"
    "                           edited photos keep their size and detail (residual\n"
    "                           rendering) and are named NAME.png\n"
    "  --strength A             the example's own strength (default: the preset's);\n"
    "                           every alpha_i moves by the same amount\n"
    "  --baseline naive|unscaled  render a comparison baseline instead of the method:\n"
    "                           naive = the example's offset added to every image,\n"
    "                           unscaled = the optimised direction, no per-image strength\n"
    "  --out-dir DIR            write the edited images to DIR (created if missing)\n"
    "  --size S                 resample images to S x S pixels\n"
    "  --format png|jpg         image format (default png)\n"
    "  --alphas FILE.json       write [{\"seed\"|\"index\"|\"photo\": ..., \"alpha\": ...}, ...]\n"
    "  --json                   print that list on stdout\n"
    "  --out-latents-f32 FILE   write the edited W+ latents, float32 LE, in input order\n"
    "\n"
    "At least one of --out-dir, --alphas, --json, --out-latents-f32 is needed.\n";

typedef struct {
    const char *model, *preset, *strength, *baseline, *out_dir, *size, *format, *alphas, *out_latents;
    int json;
    target_text tx;
} apply_text;

typedef struct {
    target_spec t;
    float strength;
    int has_baseline;
    uint32_t baseline; /* EO_BASELINE_* */
    uint32_t size;
    const char *ext;
} apply_values;

static int parse_apply_values(const char *cmd, const apply_text *x, apply_values *v)
{
    static const char *const baselines[] = { "naive", "unscaled" };
    memset(v, 0, sizeof *v);
    v->ext = "png";
    if (!x->preset)
        return usage_error(cmd, "no --preset PRESET.json given");
    if (!x->out_dir && !x->alphas && !x->json && !x->out_latents)
        return usage_error(cmd, "nothing to write: give --out-dir, --alphas, --json or --out-latents-f32");
    if (!x->out_dir && (x->size || x->format))
        return usage_error(cmd, "--size and --format apply to --out-dir only");
    if (x->baseline && (x->alphas || x->json))
        return usage_error(cmd, "--alphas and --json report the method's strengths; not with --baseline");
    if (x->strength && opt_float(cmd, "--strength", x->strength, -MAX_FLOAT, MAX_FLOAT, &v->strength))
        return EC_USAGE;
    if (x->baseline) {
        uint32_t k = 0;
        if (parse_choice(cmd, "--baseline", x->baseline, baselines, 2, &k))
            return EC_USAGE;
        v->baseline = k == 0 ? EO_BASELINE_NAIVE : EO_BASELINE_UNSCALED;
        v->has_baseline = 1;
    }
    if (x->size && opt_u32(cmd, "--size", x->size, 1, MAX_SIDE, &v->size))
        return EC_USAGE;
    if (parse_format(cmd, x->format, &v->ext))
        return EC_USAGE;
    return parse_targets(cmd, &x->tx, &v->t);
}

/* Edited latents of the baseline, one call per target. */
static int apply_baseline(eo_edit e, const eo_latent *ls, size_t n, uint32_t baseline, eo_latent *edited)
{
    for (size_t i = 0; i < n; i++) {
        eo_status st = eo_edit_apply_baseline(e, ls[i], baseline, &edited[i]);
        if (st != EO_OK)
            return lib_error(st, "applying the baseline to image %zu", i);
    }
    return EC_OK;
}

static void write_alphas_json(FILE *f, const target_spec *t, const float *alphas)
{
    fputc('[', f);
    for (size_t i = 0; i < t->n; i++) {
        fputs(i ? ",\n " : "", f);
        if (t->seeds) {
            fprintf(f, "{\"seed\": %" PRIu64 ", \"alpha\": ", t->seeds[i]);
        } else if (t->names) {
            fputs("{\"photo\": ", f);
            json_string(f, t->names[i]);
            fputs(", \"alpha\": ", f);
        } else
            fprintf(f, "{\"index\": %zu, \"alpha\": ", i);
        json_number(f, alphas[i]);
        fputc('}', f);
    }
    fputs("]\n", f);
}

static int write_alphas_file(const target_spec *t, const float *alphas, const char *path)
{
    FILE *f = open_output(path);
    if (!f)
        return EC_ERROR;
    write_alphas_json(f, t, alphas);
    return close_output(f, path, !ferror(f));
}

/* The outputs of apply: latents, alphas, then images (the slow part). */
static int write_apply_outputs(const apply_text *x, const apply_values *v, const eo_model_desc *d,
                               const eo_latent *edited, const float *alphas)
{
    int rc = EC_OK;
    if (x->out_latents)
        rc = write_latents_file(edited, v->t.n, d, x->out_latents);
    if (rc == EC_OK && x->alphas)
        rc = write_alphas_file(&v->t, alphas, x->alphas);
    if (rc == EC_OK && x->json)
        write_alphas_json(stdout, &v->t, alphas);
    if (rc == EC_OK && x->out_dir)
        rc = render_files(edited, &v->t, x->out_dir, v->ext, v->size);
    return rc;
}

static int apply_edit(eo_edit e, const apply_values *v, const eo_latent *ls, eo_latent *edited, float *alphas)
{
    eo_status st;
    if (v->has_baseline)
        return apply_baseline(e, ls, v->t.n, v->baseline, edited);
    st = eo_edit_apply_batch(e, ls, v->t.n, edited, alphas);
    if (st != EO_OK)
        return lib_error(st, "applying the edit to %zu images", v->t.n);
    return EC_OK;
}

static int run_apply(const engine_args *g, const apply_text *x, const apply_values *v)
{
    const char *cmd = "apply";
    eo_model m = { 0 };
    eo_model_desc d;
    eo_edit e = { 0 };
    eo_latent *ls = NULL, *edited = NULL;
    float *alphas = NULL;
    eo_status st;
    int rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, x->model, &m, &d);
    if (rc == EC_OK && (st = eo_edit_load(m, x->preset, &e)) != EO_OK)
        rc = lib_error(st, "loading preset '%s' for model '%s'", x->preset, x->model ? x->model : "(default model)");
    if (rc == EC_OK && x->strength && (st = eo_edit_set_strength(e, v->strength)) != EO_OK)
        rc = lib_error(st, "setting the strength to %g", v->strength);
    if (rc == EC_OK)
        rc = make_targets(cmd, m, &d, &v->t, &ls);
    if (rc == EC_OK) {
        edited = xcalloc(v->t.n, sizeof *edited);
        alphas = xcalloc(v->t.n, sizeof *alphas);
        if (!edited || !alphas)
            rc = out_of_memory();
    }
    if (rc == EC_OK)
        rc = apply_edit(e, v, ls, edited, alphas);
    if (rc == EC_OK)
        rc = write_apply_outputs(x, v, &d, edited, alphas);
    free_latents(edited, v->t.n);
    free_latents(ls, v->t.n);
    free(alphas);
    release_edit(&e);
    release_model(&m);
    return rc;
}

int cmd_apply(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "apply";
    apply_text x;
    apply_values v;
    memset(&x, 0, sizeof x);
    option opts[] = {
        { "--model", &x.model, NULL },           { "--preset", &x.preset, NULL },
        { "--seeds", &x.tx.seeds, NULL },        { "--latents-f32", &x.tx.latents, NULL },
        { "--inverted", &x.tx.inverted, NULL },
        { "--count", &x.tx.count, NULL },        { "--psi", &x.tx.psi, NULL },
        { "--class", &x.tx.class_index, NULL },  { "--strength", &x.strength, NULL },
        { "--baseline", &x.baseline, NULL },     { "--out-dir", &x.out_dir, NULL },
        { "--size", &x.size, NULL },             { "--format", &x.format, NULL },
        { "--alphas", &x.alphas, NULL },         { "--json", NULL, &x.json },
        { "--out-latents-f32", &x.out_latents, NULL },
    };
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        return show_help(APPLY_USAGE);
    if (rc != EC_OK)
        return rc;
    if (parse_apply_values(cmd, &x, &v) != EC_OK)
        return EC_USAGE;
    rc = run_apply(g, &x, &v);
    free_targets(&v.t);
    return rc;
}

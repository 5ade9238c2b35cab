/*
 * editone invert: photos into the model's latent space. For each PHOTO it
 * writes, in --out DIR, NAME-photo.png (the photo as read, so DIR is
 * complete for 'editone apply --inverted DIR'), NAME-reconstruction.png,
 * NAME.json (crop, PSNR) and, last, NAME.f32 (the W+ latent, float32 LE).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char INVERT_USAGE[] =
    "usage: editone [global options] invert [--model PATH] PHOTO... --out DIR\n"
    "           [--steps N] [--wplus] [--vgg16 FILE] [--seed S] [--json] [--overwrite]\n"
    "\n"
    "Projects photos (PNG or JPEG, any size: the centred square is used) into\n"
    "the model's latent space, so they can be edited with 'editone apply\n"
    "--inverted DIR', which writes the edited photos at their own size.\n"
    "\n"
    "  --model PATH   model file or folder (default: the built-in face model)\n"
    "  --out DIR      where to write NAME.f32, NAME.json, NAME-photo.png and\n"
    "                 NAME-reconstruction.png for each PHOTO\n"
    "  --steps N      optimisation steps (default: the model's; 1000 StyleGAN2, 600 DCGAN)\n"
    "  --wplus        optimise one latent row per layer (closer fit, less editable)\n"
    "  --vgg16 FILE   TorchScript VGG16 (the official projector's vgg16.pt) for a\n"
    "                 perceptual loss; default a pixel loss over three scales\n"
    "  --seed S       seed of the random draws (default 303)\n"
    "  --json         print one JSON object per photo\n"
    "  --overwrite    replace output files that exist (never a PHOTO)\n"
    "\n"
    "Nothing is written when two PHOTOs share a NAME (d1/a.png, d2/a.png), when\n"
    "an output would replace a PHOTO, or, without --overwrite, when an output\n"
    "exists. Each file is written under a hidden temporary name and renamed\n"
    "when whole; NAME.f32 comes last, so a stopped run leaves no latent\n"
    "without its photo.\n";

typedef struct {
    const char *model, *out, *steps, *vgg16, *seed;
    int wplus, json;
} invert_text;

/* "dir/name.jpg" -> "name". */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *start = slash ? slash + 1 : path;
    const char *dot = strrchr(start, '.');
    size_t len = dot && dot != start ? (size_t)(dot - start) : strlen(start);
    char *name = malloc(len + 1);
    if (name) {
        memcpy(name, start, len);
        name[len] = '\0';
    }
    return name;
}

/* The files invert writes for each photo, in the order it writes them. */
static const char *const OUTPUT_SUFFIXES[] = { "-photo.png", "-reconstruction.png", ".json", ".f32" };
enum { OUT_PHOTO, OUT_RECONSTRUCTION, OUT_JSON, OUT_LATENT, OUT_COUNT };

/* The summary of one photo: a line of NAME.json, and of stdout with --json. */
static void write_summary(FILE *f, const char *source, const uint32_t crop[4], float psnr, const char *latent)
{
    fputs("{\"photo\": ", f);
    json_string(f, source);
    fprintf(f, ", \"crop\": [%u, %u, %u, %u], \"psnr\": ", crop[0], crop[1], crop[2], crop[3]);
    json_number(f, psnr);
    fputs(", \"latent\": ", f);
    json_string(f, latent);
    fputs("}\n", f);
}

static int write_json_file(const char *path, const char *source, const uint32_t crop[4], float psnr, const char *latent)
{
    output_file out;
    int rc = open_output(path, &out);
    if (rc == EC_OK)
        write_summary(out.f, source, crop, psnr, latent);
    return close_output(&out, rc);
}

static int write_latent_file(eo_latent l, const eo_model_desc *d, const char *path)
{
    float *w = NULL;
    output_file out;
    int rc = read_latent(l, d, &w);
    if (rc == EC_OK && (rc = open_output(path, &out)) == EC_OK) {
        write_f32(out.f, w, latent_floats(d)); /* a failure sets the stream's error, which close_output reports */
        rc = close_output(&out, EC_OK);
    }
    free(w);
    return rc;
}

static int write_reconstruction(eo_latent l, const eo_model_desc *d, const char *path)
{
    uint8_t *pixels = xcalloc((size_t)d->resolution * d->resolution, 3);
    eo_image_view plain = { pixels, d->resolution, d->resolution, d->resolution * 3, EO_PIXEL_RGB8 };
    eo_status st;
    int rc = EC_OK;
    if (!pixels)
        rc = out_of_memory();
    else if ((st = eo_render_ex(l, EO_RENDER_PLAIN, &plain)) != EO_OK)
        rc = lib_error(st, "rendering the reconstruction");
    else if ((st = eo_image_write_ex(&plain, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(pixels);
    return rc;
}

/*
 * Writes the files of one photo (paths in OUTPUT_SUFFIXES order). NAME.f32
 * comes last: 'apply --inverted' lists those, so a run stopped between the
 * files never leaves a latent whose photo is missing.
 */
static int write_outputs(eo_latent l, const eo_model_desc *d, const eo_image_view *photo, char *const *paths,
                         const uint32_t crop[4], float psnr, const char *source, int json)
{
    eo_status st = eo_image_write_ex(photo, paths[OUT_PHOTO], write_flags());
    int rc = st == EO_OK ? EC_OK : write_error(st, paths[OUT_PHOTO]);
    if (rc == EC_OK)
        rc = write_reconstruction(l, d, paths[OUT_RECONSTRUCTION]);
    if (rc == EC_OK)
        rc = write_json_file(paths[OUT_JSON], source, crop, psnr, paths[OUT_LATENT]);
    if (rc == EC_OK)
        rc = write_latent_file(l, d, paths[OUT_LATENT]);
    if (rc == EC_OK && json)
        write_summary(stdout, source, crop, psnr, paths[OUT_LATENT]);
    else if (rc == EC_OK)
        printf("%s: PSNR %.2f dB (square %ux%u at %u,%u) -> %s\n", source, psnr, crop[2], crop[3], crop[0], crop[1],
               paths[OUT_LATENT]);
    return rc;
}

/* New strings OUT/NAME<suffix> for each of OUTPUT_SUFFIXES. */
static int output_paths(const char *out, const char *photo, char **paths)
{
    char *name = base_name(photo);
    int rc = name ? EC_OK : out_of_memory();
    for (int k = 0; k < OUT_COUNT; k++) {
        paths[k] = name ? named_path(out, name, OUTPUT_SUFFIXES[k]) : NULL;
        if (!paths[k])
            rc = out_of_memory();
    }
    free(name);
    return rc;
}

static void free_paths(char **paths)
{
    for (int k = 0; k < OUT_COUNT; k++)
        free(paths[k]);
}

static int invert_one(eo_model m, const eo_model_desc *d, const invert_text *x, const eo_invert_options *base,
                      const char *source)
{
    char *paths[OUT_COUNT];
    eo_image_view photo = { 0 };
    eo_invert_options opts = *base;
    eo_latent l = { 0 };
    uint32_t crop[4] = { 0, 0, 0, 0 };
    float psnr = 0;
    progress p;
    int rc = output_paths(x->out, source, paths);
    if (rc == EC_OK)
        rc = read_image(source, EO_PIXEL_RGB8, &photo);
    if (rc == EC_OK) {
        opts.crop = crop;
        opts.psnr = &psnr;
        progress_start(&p, "invert");
        eo_status st = eo_latent_invert(m, &photo, &opts, on_progress, &p, &l);
        progress_finish(&p);
        if (st != EO_OK)
            rc = lib_error(st, "inverting '%s'", source);
    }
    if (rc == EC_OK)
        rc = write_outputs(l, d, &photo, paths, crop, psnr, source, x->json);
    release_latent(&l);
    free(photo.data);
    free_paths(paths);
    return rc;
}

/*
 * Before anything is written (outputs.c): two photos with one name (d1/a.png,
 * d2/a.png) would write the same files; a photo may be an output of another
 * (a.png's copy is a-photo.png); without --overwrite no output may exist.
 */
static int check_invert_outputs(const invert_text *x, char **photos, int n)
{
    output_plan p = { 0 };
    char *paths[OUT_COUNT];
    int rc = plan_input(&p, x->model);
    if (rc == EC_OK)
        rc = plan_input(&p, x->vgg16);
    for (int i = 0; i < n && rc == EC_OK; i++)
        rc = plan_input(&p, photos[i]);
    for (int i = 0; i < n && rc == EC_OK; i++) {
        rc = output_paths(x->out, photos[i], paths);
        for (int k = 0; k < OUT_COUNT && rc == EC_OK; k++)
            rc = plan_output(&p, paths[k], "'%s'", photos[i]);
        free_paths(paths);
    }
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static int run_invert(const engine_args *g, const invert_text *x, char **photos, int n)
{
    eo_model m = { 0 };
    eo_model_desc d;
    eo_invert_options opts;
    eo_status st;
    int rc = check_invert_outputs(x, photos, n);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK && (st = eo_invert_options_init(&opts)) != EO_OK)
        rc = lib_error(st, "preparing invert options");
    if (rc == EC_OK && x->steps && opt_u32("invert", "--steps", x->steps, 1, 100000, &opts.steps))
        rc = EC_USAGE;
    if (rc == EC_OK && x->seed && opt_u64("invert", "--seed", x->seed, 0, UINT32_MAX, &opts.seed))
        rc = EC_USAGE;
    opts.wplus = (uint32_t)x->wplus;
    opts.vgg16_path = x->vgg16;
    if (rc == EC_OK)
        rc = open_model("invert", x->model, &m, &d);
    if (rc == EC_OK)
        rc = make_dirs(x->out);
    for (int i = 0; rc == EC_OK && i < n; i++)
        rc = invert_one(m, &d, x, &opts, photos[i]);
    release_model(&m);
    return rc;
}

int cmd_invert(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "invert";
    invert_text x;
    int rc;
    memset(&x, 0, sizeof x);
    option opts[] = {
        { "--model", &x.model, NULL }, { "--out", &x.out, NULL },     { "--steps", &x.steps, NULL },
        { "--vgg16", &x.vgg16, NULL }, { "--seed", &x.seed, NULL },   { "--wplus", NULL, &x.wplus },
        { "--json", NULL, &x.json },   { "--overwrite", NULL, &g_overwrite },
    };
    char **photos = xcalloc((size_t)argc + 1, sizeof *photos);
    int nphotos = 0;
    if (!photos)
        return out_of_memory();
    rc = parse_with_operands(cmd, argc, argv, opts, COUNT_OF(opts), photos, &nphotos);
    if (rc == EC_HELP)
        rc = show_help(INVERT_USAGE);
    else if (rc == EC_OK && nphotos == 0)
        rc = usage_error(cmd, "no PHOTO given");
    else if (rc == EC_OK && !x.out)
        rc = usage_error(cmd, "no --out DIR given");
    else if (rc == EC_OK)
        rc = run_invert(g, &x, photos, nphotos);
    free(photos);
    return rc;
}

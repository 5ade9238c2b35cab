/*
 * editone invert: photos into the model's latent space. For each PHOTO it
 * writes, in --out DIR, NAME.f32 (the W+ latent, float32 LE), NAME.json
 * (crop, PSNR), NAME-photo.png (the photo as read, so DIR is complete for
 * 'editone apply --inverted DIR') and NAME-reconstruction.png.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char INVERT_USAGE[] =
    "usage: editone [global options] invert [--model PATH] PHOTO... --out DIR\n"
    "           [--steps N] [--wplus] [--vgg16 FILE] [--seed S] [--json]\n"
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
    "  --json         print one JSON object per photo\n";

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

/* Reads an image file as a tightly packed view of `format` (free view->data). */
int read_image(const char *path, eo_pixel_format format, eo_image_view *view)
{
    uint32_t w = 0, h = 0;
    size_t needed = 0;
    eo_status st = eo_image_read(path, format, NULL, 0, &w, &h, &needed);
    uint8_t *pixels;
    if (st != EO_OK)
        return lib_error(st, "reading '%s'", path);
    if (!(pixels = xcalloc(needed, 1)))
        return out_of_memory();
    st = eo_image_read(path, format, pixels, needed, &w, &h, NULL);
    if (st != EO_OK) {
        free(pixels);
        return lib_error(st, "reading '%s'", path);
    }
    *view = (eo_image_view){ pixels, w, h, (uint32_t)(needed / h), format };
    return EC_OK;
}

/* Writes DIR/NAME<suffix>; `write` does the work on the full path. */
static int write_outputs(eo_latent l, const eo_model_desc *d, const eo_image_view *photo, const char *dir,
                         const char *name, const uint32_t crop[4], float psnr, const char *source, int json)
{
    char *f32 = named_path(dir, name, ".f32"), *meta = named_path(dir, name, ".json");
    char *copy = named_path(dir, name, "-photo.png"), *rec = named_path(dir, name, "-reconstruction.png");
    size_t n = latent_floats(d);
    float *w = xcalloc(n, sizeof *w);
    uint8_t *pixels = xcalloc((size_t)d->resolution * d->resolution, 3);
    eo_image_view plain = { pixels, d->resolution, d->resolution, d->resolution * 3, EO_PIXEL_RGB8 };
    eo_status st;
    FILE *f;
    int rc = f32 && meta && copy && rec && w && pixels ? EC_OK : out_of_memory();
    if (rc == EC_OK && (st = eo_latent_read(l, w, n, NULL)) != EO_OK)
        rc = lib_error(st, "reading the latent");
    if (rc == EC_OK)
        rc = (f = open_output(f32)) ? close_output(f, f32, write_f32(f, w, n)) : EC_ERROR;
    if (rc == EC_OK && (st = eo_image_write(photo, copy)) != EO_OK)
        rc = lib_error(st, "writing '%s'", copy);
    if (rc == EC_OK && (st = eo_render_ex(l, EO_RENDER_PLAIN, &plain)) != EO_OK)
        rc = lib_error(st, "rendering the reconstruction");
    if (rc == EC_OK && (st = eo_image_write(&plain, rec)) != EO_OK)
        rc = lib_error(st, "writing '%s'", rec);
    for (int pass = 0; rc == EC_OK && pass < 2; pass++) {
        FILE *out = pass == 0 ? open_output(meta) : stdout;
        if (!out) {
            rc = EC_ERROR;
            break;
        }
        if (pass == 1 && !json)
            break;
        fputs("{\"photo\": ", out);
        json_string(out, source);
        fprintf(out, ", \"crop\": [%u, %u, %u, %u], \"psnr\": ", crop[0], crop[1], crop[2], crop[3]);
        json_number(out, psnr);
        fputs(", \"latent\": ", out);
        json_string(out, f32);
        fputs("}\n", out);
        if (pass == 0)
            rc = close_output(out, meta, !ferror(out));
    }
    if (rc == EC_OK && !json)
        printf("%s: PSNR %.2f dB (square %ux%u at %u,%u) -> %s\n", source, psnr, crop[2], crop[3], crop[0], crop[1], f32);
    free(f32), free(meta), free(copy), free(rec), free(w), free(pixels);
    return rc;
}

static int invert_one(eo_model m, const eo_model_desc *d, const invert_text *x, const eo_invert_options *base,
                      const char *source)
{
    eo_image_view photo = { 0 };
    eo_invert_options opts = *base;
    eo_latent l = { 0 };
    uint32_t crop[4] = { 0, 0, 0, 0 };
    float psnr = 0;
    progress p;
    char *name = base_name(source);
    int rc = name ? read_image(source, EO_PIXEL_RGB8, &photo) : out_of_memory();
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
        rc = write_outputs(l, d, &photo, x->out, name, crop, psnr, source, x->json);
    release_latent(&l);
    free(photo.data);
    free(name);
    return rc;
}

static int run_invert(const engine_args *g, const invert_text *x, char **photos, int n)
{
    eo_model m = { 0 };
    eo_model_desc d;
    eo_invert_options opts;
    eo_status st;
    int rc = start_engine(g);
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
        { "--json", NULL, &x.json },
    };
    /* Options may come before or after the photos. */
    char **photos = xcalloc((size_t)argc + 1, sizeof *photos), **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nphotos = 0, nrest = 0;
    if (!photos || !rest) {
        free(photos), free(rest);
        return out_of_memory();
    }
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-') {
            photos[nphotos++] = argv[i];
            continue;
        }
        rest[nrest++] = argv[i];
        if (find_option_takes_value(opts, COUNT_OF(opts), argv[i]) && i + 1 < argc)
            rest[nrest++] = argv[++i];
    }
    rc = parse_options(cmd, nrest, rest, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        rc = show_help(INVERT_USAGE);
    else if (rc == EC_OK && nphotos == 0)
        rc = usage_error(cmd, "no PHOTO given");
    else if (rc == EC_OK && !x.out)
        rc = usage_error(cmd, "no --out DIR given");
    else if (rc == EC_OK)
        rc = run_invert(g, &x, photos, nphotos);
    free(photos), free(rest);
    return rc;
}

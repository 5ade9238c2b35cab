/*
 * editone directions: the model's unsupervised semantic directions (SeFa),
 * so a user can pick an edit without labels: `editone edit --direction K`.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char DIRECTIONS_USAGE[] =
    "usage: editone [global options] directions [--model PATH] [--count K]\n"
    "           [--rows FIRST:COUNT] [--out-f32 FILE] [--preview DIR --seed S\n"
    "           [--strength A]] [--json] [--overwrite]\n"
    "\n"
    "Finds the K strongest unsupervised directions of the model's latent space\n"
    "(SeFa: eigenvectors of the weights that first act on the latent), strongest\n"
    "first. Each is a unit vector of w_dim floats.\n"
    "\n"
    "  --model PATH       model file or folder (default: the built-in face model)\n"
    "  --count K          how many directions (default 5)\n"
    "  --rows FIRST:COUNT StyleGAN2: only the layers fed by these W+ rows (low rows\n"
    "                     steer pose and shape, high rows colour); default all\n"
    "  --out-f32 FILE     write them as K x w_dim little-endian float32\n"
    "  --preview DIR      write DIR/directionK_minus.png, _zero.png and _plus.png:\n"
    "                     seed S moved by -A, 0, +A along each direction (needs --seed)\n"
    "  --seed S           the preview's seed\n"
    "  --strength A       the preview's step (default 3)\n"
    "  --json             print the directions as a JSON list of lists\n"
    "  --overwrite        replace output files that exist; without it nothing is\n"
    "                     written when one exists\n";

typedef struct {
    const char *model, *count, *rows, *out_f32, *preview, *seed, *strength;
    int json;
} directions_text;

/* "FIRST:COUNT" to two numbers. */
static int parse_rows(const char *cmd, const char *text, uint32_t *first, uint32_t *count)
{
    char head[32];
    const char *tail;
    if (!split_pair(text, ':', head, sizeof head, &tail))
        return usage_error(cmd, "--rows: '%s' is not FIRST:COUNT", text);
    if (opt_u32(cmd, "--rows", head, 0, 65535, first) || opt_u32(cmd, "--rows", tail, 1, 65535, count))
        return EC_USAGE;
    return EC_OK;
}

static int find_directions(eo_model m, const eo_model_desc *d, const directions_text *x, uint32_t k, float *out)
{
    size_t n = (size_t)k * d->w_dim;
    eo_status st;
    if (x->rows) {
        uint32_t first, count;
        if (parse_rows("directions", x->rows, &first, &count))
            return EC_USAGE;
        st = eo_model_directions_rows(m, first, count, k, out, n);
    } else {
        st = eo_model_directions(m, k, out, n);
    }
    return st == EO_OK ? EC_OK : lib_error(st, "finding %u directions", k);
}

static void print_directions(const float *dirs, uint32_t k, uint32_t w_dim, int json)
{
    if (json)
        fputc('[', stdout);
    for (uint32_t i = 0; i < k; i++) {
        const float *v = dirs + (size_t)i * w_dim;
        if (json) {
            fputs(i ? ",\n [" : "[", stdout);
            for (uint32_t j = 0; j < w_dim; j++) {
                if (j)
                    fputs(", ", stdout);
                json_number(stdout, v[j]);
            }
            fputc(']', stdout);
        } else {
            printf("direction %u: %+.4f %+.4f %+.4f %+.4f ... (%u floats)\n", i, v[0], v[1 % w_dim],
                   v[2 % w_dim], v[3 % w_dim], w_dim);
        }
    }
    if (json)
        fputs("]\n", stdout);
}

/* The name of preview `step` (-1, 0, +1) of direction i. */
static void preview_name(uint32_t i, int step, char *name, size_t len)
{
    snprintf(name, len, "direction%u_%s.png", i, step < 0 ? "minus" : step == 0 ? "zero" : "plus");
}

/* DIR/directionK_{minus,zero,plus}.png: the seed at -A, 0 and +A along each direction. */
static int write_previews(eo_model m, const eo_model_desc *d, const float *dirs, uint32_t k, uint64_t seed,
                          float strength, const char *dir)
{
    eo_latent base = { 0 };
    int rc = make_dirs(dir);
    if (rc == EC_OK)
        rc = latent_from_seed(m, d, seed, 0, 1.0f, &base);
    for (uint32_t i = 0; rc == EC_OK && i < k; i++) {
        for (int step = -1; rc == EC_OK && step <= 1; step++) {
            eo_edit e = { 0 };
            eo_latent moved = { 0 };
            char name[64];
            eo_status st = step == 0 ? eo_latent_from_seed(m, seed, 1.0f, &moved)
                                     : eo_edit_from_direction(base, dirs + (size_t)i * d->w_dim, d->w_dim,
                                                              (float)step * strength, &e);
            if (st == EO_OK && step != 0)
                st = eo_edit_apply(e, base, &moved);
            preview_name(i, step, name, sizeof name);
            if (st != EO_OK)
                rc = lib_error(st, "moving seed %llu along direction %u", (unsigned long long)seed, i);
            else
                rc = render_one_file(moved, dir, name, 0);
            release_edit(&e);
            release_latent(&moved);
        }
    }
    release_latent(&base);
    return rc;
}

/* Before anything is written: see outputs.c. */
static int check_directions_outputs(const directions_text *x, uint32_t k)
{
    output_plan p = { 0 };
    int rc = plan_input(&p, x->model);
    if (rc == EC_OK && x->out_f32)
        rc = plan_output(&p, x->out_f32, "--out-f32");
    for (uint32_t i = 0; x->preview && i < k && rc == EC_OK; i++)
        for (int step = -1; step <= 1 && rc == EC_OK; step++) {
            char name[64], *path;
            preview_name(i, step, name, sizeof name);
            path = path_join(x->preview, name);
            rc = path ? plan_output(&p, path, "the preview of direction %u", i) : out_of_memory();
            free(path);
        }
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static int run_directions(const engine_args *g, const directions_text *x, uint32_t k, uint64_t seed, float strength)
{
    eo_model m = { 0 };
    eo_model_desc d;
    float *dirs = NULL;
    output_file out;
    int rc = check_directions_outputs(x, k);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model("directions", x->model, &m, &d);
    if (rc == EC_OK && !(dirs = xcalloc((size_t)k * d.w_dim, sizeof *dirs)))
        rc = out_of_memory();
    if (rc == EC_OK)
        rc = find_directions(m, &d, x, k, dirs);
    if (rc == EC_OK && x->out_f32 && (rc = open_output(x->out_f32, &out)) == EC_OK) {
        write_f32(out.f, dirs, (size_t)k * d.w_dim); /* a failure sets the stream's error, which close_output reports */
        rc = close_output(&out, EC_OK);
    }
    if (rc == EC_OK && x->preview)
        rc = write_previews(m, &d, dirs, k, seed, strength, x->preview);
    if (rc == EC_OK)
        print_directions(dirs, k, d.w_dim, x->json);
    free(dirs);
    release_model(&m);
    return rc;
}

int cmd_directions(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "directions";
    directions_text x;
    uint32_t k = 5;
    uint64_t seed = 0;
    float strength = 3.0f;
    memset(&x, 0, sizeof x);
    option opts[] = {
        { "--model", &x.model, NULL },   { "--count", &x.count, NULL },       { "--rows", &x.rows, NULL },
        { "--out-f32", &x.out_f32, NULL }, { "--preview", &x.preview, NULL }, { "--seed", &x.seed, NULL },
        { "--strength", &x.strength, NULL }, { "--json", NULL, &x.json },
        { "--overwrite", NULL, &g_overwrite },
    };
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        return show_help(DIRECTIONS_USAGE);
    if (rc != EC_OK)
        return rc;
    if (x.count && opt_u32(cmd, "--count", x.count, 1, 65535, &k))
        return EC_USAGE;
    if (x.preview && !x.seed)
        return usage_error(cmd, "--preview needs --seed S");
    if ((x.seed || x.strength) && !x.preview)
        return usage_error(cmd, "--seed and --strength apply to --preview only");
    if (x.seed && opt_u64(cmd, "--seed", x.seed, 0, UINT32_MAX, &seed))
        return EC_USAGE;
    if (x.strength && opt_float(cmd, "--strength", x.strength, -MAX_FLOAT, MAX_FLOAT, &strength))
        return EC_USAGE;
    return run_directions(g, &x, k, seed, strength);
}

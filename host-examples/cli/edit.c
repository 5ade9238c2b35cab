/*
 * editone edit: an example edit of one image, optimised into a preset.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char EDIT_USAGE[] =
    "usage: editone [global options] edit [--model PATH] --seed S [--psi F] [--class K]\n"
    "           (--direction K --strength A | --direction-f32 FILE --strength A\n"
    "            | --to-seed T [--mix M] | --drag X1,Y1:X2,Y2 [--drag ...] [--mask FILE]\n"
    "            | --to-latent-f32 FILE [--mix M])\n"
    "           [--iterations N] [--lr F] [--lambda F] [--objective paper|batch]\n"
    "           [--batch-size K] [--batch-seed N] [--rows K] [--init auto|zero|naive]\n"
    "           [--patience N] [--fast] [--no-optimize] [--json]\n"
    "           --out PRESET.json [--preview DIR] [--overwrite]\n"
    "\n"
    "Edits one example image, optimises the edit into a direction that\n"
    "transfers consistently to other images, and saves it as a preset for\n"
    "'editone apply'.\n"
    "\n"
    "The example:\n"
    "  --model PATH            model file or folder (default: the built-in face model)\n"
    "  --seed S                the example's seed\n"
    "  --psi F                 truncation psi (default 1 = none)\n"
    "  --class K               class index, required for conditional models\n"
    "The edit (one of):\n"
    "  --direction K           unsupervised direction K (SeFa, 0 = strongest; see\n"
    "                          'editone directions') ...\n"
    "  --direction-f32 FILE    or a direction of w_dim or num_ws x w_dim float32 LE ...\n"
    "  --strength A            ... moved along by A\n"
    "  --to-seed T             toward seed T's latent (same --psi and --class)\n"
    "  --to-latent-f32 FILE    toward a latent of w_dim or num_ws x w_dim float32 LE\n"
    "  --mix M                 go M of the way: w0 + M (w_target - w0) (default 1)\n"
    "  --drag X1,Y1:X2,Y2      drag the point X1,Y1 of the example to X2,Y2 (DragGAN;\n"
    "                          repeat for more points). Pixels of the example at the\n"
    "                          model's resolution, or of --mask's size\n"
    "  --mask FILE             image of the editable region (non-black = editable)\n"
    "  --strip-every N         with --preview: DIR/drag-strip.png shows every Nth\n"
    "                          drag step (default 10), DIR/dragged.png the result\n"
    "Optimisation (defaults are the library's, the paper's settings):\n"
    "  --fast                  start from the interactive preset (lr 0.02, at most\n"
    "                          100 steps); the options below still apply\n"
    "  --iterations N          AdamW steps at most (1000)\n"
    "  --lr F                  learning rate (0.001)\n"
    "  --lambda F              weight of the hyperplane term (0.02)\n"
    "  --objective paper|batch loss: the paper's or the authors' demo code (paper)\n"
    "  --batch-size K          latents per step of the batch objective (16)\n"
    "  --batch-seed N          seed of the batch objective's latents (0)\n"
    "  --rows K                edit only the first K W+ rows (all)\n"
    "  --init auto|zero|naive  where the direction starts (auto)\n"
    "  --patience N            stop after N steps without improvement, 0 = never (100)\n"
    "  --no-optimize           save the naive direction without optimising\n"
    "Output:\n"
    "  --out PRESET.json       the preset to write\n"
    "  --preview DIR           also write DIR/example.png and DIR/edited.png\n"
    "  --json                  print the optimisation summary as JSON\n"
    "  --overwrite             replace output files that exist (never an input);\n"
    "                          without it nothing is written when one exists\n"
    "\n"
    "Progress goes to stderr; Ctrl-C or SIGTERM cancels the optimisation (exit 3).\n";

/* The option text of edit. */
typedef struct {
    const char *model, *seed, *psi, *class_index;
    const char *sefa, *direction, *strength, *to_seed, *to_latent, *mix;
    const char *iterations, *lr, *lambda, *objective, *batch_size, *batch_seed, *rows, *init, *patience;
    const char *out, *preview;
    const char *mask, *strip_every;
    const char **drags;
    size_t ndrags;
    int fast, no_optimize, json;
} edit_text;

/* edit's options, parsed. */
typedef struct {
    uint64_t seed, to_seed, batch_seed;
    float psi, strength, mix, lr, lambda;
    uint32_t class_index, iterations, batch_size, rows, patience, objective, init, sefa;
    int has_class;
    drag_request drag;
} edit_values;

/* Which edit source options fit together. */
static int check_edit_source(const char *cmd, const edit_text *x)
{
    int sources = !!x->sefa + !!x->direction + !!x->to_seed + !!x->to_latent + (x->ndrags > 0);
    if (sources != 1)
        return usage_error(cmd, "give exactly one of --direction K, --direction-f32 FILE, --to-seed T, "
                                "--to-latent-f32 FILE, --drag X1,Y1:X2,Y2");
    if ((x->mask || x->strip_every) && !x->ndrags)
        return usage_error(cmd, "--mask and --strip-every apply to --drag only");
    if ((x->direction || x->sefa) && !x->strength)
        return usage_error(cmd, "--direction needs --strength A");
    if (x->strength && !x->direction && !x->sefa)
        return usage_error(cmd, "--strength applies to --direction and --direction-f32 only");
    if (x->mix && (x->direction || x->sefa))
        return usage_error(cmd, "--mix applies to --to-seed and --to-latent-f32 only");
    if (!x->out)
        return usage_error(cmd, "no --out PRESET.json given");
    if (!x->seed)
        return usage_error(cmd, "no --seed S given");
    return EC_OK;
}

static int check_no_optimize(const char *cmd, const edit_text *x)
{
    const char *given[] = { x->iterations, x->lr,   x->lambda, x->objective, x->batch_size,
                            x->batch_seed, x->rows, x->init,   x->patience };
    if (!x->no_optimize)
        return EC_OK;
    if (x->fast)
        return usage_error(cmd, "--fast has no effect with --no-optimize");
    for (size_t i = 0; i < COUNT_OF(given); i++)
        if (given[i])
            return usage_error(cmd, "optimisation options have no effect with --no-optimize");
    return EC_OK;
}

static int parse_optimize_values(const char *cmd, const edit_text *x, edit_values *v)
{
    static const char *const objectives[] = { "paper", "batch" };
    static const char *const inits[] = { "auto", "zero", "naive" };
    if (x->iterations && opt_u32(cmd, "--iterations", x->iterations, 1, 10000000, &v->iterations))
        return EC_USAGE;
    if (x->lr && opt_float(cmd, "--lr", x->lr, 0.0, MAX_FLOAT, &v->lr))
        return EC_USAGE;
    if (x->lambda && opt_float(cmd, "--lambda", x->lambda, 0.0, MAX_FLOAT, &v->lambda))
        return EC_USAGE;
    if (x->objective && parse_choice(cmd, "--objective", x->objective, objectives, 2, &v->objective))
        return EC_USAGE;
    if (x->batch_size && opt_u32(cmd, "--batch-size", x->batch_size, 1, 65536, &v->batch_size))
        return EC_USAGE;
    if (x->batch_seed && opt_u64(cmd, "--batch-seed", x->batch_seed, 0, UINT64_MAX, &v->batch_seed))
        return EC_USAGE;
    if (x->rows && opt_u32(cmd, "--rows", x->rows, 1, UINT32_MAX, &v->rows))
        return EC_USAGE;
    if (x->init && parse_choice(cmd, "--init", x->init, inits, 3, &v->init))
        return EC_USAGE;
    if (x->patience && opt_u32(cmd, "--patience", x->patience, 0, UINT32_MAX, &v->patience))
        return EC_USAGE;
    return EC_OK;
}

static int parse_edit_values(const char *cmd, const edit_text *x, edit_values *v)
{
    memset(v, 0, sizeof *v);
    v->psi = 1.0f;
    v->mix = 1.0f;
    if (check_edit_source(cmd, x) || check_no_optimize(cmd, x))
        return EC_USAGE;
    if (opt_u64(cmd, "--seed", x->seed, 0, UINT32_MAX, &v->seed))
        return EC_USAGE;
    if (x->psi && opt_float(cmd, "--psi", x->psi, -MAX_FLOAT, MAX_FLOAT, &v->psi))
        return EC_USAGE;
    if (x->class_index) {
        if (opt_u32(cmd, "--class", x->class_index, 0, UINT32_MAX, &v->class_index))
            return EC_USAGE;
        v->has_class = 1;
    }
    if (x->strength && opt_float(cmd, "--strength", x->strength, -MAX_FLOAT, MAX_FLOAT, &v->strength))
        return EC_USAGE;
    if (x->to_seed && opt_u64(cmd, "--to-seed", x->to_seed, 0, UINT32_MAX, &v->to_seed))
        return EC_USAGE;
    if (x->sefa && opt_u32(cmd, "--direction", x->sefa, 0, 65535, &v->sefa))
        return EC_USAGE;
    v->drag.strip_every = 10;
    if (x->strip_every && opt_u32(cmd, "--strip-every", x->strip_every, 1, 100000, &v->drag.strip_every))
        return EC_USAGE;
    if (x->ndrags && parse_drags(cmd, x->drags, x->ndrags, &v->drag.handles, &v->drag.targets))
        return EC_USAGE;
    v->drag.n = x->ndrags;
    v->drag.mask = x->mask;
    v->drag.preview = x->preview;
    if (x->mix && opt_float(cmd, "--mix", x->mix, -MAX_FLOAT, MAX_FLOAT, &v->mix))
        return EC_USAGE;
    return parse_optimize_values(cmd, x, v);
}

/* Reads a file of w_dim or num_ws x w_dim floats (a W or W+ vector). */
static int read_w_file(const char *path, const char *what, const eo_model_desc *d, float **out, size_t *n)
{
    uint64_t size;
    int rc = file_size(path, &size);
    if (rc != EC_OK)
        return rc;
    if (size == (uint64_t)d->w_dim * 4)
        *n = d->w_dim;
    else if (size == (uint64_t)latent_floats(d) * 4)
        *n = latent_floats(d);
    else
        return fail("'%s' holds %" PRIu64 " bytes; %s has %u floats (w_dim, %u bytes) or %zu floats"
                    " (num_ws x w_dim, %zu bytes) of little-endian float32",
                    path, size, what, d->w_dim, d->w_dim * 4, latent_floats(d), latent_floats(d) * 4);
    return read_f32_file(path, *n, out);
}

/* Replaces *target by w0 + mix (w_target - w0), a new latent handle. */
static int mix_latent(eo_model m, const eo_model_desc *d, eo_latent example, float mix, eo_latent *target)
{
    float *w0 = NULL, *wt = NULL;
    size_t n = latent_floats(d);
    eo_latent mixed = { 0 };
    int rc = read_latent(example, d, &w0);
    if (rc == EC_OK)
        rc = read_latent(*target, d, &wt);
    if (rc == EC_OK) {
        for (size_t i = 0; i < n; i++)
            wt[i] = w0[i] + mix * (wt[i] - w0[i]);
        eo_status st = eo_latent_from_w(m, wt, n, &mixed);
        if (st != EO_OK)
            rc = lib_error(st, "making the mixed latent (--mix %g)", mix);
    }
    if (rc == EC_OK) {
        release_latent(target);
        *target = mixed;
    }
    free(w0);
    free(wt);
    return rc;
}

/* The latent the example is edited toward: --to-seed or --to-latent-f32, with --mix. */
static int make_edit_target(eo_model m, const eo_model_desc *d, const edit_text *x, const edit_values *v,
                            eo_latent example, eo_latent *target)
{
    int rc;
    if (x->to_seed) {
        rc = latent_from_seed(m, d, v->to_seed, v->class_index, v->psi, target);
    } else {
        float *w;
        size_t n;
        eo_status st;
        rc = read_w_file(x->to_latent, "a latent", d, &w, &n);
        if (rc != EC_OK)
            return rc;
        st = eo_latent_from_w(m, w, n, target);
        free(w);
        if (st != EO_OK)
            return lib_error(st, "making a latent from '%s'", x->to_latent);
    }
    if (rc == EC_OK && x->mix)
        rc = mix_latent(m, d, example, v->mix, target);
    return rc;
}

/* The edit along the model's unsupervised direction number k. */
static int edit_along_sefa(eo_model m, const eo_model_desc *d, uint32_t k, float strength, eo_latent example,
                           eo_edit *e)
{
    size_t n = ((size_t)k + 1) * d->w_dim;
    float *dirs = xcalloc(n, sizeof *dirs);
    eo_status st;
    if (!dirs)
        return out_of_memory();
    st = eo_model_directions(m, k + 1, dirs, n);
    if (st == EO_OK)
        st = eo_edit_from_direction(example, dirs + (size_t)k * d->w_dim, d->w_dim, strength, e);
    free(dirs);
    if (st != EO_OK)
        return lib_error(st, "making the edit along direction %u", k);
    return EC_OK;
}

/* The edit of the example, from a direction or toward a target latent. */
static int make_edit(eo_model m, const eo_model_desc *d, const edit_text *x, const edit_values *v,
                     eo_latent example, eo_edit *e)
{
    eo_latent target = { 0 };
    eo_status st;
    int rc;
    if (x->sefa)
        return edit_along_sefa(m, d, v->sefa, v->strength, example, e);
    if (x->ndrags)
        return edit_from_drags(d, example, &v->drag, e);
    if (x->direction) {
        float *dir;
        size_t n;
        rc = read_w_file(x->direction, "a direction", d, &dir, &n);
        if (rc != EC_OK)
            return rc;
        st = eo_edit_from_direction(example, dir, n, v->strength, e);
        free(dir);
        if (st != EO_OK)
            return lib_error(st, "making the edit from direction '%s'", x->direction);
        return EC_OK;
    }
    rc = make_edit_target(m, d, x, v, example, &target);
    if (rc == EC_OK && (st = eo_edit_from_latents(example, target, e)) != EO_OK)
        rc = lib_error(st, "making the edit");
    release_latent(&target);
    return rc;
}

static int optimize_edit(eo_edit e, const edit_text *x, const edit_values *v)
{
    eo_optimize_options o;
    progress p;
    eo_status st = x->fast ? eo_optimize_options_init_fast(&o) : eo_optimize_options_init(&o);
    if (st != EO_OK)
        return lib_error(st, "preparing optimisation options");
    if (x->iterations) o.iterations = v->iterations;
    if (x->lr) o.learning_rate = v->lr;
    if (x->lambda) o.lambda = v->lambda;
    if (x->objective) o.objective = v->objective == 0 ? EO_OBJECTIVE_PAPER : EO_OBJECTIVE_BATCH;
    if (x->batch_size) o.batch_size = v->batch_size;
    if (x->batch_seed) o.seed = v->batch_seed;
    if (x->rows) o.edit_rows = v->rows;
    if (x->init) o.init = v->init == 0 ? EO_INIT_AUTO : v->init == 1 ? EO_INIT_ZERO : EO_INIT_NAIVE;
    if (x->patience) o.patience = v->patience;
    progress_start(&p, "optimize");
    st = eo_edit_optimize(e, &o, on_progress, &p);
    progress_finish(&p);
    if (st != EO_OK)
        return lib_error(st, "optimizing the edit");
    return EC_OK;
}

static void print_edit_summary(const eo_optimize_report *r, float strength, const char *out, int json)
{
    if (json) {
        printf("{\"optimized\": %s, \"iterations\": %u, \"stopped_early\": %s, \"initial_loss\": ",
               r->optimized ? "true" : "false", r->iterations, r->stopped_early ? "true" : "false");
        json_number(stdout, r->initial_loss);
        fputs(", \"best_loss\": ", stdout);
        json_number(stdout, r->best_loss);
        fputs(", \"strength\": ", stdout);
        json_number(stdout, strength);
        fputs(", \"preset\": ", stdout);
        json_string(stdout, out);
        fputs("}\n", stdout);
        return;
    }
    if (r->optimized)
        printf("optimized: %u iterations%s, loss %.6g -> %.6g\n", r->iterations,
               r->stopped_early ? " (stopped early: no improvement)" : "", r->initial_loss, r->best_loss);
    else
        printf("not optimized: the preset uses the naive direction\n");
    printf("strength:  %g\n", strength);
    printf("preset:    %s\n", out);
}

static int report_edit(eo_edit e, const edit_text *x)
{
    eo_optimize_report r;
    float strength = 0.0f;
    eo_status st;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    st = eo_edit_report(e, &r);
    if (st != EO_OK)
        return lib_error(st, "reading the optimisation report");
    st = eo_edit_strength(e, &strength);
    if (st != EO_OK)
        return lib_error(st, "reading the edit's strength");
    print_edit_summary(&r, strength, x->out, x->json);
    return EC_OK;
}

/* DIR/example.png and DIR/edited.png (the example with the edit applied). */
static int write_preview(eo_edit e, eo_latent example, const char *dir)
{
    eo_latent edited = { 0 };
    eo_status st;
    int rc = make_dirs(dir);
    if (rc == EC_OK)
        rc = render_one_file(example, dir, "example.png", 0);
    if (rc == EC_OK && (st = eo_edit_apply(e, example, &edited)) != EO_OK)
        rc = lib_error(st, "applying the edit to the example");
    if (rc == EC_OK)
        rc = render_one_file(edited, dir, "edited.png", 0);
    release_latent(&edited);
    return rc;
}

/* Before anything is written: the preset and the preview images (see outputs.c). */
static int check_edit_outputs(const edit_text *x)
{
    static const char *const previews[] = { "example.png", "edited.png", "drag-strip.png", "dragged.png" };
    const char *inputs[] = { x->model, x->direction, x->to_latent, x->mask };
    output_plan p = { 0 };
    int rc = plan_output(&p, x->out, "--out");
    for (size_t i = 0; i < COUNT_OF(inputs) && rc == EC_OK; i++)
        rc = plan_input(&p, inputs[i]);
    for (size_t i = 0; x->preview && i < (x->ndrags ? 4 : 2) && rc == EC_OK; i++) {
        char *path = path_join(x->preview, previews[i]);
        rc = path ? plan_output(&p, path, "--preview") : out_of_memory();
        free(path);
    }
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static int run_edit(const engine_args *g, const edit_text *x, const edit_values *v)
{
    const char *cmd = "edit";
    eo_model m = { 0 };
    eo_model_desc d;
    eo_latent example = { 0 };
    eo_edit e = { 0 };
    eo_status st;
    int rc = check_edit_outputs(x);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, x->model, &m, &d);
    if (rc == EC_OK)
        rc = check_class(cmd, &d, v->has_class, v->class_index);
    if (rc == EC_OK && x->rows && v->rows > d.num_ws)
        rc = usage_error(cmd, "--rows %u is out of range: the model has %u W+ rows", v->rows, d.num_ws);
    if (rc == EC_OK)
        rc = latent_from_seed(m, &d, v->seed, v->class_index, v->psi, &example);
    if (rc == EC_OK)
        rc = make_edit(m, &d, x, v, example, &e);
    if (rc == EC_OK && !x->no_optimize)
        rc = optimize_edit(e, x, v);
    if (rc == EC_OK && (st = eo_edit_save_ex(e, x->out, write_flags())) != EO_OK)
        rc = st == EO_ERR_EXISTS ? exists_error(x->out) : lib_error(st, "saving preset '%s'", x->out);
    if (rc == EC_OK)
        rc = report_edit(e, x);
    if (rc == EC_OK && x->preview)
        rc = write_preview(e, example, x->preview);
    release_edit(&e);
    release_latent(&example);
    release_model(&m);
    return rc;
}

int cmd_edit(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "edit";
    edit_text x;
    edit_values v;
    memset(&x, 0, sizeof x);
    memset(&v, 0, sizeof v);
    option opts[] = {
        { "--model", &x.model, NULL },          { "--seed", &x.seed, NULL },
        { "--psi", &x.psi, NULL },              { "--class", &x.class_index, NULL },
        { "--direction", &x.sefa, NULL },       { "--fast", NULL, &x.fast },
        { "--direction-f32", &x.direction, NULL }, { "--strength", &x.strength, NULL },
        { "--to-seed", &x.to_seed, NULL },      { "--to-latent-f32", &x.to_latent, NULL },
        { "--mix", &x.mix, NULL },              { "--iterations", &x.iterations, NULL },
        { "--lr", &x.lr, NULL },                { "--lambda", &x.lambda, NULL },
        { "--objective", &x.objective, NULL },  { "--batch-size", &x.batch_size, NULL },
        { "--batch-seed", &x.batch_seed, NULL }, { "--rows", &x.rows, NULL },
        { "--init", &x.init, NULL },            { "--patience", &x.patience, NULL },
        { "--no-optimize", NULL, &x.no_optimize }, { "--json", NULL, &x.json },
        { "--out", &x.out, NULL },              { "--preview", &x.preview, NULL },
        { "--mask", &x.mask, NULL },            { "--strip-every", &x.strip_every, NULL },
        { "--overwrite", NULL, &g_overwrite },
    };
    const char **drags = xcalloc((size_t)argc + 1, sizeof *drags);
    if (!drags)
        return out_of_memory();
    x.drags = drags;
    x.ndrags = take_repeated("--drag", &argc, argv, drags);
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        rc = show_help(EDIT_USAGE);
    else if (rc == EC_OK && parse_edit_values(cmd, &x, &v) != EC_OK)
        rc = EC_USAGE;
    else if (rc == EC_OK)
        rc = run_edit(g, &x, &v);
    free(v.drag.handles);
    free(v.drag.targets);
    free(drags);
    return rc;
}

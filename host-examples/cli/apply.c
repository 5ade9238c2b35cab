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
    "           [--alphas FILE.json] [--json] [--out-latents-f32 FILE] [--overwrite]\n"
    "           [--shard K/N | --shards N] [--resume]\n"
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
    "                           rendering) and are named NAME.png. A photo inverted\n"
    "                           with --faces (NAME.faces.f32) gives one photo with\n"
    "                           every face edited, each with its own strength, pasted\n"
    "                           back where NAME.json says; outside the faces every\n"
    "                           pixel stays the photo's. With DIR/tuned.safetensors\n"
    "                           (invert --faces --tune) the faces render through that\n"
    "                           tuned generator, once DIR/tuned.manifest vouches for it\n"
    "  --strength A             the example's own strength (default: the preset's);\n"
    "                           every alpha_i moves by the same amount\n"
    "  --baseline naive|unscaled  render a comparison baseline instead of the method:\n"
    "                           naive = the example's offset added to every image,\n"
    "                           unscaled = the optimised direction, no per-image strength;\n"
    "                           --strength scales both as it moves the example\n"
    "  --out-dir DIR            write the edited images to DIR (created if missing)\n"
    "  --size S                 resample images to S x S pixels (not for photos\n"
    "                           inverted with --faces, which keep their size)\n"
    "  --format png|jpg         image format (default png)\n"
    "  --alphas FILE.json       write [{\"seed\"|\"index\"|\"photo\": ..., \"alpha\": ...}, ...];\n"
    "                           a photo's faces: {\"photo\": ..., \"face\": K, \"alpha\": ...} each\n"
    "  --json                   print that list on stdout\n"
    "  --out-latents-f32 FILE   write the edited W+ latents, float32 LE, in input order\n"
    "                           (a photo's faces: one latent each, in NAME.json's order)\n"
    "  --overwrite              replace output files that exist (never an input: with\n"
    "                           --inverted DIR --out-dir DIR, NAME.png may be your\n"
    "                           original photo)\n"
    "  --shard K/N              only shard K (0 .. N-1) of N: targets floor(K T/N) ..\n"
    "                           floor((K+1) T/N) - 1 of the T listed (seeds in the\n"
    "                           order given, latent rows, photos sorted by name); needs\n"
    "                           --out-dir, where it writes editone-shard-K-of-N.json\n"
    "                           (its alphas) last; 'editone merge DIR' joins them\n"
    "  --shards N               N shards, K from SLURM_ARRAY_TASK_ID or Kubernetes'\n"
    "                           JOB_COMPLETION_INDEX. In an array task without either\n"
    "                           option, N is SLURM_ARRAY_TASK_COUNT (with a notice);\n"
    "                           every source given must agree\n"
    "  --resume                 keep the images already in --out-dir (each was renamed\n"
    "                           into place whole) and render the rest: a requeued or\n"
    "                           preempted task continues. Sharded and resumed runs\n"
    "                           record the preset's fingerprint in DIR/editone-run.json\n"
    "                           and refuse a folder holding another's\n"
    "\n"
    "Each file is written under a hidden temporary name in its folder and renamed\n"
    "when whole, so a stopped run (Ctrl-C, SIGTERM, a crash) never leaves a\n"
    "half-written file. Before writing anything, apply refuses outputs that\n"
    "would repeat a name or replace an input, and, without --overwrite, any\n"
    "that exists.\n"
    "\n"
    "At least one of --out-dir, --alphas, --json, --out-latents-f32 is needed.\n"
    "Images are made, edited, written and released 64 at a time, so memory does\n"
    "not grow with their number.\n";

typedef struct {
    const char *model, *preset, *strength, *baseline, *out_dir, *size, *format, *alphas, *out_latents;
    const char *shard, *shards;
    int json, resume;
    target_text tx;
} apply_text;

typedef struct {
    target_spec t;
    float strength;
    int has_baseline;
    uint32_t baseline; /* EO_BASELINE_* */
    uint32_t size;
    const char *ext;
    shard_spec shard;
    uint64_t targets_hash; /* the whole target list's, before --shard */
} apply_values;

/* --shard, --shards, --resume: the slice of the targets this process takes (shard.c). */
static int parse_apply_shard(const char *cmd, const apply_text *x, apply_values *v)
{
    if (parse_shard(cmd, x->shard, x->shards, &v->shard) != EC_OK)
        return EC_USAGE;
    if ((v->shard.on || x->resume) && !x->out_dir)
        return usage_error(cmd, "%s writes its images and its manifest to --out-dir DIR: give it",
                           v->shard.on ? "a sharded run" : "--resume");
    return shard_targets(&v->shard, &v->t, &v->targets_hash);
}

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
    if (parse_targets(cmd, &x->tx, &v->t) != EC_OK)
        return EC_USAGE;
    if (v->t.n_face_sets && x->size) {
        free_targets(&v->t);
        return usage_error(cmd, "--size: '%s' holds photos inverted with --faces, which are written at their own"
                           " size", x->tx.inverted);
    }
    if (parse_apply_shard(cmd, x, v) != EC_OK) {
        free_targets(&v->t);
        return EC_USAGE;
    }
    return EC_OK;
}

/* A photo's faces: one entry each. */
static size_t write_face_alphas(FILE *f, const char *name, const face_set *s, const float *alphas)
{
    for (size_t k = 0; k < s->n; k++) {
        fputs(k ? ",\n {\"photo\": " : "{\"photo\": ", f);
        json_string(f, name);
        fprintf(f, ", \"face\": %u, \"alpha\": ", s->index[k]);
        json_number(f, alphas[k]);
        fputc('}', f);
    }
    return s->n;
}

/* One entry per target, or per face of a face set (sets: NULL without any). */
void write_alphas_json(FILE *f, const target_spec *t, const face_set *sets, const float *alphas)
{
    fputc('[', f);
    for (size_t i = 0; i < t->n; i++) {
        fputs(i ? ",\n " : "", f);
        if (sets && t->face_sets[i]) {
            alphas += write_face_alphas(f, t->names[i], &sets[i], alphas);
            continue;
        }
        if (t->seeds) {
            fprintf(f, "{\"seed\": %" PRIu64 ", \"alpha\": ", t->seeds[i]);
        } else if (t->names) {
            fputs("{\"photo\": ", f);
            json_string(f, t->names[i]);
            fputs(", \"alpha\": ", f);
        } else
            fprintf(f, "{\"index\": %zu, \"alpha\": ", t->offset + i);
        json_number(f, *alphas++);
        fputc('}', f);
    }
    fputs("]\n", f);
}

static int write_alphas_file(const target_spec *t, const face_set *sets, const float *alphas, const char *path)
{
    output_file out;
    int rc = open_output(path, &out);
    if (rc == EC_OK)
        write_alphas_json(out.f, t, sets, alphas);
    return close_output(&out, rc);
}

/*
 * Targets per chunk. apply makes, edits, writes and releases the targets
 * a chunk at a time, so that memory does not grow with their number
 * (beyond one alpha each for --alphas/--json) and images render in device
 * batches: 64 fills two of the library's batches of 32.
 */
#define CHUNK 64

/* An apply under way: what every chunk needs. */
typedef struct {
    const apply_values *v;
    eo_model m;
    eo_model_desc d;
    eo_edit e;
    image_files images;       /* images.dir is NULL without --out-dir */
    output_file latents;      /* --out-latents-f32 (latents.f is NULL without it) */
    float *alphas;            /* one per target (per face of a face set) for --alphas/--json, or NULL */
    size_t rows;              /* how many: targets, with a face set's faces counted one each */
    face_set *sets;           /* one per target, read for the face sets (NULL without any) */
    run_folder *run;          /* sharded or --resume: the folder's record and manifest, or NULL */
    eo_model tuned;           /* --inverted DIR's tuned model (invert --tune), or id 0: the faces render through it */
    progress p;
} apply_run;

/* Edited latents of the baseline, one call per target. */
static int apply_baseline(const apply_run *r, const eo_latent *ls, size_t first, size_t n, eo_latent *edited)
{
    for (size_t i = 0; i < n; i++) {
        eo_status st = eo_edit_apply_baseline(r->e, ls[i], r->v->baseline, &edited[i]);
        if (st != EO_OK) {
            char what[300];
            describe_target(&r->v->t, first + i, what, sizeof what);
            return lib_error(st, "applying the baseline to %s", what);
        }
    }
    return EC_OK;
}

/* Edits targets first .. first + n - 1 (latents ls) into `edited`; their alphas go to row `row` on. */
static int apply_edit(const apply_run *r, const eo_latent *ls, size_t first, size_t n, size_t row, eo_latent *edited)
{
    char a[300], b[300];
    eo_status st;
    if (r->v->has_baseline)
        return apply_baseline(r, ls, first, n, edited);
    st = eo_edit_apply_batch(r->e, ls, n, edited, r->alphas ? r->alphas + row : NULL);
    if (st == EO_OK)
        return EC_OK;
    describe_target(&r->v->t, first, a, sizeof a);
    describe_target(&r->v->t, first + n - 1, b, sizeof b);
    return lib_error(st, "applying the edit to %s .. %s", a, b);
}

/* One chunk, targets first .. first + n - 1 (alphas from row `row`): made, edited, written, released. */
static int apply_chunk(apply_run *r, size_t first, size_t n, size_t row)
{
    eo_latent ls[CHUNK], edited[CHUNK];
    int rc = make_target_range(r->m, &r->d, &r->v->t, first, n, ls);
    memset(edited, 0, sizeof edited);
    if (rc == EC_OK)
        rc = apply_edit(r, ls, first, n, row, edited);
    release_latents(ls, n);
    if (rc == EC_OK && r->latents.f)
        rc = write_latents(r->latents.f, edited, n, &r->d, r->latents.path);
    if (rc == EC_OK && r->images.dir)
        rc = render_chunk_files(edited, n, &r->v->t, first, &r->images, &r->p);
    release_latents(edited, n);
    return rc;
}

/* The edited photo of face set i: every face's edit composited in one call. */
static int render_face_set(const apply_run *r, size_t i, const eo_latent *edited)
{
    const face_set *s = &r->sets[i];
    uint8_t *pixels = xcalloc((size_t)s->width * 3, s->height);
    eo_image_view v = { pixels, s->width, s->height, s->width * 3, EO_PIXEL_RGB8 };
    char *name = target_file_name(&r->v->t, i, r->images.ext);
    char *path = name ? path_join(r->images.dir, name) : NULL;
    eo_status st;
    int rc = EC_OK;
    if (!pixels || !path)
        rc = out_of_memory();
    else if ((st = eo_render_photo(edited, s->n, EO_RENDER_AUTO, &v)) != EO_OK)
        rc = lib_error(st, "rendering '%s'", path);
    else if (g_interrupted)
        rc = EC_CANCELLED;
    else if ((st = eo_image_write_ex(&v, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(pixels);
    free(name);
    free(path);
    return rc;
}

/* Face set i (alphas from row `row`): its faces made, edited, written as one photo, released. */
static int apply_face_set(apply_run *r, size_t i, size_t row)
{
    const face_set *s = &r->sets[i];
    const char *name = r->v->t.names[i];
    eo_latent *ls = xcalloc(s->n, sizeof *ls), *edited = xcalloc(s->n, sizeof *edited);
    eo_status st = EO_OK;
    eo_model m = r->tuned.id ? r->tuned : r->m;
    int rc = ls && edited ? face_set_latents(m, &r->d, r->v->t.inverted_dir, name, s, ls) : out_of_memory();
    if (rc == EC_OK && r->v->has_baseline) {
        for (size_t k = 0; k < s->n && st == EO_OK; k++)
            st = eo_edit_apply_baseline(r->e, ls[k], r->v->baseline, &edited[k]);
        if (st != EO_OK)
            rc = lib_error(st, "applying the baseline to the faces of photo '%s'", name);
    } else if (rc == EC_OK) {
        st = eo_edit_apply_batch(r->e, ls, s->n, edited, r->alphas ? r->alphas + row : NULL);
        if (st != EO_OK)
            rc = lib_error(st, "applying the edit to the faces of photo '%s'", name);
    }
    if (ls)
        release_latents(ls, s->n);
    if (rc == EC_OK && r->latents.f)
        rc = write_latents(r->latents.f, edited, s->n, &r->d, r->latents.path);
    if (rc == EC_OK && r->images.dir)
        rc = render_face_set(r, i, edited);
    free_latents(edited, edited ? s->n : 0);
    free(ls);
    return rc;
}

/* How many targets from `first` on, up to CHUNK, are not face sets. */
static size_t plain_run(const apply_run *r, size_t first)
{
    size_t n = 0;
    while (first + n < r->v->t.n && n < CHUNK && !(r->sets && r->v->t.face_sets[first + n]))
        n++;
    return n;
}

/*
 * Every chunk in turn (a face set is a chunk of its own); progress counts
 * targets (images, with --out-dir).
 */
static int apply_chunks(apply_run *r)
{
    size_t total = r->v->t.n, row = 0;
    int rc = EC_OK;
    progress_start(&r->p, "apply");
    for (size_t first = 0, n = 0; first < total && rc == EC_OK; first += n) {
        int faces = r->sets && r->v->t.face_sets[first];
        n = faces ? 1 : plain_run(r, first);
        if (g_interrupted)
            rc = EC_CANCELLED;
        else
            rc = faces ? apply_face_set(r, first, row) : apply_chunk(r, first, n, row);
        row += faces ? r->sets[first].n : n;
        if (rc == EC_OK)
            progress_show(&r->p, first + n, total);
    }
    progress_finish(&r->p);
    return rc == EC_CANCELLED ? cancelled("applying the edit") : rc;
}

/*
 * The records of the face sets (NAME.json), read and checked against
 * their files before anything is written, and the number of alphas: one
 * per target, one per face of a face set.
 */
static int read_face_sets(apply_run *r)
{
    const target_spec *t = &r->v->t;
    int rc = EC_OK;
    r->rows = t->n;
    if (!t->n_face_sets)
        return EC_OK;
    if (!(r->sets = xcalloc(t->n, sizeof *r->sets)))
        return out_of_memory();
    r->rows = 0;
    for (size_t i = 0; i < t->n && rc == EC_OK; i++) {
        if (t->face_sets[i])
            rc = read_face_set(t->inverted_dir, t->names[i], &r->sets[i]);
        if (rc == EC_OK && t->face_sets[i])
            rc = check_face_set_files(&r->d, t->inverted_dir, t->names[i], &r->sets[i]);
        r->rows += t->face_sets[i] ? r->sets[i].n : 1;
    }
    return rc;
}

static void free_face_sets(apply_run *r)
{
    for (size_t i = 0; r->sets && i < r->v->t.n; i++)
        free_face_set(&r->sets[i]);
    free(r->sets);
    r->sets = NULL;
}

static int load_edit(const apply_text *x, const apply_values *v, eo_model m, eo_edit *e)
{
    eo_status st = eo_edit_load(m, x->preset, e);
    if (st != EO_OK)
        return lib_error(st, "loading preset '%s' for model '%s'", x->preset, x->model ? x->model : "(default model)");
    if (x->strength && (st = eo_edit_set_strength(*e, v->strength)) != EO_OK)
        return lib_error(st, "setting the strength to %g", v->strength);
    return EC_OK;
}

/*
 * Before anything is written: the outputs neither repeat nor replace an
 * input, and without --overwrite none exists (outputs.c). When --inverted
 * DIR is also the --out-dir, it may hold the photos that 'editone invert'
 * read from it, with the very names of the edited photos.
 */
static int check_apply_outputs(const apply_text *x, const apply_values *v, run_folder *run)
{
    output_plan p = { 0 };
    image_files images = { x->out_dir, v->ext, v->size, NULL, NULL };
    int rc = run ? check_run_folder(run, &p, &v->t, &images) : EC_OK;
    images.skip = run ? run->done : NULL;
    if (rc == EC_OK)
        rc = plan_input(&p, x->model);
    if (rc == EC_OK)
        rc = plan_input(&p, x->preset);
    if (rc == EC_OK)
        rc = plan_target_inputs(&p, &v->t);
    if (rc == EC_OK && x->alphas)
        rc = plan_output(&p, x->alphas, "--alphas");
    if (rc == EC_OK && x->out_latents)
        rc = plan_output(&p, x->out_latents, "--out-latents-f32");
    if (rc == EC_OK && x->out_dir)
        rc = plan_target_files(&p, &v->t, &images);
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

/* What the chunks write into: the alphas array, the latents file, the image folder. */
static int open_apply_outputs(const apply_text *x, apply_run *r)
{
    int manifest_alphas = r->run && !r->v->has_baseline;
    int rc;
    if ((x->alphas || x->json || manifest_alphas) && !(r->alphas = xcalloc(r->rows ? r->rows : 1, sizeof *r->alphas)))
        return out_of_memory();
    if (x->out_latents && open_output(x->out_latents, &r->latents) != EC_OK)
        return EC_ERROR;
    if (!x->out_dir)
        return EC_OK;
    r->images = (image_files){ x->out_dir, r->v->ext, r->v->size, &r->d, r->run ? r->run->done : NULL };
    rc = make_dirs(x->out_dir);
    return rc == EC_OK && r->run ? write_run_record(r->run) : rc;
}

/*
 * After the chunks (rc): the latents file published (or, after a failure
 * or cancellation, its temporary file removed), then the alphas.
 */
static int finish_apply_outputs(const apply_text *x, apply_run *r, int rc)
{
    rc = close_output(&r->latents, rc);
    if (rc == EC_OK && x->alphas)
        rc = write_alphas_file(&r->v->t, r->sets, r->alphas, x->alphas);
    if (rc == EC_OK && r->run)
        rc = write_manifest(r->run, &r->v->t, r->sets, r->v->has_baseline ? NULL : r->alphas);
    if (rc == EC_OK && x->json)
        write_alphas_json(stdout, &r->v->t, r->sets, r->alphas);
    if (rc == EC_OK && x->out_dir && r->run && r->run->n_done)
        fprintf(stderr, "editone: wrote %zu image%s to %s; %zu were there already (--resume)\n",
                r->v->t.n - r->run->n_done, r->v->t.n - r->run->n_done == 1 ? "" : "s", x->out_dir, r->run->n_done);
    else if (rc == EC_OK && x->out_dir)
        fprintf(stderr, "editone: wrote %zu image%s to %s\n", r->v->t.n, r->v->t.n == 1 ? "" : "s", x->out_dir);
    return rc;
}

/*
 * Sharded or --resume: the output folder's run record, with the
 * fingerprint of the preset and of every option that sets the pixels.
 */
static int prepare_run_folder(const apply_text *x, const apply_values *v, run_folder *run)
{
    char settings[256];
    memset(run, 0, sizeof *run);
    run->dir = x->out_dir;
    run->targets_hash = v->targets_hash;
    run->shard = v->shard.on ? v->shard : (shard_spec){ 1, 0, 1 };
    run->resume = x->resume;
    snprintf(settings, sizeof settings, "strength=%.9g:%d baseline=%d:%u size=%u ext=%s psi=%.9g class=%d:%u",
             v->strength, x->strength != NULL, v->has_baseline, v->baseline, v->size, v->ext, v->t.psi,
             v->t.has_class, v->t.class_index);
    return run_fingerprint(x->preset, settings, &run->fingerprint);
}

static int run_apply(const engine_args *g, const apply_text *x, const apply_values *v)
{
    const char *cmd = "apply";
    apply_run r;
    run_folder run;
    int rc = EC_OK;
    memset(&r, 0, sizeof r);
    memset(&run, 0, sizeof run);
    r.v = v;
    if (v->shard.on || x->resume) {
        r.run = &run;
        rc = prepare_run_folder(x, v, &run);
    }
    if (rc == EC_OK)
        rc = check_apply_outputs(x, v, r.run);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, x->model, &r.m, &r.d);
    if (rc == EC_OK)
        rc = load_edit(x, v, r.m, &r.e);
    if (rc == EC_OK)
        rc = check_targets(cmd, &r.d, &v->t);
    if (rc == EC_OK)
        rc = read_face_sets(&r);
    if (rc == EC_OK && v->t.inverted_dir)
        rc = open_tuned_model(r.m, &v->t, r.sets, &r.tuned);
    if (rc == EC_OK)
        rc = open_apply_outputs(x, &r);
    if (rc == EC_OK)
        rc = apply_chunks(&r);
    rc = finish_apply_outputs(x, &r, rc);
    free_face_sets(&r);
    free_run_folder(&run);
    free(r.alphas);
    release_edit(&r.e);
    release_model(&r.tuned);
    release_model(&r.m);
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
        { "--out-latents-f32", &x.out_latents, NULL }, { "--overwrite", NULL, &g_overwrite },
        { "--shard", &x.shard, NULL },           { "--shards", &x.shards, NULL },
        { "--resume", NULL, &x.resume },
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

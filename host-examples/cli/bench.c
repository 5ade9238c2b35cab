/*
 * editone bench: what a host feels on this machine. Rendering throughput at
 * several batch sizes, optimising d*, recomputing alphas after a strength
 * change, and the whole "edit one, transfer to N, render all" run, streamed
 * in fixed-size batches so that memory stays flat; peak memory is reported.
 * benches/compare.py runs a PyTorch baseline beside it (make bench).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char BENCH_USAGE[] =
    "usage: editone [global options] bench [--model PATH] [--batches LIST]\n"
    "           [--iterations K] [--alphas N] [--count N] [--seconds T] [--json]\n"
    "\n"
    "Measures on this machine:\n"
    "  render       images/s with each batch size of LIST per eo_render_batch call\n"
    "  photo edits  images/s of 16 edits of one photo rendered residually at the\n"
    "               photo's size, beside the same latents rendered plain\n"
    "  optimize     seconds for K AdamW iterations of d* (paper objective)\n"
    "  alphas       ms to recompute the alphas of N latents after a strength change\n"
    "               (eo_edit_set_strength + eo_edit_alphas)\n"
    "  end to end   edit one image (K iterations), transfer the edit to N images and\n"
    "               render them all, streamed in batches of 64, with the transfer +\n"
    "               render part on its own; also for 100 images, to show that peak\n"
    "               memory does not grow with N (with N > 0, this run's d* is the\n"
    "               one timed under optimize)\n"
    "  memory       peak resident memory of the process after each part\n"
    "Each render measurement is warmed up and repeated for at least T seconds.\n"
    "\n"
    "  --model PATH     model file or folder (default: the built-in face model)\n"
    "  --batches LIST   render batch sizes, e.g. 1,8,32 (default)\n"
    "  --iterations K   d* iterations, also in the end-to-end run (default 1000;\n"
    "                   0 skips optimising)\n"
    "  --alphas N       latents for the alpha recomputation (default 100000)\n"
    "  --count N        images in the end-to-end run (default 1000; 0 skips both\n"
    "                   end-to-end runs)\n"
    "  --seconds T      least time per render measurement (default 2)\n"
    "  --json           print one JSON object instead of text\n";

/* Batch size of the streamed end-to-end run. */
#define STREAM_BATCH 64u
/* Most batch sizes in --batches. */
#define MAX_BATCHES 8
/* Memory for distinct latents in the alpha measurement. */
#define ALPHA_MEMORY (256u << 20)

/* One timed measurement: `items` things done in `seconds`. */
typedef struct {
    uint64_t items;
    double seconds;
} timing;

static double per_second(timing t)
{
    return t.seconds > 0 ? (double)t.items / t.seconds : 0.0;
}

/* Image views for `batch` RGBA images of width x height, in one block. */
static int make_views(uint32_t width, uint32_t height, size_t batch, eo_image_view **views, uint8_t **pixels)
{
    size_t stride = (size_t)width * 4;
    size_t bytes = stride * height;
    *views = xcalloc(batch, sizeof **views);
    *pixels = xcalloc(batch, bytes);
    if (!*views || !*pixels) {
        free(*views);
        free(*pixels);
        return out_of_memory();
    }
    for (size_t i = 0; i < batch; i++) {
        (*views)[i].data = *pixels + i * bytes;
        (*views)[i].width = width;
        (*views)[i].height = height;
        (*views)[i].stride = (uint32_t)stride;
        (*views)[i].format = EO_PIXEL_RGBA8;
    }
    return EC_OK;
}

/*
 * Renders `batch` latents per call into width x height views: one warm-up
 * call, then calls for at least `min_s`.
 */
static int time_render_at(const eo_latent *ls, size_t batch, uint32_t width, uint32_t height, double min_s,
                          timing *out)
{
    eo_image_view *views;
    uint8_t *pixels;
    double start = 0.0;
    int rc = make_views(width, height, batch, &views, &pixels);
    memset(out, 0, sizeof *out);
    for (int warm = 1; rc == EC_OK; warm = 0) {
        eo_status st = eo_render_batch(ls, batch, views, on_progress_quiet, NULL);
        if (st != EO_OK) {
            rc = lib_error(st, "rendering a batch of %zu", batch);
            break;
        }
        if (warm) {
            start = now_s();
            continue;
        }
        out->items += batch;
        out->seconds = now_s() - start;
        if (out->seconds >= min_s)
            break;
    }
    free(views);
    free(pixels);
    return rc;
}

/* time_render_at at the model's own size. */
static int time_render(const eo_latent *ls, size_t batch, const eo_model_desc *d, double min_s, timing *out)
{
    return time_render_at(ls, batch, d->resolution, d->resolution, min_s, out);
}

/* Peak resident memory of this process so far, in MiB. */
static double peak_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* Latents from seeds first..first+n-1 (classes cycled for conditional models). */
static int make_latents(eo_model m, const eo_model_desc *d, uint64_t first, eo_latent *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t seed = first + i;
        int rc;
        if (g_interrupted)
            return cancelled("making latents");
        rc = latent_from_seed(m, d, seed, d->c_dim ? (uint32_t)(seed % d->c_dim) : 0, 1.0f, &ls[i]);
        if (rc != EC_OK)
            return rc;
    }
    return EC_OK;
}

/* The benchmark's edit: seed 0 toward seed 1, optimised for `iterations`. */
static int make_edit(eo_model m, const eo_model_desc *d, uint32_t iterations, eo_edit *e, double *seconds)
{
    eo_latent pair[2] = { { 0 }, { 0 } };
    eo_optimize_options opts;
    eo_status st;
    int rc = make_latents(m, d, 0, pair, 2);
    if (rc == EC_OK && (st = eo_edit_from_latents(pair[0], pair[1], e)) != EO_OK)
        rc = lib_error(st, "making an edit");
    if (rc == EC_OK && (st = eo_optimize_options_init(&opts)) != EO_OK)
        rc = lib_error(st, "preparing optimisation options");
    *seconds = 0.0;
    if (rc == EC_OK && iterations > 0) {
        double start = now_s();
        opts.iterations = iterations;
        opts.patience = 0;
        st = eo_edit_optimize(*e, &opts, on_progress_quiet, NULL);
        *seconds = now_s() - start;
        if (st != EO_OK)
            rc = lib_error(st, "optimising d* for %u iterations", iterations);
    }
    release_latents(pair, 2);
    return rc;
}

/* Alphas of n latents (distinct ones up to the memory budget, then
 * repeated) after a strength change: the first call projects, the timed
 * ones only subtract. */
static int time_alphas(eo_model m, const eo_model_desc *d, eo_edit e, size_t n, double *ms)
{
    size_t latent_bytes = (size_t)d->num_ws * d->w_dim * sizeof(float) + 64;
    size_t distinct = ALPHA_MEMORY / latent_bytes;
    eo_latent *ls, *targets;
    float *alphas;
    eo_status st;
    int rc = EC_OK;
    if (distinct > n)
        distinct = n;
    ls = xcalloc(distinct, sizeof *ls);
    targets = xcalloc(n, sizeof *targets);
    alphas = xcalloc(n, sizeof *alphas);
    if (!ls || !targets || !alphas)
        rc = out_of_memory();
    if (rc == EC_OK)
        rc = make_latents(m, d, 1000, ls, distinct);
    for (size_t i = 0; rc == EC_OK && i < n; i++)
        targets[i] = ls[i % distinct];
    if (rc == EC_OK && (st = eo_edit_alphas(e, targets, n, alphas)) != EO_OK)
        rc = lib_error(st, "computing the alphas of %zu latents", n);
    *ms = 0.0;
    for (int run = 0; rc == EC_OK && run < 5; run++) {
        double start = now_s();
        if ((st = eo_edit_set_strength(e, 0.5f * (float)(run + 1))) != EO_OK ||
            (st = eo_edit_alphas(e, targets, n, alphas)) != EO_OK)
            rc = lib_error(st, "recomputing the alphas");
        double took = (now_s() - start) * 1e3;
        if (run == 0 || took < *ms)
            *ms = took;
    }
    free(targets);
    free(alphas);
    if (ls)
        free_latents(ls, distinct);
    return rc;
}

/* Transfers the edit to seeds 2000.. and renders every result, STREAM_BATCH
 * images at a time, each batch released before the next. */
static int stream_transfer(eo_model m, const eo_model_desc *d, eo_edit e, size_t n)
{
    eo_latent ls[STREAM_BATCH], edited[STREAM_BATCH];
    float alphas[STREAM_BATCH];
    eo_image_view *views;
    uint8_t *pixels;
    int rc = make_views(d->resolution, d->resolution, STREAM_BATCH, &views, &pixels);
    for (size_t done = 0; rc == EC_OK && done < n; done += STREAM_BATCH) {
        size_t k = n - done < STREAM_BATCH ? n - done : STREAM_BATCH;
        eo_status st;
        memset(ls, 0, sizeof ls);
        memset(edited, 0, sizeof edited);
        rc = make_latents(m, d, 2000 + done, ls, k);
        if (rc == EC_OK && (st = eo_edit_apply_batch(e, ls, k, edited, alphas)) != EO_OK)
            rc = lib_error(st, "applying the edit to %zu latents", k);
        if (rc == EC_OK && (st = eo_render_batch(edited, k, views, on_progress_quiet, NULL)) != EO_OK)
            rc = lib_error(st, "rendering %zu edited images", k);
        release_latents(ls, k);
        release_latents(edited, k);
        if (rc == EC_OK && g_interrupted)
            rc = cancelled("the end-to-end run");
    }
    free(views);
    free(pixels);
    return rc;
}

/* One "edit one, transfer to n, render all" run. */
typedef struct {
    double seconds;    /* the whole run */
    double optimize_s; /* of which optimising d* */
    double peak_mib;   /* peak resident memory after it */
} e2e_timing;

static int time_end_to_end(eo_model m, const eo_model_desc *d, uint32_t iterations, size_t n, e2e_timing *out)
{
    eo_edit e = { 0 };
    double start = now_s();
    int rc = make_edit(m, d, iterations, &e, &out->optimize_s);
    if (rc == EC_OK)
        rc = stream_transfer(m, d, e, n);
    out->seconds = now_s() - start;
    out->peak_mib = peak_mib();
    release_edit(&e);
    return rc;
}

/* Edits of one photo in the photo measurement. */
#define PHOTO_EDITS 16u

/*
 * PHOTO_EDITS edits of one photo latent (seed 0's latent carrying a
 * synthetic photo half as wide again as the model's square), moved along
 * one W axis by different strengths; and the same latents without the
 * photo.
 */
static int make_photo_edits(eo_model m, const eo_model_desc *d, eo_latent *residual, eo_latent *plain)
{
    uint32_t w = d->resolution * 3 / 2, h = d->resolution;
    uint8_t *pixels = xcalloc((size_t)w * h, 3);
    float *w0 = NULL, *dir = xcalloc(d->w_dim, sizeof *dir), *moved = NULL;
    eo_latent seed = { 0 }, photo = { 0 };
    eo_edit e = { 0 };
    eo_status st = EO_OK;
    int rc = pixels && dir ? latent_from_seed(m, d, 0, 0, 1.0f, &seed) : out_of_memory();
    for (size_t i = 0; pixels && i < (size_t)w * h * 3; i++)
        pixels[i] = (uint8_t)(i * 7 / 3);
    if (rc == EC_OK)
        rc = read_latent(seed, d, &w0);
    eo_image_view view = { pixels, w, h, w * 3, EO_PIXEL_RGB8 };
    if (rc == EC_OK && (st = eo_latent_from_w_photo(m, w0, latent_floats(d), &view, &photo)) == EO_OK) {
        dir[0] = 1.0f;
        st = eo_edit_from_direction(photo, dir, d->w_dim, 1.0f, &e);
    }
    for (size_t i = 0; rc == EC_OK && st == EO_OK && i < PHOTO_EDITS; i++) {
        if ((st = eo_edit_set_strength(e, 0.25f * (float)i)) == EO_OK && (st = eo_edit_apply(e, photo, &residual[i])) == EO_OK &&
            (rc = read_latent(residual[i], d, &moved)) == EC_OK)
            st = eo_latent_from_w(m, moved, latent_floats(d), &plain[i]);
        free(moved);
        moved = NULL;
    }
    if (rc == EC_OK && st != EO_OK)
        rc = lib_error(st, "making the photo's edits");
    release_edit(&e), release_latent(&photo), release_latent(&seed);
    free(pixels), free(dir), free(w0);
    return rc;
}

/*
 * The photo's edits rendered residually at the photo's size in one batch,
 * beside the same latents rendered plain: the photo's own latent is
 * rendered once per photo, so the two differ by the compositing alone.
 */
static int time_photo_edits(eo_model m, const eo_model_desc *d, double min_s, timing *residual, timing *plain)
{
    eo_latent with_photo[PHOTO_EDITS] = { 0 }, without[PHOTO_EDITS] = { 0 };
    int rc = make_photo_edits(m, d, with_photo, without);
    if (rc == EC_OK)
        rc = time_render_at(with_photo, PHOTO_EDITS, d->resolution * 3 / 2, d->resolution, min_s, residual);
    if (rc == EC_OK)
        rc = time_render(without, PHOTO_EDITS, d, min_s, plain);
    release_latents(with_photo, PHOTO_EDITS);
    release_latents(without, PHOTO_EDITS);
    return rc;
}

typedef struct {
    const char *model;
    char *device;
    uint32_t threads, iterations;
    size_t batches[MAX_BATCHES], n_batches, alphas_n, count;
    timing render[MAX_BATCHES], photo_residual, photo_plain;
    double optimize_s, alphas_ms, peak_after_render;
    e2e_timing e2e_small, e2e; /* 100 images without optimising, then count images */
} bench_result;

static void print_e2e_json(size_t images, const e2e_timing *t)
{
    printf("{\"images\": %zu, \"seconds\": ", images);
    json_number(stdout, t->seconds);
    fputs(", \"optimize_seconds\": ", stdout);
    json_number(stdout, t->optimize_s);
    fputs(", \"transfer_seconds\": ", stdout);
    json_number(stdout, t->seconds - t->optimize_s);
    fputs(", \"peak_mib\": ", stdout);
    json_number(stdout, t->peak_mib);
    fputc('}', stdout);
}

static void print_bench_json(const bench_result *b, const eo_model_desc *d)
{
    fputs("{\"library\": ", stdout);
    json_string(stdout, eo_version());
    fputs(", \"device\": ", stdout);
    json_string(stdout, b->device);
    printf(", \"threads\": %u, \"model\": ", b->threads);
    json_string(stdout, b->model);
    printf(", \"architecture\": \"%s\", \"resolution\": %u, \"render\": [", d->architecture, d->resolution);
    for (size_t i = 0; i < b->n_batches; i++) {
        printf("%s{\"batch\": %zu, \"images_per_s\": ", i ? ", " : "", b->batches[i]);
        json_number(stdout, per_second(b->render[i]));
        fputc('}', stdout);
    }
    printf("], \"photo_edits\": {\"batch\": %u, \"residual_images_per_s\": ", PHOTO_EDITS);
    json_number(stdout, per_second(b->photo_residual));
    fputs(", \"plain_images_per_s\": ", stdout);
    json_number(stdout, per_second(b->photo_plain));
    printf("}, \"optimize\": {\"iterations\": %u, \"seconds\": ", b->iterations);
    json_number(stdout, b->optimize_s);
    printf("}, \"alphas\": {\"latents\": %zu, \"ms\": ", b->alphas_n);
    json_number(stdout, b->alphas_ms);
    printf("}, \"end_to_end\": [");
    print_e2e_json(100, &b->e2e_small);
    fputs(", ", stdout);
    print_e2e_json(b->count, &b->e2e);
    fputs("], \"peak_mib_after_render\": ", stdout);
    json_number(stdout, b->peak_after_render);
    fputs("}\n", stdout);
}

static void print_bench_text(const bench_result *b, const eo_model_desc *d)
{
    printf("library:            libeditone %s (ABI %u)\n", eo_version(), eo_abi_version());
    printf("device:             %s, %u CPU threads\n", b->device, b->threads);
    printf("model:              %s (%s, %ux%u)\n", b->model, d->architecture, d->resolution, d->resolution);
    for (size_t i = 0; i < b->n_batches; i++)
        printf("render, batch %-4zu  %8.2f images/s (%" PRIu64 " images in %.2f s)\n", b->batches[i],
               per_second(b->render[i]), b->render[i].items, b->render[i].seconds);
    printf("photo edits, %u:    %8.2f images/s residual at %ux%u, %.2f images/s plain (the photo's own\n"
           "                    latent renders once per photo)\n",
           PHOTO_EDITS, per_second(b->photo_residual), d->resolution * 3 / 2, d->resolution, per_second(b->photo_plain));
    if (b->iterations)
        printf("optimize d*:        %u iterations in %.2f s (%.1f ms each)\n", b->iterations, b->optimize_s,
               b->optimize_s * 1e3 / b->iterations);
    printf("alphas:             %.3f ms for %zu latents after a strength change\n", b->alphas_ms, b->alphas_n);
    if (b->count == 0)
        return;
    printf("end to end, 100:    %.2f s, peak memory %.0f MiB\n", b->e2e_small.seconds, b->e2e_small.peak_mib);
    printf("end to end, %-6zu  %.2f s: optimise %.2f s, transfer + render %.2f s (%.1f ms per image); "
           "peak memory %.0f MiB\n", b->count, b->e2e.seconds, b->e2e.optimize_s, b->e2e.seconds - b->e2e.optimize_s,
           (b->e2e.seconds - b->e2e.optimize_s) * 1e3 / (double)b->count, b->e2e.peak_mib);
}

/* "1,8,32" to batch sizes. */
static int parse_batches(const char *cmd, const char *text, bench_result *b)
{
    char *copy = strdup(text), *save = NULL;
    int rc = copy ? EC_OK : out_of_memory();
    b->n_batches = 0;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; rc == EC_OK && tok; tok = strtok_r(NULL, ",", &save)) {
        uint32_t v;
        if (b->n_batches == MAX_BATCHES)
            rc = usage_error(cmd, "--batches: at most %d sizes", MAX_BATCHES);
        else if (opt_u32(cmd, "--batches", tok, 1, 4096, &v))
            rc = EC_USAGE;
        else
            b->batches[b->n_batches++] = v;
    }
    if (rc == EC_OK && b->n_batches == 0)
        rc = usage_error(cmd, "--batches: give sizes like 1,8,32");
    free(copy);
    return rc;
}

static int run_renders(eo_model m, const eo_model_desc *d, bench_result *b, double min_s)
{
    size_t most = 1;
    eo_latent *ls;
    int rc;
    for (size_t i = 0; i < b->n_batches; i++)
        most = b->batches[i] > most ? b->batches[i] : most;
    ls = xcalloc(most, sizeof *ls);
    if (!ls)
        return out_of_memory();
    rc = make_latents(m, d, 0, ls, most);
    for (size_t i = 0; rc == EC_OK && i < b->n_batches; i++)
        rc = time_render(ls, b->batches[i], d, min_s, &b->render[i]);
    free_latents(ls, most);
    b->peak_after_render = peak_mib();
    return rc;
}

/*
 * The end-to-end runs come first: peak RSS only ever rises, so they must
 * run before the larger render batches and the alphas' latents, or their
 * peaks could not show whether memory grows with the image count. The
 * full run's optimisation is the one timed, so that d* runs once.
 */
static int run_bench(eo_model m, const eo_model_desc *d, bench_result *b, double min_s)
{
    eo_edit e = { 0 };
    double unused;
    int rc = EC_OK;
    if (b->count > 0)
        rc = time_end_to_end(m, d, 0, 100, &b->e2e_small);
    if (rc == EC_OK && b->count > 0) {
        rc = time_end_to_end(m, d, b->iterations, b->count, &b->e2e);
        b->optimize_s = b->e2e.optimize_s;
    }
    if (rc == EC_OK)
        rc = run_renders(m, d, b, min_s);
    if (rc == EC_OK)
        rc = time_photo_edits(m, d, min_s, &b->photo_residual, &b->photo_plain);
    if (rc == EC_OK)
        rc = make_edit(m, d, b->count > 0 ? 0 : b->iterations, &e, b->count > 0 ? &unused : &b->optimize_s);
    if (rc == EC_OK)
        rc = time_alphas(m, d, e, b->alphas_n, &b->alphas_ms);
    release_edit(&e);
    return rc;
}

int cmd_bench(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "bench", *count_text = NULL, *batches_text = NULL, *seconds_text = NULL;
    const char *iterations_text = NULL, *alphas_text = NULL;
    bench_result b;
    int json = 0;
    uint64_t count = 1000, alphas = 100000;
    float min_s = 2.0f;
    eo_model m = { 0 };
    eo_model_desc d;
    eo_status st;
    memset(&b, 0, sizeof b);
    b.iterations = 1000;
    option opts[] = {
        { "--model", &b.model, NULL },          { "--batches", &batches_text, NULL },
        { "--iterations", &iterations_text, NULL }, { "--alphas", &alphas_text, NULL },
        { "--count", &count_text, NULL },       { "--seconds", &seconds_text, NULL },
        { "--json", NULL, &json },
    };
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        return show_help(BENCH_USAGE);
    if (rc != EC_OK)
        return rc;
    if ((count_text && opt_u64(cmd, "--count", count_text, 0, MAX_TARGETS, &count)) ||
        (alphas_text && opt_u64(cmd, "--alphas", alphas_text, 1, 100000000, &alphas)) ||
        (iterations_text && opt_u32(cmd, "--iterations", iterations_text, 0, 1000000, &b.iterations)) ||
        (seconds_text && opt_float(cmd, "--seconds", seconds_text, 0.0, 3600.0, &min_s)))
        return EC_USAGE;
    rc = parse_batches(cmd, batches_text ? batches_text : "1,8,32", &b);
    if (rc != EC_OK)
        return rc;
    b.count = (size_t)count;
    b.alphas_n = (size_t)alphas;
    if (!b.model)
        b.model = "(default model)";

    rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, strcmp(b.model, "(default model)") ? b.model : NULL, &m, &d);
    if (rc == EC_OK)
        rc = device_name(&b.device);
    if (rc == EC_OK && (st = eo_cpu_threads(&b.threads)) != EO_OK)
        rc = lib_error(st, "reading the thread count");
    if (rc == EC_OK)
        rc = run_bench(m, &d, &b, min_s);
    if (rc == EC_OK) {
        if (json)
            print_bench_json(&b, &d);
        else
            print_bench_text(&b, &d);
    }
    free(b.device);
    release_model(&m);
    return rc;
}

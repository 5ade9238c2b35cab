/*
 * editone bench: rendering and editing throughput on this machine.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char BENCH_USAGE[] =
    "usage: editone [global options] bench [--model PATH] [--count N] [--batch B]\n"
    "           [--seconds T] [--json]\n"
    "\n"
    "Measures on this machine: rendering throughput (images/s) with batches of\n"
    "1 and B images per call, making latents from seeds, and applying an edit\n"
    "with per-image strengths (apply+alpha) to N latents. Each measurement is\n"
    "warmed up first and repeated for at least T seconds.\n"
    "\n"
    "  --model PATH   model file or folder (default: the built-in face model)\n"
    "  --count N      latents for the apply+alpha measurement (default 1000)\n"
    "  --batch B      images per render call for the batched measurement (default 8)\n"
    "  --seconds T    least time per render measurement (default 2)\n"
    "  --json         print one JSON object instead of text\n";

/* One timed measurement: `items` things done in `seconds`. */
typedef struct {
    uint64_t items;
    double seconds;
} timing;

static double per_second(timing t)
{
    return t.seconds > 0 ? (double)t.items / t.seconds : 0.0;
}

/* Image views for `batch` RGBA images of the model's size, in one block. */
static int make_views(const eo_model_desc *d, size_t batch, eo_image_view **views, uint8_t **pixels)
{
    size_t stride = (size_t)d->resolution * 4;
    size_t bytes = stride * d->resolution;
    *views = xcalloc(batch, sizeof **views);
    *pixels = xcalloc(batch, bytes);
    if (!*views || !*pixels) {
        free(*views);
        free(*pixels);
        return out_of_memory();
    }
    for (size_t i = 0; i < batch; i++) {
        (*views)[i].data = *pixels + i * bytes;
        (*views)[i].width = d->resolution;
        (*views)[i].height = d->resolution;
        (*views)[i].stride = (uint32_t)stride;
        (*views)[i].format = EO_PIXEL_RGBA8;
    }
    return EC_OK;
}

/* Renders `batch` latents per call: one warm-up call, then calls for at least `min_s`. */
static int time_render(const eo_latent *ls, size_t batch, const eo_model_desc *d, double min_s, timing *out)
{
    eo_image_view *views;
    uint8_t *pixels;
    double start = 0.0;
    int rc = make_views(d, batch, &views, &pixels);
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

/* Makes n latents from seeds 0..n-1 (classes cycled for conditional models). */
static int time_latents(eo_model m, const eo_model_desc *d, eo_latent *ls, size_t n, timing *out)
{
    double start = now_s();
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (g_interrupted)
            return cancelled("making latents");
        rc = latent_from_seed(m, d, i, d->c_dim ? (uint32_t)(i % d->c_dim) : 0, 1.0f, &ls[i]);
        if (rc != EC_OK)
            return rc;
    }
    out->items = n;
    out->seconds = now_s() - start;
    return EC_OK;
}

/* One eo_edit_apply_batch with alphas over `n` latents; the new handles are released. */
static int apply_once(eo_edit e, const eo_latent *ls, size_t n, eo_latent *edited, float *alphas)
{
    eo_status st = eo_edit_apply_batch(e, ls, n, edited, alphas);
    if (st != EO_OK)
        return lib_error(st, "applying the edit to %zu latents", n);
    for (size_t i = 0; i < n; i++)
        release_latent(&edited[i]);
    return EC_OK;
}

/* An edit from latent 0 toward latent 1, applied (warm-up, then timed) to n latents. */
static int time_apply(const eo_latent *ls, size_t n, timing *out)
{
    eo_edit e = { 0 };
    eo_latent *edited = xcalloc(n, sizeof *edited);
    float *alphas = xcalloc(n, sizeof *alphas);
    eo_status st;
    double start;
    int rc = EC_OK;
    if (!edited || !alphas)
        rc = out_of_memory();
    if (rc == EC_OK && (st = eo_edit_from_latents(ls[0], ls[1], &e)) != EO_OK)
        rc = lib_error(st, "making an edit");
    if (rc == EC_OK)
        rc = apply_once(e, ls, n < 8 ? n : 8, edited, alphas);
    start = now_s();
    if (rc == EC_OK)
        rc = apply_once(e, ls, n, edited, alphas);
    out->items = n;
    out->seconds = now_s() - start;
    release_edit(&e);
    free(edited);
    free(alphas);
    return rc;
}

typedef struct {
    const char *model;
    char *device;
    uint32_t threads, batch;
    timing render1, render_b, latents, apply;
} bench_result;

static void print_bench_json(const bench_result *b, const eo_model_desc *d)
{
    fputs("{\"device\": ", stdout);
    json_string(stdout, b->device);
    printf(", \"threads\": %u, \"model\": ", b->threads);
    json_string(stdout, b->model);
    printf(", \"resolution\": %u, \"render\": [{\"batch\": 1, \"images\": %" PRIu64 ", \"seconds\": ",
           d->resolution, b->render1.items);
    json_number(stdout, b->render1.seconds);
    fputs(", \"images_per_s\": ", stdout);
    json_number(stdout, per_second(b->render1));
    printf("}, {\"batch\": %u, \"images\": %" PRIu64 ", \"seconds\": ", b->batch, b->render_b.items);
    json_number(stdout, b->render_b.seconds);
    fputs(", \"images_per_s\": ", stdout);
    json_number(stdout, per_second(b->render_b));
    printf("}], \"latents_from_seeds\": {\"count\": %" PRIu64 ", \"per_s\": ", b->latents.items);
    json_number(stdout, per_second(b->latents));
    printf("}, \"apply_alpha\": {\"count\": %" PRIu64 ", \"seconds\": ", b->apply.items);
    json_number(stdout, b->apply.seconds);
    fputs(", \"latents_per_s\": ", stdout);
    json_number(stdout, per_second(b->apply));
    fputs("}}\n", stdout);
}

static void print_bench_text(const bench_result *b, const eo_model_desc *d)
{
    printf("device:             %s, %u CPU threads\n", b->device, b->threads);
    printf("model:              %s (%s, %ux%u)\n", b->model, d->architecture, d->resolution, d->resolution);
    printf("render, batch 1:    %.2f images/s (%" PRIu64 " images in %.2f s)\n", per_second(b->render1),
           b->render1.items, b->render1.seconds);
    printf("render, batch %-4u  %.2f images/s (%" PRIu64 " images in %.2f s)\n", b->batch,
           per_second(b->render_b), b->render_b.items, b->render_b.seconds);
    printf("latents from seeds: %.1f latents/s (%" PRIu64 " in %.3f s)\n", per_second(b->latents),
           b->latents.items, b->latents.seconds);
    printf("apply+alpha:        %.1f latents/s (%" PRIu64 " in %.4f s)\n", per_second(b->apply),
           b->apply.items, b->apply.seconds);
}

static int run_bench_timings(eo_model m, const eo_model_desc *d, bench_result *b, size_t count, double min_s)
{
    size_t n = count > b->batch ? count : b->batch;
    eo_latent *ls;
    int rc;
    if (n < 2)
        n = 2;
    ls = xcalloc(n, sizeof *ls);
    if (!ls)
        return out_of_memory();
    rc = time_latents(m, d, ls, n, &b->latents);
    if (rc == EC_OK)
        rc = time_render(ls, 1, d, min_s, &b->render1);
    if (rc == EC_OK)
        rc = time_render(ls, b->batch, d, min_s, &b->render_b);
    if (rc == EC_OK)
        rc = time_apply(ls, count, &b->apply);
    free_latents(ls, n);
    return rc;
}

int cmd_bench(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "bench", *count_text = NULL, *batch_text = NULL, *seconds_text = NULL;
    bench_result b;
    int json = 0;
    uint64_t count = 1000;
    float min_s = 2.0f;
    eo_model m = { 0 };
    eo_model_desc d;
    eo_status st;
    memset(&b, 0, sizeof b);
    b.batch = 8;
    option opts[] = {
        { "--model", &b.model, NULL },        { "--count", &count_text, NULL },
        { "--batch", &batch_text, NULL },     { "--seconds", &seconds_text, NULL },
        { "--json", NULL, &json },
    };
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        return show_help(BENCH_USAGE);
    if (rc != EC_OK)
        return rc;
    if ((count_text && opt_u64(cmd, "--count", count_text, 2, MAX_TARGETS, &count)) ||
        (batch_text && opt_u32(cmd, "--batch", batch_text, 1, 4096, &b.batch)) ||
        (seconds_text && opt_float(cmd, "--seconds", seconds_text, 0.0, 3600.0, &min_s)))
        return EC_USAGE;

    rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, b.model, &m, &d);
    if (rc == EC_OK)
        rc = device_name(&b.device);
    if (rc == EC_OK && (st = eo_cpu_threads(&b.threads)) != EO_OK)
        rc = lib_error(st, "reading the thread count");
    if (rc == EC_OK)
        rc = run_bench_timings(m, &d, &b, (size_t)count, min_s);
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

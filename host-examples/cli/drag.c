/*
 * edit --drag: the example edit made by dragging points (DragGAN), with
 * the dragged example and a strip of intermediate steps for --preview.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* "X1,Y1:X2,Y2" to a handle and a target. */
static int parse_pair(const char *cmd, const char *text, eo_point *handle, eo_point *target)
{
    float v[4];
    const char *s = text;
    for (int i = 0; i < 4; i++) {
        char *end;
        double d = strtod(s, &end);
        char want = i == 3 ? '\0' : i == 1 ? ':' : ',';
        if (end == s || *end != want || d != d || d < -1e6 || d > 1e6)
            return usage_error(cmd, "--drag: '%s' is not X1,Y1:X2,Y2", text);
        v[i] = (float)d;
        s = end + 1;
    }
    *handle = (eo_point){ v[0], v[1] };
    *target = (eo_point){ v[2], v[3] };
    return EC_OK;
}

int parse_drags(const char *cmd, const char *const *texts, size_t n, eo_point **handles, eo_point **targets)
{
    *handles = xcalloc(n, sizeof **handles);
    *targets = xcalloc(n, sizeof **targets);
    if (!*handles || !*targets)
        return out_of_memory();
    for (size_t i = 0; i < n; i++)
        if (parse_pair(cmd, texts[i], &(*handles)[i], &(*targets)[i]))
            return EC_USAGE;
    return EC_OK;
}

/* The strip: one image per snapshot, side by side, built as the drag runs. */
typedef struct {
    uint8_t *pixels; /* res x (res * capacity) RGB */
    uint32_t res, count, capacity;
    int failed;
} strip;

static int32_t on_snapshot(void *user, uint32_t step, eo_latent current, const eo_point *positions, size_t n)
{
    strip *s = user;
    (void)step;
    (void)positions;
    (void)n;
    if (s->count < s->capacity) {
        size_t stride = (size_t)s->res * s->capacity * 3;
        eo_image_view view = { s->pixels + (size_t)s->count * s->res * 3, s->res, s->res, (uint32_t)stride, EO_PIXEL_RGB8 };
        if (eo_render(current, &view) != EO_OK)
            s->failed = 1;
        s->count++;
    }
    return g_interrupted ? 1 : 0;
}

static int write_strip(const strip *s, const char *dir)
{
    eo_image_view view = { s->pixels, s->res * s->count, s->res, s->res * s->capacity * 3, EO_PIXEL_RGB8 };
    char *path = path_join(dir, "drag-strip.png");
    eo_status st;
    int rc = make_dirs(dir);
    if (!path)
        return out_of_memory();
    if (rc != EC_OK)
        ;
    else if (s->failed)
        rc = fail("rendering the drag's intermediate steps failed");
    else if ((st = eo_image_write_ex(&view, path, write_flags())) != EO_OK)
        rc = write_error(st, path);
    free(path);
    return rc;
}

/* DIR/dragged.png: the example as the drag left it (w0 + dw). */
static int write_dragged(eo_edit e, eo_latent example, const char *dir)
{
    eo_latent dragged = { 0 };
    eo_status st = eo_edit_apply(e, example, &dragged);
    int rc = st == EO_OK ? render_one_file(dragged, dir, "dragged.png", 0) : lib_error(st, "applying the drag");
    release_latent(&dragged);
    return rc;
}

int edit_from_drags(const eo_model_desc *d, eo_latent example, const drag_request *r, eo_edit *e)
{
    eo_drag_options opts;
    eo_image_view mask = { 0 };
    strip s = { 0 };
    uint32_t steps = 0, reached = 0;
    eo_point *where = xcalloc(r->n, sizeof *where);
    progress p;
    eo_status st = eo_drag_options_init(&opts);
    int rc = where ? EC_OK : out_of_memory();
    if (rc == EC_OK && st != EO_OK)
        rc = lib_error(st, "preparing drag options");
    if (rc == EC_OK && r->mask)
        rc = read_image(r->mask, EO_PIXEL_GRAY8, &mask); /* its size is the points' image size */
    if (rc == EC_OK && r->preview) {
        s.res = d->resolution;
        s.capacity = opts.max_steps / r->strip_every + 2;
        s.pixels = xcalloc((size_t)s.res * s.res * s.capacity, 3);
        if (!s.pixels)
            rc = out_of_memory();
        opts.snapshot_every = r->strip_every;
        opts.snapshot = on_snapshot;
        opts.snapshot_user = &s;
    }
    if (rc == EC_OK) {
        opts.image_width = r->mask ? mask.width : 0;
        opts.image_height = r->mask ? mask.height : 0;
        opts.mask = r->mask ? &mask : NULL;
        opts.positions = where;
        opts.steps = &steps;
        opts.reached = &reached;
        progress_start(&p, "drag");
        st = eo_edit_from_drag(example, r->handles, r->targets, r->n, &opts, on_progress, &p, e);
        progress_finish(&p);
        if (st != EO_OK)
            rc = lib_error(st, "dragging the example");
    }
    if (rc == EC_OK) {
        printf("drag: %u steps, %s\n", steps, reached ? "every handle reached its target" : "stopped at max steps");
        for (size_t i = 0; i < r->n; i++)
            printf("  handle %zu: (%g, %g) -> (%g, %g), target (%g, %g)\n", i, r->handles[i].x, r->handles[i].y,
                   where[i].x, where[i].y, r->targets[i].x, r->targets[i].y);
    }
    if (rc == EC_OK && r->preview)
        rc = write_strip(&s, r->preview);
    if (rc == EC_OK && r->preview)
        rc = write_dragged(*e, example, r->preview);
    free(s.pixels);
    free(mask.data);
    free(where);
    return rc;
}

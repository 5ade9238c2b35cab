/*
 * editone faces: the faces of photos, as JSON, with a drawn preview; and
 * what 'invert --faces' shares with it: the detector and its options,
 * --align, the JSON of a face, the "no face" report.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char FACES_USAGE[] =
    "usage: editone [global options] faces PHOTO... [--threshold F] [--min-face PX]\n"
    "           [--detector PATH] [--preview DIR] [--overwrite]\n"
    "\n"
    "Finds the faces in photos (PNG or JPEG) with the MTCNN detector and prints,\n"
    "for each PHOTO, one line of JSON:\n"
    "  {\"photo\": PATH, \"width\": W, \"height\": H, \"faces\": [{\"index\": 0,\n"
    "   \"box\": [LEFT, TOP, RIGHT, BOTTOM], \"score\": S, \"landmarks\": [[X, Y] x 5]},\n"
    "   ...]}\n"
    "in the photo's pixels (pixel centres on whole numbers), largest face first;\n"
    "the landmarks are the left eye, right eye, nose tip, left and right mouth\n"
    "corners as seen in the picture. 'index' is the K of 'editone invert --face K'.\n"
    "\n"
    "  --threshold F    drop faces the detector scores below F, 0..1 (default: the\n"
    "                   library's, %g)\n"
    "  --min-face PX    the smallest face searched for, in photo pixels, at least 12\n"
    "                   (default %g; smaller is slower)\n"
    "  --detector PATH  the converted MTCNN file (default: the one 'make setup'\n"
    "                   installs, or $EDITONE_FACE_DETECTOR)\n"
    "  --preview DIR    also write DIR/NAME-faces.png for each PHOTO NAME.*: the\n"
    "                   photo with each face's box, index and landmarks drawn\n"
    "  --overwrite      replace preview files that exist (never a PHOTO)\n"
    "\n"
    "A photo with no face is listed with \"faces\": [] and named on stderr; the\n"
    "other photos are still done, and the exit status is then 4. A photo that\n"
    "cannot be read (missing, not an image, under 12 pixels on a side, over\n"
    "the library's size limit) stops the run with status 1.\n";

/* ------------------------------------------------------------------ */
/* Alignment                                                           */
/* ------------------------------------------------------------------ */

static const char *const ALIGN_NAMES[] = { "template", "ffhq", "none" };

/* --align template|ffhq|none into EO_ALIGN_*. */
int parse_align(const char *cmd, const char *name, const char *text, eo_align *out)
{
    for (size_t i = 0; i < COUNT_OF(ALIGN_NAMES); i++)
        if (strcmp(text, ALIGN_NAMES[i]) == 0) {
            *out = EO_ALIGN_TEMPLATE + (eo_align)i;
            return EC_OK;
        }
    return usage_error(cmd, "%s: '%s' is not template, ffhq or none", name, text);
}

/* "template", "ffhq", "none", or "model" for EO_ALIGN_MODEL. */
const char *align_name(eo_align a)
{
    if (a >= EO_ALIGN_TEMPLATE && a <= EO_ALIGN_NONE)
        return ALIGN_NAMES[a - EO_ALIGN_TEMPLATE];
    return "model";
}

/* ------------------------------------------------------------------ */
/* The detector                                                        */
/* ------------------------------------------------------------------ */

/* The library's defaults with --threshold and --min-face applied (usage errors reported). */
int parse_detect_options(const char *cmd, const detect_text *x, eo_detect_options *o)
{
    eo_status st = eo_detect_options_init(o);
    if (st != EO_OK)
        return lib_error(st, "preparing the detector's options");
    if (x->threshold && opt_float(cmd, "--threshold", x->threshold, 0.0, 1.0, &o->score_threshold))
        return EC_USAGE;
    if (x->min_face && opt_float(cmd, "--min-face", x->min_face, 12.0, MAX_SIDE, &o->min_face_size))
        return EC_USAGE;
    return EC_OK;
}

int open_detector(const char *path, eo_detector *d)
{
    eo_status st = eo_detector_load(path, d);
    if (st == EO_OK)
        return EC_OK;
    d->id = 0;
    return path ? lib_error(st, "loading the face detector '%s'", path) : lib_error(st, "loading the face detector");
}

void release_detector(eo_detector *d)
{
    if (d->id)
        eo_detector_release(*d);
    d->id = 0;
}

/*
 * The faces of a photo, largest first, into a new array (*n of them; the
 * array is allocated even for none). The library counts them all; a
 * crowd larger than the first guess is asked for again.
 */
int find_faces(eo_detector d, const eo_detect_options *o, const eo_image_view *photo, const char *source,
               eo_face **faces, size_t *n)
{
    size_t cap = 64, count = 0;
    eo_face *found = NULL;
    for (;;) {
        eo_status st;
        free(found);
        if (!(found = xcalloc(cap, sizeof *found)))
            return out_of_memory();
        st = eo_faces_detect(d, photo, o, found, cap, &count);
        if (st != EO_OK) {
            free(found);
            return lib_error(st, "finding the faces in '%s'", source);
        }
        if (count <= cap)
            break;
        cap = count;
    }
    *faces = found;
    *n = count;
    return EC_OK;
}

/* The message for a photo without a face (or, with --face K, without face K). */
void report_no_face(const char *source, const eo_detect_options *o, size_t found, uint32_t k)
{
    if (found == 0)
        fprintf(stderr,
                "editone %s: '%s': no face found (threshold %g, smallest face %g px); see --threshold and --min-face\n",
                g_command, source, o->score_threshold, o->min_face_size);
    else
        fprintf(stderr, "editone %s: '%s': no face %u: %zu face%s found (0..%zu)\n", g_command, source, k, found,
                found == 1 ? "" : "s", found - 1);
}

/* "box": [...], "score": S, "landmarks": [[X, Y] x 5] (without braces). */
void json_face(FILE *f, const eo_face *face)
{
    fputs("\"box\": [", f);
    for (int i = 0; i < 4; i++) {
        fputs(i ? ", " : "", f);
        json_number(f, face->bbox[i]);
    }
    fputs("], \"score\": ", f);
    json_number(f, face->score);
    fputs(", \"landmarks\": [", f);
    for (int i = 0; i < 5; i++) {
        fputs(i ? ", [" : "[", f);
        json_number(f, face->landmarks[i].x);
        fputs(", ", f);
        json_number(f, face->landmarks[i].y);
        fputc(']', f);
    }
    fputc(']', f);
}

/* ------------------------------------------------------------------ */
/* The preview: boxes, indices and landmarks drawn on the photo        */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t r, g, b;
} colour;

static void fill(eo_image_view *v, long x0, long y0, long x1, long y1, colour c)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > (long)v->width)
        x1 = v->width;
    if (y1 > (long)v->height)
        y1 = v->height;
    for (long y = y0; y < y1; y++)
        for (long x = x0; x < x1; x++) {
            uint8_t *p = v->data + (size_t)y * v->stride + (size_t)x * 3;
            p[0] = c.r, p[1] = c.g, p[2] = c.b;
        }
}

/* 3x5 digits, one row per 3 bits (top row first). */
static const uint8_t DIGITS[10][5] = {
    { 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 7, 1, 7 }, { 5, 5, 7, 1, 1 },
    { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 1, 1 }, { 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
};

/* The number k with its top-left corner at (x, y), cells of s pixels, on a dark plate. */
static void draw_number(eo_image_view *v, long x, long y, size_t k, long s, colour c)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%zu", k);
    fill(v, x, y, x + s * (4 * len + 1), y + 7 * s, (colour){ 0, 0, 0 });
    for (int i = 0; i < len; i++)
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (DIGITS[text[i] - '0'][row] & (4 >> col)) {
                    long px = x + s * (1 + 4 * i + col), py = y + s * (1 + row);
                    fill(v, px, py, px + s, py + s, c);
                }
}

static void draw_faces(eo_image_view *v, const eo_face *faces, size_t n)
{
    static const colour box = { 255, 0, 255 }, marks[5] = {
        { 0, 255, 255 }, { 0, 255, 255 }, { 255, 255, 0 }, { 255, 64, 0 }, { 255, 64, 0 },
    };
    uint32_t side = v->width > v->height ? v->width : v->height;
    long t = side / 400 > 1 ? (long)(side / 400) : 1;
    /* Smaller faces last, so that their boxes stay visible over larger ones. */
    for (size_t i = 0; i < n; i++) {
        const eo_face *f = &faces[i];
        long l = lround(f->bbox[0]), tp = lround(f->bbox[1]), r = lround(f->bbox[2]), b = lround(f->bbox[3]);
        fill(v, l - t, tp - t, r + t + 1, tp + 1, box);
        fill(v, l - t, b, r + t + 1, b + t + 1, box);
        fill(v, l - t, tp - t, l + 1, b + t + 1, box);
        fill(v, r, tp - t, r + t + 1, b + t + 1, box);
        for (int k = 0; k < 5; k++) {
            long x = lround(f->landmarks[k].x), y = lround(f->landmarks[k].y);
            fill(v, x - t - 1, y - t - 1, x + t + 2, y + t + 2, marks[k]);
        }
        draw_number(v, l - t, tp - t - 7 * (t + 1) < 0 ? b + t + 1 : tp - t - 7 * (t + 1), i, t + 1, box);
    }
}

static int write_preview(const eo_image_view *photo, const eo_face *faces, size_t n, const char *path)
{
    size_t bytes = (size_t)photo->stride * photo->height;
    uint8_t *pixels = malloc(bytes ? bytes : 1);
    eo_image_view v = *photo;
    eo_status st;
    if (!pixels)
        return out_of_memory();
    memcpy(pixels, photo->data, bytes);
    v.data = pixels;
    draw_faces(&v, faces, n);
    st = eo_image_write_ex(&v, path, write_flags());
    free(pixels);
    return st == EO_OK ? EC_OK : write_error(st, path);
}

/* ------------------------------------------------------------------ */
/* The faces command                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    detect_text dx;
    const char *preview;
} faces_text;

/* "dir/name.jpg" -> DIR/name-faces.png */
static char *preview_path(const char *dir, const char *photo)
{
    const char *slash = strrchr(photo, '/');
    const char *start = slash ? slash + 1 : photo;
    const char *dot = strrchr(start, '.');
    size_t len = dot && dot != start ? (size_t)(dot - start) : strlen(start);
    char *name = strndup(start, len);
    char *path = name ? named_path(dir, name, "-faces.png") : NULL;
    free(name);
    return path;
}

/* Before anything is written: the previews neither collide nor replace a PHOTO (outputs.c). */
static int check_faces_outputs(const faces_text *x, char **photos, int n)
{
    output_plan p = { 0 };
    int rc = plan_input(&p, x->dx.detector);
    for (int i = 0; i < n && rc == EC_OK; i++)
        rc = plan_input(&p, photos[i]);
    for (int i = 0; x->preview && i < n && rc == EC_OK; i++) {
        char *path = preview_path(x->preview, photos[i]);
        rc = path ? plan_output(&p, path, "'%s'", photos[i]) : out_of_memory();
        free(path);
    }
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static void print_photo_json(const char *source, const eo_image_view *photo, const eo_face *faces, size_t n,
                             const char *preview)
{
    fputs("{\"photo\": ", stdout);
    json_string(stdout, source);
    printf(", \"width\": %u, \"height\": %u, \"faces\": [", photo->width, photo->height);
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"index\": %zu, ", i ? ", " : "", i);
        json_face(stdout, &faces[i]);
        fputc('}', stdout);
    }
    fputc(']', stdout);
    if (preview) {
        fputs(", \"preview\": ", stdout);
        json_string(stdout, preview);
    }
    fputs("}\n", stdout);
    fflush(stdout);
}

/* One photo: its faces printed, its preview written; *none set when it has no face. */
static int faces_one(eo_detector det, const eo_detect_options *o, const faces_text *x, const char *source, int *none)
{
    eo_image_view photo = { 0 };
    eo_face *faces = NULL;
    size_t n = 0;
    char *preview = x->preview ? preview_path(x->preview, source) : NULL;
    int rc = !x->preview || preview ? read_image(source, EO_PIXEL_RGB8, &photo) : out_of_memory();
    if (rc == EC_OK)
        rc = find_faces(det, o, &photo, source, &faces, &n);
    if (rc == EC_OK && preview)
        rc = write_preview(&photo, faces, n, preview);
    if (rc == EC_OK) {
        print_photo_json(source, &photo, faces, n, preview);
        if (n == 0) {
            report_no_face(source, o, 0, 0);
            *none = 1;
        }
    }
    free(faces);
    free(photo.data);
    free(preview);
    return rc;
}

static int run_faces(const engine_args *g, const faces_text *x, char **photos, int n)
{
    eo_detector det = { 0 };
    eo_detect_options o;
    int rc = parse_detect_options("faces", &x->dx, &o), without = 0;
    if (rc == EC_OK)
        rc = check_faces_outputs(x, photos, n);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_detector(x->dx.detector, &det);
    if (rc == EC_OK && x->preview)
        rc = make_dirs(x->preview);
    for (int i = 0; i < n && rc == EC_OK; i++) {
        int none = 0;
        rc = g_interrupted ? cancelled("finding faces") : faces_one(det, &o, x, photos[i], &none);
        without += none;
    }
    release_detector(&det);
    if (rc == EC_OK && without) {
        fprintf(stderr, "editone faces: %d of %d photo%s had no face\n", without, n, n == 1 ? "" : "s");
        rc = EC_NO_FACE;
    }
    return rc;
}

static int show_faces_help(void)
{
    eo_detect_options o;
    if (eo_detect_options_init(&o) != EO_OK)
        return lib_error(EO_ERR_INTERNAL, "preparing the detector's options");
    printf(FACES_USAGE, o.score_threshold, o.min_face_size);
    fputs(EXIT_STATUS_HELP, stdout);
    return EC_OK;
}

int cmd_faces(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "faces";
    faces_text x;
    int rc, nphotos = 0;
    char **photos = xcalloc((size_t)argc + 1, sizeof *photos);
    memset(&x, 0, sizeof x);
    option opts[] = {
        { "--threshold", &x.dx.threshold, NULL }, { "--min-face", &x.dx.min_face, NULL },
        { "--detector", &x.dx.detector, NULL },   { "--preview", &x.preview, NULL },
        { "--overwrite", NULL, &g_overwrite },
    };
    if (!photos)
        return out_of_memory();
    rc = parse_with_operands(cmd, argc, argv, opts, COUNT_OF(opts), photos, &nphotos);
    if (rc == EC_HELP)
        rc = show_faces_help();
    else if (rc == EC_OK && nphotos == 0)
        rc = usage_error(cmd, "no PHOTO given");
    else if (rc == EC_OK)
        rc = run_faces(g, &x, photos, nphotos);
    free(photos);
    return rc;
}

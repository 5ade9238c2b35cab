/*
 * editone: the command-line host of libeditone ("Edit One for All").
 *
 * Batch image editing with StyleGAN2 models from the shell, from scripts
 * and from photo managers' "run a command" hooks:
 *
 *   editone info   --model M                      what a model is
 *   editone render --model M --seeds 1-8 ...      images, or raw float32 outputs
 *   editone edit   --model M --seed 1 --to-seed 2 --out p.json
 *                                                 one example edit, optimised
 *                                                 into a reusable preset
 *   editone apply  --model M --preset p.json --seeds 3-6 --out-dir out
 *                                                 that edit transferred to
 *                                                 many images
 *   editone invert PHOTO... --out DIR            photos into the latent space
 *                                                 (--faces: each face of a photo;
 *                                                 --tune: and a generator tuned to them)
 *   editone faces PHOTO...                        the faces in photos, as JSON
 *   editone directions                           unsupervised directions to edit along
 *   editone bench  --model M                      throughput on this machine
 *
 * The program uses only the public C API of <editone.h> and the C library,
 * plus a few POSIX calls (sigaction, clock_gettime, isatty, stat, mkdir,
 * and open, link, rename, fsync and realpath for writing files safely).
 * Every handle it makes is released before it returns from a command.
 *
 * Conventions: data a script may parse (info, edit summaries, alphas,
 * bench results) goes to stdout, progress and messages to stderr. Exit
 * status: 0 success, 1 an error while working (reported by the library,
 * an unreadable or wrongly sized input file, or an output that exists
 * without --overwrite), 2 a usage error (outputs that collide included), 3
 * cancelled with Ctrl-C or SIGTERM, 4 a photo without a face (faces,
 * invert --faces; the other photos were done).
 *
 * Files are sacred (DESIGN.md): every file is written under a hidden
 * temporary name in its folder and renamed when whole (util.c's
 * open_output/close_output, the library's *_ex writers), and before writing
 * anything a command checks that its outputs neither collide nor replace
 * an input, nor, without --overwrite, any existing file (outputs.c).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* info                                                                */
/* ------------------------------------------------------------------ */

static const char INFO_USAGE[] =
    "usage: editone [global options] info [--model PATH] [--json]\n"
    "\n"
    "Prints the engine's device and the model's shape: resolution, channels,\n"
    "z_dim, c_dim (0 = unconditional), w_dim, num_ws and architecture, and how\n"
    "its training faces were aligned (template, ffhq or none: what 'editone\n"
    "invert --faces' does by default; 'editone convert --align' records it).\n"
    "\n"
    "  --model PATH   model file (.safetensors) or folder (config.json + weights);\n"
    "                 default: the built-in face model\n"
    "  --json         print one JSON object instead of text\n";

static void print_info_json(const char *path, const char *device, uint32_t threads, const eo_model_desc *d,
                            eo_align align)
{
    fputs("{\"model\": ", stdout);
    json_string(stdout, path);
    fputs(", \"device\": ", stdout);
    json_string(stdout, device);
    printf(", \"threads\": %u, \"library\": ", threads);
    json_string(stdout, eo_version());
    printf(", \"abi\": %u, \"architecture\": ", eo_abi_version());
    json_string(stdout, d->architecture);
    printf(", \"resolution\": %u, \"channels\": %u, \"z_dim\": %u, \"c_dim\": %u, \"w_dim\": %u,"
           " \"num_ws\": %u, \"align\": \"%s\"}\n",
           d->resolution, d->channels, d->z_dim, d->c_dim, d->w_dim, d->num_ws, align_name(align));
}

static void print_info_text(const char *path, const char *device, uint32_t threads, const eo_model_desc *d,
                            eo_align align)
{
    printf("model:        %s\n", path);
    printf("architecture: %s\n", d->architecture);
    printf("resolution:   %ux%u\n", d->resolution, d->resolution);
    printf("channels:     %u\n", d->channels);
    printf("z_dim:        %u\n", d->z_dim);
    if (d->c_dim)
        printf("c_dim:        %u (conditional: --class 0..%u)\n", d->c_dim, d->c_dim - 1);
    else
        printf("c_dim:        0 (unconditional)\n");
    printf("w_dim:        %u\n", d->w_dim);
    printf("num_ws:       %u (a W+ latent has %zu floats)\n", d->num_ws, latent_floats(d));
    printf("align:        %s (how faces are cropped for it)\n", align_name(align));
    printf("device:       %s\n", device);
    printf("threads:      %u\n", threads);
    printf("library:      %s (ABI %u)\n", eo_version(), eo_abi_version());
}

static int cmd_info(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "info", *model_path = NULL;
    int json = 0, rc;
    option opts[] = { { "--model", &model_path, NULL }, { "--json", NULL, &json } };
    eo_model m = { 0 };
    eo_model_desc d;
    char *device = NULL;
    uint32_t threads = 0;
    eo_align align = EO_ALIGN_MODEL;
    eo_status st;

    rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);
    if (rc == EC_HELP)
        return show_help(INFO_USAGE);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, model_path, &m, &d);
    if (!model_path)
        model_path = "(default model)";
    if (rc == EC_OK)
        rc = device_name(&device);
    if (rc == EC_OK && (st = eo_cpu_threads(&threads)) != EO_OK)
        rc = lib_error(st, "reading the thread count");
    if (rc == EC_OK && (st = eo_model_alignment(m, &align)) != EO_OK)
        rc = lib_error(st, "reading the model's face alignment");
    if (rc == EC_OK) {
        if (json)
            print_info_json(model_path, device, threads, &d, align);
        else
            print_info_text(model_path, device, threads, &d, align);
    }
    free(device);
    release_model(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* render                                                              */
/* ------------------------------------------------------------------ */

static const char RENDER_USAGE[] =
    "usage: editone [global options] render [--model PATH]\n"
    "           (--seeds LIST [--psi F] [--class K] | --latents-f32 FILE --count N)\n"
    "           (--out-dir DIR [--size S] [--format png|jpg] | --out-f32 FILE)\n"
    "           [--overwrite]\n"
    "\n"
    "Renders images from seeds (as the official generate.py draws them) or from\n"
    "raw W+ latents (noise 'const').\n"
    "\n"
    "  --model PATH         model file or folder (default: the built-in face model)\n"
    "  --seeds LIST         seeds such as 1,2,5-8; files are named seed0001.png\n"
    "  --psi F              truncation psi for seeds (default 1 = none)\n"
    "  --class K            class index, required for conditional models\n"
    "  --latents-f32 FILE   N W+ latents, each num_ws x w_dim little-endian float32;\n"
    "                       files are named latent0000.png, latent0001.png, ...\n"
    "  --count N            number of latents in FILE (its size must match exactly)\n"
    "  --out-dir DIR        write one image per latent to DIR (created if missing)\n"
    "  --size S             resample images to S x S pixels (default: the model's)\n"
    "  --format png|jpg     image format (default png)\n"
    "  --out-f32 FILE       write the raw generator outputs instead: N x C x H x W\n"
    "                       little-endian float32, in input order\n"
    "  --overwrite          replace output files that exist (never an input); without\n"
    "                       it nothing is written when one exists\n";

/* Before anything is written: see outputs.c. */
static int check_render_outputs(const char *model, const target_spec *t, const char *out_dir, const char *ext,
                                const char *out_f32)
{
    output_plan p = { 0 };
    image_files images = { out_dir, ext, 0, NULL, NULL };
    int rc = plan_input(&p, model);
    if (rc == EC_OK)
        rc = plan_target_inputs(&p, t);
    if (rc == EC_OK && out_f32)
        rc = plan_output(&p, out_f32, "--out-f32");
    if (rc == EC_OK && out_dir)
        rc = plan_target_files(&p, t, &images);
    if (rc == EC_OK)
        rc = plan_check(&p);
    plan_free(&p);
    return rc;
}

static int cmd_render(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "render", *model_path = NULL, *out_dir = NULL, *out_f32 = NULL;
    const char *size_text = NULL, *format = NULL, *ext = "png";
    target_text tx = { 0 };
    option opts[] = {
        { "--model", &model_path, NULL },   { "--seeds", &tx.seeds, NULL },
        { "--latents-f32", &tx.latents, NULL }, { "--count", &tx.count, NULL },
        { "--psi", &tx.psi, NULL },         { "--class", &tx.class_index, NULL },
        { "--size", &size_text, NULL },     { "--out-dir", &out_dir, NULL },
        { "--out-f32", &out_f32, NULL },    { "--format", &format, NULL },
        { "--overwrite", NULL, &g_overwrite },
    };
    target_spec t = { 0 };
    eo_model m = { 0 };
    eo_model_desc d;
    eo_latent *ls = NULL;
    uint32_t size = 0;
    int rc = parse_options(cmd, argc, argv, opts, COUNT_OF(opts), NULL);

    if (rc == EC_HELP)
        return show_help(RENDER_USAGE);
    if (rc != EC_OK)
        return rc;
    if (!out_dir == !out_f32)
        return usage_error(cmd, "give either --out-dir DIR or --out-f32 FILE");
    if (out_f32 && (size_text || format))
        return usage_error(cmd, "--size and --format apply to --out-dir only");
    if (size_text && opt_u32(cmd, "--size", size_text, 1, MAX_SIDE, &size) != EC_OK)
        return EC_USAGE;
    if (parse_format(cmd, format, &ext) != EC_OK || parse_targets(cmd, &tx, &t) != EC_OK)
        return EC_USAGE;

    rc = check_render_outputs(model_path, &t, out_dir, ext, out_f32);
    if (rc == EC_OK)
        rc = start_engine(g);
    if (rc == EC_OK)
        rc = open_model(cmd, model_path, &m, &d);
    if (rc == EC_OK)
        rc = make_targets(cmd, m, &d, &t, &ls);
    if (rc == EC_OK)
        rc = out_dir ? render_files(ls, &t, out_dir, ext, size) : render_f32_file(ls, t.n, &d, out_f32);
    free_latents(ls, t.n);
    release_model(&m);
    free_targets(&t);
    return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int (*run)(const engine_args *g, int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    { "info", cmd_info, "print a model's shape and the engine's device" },
    { "render", cmd_render, "render images (or raw outputs) from seeds or latents" },
    { "edit", cmd_edit, "make an example edit and optimise it into a preset" },
    { "apply", cmd_apply, "apply a preset to many images" },
    { "merge", cmd_merge, "join the manifests of a sharded apply and report what is missing" },
    { "invert", cmd_invert, "project photos (or their faces) into the latent space; --tune fits the generator to them" },
    { "faces", cmd_faces, "find the faces in photos, as JSON (and a preview)" },
    { "directions", cmd_directions, "list the model's unsupervised edit directions (SeFa)" },
    { "convert", cmd_convert, "convert an NVlabs .pkl or rosinality .pt model to .safetensors" },
    { "bench", cmd_bench, "measure rendering and editing throughput" },
};

static int print_main_help(void)
{
    printf("usage: editone [--device auto|cpu|cuda|cuda:N] [--threads N] <command> [options]\n"
           "       editone --help | --version\n"
           "\n"
           "Edit One for All: edit one image, apply the edit consistently to many\n"
           "(StyleGAN2 and DCGAN models; a DCGAN face model is built in).\n"
           "\n"
           "Commands (each has --help):\n");
    for (size_t i = 0; i < COUNT_OF(COMMANDS); i++)
        printf("  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    printf("\n"
           "Global options:\n"
           "  --device D    auto (CUDA when available, else CPU; default), cpu, cuda, cuda:N\n"
           "  --threads N   CPU threads for tensor math (default: the library's choice)\n"
           "  --half        on CUDA, run the layers a StyleGAN2 trained in float16 in\n"
           "                float16, as the official code does (faster; not bit-equal)\n"
           "  --tf32        on CUDA (Ampere and later), let float32 convolutions use TF32:\n"
           "                several times faster, about 1e-3 from true float32\n"
           "  --cpu-cache M MiB of freed large CPU buffers kept for reuse (default 1024;\n"
           "                0 keeps none: less memory, slower renders of large models)\n"
           "  --version     print the library version and C ABI\n");
    fputs(EXIT_STATUS_HELP, stdout);
    return EC_OK;
}

static int valid_device(const char *s)
{
    uint64_t n;
    if (strcmp(s, "auto") == 0 || strcmp(s, "cpu") == 0 || strcmp(s, "cuda") == 0)
        return 1;
    return strncmp(s, "cuda:", 5) == 0 && parse_u64(s + 5, 0, 1024, &n);
}

/* The global options before the command; *first is the command's index. */
static int parse_globals(int argc, char **argv, engine_args *g, int *first)
{
    const char *device = NULL, *threads = NULL, *cpu_cache = NULL;
    uint32_t cache_mib;
    int version = 0;
    option opts[] = {
        { "--device", &device, NULL },
        { "--threads", &threads, NULL },
        { "--half", NULL, &g->half },
        { "--tf32", NULL, &g->tf32 },
        { "--cpu-cache", &cpu_cache, NULL },
        { "--version", NULL, &version },
    };
    int rc = parse_options(NULL, argc - 1, argv + 1, opts, COUNT_OF(opts), first);
    *first += 1;
    if (rc == EC_HELP) {
        print_main_help();
        return EC_HELP;
    }
    if (rc != EC_OK)
        return rc;
    if (version) {
        printf("editone: libeditone %s, C ABI %u\n", eo_version(), eo_abi_version());
        return EC_HELP;
    }
    if (device && !valid_device(device))
        return usage_error(NULL, "--device: '%s' is not auto, cpu, cuda or cuda:N", device);
    if (threads && opt_u32(NULL, "--threads", threads, 1, 4096, &g->threads))
        return EC_USAGE;
    if (cpu_cache && opt_u32(NULL, "--cpu-cache", cpu_cache, 0, 1u << 20, &cache_mib))
        return EC_USAGE;
    g->cpu_cache_mib = cpu_cache ? (int64_t)cache_mib : -1;
    g->device = device;
    return EC_OK;
}

int main(int argc, char **argv)
{
    engine_args g = { NULL, 0, 0, 0, -1 };
    int first = 0, rc;
    if (eo_abi_version() != EO_ABI_VERSION) {
        fprintf(stderr, "editone: libeditone has C ABI %u, this program was built for ABI %d\n",
                eo_abi_version(), EO_ABI_VERSION);
        return EC_ERROR;
    }
    rc = parse_globals(argc, argv, &g, &first);
    if (rc == EC_HELP)
        return EC_OK;
    if (rc != EC_OK)
        return rc;
    if (first >= argc)
        return usage_error(NULL, "no command given");
    for (size_t i = 0; i < COUNT_OF(COMMANDS); i++)
        if (strcmp(argv[first], COMMANDS[i].name) == 0) {
            g_command = COMMANDS[i].name;
            install_stop_handlers();
            return COMMANDS[i].run(&g, argc - first - 1, argv + first + 1);
        }
    return usage_error(NULL, "unknown command '%s'", argv[first]);
}

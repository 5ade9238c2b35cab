/*
 * Shared declarations of the editone command-line host (see editone.c).
 *
 *   util.c     messages, strict option and number parsing, seed lists,
 *              raw float32 files, output files written whole (temporary
 *              name, then rename or link), JSON output, progress, Ctrl-C
 *              and SIGTERM
 *   outputs.c  a command's outputs checked before it writes any
 *   targets.c  engine, model, the images a command works on (--seeds or
 *              --latents-f32), rendering them to files
 *   editone.c  main, info, render;  edit.c, apply.c, bench.c,
 *              directions.c, invert.c, convert.c  the commands
 *   faces.c    the faces command, the detector options shared with
 *              invert --faces, --align, preview drawing
 *   shard.c    apply --shard/--resume (a slice of the targets, the run
 *              record and manifests of an output folder) and merge
 *   faceset.c  the files of a photo inverted face by face (NAME.json,
 *              NAME.faces.f32) and of a generator tuned on them
 *              (tuned.safetensors, tuned.manifest): written by invert,
 *              read back by apply
 *   json.c     a small strict JSON reader for those files
 */
#ifndef EDITONE_CLI_H
#define EDITONE_CLI_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* sigaction, clock_gettime, isatty, stat, mkdir, link, fsync */
#endif

#include <editone.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes (documented in every --help). */
enum {
    EC_OK = 0,        /* success */
    EC_ERROR = 1,     /* a library error or a bad input file */
    EC_USAGE = 2,     /* a bad or missing option */
    EC_CANCELLED = 3, /* Ctrl-C or SIGTERM during a long operation */
    EC_NO_FACE = 4,   /* faces, invert --faces: a photo had no face (the others were done) */
    EC_HELP = -1      /* internal: --help was given */
};

/* Most images (seeds or raw latents) one command handles. */
#define MAX_TARGETS 1000000u
/* Largest output side the library accepts. */
#define MAX_SIDE 16384u
/* Largest float option value; keeps every parsed value a finite float. */
#define MAX_FLOAT 1e30

/* Options */

/* One "--name VALUE" (value != NULL) or "--name" flag (flag != NULL). */
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} option;

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A progress line on stderr: redrawn with \r when stderr is a terminal,
 * otherwise one line per 10% so that logs stay short.
 */
typedef struct {
    const char *label;
    double start;
    double last_draw;
    int tty;
    int drawn;
    int last_tenth;
} progress;

/* The global options, given before the command. */
typedef struct {
    const char *device; /* NULL = "auto" */
    uint32_t threads;   /* 0 = library default */
    int half;           /* float16 blocks in float16 (CUDA) */
    int tf32;           /* TF32 for float32 convolutions (CUDA) */
    int64_t cpu_cache_mib; /* freed CPU buffers kept, MiB; -1 = library default */
} engine_args;

/* The option text of the images a command works on. */
typedef struct {
    const char *seeds, *latents, *count, *psi, *class_index, *inverted;
} target_text;

/* The images, parsed. */
typedef struct {
    uint64_t *seeds;          /* n seeds, or NULL for raw latents */
    size_t n;
    const char *latents_path; /* raw W+ latents, or NULL for seeds */
    float psi;
    int has_class;
    uint32_t class_index;
    const char *inverted_dir; /* 'editone invert' output, or NULL */
    char **names;             /* n photo names (NAME of NAME.f32) with inverted_dir */
    unsigned char *face_sets; /* with inverted_dir: n flags, 1 for NAME.faces.f32 (invert --faces) */
    size_t n_face_sets;       /* how many flags are 1 */
    size_t offset;            /* --shard: the place of target 0 in the whole list (shard.c) */
    size_t total;             /* the whole list's length (n without --shard) */
} target_spec;

/* Where rendered images go: DIR/<target's name>.<ext>, for a model of shape d. */
typedef struct {
    const char *dir;
    const char *ext;
    uint32_t size; /* --size: the longer side, 0 = the picture's own size */
    const eo_model_desc *d;
    const unsigned char *skip; /* --resume: 1 for each target whose file is complete, or NULL */
} image_files;

/* An edit --drag request: n handle/target pairs and the options around them. */
typedef struct {
    eo_point *handles, *targets;
    size_t n;
    const char *mask;    /* editable-region image, or NULL */
    const char *preview; /* --preview DIR for the strip, or NULL */
    uint32_t strip_every;
} drag_request;

/* The identity of an input file: links and other spellings of its path included. */
typedef struct {
    dev_t dev;
    ino_t ino;
} file_id;

/* One output of a command and what writes it, for the checks of outputs.c. */
typedef struct {
    char *path;   /* as the user spelled it, for messages */
    char *key;    /* its folder's real path + "/" + its name: equal keys, one file */
    char *source; /* what writes it, e.g. "photo 'd1/a.png'" */
    size_t order;
} planned_output;

/* The inputs and outputs of a command, checked before it writes anything. */
typedef struct {
    file_id *inputs;
    size_t n_inputs, cap_inputs;
    int inputs_sorted;
    planned_output *outs;
    size_t n_outs, cap_outs;
    size_t n_existing;    /* outputs that exist already */
    char *first_existing; /* the first of them, for the message */
    char *dir_text, *dir_key; /* the last folder looked up */
} output_plan;

/* A photo's faces, as 'editone invert --faces' records them in NAME.json
 * (faceset.c) and 'editone apply --inverted' reads them back. */
typedef struct {
    uint32_t width, height; /* the photo's size */
    size_t found;           /* faces the detector found */
    size_t n;               /* faces inverted: rows of NAME.faces.f32 */
    eo_face *faces;         /* n faces, in the rows' order */
    uint32_t *index;        /* n: each face's place in the detector's list (largest first) */
    double *transforms;     /* 6 n: each face's photo-to-crop transform */
    uint32_t *crop;         /* 4 n: each face's crop bounds (written, not read back) */
    float *psnr;            /* n: each face's reconstruction PSNR (written, not read back) */
    float *psnr_inverted;   /* n with invert --tune: the PSNR before tuning (psnr: after), else NULL */
    eo_align align;         /* EO_ALIGN_TEMPLATE, _FFHQ or _NONE */
    float threshold, min_face;
    uint64_t photo_hash;    /* fnv1a64 of NAME-photo.png's RGB pixels */
    uint64_t latents_hash;  /* fnv1a64 of NAME.faces.f32's bytes */
} face_set;

/* The files of invert --faces --tune beside the photos' files (faceset.c). */
#define TUNED_MODEL_FILE "tuned.safetensors"
#define TUNED_MANIFEST_FILE "tuned.manifest"

/* One photo of invert --faces --tune, as DIR/tuned.manifest lists it (faceset.c). */
typedef struct {
    const char *name;   /* NAME of NAME.json */
    const face_set *s;  /* its record: checksums and PSNRs */
} tuned_photo;

/* Option text of the face detector (faces, invert --faces). */
typedef struct {
    const char *detector, *threshold, *min_face;
} detect_text;

/* A parsed JSON value (json.c). */
typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;
typedef struct json_value {
    json_kind kind;
    char *text;                /* STRING: the decoded text; NUMBER: its literal */
    size_t n;                  /* ARRAY, OBJECT: how many items */
    struct json_value *items;  /* ARRAY, OBJECT: the n values */
    char **keys;               /* OBJECT: the n keys */
} json_value;

/* Set by SIGINT or SIGTERM; long operations stop when they see it. */
extern volatile sig_atomic_t g_interrupted;

/* The command being run ("apply"), for messages; set by main. */
extern const char *g_command;

/*
 * --overwrite: outputs may replace existing files (never an input). Set by
 * the command from its options before it writes anything; without it every
 * write refuses an existing file (see close_output, write_flags).
 */
extern int g_overwrite;

/* A file being written under a hidden temporary name (open_output). */
typedef struct {
    FILE *f;
    const char *path; /* the name it gets when finished */
    char *tmp;        /* "DIR/.NAME.XXXXXX.tmp" */
} output_file;

/* The "Exit status: ..." paragraph of every --help. */
extern const char EXIT_STATUS_HELP[];

/* printf-style checking of the message functions where the compiler has it. */
#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* util.c: messages; each returns the exit code to use. */
int usage_error(const char *cmd, const char *fmt, ...) PRINTF_LIKE(2, 3);
int fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
int lib_error(eo_status status, const char *doing_fmt, ...) PRINTF_LIKE(2, 3);
int out_of_memory(void);
int cancelled(const char *doing);
int show_help(const char *usage);
void *xcalloc(size_t n, size_t size);

/* util.c: options and numbers (usage errors are reported). */
int parse_options(const char *cmd, int argc, char **argv, const option *opts, size_t n, int *rest);
size_t take_repeated(const char *name, int *argc, char **argv, const char **values);
int find_option_takes_value(const option *opts, size_t n, const char *arg);
int parse_with_operands(const char *cmd, int argc, char **argv, const option *opts, size_t n, char **operands,
                        int *n_operands);
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "HEAD<sep>TAIL": HEAD into head (non-empty, under cap bytes), *tail after
 * the separator; 0 when text does not split so. */
int split_pair(const char *text, char sep, char *head, size_t cap, const char **tail);
int opt_u64(const char *cmd, const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out);
int opt_u32(const char *cmd, const char *name, const char *text, uint32_t min, uint32_t max, uint32_t *out);
int opt_float(const char *cmd, const char *name, const char *text, double min, double max, float *out);
int parse_choice(const char *cmd, const char *name, const char *text, const char *const *choices,
                 size_t n, uint32_t *out);
int parse_seed_list(const char *cmd, const char *opt, const char *text, uint64_t **out, size_t *count);

/* util.c: files (errors are reported). */
int read_image(const char *path, eo_pixel_format format, eo_image_view *view);
int file_size(const char *path, uint64_t *size);
int same_file(const char *a, const char *b);
int read_f32_file(const char *path, size_t n, float **out);
int read_f32_range(const char *path, uint64_t first, size_t n, float **out);
int write_f32(FILE *f, const float *v, size_t n);
int open_output(const char *path, output_file *o);
int close_output(output_file *o, int rc);
uint32_t write_flags(void);
int exists_error(const char *path);
int write_error(eo_status st, const char *path);
char *path_join(const char *dir, const char *name);
char *named_path(const char *dir, const char *name, const char *suffix);
int make_dirs(const char *dir);
void json_string(FILE *f, const char *s);
void json_number(FILE *f, double v);
void json_double(FILE *f, double v);
uint64_t fnv1a64(uint64_t h, const void *data, size_t n);
#define FNV1A64_INIT 0xcbf29ce484222325ull
uint64_t fnv1a64_f32(const float *v, size_t n);
uint64_t fnv1a64_view(const eo_image_view *v);

/* util.c: Ctrl-C and SIGTERM, time and progress. */
void install_stop_handlers(void);
double now_s(void);
void progress_start(progress *p, const char *label);
void progress_show(progress *p, uint64_t done, uint64_t total);
void progress_finish(progress *p);
int32_t on_progress(void *user, const char *stage, uint64_t done, uint64_t total);
int32_t on_progress_quiet(void *user, const char *stage, uint64_t done, uint64_t total);

/* outputs.c: a command's outputs, checked before it writes any. */
int plan_input(output_plan *p, const char *path);
int plan_output(output_plan *p, const char *path, const char *source_fmt, ...) PRINTF_LIKE(3, 4);
int plan_check_output(output_plan *p, const char *path, const char *source);
int plan_check(output_plan *p);
void plan_free(output_plan *p);

/* targets.c: engine, model and handles. */
int start_engine(const engine_args *g);
int device_name(char **out);
int open_model(const char *cmd, const char *path, eo_model *m, eo_model_desc *desc);
void release_model(eo_model *m);
void release_edit(eo_edit *e);
void release_latent(eo_latent *l);
void release_latents(eo_latent *ls, size_t n);
void free_latents(eo_latent *ls, size_t n);
size_t latent_floats(const eo_model_desc *d);

/* targets.c: latents and the images a command works on. */
int check_class(const char *cmd, const eo_model_desc *d, int has_class, uint32_t k);
int latent_from_seed(eo_model m, const eo_model_desc *d, uint64_t seed, uint32_t k, float psi,
                     eo_latent *out);
int read_latent(eo_latent l, const eo_model_desc *d, float **out);
int parse_targets(const char *cmd, const target_text *tx, target_spec *t);
void free_targets(target_spec *t);
int check_targets(const char *cmd, const eo_model_desc *d, const target_spec *t);
int make_target_range(eo_model m, const eo_model_desc *d, const target_spec *t, size_t first, size_t n,
                      eo_latent *ls);
int make_targets(const char *cmd, eo_model m, const eo_model_desc *d, const target_spec *t, eo_latent **out);
char *target_file_name(const target_spec *t, size_t i, const char *ext);
void describe_target(const target_spec *t, size_t i, char *buf, size_t len);
int plan_target_inputs(output_plan *p, const target_spec *t);
int plan_target_files(output_plan *p, const target_spec *t, const image_files *o);

/* targets.c: outputs. */
int render_one_file(eo_latent l, const char *dir, const char *name, uint32_t size);
int render_files(const eo_latent *ls, const target_spec *t, const char *dir, const char *ext, uint32_t size);
int render_f32_file(const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path);
int render_chunk_files(const eo_latent *ls, size_t n, const target_spec *t, size_t first, const image_files *o,
                       progress *p);
int write_latents(FILE *f, const eo_latent *ls, size_t n, const eo_model_desc *d, const char *path);
int parse_format(const char *cmd, const char *text, const char **ext);

/* faces.c: the face detector and alignment options. */
int parse_align(const char *cmd, const char *name, const char *text, eo_align *out);
const char *align_name(eo_align a);
int parse_detect_options(const char *cmd, const detect_text *x, eo_detect_options *o);
int open_detector(const char *path, eo_detector *d);
void release_detector(eo_detector *d);
int find_faces(eo_detector d, const eo_detect_options *o, const eo_image_view *photo, const char *source,
               eo_face **faces, size_t *n);
void report_no_face(const char *source, const eo_detect_options *o, size_t found, uint32_t k);
void json_face(FILE *f, const eo_face *face);

/* faceset.c: NAME.json and NAME.faces.f32 of invert --faces. */
void write_face_set_json(FILE *f, const face_set *s, const char *source, const char *latents, int one_line);
int read_face_set(const char *dir, const char *name, face_set *s);
void free_face_set(face_set *s);
int check_face_set_files(const eo_model_desc *d, const char *dir, const char *name, const face_set *s);
int face_set_latents(eo_model m, const eo_model_desc *d, const char *dir, const char *name, const face_set *s,
                     eo_latent *out);
int begin_tuned_files(eo_model tuned, const char *dir, const tuned_photo *photos, size_t n, uint32_t steps,
                      output_file *model);
int finish_tuned_files(output_file *model, int rc);
int open_tuned_model(eo_model base, const target_spec *t, const face_set *sets, eo_model *tuned);

/* apply --shard K/N (shard.c): this process's slice of the targets. */
typedef struct {
    int on;             /* sharded (--shard, --shards or an array task's index) */
    uint64_t k, n;      /* shard k of n */
} shard_spec;

/* An output folder of a sharded or resumable apply (shard.c). */
typedef struct {
    const char *dir;
    uint64_t fingerprint;   /* the preset and every option that sets the pixels */
    uint64_t targets_hash;  /* the whole target list, before --shard */
    shard_spec shard;       /* shard 0 of 1 when not sharded */
    int resume;
    unsigned char *done;    /* --resume: 1 for each target whose file is complete */
    size_t n_done;
} run_folder;

/* shard.c */
int parse_shard(const char *cmd, const char *shard, const char *shards, shard_spec *s);
int shard_targets(const shard_spec *s, target_spec *t, uint64_t *targets_hash);
int run_fingerprint(const char *preset, const char *settings, uint64_t *out);
int check_run_folder(run_folder *f, output_plan *p, const target_spec *t, const image_files *o);
int write_run_record(const run_folder *f);
int write_manifest(const run_folder *f, const target_spec *t, const face_set *sets, const float *alphas);
void free_run_folder(run_folder *f);
int cmd_merge(const engine_args *g, int argc, char **argv);

/* targets.c: --shard's slice (see shard_targets). */
int keep_target_range(target_spec *t, size_t first, size_t n);

/* apply.c: the --alphas list of the targets (sets: NULL without face sets). */
void write_alphas_json(FILE *f, const target_spec *t, const face_set *sets, const float *alphas);

/* json.c */
int json_parse(const char *text, size_t len, json_value *out, char *err, size_t err_len);
int json_read_file(const char *path, size_t cap, json_value *out);
void json_free(json_value *v);
const json_value *json_get(const json_value *obj, const char *key);

/* The commands (argv holds the arguments after the command's name). */
int cmd_edit(const engine_args *g, int argc, char **argv);
int cmd_apply(const engine_args *g, int argc, char **argv);
int cmd_bench(const engine_args *g, int argc, char **argv);
int cmd_directions(const engine_args *g, int argc, char **argv);
int cmd_invert(const engine_args *g, int argc, char **argv);
int cmd_convert(const engine_args *g, int argc, char **argv);
int cmd_faces(const engine_args *g, int argc, char **argv);


/* drag.c: edit --drag. */
int parse_drags(const char *cmd, const char *const *texts, size_t n, eo_point **handles, eo_point **targets);
int edit_from_drags(const eo_model_desc *d, eo_latent example, const drag_request *r, eo_edit *e);

#endif /* EDITONE_CLI_H */

/*
 * editone CLI: apply over many processes or machines (docs/scale-out.md).
 *
 *   --shard K/N   shard K of N takes targets floor(K T / N) .. floor((K+1) T / N) - 1
 *                 of the whole list of T targets (seeds as listed, latent rows,
 *                 an inverted folder's photos sorted by name): contiguous,
 *                 disjoint, and together every target once. K may come from
 *                 an array task's index (SLURM_ARRAY_TASK_ID, Kubernetes'
 *                 JOB_COMPLETION_INDEX), N from --shards or, with a notice,
 *                 SLURM_ARRAY_TASK_COUNT.
 *   run record    DIR/editone-run.json holds the fingerprint of the preset and
 *                 of every option that sets the pixels; a folder with another
 *                 fingerprint is refused, so that no folder mixes two edits.
 *   --resume      files already in DIR are complete (each was written under a
 *                 temporary name and renamed), so they are kept, not rendered.
 *   manifest      DIR/editone-shard-K-of-N.json: the shard's place in the list
 *                 and its alphas, written last; 'editone merge DIR' joins them.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_RECORD "editone-run.json"
/* Largest manifest merge reads: a million targets' alphas are about 40 MB. */
#define MANIFEST_CAP ((size_t)1 << 30)

/* ------------------------------------------------------------------ */
/* Which shard: --shard, --shards and the array task's environment     */
/* ------------------------------------------------------------------ */

/* An environment variable as a number: 1 read, 0 unset or empty, -1 not a number (reported). */
static int env_number(const char *cmd, const char *name, uint64_t *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (parse_u64(v, 0, UINT64_MAX, out))
        return 1;
    usage_error(cmd, "%s='%s' is not a whole number", name, v);
    return -1;
}

/* The array task's index (*name says from where): 1 found, 0 none, -1 an error (reported). */
static int task_index(const char *cmd, uint64_t *k, const char **name)
{
    uint64_t slurm = 0, kube = 0;
    int a = env_number(cmd, "SLURM_ARRAY_TASK_ID", &slurm), b = a < 0 ? 0 : env_number(cmd, "JOB_COMPLETION_INDEX", &kube);
    if (a < 0 || b < 0)
        return -1;
    if (a && b && slurm != kube) {
        usage_error(cmd, "SLURM_ARRAY_TASK_ID=%" PRIu64 " and JOB_COMPLETION_INDEX=%" PRIu64 " disagree", slurm, kube);
        return -1;
    }
    *k = a ? slurm : kube;
    *name = a ? "SLURM_ARRAY_TASK_ID" : "JOB_COMPLETION_INDEX";
    return a || b;
}

/* Parses "K/N": N in 1..MAX_TARGETS, K below N. */
static int parse_k_of_n(const char *cmd, const char *text, shard_spec *s)
{
    char k_text[32];
    const char *n_text;
    if (!split_pair(text, '/', k_text, sizeof k_text, &n_text))
        return usage_error(cmd, "--shard '%s': expected K/N, e.g. 0/4 for the first of 4 shards", text);
    if (!parse_u64(k_text, 0, UINT64_MAX, &s->k) || !parse_u64(n_text, 0, UINT64_MAX, &s->n))
        return usage_error(cmd, "--shard '%s': expected K/N with whole numbers, e.g. 0/4", text);
    if (s->n == 0 || s->n > MAX_TARGETS)
        return usage_error(cmd, "--shard '%s': N, the number of shards, must be 1 .. %u", text, MAX_TARGETS);
    if (s->k >= s->n)
        return usage_error(cmd, "--shard '%s': K counts from 0 and must be below N (0 .. %" PRIu64 ")", text,
                           s->n - 1);
    return EC_OK;
}

/* An array whose task IDs go past N would run shards that do not exist, or miss some. */
static int check_array_max(const char *cmd, uint64_t n)
{
    uint64_t max = 0;
    int has = env_number(cmd, "SLURM_ARRAY_TASK_MAX", &max);
    if (has < 0)
        return EC_USAGE;
    if (has && max >= n)
        return usage_error(cmd, "this array's task IDs go up to %" PRIu64 " (SLURM_ARRAY_TASK_MAX), but there are"
                           " %" PRIu64 " shards (0 .. %" PRIu64 "): submit --array=0-%" PRIu64 " or change the"
                           " shard count", max, n, n - 1, n - 1);
    return EC_OK;
}

/*
 * N from SLURM_ARRAY_TASK_COUNT, only for the array as first submitted
 * (IDs 0 .. COUNT-1): a task resubmitted alone (sbatch --array=2) sees
 * COUNT 1, which would silently give it the whole list.
 */
static int count_from_slurm(const char *cmd, shard_spec *s)
{
    uint64_t count = 0, min = 0, max = 0;
    int a = env_number(cmd, "SLURM_ARRAY_TASK_COUNT", &count), b = a < 0 ? -1 : env_number(cmd, "SLURM_ARRAY_TASK_MIN", &min);
    int c = b < 0 ? -1 : env_number(cmd, "SLURM_ARRAY_TASK_MAX", &max);
    if (a < 0 || b < 0 || c < 0)
        return EC_USAGE;
    if (!a)
        return usage_error(cmd, "JOB_COMPLETION_INDEX=%" PRIu64 " gives this shard; give the number of shards"
                           " with --shards N (the Job's completions)", s->k);
    if (count == 0 || count > MAX_TARGETS || (b && min != 0) || (c && max != count - 1))
        return usage_error(cmd, "SLURM_ARRAY_TASK_COUNT=%" PRIu64 " with task IDs %" PRIu64 " .. %" PRIu64 " is not"
                           " an array of shards 0 .. N-1 (a task resubmitted alone?): state the count with"
                           " --shards N", count, min, max);
    s->n = count;
    fprintf(stderr, "editone %s: shard %" PRIu64 " of %" PRIu64 " from SLURM_ARRAY_TASK_ID and"
            " SLURM_ARRAY_TASK_COUNT; state the count with --shards %" PRIu64 " so that a resubmitted task"
            " keeps it\n", cmd, s->k, s->n, s->n);
    return EC_OK;
}

/*
 * The shard of this process (s->on = 0 when not sharded): --shard K/N,
 * or K from the array task's index with N from --shards (or
 * SLURM_ARRAY_TASK_COUNT). Every source given must agree.
 */
int parse_shard(const char *cmd, const char *shard, const char *shards, shard_spec *s)
{
    uint64_t env_k = 0, n = 0;
    const char *env_name = NULL;
    int has_env = task_index(cmd, &env_k, &env_name);
    memset(s, 0, sizeof *s);
    if (has_env < 0)
        return EC_USAGE;
    if (shards && opt_u64(cmd, "--shards", shards, 1, MAX_TARGETS, &n) != EC_OK)
        return EC_USAGE;
    if (shard) {
        if (parse_k_of_n(cmd, shard, s) != EC_OK)
            return EC_USAGE;
        if (shards && n != s->n)
            return usage_error(cmd, "--shard %s and --shards %" PRIu64 " disagree on the number of shards", shard, n);
        if (has_env && env_k != s->k)
            return usage_error(cmd, "--shard %s, but %s=%" PRIu64 ": this task is shard %" PRIu64, shard, env_name,
                               env_k, env_k);
    } else if (has_env) {
        s->k = env_k;
        s->n = n;
        if (!shards && count_from_slurm(cmd, s) != EC_OK)
            return EC_USAGE;
        if (s->k >= s->n)
            return usage_error(cmd, "%s=%" PRIu64 " is past the last of %" PRIu64 " shards (0 .. %" PRIu64 ")",
                               env_name, s->k, s->n, s->n - 1);
    } else if (shards) {
        return usage_error(cmd, "--shards %" PRIu64 " needs --shard K/%" PRIu64 " or an array task's index"
                           " (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX)", n, n);
    } else {
        return EC_OK;
    }
    s->on = 1;
    return check_array_max(cmd, s->n);
}

/* The place of shard k's first target among `total`: floor(k total / n). */
static size_t shard_first(uint64_t k, uint64_t n, size_t total)
{
    return (size_t)((unsigned __int128)k * total / n);
}

static uint64_t hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return fnv1a64(h, b, sizeof b);
}

/* The whole target list: every shard of one run must see the same one. */
static uint64_t hash_targets(const target_spec *t)
{
    uint64_t h = hash_u64(FNV1A64_INIT, t->total);
    char settings[64];
    for (size_t i = 0; t->seeds && i < t->n; i++)
        h = hash_u64(h, t->seeds[i]);
    for (size_t i = 0; t->names && i < t->n; i++) {
        h = fnv1a64(h, t->names[i], strlen(t->names[i]) + 1);
        h = fnv1a64(h, &t->face_sets[i], 1);
    }
    snprintf(settings, sizeof settings, "%c psi=%.9g class=%d:%u", t->seeds ? 's' : t->names ? 'p' : 'l', t->psi,
             t->has_class, t->class_index);
    return fnv1a64(h, settings, strlen(settings));
}

/* The list's hash, then this shard's slice of it (nothing changes without a shard). */
int shard_targets(const shard_spec *s, target_spec *t, uint64_t *targets_hash)
{
    size_t first, end;
    *targets_hash = hash_targets(t);
    if (!s->on)
        return EC_OK;
    first = shard_first(s->k, s->n, t->total);
    end = shard_first(s->k + 1, s->n, t->total);
    return keep_target_range(t, first, end - first);
}

/* ------------------------------------------------------------------ */
/* The run record and the fingerprint                                  */
/* ------------------------------------------------------------------ */

/* fnv1a64 of the preset file's bytes, then of `settings` (the options that set the pixels). */
int run_fingerprint(const char *preset, const char *settings, uint64_t *out)
{
    FILE *f = fopen(preset, "rb");
    unsigned char buf[65536];
    uint64_t h = FNV1A64_INIT;
    size_t got;
    if (!f)
        return fail("reading preset '%s': %s", preset, strerror(errno));
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        h = fnv1a64(h, buf, got);
    if (ferror(f)) {
        fclose(f);
        return fail("reading preset '%s': read error", preset);
    }
    fclose(f);
    *out = fnv1a64(h, settings, strlen(settings));
    return EC_OK;
}

/* A 16-digit lowercase hex string as a number (0 when it is not one). */
static int parse_hash(const json_value *v, uint64_t *out)
{
    if (!v || v->kind != JSON_STRING || strlen(v->text) != 16 || strspn(v->text, "0123456789abcdef") != 16)
        return 0;
    *out = strtoull(v->text, NULL, 16);
    return 1;
}

/* The fingerprint in DIR/editone-run.json: 1 read, 0 no record, -1 an error (reported). */
static int read_run_record(const char *dir, uint64_t *fingerprint)
{
    char *path = path_join(dir, RUN_RECORD);
    json_value root = { 0 };
    struct stat st;
    int found = 0;
    if (!path)
        return out_of_memory(), -1;
    if (stat(path, &st) == 0) {
        found = json_read_file(path, 1 << 16, &root) == EC_OK ? 1 : -1;
        if (found == 1 && !parse_hash(json_get(&root, "fingerprint"), fingerprint)) {
            fail("'%s' is not the run record editone writes; move it away or write to another folder", path);
            found = -1;
        }
        json_free(&root);
    }
    free(path);
    return found;
}

static int other_run(const run_folder *f)
{
    return fail("'%s' holds the images of another preset or of other options (--strength, --baseline, --size,"
                " --format, --psi, --class; its %s says so): write to another folder", f->dir, RUN_RECORD);
}

/* DIR/editone-shard-K-of-N.json of this shard, as a new string. */
static char *manifest_path(const run_folder *f)
{
    char name[96];
    snprintf(name, sizeof name, "editone-shard-%" PRIu64 "-of-%" PRIu64 ".json", f->shard.k, f->shard.n);
    return path_join(f->dir, name);
}

/* --resume: which targets' files are there (complete: they were renamed into place whole). */
static int find_done(run_folder *f, const target_spec *t, const image_files *o)
{
    if (!(f->done = xcalloc(t->n ? t->n : 1, 1)))
        return out_of_memory();
    for (size_t i = 0; i < t->n; i++) {
        char *name = target_file_name(t, i, o->ext);
        char *path = name ? path_join(o->dir, name) : NULL;
        struct stat st;
        free(name);
        if (!path)
            return out_of_memory();
        f->done[i] = stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
        f->n_done += f->done[i];
        free(path);
    }
    return EC_OK;
}

/*
 * Before anything is written: the folder's run record agrees with this
 * run (or is absent, and then --resume finds none of its files there);
 * with --resume the complete files are found; without it the manifest is
 * planned as a new output.
 */
int check_run_folder(run_folder *f, output_plan *p, const target_spec *t, const image_files *o)
{
    uint64_t theirs = 0;
    int found = read_run_record(f->dir, &theirs), rc = EC_OK;
    char *manifest = manifest_path(f);
    if (!manifest)
        return out_of_memory();
    if (found < 0)
        rc = EC_ERROR;
    else if (found && theirs != f->fingerprint)
        rc = other_run(f);
    else if (f->resume)
        rc = find_done(f, t, o);
    else
        rc = plan_output(p, manifest, "the manifest");
    if (rc == EC_OK && f->resume && !found && f->n_done)
        rc = fail("'%s' holds %zu of these images but no %s, so nothing says which preset made them; --resume"
                  " continues only a run that wrote one (apply --shard or --resume)", f->dir, f->n_done, RUN_RECORD);
    free(manifest);
    return rc;
}

/* Writes tmp whole and syncs it; 0 or an errno. */
static int write_record_file(const char *tmp, uint64_t fingerprint)
{
    char text[96];
    int len = snprintf(text, sizeof text, "{\"editone_run\": 1, \"fingerprint\": \"%016" PRIx64 "\"}\n", fingerprint);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666), err = 0;
    if (fd < 0)
        return errno;
    if (write(fd, text, (size_t)len) != len || fsync(fd) != 0)
        err = errno ? errno : EIO;
    close(fd);
    return err;
}

/*
 * DIR/editone-run.json, unless it is there. Shards starting together race
 * for it: link(2) lets one win, and the others check the winner's.
 */
int write_run_record(const run_folder *f)
{
    char tmp_name[64];
    char *path = path_join(f->dir, RUN_RECORD), *tmp;
    uint64_t theirs = 0;
    int err, found;
    snprintf(tmp_name, sizeof tmp_name, ".%s.%ld.tmp", RUN_RECORD, (long)getpid());
    tmp = path_join(f->dir, tmp_name);
    if (!path || !tmp) {
        free(path);
        free(tmp);
        return out_of_memory();
    }
    err = write_record_file(tmp, f->fingerprint);
    if (err == 0 && link(tmp, path) != 0)
        err = errno;
    unlink(tmp);
    free(tmp);
    if (err != 0 && err != EEXIST) {
        int rc = fail("writing '%s': %s", path, strerror(err));
        free(path);
        return rc;
    }
    free(path);
    found = err == EEXIST ? read_run_record(f->dir, &theirs) : 0;
    if (found < 0)
        return EC_ERROR;
    return found && theirs != f->fingerprint ? other_run(f) : EC_OK;
}

/*
 * DIR/editone-shard-K-of-N.json, after every image of the shard: where
 * the shard lies in the whole list, and its alphas (null for a baseline).
 */
int write_manifest(const run_folder *f, const target_spec *t, const face_set *sets, const float *alphas)
{
    char *path = manifest_path(f);
    output_file out;
    int rc, overwrite = g_overwrite;
    if (!path)
        return out_of_memory();
    rc = open_output(path, &out);
    if (rc == EC_OK) {
        fprintf(out.f, "{\"editone_manifest\": 1, \"fingerprint\": \"%016" PRIx64 "\", \"targets_fnv1a64\": \"%016"
                PRIx64 "\", \"targets\": %zu, \"shard\": %" PRIu64 ", \"shards\": %" PRIu64 ", \"first\": %zu,"
                " \"count\": %zu,\n\"alphas\": ", f->fingerprint, f->targets_hash, t->total, f->shard.k, f->shard.n,
                shard_first(f->shard.k, f->shard.n, t->total), t->n);
        if (alphas)
            write_alphas_json(out.f, t, sets, alphas);
        else
            fputs("null\n", out.f);
        fputs("}\n", out.f);
    }
    /* --resume replaces the manifest of an earlier run of this very shard (its fingerprint was checked). */
    g_overwrite = overwrite || f->resume;
    rc = close_output(&out, rc);
    g_overwrite = overwrite;
    free(path);
    return rc;
}

void free_run_folder(run_folder *f)
{
    free(f->done);
    f->done = NULL;
}

/* ------------------------------------------------------------------ */
/* editone merge                                                       */
/* ------------------------------------------------------------------ */

static const char MERGE_USAGE[] =
    "usage: editone merge DIR... [--alphas FILE.json] [--overwrite]\n"
    "\n"
    "Joins the manifests (editone-shard-K-of-N.json) that the shards of a sharded\n"
    "'editone apply' wrote to their output folders, and reports the targets that\n"
    "no manifest covers (a shard that has not finished) and those that two cover.\n"
    "Prints one line per problem and a summary on stdout.\n"
    "\n"
    "  --alphas FILE.json   write the alphas of every target, in the order of the\n"
    "                       whole list: the file a single 'apply --alphas' writes;\n"
    "                       only when every target is covered exactly once\n"
    "  --overwrite          replace FILE.json if it exists\n"
    "\n"
    "Exit status: 0 every target covered once, 1 targets missing or duplicated, a\n"
    "manifest unreadable or from another run, 2 a usage error.\n";

/* One manifest, read. */
typedef struct {
    char *path;
    json_value root;
    uint64_t fingerprint, targets_hash, total, shard, shards, first, count;
    const json_value *alphas; /* an array, or NULL for a baseline's */
} manifest;

static int bad_manifest(const char *path, const char *field)
{
    return fail("'%s': %s is missing or wrong; the file is not a manifest editone apply wrote", path, field);
}

/* The header numbers of a manifest, each checked. */
static int read_manifest_fields(manifest *m)
{
    static const char *const names[] = { "targets", "shard", "shards", "first", "count" };
    uint64_t *values[] = { &m->total, &m->shard, &m->shards, &m->first, &m->count };
    const json_value *a = json_get(&m->root, "alphas");
    if (!parse_hash(json_get(&m->root, "fingerprint"), &m->fingerprint))
        return bad_manifest(m->path, "\"fingerprint\"");
    if (!parse_hash(json_get(&m->root, "targets_fnv1a64"), &m->targets_hash))
        return bad_manifest(m->path, "\"targets_fnv1a64\"");
    for (size_t i = 0; i < COUNT_OF(names); i++) {
        const json_value *v = json_get(&m->root, names[i]);
        if (!v || v->kind != JSON_NUMBER || !parse_u64(v->text, 0, MAX_TARGETS, values[i]))
            return bad_manifest(m->path, names[i]);
    }
    if (m->shards == 0 || m->shard >= m->shards || m->first + m->count > m->total)
        return bad_manifest(m->path, "the shard's range");
    if (!a || (a->kind != JSON_ARRAY && a->kind != JSON_NULL))
        return bad_manifest(m->path, "\"alphas\"");
    m->alphas = a->kind == JSON_ARRAY ? a : NULL;
    return EC_OK;
}

/* Whether `name` is editone-shard-K-of-N.json. */
static int is_manifest_name(const char *name)
{
    unsigned long long k, n;
    int end = 0;
    return sscanf(name, "editone-shard-%llu-of-%llu.json%n", &k, &n, &end) == 2 && end > 0 &&
           name[end] == '\0';
}

/* Reads every manifest of DIR, appended to *ms (*n of them). */
static int read_manifests(const char *dir, manifest **ms, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = EC_OK;
    if (!d)
        return fail("reading '%s': %s", dir, strerror(errno));
    while (rc == EC_OK && (e = readdir(d)) != NULL) {
        if (!is_manifest_name(e->d_name))
            continue;
        if (*n == *cap) {
            manifest *grown = realloc(*ms, (*cap ? 2 * *cap : 8) * sizeof *grown);
            if (!grown) {
                rc = out_of_memory();
                break;
            }
            *ms = grown;
            *cap = *cap ? 2 * *cap : 8;
        }
        manifest *m = &(*ms)[*n];
        memset(m, 0, sizeof *m);
        if (!(m->path = path_join(dir, e->d_name))) {
            rc = out_of_memory();
            break;
        }
        ++*n;
        rc = json_read_file(m->path, MANIFEST_CAP, &m->root); /* empty on an error */
        if (rc == EC_OK)
            rc = read_manifest_fields(m);
    }
    closedir(d);
    return rc;
}

static int by_first(const void *a, const void *b)
{
    const manifest *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (x->count > y->count) - (x->count < y->count);
}

/* The shards whose slice holds targets a .. b (all manifests say N shards). */
static void print_range(const char *what, uint64_t a, uint64_t b, const manifest *m0, const char *why)
{
    uint64_t ka = 0, kb = 0;
    for (uint64_t k = 0; k < m0->shards; k++) {
        if (shard_first(k, m0->shards, m0->total) <= a)
            ka = k;
        if (shard_first(k, m0->shards, m0->total) <= b)
            kb = k;
    }
    printf("%s: targets %" PRIu64 " .. %" PRIu64 " of %" PRIu64 " (shard%s %" PRIu64, what, a, b, m0->total,
           ka == kb ? "" : "s", ka);
    if (ka != kb)
        printf(" .. %" PRIu64, kb);
    printf(" of %" PRIu64 "): %s\n", m0->shards, why);
}

/* Gaps and overlaps of the manifests' slices (sorted by first); counts in *missing and *repeated. */
static void sweep(const manifest *ms, size_t n, uint64_t *missing, uint64_t *repeated)
{
    uint64_t at = 0;
    *missing = *repeated = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t end = ms[i].first + ms[i].count;
        if (ms[i].first > at) {
            print_range("missing", at, ms[i].first - 1, &ms[0], "no manifest covers them");
            *missing += ms[i].first - at;
        } else if (ms[i].first < at && ms[i].count) {
            uint64_t last = (end < at ? end : at) - 1;
            char why[600];
            snprintf(why, sizeof why, "in '%s' and an earlier manifest", ms[i].path);
            print_range("duplicated", ms[i].first, last, &ms[0], why);
            *repeated += last + 1 - ms[i].first;
        }
        if (end > at)
            at = end;
    }
    if (n && at < ms[0].total) {
        print_range("missing", at, ms[0].total - 1, &ms[0], "no manifest covers them");
        *missing += ms[0].total - at;
    }
}

/* Every manifest of one run: one fingerprint, one target list, one shard count. */
static int check_same_run(const manifest *ms, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (ms[i].fingerprint != ms[0].fingerprint || ms[i].targets_hash != ms[0].targets_hash ||
            ms[i].total != ms[0].total || ms[i].shards != ms[0].shards)
            return fail("'%s' and '%s' come from different runs (another preset, other options, another target"
                        " list or another number of shards); merge the manifests of one run", ms[0].path,
                        ms[i].path);
    return EC_OK;
}

static void write_json_value(FILE *f, const json_value *v)
{
    static const char *const literals[] = { "null", "false", "true" };
    if (v->kind <= JSON_TRUE)
        fputs(literals[v->kind], f);
    else if (v->kind == JSON_NUMBER)
        fputs(v->text, f); /* the literal as written: the same bytes as the shard wrote */
    else if (v->kind == JSON_STRING)
        json_string(f, v->text);
    else {
        fputc(v->kind == JSON_ARRAY ? '[' : '{', f);
        for (size_t i = 0; i < v->n; i++) {
            fputs(i ? ", " : "", f);
            if (v->kind == JSON_OBJECT) {
                json_string(f, v->keys[i]);
                fputs(": ", f);
            }
            write_json_value(f, &v->items[i]);
        }
        fputc(v->kind == JSON_ARRAY ? ']' : '}', f);
    }
}

/* The joined alphas, laid out as apply --alphas writes them. */
static int write_merged_alphas(const manifest *ms, size_t n, const char *path)
{
    output_file out;
    size_t written = 0;
    int rc = open_output(path, &out);
    for (size_t i = 0; i < n && rc == EC_OK; i++)
        if (!ms[i].alphas)
            rc = fail("'%s' holds no alphas (a --baseline run); there is nothing to write to '%s'", ms[i].path, path);
    if (rc == EC_OK) {
        fputc('[', out.f);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < ms[i].alphas->n; k++) {
                fputs(written++ ? ",\n " : "", out.f);
                write_json_value(out.f, &ms[i].alphas->items[k]);
            }
        fputs("]\n", out.f);
    }
    return close_output(&out, rc);
}

/* The verdict on the manifests read: problems printed, then the summary; --alphas when complete. */
static int judge_manifests(manifest *ms, size_t n, const char *alphas)
{
    uint64_t missing = 0, repeated = 0;
    int rc = n ? check_same_run(ms, n) : fail("no editone-shard-K-of-N.json manifest found");
    if (rc != EC_OK)
        return rc;
    qsort(ms, n, sizeof *ms, by_first);
    sweep(ms, n, &missing, &repeated);
    printf("%zu manifest%s of %" PRIu64 " shards, %" PRIu64 " targets: %" PRIu64 " missing, %" PRIu64 " duplicated\n",
           n, n == 1 ? "" : "s", ms[0].shards, ms[0].total, missing, repeated);
    fflush(stdout);
    if (missing || repeated)
        return fail("the shards do not cover every target exactly once%s", alphas ? "; --alphas not written" : "");
    return alphas ? write_merged_alphas(ms, n, alphas) : EC_OK;
}

int cmd_merge(const engine_args *g, int argc, char **argv)
{
    const char *cmd = "merge", *alphas = NULL;
    option opts[] = { { "--alphas", &alphas, NULL }, { "--overwrite", NULL, &g_overwrite } };
    char **dirs = xcalloc((size_t)argc + 1, sizeof *dirs);
    manifest *ms = NULL;
    size_t n = 0, cap = 0;
    int n_dirs = 0, rc;
    (void)g;
    if (!dirs)
        return out_of_memory();
    rc = parse_with_operands(cmd, argc, argv, opts, COUNT_OF(opts), dirs, &n_dirs);
    if (rc == EC_HELP)
        rc = show_help(MERGE_USAGE);
    else if (rc == EC_OK && n_dirs == 0)
        rc = usage_error(cmd, "give the output folder(s) of the shards");
    else if (rc == EC_OK && alphas && !g_overwrite && access(alphas, F_OK) == 0)
        rc = exists_error(alphas);
    for (int i = 0; i < n_dirs && rc == EC_OK; i++)
        rc = read_manifests(dirs[i], &ms, &n, &cap);
    if (rc == EC_OK)
        rc = judge_manifests(ms, n, alphas);
    for (size_t i = 0; i < n; i++) {
        json_free(&ms[i].root);
        free(ms[i].path);
    }
    free(ms);
    free(dirs);
    return rc;
}

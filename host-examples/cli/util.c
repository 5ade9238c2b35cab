/*
 * editone CLI helpers: messages and exit codes, strict option and number
 * parsing, seed lists, raw little-endian float32 files, JSON output, the
 * progress line and Ctrl-C.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Exit codes, limits, messages                                        */
/* ------------------------------------------------------------------ */

const char EXIT_STATUS_HELP[] =
    "\n"
    "Exit status: 0 success; 1 an error while working (a library error, printed\n"
    "as 'editone: <task>: <EO_ERR_...>: <details>', a bad input file, or an\n"
    "output file that exists without --overwrite); 2 a usage error (a bad or\n"
    "missing option, or outputs that collide with each other or with an input);\n"
    "3 cancelled (Ctrl-C or SIGTERM; only whole files are left); 4 no face was\n"
    "found in a photo ('faces', 'invert --faces': every other photo was done).\n";

/* Reports a usage error of command `cmd` (NULL for the global options). */
int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "editone%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'editone%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return EC_USAGE;
}

/* Reports an error that is not the library's (a file, memory). */
int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("editone: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EC_ERROR;
}

/*
 * Reports a failed library call as "editone: <doing>: <status>: <details>"
 * and returns the exit code for it (EC_CANCELLED or EC_ERROR).
 */
int lib_error(eo_status status, const char *doing_fmt, ...)
{
    const char *detail = eo_last_error(); /* before any other call */
    va_list ap;
    fputs("editone: ", stderr);
    va_start(ap, doing_fmt);
    vfprintf(stderr, doing_fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s", eo_status_name((int32_t)status));
    if (detail && *detail)
        fprintf(stderr, ": %s", detail);
    fputc('\n', stderr);
    return status == EO_ERR_CANCELLED ? EC_CANCELLED : EC_ERROR;
}

int out_of_memory(void)
{
    return fail("out of memory");
}

void *xcalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

/* ------------------------------------------------------------------ */
/* Strict number parsing                                               */
/* ------------------------------------------------------------------ */

/* A decimal integer in [min, max]: digits only, no sign, no spaces. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !isdigit((unsigned char)s[0]))
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Splits "HEAD<sep>TAIL" at the first `sep`: HEAD (non-empty, shorter than
 * `cap`) is copied into `head` and *tail points after the separator.
 * Returns 0 when `text` has no such split. */
int split_pair(const char *text, char sep, char *head, size_t cap, const char **tail)
{
    const char *at = strchr(text, sep);
    size_t len = at ? (size_t)(at - text) : 0;
    if (!at || len == 0 || len >= cap)
        return 0;
    memcpy(head, text, len);
    head[len] = '\0';
    *tail = at + 1;
    return 1;
}

/* A finite decimal number in [min, max]. */
static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;
    if (!s || !*s || isspace((unsigned char)s[0]))
        return 0;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Option helpers: parse `text` of option `name`, or report a usage error. */
int opt_u64(const char *cmd, const char *name, const char *text, uint64_t min, uint64_t max,
            uint64_t *out)
{
    if (parse_u64(text, min, max, out))
        return EC_OK;
    return usage_error(cmd, "%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64, name, text, min,
                       max);
}

int opt_u32(const char *cmd, const char *name, const char *text, uint32_t min, uint32_t max,
            uint32_t *out)
{
    uint64_t v;
    int rc = opt_u64(cmd, name, text, min, max, &v);
    if (rc == EC_OK)
        *out = (uint32_t)v;
    return rc;
}

int opt_float(const char *cmd, const char *name, const char *text, double min, double max,
              float *out)
{
    double v;
    if (parse_double(text, min, max, &v)) {
        *out = (float)v;
        return EC_OK;
    }
    if (min <= -MAX_FLOAT && max >= MAX_FLOAT)
        return usage_error(cmd, "%s: '%s' is not a finite number", name, text);
    return usage_error(cmd, "%s: '%s' is not a number in %g..%g", name, text, min, max);
}

/* ------------------------------------------------------------------ */
/* Option parsing                                                      */
/* ------------------------------------------------------------------ */

static const option *find_option(const option *opts, size_t n, const char *arg, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, arg, len) == 0)
            return &opts[i];
    return NULL;
}

/* 1 when `arg` ("--name", not "--name=V") is an option that takes a value. */
int find_option_takes_value(const option *opts, size_t n, const char *arg)
{
    const option *o = strchr(arg, '=') ? NULL : find_option(opts, n, arg, strlen(arg));
    return o && o->value;
}

/*
 * Parses argv[0..argc) as "--name VALUE", "--name=VALUE" or "--flag".
 * Returns EC_OK, EC_HELP for --help/-h, or EC_USAGE. With `rest` set,
 * stops at the first argument that is not an option and stores its index
 * there (argc when there is none); otherwise such an argument is an error.
 */
/*
 * Removes every "NAME VALUE" pair from argv (argc shrinks) and stores the
 * values, in order, in values (room for *argc entries); returns how many.
 */
size_t take_repeated(const char *name, int *argc, char **argv, const char **values)
{
    size_t found = 0;
    int kept = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0 && i + 1 < *argc) {
            values[found++] = argv[++i];
            continue;
        }
        argv[kept++] = argv[i];
    }
    *argc = kept;
    return found;
}

int parse_options(const char *cmd, int argc, char **argv, const option *opts, size_t n,
                  int *rest)
{
    int i;
    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return EC_HELP;
        if (arg[0] != '-' || arg[1] == '\0') {
            if (rest)
                break;
            return usage_error(cmd, "unexpected argument '%s'", arg);
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return usage_error(cmd, "unknown option '%s'", arg);
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option *o = find_option(opts, n, arg, len);
        if (!o)
            return usage_error(cmd, "unknown option '%.*s'", (int)(len > 200 ? 200 : len), arg);
        if (!o->value) {
            if (eq)
                return usage_error(cmd, "option %s takes no value", o->name);
            *o->flag = 1;
            continue;
        }
        if (*o->value)
            return usage_error(cmd, "option %s given twice", o->name);
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return usage_error(cmd, "option %s needs a value", o->name);
        }
    }
    if (rest)
        *rest = i;
    return EC_OK;
}

/*
 * Options before or after the operands (invert's photos, convert's
 * paths): the operands go to operands[*n] (room for argc), the rest is
 * parsed as parse_options does.
 */
int parse_with_operands(const char *cmd, int argc, char **argv, const option *opts, size_t n, char **operands,
                        int *n_operands)
{
    char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc;
    if (!rest)
        return out_of_memory();
    *n_operands = 0;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-') {
            operands[(*n_operands)++] = argv[i];
            continue;
        }
        rest[nrest++] = argv[i];
        if (find_option_takes_value(opts, n, argv[i]) && i + 1 < argc)
            rest[nrest++] = argv[++i];
    }
    rc = parse_options(cmd, nrest, rest, opts, n, NULL);
    free(rest);
    return rc;
}

int show_help(const char *usage)
{
    fputs(usage, stdout);
    fputs(EXIT_STATUS_HELP, stdout);
    return EC_OK;
}

/* ------------------------------------------------------------------ */
/* Seed lists                                                          */
/* ------------------------------------------------------------------ */

static int push_seed(uint64_t **seeds, size_t *n, size_t *cap, uint64_t seed)
{
    if (*n == *cap) {
        size_t new_cap = *cap ? *cap * 2 : 16;
        uint64_t *grown = realloc(*seeds, new_cap * sizeof **seeds);
        if (!grown)
            return 0;
        *seeds = grown;
        *cap = new_cap;
    }
    (*seeds)[(*n)++] = seed;
    return 1;
}

/* One number of a seed list at *p (advanced past it). */
static int seed_at(const char **p, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (!isdigit((unsigned char)**p))
        return 0;
    errno = 0;
    v = strtoull(*p, &end, 10);
    if (errno != 0 || v > UINT32_MAX)
        return 0;
    *p = end;
    *out = (uint64_t)v;
    return 1;
}

/* Parses a seed list such as "1,2,5-8" (seeds 0..2^32-1) into a new array. */
int parse_seed_list(const char *cmd, const char *opt, const char *text, uint64_t **out,
                    size_t *count)
{
    uint64_t *seeds = NULL;
    size_t n = 0, cap = 0;
    const char *p = text;
    for (;;) {
        uint64_t lo, hi;
        if (!seed_at(&p, &lo))
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!seed_at(&p, &hi) || hi < lo)
                goto bad;
        }
        if (hi - lo >= MAX_TARGETS - n) {
            free(seeds);
            return usage_error(cmd, "%s: more than %u seeds", opt, MAX_TARGETS);
        }
        for (uint64_t s = lo; s <= hi; s++)
            if (!push_seed(&seeds, &n, &cap, s)) {
                free(seeds);
                return out_of_memory();
            }
        if (*p == '\0')
            break;
        if (*p++ != ',')
            goto bad;
    }
    *out = seeds;
    *count = n;
    return EC_OK;
bad:
    free(seeds);
    return usage_error(cmd, "%s: '%s' is not a seed list like 1,2,5-8 (seeds 0..4294967295)", opt, text);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Reads an image file as a tightly packed view of `format` (free view->data). */
int read_image(const char *path, eo_pixel_format format, eo_image_view *view)
{
    uint32_t w = 0, h = 0;
    size_t needed = 0;
    eo_status st = eo_image_read(path, format, NULL, 0, &w, &h, &needed);
    uint8_t *pixels;
    if (st != EO_OK)
        return lib_error(st, "reading '%s'", path);
    if (!(pixels = xcalloc(needed, 1)))
        return out_of_memory();
    st = eo_image_read(path, format, pixels, needed, &w, &h, NULL);
    if (st != EO_OK) {
        free(pixels);
        return lib_error(st, "reading '%s'", path);
    }
    *view = (eo_image_view){ pixels, w, h, (uint32_t)(needed / h), format };
    return EC_OK;
}

int file_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail("reading '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail("reading '%s': not a regular file", path);
    *size = (uint64_t)st.st_size;
    return EC_OK;
}

/* Whether both paths exist and name the same file (links included). */
int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static float f32_from_le(const unsigned char *b)
{
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void f32_to_le(float f, unsigned char *b)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    b[0] = (unsigned char)u;
    b[1] = (unsigned char)(u >> 8);
    b[2] = (unsigned char)(u >> 16);
    b[3] = (unsigned char)(u >> 24);
}

/* Reads n little-endian float32 values from f into v; returns how many it read. */
static size_t read_f32s(FILE *f, float *v, size_t n)
{
    unsigned char chunk[4096];
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < sizeof chunk / 4 ? n - done : sizeof chunk / 4;
        if (fread(chunk, 4, want, f) != want)
            break;
        for (size_t i = 0; i < want; i++)
            v[done + i] = f32_from_le(chunk + 4 * i);
        done += want;
    }
    return done;
}

/*
 * Reads n little-endian float32 values starting at value `first` into a
 * new array; with `whole`, they must also be the whole file.
 */
static int read_f32_part(const char *path, uint64_t first, size_t n, int whole, float **out)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    FILE *f;
    if (!v)
        return out_of_memory();
    f = fopen(path, "rb");
    if (!f) {
        free(v);
        return fail("reading '%s': %s", path, strerror(errno));
    }
    if ((first > 0 && fseeko(f, (off_t)(first * 4), SEEK_SET) != 0) || read_f32s(f, v, n) < n ||
        (whole && fgetc(f) != EOF)) {
        int err = ferror(f);
        fclose(f);
        free(v);
        return fail("reading '%s': %s", path, err ? "read error" : "the file changed while reading");
    }
    fclose(f);
    *out = v;
    return EC_OK;
}

/* Reads exactly n little-endian float32 values (the whole file) into a new array. */
int read_f32_file(const char *path, size_t n, float **out)
{
    return read_f32_part(path, 0, n, 1, out);
}

/*
 * Reads values first .. first + n - 1 of a little-endian float32 file
 * (whose size the caller checked) into a new array: a part of a file too
 * large to hold.
 */
int read_f32_range(const char *path, uint64_t first, size_t n, float **out)
{
    return read_f32_part(path, first, n, 0, out);
}

int write_f32(FILE *f, const float *v, size_t n)
{
    unsigned char chunk[4096];
    while (n > 0) {
        size_t k = n < sizeof chunk / 4 ? n : sizeof chunk / 4;
        for (size_t i = 0; i < k; i++)
            f32_to_le(v[i], chunk + 4 * i);
        if (fwrite(chunk, 4, k, f) != k)
            return 0;
        v += k;
        n -= k;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Output files: written under a hidden name, then published whole      */
/* ------------------------------------------------------------------ */

const char *g_command = NULL;
int g_overwrite = 0;

uint32_t write_flags(void)
{
    return g_overwrite ? EO_WRITE_REPLACE : 0;
}

/* The message for an output that exists when replacing it was not asked for. */
int exists_error(const char *path)
{
    fprintf(stderr, "editone%s%s: '%s' exists; give --overwrite to replace it\n", g_command ? " " : "",
            g_command ? g_command : "", path);
    return EC_ERROR;
}

/* A library write's failure: an existing file gets the --overwrite hint. */
int write_error(eo_status st, const char *path)
{
    if (st == EO_ERR_EXISTS)
        return exists_error(path);
    return lib_error(st, "writing '%s'", path);
}

/*
 * Creates "DIR/.NAME.XXXXXX.tmp" beside `path`, exclusively (O_EXCL) and
 * with the permissions a new file gets (0666 less the umask; mkstemp would
 * make it 0600). NAME is cut so that the temporary name stays within the
 * usual 255-byte limit.
 */
static int create_temp(const char *path, char **tmp)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0, name_len = strlen(path + dir_len);
    static unsigned long counter;
    int n = name_len > 200 ? 200 : (int)name_len;
    char *t = malloc(dir_len + (size_t)n + 16);
    if (!t)
        return -1;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned long r = (unsigned long)(now_s() * 1e9) ^ ((unsigned long)getpid() << 16) ^ (++counter * 2654435761u);
        char suffix[7];
        for (int i = 0; i < 6; i++, r /= 36)
            suffix[i] = digits[r % 36];
        suffix[6] = '\0';
        sprintf(t, "%.*s.%.*s.%s.tmp", (int)dir_len, path, n, path + dir_len, suffix);
        int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) {
            *tmp = fd >= 0 ? t : NULL;
            if (fd < 0)
                free(t);
            return fd;
        }
    }
    free(t);
    errno = EEXIST;
    return -1;
}

/* Starts writing `path`: the data goes to a hidden temporary file beside it. */
int open_output(const char *path, output_file *o)
{
    int fd = create_temp(path, &o->tmp);
    o->path = path;
    o->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!o->f) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
        return fail("writing '%s': %s", path, strerror(err));
    }
    return EC_OK;
}

/*
 * Gives the finished temporary file its name; returns 0 or an errno.
 * Replacing: rename(2), atomic. Otherwise link(2), which fails with EEXIST
 * rather than replace anything, even a file made a moment ago by another
 * process; only where the file system has no hard links, an existence
 * check and rename (racy, but the best such a file system allows).
 */
static int publish(const char *tmp, const char *path)
{
    struct stat st;
    if (g_overwrite)
        return rename(tmp, path) == 0 ? 0 : errno;
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EXDEV)
        return errno;
    if (lstat(path, &st) == 0)
        return EEXIST;
    return rename(tmp, path) == 0 ? 0 : errno;
}

/* Whether the stream's data reached the file (flushed, synced, closed). */
static int settle_stream(FILE *f)
{
    int ok = !ferror(f) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0)
        ok = 0;
    else
        errno = err;
    return ok;
}

/*
 * Finishes an output: with rc EC_OK the file is published under its name
 * (replacing one only with --overwrite); otherwise, or when writing failed,
 * the temporary file is removed and nothing else changes. Returns rc, or
 * the error it reported.
 */
int close_output(output_file *o, int rc)
{
    int err = 0;
    if (!o->f)
        return rc;
    if (!settle_stream(o->f) && rc == EC_OK)
        rc = fail("writing '%s': %s", o->path, strerror(errno ? errno : EIO));
    if (rc == EC_OK && (err = publish(o->tmp, o->path)) != 0)
        rc = err == EEXIST ? exists_error(o->path) : fail("writing '%s': %s", o->path, strerror(err));
    if (rc != EC_OK)
        unlink(o->tmp);
    free(o->tmp);
    o->f = NULL;
    o->tmp = NULL;
    return rc;
}

/* A new string "dir/name". */
char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* A new string "dir/<name><suffix>", e.g. the files 'editone invert' writes
   for a photo: NAME.f32, NAME-photo.png. */
char *named_path(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(name) + strlen(suffix) + 1;
    char *file = malloc(len), *path;
    if (!file)
        return NULL;
    snprintf(file, len, "%s%s", name, suffix);
    path = path_join(dir, file);
    free(file);
    return path;
}

/* mkdir -p */
int make_dirs(const char *dir)
{
    struct stat st;
    char *path = malloc(strlen(dir) + 1);
    if (!path)
        return out_of_memory();
    strcpy(path, dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            int rc = fail("creating directory '%s': %s", path, strerror(errno));
            free(path);
            return rc;
        }
        *p = '/';
    }
    free(path);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return fail("creating directory '%s': %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail("creating directory '%s': not a directory", dir);
    return EC_OK;
}

/* ------------------------------------------------------------------ */
/* JSON output                                                         */
/* ------------------------------------------------------------------ */

void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

/* A double with the 17 digits that read back to the same bits. */
void json_double(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

/* ------------------------------------------------------------------ */
/* Checksums: FNV-1a, 64 bits (which files belong together, not security) */
/* ------------------------------------------------------------------ */

uint64_t fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Of n floats as little-endian bytes, the way write_f32 stores them. */
uint64_t fnv1a64_f32(const float *v, size_t n)
{
    uint64_t h = FNV1A64_INIT;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4];
        f32_to_le(v[i], b);
        h = fnv1a64(h, b, 4);
    }
    return h;
}

/* Of a view's pixels, row by row (its stride's padding left out). */
uint64_t fnv1a64_view(const eo_image_view *v)
{
    size_t row = (size_t)v->width * (v->format == EO_PIXEL_RGBA8 ? 4 : v->format == EO_PIXEL_GRAY8 ? 1 : 3);
    uint64_t h = FNV1A64_INIT;
    for (uint32_t y = 0; y < v->height; y++)
        h = fnv1a64(h, v->data + (size_t)y * v->stride, row);
    return h;
}

/* ------------------------------------------------------------------ */
/* Ctrl-C and progress                                                 */
/* ------------------------------------------------------------------ */

volatile sig_atomic_t g_interrupted = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/*
 * The first Ctrl-C or SIGTERM asks long operations to stop: the command
 * then removes its temporary files and exits 3, so a stopped run leaves
 * only whole files. A second signal kills at once.
 */
void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cancelled(const char *doing)
{
    fprintf(stderr, "editone: %s: cancelled\n", doing);
    return EC_CANCELLED;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, const char *label)
{
    p->label = label;
    p->start = now_s();
    p->last_draw = 0.0;
    p->tty = isatty(STDERR_FILENO);
    p->drawn = 0;
    p->last_tenth = 0;
}

void progress_show(progress *p, uint64_t done, uint64_t total)
{
    double t = now_s();
    unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
    int width = snprintf(NULL, 0, "%" PRIu64, total);
    if (p->tty) {
        if (done < total && p->drawn && t - p->last_draw < 0.05)
            return;
        fprintf(stderr, "\r%s %*" PRIu64 "/%" PRIu64 " %3u%% %7.1fs", p->label, width, done, total, pct,
                t - p->start);
        p->last_draw = t;
        p->drawn = 1;
    } else {
        int tenth = total ? (int)(done * 10 / total) : 10;
        if (tenth <= p->last_tenth)
            return;
        p->last_tenth = tenth;
        fprintf(stderr, "%s %*" PRIu64 "/%" PRIu64 " %3u%% %7.1fs\n", p->label, width, done, total, pct,
                t - p->start);
    }
    fflush(stderr);
}

void progress_finish(progress *p)
{
    if (p->tty && p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}

/* eo_progress_fn: draws the line; a non-zero return (after Ctrl-C) cancels. */
int32_t on_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)stage;
    progress_show(user, done, total);
    return g_interrupted ? 1 : 0;
}

/* eo_progress_fn that only cancels (for timed runs). */
int32_t on_progress_quiet(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)user;
    (void)stage;
    (void)done;
    (void)total;
    return g_interrupted ? 1 : 0;
}

/* One of `choices` by name; *out receives its index. */
int parse_choice(const char *cmd, const char *name, const char *text, const char *const *choices,
                 size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(text, choices[i]) == 0) {
            *out = (uint32_t)i;
            return EC_OK;
        }
    return usage_error(cmd, "%s: '%s' is not one of the choices (see --help)", name, text);
}

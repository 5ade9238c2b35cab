/*
 * editone CLI: the files a command will write, checked before it writes
 * any of them (DESIGN.md, "Files are sacred"):
 *   - no two outputs have the same name (exit 2, naming both sources);
 *   - no output is one of the command's inputs, not even with --overwrite:
 *     an input replaced while it is still to be read gives wrong results
 *     (exit 2);
 *   - without --overwrite no output exists yet (exit 1).
 * The last rule holds again when each file is published (close_output,
 * the library's EO_WRITE_REPLACE), for a file that appears meanwhile.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int by_id(const void *a, const void *b)
{
    const file_id *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* items (n in use, room for *cap) with room for one more, or NULL when memory ran out. */
static void *room_for_one(void *items, size_t n, size_t *cap, size_t size)
{
    size_t want = *cap ? 2 * *cap : 16;
    void *grown;
    if (n < *cap)
        return items;
    if ((grown = realloc(items, want * size)) != NULL)
        *cap = want;
    return grown;
}

/* Records an input; one that does not exist cannot be written over (reading it fails later). */
int plan_input(output_plan *p, const char *path)
{
    struct stat st;
    file_id *inputs;
    if (!path || stat(path, &st) != 0)
        return EC_OK;
    if (!(inputs = room_for_one(p->inputs, p->n_inputs, &p->cap_inputs, sizeof *inputs)))
        return out_of_memory();
    p->inputs = inputs;
    p->inputs[p->n_inputs++] = (file_id){ st.st_dev, st.st_ino };
    p->inputs_sorted = 0;
    return EC_OK;
}

/* Whether `path` exists and is one of the inputs (links and other spellings included). */
static int is_input(output_plan *p, const char *path)
{
    struct stat st;
    file_id id;
    if (p->n_inputs == 0 || stat(path, &st) != 0)
        return 0;
    if (!p->inputs_sorted) {
        qsort(p->inputs, p->n_inputs, sizeof *p->inputs, by_id);
        p->inputs_sorted = 1;
    }
    id = (file_id){ st.st_dev, st.st_ino };
    return bsearch(&id, p->inputs, p->n_inputs, sizeof id, by_id) != NULL;
}

/*
 * "REAL_FOLDER/NAME" for path "FOLDER/NAME": two outputs with the same key
 * are one file, however their folders are spelled. A folder that does not
 * exist yet keeps its spelling. The last folder's real path is cached:
 * a command's outputs mostly share one.
 */
static char *output_key(output_plan *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    const char *name = slash ? slash + 1 : path;
    if (!p->dir_text || strlen(p->dir_text) != dir_len || strncmp(p->dir_text, path, dir_len) != 0) {
        free(p->dir_text);
        free(p->dir_key);
        p->dir_text = strndup(path, dir_len);
        p->dir_key = p->dir_text ? realpath(dir_len ? p->dir_text : (slash ? "/" : "."), NULL) : NULL;
        if (!p->dir_key && p->dir_text)
            p->dir_key = strdup(p->dir_text);
        if (!p->dir_key)
            return NULL;
    }
    return path_join(p->dir_key, name);
}

/* Records an output and what writes it (printf-style, e.g. "photo '%s'"). */
int plan_output(output_plan *p, const char *path, const char *source_fmt, ...)
{
    planned_output *o = room_for_one(p->outs, p->n_outs, &p->cap_outs, sizeof *o);
    va_list ap;
    int len;
    if (!o)
        return out_of_memory();
    p->outs = o;
    o = &p->outs[p->n_outs];
    va_start(ap, source_fmt);
    len = vsnprintf(NULL, 0, source_fmt, ap);
    va_end(ap);
    o->path = strdup(path);
    o->key = output_key(p, path);
    o->source = len >= 0 ? malloc((size_t)len + 1) : NULL;
    o->order = p->n_outs++;
    if (!o->path || !o->key || !o->source)
        return out_of_memory();
    va_start(ap, source_fmt);
    vsnprintf(o->source, (size_t)len + 1, source_fmt, ap);
    va_end(ap);
    return EC_OK;
}

static int by_key(const void *a, const void *b)
{
    const planned_output *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int collision(const char *path, const char *a, const char *b)
{
    return usage_error(g_command, "%s and %s would both write '%s'; give them different names", a, b, path);
}

/*
 * One output against the inputs and the files there: reports an input
 * (EC_USAGE); counts an existing file, keeping the first one's path.
 */
static int check_existing(output_plan *p, const char *path, const char *source)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return EC_OK;
    if (is_input(p, path))
        return usage_error(g_command, "'%s' (the output for %s) is one of the inputs; write the outputs elsewhere",
                           path, source);
    if (p->n_existing++ == 0 && !(p->first_existing = strdup(path)))
        return out_of_memory();
    return EC_OK;
}

/*
 * An output checked at once instead of kept: for the image files of up to
 * a million targets, whose names cannot repeat one another (the caller
 * sees to that) but may repeat a kept output's.
 */
int plan_check_output(output_plan *p, const char *path, const char *source)
{
    char *key = p->n_outs ? output_key(p, path) : NULL;
    if (p->n_outs && !key)
        return out_of_memory();
    for (size_t i = 0; key && i < p->n_outs; i++)
        if (strcmp(p->outs[i].key, key) == 0) {
            free(key);
            return collision(path, p->outs[i].source, source);
        }
    free(key);
    return check_existing(p, path, source);
}

/* The verdict on every output: collisions, inputs, then existing files. */
int plan_check(output_plan *p)
{
    int rc = EC_OK;
    if (p->n_outs > 1)
        qsort(p->outs, p->n_outs, sizeof *p->outs, by_key);
    for (size_t i = 1; i < p->n_outs && rc == EC_OK; i++)
        if (strcmp(p->outs[i - 1].key, p->outs[i].key) == 0)
            rc = collision(p->outs[i].path, p->outs[i - 1].source, p->outs[i].source);
    for (size_t i = 0; i < p->n_outs && rc == EC_OK; i++)
        rc = check_existing(p, p->outs[i].path, p->outs[i].source);
    if (rc != EC_OK || p->n_existing == 0 || g_overwrite)
        return rc;
    if (p->n_existing == 1)
        return exists_error(p->first_existing);
    fprintf(stderr, "editone %s: '%s' and %zu more outputs exist; give --overwrite to replace them\n", g_command,
            p->first_existing, p->n_existing - 1);
    return EC_ERROR;
}

void plan_free(output_plan *p)
{
    for (size_t i = 0; i < p->n_outs; i++) {
        free(p->outs[i].path);
        free(p->outs[i].key);
        free(p->outs[i].source);
    }
    free(p->outs);
    free(p->inputs);
    free(p->dir_text);
    free(p->dir_key);
    free(p->first_existing);
    memset(p, 0, sizeof *p);
}

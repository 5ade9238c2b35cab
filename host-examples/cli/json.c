/*
 * editone CLI: a small strict JSON reader (RFC 8259) for the files the
 * command reads back, e.g. the NAME.json of 'editone invert --faces'.
 * The whole text becomes a tree of json_value; numbers keep their literal,
 * so that a float or a double written with enough digits reads back to
 * the same bits. Files are read up to a cap on the bytes read; nesting is
 * limited, so that no input recurses without end.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s, *end, *start;
    char *err;
    size_t err_len;
    int failed;
} reader;

static int bad(reader *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int bad(reader *r, const char *fmt, ...)
{
    va_list ap;
    int len;
    if (r->failed)
        return 0;
    r->failed = 1;
    len = snprintf(r->err, r->err_len, "at byte %zu: ", (size_t)(r->s - r->start));
    va_start(ap, fmt);
    if (len >= 0 && (size_t)len < r->err_len)
        vsnprintf(r->err + len, r->err_len - (size_t)len, fmt, ap);
    va_end(ap);
    return 0;
}

static void skip_space(reader *r)
{
    while (r->s < r->end && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r'))
        r->s++;
}

/* Appends byte c to the growing buffer *buf (length *len, room *cap). */
static int put_byte(char **buf, size_t *len, size_t *cap, char c)
{
    if (*len + 1 >= *cap) {
        size_t want = *cap ? 2 * *cap : 32;
        char *grown = realloc(*buf, want);
        if (!grown)
            return 0;
        *buf = grown;
        *cap = want;
    }
    (*buf)[(*len)++] = c;
    return 1;
}

static int put_utf8(char **buf, size_t *len, size_t *cap, uint32_t cp)
{
    if (cp < 0x80)
        return put_byte(buf, len, cap, (char)cp);
    if (cp < 0x800)
        return put_byte(buf, len, cap, (char)(0xC0 | cp >> 6)) && put_byte(buf, len, cap, (char)(0x80 | (cp & 0x3F)));
    if (cp < 0x10000)
        return put_byte(buf, len, cap, (char)(0xE0 | cp >> 12)) &&
               put_byte(buf, len, cap, (char)(0x80 | ((cp >> 6) & 0x3F))) &&
               put_byte(buf, len, cap, (char)(0x80 | (cp & 0x3F)));
    return put_byte(buf, len, cap, (char)(0xF0 | cp >> 18)) &&
           put_byte(buf, len, cap, (char)(0x80 | ((cp >> 12) & 0x3F))) &&
           put_byte(buf, len, cap, (char)(0x80 | ((cp >> 6) & 0x3F))) &&
           put_byte(buf, len, cap, (char)(0x80 | (cp & 0x3F)));
}

static int hex4(reader *r, uint32_t *out)
{
    uint32_t v = 0;
    if (r->end - r->s < 4)
        return bad(r, "a \\u escape cut short");
    for (int i = 0; i < 4; i++) {
        char c = *r->s++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return bad(r, "a \\u escape with a non-hex digit");
    }
    *out = v;
    return 1;
}

/* A string at r->s (its opening quote) into a new NUL-terminated text. */
static int read_string(reader *r, char **out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    r->s++;
    while (r->s < r->end && *r->s != '"') {
        unsigned char c = (unsigned char)*r->s++;
        uint32_t cp, low;
        int ok = 1;
        if (c < 0x20) {
            free(buf);
            return bad(r, "a control character inside a string");
        }
        if (c != '\\') {
            ok = put_byte(&buf, &len, &cap, (char)c);
        } else if (r->s >= r->end) {
            break;
        } else {
            char e = *r->s++;
            switch (e) {
            case '"': case '\\': case '/': ok = put_byte(&buf, &len, &cap, e); break;
            case 'b': ok = put_byte(&buf, &len, &cap, '\b'); break;
            case 'f': ok = put_byte(&buf, &len, &cap, '\f'); break;
            case 'n': ok = put_byte(&buf, &len, &cap, '\n'); break;
            case 'r': ok = put_byte(&buf, &len, &cap, '\r'); break;
            case 't': ok = put_byte(&buf, &len, &cap, '\t'); break;
            case 'u':
                if (!hex4(r, &cp))
                    break;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    bad(r, "a lone low surrogate");
                    break;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (r->end - r->s < 2 || r->s[0] != '\\' || r->s[1] != 'u') {
                        bad(r, "a high surrogate without its low one");
                        break;
                    }
                    r->s += 2;
                    if (!hex4(r, &low))
                        break;
                    if (low < 0xDC00 || low > 0xDFFF) {
                        bad(r, "a high surrogate without its low one");
                        break;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                if (cp == 0) {
                    bad(r, "a NUL character inside a string");
                    break;
                }
                ok = put_utf8(&buf, &len, &cap, cp);
                break;
            default:
                bad(r, "an unknown escape '\\%c'", e);
            }
        }
        if (!ok) {
            free(buf);
            return bad(r, "out of memory");
        }
        if (r->failed) {
            free(buf);
            return 0;
        }
    }
    if (r->s >= r->end) {
        free(buf);
        return bad(r, "a string without its closing quote");
    }
    r->s++;
    if (!put_byte(&buf, &len, &cap, '\0')) {
        free(buf);
        return bad(r, "out of memory");
    }
    *out = buf;
    return 1;
}

static int is_digit(const reader *r)
{
    return r->s < r->end && *r->s >= '0' && *r->s <= '9';
}

/* A number literal: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int read_number(reader *r, json_value *v)
{
    const char *begin = r->s;
    if (r->s < r->end && *r->s == '-')
        r->s++;
    if (!is_digit(r))
        return bad(r, "expected a value");
    if (*r->s == '0')
        r->s++;
    else
        while (is_digit(r))
            r->s++;
    if (r->s < r->end && *r->s == '.') {
        r->s++;
        if (!is_digit(r))
            return bad(r, "a number without digits after its point");
        while (is_digit(r))
            r->s++;
    }
    if (r->s < r->end && (*r->s == 'e' || *r->s == 'E')) {
        r->s++;
        if (r->s < r->end && (*r->s == '+' || *r->s == '-'))
            r->s++;
        if (!is_digit(r))
            return bad(r, "a number without digits in its exponent");
        while (is_digit(r))
            r->s++;
    }
    v->kind = JSON_NUMBER;
    if (!(v->text = strndup(begin, (size_t)(r->s - begin))))
        return bad(r, "out of memory");
    return 1;
}

static int read_value(reader *r, json_value *v, int depth);

/* Room for one more item in an array or object under construction. */
static int grow_items(reader *r, json_value *v, size_t *cap, int keyed)
{
    size_t want = *cap ? 2 * *cap : 8;
    json_value *items;
    if (v->n < *cap)
        return 1;
    if (!(items = realloc(v->items, want * sizeof *items)))
        return bad(r, "out of memory");
    v->items = items;
    if (keyed) {
        char **keys = realloc(v->keys, want * sizeof *keys);
        if (!keys)
            return bad(r, "out of memory");
        v->keys = keys;
    }
    *cap = want;
    return 1;
}

static int read_container(reader *r, json_value *v, int depth, int keyed)
{
    char close = keyed ? '}' : ']';
    size_t cap = 0;
    v->kind = keyed ? JSON_OBJECT : JSON_ARRAY;
    r->s++;
    skip_space(r);
    if (r->s < r->end && *r->s == close) {
        r->s++;
        return 1;
    }
    for (;;) {
        char *key = NULL;
        skip_space(r);
        if (keyed) {
            if (r->s >= r->end || *r->s != '"')
                return bad(r, "expected a key in quotes");
            if (!read_string(r, &key))
                return 0;
            for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->keys[i], key) == 0) {
                    bad(r, "the key \"%.100s\" is given twice", key);
                    free(key);
                    return 0;
                }
            skip_space(r);
            if (r->s >= r->end || *r->s != ':') {
                free(key);
                return bad(r, "expected ':' after a key");
            }
            r->s++;
        }
        if (!grow_items(r, v, &cap, keyed)) {
            free(key);
            return 0;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        if (keyed)
            v->keys[v->n] = key;
        v->n++;
        if (!read_value(r, &v->items[v->n - 1], depth + 1))
            return 0;
        skip_space(r);
        if (r->s < r->end && *r->s == ',') {
            r->s++;
            continue;
        }
        if (r->s < r->end && *r->s == close) {
            r->s++;
            return 1;
        }
        return bad(r, keyed ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int literal(reader *r, const char *word, json_kind kind, json_value *v)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->s) < n || strncmp(r->s, word, n) != 0)
        return bad(r, "expected a value");
    r->s += n;
    v->kind = kind;
    return 1;
}

static int read_value(reader *r, json_value *v, int depth)
{
    if (depth > MAX_DEPTH)
        return bad(r, "nested more than %d deep", MAX_DEPTH);
    skip_space(r);
    if (r->s >= r->end)
        return bad(r, "the text ends where a value was expected");
    switch (*r->s) {
    case '{': return read_container(r, v, depth, 1);
    case '[': return read_container(r, v, depth, 0);
    case '"': v->kind = JSON_STRING; return read_string(r, &v->text);
    case 't': return literal(r, "true", JSON_TRUE, v);
    case 'f': return literal(r, "false", JSON_FALSE, v);
    case 'n': return literal(r, "null", JSON_NULL, v);
    default: return read_number(r, v);
    }
}

void json_free(json_value *v)
{
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->text);
    memset(v, 0, sizeof *v);
}

/*
 * Parses len bytes of text into *out (json_free it). On an error returns
 * 0 with its place and reason in err; *out is then empty.
 */
int json_parse(const char *text, size_t len, json_value *out, char *err, size_t err_len)
{
    reader r = { text, text + len, text, err, err_len, 0 };
    memset(out, 0, sizeof *out);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        r.s += 3;
    if (read_value(&r, out, 0)) {
        skip_space(&r);
        if (r.s != r.end)
            bad(&r, "more text after the value");
    }
    if (r.failed) {
        json_free(out);
        return 0;
    }
    return 1;
}

/*
 * Reads and parses a whole JSON file of at most `cap` bytes (counted as
 * read, not as the system reports); errors are reported (EC_ERROR).
 */
int json_read_file(const char *path, size_t cap, json_value *out)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL, err[200];
    size_t len = 0, room = 0;
    int rc = EC_OK;
    if (!f)
        return fail("reading '%s': %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len == room) {
            size_t want = room ? 2 * room : 4096;
            char *grown;
            if (room > cap) {
                rc = fail("reading '%s': larger than %zu bytes; not a file editone wrote", path, cap);
                break;
            }
            if (want > cap + 1)
                want = cap + 1;
            if (!(grown = realloc(text, want))) {
                rc = out_of_memory();
                break;
            }
            text = grown;
            room = want;
        }
        got = fread(text + len, 1, room - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = fail("reading '%s': read error", path);
            break;
        }
    }
    fclose(f);
    if (rc == EC_OK && len > cap)
        rc = fail("reading '%s': larger than %zu bytes; not a file editone wrote", path, cap);
    if (rc == EC_OK && !json_parse(text, len, out, err, sizeof err))
        rc = fail("reading '%s': not valid JSON (%s)", path, err);
    free(text);
    return rc;
}

/* The value of `key` in an object, or NULL. */
const json_value *json_get(const json_value *obj, const char *key)
{
    if (!obj || obj->kind != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

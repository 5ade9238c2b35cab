/* What the C tests share: the CHECK/EXPECT macros with their counters and
 * small file helpers. Each test program is one translation unit that
 * includes this once, so the statics are its own. */
#ifndef EDITONE_TESTING_H
#define EDITONE_TESTING_H

#include <editone.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    if (cond) {                                                           \
      passed++;                                                           \
    } else {                                                              \
      failed++;                                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
      fprintf(stderr, __VA_ARGS__);                                       \
      fputc('\n', stderr);                                                \
    }                                                                     \
  } while (0)

/* A call must return `expected`; a failure must come with a message. */
#define EXPECT(call, expected)                                            \
  do {                                                                    \
    eo_status s_ = (call);                                                \
    CHECK(s_ == (expected), "%s -> %s (%s), expected %s", #call,         \
          eo_status_name(s_), eo_last_error(), eo_status_name(expected)); \
    if (s_ != EO_OK && s_ == (expected))                                  \
      CHECK(strlen(eo_last_error()) > 8, "%s: no useful message: '%s'",  \
            #call, eo_last_error());                                     \
  } while (0)

#define OK(call) EXPECT(call, EO_OK)
#define BAD_ARG(call) EXPECT(call, EO_ERR_INVALID_ARGUMENT)
#define BAD_HANDLE(call) EXPECT(call, EO_ERR_INVALID_HANDLE)

/* A photo file as a tightly packed RGB8 view (free view->data), or data NULL. */
static eo_image_view read_photo(const char *path) {
  eo_image_view v = {NULL, 0, 0, 0, EO_PIXEL_RGB8};
  uint32_t w = 0, h = 0;
  size_t needed = 0;
  OK(eo_image_read(path, EO_PIXEL_RGB8, NULL, 0, &w, &h, &needed));
  if (needed == 0 || !(v.data = malloc(needed))) return v;
  OK(eo_image_read(path, EO_PIXEL_RGB8, v.data, needed, &w, &h, NULL));
  v.width = w, v.height = h, v.stride = w * 3;
  return v;
}

/* Bytes of a whole file (free the result), or NULL. */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *bytes = NULL;
  long size;
  if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (bytes = malloc((size_t)size + 1)) && fread(bytes, 1, (size_t)size, f) == (size_t)size) {
    *len = (size_t)size;
  } else {
    free(bytes);
    bytes = NULL;
  }
  if (f) fclose(f);
  return bytes;
}

#endif /* EDITONE_TESTING_H */

/* gv-thumbnails.h — galaxy thumbnails rendered lazily off the main thread, with a cache.
 *
 * A thumbnail is the galaxy's g,r,z flux cube, reduced to the thumbnail size by area
 * averaging, mapped with the Legacy Survey RGB mapping (aclip_rgb_forward_u8) and flipped so
 * that north (large FITS y) is at the top, as a GdkTexture.
 *
 * Use from the main thread only. gv_thumbnails_request returns a cached texture at once or
 * queues the row for the workers (at most two threads: one core is left to the interface);
 * "thumbnail-ready" is emitted on the main thread when it is done. A cell that scrolls out of
 * view cancels its row (gv_thumbnails_cancel): a queued row that nobody wants any more is
 * skipped, so a fast scroll through 100,000 galaxies renders only what stays visible. The cache
 * is an LRU bounded in bytes of pixel data.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-catalogue.h"

G_BEGIN_DECLS

/* Rendering (GTK-free) ------------------------------------------------------------------- */

/* Thumbnail dimensions for an H×W image: the longer side becomes `size`, the other keeps the
 * aspect ratio (at least 1). */
void gv_thumbnail_fit (int height, int width, int size, int *out_height, int *out_width);

/* Reduces the 3×H×W flux cube (nanomaggies, band-major g,r,z, FITS row 0 at the bottom) to
 * out_height×out_width by area averaging — each output pixel is the mean of the input area it
 * covers, partial pixels weighted by the covered fraction; non-finite flux counts as 0 — and
 * maps it with the Legacy Survey parameters into rgb (out_height×out_width×3 bytes, row 0 at
 * the top). */
void gv_thumbnail_render (const float *flux, int height, int width, int out_height,
                          int out_width, guint8 *rgb);

/* The cache and its workers -------------------------------------------------------------- */

#define GV_TYPE_THUMBNAILS (gv_thumbnails_get_type ())
G_DECLARE_FINAL_TYPE (GvThumbnails, gv_thumbnails, GV, THUMBNAILS, GObject)

/* Default cache budget: 2,500 thumbnails of 128×128 RGB. */
#define GV_THUMBNAILS_DEFAULT_CACHE_BYTES ((gsize) 128 * 1024 * 1024)

/* Thumbnails of this catalogue's rows at `size` pixels, caching up to cache_bytes of pixels
 * (0: the default). */
GvThumbnails *gv_thumbnails_new (GvCatalogue *catalogue, int size, gsize cache_bytes);
GvCatalogue *gv_thumbnails_get_catalogue (GvThumbnails *self);

/* A new size empties the cache and forgets pending requests (their results are dropped). */
void gv_thumbnails_set_size (GvThumbnails *self, int size);
int gv_thumbnails_get_size (GvThumbnails *self);

/* The row's texture (a new reference) if it is cached; otherwise NULL, and the row is queued
 * unless it already is. "thumbnail-ready" follows once rendered. NULL without queueing when
 * the catalogue has no images or the row does not exist. */
GdkTexture *gv_thumbnails_request (GvThumbnails *self, gint64 row);
/* The cached texture (a new reference) or NULL, without queueing anything. */
GdkTexture *gv_thumbnails_lookup (GvThumbnails *self, gint64 row);
/* Nobody shows the row any more: a queued render of it is skipped. */
void gv_thumbnails_cancel (GvThumbnails *self, gint64 row);
/* Drops every queued request (e.g. before a jump to another part of the list). */
void gv_thumbnails_cancel_all (GvThumbnails *self);

/* Requests queued or rendering; cache use (for tests and the benchmark). */
guint gv_thumbnails_get_n_pending (GvThumbnails *self);
guint gv_thumbnails_get_n_cached (GvThumbnails *self);
gsize gv_thumbnails_get_cached_bytes (GvThumbnails *self);
/* Rows rendered so far, and rows skipped because they were cancelled before their turn. */
guint64 gv_thumbnails_get_n_rendered (GvThumbnails *self);
guint64 gv_thumbnails_get_n_skipped (GvThumbnails *self);

/* Signal "thumbnail-ready" (GvThumbnails *self, gint64 row, GdkTexture *texture): emitted on
 * the main thread when a requested row's thumbnail is in the cache. A failed read emits
 * nothing (the error is logged with g_debug). */

G_END_DECLS

/* gv-image-view.h — a galaxy's g, r, z cutout, large: colour (the Legacy Survey mapping) or one
 * band with a stretch and display limits; zoom with nearest-neighbour magnification (pixels
 * show as squares, as in DS9), pan by dragging, and the pixel under the pointer reported with
 * its sky position and flux.
 *
 * Keys when focused: + / − zoom, 0 fit, 1 one image pixel per screen pixel, arrows pan.
 * Scrolling zooms about the pointer.
 *
 * Properties (guint so that a GtkDropDown's "selected" can be bound to them directly):
 *   mode          GvImageMode: 0 colour, 1 g, 2 r, 3 z
 *   stretch       AclipStretch: 0 linear, 1 log, 2 sqrt, 3 asinh
 *   limits        AclipLimitsMethod: 0 min/max, 1 percentiles, 2 zscale
 *   low-percent, high-percent (double, for limits = percentiles; default 0.5 and 99.5)
 *   zoom          double, screen pixels per image pixel (read-only; use the functions)
 * Signal:
 *   pixel-hovered (int x, int y): the image pixel under the pointer, in FITS orientation
 *   (y = 0 at the bottom), or (−1, −1) when the pointer leaves the image. Details with
 *   gv_image_view_get_pixel_info.
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-detail-math.h"

G_BEGIN_DECLS

#define GV_TYPE_IMAGE_VIEW (gv_image_view_get_type ())
G_DECLARE_FINAL_TYPE (GvImageView, gv_image_view, GV, IMAGE_VIEW, GtkWidget)

GtkWidget *gv_image_view_new (void);

/* Shows a flux cube (3×H×W nanomaggies, g, r, z, y = 0 at the bottom; copied) of a cutout
 * centred on (ra, dec) degrees with pixscale arcsec/pixel. The view is fitted to the widget.
 * flux NULL clears the view. */
void gv_image_view_set_image (GvImageView *self, const float *flux, int height, int width,
                              double ra, double dec, double pixscale);
gboolean gv_image_view_has_image (GvImageView *self);

void gv_image_view_set_mode (GvImageView *self, GvImageMode mode);
GvImageMode gv_image_view_get_mode (GvImageView *self);
void gv_image_view_set_stretch (GvImageView *self, AclipStretch stretch);
AclipStretch gv_image_view_get_stretch (GvImageView *self);
void gv_image_view_set_limits (GvImageView *self, AclipLimitsMethod limits);
AclipLimitsMethod gv_image_view_get_limits (GvImageView *self);
void gv_image_view_set_percentiles (GvImageView *self, double low_percent, double high_percent);
/* The display limits in use (nanomaggies); FALSE in colour mode or without an image. */
gboolean gv_image_view_get_display_limits (GvImageView *self, double *low, double *high);

/* Zoom: screen (logical) pixels per image pixel, clamped to [1/8, 64]. */
void gv_image_view_zoom_in (GvImageView *self);
void gv_image_view_zoom_out (GvImageView *self);
void gv_image_view_zoom_fit (GvImageView *self);    /* and keep fitting on resize */
void gv_image_view_zoom_actual (GvImageView *self); /* 1:1 */
/* Sets the zoom keeping the widget point (cx, cy) fixed (the centre when either is < 0). */
void gv_image_view_set_zoom (GvImageView *self, double zoom, double cx, double cy);
double gv_image_view_get_zoom (GvImageView *self);

/* The image pixel under widget point (wx, wy), FITS orientation; FALSE when outside. */
gboolean gv_image_view_widget_to_pixel (GvImageView *self, double wx, double wy, int *x, int *y);
/* Sky position and g, r, z flux (nanomaggies) of pixel (x, y); FALSE when outside. */
gboolean gv_image_view_get_pixel_info (GvImageView *self, int x, int y, double *ra, double *dec,
                                       double flux[3]);

/* The current rendering at its native size (one texel per image pixel, as displayed: mode,
 * stretch and limits applied, north up); NULL without an image. Transfer full. */
GdkTexture *gv_image_view_get_texture (GvImageView *self);
/* Saves that rendering as a PNG (temporary file + rename). */
gboolean gv_image_view_save_png (GvImageView *self, const char *path, GError **error);

G_END_DECLS

/* gv-detail-view.h — the detail pane of the selected galaxy: a title (ID and redshift), the
 * image with its controls (mode, stretch, limits, zoom, pixel read-out), the spectrum with its
 * controls (smoothing, observed/rest frame, lines, reset) and a table of the galaxy's columns;
 * buttons save the image as PNG and the spectrum as CSV.
 *
 * Properties (for g_settings_bind):
 *   default-stretch  string, "linear", "log", "sqrt" or "asinh": the stretch of single-band
 *                    images; setting it changes the current stretch too
 *   smoothing        double, the spectrum's smoothing width in pixels (bound both ways to the
 *                    spin button)
 *   galaxy           GvGalaxy, the galaxy shown (or NULL)
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-galaxy.h"
#include "gv-image-view.h"
#include "gv-spectrum-view.h"

G_BEGIN_DECLS

#define GV_TYPE_DETAIL_VIEW (gv_detail_view_get_type ())
G_DECLARE_FINAL_TYPE (GvDetailView, gv_detail_view, GV, DETAIL_VIEW, GtkWidget)

GtkWidget *gv_detail_view_new (void);

/* Shows a galaxy (read with its image and spectrum), or nothing when galaxy is NULL. */
void gv_detail_view_set_galaxy (GvDetailView *self, GvGalaxy *galaxy);
GvGalaxy *gv_detail_view_get_galaxy (GvDetailView *self); /* transfer none */

void gv_detail_view_set_default_stretch (GvDetailView *self, AclipStretch stretch);
AclipStretch gv_detail_view_get_default_stretch (GvDetailView *self);
void gv_detail_view_set_smoothing (GvDetailView *self, double width_pixels);
double gv_detail_view_get_smoothing (GvDetailView *self);

/* The two views, for plugins (e.g. gv_spectrum_view_add_overlay). Transfer none. */
GvImageView *gv_detail_view_get_image_view (GvDetailView *self);
GvSpectrumView *gv_detail_view_get_spectrum_view (GvDetailView *self);

/* Exports, written to a temporary file and renamed into place:
 * the image as displayed (mode, stretch and limits), one PNG pixel per image pixel, north up;
 * the spectrum as CSV: a '#' comment line (ID, z, units), a header line, then
 * wavelength, flux, ivar, smoothed_flux per pixel (observed frame; gaps empty). */
gboolean gv_detail_view_export_png (GvDetailView *self, const char *path, GError **error);
gboolean gv_detail_view_export_spectrum_csv (GvDetailView *self, const char *path, GError **error);

G_END_DECLS

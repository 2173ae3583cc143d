/* gv-spectrum-view.h — a galaxy's spectrum plotted against wavelength, with axes and units,
 * inverse-variance-weighted smoothing, bad pixels (ivar = 0) shown as gaps, zoom and pan along
 * the wavelength axis, observed or rest frame, and emission and absorption lines marked at the
 * galaxy's redshift. Other spectra can be overlaid, each normalised to the main one.
 *
 * Keys when focused: + / − zoom, ← / → pan, 0 or Home resets. Scrolling zooms about the
 * pointer; dragging pans. The y range follows the smoothed flux in view (robust percentiles).
 *
 * Properties:
 *   smoothing   double, kernel width in pixels (≤ 1: none; default 5)
 *   kernel      guint, GvSmoothKernel: 0 boxcar, 1 Gaussian (width = FWHM)
 *   rest-frame  gboolean, plot against λ/(1 + z)
 *   show-lines  gboolean, mark the spectral lines
 */
#pragma once

#include <gtk/gtk.h>

#include "gv-detail-math.h"

G_BEGIN_DECLS

#define GV_TYPE_SPECTRUM_VIEW (gv_spectrum_view_get_type ())
G_DECLARE_FINAL_TYPE (GvSpectrumView, gv_spectrum_view, GV, SPECTRUM_VIEW, GtkWidget)

GtkWidget *gv_spectrum_view_new (void);

/* Shows n pixels (copied): vacuum wavelength in Å (observed frame, increasing), flux in
 * 1e-17 erg/s/cm²/Å and its inverse variance (0 = bad pixel) of a galaxy at redshift z (NaN
 * when unknown: no lines, and the rest frame is the observed one). Resets the view and clears
 * the overlays. wavelength NULL clears the plot. */
void gv_spectrum_view_set_spectrum (GvSpectrumView *self, const double *wavelength,
                                    const float *flux, const float *ivar, int n, double z);
gboolean gv_spectrum_view_has_spectrum (GvSpectrumView *self);

void gv_spectrum_view_set_smoothing (GvSpectrumView *self, double width_pixels);
double gv_spectrum_view_get_smoothing (GvSpectrumView *self);
void gv_spectrum_view_set_kernel (GvSpectrumView *self, GvSmoothKernel kernel);
GvSmoothKernel gv_spectrum_view_get_kernel (GvSpectrumView *self);
void gv_spectrum_view_set_rest_frame (GvSpectrumView *self, gboolean rest_frame);
gboolean gv_spectrum_view_get_rest_frame (GvSpectrumView *self);
void gv_spectrum_view_set_show_lines (GvSpectrumView *self, gboolean show_lines);
gboolean gv_spectrum_view_get_show_lines (GvSpectrumView *self);

/* The smoothed flux (n values, NaN in gaps) with the current smoothing; NULL without data. */
const float *gv_spectrum_view_get_smoothed (GvSpectrumView *self, int *n);

/* The wavelength range in view, in the frame shown (observed or rest), Å. */
void gv_spectrum_view_get_view_range (GvSpectrumView *self, double *lo, double *hi);
/* Zooms the wavelength axis by factor (> 1 in) about the point in view at fraction `at` of the
 * plot's width (0.5 = the middle). */
void gv_spectrum_view_zoom (GvSpectrumView *self, double factor, double at);
void gv_spectrum_view_zoom_in (GvSpectrumView *self);
void gv_spectrum_view_zoom_out (GvSpectrumView *self);
/* Shows the whole spectrum. */
void gv_spectrum_view_reset_view (GvSpectrumView *self);

/* Overlays another spectrum (copied) of a galaxy at redshift z: shifted to the main galaxy's
 * redshift (through its rest frame, so that lines coincide), smoothed like the main one, and
 * scaled so that its median matches the main spectrum's over their common range. */
void gv_spectrum_view_add_overlay (GvSpectrumView *self, const double *wavelength,
                                   const float *flux, const float *ivar, int n, double z,
                                   const GdkRGBA *colour);
void gv_spectrum_view_clear_overlays (GvSpectrumView *self);
guint gv_spectrum_view_get_n_overlays (GvSpectrumView *self);

G_END_DECLS

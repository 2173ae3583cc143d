/* gv-detail-math.h — the arithmetic behind the detail view, free of GTK so that it can be
 * tested without a display: single-band and colour rendering of a flux cube to 8-bit pixels,
 * pixel → sky coordinates of a cutout, inverse-variance-weighted smoothing of a spectrum, the
 * spectral lines marked on the plot, "nice" axis ticks, and the normalisation of overlaid
 * spectra.
 *
 * Conventions: a flux cube is 3×H×W floats in nanomaggies, band planes g, r, z, with image row
 * y = 0 at the BOTTOM (FITS order, docs/catalogue.md). Rendered pixels are H×W×3 bytes R, G, B,
 * rows top-down (display order), so display row 0 is image row H − 1.
 */
#pragma once

#include <glib.h>

#include "aclip-render.h"

G_BEGIN_DECLS

/* ---------------------------------------------------------------------------------------- */
/* Images                                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef enum
{
  GV_IMAGE_MODE_COLOUR, /* the Legacy Survey RGB mapping of g, r, z */
  GV_IMAGE_MODE_G,      /* one band, grey, with a stretch and limits */
  GV_IMAGE_MODE_R,
  GV_IMAGE_MODE_Z,
} GvImageMode;

typedef struct
{
  GvImageMode mode;
  AclipStretch stretch;     /* single-band modes only */
  AclipLimitsMethod limits; /* single-band modes only */
  double low_percent;       /* ACLIP_LIMITS_PERCENTILE only, in [0, 100] */
  double high_percent;
} GvImageRendering;

/* Renders a flux cube (3×H×W, y = 0 at the bottom) to H×W×3 8-bit RGB, display order (top row
 * first). Colour mode: aclip_rgb_forward_u8 with the Legacy Survey parameters. Single band:
 * limits from aclip_stretch_limits over the band, aclip_stretch_apply, then grey
 * round(255·t) in all three channels. low/high (either may be NULL) receive the limits used
 * (NaN in colour mode). FALSE (and a black image) when the band has no finite value. */
gboolean gv_render_image_u8 (const float *flux, int height, int width,
                             const GvImageRendering *rendering, guint8 *rgb, double *low,
                             double *high);

/* Sky position of pixel (x, y) of a W×H cutout centred on (ra0, dec0), north up and east left
 * as the Legacy Surveys cutouts are: a gnomonic (tangent-plane) projection about the cutout's
 * centre ((W − 1)/2, (H − 1)/2) in 0-based pixel coordinates with y = 0 at the bottom, pixel
 * scale in arcsec. Standard coordinates ξ = −(x − x₀)·s (east is −x), η = (y − y₀)·s, then
 *   α = α₀ + atan2(ξ, cos δ₀ − η sin δ₀),  δ = atan2(sin δ₀ + η cos δ₀, √(ξ² + (cos δ₀ − η sin
 * δ₀)²)). ra is returned in [0, 360). */
void gv_pixel_to_sky (double ra0, double dec0, double pixscale_arcsec, int width, int height,
                      double x, double y, double *ra, double *dec);

/* ---------------------------------------------------------------------------------------- */
/* Spectra                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef enum
{
  GV_SMOOTH_BOXCAR,   /* width = full width in pixels, rounded down to an odd number */
  GV_SMOOTH_GAUSSIAN, /* width = FWHM in pixels (σ = FWHM/2.3548), truncated at 3σ */
} GvSmoothKernel;

/* Inverse-variance-weighted smoothing of n pixels:
 *   out[i] = Σ_j k(j − i)·ivar_j·flux_j / Σ_j k(j − i)·ivar_j
 * over the kernel's window, where pixels with ivar ≤ 0 or non-finite flux or ivar take no
 * part. Bad pixels themselves are NaN in out (gaps in the plot), as is any pixel whose window
 * holds no good pixel. A width ≤ 1 pixel copies the good pixels unchanged. out may not alias
 * flux. */
void gv_smooth_spectrum (const float *flux, const float *ivar, int n, GvSmoothKernel kernel,
                         double width, float *out);

typedef struct
{
  const char *label; /* untranslated, e.g. "[O III]"; species names are not translated */
  double wavelength; /* vacuum rest wavelength, Å */
  gboolean emission; /* TRUE emission, FALSE absorption */
} GvSpectralLine;

/* The lines marked on the plot, sorted by wavelength. */
const GvSpectralLine *gv_spectral_lines (gsize *n_lines);
/* Where a line of rest wavelength `rest` appears: rest·(1 + z) in the observed frame, rest in
 * the rest frame. A non-finite z counts as 0. */
double gv_line_position (double rest, double z, gboolean rest_frame);

/* "Nice" ticks for an axis from lo to hi, about `target` of them: with r = (hi − lo)/target
 * written as f·10^k (1 ≤ f < 10), the step is 1, 2, 5 or 10 × 10^k for f < 1.5, < 3, < 7 or
 * above. Writes the multiples of the step in [lo, hi] to ticks (at most max_ticks) and returns
 * how many; *step (may be NULL) receives the step. 0 when the range is empty or not finite. */
int gv_axis_ticks (double lo, double hi, int target, double *ticks, int max_ticks, double *step);
/* Decimal places needed to print ticks of this step distinctly (0 for steps ≥ 1). */
int gv_axis_tick_decimals (double step);

/* The y range of a plot from robust percentiles of the values (non-finite ignored): the
 * low_percent and high_percent percentiles, widened by `margin` of their span on each side.
 * FALSE when no value is finite. A flat spectrum gets a ±1 (or ±10 %) range. */
gboolean gv_plot_range (const float *values, gsize n, double low_percent, double high_percent,
                        double margin, double *lo, double *hi);

/* The factor that puts an overlaid spectrum on the scale of the main one: the ratio of their
 * medians (finite values only) over the rest-frame wavelength range the two share. wave_* are
 * rest-frame wavelengths, increasing. 1 when either median is not positive or the ranges do
 * not overlap. */
double gv_overlay_scale (const double *main_wave, const float *main_flux, int main_n,
                         const double *wave, const float *flux, int n);

/* Writes the spectrum as CSV (a '#' comment line with ID, z and units, a header line, then
 * wavelength, flux, ivar, smoothed flux per pixel; gaps are empty fields in the smoothed
 * column) atomically (temporary file + rename). smoothed may be NULL. */
gboolean gv_write_spectrum_csv (const char *path, gint64 id, double z, const double *wavelength,
                                const float *flux, const float *ivar, const float *smoothed, int n,
                                GError **error);

G_END_DECLS

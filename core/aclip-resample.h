/* aclip-resample.h — putting survey data onto the catalogue's grids.
 *
 * Images: flux-conserving, area-weighted resampling of per-pixel fluxes onto a grid with another
 * pixel scale and size that shares the input's centre (so one call resamples, centre-crops and
 * zero-pads).
 *
 * Spectra: linear interpolation of flux density in wavelength with a conservative propagation
 * of the inverse variance (rule stated at aclip_resample_spectrum).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Resamples one image plane.
 *
 * in:  in_height×in_width per-pixel fluxes (row-major, in[y*in_width + x]) at in_pixscale.
 * out: out_height×out_width per-pixel fluxes at out_pixscale, written in full.
 *
 * Every pixel is a square; an output pixel receives each input pixel's flux in proportion to
 * the area of the input pixel it overlaps (exact overlap of the squares, i.e. drizzling with
 * pixfrac 1), so the total flux of the part of the input that the output covers is conserved
 * exactly. Where the output extends beyond the input it is zero (padding); input beyond the
 * output is dropped (cropping). The two grids share their centre, except when the scales are
 * equal: then the input is shifted by whole pixels (the output centre lies within half a pixel
 * of the input centre) so that no pixel is split. The pixel scales are in any common unit. */
void aclip_resample_image (const float *in, int in_height, int in_width, double in_pixscale,
                           float *out, int out_height, int out_width, double out_pixscale);

/* Resamples a spectrum onto a uniform wavelength grid.
 *
 * in_wave, in_flux, in_ivar: n_in values; in_wave increasing (pixel centres, Å); an input
 *   pixel with in_ivar <= 0 or a non-finite value is bad.
 * out_wave: n_out increasing wavelengths (Å) spaced by out_step; out_flux, out_ivar: n_out.
 *
 * Rule: an output pixel at λ between input centres λ_i ≤ λ ≤ λ_{i+1},
 * t = (λ − λ_i)/(λ_{i+1} − λ_i), gets the linearly interpolated flux density
 * f = (1−t)·f_i + t·f_{i+1} and the inverse variance
 *     ivar = min(1, out_step / (λ_{i+1} − λ_i)) / ((1−t)/ivar_i + t/ivar_{i+1}).
 * The denominator (the interpolated variance) bounds the exact variance of f,
 * (1−t)²/ivar_i + t²/ivar_{i+1}, from above; the factor makes the information summed over the
 * output pixels that cover one input pixel no larger than that input pixel's, so upsampled,
 * correlated pixels never claim more signal-to-noise than was measured. Output pixels outside
 * [λ_0, λ_{n_in−1}] or next to a bad input pixel get ivar 0 (flux 0 outside the input, the
 * nearer good neighbour's flux, or 0, next to a bad one). Returns the number of output pixels
 * with ivar > 0. */
int aclip_resample_spectrum (const double *in_wave, const float *in_flux, const float *in_ivar,
                             int n_in, const double *out_wave, double out_step, int n_out,
                             float *out_flux, float *out_ivar);

G_END_DECLS

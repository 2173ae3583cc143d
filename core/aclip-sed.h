/* aclip-sed.h — spectral energy distributions: templates, filter curves, synthetic photometry
 * and Galactic extinction.
 *
 * Templates are the kcorrect v4 NMF basis (data/sed/kcorrect-default-v4.fits): rest-frame f_λ
 * per solar mass formed, seen from 10 pc, on a vacuum wavelength grid, with the surviving
 * stellar mass of each. Filters are speclite ECSV response curves (photon-counting
 * throughput). Photometry is AB: maggies = ∫ f_λ λ R dλ / ∫ f_AB(λ) λ R dλ with
 * f_AB(λ) = 3631 Jy · c/λ².
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_SPEED_OF_LIGHT_A_S 2.99792458e18 /* Å/s */
#define ACLIP_AB_ZERO_FNU        3.631e-20     /* erg/s/cm²/Hz (3631 Jy) */

typedef struct
{
  int n_templates;
  int n_wave;
  double *wavelength; /* [n_wave] rest-frame vacuum Å, strictly increasing */
  double *flux;       /* [n_templates][n_wave] f_λ, erg/s/cm²/Å per M☉ formed at 10 pc */
  double *mremain;    /* [n_templates] surviving stellar mass per M☉ formed */
  /* Set when the grid is uniform in log λ (kcorrect's is), for O(1) lookups. */
  gboolean log_uniform;
  double log_start, log_step;
} AclipTemplates;

/* Loads and validates a kcorrect template file (HDU FLUX with columns wave, flux; HDU
 * MREMAIN). Errors name the file and the problem. */
AclipTemplates *aclip_templates_load (const char *path, GError **error);
void aclip_templates_free (AclipTemplates *templates);
/* The interval holding rest wavelength λ: wavelength[*index] ≤ λ < wavelength[*index + 1],
 * with *fraction the linear-interpolation weight of the upper point. FALSE outside the grid. */
gboolean aclip_templates_locate (const AclipTemplates *templates, double wavelength, int *index,
                                 double *fraction);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipTemplates, aclip_templates_free)

/* A filter resampled onto a uniform grid, with the trapezoid weights of the AB integral folded
 * in, so that maggies = Σ_k weight[k] · f_λ(wavelength[k]) (f_λ in erg/s/cm²/Å). */
typedef struct
{
  char *name; /* file's base name without extension, e.g. "decamDR1-g" */
  int n;
  double *wavelength; /* [n] Å, uniform */
  double *weight;     /* [n] */
  double pivot;       /* pivot wavelength, Å */
} AclipFilter;

/* Reads a speclite ECSV curve (wavelength in Å or nm as its header says; response), and
 * resamples it with `step` Å. Errors name the file (and line). */
AclipFilter *aclip_filter_load (const char *path, double step, GError **error);
void aclip_filter_free (AclipFilter *filter);
/* AB maggies of f_λ sampled at the filter's wavelengths (flux[n], erg/s/cm²/Å). */
double aclip_filter_maggies (const AclipFilter *filter, const double *flux);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipFilter, aclip_filter_free)

/* Cardelli, Clayton & Mathis (1989) extinction law: A(λ)/E(B−V) at vacuum wavelength λ (Å),
 * for 0.3 ≤ 1/λ ≤ 8 µm⁻¹ (clamped outside). */
double aclip_extinction_ccm89 (double wavelength, double r_v);

G_END_DECLS

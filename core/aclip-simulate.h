/* aclip-simulate.h — the physical galaxy simulator behind `astroclip simulate` (DESIGN §4).
 *
 * A galaxy is a non-negative sum of the kcorrect NMF templates, Σ cᵢTᵢ (cᵢ in M☉ formed), so
 * its spectrum, its photometry in every band and its stellar mass Σ cᵢ·MREMAINᵢ agree. The
 * coefficients and redshift are drawn from NNLS fits to the ugriz photometry of 10,000 real
 * SDSS galaxies (fitted when the simulator loads), slightly perturbed; the rest follows:
 *
 *  - spectrum: the SED redshifted onto the DESI grid (flat ΛCDM, H0 = 70, Ωm = 0.3), dimmed
 *    by Galactic extinction (CCM89, the SDSS galaxy's E(B−V)), convolved with a Gaussian
 *    line-spread function of DESI's width (FWHM 1.8–2.0 Å), with noise from a fibre
 *    observation — sky continuum and lines, photon and read noise in three arms — and
 *    stored scaled to the galaxy's total flux;
 *  - images: g, r, z at 0.262″/pixel, total fluxes from the same SED through the DECam
 *    filters; bulge+disc or single Sérsic shapes from the COSMOS fits, sized by a
 *    size–mass relation and the angular-diameter distance, randomly oriented; a Moffat PSF
 *    with per-band seeing; sky and photon noise at Legacy Surveys depth; sometimes a
 *    neighbouring galaxy or a star;
 *  - labels: every drawn and derived quantity (AclipSimTruth), written as extra columns.
 *
 * Everything about galaxy i is drawn from random streams seeded by (seed, i, purpose), so a
 * catalogue is the same byte for byte whatever the number of threads.
 *
 * An AclipSimulator is read-only once loaded: threads may render galaxies concurrently.
 */
#pragma once

#include <glib.h>

#include "aclip-catalogue.h"

G_BEGIN_DECLS

#define ACLIP_SIM_MAX_TEMPLATES 8

typedef struct
{
  guint64 seed;
  int image_size;   /* pixels per side; 0: no images. Default 152 (the paper's) */
  gboolean spectra; /* default TRUE */
  /* > 0: store images as 16-bit integers with this step (nanomaggies); 0: float32 (default) */
  double image_quantum;
  int n_threads;             /* rendering threads for whole catalogues; 0: one per processor */
  double neighbour_fraction; /* fraction of cutouts with a neighbouring galaxy; default 0.15 */
  double star_fraction;      /* fraction of cutouts with a star; default 0.10 */
  double exposure_time;      /* spectroscopic exposure, s; default 180 (DESI BGS) */
} AclipSimulateParams;

void aclip_simulate_params_init (AclipSimulateParams *params);

/* The truth about one simulated galaxy. */
typedef struct
{
  gint64 index; /* 0-based position in the catalogue; ID = index + 1 */
  double ra, dec;
  double z;
  double logmstar; /* log10 of the stellar mass in M☉, Σ cᵢ·MREMAINᵢ */
  double log_sfr;  /* log10 SFR/(M☉/yr) from the model's Hα luminosity (Kennicutt & Evans
                    * 2012, not corrected for dust) */
  double log_ssfr; /* log10 sSFR/yr⁻¹ */
  int type;        /* 1 star-forming (log sSFR > −11), 0 quiescent */
  int n_templates;
  double coefficients[ACLIP_SIM_MAX_TEMPLATES]; /* M☉ formed per template */
  double ebv;                                   /* Galactic E(B−V), mag */
  double flux[ACLIP_N_BANDS]; /* total g, r, z flux of the galaxy alone, nanomaggies */
  double absmag_r;            /* rest-frame SDSS r absolute AB magnitude, without dust */
  double ew_halpha, ew_oii;   /* rest-frame equivalent widths of Hα and [O II] 3727, Å
                               * (emission positive) */
  double r_eff;               /* circularised half-light radius before the PSF, arcsec */
  double r_eff_kpc;
  double sersic_n;                 /* index of the single-Sérsic fit of the COSMOS galaxy */
  double axis_ratio;               /* minor/major of that fit */
  double position_angle;           /* degrees, major axis from north (+y) through east (−x) */
  double bulge_fraction;           /* bulge-to-total flux; 0 for a single Sérsic profile */
  double seeing[ACLIP_N_BANDS];    /* PSF FWHM, arcsec */
  double psf_beta;                 /* Moffat β */
  double psf_depth[ACLIP_N_BANDS]; /* 5σ point-source depth, AB mag */
  double sky_sigma[ACLIP_N_BANDS]; /* sky noise per pixel, nanomaggies */
  gboolean has_neighbour, has_star;
  double fiber_fraction;    /* fraction of the light in the 1.5″ fibre */
  double snr_spectrum;      /* median S/N per pixel of the spectrum; NaN before rendering */
  int sdss_row, cosmos_row; /* rows of the prior catalogues the draw started from */
} AclipSimTruth;

typedef struct _AclipSimulator AclipSimulator;

/* Loads templates, filters and priors (found with aclip_data_find) and fits the SDSS sample.
 * Errors name the file and the problem. */
AclipSimulator *aclip_simulator_new (GError **error);
void aclip_simulator_free (AclipSimulator *simulator);

int aclip_simulator_n_templates (const AclipSimulator *simulator);
/* Number of SDSS galaxies with a usable fit, out of those in the prior catalogue. */
int aclip_simulator_n_prior_galaxies (const AclipSimulator *simulator);

/* Draws galaxy `index` of params->seed: everything but pixels (snr_spectrum is NaN). */
void aclip_simulator_draw (const AclipSimulator *simulator, const AclipSimulateParams *params,
                           gint64 index, AclipSimTruth *truth);

/* The galaxy's noiseless observed SED (with Galactic extinction, at the templates' resolution,
 * total flux) at n vacuum wavelengths (Å): flux[n] in 1e-17 erg/s/cm²/Å. */
void aclip_simulator_observed_sed (const AclipSimulator *simulator, const AclipSimTruth *truth,
                                   gsize n, const double *wavelength, double *flux);

/* Renders galaxy `index` of params->seed. Any output may be NULL:
 *   galaxy:   scalar fields always; its image (3×S×S) and spectrum/ivar (ACLIP_DESI_N_WAVE)
 *             where the pointers are set and params ask for them;
 *   truth:    all truth, with snr_spectrum;
 *   noiseless_spectrum: [ACLIP_DESI_N_WAVE] the spectrum without noise (DESI resolution);
 *   noiseless_image:    [3×S×S] the galaxy alone (no neighbour, star or noise), PSF-convolved.
 * Deterministic for (seed, index). */
gboolean aclip_simulator_render (const AclipSimulator *simulator, const AclipSimulateParams *params,
                                 gint64 index, AclipGalaxy *galaxy, AclipSimTruth *truth,
                                 float *noiseless_spectrum, float *noiseless_image, GError **error);

/* The truth columns the simulator writes besides the required ones, owned by the simulator,
 * and one galaxy's values in that order (values[n_columns]). */
const AclipExtraColumn *aclip_simulator_extra_columns (const AclipSimulator *simulator,
                                                       int *n_columns);
void aclip_simulator_truth_values (const AclipSimulator *simulator, const AclipSimTruth *truth,
                                   double *values);

/* Called after rows are written; return FALSE to cancel. */
typedef gboolean (*AclipSimulateProgress) (gint64 n_done, gint64 n_total, gpointer user_data);

typedef struct
{
  gint64 n_rows;
  gint64 n_clipped; /* image pixels clipped by 16-bit storage */
  double seconds;
} AclipSimulateSummary;

/* Simulates galaxies 0 … n_galaxies−1 of params->seed into a catalogue at `path`, rendering on
 * params->n_threads threads and writing rows in order. `history` (may be NULL) is added to the
 * file's provenance. On error or cancellation (ACLIP_ERROR_CANCELLED) no file is left at
 * `path`. summary may be NULL. */
gboolean aclip_simulator_write_catalogue (const AclipSimulator *simulator,
                                          const AclipSimulateParams *params, const char *path,
                                          gint64 n_galaxies, const char *history,
                                          AclipSimulateProgress progress, gpointer user_data,
                                          AclipSimulateSummary *summary, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipSimulator, aclip_simulator_free)

G_END_DECLS

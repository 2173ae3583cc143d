/* aclip-simulate.c — the physical galaxy simulator; see aclip-simulate.h for the model. */
#include "aclip-simulate.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "aclip-cosmology.h"
#include "aclip-data.h"
#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-nnls.h"
#include "aclip-profile.h"
#include "aclip-rng.h"
#include "aclip-sed.h"

/* Data files, relative to the data folder. */
#define TEMPLATES_FILE    "sed/kcorrect-default-v4.fits"
#define SDSS_PRIOR_FILE   "priors/gst_tests_small.fits"
#define COSMOS_PRIOR_FILE "priors/real_galaxy_catalog_23.5_example_fits.fits"
static const char *const decam_filter_files[ACLIP_N_BANDS] = { "filters/decamDR1-g.ecsv",
                                                               "filters/decamDR1-r.ecsv",
                                                               "filters/decamDR1-z.ecsv" };
#define N_SDSS_BANDS 5
static const char *const sdss_filter_files[N_SDSS_BANDS] = {
  "filters/sdss2010-u.ecsv", "filters/sdss2010-g.ecsv", "filters/sdss2010-r.ecsv",
  "filters/sdss2010-i.ecsv", "filters/sdss2010-z.ecsv"
};

/* Physical constants. */
#define MPC_PER_10_PC      1e-5
#define CM_PER_10_PC       3.0856776e19
#define HC_ERG_ANGSTROM    1.98644586e-8
#define ARCSEC_PER_RADIAN  206264.806
#define SPECTRUM_UNIT      1e-17 /* erg/s/cm²/Å of the catalogue's spectra */
#define NANOMAGGIES        1e9   /* per maggy */
#define COSMOS_PIXEL_SCALE 0.03  /* arcsec, of the COSMOS fits */

/* Fitting the SDSS sample. Calibration errors added in quadrature to ugriz, as fractions of
 * the flux: kcorrect's choice for SDSS model magnitudes, except u, which gets 0.10 because the
 * templates cannot follow u as closely as g–z (the fits' u is still ≈ 0.1 mag brighter than
 * the data on average) and a tight u pulls the g−r colours of the fits away from the data. */
static const double sdss_error_floor[N_SDSS_BANDS] = { 0.10, 0.02, 0.02, 0.02, 0.03 };
/* SDSS magnitudes are nearly AB: u_AB = u − 0.04 and z_AB = z + 0.02 (SDSS DR7 documentation). */
static const double sdss_ab_offset[N_SDSS_BANDS] = { -0.04, 0.0, 0.0, 0.0, 0.02 };
#define SDSS_Z_STEP    0.002
#define SDSS_R_PER_EBV 2.751 /* A_r/E(B−V) of SDSS's EXTINCTION column (SFD98) */
#define MIN_REDSHIFT   0.005

/* Drawing: perturbations of a real SDSS galaxy. */
#define REDSHIFT_JITTER    0.005 /* σ of Δz/(1+z) */
#define COEFFICIENT_JITTER 0.10  /* σ of ln cᵢ */

/* Star formation: Hα (vacuum 6564.61 Å) with Kennicutt & Evans (2012): log SFR = log L − 41.27.
 * A galaxy is star-forming when log sSFR > −11 (yr⁻¹). */
#define HALPHA_WAVELENGTH   6564.61
#define OII_WAVELENGTH      3728.48 /* the doublet's mean */
#define LOG_SFR_PER_LHALPHA (-41.27)
#define SSFR_THRESHOLD      (-11.0)
#define LOG_SSFR_FLOOR      (-14.0)

/* Morphology. */
#define DISC_INDEX       1.0
#define BULGE_INDEX      4.0
#define MIN_SERSIC_INDEX 0.5 /* below it no positive Gaussian mixture is faithful */
#define MAX_SERSIC_INDEX 6.0
#define SERSIC_BASIS     16
#define MOFFAT_BASIS     8
#define N_PSF_BETAS      5
static const double psf_betas[N_PSF_BETAS] = { 2.5, 3.0, 3.5, 4.0, 4.5 };
#define EARLY_TYPE_PROBABILITY_QUIESCENT    0.8
#define EARLY_TYPE_PROBABILITY_STAR_FORMING 0.1
#define SIZE_OFFSET_LIMIT                   0.3 /* dex */

/* Imaging (Legacy Surveys DR9 DECaLS, approximate medians). */
static const double band_wavelength[ACLIP_N_BANDS] = { 4800.0, 6400.0, 9200.0 };
static const double median_psf_depth[ACLIP_N_BANDS] = { 24.6, 24.0, 23.0 };
#define PSF_DEPTH_SCATTER 0.25 /* mag */
/* Photo-electrons per nanomaggy in a coadd (≈ 2–3 DECam exposures), for the source's own
 * Poisson noise. */
static const double electrons_per_nanomaggy[ACLIP_N_BANDS] = { 10000.0, 10000.0, 6000.0 };
#define MEDIAN_SEEING_R 1.25 /* arcsec FWHM */
#define SEEING_SCATTER  0.15 /* σ of ln FWHM */
#define MIN_SEEING      0.8
#define MAX_SEEING      2.2
#define CENTRE_JITTER   0.5 /* pixels */

/* Spectroscopy (DESI-like). */
#define N_ARMS                3
#define TELESCOPE_AREA        8.65e4 /* cm² */
#define FIBRE_RADIUS          0.76   /* arcsec (1.52″ diameter) */
#define READ_NOISE            3.0    /* e⁻ per pixel and arm */
#define LSF_HALF_WIDTH        4      /* pixels each side of the LSF kernel */
#define LSF_TAPS              (2 * LSF_HALF_WIDTH + 1)
#define SKY_SCATTER           0.2 /* σ of ln sky level */
#define MEDIAN_SEEING_SPECTRO 1.1

/* Random streams per galaxy. */
enum
{
  STREAM_PROPERTIES,
  STREAM_NEIGHBOUR,
  STREAM_SPECTRUM_NOISE,
  STREAM_IMAGE_NOISE,
};

typedef struct
{
  int file_row; /* in the SDSS prior file */
  double z;
  double ebv;
  double coefficients[ACLIP_SIM_MAX_TEMPLATES]; /* M☉ formed */
} PriorGalaxy;

/* One component of a morphology: a circular profile, sheared and rotated. */
typedef struct
{
  int profile; /* index into simulator->profiles */
  double flux_fraction;
  double size_fraction; /* circularised half-light radius / the galaxy's */
  double axis_ratio;
  double position_angle; /* radians, relative to the galaxy's orientation */
} MorphologyComponent;

typedef struct
{
  int file_row;     /* in the COSMOS file */
  int n_components; /* 1 (single Sérsic) or 2 (disc, bulge) */
  MorphologyComponent components[2];
  double sersic_n, axis_ratio, bulge_fraction;
  double size_offset; /* dex, from the size–mass relation */
  gboolean early;
} Morphology;

/* One galaxy's drawn properties (the central one or a neighbour). */
typedef struct
{
  int prior_row;
  int morphology;
  double z, ebv;
  double coefficients[ACLIP_SIM_MAX_TEMPLATES];
  double logmstar, log_sfr, log_ssfr;
  int type;
  double r_eff, r_eff_kpc; /* circularised, arcsec and kpc */
  double position_angle;   /* radians */
  double flux[ACLIP_N_BANDS];
} GalaxyDraw;

/* Everything drawn for one cutout. */
typedef struct
{
  GalaxyDraw galaxy;
  double ra, dec;
  double centre_x, centre_y; /* pixels */
  double seeing[ACLIP_N_BANDS];
  int psf;
  double psf_depth[ACLIP_N_BANDS];
  double spectro_seeing, sky_scale;
  gboolean has_neighbour;
  GalaxyDraw neighbour;
  double neighbour_x, neighbour_y;
  gboolean has_star;
  double star_flux[ACLIP_N_BANDS];
  double star_x, star_y;
} Scene;

struct _AclipSimulator
{
  AclipTemplates *templates;
  AclipFilter *decam[ACLIP_N_BANDS];
  AclipCosmology *cosmology;

  int n_prior_rows;   /* rows in the SDSS file */
  int n_prior;        /* of which fitted */
  PriorGalaxy *prior; /* [n_prior] */

  int n_morphologies;
  Morphology *morphologies; /* [n_morphologies] */
  int n_early, n_late;
  int *early_morphologies, *late_morphologies;
  int n_profiles;
  AclipMog *profiles; /* [n_profiles]: disc, bulge, then one per single-Sérsic morphology */
  AclipMog psf[N_PSF_BETAS];

  /* Per template: rest-frame SDSS r maggies at 10 pc per M☉ formed; Hα and [O II] line flux
   * (erg/s/cm²) and continuum under the line (erg/s/cm²/Å) at 10 pc per M☉ formed. */
  double template_r_maggies[ACLIP_SIM_MAX_TEMPLATES];
  double template_halpha[ACLIP_SIM_MAX_TEMPLATES],
      template_halpha_continuum[ACLIP_SIM_MAX_TEMPLATES];
  double template_oii[ACLIP_SIM_MAX_TEMPLATES], template_oii_continuum[ACLIP_SIM_MAX_TEMPLATES];

  /* Galactic extinction A(λ)/E(B−V) on the DESI grid and on each DECam filter's grid. */
  double *desi_extinction;                 /* [ACLIP_DESI_N_WAVE] */
  double *decam_extinction[ACLIP_N_BANDS]; /* [decam[b]->n] */

  /* The spectrograph. */
  double wavelength[ACLIP_DESI_N_WAVE];
  double *lsf;                /* [ACLIP_DESI_N_WAVE][LSF_TAPS], rows sum to 1 */
  double *electrons_per_flux; /* [N_ARMS][ACLIP_DESI_N_WAVE] e⁻/s per 1e-17 erg/s/cm²/Å */
  double *sky_electrons;      /* [N_ARMS][ACLIP_DESI_N_WAVE] e⁻/s of sky in the fibre */

  int n_columns;
  AclipExtraColumn *columns;
  char **column_names; /* the COEFF_i names, owned */
};

void
aclip_simulate_params_init (AclipSimulateParams *params)
{
  memset (params, 0, sizeof *params);
  params->seed = 1;
  params->image_size = 152;
  params->spectra = TRUE;
  params->image_quantum = 0.0;
  params->n_threads = 0;
  params->neighbour_fraction = 0.15;
  params->star_fraction = 0.10;
  params->exposure_time = 180.0;
}

/* SED evaluation ------------------------------------------------------------------------ */

/* Rest-frame Σ cᵢTᵢ(λ) at `n` rest wavelengths (any order; fastest when increasing), in
 * erg/s/cm²/Å at 10 pc. */
static void
rest_sed (const AclipTemplates *templates, const double *coefficients, gsize n,
          const double *rest_wavelength, double *flux)
{
  const double *w = templates->wavelength;
  int n_wave = templates->n_wave;
  int i = -1;
  for (gsize k = 0; k < n; k++) {
    double lambda = rest_wavelength[k];
    if (!(lambda >= w[0] && lambda < w[n_wave - 1])) {
      flux[k] = 0.0;
      continue;
    }
    /* Walk on from the previous interval when the wavelengths increase (the usual case);
     * otherwise look the interval up. */
    double fraction;
    int steps = 0;
    if (i >= 0 && lambda >= w[i]) {
      while (w[i + 1] <= lambda && steps < 8) {
        i++;
        steps++;
      }
    }
    if (i < 0 || lambda < w[i] || w[i + 1] <= lambda)
      aclip_templates_locate (templates, lambda, &i, &fraction);
    else
      fraction = (lambda - w[i]) / (w[i + 1] - w[i]);
    double sum = 0.0;
    for (int t = 0; t < templates->n_templates; t++) {
      if (coefficients[t] == 0.0)
        continue;
      const double *row = templates->flux + (gsize) t * n_wave;
      sum += coefficients[t] * (row[i] + fraction * (row[i + 1] - row[i]));
    }
    flux[k] = sum;
  }
}

/* Observed f_λ (erg/s/cm²/Å) of a galaxy at `n` observed wavelengths, with Galactic
 * extinction given as A(λ)/E(B−V) per wavelength (NULL: computed here).
 * f_obs(λ) = f_10pc(λ/(1+z)) · (10 pc/D_L)² / (1+z) · 10^(−0.4 E(B−V) k(λ)). */
static void
observed_sed (const AclipSimulator *simulator, const GalaxyDraw *galaxy, gsize n,
              const double *wavelength, const double *extinction_curve, double *flux)
{
  double one_plus_z = 1.0 + galaxy->z;
  double distance = aclip_cosmology_luminosity_distance (simulator->cosmology, galaxy->z);
  double dimming = (MPC_PER_10_PC / distance) * (MPC_PER_10_PC / distance) / one_plus_z;
  g_autofree double *rest = g_new (double, n);
  for (gsize k = 0; k < n; k++)
    rest[k] = wavelength[k] / one_plus_z;
  rest_sed (simulator->templates, galaxy->coefficients, n, rest, flux);
  for (gsize k = 0; k < n; k++) {
    double curve =
        extinction_curve ? extinction_curve[k] : aclip_extinction_ccm89 (wavelength[k], 3.1);
    flux[k] *= dimming * exp (-0.4 * G_LN10 * galaxy->ebv * curve);
  }
}

/* Total g, r, z fluxes (nanomaggies) of a galaxy. */
static void
band_fluxes (const AclipSimulator *simulator, const GalaxyDraw *galaxy, double flux[ACLIP_N_BANDS])
{
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    const AclipFilter *filter = simulator->decam[b];
    g_autofree double *sed = g_new (double, filter->n);
    observed_sed (simulator, galaxy, filter->n, filter->wavelength, simulator->decam_extinction[b],
                  sed);
    flux[b] = aclip_filter_maggies (filter, sed) * NANOMAGGIES;
  }
}

/* Stellar mass, star formation and type from the coefficients. */
static void
derive_physical (const AclipSimulator *simulator, GalaxyDraw *galaxy)
{
  const AclipTemplates *templates = simulator->templates;
  double mass = 0.0, halpha = 0.0;
  for (int t = 0; t < templates->n_templates; t++) {
    mass += galaxy->coefficients[t] * templates->mremain[t];
    halpha += galaxy->coefficients[t] * MAX (simulator->template_halpha[t], 0.0);
  }
  double luminosity = halpha * 4 * G_PI * CM_PER_10_PC * CM_PER_10_PC; /* erg/s */
  galaxy->logmstar = log10 (mass);
  double log_ssfr =
      luminosity > 0 ? log10 (luminosity) + LOG_SFR_PER_LHALPHA - galaxy->logmstar : LOG_SSFR_FLOOR;
  galaxy->log_ssfr = MAX (log_ssfr, LOG_SSFR_FLOOR);
  galaxy->log_sfr = galaxy->log_ssfr + galaxy->logmstar;
  galaxy->type = galaxy->log_ssfr > SSFR_THRESHOLD ? 1 : 0;
}

/* Loading: templates and their lines ---------------------------------------------------- */

/* Line flux (continuum-subtracted, trapezoid over centre ± half_width) and the continuum at the
 * line centre, from a straight line through the mean flux of two side bands. */
static void
measure_template_line (const AclipTemplates *templates, int t, double centre, double half_width,
                       const double blue_band[2], const double red_band[2], double *line_flux,
                       double *continuum)
{
  const double *w = templates->wavelength;
  const double *f = templates->flux + (gsize) t * templates->n_wave;
  double band_flux[2] = { 0, 0 }, band_wave[2] = { 0, 0 };
  const double *bands[2] = { blue_band, red_band };
  for (int s = 0; s < 2; s++) {
    int count = 0;
    for (int k = 0; k < templates->n_wave; k++) {
      if (w[k] >= bands[s][0] && w[k] <= bands[s][1]) {
        band_flux[s] += f[k];
        band_wave[s] += w[k];
        count++;
      }
    }
    band_flux[s] /= MAX (count, 1);
    band_wave[s] /= MAX (count, 1);
  }
  double slope = (band_flux[1] - band_flux[0]) / (band_wave[1] - band_wave[0]);
  double sum = 0.0;
  for (int k = 0; k + 1 < templates->n_wave; k++) {
    double a = w[k], b = w[k + 1];
    if (a < centre - half_width || b > centre + half_width)
      continue;
    double ea = f[k] - (band_flux[0] + slope * (a - band_wave[0]));
    double eb = f[k + 1] - (band_flux[0] + slope * (b - band_wave[0]));
    sum += 0.5 * (ea + eb) * (b - a);
  }
  *line_flux = sum;
  *continuum = band_flux[0] + slope * (centre - band_wave[0]);
}

static gboolean
load_templates (AclipSimulator *simulator, GError **error)
{
  g_autofree char *path = aclip_data_find (TEMPLATES_FILE, error);
  if (path == NULL)
    return FALSE;
  simulator->templates = aclip_templates_load (path, error);
  if (simulator->templates == NULL)
    return FALSE;
  const AclipTemplates *templates = simulator->templates;
  if (templates->n_templates > ACLIP_SIM_MAX_TEMPLATES) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: %d templates, more than the simulator’s %d"), path, templates->n_templates,
                 ACLIP_SIM_MAX_TEMPLATES);
    return FALSE;
  }
  if (templates->wavelength[0] > 2000.0 || templates->wavelength[templates->n_wave - 1] < 12000.0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s: the templates cover %g–%g Å; the simulator needs 2000–12000 Å"), path,
                 templates->wavelength[0], templates->wavelength[templates->n_wave - 1]);
    return FALSE;
  }
  /* Side bands avoid [N II] 6548/6584 and [S II]; the line windows hold the whole line at the
   * templates' resolution (FWHM ≈ 11 Å). */
  static const double halpha_blue[2] = { 6480, 6530 }, halpha_red[2] = { 6610, 6660 };
  static const double oii_blue[2] = { 3680, 3710 }, oii_red[2] = { 3750, 3780 };
  for (int t = 0; t < templates->n_templates; t++) {
    measure_template_line (templates, t, HALPHA_WAVELENGTH, 15.0, halpha_blue, halpha_red,
                           &simulator->template_halpha[t],
                           &simulator->template_halpha_continuum[t]);
    measure_template_line (templates, t, OII_WAVELENGTH, 15.0, oii_blue, oii_red,
                           &simulator->template_oii[t], &simulator->template_oii_continuum[t]);
  }
  return TRUE;
}

static AclipFilter *
load_filter (const char *relative, double step, GError **error)
{
  g_autofree char *path = aclip_data_find (relative, error);
  if (path == NULL)
    return NULL;
  return aclip_filter_load (path, step, error);
}

/* Loading: the SDSS prior ----------------------------------------------------------------- */

typedef struct
{
  int n_rows;
  double *flux;       /* [n_rows][5] nanomaggies */
  double *ivar;       /* [n_rows][5] nanomaggies⁻² */
  double *extinction; /* [n_rows][5] mag */
  double *z;          /* [n_rows] */
} SdssTable;

static void
sdss_table_clear (SdssTable *table)
{
  g_free (table->flux);
  g_free (table->ivar);
  g_free (table->extinction);
  g_free (table->z);
}

static gboolean
read_table_column (AclipFits *fits, const char *name, gint64 repeat, gint64 n_rows, double *values,
                   GError **error)
{
  AclipFitsColumn column;
  if (!aclip_fits_column (fits, name, &column, error))
    return FALSE;
  if (column.repeat != repeat) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: column %s has %" PRId64 " elements per row (%" PRId64
                    " expected)"),
                 aclip_fits_path (fits), name, column.repeat, repeat);
    return FALSE;
  }
  return aclip_fits_read_column_double (fits, column.number, 0, 0, n_rows * repeat, values, error);
}

static gboolean
read_sdss_table (const char *path, SdssTable *table, GError **error)
{
  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return FALSE;
  AclipFitsHduType type;
  if (!aclip_fits_move_to_index (fits, 2, &type, error))
    return FALSE;
  gint64 n_rows = 0;
  if (type != ACLIP_FITS_BINARY_TABLE || !aclip_fits_table_n_rows (fits, &n_rows, NULL) ||
      n_rows < 10 || n_rows > G_MAXINT / N_SDSS_BANDS) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: HDU 2 must be a binary table of SDSS galaxies"), path);
    return FALSE;
  }
  table->n_rows = (int) n_rows;
  table->flux = g_new (double, n_rows * N_SDSS_BANDS);
  table->ivar = g_new (double, n_rows * N_SDSS_BANDS);
  table->extinction = g_new (double, n_rows * N_SDSS_BANDS);
  table->z = g_new (double, n_rows);
  return read_table_column (fits, "MODELFLUX", N_SDSS_BANDS, n_rows, table->flux, error) &&
         read_table_column (fits, "MODELFLUX_IVAR", N_SDSS_BANDS, n_rows, table->ivar, error) &&
         read_table_column (fits, "EXTINCTION", N_SDSS_BANDS, n_rows, table->extinction, error) &&
         read_table_column (fits, "Z", 1, n_rows, table->z, error);
}

/* Fits NNLS template coefficients to each SDSS galaxy's extinction-corrected ugriz at its
 * spectroscopic redshift. Template maggies in each band are tabulated on a redshift grid
 * (step 0.002) and interpolated linearly. */
static gboolean
load_sdss_prior (AclipSimulator *simulator, GError **error)
{
  g_autofree char *path = aclip_data_find (SDSS_PRIOR_FILE, error);
  if (path == NULL)
    return FALSE;
  SdssTable table = { 0 };
  if (!read_sdss_table (path, &table, error)) {
    sdss_table_clear (&table);
    return FALSE;
  }

  AclipFilter *filters[N_SDSS_BANDS] = { NULL };
  gboolean ok = TRUE;
  for (int b = 0; b < N_SDSS_BANDS && ok; b++) {
    filters[b] = load_filter (sdss_filter_files[b], 2.0, error);
    ok = filters[b] != NULL;
  }

  const AclipTemplates *templates = simulator->templates;
  int n_t = templates->n_templates;
  double z_max = 0.0;
  for (int i = 0; i < table.n_rows && ok; i++)
    if (isfinite (table.z[i]) && table.z[i] < 2.0)
      z_max = MAX (z_max, table.z[i]);
  int n_z = (int) ceil (z_max / SDSS_Z_STEP) + 2;

  /* model[iz][t][b]: maggies of template t at 10 pc redshifted to z = iz·step (f/(1+z)). */
  g_autofree double *model = g_new0 (double, (gsize) n_z * n_t * N_SDSS_BANDS);
  for (int b = 0; b < N_SDSS_BANDS && ok; b++) {
    const AclipFilter *filter = filters[b];
    g_autofree double *rest = g_new (double, filter->n);
    g_autofree double *sed = g_new (double, filter->n);
    for (int iz = 0; iz < n_z; iz++) {
      double one_plus_z = 1.0 + iz * SDSS_Z_STEP;
      for (int k = 0; k < filter->n; k++)
        rest[k] = filter->wavelength[k] / one_plus_z;
      for (int t = 0; t < n_t; t++) {
        double unit[ACLIP_SIM_MAX_TEMPLATES] = { 0 };
        unit[t] = 1.0;
        rest_sed (templates, unit, filter->n, rest, sed);
        model[((gsize) iz * n_t + t) * N_SDSS_BANDS + b] =
            aclip_filter_maggies (filter, sed) / one_plus_z;
      }
    }
  }
  /* The rest-frame SDSS r luminosity of each template, for absolute magnitudes. */
  for (int t = 0; t < n_t && ok; t++)
    simulator->template_r_maggies[t] = model[(gsize) t * N_SDSS_BANDS + 2];

  simulator->n_prior_rows = table.n_rows;
  simulator->prior = g_new0 (PriorGalaxy, table.n_rows);
  int n_fitted = 0;
  for (int i = 0; i < table.n_rows && ok; i++) {
    double z = table.z[i];
    if (!isfinite (z) || z < MIN_REDSHIFT || z > z_max)
      continue;
    double position = z / SDSS_Z_STEP;
    int iz = MIN ((int) position, n_z - 2);
    double fraction = position - iz;
    double design[N_SDSS_BANDS * ACLIP_SIM_MAX_TEMPLATES]; /* [band][template] */
    double rhs[N_SDSS_BANDS];
    int n_good_bands = 0;
    for (int b = 0; b < N_SDSS_BANDS; b++) {
      double flux = table.flux[i * N_SDSS_BANDS + b];
      double ivar = table.ivar[i * N_SDSS_BANDS + b];
      /* To AB, then corrected for Galactic extinction. */
      double dereddening =
          pow (10.0, 0.4 * (table.extinction[i * N_SDSS_BANDS + b] - sdss_ab_offset[b]));
      double weight = 0.0;
      if (isfinite (flux) && isfinite (ivar) && ivar > 0 && isfinite (dereddening)) {
        flux *= dereddening;
        double sigma2 = dereddening * dereddening / ivar +
                        (sdss_error_floor[b] * flux) * (sdss_error_floor[b] * flux);
        weight = 1.0 / sqrt (sigma2);
        n_good_bands++;
      } else {
        flux = 0.0;
      }
      rhs[b] = flux * weight;
      for (int t = 0; t < n_t; t++) {
        double low = model[((gsize) iz * n_t + t) * N_SDSS_BANDS + b];
        double high = model[((gsize) (iz + 1) * n_t + t) * N_SDSS_BANDS + b];
        design[b * n_t + t] = (low + fraction * (high - low)) * NANOMAGGIES * weight;
      }
    }
    if (n_good_bands < 3)
      continue;
    double solution[ACLIP_SIM_MAX_TEMPLATES];
    aclip_nnls (N_SDSS_BANDS, n_t, design, rhs, solution, NULL);
    double distance = aclip_cosmology_luminosity_distance (simulator->cosmology, z);
    double to_solar_masses = (distance / MPC_PER_10_PC) * (distance / MPC_PER_10_PC);
    PriorGalaxy *galaxy = &simulator->prior[n_fitted];
    double total = 0.0;
    for (int t = 0; t < n_t; t++) {
      galaxy->coefficients[t] = solution[t] * to_solar_masses;
      total += galaxy->coefficients[t];
    }
    if (!(total > 0) || !isfinite (total))
      continue;
    galaxy->file_row = i;
    galaxy->z = z;
    galaxy->ebv = MAX (0.0, table.extinction[i * N_SDSS_BANDS + 2] / SDSS_R_PER_EBV);
    n_fitted++;
  }
  simulator->n_prior = n_fitted;
  for (int b = 0; b < N_SDSS_BANDS; b++)
    aclip_filter_free (filters[b]);
  sdss_table_clear (&table);
  if (ok && n_fitted < 10) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s: only %d galaxies could be fitted with the templates"), path, n_fitted);
    ok = FALSE;
  }
  return ok;
}

/* Loading: COSMOS morphologies ------------------------------------------------------------ */

/* Total flux over (I_e · r_e²) of a Sérsic profile with axis ratio q, r_e on the major axis:
 * 2π n e^b Γ(2n) / b^(2n) · q. */
static double
sersic_flux_factor (double n, double axis_ratio)
{
  double b = 2 * n - 1.0 / 3 + 4.0 / (405 * n) + 46.0 / (25515 * n * n);
  return 2 * G_PI * n * exp (b + lgamma (2 * n) - 2 * n * log (b)) * axis_ratio;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median_of (double *values, int n)
{
  if (n == 0)
    return NAN;
  qsort (values, n, sizeof (double), compare_doubles);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* The k-th smallest of values[n] (Hoare's selection; reorders values). */
static double
select_kth (double *values, int n, int k)
{
  int low = 0, high = n - 1;
  while (low < high) {
    double pivot = values[(low + high) / 2];
    int i = low, j = high;
    while (i <= j) {
      while (values[i] < pivot)
        i++;
      while (values[j] > pivot)
        j--;
      if (i <= j) {
        double swap = values[i];
        values[i++] = values[j];
        values[j--] = swap;
      }
    }
    if (k <= j)
      high = j;
    else if (k >= i)
      low = i;
    else
      break;
  }
  return values[k];
}

/* Circularised half-light radius of a disc + bulge, each a unit-radius mixture scaled by its
 * own half-light radius. */
static double
composite_half_light_radius (const AclipMog *disc, double disc_size, const AclipMog *bulge,
                             double bulge_size, double bulge_fraction)
{
  double low = 0.0, high = 10.0 * MAX (disc_size, bulge_size);
  for (int iteration = 0; iteration < 100; iteration++) {
    double middle = 0.5 * (low + high);
    double enclosed =
        (1 - bulge_fraction) * aclip_mog_enclosed_fraction (disc, middle / disc_size) +
        bulge_fraction * aclip_mog_enclosed_fraction (bulge, middle / bulge_size);
    if (enclosed < 0.5)
      low = middle;
    else
      high = middle;
  }
  return 0.5 * (low + high);
}

static int
add_profile (GArray *profiles, double sersic_n, GError **error)
{
  AclipMog mog;
  if (!aclip_mog_fit_sersic (sersic_n, SERSIC_BASIS, &mog, NULL, error))
    return -1;
  g_array_append_val (profiles, mog);
  return (int) profiles->len - 1;
}

static gboolean
load_cosmos_prior (AclipSimulator *simulator, GError **error)
{
  g_autofree char *path = aclip_data_find (COSMOS_PRIOR_FILE, error);
  if (path == NULL)
    return FALSE;
  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return FALSE;
  AclipFitsHduType type;
  if (!aclip_fits_move_to_index (fits, 2, &type, error))
    return FALSE;
  gint64 n_rows = 0;
  if (type != ACLIP_FITS_BINARY_TABLE || !aclip_fits_table_n_rows (fits, &n_rows, NULL) ||
      n_rows < 1 || n_rows > 1000000) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: HDU 2 must be a binary table of COSMOS profile fits"), path);
    return FALSE;
  }
  g_autofree double *sersic = g_new (double, n_rows * 8); /* [row][8] */
  g_autofree double *bulge = g_new (double, n_rows * 16); /* [row][16]: disc 8, bulge 8 */
  g_autofree double *use_bulge = g_new (double, n_rows);
  g_autofree double *viable = g_new (double, n_rows);
  g_autofree double *zphot = g_new (double, n_rows);
  if (!read_table_column (fits, "sersicfit", 8, n_rows, sersic, error) ||
      !read_table_column (fits, "bulgefit", 16, n_rows, bulge, error) ||
      !read_table_column (fits, "use_bulgefit", 1, n_rows, use_bulge, error) ||
      !read_table_column (fits, "viable_sersic", 1, n_rows, viable, error) ||
      !read_table_column (fits, "zphot", 1, n_rows, zphot, error))
    return FALSE;

  g_autoptr (GArray) profiles = g_array_new (FALSE, FALSE, sizeof (AclipMog));
  if (add_profile (profiles, DISC_INDEX, error) < 0 ||
      add_profile (profiles, BULGE_INDEX, error) < 0)
    return FALSE;
  simulator->morphologies = g_new0 (Morphology, n_rows);
  g_autofree double *physical_size = g_new (double, n_rows); /* kpc */
  int n = 0;
  for (gint64 row = 0; row < n_rows; row++) {
    const double *s = sersic + row * 8, *d = bulge + row * 16, *bu = d + 8;
    /* sersicfit: amplitude, half-light radius (major axis, 0.03″ pixels), n, q, boxiness,
     * x0, y0, position angle (radians). */
    if (viable[row] != 1 || !(s[1] > 0) || !(s[2] > 0) || !(s[3] > 0 && s[3] <= 1) ||
        !isfinite (s[7]) || !(zphot[row] > 0.01))
      continue;
    Morphology *morphology = &simulator->morphologies[n];
    morphology->file_row = (int) row;
    morphology->sersic_n = CLAMP (s[2], MIN_SERSIC_INDEX, MAX_SERSIC_INDEX);
    morphology->axis_ratio = s[3];
    double galaxy_size; /* circularised half-light radius, COSMOS pixels */
    gboolean two_components = use_bulge[row] == 1 && d[0] > 0 && d[1] > 0 && d[3] > 0 &&
                              d[3] <= 1 && bu[0] > 0 && bu[1] > 0 && bu[3] > 0 && bu[3] <= 1;
    if (two_components) {
      double disc_flux = d[0] * d[1] * d[1] * sersic_flux_factor (DISC_INDEX, d[3]);
      double bulge_flux = bu[0] * bu[1] * bu[1] * sersic_flux_factor (BULGE_INDEX, bu[3]);
      double bulge_fraction = bulge_flux / (bulge_flux + disc_flux);
      double disc_size = d[1] * sqrt (d[3]), bulge_size = bu[1] * sqrt (bu[3]);
      galaxy_size = composite_half_light_radius (&g_array_index (profiles, AclipMog, 0), disc_size,
                                                 &g_array_index (profiles, AclipMog, 1), bulge_size,
                                                 bulge_fraction);
      morphology->n_components = 2;
      morphology->components[0] = (MorphologyComponent){ .profile = 0,
                                                         .flux_fraction = 1 - bulge_fraction,
                                                         .size_fraction = disc_size / galaxy_size,
                                                         .axis_ratio = d[3],
                                                         .position_angle = 0.0 };
      morphology->components[1] = (MorphologyComponent){ .profile = 1,
                                                         .flux_fraction = bulge_fraction,
                                                         .size_fraction = bulge_size / galaxy_size,
                                                         .axis_ratio = bu[3],
                                                         .position_angle = bu[7] - d[7] };
      morphology->bulge_fraction = bulge_fraction;
      morphology->early = bulge_fraction >= 0.5;
    } else {
      int profile = add_profile (profiles, morphology->sersic_n, error);
      if (profile < 0)
        return FALSE;
      galaxy_size = s[1] * sqrt (s[3]);
      morphology->n_components = 1;
      morphology->components[0] = (MorphologyComponent){ .profile = profile,
                                                         .flux_fraction = 1.0,
                                                         .size_fraction = 1.0,
                                                         .axis_ratio = s[3],
                                                         .position_angle = 0.0 };
      morphology->bulge_fraction = 0.0;
      morphology->early = morphology->sersic_n >= 2.5;
    }
    double distance = aclip_cosmology_angular_diameter_distance (simulator->cosmology, zphot[row]);
    physical_size[n] = galaxy_size * COSMOS_PIXEL_SCALE / ARCSEC_PER_RADIAN * distance * 1e3;
    n++;
  }
  if (n == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("%s: no usable Sérsic fits"), path);
    return FALSE;
  }
  simulator->n_morphologies = n;

  /* Each galaxy's size offset: half its log offset from its class median (the other half is
   * put down to the sample's own mass range), within ±0.3 dex. */
  simulator->early_morphologies = g_new (int, n);
  simulator->late_morphologies = g_new (int, n);
  g_autofree double *early_sizes = g_new (double, n);
  g_autofree double *late_sizes = g_new (double, n);
  for (int i = 0; i < n; i++) {
    if (simulator->morphologies[i].early) {
      early_sizes[simulator->n_early] = physical_size[i];
      simulator->early_morphologies[simulator->n_early++] = i;
    } else {
      late_sizes[simulator->n_late] = physical_size[i];
      simulator->late_morphologies[simulator->n_late++] = i;
    }
  }
  double early_median = median_of (early_sizes, simulator->n_early);
  double late_median = median_of (late_sizes, simulator->n_late);
  for (int i = 0; i < n; i++) {
    Morphology *morphology = &simulator->morphologies[i];
    double median = morphology->early ? early_median : late_median;
    morphology->size_offset =
        CLAMP (0.5 * log10 (physical_size[i] / median), -SIZE_OFFSET_LIMIT, SIZE_OFFSET_LIMIT);
  }
  simulator->n_profiles = (int) profiles->len;
  simulator->profiles = (AclipMog *) g_array_free (g_steal_pointer (&profiles), FALSE);
  return TRUE;
}

/* Loading: the spectrograph --------------------------------------------------------------- */

typedef struct
{
  double wavelength, value;
} Knot;

static double
interpolate_knots (const Knot *knots, int n, double wavelength)
{
  if (wavelength <= knots[0].wavelength)
    return knots[0].value;
  for (int i = 1; i < n; i++)
    if (wavelength <= knots[i].wavelength) {
      double t =
          (wavelength - knots[i - 1].wavelength) / (knots[i].wavelength - knots[i - 1].wavelength);
      return knots[i - 1].value + t * (knots[i].value - knots[i - 1].value);
    }
  return knots[n - 1].value;
}

/* Total throughput of each arm (atmosphere, telescope, fibre transmission, spectrograph, CCD;
 * not the fibre's aperture loss), approximating DESI's, with the dichroic crossovers. */
static const Knot arm_b_throughput[] = {
  { 3600, 0.22 }, { 4000, 0.40 }, { 4600, 0.50 }, { 5500, 0.50 }, { 5700, 0.42 }, { 5800, 0.05 },
};
static const Knot arm_r_throughput[] = {
  { 5760, 0.05 },
  { 5860, 0.50 },
  { 7400, 0.52 },
  { 7620, 0.05 },
};
static const Knot arm_z_throughput[] = {
  { 7520, 0.05 }, { 7650, 0.50 }, { 8600, 0.48 }, { 9400, 0.32 }, { 9824, 0.20 },
};
static const double arm_range[N_ARMS][2] = { { 3600, 5800 }, { 5760, 7620 }, { 7520, 9824 } };

/* Dark-sky continuum at zenith, AB mag/arcsec². */
static const Knot sky_continuum[] = {
  { 3600, 22.4 }, { 4500, 22.3 }, { 5500, 21.6 }, { 6500, 21.0 }, { 8000, 20.4 }, { 9824, 20.0 },
};

typedef struct
{
  double wavelength; /* vacuum Å */
  double rayleighs;
} SkyLine;

/* Atomic night-sky lines (vacuum wavelengths; intensities typical of a dark site). */
static const SkyLine atomic_sky_lines[] = {
  { 4359.6, 15 },  /* Hg I (street lights) */
  { 5462.3, 20 },  /* Hg I */
  { 5578.9, 250 }, /* [O I] */
  { 5891.6, 50 },  /* Na I D2 */
  { 5897.6, 35 },  /* Na I D1 */
  { 6302.0, 120 }, /* [O I] */
  { 6365.5, 40 },  /* [O I] */
};

/* OH Meinel bands, approximated: each band is 14 lines starting at its head with growing
 * spacing (like a P branch), intensities ∝ (k+1)e^(−(k+1)/3) summing to the band's total. */
typedef struct
{
  double head;      /* Å */
  double spacing;   /* Å between its first lines */
  double rayleighs; /* total */
} OhBand;
static const OhBand oh_bands[] = {
  { 6257, 9, 300 },   { 6465, 10, 500 },  { 6830, 11, 800 },  { 7240, 12, 1000 },
  { 7750, 13, 1200 }, { 7910, 14, 1000 }, { 8290, 15, 2000 }, { 8760, 16, 2200 },
  { 9300, 17, 1500 }, { 9700, 18, 1800 },
};
#define OH_LINES_PER_BAND 14

static double
lsf_sigma (double wavelength)
{
  /* FWHM 1.8 Å at 3600 Å rising to 2.0 Å at 9824 Å. */
  double fwhm = 1.8 + 0.2 * (wavelength - ACLIP_DESI_WAVE_MIN) / (9824.0 - ACLIP_DESI_WAVE_MIN);
  return fwhm / (2 * sqrt (2 * G_LN2));
}

/* Adds a line of `flux` (erg/s/cm²/arcsec²) with the LSF's Gaussian profile to sky[] (per Å). */
static void
add_sky_line (const double *wavelength, double line_wavelength, double flux, double *sky)
{
  double sigma = lsf_sigma (line_wavelength);
  int centre = (int) lround ((line_wavelength - ACLIP_DESI_WAVE_MIN) / ACLIP_DESI_WAVE_STEP);
  int reach = (int) ceil (5 * sigma / ACLIP_DESI_WAVE_STEP) + 1;
  for (int k = MAX (0, centre - reach); k <= MIN (ACLIP_DESI_N_WAVE - 1, centre + reach); k++) {
    double u = (wavelength[k] - line_wavelength) / sigma;
    sky[k] += flux * exp (-0.5 * u * u) / (sqrt (2 * G_PI) * sigma);
  }
}

static double
rayleighs_to_flux (double rayleighs, double wavelength)
{
  /* 1 R = 10⁶/(4π) photons/s/cm²/sr; 1 sr = 4.2545e10 arcsec². */
  double photons = rayleighs * 1e6 / (4 * G_PI) / 4.254517e10;
  return photons * HC_ERG_ANGSTROM / wavelength;
}

static void
build_spectrograph (AclipSimulator *simulator)
{
  aclip_desi_wavelength_grid (simulator->wavelength);
  const double *w = simulator->wavelength;
  const int n = ACLIP_DESI_N_WAVE;

  simulator->lsf = g_new (double, (gsize) n * LSF_TAPS);
  for (int k = 0; k < n; k++) {
    double sigma = lsf_sigma (w[k]) / ACLIP_DESI_WAVE_STEP;
    double *taps = simulator->lsf + (gsize) k * LSF_TAPS;
    double sum = 0.0;
    for (int m = -LSF_HALF_WIDTH; m <= LSF_HALF_WIDTH; m++) {
      gboolean inside = k + m >= 0 && k + m < n;
      taps[m + LSF_HALF_WIDTH] = inside ? exp (-0.5 * m * m / (sigma * sigma)) : 0.0;
      sum += taps[m + LSF_HALF_WIDTH];
    }
    for (int m = 0; m < LSF_TAPS; m++)
      taps[m] /= sum;
  }

  /* Sky surface brightness, erg/s/cm²/Å/arcsec². */
  g_autofree double *sky = g_new0 (double, n);
  for (int k = 0; k < n; k++) {
    double mag = interpolate_knots (sky_continuum, G_N_ELEMENTS (sky_continuum), w[k]);
    sky[k] = ACLIP_AB_ZERO_FNU * pow (10.0, -0.4 * mag) * ACLIP_SPEED_OF_LIGHT_A_S / (w[k] * w[k]);
  }
  for (gsize i = 0; i < G_N_ELEMENTS (atomic_sky_lines); i++)
    add_sky_line (w, atomic_sky_lines[i].wavelength,
                  rayleighs_to_flux (atomic_sky_lines[i].rayleighs, atomic_sky_lines[i].wavelength),
                  sky);
  for (gsize i = 0; i < G_N_ELEMENTS (oh_bands); i++) {
    double weights[OH_LINES_PER_BAND], total = 0.0;
    for (int line = 0; line < OH_LINES_PER_BAND; line++) {
      weights[line] = (line + 1) * exp (-(line + 1) / 3.0);
      total += weights[line];
    }
    for (int line = 0; line < OH_LINES_PER_BAND; line++) {
      double lambda = oh_bands[i].head + oh_bands[i].spacing * line * (1.0 + 0.08 * line);
      add_sky_line (w, lambda,
                    rayleighs_to_flux (oh_bands[i].rayleighs * weights[line] / total, lambda), sky);
    }
  }

  const Knot *throughputs[N_ARMS] = { arm_b_throughput, arm_r_throughput, arm_z_throughput };
  const int n_knots[N_ARMS] = { G_N_ELEMENTS (arm_b_throughput), G_N_ELEMENTS (arm_r_throughput),
                                G_N_ELEMENTS (arm_z_throughput) };
  double fibre_area = G_PI * FIBRE_RADIUS * FIBRE_RADIUS;
  simulator->electrons_per_flux = g_new0 (double, (gsize) N_ARMS * n);
  simulator->sky_electrons = g_new0 (double, (gsize) N_ARMS * n);
  for (int a = 0; a < N_ARMS; a++) {
    for (int k = 0; k < n; k++) {
      if (w[k] < arm_range[a][0] || w[k] > arm_range[a][1])
        continue;
      double throughput = interpolate_knots (throughputs[a], n_knots[a], w[k]);
      double rate = SPECTRUM_UNIT * TELESCOPE_AREA * ACLIP_DESI_WAVE_STEP * throughput * w[k] /
                    HC_ERG_ANGSTROM;
      simulator->electrons_per_flux[(gsize) a * n + k] = rate;
      simulator->sky_electrons[(gsize) a * n + k] = sky[k] * fibre_area / SPECTRUM_UNIT * rate;
    }
  }

  simulator->desi_extinction = g_new (double, n);
  for (int k = 0; k < n; k++)
    simulator->desi_extinction[k] = aclip_extinction_ccm89 (w[k], 3.1);
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    const AclipFilter *filter = simulator->decam[b];
    simulator->decam_extinction[b] = g_new (double, filter->n);
    for (int k = 0; k < filter->n; k++)
      simulator->decam_extinction[b][k] = aclip_extinction_ccm89 (filter->wavelength[k], 3.1);
  }
}

/* Truth columns ------------------------------------------------------------------------- */

static void
build_columns (AclipSimulator *simulator)
{
  static const AclipExtraColumn fixed[] = {
    { "TYPE", ACLIP_COLUMN_INT32, NULL, "1 star-forming (log sSFR > -11), 0 quiescent" },
    { "SSFR", ACLIP_COLUMN_FLOAT, "dex(yr-1)",
      "log10 specific SFR from the model's H-alpha luminosity, floor -14" },
    { "SFR", ACLIP_COLUMN_FLOAT, "dex(solMass/yr)", "log10 SFR (Kennicutt & Evans 2012)" },
    { "ABSMAG_R", ACLIP_COLUMN_FLOAT, "mag", "rest-frame SDSS r absolute AB magnitude" },
    { "MAG_G", ACLIP_COLUMN_FLOAT, "mag", "total g AB magnitude (with Galactic extinction)" },
    { "MAG_R", ACLIP_COLUMN_FLOAT, "mag", "total r AB magnitude (with Galactic extinction)" },
    { "MAG_Z", ACLIP_COLUMN_FLOAT, "mag", "total z AB magnitude (with Galactic extinction)" },
    { "EBV", ACLIP_COLUMN_FLOAT, "mag", "Galactic E(B-V) applied (CCM89, R_V = 3.1)" },
    { "EW_HALPHA", ACLIP_COLUMN_FLOAT, "Angstrom", "rest-frame H-alpha equivalent width" },
    { "EW_OII", ACLIP_COLUMN_FLOAT, "Angstrom", "rest-frame [O II] 3727 equivalent width" },
    { "R_EFF", ACLIP_COLUMN_FLOAT, "arcsec", "circularised half-light radius before the PSF" },
    { "R_EFF_KPC", ACLIP_COLUMN_FLOAT, "kpc", "circularised half-light radius" },
    { "SERSIC_N", ACLIP_COLUMN_FLOAT, NULL, "single-Sersic index of the COSMOS shape" },
    { "AXIS_RATIO", ACLIP_COLUMN_FLOAT, NULL, "minor/major axis ratio" },
    { "POS_ANGLE", ACLIP_COLUMN_FLOAT, "deg", "major axis from north (+y) through east (-x)" },
    { "BULGE_FRAC", ACLIP_COLUMN_FLOAT, NULL, "bulge-to-total flux ratio" },
    { "SEEING_G", ACLIP_COLUMN_FLOAT, "arcsec", "g PSF FWHM (Moffat)" },
    { "SEEING_R", ACLIP_COLUMN_FLOAT, "arcsec", "r PSF FWHM (Moffat)" },
    { "SEEING_Z", ACLIP_COLUMN_FLOAT, "arcsec", "z PSF FWHM (Moffat)" },
    { "PSF_BETA", ACLIP_COLUMN_FLOAT, NULL, "Moffat beta of the PSF" },
    { "PSFDEPTH_G", ACLIP_COLUMN_FLOAT, "mag", "5-sigma point-source depth, g" },
    { "PSFDEPTH_R", ACLIP_COLUMN_FLOAT, "mag", "5-sigma point-source depth, r" },
    { "PSFDEPTH_Z", ACLIP_COLUMN_FLOAT, "mag", "5-sigma point-source depth, z" },
    { "HAS_NEIGHBOUR", ACLIP_COLUMN_INT32, NULL, "1 if another galaxy is in the cutout" },
    { "HAS_STAR", ACLIP_COLUMN_INT32, NULL, "1 if a star is in the cutout" },
    { "FIBER_FRAC", ACLIP_COLUMN_FLOAT, NULL, "fraction of the light in the 1.5 arcsec fibre" },
    { "SNR_SPEC", ACLIP_COLUMN_FLOAT, NULL, "median S/N per spectrum pixel" },
    { "SDSS_ROW", ACLIP_COLUMN_INT32, NULL, "fitted SDSS prior galaxy the draw started from" },
    { "COSMOS_ROW", ACLIP_COLUMN_INT32, NULL, "COSMOS shape used" },
  };
  int n_t = simulator->templates->n_templates;
  simulator->n_columns = G_N_ELEMENTS (fixed) + n_t;
  simulator->columns = g_new0 (AclipExtraColumn, simulator->n_columns);
  memcpy (simulator->columns, fixed, sizeof fixed);
  simulator->column_names = g_new0 (char *, n_t + 1);
  for (int t = 0; t < n_t; t++) {
    simulator->column_names[t] = g_strdup_printf ("COEFF_%d", t);
    simulator->columns[G_N_ELEMENTS (fixed) + t] =
        (AclipExtraColumn){ simulator->column_names[t], ACLIP_COLUMN_DOUBLE, "solMass",
                            "solar masses formed in this kcorrect template" };
  }
}

const AclipExtraColumn *
aclip_simulator_extra_columns (const AclipSimulator *simulator, int *n_columns)
{
  *n_columns = simulator->n_columns;
  return simulator->columns;
}

void
aclip_simulator_truth_values (const AclipSimulator *simulator, const AclipSimTruth *truth,
                              double *values)
{
  int i = 0;
  values[i++] = truth->type;
  values[i++] = truth->log_ssfr;
  values[i++] = truth->log_sfr;
  values[i++] = truth->absmag_r;
  for (int b = 0; b < ACLIP_N_BANDS; b++)
    values[i++] = truth->flux[b] > 0 ? 22.5 - 2.5 * log10 (truth->flux[b]) : NAN;
  values[i++] = truth->ebv;
  values[i++] = truth->ew_halpha;
  values[i++] = truth->ew_oii;
  values[i++] = truth->r_eff;
  values[i++] = truth->r_eff_kpc;
  values[i++] = truth->sersic_n;
  values[i++] = truth->axis_ratio;
  values[i++] = truth->position_angle;
  values[i++] = truth->bulge_fraction;
  for (int b = 0; b < ACLIP_N_BANDS; b++)
    values[i++] = truth->seeing[b];
  values[i++] = truth->psf_beta;
  for (int b = 0; b < ACLIP_N_BANDS; b++)
    values[i++] = truth->psf_depth[b];
  values[i++] = truth->has_neighbour;
  values[i++] = truth->has_star;
  values[i++] = truth->fiber_fraction;
  values[i++] = truth->snr_spectrum;
  values[i++] = truth->sdss_row;
  values[i++] = truth->cosmos_row;
  for (int t = 0; t < truth->n_templates; t++)
    values[i++] = truth->coefficients[t];
  g_assert (i == simulator->n_columns);
}

/* The simulator object ------------------------------------------------------------------- */

AclipSimulator *
aclip_simulator_new (GError **error)
{
  g_autoptr (AclipSimulator) simulator = g_new0 (AclipSimulator, 1);
  simulator->cosmology = aclip_cosmology_new_default ();
  if (!load_templates (simulator, error))
    return NULL;
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    simulator->decam[b] = load_filter (decam_filter_files[b], 1.0, error);
    if (simulator->decam[b] == NULL)
      return NULL;
  }
  if (!load_sdss_prior (simulator, error) || !load_cosmos_prior (simulator, error))
    return NULL;
  for (int i = 0; i < N_PSF_BETAS; i++)
    if (!aclip_mog_fit_moffat (psf_betas[i], MOFFAT_BASIS, &simulator->psf[i], NULL, error))
      return NULL;
  build_spectrograph (simulator);
  build_columns (simulator);
  return g_steal_pointer (&simulator);
}

void
aclip_simulator_free (AclipSimulator *simulator)
{
  if (simulator == NULL)
    return;
  aclip_templates_free (simulator->templates);
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    aclip_filter_free (simulator->decam[b]);
    g_free (simulator->decam_extinction[b]);
  }
  aclip_cosmology_free (simulator->cosmology);
  g_free (simulator->prior);
  g_free (simulator->morphologies);
  g_free (simulator->early_morphologies);
  g_free (simulator->late_morphologies);
  g_free (simulator->profiles);
  g_free (simulator->desi_extinction);
  g_free (simulator->lsf);
  g_free (simulator->electrons_per_flux);
  g_free (simulator->sky_electrons);
  g_free (simulator->columns);
  g_strfreev (simulator->column_names);
  g_free (simulator);
}

int
aclip_simulator_n_templates (const AclipSimulator *simulator)
{
  return simulator->templates->n_templates;
}

int
aclip_simulator_n_prior_galaxies (const AclipSimulator *simulator)
{
  return simulator->n_prior;
}

/* Drawing -------------------------------------------------------------------------------- */

/* Shen et al. (2003) size–mass relations (SDSS, circularised r50, kpc). */
static double
size_mass_relation (double mass, gboolean early)
{
  if (early)
    return 2.88e-6 * pow (mass, 0.56);
  return 0.1 * pow (mass, 0.14) * pow (1.0 + mass / 3.98e10, 0.25);
}

/* Draws a galaxy: a fitted SDSS galaxy, its redshift and coefficients perturbed; a COSMOS
 * shape that suits its type; its size from its mass. */
static void
draw_galaxy (const AclipSimulator *simulator, AclipRng *rng, GalaxyDraw *galaxy)
{
  int n_t = simulator->templates->n_templates;
  galaxy->prior_row = (int) aclip_rng_below (rng, simulator->n_prior);
  const PriorGalaxy *prior = &simulator->prior[galaxy->prior_row];
  double z = prior->z + REDSHIFT_JITTER * (1.0 + prior->z) * aclip_rng_normal (rng);
  galaxy->z = MAX (z, MIN_REDSHIFT);
  galaxy->ebv = prior->ebv;
  for (int t = 0; t < n_t; t++)
    galaxy->coefficients[t] =
        prior->coefficients[t] * exp (COEFFICIENT_JITTER * aclip_rng_normal (rng));
  derive_physical (simulator, galaxy);

  double early_probability =
      galaxy->type ? EARLY_TYPE_PROBABILITY_STAR_FORMING : EARLY_TYPE_PROBABILITY_QUIESCENT;
  gboolean early = aclip_rng_uniform (rng) < early_probability;
  if (simulator->n_early == 0)
    early = FALSE;
  if (simulator->n_late == 0)
    early = TRUE;
  galaxy->morphology =
      early ? simulator->early_morphologies[aclip_rng_below (rng, simulator->n_early)]
            : simulator->late_morphologies[aclip_rng_below (rng, simulator->n_late)];
  const Morphology *morphology = &simulator->morphologies[galaxy->morphology];
  double mass = pow (10.0, galaxy->logmstar);
  galaxy->r_eff_kpc = size_mass_relation (mass, morphology->early) *
                      pow (10.0, morphology->size_offset + 0.05 * aclip_rng_normal (rng));
  double distance = aclip_cosmology_angular_diameter_distance (simulator->cosmology, galaxy->z);
  galaxy->r_eff = galaxy->r_eff_kpc / (distance * 1e3) * ARCSEC_PER_RADIAN;
  galaxy->position_angle = aclip_rng_uniform_range (rng, 0.0, G_PI);
  band_fluxes (simulator, galaxy, galaxy->flux);
}

/* Photon flux of a blackbody through each DECam band, scaled to an r magnitude. */
static void
star_fluxes (const AclipSimulator *simulator, double temperature, double r_mag,
             double flux[ACLIP_N_BANDS])
{
  const double hc_over_k = 1.438777e8; /* Å·K */
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    const AclipFilter *filter = simulator->decam[b];
    g_autofree double *sed = g_new (double, filter->n);
    for (int k = 0; k < filter->n; k++) {
      double lambda = filter->wavelength[k];
      sed[k] = 1.0 / (pow (lambda, 5) * expm1 (hc_over_k / (lambda * temperature)));
    }
    flux[b] = aclip_filter_maggies (filter, sed);
  }
  double scale = pow (10.0, (22.5 - r_mag) / 2.5) / flux[1];
  for (int b = 0; b < ACLIP_N_BANDS; b++)
    flux[b] *= scale;
}

static void
draw_scene (const AclipSimulator *simulator, const AclipSimulateParams *params, gint64 galaxy_index,
            Scene *scene)
{
  memset (scene, 0, sizeof *scene);
  AclipRng rng;
  aclip_rng_init (&rng, params->seed, (guint64) galaxy_index, STREAM_PROPERTIES);
  draw_galaxy (simulator, &rng, &scene->galaxy);

  /* Sky position: uniform over −10° < Dec < 70°. */
  scene->ra = aclip_rng_uniform_range (&rng, 0.0, 360.0);
  double sin_low = sin (-10.0 * G_PI / 180), sin_high = sin (70.0 * G_PI / 180);
  scene->dec = asin (aclip_rng_uniform_range (&rng, sin_low, sin_high)) * 180 / G_PI;

  int size = params->image_size;
  scene->centre_x =
      0.5 * (size - 1) + aclip_rng_uniform_range (&rng, -CENTRE_JITTER, CENTRE_JITTER);
  scene->centre_y =
      0.5 * (size - 1) + aclip_rng_uniform_range (&rng, -CENTRE_JITTER, CENTRE_JITTER);

  /* Seeing: r drawn log-normally, g and z from it by Kolmogorov's λ^(−1/5) with their own
   * scatter (separate exposures). */
  double seeing_r = MEDIAN_SEEING_R * exp (SEEING_SCATTER * aclip_rng_normal (&rng));
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    double jitter = b == 1 ? 1.0 : exp (0.08 * aclip_rng_normal (&rng));
    double seeing = seeing_r * pow (band_wavelength[b] / band_wavelength[1], -0.2) * jitter;
    scene->seeing[b] = CLAMP (seeing, MIN_SEEING, MAX_SEEING);
  }
  scene->psf = (int) aclip_rng_below (&rng, N_PSF_BETAS);
  for (int b = 0; b < ACLIP_N_BANDS; b++)
    scene->psf_depth[b] = median_psf_depth[b] + PSF_DEPTH_SCATTER * aclip_rng_normal (&rng);
  scene->spectro_seeing = MEDIAN_SEEING_SPECTRO * exp (SEEING_SCATTER * aclip_rng_normal (&rng));
  scene->sky_scale = exp (SKY_SCATTER * aclip_rng_normal (&rng));

  /* Contaminants: always drawn, so the fractions do not shift other numbers. */
  double neighbour_draw = aclip_rng_uniform (&rng);
  double star_draw = aclip_rng_uniform (&rng);
  double half_width = 0.5 * size * ACLIP_LEGACY_PIXSCALE; /* arcsec */
  double separation = aclip_rng_uniform_range (&rng, 4.0, MAX (4.0, 0.8 * half_width));
  double angle = aclip_rng_uniform_range (&rng, 0.0, 2 * G_PI);
  double star_temperature = aclip_rng_uniform_range (&rng, 3500.0, 9000.0);
  double star_mag = aclip_rng_uniform_range (&rng, 16.0, 22.0);
  double star_x = aclip_rng_uniform_range (&rng, 0.0, size - 1.0);
  double star_y = aclip_rng_uniform_range (&rng, 0.0, size - 1.0);

  scene->has_neighbour = size > 0 && neighbour_draw < params->neighbour_fraction;
  if (scene->has_neighbour) {
    AclipRng neighbour_rng;
    aclip_rng_init (&neighbour_rng, params->seed, (guint64) galaxy_index, STREAM_NEIGHBOUR);
    draw_galaxy (simulator, &neighbour_rng, &scene->neighbour);
    /* Seen through the same Galactic dust; half are companions at the same redshift (keeping
     * their own luminosity). */
    GalaxyDraw *neighbour = &scene->neighbour;
    neighbour->ebv = scene->galaxy.ebv;
    if (aclip_rng_uniform (&neighbour_rng) < 0.5) {
      neighbour->z = scene->galaxy.z;
      double distance =
          aclip_cosmology_angular_diameter_distance (simulator->cosmology, neighbour->z);
      neighbour->r_eff = neighbour->r_eff_kpc / (distance * 1e3) * ARCSEC_PER_RADIAN;
    }
    band_fluxes (simulator, neighbour, neighbour->flux);
    scene->neighbour_x = scene->centre_x + separation * cos (angle) / ACLIP_LEGACY_PIXSCALE;
    scene->neighbour_y = scene->centre_y + separation * sin (angle) / ACLIP_LEGACY_PIXSCALE;
  }
  scene->has_star = size > 0 && star_draw < params->star_fraction;
  if (scene->has_star) {
    /* Not on top of the galaxy: mirror a position within 3″ of the centre outwards. */
    double dx = star_x - scene->centre_x, dy = star_y - scene->centre_y;
    double r = hypot (dx, dy) * ACLIP_LEGACY_PIXSCALE;
    if (r < 3.0 && size * ACLIP_LEGACY_PIXSCALE > 8.0) {
      double push = (3.0 + (3.0 - r)) / MAX (r, 1e-3);
      dx *= push;
      dy *= push;
    }
    scene->star_x = scene->centre_x + dx;
    scene->star_y = scene->centre_y + dy;
    star_fluxes (simulator, star_temperature, star_mag, scene->star_flux);
  }
}

/* The PSF of one band in pixels: its mixture with variances in pixels², plus the pixel's own
 * 1/12 pixel² (a box's second moment). */
static void
band_psf (const AclipSimulator *simulator, const Scene *scene, int band, AclipMog *psf)
{
  double fwhm = scene->seeing[band] / ACLIP_LEGACY_PIXSCALE;
  *psf = simulator->psf[scene->psf];
  for (int k = 0; k < psf->n; k++)
    psf->variance[k] = psf->variance[k] * fwhm * fwhm + 1.0 / 12.0;
}

/* Noise-equivalent area of a PSF, pixels²: 1/∫p². */
static double
noise_equivalent_area (const AclipMog *psf)
{
  double sum = 0.0;
  for (int j = 0; j < psf->n; j++)
    for (int k = 0; k < psf->n; k++)
      sum += psf->amplitude[j] * psf->amplitude[k] /
             (2 * G_PI * (psf->variance[j] + psf->variance[k]));
  return 1.0 / sum;
}

/* Sky noise per pixel (nanomaggies) that gives the band's 5σ point-source depth with its PSF:
 * σ_flux = σ_pixel·√NEA for PSF photometry. */
static double
band_sky_sigma (const AclipSimulator *simulator, const Scene *scene, int band)
{
  AclipMog psf;
  band_psf (simulator, scene, band, &psf);
  double flux_5sigma = pow (10.0, (22.5 - scene->psf_depth[band]) / 2.5);
  return flux_5sigma / (5.0 * sqrt (noise_equivalent_area (&psf)));
}

static void
fill_truth (const AclipSimulator *simulator, const Scene *scene, gint64 galaxy_index,
            AclipSimTruth *truth)
{
  const GalaxyDraw *galaxy = &scene->galaxy;
  const Morphology *morphology = &simulator->morphologies[galaxy->morphology];
  int n_t = simulator->templates->n_templates;
  memset (truth, 0, sizeof *truth);
  truth->index = galaxy_index;
  truth->ra = scene->ra;
  truth->dec = scene->dec;
  truth->z = galaxy->z;
  truth->logmstar = galaxy->logmstar;
  truth->log_sfr = galaxy->log_sfr;
  truth->log_ssfr = galaxy->log_ssfr;
  truth->type = galaxy->type;
  truth->n_templates = n_t;
  double r_maggies = 0.0, halpha = 0.0, halpha_continuum = 0.0, oii = 0.0, oii_continuum = 0.0;
  for (int t = 0; t < n_t; t++) {
    double c = galaxy->coefficients[t];
    truth->coefficients[t] = c;
    r_maggies += c * simulator->template_r_maggies[t];
    halpha += c * simulator->template_halpha[t];
    halpha_continuum += c * simulator->template_halpha_continuum[t];
    oii += c * simulator->template_oii[t];
    oii_continuum += c * simulator->template_oii_continuum[t];
  }
  truth->absmag_r = -2.5 * log10 (r_maggies);
  truth->ew_halpha = halpha / halpha_continuum;
  truth->ew_oii = oii / oii_continuum;
  truth->ebv = galaxy->ebv;
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    truth->flux[b] = galaxy->flux[b];
    truth->seeing[b] = scene->seeing[b];
    truth->psf_depth[b] = scene->psf_depth[b];
    truth->sky_sigma[b] = band_sky_sigma (simulator, scene, b);
  }
  truth->r_eff = galaxy->r_eff;
  truth->r_eff_kpc = galaxy->r_eff_kpc;
  truth->sersic_n = morphology->sersic_n;
  truth->axis_ratio = morphology->axis_ratio;
  truth->position_angle = galaxy->position_angle * 180 / G_PI;
  truth->bulge_fraction = morphology->bulge_fraction;
  truth->psf_beta = psf_betas[scene->psf];
  truth->has_neighbour = scene->has_neighbour;
  truth->has_star = scene->has_star;
  truth->fiber_fraction = NAN;
  truth->snr_spectrum = NAN;
  truth->sdss_row = simulator->prior[galaxy->prior_row].file_row;
  truth->cosmos_row = morphology->file_row;
}

void
aclip_simulator_draw (const AclipSimulator *simulator, const AclipSimulateParams *params,
                      gint64 index, AclipSimTruth *truth)
{
  g_return_if_fail (simulator != NULL && params != NULL && truth != NULL);
  Scene scene;
  draw_scene (simulator, params, index, &scene);
  fill_truth (simulator, &scene, index, truth);
}

void
aclip_simulator_observed_sed (const AclipSimulator *simulator, const AclipSimTruth *truth, gsize n,
                              const double *wavelength, double *flux)
{
  g_return_if_fail (simulator != NULL && truth != NULL);
  GalaxyDraw galaxy = { 0 };
  galaxy.z = truth->z;
  galaxy.ebv = truth->ebv;
  memcpy (galaxy.coefficients, truth->coefficients, sizeof galaxy.coefficients);
  observed_sed (simulator, &galaxy, n, wavelength, NULL, flux);
  for (gsize k = 0; k < n; k++)
    flux[k] /= SPECTRUM_UNIT;
}

/* Rendering: images ---------------------------------------------------------------------- */

/* Appends the Gaussians of a galaxy convolved with the PSF. Components of each profile whose
 * widths differ by less than 20% of the PSF's narrowest variance are merged first (keeping
 * their flux and second moment), which changes the image by far less than the noise and
 * saves most of the work for small galaxies. Returns the number appended. */
static int
galaxy_gaussians (const AclipSimulator *simulator, const GalaxyDraw *galaxy, double flux, double x,
                  double y, const AclipMog *psf, AclipGaussian2d *out)
{
  const Morphology *morphology = &simulator->morphologies[galaxy->morphology];
  double psf_min_variance = psf->variance[0];
  for (int k = 1; k < psf->n; k++)
    psf_min_variance = MIN (psf_min_variance, psf->variance[k]);
  double r_eff_pixels = galaxy->r_eff / ACLIP_LEGACY_PIXSCALE;
  int n_out = 0;
  for (int c = 0; c < morphology->n_components; c++) {
    const MorphologyComponent *component = &morphology->components[c];
    const AclipMog *profile = &simulator->profiles[component->profile];
    double size = r_eff_pixels * component->size_fraction;
    double unit_xx, unit_xy, unit_yy; /* shape of unit circularised variance */
    aclip_gaussian_covariance (1.0, component->axis_ratio,
                               galaxy->position_angle + component->position_angle, &unit_xx,
                               &unit_xy, &unit_yy);
    /* Merge runs of components (the fit's variances increase). */
    double merged_amplitude[ACLIP_MOG_MAX], merged_variance[ACLIP_MOG_MAX];
    int n_merged = 0;
    for (int j = 0; j < profile->n;) {
      double first = profile->variance[j] * size * size;
      double amplitude = 0.0, moment = 0.0;
      int l = j;
      while (l < profile->n &&
             profile->variance[l] * size * size - first <= 0.2 * (first + psf_min_variance)) {
        amplitude += profile->amplitude[l];
        moment += profile->amplitude[l] * profile->variance[l] * size * size;
        l++;
      }
      merged_amplitude[n_merged] = amplitude;
      merged_variance[n_merged++] = moment / amplitude;
      j = l;
    }
    for (int j = 0; j < n_merged; j++) {
      for (int k = 0; k < psf->n; k++) {
        AclipGaussian2d *gaussian = &out[n_out++];
        gaussian->flux = flux * component->flux_fraction * merged_amplitude[j] * psf->amplitude[k];
        gaussian->x = x;
        gaussian->y = y;
        gaussian->cxx = merged_variance[j] * unit_xx + psf->variance[k];
        gaussian->cxy = merged_variance[j] * unit_xy;
        gaussian->cyy = merged_variance[j] * unit_yy + psf->variance[k];
      }
    }
  }
  return n_out;
}

#define MAX_GAUSSIANS (2 * ACLIP_MOG_MAX * ACLIP_MOG_MAX)

/* Renders the g, r, z cutout: the galaxy alone into `model` [3][S][S], and, when `observed`
 * is set, model + neighbour + star + noise into it (sky_sigma: per band, nanomaggies). */
static void
render_images (const AclipSimulator *simulator, const AclipSimulateParams *params,
               gint64 galaxy_index, const Scene *scene, float *model, float *observed,
               const double sky_sigma[ACLIP_N_BANDS])
{
  int size = params->image_size;
  gsize plane = (gsize) size * size;
  g_autofree AclipGaussian2d *gaussians = g_new (AclipGaussian2d, MAX_GAUSSIANS);
  AclipRng rng;
  aclip_rng_init (&rng, params->seed, (guint64) galaxy_index, STREAM_IMAGE_NOISE);
  for (int b = 0; b < ACLIP_N_BANDS; b++) {
    AclipMog psf;
    band_psf (simulator, scene, b, &psf);
    float *model_plane = model + b * plane;
    memset (model_plane, 0, plane * sizeof (float));
    int n = galaxy_gaussians (simulator, &scene->galaxy, scene->galaxy.flux[b], scene->centre_x,
                              scene->centre_y, &psf, gaussians);
    aclip_gaussians_render (gaussians, n, size, size, model_plane);

    if (observed == NULL)
      continue;

    float *observed_plane = observed + b * plane;
    memcpy (observed_plane, model_plane, plane * sizeof (float));
    n = 0;
    if (scene->has_neighbour)
      n = galaxy_gaussians (simulator, &scene->neighbour, scene->neighbour.flux[b],
                            scene->neighbour_x, scene->neighbour_y, &psf, gaussians);
    if (scene->has_star) {
      for (int k = 0; k < psf.n; k++)
        gaussians[n++] = (AclipGaussian2d){ scene->star_flux[b] * psf.amplitude[k],
                                            scene->star_x,
                                            scene->star_y,
                                            psf.variance[k],
                                            0.0,
                                            psf.variance[k] };
    }
    aclip_gaussians_render (gaussians, n, size, size, observed_plane);
    /* Sky noise and the sources' own photon noise. */
    double sky_variance = sky_sigma[b] * sky_sigma[b];
    double inverse_gain = 1.0 / electrons_per_nanomaggy[b];
    for (gsize p = 0; p < plane; p++) {
      double signal = observed_plane[p];
      double variance = sky_variance + MAX (signal, 0.0) * inverse_gain;
      observed_plane[p] = (float) (signal + sqrt (variance) * aclip_rng_normal (&rng));
    }
  }
}

/* Rendering: spectra --------------------------------------------------------------------- */

/* Fraction of the galaxy's light in the fibre, through the spectrograph's seeing: each
 * (profile Gaussian × Moffat Gaussian) pair is circularised. */
static double
fibre_fraction (const AclipSimulator *simulator, const Scene *scene)
{
  const GalaxyDraw *galaxy = &scene->galaxy;
  const Morphology *morphology = &simulator->morphologies[galaxy->morphology];
  const AclipMog *psf = &simulator->psf[scene->psf];
  double fwhm = scene->spectro_seeing;
  double inside = 0.0;
  for (int c = 0; c < morphology->n_components; c++) {
    const MorphologyComponent *component = &morphology->components[c];
    const AclipMog *profile = &simulator->profiles[component->profile];
    double size = galaxy->r_eff * component->size_fraction;
    for (int j = 0; j < profile->n; j++)
      for (int k = 0; k < psf->n; k++) {
        double variance = profile->variance[j] * size * size + psf->variance[k] * fwhm * fwhm;
        inside += component->flux_fraction * profile->amplitude[j] * psf->amplitude[k] *
                  (1.0 - exp (-0.5 * FIBRE_RADIUS * FIBRE_RADIUS / variance));
      }
  }
  return CLAMP (inside, 1e-3, 1.0);
}

/* The noiseless spectrum on the DESI grid at DESI resolution, 1e-17 erg/s/cm²/Å. */
static void
noiseless_desi_spectrum (const AclipSimulator *simulator, const GalaxyDraw *galaxy, double *scratch,
                         double *spectrum)
{
  const int n = ACLIP_DESI_N_WAVE;
  observed_sed (simulator, galaxy, n, simulator->wavelength, simulator->desi_extinction, scratch);
  for (int k = 0; k < n; k++) {
    const double *taps = simulator->lsf + (gsize) k * LSF_TAPS;
    double sum = 0.0;
    for (int m = -LSF_HALF_WIDTH; m <= LSF_HALF_WIDTH; m++)
      if (k + m >= 0 && k + m < n)
        sum += taps[m + LSF_HALF_WIDTH] * scratch[k + m];
    spectrum[k] = sum / SPECTRUM_UNIT;
  }
}

/* Observes the spectrum through the fibre: per arm, photo-electrons from the galaxy's fibre
 * light and the sky, and read noise; arms overlap by inverse-variance weighting. The stored
 * spectrum is scaled back to total flux (S/N unchanged). Returns the median S/N per pixel. */
static double
observe_spectrum (const AclipSimulator *simulator, const AclipSimulateParams *params,
                  gint64 galaxy_index, const Scene *scene, double fibre, const double *model,
                  float *spectrum, float *ivar, double *snr_scratch)
{
  const int n = ACLIP_DESI_N_WAVE;
  AclipRng rng;
  aclip_rng_init (&rng, params->seed, (guint64) galaxy_index, STREAM_SPECTRUM_NOISE);
  double exposure = params->exposure_time;
  for (int k = 0; k < n; k++) {
    double inverse_variance = 0.0;
    for (int a = 0; a < N_ARMS; a++) {
      double rate = simulator->electrons_per_flux[(gsize) a * n + k] * exposure;
      if (rate <= 0)
        continue;
      double gain = rate * fibre; /* e⁻ per unit of total flux */
      double signal = MAX (model[k], 0.0) * gain;
      double sky = simulator->sky_electrons[(gsize) a * n + k] * exposure * scene->sky_scale;
      double variance = signal + sky + READ_NOISE * READ_NOISE;
      inverse_variance += gain * gain / variance;
    }
    double value = model[k] + aclip_rng_normal (&rng) / sqrt (inverse_variance);
    if (spectrum)
      spectrum[k] = (float) value;
    if (ivar)
      ivar[k] = (float) inverse_variance;
    snr_scratch[k] = fabs (model[k]) * sqrt (inverse_variance);
  }
  return select_kth (snr_scratch, n, n / 2);
}

gboolean
aclip_simulator_render (const AclipSimulator *simulator, const AclipSimulateParams *params,
                        gint64 index, AclipGalaxy *galaxy, AclipSimTruth *truth,
                        float *noiseless_spectrum, float *noiseless_image, GError **error)
{
  g_return_val_if_fail (simulator != NULL && params != NULL, FALSE);
  if (params->image_size < 0 || params->image_size > 4096 || !(params->exposure_time > 0)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("invalid simulation parameters (image size %d, exposure %g s)"),
                 params->image_size, params->exposure_time);
    return FALSE;
  }
  Scene scene;
  draw_scene (simulator, params, index, &scene);
  AclipSimTruth local_truth;
  AclipSimTruth *out_truth = truth ? truth : &local_truth;
  fill_truth (simulator, &scene, index, out_truth);

  const int n = ACLIP_DESI_N_WAVE;
  gboolean want_spectrum = params->spectra;
  if (want_spectrum) {
    g_autofree double *buffers = g_new (double, 3 * (gsize) n); /* scratch, model, S/N */
    double *model = buffers + n;
    noiseless_desi_spectrum (simulator, &scene.galaxy, buffers, model);
    if (noiseless_spectrum)
      for (int k = 0; k < n; k++)
        noiseless_spectrum[k] = (float) model[k];
    double fibre = fibre_fraction (simulator, &scene);
    out_truth->fiber_fraction = fibre;
    out_truth->snr_spectrum = observe_spectrum (
        simulator, params, index, &scene, fibre, model, galaxy ? galaxy->spectrum : NULL,
        galaxy ? galaxy->spectrum_ivar : NULL, buffers + 2 * (gsize) n);
  }

  int size = params->image_size;
  float *observed = galaxy && size > 0 ? galaxy->image : NULL;
  if (size > 0 && (observed || noiseless_image)) {
    g_autofree float *own_model = NULL;
    float *model = noiseless_image;
    if (model == NULL)
      model = own_model = g_new (float, (gsize) size * size * ACLIP_N_BANDS);
    render_images (simulator, params, index, &scene, model, observed, out_truth->sky_sigma);
  }

  if (galaxy) {
    galaxy->id = index + 1;
    galaxy->ra = scene.ra;
    galaxy->dec = scene.dec;
    galaxy->z = (float) scene.galaxy.z;
    galaxy->logmstar = (float) scene.galaxy.logmstar;
    for (int b = 0; b < ACLIP_N_BANDS; b++)
      galaxy->flux[b] = (float) scene.galaxy.flux[b];
  }
  return TRUE;
}

/* Whole catalogues ----------------------------------------------------------------------- */

typedef enum
{
  SLOT_FREE,
  SLOT_READY,
} SlotState;

/* A rendered row waiting to be written. */
typedef struct
{
  gint64 galaxy_index; /* the row this slot holds or will hold next */
  SlotState state;
  AclipGalaxy galaxy;
  double *values; /* [n_columns] */
  float *pixels;  /* image, spectrum and ivar buffers in one block */
} Slot;

typedef struct
{
  const AclipSimulator *simulator;
  const AclipSimulateParams *params;
  gint64 n_galaxies;
  int n_slots;
  Slot *slots;
  GMutex mutex;
  GCond changed;
  gint64 next_index; /* next row to claim */
  gboolean stop;     /* an error or a cancellation */
  GError *error;     /* the first worker error */
} Pipeline;

static gpointer
pipeline_worker (gpointer data)
{
  Pipeline *pipeline = data;
  for (;;) {
    g_mutex_lock (&pipeline->mutex);
    gint64 row = pipeline->next_index;
    if (pipeline->stop || row >= pipeline->n_galaxies) {
      g_mutex_unlock (&pipeline->mutex);
      return NULL;
    }
    pipeline->next_index++;
    Slot *slot = &pipeline->slots[row % pipeline->n_slots];
    /* Wait until the writer has emptied this slot for our row. */
    while (!pipeline->stop && (slot->state != SLOT_FREE || slot->galaxy_index != row))
      g_cond_wait (&pipeline->changed, &pipeline->mutex);
    if (pipeline->stop) {
      g_mutex_unlock (&pipeline->mutex);
      return NULL;
    }
    g_mutex_unlock (&pipeline->mutex);

    AclipSimTruth truth;
    GError *error = NULL;
    gboolean ok = aclip_simulator_render (pipeline->simulator, pipeline->params, row, &slot->galaxy,
                                          &truth, NULL, NULL, &error);
    if (ok)
      aclip_simulator_truth_values (pipeline->simulator, &truth, slot->values);

    g_mutex_lock (&pipeline->mutex);
    if (ok) {
      slot->state = SLOT_READY;
    } else {
      if (pipeline->error == NULL)
        pipeline->error = error;
      else
        g_error_free (error);
      pipeline->stop = TRUE;
    }
    g_cond_broadcast (&pipeline->changed);
    g_mutex_unlock (&pipeline->mutex);
  }
}

static char *
describe_provenance (const AclipSimulateParams *params, gint64 n_galaxies, const char *history)
{
  GString *text = g_string_new (NULL);
  if (history)
    g_string_append_printf (text, "%s\n", history);
  g_string_append_printf (
      text,
      "Simulated by libaclip: %" PRId64 " galaxies, seed %" G_GUINT64_FORMAT
      ", images %d px, spectra %s, exposure %g s, neighbours %g, stars %g.\n"
      "SEDs: kcorrect v4 NMF templates with coefficients from NNLS fits to 10k SDSS galaxies; "
      "flat LCDM H0=70 Om=0.3; shapes from GalSim COSMOS fits; DECam DR1 g,r,z filters.",
      n_galaxies, params->seed, params->image_size, params->spectra ? "yes" : "no",
      params->exposure_time, params->neighbour_fraction, params->star_fraction);
  return g_string_free (text, FALSE);
}

gboolean
aclip_simulator_write_catalogue (const AclipSimulator *simulator, const AclipSimulateParams *params,
                                 const char *path, gint64 n_galaxies, const char *history,
                                 AclipSimulateProgress progress, gpointer user_data,
                                 AclipSimulateSummary *summary, GError **error)
{
  g_return_val_if_fail (simulator != NULL && params != NULL && path != NULL, FALSE);
  if (n_galaxies < 1 || params->image_size < 0 || params->image_size > 4096 ||
      (params->image_size == 0 && !params->spectra) || params->image_quantum < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("cannot simulate %" PRId64 " galaxies with image size %d, "
                    "image step %g and spectra %s"),
                 n_galaxies, params->image_size, params->image_quantum,
                 params->spectra ? _("on") : _("off"));
    return FALSE;
  }
  gint64 start = g_get_monotonic_time ();
  int size = params->image_size;
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, size, size);
  if (!params->spectra) {
    layout.n_wave = 0;
    layout.wavelength = NULL;
  }
  layout.image_quantum = params->image_quantum;
  layout.n_extra = simulator->n_columns;
  layout.extra = simulator->columns;
  g_autofree char *provenance = describe_provenance (params, n_galaxies, history);
  layout.history = provenance;
  g_autoptr (AclipCatalogueWriter) writer = aclip_catalogue_writer_new (path, &layout, error);
  if (writer == NULL)
    return FALSE;

  int n_threads = params->n_threads > 0 ? params->n_threads : (int) g_get_num_processors ();
  n_threads = CLAMP (n_threads, 1, 256);
  Pipeline pipeline = { 0 };
  pipeline.simulator = simulator;
  pipeline.params = params;
  pipeline.n_galaxies = n_galaxies;
  pipeline.n_slots = (int) MIN ((gint64) 4 * n_threads, n_galaxies);
  pipeline.slots = g_new0 (Slot, pipeline.n_slots);
  g_mutex_init (&pipeline.mutex);
  g_cond_init (&pipeline.changed);
  gsize image_floats = (gsize) ACLIP_N_BANDS * size * size;
  gsize spectrum_floats = params->spectra ? ACLIP_DESI_N_WAVE : 0;
  for (int s = 0; s < pipeline.n_slots; s++) {
    Slot *slot = &pipeline.slots[s];
    slot->galaxy_index = s;
    slot->state = SLOT_FREE;
    slot->values = g_new (double, simulator->n_columns);
    slot->pixels = g_new (float, image_floats + 2 * spectrum_floats);
    slot->galaxy.image = size > 0 ? slot->pixels : NULL;
    slot->galaxy.spectrum = params->spectra ? slot->pixels + image_floats : NULL;
    slot->galaxy.spectrum_ivar =
        params->spectra ? slot->pixels + image_floats + spectrum_floats : NULL;
  }
  GThread **threads = g_new0 (GThread *, n_threads);
  for (int i = 0; i < n_threads; i++)
    threads[i] = g_thread_new ("aclip-simulate", pipeline_worker, &pipeline);

  GError *local_error = NULL;
  gint64 written = 0;
  for (; written < n_galaxies; written++) {
    Slot *slot = &pipeline.slots[written % pipeline.n_slots];
    g_mutex_lock (&pipeline.mutex);
    while (!pipeline.stop && slot->state != SLOT_READY)
      g_cond_wait (&pipeline.changed, &pipeline.mutex);
    gboolean stopped = pipeline.stop;
    g_mutex_unlock (&pipeline.mutex);
    if (stopped)
      break;

    if (!aclip_catalogue_writer_append (writer, &slot->galaxy, slot->values, &local_error))
      break;

    g_mutex_lock (&pipeline.mutex);
    slot->state = SLOT_FREE;
    slot->galaxy_index = written + pipeline.n_slots;
    g_cond_broadcast (&pipeline.changed);
    g_mutex_unlock (&pipeline.mutex);

    if (progress && !progress (written + 1, n_galaxies, user_data)) {
      g_set_error (&local_error, ACLIP_ERROR, ACLIP_ERROR_CANCELLED,
                   _("simulation of %s cancelled after %" PRId64 " of %" PRId64
                      " galaxies"),
                   path, written + 1, n_galaxies);
      break;
    }
  }

  g_mutex_lock (&pipeline.mutex);
  pipeline.stop = TRUE;
  g_cond_broadcast (&pipeline.changed);
  g_mutex_unlock (&pipeline.mutex);
  for (int i = 0; i < n_threads; i++)
    g_thread_join (threads[i]);
  g_free (threads);

  if (local_error == NULL && pipeline.error != NULL)
    local_error = g_steal_pointer (&pipeline.error);
  g_clear_error (&pipeline.error);
  for (int s = 0; s < pipeline.n_slots; s++) {
    g_free (pipeline.slots[s].values);
    g_free (pipeline.slots[s].pixels);
  }
  g_free (pipeline.slots);
  g_mutex_clear (&pipeline.mutex);
  g_cond_clear (&pipeline.changed);

  if (local_error == NULL) {
    if (summary) {
      summary->n_rows = aclip_catalogue_writer_n_rows (writer);
      summary->n_clipped = aclip_catalogue_writer_n_clipped (writer);
    }
    aclip_catalogue_writer_finish (writer, &local_error);
  }
  if (local_error != NULL) {
    g_propagate_error (error, local_error);
    return FALSE; /* the writer's cleanup deletes its temporary file */
  }
  if (summary)
    summary->seconds = (g_get_monotonic_time () - start) / 1e6;
  return TRUE;
}

/* aclip-spectra.h — readers for survey spectra, delivering them on the DESI brz grid.
 *
 * DESI: a `coadd-*.fits` file (arms B, R, Z — or a camera-combined BRZ — each with
 * <ARM>_WAVELENGTH, <ARM>_FLUX, <ARM>_IVAR and optionally <ARM>_MASK, plus FIBERMAP) and the
 * matching redrock file (`redrock-*.fits`, REDSHIFTS HDU; older `zbest-*.fits`, ZBEST HDU),
 * joined by TARGETID. The arms lie exactly on the 0.8 Å DESI grid; they are joined by
 * inverse-variance weighting where they overlap, and a pixel with MASK ≠ 0, ivar ≤ 0 or a
 * non-finite flux or ivar takes no part (ivar 0 where no arm has a good pixel).
 *
 * SDSS / BOSS / eBOSS: a `spec-PLATE-MJD-FIBER.fits` file (COADD HDU with loglam, flux, ivar,
 * and_mask; redshift and class from SPECOBJ, or SPALL in BOSS files), resampled onto the DESI
 * grid by aclip_resample_spectrum (linear interpolation of flux density, inverse variance
 * propagated conservatively); pixels with and_mask ≠ 0 are bad, and pixels outside the SDSS
 * coverage get ivar 0. SDSS wavelengths are vacuum like DESI's; a file whose primary header
 * says VACUUM = F is converted from air to vacuum.
 *
 * All spectra are in 1e-17 erg/s/cm²/Å. Errors name the file and the problem.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Spectral classes, stored as integer codes in catalogues (SPECTYPE column). */
typedef enum
{
  ACLIP_SPECTYPE_UNKNOWN = 0,
  ACLIP_SPECTYPE_GALAXY = 1,
  ACLIP_SPECTYPE_QSO = 2,
  ACLIP_SPECTYPE_STAR = 3,
} AclipSpectype;

/* "GALAXY", "QSO", "STAR" (any case, trailing blanks ignored); anything else is UNKNOWN. */
AclipSpectype aclip_spectype_from_string (const char *text);
/* "GALAXY", "QSO", "STAR" or "UNKNOWN". */
const char *aclip_spectype_to_string (AclipSpectype spectype);

typedef enum
{
  ACLIP_SPECTRUM_SOURCE_DESI = 1,
  ACLIP_SPECTRUM_SOURCE_SDSS = 2, /* SDSS, BOSS and eBOSS spec files */
} AclipSpectrumSource;

/* What a survey says about one spectrum (everything but the pixels). */
typedef struct
{
  AclipSpectrumSource source;
  /* DESI: TARGETID. SDSS: PLATE·10⁹ + MJD·10⁴ + FIBER (4055-55359-0006 → 4055553590006). */
  gint64 id;
  double ra, dec;        /* degrees (DESI TARGET_RA/DEC, SDSS PLUG_RA/DEC); NaN if unknown */
  double z, z_err;       /* NaN when unknown (no redshift row for a DESI target) */
  gint64 zwarn;          /* DESI ZWARN / SDSS ZWARNING; -1 when unknown */
  AclipSpectype spectype;
  int plate, mjd, fiber; /* SDSS; -1 for DESI */
  float ls_flux[3];      /* DESI FIBERMAP FLUX_G/R/Z, nanomaggies; NaN when absent or unmeasured */
} AclipSpectrumInfo;

/* DESI ------------------------------------------------------------------------------------- */

typedef struct _AclipDesiCoadd AclipDesiCoadd;

/* The redrock file beside a coadd: `coadd-X.fits` → `redrock-X.fits`, else `zbest-X.fits`.
 * NULL with an error naming the candidates when neither exists. */
char *aclip_desi_find_redrock (const char *coadd_path, GError **error);

/* Opens a coadd and its redrock file (redrock_path NULL: aclip_desi_find_redrock). Reads and
 * checks the FIBERMAP, the redshifts and every arm's shape and wavelength grid; the pixels are
 * read by the first aclip_desi_coadd_read. A target without a redshift row gets z NaN. */
AclipDesiCoadd *aclip_desi_coadd_open (const char *coadd_path, const char *redrock_path,
                                       GError **error);
void aclip_desi_coadd_free (AclipDesiCoadd *coadd);
const char *aclip_desi_coadd_path (AclipDesiCoadd *coadd);
const char *aclip_desi_coadd_redrock_path (AclipDesiCoadd *coadd);
int aclip_desi_coadd_n_targets (AclipDesiCoadd *coadd);
/* Targets in file order; the pointer is owned by the coadd. */
const AclipSpectrumInfo *aclip_desi_coadd_info (AclipDesiCoadd *coadd, int target);
/* Number of targets whose TARGETID is missing from the redrock file. */
int aclip_desi_coadd_n_without_redshift (AclipDesiCoadd *coadd);
/* flux, ivar: ACLIP_DESI_N_WAVE floats each, on the DESI grid. The first call reads all arms
 * of all targets (a coadd is read whole; ~62 kB per target). */
gboolean aclip_desi_coadd_read (AclipDesiCoadd *coadd, int target, float *flux, float *ivar,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipDesiCoadd, aclip_desi_coadd_free)

/* SDSS / BOSS ------------------------------------------------------------------------------ */

/* Reads what a spec file says about its spectrum, and checks the COADD table's layout, without
 * reading the pixels. */
gboolean aclip_sdss_read_info (const char *path, AclipSpectrumInfo *info, GError **error);
/* Reads the spectrum onto the DESI grid: flux, ivar are ACLIP_DESI_N_WAVE floats; info may be
 * NULL. n_good (may be NULL) receives the number of DESI-grid pixels with ivar > 0; a spectrum
 * with none is an error. */
gboolean aclip_sdss_read (const char *path, AclipSpectrumInfo *info, float *flux, float *ivar,
                          int *n_good, GError **error);

/* Vacuum wavelength (Å) of an air wavelength (Å), by the IAU standard refractive index of air
 * (Morton 2000, from Ciddor 1996), for wavelengths above 2000 Å. */
double aclip_air_to_vacuum (double air_wavelength);

G_END_DECLS

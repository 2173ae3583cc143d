/* test-readers.cc — survey readers (DESI coadd + redrock, SDSS/BOSS spec, Legacy Surveys FITS
 * and JPEG/PNG cutouts), the resampling they rely on, and `astroclip import`.
 *
 * Real files in tests/data: DESI coadd/redrock pairs (desi/), BOSS spec files with the
 * pipeline's class and redshift in boss/catalog.csv, one SDSS DR12 spec file (sdss/), and a
 * PNG cutout panel (desi/cutout_*.png). There are no real Legacy Surveys FITS cutouts: those
 * tests write cubes with known content through aclip-fits.h, and a PNG from known fluxes
 * through the forward RGB mapping. */
#include "test-support.h"

#include "aclip-catalogue.h"
#include "aclip-cutout.h"
#include "aclip-error.h"
#include "aclip-fits.h"
#include "aclip-render.h"
#include "aclip-resample.h"
#include "aclip-spectra.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <cstring>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

namespace {

const char *const kDesiCoadd1 = "desi/coadd-4-80613-thru20210324.fits";
const char *const kDesiRedrock1 = "desi/redrock-4-80613-thru20210324.fits";
const char *const kDesiCoadd2 = "desi/coadd-special-dark-27247.fits";
const char *const kDesiRedrock2 = "desi/redrock-special-dark-27247.fits";
const char *const kBossGalaxy = "boss/spec-4055-55359-0006.fits";
const char *const kSdssNgc4636 = "sdss/NGC4636_SDSS_DR12.fits";
const char *const kPngCutout = "desi/cutout_39633345008634465.png";

double
desi_wavelength (int index)
{
  return ACLIP_DESI_WAVE_MIN + ACLIP_DESI_WAVE_STEP * index;
}

struct Coverage
{
  int n_good = 0;
  int first = -1, last = -1;
};

Coverage
coverage_of (const std::vector<float> &ivar)
{
  Coverage coverage;
  for (int k = 0; k < (int) ivar.size (); k++) {
    if (ivar[k] > 0) {
      coverage.n_good++;
      if (coverage.first < 0)
        coverage.first = k;
      coverage.last = k;
    }
  }
  return coverage;
}

/* A small CSV reader for the catalog.csv files: header → column index, rows of strings. */
struct Csv
{
  std::map<std::string, int> column;
  std::vector<std::vector<std::string>> rows;
  const std::string &at (size_t row, const std::string &name) const
  {
    return rows.at (row).at (column.at (name));
  }
};

Csv
read_csv (const std::string &path)
{
  Csv csv;
  std::ifstream stream (path);
  std::string line;
  bool header = true;
  while (std::getline (stream, line)) {
    if (line.empty ())
      continue;
    std::vector<std::string> fields;
    std::stringstream split (line);
    std::string field;
    while (std::getline (split, field, ','))
      fields.push_back (field);
    if (header) {
      for (size_t i = 0; i < fields.size (); i++)
        csv.column[fields[i]] = (int) i;
      header = false;
    } else {
      csv.rows.push_back (fields);
    }
  }
  return csv;
}

/* Writing test files through aclip-fits.h ---------------------------------------------------- */

AclipFitsColumnSpec
column_spec (const char *name, const char *format)
{
  AclipFitsColumnSpec spec = {};
  spec.name = name;
  spec.format = format;
  spec.scale = 1.0;
  spec.zero = 0.0;
  return spec;
}

struct FakeDesi
{
  std::vector<gint64> targetids = { 1001, 1002 };
  /* flux of target t at DESI-grid pixel k in arm a: 1 + t + 0.001·k + a (so overlaps differ). */
  std::vector<std::pair<int, int>> nan_pixels; /* (target, index within arm B) */
  bool all_nan_target1 = false;
  bool short_b_flux = false; /* B_FLUX one pixel shorter than B_WAVELENGTH */
  bool off_grid = false;     /* B_WAVELENGTH shifted by 0.3 Å */
};

void
write_fake_desi (const std::string &path, const FakeDesi &fake)
{
  ErrorHolder error;
  AclipFits *fits = aclip_fits_create (path.c_str (), error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  ASSERT_TRUE (aclip_fits_write_empty_primary (fits, error.out ())) << error->message;

  int n_targets = (int) fake.targetids.size ();
  AclipFitsColumnSpec specs[] = { column_spec ("TARGETID", "1K"), column_spec ("TARGET_RA", "1D"),
                                  column_spec ("TARGET_DEC", "1D") };
  ASSERT_TRUE (aclip_fits_append_table (fits, "FIBERMAP", 3, specs, error.out ()))
      << error->message;
  for (int t = 0; t < n_targets; t++) {
    double ra = 10.0 + t, dec = -5.0 - t;
    ASSERT_TRUE (aclip_fits_write_column_int64 (fits, 1, t, 0, 1, &fake.targetids[t], nullptr));
    ASSERT_TRUE (aclip_fits_write_column_double (fits, 2, t, 0, 1, &ra, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_double (fits, 3, t, 0, 1, &dec, nullptr));
  }

  struct
  {
    const char *name;
    double first, last;
  } arms[] = { { "B", 3600.0, 5800.0 }, { "R", 5760.0, 7620.0 }, { "Z", 7520.0, 9824.0 } };
  for (int a = 0; a < 3; a++) {
    int first = (int) std::lround ((arms[a].first - 3600.0) / 0.8);
    int n_wave = (int) std::lround ((arms[a].last - arms[a].first) / 0.8) + 1;
    std::vector<double> wave (n_wave);
    for (int k = 0; k < n_wave; k++)
      wave[k] = desi_wavelength (first + k) + (fake.off_grid && a == 0 ? 0.3 : 0.0);
    std::vector<float> flux ((size_t) n_wave * n_targets), ivar (flux.size (), 1.0f),
        mask (flux.size (), 0.0f);
    for (int t = 0; t < n_targets; t++)
      for (int k = 0; k < n_wave; k++)
        flux[(size_t) t * n_wave + k] = (float) (1 + t + 0.001 * (first + k) + a);
    if (a == 0) {
      for (auto [t, k] : fake.nan_pixels)
        flux[(size_t) t * n_wave + k] = NAN;
    }
    if (fake.all_nan_target1 && n_targets > 1)
      for (int k = 0; k < n_wave; k++)
        flux[(size_t) n_wave + k] = NAN;

    std::string prefix = arms[a].name;
    gint64 wave_dims[1] = { n_wave };
    gint64 dims[2] = { n_wave - (fake.short_b_flux && a == 0 ? 1 : 0), n_targets };
    ASSERT_TRUE (aclip_fits_append_image_double (fits, (prefix + "_WAVELENGTH").c_str (), 1,
                                                 wave_dims, wave.data (), error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_fits_append_image_float (fits, (prefix + "_FLUX").c_str (), 2, dims,
                                                flux.data (), error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_fits_append_image_float (fits, (prefix + "_IVAR").c_str (), 2, dims,
                                                ivar.data (), error.out ()))
        << error->message;
    ASSERT_TRUE (aclip_fits_append_image_float (fits, (prefix + "_MASK").c_str (), 2, dims,
                                                mask.data (), error.out ()))
        << error->message;
  }
  aclip_fits_close (fits);
}

void
write_fake_redrock (const std::string &path, const std::vector<gint64> &targetids,
                    const std::vector<double> &redshifts)
{
  ErrorHolder error;
  AclipFits *fits = aclip_fits_create (path.c_str (), error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  ASSERT_TRUE (aclip_fits_write_empty_primary (fits, error.out ()));
  AclipFitsColumnSpec specs[] = { column_spec ("TARGETID", "1K"), column_spec ("Z", "1D"),
                                  column_spec ("ZWARN", "1K"), column_spec ("SPECTYPE", "6A") };
  ASSERT_TRUE (aclip_fits_append_table (fits, "REDSHIFTS", 4, specs, error.out ()))
      << error->message;
  for (size_t i = 0; i < targetids.size (); i++) {
    gint64 zwarn = 4;
    ASSERT_TRUE (aclip_fits_write_column_int64 (fits, 1, i, 0, 1, &targetids[i], nullptr));
    ASSERT_TRUE (aclip_fits_write_column_double (fits, 2, i, 0, 1, &redshifts[i], nullptr));
    ASSERT_TRUE (aclip_fits_write_column_int64 (fits, 3, i, 0, 1, &zwarn, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_string (fits, 4, i, "QSO", nullptr));
  }
  aclip_fits_close (fits);
}

struct FakeSdss
{
  double first_wave = 4000.3, last_wave = 9000.0; /* vacuum Å unless air */
  bool air = false;
  std::vector<int> nan_rows;
  std::vector<int> masked_rows;
  bool all_nan = false;
  bool flux_two_per_row = false;
  bool with_specobj = true;
};

/* flux density f(λ) = 2 + λ/1000 (linear, so interpolation is exact); ivar 4. */
void
write_fake_sdss (const std::string &path, const FakeSdss &fake)
{
  ErrorHolder error;
  AclipFits *fits = aclip_fits_create (path.c_str (), error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  ASSERT_TRUE (aclip_fits_write_empty_primary (fits, error.out ()));
  ASSERT_TRUE (aclip_fits_write_key_int64 (fits, "PLATEID", 1234, nullptr, nullptr));
  ASSERT_TRUE (aclip_fits_write_key_int64 (fits, "MJD", 56789, nullptr, nullptr));
  ASSERT_TRUE (aclip_fits_write_key_int64 (fits, "FIBERID", 42, nullptr, nullptr));
  ASSERT_TRUE (aclip_fits_write_key_double (fits, "PLUG_RA", 150.25, nullptr, nullptr));
  ASSERT_TRUE (aclip_fits_write_key_double (fits, "PLUG_DEC", 2.5, nullptr, nullptr));
  if (fake.air) {
    ASSERT_TRUE (aclip_fits_write_key_string (fits, "VACUUM", "F", nullptr, nullptr));
  }

  AclipFitsColumnSpec specs[] = { column_spec ("flux", fake.flux_two_per_row ? "2E" : "1E"),
                                  column_spec ("loglam", "1D"), column_spec ("ivar", "1E"),
                                  column_spec ("and_mask", "1J") };
  ASSERT_TRUE (aclip_fits_append_table (fits, "COADD", 4, specs, error.out ()))
      << error->message;
  double step = 1e-4;
  int n = (int) std::floor (std::log10 (fake.last_wave / fake.first_wave) / step) + 1;
  for (int i = 0; i < n; i++) {
    double loglam = std::log10 (fake.first_wave) + step * i;
    double lambda = std::pow (10.0, loglam);
    float flux[2] = { (float) (2 + lambda / 1000), 0 };
    float ivar = 4;
    gint32 mask = 0;
    for (int row : fake.nan_rows)
      if (row == i)
        flux[0] = NAN;
    for (int row : fake.masked_rows)
      if (row == i)
        mask = 1 << 23;
    if (fake.all_nan)
      flux[0] = NAN;
    ASSERT_TRUE (aclip_fits_write_column_float (fits, 1, i, 0, fake.flux_two_per_row ? 2 : 1,
                                                flux, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_double (fits, 2, i, 0, 1, &loglam, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_float (fits, 3, i, 0, 1, &ivar, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_int32 (fits, 4, i, 0, 1, &mask, nullptr));
  }
  if (fake.with_specobj) {
    AclipFitsColumnSpec object[] = { column_spec ("Z", "1E"), column_spec ("CLASS", "6A"),
                                      column_spec ("ZWARNING", "1J") };
    ASSERT_TRUE (aclip_fits_append_table (fits, "SPECOBJ", 3, object, error.out ()))
        << error->message;
    float z = 0.125f;
    gint32 zwarning = 0;
    ASSERT_TRUE (aclip_fits_write_column_float (fits, 1, 0, 0, 1, &z, nullptr));
    ASSERT_TRUE (aclip_fits_write_column_string (fits, 2, 0, "GALAXY", nullptr));
    ASSERT_TRUE (aclip_fits_write_column_int32 (fits, 3, 0, 0, 1, &zwarning, nullptr));
  }
  aclip_fits_close (fits);
}

struct FakeCube
{
  int width = 60, height = 60;
  double pixscale = 0.524; /* arcsec/pixel; 0: no WCS scale */
  std::string bands = "grz";
  bool band_keywords_numbered = false; /* BAND0, BAND1, … instead of BANDS */
  bool no_bands = false;
  double crval[2] = { 150.1, 2.2 };
  double crpix[2] = { 0, 0 }; /* 0: the centre */
  double cd12 = 0, cd21 = 0;
  int n_dims = 3;
};

/* planes: one W×H plane per letter of fake.bands, FITS order (row 0 = bottom). */
void
write_fake_cube (const std::string &path, const FakeCube &fake,
                 const std::vector<float> &planes)
{
  ErrorHolder error;
  AclipFits *fits = aclip_fits_create (path.c_str (), error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  gint64 dims[3] = { fake.width, fake.height, (gint64) fake.bands.size () };
  ASSERT_TRUE (aclip_fits_append_image_float (fits, nullptr, fake.n_dims, dims, planes.data (),
                                              error.out ()))
      << error->message;
  if (!fake.no_bands) {
    if (fake.band_keywords_numbered) {
      for (size_t p = 0; p < fake.bands.size (); p++) {
        std::string key = "BAND" + std::to_string (p);
        std::string value (1, fake.bands[p]);
        ASSERT_TRUE (aclip_fits_write_key_string (fits, key.c_str (), value.c_str (), nullptr,
                                                  nullptr));
      }
    } else {
      ASSERT_TRUE (aclip_fits_write_key_string (fits, "BANDS", fake.bands.c_str (), nullptr,
                                                nullptr));
    }
  }
  if (fake.pixscale > 0) {
    double crpix1 = fake.crpix[0] > 0 ? fake.crpix[0] : (fake.width + 1) / 2.0;
    double crpix2 = fake.crpix[1] > 0 ? fake.crpix[1] : (fake.height + 1) / 2.0;
    ASSERT_TRUE (aclip_fits_write_key_string (fits, "CTYPE1", "RA---TAN", nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_string (fits, "CTYPE2", "DEC--TAN", nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CRVAL1", fake.crval[0], nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CRVAL2", fake.crval[1], nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CRPIX1", crpix1, nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CRPIX2", crpix2, nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CD1_1", -fake.pixscale / 3600, nullptr,
                                              nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CD1_2", fake.cd12, nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CD2_1", fake.cd21, nullptr, nullptr));
    ASSERT_TRUE (aclip_fits_write_key_double (fits, "CD2_2", fake.pixscale / 3600, nullptr,
                                              nullptr));
  }
  aclip_fits_close (fits);
}

/* A PNG (8-bit RGB, no interlace) written with GIO's zlib: rgb is H×W×3, top row first. */
guint32
png_crc (const guint8 *data, size_t length, guint32 crc = 0xffffffffu)
{
  for (size_t i = 0; i < length; i++) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; bit++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return crc;
}

void
append_be32 (std::string &out, guint32 value)
{
  out.push_back ((char) (value >> 24));
  out.push_back ((char) (value >> 16));
  out.push_back ((char) (value >> 8));
  out.push_back ((char) value);
}

void
append_chunk (std::string &out, const char *type, const std::string &data)
{
  append_be32 (out, (guint32) data.size ());
  std::string typed = std::string (type, 4) + data;
  out += typed;
  append_be32 (out, png_crc ((const guint8 *) typed.data (), typed.size ()) ^ 0xffffffffu);
}

void
write_png (const std::string &path, const std::vector<guint8> &rgb, int width, int height)
{
  std::string raw;
  for (int y = 0; y < height; y++) {
    raw.push_back (0); /* filter: none */
    raw.append ((const char *) rgb.data () + (size_t) y * width * 3, (size_t) width * 3);
  }
  GOutputStream *memory = g_memory_output_stream_new_resizable ();
  GZlibCompressor *compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_ZLIB, 6);
  GOutputStream *deflate = g_converter_output_stream_new (memory, G_CONVERTER (compressor));
  ASSERT_TRUE (g_output_stream_write_all (deflate, raw.data (), raw.size (), nullptr, nullptr,
                                          nullptr));
  ASSERT_TRUE (g_output_stream_close (deflate, nullptr, nullptr));
  GBytes *compressed = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (memory));
  gsize compressed_size = 0;
  const char *compressed_data = (const char *) g_bytes_get_data (compressed, &compressed_size);

  std::string png ("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  append_be32 (header, (guint32) width);
  append_be32 (header, (guint32) height);
  /* 8 bits, RGB, deflate, no filter, no interlace */
  header += std::string ("\x08\x02\x00\x00\x00", 5);
  append_chunk (png, "IHDR", header);
  append_chunk (png, "IDAT", std::string (compressed_data, compressed_size));
  append_chunk (png, "IEND", "");
  ASSERT_TRUE (g_file_set_contents (path.c_str (), png.data (), (gssize) png.size (), nullptr));

  g_bytes_unref (compressed);
  g_object_unref (deflate);
  g_object_unref (compressor);
  g_object_unref (memory);
}

void
write_empty (const std::string &path)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), "", 0, nullptr));
}

std::vector<float>
read_desi (const std::string &coadd, const std::string &redrock, int target,
           std::vector<float> *ivar_out, GError **error)
{
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  AclipDesiCoadd *file = aclip_desi_coadd_open (coadd.c_str (),
                                                redrock.empty () ? nullptr : redrock.c_str (),
                                                error);
  if (file == nullptr)
    return {};
  bool ok = aclip_desi_coadd_read (file, target, flux.data (), ivar.data (), error);
  aclip_desi_coadd_free (file);
  if (!ok)
    return {};
  if (ivar_out)
    *ivar_out = ivar;
  return flux;
}

} // namespace

/* Resampling ----------------------------------------------------------------------------------- */

TEST (Resample, EqualScaleCropsAndPadsByWholePixels)
{
  const int n = 200;
  std::vector<float> in ((size_t) n * n);
  for (size_t i = 0; i < in.size (); i++)
    in[i] = (float) i;
  std::vector<float> out (152 * 152);
  aclip_resample_image (in.data (), n, n, 0.262, out.data (), 152, 152, 0.262);
  for (int y = 0; y < 152; y++)
    for (int x = 0; x < 152; x++)
      ASSERT_EQ (out[y * 152 + x], in[(y + 24) * n + x + 24]) << x << "," << y;

  /* 150 → 152: one zero column/row on each side. */
  std::vector<float> small (150 * 150, 1.0f), padded (152 * 152);
  aclip_resample_image (small.data (), 150, 150, 0.262, padded.data (), 152, 152, 0.262);
  EXPECT_EQ (padded[0], 0.0f);
  EXPECT_EQ (padded[151 * 152 + 151], 0.0f);
  EXPECT_EQ (padded[1 * 152 + 1], 1.0f);
  EXPECT_EQ (padded[150 * 152 + 150], 1.0f);
}

TEST (Resample, UpsamplingConservesFluxAndPlacesAPointSource)
{
  /* 60×60 at 0.524″ (31.4″) inside 152×152 at 0.262″ (39.8″): all the flux is kept. */
  const int n = 60;
  std::vector<float> in ((size_t) n * n);
  double total = 0;
  for (int i = 0; i < n * n; i++) {
    in[i] = (float) (0.5 + std::sin (i * 0.37) * 0.4);
    total += in[i];
  }
  std::vector<float> out (152 * 152);
  aclip_resample_image (in.data (), n, n, 0.524, out.data (), 152, 152, 0.262);
  double out_total = 0;
  for (float v : out)
    out_total += v;
  EXPECT_NEAR (out_total, total, 1e-6 * total);

  /* A point source in input pixel (x 30, y 40): centre 30.5, 40.5 from the corner, i.e.
   * 0.5, 10.5 input pixels from the centre = 1, 21 output pixels, so its flux lands in output
   * pixels x 76–77, y 96–97, a quarter in each. */
  std::vector<float> point ((size_t) n * n, 0.0f);
  point[40 * n + 30] = 100.0f;
  aclip_resample_image (point.data (), n, n, 0.524, out.data (), 152, 152, 0.262);
  for (int y = 96; y <= 97; y++)
    for (int x = 76; x <= 77; x++)
      EXPECT_NEAR (out[y * 152 + x], 25.0f, 1e-4) << x << "," << y;
  double sum = 0, sum_x = 0, sum_y = 0;
  for (int y = 0; y < 152; y++)
    for (int x = 0; x < 152; x++) {
      sum += out[y * 152 + x];
      sum_x += x * out[y * 152 + x];
      sum_y += y * out[y * 152 + x];
    }
  EXPECT_NEAR (sum, 100.0, 1e-4);
  EXPECT_NEAR (sum_x / sum, 76.5, 1e-6);
  EXPECT_NEAR (sum_y / sum, 96.5, 1e-6);
}

TEST (Resample, DownsamplingAveragesAndCrops)
{
  /* 400×400 at 0.1″ (40″) → 152×152 at 0.262″ (39.8″): a compact source near the centre keeps
   * its flux; a uniform image keeps its surface brightness (0.262²/0.1² per output pixel). */
  const int n = 400;
  std::vector<float> in ((size_t) n * n, 0.0f);
  for (int y = 195; y < 205; y++)
    for (int x = 190; x < 200; x++)
      in[y * n + x] = 1.0f;
  std::vector<float> out (152 * 152);
  aclip_resample_image (in.data (), n, n, 0.1, out.data (), 152, 152, 0.262);
  double total = 0;
  for (float v : out)
    total += v;
  EXPECT_NEAR (total, 100.0, 1e-4);

  std::vector<float> flat ((size_t) n * n, 1.0f);
  aclip_resample_image (flat.data (), n, n, 0.1, out.data (), 152, 152, 0.262);
  EXPECT_NEAR (out[76 * 152 + 76], 0.262 * 0.262 / 0.01, 1e-4);
  EXPECT_NEAR (out[0], 0.262 * 0.262 / 0.01, 1e-4);
}

TEST (Resample, SpectrumInterpolationAndIvarRule)
{
  /* Input pixels of 2 Å from 4000 Å: f = λ/100, ivar 1 except pixel 10 (bad). */
  const int n = 100;
  std::vector<double> wave (n);
  std::vector<float> flux (n), ivar (n, 1.0f);
  for (int i = 0; i < n; i++) {
    wave[i] = 4000.0 + 2.0 * i;
    flux[i] = (float) (wave[i] / 100);
  }
  ivar[10] = 0;
  std::vector<double> grid (ACLIP_DESI_N_WAVE);
  aclip_desi_wavelength_grid (grid.data ());
  std::vector<float> out_flux (ACLIP_DESI_N_WAVE), out_ivar (ACLIP_DESI_N_WAVE);
  int n_good = aclip_resample_spectrum (wave.data (), flux.data (), ivar.data (), n, grid.data (),
                                        0.8, ACLIP_DESI_N_WAVE, out_flux.data (),
                                        out_ivar.data ());
  /* Grid pixels 500 (4000.0 Å) … 747 (4197.6 Å) lie inside; those in (4018, 4022) touch the
   * bad pixel: 4018.4, 4019.2, 4020.0, 4020.8, 4021.6 → 5 pixels. */
  EXPECT_EQ (n_good, 248 - 5);
  EXPECT_EQ (out_ivar[499], 0.0f);
  EXPECT_EQ (out_ivar[748], 0.0f);
  EXPECT_GT (out_ivar[500], 0.0f);
  EXPECT_GT (out_ivar[747], 0.0f);
  for (int k : { 523, 524, 525, 526, 527 })
    EXPECT_EQ (out_ivar[k], 0.0f) << k;
  EXPECT_GT (out_ivar[522], 0.0f);
  EXPECT_GT (out_ivar[528], 0.0f);
  /* Linear flux is reproduced exactly; ivar = (0.8/2) / 1 (variance 1 at every t). */
  EXPECT_NEAR (out_flux[600], grid[600] / 100, 1e-4);
  EXPECT_NEAR (out_ivar[600], 0.4f, 1e-6);
}

TEST (Spectra, AirToVacuum)
{
  /* Hα: 6562.80 Å in air, 6564.61 Å in vacuum. */
  EXPECT_NEAR (aclip_air_to_vacuum (6562.80), 6564.61, 0.01);
  EXPECT_NEAR (aclip_air_to_vacuum (4000.0), 4001.13, 0.01);
}

/* DESI ----------------------------------------------------------------------------------------- */

TEST (Desi, RealCoaddsGiveRedshiftsTargetsAndFullCoverage)
{
  Csv catalog = read_csv (test_data_path ("desi/catalog.csv"));
  ASSERT_EQ (catalog.rows.size (), 2u);
  struct
  {
    const char *coadd, *redrock;
    gint64 targetid;
    double z;
  } cases[] = { { kDesiCoadd1, kDesiRedrock1, G_GINT64_CONSTANT (39633345008634465), 0.36874 },
                { kDesiCoadd2, kDesiRedrock2, G_GINT64_CONSTANT (39089837499744649), 0.00727 } };
  for (size_t c = 0; c < 2; c++) {
    ErrorHolder error;
    /* The redrock file is found beside the coadd. */
    AclipDesiCoadd *coadd = aclip_desi_coadd_open (test_data_path (cases[c].coadd).c_str (),
                                                   nullptr, error.out ());
    ASSERT_NE (coadd, nullptr) << error->message;
    EXPECT_NE (std::string (aclip_desi_coadd_redrock_path (coadd)).find (cases[c].redrock),
               std::string::npos);
    ASSERT_EQ (aclip_desi_coadd_n_targets (coadd), 1);
    EXPECT_EQ (aclip_desi_coadd_n_without_redshift (coadd), 0);
    const AclipSpectrumInfo *info = aclip_desi_coadd_info (coadd, 0);
    EXPECT_EQ (info->source, ACLIP_SPECTRUM_SOURCE_DESI);
    EXPECT_EQ (info->id, cases[c].targetid);
    EXPECT_NEAR (info->z, cases[c].z, 5e-6);
    EXPECT_NEAR (info->z, std::stod (catalog.at (c, "redrock_z")), 1e-9);
    EXPECT_EQ (info->zwarn, 0);
    EXPECT_EQ (info->spectype, ACLIP_SPECTYPE_GALAXY);
    EXPECT_NEAR (info->ra, std::stod (catalog.at (c, "ra")), 1e-9);
    EXPECT_NEAR (info->dec, std::stod (catalog.at (c, "dec")), 1e-9);
    EXPECT_EQ (info->plate, -1);

    std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
    ASSERT_TRUE (aclip_desi_coadd_read (coadd, 0, flux.data (), ivar.data (), error.out ()))
        << error->message;
    /* Every pixel of all three arms has ivar > 0 and MASK 0 in both files (checked with
     * astropy), so the whole grid is covered. */
    Coverage coverage = coverage_of (ivar);
    EXPECT_EQ (coverage.n_good, 7781);
    EXPECT_EQ (coverage.first, 0);
    EXPECT_EQ (coverage.last, 7780);
    aclip_desi_coadd_free (coadd);
  }

  /* Legacy Surveys photometry of the first target from its FIBERMAP; the second has none
   * (FLUX_IVAR 0 → NaN). */
  ErrorHolder error;
  AclipDesiCoadd *first = aclip_desi_coadd_open (test_data_path (kDesiCoadd1).c_str (),
                                                 test_data_path (kDesiRedrock1).c_str (),
                                                 error.out ());
  ASSERT_NE (first, nullptr) << error->message;
  EXPECT_NEAR (aclip_desi_coadd_info (first, 0)->ls_flux[0], 3.237032651901245, 1e-5);
  EXPECT_NEAR (aclip_desi_coadd_info (first, 0)->ls_flux[1], 5.947272777557373, 1e-5);
  EXPECT_NEAR (aclip_desi_coadd_info (first, 0)->ls_flux[2], 8.337608337402344, 1e-5);
  aclip_desi_coadd_free (first);
  AclipDesiCoadd *second = aclip_desi_coadd_open (test_data_path (kDesiCoadd2).c_str (), nullptr,
                                                  error.out ());
  ASSERT_NE (second, nullptr) << error->message;
  EXPECT_TRUE (std::isnan (aclip_desi_coadd_info (second, 0)->ls_flux[0]));
  aclip_desi_coadd_free (second);
}

TEST (Desi, ArmsAreJoinedByInverseVarianceInTheOverlap)
{
  /* Read the B and R arms directly and check one overlap pixel (5780 Å: B index 2725, R index
   * 25, grid index 2725) and one pixel of B alone (grid 100). */
  std::string path = test_data_path (kDesiCoadd1);
  ErrorHolder error;
  AclipFits *fits = aclip_fits_open (path.c_str (), FALSE, error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  auto read_arm = [&] (const char *name, int n) {
    std::vector<float> values (n);
    EXPECT_TRUE (aclip_fits_move_to_name (fits, name, nullptr, error.out ()));
    EXPECT_TRUE (aclip_fits_read_image_float (fits, n, values.data (), error.out ()));
    return values;
  };
  std::vector<float> b_flux = read_arm ("B_FLUX", 2751), b_ivar = read_arm ("B_IVAR", 2751);
  std::vector<float> r_flux = read_arm ("R_FLUX", 2326), r_ivar = read_arm ("R_IVAR", 2326);
  aclip_fits_close (fits);

  std::vector<float> ivar;
  std::vector<float> flux = read_desi (path, "", 0, &ivar, error.out ());
  ASSERT_FALSE (flux.empty ()) << error->message;
  int k = 2725;
  ASSERT_NEAR (desi_wavelength (k), 5780.0, 1e-9);
  double expected_ivar = (double) b_ivar[2725] + r_ivar[25];
  double expected_flux = ((double) b_ivar[2725] * b_flux[2725] + (double) r_ivar[25] * r_flux[25]) /
                         expected_ivar;
  EXPECT_NEAR (ivar[k], expected_ivar, 1e-5 * expected_ivar);
  EXPECT_NEAR (flux[k], expected_flux, 1e-4 * std::fabs (expected_flux) + 1e-6);
  EXPECT_FLOAT_EQ (ivar[100], b_ivar[100]);
  EXPECT_FLOAT_EQ (flux[100], b_flux[100]);
}

TEST (Desi, SyntheticCoaddWithNaNsAndMissingRedshift)
{
  TempDir dir;
  FakeDesi fake;
  fake.nan_pixels = { { 0, 10 }, { 0, 11 }, { 1, 2000 } };
  write_fake_desi (dir.path ("coadd-x.fits"), fake);
  write_fake_redrock (dir.path ("redrock-x.fits"), { 1002 }, { 1.5 });

  ErrorHolder error;
  AclipDesiCoadd *coadd = aclip_desi_coadd_open (dir.path ("coadd-x.fits").c_str (), nullptr,
                                                 error.out ());
  ASSERT_NE (coadd, nullptr) << error->message;
  ASSERT_EQ (aclip_desi_coadd_n_targets (coadd), 2);
  EXPECT_EQ (aclip_desi_coadd_n_without_redshift (coadd), 1);
  EXPECT_TRUE (std::isnan (aclip_desi_coadd_info (coadd, 0)->z));
  EXPECT_DOUBLE_EQ (aclip_desi_coadd_info (coadd, 1)->z, 1.5);
  EXPECT_EQ (aclip_desi_coadd_info (coadd, 1)->spectype, ACLIP_SPECTYPE_QSO);
  EXPECT_EQ (aclip_desi_coadd_info (coadd, 1)->zwarn, 4);
  EXPECT_DOUBLE_EQ (aclip_desi_coadd_info (coadd, 1)->ra, 11.0);

  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  ASSERT_TRUE (aclip_desi_coadd_read (coadd, 0, flux.data (), ivar.data (), error.out ()));
  /* Rule: NaN pixels get ivar 0 (and flux 0); the rest are untouched. */
  EXPECT_EQ (coverage_of (ivar).n_good, 7781 - 2);
  EXPECT_EQ (ivar[10], 0.0f);
  EXPECT_EQ (ivar[11], 0.0f);
  EXPECT_EQ (flux[10], 0.0f);
  EXPECT_FLOAT_EQ (flux[12], (float) (1 + 0.001 * 12));
  /* Overlap B (a=0) and R (a=1), ivar 1 each: the mean of the two, ivar 2. */
  int overlap = (int) std::lround ((5780.0 - 3600.0) / 0.8);
  EXPECT_FLOAT_EQ (ivar[overlap], 2.0f);
  EXPECT_NEAR (flux[overlap], 1 + 0.001 * overlap + 0.5, 1e-5);
  ASSERT_TRUE (aclip_desi_coadd_read (coadd, 1, flux.data (), ivar.data (), error.out ()));
  /* B index 2000 (5200 Å) lies outside the B/R overlap: one pixel lost. */
  EXPECT_EQ (coverage_of (ivar).n_good, 7781 - 1);
  aclip_desi_coadd_free (coadd);
}

TEST (DesiBadInput, TruncatedFile)
{
  /* Cut inside B_FLUX's data, inside B_RESOLUTION (R and Z lost) and inside Z_IVAR's data. */
  TempDir dir;
  for (gsize bytes : { 80000, 200000, 470000 }) {
    std::string path = dir.path ("coadd-cut-" + std::to_string (bytes) + ".fits");
    copy_truncated (test_data_path (kDesiCoadd1), path, bytes);
    ErrorHolder error;
    std::vector<float> flux = read_desi (path, test_data_path (kDesiRedrock1), 0, nullptr,
                                         error.out ());
    EXPECT_TRUE (flux.empty ()) << bytes;
    EXPECT_ERROR_MENTIONS (error, path.c_str ());
    std::cerr << "truncated coadd: " << error->message << "\n";
  }

  /* Truncated redrock file. */
  std::string redrock = dir.path ("redrock-cut.fits");
  copy_truncated (test_data_path (kDesiRedrock1), redrock, 4000);
  ErrorHolder error;
  std::vector<float> flux = read_desi (test_data_path (kDesiCoadd1), redrock, 0, nullptr,
                                       error.out ());
  EXPECT_TRUE (flux.empty ());
  EXPECT_ERROR_MENTIONS (error, redrock.c_str ());
  std::cerr << "truncated redrock: " << error->message << "\n";
}

TEST (DesiBadInput, WrongHdu)
{
  /* A redrock file given as the coadd, and a coadd given as the redrock file. */
  ErrorHolder error;
  std::string redrock = test_data_path (kDesiRedrock1);
  AclipDesiCoadd *coadd = aclip_desi_coadd_open (redrock.c_str (), redrock.c_str (),
                                                 error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, redrock.c_str (), "not a DESI coadd", "B_FLUX", "REDSHIFTS");
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT));

  std::string coadd_path = test_data_path (kDesiCoadd1);
  coadd = aclip_desi_coadd_open (coadd_path.c_str (), coadd_path.c_str (), error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, coadd_path.c_str (), "not a redrock file", "REDSHIFTS");
}

TEST (DesiBadInput, WrongShape)
{
  TempDir dir;
  FakeDesi fake;
  fake.short_b_flux = true;
  write_fake_desi (dir.path ("coadd-short.fits"), fake);
  write_fake_redrock (dir.path ("redrock-short.fits"), { 1001, 1002 }, { 0.1, 0.2 });
  ErrorHolder error;
  AclipDesiCoadd *coadd = aclip_desi_coadd_open (dir.path ("coadd-short.fits").c_str (), nullptr,
                                                 error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, "coadd-short.fits", "B_FLUX", "2 × 2750", "2751");

  FakeDesi off_grid;
  off_grid.off_grid = true;
  write_fake_desi (dir.path ("coadd-off.fits"), off_grid);
  coadd = aclip_desi_coadd_open (dir.path ("coadd-off.fits").c_str (),
                                 dir.path ("redrock-short.fits").c_str (), error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, "coadd-off.fits", "B_WAVELENGTH", "not on the DESI grid");
}

TEST (DesiBadInput, AllNaNTargetIsAClearError)
{
  TempDir dir;
  FakeDesi fake;
  fake.all_nan_target1 = true;
  write_fake_desi (dir.path ("coadd-nan.fits"), fake);
  write_fake_redrock (dir.path ("redrock-nan.fits"), { 1001, 1002 }, { 0.1, 0.2 });
  ErrorHolder error;
  std::vector<float> ivar;
  std::vector<float> flux = read_desi (dir.path ("coadd-nan.fits"), "", 1, &ivar, error.out ());
  EXPECT_TRUE (flux.empty ());
  EXPECT_ERROR_MENTIONS (error, "coadd-nan.fits", "1002", "no valid pixel");
  EXPECT_TRUE (g_error_matches (error.error, ACLIP_ERROR, ACLIP_ERROR_EMPTY));
  /* The other target of the same file is fine. */
  flux = read_desi (dir.path ("coadd-nan.fits"), "", 0, &ivar, error.out ());
  EXPECT_FALSE (flux.empty ());
}

TEST (DesiBadInput, EmptyFiles)
{
  TempDir dir;
  write_empty (dir.path ("coadd-empty.fits"));
  write_empty (dir.path ("redrock-empty.fits"));
  ErrorHolder error;
  AclipDesiCoadd *coadd = aclip_desi_coadd_open (dir.path ("coadd-empty.fits").c_str (), nullptr,
                                                 error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, "coadd-empty.fits", "empty");
  coadd = aclip_desi_coadd_open (test_data_path (kDesiCoadd1).c_str (),
                                 dir.path ("redrock-empty.fits").c_str (), error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, "redrock-empty.fits", "empty");
  /* No redrock file beside the coadd. */
  copy_truncated (test_data_path (kDesiCoadd1), dir.path ("coadd-alone.fits"),
                  642240);
  coadd = aclip_desi_coadd_open (dir.path ("coadd-alone.fits").c_str (), nullptr, error.out ());
  EXPECT_EQ (coadd, nullptr);
  EXPECT_ERROR_MENTIONS (error, "coadd-alone.fits", "redrock-alone.fits", "COADD:REDROCK");
}

/* SDSS / BOSS ---------------------------------------------------------------------------------- */

TEST (Sdss, BossFilesMatchTheirCatalogue)
{
  Csv catalog = read_csv (test_data_path ("boss/catalog.csv"));
  /* DESI-grid pixels with ivar > 0, as measured (cross-checked with an independent numpy
   * implementation of the same rule); BOSS covers 3572–10311 Å, so the whole DESI grid. */
  std::map<std::string, int> expected_good = { { "spec-10000-57346-0002.fits", 6953 },
                                               { "spec-4055-55359-0001.fits", 7171 },
                                               { "spec-4055-55359-0006.fits", 7358 },
                                               { "spec-4055-55359-0010.fits", 6791 },
                                               { "spec-4055-55359-0012.fits", 7198 } };
  int n_checked = 0;
  for (size_t row = 0; row < catalog.rows.size (); row++) {
    std::string name = catalog.at (row, "spectrum").substr (strlen ("spectra/"));
    if (expected_good.count (name) == 0)
      continue;
    n_checked++;
    std::string path = test_data_path ("boss/" + name);
    ErrorHolder error;
    AclipSpectrumInfo info;
    std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
    int n_good = -1;
    ASSERT_TRUE (aclip_sdss_read (path.c_str (), &info, flux.data (), ivar.data (), &n_good,
                                  error.out ()))
        << error->message;
    EXPECT_EQ (info.source, ACLIP_SPECTRUM_SOURCE_SDSS);
    EXPECT_STREQ (aclip_spectype_to_string (info.spectype),
                  catalog.at (row, "spec_class").c_str ())
        << name;
    EXPECT_NEAR (info.z, std::stod (catalog.at (row, "z")), 1e-7) << name;
    EXPECT_EQ (info.zwarn, std::stoll (catalog.at (row, "zwarning"))) << name;
    EXPECT_EQ (info.plate, std::stoi (catalog.at (row, "plate")));
    EXPECT_EQ (info.mjd, std::stoi (catalog.at (row, "mjd")));
    EXPECT_EQ (info.fiber, std::stoi (catalog.at (row, "fiberid")));
    EXPECT_EQ (info.id, info.plate * G_GINT64_CONSTANT (1000000000) + info.mjd * 10000LL +
                            info.fiber);
    EXPECT_NEAR (info.ra, std::stod (catalog.at (row, "ra")), 1e-6);
    EXPECT_NEAR (info.dec, std::stod (catalog.at (row, "dec")), 1e-6);
    Coverage coverage = coverage_of (ivar);
    EXPECT_EQ (coverage.n_good, expected_good[name]) << name;
    EXPECT_EQ (n_good, expected_good[name]) << name;
    EXPECT_EQ (coverage.first, 0) << name;
    EXPECT_EQ (coverage.last, 7780) << name;

    /* The info-only reader agrees. */
    AclipSpectrumInfo quick;
    ASSERT_TRUE (aclip_sdss_read_info (path.c_str (), &quick, error.out ()));
    EXPECT_EQ (quick.id, info.id);
    EXPECT_EQ (quick.spectype, info.spectype);
  }
  EXPECT_EQ (n_checked, 5);
}

TEST (Sdss, ResamplingMatchesTheRawTableAndStatedRule)
{
  /* Read loglam/flux/ivar of the BOSS galaxy directly and recompute grid pixel 5000 (7600 Å)
   * by the rule of aclip_resample_spectrum. */
  std::string path = test_data_path (kBossGalaxy);
  ErrorHolder error;
  AclipFits *fits = aclip_fits_open (path.c_str (), FALSE, error.out ());
  ASSERT_NE (fits, nullptr) << error->message;
  ASSERT_TRUE (aclip_fits_move_to_name (fits, "COADD", nullptr, error.out ()));
  gint64 n = 0;
  ASSERT_TRUE (aclip_fits_table_n_rows (fits, &n, error.out ()));
  AclipFitsColumn loglam_column, flux_column, ivar_column;
  ASSERT_TRUE (aclip_fits_column (fits, "loglam", &loglam_column, error.out ()));
  ASSERT_TRUE (aclip_fits_column (fits, "flux", &flux_column, error.out ()));
  ASSERT_TRUE (aclip_fits_column (fits, "ivar", &ivar_column, error.out ()));
  std::vector<double> loglam (n), raw_flux (n), raw_ivar (n);
  ASSERT_TRUE (aclip_fits_read_column_double (fits, loglam_column.number, 0, 0, n,
                                              loglam.data (), error.out ()));
  ASSERT_TRUE (aclip_fits_read_column_double (fits, flux_column.number, 0, 0, n,
                                              raw_flux.data (), error.out ()));
  ASSERT_TRUE (aclip_fits_read_column_double (fits, ivar_column.number, 0, 0, n,
                                              raw_ivar.data (), error.out ()));
  aclip_fits_close (fits);

  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  ASSERT_TRUE (aclip_sdss_read (path.c_str (), nullptr, flux.data (), ivar.data (), nullptr,
                                error.out ()));
  int k = 5000;
  double lambda = desi_wavelength (k);
  int i = 0;
  while (std::pow (10.0, loglam[i + 1]) <= lambda)
    i++;
  double w0 = std::pow (10.0, loglam[i]), w1 = std::pow (10.0, loglam[i + 1]);
  double t = (lambda - w0) / (w1 - w0);
  double expected_flux = (1 - t) * raw_flux[i] + t * raw_flux[i + 1];
  double expected_ivar = std::min (1.0, 0.8 / (w1 - w0)) /
                         ((1 - t) / raw_ivar[i] + t / raw_ivar[i + 1]);
  EXPECT_NEAR (flux[k], expected_flux, 1e-4 * std::fabs (expected_flux));
  EXPECT_NEAR (ivar[k], expected_ivar, 1e-4 * expected_ivar);
  /* Values measured with numpy from the same file: 19.9896 and 0.27821. */
  EXPECT_NEAR (flux[k], 19.98962, 1e-3);
  EXPECT_NEAR (ivar[k], 0.278210, 1e-5);
}

TEST (Sdss, Dr12SpectrumCoverageIsMarked)
{
  /* NGC 4636 (SDSS DR12, SPECOBJ HDU): 3809–9215 Å, so DESI-grid pixels below 262
   * (3809.6 Å) and above 7018 (9214.4 Å) are outside the SDSS coverage and have ivar 0. */
  std::string path = test_data_path (kSdssNgc4636);
  ErrorHolder error;
  AclipSpectrumInfo info;
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  ASSERT_TRUE (aclip_sdss_read (path.c_str (), &info, flux.data (), ivar.data (), nullptr,
                                error.out ()))
      << error->message;
  EXPECT_NEAR (info.z, 0.00302509, 1e-7);
  EXPECT_EQ (info.spectype, ACLIP_SPECTYPE_GALAXY);
  EXPECT_EQ (info.plate, 522);
  EXPECT_EQ (info.mjd, 52024);
  EXPECT_EQ (info.fiber, 396);
  EXPECT_EQ (info.id, G_GINT64_CONSTANT (522520240396));
  Coverage coverage = coverage_of (ivar);
  EXPECT_EQ (coverage.n_good, 6757);
  EXPECT_EQ (coverage.first, 262);
  EXPECT_EQ (coverage.last, 7018);
  for (int k = 0; k < 262; k++)
    ASSERT_EQ (ivar[k], 0.0f) << k;
  for (int k = 7019; k < ACLIP_DESI_N_WAVE; k++)
    ASSERT_EQ (ivar[k], 0.0f) << k;
}

TEST (Sdss, SyntheticSpectrumNaNsMasksAndAirWavelengths)
{
  TempDir dir;
  FakeSdss fake;
  fake.nan_rows = { 100 };
  fake.masked_rows = { 200 };
  write_fake_sdss (dir.path ("spec-1234-56789-0042.fits"), fake);
  ErrorHolder error;
  AclipSpectrumInfo info;
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  ASSERT_TRUE (aclip_sdss_read (dir.path ("spec-1234-56789-0042.fits").c_str (), &info,
                                flux.data (), ivar.data (), nullptr, error.out ()))
      << error->message;
  EXPECT_EQ (info.id, G_GINT64_CONSTANT (1234567890042));
  EXPECT_FLOAT_EQ (info.z, 0.125f);
  EXPECT_DOUBLE_EQ (info.ra, 150.25);
  /* Coverage 4000.3–~9000 Å: from grid pixel 501 (4000.8 Å). */
  Coverage coverage = coverage_of (ivar);
  EXPECT_EQ (coverage.first, 501);
  /* The NaN row and the masked row each remove the grid pixels between their neighbours. */
  auto pixels_touching = [&] (int row) {
    double low = std::pow (10.0, std::log10 (4000.3) + 1e-4 * (row - 1));
    double high = std::pow (10.0, std::log10 (4000.3) + 1e-4 * (row + 1));
    int count = 0;
    for (int k = 0; k < ACLIP_DESI_N_WAVE; k++)
      count += desi_wavelength (k) > low && desi_wavelength (k) < high;
    return count;
  };
  int n_inside = coverage.last - coverage.first + 1;
  EXPECT_EQ (coverage.n_good, n_inside - pixels_touching (100) - pixels_touching (200));
  /* Linear flux interpolates exactly. */
  EXPECT_NEAR (flux[3000], 2 + desi_wavelength (3000) / 1000, 1e-4);

  /* The same table declared in air: the grid moves to vacuum, ~1.1 Å redder at 4000 Å. */
  FakeSdss air;
  air.air = true;
  write_fake_sdss (dir.path ("spec-air.fits"), air);
  ASSERT_TRUE (aclip_sdss_read (dir.path ("spec-air.fits").c_str (), nullptr, flux.data (),
                                ivar.data (), nullptr, error.out ()));
  EXPECT_EQ (coverage_of (ivar).first, 502); /* 4001.43 Å → first grid point 4001.6 */
}

TEST (SdssBadInput, TruncatedFile)
{
  TempDir dir;
  std::string path = dir.path ("spec-cut.fits");
  copy_truncated (test_data_path (kBossGalaxy), path, 30000);
  ErrorHolder error;
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  EXPECT_FALSE (aclip_sdss_read (path.c_str (), nullptr, flux.data (), ivar.data (), nullptr,
                                 error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str ());
  std::cerr << "truncated spec: " << error->message << "\n";
}

TEST (SdssBadInput, WrongHdu)
{
  std::string path = test_data_path (kDesiCoadd1);
  ErrorHolder error;
  AclipSpectrumInfo info;
  EXPECT_FALSE (aclip_sdss_read_info (path.c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str (), "not an SDSS/BOSS spec file", "COADD");
}

TEST (SdssBadInput, WrongShape)
{
  TempDir dir;
  FakeSdss fake;
  fake.flux_two_per_row = true;
  write_fake_sdss (dir.path ("spec-wide.fits"), fake);
  ErrorHolder error;
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  EXPECT_FALSE (aclip_sdss_read (dir.path ("spec-wide.fits").c_str (), nullptr, flux.data (),
                                 ivar.data (), nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "spec-wide.fits", "flux", "2 values");
}

TEST (SdssBadInput, AllNaNIsAClearError)
{
  TempDir dir;
  FakeSdss fake;
  fake.all_nan = true;
  write_fake_sdss (dir.path ("spec-nan.fits"), fake);
  ErrorHolder error;
  std::vector<float> flux (ACLIP_DESI_N_WAVE), ivar (ACLIP_DESI_N_WAVE);
  EXPECT_FALSE (aclip_sdss_read (dir.path ("spec-nan.fits").c_str (), nullptr, flux.data (),
                                 ivar.data (), nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "spec-nan.fits", "no valid pixel");
  EXPECT_TRUE (g_error_matches (error.error, ACLIP_ERROR, ACLIP_ERROR_EMPTY));
}

TEST (SdssBadInput, EmptyFile)
{
  TempDir dir;
  write_empty (dir.path ("spec-empty.fits"));
  ErrorHolder error;
  AclipSpectrumInfo info;
  EXPECT_FALSE (aclip_sdss_read_info (dir.path ("spec-empty.fits").c_str (), &info,
                                      error.out ()));
  EXPECT_ERROR_MENTIONS (error, "spec-empty.fits", "empty");
}

/* FITS cutouts --------------------------------------------------------------------------------- */

namespace {

/* Planes for fake.bands: band letter c gets value scale_of(c)·(1 + x + 2y) (FITS order). */
std::vector<float>
make_planes (const FakeCube &fake)
{
  std::vector<float> planes ((size_t) fake.width * fake.height * fake.bands.size ());
  for (size_t p = 0; p < fake.bands.size (); p++) {
    float scale = fake.bands[p] == 'g' ? 1.0f : fake.bands[p] == 'r' ? 10.0f
                                            : fake.bands[p] == 'z' ? 100.0f : 1000.0f;
    for (int y = 0; y < fake.height; y++)
      for (int x = 0; x < fake.width; x++)
        planes[(p * fake.height + y) * fake.width + x] = scale * (1 + x + 2 * y);
  }
  return planes;
}

} // namespace

TEST (FitsCutout, BandOrderScaleAndCentre)
{
  TempDir dir;
  const char *orders[] = { "grz", "zrg", "rzg", "grzi" };
  for (int o = 0; o < 4; o++) {
    for (bool numbered : { false, true }) {
      FakeCube fake;
      fake.width = 40;
      fake.height = 30;
      fake.pixscale = 0.262;
      fake.bands = orders[o];
      fake.band_keywords_numbered = numbered;
      std::string path = dir.path (std::string ("cube-") + orders[o] + ".fits");
      write_fake_cube (path, fake, make_planes (fake));

      AclipCutoutRequest request = { 30, 40, 0.262, 0.262 };
      std::vector<float> image (3 * 30 * 40);
      AclipCutoutInfo info;
      ErrorHolder error;
      ASSERT_TRUE (aclip_cutout_read (path.c_str (), &request, image.data (), &info, nullptr,
                                      error.out ()))
          << error->message;
      EXPECT_EQ (info.kind, ACLIP_CUTOUT_FITS);
      EXPECT_NEAR (info.pixscale, 0.262, 1e-9);
      EXPECT_NEAR (info.ra, 150.1, 1e-9);
      EXPECT_NEAR (info.dec, 2.2, 1e-9);
      /* Same size and scale: the cube comes back as written, in g, r, z order. */
      for (int b = 0; b < 3; b++) {
        float scale = b == 0 ? 1.0f : b == 1 ? 10.0f : 100.0f;
        EXPECT_FLOAT_EQ (image[(b * 30 + 0) * 40 + 0], scale * 1) << orders[o] << " band " << b;
        EXPECT_FLOAT_EQ (image[(b * 30 + 7) * 40 + 5], scale * (1 + 5 + 14))
            << orders[o] << " band " << b;
      }
    }
  }
}

TEST (FitsCutout, ResamplingFrom0524ConservesFluxAndPlacesASource)
{
  TempDir dir;
  FakeCube fake; /* 60×60 at 0.524″ */
  std::vector<float> planes (3 * 60 * 60, 0.0f);
  double total[3] = { 0, 0, 0 };
  for (int b = 0; b < 3; b++)
    for (int i = 0; i < 3600; i++) {
      planes[b * 3600 + i] = (float) ((b + 1) * 0.01 * (1 + (i % 7)));
      total[b] += planes[b * 3600 + i];
    }
  /* A point source of 50 nanomaggies in g at (x 30, y 40). */
  planes[40 * 60 + 30] += 50.0f;
  total[0] += 50.0;
  write_fake_cube (dir.path ("cube.fits"), fake, planes);

  AclipCutoutRequest request = { 152, 152, 0.262, 0.262 };
  std::vector<float> image (3 * 152 * 152);
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (dir.path ("cube.fits").c_str (), &request, image.data (),
                                  nullptr, nullptr, error.out ()))
      << error->message;
  for (int b = 0; b < 3; b++) {
    double sum = 0;
    for (int i = 0; i < 152 * 152; i++)
      sum += image[b * 152 * 152 + i];
    EXPECT_NEAR (sum, total[b], 1e-5 * total[b]) << "band " << b;
  }
  /* The source's quarter-flux pixels (x 76–77, y 96–97) hold 12.5 nmgy plus background. */
  float background = image[(0 * 152 + 96) * 152 + 74];
  EXPECT_NEAR (image[96 * 152 + 76] - background, 12.5f, 0.1f);
  EXPECT_NEAR (image[97 * 152 + 77] - background, 12.5f, 0.1f);
  EXPECT_LT (image[95 * 152 + 76], 1.0f);
}

TEST (FitsCutout, TangentProjectionCentre)
{
  /* Reference values from astropy.wcs for a 100×100 cube, CRPIX (20.5, 70.25), a slightly
   * rotated CD matrix; the centre is pixel (50.5, 50.5). */
  TempDir dir;
  FakeCube fake;
  fake.width = fake.height = 100;
  fake.pixscale = 0.262;
  fake.crpix[0] = 20.5;
  fake.crpix[1] = 70.25;
  fake.cd12 = 1e-5;
  fake.cd21 = 2e-6;
  write_fake_cube (dir.path ("wcs.fits"), fake, make_planes (fake));
  AclipCutoutInfo info;
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_probe (dir.path ("wcs.fits").c_str (), &info, error.out ()))
      << error->message;
  EXPECT_NEAR (info.ra, 150.0976174127, 1e-9);
  EXPECT_NEAR (info.dec, 2.1986226370, 1e-9);

  fake.crval[0] = 359.99;
  fake.crval[1] = -60.0;
  write_fake_cube (dir.path ("wcs2.fits"), fake, make_planes (fake));
  ASSERT_TRUE (aclip_cutout_probe (dir.path ("wcs2.fits").c_str (), &info, error.out ()));
  EXPECT_NEAR (info.ra, 359.9852381351, 1e-9);
  EXPECT_NEAR (info.dec, -60.0013772754, 1e-9);
}

TEST (FitsCutoutBadInput, TwoBandCubeAndMissingBands)
{
  TempDir dir;
  FakeCube fake;
  fake.bands = "gr";
  write_fake_cube (dir.path ("two.fits"), fake, make_planes (fake));
  AclipCutoutRequest request = { 152, 152, 0.262, 0.262 };
  std::vector<float> image (3 * 152 * 152);
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_read (dir.path ("two.fits").c_str (), &request, image.data (),
                                   nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "two.fits", "“gr”", "band z is missing");

  FakeCube unlabeled;
  unlabeled.no_bands = true;
  write_fake_cube (dir.path ("unlabeled.fits"), unlabeled, make_planes (unlabeled));
  EXPECT_FALSE (aclip_cutout_read (dir.path ("unlabeled.fits").c_str (), &request,
                                   image.data (), nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "unlabeled.fits", "BANDS");
}

TEST (FitsCutoutBadInput, WrongShape)
{
  TempDir dir;
  FakeCube fake;
  fake.n_dims = 2;
  fake.bands = "g";
  write_fake_cube (dir.path ("flat.fits"), fake, make_planes (fake));
  AclipCutoutRequest request = { 152, 152, 0.262, 0.262 };
  std::vector<float> image (3 * 152 * 152);
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_read (dir.path ("flat.fits").c_str (), &request, image.data (),
                                   nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "flat.fits", "2-dimensional", "bands × height × width");
}

TEST (FitsCutoutBadInput, WrongHdu)
{
  /* A spectrum file (tables only, empty primary) given as a cutout. */
  std::string path = test_data_path (kBossGalaxy);
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (path.c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str (), "no image HDU");
}

TEST (FitsCutoutBadInput, TruncatedFile)
{
  TempDir dir;
  FakeCube fake;
  write_fake_cube (dir.path ("cube.fits"), fake, make_planes (fake));
  copy_truncated (dir.path ("cube.fits"), dir.path ("cut.fits"), 8000);
  AclipCutoutRequest request = { 152, 152, 0.262, 0.262 };
  std::vector<float> image (3 * 152 * 152);
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_read (dir.path ("cut.fits").c_str (), &request, image.data (),
                                   nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "cut.fits");
  std::cerr << "truncated cube: " << error->message << "\n";
}

TEST (FitsCutoutBadInput, NaNPixels)
{
  /* Rule: non-finite pixels count as 0 and are reported; a band with no finite pixel is an
   * error. */
  TempDir dir;
  FakeCube fake;
  fake.pixscale = 0.262;
  fake.width = fake.height = 20;
  std::vector<float> planes = make_planes (fake);
  planes[5] = NAN;
  planes[400 + 7] = INFINITY;
  write_fake_cube (dir.path ("holes.fits"), fake, planes);
  AclipCutoutRequest request = { 20, 20, 0.262, 0.262 };
  std::vector<float> image (3 * 20 * 20);
  gint64 n_replaced = -1;
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (dir.path ("holes.fits").c_str (), &request, image.data (),
                                  nullptr, &n_replaced, error.out ()))
      << error->message;
  EXPECT_EQ (n_replaced, 2);
  EXPECT_EQ (image[5], 0.0f);
  EXPECT_EQ (image[400 + 7], 0.0f);

  for (int i = 800; i < 1200; i++)
    planes[i] = NAN;
  write_fake_cube (dir.path ("blank.fits"), fake, planes);
  EXPECT_FALSE (aclip_cutout_read (dir.path ("blank.fits").c_str (), &request, image.data (),
                                   nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "blank.fits", "band z", "no finite pixel");
}

TEST (FitsCutoutBadInput, EmptyFile)
{
  TempDir dir;
  write_empty (dir.path ("empty.fits"));
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (dir.path ("empty.fits").c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "empty.fits", "empty");
}

/* JPEG / PNG cutouts --------------------------------------------------------------------------- */

namespace {

/* Unsaturated fluxes (3×H×W, FITS order) with all v_b = x_b·s_b + m > 0 and channels < 1. */
std::vector<float>
make_rgb_fluxes (int height, int width)
{
  std::vector<float> flux ((size_t) 3 * height * width);
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++)
        flux[((size_t) b * height + y) * width + x] =
            (float) (0.002 + 0.02 * (b + 1) * (1 + std::sin (0.3 * x + 0.2 * y + b)));
  return flux;
}

/* Renders fluxes (bottom row first) to a PNG (top row first). Returns the 8-bit RGB in the
 * fluxes' row order. */
std::vector<guint8>
render_png (const std::string &path, const std::vector<float> &flux, int height, int width)
{
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  std::vector<guint8> rgb ((size_t) height * width * 3), top_first (rgb.size ());
  aclip_rgb_forward_u8 (&params, flux.data (), height, width, rgb.data ());
  for (int y = 0; y < height; y++)
    memcpy (&top_first[(size_t) (height - 1 - y) * width * 3], &rgb[(size_t) y * width * 3],
            (size_t) width * 3);
  write_png (path, top_first, width, height);
  return rgb;
}

} // namespace

TEST (RgbCutout, InversionRecoversFluxesWithin8BitQuantisation)
{
  TempDir dir;
  const int h = 48, w = 64;
  std::vector<float> truth = make_rgb_fluxes (h, w);
  std::vector<guint8> rgb = render_png (dir.path ("known.png"), truth, h, w);

  AclipCutoutRequest request = { h, w, 0.262, 0.262 };
  std::vector<float> image ((size_t) 3 * h * w);
  AclipCutoutInfo info;
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (dir.path ("known.png").c_str (), &request, image.data (), &info,
                                  nullptr, error.out ()))
      << error->message;
  EXPECT_EQ (info.kind, ACLIP_CUTOUT_RGB);
  EXPECT_EQ (info.width, w);
  EXPECT_EQ (info.height, h);

  /* Decoding and row order are exact: the reader's output equals the inverse of the 8-bit
   * pixels we rendered. */
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  std::vector<float> inverse (image.size ());
  aclip_rgb_inverse_u8 (&params, rgb.data (), h, w, inverse.data ());
  for (size_t i = 0; i < image.size (); i++)
    ASSERT_EQ (image[i], inverse[i]) << i;

  /* Within quantisation: rendering the recovered fluxes gives the same 8-bit pixels (±1 for
   * rounding at a step edge), and the fluxes are close to the truth. */
  std::vector<guint8> again (rgb.size ());
  aclip_rgb_forward_u8 (&params, image.data (), h, w, again.data ());
  int n_unsaturated = 0;
  double worst_relative = 0;
  for (int p = 0; p < h * w; p++) {
    bool saturated = false;
    for (int c = 0; c < 3; c++)
      saturated |= rgb[p * 3 + c] == 0 || rgb[p * 3 + c] == 255;
    if (saturated)
      continue;
    n_unsaturated++;
    for (int c = 0; c < 3; c++)
      ASSERT_LE (std::abs ((int) again[p * 3 + c] - (int) rgb[p * 3 + c]), 1) << p;
    for (int b = 0; b < 3; b++) {
      double t = truth[(size_t) b * h * w + p], r = image[(size_t) b * h * w + p];
      worst_relative = std::max (worst_relative, std::fabs (r - t) / (std::fabs (t) + 0.01));
    }
  }
  EXPECT_GT (n_unsaturated, h * w / 2);
  EXPECT_LT (worst_relative, 0.1);
  std::cerr << "worst relative flux error after 8-bit round trip: " << worst_relative << "\n";
}

TEST (RgbCutout, PixelScaleResamplesAndConservesFlux)
{
  /* A 128×128 PNG at 0.131″ into 64×64 at 0.262″ (same field): each output pixel is the sum
   * of a 2×2 block of the inverted image. */
  TempDir dir;
  const int n = 128;
  std::vector<float> truth = make_rgb_fluxes (n, n);
  std::vector<guint8> rgb = render_png (dir.path ("fine.png"), truth, n, n);
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  std::vector<float> inverse ((size_t) 3 * n * n);
  aclip_rgb_inverse_u8 (&params, rgb.data (), n, n, inverse.data ());

  AclipCutoutRequest request = { 64, 64, 0.262, 0.131 };
  std::vector<float> image (3 * 64 * 64);
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (dir.path ("fine.png").c_str (), &request, image.data (),
                                  nullptr, nullptr, error.out ()))
      << error->message;
  for (int b = 0; b < 3; b++) {
    const float *in = &inverse[(size_t) b * n * n];
    int x = 10, y = 20;
    double block = in[(2 * y) * n + 2 * x] + in[(2 * y) * n + 2 * x + 1] +
                   in[(2 * y + 1) * n + 2 * x] + in[(2 * y + 1) * n + 2 * x + 1];
    EXPECT_NEAR (image[(b * 64 + y) * 64 + x], block, 1e-5);
  }

  request.input_pixscale = 0;
  EXPECT_FALSE (aclip_cutout_read (dir.path ("fine.png").c_str (), &request, image.data (),
                                   nullptr, nullptr, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "fine.png", "pixel scale");
}

TEST (RgbCutout, RealPngPanelDecodes)
{
  /* The QA-figure panel (571×436, overlays included): a smoke test that a real PNG decodes
   * into finite fluxes. ~25″ across → ~0.044″/pixel. */
  std::string path = test_data_path (kPngCutout);
  AclipCutoutInfo info;
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_probe (path.c_str (), &info, error.out ())) << error->message;
  EXPECT_EQ (info.kind, ACLIP_CUTOUT_RGB);
  EXPECT_EQ (info.width, 571);
  EXPECT_EQ (info.height, 436);
  AclipCutoutRequest request = { 96, 96, 0.262, 0.044 };
  std::vector<float> image (3 * 96 * 96);
  ASSERT_TRUE (aclip_cutout_read (path.c_str (), &request, image.data (), nullptr, nullptr,
                                  error.out ()))
      << error->message;
  int n_finite = 0;
  for (float v : image)
    n_finite += std::isfinite (v);
  EXPECT_EQ (n_finite, (int) image.size ());
}

TEST (RgbCutout, JpegDecodesBottomRowFirst)
{
  /* gradient-48x32.jpg: red (→ z) rises to the right, green (→ r) rises towards the top. The
   * catalogue's row 0 is the bottom row, so r grows with the row index. */
  std::string path = test_data_path ("legacy/gradient-48x32.jpg");
  AclipCutoutRequest request = { 32, 48, 0.262, 0.262 };
  std::vector<float> image (3 * 32 * 48);
  AclipCutoutInfo info;
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (path.c_str (), &request, image.data (), &info, nullptr,
                                  error.out ()))
      << error->message;
  EXPECT_EQ (info.kind, ACLIP_CUTOUT_RGB);
  EXPECT_EQ (info.width, 48);
  EXPECT_EQ (info.height, 32);
  auto at = [&] (int band, int y, int x) { return image[((size_t) band * 32 + y) * 48 + x]; };
  EXPECT_LT (at (1, 2, 5), at (1, 29, 5));   /* r: bottom < top */
  EXPECT_LT (at (2, 16, 2), at (2, 16, 45)); /* z: left < right */
}

TEST (RgbCutoutBadInput, TruncatedFile)
{
  TempDir dir;
  std::string path = dir.path ("cut.png");
  copy_truncated (test_data_path (kPngCutout), path, 2000);
  AclipCutoutRequest request = { 96, 96, 0.262, 0.044 };
  std::vector<float> image (3 * 96 * 96);
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_read (path.c_str (), &request, image.data (), nullptr, nullptr,
                                   error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str ());
  std::cerr << "truncated png: " << error->message << "\n";
}

TEST (RgbCutoutBadInput, TruncatedJpeg)
{
  /* gdk-pixbuf would pad a cut-off JPEG with grey; the reader refuses it. */
  TempDir dir;
  std::string path = dir.path ("cut.jpg");
  copy_truncated (test_data_path ("legacy/gradient-48x32.jpg"), path, 600);
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (path.c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str (), "truncated");
}

TEST (RgbCutoutBadInput, NotAnImage)
{
  /* The equivalent of a wrong HDU for an image reader: a file of another kind. */
  std::string path = test_data_path ("boss/catalog.csv");
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (path.c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, path.c_str (), "cannot be read as a FITS, JPEG or PNG cutout");
}

TEST (RgbCutoutBadInput, WrongShape)
{
  /* A 4×4 image is no cutout. (gdk-pixbuf always yields RGB(A), so a wrong channel count
   * cannot reach us; the size is the shape that can be wrong.) */
  TempDir dir;
  std::vector<guint8> tiny (4 * 4 * 3, 128);
  write_png (dir.path ("tiny.png"), tiny, 4, 4);
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (dir.path ("tiny.png").c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "tiny.png", "4 × 4", "cannot be a cutout");
}

TEST (RgbCutoutBadInput, NaNCannotOccurButExtremesStayFinite)
{
  /* 8-bit pixels hold no NaN; the extremes (black, white, saturated single channels) must
   * still give finite fluxes. */
  TempDir dir;
  std::vector<guint8> extremes (16 * 16 * 3);
  for (size_t i = 0; i < extremes.size (); i++)
    extremes[i] = (guint8) ((i % 7) < 3 ? 0 : 255);
  write_png (dir.path ("extremes.png"), extremes, 16, 16);
  AclipCutoutRequest request = { 16, 16, 0.262, 0.262 };
  std::vector<float> image (3 * 16 * 16);
  ErrorHolder error;
  ASSERT_TRUE (aclip_cutout_read (dir.path ("extremes.png").c_str (), &request, image.data (),
                                  nullptr, nullptr, error.out ()))
      << error->message;
  for (float v : image)
    ASSERT_TRUE (std::isfinite (v));
}

TEST (RgbCutoutBadInput, EmptyFile)
{
  TempDir dir;
  write_empty (dir.path ("empty.png"));
  AclipCutoutInfo info;
  ErrorHolder error;
  EXPECT_FALSE (aclip_cutout_probe (dir.path ("empty.png").c_str (), &info, error.out ()));
  EXPECT_ERROR_MENTIONS (error, "empty.png", "empty");
}

/* astroclip import ----------------------------------------------------------------------------- */

namespace {

struct Row
{
  gint64 id;
  double ra, dec;
  float z;
  std::vector<float> image, spectrum, ivar;
  std::map<std::string, double> extra;
};

std::vector<Row>
read_catalogue (const std::string &path, AclipCatalogue **out = nullptr)
{
  ErrorHolder error;
  AclipCatalogue *catalogue = aclip_catalogue_open (path.c_str (), error.out ());
  EXPECT_NE (catalogue, nullptr) << (error.error ? error->message : "");
  if (catalogue == nullptr)
    return {};
  std::vector<Row> rows;
  gint64 n = aclip_catalogue_n_rows (catalogue);
  int h = aclip_catalogue_image_height (catalogue), w = aclip_catalogue_image_width (catalogue);
  int n_wave = aclip_catalogue_n_wave (catalogue);
  for (gint64 r = 0; r < n; r++) {
    Row row;
    row.image.resize ((size_t) 3 * h * w);
    row.spectrum.resize (n_wave);
    row.ivar.resize (n_wave);
    AclipGalaxy galaxy = {};
    galaxy.image = h > 0 ? row.image.data () : nullptr;
    galaxy.spectrum = n_wave > 0 ? row.spectrum.data () : nullptr;
    galaxy.spectrum_ivar = n_wave > 0 ? row.ivar.data () : nullptr;
    EXPECT_TRUE (aclip_catalogue_read_galaxy (catalogue, r, &galaxy, error.out ()));
    row.id = galaxy.id;
    row.ra = galaxy.ra;
    row.dec = galaxy.dec;
    row.z = galaxy.z;
    for (const char *const *name = aclip_catalogue_numeric_columns (catalogue); *name; name++) {
      double value = NAN;
      EXPECT_TRUE (aclip_catalogue_read_column (catalogue, *name, r, 1, &value, error.out ()));
      row.extra[*name] = value;
    }
    rows.push_back (row);
  }
  if (out)
    *out = catalogue;
  else
    aclip_catalogue_free (catalogue);
  return rows;
}

} // namespace

TEST (Import, RealDesiAndBossSpectraOnly)
{
  TempDir dir;
  std::string out_path = dir.path ("spectra.fits"), out, err;
  int status = run_astroclip ({ "import", "--out", out_path, "--desi",
                                test_data_path (kDesiCoadd1), "--desi",
                                test_data_path (kDesiCoadd2) + ":" +
                                    test_data_path (kDesiRedrock2),
                                "--sdss", test_data_path (kBossGalaxy), "--sdss",
                                test_data_path ("boss/spec-4055-55359-0010.fits") },
                              &out, &err);
  ASSERT_EQ (status, 0) << err;
  EXPECT_NE (out.find ("wrote 4 rows"), std::string::npos) << out;
  EXPECT_EQ (count_entries (dir.root ()), 1);

  AclipCatalogue *catalogue = nullptr;
  std::vector<Row> rows = read_catalogue (out_path, &catalogue);
  ASSERT_EQ (rows.size (), 4u);
  EXPECT_FALSE (aclip_catalogue_has_images (catalogue));
  EXPECT_TRUE (aclip_catalogue_has_spectra (catalogue));
  EXPECT_EQ (aclip_catalogue_n_wave (catalogue), ACLIP_DESI_N_WAVE);
  aclip_catalogue_free (catalogue);

  EXPECT_EQ (rows[0].id, G_GINT64_CONSTANT (39633345008634465));
  EXPECT_NEAR (rows[0].z, 0.36874, 5e-6);
  EXPECT_EQ (rows[1].id, G_GINT64_CONSTANT (39089837499744649));
  EXPECT_NEAR (rows[1].z, 0.00727, 5e-6);
  EXPECT_EQ (rows[2].id, G_GINT64_CONSTANT (4055553590006));
  EXPECT_NEAR (rows[2].z, 0.21377261, 1e-6);
  EXPECT_EQ (rows[2].extra["SPECTYPE"], ACLIP_SPECTYPE_GALAXY);
  EXPECT_EQ (rows[2].extra["PLATE"], 4055);
  EXPECT_EQ (rows[2].extra["SPEC_SOURCE"], ACLIP_SPECTRUM_SOURCE_SDSS);
  EXPECT_EQ (rows[3].extra["SPECTYPE"], ACLIP_SPECTYPE_QSO);
  EXPECT_NEAR (rows[3].z, 2.953351, 1e-5);
  EXPECT_EQ (rows[0].extra["SPEC_SOURCE"], ACLIP_SPECTRUM_SOURCE_DESI);
  EXPECT_EQ (rows[0].extra["FIBER"], -1);
  EXPECT_EQ (coverage_of (rows[0].ivar).n_good, 7781);
  EXPECT_EQ (coverage_of (rows[2].ivar).n_good, 7358);
  EXPECT_EQ (coverage_of (rows[3].ivar).n_good, 6791);
  EXPECT_NEAR (rows[0].extra["FLUX_G"], 3.237032651901245, 1e-5);
}

TEST (Import, DesiWithRealPngPairedById)
{
  /* The PNG's name carries the first target's TARGETID; the second target has no cutout and
   * is reported and skipped. */
  TempDir dir;
  std::string out_path = dir.path ("paired.fits"), out, err;
  int status = run_astroclip ({ "import", "-o", out_path, "--image-size", "64",
                                "--pixscale-in", "0.044", "--desi", test_data_path (kDesiCoadd1),
                                "--desi", test_data_path (kDesiCoadd2), "--cutout",
                                test_data_path (kPngCutout) },
                              &out, &err);
  ASSERT_EQ (status, 0) << err;
  EXPECT_NE (err.find ("skipped spectrum 39089837499744649"), std::string::npos) << err;
  std::vector<Row> rows = read_catalogue (out_path);
  ASSERT_EQ (rows.size (), 1u);
  EXPECT_EQ (rows[0].id, G_GINT64_CONSTANT (39633345008634465));
  EXPECT_EQ (rows[0].image.size (), 3u * 64 * 64);
  EXPECT_EQ (rows[0].extra["IMAGE_KIND"], 2);
  EXPECT_NEAR (rows[0].extra["PIXSCALE_IN"], 0.044, 1e-6);
  EXPECT_TRUE (std::isnan (rows[0].extra["MATCH_SEP"]));
  EXPECT_NEAR (rows[0].z, 0.36874, 5e-6);
}

TEST (Import, FitsCutoutsPairedByPositionWithBoss)
{
  /* Two FITS cubes centred 0.3″ and 5″ from the two BOSS galaxies; with a 1″ radius only the
   * first pairs. A third cube listed in a CSV at the second galaxy's position pairs too. */
  TempDir dir;
  FakeCube near_first;
  near_first.crval[0] = 237.85517 + 0.3 / 3600 / std::cos (2.0274375 * G_PI / 180);
  near_first.crval[1] = 2.0274375;
  write_fake_cube (dir.path ("a.fits"), near_first, make_planes (near_first));
  FakeCube far_second;
  far_second.crval[0] = 237.85965;
  far_second.crval[1] = 2.1075432 + 5.0 / 3600;
  write_fake_cube (dir.path ("b.fits"), far_second, make_planes (far_second));
  FakeCube listed = far_second;
  listed.pixscale = 0; /* no WCS: position and scale from the list */
  write_fake_cube (dir.path ("c.fits"), listed, make_planes (listed));
  ASSERT_TRUE (g_file_set_contents (dir.path ("list.csv").c_str (),
                                    "# cutouts\nfile,ra,dec,pixscale\n"
                                    "c.fits,237.85965,2.1075432,0.524\n",
                                    -1, nullptr));

  std::string out_path = dir.path ("cat.fits"), out, err;
  int status = run_astroclip (
      { "import", "--out", out_path, "--pair-by", "position", "--match-radius", "1",
        "--sdss", test_data_path (kBossGalaxy), "--sdss",
        test_data_path ("boss/spec-4055-55359-0012.fits"), "--cutout", dir.path ("a.fits"),
        "--cutout", dir.path ("b.fits"), "--cutout-list", dir.path ("list.csv") },
      &out, &err);
  ASSERT_EQ (status, 0) << err;
  EXPECT_NE (err.find ("skipped cutout " + dir.path ("b.fits")), std::string::npos) << err;
  std::vector<Row> rows = read_catalogue (out_path);
  ASSERT_EQ (rows.size (), 2u);
  EXPECT_EQ (rows[0].id, G_GINT64_CONSTANT (4055553590006));
  EXPECT_NEAR (rows[0].extra["MATCH_SEP"], 0.3, 1e-3);
  EXPECT_EQ (rows[0].extra["IMAGE_KIND"], 1);
  EXPECT_NEAR (rows[0].extra["PIXSCALE_IN"], 0.524, 1e-6);
  EXPECT_EQ (rows[1].id, G_GINT64_CONSTANT (4055553590012));
  EXPECT_NEAR (rows[1].extra["MATCH_SEP"], 0.0, 1e-3);
  EXPECT_NEAR (rows[1].extra["PIXSCALE_IN"], 0.524, 1e-6);
  /* Total g flux of the 60×60 cube at 0.524″ survives the move to 152×152 at 0.262″. */
  double cube_total = 0;
  for (int y = 0; y < 60; y++)
    for (int x = 0; x < 60; x++)
      cube_total += 1 + x + 2 * y;
  double image_total = 0;
  for (int i = 0; i < 152 * 152; i++)
    image_total += rows[0].image[i];
  EXPECT_NEAR (image_total, cube_total, 1e-5 * cube_total);
  EXPECT_EQ (coverage_of (rows[1].ivar).n_good, 7198);
}

TEST (Import, CutoutsOnly)
{
  TempDir dir;
  FakeCube fake;
  write_fake_cube (dir.path ("cutout_123456.fits"), fake, make_planes (fake));
  std::string out_path = dir.path ("images.fits"), out, err;
  int status = run_astroclip ({ "import", "--out", out_path, "--image-size", "96", "--cutout",
                                dir.path ("cutout_123456.fits") },
                              &out, &err);
  ASSERT_EQ (status, 0) << err;
  AclipCatalogue *catalogue = nullptr;
  std::vector<Row> rows = read_catalogue (out_path, &catalogue);
  ASSERT_EQ (rows.size (), 1u);
  EXPECT_TRUE (aclip_catalogue_has_images (catalogue));
  EXPECT_FALSE (aclip_catalogue_has_spectra (catalogue));
  EXPECT_EQ (aclip_catalogue_image_width (catalogue), 96);
  aclip_catalogue_free (catalogue);
  EXPECT_EQ (rows[0].id, 123456);
  EXPECT_NEAR (rows[0].ra, 150.1, 1e-9);
  EXPECT_NEAR (rows[0].dec, 2.2, 1e-9);
}

TEST (Import, BadInputLeavesNoFile)
{
  TempDir dir;
  std::string out_path = dir.path ("cat.fits"), out, err;
  std::string truncated = dir.path ("coadd-cut.fits");
  copy_truncated (test_data_path (kDesiCoadd1), truncated, 100000);
  int status = run_astroclip ({ "import", "--out", out_path, "--desi",
                                truncated + ":" + test_data_path (kDesiRedrock1) },
                              &out, &err);
  EXPECT_EQ (status, 1);
  EXPECT_NE (err.find (truncated), std::string::npos) << err;
  EXPECT_FALSE (g_file_test (out_path.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (count_entries (dir.root ()), 1); /* only the truncated input */

  /* A wrong HDU: a redrock file given as an SDSS spectrum. */
  status = run_astroclip ({ "import", "--out", out_path, "--sdss",
                            test_data_path (kDesiRedrock1) },
                          &out, &err);
  EXPECT_EQ (status, 1);
  EXPECT_NE (err.find ("not an SDSS/BOSS spec file"), std::string::npos) << err;
  EXPECT_EQ (count_entries (dir.root ()), 1);
}

TEST (Import, FailureWhileWritingLeavesNoFile)
{
  /* A cube whose header is fine (so the first pass accepts it) but whose pixels are cut off:
   * the import fails after the catalogue writer has started, and its temporary file goes. */
  TempDir dir;
  FakeCube fake;
  write_fake_cube (dir.path ("full.fits"), fake, make_planes (fake));
  copy_truncated (dir.path ("full.fits"), dir.path ("cutout_39633345008634465.fits"), 20000);
  g_remove (dir.path ("full.fits").c_str ());
  std::string out_path = dir.path ("cat.fits"), out, err;
  int status = run_astroclip ({ "import", "--out", out_path, "--desi",
                                test_data_path (kDesiCoadd1), "--cutout",
                                dir.path ("cutout_39633345008634465.fits") },
                              &out, &err);
  EXPECT_EQ (status, 1);
  EXPECT_NE (err.find ("cutout_39633345008634465.fits"), std::string::npos) << err;
  EXPECT_FALSE (g_file_test (out_path.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (count_entries (dir.root ()), 1);
}

TEST (Import, NothingPairsIsAnError)
{
  TempDir dir;
  FakeCube fake;
  write_fake_cube (dir.path ("cutout_77.fits"), fake, make_planes (fake));
  std::string out_path = dir.path ("cat.fits"), out, err;
  int status = run_astroclip ({ "import", "--out", out_path, "--sdss",
                                test_data_path (kBossGalaxy), "--cutout",
                                dir.path ("cutout_77.fits") },
                              &out, &err);
  EXPECT_EQ (status, 1);
  EXPECT_NE (err.find ("no spectrum has a cutout with the same ID"), std::string::npos) << err;
  EXPECT_FALSE (g_file_test (out_path.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (count_entries (dir.root ()), 1);
}

TEST (Import, UsageErrors)
{
  std::string out, err;
  EXPECT_EQ (run_astroclip ({ "import", "--desi", test_data_path (kDesiCoadd1) }, &out, &err), 2);
  EXPECT_NE (err.find ("--out"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "import", "--out", "x.fits", "--pair-by", "colour", "--sdss",
                              test_data_path (kBossGalaxy) },
                            &out, &err),
             2);
  EXPECT_NE (err.find ("--pair-by"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "import", "--out", "x.fits", "stray.fits" }, &out, &err), 2);
  EXPECT_EQ (run_astroclip ({ "import", "--help" }, &out, &err), 0);
  EXPECT_NE (out.find ("--cutout-list"), std::string::npos);
}

/* astroclip import — a catalogue from Legacy Surveys cutouts and DESI or SDSS/BOSS spectra.
 *
 * Inputs: DESI coadd files (with their redrock files), SDSS/BOSS spec files, cutouts (FITS
 * cubes, JPEG/PNG colour images) named one by one or listed in CSV files. The work is done in
 * two passes: the first reads what every input says about itself (IDs, positions, shapes —
 * so that a bad file fails before anything is written) and pairs images with spectra; the
 * second reads the pixels one row at a time and streams the rows to the catalogue writer,
 * which writes to a temporary file that only a complete import renames into place.
 *
 * Rows:
 *  - spectra only: one row per spectrum (no IMAGE column);
 *  - cutouts only: one row per cutout (no SPECTRUM columns);
 *  - both: one row per spectrum–cutout pair; pairs are made by ID (a DESI TARGETID, the SDSS
 *    ID PLATE·10⁹ + MJD·10⁴ + FIBER, against the cutout's ID) or by sky position (the nearest
 *    cutout centre within the match radius; closest pairs first, each cutout used once). Items
 *    left unpaired are listed on stderr and skipped.
 * A spectrum with no valid pixel on the DESI grid (a dead fibre) is listed and skipped; any
 * other problem with an input stops the import, and no output file is left behind.
 */
#include "astroclip-commands.h"

#include "aclip-catalogue.h"
#include "aclip-cutout.h"
#include "aclip-error.h"
#include "aclip-spectra.h"

#include <inttypes.h>
#include <glib/gi18n.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unpaired or skipped items listed one by one before a summary takes over. */
#define MAX_LISTED 20

typedef struct
{
  char *path;
  gboolean has_id;
  gint64 id;
  double ra, dec;     /* degrees; NaN when unknown */
  double pixscale_in; /* arcsec/pixel for JPEG/PNG and FITS without a WCS scale */
  AclipCutoutInfo info;
  int spectrum; /* index of the paired spectrum, -1 */
} ImageItem;

typedef struct
{
  int file;   /* index into desi_files (DESI) or sdss_files (SDSS) */
  int target; /* DESI: target index within the coadd; SDSS: 0 */
  AclipSpectrumInfo info;
  int image;         /* paired image; -1 none, -2 taken by an earlier spectrum with this ID */
  double separation; /* arcsec between spectrum and image positions; NaN when unknown */
} SpectrumItem;

typedef struct
{
  char *coadd;
  char *redrock; /* NULL: found beside the coadd */
} DesiFile;

typedef struct
{
  /* options */
  char *out_path;
  char **desi_arguments;
  char **sdss_arguments;
  char **cutout_arguments;
  char **cutout_lists;
  int image_size;
  double pixscale;
  double pixscale_in;
  double match_radius;
  char *pair_by;
  char *id_pattern;
  double image_quantum;
  gboolean quiet;

  gboolean pair_by_position;
  GRegex *id_regex;
  GArray *desi_files;    /* DesiFile */
  GPtrArray *sdss_files; /* char * */
  GArray *images;        /* ImageItem */
  GArray *spectra;       /* SpectrumItem */
  int n_listed;
} Import;

static void
import_clear (Import *import)
{
  g_free (import->out_path);
  g_strfreev (import->desi_arguments);
  g_strfreev (import->sdss_arguments);
  g_strfreev (import->cutout_arguments);
  g_strfreev (import->cutout_lists);
  g_free (import->pair_by);
  g_free (import->id_pattern);
  g_clear_pointer (&import->id_regex, g_regex_unref);
  if (import->desi_files) {
    for (guint i = 0; i < import->desi_files->len; i++) {
      DesiFile *file = &g_array_index (import->desi_files, DesiFile, i);
      g_free (file->coadd);
      g_free (file->redrock);
    }
    g_array_unref (import->desi_files);
  }
  g_clear_pointer (&import->sdss_files, g_ptr_array_unref);
  if (import->images) {
    for (guint i = 0; i < import->images->len; i++)
      g_free (g_array_index (import->images, ImageItem, i).path);
    g_array_unref (import->images);
  }
  g_clear_pointer (&import->spectra, g_array_unref);
}

/* Reports one skipped item on stderr, up to MAX_LISTED of them. */
static void
list_skipped (Import *import, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
list_skipped (Import *import, const char *format, ...)
{
  import->n_listed++;
  if (import->n_listed > MAX_LISTED)
    return;
  va_list arguments;
  va_start (arguments, format);
  g_autofree char *message = g_strdup_vprintf (format, arguments);
  va_end (arguments);
  g_printerr ("astroclip import: %s\n", message);
  if (import->n_listed == MAX_LISTED)
    g_printerr ("%s\n", _("astroclip import: (further skipped items are only counted)"));
}

/* Cutouts -------------------------------------------------------------------------------- */

/* The ID in a cutout's file name: the first capture group (or the whole match) of
 * --id-pattern, or else the longest run of digits. */
static gboolean
id_from_file_name (Import *import, const char *path, gint64 *id)
{
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';

  g_autofree char *digits = NULL;
  if (import->id_regex) {
    g_autoptr (GMatchInfo) match = NULL;
    if (!g_regex_match (import->id_regex, base, 0, &match))
      return FALSE;
    digits = g_match_info_fetch (match, g_regex_get_capture_count (import->id_regex) > 0 ? 1 : 0);
  } else {
    const char *best = NULL;
    gsize best_length = 0;
    for (const char *c = base; *c;) {
      gsize length = strspn (c, "0123456789");
      if (length > best_length) {
        best = c;
        best_length = length;
      }
      c += length ? length : 1;
    }
    if (best)
      digits = g_strndup (best, best_length);
  }
  if (digits == NULL || digits[0] == '\0' || strlen (digits) > 18)
    return FALSE;
  guint64 value = 0;
  if (!g_ascii_string_to_unsigned (digits, 10, 0, G_MAXINT64, &value, NULL))
    return FALSE;
  *id = (gint64) value;
  return TRUE;
}

static gboolean
add_image (Import *import, const char *path, gboolean has_id, gint64 id, double ra, double dec,
           double pixscale_in, GError **error)
{
  ImageItem item = { 0 };
  if (!aclip_cutout_probe (path, &item.info, error))
    return FALSE;
  item.path = g_strdup (path);
  item.has_id = has_id || id_from_file_name (import, path, &item.id);
  if (has_id)
    item.id = id;
  /* A position given in a list wins over the file's WCS. */
  item.ra = isfinite (ra) ? ra : item.info.ra;
  item.dec = isfinite (dec) ? dec : item.info.dec;
  item.pixscale_in = pixscale_in;
  item.spectrum = -1;
  g_array_append_val (import->images, item);
  return TRUE;
}

static gboolean
parse_double_field (const char *list_path, int line, const char *name, const char *text,
                    double *value, GError **error)
{
  char *end = NULL;
  *value = g_ascii_strtod (text, &end);
  if (text[0] == '\0' || end == NULL || *end != '\0' || !isfinite (*value)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s line %d: %s “%s” is not a number"), list_path, line, name, text);
    return FALSE;
  }
  return TRUE;
}

static char *
unquote (char *field)
{
  g_strstrip (field);
  gsize length = strlen (field);
  if (length >= 2 && field[0] == '"' && field[length - 1] == '"') {
    field[length - 1] = '\0';
    return g_strstrip (field + 1);
  }
  return field;
}

/* A CSV file with a header line naming its columns: file (required; relative to the list's
 * folder), id, ra, dec (degrees), pixscale (arcsec/pixel; JPEG/PNG and FITS without a WCS
 * scale), in any order. Blank lines and lines starting with # are ignored; fields may not
 * contain commas. */
static gboolean
add_image_list (Import *import, const char *list_path, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) read_error = NULL;
  if (!g_file_get_contents (list_path, &contents, NULL, &read_error)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("%s: cannot be read: %s"), list_path,
                 read_error->message);
    return FALSE;
  }
  g_autofree char *folder = g_path_get_dirname (list_path);
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  int column_file = -1, column_id = -1, column_ra = -1, column_dec = -1, column_scale = -1;
  int n_columns = 0;
  gboolean have_header = FALSE;
  int n_rows = 0;

  for (int line = 0; lines[line]; line++) {
    char *text = g_strstrip (lines[line]);
    if (text[0] == '\0' || text[0] == '#')
      continue;
    g_auto (GStrv) fields = g_strsplit (text, ",", -1);
    int n_fields = (int) g_strv_length (fields);
    if (!have_header) {
      for (int c = 0; c < n_fields; c++) {
        char *name = unquote (fields[c]);
        if (g_ascii_strcasecmp (name, "file") == 0 || g_ascii_strcasecmp (name, "path") == 0)
          column_file = c;
        else if (g_ascii_strcasecmp (name, "id") == 0 ||
                 g_ascii_strcasecmp (name, "targetid") == 0)
          column_id = c;
        else if (g_ascii_strcasecmp (name, "ra") == 0)
          column_ra = c;
        else if (g_ascii_strcasecmp (name, "dec") == 0)
          column_dec = c;
        else if (g_ascii_strcasecmp (name, "pixscale") == 0)
          column_scale = c;
      }
      if (column_file < 0) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                     _("%s line %d: the header names no “file” column (expected columns file "
                       "and any of id, ra, dec, pixscale)"),
                     list_path, line + 1);
        return FALSE;
      }
      if ((column_ra < 0) != (column_dec < 0)) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                     _("%s line %d: give both ra and dec columns, or neither"), list_path,
                     line + 1);
        return FALSE;
      }
      n_columns = n_fields;
      have_header = TRUE;
      continue;
    }
    if (n_fields != n_columns) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                   _("%s line %d: %d fields where the header has %d"), list_path, line + 1,
                   n_fields, n_columns);
      return FALSE;
    }

    const char *file = unquote (fields[column_file]);
    g_autofree char *path = g_path_is_absolute (file) ? g_strdup (file)
                                                      : g_build_filename (folder, file, NULL);
    gboolean has_id = FALSE;
    gint64 id = 0;
    double ra = NAN, dec = NAN, pixscale_in = import->pixscale_in;
    if (column_id >= 0 && unquote (fields[column_id])[0] != '\0') {
      const char *text_id = unquote (fields[column_id]);
      if (!g_ascii_string_to_signed (text_id, 10, 0, G_MAXINT64, &id, NULL)) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                     _("%s line %d: id “%s” is not a whole number"), list_path, line + 1,
                     text_id);
        return FALSE;
      }
      has_id = TRUE;
    }
    if (column_ra >= 0 &&
        (!parse_double_field (list_path, line + 1, "ra", unquote (fields[column_ra]), &ra,
                              error) ||
         !parse_double_field (list_path, line + 1, "dec", unquote (fields[column_dec]), &dec,
                              error)))
      return FALSE;
    if (column_ra >= 0 && (dec < -90 || dec > 90)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s line %d: dec %g is outside −90…90°"), list_path, line + 1, dec);
      return FALSE;
    }
    if (column_scale >= 0 && unquote (fields[column_scale])[0] != '\0') {
      if (!parse_double_field (list_path, line + 1, "pixscale", unquote (fields[column_scale]),
                               &pixscale_in, error))
        return FALSE;
      if (!(pixscale_in > 0)) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                     _("%s line %d: pixscale must be positive"), list_path, line + 1);
        return FALSE;
      }
    }
    if (!add_image (import, path, has_id, id, ra, dec, pixscale_in, error)) {
      g_prefix_error (error, _("%s line %d: "), list_path, line + 1);
      return FALSE;
    }
    n_rows++;
  }
  if (n_rows == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT, _("%s: lists no cutout"), list_path);
    return FALSE;
  }
  return TRUE;
}

/* Spectra -------------------------------------------------------------------------------- */

static gboolean
add_desi (Import *import, const char *argument, GError **error)
{
  DesiFile file = { 0 };
  /* COADD:REDROCK — split at the last colon when what follows names a file. */
  const char *colon = strrchr (argument, ':');
  if (colon && colon[1] != '\0' && colon != argument) {
    file.coadd = g_strndup (argument, colon - argument);
    file.redrock = g_strdup (colon + 1);
  } else {
    file.coadd = g_strdup (argument);
  }

  g_autoptr (AclipDesiCoadd) coadd = aclip_desi_coadd_open (file.coadd, file.redrock, error);
  if (coadd == NULL) {
    g_free (file.coadd);
    g_free (file.redrock);
    return FALSE;
  }
  if (file.redrock == NULL)
    file.redrock = g_strdup (aclip_desi_coadd_redrock_path (coadd));
  g_array_append_val (import->desi_files, file);

  int n_targets = aclip_desi_coadd_n_targets (coadd);
  for (int t = 0; t < n_targets; t++) {
    SpectrumItem item = { 0 };
    item.file = (int) import->desi_files->len - 1;
    item.target = t;
    item.info = *aclip_desi_coadd_info (coadd, t);
    item.image = -1;
    item.separation = NAN;
    g_array_append_val (import->spectra, item);
  }
  int n_missing = aclip_desi_coadd_n_without_redshift (coadd);
  if (n_missing > 0)
    g_printerr (_("astroclip import: %s: %d of %d targets have no redshift in %s (Z left "
                  "NaN)\n"),
                file.coadd, n_missing, n_targets, file.redrock);
  return TRUE;
}

static gboolean
add_sdss (Import *import, const char *path, GError **error)
{
  SpectrumItem item = { 0 };
  if (!aclip_sdss_read_info (path, &item.info, error))
    return FALSE;
  g_ptr_array_add (import->sdss_files, g_strdup (path));
  item.file = (int) import->sdss_files->len - 1;
  item.image = -1;
  item.separation = NAN;
  g_array_append_val (import->spectra, item);
  return TRUE;
}

/* Pairing -------------------------------------------------------------------------------- */

/* Angular separation in arcsec (haversine). */
static double
separation_arcsec (double ra1, double dec1, double ra2, double dec2)
{
  double to_radians = G_PI / 180.0;
  double sin_ddec = sin ((dec2 - dec1) * to_radians / 2);
  double sin_dra = sin ((ra2 - ra1) * to_radians / 2);
  double a = sin_ddec * sin_ddec +
             cos (dec1 * to_radians) * cos (dec2 * to_radians) * sin_dra * sin_dra;
  return 2 * asin (sqrt (CLAMP (a, 0.0, 1.0))) / to_radians * 3600.0;
}

static const char *
spectrum_file (Import *import, const SpectrumItem *spectrum)
{
  if (spectrum->info.source == ACLIP_SPECTRUM_SOURCE_DESI)
    return g_array_index (import->desi_files, DesiFile, spectrum->file).coadd;
  return g_ptr_array_index (import->sdss_files, spectrum->file);
}

static gboolean
pair_by_id (Import *import, GError **error)
{
  g_autoptr (GHashTable) image_of_id = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (guint i = 0; i < import->images->len; i++) {
    ImageItem *image = &g_array_index (import->images, ImageItem, i);
    if (!image->has_id)
      continue;
    gpointer previous = g_hash_table_lookup (image_of_id, &image->id);
    if (previous) {
      int other_index = GPOINTER_TO_INT (previous) - 1;
      ImageItem *other = &g_array_index (import->images, ImageItem, other_index);
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("cutouts %s and %s both have ID %" PRId64), other->path,
                   image->path, image->id);
      return FALSE;
    }
    g_hash_table_insert (image_of_id, &image->id, GINT_TO_POINTER ((int) i + 1));
  }
  for (guint s = 0; s < import->spectra->len; s++) {
    SpectrumItem *spectrum = &g_array_index (import->spectra, SpectrumItem, s);
    int i = GPOINTER_TO_INT (g_hash_table_lookup (image_of_id, &spectrum->info.id)) - 1;
    if (i < 0)
      continue;
    ImageItem *image = &g_array_index (import->images, ImageItem, i);
    if (image->spectrum >= 0) {
      spectrum->image = -2; /* the same target twice: the first spectrum keeps the cutout */
      continue;
    }
    image->spectrum = (int) s;
    spectrum->image = i;
    if (isfinite (image->ra) && isfinite (spectrum->info.ra))
      spectrum->separation = separation_arcsec (spectrum->info.ra, spectrum->info.dec,
                                                image->ra, image->dec);
  }
  return TRUE;
}

typedef struct
{
  int spectrum, image;
  double separation;
} Candidate;

static int
compare_candidates (const void *a, const void *b)
{
  const Candidate *x = a, *y = b;
  if (x->separation != y->separation)
    return x->separation < y->separation ? -1 : 1;
  if (x->spectrum != y->spectrum)
    return x->spectrum - y->spectrum;
  return x->image - y->image;
}

typedef struct
{
  double dec;
  int image;
} DecEntry;

static int
compare_dec_entries (const void *a, const void *b)
{
  const DecEntry *x = a, *y = b;
  return (x->dec > y->dec) - (x->dec < y->dec);
}

/* Every spectrum–cutout pair closer than the match radius, closest first; each item is used
 * once. Cutouts are sorted by declination so each spectrum looks only at a narrow strip. */
static void
pair_by_position (Import *import)
{
  g_autoptr (GArray) by_dec = g_array_new (FALSE, FALSE, sizeof (DecEntry));
  for (guint i = 0; i < import->images->len; i++) {
    ImageItem *image = &g_array_index (import->images, ImageItem, i);
    if (isfinite (image->ra) && isfinite (image->dec)) {
      DecEntry entry = { image->dec, (int) i };
      g_array_append_val (by_dec, entry);
    }
  }
  g_array_sort (by_dec, compare_dec_entries);

  g_autoptr (GArray) candidates = g_array_new (FALSE, FALSE, sizeof (Candidate));
  double radius_degrees = import->match_radius / 3600.0;
  for (guint s = 0; s < import->spectra->len; s++) {
    SpectrumItem *spectrum = &g_array_index (import->spectra, SpectrumItem, s);
    if (!isfinite (spectrum->info.ra) || !isfinite (spectrum->info.dec))
      continue;
    /* First entry with dec >= spectrum dec − radius. */
    guint low = 0, high = by_dec->len;
    while (low < high) {
      guint middle = (low + high) / 2;
      if (g_array_index (by_dec, DecEntry, middle).dec < spectrum->info.dec - radius_degrees)
        low = middle + 1;
      else
        high = middle;
    }
    for (guint k = low; k < by_dec->len; k++) {
      const DecEntry *entry = &g_array_index (by_dec, DecEntry, k);
      if (entry->dec > spectrum->info.dec + radius_degrees)
        break;
      const ImageItem *image = &g_array_index (import->images, ImageItem, entry->image);
      double separation = separation_arcsec (spectrum->info.ra, spectrum->info.dec, image->ra,
                                             image->dec);
      if (separation <= import->match_radius) {
        Candidate candidate = { (int) s, entry->image, separation };
        g_array_append_val (candidates, candidate);
      }
    }
  }
  g_array_sort (candidates, compare_candidates);
  for (guint c = 0; c < candidates->len; c++) {
    const Candidate *candidate = &g_array_index (candidates, Candidate, c);
    SpectrumItem *spectrum = &g_array_index (import->spectra, SpectrumItem, candidate->spectrum);
    ImageItem *image = &g_array_index (import->images, ImageItem, candidate->image);
    if (spectrum->image >= 0 || image->spectrum >= 0)
      continue;
    spectrum->image = candidate->image;
    spectrum->separation = candidate->separation;
    image->spectrum = candidate->spectrum;
  }
}

/* Pairs images with spectra and lists what stays unpaired; FALSE when nothing pairs. */
static gboolean
pair_items (Import *import, int *n_pairs, GError **error)
{
  if (import->pair_by_position)
    pair_by_position (import);
  else if (!pair_by_id (import, error))
    return FALSE;

  *n_pairs = 0;
  for (guint s = 0; s < import->spectra->len; s++) {
    SpectrumItem *spectrum = &g_array_index (import->spectra, SpectrumItem, s);
    if (spectrum->image >= 0) {
      (*n_pairs)++;
      continue;
    }
    if (import->pair_by_position && isfinite (spectrum->info.ra))
      list_skipped (import, _("skipped spectrum %" PRId64 " (%s): no cutout within %g″"),
                    spectrum->info.id, spectrum_file (import, spectrum), import->match_radius);
    else if (import->pair_by_position)
      list_skipped (import, _("skipped spectrum %" PRId64 " (%s): its position is "
                              "unknown"),
                    spectrum->info.id, spectrum_file (import, spectrum));
    else if (spectrum->image == -2)
      list_skipped (import, _("skipped spectrum %" PRId64 " (%s): its cutout went to "
                              "an earlier spectrum with the same ID"),
                    spectrum->info.id, spectrum_file (import, spectrum));
    else
      list_skipped (import, _("skipped spectrum %" PRId64 " (%s): no cutout with "
                              "this ID"),
                    spectrum->info.id, spectrum_file (import, spectrum));
  }
  for (guint i = 0; i < import->images->len; i++) {
    ImageItem *image = &g_array_index (import->images, ImageItem, i);
    if (image->spectrum >= 0)
      continue;
    if (import->pair_by_position && isfinite (image->ra))
      list_skipped (import, _("skipped cutout %s: no spectrum within %g″"), image->path,
                    import->match_radius);
    else if (import->pair_by_position)
      list_skipped (import, _("skipped cutout %s: its position is unknown (give ra, dec in a "
                              "--cutout-list)"),
                    image->path);
    else if (image->has_id)
      list_skipped (import, _("skipped cutout %s: no spectrum with ID %" PRId64),
                    image->path, image->id);
    else
      list_skipped (import, _("skipped cutout %s: no ID in its name (give one in a "
                              "--cutout-list)"),
                    image->path);
  }
  if (*n_pairs == 0 && import->pair_by_position) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("no spectrum has a cutout within %g″ (%u spectra, %u cutouts); check the "
                   "positions or --match-radius"),
                 import->match_radius, import->spectra->len, import->images->len);
    return FALSE;
  }
  if (*n_pairs == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("no spectrum has a cutout with the same ID (%u spectra, %u cutouts); check "
                   "the IDs or use --pair-by=position"),
                 import->spectra->len, import->images->len);
    return FALSE;
  }
  return TRUE;
}

/* Writing -------------------------------------------------------------------------------- */

enum
{
  EXTRA_SPECTYPE,
  EXTRA_Z_ERR,
  EXTRA_ZWARN,
  EXTRA_SPEC_SOURCE,
  EXTRA_PLATE,
  EXTRA_MJD,
  EXTRA_FIBER,
  N_SPECTRUM_EXTRAS,
};

enum
{
  EXTRA_IMAGE_KIND,
  EXTRA_PIXSCALE_IN,
  N_IMAGE_EXTRAS,
};

/* The descriptions go into the catalogue's header (TCOMMn) and stay in English: FITS headers are
 * ASCII and read by programs in every locale. */
static const AclipExtraColumn spectrum_extras[N_SPECTRUM_EXTRAS] = {
  { "SPECTYPE", ACLIP_COLUMN_INT32, NULL,
    "spectral class: 0 unknown, 1 GALAXY, 2 QSO, 3 STAR (redrock SPECTYPE, SDSS CLASS)" },
  { "Z_ERR", ACLIP_COLUMN_FLOAT, NULL, "redshift uncertainty" },
  { "ZWARN", ACLIP_COLUMN_INT64, NULL,
    "redshift warning bits (DESI ZWARN, SDSS ZWARNING); -1 unknown" },
  { "SPEC_SOURCE", ACLIP_COLUMN_INT32, NULL,
    "spectrum source: 1 DESI coadd, 2 SDSS/BOSS spec" },
  { "PLATE", ACLIP_COLUMN_INT32, NULL, "SDSS plate; -1 for DESI" },
  { "MJD", ACLIP_COLUMN_INT32, NULL, "SDSS MJD; -1 for DESI" },
  { "FIBER", ACLIP_COLUMN_INT32, NULL, "SDSS fiber; -1 for DESI" },
};

static const AclipExtraColumn image_extras[N_IMAGE_EXTRAS] = {
  { "IMAGE_KIND", ACLIP_COLUMN_INT32, NULL,
    "image source: 1 FITS cube in nanomaggies, 2 JPEG/PNG inverted from the RGB mapping" },
  { "PIXSCALE_IN", ACLIP_COLUMN_FLOAT, "arcsec", "pixel scale of the cutout as read" },
};

static const AclipExtraColumn separation_extra = {
  "MATCH_SEP", ACLIP_COLUMN_FLOAT, "arcsec",
  "separation between the spectrum and cutout positions; NaN when unknown"
};

/* The command line, for the catalogue's header (before option parsing consumes it). */
static char *
describe_command_line (int argc, char **argv)
{
  g_autoptr (GString) text = g_string_new ("astroclip import");
  for (int i = 1; i < argc; i++) {
    g_autofree char *quoted = g_shell_quote (argv[i]);
    g_string_append_printf (text, " %s", strpbrk (argv[i], " '\"\\$") ? quoted : argv[i]);
  }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

typedef struct
{
  Import *import;
  AclipCatalogueWriter *writer;
  AclipDesiCoadd *open_coadd; /* the DESI file of the previous row, kept open */
  int open_coadd_index;
  gboolean with_images, with_spectra;
  AclipCutoutRequest request;
  float *image;   /* [3 × H × W] */
  float *flux;    /* [N_WAVE] */
  float *ivar;    /* [N_WAVE] */
  double *extras; /* [n_extra] */
  gint64 n_replaced;
  int n_skipped_spectra;
} RowWriter;

/* Reads one spectrum; FALSE with *skip set for a spectrum with no valid pixel. */
static gboolean
read_spectrum (RowWriter *rows, const SpectrumItem *spectrum, gboolean *skip, GError **error)
{
  g_autoptr (GError) read_error = NULL;
  gboolean ok;
  *skip = FALSE;
  if (spectrum->info.source == ACLIP_SPECTRUM_SOURCE_DESI) {
    if (rows->open_coadd == NULL || rows->open_coadd_index != spectrum->file) {
      const DesiFile *file = &g_array_index (rows->import->desi_files, DesiFile, spectrum->file);
      g_clear_pointer (&rows->open_coadd, aclip_desi_coadd_free);
      rows->open_coadd = aclip_desi_coadd_open (file->coadd, file->redrock, error);
      if (rows->open_coadd == NULL)
        return FALSE;
      rows->open_coadd_index = spectrum->file;
    }
    ok = aclip_desi_coadd_read (rows->open_coadd, spectrum->target, rows->flux, rows->ivar,
                                &read_error);
  } else {
    ok = aclip_sdss_read (g_ptr_array_index (rows->import->sdss_files, spectrum->file), NULL,
                          rows->flux, rows->ivar, NULL, &read_error);
  }
  if (ok)
    return TRUE;
  if (g_error_matches (read_error, ACLIP_ERROR, ACLIP_ERROR_EMPTY)) {
    list_skipped (rows->import, _("skipped: %s"), read_error->message);
    rows->n_skipped_spectra++;
    *skip = TRUE;
    return FALSE;
  }
  g_propagate_error (error, g_steal_pointer (&read_error));
  return FALSE;
}

static gboolean
write_row (RowWriter *rows, const SpectrumItem *spectrum, const ImageItem *image, GError **error)
{
  AclipGalaxy galaxy = { 0 };
  galaxy.id = spectrum ? spectrum->info.id : image->id;
  galaxy.ra = NAN;
  galaxy.dec = NAN;
  galaxy.z = NAN;
  galaxy.logmstar = NAN;
  for (int b = 0; b < 3; b++)
    galaxy.flux[b] = NAN;

  int n_extra = 0;
  if (spectrum) {
    gboolean skip = FALSE;
    if (!read_spectrum (rows, spectrum, &skip, error))
      return skip; /* a skipped spectrum is no failure: no row, no error */
    galaxy.ra = spectrum->info.ra;
    galaxy.dec = spectrum->info.dec;
    galaxy.z = (float) spectrum->info.z;
    for (int b = 0; b < 3; b++)
      galaxy.flux[b] = spectrum->info.ls_flux[b];
    galaxy.spectrum = rows->flux;
    galaxy.spectrum_ivar = rows->ivar;
    double *extra = rows->extras;
    extra[EXTRA_SPECTYPE] = spectrum->info.spectype;
    extra[EXTRA_Z_ERR] = spectrum->info.z_err;
    extra[EXTRA_ZWARN] = (double) spectrum->info.zwarn;
    extra[EXTRA_SPEC_SOURCE] = spectrum->info.source;
    extra[EXTRA_PLATE] = spectrum->info.plate;
    extra[EXTRA_MJD] = spectrum->info.mjd;
    extra[EXTRA_FIBER] = spectrum->info.fiber;
    n_extra = N_SPECTRUM_EXTRAS;
  }
  if (image) {
    AclipCutoutInfo info;
    gint64 n_replaced = 0;
    rows->request.input_pixscale = image->pixscale_in;
    if (!aclip_cutout_read (image->path, &rows->request, rows->image, &info, &n_replaced,
                            error))
      return FALSE;
    rows->n_replaced += n_replaced;
    if (!isfinite (galaxy.ra) || !isfinite (galaxy.dec)) {
      galaxy.ra = image->ra;
      galaxy.dec = image->dec;
    }
    galaxy.image = rows->image;
    double *extra = rows->extras + n_extra;
    extra[EXTRA_IMAGE_KIND] = info.kind == ACLIP_CUTOUT_FITS ? 1 : 2;
    extra[EXTRA_PIXSCALE_IN] = info.pixscale > 0 ? info.pixscale : image->pixscale_in;
    n_extra += N_IMAGE_EXTRAS;
  }
  if (spectrum && image)
    rows->extras[n_extra++] = spectrum->separation;
  return aclip_catalogue_writer_append (rows->writer, &galaxy, rows->extras, error);
}

static gboolean
write_catalogue (Import *import, const char *history, gint64 *n_rows, GError **error)
{
  gboolean with_images = import->images->len > 0;
  gboolean with_spectra = import->spectra->len > 0;

  AclipExtraColumn extras[N_SPECTRUM_EXTRAS + N_IMAGE_EXTRAS + 1];
  int n_extra = 0;
  if (with_spectra)
    for (int i = 0; i < N_SPECTRUM_EXTRAS; i++)
      extras[n_extra++] = spectrum_extras[i];
  if (with_images)
    for (int i = 0; i < N_IMAGE_EXTRAS; i++)
      extras[n_extra++] = image_extras[i];
  if (with_images && with_spectra)
    extras[n_extra++] = separation_extra;

  AclipCatalogueLayout layout;
  int size = with_images ? import->image_size : 0;
  aclip_catalogue_layout_init_desi (&layout, size, size);
  if (!with_spectra)
    layout.n_wave = 0;
  layout.pixscale = import->pixscale;
  layout.image_quantum = import->image_quantum;
  layout.n_extra = n_extra;
  layout.extra = extras;
  layout.history = history;

  g_autoptr (AclipCatalogueWriter) writer = aclip_catalogue_writer_new (import->out_path,
                                                                        &layout, error);
  if (writer == NULL)
    return FALSE;

  RowWriter rows = { 0 };
  rows.import = import;
  rows.writer = writer;
  rows.open_coadd_index = -1;
  rows.request.height = size;
  rows.request.width = size;
  rows.request.pixscale = import->pixscale;
  g_autofree float *image = with_images ? g_new (float, 3 * (gsize) size * size) : NULL;
  g_autofree float *flux = g_new (float, ACLIP_DESI_N_WAVE);
  g_autofree float *ivar = g_new (float, ACLIP_DESI_N_WAVE);
  g_autofree double *extra_values = g_new0 (double, MAX (n_extra, 1));
  rows.image = image;
  rows.flux = flux;
  rows.ivar = ivar;
  rows.extras = extra_values;

  gboolean ok = TRUE;
  if (with_spectra) {
    for (guint s = 0; ok && s < import->spectra->len; s++) {
      const SpectrumItem *spectrum = &g_array_index (import->spectra, SpectrumItem, s);
      if (with_images && spectrum->image < 0)
        continue;
      const ImageItem *paired = with_images
                                    ? &g_array_index (import->images, ImageItem, spectrum->image)
                                    : NULL;
      ok = write_row (&rows, spectrum, paired, error);
    }
  } else {
    for (guint i = 0; ok && i < import->images->len; i++)
      ok = write_row (&rows, NULL, &g_array_index (import->images, ImageItem, i), error);
  }
  g_clear_pointer (&rows.open_coadd, aclip_desi_coadd_free);
  if (!ok)
    return FALSE; /* the writer's cleanup deletes the temporary file */

  *n_rows = aclip_catalogue_writer_n_rows (writer);
  if (*n_rows == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s: nothing to write: every spectrum was skipped"), import->out_path);
    return FALSE;
  }
  if (rows.n_replaced > 0)
    g_printerr (_("astroclip import: %" PRId64 " non-finite cutout pixels were taken "
                  "as 0\n"),
                rows.n_replaced);
  gint64 n_clipped = aclip_catalogue_writer_n_clipped (writer);
  if (n_clipped > 0)
    g_printerr (_("astroclip import: %" PRId64 " image pixels were clipped by the "
                  "16-bit quantisation\n"),
                n_clipped);
  return aclip_catalogue_writer_finish (writer, error);
}

/* Entry point ---------------------------------------------------------------------------- */

static gboolean
check_options (Import *import, GError **error)
{
  if (import->out_path == NULL) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("give the catalogue to write with --out"));
    return FALSE;
  }
  if (!import->desi_arguments && !import->sdss_arguments && !import->cutout_arguments &&
      !import->cutout_lists) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("give inputs with --desi, --sdss, --cutout or --cutout-list"));
    return FALSE;
  }
  if (import->image_size < 8 || import->image_size > 1024) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("--image-size %d is outside 8…1024"), import->image_size);
    return FALSE;
  }
  if (!(import->pixscale > 0) || !(import->pixscale_in > 0) || !(import->match_radius > 0) ||
      !isfinite (import->pixscale) || !isfinite (import->pixscale_in) ||
      !isfinite (import->match_radius)) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("--pixscale, --pixscale-in and --match-radius must be positive"));
    return FALSE;
  }
  if (!(import->image_quantum >= 0)) {
    g_set_error_literal (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                         _("--image-quantum must be 0 or positive"));
    return FALSE;
  }
  if (import->pair_by == NULL || strcmp (import->pair_by, "id") == 0) {
    import->pair_by_position = FALSE;
  } else if (strcmp (import->pair_by, "position") == 0) {
    import->pair_by_position = TRUE;
  } else {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("--pair-by must be “id” or “position”, not “%s”"), import->pair_by);
    return FALSE;
  }
  if (import->id_pattern) {
    g_autoptr (GError) regex_error = NULL;
    import->id_regex = g_regex_new (import->id_pattern, G_REGEX_OPTIMIZE, 0, &regex_error);
    if (import->id_regex == NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG, _("--id-pattern: %s"),
                   regex_error->message);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
read_inputs (Import *import, GError **error)
{
  for (char **argument = import->desi_arguments; argument && *argument; argument++)
    if (!add_desi (import, *argument, error))
      return FALSE;
  for (char **argument = import->sdss_arguments; argument && *argument; argument++)
    if (!add_sdss (import, *argument, error))
      return FALSE;
  for (char **argument = import->cutout_arguments; argument && *argument; argument++)
    if (!add_image (import, *argument, FALSE, 0, NAN, NAN, import->pixscale_in, error))
      return FALSE;
  for (char **argument = import->cutout_lists; argument && *argument; argument++)
    if (!add_image_list (import, *argument, error))
      return FALSE;

  if (import->spectra->len == 0 && import->images->len > 0) {
    for (guint i = 0; i < import->images->len; i++) {
      ImageItem *image = &g_array_index (import->images, ImageItem, i);
      if (!image->has_id) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                     _("%s: cannot tell the cutout's ID from its name; list it in a "
                       "--cutout-list with an id column"),
                     image->path);
        return FALSE;
      }
    }
  }
  return TRUE;
}

int
astroclip_import_main (int argc, char **argv)
{
  Import import = { 0 };
  import.image_size = 152;
  import.pixscale = ACLIP_LEGACY_PIXSCALE;
  import.pixscale_in = ACLIP_LEGACY_PIXSCALE;
  import.match_radius = 1.0;

  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &import.out_path,
      N_("Catalogue to write (replaced only when the import succeeds)"), N_("FILE") },
    { "desi", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &import.desi_arguments,
      N_("DESI coadd file, with its redrock file after a colon unless it lies beside it "
         "(redrock-*.fits or zbest-*.fits); repeatable"),
      N_("COADD[:REDROCK]") },
    { "sdss", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &import.sdss_arguments,
      N_("SDSS, BOSS or eBOSS spec-PLATE-MJD-FIBER.fits file; repeatable"), N_("SPEC") },
    { "cutout", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &import.cutout_arguments,
      N_("Legacy Surveys cutout: FITS cube (nanomaggies, BANDS keyword, WCS) or JPEG/PNG "
         "colour image; its ID is taken from its name; repeatable"),
      N_("FILE") },
    { "cutout-list", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &import.cutout_lists,
      N_("CSV of cutouts with a header naming columns file and any of id, ra, dec, pixscale "
         "(files relative to the list); repeatable"),
      N_("CSV") },
    { "image-size", 0, 0, G_OPTION_ARG_INT, &import.image_size,
      N_("Catalogue image size in pixels (default 152)"), N_("N") },
    { "pixscale", 0, 0, G_OPTION_ARG_DOUBLE, &import.pixscale,
      N_("Catalogue pixel scale in arcsec/pixel (default 0.262)"), N_("ARCSEC") },
    { "pixscale-in", 0, 0, G_OPTION_ARG_DOUBLE, &import.pixscale_in,
      N_("Pixel scale of JPEG/PNG cutouts, and of FITS cutouts without a WCS, in arcsec/pixel "
         "(default 0.262, the sky viewer's; many saved cutouts are 0.1)"),
      N_("ARCSEC") },
    { "pair-by", 0, 0, G_OPTION_ARG_STRING, &import.pair_by,
      N_("Pair cutouts with spectra by “id” (default) or “position”"), N_("HOW") },
    { "match-radius", 0, 0, G_OPTION_ARG_DOUBLE, &import.match_radius,
      N_("Largest separation of a pair when pairing by position, arcsec (default 1.0)"),
      N_("ARCSEC") },
    { "id-pattern", 0, 0, G_OPTION_ARG_STRING, &import.id_pattern,
      N_("Regular expression finding a cutout's ID in its file name (first group, or the "
         "match); default: the longest run of digits"),
      N_("REGEX") },
    { "image-quantum", 0, 0, G_OPTION_ARG_DOUBLE, &import.image_quantum,
      N_("Store images as 16-bit integers in steps of this many nanomaggies (default 0: "
         "32-bit floats)"),
      N_("NMGY") },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &import.quiet,
      N_("Print nothing on success"), NULL },
    { NULL },
  };

  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context, _("Builds a catalogue from Legacy Surveys cutouts (FITS cubes or JPEG/PNG) and "
                 "DESI or SDSS/BOSS spectra. Spectra go onto the DESI grid (3600–9824 Å, 0.8 Å); "
                 "images are resampled to the catalogue's size and pixel scale (area-weighted, "
                 "flux-conserving)."));
  g_option_context_set_description (
      context, _("With both cutouts and spectra, each row is a pair; unpaired items are listed "
                 "and skipped. With only one kind, each item is a row.\n\n"
                 "Example:\n  astroclip import --out cat.fits --desi coadd-1.fits --cutout-list "
                 "cutouts.csv --pair-by=position"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);

  int status = 0;
  g_autoptr (GError) error = NULL;
  g_autofree char *history = describe_command_line (argc, argv);
  if (!astroclip_parse_options (context, &argc, &argv, "import")) {
    status = 2;
  } else if (argc > 1) {
    g_printerr (_("astroclip import: unexpected argument “%s” (give inputs with --desi, --sdss, "
                  "--cutout or --cutout-list)\n"),
                argv[1]);
    status = 2;
  } else if (!check_options (&import, &error)) {
    g_printerr ("astroclip import: %s\n", error->message);
    status = 2;
  } else {
    import.desi_files = g_array_new (FALSE, TRUE, sizeof (DesiFile));
    import.sdss_files = g_ptr_array_new_with_free_func (g_free);
    import.images = g_array_new (FALSE, TRUE, sizeof (ImageItem));
    import.spectra = g_array_new (FALSE, TRUE, sizeof (SpectrumItem));
    int n_pairs = 0;
    gint64 n_rows = 0;
    if (!read_inputs (&import, &error) ||
        (import.images->len > 0 && import.spectra->len > 0 &&
         !pair_items (&import, &n_pairs, &error)) ||
        !write_catalogue (&import, history, &n_rows, &error)) {
      status = astroclip_report_error ("import", error);
    } else {
      if (import.n_listed > MAX_LISTED)
        g_printerr (_("astroclip import: %d items skipped in all\n"), import.n_listed);
      if (!import.quiet)
        printf (_("wrote %" PRId64 " rows to %s (from %u spectra and %u cutouts)\n"),
                n_rows, import.out_path, import.spectra->len, import.images->len);
    }
  }
  import_clear (&import);
  return status;
}

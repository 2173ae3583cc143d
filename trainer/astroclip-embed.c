/* astroclip embed — embeds every galaxy of a catalogue with an aligned AstroCLIP model
 * (core/aclip-model.h) into an embeddings file (core/aclip-embeddings.h, docs/embeddings.md).
 *
 * Both modalities are embedded where the catalogue holds them; a catalogue without images or
 * without spectra gives a file with only the other column. A galaxy whose spectrum has no good
 * pixel (or whose image is all zero or not finite) gets a row of NaN for that modality. The
 * file's MODEL keyword is the checkpoint's checksum (aclip_checkpoint_hash over the whole
 * file) as 16 hexadecimal digits, CATALOG the catalogue's file name.
 */
#include "astroclip-commands.h"
#include "astroclip-train.h"

#include "aclip-catalogue.h"
#include "aclip-checkpoint.h"
#include "aclip-embeddings.h"
#include "aclip-error.h"
#include "aclip-model.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define COMMAND            "embed"
#define DEFAULT_BATCH_SIZE 64

static gboolean
spectrum_present (const float *flux, const float *ivar, int n_wave)
{
  for (int i = 0; i < n_wave; i++)
    if (ivar[i] > 0 && isfinite (ivar[i]) && isfinite (flux[i]))
      return TRUE;
  return FALSE;
}

gboolean
astroclip_image_present (const float *image, gsize n)
{
  gboolean nonzero = FALSE;
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (image[i]))
      continue;
    if (image[i] != 0)
      nonzero = TRUE;
  }
  return nonzero;
}

/* The checkpoint's checksum: aclip_checkpoint_hash over the file's bytes, as hex text. */
static char *
checkpoint_checksum (const char *path, GError **error)
{
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, error);
  if (file == NULL)
    return NULL;
  guint64 hash = aclip_checkpoint_hash (g_mapped_file_get_contents (file),
                                        g_mapped_file_get_length (file));
  return g_strdup_printf ("%016" G_GINT64_MODIFIER "x", hash);
}

static int
embed (const char *catalogue_path, const char *model_path, const char *out_path, int batch_size,
       const AstroclipTrainOptions *options)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (catalogue_path, &error);
  if (catalogue == NULL)
    return astroclip_report_error (COMMAND, error);
  gboolean has_image = aclip_catalogue_has_images (catalogue);
  gboolean has_spectrum = aclip_catalogue_has_spectra (catalogue);
  if (!has_image && !has_spectrum) {
    g_printerr (_("astroclip %s: %s holds neither images nor spectra\n"), COMMAND,
                catalogue_path);
    return 1;
  }
  g_autoptr (AclipThreadPool) pool = astroclip_train_setup_threads (options);
  g_autoptr (AclipModel) model = aclip_model_load (model_path, batch_size, &error);
  if (model == NULL)
    return astroclip_report_error (COMMAND, error);
  const AclipModelConfig *config = aclip_model_get_config (model);
  int n_wave = has_spectrum ? aclip_catalogue_n_wave (catalogue) : 0;
  if (has_spectrum && n_wave != config->spectrum.n_wave) {
    g_printerr (_("astroclip %s: the catalogue’s spectra have %d pixels, the model’s %d\n"),
                COMMAND, n_wave, config->spectrum.n_wave);
    return 1;
  }
  int height = aclip_catalogue_image_height (catalogue);
  int width = aclip_catalogue_image_width (catalogue);
  g_autofree char *checksum = checkpoint_checksum (model_path, &error);
  if (checksum == NULL)
    return astroclip_report_error (COMMAND, error);
  g_autofree char *catalogue_name = g_path_get_basename (catalogue_path);

  int d = aclip_model_dim (model);
  AclipEmbeddingsLayout layout = { d, has_image, has_spectrum, checksum, catalogue_name };
  g_autoptr (AclipEmbeddingsWriter) writer =
      aclip_embeddings_writer_new (out_path, &layout, &error);
  if (writer == NULL)
    return astroclip_report_error (COMMAND, error);

  gsize image_size = (gsize) 3 * height * width, b = (gsize) batch_size;
  g_autofree gint64 *ids = g_new (gint64, b);
  g_autofree float *images = has_image ? g_new (float, b * image_size) : NULL;
  g_autofree float *flux = has_spectrum ? g_new (float, b * n_wave) : NULL;
  g_autofree float *ivar = has_spectrum ? g_new (float, b * n_wave) : NULL;
  g_autofree float *image_emb = has_image ? g_new (float, b * d) : NULL;
  g_autofree float *spectrum_emb = has_spectrum ? g_new (float, b * d) : NULL;
  g_autofree gboolean *image_ok = g_new (gboolean, b);
  g_autofree gboolean *spectrum_ok = g_new (gboolean, b);

  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  gint64 n_batches = (n_rows + batch_size - 1) / batch_size;
  g_autoptr (AstroclipProgress) progress =
      astroclip_progress_new (options->progress, COMMAND, n_batches);
  g_autoptr (AstroclipStopWatch) stop = astroclip_stop_watch_new ();
  for (gint64 first = 0, k = 0; first < n_rows; first += batch_size, k++) {
    int n = (int) MIN ((gint64) batch_size, n_rows - first);
    for (int i = 0; i < n; i++) {
      AclipGalaxy galaxy = { 0 };
      galaxy.image = has_image ? images + i * image_size : NULL;
      galaxy.spectrum = has_spectrum ? flux + (gsize) i * n_wave : NULL;
      galaxy.spectrum_ivar = has_spectrum ? ivar + (gsize) i * n_wave : NULL;
      if (!aclip_catalogue_read_galaxy (catalogue, first + i, &galaxy, &error))
        return astroclip_report_error (COMMAND, error);
      ids[i] = galaxy.id;
      image_ok[i] = has_image && astroclip_image_present (galaxy.image, image_size);
      spectrum_ok[i] =
          has_spectrum && spectrum_present (galaxy.spectrum, galaxy.spectrum_ivar, n_wave);
    }
    if (has_image) {
      memcpy (image_emb, aclip_model_embed_images (model, pool, images, n, height, width),
              sizeof (float) * (gsize) n * d);
      for (int i = 0; i < n; i++)
        if (!image_ok[i])
          for (int j = 0; j < d; j++)
            image_emb[(gsize) i * d + j] = NAN;
    }
    if (has_spectrum) {
      memcpy (spectrum_emb, aclip_model_embed_spectra (model, pool, flux, ivar, n),
              sizeof (float) * (gsize) n * d);
      for (int i = 0; i < n; i++)
        if (!spectrum_ok[i])
          for (int j = 0; j < d; j++)
            spectrum_emb[(gsize) i * d + j] = NAN;
    }
    if (!aclip_embeddings_writer_append (writer, n, ids, image_emb, spectrum_emb, &error))
      return astroclip_report_error (COMMAND, error);
    astroclip_progress_update (progress, k + 1, 0, NAN, NAN, n);
    if (astroclip_stop_watch_requested (stop)) {
      astroclip_progress_done (progress, "stopped", k + 1, _("stopped: no file written"));
      return 1;
    }
  }
  if (!aclip_embeddings_writer_finish (writer, &error))
    return astroclip_report_error (COMMAND, error);
  g_autofree char *message = g_strdup_printf (_("%" PRId64 " galaxies embedded into %s"),
                                              n_rows, out_path);
  astroclip_progress_done (progress, "finished", n_batches, message);
  return 0;
}

int
astroclip_embed_main (int argc, char **argv)
{
  g_autofree char *catalogue = NULL, *model = NULL, *out = NULL;
  int batch_size = 0;
  AstroclipTrainOptions options;
  astroclip_train_options_init (&options);
  const GOptionEntry entries[] = {
    { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &catalogue, N_("Catalogue to embed"),
      N_("FILE") },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, N_("Checkpoint of astroclip align"),
      N_("FILE") },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, N_("Embeddings file to write"), N_("FILE") },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &batch_size,
      N_("Galaxies per batch (default 64)"), N_("N") },
    { NULL },
  };
  g_autoptr (GOptionContext) context =
      g_option_context_new (_("— embed every galaxy of a catalogue with an aligned model"));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  /* Of the common options only --threads and --progress apply. */
  const GOptionEntry *common = astroclip_train_option_entries (&options);
  GOptionEntry used[3] = { { NULL } };
  int n_used = 0;
  for (int i = 0; common[i].long_name != NULL; i++)
    if (strcmp (common[i].long_name, "threads") == 0 ||
        strcmp (common[i].long_name, "progress") == 0)
      used[n_used++] = common[i];
  g_option_context_add_main_entries (context, used, GETTEXT_PACKAGE);
  int status = 2;
  g_autoptr (GError) error = NULL;
  if (!astroclip_parse_options (context, &argc, &argv, COMMAND))
    goto out;
  if (!astroclip_train_options_finish (&options, &error)) {
    astroclip_report_error (COMMAND, error);
    goto out;
  }
  if (argc > 1 || catalogue == NULL || model == NULL || out == NULL || batch_size < 0) {
    g_printerr ("astroclip %s: %s\n", COMMAND,
                argc > 1 ? _("unexpected argument")
                         : _("give --catalogue, --model and --out (and a positive --batch-size)"));
    goto out;
  }
  status = embed (catalogue, model, out, batch_size > 0 ? batch_size : DEFAULT_BATCH_SIZE,
                  &options);
out:
  astroclip_train_options_clear (&options);
  return status;
}

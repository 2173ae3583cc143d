/* bench-embed — embedding throughput of an aligned AstroCLIP model (core/aclip-model.h), the
 * C half of bench/bench-embed.sh (bench/bench_embed_torch.py is PyTorch's, with the same
 * model and weights).
 *
 * Reads the first --n galaxies of a catalogue into memory (not timed), loads the checkpoint,
 * then embeds all of them, both modalities, in batches of --batch exactly as `astroclip embed`
 * does (aclip_model_embed_images: centre crop, block means and RGB mapping, the image encoder
 * with BN in evaluation mode and its head; aclip_model_embed_spectra: standardisation,
 * windows, the transformer and its head): --warmup batches first, then --reps timed passes
 * over all the galaxies. What is timed is what bench_embed_torch.py times: the input arrays
 * are in memory; the preprocessing and both models are included; reading the catalogue and
 * writing the embeddings file are not.
 *
 * Prints one JSON line: every pass's wall time, galaxies per second (of the median pass), the
 * seconds per pass spent on images and on spectra (medians), and "foreign_load", the cores'
 * worth of CPU other processes used meanwhile.
 */
#include "aclip-catalogue.h"
#include "aclip-model.h"
#include "aclip-parallel.h"
#include "bench-support.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char *model_path = NULL;
static char *catalogue_path = NULL;
static gint64 n_galaxies = 512;
static int batch = 64;
static int n_threads = 2;
static int reps = 3;
static int warmup = 2;

static GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Aligned checkpoint", "FILE" },
  { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &catalogue_path, "Catalogue", "FILE" },
  { "n", 'n', 0, G_OPTION_ARG_INT64, &n_galaxies,
    "Galaxies, the first of the catalogue (512; 0: all)", "N" },
  { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Galaxies per batch (64)", "B" },
  { "threads", 'j', 0, G_OPTION_ARG_INT, &n_threads, "Threads (2)", "N" },
  { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, "Timed passes over the galaxies (3)", "N" },
  { "warmup", 'w', 0, G_OPTION_ARG_INT, &warmup, "Batches before timing (2)", "N" },
  { NULL },
};


/* The galaxies in memory. */
typedef struct
{
  gint64 n;
  int height, width, n_wave;
  float *images; /* [n, 3, H, W] or NULL */
  float *flux;   /* [n, n_wave] or NULL */
  float *ivar;
} Galaxies;

static gboolean
read_galaxies (const char *path, gint64 limit, Galaxies *g, GError **error)
{
  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (path, error);
  if (catalogue == NULL)
    return FALSE;
  gint64 rows = aclip_catalogue_n_rows (catalogue);
  g->n = limit > 0 ? MIN (limit, rows) : rows;
  g->height = aclip_catalogue_image_height (catalogue);
  g->width = aclip_catalogue_image_width (catalogue);
  g->n_wave = aclip_catalogue_n_wave (catalogue);
  gsize image_size = (gsize) 3 * g->height * g->width;
  g->images = aclip_catalogue_has_images (catalogue) ? g_new (float, g->n *image_size) : NULL;
  g->flux = g->n_wave > 0 ? g_new (float, g->n *(gsize) g->n_wave) : NULL;
  g->ivar = g->n_wave > 0 ? g_new (float, g->n *(gsize) g->n_wave) : NULL;
  for (gint64 i = 0; i < g->n; i++) {
    AclipGalaxy galaxy = { 0 };
    galaxy.image = g->images ? g->images + i * image_size : NULL;
    galaxy.spectrum = g->flux ? g->flux + i * g->n_wave : NULL;
    galaxy.spectrum_ivar = g->ivar ? g->ivar + i * g->n_wave : NULL;
    if (!aclip_catalogue_read_galaxy (catalogue, i, &galaxy, error))
      return FALSE;
  }
  return TRUE;
}

/* Embeds galaxies [first, first + n): images, then spectra; adds the seconds of each. */
static void
embed_batch (AclipModel *model, AclipThreadPool *pool, const Galaxies *g, gint64 first, int n,
             double *image_s, double *spectrum_s)
{
  gint64 t0 = g_get_monotonic_time ();
  if (g->images != NULL)
    aclip_model_embed_images (model, pool, g->images + first * 3 * g->height * g->width, n,
                              g->height, g->width);
  gint64 t1 = g_get_monotonic_time ();
  if (g->flux != NULL)
    aclip_model_embed_spectra (model, pool, g->flux + first * g->n_wave,
                               g->ivar + first * g->n_wave, n);
  gint64 t2 = g_get_monotonic_time ();
  *image_s += (double) (t1 - t0) * 1e-6;
  *spectrum_s += (double) (t2 - t1) * 1e-6;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_add_main_entries (context, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    fprintf (stderr, "bench-embed: %s\n", error->message);
    return 2;
  }
  if (model_path == NULL || catalogue_path == NULL || batch < 1 || n_threads < 1 || reps < 1 ||
      warmup < 0 || n_galaxies < 0) {
    fprintf (stderr, "bench-embed: give --model and --catalogue (and positive sizes)\n");
    return 2;
  }

  Galaxies g = { 0 };
  if (!read_galaxies (catalogue_path, n_galaxies, &g, &error)) {
    fprintf (stderr, "bench-embed: %s\n", error->message);
    return 1;
  }
  g_autoptr (AclipModel) model = aclip_model_load (model_path, batch, &error);
  if (model == NULL) {
    fprintf (stderr, "bench-embed: %s\n", error->message);
    return 1;
  }
  if (g.flux != NULL && g.n_wave != aclip_model_get_config (model)->spectrum.n_wave) {
    fprintf (stderr, "bench-embed: %s: the spectra have %d pixels, the model's %d\n",
             catalogue_path, g.n_wave, aclip_model_get_config (model)->spectrum.n_wave);
    return 1;
  }
  aclip_set_blas_threads (n_threads);
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (n_threads);

  int n_batches = (int) ((g.n + batch - 1) / batch);
  double ignored_image = 0.0, ignored_spectrum = 0.0;
  for (int k = 0; k < warmup; k++) {
    gint64 first = (gint64) (k % n_batches) * batch;
    embed_batch (model, pool, &g, first, (int) MIN ((gint64) batch, g.n - first), &ignored_image,
                 &ignored_spectrum);
  }

  double *times = g_new (double, reps), *image_times = g_new (double, reps);
  double *spectrum_times = g_new (double, reps);
  CpuSample before, after;
  cpu_sample (&before);
  for (int r = 0; r < reps; r++) {
    image_times[r] = spectrum_times[r] = 0.0;
    gint64 start = g_get_monotonic_time ();
    for (gint64 first = 0; first < g.n; first += batch)
      embed_batch (model, pool, &g, first, (int) MIN ((gint64) batch, g.n - first), &image_times[r],
                   &spectrum_times[r]);
    times[r] = (double) (g_get_monotonic_time () - start) * 1e-6;
  }
  cpu_sample (&after);

  printf ("{\"engine\":\"ours\",\"threads\":%d,\"batch\":%d,\"n_galaxies\":%" G_GINT64_FORMAT
          ",\"times_s\":[",
          n_threads, batch, g.n);
  for (int r = 0; r < reps; r++)
    printf (r ? ",%.4f" : "%.4f", times[r]);
  double all = median_of (times, reps);
  printf ("],\"galaxies_per_s\":%.2f,\"image_s\":%.4f,\"spectrum_s\":%.4f,"
          "\"foreign_load\":%.3f}\n",
          (double) g.n / all, median_of (image_times, reps), median_of (spectrum_times, reps),
          foreign_load (&before, &after));
  g_free (times);
  g_free (image_times);
  g_free (spectrum_times);
  g_free (g.images);
  g_free (g.flux);
  g_free (g.ivar);
  return 0;
}

/* gv-astroclip-engine.c — the AstroCLIP plugin's engine (see the header): model, embeddings,
 * look-ups, estimates, map and export, all callable from any thread. */
#include "gv-astroclip-engine.h"

#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-eval.h"
#include "aclip-fits.h"

#include "gv-config.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* Paths ------------------------------------------------------------------------------------ */

/* Whether this process runs from the build tree (as gv_application_is_uninstalled, without
 * pulling GTK into the engine). */
static gboolean
running_uninstalled (void)
{
  static gsize once = 0;
  static gboolean uninstalled = FALSE;
  if (g_once_init_enter (&once)) {
    g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
    g_autofree char *root = g_strconcat (GV_BUILD_ROOT, G_DIR_SEPARATOR_S, NULL);
    uninstalled = exe != NULL && g_str_has_prefix (exe, root);
    g_once_init_leave (&once, 1);
  }
  return uninstalled;
}

char *
gv_astroclip_find_default_model (void)
{
  const char *from_env = g_getenv ("GALAXY_VIEWER_MODEL");
  if (from_env != NULL && *from_env != '\0')
    return g_file_test (from_env, G_FILE_TEST_IS_REGULAR) ? g_strdup (from_env) : NULL;
  if (running_uninstalled ()) {
    /* The build tree's copy first (a model trained by a meson target), then the source's. */
    const char *roots[] = { GV_BUILD_ROOT, GV_SOURCE_ROOT };
    for (guint i = 0; i < G_N_ELEMENTS (roots); i++) {
      g_autofree char *path =
          g_build_filename (roots[i], "data", "models", "astroclip-default.ckpt", NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
    }
  }
  g_autofree char *installed =
      g_build_filename (GV_PKGDATADIR, "models", "astroclip-default.ckpt", NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&installed);
  return NULL;
}

char *
gv_astroclip_find_trainer (void)
{
  const char *from_env = g_getenv ("ASTROCLIP");
  if (from_env != NULL && *from_env != '\0' && g_file_test (from_env, G_FILE_TEST_IS_EXECUTABLE))
    return g_strdup (from_env);
  if (running_uninstalled ()) {
    g_autofree char *built = g_build_filename (GV_BUILD_ROOT, "trainer", "astroclip", NULL);
    if (g_file_test (built, G_FILE_TEST_IS_EXECUTABLE))
      return g_steal_pointer (&built);
  }
  return g_find_program_in_path ("astroclip");
}

/* NAME of DIR/NAME.fits (the extension removed when it is .fits or .fit). */
static char *
catalogue_stem (const char *catalogue_path)
{
  g_autofree char *base = g_path_get_basename (catalogue_path);
  for (const char *ext = ".fits"; ext; ext = strcmp (ext, ".fits") == 0 ? ".fit" : NULL)
    if (g_str_has_suffix (base, ext)) {
      base[strlen (base) - strlen (ext)] = '\0';
      break;
    }
  return g_steal_pointer (&base);
}

static char *
cache_path_for (const char *catalogue_path)
{
  g_autofree char *absolute = g_canonicalize_filename (catalogue_path, NULL);
  g_autofree char *stem = catalogue_stem (catalogue_path);
  guint hash = g_str_hash (absolute);
  g_autofree char *name = g_strdup_printf ("%s-%08x.embeddings.fits", stem, hash);
  return g_build_filename (g_get_user_cache_dir (), "galaxy-viewer", "embeddings", name, NULL);
}

/* Whether the file's CATALOG keyword is empty or names this catalogue. Only the header is
 * read. */
static gboolean
embeddings_match_catalogue (const char *path, const char *catalogue_path)
{
  g_autoptr (GError) error = NULL;
  AclipFits *fits = aclip_fits_open (path, FALSE, &error);
  if (fits == NULL)
    return FALSE;
  gboolean ok = FALSE;
  if (aclip_fits_move_to_name (fits, "EMBEDDINGS", NULL, &error)) {
    g_autofree char *named = aclip_fits_has_key (fits, "CATALOG")
                                 ? aclip_fits_read_key_string (fits, "CATALOG", NULL)
                                 : g_strdup ("");
    g_autofree char *base = g_path_get_basename (catalogue_path);
    g_autofree char *named_base = named && *named ? g_path_get_basename (named) : NULL;
    ok = named == NULL || *named == '\0' || strcmp (named_base, base) == 0;
  }
  aclip_fits_close (fits);
  return ok;
}

char *
gv_astroclip_find_embeddings (const char *catalogue_path)
{
  g_return_val_if_fail (catalogue_path != NULL, NULL);
  g_autofree char *dir = g_path_get_dirname (catalogue_path);
  g_autofree char *stem = catalogue_stem (catalogue_path);
  g_autoptr (GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (candidates, g_strdup_printf ("%s.embeddings.fits", stem));
  g_ptr_array_add (candidates, g_strdup_printf ("%s-embeddings.fits", stem));
  for (const char *suffix = "-catalogue"; suffix;
       suffix = strcmp (suffix, "-catalogue") == 0 ? "-catalog" : NULL)
    if (g_str_has_suffix (stem, suffix) && strlen (stem) > strlen (suffix))
      g_ptr_array_add (candidates, g_strdup_printf ("%.*s-embeddings.fits",
                                                    (int) (strlen (stem) - strlen (suffix)),
                                                    stem));
  for (guint i = 0; i < candidates->len; i++) {
    g_autofree char *path = g_build_filename (dir, candidates->pdata[i], NULL);
    if (g_file_test (path, G_FILE_TEST_IS_REGULAR) &&
        embeddings_match_catalogue (path, catalogue_path))
      return g_steal_pointer (&path);
  }
  g_autofree char *cached = cache_path_for (catalogue_path);
  if (g_file_test (cached, G_FILE_TEST_IS_REGULAR) &&
      embeddings_match_catalogue (cached, catalogue_path))
    return g_steal_pointer (&cached);
  return NULL;
}

char *
gv_astroclip_embeddings_path_for (const char *catalogue_path)
{
  g_return_val_if_fail (catalogue_path != NULL, NULL);
  g_autofree char *dir = g_path_get_dirname (catalogue_path);
  if (g_access (dir, W_OK) == 0) {
    g_autofree char *stem = catalogue_stem (catalogue_path);
    g_autofree char *name = g_strdup_printf ("%s.embeddings.fits", stem);
    return g_build_filename (dir, name, NULL);
  }
  char *cached = cache_path_for (catalogue_path);
  g_autofree char *cache_dir = g_path_get_dirname (cached);
  g_mkdir_with_parents (cache_dir, 0700);
  return cached;
}

/* The model -------------------------------------------------------------------------------- */

struct _GvAstroclipModel
{
  gatomicrefcount ref_count;
  char *path;
  char *checksum;
  char *training_text; /* the checkpoint's [training] group summary, or NULL */
  GMutex lock;         /* the model's activations and the pool: one embedding at a time */
  AclipModel *model;
  AclipThreadPool *pool;
};

static char *
file_checksum (const char *path, GError **error)
{
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, error);
  if (file == NULL)
    return NULL;
  guint64 hash = aclip_checkpoint_hash (g_mapped_file_get_contents (file),
                                        g_mapped_file_get_length (file));
  return g_strdup_printf ("%016" G_GINT64_MODIFIER "x", hash);
}

/* "stage align, step 5000, catalogue demo-catalogue.fits" from the checkpoint's text. */
static char *
training_summary (const char *path)
{
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path, NULL);
  if (checkpoint == NULL)
    return NULL;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  if (!g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), -1,
                                  G_KEY_FILE_NONE, NULL) ||
      !g_key_file_has_group (key_file, "training"))
    return NULL;
  g_autofree char *stage = g_key_file_get_string (key_file, "training", "stage", NULL);
  g_autofree char *step = g_key_file_get_string (key_file, "training", "step", NULL);
  g_autofree char *catalogue = g_key_file_get_string (key_file, "training", "catalogue", NULL);
  g_autofree char *catalogue_base = catalogue ? g_path_get_basename (catalogue) : NULL;
  g_autofree char *val_top1 = g_key_file_get_string (key_file, "training", "val_top1", NULL);
  GString *text = g_string_new (NULL);
  g_string_append_printf (text, _("Trained by %s, %s steps"), stage ? stage : "?",
                          step ? step : "?");
  if (catalogue_base)
    g_string_append_printf (text, _(" on %s"), catalogue_base);
  if (val_top1)
    g_string_append_printf (text, _("; validation top-1 retrieval %s"), val_top1);
  return g_string_free (text, FALSE);
}

GvAstroclipModel *
gv_astroclip_model_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (AclipModel) aclip = aclip_model_load (path, 1, error);
  if (aclip == NULL)
    return NULL;
  g_autofree char *checksum = file_checksum (path, error);
  if (checksum == NULL)
    return NULL;
  GvAstroclipModel *model = g_new0 (GvAstroclipModel, 1);
  g_atomic_ref_count_init (&model->ref_count);
  model->path = g_strdup (path);
  model->checksum = g_steal_pointer (&checksum);
  model->training_text = training_summary (path);
  g_mutex_init (&model->lock);
  model->model = g_steal_pointer (&aclip);
  model->pool = aclip_thread_pool_new (0);
  return model;
}

GvAstroclipModel *
gv_astroclip_model_ref (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  g_atomic_ref_count_inc (&model->ref_count);
  return model;
}

void
gv_astroclip_model_unref (GvAstroclipModel *model)
{
  if (model == NULL || !g_atomic_ref_count_dec (&model->ref_count))
    return;
  aclip_model_free (model->model);
  aclip_thread_pool_free (model->pool);
  g_mutex_clear (&model->lock);
  g_free (model->path);
  g_free (model->checksum);
  g_free (model->training_text);
  g_free (model);
}

const char *
gv_astroclip_model_get_path (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->path;
}

const char *
gv_astroclip_model_get_checksum (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return model->checksum;
}

int
gv_astroclip_model_get_dim (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, 0);
  return aclip_model_dim (model->model);
}

const AclipModelConfig *
gv_astroclip_model_get_config (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  return aclip_model_get_config (model->model);
}

char *
gv_astroclip_model_describe (GvAstroclipModel *model)
{
  g_return_val_if_fail (model != NULL, NULL);
  const AclipModelConfig *c = aclip_model_get_config (model->model);
  GString *text = g_string_new (NULL);
  g_string_append_printf (text, _("Spectrum encoder: transformer, %d pixels in windows of %d "
                                  "every %d, width %d, %d layers, %d heads"),
                          c->spectrum.n_wave, c->spectrum.window, c->spectrum.stride,
                          c->spectrum.width, c->spectrum.n_layers, c->spectrum.n_heads);
  g_string_append_c (text, '\n');
  g_autoptr (GString) stages = g_string_new (NULL);
  for (int s = 0; s < c->image.n_stages; s++)
    g_string_append_printf (stages, "%s%d", s ? "–" : "", c->image.stage_channels[s]);
  g_string_append_printf (text, _("Image encoder: ResNet, %d-pixel crop averaged %d×%d, stem %d, "
                                  "stages %s channels"),
                          c->image.crop, c->image.downsample, c->image.downsample,
                          c->image.stem_channels, stages->str);
  g_string_append_c (text, '\n');
  g_string_append_printf (text, _("Shared embedding: %d dimensions, logit scale %.1f"),
                          c->head.dim, aclip_model_logit_scale (model->model));
  if (model->training_text) {
    g_string_append_c (text, '\n');
    g_string_append (text, model->training_text);
  }
  g_string_append_c (text, '\n');
  g_string_append_printf (text, _("Checksum %s"), model->checksum);
  return g_string_free (text, FALSE);
}

gboolean
gv_astroclip_model_check_catalogue (GvAstroclipModel *model, GvCatalogue *catalogue,
                                    gboolean *image_ok, gboolean *spectrum_ok, GError **error)
{
  g_return_val_if_fail (model != NULL, FALSE);
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), FALSE);
  const AclipModelConfig *c = aclip_model_get_config (model->model);
  gboolean images = gv_catalogue_has_images (catalogue) &&
                    gv_catalogue_get_image_height (catalogue) >= c->image.crop &&
                    gv_catalogue_get_image_width (catalogue) >= c->image.crop;
  gboolean spectra = gv_catalogue_has_spectra (catalogue) &&
                     gv_catalogue_get_n_wave (catalogue) == c->spectrum.n_wave;
  if (image_ok)
    *image_ok = images;
  if (spectrum_ok)
    *spectrum_ok = spectra;
  if (images || spectra)
    return TRUE;
  g_autofree char *base = g_path_get_basename (gv_catalogue_get_path (catalogue));
  if (!gv_catalogue_has_images (catalogue) && !gv_catalogue_has_spectra (catalogue))
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s holds neither images nor spectra."), base);
  else
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("The model does not fit %s: it takes %d-pixel spectra and images of at least "
                   "%d×%d pixels; the catalogue has %d-pixel spectra and %d×%d images."),
                 base, c->spectrum.n_wave, c->image.crop, c->image.crop,
                 gv_catalogue_get_n_wave (catalogue), gv_catalogue_get_image_height (catalogue),
                 gv_catalogue_get_image_width (catalogue));
  return FALSE;
}

static gboolean
image_present (const float *image, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (isfinite (image[i]) && image[i] != 0)
      return TRUE;
  return FALSE;
}

static gboolean
spectrum_present (const float *flux, const float *ivar, int n)
{
  for (int i = 0; i < n; i++)
    if (ivar[i] > 0 && isfinite (ivar[i]) && isfinite (flux[i]))
      return TRUE;
  return FALSE;
}

gboolean
gv_astroclip_model_embed_galaxy (GvAstroclipModel *model, GvGalaxy *galaxy, float *image,
                                 float *spectrum, gboolean *has_image, gboolean *has_spectrum,
                                 GError **error)
{
  g_return_val_if_fail (model != NULL, FALSE);
  g_return_val_if_fail (GV_IS_GALAXY (galaxy), FALSE);
  const AclipModelConfig *c = aclip_model_get_config (model->model);
  int d = aclip_model_dim (model->model);
  int height = 0, width = 0, n_wave = 0;
  const float *cube = gv_galaxy_get_image (galaxy, &height, &width);
  const float *flux = gv_galaxy_get_spectrum (galaxy, &n_wave);
  const float *ivar = gv_galaxy_get_spectrum_ivar (galaxy);
  gboolean do_image = image != NULL && cube != NULL && height >= c->image.crop &&
                      width >= c->image.crop &&
                      image_present (cube, (gsize) 3 * height * width);
  gboolean do_spectrum = spectrum != NULL && flux != NULL && ivar != NULL &&
                         n_wave == c->spectrum.n_wave && spectrum_present (flux, ivar, n_wave);
  g_mutex_lock (&model->lock);
  if (do_image)
    memcpy (image, aclip_model_embed_images (model->model, model->pool, cube, 1, height, width),
            sizeof (float) * d);
  if (do_spectrum)
    memcpy (spectrum, aclip_model_embed_spectra (model->model, model->pool, flux, ivar, 1),
            sizeof (float) * d);
  g_mutex_unlock (&model->lock);
  if (has_image)
    *has_image = do_image;
  if (has_spectrum)
    *has_spectrum = do_spectrum;
  for (int m = 0; m < 2; m++) {
    const float *v = m == 0 ? (do_image ? image : NULL) : (do_spectrum ? spectrum : NULL);
    for (int i = 0; v && i < d; i++)
      if (!isfinite (v[i])) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                     _("The model gave a non-finite %s embedding for galaxy %" PRId64
                       "."),
                     aclip_modality_label (m == 0 ? ACLIP_MODALITY_IMAGE
                                                  : ACLIP_MODALITY_SPECTRUM),
                     gv_galaxy_get_id (galaxy));
        return FALSE;
      }
  }
  return TRUE;
}

/* Embeddings and their index ------------------------------------------------------------ */

struct _GvAstroclipIndex
{
  gatomicrefcount ref_count;
  AclipEmbeddings *embeddings;
  AclipSearchIndex *index;
  GvCatalogue *catalogue;
  gint64 *catalogue_rows; /* [n_rows] */
  GMutex lock;            /* the pool runs one loop at a time */
  AclipThreadPool *pool;
};

GvAstroclipIndex *
gv_astroclip_index_new (AclipEmbeddings *embeddings, GvCatalogue *catalogue, GError **error)
{
  g_return_val_if_fail (embeddings != NULL, NULL);
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), NULL);
  g_autoptr (AclipEmbeddings) owned = embeddings;
  gint64 n = aclip_embeddings_n_rows (owned);
  const gint64 *ids = aclip_embeddings_ids (owned);
  g_autofree gint64 *rows = g_new (gint64, MAX (n, 1));
  gint64 n_found = 0;
  for (gint64 r = 0; r < n; r++) {
    rows[r] = gv_catalogue_find_id (catalogue, ids[r]);
    n_found += rows[r] >= 0;
  }
  if (n_found == 0) {
    const char *path = aclip_embeddings_path (owned);
    g_autofree char *base = g_path_get_basename (gv_catalogue_get_path (catalogue));
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("None of the galaxies of %s is in %s."), path ? path : _("the embeddings"),
                 base);
    return NULL;
  }
  AclipThreadPool *pool = aclip_thread_pool_new (0);
  AclipSearchIndex *index = aclip_search_index_new (owned, pool, error);
  if (index == NULL) {
    aclip_thread_pool_free (pool);
    return NULL;
  }
  GvAstroclipIndex *self = g_new0 (GvAstroclipIndex, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->embeddings = g_steal_pointer (&owned);
  self->index = index;
  self->catalogue = g_object_ref (catalogue);
  self->catalogue_rows = g_steal_pointer (&rows);
  g_mutex_init (&self->lock);
  self->pool = pool;
  return self;
}

GvAstroclipIndex *
gv_astroclip_index_open (const char *path, GvCatalogue *catalogue, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  AclipEmbeddings *embeddings = aclip_embeddings_open (path, error);
  if (embeddings == NULL)
    return NULL;
  return gv_astroclip_index_new (embeddings, catalogue, error);
}

GvAstroclipIndex *
gv_astroclip_index_ref (GvAstroclipIndex *index)
{
  g_return_val_if_fail (index != NULL, NULL);
  g_atomic_ref_count_inc (&index->ref_count);
  return index;
}

void
gv_astroclip_index_unref (GvAstroclipIndex *index)
{
  if (index == NULL || !g_atomic_ref_count_dec (&index->ref_count))
    return;
  aclip_search_index_free (index->index);
  aclip_embeddings_free (index->embeddings);
  aclip_thread_pool_free (index->pool);
  g_mutex_clear (&index->lock);
  g_object_unref (index->catalogue);
  g_free (index->catalogue_rows);
  g_free (index);
}

const AclipEmbeddings *
gv_astroclip_index_get_embeddings (GvAstroclipIndex *index)
{
  g_return_val_if_fail (index != NULL, NULL);
  return index->embeddings;
}

GvCatalogue *
gv_astroclip_index_get_catalogue (GvAstroclipIndex *index)
{
  g_return_val_if_fail (index != NULL, NULL);
  return index->catalogue;
}

gint64
gv_astroclip_index_catalogue_row (GvAstroclipIndex *index, gint64 row)
{
  g_return_val_if_fail (index != NULL, -1);
  if (row < 0 || row >= aclip_embeddings_n_rows (index->embeddings))
    return -1;
  return index->catalogue_rows[row];
}

/* Look-ups ---------------------------------------------------------------------------------- */

const char *
gv_astroclip_mode_label (AclipSearchMode mode)
{
  switch (mode) {
    case ACLIP_SEARCH_IMAGE_IMAGE:
      return _("Image → image");
    case ACLIP_SEARCH_SPECTRUM_SPECTRUM:
      return _("Spectrum → spectrum");
    case ACLIP_SEARCH_IMAGE_SPECTRUM:
      return _("Image → spectrum");
    case ACLIP_SEARCH_SPECTRUM_IMAGE:
      return _("Spectrum → image");
    case ACLIP_SEARCH_BOTH:
      return _("Image and spectrum");
    default:
      return "?";
  }
}

void
gv_astroclip_query_free (GvAstroclipQuery *query)
{
  if (query == NULL)
    return;
  g_free (query->image);
  g_free (query->spectrum);
  g_free (query);
}

GvAstroclipQuery *
gv_astroclip_query_new (GvAstroclipIndex *index, GvAstroclipModel *model, GvGalaxy *galaxy,
                        GError **error)
{
  g_return_val_if_fail (index != NULL, NULL);
  g_return_val_if_fail (GV_IS_GALAXY (galaxy), NULL);
  int d = aclip_embeddings_dim (index->embeddings);
  g_autoptr (GvAstroclipQuery) query = g_new0 (GvAstroclipQuery, 1);
  query->id = gv_galaxy_get_id (galaxy);
  query->dim = d;
  gint64 row = aclip_embeddings_find (index->embeddings, query->id);
  if (row >= 0) {
    const float *image = aclip_embeddings_row (index->embeddings, ACLIP_MODALITY_IMAGE, row);
    const float *spectrum =
        aclip_embeddings_row (index->embeddings, ACLIP_MODALITY_SPECTRUM, row);
    query->image = image ? g_memdup2 (image, sizeof (float) * d) : NULL;
    query->spectrum = spectrum ? g_memdup2 (spectrum, sizeof (float) * d) : NULL;
    return g_steal_pointer (&query);
  }
  if (model == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("Galaxy %" PRId64 " is not in the embeddings file, and no model is "
                   "loaded to embed it."),
                 query->id);
    return NULL;
  }
  if (gv_astroclip_model_get_dim (model) != d) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("The model makes %d-dimensional embeddings but the embeddings file holds "
                   "%d dimensions: they come from different models."),
                 gv_astroclip_model_get_dim (model), d);
    return NULL;
  }
  gint64 start = g_get_monotonic_time ();
  query->image = g_new (float, d);
  query->spectrum = g_new (float, d);
  gboolean has_image = FALSE, has_spectrum = FALSE;
  if (!gv_astroclip_model_embed_galaxy (model, galaxy, query->image, query->spectrum, &has_image,
                                        &has_spectrum, error))
    return NULL;
  if (!has_image)
    g_clear_pointer (&query->image, g_free);
  if (!has_spectrum)
    g_clear_pointer (&query->spectrum, g_free);
  query->embedded = TRUE;
  query->embed_seconds = (g_get_monotonic_time () - start) / 1e6;
  return g_steal_pointer (&query);
}

GvAstroclipNeighbours *
gv_astroclip_neighbours_copy (const GvAstroclipNeighbours *neighbours)
{
  GvAstroclipNeighbours *copy = g_new0 (GvAstroclipNeighbours, 1);
  copy->query_id = neighbours->query_id;
  copy->mode = neighbours->mode;
  copy->n = neighbours->n;
  copy->ids = g_memdup2 (neighbours->ids, sizeof (gint64) * (gsize) neighbours->n);
  copy->rows = g_memdup2 (neighbours->rows, sizeof (gint64) * (gsize) neighbours->n);
  copy->similarity = g_memdup2 (neighbours->similarity, sizeof (float) * (gsize) neighbours->n);
  return copy;
}

void
gv_astroclip_neighbours_free (GvAstroclipNeighbours *neighbours)
{
  if (neighbours == NULL)
    return;
  g_free (neighbours->ids);
  g_free (neighbours->rows);
  g_free (neighbours->similarity);
  g_free (neighbours);
}

GvAstroclipNeighbours *
gv_astroclip_search (GvAstroclipIndex *index, const GvAstroclipQuery *query,
                     AclipSearchMode mode, int k, GError **error)
{
  g_return_val_if_fail (index != NULL, NULL);
  g_return_val_if_fail (query != NULL, NULL);
  g_return_val_if_fail (mode >= 0 && mode < ACLIP_N_SEARCH_MODES, NULL);
  g_return_val_if_fail (k >= 1, NULL);
  for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
    const float *vector = m == ACLIP_MODALITY_IMAGE ? query->image : query->spectrum;
    if (aclip_search_mode_uses_query (mode, m) && vector == NULL) {
      if (query->embedded)
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                     m == ACLIP_MODALITY_IMAGE
                         ? _("Galaxy %" PRId64 " could not be given an image embedding, "
                             "which this mode needs: it has no usable image, or the model "
                             "cannot embed this catalogue’s images (see the Model panel).")
                         : _("Galaxy %" PRId64 " could not be given a spectrum "
                             "embedding, which this mode needs: it has no usable spectrum, or "
                             "the model cannot embed this catalogue’s spectra (see the Model "
                             "panel)."),
                     query->id);
      else
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                     m == ACLIP_MODALITY_IMAGE
                         ? _("Galaxy %" PRId64 " has no image embedding, which this "
                             "mode needs.")
                         : _("Galaxy %" PRId64 " has no spectrum embedding, which this "
                             "mode needs."),
                     query->id);
      return NULL;
    }
    if (aclip_search_mode_scans (mode, m) && !aclip_embeddings_has_modality (index->embeddings, m)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   m == ACLIP_MODALITY_IMAGE
                       ? _("The embeddings hold no image embeddings (the catalogue has no "
                           "images), which this mode needs.")
                       : _("The embeddings hold no spectrum embeddings (the catalogue has no "
                           "spectra), which this mode needs."));
      return NULL;
    }
  }
  k = (int) MIN ((gint64) k, MAX (aclip_embeddings_n_rows (index->embeddings), 1));
  AclipSearchQuery q = { query->image, query->spectrum, &query->id, 1 };
  g_autofree AclipNeighbour *found = g_new (AclipNeighbour, k);
  int n_found = 0;
  g_mutex_lock (&index->lock);
  gboolean ok = aclip_search (index->index, index->pool, ACLIP_SEARCH_KERNEL_AUTO, mode, 1, &q, k,
                              found, &n_found, error);
  g_mutex_unlock (&index->lock);
  if (!ok)
    return NULL;
  GvAstroclipNeighbours *neighbours = g_new0 (GvAstroclipNeighbours, 1);
  neighbours->query_id = query->id;
  neighbours->mode = mode;
  neighbours->n = n_found;
  neighbours->ids = g_new (gint64, MAX (n_found, 1));
  neighbours->rows = g_new (gint64, MAX (n_found, 1));
  neighbours->similarity = g_new (float, MAX (n_found, 1));
  for (int i = 0; i < n_found; i++) {
    neighbours->ids[i] = found[i].id;
    neighbours->rows[i] = index->catalogue_rows[found[i].row];
    neighbours->similarity[i] = found[i].similarity;
  }
  return neighbours;
}

gboolean
gv_astroclip_estimate (const GvAstroclipNeighbours *neighbours, GvCatalogue *catalogue,
                       const char *column, GvAstroclipEstimate *estimate)
{
  g_return_val_if_fail (neighbours != NULL, FALSE);
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), FALSE);
  g_return_val_if_fail (estimate != NULL, FALSE);
  estimate->value = estimate->spread = NAN;
  estimate->n_used = 0;
  const double *values = gv_catalogue_get_column (catalogue, column);
  if (values == NULL)
    return FALSE;
  /* Neighbours at distance 0 (copies of the query) take all the weight, as in sklearn. */
  gboolean any_zero = FALSE;
  for (int i = 0; i < neighbours->n; i++)
    if (neighbours->rows[i] >= 0 && isfinite (values[neighbours->rows[i]]) &&
        neighbours->similarity[i] >= 1.0f)
      any_zero = TRUE;
  double sw = 0, swy = 0;
  g_autofree double *w = g_new0 (double, MAX (neighbours->n, 1));
  for (int i = 0; i < neighbours->n; i++) {
    gint64 row = neighbours->rows[i];
    if (row < 0 || !isfinite (values[row]))
      continue;
    double s = neighbours->similarity[i];
    double d = sqrt (MAX (0.0, 2.0 - 2.0 * s));
    if (any_zero)
      w[i] = s >= 1.0 ? 1.0 : 0.0;
    else
      w[i] = 1.0 / d;
    if (w[i] == 0)
      continue;
    sw += w[i];
    swy += w[i] * values[row];
    estimate->n_used++;
  }
  if (estimate->n_used == 0 || sw <= 0)
    return FALSE;
  double mean = swy / sw, ss = 0;
  for (int i = 0; i < neighbours->n; i++)
    if (w[i] > 0)
      ss += w[i] * (values[neighbours->rows[i]] - mean) * (values[neighbours->rows[i]] - mean);
  estimate->value = mean;
  estimate->spread = sqrt (ss / sw);
  return TRUE;
}

/* The map ----------------------------------------------------------------------------------- */

void
gv_astroclip_map_free (GvAstroclipMap *map)
{
  if (map == NULL)
    return;
  g_free (map->xy);
  g_free (map->rows);
  g_free (map->ids);
  g_free (map);
}

GvAstroclipMap *
gv_astroclip_map_new (GvAstroclipIndex *index, AclipModality modality, GError **error)
{
  g_return_val_if_fail (index != NULL, NULL);
  const AclipEmbeddings *e = index->embeddings;
  const float *vectors = aclip_embeddings_vectors (e, modality);
  gint64 n = aclip_embeddings_n_present (e, modality);
  if (vectors == NULL || n < 2) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 modality == ACLIP_MODALITY_IMAGE
                     ? _("Fewer than two galaxies have an image embedding: there is no map.")
                     : _("Fewer than two galaxies have a spectrum embedding: there is no map."));
    return NULL;
  }
  int d = aclip_embeddings_dim (e);
  gint64 n_rows = aclip_embeddings_n_rows (e);
  g_autoptr (GvAstroclipMap) map = g_new0 (GvAstroclipMap, 1);
  map->modality = modality;
  map->n = n;
  map->rows = g_new (gint64, n);
  map->ids = g_new (gint64, n);
  /* The rows holding the modality, copied together when some lack it. */
  g_autofree float *packed = n < n_rows ? g_new (float, (gsize) n * d) : NULL;
  const gint64 *ids = aclip_embeddings_ids (e);
  for (gint64 r = 0, j = 0; r < n_rows; r++) {
    const float *v = aclip_embeddings_row (e, modality, r);
    if (v == NULL)
      continue;
    if (packed)
      memcpy (packed + (gsize) j * d, v, sizeof (float) * d);
    map->rows[j] = index->catalogue_rows[r];
    map->ids[j] = ids[r];
    j++;
  }
  const float *x = packed ? packed : vectors;
  g_autoptr (AclipPca) pca = aclip_pca_fit (x, n, d, 2, error);
  if (pca == NULL)
    return NULL;
  g_autofree float *scores = g_new (float, (gsize) n * aclip_pca_n_components (pca));
  if (!aclip_pca_transform (pca, x, n, scores, error))
    return NULL;
  int nc = aclip_pca_n_components (pca);
  map->xy = g_new0 (float, (gsize) n * 2);
  for (gint64 i = 0; i < n; i++)
    for (int c = 0; c < MIN (nc, 2); c++)
      map->xy[i * 2 + c] = scores[i * nc + c];
  double total = aclip_pca_total_variance (pca);
  for (int c = 0; c < 2; c++)
    map->explained[c] =
        c < nc && total > 0 ? aclip_pca_variances (pca)[c] / total : 0.0;
  return g_steal_pointer (&map);
}

/* Export ------------------------------------------------------------------------------------ */

/* The catalogue's numeric columns other than ID (which the neighbour list has already). */
static GPtrArray *
export_columns (GvCatalogue *catalogue)
{
  GPtrArray *names = g_ptr_array_new ();
  for (const char *const *c = gv_catalogue_get_columns (catalogue); c && *c; c++)
    if (g_ascii_strcasecmp (*c, "ID") != 0)
      g_ptr_array_add (names, (gpointer) *c);
  return names;
}

static void
append_csv_number (GString *line, double value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append_c (line, ',');
  if (isfinite (value))
    g_string_append (line, g_ascii_formatd (buffer, sizeof buffer, "%.9g", value));
}

gboolean
gv_astroclip_neighbours_write_csv (const GvAstroclipNeighbours *neighbours,
                                   GvCatalogue *catalogue, const char *path, GError **error)
{
  g_return_val_if_fail (neighbours != NULL, FALSE);
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_autoptr (GPtrArray) columns = export_columns (catalogue);
  g_autoptr (GString) text = g_string_new ("query_id,rank,id,similarity");
  for (guint c = 0; c < columns->len; c++)
    g_string_append_printf (text, ",%s", (const char *) columns->pdata[c]);
  g_string_append_c (text, '\n');
  for (int i = 0; i < neighbours->n; i++) {
    g_string_append_printf (text, "%" G_GINT64_FORMAT ",%d,%" G_GINT64_FORMAT,
                            neighbours->query_id, i + 1, neighbours->ids[i]);
    append_csv_number (text, neighbours->similarity[i]);
    for (guint c = 0; c < columns->len; c++) {
      const double *values = gv_catalogue_get_column (catalogue, columns->pdata[c]);
      append_csv_number (text, neighbours->rows[i] >= 0 ? values[neighbours->rows[i]] : NAN);
    }
    g_string_append_c (text, '\n');
  }
  return g_file_set_contents (path, text->str, (gssize) text->len, error);
}

gboolean
gv_astroclip_neighbours_write_fits (const GvAstroclipNeighbours *neighbours,
                                    GvCatalogue *catalogue, const char *path, GError **error)
{
  g_return_val_if_fail (neighbours != NULL, FALSE);
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_autoptr (GPtrArray) columns = export_columns (catalogue);
  int n_fixed = 4, n_columns = n_fixed + (int) columns->len;
  g_autofree AclipFitsColumnSpec *specs = g_new0 (AclipFitsColumnSpec, n_columns);
  const char *fixed_names[] = { "QUERY_ID", "RANK", "ID", "SIMILARITY" };
  const char *fixed_formats[] = { "1K", "1J", "1K", "1E" };
  for (int c = 0; c < n_columns; c++) {
    specs[c].name = c < n_fixed ? fixed_names[c] : columns->pdata[c - n_fixed];
    specs[c].format = c < n_fixed ? fixed_formats[c] : "1D";
    specs[c].unit =
        c < n_fixed ? NULL : gv_catalogue_get_column_unit (catalogue, columns->pdata[c - n_fixed]);
    if (specs[c].unit && *specs[c].unit == '\0')
      specs[c].unit = NULL;
    specs[c].scale = 1;
    specs[c].zero = 0;
  }
  AclipFits *fits = aclip_fits_create_temporary (path, error);
  if (fits == NULL)
    return FALSE;
  gint64 n = neighbours->n;
  g_autofree gint64 *query_ids = g_new (gint64, MAX (n, 1));
  g_autofree gint32 *ranks = g_new (gint32, MAX (n, 1));
  g_autofree double *values = g_new (double, MAX (n, 1));
  for (gint64 i = 0; i < n; i++) {
    query_ids[i] = neighbours->query_id;
    ranks[i] = (gint32) (i + 1);
  }
  g_autofree char *catalogue_base = g_path_get_basename (gv_catalogue_get_path (catalogue));
  gboolean ok = aclip_fits_write_empty_primary (fits, error) &&
                aclip_fits_append_table (fits, "NEIGHBOURS", n_columns, specs, error) &&
                aclip_fits_write_key_string (fits, "MODE", aclip_search_mode_name (neighbours->mode),
                                             "AstroCLIP search mode", error) &&
                aclip_fits_write_key_int64 (fits, "QUERY", neighbours->query_id,
                                            "ID of the query galaxy", error) &&
                aclip_fits_write_key_string (fits, "CATALOG", catalogue_base,
                                             "catalogue the galaxies come from", error);
  if (ok && n > 0) {
    /* RANK is written through the double writer (exact for small integers). */
    for (gint64 i = 0; i < n; i++)
      values[i] = ranks[i];
    ok = aclip_fits_write_column_int64 (fits, 1, 0, 0, n, query_ids, error) &&
         aclip_fits_write_column_double (fits, 2, 0, 0, n, values, error) &&
         aclip_fits_write_column_int64 (fits, 3, 0, 0, n, neighbours->ids, error) &&
         aclip_fits_write_column_float (fits, 4, 0, 0, n, neighbours->similarity, error);
    for (guint c = 0; ok && c < columns->len; c++) {
      const double *column = gv_catalogue_get_column (catalogue, columns->pdata[c]);
      for (gint64 i = 0; i < n; i++)
        values[i] = neighbours->rows[i] >= 0 ? column[neighbours->rows[i]] : NAN;
      ok = aclip_fits_write_column_double (fits, n_fixed + 1 + (int) c, 0, 0, n, values, error);
    }
  }
  ok = ok && aclip_fits_commit (fits, error);
  aclip_fits_close (fits);
  return ok;
}

/* gv-astroclip-addin.c — the AstroCLIP plugin's window addin: five side panels (Similar
 * galaxies, Properties, Map, Training, Model) and two export actions.
 *
 * Work off the main thread: reading the embeddings and building their index, loading a model,
 * the look-up of a selected galaxy (embedding it when the store lacks it, the searches and the
 * estimates), the map's PCA, reading the neighbours' spectra — each a GTask in GLib's pool,
 * tagged with a serial number; a result whose serial is no longer the current one (another
 * galaxy was selected, another catalogue opened) is dropped, and a selection change cancels
 * the look-up in flight. Training and embedding a whole catalogue run `astroclip` as a
 * subprocess (gv-astroclip-trainer.h). Unloading cancels all of it and stops the subprocess.
 */
#include <gtk/gtk.h>
#include <libpeas/peas.h>
#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gv-astroclip-engine.h"
#include "gv-astroclip-map.h"
#include "gv-astroclip-panels.h"
#include "gv-astroclip-trainer.h"
#include "gv-detail-view.h"
#include "gv-spectrum-view.h"
#include "gv-thumbnails.h"
#include "gv-window-addin.h"
#include "gv-window.h"

#define THUMB_SIZE   80
#define N_COLOURS    12
#define ACTION_CSV   "astroclip-export-csv"
#define ACTION_FITS  "astroclip-export-fits"

/* Neighbour colours (thumbnail frames, overlaid spectra, map rings). */
static const char *const neighbour_colours[N_COLOURS] = {
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#e7ba52",
};

enum
{
  STAGE_PRETRAIN_SPECTRA,
  STAGE_PRETRAIN_IMAGES,
  STAGE_ALIGN,
  STAGE_EMBED,
};
static const char *const stage_commands[] = { "pretrain-spectra", "pretrain-images", "align",
                                              "embed" };

typedef struct
{
  GObject parent_instance;
  GvWindow *window; /* between load and unload */
  GCancellable *cancellable;        /* everything; cancelled on unload */
  GCancellable *lookup_cancellable; /* the current look-up */
  guint lookup_serial, index_serial, model_serial, map_serial;

  GvAstroclipModel *model;
  char *model_error;
  gboolean model_loading;
  GvAstroclipIndex *index;
  char *index_error;
  gboolean index_loading;
  gboolean index_other_model; /* the embeddings come from another model than the active one */
  GvCatalogue *catalogue;
  gboolean catalogue_known; /* set_catalogue has run once */
  GvGalaxy *galaxy;
  GvAstroclipNeighbours *neighbours;
  GvThumbnails *thumbnails;
  gulong thumbnail_handler;
  GtkCssProvider *css;
  gint64 lookup_start; /* monotonic µs when the look-up was asked for */

  /* Similar galaxies */
  GtkWidget *similar_panel, *similar_status, *k_spin, *mode_dropdown, *flow, *embed_button,
      *overlay_check, *export_box;
  GPtrArray *cell_pictures; /* GtkPicture per neighbour */
  /* Properties */
  GtkWidget *properties_panel, *properties_status, *estimate_labels[4][2];
  GvAstroclipEstimate estimates[3][2];
  /* Map */
  GtkWidget *map_panel, *map_view, *map_status, *map_modality, *map_column, *map_legend;
  GStrv map_columns;
  /* Training */
  GtkWidget *training_panel, *train_stage, *train_catalogue, *train_out, *train_epochs,
      *train_batch, *train_extra, *train_spectrum_model, *train_image_model, *train_start, *train_cancel, *train_resume, *train_use_model,
      *train_progress, *train_eta, *train_curve, *train_status, *train_stderr;
  GvAstroclipTrainer *trainer;
  GArray *loss_steps, *loss_values; /* double */
  int running_stage;
  char *running_out;
  gboolean embed_then_reload; /* the run embeds the open catalogue: reopen its embeddings */
  /* Model */
  GtkWidget *model_panel, *model_path_label, *model_config_label, *model_status,
      *embeddings_label;
} GvAstroclipAddin;

typedef struct
{
  GObjectClass parent_class;
} GvAstroclipAddinClass;

static void window_addin_iface_init (GvWindowAddinInterface *iface);
GType gv_astroclip_addin_get_type (void);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (GvAstroclipAddin, gv_astroclip_addin, G_TYPE_OBJECT,
                                G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (GV_TYPE_WINDOW_ADDIN,
                                                               window_addin_iface_init))

static void start_lookup (GvAstroclipAddin *self);
static void open_embeddings (GvAstroclipAddin *self);
static void start_map (GvAstroclipAddin *self);
static void update_model_panel (GvAstroclipAddin *self);
static void start_run (GvAstroclipAddin *self, int stage, gboolean resume,
                       const char *model_override);

/* Small helpers ---------------------------------------------------------------------------- */

static GtkWidget *
status_label (void)
{
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_widget_add_css_class (label, "dim-label");
  return label;
}

static GtkWidget *
panel_box (void)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_margin_start (box, 8);
  gtk_widget_set_margin_end (box, 8);
  gtk_widget_set_margin_top (box, 8);
  gtk_widget_set_margin_bottom (box, 8);
  return box;
}

static void
set_status (GtkWidget *label, const char *text)
{
  gtk_label_set_text (GTK_LABEL (label), text ? text : "");
  gtk_widget_set_visible (label, text != NULL && *text != '\0');
}

static char *
format_value (double value, int decimals)
{
  if (!isfinite (value))
    return g_strdup ("—");
  return g_strdup_printf ("%.*f", decimals, value);
}

static char *
format_duration (double seconds)
{
  if (!isfinite (seconds) || seconds < 0)
    return g_strdup ("—");
  int s = (int) (seconds + 0.5);
  if (s >= 3600)
    return g_strdup_printf ("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return g_strdup_printf ("%d:%02d", s / 60, s % 60);
}

static char *
models_dir (void)
{
  char *dir = g_build_filename (g_get_user_data_dir (), "galaxy-viewer", "models", NULL);
  g_mkdir_with_parents (dir, 0755);
  return dir;
}

static GvSpectrumView *
spectrum_view (GvAstroclipAddin *self)
{
  GvDetailView *detail = gv_window_get_detail_view (self->window);
  return detail ? gv_detail_view_get_spectrum_view (detail) : NULL;
}

/* The model to embed galaxies with: the active one, unless the embeddings were made by
 * another (its vectors would not be comparable with theirs). */
static GvAstroclipModel *
query_model (GvAstroclipAddin *self)
{
  return self->index_other_model ? NULL : self->model;
}

/* Similar galaxies: showing a result -------------------------------------------------------- */

static void
clear_cells (GvAstroclipAddin *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (self->flow)) != NULL)
    gtk_flow_box_remove (GTK_FLOW_BOX (self->flow), child);
  g_ptr_array_set_size (self->cell_pictures, 0);
}

static void
on_cell_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  gint64 *id = g_object_get_data (G_OBJECT (button), "astroclip-id");
  if (self->window && id)
    gv_window_select_id (self->window, *id);
}

static void
on_thumbnail_ready (GvThumbnails *thumbnails, gint64 row, GdkTexture *texture,
                    GvAstroclipAddin *self)
{
  if (self->neighbours == NULL)
    return;
  for (guint i = 0; i < self->cell_pictures->len && i < (guint) self->neighbours->n; i++)
    if (self->neighbours->rows[i] == row)
      gtk_picture_set_paintable (GTK_PICTURE (self->cell_pictures->pdata[i]),
                                 GDK_PAINTABLE (texture));
}

static void
show_neighbours (GvAstroclipAddin *self)
{
  clear_cells (self);
  GvAstroclipNeighbours *n = self->neighbours;
  g_object_set_data (G_OBJECT (self->similar_panel), "astroclip-neighbours", n);
  gtk_widget_set_sensitive (self->export_box, n != NULL && n->n > 0);
  if (n == NULL)
    return;
  const double *z = self->catalogue ? gv_catalogue_get_column (self->catalogue, "Z") : NULL;
  for (int i = 0; i < n->n; i++) {
    GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
    GtkWidget *picture = gtk_picture_new ();
    gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_CONTAIN);
    gtk_widget_set_size_request (picture, THUMB_SIZE, THUMB_SIZE);
    g_autofree char *css_class = g_strdup_printf ("astroclip-c%d", i % N_COLOURS);
    gtk_widget_add_css_class (picture, css_class);
    gtk_widget_add_css_class (picture, "astroclip-thumb");
    if (self->thumbnails && n->rows[i] >= 0) {
      g_autoptr (GdkTexture) texture = gv_thumbnails_request (self->thumbnails, n->rows[i]);
      if (texture)
        gtk_picture_set_paintable (GTK_PICTURE (picture), GDK_PAINTABLE (texture));
    }
    g_ptr_array_add (self->cell_pictures, picture);
    gtk_box_append (GTK_BOX (box), picture);
    g_autofree char *zs = format_value (z && n->rows[i] >= 0 ? z[n->rows[i]] : NAN, 3);
    g_autofree char *text = g_strdup_printf (_("%.3f · z %s"), n->similarity[i], zs);
    GtkWidget *label = gtk_label_new (text);
    gtk_widget_add_css_class (label, "caption");
    gtk_box_append (GTK_BOX (box), label);
    GtkWidget *button = gtk_button_new ();
    gtk_button_set_child (GTK_BUTTON (button), box);
    gtk_widget_add_css_class (button, "flat");
    g_autofree char *tip = g_strdup_printf (_("Galaxy %" PRId64 ", rank %d, "
                                              "similarity %.4f: click to select it"),
                                            n->ids[i], i + 1, n->similarity[i]);
    gtk_widget_set_tooltip_text (button, tip);
    gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL, tip,
                                    -1);
    g_object_set_data_full (G_OBJECT (button), "astroclip-id",
                            g_memdup2 (&n->ids[i], sizeof (gint64)), g_free);
    g_signal_connect (button, "clicked", G_CALLBACK (on_cell_clicked), self);
    gtk_flow_box_append (GTK_FLOW_BOX (self->flow), button);
  }
}

static void
neighbour_colour (int i, GdkRGBA *colour)
{
  gdk_rgba_parse (colour, neighbour_colours[i % N_COLOURS]);
}

static void
update_map_highlight (GvAstroclipAddin *self)
{
  if (self->map_view == NULL)
    return;
  gint64 selected = self->galaxy ? gv_galaxy_get_row (self->galaxy) : -1;
  GvAstroclipNeighbours *n = self->neighbours;
  int count = n ? n->n : 0;
  g_autofree GdkRGBA *colours = g_new (GdkRGBA, MAX (count, 1));
  for (int i = 0; i < count; i++)
    neighbour_colour (i, &colours[i]);
  gv_astroclip_map_view_set_highlight (self->map_view, selected, n ? n->rows : NULL, colours,
                                       count);
}

static void
show_estimates (GvAstroclipAddin *self, gboolean have)
{
  for (int m = 0; m < 3; m++)
    for (int c = 0; c < 2; c++) {
      GvAstroclipEstimate *e = &self->estimates[m][c];
      if (!have)
        e->value = e->spread = NAN, e->n_used = 0;
      g_autofree char *value = format_value (e->value, c == 0 ? 3 : 2);
      g_autofree char *spread = format_value (e->spread, c == 0 ? 3 : 2);
      g_autofree char *text =
          isfinite (e->value) ? g_strdup_printf ("%s ± %s", value, spread) : g_strdup ("—");
      gtk_label_set_text (GTK_LABEL (self->estimate_labels[m][c]), text);
    }
  for (int c = 0; c < 2; c++) {
    double truth = self->galaxy ? (c == 0 ? gv_galaxy_get_z (self->galaxy)
                                          : gv_galaxy_get_logmstar (self->galaxy))
                                : NAN;
    g_autofree char *text = format_value (truth, c == 0 ? 3 : 2);
    gtk_label_set_text (GTK_LABEL (self->estimate_labels[3][c]), text);
  }
}

/* Overlaid spectra -------------------------------------------------------------------------- */

typedef struct
{
  GvCatalogue *catalogue;
  gint64 *rows;
  int n;
  guint serial;
} OverlayJob;

static void
overlay_job_free (gpointer data)
{
  OverlayJob *job = data;
  g_object_unref (job->catalogue);
  g_free (job->rows);
  g_free (job);
}

static void
unref_if_set (gpointer object)
{
  if (object)
    g_object_unref (object);
}

static void
overlay_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  OverlayJob *job = data;
  GPtrArray *galaxies = g_ptr_array_new_with_free_func (unref_if_set);
  for (int i = 0; i < job->n && !g_cancellable_is_cancelled (cancellable); i++) {
    /* Positions stay aligned with the neighbours: a failed read is a NULL. */
    GvGalaxy *galaxy =
        job->rows[i] >= 0 ? gv_catalogue_read_galaxy (job->catalogue, job->rows[i], FALSE, TRUE,
                                                      NULL)
                          : NULL;
    g_ptr_array_add (galaxies, galaxy);
  }
  g_task_return_pointer (task, galaxies, (GDestroyNotify) g_ptr_array_unref);
}

static void
overlay_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  OverlayJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GPtrArray) galaxies = g_task_propagate_pointer (G_TASK (result), NULL);
  if (galaxies == NULL || self->window == NULL || job->serial != self->lookup_serial)
    return;
  GvSpectrumView *view = spectrum_view (self);
  GvDetailView *detail = gv_window_get_detail_view (self->window);
  /* Only over the query's own spectrum. */
  if (view == NULL || detail == NULL || gv_detail_view_get_galaxy (detail) != self->galaxy)
    return;
  gv_spectrum_view_clear_overlays (view);
  for (guint i = 0; i < galaxies->len; i++) {
    if (galaxies->pdata[i] == NULL)
      continue;
    GvGalaxy *g = galaxies->pdata[i];
    int n_wave = 0;
    const float *flux = gv_galaxy_get_spectrum (g, &n_wave);
    if (flux == NULL)
      continue;
    GdkRGBA colour;
    neighbour_colour ((int) i, &colour);
    colour.alpha = 0.7f;
    gv_spectrum_view_add_overlay (view, gv_galaxy_get_wavelength (g), flux,
                                  gv_galaxy_get_spectrum_ivar (g), n_wave, gv_galaxy_get_z (g),
                                  &colour);
  }
}

static void
start_overlays (GvAstroclipAddin *self)
{
  GvSpectrumView *view = spectrum_view (self);
  if (view)
    gv_spectrum_view_clear_overlays (view);
  if (view == NULL || self->neighbours == NULL || self->catalogue == NULL ||
      !gv_catalogue_has_spectra (self->catalogue) ||
      !gtk_check_button_get_active (GTK_CHECK_BUTTON (self->overlay_check)))
    return;
  OverlayJob *job = g_new0 (OverlayJob, 1);
  job->catalogue = g_object_ref (self->catalogue);
  job->n = MIN (self->neighbours->n, N_COLOURS);
  job->rows = g_memdup2 (self->neighbours->rows, sizeof (gint64) * MAX (job->n, 1));
  job->serial = self->lookup_serial;
  g_autoptr (GTask) task = g_task_new (self, self->lookup_cancellable, overlay_done, NULL);
  g_task_set_task_data (task, job, overlay_job_free);
  g_task_run_in_thread (task, overlay_thread);
}

/* The look-up ------------------------------------------------------------------------------- */

typedef struct
{
  GvAstroclipIndex *index;
  GvAstroclipModel *model;
  GvGalaxy *galaxy;
  AclipSearchMode mode;
  int k;
  guint serial;
} LookupJob;

typedef struct
{
  GvAstroclipNeighbours *neighbours;
  GvAstroclipQuery *query;
  gint64 thread_start, thread_end; /* monotonic µs, for the latency read-out */
} LookupResult;

static void
lookup_job_free (gpointer data)
{
  LookupJob *job = data;
  gv_astroclip_index_unref (job->index);
  if (job->model)
    gv_astroclip_model_unref (job->model);
  g_object_unref (job->galaxy);
  g_free (job);
}

static void
lookup_result_free (gpointer data)
{
  LookupResult *result = data;
  gv_astroclip_neighbours_free (result->neighbours);
  gv_astroclip_query_free (result->query);
  g_free (result);
}

/* The neighbours the panel shows: the query's vectors (embedded if need be) and one search. The
 * estimates follow in a task of their own, so the list does not wait for them. */
static void
lookup_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  LookupJob *job = data;
  gint64 thread_start = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GvAstroclipQuery) query =
      gv_astroclip_query_new (job->index, job->model, job->galaxy, &error);
  if (query == NULL) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  if (g_task_return_error_if_cancelled (task))
    return;
  GvAstroclipNeighbours *neighbours =
      gv_astroclip_search (job->index, query, job->mode, job->k, &error);
  if (neighbours == NULL) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  LookupResult *result = g_new0 (LookupResult, 1);
  result->neighbours = neighbours;
  result->query = g_steal_pointer (&query);
  result->thread_start = thread_start;
  result->thread_end = g_get_monotonic_time ();
  g_task_return_pointer (task, result, lookup_result_free);
}

/* Zero-shot estimates per modality, from the paper's k neighbours. */
typedef struct
{
  GvAstroclipIndex *index;
  GvAstroclipQuery *query;
  guint serial;
} EstimateJob;

typedef struct
{
  GvAstroclipEstimate estimates[3][2];
  char *note; /* why some estimates are missing, or NULL */
} EstimateResult;

static void
estimate_job_free (gpointer data)
{
  EstimateJob *job = data;
  gv_astroclip_index_unref (job->index);
  gv_astroclip_query_free (job->query);
  g_free (job);
}

static void
estimate_result_free (gpointer data)
{
  EstimateResult *result = data;
  g_free (result->note);
  g_free (result);
}

static void
estimate_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  EstimateJob *job = data;
  GvCatalogue *catalogue = gv_astroclip_index_get_catalogue (job->index);
  static const AclipSearchMode modes[3] = { ACLIP_SEARCH_IMAGE_IMAGE,
                                            ACLIP_SEARCH_SPECTRUM_SPECTRUM, ACLIP_SEARCH_BOTH };
  static const char *const columns[2] = { "Z", "LOGMSTAR" };
  EstimateResult *result = g_new0 (EstimateResult, 1);
  for (int m = 0; m < 3; m++) {
    for (int c = 0; c < 2; c++)
      result->estimates[m][c] = (GvAstroclipEstimate) { NAN, NAN, 0 };
    if (g_cancellable_is_cancelled (cancellable))
      continue;
    g_autoptr (GError) error = NULL;
    g_autoptr (GvAstroclipNeighbours) knn = gv_astroclip_search (
        job->index, job->query, modes[m], GV_ASTROCLIP_ESTIMATE_K, &error);
    if (knn == NULL) {
      if (result->note == NULL)
        result->note = g_strdup (error->message);
      continue;
    }
    for (int c = 0; c < 2; c++)
      gv_astroclip_estimate (knn, catalogue, columns[c], &result->estimates[m][c]);
  }
  if (g_task_return_error_if_cancelled (task)) {
    estimate_result_free (result);
    return;
  }
  g_task_return_pointer (task, result, estimate_result_free);
}

static void
estimate_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  EstimateJob *job = g_task_get_task_data (G_TASK (res));
  EstimateResult *result = g_task_propagate_pointer (G_TASK (res), NULL);
  if (result == NULL)
    return;
  if (self->window != NULL && job->serial == self->lookup_serial) {
    memcpy (self->estimates, result->estimates, sizeof self->estimates);
    show_estimates (self, TRUE);
    set_status (self->properties_status, result->note);
  }
  estimate_result_free (result);
}

static void
lookup_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  LookupJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  LookupResult *result = g_task_propagate_pointer (G_TASK (res), &error);
  if (self->window == NULL || job->serial != self->lookup_serial) {
    if (result)
      lookup_result_free (result);
    return; /* unloaded, or an older selection: dropped */
  }
  if (result == NULL) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return;
    g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
    show_neighbours (self);
    set_status (self->similar_status, error->message);
    show_estimates (self, FALSE);
    set_status (self->properties_status, error->message);
    update_map_highlight (self);
    return;
  }
  g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
  self->neighbours = g_steal_pointer (&result->neighbours);
  show_neighbours (self);
  gint64 latency = g_get_monotonic_time () - self->lookup_start;
  gboolean embedded = result->query->embedded;
  g_object_set_data (G_OBJECT (self->similar_panel), "astroclip-latency-us",
                     GINT_TO_POINTER ((int) MIN (latency, G_MAXINT)));
  g_object_set_data (G_OBJECT (self->similar_panel), "astroclip-embedded",
                     GINT_TO_POINTER (embedded ? 1 : 0));
  /* Where the time went: waiting for a worker, on the worker, waiting for the main loop. */
  g_object_set_data (G_OBJECT (self->similar_panel), "astroclip-queue-us",
                     GINT_TO_POINTER ((int) (result->thread_start - self->lookup_start)));
  g_object_set_data (G_OBJECT (self->similar_panel), "astroclip-worker-us",
                     GINT_TO_POINTER ((int) (result->thread_end - result->thread_start)));
  int n = self->neighbours->n;
  g_autofree char *status = g_strdup_printf (
      embedded ? g_dngettext (GETTEXT_PACKAGE,
                              "%d neighbour of galaxy %" PRId64 " (%s; embedded now), %.1f ms",
                              "%d neighbours of galaxy %" PRId64 " (%s; embedded now), %.1f ms",
                              (gulong) n)
               : g_dngettext (GETTEXT_PACKAGE, "%d neighbour of galaxy %" PRId64 " (%s), %.1f ms",
                              "%d neighbours of galaxy %" PRId64 " (%s), %.1f ms", (gulong) n),
      n, self->neighbours->query_id, gv_astroclip_mode_label (self->neighbours->mode),
      latency / 1000.0);
  set_status (self->similar_status, status);
  update_map_highlight (self);
  start_overlays (self);

  EstimateJob *estimate = g_new0 (EstimateJob, 1);
  estimate->index = gv_astroclip_index_ref (job->index);
  estimate->query = g_steal_pointer (&result->query);
  estimate->serial = self->lookup_serial;
  g_autoptr (GTask) task = g_task_new (self, self->lookup_cancellable, estimate_done, NULL);
  g_task_set_task_data (task, estimate, estimate_job_free);
  g_task_run_in_thread (task, estimate_thread);
  lookup_result_free (result);
}

static void
cancel_lookup (GvAstroclipAddin *self)
{
  self->lookup_serial++;
  if (self->lookup_cancellable)
    g_cancellable_cancel (self->lookup_cancellable);
  g_clear_object (&self->lookup_cancellable);
}

static void
start_lookup (GvAstroclipAddin *self)
{
  cancel_lookup (self);
  if (self->window == NULL)
    return;
  self->lookup_start = g_get_monotonic_time ();
  if (self->galaxy == NULL || self->index == NULL) {
    g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
    show_neighbours (self);
    show_estimates (self, FALSE);
    update_map_highlight (self);
    const char *text = self->catalogue == NULL  ? _("Open a catalogue to find similar galaxies.")
                       : self->index_loading    ? _("Reading the embeddings…")
                       : self->index == NULL    ? self->index_error
                       : _("Select a galaxy to see its look-alikes.");
    set_status (self->similar_status, text);
    set_status (self->properties_status, text);
    return;
  }
  self->lookup_cancellable = g_cancellable_new ();
  LookupJob *job = g_new0 (LookupJob, 1);
  job->index = gv_astroclip_index_ref (self->index);
  job->model = query_model (self) ? gv_astroclip_model_ref (query_model (self)) : NULL;
  job->galaxy = g_object_ref (self->galaxy);
  job->mode = (AclipSearchMode) gtk_drop_down_get_selected (GTK_DROP_DOWN (self->mode_dropdown));
  job->k = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->k_spin));
  job->serial = self->lookup_serial;
  g_autoptr (GTask) task = g_task_new (self, self->lookup_cancellable, lookup_done, NULL);
  g_task_set_task_data (task, job, lookup_job_free);
  g_task_run_in_thread (task, lookup_thread);
}

static void
on_k_changed (GtkSpinButton *spin, GvAstroclipAddin *self)
{
  start_lookup (self);
}

static void
on_mode_changed (GObject *dropdown, GParamSpec *pspec, GvAstroclipAddin *self)
{
  start_lookup (self);
}

static void
on_overlay_toggled (GtkCheckButton *check, GvAstroclipAddin *self)
{
  start_overlays (self);
}

/* Embeddings --------------------------------------------------------------------------------- */

typedef struct
{
  char *path;
  GvCatalogue *catalogue;
  guint serial;
} IndexJob;

static void
index_job_free (gpointer data)
{
  IndexJob *job = data;
  g_free (job->path);
  g_object_unref (job->catalogue);
  g_free (job);
}

static void
index_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  IndexJob *job = data;
  GError *error = NULL;
  GvAstroclipIndex *index = gv_astroclip_index_open (job->path, job->catalogue, &error);
  if (index == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, index, (GDestroyNotify) gv_astroclip_index_unref);
}

static void
update_other_model (GvAstroclipAddin *self)
{
  self->index_other_model = FALSE;
  if (self->index == NULL || self->model == NULL)
    return;
  const char *made_by = aclip_embeddings_model (gv_astroclip_index_get_embeddings (self->index));
  self->index_other_model = *made_by != '\0' &&
                            strcmp (made_by, gv_astroclip_model_get_checksum (self->model)) != 0;
}

static void
index_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  IndexJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  GvAstroclipIndex *index = g_task_propagate_pointer (G_TASK (res), &error);
  if (self->window == NULL || job->serial != self->index_serial) {
    if (index)
      gv_astroclip_index_unref (index);
    return;
  }
  self->index_loading = FALSE;
  g_clear_pointer (&self->index, gv_astroclip_index_unref);
  g_clear_pointer (&self->index_error, g_free);
  if (index == NULL)
    self->index_error = g_strdup_printf (_("The embeddings could not be read: %s"),
                                         error->message);
  self->index = index;
  gtk_widget_set_visible (self->embed_button, index == NULL);
  update_other_model (self);
  update_model_panel (self);
  start_map (self);
  start_lookup (self);
}

static void
open_embeddings (GvAstroclipAddin *self)
{
  self->index_serial++;
  g_clear_pointer (&self->index, gv_astroclip_index_unref);
  g_clear_pointer (&self->index_error, g_free);
  self->index_loading = FALSE;
  if (self->catalogue == NULL) {
    gtk_widget_set_visible (self->embed_button, FALSE);
    update_model_panel (self);
    start_map (self);
    start_lookup (self);
    return;
  }
  const char *catalogue_path = gv_catalogue_get_path (self->catalogue);
  g_autofree char *path = gv_astroclip_find_embeddings (catalogue_path);
  if (path == NULL) {
    g_autofree char *base = g_path_get_basename (catalogue_path);
    self->index_error = g_strdup_printf (
        self->model ? _("%s has no embeddings yet. Embed the catalogue (button below) to find "
                        "similar galaxies.")
                    : _("%s has no embeddings yet, and no model is loaded to make them: choose "
                        "a model in the Model panel, or train one."),
        base);
    gtk_widget_set_visible (self->embed_button, self->model != NULL);
    update_model_panel (self);
    start_map (self);
    start_lookup (self);
    return;
  }
  self->index_loading = TRUE;
  gtk_widget_set_visible (self->embed_button, FALSE);
  IndexJob *job = g_new0 (IndexJob, 1);
  job->path = g_steal_pointer (&path);
  job->catalogue = g_object_ref (self->catalogue);
  job->serial = self->index_serial;
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, index_done, NULL);
  g_task_set_task_data (task, job, index_job_free);
  g_task_run_in_thread (task, index_thread);
  update_model_panel (self);
  start_lookup (self);
}

static void
on_embed_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  start_run (self, STAGE_EMBED, FALSE, NULL);
  gv_window_present_panel (self->window, GV_ASTROCLIP_PANEL_TRAINING);
}

/* The map ------------------------------------------------------------------------------------ */

typedef struct
{
  GvAstroclipIndex *index;
  AclipModality modality;
  guint serial;
} MapJob;

static void
map_job_free (gpointer data)
{
  MapJob *job = data;
  gv_astroclip_index_unref (job->index);
  g_free (job);
}

static void
map_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  MapJob *job = data;
  GError *error = NULL;
  GvAstroclipMap *map = gv_astroclip_map_new (job->index, job->modality, &error);
  if (map == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, map, (GDestroyNotify) gv_astroclip_map_free);
}

static const double *
map_column_values (GvAstroclipAddin *self)
{
  guint i = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->map_column));
  if (self->catalogue == NULL || self->map_columns == NULL ||
      i >= g_strv_length (self->map_columns))
    return NULL;
  return gv_catalogue_get_column (self->catalogue, self->map_columns[i]);
}

static void
update_map_legend (GvAstroclipAddin *self)
{
  double lo, hi;
  gv_astroclip_map_view_get_range (self->map_view, &lo, &hi);
  guint i = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->map_column));
  if (!isfinite (lo) || self->map_columns == NULL || i >= g_strv_length (self->map_columns)) {
    gtk_label_set_text (GTK_LABEL (self->map_legend), "");
    return;
  }
  g_autofree char *text = g_strdup_printf (_("Colour: %s from %.3g (purple) to %.3g (yellow)"),
                                           self->map_columns[i], lo, hi);
  gtk_label_set_text (GTK_LABEL (self->map_legend), text);
}

static void
map_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  MapJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  GvAstroclipMap *map = g_task_propagate_pointer (G_TASK (res), &error);
  if (self->window == NULL || job->serial != self->map_serial) {
    gv_astroclip_map_free (map);
    return;
  }
  if (map == NULL) {
    gv_astroclip_map_view_set_map (self->map_view, NULL, NULL);
    set_status (self->map_status, error->message);
    return;
  }
  g_autofree char *text = g_strdup_printf (
      _("PCA of %" PRId64 " %s embeddings: axes hold %.0f%% and %.0f%% of the variance. "
        "Click a point to select its galaxy."),
      map->n, aclip_modality_label (map->modality), 100 * map->explained[0],
      100 * map->explained[1]);
  gv_astroclip_map_view_set_map (self->map_view, map, map_column_values (self));
  set_status (self->map_status, text);
  update_map_legend (self);
  update_map_highlight (self);
}

static void
start_map (GvAstroclipAddin *self)
{
  self->map_serial++;
  if (self->index == NULL) {
    gv_astroclip_map_view_set_map (self->map_view, NULL, NULL);
    set_status (self->map_status, self->index_loading ? _("Reading the embeddings…")
                                  : self->index_error ? self->index_error
                                                      : _("No embeddings to map."));
    return;
  }
  set_status (self->map_status, _("Computing the map…"));
  MapJob *job = g_new0 (MapJob, 1);
  job->index = gv_astroclip_index_ref (self->index);
  job->modality = gtk_drop_down_get_selected (GTK_DROP_DOWN (self->map_modality)) == 0
                      ? ACLIP_MODALITY_IMAGE
                      : ACLIP_MODALITY_SPECTRUM;
  job->serial = self->map_serial;
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, map_done, NULL);
  g_task_set_task_data (task, job, map_job_free);
  g_task_run_in_thread (task, map_thread);
}

static void
on_map_modality_changed (GObject *dropdown, GParamSpec *pspec, GvAstroclipAddin *self)
{
  start_map (self);
}

static void
on_map_column_changed (GObject *dropdown, GParamSpec *pspec, GvAstroclipAddin *self)
{
  gv_astroclip_map_view_set_values (self->map_view, map_column_values (self));
  update_map_legend (self);
}

static void
on_map_pick (gint64 catalogue_row, gint64 id, gpointer user_data)
{
  GvAstroclipAddin *self = user_data;
  if (self->window)
    gv_window_select_id (self->window, id);
}

static void
fill_map_columns (GvAstroclipAddin *self)
{
  g_clear_pointer (&self->map_columns, g_strfreev);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  guint z_position = 0, n = 0;
  if (self->catalogue)
    for (const char *const *c = gv_catalogue_get_columns (self->catalogue); c && *c; c++) {
      if (strcmp (*c, "Z") == 0)
        z_position = n;
      g_strv_builder_add (builder, *c);
      n++;
    }
  self->map_columns = g_strv_builder_end (builder);
  GtkStringList *list = gtk_string_list_new ((const char *const *) self->map_columns);
  g_signal_handlers_block_by_func (self->map_column, on_map_column_changed, self);
  gtk_drop_down_set_model (GTK_DROP_DOWN (self->map_column), G_LIST_MODEL (list));
  g_object_unref (list);
  if (n > 0)
    gtk_drop_down_set_selected (GTK_DROP_DOWN (self->map_column), z_position);
  g_signal_handlers_unblock_by_func (self->map_column, on_map_column_changed, self);
}

/* The model ---------------------------------------------------------------------------------- */

typedef struct
{
  char *path;
  guint serial;
} ModelJob;

static void
model_job_free (gpointer data)
{
  ModelJob *job = data;
  g_free (job->path);
  g_free (job);
}

static void
model_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ModelJob *job = data;
  GError *error = NULL;
  GvAstroclipModel *model = gv_astroclip_model_load (job->path, &error);
  if (model == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, model, (GDestroyNotify) gv_astroclip_model_unref);
}

static void
update_model_panel (GvAstroclipAddin *self)
{
  if (self->model_panel == NULL)
    return;
  if (self->model_loading)
    gtk_label_set_text (GTK_LABEL (self->model_path_label), _("Loading the model…"));
  else if (self->model)
    gtk_label_set_text (GTK_LABEL (self->model_path_label),
                        gv_astroclip_model_get_path (self->model));
  else
    gtk_label_set_text (GTK_LABEL (self->model_path_label), _("No model loaded"));
  g_autofree char *config = self->model ? gv_astroclip_model_describe (self->model) : NULL;
  gtk_label_set_text (GTK_LABEL (self->model_config_label), config ? config : "");

  g_autoptr (GString) status = g_string_new (self->model_error);
  if (self->model && self->catalogue) {
    g_autoptr (GError) error = NULL;
    gboolean images = FALSE, spectra = FALSE;
    if (!gv_astroclip_model_check_catalogue (self->model, self->catalogue, &images, &spectra,
                                             &error))
      g_string_append (status, error->message);
    else if (!gv_catalogue_has_spectra (self->catalogue))
      g_string_append (status, _("The catalogue has no spectra: only image searches work."));
    else if (!gv_catalogue_has_images (self->catalogue))
      g_string_append (status, _("The catalogue has no images: only spectrum searches work."));
  }
  if (self->index_other_model) {
    if (status->len)
      g_string_append_c (status, '\n');
    g_string_append (status, _("The embeddings were made by another model than the active one: "
                               "galaxies missing from them cannot be embedded now. Re-embed the "
                               "catalogue with the active model to use it."));
  }
  set_status (self->model_status, status->str);

  g_autofree char *embeddings = NULL;
  if (self->index) {
    const AclipEmbeddings *e = gv_astroclip_index_get_embeddings (self->index);
    embeddings = g_strdup_printf (_("Embeddings: %s\n%" PRId64 " galaxies, %d "
                                    "dimensions, made by model %s"),
                                  aclip_embeddings_path (e), aclip_embeddings_n_rows (e),
                                  aclip_embeddings_dim (e),
                                  *aclip_embeddings_model (e) ? aclip_embeddings_model (e) : "?");
  } else {
    embeddings = g_strdup (self->index_loading ? _("Reading the embeddings…")
                           : self->index_error ? self->index_error
                                               : _("No catalogue open."));
  }
  gtk_label_set_text (GTK_LABEL (self->embeddings_label), embeddings);
}

static void
model_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  ModelJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  GvAstroclipModel *model = g_task_propagate_pointer (G_TASK (res), &error);
  if (self->window == NULL || job->serial != self->model_serial) {
    if (model)
      gv_astroclip_model_unref (model);
    return;
  }
  self->model_loading = FALSE;
  g_clear_pointer (&self->model_error, g_free);
  if (model == NULL) {
    self->model_error = g_strdup_printf (_("The model could not be loaded: %s"), error->message);
    update_model_panel (self);
    return;
  }
  g_clear_pointer (&self->model, gv_astroclip_model_unref);
  self->model = model;
  update_other_model (self);
  if (self->index == NULL && !self->index_loading)
    open_embeddings (self); /* the messages depend on whether a model is there */
  update_model_panel (self);
  start_lookup (self);
}

static void
load_model (GvAstroclipAddin *self, const char *path)
{
  self->model_serial++;
  g_clear_pointer (&self->model_error, g_free);
  if (path == NULL) {
    self->model_loading = FALSE;
    self->model_error = g_strdup (_("No model: the default model is not installed. Choose a "
                                    "checkpoint, or train one in the Training panel."));
    update_model_panel (self);
    return;
  }
  self->model_loading = TRUE;
  ModelJob *job = g_new0 (ModelJob, 1);
  job->path = g_strdup (path);
  job->serial = self->model_serial;
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, model_done, NULL);
  g_task_set_task_data (task, job, model_job_free);
  g_task_run_in_thread (task, model_thread);
  update_model_panel (self);
}

static void
on_default_model_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  g_autofree char *path = gv_astroclip_find_default_model ();
  load_model (self, path);
}

static void
on_model_chosen (GtkNativeDialog *dialog, int response, GvAstroclipAddin *self)
{
  if (response == GTK_RESPONSE_ACCEPT && self->window) {
    g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
    g_autofree char *path = file ? g_file_get_path (file) : NULL;
    if (path)
      load_model (self, path);
  }
  g_object_unref (dialog);
  g_object_unref (self);
}

static void
on_choose_model_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (
      _("Choose an AstroCLIP checkpoint"), GTK_WINDOW (self->window),
      GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _("AstroCLIP checkpoints"));
  gtk_file_filter_add_pattern (filter, "*.ckpt");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  g_object_unref (filter);
  g_signal_connect (dialog, "response", G_CALLBACK (on_model_chosen), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

/* Training ----------------------------------------------------------------------------------- */

static char *
default_out (GvAstroclipAddin *self, int stage)
{
  g_autofree char *dir = models_dir ();
  switch (stage) {
    case STAGE_PRETRAIN_SPECTRA:
      return g_build_filename (dir, "spectra.ckpt", NULL);
    case STAGE_PRETRAIN_IMAGES:
      return g_build_filename (dir, "images.ckpt", NULL);
    case STAGE_ALIGN:
      return g_build_filename (dir, "astroclip.ckpt", NULL);
    default: {
      const char *catalogue = gtk_editable_get_text (GTK_EDITABLE (self->train_catalogue));
      return *catalogue ? gv_astroclip_embeddings_path_for (catalogue) : g_strdup ("");
    }
  }
}

static void
on_stage_changed (GObject *dropdown, GParamSpec *pspec, GvAstroclipAddin *self)
{
  int stage = (int) gtk_drop_down_get_selected (GTK_DROP_DOWN (self->train_stage));
  g_autofree char *out = default_out (self, stage);
  gtk_editable_set_text (GTK_EDITABLE (self->train_out), out);
  static const int batch[] = { 32, 64, 128, 64 };
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->train_batch), batch[stage]);
  gtk_widget_set_sensitive (self->train_epochs, stage != STAGE_EMBED);
  /* The encoders Align starts from: shown for that stage only, with their labels. */
  GtkWidget *inputs[] = { self->train_spectrum_model, self->train_image_model };
  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++) {
    GtkWidget *row = gtk_widget_get_parent (inputs[i]);
    gtk_widget_set_visible (row, stage == STAGE_ALIGN);
    gtk_widget_set_visible (g_object_get_data (G_OBJECT (row), "astroclip-label"),
                            stage == STAGE_ALIGN);
  }
}

static void
update_training_buttons (GvAstroclipAddin *self)
{
  gboolean running = gv_astroclip_trainer_is_running (self->trainer);
  GvAstroclipTrainerStatus status = gv_astroclip_trainer_get_status (self->trainer);
  g_object_set_data (G_OBJECT (self->training_panel), "astroclip-run-status",
                     GINT_TO_POINTER (status));
  gtk_widget_set_sensitive (self->train_start, !running);
  gtk_widget_set_sensitive (self->train_cancel, running);
  gboolean resumable = !running && self->running_stage != STAGE_EMBED && self->running_out &&
                       (status == GV_ASTROCLIP_TRAINER_STOPPED ||
                        status == GV_ASTROCLIP_TRAINER_CRASHED ||
                        status == GV_ASTROCLIP_TRAINER_FAILED) &&
                       g_file_test (self->running_out, G_FILE_TEST_IS_REGULAR);
  gtk_widget_set_sensitive (self->train_resume, resumable);
  gtk_widget_set_visible (self->train_use_model, !running && self->running_stage == STAGE_ALIGN &&
                                                     status == GV_ASTROCLIP_TRAINER_FINISHED);
  gtk_widget_set_sensitive (self->embed_button, !running);
}

static void
draw_loss_curve (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer data)
{
  GvAstroclipAddin *self = data;
  guint n = self->loss_values ? self->loss_values->len : 0;
  cairo_set_source_rgba (cr, 0.5, 0.5, 0.5, 0.4);
  cairo_rectangle (cr, 0.5, 0.5, width - 1, height - 1);
  cairo_set_line_width (cr, 1);
  cairo_stroke (cr);
  if (n < 1)
    return;
  double xmin = G_MAXDOUBLE, xmax = -G_MAXDOUBLE, ymin = G_MAXDOUBLE, ymax = -G_MAXDOUBLE;
  for (guint i = 0; i < n; i++) {
    double x = g_array_index (self->loss_steps, double, i);
    double y = g_array_index (self->loss_values, double, i);
    xmin = MIN (xmin, x), xmax = MAX (xmax, x);
    ymin = MIN (ymin, y), ymax = MAX (ymax, y);
  }
  if (!(xmax > xmin))
    xmax = xmin + 1;
  if (!(ymax > ymin))
    ymax = ymin + 1, ymin -= 1;
  double m = 6;
  cairo_set_source_rgb (cr, 0.12, 0.47, 0.71);
  cairo_set_line_width (cr, 1.5);
  for (guint i = 0; i < n; i++) {
    double x = m + (g_array_index (self->loss_steps, double, i) - xmin) / (xmax - xmin) *
                       (width - 2 * m);
    double y = m + (1 - (g_array_index (self->loss_values, double, i) - ymin) / (ymax - ymin)) *
                       (height - 2 * m);
    if (i == 0)
      cairo_move_to (cr, x, y);
    else
      cairo_line_to (cr, x, y);
  }
  if (n == 1)
    cairo_arc (cr, m, height / 2.0, 2, 0, 2 * G_PI);
  cairo_stroke (cr);
  /* The range, so the curve can be read. */
  g_autofree char *text = g_strdup_printf (_("loss %.3g – %.3g"), ymin, ymax);
  cairo_set_source_rgb (cr, 0.4, 0.4, 0.4);
  cairo_move_to (cr, m + 2, height - m - 2);
  cairo_show_text (cr, text);
}

static void
on_trainer_step (GvAstroclipTrainer *trainer, gint64 step, gint64 total, int epoch, double loss,
                 double seconds_left, GvAstroclipAddin *self)
{
  if (self->window == NULL)
    return;
  double fraction = total > 0 ? (double) step / total : 0;
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->train_progress), CLAMP (fraction, 0, 1));
  g_autofree char *left = format_duration (seconds_left);
  g_autofree char *loss_text = format_value (loss, 4);
  g_autofree char *text = g_strdup_printf (
      _("%s: step %" PRId64 " of %" PRId64 ", epoch %d, loss %s — %s left"),
      stage_commands[self->running_stage], step, total, epoch + 1, loss_text, left);
  gtk_label_set_text (GTK_LABEL (self->train_eta), text);
  g_object_set_data (G_OBJECT (self->training_panel), "astroclip-last-step",
                     GINT_TO_POINTER ((int) MIN (step, G_MAXINT)));
  if (isfinite (loss)) {
    double s = (double) step;
    g_array_append_val (self->loss_steps, s);
    g_array_append_val (self->loss_values, loss);
    g_object_set_data (G_OBJECT (self->training_panel), "astroclip-n-losses",
                       GINT_TO_POINTER (self->loss_values->len));
    gtk_widget_queue_draw (self->train_curve);
  }
}

static void
on_trainer_message (GvAstroclipTrainer *trainer, const char *text, GvAstroclipAddin *self)
{
  if (self->window)
    set_status (self->train_status, text);
}

static void
on_trainer_metric (GvAstroclipTrainer *trainer, const char *name, double value, gint64 step,
                   GvAstroclipAddin *self)
{
  if (self->window == NULL)
    return;
  g_autofree char *v = format_value (value, 4);
  g_autofree char *text = g_strdup_printf (_("%s = %s at step %" PRId64), name, v, step);
  set_status (self->train_status, text);
}

static void
on_trainer_finished (GvAstroclipTrainer *trainer, int status, const char *message,
                     GvAstroclipAddin *self)
{
  if (self->window == NULL)
    return;
  const char *stage = stage_commands[self->running_stage];
  g_autofree char *text = NULL;
  const char *err = gv_astroclip_trainer_get_stderr (trainer);
  switch (status) {
    case GV_ASTROCLIP_TRAINER_FINISHED:
      text = g_strdup_printf (_("%s finished: %s"), stage, message);
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->train_progress), 1.0);
      break;
    case GV_ASTROCLIP_TRAINER_STOPPED:
      text = self->running_stage == STAGE_EMBED
                 ? g_strdup_printf (_("%s was cancelled; nothing was written."), stage)
                 : g_strdup_printf (_("%s was cancelled and saved its checkpoint: Resume goes "
                                      "on from there. %s"),
                                    stage, message);
      break;
    case GV_ASTROCLIP_TRAINER_FAILED:
      text = g_strdup_printf (_("%s failed. %s"), stage, message);
      break;
    default:
      text = g_strdup_printf (_("%s crashed. %s Resume goes on from its last checkpoint."), stage,
                              message);
      break;
  }
  set_status (self->train_status, text);
  gboolean show_stderr = status == GV_ASTROCLIP_TRAINER_FAILED ||
                         status == GV_ASTROCLIP_TRAINER_CRASHED;
  gtk_label_set_text (GTK_LABEL (self->train_stderr), show_stderr ? err : "");
  gtk_widget_set_visible (gtk_widget_get_parent (gtk_widget_get_parent (self->train_stderr)),
                          show_stderr && *err);
  /* A finished pretraining is what the next Align starts from. */
  if (status == GV_ASTROCLIP_TRAINER_FINISHED && self->running_out != NULL) {
    if (self->running_stage == STAGE_PRETRAIN_SPECTRA)
      gtk_editable_set_text (GTK_EDITABLE (self->train_spectrum_model), self->running_out);
    else if (self->running_stage == STAGE_PRETRAIN_IMAGES)
      gtk_editable_set_text (GTK_EDITABLE (self->train_image_model), self->running_out);
  }
  if (self->running_stage == STAGE_EMBED) {
    if (status == GV_ASTROCLIP_TRAINER_FINISHED && self->embed_then_reload)
      open_embeddings (self);
    else if (status != GV_ASTROCLIP_TRAINER_FINISHED)
      set_status (self->similar_status, text);
  }
  self->embed_then_reload = FALSE;
  update_training_buttons (self);
}

static void
start_run (GvAstroclipAddin *self, int stage, gboolean resume, const char *model_override)
{
  g_autofree char *program = gv_astroclip_find_trainer ();
  if (program == NULL) {
    set_status (self->train_status, _("The astroclip program was not found: install it, or set "
                                      "ASTROCLIP to its path."));
    return;
  }
  if (gv_astroclip_trainer_is_running (self->trainer)) {
    set_status (self->train_status, _("A run is going on: cancel it first."));
    return;
  }
  if (stage == STAGE_EMBED && !resume) {
    /* Embedding the open catalogue from the Similar panel (or the Training panel). */
    g_signal_handlers_block_by_func (self->train_stage, on_stage_changed, self);
    gtk_drop_down_set_selected (GTK_DROP_DOWN (self->train_stage), STAGE_EMBED);
    g_signal_handlers_unblock_by_func (self->train_stage, on_stage_changed, self);
    if (*gtk_editable_get_text (GTK_EDITABLE (self->train_catalogue)) == '\0' && self->catalogue)
      gtk_editable_set_text (GTK_EDITABLE (self->train_catalogue),
                             gv_catalogue_get_path (self->catalogue));
    const char *out = gtk_editable_get_text (GTK_EDITABLE (self->train_out));
    if (*out == '\0' || !g_str_has_suffix (out, ".fits")) {
      g_autofree char *def = default_out (self, STAGE_EMBED);
      gtk_editable_set_text (GTK_EDITABLE (self->train_out), def);
    }
  }
  const char *catalogue = gtk_editable_get_text (GTK_EDITABLE (self->train_catalogue));
  const char *out = gtk_editable_get_text (GTK_EDITABLE (self->train_out));
  if (*out == '\0' || (!resume && *catalogue == '\0')) {
    set_status (self->train_status, _("Give a catalogue and an output file."));
    return;
  }
  const char *model = model_override ? model_override
                      : self->model  ? gv_astroclip_model_get_path (self->model)
                                     : NULL;
  if (stage == STAGE_EMBED && model == NULL) {
    set_status (self->train_status, _("Embedding needs a model: choose one in the Model panel."));
    return;
  }
  const char *spectrum_model = gtk_editable_get_text (GTK_EDITABLE (self->train_spectrum_model));
  const char *image_model = gtk_editable_get_text (GTK_EDITABLE (self->train_image_model));
  if (stage == STAGE_ALIGN && !resume) {
    g_autofree char *text = NULL;
    if (!g_file_test (spectrum_model, G_FILE_TEST_IS_REGULAR))
      /* Translators: %s is the checkpoint's path. */
      text = g_strdup_printf (_("The spectrum encoder %s does not exist: run “Pretrain "
                                "spectra” first, or choose a checkpoint."),
                              spectrum_model);
    else if (!g_file_test (image_model, G_FILE_TEST_IS_REGULAR))
      /* Translators: %s is the checkpoint's path. */
      text = g_strdup_printf (_("The image encoder %s does not exist: run “Pretrain images” "
                                "first, or choose a checkpoint."),
                              image_model);
    if (text != NULL) {
      set_status (self->train_status, text);
      return;
    }
  }
  g_auto (GStrv) extra = NULL;
  const char *extra_text = gtk_editable_get_text (GTK_EDITABLE (self->train_extra));
  g_autoptr (GError) error = NULL;
  if (*extra_text && !g_shell_parse_argv (extra_text, NULL, &extra, &error)) {
    g_autofree char *text = g_strdup_printf (_("The extra options cannot be read: %s"),
                                             error->message);
    set_status (self->train_status, text);
    return;
  }
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (stage_commands[stage]));
  g_ptr_array_add (args, g_strdup ("--out"));
  g_ptr_array_add (args, g_strdup (out));
  if (resume) {
    g_ptr_array_add (args, g_strdup ("--resume"));
  } else {
    g_ptr_array_add (args, g_strdup ("--catalogue"));
    g_ptr_array_add (args, g_strdup (catalogue));
    int epochs = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->train_epochs));
    int batch = gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (self->train_batch));
    /* --steps among the extra options replaces --epochs (the trainer takes one of them). */
    gboolean steps_given = FALSE;
    for (char **e = extra; e && *e; e++)
      steps_given |= strcmp (*e, "--steps") == 0 || g_str_has_prefix (*e, "--steps=");
    if (stage != STAGE_EMBED && !steps_given) {
      g_ptr_array_add (args, g_strdup ("--epochs"));
      g_ptr_array_add (args, g_strdup_printf ("%d", epochs));
    }
    g_ptr_array_add (args, g_strdup ("--batch-size"));
    g_ptr_array_add (args, g_strdup_printf ("%d", batch));
    if (stage == STAGE_ALIGN) {
      g_ptr_array_add (args, g_strdup ("--spectrum-model"));
      g_ptr_array_add (args, g_strdup (spectrum_model));
      g_ptr_array_add (args, g_strdup ("--image-model"));
      g_ptr_array_add (args, g_strdup (image_model));
    }
    if (stage == STAGE_EMBED) {
      g_ptr_array_add (args, g_strdup ("--model"));
      g_ptr_array_add (args, g_strdup (model));
    }
    for (char **e = extra; e && *e; e++)
      g_ptr_array_add (args, g_strdup (*e));
  }
  g_ptr_array_add (args, NULL);
  if (!gv_astroclip_trainer_start (self->trainer, program, (const char *const *) args->pdata,
                                   &error)) {
    g_autofree char *text = g_strdup_printf (_("The trainer could not start: %s"),
                                             error->message);
    set_status (self->train_status, text);
    return;
  }
  self->running_stage = stage;
  /* The process id, for tests that check unloading stops it. */
  const char *pid = gv_astroclip_trainer_get_identifier (self->trainer);
  g_object_set_data (G_OBJECT (self->training_panel), "astroclip-pid",
                     GINT_TO_POINTER (pid ? atoi (pid) : 0));
  g_free (self->running_out);
  self->running_out = g_strdup (out);
  self->embed_then_reload =
      stage == STAGE_EMBED && self->catalogue &&
      g_strcmp0 (catalogue, gv_catalogue_get_path (self->catalogue)) == 0;
  if (!resume) {
    g_array_set_size (self->loss_steps, 0);
    g_array_set_size (self->loss_values, 0);
    g_object_set_data (G_OBJECT (self->training_panel), "astroclip-n-losses", NULL);
  }
  gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (self->train_progress), 0);
  g_autofree char *text = g_strdup_printf (resume ? _("Resuming %s…") : _("Starting %s…"),
                                           stage_commands[stage]);
  gtk_label_set_text (GTK_LABEL (self->train_eta), text);
  set_status (self->train_status, gv_astroclip_trainer_get_command_line (self->trainer));
  gtk_widget_set_visible (gtk_widget_get_parent (gtk_widget_get_parent (self->train_stderr)),
                          FALSE);
  gtk_widget_queue_draw (self->train_curve);
  update_training_buttons (self);
}

static void
on_train_start (GtkButton *button, GvAstroclipAddin *self)
{
  start_run (self, (int) gtk_drop_down_get_selected (GTK_DROP_DOWN (self->train_stage)), FALSE,
             NULL);
}

static void
on_train_cancel (GtkButton *button, GvAstroclipAddin *self)
{
  gv_astroclip_trainer_cancel (self->trainer);
  gtk_label_set_text (GTK_LABEL (self->train_eta), _("Stopping: saving a checkpoint…"));
}

static void
on_train_resume (GtkButton *button, GvAstroclipAddin *self)
{
  g_autofree char *out = g_strdup (self->running_out);
  gtk_editable_set_text (GTK_EDITABLE (self->train_out), out);
  start_run (self, self->running_stage, TRUE, NULL);
}

static void
on_use_model (GtkButton *button, GvAstroclipAddin *self)
{
  /* Make the aligned model the active one and re-embed the open catalogue with it. */
  g_autofree char *path = g_strdup (self->running_out);
  load_model (self, path);
  if (self->catalogue) {
    gtk_editable_set_text (GTK_EDITABLE (self->train_catalogue),
                           gv_catalogue_get_path (self->catalogue));
    g_autofree char *out = gv_astroclip_embeddings_path_for (gv_catalogue_get_path (self->catalogue));
    gtk_editable_set_text (GTK_EDITABLE (self->train_out), out);
    gtk_editable_set_text (GTK_EDITABLE (self->train_extra), "");
    start_run (self, STAGE_EMBED, FALSE, path);
  }
}

/* A file chosen for one of the Training panel's entries (the dialog's "astroclip-entry"). */
static void
on_entry_file_chosen (GtkNativeDialog *dialog, int response, GvAstroclipAddin *self)
{
  GtkEditable *entry = g_object_get_data (G_OBJECT (dialog), "astroclip-entry");
  if (response == GTK_RESPONSE_ACCEPT && self->window) {
    g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
    g_autofree char *path = file ? g_file_get_path (file) : NULL;
    if (path)
      gtk_editable_set_text (entry, path);
  }
  g_object_unref (dialog);
  g_object_unref (self);
}

static void
choose_file_for_entry (GvAstroclipAddin *self, GtkWidget *entry, const char *title,
                       const char *filter_name, const char *const *patterns)
{
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (
      title, GTK_WINDOW (self->window), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, filter_name);
  for (const char *const *p = patterns; *p; p++)
    gtk_file_filter_add_pattern (filter, *p);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  g_object_unref (filter);
  /* Start where the entry's file is. */
  const char *current = gtk_editable_get_text (GTK_EDITABLE (entry));
  if (*current) {
    g_autofree char *dir = g_path_get_dirname (current);
    g_autoptr (GFile) folder = g_file_new_for_path (dir);
    if (g_file_test (dir, G_FILE_TEST_IS_DIR))
      gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (dialog), folder, NULL);
  }
  g_object_set_data (G_OBJECT (dialog), "astroclip-entry", entry);
  g_signal_connect (dialog, "response", G_CALLBACK (on_entry_file_chosen), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
on_choose_catalogue_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  const char *patterns[] = { "*.fits", "*.fit", NULL };
  choose_file_for_entry (self, self->train_catalogue, _("Choose a catalogue to train on"),
                         _("FITS catalogues"), patterns);
}

static void
on_choose_encoder_clicked (GtkButton *button, GvAstroclipAddin *self)
{
  const char *patterns[] = { "*.ckpt", NULL };
  choose_file_for_entry (self, g_object_get_data (G_OBJECT (button), "astroclip-entry"),
                         _("Choose a pretrained encoder"), _("AstroCLIP checkpoints"), patterns);
}

/* Export ------------------------------------------------------------------------------------- */

typedef struct
{
  GvAstroclipNeighbours *neighbours;
  GvCatalogue *catalogue;
  char *path;
  gboolean fits;
} ExportJob;

static void
export_job_free (gpointer data)
{
  ExportJob *job = data;
  gv_astroclip_neighbours_free (job->neighbours);
  g_object_unref (job->catalogue);
  g_free (job->path);
  g_free (job);
}

/* Worker thread: the file is written away from the main loop (a slow disk never stalls it). */
static void
export_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ExportJob *job = task_data;
  GError *error = NULL;
  gboolean ok = job->fits ? gv_astroclip_neighbours_write_fits (job->neighbours, job->catalogue,
                                                                job->path, &error)
                          : gv_astroclip_neighbours_write_csv (job->neighbours, job->catalogue,
                                                               job->path, &error);
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
on_exported (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) source;
  ExportJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);
  if (self->window == NULL) /* unloaded meanwhile */
    return;
  g_autofree char *text =
      ok ? g_strdup_printf (_("Neighbour list saved to %s"), job->path)
         : g_strdup_printf (_("The neighbour list could not be saved: %s"), error->message);
  gv_window_show_message (self->window, ok ? GTK_MESSAGE_INFO : GTK_MESSAGE_ERROR, text);
}

static void
on_export_chosen (GtkNativeDialog *dialog, int response, GvAstroclipAddin *self)
{
  gboolean fits = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "astroclip-fits"));
  g_autoptr (GFile) file = response == GTK_RESPONSE_ACCEPT
                               ? gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog))
                               : NULL;
  g_autofree char *path = file ? g_file_get_path (file) : NULL;
  if (path && self->window && self->neighbours && self->catalogue) {
    /* The list as it is now: the selection may change while it is written. */
    ExportJob *job = g_new0 (ExportJob, 1);
    job->neighbours = gv_astroclip_neighbours_copy (self->neighbours);
    job->catalogue = g_object_ref (self->catalogue);
    job->path = g_steal_pointer (&path);
    job->fits = fits;
    g_autoptr (GTask) task = g_task_new (self, NULL, on_exported, NULL);
    g_task_set_source_tag (task, on_export_chosen);
    g_task_set_task_data (task, job, export_job_free);
    g_task_run_in_thread (task, export_thread);
  }
  g_object_unref (dialog);
  g_object_unref (self);
}

static void
export_neighbours (GvAstroclipAddin *self, gboolean fits)
{
  if (self->neighbours == NULL || self->window == NULL) {
    if (self->window)
      gv_window_show_message (self->window, GTK_MESSAGE_INFO,
                              _("There is no neighbour list to export: select a galaxy."));
    return;
  }
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (
      fits ? _("Export the neighbour list as FITS") : _("Export the neighbour list as CSV"),
      GTK_WINDOW (self->window), GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
  g_autofree char *name = g_strdup_printf ("neighbours-%" G_GINT64_FORMAT "-%s.%s",
                                           self->neighbours->query_id,
                                           aclip_search_mode_name (self->neighbours->mode),
                                           fits ? "fits" : "csv");
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), name);
  g_object_set_data (G_OBJECT (dialog), "astroclip-fits", GINT_TO_POINTER (fits));
  g_signal_connect (dialog, "response", G_CALLBACK (on_export_chosen), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
on_export_csv (GtkButton *button, GvAstroclipAddin *self)
{
  export_neighbours (self, FALSE);
}

static void
on_export_fits (GtkButton *button, GvAstroclipAddin *self)
{
  export_neighbours (self, TRUE);
}

static void
on_export_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  GvAstroclipAddin *self = user_data;
  export_neighbours (self, strcmp (g_action_get_name (G_ACTION (action)), ACTION_FITS) == 0);
}

/* Building the panels ------------------------------------------------------------------------ */

static GtkWidget *
build_similar_panel (GvAstroclipAddin *self)
{
  GtkWidget *box = panel_box ();
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  const char *modes[ACLIP_N_SEARCH_MODES + 1];
  for (int m = 0; m < ACLIP_N_SEARCH_MODES; m++)
    modes[m] = gv_astroclip_mode_label (m);
  modes[ACLIP_N_SEARCH_MODES] = NULL;
  self->mode_dropdown = gtk_drop_down_new_from_strings (modes);
  gtk_drop_down_set_selected (GTK_DROP_DOWN (self->mode_dropdown), ACLIP_SEARCH_BOTH);
  gtk_widget_set_tooltip_text (self->mode_dropdown,
                               _("What to compare: the selected galaxy's image or spectrum "
                                 "with the others' images or spectra; “image and spectrum” "
                                 "averages the image–image and spectrum–spectrum similarities"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->mode_dropdown),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Search mode"), -1);
  gtk_widget_set_hexpand (self->mode_dropdown, TRUE);
  gtk_box_append (GTK_BOX (row), self->mode_dropdown);
  GtkWidget *k_label = gtk_label_new_with_mnemonic (_("_k"));
  gtk_box_append (GTK_BOX (row), k_label);
  self->k_spin = gtk_spin_button_new_with_range (1, 200, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->k_spin), GV_ASTROCLIP_DEFAULT_K);
  gtk_label_set_mnemonic_widget (GTK_LABEL (k_label), self->k_spin);
  gtk_widget_set_tooltip_text (self->k_spin, _("Number of neighbours"));
  gtk_box_append (GTK_BOX (row), self->k_spin);
  gtk_box_append (GTK_BOX (box), row);

  self->similar_status = status_label ();
  gtk_box_append (GTK_BOX (box), self->similar_status);
  self->embed_button = gtk_button_new_with_mnemonic (_("_Embed the catalogue"));
  gtk_widget_set_tooltip_text (self->embed_button,
                               _("Embed every galaxy of the open catalogue with the active "
                                 "model (progress in the Training panel)"));
  gtk_widget_set_visible (self->embed_button, FALSE);
  g_signal_connect (self->embed_button, "clicked", G_CALLBACK (on_embed_clicked), self);
  gtk_box_append (GTK_BOX (box), self->embed_button);

  self->flow = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (self->flow), GTK_SELECTION_NONE);
  gtk_flow_box_set_homogeneous (GTK_FLOW_BOX (self->flow), TRUE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (self->flow), 4);
  gtk_flow_box_set_min_children_per_line (GTK_FLOW_BOX (self->flow), 2);
  GtkWidget *scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scrolled), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), self->flow);
  gtk_widget_set_vexpand (scrolled, TRUE);
  gtk_widget_set_size_request (scrolled, 380, 300);
  gtk_box_append (GTK_BOX (box), scrolled);

  self->overlay_check = gtk_check_button_new_with_mnemonic (
      _("_Overlay their spectra on the selected galaxy’s"));
  gtk_check_button_set_active (GTK_CHECK_BUTTON (self->overlay_check), TRUE);
  g_signal_connect (self->overlay_check, "toggled", G_CALLBACK (on_overlay_toggled), self);
  gtk_box_append (GTK_BOX (box), self->overlay_check);

  self->export_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *csv = gtk_button_new_with_mnemonic (_("Export _CSV…"));
  GtkWidget *fits = gtk_button_new_with_mnemonic (_("Export _FITS…"));
  gtk_widget_set_tooltip_text (csv, _("Save the neighbour list (IDs, similarities, columns) as "
                                      "CSV"));
  gtk_widget_set_tooltip_text (fits, _("Save the neighbour list (IDs, similarities, columns) as "
                                       "a FITS table"));
  g_signal_connect (csv, "clicked", G_CALLBACK (on_export_csv), self);
  g_signal_connect (fits, "clicked", G_CALLBACK (on_export_fits), self);
  gtk_box_append (GTK_BOX (self->export_box), csv);
  gtk_box_append (GTK_BOX (self->export_box), fits);
  gtk_widget_set_sensitive (self->export_box, FALSE);
  gtk_box_append (GTK_BOX (box), self->export_box);

  g_signal_connect (self->k_spin, "value-changed", G_CALLBACK (on_k_changed), self);
  g_signal_connect (self->mode_dropdown, "notify::selected", G_CALLBACK (on_mode_changed), self);
  g_object_set_data (G_OBJECT (box), "astroclip-status", self->similar_status);
  g_object_set_data (G_OBJECT (box), "astroclip-k", self->k_spin);
  g_object_set_data (G_OBJECT (box), "astroclip-mode", self->mode_dropdown);
  g_object_set_data (G_OBJECT (box), "astroclip-flow", self->flow);
  g_object_set_data (G_OBJECT (box), "astroclip-embed", self->embed_button);
  return box;
}

static GtkWidget *
build_properties_panel (GvAstroclipAddin *self)
{
  GtkWidget *box = panel_box ();
  GtkWidget *intro = gtk_label_new (
      _("Zero-shot estimates: the distance-weighted mean of the 16 nearest galaxies’ catalogue "
        "values in each embedding space, ± their weighted spread."));
  gtk_label_set_wrap (GTK_LABEL (intro), TRUE);
  gtk_label_set_xalign (GTK_LABEL (intro), 0);
  gtk_box_append (GTK_BOX (box), intro);
  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  const char *rows[] = { N_("Image neighbours"), N_("Spectrum neighbours"),
                         N_("Both"), N_("Catalogue") };
  const char *headers[] = { N_("Redshift z"), N_("log M* [M☉]") };
  for (int c = 0; c < 2; c++) {
    GtkWidget *h = gtk_label_new (_(headers[c]));
    gtk_widget_add_css_class (h, "heading");
    gtk_grid_attach (GTK_GRID (grid), h, c + 1, 0, 1, 1);
  }
  for (int r = 0; r < 4; r++) {
    GtkWidget *l = gtk_label_new (_(rows[r]));
    gtk_label_set_xalign (GTK_LABEL (l), 0);
    gtk_grid_attach (GTK_GRID (grid), l, 0, r + 1, 1, 1);
    for (int c = 0; c < 2; c++) {
      self->estimate_labels[r][c] = gtk_label_new ("—");
      gtk_label_set_selectable (GTK_LABEL (self->estimate_labels[r][c]), TRUE);
      gtk_widget_add_css_class (self->estimate_labels[r][c], "numeric");
      gtk_grid_attach (GTK_GRID (grid), self->estimate_labels[r][c], c + 1, r + 1, 1, 1);
    }
  }
  gtk_box_append (GTK_BOX (box), grid);
  self->properties_status = status_label ();
  gtk_box_append (GTK_BOX (box), self->properties_status);
  g_object_set_data (G_OBJECT (box), "astroclip-estimates", self->estimates);
  g_object_set_data (G_OBJECT (box), "astroclip-status", self->properties_status);
  return box;
}

static GtkWidget *
build_map_panel (GvAstroclipAddin *self)
{
  GtkWidget *box = panel_box ();
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  const char *modalities[] = { _("Image embeddings"), _("Spectrum embeddings"), NULL };
  self->map_modality = gtk_drop_down_new_from_strings (modalities);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->map_modality),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Embeddings to map"), -1);
  gtk_box_append (GTK_BOX (row), self->map_modality);
  self->map_column = gtk_drop_down_new (NULL, NULL);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->map_column),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Colour by column"), -1);
  gtk_widget_set_tooltip_text (self->map_column, _("The catalogue column that colours the points"));
  gtk_widget_set_hexpand (self->map_column, TRUE);
  gtk_box_append (GTK_BOX (row), self->map_column);
  gtk_box_append (GTK_BOX (box), row);
  self->map_view = gv_astroclip_map_view_new (on_map_pick, self);
  gtk_widget_set_size_request (self->map_view, 360, 360);
  gtk_box_append (GTK_BOX (box), self->map_view);
  self->map_legend = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->map_legend), 0);
  gtk_box_append (GTK_BOX (box), self->map_legend);
  self->map_status = status_label ();
  gtk_box_append (GTK_BOX (box), self->map_status);
  g_signal_connect (self->map_modality, "notify::selected", G_CALLBACK (on_map_modality_changed),
                    self);
  g_signal_connect (self->map_column, "notify::selected", G_CALLBACK (on_map_column_changed),
                    self);
  g_object_set_data (G_OBJECT (box), "astroclip-map-view", self->map_view);
  g_object_set_data (G_OBJECT (box), "astroclip-status", self->map_status);
  return box;
}

static GtkWidget *
labelled (GtkWidget *grid, int row, const char *mnemonic, GtkWidget *widget)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), widget);
  gtk_grid_attach (GTK_GRID (grid), label, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), widget, 1, row, 1, 1);
  gtk_widget_set_hexpand (widget, TRUE);
  return widget;
}

static GtkWidget *
build_training_panel (GvAstroclipAddin *self)
{
  GtkWidget *box = panel_box ();
  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (grid), 8);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 4);
  const char *stages[] = { _("Pretrain spectra"), _("Pretrain images"), _("Align"),
                           _("Embed catalogue"), NULL };
  self->train_stage = labelled (grid, 0, _("_Stage"), gtk_drop_down_new_from_strings (stages));
  GtkWidget *catalogue_row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
  self->train_catalogue = gtk_entry_new ();
  gtk_widget_set_hexpand (self->train_catalogue, TRUE);
  gtk_box_append (GTK_BOX (catalogue_row), self->train_catalogue);
  GtkWidget *choose = gtk_button_new_from_icon_name ("document-open-symbolic");
  gtk_widget_set_tooltip_text (choose, _("Choose the catalogue"));
  g_signal_connect (choose, "clicked", G_CALLBACK (on_choose_catalogue_clicked), self);
  gtk_box_append (GTK_BOX (catalogue_row), choose);
  labelled (grid, 1, _("_Catalogue"), catalogue_row);
  gtk_label_set_mnemonic_widget (
      GTK_LABEL (gtk_grid_get_child_at (GTK_GRID (grid), 0, 1)), self->train_catalogue);
  self->train_out = labelled (grid, 2, _("_Output"), gtk_entry_new ());
  self->train_epochs = labelled (grid, 3, _("_Epochs"), gtk_spin_button_new_with_range (1, 1000, 1));
  self->train_batch =
      labelled (grid, 4, _("_Batch size"), gtk_spin_button_new_with_range (2, 4096, 1));
  self->train_extra = labelled (grid, 5, _("E_xtra options"), gtk_entry_new ());
  gtk_widget_set_tooltip_text (self->train_extra,
                               _("More options for astroclip, e.g. “--steps 200 --lr 1e-3” "
                                 "(--steps replaces the epochs; see astroclip COMMAND --help)"));
  g_autofree char *dir = models_dir ();
  const char *model_labels[] = { _("Sp_ectrum encoder"), _("_Image encoder") };
  const char *model_files[] = { "spectra.ckpt", "images.ckpt" };
  const char *model_tips[] = { N_("Choose the checkpoint of Pretrain spectra"),
                               N_("Choose the checkpoint of Pretrain images") };
  GtkWidget **model_entries[] = { &self->train_spectrum_model, &self->train_image_model };
  for (int i = 0; i < 2; i++) {
    GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 4);
    GtkWidget *entry = *model_entries[i] = gtk_entry_new ();
    g_autofree char *path = g_build_filename (dir, model_files[i], NULL);
    gtk_editable_set_text (GTK_EDITABLE (entry), path);
    gtk_widget_set_hexpand (entry, TRUE);
    gtk_box_append (GTK_BOX (row), entry);
    GtkWidget *button = gtk_button_new_from_icon_name ("document-open-symbolic");
    gtk_widget_set_tooltip_text (button, _(model_tips[i]));
    g_object_set_data (G_OBJECT (button), "astroclip-entry", entry);
    g_signal_connect (button, "clicked", G_CALLBACK (on_choose_encoder_clicked), self);
    gtk_box_append (GTK_BOX (row), button);
    labelled (grid, 6 + i, model_labels[i], row);
    GtkWidget *label = gtk_grid_get_child_at (GTK_GRID (grid), 0, 6 + i);
    gtk_label_set_mnemonic_widget (GTK_LABEL (label), entry);
    g_object_set_data (G_OBJECT (row), "astroclip-label", label);
  }
  gtk_box_append (GTK_BOX (box), grid);

  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->train_start = gtk_button_new_with_mnemonic (_("_Start"));
  gtk_widget_add_css_class (self->train_start, "suggested-action");
  self->train_cancel = gtk_button_new_with_mnemonic (_("Ca_ncel"));
  self->train_resume = gtk_button_new_with_mnemonic (_("_Resume"));
  g_signal_connect (self->train_start, "clicked", G_CALLBACK (on_train_start), self);
  g_signal_connect (self->train_cancel, "clicked", G_CALLBACK (on_train_cancel), self);
  g_signal_connect (self->train_resume, "clicked", G_CALLBACK (on_train_resume), self);
  gtk_box_append (GTK_BOX (buttons), self->train_start);
  gtk_box_append (GTK_BOX (buttons), self->train_cancel);
  gtk_box_append (GTK_BOX (buttons), self->train_resume);
  gtk_box_append (GTK_BOX (box), buttons);

  self->train_progress = gtk_progress_bar_new ();
  gtk_box_append (GTK_BOX (box), self->train_progress);
  self->train_eta = gtk_label_new (_("Not running"));
  gtk_label_set_xalign (GTK_LABEL (self->train_eta), 0);
  gtk_label_set_wrap (GTK_LABEL (self->train_eta), TRUE);
  gtk_box_append (GTK_BOX (box), self->train_eta);
  self->train_curve = gtk_drawing_area_new ();
  gtk_widget_set_size_request (self->train_curve, 300, 140);
  gtk_drawing_area_set_draw_func (GTK_DRAWING_AREA (self->train_curve), draw_loss_curve, self,
                                  NULL);
  gtk_box_append (GTK_BOX (box), self->train_curve);
  self->train_status = status_label ();
  gtk_box_append (GTK_BOX (box), self->train_status);
  self->train_use_model = gtk_button_new_with_mnemonic (_("_Use this model and re-embed"));
  gtk_widget_set_visible (self->train_use_model, FALSE);
  g_signal_connect (self->train_use_model, "clicked", G_CALLBACK (on_use_model), self);
  gtk_box_append (GTK_BOX (box), self->train_use_model);
  /* The trainer's standard error, shown when it fails. */
  self->train_stderr = gtk_label_new (NULL);
  gtk_label_set_selectable (GTK_LABEL (self->train_stderr), TRUE);
  gtk_label_set_wrap (GTK_LABEL (self->train_stderr), TRUE);
  gtk_label_set_xalign (GTK_LABEL (self->train_stderr), 0);
  gtk_widget_add_css_class (self->train_stderr, "monospace");
  GtkWidget *scrolled = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), self->train_stderr);
  gtk_scrolled_window_set_min_content_height (GTK_SCROLLED_WINDOW (scrolled), 100);
  gtk_widget_set_visible (scrolled, FALSE);
  gtk_box_append (GTK_BOX (box), scrolled);

  g_signal_connect (self->train_stage, "notify::selected", G_CALLBACK (on_stage_changed), self);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (self->train_epochs), 1);
  on_stage_changed (NULL, NULL, self);

  GObject *o = G_OBJECT (box);
  g_object_set_data (o, "astroclip-trainer", self->trainer);
  g_object_set_data (o, "astroclip-stage", self->train_stage);
  g_object_set_data (o, "astroclip-catalogue", self->train_catalogue);
  g_object_set_data (o, "astroclip-out", self->train_out);
  g_object_set_data (o, "astroclip-epochs", self->train_epochs);
  g_object_set_data (o, "astroclip-batch-size", self->train_batch);
  g_object_set_data (o, "astroclip-extra", self->train_extra);
  g_object_set_data (o, "astroclip-spectrum-model", self->train_spectrum_model);
  g_object_set_data (o, "astroclip-image-model", self->train_image_model);
  g_object_set_data (o, "astroclip-start", self->train_start);
  g_object_set_data (o, "astroclip-cancel", self->train_cancel);
  g_object_set_data (o, "astroclip-resume", self->train_resume);
  g_object_set_data (o, "astroclip-use-model", self->train_use_model);
  g_object_set_data (o, "astroclip-progress", self->train_progress);
  g_object_set_data (o, "astroclip-status", self->train_status);
  return box;
}

static GtkWidget *
build_model_panel (GvAstroclipAddin *self)
{
  GtkWidget *box = panel_box ();
  GtkWidget *heading = gtk_label_new (_("Active model"));
  gtk_widget_add_css_class (heading, "heading");
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_box_append (GTK_BOX (box), heading);
  self->model_path_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->model_path_label), 0);
  gtk_label_set_wrap (GTK_LABEL (self->model_path_label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (self->model_path_label), PANGO_WRAP_CHAR);
  gtk_label_set_selectable (GTK_LABEL (self->model_path_label), TRUE);
  gtk_box_append (GTK_BOX (box), self->model_path_label);
  self->model_config_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->model_config_label), 0);
  gtk_label_set_wrap (GTK_LABEL (self->model_config_label), TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->model_config_label), TRUE);
  gtk_widget_add_css_class (self->model_config_label, "caption");
  gtk_box_append (GTK_BOX (box), self->model_config_label);
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *def = gtk_button_new_with_mnemonic (_("_Default model"));
  GtkWidget *choose = gtk_button_new_with_mnemonic (_("_Checkpoint file…"));
  g_signal_connect (def, "clicked", G_CALLBACK (on_default_model_clicked), self);
  g_signal_connect (choose, "clicked", G_CALLBACK (on_choose_model_clicked), self);
  gtk_box_append (GTK_BOX (buttons), def);
  gtk_box_append (GTK_BOX (buttons), choose);
  gtk_box_append (GTK_BOX (box), buttons);
  self->model_status = status_label ();
  gtk_box_append (GTK_BOX (box), self->model_status);
  self->embeddings_label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (self->embeddings_label), 0);
  gtk_label_set_wrap (GTK_LABEL (self->embeddings_label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (self->embeddings_label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_selectable (GTK_LABEL (self->embeddings_label), TRUE);
  gtk_widget_set_margin_top (self->embeddings_label, 12);
  gtk_box_append (GTK_BOX (box), self->embeddings_label);
  g_object_set_data (G_OBJECT (box), "astroclip-model-path", self->model_path_label);
  g_object_set_data (G_OBJECT (box), "astroclip-model-config", self->model_config_label);
  g_object_set_data (G_OBJECT (box), "astroclip-status", self->model_status);
  return box;
}

static void
install_css (GvAstroclipAddin *self)
{
  g_autoptr (GString) css = g_string_new (".astroclip-thumb { border-radius: 3px; "
                                          "background: #101010; }\n");
  for (int i = 0; i < N_COLOURS; i++)
    g_string_append_printf (css, ".astroclip-c%d { border: 3px solid %s; }\n", i,
                            neighbour_colours[i]);
  self->css = gtk_css_provider_new ();
  gtk_css_provider_load_from_data (self->css, css->str, (gssize) css->len);
  gtk_style_context_add_provider_for_display (gtk_widget_get_display (GTK_WIDGET (self->window)),
                                              GTK_STYLE_PROVIDER (self->css),
                                              GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
}

/* The addin interface ------------------------------------------------------------------------ */

static void
set_catalogue (GvAstroclipAddin *self, GvCatalogue *catalogue)
{
  if (catalogue == self->catalogue && self->catalogue_known)
    return;
  self->catalogue_known = TRUE;
  cancel_lookup (self);
  g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
  show_neighbours (self);
  if (self->thumbnails) {
    g_clear_signal_handler (&self->thumbnail_handler, self->thumbnails);
    g_clear_object (&self->thumbnails);
  }
  g_set_object (&self->catalogue, catalogue);
  g_clear_object (&self->galaxy);
  if (catalogue && gv_catalogue_has_images (catalogue)) {
    self->thumbnails = gv_thumbnails_new (catalogue, THUMB_SIZE, 16 * 1024 * 1024);
    self->thumbnail_handler = g_signal_connect (self->thumbnails, "thumbnail-ready",
                                                G_CALLBACK (on_thumbnail_ready), self);
  }
  fill_map_columns (self);
  if (catalogue && !gv_astroclip_trainer_is_running (self->trainer)) {
    gtk_editable_set_text (GTK_EDITABLE (self->train_catalogue), gv_catalogue_get_path (catalogue));
    on_stage_changed (NULL, NULL, self);
  }
  open_embeddings (self);
}

static void
astroclip_catalogue_changed (GvWindowAddin *addin, GvWindow *window, GvCatalogue *catalogue)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) addin;
  if (self->window)
    set_catalogue (self, catalogue);
}

static void
astroclip_selection_changed (GvWindowAddin *addin, GvWindow *window, GvGalaxy *galaxy)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) addin;
  if (self->window == NULL)
    return;
  if (galaxy && gv_galaxy_get_catalogue (galaxy) != self->catalogue)
    set_catalogue (self, gv_galaxy_get_catalogue (galaxy));
  gboolean changed = galaxy != self->galaxy;
  g_set_object (&self->galaxy, galaxy);
  if (changed)
    show_estimates (self, FALSE);
  start_lookup (self);
}

static void
astroclip_load (GvWindowAddin *addin, GvWindow *window)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) addin;
  self->window = window;
  self->cancellable = g_cancellable_new ();
  self->cell_pictures = g_ptr_array_new ();
  self->loss_steps = g_array_new (FALSE, FALSE, sizeof (double));
  self->loss_values = g_array_new (FALSE, FALSE, sizeof (double));
  self->trainer = gv_astroclip_trainer_new ();
  self->running_stage = STAGE_PRETRAIN_SPECTRA;
  g_signal_connect (self->trainer, "step", G_CALLBACK (on_trainer_step), self);
  g_signal_connect (self->trainer, "message", G_CALLBACK (on_trainer_message), self);
  g_signal_connect (self->trainer, "metric", G_CALLBACK (on_trainer_metric), self);
  g_signal_connect (self->trainer, "finished", G_CALLBACK (on_trainer_finished), self);
  install_css (self);

  self->similar_panel = build_similar_panel (self);
  self->properties_panel = build_properties_panel (self);
  self->map_panel = build_map_panel (self);
  self->training_panel = build_training_panel (self);
  self->model_panel = build_model_panel (self);
  gv_window_add_panel (window, GV_ASTROCLIP_PANEL_SIMILAR, _("Similar"), "edit-find-symbolic",
                       self->similar_panel);
  gv_window_add_panel (window, GV_ASTROCLIP_PANEL_PROPERTIES, _("Properties"),
                       "document-properties-symbolic", self->properties_panel);
  gv_window_add_panel (window, GV_ASTROCLIP_PANEL_MAP, _("Map"), "find-location-symbolic",
                       self->map_panel);
  gv_window_add_panel (window, GV_ASTROCLIP_PANEL_TRAINING, _("Training"),
                       "system-run-symbolic", self->training_panel);
  gv_window_add_panel (window, GV_ASTROCLIP_PANEL_MODEL, _("Model"),
                       "applications-science-symbolic", self->model_panel);
  update_training_buttons (self);

  const char *names[] = { ACTION_CSV, ACTION_FITS };
  for (int i = 0; i < 2; i++) {
    g_autoptr (GSimpleAction) action = g_simple_action_new (names[i], NULL);
    g_signal_connect (action, "activate", G_CALLBACK (on_export_action), self);
    gv_window_add_action (window, G_ACTION (action));
  }
  gv_window_add_menu_item (window, GV_MENU_SECTION_EXPORT, _("Export Neighbours as CSV…"),
                           "win." ACTION_CSV);
  gv_window_add_menu_item (window, GV_MENU_SECTION_EXPORT, _("Export Neighbours as FITS…"),
                           "win." ACTION_FITS);

  g_autofree char *model = gv_astroclip_find_default_model ();
  load_model (self, model);
  set_catalogue (self, gv_window_get_catalogue (window));
  GvGalaxy *selected = gv_window_get_selected_galaxy (window);
  if (selected)
    astroclip_selection_changed (addin, window, selected);
}

static void
astroclip_unload (GvWindowAddin *addin, GvWindow *window)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) addin;
  /* Jobs in flight see window == NULL when they come back and drop their results. */
  cancel_lookup (self);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->index_serial++;
  self->model_serial++;
  self->map_serial++;
  if (self->trainer) {
    g_signal_handlers_disconnect_by_data (self->trainer, self);
    gv_astroclip_trainer_abandon (self->trainer);
    g_clear_object (&self->trainer);
  }
  if (self->thumbnails) {
    g_clear_signal_handler (&self->thumbnail_handler, self->thumbnails);
    g_clear_object (&self->thumbnails);
  }
  GvSpectrumView *view = spectrum_view (self);
  if (view)
    gv_spectrum_view_clear_overlays (view);
  gv_window_remove_menu_item (window, "win." ACTION_CSV);
  gv_window_remove_menu_item (window, "win." ACTION_FITS);
  gv_window_remove_action (window, ACTION_CSV);
  gv_window_remove_action (window, ACTION_FITS);
  const char *panels[] = { GV_ASTROCLIP_PANEL_SIMILAR, GV_ASTROCLIP_PANEL_PROPERTIES,
                           GV_ASTROCLIP_PANEL_MAP, GV_ASTROCLIP_PANEL_TRAINING,
                           GV_ASTROCLIP_PANEL_MODEL };
  for (guint i = 0; i < G_N_ELEMENTS (panels); i++)
    gv_window_remove_panel (window, panels[i]);
  if (self->css) {
    gtk_style_context_remove_provider_for_display (gtk_widget_get_display (GTK_WIDGET (window)),
                                                   GTK_STYLE_PROVIDER (self->css));
    g_clear_object (&self->css);
  }
  self->similar_panel = self->properties_panel = self->map_panel = NULL;
  self->training_panel = self->model_panel = NULL;
  self->map_view = NULL;
  g_clear_pointer (&self->cell_pictures, g_ptr_array_unref);
  g_clear_pointer (&self->loss_steps, g_array_unref);
  g_clear_pointer (&self->loss_values, g_array_unref);
  g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
  g_clear_pointer (&self->index, gv_astroclip_index_unref);
  g_clear_pointer (&self->model, gv_astroclip_model_unref);
  g_clear_pointer (&self->model_error, g_free);
  g_clear_pointer (&self->index_error, g_free);
  g_clear_pointer (&self->running_out, g_free);
  g_clear_pointer (&self->map_columns, g_strfreev);
  g_clear_object (&self->catalogue);
  g_clear_object (&self->galaxy);
  self->window = NULL;
}

static void
window_addin_iface_init (GvWindowAddinInterface *iface)
{
  iface->load = astroclip_load;
  iface->unload = astroclip_unload;
  iface->selection_changed = astroclip_selection_changed;
  iface->catalogue_changed = astroclip_catalogue_changed;
}

static void
gv_astroclip_addin_finalize (GObject *object)
{
  GvAstroclipAddin *self = (GvAstroclipAddin *) object;
  /* Normally unload () cleared everything; this is for an addin dropped without it. */
  g_clear_object (&self->lookup_cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->trainer);
  g_clear_pointer (&self->neighbours, gv_astroclip_neighbours_free);
  g_clear_pointer (&self->index, gv_astroclip_index_unref);
  g_clear_pointer (&self->model, gv_astroclip_model_unref);
  g_clear_object (&self->catalogue);
  g_clear_object (&self->galaxy);
  G_OBJECT_CLASS (gv_astroclip_addin_parent_class)->finalize (object);
}

static void
gv_astroclip_addin_class_init (GvAstroclipAddinClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gv_astroclip_addin_finalize;
}

static void
gv_astroclip_addin_class_finalize (GvAstroclipAddinClass *klass)
{
}

static void
gv_astroclip_addin_init (GvAstroclipAddin *self)
{
}

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  /* The trainer runner is a static type: keep the module mapped for the life of the process
   * (a type's code must not be unmapped), as GTypeModule does not unload a used module. */
  g_type_module_use (G_TYPE_MODULE (module));
  gv_astroclip_addin_register_type (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, GV_TYPE_WINDOW_ADDIN,
                                              gv_astroclip_addin_get_type ());
}

/* bench-viewer — the grid of thumbnails on a large catalogue, for bench/bench-viewer.sh.
 *
 *   bench-viewer make SOURCE N OUT
 *       writes a catalogue of N rows by cycling through SOURCE's rows (images, spectra, every
 *       column), with IDs 1…N and RA shifted per cycle so rows stay distinct — a large file
 *       in minutes instead of simulating every galaxy.
 *   bench-viewer run CATALOGUE [SCREENS|all]
 *       opens the catalogue in a window with the grid (under Xvfb), then prints JSON lines:
 *       - first_screen_ms: from opening the file to the first frame in which every visible
 *         cell shows its thumbnail;
 *       - scroll_screen_ms: per scroll of one page, from the scroll to the first frame with
 *         every visible cell painted (median, p90, max over the screens scrolled);
 *       - rss: resident memory now and at its peak (VmHWM) after scrolling SCREENS pages, or
 *         the whole catalogue with "all".
 *
 * "Visible" is a cell whose picture intersects the grid view's allocation; the check runs in
 * the frame clock's after-paint, so a cell counts only once a frame has drawn it.
 */
#include "gv-galaxy-grid.h"

#include "aclip-catalogue.h"

#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* make -------------------------------------------------------------------------------------- */

static int
make_catalogue (const char *source_path, gint64 n, const char *out_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AclipCatalogue) source = aclip_catalogue_open (source_path, &error);
  if (source == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  gint64 n_source = aclip_catalogue_n_rows (source);
  int h = aclip_catalogue_image_height (source), w = aclip_catalogue_image_width (source);
  int n_wave = aclip_catalogue_n_wave (source);

  /* Extra columns: every numeric column beyond the required ones, as float64. */
  static const char *const required[]
      = { "ID", "RA", "DEC", "Z", "LOGMSTAR", "FLUX_G", "FLUX_R", "FLUX_Z" };
  const char *const *columns = aclip_catalogue_numeric_columns (source);
  guint n_columns = g_strv_length ((char **) columns);
  AclipExtraColumn *extra = g_new0 (AclipExtraColumn, n_columns + 1);
  double **extra_values = g_new0 (double *, n_columns + 1);
  int n_extra = 0;
  for (guint c = 0; c < n_columns; c++)
    {
      gboolean is_required = FALSE;
      for (gsize r = 0; r < G_N_ELEMENTS (required); r++)
        is_required |= strcmp (columns[c], required[r]) == 0;
      if (is_required)
        continue;
      extra[n_extra] = (AclipExtraColumn) { columns[c], ACLIP_COLUMN_DOUBLE,
                                            aclip_catalogue_column_unit (source, columns[c]),
                                            NULL };
      extra_values[n_extra] = g_new (double, n_source);
      if (!aclip_catalogue_read_column (source, columns[c], 0, n_source, extra_values[n_extra],
                                        &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
      n_extra++;
    }

  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, h, w);
  layout.pixscale = aclip_catalogue_pixscale (source);
  layout.image_quantum = 0.002; /* as the demo catalogue */
  layout.n_wave = n_wave;
  layout.wavelength = aclip_catalogue_wavelength (source);
  layout.n_extra = n_extra;
  layout.extra = extra;
  layout.history = "bench-viewer make: rows of another catalogue repeated";
  g_autoptr (AclipCatalogueWriter) writer = aclip_catalogue_writer_new (out_path, &layout, &error);
  if (writer == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  float *image = h > 0 ? g_new (float, (gsize) 3 * h * w) : NULL;
  float *spectrum = n_wave > 0 ? g_new (float, n_wave) : NULL;
  float *ivar = n_wave > 0 ? g_new (float, n_wave) : NULL;
  double *values = g_new (double, MAX (n_extra, 1));
  for (gint64 i = 0; i < n; i++)
    {
      gint64 row = i % n_source;
      AclipGalaxy g = { .image = image, .spectrum = spectrum, .spectrum_ivar = ivar };
      if (!aclip_catalogue_read_galaxy (source, row, &g, &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
      g.id = i + 1;
      g.ra = fmod (g.ra + 0.5 * (double) (i / n_source), 360.0);
      for (int e = 0; e < n_extra; e++)
        values[e] = extra_values[e][row];
      if (!aclip_catalogue_writer_append (writer, &g, n_extra > 0 ? values : NULL, &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
    }
  if (!aclip_catalogue_writer_finish (writer, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  g_print ("{\"bench\":\"viewer\",\"made\":\"%s\",\"rows\":%" G_GINT64_FORMAT
           ",\"from\":\"%s\",\"image\":%d}\n",
           out_path, n, source_path, h);
  return 0;
}

/* run --------------------------------------------------------------------------------------- */

typedef struct
{
  GvGalaxyGrid *grid;
  GtkWidget *view;
  gboolean waiting;    /* a measurement is running */
  gint64 started;      /* its start, µs */
  double elapsed_ms;   /* its result */
  int n_visible;
  int n_painted;
} Bench;

static void
count_cells (GtkWidget *widget, GtkWidget *view, int view_height, Bench *bench)
{
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      if (GTK_IS_PICTURE (child))
        {
          graphene_rect_t bounds;
          if (gtk_widget_get_child_visible (gtk_widget_get_parent (gtk_widget_get_parent (child)))
              && gtk_widget_get_mapped (child)
              && gtk_widget_compute_bounds (child, view, &bounds)
              && bounds.origin.y + bounds.size.height > 0 && bounds.origin.y < view_height)
            {
              bench->n_visible++;
              bench->n_painted += gtk_picture_get_paintable (GTK_PICTURE (child)) != NULL;
            }
          continue;
        }
      count_cells (child, view, view_height, bench);
    }
}

static void
on_after_paint (GdkFrameClock *clock, Bench *bench)
{
  (void) clock;
  if (!bench->waiting)
    return;
  bench->n_visible = bench->n_painted = 0;
  count_cells (bench->view, bench->view, gtk_widget_get_height (bench->view), bench);
  if (bench->n_visible > 0 && bench->n_painted == bench->n_visible)
    {
      bench->elapsed_ms = (g_get_monotonic_time () - bench->started) / 1000.0;
      bench->waiting = FALSE;
    }
}

static gboolean
wait_for_screen (Bench *bench, double timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout_s * G_USEC_PER_SEC);
  while (bench->waiting && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  return !bench->waiting;
}

static void
read_rss (long *rss_kib, long *peak_kib)
{
  *rss_kib = *peak_kib = -1;
  g_autofree char *status = NULL;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return;
  for (char *line = status; line != NULL && *line != '\0';)
    {
      if (g_str_has_prefix (line, "VmRSS:"))
        *rss_kib = strtol (line + 6, NULL, 10);
      else if (g_str_has_prefix (line, "VmHWM:"))
        *peak_kib = strtol (line + 6, NULL, 10);
      char *next = strchr (line, '\n');
      line = next != NULL ? next + 1 : NULL;
    }
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static int
run (const char *path, const char *screens_arg)
{
  gtk_init ();
  Bench bench = { 0 };
  GtkWidget *window = gtk_window_new ();
  gtk_window_set_default_size (GTK_WINDOW (window), 1280, 900);
  bench.grid = GV_GALAXY_GRID (gv_galaxy_grid_new ());
  bench.view = gv_galaxy_grid_get_grid_view (bench.grid);
  gtk_window_set_child (GTK_WINDOW (window), GTK_WIDGET (bench.grid));
  gtk_window_present (GTK_WINDOW (window));
  /* Let the empty window appear first: the measurement is of the catalogue, not of X. */
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_usleep (200000);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  GdkFrameClock *clock = gtk_widget_get_frame_clock (window);
  g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), &bench);

  /* First screen: open (read IDs and columns), show, render. */
  long rss_before, peak_before;
  read_rss (&rss_before, &peak_before);
  bench.started = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GvCatalogue) catalogue = gv_catalogue_open (path, &error);
  if (catalogue == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  double open_ms = (g_get_monotonic_time () - bench.started) / 1000.0;
  bench.waiting = TRUE;
  gv_galaxy_grid_set_catalogue (bench.grid, catalogue);
  gtk_widget_queue_draw (window);
  if (!wait_for_screen (&bench, 30))
    {
      g_printerr ("first screen not rendered within 30 s (%d of %d cells)\n", bench.n_painted,
                  bench.n_visible);
      return 1;
    }
  g_print ("{\"bench\":\"viewer\",\"rows\":%" G_GINT64_FORMAT
           ",\"open_ms\":%.1f,\"first_screen_ms\":%.1f,\"visible_cells\":%d,"
           "\"thumbnail\":%d,\"window\":\"1280x900\"}\n",
           gv_catalogue_get_n_rows (catalogue), open_ms, bench.elapsed_ms, bench.n_visible,
           gv_galaxy_grid_get_thumbnail_size (bench.grid));

  /* Scrolling, a page at a time. */
  GtkAdjustment *adjustment = gtk_scrollable_get_vadjustment (GTK_SCROLLABLE (bench.view));
  gboolean all = g_strcmp0 (screens_arg, "all") == 0;
  long max_screens = all ? G_MAXLONG : (screens_arg != NULL ? atol (screens_arg) : 30);
  GArray *times = g_array_new (FALSE, FALSE, sizeof (double));
  long rss = 0, peak = 0;
  int n_timeouts = 0;
  for (long s = 0; s < max_screens; s++)
    {
      double value = gtk_adjustment_get_value (adjustment);
      double page = gtk_adjustment_get_page_size (adjustment);
      double upper = gtk_adjustment_get_upper (adjustment);
      if (value + page >= upper - 1)
        break;
      bench.started = g_get_monotonic_time ();
      bench.waiting = TRUE;
      gtk_adjustment_set_value (adjustment, MIN (value + page, upper - page));
      if (!wait_for_screen (&bench, 10))
        {
          n_timeouts++;
          bench.waiting = FALSE;
          continue;
        }
      g_array_append_val (times, bench.elapsed_ms);
      if (s % 100 == 0 || s < 3)
        {
          read_rss (&rss, &peak);
          if (all)
            g_printerr ("screen %ld: %.1f ms, rss %ld MiB\n", s, bench.elapsed_ms, rss / 1024);
        }
    }
  read_rss (&rss, &peak);
  GvThumbnails *thumbnails = gv_galaxy_grid_get_thumbnails (bench.grid);
  if (times->len > 0)
    {
      double *t = (double *) (void *) times->data;
      qsort (t, times->len, sizeof (double), compare_double);
      double sum = 0;
      for (guint i = 0; i < times->len; i++)
        sum += t[i];
      g_print ("{\"bench\":\"viewer\",\"scroll_screens\":%u,\"scroll_screen_ms_median\":%.1f,"
               "\"scroll_screen_ms_p90\":%.1f,\"scroll_screen_ms_max\":%.1f,"
               "\"scroll_screen_ms_mean\":%.1f,\"timeouts\":%d,\"rows_reached\":%.0f}\n",
               times->len, t[times->len / 2], t[(guint) (times->len * 0.9)], t[times->len - 1],
               sum / times->len, n_timeouts,
               gtk_adjustment_get_value (adjustment) / gtk_adjustment_get_upper (adjustment)
                   * gv_catalogue_get_n_rows (catalogue));
    }
  g_print ("{\"bench\":\"viewer\",\"rss_mib\":%.1f,\"peak_rss_mib\":%.1f,\"rss_before_open_mib\":%.1f,"
           "\"thumbnails_rendered\":%" G_GUINT64_FORMAT ",\"thumbnails_skipped\":%" G_GUINT64_FORMAT
           ",\"thumbnails_cached\":%u,\"cache_mib\":%.1f}\n",
           rss / 1024.0, peak / 1024.0, rss_before / 1024.0,
           gv_thumbnails_get_n_rendered (thumbnails), gv_thumbnails_get_n_skipped (thumbnails),
           gv_thumbnails_get_n_cached (thumbnails),
           gv_thumbnails_get_cached_bytes (thumbnails) / 1048576.0);
  g_array_unref (times);
  gtk_window_destroy (GTK_WINDOW (window));
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 5 && strcmp (argv[1], "make") == 0)
    return make_catalogue (argv[2], g_ascii_strtoll (argv[3], NULL, 10), argv[4]);
  if ((argc == 3 || argc == 4) && strcmp (argv[1], "run") == 0)
    return run (argv[2], argc == 4 ? argv[3] : NULL);
  g_printerr ("usage: bench-viewer make SOURCE N OUT\n"
              "       bench-viewer run CATALOGUE [SCREENS|all]\n");
  return 2;
}

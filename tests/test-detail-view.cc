/* test-detail-view.cc — the detail view on a real display (run under xvfb-run): built on a
 * galaxy of a small simulated catalogue, rendered through GTK's renderer; the image area must
 * show the galaxy (not a blank area), the spectrum must be drawn, and the PNG and CSV exports
 * must hold the galaxy's values. */
#include "test-support.h"

#include <gtk/gtk.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gv-catalogue.h"
#include "gv-detail-view.h"

namespace {

/* GTK without OpenGL: under Xvfb GDK probes Mesa's GLX, whose driver leaks 128 bytes at
 * initialisation and is unloaded before exit, so LeakSanitizer cannot name it (a bare
 * `gtk_init ()` shows the same leak; GDK_DEBUG=gl-disable removes it). The tests then render
 * with GSK's cairo renderer, which is what they check anyway: the pixels our widgets draw. */
void
init_gtk ()
{
  if (g_getenv ("GDK_DEBUG") == nullptr)
    g_setenv ("GDK_DEBUG", "gl-disable", TRUE);
  gtk_init ();
}

/* One simulated catalogue for the whole suite (simulating takes a few seconds). */
class DetailView : public ::testing::Test {
protected:
  static void SetUpTestSuite ()
  {
    init_gtk ();
    dir_ = new TempDir ();
    path_ = dir_->path ("sim.fits");
    std::string out, err;
    int status = run_astroclip ({ "simulate", "--n", "20", "--image-size", "64", "--seed", "7",
                                  "--threads", "1", "--quiet", "--out", path_ },
                                &out, &err);
    ASSERT_EQ (status, 0) << err;
  }

  static void TearDownTestSuite ()
  {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp () override
  {
    ErrorHolder error;
    catalogue_ = gv_catalogue_open (path_.c_str (), error.out ());
    ASSERT_NE (catalogue_, nullptr) << error->message;
    galaxy_ = gv_catalogue_read_galaxy (catalogue_, 3, TRUE, TRUE, error.out ());
    ASSERT_NE (galaxy_, nullptr) << error->message;

    window_ = gtk_window_new ();
    gtk_window_set_default_size (GTK_WINDOW (window_), 1100, 900);
    view_ = GV_DETAIL_VIEW (gv_detail_view_new ());
    gtk_window_set_child (GTK_WINDOW (window_), GTK_WIDGET (view_));
    gv_detail_view_set_galaxy (view_, galaxy_);
    gtk_window_present (GTK_WINDOW (window_));
    wait_for_layout (GTK_WIDGET (gv_detail_view_get_image_view (view_)));
    wait_for_layout (GTK_WIDGET (gv_detail_view_get_spectrum_view (view_)));
  }

  void TearDown () override
  {
    if (window_ != nullptr)
      gtk_window_destroy (GTK_WINDOW (window_));
    g_clear_object (&galaxy_);
    g_clear_object (&catalogue_);
    /* Let GTK finish tearing the window down. */
    while (g_main_context_iteration (nullptr, FALSE))
      ;
  }

  /* Runs the main loop until the widget has a size (at most 10 s), then a little longer so
   * that a frame is drawn. */
  static void wait_for_layout (GtkWidget *widget)
  {
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
    while ((gtk_widget_get_width (widget) == 0 || !gtk_widget_get_mapped (widget)) &&
           g_get_monotonic_time () < deadline)
      g_main_context_iteration (nullptr, TRUE);
    ASSERT_GT (gtk_widget_get_width (widget), 0) << "the widget was never laid out";
    for (int i = 0; i < 20; i++)
      g_main_context_iteration (nullptr, FALSE);
  }

  /* The widget as drawn: what its snapshot function produces (the image and spectrum views
   * draw everything themselves), rendered by the window's renderer and downloaded as 32-bit
   * pixels (GDK's download format: B, G, R, A bytes on little-endian machines). */
  struct Pixels
  {
    int width = 0, height = 0;
    std::vector<guint8> data;
    /* (r, g, b) at a widget point */
    void rgb (int x, int y, int out[3]) const
    {
      const guint8 *p = &data[(static_cast<size_t> (y) * width + x) * 4];
      out[0] = p[2];
      out[1] = p[1];
      out[2] = p[0];
    }
  };

  Pixels render (GtkWidget *widget)
  {
    Pixels pixels;
    pixels.width = gtk_widget_get_width (widget);
    pixels.height = gtk_widget_get_height (widget);
    GtkSnapshot *snapshot = gtk_snapshot_new ();
    GTK_WIDGET_GET_CLASS (widget)->snapshot (widget, snapshot);
    GskRenderNode *node = gtk_snapshot_free_to_node (snapshot);
    if (node == nullptr) {
      ADD_FAILURE () << "nothing was drawn";
      pixels.width = pixels.height = 0;
      return pixels;
    }
    GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
    graphene_rect_t area = GRAPHENE_RECT_INIT (0, 0, (float) pixels.width, (float) pixels.height);
    GdkTexture *texture = gsk_renderer_render_texture (renderer, node, &area);
    gsk_render_node_unref (node);
    pixels.width = gdk_texture_get_width (texture);
    pixels.height = gdk_texture_get_height (texture);
    pixels.data.resize (static_cast<size_t> (pixels.width) * pixels.height * 4);
    gdk_texture_download (texture, pixels.data.data (), static_cast<gsize> (pixels.width) * 4);
    g_object_unref (texture);
    return pixels;
  }

  /* The galaxy's image rendered by the tested pure function, display order. */
  std::vector<guint8> expected_rendering (const GvImageRendering &rendering, int *height,
                                          int *width)
  {
    const float *flux = gv_galaxy_get_image (galaxy_, height, width);
    std::vector<guint8> rgb (static_cast<size_t> (*height) * *width * 3);
    gv_render_image_u8 (flux, *height, *width, &rendering, rgb.data (), nullptr, nullptr);
    return rgb;
  }

  static TempDir *dir_;
  static std::string path_;
  GvCatalogue *catalogue_ = nullptr;
  GvGalaxy *galaxy_ = nullptr;
  GtkWidget *window_ = nullptr;
  GvDetailView *view_ = nullptr;
};

TempDir *DetailView::dir_ = nullptr;
std::string DetailView::path_;

std::vector<std::string>
split (const std::string &line, char sep)
{
  std::vector<std::string> fields;
  std::stringstream in (line);
  std::string field;
  while (std::getline (in, field, sep))
    fields.push_back (field);
  if (!line.empty () && line.back () == sep)
    fields.push_back ("");
  return fields;
}

} // namespace

/* The image area shows the galaxy: at fit zoom the widget point over image pixel (x, y) has
 * that pixel's colour from gv_render_image_u8, the area is not one flat colour, and pixels are
 * magnified as squares (two points inside one image pixel have the same colour). */
TEST_F (DetailView, ImageAreaShowsTheGalaxy)
{
  GvImageView *image = gv_detail_view_get_image_view (view_);
  GtkWidget *widget = GTK_WIDGET (image);
  ASSERT_TRUE (gv_image_view_has_image (image));
  Pixels shown = render (widget);
  ASSERT_GT (shown.width, 0);

  int h, w;
  GvImageRendering colour = { GV_IMAGE_MODE_COLOUR, ACLIP_STRETCH_ASINH, ACLIP_LIMITS_PERCENTILE,
                              0.5, 99.5 };
  std::vector<guint8> expected = expected_rendering (colour, &h, &w);
  ASSERT_EQ (w, 64);

  /* Fit zoom: the image is centred and scaled by min(W/64, H/64). */
  double zoom = gv_image_view_get_zoom (image);
  EXPECT_NEAR (zoom, std::min (shown.width, shown.height) / 64.0, 1e-9);
  ASSERT_GE (zoom, 2.0) << "the image area is too small for this test";
  double left = shown.width / 2.0 - 32 * zoom, top = shown.height / 2.0 - 32 * zoom;

  int mismatches = 0, compared = 0, distinct = 0;
  int first[3] = { -1, -1, -1 };
  for (int row = 4; row < 64; row += 7)
    for (int col = 3; col < 64; col += 5) {
      int got[3], got2[3];
      shown.rgb ((int) (left + (col + 0.5) * zoom), (int) (top + (row + 0.5) * zoom), got);
      /* Another point inside the same image pixel. */
      shown.rgb ((int) (left + (col + 0.2) * zoom), (int) (top + (row + 0.8) * zoom), got2);
      const guint8 *want = &expected[(static_cast<size_t> (row) * 64 + col) * 3];
      for (int c = 0; c < 3; c++) {
        if (std::abs (got[c] - want[c]) > 2 || std::abs (got2[c] - want[c]) > 2)
          mismatches++;
        compared++;
      }
      if (first[0] < 0)
        std::copy (got, got + 3, first);
      else if (got[0] != first[0] || got[1] != first[1] || got[2] != first[2])
        distinct++;
    }
  EXPECT_EQ (mismatches, 0) << "of " << compared << " channel samples";
  EXPECT_GT (distinct, 10) << "the image area is (nearly) one flat colour";

  /* The readout: sky position and flux of pixel (10, 20) (FITS orientation). */
  double ra, dec, flux[3];
  ASSERT_TRUE (gv_image_view_get_pixel_info (image, 10, 20, &ra, &dec, flux));
  int ih, iw;
  const float *cube = gv_galaxy_get_image (galaxy_, &ih, &iw);
  EXPECT_EQ (flux[0], cube[(0 * 64 + 20) * 64 + 10]);
  EXPECT_EQ (flux[2], cube[(2 * 64 + 20) * 64 + 10]);
  /* 21.5 pixels east and 11.5 south of the centre (31.5, 31.5): RA larger, Dec smaller. */
  double pixscale = gv_catalogue_get_pixscale (catalogue_);
  double cosd = std::cos (gv_galaxy_get_dec (galaxy_) * G_PI / 180.0);
  EXPECT_NEAR ((ra - gv_galaxy_get_ra (galaxy_)) * cosd * 3600.0, 21.5 * pixscale, 1e-3);
  EXPECT_NEAR ((dec - gv_galaxy_get_dec (galaxy_)) * 3600.0, -11.5 * pixscale, 1e-3);

  /* A widget point maps back to the pixel under it (display row → FITS row). */
  int px, py;
  ASSERT_TRUE (
      gv_image_view_widget_to_pixel (image, left + 10.5 * zoom, top + 2.5 * zoom, &px, &py));
  EXPECT_EQ (px, 10);
  EXPECT_EQ (py, 61);
}

/* Zooming in magnifies about the centre and keeps square pixels; 1:1 is zoom 1. */
TEST_F (DetailView, ZoomKeepsSquarePixels)
{
  GvImageView *image = gv_detail_view_get_image_view (view_);
  double fit = gv_image_view_get_zoom (image);
  gv_image_view_zoom_in (image);
  EXPECT_NEAR (gv_image_view_get_zoom (image), fit * G_SQRT2, 1e-9);
  gv_image_view_zoom_actual (image);
  EXPECT_DOUBLE_EQ (gv_image_view_get_zoom (image), 1.0);
  gv_image_view_set_zoom (image, 16.0, -1, -1);
  Pixels shown = render (GTK_WIDGET (image));
  ASSERT_GT (shown.width, 32);
  /* At zoom 16 the pixel containing the widget centre spans 16 screen pixels: the centre is
   * on a pixel corner (image point 32, 32), so the 15×15 block right-below it is uniform. */
  int cx = shown.width / 2, cy = shown.height / 2, ref[3], got[3];
  shown.rgb (cx + 1, cy + 1, ref);
  for (int dy = 1; dy < 15; dy += 3)
    for (int dx = 1; dx < 15; dx += 3) {
      shown.rgb (cx + dx, cy + dy, got);
      for (int c = 0; c < 3; c++)
        EXPECT_NEAR (got[c], ref[c], 1) << dx << "," << dy;
    }
  gv_image_view_zoom_fit (image);
  EXPECT_NEAR (gv_image_view_get_zoom (image), fit, 1e-9);
}

/* The PNG export holds the rendering as displayed, one pixel per image pixel: colour first,
 * then the g band with a linear min/max stretch (whose extremes are 0 and 255). */
TEST_F (DetailView, PngExportHoldsTheDisplayedRendering)
{
  GvImageView *image = gv_detail_view_get_image_view (view_);
  TempDir out;
  std::string png = out.path ("image.png");
  ErrorHolder error;
  int h, w;

  for (int pass = 0; pass < 2; pass++) {
    GvImageRendering rendering = { GV_IMAGE_MODE_COLOUR, ACLIP_STRETCH_ASINH,
                                   ACLIP_LIMITS_PERCENTILE, 0.5, 99.5 };
    if (pass == 1) {
      rendering = { GV_IMAGE_MODE_G, ACLIP_STRETCH_LINEAR, ACLIP_LIMITS_MINMAX, 0.5, 99.5 };
      gv_image_view_set_mode (image, GV_IMAGE_MODE_G);
      gv_image_view_set_stretch (image, ACLIP_STRETCH_LINEAR);
      gv_image_view_set_limits (image, ACLIP_LIMITS_MINMAX);
    }
    ASSERT_TRUE (gv_detail_view_export_png (view_, png.c_str (), error.out ())) << error->message;
    std::vector<guint8> expected = expected_rendering (rendering, &h, &w);

    GdkTexture *texture = gdk_texture_new_from_filename (png.c_str (), error.out ());
    ASSERT_NE (texture, nullptr) << error->message;
    ASSERT_EQ (gdk_texture_get_width (texture), w);
    ASSERT_EQ (gdk_texture_get_height (texture), h);
    std::vector<guint8> bgra (static_cast<size_t> (w) * h * 4);
    gdk_texture_download (texture, bgra.data (), static_cast<gsize> (w) * 4);
    g_object_unref (texture);

    int mismatches = 0, lowest = 255, highest = 0;
    for (int i = 0; i < w * h; i++) {
      if (bgra[4 * i + 2] != expected[3 * i] || bgra[4 * i + 1] != expected[3 * i + 1] ||
          bgra[4 * i] != expected[3 * i + 2])
        mismatches++;
      lowest = std::min<int> (lowest, bgra[4 * i + 1]);
      highest = std::max<int> (highest, bgra[4 * i + 1]);
    }
    EXPECT_EQ (mismatches, 0) << "pass " << pass;
    if (pass == 1) {
      EXPECT_EQ (lowest, 0);
      EXPECT_EQ (highest, 255);
    }
  }
  /* Only the PNG is in the folder: no temporary file was left behind. */
  EXPECT_EQ (count_entries (out.root ()), 1);
}

/* The spectrum is drawn: the plot area has many pixels of the line's blue (0.11, 0.44, 0.85),
 * and zooming narrows the wavelength range. */
TEST_F (DetailView, SpectrumIsDrawn)
{
  GvSpectrumView *spectrum = gv_detail_view_get_spectrum_view (view_);
  ASSERT_TRUE (gv_spectrum_view_has_spectrum (spectrum));
  Pixels shown = render (GTK_WIDGET (spectrum));
  int blue = 0;
  for (int y = 0; y < shown.height; y++)
    for (int x = 0; x < shown.width; x++) {
      int c[3];
      shown.rgb (x, y, c);
      if (c[2] > 150 && c[2] > c[0] + 80 && c[1] > c[0] + 40)
        blue++;
    }
  EXPECT_GT (blue, shown.width / 2) << "the spectrum line is missing";

  double lo, hi;
  gv_spectrum_view_get_view_range (spectrum, &lo, &hi);
  int n;
  gv_galaxy_get_spectrum (galaxy_, &n);
  const double *wave = gv_galaxy_get_wavelength (galaxy_);
  EXPECT_DOUBLE_EQ (lo, wave[0]);
  EXPECT_DOUBLE_EQ (hi, wave[n - 1]);
  gv_spectrum_view_zoom_in (spectrum);
  double lo2, hi2;
  gv_spectrum_view_get_view_range (spectrum, &lo2, &hi2);
  EXPECT_NEAR (hi2 - lo2, (hi - lo) / 1.5, 1e-6);
  gv_spectrum_view_set_rest_frame (spectrum, TRUE);
  double lo3, hi3;
  gv_spectrum_view_get_view_range (spectrum, &lo3, &hi3);
  EXPECT_NEAR (lo3, lo2 / (1.0 + gv_galaxy_get_z (galaxy_)), 1e-6);
  gv_spectrum_view_reset_view (spectrum);

  /* An overlay is accepted and cleared. */
  GdkRGBA red = { 1, 0, 0, 1 };
  gv_spectrum_view_add_overlay (spectrum, wave, gv_galaxy_get_spectrum (galaxy_, &n),
                                gv_galaxy_get_spectrum_ivar (galaxy_), n, 0.05, &red);
  EXPECT_EQ (gv_spectrum_view_get_n_overlays (spectrum), 1u);
  Pixels with_overlay = render (GTK_WIDGET (spectrum));
  int reds = 0;
  for (int y = 0; y < with_overlay.height; y++)
    for (int x = 0; x < with_overlay.width; x++) {
      int c[3];
      with_overlay.rgb (x, y, c);
      if (c[0] > 200 && c[1] < 80 && c[2] < 80)
        reds++;
    }
  EXPECT_GT (reds, with_overlay.width / 4) << "the overlay is not drawn";
  gv_spectrum_view_clear_overlays (spectrum);
  EXPECT_EQ (gv_spectrum_view_get_n_overlays (spectrum), 0u);
}

/* The CSV export: a comment line with the ID and z, a header, then one row per pixel with the
 * galaxy's wavelength, flux and ivar and the ivar-weighted smoothing at the current width;
 * bad pixels have an empty smoothed field. */
TEST_F (DetailView, CsvExportHoldsTheSpectrum)
{
  gv_detail_view_set_smoothing (view_, 7.0);
  EXPECT_DOUBLE_EQ (gv_spectrum_view_get_smoothing (gv_detail_view_get_spectrum_view (view_)), 7.0);
  std::string csv = dir_->path ("spectrum.csv");
  ErrorHolder error;
  ASSERT_TRUE (gv_detail_view_export_spectrum_csv (view_, csv.c_str (), error.out ()))
      << error->message;

  int n;
  const float *flux = gv_galaxy_get_spectrum (galaxy_, &n);
  const float *ivar = gv_galaxy_get_spectrum_ivar (galaxy_);
  const double *wave = gv_galaxy_get_wavelength (galaxy_);
  std::vector<float> smoothed (n);
  gv_smooth_spectrum (flux, ivar, n, GV_SMOOTH_BOXCAR, 7.0, smoothed.data ());

  std::ifstream in (csv);
  std::string line;
  ASSERT_TRUE (std::getline (in, line));
  std::string id = "# ID " + std::to_string (gv_galaxy_get_id (galaxy_)) + " z ";
  EXPECT_EQ (line.rfind (id, 0), 0u) << line;
  double z_written = std::stod (line.substr (id.size ()));
  EXPECT_NEAR (z_written, gv_galaxy_get_z (galaxy_), 1e-6);
  ASSERT_TRUE (std::getline (in, line));
  EXPECT_EQ (line, "wavelength,flux,ivar,smoothed_flux");

  int rows = 0, gaps = 0, bad = 0;
  while (std::getline (in, line)) {
    std::vector<std::string> f = split (line, ',');
    ASSERT_EQ (f.size (), 4u) << line;
    int i = rows++;
    ASSERT_LT (i, n);
    EXPECT_DOUBLE_EQ (std::stod (f[0]), wave[i]);
    EXPECT_EQ (std::stof (f[1]), flux[i]) << "row " << i;
    EXPECT_EQ (std::stof (f[2]), ivar[i]) << "row " << i;
    if (ivar[i] <= 0) {
      bad++;
      EXPECT_TRUE (f[3].empty ()) << "row " << i;
    }
    if (f[3].empty ())
      gaps++;
    else
      EXPECT_EQ (std::stof (f[3]), smoothed[i]) << "row " << i;
  }
  EXPECT_EQ (rows, n);
  EXPECT_EQ (gaps, bad);
}

/* Settings-facing properties: default-stretch by name, smoothing; and clearing the view. */
TEST_F (DetailView, PropertiesAndClearing)
{
  g_object_set (view_, "default-stretch", "log", NULL);
  EXPECT_EQ (gv_detail_view_get_default_stretch (view_), ACLIP_STRETCH_LOG);
  EXPECT_EQ (gv_image_view_get_stretch (gv_detail_view_get_image_view (view_)), ACLIP_STRETCH_LOG);
  g_object_set (view_, "smoothing", 11.0, NULL);
  EXPECT_DOUBLE_EQ (gv_detail_view_get_smoothing (view_), 11.0);

  gv_detail_view_set_galaxy (view_, nullptr);
  EXPECT_FALSE (gv_image_view_has_image (gv_detail_view_get_image_view (view_)));
  ErrorHolder error;
  EXPECT_FALSE (gv_detail_view_export_png (view_, dir_->path ("none.png").c_str (), error.out ()));
  EXPECT_FALSE (
      gv_detail_view_export_spectrum_csv (view_, dir_->path ("none.csv").c_str (), error.out ()));
  EXPECT_FALSE (g_file_test (dir_->path ("none.png").c_str (), G_FILE_TEST_EXISTS));
}

/* The whole pane, drawn through the window: not blank (many distinct colours) and saved as a
 * PNG for a reviewer to look at when GV_DETAIL_SCREENSHOT names a file. */
TEST_F (DetailView, WholePaneScreenshot)
{
  gv_image_view_set_mode (gv_detail_view_get_image_view (view_), GV_IMAGE_MODE_COLOUR);
  for (int i = 0; i < 20; i++)
    g_main_context_iteration (nullptr, FALSE);
  Pixels shown = render (window_);
  ASSERT_GT (shown.width, 0);
  std::set<guint32> colours;
  for (size_t i = 0; i + 3 < shown.data.size (); i += 4 * 7)
    colours.insert (shown.data[i] | shown.data[i + 1] << 8 | shown.data[i + 2] << 16);
  EXPECT_GT (colours.size (), 200u) << "the pane looks blank";

  const char *path = g_getenv ("GV_DETAIL_SCREENSHOT");
  if (path != nullptr) {
    GBytes *bytes = g_bytes_new (shown.data.data (), shown.data.size ());
    GdkTexture *texture = gdk_memory_texture_new (shown.width, shown.height, GDK_MEMORY_DEFAULT,
                                                  bytes, static_cast<gsize> (shown.width) * 4);
    EXPECT_TRUE (gdk_texture_save_to_png (texture, path));
    g_object_unref (texture);
    g_bytes_unref (bytes);
  }
}

/* The pane fits beside the grid: its controls wrap instead of forcing a wide window. */
TEST_F (DetailView, PaneCanBeNarrow)
{
  int minimum = 0, natural = 0;
  gtk_widget_measure (GTK_WIDGET (view_), GTK_ORIENTATION_HORIZONTAL, -1, &minimum, &natural,
                      nullptr, nullptr);
  std::cout << "detail view width: minimum " << minimum << ", natural " << natural << "\n";
  EXPECT_LE (minimum, 480);
}

/* A catalogue without spectra: the image is shown, the spectrum is empty, and the CSV export
 * fails with an error instead of writing a file. Without images: the reverse. */
TEST (DetailViewPartial, ImagesOnlyAndSpectraOnly)
{
  init_gtk ();
  TempDir dir;
  for (int which = 0; which < 2; which++) {
    std::string path = dir.path (which == 0 ? "images.fits" : "spectra.fits");
    std::vector<std::string> args = { "simulate",  "--n", "3",       "--seed", "3",
                                      "--threads", "1",   "--quiet", "--out",  path };
    if (which == 0) {
      args.insert (args.end (), { "--image-size", "32", "--no-spectra" });
    } else {
      args.insert (args.end (), { "--image-size", "0" });
    }
    std::string out, err;
    ASSERT_EQ (run_astroclip (args, &out, &err), 0) << err;
    ErrorHolder error;
    GvCatalogue *catalogue = gv_catalogue_open (path.c_str (), error.out ());
    ASSERT_NE (catalogue, nullptr) << error->message;
    GvGalaxy *galaxy = gv_catalogue_read_galaxy (catalogue, 1, TRUE, TRUE, error.out ());
    ASSERT_NE (galaxy, nullptr) << error->message;

    GvDetailView *view = GV_DETAIL_VIEW (g_object_ref_sink (gv_detail_view_new ()));
    gv_detail_view_set_galaxy (view, galaxy);
    bool has_image = which == 0;
    EXPECT_EQ (gv_image_view_has_image (gv_detail_view_get_image_view (view)), has_image);
    EXPECT_EQ (gv_spectrum_view_has_spectrum (gv_detail_view_get_spectrum_view (view)), !has_image);
    std::string png = dir.path ("x.png"), csv = dir.path ("x.csv");
    EXPECT_EQ (gv_detail_view_export_png (view, png.c_str (), error.out ()), has_image);
    EXPECT_EQ (gv_detail_view_export_spectrum_csv (view, csv.c_str (), error.out ()), !has_image);
    EXPECT_EQ (g_file_test (png.c_str (), G_FILE_TEST_EXISTS), has_image);
    EXPECT_EQ (g_file_test (csv.c_str (), G_FILE_TEST_EXISTS), !has_image);
    g_remove (png.c_str ());
    g_remove (csv.c_str ());

    g_object_unref (view);
    g_object_unref (galaxy);
    g_object_unref (catalogue);
  }
}

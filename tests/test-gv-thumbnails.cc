/* test-gv-thumbnails.cc — thumbnail rendering and the thumbnail cache (ui/gv-thumbnails.h).
 *
 * Rendering is checked on tiny flux cubes whose 8-bit output was computed by hand from the
 * Legacy Survey mapping (docs: core/aclip-render.h):
 *   v_b = x_b·s_b + m (s = 6.0, 3.4, 2.2 for g, r, z; m = 0.03);  I = mean_b max(0, v_b);
 *   F = asinh(20·I)/√20 / I;  c_b = clip(v_b·F, 0, 1);  byte = ⌊255·c + ½⌋;  R ← z, G ← r, B ← g.
 * The cache is checked with a catalogue written by the test; no display is needed (memory
 * textures are plain pixels). */
#include "test-support.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "aclip-catalogue.h"
#include "gv-thumbnails.h"

namespace {

/* A 3×H×W cube, zero except what the test sets; fits(b, y, x) with y = 0 at the bottom. */
struct Cube
{
  int height, width;
  std::vector<float> flux;
  Cube (int h, int w) : height (h), width (w), flux (3 * h * w, 0.0f) {}
  float &
  at (int band, int y, int x)
  {
    return flux[(band * height + y) * width + x];
  }
};

enum
{
  G,
  R,
  Z
};

/* Pixel (row from the top, column) of an H×W×3 image. */
struct Rgb
{
  int r, g, b;
  bool operator== (const Rgb &o) const { return r == o.r && g == o.g && b == o.b; }
};

std::ostream &
operator<< (std::ostream &os, const Rgb &p)
{
  return os << "(" << p.r << ", " << p.g << ", " << p.b << ")";
}

Rgb
pixel (const std::vector<guint8> &rgb, int width, int row, int column)
{
  const guint8 *p = &rgb[(row * width + column) * 3];
  return { p[0], p[1], p[2] };
}

} // namespace

/* No flux: v_b = 0.03 in every band, I = 0.03, c = asinh(0.6)/√20 = 0.568825/4.472136 =
 * 0.1271931; 255·c = 32.43 → 32 in every channel. */
const Rgb kBlack = { 32, 32, 32 };

TEST (ThumbnailRender, AreaAveragingFourToTwoWithFlip)
{
  /* 4×4 → 2×2: each output pixel is the mean of a 2×2 block. */
  Cube cube (4, 4);
  /* Bottom-right block (FITS y 0–1, x 2–3): g = 0.1 in each pixel. */
  for (int y = 0; y < 2; y++)
    for (int x = 2; x < 4; x++)
      cube.at (G, y, x) = 0.1f;
  /* Top-left block (y 2–3, x 0–1): z = 0, 0.1, 0.02, 0.08, mean 0.05. */
  cube.at (Z, 2, 0) = 0.0f;
  cube.at (Z, 2, 1) = 0.1f;
  cube.at (Z, 3, 0) = 0.02f;
  cube.at (Z, 3, 1) = 0.08f;
  /* Top-right block (y 2–3, x 2–3): r = NaN (counts as 0), 0.4, 0.4, 0.4, mean 0.3. */
  cube.at (R, 2, 2) = NAN;
  cube.at (R, 2, 3) = 0.4f;
  cube.at (R, 3, 2) = 0.4f;
  cube.at (R, 3, 3) = 0.4f;

  std::vector<guint8> rgb (2 * 2 * 3);
  gv_thumbnail_render (cube.flux.data (), 4, 4, 2, 2, rgb.data ());

  /* Top row of the thumbnail = top of the sky = FITS y 2–3. */
  /* z = 0.05: v = (0.03, 0.03, 0.14), I = 0.0666667, F = asinh(1.333333)/√20/I = 3.684858;
   * c = (0.1105457, 0.1105457, 0.5158801) → B, G = 28.19 → 28, R = 131.55 → 132. */
  EXPECT_EQ (pixel (rgb, 2, 0, 0), (Rgb{ 132, 28, 28 }));
  /* r = 0.3: v = (0.03, 1.05, 0.03), I = 0.37, F = asinh(7.4)/√20/0.37 = 1.631219;
   * c_r = 1.71 → 1 → 255; c_g,z = 0.04893656 → 12.48 → 12. */
  EXPECT_EQ (pixel (rgb, 2, 0, 1), (Rgb{ 12, 255, 12 }));
  EXPECT_EQ (pixel (rgb, 2, 1, 0), kBlack);
  /* g = 0.1: v = (0.63, 0.03, 0.03), I = 0.23, F = asinh(4.6)/√20/0.23 = 2.168805;
   * c_g = 1.366 → 255 (blue); c_r,z = 0.06506416 → 16.59 → 17. */
  EXPECT_EQ (pixel (rgb, 2, 1, 1), (Rgb{ 17, 17, 255 }));
}

TEST (ThumbnailRender, FractionalAreaWeights)
{
  /* 3×3 → 2×2: along each axis output 0 covers [0, 1.5) (weights 2/3, 1/3 on pixels 0, 1)
   * and output 1 covers [1.5, 3) (1/3, 2/3 on pixels 1, 2). Only r is set:
   *   r(0,0) = 0.3, r(1,1) = 0.9, r(2,2) = 0.9 (FITS y, x).
   * Output (y, x) in FITS order:
   *   (0,0) = (2/3)(2/3)·0.3 + (1/3)(1/3)·0.9 = 0.1333333 + 0.1 = 0.2333333
   *   (0,1) = (1,0) = (1/3)(1/3)·0.9 = 0.1
   *   (1,1) = (1/3)(1/3)·0.9 + (2/3)(2/3)·0.9 = 0.1 + 0.4 = 0.5 */
  Cube cube (3, 3);
  cube.at (R, 0, 0) = 0.3f;
  cube.at (R, 1, 1) = 0.9f;
  cube.at (R, 2, 2) = 0.9f;
  std::vector<guint8> rgb (2 * 2 * 3);
  gv_thumbnail_render (cube.flux.data (), 3, 3, 2, 2, rgb.data ());
  /* Green saturates in all four (v_r·F > 1); the other channels tell the flux apart:
   *   r = 0.1:       v = (0.03, 0.37, 0.03),  I = 0.1433333, F = 2.769740, c = 0.08309214 → 21
   *   r = 0.2333333: v = (0.03, 0.8233333, 0.03), I = 0.2944444, F = 1.878310,
   *                  c = 0.05634925 → 14.37 → 14
   *   r = 0.5:       v = (0.03, 1.73, 0.03),  I = 0.5966667, F = 1.189575, c = 0.03568725 → 9 */
  EXPECT_EQ (pixel (rgb, 2, 0, 0), (Rgb{ 21, 255, 21 })); /* FITS (1,0) */
  EXPECT_EQ (pixel (rgb, 2, 0, 1), (Rgb{ 9, 255, 9 }));   /* FITS (1,1) */
  EXPECT_EQ (pixel (rgb, 2, 1, 0), (Rgb{ 14, 255, 14 })); /* FITS (0,0) */
  EXPECT_EQ (pixel (rgb, 2, 1, 1), (Rgb{ 21, 255, 21 })); /* FITS (0,1) */
}

TEST (ThumbnailRender, UpsamplingRepeatsPixels)
{
  /* 2×2 → 4×4: each output pixel lies inside one input pixel and takes its value. */
  Cube cube (2, 2);
  cube.at (G, 0, 1) = 0.1f; /* bottom right */
  cube.at (R, 1, 0) = 0.3f; /* top left */
  std::vector<guint8> rgb (4 * 4 * 3);
  gv_thumbnail_render (cube.flux.data (), 2, 2, 4, 4, rgb.data ());
  for (int row = 0; row < 4; row++)
    for (int column = 0; column < 4; column++)
      {
        Rgb expected = kBlack;
        if (row < 2 && column < 2)
          expected = { 12, 255, 12 };
        else if (row >= 2 && column >= 2)
          expected = { 17, 17, 255 };
        EXPECT_EQ (pixel (rgb, 4, row, column), expected) << row << ", " << column;
      }
}

TEST (ThumbnailRender, Fit)
{
  int h = 0, w = 0;
  gv_thumbnail_fit (152, 152, 96, &h, &w);
  EXPECT_EQ (h, 96);
  EXPECT_EQ (w, 96);
  gv_thumbnail_fit (100, 50, 96, &h, &w);
  EXPECT_EQ (h, 96);
  EXPECT_EQ (w, 48);
  gv_thumbnail_fit (30, 64, 128, &h, &w);
  EXPECT_EQ (w, 128);
  EXPECT_EQ (h, 60);
  gv_thumbnail_fit (1, 1000, 64, &h, &w);
  EXPECT_EQ (h, 1);
  EXPECT_EQ (w, 64);
}

/* The cache and its workers ----------------------------------------------------------------- */

namespace {

constexpr int kRows = 120;
constexpr int kSize = 40; /* image edge */

class ThumbnailsTest : public ::testing::Test
{
protected:
  void
  SetUp () override
  {
    path_ = dir_.path ("thumbs.fits");
    AclipCatalogueLayout layout;
    aclip_catalogue_layout_init_desi (&layout, kSize, kSize);
    layout.n_wave = 0;
    ErrorHolder error;
    AclipCatalogueWriter *writer
        = aclip_catalogue_writer_new (path_.c_str (), &layout, error.out ());
    ASSERT_NE (writer, nullptr) << error->message;
    std::vector<float> image (3 * kSize * kSize);
    GRand *rand = g_rand_new_with_seed (5);
    for (int i = 0; i < kRows; i++)
      {
        for (auto &v : image)
          v = (float) g_rand_double_range (rand, -0.02, 0.3);
        AclipGalaxy g{};
        g.id = 500 + i;
        g.z = 0.1f;
        g.logmstar = 10;
        g.image = image.data ();
        ASSERT_TRUE (aclip_catalogue_writer_append (writer, &g, nullptr, error.out ()));
      }
    g_rand_free (rand);
    ASSERT_TRUE (aclip_catalogue_writer_finish (writer, error.out ()));
    aclip_catalogue_writer_free (writer);
    catalogue_ = gv_catalogue_open (path_.c_str (), error.out ());
    ASSERT_NE (catalogue_, nullptr) << error->message;
  }

  void
  TearDown () override
  {
    g_clear_object (&catalogue_);
  }

  /* Iterates the main context until `done` or 20 s pass. */
  static bool
  wait_until (const std::function<bool ()> &done)
  {
    gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
    while (!done () && g_get_monotonic_time () < deadline)
      g_main_context_iteration (nullptr, FALSE), g_usleep (200);
    return done ();
  }

  /* The expected thumbnail of a row, rendered from the core reader's image. */
  std::vector<guint8>
  expected_pixels (gint64 row, int size)
  {
    ErrorHolder error;
    AclipCatalogue *core = aclip_catalogue_open (path_.c_str (), error.out ());
    std::vector<float> image (3 * kSize * kSize);
    AclipGalaxy g{};
    g.image = image.data ();
    EXPECT_TRUE (aclip_catalogue_read_galaxy (core, row, &g, error.out ()));
    aclip_catalogue_free (core);
    std::vector<guint8> rgb (size * size * 3);
    gv_thumbnail_render (image.data (), kSize, kSize, size, size, rgb.data ());
    return rgb;
  }

  static std::vector<guint8>
  texture_rgb (GdkTexture *texture)
  {
    int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
    std::vector<guint8> bgra (w * h * 4); /* GDK_MEMORY_DEFAULT: B, G, R, A premultiplied */
    gdk_texture_download (texture, bgra.data (), w * 4);
    std::vector<guint8> rgb (w * h * 3);
    for (int i = 0; i < w * h; i++)
      {
        rgb[i * 3 + 0] = bgra[i * 4 + 2];
        rgb[i * 3 + 1] = bgra[i * 4 + 1];
        rgb[i * 3 + 2] = bgra[i * 4 + 0];
      }
    return rgb;
  }

  TempDir dir_;
  std::string path_;
  GvCatalogue *catalogue_ = nullptr;
};

struct Ready
{
  std::vector<gint64> rows;
  std::vector<GdkTexture *> textures;
  ~Ready ()
  {
    for (auto *t : textures)
      g_object_unref (t);
  }
};

void
on_ready (GvThumbnails *, gint64 row, GdkTexture *texture, Ready *ready)
{
  ready->rows.push_back (row);
  ready->textures.push_back ((GdkTexture *) g_object_ref (texture));
}

} // namespace

TEST_F (ThumbnailsTest, RequestRendersOffTheMainThreadAndCaches)
{
  GvThumbnails *thumbnails = gv_thumbnails_new (catalogue_, 24, 0);
  Ready ready;
  g_signal_connect (thumbnails, "thumbnail-ready", G_CALLBACK (on_ready), &ready);

  EXPECT_EQ (gv_thumbnails_request (thumbnails, 7), nullptr); /* not yet */
  EXPECT_EQ (gv_thumbnails_request (thumbnails, 7), nullptr); /* not queued twice */
  EXPECT_EQ (gv_thumbnails_request (thumbnails, 9), nullptr);
  EXPECT_EQ (gv_thumbnails_request (thumbnails, kRows), nullptr); /* no such row: ignored */
  EXPECT_EQ (gv_thumbnails_request (thumbnails, -1), nullptr);
  ASSERT_TRUE (wait_until ([&] { return ready.rows.size () >= 2; }));
  std::sort (ready.rows.begin (), ready.rows.end ());
  EXPECT_EQ (ready.rows, (std::vector<gint64>{ 7, 9 }));
  EXPECT_EQ (gv_thumbnails_get_n_rendered (thumbnails), 2u);
  EXPECT_EQ (gv_thumbnails_get_n_pending (thumbnails), 0u);
  EXPECT_EQ (gv_thumbnails_get_n_cached (thumbnails), 2u);
  EXPECT_EQ (gv_thumbnails_get_cached_bytes (thumbnails), 2u * 24 * 24 * 3);

  GdkTexture *texture = gv_thumbnails_request (thumbnails, 7);
  ASSERT_NE (texture, nullptr);
  EXPECT_EQ (gdk_texture_get_width (texture), 24);
  EXPECT_EQ (gdk_texture_get_height (texture), 24);
  EXPECT_EQ (texture_rgb (texture), expected_pixels (7, 24));
  EXPECT_NE (texture_rgb (texture), expected_pixels (9, 24)); /* rows are not mixed up */
  g_object_unref (texture);

  /* A new size empties the cache; new renders are at the new size. */
  gv_thumbnails_set_size (thumbnails, 16);
  EXPECT_EQ (gv_thumbnails_get_n_cached (thumbnails), 0u);
  EXPECT_EQ (gv_thumbnails_lookup (thumbnails, 7), nullptr);
  ready.rows.clear ();
  gv_thumbnails_request (thumbnails, 7);
  ASSERT_TRUE (wait_until ([&] { return !ready.rows.empty (); }));
  texture = gv_thumbnails_lookup (thumbnails, 7);
  ASSERT_NE (texture, nullptr);
  EXPECT_EQ (gdk_texture_get_width (texture), 16);
  EXPECT_EQ (texture_rgb (texture), expected_pixels (7, 16));
  g_object_unref (texture);
  g_object_unref (thumbnails);
}

TEST_F (ThumbnailsTest, CancelledRowsAreSkipped)
{
  GvThumbnails *thumbnails = gv_thumbnails_new (catalogue_, 64, 0);
  Ready ready;
  g_signal_connect (thumbnails, "thumbnail-ready", G_CALLBACK (on_ready), &ready);
  /* Queue every row, then cancel all but the last three before the workers get far. */
  for (gint64 row = 0; row < kRows; row++)
    gv_thumbnails_request (thumbnails, row);
  for (gint64 row = 0; row < kRows - 3; row++)
    gv_thumbnails_cancel (thumbnails, row);
  ASSERT_TRUE (wait_until ([&] {
    return gv_thumbnails_get_n_rendered (thumbnails) + gv_thumbnails_get_n_skipped (thumbnails)
           == (guint64) kRows;
  }));
  ASSERT_TRUE (wait_until ([&] { return gv_thumbnails_get_n_pending (thumbnails) == 0; }));
  /* Only the workers' first few rows can have started before the cancellation. */
  EXPECT_LE (gv_thumbnails_get_n_rendered (thumbnails), 3u + 8u);
  EXPECT_GE (gv_thumbnails_get_n_skipped (thumbnails), (guint64) kRows - 11);
  for (gint64 row = kRows - 3; row < kRows; row++)
    {
      GdkTexture *texture = gv_thumbnails_lookup (thumbnails, row);
      EXPECT_NE (texture, nullptr) << row;
      g_clear_object (&texture);
    }
  g_object_unref (thumbnails);
}

TEST_F (ThumbnailsTest, CacheIsBoundedInBytesAndKeepsTheMostRecent)
{
  const gsize one = 20 * 20 * 3;
  GvThumbnails *thumbnails = gv_thumbnails_new (catalogue_, 20, 5 * one);
  Ready ready;
  g_signal_connect (thumbnails, "thumbnail-ready", G_CALLBACK (on_ready), &ready);
  for (gint64 row = 0; row < 12; row++)
    {
      gv_thumbnails_request (thumbnails, row);
      /* One at a time, so the order of use is known. */
      ASSERT_TRUE (wait_until ([&] { return ready.rows.size () == (size_t) row + 1; }));
      if (row == 9)
        {
          /* Touch row 6: it becomes the most recently used. */
          GdkTexture *t = gv_thumbnails_lookup (thumbnails, 6);
          ASSERT_NE (t, nullptr);
          g_object_unref (t);
        }
    }
  EXPECT_EQ (gv_thumbnails_get_n_cached (thumbnails), 5u);
  EXPECT_EQ (gv_thumbnails_get_cached_bytes (thumbnails), 5 * one);
  /* Most recent uses: 11, 10, 6, 9, 8; row 7 went first among the later ones. */
  for (gint64 row : { 6, 8, 9, 10, 11 })
    {
      GdkTexture *t = gv_thumbnails_lookup (thumbnails, row);
      EXPECT_NE (t, nullptr) << row;
      g_clear_object (&t);
    }
  for (gint64 row : { 0, 5, 7 })
    EXPECT_EQ (gv_thumbnails_lookup (thumbnails, row), nullptr) << row;
  /* An evicted row is rendered again on request. */
  EXPECT_EQ (gv_thumbnails_request (thumbnails, 0), nullptr);
  ASSERT_TRUE (wait_until ([&] { return ready.rows.size () == 13; }));
  EXPECT_EQ (ready.rows.back (), 0);
  g_object_unref (thumbnails);
}

TEST_F (ThumbnailsTest, DisposeWithWorkInFlight)
{
  /* Dropping the object while rows are queued and rendering must neither crash nor deliver
   * to the dead object (ASan checks the former). */
  GvThumbnails *thumbnails = gv_thumbnails_new (catalogue_, 64, 0);
  Ready ready;
  g_signal_connect (thumbnails, "thumbnail-ready", G_CALLBACK (on_ready), &ready);
  for (gint64 row = 0; row < kRows; row++)
    gv_thumbnails_request (thumbnails, row);
  g_usleep (2000);
  g_object_unref (thumbnails);
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (nullptr, FALSE);
  EXPECT_TRUE (ready.rows.empty ());
}

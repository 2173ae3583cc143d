/* test-astroclip-support.h — a tiny AstroCLIP pipeline for the plugin's tests: a simulated
 * catalogue, a tiny aligned model (pretrain-spectra, pretrain-images, align, with the smallest
 * configurations of tests/test-align.cc) and its embeddings, all made by $ASTROCLIP in a
 * temporary folder; and parsing of `astroclip search --format csv`. Header-only. */
#pragma once

#include "test-support.h"

#include "aclip-catalogue.h"
#include "aclip-embeddings.h"

#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

struct AstroclipPipeline
{
  std::string catalogue, spectra, images, model, embeddings, image_config;
};

/* Runs astroclip and fails the current test (returns false) on a non-zero exit. */
inline bool
astroclip_ok (const std::vector<std::string> &arguments, std::string *out = nullptr)
{
  std::string o, e;
  int status = run_astroclip (arguments, &o, &e);
  EXPECT_EQ (status, 0) << arguments[0] << ": " << e << o;
  if (out)
    *out = o;
  return status == 0;
}

/* The tiny image encoder's configuration (a 32-pixel crop averaged 2×2, 8–16–32 channels). */
inline std::string
astroclip_write_image_config (const TempDir &dir)
{
  std::string path = dir.path ("img.ini");
  g_file_set_contents (path.c_str (),
                       "[image_encoder]\ncrop=32\ndownsample=2\nstem_channels=8\n"
                       "stem_stride=1\nstage_channels=16;32\nstage_blocks=1;1\n",
                       -1, nullptr);
  return path;
}

/* Simulates n galaxies with 48-pixel images into dir/NAME.fits, trains a tiny model and
 * embeds the catalogue into dir/NAME.embeddings.fits (the plugin's naming rule). */
inline bool
astroclip_make_pipeline (const TempDir &dir, int n, AstroclipPipeline *p,
                         const std::string &name = "sim")
{
  p->catalogue = dir.path (name + ".fits");
  p->spectra = dir.path ("spec.ckpt");
  p->images = dir.path ("img.ckpt");
  p->model = dir.path ("model.ckpt");
  p->embeddings = dir.path (name + ".embeddings.fits");
  p->image_config = astroclip_write_image_config (dir);
  return astroclip_ok ({ "simulate", "--n", std::to_string (n), "--image-size", "48", "--seed",
                         "3", "--threads", "2", "--quiet", "--out", p->catalogue }) &&
         astroclip_ok ({ "pretrain-spectra", "--catalogue", p->catalogue, "--out", p->spectra,
                         "--width", "16", "--layers", "1", "--heads", "2", "--mlp-hidden", "32",
                         "--window", "160", "--stride", "160", "--steps", "2", "--batch-size",
                         "8", "--validate-every", "0", "--max-validation", "8", "--threads", "2",
                         "--progress", "none" }) &&
         astroclip_ok ({ "pretrain-images", "--catalogue", p->catalogue, "--out", p->images,
                         "--config", p->image_config, "--steps", "2", "--batch-size", "8",
                         "--validate-every", "0", "--max-validation", "8", "--threads", "2",
                         "--progress", "none" }) &&
         astroclip_ok ({ "align", "--catalogue", p->catalogue, "--spectrum-model", p->spectra,
                         "--image-model", p->images, "--out", p->model, "--steps", "20",
                         "--batch-size", "16", "--lr", "1e-3", "--validate-every", "0",
                         "--max-validation", "16", "--threads", "2", "--progress", "none" }) &&
         astroclip_ok ({ "embed", "--catalogue", p->catalogue, "--model", p->model, "--out",
                         p->embeddings, "--threads", "2", "--progress", "none" });
}

struct SearchHit
{
  gint64 id;
  double similarity;
};

/* `astroclip search --format csv` from a catalogue row: the neighbours in order. */
inline std::vector<SearchHit>
astroclip_search_row (const AstroclipPipeline &p, gint64 row, const char *mode, int k)
{
  std::string out;
  std::vector<SearchHit> hits;
  if (!astroclip_ok ({ "search", "--embeddings", p.embeddings, "--catalogue", p.catalogue,
                       "--row", std::to_string (row), "--mode", mode, "-k", std::to_string (k),
                       "--format", "csv", "--columns", "" },
                     &out))
    return hits;
  std::istringstream lines (out);
  std::string line;
  std::getline (lines, line); /* query_id,rank,id,similarity */
  while (std::getline (lines, line)) {
    if (line.empty ())
      continue;
    std::vector<std::string> fields;
    std::istringstream cells (line);
    std::string cell;
    while (std::getline (cells, cell, ','))
      fields.push_back (cell);
    if (fields.size () < 4)
      continue;
    hits.push_back ({ (gint64) std::strtoll (fields[2].c_str (), nullptr, 10),
                      g_ascii_strtod (fields[3].c_str (), nullptr) });
  }
  return hits;
}

/* Benchmarks --------------------------------------------------------------------------------- */

/* IDs of the benchmarks' galaxies start here, far from any simulated catalogue's. */
const gint64 kBenchIdOffset = G_GINT64_CONSTANT (1000000000000);

/* n random L2-normalised rows (both modalities: normal draws normalised) with IDs
 * kBenchIdOffset + 1 … + n. */
inline AclipEmbeddings *
astroclip_random_store (gint64 n, int d, guint64 seed)
{
  AclipEmbeddings *e = aclip_embeddings_new (n, d, TRUE, TRUE, nullptr);
  std::mt19937_64 rng (seed);
  std::normal_distribution<float> normal;
  std::vector<float> a (d), b (d);
  for (gint64 r = 0; r < n; r++) {
    for (int i = 0; i < d; i++)
      a[i] = normal (rng), b[i] = normal (rng);
    aclip_embeddings_set_row (e, r, kBenchIdOffset + r + 1, a.data (), b.data (), nullptr);
  }
  return e;
}

/* A catalogue of n galaxies with those IDs, 1×1 images and no spectra (~100 bytes a row: a
 * catalogue must hold images or spectra), Z spread over 0.05–0.55. */
inline bool
astroclip_write_id_catalogue (const std::string &path, gint64 n)
{
  ErrorHolder error;
  AclipCatalogueLayout layout;
  aclip_catalogue_layout_init_desi (&layout, 1, 1);
  layout.n_wave = 0;
  float pixel[3] = { 0.1f, 0.2f, 0.3f };
  AclipCatalogueWriter *writer = aclip_catalogue_writer_new (path.c_str (), &layout, error.out ());
  EXPECT_NE (writer, nullptr) << error->message;
  if (writer == nullptr)
    return false;
  bool ok = true;
  for (gint64 r = 0; r < n && ok; r++) {
    AclipGalaxy g = {};
    g.id = kBenchIdOffset + r + 1;
    g.ra = 150.0 + r * 1e-5;
    g.dec = 2.0;
    g.z = (float) (0.05 + 0.5 * ((r * 7919) % 1000) / 1000.0);
    g.logmstar = 10.0f;
    for (int b = 0; b < 3; b++)
      g.flux[b] = 1.0f;
    g.image = pixel;
    ok = aclip_catalogue_writer_append (writer, &g, nullptr, error.out ());
  }
  ok = ok && aclip_catalogue_writer_finish (writer, error.out ());
  EXPECT_TRUE (ok) << (error.error ? error->message : "");
  aclip_catalogue_writer_free (writer);
  return ok;
}

/* test-checkpoint.cc — checkpoints (aclip-checkpoint.h, docs/checkpoint.md): round trip, every
 * error case, atomic replacement under a kill, and a resumed training run that is
 * bit-identical to an uninterrupted one. */
#include "test-support.h"

#include "aclip-checkpoint.h"
#include "aclip-error.h"
#include "aclip-optim.h"
#include "aclip-params.h"
#include "reference-training.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const AclipInit kNormal = { ACLIP_INIT_NORMAL, 1.0f, 0, 0 };

struct Spec
{
  const char *name;
  std::vector<int64_t> shape;
};

AclipParams *
make_table (const std::vector<Spec> &specs, AclipParamsMode mode, guint64 seed)
{
  AclipParams *params = aclip_params_new ();
  for (const Spec &spec : specs) {
    ErrorHolder error;
    EXPECT_GE (aclip_params_add (params, spec.name, (int) spec.shape.size (), spec.shape.data (),
                                 kNormal, ACLIP_PARAM_DECAY, error.out ()),
               0);
  }
  ErrorHolder error;
  EXPECT_TRUE (aclip_params_seal (params, mode, error.out ()));
  aclip_params_init (params, seed, nullptr);
  if (mode == ACLIP_PARAMS_TRAINING) {
    /* Distinct, recognisable optimiser state. */
    const size_t n = aclip_params_n_floats (params);
    for (size_t i = 0; i < n; i++) {
      aclip_params_adam_m (params)[i] = 0.001f * (float) (i % 101) + (float) seed;
      aclip_params_adam_v (params)[i] = 0.002f * (float) (i % 53);
    }
    aclip_params_set_step (params, 1234);
  }
  return params;
}

const std::vector<Spec> kModel = { { "embed.weight", { 10, 6 } },
                                   { "blocks.0.norm.scale", { 6 } },
                                   { "conv.weight", { 4, 3, 3, 3 } },
                                   { "logit_scale", { 1 } } };

const char *kText = "[model]\nwidth=6\nlayers=1\n\n[training]\nseed=7\nepoch=3\n";

bool
same_floats (const float *a, const float *b, size_t n)
{
  return std::memcmp (a, b, n * sizeof (float)) == 0;
}

/* Same values in every tensor (and, when asked, the same AdamW state and step). */
void
expect_same_state (AclipParams *a, AclipParams *b, bool training)
{
  ASSERT_EQ (aclip_params_n_tensors (a), aclip_params_n_tensors (b));
  for (int t = 0; t < aclip_params_n_tensors (a); t++) {
    const AclipParamInfo *info = aclip_params_info (a, t);
    int u = aclip_params_lookup (b, info->name);
    ASSERT_GE (u, 0) << info->name;
    EXPECT_TRUE (
        same_floats (aclip_params_value (a, t), aclip_params_value (b, u), info->n_elements))
        << info->name << ": values differ";
    if (training) {
      size_t offset_a = info->offset, offset_b = aclip_params_info (b, u)->offset;
      EXPECT_TRUE (same_floats (aclip_params_adam_m (a) + offset_a,
                                aclip_params_adam_m (b) + offset_b, info->n_elements))
          << info->name << ": m differs";
      EXPECT_TRUE (same_floats (aclip_params_adam_v (a) + offset_a,
                                aclip_params_adam_v (b) + offset_b, info->n_elements))
          << info->name << ": v differs";
    }
  }
  if (training) {
    EXPECT_EQ (aclip_params_get_step (a), aclip_params_get_step (b));
  }
}

std::string
read_all (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  return std::string (std::istreambuf_iterator<char> (in), std::istreambuf_iterator<char> ());
}

void
write_all (const std::string &path, const std::string &contents)
{
  std::ofstream out (path, std::ios::binary | std::ios::trunc);
  out.write (contents.data (), (std::streamsize) contents.size ());
}

bool
save (const std::string &path, AclipParams *params, bool training, GError **error)
{
  return aclip_checkpoint_save (path.c_str (), kText, params, training, nullptr, nullptr, error);
}

} // namespace

/* Round trip ------------------------------------------------------------------------------ */

TEST (Checkpoint, RoundTripWithTrainingState)
{
  TempDir dir;
  const std::string path = dir.path ("model.ckpt");
  g_autoptr (AclipParams) saved = make_table (kModel, ACLIP_PARAMS_TRAINING, 1);
  ErrorHolder error;
  ASSERT_TRUE (save (path, saved, true, error.out ())) << error->message;
  EXPECT_EQ (count_entries (dir.root ()), 1) << "a temporary file was left behind";

  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr) << error->message;
  EXPECT_STREQ (aclip_checkpoint_get_text (checkpoint), kText);
  EXPECT_STREQ (aclip_checkpoint_get_path (checkpoint), path.c_str ());
  EXPECT_TRUE (aclip_checkpoint_has_training_state (checkpoint));
  EXPECT_EQ (aclip_checkpoint_get_step (checkpoint), 1234);
  ASSERT_EQ (aclip_checkpoint_n_tensors (checkpoint), (int) kModel.size ());
  for (int i = 0; i < (int) kModel.size (); i++) {
    EXPECT_STREQ (aclip_checkpoint_tensor_name (checkpoint, i), kModel[i].name);
    int n_dims = 0;
    const gint64 *shape = aclip_checkpoint_tensor_shape (checkpoint, i, &n_dims);
    ASSERT_EQ (n_dims, (int) kModel[i].shape.size ());
    for (int d = 0; d < n_dims; d++)
      EXPECT_EQ (shape[d], kModel[i].shape[d]);
    const float *values = aclip_checkpoint_tensor_values (checkpoint, i);
    EXPECT_EQ ((uintptr_t) values % 64, 0u) << "tensor data is not 64-byte aligned in the map";
    EXPECT_TRUE (same_floats (values, aclip_params_value (saved, i),
                              aclip_params_info (saved, i)->n_elements));
    EXPECT_EQ (aclip_checkpoint_lookup (checkpoint, kModel[i].name), i);
  }
  EXPECT_EQ (aclip_checkpoint_lookup (checkpoint, "nope"), -1);

  /* Into a fresh training table, with the optimiser state. */
  g_autoptr (AclipParams) fresh = make_table (kModel, ACLIP_PARAMS_TRAINING, 2);
  ASSERT_TRUE (aclip_checkpoint_restore (checkpoint, fresh, TRUE, error.out ())) << error->message;
  expect_same_state (saved, fresh, true);

  /* Values only: into an inference table; into a training table, whose AdamW state resets. */
  g_autoptr (AclipParams) inference = make_table (kModel, ACLIP_PARAMS_INFERENCE, 3);
  ASSERT_TRUE (aclip_checkpoint_restore (checkpoint, inference, FALSE, error.out ()));
  expect_same_state (saved, inference, false);
  g_autoptr (AclipParams) finetune = make_table (kModel, ACLIP_PARAMS_TRAINING, 4);
  ASSERT_TRUE (aclip_checkpoint_restore (checkpoint, finetune, FALSE, error.out ()));
  expect_same_state (saved, finetune, false);
  EXPECT_EQ (aclip_params_get_step (finetune), 0);
  EXPECT_EQ (aclip_params_adam_m (finetune)[5], 0.0f);

  /* Training state cannot go into an inference table. */
  EXPECT_FALSE (aclip_checkpoint_restore (checkpoint, inference, TRUE, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG));
}

TEST (Checkpoint, WeightsOnlyFile)
{
  TempDir dir;
  const std::string path = dir.path ("weights.ckpt");
  g_autoptr (AclipParams) saved = make_table (kModel, ACLIP_PARAMS_INFERENCE, 5);
  ErrorHolder error;
  ASSERT_TRUE (
      aclip_checkpoint_save (path.c_str (), nullptr, saved, FALSE, nullptr, nullptr, error.out ()));
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr) << error->message;
  EXPECT_FALSE (aclip_checkpoint_has_training_state (checkpoint));
  EXPECT_STREQ (aclip_checkpoint_get_text (checkpoint), "");
  g_autoptr (AclipParams) training = make_table (kModel, ACLIP_PARAMS_TRAINING, 6);
  EXPECT_FALSE (aclip_checkpoint_restore (checkpoint, training, TRUE, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_MISSING));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "optimiser state");
  /* Saving training state from an inference table is refused. */
  EXPECT_FALSE (save (dir.path ("x.ckpt"), saved, true, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG));
}

/* Errors ------------------------------------------------------------------------------------ */

class CheckpointErrors : public ::testing::Test {
protected:
  void SetUp () override
  {
    path = dir.path ("good.ckpt");
    params = make_table (kModel, ACLIP_PARAMS_TRAINING, 8);
    ErrorHolder error;
    ASSERT_TRUE (save (path, params, true, error.out ()));
    contents = read_all (path);
    ASSERT_GT (contents.size (), 1000u);
  }
  void TearDown () override
  {
    aclip_params_free (params);
  }

  /* Opens `bytes` written to a file; expects failure with `code` and the fragments. */
  void expect_open_error (const std::string &bytes, int code,
                          std::initializer_list<const char *> fragments)
  {
    const std::string bad = dir.path ("bad.ckpt");
    write_all (bad, bytes);
    ErrorHolder error;
    AclipCheckpoint *checkpoint = aclip_checkpoint_open (bad.c_str (), error.out ());
    EXPECT_EQ (checkpoint, nullptr);
    aclip_checkpoint_free (checkpoint);
    ASSERT_NE (error.error, nullptr);
    EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, code))
        << "code " << error->code << ": " << error->message;
    EXPECT_ERROR_MENTIONS (error.error, bad.c_str ());
    for (const char *fragment : fragments)
      EXPECT_ERROR_MENTIONS (error.error, fragment);
  }

  TempDir dir;
  std::string path, contents;
  AclipParams *params = nullptr;
};

TEST_F (CheckpointErrors, MissingFileAndNotACheckpoint)
{
  ErrorHolder error;
  const std::string missing = dir.path ("absent.ckpt");
  EXPECT_EQ (aclip_checkpoint_open (missing.c_str (), error.out ()), nullptr);
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_IO));
  EXPECT_ERROR_MENTIONS (error.error, missing.c_str ());
  expect_open_error ("SIMPLE  =                    T / a FITS file, say", ACLIP_ERROR_FORMAT,
                     { "not a Galaxy Viewer checkpoint" });
  expect_open_error ("AB", ACLIP_ERROR_FORMAT, { "not a Galaxy Viewer checkpoint" });
}

TEST_F (CheckpointErrors, UnknownVersion)
{
  std::string bytes = contents;
  bytes[8] = 7; /* version field, little-endian uint32 at byte 8 */
  expect_open_error (bytes, ACLIP_ERROR_VERSION, { "version 7", "not supported" });
}

TEST_F (CheckpointErrors, Truncated)
{
  for (size_t length : { (size_t) 0, (size_t) 5, (size_t) 20, (size_t) 127, (size_t) 128,
                         contents.size () / 2, contents.size () - 8, contents.size () - 1 })
    expect_open_error (contents.substr (0, length), ACLIP_ERROR_FORMAT, { "truncated" });
  /* Through the test helper too, to be sure the copy is byte-exact. */
  copy_truncated (path, dir.path ("cut.ckpt"), contents.size () - 100);
  ErrorHolder error;
  EXPECT_EQ (aclip_checkpoint_open (dir.path ("cut.ckpt").c_str (), error.out ()), nullptr);
  EXPECT_ERROR_MENTIONS (error.error, "truncated");
}

TEST_F (CheckpointErrors, BadChecksum)
{
  /* One flipped bit anywhere — in the text, the directory, a value, the checksum itself. */
  for (size_t at : { (size_t) 130, (size_t) 300, contents.size () / 2, contents.size () - 20,
                     contents.size () - 1 }) {
    std::string bytes = contents;
    bytes[at] ^= 0x10;
    expect_open_error (bytes, ACLIP_ERROR_FORMAT, { "checksum" });
  }
  /* Extra bytes after the end. */
  expect_open_error (contents + "junk", ACLIP_ERROR_FORMAT, { "header says" });
}

TEST_F (CheckpointErrors, WrongShapeMissingOrExtraTensor)
{
  ErrorHolder error;
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr);

  std::vector<Spec> reshaped = kModel;
  reshaped[2].shape = { 4, 3, 1, 9 }; /* same size, other shape */
  g_autoptr (AclipParams) other = make_table (reshaped, ACLIP_PARAMS_TRAINING, 9);
  std::vector<float> before (aclip_params_values (other),
                             aclip_params_values (other) + aclip_params_n_floats (other));
  EXPECT_FALSE (aclip_checkpoint_restore (checkpoint, other, TRUE, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "conv.weight", "[4, 3, 3, 3]", "[4, 3, 1, 9]");
  EXPECT_TRUE (same_floats (before.data (), aclip_params_values (other), before.size ()))
      << "a failed restore changed the table";

  std::vector<Spec> bigger = kModel;
  bigger.push_back ({ "head.bias", { 3 } });
  g_autoptr (AclipParams) more = make_table (bigger, ACLIP_PARAMS_TRAINING, 9);
  EXPECT_FALSE (aclip_checkpoint_restore (checkpoint, more, TRUE, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_MISSING));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "head.bias");

  std::vector<Spec> smaller (kModel.begin (), kModel.end () - 1);
  g_autoptr (AclipParams) fewer = make_table (smaller, ACLIP_PARAMS_TRAINING, 9);
  EXPECT_FALSE (aclip_checkpoint_restore (checkpoint, fewer, TRUE, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, path.c_str (), "logit_scale", "does not have");
}

TEST_F (CheckpointErrors, UnwritableDestination)
{
  ErrorHolder error;
  const std::string nowhere = dir.path ("no-such-folder/model.ckpt");
  EXPECT_FALSE (save (nowhere, params, true, error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_IO));
  EXPECT_ERROR_MENTIONS (error.error, nowhere.c_str ());
}

/* Atomic replacement ------------------------------------------------------------------------- */

static gboolean
kill_midway (double fraction, gpointer)
{
  if (fraction >= 0.3)
    raise (SIGKILL); /* as if the machine or the trainer died during the write */
  return TRUE;
}

static gboolean
cancel_midway (double fraction, gpointer calls)
{
  ++*(int *) calls;
  return fraction < 0.3;
}

TEST (CheckpointAtomic, KillOrCancelDuringWriteKeepsThePreviousFile)
{
  TempDir dir;
  const std::string path = dir.path ("model.ckpt");
  g_autoptr (AclipParams) first = make_table (kModel, ACLIP_PARAMS_TRAINING, 10);
  g_autoptr (AclipParams) second = make_table (kModel, ACLIP_PARAMS_TRAINING, 11);
  ErrorHolder error;
  ASSERT_TRUE (save (path, first, true, error.out ()));
  const std::string original = read_all (path);

  /* A child process saves the second model and is killed part-way through. */
  fflush (stdout);
  pid_t child = fork ();
  ASSERT_GE (child, 0);
  if (child == 0) {
    aclip_checkpoint_save (path.c_str (), kText, second, TRUE, kill_midway, nullptr, nullptr);
    _exit (3); /* not reached if the kill happened */
  }
  int status = 0;
  ASSERT_EQ (waitpid (child, &status, 0), child);
  ASSERT_TRUE (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL) << "status " << status;
  EXPECT_EQ (count_entries (dir.root ()), 2) << "the killed write should leave its temp file";
  EXPECT_EQ (read_all (path), original) << "the previous checkpoint was touched";
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr) << error->message;
  g_autoptr (AclipParams) loaded = make_table (kModel, ACLIP_PARAMS_TRAINING, 12);
  ASSERT_TRUE (aclip_checkpoint_restore (checkpoint, loaded, TRUE, error.out ()));
  expect_same_state (first, loaded, true);

  /* A cancelled save: an error, the temporary file removed, the previous file intact. */
  int calls = 0;
  EXPECT_FALSE (aclip_checkpoint_save (path.c_str (), kText, second, TRUE, cancel_midway, &calls,
                                       error.out ()));
  EXPECT_TRUE (g_error_matches (error, ACLIP_ERROR, ACLIP_ERROR_CANCELLED));
  EXPECT_GE (calls, 2);
  EXPECT_EQ (count_entries (dir.root ()), 2);
  EXPECT_EQ (read_all (path), original);

  /* A completed save replaces it. */
  ASSERT_TRUE (save (path, second, true, error.out ()));
  g_autoptr (AclipCheckpoint) replaced = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (replaced, nullptr);
  ASSERT_TRUE (aclip_checkpoint_restore (replaced, loaded, TRUE, error.out ()));
  expect_same_state (second, loaded, true);
}

/* Resuming training ----------------------------------------------------------------------- */

TEST (CheckpointResume, ResumedRunIsBitIdenticalToUninterrupted)
{
  const int n = 48, n_in = 6, n_hidden = 16, n_out = 2, steps = 60, save_at = 30;
  std::mt19937_64 rng (17);
  std::normal_distribution<float> normal;
  std::vector<float> x (n * n_in), y (n * n_out);
  for (auto &v : x)
    v = normal (rng);
  for (int s = 0; s < n; s++) {
    y[s * n_out] = std::sin (x[s * n_in]) + 0.3f * x[s * n_in + 1];
    y[s * n_out + 1] = x[s * n_in + 2] * x[s * n_in + 3];
  }
  const AclipLrSchedule schedule = { 5e-3, 1e-4, 10, steps };
  const AclipAdamWConfig config = { 0.9, 0.999, 1e-8, 0.05 };
  /* Mini-batches of 16 in turn, so the data position is part of the state (derived from the
   * step count, which the checkpoint keeps). */
  auto train = [&] (TinyMlp &mlp, int until) {
    while (aclip_params_get_step (mlp.params) < until) {
      int batch = (int) (aclip_params_get_step (mlp.params) % 3);
      aclip_params_zero_grads (mlp.params);
      mlp.loss (x.data () + batch * 16 * n_in, y.data () + batch * 16 * n_out, 16, true);
      aclip_clip_grad_norm (nullptr, aclip_params_grads (mlp.params),
                            aclip_params_n_floats (mlp.params), 0.5);
      aclip_adamw_step (nullptr, mlp.params, &config,
                        aclip_lr_schedule_at (&schedule, aclip_params_get_step (mlp.params)));
    }
  };

  TinyMlp straight (n_in, n_hidden, n_out, n, ACLIP_PARAMS_TRAINING);
  aclip_params_init (straight.params, 2024, nullptr);
  float start_loss = straight.loss (x.data (), y.data (), n, false);
  train (straight, steps);

  TempDir dir;
  const std::string path = dir.path ("resume.ckpt");
  ErrorHolder error;
  {
    TinyMlp first (n_in, n_hidden, n_out, n, ACLIP_PARAMS_TRAINING);
    aclip_params_init (first.params, 2024, nullptr);
    train (first, save_at);
    ASSERT_TRUE (save (path, first.params, true, error.out ())) << error->message;
  }
  TinyMlp resumed (n_in, n_hidden, n_out, n, ACLIP_PARAMS_TRAINING);
  aclip_params_init (resumed.params, 999, nullptr); /* anything: the checkpoint replaces it */
  {
    g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
    ASSERT_NE (checkpoint, nullptr) << error->message;
    ASSERT_TRUE (aclip_checkpoint_restore (checkpoint, resumed.params, TRUE, error.out ()));
  }
  EXPECT_EQ (aclip_params_get_step (resumed.params), save_at);
  train (resumed, steps);

  expect_same_state (straight.params, resumed.params, true);
  EXPECT_TRUE (same_floats (aclip_params_values (straight.params),
                            aclip_params_values (resumed.params),
                            aclip_params_n_floats (straight.params)));
  float end_loss = straight.loss (x.data (), y.data (), n, false);
  EXPECT_LT (end_loss, 0.5f * start_loss) << "the run should be learning something";
}

/* The checksum ------------------------------------------------------------------------------ */

TEST (CheckpointHash, MatchesTheDocumentedDefinition)
{
  /* Values from an independent implementation of docs/checkpoint.md's definition (Python). */
  std::vector<guint8> counting (100);
  for (int i = 0; i < 100; i++)
    counting[i] = (guint8) i;
  EXPECT_EQ (aclip_checkpoint_hash ("", 0), G_GUINT64_CONSTANT (0x44700a3484a70d4c));
  EXPECT_EQ (aclip_checkpoint_hash ("a", 1), G_GUINT64_CONSTANT (0x878aba3a90c9cc8d));
  EXPECT_EQ (aclip_checkpoint_hash ("ACLIPCKP", 8), G_GUINT64_CONSTANT (0xd6d07ca62791ed38));
  EXPECT_EQ (aclip_checkpoint_hash (counting.data (), 100),
             G_GUINT64_CONSTANT (0xfd710a1d72cb011f));
}

TEST (CheckpointHash, SensitiveAndFast)
{
  std::vector<guint8> data (1 << 20);
  for (size_t i = 0; i < data.size (); i++)
    data[i] = (guint8) (i * 2654435761u >> 13);
  const guint64 base = aclip_checkpoint_hash (data.data (), data.size ());
  EXPECT_EQ (base, aclip_checkpoint_hash (data.data (), data.size ()));
  /* Every single-bit flip among a sample of positions, and every length change, changes it. */
  for (size_t at : { (size_t) 0, (size_t) 7, (size_t) 31, (size_t) 32, (size_t) 4097,
                     data.size () - 33, data.size () - 1 })
    for (int bit = 0; bit < 8; bit++) {
      data[at] ^= (guint8) (1 << bit);
      EXPECT_NE (aclip_checkpoint_hash (data.data (), data.size ()), base) << at << ":" << bit;
      data[at] ^= (guint8) (1 << bit);
    }
  for (size_t cut = 1; cut <= 40; cut++)
    EXPECT_NE (aclip_checkpoint_hash (data.data (), data.size () - cut), base);
  /* Zeros of different lengths differ (the length is mixed in). */
  std::vector<guint8> zeros (100, 0);
  EXPECT_NE (aclip_checkpoint_hash (zeros.data (), 64), aclip_checkpoint_hash (zeros.data (), 72));

  /* Speed on 256 MiB (the parameters and AdamW state of a ~20M-parameter model). */
  std::vector<guint8> big ((size_t) 256 << 20, 1);
  gint64 start = g_get_monotonic_time ();
  volatile guint64 sink = aclip_checkpoint_hash (big.data (), big.size ());
  double seconds = (g_get_monotonic_time () - start) / 1e6;
  (void) sink;
  std::printf ("[measured] ACLIP-H64 checksum: %.2f GB/s (256 MiB in %.3f s, one thread)\n",
               big.size () / seconds / 1e9, seconds);
}

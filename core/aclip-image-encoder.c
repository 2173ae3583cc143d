/* aclip-image-encoder.c — the residual convolutional image encoder (aclip-image-encoder.h). */
#include "aclip-image-encoder.h"

#include "aclip-error.h"
#include "aclip-nn-conv.h"
#include "aclip-nn.h"
#include "aclip-resblock.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#define GROUP       "image_encoder"
#define IN_CHANNELS 3

/* ---- Configuration ---------------------------------------------------------------------- */

void
aclip_image_encoder_config_init_default (AclipImageEncoderConfig *config)
{
  g_return_if_fail (config != NULL);
  static const int channels[] = { 64, 128, 256 };

  memset (config, 0, sizeof *config);
  config->crop = 64;
  config->downsample = 1;
  config->stem_channels = 32;
  config->stem_stride = 2;
  config->n_stages = G_N_ELEMENTS (channels);
  for (int i = 0; i < config->n_stages; i++) {
    config->stage_channels[i] = channels[i];
    config->stage_blocks[i] = 1;
  }
  config->bn_eps = 1e-5f;
  config->bn_momentum = 0.1f;
}

gboolean
aclip_image_encoder_config_validate (const AclipImageEncoderConfig *c, GError **error)
{
  g_return_val_if_fail (c != NULL, FALSE);

  const char *problem = NULL;
  if (c->crop < 1 || c->crop > 4096)
    problem = _("the crop must be 1–4096 pixels");
  else if (c->downsample < 1 || c->crop % c->downsample != 0)
    problem = _("the downsampling factor must be at least 1 and divide the crop");
  else if (c->stem_channels < 1 || c->stem_channels > 4096)
    problem = _("the stem must have 1–4096 channels");
  else if (c->stem_stride != 1 && c->stem_stride != 2)
    problem = _("the stem's stride must be 1 or 2");
  else if (c->n_stages < 1 || c->n_stages > ACLIP_IMAGE_ENCODER_MAX_STAGES)
    problem = _("the number of stages is out of range");
  else if (!(c->bn_eps > 0.0f) || !isfinite (c->bn_eps) || !(c->bn_momentum >= 0.0f) ||
           !(c->bn_momentum <= 1.0f))
    problem = _("the batch normalisation’s epsilon must be positive and its momentum 0–1");
  else
    for (int i = 0; i < c->n_stages; i++)
      if (c->stage_channels[i] < 1 || c->stage_channels[i] > 4096 || c->stage_blocks[i] < 1 ||
          c->stage_blocks[i] > 64)
        problem = _("every stage needs 1–4096 channels and 1–64 blocks");
  if (problem != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Invalid image encoder configuration: %s"), problem);
    return FALSE;
  }
  return TRUE;
}

int
aclip_image_encoder_config_input_size (const AclipImageEncoderConfig *config)
{
  g_return_val_if_fail (config != NULL && config->downsample >= 1, 0);
  return config->crop / config->downsample;
}

/* Side of the map after the stem and after stage `stage` (−1: the stem). */
static int
map_side_after (const AclipImageEncoderConfig *config, int stage)
{
  int side = (aclip_image_encoder_config_input_size (config) - 1) / config->stem_stride + 1;
  for (int i = 0; i <= stage; i++)
    side = (side - 1) / 2 + 1;
  return side;
}

int
aclip_image_encoder_config_map_size (const AclipImageEncoderConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);
  return map_side_after (config, config->n_stages - 1);
}

int
aclip_image_encoder_config_n_tokens (const AclipImageEncoderConfig *config)
{
  int side = aclip_image_encoder_config_map_size (config);
  return side * side;
}

int
aclip_image_encoder_config_channels (const AclipImageEncoderConfig *config)
{
  g_return_val_if_fail (config != NULL && config->n_stages >= 1, 0);
  return config->stage_channels[config->n_stages - 1];
}

double
aclip_image_encoder_config_flops (const AclipImageEncoderConfig *config)
{
  g_return_val_if_fail (config != NULL, 0.0);
  double side = map_side_after (config, -1);
  double flops = side * side * config->stem_channels * IN_CHANNELS * 9;
  int channels = config->stem_channels;
  for (int i = 0; i < config->n_stages; i++) {
    double out_side = map_side_after (config, i);
    double oc = config->stage_channels[i];
    for (int b = 0; b < config->stage_blocks[i]; b++) {
      int ic = b == 0 ? channels : (int) oc;
      flops += out_side * out_side * oc * (ic * 9 + oc * 9);
      if (b == 0)
        flops += out_side * out_side * oc * ic; /* the projection shortcut */
    }
    channels = (int) oc;
  }
  return flops;
}

static char *
format_float (float value)
{
  char number[G_ASCII_DTOSTR_BUF_SIZE];
  /* %.9g keeps every bit of a float. */
  return g_strdup (g_ascii_formatd (number, sizeof number, "%.9g", value));
}

void
aclip_image_encoder_config_save (const AclipImageEncoderConfig *config, GKeyFile *key_file)
{
  g_return_if_fail (config != NULL && key_file != NULL);

  g_key_file_set_integer (key_file, GROUP, "crop", config->crop);
  g_key_file_set_integer (key_file, GROUP, "downsample", config->downsample);
  g_key_file_set_integer (key_file, GROUP, "stem_channels", config->stem_channels);
  g_key_file_set_integer (key_file, GROUP, "stem_stride", config->stem_stride);
  g_key_file_set_integer_list (key_file, GROUP, "stage_channels", (int *) config->stage_channels,
                               (gsize) config->n_stages);
  g_key_file_set_integer_list (key_file, GROUP, "stage_blocks", (int *) config->stage_blocks,
                               (gsize) config->n_stages);
  g_autofree char *eps = format_float (config->bn_eps);
  g_autofree char *momentum = format_float (config->bn_momentum);
  g_key_file_set_value (key_file, GROUP, "bn_eps", eps);
  g_key_file_set_value (key_file, GROUP, "bn_momentum", momentum);
}

/* Reads an integer key if present. */
static gboolean
load_int (GKeyFile *key_file, const char *key, int *value, GError **error)
{
  if (!g_key_file_has_key (key_file, GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  int v = g_key_file_get_integer (key_file, GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", GROUP, key, local->message);
    return FALSE;
  }
  *value = v;
  return TRUE;
}

static gboolean
load_float (GKeyFile *key_file, const char *key, float *value, GError **error)
{
  if (!g_key_file_has_key (key_file, GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  double v = g_key_file_get_double (key_file, GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", GROUP, key, local->message);
    return FALSE;
  }
  *value = (float) v;
  return TRUE;
}

/* Reads an integer list key if present, checking its length against the stage count. */
static gboolean
load_stage_list (GKeyFile *key_file, const char *key, int *values, int *n_stages, GError **error)
{
  if (!g_key_file_has_key (key_file, GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  gsize length = 0;
  g_autofree int *list = g_key_file_get_integer_list (key_file, GROUP, key, &length, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", GROUP, key, local->message);
    return FALSE;
  }
  if (length < 1 || length > ACLIP_IMAGE_ENCODER_MAX_STAGES ||
      (*n_stages > 0 && (int) length != *n_stages)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("[%s] %s: %d stages, which does not match the other lists"), GROUP, key,
                 (int) length);
    return FALSE;
  }
  *n_stages = (int) length;
  memcpy (values, list, length * sizeof (int));
  return TRUE;
}

gboolean
aclip_image_encoder_config_load (AclipImageEncoderConfig *config, GKeyFile *key_file,
                                 GError **error)
{
  g_return_val_if_fail (config != NULL && key_file != NULL, FALSE);

  if (!g_key_file_has_group (key_file, GROUP)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("The model has no [%s] section: it holds no image encoder"), GROUP);
    return FALSE;
  }
  AclipImageEncoderConfig c;
  aclip_image_encoder_config_init_default (&c);
  int n_stages = 0, n_channels = 0, n_blocks = 0;
  int channels[ACLIP_IMAGE_ENCODER_MAX_STAGES], blocks[ACLIP_IMAGE_ENCODER_MAX_STAGES];
  if (!load_int (key_file, "crop", &c.crop, error) ||
      !load_int (key_file, "downsample", &c.downsample, error) ||
      !load_int (key_file, "stem_channels", &c.stem_channels, error) ||
      !load_int (key_file, "stem_stride", &c.stem_stride, error) ||
      !load_stage_list (key_file, "stage_channels", channels, &n_channels, error) ||
      !load_stage_list (key_file, "stage_blocks", blocks, &n_blocks, error) ||
      !load_float (key_file, "bn_eps", &c.bn_eps, error) ||
      !load_float (key_file, "bn_momentum", &c.bn_momentum, error))
    return FALSE;
  if (n_channels > 0 || n_blocks > 0) {
    if (n_channels != n_blocks) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("[%s] stage_channels and stage_blocks must both be given, with one value "
                      "per stage"),
                   GROUP);
      return FALSE;
    }
    n_stages = n_channels;
    c.n_stages = n_stages;
    memcpy (c.stage_channels, channels, sizeof (int) * n_stages);
    memcpy (c.stage_blocks, blocks, sizeof (int) * n_stages);
  }
  if (!aclip_image_encoder_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

/* ---- Parameters ------------------------------------------------------------------------- */

/* The tensors of one basic block, in registration order. */
enum
{
  T_CONV1,
  T_BN1_W,
  T_BN1_B,
  T_BN1_MEAN,
  T_BN1_VAR,
  T_CONV2,
  T_BN2_W,
  T_BN2_B,
  T_BN2_MEAN,
  T_BN2_VAR,
  T_SC_CONV,
  T_SC_BN_W,
  T_SC_BN_B,
  T_SC_BN_MEAN,
  T_SC_BN_VAR,
  N_BLOCK_TENSORS
};

/* Adds the four tensors of a BN layer of `channels` channels named "<name>.*"; the weight
 * starts at `weight_init` (1, or 0 for the last BN of a residual branch). */
static gboolean
add_batchnorm (AclipParams *params, const char *name, int channels, AclipInitKind weight_init,
               GError **error)
{
  gint64 shape[1] = { channels };
  static const char *suffix[] = { "weight", "bias", "running_mean", "running_var" };
  AclipInitKind init[] = { weight_init, ACLIP_INIT_ZEROS, ACLIP_INIT_ZEROS, ACLIP_INIT_ONES };
  for (int i = 0; i < 4; i++) {
    g_autofree char *full = g_strdup_printf ("%s.%s", name, suffix[i]);
    AclipInit how = { init[i], 0.0f, 0, 0 };
    if (aclip_params_add (params, full, 1, shape, how, ACLIP_PARAM_NONE, error) < 0)
      return FALSE;
  }
  return TRUE;
}

/* A bias-free convolution weight [OC, IC, k, k], He-normal (σ = √2/√(IC·k²)), decayed. */
static gboolean
add_conv (AclipParams *params, const char *name, int out_channels, int in_channels, int kernel,
          GError **error)
{
  gint64 shape[4] = { out_channels, in_channels, kernel, kernel };
  AclipInit how = { ACLIP_INIT_KAIMING_NORMAL, (float) G_SQRT2, 0, 0 };
  return aclip_params_add (params, name, 4, shape, how, ACLIP_PARAM_DECAY, error) >= 0;
}

gboolean
aclip_image_encoder_register (const AclipImageEncoderConfig *config, AclipParams *params,
                              const char *prefix, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL, FALSE);
  if (!aclip_image_encoder_config_validate (config, error))
    return FALSE;
  if (prefix == NULL)
    prefix = "";

  g_autofree char *stem_conv = g_strdup_printf ("%sconv1.weight", prefix);
  g_autofree char *stem_bn = g_strdup_printf ("%sbn1", prefix);
  if (!add_conv (params, stem_conv, config->stem_channels, IN_CHANNELS, 3, error) ||
      !add_batchnorm (params, stem_bn, config->stem_channels, ACLIP_INIT_ONES, error))
    return FALSE;

  int channels = config->stem_channels;
  for (int stage = 0; stage < config->n_stages; stage++) {
    int oc = config->stage_channels[stage];
    for (int b = 0; b < config->stage_blocks[stage]; b++) {
      int ic = b == 0 ? channels : oc;
      gboolean projection = b == 0; /* stride 2 */
      g_autofree char *block = g_strdup_printf ("%slayer%d.%d", prefix, stage + 1, b);
      g_autofree char *conv1 = g_strdup_printf ("%s.conv1.weight", block);
      g_autofree char *bn1 = g_strdup_printf ("%s.bn1", block);
      g_autofree char *conv2 = g_strdup_printf ("%s.conv2.weight", block);
      g_autofree char *bn2 = g_strdup_printf ("%s.bn2", block);
      /* The residual branch's last BN starts at γ = 0, so every block starts as its shortcut
       * (Goyal et al. 2017; torchvision's zero_init_residual). */
      if (!add_conv (params, conv1, oc, ic, 3, error) ||
          !add_batchnorm (params, bn1, oc, ACLIP_INIT_ONES, error) ||
          !add_conv (params, conv2, oc, oc, 3, error) ||
          !add_batchnorm (params, bn2, oc, ACLIP_INIT_ZEROS, error))
        return FALSE;
      if (projection) {
        g_autofree char *sc_conv = g_strdup_printf ("%s.downsample.0.weight", block);
        g_autofree char *sc_bn = g_strdup_printf ("%s.downsample.1", block);
        if (!add_conv (params, sc_conv, oc, ic, 1, error) ||
            !add_batchnorm (params, sc_bn, oc, ACLIP_INIT_ONES, error))
          return FALSE;
      }
    }
    channels = oc;
  }
  return TRUE;
}

gboolean
aclip_image_encoder_restore (AclipParams *params, const char *prefix,
                             const AclipCheckpoint *checkpoint, GError **error)
{
  g_return_val_if_fail (params != NULL && checkpoint != NULL, FALSE);
  g_return_val_if_fail (aclip_params_is_sealed (params), FALSE);
  if (prefix == NULL)
    prefix = "";
  const char *path = aclip_checkpoint_get_path (checkpoint);
  int n_tensors = aclip_params_n_tensors (params);

  /* Check everything first, so that a failure leaves the table as it was. */
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    if (!g_str_has_prefix (info->name, prefix))
      continue;
    int index = aclip_checkpoint_lookup (checkpoint, info->name);
    if (index < 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("%s: the checkpoint has no tensor “%s”, which the model needs"), path,
                   info->name);
      return FALSE;
    }
    int n_dims = 0;
    const gint64 *shape = aclip_checkpoint_tensor_shape (checkpoint, index, &n_dims);
    if (n_dims != info->n_dims || memcmp (shape, info->shape, sizeof (gint64) * n_dims) != 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                   _("%s: tensor “%s” has another shape in the checkpoint than in the model"),
                   path, info->name);
      return FALSE;
    }
  }
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    if (!g_str_has_prefix (info->name, prefix))
      continue;
    int index = aclip_checkpoint_lookup (checkpoint, info->name);
    memcpy (aclip_params_value (params, t), aclip_checkpoint_tensor_values (checkpoint, index),
            sizeof (float) * (gsize) info->n_elements);
  }
  return TRUE;
}

/* ---- The encoder ------------------------------------------------------------------------ */

typedef struct
{
  AclipResBlockShape shape; /* batch set per call */
  AclipResBlockParams values;
  AclipResBlockParams grads; /* all NULL for an inference table */
  AclipResBlockRunningStats running;
  gsize output;      /* arena offset: [B, OC, OH, OW] */
  gsize activations; /* arena offset: aclip_resblock_activations_size () at max_batch */
} Block;

struct _AclipImageEncoder
{
  AclipImageEncoderConfig config;
  AclipParams *params;
  int max_batch;
  int input_side; /* S */
  int stem_side;  /* S' */

  float *stem_weight, *stem_bn_weight, *stem_bn_bias, *stem_bn_mean, *stem_bn_var;
  float *d_stem_weight, *d_stem_bn_weight, *d_stem_bn_bias;

  Block *blocks;
  int n_blocks;

  AclipArena *arena;
  /* Arena offsets. */
  gsize stem_conv_out;  /* [B, C0, S', S'] before BN */
  gsize stem_out;       /* [B, C0, S', S'] after BN and ReLU */
  gsize stem_mean;      /* [C0] */
  gsize stem_invstd;    /* [C0] */
  gsize tokens;         /* [B, T, C] */
  gsize workspace;      /* the largest layer's scratch */
  gsize grad_a, grad_b; /* [largest map] each: gradients in flight in the backward */

  /* The last forward. */
  const float *input;
  int batch;
  gboolean training;
};

static float *
grad_or_null (AclipParams *params, const char *name)
{
  return aclip_params_is_training (params) ? aclip_params_grad_by_name (params, name) : NULL;
}

static AclipConv2dShape
stem_shape (const AclipImageEncoder *e, int batch)
{
  AclipConv2dShape s = { 0 };
  s.batch = batch;
  s.in_channels = IN_CHANNELS;
  s.in_height = s.in_width = e->input_side;
  s.out_channels = e->config.stem_channels;
  s.kernel_height = s.kernel_width = 3;
  s.stride_height = s.stride_width = e->config.stem_stride;
  s.pad_height = s.pad_width = 1;
  return s;
}

/* Binds block `b`'s tensors "<name>.*" from the table. */
static gboolean
bind_block (AclipImageEncoder *e, Block *block, const char *name, GError **error)
{
  /* clang-format off */
  static const char *suffix[N_BLOCK_TENSORS] = {
    "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
    "conv2.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
    "downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
    "downsample.1.running_mean", "downsample.1.running_var",
  };
  /* clang-format on */

  gboolean projection = aclip_resblock_has_projection (&block->shape);
  float *value[N_BLOCK_TENSORS] = { NULL }, *grad[N_BLOCK_TENSORS] = { NULL };
  int n = projection ? N_BLOCK_TENSORS : T_SC_CONV;
  for (int t = 0; t < n; t++) {
    g_autofree char *full = g_strdup_printf ("%s.%s", name, suffix[t]);
    value[t] = aclip_params_value_by_name (e->params, full);
    if (value[t] == NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("The parameter table has no tensor “%s”"), full);
      return FALSE;
    }
    grad[t] = grad_or_null (e->params, full);
  }
  block->values = (AclipResBlockParams){ value[T_CONV1],   value[T_BN1_W],   value[T_BN1_B],
                                         value[T_CONV2],   value[T_BN2_W],   value[T_BN2_B],
                                         value[T_SC_CONV], value[T_SC_BN_W], value[T_SC_BN_B] };
  block->grads = (AclipResBlockParams){ grad[T_CONV1],   grad[T_BN1_W],   grad[T_BN1_B],
                                        grad[T_CONV2],   grad[T_BN2_W],   grad[T_BN2_B],
                                        grad[T_SC_CONV], grad[T_SC_BN_W], grad[T_SC_BN_B] };
  block->running =
      (AclipResBlockRunningStats){ value[T_BN1_MEAN], value[T_BN1_VAR],    value[T_BN2_MEAN],
                                   value[T_BN2_VAR],  value[T_SC_BN_MEAN], value[T_SC_BN_VAR] };
  return TRUE;
}

AclipImageEncoder *
aclip_image_encoder_new (const AclipImageEncoderConfig *config, AclipParams *params,
                         const char *prefix, int max_batch, GError **error)
{
  g_return_val_if_fail (config != NULL && params != NULL, NULL);
  g_return_val_if_fail (aclip_params_is_sealed (params), NULL);
  if (!aclip_image_encoder_config_validate (config, error))
    return NULL;
  if (max_batch < 1) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("The image encoder needs a batch of at least one image"));
    return NULL;
  }
  if (prefix == NULL)
    prefix = "";

  g_autoptr (AclipImageEncoder) e = g_new0 (AclipImageEncoder, 1);
  e->config = *config;
  e->params = params;
  e->max_batch = max_batch;
  e->input_side = aclip_image_encoder_config_input_size (config);
  e->stem_side = map_side_after (config, -1);

  g_autofree char *stem_conv = g_strdup_printf ("%sconv1.weight", prefix);
  g_autofree char *bn_weight = g_strdup_printf ("%sbn1.weight", prefix);
  g_autofree char *bn_bias = g_strdup_printf ("%sbn1.bias", prefix);
  g_autofree char *bn_mean = g_strdup_printf ("%sbn1.running_mean", prefix);
  g_autofree char *bn_var = g_strdup_printf ("%sbn1.running_var", prefix);
  e->stem_weight = aclip_params_value_by_name (params, stem_conv);
  e->stem_bn_weight = aclip_params_value_by_name (params, bn_weight);
  e->stem_bn_bias = aclip_params_value_by_name (params, bn_bias);
  e->stem_bn_mean = aclip_params_value_by_name (params, bn_mean);
  e->stem_bn_var = aclip_params_value_by_name (params, bn_var);
  if (!e->stem_weight || !e->stem_bn_weight || !e->stem_bn_bias || !e->stem_bn_mean ||
      !e->stem_bn_var) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("The parameter table lacks the image encoder’s tensors under “%s”"), prefix);
    return NULL;
  }
  e->d_stem_weight = grad_or_null (params, stem_conv);
  e->d_stem_bn_weight = grad_or_null (params, bn_weight);
  e->d_stem_bn_bias = grad_or_null (params, bn_bias);

  /* The blocks, their shapes at the largest batch, and the arena. */
  for (int s = 0; s < config->n_stages; s++)
    e->n_blocks += config->stage_blocks[s];
  e->blocks = g_new0 (Block, e->n_blocks);
  e->arena = aclip_arena_new ();

  gsize stem_map = (gsize) max_batch * config->stem_channels * e->stem_side * e->stem_side;
  gsize largest_map = stem_map;
  gsize workspace = 0;
  for (int b = 1; b <= max_batch; b++) {
    AclipConv2dShape stem = stem_shape (e, b);
    workspace = MAX (workspace, aclip_conv2d_workspace_size (&stem));
  }
  e->stem_conv_out = aclip_arena_reserve (e->arena, stem_map);
  e->stem_out = aclip_arena_reserve (e->arena, stem_map);
  e->stem_mean = aclip_arena_reserve (e->arena, (gsize) config->stem_channels);
  e->stem_invstd = aclip_arena_reserve (e->arena, (gsize) config->stem_channels);

  int channels = config->stem_channels, side = e->stem_side, index = 0;
  for (int s = 0; s < config->n_stages; s++)
    for (int b = 0; b < config->stage_blocks[s]; b++, index++) {
      Block *block = &e->blocks[index];
      block->shape.batch = max_batch;
      block->shape.in_channels = b == 0 ? channels : config->stage_channels[s];
      block->shape.out_channels = config->stage_channels[s];
      block->shape.in_height = block->shape.in_width = side;
      block->shape.stride = b == 0 ? 2 : 1;
      g_autofree char *name = g_strdup_printf ("%slayer%d.%d", prefix, s + 1, b);
      if (!bind_block (e, block, name, error))
        return NULL;
      int out_side = aclip_resblock_out_height (&block->shape);
      gsize map = (gsize) max_batch * block->shape.out_channels * out_side * out_side;
      largest_map = MAX (largest_map, map);
      block->output = aclip_arena_reserve (e->arena, map);
      block->activations =
          aclip_arena_reserve (e->arena, aclip_resblock_activations_size (&block->shape));
      /* The workspace of a smaller batch can be larger (the convolution may choose another
       * algorithm), so take the largest over every batch size. */
      AclipResBlockShape shape = block->shape;
      for (shape.batch = 1; shape.batch <= max_batch; shape.batch++)
        workspace = MAX (workspace, aclip_resblock_workspace_size (&shape));
      side = out_side;
      channels = config->stage_channels[s];
    }
  e->tokens = aclip_arena_reserve (e->arena, (gsize) max_batch * channels * side * side);
  e->workspace = aclip_arena_reserve (e->arena, workspace);
  e->grad_a = aclip_arena_reserve (e->arena, largest_map);
  e->grad_b = aclip_arena_reserve (e->arena, largest_map);
  if (!aclip_arena_seal (e->arena, error))
    return NULL;
  return g_steal_pointer (&e);
}

void
aclip_image_encoder_free (AclipImageEncoder *encoder)
{
  if (encoder == NULL)
    return;
  aclip_arena_free (encoder->arena);
  g_free (encoder->blocks);
  g_free (encoder);
}

const AclipImageEncoderConfig *
aclip_image_encoder_get_config (const AclipImageEncoder *encoder)
{
  g_return_val_if_fail (encoder != NULL, NULL);
  return &encoder->config;
}

int
aclip_image_encoder_max_batch (const AclipImageEncoder *encoder)
{
  g_return_val_if_fail (encoder != NULL, 0);
  return encoder->max_batch;
}

gsize
aclip_image_encoder_activation_bytes (const AclipImageEncoder *encoder)
{
  g_return_val_if_fail (encoder != NULL, 0);
  return aclip_arena_n_floats (encoder->arena) * sizeof (float);
}

static float *
at (const AclipImageEncoder *e, gsize offset)
{
  return aclip_arena_at (e->arena, offset);
}

typedef struct
{
  float *data;
} ReluTask;

static void
relu_in_place_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  float *x = ((ReluTask *) data)->data;
  for (gint64 i = begin; i < end; i++)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

const float *
aclip_image_encoder_forward (AclipImageEncoder *e, AclipThreadPool *pool, const float *input,
                             int batch, gboolean training)
{
  g_return_val_if_fail (e != NULL && input != NULL, NULL);
  g_return_val_if_fail (batch >= 1 && batch <= e->max_batch, NULL);

  const AclipImageEncoderConfig *c = &e->config;
  float *workspace = at (e, e->workspace);
  int stem_spatial = e->stem_side * e->stem_side;

  /* Stem: conv → BN → ReLU. */
  AclipConv2dShape stem = stem_shape (e, batch);
  float *conv_out = at (e, e->stem_conv_out);
  float *stem_out = at (e, e->stem_out);
  aclip_conv2d_forward (pool, &stem, conv_out, input, e->stem_weight, NULL, workspace);
  aclip_batchnorm2d_forward (pool, stem_out, at (e, e->stem_mean), at (e, e->stem_invstd),
                             e->stem_bn_mean, e->stem_bn_var, conv_out, e->stem_bn_weight,
                             e->stem_bn_bias, batch, c->stem_channels, stem_spatial, c->bn_eps,
                             c->bn_momentum, training);
  ReluTask relu = { stem_out };
  aclip_parallel_for (pool, (gint64) batch * c->stem_channels * stem_spatial, 32768,
                      relu_in_place_range, &relu);

  /* Stages. */
  const float *x = stem_out;
  for (int i = 0; i < e->n_blocks; i++) {
    Block *block = &e->blocks[i];
    AclipResBlockShape shape = block->shape;
    shape.batch = batch;
    float *out = at (e, block->output);
    aclip_resblock_forward (pool, &shape, out, at (e, block->activations), x, &block->values,
                            &block->running, c->bn_eps, c->bn_momentum, training, workspace);
    x = out;
  }

  /* Feature map [B, C, h·w] → tokens [B, h·w, C]. */
  int side = aclip_image_encoder_config_map_size (c);
  float *tokens = at (e, e->tokens);
  aclip_feature_map_to_tokens_forward (pool, tokens, x, batch,
                                       aclip_image_encoder_config_channels (c), side * side);
  e->input = input;
  e->batch = batch;
  e->training = training;
  return tokens;
}

const float *
aclip_image_encoder_feature_map (AclipImageEncoder *e)
{
  g_return_val_if_fail (e != NULL, NULL);
  return at (e, e->blocks[e->n_blocks - 1].output);
}

void
aclip_image_encoder_backward (AclipImageEncoder *e, AclipThreadPool *pool, const float *d_tokens,
                              float *d_input)
{
  aclip_image_encoder_backward_from (e, pool, d_tokens, 0, d_input);
}

void
aclip_image_encoder_backward_from (AclipImageEncoder *e, AclipThreadPool *pool,
                                   const float *d_tokens, int first_stage, float *d_input)
{
  g_return_if_fail (e != NULL && d_tokens != NULL);
  g_return_if_fail (first_stage >= 0 && first_stage <= e->config.n_stages);
  g_return_if_fail (e->input != NULL);
  g_return_if_fail (aclip_params_is_training (e->params));

  const AclipImageEncoderConfig *c = &e->config;
  int batch = e->batch;
  float *workspace = at (e, e->workspace);
  float *grad_a = at (e, e->grad_a); /* the gradient at the current layer's output */
  float *grad_b = at (e, e->grad_b); /* the gradient at its input */

  int side = aclip_image_encoder_config_map_size (c);
  int channels = aclip_image_encoder_config_channels (c);
  gsize map = (gsize) batch * channels * side * side;
  memset (grad_a, 0, sizeof (float) * map);
  aclip_feature_map_to_tokens_backward (pool, grad_a, d_tokens, batch, channels, side * side);

  /* The blocks are stored stage after stage. */
  int first_block = 0;
  for (int s = 0; s < first_stage; s++)
    first_block += c->stage_blocks[s];
  for (int i = e->n_blocks - 1; i >= first_block; i--) {
    Block *block = &e->blocks[i];
    AclipResBlockShape shape = block->shape;
    shape.batch = batch;
    const float *x = i > 0 ? at (e, e->blocks[i - 1].output) : at (e, e->stem_out);
    gsize in_map = (gsize) batch * shape.in_channels * shape.in_height * shape.in_width;
    memset (grad_b, 0, sizeof (float) * in_map);
    aclip_resblock_backward (pool, &shape, grad_b, &block->grads, grad_a, at (e, block->output),
                             at (e, block->activations), x, &block->values, e->training, workspace);
    float *swap = grad_a;
    grad_a = grad_b;
    grad_b = swap;
  }
  if (first_stage > 0)
    return;

  /* Stem: ReLU (its output is positive exactly where its input was), BN, conv. */
  int stem_spatial = e->stem_side * e->stem_side;
  gsize stem_map = (gsize) batch * c->stem_channels * stem_spatial;
  memset (grad_b, 0, sizeof (float) * stem_map);
  aclip_relu_backward (pool, grad_b, grad_a, at (e, e->stem_out), stem_map);
  memset (grad_a, 0, sizeof (float) * stem_map);
  aclip_batchnorm2d_backward (pool, grad_a, e->d_stem_bn_weight, e->d_stem_bn_bias, grad_b,
                              at (e, e->stem_conv_out), at (e, e->stem_mean),
                              at (e, e->stem_invstd), e->stem_bn_weight, batch, c->stem_channels,
                              stem_spatial, e->training);
  AclipConv2dShape stem = stem_shape (e, batch);
  aclip_conv2d_backward (pool, &stem, d_input, e->d_stem_weight, NULL, grad_a, e->input,
                         e->stem_weight, workspace);
}

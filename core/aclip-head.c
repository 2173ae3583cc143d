/* aclip-head.c — the alignment head (aclip-head.h). */
#include "aclip-head.h"

#include "aclip-error.h"
#include "aclip-nn.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#define L2_EPS 1e-12f

enum
{
  P_QUERY,
  P_IN_W,
  P_IN_B,
  P_OUT_W,
  P_OUT_B,
  P_NORM_W,
  P_NORM_B,
  P_FC1_W,
  P_FC1_B,
  P_FC2_W,
  P_FC2_B,
  N_P
};

static const char *const param_names[N_P] = {
  "query",          "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
  "attn.out_proj.bias", "norm.weight",     "norm.bias",         "mlp.0.weight",
  "mlp.0.bias",     "mlp.2.weight",        "mlp.2.bias",
};

struct _AclipHead
{
  AclipHeadConfig config;
  int channels, n_tokens, hidden, max_batch;
  gboolean training;
  float *value[N_P];
  float *grad[N_P];
  AclipArena *arena;
  /* Activations (see aclip-head.h for the shapes, at max_batch). */
  float *q, *kv, *probs, *attn, *pooled, *ln_mean, *ln_rstd, *ln, *h, *g, *z, *norm, *out;
  float *workspace;
  /* Gradients of the activations (training). */
  float *d_z, *d_g, *d_h, *d_ln, *d_pooled, *d_attn, *d_q, *d_kv;
  /* The last forward. */
  const float *tokens;
  const guint8 *key_mask;
  int batch;
};

void
aclip_head_config_init_default (AclipHeadConfig *config)
{
  config->dim = 128;
  config->n_heads = 4;
  config->mlp_ratio = 4;
  config->layernorm_eps = 1e-5f;
}

gboolean
aclip_head_config_validate (const AclipHeadConfig *config, int channels, GError **error)
{
  if (config->dim < 1 || config->dim > 65536 || config->n_heads < 1 || config->mlp_ratio < 1 ||
      config->mlp_ratio > 64 || !(config->layernorm_eps > 0) || !isfinite (config->layernorm_eps)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("invalid head configuration: dim %d, %d heads, MLP ×%d, eps %g"), config->dim,
                 config->n_heads, config->mlp_ratio, (double) config->layernorm_eps);
    return FALSE;
  }
  if (channels > 0 && channels % config->n_heads != 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%d attention heads do not divide an encoder width of %d"), config->n_heads,
                 channels);
    return FALSE;
  }
  return TRUE;
}

void
aclip_head_config_save (const AclipHeadConfig *config, GKeyFile *key_file)
{
  g_key_file_set_integer (key_file, ACLIP_HEAD_GROUP, "dim", config->dim);
  g_key_file_set_integer (key_file, ACLIP_HEAD_GROUP, "n_heads", config->n_heads);
  g_key_file_set_integer (key_file, ACLIP_HEAD_GROUP, "mlp_ratio", config->mlp_ratio);
  g_key_file_set_double (key_file, ACLIP_HEAD_GROUP, "layernorm_eps", config->layernorm_eps);
}

static gboolean
load_int (GKeyFile *key_file, const char *key, int *value, GError **error)
{
  if (!g_key_file_has_key (key_file, ACLIP_HEAD_GROUP, key, NULL))
    return TRUE;
  GError *local = NULL;
  int v = g_key_file_get_integer (key_file, ACLIP_HEAD_GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", ACLIP_HEAD_GROUP, key,
                 local->message);
    g_error_free (local);
    return FALSE;
  }
  *value = v;
  return TRUE;
}

gboolean
aclip_head_config_load (AclipHeadConfig *config, GKeyFile *key_file, GError **error)
{
  if (!g_key_file_has_group (key_file, ACLIP_HEAD_GROUP)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING, _("no [%s] section"), ACLIP_HEAD_GROUP);
    return FALSE;
  }
  AclipHeadConfig c = *config;
  if (!load_int (key_file, "dim", &c.dim, error) ||
      !load_int (key_file, "n_heads", &c.n_heads, error) ||
      !load_int (key_file, "mlp_ratio", &c.mlp_ratio, error))
    return FALSE;
  if (g_key_file_has_key (key_file, ACLIP_HEAD_GROUP, "layernorm_eps", NULL)) {
    GError *local = NULL;
    double eps = g_key_file_get_double (key_file, ACLIP_HEAD_GROUP, "layernorm_eps", &local);
    if (local != NULL) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] layernorm_eps: %s",
                   ACLIP_HEAD_GROUP, local->message);
      g_error_free (local);
      return FALSE;
    }
    c.layernorm_eps = (float) eps;
  }
  if (!aclip_head_config_validate (&c, 0, error))
    return FALSE;
  *config = c;
  return TRUE;
}

gboolean
aclip_head_register (const AclipHeadConfig *config, int channels, AclipParams *params,
                     const char *prefix, GError **error)
{
  if (!aclip_head_config_validate (config, channels, error))
    return FALSE;
  gint64 c = channels, m = (gint64) config->mlp_ratio * channels, d = config->dim;
  struct
  {
    int n_dims;
    gint64 shape[2];
    AclipInit init;
    AclipParamFlags flags;
  } spec[N_P] = {
    [P_QUERY] = { 2, { 1, c }, { ACLIP_INIT_NORMAL, 0.02f, 0, 0 }, ACLIP_PARAM_NONE },
    [P_IN_W] = { 2, { 3 * c, c }, { ACLIP_INIT_XAVIER_UNIFORM, 1.0f, 0, 0 }, ACLIP_PARAM_DECAY },
    [P_IN_B] = { 1, { 3 * c }, { ACLIP_INIT_ZEROS, 0, 0, 0 }, ACLIP_PARAM_NONE },
    [P_OUT_W] = { 2, { c, c }, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 }, ACLIP_PARAM_DECAY },
    [P_OUT_B] = { 1, { c }, { ACLIP_INIT_ZEROS, 0, 0, 0 }, ACLIP_PARAM_NONE },
    [P_NORM_W] = { 1, { c }, { ACLIP_INIT_ONES, 0, 0, 0 }, ACLIP_PARAM_NONE },
    [P_NORM_B] = { 1, { c }, { ACLIP_INIT_ZEROS, 0, 0, 0 }, ACLIP_PARAM_NONE },
    [P_FC1_W] = { 2, { m, c }, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 }, ACLIP_PARAM_DECAY },
    [P_FC1_B] = { 1, { m }, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, c, 0 }, ACLIP_PARAM_NONE },
    [P_FC2_W] = { 2, { d, m }, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, 0, 0 }, ACLIP_PARAM_DECAY },
    [P_FC2_B] = { 1, { d }, { ACLIP_INIT_FAN_IN_UNIFORM, 1.0f, m, 0 }, ACLIP_PARAM_NONE },
  };
  for (int i = 0; i < N_P; i++) {
    g_autofree char *name = g_strconcat (prefix, param_names[i], NULL);
    if (aclip_params_add (params, name, spec[i].n_dims, spec[i].shape, spec[i].init,
                          spec[i].flags, error) < 0)
      return FALSE;
  }
  return TRUE;
}

AclipHead *
aclip_head_new (const AclipHeadConfig *config, int channels, int n_tokens, AclipParams *params,
                const char *prefix, int max_batch, gboolean for_training, GError **error)
{
  if (!aclip_head_config_validate (config, channels, error))
    return NULL;
  if (max_batch < 1 || n_tokens < 1 || !aclip_params_is_sealed (params) ||
      (for_training && !aclip_params_is_training (params))) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("a head needs a sealed table (for training when training), a batch and "
                   "tokens"));
    return NULL;
  }
  g_autoptr (AclipHead) head = g_new0 (AclipHead, 1);
  head->config = *config;
  head->channels = channels;
  head->n_tokens = n_tokens;
  head->hidden = config->mlp_ratio * channels;
  head->max_batch = max_batch;
  head->training = for_training;
  gint64 c = channels, m = head->hidden, d = config->dim;
  gint64 shapes[N_P][2] = { { 1, c }, { 3 * c, c }, { 3 * c, 0 }, { c, c }, { c, 0 }, { c, 0 },
                            { c, 0 }, { m, c },     { m, 0 },     { d, m }, { d, 0 } };
  for (int i = 0; i < N_P; i++) {
    g_autofree char *name = g_strconcat (prefix, param_names[i], NULL);
    int index = aclip_params_lookup (params, name);
    const AclipParamInfo *info = index >= 0 ? aclip_params_info (params, index) : NULL;
    gint64 n = shapes[i][0] * (shapes[i][1] > 0 ? shapes[i][1] : 1);
    if (info == NULL || info->n_elements != n) {
      g_set_error (error, ACLIP_ERROR, info == NULL ? ACLIP_ERROR_MISSING : ACLIP_ERROR_SHAPE,
                   info == NULL ? _("the parameter table has no tensor %s")
                                : _("the tensor %s has another shape than the head's"),
                   name);
      return NULL;
    }
    head->value[i] = aclip_params_value (params, index);
    head->grad[i] = for_training ? aclip_params_grad (params, index) : NULL;
  }

  gsize b = (gsize) max_batch, t = (gsize) n_tokens, h = (gsize) config->n_heads;
  AclipArena *arena = head->arena = aclip_arena_new ();
  gsize o_q = aclip_arena_reserve (arena, c);
  gsize o_kv = aclip_arena_reserve (arena, b * t * 2 * c);
  gsize o_probs = for_training ? aclip_arena_reserve (arena, b * h * t) : 0;
  gsize o_attn = aclip_arena_reserve (arena, b * c);
  gsize o_pooled = aclip_arena_reserve (arena, b * c);
  gsize o_mean = aclip_arena_reserve (arena, b);
  gsize o_rstd = aclip_arena_reserve (arena, b);
  gsize o_ln = aclip_arena_reserve (arena, b * c);
  gsize o_h = aclip_arena_reserve (arena, b * m);
  gsize o_g = aclip_arena_reserve (arena, b * m);
  gsize o_z = aclip_arena_reserve (arena, b * d);
  gsize o_norm = aclip_arena_reserve (arena, b);
  gsize o_out = aclip_arena_reserve (arena, b * d);
  gsize ws = MAX (aclip_attention_workspace_size (max_batch, 1, n_tokens, config->n_heads),
                  aclip_layernorm_backward_workspace_size (max_batch, channels));
  gsize o_ws = aclip_arena_reserve (arena, ws);
  gsize o_dz = 0, o_dg = 0, o_dh = 0, o_dln = 0, o_dpooled = 0, o_dattn = 0, o_dq = 0, o_dkv = 0;
  if (for_training) {
    o_dz = aclip_arena_reserve (arena, b * d);
    o_dg = aclip_arena_reserve (arena, b * m);
    o_dh = aclip_arena_reserve (arena, b * m);
    o_dln = aclip_arena_reserve (arena, b * c);
    o_dpooled = aclip_arena_reserve (arena, b * c);
    o_dattn = aclip_arena_reserve (arena, b * c);
    o_dq = aclip_arena_reserve (arena, c);
    o_dkv = aclip_arena_reserve (arena, b * t * 2 * c);
  }
  if (!aclip_arena_seal (arena, error))
    return NULL;
  head->q = aclip_arena_at (arena, o_q);
  head->kv = aclip_arena_at (arena, o_kv);
  head->probs = for_training ? aclip_arena_at (arena, o_probs) : NULL;
  head->attn = aclip_arena_at (arena, o_attn);
  head->pooled = aclip_arena_at (arena, o_pooled);
  head->ln_mean = aclip_arena_at (arena, o_mean);
  head->ln_rstd = aclip_arena_at (arena, o_rstd);
  head->ln = aclip_arena_at (arena, o_ln);
  head->h = aclip_arena_at (arena, o_h);
  head->g = aclip_arena_at (arena, o_g);
  head->z = aclip_arena_at (arena, o_z);
  head->norm = aclip_arena_at (arena, o_norm);
  head->out = aclip_arena_at (arena, o_out);
  head->workspace = aclip_arena_at (arena, o_ws);
  if (for_training) {
    head->d_z = aclip_arena_at (arena, o_dz);
    head->d_g = aclip_arena_at (arena, o_dg);
    head->d_h = aclip_arena_at (arena, o_dh);
    head->d_ln = aclip_arena_at (arena, o_dln);
    head->d_pooled = aclip_arena_at (arena, o_dpooled);
    head->d_attn = aclip_arena_at (arena, o_dattn);
    head->d_q = aclip_arena_at (arena, o_dq);
    head->d_kv = aclip_arena_at (arena, o_dkv);
  }
  return g_steal_pointer (&head);
}

void
aclip_head_free (AclipHead *head)
{
  if (head == NULL)
    return;
  aclip_arena_free (head->arena);
  g_free (head);
}

int
aclip_head_dim (const AclipHead *head)
{
  return head->config.dim;
}

const float *
aclip_head_forward (AclipHead *head, AclipThreadPool *pool, const float *tokens,
                    const guint8 *key_mask, int batch)
{
  g_return_val_if_fail (batch >= 1 && batch <= head->max_batch, NULL);
  int c = head->channels, m = head->hidden, d = head->config.dim, t = head->n_tokens;
  float *const *v = head->value;
  head->tokens = tokens;
  head->key_mask = key_mask;
  head->batch = batch;

  /* q [1, C] = query · Wqᵀ + bq;  kv [B·T, 2C] = tokens · Wkvᵀ + bkv (rows C..3C). */
  aclip_linear_forward (pool, head->q, v[P_QUERY], v[P_IN_W], v[P_IN_B], 1, c, c);
  aclip_linear_forward (pool, head->kv, tokens, v[P_IN_W] + (gsize) c * c, v[P_IN_B] + c,
                        (gint64) batch * t, c, 2 * c);
  /* attn [B, 1, C] */
  aclip_cross_attention_forward (pool, head->attn, head->probs, head->q, head->kv, key_mask,
                                 batch, 1, t, c, head->config.n_heads, head->workspace);
  /* pooled [B, C], ln [B, C] */
  aclip_linear_forward (pool, head->pooled, head->attn, v[P_OUT_W], v[P_OUT_B], batch, c, c);
  aclip_layernorm_forward (pool, head->ln, head->ln_mean, head->ln_rstd, head->pooled,
                           v[P_NORM_W], v[P_NORM_B], batch, c, head->config.layernorm_eps);
  /* h, g [B, M];  z, out [B, D] */
  aclip_linear_forward (pool, head->h, head->ln, v[P_FC1_W], v[P_FC1_B], batch, c, m);
  aclip_gelu_forward (pool, head->g, head->h, (gsize) batch * m, ACLIP_GELU_ERF);
  aclip_linear_forward (pool, head->z, head->g, v[P_FC2_W], v[P_FC2_B], batch, m, d);
  aclip_l2_normalize_forward (pool, head->out, head->norm, head->z, batch, d, L2_EPS);
  return head->out;
}

void
aclip_head_backward (AclipHead *head, AclipThreadPool *pool, const float *d_out, float *d_tokens)
{
  g_return_if_fail (head->training && head->batch > 0);
  int b = head->batch, c = head->channels, m = head->hidden, d = head->config.dim;
  int t = head->n_tokens;
  float *const *v = head->value;
  float *const *gr = head->grad;

  memset (head->d_z, 0, sizeof (float) * (gsize) b * d);
  memset (head->d_g, 0, sizeof (float) * (gsize) b * m);
  memset (head->d_h, 0, sizeof (float) * (gsize) b * m);
  memset (head->d_ln, 0, sizeof (float) * (gsize) b * c);
  memset (head->d_pooled, 0, sizeof (float) * (gsize) b * c);
  memset (head->d_attn, 0, sizeof (float) * (gsize) b * c);
  memset (head->d_q, 0, sizeof (float) * (gsize) c);
  memset (head->d_kv, 0, sizeof (float) * (gsize) b * t * 2 * c);

  aclip_l2_normalize_backward (pool, head->d_z, d_out, head->out, head->norm, b, d, L2_EPS);
  aclip_linear_backward (pool, head->d_g, gr[P_FC2_W], gr[P_FC2_B], head->d_z, head->g,
                         v[P_FC2_W], b, m, d);
  aclip_gelu_backward (pool, head->d_h, head->d_g, head->h, (gsize) b * m, ACLIP_GELU_ERF);
  aclip_linear_backward (pool, head->d_ln, gr[P_FC1_W], gr[P_FC1_B], head->d_h, head->ln,
                         v[P_FC1_W], b, c, m);
  aclip_layernorm_backward (pool, head->d_pooled, gr[P_NORM_W], gr[P_NORM_B], head->d_ln,
                            head->pooled, head->ln_mean, head->ln_rstd, v[P_NORM_W], b, c,
                            head->workspace);
  aclip_linear_backward (pool, head->d_attn, gr[P_OUT_W], gr[P_OUT_B], head->d_pooled,
                         head->attn, v[P_OUT_W], b, c, c);
  aclip_cross_attention_backward (pool, head->d_q, head->d_kv, head->d_attn, head->probs, head->q,
                                  head->kv, head->key_mask, b, 1, t, c, head->config.n_heads,
                                  head->workspace);
  aclip_linear_backward (pool, d_tokens, gr[P_IN_W] + (gsize) c * c, gr[P_IN_B] + c, head->d_kv,
                         head->tokens, v[P_IN_W] + (gsize) c * c, (gint64) b * t, c, 2 * c);
  aclip_linear_backward (pool, gr[P_QUERY], gr[P_IN_W], gr[P_IN_B], head->d_q, v[P_QUERY],
                         v[P_IN_W], 1, c, c);
}

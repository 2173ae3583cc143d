/* aclip-params.h — a model's memory: the parameter table and the activation arena.
 *
 * Parameter table. A model registers each named tensor with its shape, its initialisation
 * rule and whether weight decay applies, then seals the table. Sealing lays the tensors out
 * one after another, each starting on a 64-byte boundary (16 floats; the gaps are zeros and
 * stay zero), and makes ONE allocation per role: the values; and, when training, the
 * gradients and the AdamW state (one block of 2 × the values' size: the first moments m, then
 * the second moments v). A tensor sits at the same offset in every block, so an optimiser or a
 * gradient-norm pass walks a block as one flat array. Nothing is allocated after sealing.
 *
 * Initialisation is counter-based: element i of the tensor named `name` gets a value that is
 * a pure function of (seed, a 64-bit hash of the name, i) — splitmix64 finalisers chained over
 * the three. A tensor's initial values therefore depend neither on the other tensors (adding a
 * layer leaves the rest unchanged) nor on the thread count, and each tensor fills in parallel.
 *
 * The table also carries the optimiser's step count (training state saved in checkpoints).
 *
 * Activation arena. A model reserves every activation buffer it needs once from its
 * configuration, then seals the arena: one allocation, each buffer 64-byte aligned.
 */
#pragma once

#include "aclip-parallel.h"

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_PARAMS_MAX_DIMS 8
#define ACLIP_PARAMS_MAX_NAME 255 /* bytes */

typedef enum
{
  ACLIP_INIT_ZEROS,
  ACLIP_INIT_ONES,
  ACLIP_INIT_CONSTANT,       /* every element = value */
  ACLIP_INIT_NORMAL,         /* N(0, value²) */
  ACLIP_INIT_TRUNC_NORMAL,   /* N(0, value²) redrawn until within ±2·value (ViT's weights) */
  ACLIP_INIT_UNIFORM,        /* U(−value, value) */
  ACLIP_INIT_FAN_IN_UNIFORM, /* U(−b, b), b = value / √fan_in: with value = 1 PyTorch's default
                              * for nn.Linear / nn.Conv2d weights and biases */
  ACLIP_INIT_XAVIER_UNIFORM, /* U(−b, b), b = value · √(6 / (fan_in + fan_out)); value = gain */
  ACLIP_INIT_KAIMING_NORMAL, /* N(0, σ²), σ = value / √fan_in; value = gain (√2 for ReLU) */
} AclipInitKind;

/* How to initialise a tensor. fan_in and fan_out: 0 means "from the shape": for a shape
 * [OC, IC, k...] (PyTorch's layout of Linear and Conv weights) fan_in = IC·Πk and
 * fan_out = OC·Πk; a 1-D tensor has fan_in = fan_out = its length. A bias sets fan_in to its
 * layer's IC·Πk to get PyTorch's default. */
typedef struct
{
  AclipInitKind kind;
  float value;
  gint64 fan_in;
  gint64 fan_out;
} AclipInit;

typedef enum
{
  ACLIP_PARAM_NONE = 0,
  ACLIP_PARAM_DECAY = 1 << 0, /* AdamW's weight decay applies (weights; not biases, norms,
                               * embeddings' scales, the logit scale) */
} AclipParamFlags;

typedef enum
{
  ACLIP_PARAMS_INFERENCE, /* values only */
  ACLIP_PARAMS_TRAINING,  /* values, gradients and AdamW state */
} AclipParamsMode;

/* One registered tensor; pointers stay valid for the table's life. */
typedef struct
{
  const char *name;
  int n_dims;
  gint64 shape[ACLIP_PARAMS_MAX_DIMS];
  gint64 n_elements;
  gsize offset; /* in floats from the start of each block; a multiple of 16; valid once sealed */
  AclipInit init;
  AclipParamFlags flags;
} AclipParamInfo;

typedef struct _AclipParams AclipParams;

AclipParams *aclip_params_new (void);
void aclip_params_free (AclipParams *params);

/* Registers a tensor; returns its index (0, 1, ... in registration order) or −1 with an error
 * (the table is sealed; the name is empty, longer than ACLIP_PARAMS_MAX_NAME bytes or already
 * taken; n_dims is outside 1..ACLIP_PARAMS_MAX_DIMS; a size is not positive; the tensor is too
 * large). shape: [n_dims]. */
int aclip_params_add (AclipParams *params, const char *name, int n_dims, const gint64 *shape,
                      AclipInit init, AclipParamFlags flags, GError **error);

/* Lays the tensors out and allocates the blocks (zeroed). Fails when the memory cannot be
 * had or the table is empty or already sealed. */
gboolean aclip_params_seal (AclipParams *params, AclipParamsMode mode, GError **error);
gboolean aclip_params_is_sealed (const AclipParams *params);
gboolean aclip_params_is_training (const AclipParams *params);

int aclip_params_n_tensors (const AclipParams *params);
const AclipParamInfo *aclip_params_info (const AclipParams *params, int index);
/* Index of the tensor called `name`, or −1. */
int aclip_params_lookup (const AclipParams *params, const char *name);
/* Number of parameters (without the alignment gaps). */
gint64 aclip_params_n_elements (const AclipParams *params);
/* Length in floats of each block (with the gaps); valid once sealed. */
gsize aclip_params_n_floats (const AclipParams *params);
/* Bytes allocated in all. */
gsize aclip_params_bytes (const AclipParams *params);

/* The blocks, [n_floats] each (NULL before sealing; gradients and AdamW state NULL unless
 * sealed for training). aclip_params_adam_v is aclip_params_adam_m + n_floats. */
float *aclip_params_values (AclipParams *params);
float *aclip_params_grads (AclipParams *params);
float *aclip_params_adam_m (AclipParams *params);
float *aclip_params_adam_v (AclipParams *params);
/* One tensor in a block, by index: [info->n_elements]. */
float *aclip_params_value (AclipParams *params, int index);
float *aclip_params_grad (AclipParams *params, int index);
/* By name; NULL when there is no such tensor or the table is not sealed. */
float *aclip_params_value_by_name (AclipParams *params, const char *name);
float *aclip_params_grad_by_name (AclipParams *params, const char *name);

/* Fills every tensor by its rule from `seed` (see the top of this file); the AdamW state and
 * the step count are reset. pool: NULL runs serially; the result does not depend on it. */
void aclip_params_init (AclipParams *params, guint64 seed, AclipThreadPool *pool);
/* Zeroes the gradient block (call before each step, or each accumulation cycle). */
void aclip_params_zero_grads (AclipParams *params);

/* Number of optimiser steps taken (aclip_adamw_step increments it; checkpoints keep it). */
gint64 aclip_params_get_step (const AclipParams *params);
void aclip_params_set_step (AclipParams *params, gint64 step);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipParams, aclip_params_free)

/* Activation arena -------------------------------------------------------------------------- */

typedef struct _AclipArena AclipArena;

AclipArena *aclip_arena_new (void);
void aclip_arena_free (AclipArena *arena);
/* Reserves n_floats floats before sealing; returns the buffer's offset (in floats, a multiple
 * of 16) to pass to aclip_arena_at once sealed. */
gsize aclip_arena_reserve (AclipArena *arena, gsize n_floats);
/* One zeroed allocation for every reservation; fails when the memory cannot be had. */
gboolean aclip_arena_seal (AclipArena *arena, GError **error);
float *aclip_arena_at (AclipArena *arena, gsize offset);
gsize aclip_arena_n_floats (const AclipArena *arena);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipArena, aclip_arena_free)

G_END_DECLS

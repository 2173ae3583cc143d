/* reference-dense.cc — double-precision references for the dense and attention kernels. */
#include "reference-dense.h"

#include <algorithm>
#include <cmath>

namespace dense_reference {

/* ---- Linear, bias ---------------------------------------------------------------------------- */

void
linear_forward (double *out, const double *in, const double *weight, const double *bias, int n_rows,
                int in_features, int out_features)
{
  for (int n = 0; n < n_rows; n++)
    for (int o = 0; o < out_features; o++) {
      double sum = bias ? bias[o] : 0.0;
      for (int i = 0; i < in_features; i++)
        sum += in[n * in_features + i] * weight[o * in_features + i];
      out[n * out_features + o] = sum;
    }
}

void
linear_backward (double *d_in, double *d_weight, double *d_bias, const double *d_out,
                 const double *in, const double *weight, int n_rows, int in_features,
                 int out_features)
{
  for (int n = 0; n < n_rows; n++)
    for (int o = 0; o < out_features; o++) {
      double g = d_out[n * out_features + o];
      if (d_bias)
        d_bias[o] += g;
      for (int i = 0; i < in_features; i++) {
        if (d_in)
          d_in[n * in_features + i] += g * weight[o * in_features + i];
        if (d_weight)
          d_weight[o * in_features + i] += g * in[n * in_features + i];
      }
    }
}

void
bias_forward (double *out, const double *in, const double *bias, int n_rows, int channels)
{
  for (int n = 0; n < n_rows; n++)
    for (int c = 0; c < channels; c++)
      out[n * channels + c] = in[n * channels + c] + bias[c];
}

void
bias_backward (double *d_in, double *d_bias, const double *d_out, int n_rows, int channels)
{
  for (int n = 0; n < n_rows; n++)
    for (int c = 0; c < channels; c++) {
      if (d_in)
        d_in[n * channels + c] += d_out[n * channels + c];
      if (d_bias)
        d_bias[c] += d_out[n * channels + c];
    }
}

/* ---- LayerNorm ------------------------------------------------------------------------------- */

static void
row_statistics (const double *row, int channels, double eps, double *mean, double *rstd)
{
  double sum = 0.0;
  for (int c = 0; c < channels; c++)
    sum += row[c];
  double m = sum / channels;
  double variance = 0.0;
  for (int c = 0; c < channels; c++)
    variance += (row[c] - m) * (row[c] - m);
  variance /= channels;
  *mean = m;
  *rstd = 1.0 / std::sqrt (variance + eps);
}

void
layernorm_forward (double *out, double *mean, double *rstd, const double *in, const double *weight,
                   const double *bias, int n_rows, int channels, double eps)
{
  for (int n = 0; n < n_rows; n++) {
    double m, r;
    row_statistics (in + n * channels, channels, eps, &m, &r);
    for (int c = 0; c < channels; c++)
      out[n * channels + c] = (in[n * channels + c] - m) * r * weight[c] + bias[c];
    if (mean)
      mean[n] = m;
    if (rstd)
      rstd[n] = r;
  }
}

void
layernorm_backward (double *d_in, double *d_weight, double *d_bias, const double *d_out,
                    const double *in, const double *weight, int n_rows, int channels, double eps)
{
  std::vector<double> normalised (channels), g (channels);
  for (int n = 0; n < n_rows; n++) {
    double m, r;
    row_statistics (in + n * channels, channels, eps, &m, &r);
    double mean_g = 0.0, mean_g_normalised = 0.0;
    for (int c = 0; c < channels; c++) {
      normalised[c] = (in[n * channels + c] - m) * r;
      g[c] = d_out[n * channels + c] * weight[c];
      mean_g += g[c] / channels;
      mean_g_normalised += g[c] * normalised[c] / channels;
      if (d_weight)
        d_weight[c] += d_out[n * channels + c] * normalised[c];
      if (d_bias)
        d_bias[c] += d_out[n * channels + c];
    }
    if (d_in)
      for (int c = 0; c < channels; c++)
        d_in[n * channels + c] += r * (g[c] - mean_g - normalised[c] * mean_g_normalised);
  }
}

/* ---- Activations ----------------------------------------------------------------------------- */

static const double kSqrt2OverPi = 0.79788456080286535588;
static const double kTanhCubic = 0.044715;

/* ½(1 + tanh u) written as 1/(1 + e^−2u), which does not cancel when tanh u is near −1. */
static double
tanh_gate (double x, double *e_out)
{
  double u = kSqrt2OverPi * (x + kTanhCubic * x * x * x);
  double e = std::exp (-2.0 * u);
  if (e_out)
    *e_out = e;
  return 1.0 / (1.0 + e);
}

double
gelu (double x, bool tanh_form)
{
  if (tanh_form)
    return x * tanh_gate (x, nullptr);
  return 0.5 * x * std::erfc (-x / std::sqrt (2.0));
}

double
gelu_derivative (double x, bool tanh_form)
{
  if (tanh_form) {
    /* d/dx x·s = s + x·s′, s′ = 2s(1 − s)·u′ and 1 − s = e·s */
    double e;
    double s = tanh_gate (x, &e);
    double du = kSqrt2OverPi * (1.0 + 3.0 * kTanhCubic * x * x);
    if (!std::isfinite (e))
      return 0.0; /* s = 0 and x·s′ underflows */
    return s + x * 2.0 * s * (e * s) * du;
  }
  double cdf = 0.5 * std::erfc (-x / std::sqrt (2.0));
  double density = std::exp (-0.5 * x * x) / std::sqrt (2.0 * M_PI);
  return cdf + x * density;
}

void
gelu_forward (double *out, const double *in, size_t n, bool tanh_form)
{
  for (size_t i = 0; i < n; i++)
    out[i] = gelu (in[i], tanh_form);
}

void
gelu_backward (double *d_in, const double *d_out, const double *in, size_t n, bool tanh_form)
{
  for (size_t i = 0; i < n; i++)
    d_in[i] += d_out[i] * gelu_derivative (in[i], tanh_form);
}

void
relu_forward (double *out, const double *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = in[i] > 0.0 ? in[i] : 0.0;
}

void
relu_backward (double *d_in, const double *d_out, const double *in, size_t n)
{
  for (size_t i = 0; i < n; i++)
    d_in[i] += in[i] > 0.0 ? d_out[i] : 0.0;
}

/* ---- Softmax, add, positional embedding ------------------------------------------------------ */

void
softmax_forward (double *out, const double *in, int n_rows, int length)
{
  for (int n = 0; n < n_rows; n++) {
    const double *row = in + (size_t) n * length;
    double largest = *std::max_element (row, row + length);
    double sum = 0.0;
    for (int j = 0; j < length; j++)
      sum += std::exp (row[j] - largest);
    for (int j = 0; j < length; j++)
      out[(size_t) n * length + j] = std::exp (row[j] - largest) / sum;
  }
}

void
softmax_backward (double *d_in, const double *d_out, const double *out, int n_rows, int length)
{
  /* ∂out_j/∂in_i = out_j(δ_ij − out_i) */
  for (int n = 0; n < n_rows; n++) {
    const double *p = out + (size_t) n * length;
    const double *g = d_out + (size_t) n * length;
    for (int i = 0; i < length; i++) {
      double sum = 0.0;
      for (int j = 0; j < length; j++)
        sum += g[j] * p[j] * ((i == j ? 1.0 : 0.0) - p[i]);
      d_in[(size_t) n * length + i] += sum;
    }
  }
}

void
add_forward (double *out, const double *a, const double *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    out[i] = a[i] + b[i];
}

void
add_backward (double *d_a, double *d_b, const double *d_out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (d_a)
      d_a[i] += d_out[i];
    if (d_b)
      d_b[i] += d_out[i];
  }
}

void
positional_embedding_forward (double *out, const double *in, const double *table, int batch,
                              int seq_len, int channels)
{
  for (int b = 0; b < batch; b++)
    for (int t = 0; t < seq_len; t++)
      for (int c = 0; c < channels; c++) {
        size_t i = ((size_t) b * seq_len + t) * channels + c;
        out[i] = in[i] + table[(size_t) t * channels + c];
      }
}

void
positional_embedding_backward (double *d_in, double *d_table, const double *d_out, int batch,
                               int seq_len, int channels)
{
  for (int b = 0; b < batch; b++)
    for (int t = 0; t < seq_len; t++)
      for (int c = 0; c < channels; c++) {
        size_t i = ((size_t) b * seq_len + t) * channels + c;
        if (d_in)
          d_in[i] += d_out[i];
        if (d_table)
          d_table[(size_t) t * channels + c] += d_out[i];
      }
}

/* ---- Dropout --------------------------------------------------------------------------------- */

bool
dropout_keeps (uint64_t seed, uint64_t counter, uint64_t index, double p)
{
  /* splitmix64: state advances by the golden gamma, the output mixes the state. */
  uint64_t state = seed;
  state += (counter + index + 1) * 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z = z ^ (z >> 31);
  /* u ≥ p·2^64 ⟺ u/2^64 ≥ p; compare as a long double of 64 bits of mantissa. */
  return (long double) z >= (long double) p * 18446744073709551616.0L;
}

void
dropout_forward (double *out, const uint8_t *mask, const double *in, size_t n, double p)
{
  for (size_t i = 0; i < n; i++)
    out[i] = mask[i] ? in[i] / (1.0 - p) : 0.0;
}

void
dropout_backward (double *d_in, const double *d_out, const uint8_t *mask, size_t n, double p)
{
  for (size_t i = 0; i < n; i++)
    d_in[i] += mask[i] ? d_out[i] / (1.0 - p) : 0.0;
}

/* ---- L2 normalisation ------------------------------------------------------------------------ */

void
l2_normalize_forward (double *out, const double *in, int n_rows, int channels, double eps)
{
  for (int n = 0; n < n_rows; n++) {
    double sum = 0.0;
    for (int c = 0; c < channels; c++)
      sum += in[n * channels + c] * in[n * channels + c];
    double divisor = std::max (std::sqrt (sum), eps);
    for (int c = 0; c < channels; c++)
      out[n * channels + c] = in[n * channels + c] / divisor;
  }
}

void
l2_normalize_backward (double *d_in, const double *d_out, const double *in, int n_rows,
                       int channels, double eps)
{
  for (int n = 0; n < n_rows; n++) {
    const double *x = in + n * channels;
    const double *g = d_out + n * channels;
    double sum = 0.0;
    for (int c = 0; c < channels; c++)
      sum += x[c] * x[c];
    double norm = std::sqrt (sum);
    if (norm < eps) {
      for (int c = 0; c < channels; c++)
        d_in[n * channels + c] += g[c] / eps;
      continue;
    }
    /* ∂(x_j/‖x‖)/∂x_i = δ_ij/‖x‖ − x_i x_j/‖x‖³ */
    double dot = 0.0;
    for (int c = 0; c < channels; c++)
      dot += g[c] * x[c];
    for (int c = 0; c < channels; c++)
      d_in[n * channels + c] += g[c] / norm - x[c] * dot / (norm * norm * norm);
  }
}

/* ---- Feature map to tokens ------------------------------------------------------------------- */

void
feature_map_to_tokens_forward (double *out, const double *in, int batch, int channels, int n_pixels)
{
  for (int b = 0; b < batch; b++)
    for (int c = 0; c < channels; c++)
      for (int p = 0; p < n_pixels; p++)
        out[((size_t) b * n_pixels + p) * channels + c] =
            in[((size_t) b * channels + c) * n_pixels + p];
}

void
feature_map_to_tokens_backward (double *d_in, const double *d_out, int batch, int channels,
                                int n_pixels)
{
  for (int b = 0; b < batch; b++)
    for (int c = 0; c < channels; c++)
      for (int p = 0; p < n_pixels; p++)
        d_in[((size_t) b * channels + c) * n_pixels + p] +=
            d_out[((size_t) b * n_pixels + p) * channels + c];
}

/* ---- Attention ------------------------------------------------------------------------------- */

namespace {
struct AttentionIndex
{
  int batch, n_queries, n_keys, channels, n_heads, head_dim;
  bool queries_shared;
  size_t q (int b, int i, int h, int e) const
  {
    return ((size_t) (queries_shared ? 0 : b) * n_queries + i) * channels + h * head_dim + e;
  }
  size_t kv (int b, int j, int h, int e) const
  {
    return ((size_t) b * n_keys + j) * channels + h * head_dim + e;
  }
  size_t out (int b, int i, int h, int e) const
  {
    return ((size_t) b * n_queries + i) * channels + h * head_dim + e;
  }
};

/* probs[j] for one (b, h, i) from the definition: softmax over unmasked keys of q·k/√D. */
void
attention_row (std::vector<double> &probs, const AttentionIndex &ix, const double *q,
               const double *k, const uint8_t *key_mask, int b, int h, int i)
{
  double scale = 1.0 / std::sqrt ((double) ix.head_dim);
  std::vector<double> scores (ix.n_keys);
  double largest = -INFINITY;
  for (int j = 0; j < ix.n_keys; j++) {
    double dot = 0.0;
    for (int e = 0; e < ix.head_dim; e++)
      dot += q[ix.q (b, i, h, e)] * k[ix.kv (b, j, h, e)];
    scores[j] = dot * scale;
    bool masked = key_mask && key_mask[(size_t) b * ix.n_keys + j];
    if (!masked)
      largest = std::max (largest, scores[j]);
  }
  probs.assign (ix.n_keys, 0.0);
  if (largest == -INFINITY)
    return; /* every key masked */
  double sum = 0.0;
  for (int j = 0; j < ix.n_keys; j++) {
    bool masked = key_mask && key_mask[(size_t) b * ix.n_keys + j];
    probs[j] = masked ? 0.0 : std::exp (scores[j] - largest);
    sum += probs[j];
  }
  for (int j = 0; j < ix.n_keys; j++)
    probs[j] /= sum;
}
} // namespace

void
attention_forward (double *out, double *probs, const double *q, const double *k, const double *v,
                   const uint8_t *key_mask, int batch, int n_queries, int n_keys, int channels,
                   int n_heads, bool queries_shared)
{
  AttentionIndex ix = { batch,   n_queries,          n_keys,        channels,
                        n_heads, channels / n_heads, queries_shared };
  std::vector<double> p;
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < n_heads; h++)
      for (int i = 0; i < n_queries; i++) {
        attention_row (p, ix, q, k, key_mask, b, h, i);
        if (probs)
          std::copy (p.begin (), p.end (),
                     probs + (((size_t) b * n_heads + h) * n_queries + i) * n_keys);
        for (int e = 0; e < ix.head_dim; e++) {
          double sum = 0.0;
          for (int j = 0; j < n_keys; j++)
            sum += p[j] * v[ix.kv (b, j, h, e)];
          out[ix.out (b, i, h, e)] = sum;
        }
      }
}

void
attention_backward (double *d_q, double *d_k, double *d_v, const double *d_out, const double *q,
                    const double *k, const double *v, const uint8_t *key_mask, int batch,
                    int n_queries, int n_keys, int channels, int n_heads, bool queries_shared)
{
  AttentionIndex ix = { batch,   n_queries,          n_keys,        channels,
                        n_heads, channels / n_heads, queries_shared };
  double scale = 1.0 / std::sqrt ((double) ix.head_dim);
  std::vector<double> p, d_p (n_keys), d_score (n_keys);
  for (int b = 0; b < batch; b++)
    for (int h = 0; h < n_heads; h++)
      for (int i = 0; i < n_queries; i++) {
        attention_row (p, ix, q, k, key_mask, b, h, i);
        /* out_e = Σ_j p_j v_je */
        for (int j = 0; j < n_keys; j++) {
          d_p[j] = 0.0;
          for (int e = 0; e < ix.head_dim; e++) {
            double g = d_out[ix.out (b, i, h, e)];
            d_p[j] += g * v[ix.kv (b, j, h, e)];
            if (d_v)
              d_v[ix.kv (b, j, h, e)] += p[j] * g;
          }
        }
        /* p = softmax(s): ∂p_j/∂s_l = p_j(δ_jl − p_l); masked keys have p = 0 */
        for (int l = 0; l < n_keys; l++) {
          double sum = 0.0;
          for (int j = 0; j < n_keys; j++)
            sum += d_p[j] * p[j] * ((j == l ? 1.0 : 0.0) - p[l]);
          d_score[l] = sum;
        }
        /* s_l = scale·q·k_l */
        for (int l = 0; l < n_keys; l++)
          for (int e = 0; e < ix.head_dim; e++) {
            if (d_q)
              d_q[ix.q (b, i, h, e)] += d_score[l] * scale * k[ix.kv (b, l, h, e)];
            if (d_k)
              d_k[ix.kv (b, l, h, e)] += d_score[l] * scale * q[ix.q (b, i, h, e)];
          }
      }
}

/* Splits packed rows [rows, parts·C] into `parts` arrays [rows, C], and back. */
static std::vector<std::vector<double>>
unpack (const double *packed, size_t rows, int channels, int parts)
{
  std::vector<std::vector<double>> out (parts, std::vector<double> (rows * channels));
  for (size_t r = 0; r < rows; r++)
    for (int part = 0; part < parts; part++)
      for (int c = 0; c < channels; c++)
        out[part][r * channels + c] = packed[(r * parts + part) * channels + c];
  return out;
}

static void
accumulate_packed (double *packed, const std::vector<std::vector<double>> &parts, size_t rows,
                   int channels)
{
  int n_parts = (int) parts.size ();
  for (size_t r = 0; r < rows; r++)
    for (int part = 0; part < n_parts; part++)
      for (int c = 0; c < channels; c++)
        packed[(r * n_parts + part) * channels + c] += parts[part][r * channels + c];
}

void
self_attention_forward (double *out, double *probs, const double *qkv, const uint8_t *key_mask,
                        int batch, int seq_len, int channels, int n_heads)
{
  auto parts = unpack (qkv, (size_t) batch * seq_len, channels, 3);
  attention_forward (out, probs, parts[0].data (), parts[1].data (), parts[2].data (), key_mask,
                     batch, seq_len, seq_len, channels, n_heads, false);
}

void
self_attention_backward (double *d_qkv, const double *d_out, const double *qkv,
                         const uint8_t *key_mask, int batch, int seq_len, int channels, int n_heads)
{
  size_t rows = (size_t) batch * seq_len;
  auto parts = unpack (qkv, rows, channels, 3);
  std::vector<std::vector<double>> grads (3, std::vector<double> (rows * channels, 0.0));
  attention_backward (grads[0].data (), grads[1].data (), grads[2].data (), d_out, parts[0].data (),
                      parts[1].data (), parts[2].data (), key_mask, batch, seq_len, seq_len,
                      channels, n_heads, false);
  accumulate_packed (d_qkv, grads, rows, channels);
}

void
cross_attention_forward (double *out, double *probs, const double *queries, const double *kv,
                         const uint8_t *key_mask, int batch, int n_queries, int seq_len,
                         int channels, int n_heads)
{
  auto parts = unpack (kv, (size_t) batch * seq_len, channels, 2);
  attention_forward (out, probs, queries, parts[0].data (), parts[1].data (), key_mask, batch,
                     n_queries, seq_len, channels, n_heads, true);
}

void
cross_attention_backward (double *d_queries, double *d_kv, const double *d_out,
                          const double *queries, const double *kv, const uint8_t *key_mask,
                          int batch, int n_queries, int seq_len, int channels, int n_heads)
{
  size_t rows = (size_t) batch * seq_len;
  auto parts = unpack (kv, rows, channels, 2);
  std::vector<std::vector<double>> grads (2, std::vector<double> (rows * channels, 0.0));
  attention_backward (d_queries, grads[0].data (), grads[1].data (), d_out, queries,
                      parts[0].data (), parts[1].data (), key_mask, batch, n_queries, seq_len,
                      channels, n_heads, true);
  if (d_kv)
    accumulate_packed (d_kv, grads, rows, channels);
}

/* ---- Transformer block ----------------------------------------------------------------------- */

namespace {
struct BlockParams
{
  const double *attn_in_weight, *attn_in_bias, *attn_out_weight, *attn_out_bias;
  const double *mlp_in_weight, *mlp_in_bias, *mlp_out_weight, *mlp_out_bias;
  const double *ln1_weight, *ln1_bias, *ln2_weight, *ln2_bias;
};

/* Offsets in the flat array, in aclip_transformer_params_bind's order. */
std::vector<size_t>
param_offsets (const TransformerShape &s)
{
  size_t c = s.channels, m = s.hidden;
  size_t sizes[] = { 3 * c * c, 3 * c, c * c, c, m * c, m, c * m, c, c, c, c, c };
  std::vector<size_t> offsets;
  size_t at = 0;
  for (size_t size : sizes) {
    offsets.push_back (at);
    at += size;
  }
  offsets.push_back (at);
  return offsets;
}

template <typename T> struct Views
{
  T *p[12];
};

template <typename T>
Views<T>
views (T *flat, const TransformerShape &s)
{
  auto offsets = param_offsets (s);
  Views<T> v;
  for (int i = 0; i < 12; i++)
    v.p[i] = flat + offsets[i];
  return v;
}

struct BlockActivations
{
  std::vector<double> ln1, qkv, attn, mid, ln2, hidden, act, out;
};

void
block_forward (BlockActivations &a, const double *params, const double *in, const uint8_t *key_mask,
               int batch, int seq_len, const TransformerShape &s)
{
  Views<const double> param_views = views (params, s);
  const double *const *p = param_views.p;
  int n = batch * seq_len, c = s.channels, m = s.hidden;
  a.ln1.resize ((size_t) n * c);
  a.qkv.resize ((size_t) n * 3 * c);
  a.attn.resize ((size_t) n * c);
  a.mid.resize ((size_t) n * c);
  a.ln2.resize ((size_t) n * c);
  a.hidden.resize ((size_t) n * m);
  a.act.resize ((size_t) n * m);
  a.out.resize ((size_t) n * c);
  std::vector<double> projected ((size_t) n * c), mlp ((size_t) n * c);
  layernorm_forward (a.ln1.data (), nullptr, nullptr, in, p[8], p[9], n, c, s.layernorm_eps);
  linear_forward (a.qkv.data (), a.ln1.data (), p[0], p[1], n, c, 3 * c);
  self_attention_forward (a.attn.data (), nullptr, a.qkv.data (), key_mask, batch, seq_len, c,
                          s.n_heads);
  linear_forward (projected.data (), a.attn.data (), p[2], p[3], n, c, c);
  add_forward (a.mid.data (), in, projected.data (), (size_t) n * c);
  layernorm_forward (a.ln2.data (), nullptr, nullptr, a.mid.data (), p[10], p[11], n, c,
                     s.layernorm_eps);
  linear_forward (a.hidden.data (), a.ln2.data (), p[4], p[5], n, c, m);
  gelu_forward (a.act.data (), a.hidden.data (), (size_t) n * m, s.gelu_tanh);
  linear_forward (mlp.data (), a.act.data (), p[6], p[7], n, m, c);
  add_forward (a.out.data (), a.mid.data (), mlp.data (), (size_t) n * c);
}
} // namespace

size_t
transformer_params_size (const TransformerShape &shape)
{
  return param_offsets (shape).back ();
}

void
transformer_block_forward (double *out, const double *params, const double *in,
                           const uint8_t *key_mask, int batch, int seq_len,
                           const TransformerShape &shape)
{
  BlockActivations a;
  block_forward (a, params, in, key_mask, batch, seq_len, shape);
  std::copy (a.out.begin (), a.out.end (), out);
}

void
transformer_block_backward (double *d_in, double *d_params, const double *d_out,
                            const double *params, const double *in, const uint8_t *key_mask,
                            int batch, int seq_len, const TransformerShape &s)
{
  BlockActivations a;
  block_forward (a, params, in, key_mask, batch, seq_len, s);
  Views<const double> param_views = views (params, s);
  const double *const *p = param_views.p;
  Views<double> grad_views = views (d_params, s);
  double *const *g = grad_views.p;
  size_t n = (size_t) batch * seq_len, c = s.channels, m = s.hidden;
  int rows = (int) n;

  std::vector<double> d_mid (d_out, d_out + n * c);
  std::vector<double> d_act (n * m, 0.0), d_hidden (n * m, 0.0), d_ln2 (n * c, 0.0);
  linear_backward (d_act.data (), g[6], g[7], d_out, a.act.data (), p[6], rows, (int) m, (int) c);
  gelu_backward (d_hidden.data (), d_act.data (), a.hidden.data (), n * m, s.gelu_tanh);
  linear_backward (d_ln2.data (), g[4], g[5], d_hidden.data (), a.ln2.data (), p[4], rows, (int) c,
                   (int) m);
  layernorm_backward (d_mid.data (), g[10], g[11], d_ln2.data (), a.mid.data (), p[10], rows,
                      (int) c, s.layernorm_eps);

  std::vector<double> d_attn (n * c, 0.0), d_qkv (n * 3 * c, 0.0), d_ln1 (n * c, 0.0);
  linear_backward (d_attn.data (), g[2], g[3], d_mid.data (), a.attn.data (), p[2], rows, (int) c,
                   (int) c);
  self_attention_backward (d_qkv.data (), d_attn.data (), a.qkv.data (), key_mask, batch, seq_len,
                           (int) c, s.n_heads);
  linear_backward (d_ln1.data (), g[0], g[1], d_qkv.data (), a.ln1.data (), p[0], rows, (int) c,
                   (int) (3 * c));
  if (d_in) {
    layernorm_backward (d_in, g[8], g[9], d_ln1.data (), in, p[8], rows, (int) c, s.layernorm_eps);
    add_backward (d_in, nullptr, d_mid.data (), n * c);
  } else {
    layernorm_backward (nullptr, g[8], g[9], d_ln1.data (), in, p[8], rows, (int) c,
                        s.layernorm_eps);
  }
}

/* ---- Helpers --------------------------------------------------------------------------------- */

std::vector<double>
random_uniform (size_t n, std::mt19937_64 &rng, double low, double high)
{
  std::uniform_real_distribution<double> distribution (low, high);
  std::vector<double> values (n);
  for (double &value : values)
    value = distribution (rng);
  return values;
}

std::vector<double>
float_representable (std::vector<double> values)
{
  for (double &value : values)
    value = (double) (float) value;
  return values;
}

std::vector<float>
to_float (const std::vector<double> &values)
{
  return std::vector<float> (values.begin (), values.end ());
}

std::vector<double>
to_double (const std::vector<float> &values)
{
  return std::vector<double> (values.begin (), values.end ());
}

double
finite_difference_ratio (const std::function<std::vector<double> (const std::vector<double> &)> &f,
                         const std::vector<double> &x, const std::vector<double> &weights,
                         const std::vector<double> &analytic, double h, double atol, double rtol)
{
  auto loss = [&] (const std::vector<double> &point) {
    std::vector<double> out = f (point);
    double sum = 0.0;
    for (size_t i = 0; i < out.size (); i++)
      sum += weights[i] * out[i];
    return sum;
  };
  double worst = 0.0;
  std::vector<double> point = x;
  for (size_t i = 0; i < x.size (); i++) {
    point[i] = x[i] + h;
    double up = loss (point);
    point[i] = x[i] - h;
    double down = loss (point);
    point[i] = x[i];
    double numeric = (up - down) / (2.0 * h);
    double ratio = std::fabs (numeric - analytic[i]) / (atol + rtol * std::fabs (numeric));
    if (!(ratio <= worst))
      worst = std::isnan (ratio) ? INFINITY : ratio;
  }
  return worst;
}

} // namespace dense_reference

/* aclip-parallel.c — a small fork-join pool: persistent worker threads woken for each loop,
 * the calling thread taking the first chunk. */
#include "aclip-parallel.h"

#include <cblas.h>
#include <unistd.h>

struct _AclipThreadPool
{
  int n_threads;
  GThread **threads; /* [n_threads - 1] */
  GMutex lock;
  GCond work_ready;
  GCond work_done;
  /* The current loop, valid while pending > 0. */
  guint64 generation;
  AclipParallelFunc func;
  gpointer data;
  gint64 n;
  int n_chunks;
  int pending; /* chunks not yet finished by workers 1.. */
  gboolean stopping;
};

typedef struct
{
  AclipThreadPool *pool;
  int worker;
} WorkerStart;

int
aclip_online_cores (void)
{
  long cores = sysconf (_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int) cores : 1;
}

void
aclip_set_blas_threads (int n_threads)
{
  openblas_set_num_threads (n_threads > 0 ? n_threads : aclip_online_cores ());
}

static void
chunk_bounds (gint64 n, int n_chunks, int chunk, gint64 *begin, gint64 *end)
{
  *begin = n * chunk / n_chunks;
  *end = n * (chunk + 1) / n_chunks;
}

static gpointer
worker_main (gpointer data)
{
  WorkerStart *start = data;
  AclipThreadPool *pool = start->pool;
  int worker = start->worker;
  g_free (start);

  guint64 seen = 0;
  g_mutex_lock (&pool->lock);
  for (;;) {
    while (!pool->stopping && pool->generation == seen)
      g_cond_wait (&pool->work_ready, &pool->lock);
    if (pool->stopping)
      break;
    seen = pool->generation;
    if (worker >= pool->n_chunks)
      continue;
    AclipParallelFunc func = pool->func;
    gpointer func_data = pool->data;
    gint64 begin, end;
    chunk_bounds (pool->n, pool->n_chunks, worker, &begin, &end);
    g_mutex_unlock (&pool->lock);

    func (begin, end, worker, func_data);

    g_mutex_lock (&pool->lock);
    if (--pool->pending == 0)
      g_cond_signal (&pool->work_done);
  }
  g_mutex_unlock (&pool->lock);
  return NULL;
}

AclipThreadPool *
aclip_thread_pool_new (int n_threads)
{
  AclipThreadPool *pool = g_new0 (AclipThreadPool, 1);
  pool->n_threads = n_threads > 0 ? n_threads : aclip_online_cores ();
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_ready);
  g_cond_init (&pool->work_done);
  pool->threads = g_new0 (GThread *, MAX (pool->n_threads - 1, 1));
  for (int i = 1; i < pool->n_threads; i++) {
    WorkerStart *start = g_new (WorkerStart, 1);
    start->pool = pool;
    start->worker = i;
    pool->threads[i - 1] = g_thread_new ("aclip-worker", worker_main, start);
  }
  return pool;
}

void
aclip_thread_pool_free (AclipThreadPool *pool)
{
  if (pool == NULL)
    return;
  g_mutex_lock (&pool->lock);
  pool->stopping = TRUE;
  g_cond_broadcast (&pool->work_ready);
  g_mutex_unlock (&pool->lock);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join (pool->threads[i - 1]);
  g_free (pool->threads);
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->work_ready);
  g_cond_clear (&pool->work_done);
  g_free (pool);
}

int
aclip_thread_pool_n_threads (const AclipThreadPool *pool)
{
  return pool ? pool->n_threads : 1;
}

void
aclip_parallel_for (AclipThreadPool *pool, gint64 n, gint64 grain, AclipParallelFunc func,
                    gpointer data)
{
  if (n <= 0)
    return;
  grain = MAX (grain, 1);
  gint64 useful = (n + grain - 1) / grain;
  int n_chunks = pool ? (int) MIN ((gint64) pool->n_threads, useful) : 1;
  if (n_chunks <= 1) {
    func (0, n, 0, data);
    return;
  }

  g_mutex_lock (&pool->lock);
  pool->func = func;
  pool->data = data;
  pool->n = n;
  pool->n_chunks = n_chunks;
  pool->pending = n_chunks - 1;
  pool->generation++;
  g_cond_broadcast (&pool->work_ready);
  g_mutex_unlock (&pool->lock);

  gint64 begin, end;
  chunk_bounds (n, n_chunks, 0, &begin, &end);
  func (begin, end, 0, data);

  g_mutex_lock (&pool->lock);
  while (pool->pending > 0)
    g_cond_wait (&pool->work_done, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

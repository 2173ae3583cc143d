/* The fork-join pool: every item visited exactly once, chunks deterministic, serial fallback. */
#include "test-support.h"

extern "C" {
#include "aclip-parallel.h"
}

#include <atomic>
#include <vector>

namespace {

struct Visit
{
  std::vector<std::atomic<int>> *counts;
  std::vector<int> *owner;
};

void
visit (gint64 begin, gint64 end, int worker, gpointer data)
{
  Visit *v = (Visit *) data;
  for (gint64 i = begin; i < end; i++) {
    (*v->counts)[i]++;
    (*v->owner)[i] = worker;
  }
}

} // namespace

TEST (Parallel, EveryItemOnceWithContiguousChunks)
{
  for (int threads : { 1, 2, 3, 4 }) {
    g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
    EXPECT_EQ (aclip_thread_pool_n_threads (pool), threads);
    for (gint64 n : { 1, 2, 7, 1000 }) {
      for (int repeat = 0; repeat < 50; repeat++) {
        std::vector<std::atomic<int>> counts (n);
        std::vector<int> owner (n, -1);
        Visit v = { &counts, &owner };
        aclip_parallel_for (pool, n, 1, visit, &v);
        for (gint64 i = 0; i < n; i++)
          ASSERT_EQ (counts[i], 1) << "item " << i << " of " << n << ", " << threads << " threads";
        /* Worker ids rise along the range: contiguous, ordered chunks. */
        for (gint64 i = 1; i < n; i++)
          ASSERT_LE (owner[i - 1], owner[i]);
        EXPECT_EQ (owner[n - 1], (int) std::min<gint64> (threads, n) - 1);
      }
    }
  }
}

TEST (Parallel, GrainLimitsTheNumberOfChunks)
{
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (4);
  std::vector<std::atomic<int>> counts (10);
  std::vector<int> owner (10, -1);
  Visit v = { &counts, &owner };
  aclip_parallel_for (pool, 10, 6, visit, &v); /* ceil(10/6) = 2 chunks */
  EXPECT_EQ (owner[0], 0);
  EXPECT_EQ (owner[9], 1);
}

TEST (Parallel, NullPoolRunsSerially)
{
  std::vector<std::atomic<int>> counts (5);
  std::vector<int> owner (5, -1);
  Visit v = { &counts, &owner };
  aclip_parallel_for (nullptr, 5, 1, visit, &v);
  for (int i = 0; i < 5; i++) {
    EXPECT_EQ (counts[i], 1);
    EXPECT_EQ (owner[i], 0);
  }
  EXPECT_EQ (aclip_thread_pool_n_threads (nullptr), 1);
}

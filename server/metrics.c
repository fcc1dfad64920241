/*
 * metrics.c - counters for /metrics in Prometheus' text format: requests by
 * endpoint and status, a latency histogram per endpoint, group-commit batch
 * sizes.  Plain atomics, so observing costs no lock on the hot path.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "api.h"

static const double bounds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
	30, 60,
};
#define NB (sizeof(bounds) / sizeof(bounds[0]))

struct st_metrics {
	atomic_ullong req[ST_EP_COUNT][600];
	atomic_ullong hist[ST_EP_COUNT][NB + 1];
	atomic_ullong usec[ST_EP_COUNT];
	atomic_ullong commits, committed;
};

struct st_metrics *st_metrics_new(void)
{
	return st_calloc(1, sizeof(struct st_metrics));
}

void st_metrics_free(struct st_metrics *m)
{
	free(m);
}

void st_metrics_observe(struct st_metrics *m, int ep, int status,
                        int64_t usec)
{
	size_t b;

	if (!m || ep < 0 || ep >= ST_EP_COUNT)
		return;
	if (status >= 100 && status < 600)
		atomic_fetch_add_explicit(&m->req[ep][status], 1,
		                          memory_order_relaxed);
	for (b = 0; b < NB && (double)usec / 1e6 > bounds[b]; b++)
		;
	atomic_fetch_add_explicit(&m->hist[ep][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->usec[ep], (unsigned long long)usec,
	                          memory_order_relaxed);
}

void st_metrics_commit(struct st_metrics *m, size_t n)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&m->commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->committed, n, memory_order_relaxed);
}

static void histogram(struct st_metrics *m, int ep, struct st_buf *out)
{
	const char *name = st_api_ep_name(ep);
	unsigned long long cum = 0;

	for (size_t b = 0; b <= NB; b++) {
		cum += atomic_load(&m->hist[ep][b]);
		if (b < NB)
			st_buf_appendf(out, "st_relay_request_seconds_bucket"
			               "{route=\"%s\",le=\"%g\"} %llu\n", name,
			               bounds[b], cum);
		else
			st_buf_appendf(out, "st_relay_request_seconds_bucket"
			               "{route=\"%s\",le=\"+Inf\"} %llu\n", name,
			               cum);
	}
	st_buf_appendf(out, "st_relay_request_seconds_sum{route=\"%s\"} %.6f\n"
	               "st_relay_request_seconds_count{route=\"%s\"} %llu\n",
	               name, (double)atomic_load(&m->usec[ep]) / 1e6, name, cum);
}

void st_metrics_render(struct st_metrics *m, struct st_buf *out)
{
	unsigned long long v;

	st_buf_appendf(out, "# HELP st_relay_requests_total Requests answered, "
	               "by route and status.\n"
	               "# TYPE st_relay_requests_total counter\n");
	for (int ep = 0; ep < ST_EP_COUNT; ep++)
		for (int s = 100; s < 600; s++)
			if ((v = atomic_load(&m->req[ep][s])))
				st_buf_appendf(out, "st_relay_requests_total"
				               "{route=\"%s\",status=\"%d\"} %llu\n",
				               st_api_ep_name(ep), s, v);
	st_buf_appendf(out, "# HELP st_relay_request_seconds Request latency.\n"
	               "# TYPE st_relay_request_seconds histogram\n");
	for (int ep = 0; ep < ST_EP_COUNT; ep++) {
		v = 0;
		for (size_t b = 0; b <= NB; b++)
			v += atomic_load(&m->hist[ep][b]);
		if (v)
			histogram(m, ep, out);
	}
	st_buf_appendf(out, "# HELP st_relay_commits_total Group commits.\n"
	               "# TYPE st_relay_commits_total counter\n"
	               "st_relay_commits_total %llu\n"
	               "# HELP st_relay_committed_jobs_total Writes in them.\n"
	               "# TYPE st_relay_committed_jobs_total counter\n"
	               "st_relay_committed_jobs_total %llu\n",
	               (unsigned long long)atomic_load(&m->commits),
	               (unsigned long long)atomic_load(&m->committed));
}

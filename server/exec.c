/*
 * exec.c - where jobs run: a few worker threads for cpu stages (Argon2,
 * signatures, blob fsyncs) so they never hold up an HTTP thread, and one
 * writer thread that owns the database's write side.
 *
 * Group commit: the writer takes every write stage waiting at that moment,
 * runs them in one transaction (each under its own savepoint, so one
 * request's failure undoes only its own changes), commits once (one fsync
 * of the WAL), then answers them all.  While it commits, the next batch
 * gathers, so batches grow with the load and the fsync cost is shared.
 * A completer thread then wakes the long polls and resumes the connections
 * of a committed batch while the writer starts on the next one.
 */
#include <pthread.h>
#include <stdlib.h>

#include "api.h"

#define MAX_BATCH 1024
/* keys announced to other relays per statement */
#define MAX_WAKE 4096

struct queue {
	struct st_job *head, *tail;
	size_t n;
};

struct st_exec {
	struct st_api *api;
	pthread_mutex_t mu;
	pthread_cond_t cpu_cv, write_cv, done_cv;
	struct queue cpu, write, done;
	int stopping, writer_gone;
	int nworkers;
	pthread_t *workers;
	pthread_t writer, completer;
	uint64_t keys[MAX_WAKE];        /* the writer's, for announce() */
};

static void push(struct queue *q, struct st_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static struct st_job *pop(struct queue *q)
{
	struct st_job *j = q->head;

	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		j->next = NULL;
	}
	return j;
}

/* The job has run: hand it back, or retire it when nobody waits. */
static void complete(struct st_exec *x, struct st_job *j)
{
	if (j->done) {
		j->done(j->done_ctx, j);
		return;
	}
	if (!j->status && j->finish)
		j->finish(x->api, j, NULL);
	j->free(j);
}

static void wake_all(struct st_api *a, struct st_job *j)
{
	for (size_t i = 0; i < j->nwake; i++)
		st_api_wake(a, j->wake[i]);
}

void st_exec_submit(struct st_exec *x, struct st_job *j)
{
	pthread_mutex_lock(&x->mu);
	if (j->cpu) {
		push(&x->cpu, j);
		pthread_cond_signal(&x->cpu_cv);
	} else if (j->write) {
		push(&x->write, j);
		pthread_cond_signal(&x->write_cv);
	} else {
		pthread_mutex_unlock(&x->mu);
		complete(x, j);
		return;
	}
	pthread_mutex_unlock(&x->mu);
}

static void *worker(void *arg)
{
	struct st_exec *x = arg;
	struct st_job *j;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (!x->cpu.head && !x->stopping)
			pthread_cond_wait(&x->cpu_cv, &x->mu);
		if (!(j = pop(&x->cpu)))
			break;
		pthread_mutex_unlock(&x->mu);
		if (j->cpu(x->api, j) < 0 || !j->write) {
			complete(x, j);
			pthread_mutex_lock(&x->mu);
			continue;
		}
		pthread_mutex_lock(&x->mu);
		push(&x->write, j);
		pthread_cond_signal(&x->write_cv);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* Every job of the batch fails alike (the transaction is lost). */
static void fail_batch(struct st_job **b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i]->status && b[i]->status < 500)
			continue;
		b[i]->status = 0;
		st_job_fault(b[i]);
	}
}

/*
 * Announce the keys the batch's jobs wake to relays sharing the database
 * (delivered at commit; nothing to do for SQLite).
 */
static int announce(struct st_exec *x, struct st_job **b, size_t n)
{
	size_t k = 0;

	if (!st_store_shared(x->api->store))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (b[i]->status)
			continue;
		for (size_t w = 0; w < b[i]->nwake; w++) {
			if (k == MAX_WAKE) {
				if (st_store_notify(x->api->store, x->keys, k) < 0)
					return -1;
				k = 0;
			}
			x->keys[k++] = b[i]->wake[w];
		}
	}
	return st_store_notify(x->api->store, x->keys, k);
}

static void run_batch(struct st_exec *x, struct st_job **b, size_t n)
{
	struct st_store *s = x->api->store;
	size_t i;

	if (st_store_begin(s) < 0) {
		fail_batch(b, n);
		goto out;
	}
	for (i = 0; i < n; i++) {
		int again = 1;
retry:
		if (st_store_save(s) < 0)
			break;
		if (b[i]->write(x->api, b[i]) < 0) {
			if (st_store_undo(s) < 0)
				break;
			/*
			 * Another relay's transaction and this job waited on
			 * each other (PostgreSQL): its wait is over now, so
			 * one more try succeeds instead of a 503.
			 */
			if (st_store_conflict(s) && again--) {
				b[i]->status = 0;
				b[i]->retry_after = 0;
				goto retry;
			}
		} else if (st_store_release(s) < 0) {
			break;
		}
	}
	if (i < n || announce(x, b, n) < 0 || st_store_commit(s) < 0) {
		st_store_rollback(s);
		fail_batch(b, n);
		goto out;
	}
	st_metrics_commit(x->api->metrics, n);
out:
	/*
	 * Waking long polls and resuming connections (a system call each)
	 * is the completer's: the writer goes on with the next batch.
	 */
	pthread_mutex_lock(&x->mu);
	for (i = 0; i < n; i++)
		push(&x->done, b[i]);
	pthread_cond_signal(&x->done_cv);
	pthread_mutex_unlock(&x->mu);
}

/* Answer the jobs the writer committed (or failed), in commit order. */
static void *completer(void *arg)
{
	struct st_exec *x = arg;
	struct st_job *j;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (!x->done.head && !x->writer_gone)
			pthread_cond_wait(&x->done_cv, &x->mu);
		if (!(j = pop(&x->done)))
			break;
		pthread_mutex_unlock(&x->mu);
		if (!j->status)
			wake_all(x->api, j);
		complete(x, j);
		pthread_mutex_lock(&x->mu);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static void *writer(void *arg)
{
	struct st_exec *x = arg;
	struct st_job **batch = st_malloc(MAX_BATCH * sizeof(*batch));
	size_t n;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		/* stop only once the workers can hand nothing more over */
		while (!x->write.head && !(x->stopping && !x->nworkers))
			pthread_cond_wait(&x->write_cv, &x->mu);
		if (!x->write.head)
			break;
		for (n = 0; n < MAX_BATCH && x->write.head; n++)
			batch[n] = pop(&x->write);
		pthread_mutex_unlock(&x->mu);
		run_batch(x, batch, n);
		pthread_mutex_lock(&x->mu);
	}
	pthread_mutex_unlock(&x->mu);
	free(batch);
	return NULL;
}

struct st_exec *st_exec_start(struct st_api *api, int workers)
{
	struct st_exec *x = st_calloc(1, sizeof(*x));

	x->api = api;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cpu_cv, NULL);
	pthread_cond_init(&x->write_cv, NULL);
	pthread_cond_init(&x->done_cv, NULL);
	x->workers = st_calloc((size_t)workers, sizeof(pthread_t));
	for (int i = 0; i < workers; i++) {
		if (pthread_create(&x->workers[i], NULL, worker, x) != 0)
			st_die(ST_EX_UNAVAILABLE, "cannot start a worker thread");
		x->nworkers++;
	}
	if (pthread_create(&x->writer, NULL, writer, x) != 0 ||
	    pthread_create(&x->completer, NULL, completer, x) != 0)
		st_die(ST_EX_UNAVAILABLE, "cannot start the writer threads");
	return x;
}

void st_exec_stop(struct st_exec *x)
{
	int n;

	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stopping = 1;
	n = x->nworkers;
	pthread_cond_broadcast(&x->cpu_cv);
	pthread_mutex_unlock(&x->mu);
	for (int i = 0; i < n; i++)
		pthread_join(x->workers[i], NULL);
	pthread_mutex_lock(&x->mu);
	x->nworkers = 0;
	pthread_cond_signal(&x->write_cv);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->writer, NULL);
	pthread_mutex_lock(&x->mu);
	x->writer_gone = 1;
	pthread_cond_signal(&x->done_cv);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->completer, NULL);
	pthread_cond_destroy(&x->cpu_cv);
	pthread_cond_destroy(&x->write_cv);
	pthread_cond_destroy(&x->done_cv);
	pthread_mutex_destroy(&x->mu);
	free(x->workers);
	free(x);
}

void st_exec_run(struct st_api *a, struct st_job *j)
{
	struct st_store *s = a->store;

	if (j->cpu && j->cpu(a, j) < 0)
		return;
	if (!j->write)
		return;
	if (st_store_begin(s) < 0) {
		st_job_fault(j);
		return;
	}
	if (j->write(a, j) < 0) {
		st_store_rollback(s);
		return;
	}
	if ((st_store_shared(s) &&
	     st_store_notify(s, j->wake, j->nwake) < 0) ||
	    st_store_commit(s) < 0) {
		st_job_fault(j);
		st_store_rollback(s);
		return;
	}
	wake_all(a, j);
}

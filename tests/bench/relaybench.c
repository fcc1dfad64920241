/*
 * relaybench - the load generator of tests/bench/relay.sh: keep-alive
 * HTTP/1.1 connections on one epoll loop, so `make bench` needs nothing
 * beyond the build.  Latency is from a request's first byte sent to its
 * answer's last byte read.
 *
 *   relaybench hello URL [-c CONNS] [-d SECONDS]
 *       GET / as fast as CONNS connections go (the ceiling server)
 *   relaybench relay URL -P PID [-c CONNS] [-d SECONDS] [-p POLLS]
 *       against st-relay (started with --no-rate-limits and cheap Argon2):
 *       register and log in users; durable POST /v1/messages of a 1 KiB
 *       envelope for SECONDS; fetch+ack every mailbox; POLLS idle long
 *       polls, the relay's RSS with them, then one message each and the
 *       time until each poll wakes
 *   relaybench posts URL [-u URL2] [-P PID] [-c CONNS] [-d SECONDS]
 *       only the durable POST phase; with -u the connections alternate
 *       between two relays that share one database
 *
 * Results are lines "name value unit" on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "st.h"

#define ENVELOPE_CT 1000        /* with the rest, a 1 KiB envelope */

struct conn {
	int fd;
	struct st_buf out, in;
	size_t off;
	int64_t t0;
	int busy;
	int user;               /* whose token this connection uses */
	int step;               /* fetch+ack: 0 fetch, 1 ack */
};

struct lat {
	int64_t *v;
	size_t n, cap;
};

struct user {
	char name[16];
	char token[44];
	char to_ik[ST_TO_IK_LEN + 1];
};

static struct sockaddr_in addrs[2];
static int naddr = 1, ndial;
static int epfd;
static struct user *users;
static int nsend, nrcpt, npoll;         /* users: senders, recipients, pollers */
static char envelope[ENVELOPE_CT + 64];
static int inflight;
static int64_t deadline;
static struct lat lat;
static long long done_ok, done_bad;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void lat_add(struct lat *l, int64_t v)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = st_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = v;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(struct lat *l, double p)
{
	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), cmp64);
	return (double)l->v[(size_t)(p * (double)(l->n - 1))] / 1000.0;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	const struct sockaddr_in *addr = &addrs[ndial++ % naddr];

	if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
		st_die(69, "cannot connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/*
 * A whole answer at the start of in: its length, with status and body;
 * 0 while incomplete.  The relay always sends Content-Length.
 */
static size_t parse(struct st_buf *in, int *status, const char **body,
                    size_t *blen)
{
	const char *s = (const char *)in->data, *end, *cl;
	size_t hl, n = 0;

	if (in->len < 12)
		return 0;
	st_buf_cstr(in);
	s = (const char *)in->data;
	if (!(end = strstr(s, "\r\n\r\n")))
		return 0;
	hl = (size_t)(end - s) + 4;
	*status = atoi(s + 9);
	for (cl = strstr(s, "\r\n"); cl && cl < end; cl = strstr(cl + 2, "\r\n"))
		if (strncasecmp(cl + 2, "Content-Length:", 15) == 0) {
			n = strtoul(cl + 17, NULL, 10);
			break;
		}
	if (in->len < hl + n)
		return 0;
	*body = s + hl;
	*blen = n;
	return hl + n;
}

/* Blocking request on fd for the set-up; the body is left in *in. */
static int call(int fd, const char *method, const char *path,
                const char *token, const char *body, struct st_buf *in,
                const char **rbody, size_t *rlen)
{
	char head[512];
	int status, n;
	size_t len = body ? strlen(body) : 0;
	ssize_t r;

	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: bench\r\n"
	             "%s%s%sContent-Type: application/json\r\n"
	             "Content-Length: %zu\r\n\r\n", method, path,
	             token ? "Authorization: Bearer " : "", token ? token : "",
	             token ? "\r\n" : "", len);
	if (st_write_all(fd, head, (size_t)n) < 0 ||
	    (len && st_write_all(fd, body, len) < 0))
		st_die(69, "write: %s", strerror(errno));
	in->len = 0;
	for (;;) {
		st_buf_reserve(in, 65536);
		r = read(fd, in->data + in->len, in->cap - in->len - 1);
		if (r <= 0)
			st_die(69, "relay closed the connection");
		in->len += (size_t)r;
		if (parse(in, &status, rbody, rlen))
			return status;
	}
}

static void setup_users(int fd)
{
	struct st_buf in;
	const char *rb;
	size_t rl;
	char body[2048], path[64];
	int total = nsend + nrcpt + npoll;

	st_buf_init(&in, 0);
	users = st_calloc((size_t)total, sizeof(*users));
	for (int i = 0; i < total; i++) {
		struct st_identity id;
		struct st_spk spk;
		struct st_json *o = st_json_object();
		char *dump, *tok;
		int st;

		snprintf(users[i].name, sizeof(users[i].name), "%c%d",
		         i < nsend ? 's' : i < nsend + nrcpt ? 'r' : 'p', i);
		if (st_identity_generate(&id) < 0 ||
		    st_spk_generate(&id, 1, NULL, st_now_ms(), &spk) < 0)
			st_die(1, "%s", st_errmsg());
		st_identity_to_ik(&id.pub, users[i].to_ik);
		st_json_set_str(o, "user", users[i].name);
		st_json_set_str(o, "password", "bench-password");
		st_json_set(o, "identity", st_identity_to_json(&id.pub));
		st_json_set(o, "spk", st_spk_to_json(&spk));
		dump = st_json_dump(o);
		st = call(fd, "POST", "/v1/accounts", NULL, dump, &in, &rb, &rl);
		if (st != 201)
			st_die(1, "register %s: %d %.*s", users[i].name, st,
			       (int)rl, rb);
		free(dump);
		st_json_free(o);
		snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":"
		         "\"bench-password\"}", users[i].name);
		st = call(fd, "POST", "/v1/sessions", NULL, body, &in, &rb, &rl);
		o = st == 201 ? st_json_parse(rb, rl, rl, "login") : NULL;
		if (!o || st_json_get_str(o, "token", (const char **)&tok, NULL) < 0)
			st_die(1, "login %s: %d", users[i].name, st);
		snprintf(users[i].token, sizeof(users[i].token), "%s", tok);
		st_json_free(o);
	}
	snprintf(path, sizeof(path), "/v1/users?limit=1");
	call(fd, "GET", path, users[0].token, NULL, &in, &rb, &rl);
	st_buf_free(&in);
}

/* ---- the event loop ---- */

static void watch(struct conn *c, int out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
	                          .data.ptr = c };

	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush(struct conn *c)
{
	ssize_t w;

	while (c->off < c->out.len) {
		w = write(c->fd, c->out.data + c->off, c->out.len - c->off);
		if (w < 0 && errno == EAGAIN) {
			watch(c, 1);
			return;
		}
		if (w < 0)
			st_die(69, "write: %s", strerror(errno));
		c->off += (size_t)w;
	}
	watch(c, 0);
}

static void request(struct conn *c, const char *method, const char *path,
                    const char *token, const char *body, size_t len)
{
	c->out.len = 0;
	c->off = 0;
	st_buf_appendf(&c->out, "%s %s HTTP/1.1\r\nHost: bench\r\n", method,
	               path);
	if (token)
		st_buf_appendf(&c->out, "Authorization: Bearer %s\r\n", token);
	if (body)
		st_buf_appendf(&c->out, "Content-Type: application/json\r\n"
		               "Content-Length: %zu\r\n", len);
	st_buf_append(&c->out, "\r\n", 2);
	if (body)
		st_buf_append(&c->out, body, len);
	c->t0 = now_us();
	c->busy = 1;
	inflight++;
	flush(c);
}

static struct conn *open_conns(int n)
{
	struct conn *cs = st_calloc((size_t)n, sizeof(*cs));

	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };

		cs[i].fd = dial();
		fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
		st_buf_init(&cs[i].out, 0);
		st_buf_init(&cs[i].in, 0);
		epoll_ctl(epfd, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	return cs;
}

static void close_conns(struct conn *cs, int n)
{
	for (int i = 0; i < n; i++) {
		close(cs[i].fd);
		st_buf_free(&cs[i].out);
		st_buf_free(&cs[i].in);
	}
	free(cs);
}

/* What to do with an answer: send the next request or let the conn rest. */
typedef void answer_fn(struct conn *c, int status, const char *body,
                       size_t len);

/* Run until nothing is in flight. */
static void loop(answer_fn *on)
{
	struct epoll_event evs[256];
	int n;

	while (inflight > 0) {
		n = epoll_wait(epfd, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int status;
			const char *body;
			size_t blen, used;
			ssize_t r;

			if (evs[i].events & EPOLLOUT)
				flush(c);
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			st_buf_reserve(&c->in, 65536);
			r = read(c->fd, c->in.data + c->in.len,
			         c->in.cap - c->in.len - 1);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				st_die(69, "the server closed a connection");
			if (r < 0)
				continue;
			c->in.len += (size_t)r;
			while (c->busy &&
			       (used = parse(&c->in, &status, &body, &blen))) {
				c->busy = 0;
				inflight--;
				lat_add(&lat, now_us() - c->t0);
				on(c, status, body, blen);
				memmove(c->in.data, c->in.data + used,
				        c->in.len - used);
				c->in.len -= used;
			}
		}
	}
}

static void count(int ok, int status, const char *body, size_t len)
{
	if (ok) {
		done_ok++;
		return;
	}
	if (!done_bad++)
		fprintf(stderr, "relaybench: unexpected %d: %.*s\n", status,
		        (int)(len < 300 ? len : 300), body);
}

static void report(const char *name, int64_t t0, long long n,
                   const char *unit)
{
	double secs = (double)(now_us() - t0) / 1e6;

	printf("%s_rate %.0f %s/s\n", name, (double)n / secs, unit);
	printf("%s_p50 %.2f ms\n", name, pct(&lat, 0.50));
	printf("%s_p99 %.2f ms\n", name, pct(&lat, 0.99));
	printf("%s_errors %lld\n", name, done_bad);
	fflush(stdout);
	lat.n = 0;
	done_ok = done_bad = 0;
}

/* ---- hello ---- */

static void hello_answer(struct conn *c, int status, const char *body,
                         size_t len)
{
	count(status == 200, status, body, len);
	if (now_us() < deadline)
		request(c, "GET", "/", NULL, NULL, 0);
}

static void run_hello(int nconn, int secs)
{
	struct conn *cs = open_conns(nconn);
	int64_t t0 = now_us();

	deadline = t0 + (int64_t)secs * 1000000;
	for (int i = 0; i < nconn; i++)
		request(&cs[i], "GET", "/", NULL, NULL, 0);
	loop(hello_answer);
	report("hello", t0, done_ok, "req");
	close_conns(cs, nconn);
}

/* ---- relay: durable posts ---- */

static long long serial;

static void post_one(struct conn *c, int to)
{
	char body[ENVELOPE_CT + 512];
	int n;

	n = snprintf(body, sizeof(body), "{\"messages\":[{\"to\":\"%s\","
	             "\"to_ik\":\"%s\",\"client_id\":\"%032llx\","
	             "\"envelope\":%s}]}", users[to].name, users[to].to_ik,
	             ++serial, envelope);
	request(c, "POST", "/v1/messages", users[c->user].token, body,
	        (size_t)n);
}

static void post_answer(struct conn *c, int status, const char *body,
                        size_t len)
{
	count(status == 201, status, body, len);
	if (now_us() < deadline)
		post_one(c, nsend + (int)(serial % nrcpt));
}

/* CPU time (user + system) the process pid has used, in microseconds. */
static int64_t cpu_us(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the fields after the command name, which may hold spaces */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &ut, &st) != 2)
		return 0;
	return (int64_t)((ut + st) * 1000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static long relay_pid;

static long long run_post(int nconn, int secs)
{
	struct conn *cs = open_conns(nconn);
	int64_t t0 = now_us(), c0 = cpu_us(relay_pid);
	long long n;

	deadline = t0 + (int64_t)secs * 1000000;
	for (int i = 0; i < nconn; i++) {
		cs[i].user = i % nsend;
		post_one(&cs[i], nsend + (int)(serial % nrcpt));
	}
	loop(post_answer);
	n = done_ok;
	if (n && relay_pid)
		printf("post_relay_cpu %.1f us/msg\n",
		       (double)(cpu_us(relay_pid) - c0) / (double)n);
	report("post", t0, n, "msg");
	close_conns(cs, nconn);
	return n;
}

/* ---- relay: fetch and ack every mailbox ---- */

static long long acked;

static void fetch(struct conn *c)
{
	c->step = 0;
	request(c, "GET", "/v1/messages?limit=500", users[c->user].token,
	        NULL, 0);
}

static void fetch_answer(struct conn *c, int status, const char *body,
                         size_t len)
{
	struct st_json *j, *msgs;
	struct st_buf ack;
	const char *id;
	size_t n;

	if (c->step == 1) {
		count(status == 204, status, body, len);
		fetch(c);
		return;
	}
	j = status == 200 ? st_json_parse(body, len, len, "answer") : NULL;
	count(j != NULL, status, body, len);
	if (!j || st_json_get_arr(j, "messages", &msgs) < 0 ||
	    !(n = st_json_array_size(msgs))) {
		st_json_free(j);
		return;         /* this mailbox is empty: rest */
	}
	st_buf_init(&ack, 0);
	st_buf_appendf(&ack, "{\"ids\":[");
	for (size_t i = 0; i < n; i++) {
		st_json_get_str(st_json_array_get(msgs, i), "id", &id, NULL);
		st_buf_appendf(&ack, "%s\"%s\"", i ? "," : "", id);
	}
	st_buf_appendf(&ack, "]}");
	acked += (long long)n;
	c->step = 1;
	request(c, "POST", "/v1/messages/ack", users[c->user].token,
	        (char *)ack.data, ack.len);
	st_buf_free(&ack);
	st_json_free(j);
}

static void run_fetch(void)
{
	struct conn *cs = open_conns(nrcpt);
	int64_t t0 = now_us(), c0 = cpu_us(relay_pid);

	for (int i = 0; i < nrcpt; i++) {
		cs[i].user = nsend + i;
		fetch(&cs[i]);
	}
	loop(fetch_answer);
	if (acked)
		printf("fetch_ack_relay_cpu %.1f us/msg\n",
		       (double)(cpu_us(relay_pid) - c0) / (double)acked);
	report("fetch_ack", t0, acked, "msg");
	close_conns(cs, nrcpt);
}

/* ---- relay: idle long polls and their wake-up ---- */

static int64_t *sent_at;
static struct lat wake;

static long rss_kib(long pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

static int next_poller;

/* The next poller's message, from a sender connection. */
static void post_next(struct conn *c)
{
	int to = nsend + nrcpt + next_poller++;

	sent_at[to] = now_us();
	post_one(c, to);
}

static void poll_answer(struct conn *c, int status, const char *body,
                        size_t len)
{
	if (c->user < nsend) {                  /* a sender's post */
		count(status == 201, status, body, len);
		if (next_poller < npoll)
			post_next(c);
		return;
	}
	count(status == 200 && len > 20, status, body, len);
	lat_add(&wake, now_us() - sent_at[c->user]);
}

static void run_polls(long pid)
{
	struct conn *ps, *ss;
	int first = nsend + nrcpt, nss = 16;
	long before, after;

	before = rss_kib(pid, "VmRSS:");
	ps = open_conns(npoll);
	for (int i = 0; i < npoll; i++) {
		ps[i].user = first + i;
		request(&ps[i], "GET", "/v1/messages?wait=60",
		        users[first + i].token, NULL, 0);
	}
	/* let every poll reach the relay and be suspended there */
	sleep(2);
	after = rss_kib(pid, "VmRSS:");
	printf("polls %d\npolls_rss_delta %.1f MiB\nrelay_rss %.1f MiB\n",
	       npoll, (double)(after - before) / 1024.0, (double)after / 1024.0);
	sent_at = st_calloc((size_t)(first + npoll), sizeof(*sent_at));
	ss = open_conns(nss);
	for (int k = 0; k < nss && next_poller < npoll; k++) {
		ss[k].user = k % nsend;
		post_next(&ss[k]);
	}
	loop(poll_answer);
	printf("wake_p50 %.2f ms\nwake_p99 %.2f ms\nwake_max %.2f ms\n"
	       "wake_errors %lld\n", pct(&wake, 0.5), pct(&wake, 0.99),
	       pct(&wake, 1.0), done_bad);
	close_conns(ss, nss);
	close_conns(ps, npoll);
}

static void usage(void)
{
	fputs("usage: relaybench hello URL [-c CONNS] [-d SECONDS]\n"
	      "       relaybench relay URL -P PID [-c CONNS] [-d SECONDS] "
	      "[-p POLLS]\n"
	      "       relaybench posts URL [-u URL2] [-P PID] [-c CONNS] "
	      "[-d SECONDS]\n", stderr);
	exit(64);
}

static int parse_url(const char *url, struct sockaddr_in *a)
{
	char host[64];
	unsigned port;

	if (sscanf(url, "http://%63[0-9.]:%u", host, &port) != 2 || port > 65535)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	int nconn = 64, secs = 5, opt, fd;
	long pid = 0;
	const char *mode, *url, *url2 = NULL;

	st_setprogname(argv[0]);
	npoll = 1000;
	if (argc < 3)
		usage();
	mode = argv[1];
	url = argv[2];
	optind = 3;
	while ((opt = getopt(argc, argv, "c:d:p:P:u:")) != -1) {
		switch (opt) {
		case 'u': url2 = optarg; break;
		case 'c': nconn = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 'p': npoll = atoi(optarg); break;
		case 'P': pid = atol(optarg); break;
		default: usage();
		}
	}
	if (parse_url(url, &addrs[0]) < 0 || nconn < 1 ||
	    (url2 && parse_url(url2, &addrs[1]) < 0))
		usage();
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		st_die(71, "epoll: %s", strerror(errno));
	if (strcmp(mode, "hello") == 0) {
		run_hello(nconn, secs);
		return 0;
	}
	if (strcmp(mode, "posts") != 0 &&
	    (strcmp(mode, "relay") != 0 || !pid || url2))
		usage();
	relay_pid = pid;
	nsend = 8;
	nrcpt = nconn;
	snprintf(envelope, sizeof(envelope), "{\"v\":1,\"hdr\":\"%040d\","
	         "\"ct\":\"%0*d\"}", 0, ENVELOPE_CT - 40, 0);
	fd = dial();
	setup_users(fd);
	close(fd);
	if (url2)
		naddr = 2;
	run_post(nconn, secs);
	if (strcmp(mode, "posts") == 0)
		return 0;
	run_fetch();
	run_polls(pid);
	printf("relay_hwm %.1f MiB\n", (double)rss_kib(pid, "VmHWM:") / 1024.0);
	return 0;
}

/*
 * relay.c - the one HTTP client of the relay, on libcurl.  It trusts
 * nothing the relay says: replies are capped in size inside the write
 * callback (curl would otherwise stream a 5 GB reply happily), parsed
 * strictly, and redirects are refused rather than followed.  HTTP statuses
 * map to exit classes in one place, call_status() below.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "internal.h"

#define REPLY_MAX (48u * 1024 * 1024)
#define CONNECT_S 10L
#define TOTAL_S 60L
#define TOKEN_MAX 256
#define HEADERS_MAX (64 * 1024)  /* all header lines of one reply */
#define SHOWN_MAX 200            /* bytes of a relay's message we repeat */

struct st_relay {
	CURL *curl;
	char *base;
	char *auth;           /* "Authorization: Bearer ..." or NULL */
	char retry_after[32];
	char curl_err[CURL_ERROR_SIZE]; /* curl's detail of the last failure */
	size_t header_bytes;
	int header_over;
	long total_s;         /* a request's time limit (ST_TIMEOUT) */
};

/* 1 when s is a dotted quad 127.x.y.z (curl writes IPv4 hosts that way). */
static int ipv4_loopback(const char *s)
{
	int part = 0, digits = 0, v = 0, first = -1;

	for (;; s++) {
		if (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (*s - '0');
			digits++;
			continue;
		}
		if (!digits || v > 255)
			return 0;
		if (first < 0)
			first = v;
		part++;
		if (*s == '\0')
			return part == 4 && first == 127;
		if (*s != '.' || part == 4)
			return 0;
		digits = v = 0;
	}
}

/*
 * Check the URL with curl's own parser, so the host we judge is the host
 * curl connects to ("http://127.0.0.1@evil.example/" is evil.example).
 * *loop is set when that host is this machine: http:// is only for it,
 * since anything else could be read or changed on the way.
 */
static int check_url(const char *url, int *loop)
{
	CURLU *u = curl_url();
	char *host = NULL, *scheme = NULL, *q = NULL, *f = NULL, *user = NULL;
	int rc = -1;

	*loop = 0;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		st_error(ST_EX_CONFIG, "bad relay URL '%.200s'", url);
		goto out;
	}
	if (strcmp(scheme, "https") && strcmp(scheme, "http")) {
		st_error(ST_EX_CONFIG, "bad relay URL '%.200s': expected "
		         "https://", url);
		goto out;
	}
	/* paths are appended to the URL: nothing may follow them */
	if (curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &f, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		st_error(ST_EX_CONFIG, "bad relay URL '%.200s': no user, query "
		         "or fragment", url);
		goto out;
	}
	*loop = !strcmp(host, "localhost") || !strcmp(host, "[::1]") ||
	        ipv4_loopback(host);
	rc = 0;
out:
	curl_free(host);
	curl_free(scheme);
	curl_free(q);
	curl_free(f);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

/*
 * ST_CACERT names a PEM file of CA certificates that replaces the system's
 * trust store for the relay's TLS certificate (a relay behind a private
 * CA).  Checked here so a typo is a clear 78, not a TLS failure later.
 */
static int set_cacert(CURL *curl)
{
	const char *ca = getenv("ST_CACERT");

	if (!ca || !*ca)
		return 0;
	if (access(ca, R_OK) < 0)
		return st_error(ST_EX_CONFIG, "cannot read ST_CACERT %.200s:", ca);
	if (curl_easy_setopt(curl, CURLOPT_CAINFO, ca) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL) != CURLE_OK)
		return st_error(ST_EX_CONFIG, "ST_CACERT: this libcurl cannot "
		                "take a CA file");
	return 0;
}

struct st_relay *st_relay_new(const char *url, int insecure_http)
{
	struct st_relay *r;
	size_t n = strlen(url);
	const char *t;
	char *end;
	long total = TOTAL_S;
	int loop;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		st_error(ST_EX_UNAVAILABLE, "cannot initialise libcurl");
		return NULL;
	}
	/* only a TLS handshake needs them: plain loopback http skips the work */
	if (!strncmp(url, "https://", 8))
		st_crypto_tls_digests();
	/* the scheme is checked here too: curl would guess one for "host" */
	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
		st_error(ST_EX_CONFIG, "bad relay URL '%.200s': expected "
		         "https://", url);
		return NULL;
	}
	if (check_url(url, &loop) < 0)
		return NULL;
	if (!strncmp(url, "http://", 7) && !loop && !insecure_http) {
		st_error(ST_EX_CONFIG, "refusing plain http to %.200s: use "
		         "https, or --insecure-http", url);
		return NULL;
	}
	if ((t = getenv("ST_TIMEOUT")) && *t) {
		errno = 0;
		total = strtol(t, &end, 10);
		if (errno || *end || total < 1 || total > 86400 ||
		    strspn(t, "0123456789") != strlen(t)) {
			st_error(ST_EX_CONFIG, "ST_TIMEOUT='%.40s': expected whole "
			         "seconds from 1 to 86400", t);
			return NULL;
		}
	}
	r = st_calloc(1, sizeof(*r));
	r->total_s = total;
	if (!(r->curl = curl_easy_init())) {
		free(r);
		st_error(ST_EX_UNAVAILABLE, "cannot initialise libcurl");
		return NULL;
	}
	if (set_cacert(r->curl) < 0) {
		curl_easy_cleanup(r->curl);
		free(r);
		return NULL;
	}
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->curl_err);
	while (n && url[n - 1] == '/')
		n--;
	r->base = st_strndup(url, n);
	return r;
}

const char *st_relay_base(const struct st_relay *r)
{
	return r->base;
}

void st_relay_free(struct st_relay *r)
{
	if (!r)
		return;
	curl_easy_cleanup(r->curl);
	st_free_str_secret(r->auth);
	free(r->base);
	free(r);
}

char *st_relay_url(const char *flag, const struct st_json *cfg)
{
	const char *u = flag;

	if (!u || !*u)
		u = getenv("ST_RELAY");
	if ((!u || !*u) && cfg && st_json_get(cfg, "relay"))
		st_json_get_str(cfg, "relay", &u, NULL);
	if (!u || !*u) {
		char *cp = st_home_path("config");

		st_error(ST_EX_CONFIG, "no relay URL in %s: give --relay URL or "
		         "set ST_RELAY (st-register -r URL USER saves one)",
		         cp ? cp : "the config");
		free(cp);
		return NULL;
	}
	return st_strdup(u);
}

void st_relay_set_token(struct st_relay *r, const char *token)
{
	struct st_buf b;

	st_free_str_secret(r->auth);
	r->auth = NULL;
	if (!token)
		return;
	st_buf_init(&b, 1);
	st_buf_appendf(&b, "Authorization: Bearer %s", token);
	r->auth = (char *)b.data;
}

int st_relay_load_token(struct st_relay *r)
{
	char *p = st_home_path("token");
	unsigned char *buf;
	size_t len;
	int rc;

	if (!p)
		return -1;
	rc = st_read_file(p, TOKEN_MAX, &buf, &len);
	if (rc < 0) {
		/* no token file: the home never logged in, or logged out */
		rc = st_error(ST_EX_NOPERM, "not logged in to %s (no %s): run "
		              "st-login", r->base, p);
		free(p);
		return rc;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (buf[i] <= ' ' || buf[i] > '~') {
			st_free_secret(buf, len);
			rc = st_error(ST_EX_NOPERM, "bad token file %s: run "
			              "st-login", p);
			free(p);
			return rc;
		}
	free(p);
	st_relay_set_token(r, (char *)buf);
	st_free_secret(buf, len);
	return 0;
}

struct capture {
	st_sink_fn sink;
	void *ctx;
	uint64_t got, max;
	int over, failed;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct capture *c = arg;

	n *= size;
	if (c->got + n > c->max) {
		c->over = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	c->got += n;
	if (c->sink(c->ctx, p, n) < 0) {
		c->failed = 1;
		return 0;
	}
	return n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct st_relay *r = arg;
	size_t len = size * n, k = strlen("retry-after:");

	/* curl bounds one header line, not how many lines keep coming */
	r->header_bytes += len;
	if (r->header_bytes > HEADERS_MAX) {
		r->header_over = 1;
		return 0;
	}
	if (len > k && strncasecmp(p, "retry-after:", k) == 0) {
		size_t i = k, j = 0;

		while (i < len && p[i] == ' ')
			i++;
		while (i < len && j + 1 < sizeof(r->retry_after) &&
		       p[i] >= '0' && p[i] <= '9')
			r->retry_after[j++] = p[i++];
		r->retry_after[j] = '\0';
	}
	return len;
}

/*
 * A failed transfer as one line.  TLS failures say what to do about them:
 * an untrusted certificate is 69 like any relay we cannot talk to (nothing
 * was sent, the outbox keeps it), but a CA file curl cannot use is ours.
 */
static char *shown(const char *s);

/* No connection at all: the relay is down, or the URL is not the one. */
static int unreachable(struct st_relay *r, const char *why)
{
	return st_error(ST_EX_UNAVAILABLE, "relay %s: cannot connect (%s): "
	                "check that it runs, or give another URL with --relay "
	                "URL or ST_RELAY", r->base, why);
}

static int curl_failed(struct st_relay *r, CURLcode rc)
{
	char *why = shown(*r->curl_err ? r->curl_err : curl_easy_strerror(rc));
	int ret;

	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ISSUER_ERROR:
		ret = st_error(ST_EX_UNAVAILABLE, "relay %s: TLS certificate not "
		               "trusted (%s); set ST_CACERT to the CA that signed "
		               "it", r->base, why);
		break;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		ret = st_error(ST_EX_CONFIG, "relay %s: cannot use the CA file "
		               "(%s)", r->base, why);
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		ret = unreachable(r, curl_easy_strerror(rc));
		break;
	default:
		ret = st_error(ST_EX_UNAVAILABLE, "relay %s: %s", r->base,
		               curl_easy_strerror(rc));
	}
	free(why);
	return ret;
}

/* Configure the handle for one request and perform it. */
static int perform(struct st_relay *r, const char *method, const char *path,
                   struct curl_slist *hdrs, struct capture *cap, long *status,
                   long timeout)
{
	char *url = st_malloc(strlen(r->base) + strlen(path) + 1);
	CURLcode rc;

	strcpy(url, r->base);
	strcat(url, path);
	r->retry_after[0] = '\0';
	r->curl_err[0] = '\0';
	r->header_bytes = 0;
	r->header_over = 0;
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_S);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, cap);
	curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "safetalk/" ST_VERSION);
	rc = curl_easy_perform(r->curl);
	free(url);
	*status = 0;
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
	if (cap->over)
		return st_error(ST_EX_UNAVAILABLE, "relay %s: reply larger than "
		                "%llu bytes", r->base, (unsigned long long)cap->max);
	if (r->header_over)
		return st_error(ST_EX_UNAVAILABLE, "relay %s: reply headers "
		                "larger than %d bytes", r->base, HEADERS_MAX);
	if (cap->failed)
		return -1;
	/* a relay that does not answer in time is as unavailable as one
	 * that refuses the connection: 69 (HOSTILE.md's hostile relay row;
	 * 75 is for waits of our own, such as the home lock) */
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t conn = 0;

		curl_easy_getinfo(r->curl, CURLINFO_CONNECT_TIME_T, &conn);
		if (conn > 0)
			return st_error(ST_EX_UNAVAILABLE, "relay %s: no answer "
			                "within the time limit", r->base);
		return unreachable(r, curl_easy_strerror(rc));
	}
	if (rc != CURLE_OK)
		return curl_failed(r, rc);
	return 0;
}

/* The relay's own words, made safe for a one-line diagnostic: at most
 * SHOWN_MAX bytes, control and bidi characters escaped. */
static char *shown(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return st_tty_escape(s ? s : "", n > SHOWN_MAX ? SHOWN_MAX : n, 0);
}

static int status_error(struct st_relay *r, long status, const char *m,
                        const char *c)
{
	if (status >= 300 && status < 400)
		return st_error(ST_EX_UNAVAILABLE, "relay %s answered a redirect "
		                "(%ld); not followed", r->base, status);
	if (status == 401)
		return st_error(ST_EX_NOPERM, "not logged in to %s or the session "
		                "expired: run st-login (%s)", r->base, *m ? m : c);
	if (status == 403)
		return st_error(ST_EX_NOPERM, "relay %s: forbidden: %s", r->base,
		                *m ? m : c);
	if (status == 429)
		return st_error(ST_EX_TEMPFAIL, "rate limited by relay %s; retry "
		                "after %s s", r->base,
		                *r->retry_after ? r->retry_after : "?");
	if (status >= 500 || status < 100)
		return st_error(ST_EX_UNAVAILABLE, "relay %s failed: %ld %s",
		                r->base, status, m);
	return st_error(ST_EX_DATAERR, "relay %s: %s%s%s%s", r->base,
	                *m ? m : "error", *c ? " (" : "", c, *c ? ")" : "");
}

/* Record the error class for a non-2xx status. */
static int call_status(struct st_relay *r, long status, const char *msg,
                       const char *code)
{
	char *m = shown(msg), *c = shown(code);
	int rc = status_error(r, status, m, c);

	free(m);
	free(c);
	return rc;
}

int st_relay_call(struct st_relay *r, const char *method, const char *path,
                  const struct st_json *body, size_t max, long *status,
                  struct st_json **reply, const char **errcode)
{
	struct st_buf out;
	struct capture cap = { st_sink_buf, &out, 0, max ? max : REPLY_MAX, 0, 0 };
	struct curl_slist *h = NULL;
	char *js = NULL;
	const char *msg = NULL, *code = NULL;
	long timeout = r->total_s;
	const char *w;
	int rc;

	*reply = NULL;
	if (errcode)
		*errcode = NULL;
	/* a long poll may legitimately take its whole wait */
	if ((w = strstr(path, "wait=")))
		timeout += strtol(w + 5, NULL, 10);
	st_buf_init(&out, 0);
	h = curl_slist_append(h, "Accept: application/json");
	if (r->auth)
		h = curl_slist_append(h, r->auth);
	if (body) {
		js = st_json_dump(body);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, js);
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(js));
	} else {
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
	}
	rc = perform(r, method, path, h, &cap, status, timeout);
	curl_slist_free_all(h);
	if (js) {
		st_wipe(js, strlen(js)); /* may carry a password */
		free(js);
	}
	if (rc < 0)
		goto out;
	if (out.len) {
		*reply = st_json_parse((const char *)out.data, out.len,
		                       cap.max, "relay reply");
		if (!*reply) {
			/* st_error() would write over the message it quotes */
			char *why = st_strdup(st_errmsg());

			rc = st_error(*status >= 500 ? ST_EX_UNAVAILABLE
			              : ST_EX_DATAERR, "relay %s: bad reply (%ld): %s",
			              r->base, *status, why);
			free(why);
			goto out;
		}
	}
	if (*status >= 200 && *status < 300)
		goto out;
	if (*reply) {
		if (st_json_get(*reply, "message"))
			st_json_get_str(*reply, "message", &msg, NULL);
		if (st_json_get(*reply, "error"))
			st_json_get_str(*reply, "error", &code, NULL);
	}
	if (errcode)
		*errcode = code;
	rc = call_status(r, *status, msg, code);
out:
	st_buf_free(&out);
	return rc;
}

struct upload {
	int fd;
	uint64_t size, sent;
	int tty;
	int last_pct;
};

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	ssize_t got;

	do
		got = read(u->fd, p, size * n);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return CURL_READFUNC_ABORT;
	u->sent += (uint64_t)got;
	if (u->tty && u->size) {
		int pct = (int)(u->sent * 100 / u->size);

		if (pct != u->last_pct) {
			fprintf(stderr, "\rupload %3d%%", pct);
			u->last_pct = pct;
		}
	}
	return (size_t)got;
}

int st_relay_upload(struct st_relay *r, const char *path, int fd,
                    uint64_t size, struct st_json **reply)
{
	struct st_buf out;
	struct capture cap = { st_sink_buf, &out, 0, 64 * 1024, 0, 0 };
	struct upload u = { fd, size, 0, isatty(2), -1 };
	struct curl_slist *h = NULL;
	long status;
	int rc;

	*reply = NULL;
	st_buf_init(&out, 0);
	h = curl_slist_append(h, "Content-Type: application/octet-stream");
	h = curl_slist_append(h, "Expect:");
	if (r->auth)
		h = curl_slist_append(h, r->auth);
	curl_easy_setopt(r->curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(r->curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(r->curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(r->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	/* no total timeout for big files: a stall is caught by low-speed */
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, r->total_s);
	rc = perform(r, "POST", path, h, &cap, &status, 0L);
	curl_easy_setopt(r->curl, CURLOPT_UPLOAD, 0L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 0L);
	curl_slist_free_all(h);
	if (u.tty && u.last_pct >= 0)
		fputc('\n', stderr);
	if (rc == 0 && out.len)
		*reply = st_json_parse((const char *)out.data, out.len, cap.max,
		                       "relay reply");
	if (rc == 0 && (status < 200 || status >= 300))
		rc = call_status(r, status, NULL, NULL);
	else if (rc == 0 && !*reply)
		rc = st_error(ST_EX_UNAVAILABLE, "relay %s: bad upload reply",
		              r->base);
	st_buf_free(&out);
	return rc;
}

int st_relay_download(struct st_relay *r, const char *path, uint64_t max,
                      st_sink_fn sink, void *ctx)
{
	struct capture cap = { sink, ctx, 0, max, 0, 0 };
	struct curl_slist *h = NULL;
	long status;
	int rc;

	if (r->auth)
		h = curl_slist_append(h, r->auth);
	curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, r->total_s);
	/* refuse to hand an error page to the sink as if it were the blob */
	curl_easy_setopt(r->curl, CURLOPT_FAILONERROR, 1L);
	rc = perform(r, "GET", path, h, &cap, &status, 0L);
	curl_easy_setopt(r->curl, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 0L);
	curl_slist_free_all(h);
	if (status >= 300)
		return call_status(r, status, status == 404 ? "no such blob"
		                   : NULL, NULL);
	return rc;
}

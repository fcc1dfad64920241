/*
 * hello - the ceiling for tests/bench/relay.sh: libmicrohttpd configured as
 * st-relay's front is (internal thread pool on epoll, suspend/resume
 * allowed, same connection limits), answering every request with a small
 * JSON body and doing nothing else.  What st-relay reaches against it is
 * the share of the HTTP layer's best that the relay keeps.
 *
 *   hello PORT [THREADS]     runs until SIGTERM or SIGINT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

static const char body[] = "{\"ok\":true}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **ctx)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	/* the same two calls per request as the relay: headers, then body */
	if (!*ctx) {
		*ctx = (void *)1;
		return MHD_YES;
	}
	if (*size) {
		*size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	                                    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sigset_t set;
	int sig, threads = argc > 2 ? atoi(argv[2]) : 2;

	if (argc < 2) {
		fputs("usage: hello PORT [THREADS]\n", stderr);
		return 64;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO,
	                     (uint16_t)atoi(argv[1]),
	                     NULL, NULL, on_request, NULL,
	                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
	                     MHD_OPTION_CONNECTION_LIMIT, 4096u,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	                     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	                     MHD_OPTION_END);
	if (!d) {
		fputs("hello: cannot listen\n", stderr);
		return 69;
	}
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}

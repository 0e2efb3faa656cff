/* tcpproxy: a loopback TCP proxy in front of the test server, for faults the
 * server cannot make itself (issue 8: the fault suite and the secrets scan).
 *
 *  - down/up: the listening socket is closed (new connections are refused,
 *    ECONNREFUSED, exactly as when no server runs) and every open connection
 *    is reset; up listens again on the SAME port.  The server behind keeps
 *    its data, which a restarted test server (in-memory database) would not.
 *  - reset_requests(n, after): the next n requests are reset (RST) after the
 *    proxy received `after` bytes of them (or all the client sent within
 *    200 ms, for a shorter request), and nothing of them reaches the server:
 *    a connection reset mid-request.
 *  - record: a copy of every byte the clients sent (the wire, as the server
 *    would see it), to search for secrets.
 *
 * One thread accepts; one thread per connection forwards both ways (poll,
 * 20 ms ticks to notice down/reset).  127.0.0.1 only.  Any thread may call
 * the functions below.
 */
#ifndef MLO_TCPPROXY_H
#define MLO_TCPPROXY_H

#include <stddef.h>

typedef struct tcpproxy tcpproxy;

/* Forwards 127.0.0.1:<listen_port> (0: any free port) to 127.0.0.1:<upstream_port>.
 * NULL on failure (message on stderr). */
tcpproxy *tcpproxy_start(int upstream_port, int listen_port);
int tcpproxy_port(const tcpproxy *p);
/* "http://127.0.0.1:<port>" */
const char *tcpproxy_uri(const tcpproxy *p);
/* Stop listening and reset every open connection; returns once the port refuses. */
void tcpproxy_down(tcpproxy *p);
/* Listen again on the same port; 0 on success. */
int tcpproxy_up(tcpproxy *p);
/* Reset the next n requests after `after` bytes of each (see above). */
void tcpproxy_reset_requests(tcpproxy *p, int n, size_t after);
/* How many of those resets happened so far. */
int tcpproxy_resets_done(const tcpproxy *p);
/* Connections accepted so far. */
long tcpproxy_connections(const tcpproxy *p);
/* Start (1) or stop (0) keeping a copy of client-to-server bytes. */
void tcpproxy_record(tcpproxy *p, int on);
/* A malloc'd copy of what was recorded (NUL added, not counted in *len). */
char *tcpproxy_recorded(tcpproxy *p, size_t *len);
/* Stops everything, frees p.  NULL is fine. */
void tcpproxy_stop(tcpproxy *p);

#endif

/*
 * Redis sync baseline: C clients, each looping "SET key value" then "WAIT 1 0" (the write
 * is acknowledged only once the replica has it), for a fixed time.
 *   bench-redis-wait PORT CLIENTS SECONDS VALUE_BYTES   prints "WAIT <ops> <s> <ops/s>"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cl {
    int fd, lines, n;
    char out[1024];
    int olen, ooff;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char val[4096];
static int vbytes;

static void next_req(struct cl *c, int id)
{
    char key[64];
    int kl = snprintf(key, sizeof(key), "key:%d:%d", id, c->n);
    c->olen = snprintf(c->out, sizeof(c->out),
                       "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%.*s\r\n"
                       "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$1\r\n0\r\n",
                       kl, key, vbytes, vbytes, val);
    c->ooff = 0;
    c->lines = 0;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int port = atoi(argv[1]), nc = atoi(argv[2]);
    double secs = atof(argv[3]);
    vbytes = atoi(argv[4]);
    memset(val, 'v', sizeof(val));
    struct cl *cs = calloc((size_t)nc, sizeof(*cs));
    struct pollfd *pf = calloc((size_t)nc, sizeof(*pf));
    for (int i = 0; i < nc; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            return 1;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
        cs[i].fd = fd;
        next_req(&cs[i], i);
    }
    long ops = 0;
    double t0 = now_s(), end = t0 + secs;
    char buf[4096];
    while (now_s() < end) {
        for (int i = 0; i < nc; i++) {
            struct cl *c = &cs[i];
            if (c->ooff < c->olen) {
                ssize_t w = write(c->fd, c->out + c->ooff, (size_t)(c->olen - c->ooff));
                if (w > 0)
                    c->ooff += (int)w;
            }
            pf[i] =
                (struct pollfd){.fd = c->fd, .events = POLLIN | (c->ooff < c->olen ? POLLOUT : 0)};
        }
        if (poll(pf, (nfds_t)nc, 100) <= 0)
            continue;
        for (int i = 0; i < nc; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            ssize_t r = read(cs[i].fd, buf, sizeof(buf));
            for (ssize_t k = 0; k < r; k++) {
                if (buf[k] == '\n' && ++cs[i].lines == 2) {
                    ops++;
                    cs[i].n++;
                    next_req(&cs[i], i);
                }
            }
        }
    }
    double s = now_s() - t0;
    printf("WAIT %ld %.2f %.0f\n", ops, s, (double)ops / s);
    return 0;
}

// A tiny epoll echo server for bench/raw-echo.mjs: one thread, level-triggered, no allocation per
// message, so the clients under test (not the server) are the bottleneck. Listens on 127.0.0.1
// (port argv[1], 0 = any), prints the port on stdout, echoes until killed.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

struct conn {
  int fd;
  size_t off, len;  // bytes of buf not yet written back
  int out;          // registered for EPOLLOUT (waiting for the peer to read) instead of EPOLLIN
  char buf[BUF];
};

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(int argc, char** argv) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(argc > 1 ? atoi(argv[1]) : 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
    perror("listen");
    return 1;
  }
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr*)&a, &al);
  printf("%d\n", ntohs(a.sin_port));
  fflush(stdout);
  nonblock(ls);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      struct conn* c = evs[i].data.ptr;
      if (c == NULL) {
        for (;;) {
          int fd = accept(ls, NULL, NULL);
          if (fd < 0) break;
          nonblock(fd);
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn* nc = malloc(sizeof *nc);
          nc->fd = fd;
          nc->off = nc->len = 0;
          nc->out = 0;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      int closed = 0;
      if (c->len > 0) {  // flush what is pending first
        ssize_t w = write(c->fd, c->buf + c->off, c->len);
        if (w > 0) {
          c->off += (size_t)w;
          c->len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN) {
          closed = 1;
        }
      }
      if (!closed && c->len == 0) {
        ssize_t r = read(c->fd, c->buf, BUF);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          closed = 1;
        } else if (r > 0) {
          c->off = 0;
          c->len = (size_t)r;
          ssize_t w = write(c->fd, c->buf, c->len);
          if (w > 0) {
            c->off += (size_t)w;
            c->len -= (size_t)w;
          } else if (w < 0 && errno != EAGAIN) {
            closed = 1;
          }
        }
      }
      if (closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c);
        continue;
      }
      // Waiting for the peer to read: watch writability instead of reading more.
      int want_out = c->len > 0;
      if (want_out != c->out) {
        c->out = want_out;
        struct epoll_event e = {.events = want_out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
      }
    }
  }
}

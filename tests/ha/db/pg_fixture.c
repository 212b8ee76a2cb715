#include "pg_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *source_dir(void)
{
    const char *d = getenv("SRM_SOURCE_DIR");
    return d && d[0] ? d : ".";
}

static int run(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* The newest installed PostgreSQL's bin directory, as scripts/pg-tmp picks it. */
static int pg_bin(char *buf, size_t len)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return -1;
    snprintf(buf, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    return 0;
}

static void start_watchdog(struct pg_fixture *pg)
{
    int fds[2];
    if (pipe(fds) < 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        /* own session: a kill of the test's process group does not reach us */
        setsid();
        close(fds[1]);
        char c;
        ssize_t r;
        do {
            r = read(fds[0], &c, 1);
        } while (r < 0 && errno == EINTR);
        if (r == 1)
            _exit(0); /* the test stopped the server itself */
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "%s/scripts/pg-tmp stop %s >/dev/null 2>&1", source_dir(),
                 pg->dir);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pg->watchdog = pid;
    pg->watchdog_fd = fds[1];
}

int pg_fixture_start(struct pg_fixture *pg)
{
    char cmd[512];

    memset(pg, 0, sizeof(*pg));
    pg->watchdog_fd = -1;
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/srm-db-test-XXXXXX");
    if (!mkdtemp(pg->dir))
        return -1;
    /* the server listens only on a unix socket in dir, so any port number is free */
    pg->port = 40000 + (int)(getpid() % 20000);
    start_watchdog(pg);
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-tmp start %s %d >/dev/null", source_dir(), pg->dir,
             pg->port);
    if (run(cmd) != 0) {
        fprintf(stderr, "pg_fixture: %s failed\n", cmd);
        pg_fixture_stop(pg);
        return -1;
    }
    char sock[128], port[16];
    snprintf(sock, sizeof(sock), "%s/sock", pg->dir);
    snprintf(port, sizeof(port), "%d", pg->port);
    setenv("PGHOST", sock, 1);
    setenv("PGPORT", port, 1);
    setenv("PGUSER", "postgres", 1);
    setenv("PGDATABASE", "srm", 1);
    snprintf(pg->conninfo, sizeof(pg->conninfo),
             "host=%s port=%d user=postgres dbname=srm connect_timeout=5", sock, pg->port);
    return 0;
}

void pg_fixture_stop(struct pg_fixture *pg)
{
    char cmd[512];
    if (!pg->dir[0])
        return;
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-tmp stop %s >/dev/null 2>&1", source_dir(), pg->dir);
    run(cmd);
    if (pg->watchdog_fd >= 0) {
        (void)!write(pg->watchdog_fd, "q", 1);
        close(pg->watchdog_fd);
        pg->watchdog_fd = -1;
    }
    if (pg->watchdog > 0) {
        waitpid(pg->watchdog, NULL, 0);
        pg->watchdog = 0;
    }
    pg->dir[0] = '\0';
}

int pg_fixture_halt(struct pg_fixture *pg)
{
    char bin[256], cmd[768];
    if (pg_bin(bin, sizeof(bin)) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "runuser -u postgres -- %s/pg_ctl -D %s/data -m fast -w -t 30 stop >/dev/null", bin,
             pg->dir);
    return run(cmd) == 0 ? 0 : -1;
}

int pg_fixture_resume(struct pg_fixture *pg)
{
    char bin[256], cmd[1024];
    if (pg_bin(bin, sizeof(bin)) < 0)
        return -1;
    /* the options of scripts/pg-tmp start */
    snprintf(cmd, sizeof(cmd),
             "runuser -u postgres -- %s/pg_ctl -D %s/data -l %s/server.log -w -t 30 "
             "-o \"-k %s/sock -p %d -c listen_addresses='' -c max_connections=200 -c fsync=off "
             "-c synchronous_commit=off -c full_page_writes=off\" start >/dev/null",
             bin, pg->dir, pg->dir, pg->dir, pg->port);
    return run(cmd) == 0 ? 0 : -1;
}

int pg_fixture_psql(struct pg_fixture *pg, const char *sql)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/query.sql", pg->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(sql, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "psql -X -q -v ON_ERROR_STOP=1 -f %s >/dev/null 2>&1", path);
    int st = run(cmd);
    unlink(path);
    return st;
}

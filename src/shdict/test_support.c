/*
 * What nginx's ngx_slab.c and ngx_rbtree.c need from the rest of nginx, for
 * the store's in-process unit tests (never linked into the module): page
 * size globals, a cycle whose log counts slab errors instead of printing
 * them, and a zone mutex that a single-threaded test does not need.
 */

#include <ngx_config.h>
#include <ngx_core.h>

ngx_uint_t ngx_pagesize = 4096;
ngx_uint_t ngx_pagesize_shift = 12;
ngx_uint_t ngx_cacheline_size = 64;

static ngx_log_t test_log = { .log_level = NGX_LOG_DEBUG };
static ngx_cycle_t test_cycle = { .log = &test_log };
volatile ngx_cycle_t *ngx_cycle = &test_cycle;

/* Incremented for every message ngx_slab.c logs: a double free, a pointer
 * outside the pool, a corrupted page. Tests assert it stays at zero. */
ngx_uint_t ngx_store_test_slab_errors = 0;

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    (void) log; (void) err; (void) fmt;

    if (level <= NGX_LOG_ALERT) {
        ngx_store_test_slab_errors++;
    }
}

void
ngx_shmtx_lock(ngx_shmtx_t *mtx)
{
    (void) mtx;
}

void
ngx_shmtx_unlock(ngx_shmtx_t *mtx)
{
    (void) mtx;
}

void
ngx_debug_point(void)
{
    ngx_store_test_slab_errors++;
}

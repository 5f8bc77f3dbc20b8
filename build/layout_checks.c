/*
 * The C structures the module declares again by hand: nginx's that
 * nginx-sys does not bind, declared in Rust, and the store's result
 * structures, declared in Rust and in src/shdict/ffi.h for LuaJIT's
 * ffi.cdef. build.rs compiles this file against the nginx the module is
 * built for (the object is never linked): a C layout that differs from the
 * numbers below fails the build here, and the Rust side asserts the same
 * numbers at compile time.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_md5.h>
#include <ngx_sha1.h>

#include <stddef.h>
#include <stdint.h>

#include "../src/shdict/ffi.h"

/* Out, SlabOut and StatsOut in src/shdict/ffi.rs. */
_Static_assert(offsetof(ngx_lua_shdict_out_t, len) == 8, "out.len moved");
_Static_assert(offsetof(ngx_lua_shdict_out_t, flags) == 12, "out.flags moved");
_Static_assert(offsetof(ngx_lua_shdict_out_t, kind) == 16, "out.kind moved");
_Static_assert(offsetof(ngx_lua_shdict_out_t, stale) == 20, "out.stale moved");
_Static_assert(offsetof(ngx_lua_shdict_out_t, forcible) == 24,
               "out.forcible moved");
_Static_assert(offsetof(ngx_lua_shdict_out_t, count) == 28, "out.count moved");
_Static_assert(sizeof(ngx_lua_shdict_out_t) == 32, "out changed size");
_Static_assert(offsetof(ngx_lua_shdict_item_t, key_len) == 8, "item.key_len moved");
_Static_assert(offsetof(ngx_lua_shdict_item_t, value_len) == 12,
               "item.value_len moved");
_Static_assert(offsetof(ngx_lua_shdict_item_t, kind) == 16, "item.kind moved");
_Static_assert(offsetof(ngx_lua_shdict_item_t, flags) == 20, "item.flags moved");
_Static_assert(sizeof(ngx_lua_shdict_item_t) == 24, "item changed size");
_Static_assert(sizeof(ngx_lua_shdict_slab_t) == 40, "slab changed size");
_Static_assert(offsetof(ngx_lua_shdict_stats_t, slab_count) == 112,
               "stats.slab_count moved");
_Static_assert(offsetof(ngx_lua_shdict_stats_t, slabs) == 120,
               "stats.slabs moved");
_Static_assert(sizeof(ngx_lua_shdict_stats_t) == 120 + 128 * 40,
               "stats changed size");

/* Md5Ctx in src/nginx_ffi.rs: bytes, state[4], buffer[64]. */
_Static_assert(offsetof(ngx_md5_t, bytes) == 0, "ngx_md5_t.bytes moved");
_Static_assert(offsetof(ngx_md5_t, a) == 8, "ngx_md5_t.a moved");
_Static_assert(offsetof(ngx_md5_t, d) == 20, "ngx_md5_t.d moved");
_Static_assert(offsetof(ngx_md5_t, buffer) == 24, "ngx_md5_t.buffer moved");
_Static_assert(sizeof(ngx_md5_t) == 88, "ngx_md5_t changed size");

/* Sha1Ctx in src/nginx_ffi.rs: bytes, state[6], buffer[64]. */
_Static_assert(offsetof(ngx_sha1_t, bytes) == 0, "ngx_sha1_t.bytes moved");
_Static_assert(offsetof(ngx_sha1_t, a) == 8, "ngx_sha1_t.a moved");
_Static_assert(offsetof(ngx_sha1_t, f) == 28, "ngx_sha1_t.f moved");
_Static_assert(offsetof(ngx_sha1_t, buffer) == 32, "ngx_sha1_t.buffer moved");
_Static_assert(sizeof(ngx_sha1_t) == 96, "ngx_sha1_t changed size");

#ifdef NGX_LAYOUT_CHECK_REWRITE

/*
 * RewriteLocConf in src/http/set_var.rs: the rewrite module keeps its
 * location configuration private to its source file, which is compiled in
 * here to see it.
 */
#include <ngx_http.h>
#include "ngx_http_rewrite_module.c"

_Static_assert(offsetof(ngx_http_rewrite_loc_conf_t, codes) == 0,
               "ngx_http_rewrite_loc_conf_t.codes moved");
_Static_assert(offsetof(ngx_http_rewrite_loc_conf_t, stack_size)
               == sizeof(void *), "ngx_http_rewrite_loc_conf_t.stack_size moved");
_Static_assert(offsetof(ngx_http_rewrite_loc_conf_t, log)
               == 2 * sizeof(void *), "ngx_http_rewrite_loc_conf_t.log moved");
_Static_assert(offsetof(ngx_http_rewrite_loc_conf_t,
                        uninitialized_variable_warn)
               == 3 * sizeof(void *),
               "ngx_http_rewrite_loc_conf_t.uninitialized_variable_warn moved");
_Static_assert(sizeof(ngx_http_rewrite_loc_conf_t) == 4 * sizeof(void *),
               "ngx_http_rewrite_loc_conf_t changed size");

#endif

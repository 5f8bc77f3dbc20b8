/* The store's C-ABI operations (src/shdict/ffi.rs), as LuaJIT's ffi.cdef
 * reads them. `zone` is the handle a dictionary table holds at index 1.
 * Every function returns one of the NGX_LUA_SHDICT_* status codes that
 * ffi.rs defines; results go to the caller's `out`. */

typedef struct {
    double number;      /* number value, incr result, ttl (s), list length */
    uint32_t len;       /* string bytes copied; room needed when too small */
    int32_t flags;      /* user flags of a read, as OpenResty's C int */
    int32_t kind;       /* value kind of a read */
    int32_t stale;      /* get_stale: the value had expired */
    int32_t forcible;   /* a write evicted live entries */
    uint32_t count;     /* keys listed, or needed when too small */
} ngx_lua_shdict_out_t;

/* One record of a scan batch: an entry, or an element of the list entry
 * before it (key_len 0). Its key's bytes, then a string value's, follow
 * the previous record's in the batch's bytes. */
typedef struct {
    double number;      /* a number's value, a boolean's as 0 or 1 */
    uint32_t key_len;
    uint32_t value_len; /* a string's bytes; a list's element records */
    int32_t kind;
    int32_t flags;
} ngx_lua_shdict_item_t;

typedef struct {
    double size, total, used, requests, failures;
} ngx_lua_shdict_slab_t;

typedef struct {
    double capacity, free_space, used_bytes, entries, lists, expired_pending,
           hits, misses, stores, evictions, expirations, no_memory,
           pages_total, pages_free;
    uint32_t slab_count;
    ngx_lua_shdict_slab_t slabs[128];
} ngx_lua_shdict_stats_t;

int ngx_lua_shdict_get(void *zone, const char *key, size_t key_len,
    int allow_stale, uint8_t *buf, size_t buf_len, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_store(void *zone, const char *key, size_t key_len,
    int mode, int kind, const char *str, size_t str_len, double number,
    double exptime, double flags, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_cas(void *zone, const char *key, size_t key_len,
    int expected_kind, const char *expected_str, size_t expected_len,
    double expected_number, int kind, const char *str, size_t str_len,
    double number, double exptime, double flags, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_delete(void *zone, const char *key, size_t key_len);
int ngx_lua_shdict_incr(void *zone, const char *key, size_t key_len,
    double delta, int has_init, double init, double init_ttl,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_push(void *zone, const char *key, size_t key_len,
    int at_tail, int kind, const char *str, size_t str_len, double number,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_pop(void *zone, const char *key, size_t key_len,
    int at_tail, uint8_t *buf, size_t buf_len, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_llen(void *zone, const char *key, size_t key_len,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_ttl(void *zone, const char *key, size_t key_len,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_expire(void *zone, const char *key, size_t key_len,
    double exptime_ms);
int ngx_lua_shdict_flush_all(void *zone);
int ngx_lua_shdict_flush_expired(void *zone, double max_count,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_get_keys(void *zone, double max_count, uint8_t *bytes,
    size_t bytes_len, uint32_t *lens, size_t lens_len,
    ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_scan(void *zone, double cursor, double count,
    int with_values, uint8_t *bytes, size_t bytes_len,
    ngx_lua_shdict_item_t *items, size_t items_len, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_capacity(void *zone, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_free_space(void *zone, ngx_lua_shdict_out_t *out);
int ngx_lua_shdict_stats(void *zone, ngx_lua_shdict_stats_t *out);

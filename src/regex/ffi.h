/* PCRE2 patterns as ngx.re's Lua uses them through LuaJIT's FFI
 * (src/regex/ffi.rs). A compiled pattern starts with what Lua reads; the
 * rest of it is private to the Rust side. */

typedef struct {
    /* Byte offsets of the last match and of each capture group, as
     * start/end pairs (groups + 1 of them); -1 for a group that took no
     * part in the match. */
    const int32_t *captures;
    int32_t groups;           /* capture groups (none in DFA mode) */
    int32_t name_count;       /* named groups */
    int32_t name_entry_size;  /* bytes per name table entry */
    const uint8_t *name_table; /* entries: group number (2 bytes, big
                                  endian), then the NUL-terminated name */
} ngx_lua_regex_t;

typedef struct ngx_lua_regex_template_s ngx_lua_regex_template_t;

typedef struct {
    const uint8_t *data;
    size_t len;
} ngx_lua_regex_output_t;

ngx_lua_regex_t *ngx_lua_regex_compile(const char *pattern, size_t len,
    uint32_t flags, char *err, size_t err_len);
int ngx_lua_regex_exec(ngx_lua_regex_t *re, const char *subject, size_t len,
    size_t start);
void ngx_lua_regex_free(ngx_lua_regex_t *re);
ngx_lua_regex_template_t *ngx_lua_regex_template_compile(const char *text,
    size_t len, char *err, size_t err_len);
void ngx_lua_regex_template_free(ngx_lua_regex_template_t *template);
int ngx_lua_regex_substitute(ngx_lua_regex_t *re,
    const ngx_lua_regex_template_t *template, const char *subject, size_t len,
    int global, ngx_lua_regex_output_t *out);
int ngx_lua_regex_set_jit_stack_size(size_t size);

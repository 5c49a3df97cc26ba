// Lua 5.4's C API, with the macros Swift cannot import (lua_pcall, lua_tostring, ...) as static inline functions.
#ifndef REFRAIN_CLUA_SHIM_H
#define REFRAIN_CLUA_SHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

static inline int refrain_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline const char *refrain_lua_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline lua_Number refrain_lua_tonumber(lua_State *L, int idx) { return lua_tonumber(L, idx); }
static inline lua_Integer refrain_lua_tointeger(lua_State *L, int idx) { return lua_tointeger(L, idx); }
static inline void refrain_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void refrain_lua_newtable(lua_State *L) { lua_newtable(L); }
static inline int refrain_lua_isnil(lua_State *L, int idx) { return lua_isnil(L, idx); }
static inline int refrain_lua_istable(lua_State *L, int idx) { return lua_istable(L, idx); }
static inline int refrain_lua_isfunction(lua_State *L, int idx) { return lua_isfunction(L, idx); }
static inline void refrain_lua_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcfunction(L, f); }
static inline void refrain_lua_register(lua_State *L, const char *n, lua_CFunction f) { lua_register(L, n, f); }
static inline int refrain_luaL_dostring(lua_State *L, const char *s) { return luaL_dostring(L, s); }
static inline int refrain_luaL_loadbuffer(lua_State *L, const char *s, size_t sz, const char *name) {
    return luaL_loadbuffer(L, s, sz, name);
}
static inline void refrain_lua_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void refrain_lua_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline int refrain_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline void *refrain_lua_newuserdata(lua_State *L, size_t sz) { return lua_newuserdata(L, sz); }
static inline const char *refrain_luaL_checkstring(lua_State *L, int arg) { return luaL_checkstring(L, arg); }
static inline const char *refrain_luaL_typename(lua_State *L, int idx) { return luaL_typename(L, idx); }
static inline int refrain_LUA_REGISTRYINDEX(void) { return LUA_REGISTRYINDEX; }
static inline int refrain_lua_isinteger(lua_State *L, int idx) { return lua_isinteger(L, idx); }
static inline const char *refrain_lua_tolstring(lua_State *L, int idx, size_t *len) { return lua_tolstring(L, idx, len); }
static inline void refrain_lua_pushcclosure(lua_State *L, lua_CFunction f, int n) { lua_pushcclosure(L, f, n); }
static inline void *refrain_lua_newuserdatauv(lua_State *L, size_t sz, int nuv) { return lua_newuserdatauv(L, sz, nuv); }
static inline void refrain_lua_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int refrain_luaL_loadbufferx(lua_State *L, const char *s, size_t sz, const char *name, const char *mode) {
    return luaL_loadbufferx(L, s, sz, name, mode);
}
static inline void refrain_luaL_openlibs(lua_State *L) { luaL_openlibs(L); }
static inline int refrain_luaL_getmetatable(lua_State *L, const char *n) { return luaL_getmetatable(L, n); }
/* The host pointer every lua_State of the host carries (the main thread's extra space; new threads copy it). */
static inline void **refrain_lua_extraspace(lua_State *L) { return (void **)lua_getextraspace(L); }
static inline int refrain_LUA_MULTRET(void) { return LUA_MULTRET; }
/* Standard output through C's stdio, the stream Lua's print and io.write use, flushed so that the order holds. */
static inline void refrain_write_stdout(const char *s, size_t n) { fwrite(s, 1, n, stdout); fflush(stdout); }
static inline void refrain_flush_stdout(void) { fflush(stdout); }

/* Raising errors longjmps: Swift calls these only from the bottom of a C-function trampoline, after every Swift
   frame that holds references has returned, so that no Swift cleanup is skipped. */
/* Raises the value on top of the stack as is. */
static inline int refrain_lua_raise(lua_State *L) { return lua_error(L); }
/* Raises the string on top of the stack prefixed with the caller's position ("file:line: "). */
static inline int refrain_lua_raise_where(lua_State *L) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}
/* Raises "bad argument #arg to 'name' (message)" with the message on top of the stack (luaL_argerror adjusts the
   argument number for method calls). */
static inline int refrain_lua_raise_arg(lua_State *L, int arg) {
    const char *msg = lua_tostring(L, -1);
    return luaL_argerror(L, arg, msg);
}
/* The interrupt hook's error, as lua.c raises it. */
static inline int refrain_lua_raise_interrupted(lua_State *L) {
    return luaL_error(L, "interrupted!");
}
/* lm.store.with(labels, f, ...), yieldable: f may yield (a coroutine run by lm.batch), and the labels are put back
   when f returns or raises, at once or after any number of yields. Upvalue 1 is the host's `enter(labels)` (sets
   the labels over the current ones, returns the previous as a table), upvalue 2 its `label(t)` (sets t, returns the
   previous). While f runs the stack holds [saved labels, label, f's results or error]. */
static inline int refrain_store_with_k(lua_State *L, int status, lua_KContext ctx) {
    (void)ctx;
    int results = lua_gettop(L) - 2;
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);                          /* label(saved) */
    if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);   /* f's error, on top, raised as it was */
    return results;
}
static inline int refrain_store_with(lua_State *L) {
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);                          /* saved = enter(labels) */
    lua_replace(L, 1);                          /* saved, f, ... */
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 2);                           /* saved, label, f, ... */
    int status = lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 0, 0, refrain_store_with_k);
    return refrain_store_with_k(L, status, 0);
}

/* The sandbox's memory limit: an allocator that counts the bytes the state holds and, while `enforcing`, refuses
   to grow past `hard` (the limit plus a little room for the error that reports it). Lua then runs an emergency
   collection and retries before it raises "not enough memory". Shrinking never fails, as Lua requires. */
typedef struct refrain_limits {
    size_t used;     /* bytes held by the state */
    size_t limit;    /* the limit (0: none) */
    size_t hard;     /* what the allocator refuses to go past while enforcing */
    int enforcing;   /* on while Lua code runs, off inside the host's own bindings */
    int refused;     /* set when an allocation was refused */
} refrain_limits;

static inline void *refrain_limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    refrain_limits *m = (refrain_limits *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) { free(ptr); m->used -= old; return NULL; }
    if (nsize > old && m->limit && m->enforcing && m->used - old + nsize > m->hard) { m->refused = 1; return NULL; }
    void *p = realloc(ptr, nsize);
    if (p) m->used = m->used - old + nsize;
    return p;
}
/* Puts the counting allocator under the state, starting from what the state holds now. */
static inline void refrain_lua_count_memory(lua_State *L, refrain_limits *m) {
    m->used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
    lua_setallocf(L, refrain_limited_alloc, m);
}
static inline void refrain_lua_collect(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }
/* The limits' errors, raised from the count hook with the position of the running function (level 0: a hook
   has no frame of its own). */
static inline int refrain_lua_raise_hook_error(lua_State *L, const char *format, double value) {
    char n[32];
    snprintf(n, sizeof n, "%g", value);
    luaL_where(L, 0);
    lua_pushfstring(L, format, n);
    lua_concat(L, 2);
    return lua_error(L);
}
static inline int refrain_lua_raise_memory_limit(lua_State *L, double mb) {
    return refrain_lua_raise_hook_error(L, "memory limit of %s MB reached", mb);
}
static inline int refrain_lua_raise_time_limit(lua_State *L, double s) {
    return refrain_lua_raise_hook_error(L, "time limit of %s s reached", s);
}
/// "Lua 5.4.x" as the headers the host was built against say.
static inline const char *refrain_lua_release(void) { return LUA_RELEASE; }
#endif

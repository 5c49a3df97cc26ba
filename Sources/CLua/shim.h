// Lua 5.4's C API, with the macros Swift cannot import (lua_pcall, lua_tostring, ...) as static inline functions.
#ifndef REFRAIN_CLUA_SHIM_H
#define REFRAIN_CLUA_SHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

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
#endif

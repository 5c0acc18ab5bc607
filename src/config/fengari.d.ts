// The part of fengari (Lua 5.3 in JavaScript, no types of its own) that lua.ts uses: Lua's C API
// under its C names, strings as Uint8Array ("luastrings").
declare module 'fengari' {
  export type LuaState = { readonly __luaState: unique symbol };
  export type LuaString = Uint8Array;
  interface DebugInfo {
    currentline: number;
  }
  const fengari: {
    to_luastring(s: string): LuaString;
    to_jsstring(s: LuaString): string;
    lua: {
      LUA_OK: number;
      LUA_TNIL: number;
      LUA_TBOOLEAN: number;
      LUA_TNUMBER: number;
      LUA_TSTRING: number;
      LUA_TTABLE: number;
      LUA_TFUNCTION: number;
      LUA_MASKCOUNT: number;
      LUA_REGISTRYINDEX: number;
      lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
      lua_pushjsfunction(L: LuaState, f: (L: LuaState) => number): void;
      lua_pushnil(L: LuaState): void;
      lua_pushstring(L: LuaState, s: LuaString): void;
      lua_setglobal(L: LuaState, name: LuaString): void;
      lua_getglobal(L: LuaState, name: LuaString): number;
      lua_setfield(L: LuaState, index: number, name: LuaString): void;
      lua_getfield(L: LuaState, index: number, name: LuaString): number;
      lua_type(L: LuaState, index: number): number;
      lua_typename(L: LuaState, type: number): LuaString;
      lua_next(L: LuaState, index: number): number;
      lua_pop(L: LuaState, n: number): void;
      lua_gettop(L: LuaState): number;
      lua_settop(L: LuaState, n: number): void;
      lua_absindex(L: LuaState, index: number): number;
      lua_pushvalue(L: LuaState, index: number): void;
      lua_toboolean(L: LuaState, index: number): boolean;
      lua_tonumber(L: LuaState, index: number): number;
      lua_tojsstring(L: LuaState, index: number): string;
      lua_tolstring(L: LuaState, index: number): LuaString;
      lua_isinteger(L: LuaState, index: number): boolean;
      lua_sethook(L: LuaState, hook: ((L: LuaState, ar: DebugInfo) => void) | null, mask: number, count: number): void;
      lua_close(L: LuaState): void;
    };
    lauxlib: {
      luaL_newstate(): LuaState;
      luaL_loadbuffer(L: LuaState, buffer: LuaString, size: number | null, chunkname: LuaString): number;
      luaL_error(L: LuaState, message: LuaString): never;
    };
    lualib: {
      luaL_openlibs(L: LuaState): void;
    };
  };
  export default fengari;
}

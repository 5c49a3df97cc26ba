// SQLite 3's C API (Debian's libsqlite3-dev), with SQLITE_TRANSIENT, a macro Swift cannot import, as a function.
#ifndef REFRAIN_CSQLITE_SHIM_H
#define REFRAIN_CSQLITE_SHIM_H
#include <sqlite3.h>

/* Binds text that SQLite copies before the call returns (Swift strings are temporary). */
static inline int refrain_sqlite3_bind_text(sqlite3_stmt *s, int i, const char *text, int n) {
    return sqlite3_bind_text(s, i, text, n, SQLITE_TRANSIENT);
}
#endif

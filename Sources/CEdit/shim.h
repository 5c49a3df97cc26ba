// libedit's readline-compatible interface and its native histedit API, for the REPL.
// el_set and history are variadic, which Swift cannot call: the wrappers below fix their arguments.
#ifndef REFRAIN_CEDIT_SHIM_H
#define REFRAIN_CEDIT_SHIM_H
#include <stdio.h>
#include <histedit.h>
#include <editline/readline.h>

/// An editor on the process's standard streams (Swift 6 cannot touch C's stdin/stdout globals).
static inline EditLine *refrain_el_open(const char *prog) { return el_init(prog, stdin, stdout, stderr); }

/// Emacs keys, no libedit signal handlers (the host owns SIGINT), the prompt function (with '\1' bracketing
/// escape sequences that take no room), the history, ~/.editrc, and Ctrl-C read as a key instead of a signal
/// while a line is edited: the terminal's isig is off in libedit's edit mode only, so Ctrl-C during an
/// evaluation still raises SIGINT.
static inline void refrain_el_configure(EditLine *e, char *(*prompt)(EditLine *), History *h) {
    el_set(e, EL_EDITOR, "emacs");
    el_set(e, EL_SIGNAL, 0);
    el_set(e, EL_PROMPT_ESC, prompt, '\1');
    el_set(e, EL_HIST, history, h);
    el_source(e, NULL);
    el_set(e, EL_SETTY, "-d", "-isig", NULL);
}

/// Binds `key` (in el_set's notation: "^I", "^C") to a new editor function.
static inline void refrain_el_bind(EditLine *e, const char *name, const char *help,
                                   unsigned char (*fn)(EditLine *, int), const char *key) {
    el_set(e, EL_ADDFN, name, help, fn);
    el_set(e, EL_BIND, key, name, NULL);
}

static inline void refrain_el_set_client(EditLine *e, void *data) { el_set(e, EL_CLIENTDATA, data); }
static inline void *refrain_el_client(EditLine *e) {
    void *p = NULL;
    el_get(e, EL_CLIENTDATA, &p);
    return p;
}

static inline History *refrain_history_open(int size) {
    History *h = history_init();
    HistEvent ev;
    history(h, &ev, H_SETSIZE, size);
    history(h, &ev, H_SETUNIQUE, 1);
    return h;
}
static inline int refrain_history_enter(History *h, const char *line) { HistEvent ev; return history(h, &ev, H_ENTER, line); }
static inline int refrain_history_load(History *h, const char *path) { HistEvent ev; return history(h, &ev, H_LOAD, path); }
static inline int refrain_history_save(History *h, const char *path) { HistEvent ev; return history(h, &ev, H_SAVE, path); }
#endif

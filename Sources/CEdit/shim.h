// libedit's readline-compatible interface and its native histedit API, for the REPL.
#ifndef REFRAIN_CEDIT_SHIM_H
#define REFRAIN_CEDIT_SHIM_H
#include <stdio.h>
#include <histedit.h>
#include <editline/readline.h>
#endif

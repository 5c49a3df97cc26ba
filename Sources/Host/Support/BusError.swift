// A model file truncated while it is mapped makes the next read of its lost pages fault with SIGBUS. The engine
// checks the file before each forward pass (GGUFFile.checkUnchanged); this handler covers a truncation between
// that check and the read: one line saying what happened, instead of a crash report.
import Foundation

/// Installs the SIGBUS handler for the process (it writes a fixed message and exits with status 1).
func installBusErrorHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        // Only async-signal-safe calls: write(2) of a static string, then _exit.
        let message: StaticString = "refrain: error: a mapped file (the model?) was truncated while in use (SIGBUS): load it again\n"
        _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
        _exit(1)
    }
    sigemptyset(&action.sa_mask)
    sigaction(SIGBUS, &action, nil)
}

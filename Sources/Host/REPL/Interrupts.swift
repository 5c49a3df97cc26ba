// Ctrl-C during an evaluation. The SIGINT handler only counts the signal and, while something is being evaluated,
// asks the Lua host to stop (its `interrupt()` is async-signal-safe). Outside evaluations the terminal sends no
// SIGINT at all (its isig flag is off, here and in libedit's edit mode): Ctrl-C reaches libedit as a key (see
// LineEditor), even when typed before libedit has switched the terminal to raw mode, so the two never compete.
import Foundation
import Synchronization

/// SIGINTs received since the REPL last looked.
let pendingInterrupts = Atomic<Int>(0)
/// Whether an evaluation is running (only then does a SIGINT reach the host).
let evaluationRunning = Atomic<Bool>(false)
/// The host the handler interrupts; set once, before the handler is installed, and never released.
nonisolated(unsafe) private var interruptTarget: Unmanaged<LuaHost>?

private func onSIGINT(_ signal: Int32) {
    pendingInterrupts.add(1, ordering: .relaxed)
    if evaluationRunning.load(ordering: .acquiring) { interruptTarget?.takeUnretainedValue().interrupt() }
}

/// Installs the SIGINT handler for the session (SA_RESTART: an interrupted write or read carries on).
func installInterruptHandler(for host: LuaHost) {
    interruptTarget = Unmanaged.passRetained(host)
    _ = pendingInterrupts.load(ordering: .relaxed)
    _ = evaluationRunning.load(ordering: .relaxed)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = onSIGINT
    sigemptyset(&action.sa_mask)
    action.sa_flags = SA_RESTART
    sigaction(SIGINT, &action, nil)
}

/// Runs `body` as an interruptible evaluation: a SIGINT during it reaches the host. Returns its value and the
/// number of interrupts that arrived.
func interruptible<T>(_ body: () -> T) -> (value: T, interrupts: Int) {
    pendingInterrupts.store(0, ordering: .relaxed)
    evaluationRunning.store(true, ordering: .releasing)
    terminalSignals(true)
    let value = body()
    terminalSignals(false)
    evaluationRunning.store(false, ordering: .releasing)
    return (value, pendingInterrupts.exchange(0, ordering: .relaxed))
}

/// Turns the terminal's signal keys (Ctrl-C, Ctrl-\\, Ctrl-Z) on or off; nothing when stdin is not a terminal.
/// While they are off, LineEditor binds Ctrl-C (abandon the line) and Ctrl-Z (suspend) as keys.
func terminalSignals(_ on: Bool) {
    var t = termios()
    guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &t) == 0 else { return }
    if on { t.c_lflag |= tcflag_t(ISIG) } else { t.c_lflag &= ~tcflag_t(ISIG) }
    tcsetattr(STDIN_FILENO, TCSANOW, &t)
}

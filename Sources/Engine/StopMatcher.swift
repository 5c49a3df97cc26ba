// Stop strings over streamed text.

/// Watches streamed text for stop strings.
///
/// Feed each decoded piece to ``feed(_:)``. It returns the text that is safe to show now: everything except a tail
/// that could still become the start of a stop string (held back until the next piece settles it). When a stop
/// string appears, the text before it is returned, the stop string and anything after it are dropped, and the
/// matcher reports ``isStopped``; later feeds return nothing. When generation ends without a stop (e.g. at
/// end-of-generation), call ``flush()`` to get the held-back tail.
///
/// Matching is by Unicode scalars, so a stop string split across pieces at any scalar boundary is found. When several
/// stop strings match, the one starting earliest wins (the longest among those starting at the same place).
public struct StopMatcher: Sendable {
    /// What one ``StopMatcher/feed(_:)`` call produced.
    public struct Step: Sendable, Equatable {
        /// Text safe to emit now.
        public var text: String
        /// The stop string that matched in this step, if one did.
        public var stop: String?
        /// Where the matched stop string starts, as a UTF-8 byte offset into all the text fed so far.
        public var stopOffset: Int?
    }

    /// The stop strings (empty ones are ignored).
    public let stops: [String]
    private let stopScalars: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []   // fed but not yet emitted
    private var emittedBytes = 0                 // UTF-8 length of everything emitted (= fed, minus pending)
    /// Whether a stop string has matched.
    public private(set) var isStopped = false
    /// The stop string that matched, once one has.
    public private(set) var matchedStop: String?

    /// A matcher for the given stop strings.
    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        stopScalars = self.stops.map { Array($0.unicodeScalars) }
    }

    /// Adds a piece of streamed text; returns what can be emitted and whether a stop string matched.
    public mutating func feed(_ piece: String) -> Step {
        guard !isStopped else { return Step(text: "", stop: nil, stopOffset: nil) }
        pending.append(contentsOf: piece.unicodeScalars)

        // The earliest complete match, longest first among equal starts.
        var best: (start: Int, stop: Int)?
        for (k, s) in stopScalars.enumerated() where s.count <= pending.count {
            if let at = firstIndex(of: s, in: pending, before: best?.start ?? pending.count) {
                if best == nil || at < best!.start || (at == best!.start && s.count > stopScalars[best!.stop].count) {
                    best = (at, k)
                }
            }
        }
        if let best {
            let text = makeString(pending[0..<best.start])
            let offset = emittedBytes + text.utf8.count
            isStopped = true
            matchedStop = stops[best.stop]
            pending.removeAll()
            emittedBytes = offset
            return Step(text: text, stop: stops[best.stop], stopOffset: offset)
        }

        // Hold back the longest tail that is a proper prefix of some stop string.
        var hold = 0
        for s in stopScalars {
            var len = min(s.count - 1, pending.count)
            while len > hold {
                if pending[(pending.count - len)...].elementsEqual(s[0..<len]) { hold = len; break }
                len -= 1
            }
        }
        let cut = pending.count - hold
        let text = makeString(pending[0..<cut])
        pending.removeFirst(cut)
        emittedBytes += text.utf8.count
        return Step(text: text, stop: nil, stopOffset: nil)
    }

    /// Returns the held-back text at the end of a stream that did not stop (nothing after a stop).
    public mutating func flush() -> String {
        guard !isStopped else { return "" }
        let text = makeString(pending[...])
        pending.removeAll()
        emittedBytes += text.utf8.count
        return text
    }

    /// Forgets all state, for a new stream.
    public mutating func reset() {
        pending.removeAll()
        emittedBytes = 0
        isStopped = false
        matchedStop = nil
    }

    private func firstIndex(of needle: [Unicode.Scalar], in hay: [Unicode.Scalar], before limit: Int) -> Int? {
        guard !needle.isEmpty, needle.count <= hay.count else { return nil }
        let last = min(hay.count - needle.count, limit)
        guard last >= 0 else { return nil }
        var i = 0
        while i <= last {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private func makeString(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars)
        return String(v)
    }
}

// Running a grammar over generated tokens (llama.cpp's pushdown matcher, with its states interned): a state is a
// set of stacks of positions in the grammar (each stack's top is the next character or token it expects; an empty
// stack has matched the whole grammar) and the bytes of a character not complete yet. States are interned and their
// byte transitions memoised, so the mask of allowed tokens for a state is a walk of the vocabulary's byte trie that
// prunes every branch the grammar refuses, computed once per state and kept. Tokens are matched on their text as
// llama.cpp's `token_to_piece` renders it (special tokens as their text); an end-of-generation token is allowed
// where the grammar is complete; a token with no text is never allowed.
import Foundation

/// The vocabulary's token texts as a byte trie (children of a node are contiguous and sorted by byte), built once per
/// tokenizer. Its tables are fixed after `init` and held in buffers of their own, so that a mask's walk reads them
/// without the bookkeeping of arrays held by a class.
final class TokenTrie: @unchecked Sendable {
    /// Per node: the first child's index and the number of children (children of one node are contiguous).
    let firstChild: UnsafeMutableBufferPointer<Int32>
    let childCount: UnsafeMutableBufferPointer<UInt16>
    /// Per node: the byte on the edge into it.
    let edge: UnsafeMutableBufferPointer<UInt8>
    /// Per node: the range of `tokenIDs` whose text ends there.
    let tokenStart: UnsafeMutableBufferPointer<Int32>
    let tokenEnd: UnsafeMutableBufferPointer<Int32>
    let tokenIDs: UnsafeMutableBufferPointer<Int32>
    /// The end-of-generation tokens (not in the trie).
    let endOfGeneration: [Int32]
    let vocabularySize: Int
    /// Every token's text as the trie holds it, at `pieceBytes[pieceStart[id]..<pieceStart[id + 1]]`; empty for a
    /// token not in the trie (an end-of-generation token, a token without text).
    let pieceBytes: UnsafeMutableBufferPointer<UInt8>
    let pieceStart: UnsafeMutableBufferPointer<Int32>

    init(_ tokenizer: Tokenizer) {
        let n = tokenizer.vocabularySize
        vocabularySize = n
        endOfGeneration = tokenizer.endOfGeneration.sorted()
        // Every token's text in one buffer (a token not in the trie has none), then the trie's tokens sorted by
        // text (ties by id) with byte comparisons on that buffer.
        var flat: [UInt8] = [], starts = [Int32](repeating: 0, count: n + 1)
        flat.reserveCapacity(8 * n)
        var order: [Int32] = []
        order.reserveCapacity(n)
        for id in 0..<Int32(n) {
            starts[Int(id)] = Int32(flat.count)
            if tokenizer.endOfGeneration.contains(id) { continue }
            let p = tokenizer.piece(id, special: true)
            if p.isEmpty || p[0] == 0 { continue }   // llama.cpp never allows a token without text
            flat.append(contentsOf: p)
            order.append(id)
        }
        starts[n] = Int32(flat.count)
        flat.withUnsafeBufferPointer { bytes in
            let base = bytes.baseAddress!
            order.sort { a, b in
                let la = Int(starts[Int(a) + 1] - starts[Int(a)]), lb = Int(starts[Int(b) + 1] - starts[Int(b)])
                let r = memcmp(base + Int(starts[Int(a)]), base + Int(starts[Int(b)]), min(la, lb))
                return r != 0 ? r < 0 : la != lb ? la < lb : a < b
            }
        }
        // Breadth-first, so that a node's children are contiguous: each level's nodes are the distinct prefixes.
        // Built level by level over the sorted tokens: a node covers a range of them sharing its prefix.
        var firstChild: [Int32] = [0], childCount: [UInt16] = [0], edge: [UInt8] = [0]
        var tokenStart: [Int32] = [0], tokenEnd: [Int32] = [0], tokenIDs: [Int32] = []
        let sorted = order, texts = flat, offsets = starts
        var ranges: [(lo: Int, hi: Int, depth: Int)] = [(0, sorted.count, 0)]
        @inline(__always) func length(_ i: Int) -> Int { Int(offsets[Int(sorted[i]) + 1] - offsets[Int(sorted[i])]) }
        @inline(__always) func byte(_ i: Int, _ depth: Int) -> UInt8 { texts[Int(offsets[Int(sorted[i])]) + depth] }
        var q = 0
        while q < ranges.count {
            let (lo, hi, depth) = ranges[q]
            // Tokens ending here: texts of length `depth` come first in the range (sorted).
            var i = lo
            let ts = Int32(tokenIDs.count)
            while i < hi && length(i) == depth { tokenIDs.append(sorted[i]); i += 1 }
            tokenStart[q] = ts
            tokenEnd[q] = Int32(tokenIDs.count)
            firstChild[q] = Int32(ranges.count)
            var count = 0
            while i < hi {
                let b = byte(i, depth)
                var j = i + 1
                while j < hi && byte(j, depth) == b { j += 1 }
                ranges.append((i, j, depth + 1))
                firstChild.append(0); childCount.append(0); edge.append(b); tokenStart.append(0); tokenEnd.append(0)
                count += 1
                i = j
            }
            childCount[q] = UInt16(count)
            q += 1
        }
        func buffer<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = b.initialize(from: a)
            return b
        }
        self.firstChild = buffer(firstChild); self.childCount = buffer(childCount); self.edge = buffer(edge)
        self.tokenStart = buffer(tokenStart); self.tokenEnd = buffer(tokenEnd); self.tokenIDs = buffer(tokenIDs)
        nodeCount = firstChild.count
        pieceBytes = buffer(flat); pieceStart = buffer(starts)
    }

    deinit {
        firstChild.deallocate(); childCount.deallocate(); edge.deallocate()
        tokenStart.deallocate(); tokenEnd.deallocate(); tokenIDs.deallocate()
        pieceBytes.deallocate(); pieceStart.deallocate()
    }

    let nodeCount: Int
}

extension Tokenizer {
    /// The vocabulary's byte trie, for constrained generation (built on first use, then shared).
    var tokenTrie: TokenTrie {
        trieCache.lock.withLock {
            if let t = trieCache.trie { return t }
            let t = TokenTrie(self)
            trieCache.trie = t
            return t
        }
    }
}

/// Where a tokenizer keeps its trie once built.
final class TokenTrieCache: @unchecked Sendable {
    let lock = NSLock()
    var trie: TokenTrie?
}

/// A grammar compiled against a tokenizer: interned matcher states, their byte transitions and their token masks,
/// shared by every sequence that generates under it (the samples of one `sample` call, say). Thread-safe.
public final class GrammarConstraint: @unchecked Sendable {
    public let grammar: Grammar
    let trie: TokenTrie
    private let tokenizer: Tokenizer
    private let lock = NSLock()

    /// A matcher state: sorted stacks (positions into `grammar.symbols`, top last) and a character's first bytes.
    struct State: Hashable {
        var stacks: [[Int32]]
        var pending: [UInt8]
    }
    private var states: [State] = []
    private var ids: [State: Int32] = [:]
    /// The byte transitions met so far: at `state << 8 | byte`, the next state, -1 (refused) or -2 (not yet known).
    private var table: [Int32] = []
    private var masks: [Int32: [UInt64]] = [:]
    private var allowedLists: [Int32: [Int32]] = [:]
    private var nullable: [Bool]

    /// The state before anything is generated.
    public private(set) var initial: Int32 = 0

    /// Compiles `grammar` for `tokenizer`'s vocabulary.
    public init(_ grammar: Grammar, tokenizer: Tokenizer) {
        self.grammar = grammar
        self.tokenizer = tokenizer
        trie = tokenizer.tokenTrie
        nullable = grammar.nullable()
        var start = Set<[Int32]>()
        for a in grammar.alternatives[grammar.root] { advance(push(a, onto: []), into: &start) }
        initial = intern(State(stacks: start.sorted { $0.lexicographicallyPrecedes($1) }, pending: []))
    }

    // MARK: - Stacks

    private func push(_ pos: Int, onto stack: [Int32]) -> [Int32] {
        grammar.symbols[pos] == .end ? stack : stack + [Int32(pos)]
    }

    /// Expands rule references at the top until every stack's top expects a character or a token (or is empty).
    private func advance(_ stack: [Int32], into out: inout Set<[Int32]>) {
        guard let top = stack.last else { out.insert(stack); return }
        switch grammar.symbols[Int(top)] {
        case .rule(let r):
            let rest = push(Int(top) + 1, onto: Array(stack.dropLast()))
            for a in grammar.alternatives[r] { advance(push(a, onto: rest), into: &out) }
        case .end:
            advance(Array(stack.dropLast()), into: &out)
        case .chars, .token:
            out.insert(stack)
        }
    }

    /// The stacks after character `c`.
    private func step(_ stacks: [[Int32]], _ c: UInt32) -> [[Int32]] {
        var out = Set<[Int32]>()
        for s in stacks {
            guard let top = s.last, case .chars(let cls) = grammar.symbols[Int(top)], cls.contains(c) else { continue }
            advance(push(Int(top) + 1, onto: Array(s.dropLast())), into: &out)
        }
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Whether some stack could take a character whose first bytes are `pending` (the rest unknown).
    private func partialMatch(_ stacks: [[Int32]], _ pending: [UInt8]) -> Bool {
        guard let (lo, hi) = GrammarConstraint.scalarRange(pending) else { return false }
        for s in stacks {
            if let top = s.last, case .chars(let cls) = grammar.symbols[Int(top)], cls.intersects(lo, hi) { return true }
        }
        return false
    }

    /// The scalars a UTF-8 sequence starting with `bytes` can still be; nil for a sequence that cannot start so.
    static func scalarRange(_ bytes: [UInt8]) -> (UInt32, UInt32)? {
        guard let lead = bytes.first else { return nil }
        let n: Int, bits: UInt32
        switch lead {
        case 0xC0...0xDF: n = 2; bits = UInt32(lead & 0x1F)
        case 0xE0...0xEF: n = 3; bits = UInt32(lead & 0x0F)
        case 0xF0...0xF7: n = 4; bits = UInt32(lead & 0x07)
        default: return nil
        }
        if n == 2 && bits < 2 { return nil }   // C0, C1: an ASCII character written in two bytes (overlong)
        var v = bits
        for b in bytes.dropFirst() { v = v << 6 | UInt32(b & 0x3F) }
        let missing = n - bytes.count
        let shift = UInt32(6 * missing)
        // The shortest form only (as llama.cpp's partial match): E0 starts U+0800 at least, F0 U+10000.
        let lo = max(v << shift, n == 3 ? 0x800 : n == 4 ? 0x10000 : 0x80)
        let hi = min((v << shift) | ((1 << shift) - 1), 0x10FFFF)
        return lo <= hi ? (lo, hi) : nil
    }

    private func intern(_ s: State) -> Int32 {
        if let i = ids[s] { return i }
        let i = Int32(states.count)
        states.append(s)
        ids[s] = i
        return i
    }

    /// The state after byte `b` from `state`, or -1 when the grammar refuses it, remembered in `table`. Call with the
    /// lock held.
    private func transition(_ state: Int32, _ b: UInt8) -> Int32 {
        let key = Int(state) << 8 | Int(b)
        if key < table.count, table[key] != -2 { return table[key] }
        let result = computeTransition(state, b)
        GrammarConstraint.remember(&table, key, result)
        return result
    }

    /// Records a transition at `key`, the table grown (with unknowns) to hold it.
    @inline(__always)
    private static func remember(_ table: inout [Int32], _ key: Int, _ result: Int32) {
        if key >= table.count { table.append(contentsOf: repeatElement(-2, count: (key | 0xFF) + 1 - table.count)) }
        table[key] = result
    }

    /// The state after byte `b` from `state` worked out from the stacks (new states interned), or -1. Call with the
    /// lock held.
    private func computeTransition(_ state: Int32, _ b: UInt8) -> Int32 {
        let s = states[Int(state)]
        var result: Int32 = -1
        if s.pending.isEmpty {
            if b < 0x80 {
                let st = step(s.stacks, UInt32(b))
                if !st.isEmpty { result = intern(State(stacks: st, pending: [])) }
            } else if b >= 0xC0 && b <= 0xF7, partialMatch(s.stacks, [b]) {
                result = intern(State(stacks: s.stacks, pending: [b]))
            }
        } else if b & 0xC0 == 0x80 {
            let bytes = s.pending + [b]
            let lead = bytes[0]
            let n = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
            if bytes.count == n {
                var v = UInt32(n == 2 ? lead & 0x1F : n == 3 ? lead & 0x0F : lead & 0x07)
                for x in bytes.dropFirst() { v = v << 6 | UInt32(x & 0x3F) }
                let st = step(s.stacks, v)
                if !st.isEmpty { result = intern(State(stacks: st, pending: [])) }
            } else if partialMatch(s.stacks, bytes) {
                result = intern(State(stacks: s.stacks, pending: bytes))
            }
        }
        return result
    }

    // MARK: - What a generation asks

    /// Whether the grammar is complete in `state` (an end-of-generation token may come).
    public func isComplete(_ state: Int32) -> Bool {
        lock.withLock {
            let s = states[Int(state)]
            return s.pending.isEmpty && s.stacks.contains { $0.isEmpty }
        }
    }

    /// Whether the grammar can take more text in `state` (some stack expects a character or a token).
    public func canContinue(_ state: Int32) -> Bool {
        lock.withLock { !states[Int(state)].stacks.allSatisfy { $0.isEmpty } }
    }

    /// The tokens allowed in `state`, as a bit set over the vocabulary (bit id).
    public func mask(_ state: Int32) -> [UInt64] {
        lock.withLock {
            if let m = masks[state] { return m }
            var m = [UInt64](repeating: 0, count: (trie.vocabularySize + 63) / 64)
            // Depth-first over the trie, pruning where the grammar refuses the byte. The walk is the cost of a new
            // state (a string's state allows most of the vocabulary), so it reads the trie's buffers and a local
            // copy of the transition table directly.
            var table: [Int32] = []
            swap(&table, &self.table)
            let t = trie
            var work: [(node: Int32, state: Int32)] = [(0, state)]
            work.reserveCapacity(4096)
            m.withUnsafeMutableBufferPointer { bits in
                while let (node, st) = work.popLast() {
                    let n = Int(node)
                    if node != 0 {
                        for k in Int(t.tokenStart[n])..<Int(t.tokenEnd[n]) {
                            let id = t.tokenIDs[k]
                            bits[Int(id) >> 6] |= 1 << UInt64(id & 63)
                        }
                    }
                    let first = Int(t.firstChild[n]), base = Int(st) << 8
                    for c in first..<(first + Int(t.childCount[n])) {
                        let key = base | Int(t.edge[c])
                        var ns: Int32 = key < table.count ? table[key] : -2
                        if ns == -2 {
                            ns = computeTransition(st, t.edge[c])
                            GrammarConstraint.remember(&table, key, ns)
                        }
                        if ns >= 0 { work.append((Int32(c), ns)) }
                    }
                }
            }
            swap(&table, &self.table)
            func allow(_ id: Int32) { m[Int(id) >> 6] |= 1 << UInt64(id & 63) }
            // Token references of the grammar (<[id]>, !<[id]>) allow tokens by id.
            let s = states[Int(state)]
            if s.pending.isEmpty {
                for stack in s.stacks {
                    guard let top = stack.last, case .token(let id, let negated) = grammar.symbols[Int(top)] else { continue }
                    if negated {
                        for t in 0..<Int32(trie.vocabularySize) where t != id && !trie.endOfGeneration.contains(t) { allow(t) }
                    } else if id >= 0 && Int(id) < trie.vocabularySize {
                        allow(id)
                    }
                }
            }
            if s.pending.isEmpty && s.stacks.contains(where: { $0.isEmpty }) { for t in trie.endOfGeneration { allow(t) } }
            masks[state] = m
            return m
        }
    }

    /// The tokens allowed in `state`, in id order (the mask's set bits), kept with the mask: generation touches only
    /// these, so that a grammar that allows few tokens costs little per step.
    public func allowed(_ state: Int32) -> [Int32] {
        if let a = lock.withLock({ allowedLists[state] }) { return a }
        let m = mask(state)
        var out: [Int32] = []
        for (w, word) in m.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                out.append(Int32(w << 6 + bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
        lock.withLock { allowedLists[state] = out }
        return out
    }

    /// Whether token `id` is allowed in `state`.
    public func allows(_ state: Int32, _ id: Int32) -> Bool {
        let m = mask(state)
        return id >= 0 && Int(id) < trie.vocabularySize && m[Int(id) >> 6] & (1 << UInt64(id & 63)) != 0
    }

    /// Whether `state`'s mask has been computed (then ``allows(_:_:)`` costs a bit test).
    public func hasMask(_ state: Int32) -> Bool {
        lock.withLock { masks[state] != nil }
    }

    /// Whether token `id` is allowed in `state`, as its bit in ``mask(_:)``, found without the mask when it has not
    /// been computed: the token's text through the byte transitions, its id against the grammar's token
    /// references, an end-of-generation token against the grammar's end. Costs the token's length, not the
    /// vocabulary's, so a draw that needs only the best few tokens asks about those alone.
    public func allowsWithoutMask(_ state: Int32, _ id: Int32) -> Bool {
        guard id >= 0 && Int(id) < trie.vocabularySize else { return false }
        return lock.withLock {
            if let m = masks[state] { return m[Int(id) >> 6] & (1 << UInt64(id & 63)) != 0 }
            let s = states[Int(state)]
            if s.pending.isEmpty {
                for stack in s.stacks {
                    guard let top = stack.last, case .token(let t, let negated) = grammar.symbols[Int(top)] else { continue }
                    if negated ? (t != id && !trie.endOfGeneration.contains(id)) : t == id { return true }
                }
            }
            if trie.endOfGeneration.contains(id) { return s.pending.isEmpty && s.stacks.contains { $0.isEmpty } }
            let lo = Int(trie.pieceStart[Int(id)]), hi = Int(trie.pieceStart[Int(id) + 1])
            if lo == hi { return false }   // no text: never allowed
            var st = state
            for k in lo..<hi {
                st = transition(st, trie.pieceBytes[k])
                if st < 0 { return false }
            }
            return true
        }
    }

    /// The state after token `id` (nil when the grammar refuses it).
    public func accept(_ state: Int32, _ id: Int32) -> Int32? {
        lock.withLock {
            let s = states[Int(state)]
            var results = Set<[Int32]>()
            // Token references first (they match the token itself, not its text).
            if s.pending.isEmpty {
                for stack in s.stacks {
                    guard let top = stack.last, case .token(let t, let negated) = grammar.symbols[Int(top)],
                          (t == id) != negated else { continue }
                    advance(push(Int(top) + 1, onto: Array(stack.dropLast())), into: &results)
                }
            }
            // Then its text, byte by byte.
            let piece = tokenizer.piece(id, special: true)
            var st = state
            for b in piece {
                st = transition(st, b)
                if st < 0 { break }
            }
            if st >= 0 && !piece.isEmpty {
                let t = states[Int(st)]
                if results.isEmpty { return st }
                // Both a token reference and the token's text matched: one state, when the text ends a character.
                if t.pending.isEmpty { results.formUnion(t.stacks) }
            }
            if results.isEmpty { return nil }
            return intern(State(stacks: results.sorted { $0.lexicographicallyPrecedes($1) }, pending: []))
        }
    }

    /// Whether `text` as a whole is a sentence of the grammar (for tests and validation).
    public func accepts(text: String) -> Bool {
        var st = initial
        let ok: Bool = lock.withLock {
            for b in text.utf8 {
                st = transition(st, b)
                if st < 0 { return false }
            }
            return true
        }
        return ok && isComplete(st)
    }

    /// Whether `text` can be continued into a sentence of the grammar (every byte taken).
    public func acceptsPrefix(text: String) -> Bool {
        lock.withLock {
            var st = initial
            for b in text.utf8 {
                st = transition(st, b)
                if st < 0 { return false }
            }
            return true
        }
    }

    /// How many states the matcher has met (for the benchmark's report).
    public var stateCount: Int { lock.withLock { states.count } }
    /// How many states' masks have been computed.
    public var maskCount: Int { lock.withLock { masks.count } }
}

/// Parsed grammars and their compiled constraints, kept across calls (a strategy sends the same grammar again and
/// again): at most `limit` of each, the oldest dropped first.
public final class GrammarCache: @unchecked Sendable {
    public static let shared = GrammarCache()
    private let lock = NSLock()
    private var parsed: [String: Grammar] = [:]
    private var compiled: [String: (tokenizer: ObjectIdentifier, constraint: GrammarConstraint)] = [:]
    private var order: [String] = []
    private let limit = 32

    /// The grammar `text` parses to; a syntax error is `EngineError.badInput("grammar: line L, column C: ...")`.
    public func grammar(_ text: String) throws -> Grammar {
        if let g = lock.withLock({ parsed[text] }) { return g }
        let g: Grammar
        do { g = try Grammar(text) } catch let e as GrammarError { throw EngineError.badInput("grammar: \(e)") }
        lock.withLock {
            parsed[text] = g
            remember(text)
        }
        return g
    }

    /// `text` compiled for `tokenizer`.
    public func constraint(_ text: String, tokenizer: Tokenizer) throws -> GrammarConstraint {
        let key = ObjectIdentifier(tokenizer)
        if let c = lock.withLock({ compiled[text] }), c.tokenizer == key { return c.constraint }
        let c = GrammarConstraint(try grammar(text), tokenizer: tokenizer)
        lock.withLock {
            compiled[text] = (key, c)
            remember(text)
        }
        return c
    }

    private func remember(_ text: String) {
        order.removeAll { $0 == text }
        order.append(text)
        while order.count > limit {
            let old = order.removeFirst()
            parsed[old] = nil
            compiled[old] = nil
        }
    }
}

// Choosing the next token from a row of logits, and log-probability helpers for scoring.

import Foundation

/// Settings for ``Sampler``. The defaults are llama.cpp's.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature. `0` (or below) means greedy: the highest logit after penalties, ties to the lowest id.
    public var temperature: Float = 0.8
    /// Keep only the `topK` most likely tokens; `0` (or at least the vocabulary size) turns it off.
    public var topK: Int = 40
    /// Keep the smallest set of most likely tokens whose probability sums to at least `topP`; `1` turns it off.
    public var topP: Float = 0.95
    /// Drop tokens less likely than `minP` times the most likely one; `0` turns it off.
    public var minP: Float = 0.05
    /// llama.cpp's repetition penalty over the last ``penaltyLastN`` tokens: a positive logit is divided by it,
    /// a negative one multiplied. `1` turns it off.
    public var repetitionPenalty: Float = 1.0
    /// Subtracted once from the logit of every token that occurs in the last ``penaltyLastN`` tokens.
    public var presencePenalty: Float = 0
    /// Subtracted from a token's logit once per occurrence in the last ``penaltyLastN`` tokens.
    public var frequencyPenalty: Float = 0
    /// How many of the most recent tokens the penalties look at; `0` turns penalties off, `-1` means all history.
    public var penaltyLastN: Int = 64
    /// Seed of the random draw; equal seeds give equal draws on every platform.
    public var seed: UInt64 = 0

    /// llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, seed 0.
    public init() {}

    /// Greedy decoding: temperature 0, no truncation, no penalties.
    public static let greedy: SamplingParameters = {
        var p = SamplingParameters()
        p.temperature = 0
        p.topK = 0
        p.topP = 1
        p.minP = 0
        return p
    }()
}

/// A small, fast, deterministic PRNG: xoshiro256** seeded through splitmix64.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Seeds the four state words from `seed` with splitmix64 (never all zero).
    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

/// A candidate token with its (penalised) logit.
struct Candidate {
    var logit: Float
    var id: Int32

    /// The candidate order: descending logit, ties by ascending id.
    @inline(__always) static func before(_ a: Candidate, _ b: Candidate) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
    }
}

/// Picks tokens from logits rows.
///
/// The chain, in order (llama.cpp's default chain without its typical-p step):
/// 1. **penalties** (repetition, presence, frequency) over the last `penaltyLastN` ids of the history;
/// 2. **temperature 0** stops here with the argmax (ties to the lowest id);
/// 3. **top-k**: the `topK` highest logits (partial selection with a heap, no full sort);
/// 4. **top-p**: the shortest prefix, by descending probability, whose probability (normalised over the
///    top-k survivors) reaches `topP`;
/// 5. **min-p**: drop tokens whose probability is below `minP` times the highest;
/// 6. **temperature**: the survivors' logits are divided by `temperature` and softmaxed;
/// 7. **draw** one token with the seeded xoshiro256** generator (one 64-bit draw per call).
///
/// Steps 3–5 work on temperature-1 probabilities; at least one token always survives. Candidates are ordered by
/// descending logit, ties by ascending id (or left in id order when nothing needs an order), so a draw depends only
/// on the logits, the history and the seed, on every platform. Single-threaded. Scratch buffers are kept between
/// calls, so a call allocates nothing once they have grown, except that top-p without top-k sorts the surviving
/// candidates (all of them when min-p is off too), which may take a temporary buffer.
public struct Sampler {
    /// The settings in use.
    public let parameters: SamplingParameters
    private var rng: Xoshiro256StarStar
    // Scratch, grown on demand and reused.
    private var work: [Float] = []          // penalised copy of the row
    private var cands: [Candidate] = []
    private var recent: [Int32] = []
    private var cumulative: [Double] = []   // running weights of a rejection draw

    /// A sampler with the given settings; its generator starts from `p.seed`.
    public init(_ p: SamplingParameters) {
        parameters = p
        rng = Xoshiro256StarStar(seed: p.seed)
    }

    /// Restarts the random generator from `seed` (the parameters' seed when `nil`).
    public mutating func reset(seed: UInt64? = nil) {
        rng = Xoshiro256StarStar(seed: seed ?? parameters.seed)
    }

    /// Picks the next token; `history` is the ids so far (prompt + generated) for the penalties. Does not allocate
    /// per call beyond amortised scratch.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, history: some Collection<Int32>) -> Int32 {
        let n = logits.count
        precondition(n > 0, "empty logits row")
        let p = parameters
        if p.temperature > 0 && cands.count < n { cands = [Candidate](repeating: Candidate(logit: 0, id: 0), count: n) }
        var c = cands
        cands = []  // keep the buffer uniquely referenced while it is borrowed below
        defer { cands = c }
        var r = rng
        defer { rng = r }
        // Steps 2–7 on the penalised row.
        return withPenalisedRow(logits, history: history) { row in
            if p.temperature <= 0 { return LogProbs.argmax(row) }
            return c.withUnsafeMutableBufferPointer { Sampler.truncateAndDraw(row, p, $0, &r) }
        }
    }

    /// ``sample(_:history:)`` for an array row.
    public mutating func sample(_ logits: [Float], history: some Collection<Int32>) -> Int32 {
        logits.withUnsafeBufferPointer { sample($0, history: history) }
    }

    /// Whether ``sample(_:history:allowing:limit:)`` can draw under these settings: greedy, or a top-k smaller than
    /// the vocabulary of `n` tokens (then only the best `k` allowed tokens matter).
    public func drawsFromBest(of n: Int) -> Bool {
        parameters.temperature <= 0 || (parameters.topK > 0 && parameters.topK < n)
    }

    /// Draws the token that ``sample(_:history:)`` would draw from `logits` with every token `allowing` refuses set
    /// to −∞, without asking about the whole vocabulary: it asks about the candidates best first and stops at the
    /// `k` best allowed ones (one when greedy), the only ones the draw can reach. It asks about the best `4k` (at
    /// least 64, at most `limit`); nil, with the random generator untouched, when fewer than `k` of them are allowed
    /// or the best allowed token's logit is not finite (the caller then masks the row: a grammar that allows few
    /// tokens has a cheap mask). Needs ``drawsFromBest(of:)``.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, history: some Collection<Int32>,
                                allowing: (Int32) -> Bool, limit: Int) -> Int32? {
        let n = logits.count
        precondition(n > 0 && drawsFromBest(of: n), "empty logits row, or a draw that needs the whole row")
        let p = parameters
        if cands.count < n { cands = [Candidate](repeating: Candidate(logit: 0, id: 0), count: n) }
        var c = cands
        cands = []   // keep the buffer uniquely referenced while it is borrowed below
        defer { cands = c }
        var r = rng
        let id: Int32? = withPenalisedRow(logits, history: history) { row in
            c.withUnsafeMutableBufferPointer { cb in
                let k = p.temperature <= 0 ? 1 : p.topK
                // The best m candidates, best first with ties by id as in the masked row; the first k allowed of
                // them are the masked row's top k, unless fewer than k are allowed there.
                let m = min(max(4 * k, 64), n, max(limit, k))
                let count = selectTopK(row, k: m, into: cb)
                var kept = 0
                for i in 0..<count where kept < k {
                    if allowing(cb[i].id) { cb[kept] = cb[i]; kept += 1 }
                }
                // Fewer than k allowed among them: others further down may be, unless every token was asked about.
                if kept < k && count == m && m < n { return nil }
                guard kept > 0, cb[0].logit.isFinite else { return nil }
                if p.temperature <= 0 { return cb[0].id }
                return Sampler.drawFromCandidates(cb, count: kept, sorted: true, p, &r)
            }
        }
        if id != nil { rng = r }
        return id
    }

    /// Whether ``sample(_:history:allowing:tries:)`` can draw under these settings: a temperature, and no
    /// truncation (top-k off or as large as the vocabulary of `n` tokens, top-p 1, min-p 0).
    public func drawsFromWhole(of n: Int) -> Bool {
        let p = parameters
        return p.temperature > 0 && (p.topK <= 0 || p.topK >= n) && p.topP >= 1 && p.minP <= 0
    }

    /// Draws from the distribution `sample(_:history:)` draws from, restricted to the tokens `allowing` admits, by
    /// rejection: a draw from the whole row, again while the token drawn is refused, `tries` times at most. A draw
    /// kept this way has the restricted distribution exactly (each token's probability over the allowed ones'
    /// total), and asks about one token per try instead of the vocabulary; its random stream is its own (one
    /// number per try), not that of a draw from the masked row. Nil when every try was refused: the caller then
    /// draws from the masked row with the generator as the tries left it (which keeps the distribution exact).
    /// Needs ``drawsFromWhole(of:)``.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, history: some Collection<Int32>,
                                allowing: (Int32) -> Bool, tries: Int) -> Int32? {
        let n = logits.count
        precondition(n > 0 && drawsFromWhole(of: n), "empty logits row, or a truncated draw")
        let p = parameters
        if cumulative.count < n { cumulative = [Double](repeating: 0, count: n) }
        var cum = cumulative
        cumulative = []   // keep the buffer uniquely referenced while it is borrowed below
        defer { cumulative = cum }
        var r = rng
        defer { rng = r }
        return withPenalisedRow(logits, history: history) { row in
            cum.withUnsafeMutableBufferPointer { cb in
                var maxLogit = -Float.infinity
                for v in row where v > maxLogit { maxLogit = v }
                guard maxLogit.isFinite else { return nil }
                // Cumulative weights at the temperature (NaNs weigh nothing), then each try a binary search.
                let invT = 1 / p.temperature
                var total = 0.0
                for i in 0..<n {
                    let v = row[i]
                    if !v.isNaN { total += Double(expf((v - maxLogit) * invT)) }
                    cb[i] = total
                }
                for _ in 0..<tries {
                    let u = r.nextUnit() * total
                    var lo = 0, hi = n - 1   // the first i with cumulative > u
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if cb[mid] > u { hi = mid } else { lo = mid + 1 }
                    }
                    if allowing(Int32(lo)) { return Int32(lo) }
                }
                return nil
            }
        }
    }

    /// `body` on `logits` after the penalties (a copy in the scratch buffer when one applies).
    private mutating func withPenalisedRow<R>(_ logits: UnsafeBufferPointer<Float>, history: some Collection<Int32>,
                                              _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        let p = parameters, n = logits.count
        let penalise = p.penaltyLastN != 0 && !history.isEmpty
            && (p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0)
        guard penalise else { return body(logits) }
        if work.count < n { work = [Float](repeating: 0, count: n) }
        var w = work
        work = []   // keep the buffer uniquely referenced while it is borrowed below
        defer { work = w }
        return w.withUnsafeMutableBufferPointer { wb in
            let row = UnsafeMutableBufferPointer(rebasing: wb[0..<n])
            _ = row.initialize(from: logits)
            applyPenalties(row, history: history)
            return body(UnsafeBufferPointer(row))
        }
    }

    private mutating func applyPenalties(_ w: UnsafeMutableBufferPointer<Float>, history: some Collection<Int32>) {
        let p = parameters
        recent.removeAll(keepingCapacity: true)
        if p.penaltyLastN < 0 {
            recent.append(contentsOf: history)
        } else {
            recent.append(contentsOf: history.suffix(p.penaltyLastN))
        }
        recent.sort()
        var i = 0
        while i < recent.count {
            let id = recent[i]
            var j = i + 1
            while j < recent.count && recent[j] == id { j += 1 }
            let count = Float(j - i)
            i = j
            guard id >= 0 && Int(id) < w.count else { continue }
            var l = w[Int(id)]
            if p.repetitionPenalty != 1 {
                l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            }
            l -= count * p.frequencyPenalty + p.presencePenalty
            w[Int(id)] = l
        }
    }

    private static func truncateAndDraw(_ row: UnsafeBufferPointer<Float>, _ p: SamplingParameters,
                                        _ cands: UnsafeMutableBufferPointer<Candidate>,
                                        _ rng: inout Xoshiro256StarStar) -> Int32 {
        let n = row.count
        // Candidates: the top-k in order, or the whole row in id order.
        var count: Int
        var sorted: Bool
        if p.topK > 0 && p.topK < n {
            count = selectTopK(row, k: p.topK, into: cands)
            sorted = true
        } else {
            count = 0
            for i in 0..<n where !row[i].isNaN {
                cands[count] = Candidate(logit: row[i], id: Int32(i)); count += 1
            }
            sorted = false
        }
        if count == 0 { return 0 }
        if let id = drawFromCandidates(cands, count: count, sorted: sorted, p, &rng) { return id }
        return LogProbs.argmax(row)
    }

    /// Steps 4–7 on the candidates `cands[0..<count]` (sorted best first when `sorted`): min-p, top-p, temperature
    /// and the draw. Nil when no candidate has a finite logit (the caller takes the row's argmax).
    private static func drawFromCandidates(_ cands: UnsafeMutableBufferPointer<Candidate>, count: Int, sorted: Bool,
                                           _ p: SamplingParameters, _ rng: inout Xoshiro256StarStar) -> Int32? {
        var count = count, sorted = sorted
        var maxLogit = -Float.infinity
        for i in 0..<count { maxLogit = max(maxLogit, cands[i].logit) }
        if maxLogit == -Float.infinity || maxLogit == .infinity { return nil }

        if p.topP < 1 || p.minP > 0 {
            // Normaliser of the top-k survivors at temperature 1 (top-p's probabilities are relative to it).
            var z = 0.0
            for i in 0..<count { z += Double(expf(cands[i].logit - maxLogit)) }
            if p.minP > 0 {
                // p_i >= minP * p_max  <=>  l_i >= max + log(minP); the most likely token always survives.
                let threshold = min(maxLogit + logf(p.minP), maxLogit)
                var kept = 0
                for i in 0..<count where cands[i].logit >= threshold { cands[kept] = cands[i]; kept += 1 }
                count = kept
            }
            if p.topP < 1 {
                if !sorted {
                    var survivors = UnsafeMutableBufferPointer<Candidate>(rebasing: cands[0..<count])
                    survivors.sort(by: Candidate.before)
                    sorted = true
                }
                // Top-p keeps a prefix of the sorted order and so does min-p; applied one after the other they
                // keep the shorter prefix. Walking min-p's survivors with the normaliser from before min-p finds
                // top-p's cut whenever it falls among them; otherwise min-p's set is the shorter one.
                let target = Double(p.topP) * z
                var cum = 0.0
                for i in 0..<count {
                    cum += Double(expf(cands[i].logit - maxLogit))
                    if cum >= target { count = i + 1; break }
                }
            }
        }

        // Temperature and draw.
        let invT = 1 / p.temperature
        var total = 0.0
        for i in 0..<count { total += Double(expf((cands[i].logit - maxLogit) * invT)) }
        let u = rng.nextUnit() * total
        var cum = 0.0
        var last = 0
        for i in 0..<count {
            let w = Double(expf((cands[i].logit - maxLogit) * invT))
            if w > 0 { last = i }
            cum += w
            if u < cum { return cands[i].id }
        }
        // Rounding left u at or past the total: the last token with non-zero weight.
        return cands[last].id
    }
}

/// Writes the `k` highest entries of `row` (NaNs skipped) into `out[0..<k]`, sorted by descending value, ties by
/// ascending id; returns how many were written. One pass with a size-k min-heap whose root is the worst kept entry,
/// then a heap sort of the k: O(n log k), no full sort of the row.
func selectTopK(_ row: UnsafeBufferPointer<Float>, k: Int, into out: UnsafeMutableBufferPointer<Candidate>) -> Int {
    precondition(k <= out.count)
    // "a is worse than b": lower logit, or equal logit and higher id.
    @inline(__always) func worse(_ a: Candidate, _ b: Candidate) -> Bool {
        a.logit < b.logit || (a.logit == b.logit && a.id > b.id)
    }
    @inline(__always) func siftDown(_ start: Int, _ size: Int) {
        var i = start
        while true {
            let l = 2 * i + 1
            if l >= size { return }
            var c = l
            if l + 1 < size && worse(out[l + 1], out[l]) { c = l + 1 }
            guard worse(out[c], out[i]) else { return }
            out.swapAt(i, c)
            i = c
        }
    }
    var size = 0
    var i = 0
    while i < row.count && size < k {
        let v = row[i]
        if !v.isNaN { out[size] = Candidate(logit: v, id: Int32(i)); size += 1 }
        i += 1
    }
    if size > 1 { for s in stride(from: size / 2 - 1, through: 0, by: -1) { siftDown(s, size) } }
    // Later ids lose ties, so only a strictly greater value displaces the root.
    if size > 0 {
        while i < row.count {
            let v = row[i]
            if v > out[0].logit {
                out[0] = Candidate(logit: v, id: Int32(i))
                siftDown(0, size)
            }
            i += 1
        }
    }
    // Heap sort: move the worst to the end repeatedly, leaving best-first order.
    var end = size
    while end > 1 {
        end -= 1
        out.swapAt(0, end)
        siftDown(0, end)
    }
    return size
}

/// Log-softmax helpers for scoring a logits row.
public enum LogProbs {
    /// log Σ exp(row), computed stably (shifted by the maximum): each e^(v − max) by the vectorized float
    /// exponential (relative error under 4e-7), summed in Double. Within 1e-6 of ``logSumExpReference(_:)``
    /// (tested); every token's log-probability goes through it, so it must not cost much beside the forward pass.
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Double {
        let n = row.count
        guard let p = row.baseAddress, n > 0 else { return -.infinity }
        // The maximum (NaNs are skipped here, and make the sum NaN below).
        var mv = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            mv = mv.replacing(with: v, where: v .> mv)
            i += 8
        }
        var m = -Float.infinity
        for k in 0..<8 where mv[k] > m { m = mv[k] }
        while i < n { if p[i] > m { m = p[i] }; i += 1 }
        if m == -Float.infinity { return -.infinity }
        if m == .infinity { return .infinity }
        let mb = SIMD8<Float>(repeating: m)
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>()
        i = 0
        while i + 8 <= n {
            let e = VecOps.exp8(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) - mb)
            s0 += SIMD4<Double>(e.lowHalf)
            s1 += SIMD4<Double>(e.highHalf)
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < n { s += Double(VecOps.expScalar(p[i] - m)); i += 1 }
        return Double(m) + Foundation.log(s)
    }

    /// The definition ``logSumExp(_:)`` is tested against: Double exponentials, one element at a time.
    public static func logSumExpReference(_ row: UnsafeBufferPointer<Float>) -> Double {
        var m = -Float.infinity
        for v in row where v > m { m = v }
        if m == -Float.infinity || m.isNaN { return Double(m) }
        if m == .infinity { return .infinity }
        let md = Double(m)
        var s = 0.0
        for v in row { s += Foundation.exp(Double(v) - md) }
        return md + Foundation.log(s)
    }

    /// The log-probability the row's softmax gives token `id`.
    public static func logProb(_ row: UnsafeBufferPointer<Float>, _ id: Int32) -> Double {
        Double(row[Int(id)]) - logSumExp(row)
    }

    /// The entropy of the row's softmax in nats, −Σ p log p, with Double accumulation (0 for a one-hot row).
    public static func entropy(_ row: UnsafeBufferPointer<Float>) -> Double {
        let lse = logSumExp(row)
        guard lse.isFinite else { return .nan }
        var h = 0.0
        for v in row where v > -Float.infinity {
            let lp = Double(v) - lse
            h -= Foundation.exp(lp) * lp
        }
        return h
    }

    /// The `k` most likely tokens with their log-probabilities, most likely first (ties: lower id first).
    public static func topK(_ row: UnsafeBufferPointer<Float>, _ k: Int) -> [(id: Int32, logprob: Float)] {
        let k = min(k, row.count)
        guard k > 0 else { return [] }
        let lse = logSumExp(row)
        var buf = [Candidate](repeating: Candidate(logit: 0, id: 0), count: k)
        let count = buf.withUnsafeMutableBufferPointer { selectTopK(row, k: k, into: $0) }
        return buf[0..<count].map { (id: $0.id, logprob: Float(Double($0.logit) - lse)) }
    }

    /// The index of the largest value (ties to the lowest index; NaNs ignored; 0 if none is a number).
    public static func argmax(_ row: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bestValue = -Float.infinity
        var found = false
        for i in 0..<row.count {
            let v = row[i]
            if v.isNaN { continue }
            if !found || v > bestValue { best = i; bestValue = v; found = true }
        }
        return Int32(best)
    }

    /// ``logSumExp(_:)`` for an array.
    public static func logSumExp(_ row: [Float]) -> Double { row.withUnsafeBufferPointer { logSumExp($0) } }
    /// ``logProb(_:_:)`` for an array.
    public static func logProb(_ row: [Float], _ id: Int32) -> Double { row.withUnsafeBufferPointer { logProb($0, id) } }
    /// ``entropy(_:)`` for an array.
    public static func entropy(_ row: [Float]) -> Double { row.withUnsafeBufferPointer { entropy($0) } }
    /// ``topK(_:_:)`` for an array.
    public static func topK(_ row: [Float], _ k: Int) -> [(id: Int32, logprob: Float)] {
        row.withUnsafeBufferPointer { topK($0, k) }
    }
}


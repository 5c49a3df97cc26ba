// Attention over the KV cache, two ways.
//
// `attendReference` is the definition: one query head and one cached position at a time, an exact softmax with a
// Double sum. It is the truth the tests hold the fast kernel to, and what the exact path runs.
//
// `attendBlocked` is what the fast path runs, in the manner of flash attention: the cached keys go by in blocks of
// 32 positions (widened to f32 once per block), scores for 8 positions come from vertical multiply-adds over the
// cache's transposed key blocks, an online softmax rescales the running sums as the maximum grows, and each key and
// value row is read once for all the query heads that share it and for every query row of a block of 8. When
// decoding, a query row's keys are split into chunks of 256 positions that run on different threads and are merged
// afterwards, so that one sequence still uses every core.
import Foundation

/// Positions per key block of the blocked kernel (a multiple of 8).
let attentionKeyBlock = 32
/// Query rows per work unit of the blocked kernel.
let attentionRowBlock = 8
/// Key positions per chunk when one query row's keys are split across threads (a multiple of the key block).
let attentionChunk = 256

/// Which attention implementation a forward pass runs.
enum AttentionKernel {
    case reference, blocked
}

/// One unit of blocked attention: query rows `r0..<r1` of the batch (all in one segment), the query heads sharing KV
/// head `g`, over key positions `k0..<k1` split into `chunks` pieces.
struct AttentionUnit {
    var segment: Int, g: Int, r0: Int, r1: Int, k0: Int, k1: Int, chunks: Int, firstItem: Int
    /// Where a split unit's partial results start in the shared buffer.
    var partial: Int
}

/// Per-thread and shared buffers of the blocked kernel, grown on demand.
final class AttentionScratch {
    var units: [AttentionUnit] = []
    var keys: [UnsafeMutablePointer<Float>] = []       // per thread: widened key blocks
    var values: [UnsafeMutablePointer<Float>] = []     // per thread: widened value rows
    var state: [UnsafeMutablePointer<Float>] = []      // per thread: m, l and the accumulator per query
    var partials = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var partialCapacity = 0
    var perThread = 0

    func ensure(threads: Int, hd: Int, vdh: Int, queries: Int, partialFloats: Int) {
        let need = max(attentionKeyBlock * max(hd, vdh), queries * (vdh + 2))
        if threads != keys.count || need > perThread {
            for p in keys + values + state { p.deallocate() }
            perThread = max(need, perThread)
            // Zeroed: the score loop reads all four key blocks even when fewer are filled (lanes it never uses),
            // so they must hold ordinary numbers, never garbage that might be a subnormal or a NaN.
            keys = (0..<threads).map { _ in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: attentionKeyBlock * hd)
                p.initialize(repeating: 0, count: attentionKeyBlock * hd)
                return p
            }
            values = (0..<threads).map { _ in .allocate(capacity: attentionKeyBlock * vdh) }
            state = (0..<threads).map { _ in .allocate(capacity: perThread) }
        }
        if partialFloats > partialCapacity {
            partials.deallocate()
            partialCapacity = max(partialFloats, partialCapacity * 2)
            partials = .allocate(capacity: partialCapacity)
        }
    }
}

extension Transformer {
    /// Causal (optionally sliding-window) attention of the batch's queries (`scratch.q`) over each row's cache,
    /// into `scratch.attn`. The batch's own keys and values are already in the caches.
    func attention(layer il: Int, segments: [Segment], rowSegment: UnsafeBufferPointer<Int>,
                   rowPos: UnsafeBufferPointer<Int>, T: Int, window: Int) {
        switch precision == .exact ? .reference : attentionKernel {
        case .reference: attendReference(layer: il, segments: segments, rowSegment: rowSegment, rowPos: rowPos, T: T, window: window)
        case .blocked: attendBlocked(layer: il, segments: segments, rowPos: rowPos, window: window)
        }
    }

    /// The definition, one (row, head) at a time.
    func attendReference(layer il: Int, segments: [Segment], rowSegment: UnsafeBufferPointer<Int>,
                         rowPos: UnsafeBufferPointer<Int>, T: Int, window: Int) {
        let c = config, s = scratch
        let hd = c.headDim, vdh = c.valueDim, nh = c.headCount, nkv = c.kvHeadCount
        let group = nh / nkv
        let scale = c.attentionScale, cap = c.attentionSoftcap
        pool.run { tid in
            let nt = pool.threadCount
            let scores = s.scores[tid]
            var item = tid
            while item < T * nh {
                defer { item += nt }
                let t = item / nh, h = item % nh
                let pos = rowPos[t]
                let cache = segments[rowSegment[t]].cache
                let first = window > 0 ? max(0, pos - window + 1) : 0
                let q = s.q + t * nh * hd + h * hd
                let g = h / group
                var mx = -Float.infinity
                for j in first...pos {
                    var dot: Float = 0
                    for d in 0..<hd { dot += q[d] * cache.key(il, j, g, d) }
                    scores[j] = cap > 0 ? cap * tanhf(dot * scale / cap) : dot * scale
                    mx = max(mx, scores[j])
                }
                var sum = 0.0
                for j in first...pos {
                    let e = expf(scores[j] - mx)
                    scores[j] = e
                    sum += Double(e)
                }
                let inv = Float(1 / sum)
                let o = s.attn + t * nh * vdh + h * vdh
                o.initialize(repeating: 0, count: vdh)
                for j in first...pos {
                    let p = scores[j] * inv
                    for d in 0..<vdh { o[d] += p * cache.value(il, j, g, d) }
                }
            }
        }
    }

    /// The fast kernel (see the file's header).
    func attendBlocked(layer il: Int, segments: [Segment], rowPos: UnsafeBufferPointer<Int>, window: Int) {
        let c = config, s = scratch, a = attentionScratch
        let hd = c.headDim, vdh = c.valueDim, nh = c.headCount, nkv = c.kvHeadCount
        let group = nh / nkv
        let nt = pool.threadCount
        let od = nh * vdh
        let scale = c.attentionScale, cap = c.attentionSoftcap

        // Units: per segment, per KV head, blocks of query rows; each unit's key range is split into chunks when
        // there are too few units to keep the threads busy.
        a.units.removeAll(keepingCapacity: true)
        for (si, seg) in segments.enumerated() {
            var r0 = seg.row
            while r0 < seg.row + seg.count {
                let r1 = min(r0 + attentionRowBlock, seg.row + seg.count)
                let lastPos = rowPos[r1 - 1], firstPos = rowPos[r0]
                let k0 = (window > 0 ? max(0, firstPos - window + 1) : 0) / 8 * 8
                for g in 0..<nkv {
                    a.units.append(AttentionUnit(segment: si, g: g, r0: r0, r1: r1, k0: k0, k1: lastPos + 1,
                                                 chunks: 1, firstItem: 0, partial: 0))
                }
                r0 = r1
            }
        }
        var items = 0, partialFloats = 0
        let perQuery = vdh + 2
        for i in a.units.indices {
            // A single query row (decoding) splits its keys into chunks of `attentionChunk` positions so that every
            // thread has work. The split depends on the key range alone, never on the batch or the thread count,
            // so a sequence gets the same numbers alone or batched with others, on any number of threads.
            if a.units[i].r1 - a.units[i].r0 == 1 {
                a.units[i].chunks = max(1, (a.units[i].k1 - a.units[i].k0 + attentionChunk - 1) / attentionChunk)
            }
            a.units[i].firstItem = items
            items += a.units[i].chunks
            a.units[i].partial = partialFloats
            if a.units[i].chunks > 1 {
                partialFloats += a.units[i].chunks * (a.units[i].r1 - a.units[i].r0) * group * perQuery
            }
        }
        a.ensure(threads: nt, hd: hd, vdh: vdh, queries: attentionRowBlock * group, partialFloats: partialFloats)

        let units = a.units
        do {
            pool.run { tid in
                var unitIndex = 0
                var item = tid
                while item < items {
                    defer { item += nt }
                    while unitIndex + 1 < units.count && units[unitIndex + 1].firstItem <= item { unitIndex += 1 }
                    while units[unitIndex].firstItem > item { unitIndex -= 1 }
                    let u = units[unitIndex]
                    let chunk = item - u.firstItem
                    // This chunk's keys: whole key blocks, the last chunk taking the rest.
                    let blocks = (u.k1 - u.k0 + attentionKeyBlock - 1) / attentionKeyBlock
                    let b0 = chunk * blocks / u.chunks, b1 = (chunk + 1) * blocks / u.chunks
                    let ck0 = u.k0 + b0 * attentionKeyBlock, ck1 = min(u.k1, u.k0 + b1 * attentionKeyBlock)
                    let cache = segments[u.segment].cache
                    let st = a.state[tid]
                    let nq = (u.r1 - u.r0) * group
                    let ms = st, ls = st + nq, acc = st + 2 * nq
                    ms.initialize(repeating: -.infinity, count: nq)
                    ls.initialize(repeating: 0, count: nq)
                    acc.initialize(repeating: 0, count: nq * vdh)
                    if ck0 < ck1 {
                        attendChunk(cache: cache, layer: il, g: u.g, k0: ck0, k1: ck1, rows: u.r0..<u.r1,
                                    rowPos: rowPos, window: window, q: s.q, qStride: nh * hd, group: group,
                                    hd: hd, vdh: vdh, scale: scale, cap: cap, kt: a.keys[tid], vt: a.values[tid],
                                    m: ms, l: ls, acc: acc)
                    }
                    if u.chunks == 1 {
                        for qi in 0..<nq {
                            let r = u.r0 + qi / group, h = u.g * group + qi % group
                            let o = s.attn + r * od + h * vdh
                            let inv = ls[qi] > 0 ? 1 / ls[qi] : 0
                            VecOps.scaleCopy(acc + qi * vdh, inv, o, vdh)
                        }
                    } else {
                        let p = a.partials + u.partial + chunk * nq * perQuery
                        for qi in 0..<nq {
                            p[qi * perQuery] = ms[qi]
                            p[qi * perQuery + 1] = ls[qi]
                            (p + qi * perQuery + 2).update(from: acc + qi * vdh, count: vdh)
                        }
                    }
                }
            }
        }

        // Merge the chunks of split units: o = Σ acc_c·e^(m_c−M) / Σ l_c·e^(m_c−M).
        guard partialFloats > 0 else { return }
        pool.parallelFor(units.count) { range in
            for ui in range where units[ui].chunks > 1 {
                let u = units[ui]
                let nq = (u.r1 - u.r0) * group
                for qi in 0..<nq {
                    let r = u.r0 + qi / group, h = u.g * group + qi % group
                    let o = s.attn + r * od + h * vdh
                    var M = -Float.infinity
                    for cidx in 0..<u.chunks { M = max(M, a.partials[u.partial + (cidx * nq + qi) * perQuery]) }
                    var L: Float = 0
                    o.initialize(repeating: 0, count: vdh)
                    for cidx in 0..<u.chunks {
                        let p = a.partials + u.partial + (cidx * nq + qi) * perQuery
                        guard p[0] > -.infinity else { continue }
                        let w = VecOps.expScalar(p[0] - M)
                        L += p[1] * w
                        VecOps.axpy(w, p + 2, o, vdh)
                    }
                    VecOps.scale(o, L > 0 ? 1 / L : 0, vdh)
                }
            }
        }
    }
}

/// Attends query rows `rows` (the heads of KV head `g`'s group) over key positions `k0..<k1` of one cache layer
/// (`k0` a multiple of 8), updating each query's running maximum `m`, sum `l` and accumulator `acc`.
@inline(__always)
private func attendChunk(cache: KVCache, layer il: Int, g: Int, k0: Int, k1: Int, rows: Range<Int>,
                         rowPos: UnsafeBufferPointer<Int>, window: Int, q: UnsafeMutablePointer<Float>,
                         qStride: Int, group: Int, hd: Int, vdh: Int, scale: Float, cap: Float,
                         kt: UnsafeMutablePointer<Float>, vt: UnsafeMutablePointer<Float>,
                         m: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>,
                         acc: UnsafeMutablePointer<Float>) {
    let nkv = cache.kvHeads
    let P = KVCache.pagePositions
    let eb = cache.elementBytes
    let blockElems = hd * 8
    let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
    var kb = k0
    while kb < k1 {
        let n = min(attentionKeyBlock, k1 - kb)
        let nb = (n + 7) / 8
        // Widen this block's keys (whole 8-position blocks of head g) and values (n rows) to f32.
        // (An 8-position block lies within one page; a 32-position block may straddle two when `kb` is not a
        // multiple of 32, under a sliding window.)
        for b in 0..<nb {
            let p = kb + 8 * b
            let K = UnsafeRawPointer(cache.keyPage(il, p / P))
            let src = (((p % P) / 8) * nkv + g) * blockElems
            if cache.half { VecOps.f16ToF32(K + src * eb, kt + b * blockElems, blockElems) }
            else { (kt + b * blockElems).update(from: (K + src * eb).assumingMemoryBound(to: Float.self), count: blockElems) }
        }
        var j = 0
        while j < n {
            let p = kb + j, run = min(n - j, P - p % P)
            let V = UnsafeRawPointer(cache.valuePage(il, p / P))
            let src = ((p % P) * nkv + g) * vdh
            for u in 0..<run {
                let from = V + (src + u * nkv * vdh) * eb, to = vt + (j + u) * vdh
                if cache.half { VecOps.f16ToF32(from, to, vdh) }
                else { to.update(from: from.assumingMemoryBound(to: Float.self), count: vdh) }
            }
            j += run
        }
        for r in rows {
            let pos = rowPos[r]
            let first = window > 0 ? max(0, pos - window + 1) : 0
            let lo = max(first, kb), hi = min(pos + 1, kb + n)
            if lo >= hi { continue }
            let bLo = (lo - kb) / 8, bHi = (hi - kb + 7) / 8
            // Online-softmax update of query qi with the scores `sc` of this key block (lanes of blocks bLo..<bHi).
            @inline(__always) func update(_ qi: Int, _ sc: inout (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
                var bm = -Float.infinity
                withUnsafeMutableBytes(of: &sc) { raw in
                    let v = raw.baseAddress!.assumingMemoryBound(to: SIMD8<Float>.self)
                    for b in bLo..<bHi {
                        var x = v[b] * scale
                        // Gemma 2's soft cap, c·tanh(s/c), before the mask (tanh would lift a masked −∞ to −c).
                        if cap > 0 { for l in 0..<8 { x[l] = cap * tanhf(x[l] / cap) } }
                        // Only the blocks holding `lo` or `hi` have lanes to mask. (Float lane positions: Swift
                        // lowers an Int32 lane comparison to one store and reload per lane, which had cost half
                        // of this function's time; float comparisons become one vcmpps.)
                        let base = kb + 8 * b
                        if base < lo || base + 8 > hi {
                            x.replace(with: -.infinity, where: SIMD8<Float>(repeating: Float(base - lo)) + lanes .< 0)
                            x.replace(with: -.infinity, where: SIMD8<Float>(repeating: Float(base - hi)) + lanes .>= 0)
                        }
                        v[b] = x
                        bm = max(bm, hmax(x))
                    }
                    let mOld = m[qi]
                    let mNew = max(mOld, bm)
                    let corr = mOld == -.infinity ? 0 : VecOps.expScalar(mOld - mNew)
                    var sum: Float = 0
                    let mv = SIMD8<Float>(repeating: mNew)
                    for b in bLo..<bHi {
                        let e = VecOps.exp8(v[b] - mv)
                        v[b] = e
                        sum += e.sum()
                    }
                    l[qi] = l[qi] * corr + sum
                    m[qi] = mNew
                    // acc = acc·corr + Σ_j p_j · V_j over the block's positions lo..<hi.
                    let ps = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                    accumulate(acc + qi * vdh, corr: corr, p: ps + (lo - kb), v: vt + (lo - kb) * vdh,
                               count: hi - lo, vdh: vdh)
                }
            }
            // Scores Σ_d q[d] · K[d][lane] of all four 8-position blocks (past `nb`, the lanes read stale widened
            // keys and are never used), two heads at a time so that each key load serves both.
            let qRow = q + r * qStride + g * group * hd
            var hl = 0
            while hl + 2 <= group {
                let qa = qRow + hl * hd, qb = qa + hd
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
                for d in 0..<hd {
                    let p = kt + d &* 8
                    let k0 = VecOps.ld(p, 0), k1 = VecOps.ld(p, blockElems)
                    let k2 = VecOps.ld(p, 2 &* blockElems), k3 = VecOps.ld(p, 3 &* blockElems)
                    let xa = SIMD8<Float>(repeating: qa[d]), xb = SIMD8<Float>(repeating: qb[d])
                    a0 = a0.addingProduct(xa, k0); a1 = a1.addingProduct(xa, k1)
                    a2 = a2.addingProduct(xa, k2); a3 = a3.addingProduct(xa, k3)
                    b0 = b0.addingProduct(xb, k0); b1 = b1.addingProduct(xb, k1)
                    b2 = b2.addingProduct(xb, k2); b3 = b3.addingProduct(xb, k3)
                }
                let qi = (r - rows.lowerBound) * group + hl
                var sa = (a0, a1, a2, a3), sb = (b0, b1, b2, b3)
                update(qi, &sa)
                update(qi + 1, &sb)
                hl += 2
            }
            if hl < group {
                let qa = qRow + hl * hd
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                for d in 0..<hd {
                    let p = kt + d &* 8
                    let xa = SIMD8<Float>(repeating: qa[d])
                    a0 = a0.addingProduct(xa, VecOps.ld(p, 0)); a1 = a1.addingProduct(xa, VecOps.ld(p, blockElems))
                    a2 = a2.addingProduct(xa, VecOps.ld(p, 2 &* blockElems)); a3 = a3.addingProduct(xa, VecOps.ld(p, 3 &* blockElems))
                }
                var sa = (a0, a1, a2, a3)
                update((r - rows.lowerBound) * group + hl, &sa)
            }
        }
        kb += attentionKeyBlock
    }
}

/// acc = acc·corr + Σ_j p[j]·v[j], 64 columns at a time in registers.
@inline(__always)
private func accumulate(_ acc: UnsafeMutablePointer<Float>, corr: Float, p: UnsafePointer<Float>,
                        v: UnsafePointer<Float>, count: Int, vdh: Int) {
    var c0 = 0
    let cv = SIMD8<Float>(repeating: corr)
    while c0 + 64 <= vdh {
        let a = acc + c0
        var a0 = VecOps.ld(a, 0) * cv, a1 = VecOps.ld(a, 8) * cv, a2 = VecOps.ld(a, 16) * cv, a3 = VecOps.ld(a, 24) * cv
        var a4 = VecOps.ld(a, 32) * cv, a5 = VecOps.ld(a, 40) * cv, a6 = VecOps.ld(a, 48) * cv, a7 = VecOps.ld(a, 56) * cv
        for j in 0..<count {
            let w = SIMD8<Float>(repeating: p[j])
            let row = v + j * vdh + c0
            a0 = a0.addingProduct(w, VecOps.ld(row, 0)); a1 = a1.addingProduct(w, VecOps.ld(row, 8))
            a2 = a2.addingProduct(w, VecOps.ld(row, 16)); a3 = a3.addingProduct(w, VecOps.ld(row, 24))
            a4 = a4.addingProduct(w, VecOps.ld(row, 32)); a5 = a5.addingProduct(w, VecOps.ld(row, 40))
            a6 = a6.addingProduct(w, VecOps.ld(row, 48)); a7 = a7.addingProduct(w, VecOps.ld(row, 56))
        }
        VecOps.st(a, 0, a0); VecOps.st(a, 8, a1); VecOps.st(a, 16, a2); VecOps.st(a, 24, a3)
        VecOps.st(a, 32, a4); VecOps.st(a, 40, a5); VecOps.st(a, 48, a6); VecOps.st(a, 56, a7)
        c0 += 64
    }
    while c0 < vdh {
        let a = acc + c0
        var a0 = VecOps.ld(a, 0) * cv
        for j in 0..<count { a0 = a0.addingProduct(SIMD8<Float>(repeating: p[j]), VecOps.ld(v + j * vdh + c0, 0)) }
        VecOps.st(a, 0, a0)
        c0 += 8
    }
}

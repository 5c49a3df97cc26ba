// The generic loops every block kernel runs in: one row (`rowDot`, what `vecDot` computes) and tiles of rows ×
// activation vectors (what `matmulTile` computes), with the same operations in the same order, so that a
// tile's results are bit-identical to `vecDot`'s.

@inline(__always) func finish(_ a: DotAcc, _ b: DotAcc) -> Float {
    (a.v + b.v).sum() + (a.s + b.s)
}

/// One row: blocks alternate between two accumulators (two dependency chains).
@inline(__always)
func rowDot<K: BlockDot>(_: K.Type, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, _ n: Int) -> Float {
    let nb = n / K.elems
    var a0 = DotAcc(), a1 = DotAcc()
    var b = 0
    while b + 2 <= nb {
        K.dot(K.load(w + b * K.wBytes), K.loadX(x + b * K.xBytes), &a0)
        K.dot(K.load(w + (b + 1) * K.wBytes), K.loadX(x + (b + 1) * K.xBytes), &a1)
        b += 2
    }
    if b < nb { K.dot(K.load(w + b * K.wBytes), K.loadX(x + b * K.xBytes), &a0) }
    K.tail(w + nb * K.wBytes, x + nb * K.xBytes, count: n - nb * K.elems, &a0)
    return finish(a0, a1)
}

struct TileArgs {
    let w: UnsafeRawPointer, rowBytes: Int, rows: Range<Int>
    let x: UnsafeRawPointer, xBytes: Int, nx: Int, n: Int
    let out: UnsafeMutablePointer<Float>, outStride: Int
}

/// Dispatches a tile: one row against four vectors at a time when there are four or more vectors
/// (prompts); otherwise (decode) one `rowDot` per row and vector. (Interleaving four rows per pass
/// for decode was measured: it halved decode speed from RAM on Q5_0/Q8_0/Q4_1, so rows go one at a time.)
@inline(__always)
func tileDot<K: BlockDot>(_ k: K.Type, _ a: TileArgs) {
    if a.nx >= 4 {
        tileVecs4(k, a)
    } else {
        tileRows(k, a)
    }
}

/// Decode: one `rowDot` per row and vector.
@inline(__always)
func tileRows<K: BlockDot>(_ k: K.Type, _ a: TileArgs) {
    for t in 0..<a.nx {
        for r in a.rows { a.out[t * a.outStride + r] = rowDot(k, a.w + r * a.rowBytes, a.x + t * a.xBytes, a.n) }
    }
}

/// Rows × (groups of four activation vectors): each weight block is decoded once per group and
/// fed to the four vectors' accumulators, which follow `rowDot`'s order exactly. Leftover vectors
/// use `rowDot`.
@inline(__always)
private func tileVecs4<K: BlockDot>(_: K.Type, _ a: TileArgs) {
    let nb = a.n / K.elems
    let rem = a.n - nb * K.elems
    for r in a.rows {
        let wr = a.w + r * a.rowBytes
        var t = 0
        while t + 4 <= a.nx {
            let x0 = a.x + t * a.xBytes, x1 = x0 + a.xBytes, x2 = x1 + a.xBytes, x3 = x2 + a.xBytes
            var c00 = DotAcc(), c01 = DotAcc(), c10 = DotAcc(), c11 = DotAcc()
            var c20 = DotAcc(), c21 = DotAcc(), c30 = DotAcc(), c31 = DotAcc()
            var b = 0
            while b + 2 <= nb {
                let o0 = b * K.xBytes, o1 = o0 + K.xBytes
                let w0 = K.load(wr + b * K.wBytes)
                K.dot(w0, K.loadX(x0 + o0), &c00); K.dot(w0, K.loadX(x1 + o0), &c10)
                K.dot(w0, K.loadX(x2 + o0), &c20); K.dot(w0, K.loadX(x3 + o0), &c30)
                let w1 = K.load(wr + (b + 1) * K.wBytes)
                K.dot(w1, K.loadX(x0 + o1), &c01); K.dot(w1, K.loadX(x1 + o1), &c11)
                K.dot(w1, K.loadX(x2 + o1), &c21); K.dot(w1, K.loadX(x3 + o1), &c31)
                b += 2
            }
            if b < nb {
                let o0 = b * K.xBytes
                let w0 = K.load(wr + b * K.wBytes)
                K.dot(w0, K.loadX(x0 + o0), &c00); K.dot(w0, K.loadX(x1 + o0), &c10)
                K.dot(w0, K.loadX(x2 + o0), &c20); K.dot(w0, K.loadX(x3 + o0), &c30)
            }
            if rem > 0 {
                let wt = wr + nb * K.wBytes, ot = nb * K.xBytes
                K.tail(wt, x0 + ot, count: rem, &c00); K.tail(wt, x1 + ot, count: rem, &c10)
                K.tail(wt, x2 + ot, count: rem, &c20); K.tail(wt, x3 + ot, count: rem, &c30)
            }
            a.out[t * a.outStride + r] = finish(c00, c01)
            a.out[(t + 1) * a.outStride + r] = finish(c10, c11)
            a.out[(t + 2) * a.outStride + r] = finish(c20, c21)
            a.out[(t + 3) * a.outStride + r] = finish(c30, c31)
            t += 4
        }
        while t < a.nx {
            a.out[t * a.outStride + r] = rowDot(K.self, wr, a.x + t * a.xBytes, a.n)
            t += 1
        }
    }
}

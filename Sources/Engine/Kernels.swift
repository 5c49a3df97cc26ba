// Fast dot-product kernels for the weight types, in the manner of llama.cpp: the activation vector
// is quantized once per matmul into the weight type's "vec dot type", then each block is an integer
// dot product with the float scales applied per block (or sub-block).
//
// On x86-64 the kernels use AVX2/FMA/F16C intrinsics (the Engine target is built for Haswell);
// elsewhere, or when built with -DREFRAIN_PORTABLE, a plain-Swift fallback computes the same sums.
//
// Every kernel is a `BlockDot`: `load` decodes one weight block (once), `dot` adds its product with
// one activation block to an accumulator. `vecDot` and `matmulTile` are the same generic loops over
// these, so a tile computes each of its dots with exactly the operations `vecDot` uses, in the same
// order: their results are bit-identical.

#if arch(x86_64) && !REFRAIN_PORTABLE
import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
import Glibc   // links libm (Float.squareRoot may become a call to sqrtf)
#endif

// MARK: - Public API

/// The activation format a weight type is dotted against.
///
/// Q4_0, Q5_0, Q8_0 → Q8_0; Q4_1 → Q8_1; Q4_K, Q5_K, Q6_K → Q8_K; F32, F16, BF16 → F32.
public func vecDotType(for weight: GGMLType) -> GGMLType {
    switch weight {
    case .q4_0, .q5_0, .q8_0: return .q8_0
    case .q4_1: return .q8_1
    case .q4_K, .q5_K, .q6_K: return .q8_K
    case .f32, .f16, .bf16: return .f32
    default: preconditionFailure("vecDotType: unsupported weight type \(weight)")
    }
}

/// Quantize `n` floats into the buffer in `type`'s format (n multiple of its block size).
///
/// `type` is one of Q8_0, Q8_1, Q8_K (bit-identical to ``Quantize/rowRef(_:_:_:count:)``), F32 (a copy)
/// or F16. `dst` must hold `type.rowBytes(n)` bytes; it needs no particular alignment.
public func quantizeActivation(_ x: UnsafePointer<Float>, count n: Int, to type: GGMLType, into dst: UnsafeMutableRawPointer) {
    precondition(n >= 0 && n % type.blockSize == 0, "quantizeActivation: \(n) is not a whole number of \(type) blocks")
    switch type {
    case .f32: dst.copyMemory(from: x, byteCount: n * 4)
    case .f16: VecOps.f32ToF16(x, dst, n)
    case .q8_0: for b in 0..<n / 32 { quantizeQ8Block(x + 32 * b, dst + 34 * b, withSum: false) }
    case .q8_1: for b in 0..<n / 32 { quantizeQ8Block(x + 32 * b, dst + 36 * b, withSum: true) }
    case .q8_K: for b in 0..<n / 256 { quantizeQ8KBlock(x + 256 * b, dst + 292 * b) }
    default: preconditionFailure("quantizeActivation: unsupported activation type \(type)")
    }
}

/// dot(weight row, quantized activation) over n elements.
///
/// `w` points at a row of `wtype`; `x` at `n` elements already in `vecDotType(for: wtype)`'s format
/// (see ``quantizeActivation(_:count:to:into:)``). `n` must be a multiple of `wtype`'s block size.
public func vecDot(_ wtype: GGMLType, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count n: Int) -> Float {
    precondition(n % wtype.blockSize == 0, "vecDot: \(n) is not a whole number of \(wtype) blocks")
    switch wtype {
    case .f32: return rowDot(F32Dot.self, w, x, n)
    case .f16: return rowDot(F16Dot.self, w, x, n)
    case .bf16: return rowDot(BF16Dot.self, w, x, n)
    case .q4_0: return rowDot(Q4_0Dot.self, w, x, n)
    case .q4_1: return rowDot(Q4_1Dot.self, w, x, n)
    case .q5_0: return rowDot(Q5_0Dot.self, w, x, n)
    case .q8_0: return rowDot(Q8_0Dot.self, w, x, n)
    case .q4_K: return rowDot(Q4_KDot.self, w, x, n)
    case .q5_K: return rowDot(Q5_KDot.self, w, x, n)
    case .q6_K: return rowDot(Q6_KDot.self, w, x, n)
    default: preconditionFailure("vecDot: unsupported weight type \(wtype)")
    }
}

/// A tile kernel: for each row r in `rows` of the weight matrix (row r starts at w + r*rowBytes)
/// and each of `nx` quantized activation vectors (vector t at x + t*xBytes), out[t * outStride + r] = dot.
///
/// `r` indexes `out` absolutely (not relative to `rows.lowerBound`), so threads that split `rows`
/// write disjoint parts of one output. Each weight block is decoded once and dotted against four
/// activation vectors at a time; every result is bit-identical to `vecDot` on the same row and vector.
/// Thread-safe and allocation-free.
public func matmulTile(_ wtype: GGMLType, w: UnsafeRawPointer, rowBytes: Int, rows: Range<Int>, x: UnsafeRawPointer, xBytes: Int, nx: Int, count n: Int, out: UnsafeMutablePointer<Float>, outStride: Int) {
    precondition(n % wtype.blockSize == 0, "matmulTile: \(n) is not a whole number of \(wtype) blocks")
    let tile = TileArgs(w: w, rowBytes: rowBytes, rows: rows, x: x, xBytes: xBytes, nx: nx, n: n, out: out, outStride: outStride)
    switch wtype {
    case .f32: tileDot(F32Dot.self, tile)
    case .f16: tileDot(F16Dot.self, tile)
    case .bf16: tileDot(BF16Dot.self, tile)
    case .q4_0: quantTile(Q4_0Dot.self, tile)
    case .q4_1: quantTile(Q4_1Dot.self, tile)
    case .q5_0: quantTile(Q5_0Dot.self, tile)
    case .q8_0: quantTile(Q8_0Dot.self, tile)
    case .q4_K: quantTile(Q4_KDot.self, tile)
    case .q5_K: quantTile(Q5_KDot.self, tile)
    case .q6_K: quantTile(Q6_KDot.self, tile)
    default: preconditionFailure("matmulTile: unsupported weight type \(wtype)")
    }
}

// MARK: - Generic loops

/// A dot-product accumulator: a vector part and a scalar part, summed at the end.
@usableFromInline struct DotAcc {
    var v = SIMD8<Float>()
    var s: Float = 0
}

/// One weight type's block kernel against its activation format.
protocol BlockDot {
    associatedtype W
    /// Elements per block, and bytes per weight block / activation block.
    static var elems: Int { get }
    static var wBytes: Int { get }
    static var xBytes: Int { get }
    associatedtype X
    /// Decodes one weight block.
    static func load(_ w: UnsafeRawPointer) -> W
    /// Decodes (or just points at) one activation block.
    static func loadX(_ x: UnsafeRawPointer) -> X
    /// acc += dot(decoded weight block, decoded activation block).
    static func dot(_ w: W, _ x: X, _ acc: inout DotAcc)
    /// Elements past the last whole block (only the float types have blocks larger than their block size).
    static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc)
}

extension BlockDot where X == UnsafeRawPointer {
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> UnsafeRawPointer { x }
}

extension BlockDot {
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {}
}

@inline(__always) private func finish(_ a: DotAcc, _ b: DotAcc) -> Float {
    (a.v + b.v).sum() + (a.s + b.s)
}

/// One row: blocks alternate between two accumulators (two dependency chains).
@inline(__always)
private func rowDot<K: BlockDot>(_: K.Type, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, _ n: Int) -> Float {
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
private func tileDot<K: BlockDot>(_ k: K.Type, _ a: TileArgs) {
    if a.nx >= 4 {
        tileVecs4(k, a)
    } else {
        tileRows(k, a)
    }
}

/// Decode: one `rowDot` per row and vector.
@inline(__always)
private func tileRows<K: BlockDot>(_ k: K.Type, _ a: TileArgs) {
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

#if arch(x86_64) && !REFRAIN_PORTABLE

/// A block kernel that can also work from a decoded "panel": each weight block unpacked once into
/// `panelBytes` bytes (bytes ready for the integer dot, broadcast scale vectors, f32 scales), and
/// each activation block's f16 scales converted once. `panelDot` plus the scalar term must perform exactly
/// `dot(load(w), loadX(x))`'s arithmetic (the same integer lanes, the same float products and FMAs,
/// in the same order), so that a panel tile's results stay bit-identical to `vecDot`.
protocol PanelDot: BlockDot {
    /// Bytes of one decoded block (a multiple of 32; panels are 64-byte aligned).
    static var panelBytes: Int { get }
    /// An activation block's scales, converted.
    associatedtype XS
    /// Whether `panelDot` uses `xScales` (Q8_K activations hold an f32 scale and need none).
    static var usesXScales: Bool { get }
    /// Unpacks weight block `w` into `p`.
    static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer)
    static func xScales(_ x: UnsafeRawPointer) -> XS
    /// acc += dot(decoded block p, activation block x), given x's `xScales` (the vector part only).
    static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: XS, _ acc: inout DotAcc)
    /// Whether the type also has a scalar term per block (Q4_1's m·s): the product `scalarWeight(p) *
    /// scalarScale(xs)`, added in a second pass, four vectors at a time from a separate array of the
    /// activations' `scalarScale`s (kept out of the main loop so that its accumulators do not push the vector
    /// ones out of registers).
    static var hasScalarPart: Bool { get }
    /// The weight's factor of the scalar term (Q4_1: m), from decoded block p.
    static func scalarWeight(_ p: UnsafeRawPointer) -> Float
    /// The activation's factor of the scalar term (Q8_1: s), from its scales.
    static func scalarScale(_ xs: XS) -> Float
}

extension PanelDot {
    static var hasScalarPart: Bool { false }
    @inline(__always) static func scalarWeight(_ p: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func scalarScale(_ xs: XS) -> Float { 0 }
}

/// Rows decoded together into one panel (each group of four vectors' blocks is then read once per chunk),
/// and vectors whose activation scales are converted together.
private let panelRows = 8
private let scaleVecs = 64

@inline(__always)
private func quantTile<K: PanelDot>(_ k: K.Type, _ a: TileArgs) {
    if a.nx >= 4 { tilePanel(k, a) } else { tileRows(k, a) }
}

/// Prompt tiles. For each span of up to `scaleVecs` vectors (a multiple of four), their activation
/// scales are converted once; then each chunk of `panelRows` rows is decoded into a stack panel and
/// dotted with the span four vectors at a time, two accumulators per vector in `rowDot`'s even/odd
/// block order. Vectors past the last group of four use `rowDot`.
@inline(__always)
private func tilePanel<K: PanelDot>(_: K.Type, _ a: TileArgs) {
    let nb = a.n / K.elems
    let pb = K.panelBytes, xb = K.xBytes
    let rowPanel = nb * pb
    let nx4 = a.nx & ~3
    let span = min(scaleVecs, nx4)
    let scaleBytes = K.usesXScales ? span * nb * MemoryLayout<K.XS>.stride : 0
    // The activations' factors of the scalar term, vector-contiguous (so four vectors' come in one load).
    let scalarBytes = K.hasScalarPart ? span * nb * MemoryLayout<Float>.stride : 0
    withUnsafeTemporaryAllocation(byteCount: panelRows * rowPanel + scaleBytes + scalarBytes, alignment: 64) { buf in
        let panel = UnsafeMutableRawPointer(buf.baseAddress!)
        let xs = (panel + panelRows * rowPanel).bindMemory(to: K.XS.self, capacity: span * nb)
        let ss = (panel + panelRows * rowPanel + scaleBytes).bindMemory(to: Float.self, capacity: span * nb)
        var v0 = 0
        while v0 < nx4 {
            let v1 = min(v0 + span, nx4)
            if K.usesXScales || K.hasScalarPart {
                for v in v0..<v1 {
                    let xv = a.x + v * a.xBytes
                    for b in 0..<nb {
                        let sc = K.xScales(xv + b * xb)
                        if K.usesXScales { xs[b * span + v - v0] = sc }
                        if K.hasScalarPart { ss[b * span + v - v0] = K.scalarScale(sc) }
                    }
                }
            }
            var r0 = a.rows.lowerBound
            while r0 < a.rows.upperBound {
                let r1 = min(r0 + panelRows, a.rows.upperBound)
                for r in r0..<r1 {
                    let wr = a.w + r * a.rowBytes, pr = panel + (r - r0) * rowPanel
                    for b in 0..<nb { K.decode(wr + b * K.wBytes, into: pr + b * pb) }
                }
                var t = v0
                while t < v1 {
                    let x0 = a.x + t * a.xBytes, x1 = x0 + a.xBytes, x2 = x1 + a.xBytes, x3 = x2 + a.xBytes
                    let xst = xs + (t - v0)
                    // (Wrapping index arithmetic: the sizes were checked when the tile was laid out, and
                    // overflow checks in this loop cost about a tenth of its instructions.)
                    @inline(__always) func dot4(_ b: Int, _ p: UnsafeRawPointer, _ c0: inout DotAcc, _ c1: inout DotAcc, _ c2: inout DotAcc, _ c3: inout DotAcc) {
                        let o = b &* xb, s = xst + b &* span
                        K.panelDot(p, x0 + o, K.usesXScales ? s[0] : K.xScales(x0 + o), &c0)
                        K.panelDot(p, x1 + o, K.usesXScales ? s[1] : K.xScales(x1 + o), &c1)
                        K.panelDot(p, x2 + o, K.usesXScales ? s[2] : K.xScales(x2 + o), &c2)
                        K.panelDot(p, x3 + o, K.usesXScales ? s[3] : K.xScales(x3 + o), &c3)
                    }
                    for r in r0..<r1 {
                        let pr = UnsafeRawPointer(panel + (r - r0) * rowPanel)
                        var c00 = DotAcc(), c01 = DotAcc(), c10 = DotAcc(), c11 = DotAcc()
                        var c20 = DotAcc(), c21 = DotAcc(), c30 = DotAcc(), c31 = DotAcc()
                        var b = 0
                        while b + 2 <= nb {
                            dot4(b, pr + b &* pb, &c00, &c10, &c20, &c30)
                            dot4(b &+ 1, pr + (b &+ 1) &* pb, &c01, &c11, &c21, &c31)
                            b &+= 2
                        }
                        if b < nb { dot4(b, pr + b &* pb, &c00, &c10, &c20, &c30) }
                        if K.hasScalarPart {
                            // The scalar terms, in the same even/odd block order as `rowDot`, the four vectors'
                            // in the lanes of one SIMD4 (each lane's adds and products are rowDot's, unfused).
                            let sst = UnsafeRawPointer(ss + (t - v0))
                            @inline(__always) func scalar4(_ b: Int) -> SIMD4<Float> {
                                SIMD4(repeating: K.scalarWeight(pr + b &* pb))
                                    * sst.loadUnaligned(fromByteOffset: b &* span &* 4, as: SIMD4<Float>.self)
                            }
                            var even = SIMD4<Float>(), odd = SIMD4<Float>()
                            b = 0
                            while b + 2 <= nb {
                                even += scalar4(b)
                                odd += scalar4(b &+ 1)
                                b &+= 2
                            }
                            if b < nb { even += scalar4(b) }
                            c00.s = even[0]; c10.s = even[1]; c20.s = even[2]; c30.s = even[3]
                            c01.s = odd[0]; c11.s = odd[1]; c21.s = odd[2]; c31.s = odd[3]
                        }
                        a.out[t * a.outStride + r] = finish(c00, c01)
                        a.out[(t + 1) * a.outStride + r] = finish(c10, c11)
                        a.out[(t + 2) * a.outStride + r] = finish(c20, c21)
                        a.out[(t + 3) * a.outStride + r] = finish(c30, c31)
                    }
                    t += 4
                }
                r0 = r1
            }
            v0 = v1
        }
    }
    for t in nx4..<a.nx {
        for r in a.rows { a.out[t * a.outStride + r] = rowDot(K.self, a.w + r * a.rowBytes, a.x + t * a.xBytes, a.n) }
    }
}

#else

@inline(__always)
private func quantTile<K: BlockDot>(_ k: K.Type, _ a: TileArgs) { tileDot(k, a) }

#endif

// MARK: - Small helpers

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}
@inline(__always) private func f32(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    p.loadUnaligned(fromByteOffset: offset, as: Float.self)
}
@inline(__always) private func vf(_ p: UnsafeRawPointer, _ offset: Int = 0) -> SIMD8<Float> {
    p.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
}

/// The 8 scales and 8 mins (6-bit) of a Q4_K/Q5_K block, as two 8-byte words each (byte j = sub-block j).
@inline(__always) private func kScalesMins(_ s: UnsafeRawPointer) -> (sc: (UInt32, UInt32), mn: (UInt32, UInt32)) {
    let u0 = s.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
    let u1 = s.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let u2 = s.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let low6: UInt32 = 0x3f3f_3f3f, low4: UInt32 = 0x0f0f_0f0f, low2: UInt32 = 0x0303_0303
    let sc0 = u0 & low6
    let sc1 = (u2 & low4) | (((u0 >> 6) & low2) << 4)
    let mn0 = u1 & low6
    let mn1 = ((u2 >> 4) & low4) | (((u1 >> 6) & low2) << 4)
    return ((sc0, sc1), (mn0, mn1))
}

#if arch(x86_64) && !REFRAIN_PORTABLE

// MARK: - AVX2 kernels

@inline(__always) private func ld256(_ p: UnsafeRawPointer, _ offset: Int = 0) -> __m256i {
    unsafeBitCast(p.loadUnaligned(fromByteOffset: offset, as: SIMD32<UInt8>.self), to: __m256i.self)
}
@inline(__always) private func ld128(_ p: UnsafeRawPointer, _ offset: Int = 0) -> __m128i {
    unsafeBitCast(p.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self), to: __m128i.self)
}
@inline(__always) private func splat8(_ v: Int8) -> __m256i { _mm256_set1_epi8(CChar(v)) }

/// Sums of adjacent products of unsigned bytes `u` and signed bytes `s`, four per int32 lane.
@inline(__always) private func dotU8I8(_ u: __m256i, _ s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}
/// The same for signed × signed bytes, given |a| (as unsigned) and a (the sign source).
@inline(__always) private func dotI8I8(_ absA: __m256i, _ a: __m256i, _ b: __m256i) -> __m256i {
    dotU8I8(absA, _mm256_sign_epi8(b, a))
}
/// acc += scale * float(ints).
@inline(__always) private func fmaIntsF(_ scale: Float, _ ints: __m256i, _ acc: inout SIMD8<Float>) {
    acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(ints), acc)
}
/// 16 bytes of packed nibbles → 32 bytes: low nibbles (elements 0-15), then high nibbles (16-31).
@inline(__always) private func nibbles32(_ p: UnsafeRawPointer) -> __m256i {
    let t = ld128(p)
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), splat8(0x0F))
}

/// The f16 at p → lane 0 of a float vector (other lanes 0, so no junk values reach the arithmetic).
@inline(__always) private func f16Lane0(_ p: UnsafeRawPointer) -> SIMD4<Float> {
    _mm_cvtph_ps(_mm_cvtsi32_si128(Int32(p.loadUnaligned(as: UInt16.self))))
}
/// acc += lane 0 of `scale` × float(ints).
@inline(__always) private func fmaInts(_ scale: SIMD4<Float>, _ ints: __m256i, _ acc: inout SIMD8<Float>) {
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(scale), _mm256_cvtepi32_ps(ints), acc)
}

/// A Q8_0 activation block: its 32 values and d (lane 0).
@inline(__always) private func loadQ8_0(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) {
    (ld256(x, 2), f16Lane0(x))
}

struct Q4_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 18 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        let q = _mm256_sub_epi8(nibbles32(w + 2), splat8(8))
        return (q, f16Lane0(w))
    }
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) { loadQ8_0(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        fmaInts(w.d * x.d, dotI8I8(_mm256_sign_epi8(w.q, w.q), w.q, x.y), &acc.v)
    }
}

struct Q4_1Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 20 }
    static var xBytes: Int { 36 }
    /// Nibbles, and [d, m] as floats (one conversion).
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, dm: SIMD4<Float>) {
        (nibbles32(w + 4), _mm_cvtph_ps(_mm_cvtsi32_si128(w.loadUnaligned(as: Int32.self))))
    }
    /// Values, and [d, s] as floats.
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, ds: SIMD4<Float>) {
        (ld256(x, 4), _mm_cvtph_ps(_mm_cvtsi32_si128(x.loadUnaligned(as: Int32.self))))
    }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        let p = w.dm * x.ds                         // [d·dx, m·s]
        fmaInts(p, dotU8I8(w.q, x.y), &acc.v)
        acc.s += p[1]                               // m * sum(x) = m * s
    }
}

struct Q5_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 22 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        // Spread the 32 fifth bits over 32 bytes (0xFF where set): byte e takes byte e/8 of qh,
        // then tests bit e%8.
        let qh = Int32(bitPattern: w.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(qh),
                                         _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202,
                                                           0x0101_0101_0101_0101, 0))
        let bit = _mm256_set1_epi64x(Int64(bitPattern: 0x8040_2010_0804_0201))
        let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit)
        // nibble - 16 where the bit is clear (OR 0xF0), the nibble itself where it is set.
        let q = _mm256_or_si256(nibbles32(w + 6), _mm256_andnot_si256(set, splat8(-16)))
        return (q, f16Lane0(w))
    }
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) { loadQ8_0(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        fmaInts(w.d * x.d, dotI8I8(_mm256_sign_epi8(w.q, w.q), w.q, x.y), &acc.v)
    }
}

struct Q8_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 34 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        let q = ld256(w, 2)
        return (q, f16Lane0(w))
    }
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) { loadQ8_0(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        fmaInts(w.d * x.d, dotI8I8(_mm256_sign_epi8(w.q, w.q), w.q, x.y), &acc.v)
    }
}

/// Decoded Q4_K/Q5_K block header: scales as 8 int16 (in both 128-bit halves, for per-sub-block
/// broadcast by byte shuffle) and mins as 16 int16 [m0, m0, m1, m1, ...] (to pair with bsums).
@inline(__always) private func kHeader(_ s: UnsafeRawPointer) -> (sc: __m256i, mins: __m256i) {
    let (sc, mn) = kScalesMins(s)
    let bytes = _mm_set_epi32(Int32(bitPattern: mn.1), Int32(bitPattern: mn.0), Int32(bitPattern: sc.1), Int32(bitPattern: sc.0))
    let sc16 = _mm_cvtepu8_epi16(bytes)
    let minsPaired = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(bytes, bytes))
    return (_mm256_set_m128i(sc16, sc16), minsPaired)
}
/// Broadcast int16 lane k of a vector whose two halves are equal.
@inline(__always) private func bcast16(_ v: __m256i, _ k: Int) -> __m256i {
    _mm256_shuffle_epi8(v, _mm256_set1_epi16(Int16(2 * k | (2 * k + 1) << 8)))
}

struct Q4_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 144 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (qs: UnsafeRawPointer, d: Float, dmin: Float, sc: __m256i, mins: __m256i) {
        let h = kHeader(w + 4)
        return (w + 16, f16(w), f16(w, 2), h.sc, h.mins)
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let mask = splat8(0x0F)
        var sumi = _mm256_setzero_si256()
        for g in 0..<4 {
            let q = ld256(w.qs, 32 * g)
            let lo = _mm256_and_si256(q, mask), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask)
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(x, 4 + 64 * g)), bcast16(w.sc, 2 * g))
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(x, 36 + 64 * g)), bcast16(w.sc, 2 * g + 1))
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1))
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
        fmaIntsF(-(w.dmin * dx), _mm256_madd_epi16(ld256(x, 260), w.mins), &acc.v)
    }
}

struct Q5_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 176 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (p: UnsafeRawPointer, d: Float, dmin: Float, sc: __m256i, mins: __m256i) {
        let h = kHeader(w + 4)
        return (w, f16(w), f16(w, 2), h.sc, h.mins)
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let mask = splat8(0x0F), one = splat8(1)
        var hb = ld256(w.p, 16)        // bit k of byte l: fifth bit of element 32k + l
        var sumi = _mm256_setzero_si256()
        for g in 0..<4 {
            let q = ld256(w.p, 48 + 32 * g)
            let lo = _mm256_or_si256(_mm256_and_si256(q, mask), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4))
            hb = _mm256_srli_epi16(hb, 1)
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4))
            hb = _mm256_srli_epi16(hb, 1)
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(x, 4 + 64 * g)), bcast16(w.sc, 2 * g))
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(x, 36 + 64 * g)), bcast16(w.sc, 2 * g + 1))
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1))
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
        fmaIntsF(-(w.dmin * dx), _mm256_madd_epi16(ld256(x, 260), w.mins), &acc.v)
    }
}

struct Q6_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 210 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (p: UnsafeRawPointer, d: Float, sc8: __m128i, sc16: __m256i) {
        let sc8 = ld128(w, 192)
        return (w, f16(w, 208), sc8, _mm256_cvtepi8_epi16(sc8))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let low4 = splat8(0x0F), low2 = splat8(3), bits45 = splat8(0x30)
        // The weights are stored +32: subtract 32 * sum_k scale_k * bsum_k.
        var sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(ld256(x, 260), w.sc16), 5))
        for h in 0..<2 {
            let qlA = ld256(w.p, 64 * h), qlB = ld256(w.p, 64 * h + 32), qh = ld256(w.p, 128 + 32 * h)
            let q0 = _mm256_or_si256(_mm256_and_si256(qlA, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4))
            let q1 = _mm256_or_si256(_mm256_and_si256(qlB, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4))
            let q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlA, 4), low4), _mm256_and_si256(qh, bits45))
            let q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlB, 4), low4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45))
            // Group g: elements 128h + 32g ..< +32, scales k = 8h + 2g (first 16) and k + 1.
            @inline(__always) func group(_ q: __m256i, _ g: Int) {
                let k = 8 * h + 2 * g
                let pick = _mm_set_epi64x(0x0101_0101_0101_0101 &* Int64(k + 1), 0x0101_0101_0101_0101 &* Int64(k))
                let scale = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(w.sc8, pick))
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, ld256(x, 4 + 128 * h + 32 * g)), scale))
            }
            group(q0, 0); group(q1, 1); group(q2, 2); group(q3, 3)
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
    }
}

struct F32Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 128 }
    static var xBytes: Int { 128 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        (vf(w), vf(w, 32), vf(w, 64), vf(w, 96))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        floatBlockDot(w, x, &acc)
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += f32(w, 4 * i) * f32(x, 4 * i) }
    }
}

struct F16Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 64 }
    static var xBytes: Int { 128 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        (_mm256_cvtph_ps(ld128(w)), _mm256_cvtph_ps(ld128(w, 16)), _mm256_cvtph_ps(ld128(w, 32)), _mm256_cvtph_ps(ld128(w, 48)))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        floatBlockDot(w, x, &acc)
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += f16(w, 2 * i) * f32(x, 4 * i) }
    }
}

struct BF16Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 64 }
    static var xBytes: Int { 128 }
    @inline(__always) private static func widen(_ p: UnsafeRawPointer, _ o: Int) -> SIMD8<Float> {
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(ld128(p, o)), 16))
    }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        (widen(w, 0), widen(w, 16), widen(w, 32), widen(w, 48))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        floatBlockDot(w, x, &acc)
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += bf16BitsToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * f32(x, 4 * i) }
    }
}

// MARK: - Panel forms (AVX2): decoded weight blocks for prompt tiles

@inline(__always) private func st256(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: __m256i) {
    p.storeBytes(of: unsafeBitCast(v, to: SIMD32<UInt8>.self), toByteOffset: offset, as: SIMD32<UInt8>.self)
}
@inline(__always) private func ldA(_ p: UnsafeRawPointer, _ offset: Int) -> __m256i {
    unsafeBitCast(p.load(fromByteOffset: offset, as: SIMD32<UInt8>.self), to: __m256i.self)
}

/// Q4_0/Q5_0/Q8_0 panel block: 32 signed values, then d (f32). Against Q8_0: scale d · dx.
@inline(__always) private func q8PanelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ dx: Float, _ acc: inout DotAcc) {
    let q = ldA(p, 0)
    let d = p.load(fromByteOffset: 32, as: Float.self)
    let ints = dotI8I8(_mm256_sign_epi8(q, q), q, ld256(x, 2))
    acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(ints), acc.v)
}
@inline(__always) private func q8PanelStore(_ q: __m256i, _ d: SIMD4<Float>, _ p: UnsafeMutableRawPointer) {
    st256(p, 0, q)
    p.storeBytes(of: d[0], toByteOffset: 32, as: Float.self)
}


/// The types whose blocks decode to 32 signed bytes and one scale (Q4_0, Q5_0, Q8_0), against Q8_0 activations:
/// one panel layout and one panel dot for all three.
protocol SignedBytePanelDot: PanelDot where W == (q: __m256i, d: SIMD4<Float>), XS == Float {}

extension SignedBytePanelDot {
    static var panelBytes: Int { 64 }
    static var usesXScales: Bool { true }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) { let b = load(w); q8PanelStore(b.q, b.d, p) }
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { f16(x) }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ dx: Float, _ acc: inout DotAcc) { q8PanelDot(p, x, dx, &acc) }
}

extension Q4_0Dot: SignedBytePanelDot {}
extension Q5_0Dot: SignedBytePanelDot {}
extension Q8_0Dot: SignedBytePanelDot {}

/// Q4_1 panel block: 32 nibbles (unsigned), d, m (f32). Against Q8_1 (scales dx, s).
extension Q4_1Dot: PanelDot {
    static var panelBytes: Int { 64 }
    static var usesXScales: Bool { true }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let b = load(w)
        st256(p, 0, b.q)
        p.storeBytes(of: b.dm[0], toByteOffset: 32, as: Float.self)
        p.storeBytes(of: b.dm[1], toByteOffset: 36, as: Float.self)
    }
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> SIMD2<Float> { SIMD2(f16(x), f16(x, 2)) }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: SIMD2<Float>, _ acc: inout DotAcc) {
        let d = p.load(fromByteOffset: 32, as: Float.self) * xs[0]        // d·dx
        acc.v = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(dotU8I8(ldA(p, 0), ld256(x, 4))), acc.v)
    }
    static var hasScalarPart: Bool { true }
    /// m·s: m from the panel block, s (the activation block's scaled sum) from its scales.
    @inline(__always) static func scalarWeight(_ p: UnsafeRawPointer) -> Float { p.load(fromByteOffset: 36, as: Float.self) }
    @inline(__always) static func scalarScale(_ xs: SIMD2<Float>) -> Float { xs[1] }
}

/// Q4_K/Q5_K/Q6_K panel block (576 bytes): the 256 values as bytes, sub-block j (32 values) at 32j in
/// activation order; at 256 + 32j the int16 scale vector that sub-block j's pair sums are multiplied by;
/// at 512 the 16 int16 that multiply the activation's bsums; at 544 d, at 548 dmin (f32).
private let kPanelBytes = 576

/// The Q4_K/Q5_K sum from a panel block (values 0...31, unsigned).
@inline(__always) private func kPanelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
    let dx = f32(x)
    var sumi = _mm256_setzero_si256()
    for g in 0..<4 {
        let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(ldA(p, 64 * g), ld256(x, 4 + 64 * g)), ldA(p, 256 + 64 * g))
        let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(ldA(p, 64 * g + 32), ld256(x, 36 + 64 * g)), ldA(p, 288 + 64 * g))
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1))
    }
    let d = p.load(fromByteOffset: 544, as: Float.self), dmin = p.load(fromByteOffset: 548, as: Float.self)
    fmaIntsF(d * dx, sumi, &acc.v)
    fmaIntsF(-(dmin * dx), _mm256_madd_epi16(ld256(x, 260), ldA(p, 512)), &acc.v)
}
@inline(__always) private func kPanelHeader(_ w: UnsafeRawPointer, _ p: UnsafeMutableRawPointer) {
    let h = kHeader(w + 4)
    for j in 0..<8 { st256(p, 256 + 32 * j, bcast16(h.sc, j)) }
    st256(p, 512, h.mins)
    p.storeBytes(of: f16(w), toByteOffset: 544, as: Float.self)
    p.storeBytes(of: f16(w, 2), toByteOffset: 548, as: Float.self)
}

extension Q4_KDot: PanelDot {
    static var panelBytes: Int { kPanelBytes }
    static var usesXScales: Bool { false }
    /// Unused: the K-quant dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let mask = splat8(0x0F)
        for g in 0..<4 {
            let q = ld256(w, 16 + 32 * g)
            st256(p, 64 * g, _mm256_and_si256(q, mask))
            st256(p, 64 * g + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), mask))
        }
        kPanelHeader(w, p)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) { kPanelDot(p, x, &acc) }
}

extension Q5_KDot: PanelDot {
    static var panelBytes: Int { kPanelBytes }
    static var usesXScales: Bool { false }
    /// Unused: the K-quant dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let mask = splat8(0x0F), one = splat8(1)
        var hb = ld256(w, 16)
        for g in 0..<4 {
            let q = ld256(w, 48 + 32 * g)
            st256(p, 64 * g, _mm256_or_si256(_mm256_and_si256(q, mask), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4)))
            hb = _mm256_srli_epi16(hb, 1)
            st256(p, 64 * g + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4)))
            hb = _mm256_srli_epi16(hb, 1)
        }
        kPanelHeader(w, p)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) { kPanelDot(p, x, &acc) }
}

extension Q6_KDot: PanelDot {
    static var panelBytes: Int { kPanelBytes }
    static var usesXScales: Bool { false }
    /// Unused: the K-quant dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let low4 = splat8(0x0F), low2 = splat8(3), bits45 = splat8(0x30)
        for h in 0..<2 {
            let qlA = ld256(w, 64 * h), qlB = ld256(w, 64 * h + 32), qh = ld256(w, 128 + 32 * h)
            st256(p, 128 * h, _mm256_or_si256(_mm256_and_si256(qlA, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4)))
            st256(p, 128 * h + 32, _mm256_or_si256(_mm256_and_si256(qlB, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4)))
            st256(p, 128 * h + 64, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlA, 4), low4), _mm256_and_si256(qh, bits45)))
            st256(p, 128 * h + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlB, 4), low4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)))
        }
        let sc8 = ld128(w, 192)
        for j in 0..<8 {
            let pick = _mm_set_epi64x(0x0101_0101_0101_0101 &* Int64(2 * j + 1), 0x0101_0101_0101_0101 &* Int64(2 * j))
            st256(p, 256 + 32 * j, _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick)))
        }
        st256(p, 512, _mm256_cvtepi8_epi16(sc8))
        p.storeBytes(of: f16(w, 208), toByteOffset: 544, as: Float.self)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) {
        let dx = f32(x)
        var sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(ld256(x, 260), ldA(p, 512)), 5))
        for j in 0..<8 {
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(ldA(p, 32 * j), ld256(x, 4 + 32 * j)), ldA(p, 256 + 32 * j)))
        }
        fmaIntsF(p.load(fromByteOffset: 544, as: Float.self) * dx, sumi, &acc.v)
    }
}

/// acc += w · x over 32 floats, as a tree so that only one add per block depends on acc.
@inline(__always) private func floatBlockDot(_ w: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
    let a = _mm256_fmadd_ps(w.1, vf(x, 32), _mm256_mul_ps(w.0, vf(x)))
    let b = _mm256_fmadd_ps(w.3, vf(x, 96), _mm256_mul_ps(w.2, vf(x, 64)))
    acc.v = acc.v + (a + b)
}

// MARK: - Activation quantizers (AVX2), bit-identical to the reference

@inline(__always) private func toI32(_ v: __m256i) -> SIMD8<Int32> { unsafeBitCast(v, to: SIMD8<Int32>.self) }

/// Round half away from zero (C's roundf), exactly, for |v| < 2^31.
@inline(__always) private func roundAway(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    let t = _mm256_cvttps_epi32(v)
    let frac = v - _mm256_cvtepi32_ps(t)          // exact; same sign as v
    var r = toI32(t)
    r &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: frac .>= 0.5)
    r &-= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: frac .<= -0.5)
    return r
}

/// Round half to even (the default MXCSR mode).
@inline(__always) private func roundEven(_ v: SIMD8<Float>) -> SIMD8<Int32> { toI32(_mm256_cvtps_epi32(v)) }

#else

// MARK: - Portable kernels (plain Swift; the same sums, not tuned)

@inline(__always) private func u8(_ p: UnsafeRawPointer, _ o: Int) -> Int32 { Int32(p.load(fromByteOffset: o, as: UInt8.self)) }
@inline(__always) private func i8(_ p: UnsafeRawPointer, _ o: Int) -> Int32 { Int32(p.load(fromByteOffset: o, as: Int8.self)) }
@inline(__always) private func i16(_ p: UnsafeRawPointer, _ o: Int) -> Int32 { Int32(p.loadUnaligned(fromByteOffset: o, as: Int16.self)) }

struct Q4_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 18 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var s: Int32 = 0
        for j in 0..<16 {
            let q = u8(w, 2 + j)
            s &+= ((q & 0xF) - 8) * i8(x, 2 + j) + ((q >> 4) - 8) * i8(x, 18 + j)
        }
        acc.s += f16(w) * f16(x) * Float(s)
    }
}

struct Q4_1Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 20 }
    static var xBytes: Int { 36 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var s: Int32 = 0
        for j in 0..<16 {
            let q = u8(w, 4 + j)
            s &+= (q & 0xF) * i8(x, 4 + j) + (q >> 4) * i8(x, 20 + j)
        }
        acc.s += f16(w) * f16(x) * Float(s) + f16(w, 2) * f16(x, 2)
    }
}

struct Q5_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 22 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let qh = Int32(bitPattern: w.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        var s: Int32 = 0
        for j in 0..<16 {
            let q = u8(w, 6 + j)
            let a = ((q & 0xF) | (((qh >> Int32(j)) & 1) << 4)) - 16
            let b = ((q >> 4) | (((qh >> Int32(j + 16)) & 1) << 4)) - 16
            s &+= a * i8(x, 2 + j) + b * i8(x, 18 + j)
        }
        acc.s += f16(w) * f16(x) * Float(s)
    }
}

struct Q8_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 34 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var s: Int32 = 0
        for j in 0..<32 { s &+= i8(w, 2 + j) * i8(x, 2 + j) }
        acc.s += f16(w) * f16(x) * Float(s)
    }
}

/// Q4_K and Q5_K: sum over sub-blocks of scale * dot(q, x) and min * (bsum pair).
@inline(__always) private func kDot(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, fifthBit: Bool, _ acc: inout DotAcc) {
    var sumi: Int32 = 0, summ: Int32 = 0
    let qsOff = fifthBit ? 48 : 16
    for j in 0..<8 {
        let (sc, mn) = kQuantScaleMin(j, w + 4)
        var s: Int32 = 0
        for l in 0..<32 {
            let byte = u8(w, qsOff + 32 * (j / 2) + l)
            var q = j % 2 == 0 ? byte & 0xF : byte >> 4
            if fifthBit { q |= ((u8(w, 16 + l) >> Int32(j)) & 1) << 4 }
            s &+= q * i8(x, 4 + 32 * j + l)
        }
        sumi &+= Int32(sc) * s
        summ &+= Int32(mn) * (i16(x, 260 + 4 * j) + i16(x, 262 + 4 * j))
    }
    let dx = f32(x)
    acc.s += f16(w) * dx * Float(sumi) - f16(w, 2) * dx * Float(summ)
}

struct Q4_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 144 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) { kDot(w, x, fifthBit: false, &acc) }
}

struct Q5_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 176 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) { kDot(w, x, fifthBit: true, &acc) }
}

struct Q6_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 210 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var sumi: Int32 = 0
        for h in 0..<2 {
            for l in 0..<32 {
                let ql0 = u8(w, 64 * h + l), ql1 = u8(w, 64 * h + 32 + l), qh = u8(w, 128 + 32 * h + l)
                let q = SIMD4<Int32>((ql0 & 0xF) | ((qh & 3) << 4), (ql1 & 0xF) | (((qh >> 2) & 3) << 4),
                                     (ql0 >> 4) | (((qh >> 4) & 3) << 4), (ql1 >> 4) | (((qh >> 6) & 3) << 4))
                for g in 0..<4 {
                    let e = 128 * h + 32 * g + l
                    sumi &+= i8(w, 192 + e / 16) * (q[g] - 32) * i8(x, 4 + e)
                }
            }
        }
        acc.s += f16(w, 208) * f32(x) * Float(sumi)
    }
}

struct F32Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 128 }
    static var xBytes: Int { 128 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        for i in 0..<4 { acc.v = acc.v.addingProduct(vf(w, 32 * i), vf(x, 32 * i)) }
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += f32(w, 4 * i) * f32(x, 4 * i) }
    }
}

struct F16Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 64 }
    static var xBytes: Int { 128 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        for i in 0..<4 {
            let h = w.loadUnaligned(fromByteOffset: 16 * i, as: SIMD8<Float16>.self)
            acc.v = acc.v.addingProduct(SIMD8<Float>(h), vf(x, 32 * i))
        }
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += f16(w, 2 * i) * f32(x, 4 * i) }
    }
}

struct BF16Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 64 }
    static var xBytes: Int { 128 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        for i in 0..<4 {
            let h = SIMD8<UInt32>(truncatingIfNeeded: w.loadUnaligned(fromByteOffset: 16 * i, as: SIMD8<UInt16>.self)) &<< 16
            acc.v = acc.v.addingProduct(unsafeBitCast(h, to: SIMD8<Float>.self), vf(x, 32 * i))
        }
    }
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {
        for i in 0..<count { acc.s += bf16BitsToFloat(w.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * f32(x, 4 * i) }
    }
}

/// x86's conversion result for NaN and out-of-range values (0x80000000), instead of Swift's trap.
@inline(__always) private func toInt32(_ x: Float) -> Int32 {
    x.isNaN || x >= 2_147_483_648 || x < -2_147_483_648 ? Int32.min : Int32(x)
}
@inline(__always) private func roundAway(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    for i in 0..<8 { r[i] = toInt32(v[i].rounded(.toNearestOrAwayFromZero)) }
    return r
}
@inline(__always) private func roundEven(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    for i in 0..<8 { r[i] = toInt32(v[i].rounded(.toNearestOrEven)) }
    return r
}

#endif

// MARK: - Activation quantizers (shared)

/// Lane-wise max/min and horizontal max. (The stdlib's generic `pointwiseMax`/`max()` on SIMD8
/// compile to calls here; these compile to single instructions.)
@inline(__always) func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    a.replacing(with: b, where: b .> a)
}
@inline(__always) func vmin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    a.replacing(with: b, where: b .< a)
}
@inline(__always) func vmin(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> {
    a.replacing(with: b, where: b .< a)
}
@inline(__always) func hmax(_ v: SIMD8<Float>) -> Float {
    let m = vmax4(v.lowHalf, v.highHalf)
    return Swift.max(Swift.max(m[0], m[1]), Swift.max(m[2], m[3]))
}
@inline(__always) private func vmax4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    a.replacing(with: b, where: b .> a)
}

@inline(__always) private func vabs(_ v: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)
}

/// One Q8_0 (34 B) or Q8_1 (36 B) block, bit-identical to the reference.
@inline(__always) private func quantizeQ8Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, withSum: Bool) {
    let raw = UnsafeRawPointer(x)
    let v0 = vf(raw), v1 = vf(raw, 32), v2 = vf(raw, 64), v3 = vf(raw, 96)
    let m = vmax(vmax(vabs(v0), vabs(v1)), vmax(vabs(v2), vabs(v3)))
    let amax = hmax(m)
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    let q0 = roundAway(v0 * id), q1 = roundAway(v1 * id), q2 = roundAway(v2 * id), q3 = roundAway(v3 * id)
    let qo = withSum ? 4 : 2
    y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: q0), toByteOffset: qo, as: SIMD8<Int8>.self)
    y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: q1), toByteOffset: qo + 8, as: SIMD8<Int8>.self)
    y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: q2), toByteOffset: qo + 16, as: SIMD8<Int8>.self)
    y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: q3), toByteOffset: qo + 24, as: SIMD8<Int8>.self)
    y.storeBytes(of: floatToHalfBits(d), as: UInt16.self)
    if withSum {
        let sum = ((q0 &+ q1) &+ (q2 &+ q3)).wrappedSum()
        y.storeBytes(of: floatToHalfBits(Float(sum) * d), toByteOffset: 2, as: UInt16.self)
    }
}

/// One Q8_K block (292 B), bit-identical to the reference.
@inline(__always) private func quantizeQ8KBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let raw = UnsafeRawPointer(x)
    var m = SIMD8<Float>()
    for i in 0..<32 { m = vmax(m, vabs(vf(raw, 32 * i))) }
    let amax = hmax(m)
    if amax == 0 {
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 292)
        return
    }
    var j = 0
    while j < 255 && abs(x[j]) != amax { j += 1 }      // the first element of largest magnitude
    let iscale = -127 / x[j]
    let top = SIMD8<Int32>(repeating: 127)
    for k in 0..<16 {
        let a = vmin(roundEven(iscale * vf(raw, 64 * k)), top)
        let b = vmin(roundEven(iscale * vf(raw, 64 * k + 32)), top)
        y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: a), toByteOffset: 4 + 16 * k, as: SIMD8<Int8>.self)
        y.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: b), toByteOffset: 12 + 16 * k, as: SIMD8<Int8>.self)
        y.storeBytes(of: Int16(truncatingIfNeeded: (a &+ b).wrappedSum()), toByteOffset: 260 + 2 * k, as: Int16.self)
    }
    y.storeBytes(of: 1 / iscale, as: Float.self)
}

// MARK: - f32 vector helpers

/// Vectorised f32 helpers for the forward pass. Loops run 8 lanes at a time with a scalar tail;
/// outputs may alias inputs element for element (out == a is fine), nothing else may overlap.
public enum VecOps {
    @inline(__always) static func ld(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func st(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: SIMD8<Float>) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Σ a[i] * b[i] (Float, four 8-lane accumulators).
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            s0 = s0.addingProduct(ld(a, i), ld(b, i))
            s1 = s1.addingProduct(ld(a, i + 8), ld(b, i + 8))
            s2 = s2.addingProduct(ld(a, i + 16), ld(b, i + 16))
            s3 = s3.addingProduct(ld(a, i + 24), ld(b, i + 24))
            i += 32
        }
        while i + 8 <= n { s0 = s0.addingProduct(ld(a, i), ld(b, i)); i += 8 }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += a * x.
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = SIMD8<Float>(repeating: a)
        var i = 0
        while i + 8 <= n { st(y, i, ld(y, i).addingProduct(va, ld(x, i))); i += 8 }
        while i < n { y[i] += a * x[i]; i += 1 }
    }

    /// x *= s.
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(x, i, ld(x, i) * s); i += 8 }
        while i < n { x[i] *= s; i += 1 }
    }

    /// out = x * s.
    public static func scaleCopy(_ x: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(x, i) * s); i += 8 }
        while i < n { out[i] = x[i] * s; i += 1 }
    }

    /// out = a + b.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(a, i) + ld(b, i)); i += 8 }
        while i < n { out[i] = a[i] + b[i]; i += 1 }
    }

    /// out = a * b (element-wise).
    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(a, i) * ld(b, i)); i += 8 }
        while i < n { out[i] = a[i] * b[i]; i += 1 }
    }

    /// out = x / sqrt(mean(x²) + eps) * weight (weight nil: no weight). The sum of squares is
    /// accumulated in Double (as ggml does); the scale is applied as (x * scale) * weight in Float.
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ eps: Float, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        var d0 = SIMD4<Double>(), d1 = SIMD4<Double>()
        var i = 0
        while i + 8 <= n {
            let v = ld(x, i)
            let lo = SIMD4<Double>(v.lowHalf), hi = SIMD4<Double>(v.highHalf)
            d0 = d0.addingProduct(lo, lo); d1 = d1.addingProduct(hi, hi)
            i += 8
        }
        var sum = (d0 + d1).sum()
        while i < n { sum += Double(x[i]) * Double(x[i]); i += 1 }
        let mean = Float(sum / Double(n))
        let s = 1 / (mean + eps).squareRoot()
        i = 0
        if let w = weight {
            while i + 8 <= n { st(out, i, (ld(x, i) * s) * ld(w, i)); i += 8 }
            while i < n { out[i] = (x[i] * s) * w[i]; i += 1 }
        } else {
            while i + 8 <= n { st(out, i, ld(x, i) * s); i += 8 }
            while i < n { out[i] = x[i] * s; i += 1 }
        }
    }

    /// In-place softmax: x = exp(x - max) / Σ. -inf entries become exactly 0.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var m = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { m = vmax(m, ld(x, i)); i += 8 }
        var mx = hmax(m)
        while i < n { mx = max(mx, x[i]); i += 1 }
        let vmx = SIMD8<Float>(repeating: mx)
        var acc = SIMD8<Float>()
        i = 0
        while i + 8 <= n { let e = exp8(ld(x, i) - vmx); st(x, i, e); acc += e; i += 8 }
        var sum = acc.sum()
        while i < n { let e = expScalar(x[i] - mx); x[i] = e; sum += e; i += 1 }
        scale(x, 1 / sum, n)
    }

    /// out = x * sigmoid(x) = x / (1 + exp(-x)).
    public static func silu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { let v = ld(x, i); st(out, i, v / (1 + exp8(-v))); i += 8 }
        while i < n { out[i] = x[i] / (1 + expScalar(-x[i])); i += 1 }
    }

    /// out = silu(gate) * up (SwiGLU).
    public static func siluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { let v = ld(gate, i); st(out, i, v / (1 + exp8(-v)) * ld(up, i)); i += 8 }
        while i < n { out[i] = gate[i] / (1 + expScalar(-gate[i])) * up[i]; i += 1 }
    }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as the
    /// identical x / (1 + exp(-2·√(2/π)·(x + 0.044715·x³))).
    public static func gelu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, gelu8(ld(x, i))); i += 8 }
        while i < n { out[i] = geluScalar(x[i]); i += 1 }
    }

    /// out = gelu(gate) * up (GeGLU).
    public static func geluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, gelu8(ld(gate, i)) * ld(up, i)); i += 8 }
        while i < n { out[i] = geluScalar(gate[i]) * up[i]; i += 1 }
    }

    /// n IEEE halves at src → floats.
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            st(dst, i, SIMD8<Float>(src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<Float16>.self)))
            i += 8
        }
        while i < n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)); i += 1 }
    }

    /// n floats → IEEE halves at dst (round to nearest even).
    public static func f32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            dst.storeBytes(of: SIMD8<Float16>(ld(src, i)), toByteOffset: 2 * i, as: SIMD8<Float16>.self)
            i += 8
        }
        while i < n { dst.storeBytes(of: Float16(src[i]), toByteOffset: 2 * i, as: Float16.self); i += 1 }
    }

    // MARK: exp

    static let geluK: Float = 0.797_884_560_802_865_4   // √(2/π)

    @inline(__always) static func gelu8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let z = geluK * v * (1 + 0.044715 * v * v)
        return v / (1 + exp8(-2 * z))
    }
    @inline(__always) static func geluScalar(_ v: Float) -> Float {
        let z = geluK * v * (1 + 0.044715 * v * v)
        return v / (1 + expScalar(-2 * z))
    }

    /// e^x, 8 lanes, within ~2 ulp of the true value for x in [-87, 88]; larger x gives e^88,
    /// x < -87.3 (and -inf) gives 0, NaN gives NaN.
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> { exp8(x) }

    @inline(__always) static func exp8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
        let x = vmax(vmin(x0, SIMD8(repeating: 88)), SIMD8(repeating: -87.3))
        // x = n·ln2 + r, |r| ≤ ln2/2; e^r by a degree-6 polynomial (Cephes expf coefficients).
        let ni = roundEven(x * 1.442_695_040_888_963_4)
        let n = SIMD8<Float>(ni)
        var r = x.addingProduct(n, SIMD8(repeating: -0.693_359_375))
        r = r.addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let e = (p * r * r + r) + 1
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
        var y = e * scale
        y.replace(with: 0, where: x0 .< -87.3)
        y.replace(with: x0, where: x0 .!= x0)
        return y
    }

    @inline(__always) static func expScalar(_ x: Float) -> Float {
        exp8(SIMD8<Float>(repeating: x))[0]
    }
}

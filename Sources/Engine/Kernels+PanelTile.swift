// Prompt tiles of the quantized types on AVX2 builds: weight blocks decoded once into a stack "panel" and
// dotted with four activation vectors at a time (`PanelDot`, implemented in Kernels+AVX2Panels.swift).
// Elsewhere a quantized tile is the generic loop's.

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
func quantTile<K: PanelDot>(_ k: K.Type, _ a: TileArgs) {
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
func quantTile<K: BlockDot>(_ k: K.Type, _ a: TileArgs) { tileDot(k, a) }

#endif

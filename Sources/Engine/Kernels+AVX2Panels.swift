// The panel forms of the AVX2 kernels (`PanelDot`, used by Kernels+PanelTile.swift): how each quantized type
// decodes a weight block into a panel, and the panel block's dot with an activation block.

#if arch(x86_64) && !REFRAIN_PORTABLE
import _Builtin_intrinsics.intel

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
extension IQ4_NLDot: SignedBytePanelDot {}
extension MXFP4Dot: SignedBytePanelDot {}

/// Q4_1/Q5_1 panel block: 32 unsigned values, d, m (f32). Against Q8_1 (scales dx, s).
protocol UnsignedBytePanelDot: PanelDot where W == (q: __m256i, dm: SIMD4<Float>), XS == SIMD2<Float> {}

extension Q4_1Dot: UnsignedBytePanelDot {}
extension Q5_1Dot: UnsignedBytePanelDot {}

extension UnsignedBytePanelDot {
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

/// Q2_K/Q3_K/Q4_K/Q5_K/Q6_K panel block (576 bytes): the 256 values as bytes, sub-block j (32 values) at 32j in
/// activation order; at 256 + 32j the int16 scale vector that sub-block j's pair sums are multiplied by;
/// at 512 the 16 int16 that multiply the activation's bsums; at 544 d, at 548 dmin (f32).
private let kPanelBytes = 576

/// The Q2_K/Q4_K/Q5_K sum from a panel block (values 0...31, unsigned).
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

extension Q2_KDot: PanelDot {
    static var panelBytes: Int { kPanelBytes }
    static var usesXScales: Bool { false }
    /// Unused: the K-quant dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let b = load(w)
        for h in 0..<2 {
            let qb = ld256(w, 16 + 32 * h)
            for j in 0..<4 {
                let g = 4 * h + j
                st256(p, 32 * g, _mm256_and_si256(_mm256_srli_epi16(qb, Int32(2 * j)), splat8(3)))
                st256(p, 256 + 32 * g, pairScale(b.sc8, 2 * g))
            }
        }
        st256(p, 512, b.mins)
        p.storeBytes(of: b.d, toByteOffset: 544, as: Float.self)
        p.storeBytes(of: b.dmin, toByteOffset: 548, as: Float.self)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) { kPanelDot(p, x, &acc) }
}

/// The Q3_K/Q6_K sum from a panel block whose values are stored + 2^`shift` (Q3_K: +4, Q6_K: +32).
@inline(__always) private func offsetPanelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, shift: Int32, _ acc: inout DotAcc) {
    let dx = f32(x)
    var sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(ld256(x, 260), ldA(p, 512)), shift))
    for j in 0..<8 {
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(ldA(p, 32 * j), ld256(x, 4 + 32 * j)), ldA(p, 256 + 32 * j)))
    }
    fmaIntsF(p.load(fromByteOffset: 544, as: Float.self) * dx, sumi, &acc.v)
}

extension Q3_KDot: PanelDot {
    static var panelBytes: Int { kPanelBytes }
    static var usesXScales: Bool { false }
    /// Unused: the K-quant dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let b = load(w)
        let hm = ld256(w)
        for h in 0..<2 {
            let qb = ld256(w, 32 + 32 * h)
            for j in 0..<4 {
                let g = 4 * h + j
                st256(p, 32 * g, q3KGroup(qb, hm, g))
                st256(p, 256 + 32 * g, pairScale(b.sc8, 2 * g))
            }
        }
        st256(p, 512, b.sc16)
        p.storeBytes(of: b.d, toByteOffset: 544, as: Float.self)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) {
        offsetPanelDot(p, x, shift: 2, &acc)
    }
}

/// IQ4_XS panel block (544 bytes): the 256 signed levels at 32j per sub-block j, the int16 broadcast of
/// sub-block j's scale at 256 + 32j, d (f32) at 512.
extension IQ4_XSDot: PanelDot {
    static var panelBytes: Int { 544 }
    static var usesXScales: Bool { false }
    /// Unused: the dot reads the activation's f32 scale itself.
    @inline(__always) static func xScales(_ x: UnsafeRawPointer) -> Float { 0 }
    @inline(__always) static func decode(_ w: UnsafeRawPointer, into p: UnsafeMutableRawPointer) {
        let b = load(w)
        let table = iq4nlLevels(), low4 = splat8(0x0F)
        for j in 0..<8 {
            let t = ld128(w, 8 + 16 * j)
            let nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), low4)
            st256(p, 32 * j, _mm256_shuffle_epi8(table, nib))
            st256(p, 256 + 32 * j, bcast16(b.sc, j))
        }
        p.storeBytes(of: b.d, toByteOffset: 512, as: Float.self)
    }
    @inline(__always) static func panelDot(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ xs: Float, _ acc: inout DotAcc) {
        let dx = f32(x)
        var sumi = _mm256_setzero_si256()
        for j in 0..<8 {
            let q = ldA(p, 32 * j)
            let s = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(ld256(x, 4 + 32 * j), q))
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(s, ldA(p, 256 + 32 * j)))
        }
        fmaIntsF(p.load(fromByteOffset: 512, as: Float.self) * dx, sumi, &acc.v)
    }
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
        offsetPanelDot(p, x, shift: 5, &acc)
    }
}

#endif

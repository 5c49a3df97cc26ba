// The block kernels on x86-64 (the Engine target is built for Haswell): AVX2/FMA/F16C intrinsics, each
// weight block decoded into registers once (`load`) and dotted with an activation block (`dot`).

#if arch(x86_64) && !REFRAIN_PORTABLE
import _Builtin_intrinsics.intel

// MARK: - AVX2 kernels

@inline(__always) func ld256(_ p: UnsafeRawPointer, _ offset: Int = 0) -> __m256i {
    unsafeBitCast(p.loadUnaligned(fromByteOffset: offset, as: SIMD32<UInt8>.self), to: __m256i.self)
}
@inline(__always) func ld128(_ p: UnsafeRawPointer, _ offset: Int = 0) -> __m128i {
    unsafeBitCast(p.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self), to: __m128i.self)
}
@inline(__always) func splat8(_ v: Int8) -> __m256i { _mm256_set1_epi8(CChar(v)) }

/// Sums of adjacent products of unsigned bytes `u` and signed bytes `s`, four per int32 lane.
@inline(__always) func dotU8I8(_ u: __m256i, _ s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}
/// The same for signed × signed bytes, given |a| (as unsigned) and a (the sign source).
@inline(__always) func dotI8I8(_ absA: __m256i, _ a: __m256i, _ b: __m256i) -> __m256i {
    dotU8I8(absA, _mm256_sign_epi8(b, a))
}
/// acc += scale * float(ints).
@inline(__always) func fmaIntsF(_ scale: Float, _ ints: __m256i, _ acc: inout SIMD8<Float>) {
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

/// The 32 fifth bits of a Q5_0/Q5_1 block (the u32 at p) spread over 32 bytes, 0xFF where set: byte e takes
/// byte e/8 of qh, then tests bit e%8.
@inline(__always) private func fifthBits(_ p: UnsafeRawPointer) -> __m256i {
    let qh = Int32(bitPattern: p.loadUnaligned(as: UInt32.self))
    let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(qh),
                                     _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202,
                                                       0x0101_0101_0101_0101, 0))
    let bit = _mm256_set1_epi64x(Int64(bitPattern: 0x8040_2010_0804_0201))
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit)
}

struct Q5_0Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 22 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        let set = fifthBits(w + 2)
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

struct Q5_1Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 24 }
    static var xBytes: Int { 36 }
    /// Values 0...31 (unsigned), and [d, m] as floats.
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, dm: SIMD4<Float>) {
        let q = _mm256_or_si256(nibbles32(w + 8), _mm256_and_si256(fifthBits(w + 4), splat8(0x10)))
        return (q, _mm_cvtph_ps(_mm_cvtsi32_si128(w.loadUnaligned(as: Int32.self))))
    }
    /// Values, and [d, s] as floats.
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, ds: SIMD4<Float>) { Q4_1Dot.loadX(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        let p = w.dm * x.ds                         // [d·dx, m·s]
        fmaInts(p, dotU8I8(w.q, x.y), &acc.v)
        acc.s += p[1]                               // m * sum(x) = m * s
    }
}

/// A table of 16 signed levels in both 128-bit halves, for `_mm256_shuffle_epi8` lookups by nibble.
@inline(__always) private func levels(_ t: SIMD16<Int8>) -> __m256i {
    let h = unsafeBitCast(t, to: __m128i.self)
    return _mm256_set_m128i(h, h)
}
@inline(__always) func iq4nlLevels() -> __m256i {
    levels(SIMD16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113))
}
@inline(__always) private func mxfp4Levels() -> __m256i {
    levels(SIMD16(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12))
}

struct IQ4_NLDot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 18 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        (_mm256_shuffle_epi8(iq4nlLevels(), nibbles32(w + 2)), f16Lane0(w))
    }
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) { loadQ8_0(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        fmaInts(w.d * x.d, dotI8I8(_mm256_sign_epi8(w.q, w.q), w.q, x.y), &acc.v)
    }
}

struct MXFP4Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 17 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (q: __m256i, d: SIMD4<Float>) {
        (_mm256_shuffle_epi8(mxfp4Levels(), nibbles32(w + 1)), SIMD4(e8m0Half(w.load(as: UInt8.self)), 0, 0, 0))
    }
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> (y: __m256i, d: SIMD4<Float>) { loadQ8_0(x) }
    @inline(__always) static func dot(_ w: W, _ x: X, _ acc: inout DotAcc) {
        fmaInts(w.d * x.d, dotI8I8(_mm256_sign_epi8(w.q, w.q), w.q, x.y), &acc.v)
    }
}

/// The int16 scale vector for 32 values of sub-blocks k and k + 1 (16 each) from 16 scale bytes:
/// lanes 0-7 scale k, lanes 8-15 scale k + 1 (to multiply `_mm256_maddubs_epi16`'s pair sums).
@inline(__always) func pairScale(_ sc8: __m128i, _ k: Int) -> __m256i {
    let pick = _mm_set_epi64x(0x0101_0101_0101_0101 &* Int64(k + 1), 0x0101_0101_0101_0101 &* Int64(k))
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick))
}

/// Q2_K: 2-bit values, per 16 a 4-bit scale (low nibble) and min (high nibble).
struct Q2_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 84 }
    static var xBytes: Int { 292 }
    /// The block, d, dmin, the 16 scales as bytes and the 16 mins as int16 (to pair with bsums).
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (p: UnsafeRawPointer, d: Float, dmin: Float, sc8: __m128i, mins: __m256i) {
        let s = ld128(w), low4 = _mm_set1_epi8(0x0F)
        return (w, f16(w, 80), f16(w, 82), _mm_and_si128(s, low4), _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), low4)))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let low2 = splat8(3)
        var sumi = _mm256_setzero_si256()
        for h in 0..<2 {
            let qb = ld256(w.p, 16 + 32 * h)
            // Bit pair j of the half's 32 bytes: elements 128h + 32j ..< +32, scales 8h + 2j and the next.
            for j in 0..<4 {
                let q = _mm256_and_si256(_mm256_srli_epi16(qb, Int32(2 * j)), low2)
                let p = _mm256_maddubs_epi16(q, ld256(x, 4 + 128 * h + 32 * j))
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, pairScale(w.sc8, 8 * h + 2 * j)))
            }
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
        fmaIntsF(-(w.dmin * dx), _mm256_madd_epi16(ld256(x, 260), w.mins), &acc.v)
    }
}

/// The 16 signed scales of a Q3_K block (6 bits, stored +32) from its 12 packed bytes, as bytes.
@inline(__always) func q3KScales(_ s: UnsafeRawPointer) -> __m128i {
    let a0 = s.loadUnaligned(as: UInt32.self), a1 = s.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let t = s.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let low4: UInt32 = 0x0f0f_0f0f, low2: UInt32 = 0x0303_0303
    let w0 = (a0 & low4) | ((t & low2) << 4)
    let w1 = (a1 & low4) | (((t >> 2) & low2) << 4)
    let w2 = ((a0 >> 4) & low4) | (((t >> 4) & low2) << 4)
    let w3 = ((a1 >> 4) & low4) | (((t >> 6) & low2) << 4)
    let packed = _mm_set_epi32(Int32(bitPattern: w3), Int32(bitPattern: w2), Int32(bitPattern: w1), Int32(bitPattern: w0))
    return _mm_sub_epi8(packed, _mm_set1_epi8(32))
}

/// The Q3_K values of group g (elements 32g ..< +32) stored +4, so unsigned (0...7): the low 2 bits
/// (bit pair g % 4 of qs bytes 32(g / 4)...), plus 4 where bit g of hmask is set.
@inline(__always) func q3KGroup(_ qb: __m256i, _ hm: __m256i, _ g: Int) -> __m256i {
    let bit = splat8(Int8(truncatingIfNeeded: 1 << g))
    let high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), splat8(4))
    return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, Int32(2 * (g % 4))), splat8(3)), high)
}

/// Q3_K: 3-bit signed values, a signed 6-bit scale per 16. The values are taken +4 (unsigned, for
/// `_mm256_maddubs_epi16`) and 4 · Σ scale_k · bsum_k is subtracted, as Q6_K's +32.
struct Q3_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 110 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (p: UnsafeRawPointer, d: Float, sc8: __m128i, sc16: __m256i) {
        let sc8 = q3KScales(w + 96)
        return (w, f16(w, 108), sc8, _mm256_cvtepi8_epi16(sc8))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let hm = ld256(w.p)
        var sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(ld256(x, 260), w.sc16), 2))
        for h in 0..<2 {
            let qb = ld256(w.p, 32 + 32 * h)
            for j in 0..<4 {
                let g = 4 * h + j
                let p = _mm256_maddubs_epi16(q3KGroup(qb, hm, g), ld256(x, 4 + 32 * g))
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, pairScale(w.sc8, 2 * g)))
            }
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
    }
}

/// The eight signed scales of an IQ4_XS block as int16, in both 128-bit halves (for `bcast16`).
@inline(__always) func iq4XSScales(_ w: UnsafeRawPointer) -> __m256i {
    @inline(__always) func s(_ j: Int) -> Int16 { Int16(iq4XSScale(j, w) - 32) }
    let v = _mm_set_epi16(s(7), s(6), s(5), s(4), s(3), s(2), s(1), s(0))
    return _mm256_set_m128i(v, v)
}

/// IQ4_XS: eight sub-blocks of 32 IQ4_NL levels, each with a signed 6-bit scale; one float scale per block.
struct IQ4_XSDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 136 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> (p: UnsafeRawPointer, d: Float, sc: __m256i) {
        (w, f16(w), iq4XSScales(w))
    }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let dx = f32(x)
        let table = iq4nlLevels()
        var sumi = _mm256_setzero_si256()
        for j in 0..<8 {
            let q = _mm256_shuffle_epi8(table, nibbles32(w.p + 8 + 16 * j))
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(ld256(x, 4 + 32 * j), q))
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, bcast16(w.sc, j)))
        }
        fmaIntsF(w.d * dx, sumi, &acc.v)
    }
}

/// Decoded Q4_K/Q5_K block header: scales as 8 int16 (in both 128-bit halves, for per-sub-block
/// broadcast by byte shuffle) and mins as 16 int16 [m0, m0, m1, m1, ...] (to pair with bsums).
@inline(__always) func kHeader(_ s: UnsafeRawPointer) -> (sc: __m256i, mins: __m256i) {
    let (sc, mn) = kScalesMins(s)
    let bytes = _mm_set_epi32(Int32(bitPattern: mn.1), Int32(bitPattern: mn.0), Int32(bitPattern: sc.1), Int32(bitPattern: sc.0))
    let sc16 = _mm_cvtepu8_epi16(bytes)
    let minsPaired = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(bytes, bytes))
    return (_mm256_set_m128i(sc16, sc16), minsPaired)
}
/// Broadcast int16 lane k of a vector whose two halves are equal.
@inline(__always) func bcast16(_ v: __m256i, _ k: Int) -> __m256i {
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

/// acc += w · x over 32 floats, as a tree so that only one add per block depends on acc.
@inline(__always) private func floatBlockDot(_ w: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
    let a = _mm256_fmadd_ps(w.1, vf(x, 32), _mm256_mul_ps(w.0, vf(x)))
    let b = _mm256_fmadd_ps(w.3, vf(x, 96), _mm256_mul_ps(w.2, vf(x, 64)))
    acc.v = acc.v + (a + b)
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

#endif

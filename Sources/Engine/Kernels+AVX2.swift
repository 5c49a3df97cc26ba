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

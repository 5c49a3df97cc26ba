// Lane-wise SIMD8 helpers for the activation quantizers, the vector ops and attention: rounding to Int32 (AVX2
// conversions on x86-64; plain Swift elsewhere, with x86's results for NaN and overflow), max/min and abs.

#if arch(x86_64) && !REFRAIN_PORTABLE
import _Builtin_intrinsics.intel
#endif

// MARK: - Rounding to Int32

#if arch(x86_64) && !REFRAIN_PORTABLE

@inline(__always) private func toI32(_ v: __m256i) -> SIMD8<Int32> { unsafeBitCast(v, to: SIMD8<Int32>.self) }

/// Round half away from zero (C's roundf), exactly, for |v| < 2^31.
@inline(__always) func roundAway(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    let t = _mm256_cvttps_epi32(v)
    let frac = v - _mm256_cvtepi32_ps(t)          // exact; same sign as v
    var r = toI32(t)
    r &+= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: frac .>= 0.5)
    r &-= SIMD8<Int32>(repeating: 0).replacing(with: 1, where: frac .<= -0.5)
    return r
}

/// Round half to even (the default MXCSR mode).
@inline(__always) func roundEven(_ v: SIMD8<Float>) -> SIMD8<Int32> { toI32(_mm256_cvtps_epi32(v)) }

#else

/// x86's conversion result for NaN and out-of-range values (0x80000000), instead of Swift's trap.
@inline(__always) private func toInt32(_ x: Float) -> Int32 {
    x.isNaN || x >= 2_147_483_648 || x < -2_147_483_648 ? Int32.min : Int32(x)
}
@inline(__always) func roundAway(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    for i in 0..<8 { r[i] = toInt32(v[i].rounded(.toNearestOrAwayFromZero)) }
    return r
}
@inline(__always) func roundEven(_ v: SIMD8<Float>) -> SIMD8<Int32> {
    var r = SIMD8<Int32>()
    for i in 0..<8 { r[i] = toInt32(v[i].rounded(.toNearestOrEven)) }
    return r
}

#endif

// MARK: - Max, min, abs

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

@inline(__always) func vabs(_ v: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)
}

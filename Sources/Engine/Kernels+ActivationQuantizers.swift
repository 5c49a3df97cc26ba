// The activation quantizers behind `quantizeActivation`: one Q8_0/Q8_1 block (32 floats) or Q8_K block (256) at a
// time, vectorised, bit-identical to the reference quantizers in Dequantize.swift.

/// One Q8_0 (34 B) or Q8_1 (36 B) block, bit-identical to the reference.
@inline(__always) func quantizeQ8Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, withSum: Bool) {
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
@inline(__always) func quantizeQ8KBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
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

// The block kernels in plain Swift, for builds without AVX2 (REFRAIN_PORTABLE, or not x86-64): the same sums
// as Kernels+AVX2.swift, not tuned.

#if arch(x86_64) && !REFRAIN_PORTABLE
// (The AVX2 kernels: Kernels+AVX2.swift.)
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

struct Q5_1Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 24 }
    static var xBytes: Int { 36 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let qh = Int32(bitPattern: w.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        var s: Int32 = 0
        for j in 0..<16 {
            let q = u8(w, 8 + j)
            let a = (q & 0xF) | (((qh >> Int32(j)) & 1) << 4)
            let b = (q >> 4) | (((qh >> Int32(j + 16)) & 1) << 4)
            s &+= a * i8(x, 4 + j) + b * i8(x, 20 + j)
        }
        acc.s += f16(w) * f16(x) * Float(s) + f16(w, 2) * f16(x, 2)
    }
}

/// IQ4_NL and MXFP4: 32 nibbles indexing a table of 16 levels, against Q8_0; `d` is the weight block's scale.
@inline(__always) private func tableDot(_ qs: UnsafeRawPointer, _ table: [Int8], _ d: Float, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
    var s: Int32 = 0
    for j in 0..<16 {
        let q = Int(u8(qs, j))
        s &+= Int32(table[q & 0xF]) * i8(x, 2 + j) + Int32(table[q >> 4]) * i8(x, 18 + j)
    }
    acc.s += d * f16(x) * Float(s)
}

struct IQ4_NLDot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 18 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        tableDot(w + 2, kvaluesIQ4NL, f16(w), x, &acc)
    }
}

struct MXFP4Dot: BlockDot {
    static var elems: Int { 32 }
    static var wBytes: Int { 17 }
    static var xBytes: Int { 34 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        tableDot(w + 1, kvaluesMXFP4, e8m0Half(w.load(as: UInt8.self)), x, &acc)
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

/// Q2_K: per 16 elements a 4-bit scale and a 4-bit min; the mins meet the activation's bsums.
struct Q2_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 84 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var summs: Int32 = 0
        for k in 0..<16 { summs &+= i16(x, 260 + 2 * k) * (u8(w, k) >> 4) }
        var isum: Int32 = 0
        for k in 0..<16 {
            // Elements 16k..<16k+16: half h = k / 8, bit pair j = (k / 2) % 4, the half's bytes l0..<l0+16.
            let h = k / 8, j = (k / 2) % 4, l0 = 16 * (k % 2)
            var s: Int32 = 0
            for l in l0..<l0 + 16 { s &+= i8(x, 4 + 128 * h + 32 * j + l) * ((u8(w, 16 + 32 * h + l) >> Int32(2 * j)) & 3) }
            isum &+= (u8(w, k) & 0xF) * s
        }
        let dx = f32(x)
        acc.s += dx * f16(w, 80) * Float(isum) - dx * f16(w, 82) * Float(summs)
    }
}

/// Q3_K: 2 low bits, a high bit (clear means -4), a signed 6-bit scale per 16 elements.
struct Q3_KDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 110 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        var sumi: Int32 = 0
        for k in 0..<16 {
            let h = k / 8, j = (k / 2) % 4, l0 = 16 * (k % 2)
            var s: Int32 = 0
            for l in l0..<l0 + 16 {
                let low = (u8(w, 32 + 32 * h + l) >> Int32(2 * j)) & 3
                let high = (u8(w, l) >> Int32(4 * h + j)) & 1
                s &+= (low - (high == 0 ? 4 : 0)) * i8(x, 4 + 128 * h + 32 * j + l)
            }
            sumi &+= Int32(q3KScale(k, w + 96) - 32) * s
        }
        acc.s += f16(w, 108) * f32(x) * Float(sumi)
    }
}

/// IQ4_XS: eight IQ4_NL-style sub-blocks of 32 with signed 6-bit scales, each scaled in float (as ggml's).
struct IQ4_XSDot: BlockDot {
    static var elems: Int { 256 }
    static var wBytes: Int { 136 }
    static var xBytes: Int { 292 }
    @inline(__always) static func load(_ w: UnsafeRawPointer) -> UnsafeRawPointer { w }
    @inline(__always) static func dot(_ w: W, _ x: UnsafeRawPointer, _ acc: inout DotAcc) {
        let d = f16(w) * f32(x)
        for j in 0..<8 {
            var s: Int32 = 0
            for l in 0..<16 {
                let q = Int(u8(w, 8 + 16 * j + l))
                s &+= Int32(kvaluesIQ4NL[q & 0xF]) * i8(x, 4 + 32 * j + l) + Int32(kvaluesIQ4NL[q >> 4]) * i8(x, 20 + 32 * j + l)
            }
            acc.s += d * Float(iq4XSScale(j, w) - 32) * Float(s)
        }
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

#endif

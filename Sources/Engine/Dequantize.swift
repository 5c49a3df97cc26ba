// Scalar reference code for the tensor types: dequantizers for every supported weight type and
// quantizers for the activation formats (Q8_0, Q8_1, Q8_K). These follow ggml's `dequantize_row_*`
// and `quantize_row_q8_*_ref` element for element and are the truth the fast kernels are tested
// against, so they are written to be read, not to be fast.
//
// Block layouts (all little-endian, blocks packed with no padding):
//   Q4_0 (18 B / 32):  f16 d; u8 qs[16]                 x = d * (nibble - 8)
//   Q4_1 (20 B / 32):  f16 d, m; u8 qs[16]              x = d * nibble + m
//   Q5_0 (22 B / 32):  f16 d; u8 qh[4]; u8 qs[16]       x = d * ((nibble | bit << 4) - 16)
//   Q5_1 (24 B / 32):  f16 d, m; u8 qh[4]; u8 qs[16]    x = d * (nibble | bit << 4) + m
//   IQ4_NL (18 B / 32): f16 d; u8 qs[16]                x = d * kvaluesIQ4NL[nibble]
//   MXFP4 (17 B / 32): u8 e (E8M0); u8 qs[16]           x = 2^(e - 128) * kvaluesMXFP4[nibble]
//   Q8_0 (34 B / 32):  f16 d; i8 qs[32]                 x = d * q
//   Q8_1 (36 B / 32):  f16 d, s; i8 qs[32]              x = d * q, s = d * sum(q)
//   Q2_K (84 B / 256):  u8 scales[16]; u8 qs[64]; f16 d, dmin
//   Q3_K (110 B / 256): u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d
//   Q4_K (144 B / 256): f16 d, dmin; u8 scales[12]; u8 qs[128]
//   Q5_K (176 B / 256): f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
//   Q6_K (210 B / 256): u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
//   Q8_K (292 B / 256): f32 d; i8 qs[256]; i16 bsums[16]
//   IQ4_XS (136 B / 256): f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]
// In the 32-element types, byte j of qs holds element j in its low nibble and element j + 16 in its
// high nibble.

/// Converts IEEE half-precision bits to a Float, in software (exact; used by the reference code).
@inlinable
public func halfBitsToFloat(_ h: UInt16) -> Float {
    let negative = (h & 0x8000) != 0
    let exponent = Int((h >> 10) & 0x1f)
    let mantissa = UInt32(h & 0x3ff)
    let magnitude: Float
    if exponent == 0 {
        magnitude = Float(mantissa) * 0x1p-24                       // zero or subnormal
    } else if exponent == 31 {
        magnitude = Float(bitPattern: 0x7f80_0000 | (mantissa << 13)) // inf or NaN
    } else {
        magnitude = Float(bitPattern: UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
    return negative ? -magnitude : magnitude
}

/// Converts a Float to IEEE half-precision bits, rounding to nearest-even (as ggml's FP32_TO_FP16).
@inlinable
public func floatToHalfBits(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
}

/// Converts bfloat16 bits to a Float (bf16 is the top half of an f32).
@inlinable
public func bf16BitsToFloat(_ h: UInt16) -> Float {
    Float(bitPattern: UInt32(h) << 16)
}

// MARK: - Block field access (unaligned, little-endian)

@inline(__always) private func f16At(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfBitsToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}
@inline(__always) private func u8At(_ p: UnsafeRawPointer, _ offset: Int) -> Int {
    Int(p.load(fromByteOffset: offset, as: UInt8.self))
}
@inline(__always) private func i8At(_ p: UnsafeRawPointer, _ offset: Int) -> Int {
    Int(p.load(fromByteOffset: offset, as: Int8.self))
}

/// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K/Q5_K block, from its 12 packed bytes:
/// bytes 0-3 hold the low 6 bits of scales 0-3 (top 2 bits: high bits of scale 4-7), bytes 4-7 the
/// same for mins, and bytes 8-11 the low 4 bits of scale (low nibble) and min (high nibble) 4-7.
@inline(__always)
func kQuantScaleMin(_ j: Int, _ scales: UnsafeRawPointer) -> (scale: Int, min: Int) {
    let q = { (i: Int) -> Int in u8At(scales, i) }
    if j < 4 {
        return (q(j) & 63, q(j + 4) & 63)
    }
    return ((q(j + 4) & 0xF) | ((q(j - 4) >> 6) << 4),
            (q(j + 4) >> 4) | ((q(j) >> 6) << 4))
}

/// The 6-bit scale of sub-block `k` (0..<16) of a Q3_K block, from its 12 packed bytes, before the -32
/// offset: the low 4 bits are nibble k / 8 of byte k % 8, the top 2 bits are bit pair k / 4 of byte 8 + k % 4.
@inline(__always)
func q3KScale(_ k: Int, _ scales: UnsafeRawPointer) -> Int {
    let low = (u8At(scales, k % 8) >> (4 * (k / 8))) & 0xF
    let high = (u8At(scales, 8 + k % 4) >> (2 * (k / 4))) & 3
    return low | high << 4
}

/// The 6-bit scale of sub-block `j` (0..<8) of an IQ4_XS block `b`, before the -32 offset: low 4 bits
/// from nibble j % 2 of scales_l[j / 2], top 2 bits from bit pair j of scales_h.
@inline(__always)
func iq4XSScale(_ j: Int, _ b: UnsafeRawPointer) -> Int {
    let h = Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
    return ((u8At(b, 4 + j / 2) >> (4 * (j % 2))) & 0xF) | ((h >> (2 * j)) & 3) << 4
}

/// IQ4_NL's (and IQ4_XS's) 16 non-linear levels, as ggml's `kvalues_iq4nl`.
let kvaluesIQ4NL: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

/// MXFP4's 16 levels: the E2M1 values doubled (so that they are integers), as ggml's `kvalues_mxfp4`.
let kvaluesMXFP4: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

/// An MXFP4 block's E8M0 scale halved, 2^(e - 128) (the half undoes the doubling of `kvaluesMXFP4`),
/// as ggml's `ggml_e8m0_to_fp32_half`: e = 0 and 1 give the subnormals 2^-128 and 2^-127.
@inline(__always)
func e8m0Half(_ e: UInt8) -> Float {
    Float(bitPattern: e < 2 ? UInt32(0x0020_0000) << UInt32(e) : UInt32(e - 1) << 23)
}

// MARK: - Dequantization

/// Reference dequantizers, bit-exact with ggml's `dequantize_row_*`.
public enum Dequantize {
    /// The types `row` accepts: the supported weight types and the Q8 activation formats.
    public static let types: Set<GGMLType> = GGMLType.supported.union([.q8_1, .q8_K])

    /// Dequantizes `count` elements of `type` starting at `src` into `dst`.
    /// `count` must be a multiple of the type's block size.
    public static func row(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        precondition(types.contains(type), "Dequantize: unsupported type \(type)")
        precondition(count >= 0 && count % type.blockSize == 0, "Dequantize: \(count) is not a whole number of \(type) blocks")
        let nb = count / type.blockSize
        for b in 0..<nb {
            let blk = src + b * type.typeSize
            let y = dst + b * type.blockSize
            switch type {
            case .f32: y[0] = blk.loadUnaligned(as: Float.self)
            case .f16: y[0] = f16At(blk, 0)
            case .bf16: y[0] = bf16BitsToFloat(blk.loadUnaligned(as: UInt16.self))
            case .q4_0: q4_0(blk, y)
            case .q4_1: q4_1(blk, y)
            case .q5_0: q5_0(blk, y)
            case .q5_1: q5_1(blk, y)
            case .iq4_nl: iq4_nl(blk, y)
            case .mxfp4: mxfp4(blk, y)
            case .q2_K: q2_K(blk, y)
            case .q3_K: q3_K(blk, y)
            case .iq4_xs: iq4_xs(blk, y)
            case .q8_0: q8_0(blk, y)
            case .q8_1: q8_1(blk, y)
            case .q4_K: q4_K(blk, y)
            case .q5_K: q5_K(blk, y)
            case .q6_K: q6_K(blk, y)
            case .q8_K: q8_K(blk, y)
            default: fatalError("unreachable")
            }
        }
    }

    static func q4_0(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        for j in 0..<16 {
            let q = u8At(b, 2 + j)
            y[j] = Float((q & 0xF) - 8) * d
            y[j + 16] = Float((q >> 4) - 8) * d
        }
    }

    static func q4_1(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0), m = f16At(b, 2)
        for j in 0..<16 {
            let q = u8At(b, 4 + j)
            y[j] = Float(q & 0xF) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    static func q5_0(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        let qh = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        for j in 0..<16 {
            let q = u8At(b, 6 + j)
            let h0 = ((qh >> j) & 1) << 4          // fifth bit of element j
            let h1 = ((qh >> (j + 16)) & 1) << 4   // fifth bit of element j + 16
            y[j] = Float(((q & 0xF) | h0) - 16) * d
            y[j + 16] = Float(((q >> 4) | h1) - 16) * d
        }
    }

    static func q5_1(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0), m = f16At(b, 2)
        let qh = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        for j in 0..<16 {
            let q = u8At(b, 8 + j)
            let h0 = ((qh >> j) & 1) << 4
            let h1 = ((qh >> (j + 16)) & 1) << 4
            y[j] = Float((q & 0xF) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }

    static func iq4_nl(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        for j in 0..<16 {
            let q = u8At(b, 2 + j)
            y[j] = d * Float(kvaluesIQ4NL[q & 0xF])
            y[j + 16] = d * Float(kvaluesIQ4NL[q >> 4])
        }
    }

    static func mxfp4(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = e8m0Half(b.load(as: UInt8.self))
        for j in 0..<16 {
            let q = u8At(b, 1 + j)
            y[j] = Float(kvaluesMXFP4[q & 0xF]) * d
            y[j + 16] = Float(kvaluesMXFP4[q >> 4]) * d
        }
    }

    static func q8_0(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        for j in 0..<32 { y[j] = Float(i8At(b, 2 + j)) * d }
    }

    static func q8_1(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        for j in 0..<32 { y[j] = Float(i8At(b, 4 + j)) * d }
    }

    static func q2_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 80), dmin = f16At(b, 82)
        // Two halves of 128. Element 128h + 32j + l (l < 32) is bits 2j-2j+1 of qs[32h + l]; each 16
        // elements k have their own scale byte: low nibble scale, high nibble min.
        for h in 0..<2 {
            for j in 0..<4 {
                for l in 0..<32 {
                    let e = 128 * h + 32 * j + l
                    let sc = u8At(b, e / 16)
                    let q = (u8At(b, 16 + 32 * h + l) >> (2 * j)) & 3
                    y[e] = d * Float(sc & 0xF) * Float(q) - dmin * Float(sc >> 4)
                }
            }
        }
    }

    static func q3_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 108)
        // As Q2_K's low 2 bits (qs at 32), less 4 where bit 4h + j of hmask[l] is clear; signed 6-bit
        // scales (stored +32) per 16 elements.
        for h in 0..<2 {
            for j in 0..<4 {
                for l in 0..<32 {
                    let e = 128 * h + 32 * j + l
                    let low = (u8At(b, 32 + 32 * h + l) >> (2 * j)) & 3
                    let high = (u8At(b, l) >> (4 * h + j)) & 1
                    let dl = d * Float(q3KScale(e / 16, b + 96) - 32)
                    y[e] = dl * Float(low - (high == 0 ? 4 : 0))
                }
            }
        }
    }

    static func iq4_xs(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0)
        // Eight sub-blocks of 32, laid out as IQ4_NL blocks, each with a signed 6-bit scale (stored +32).
        for j in 0..<8 {
            let dl = d * Float(iq4XSScale(j, b) - 32)
            for l in 0..<16 {
                let q = u8At(b, 8 + 16 * j + l)
                y[32 * j + l] = dl * Float(kvaluesIQ4NL[q & 0xF])
                y[32 * j + l + 16] = dl * Float(kvaluesIQ4NL[q >> 4])
            }
        }
    }

    static func q4_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0), dmin = f16At(b, 2)
        let scales = b + 4
        // Four groups of 64: 32 bytes, low nibbles are sub-block 2g, high nibbles sub-block 2g+1.
        for g in 0..<4 {
            let (sc0, m0) = kQuantScaleMin(2 * g, scales)
            let (sc1, m1) = kQuantScaleMin(2 * g + 1, scales)
            let d0 = d * Float(sc0), min0 = dmin * Float(m0)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            for l in 0..<32 {
                let q = u8At(b, 16 + 32 * g + l)
                y[64 * g + l] = d0 * Float(q & 0xF) - min0
                y[64 * g + 32 + l] = d1 * Float(q >> 4) - min1
            }
        }
    }

    static func q5_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 0), dmin = f16At(b, 2)
        let scales = b + 4
        // Like Q4_K, plus a fifth bit: bit k of qh[l] belongs to element 32k + l.
        for g in 0..<4 {
            let (sc0, m0) = kQuantScaleMin(2 * g, scales)
            let (sc1, m1) = kQuantScaleMin(2 * g + 1, scales)
            let d0 = d * Float(sc0), min0 = dmin * Float(m0)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            for l in 0..<32 {
                let q = u8At(b, 48 + 32 * g + l)
                let h = u8At(b, 16 + l)
                let h0 = ((h >> (2 * g)) & 1) << 4
                let h1 = ((h >> (2 * g + 1)) & 1) << 4
                y[64 * g + l] = d0 * Float((q & 0xF) + h0) - min0
                y[64 * g + 32 + l] = d1 * Float((q >> 4) + h1) - min1
            }
        }
    }

    static func q6_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16At(b, 208)
        // Two halves of 128. In half h, for l in 0..<32: ql[64h + l] and ql[64h + 32 + l] give the
        // low 4 bits of elements l, l+32 (low nibbles) and l+64, l+96 (high nibbles); qh[32h + l]
        // gives their top 2 bits in bit pairs 0-1, 2-3, 4-5, 6-7. Scales are one per 16 elements.
        for h in 0..<2 {
            for l in 0..<32 {
                let ql0 = u8At(b, 64 * h + l), ql1 = u8At(b, 64 * h + 32 + l)
                let qh = u8At(b, 128 + 32 * h + l)
                let q1 = ((ql0 & 0xF) | (((qh >> 0) & 3) << 4)) - 32
                let q2 = ((ql1 & 0xF) | (((qh >> 2) & 3) << 4)) - 32
                let q3 = ((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32
                let q4 = ((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32
                let s = 192 + 8 * h + l / 16
                let base = 128 * h + l
                y[base + 0] = d * Float(i8At(b, s + 0)) * Float(q1)
                y[base + 32] = d * Float(i8At(b, s + 2)) * Float(q2)
                y[base + 64] = d * Float(i8At(b, s + 4)) * Float(q3)
                y[base + 96] = d * Float(i8At(b, s + 6)) * Float(q4)
            }
        }
    }

    static func q8_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = b.loadUnaligned(as: Float.self)
        for j in 0..<256 { y[j] = d * Float(i8At(b, 4 + j)) }
    }
}

// MARK: - Reference quantizers

/// Reference quantizers for the activation formats, bit-exact with ggml's
/// `quantize_row_q8_0_ref`, `quantize_row_q8_1_ref` and `quantize_row_q8_K_ref`.
public enum Quantize {
    /// Quantizes `count` floats (a multiple of the block size) into `dst` in `type`'s format
    /// (Q8_0, Q8_1 or Q8_K), with the reference code.
    public static func rowRef(_ type: GGMLType, _ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        precondition(count >= 0 && count % type.blockSize == 0, "Quantize: \(count) is not a whole number of \(type) blocks")
        let nb = count / type.blockSize
        for b in 0..<nb {
            let xb = x + b * type.blockSize
            let yb = dst + b * type.typeSize
            switch type {
            case .q8_0: q8_0(xb, yb)
            case .q8_1: q8_1(xb, yb)
            case .q8_K: q8_K(xb, yb)
            default: preconditionFailure("Quantize.rowRef: unsupported type \(type)")
            }
        }
    }

    /// d = max|x| / 127, q = round-half-away(x / d).
    static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        y.storeBytes(of: floatToHalfBits(d).littleEndian, as: UInt16.self)
        for j in 0..<32 {
            let q = (x[j] * id).rounded(.toNearestOrAwayFromZero)
            y.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
        }
    }

    /// As Q8_0, plus s = d * sum(q) (with d before rounding to f16).
    static func q8_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        var sum = 0
        for j in 0..<32 {
            let q = Int8((x[j] * id).rounded(.toNearestOrAwayFromZero))
            y.storeBytes(of: q, toByteOffset: 4 + j, as: Int8.self)
            sum += Int(q)
        }
        y.storeBytes(of: floatToHalfBits(d).littleEndian, as: UInt16.self)
        y.storeBytes(of: floatToHalfBits(Float(sum) * d).littleEndian, toByteOffset: 2, as: UInt16.self)
    }

    /// Scale from the element of largest magnitude (first one on ties): iscale = -127 / that
    /// element, q = min(127, round-half-even(iscale * x)), d = 1 / iscale (f32), and
    /// bsums[k] = sum of q over elements 16k..<16k+16.
    static func q8_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0, maxv: Float = 0
        for j in 0..<256 where abs(x[j]) > amax {
            amax = abs(x[j]); maxv = x[j]
        }
        if amax == 0 {
            y.storeBytes(of: Float(0), as: Float.self)
            for j in 0..<256 { y.storeBytes(of: Int8(0), toByteOffset: 4 + j, as: Int8.self) }
            for k in 0..<16 { y.storeBytes(of: Int16(0), toByteOffset: 260 + 2 * k, as: Int16.self) }
            return
        }
        let iscale = -127 / maxv
        for k in 0..<16 {
            var sum = 0
            for j in 16 * k..<16 * k + 16 {
                let v = min(127, Int((iscale * x[j]).rounded(.toNearestOrEven)))
                y.storeBytes(of: Int8(v), toByteOffset: 4 + j, as: Int8.self)
                sum += v
            }
            y.storeBytes(of: Int16(sum).littleEndian, toByteOffset: 260 + 2 * k, as: Int16.self)
        }
        y.storeBytes(of: 1 / iscale, as: Float.self)
    }
}

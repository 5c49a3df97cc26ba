import XCTest
import Foundation
import Engine

/// A small deterministic generator (SplitMix64) so failures reproduce (the kernel tests' data, the fuzzers' inputs).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func float(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
}

let weightTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q4_K, .q5_K, .q6_K] + addedTypes
/// The quantized types added after the first ten (each also has a llama.cpp fixture, see TensorTypeTests).
let addedTypes: [GGMLType] = [.q5_1, .q2_K, .q3_K, .iq4_nl, .iq4_xs, .mxfp4]

/// Random bytes for `count` elements of `type`, with the float fields set to sane values
/// (the quantized fields keep every bit pattern random).
func randomRow(_ type: GGMLType, count: Int, _ rng: inout SplitMix) -> [UInt8] {
    let bytes = type.rowBytes(count)!
    var row = [UInt8](repeating: 0, count: bytes)
    for i in 0..<bytes { row[i] = UInt8(truncatingIfNeeded: rng.next()) }
    row.withUnsafeMutableBytes { p in
        func setF16(_ off: Int, _ v: Float) { p.storeBytes(of: Float16(v).bitPattern, toByteOffset: off, as: UInt16.self) }
        let nb = count / type.blockSize
        for b in 0..<nb {
            let o = b * type.typeSize
            switch type {
            case .f32: p.storeBytes(of: rng.float(-1, 1), toByteOffset: o, as: Float.self)
            case .f16: setF16(o, rng.float(-1, 1))
            case .bf16: p.storeBytes(of: UInt16(rng.float(-1, 1).bitPattern >> 16), toByteOffset: o, as: UInt16.self)
            case .q4_0, .q5_0, .q8_0: setF16(o, rng.float(0.001, 0.02))
            case .q4_1, .q5_1: setF16(o, rng.float(0.001, 0.02)); setF16(o + 2, rng.float(-0.2, 0.05))
            case .iq4_nl: setF16(o, rng.float(-0.0005, 0.0005))
            case .iq4_xs: setF16(o, rng.float(-0.0001, 0.0001))
            case .mxfp4: p.storeBytes(of: UInt8(truncatingIfNeeded: 115 + rng.next() % 10), toByteOffset: o, as: UInt8.self)
            case .q2_K: setF16(o + 80, rng.float(0.0005, 0.005)); setF16(o + 82, rng.float(0.0005, 0.005))
            case .q3_K: setF16(o + 108, rng.float(-0.0005, 0.0005))
            case .q4_K, .q5_K: setF16(o, rng.float(0.0005, 0.005)); setF16(o + 2, rng.float(0.0005, 0.005))
            case .q6_K: setF16(o + 208, rng.float(0.0002, 0.002))
            default: fatalError()
            }
        }
    }
    return row
}

func randomFloats(_ n: Int, _ rng: inout SplitMix) -> [Float] {
    (0..<n).map { i in rng.float(-1, 1) * (i % 37 == 0 ? 8 : 1) }   // a few outliers
}

func dequantized(_ type: GGMLType, _ bytes: [UInt8], count: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: count)
    bytes.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Dequantize.row(type, src.baseAddress!, $0.baseAddress!, count: count) } }
    return out
}

func quantized(_ x: [Float], to type: GGMLType, reference: Bool = false) -> [UInt8] {
    var out = [UInt8](repeating: 0xAB, count: type.rowBytes(x.count)!)
    x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBytes { dst in
            if reference { Quantize.rowRef(type, xp.baseAddress!, dst.baseAddress!, count: x.count) }
            else { quantizeActivation(xp.baseAddress!, count: x.count, to: type, into: dst.baseAddress!) }
        }
    }
    return out
}

func fastDot(_ type: GGMLType, _ w: [UInt8], _ xq: [UInt8], _ n: Int) -> Float {
    w.withUnsafeBytes { wp in xq.withUnsafeBytes { xp in vecDot(type, wp.baseAddress!, xp.baseAddress!, count: n) } }
}

final class KernelTests: XCTestCase {

    // MARK: conversions

    func testHalfConversionAllValues() {
        for bits in 0...0xFFFF {
            let h = UInt16(bits)
            let mine = halfBitsToFloat(h), hw = Float(Float16(bitPattern: h))
            if hw.isNaN { XCTAssertTrue(mine.isNaN); continue }
            XCTAssertEqual(mine.bitPattern, hw.bitPattern, "half \(String(h, radix: 16))")
        }
        XCTAssertEqual(floatToHalfBits(1.0), 0x3C00)
        XCTAssertEqual(floatToHalfBits(-2.0), 0xC000)
        XCTAssertEqual(bf16BitsToFloat(0x3F80), 1.0)
    }

    // MARK: hand-built blocks

    private func check(_ type: GGMLType, _ bytes: [UInt8], _ expect: [Float], file: StaticString = #filePath, line: UInt = #line) {
        let got = dequantized(type, bytes, count: expect.count)
        for i in 0..<expect.count where got[i] != expect[i] {
            XCTFail("\(type)[\(i)] = \(got[i]), expected \(expect[i])", file: file, line: line)
            return
        }
    }
    private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

    func testDequantizeKnownBlocks() {
        // Floats.
        check(.f32, [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0], [1, -2])
        check(.f16, le16(0x3C00) + le16(0xC000) + le16(0x7BFF) + le16(0x0001) + le16(0x3555),
              [1, -2, 65504, 0x1p-24, 0.333251953125])
        check(.bf16, le16(0x3F80) + le16(0xC040), [1, -3])

        // Q4_0: d = 0.5; byte 0 = 0x1F → elements 0 and 16 are (15-8)d and (1-8)d; 0x88 → 0.
        var e = [Float](repeating: 0, count: 32); e[0] = 3.5; e[16] = -3.5
        check(.q4_0, le16(0x3800) + [0x1F] + [UInt8](repeating: 0x88, count: 15), e)

        // Q4_1: d = 0.5, m = -1; zero nibbles give m.
        e = [Float](repeating: -1, count: 32); e[0] = 6.5; e[16] = -0.5
        check(.q4_1, le16(0x3800) + le16(0xBC00) + [0x1F] + [UInt8](repeating: 0, count: 15), e)

        // Q5_0: d = 1; fifth bits set for elements 0 and 16 only; zero nibbles give -16.
        e = [Float](repeating: -16, count: 32); e[0] = 1; e[16] = 2
        check(.q5_0, le16(0x3C00) + [0x01, 0x00, 0x01, 0x00] + [0x21] + [UInt8](repeating: 0, count: 15), e)

        // Q8_0: d = 2.
        e = [Float](repeating: 0, count: 32); e[0] = -6; e[31] = 254
        check(.q8_0, le16(0x4000) + [0xFD] + [UInt8](repeating: 0, count: 30) + [127], e)

        // Q8_1: d = 0.25 (s is not used by dequantization).
        e = [Float](repeating: 0, count: 32); e[1] = -32
        check(.q8_1, le16(0x3400) + le16(0) + [0, 0x80] + [UInt8](repeating: 0, count: 30), e)

        // Q4_K / Q5_K header: d = 1, dmin = 0.5; sub-block 0: scale 3, min 2 (bytes 0 and 4);
        // sub-block 5: scale = (byte 9 & 15) | (byte 1 >> 6) << 4 = 17, min = (byte 9 >> 4) = 2.
        var scales = [UInt8](repeating: 0, count: 12)
        scales[0] = 3; scales[4] = 2; scales[1] = 0x40; scales[9] = 0x21
        let kHeader = le16(0x3C00) + le16(0x3800) + scales
        var qs = [UInt8](repeating: 0, count: 128)
        qs[0] = 0x05          // element 0 (sub-block 0, low nibble) = 5
        qs[64] = 0x30         // element 160 (sub-block 5, high nibble of group 2) = 3
        e = [Float](repeating: 0, count: 256)
        for i in 0..<32 { e[i] = -1 }; for i in 160..<192 { e[i] = -1 }
        e[0] = 3 * 5 - 1; e[160] = 17 * 3 - 1
        check(.q4_K, kHeader + qs, e)

        var qh = [UInt8](repeating: 0, count: 32)
        qh[0] = 0b0010_0001   // fifth bit for element 0 (bit 0) and element 160 (bit 5)
        e[0] = 3 * 21 - 1; e[160] = 17 * 19 - 1
        check(.q5_K, kHeader + qh + qs, e)

        // Q6_K: d = 0.5, scale 0 = 2, scale 15 = -1, the others 0. Element 0: low 4 bits 5, top
        // bits 2 → 37 - 32 = 5. Element 255: ql[127] high nibble 15, qh[63] bits 6-7 = 3 → 31.
        var ql = [UInt8](repeating: 0, count: 128); ql[0] = 0x05; ql[127] = 0xF0
        var qh6 = [UInt8](repeating: 0, count: 64); qh6[0] = 0x02; qh6[63] = 0xC0
        var sc6 = [UInt8](repeating: 0, count: 16); sc6[0] = 2; sc6[15] = 0xFF
        e = [Float](repeating: 0, count: 256)
        for i in 0..<16 { e[i] = 0.5 * 2 * -32 }
        for i in 240..<256 { e[i] = 0.5 * -1 * -32 }
        e[0] = 0.5 * 2 * 5; e[255] = 0.5 * -1 * 31
        check(.q6_K, ql + qh6 + sc6 + le16(0x3800), e)
    }

    // MARK: activation quantizers

    func testQuantizerRoundingAndLayout() {
        // Q8_0/Q8_1: amax = 127 → d = 1; ties round away from zero.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.5; x[4] = -0.5; x[5] = 1.5; x[6] = -126.49
        for fast in [false, true] {
            let q0 = quantized(x, to: .q8_0, reference: !fast)
            XCTAssertEqual(Array(q0[0..<2]), le16(0x3C00))
            XCTAssertEqual(q0[2..<9].map { Int8(bitPattern: $0) }, [127, 3, -3, 1, -1, 2, -126])
            let q1 = quantized(x, to: .q8_1, reference: !fast)
            XCTAssertEqual(Array(q1[0..<2]), le16(0x3C00))
            XCTAssertEqual(Array(q1[2..<4]), le16(floatToHalfBits(127 + 3 - 3 + 1 - 1 + 2 - 126)))
            XCTAssertEqual(q1[4..<11].map { Int8(bitPattern: $0) }, [127, 3, -3, 1, -1, 2, -126])
        }
        // Q8_K: the first largest-magnitude element is -127 → iscale = 1, d = 1; ties to even.
        var y = [Float](repeating: 0, count: 256)
        y[0] = -127; y[1] = 2.5; y[2] = -2.5; y[3] = 0.5; y[4] = 1.5; y[5] = 127; y[17] = 3
        for fast in [false, true] {
            let q = quantized(y, to: .q8_K, reference: !fast)
            q.withUnsafeBytes { p in
                XCTAssertEqual(p.loadUnaligned(as: Float.self), 1)
                XCTAssertEqual((0..<6).map { p.load(fromByteOffset: 4 + $0, as: Int8.self) }, [-127, 2, -2, 0, 2, 127])
                XCTAssertEqual(p.loadUnaligned(fromByteOffset: 260, as: Int16.self), -127 + 2 - 2 + 0 + 2 + 127)
                XCTAssertEqual(p.loadUnaligned(fromByteOffset: 262, as: Int16.self), 3)
            }
        }
        // All zero → all-zero block.
        XCTAssertEqual(quantized([Float](repeating: 0, count: 256), to: .q8_K), [UInt8](repeating: 0, count: 292))
    }

    func testQuantizerRoundTripAndFastMatchesReference() {
        var rng = SplitMix(7)
        for type in [GGMLType.q8_0, .q8_1, .q8_K] {
            var maxRel: Float = 0
            for trial in 0..<20 {
                let n = 1024
                var x = randomFloats(n, &rng)
                if trial == 1 { for i in 0..<n { x[i] *= 1e-3 } }
                if trial == 2 { for i in 0..<n { x[i] = (x[i] * 8).rounded() / 2 } }   // many exact ties
                let ref = quantized(x, to: type, reference: true)
                let fast = quantized(x, to: type)
                XCTAssertEqual(ref, fast, "\(type) fast quantizer differs from the reference (trial \(trial))")
                let back = dequantized(type, fast, count: n)
                for b in 0..<n / type.blockSize {
                    let blk = b * type.blockSize..<(b + 1) * type.blockSize
                    let amax = blk.map { abs(x[$0]) }.max()!
                    // Half a step of d = amax/127, plus for Q8_0/Q8_1 the f16 rounding of d
                    // (coarse when d is an f16 subnormal), times up to 127 steps.
                    let d = amax / 127
                    let dStored = type == .q8_K ? d : Float(Float16(d))
                    let bound = 0.5 * d + 127 * abs(dStored - d) + 1e-6 * amax
                    for i in blk {
                        let err = abs(back[i] - x[i])
                        maxRel = max(maxRel, err / amax)
                        XCTAssertLessThanOrEqual(err, bound, "\(type) round trip, element \(i)")
                    }
                }
            }
            print("\(type) round trip: max |x' - x| / amax = \(maxRel)")
        }
    }

    // MARK: dot kernels

    /// The reference for a row: Σ dequant(w)·dequant(x) in Double, except that for Q4_1 and Q5_1 the min
    /// term uses each Q8_1 block's stored s (as the kernel, and ggml's, must).
    func referenceDot(_ type: GGMLType, _ w: [UInt8], _ xq: [UInt8], _ x: [Float], _ n: Int) -> (dot: Double, absSum: Double) {
        let xt = vecDotType(for: type)
        let xd = xt == .f32 ? x : dequantized(xt, xq, count: n)
        if type == .q4_1 || type == .q5_1 {
            let wb = type.typeSize
            var w0 = w
            var sum = 0.0
            for b in 0..<n / 32 {
                let m = halfBitsToFloat(UInt16(w[wb * b + 2]) | UInt16(w[wb * b + 3]) << 8)
                let s = halfBitsToFloat(UInt16(xq[36 * b + 2]) | UInt16(xq[36 * b + 3]) << 8)
                sum += Double(m) * Double(s)
                w0[wb * b + 2] = 0; w0[wb * b + 3] = 0
            }
            let wd = dequantized(type, w0, count: n)   // d·q only
            var abs = 0.0
            let wfull = dequantized(type, w, count: n)
            for i in 0..<n { sum += Double(wd[i]) * Double(xd[i]); abs += Swift.abs(Double(wfull[i]) * Double(xd[i])) }
            return (sum, abs)
        }
        let wd = dequantized(type, w, count: n)
        var sum = 0.0, abs = 0.0
        for i in 0..<n { sum += Double(wd[i]) * Double(xd[i]); abs += Swift.abs(Double(wd[i]) * Double(xd[i])) }
        return (sum, abs)
    }

    func testVecDotAgainstReference() {
        var rng = SplitMix(42)
        for type in weightTypes {
            var maxTight = 0.0, maxLoose = 0.0
            let sizes = type.blockSize == 256 ? [256, 512, 2048, 4096] : [32, 64, 96, 576, 1536, 4096]
            var extra: [Int] = []
            if type.blockSize == 1 { extra = [1, 7, 33, 100] }   // float types: tails
            for n in sizes + extra {
                for _ in 0..<4 {
                    let w = randomRow(type, count: n, &rng)
                    let x = randomFloats(n, &rng)
                    let xq = quantized(x, to: vecDotType(for: type))
                    let got = Double(fastDot(type, w, xq, n))
                    let (ref, absSum) = referenceDot(type, w, xq, x, n)
                    let tight = abs(got - ref) / absSum
                    maxTight = max(maxTight, tight)
                    XCTAssertLessThan(tight, 2e-6, "\(type) n=\(n): fast \(got) vs reference \(ref)")
                    // Against the f32 activation, unquantized.
                    let wd = dequantized(type, w, count: n)
                    var exact = 0.0
                    for i in 0..<n { exact += Double(wd[i]) * Double(x[i]) }
                    let loose = abs(got - exact) / absSum
                    maxLoose = max(maxLoose, loose)
                    XCTAssertLessThan(loose, 3e-2, "\(type) n=\(n): fast \(got) vs f32 \(exact)")
                }
            }
            print("vecDot \(type): max rel diff vs reference \(maxTight), vs f32 activations \(maxLoose) (relative to Σ|w·x|)")
        }
    }

    func testMatmulTileMatchesVecDot() {
        var rng = SplitMix(3)
        for type in weightTypes {
            let n = type.blockSize == 256 ? 512 : (type.blockSize == 1 ? 200 : 160)
            // < 4: rows one at a time; else panels of rows × groups of four vectors, activation
            // scales converted per span of 64 vectors (70: two spans and two leftover vectors).
            for nx in [1, 3, 4, 7, 70] {
            let nrows = 16, outStride = 20
            let rowBytes = type.rowBytes(n)!
            var w: [UInt8] = []
            for _ in 0..<nrows { w += randomRow(type, count: n, &rng) }
            let xt = vecDotType(for: type)
            let xBytes = xt.rowBytes(n)! + 8     // padded, to check the stride is honoured
            var xs = [UInt8](repeating: 0, count: xBytes * nx)
            for t in 0..<nx {
                let q = quantized(randomFloats(n, &rng), to: xt)
                xs.replaceSubrange(t * xBytes..<t * xBytes + q.count, with: q)
            }
            var out = [Float](repeating: .nan, count: outStride * nx)
            let rows = 5..<14
            w.withUnsafeBytes { wp in
                xs.withUnsafeBytes { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        matmulTile(type, w: wp.baseAddress!, rowBytes: rowBytes, rows: rows, x: xp.baseAddress!,
                                   xBytes: xBytes, nx: nx, count: n, out: op.baseAddress!, outStride: outStride)
                    }
                    for t in 0..<nx {
                        for r in 0..<outStride {
                            let o = out[t * outStride + r]
                            if rows.contains(r) {
                                let v = vecDot(type, wp.baseAddress! + r * rowBytes, xp.baseAddress! + t * xBytes, count: n)
                                XCTAssertEqual(o.bitPattern, v.bitPattern, "\(type) row \(r) vector \(t): tile \(o) vs vecDot \(v)")
                            } else {
                                XCTAssertTrue(o.isNaN, "\(type): tile wrote outside its rows (\(r), \(t))")
                            }
                        }
                    }
                }
            }
            }
        }
    }

    /// The fast kernels against llama.cpp's own on each added type's fixture (see TensorTypeTests): the activations
    /// quantized bit for bit as ggml's CPU quantizer does, and `vecDot` of the fixture's blocks (one row) with ggml's
    /// quantized activations within float rounding of ggml's CPU vec_dot.
    func testVecDotMatchesLlamaCpp() throws {
        for type in addedTypes {
            let f = try quantFixture(type)
            let n = f.values.count
            let w = hexBytes(f.hex), ggmlXq = hexBytes(f.xq)
            XCTAssertEqual(quantized(f.x, to: vecDotType(for: type)), ggmlXq, "\(type): activations quantized unlike ggml's")
            let got = Double(fastDot(type, w, ggmlXq, n))
            var absSum = 0.0
            for i in 0..<n { absSum += abs(Double(f.values[i]) * Double(f.x[i])) }
            let rel = abs(got - f.dot) / absSum
            XCTAssertLessThan(rel, 2e-6, "\(type): vecDot \(got), llama.cpp's vec_dot \(f.dot)")
            print("vecDot \(type) vs llama.cpp's vec_dot: \(got) vs \(f.dot), rel diff \(rel) (relative to Σ|w·x|)")
        }
    }

    /// A matmul as the transformer runs one: activations quantized into the weight type's vec-dot format, then
    /// `matmulTile` over all rows (in two thread-sized parts), for several rows and prompt lengths; against the
    /// dequantized weights dotted with the f32 activations in Double, within the activation quantization's error.
    func testQuantizedMatmulAgainstDequantizedReference() {
        var rng = SplitMix(19)
        for type in addedTypes {
            for (rows, n) in [(7, type.blockSize == 256 ? 256 : 64), (12, 768)] {
                for nx in [1, 5] {
                    let xt = vecDotType(for: type)
                    let rowBytes = type.rowBytes(n)!, xBytes = xt.rowBytes(n)!
                    var w: [UInt8] = []
                    for _ in 0..<rows { w += randomRow(type, count: n, &rng) }
                    let xs = (0..<nx).map { _ in randomFloats(n, &rng) }
                    let xq = xs.flatMap { quantized($0, to: xt) }
                    var out = [Float](repeating: .nan, count: rows * nx)
                    w.withUnsafeBytes { wp in
                        xq.withUnsafeBytes { xp in
                            out.withUnsafeMutableBufferPointer { op in
                                for part in [0..<rows / 2, rows / 2..<rows] {
                                    matmulTile(type, w: wp.baseAddress!, rowBytes: rowBytes, rows: part, x: xp.baseAddress!,
                                               xBytes: xBytes, nx: nx, count: n, out: op.baseAddress!, outStride: rows)
                                }
                            }
                        }
                    }
                    var worst = 0.0
                    for r in 0..<rows {
                        let wd = dequantized(type, Array(w[r * rowBytes..<(r + 1) * rowBytes]), count: n)
                        for t in 0..<nx {
                            var exact = 0.0, absSum = 0.0
                            for i in 0..<n { exact += Double(wd[i]) * Double(xs[t][i]); absSum += abs(Double(wd[i]) * Double(xs[t][i])) }
                            let rel = abs(Double(out[t * rows + r]) - exact) / absSum
                            worst = max(worst, rel)
                            XCTAssertLessThan(rel, 3e-2, "\(type) \(rows)×\(n), vector \(t), row \(r): \(out[t * rows + r]) vs \(exact)")
                        }
                    }
                    print("matmul \(type) \(rows)×\(n) × \(nx) vectors: max rel diff vs dequantized f32 \(worst)")
                }
            }
        }
    }

    // MARK: VecOps

    func testVecOps() {
        var rng = SplitMix(11)
        for n in [1, 7, 8, 9, 64, 100, 576] {
            let a = randomFloats(n, &rng), b = randomFloats(n, &rng), wts = randomFloats(n, &rng)
            var out = [Float](repeating: 0, count: n)

            var ref = 0.0, absd = 0.0
            for i in 0..<n { ref += Double(a[i]) * Double(b[i]); absd += abs(Double(a[i]) * Double(b[i])) }
            XCTAssertLessThan(abs(Double(VecOps.dot(a, b, n)) - ref), 1e-6 * absd + 1e-30)

            var y = b
            VecOps.axpy(0.5, a, &y, n)
            for i in 0..<n { XCTAssertEqual(y[i], b[i] + 0.5 * a[i], accuracy: 1e-6) }
            VecOps.add(a, b, &out, n)
            for i in 0..<n { XCTAssertEqual(out[i], a[i] + b[i]) }
            VecOps.mul(a, b, &out, n)
            for i in 0..<n { XCTAssertEqual(out[i], a[i] * b[i]) }
            y = a; VecOps.scale(&y, 3, n)
            for i in 0..<n { XCTAssertEqual(y[i], a[i] * 3) }

            VecOps.rmsNorm(a, wts, 1e-6, n, &out)
            var ss = 0.0
            for v in a { ss += Double(v) * Double(v) }
            let inv = 1 / (ss / Double(n) + 1e-6).squareRoot()
            for i in 0..<n { XCTAssertEqual(Double(out[i]), Double(a[i]) * inv * Double(wts[i]), accuracy: 1e-5 * max(1, abs(Double(out[i])))) }

            var sm = a.map { $0 * 10 }
            if n > 3 { sm[2] = -.infinity }
            VecOps.softmax(&sm, n)
            let mx = a.map { Double($0) * 10 }.max()!
            var den = 0.0
            for i in 0..<n where !(n > 3 && i == 2) { den += Foundation.exp(Double(a[i]) * 10 - mx) }
            for i in 0..<n {
                if n > 3 && i == 2 { XCTAssertEqual(sm[i], 0); continue }
                XCTAssertEqual(Double(sm[i]), Foundation.exp(Double(a[i]) * 10 - mx) / den, accuracy: 2e-6)
            }

            VecOps.silu(a, &out, n)
            for i in 0..<n {
                let r = Double(a[i]) / (1 + Foundation.exp(-Double(a[i])))
                XCTAssertEqual(Double(out[i]), r, accuracy: 1e-6 * max(1, abs(r)))
            }
            let g = a.map { $0 * 4 }
            VecOps.gelu(g, &out, n)
            for i in 0..<n {
                let v = Double(g[i])
                let r = 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
                XCTAssertEqual(Double(out[i]), r, accuracy: 2e-6 * max(1, abs(r)))
            }
            VecOps.siluMul(a, b, &out, n)
            for i in 0..<n {
                let r = Double(a[i]) / (1 + Foundation.exp(-Double(a[i]))) * Double(b[i])
                XCTAssertEqual(Double(out[i]), r, accuracy: 1e-6 * max(1, abs(r)))
            }

            var h = [UInt16](repeating: 0, count: n)
            VecOps.f32ToF16(a, &h, n)
            var back = [Float](repeating: 0, count: n)
            VecOps.f16ToF32(h, &back, n)
            for i in 0..<n {
                XCTAssertEqual(h[i], Float16(a[i]).bitPattern)
                XCTAssertEqual(back[i], Float(Float16(a[i])))
            }
        }
    }

    func testVecExpAccuracy() {
        var maxRel: Float = 0
        var x: Float = -87
        while x < 88 {
            let v = VecOps.exp(SIMD8<Float>(repeating: x))[0]
            let r = Float(Foundation.exp(Double(x)))
            maxRel = max(maxRel, abs(v - r) / r)
            x += 0.0137
        }
        print("VecOps.exp max relative error on [-87, 88]: \(maxRel)")
        XCTAssertLessThan(maxRel, 4e-7)
        XCTAssertEqual(VecOps.exp(SIMD8(repeating: -.infinity))[0], 0)
        XCTAssertTrue(VecOps.exp(SIMD8(repeating: .nan))[0].isNaN)
        XCTAssertEqual(VecOps.exp(SIMD8(repeating: 0))[0], 1)
    }

    // MARK: throughput (REFRAIN_BENCH=1 swift test -c release --filter KernelTests.testThroughput)

    func testThroughput() throws {
        guard ProcessInfo.processInfo.environment["REFRAIN_BENCH"] != nil else { throw XCTSkip("set REFRAIN_BENCH=1") }
        var rng = SplitMix(5)
        func time(_ body: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0..<5 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
            }
            return best
        }
        for type in weightTypes {
            let n = type.blockSize == 256 ? 1536 : 576
            let xt = vecDotType(for: type)
            let rowBytes = type.rowBytes(n)!
            // 135M weights (about a 135M-parameter model's matvecs) from DRAM, and 1M weights from cache.
            for (label, rows) in [("135M weights", 135_000_000 / n), ("cache-resident", 1_000_000 / n)] {
                let total = rows * rowBytes
                let w = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
                defer { w.deallocate() }
                let one = randomRow(type, count: n, &rng)
                for r in 0..<rows { one.withUnsafeBytes { w.advanced(by: r * rowBytes).copyMemory(from: $0.baseAddress!, byteCount: rowBytes) } }
                let xq = quantized(randomFloats(n, &rng), to: xt)
                var out = [Float](repeating: 0, count: rows)
                let s = xq.withUnsafeBytes { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        time { for r in 0..<rows { op[r] = vecDot(type, w + r * rowBytes, xp.baseAddress!, count: n) } }
                    }
                }
                let s1 = xq.withUnsafeBytes { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        time { matmulTile(type, w: w, rowBytes: rowBytes, rows: 0..<rows, x: xp.baseAddress!, xBytes: xq.count, nx: 1, count: n, out: op.baseAddress!, outStride: rows) }
                    }
                }
                for (how, t) in [("vecDot/row", s), ("matmulTile nx=1", s1)] {
                    print(String(format: "bench %@ %@ %@ n=%d: %.2f ms, %.1f GB/s, %.1f Gweights/s", type.description, label, how, n, t * 1e3, Double(total) / t * 1e-9, Double(rows * n) / t * 1e-9))
                }
            }
            // Prompt-style: 64 vectors through matmulTile, cache-resident weights.
            let rows = 1_000_000 / n, nx = 64
            let w = (0..<rows).flatMap { _ in randomRow(type, count: n, &rng) }
            let xBytes = xt.rowBytes(n)!
            let xs = (0..<nx).flatMap { _ in quantized(randomFloats(n, &rng), to: xt) }
            var out = [Float](repeating: 0, count: rows * nx)
            let s = w.withUnsafeBytes { wp in xs.withUnsafeBytes { xp in out.withUnsafeMutableBufferPointer { op in
                time { matmulTile(type, w: wp.baseAddress!, rowBytes: rowBytes, rows: 0..<rows, x: xp.baseAddress!, xBytes: xBytes, nx: nx, count: n, out: op.baseAddress!, outStride: rows) }
            } } }
            print(String(format: "bench %@ matmulTile nx=64: %.1f Gweight-MACs/s", type.description, Double(rows * n * nx) / s * 1e-9))
        }
    }
}

import XCTest
import Foundation
@testable import Engine

/// One fixture written by Tests/tools/make_quant_fixtures.py from llama.cpp: raw blocks of a type (`hex`), gguf-py's
/// dequantization of them (`values`), an activation vector `x`, ggml's CPU quantization of it into the type's vec-dot
/// format (`xq`) and ggml's CPU vec_dot of the blocks, as one row, with it (`dot`).
struct QuantFixture: Decodable {
    var type: String
    var blocks: Int
    var hex: String
    var values: [Float]
    var x: [Float]
    var xq: String
    var dot: Double
}

/// Bytes from lowercase hex.
func hexBytes(_ s: String) -> [UInt8] {
    let hex = Array(s.utf8)
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }   // 0-9, a-f
    return stride(from: 0, to: hex.count - 1, by: 2).map { nibble(hex[$0]) << 4 | nibble(hex[$0 + 1]) }
}

/// The fixture of `type`, checked for consistent sizes (a missing fixture throws, failing the test).
func quantFixture(_ type: GGMLType, file: StaticString = #filePath, line: UInt = #line) throws -> QuantFixture {
    let url = try XCTUnwrap(Bundle.module.url(forResource: type.description, withExtension: "json",
                                              subdirectory: "Fixtures/quants"), "missing fixture \(type).json", file: file, line: line)
    let f = try JSONDecoder().decode(QuantFixture.self, from: Data(contentsOf: url))
    XCTAssertEqual(f.type, type.description, file: file, line: line)
    XCTAssertEqual(f.hex.utf8.count, 2 * f.blocks * type.typeSize, "\(type): fixture bytes", file: file, line: line)
    XCTAssertEqual(f.values.count, f.blocks * type.blockSize, "\(type): fixture values", file: file, line: line)
    XCTAssertEqual(f.x.count, f.values.count, "\(type): fixture activations", file: file, line: line)
    return f
}

final class TensorTypeTests: XCTestCase {
    func testBlockLayouts() {
        XCTAssertEqual(GGMLType.q4_K.rowBytes(512), 288)
        XCTAssertEqual(GGMLType.q8_0.rowBytes(64), 68)
        XCTAssertNil(GGMLType.q8_0.rowBytes(33))
        XCTAssertEqual(GGMLType.q6_K.description, "Q6_K")
    }

    /// The reference dequantizers of the types added after the first ten against llama.cpp's gguf-py (numpy ports of
    /// ggml's `dequantize_row_*`), on seeded random blocks: bit-exact, but for one ulp of slack.
    func testDequantizeMatchesLlamaCppFixtures() throws {
        for type in [GGMLType.q5_1, .q2_K, .q3_K, .iq4_nl, .iq4_xs, .mxfp4] {
            XCTAssertTrue(GGMLType.supported.contains(type), "\(type) is not in GGMLType.supported")
            let f = try quantFixture(type)
            let bytes = hexBytes(f.hex), want = f.values
            var got = [Float](repeating: .nan, count: want.count)
            bytes.withUnsafeBytes { src in
                got.withUnsafeMutableBufferPointer { Dequantize.row(type, src.baseAddress!, $0.baseAddress!, count: want.count) }
            }
            var worst: Float = 0, mismatches = 0
            for i in 0..<want.count {
                let diff = abs(got[i] - want[i])
                worst = max(worst, diff / max(abs(want[i]), .leastNormalMagnitude))
                if diff > 1e-6 * abs(want[i]) {
                    mismatches += 1
                    if mismatches <= 3 { XCTFail("\(type)[\(i)] = \(got[i]), llama.cpp gives \(want[i])") }
                }
            }
            XCTAssertEqual(mismatches, 0, "\(type): \(mismatches) of \(want.count) values differ")
            print("dequantize \(type): \(want.count) values, max relative difference from gguf-py \(worst)")
        }
    }

    /// Hand-built blocks whose values can be worked out by eye, one per added type.
    func testDequantizeKnownBlocksOfAddedTypes() {
        func check(_ type: GGMLType, _ bytes: [UInt8], _ expect: [Float], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(bytes.count, type.typeSize, "\(type): block size", file: file, line: line)
            var got = [Float](repeating: .nan, count: expect.count)
            bytes.withUnsafeBytes { src in
                got.withUnsafeMutableBufferPointer { Dequantize.row(type, src.baseAddress!, $0.baseAddress!, count: expect.count) }
            }
            for i in 0..<expect.count where got[i] != expect[i] {
                XCTFail("\(type)[\(i)] = \(got[i]), expected \(expect[i])", file: file, line: line)
                return
            }
        }
        let one: [UInt8] = [0x00, 0x3C], half: [UInt8] = [0x00, 0x38], minusOne: [UInt8] = [0x00, 0xBC]

        // Q5_1: d = 0.5, m = -1; fifth bits for elements 0 and 16; byte 0 = 0x21 → element 0 = 1 | 16, element 16 = 2 | 16.
        var e = [Float](repeating: -1, count: 32); e[0] = 17 * 0.5 - 1; e[16] = 18 * 0.5 - 1
        check(.q5_1, half + minusOne + [0x01, 0x00, 0x01, 0x00] + [0x21] + [UInt8](repeating: 0, count: 15), e)

        // IQ4_NL: d = 1; byte 0 = 0xF0 → element 0 level 0 (-127), element 16 level 15 (113); 0x88 → level 8 (1).
        e = [Float](repeating: 1, count: 32); e[0] = -127; e[16] = 113
        check(.iq4_nl, one + [0xF0] + [UInt8](repeating: 0x88, count: 15), e)

        // MXFP4: e = 128 → scale 2^(128 - 127) · ½ = 1; byte 0 = 0xF7 → element 0 level 7 (12), element 16 level 15 (-12).
        e = [Float](repeating: 0, count: 32); e[0] = 12; e[16] = -12
        check(.mxfp4, [128, 0xF7] + [UInt8](repeating: 0, count: 15), e)
        // e = 0 and 1: the subnormal scales 2^-128 and 2^-127; e = 254: 2^126.
        e = [Float](repeating: 0, count: 32); e[0] = 0x1p-128 * 12
        check(.mxfp4, [0, 0x07] + [UInt8](repeating: 0, count: 15), e)
        e[0] = 0x1p-127 * 12
        check(.mxfp4, [1, 0x07] + [UInt8](repeating: 0, count: 15), e)
        e[0] = 0x1p126 * 12
        check(.mxfp4, [254, 0x07] + [UInt8](repeating: 0, count: 15), e)

        // Q2_K: d = 1, dmin = 0.5; scale byte 0 = 0x23 (scale 3, min 2) for elements 0-15, byte 9 = 0x15 (scale 5,
        // min 1) for elements 144-159. Bit pair j of qs[32h + l] is element 128h + 32j + l: qs[0] = 3 gives
        // element 0 value 3, qs[48] = 2 element 144 value 2.
        var sc2 = [UInt8](repeating: 0, count: 16); sc2[0] = 0x23; sc2[9] = 0x15
        var q2 = [UInt8](repeating: 0, count: 64); q2[0] = 0x03; q2[48] = 0x02
        e = [Float](repeating: 0, count: 256)
        for i in 0..<16 { e[i] = -1 }; for i in 144..<160 { e[i] = -0.5 }
        e[0] = 3 * 3 - 1; e[144] = 5 * 2 - 0.5
        check(.q2_K, sc2 + q2 + one + half, e)

        // Q3_K: d = 0.5; every 6-bit scale 32 (0) but scale 0 = 34 (+2) and scale 15 = 31 (-1). Scale 0: low nibble
        // of byte 0 = 2, top bits (byte 8, bits 0-1) = 2; scale 15: high nibble of byte 7 = 15, byte 11 bits 6-7 = 1.
        // All high bits clear (values - 4) except element 0's (hmask[0] bit 0); element 0 low bits 3 → 3,
        // element 255 (qs[63] bits 6-7 = 1, hmask[31] bit 7 clear) → 1 - 4 = -3.
        var sc3 = [UInt8](repeating: 0, count: 12)
        sc3[8] = 0xAA; sc3[9] = 0xAA; sc3[10] = 0xAA; sc3[11] = 0xAA     // top bits 2 for every scale → 32
        sc3[0] = 0x02; sc3[7] = 0xF0; sc3[11] = 0x6A                       // scale 0 = 34, scale 15 = 15 | 1 << 4 = 31
        var hm = [UInt8](repeating: 0, count: 32); hm[0] = 0x01
        var q3 = [UInt8](repeating: 0, count: 64); q3[0] = 0x03; q3[63] = 0x40
        e = [Float](repeating: 0, count: 256)
        for i in 0..<16 { e[i] = 0.5 * 2 * -4 }; for i in 240..<256 { e[i] = 0.5 * -1 * -4 }
        e[0] = 0.5 * 2 * 3; e[255] = 0.5 * -1 * -3
        check(.q3_K, hm + q3 + sc3 + half, e)

        // IQ4_XS: d = 0.5; sub-block 0 scale 33 (+1: scales_l[0] low nibble 1, scales_h bits 0-1 = 2), sub-block 7
        // scale 30 (-2: scales_l[3] high nibble 14, scales_h bits 14-15 = 1), others 0 (nibble 0, bits 2 → 32).
        // All levels 8 (1) but element 0 (level 15: 113) and element 255 (level 0: -127).
        let sh: UInt16 = 0b01_10_10_10_10_10_10_10
        var qs4 = [UInt8](repeating: 0x88, count: 128); qs4[0] = 0x8F; qs4[127] = 0x08
        e = [Float](repeating: 0, count: 256)
        for i in 0..<32 { e[i] = 0.5 }; for i in 224..<256 { e[i] = -1 }
        e[0] = 0.5 * 113; e[255] = -1 * -127
        check(.iq4_xs, half + [UInt8(sh & 0xFF), UInt8(sh >> 8)] + [0x01, 0x00, 0x00, 0xE0] + qs4, e)
    }
}

// Fast dot-product kernels for the weight types, in the manner of llama.cpp: the activation vector
// is quantized once per matmul into the weight type's "vec dot type", then each block is an integer
// dot product with the float scales applied per block (or sub-block).
//
// On x86-64 the kernels use AVX2/FMA/F16C intrinsics (the Engine target is built for Haswell);
// elsewhere, or when built with -DREFRAIN_PORTABLE, a plain-Swift fallback computes the same sums.
//
// Every kernel is a `BlockDot`: `load` decodes one weight block (once), `dot` adds its product with
// one activation block to an accumulator. `vecDot` and `matmulTile` are the same generic loops over
// these, so a tile computes each of its dots with exactly the operations `vecDot` uses, in the same
// order: their results are bit-identical.
//
// This file holds the public entry points. The rest, one concern a file:
//   Kernels+BlockDot.swift              the `BlockDot` protocol and the loads every kernel uses
//   Kernels+Loops.swift                 the generic row and tile loops over any `BlockDot`
//   Kernels+PanelTile.swift             the prompt-tile loop over decoded weight panels (AVX2 builds)
//   Kernels+AVX2.swift                  the AVX2/FMA/F16C block kernels
//   Kernels+AVX2Panels.swift            their panel forms, for prompt tiles
//   Kernels+Portable.swift              the plain-Swift block kernels (REFRAIN_PORTABLE, or not x86-64)
//   Kernels+SIMD.swift                  lane-wise max/min/abs, and rounding to Int32 per ISA
//   Kernels+ActivationQuantizers.swift  one Q8_0/Q8_1/Q8_K activation block at a time
//   VecOps.swift                        the f32 vector operations of the forward pass

// MARK: - Public API

/// The activation format a weight type is dotted against.
///
/// As ggml's `vec_dot_type`: Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4 → Q8_0; Q4_1, Q5_1 → Q8_1; Q2_K, Q3_K, Q4_K,
/// Q5_K, Q6_K, IQ4_XS → Q8_K; F32, F16, BF16 → F32.
public func vecDotType(for weight: GGMLType) -> GGMLType {
    switch weight {
    case .q4_0, .q5_0, .q8_0, .iq4_nl, .mxfp4: return .q8_0
    case .q4_1, .q5_1: return .q8_1
    case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs: return .q8_K
    case .f32, .f16, .bf16: return .f32
    default: preconditionFailure("vecDotType: unsupported weight type \(weight)")
    }
}

/// Quantize `n` floats into the buffer in `type`'s format (n multiple of its block size).
///
/// `type` is one of Q8_0, Q8_1, Q8_K (bit-identical to ``Quantize/rowRef(_:_:_:count:)``), F32 (a copy)
/// or F16. `dst` must hold `type.rowBytes(n)` bytes; it needs no particular alignment.
public func quantizeActivation(_ x: UnsafePointer<Float>, count n: Int, to type: GGMLType, into dst: UnsafeMutableRawPointer) {
    precondition(n >= 0 && n % type.blockSize == 0, "quantizeActivation: \(n) is not a whole number of \(type) blocks")
    switch type {
    case .f32: dst.copyMemory(from: x, byteCount: n * 4)
    case .f16: VecOps.f32ToF16(x, dst, n)
    case .q8_0: for b in 0..<n / 32 { quantizeQ8Block(x + 32 * b, dst + 34 * b, withSum: false) }
    case .q8_1: for b in 0..<n / 32 { quantizeQ8Block(x + 32 * b, dst + 36 * b, withSum: true) }
    case .q8_K: for b in 0..<n / 256 { quantizeQ8KBlock(x + 256 * b, dst + 292 * b) }
    default: preconditionFailure("quantizeActivation: unsupported activation type \(type)")
    }
}

/// dot(weight row, quantized activation) over n elements.
///
/// `w` points at a row of `wtype`; `x` at `n` elements already in `vecDotType(for: wtype)`'s format
/// (see ``quantizeActivation(_:count:to:into:)``). `n` must be a multiple of `wtype`'s block size.
public func vecDot(_ wtype: GGMLType, _ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count n: Int) -> Float {
    precondition(n % wtype.blockSize == 0, "vecDot: \(n) is not a whole number of \(wtype) blocks")
    switch wtype {
    case .f32: return rowDot(F32Dot.self, w, x, n)
    case .f16: return rowDot(F16Dot.self, w, x, n)
    case .bf16: return rowDot(BF16Dot.self, w, x, n)
    case .q4_0: return rowDot(Q4_0Dot.self, w, x, n)
    case .q4_1: return rowDot(Q4_1Dot.self, w, x, n)
    case .q5_0: return rowDot(Q5_0Dot.self, w, x, n)
    case .q5_1: return rowDot(Q5_1Dot.self, w, x, n)
    case .iq4_nl: return rowDot(IQ4_NLDot.self, w, x, n)
    case .mxfp4: return rowDot(MXFP4Dot.self, w, x, n)
    case .q2_K: return rowDot(Q2_KDot.self, w, x, n)
    case .q3_K: return rowDot(Q3_KDot.self, w, x, n)
    case .iq4_xs: return rowDot(IQ4_XSDot.self, w, x, n)
    case .q8_0: return rowDot(Q8_0Dot.self, w, x, n)
    case .q4_K: return rowDot(Q4_KDot.self, w, x, n)
    case .q5_K: return rowDot(Q5_KDot.self, w, x, n)
    case .q6_K: return rowDot(Q6_KDot.self, w, x, n)
    default: preconditionFailure("vecDot: unsupported weight type \(wtype)")
    }
}

/// A tile kernel: for each row r in `rows` of the weight matrix (row r starts at w + r*rowBytes)
/// and each of `nx` quantized activation vectors (vector t at x + t*xBytes), out[t * outStride + r] = dot.
///
/// `r` indexes `out` absolutely (not relative to `rows.lowerBound`), so threads that split `rows`
/// write disjoint parts of one output. Each weight block is decoded once and dotted against four
/// activation vectors at a time; every result is bit-identical to `vecDot` on the same row and vector.
/// Thread-safe and allocation-free.
public func matmulTile(_ wtype: GGMLType, w: UnsafeRawPointer, rowBytes: Int, rows: Range<Int>, x: UnsafeRawPointer, xBytes: Int, nx: Int, count n: Int, out: UnsafeMutablePointer<Float>, outStride: Int) {
    precondition(n % wtype.blockSize == 0, "matmulTile: \(n) is not a whole number of \(wtype) blocks")
    let tile = TileArgs(w: w, rowBytes: rowBytes, rows: rows, x: x, xBytes: xBytes, nx: nx, n: n, out: out, outStride: outStride)
    switch wtype {
    case .f32: tileDot(F32Dot.self, tile)
    case .f16: tileDot(F16Dot.self, tile)
    case .bf16: tileDot(BF16Dot.self, tile)
    case .q4_0: quantTile(Q4_0Dot.self, tile)
    case .q4_1: quantTile(Q4_1Dot.self, tile)
    case .q5_0: quantTile(Q5_0Dot.self, tile)
    case .q5_1: quantTile(Q5_1Dot.self, tile)
    case .iq4_nl: quantTile(IQ4_NLDot.self, tile)
    case .mxfp4: quantTile(MXFP4Dot.self, tile)
    case .q2_K: quantTile(Q2_KDot.self, tile)
    case .q3_K: quantTile(Q3_KDot.self, tile)
    case .iq4_xs: quantTile(IQ4_XSDot.self, tile)
    case .q8_0: quantTile(Q8_0Dot.self, tile)
    case .q4_K: quantTile(Q4_KDot.self, tile)
    case .q5_K: quantTile(Q5_KDot.self, tile)
    case .q6_K: quantTile(Q6_KDot.self, tile)
    default: preconditionFailure("matmulTile: unsupported weight type \(wtype)")
    }
}

// What a block kernel is: a `BlockDot` decodes one weight block and adds its dot product with one activation
// block to a `DotAcc`. Also the small loads (f16, f32, 8 floats, K-quant scales) every kernel file uses.

/// A dot-product accumulator: a vector part and a scalar part, summed at the end.
@usableFromInline struct DotAcc {
    var v = SIMD8<Float>()
    var s: Float = 0
}

/// One weight type's block kernel against its activation format.
protocol BlockDot {
    associatedtype W
    /// Elements per block, and bytes per weight block / activation block.
    static var elems: Int { get }
    static var wBytes: Int { get }
    static var xBytes: Int { get }
    associatedtype X
    /// Decodes one weight block.
    static func load(_ w: UnsafeRawPointer) -> W
    /// Decodes (or just points at) one activation block.
    static func loadX(_ x: UnsafeRawPointer) -> X
    /// acc += dot(decoded weight block, decoded activation block).
    static func dot(_ w: W, _ x: X, _ acc: inout DotAcc)
    /// Elements past the last whole block (only the float types have blocks larger than their block size).
    static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc)
}

extension BlockDot where X == UnsafeRawPointer {
    @inline(__always) static func loadX(_ x: UnsafeRawPointer) -> UnsafeRawPointer { x }
}

extension BlockDot {
    @inline(__always) static func tail(_ w: UnsafeRawPointer, _ x: UnsafeRawPointer, count: Int, _ acc: inout DotAcc) {}
}

// MARK: - Small helpers

@inline(__always) func f16(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}
@inline(__always) func f32(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    p.loadUnaligned(fromByteOffset: offset, as: Float.self)
}
@inline(__always) func vf(_ p: UnsafeRawPointer, _ offset: Int = 0) -> SIMD8<Float> {
    p.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
}

/// The 8 scales and 8 mins (6-bit) of a Q4_K/Q5_K block, as two 8-byte words each (byte j = sub-block j).
@inline(__always) func kScalesMins(_ s: UnsafeRawPointer) -> (sc: (UInt32, UInt32), mn: (UInt32, UInt32)) {
    let u0 = s.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
    let u1 = s.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let u2 = s.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    let low6: UInt32 = 0x3f3f_3f3f, low4: UInt32 = 0x0f0f_0f0f, low2: UInt32 = 0x0303_0303
    let sc0 = u0 & low6
    let sc1 = (u2 & low4) | (((u0 >> 6) & low2) << 4)
    let mn0 = u1 & low6
    let mn1 = ((u2 >> 4) & low4) | (((u1 >> 6) & low2) << 4)
    return ((sc0, sc1), (mn0, mn1))
}

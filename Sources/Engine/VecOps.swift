// The f32 vector operations of the forward pass (dot, axpy, RMS norm, softmax, SiLU, GELU, f16 conversion),
// 8 lanes at a time with a scalar tail, and the vectorised exp they use.

#if canImport(Glibc)
import Glibc   // links libm (Float.squareRoot may become a call to sqrtf)
#endif

/// Vectorised f32 helpers for the forward pass. Loops run 8 lanes at a time with a scalar tail;
/// outputs may alias inputs element for element (out == a is fine), nothing else may overlap.
public enum VecOps {
    @inline(__always) static func ld(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func st(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: SIMD8<Float>) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Σ a[i] * b[i] (Float, four 8-lane accumulators).
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            s0 = s0.addingProduct(ld(a, i), ld(b, i))
            s1 = s1.addingProduct(ld(a, i + 8), ld(b, i + 8))
            s2 = s2.addingProduct(ld(a, i + 16), ld(b, i + 16))
            s3 = s3.addingProduct(ld(a, i + 24), ld(b, i + 24))
            i += 32
        }
        while i + 8 <= n { s0 = s0.addingProduct(ld(a, i), ld(b, i)); i += 8 }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += a * x.
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = SIMD8<Float>(repeating: a)
        var i = 0
        while i + 8 <= n { st(y, i, ld(y, i).addingProduct(va, ld(x, i))); i += 8 }
        while i < n { y[i] += a * x[i]; i += 1 }
    }

    /// x *= s.
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(x, i, ld(x, i) * s); i += 8 }
        while i < n { x[i] *= s; i += 1 }
    }

    /// out = x * s.
    public static func scaleCopy(_ x: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(x, i) * s); i += 8 }
        while i < n { out[i] = x[i] * s; i += 1 }
    }

    /// out = a + b.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(a, i) + ld(b, i)); i += 8 }
        while i < n { out[i] = a[i] + b[i]; i += 1 }
    }

    /// out = a * b (element-wise).
    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, ld(a, i) * ld(b, i)); i += 8 }
        while i < n { out[i] = a[i] * b[i]; i += 1 }
    }

    /// out = x / sqrt(mean(x²) + eps) * weight (weight nil: no weight). The sum of squares is
    /// accumulated in Double (as ggml does); the scale is applied as (x * scale) * weight in Float.
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ eps: Float, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        var d0 = SIMD4<Double>(), d1 = SIMD4<Double>()
        var i = 0
        while i + 8 <= n {
            let v = ld(x, i)
            let lo = SIMD4<Double>(v.lowHalf), hi = SIMD4<Double>(v.highHalf)
            d0 = d0.addingProduct(lo, lo); d1 = d1.addingProduct(hi, hi)
            i += 8
        }
        var sum = (d0 + d1).sum()
        while i < n { sum += Double(x[i]) * Double(x[i]); i += 1 }
        let mean = Float(sum / Double(n))
        let s = 1 / (mean + eps).squareRoot()
        i = 0
        if let w = weight {
            while i + 8 <= n { st(out, i, (ld(x, i) * s) * ld(w, i)); i += 8 }
            while i < n { out[i] = (x[i] * s) * w[i]; i += 1 }
        } else {
            while i + 8 <= n { st(out, i, ld(x, i) * s); i += 8 }
            while i < n { out[i] = x[i] * s; i += 1 }
        }
    }

    /// In-place softmax: x = exp(x - max) / Σ. -inf entries become exactly 0.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var m = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { m = vmax(m, ld(x, i)); i += 8 }
        var mx = hmax(m)
        while i < n { mx = max(mx, x[i]); i += 1 }
        let vmx = SIMD8<Float>(repeating: mx)
        var acc = SIMD8<Float>()
        i = 0
        while i + 8 <= n { let e = exp8(ld(x, i) - vmx); st(x, i, e); acc += e; i += 8 }
        var sum = acc.sum()
        while i < n { let e = expScalar(x[i] - mx); x[i] = e; sum += e; i += 1 }
        scale(x, 1 / sum, n)
    }

    /// out = x * sigmoid(x) = x / (1 + exp(-x)).
    public static func silu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { let v = ld(x, i); st(out, i, v / (1 + exp8(-v))); i += 8 }
        while i < n { out[i] = x[i] / (1 + expScalar(-x[i])); i += 1 }
    }

    /// out = silu(gate) * up (SwiGLU).
    public static func siluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { let v = ld(gate, i); st(out, i, v / (1 + exp8(-v)) * ld(up, i)); i += 8 }
        while i < n { out[i] = gate[i] / (1 + expScalar(-gate[i])) * up[i]; i += 1 }
    }

    /// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed as the
    /// identical x / (1 + exp(-2·√(2/π)·(x + 0.044715·x³))).
    public static func gelu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, gelu8(ld(x, i))); i += 8 }
        while i < n { out[i] = geluScalar(x[i]); i += 1 }
    }

    /// out = gelu(gate) * up (GeGLU).
    public static func geluMul(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { st(out, i, gelu8(ld(gate, i)) * ld(up, i)); i += 8 }
        while i < n { out[i] = geluScalar(gate[i]) * up[i]; i += 1 }
    }

    /// n IEEE halves at src → floats.
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            st(dst, i, SIMD8<Float>(src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<Float16>.self)))
            i += 8
        }
        while i < n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)); i += 1 }
    }

    /// n floats → IEEE halves at dst (round to nearest even).
    public static func f32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            dst.storeBytes(of: SIMD8<Float16>(ld(src, i)), toByteOffset: 2 * i, as: SIMD8<Float16>.self)
            i += 8
        }
        while i < n { dst.storeBytes(of: Float16(src[i]), toByteOffset: 2 * i, as: Float16.self); i += 1 }
    }

    // MARK: exp

    static let geluK: Float = 0.797_884_560_802_865_4   // √(2/π)

    @inline(__always) static func gelu8(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let z = geluK * v * (1 + 0.044715 * v * v)
        return v / (1 + exp8(-2 * z))
    }
    @inline(__always) static func geluScalar(_ v: Float) -> Float {
        let z = geluK * v * (1 + 0.044715 * v * v)
        return v / (1 + expScalar(-2 * z))
    }

    /// e^x, 8 lanes, within ~2 ulp of the true value for x in [-87, 88]; larger x gives e^88,
    /// x < -87.3 (and -inf) gives 0, NaN gives NaN.
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> { exp8(x) }

    @inline(__always) static func exp8(_ x0: SIMD8<Float>) -> SIMD8<Float> {
        let x = vmax(vmin(x0, SIMD8(repeating: 88)), SIMD8(repeating: -87.3))
        // x = n·ln2 + r, |r| ≤ ln2/2; e^r by a degree-6 polynomial (Cephes expf coefficients).
        let ni = roundEven(x * 1.442_695_040_888_963_4)
        let n = SIMD8<Float>(ni)
        var r = x.addingProduct(n, SIMD8(repeating: -0.693_359_375))
        r = r.addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let e = (p * r * r + r) + 1
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: SIMD8<Float>.self)
        var y = e * scale
        y.replace(with: 0, where: x0 .< -87.3)
        y.replace(with: x0, where: x0 .!= x0)
        return y
    }

    @inline(__always) static func expScalar(_ x: Float) -> Float {
        exp8(SIMD8<Float>(repeating: x))[0]
    }
}
